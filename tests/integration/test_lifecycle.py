"""Lifecycle: SIGHUP reloads the configuration with clients staying connected, SIGTERM finishes the
commands in flight before stopping, and the systemd notification protocol (READY, RELOADING, STOPPING)
reaches $NOTIFY_SOCKET. Each test starts its own daemon (with a config file) and stops it by its PID."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, REPO, free_port
from helpers import Conn, parse_info, wait_until
from upstream_support import upstreams  # noqa: F401  (the fixture)

pytestmark = pytest.mark.needs_cachetoryd


class Proc:
    def __init__(self, conf_text, extra=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="cachetoryd-life-")
        self.conf = os.path.join(self.dir, "c.conf")
        self.port = free_port()
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        argv = [str(BIN), self.conf, "--bind", "127.0.0.1", "--port", str(self.port)] + list(extra)
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                  env=dict(os.environ, **(env or {})))
        assert wait_until(self._up, 10, 0.05), "daemon did not start: %s" % self.text()

    def _up(self):
        try:
            with Conn(("127.0.0.1", self.port), timeout=1) as c:
                return c.cmd("PING") == "PONG"
        except OSError:
            return False

    def conn(self):
        return Conn(("127.0.0.1", self.port), timeout=10)

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def write_conf(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()


@pytest.fixture
def procs():
    made = []

    def make(*a, **kw):
        p = Proc(*a, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def test_sighup_reloads_live_options_with_clients_connected(procs):
    d = procs("[cache]\nmaxmemory = 0\nmaxmemory-policy = allkeys-lru\n[log]\nloglevel = notice\n")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    d.write_conf("[cache]\nmaxmemory = 10mb\nmaxmemory-policy = noeviction\n[server]\ndatabases = 4\n"
                 "[log]\nloglevel = notice\n")
    d.p.send_signal(signal.SIGHUP)
    assert wait_until(lambda: c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"], 5)
    assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
    assert parse_info(c.cmd("INFO", "memory").decode())["maxmemory_policy"] == "noeviction"
    assert c.cmd("GET", "k") == b"v"                        # the same connection, the same data
    assert wait_until(lambda: "databases changed" in d.text() and "needs a restart" in d.text(), 5), d.text()
    assert c.cmd("CONFIG", "GET", "databases") == [b"databases", b"16"]


def test_sighup_with_an_invalid_file_changes_nothing(procs):
    d = procs("[cache]\nmaxmemory = 5mb\n")
    c = d.conn()
    d.write_conf("[cache]\nmaxmemory = lots\n")
    d.p.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "running configuration is unchanged" in d.text(), 5), d.text()
    assert "c.conf:2" in d.text()
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"5242880"]
    assert c.cmd("PING") == "PONG"


def test_sigterm_finishes_commands_in_flight(procs, tmp_path, upstreams):
    """A command waiting for a paused upstream when SIGTERM arrives still gets its reply, then the daemon
    exits 0; a second client connecting meanwhile is refused (listeners closed)."""
    redis = upstreams()  # resumed and stopped by the fixture, also when an assertion fails
    rport = redis.port
    d = procs("", extra=["--backend", "redis://127.0.0.1:%d/0" % rport, "--upstream-command-timeout", "5000"])
    c = d.conn()
    assert c.cmd("SET", "k", "before") == "OK"
    redis.pause()
    try:
        c.send(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        time.sleep(0.2)
        d.p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert d.p.poll() is None, "the daemon stopped with a command in flight"
        with pytest.raises(OSError):
            Conn(("127.0.0.1", d.port), timeout=1).cmd("PING")
    finally:
        redis.resume()
    assert c.read_reply() == b"before"
    assert d.p.wait(10) == 0
    assert "shutting down" in d.text()


def test_notify_socket_protocol(procs, tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    try:
        d = procs("", env={"NOTIFY_SOCKET": path})
        assert s.recv(256) == b"READY=1"
        d.p.send_signal(signal.SIGHUP)
        assert s.recv(256) == b"RELOADING=1"
        assert s.recv(256) == b"READY=1"
        d.p.send_signal(signal.SIGTERM)
        assert s.recv(256) == b"STOPPING=1"
        assert d.p.wait(10) == 0
    finally:
        s.close()


def test_sighup_changes_the_serializer_for_new_writes(procs):
    d = procs("[cache]\nserializer = null://\n")
    c = d.conn()
    assert c.cmd("SET", "old", "x" * 100) == "OK"
    assert c.cmd("CACHE", "RAWGET", "old") == b"x" * 100
    d.write_conf("[cache]\nserializer = zstd://\n[upstream]\nupstream-command-timeout = 1500\n")
    d.p.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "serializer is now 'zstd://'" in d.text(), 5), d.text()
    assert c.cmd("SET", "new", "y" * 100) == "OK"
    assert c.cmd("CACHE", "RAWGET", "new")[:4] == b"\x28\xb5\x2f\xfd"       # a zstd frame
    assert c.cmd("GET", "new") == b"y" * 100
    assert c.cmd("GET", "old") == b"x" * 100                                  # stored plain: mixed mode
    assert c.cmd("CONFIG", "GET", "upstream-command-timeout") == [b"upstream-command-timeout", b"1500"]
    d.write_conf("[cache]\nserializer = nope://\n")
    d.p.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "unknown scheme 'nope'" in d.text(), 5), d.text()
    assert c.cmd("CONFIG", "GET", "serializer") == [b"serializer", b"zstd://"]


def test_sighup_moves_to_another_upstream(procs, upstreams):
    """A reload naming another upstream (and pool size): new commands go there, the client stays
    connected, the old upstream's commands in flight finish."""
    pa, pb = upstreams().port, upstreams().port
    d = procs("[cache]\nbackend = redis://127.0.0.1:%d/0\n" % pa)
    c = d.conn()
    assert c.cmd("SET", "x", "on-a") == "OK"
    d.write_conf("[cache]\nbackend = redis://127.0.0.1:%d/0\n[upstream]\nupstream-pool-size = 2\n" % pb)
    d.p.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "backend is now" in d.text(), 5), d.text()
    assert c.cmd("SET", "y", "on-b") == "OK"
    assert c.cmd("GET", "x") is None            # x lives on the first upstream
    with Conn(("127.0.0.1", pa)) as a, Conn(("127.0.0.1", pb)) as b:
        assert a.cmd("GET", "x") == b"on-a" and a.cmd("EXISTS", "y") == 0
        assert b.cmd("GET", "y") == b"on-b"
        assert wait_until(lambda: len([l for l in a.cmd("CLIENT", "LIST").decode().splitlines()
                                       if "cmd=client|list" not in l]) == 0, 5)
    assert parse_info(c.cmd("INFO", "upstream").decode())["upstream_connections"] == "2"
