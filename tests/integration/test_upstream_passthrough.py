"""Upstream mode, commands cachetoryd does not implement: with --passthrough no (the default) an error that
names the setting; with --passthrough yes forwarded verbatim (same replies as Redis). Blocking and pub/sub
commands get a clear error either way, promptly, and the connection stays usable."""
import time

import pytest

from helpers import Err
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

OTHER = [
    ["HSET", "h", "f", "v"], ["HGET", "h", "f"], ["LPUSH", "l", "a"], ["LRANGE", "l", "0", "-1"],
    ["SADD", "s", "m"], ["SMEMBERS", "s"], ["ZADD", "z", "1", "m"], ["XADD", "x", "*", "f", "v"],
    ["PFADD", "hll", "a"],
]
BLOCKING = [
    ["BLPOP", "bl", "1"], ["BRPOP", "bl", "1"], ["BLMOVE", "bl", "bl2", "LEFT", "RIGHT", "1"],
    ["BZPOPMIN", "bz", "1"], ["XREAD", "BLOCK", "1000", "STREAMS", "x", "$"],
    ["SUBSCRIBE", "chan"], ["PSUBSCRIBE", "ch*"],
]


@pytest.mark.parametrize("mode", [None, "no"], ids=["default", "explicit-no"])
def test_passthrough_off_names_the_setting(start_daemon, upstreams, mode):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough=mode)
    c = d.conn()
    for cmd in OTHER:
        r = c.cmd(*cmd)
        assert isinstance(r, Err) and "passthrough" in r, "%r with passthrough off: %r" % (cmd, r)
    assert c.cmd("SET", "k", "v") == "OK", "string commands still work"
    assert up.client(0).keys("*") == [b"k"], "a refused command reached the upstream"


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_passthrough_yes_forwards_verbatim(start_daemon, reference_redis, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    ours, ref = d.conn(), reference_redis.conn()
    cmds = [
        ["HSET", "h", "f1", "v1", "f2", "v2"], ["HGET", "h", "f1"], ["HGETALL", "h"], ["HINCRBY", "h", "n", "5"],
        ["HDEL", "h", "f2"], ["HLEN", "h"],
        ["LPUSH", "l", "a", "b", "c"], ["RPUSH", "l", "z"], ["LRANGE", "l", "0", "-1"], ["LPOP", "l"],
        ["LLEN", "l"],
        ["SADD", "s", "x", "y", "x"], ["SCARD", "s"], ["SISMEMBER", "s", "y"],
        ["ZADD", "z", "1", "a", "2", "b"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["ZSCORE", "z", "b"],
        ["TYPE", "h"], ["TYPE", "l"], ["TYPE", "s"], ["TYPE", "z"],
        ["HGET", "l", "x"],                                # WRONGTYPE from the upstream, as it is
        ["EXISTS", "h", "l", "s", "z"], ["DBSIZE"],
    ]
    for cmd in cmds:
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        assert b == a, "%r with passthrough yes (%s): redis %r, cachetoryd %r" % (cmd, serializer, a, b)
    # verbatim: the hash field is not encoded even with a zstd chain
    assert up.client(0).hget("h", "f1") == b"v1"
    assert up.client(0).lrange("l", 0, -1) == [b"b", b"a", b"z"]
    # SELECT applies to forwarded commands too
    assert ours.cmd("SELECT", "4") == "OK"
    assert ours.cmd("HSET", "h4", "f", "v") == 1
    assert up.client(4).hget("h4", "f") == b"v"


@pytest.mark.parametrize("mode", ["no", "yes"])
def test_blocking_and_pubsub_get_a_clear_error(start_daemon, upstreams, mode):
    """Without passthrough, or without dedicated upstream connections (upstream-dedicated-max = 0; with
    them they run: test_pinned.py), blocking and pub/sub commands get an error at once."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough=mode, upstream_dedicated_max=0)
    for cmd in BLOCKING:
        c = d.conn(timeout=5.0)
        t = time.monotonic()
        r = c.cmd(*cmd)
        dt = time.monotonic() - t
        assert isinstance(r, Err) and len(r) > 10, "%r (passthrough %s) replied %r, expected an error" % (
            cmd, mode, r)
        assert dt < 0.9, "%r (passthrough %s) took %.2fs to be refused" % (cmd, mode, dt)
        # the connection is still a normal one
        assert c.cmd("SET", "after", "v") == "OK", "%r left the connection unusable" % (cmd,)
        assert c.cmd("GET", "after") == b"v"
        c.close()
    # and nothing of the blocking commands reached the upstream as a write
    assert sorted(up.client(0).keys("*")) == [b"after"]
