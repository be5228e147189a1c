/*
 * util/uvbuf: libuv buffers over large byte ranges. A uv_buf_t's length is an unsigned int on Unix, so
 * a write of 4 GB or more would be cut short by a cast: writers take the range one piece of at most
 * UVBUF_MAX bytes at a time (net/stream.c, the write path of clients and upstream connections), and a
 * read buffer offers at most that much (net/conn.c, a client's query buffer).
 */
#ifndef CACHETORYD_UTIL_UVBUF_H
#define CACHETORYD_UTIL_UVBUF_H

#include <stddef.h>
#include <uv.h>

#define UVBUF_MAX ((size_t)1 << 30)     /* well below UINT_MAX */

/* A libuv buffer over p[0 .. min(len, UVBUF_MAX)). */
static inline uv_buf_t uvbuf_piece(char *p, size_t len)
{
    return uv_buf_init(p, (unsigned)(len < UVBUF_MAX ? len : UVBUF_MAX));
}

#endif
