#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hex.h"
#include "util/mem.h"

/* A copy of s[0..n) with %XX decoded (and '+' as space in a query). NULL on a bad escape or a NUL. */
static char *url_unescape(const char *s, size_t n, int query)
{
    char *out = mem_alloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = hex_digit((unsigned char)s[i + 1])) < 0 || (l = hex_digit((unsigned char)s[i + 2])) < 0 ||
                (h == 0 && l == 0)) {
                mem_free(out);
                return NULL;
            }
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else if (query && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

void url_free(url_t *u)
{
    mem_free(u->scheme);
    mem_free(u->user);
    mem_free(u->password);
    mem_free(u->host);
    mem_free(u->path);
    for (int i = 0; i < u->nparams; i++) {
        mem_free(u->params[i].name);
        mem_free(u->params[i].value);
    }
    mem_free(u->params);
    memset(u, 0, sizeof(*u));
    u->port = -1;
}

static int url_parse_query(url_t *u, const char *q, char *err, size_t errlen)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        if (n > 0) {
            const char *eq = memchr(q, '=', n);
            size_t kn = eq ? (size_t)(eq - q) : n;
            char *name = url_unescape(q, kn, 1);
            char *value = eq ? url_unescape(eq + 1, n - kn - 1, 1) : mem_strdup("");
            if (name == NULL || value == NULL || name[0] == '\0') {
                mem_free(name);
                mem_free(value);
                snprintf(err, errlen, "bad query parameter '%.*s'", (int)n, q);
                return -1;
            }
            u->params = mem_realloc(u->params, (size_t)(u->nparams + 1) * sizeof(*u->params));
            u->params[u->nparams++] = (url_param_t){ name, value, 0 };
        }
        q += n + (amp != NULL);
    }
    return 0;
}

int url_parse(url_t *u, const char *text, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->port = -1;

    const char *sep = strstr(text, "://");
    if (sep == NULL || sep == text) {
        snprintf(err, errlen, "'%s' is not a URL (expected scheme://...)", text);
        return -1;
    }
    u->scheme = mem_strndup(text, (size_t)(sep - text));
    for (char *p = u->scheme; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.') {
            snprintf(err, errlen, "'%s': bad character in scheme '%s'", text, u->scheme);
            return -1;
        }
    }

    const char *rest = sep + 3;
    const char *qmark = strchr(rest, '?');
    const char *end = qmark ? qmark : rest + strlen(rest);
    const char *slash = memchr(rest, '/', (size_t)(end - rest));
    const char *auth_end = slash ? slash : end;

    /* authority: [user[:password]@]host[:port] — the last '@' ends the userinfo */
    const char *at = NULL;
    for (const char *p = rest; p < auth_end; p++)
        if (*p == '@')
            at = p;
    const char *host = rest;
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t un = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
        u->user = url_unescape(rest, un, 0);
        if (colon)
            u->password = url_unescape(colon + 1, (size_t)(at - colon - 1), 0);
        if (u->user == NULL || (colon && u->password == NULL)) {
            snprintf(err, errlen, "'%s': bad escape in the user or password", text);
            return -1;
        }
        if (u->user[0] == '\0') {
            mem_free(u->user);
            u->user = NULL;
        }
        host = at + 1;
    }
    const char *port = NULL, *host_end = auth_end;
    if (host < auth_end && *host == '[') {
        const char *rb = memchr(host, ']', (size_t)(auth_end - host));
        if (rb == NULL) {
            snprintf(err, errlen, "'%s': unclosed '[' in the host", text);
            return -1;
        }
        u->host = mem_strndup(host + 1, (size_t)(rb - host - 1));
        if (rb + 1 < auth_end) {
            if (rb[1] != ':') {
                snprintf(err, errlen, "'%s': unexpected text after ']'", text);
                return -1;
            }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(auth_end - host));
        if (colon) {
            host_end = colon;
            port = colon + 1;
        }
        u->host = mem_strndup(host, (size_t)(host_end - host));
    }
    if (port != NULL) {
        char *pend;
        long v = strtol(port, &pend, 10);
        if (port == auth_end || pend != auth_end || v < 0 || v > 65535 || !isdigit((unsigned char)*port)) {
            snprintf(err, errlen, "'%s': the port must be a number between 0 and 65535", text);
            return -1;
        }
        u->port = (int)v;
    }
    u->path = slash ? url_unescape(slash, (size_t)(end - slash), 0) : mem_strdup("");
    if (u->path == NULL) {
        snprintf(err, errlen, "'%s': bad escape in the path", text);
        return -1;
    }
    if (qmark && url_parse_query(u, qmark + 1, err, errlen) < 0)
        return -1;
    return 0;
}

const char *url_param(url_t *u, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < u->nparams; i++) {
        if (strcmp(u->params[i].name, name) == 0) {
            u->params[i].used = 1;
            v = u->params[i].value;     /* the last one wins, as in cachetory's query parsing */
        }
    }
    return v;
}

const url_param_t *url_unused_param(const url_t *u)
{
    for (int i = 0; i < u->nparams; i++)
        if (!u->params[i].used)
            return &u->params[i];
    return NULL;
}

/* Where the userinfo of the URL starting after a "://" at p ends: the last '@' before a space, a
 * quote or the end of the text; NULL when there is none. */
static const char *url_userinfo_end(const char *p)
{
    const char *at = NULL;
    for (; *p && !isspace((unsigned char)*p) && *p != '\'' && *p != '"'; p++)
        if (*p == '@')
            at = p;
    return at;
}

char *url_redact(const char *text)
{
    size_t n = strlen(text), cap = n + 1;
    const char *p = text;

    /* every password is replaced by at most strlen(URL_REDACTED) bytes: count the URLs for the size */
    for (const char *q = strstr(text, "://"); q != NULL; q = strstr(q + 3, "://"))
        cap += sizeof(URL_REDACTED) - 1;
    char *out = mem_alloc(cap), *o = out;

    for (const char *q = strstr(p, "://"); q != NULL; q = strstr(p, "://")) {
        const char *user = q + 3, *at = url_userinfo_end(user);
        const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
        if (colon == NULL) {
            memcpy(o, p, (size_t)(user - p));
            o += user - p;
            p = user;
            continue;
        }
        memcpy(o, p, (size_t)(colon + 1 - p));
        o += colon + 1 - p;
        memcpy(o, URL_REDACTED, sizeof(URL_REDACTED) - 1);
        o += sizeof(URL_REDACTED) - 1;
        p = at;
    }
    size_t rest = strlen(p);
    memcpy(o, p, rest + 1);
    return out;
}

void url_redact_in(char *s, size_t size)
{
    if (s == NULL || size == 0)
        return;
    char *r = url_redact(s);
    snprintf(s, size, "%s", r);
    mem_free(r);
}
