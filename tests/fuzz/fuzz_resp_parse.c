/*
 * fuzz_resp_parse: the RESP request parser (src/resp/parse.c) against redis 7 itself.
 *
 * The input is what a client sends: any number of commands, inline or multibulk, possibly cut short. It
 * is parsed under three sets of limits (before AUTH, after AUTH, after AUTH with small max_bulk_len /
 * max_args derived from the input) by the oracle and "whole", and under one of them (chosen by the input)
 * in "pieces":
 *
 *   oracle   redis 7's processInlineBuffer / processMultibulkBuffer / sdssplitargs / string2ll, rewritten
 *            below over a NUL-terminated copy of the whole input, as redis sees its query buffer;
 *   whole    the parser over the whole input in one block of exactly its size: must give the oracle's
 *            commands (argument bytes included) and its final state and error text;
 *   pieces   the same block handed over in growing prefixes (a data-derived split point, chunks of
 *            data-derived sizes, and one byte at a time for short inputs), with the bytes past each prefix
 *            poisoned for ASan: must give exactly what "whole" gives, including the final p->need.
 *
 * Invariants checked on every call: RESP_OK gives consumed in 1..len, arguments inside the command and in
 * order, within the limits; RESP_AGAIN gives need > len and the same answer when asked again; a proper
 * prefix of a command never completes it (one byte at a time, RESP_OK comes exactly when the last byte
 * arrives) and every need seen for a command is <= its consumed; RESP_OK is repeated until
 * resp_parse_next(); RESP_ERROR sticks, through resp_parse_next() too, with a "ERR Protocol error: " text.
 *
 * Splitting is only compared with "whole" up to RESP_INLINE_MAX bytes: beyond, "too big" legitimately
 * depends on how much has arrived (see parse.h).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "resp/parse.h"
#include "util/buf.h"

typedef struct limits {
    int authenticated;
    long long max_bulk_len;
    long max_args;
} limits_t;

/* What a run produced: the commands and how it ended, as bytes that compare with memcmp. */
typedef struct outcome {
    buf_t log;          /* 'C' argc {len bytes}...  per command, then 'A' or 'E' err */
    int final_rc;       /* RESP_AGAIN or RESP_ERROR */
    size_t final_need;  /* RESP_AGAIN: p->need, counted from the start of the input */
    size_t ncmds;
} outcome_t;

static void outcome_init(outcome_t *o)
{
    buf_init(&o->log);
    o->final_rc = RESP_AGAIN;
    o->final_need = 0;
    o->ncmds = 0;
}

static void log_size(outcome_t *o, size_t v)
{
    buf_append(&o->log, &v, sizeof(v));
}

static void log_cmd_start(outcome_t *o, size_t argc)
{
    buf_append(&o->log, "C", 1);
    log_size(o, argc);
    o->ncmds++;
}

static void log_arg(outcome_t *o, const char *s, size_t n)
{
    log_size(o, n);
    buf_append(&o->log, s, n);
}

static void log_again(outcome_t *o, size_t need)
{
    buf_append(&o->log, "A", 1);
    o->final_rc = RESP_AGAIN;
    o->final_need = need;
}

static void log_error(outcome_t *o, const char *err)
{
    buf_append(&o->log, "E", 1);
    buf_append_str(&o->log, err);
    o->final_rc = RESP_ERROR;
}

/* Print a log readably, for the report of a mismatch. */
static void log_dump(const char *name, const outcome_t *o)
{
    const char *p = o->log.data, *end = p + o->log.len;

    fprintf(stderr, "--- %s (%zu commands):\n", name, o->ncmds);
    while (p != NULL && p < end) {
        char t = *p++;
        size_t v;

        if (t == 'C') {
            memcpy(&v, p, sizeof(v));
            p += sizeof(v);
            fprintf(stderr, "  cmd argc=%zu:", v);
            for (size_t i = 0, argc = v; i < argc; i++) {
                memcpy(&v, p, sizeof(v));
                p += sizeof(v);
                fprintf(stderr, " \"");
                for (size_t k = 0; k < v && k < 40; k++)
                    fprintf(stderr, (unsigned char)p[k] >= 32 && (unsigned char)p[k] < 127 ? "%c" : "\\x%02x",
                            (unsigned char)p[k]);
                fprintf(stderr, "%s\"(%zu)", v > 40 ? "..." : "", v);
                p += v;
            }
            fputc('\n', stderr);
        } else if (t == 'A') {
            fprintf(stderr, "  AGAIN need=%zu\n", o->final_need);
        } else {
            fprintf(stderr, "  ERROR %.*s\n", (int)(end - p), p);
            break;
        }
    }
}

