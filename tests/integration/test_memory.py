"""maxmemory: eviction keeps used_memory near the limit, noeviction answers OOM, volatile policies spare
keys without a TTL, and expiring keys give memory back."""
import pytest

from helpers import Err, parse_info, parse_keyspace_value, wait_until

OOM = Err("OOM command not allowed when used memory > 'maxmemory'.")
MB = 1024 * 1024


def _fill(c, prefix, count, value, *extra, batch=100):
    """SET count keys in pipelined batches; returns the replies."""
    out = []
    for start in range(0, count, batch):
        out += c.pipeline([("SET", "%s:%d" % (prefix, i), value) + extra
                           for i in range(start, min(count, start + batch))])
    return out


def _mem(c):
    return parse_info(c.cmd("INFO", "memory"))


def _stats(c):
    return parse_info(c.cmd("INFO", "stats"))


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_eviction_keeps_memory_bounded(start_daemon, policy):
    d = start_daemon(maxmemory="10mb", maxmemory_policy=policy)
    c = d.conn(timeout=20)
    value = b"v" * 10_000
    replies = _fill(c, "key", 5000, value)         # ~50 MB into a 10 MB cache
    assert replies == ["OK"] * 5000
    mem = _mem(c)
    assert int(mem["maxmemory"]) == 10 * MB
    assert mem["maxmemory_policy"] == policy
    used = int(mem["used_memory"])
    assert 0 < used <= 10 * MB * 1.1, "used_memory %d with maxmemory %d" % (used, 10 * MB)
    # read the counters atomically: every command may evict before it runs
    assert c.cmd("MULTI") == "OK"
    c.cmd("DBSIZE")
    c.cmd("INFO", "stats")
    c.cmd("INFO", "keyspace")
    c.cmd("KEYS", "key:*")
    n, stats, keyspace, present = c.cmd("EXEC")
    evicted = int(parse_info(stats)["evicted_keys"])
    assert evicted > 0
    assert 0 < n < 5000
    assert n + evicted == 5000, "DBSIZE %d + evicted_keys %d != 5000 keys written" % (n, evicted)
    assert parse_keyspace_value(parse_info(keyspace)["db0"])["keys"] == n
    assert len(present) == n
    # the data kept is intact (a key may still be evicted between EXEC and the GET)
    got = [c.cmd("GET", k) for k in present[:50]]
    assert all(g in (value, None) for g in got)
    assert got.count(value) >= 40


def test_lru_keeps_recent_writes(start_daemon):
    d = start_daemon(maxmemory="4mb", maxmemory_policy="allkeys-lru")
    c = d.conn(timeout=20)
    _fill(c, "k", 2000, b"x" * 10_000)
    assert c.cmd("DBSIZE") < 2000
    # LRU is approximate (sampled) in redis too, so compare the oldest and newest 100 keys
    # (redis 7.0 keeps 0-6 of the oldest 100 and ~80 of the newest)
    newest = c.cmd("EXISTS", *["k:%d" % i for i in range(1900, 2000)])
    oldest = c.cmd("EXISTS", *["k:%d" % i for i in range(0, 100)])
    assert newest >= 50, "only %d of the 100 newest keys kept" % newest
    assert oldest <= 25 and oldest * 2 < newest, "%d of the oldest 100 keys kept, %d of the newest" % (
        oldest, newest)


