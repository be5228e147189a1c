"""Near cache (issue 15), faults: whenever cachetoryd cannot be sure that Redis still tells it every change,
the near cache is emptied (and switched off while the invalidation connection is down), commands keep
working through the upstream, and it comes back on by itself. Nothing stale is served once the fault was
acknowledged to the test.

  - the upstream restarted (stop / start, no persistence: a stale near cache would answer old values);
  - the invalidation connection killed (CLIENT KILL TYPE pubsub), then a direct write at once;
  - Redis paused (CLIENT PAUSE 2000 ALL; SIGSTOP) past upstream-command-timeout: its PING times out;
  - tracking refused (CLIENT renamed away): off with a log line, nothing kept, commands correct;
  - the pool connections killed (CLIENT KILL TYPE normal): their tracking is gone with them.
"""
import time

import pytest

import conftest
from test_near_cache import (enc, info, near, near_proxy, poll, prime, state_is, up_calls, wait_ready,  # noqa: F401
                             wait_state)
from upstream_support import is_upstream_err, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

SCALE = conftest.SLOW


def log_has(d, text, timeout=2.0):
    return wait_for(lambda: text in d.log_tail(200000), timeout * SCALE, 0.02)


def read_until(c, key, want, timeout):
    """GET key until it gives want (errors while the upstream is away are fine); the last reply."""
    last = [None]

    def ok():
        last[0] = c.cmd("GET", key)
        return last[0] == want
    wait_for(ok, timeout * SCALE, 0.02)
    return last[0]


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_upstream_restarted(start_daemon, upstreams, serializer):
    up = upstreams()                                        # no persistence: restarted empty
    d = near_proxy(start_daemon, up, serializer, upstream_retry_max=300, upstream_command_timeout=1000,
                   upstream_connect_timeout=500)
    c = d.conn()
    assert c.cmd("SET", "k", "before") == "OK"
    prime(d, [c], "k", b"before")
    f0 = near(d, "flushes_tracking")
    up.stop()
    wait_state(d, "off", 3.0)
    assert near(d, "entries") == 0 and near(d, "flushes_tracking") > f0
    assert log_has(d, "near cache emptied and off: "), d.log_tail()
    r = c.cmd("GET", "k")
    assert is_upstream_err(r), "GET with the upstream stopped: %r (the near cache must not answer)" % (r,)
    up.start()
    wait_state(d, "on", 8.0)
    assert log_has(d, "near cache on again"), d.log_tail()
    r = read_until(c, "k", None, 5.0)
    assert r is None, "the restarted upstream is empty, yet GET k gave %r" % (r,)
    wait_ready(d)
    assert c.cmd("SET", "k", "after") == "OK"
    prime(d, [c], "k", b"after")                            # kept again
    with up.conn() as direct:
        assert direct.cmd("SET", "k", enc(serializer, "direct")) == "OK"
    got, _ = poll(lambda: c.cmd("GET", "k") == b"direct", 0.1 * SCALE)
    assert got, "after the restart a direct write was not seen within 100 ms: %r" % (c.cmd("GET", "k"),)


