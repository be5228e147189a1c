/*
 * net/stream: the one libuv write path, shared by client connections (net/conn.c) and upstream
 * connections (backend/redis/pool.c).
 *
 * A write stream is an output buffer in front of a libuv stream handle the owner keeps (TCP or unix
 * socket: stream_handle_t). The owner appends to w->out; stream_flush() sends it: uv_try_write() first
 * (no request, no callback when the socket takes it all), and uv_write() for the rest, which then owns
 * those bytes (w->wbuf: out and wbuf swap, nothing is copied) until the write completes. One uv_write is
 * in flight at a time; libuv takes a buffer's length as an unsigned int, so output of 4 GB or more
 * leaves in pieces of at most UVBUF_MAX bytes (util/uvbuf.h), one after the other.
 *
 * The owner hears of a uv_write's end through its written_cb: status 0 when every byte handed over is
 * written (more may have been appended meanwhile: the owner flushes again when it wants), or a negative
 * libuv error when the write failed (the bytes in flight are dropped; the owner closes the connection).
 * The callback is not called for pieces that are not the last, nor after the handle started closing
 * (a piece still to go is then not written). Errors of stream_flush itself come back as its return code.
 *
 * TLS (net/tls.h): a stream given a TLS session (stream_set_tls) carries it both ways, and its owner
 * hardly notices. w->out still receives plaintext; stream_flush encrypts it into w->tout (once the
 * handshake is done: until then it waits) and sends the ciphertext. Reading goes through
 * stream_read_start: the stream reads the ciphertext, decrypts it, and hands the plaintext to the owner's
 * read callback as libuv would have, in buffers the owner's alloc callback gives; a TLS failure reaches
 * that callback as nread UV_EPROTO (stream_error says why) and a close_notify as UV_EOF. The handshake
 * runs by itself: the server side answers the client's hello as it reads, the client side sends its hello
 * at the first stream_flush. With TLS the handle must be a stream_handle_t's (its .w finds the stream).
 */
#ifndef CACHETORYD_NET_STREAM_H
#define CACHETORYD_NET_STREAM_H

#include <stddef.h>
#include <uv.h>

#include "util/buf.h"

typedef struct stream stream_t;
struct tls;

/* A TCP or unix socket handle, seen as whatever libuv call needs it, and the stream over it. */
typedef struct stream_handle {
    union {                     /* first: a stream_handle_t * is the handle's address */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    };
    stream_t *w;                /* the stream over it, with TLS (stream_set_tls) */
} stream_handle_t;

/* A uv_write ended: status 0, all written; < 0, it failed. The owner is w->handle->data. */
typedef void stream_written_cb(stream_t *w, int status);

struct stream {
    uv_stream_t *handle;        /* the owner's handle (not owned); handle->data is the owner */
    buf_t out;                  /* bytes to send: the owner appends, stream_flush sends */
    buf_t wbuf;                 /* bytes owned by the uv_write in flight, sent up to wbuf_off */
    size_t wbuf_off;
    size_t wlen;                /* bytes of the uv_write in flight, from wbuf_off (at most UVBUF_MAX) */
    uv_write_t wreq;
    int writing;                /* a uv_write is in flight */
    int give_back;              /* 1: buffers are given back when the output is drained (many idle
                                   clients); 0: kept (a few upstream connections that write all the time) */
    unsigned long long *sent;   /* the owner's count of bytes the socket took, or NULL */
    stream_written_cb *written_cb;
    /* TLS only */
    struct tls *tls;            /* the session (owned), or NULL for a plain stream */
    buf_t tout;                 /* ciphertext not yet handed to the socket */
    uv_alloc_cb alloc_cb;       /* the owner's read callbacks (stream_read_start) */
    uv_read_cb read_cb;
    int reading;                /* the owner wants input */
    int delivering;             /* inside stream_tls_deliver: a nested start lets it go on */
};

/* Set up w over handle (its data pointer is the owner's). No allocation. */
void stream_init(stream_t *w, uv_stream_t *handle, stream_written_cb *written_cb, int give_back,
                 unsigned long long *sent);

/* Carry TLS session t (owned from now on) over w, whose handle is a stream_handle_t's. Before any byte
 * was read or written on this connection. */
void stream_set_tls(stream_t *w, struct tls *t);

/* Start and stop reading, through TLS if the stream has it (the owner's callbacks, as uv_read_start's).
 * Starting again delivers the plaintext TLS already holds at once, inside this call. 0 or a libuv error. */
int stream_read_start(stream_t *w, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
void stream_read_stop(stream_t *w);

/* Why a TLS stream failed (nread or status UV_EPROTO), or "" */
const char *stream_error(const stream_t *w);

/* Best effort before closing a TLS stream: a close_notify, if the socket takes it at once. */
void stream_close_notify(stream_t *w);

/* Free the buffers. Only when no write is in flight (after the handle's close callback). */
void stream_deinit(stream_t *w);

/*
 * Send what w->out holds, unless a write is in flight (write_cb's owner flushes again) or there is
 * nothing. 0, or a negative libuv error: the socket refused the bytes (the owner closes).
 */
int stream_flush(stream_t *w);

/* Output not yet taken by the socket: w->out and what is left of the write in flight. */
static inline size_t stream_pending(const stream_t *w)
{
    return w->out.len + w->tout.len + (w->writing ? w->wbuf.len - w->wbuf_off : 0);
}

/* Output not yet handed to a write: the owner's (w->out) or TLS's. */
static inline int stream_has_output(const stream_t *w)
{
    return w->out.len > 0 || w->tout.len > 0;
}

/* Drop all output, the write state and the TLS session, for a new connection over the same stream (the
 * old handle is closed, its write callbacks have run). */
void stream_discard(stream_t *w);

#endif
