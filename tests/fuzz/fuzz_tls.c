/*
 * fuzz_tls: TLS sessions (src/net/tls.c) fed bytes from the network, as the listener (tls-port) and an
 * upstream connection (rediss://) are: ciphertext in pieces through tls_feed, tls_read after each piece,
 * what was read written back (tls_write), the output taken (tls_take_output).
 *
 * Each input is used twice: as what a client sends to a server session, and as what a server answers to
 * a client session (which has sent its ClientHello first). The pieces' sizes (one piece, single bytes,
 * 1..32 or 1..1500 bytes) and tls_read's buffer size (1, 5, 4096 or 65536 bytes) are data-derived.
 * Checked, after every call:
 *   - tls_read returns 1..cap, TLS_AGAIN, TLS_EOF or TLS_ERR; never more plaintext than ciphertext fed;
 *     plaintext only once the handshake is done; none when tls_has_input said 0 just before (stream.c
 *     waits for the socket then: plaintext already there would be stuck). The converse is not checked:
 *     tls_has_input is SSL_has_pending, also 1 for part of a record, which tls_read cannot give yet;
 *   - tls_error is "" until a call fails, then the same non-empty text; after TLS_ERR every tls_read and
 *     tls_write is TLS_ERR, and tls_handshake too unless the handshake had been done (it then says 1:
 *     stream.c asks it only before); after TLS_EOF tls_read never gives plaintext again;
 *   - tls_handshake_done never goes back to 0; tls_protocol / tls_cipher are "" exactly until then;
 *   - a session that has not failed can write; the output stays within 64 KiB + 16 bytes per byte fed.
 *
 * So that fuzzing reaches past the handshake, OpenSSL's randomness is the harness's own deterministic
 * generator (RAND_set_rand_method), restarted from a fixed seed for each session: a server session draws
 * the same ServerHello random, key share and signatures every time, so a client's recorded bytes (seeds
 * c-session-*) complete the handshake again and their application data, KeyUpdate, renegotiation and
 * close_notify reach tls_read; the same for the client session and the s-session-* seeds. Those seeds
 * are written by this harness (FUZZ_TLS_SEEDS=DIR build/fuzz-replay/tls /dev/null; tests/fuzz/seeds.py
 * does it), with OpenSSL's own client or server as the peer. They depend on the certificates below and
 * on how this OpenSSL draws randomness: after an OpenSSL upgrade, run seeds.py again.
 *
 * The certificates and keys below are throwaway test material generated for this harness with the openssl
 * command line (EC P-256, valid until 2126): a CA, a server certificate for localhost / 127.0.0.1 and a
 * client certificate, both signed by the CA. They are written to a temporary directory at start-up, the
 * contexts are made from the files, and the files are removed.
 */
#define OPENSSL_SUPPRESS_DEPRECATED     /* RAND_set_rand_method: the harness's deterministic randomness */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "fuzz.h"
#include "net/tls.h"
#include "util/buf.h"

/* ---- throwaway test certificates and keys (not secret: generated for this harness only) ------------ */

static const char CA_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBxTCCAWugAwIBAgIUBYpe6Wvi9FEpWvPtRQavbCcC4w0wCgYIKoZIzj0EAwIw\n"
    "LzEbMBkGA1UECgwSY2FjaGV0b3J5ZCBmdXp6aW5nMRAwDgYDVQQDDAdmdXp6LWNh\n"
    "MCAXDTI2MTIwNTA3NTkxNloYDzIxMjYxMTExMDc1OTE2WjAvMRswGQYDVQQKDBJj\n"
    "YWNoZXRvcnlkIGZ1enppbmcxEDAOBgNVBAMMB2Z1enotY2EwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAATZQOuVOmZ4dHRibV3SisVLKOFpoFVO5cJjoookzNDiUMZn\n"
    "L0kLYhQv6DVxPNRqlor7gfqgDVLpulUDApiyILLyo2MwYTAdBgNVHQ4EFgQUMwgM\n"
    "1ffZZdEf/cdCj10skEnpUfQwHwYDVR0jBBgwFoAUMwgM1ffZZdEf/cdCj10skEnp\n"
    "UfQwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwID\n"
    "SAAwRQIhAP8GCld/uwERpc4JC2Mej9EiUWsDFpRqz8+u/Mf5vG/9AiAx6wil9CdH\n"
    "2JI438r5ZBSg4t3viIrEiANRIwXM1PQ/eg==\n"
    "-----END CERTIFICATE-----\n";
