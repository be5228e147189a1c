"""The TLS listener (tls-port and the tls-* options): commands over TLS with Python's ssl module, both
ports open or TLS only, client certificates (tls-auth-clients yes / optional / no, tls-ca-cert-file or
tls-ca-cert-dir), an encrypted key (tls-key-file-pass), tls-protocols, bad files at start-up, certificate
rotation by SIGHUP (and a reload that fails keeping the old certificate), INFO's tls section, and bad
input: plain RESP on the TLS port, TLS on the plain port, a handshake that never finishes, a
renegotiation attempt, a client certificate that expires while connected, and many connections sending
garbage (bounded memory). Each bad input gets its log line and a closed connection while a client
connected before keeps getting answers.

Certificates come from tls_support (throwaway CAs made with openssl). Every daemon is stopped by its PID
(the harness's start_daemon, or the TLS-only one this module starts itself)."""
import datetime
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509

import conftest
from conftest import BIN, REPO, SLOW, free_port
from helpers import Conn, ConnectionClosed, encode_command, parse_info, proc_status_kb, report_figure, wait_until
from tls_support import OPENSSL, tls_context, tls_pki  # noqa: F401  (tls_pki: the fixture)

pytestmark = pytest.mark.needs_cachetoryd

PING = encode_command("PING")
TIMEOUT = 10.0 * SLOW


# ---- helpers ---------------------------------------------------------------------------------------

def tls_opts(pki, server="server", auth="no", ca_file=True, **extra):
    """start_daemon options for a TLS port presenting pki's certificate `server`."""
    o = {"tls_port": free_port(), "tls_cert_file": pki.certs[server].crt,
         "tls_key_file": pki.certs[server].key, "tls_auth_clients": auth}
    if ca_file:
        o["tls_ca_cert_file"] = pki.certs["ca"].crt
    o.update(extra)
    return o


def tls_port(d):
    return int(d.options["tls-port"])


class Opened:
    """Sockets and processes a test opened, closed / stopped (by PID) when it ends."""

    def __init__(self):
        self.socks = []
        self.procs = []

    def add(self, s):
        self.socks.append(s)
        return s

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


@pytest.fixture
def opened():
    o = Opened()
    yield o
    o.close()


def tls_socket(port, ctx, server_hostname="localhost", timeout=TIMEOUT):
    """A TCP connection to 127.0.0.1:port with a finished TLS handshake (raises if it fails)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def tls_conn(opened, port, ctx, **kw):
    """A helpers.Conn over TLS."""
    return Conn.from_socket(opened.add(tls_socket(port, ctx, **kw)), timeout=TIMEOUT)


def raw_socket(opened, port, timeout=TIMEOUT):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return opened.add(s)


def refused(port, ctx, server_hostname="localhost"):
    """Assert that the daemon refuses this TLS client: its handshake fails or, with TLS 1.3 (where the
    server checks the client's certificate after the client has finished its part), the first command
    gets an alert or the end of the connection instead of a reply. Returns the client's error text."""
    try:
        s = tls_socket(port, ctx, server_hostname=server_hostname)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return "handshake: %s" % e
    try:
        s.settimeout(TIMEOUT)
        try:
            s.sendall(PING)
            data = s.recv(100)
        except socket.timeout:
            raise AssertionError("the daemon neither answered nor closed the connection within %.0fs" % TIMEOUT)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return "after the handshake: %s" % e
        assert data == b"", "the daemon accepted the client and answered %r" % data
        return "after the handshake: EOF"
    finally:
        s.close()


def closed_within(sock, wait):
    """True if the peer ended the connection (EOF, reset, TLS alert) within `wait` seconds; data that
    arrives meanwhile is discarded."""
    deadline = time.monotonic() + wait
    old = sock.gettimeout()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sock.settimeout(min(left, 0.05))
            try:
                if sock.recv(1 << 16) == b"":
                    return True
            except socket.timeout:
                continue
            except ssl.SSLWantReadError:
                continue
            except (ssl.SSLError, OSError):
                return True
    finally:
        sock.settimeout(old)


def log_size(d):
    return os.path.getsize(d.log_path)


def log_since(d, pos=0):
    with open(d.log_path, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")


def wait_log(d, pattern, since=0, timeout=5.0):
    """The first line of the daemon's log after byte `since` that matches the regex; fails after
    `timeout` seconds with the log's new part."""
    rx = re.compile(pattern)
    found = []

    def look():
        for line in log_since(d, since).splitlines():
            if rx.search(line):
                found.append(line)
                return True
        return False
    if not wait_until(look, timeout * SLOW, 0.05):
        raise AssertionError("no log line matching %r within %.1fs; log since then:\n%s"
                             % (pattern, timeout * SLOW, log_since(d, since)[-4000:]))
    return found[0]


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def peer_cert(sock):
    return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))


