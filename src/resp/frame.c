/*
 * resp/frame: the boundaries of RESP2 / RESP3 replies (see frame.h).
 *
 * The scan moves element by element. pos only ever passes whole header lines and whole blobs, so a scan
 * that runs out of bytes stops at the start of a line (examined again, at most RESP_FRAME_LINE_MAX
 * bytes, when more arrive) or inside a blob's payload, whose remaining length is kept (blob_left).
 */
#include "resp/frame.h"

#include <stdio.h>
#include <string.h>

static int fail(resp_frame_t *f, const char *why)
{
    snprintf(f->err, sizeof(f->err), "Protocol error: %s", why);
    return RESP_FRAME_ERROR;
}

void resp_frame_init(resp_frame_t *f, long long blob_max, long long count_max)
{
    memset(f, 0, sizeof(*f));
    f->blob_max = blob_max;
    f->count_max = count_max;
    f->blob_left = -1;
}

void resp_frame_next(resp_frame_t *f)
{
    if (f->err[0] != '\0')
        return;
    f->pos = 0;
    f->depth = 0;
    f->blob_left = -1;
}

/* A decimal integer of a header, the whole of p[0..n). 0, or -1 if it is not one. */
static int parse_ll(const char *p, size_t n, long long *out)
{
    int neg = 0;
    long long v = 0;

    if (n > 0 && p[0] == '-') {
        neg = 1;
        p++;
        n--;
    }
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* An element just ended at f->pos: count it in the aggregates that hold it. 1 when the frame is whole. */
static int element_done(resp_frame_t *f)
{
    while (f->depth > 0) {
        int top = f->depth - 1;
        if (--f->left[top] > 0)
            return 0;
        f->depth--;
        if (f->attr[top])
            return 0;               /* the value the attribute describes comes next, at the same level */
    }
    return 1;
}

int resp_frame_scan(resp_frame_t *f, const char *buf, size_t len)
{
    if (f->err[0] != '\0')
        return RESP_FRAME_ERROR;
    for (;;) {
        if (f->blob_left >= 0) {
            if ((unsigned long long)(len - f->pos) < (unsigned long long)f->blob_left)
                return RESP_FRAME_AGAIN;
            size_t end = f->pos + (size_t)f->blob_left;
            if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                return fail(f, "a blob is not followed by CRLF");
            f->pos = end;
            f->blob_left = -1;
            if (element_done(f))
                return RESP_FRAME_DONE;
            continue;
        }
        if (f->pos >= len)
            return RESP_FRAME_AGAIN;
        /* the header line: the type byte to CRLF */
        const char *line = buf + f->pos;
        size_t avail = len - f->pos;
        size_t look = avail < RESP_FRAME_LINE_MAX ? avail : RESP_FRAME_LINE_MAX;
        const char *cr = look > 1 ? memchr(line + 1, '\r', look - 1) : NULL;
        if (cr == NULL)
            return avail >= RESP_FRAME_LINE_MAX ? fail(f, "a line is too long") : RESP_FRAME_AGAIN;
        size_t body = (size_t)(cr - line) - 1;          /* between the type byte and CR */
        if ((size_t)(cr - line) + 1 >= avail)
            return RESP_FRAME_AGAIN;                    /* the LF is not here yet */
        if (cr[1] != '\n')
            return fail(f, "a line ends with CR but no LF");
        const char *p = line + 1;
        size_t next = f->pos + body + 3;
        long long n = 0;
        int type = (unsigned char)line[0];

        switch (type) {
        case '+': case '-': case '_': case ',': case '(':
            f->pos = next;
            break;
        case ':':
            if (parse_ll(p, body, &n) < 0)
                return fail(f, "an integer is not one");
            f->pos = next;
            break;
        case '#':
            if (body != 1 || (p[0] != 't' && p[0] != 'f'))
                return fail(f, "a boolean is neither t nor f");
            f->pos = next;
            break;
        case '$': case '!': case '=':
            if (parse_ll(p, body, &n) < 0 || n < -1 || (n == -1 && type != '$'))
                return fail(f, "a blob length is not one");
            if (n > f->blob_max)
                return fail(f, "a blob is longer than allowed");
            f->pos = next;
            if (n >= 0) {
                f->blob_left = n + 2;
                continue;
            }
            break;
        case '*': case '~': case '>': case '%': case '|':
            if (parse_ll(p, body, &n) < 0 || n < -1 || (n == -1 && type != '*'))
                return fail(f, "an aggregate count is not one");
            if (n > f->count_max)
                return fail(f, "an aggregate has more elements than allowed");
            f->pos = next;
            if (n > 0) {
                if (f->depth == RESP_FRAME_DEPTH)
                    return fail(f, "aggregates nested too deep");
                f->left[f->depth] = (type == '%' || type == '|') ? 2 * n : n;
                f->attr[f->depth] = type == '|';
                f->depth++;
                continue;
            }
            if (type == '|')
                continue;               /* an empty attribute: the value still comes */
            break;
        default:
            return fail(f, "unknown reply type");
        }
        if (element_done(f))
            return RESP_FRAME_DONE;
    }
}
