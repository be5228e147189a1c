/*
 * resp/parse: the server side of RESP — turns the bytes a client sent into commands.
 *
 * Written here rather than taken from hiredis: hiredis's reader parses replies (every RESP type, nested,
 * each element allocated as an object), while a server needs requests (a flat array of bulk strings or
 * an inline line), with the server's limits and redis's exact error texts, and without an allocation per
 * argument. Arguments are returned as offsets into the caller's buffer.
 *
 * The parser does no I/O. The caller keeps the unconsumed input contiguous, starting at the first byte
 * of the current command, and calls resp_parse() with all of it each time more arrives:
 *
 *   RESP_OK     a whole command: p->argc arguments at p->argv (offsets into buf), p->consumed bytes
 *               used. argc may be 0 (an empty inline line, "*0", "*-1"): skip it. Call
 *               resp_parse_next() before parsing the following command.
 *   RESP_AGAIN  the command is not complete. State is kept, so bytes already examined are not scanned
 *               again. p->need is the total number of bytes (from buf) the parser knows it will need
 *               at least — larger than len once a big bulk header was read — so that the caller can grow
 *               its buffer once. Every proper prefix of a valid command gives RESP_AGAIN.
 *   RESP_ERROR  a protocol error; p->err is redis's message without the leading "-" (e.g.
 *               "ERR Protocol error: invalid bulk length"). The error sticks: every later call returns
 *               RESP_ERROR (resp_parse_next() included) until resp_parse_deinit() + resp_parse_init().
 *               The server replies with p->err and closes.
 *
 * Inline commands (a line not starting with '*') are split like redis's sdssplitargs: whitespace
 * separates, "double quotes" understand \n \r \t \b \a \\ \" and \xHH, 'single quotes' only \'. The
 * unquoted arguments are rewritten in place in buf (an argument is never longer unquoted), which is why
 * buf is not const.
 *
 * Like redis, the parser does not look at the byte after the '\r' ending a "*N" / "$N" line, nor at the
 * two bytes after a bulk's payload: they are skipped, so input redis accepts is accepted. Also like redis
 * (which searches with strchr), a NUL byte inside a header or inline line hides its end: the command
 * stays incomplete until more than RESP_INLINE_MAX bytes are buffered, then is "too big". Payloads are
 * binary safe.
 */
#ifndef CACHETORYD_RESP_PARSE_H
#define CACHETORYD_RESP_PARSE_H

#include <stddef.h>

#define RESP_OK     1
#define RESP_AGAIN  0
#define RESP_ERROR (-1)

/* Fixed by the protocol as redis has it. */
#define RESP_INLINE_MAX   (64 * 1024)    /* an inline line, or a "*N" / "$N" header line, at most */
#define RESP_UNAUTH_MAX_ARGS   10        /* before AUTH: "unauthenticated multibulk length" */
#define RESP_UNAUTH_MAX_BULK   16384     /* before AUTH: "unauthenticated bulk length" */

typedef struct resp_arg {
    size_t off;         /* offset of the first byte, from the start of buf */
    size_t len;         /* length in bytes */
} resp_arg_t;

typedef struct resp_parser {
    /* limits, set by the caller (resp_parse_init gives redis's defaults) */
    long long max_bulk_len;     /* proto-max-bulk-len: largest bulk argument (512 MB) */
    long max_args;              /* largest multibulk count accepted (INT_MAX as redis; lower it to bound argv).
                                   Inline commands are not counted, as in redis */
    int authenticated;          /* 0 applies redis's pre-AUTH limits (10 args, 16 KB bulks). init sets
                                   0: set 1 when no password is configured, and after AUTH */

    /* results */
    resp_arg_t *argv;           /* argc arguments; owned by the parser */
    size_t argc;
    size_t consumed;            /* RESP_OK: bytes of buf taken by this command (while incomplete:
                                   private, where the unfinished element starts) */
    size_t need;                /* RESP_AGAIN: bytes needed at least, counted from buf */
    const char *err;            /* RESP_ERROR: message, points into errbuf or static text */

    /* state between calls (private) */
    int state;
    int inline_cmd;             /* the command is inline (its first byte is not '*') */
    long long multibulk_left;   /* arguments still to read */
    long long bulk_len;         /* length of the bulk being read, -1 between bulks */
    size_t pos;                 /* bytes of buf already examined */
    size_t argv_cap;
    char errbuf[80];
} resp_parser_t;

void resp_parse_init(resp_parser_t *p);    /* defaults, empty state; p may be garbage (nothing freed) */
void resp_parse_deinit(resp_parser_t *p);  /* frees argv; init again before reuse */
void resp_parse_next(resp_parser_t *p);    /* forget the command just returned, keep limits */
int resp_parse(resp_parser_t *p, char *buf, size_t len);

#endif
