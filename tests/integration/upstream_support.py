"""
Shared pieces of the upstream (redis:// backend) tests, tests/integration/test_upstream_*.py; this module
holds no test.

  RedisServer        a real redis-server we start ourselves on a free loopback port (or a unix socket
                     only), wait for (bounded), pause (SIGSTOP) / resume (SIGCONT), stop and start again
                     on the same port and directory, and always stop by its PID.
  upstreams          fixture: factory of RedisServer, every one stopped (SIGCONT first) at teardown.
  proxy(...)         cachetoryd started with the harness's start_daemon in front of an upstream.
  decode(...)        what a stored value means for a codec chain (null:// or zstd://).
  monitor helpers    read MONITOR lines of the upstream.

Importing the fixture into a test module (`from upstream_support import upstreams`) makes it usable there.
"""
import os
import re
import signal
import subprocess
import time

import pytest
import redis

import conftest
from helpers import Conn, Err, parse_info
from test_codec_support import ZSTD_MAGIC, libzstd_decompress, vm_rss_kb  # noqa: F401  (re-exported)

REDIS_SERVER = conftest.REDIS_SERVER
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class RedisServer:
    """A redis-server we own. port=None picks a free port; port=0 with unixsocket listens on the socket
    only. appendonly=True keeps acknowledged writes across stop/start (appendfsync always)."""

    def __init__(self, port=None, unixsocket=None, password=None, appendonly=False, extra=()):
        self.port = conftest.free_port() if port is None else port
        self.unixsocket = unixsocket
        self.password = password
        self.appendonly = appendonly
        self.extra = list(extra)
        self.dir = conftest.short_tmpdir()
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None
        self.paused = False
        self.starts = 0

    # -- addresses --------------------------------------------------------------------------------
    @property
    def addr(self):
        return self.unixsocket if self.port == 0 else ("127.0.0.1", self.port)

    def url(self, db=0, user=None, password=None, scheme="redis"):
        """redis://[user:password@]127.0.0.1:port/db, or redis+unix:///path?db=N for a socket-only one.
        password=None uses the server's own password; password=False gives none."""
        if password is None:
            password = self.password
        cred = ""
        if password:
            cred = "%s:%s@" % (user or "", password)
        if self.port == 0:
            return "redis+unix://%s%s?db=%d" % (cred, self.unixsocket, db)
        return "%s://%s127.0.0.1:%d/%d" % (scheme, cred, self.port, db)

    # -- process ----------------------------------------------------------------------------------
    def argv(self):
        a = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--daemonize", "no", "--dir", self.dir, "--logfile", self.log_path, "--databases", "16"]
        if self.unixsocket:
            a += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        if self.appendonly:
            a += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            a += ["--appendonly", "no"]
        if self.password:
            a += ["--requirepass", self.password]
        return a + self.extra

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.alive(), "already running"
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     preexec_fn=conftest._make_preexec(None), close_fds=True)
        self.paused = False
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._ready():
                return self
            time.sleep(0.02)
        self.stop()
        raise AssertionError("redis-server %s did not get ready within %.0fs (exit %r)\n%s" % (
            self.addr, START_TIMEOUT, self.proc.returncode, self.log_tail()))

    def _ready(self):
        try:
            c = self.conn(timeout=1.0)
        except (OSError, AssertionError):
            return False
        try:
            if c.cmd("PING") != "PONG":
                return False
            # our process, not another one that took the port
            return parse_info(c.cmd("INFO", "server")).get("process_id") == str(self.pid)
        except Exception:
            return False
        finally:
            c.close()

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGCONT, SIGTERM by PID, SIGKILL after a bound. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self.paused = False
        return self.proc.returncode

    def kill(self, timeout=STOP_TIMEOUT):
        """SIGKILL by PID (no shutdown: no AOF rewrite, connections dropped as they are), then wait for the
        process to be gone. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout)
        self.paused = False
        return self.proc.returncode

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    # -- clients ----------------------------------------------------------------------------------
    def conn(self, db=0, timeout=10.0):
        """A helpers.Conn straight to this redis (authenticated, database selected)."""
        c = Conn(self.addr, timeout=timeout)
        try:
            if self.password:
                r = c.cmd("AUTH", self.password)
                assert r == "OK", "AUTH to the upstream: %r" % (r,)
            if db:
                r = c.cmd("SELECT", str(db))
                assert r == "OK", r
        except Exception:
            c.close()
            raise
        return c

    def client(self, db=0):
        """redis-py client straight to this redis (raw bytes, no decoding)."""
        if self.port == 0:
            return redis.Redis(unix_socket_path=self.unixsocket, db=db, password=self.password,
                               socket_timeout=10, socket_connect_timeout=5)
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password,
                           socket_timeout=10, socket_connect_timeout=5)

    def clients_from(self, exclude_self=True):
        """Connections the upstream sees, from CLIENT LIST (minus the one asking)."""
        with self.conn() as c:
            my_id = c.cmd("CLIENT", "ID")
            text = c.cmd("CLIENT", "LIST").decode()
        out = []
        for line in text.splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if exclude_self and f.get("id") == str(my_id):
                continue
            out.append(f)
        return out


@pytest.fixture
def upstreams():
    """Factory: upstreams(password=..., appendonly=..., unix=True, extra=[...]) -> a started RedisServer.
    All are resumed and stopped by PID at teardown."""
    started = []

    def make(password=None, appendonly=False, unix=False, extra=(), start=True, port=None):
        sock = None
        if unix:
            sock = os.path.join(conftest.short_tmpdir(), "up.sock")
        r = RedisServer(port=0 if unix else port, unixsocket=sock, password=password,
                        appendonly=appendonly, extra=extra)
        started.append(r)
        if start:
            r.start()
        return r

    yield make
    for r in started:
        r.stop()


def proxy(start_daemon, up, serializer="null://", db=0, url=None, **opts):
    """cachetoryd (via the harness) with --backend up.url(db) --serializer serializer and more options."""
    return start_daemon(backend=url or up.url(db), serializer=serializer, **opts)


# -- values ---------------------------------------------------------------------------------------

def encode_check(serializer, raw, value, what=""):
    """Assert raw (read straight from the upstream) is what `serializer` stores for `value`."""
    if serializer in ("null://", "noop://"):
        assert raw == value, "%s: upstream holds %r, expected the value itself %r" % (what, raw, value)
    elif serializer.startswith("zstd"):
        assert raw is not None, "%s: key missing upstream" % what
        assert raw[:4] == ZSTD_MAGIC, "%s: upstream holds %r, not a zstd frame (value %r)" % (what, raw[:40], value)
        assert libzstd_decompress(raw) == value, "%s: zstd frame upstream decodes to %r, expected %r" % (
            what, libzstd_decompress(raw)[:80], value[:80])
    else:
        raise ValueError(serializer)


def decode(serializer, raw):
    if raw is None or serializer in ("null://", "noop://"):
        return raw
    if serializer.startswith("zstd") and raw[:4] == ZSTD_MAGIC:
        return libzstd_decompress(raw)
    return raw


def is_upstream_err(r):
    return isinstance(r, Err) and str(r).startswith("ERR upstream ")


def timed(c, *args):
    t = time.monotonic()
    r = c.cmd(*args)
    return r, time.monotonic() - t


def upstream_info(d):
    """INFO (all sections) of cachetoryd, parsed; plus whether an '# Upstream' header is there."""
    with d.conn() as c:
        text = c.cmd("INFO")
    assert isinstance(text, bytes), "INFO replied %r" % (text,)
    return parse_info(text), ("# Upstream" in text.decode())


UPSTREAM_FIELDS = ["upstream_connections", "upstream_connections_ready", "upstream_commands_in_flight",
                   "upstream_commands", "upstream_errors", "upstream_timeouts", "upstream_reconnects",
                   "upstream_latency_avg_usec", "upstream_latency_max_usec"]


def wait_for(pred, timeout, interval=0.05):
    """Poll pred() until it returns a true value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# -- MONITOR --------------------------------------------------------------------------------------

_MON_RE = re.compile(r'^\+(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$')
_ARG_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def start_monitor(up):
    m = up.conn(timeout=5.0)
    assert m.cmd("MONITOR") == "OK"
    return m


def read_monitor(m, until, timeout=5.0):
    """MONITOR entries (db, client address, [args...]) read until until(entries) is true or timeout."""
    entries = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(entries):
        m.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            line = m._line()
        except OSError:
            break
        mm = _MON_RE.match(line.decode("latin-1"))
        if not mm:
            continue
        args = [a for a in _ARG_RE.findall(mm.group(4))]
        entries.append((int(mm.group(2)), mm.group(3), args))
    return entries
