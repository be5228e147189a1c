"""default-ttl: keys written without a TTL get it (memory:// and through an upstream); explicit TTLs and
KEEPTTL win."""
import pytest

from helpers import Err
from upstream_support import upstreams  # noqa: F401  (the fixture)

pytestmark = pytest.mark.needs_cachetoryd


def check_default_ttl(c):
    assert c.cmd("SET", "plain", "v") == "OK"
    assert 50 <= c.cmd("TTL", "plain") <= 60
    assert c.cmd("SET", "explicit", "v", "EX", "1000") == "OK"
    assert 990 <= c.cmd("TTL", "explicit") <= 1000
    assert c.cmd("PERSIST", "explicit") == 1
    assert c.cmd("SET", "explicit", "w", "KEEPTTL") == "OK"
    assert c.cmd("TTL", "explicit") == -1
    assert c.cmd("MSET", "m1", "a", "m2", "b") == "OK"
    assert 50 <= c.cmd("TTL", "m1") <= 60 and 50 <= c.cmd("TTL", "m2") <= 60
    assert c.cmd("MGET", "m1", "m2") == [b"a", b"b"]
    assert c.cmd("MSETNX", "m1", "x", "m3", "y") == 0
    assert c.cmd("EXISTS", "m3") == 0
    assert c.cmd("MSETNX", "m3", "y", "m4", "z") == 1
    assert 50 <= c.cmd("TTL", "m4") <= 60
    assert c.cmd("SETNX", "n", "v") == 1
    assert 50 <= c.cmd("TTL", "n") <= 60


def test_default_ttl_memory(start_daemon):
    d = start_daemon(default_ttl="60")
    check_default_ttl(d.conn())


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_default_ttl_upstream(start_daemon, upstreams, serializer):
    up = upstreams()
    d = start_daemon(default_ttl="60", backend=up.url(), serializer=serializer)
    check_default_ttl(d.conn())
    with up.conn() as direct:
        assert 50 <= direct.cmd("TTL", "m2") <= 60


def check_created_keys_get_default_ttl(c):
    """Keys created by a read-modify-write or by SET ... KEEPTTL get default-ttl; existing keys keep their
    expiry (or its absence); a command that fails or writes nothing creates nothing."""
    new = [("INCR", "i"), ("INCRBY", "ib", "5"), ("DECR", "d"), ("DECRBY", "db", "2"),
           ("INCRBYFLOAT", "f", "1.5"), ("APPEND", "a", "xyz"), ("APPEND", "ae", ""),
           ("SETRANGE", "r", "3", "ab"), ("SET", "k", "v", "KEEPTTL"), ("SET", "kn", "v", "NX", "KEEPTTL"),
           ("SET", "kg", "v", "KEEPTTL", "GET"), ("SETBIT", "sb", "7", "1"),
           ("BITFIELD", "bf", "SET", "u8", "0", "200")]
    replies = [c.cmd(*cmd) for cmd in new]
    assert replies == [1, 5, -1, -2, b"1.5", 3, 0, 5, "OK", "OK", None, 0, [0]]
    for cmd in new:
        assert 50 <= c.cmd("TTL", cmd[1]) <= 60, "%s on a new key: TTL %r" % (cmd[0], c.cmd("TTL", cmd[1]))
    # existing keys: a persistent one stays persistent, one with a TTL keeps it
    for cmd in new:
        key = cmd[1]
        assert c.cmd("SET", key, "7", "EX", "1000") == "OK"
        assert c.cmd("SET", key + "p", "7") == "OK" and c.cmd("PERSIST", key + "p") == 1
        assert not isinstance(c.cmd(cmd[0], key, *cmd[2:]), Err)
        assert not isinstance(c.cmd(cmd[0], key + "p", *cmd[2:]), Err)
        assert 990 <= c.cmd("TTL", key) <= 1000, cmd
        assert c.cmd("TTL", key + "p") == -1, cmd
    # nothing created
    assert c.cmd("SETRANGE", "none", "0", "") == 0
    assert c.cmd("SET", "xx", "v", "XX", "KEEPTTL") is None
    assert c.cmd("EXISTS", "none", "xx") == 0
    assert c.cmd("SET", "s", "text") == "OK" and c.cmd("PERSIST", "s") == 1
    assert c.cmd("INCR", "s") == Err("ERR value is not an integer or out of range")
    assert c.cmd("INCRBYFLOAT", "s", "1") == Err("ERR value is not a valid float")
    assert c.cmd("TTL", "s") == -1
    # inside MULTI / EXEC, after a DEL in the same transaction
    assert c.pipeline([("MULTI",), ("DEL", "i"), ("INCR", "i"), ("APPEND", "t", "x"),
                       ("SET", "t2", "v", "KEEPTTL"), ("EXEC",)])[-1] == [1, 1, 1, "OK"]
    for key in ("i", "t", "t2"):
        assert 50 <= c.cmd("TTL", key) <= 60, key


def test_default_ttl_created_keys_memory(start_daemon):
    for serializer in ("null://", "zstd://"):
        d = start_daemon(default_ttl="60", serializer=serializer)
        check_created_keys_get_default_ttl(d.conn())


@pytest.mark.parametrize("serializer,pool", [("null://", "4"), ("zstd://", "4"), ("null://", "1"),
                                             ("zstd://?compression-min-size=100", "1")])
def test_default_ttl_created_keys_upstream(start_daemon, upstreams, serializer, pool):
    up = upstreams()
    d = start_daemon(default_ttl="60", backend=up.url(), serializer=serializer, upstream_pool_size=pool)
    check_created_keys_get_default_ttl(d.conn())
    with up.conn() as direct:
        for key in ("i", "t", "t2"):
            assert 50 <= direct.cmd("TTL", key) <= 60, key
        assert direct.cmd("TTL", "ibp") == -1


def test_no_default_ttl_created_keys_stay_persistent(start_daemon, upstreams):
    """Without default-ttl nothing changes: keys that INCR or SET ... KEEPTTL create have no expiry."""
    up = upstreams()
    for d in (start_daemon(), start_daemon(backend=up.url())):
        c = d.conn()
        assert c.cmd("INCR", "nt") == 1 and c.cmd("SET", "nk", "v", "KEEPTTL") == "OK"
        assert c.cmd("TTL", "nt") == -1 and c.cmd("TTL", "nk") == -1
        c.cmd("FLUSHALL")
