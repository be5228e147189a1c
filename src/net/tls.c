/*
 * net/tls: see tls.h. Each session is an SSL object over a BIO of ours, both ways: OpenSSL reads the
 * ciphertext fed from the socket straight from where it lies (lent by the stream for the time of one
 * read, or kept in the session's own buffer when it outlives that), and what OpenSSL writes is appended
 * to the session's output buffer, which the stream takes whole (a swap, no copy). OpenSSL's memory BIO
 * would copy each byte once more each way and manage a buffer of its own on every call; a source/sink BIO
 * is three short functions. A read that finds nothing says "again" (retry), never "end of file".
 *
 * OpenSSL keeps errors in a per-thread queue: a call that may fail starts with an empty queue (emptied
 * if it is not), so an error reported is this call's, and the queue is emptied into the session's
 * message when it fails.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/mem.h"

#define TLS_WRITE_CHUNK (1 << 30)       /* SSL_write takes an int length */

struct tls_ctx {
    SSL_CTX *ssl_ctx;           /* counted by OpenSSL: each SSL holds a reference */
    int is_server;
    int check_hostname;
    int verify;
};

struct tls {
    SSL *ssl;
    BIO *bio;                   /* ours (bio_method), owned by ssl */
    const char *in;             /* ciphertext fed and not yet read by OpenSSL: lent, or in keep */
    size_t in_len;
    int lent;                   /* in points into the caller's buffer (tls_lend), not into keep */
    buf_t keep;                 /* ciphertext that outlives the buffer it was lent in */
    buf_t out;                  /* ciphertext OpenSSL wrote, for tls_take_output */
    int is_server;
    int done;                   /* handshake finished */
    int reneg;                  /* the peer started a new handshake after the first (TLS 1.2) */
    long long peer_not_after;
    char err[200];
};

/* ---- errors -------------------------------------------------------------------------------------- */

/* Before a call whose failure is read from the queue: empty it if it is not (peeking is cheaper than
 * clearing its 16 entries every time). */
static inline void err_reset(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/*
 * Empty OpenSSL's error queue into out: the reason of its first library error, the innermost ("no start
 * line" rather than the "PEM lib" reported on top of it), or, when the queue holds a system error (a file
 * that cannot be opened), that error's text. fallback if empty.
 */
static void tls_errstr(char *out, size_t n, const char *fallback)
{
    unsigned long e, lib = 0;
    int sys = 0;

    while ((e = ERR_get_error()) != 0) {
        if (ERR_SYSTEM_ERROR(e))
            sys = ERR_GET_REASON(e);
        else if (lib == 0)
            lib = e;
    }
    if (sys != 0) {
        snprintf(out, n, "%s", strerror(sys));
    } else if (lib != 0) {
        const char *r = ERR_reason_error_string(lib);
        if (r != NULL)
            snprintf(out, n, "%s", r);
        else
            ERR_error_string_n(lib, out, n);
    } else {
        snprintf(out, n, "%s", fallback);
    }
}

static int file_error(const tls_file_t *f, char *err, size_t errlen, const char *fallback)
{
    char why[160];
    tls_errstr(why, sizeof(why), fallback);
    snprintf(err, errlen, "%s '%s': %s", f->option, f->path, why);
    return -1;
}

static int given(const tls_file_t *f)
{
    return f->path != NULL && f->path[0] != '\0';
}

/* ---- contexts ------------------------------------------------------------------------------------ */

static int key_pass_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    (void)rwflag;
    if (pass == NULL)
        return 0;
    int n = (int)strlen(pass);
    if (n > size)
        n = size;
    memcpy(buf, pass, (size_t)n);
    return n;
}

