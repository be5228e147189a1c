"""Real clients against cachetoryd's TLS listener: redis-cli --tls (with and without a client
certificate), redis-py with ssl=True (SET/GET/MGET, pipelines with and without MULTI), and the Node.js
clients ioredis and node-redis (tests/clients/node, installed by scripts/install-deps.sh) through
tests/clients/node/tls_client.js. The daemons keep their data in memory://, and one serves its TLS
listener in front of a rediss:// upstream (redis-server on its own TLS port).

Certificates come from tls_support; a daemon with tls-auth-clients no and one with yes are shared by the
module. A missing node_modules fails the Node.js tests with the command that installs it."""
import json
import os
import shutil
import subprocess

import pytest
import redis

from conftest import REPO, SLOW, free_port
from helpers import Conn, parse_info
from tls_support import redis_tls_args, tls_pki  # noqa: F401  (tls_pki: the fixture)
from upstream_support import upstreams  # noqa: F401  (the fixture)

pytestmark = pytest.mark.needs_cachetoryd

NODE_DIR = REPO / "tests" / "clients" / "node"
NODE_SCRIPT = NODE_DIR / "tls_client.js"
NODE_VALUE = "caf\u00e9 \u2615 over TLS"       # what tls_client.js stores under PREFIX:CLIENT:1
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
RUN_TIMEOUT = 30 * SLOW


def tls_opts(pki, auth):
    return {"tls_port": free_port(), "tls_cert_file": pki.certs["server"].crt,
            "tls_key_file": pki.certs["server"].key, "tls_ca_cert_file": pki.certs["ca"].crt,
            "tls_auth_clients": auth}


def tls_port(d):
    return int(d.options["tls-port"])


@pytest.fixture(scope="module")
def open_tls(module_start_daemon, tls_pki):
    """tls-auth-clients no: any client that trusts the CA."""
    return module_start_daemon(**tls_opts(tls_pki, "no"))


@pytest.fixture(scope="module")
def mutual_tls(module_start_daemon, tls_pki):
    """tls-auth-clients yes: only clients with a certificate from the CA."""
    return module_start_daemon(**tls_opts(tls_pki, "yes"))


# ---- redis-cli ------------------------------------------------------------------------------------

