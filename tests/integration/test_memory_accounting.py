"""maxmemory counts what the memory backend stores: the encoded value (after the codec chain), and for an
overwrite only the difference from what it replaces. Evicting to make room never evicts the key being
written (nor loses its TTL). A write that cannot fit even after evicting answers redis's OOM error and
changes nothing; the check before a command runs (redis's denyoom) refuses only when memory is already
over the limit, without counting the incoming raw value (issue 11, items 7 and 8)."""
import os
import random
import signal

from helpers import Err, parse_info, wait_until

OOM = Err("OOM command not allowed when used memory > 'maxmemory'.")
KB = 1024
MB = 1024 * 1024


def _stat(c, field):
    return int(parse_info(c.cmd("INFO", "stats"))[field])


def _used(c):
    return int(parse_info(c.cmd("INFO", "memory"))["used_memory"])


def _fill_random(c, prefix, count, size, seed=11):
    """count keys of size random (incompressible) bytes, pipelined."""
    rnd = random.Random(seed)
    for start in range(0, count, 100):
        replies = c.pipeline([("SET", "%s:%d" % (prefix, i), rnd.randbytes(size))
                              for i in range(start, min(count, start + 100))])
        assert replies == ["OK"] * len(replies)


# ---- item 7: the limit counts stored (encoded) bytes -------------------------------------------------

def test_compressible_value_charged_its_stored_size(start_daemon):
    """zstd, 1 MB, allkeys-lru, 500 random 1 KB keys: 900,000 zero bytes are stored as ~46 bytes and
    evict nothing (361 keys were evicted when the raw size was checked)."""
    d = start_daemon(serializer="zstd://", maxmemory="1mb", maxmemory_policy="allkeys-lru")
    c = d.conn(timeout=20)
    _fill_random(c, "k", 500, KB)
    used = _used(c)
    assert c.cmd("SET", "big", b"\0" * 900_000) == "OK"
    assert _stat(c, "evicted_keys") == 0
    assert c.cmd("DBSIZE") == 501
    assert _used(c) - used < 200
    assert c.cmd("STRLEN", "big") == 900_000
    assert c.cmd("GET", "big") == b"\0" * 900_000


def test_raw_size_over_the_limit_accepted_when_stored_size_fits(start_daemon):
    """2 MB of zeros into a 1 MB limit: stored in a few hundred bytes, so accepted (was OOM), and inside
    MULTI it is queued, not refused."""
    d = start_daemon(serializer="zstd://", maxmemory="1mb", maxmemory_policy="allkeys-lru")
    c = d.conn(timeout=20)
    _fill_random(c, "k", 500, KB)
    assert c.cmd("SET", "big2", b"\0" * (2 * MB)) == "OK"
    assert c.cmd("STRLEN", "big2") == 2 * MB
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "big3", b"\0" * (2 * MB)) == "QUEUED"
    assert c.cmd("APPEND", "big3", b"\0" * (2 * MB)) == "QUEUED"
    assert c.cmd("EXEC") == ["OK", 4 * MB]
    assert _stat(c, "evicted_keys") == 0
    assert c.cmd("DBSIZE") == 502


def test_stored_size_over_the_limit_refused_and_changes_nothing(start_daemon):
    """A value whose stored size exceeds the whole limit is refused without evicting anything."""
    d = start_daemon(serializer="zstd://", maxmemory="1mb", maxmemory_policy="allkeys-lru")
    c = d.conn(timeout=20)
    _fill_random(c, "k", 500, KB)
    noise = random.Random(3).randbytes(2 * MB)
    assert c.cmd("SET", "k:0", noise) == OOM
    assert c.cmd("SET", "new", noise) == OOM
    assert _stat(c, "evicted_keys") == 0
    assert c.cmd("DBSIZE") == 500
    assert c.cmd("STRLEN", "k:0") == KB


# ---- item 8: an overwrite is charged the difference ---------------------------------------------------

