/*
 * fuzz_url: the URL parser (src/url.c), and what is built on it: a codec chain's URL (chain_create), and
 * config_parse_memory, which chain parameters use.
 *
 * The input is the URL text (up to its first NUL, as a C string). Checked: url_parse returns 0 or -1; on
 * -1 a message that fits err (also with a small err); on 0 a lower-case scheme of the allowed characters
 * and at least one byte, a host and path that are never NULL, a path "" or starting with '/', a port of
 * -1..65535, parameters with non-empty names and non-NULL values, url_param finding the last value of a
 * name and marking it used; url_free leaves an empty url. chain_create gives a chain or NULL with a
 * message starting "serializer '"; a chain's URL is the text.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chain.h"
#include "config.h"
#include "fuzz.h"
#include "url.h"

static void check_err(const char *err, size_t errlen, const char *what)
{
    FUZZ_CHECK(memchr(err, '\0', errlen) != NULL, "%s: message not terminated", what);
    FUZZ_CHECK(err[0] != '\0', "%s: failed without a message", what);
}

static void check_url(url_t *u)
{
    FUZZ_CHECK(u->scheme != NULL && u->scheme[0] != '\0', "empty scheme");
    for (const char *p = u->scheme; *p; p++)
        FUZZ_CHECK(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.',
                   "scheme '%s' has byte 0x%02x", u->scheme, (unsigned char)*p);
    FUZZ_CHECK(u->host != NULL, "NULL host");
    FUZZ_CHECK(u->path != NULL && (u->path[0] == '\0' || u->path[0] == '/'), "path '%s'",
               u->path ? u->path : "(null)");
    FUZZ_CHECK(u->port >= -1 && u->port <= 65535, "port %d", u->port);
    FUZZ_CHECK(u->nparams >= 0 && (u->nparams == 0 || u->params != NULL), "nparams %d", u->nparams);
    for (int i = 0; i < u->nparams; i++) {
        FUZZ_CHECK(u->params[i].name != NULL && u->params[i].name[0] != '\0', "parameter %d has no name", i);
        FUZZ_CHECK(u->params[i].value != NULL, "parameter %d has a NULL value", i);
        FUZZ_CHECK(!u->params[i].used, "parameter %d used before anyone asked", i);
    }
    /* url_param: the last value of each name, and marks every parameter of that name used */
    for (int i = 0; i < u->nparams; i++) {
        const char *name = u->params[i].name;
        int last = i;
        for (int k = i + 1; k < u->nparams; k++)
            if (strcmp(u->params[k].name, name) == 0)
                last = k;
        const char *v = url_param(u, name);
        FUZZ_CHECK(v == u->params[last].value, "url_param('%s') is not the last value", name);
        for (int k = 0; k < u->nparams; k++)
            FUZZ_CHECK(strcmp(u->params[k].name, name) != 0 || u->params[k].used, "'%s' not marked used", name);
        const url_param_t *un = url_unused_param(u);
        FUZZ_CHECK(un == NULL || !un->used, "url_unused_param gave a used parameter");
    }
    FUZZ_CHECK(url_unused_param(u) == NULL, "a parameter left unused after asking for every name");
    FUZZ_CHECK(url_param(u, "") == NULL, "a parameter with an empty name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *text = malloc(n + 1);
    char err[256], small[12];
    url_t u;

    memcpy(text, data, n);
    text[n] = '\0';

    int rc = url_parse(&u, text, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "url_parse returned %d", rc);
    if (rc == 0)
        check_url(&u);
    else
        check_err(err, sizeof(err), "url_parse");
    url_free(&u);
    FUZZ_CHECK(u.scheme == NULL && u.host == NULL && u.path == NULL && u.params == NULL && u.nparams == 0 &&
               u.port == -1, "url_free left something");
    url_free(&u);                       /* twice is harmless */

    int rc2 = url_parse(&u, text, small, sizeof(small));
    FUZZ_CHECK(rc2 == rc, "url_parse depends on the size of err (%d, %d)", rc, rc2);
    if (rc2 < 0)
        check_err(small, sizeof(small), "url_parse with a small err");
    url_free(&u);

    /* a chain named by the text; the largest value 1 MiB */
    chain_t *ch = chain_create(text, 1 << 20, err, sizeof(err));
    if (ch != NULL) {
        FUZZ_CHECK(rc == 0, "chain_create accepted a URL that url_parse refuses");
        FUZZ_CHECK(strcmp(chain_url(ch), text) == 0, "chain_url is not the text");
        FUZZ_CHECK(chain_max_decoded(ch) >= 1, "max-decoded-size 0");
        chain_ctx_t *ctx = chain_ctx_get(ch);
        FUZZ_CHECK(ctx != NULL, "no context");
        chain_ctx_put(ch, ctx);
        chain_destroy(ch);
    } else {
        check_err(err, sizeof(err), "chain_create");
        FUZZ_CHECK(strncmp(err, "serializer '", 12) == 0, "chain_create message '%s'", err);
    }

    long long v;
    if (config_parse_memory(text, &v) == 0)
        FUZZ_CHECK(v >= 0, "config_parse_memory('%s') = %lld", text, v);

    free(text);
    return 0;
}
