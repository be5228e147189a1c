"""Near cache (issue 15), functional rules: one test per rule, against a real redis-server we start.

  - a hit answers without an upstream GET (Redis's INFO commandstats), with the right value (null://, zstd://);
  - a direct write on redis-server is seen through the proxy within 100 ms (its invalidation message);
  - every kind of write through cachetoryd is seen at once, on the same and on another client connection;
  - MGET serves the keys it holds and fetches the others in one upstream MGET (MONITOR shows which);
  - invalidations name no database: the key goes in every database;
  - an entry never outlives the key's TTL, nor near-cache-ttl;
  - near-cache-max-value-size, near-cache-size (LRU), near-cache-prefixes (BCAST);
  - MULTI / EXEC reads are never served from the near cache;
  - INFO near_cache / upstream fields, Prometheus series; memory:// and redis+cluster:// refused; a reload
    (SIGHUP) changing near-cache-size.

The helpers at the top are shared with test_near_faults.py and test_near_consistency.py.
"""
import os
import re
import signal
import subprocess
import time

import pytest

import conftest
from helpers import Conn, Err, parse_info
from test_codec_support import libzstd_compress
from test_metrics import http_get, parse as parse_metrics
from upstream_support import (proxy, read_monitor, start_monitor, upstreams,  # noqa: F401
                              wait_for)

pytestmark = pytest.mark.needs_cachetoryd

SERIALIZERS = ["null://", "zstd://"]
SCALE = conftest.SLOW


# ---- shared helpers ----------------------------------------------------------------------------------

def enc(serializer, value):
    """What cachetoryd stores upstream for value: for direct writes that the proxy must read back."""
    if isinstance(value, str):
        value = value.encode()
    if serializer.startswith("zstd"):
        return libzstd_compress(value)
    return value


def info(d):
    """cachetoryd's INFO near_cache and upstream sections, parsed. Both are answered by cachetoryd itself
    (plain INFO also asks the upstream for its keyspace, which waits while Redis is paused)."""
    with Conn(d.addr, timeout=conftest.CONN_TIMEOUT) as c:
        text = c.cmd("INFO", "near_cache", "upstream")
    assert isinstance(text, bytes), "INFO near_cache upstream: %r" % (text,)
    return parse_info(text)


def near(d, field):
    """One integer field of INFO near_cache (near_cache_<field>)."""
    return int(info(d)["near_cache_" + field])


def counters(d, *fields):
    i = info(d)
    return {f: int(i["near_cache_" + f]) for f in fields}


def up_calls(up, cmd):
    """calls= of cmdstat_<cmd> in the upstream's INFO commandstats (0 when it never ran)."""
    with up.conn() as u:
        stats = parse_info(u.cmd("INFO", "commandstats"))
    v = stats.get("cmdstat_" + cmd.lower())
    return int(re.search(r"calls=(\d+)", v).group(1)) if v else 0


def state_is(d, state):
    return info(d).get("near_cache_state") == state


def wait_state(d, state, timeout):
    ok = wait_for(lambda: state_is(d, state), timeout * SCALE, 0.02)
    assert ok, "near_cache_state did not become %r within %.1fs: %r" % (
        state, timeout, {k: v for k, v in info(d).items() if "near" in k or "tracking" in k})


def tracking_ready(d):
    """The near cache is on and every pool connection has its CLIENT TRACKING confirmed (default mode)."""
    i = info(d)
    return (i.get("near_cache_state") == "on" and int(i.get("upstream_connections_ready", "0")) > 0 and
            (i.get("near_cache_mode") == "bcast" or
             i.get("upstream_tracking_connections") == i.get("upstream_connections_ready") ==
             i.get("upstream_connections")))


def wait_ready(d, timeout=5.0):
    ok = wait_for(lambda: tracking_ready(d), timeout * SCALE, 0.02)
    assert ok, "the near cache is not on with every pool connection tracked within %.1fs: %r" % (
        timeout, {k: v for k, v in info(d).items() if "near" in k or "tracking" in k or "upstream_conn" in k})


def near_proxy(start_daemon, up, serializer="zstd://", ready=True, **opts):
    """cachetoryd with the near cache in front of up; waits until it is on (ready=True)."""
    opts.setdefault("near_cache", "yes")
    d = proxy(start_daemon, up, serializer, **opts)
    if ready:
        wait_ready(d)
    return d


def prime(d, conns, key, want, reads=2):
    """Read key through each of conns `reads` times; every read must give want, and the reads after the
    first one must be near cache hits (so the key is held before the test goes on)."""
    h0 = near(d, "hits")
    n = 0
    for c in conns:
        for _ in range(reads):
            r = c.cmd("GET", key)
            assert r == want, "GET %s while priming: %r, expected %r" % (key, r, want)
            n += 1
    hits = near(d, "hits") - h0
    assert hits >= n - 1, "priming %s: %d hits in %d reads (the key was not kept): %r" % (
        key, hits, n, {k: v for k, v in info(d).items() if k.startswith("near_cache")})


def poll(pred, timeout, interval=0.002):
    """(value, seconds) — pred() polled until true or timeout."""
    t0 = time.monotonic()
    v = wait_for(pred, timeout, interval)
    return v, time.monotonic() - t0


