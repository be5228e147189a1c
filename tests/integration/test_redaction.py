"""Credentials are never shown: the upstream's password in the backend URL is redacted
(redis://app:***@host:port/0) wherever a URL appears — INFO, CONFIG GET, the log (start-up, reload),
errors (a bad URL at start, --test-config), the metrics page, CLIENT LIST — and the slow log shows
AUTH's and HELLO ... AUTH's arguments as "(redacted)", as redis 7 does. requirepass itself is shown by
CONFIG GET to an authenticated client, as redis does, and by no log line."""
import os
import signal
import subprocess
import tempfile

import pytest

from conftest import BIN, REPO, free_port
from helpers import Conn, wait_until
from test_metrics import http_get
from upstream_support import upstreams  # noqa: F401  (the fixture)

pytestmark = pytest.mark.needs_cachetoryd

UP_PW = "S3cretUpstreamPw"
UP_PW2 = "An0therUpstreamPw"
CLIENT_PW = "Cl1entPassw0rd"


def flat(reply):
    """Every bytes of a reply, joined: what a grep of it sees."""
    if isinstance(reply, (list, tuple)):
        return b"\n".join(flat(r) for r in reply)
    if isinstance(reply, dict):
        return b"\n".join(flat(k) + b" " + flat(v) for k, v in reply.items())
    if isinstance(reply, str):
        return reply.encode()
    if isinstance(reply, bytes):
        return reply
    return str(reply).encode()


def run_daemon(conf_text, extra=()):
    tmp = tempfile.mkdtemp(prefix="cachetoryd-redact-")
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    port = free_port()
    log = os.path.join(tmp, "log")
    out = open(os.path.join(tmp, "out"), "w")
    p = subprocess.Popen([str(BIN), conf, "--bind", "127.0.0.1", "--port", str(port), "--logfile", log] + list(extra),
                         stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return p, port, conf, log, out


def up_url(up, pw):
    return "redis://app:%s@127.0.0.1:%d/0" % (pw, up.port)


def test_no_surface_shows_a_password(upstreams):
    extra = ["--user", "app", "on", ">" + UP_PW, ">" + UP_PW2, "~*", "&*", "+@all"]
    up = upstreams(extra=extra)
    mport = free_port()
    conf = "[server]\nrequirepass = %s\nslowlog-log-slower-than = 0\nmetrics-port = %d\n" \
           "[cache]\nbackend = %s\nserializer = zstd://\n" % (CLIENT_PW, mport, up_url(up, UP_PW))
    p, port, conf_path, log, out = run_daemon(conf)
    try:
        assert wait_until(lambda: _ping(port), 10), open(out.name).read()
        c = Conn(("127.0.0.1", port), timeout=10)
        assert c.cmd("AUTH", CLIENT_PW) == "OK"
        assert c.cmd("AUTH", "default", CLIENT_PW) == "OK"
        assert isinstance(c.cmd("HELLO", "2", "AUTH", "default", CLIENT_PW, "SETNAME", "n1"), list)
        assert c.cmd("SET", "k", "v") == "OK"          # the upstream works with the password
        seen = {}
        seen["INFO all"] = flat(c.cmd("INFO", "all"))
        seen["INFO everything"] = flat(c.cmd("INFO", "everything"))
        seen["CONFIG GET *"] = flat(c.cmd("CONFIG", "GET", "*"))
        seen["CONFIG GET backend"] = flat(c.cmd("CONFIG", "GET", "backend"))
        seen["CLIENT LIST"] = flat(c.cmd("CLIENT", "LIST"))
        seen["SLOWLOG GET"] = flat(c.cmd("SLOWLOG", "GET", "100"))
        seen["metrics"] = http_get(mport)[1].encode()
        # a reload to the same upstream with another password of the same user
        with open(conf_path, "w") as f:
            f.write(conf.replace(UP_PW, UP_PW2).replace("zstd://", "zstd://?compression-level=5"))
        p.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "configuration reloaded" in open(log).read(), 5), open(log).read()
        assert c.cmd("SET", "k2", "v") == "OK"
        seen["CONFIG GET backend after reload"] = flat(c.cmd("CONFIG", "GET", "backend"))
        seen["INFO after reload"] = flat(c.cmd("INFO", "all"))
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        seen["log"] = open(log, "rb").read()
        seen["stdout"] = open(out.name, "rb").read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        out.close()
    for what, text in seen.items():
        for secret in (UP_PW, UP_PW2):
            assert secret.encode() not in text, "%s shows the upstream's password:\n%s" % (what, text[:3000])
        if what not in ("CONFIG GET *",):
            assert CLIENT_PW.encode() not in text, "%s shows requirepass:\n%s" % (what, text[:3000])
    assert b"redis://app:***@127.0.0.1:%d/0" % up.port in seen["CONFIG GET backend"]
    assert b"backend:redis://app:***@127.0.0.1:%d/0" % up.port in seen["INFO all"]
    assert b"redis://app:***@127.0.0.1" in seen["log"]                 # start-up and reload lines
    assert b"backend is now" in seen["log"]
    # CONFIG GET requirepass answers the password, as redis does to an authenticated client
    assert CLIENT_PW.encode() in seen["CONFIG GET *"]
    # the slow log: redis 7's form
    sl = seen["SLOWLOG GET"]
    assert b"AUTH\n(redacted)\n" in sl and b"AUTH\n(redacted)\n(redacted)\n" in sl
    assert b"HELLO\n2\nAUTH\n(redacted)\n(redacted)\nSETNAME\nn1" in sl


