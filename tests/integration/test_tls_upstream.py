"""Upstream mode over TLS (backend = rediss://...), against a real redis-server started here with a TLS
port (tls_support.redis_tls_args) next to its plain port; the plain port is only for readiness checks and
for reading what landed in Redis directly.

  - SET/GET/MGET/MSET/DEL/INCR/APPEND, pipelines and values larger than a TLS record through rediss://
    with null:// and zstd://: the stored bytes (a zstd frame for zstd://), and cachetoryd's connections
    reaching Redis on its TLS port (CLIENT LIST laddr);
  - verification failures, each the client's command error "ERR upstream 127.0.0.1:PORT: certificate
    verify failed: <cause>": a certificate of a CA not in ssl_ca_certs, a certificate for another host name
    (127.0.0.1 and localhost in the URL), an expired certificate; ssl_cert_reqs=none and
    ssl_check_hostname=no lift the checks; the daemon keeps running, retries, and serves once the upstream
    presents a good certificate; SNI carries the URL's host name;
  - ssl_ca_path (a hashed CA directory);
  - mutual TLS (Redis with tls-auth-clients yes): no client certificate, or one of another CA, fails;
    ssl_certfile + ssl_keyfile of the right CA works;
  - AUTH over TLS and INFO's upstream_tls* fields (protocol, cipher, the server certificate's notAfter);
    the password shows in neither INFO nor CONFIG GET;
  - a TLS handshake that never finishes (a listener that accepts and stays silent): the command error
    names the handshake timeout (upstream-connect-timeout);
  - URL errors at start-up (--test-config and a real start): unknown ssl_ parameter, rediss+unix://,
    ssl_ params on redis://, unreadable or non-PEM files;
  - the upstream stopped (SIGTERM) and killed (SIGKILL) and started again on the same ports while clients
    write and read through cachetoryd: every acknowledged write reads back, service comes back.
"""
import datetime
import os
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest

import conftest
from helpers import Err, encode_command, parse_info
from tls_support import OPENSSL, redis_tls_args, tls_pki  # noqa: F401  (the fixture)
from upstream_support import (ZSTD_MAGIC, decode, encode_check, is_upstream_err, upstream_info,  # noqa: F401
                              upstreams, wait_for)

pytestmark = pytest.mark.needs_cachetoryd

UNKNOWN_CA = ("certificate verify failed: self-signed certificate in certificate chain",
              "certificate verify failed: unable to get local issuer certificate")
HOSTNAME = ("certificate verify failed: hostname mismatch",)
# An IP address in the URL that the certificate does not hold: OpenSSL's reason for that check is
# "IP address mismatch" (X509_V_ERR_IP_ADDRESS_MISMATCH); the brief's contract names only "hostname
# mismatch", for either kind of host.
IP_MISMATCH = HOSTNAME + ("certificate verify failed: IP address mismatch",)
EXPIRED = ("certificate verify failed: certificate has expired",)


# ---- certificates, servers, URLs ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tls_pki):
    """tls_pki plus the server certificates the failure tests present, a client certificate of the other CA
    and hashed CA directories."""
    p = tls_pki
    if "badhost" not in p.certs:
        p.leaf("badhost", p.certs["ca"], cn="example.invalid", hosts=("example.invalid",))
        p.leaf("expired", p.certs["ca"], not_before=-7200, not_after=-3600)
        p.leaf("othersrv", p.certs["other"])
        p.leaf("otherclient", p.certs["other"], cn="stranger", hosts=(), client=True)
        p.hashed_dir("cadir", p.certs["ca"])
        p.hashed_dir("otherdir", p.certs["other"])
    return p


def tls_upstream(upstreams, pki, server="server", auth_clients="no", **kw):
    """A redis-server with a plain port and a TLS port presenting pki's certificate `server`.
    Returns (RedisServer, tls_port)."""
    tls_port = conftest.free_port()
    extra = redis_tls_args(pki, tls_port, server=server, auth_clients=auth_clients) + list(kw.pop("extra", ()))
    return upstreams(extra=extra, **kw), tls_port


def rediss(port, host="127.0.0.1", password=None, user=None, db=0, **params):
    """rediss://[user:password@]host:port/db?k=v&..., params in the order given."""
    cred = "%s:%s@" % (user or "", password) if password else ""
    q = "&".join("%s=%s" % kv for kv in params.items())
    return "rediss://%s%s:%d/%d%s" % (cred, host, port, db, "?" + q if q else "")


def ca_url(pki, port, **params):
    return rediss(port, ssl_ca_certs=pki.certs["ca"].crt, **params)


