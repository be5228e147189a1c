"""Upstream mode, INFO's "# Upstream" section and the connection pool: the fields are there with plausible
values, and many clients share a small pool of upstream connections (not one connection per client)."""
import threading

import pytest

from helpers import parse_info
from upstream_support import UPSTREAM_FIELDS, proxy, upstream_info, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


def _ints(info):
    out = {}
    for f in UPSTREAM_FIELDS:
        assert f in info, "INFO has no %s (upstream fields present: %r)" % (
            f, sorted(k for k in info if k.startswith("upstream")))
        try:
            out[f] = int(info[f])
        except ValueError:
            pytest.fail("%s is not an integer: %r" % (f, info[f]))
        assert out[f] >= 0, "%s = %d" % (f, out[f])
    return out


def test_info_upstream_fields(start_daemon, upstreams):
    pool = 3
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", upstream_pool_size=pool)
    info, has_header = upstream_info(d)
    assert has_header, "INFO has no '# Upstream' section"
    before = _ints(info)
    # 20 clients, 50 commands each, pipelined
    conns = [d.conn() for _ in range(20)]
    errors = []

    def work(c, n):
        from helpers import encode_command
        c.send(b"".join(encode_command("SET", "k:%d:%d" % (n, j), "v") for j in range(50)))
        rs = [c.read_reply() for _ in range(50)]
        if rs != ["OK"] * 50:
            errors.append(rs[:3])

    ts = [threading.Thread(target=work, args=(c, n)) for n, c in enumerate(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors[:3]
    assert conns[0].cmd("GET", "k:3:7") == b"v"
    # wait until nothing is in flight
    wait_for(lambda: upstream_info(d)[0].get("upstream_commands_in_flight") == "0", 3.0)
    v = _ints(upstream_info(d)[0])
    assert v["upstream_commands_in_flight"] == 0, v
    assert v["upstream_commands"] - before["upstream_commands"] >= 1000, \
        "upstream_commands went from %d to %d after 1001 commands" % (before["upstream_commands"], v["upstream_commands"])
    assert 1 <= v["upstream_connections_ready"] <= v["upstream_connections"] <= pool, \
        "with --upstream-pool-size %d: connections %d, ready %d" % (
            pool, v["upstream_connections"], v["upstream_connections_ready"])
    assert v["upstream_errors"] == 0 and v["upstream_timeouts"] == 0 and v["upstream_reconnects"] == 0, v
    assert 0 < v["upstream_latency_avg_usec"] <= v["upstream_latency_max_usec"], v
    assert v["upstream_latency_avg_usec"] < 1000000, "average upstream latency %d us on loopback" % (
        v["upstream_latency_avg_usec"])
    # the upstream sees the pool, not one connection per client (20 clients connected now)
    theirs = up.clients_from()
    assert 1 <= len(theirs) <= pool, "upstream has %d connections from cachetoryd (pool size %d, 20 clients): %r" % (
        len(theirs), pool, [(x.get("addr"), x.get("cmd")) for x in theirs])
    assert len(theirs) == v["upstream_connections"], \
        "INFO says %d upstream connections, the upstream sees %d" % (v["upstream_connections"], len(theirs))


def test_info_upstream_section_by_name(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://")
    with d.conn() as c:
        assert c.cmd("SET", "a", "b") == "OK"
        text = c.cmd("INFO", "upstream")
    assert isinstance(text, bytes) and b"# Upstream" in text, "INFO upstream replied %r" % (text,)
    _ints(parse_info(text))


def test_default_pool_size_is_four(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://")
    conns = [d.conn() for _ in range(12)]
    from helpers import encode_command
    for c in conns:
        c.send(b"".join(encode_command("INCR", "n") for _ in range(20)))
    for c in conns:
        assert all(isinstance(c.read_reply(), int) for _ in range(20))
    assert conns[0].cmd("GET", "n") == b"240"
    v = _ints(upstream_info(d)[0])
    assert 1 <= v["upstream_connections"] <= 4, v
    assert len(up.clients_from()) <= 4