def not_after(cert):
    """notAfter as an aware UTC datetime."""
    t = getattr(cert, "not_valid_after_utc", None)
    return t if t is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def iso(cert):
    return not_after(cert).strftime("%Y-%m-%dT%H:%M:%SZ")


def client_hello(server_hostname="localhost"):
    """The bytes of a TLS ClientHello (made with a memory BIO, never sent by Python itself)."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    data = out.read()
    assert data[:1] == b"\x16", data[:10]
    return data


def listening_ports(pid):
    """The TCP ports process pid listens on (its socket inodes matched against /proc/net/tcp{,6})."""
    inodes = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            target = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:        # TCP_LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def assert_serves(c, key="still"):
    """c (a Conn connected before the bad input) still gets answers."""
    assert c.cmd("PING") == "PONG"
    assert c.cmd("SET", key, "here") == "OK"
    assert c.cmd("GET", key) == b"here"


def run_refused_start(args, timeout=15.0):
    """Run the daemon with args (a plain port on loopback added); it must exit 1. Returns its output."""
    argv = [str(BIN), "--bind", "127.0.0.1", "--port", str(free_port())] + [str(a) for a in args]
    p = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout * SLOW)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 1, "exit status %d (wanted 1) for %s\n%s" % (p.returncode, " ".join(argv), out)
    return out


# ---- commands over TLS -----------------------------------------------------------------------------

def test_commands_over_tls_with_the_plain_port_open_too(start_daemon, tls_pki, opened):
    d = start_daemon(**tls_opts(tls_pki))
    p = tls_port(d)
    assert {d.port, p} <= listening_ports(d.pid)
    t = tls_conn(opened, p, tls_context(tls_pki))
    assert t.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert peer_cert(t.sock).serial_number == load_cert(tls_pki.certs["server"].crt).serial_number
    assert t.cmd("PING") == "PONG"
    assert t.cmd("SET", "k", "over tls") == "OK"
    assert t.cmd("GET", "k") == b"over tls"
    big = os.urandom(300000)                       # many TLS records each way
    assert t.cmd("SET", "big", big) == "OK"
    assert t.cmd("GET", "big") == big
    assert t.pipeline([("INCR", "n")] * 200) == list(range(1, 201))
    plain = d.conn()
    assert plain.cmd("GET", "k") == b"over tls"          # one keyspace behind both ports
    assert plain.cmd("SET", "k2", "over tcp") == "OK"
    assert t.cmd("MGET", "k", "k2", "nope") == [b"over tls", b"over tcp", None]


def test_pipeline_held_by_thread_pool_work_resumes_over_tls(start_daemon, tls_pki, opened):
    """Large values go to the thread pool and hold the client's next commands (req_hold); what TLS already
    decrypted or still buffers behind them must be run when the client resumes, without new bytes from
    the client (which waits for its replies): the whole pipeline in one write, every reply back."""
    d = start_daemon(serializer="zstd://", codec_thread_min_size="1kb", **tls_opts(tls_pki))
    t = tls_conn(opened, tls_port(d), tls_context(tls_pki))
    values = [os.urandom(512) * 40 for _ in range(30)]           # 20 KB each, compressible
    cmds = []
    for i, v in enumerate(values):
        cmds += [("SET", "k%d" % i, v), ("GET", "k%d" % i), ("PING",)]
    replies = t.pipeline(cmds)
    for i, v in enumerate(values):
        assert replies[3 * i:3 * i + 3] == ["OK", v, "PONG"], "command %d of the pipeline" % (3 * i)
    assert t.cmd("MGET", "k0", "k29") == [values[0], values[29]]


@pytest.mark.parametrize("caching", ["yes", "no"])
def test_session_resumption_follows_tls_session_caching(start_daemon, tls_pki, opened, caching):
    """A client that reconnects with its session resumes it when tls-session-caching is yes (a cheaper
    handshake), and makes a full handshake when it is no. TLS 1.2, where the session exists as soon as
    the handshake ends (TLS 1.3's tickets come after it)."""
    d = start_daemon(tls_session_caching=caching, **tls_opts(tls_pki))
    ctx = tls_context(tls_pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    first = tls_conn(opened, tls_port(d), ctx)
    assert first.cmd("PING") == "PONG"
    session = first.sock.session
    assert session is not None
    raw = opened.add(socket.create_connection(("127.0.0.1", tls_port(d)), timeout=TIMEOUT))
    again = opened.add(ctx.wrap_socket(raw, server_hostname="localhost", session=session))
    again.sendall(PING)
    assert again.recv(64) == b"+PONG\r\n"
    assert again.session_reused == (caching == "yes")


def test_info_tls_section(start_daemon, tls_pki, opened):
    d = start_daemon(**tls_opts(tls_pki))
    t = tls_conn(opened, tls_port(d), tls_context(tls_pki))
    assert t.cmd("PING") == "PONG"
    info = parse_info(t.cmd("INFO", "tls"))
    server = load_cert(tls_pki.certs["server"].crt)
    assert info["tls_port"] == str(tls_port(d))
    assert info["tls_cert_file"] == tls_pki.certs["server"].crt
    assert info["tls_cert_not_after"] == iso(server)
    assert info["tls_auth_clients"] == "no"
    assert info["tls_protocols"] == "TLSv1.2 TLSv1.3"
    assert info["tls_connected_clients"] == "1"
    assert int(info["tls_handshakes"]) >= 1
    assert info["tls_handshake_failures"] == "0"
    assert info["tls_reloads"] == "0"
    for section in (None, "all"):                        # INFO and INFO all have it too
        whole = d.info(section)
        assert whole.get("tls_port") == str(tls_port(d)), section
        assert "tls_handshakes" in whole, section
    t.close()
    assert wait_until(lambda: d.info("tls")["tls_connected_clients"] == "0", 5 * SLOW)
    assert refused(tls_port(d), tls_context(tls_pki, ca="other"))    # this client rejects the server
    assert wait_until(lambda: int(d.info("tls")["tls_handshake_failures"]) >= 1, 5 * SLOW)


class TlsOnly:
    """cachetoryd with `port 0` and a tls-port: nothing to probe in clear, so this module starts it
    itself (and stops it by its PID)."""

    def __init__(self, pki, extra=()):
        self.dir = conftest.short_tmpdir()
        self.log_path = os.path.join(self.dir, "log")
        self.tls_port = free_port()
        argv = [str(BIN), "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(self.tls_port),
                "--tls-cert-file", pki.certs["server"].crt, "--tls-key-file", pki.certs["server"].key,
                "--tls-ca-cert-file", pki.certs["ca"].crt, "--tls-auth-clients", "no"] + list(extra)
        with open(self.log_path, "wb") as log:
            self.p = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.pid = self.p.pid
        self.ctx = tls_context(pki)
        if not wait_until(self._up, conftest.START_TIMEOUT, 0.05):
            self.stop()
            raise AssertionError("TLS-only daemon did not answer PING over TLS:\n%s" % log_since(self))

    def _up(self):
        if self.p.poll() is not None:
            return True
        try:
            with Conn.from_socket(tls_socket(self.tls_port, self.ctx, timeout=1), timeout=1) as c:
                return c.cmd("PING") == "PONG"
        except (OSError, ConnectionClosed):
            return False

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(conftest.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        return self.p.returncode


def test_tls_only_with_port_0(tls_pki, opened):
    d = TlsOnly(tls_pki)
    try:
        assert d.p.poll() is None, log_since(d)
        assert listening_ports(d.pid) == {d.tls_port}
        t = tls_conn(opened, d.tls_port, d.ctx)
        assert t.cmd("SET", "k", "v") == "OK"
        assert t.cmd("GET", "k") == b"v"
        info = parse_info(t.cmd("INFO", "tls"))
        assert info["tls_port"] == str(d.tls_port)
        t.close()
    finally:
        rc = d.stop()
    assert rc == 0, "exit status %r\n%s" % (rc, log_since(d))


# ---- client certificates, key pass phrase, CA directory, protocols ------------------------------

@pytest.fixture(scope="module")
def extra_certs(tls_pki):
    """A client certificate from the `other` CA, and a server certificate with an encrypted key."""
    tls_pki.leaf("other-client", tls_pki.certs["other"], cn="stranger", hosts=(), client=True)
    tls_pki.leaf("server-enc", tls_pki.certs["ca"], password="s3cret pass")
    return tls_pki


def test_auth_clients_yes(start_daemon, extra_certs, opened):
    pki = extra_certs
    d = start_daemon(**tls_opts(pki, auth="yes"))
    p = tls_port(d)
    before = log_size(d)
    how = refused(p, tls_context(pki))                              # no certificate
    line = wait_log(d, r"TLS handshake failed", before)
    assert "peer did not return a certificate" in line, line
    assert "127.0.0.1:" in line, line
    before = log_size(d)
    how2 = refused(p, tls_context(pki, client="other-client"))     # a certificate from another CA
    line2 = wait_log(d, r"TLS handshake failed", before)
    assert "certificate verify failed" in line2, line2
    t = tls_conn(opened, p, tls_context(pki, client="client"))
    assert t.cmd("SET", "k", "mutual") == "OK" and t.cmd("GET", "k") == b"mutual"
    info = d.info("tls")
    assert info["tls_auth_clients"] == "yes"
    assert int(info["tls_handshake_failures"]) >= 2, (info, how, how2)


def test_auth_clients_optional(start_daemon, extra_certs, opened):
    pki = extra_certs
    d = start_daemon(**tls_opts(pki, auth="optional"))
    p = tls_port(d)
    a = tls_conn(opened, p, tls_context(pki))                       # no certificate: fine
    assert a.cmd("PING") == "PONG"
    b = tls_conn(opened, p, tls_context(pki, client="client"))      # a good one: fine
    assert b.cmd("PING") == "PONG"
    before = log_size(d)
    refused(p, tls_context(pki, client="other-client"))            # a bad one: refused
    line = wait_log(d, r"TLS handshake failed", before)
    assert "certificate verify failed" in line, line
    assert d.info("tls")["tls_auth_clients"] == "optional"


def test_auth_clients_no(start_daemon, extra_certs, opened):
    pki = extra_certs
    d = start_daemon(**tls_opts(pki, auth="no"))
    p = tls_port(d)
    for client in (None, "client", "other-client"):                 # not asked for, so never checked
        t = tls_conn(opened, p, tls_context(pki, client=client))
        assert t.cmd("PING") == "PONG", client
    assert d.info("tls")["tls_handshake_failures"] == "0"


def test_encrypted_key_with_pass_phrase(start_daemon, extra_certs, opened):
    pki = extra_certs
    enc = pki.certs["server-enc"]
    with open(enc.key) as f:
        assert "ENCRYPTED" in f.read()
    d = start_daemon(**tls_opts(pki, server="server-enc", tls_key_file_pass=enc.password))
    t = tls_conn(opened, tls_port(d), tls_context(pki))
    assert peer_cert(t.sock).serial_number == load_cert(enc.crt).serial_number
    assert t.cmd("PING") == "PONG"
    # a wrong pass phrase (or none) is an error about the key file at start-up
    for extra in (["--tls-key-file-pass", "wrong"], []):
        out = run_refused_start(["--tls-port", free_port(), "--tls-cert-file", enc.crt, "--tls-key-file", enc.key,
                                 "--tls-auth-clients", "no"] + extra)
        assert "tls-key-file '%s':" % enc.key in out, out


def test_ca_cert_dir(start_daemon, extra_certs, opened):
    pki = extra_certs
    cadir = pki.hashed_dir("cadir", pki.certs["ca"])
    d = start_daemon(**tls_opts(pki, auth="yes", ca_file=False, tls_ca_cert_dir=cadir))
    p = tls_port(d)
    t = tls_conn(opened, p, tls_context(pki, client="client"))
    assert t.cmd("PING") == "PONG"
    before = log_size(d)
    refused(p, tls_context(pki, client="other-client"))
    wait_log(d, r"TLS handshake failed", before)


def test_protocols_tls12_only(start_daemon, tls_pki, opened):
    d = start_daemon(**tls_opts(tls_pki, tls_protocols="TLSv1.2"))
    p = tls_port(d)
    ctx13 = tls_context(tls_pki)
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    before = log_size(d)
    how = refused(p, ctx13)
    assert how.startswith("handshake"), how                  # refused during the handshake itself
    wait_log(d, r"TLS handshake failed", before)
    t = tls_conn(opened, p, tls_context(tls_pki))
    assert t.sock.version() == "TLSv1.2"
    assert t.cmd("PING") == "PONG"
    assert d.info("tls")["tls_protocols"] == "TLSv1.2"


# ---- bad files at start-up ---------------------------------------------------------------------------

def test_bad_files_at_start_up(tls_pki, tmp_path):
    s = tls_pki.certs["server"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a PEM file\n")
    missing = str(tmp_path / "missing.crt")
    port = ["--tls-port", free_port(), "--tls-auth-clients", "no"]
    cases = [
        # (args, text the output must contain)
        (port + ["--tls-cert-file", missing, "--tls-key-file", s.key], "tls-cert-file '%s':" % missing),
        (port + ["--tls-cert-file", garbage, "--tls-key-file", s.key], "tls-cert-file '%s':" % garbage),
        (port + ["--tls-cert-file", s.crt, "--tls-key-file", garbage], "tls-key-file '%s':" % garbage),
        (port + ["--tls-cert-file", s.crt, "--tls-key-file", s.key, "--tls-ca-cert-file", garbage],
         "tls-ca-cert-file '%s':" % garbage),
        (port + ["--tls-cert-file", s.crt, "--tls-key-file", s.key, "--tls-ca-cert-file", missing],
         "tls-ca-cert-file '%s':" % missing),
        (port, "tls-cert-file"),                                  # tls-port without a certificate
    ]
    for args, want in cases:
        out = run_refused_start(args)
        assert want in out, "%s\nwanted %r in:\n%s" % (args, want, out)
        if want.endswith(":"):
            # OpenSSL's reason (or the system's) follows the file name on the same line
            reason = out.split(want, 1)[1].split("\n", 1)[0].strip()
            assert reason, "no reason after %r:\n%s" % (want, out)
    # a key that is not the certificate's: refused too, naming one of the two files
    other_key = tls_pki.certs["client"].key
    out = run_refused_start(port + ["--tls-cert-file", s.crt, "--tls-key-file", other_key])
    assert ("tls-key-file '%s':" % other_key) in out or ("tls-cert-file '%s':" % s.crt) in out, out


# ---- SIGHUP: certificate rotation ----------------------------------------------------------------

def tls_conf(cert, ca):
    return ("[tls]\ntls-cert-file = %s\ntls-key-file = %s\ntls-ca-cert-file = %s\ntls-auth-clients = no\n"
            % (cert.crt, cert.key, ca.crt))


def test_sighup_rotates_the_certificate(start_daemon, tls_pki, tmp_path, opened):
    pki = tls_pki
    ca = pki.certs["ca"]
    old = pki.certs["server"]
    new = pki.leaf("server-rotated", ca, not_after=86400 * 90)
    conf = tmp_path / "c.conf"
    conf.write_text(tls_conf(old, ca))
    d = start_daemon(config_file=conf, tls_port=free_port())
    p = tls_port(d)
    ctx = tls_context(pki)
    before_conn = tls_conn(opened, p, ctx)
    assert peer_cert(before_conn.sock).serial_number == load_cert(old.crt).serial_number
    assert before_conn.cmd("SET", "k", "kept") == "OK"

    pos = log_size(d)
    conf.write_text(tls_conf(new, ca))
    os.kill(d.pid, signal.SIGHUP)
    wait_log(d, r"reload: TLS certificate and settings reloaded", pos)
    fresh = tls_conn(opened, p, ctx)
    cert = peer_cert(fresh.sock)
    assert cert.serial_number == load_cert(new.crt).serial_number
    assert not_after(cert) == not_after(load_cert(new.crt))
    assert fresh.cmd("GET", "k") == b"kept"
    assert before_conn.cmd("GET", "k") == b"kept"              # opened before the reload: still usable
    assert before_conn.cmd("SET", "k2", "v2") == "OK"
    info = d.info("tls")
    assert info["tls_cert_file"] == new.crt
    assert info["tls_cert_not_after"] == iso(load_cert(new.crt))
    assert info["tls_reloads"] == "1"

    # a reload with a broken certificate file keeps the previous one
    broken = tmp_path / "broken.crt"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    pos = log_size(d)
    conf.write_text("[tls]\ntls-cert-file = %s\ntls-key-file = %s\ntls-ca-cert-file = %s\n"
                    "tls-auth-clients = no\n" % (broken, new.key, ca.crt))
    os.kill(d.pid, signal.SIGHUP)
    line = wait_log(d, r"reload: tls-cert-file '%s': .*; the TLS listener keeps its previous certificate"
                    % re.escape(str(broken)), pos)
    assert "TLS certificate and settings reloaded" not in log_since(d, pos), log_since(d, pos)
    again = tls_conn(opened, p, ctx)
    assert peer_cert(again.sock).serial_number == load_cert(new.crt).serial_number, line
    assert again.cmd("PING") == "PONG"
    assert before_conn.cmd("PING") == "PONG" and fresh.cmd("PING") == "PONG"
    info = d.info("tls")
    assert info["tls_cert_file"] == new.crt
    assert info["tls_reloads"] == "1"

    # a key that does not belong to the certificate: refused as well, naming one of the two files
    pos = log_size(d)
    wrong_key = pki.certs["client"].key
    conf.write_text("[tls]\ntls-cert-file = %s\ntls-key-file = %s\ntls-ca-cert-file = %s\n"
                    "tls-auth-clients = no\n" % (old.crt, wrong_key, ca.crt))
    os.kill(d.pid, signal.SIGHUP)
    line = wait_log(d, r"the TLS listener keeps its previous certificate", pos)
    assert ("tls-key-file '%s'" % wrong_key) in line or ("tls-cert-file '%s'" % old.crt) in line, line
    last = tls_conn(opened, p, ctx)
    assert peer_cert(last.sock).serial_number == load_cert(new.crt).serial_number
    assert last.cmd("PING") == "PONG"


# ---- bad input ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_input(module_start_daemon, tls_pki):
    """A daemon with a 300 ms handshake timeout, shared by the bad-input tests."""
    return module_start_daemon(**tls_opts(tls_pki, tls_handshake_timeout=300))


@pytest.fixture
def bystanders(bad_input, tls_pki, opened):
    """A TLS client and a plain client connected before the bad input; checked after it."""
    d = bad_input
    t = tls_conn(opened, tls_port(d), tls_context(tls_pki))
    assert t.cmd("PING") == "PONG"
    c = opened.add(d.conn())
    assert c.cmd("PING") == "PONG"
    yield d, t, c
    assert_serves(t, "tls-bystander")
    assert_serves(c, "plain-bystander")


def test_plain_resp_on_the_tls_port(bystanders, opened):
    d, _, _ = bystanders
    for payload, reasons in ((encode_command("PING"), r"wrong version number|packet length too long|unknown protocol"),
                             (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", r"http request")):
        pos = log_size(d)
        s = raw_socket(opened, tls_port(d))
        s.sendall(payload)
        c = Conn.from_socket(s)
        got = c.read_until_close(timeout=5 * SLOW)
        assert b"PONG" not in got and not got.startswith(b"-"), got       # no RESP reply, at most an alert
        line = wait_log(d, r"TLS handshake failed", pos)
        assert "127.0.0.1:%d" % s.getsockname()[1] in line, line
        assert re.search(reasons, line), line


def test_client_hello_on_the_plain_port(bystanders, opened):
    d, _, _ = bystanders
    pos = log_size(d)
    s = raw_socket(opened, d.port)
    s.sendall(client_hello())
    got = Conn.from_socket(s).read_until_close(timeout=5 * SLOW)
    assert got == b"", "the plain port answered a ClientHello with %r" % got[:200]
    wait_log(d, r"TLS handshake on the plain port", pos)


def test_handshake_that_never_finishes(bystanders, opened):
    d, _, _ = bystanders
    for what, payload in (("nothing", b""), ("half a ClientHello", client_hello()[:40])):
        pos = log_size(d)
        s = raw_socket(opened, tls_port(d))
        t0 = time.monotonic()
        if payload:
            s.sendall(payload)
        assert closed_within(s, 5 * SLOW), "%s: still open after %.0fs" % (what, 5 * SLOW)
        took = time.monotonic() - t0
        assert 0.2 <= took <= 2.0 * SLOW, "%s: closed after %.2fs with a 300 ms handshake timeout" % (what, took)
        wait_log(d, r"TLS handshake timed out after 300 ms", pos)


def test_renegotiation_is_refused(bystanders, tls_pki, opened):
    d, _, _ = bystanders
    pos = log_size(d)
    argv = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tls_port(d), "-tls1_2",
            "-CAfile", tls_pki.certs["ca"].crt, "-servername", "localhost"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    opened.procs.append(p)
    # wait for the handshake to finish (s_client prints the session), then ask for a renegotiation
    out = b""
    deadline = time.monotonic() + 10 * SLOW
    while b"Verify return code" not in out and time.monotonic() < deadline and p.poll() is None:
        r, _, _ = select.select([p.stdout], [], [], 0.1)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    assert b"Verify return code: 0" in out, out.decode("utf-8", "replace")
    p.stdin.write(b"R\n")
    p.stdin.flush()
    wait_log(d, r"TLS renegotiation refused", pos)
    # the daemon closed the connection: s_client ends by itself (its stdin is still open)
    try:
        p.wait(5 * SLOW)
    except subprocess.TimeoutExpired:
        raise AssertionError("s_client still connected after the renegotiation was refused")
    p.stdin.close()


def test_client_certificate_expires_while_connected(start_daemon, tls_pki, opened):
    pki = tls_pki
    d = start_daemon(**tls_opts(pki, auth="yes"))
    p = tls_port(d)
    # valid for 4 s (longer under valgrind, where the handshakes alone take a while)
    short = pki.leaf("short-lived", pki.certs["ca"], cn="short", hosts=(), client=True,
                     not_after=int(4 * min(SLOW, 3)))
    end = not_after(load_cert(short.crt)).timestamp()
    other = tls_conn(opened, p, tls_context(pki, client="client"))
    t = tls_conn(opened, p, tls_context(pki, client="short-lived"))
    assert t.cmd("PING") == "PONG"
    assert time.time() < end - 1, "the certificate expired before the test could use it"
    pos = log_size(d)
    assert closed_within(t.sock, end - time.time() + 5 * SLOW), "still connected 5 s after notAfter"
    closed_at = time.time()
    assert closed_at >= end - 1.0, "closed %.1fs before the certificate's notAfter" % (end - closed_at)
    assert closed_at <= end + 2.0 * SLOW, "closed %.1fs after the certificate's notAfter" % (closed_at - end)
    wait_log(d, r"client certificate expired", pos)
    assert_serves(other)
    # the expired certificate cannot come back
    before = log_size(d)
    refused(p, tls_context(pki, client="short-lived"))
    wait_log(d, r"TLS handshake failed", before)


@pytest.mark.timing
def test_garbage_from_many_connections_keeps_memory_bounded(start_daemon, tls_pki, opened):
    """200 connections to the TLS port at once, each sending garbage of one kind: 1 MB of random bytes
    (refused after the first record header: the rest must not pile up in the daemon), a TLS
    record header announcing 16 KB followed by almost all of it (OpenSSL must hold it), a handshake
    message announcing 16 MB, a ClientHello followed by junk. The daemon's RSS stays bounded while they
    are open, it keeps serving, and every one of them ends up closed."""
    d = start_daemon(**tls_opts(tls_pki))
    p = tls_port(d)
    keep = tls_conn(opened, p, tls_context(tls_pki))
    assert keep.cmd("SET", "k", "v") == "OK"
    rss0 = proc_status_kb(d.pid, "VmRSS")
    hello = client_hello()
    kinds = [
        lambda: os.urandom(1 << 20),
        lambda: b"\x16\x03\x01\x40\x00" + os.urandom(16000),
        lambda: b"\x16\x03\x01\x00\x04\x01\xff\xff\xff" + os.urandom(4096),
        lambda: hello + os.urandom(8192),
    ]
    socks = []
    for i in range(200):
        s = raw_socket(opened, p, timeout=5)
        try:
            s.sendall(kinds[i % len(kinds)]())
        except (ConnectionResetError, BrokenPipeError):
            pass                                   # already refused: fine
        except socket.timeout:
            raise AssertionError("connection %d (kind %d): the daemon neither read its garbage nor closed it"
                                 % (i, i % len(kinds)))
        socks.append(s)
    time.sleep(0.5)
    rss1 = proc_status_kb(d.pid, "VmRSS")
    grew = rss1 - rss0
    report_figure("tls listener: RSS growth with 200 garbage connections", grew, "kB")
    assert grew < 28 * 1024, "RSS grew by %d kB with 200 garbage connections" % grew
    assert keep.cmd("GET", "k") == b"v"
    assert d.conn().cmd("PING") == "PONG"
    fresh = tls_conn(opened, p, tls_context(tls_pki))
    assert fresh.cmd("GET", "k") == b"v"
    for s in socks:
        s.close()
    assert wait_until(lambda: d.info("tls")["tls_connected_clients"] == "2", 5 * SLOW), d.info("tls")
    assert int(d.info("tls")["tls_handshake_failures"]) >= 100


def allocated(d):
    return int(parse_info(d.conn().cmd("INFO", "memory"))["allocator_allocated"])


def test_idle_clients_give_their_tls_buffers_back(start_daemon, tls_pki, opened):
    """A busy TLS client keeps OpenSSL's read and write buffers (about 17 KB each; giving them back after
    every record costs an allocation and a free of each per command at pipeline 1); once idle for a
    second the server's once-a-second walk gives them back, and the next command allocates them again."""
    d = start_daemon(**tls_opts(tls_pki))
    p = tls_port(d)
    ctx = tls_context(tls_pki)
    conns = [tls_conn(opened, p, ctx) for _ in range(150)]
    assert d.conn().cmd("SET", "k", "v") == "OK"
    for c in conns:
        assert c.cmd("GET", "k") == b"v"
    busy = allocated(d)
    for c in conns:                                 # each within the second: buffers held
        assert c.cmd("GET", "k") == b"v"
    held = allocated(d)
    assert held > busy - 1024 * 1024, "buffers given back while the clients were busy (%d -> %d)" % (busy, held)
    # 150 clients x 2 buffers x ~17 KB = ~5 MB: at least 3 MB of it comes back within 3 s of idling
    assert wait_until(lambda: allocated(d) < held - 3 * 1024 * 1024, timeout=3.5 * SLOW), \
        "idle TLS clients kept their buffers: %d bytes allocated, %d while busy" % (allocated(d), held)
    report_figure("tls listener: bytes given back by 150 idle TLS clients", held - allocated(d), "B")
    for c in conns:
        assert c.cmd("GET", "k") == b"v"
