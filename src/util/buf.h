/*
 * buf: a growable byte buffer (query buffers, reply buffers, scratch space), and bytes_t, a borrowed
 * slice of bytes that is never owned by whoever holds it.
 */
#ifndef CACHETORYD_UTIL_BUF_H
#define CACHETORYD_UTIL_BUF_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct bytes {
    const char *ptr;    /* first byte; need not be NUL-terminated */
    size_t len;         /* number of bytes */
} bytes_t;

typedef struct buf {
    char *data;         /* heap block of cap bytes, or NULL when cap == 0 */
    size_t len;         /* bytes in use */
    size_t cap;         /* bytes allocated */
} buf_t;

#define BYTES(s) ((bytes_t){ (s), sizeof(s) - 1 })

void buf_init(buf_t *b);
void buf_deinit(buf_t *b);                          /* frees the block; b is empty again */
void buf_reserve(buf_t *b, size_t extra);           /* room for extra more bytes */
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_append_header(buf_t *b, char type, long long n);  /* "<type><n>\r\n", as RESP frames lengths */

/* The decimal text of v into dst (at least FMT_LL_MAX bytes, not terminated); returns its length.
 * Replies and upstream commands format numbers on every request, so this is not snprintf. */
#define FMT_LL_MAX 21
size_t fmt_ll(char *dst, long long v);
void buf_consume(buf_t *b, size_t n);               /* drop the first n bytes */
void buf_shrink(buf_t *b, size_t keep_cap);         /* give back a large idle block */

static inline void buf_reset(buf_t *b) { b->len = 0; }

static inline int bytes_eq_nocase(bytes_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

#endif