/* tls-protocols: the versions listed are allowed, the others switched off. */
static int set_protocols(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
    static const struct { const char *name; long off; } protos[] = {
        { "TLSv1", SSL_OP_NO_TLSv1 }, { "TLSv1.1", SSL_OP_NO_TLSv1_1 },
        { "TLSv1.2", SSL_OP_NO_TLSv1_2 }, { "TLSv1.3", SSL_OP_NO_TLSv1_3 },
    };
    long off = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3;
    char word[32];
    const char *p = list;
    int any = 0;

    if (list == NULL || list[0] == '\0')
        list = p = "TLSv1.2 TLSv1.3";
    while (*p) {
        size_t n = strcspn(p, " \t,");
        if (n > 0) {
            size_t i;
            snprintf(word, sizeof(word), "%.*s", (int)(n < sizeof(word) - 1 ? n : sizeof(word) - 1), p);
            for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
                if (strcasecmp(word, protos[i].name) == 0)
                    break;
            if (i == sizeof(protos) / sizeof(protos[0])) {
                snprintf(err, errlen, "tls-protocols: unknown protocol '%s' (accepted: TLSv1 TLSv1.1 TLSv1.2 "
                         "TLSv1.3)", word);
                return -1;
            }
            off &= ~protos[i].off;
            any = 1;
        }
        p += n;
        p += strspn(p, " \t,");
    }
    if (!any) {
        snprintf(err, errlen, "tls-protocols: no protocol in '%s'", list);
        return -1;
    }
    /* TLS 1.0 and 1.1 need OpenSSL's security level 0 (level 1 refuses their SHA-1 signatures) */
    if (!(off & (SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1)))
        SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_options(ctx, (uint64_t)off);
    return 0;
}

static int load_cas(SSL_CTX *ctx, const tls_opts_t *o, int is_server, char *err, size_t errlen)
{
    ERR_clear_error();
    if (given(&o->ca_file) && SSL_CTX_load_verify_locations(ctx, o->ca_file.path, NULL) != 1)
        return file_error(&o->ca_file, err, errlen, "no certificate found");
    if (given(&o->ca_dir) && SSL_CTX_load_verify_locations(ctx, NULL, o->ca_dir.path) != 1)
        return file_error(&o->ca_dir, err, errlen, "cannot use this directory");
    if (given(&o->ca_dir)) {
        /* OpenSSL reads a CA directory lazily: check now that it can be read at all */
        FILE *f = fopen(o->ca_dir.path, "r");
        if (f == NULL) {
            snprintf(err, errlen, "%s '%s': %s", o->ca_dir.option, o->ca_dir.path, strerror(errno));
            return -1;
        }
        fclose(f);
    }
    if (!given(&o->ca_file) && !given(&o->ca_dir) && !is_server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "cannot load the system's CA certificates");
        return -1;
    }
    if (is_server && given(&o->ca_file)) {
        /* the CAs a client may pick its certificate for */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file.path);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    return 0;
}

static int load_cert(SSL_CTX *ctx, const tls_opts_t *o, char *err, size_t errlen)
{
    const tls_file_t *key = given(&o->key) ? &o->key : &o->cert;

    SSL_CTX_set_default_passwd_cb(ctx, key_pass_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)o->key_pass);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert.path) != 1)
        return file_error(&o->cert, err, errlen, "no certificate found");
    if (SSL_CTX_use_PrivateKey_file(ctx, key->path, SSL_FILETYPE_PEM) != 1)
        return file_error(key, err, errlen, "no private key found (or a wrong pass phrase)");
    if (SSL_CTX_check_private_key(ctx) != 1)
        return file_error(key, err, errlen, "the key does not match the certificate");
    /* the pass phrase is needed only while the key is read */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    return 0;
}

