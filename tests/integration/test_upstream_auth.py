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


def test_password_file(start_daemon, upstreams, tmp_path):
    """upstream-password-file: the password from a file (a mounted secret, one line, a trailing newline
    ignored), never in the URL; a rotated secret is read again on SIGHUP and new connections use it."""
    import os
    import signal
    from upstream_support import wait_for
    up = upstreams(password=PW)
    pw = tmp_path / "redis-password"
    pw.write_text(PW + "\n")
    d = proxy(start_daemon, up, "zstd://", url=up.url(password=False), upstream_password_file=str(pw))
    c = d.conn()
    assert c.cmd("SET", "k", b"from a file") == "OK"
    assert c.cmd("GET", "k") == b"from a file"
    assert PW not in " ".join(c.cmd("CONFIG", "GET", "backend")[1].decode().split())
    # rotation: the upstream's password changes, then the file, then SIGHUP
    with up.conn() as direct:
        assert direct.cmd("CONFIG", "SET", "requirepass", "rotated-pw") == "OK"
        assert direct.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
    pw.write_text("rotated-pw")
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: c.cmd("SET", "k2", b"after rotation") == "OK", 10)
    assert c.cmd("GET", "k2") == b"after rotation"
    assert "upstream-password-file changed" in d.log_tail(20000)
    assert "rotated-pw" not in d.log_tail(20000) and PW not in d.log_tail(20000)


@pytest.mark.parametrize("content,why", [
    (None, "No such file"), ("", "is empty"), ("a\nb\n", "line break"), ("x" * 5000, "longer than 4096")])
def test_password_file_refused(upstreams, tmp_path, content, why):
    import subprocess
    import conftest
    up = upstreams(password=PW)
    pw = tmp_path / "pw"
    if content is not None:
        pw.write_text(content)
    p = subprocess.run([str(conftest.BIN), "-t", "--backend", up.url(password=False), "--upstream-password-file",
                        str(pw)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode()
    assert p.returncode == 1 and "upstream-password-file '%s'" % pw in out and why in out, out


def test_password_in_url_and_file_refused(upstreams, tmp_path):
    import subprocess
    import conftest
    up = upstreams(password=PW)
    pw = tmp_path / "pw"
    pw.write_text(PW)
    p = subprocess.run([str(conftest.BIN), "-t", "--backend", up.url(), "--upstream-password-file", str(pw)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode()
    assert p.returncode == 1 and "give it in one place" in out and PW not in out, out
