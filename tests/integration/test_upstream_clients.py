"""Upstream mode with real clients: RESP3 (HELLO 3) replies are the same as Redis's own RESP3 replies, and
redis-benchmark (50 clients, pipelined) runs through cachetoryd without an error."""
import shutil
import subprocess

import pytest
import redis

from upstream_support import decode, proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_resp3_string_commands(start_daemon, reference_redis, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    for c in (ours, ref):
        r = c.cmd("HELLO", "3")
        assert isinstance(r, dict), r
    cmds = [["SET", "a", "1"], ["GET", "a"], ["GET", "missing"], ["MGET", "a", "missing"], ["INCR", "a"],
            ["INCRBYFLOAT", "f", "1.5"], ["SET", "a", "2", "GET"], ["SET", "n", "x", "NX", "GET"],
            ["EXPIRE", "a", "100"], ["TTL", "a"], ["EXISTS", "a", "b"], ["TYPE", "a"], ["KEYS", "*"],
            ["GETEX", "missing"], ["GETDEL", "a"], ["APPEND", "s", "abc"], ["GETRANGE", "s", "0", "1"],
            ["MULTI"], ["SET", "x", "1"], ["GET", "x"], ["GET", "nothing"], ["EXEC"], ["DBSIZE"], ["INCR", "s"]]
    for cmd in cmds:
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        if cmd[0] == "KEYS":
            a, b = sorted(a), sorted(b)
        if cmd[0] == "TTL":
            assert abs(a - b) <= 1
            continue
        assert b == a and type(b) is type(a), "RESP3 %r (%s): redis %r, cachetoryd %r" % (cmd, serializer, a, b)


def test_resp3_passthrough_replies(start_daemon, reference_redis, upstreams):
    """Forwarded commands answer a HELLO 3 client with Redis's own RESP3 replies (maps, sets, doubles,
    nulls): cachetoryd relays what its RESP3 upstream connections read (test_resp3_forwarded.py compares
    the bytes)."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes")
    ours, ref = d.conn(), reference_redis.conn()
    for c in (ours, ref):
        assert isinstance(c.cmd("HELLO", "3"), dict)
    cmds = [["HSET", "h", "f", "v", "g", "w"], ["HGETALL", "h"], ["SADD", "s", "a", "b"], ["SMEMBERS", "s"],
            ["ZADD", "z", "1.5", "m"], ["ZSCORE", "z", "m"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["HEXISTS", "h", "f"], ["LPOP", "nolist"]]
    for cmd in cmds:
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        if cmd[0] == "SMEMBERS":
            a, b = sorted(a), sorted(b)
        assert b == a, "%r: redis %r, cachetoryd %r" % (cmd, a, b)
    assert isinstance(ours.cmd("HGETALL", "h"), dict)
    assert ours.cmd("GET", "missing") is None                   # RESP3 null from cachetoryd itself


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_redis_py_client(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    r = redis.Redis(host=d.host, port=d.port, socket_timeout=10)
    assert r.set("k", "v", ex=100) is True
    assert r.get("k") == b"v"
    p = r.pipeline(transaction=True)
    p.set("a", "1").incr("a").get("a")
    assert p.execute() == [True, 2, b"2"]
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set("p:%d" % i, i)
    assert all(p.execute())
    assert r.mget(["p:0", "p:99", "nope"]) == [b"0", b"99", None]
    assert sorted(r.scan_iter("p:1*")) == sorted(("p:%d" % i).encode() for i in range(100) if str(i).startswith("1"))
    assert decode(serializer, up.client(0).get("p:42")) == b"42"
    r.close()


def test_redis_benchmark_through_cachetoryd(start_daemon, upstreams):
    bench = shutil.which("redis-benchmark")
    if bench is None:
        pytest.skip("redis-benchmark is not installed")
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    for pipeline in ("1", "16"):
        p = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(d.port), "-c", "50", "-n", "10000", "-d", "100",
                            "-r", "100000", "-P", pipeline, "-t", "set,get,mset", "-q"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, "redis-benchmark -P %s exited %d: %s" % (pipeline, p.returncode, out[-800:])
        assert "ERR" not in out and "rror" not in out, "redis-benchmark -P %s reported errors: %s" % (
            pipeline, out[-800:])
        for t in ("SET", "GET", "MSET"):
            assert t in out and "requests per second" in out, out[-800:]
    assert d.alive()
    raw = up.client(0)
    assert raw.dbsize() > 1000
    k = raw.randomkey()
    v = raw.get(k)
    assert v[:4] == b"\x28\xb5\x2f\xfd", "redis-benchmark's value for %r is stored as %r" % (k, v[:20])