tls_ctx_t *tls_ctx_create(const tls_opts_t *o, int is_server, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    tls_ctx_t *c;

    if (ctx == NULL) {
        tls_errstr(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Read and write buffers (17 KB each) stay while a session is busy: SSL_MODE_RELEASE_BUFFERS would
     * free and allocate both again for every command of a client at pipeline 1. Idle clients give them
     * back through tls_release_buffers (the server's once-a-second walk). */
    /* one BIO read takes every record at hand, not a 5-byte header and then the body of each */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (set_protocols(ctx, o->protocols, err, errlen) < 0)
        goto fail;
    ERR_clear_error();
    if (o->ciphers && o->ciphers[0] && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        snprintf(err, errlen, "tls-ciphers: no usable cipher in '%s'", o->ciphers);
        goto fail;
    }
    if (o->ciphersuites && o->ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        snprintf(err, errlen, "tls-ciphersuites: no usable cipher suite in '%s'", o->ciphersuites);
        goto fail;
    }
    if (o->prefer_server_ciphers)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

    if (is_server) {
        if (!given(&o->cert)) {
            snprintf(err, errlen, "%s is needed: the certificate the TLS listener presents", o->cert.option);
            goto fail;
        }
        if (!given(&o->key)) {
            snprintf(err, errlen, "%s is needed: the private key of %s", o->key.option, o->cert.option);
            goto fail;
        }
    } else if (given(&o->key) && !given(&o->cert)) {
        snprintf(err, errlen, "%s is given without %s", o->key.option, o->cert.option);
        goto fail;
    }
    if (given(&o->cert) && load_cert(ctx, o, err, errlen) < 0)
        goto fail;
    if ((!is_server || o->verify != TLS_VERIFY_NONE || given(&o->ca_file) || given(&o->ca_dir)) &&
        load_cas(ctx, o, is_server, err, errlen) < 0)
        goto fail;
    if (is_server && o->verify != TLS_VERIFY_NONE && !given(&o->ca_file) && !given(&o->ca_dir)) {
        snprintf(err, errlen, "verifying clients' certificates needs %s or %s (or set tls-auth-clients no)",
                 o->ca_file.option, o->ca_dir.option);
        goto fail;
    }

    if (o->verify == TLS_VERIFY_NONE)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    else if (is_server && o->verify == TLS_VERIFY_REQUIRED)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (is_server) {
        static const unsigned char sid[] = "cachetoryd";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        if (o->session_caching) {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
            if (o->session_cache_size > 0)
                SSL_CTX_sess_set_cache_size(ctx, o->session_cache_size);
            if (o->session_cache_timeout > 0)
                SSL_CTX_set_timeout(ctx, o->session_cache_timeout);
        } else {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
            SSL_CTX_set_num_tickets(ctx, 0);
        }
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }

    c = mem_calloc(1, sizeof(*c));
    c->ssl_ctx = ctx;
    c->is_server = is_server;
    c->check_hostname = o->check_hostname && o->verify != TLS_VERIFY_NONE;
    c->verify = o->verify;
    return c;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_ctx_release(tls_ctx_t *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ssl_ctx);
    mem_free(c);
}

/* Seconds since the epoch of an ASN.1 time (0 if it cannot be read). */
static long long asn1_epoch(const ASN1_TIME *at)
{
    int days = 0, secs = 0;
    if (at == NULL || ASN1_TIME_diff(&days, &secs, NULL, at) != 1)
        return 0;
    return (long long)time(NULL) + (long long)days * 86400 + secs;
}

long long tls_ctx_cert_not_after(const tls_ctx_t *c)
{
    X509 *x = c ? SSL_CTX_get0_certificate(c->ssl_ctx) : NULL;
    return x ? asn1_epoch(X509_get0_notAfter(x)) : 0;
}

void tls_format_time(long long t, char *out, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        if (n > 0)
            out[0] = '\0';
        return;
    }
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- sessions ------------------------------------------------------------------------------------ */

#define TLS_KEEP_IDLE (16 * 1024)       /* a kept-input buffer larger than this is given back when empty */

/* The BIO under every session: reads what was fed, appends what is written (see the top). */
static int bio_write_cb(BIO *b, const char *data, int len)
{
    tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    buf_append(&t->out, data, (size_t)len);
    return len;
}

static int bio_read_cb(BIO *b, char *data, int len)
{
    tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < t->in_len ? (size_t)len : t->in_len;
    memcpy(data, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static long bio_ctrl_cb(BIO *b, int cmd, long num, void *ptr)
{
    tls_t *t = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)t->in_len;
    case BIO_CTRL_WPENDING:
        return (long)t->out.len;
    default:
        return 0;
    }
}

/* Made once and kept for the process's life, as OpenSSL keeps its own BIO methods. */
static BIO_METHOD *bio_method(void)
{
    static BIO_METHOD *m;
    if (m == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cachetoryd stream");
        if (m == NULL)
            mem_oom(sizeof(void *));
        BIO_meth_set_write(m, bio_write_cb);
        BIO_meth_set_read(m, bio_read_cb);
        BIO_meth_set_ctrl(m, bio_ctrl_cb);
    }
    return m;
}

/* A handshake started after the first one: a TLS 1.2 renegotiation (TLS 1.3's post-handshake messages
 * start handshakes too, and are fine). */
static void info_cb(const SSL *ssl, int where, int ret)
{
    tls_t *t = SSL_get_app_data(ssl);
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) && t != NULL && t->done && SSL_version(ssl) < TLS1_3_VERSION)
        t->reneg = 1;
}

static int is_ip_literal(const char *host)
{
    ASN1_OCTET_STRING *a = a2i_IPADDRESS(host);
    if (a == NULL)
        return 0;
    ASN1_OCTET_STRING_free(a);
    return 1;
}

tls_t *tls_create(tls_ctx_t *ctx, const char *host)
{
    tls_t *t = mem_calloc(1, sizeof(*t));

    t->ssl = SSL_new(ctx->ssl_ctx);
    t->bio = BIO_new(bio_method());
    if (t->ssl == NULL || t->bio == NULL)
        mem_oom(sizeof(*t));
    BIO_set_data(t->bio, t);
    BIO_set_init(t->bio, 1);
    buf_init(&t->keep);
    buf_init(&t->out);
    SSL_set_bio(t->ssl, t->bio, t->bio);        /* one reference for both directions */
    SSL_set_app_data(t->ssl, t);
    SSL_set_info_callback(t->ssl, info_cb);
    t->is_server = ctx->is_server;
    if (ctx->is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (host != NULL && host[0] != '\0') {
            int ip = is_ip_literal(host);
            if (!ip)
                SSL_set_tlsext_host_name(t->ssl, host);
            if (ctx->check_hostname) {
                X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
                if (ip) {
                    X509_VERIFY_PARAM_set1_ip_asc(p, host);
                } else {
                    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    X509_VERIFY_PARAM_set1_host(p, host, 0);
                }
            }
        }
    }
    return t;
}

void tls_destroy(tls_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);           /* frees the BIO and drops the context's reference */
    buf_deinit(&t->keep);
    buf_deinit(&t->out);
    mem_free(t);
}