# ---- hits ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_hit_answers_without_upstream_get(start_daemon, upstreams, serializer):
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    value = b"hello near cache " * 20
    assert c.cmd("SET", "k", value) == "OK"
    g0, h0 = up_calls(up, "get"), near(d, "hits")
    assert c.cmd("GET", "k") == value                       # miss: PTTL + GET upstream
    assert up_calls(up, "get") == g0 + 1
    assert c.cmd("GET", "k") == value                       # hit
    assert near(d, "hits") == h0 + 1
    for _ in range(20):
        assert c.cmd("GET", "k") == value
    assert up_calls(up, "get") == g0 + 1, "hits sent GETs upstream"
    assert near(d, "hits") == h0 + 21
    i = info(d)
    assert int(i["near_cache_entries"]) == 1 and int(i["near_cache_stored"]) >= 1
    assert int(i["near_cache_bytes"]) >= len(value) + 1
    # what the upstream holds is still the codec's frame, not the decoded value
    raw = up.client().get("k")
    assert raw == enc(serializer, value) or (serializer != "null://" and raw != value)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_direct_write_seen_within_100ms(start_daemon, upstreams, serializer):
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    assert c.cmd("SET", "k", "v1") == "OK"
    prime(d, [c], "k", b"v1")
    direct = up.conn()
    worst = 0.0
    for i in range(2, 12):
        new = b"v%d" % i
        i0 = near(d, "invalidations")
        assert direct.cmd("SET", "k", enc(serializer, new)) == "OK"
        got, dt = poll(lambda: c.cmd("GET", "k") == new, 0.1 * SCALE, 0.001)
        assert got, "a direct write was not seen through the proxy within 100 ms (round %d): %r" % (
            i, c.cmd("GET", "k"))
        worst = max(worst, dt)
        assert near(d, "invalidations") > i0
        prime(d, [c], "k", new)                             # kept again, and then dropped again
    assert worst < 0.1 * SCALE


# ---- own writes ----------------------------------------------------------------------------------------

# (name, write command, [(key, value expected right after)], later: (seconds, [(key, value)]) or None)
OWN_WRITES = [
    ("set", ["SET", "k", "new"], [("k", b"new")], None),
    pytest.param("set_px", ["SET", "k", "new", "PX", "300"], [("k", b"new")], (0.45, [("k", None)]),
                 marks=pytest.mark.timing, id="set_px"),
    ("setex", ["SETEX", "k", "100", "new"], [("k", b"new")], None),
    ("getset", ["GETSET", "k", "new"], [("k", b"new")], None),
    ("set_get", ["SET", "k", "new", "GET"], [("k", b"new")], None),
    ("del", ["DEL", "k", "k2"], [("k", None), ("k2", None)], None),
    ("unlink", ["UNLINK", "k"], [("k", None)], None),
    ("expire", ["EXPIRE", "k", "1"], [("k", b"old")], (1.15, [("k", None)])),
    pytest.param("pexpire", ["PEXPIRE", "k", "300"], [("k", b"old")], (0.45, [("k", None)]),
                 marks=pytest.mark.timing, id="pexpire"),
    ("expire_0", ["EXPIRE", "k", "0"], [("k", None)], None),
    ("append", ["APPEND", "k", "+x"], [("k", b"old+x")], None),
    ("setrange", ["SETRANGE", "k", "0", "N"], [("k", b"Nld")], None),
    ("incr", ["INCR", "n"], [("n", b"11")], None),
    ("incrby", ["INCRBY", "n", "5"], [("n", b"15")], None),
    ("decr", ["DECR", "n"], [("n", b"9")], None),
    ("incrbyfloat", ["INCRBYFLOAT", "n", "0.5"], [("n", b"10.5")], None),
    ("mset", ["MSET", "k", "m1", "k2", "m2"], [("k", b"m1"), ("k2", b"m2")], None),
    ("rename", ["RENAME", "k", "k2"], [("k", None), ("k2", b"old")], None),
    ("getdel", ["GETDEL", "k"], [("k", None)], None),
    pytest.param("getex_px", ["GETEX", "k", "PX", "300"], [("k", b"old")], (0.45, [("k", None)]),
                 marks=pytest.mark.timing, id="getex_px"),
    ("flushdb", ["FLUSHDB"], [("k", None), ("k2", None), ("n", None)], None),
    ("flushall", ["FLUSHALL"], [("k", None), ("k2", None), ("n", None)], None),
    ("multi_set", None, [("k", b"tx"), ("n", b"11")], None),
]


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("name,cmd,after,later", OWN_WRITES,
                         ids=[w[0] if isinstance(w, tuple) else None for w in OWN_WRITES])