static const char SERVER_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB7jCCAZWgAwIBAgICEAEwCgYIKoZIzj0EAwIwLzEbMBkGA1UECgwSY2FjaGV0\n"
    "b3J5ZCBmdXp6aW5nMRAwDgYDVQQDDAdmdXp6LWNhMCAXDTI2MTIwNTA3NTkxNloY\n"
    "DzIxMjYxMTExMDc1OTE2WjAxMRswGQYDVQQKDBJjYWNoZXRvcnlkIGZ1enppbmcx\n"
    "EjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLhC\n"
    "rm8tmUhoxPUZGzCD270JVGnSXN3lCqdTsz/6nKqhvrbt5Fm6XCYrv4ySjNHRLX+e\n"
    "R4Z1tFeX8AbCTpYbRmOjgZwwgZkwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMC\n"
    "B4AwHQYDVR0lBBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCMBoGA1UdEQQTMBGCCWxv\n"
    "Y2FsaG9zdIcEfwAAATAdBgNVHQ4EFgQUMggdKL6qZgWKKTfwYlQCzx8X588wHwYD\n"
    "VR0jBBgwFoAUMwgM1ffZZdEf/cdCj10skEnpUfQwCgYIKoZIzj0EAwIDRwAwRAIg\n"
    "XDscuDZBpA/aaNGwRk1xs0eLL2bRkCHjyoo1qETLJj0CIA7J44LD9XjC6+7QE8Ki\n"
    "QY+SBfwulC+LBCVt37ABwA+f\n"
    "-----END CERTIFICATE-----\n";
static const char SERVER_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPEeakxqWiCHsxtQ2\n"
    "m5QeBt8sE8sAWzt7kestYKXqeVihRANCAAS4Qq5vLZlIaMT1GRswg9u9CVRp0lzd\n"
    "5QqnU7M/+pyqob627eRZulwmK7+MkozR0S1/nkeGdbRXl/AGwk6WG0Zj\n"
    "-----END PRIVATE KEY-----\n";
static const char CLIENT_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB8TCCAZegAwIBAgICEAIwCgYIKoZIzj0EAwIwLzEbMBkGA1UECgwSY2FjaGV0\n"
    "b3J5ZCBmdXp6aW5nMRAwDgYDVQQDDAdmdXp6LWNhMCAXDTI2MTIwNTA3NTkxNloY\n"
    "DzIxMjYxMTExMDc1OTE2WjAzMRswGQYDVQQKDBJjYWNoZXRvcnlkIGZ1enppbmcx\n"
    "FDASBgNVBAMMC2Z1enotY2xpZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
    "FPi8K7KzYSJBEsgihnthSgEQNjKkwGxzFalqaUkCCxfWuzt1lPzW88XbGQ428Oww\n"
    "ahwDi7wWRnHgZ4lgrVdtiKOBnDCBmTAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQE\n"
    "AwIHgDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwGgYDVR0RBBMwEYIJ\n"
    "bG9jYWxob3N0hwR/AAABMB0GA1UdDgQWBBTYMdeeoSxjx7+usWGkVIdXUSYMdDAf\n"
    "BgNVHSMEGDAWgBQzCAzV99ll0R/9x0KPXSyQSelR9DAKBggqhkjOPQQDAgNIADBF\n"
    "AiATqRBNCKbzhGiN0147ZNZERdBIXJzkNkCW5/iuYwwS2wIhAL1fFFaoDXlE4soo\n"
    "80w9094ecuC3QdzqAXsp5UNtMOtx\n"
    "-----END CERTIFICATE-----\n";
static const char CLIENT_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfO+at38gHWyuSD2Y\n"
    "r4Iw5Des7lTyik6VcC068cWv0zChRANCAAQU+LwrsrNhIkESyCKGe2FKARA2MqTA\n"
    "bHMVqWppSQILF9a7O3WU/NbzxdsZDjbw7DBqHAOLvBZGceBniWCtV22I\n"
    "-----END PRIVATE KEY-----\n";

#define HOST "localhost"
#define READ_BUF 65536
#define OUT_LIMIT(fed) (65536 + 16 * (fed))

/* ---- deterministic randomness --------------------------------------------------------------------- */

typedef struct rng {
    uint64_t seed, state;
} rng_t;

