#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "util/mem.h"

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_deinit(buf_t *b)
{
    mem_free(b->data);
    buf_init(b);
}

/* Grow geometrically so that appending n bytes one at a time costs O(n) in total. */
void buf_reserve(buf_t *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap < (1u << 20) ? cap * 2 : cap + cap / 2;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_append_str(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        buf_append(b, small, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_shrink(buf_t *b, size_t keep_cap)
{
    if (b->cap <= keep_cap || b->len > keep_cap)
        return;
    b->data = mem_realloc(b->data, keep_cap ? keep_cap : 1);
    b->cap = keep_cap;
}

/* Digits of v written backwards ending at end; returns the first. */
static char *fmt_digits(char *end, long long v)
{
    unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--end = '-';
    return end;
}

size_t fmt_ll(char *dst, long long v)
{
    char tmp[FMT_LL_MAX];
    char *p = fmt_digits(tmp + sizeof(tmp), v);
    size_t n = (size_t)(tmp + sizeof(tmp) - p);

    memcpy(dst, p, n);
    return n;
}

void buf_append_header(buf_t *b, char type, long long n)
{
    char tmp[FMT_LL_MAX + 3];
    char *end = tmp + sizeof(tmp) - 2;
    char *p = fmt_digits(end, n);

    end[0] = '\r';
    end[1] = '\n';
    *--p = type;
    buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}