def test_append_charged_the_difference(start_daemon):
    """1 MB, one 500 KB key and 400 keys of 1 KB: APPEND big x adds one byte and evicts nothing (354 keys
    were evicted when the whole new value was charged)."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="allkeys-lru")
    c = d.conn(timeout=20)
    assert c.cmd("SET", "big", b"b" * (500 * KB)) == "OK"
    _fill_random(c, "k", 400, KB)
    used = _used(c)
    assert c.cmd("APPEND", "big", "x") == 500 * KB + 1
    assert _used(c) == used + 1
    assert c.cmd("SETRANGE", "big", 10, "yy") == 500 * KB + 1
    assert c.cmd("SET", "n", "1") == "OK"
    assert c.cmd("INCR", "n") == 2
    assert _stat(c, "evicted_keys") == 0
    assert c.cmd("DBSIZE") == 402


def test_noeviction_overwrite_of_the_same_size(start_daemon):
    """noeviction, 1 MB: SET k <600 KB> twice is accepted (the second was refused), and every write path
    that replaces k with as much is too; a write that grows k beyond the limit is refused, k unchanged."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    v1, v2, v3 = b"1" * (600 * KB), b"2" * (600 * KB), b"3" * (600 * KB)
    assert c.cmd("SET", "k", v1) == "OK"
    assert c.cmd("SET", "k", v2) == "OK"
    assert c.cmd("GETSET", "k", v3) == v2
    assert c.cmd("SET", "k", v1, "GET") == v3
    assert c.cmd("SET", "k", v2, "XX", "EX", 100) == "OK"
    assert c.cmd("SET", "k", v3, "KEEPTTL") == "OK"
    assert 0 < c.cmd("TTL", "k") <= 100
    assert c.cmd("SETEX", "k", 100, v1) == "OK"
    assert c.cmd("PSETEX", "k", 100000, v2) == "OK"
    assert c.cmd("SETRANGE", "k", 0, "abc") == 600 * KB
    assert c.cmd("MSET", "k", v3) == "OK"
    # 600 KB more does not fit: refused, nothing changed
    assert c.cmd("APPEND", "k", v1) == OOM
    assert c.cmd("SET", "k", v1 + v1) == OOM
    assert c.cmd("SET", "k", v1 + v1, "GET") == OOM
    assert c.cmd("SET", "other", v1) == OOM
    assert c.cmd("GET", "k") == v3
    assert c.cmd("DBSIZE") == 1


