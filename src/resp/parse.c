/*
 * resp/parse: the server side of RESP (see parse.h for the contract).
 *
 * The rules follow redis 7's networking.c (processInlineBuffer, processMultibulkBuffer) and sds.c
 * (sdssplitargs) byte for byte, including the places where redis is lenient or odd, because clients and
 * conformance scripts are written against redis and compare error texts:
 *
 *  - A header line ("*N", "$N") ends at its first '\r'; the byte after the '\r' is skipped without being
 *    looked at, and so are the two bytes after a bulk's payload. "*1\rX$1\r\naYZ" is one command, as in
 *    redis. Checking for "\r\n" would reject input that redis accepts, and the skipped bytes carry no
 *    data; a client that desynchronises is still caught by the next header ("expected '$', got ...").
 *  - redis finds line ends with strchr() on its NUL-terminated query buffer, so a NUL byte before the end
 *    of a header or inline line hides the end: the line stays incomplete until more than
 *    RESP_INLINE_MAX bytes are buffered, then it is "too big". We stop the search at a NUL for the same
 *    result. Bulk payloads are binary safe and never scanned.
 *  - "expected '$', got 'X'" prints the offending byte as is, except '\r' and '\n' which become a space
 *    (redis's addReplyErrorFormat maps them so the reply stays one line).
 *  - "Too big" is only said of a line whose end is not in buf yet. A longer line that is all there is
 *    taken (inline) or is not a number (headers): redis reads 16 KB at a time, so this rarely shows.
 *  - Integers are parsed like redis's string2ll: no sign but '-', no leading zeros, no spaces, at most
 *    20 characters. So "*0" is an empty command but "*-0" and "*00" are invalid.
 *
 * Incremental parsing: p->state says which part of the command comes next. p->consumed is, while a
 * command is incomplete, the offset where the unfinished element starts (the "$N" line being searched,
 * or the payload being waited for); p->pos is how far the search for the end of a line has gone. Both
 * only move forward, so growing input is examined once: a bulk payload costs O(1) per call however many
 * calls it takes to arrive, a header or inline line O(new bytes).
 */
#include "resp/parse.h"

#include "util/hex.h"
#include "util/mem.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* p->state */
enum {
    ST_START = 0,       /* nothing examined: the first byte decides inline or multibulk */
    ST_INLINE,          /* searching the inline line's '\n' */
    ST_MB_COUNT,        /* searching the end of the "*N" line, which starts at 0 */
    ST_BULK_HEAD,       /* searching the end of a "$N" line, which starts at p->consumed */
    ST_BULK_DATA,       /* waiting for p->bulk_len bytes (+2) from p->consumed */
    ST_DONE,            /* RESP_OK was returned; results stay until resp_parse_next() */
    ST_ERROR            /* RESP_ERROR was returned; sticks until resp_parse_init() */
};

#define RESP_DEFAULT_MAX_BULK   (512LL * 1024 * 1024)   /* redis's proto-max-bulk-len */
#define RESP_ARGV_INIT          16      /* first argv allocation, in arguments */
#define RESP_ARGV_KEEP          1024    /* resp_parse_next() keeps an argv up to this size */

static const char err_mbulk_big[] = "ERR Protocol error: too big mbulk count string";
static const char err_bulk_big[] = "ERR Protocol error: too big bulk count string";
static const char err_mbulk_len[] = "ERR Protocol error: invalid multibulk length";
static const char err_mbulk_unauth[] = "ERR Protocol error: unauthenticated multibulk length";
static const char err_bulk_len[] = "ERR Protocol error: invalid bulk length";
static const char err_bulk_unauth[] = "ERR Protocol error: unauthenticated bulk length";
static const char err_inline_big[] = "ERR Protocol error: too big inline request";
static const char err_quotes[] = "ERR Protocol error: unbalanced quotes in request";

/*
 * Set the reset state shared by resp_parse_init() and resp_parse_next(): no command in progress, no
 * results. Limits, argv and an error state are left to the callers.
 */
static void parse_clear(resp_parser_t *p)
{
    p->argc = 0;
    p->consumed = 0;
    p->need = 0;
    p->state = ST_START;
    p->inline_cmd = 0;
    p->multibulk_left = 0;
    p->bulk_len = -1;
    p->pos = 0;
}

/*
 * Start a parser with redis's default limits and no memory. p may hold garbage: nothing in it is read
 * or freed (use resp_parse_deinit() first to reuse a parser, e.g. after an error).
 *
 * authenticated starts at 0, i.e. with redis's pre-AUTH limits: a connection is unauthenticated until
 * the server says otherwise, and the server sets it to 1 at once when no password is configured.
 * Starting closed means a forgotten assignment shows up as a refused big command, not as an
 * unauthenticated client allowed to make the server buffer 512 MB.
 */