def _ping(port):
    try:
        with Conn(("127.0.0.1", port), timeout=1) as c:
            c.cmd("PING")           # NOAUTH: up all the same
            return True
    except OSError:
        return False


@pytest.mark.parametrize("url", [
    "redis://app:%s@127.0.0.1:70000/0",             # bad port
    "redis://app:%s@127.0.0.1:6379/x",              # bad database
    "redis://app:%s@127.0.0.1:6379/0?foo=1",        # unknown parameter
    "rediss://app:%s@127.0.0.1:6379/0?ssl_ca_certs=/nonexistent/ca.pem",    # TLS: a CA file missing
    "redis://app:%s@no-such-host.invalid:6379/0",   # cannot resolve
    "redis://app:%s@",                              # no host
    "redis://app:%s@h:1/0 x",                       # junk after
    "redis://app:%%zz%s@127.0.0.1/0",               # bad escape
    "mongo://app:%s@127.0.0.1/0",                   # unknown scheme
    "mongo:app:%s@127.0.0.1/0",                     # unknown scheme, not even '//'
])
@pytest.mark.parametrize("how", ["start", "test-config", "file"])
def test_bad_backend_url_errors_hide_the_password(url, how, tmp_path):
    url = url % UP_PW
    if how == "file":
        conf = tmp_path / "c.conf"
        conf.write_text("[cache]\nbackend = %s\n" % url)
        argv = [str(BIN), str(conf), "-t"]
    else:
        argv = [str(BIN), "--backend", url, "--port", str(free_port()), "--bind", "127.0.0.1"]
        if how == "test-config":
            argv.append("--test-config")
    r = subprocess.run(argv, capture_output=True, timeout=20, cwd=REPO)
    text = r.stdout + r.stderr
    assert r.returncode == 1, text
    assert text.strip(), "no error message"
    assert UP_PW.encode() not in text, text
    if b"unknown backend" in text:
        assert b"redis://[user:password@]host" in text, text       # the help, not redacted


def test_bad_config_line_hides_the_password(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[cache]\nbackend = redis://app:%s@127.0.0.1:6379/0\nbackend = redis://app:%s@h/1\n"
                    % (UP_PW, UP_PW))
    r = subprocess.run([str(BIN), str(conf), "-t"], capture_output=True, timeout=20, cwd=REPO)
    assert r.returncode == 1
    assert b"c.conf:3" in r.stderr, r.stderr
    assert UP_PW.encode() not in r.stdout + r.stderr, r.stderr
