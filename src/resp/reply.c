#include "resp/reply.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

void reply_status(buf_t *out, const char *s)
{
    size_t n = strlen(s);
    buf_reserve(out, n + 3);
    out->data[out->len++] = '+';
    memcpy(out->data + out->len, s, n);
    out->len += n;
    out->data[out->len++] = '\r';
    out->data[out->len++] = '\n';
}

/* An error text must not break the framing: CR and LF become spaces, as redis does. */
void reply_error(buf_t *out, const char *msg)
{
    size_t n = strlen(msg);
    buf_reserve(out, n + 3);
    out->data[out->len++] = '-';
    for (size_t i = 0; i < n; i++)
        out->data[out->len++] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    out->data[out->len++] = '\r';
    out->data[out->len++] = '\n';
}

void reply_errorf(buf_t *out, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(out, msg);
}

void reply_int(buf_t *out, long long v)
{
    buf_append_header(out, ':', v);
}

void reply_bulk(buf_t *out, const void *p, size_t n)
{
    buf_append_header(out, '$', (long long)n);
    buf_reserve(out, n + 2);
    memcpy(out->data + out->len, p, n);
    out->len += n;
    out->data[out->len++] = '\r';
    out->data[out->len++] = '\n';
}

void reply_bulk_str(buf_t *out, const char *s)
{
    reply_bulk(out, s, strlen(s));
}

void reply_bulk_ll(buf_t *out, long long v)
{
    char tmp[FMT_LL_MAX];
    reply_bulk(out, tmp, fmt_ll(tmp, v));
}

void reply_null(buf_t *out, int proto)
{
    if (proto >= 3)
        buf_append(out, "_\r\n", 3);
    else
        buf_append(out, "$-1\r\n", 5);
}

void reply_null_array(buf_t *out, int proto)
{
    if (proto >= 3)
        buf_append(out, "_\r\n", 3);
    else
        buf_append(out, "*-1\r\n", 5);
}

void reply_array(buf_t *out, size_t n)
{
    buf_append_header(out, '*', (long long)n);
}

void reply_map(buf_t *out, int proto, size_t pairs)
{
    if (proto >= 3)
        buf_append_header(out, '%', (long long)pairs);
    else
        buf_append_header(out, '*', (long long)pairs * 2);
}

void reply_set(buf_t *out, int proto, size_t n)
{
    buf_append_header(out, proto >= 3 ? '~' : '*', (long long)n);
}

/* RESP3 doubles as redis writes them ("inf", "-inf", "nan", else %.17g); RESP2 gets the same text as a
 * bulk string. */
void reply_double(buf_t *out, int proto, double d)
{
    char tmp[64];
    int n;
    if (isinf(d))
        n = snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "inf" : "-inf");
    else if (isnan(d))
        n = snprintf(tmp, sizeof(tmp), "nan");
    else
        n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (proto >= 3) {
        buf_append(out, ",", 1);
        buf_append(out, tmp, (size_t)n);
        buf_append(out, "\r\n", 2);
    } else {
        reply_bulk(out, tmp, (size_t)n);
    }
}

void reply_bool(buf_t *out, int proto, int v)
{
    if (proto >= 3)
        buf_append(out, v ? "#t\r\n" : "#f\r\n", 4);
    else
        reply_int(out, v ? 1 : 0);
}

void reply_verbatim(buf_t *out, int proto, const char *p, size_t n)
{
    if (proto < 3) {
        reply_bulk(out, p, n);
        return;
    }
    buf_append_header(out, '=', (long long)n + 4);
    buf_append(out, "txt:", 4);
    buf_append(out, p, n);
    buf_append(out, "\r\n", 2);
}
