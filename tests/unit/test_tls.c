/*
 * tls: net/tls sessions talking to each other in memory. Throwaway certificates are made at start-up with
 * the openssl command line in a temporary directory (two CAs, server / client / expired / self-signed
 * certificates, an encrypted key, a hashed CA directory); each test makes a client and a server session
 * and moves the ciphertext between them (tls_take_output of one, tls_feed of the other) in bounded loops.
 *
 * Covered: handshakes (TLS 1.3 and 1.2) and data both ways, up to 5 MB in one tls_write; the verification
 * failures with OpenSSL's exact text (unknown CA, self-signed, hostname and IP mismatch, expired), verify
 * none; mutual TLS (required / optional, the client certificate's notAfter on the server side); protocol
 * mismatches; every tls_ctx_create error naming its option, its file and the cause; encrypted keys; garbage on either
 * side; a TLS 1.2 renegotiation (from a raw OpenSSL client: tls.h has no way to start one); close_notify;
 * tls_format_time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/tls.h"
#include "util/buf.h"

#define PASS "s3cret pass"
#define BIG (5u * 1024 * 1024)
#define READ_CAP (64 * 1024)

static char dir[64];
static long long server_end, client_end, expired_end;   /* the notAfter each was issued with */

/* ---- certificates --------------------------------------------------------------------------------- */

/* Every file is made by this script, run in the temporary directory; leaf's dates are openssl ca's
 * -startdate / -enddate (exact times, also in the past). */
static const char pki_script[] =
    "set -e\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out \"$1.key\"; }\n"
    "ca() {\n"
    "  key $1\n"
    "  openssl req -x509 -new -key $1.key -sha256 -days 3650 -subj \"/O=cachetoryd tests/CN=$1\" \\\n"
    "    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out $1.crt\n"
    "  mkdir -p $1.ca/new; : > $1.ca/index.txt; echo 1000 > $1.ca/serial\n"
    "  printf '[ca]\\ndefault_ca = the_ca\\n[the_ca]\\ndatabase = %s/index.txt\\nnew_certs_dir = %s/new\\n"
    "serial = %s/serial\\ndefault_md = sha256\\npolicy = any\\nunique_subject = no\\ncopy_extensions = none\\n"
    "[any]\\ncommonName = supplied\\norganizationName = optional\\n' $1.ca $1.ca $1.ca > $1.ca/ca.cnf\n"
    "}\n"
    "leaf() {  # name ca cn start end eku san\n"
    "  key $1\n"
    "  openssl req -new -key $1.key -subj \"/O=cachetoryd tests/CN=$3\" -out $1.csr\n"
    "  printf '[v3]\\nbasicConstraints = critical,CA:FALSE\\nkeyUsage = critical,digitalSignature,"
    "keyEncipherment\\nextendedKeyUsage = %s\\n' \"$6\" > $1.ext\n"
    "  if [ -n \"$7\" ]; then printf 'subjectAltName = %s\\n' \"$7\" >> $1.ext; fi\n"
    "  openssl ca -batch -notext -config $2.ca/ca.cnf -cert $2.crt -keyfile $2.key -in $1.csr -out $1.crt \\\n"
    "    -startdate $4 -enddate $5 -extfile $1.ext -extensions v3\n"
    "}\n"
    "SAN='DNS:localhost,IP:127.0.0.1'\n"
    "ca ca\n"
    "ca other\n"
    "leaf server ca localhost $PAST $SERVER_END serverAuth,clientAuth $SAN\n"
    "leaf client ca cachetoryd-client $PAST $CLIENT_END clientAuth ''\n"
    "leaf expired ca localhost $LONG_PAST $EXPIRED_END serverAuth,clientAuth $SAN\n"
    "leaf stranger other localhost $PAST $SERVER_END serverAuth,clientAuth $SAN\n"
    "cat stranger.crt other.crt > stranger-chain.crt\n"
    "key selfsigned\n"
    "openssl req -x509 -new -key selfsigned.key -sha256 -days 30 -subj '/CN=localhost' \\\n"
    "  -addext subjectAltName=$SAN -out selfsigned.crt\n"
    "openssl pkey -in server.key -aes256 -passout 'pass:" PASS "' -out server.enc.key\n"
    "mkdir hashed; cp ca.crt hashed/$(openssl x509 -hash -noout -in ca.crt).0\n"
    "printf 'this is not PEM\\n' > garbage.pem\n"
    "mkdir adir\n";

static void stamp(char *out, size_t n, long long t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y%m%d%H%M%SZ", &tm);
}

static int make_pki(void **state)
{
    char script[128], cmd[1024], past[32], long_past[32], s_end[32], c_end[32], e_end[32];
    long long now = (long long)time(NULL);
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/cachetoryd-tls.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        return -1;
    }
    server_end = now + 86400 * 30;
    client_end = now + 86400 * 7 + 1234;
    expired_end = now - 3600;
    stamp(past, sizeof(past), now - 3600);
    stamp(long_past, sizeof(long_past), now - 86400 * 2);
    stamp(s_end, sizeof(s_end), server_end);
    stamp(c_end, sizeof(c_end), client_end);
    stamp(e_end, sizeof(e_end), expired_end);
    snprintf(script, sizeof(script), "%s/make-pki.sh", dir);
    if ((f = fopen(script, "w")) == NULL)
        return -1;
    fputs(pki_script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "cd '%s' && PAST=%s LONG_PAST=%s SERVER_END=%s CLIENT_END=%s EXPIRED_END=%s "
             "sh make-pki.sh >openssl.log 2>&1", dir, past, long_past, s_end, c_end, e_end);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat '%s/openssl.log' >&2", dir);
        (void)!system(cmd);
        fprintf(stderr, "making the test certificates in %s failed (log above)\n", dir);
        return -1;
    }
    return 0;
}

static int remove_pki(void **state)
{
    char cmd[128];
    (void)state;
    if (dir[0] != '\0' && strstr(dir, "cachetoryd-tls.") != NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
    }
    return 0;
}

