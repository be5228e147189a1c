"""default-ttl: keys written without a TTL get it (memory:// and through an upstream); explicit TTLs and
KEEPTTL win."""
import subprocess
import time

import pytest

from conftest import free_port
from helpers import Conn, wait_until

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
def test_default_ttl_upstream(start_daemon, serializer):
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                with Conn(("127.0.0.1", port), timeout=1) as c:
                    return c.cmd("PING") == "PONG"
            except OSError:
                return False
        assert wait_until(up, 10, 0.05)
        d = start_daemon(default_ttl="60", backend="redis://127.0.0.1:%d/0" % port, serializer=serializer)
        check_default_ttl(d.conn())
        with Conn(("127.0.0.1", port)) as direct:
            assert 50 <= direct.cmd("TTL", "m2") <= 60
    finally:
        redis.terminate()
        redis.wait(10)