static void outcome_compare(const char *what, const outcome_t *want, const char *wname, const outcome_t *got,
                            const char *gname, int with_need)
{
    int same = want->log.len == got->log.len &&
               (want->log.len == 0 || memcmp(want->log.data, got->log.data, want->log.len) == 0) &&
               (!with_need || want->final_rc != RESP_AGAIN || want->final_need == got->final_need);
    if (!same) {
        log_dump(wname, want);
        log_dump(gname, got);
    }
    FUZZ_CHECK(same, "%s: %s and %s disagree (see above)", what, wname, gname);
}

/* -------------------------------------------------------------------------------------------------
 * The oracle: redis 7.2 src/networking.c and src/sds.c, over a NUL-terminated copy of all the input
 * ----------------------------------------------------------------------------------------------- */

/* util.c string2ll */
static int ref_string2ll(const char *s, size_t slen, long long *value)
{
    const char *p = s;
    size_t plen = 0;
    int negative = 0;
    unsigned long long v;

    if (plen == slen || slen >= 21)
        return 0;
    if (slen == 1 && p[0] == '0') {
        *value = 0;
        return 1;
    }
    if (p[0] == '-') {
        negative = 1;
        p++;
        plen++;
        if (plen == slen)
            return 0;
    }
    if (p[0] >= '1' && p[0] <= '9') {
        v = (unsigned long long)(p[0] - '0');
        p++;
        plen++;
    } else {
        return 0;
    }
    while (plen < slen && p[0] >= '0' && p[0] <= '9') {
        if (v > (ULLONG_MAX / 10))
            return 0;
        v *= 10;
        if (v > (ULLONG_MAX - (unsigned long long)(p[0] - '0')))
            return 0;
        v += (unsigned long long)(p[0] - '0');
        p++;
        plen++;
    }
    if (plen < slen)
        return 0;
    if (negative) {
        if (v > ((unsigned long long)(-(LLONG_MIN + 1)) + 1))
            return 0;
        *value = (long long)(0 - v);
    } else {
        if (v > LLONG_MAX)
            return 0;
        *value = (long long)v;
    }
    return 1;
}

static int ref_is_hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ref_hex_digit_to_int(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* isspace() in the C locale, as sdssplitargs calls it on a (signed) char */
static int ref_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* A growing token (plain code: the harness is not instrumented for coverage, buf_t is). */
typedef struct tok {
    char *s;
    size_t len, cap;
} tok_t;

static void tok_add(tok_t *t, const void *c, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, c, n);
    t->len += n;
}

/* sds.c sdssplitargs, writing the arguments to a scratch log: 0, or -1 for unbalanced quotes. */
static int ref_splitargs(const char *line, buf_t *args, size_t *argc)
{
    const char *p = line;
    tok_t cur = { NULL, 0, 0 };

    *argc = 0;
    for (;;) {
        while (*p && ref_isspace(*p))
            p++;
        if (!*p) {
            free(cur.s);
            return 0;
        }

        int inq = 0, insq = 0, done = 0;
        cur.len = 0;
        while (!done) {
            if (inq) {
                if (*p == '\\' && *(p + 1) == 'x' && ref_is_hex_digit(*(p + 2)) && ref_is_hex_digit(*(p + 3))) {
                    unsigned char byte = (unsigned char)(ref_hex_digit_to_int(*(p + 2)) * 16 +
                                                         ref_hex_digit_to_int(*(p + 3)));
                    tok_add(&cur, &byte, 1);
                    p += 3;
                } else if (*p == '\\' && *(p + 1)) {
                    char c;
                    p++;
                    switch (*p) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = *p; break;
                    }
                    tok_add(&cur, &c, 1);
                } else if (*p == '"') {
                    if (*(p + 1) && !ref_isspace(*(p + 1)))
                        goto err;
                    done = 1;
                } else if (!*p) {
                    goto err;
                } else {
                    tok_add(&cur, p, 1);
                }
            } else if (insq) {
                if (*p == '\\' && *(p + 1) == '\'') {
                    p++;
                    tok_add(&cur, "'", 1);
                } else if (*p == '\'') {
                    if (*(p + 1) && !ref_isspace(*(p + 1)))
                        goto err;
                    done = 1;
                } else if (!*p) {
                    goto err;
                } else {
                    tok_add(&cur, p, 1);
                }
            } else {
                switch (*p) {
                case ' ': case '\n': case '\r': case '\t': case '\0':
                    done = 1;
                    break;
                case '"':
                    inq = 1;
                    break;
                case '\'':
                    insq = 1;
                    break;
                default:
                    tok_add(&cur, p, 1);
                    break;
                }
            }
            if (*p)
                p++;
        }
        buf_append(args, &cur.len, sizeof(cur.len));
        buf_append(args, cur.s, cur.len);
        (*argc)++;
        continue;
err:
        free(cur.s);
        return -1;
    }
}

