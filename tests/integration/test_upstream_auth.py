"""Upstream mode, credentials from the URL: redis://:password@ and redis://user:password@ open
authenticated connections; a wrong or missing password makes commands fail promptly with an
"ERR upstream" error (never a hang), and cachetoryd itself keeps answering."""
import pytest

from upstream_support import encode_check, is_upstream_err, proxy, timed, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

PW = "s3cret-pw"


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_password_from_url(start_daemon, upstreams, serializer):
    up = upstreams(password=PW)
    d = proxy(start_daemon, up, serializer, url="redis://:%s@127.0.0.1:%d/1" % (PW, up.port))
    c = d.conn()
    assert c.cmd("SET", "k", b"authenticated") == "OK"
    assert c.cmd("GET", "k") == b"authenticated"
    assert c.cmd("INCR", "n") == 1
    assert c.cmd("MSET", "a", b"1", "b", b"2") == "OK"
    encode_check(serializer, up.client(1).get("k"), b"authenticated", "written with redis://:pw@.../1")
    # the client of cachetoryd needs no password of its own (cachetoryd holds the upstream's)
    assert c.cmd("DBSIZE") == 4


def test_user_and_password_from_url(start_daemon, upstreams):
    up = upstreams(password=PW, extra=["--user", "alice", "on", ">alicepw", "~*", "&*", "+@all"])
    d = proxy(start_daemon, up, "zstd://", url="redis://alice:alicepw@127.0.0.1:%d/0" % up.port)
    c = d.conn()
    assert c.cmd("SET", "k", b"as alice") == "OK"
    assert c.cmd("GET", "k") == b"as alice"
    encode_check("zstd://", up.client(0).get("k"), b"as alice", "written as alice")
    users = {f.get("user") for f in up.clients_from()}
    assert users == {"alice"}, "upstream connections of cachetoryd authenticated as %r" % users


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "no-password"])
def test_bad_credentials_give_upstream_errors(start_daemon, upstreams, password):
    up = upstreams(password=PW)
    url = "redis://:%s@127.0.0.1:%d/0" % (password, up.port) if password else "redis://127.0.0.1:%d/0" % up.port
    d = proxy(start_daemon, up, "null://", url=url, upstream_command_timeout=1000,
              upstream_connect_timeout=1000)
    c = d.conn(timeout=15.0)
    for i, cmd in enumerate([["SET", "k", "v"], ["GET", "k"], ["MGET", "a", "b"], ["INCR", "n"], ["DBSIZE"],
                             ["SET", "k2", "v"]]):
        r, dt = timed(c, *cmd)
        assert is_upstream_err(r), "%r with a %s password upstream: %r (expected an 'ERR upstream ...' error)" % (
            cmd, password or "missing", r)
        assert dt < 3.0, "%r took %.2fs to fail (connect timeout 1000 ms, command timeout 1000 ms)" % (cmd, dt)
    assert c.cmd("PING") == "PONG", "cachetoryd itself should still answer"
    assert up.client(0).dbsize() == 0
    assert d.alive()