void tls_lend(tls_t *t, const char *data, size_t len)
{
    if (t->in_len == 0) {
        t->in = data;
        t->in_len = len;
        t->lent = 1;
        return;
    }
    tls_keep_input(t);
    buf_append(&t->keep, data, len);
    t->in = t->keep.data;
    t->in_len = t->keep.len;
}

void tls_keep_input(tls_t *t)
{
    if (t->in_len == 0) {
        t->lent = 0;
        buf_reset(&t->keep);
        if (t->keep.cap > TLS_KEEP_IDLE)
            buf_shrink(&t->keep, 0);
        return;
    }
    if (t->lent) {
        buf_reset(&t->keep);
        buf_append(&t->keep, t->in, t->in_len);
        t->lent = 0;
    } else {
        buf_consume(&t->keep, (size_t)(t->in - t->keep.data));
    }
    t->in = t->keep.data;
}

void tls_feed(tls_t *t, const char *data, size_t len)
{
    tls_lend(t, data, len);
    tls_keep_input(t);
}

int tls_has_input(const tls_t *t)
{
    return t->in_len > 0 || SSL_has_pending(t->ssl);
}

/* The session failed in an SSL call that returned rc: say why, in t->err. */
static int tls_fail(tls_t *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    long v = SSL_get_verify_result(t->ssl);
    char why[160];

    if (t->err[0] != '\0')
        return TLS_ERR;
    /* the verify result is the cause only when it counts: with SSL_VERIFY_NONE OpenSSL records it and
     * goes on, and a later failure (the peer's alert) has another cause */
    if (v != X509_V_OK && !t->done && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
        ERR_clear_error();
        snprintf(t->err, sizeof(t->err), "certificate verify failed: %s", X509_verify_cert_error_string(v));
        return TLS_ERR;
    }
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(t->err, sizeof(t->err), "the peer closed the connection during the TLS session");
        return TLS_ERR;
    }
    tls_errstr(why, sizeof(why), "TLS protocol error");
    snprintf(t->err, sizeof(t->err), "%s", why);
    return TLS_ERR;
}