#define REF_OK 1
#define REF_AGAIN 0
#define REF_ERR (-1)

/* networking.c processInlineBuffer */
static int ref_inline(const char *q, size_t qlen, size_t *qb_pos, outcome_t *o, const char **err)
{
    const char *newline = strchr(q + *qb_pos, '\n');

    if (newline == NULL) {
        if (qlen - *qb_pos > RESP_INLINE_MAX) {
            *err = "ERR Protocol error: too big inline request";
            return REF_ERR;
        }
        return REF_AGAIN;
    }
    const char *start = q + *qb_pos, *end = newline;
    if (end != start && *(end - 1) == '\r')
        end--;

    char *line = malloc((size_t)(end - start) + 1);
    memcpy(line, start, (size_t)(end - start));
    line[end - start] = '\0';
    buf_t args;
    size_t argc;
    buf_init(&args);
    int rc = ref_splitargs(line, &args, &argc);
    free(line);
    if (rc < 0) {
        buf_deinit(&args);
        *err = "ERR Protocol error: unbalanced quotes in request";
        return REF_ERR;
    }
    log_cmd_start(o, argc);
    buf_append(&o->log, args.data, args.len);
    buf_deinit(&args);
    *qb_pos = (size_t)(newline - q) + 1;
    return REF_OK;
}

/* networking.c processMultibulkBuffer, for one call that sees all the input (so its multibulklen and
 * bulklen start at 0 / -1 for every command) */