def test_noeviction_answers_oom(start_daemon):
    d = start_daemon(maxmemory="2mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    value = b"n" * 10_000
    written = 0
    reply = None
    for i in range(1000):                  # at most 10 MB
        reply = c.cmd("SET", "key:%d" % i, value)
        if reply != "OK":
            break
        written += 1
    assert reply == OOM, "after %d writes of 10 KB into 2 MB: %r" % (written, reply)
    assert 0 < written < 1000
    assert c.cmd("DBSIZE") == written
    # Writes that need room are refused; reads and deletes are not.
    # (Intentional difference: redis refuses every write, even a tiny one, once used_memory > maxmemory,
    # the last write having pushed it over; cachetoryd refuses the write that would not fit and never
    # goes over. So only writes as big as the refused one are checked here.)
    assert c.cmd("SET", "another", value) == OOM
    assert c.cmd("MSET", "a", value, "b", value) == OOM
    assert c.cmd("APPEND", "key:0", value) == OOM
    assert c.cmd("GET", "key:0") == value
    assert c.cmd("EXISTS", "key:0") == 1
    assert c.cmd("DBSIZE") == written
    half = written // 2
    assert c.cmd("DEL", *["key:%d" % i for i in range(half)]) == half
    assert c.cmd("SET", "another", value) == "OK"
    assert int(_stats(c)["evicted_keys"]) == 0
    assert c.cmd("FLUSHALL") == "OK"
    assert c.cmd("SET", "another", value) == "OK"


def test_oom_inside_multi_aborts(start_daemon):
    d = start_daemon(maxmemory="1mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    value = b"m" * 10_000
    for i in range(1000):
        if c.cmd("SET", "key:%d" % i, value) != "OK":
            break
    # As redis, a write is refused when it is queued only if memory is over the limit then; cachetoryd
    # never goes over (the write that would is refused), so the write is queued and EXEC answers its OOM.
    # (The refusal at queue time, which aborts the transaction, is in test_memory_accounting.py.)
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "x", value) == "QUEUED"
    assert c.cmd("GET", "key:0") == "QUEUED"
    assert c.cmd("EXEC") == [OOM, value]
    assert c.cmd("EXISTS", "x") == 0
    assert c.cmd("GET", "key:0") == value


def test_volatile_lru_spares_persistent_keys(start_daemon):
    d = start_daemon(maxmemory="5mb", maxmemory_policy="volatile-lru")
    c = d.conn(timeout=20)
    assert _fill(c, "persistent", 100, b"p" * 1000) == ["OK"] * 100
    assert _fill(c, "volatile", 2000, b"v" * 10_000, "EX", 1000) == ["OK"] * 2000
    assert int(_stats(c)["evicted_keys"]) > 0
    assert c.cmd("EXISTS", *["persistent:%d" % i for i in range(100)]) == 100
    survivors = c.cmd("KEYS", "volatile:*")
    assert 0 < len(survivors) < 2000
    ttls = [c.cmd("TTL", k) for k in survivors[:20]]
    # -2: evicted since KEYS (every command may evict); the others keep their TTL
    assert all(t == -2 or 990 <= t <= 1000 for t in ttls), ttls
    assert sum(1 for t in ttls if t > 0) >= 10, ttls
    assert int(_mem(c)["used_memory"]) <= 5 * MB * 1.1


def test_volatile_policy_without_volatile_keys_answers_oom(start_daemon):
    d = start_daemon(maxmemory="2mb", maxmemory_policy="volatile-lru")
    c = d.conn(timeout=20)
    reply = None
    for i in range(1000):
        reply = c.cmd("SET", "key:%d" % i, b"q" * 10_000)
        if reply != "OK":
            break
    assert reply == OOM
    assert int(_stats(c)["evicted_keys"]) == 0


def test_volatile_ttl_evicts_shortest_ttl_first(start_daemon):
    d = start_daemon(maxmemory="3mb", maxmemory_policy="volatile-ttl")
    c = d.conn(timeout=20)
    assert _fill(c, "long", 50, b"l" * 10_000, "EX", 100000) == ["OK"] * 50
    assert _fill(c, "short", 500, b"s" * 10_000, "EX", 1000) == ["OK"] * 500
    assert int(_stats(c)["evicted_keys"]) > 0
    # redis's volatile-ttl is approximate (sampled), so allow a few long-TTL victims
    assert c.cmd("EXISTS", *["long:%d" % i for i in range(50)]) >= 45


def test_expired_keys_free_memory(start_daemon):
    """With noeviction, keys that expire (and are never read again) make room for new writes."""
    d = start_daemon(maxmemory="2mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    reply = None
    written = 0
    for i in range(1000):
        reply = c.cmd("SET", "tmp:%d" % i, b"t" * 10_000, "PX", 500)
        if reply != "OK":
            break
        written += 1
    assert reply == OOM
    assert written > 20
    # after the TTL, background expiry reclaims the keys (never read again) ...
    assert wait_until(lambda: c.cmd("DBSIZE") == 0, timeout=3, interval=0.05), \
        "DBSIZE still %d 2.5 s after every key expired" % c.cmd("DBSIZE")
    assert int(_stats(c)["expired_keys"]) == written
    assert int(_stats(c)["evicted_keys"]) == 0
    # ... and as much can be written again
    again = [c.cmd("SET", "new:%d" % i, b"t" * 10_000) for i in range(written // 2)]
    assert again == ["OK"] * (written // 2)