def redis_cli(port, pki, *cmd, cert=None, stdin=None):
    argv = [REDIS_CLI, "--tls", "--cacert", pki.certs["ca"].crt, "-h", "127.0.0.1", "-p", str(port)]
    if cert is not None:
        argv += ["--cert", pki.certs[cert].crt, "--key", pki.certs[cert].key]
    p = subprocess.run(argv + list(cmd), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=RUN_TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def test_redis_cli_tls(open_tls, tls_pki):
    d = open_tls
    p = tls_port(d)
    assert redis_cli(p, tls_pki, "SET", "cli:k", "from redis-cli") == (0, "OK\n")
    assert redis_cli(p, tls_pki, "GET", "cli:k") == (0, "from redis-cli\n")
    with d.conn() as c:                                     # the plain port sees the same key
        assert c.cmd("GET", "cli:k") == b"from redis-cli"
    # several commands on one connection (read from stdin)
    rc, out = redis_cli(p, tls_pki, stdin=b"SET cli:a 1\nINCR cli:a\nMGET cli:a cli:k cli:none\n")
    assert rc == 0 and out.split("\n") == ["OK", "2", "2", "from redis-cli", "", ""], out
    # a CA the server's certificate does not come from: redis-cli refuses the server
    q = subprocess.run([REDIS_CLI, "--tls", "--cacert", tls_pki.certs["other"].crt, "-h", "127.0.0.1",
                        "-p", str(p), "PING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
    out = q.stdout.decode("utf-8", "replace")
    assert "PONG" not in out and "certificate verify failed" in out, out


def test_redis_cli_client_certificate(mutual_tls, tls_pki):
    d = mutual_tls
    p = tls_port(d)
    assert redis_cli(p, tls_pki, "SET", "cli:m", "mutual", cert="client") == (0, "OK\n")
    assert redis_cli(p, tls_pki, "GET", "cli:m", cert="client") == (0, "mutual\n")
    rc, out = redis_cli(p, tls_pki, "GET", "cli:m")               # no certificate: refused
    assert "mutual" not in out, out
    rc, out = redis_cli(p, tls_pki, "GET", "cli:m", cert="client")
    assert (rc, out) == (0, "mutual\n")


# ---- redis-py -------------------------------------------------------------------------------------

def redis_py(port, pki, cert="client", **kw):
    o = dict(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=pki.certs["ca"].crt,
             ssl_check_hostname=True, socket_timeout=10 * SLOW, socket_connect_timeout=10 * SLOW)
    if cert is not None:
        o.update(ssl_certfile=pki.certs[cert].crt, ssl_keyfile=pki.certs[cert].key)
    o.update(kw)
    return redis.Redis(**o)


def exercise_redis_py(r, prefix):
    k = lambda n: "%s:%s" % (prefix, n)       # noqa: E731
    assert r.ping() is True
    assert r.set(k("a"), b"\x00\xffbinary\r\n") is True
    assert r.get(k("a")) == b"\x00\xffbinary\r\n"
    big = os.urandom(200000)
    assert r.set(k("big"), big) is True
    assert r.get(k("big")) == big
    assert r.mset({k("b"): "2", k("c"): "3"}) is True
    assert r.mget([k("a"), k("b"), k("c"), k("none")]) == [b"\x00\xffbinary\r\n", b"2", b"3", None]
    with r.pipeline(transaction=False) as p:
        for i in range(100):
            p.set(k("p%d" % i), i)
        p.incr(k("n"))
        p.mget([k("p0"), k("p99")])
        out = p.execute()
    assert out == [True] * 100 + [1, [b"0", b"99"]]
    with r.pipeline(transaction=True) as p:             # MULTI ... EXEC over TLS
        p.incr(k("n")).incr(k("n")).get(k("n"))
        assert p.execute() == [2, 3, b"3"]


def test_redis_py_mutual_tls(mutual_tls, tls_pki):
    d = mutual_tls
    r = redis_py(tls_port(d), tls_pki)
    try:
        exercise_redis_py(r, "py")
        assert r.info("tls")["tls_auth_clients"] == "yes"
    finally:
        r.close()
    with d.conn() as c:
        assert c.cmd("GET", "py:n") == b"3"
    # without a client certificate: refused (at the handshake, or at the first command under TLS 1.3)
    r = redis_py(tls_port(d), tls_pki, cert=None, retry_on_timeout=False)
    try:
        with pytest.raises((redis.ConnectionError, redis.TimeoutError, OSError)):
            r.ping()
    finally:
        r.close()


def test_redis_py_without_client_certificate(open_tls, tls_pki):
    r = redis_py(tls_port(open_tls), tls_pki, cert=None)
    try:
        exercise_redis_py(r, "py-anon")
    finally:
        r.close()


# ---- Node.js: ioredis and node-redis -------------------------------------------------------------

def node_ready():
    """Fail (never skip) when node or the installed clients are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: install Node.js and npm, then run scripts/install-deps.sh "
                    "(it installs the test clients into %s/node_modules)" % NODE_DIR, pytrace=False)
    for pkg in ("ioredis", "redis"):
        if not (NODE_DIR / "node_modules" / pkg / "package.json").exists():
            pytest.fail("%s/node_modules/%s is missing: run scripts/install-deps.sh (npm ci in %s)"
                        % (NODE_DIR, pkg, NODE_DIR), pytrace=False)
    return node


def run_node(client, port, pki, prefix, cert="client", ca="ca"):
    node = node_ready()
    argv = [node, str(NODE_SCRIPT), client, "--port", str(port), "--ca", pki.certs[ca].crt,
            "--prefix", prefix, "--timeout", str(int(10000 * SLOW))]
    if cert is not None:
        argv += ["--cert", pki.certs[cert].crt, "--key", pki.certs[cert].key]
    p = subprocess.run(argv, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    out = p.stdout.decode("utf-8", "replace").strip()
    err = p.stderr.decode("utf-8", "replace")
    try:
        res = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("%s printed no JSON (exit %d):\nstdout: %s\nstderr: %s" % (client, p.returncode, out, err))
    assert (p.returncode == 0) == bool(res.get("ok")), (p.returncode, res, err)
    return res


@pytest.mark.parametrize("client", ["ioredis", "redis"])
def test_node_client_mutual_tls(mutual_tls, tls_pki, client):
    d = mutual_tls
    res = run_node(client, tls_port(d), tls_pki, "node")
    assert res["ok"], res
    assert res["set"] == "OK"
    assert res["get"] == NODE_VALUE
    assert res["mget"] == [NODE_VALUE, "second", None]
    with d.conn() as c:                                          # what reached the daemon, byte for byte
        assert c.cmd("GET", "node:%s:1" % client) == NODE_VALUE.encode("utf-8")
        assert c.cmd("DEL", "node:%s:1" % client, "node:%s:2" % client) == 2


@pytest.mark.parametrize("client", ["ioredis", "redis"])
def test_node_client_refused(mutual_tls, tls_pki, client):
    p = tls_port(mutual_tls)
    res = run_node(client, p, tls_pki, "node-nocert", cert=None)        # no client certificate
    assert not res["ok"], res
    assert "certificate required" in res["error"] or "handshake failure" in res["error"], res
    res = run_node(client, p, tls_pki, "node-wrongca", ca="other")      # the client rejects the server
    assert not res["ok"], res
    assert "certificate" in res["error"].lower(), res
    with mutual_tls.conn() as c:                                         # nothing got through
        assert c.cmd("EXISTS", "node-nocert:%s:1" % client, "node-wrongca:%s:1" % client) == 0


# ---- in front of a rediss:// upstream ------------------------------------------------------------

def test_tls_listener_in_front_of_a_rediss_upstream(start_daemon, upstreams, tls_pki):
    up_tls = free_port()
    up = upstreams(extra=redis_tls_args(tls_pki, up_tls, auth_clients="yes"))     # mutual TLS upstream too
    url = "rediss://127.0.0.1:%d/0?ssl_ca_certs=%s&ssl_certfile=%s&ssl_keyfile=%s" % (
        up_tls, tls_pki.certs["ca"].crt, tls_pki.certs["client"].crt, tls_pki.certs["client"].key)
    d = start_daemon(backend=url, serializer="null://", **tls_opts(tls_pki, "yes"))
    p = tls_port(d)
    r = redis_py(p, tls_pki)
    try:
        assert r.set("through", "both sides") is True
        assert r.mset({"a": "1", "b": "2"}) is True
        assert r.mget(["through", "a", "b", "none"]) == [b"both sides", b"1", b"2", None]
        with r.pipeline(transaction=False) as pl:
            for i in range(50):
                pl.set("p%d" % i, i)
            pl.get("p49")
            assert pl.execute() == [True] * 50 + [b"49"]
    finally:
        r.close()
    res = run_node("ioredis", p, tls_pki, "up")
    assert res["ok"] and res["mget"] == [NODE_VALUE, "second", None], res
    assert redis_cli(p, tls_pki, "GET", "through", cert="client") == (0, "both sides\n")
    # the values are in the upstream (read on its plain port), stored as they are (null://)
    with Conn(("127.0.0.1", up.port)) as u:
        assert u.cmd("GET", "through") == b"both sides"
        assert u.cmd("GET", "p49") == b"49"
        assert u.cmd("GET", "up:ioredis:1") == NODE_VALUE.encode("utf-8")
    with d.conn() as c:
        info = parse_info(c.cmd("INFO", "upstream"))
    assert info["upstream_tls"] == "yes", info
    assert info["upstream_tls_protocol"] in ("TLSv1.2", "TLSv1.3"), info
    assert info["upstream_tls_peer_cert_not_after"].endswith("Z"), info
    tls = d.info("tls")
    assert int(tls["tls_handshakes"]) >= 3 and tls["tls_auth_clients"] == "yes", tls