def test_invalidation_connection_killed(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", upstream_retry_max=300)
    c = d.conn()
    direct = up.conn()
    l0 = int(info(d)["upstream_tracking_losses"])
    for rnd in range(3):
        wait_ready(d)
        old, new = b"old-%d" % rnd, b"new-%d" % rnd
        assert c.cmd("SET", "k", old) == "OK"
        prime(d, [c], "k", old)
        f0 = near(d, "flushes_tracking")
        killed = direct.cmd("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed == 1, "CLIENT KILL TYPE pubsub killed %r connections" % (killed,)
        # the kill is acknowledged: a direct write now is not told to anyone, and must still be seen
        assert direct.cmd("SET", "k", enc("zstd://", new)) == "OK"
        r = c.cmd("GET", "k")
        assert r == new, "round %d: GET right after the invalidation connection was killed and k written " \
            "directly: %r, expected %r" % (rnd, r, new)
        assert near(d, "flushes_tracking") > f0
        wait_state(d, "on", 5.0)
    assert int(info(d)["upstream_tracking_losses"]) >= l0 + 3
    assert log_has(d, "near cache emptied and off: ") and log_has(d, "near cache on again")
    wait_ready(d)
    prime(d, [c], "k", b"new-2")
    assert direct.cmd("SET", "k", enc("zstd://", "last")) == "OK"
    got, _ = poll(lambda: c.cmd("GET", "k") == b"last", 0.1 * SCALE)
    assert got, "after the invalidation connection came back a direct write was not seen within 100 ms"


@pytest.mark.timing
def test_client_pause_times_out_the_ping(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", upstream_command_timeout=500, upstream_retry_max=300)
    c = d.conn()
    assert c.cmd("SET", "k", "v1") == "OK"
    prime(d, [c], "k", b"v1")
    with up.conn() as u:
        t0 = time.monotonic()
        assert u.cmd("CLIENT", "PAUSE", "2000", "ALL") == "OK"
    # PING every second, unanswered for 500 ms: off well before the pause ends
    off = wait_for(lambda: state_is(d, "off") and time.monotonic() - t0, 1.9 * SCALE, 0.02)
    assert off and off < 1.95, "the near cache did not go off while Redis was paused (%r)" % (
        info(d).get("near_cache_state"),)
    assert near(d, "entries") == 0
    assert log_has(d, "near cache emptied and off: "), d.log_tail()
    time.sleep(max(0.0, t0 + 2.1 - time.monotonic()))      # the pause is over
    r = read_until(c, "k", b"v1", 5.0)
    assert r == b"v1", "GET after the pause: %r" % (r,)
    assert c.cmd("SET", "k", "v2") == "OK" and c.cmd("GET", "k") == b"v2"
    wait_state(d, "on", 8.0)
    wait_ready(d)
    prime(d, [c], "k", b"v2")
    with up.conn() as direct:
        assert direct.cmd("SET", "k", enc("zstd://", "v3")) == "OK"
    got, _ = poll(lambda: c.cmd("GET", "k") == b"v3", 0.1 * SCALE)
    assert got, "after the pause a direct write was not seen within 100 ms: %r" % (c.cmd("GET", "k"),)


@pytest.mark.timing
def test_stopped_upstream_turns_it_off_until_it_resumes(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "null://", upstream_command_timeout=500, upstream_retry_max=300)
    c = d.conn()
    assert c.cmd("SET", "k", "v1") == "OK"
    prime(d, [c], "k", b"v1")
    up.pause()
    try:
        wait_state(d, "off", 2.5)
        assert near(d, "entries") == 0
        r = c.cmd("GET", "k")
        assert is_upstream_err(r), "GET with the upstream stopped: %r (the near cache must not answer)" % (r,)
    finally:
        up.resume()
    with up.conn() as direct:
        assert direct.cmd("SET", "k", "v2") == "OK"
    assert read_until(c, "k", b"v2", 5.0) == b"v2"
    wait_state(d, "on", 8.0)
    wait_ready(d)
    prime(d, [c], "k", b"v2")


def test_tracking_refused(start_daemon, upstreams):
    up = upstreams(extra=["--rename-command", "CLIENT", ""])
    with up.conn() as u:
        r = u.cmd("CLIENT", "ID")
        assert isinstance(r, str) and r.startswith("ERR unknown command"), "CLIENT is still there: %r" % (r,)
    d = near_proxy(start_daemon, up, "zstd://", ready=False)
    c = d.conn()
    wait_state(d, "off", 5.0)
    i = info(d)
    assert "tracking refused" in i["near_cache_off_reason"], i["near_cache_off_reason"]
    assert i["upstream_tracking"] == "off"
    assert log_has(d, "tracking refused: ERR unknown command"), d.log_tail()
    assert log_has(d, "near cache emptied and off: ")
    assert c.cmd("SET", "k", "v1") == "OK"
    g0 = up_calls(up, "get")
    for _ in range(5):
        assert c.cmd("GET", "k") == b"v1"
    assert up_calls(up, "get") == g0 + 5, "GETs answered without the upstream while tracking is refused"
    assert c.cmd("MSET", "a", "1", "b", "2") == "OK"
    assert c.cmd("MGET", "a", "k", "b", "zz") == [b"1", b"v1", b"2", None]
    with up.conn() as direct:
        assert direct.cmd("SET", "k", enc("zstd://", "v2")) == "OK"
    assert c.cmd("GET", "k") == b"v2"
    assert c.cmd("INCR", "n") == 1 and c.cmd("GET", "n") == b"1"
    i = info(d)
    assert int(i["near_cache_entries"]) == 0 and int(i["near_cache_hits"]) == 0
    assert int(i["near_cache_stored"]) == 0
    assert d.alive()


def test_pool_connections_killed(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", upstream_retry_max=300)
    c = d.conn()
    direct = up.conn()
    for rnd in range(2):
        wait_ready(d)
        old, new = b"old-%d" % rnd, b"new-%d" % rnd
        assert c.cmd("SET", "k", old) == "OK"
        prime(d, [c], "k", old)
        t0 = near(d, "tracking_lost")
        killed = direct.cmd("CLIENT", "KILL", "TYPE", "normal")       # SKIPME yes: not this one
        assert isinstance(killed, int) and killed >= 1, killed
        assert direct.cmd("SET", "k", enc("zstd://", new)) == "OK"
        # the first command may meet a connection Redis just closed (an "ERR upstream" error, as without
        # the near cache); the old value never comes back
        replies = []
        for _ in range(20):
            replies.append(c.cmd("GET", "k"))
            if replies[-1] == new:
                break
            time.sleep(0.01)
        assert replies[-1] == new and all(r == new or is_upstream_err(r) for r in replies), \
            "round %d: GETs after the pool connections were killed and k written directly: %r, expected %r" % (
                rnd, replies, new)
        assert near(d, "tracking_lost") > t0
        assert int(info(d)["near_cache_flushes_tracking"]) >= 1
    assert log_has(d, "near cache emptied: "), d.log_tail()
    assert state_is(d, "on")
    wait_ready(d)
    prime(d, [c], "k", b"new-1")
    assert direct.cmd("SET", "k", enc("zstd://", "last")) == "OK"
    got, _ = poll(lambda: c.cmd("GET", "k") == b"last", 0.1 * SCALE)
    assert got, "after the pool reconnected a direct write was not seen within 100 ms"
