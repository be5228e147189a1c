/*
 * fuzz_chain: codec chains (src/codec/chain.c) — the layers run right to left on read, left to right on
 * write, with their parameters (strict, compression-min-size, max-decoded-size, levels, protocols).
 *
 * The first input byte picks a chain URL from the table below; the rest is the value. Chains are made
 * once, with a largest value of 1 MiB, and used with their main context and with contexts from the pool,
 * as the server's threads do.
 *   chain_decode: CHAIN_OUT with at most max-decoded-size bytes; CHAIN_AS_IS with *undecoded set only for
 *     a value not in the chain's format in mixed mode (never in strict mode unless shorter than
 *     compression-min-size); CHAIN_ERROR with an "ERR " message; the same answer on another context.
 *   chain_encode then chain_decode: a value the chain encodes (CHAIN_OUT) decodes back to itself; a value
 *     it stores as it is (CHAIN_AS_IS) reads back as it is; a value it refuses gets an "ERR " message; a
 *     null chain stores everything as it is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chain.h"
#include "fuzz.h"
#include "fuzz_codec.h"

static const char *const chain_urls[] = {
    "msgpack+zstd://",
    "json+zlib://",
    "pickle+zstd://",
    "zstd://",
    "zlib://?compression-level=9",
    "json://",
    "msgpack://",
    "pickle://?pickle-protocol=2",
    "pickle+zlib://?pickle-protocol=3&strict=yes",
    "pickle+zstd://?pickle-protocol=4&compression-level=-3",
    "msgpack+zlib+zstd://?compression-level=1",
    "json+zstd://?strict=yes",
    "zstd://?compression-min-size=32",
    "zlib://?compression-min-size=16&strict=yes",
    "msgpack+zstd://?max-decoded-size=4kb",
    "null://",
};
#define NCHAINS (sizeof(chain_urls) / sizeof(chain_urls[0]))

static chain_t *chains[NCHAINS];

static void check_result(const char *url, chain_t *ch, int rc, const buf_t *out, const char *err, int undecoded,
                         size_t n, const char *what)
{
    int strict = strstr(url, "strict=yes") != NULL;

    FUZZ_CHECK(rc == CHAIN_OUT || rc == CHAIN_AS_IS || rc == CHAIN_ERROR, "%s %s: returned %d", url, what, rc);
    if (rc == CHAIN_OUT) {
        FUZZ_CHECK(!chain_is_null(ch), "%s %s: a null chain decoded", url, what);
        FUZZ_CHECK(out->len <= chain_max_decoded(ch), "%s %s: %zu bytes, more than %zu", url, what, out->len,
                   chain_max_decoded(ch));
        FUZZ_CHECK(!undecoded, "%s %s: CHAIN_OUT with undecoded set", url, what);
    } else if (rc == CHAIN_AS_IS) {
        FUZZ_CHECK(chain_is_null(ch) ? !undecoded : undecoded, "%s %s: AS_IS with undecoded %d", url, what,
                   undecoded);
        if (strict) {
            const char *m = strstr(url, "compression-min-size=");
            size_t min = m ? (size_t)strtoul(m + 21, NULL, 10) : 0;
            FUZZ_CHECK(n < min, "%s %s: strict chain returned %zu bytes as they are", url, what, n);
        }
    } else {
        FUZZ_CHECK(memchr(err, '\0', CODEC_ERRLEN + 32) != NULL && strncmp(err, "ERR ", 4) == 0,
                   "%s %s: error message '%.40s'", url, what, err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char err[CODEC_ERRLEN + 32];
    buf_t out, back;
    int undecoded, rc, rc2;

    if (chains[0] == NULL) {
        for (size_t i = 0; i < NCHAINS; i++) {
            chains[i] = chain_create(chain_urls[i], FUZZ_MAX_DECODED, err, sizeof(err));
            FUZZ_CHECK(chains[i] != NULL, "chain_create('%s'): %s", chain_urls[i], err);
        }
    }
    if (n == 0)
        return 0;

    size_t which = data[0] % NCHAINS;
    const char *url = chain_urls[which];
    chain_t *ch = chains[which];
    data++;
    n--;

    uint8_t *in = malloc(n ? n : 1);       /* exactly n bytes: ASan sees a read past the end */
    memcpy(in, data, n);
    buf_init(&out);
    buf_init(&back);

    /* the value as something stored */
    err[0] = '\0';
    rc = chain_decode(ch, chain_main_ctx(ch), (const char *)in, n, &out, err, &undecoded);
    check_result(url, ch, rc, &out, err, undecoded, n, "decode");

    chain_ctx_t *ctx = chain_ctx_get(ch);
    int undecoded2;
    err[0] = '\0';
    rc2 = chain_decode(ch, ctx, (const char *)in, n, &back, err, &undecoded2);
    check_result(url, ch, rc2, &back, err, undecoded2, n, "decode on a pool context");
    FUZZ_CHECK(rc == rc2 && undecoded == undecoded2 && (rc != CHAIN_OUT || fuzz_codec_same(&out, &back)),
               "%s: two contexts decode differently (%d, %d)", url, rc, rc2);

    /* the value as a client's: encode, then read it back */
    buf_reset(&out);
    err[0] = '\0';
    rc = chain_encode(ch, ctx, (const char *)in, n, &out, err);
    FUZZ_CHECK(rc == CHAIN_OUT || rc == CHAIN_AS_IS || rc == CHAIN_ERROR, "%s encode: returned %d", url, rc);
    if (rc == CHAIN_OUT) {
        buf_reset(&back);
        err[0] = '\0';
        rc2 = chain_decode(ch, chain_main_ctx(ch), out.data ? out.data : "", out.len, &back, err, &undecoded);
        FUZZ_CHECK(rc2 == CHAIN_OUT, "%s: its own encoding of %zu bytes does not decode: %d %s", url, n, rc2, err);
        FUZZ_CHECK(back.len == n && (n == 0 || memcmp(back.data, in, n) == 0),
                   "%s: round trip of %zu bytes gave %zu other bytes", url, n, back.len);
    } else if (rc == CHAIN_AS_IS) {
        const char *m = strstr(url, "compression-min-size=");
        FUZZ_CHECK(chain_is_null(ch) || (m != NULL && n < strtoul(m + 21, NULL, 10)),
                   "%s: %zu bytes stored as they are", url, n);
        /* a value stored as it is must read back as it is, never be taken for an encoded one */
        buf_reset(&back);
        rc2 = chain_decode(ch, chain_main_ctx(ch), (const char *)in, n, &back, err, &undecoded);
        FUZZ_CHECK(rc2 == CHAIN_AS_IS, "%s: %zu bytes stored as they are read back as %d", url, n, rc2);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && strncmp(err, "ERR ", 4) == 0,
                   "%s encode: error message '%.40s'", url, err);
        FUZZ_CHECK((strstr(url, "json") != NULL && !fuzz_utf8_valid(in, n)) || n > chain_max_decoded(ch) ||
                   strstr(err, "max-decoded-size") != NULL,
                   "%s: encoding %zu bytes failed: %s", url, n, err);
    }
    chain_ctx_put(ch, ctx);

    free(in);
    buf_deinit(&out);
    buf_deinit(&back);
    return 0;
}
