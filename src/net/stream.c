/*
 * net/stream: see stream.h. The state of one stream: w->out collects; at most one uv_write is in flight,
 * over w->wbuf from wbuf_off, wlen bytes long; when it completes the next piece of wbuf goes, and when
 * wbuf is done the owner is told (written_cb) and decides whether to flush again.
 */
#include "net/stream.h"

#include "util/uvbuf.h"

#define STREAM_IDLE_KEEP (16 * 1024)    /* give_back: an idle output buffer larger than this is given back */

static void stream_write_cb(uv_write_t *req, int status);

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
}

void stream_deinit(stream_t *w)
{
    buf_deinit(&w->out);
    buf_deinit(&w->wbuf);
}

void stream_discard(stream_t *w)
{
    w->writing = 0;
    buf_reset(&w->out);
    buf_reset(&w->wbuf);
    w->wbuf_off = 0;
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
    w->written_cb(w, 0);
}

int stream_flush(stream_t *w)
{
    if (w->writing || w->out.len == 0)
        return 0;
    uv_buf_t b = uvbuf_piece(w->out.data, w->out.len);
    int n = uv_try_write(w->handle, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0)
        return n;
    if (w->sent != NULL)
        *w->sent += (size_t)n;
    if ((size_t)n == w->out.len) {
        buf_reset(&w->out);
        if (w->give_back && w->out.cap > STREAM_IDLE_KEEP)
            buf_shrink(&w->out, 0);
        return 0;
    }
    /* The write in flight owns the bytes until its callback: hand the buffer over whole. */
    buf_t t = w->wbuf;
    w->wbuf = w->out;
    w->out = t;
    buf_reset(&w->out);
    w->wbuf_off = (size_t)n;
    return stream_write_next(w);
}