def test_mset_charged_the_sum_of_differences(start_daemon):
    d = start_daemon(maxmemory="1mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    a, b = b"a" * (600 * KB), b"b" * (300 * KB)
    assert c.cmd("MSET", "a", a, "b", b) == "OK"
    assert c.cmd("MSET", "a", b"A" * (600 * KB), "b", b"B" * (300 * KB)) == "OK"   # net 0
    assert c.cmd("MSET", "a", b"x", "c", b"c" * (600 * KB)) == "OK"                # -600 KB, +600 KB
    assert c.cmd("MSET", "b", b"y", "c", b"z", "d", b"d" * (800 * KB)) == "OK"
    assert c.cmd("MSET", "a", b"q", "e", b"e" * (300 * KB)) == OOM                 # net +300 KB
    assert c.cmd("MSETNX", "e", b"e" * (300 * KB), "f", b"1") == OOM
    assert c.cmd("MGET", "a", "b", "c", "d", "e", "f") == [b"x", b"y", b"z", b"d" * (800 * KB), None, None]
    assert c.cmd("MSETNX", "e", b"1", "f", b"2") == 1


def test_volatile_ttl_append_keeps_the_key_and_its_ttl(start_daemon):
    """volatile-ttl, 1 MB: SET a <500 KB> EX 100; SET b <400 KB> EX 1000; APPEND a z. a was evicted (the
    shortest TTL) and re-created without its TTL; now nothing is evicted and a keeps TTL 100."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="volatile-ttl")
    c = d.conn(timeout=20)
    assert c.cmd("SET", "a", b"a" * (500 * KB), "EX", 100) == "OK"
    assert c.cmd("SET", "b", b"b" * (400 * KB), "EX", 1000) == "OK"
    assert c.cmd("APPEND", "a", "z") == 500 * KB + 1
    assert 99 <= c.cmd("TTL", "a") <= 100
    assert 999 <= c.cmd("TTL", "b") <= 1000
    assert _stat(c, "evicted_keys") == 0
    # growing a by 200 KB needs room: b goes (the only other volatile key), a keeps its TTL
    assert c.cmd("APPEND", "a", b"z" * (200 * KB)) == 700 * KB + 1
    assert 99 <= c.cmd("TTL", "a") <= 100
    assert c.cmd("EXISTS", "b") == 0
    assert _stat(c, "evicted_keys") == 1


def test_write_never_evicts_its_own_key(start_daemon):
    """volatile-ttl with a as the only volatile key: growing a would need a evicted, so it is refused and
    a is left as it was (value and TTL)."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="volatile-ttl")
    c = d.conn(timeout=20)
    a = b"a" * (500 * KB)
    assert c.cmd("SET", "a", a, "EX", 100) == "OK"
    assert c.cmd("SET", "p", b"p" * (400 * KB)) == "OK"
    assert c.cmd("APPEND", "a", b"z" * (200 * KB)) == OOM
    assert c.cmd("SET", "a", a + a[:200 * KB], "KEEPTTL") == OOM
    assert c.cmd("GETSET", "a", a + a[:200 * KB]) == OOM
    assert c.cmd("GET", "a") == a
    assert 99 <= c.cmd("TTL", "a") <= 100
    assert c.cmd("EXISTS", "p") == 1
    assert _stat(c, "evicted_keys") == 0


def test_allkeys_random_never_evicts_its_own_key(start_daemon):
    """allkeys-random: the key being written is never the victim, even when it is most of the keys."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="allkeys-random")
    c = d.conn(timeout=20)
    for i in range(20):
        assert c.cmd("SET", "a", b"a" * (500 * KB)) == "OK"
        assert c.cmd("SET", "b", b"b" * (400 * KB)) == "OK"
        assert c.cmd("APPEND", "a", b"z" * (200 * KB)) == 700 * KB
        assert c.cmd("STRLEN", "a") == 700 * KB
        assert c.cmd("EXISTS", "b") == 0
    assert _stat(c, "evicted_keys") == 20


def test_rename_charged_the_difference(start_daemon):
    """RENAME over an existing key frees it; to a longer name it needs a few bytes more."""
    d = start_daemon(maxmemory="1mb", maxmemory_policy="noeviction")
    c = d.conn(timeout=20)
    assert c.cmd("SET", "a", b"a" * (600 * KB)) == "OK"
    assert c.cmd("SET", "b", b"b" * (400 * KB)) == "OK"
    assert c.cmd("RENAME", "a", "b") == "OK"
    assert c.cmd("STRLEN", "b") == 600 * KB
    assert c.cmd("RENAME", "b", "a much longer name") == "OK"
    assert c.cmd("DBSIZE") == 1
    # fill to the last byte: a longer name no longer fits, and RENAME changes nothing
    free = MB - _used(c)
    assert free > 100
    filler = free - 48 - len("f")
    assert c.cmd("SET", "f", b"f" * filler) == "OK"
    assert _used(c) == MB
    assert c.cmd("RENAME", "f", "ff") == OOM
    assert c.cmd("RENAME", "a much longer name", "a") == "OK"      # shorter: frees bytes
    assert c.cmd("RENAME", "f", "ff") == "OK"
    assert c.cmd("MGET", "a", "ff", "f") == [b"a" * (600 * KB), b"f" * filler, None]


def test_denyoom_refused_only_when_over_the_limit(start_daemon, tmp_path):
    """As redis: the check before a write (and before queueing it in MULTI) refuses only when memory is
    over the limit, here after a reload lowered maxmemory under what noeviction keeps."""
    conf = tmp_path / "c.conf"
    conf.write_text("[cache]\nmaxmemory = 1mb\nmaxmemory-policy = noeviction\n")
    d = start_daemon(config_file=conf)
    c = d.conn(timeout=20)
    assert c.cmd("SET", "a", b"a" * (500 * KB)) == "OK"
    assert c.cmd("SET", "b", b"b" * (400 * KB)) == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "x", b"x" * (200 * KB)) == "QUEUED"       # fits the limit now: queued
    assert c.cmd("SET", "y", "1") == "QUEUED"
    assert c.cmd("EXEC") == [OOM, "OK"]                            # ... but refused when it runs
    conf.write_text("[cache]\nmaxmemory = 512kb\nmaxmemory-policy = noeviction\n")
    os.kill(d.pid, signal.SIGHUP)
    assert wait_until(lambda: c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"524288"], 5)
    assert c.cmd("SET", "z", "1") == OOM                           # over the limit: every write refused
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "z", "1") == OOM
    assert c.cmd("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")
    assert c.cmd("GET", "a") == b"a" * (500 * KB)                 # reads and deletes still work
    assert c.cmd("DEL", "b") == 1
    assert c.cmd("SET", "z", "1") == "OK"
    assert c.cmd("MGET", "x", "y", "z") == [None, b"1", b"1"]
