/*
 * net/tls: TLS over memory buffers (OpenSSL over a BIO of buffers), with no I/O of its own, so that the
 * libuv streams of net/stream can carry it: ciphertext read from the socket is fed in (tls_feed), plaintext
 * comes out of tls_read; plaintext given to tls_write comes out as ciphertext (tls_take_output) for the
 * stream to send. Client and server side alike: the upstream connections (rediss://) and the listener
 * (tls-port).
 *
 * Contexts (tls_ctx_t) hold what every connection of one side shares: certificates, CAs, verification,
 * protocols and ciphers. They are counted references: a session holds its context, so a context replaced
 * by a reload (SIGHUP) lives on until the last connection made with it is gone.
 *
 * Errors come back as text naming their cause as a user can act on it: the file and the option that named
 * it ("tls-cert-file '/etc/x.pem': no such file or directory"), the verification result
 * ("certificate verify failed: hostname mismatch"), or OpenSSL's reason ("wrong version number"). The
 * caller names its options (tls_file_t.option), so messages use the names the user wrote.
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef CACHETORYD_NET_TLS_H
#define CACHETORYD_NET_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

typedef struct tls_ctx tls_ctx_t;
typedef struct tls tls_t;

/* How the peer's certificate is checked (redis-py's ssl_cert_reqs; redis's tls-auth-clients). */
enum tls_verify {
    TLS_VERIFY_NONE,            /* not asked for / not checked */
    TLS_VERIFY_OPTIONAL,        /* checked if the peer presents one (a server always does) */
    TLS_VERIFY_REQUIRED,        /* must be presented and valid */
};

/* A file or directory given by an option, and that option's name for messages. */
typedef struct tls_file {
    const char *option;         /* "tls-cert-file", "ssl_ca_certs"... */
    const char *path;           /* NULL or "" = not given */
} tls_file_t;

typedef struct tls_opts {
    tls_file_t cert, key;       /* our certificate (chain) and its key; a server must have them */
    const char *key_pass;       /* pass phrase of an encrypted key, or NULL */
    tls_file_t ca_file, ca_dir; /* CAs to verify the peer with; none: the system's store (client side) */
    int verify;                 /* enum tls_verify */
    int check_hostname;         /* client: the server's certificate must name the host (tls_create) */
    const char *protocols;      /* "TLSv1.2 TLSv1.3" (any of TLSv1 TLSv1.1 TLSv1.2 TLSv1.3); NULL = 1.2 and 1.3 */
    const char *ciphers;        /* TLS 1.2 and below (OpenSSL's cipher list syntax), or NULL */
    const char *ciphersuites;   /* TLS 1.3, or NULL */
    int prefer_server_ciphers;
    int session_caching;        /* server: resume sessions (cache and tickets) */
    long session_cache_size;
    long session_cache_timeout; /* seconds */
} tls_opts_t;

/* A new context for the client side (is_server 0) or the server side. NULL with a message in err. */
tls_ctx_t *tls_ctx_create(const tls_opts_t *o, int is_server, char *err, size_t errlen);
/* Drop the caller's reference (sessions keep theirs). NULL is fine. */
void tls_ctx_release(tls_ctx_t *ctx);
/* The notAfter of the context's own certificate, in seconds since the epoch; 0 if it has none. */
long long tls_ctx_cert_not_after(const tls_ctx_t *ctx);

/*
 * A session over ctx. host (client side): the name sent as SNI (when it is not an IP address) and, with
 * check_hostname, the name or address the server's certificate must carry. The client side starts its
 * handshake on the first tls_handshake(); the server side waits for the client's hello.
 */
tls_t *tls_create(tls_ctx_t *ctx, const char *host);
void tls_destroy(tls_t *t);

#define TLS_AGAIN 0             /* needs more input */
#define TLS_EOF   (-1)          /* the peer closed the TLS session (close_notify) */
#define TLS_ERR   (-2)          /* failed: tls_error() says why; the session is unusable */

/* An idle session gives back OpenSSL's read and write buffers and its own output buffer (they come back
 * with the next record). Nothing is lost: a session holding unread input keeps them. */
void tls_release_buffers(tls_t *t);

/* Ciphertext received from the peer, copied as far as it is not read at once. */
void tls_feed(tls_t *t, const char *data, size_t len);
/* The same without a copy: data must stay as it is until tls_keep_input, which copies what is left of it
 * (the stream lends its read buffer for one read, and keeps the rest when it is done). */
void tls_lend(tls_t *t, const char *data, size_t len);
void tls_keep_input(tls_t *t);
/* Is input fed and not yet read? Then tls_read may have more to give without further tls_feed (or say
 * TLS_AGAIN: the input is part of a record). */
int tls_has_input(const tls_t *t);
/* Advance the handshake: 1 done, TLS_AGAIN, or TLS_ERR. Its output is in tls_take_output. */
int tls_handshake(tls_t *t);
int tls_handshake_done(const tls_t *t);
/* Plaintext received, up to cap bytes: > 0 bytes, TLS_AGAIN, TLS_EOF or TLS_ERR. Finishes the handshake
 * first if needed. A renegotiation attempt (TLS 1.2) is TLS_ERR. */
ssize_t tls_read(tls_t *t, char *buf, size_t cap);
/* Encrypt len bytes (only once the handshake is done). 0, or TLS_ERR. */
int tls_write(tls_t *t, const char *data, size_t len);
/* Append the ciphertext waiting to be sent to out. */
void tls_take_output(tls_t *t, buf_t *out);
/* A close_notify alert for the peer, to be sent before closing (best effort). */
void tls_close_notify(tls_t *t);

/* Why the session failed (empty if it did not). */
const char *tls_error(const tls_t *t);
/* The negotiated protocol ("TLSv1.3") and cipher, once the handshake is done ("" before). */
const char *tls_protocol(const tls_t *t);
const char *tls_cipher(const tls_t *t);
/* The peer certificate's notAfter (seconds since the epoch), or 0 without one. */
long long tls_peer_not_after(const tls_t *t);

/* "2027-01-04T07:45:27Z" for t (UTC) into out; "" for 0. */
void tls_format_time(long long t, char *out, size_t n);

#endif