static rng_t rng_setup = { 0x5e7u, 0 }, rng_server = { 0x5e4e4u, 0 }, rng_client = { 0xc11e47u, 0 },
             rng_peer = { 0x9ee4u, 0 };
static rng_t *rng_cur = &rng_setup;

static void rng_use(rng_t *r)
{
    rng_cur = r;
}

static void rng_restart(rng_t *r)
{
    r->state = r->seed;
    rng_cur = r;
}

/* splitmix64 */
static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rng_bytes(unsigned char *buf, int num)
{
    uint64_t w = 0;
    for (int i = 0; i < num; i++) {
        if (i % 8 == 0)
            w = rng_next(rng_cur);
        buf[i] = (unsigned char)(w >> (8 * (i % 8)));
    }
    return 1;
}

static int rng_status(void)
{
    return 1;
}

static int rng_seed(const void *buf, int num)
{
    (void)buf;
    (void)num;
    return 1;
}

static int rng_add(const void *buf, int num, double entropy)
{
    (void)buf;
    (void)num;
    (void)entropy;
    return 1;
}

static RAND_METHOD rng_method = { rng_seed, rng_bytes, NULL, rng_add, rng_bytes, rng_status };

/* ---- contexts ------------------------------------------------------------------------------------- */

static char pki_dir[128];
static tls_ctx_t *server_ctx, *client_ctx;

static const char *pki_path(const char *name)
{
    static char bufs[8][192];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", pki_dir, name);
    return b;
}

static const struct { const char *name, *pem; } pki_files[] = {
    { "ca.crt", CA_CRT }, { "server.crt", SERVER_CRT }, { "server.key", SERVER_KEY },
    { "client.crt", CLIENT_CRT }, { "client.key", CLIENT_KEY },
};
#define NFILES (sizeof(pki_files) / sizeof(pki_files[0]))