static int ref_multibulk(const char *q, size_t qlen, size_t *qb_pos_io, const limits_t *lim, outcome_t *o,
                         const char **err, char *errbuf, size_t errlen)
{
    size_t qb_pos = *qb_pos_io;
    const char *newline;
    long long ll, multibulklen, bulklen = -1;
    buf_t args;
    size_t argc = 0;

    newline = strchr(q + qb_pos, '\r');
    if (newline == NULL) {
        if (qlen - qb_pos > RESP_INLINE_MAX) {
            *err = "ERR Protocol error: too big mbulk count string";
            return REF_ERR;
        }
        return REF_AGAIN;
    }
    if (newline - (q + qb_pos) > (ptrdiff_t)(qlen - qb_pos) - 2)
        return REF_AGAIN;
    if (!ref_string2ll(q + 1 + qb_pos, (size_t)(newline - (q + 1 + qb_pos)), &ll) || ll > INT_MAX ||
        ll > lim->max_args) {
        *err = "ERR Protocol error: invalid multibulk length";
        return REF_ERR;
    } else if (ll > 10 && !lim->authenticated) {
        *err = "ERR Protocol error: unauthenticated multibulk length";
        return REF_ERR;
    }
    qb_pos = (size_t)(newline - q) + 2;
    if (ll <= 0) {
        log_cmd_start(o, 0);
        *qb_pos_io = qb_pos;
        return REF_OK;
    }
    multibulklen = ll;

    buf_init(&args);
    while (multibulklen) {
        if (bulklen == -1) {
            newline = strchr(q + qb_pos, '\r');
            if (newline == NULL) {
                if (qlen - qb_pos > RESP_INLINE_MAX) {
                    *err = "ERR Protocol error: too big bulk count string";
                    buf_deinit(&args);
                    return REF_ERR;
                }
                break;
            }
            if (newline - (q + qb_pos) > (ptrdiff_t)(qlen - qb_pos) - 2)
                break;
            if (q[qb_pos] != '$') {
                /* addReplyErrorFormat turns \r and \n into spaces */
                char got = q[qb_pos] == '\r' || q[qb_pos] == '\n' ? ' ' : q[qb_pos];
                snprintf(errbuf, errlen, "ERR Protocol error: expected '$', got '%c'", got);
                *err = errbuf;
                buf_deinit(&args);
                return REF_ERR;
            }
            if (!ref_string2ll(q + qb_pos + 1, (size_t)(newline - (q + qb_pos + 1)), &ll) || ll < 0 ||
                ll > lim->max_bulk_len) {
                *err = "ERR Protocol error: invalid bulk length";
                buf_deinit(&args);
                return REF_ERR;
            } else if (ll > 16384 && !lim->authenticated) {
                *err = "ERR Protocol error: unauthenticated bulk length";
                buf_deinit(&args);
                return REF_ERR;
            }
            qb_pos = (size_t)(newline - q) + 2;
            bulklen = ll;
        }
        if (qlen - qb_pos < (size_t)(bulklen + 2)) {
            break;
        } else {
            size_t len = (size_t)bulklen;
            buf_append(&args, &len, sizeof(len));
            buf_append(&args, q + qb_pos, len);
            argc++;
            qb_pos += (size_t)bulklen + 2;
            bulklen = -1;
            multibulklen--;
        }
    }
    if (multibulklen == 0) {
        log_cmd_start(o, argc);
        buf_append(&o->log, args.data, args.len);
        buf_deinit(&args);
        *qb_pos_io = qb_pos;
        return REF_OK;
    }
    buf_deinit(&args);
    return REF_AGAIN;
}

/* processInputBuffer over everything at once. */
static void ref_run(const uint8_t *data, size_t n, const limits_t *lim, outcome_t *o)
{
    char *q = malloc(n + 1);
    size_t qb_pos = 0;
    char errbuf[80];

    memcpy(q, data, n);
    q[n] = '\0';
    for (;;) {
        const char *err = NULL;
        int rc;

        if (qb_pos == n) {
            log_again(o, 0);
            break;
        }
        if (q[qb_pos] == '*')
            rc = ref_multibulk(q, n, &qb_pos, lim, o, &err, errbuf, sizeof(errbuf));
        else
            rc = ref_inline(q, n, &qb_pos, o, &err);
        if (rc == REF_AGAIN) {
            log_again(o, 0);
            break;
        }
        if (rc == REF_ERR) {
            log_error(o, err);
            break;
        }
    }
    free(q);
}

/* -------------------------------------------------------------------------------------------------
 * The parser under test
 * ----------------------------------------------------------------------------------------------- */

static void start(resp_parser_t *p, const limits_t *lim)
{
    resp_parse_init(p);
    p->authenticated = lim->authenticated;
    p->max_bulk_len = lim->max_bulk_len;
    p->max_args = lim->max_args;
}

