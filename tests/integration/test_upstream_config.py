"""Upstream mode, configuration: the upstream options are accepted with a redis:// backend, and shutdown
with an upstream in every state is clean. (rediss:// URLs: test_tls_upstream.py.)"""
import time

import pytest

from helpers import encode_command
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


def test_all_upstream_options(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://?compression-level=5", upstream_pool_size=2,
              upstream_connect_timeout=300, upstream_command_timeout=700, upstream_retry_max=800,
              passthrough="yes")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK" and c.cmd("GET", "k") == b"v"
    assert c.cmd("HSET", "h", "f", "v") == 1


def _stop_status(d):
    status = d.stop()
    return status, d.killed


@pytest.mark.parametrize("state", ["up", "down", "paused"])
def test_clean_shutdown_with_upstream(start_daemon, upstreams, state):
    """SIGTERM ends cachetoryd with status 0 whatever the upstream is doing (as in memory mode,
    test_server): connected and idle, gone (reconnecting), or stopped with commands in flight."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", upstream_command_timeout=3000, upstream_retry_max=200)
    c = d.conn(timeout=10.0)
    assert c.cmd("SET", "k", "v") == "OK" and c.cmd("INCR", "n") == 1
    try:
        if state == "down":
            up.stop()
            r = c.cmd("GET", "k")
            assert str(r).startswith("ERR upstream"), r
            time.sleep(0.3)                      # a reconnection attempt or two
        elif state == "paused":
            up.pause()
            c.send(encode_command("GET", "k") + encode_command("SET", "x", "y"))
            time.sleep(0.2)                      # the commands are waiting upstream
        status, killed = _stop_status(d)
    finally:
        up.resume()
    assert not killed, "cachetoryd needed SIGKILL after SIGTERM (upstream %s)" % state
    assert status == 0, "cachetoryd exited with status %r after SIGTERM (upstream %s); log:\n%s" % (
        status, state, d.log_tail(1500))