static void handshake_finished(tls_t *t)
{
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    t->done = 1;
    t->peer_not_after = peer ? asn1_epoch(X509_get0_notAfter(peer)) : 0;
}

int tls_handshake(tls_t *t)
{
    if (t->done)
        return 1;
    if (t->err[0])
        return TLS_ERR;
    err_reset();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        handshake_finished(t);
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_AGAIN;
    return tls_fail(t, rc);
}

int tls_handshake_done(const tls_t *t)
{
    return t->done;
}

ssize_t tls_read(tls_t *t, char *buf, size_t cap)
{
    if (!t->done) {
        int rc = tls_handshake(t);
        if (rc != 1)
            return rc;
    }
    if (t->err[0])
        return TLS_ERR;
    err_reset();
    int n = SSL_read(t->ssl, buf, (int)(cap > INT_MAX ? INT_MAX : cap));
    if (t->reneg) {
        snprintf(t->err, sizeof(t->err), "TLS renegotiation refused");
        return TLS_ERR;
    }
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_AGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return TLS_EOF;
    return tls_fail(t, n);
}

int tls_write(tls_t *t, const char *data, size_t len)
{
    if (t->err[0])
        return TLS_ERR;
    while (len > 0) {
        int n = (int)(len > TLS_WRITE_CHUNK ? TLS_WRITE_CHUNK : len);
        err_reset();
        int w = SSL_write(t->ssl, data, n);
        if (w <= 0)
            return tls_fail(t, w);
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

void tls_take_output(tls_t *t, buf_t *out)
{
    if (t->out.len == 0)
        return;
    if (out->len == 0) {            /* the usual case: the buffers trade places */
        buf_t b = *out;
        *out = t->out;
        t->out = b;
    } else {
        buf_append(out, t->out.data, t->out.len);
    }
    buf_reset(&t->out);
}

void tls_release_buffers(tls_t *t)
{
    if (t->done && !t->err[0] && t->in_len == 0 && t->out.len == 0) {
        (void)SSL_free_buffers(t->ssl);     /* refused (nothing freed) while a record is half read */
        buf_shrink(&t->out, 0);
    }
}

void tls_close_notify(tls_t *t)
{
    if (t->done && !t->err[0]) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

const char *tls_error(const tls_t *t)
{
    return t->err;
}

const char *tls_protocol(const tls_t *t)
{
    return t->done ? SSL_get_version(t->ssl) : "";
}

const char *tls_cipher(const tls_t *t)
{
    const char *c = t->done ? SSL_get_cipher_name(t->ssl) : NULL;
    return c ? c : "";
}

long long tls_peer_not_after(const tls_t *t)
{
    return t->peer_not_after;
}
