"""Listening on a unix socket (--unixsocket) next to TCP."""
import os
import stat
import subprocess

import pytest

from conftest import short_tmpdir


@pytest.fixture
def unixd(start_daemon):
    path = os.path.join(short_tmpdir(), "cachetoryd.sock")
    return start_daemon(unixsocket=path)


def test_unix_socket_commands(unixd):
    assert stat.S_ISSOCK(os.stat(unixd.unixsocket).st_mode)
    u = unixd.conn(unix=True)
    assert u.cmd("PING") == "PONG"
    assert u.cmd("SET", "shared", "via-unix") == "OK"
    t = unixd.conn()
    assert t.cmd("GET", "shared") == b"via-unix"
    assert t.cmd("SET", "other", "via-tcp") == "OK"
    assert u.cmd("GET", "other") == b"via-tcp"
    # CLIENT INFO flags a unix socket client with U, as Redis does
    assert " flags=U " in u.cmd("CLIENT", "INFO").decode()
    assert " flags=N " in t.cmd("CLIENT", "INFO").decode()
    u.send(b"ECHO inline\r\n")
    assert u.read_exact_bytes(12) == b"$6\r\ninline\r\n"


def test_unix_socket_many_clients_and_pipeline(unixd):
    conns = [unixd.conn(unix=True) for _ in range(50)]
    for i, c in enumerate(conns):
        assert c.cmd("SET", "k%d" % i, i) == "OK"
    replies = conns[0].pipeline([("GET", "k%d" % i) for i in range(50)] * 20)
    assert replies == [str(i).encode() for i in range(50)] * 20


def test_unix_socket_redis_cli(unixd):
    p = subprocess.run(["redis-cli", "-s", unixd.unixsocket, "SET", "cli", "unix"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert (p.returncode, p.stdout) == (0, b"OK\n"), p.stderr
    p = subprocess.run(["redis-cli", "-s", unixd.unixsocket, "GET", "cli"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.stdout == b"unix\n"


def test_unix_socket_protocol_error_closes(unixd):
    u = unixd.conn(unix=True)
    u.send(b"*1\r\n$-5\r\n")
    assert u.read_until_close(timeout=5) == b"-ERR Protocol error: invalid bulk length\r\n"


def test_unix_socket_removed_on_shutdown(unixd):
    path = unixd.unixsocket
    assert os.path.exists(path)
    assert unixd.stop() == 0
    assert not os.path.exists(path), "socket file left behind after SIGTERM"


def test_unix_socket_permissions(start_daemon):
    path = os.path.join(short_tmpdir(), "perm.sock")
    d = start_daemon(unixsocket=path, unixsocketperm=700)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert d.conn(unix=True).cmd("PING") == "PONG"