/* The path of a file of the temporary directory (in one of 16 rotating buffers). */
static const char *P(const char *name)
{
    static char bufs[16][256];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

/* ---- contexts and sessions ------------------------------------------------------------------------ */

/* The listener's defaults: its certificate, no client certificates asked for (tls-auth-clients no). */
static tls_opts_t server_opts(void)
{
    tls_opts_t o;
    memset(&o, 0, sizeof(o));
    o.cert = (tls_file_t){ "tls-cert-file", P("server.crt") };
    o.key = (tls_file_t){ "tls-key-file", P("server.key") };
    o.ca_file = (tls_file_t){ "tls-ca-cert-file", NULL };
    o.ca_dir = (tls_file_t){ "tls-ca-cert-dir", NULL };
    o.verify = TLS_VERIFY_NONE;
    o.session_caching = 1;
    o.session_cache_size = 20480;
    o.session_cache_timeout = 300;
    return o;
}

/* An upstream's defaults: rediss:// with ssl_ca_certs = our CA, required, hostname checked. */
static tls_opts_t client_opts(void)
{
    tls_opts_t o;
    memset(&o, 0, sizeof(o));
    o.cert = (tls_file_t){ "ssl_certfile", NULL };
    o.key = (tls_file_t){ "ssl_keyfile", NULL };
    o.ca_file = (tls_file_t){ "ssl_ca_certs", P("ca.crt") };
    o.ca_dir = (tls_file_t){ "ssl_ca_path", NULL };
    o.verify = TLS_VERIFY_REQUIRED;
    o.check_hostname = 1;
    return o;
}

static tls_ctx_t *ctx_ok(const tls_opts_t *o, int is_server)
{
    char err[512] = "";
    tls_ctx_t *c = tls_ctx_create(o, is_server, err, sizeof(err));
    if (c == NULL)
        fail_msg("tls_ctx_create (%s) failed: %s", is_server ? "server" : "client", err);
    return c;
}

/* tls_ctx_create must fail with a message holding each of the given texts. */
static void ctx_fails(const tls_opts_t *o, int is_server, const char *want1, const char *want2)
{
    char err[512] = "";
    tls_ctx_t *c = tls_ctx_create(o, is_server, err, sizeof(err));
    if (c != NULL) {
        tls_ctx_release(c);
        fail_msg("tls_ctx_create succeeded; expected an error with '%s'", want1);
    }
    if (strstr(err, want1) == NULL || (want2 != NULL && strstr(err, want2) == NULL))
        fail_msg("tls_ctx_create's error '%s' lacks '%s'%s%s", err, want1, want2 ? " or " : "", want2 ? want2 : "");
    print_message("    tls_ctx_create: %s\n", err);
}

static void assert_contains(const char *s, const char *sub)
{
    if (strstr(s, sub) == NULL)
        fail_msg("'%s' does not contain '%s'", s, sub);
}

/* Move what `from` has to send to `to`; the number of bytes. */
static size_t move(tls_t *from, tls_t *to)
{
    buf_t b;
    buf_init(&b);
    tls_take_output(from, &b);
    size_t n = b.len;
    if (n > 0)
        tls_feed(to, b.data, n);
    buf_deinit(&b);
    return n;
}

typedef struct pair {
    tls_t *c, *s;
    int hc, hs;         /* the handshake's last result on each side: 1, TLS_AGAIN, TLS_ERR */
    int rc, rs;         /* the last tls_read after it (post-handshake messages, alerts) */
} pair_t;

/*
 * A client session (host) over cctx and a server session over ssctx; run the handshake, then read on
 * both sides until nothing moves (TLS 1.3 sends tickets and a refused client certificate's alert after
 * the client's handshake is done). Bounded: 64 rounds.
 */
static void pair_connect(pair_t *p, tls_ctx_t *cctx, tls_ctx_t *sctx, const char *host)
{
    char scratch[256];

    memset(p, 0, sizeof(*p));
    p->c = tls_create(cctx, host);
    p->s = tls_create(sctx, NULL);
    assert_non_null(p->c);
    assert_non_null(p->s);
    assert_false(tls_handshake_done(p->c));
    assert_string_equal(tls_protocol(p->c), "");
    assert_string_equal(tls_cipher(p->c), "");
    assert_string_equal(tls_error(p->c), "");
    p->hc = p->hs = TLS_AGAIN;
    p->rc = p->rs = TLS_AGAIN;
    for (int round = 0; round < 64; round++) {
        size_t moved = 0;
        if (p->hc == TLS_AGAIN)
            p->hc = tls_handshake(p->c);
        else if (p->hc == 1 && p->rc == TLS_AGAIN)
            p->rc = (int)tls_read(p->c, scratch, sizeof(scratch));
        moved += move(p->c, p->s);
        if (p->hs == TLS_AGAIN)
            p->hs = tls_handshake(p->s);
        else if (p->hs == 1 && p->rs == TLS_AGAIN)
            p->rs = (int)tls_read(p->s, scratch, sizeof(scratch));
        moved += move(p->s, p->c);
        if (moved == 0 && p->hc != TLS_AGAIN && p->hs != TLS_AGAIN)
            break;
    }
    /* no application data was sent: a read after the handshake is "again" or a failure */
    assert_true(p->rc == TLS_AGAIN || p->rc == TLS_ERR);
    assert_true(p->rs == TLS_AGAIN || p->rs == TLS_ERR);
}

static int pair_ok(const pair_t *p)
{
    return p->hc == 1 && p->hs == 1 && p->rc == TLS_AGAIN && p->rs == TLS_AGAIN;
}

static void assert_pair_ok(const pair_t *p)
{
    if (!pair_ok(p))
        fail_msg("handshake: client %d/%d '%s', server %d/%d '%s'", p->hc, p->rc, tls_error(p->c), p->hs, p->rs,
                 tls_error(p->s));
    assert_true(tls_handshake_done(p->c));
    assert_true(tls_handshake_done(p->s));
    assert_string_not_equal(tls_protocol(p->c), "");
    assert_string_not_equal(tls_cipher(p->c), "");
    assert_string_equal(tls_protocol(p->c), tls_protocol(p->s));
    assert_string_equal(tls_cipher(p->c), tls_cipher(p->s));
    assert_string_equal(tls_error(p->c), "");
    assert_string_equal(tls_error(p->s), "");
}

/* The client failed its handshake with exactly this message; the server fails too (the alert). */
static void assert_client_fails(const pair_t *p, const char *why)
{
    if (p->hc != TLS_ERR)
        fail_msg("client handshake %d (expected TLS_ERR '%s'); server %d '%s'", p->hc, why, p->hs, tls_error(p->s));
    assert_string_equal(tls_error(p->c), why);
    assert_int_equal(p->hs, TLS_ERR);
    assert_string_not_equal(tls_error(p->s), "");
    print_message("    client: %s / server: %s\n", tls_error(p->c), tls_error(p->s));
}

static void pair_close(pair_t *p)
{
    tls_destroy(p->c);
    tls_destroy(p->s);
    p->c = p->s = NULL;
}

/* len bytes written by `from` in one tls_write arrive at `to` whole and in order (bounded reads). */
static void send_through(tls_t *from, tls_t *to, const char *data, size_t len)
{
    static char rbuf[READ_CAP];
    size_t got = 0;
    long rounds = 0;

    assert_int_equal(tls_write(from, data, len), 0);
    assert_true(move(from, to) > len);  /* records carry a header and a tag */
    assert_true(tls_has_input(to));
    while (got < len) {
        assert_true(rounds++ < (long)(len / 1000) + 1000);
        ssize_t n = tls_read(to, rbuf, sizeof(rbuf));
        if (n <= 0)
            fail_msg("tls_read returned %zd after %zu of %zu bytes: '%s'", n, got, len, tls_error(to));
        assert_true((size_t)n <= sizeof(rbuf) && got + (size_t)n <= len);
        if (memcmp(rbuf, data + got, (size_t)n) != 0)
            fail_msg("bytes %zu..%zu differ", got, got + (size_t)n);
        got += (size_t)n;
    }
    assert_int_equal(tls_read(to, rbuf, sizeof(rbuf)), TLS_AGAIN);
    assert_false(tls_has_input(to));
}

static long long llabs_diff(long long a, long long b)
{
    return a > b ? a - b : b - a;
}

/* ---- tests ---------------------------------------------------------------------------------------- */

static void test_handshake_and_data(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    assert_true(llabs_diff(tls_ctx_cert_not_after(sctx), server_end) <= 2);
    assert_int_equal(tls_ctx_cert_not_after(cctx), 0);          /* no certificate of its own */
    assert_int_equal(tls_ctx_cert_not_after(NULL), 0);

    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    assert_string_equal(tls_protocol(p.c), "TLSv1.3");
    print_message("    %s %s\n", tls_protocol(p.c), tls_cipher(p.c));
    assert_true(llabs_diff(tls_peer_not_after(p.c), server_end) <= 2);
    assert_int_equal(tls_peer_not_after(p.s), 0);               /* the client sent none */
    assert_int_equal(tls_handshake(p.c), 1);                    /* done stays done */
    assert_int_equal(tls_handshake(p.s), 1);

    send_through(p.c, p.s, "*1\r\n$4\r\nPING\r\n", 14);
    send_through(p.s, p.c, "+PONG\r\n", 7);
    send_through(p.c, p.s, "x", 1);

    /* a read smaller than a record: the rest waits in the session (tls_has_input) */
    char small[4];
    assert_int_equal(tls_write(p.s, "0123456789", 10), 0);
    move(p.s, p.c);
    assert_int_equal(tls_read(p.c, small, sizeof(small)), 4);
    assert_memory_equal(small, "0123", 4);
    assert_true(tls_has_input(p.c));
    assert_int_equal(tls_read(p.c, small, sizeof(small)), 4);
    assert_int_equal(tls_read(p.c, small, sizeof(small)), 2);
    assert_memory_equal(small, "89", 2);
    assert_false(tls_has_input(p.c));
    assert_int_equal(tls_read(p.c, small, sizeof(small)), TLS_AGAIN);

    /* 5 MB in one tls_write, each way */
    char *big = malloc(BIG);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 131 + (i >> 13));
    send_through(p.c, p.s, big, BIG);
    send_through(p.s, p.c, big, BIG);
    free(big);

    /* two writes before the peer reads: one stream of bytes */
    assert_int_equal(tls_write(p.c, "GET a\r\n", 7), 0);
    assert_int_equal(tls_write(p.c, "GET b\r\n", 7), 0);
    move(p.c, p.s);
    char rbuf[64];
    size_t got = 0;
    for (int i = 0; i < 8 && got < 14; i++) {
        ssize_t n = tls_read(p.s, rbuf + got, sizeof(rbuf) - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, 14);
    assert_memory_equal(rbuf, "GET a\r\nGET b\r\n", 14);

    pair_close(&p);
    tls_ctx_release(cctx);
    tls_ctx_release(sctx);
}

/* A session holds its context: released by the caller (a reload), it goes on working. */
static void test_context_outlives_release(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    memset(&p, 0, sizeof(p));
    tls_t *c = tls_create(cctx, "localhost"), *s = tls_create(sctx, NULL);
    tls_ctx_release(cctx);
    tls_ctx_release(sctx);
    tls_ctx_release(NULL);
    int hc = TLS_AGAIN, hs = TLS_AGAIN;
    for (int i = 0; i < 16 && (hc != 1 || hs != 1); i++) {
        hc = tls_handshake(c);
        move(c, s);
        hs = tls_handshake(s);
        move(s, c);
    }
    assert_int_equal(hc, 1);
    assert_int_equal(hs, 1);
    send_through(c, s, "hello", 5);
    tls_destroy(c);
    tls_destroy(s);
    tls_destroy(NULL);
}

static void test_tls12(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    co.protocols = "tlsv1.2";                   /* names are not case-sensitive */
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    assert_string_equal(tls_protocol(p.c), "TLSv1.2");
    print_message("    %s %s\n", tls_protocol(p.c), tls_cipher(p.c));
    send_through(p.c, p.s, "ping", 4);
    send_through(p.s, p.c, "pong", 4);
    pair_close(&p);
    tls_ctx_release(cctx);

    /* "TLSv1.2,TLSv1.3" and the server's own list */
    co = client_opts();
    co.protocols = "TLSv1.2,TLSv1.3";
    cctx = ctx_ok(&co, 0);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    assert_string_equal(tls_protocol(p.c), "TLSv1.3");
    pair_close(&p);
    tls_ctx_release(cctx);
    tls_ctx_release(sctx);
}

static void test_unknown_ca(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx;
    pair_t p;

    /* the client trusts another CA: the server's leaf has no known issuer */
    co.ca_file.path = P("other.crt");
    cctx = ctx_ok(&co, 0);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_client_fails(&p, "certificate verify failed: unable to get local issuer certificate");
    assert_string_equal(X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
                        "unable to get local issuer certificate");
    /* after a failure every call fails the same way */
    char buf[16];
    assert_int_equal(tls_handshake(p.c), TLS_ERR);
    assert_int_equal(tls_read(p.c, buf, sizeof(buf)), TLS_ERR);
    assert_int_equal(tls_write(p.c, "x", 1), TLS_ERR);
    assert_int_equal(tls_read(p.s, buf, sizeof(buf)), TLS_ERR);
    assert_string_equal(tls_error(p.c), "certificate verify failed: unable to get local issuer certificate");
    assert_false(tls_handshake_done(p.c));
    assert_string_equal(tls_protocol(p.c), "");
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);

    /* the server sends its whole chain, up to a CA the client does not know */
    so = server_opts();
    so.cert.path = P("stranger-chain.crt");
    so.key.path = P("stranger.key");
    sctx = ctx_ok(&so, 1);
    cctx = ctx_ok((co = client_opts(), &co), 0);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_client_fails(&p, "certificate verify failed: self-signed certificate in certificate chain");
    pair_close(&p);
    tls_ctx_release(sctx);

    /* a self-signed server certificate */
    so = server_opts();
    so.cert.path = P("selfsigned.crt");
    so.key.path = P("selfsigned.key");
    sctx = ctx_ok(&so, 1);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_client_fails(&p, "certificate verify failed: self-signed certificate");
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

static void test_hostname(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0), *nocheck;
    pair_t p;

    pair_connect(&p, cctx, sctx, "example.invalid");
    assert_client_fails(&p, "certificate verify failed: hostname mismatch");
    pair_close(&p);

    /* the IP address in the certificate's subjectAltName */
    pair_connect(&p, cctx, sctx, "127.0.0.1");
    assert_pair_ok(&p);
    pair_close(&p);
    pair_connect(&p, cctx, sctx, "127.0.0.2");
    assert_client_fails(&p, "certificate verify failed: IP address mismatch");
    pair_close(&p);
    /* DNS names compare without case */
    pair_connect(&p, cctx, sctx, "LocalHost");
    assert_pair_ok(&p);
    pair_close(&p);
    /* no host: nothing to check the name against */
    pair_connect(&p, cctx, sctx, NULL);
    assert_pair_ok(&p);
    pair_close(&p);

    /* ssl_check_hostname no: any name, the chain is still verified */
    co.check_hostname = 0;
    nocheck = ctx_ok(&co, 0);
    pair_connect(&p, nocheck, sctx, "example.invalid");
    assert_pair_ok(&p);
    pair_close(&p);
    pair_connect(&p, nocheck, sctx, "127.0.0.2");
    assert_pair_ok(&p);
    pair_close(&p);
    tls_ctx_release(nocheck);

    /* the CA through a hashed directory (ssl_ca_path) instead of a file */
    co = client_opts();
    co.ca_file.path = NULL;
    co.ca_dir.path = P("hashed");
    nocheck = ctx_ok(&co, 0);
    pair_connect(&p, nocheck, sctx, "localhost");
    assert_pair_ok(&p);
    pair_close(&p);
    tls_ctx_release(nocheck);

    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

static void test_expired(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    so.cert.path = P("expired.crt");
    so.key.path = P("expired.key");
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    assert_true(llabs_diff(tls_ctx_cert_not_after(sctx), expired_end) <= 2);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_client_fails(&p, "certificate verify failed: certificate has expired");
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

/* ssl_cert_reqs none: any certificate, any name */
static void test_verify_none(void **state)
{
    static const char *const certs[][2] = {
        { "expired.crt", "expired.key" }, { "selfsigned.crt", "selfsigned.key" },
        { "stranger-chain.crt", "stranger.key" }, { "server.crt", "server.key" },
    };
    tls_opts_t co = client_opts();
    co.verify = TLS_VERIFY_NONE;
    co.ca_file.path = NULL;                     /* the system's store, which knows none of these */
    tls_ctx_t *cctx = ctx_ok(&co, 0);

    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        tls_opts_t so = server_opts();
        so.cert.path = P(certs[i][0]);
        so.key.path = P(certs[i][1]);
        tls_ctx_t *sctx = ctx_ok(&so, 1);
        pair_t p;
        pair_connect(&p, cctx, sctx, "example.invalid");
        assert_pair_ok(&p);
        assert_true(tls_peer_not_after(p.c) != 0);
        send_through(p.c, p.s, "PING\r\n", 6);
        pair_close(&p);
        tls_ctx_release(sctx);
    }
    tls_ctx_release(cctx);
}

static void test_mutual_tls(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts(), cco = client_opts();
    so.verify = TLS_VERIFY_REQUIRED;
    so.ca_file.path = P("ca.crt");
    cco.cert.path = P("client.crt");
    cco.key.path = P("client.key");
    tls_ctx_t *sctx = ctx_ok(&so, 1), *anon = ctx_ok(&co, 0), *withcert = ctx_ok(&cco, 0);
    pair_t p;
    char buf[16];

    assert_true(llabs_diff(tls_ctx_cert_not_after(withcert), client_end) <= 2);

    /* no client certificate: the server refuses; in TLS 1.3 the client learns it from the alert that
     * follows its finished handshake */
    pair_connect(&p, anon, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_string_equal(tls_error(p.s), "peer did not return a certificate");
    assert_true(p.hc == TLS_ERR || p.rc == TLS_ERR);
    assert_int_equal(tls_read(p.c, buf, sizeof(buf)), TLS_ERR);
    print_message("    no certificate: server '%s', client '%s'\n", tls_error(p.s), tls_error(p.c));
    assert_string_not_equal(tls_error(p.c), "");
    pair_close(&p);

    /* with one */
    pair_connect(&p, withcert, sctx, "localhost");
    assert_pair_ok(&p);
    long long na = tls_peer_not_after(p.s);
    if (llabs_diff(na, client_end) > 2)
        fail_msg("server side: peer notAfter %lld, the client certificate's is %lld", na, client_end);
    assert_true(llabs_diff(tls_peer_not_after(p.c), server_end) <= 2);
    send_through(p.c, p.s, "AUTH x\r\n", 8);
    send_through(p.s, p.c, "+OK\r\n", 5);
    pair_close(&p);

    /* a client certificate from a CA the server does not trust, and an expired one */
    tls_opts_t bad = client_opts();
    bad.cert.path = P("stranger.crt");
    bad.key.path = P("stranger.key");
    tls_ctx_t *badctx = ctx_ok(&bad, 0);
    pair_connect(&p, badctx, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_string_equal(tls_error(p.s), "certificate verify failed: unable to get local issuer certificate");
    assert_int_equal(tls_read(p.c, buf, sizeof(buf)), TLS_ERR);
    pair_close(&p);
    tls_ctx_release(badctx);
    bad.cert.path = P("expired.crt");
    bad.key.path = P("expired.key");
    badctx = ctx_ok(&bad, 0);
    pair_connect(&p, badctx, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_string_equal(tls_error(p.s), "certificate verify failed: certificate has expired");
    pair_close(&p);
    tls_ctx_release(badctx);

    /* TLS 1.2: the same, the client fails during its handshake */
    tls_opts_t co12 = client_opts();
    co12.protocols = "TLSv1.2";
    tls_ctx_t *anon12 = ctx_ok(&co12, 0);
    pair_connect(&p, anon12, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_string_equal(tls_error(p.s), "peer did not return a certificate");
    assert_int_equal(p.hc, TLS_ERR);
    print_message("    TLS 1.2, no certificate: client '%s'\n", tls_error(p.c));
    pair_close(&p);
    tls_ctx_release(anon12);
    co12.cert.path = P("client.crt");
    co12.key.path = P("client.key");
    anon12 = ctx_ok(&co12, 0);
    pair_connect(&p, anon12, sctx, "localhost");
    assert_pair_ok(&p);
    assert_string_equal(tls_protocol(p.s), "TLSv1.2");
    assert_true(llabs_diff(tls_peer_not_after(p.s), client_end) <= 2);
    pair_close(&p);
    tls_ctx_release(anon12);
    tls_ctx_release(sctx);

    /* optional: a client without a certificate is let in; one with a certificate has it checked */
    so.verify = TLS_VERIFY_OPTIONAL;
    sctx = ctx_ok(&so, 1);
    pair_connect(&p, anon, sctx, "localhost");
    assert_pair_ok(&p);
    assert_int_equal(tls_peer_not_after(p.s), 0);
    pair_close(&p);
    pair_connect(&p, withcert, sctx, "localhost");
    assert_pair_ok(&p);
    assert_true(llabs_diff(tls_peer_not_after(p.s), client_end) <= 2);
    pair_close(&p);
    tls_ctx_release(sctx);

    tls_ctx_release(anon);
    tls_ctx_release(withcert);
}

/*
 * The message of a failed handshake names its cause. A client with ssl_cert_reqs none has a verify
 * result too (OpenSSL checks the chain and lets it pass): when its handshake fails for another reason
 * (here: the server wants a client certificate it does not have), that result is not the cause.
 */
static void test_verify_none_failure_names_the_cause(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    so.cert.path = P("selfsigned.crt");
    so.key.path = P("selfsigned.key");
    so.verify = TLS_VERIFY_REQUIRED;
    so.ca_file.path = P("ca.crt");
    co.verify = TLS_VERIFY_NONE;
    co.protocols = "TLSv1.2";                   /* the client is still in its handshake when refused */
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    pair_connect(&p, cctx, sctx, "localhost");
    char cerr[256], serr[256];
    int hc = p.hc, hs = p.hs;
    snprintf(cerr, sizeof(cerr), "%s", tls_error(p.c));
    snprintf(serr, sizeof(serr), "%s", tls_error(p.s));
    pair_close(&p);                             /* first: a failed check below leaves nothing behind */
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);

    assert_int_equal(hs, TLS_ERR);
    assert_string_equal(serr, "peer did not return a certificate");
    assert_int_equal(hc, TLS_ERR);
    print_message("    client: '%s'\n", cerr);
    if (strncmp(cerr, "certificate verify failed", 25) == 0)
        fail_msg("the client's handshake failed on the server's alert, yet says '%s'", cerr);
    assert_contains(cerr, "alert");
}

static void test_protocol_mismatch(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    so.protocols = "TLSv1.2";
    co.protocols = "TLSv1.3";
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;

    pair_connect(&p, cctx, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_int_equal(p.hc, TLS_ERR);
    print_message("    1.2 server, 1.3 client: server '%s', client '%s'\n", tls_error(p.s), tls_error(p.c));
    assert_string_equal(tls_error(p.s), "unsupported protocol");
    assert_contains(tls_error(p.c), "protocol version");
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);

    so.protocols = "TLSv1.3";
    co.protocols = "TLSv1.2";
    sctx = ctx_ok(&so, 1);
    cctx = ctx_ok(&co, 0);
    pair_connect(&p, cctx, sctx, "localhost");
    assert_int_equal(p.hs, TLS_ERR);
    assert_int_equal(p.hc, TLS_ERR);
    print_message("    1.3 server, 1.2 client: server '%s', client '%s'\n", tls_error(p.s), tls_error(p.c));
    assert_string_equal(tls_error(p.s), "unsupported protocol");
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

static void test_context_errors(void **state)
{
    tls_opts_t o;

    /* protocols and ciphers */
    o = server_opts();
    o.protocols = "TLSv1.4";
    ctx_fails(&o, 1, "tls-protocols", "'TLSv1.4'");
    o.protocols = "TLSv1.2 SSLv3";
    ctx_fails(&o, 1, "tls-protocols", "'SSLv3'");
    o.protocols = " , ";
    ctx_fails(&o, 1, "tls-protocols", "no protocol");
    o = client_opts();
    o.protocols = "TLSv13";
    ctx_fails(&o, 0, "tls-protocols", "'TLSv13'");
    o = server_opts();
    o.ciphers = "NO-SUCH-CIPHER";
    ctx_fails(&o, 1, "tls-ciphers", "'NO-SUCH-CIPHER'");
    o = server_opts();
    o.ciphersuites = "TLS_NO_SUCH_SUITE";
    ctx_fails(&o, 1, "tls-ciphersuites", "'TLS_NO_SUCH_SUITE'");

    /* a listener without its certificate or key */
    o = server_opts();
    o.cert.path = NULL;
    ctx_fails(&o, 1, "tls-cert-file", NULL);
    o = server_opts();
    o.cert.path = "";
    ctx_fails(&o, 1, "tls-cert-file", NULL);
    o = server_opts();
    o.key.path = NULL;
    ctx_fails(&o, 1, "tls-key-file", NULL);
    o = client_opts();
    o.key.path = P("client.key");
    ctx_fails(&o, 0, "ssl_keyfile", "ssl_certfile");

    /* files that are missing, not PEM, not files, or do not match: the option, the path, the reason */
    char want[512];
#define FILE_FAILS(opts, is_server, option, file)                                                      \
    do {                                                                                                \
        snprintf(want, sizeof(want), "%s '%s': ", (option), (file));                                    \
        ctx_fails((opts), (is_server), want, NULL);                                                     \
    } while (0)
    o = server_opts();
    o.cert.path = P("missing.crt");
    FILE_FAILS(&o, 1, "tls-cert-file", P("missing.crt"));
    o.cert.path = P("garbage.pem");
    FILE_FAILS(&o, 1, "tls-cert-file", P("garbage.pem"));
    o.cert.path = P("adir");
    FILE_FAILS(&o, 1, "tls-cert-file", P("adir"));
    o.cert.path = P("server.key");               /* a key where the certificate should be */
    FILE_FAILS(&o, 1, "tls-cert-file", P("server.key"));
    o = server_opts();
    o.key.path = P("missing.key");
    FILE_FAILS(&o, 1, "tls-key-file", P("missing.key"));
    o.key.path = P("garbage.pem");
    FILE_FAILS(&o, 1, "tls-key-file", P("garbage.pem"));
    o.key.path = P("client.key");                /* another certificate's key */
    FILE_FAILS(&o, 1, "tls-key-file", P("client.key"));
    o = server_opts();
    o.verify = TLS_VERIFY_REQUIRED;
    o.ca_file.path = P("missing-ca.crt");
    FILE_FAILS(&o, 1, "tls-ca-cert-file", P("missing-ca.crt"));
    o.ca_file.path = P("garbage.pem");
    FILE_FAILS(&o, 1, "tls-ca-cert-file", P("garbage.pem"));
    o = server_opts();
    o.verify = TLS_VERIFY_REQUIRED;
    o.ca_dir.path = P("missing-dir");
    FILE_FAILS(&o, 1, "tls-ca-cert-dir", P("missing-dir"));
    o = client_opts();
    o.ca_file.path = P("missing-ca.crt");
    FILE_FAILS(&o, 0, "ssl_ca_certs", P("missing-ca.crt"));
    o = client_opts();
    o.cert.path = P("client.crt");
    o.key.path = P("missing.key");
    FILE_FAILS(&o, 0, "ssl_keyfile", P("missing.key"));

    /* a file that exists but cannot be read (only without root's privileges: root reads anything) */
    if (geteuid() != 0) {
        const char *locked = P("locked.crt");
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 000 '%s'", P("server.crt"), locked, locked);
        assert_int_equal(system(cmd), 0);
        o = server_opts();
        o.cert.path = locked;
        FILE_FAILS(&o, 1, "tls-cert-file", locked);
        ctx_fails(&o, 1, "ermission denied", NULL);
    } else {
        print_message("    (running as root: the unreadable-file case is the directory above)\n");
    }
#undef FILE_FAILS

    /* verifying clients without a CA to verify them with */
    o = server_opts();
    o.verify = TLS_VERIFY_REQUIRED;
    ctx_fails(&o, 1, "tls-ca-cert-file", "tls-ca-cert-dir");
    o.verify = TLS_VERIFY_OPTIONAL;
    ctx_fails(&o, 1, "tls-ca-cert-file", "tls-ca-cert-dir");

    /* a small err is cut, never overrun */
    char small[8];
    memset(small, 'x', sizeof(small));
    o = server_opts();
    o.cert.path = P("missing.crt");
    assert_null(tls_ctx_create(&o, 1, small, 6));
    assert_int_equal(strlen(small), 5);
    assert_int_equal(small[6], 'x');
}

/*
 * A file's error names what is wrong with it, as OpenSSL first reported it ("no start line": not PEM; "bad
 * decrypt": a wrong pass phrase), not the generic "PEM lib" OpenSSL adds on top of it (tls.c's comment on
 * tls_errstr gives "no start line" as its example).
 */
static void test_file_errors_name_the_cause(void **state)
{
    tls_opts_t o = server_opts();
    char want[512];

    o.cert.path = P("garbage.pem");
    snprintf(want, sizeof(want), "tls-cert-file '%s': no start line", P("garbage.pem"));
    ctx_fails(&o, 1, want, NULL);
    o = server_opts();
    o.key.path = P("server.enc.key");
    o.key_pass = "wrong";
    snprintf(want, sizeof(want), "tls-key-file '%s': bad decrypt", P("server.enc.key"));
    ctx_fails(&o, 1, want, NULL);
    o = server_opts();
    o.key.path = P("client.key");
    snprintf(want, sizeof(want), "tls-key-file '%s': key values mismatch", P("client.key"));
    ctx_fails(&o, 1, want, NULL);
    o = server_opts();
    o.cert.path = P("missing.crt");
    snprintf(want, sizeof(want), "tls-cert-file '%s': %s", P("missing.crt"), strerror(ENOENT));
    ctx_fails(&o, 1, want, NULL);
}

static void test_encrypted_key(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    so.key.path = P("server.enc.key");
    char want[300];
    snprintf(want, sizeof(want), "tls-key-file '%s': ", P("server.enc.key"));

    ctx_fails(&so, 1, want, NULL);                      /* no pass phrase */
    so.key_pass = "wrong";
    ctx_fails(&so, 1, want, NULL);
    so.key_pass = PASS;
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;
    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    send_through(p.c, p.s, "PING\r\n", 6);
    pair_close(&p);
    tls_ctx_release(sctx);
    tls_ctx_release(cctx);

    /* a client certificate's encrypted key (ssl_keyfile; the same pass-phrase field) */
    co.cert.path = P("server.crt");
    co.key.path = P("server.enc.key");
    co.key_pass = PASS;
    cctx = ctx_ok(&co, 0);
    tls_ctx_release(cctx);
}

/* Feed bytes to a fresh server session: the handshake fails, and stays failed. */
static void garbage_fails(tls_ctx_t *sctx, const char *data, size_t len, const char *why)
{
    tls_t *s = tls_create(sctx, NULL);
    char buf[64];
    buf_t out;

    buf_init(&out);
    tls_feed(s, data, len);
    assert_true(tls_has_input(s));
    ssize_t n = tls_read(s, buf, sizeof(buf));
    if (n != TLS_ERR)
        fail_msg("tls_read of %zu garbage bytes returned %zd", len, n);
    print_message("    %zu bytes: '%s'\n", len, tls_error(s));
    if (why != NULL)
        assert_string_equal(tls_error(s), why);
    assert_string_not_equal(tls_error(s), "");
    char first[200];
    snprintf(first, sizeof(first), "%s", tls_error(s));
    tls_take_output(s, &out);                   /* an alert at most */
    assert_true(out.len < 64);
    for (int i = 0; i < 3; i++) {
        tls_feed(s, data, len);
        assert_int_equal(tls_read(s, buf, sizeof(buf)), TLS_ERR);
        assert_int_equal(tls_handshake(s), TLS_ERR);
        assert_int_equal(tls_write(s, "x", 1), TLS_ERR);
        assert_string_equal(tls_error(s), first);
    }
    assert_false(tls_handshake_done(s));
    tls_close_notify(s);                        /* nothing to say on a failed session */
    buf_reset(&out);
    tls_take_output(s, &out);
    assert_int_equal(out.len, 0);
    buf_deinit(&out);
    tls_destroy(s);
}

static void test_garbage(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char resp[] = "*1\r\n$4\r\nPING\r\n";
    static const char post[] = "POST /x HTTP/1.1\r\n\r\n";

    garbage_fails(sctx, http, sizeof(http) - 1, "http request");
    garbage_fails(sctx, post, sizeof(post) - 1, "http request");
    garbage_fails(sctx, resp, sizeof(resp) - 1, "wrong version number");
    garbage_fails(sctx, "PING\r\n", 6, "wrong version number");
    /* a record header announcing more than a record may hold */
    garbage_fails(sctx, "\x16\x03\x01\xff\xff", 5, NULL);
    /* a handshake record holding no ClientHello */
    garbage_fails(sctx, "\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, NULL);
    /* an alert before anything */
    garbage_fails(sctx, "\x15\x03\x03\x00\x02\x02\x28", 7, NULL);

    /* pseudo-random bytes, a few seeds */
    char rnd[4096];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < 8; k++) {
        for (size_t i = 0; i < sizeof(rnd); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rnd[i] = (char)x;
        }
        if (k & 1)
            rnd[0] = 0x16;                      /* a handshake record type, then junk */
        garbage_fails(sctx, rnd, sizeof(rnd), NULL);
    }

    /* a record cut short is not an error: more may come */
    tls_t *s = tls_create(sctx, NULL);
    char buf[16];
    tls_feed(s, "\x16\x03\x01\x02", 4);
    assert_int_equal(tls_read(s, buf, sizeof(buf)), TLS_AGAIN);
    assert_string_equal(tls_error(s), "");
    tls_destroy(s);

    /* garbage in answer to a client's hello */
    tls_t *c = tls_create(cctx, "localhost");
    assert_int_equal(tls_handshake(c), TLS_AGAIN);
    buf_t out;
    buf_init(&out);
    tls_take_output(c, &out);
    assert_true(out.len > 0 && (unsigned char)out.data[0] == 0x16);     /* the ClientHello */
    buf_deinit(&out);
    tls_feed(c, "-ERR unknown command\r\n", 22);
    assert_int_equal(tls_read(c, buf, sizeof(buf)), TLS_ERR);
    print_message("    client: '%s'\n", tls_error(c));
    assert_string_equal(tls_error(c), "wrong version number");
    tls_destroy(c);

    /* garbage after a finished handshake: a record that does not decrypt */
    pair_t p;
    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    tls_feed(p.s, "\x17\x03\x03\x00\x20" "0123456789abcdef0123456789abcdef", 37);
    assert_int_equal(tls_read(p.s, buf, sizeof(buf)), TLS_ERR);
    print_message("    after the handshake: '%s'\n", tls_error(p.s));
    assert_string_not_equal(tls_error(p.s), "");
    assert_int_equal(tls_write(p.s, "x", 1), TLS_ERR);
    assert_int_equal(tls_read(p.s, buf, sizeof(buf)), TLS_ERR);
    pair_close(&p);

    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

/* ---- a raw OpenSSL client, for what tls.h cannot do: start a renegotiation -------------------------- */

static void raw_move(SSL *ssl, BIO *wbio, tls_t *to)
{
    char b[16384];
    int n;
    (void)ssl;
    while ((n = BIO_read(wbio, b, sizeof(b))) > 0)
        tls_feed(to, b, (size_t)n);
}

static void raw_take(tls_t *from, BIO *rbio)
{
    buf_t b;
    buf_init(&b);
    tls_take_output(from, &b);
    if (b.len > 0)
        assert_int_equal(BIO_write(rbio, b.data, (int)b.len), (int)b.len);
    buf_deinit(&b);
}

/*
 * The contract: a TLS 1.2 renegotiation attempt is TLS_ERR with "TLS renegotiation refused" on the
 * server side (the listener logs it and closes). tls.h offers no way to start one, so the client here is
 * OpenSSL itself (as `openssl s_client -tls1_2` and then "R").
 */
static void test_renegotiation(void **state)
{
    tls_opts_t so = server_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1);
    SSL_CTX *rctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(rctx);
    SSL_CTX_set_max_proto_version(rctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(rctx, SSL_VERIFY_NONE, NULL);
    SSL *r = SSL_new(rctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(r, rbio, wbio);
    SSL_set_connect_state(r);
    tls_t *s = tls_create(sctx, NULL);
    char buf[64];
    int rr = -1, hs = TLS_AGAIN;

    for (int i = 0; i < 16 && (rr != 1 || hs != 1); i++) {
        rr = SSL_do_handshake(r);
        raw_move(r, wbio, s);
        hs = tls_handshake(s);
        raw_take(s, rbio);
    }
    assert_int_equal(rr, 1);
    assert_int_equal(hs, 1);
    assert_string_equal(tls_protocol(s), "TLSv1.2");
    assert_int_equal(SSL_write(r, "PING\r\n", 6), 6);
    raw_move(r, wbio, s);
    assert_int_equal(tls_read(s, buf, sizeof(buf)), 6);

    /* "R": the client asks for a new handshake */
    assert_int_equal(SSL_renegotiate(r), 1);
    SSL_do_handshake(r);                        /* sends the new ClientHello; waits for the answer */
    raw_move(r, wbio, s);
    ssize_t n = TLS_AGAIN;
    for (int i = 0; i < 8 && n == TLS_AGAIN; i++) {
        n = tls_read(s, buf, sizeof(buf));
        raw_take(s, rbio);
        char rb[64];
        ERR_clear_error();
        SSL_read(r, rb, sizeof(rb));            /* the client reads the server's answer (an alert) */
        ERR_clear_error();
        raw_move(r, wbio, s);
    }
    print_message("    server: tls_read %zd '%s'\n", n, tls_error(s));
    if (n != TLS_ERR)
        fail_msg("a TLS 1.2 renegotiation attempt: tls_read returned %zd, error '%s' (expected TLS_ERR "
                 "'TLS renegotiation refused')", n, tls_error(s));
    assert_string_equal(tls_error(s), "TLS renegotiation refused");
    assert_int_equal(tls_read(s, buf, sizeof(buf)), TLS_ERR);

    tls_destroy(s);
    SSL_free(r);
    SSL_CTX_free(rctx);
    tls_ctx_release(sctx);
}

static void test_close_notify(void **state)
{
    tls_opts_t so = server_opts(), co = client_opts();
    tls_ctx_t *sctx = ctx_ok(&so, 1), *cctx = ctx_ok(&co, 0);
    pair_t p;
    char buf[16];

    /* the client closes: the server reads end of file, and again */
    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    send_through(p.c, p.s, "QUIT\r\n", 6);
    tls_close_notify(p.c);
    assert_true(move(p.c, p.s) > 0);
    assert_int_equal(tls_read(p.s, buf, sizeof(buf)), TLS_EOF);
    assert_int_equal(tls_read(p.s, buf, sizeof(buf)), TLS_EOF);
    assert_string_equal(tls_error(p.s), "");
    pair_close(&p);

    /* data then close_notify in one feed: the data first */
    pair_connect(&p, cctx, sctx, "localhost");
    assert_pair_ok(&p);
    assert_int_equal(tls_write(p.s, "+OK\r\n", 5), 0);
    tls_close_notify(p.s);
    move(p.s, p.c);
    assert_int_equal(tls_read(p.c, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "+OK\r\n", 5);
    assert_int_equal(tls_read(p.c, buf, sizeof(buf)), TLS_EOF);
    pair_close(&p);

    /* before the handshake is done there is nothing to close */
    tls_t *c = tls_create(cctx, "localhost");
    buf_t out;
    buf_init(&out);
    tls_close_notify(c);
    tls_take_output(c, &out);
    assert_int_equal(out.len, 0);
    buf_deinit(&out);
    tls_destroy(c);

    tls_ctx_release(sctx);
    tls_ctx_release(cctx);
}

static void test_format_time(void **state)
{
    char out[32];

    memset(out, 'x', sizeof(out));
    tls_format_time(0, out, sizeof(out));
    assert_string_equal(out, "");
    tls_format_time(1, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:01Z");
    tls_format_time(1799048727LL, out, sizeof(out));
    assert_string_equal(out, "2027-01-04T07:45:27Z");
    tls_format_time(951782400LL, out, sizeof(out));             /* a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00Z");
    tls_format_time(4102444799LL, out, sizeof(out));
    assert_string_equal(out, "2099-12-31T23:59:59Z");
    tls_format_time(-1, out, sizeof(out));                      /* before the epoch: still UTC text */
    assert_string_equal(out, "1969-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_context_outlives_release),
        cmocka_unit_test(test_tls12),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_verify_none),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_verify_none_failure_names_the_cause),
        cmocka_unit_test(test_protocol_mismatch),
        cmocka_unit_test(test_context_errors),
        cmocka_unit_test(test_file_errors_name_the_cause),
        cmocka_unit_test(test_encrypted_key),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_renegotiation),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_format_time),
    };
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