static void pki_write(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(pki_dir, sizeof(pki_dir), "%s/fuzz-tls.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(pki_dir) != NULL, "mkdtemp %s: %s", pki_dir, strerror(errno));
    for (size_t i = 0; i < NFILES; i++) {
        FILE *f = fopen(pki_path(pki_files[i].name), "w");
        FUZZ_CHECK(f != NULL, "%s: %s", pki_path(pki_files[i].name), strerror(errno));
        fputs(pki_files[i].pem, f);
        FUZZ_CHECK(fclose(f) == 0, "writing %s", pki_path(pki_files[i].name));
    }
}

static void pki_remove(void)
{
    for (size_t i = 0; i < NFILES; i++)
        unlink(pki_path(pki_files[i].name));
    rmdir(pki_dir);
}

static tls_ctx_t *make_ctx(int is_server, const char *protocols)
{
    tls_opts_t o;
    char err[512] = "";

    memset(&o, 0, sizeof(o));
    o.cert = (tls_file_t){ "tls-cert-file", pki_path(is_server ? "server.crt" : "client.crt") };
    o.key = (tls_file_t){ "tls-key-file", pki_path(is_server ? "server.key" : "client.key") };
    o.ca_file = (tls_file_t){ "tls-ca-cert-file", pki_path("ca.crt") };
    o.ca_dir = (tls_file_t){ "tls-ca-cert-dir", NULL };
    o.protocols = protocols;
    /* the listener asks for a client certificate and checks one if given (tls-auth-clients optional);
     * the upstream side checks the server's certificate and name (ssl_cert_reqs required) */
    o.verify = is_server ? TLS_VERIFY_OPTIONAL : TLS_VERIFY_REQUIRED;
    o.check_hostname = 1;
    o.session_caching = 0;      /* no state carried from one input to the next */
    tls_ctx_t *c = tls_ctx_create(&o, is_server, err, sizeof(err));
    FUZZ_CHECK(c != NULL, "tls_ctx_create: %s", err);
    return c;
}

static void move_tls(tls_t *from, tls_t *to)
{
    buf_t b;
    buf_init(&b);
    tls_take_output(from, &b);
    if (b.len > 0)
        tls_feed(to, b.data, b.len);
    buf_deinit(&b);
}

static int setup_done;

static void setup(void)
{
    if (setup_done)
        return;
    setup_done = 1;
    FUZZ_CHECK(RAND_set_rand_method(&rng_method) == 1, "RAND_set_rand_method");
    rng_restart(&rng_setup);
    pki_write();
    server_ctx = make_ctx(1, NULL);
    client_ctx = make_ctx(0, NULL);
    if (getenv("FUZZ_TLS_SEEDS") == NULL)
        pki_remove();
    /* one handshake first, so that whatever OpenSSL sets up on first use is set up before any input */
    tls_t *c = tls_create(client_ctx, HOST), *s = tls_create(server_ctx, NULL);
    int hc = TLS_AGAIN, hs = TLS_AGAIN;
    for (int i = 0; i < 16 && (hc != 1 || hs != 1); i++) {
        hc = tls_handshake(c);
        move_tls(c, s);
        hs = tls_handshake(s);
        move_tls(s, c);
    }
    FUZZ_CHECK(hc == 1 && hs == 1, "the harness's own handshake: client %d '%s', server %d '%s'", hc,
               tls_error(c), hs, tls_error(s));
    tls_destroy(c);
    tls_destroy(s);
}

/* ---- one session fed the input -------------------------------------------------------------------- */

typedef struct run {
    tls_t *t;
    const char *role;
    int failed, eof, done;
    char err[256];
    size_t fed, plain, out;
    buf_t obuf, echo;
} run_t;

static char rbuf[READ_BUF];

static void check_state(run_t *r)
{
    int done = tls_handshake_done(r->t);
    FUZZ_CHECK(!r->done || done, "%s: tls_handshake_done went back to 0", r->role);
    r->done = done;
    FUZZ_CHECK((tls_protocol(r->t)[0] != '\0') == (done != 0), "%s: tls_protocol '%s' with done %d", r->role,
               tls_protocol(r->t), done);
    FUZZ_CHECK((tls_cipher(r->t)[0] != '\0') == (done != 0), "%s: tls_cipher '%s' with done %d", r->role,
               tls_cipher(r->t), done);
    const char *e = tls_error(r->t);
    FUZZ_CHECK(strlen(e) < sizeof(r->err), "%s: error of %zu bytes", r->role, strlen(e));
    if (r->failed)
        FUZZ_CHECK(strcmp(e, r->err) == 0, "%s: the error changed from '%s' to '%s'", r->role, r->err, e);
    else
        FUZZ_CHECK(e[0] == '\0', "%s: error '%s' before any call failed", r->role, e);
}

static void failed_now(run_t *r, const char *what)
{
    const char *e = tls_error(r->t);
    FUZZ_CHECK(e[0] != '\0', "%s: %s failed without a message", r->role, what);
    if (!r->failed) {
        r->failed = 1;
        snprintf(r->err, sizeof(r->err), "%s", e);
    }
}

static void take_output(run_t *r)
{
    buf_reset(&r->obuf);
    tls_take_output(r->t, &r->obuf);
    r->out += r->obuf.len;
    FUZZ_CHECK(r->out <= OUT_LIMIT(r->fed), "%s: %zu bytes of output for %zu bytes of input", r->role, r->out,
               r->fed);
}

/* tls_read until it stops giving plaintext; what it gave is written back (one tls_write, as a reply) */
static void read_all(run_t *r, size_t cap)
{
    buf_reset(&r->echo);
    for (size_t calls = 0;; calls++) {
        FUZZ_CHECK(calls <= r->fed + 4, "%s: %zu tls_read calls for %zu bytes fed", r->role, calls, r->fed);
        int had_input = tls_has_input(r->t);
        ssize_t n = tls_read(r->t, rbuf, cap);
        FUZZ_CHECK(n <= 0 || had_input, "%s: tls_read gave %zd bytes after tls_has_input said 0", r->role, n);
        FUZZ_CHECK(n == TLS_AGAIN || n == TLS_EOF || n == TLS_ERR || (n > 0 && (size_t)n <= cap),
                   "%s: tls_read(cap %zu) returned %zd", r->role, cap, n);
        if (r->failed)
            FUZZ_CHECK(n == TLS_ERR, "%s: tls_read returned %zd after failing ('%s')", r->role, n, r->err);
        if (r->eof)
            FUZZ_CHECK(n == TLS_EOF || n == TLS_ERR, "%s: tls_read returned %zd after TLS_EOF", r->role, n);
        if (n == TLS_ERR)
            failed_now(r, "tls_read");
        check_state(r);
        if (n > 0) {
            FUZZ_CHECK(r->done, "%s: plaintext before the handshake is done", r->role);
            r->plain += (size_t)n;
            FUZZ_CHECK(r->plain <= r->fed, "%s: %zu bytes of plaintext from %zu bytes fed", r->role, r->plain, r->fed);
            buf_append(&r->echo, rbuf, (size_t)n);
            continue;
        }
        if (n == TLS_EOF)
            r->eof = 1;
        break;
    }
    if (r->echo.len > 0 && !r->failed) {
        int w = tls_write(r->t, r->echo.data, r->echo.len);
        FUZZ_CHECK(w == 0 || w == TLS_ERR, "%s: tls_write returned %d", r->role, w);
        if (w == TLS_ERR)
            failed_now(r, "tls_write");
        check_state(r);
    }
    if (r->failed) {
        /* tls_handshake reports the handshake: failed, or done before the session failed */
        int hs = tls_handshake(r->t);
        FUZZ_CHECK(hs == (r->done ? 1 : TLS_ERR), "%s: tls_handshake returned %d after failing", r->role, hs);
        FUZZ_CHECK(tls_write(r->t, "x", 1) == TLS_ERR, "%s: tls_write after failing", r->role);
        check_state(r);
    }
    take_output(r);
}

/* Chunk sizes: mode 0 the whole input, 1 single bytes, 2 1..32, 3 1..1500 (segments) */
static size_t next_chunk(uint64_t *x, int mode, size_t left)
{
    size_t n;
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    switch (mode) {
    case 0: n = left; break;
    case 1: n = 1; break;
    case 2: n = 1 + (size_t)(*x % 32); break;
    default: n = 1 + (size_t)(*x % 1500); break;
    }
    return n < left ? n : left;
}

typedef struct outcome {
    int done, failed, eof;
    size_t plain;
    char err[256];
} outcome_t;

static void run_session(tls_t *t, const char *role, const uint8_t *data, size_t size, uint64_t h, outcome_t *res)
{
    static const size_t caps[] = { 1, 5, 4096, READ_BUF };
    run_t r;
    uint64_t x = h | 1;
    int mode = (int)(h & 3);
    size_t cap = caps[(h >> 2) & 3];

    memset(&r, 0, sizeof(r));
    r.t = t;
    r.role = role;
    buf_init(&r.obuf);
    buf_init(&r.echo);
    check_state(&r);
    take_output(&r);                /* the client's hello */
    if (size == 0)
        read_all(&r, cap);
    for (size_t off = 0; off < size;) {
        size_t n = next_chunk(&x, mode, size - off);
        tls_feed(t, (const char *)data + off, n);
        FUZZ_CHECK(tls_has_input(t), "%s: %zu bytes fed, tls_has_input 0", role, n);
        r.fed += n;
        off += n;
        read_all(&r, cap);
    }
    /* a session that has not failed can still send */
    if (r.done && !r.failed && !r.eof) {
        int w = tls_write(t, "+OK\r\n", 5);
        FUZZ_CHECK(w == 0, "%s: tls_write returned %d on a working session ('%s')", role, w, tls_error(t));
    }
    tls_close_notify(t);
    check_state(&r);
    take_output(&r);
    if (res != NULL) {
        res->done = r.done;
        res->failed = r.failed;
        res->eof = r.eof;
        res->plain = r.plain;
        snprintf(res->err, sizeof(res->err), "%s", r.err);
    }
    buf_deinit(&r.obuf);
    buf_deinit(&r.echo);
}

/* The input as a client's bytes to the listener. */
static void run_server(const uint8_t *data, size_t size, uint64_t h, outcome_t *res)
{
    rng_restart(&rng_server);
    tls_t *s = tls_create(server_ctx, NULL);
    run_session(s, "server", data, size, h, res);
    tls_destroy(s);
}

/* The input as an upstream's answers to our ClientHello. */
static void run_client(const uint8_t *data, size_t size, uint64_t h, outcome_t *res)
{
    rng_restart(&rng_client);
    tls_t *c = tls_create(client_ctx, HOST);
    int rc = tls_handshake(c);
    FUZZ_CHECK(rc == TLS_AGAIN, "client: the first tls_handshake returned %d ('%s')", rc, tls_error(c));
    run_session(c, "client", data, size, h, res);
    tls_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fuzz_hash(data, size);

    setup();
    run_server(data, size, h, NULL);
    run_client(data, size, h * 0x9e3779b97f4a7c15ULL + 7, NULL);
    return 0;
}

/* ---- the seeds of corpus/tls (FUZZ_TLS_SEEDS=DIR) ---------------------------------------------------- */

/*
 * Sessions recorded with OpenSSL's own client (c-*: the bytes it sends to this harness's server session)
 * or server (s-*: the bytes it sends to this harness's client session). The harness's side runs with the
 * same randomness as when an input is replayed, so the recorded bytes make the same session again.
 */

enum { PEER_TLS12 = 1, PEER_CERT = 2, PEER_KEYUPDATE = 4, PEER_RENEG = 8, PEER_CERTREQ = 16, PEER_HRR = 32 };

typedef struct peer {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    buf_t sent;                 /* everything the peer sent: the seed */
} peer_t;

static void peer_init(peer_t *p, int is_server, int flags)
{
    memset(p, 0, sizeof(*p));
    rng_restart(&rng_peer);         /* each seed on its own: one seed's changes leave the others as they are */
    p->ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    FUZZ_CHECK(p->ctx != NULL, "SSL_CTX_new");
    SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(p->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(p->ctx, 0);
    if (flags & PEER_TLS12)
        SSL_CTX_set_max_proto_version(p->ctx, TLS1_2_VERSION);
    if (is_server || (flags & PEER_CERT)) {
        const char *crt = pki_path(is_server ? "server.crt" : "client.crt");
        const char *key = pki_path(is_server ? "server.key" : "client.key");
        FUZZ_CHECK(SSL_CTX_use_certificate_chain_file(p->ctx, crt) == 1 &&
                   SSL_CTX_use_PrivateKey_file(p->ctx, key, SSL_FILETYPE_PEM) == 1, "the peer's certificate");
    }
    if (is_server && (flags & PEER_CERTREQ)) {
        SSL_CTX_load_verify_locations(p->ctx, pki_path("ca.crt"), NULL);
        SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (is_server && (flags & PEER_HRR))
        SSL_CTX_set1_groups_list(p->ctx, "P-384");   /* not the client's first key share: HelloRetryRequest */
    p->ssl = SSL_new(p->ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->rbio, -1);
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    if (is_server)
        SSL_set_accept_state(p->ssl);
    else
        SSL_set_connect_state(p->ssl);
    buf_init(&p->sent);
}

static void peer_free(peer_t *p)
{
    SSL_free(p->ssl);
    SSL_CTX_free(p->ctx);
    buf_deinit(&p->sent);
}

/* peer -> session, recorded */
static void peer_send(peer_t *p, tls_t *t)
{
    char b[16384];
    int n;
    while ((n = BIO_read(p->wbio, b, sizeof(b))) > 0) {
        buf_append(&p->sent, b, (size_t)n);
        tls_feed(t, b, (size_t)n);
    }
}

/* session -> peer */
static void peer_receive(peer_t *p, tls_t *t, rng_t *trng)
{
    buf_t b;
    buf_init(&b);
    rng_use(trng);
    tls_take_output(t, &b);
    if (b.len > 0)
        BIO_write(p->rbio, b.data, (int)b.len);
    buf_deinit(&b);
}

/* Let both sides run: the session reads (and writes back what it read), the peer reads. */
static void exchange(peer_t *p, tls_t *t, rng_t *trng, int rounds)
{
    char b[4096];
    for (int i = 0; i < rounds; i++) {
        rng_use(&rng_peer);
        if (!SSL_is_init_finished(p->ssl))
            SSL_do_handshake(p->ssl);
        else
            SSL_read(p->ssl, b, sizeof(b));
        ERR_clear_error();
        peer_send(p, t);
        rng_use(trng);
        ssize_t n = tls_read(t, rbuf, sizeof(rbuf));
        if (n > 0)
            tls_write(t, rbuf, (size_t)n);
        peer_receive(p, t, trng);
    }
}

static void write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "%s: %s", path, strerror(errno));
    FUZZ_CHECK(fwrite(data, 1, len, f) == len && fclose(f) == 0, "writing %s", path);
}

/* Write the seed, then replay it as the harness does (in one piece) and say how far it gets. */
static void record(const char *dir, const char *name, const buf_t *b, int as_server)
{
    outcome_t o;
    write_seed(dir, name, b->data, b->len);
    if (as_server)
        run_server((const uint8_t *)b->data, b->len, 0, &o);
    else
        run_client((const uint8_t *)b->data, b->len, 0, &o);
    printf("seed-%-28s %5zu bytes: handshake %s, %zu bytes read%s%s%s\n", name, b->len,
           o.done ? "done" : "not done", o.plain, o.eof ? ", end of file" : "", o.failed ? ", failed: " : "",
           o.failed ? o.err : "");
}

static void seed_client_session(const char *dir, const char *name, int flags, int hello_only)
{
    peer_t p;
    peer_init(&p, 0, flags);
    rng_restart(&rng_server);
    tls_t *s = tls_create(server_ctx, NULL);
    exchange(&p, s, &rng_server, hello_only ? 1 : 8);
    if (!hello_only) {
        FUZZ_CHECK(tls_handshake_done(s), "%s: handshake not done: '%s'", name, tls_error(s));
        rng_use(&rng_peer);
        SSL_write(p.ssl, "*1\r\n$4\r\nPING\r\n", 14);
        if (flags & PEER_KEYUPDATE) {
            SSL_key_update(p.ssl, SSL_KEY_UPDATE_REQUESTED);
            SSL_write(p.ssl, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20);
        }
        if (flags & PEER_RENEG) {
            SSL_renegotiate(p.ssl);
            SSL_do_handshake(p.ssl);
        }
        peer_send(&p, s);
        exchange(&p, s, &rng_server, 4);
        rng_use(&rng_peer);
        SSL_shutdown(p.ssl);
        peer_send(&p, s);
    }
    record(dir, name, &p.sent, 1);
    if (hello_only && !(flags & PEER_TLS12)) {
        /* the same hello cut in the middle of its record: the server waits for the rest */
        buf_t cut;
        buf_init(&cut);
        buf_append(&cut, p.sent.data, p.sent.len / 2);
        record(dir, "c-hello-truncated", &cut, 1);
        buf_deinit(&cut);
    }
    tls_destroy(s);
    peer_free(&p);
}

static void seed_server_session(const char *dir, const char *name, int flags)
{
    peer_t p;
    peer_init(&p, 1, flags);
    rng_restart(&rng_client);
    tls_t *c = tls_create(client_ctx, HOST);
    tls_handshake(c);
    peer_receive(&p, c, &rng_client);
    exchange(&p, c, &rng_client, 8);
    FUZZ_CHECK(tls_handshake_done(c), "%s: handshake not done: '%s'", name, tls_error(c));
    rng_use(&rng_peer);
    SSL_write(p.ssl, "+PONG\r\n", 7);
    if (flags & PEER_KEYUPDATE) {
        SSL_key_update(p.ssl, SSL_KEY_UPDATE_REQUESTED);
        SSL_write(p.ssl, "$1\r\nv\r\n", 7);
    }
    if (flags & PEER_RENEG) {
        SSL_renegotiate(p.ssl);             /* the server's HelloRequest */
        SSL_do_handshake(p.ssl);
    }
    peer_send(&p, c);
    exchange(&p, c, &rng_client, 4);
    rng_use(&rng_peer);
    SSL_shutdown(p.ssl);
    peer_send(&p, c);
    record(dir, name, &p.sent, 0);
    tls_destroy(c);
    peer_free(&p);
}

static void write_seeds(const char *dir)
{
    seed_client_session(dir, "c-hello-tls13", 0, 1);
    seed_client_session(dir, "c-hello-tls12", PEER_TLS12, 1);
    seed_client_session(dir, "c-session-tls13", PEER_CERT, 0);
    seed_client_session(dir, "c-session-tls13-nocert", 0, 0);
    seed_client_session(dir, "c-session-tls13-keyupdate", PEER_CERT | PEER_KEYUPDATE, 0);
    seed_client_session(dir, "c-session-tls12", PEER_TLS12 | PEER_CERT, 0);
    seed_client_session(dir, "c-session-tls12-renegotiate", PEER_TLS12 | PEER_RENEG, 0);
    seed_server_session(dir, "s-session-tls13", 0);
    seed_server_session(dir, "s-session-tls13-certreq", PEER_CERTREQ);
    seed_server_session(dir, "s-session-tls13-hrr", PEER_HRR);
    seed_server_session(dir, "s-session-tls13-keyupdate", PEER_KEYUPDATE);
    seed_server_session(dir, "s-session-tls12", PEER_TLS12);
    seed_server_session(dir, "s-session-tls12-hellorequest", PEER_TLS12 | PEER_RENEG);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FUZZ_TLS_SEEDS");
    (void)argc;
    (void)argv;
    setup();
    if (dir != NULL && dir[0] != '\0') {
        write_seeds(dir);
        pki_remove();
        exit(0);
    }
    return 0;
}
