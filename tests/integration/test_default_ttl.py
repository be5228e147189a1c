"""default-ttl: keys written without a TTL get it (memory:// and through an upstream); explicit TTLs and
KEEPTTL win."""
import pytest

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