/* RESP_OK from a call with len bytes at buf: check the result and log it. */
static void check_ok(resp_parser_t *p, char *buf, size_t len, const limits_t *lim, outcome_t *o)
{
    FUZZ_CHECK(p->consumed >= 1 && p->consumed <= len, "consumed %zu, len %zu", p->consumed, len);
    FUZZ_CHECK(p->argc == 0 || p->argv != NULL, "argc %zu with no argv", p->argc);
    size_t prev_end = 0;
    for (size_t i = 0; i < p->argc; i++) {
        const resp_arg_t *a = &p->argv[i];
        FUZZ_CHECK(a->off <= p->consumed && a->len <= p->consumed - a->off,
                   "argv[%zu] = {%zu, %zu} outside the command's %zu bytes", i, a->off, a->len, p->consumed);
        FUZZ_CHECK(a->off >= prev_end, "argv[%zu] at %zu overlaps the previous argument (ends at %zu)", i,
                   a->off, prev_end);
        prev_end = a->off + a->len;
        if (!p->inline_cmd) {
            FUZZ_CHECK((long long)a->len <= p->max_bulk_len, "bulk of %zu > max_bulk_len", a->len);
            FUZZ_CHECK(lim->authenticated || a->len <= RESP_UNAUTH_MAX_BULK, "unauthenticated bulk of %zu", a->len);
        }
    }
    if (!p->inline_cmd) {
        FUZZ_CHECK((long long)p->argc <= p->max_args, "argc %zu > max_args %ld", p->argc, p->max_args);
        FUZZ_CHECK(lim->authenticated || p->argc <= RESP_UNAUTH_MAX_ARGS, "unauthenticated argc %zu", p->argc);
    }

    log_cmd_start(o, p->argc);
    for (size_t i = 0; i < p->argc; i++)
        log_arg(o, buf + p->argv[i].off, p->argv[i].len);

    /* RESP_OK is repeated, unchanged, until resp_parse_next() */
    size_t argc = p->argc, consumed = p->consumed;
    FUZZ_CHECK(resp_parse(p, buf, len) == RESP_OK && p->argc == argc && p->consumed == consumed,
               "a second call after RESP_OK changed the result");
}

/* RESP_ERROR: check the message and that it sticks. */
static void check_error(resp_parser_t *p, char *buf, size_t len, outcome_t *o)
{
    FUZZ_CHECK(p->err != NULL && strncmp(p->err, "ERR Protocol error: ", 20) == 0, "error text '%s'",
               p->err ? p->err : "(null)");
    log_error(o, p->err);
    FUZZ_CHECK(resp_parse(p, buf, len) == RESP_ERROR, "error did not stick");
    resp_parse_next(p);
    FUZZ_CHECK(resp_parse(p, buf, len) == RESP_ERROR, "error did not stick through resp_parse_next");
    FUZZ_CHECK(resp_parse(p, buf, 0) == RESP_ERROR, "error did not stick on empty input");
}

/* RESP_AGAIN from a call with len bytes: need is beyond len, and (if repeat) a repeated call says the same. */
static void check_again(resp_parser_t *p, char *buf, size_t len, int repeat)
{
    size_t need = p->need;
    FUZZ_CHECK(need > len, "RESP_AGAIN with need %zu <= len %zu", need, len);
    FUZZ_CHECK(!repeat || (resp_parse(p, buf, len) == RESP_AGAIN && p->need == need),
               "a repeated call changed RESP_AGAIN");
}

/* The whole input in one block of exactly n bytes. */
static void run_whole(const uint8_t *data, size_t n, const limits_t *lim, outcome_t *o)
{
    resp_parser_t p;
    char *block = malloc(n ? n : 1);
    size_t base = 0;

    memcpy(block, data, n);
    start(&p, lim);
    for (;;) {
        int rc = resp_parse(&p, block + base, n - base);
        if (rc == RESP_OK) {
            check_ok(&p, block + base, n - base, lim, o);
            base += p.consumed;
            resp_parse_next(&p);
        } else if (rc == RESP_AGAIN) {
            check_again(&p, block + base, n - base, 1);
            log_again(o, base + p.need);
            break;
        } else {
            FUZZ_CHECK(rc == RESP_ERROR, "resp_parse returned %d", rc);
            check_error(&p, block + base, n - base, o);
            break;
        }
    }
    resp_parse_deinit(&p);
    free(block);
}

/*
 * The same block, of which only limits[0], limits[1], ... bytes (increasing, the last = n) have arrived
 * in turn; the bytes not arrived yet are poisoned (and unpoisoned as they arrive). every_byte: limits
 * are 1, 2, ... n, so a command must complete exactly when its last byte arrives.
 */