def test_own_write_seen_at_once(start_daemon, upstreams, serializer, name, cmd, after, later):
    """A write through cachetoryd drops what the near cache holds before it answers: a read right after
    its reply, on the same connection or another one, gives the new state (no waiting)."""
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    a, b = d.conn(), d.conn()

    def setup():
        assert a.cmd("MSET", "k", "old", "k2", "two", "n", "10") == "OK"
        for key, val in (("k", b"old"), ("k2", b"two"), ("n", b"10")):
            prime(d, [a, b], key, val)

    # 1. the reads pipelined right behind the write, on its connection
    setup()
    writes = [["MULTI"], ["SET", "k", "tx"], ["INCR", "n"], ["EXEC"]] if cmd is None else [cmd]
    replies = a.pipeline(writes + [["GET", key] for key, _ in after])
    got = replies[len(writes):]
    assert got == [want for _, want in after], \
        "%s: GETs pipelined behind the write gave %r, expected %r" % (name, got, [want for _, want in after])
    # 2. the reads sent once the write answered, on the same and on another connection
    setup()
    before = counters(d, "own_writes", "flushes_client")
    t_write = time.monotonic()
    if cmd is None:                                         # a write inside MULTI / EXEC
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "k", "tx") == "QUEUED"
        assert a.cmd("INCR", "n") == "QUEUED"
        r = a.cmd("EXEC")
        assert r == ["OK", 11], r
    else:
        r = a.cmd(*cmd)
        assert not isinstance(r, Err), "%r: %r" % (cmd, r)
    seen = [(key, a.cmd("GET", key), b.cmd("GET", key)) for key, _ in after]
    for (key, want), (_, got_a, got_b) in zip(after, seen):
        assert got_a == want, "%s: GET %s on the writing connection right after the write: %r, expected %r" % (
            name, key, got_a, want)
        assert got_b == want, "%s: GET %s on another connection right after the write: %r, expected %r" % (
            name, key, got_b, want)
    now = counters(d, "own_writes", "flushes_client")
    if name.startswith("flush"):
        assert now["flushes_client"] > before["flushes_client"], now
    else:
        assert now["own_writes"] > before["own_writes"], "%s did not count as an own write: %r" % (name, now)
    # the key is kept again afterwards (what was read after the write is what later hits return)
    for key, want in after:
        if want is not None:
            for c in (a, b):
                assert c.cmd("GET", key) == want
    if later is not None:
        delay, states = later
        time.sleep(max(0.0, t_write + delay - time.monotonic()))
        for key, want in states:
            got = (a.cmd("GET", key), b.cmd("GET", key))
            assert got == (want, want), "%s: GET %s %.2fs after the write: %r, expected %r" % (
                name, key, delay, got, want)
    # what the upstream holds agrees (read straight from redis-server)
    raw = up.client()
    for key, want in after if later is None else later[1]:
        got = raw.get(key)
        assert (got is None) == (want is None), "%s: upstream holds %r for %s, expected %r" % (name, got, key, want)


def test_forwarded_write_with_known_keys_is_own_write(start_daemon, upstreams):
    """A forwarded command (passthrough) whose keys are known drops them like any own write."""
    up = upstreams()
    d = near_proxy(start_daemon, up, "null://", passthrough="yes")
    a, b = d.conn(), d.conn()
    assert a.cmd("SET", "k", "old") == "OK"
    prime(d, [a, b], "k", b"old")
    payload = _dump_of(up, b"restored")
    w0 = near(d, "own_writes")
    assert a.cmd("RESTORE", "k", "0", payload, "REPLACE") == "OK"
    assert near(d, "own_writes") > w0
    assert a.cmd("GET", "k") == b"restored" and b.cmd("GET", "k") == b"restored"


def _dump_of(up, value):
    """DUMP payload of a string value, made on the upstream under a scratch key."""
    r = up.client()
    r.set("__dump_scratch__", value)
    try:
        return r.dump("__dump_scratch__")
    finally:
        r.delete("__dump_scratch__")


# ---- MGET ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_mget_serves_hits_and_fetches_only_the_missing_keys(start_daemon, upstreams, serializer):
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    assert c.cmd("MSET", "a", "va", "b", "vb") == "OK"
    prime(d, [c], "a", b"va")
    prime(d, [c], "b", b"vb")
    direct = up.conn()
    assert direct.cmd("MSET", "c", enc(serializer, "vc"), "d", enc(serializer, "vd")) == "OK"   # never read
    m = start_monitor(up)
    try:
        mg0, g0, h0 = up_calls(up, "mget"), up_calls(up, "get"), near(d, "hits")
        r = c.cmd("MGET", "c", "a", "e", "b", "d")
        assert r == [b"vc", b"va", None, b"vb", b"vd"], "MGET mixing hits and misses: %r" % (r,)
        assert up_calls(up, "mget") == mg0 + 1, "not one upstream MGET"
        assert up_calls(up, "get") == g0
        assert near(d, "hits") == h0 + 2, "the two keys held were not served from the near cache"
        entries = read_monitor(m, lambda es: any(e[2][:1] == ["MGET"] for e in es), 3.0 * SCALE)
        mgets = [e[2] for e in entries if e[2][:1] == ["MGET"]]
        assert mgets == [["MGET", "c", "e", "d"]], "upstream MGET(s) %r (only the missing keys, in order)" % (mgets,)
        pttls = sorted(e[2][1] for e in entries if e[2][:1] == ["PTTL"])
        assert pttls == ["c", "d", "e"], "PTTLs sent with the MGET: %r" % (pttls,)
        # again: c and d are held now, e is missing (nil is never kept)
        h1 = near(d, "hits")
        assert c.cmd("MGET", "c", "a", "e", "b", "d") == [b"vc", b"va", None, b"vb", b"vd"]
        assert near(d, "hits") == h1 + 4
        entries = read_monitor(m, lambda es: any(e[2][:1] == ["MGET"] for e in es), 3.0 * SCALE)
        assert [e[2] for e in entries if e[2][:1] == ["MGET"]] == [["MGET", "e"]]
        # all held: no upstream MGET at all
        mg1 = up_calls(up, "mget")
        assert c.cmd("MGET", "b", "a", "c", "a") == [b"vb", b"va", b"vc", b"va"]
        assert up_calls(up, "mget") == mg1
    finally:
        m.close()


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_mget_of_held_empty_string(start_daemon, upstreams, serializer):
    """An empty string held in the near cache is an empty string in an MGET reply too, not a nil."""
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    assert c.cmd("SET", "e", "") == "OK"
    assert c.cmd("MGET", "e", "nope") == [b"", None]        # not held yet: from the upstream
    prime(d, [c], "e", b"")
    assert c.cmd("GET", "e") == b""
    r1 = c.cmd("MGET", "e")
    r2 = c.cmd("MGET", "e", "nope")
    assert (r1, r2) == ([b""], [b"", None]), \
        "MGET of an empty string held in the near cache: %r and %r, expected [b''] and [b'', None]" % (r1, r2)


