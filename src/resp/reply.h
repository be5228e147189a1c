/*
 * resp/reply: compose replies in RESP2 or RESP3 into a buffer.
 *
 * Each function appends one reply (or the header of an aggregate, whose elements follow) to out. The
 * proto argument (2 or 3) picks the RESP3 type where redis 7 uses it and the RESP2 fallback otherwise:
 * null ("_" / "$-1"), map ("%" / "*2n"), set ("~" / "*"), double ("," / bulk), boolean ("#" / int),
 * verbatim text ("=" / bulk).
 */
#ifndef CACHETORYD_RESP_REPLY_H
#define CACHETORYD_RESP_REPLY_H

#include <stddef.h>

#include "util/buf.h"

void reply_status(buf_t *out, const char *s);           /* +s */
void reply_error(buf_t *out, const char *msg);          /* -msg; msg starts with its code ("ERR ...") */
void reply_errorf(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_int(buf_t *out, long long v);                /* :v */
void reply_bulk(buf_t *out, const void *p, size_t n);   /* $n p */
void reply_bulk_str(buf_t *out, const char *s);
void reply_bulk_ll(buf_t *out, long long v);            /* the number as a bulk string */
void reply_null(buf_t *out, int proto);                 /* nil bulk */
void reply_null_array(buf_t *out, int proto);           /* nil array (EXEC aborted by WATCH...) */
void reply_array(buf_t *out, size_t n);
void reply_map(buf_t *out, int proto, size_t pairs);
void reply_set(buf_t *out, int proto, size_t n);
void reply_double(buf_t *out, int proto, double d);
void reply_bool(buf_t *out, int proto, int v);
void reply_verbatim(buf_t *out, int proto, const char *p, size_t n);   /* txt: */

/* Shared constant replies. */
#define REPLY_OK(out)     buf_append((out), "+OK\r\n", 5)
#define REPLY_QUEUED(out) buf_append((out), "+QUEUED\r\n", 9)

/* Redis's error texts that more than one command uses. */
#define ERR_SYNTAX      "ERR syntax error"
#define ERR_NOT_INT     "ERR value is not an integer or out of range"
#define ERR_NOT_FLOAT   "ERR value is not a valid float"
#define ERR_OVERFLOW    "ERR increment or decrement would overflow"
#define ERR_WRONGTYPE   "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_NOSUCHKEY   "ERR no such key"
#define ERR_OOM         "OOM command not allowed when used memory > 'maxmemory'."
#define ERR_NOAUTH      "NOAUTH Authentication required."
#define ERR_WRONGPASS   "WRONGPASS invalid username-password pair or user is disabled."

#endif
