/*
 * net/stream: see stream.h. The state of one stream: w->out collects; at most one uv_write is in flight,
 * over w->wbuf from wbuf_off, wlen bytes long; when it completes the next piece of wbuf goes, and when
 * wbuf is done the owner is told (written_cb) and decides whether to flush again.
 *
 * With TLS the bytes that go to the socket are w->tout's (ciphertext) instead of w->out's; everything
 * else is the same. Ciphertext TLS produces by itself (the handshake's answers while reading) goes out at
 * once if no write is in flight, else when it completes.
 */
#include "net/stream.h"

#include "net/tls.h"
#include "util/uvbuf.h"

#define STREAM_IDLE_KEEP (16 * 1024)    /* give_back: an idle output buffer larger than this is given back */
#define STREAM_TLS_READ  (64 * 1024)

/* Ciphertext is read here, and fed to the session before the read callback returns: one buffer serves
 * every TLS stream of the (single) loop thread. */
static char tls_read_buf[STREAM_TLS_READ];

static void stream_write_cb(uv_write_t *req, int status);
static int stream_send(stream_t *w, buf_t *src);
static int stream_tls_send(stream_t *w);

void stream_init(stream_t *w, uv_stream_t *handle, stream_written_cb *written_cb, int give_back,
                 unsigned long long *sent)
{
    w->handle = handle;
    buf_init(&w->out);
    buf_init(&w->wbuf);
    w->wbuf_off = 0;
    w->wlen = 0;
    w->writing = 0;
    w->give_back = give_back;
    w->sent = sent;
    w->written_cb = written_cb;
    w->tls = NULL;
    buf_init(&w->tout);
    w->reading = 0;
    w->delivering = 0;
}

void stream_deinit(stream_t *w)
{
    buf_deinit(&w->out);
    buf_deinit(&w->wbuf);
    buf_deinit(&w->tout);
    tls_destroy(w->tls);
    w->tls = NULL;
}

void stream_discard(stream_t *w)
{
    w->writing = 0;
    buf_reset(&w->out);
    buf_reset(&w->wbuf);
    buf_reset(&w->tout);
    w->wbuf_off = 0;
    tls_destroy(w->tls);
    w->tls = NULL;
    w->reading = 0;
}

void stream_set_tls(stream_t *w, tls_t *t)
{
    tls_destroy(w->tls);
    w->tls = t;
    ((stream_handle_t *)w->handle)->w = w;
}

const char *stream_error(const stream_t *w)
{
    return w->tls ? tls_error(w->tls) : "";
}

void stream_close_notify(stream_t *w)
{
    if (w->tls == NULL || w->writing || !tls_handshake_done(w->tls))
        return;
    buf_t alert;
    buf_init(&alert);
    tls_close_notify(w->tls);
    tls_take_output(w->tls, &alert);
    if (alert.len > 0) {
        uv_buf_t b = uv_buf_init(alert.data, (unsigned)alert.len);
        uv_try_write(w->handle, &b, 1);
    }
    buf_deinit(&alert);
}

/* Write the next piece of wbuf, from wbuf_off. 0, or the error of uv_write (nothing is in flight). */
static int stream_write_next(stream_t *w)
{
    uv_buf_t b = uvbuf_piece(w->wbuf.data + w->wbuf_off, w->wbuf.len - w->wbuf_off);
    int rc;

    w->wlen = b.len;
    w->wreq.data = w;
    rc = uv_write(&w->wreq, w->handle, &b, 1, stream_write_cb);
    if (rc < 0) {
        w->writing = 0;
        return rc;
    }
    w->writing = 1;
    return 0;
}

static void stream_write_cb(uv_write_t *req, int status)
{
    stream_t *w = req->data;

    w->writing = 0;
    if (status < 0) {
        buf_reset(&w->wbuf);
        w->wbuf_off = 0;
        w->written_cb(w, status);
        return;
    }
    if (w->sent != NULL)
        *w->sent += w->wlen;
    w->wbuf_off += w->wlen;
    if (w->wbuf_off < w->wbuf.len) {            /* more than UVBUF_MAX was handed over */
        if (!uv_is_closing((uv_handle_t *)w->handle)) {
            int rc = stream_write_next(w);
            if (rc < 0)
                w->written_cb(w, rc);
        }
        return;
    }
    buf_reset(&w->wbuf);
    w->wbuf_off = 0;
    if (w->give_back)
        buf_shrink(&w->wbuf, 0);
    if (w->tls != NULL && w->tout.len > 0 && !uv_is_closing((uv_handle_t *)w->handle)) {
        /* ciphertext made while the write was in flight (a handshake's answer) */
        int rc = stream_send(w, &w->tout);
        if (rc < 0 || w->writing) {
            if (rc < 0)
                w->written_cb(w, rc);
            return;
        }
    }
    w->written_cb(w, 0);
}

/* Send src (w->out, or w->tout with TLS) unless a write is in flight: as much as the socket takes now,
 * the rest through uv_write, which takes the buffer over (src gets wbuf's old block, empty). */