# ---- databases, TTLs -----------------------------------------------------------------------------------

def test_invalidation_drops_the_key_in_every_database(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://")
    c0, c1 = d.conn(), d.conn()
    assert c1.cmd("SELECT", "1") == "OK"
    assert c0.cmd("SET", "k", "a0") == "OK"
    assert c1.cmd("SET", "k", "a1") == "OK"
    prime(d, [c0], "k", b"a0")
    prime(d, [c1], "k", b"a1")
    assert near(d, "entries") == 2
    g0, inv0 = up_calls(up, "get"), near(d, "invalidated")
    with up.conn(db=1) as direct:
        assert direct.cmd("SET", "k", enc("zstd://", "b1")) == "OK"
    ok = wait_for(lambda: near(d, "invalidated") >= inv0 + 2, 1.0 * SCALE, 0.005)
    assert ok, "a direct write in db 1 dropped %d entries (expected the key in db 0 and db 1)" % (
        near(d, "invalidated") - inv0)
    assert near(d, "entries") == 0
    assert c0.cmd("GET", "k") == b"a0"
    assert c1.cmd("GET", "k") == b"b1"
    assert up_calls(up, "get") == g0 + 2, "both databases' reads must go upstream after the invalidation"
    assert c0.cmd("GET", "k") == b"a0" and c1.cmd("GET", "k") == b"b1"
    assert up_calls(up, "get") == g0 + 2


@pytest.mark.timing
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_entry_does_not_outlive_the_keys_ttl(start_daemon, upstreams, serializer):
    """Redis's active expiry off (DEBUG SET-ACTIVE-EXPIRE 0): no invalidation comes when the key's TTL runs
    out, so only the TTL learnt with the read (PTTL) ends the entry."""
    up = upstreams(extra=["--enable-debug-command", "local"])
    with up.conn() as u:
        assert u.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0") == "OK"
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    with up.conn() as direct:
        t0 = time.monotonic()
        assert direct.cmd("SET", "k", enc(serializer, "short"), "PX", "300") == "OK"
    assert c.cmd("SET", "long", "stays") == "OK"
    prime(d, [c], "k", b"short")
    prime(d, [c], "long", b"stays")
    time.sleep(max(0.0, t0 + 0.4 - time.monotonic()))
    e0 = near(d, "expired")
    assert c.cmd("GET", "k") is None, "the near cache served a key past its TTL upstream"
    assert near(d, "expired") + 0 >= e0          # counted lazily or by the sweep
    assert near(d, "expired") >= 1, "no entry counted as expired"
    assert c.cmd("GET", "long") == b"stays"
    h0 = near(d, "hits")
    assert c.cmd("GET", "long") == b"stays"
    assert near(d, "hits") == h0 + 1


@pytest.mark.timing
def test_near_cache_ttl_bounds_an_entry(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", near_cache_ttl="200")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"                   # no TTL upstream
    g0 = up_calls(up, "get")
    t0 = time.monotonic()
    prime(d, [c], "k", b"v", reads=3)
    assert up_calls(up, "get") == g0 + 1
    assert time.monotonic() - t0 < 0.15, "priming took too long to test a 200 ms bound"
    time.sleep(max(0.0, t0 + 0.26 - time.monotonic()))
    assert c.cmd("GET", "k") == b"v"
    assert up_calls(up, "get") == g0 + 2, "an entry outlived near-cache-ttl (200 ms)"
    assert near(d, "expired") >= 1
    h0 = near(d, "hits")
    assert c.cmd("GET", "k") == b"v"                        # kept again
    assert near(d, "hits") == h0 + 1


# ---- limits --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_max_value_size(start_daemon, upstreams, serializer):
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer, near_cache_max_value_size="1kb")
    c = d.conn()
    fits, over = b"f" * 1024, b"ab" * 600                  # decoded sizes (zstd makes both tiny upstream)
    assert c.cmd("MSET", "fits", fits, "over", over) == "OK"
    prime(d, [c], "fits", fits)
    g0, t0 = up_calls(up, "get"), near(d, "too_large")
    for _ in range(4):
        assert c.cmd("GET", "over") == over
    assert up_calls(up, "get") == g0 + 4, "a value over near-cache-max-value-size was served from the near cache"
    assert near(d, "too_large") >= t0 + 4
    assert near(d, "entries") == 1
    mg0 = up_calls(up, "mget")
    assert c.cmd("MGET", "over", "fits") == [over, fits]
    assert up_calls(up, "mget") == mg0 + 1


def test_size_bound_evicts_least_recently_used(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", near_cache_size="4kb")
    c = d.conn()
    vals = {"key:%03d" % i: (b"%03d-" % i) * 25 for i in range(200)}
    assert c.cmd("MSET", *[x for kv in vals.items() for x in kv]) == "OK"
    for k, v in vals.items():
        assert c.cmd("GET", k) == v
    i = info(d)
    assert int(i["near_cache_max_bytes"]) == 4096
    assert int(i["near_cache_bytes"]) <= 4096, i["near_cache_bytes"]
    assert int(i["near_cache_evictions"]) > 0
    held = int(i["near_cache_entries"])
    assert 0 < held < 200
    # the most recently read keys are the ones held
    g0, h0 = up_calls(up, "get"), near(d, "hits")
    recent = list(vals)[-min(held, 5):]
    for k in recent:
        assert c.cmd("GET", k) == vals[k]
    assert near(d, "hits") == h0 + len(recent) and up_calls(up, "get") == g0
    assert c.cmd("GET", "key:000") == vals["key:000"]      # long evicted
    assert up_calls(up, "get") == g0 + 1
    for k, v in vals.items():                               # and everything is still right
        assert c.cmd("GET", k) == v
    assert near(d, "bytes") <= 4096


# ---- prefixes (BCAST) ------------------------------------------------------------------------------------

def test_prefixes_use_bcast_and_keep_only_those_keys(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://", near_cache_prefixes="user: sess:")
    i = info(d)
    assert i["near_cache_mode"] == "bcast" and i["upstream_tracking_mode"] == "bcast"
    c = d.conn()
    assert c.cmd("MSET", "user:1", "u1", "sess:9", "s9", "other:1", "o1") == "OK"
    prime(d, [c], "user:1", b"u1")
    prime(d, [c], "sess:9", b"s9")
    g0, h0 = up_calls(up, "get"), near(d, "hits")
    for _ in range(3):
        assert c.cmd("GET", "other:1") == b"o1"
    assert up_calls(up, "get") == g0 + 3 and near(d, "hits") == h0, "a key outside the prefixes was kept"
    assert near(d, "entries") == 2
    mg0 = up_calls(up, "mget")
    assert c.cmd("MGET", "other:1", "user:1", "sess:9") == [b"o1", b"u1", b"s9"]
    assert near(d, "hits") == h0 + 2 and up_calls(up, "mget") == mg0 + 1
    # broadcast: a change under a prefix is told even for a key this daemon never read
    direct = up.conn()
    n0 = near(d, "invalidations")
    assert direct.cmd("SET", "user:never-read", enc("zstd://", "x")) == "OK"
    ok = wait_for(lambda: near(d, "invalidations") > n0, 1.0 * SCALE, 0.005)
    assert ok, "no invalidation for a direct write under a prefix (BCAST)"
    assert direct.cmd("SET", "user:1", enc("zstd://", "u1-new")) == "OK"
    got, dt = poll(lambda: c.cmd("GET", "user:1") == b"u1-new", 0.1 * SCALE, 0.001)
    assert got, "a direct write to a prefixed key was not seen within 100 ms: %r" % (c.cmd("GET", "user:1"),)


# ---- transactions, misses, types -----------------------------------------------------------------------

@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_multi_exec_reads_are_not_served_from_the_near_cache(start_daemon, upstreams, serializer):
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    a, b = d.conn(), d.conn()
    assert a.cmd("SET", "k", "v1") == "OK"
    prime(d, [a], "k", b"v1")
    g0 = up_calls(up, "get")
    assert a.cmd("MULTI") == "OK" and a.cmd("GET", "k") == "QUEUED"
    assert a.cmd("EXEC") == [b"v1"]
    assert up_calls(up, "get") == g0 + 1, "a GET inside EXEC was served from the near cache"
    # a direct write, then at once a transaction: it reads what Redis holds
    with up.conn() as direct:
        assert direct.cmd("SET", "k", enc(serializer, "v2")) == "OK"
    assert a.cmd("MULTI") == "OK" and a.cmd("GET", "k") == "QUEUED"
    assert a.cmd("EXEC") == [b"v2"]
    prime(d, [a], "k", b"v2")
    assert a.cmd("MULTI") == "OK"
    for cmd in (["GET", "k"], ["SET", "k", "v3"], ["GET", "k"], ["MGET", "k", "zz"]):
        assert a.cmd(*cmd) == "QUEUED"
    assert a.cmd("EXEC") == [b"v2", "OK", b"v3", [b"v3", None]]
    assert b.cmd("GET", "k") == b"v3" and a.cmd("GET", "k") == b"v3"


def test_missing_keys_and_other_types_are_not_kept(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "null://")
    c = d.conn()
    with up.conn() as direct:
        assert direct.cmd("RPUSH", "list", "x") == 1
    g0 = up_calls(up, "get")
    for _ in range(3):
        assert c.cmd("GET", "missing") is None
        r = c.cmd("GET", "list")
        assert isinstance(r, Err) and r.startswith("WRONGTYPE"), r
    assert up_calls(up, "get") == g0 + 6
    assert near(d, "entries") == 0 and near(d, "hits") == 0
    # a key held, then changed to another type directly: no stale string served
    assert c.cmd("SET", "k", "v") == "OK"
    prime(d, [c], "k", b"v")
    with up.conn() as direct:
        assert direct.cmd("DEL", "k") == 1 and direct.cmd("RPUSH", "k", "x") == 1
    ok = wait_for(lambda: isinstance(c.cmd("GET", "k"), Err), 0.1 * SCALE, 0.002)
    assert ok, "GET of a key changed to a list directly: %r" % (c.cmd("GET", "k"),)


def test_reads_that_change_the_key_go_upstream(start_daemon, upstreams):
    """GETEX with an expiry and GETDEL are writes: always sent to the upstream, never answered from the near
    cache. (Reads computed from the whole value — GETRANGE, STRLEN, GETBIT, plain GETEX — are read
    through it like GET; they must be as fresh.)"""
    up = upstreams()
    d = near_proxy(start_daemon, up, "null://")
    c = d.conn()
    assert c.cmd("SET", "k", "hello") == "OK"
    prime(d, [c], "k", b"hello")
    assert c.cmd("GETRANGE", "k", "0", "1") == b"he"
    assert c.cmd("STRLEN", "k") == 5
    with up.conn() as direct:
        assert direct.cmd("SET", "k", "HELLO!") == "OK"
    ok = wait_for(lambda: c.cmd("GETRANGE", "k", "0", "1") == b"HE", 0.1 * SCALE, 0.002)
    assert ok, "GETRANGE after a direct write: %r" % (c.cmd("GETRANGE", "k", "0", "1"),)
    assert c.cmd("STRLEN", "k") == 6 and c.cmd("GET", "k") == b"HELLO!"
    prime(d, [c], "k", b"HELLO!")
    h0 = near(d, "hits")
    assert c.cmd("GETEX", "k", "PX", "100000") == b"HELLO!"
    assert up_calls(up, "getex") == 1, "GETEX PX was not sent upstream"
    assert 0 < up.client().pttl("k") <= 100000
    assert c.cmd("GETDEL", "k") == b"HELLO!"
    assert up_calls(up, "getdel") == 1
    assert near(d, "hits") == h0, "GETEX PX / GETDEL answered from the near cache"
    assert c.cmd("GET", "k") is None and c.cmd("STRLEN", "k") == 0


@pytest.mark.parametrize("how", ["FLUSHALL", "FLUSHDB"])
def test_direct_flush_empties_the_near_cache(start_daemon, upstreams, how):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://")
    c = d.conn()
    for i in range(10):
        assert c.cmd("SET", "k%d" % i, "v%d" % i) == "OK"
        prime(d, [c], "k%d" % i, b"v%d" % i)
    assert near(d, "entries") == 10
    f0 = near(d, "flushes_upstream")
    with up.conn() as direct:
        assert direct.cmd(how) == "OK"
    ok = wait_for(lambda: near(d, "flushes_upstream") > f0, 1.0 * SCALE, 0.005)
    assert ok, "a direct %s did not empty the near cache (flushes_upstream %d)" % (how, near(d, "flushes_upstream"))
    assert near(d, "entries") == 0
    assert [c.cmd("GET", "k%d" % i) for i in range(10)] == [None] * 10


# ---- INFO, metrics, options ------------------------------------------------------------------------------

NEAR_FIELDS = ["near_cache_enabled", "near_cache_state", "near_cache_off_reason", "near_cache_mode",
               "near_cache_entries", "near_cache_bytes", "near_cache_max_bytes", "near_cache_hits",
               "near_cache_misses", "near_cache_stored", "near_cache_invalidations", "near_cache_invalidated",
               "near_cache_own_writes", "near_cache_races", "near_cache_too_large", "near_cache_evictions",
               "near_cache_expired", "near_cache_tracking_lost", "near_cache_flushes_upstream",
               "near_cache_flushes_tracking", "near_cache_flushes_client", "near_cache_flushes_write",
               "near_cache_flushes_config"]
TRACKING_FIELDS = ["upstream_tracking", "upstream_tracking_mode", "upstream_tracking_client_id",
                   "upstream_tracking_connections", "upstream_tracking_messages", "upstream_tracking_keys",
                   "upstream_tracking_flushes", "upstream_tracking_losses", "upstream_tracking_last_error"]


def test_info_fields_and_metrics(start_daemon, upstreams):
    up = upstreams()
    mport = conftest.free_port()
    d = near_proxy(start_daemon, up, "zstd://", near_cache_size="1mb", metrics_port=str(mport))
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    prime(d, [c], "k", b"v", reads=3)
    with up.conn() as direct:
        assert direct.cmd("SET", "k", enc("zstd://", "w")) == "OK"
    assert wait_for(lambda: near(d, "invalidations") >= 1, 1.0 * SCALE, 0.005)
    section = parse_info(c.cmd("INFO", "near_cache"))
    missing = [f for f in NEAR_FIELDS if f not in section]
    assert not missing, "INFO near_cache lacks %r" % missing
    missing = [f for f in NEAR_FIELDS + TRACKING_FIELDS if f not in d.info()]
    assert not missing, "INFO lacks %r" % missing
    i = info(d)
    assert i["near_cache_enabled"] == "1" and i["near_cache_state"] == "on" and i["near_cache_off_reason"] == ""
    assert i["near_cache_mode"] == "default" and i["upstream_tracking"] == "on"
    assert i["upstream_tracking_mode"] == "default"
    assert int(i["near_cache_max_bytes"]) == 1 << 20
    assert int(i["near_cache_hits"]) >= 2 and int(i["near_cache_misses"]) >= 1
    assert int(i["near_cache_stored"]) >= 1 and int(i["near_cache_invalidated"]) >= 1
    assert int(i["upstream_tracking_messages"]) >= 1 and int(i["upstream_tracking_keys"]) >= 1
    # the tracking client id is the invalidation connection's, subscribed on the upstream
    tid = i["upstream_tracking_client_id"]
    subs = [f for f in up.clients_from() if f.get("id") == tid]
    assert subs and subs[0].get("sub") == "1", "client %s on the upstream: %r" % (tid, subs)
    redirected = [f for f in up.clients_from() if f.get("redir") == tid]
    assert len(redirected) == int(i["upstream_tracking_connections"]) >= 1
    for f in NEAR_FIELDS[4:]:
        if f != "near_cache_off_reason":
            int(i[f])
    head, body = http_get(mport)
    assert head.startswith("HTTP/1.1 200")
    m = parse_metrics(body)
    assert m['cachetoryd_near_cache_on{cache="default"}'] == 1
    assert m['cachetoryd_near_cache_entries{cache="default"}'] == int(i["near_cache_entries"])
    assert m['cachetoryd_near_cache_bytes{cache="default"}'] == int(i["near_cache_bytes"])
    assert m['cachetoryd_near_cache_hits_total{cache="default"}'] >= 2
    assert m['cachetoryd_near_cache_invalidations_total{cache="default"}'] >= 1
    assert 'cachetoryd_near_cache_flushes_total{cache="default",cause="upstream"}' in m


def test_near_cache_off_by_default(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    i = info(d)
    assert i.get("near_cache_enabled") == "0" and "near_cache_entries" not in i
    assert i.get("upstream_tracking") == "off"
    assert c.cmd("SET", "k", "v") == "OK"
    g0 = up_calls(up, "get")
    for _ in range(3):
        assert c.cmd("GET", "k") == b"v"
    assert up_calls(up, "get") == g0 + 3
    assert up_calls(up, "pttl") == 0 and up_calls(up, "subscribe") == 0


MEMORY_REFUSED = "cachetoryd: near-cache: the near cache needs an upstream Redis"
CLUSTER_REFUSED = "cachetoryd: near-cache: the near cache does not work in front of a Redis Cluster"


@pytest.mark.parametrize("backend,message,test_config", [
    ("memory://", MEMORY_REFUSED, False),
    ("memory://", MEMORY_REFUSED, True),
    ("redis+cluster://127.0.0.1:1", CLUSTER_REFUSED, True),     # nothing listens there: refused before
], ids=["memory", "memory-test-config", "cluster-test-config"])
def test_refused_without_a_plain_redis_upstream(backend, message, test_config):
    argv = [str(conftest.BIN), "--backend", backend, "--near-cache", "yes", "--bind", "127.0.0.1",
            "--port", str(conftest.free_port())]
    if test_config:
        argv.append("--test-config")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30 * SCALE, cwd=conftest.short_tmpdir())
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, "exit %r with %s --near-cache yes; stderr %r" % (p.returncode, backend, err)
    assert message in err, err


def test_reload_changes_near_cache_size(start_daemon, upstreams, tmp_path):
    up = upstreams()
    conf = tmp_path / "near.conf"
    base = "[cache]\nbackend = %s\nserializer = zstd://\nnear-cache = yes\n" % up.url()
    conf.write_text(base + "near-cache-size = 1mb\n")
    d = start_daemon(config_file=conf)
    wait_ready(d)
    assert near(d, "max_bytes") == 1 << 20
    c = d.conn()
    vals = {"r%02d" % i: b"x%02d" % i * 30 for i in range(40)}
    assert c.cmd("MSET", *[x for kv in vals.items() for x in kv]) == "OK"
    for k, v in vals.items():
        assert c.cmd("GET", k) == v
    assert near(d, "entries") == 40 and near(d, "bytes") > 2048
    conf.write_text(base + "near-cache-size = 2kb\n")
    os.kill(d.pid, signal.SIGHUP)
    ok = wait_for(lambda: near(d, "max_bytes") == 2048, 5.0 * SCALE)
    assert ok, "near_cache_max_bytes after the reload: %d" % near(d, "max_bytes")
    i = info(d)
    assert int(i["near_cache_bytes"]) <= 2048 and int(i["near_cache_entries"]) < 40
    assert int(i["near_cache_evictions"]) > 0
    for k, v in vals.items():
        assert c.cmd("GET", k) == v
    assert near(d, "bytes") <= 2048
    assert state_is(d, "on")


# ---- forwarded writes whose keys cachetoryd cannot name ------------------------------------------------

UNKNOWN_KEY_WRITES = [
    ("COPY", ["COPY", "src", "dst", "REPLACE"], b"src-value"),
    ("MOVE", ["MOVE", "dst", "1"], None),
    ("EVAL", ["EVAL", "redis.call('SET', KEYS[1], ARGV[1]) return 1", "1", "dst", "from-script"], b"from-script"),
]


@pytest.mark.parametrize("case", UNKNOWN_KEY_WRITES, ids=[w[0] for w in UNKNOWN_KEY_WRITES])
def test_forwarded_write_with_unknown_keys_seen_at_once(start_daemon, upstreams, case):
    """COPY and MOVE (passthrough) and scripts (forwarded with null://) change keys that cachetoryd does not
    name from the command line: a write through cachetoryd all the same. A GET pipelined right behind it,
    or sent on another connection once it answered, must see the change, not what the near cache held."""
    name, cmd, want = case
    up = upstreams()
    d = near_proxy(start_daemon, up, "null://", passthrough="yes", passthrough_scripts="stored-bytes")
    a, b = d.conn(), d.conn()
    other_db = up.conn(db=1)

    def setup():
        assert other_db.cmd("DEL", "dst") in (0, 1)
        assert a.cmd("MSET", "src", "src-value", "dst", "old") == "OK"
        prime(d, [b], "dst", b"old")

    setup()
    r = a.pipeline([cmd, ["GET", "dst"]])
    assert not isinstance(r[0], Err), r
    pipelined = r[1]
    stale, rounds = 0, 0
    deadline = time.monotonic() + 5.0 * SCALE
    while rounds < 100 and time.monotonic() < deadline:
        setup()
        assert not isinstance(a.cmd(*cmd), Err)
        if b.cmd("GET", "dst") != want:
            stale += 1
        rounds += 1
    assert (pipelined, stale) == (want, 0), \
        "%s through cachetoryd, then GET dst: pipelined behind it %r (expected %r); on another connection " \
        "after its reply, the old value in %d of %d rounds" % (name, pipelined, want, stale, rounds)


# ---- lifecycle -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_sigterm_shuts_down_cleanly(start_daemon, upstreams, serializer):
    """SIGTERM with the near cache on (entries held, tracking on): cachetoryd says "bye" and exits 0."""
    up = upstreams()
    d = near_proxy(start_daemon, up, serializer)
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    prime(d, [c], "k", b"v")
    status = d.stop()
    tail = d.log_tail()
    assert status == 0, "exit status %r after SIGTERM with the near cache on (%s)\n%s" % (
        status, "killed by signal %d" % -status if status is not None and status < 0 else "", tail)
    assert "bye" in tail, tail


def test_reload_switching_backend_empties_the_near_cache(start_daemon, upstreams, tmp_path):
    """A reload that points cachetoryd at another Redis: nothing read from the old one is served, and the
    new one's invalidations are followed."""
    old, new = upstreams(), upstreams(password="pw")
    conf = tmp_path / "near.conf"
    conf.write_text("[cache]\nbackend = %s\nserializer = null://\nnear-cache = yes\n" % old.url())
    d = start_daemon(config_file=conf)
    wait_ready(d)
    c = d.conn()
    assert c.cmd("SET", "k", "from-old") == "OK"
    prime(d, [c], "k", b"from-old")
    with new.conn() as n:
        assert n.cmd("SET", "k", "from-new") == "OK"
    f0 = near(d, "flushes_config")
    conf.write_text("[cache]\nbackend = %s\nserializer = null://\nnear-cache = yes\n" % new.url())
    os.kill(d.pid, signal.SIGHUP)
    ok = wait_for(lambda: near(d, "flushes_config") > f0, 5.0 * SCALE, 0.01)
    assert ok, "no near cache flush after the reload switched the backend"
    assert c.cmd("GET", "k") == b"from-new"
    wait_ready(d)
    prime(d, [c], "k", b"from-new")
    with new.conn() as n:
        assert n.cmd("SET", "k", "changed") == "OK"
    got, _ = poll(lambda: c.cmd("GET", "k") == b"changed", 0.1 * SCALE)
    assert got, "after the switch a direct write on the new upstream was not seen within 100 ms"
    with old.conn() as o:
        assert o.cmd("SET", "k", "old-again") == "OK"
    time.sleep(0.05)
    assert c.cmd("GET", "k") == b"changed"