def daemon(start_daemon, url, serializer="null://", **opts):
    opts.setdefault("upstream_retry_max", 200)
    opts.setdefault("upstream_connect_timeout", 1000)
    opts.setdefault("upstream_command_timeout", 2000)
    return start_daemon(backend=url, serializer=serializer, **opts)


def assert_upstream_err(r, port, causes, host="127.0.0.1", what=""):
    """r is "ERR upstream host:port: ..." containing one of causes (any upstream error if causes is None)."""
    prefix = "ERR upstream %s:%d: " % (host, port)
    assert isinstance(r, Err) and str(r).startswith(prefix), \
        "%s: expected an error starting %r, got %r" % (what, prefix, r)
    if causes is not None:
        assert any(c in r for c in causes), "%s: the error %r names none of %r" % (what, str(r), causes)


def tls_conns_of(up, tls_port, close=(), settle=True):
    """The connections Redis sees (other than the one asking), and those of them that came in on its TLS
    port. The redis-py clients in close are disconnected first; a connection on the plain port is given
    a moment to go away (a client closing), then counted."""
    for r in close:
        r.connection_pool.disconnect()

    def look():
        theirs = up.clients_from()
        return theirs, [x for x in theirs if x.get("laddr", "").endswith(":%d" % tls_port)]

    if settle:
        wait_for(lambda: len(look()[1]) == len(look()[0]), 2.0)
    return look()


def openssl_not_after(crt):
    """notAfter of a certificate as ISO 8601 UTC (2027-01-04T07:45:27Z), read with openssl x509."""
    out = subprocess.run([OPENSSL, "x509", "-noout", "-enddate", "-in", crt], stdout=subprocess.PIPE,
                         check=True, timeout=10).stdout.decode().strip()
    assert out.startswith("notAfter="), out
    t = datetime.datetime.strptime(out[len("notAfter="):], "%b %d %H:%M:%S %Y %Z")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_bin(*args, timeout=10):
    """build/cachetoryd with args on a free port: (exit status, output). A start that does not fail runs
    until the timeout and is killed: status None."""
    argv = [str(conftest.BIN)] + list(args) + ["--bind", "127.0.0.1", "--port", str(conftest.free_port())]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=str(conftest.REPO))
    except subprocess.TimeoutExpired as e:
        return None, (e.output or b"").decode("utf-8", "replace")
    return p.returncode, p.stdout.decode("utf-8", "replace")


