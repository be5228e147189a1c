/*
 * url: cachetory's URLs — scheme(+scheme)://[user[:password]@]host[:port][/path][?name=value&...].
 *
 * Used for codec chains ("msgpack+zstd://?compression-level=3") and backends ("redis://:pw@host:6379/0",
 * "redis+unix:///run/redis.sock?db=1"). Percent-escapes are decoded in the user, password, path and the
 * query's names and values. Nothing is validated beyond the syntax: each user of a URL checks its
 * scheme and parameters and names the ones it does not know.
 */
#ifndef CACHETORYD_URL_H
#define CACHETORYD_URL_H

#include <stddef.h>

typedef struct url_param {
    char *name;
    char *value;                /* "" for a bare "?name" */
    int used;                   /* set by the consumer, so leftovers can be reported as unknown */
} url_param_t;

typedef struct url {
    char *scheme;               /* lower case, with its '+' parts: "msgpack+zstd" */
    char *user;                 /* NULL if absent */
    char *password;             /* NULL if absent */
    char *host;                 /* "" if absent; IPv6 without brackets */
    int port;                   /* -1 if absent */
    char *path;                 /* "" if absent, else starting with '/' */
    url_param_t *params;
    int nparams;
} url_t;

/* Parse text into u. 0, or -1 with a message in err. url_free(u) either way. */
int url_parse(url_t *u, const char *text, char *err, size_t errlen);
void url_free(url_t *u);

/* The value of parameter name (marking it used), or NULL. */
const char *url_param(url_t *u, const char *name);

/* The first parameter not marked used, or NULL. */
const url_param_t *url_unused_param(const url_t *u);

/*
 * Redaction: the one place that decides how a URL is shown to anyone but the code that connects with
 * it (INFO, CONFIG GET, logs, error messages, metrics). In text, every "scheme://user:password@" has its
 * password replaced by "***" ("redis://app:***@host:6379/0"); the rest of the text is kept as it is.
 * It works on the text, not on a parse, so that a URL too malformed to parse (the subject of an error
 * message) is redacted too: the userinfo runs from "://" to the last '@' before a space, a quote or
 * the end, and its password from its first ':'. A URL without a password is unchanged.
 *
 * url_redact returns a new string (mem_free it); url_redact_in rewrites s (of size bytes) in place,
 * cutting the result to fit.
 */
#define URL_REDACTED "***"
char *url_redact(const char *text);
void url_redact_in(char *s, size_t size);

#endif