void resp_parse_init(resp_parser_t *p)
{
    p->max_bulk_len = RESP_DEFAULT_MAX_BULK;
    p->max_args = INT_MAX;
    p->authenticated = 0;
    p->argv = NULL;
    p->argv_cap = 0;
    p->err = NULL;
    p->errbuf[0] = '\0';
    parse_clear(p);
}

/*
 * Free argv. The parser is left empty (argc 0, argv NULL), so a second deinit is harmless; parse again
 * only after resp_parse_init().
 */
void resp_parse_deinit(resp_parser_t *p)
{
    mem_free(p->argv);
    p->argv = NULL;
    p->argv_cap = 0;
    p->argc = 0;
}

/*
 * Forget the command just returned so that the next one can be parsed from the first byte after it
 * (the caller passes buf + consumed, or drops those bytes). Limits are kept, and so is argv's memory
 * unless one unusually wide command made it large. An error is not forgotten: it sticks until
 * resp_parse_init(), because after a protocol error the connection's input has no defined framing.
 */
void resp_parse_next(resp_parser_t *p)
{
    if (p->state == ST_ERROR)
        return;
    if (p->argv_cap > RESP_ARGV_KEEP) {
        mem_free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
    parse_clear(p);
}

/* Enter the sticky error state with a static message. Returns RESP_ERROR for the caller to return. */
static int parse_fail(resp_parser_t *p, const char *msg)
{
    p->state = ST_ERROR;
    p->err = msg;
    p->argc = 0;
    p->need = 0;
    return RESP_ERROR;
}

/*
 * Append one argument, growing argv geometrically but never past max_more (>= 1, this one included)
 * more arguments than there are now: the rest of a multibulk count, or SIZE_MAX for inline. The growth
 * follows the arguments that actually arrived, so a "*2147483647" header costs nothing until its bytes do.
 */
static void argv_push(resp_parser_t *p, size_t off, size_t len, size_t max_more)
{
    if (p->argc == p->argv_cap) {
        size_t cap = p->argv_cap ? p->argv_cap * 2 : RESP_ARGV_INIT;
        size_t limit = max_more > SIZE_MAX - p->argc ? SIZE_MAX : p->argc + max_more;

        if (cap > limit)
            cap = limit;
        /* Each argument took at least one byte of the caller's buffer, so this cannot really fail. */
        assert(cap > p->argc && cap <= SIZE_MAX / sizeof(resp_arg_t));
        p->argv = mem_realloc(p->argv, cap * sizeof(resp_arg_t));
        p->argv_cap = cap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
}

/*
 * Parse s[0..len) as a long long the way redis's string2ll() does: an optional '-', then "0" alone or a
 * digit 1-9 followed by digits; nothing else, no overflow, at most 20 characters. Returns 1 and sets *v,
 * or 0. Written out rather than strtoll() because strtoll accepts spaces, '+' and leading zeros, which
 * redis refuses, and needs a terminated string.
 */
static int parse_ll(const char *s, size_t len, long long *v)
{
    unsigned long long u;
    size_t i = 0;
    int neg = 0;

    if (len == 0 || len > 20)
        return 0;
    if (len == 1 && s[0] == '0') {
        *v = 0;
        return 1;
    }
    if (s[0] == '-') {
        neg = 1;
        if (++i == len)
            return 0;
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    u = (unsigned long long)(s[i++] - '0');
    for (; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return 0;
        d = (unsigned)(s[i] - '0');
        if (u > (ULLONG_MAX - d) / 10)
            return 0;
        u = u * 10 + d;
    }
    if (neg) {
        if (u > (unsigned long long)LLONG_MAX + 1)
            return 0;
        /* -u without overflowing: u == LLONG_MAX + 1 gives LLONG_MIN */
        *v = u == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)u;
    } else {
        if (u > (unsigned long long)LLONG_MAX)
            return 0;
        *v = (long long)u;
    }
    return 1;
}

/*
 * Search buf[p->pos..len) for the byte c, stopping early at a NUL as redis's strchr() does (see the top
 * of the file). Returns the offset of c, or SIZE_MAX when it is not there yet; p->pos is left where the
 * search stopped so that the next call goes on from there (at a NUL it stays put: the line can never end).
 */
static size_t find_eol(resp_parser_t *p, const char *buf, size_t len, char c)
{
    size_t i;

    for (i = p->pos; i < len; i++) {
        if (buf[i] == c) {
            p->pos = i;
            return i;
        }
        if (buf[i] == '\0')
            break;
    }
    p->pos = i;
    return SIZE_MAX;
}

/* isspace() in the C locale, which sdssplitargs uses between arguments and after a closing quote. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Split the inline line buf[0..end) into arguments like redis's sdssplitargs(), unescaping in place:
 * each argument is written from the offset where it starts in the input, and since an escape or a quote
 * never produces more bytes than it takes, the writer never overtakes the reader. Unquoted arguments
 * are not moved at all. Returns 0, or -1 for unbalanced quotes (buf is then partly rewritten, which does
 * not matter: the error ends the connection).
 *
 * Quirks kept from sdssplitargs: any isspace() byte separates arguments, but inside an unquoted argument
 * only ' ', '\t', '\r' end it ("a\vb" is one argument); a quote may open in the middle of an argument
 * (a"b c" is "ab c") but a closing quote must be followed by a space or the end of the line; "\x" not
 * followed by two hex digits is a plain 'x'.
 */
static int split_inline(resp_parser_t *p, char *buf, size_t end)
{
    size_t r = 0;

/* the byte at i, or NUL past the end, which is where sdssplitargs's string ends */
#define AT(i) ((i) < end ? buf[(i)] : '\0')

    for (;;) {
        size_t start, w;
        int inq = 0, insq = 0;

        while (r < end && is_space(buf[r]))
            r++;
        if (r == end)
            return 0;

        start = w = r;
        for (;;) {
            char c = AT(r);

            if (inq) {
                if (c == '\\' && AT(r + 1) == 'x' && hex_digit(AT(r + 2)) >= 0 && hex_digit(AT(r + 3)) >= 0) {
                    buf[w++] = (char)(hex_digit(buf[r + 2]) * 16 + hex_digit(buf[r + 3]));
                    r += 4;
                } else if (c == '\\' && AT(r + 1) != '\0') {
                    char e = buf[r + 1];

                    switch (e) {
                    case 'n': e = '\n'; break;
                    case 'r': e = '\r'; break;
                    case 't': e = '\t'; break;
                    case 'b': e = '\b'; break;
                    case 'a': e = '\a'; break;
                    default: break;
                    }
                    buf[w++] = e;
                    r += 2;
                } else if (c == '"') {
                    if (AT(r + 1) != '\0' && !is_space(AT(r + 1)))
                        return -1;
                    r++;
                    break;
                } else if (c == '\0') {
                    return -1;
                } else {
                    buf[w++] = c;
                    r++;
                }
            } else if (insq) {
                if (c == '\\' && AT(r + 1) == '\'') {
                    buf[w++] = '\'';
                    r += 2;
                } else if (c == '\'') {
                    if (AT(r + 1) != '\0' && !is_space(AT(r + 1)))
                        return -1;
                    r++;
                    break;
                } else if (c == '\0') {
                    return -1;
                } else {
                    buf[w++] = c;
                    r++;
                }
            } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0') {
                if (c != '\0')
                    r++;
                break;
            } else if (c == '"') {
                inq = 1;
                r++;
            } else if (c == '\'') {
                insq = 1;
                r++;
            } else {
                buf[w++] = c;
                r++;
            }
        }
        argv_push(p, start, w - start, SIZE_MAX);
    }
#undef AT
}

/*
 * ST_INLINE: wait for the '\n' that ends the line, then split it. A '\r' right before the '\n' is not
 * part of the line. Returns RESP_OK, RESP_AGAIN or RESP_ERROR.
 */
static int parse_inline(resp_parser_t *p, char *buf, size_t len)
{
    size_t nl, end;

    nl = find_eol(p, buf, len, '\n');
    if (nl == SIZE_MAX) {
        if (len > RESP_INLINE_MAX)
            return parse_fail(p, err_inline_big);
        p->need = len + 1;
        return RESP_AGAIN;
    }
    end = nl;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    if (split_inline(p, buf, end) < 0)
        return parse_fail(p, err_quotes);
    p->consumed = nl + 1;
    return RESP_OK;
}

/*
 * ST_MB_COUNT: read the "*N" line. N <= 0 is an empty command (RESP_OK, argc 0), as in redis; N > 0
 * moves to the first "$N" line. Returns RESP_OK, RESP_AGAIN (also meaning "go on" when the state
 * changed; the caller loops on the state) or RESP_ERROR.
 */
static int parse_mb_count(resp_parser_t *p, const char *buf, size_t len)
{
    size_t cr;
    long long n;

    cr = find_eol(p, buf, len, '\r');
    if (cr == SIZE_MAX) {
        if (len > RESP_INLINE_MAX)
            return parse_fail(p, err_mbulk_big);
        p->need = len + 1;
        return RESP_AGAIN;
    }
    if (cr + 1 >= len) {                /* the byte after '\r' (skipped, not checked) is not here yet */
        p->need = cr + 2;
        return RESP_AGAIN;
    }
    if (!parse_ll(buf + 1, cr - 1, &n) || n > INT_MAX || n > p->max_args)
        return parse_fail(p, err_mbulk_len);
    if (n > RESP_UNAUTH_MAX_ARGS && !p->authenticated)
        return parse_fail(p, err_mbulk_unauth);

    p->consumed = p->pos = cr + 2;
    if (n <= 0)
        return RESP_OK;
    p->multibulk_left = n;
    p->state = ST_BULK_HEAD;
    return RESP_AGAIN;
}

/*
 * ST_BULK_HEAD: read a "$N" line starting at p->consumed, then wait for the payload. Returns
 * RESP_AGAIN (state changed or more input needed) or RESP_ERROR.
 */
static int parse_bulk_head(resp_parser_t *p, const char *buf, size_t len)
{
    size_t start = p->consumed, cr;
    long long n;

    cr = find_eol(p, buf, len, '\r');
    if (cr == SIZE_MAX) {
        if (len - start > RESP_INLINE_MAX)
            return parse_fail(p, err_bulk_big);
        p->need = len + 1;
        return RESP_AGAIN;
    }
    if (cr + 1 >= len) {
        p->need = cr + 2;
        return RESP_AGAIN;
    }
    if (buf[start] != '$') {
        char got = buf[start];

        if (got == '\r' || got == '\n')
            got = ' ';
        snprintf(p->errbuf, sizeof(p->errbuf), "ERR Protocol error: expected '$', got '%c'", got);
        return parse_fail(p, p->errbuf);
    }
    if (!parse_ll(buf + start + 1, cr - start - 1, &n) || n < 0 || n > p->max_bulk_len)
        return parse_fail(p, err_bulk_len);
    if (n > RESP_UNAUTH_MAX_BULK && !p->authenticated)
        return parse_fail(p, err_bulk_unauth);

    p->consumed = p->pos = cr + 2;
    p->bulk_len = n;
    p->state = ST_BULK_DATA;
    return RESP_AGAIN;
}

/*
 * ST_BULK_DATA: take the payload at p->consumed once it and the two bytes after it are all in buf; the
 * payload is not looked at. Returns RESP_OK after the last argument, otherwise RESP_AGAIN (with p->need
 * set to the end of the payload + 2 when it is not all here).
 */
static int parse_bulk_data(resp_parser_t *p, size_t len)
{
    size_t start = p->consumed;
    unsigned long long want = (unsigned long long)p->bulk_len + 2;

    if (len - start < want) {
        p->need = want > SIZE_MAX - start ? SIZE_MAX : start + (size_t)want;
        return RESP_AGAIN;
    }
    argv_push(p, start, (size_t)p->bulk_len, (size_t)p->multibulk_left);
    p->consumed = p->pos = start + (size_t)want;
    p->bulk_len = -1;
    if (--p->multibulk_left == 0)
        return RESP_OK;
    p->state = ST_BULK_HEAD;
    return RESP_AGAIN;
}

/*
 * Parse one command from buf[0..len); see parse.h for the contract. Returns RESP_OK (p->argv, p->argc,
 * p->consumed set), RESP_AGAIN (p->need set) or RESP_ERROR (p->err set). The state machine runs until it
 * completes the command, runs out of input or fails; each step starts where the previous call stopped,
 * so a caller that calls again with the same bytes plus more pays only for the new bytes. After RESP_OK,
 * and after RESP_ERROR, further calls return the same result without looking at buf.
 */
int resp_parse(resp_parser_t *p, char *buf, size_t len)
{
    int rc;

    if (p->state == ST_ERROR)
        return RESP_ERROR;
    if (p->state == ST_DONE)
        return RESP_OK;
    /* The caller keeps every byte it gave us; less input than was already examined breaks that. */
    assert(len >= p->pos && len >= p->consumed);

    if (p->state == ST_START) {
        if (len == 0) {
            p->need = 1;
            return RESP_AGAIN;
        }
        p->inline_cmd = buf[0] != '*';
        p->state = p->inline_cmd ? ST_INLINE : ST_MB_COUNT;
    }

    for (;;) {
        int state = p->state;

        switch (state) {
        case ST_INLINE:
            rc = parse_inline(p, buf, len);
            break;
        case ST_MB_COUNT:
            rc = parse_mb_count(p, buf, len);
            break;
        case ST_BULK_HEAD:
            rc = parse_bulk_head(p, buf, len);
            break;
        case ST_BULK_DATA:
            rc = parse_bulk_data(p, len);
            break;
        default:
            assert(0 && "resp_parse: bad state");
            return parse_fail(p, "ERR Protocol error: internal parser state");
        }
        if (rc == RESP_OK) {
            p->state = ST_DONE;
            p->need = 0;
            return RESP_OK;
        }
        if (rc == RESP_ERROR || p->state == state)
            return rc;
    }
}