class SilentListener:
    """A loopback TCP listener that accepts and never answers; it keeps what each connection sent."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.received = {}          # conn -> bytes
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 60
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            r, _, _ = select.select([self.sock] + self.conns, [], [], 0.05)
            for s in r:
                if s is self.sock:
                    c, _ = self.sock.accept()
                    self.conns.append(c)
                    self.received[c] = b""
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    self.received[s] += data
                else:
                    self.conns.remove(s)
                    s.close()

    def first_bytes(self):
        return [v for v in list(self.received.values()) if v]

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class SniRecorder:
    """A loopback TLS server (pki's server certificate) that records the SNI name of each handshake
    (None when the client sent none), then closes the connection."""

    def __init__(self, pki):
        self.names = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.certs["server"].crt, pki.certs["server"].key)
        self.ctx.sni_callback = self._sni
        self._seen = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sni(self, sslobj, name, ctx):
        self._seen = ("name", name)

    def _run(self):
        deadline = time.monotonic() + 60
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            c.settimeout(3)
            self._seen = None
            try:
                t = self.ctx.wrap_socket(c, server_side=True)
                self.names.append(self._seen[1] if self._seen else None)
                t.close()
            except (OSError, ssl.SSLError):
                if self._seen:
                    self.names.append(self._seen[1])
                c.close()

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.sock.close()


# ---- 1. commands and stored bytes ------------------------------------------------------------------

@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_commands_through_rediss(start_daemon, upstreams, pki, serializer):
    up, tls_port = tls_upstream(upstreams, pki)
    d = daemon(start_daemon, ca_url(pki, tls_port), serializer)
    c = d.conn()
    raw = up.client(0)
    big = os.urandom(300 * 1024)                 # many TLS records, incompressible
    assert c.cmd("SET", "k", b"hello over tls") == "OK"
    assert c.cmd("GET", "k") == b"hello over tls"
    assert c.cmd("MSET", "m:a", b"alpha", "m:b", b"beta" * 200, "m:c", b"\x00\xff binary") == "OK"
    assert c.cmd("MGET", "m:a", "m:b", "missing", "m:c") == [b"alpha", b"beta" * 200, None, b"\x00\xff binary"]
    assert c.cmd("INCR", "n") == 1 and c.cmd("INCR", "n") == 2
    assert c.cmd("APPEND", "ap", b"abc") == 3 and c.cmd("APPEND", "ap", b"def") == 6
    assert c.cmd("SET", "big", big) == "OK"
    assert c.cmd("SET", "gone", b"x") == "OK"
    assert c.cmd("DEL", "gone", "missing") == 1
    assert c.cmd("GET", "gone") is None
    expected = {"k": b"hello over tls", "m:a": b"alpha", "m:b": b"beta" * 200, "m:c": b"\x00\xff binary",
                "n": b"2", "ap": b"abcdef", "big": big}
    for k, v in expected.items():
        encode_check(serializer, raw.get(k), v, "%s written through rediss://" % k)
    assert raw.get("gone") is None, "DEL through rediss:// did not reach Redis"
    if serializer == "zstd://":
        assert raw.get("m:b")[:4] == ZSTD_MAGIC and len(raw.get("m:b")) < 200
    assert c.cmd("GET", "big") == big, "a 300 KB value read back through rediss:// differs"
    # a pipeline of 500 SETs then 500 GETs
    n = 500
    c.send(b"".join(encode_command("SET", "p:%d" % i, b"v%d" % i * 20) for i in range(n)))
    assert [c.read_reply() for _ in range(n)] == ["OK"] * n
    c.send(b"".join(encode_command("GET", "p:%d" % i) for i in range(n)))
    got = [c.read_reply() for _ in range(n)]
    assert got == [b"v%d" % i * 20 for i in range(n)], "pipelined GETs through rediss:// returned %r..." % got[:3]
    assert decode(serializer, raw.get("p:499")) == b"v499" * 20
    # cachetoryd's connections reach Redis on its TLS port, none on the plain one
    theirs, tls = tls_conns_of(up, tls_port, close=[raw])
    assert theirs and len(tls) == len(theirs), \
        "cachetoryd's connections to Redis (laddr): %r, TLS port %d" % ([x.get("laddr") for x in theirs], tls_port)
    info, _ = upstream_info(d)
    assert info.get("upstream_tls") == "yes", "INFO upstream_tls with a rediss:// backend: %r" % (
        info.get("upstream_tls"),)
    assert info.get("upstream_tls_verify") == "required", info.get("upstream_tls_verify")


def test_concurrent_clients_large_values(start_daemon, upstreams, pki):
    """Eight clients at once, SET then GET of values of 100-400 KB (tens of TLS records each, writes that
    cannot complete at once) over a pool of two TLS connections: every reply is the client's own."""
    up, tls_port = tls_upstream(upstreams, pki)
    d = daemon(start_daemon, ca_url(pki, tls_port), "zstd://", upstream_pool_size=2)
    errors = []

    def work(n):
        try:
            c = d.conn(timeout=20)
            vals = [os.urandom(1024) * (100 + 50 * ((n + j) % 7)) for j in range(6)]
            c.send(b"".join(encode_command("SET", "big:%d:%d" % (n, j), v) for j, v in enumerate(vals)))
            rs = [c.read_reply() for _ in vals]
            if rs != ["OK"] * len(vals):
                errors.append("client %d: SET replies %r" % (n, rs))
                return
            c.send(b"".join(encode_command("GET", "big:%d:%d" % (n, j)) for j in range(len(vals))))
            for j, v in enumerate(vals):
                r = c.read_reply()
                if r != v:
                    errors.append("client %d: GET big:%d:%d returned %r (%s bytes), expected %d bytes" % (
                        n, n, j, r[:20] if isinstance(r, bytes) else r, len(r) if isinstance(r, bytes) else "-", len(v)))
        except Exception as e:
            errors.append("client %d: %r" % (n, e))

    ts = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    assert not any(t.is_alive() for t in ts), "clients hung"
    assert not errors, errors[:3]
    assert up.client(0).get("big:3:2")[:4] == ZSTD_MAGIC


def test_upstream_closing_tls_connections(start_daemon, upstreams, pki):
    """Redis closing cachetoryd's TLS connections (its idle timeout, CLIENT KILL) is noticed and mended
    before the next command: clients see no error."""
    up, tls_port = tls_upstream(upstreams, pki, extra=["--timeout", "1"])
    d = daemon(start_daemon, ca_url(pki, tls_port), "zstd://")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    time.sleep(2.5)                     # Redis closes idle connections after 1 s (its cron: within ~1 s more)
    for _ in range(3):
        r = c.cmd("GET", "k")
        assert r == b"v", "GET after Redis closed idle TLS connections: %r" % (r,)
    with up.conn() as u:
        assert u.cmd("CLIENT", "KILL", "SKIPME", "yes") >= 1
    time.sleep(0.3)
    for _ in range(3):
        r = c.cmd("INCR", "n")
        assert isinstance(r, int), "INCR after CLIENT KILL of cachetoryd's TLS connections: %r" % (r,)
    assert int(upstream_info(d)[0].get("upstream_reconnects", "0")) >= 1


def test_plain_backend_reports_no_tls(start_daemon, upstreams):
    up = upstreams()
    d = start_daemon(backend=up.url(0))
    with d.conn() as c:
        assert c.cmd("SET", "k", "v") == "OK"
    info, _ = upstream_info(d)
    assert info.get("upstream_tls") == "no", "INFO upstream_tls with a redis:// backend: %r" % (
        info.get("upstream_tls"),)
    assert info.get("upstream_tls_protocol", "") == "" and info.get("upstream_tls_cipher", "") == "", info
    assert info.get("upstream_tls_peer_cert_not_after", "") == "", info


# ---- 2. verification failures --------------------------------------------------------------------

def expect_failures(d, port, causes, host="127.0.0.1", what="", n=3):
    c = d.conn(timeout=10)
    for i, cmd in enumerate((["SET", "k", "v"], ["GET", "k"], ["MGET", "a", "b"], ["INCR", "n"])[:n]):
        t = time.monotonic()
        r = c.cmd(*cmd)
        assert_upstream_err(r, port, causes, host, "%s, %s" % (what, cmd[0]))
        assert time.monotonic() - t < 3.0, "%s: %s took %.1fs to fail" % (what, cmd[0], time.monotonic() - t)
    assert d.alive(), "cachetoryd died after a failed TLS handshake (%s)" % what
    info, _ = upstream_info(d)
    assert info.get("upstream_connections_ready") == "0", "%s: connections ready %r" % (
        what, info.get("upstream_connections_ready"))
    assert info.get("upstream_tls_protocol", "") == "", \
        "%s: upstream_tls_protocol %r with no ready connection" % (what, info.get("upstream_tls_protocol"))
    return c


def test_unknown_ca_fails_then_recovers(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki, server="othersrv")
    d = daemon(start_daemon, ca_url(pki, tls_port))
    c = expect_failures(d, tls_port, UNKNOWN_CA, what="a certificate of a CA not in ssl_ca_certs")
    # nothing reached Redis, and no connection stays: Redis lists a TLS client from its accept on, so
    # handshakes in progress (retries) show for a moment, each from a new address
    assert up.client(0).get("k") is None
    first = {x.get("addr") for x in tls_conns_of(up, tls_port, settle=False)[1]}
    time.sleep(0.6)
    still = first & {x.get("addr") for x in tls_conns_of(up, tls_port, settle=False)[1]}
    assert not still, "connections of cachetoryd that stay on the TLS port: %r" % sorted(still)
    # ssl_cert_reqs=none: the same certificate is accepted
    d2 = daemon(start_daemon, ca_url(pki, tls_port, ssl_cert_reqs="none"))
    with d2.conn() as c2:
        assert c2.cmd("SET", "k2", "v2") == "OK", "ssl_cert_reqs=none with an unknown CA: %r" % (c2.cmd("GET", "k2"),)
        assert c2.cmd("GET", "k2") == b"v2"
    assert up.client(0).get("k2") == b"v2"
    info, _ = upstream_info(d2)
    assert info.get("upstream_tls_verify") == "none", info.get("upstream_tls_verify")
    assert info.get("upstream_tls_peer_cert_not_after") == openssl_not_after(pki.certs["othersrv"].crt), info
    # the first daemon keeps retrying: once Redis presents a certificate of the right CA it serves
    up.stop()
    up.extra = redis_tls_args(pki, tls_port, server="server")
    up.start()
    ok = wait_for(lambda: c.cmd("SET", "k", "v") == "OK", 5.0)
    assert ok, "no service 5 s after the upstream got a good certificate: %r" % (c.cmd("SET", "k", "v"),)
    assert c.cmd("GET", "k") == b"v" and up.client(0).get("k") == b"v"
    assert openssl_not_after(pki.certs["server"].crt) == upstream_info(d)[0].get("upstream_tls_peer_cert_not_after")


def test_hostname_mismatch(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki, server="badhost")
    d = daemon(start_daemon, ca_url(pki, tls_port))
    expect_failures(d, tls_port, IP_MISMATCH, what="an IP address not in the certificate")
    d = daemon(start_daemon, rediss(tls_port, host="localhost", ssl_ca_certs=pki.certs["ca"].crt))
    expect_failures(d, tls_port, HOSTNAME, host="localhost", what="a host name not in the certificate")
    for value in ("no", "0", "false"):
        d = daemon(start_daemon, ca_url(pki, tls_port, ssl_check_hostname=value))
        with d.conn() as c:
            r = c.cmd("SET", "k", value)
            assert r == "OK", "ssl_check_hostname=%s with a certificate for another name: %r" % (value, r)
            assert c.cmd("GET", "k") == value.encode()
    # the chain is still verified with ssl_check_hostname=no
    up2, port2 = tls_upstream(upstreams, pki, server="othersrv")
    d = daemon(start_daemon, ca_url(pki, port2, ssl_check_hostname="no"))
    expect_failures(d, port2, UNKNOWN_CA, what="ssl_check_hostname=no, a CA not in ssl_ca_certs", n=1)


def test_host_name_verified_and_sent_as_sni(start_daemon, upstreams, pki):
    # a DNS name in the URL that the certificate holds
    up, tls_port = tls_upstream(upstreams, pki)
    d = daemon(start_daemon, rediss(tls_port, host="localhost", ssl_ca_certs=pki.certs["ca"].crt))
    with d.conn() as c:
        assert c.cmd("SET", "k", "v") == "OK", c.cmd("GET", "k")
    # SNI: the URL's host name; none for an IP address (RFC 6066 allows no IP literal there)
    rec = SniRecorder(pki)
    try:
        d = daemon(start_daemon, rediss(rec.port, host="localhost", ssl_ca_certs=pki.certs["ca"].crt))
        with d.conn() as c:
            c.cmd("PING")
            c.cmd("GET", "k")
        assert wait_for(lambda: rec.names, 3.0), "no TLS handshake reached the recording server"
        assert rec.names[0] == "localhost", "SNI sent for rediss://localhost: %r" % (rec.names,)
        d.stop()                                  # it keeps reconnecting: the recorder closes each connection
        time.sleep(0.1)
        n = len(rec.names)
        d = daemon(start_daemon, rediss(rec.port, ssl_ca_certs=pki.certs["ca"].crt))
        with d.conn() as c:
            c.cmd("GET", "k")
        assert wait_for(lambda: len(rec.names) > n, 3.0), "no TLS handshake reached the recording server"
        assert set(rec.names[n:]) == {None}, "SNI sent for rediss://127.0.0.1: %r" % (rec.names[n:],)
    finally:
        rec.close()


def test_expired_certificate(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki, server="expired")
    d = daemon(start_daemon, ca_url(pki, tls_port))
    expect_failures(d, tls_port, EXPIRED, what="an expired server certificate")
    assert up.client(0).get("k") is None
    # ssl_cert_reqs=none: no verification, so the expired certificate serves, and keeps serving
    d = daemon(start_daemon, ca_url(pki, tls_port, ssl_cert_reqs="none"))
    with d.conn() as c:
        replies = []
        t_end = time.monotonic() + 0.6
        while time.monotonic() < t_end:
            replies.append(c.cmd("INCR", "n"))
            time.sleep(0.03)
        assert all(not isinstance(r, Err) for r in replies), \
            "ssl_cert_reqs=none, an expired certificate: %d of %d INCRs failed, e.g. %r" % (
                sum(isinstance(r, Err) for r in replies), len(replies), next(r for r in replies if isinstance(r, Err)))
    info, _ = upstream_info(d)
    assert info.get("upstream_reconnects") == "0", \
        "ssl_cert_reqs=none, an expired certificate: upstream_reconnects %r" % (info.get("upstream_reconnects"),)


# ---- 3. ssl_ca_path ---------------------------------------------------------------------------------

def test_ca_path(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki)
    d = daemon(start_daemon, rediss(tls_port, ssl_ca_path=pki.path("cadir")), "zstd://")
    with d.conn() as c:
        r = c.cmd("SET", "k", b"via ca path")
        assert r == "OK", "ssl_ca_path with the server's CA: %r" % (r,)
        assert c.cmd("GET", "k") == b"via ca path"
    encode_check("zstd://", up.client(0).get("k"), b"via ca path")
    # a directory holding only another CA does not verify it
    d = daemon(start_daemon, rediss(tls_port, ssl_ca_path=pki.path("otherdir")))
    expect_failures(d, tls_port, UNKNOWN_CA, what="ssl_ca_path without the server's CA", n=2)


# ---- 4. mutual TLS ----------------------------------------------------------------------------------

def test_mutual_tls(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki, auth_clients="yes")
    # no client certificate
    d = daemon(start_daemon, ca_url(pki, tls_port))
    expect_failures(d, tls_port, ("certificate required", "peer did not return a certificate", "handshake failure"),
                    what="no client certificate, tls-auth-clients yes")
    # a client certificate of a CA Redis does not trust
    oc = pki.certs["otherclient"]
    d = daemon(start_daemon, ca_url(pki, tls_port, ssl_certfile=oc.crt, ssl_keyfile=oc.key))
    expect_failures(d, tls_port, ("unknown ca", "certificate verify failed"), what="a client certificate of another CA",
                    n=2)
    assert up.client(0).get("k") is None
    # the right one
    cc = pki.certs["client"]
    d = daemon(start_daemon, ca_url(pki, tls_port, ssl_certfile=cc.crt, ssl_keyfile=cc.key), "zstd://")
    with d.conn() as c:
        r = c.cmd("SET", "k", b"mutual")
        assert r == "OK", "mutual TLS with ssl_certfile/ssl_keyfile: %r" % (r,)
        assert c.cmd("GET", "k") == b"mutual"
        assert c.cmd("INCR", "n") == 1
    encode_check("zstd://", up.client(0).get("k"), b"mutual")
    theirs, tls = tls_conns_of(up, tls_port, settle=False)
    assert tls, "no connection of cachetoryd on the TLS port: %r" % ([x.get("laddr") for x in theirs],)


# ---- 5. AUTH over TLS, INFO -------------------------------------------------------------------------

PW = "Tls0nlyUpstreamSecret"


def test_auth_over_tls_and_info(start_daemon, upstreams, pki):
    up, tls_port = tls_upstream(upstreams, pki, password=PW)
    # a wrong password is an upstream error, not a TLS one
    d = daemon(start_daemon, rediss(tls_port, password="wrong-pw", ssl_ca_certs=pki.certs["ca"].crt))
    with d.conn() as c:
        r = c.cmd("SET", "k", "v")
        assert_upstream_err(r, tls_port, ("WRONGPASS", "invalid password"), what="a wrong password over TLS")
    d = daemon(start_daemon, rediss(tls_port, password=PW, ssl_ca_certs=pki.certs["ca"].crt), "zstd://")
    c = d.conn()
    assert c.cmd("SET", "k", b"authenticated") == "OK", c.cmd("GET", "k")
    assert c.cmd("GET", "k") == b"authenticated"
    encode_check("zstd://", up.client(0).get("k"), b"authenticated")
    info = parse_info(c.cmd("INFO", "upstream"))
    assert info.get("upstream_tls") == "yes", info
    assert info.get("upstream_tls_verify") == "required", info
    assert info.get("upstream_tls_protocol") in ("TLSv1.2", "TLSv1.3"), info.get("upstream_tls_protocol")
    assert info.get("upstream_tls_cipher", "") != "", "upstream_tls_cipher empty with a ready connection"
    want = openssl_not_after(pki.certs["server"].crt)
    assert info.get("upstream_tls_peer_cert_not_after") == want, \
        "upstream_tls_peer_cert_not_after %r, the server certificate's notAfter is %s" % (
            info.get("upstream_tls_peer_cert_not_after"), want)
    seen = {"INFO": c.cmd("INFO"), "INFO all": c.cmd("INFO", "all"), "INFO everything": c.cmd("INFO", "everything"),
            "CONFIG GET *": c.cmd("CONFIG", "GET", "*"), "CONFIG GET backend": c.cmd("CONFIG", "GET", "backend")}
    for what, reply in seen.items():
        text = repr(reply)
        assert PW not in text, "%s shows the upstream's password: %s" % (what, text[:2000])
    assert "rediss://" in repr(seen["CONFIG GET backend"]), seen["CONFIG GET backend"]


def test_protocol_reported(start_daemon, upstreams, pki):
    """Redis limited to TLS 1.2: INFO says TLSv1.2 and a TLS 1.2 cipher name."""
    up, tls_port = tls_upstream(upstreams, pki, extra=["--tls-protocols", "TLSv1.2"])
    d = daemon(start_daemon, ca_url(pki, tls_port))
    with d.conn() as c:
        assert c.cmd("SET", "k", "v") == "OK"
    info, _ = upstream_info(d)
    assert info.get("upstream_tls_protocol") == "TLSv1.2", info.get("upstream_tls_protocol")
    cipher = info.get("upstream_tls_cipher", "")
    assert cipher and not cipher.startswith("TLS_"), "a TLS 1.2 cipher name: %r" % cipher


# ---- 6. handshake timeout ---------------------------------------------------------------------------

def test_handshake_timeout(start_daemon, pki):
    lst = SilentListener()
    try:
        d = daemon(start_daemon, ca_url(pki, lst.port), upstream_connect_timeout=300,
                   upstream_command_timeout=5000)
        c = d.conn(timeout=15)
        for _ in range(3):
            t = time.monotonic()
            r = c.cmd("GET", "k")
            dt = time.monotonic() - t
            assert_upstream_err(r, lst.port, ("TLS handshake timed out after 300 ms",), what="a silent TLS peer")
            assert dt < 1.5, "GET took %.2fs to fail (connect timeout 300 ms, command timeout 5000 ms)" % dt
        assert d.alive()
        hellos = lst.first_bytes()
        assert hellos, "the silent listener received nothing"
        h = hellos[0]
        assert h[0] == 0x16 and h[5] == 0x01, "the first bytes are not a TLS ClientHello: %r" % (h[:8],)
    finally:
        lst.close()


# ---- 7. URL errors at start-up ----------------------------------------------------------------------

def test_url_errors_at_start(pki):
    ca = pki.certs["ca"].crt
    notpem = pki.path("not-pem.txt")
    with open(notpem, "w") as f:
        f.write("this is not a certificate\n")
    missing = pki.path("no-such-file.pem")
    cases = [
        (rediss(6379, ssl_ca_certs=ca, ssl_bogus="1"), "unknown parameter 'ssl_bogus'"),
        (rediss(6379, ssl_verify="yes"), "unknown parameter 'ssl_verify'"),
        ("rediss+unix:///tmp/redis.sock", "TLS over a unix socket is not supported"),
        ("rediss+unix:///tmp/redis.sock?ssl_ca_certs=%s" % ca, "TLS over a unix socket is not supported"),
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=%s" % ca, "need rediss://"),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", "need rediss://"),
        (rediss(6379, ssl_ca_certs=missing), "ssl_ca_certs '%s': " % missing),
        (rediss(6379, ssl_ca_certs=notpem), "ssl_ca_certs '%s': " % notpem),
        (rediss(6379, ssl_ca_path=missing), "ssl_ca_path '%s'" % missing),
        (rediss(6379, ssl_certfile=missing, ssl_keyfile=pki.certs["client"].key), "ssl_certfile '%s': " % missing),
        (rediss(6379, ssl_certfile=pki.certs["client"].crt, ssl_keyfile=notpem), "ssl_keyfile '%s': " % notpem),
        (rediss(6379, ssl_certfile=pki.certs["client"].crt, ssl_keyfile=pki.certs["server"].key),
         "ssl_keyfile '%s': " % pki.certs["server"].key),            # not the certificate's key
    ]
    problems = []
    for url, want in cases:
        for mode in ("--test-config", "start"):
            args = (["--test-config"] if mode != "start" else []) + ["--backend", url]
            rc, out = run_bin(*args, timeout=3 if mode == "start" else 10)
            if rc != 1 or want not in out:
                problems.append("%s --backend %s: exit %r, expected 1 and %r; output: %s" % (
                    mode, url, rc, want, out.strip()[-400:]))
    # invalid values of the enumerated parameters
    for url, name in ((rediss(6379, ssl_cert_reqs="sometimes"), "ssl_cert_reqs"),
                      (rediss(6379, ssl_check_hostname="perhaps"), "ssl_check_hostname")):
        rc, out = run_bin("--test-config", "--backend", url)
        if rc != 1 or name not in out:
            problems.append("--test-config --backend %s: exit %r, expected 1 naming %s; output: %s" % (
                url, rc, name, out.strip()[-400:]))
    # a valid rediss:// URL passes --test-config
    rc, out = run_bin("--test-config", "--backend", rediss(6379, ssl_ca_certs=ca, ssl_cert_reqs="optional",
                                                           ssl_check_hostname="yes"))
    if rc != 0:
        problems.append("--test-config with a valid rediss:// URL: exit %r; output: %s" % (rc, out.strip()[-400:]))
    assert not problems, "\n".join(problems)


# ---- 8. upstream restart under load ------------------------------------------------------------------

class LoadClient(threading.Thread):
    """One client through cachetoryd: unique SETs, GETs of acknowledged ones, INCRs of its counter; errors
    must be "ERR upstream ..."."""

    def __init__(self, n, conn, stop, deadline):
        super().__init__(daemon=True)
        self.n, self.conn, self.stop_ev, self.deadline = n, conn, stop, deadline
        self.acked = {}
        self.i = 0
        self.ctr_sent = self.ctr_last = 0
        self.bad = []
        self.oks = []           # end times of successful commands
        self.errs = []          # end times of upstream errors

    def note(self, r, what):
        t = time.monotonic()
        if isinstance(r, Err):
            if not is_upstream_err(r):
                self.bad.append("%s: %r" % (what, r))
            self.errs.append(t)
            time.sleep(0.002)
            return False
        self.oks.append(t)
        return True

    def run(self):
        try:
            while not self.stop_ev.is_set() and time.monotonic() < self.deadline and len(self.bad) < 20:
                k, v = "ld:%d:%d" % (self.n, self.i), (b"v-%d-%d;" % (self.n, self.i)) * (1 + self.i % 50)
                self.i += 1
                if self.note(self.conn.cmd("SET", k, v), "SET " + k):
                    self.acked[k] = v
                if self.acked and self.i % 3 == 0:
                    gk = "ld:%d:%d" % (self.n, self.i - 2)
                    r = self.conn.cmd("GET", gk)
                    if self.note(r, "GET " + gk) and gk in self.acked and r != self.acked[gk]:
                        self.bad.append("GET %s (acknowledged) returned %r" % (gk, r if r is None else r[:30]))
                if self.i % 5 == 0:
                    self.ctr_sent += 1
                    r = self.conn.cmd("INCR", "ctr:%d" % self.n)
                    if self.note(r, "INCR"):
                        if not (self.ctr_last < r <= self.ctr_sent):
                            self.bad.append("INCR replied %r after %d, %d sent" % (r, self.ctr_last, self.ctr_sent))
                        self.ctr_last = r
        except Exception as e:                 # a socket timeout is a hang: reported by the test
            self.bad.append(repr(e))


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_upstream_restart_under_load(start_daemon, upstreams, pki, serializer):
    up, tls_port = tls_upstream(upstreams, pki, appendonly=True)
    d = daemon(start_daemon, ca_url(pki, tls_port), serializer, upstream_command_timeout=1000,
               upstream_connect_timeout=500, upstream_retry_max=200, upstream_pool_size=4)
    stop = threading.Event()
    workers = [LoadClient(n, d.conn(timeout=10), stop, time.monotonic() + 30) for n in range(3)]
    for w in workers:
        w.start()
    outages = []
    try:
        time.sleep(0.6)
        for how in ("stop", "kill"):
            before = [len(w.oks) for w in workers]
            assert all(b > 0 for b in before), "a client had no success with the upstream up: %r" % before
            t_down = time.monotonic()
            (up.stop if how == "stop" else up.kill)()
            time.sleep(0.8)
            errs_down = [sum(1 for t in w.errs if t > t_down + 0.3) for w in workers]
            oks_down = [sum(1 for t in w.oks if t > t_down + 0.3) for w in workers]
            up.start()
            t_up = time.monotonic()
            back = wait_for(lambda: all(w.oks and w.oks[-1] > t_up for w in workers), 5.0)
            recovery = time.monotonic() - t_up
            outages.append((how, errs_down, oks_down, bool(back), recovery))
            assert back, "after %s and start of the upstream, clients without success 5 s later: %r" % (
                how, [w.n for w in workers if not (w.oks and w.oks[-1] > t_up)])
            assert all(e > 0 for e in errs_down), "%s: clients saw no error while the upstream was down: %r" % (
                how, errs_down)
            assert not any(oks_down), "%s: commands succeeded with the upstream gone: %r" % (how, oks_down)
            time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(15)
    assert not any(w.is_alive() for w in workers), "load clients hung"
    bad = [b for w in workers for b in w.bad]
    assert not bad, "load clients saw: %r" % bad[:5]
    assert d.alive(), "cachetoryd died during the upstream restarts"
    # every acknowledged write is in Redis (read directly on the plain port) and through cachetoryd
    raw = up.client(0)
    missing, wrong = [], []
    for w in workers:
        keys = list(w.acked)
        assert len(keys) > 20, "client %d had %d acknowledged SETs" % (w.n, len(keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            for k, got in zip(chunk, raw.mget(chunk)):
                if got is None:
                    missing.append(k)
                elif decode(serializer, got) != w.acked[k]:
                    wrong.append(k)
        ctr = raw.get("ctr:%d" % w.n)
        assert ctr is not None and w.ctr_last <= int(decode(serializer, ctr)) <= w.ctr_sent, \
            "client %d: counter %r upstream, last acknowledged %d, %d sent" % (w.n, ctr, w.ctr_last, w.ctr_sent)
    assert not missing, "%d acknowledged SETs missing upstream, e.g. %r" % (len(missing), missing[:5])
    assert not wrong, "acknowledged SETs with another value upstream: %r" % wrong[:5]
    c = d.conn()
    sample = [k for w in workers for k in list(w.acked)[-20:]]
    want = [a for w in workers for a in list(w.acked.values())[-20:]]
    assert c.cmd("MGET", *sample) == want, "acknowledged values read back through cachetoryd differ"
    assert c.cmd("SET", "after", "ok") == "OK" and c.cmd("GET", "after") == b"ok"
    info, _ = upstream_info(d)
    assert int(info.get("upstream_reconnects", "0")) >= 2, info.get("upstream_reconnects")
    assert info.get("upstream_tls_protocol") in ("TLSv1.2", "TLSv1.3"), info.get("upstream_tls_protocol")
    theirs, tls = tls_conns_of(up, tls_port, close=[raw])
    assert theirs and len(tls) == len(theirs), [x.get("laddr") for x in theirs]