static void run_pieces(const uint8_t *data, size_t n, const limits_t *lim, const size_t *limits, size_t nlimits,
                       int every_byte, outcome_t *o)
{
    resp_parser_t p;
    char *block = malloc(n ? n : 1);
    size_t base = 0, li = 0, max_need = 0;

    memcpy(block, data, n);
    start(&p, lim);
    FUZZ_POISON(block + limits[0], n - limits[0]);
    for (;;) {
        size_t limit = limits[li];
        size_t len = limit - base;

        int rc = resp_parse(&p, block + base, len);
        if (rc == RESP_OK) {
            check_ok(&p, block + base, len, lim, o);
            FUZZ_CHECK(max_need <= p.consumed, "need %zu was more than the command's %zu bytes", max_need,
                       p.consumed);
            FUZZ_CHECK(!every_byte || p.consumed == len,
                       "one byte at a time: command of %zu bytes completed after %zu", p.consumed, len);
            base += p.consumed;
            max_need = 0;
            resp_parse_next(&p);
        } else if (rc == RESP_AGAIN) {
            check_again(&p, block + base, len, !every_byte);
            if (p.need > max_need)
                max_need = p.need;
            if (li + 1 == nlimits) {
                log_again(o, base + p.need);
                break;
            }
            li++;
            FUZZ_UNPOISON(block + limit, limits[li] - limit);
        } else {
            FUZZ_CHECK(rc == RESP_ERROR, "resp_parse returned %d", rc);
            check_error(&p, block + base, len, o);
            break;
        }
    }
    FUZZ_UNPOISON(block, n);
    resp_parse_deinit(&p);
    free(block);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    uint64_t h = fuzz_hash(data, n);
    limits_t lims[3] = {
        { 0, 512LL * 1024 * 1024, INT_MAX },                                /* resp_parse_init's, before AUTH */
        { 1, 512LL * 1024 * 1024, INT_MAX },                                /* after AUTH */
        { 1, (long long)(h % 97), (long)(1 + (h >> 8) % 7) },               /* small limits */
    };
    outcome_t whole[3];

    /* every set of limits: the parser in one piece against redis */
    for (int li = 0; li < 3; li++) {
        outcome_t oracle;

        outcome_init(&oracle);
        outcome_init(&whole[li]);
        ref_run(data, n, &lims[li], &oracle);
        run_whole(data, n, &lims[li], &whole[li]);
        outcome_compare("whole input", &oracle, "redis", &whole[li], "parser", 0);
        buf_deinit(&oracle.log);
    }

    /* one set of limits, chosen by the input: the parser in pieces against the parser in one piece */
    if (n <= RESP_INLINE_MAX) {
        int li = (int)((h >> 16) % 3);
        const limits_t *lim = &lims[li];
        size_t *limits = malloc(sizeof(size_t) * (n + 2));
        outcome_t pieces;
        size_t nl = 0;
        uint64_t r = h * 0x9E3779B97F4A7C15ULL + 1;

        /* a data-derived split point */
        outcome_init(&pieces);
        if (n > 0) {
            limits[nl++] = (size_t)(r % (n + 1));
            if (limits[0] == 0 || limits[0] == n)
                nl = 0;
        }
        limits[nl++] = n;
        run_pieces(data, n, lim, limits, nl, 0, &pieces);
        outcome_compare("split in two", &whole[li], "whole", &pieces, "two pieces", 1);
        buf_deinit(&pieces.log);

        /* chunks of data-derived sizes */
        static const size_t max_chunk[] = { 2, 3, 8, 64, 1024 };
        size_t mc = max_chunk[(r >> 32) % 5], at = 0;
        outcome_init(&pieces);
        nl = 0;
        while (at < n) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t c = 1 + (size_t)((r >> 33) % mc);
            at = c > n - at ? n : at + c;
            limits[nl++] = at;
        }
        if (nl == 0)
            limits[nl++] = 0;
        run_pieces(data, n, lim, limits, nl, 0, &pieces);
        outcome_compare("chunks", &whole[li], "whole", &pieces, "chunks", 1);
        buf_deinit(&pieces.log);

        /* one byte at a time */
        if (n <= 1024) {
            outcome_init(&pieces);
            nl = 0;
            for (size_t i = 1; i <= n; i++)
                limits[nl++] = i;
            if (nl == 0)
                limits[nl++] = 0;
            run_pieces(data, n, lim, limits, nl, 1, &pieces);
            outcome_compare("one byte at a time", &whole[li], "whole", &pieces, "bytes", 1);
            buf_deinit(&pieces.log);
        }
        free(limits);
    }
    for (int li = 0; li < 3; li++)
        buf_deinit(&whole[li].log);
    return 0;
}