static int stream_send(stream_t *w, buf_t *src)
{
    if (w->writing || src->len == 0)
        return 0;
    uv_buf_t b = uvbuf_piece(src->data, src->len);
    int n = uv_try_write(w->handle, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0)
        return n;
    if (w->sent != NULL)
        *w->sent += (size_t)n;
    if ((size_t)n == src->len) {
        buf_reset(src);
        if (w->give_back && src->cap > STREAM_IDLE_KEEP)
            buf_shrink(src, 0);
        return 0;
    }
    /* The write in flight owns the bytes until its callback: hand the buffer over whole. */
    buf_t t = w->wbuf;
    w->wbuf = *src;
    *src = t;
    buf_reset(src);
    w->wbuf_off = (size_t)n;
    return stream_write_next(w);
}

int stream_flush(stream_t *w)
{
    if (w->tls != NULL)
        return stream_tls_send(w);
    return stream_send(w, &w->out);
}

/* ---- TLS ------------------------------------------------------------------------------------------ */

/*
 * Encrypt what the owner wrote (once the handshake is done; the client side's first call starts it),
 * collect the ciphertext in tout, and send it. 0, or UV_EPROTO (stream_error says why) or a libuv error.
 */
static int stream_tls_send(stream_t *w)
{
    if (!tls_handshake_done(w->tls) && tls_handshake(w->tls) == TLS_ERR) {
        tls_take_output(w->tls, &w->tout);      /* the alert, for the peer to know why */
        stream_send(w, &w->tout);
        return UV_EPROTO;
    }
    if (tls_handshake_done(w->tls) && w->out.len > 0) {
        if (tls_write(w->tls, w->out.data, w->out.len) < 0)
            return UV_EPROTO;
        buf_reset(&w->out);
        if (w->give_back && w->out.cap > STREAM_IDLE_KEEP)
            buf_shrink(&w->out, 0);
    }
    tls_take_output(w->tls, &w->tout);
    return stream_send(w, &w->tout);
}

static void stream_tls_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(tls_read_buf, sizeof(tls_read_buf));
}

/*
 * Decrypt what the session holds and hand it to the owner, for as long as the owner reads. The handshake
 * advances on the way, and what it has to say is sent. A failure reaches the owner as UV_EPROTO once.
 */
static void stream_tls_deliver(stream_t *w)
{
    uv_stream_t *h = w->handle;

    if (w->delivering)
        return;                 /* a read callback started reading again: the loop below goes on */
    w->delivering = 1;
    while (w->reading && w->tls != NULL && !uv_is_closing((uv_handle_t *)h)) {
        uv_buf_t b;
        size_t got = 0;
        ssize_t n = TLS_ERR;
        w->alloc_cb((uv_handle_t *)h, STREAM_TLS_READ, &b);
        /* every record at hand in one callback, as one plain read would give them: the owner answers a
         * pipeline in one write, not one per TLS record. Nothing left to decrypt: no call to learn it. */
        while (got < b.len && (n = tls_read(w->tls, b.base + got, b.len - got)) > 0) {
            got += (size_t)n;
            if (!tls_has_input(w->tls)) {
                n = TLS_AGAIN;
                break;
            }
        }
        /* the handshake's replies, and a plaintext flush held back until the handshake ended */
        int rc = stream_tls_send(w);
        if (got > 0) {
            w->read_cb(h, (ssize_t)got, &b);
            if (n == TLS_AGAIN)
                break;          /* nothing more until the socket brings some */
            continue;           /* a full buffer, or an error or the end, told at the next turn */
        }
        if (n == TLS_AGAIN && rc >= 0) {
            w->read_cb(h, 0, &b);   /* as libuv does: the buffer was not used */
            break;
        }
        w->read_cb(h, n == TLS_EOF ? UV_EOF : (rc < 0 && n == TLS_AGAIN ? rc : UV_EPROTO), &b);
        break;
    }
    w->delivering = 0;
}

static void stream_tls_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    stream_t *w = ((stream_handle_t *)h)->w;

    if (nread < 0) {
        uv_buf_t none = uv_buf_init(NULL, 0);
        w->read_cb(h, nread, &none);
        return;
    }
    if (nread == 0)
        return;
    tls_lend(w->tls, buf->base, (size_t)nread);     /* tls_read_buf: valid until the next read */
    stream_tls_deliver(w);
    if (w->tls != NULL)
        tls_keep_input(w->tls);
}

int stream_read_start(stream_t *w, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    if (w->tls == NULL)
        return uv_read_start(w->handle, alloc_cb, read_cb);
    w->alloc_cb = alloc_cb;
    w->read_cb = read_cb;
    w->reading = 1;
    int rc = uv_read_start(w->handle, stream_tls_alloc_cb, stream_tls_read_cb);
    if (rc == 0 && tls_has_input(w->tls))
        stream_tls_deliver(w);
    return rc;
}

void stream_read_stop(stream_t *w)
{
    w->reading = 0;
    uv_read_stop(w->handle);
}
