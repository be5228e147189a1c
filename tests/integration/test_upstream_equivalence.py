"""Upstream mode, equivalence: cachetoryd in front of a real redis-server (redis://, null:// and zstd://)
answers the string and keyspace commands exactly as a second, direct redis-server does (reply by reply; TTLs
approximately; KEYS / SCAN as sets), and afterwards the upstream holds the same keys as the reference, with
the reference's values encoded by the chain."""
import random
import time

import pytest

from upstream_support import decode, proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

CHAINS = ["null://", "zstd://"]


def _same(cmd, a, b):
    name = cmd[0].upper()
    if isinstance(a, list) and isinstance(b, list):
        if name == "KEYS":
            return sorted(a) == sorted(b)
        return a == b
    if isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0:
        if name == "PTTL":
            return abs(a - b) <= 150
        if name in ("TTL", "EXPIRETIME"):
            return abs(a - b) <= 1
    return a == b and type(a) is type(b)


def _script(far):
    """A fixed sequence covering every command of the spec, with options and error cases."""
    return [
        ["FLUSHDB"],
        # SET and its options
        ["SET", "s1", "hello"], ["GET", "s1"],
        ["SET", "s1", "world", "NX"], ["SET", "s2", "two", "NX"], ["SET", "s3", "x", "XX"],
        ["SET", "s2", "TWO", "XX"], ["GET", "s2"], ["GET", "s3"],
        ["SET", "s1", "again", "GET"], ["SET", "nokey", "v", "GET"], ["GET", "nokey"],
        ["SET", "t1", "ttl", "EX", "100"], ["TTL", "t1"], ["PTTL", "t1"],
        ["SET", "t2", "pttl", "PX", "50000"], ["PTTL", "t2"],
        ["SET", "t1", "kept", "KEEPTTL"], ["TTL", "t1"], ["GET", "t1"],
        ["SET", "t1", "dropped"], ["TTL", "t1"],
        ["SET", "t3", "v", "EX", "100", "NX"], ["SET", "t3", "w", "EX", "200", "XX", "GET"], ["TTL", "t3"],
        ["SET", "t4", "v", "PXAT", str(far)], ["PTTL", "t4"], ["SET", "t5", "v", "EXAT", str(far // 1000)],
        ["TTL", "t5"],
        ["SET", "bad", "v", "EX", "0"], ["SET", "bad", "v", "EX", "abc"], ["SET", "bad", "v", "NX", "XX"],
        ["SET", "bad", "v", "KEEPTTL", "EX", "5"], ["SET", "bad"],
        ["SET", "empty", ""], ["GET", "empty"], ["STRLEN", "empty"],
        ["SET", "bin", b"\x00\xff\x01binary\r\n"], ["GET", "bin"],
        ["SETNX", "s1", "no"], ["SETNX", "snx", "yes"], ["SETEX", "sex", "100", "v"], ["TTL", "sex"],
        ["PSETEX", "psex", "100000", "v"], ["PTTL", "psex"], ["SETEX", "sex", "0", "v"],
        # GET family
        ["MSET", "m1", "a", "m2", "b", "m3", "c"], ["MGET", "m1", "m2", "m3", "missing", "s1"],
        ["MSET", "m1"], ["MSETNX", "m1", "x", "mn", "y"], ["GET", "mn"],
        ["MSETNX", "mn1", "x", "mn2", "y"], ["MGET", "mn1", "mn2"],
        ["GETSET", "m1", "A"], ["GETSET", "gsnew", "v"], ["GET", "m1"],
        ["GETDEL", "m2"], ["GETDEL", "m2"], ["EXISTS", "m2"],
        ["GETEX", "m3"], ["GETEX", "m3", "EX", "100"], ["TTL", "m3"], ["GETEX", "m3", "PERSIST"],
        ["TTL", "m3"], ["GETEX", "m3", "PX", "100000"], ["PTTL", "m3"], ["GETEX", "missing", "EX", "5"],
        ["GETEX", "m3", "EX", "-5"], ["GETEX", "m3", "EXAT", str(far // 1000)], ["TTL", "m3"],
        # read-modify-write
        ["APPEND", "ap", "abc"], ["APPEND", "ap", "def"], ["GET", "ap"], ["STRLEN", "ap"],
        ["APPEND", "t1", "+more"], ["GET", "t1"],
        ["GETRANGE", "ap", "1", "3"], ["GETRANGE", "ap", "-3", "-1"], ["GETRANGE", "ap", "10", "20"],
        ["GETRANGE", "missing", "0", "5"], ["SUBSTR", "ap", "0", "1"],
        ["SETRANGE", "ap", "2", "XYZ"], ["GET", "ap"], ["SETRANGE", "ap", "10", "!"], ["GET", "ap"],
        ["SETRANGE", "sr", "3", "pad"], ["GET", "sr"], ["SETRANGE", "sr0", "0", ""], ["EXISTS", "sr0"],
        ["SETRANGE", "ap", "-1", "x"],
        ["INCR", "n"], ["INCR", "n"], ["DECR", "n"], ["INCRBY", "n", "10"], ["DECRBY", "n", "3"],
        ["INCRBY", "n", "-100"], ["GET", "n"], ["INCR", "s1"], ["INCRBY", "n", "1.5"],
        ["SET", "big", "9223372036854775806"], ["INCR", "big"], ["INCR", "big"], ["GET", "big"],
        ["SET", "n2", "007"], ["INCR", "n2"], ["SET", "n3", " 1"], ["INCR", "n3"],
        ["INCRBYFLOAT", "f", "1.5"], ["INCRBYFLOAT", "f", "0.25"], ["INCRBYFLOAT", "f", "-10"],
        ["INCRBYFLOAT", "f", "1e2"], ["GET", "f"], ["INCRBYFLOAT", "s1", "1"], ["INCRBYFLOAT", "f", "x"],
        ["SET", "tn", "5", "EX", "100"], ["INCR", "tn"], ["TTL", "tn"], ["APPEND", "tn", "0"], ["TTL", "tn"],
        ["GET", "tn"],
        # keys
        ["DEL", "s1", "s2", "missing"], ["UNLINK", "s3", "snx"], ["EXISTS", "m1", "m1", "missing", "m3"],
        ["TYPE", "m1"], ["TYPE", "missing"], ["TOUCH", "m1", "m3", "missing"],
        ["EXPIRE", "m1", "100"], ["TTL", "m1"], ["EXPIRE", "m1", "200", "NX"], ["EXPIRE", "m1", "200", "XX"],
        ["TTL", "m1"], ["EXPIRE", "m1", "50", "GT"], ["EXPIRE", "m1", "300", "GT"], ["TTL", "m1"],
        ["EXPIRE", "m1", "400", "LT"], ["EXPIRE", "m1", "30", "LT"], ["TTL", "m1"],
        ["EXPIRE", "m1", "30", "NX", "XX"], ["EXPIRE", "missing", "10"], ["EXPIRE", "gsnew", "10", "XX"],
        ["EXPIRE", "gsnew", "10", "GT"], ["TTL", "gsnew"], ["EXPIRE", "gsnew", "10", "LT"], ["TTL", "gsnew"],
        ["PEXPIRE", "m3", "123456"], ["PTTL", "m3"], ["PEXPIRE", "m3", "999", "LT"], ["PTTL", "m3"],
        ["EXPIREAT", "mn", str(far // 1000)], ["TTL", "mn"], ["EXPIREAT", "mn", str(far // 1000 + 10), "GT"],
        ["PEXPIREAT", "mn", str(far - 5000), "LT"], ["PTTL", "mn"], ["EXPIRETIME", "mn"],
        ["PEXPIRETIME", "mn"], ["EXPIRETIME", "ap"], ["EXPIRETIME", "missing"],
        ["PERSIST", "mn"], ["PERSIST", "mn"], ["TTL", "mn"], ["PERSIST", "missing"],
        ["EXPIRE", "mn1", "-1"], ["EXISTS", "mn1"], ["EXPIRE", "mn2", "abc"],
        ["KEYS", "*"], ["KEYS", "m*"], ["KEYS", "t?"], ["KEYS", "[ms]n*"], ["KEYS", "nothing*"],
        ["RENAME", "ap", "ap2"], ["GET", "ap2"], ["EXISTS", "ap"], ["RENAME", "missing", "x"],
        ["RENAME", "t3", "t3r"], ["TTL", "t3r"], ["GET", "t3r"],
        ["RENAMENX", "ap2", "m1"], ["RENAMENX", "ap2", "ap3"], ["GET", "ap3"], ["RENAMENX", "missing", "y"],
        ["RENAME", "ap3", "ap3"],
        ["DBSIZE"],
        # odd keys are keys too (never encoded)
        ["SET", "", "empty key"], ["GET", ""], ["SET", b"k\x00\r\n y", b"v\x00"], ["GET", b"k\x00\r\n y"],
        ["MGET", "", b"k\x00\r\n y"], ["APPEND", b"k\x00\r\n y", "+"], ["STRLEN", b"k\x00\r\n y"],
        ["KEYS", "k*"], ["DEL", "", b"k\x00\r\n y"],
        # RANDOMKEY on a database with one key, then none
        ["SELECT", "7"], ["RANDOMKEY"], ["SET", "only", "1"], ["RANDOMKEY"], ["FLUSHDB"], ["RANDOMKEY"],
        ["SELECT", "0"],
        # wrong arity / syntax, handled the same way
        ["GET"], ["MGET"], ["MSETNX", "a"], ["INCRBY", "n"], ["EXPIRE", "m1"], ["GETEX", "m1", "BOGUS"],
        ["DEL"],
    ]


def _scan_all(c, *opts):
    keys, cursor, rounds = set(), b"0", 0
    while True:
        r = c.cmd("SCAN", cursor, *opts)
        assert isinstance(r, list) and len(r) == 2, "SCAN replied %r" % (r,)
        cursor, batch = r
        keys.update(batch)
        rounds += 1
        if cursor == b"0":
            return keys
        assert rounds < 1000, "SCAN did not return cursor 0 within 1000 calls"


def _compare(ours, ref, cmds, label):
    history = []
    for i, cmd in enumerate(cmds):
        history.append(cmd)
        a = ref.cmd(*cmd)
        b = ours.cmd(*cmd)
        if not _same(cmd, a, b):
            recent = "\n".join("  %r" % (c,) for c in history[-12:])
            pytest.fail("%s, command #%d %r:\n  redis:      %r\n  cachetoryd: %r\nlast commands:\n%s"
                        % (label, i, cmd, a, b, recent))


def _check_upstream_matches(up, ref, serializer, dbs=(0,)):
    """Every key of the reference is upstream with the same value (decoded), type and a close TTL."""
    for db in dbs:
        u = up.client(db)
        r = ref_client(ref, db)
        ref_keys = sorted(r.keys("*"))
        up_keys = sorted(u.keys("*"))
        assert up_keys == ref_keys, "db %d: keys upstream %r, reference %r" % (db, up_keys, ref_keys)
        for k in ref_keys:
            want = r.get(k)
            got = decode(serializer, u.get(k))
            assert got == want, "db %d key %r: upstream holds %r (decoded), reference %r" % (db, k, got, want)
            tr, tu = r.pttl(k), u.pttl(k)
            assert (tr < 0 and tr == tu) or abs(tr - tu) <= 1500, "key %r: PTTL upstream %d, reference %d" % (k, tu, tr)


def ref_client(ref, db):
    import redis
    return redis.Redis(host=ref.host, port=ref.port, db=db, socket_timeout=10)


@pytest.mark.parametrize("serializer", CHAINS)
def test_script_same_as_redis(start_daemon, reference_redis, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    far = (int(time.time()) + 100000) * 1000
    _compare(ours, ref, _script(far), "fixed script, %s" % serializer)
    _check_upstream_matches(up, reference_redis, serializer)


@pytest.mark.parametrize("serializer", CHAINS)
def test_scan_iterates_everything(start_daemon, reference_redis, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    for c in (ours, ref):
        assert c.cmd("MSET", *[x for i in range(300) for x in ("sc:%d" % i, "v%d" % i)]) == "OK"
        assert c.cmd("MSET", *[x for i in range(40) for x in ("other:%d" % i, "o")]) == "OK"
    for opts in [(), ("COUNT", "7"), ("MATCH", "sc:1*"), ("MATCH", "other:*", "COUNT", "1000"),
                 ("TYPE", "string", "COUNT", "50"), ("TYPE", "hash")]:
        a, b = _scan_all(ref, *opts), _scan_all(ours, *opts)
        assert b == a, "SCAN %r through cachetoryd (%s): %d keys, redis %d; only ours %r, only redis %r" % (
            opts, serializer, len(b), len(a), sorted(b - a)[:5], sorted(a - b)[:5])
    assert ours.cmd("SCAN", "0", "COUNT", "0") == ref.cmd("SCAN", "0", "COUNT", "0")
    assert ours.cmd("SCAN", "abc") == ref.cmd("SCAN", "abc")
    assert ours.cmd("DBSIZE") == ref.cmd("DBSIZE") == 340
    assert ours.cmd("FLUSHDB") == ref.cmd("FLUSHDB") == "OK"
    assert ours.cmd("DBSIZE") == 0
    assert up.client(0).dbsize() == 0, "FLUSHDB through cachetoryd left keys upstream"


# -- seeded random sequences, as test_differential does for the memory backend ------------------------

KEYS = ["k%d" % i for i in range(6)]


def _generators(rng, far):
    def k():
        return rng.choice(KEYS)

    def num():
        return str(rng.choice([0, 1, -1, 5, 100, 12345, -7, 2 ** 62, "x", "1.5", "007", -(2 ** 62)]))

    def val():
        return rng.choice(["", "a", "hello", "10", "-3", "3.25", "abc def", "9223372036854775806", "1e3",
                           "x" * 300])

    def ttl_ms():
        return str(rng.choice([1000, 5000, 100000, 3600000]))

    return [
        lambda: ["SET", k(), val()],
        lambda: ["SET", k(), val(), rng.choice(["NX", "XX", "GET", "KEEPTTL"])],
        lambda: ["SET", k(), val(), "PX", ttl_ms()],
        lambda: ["SET", k(), val(), "EX", "100", rng.choice(["NX", "XX", "GET", "KEEPTTL"])],
        lambda: ["GET", k()],
        lambda: ["GETSET", k(), val()],
        lambda: ["GETDEL", k()],
        lambda: ["GETEX", k()] + rng.choice([[], ["PERSIST"], ["EX", "50"], ["PX", ttl_ms()], ["EX"]]),
        lambda: ["MGET", k(), k(), k()],
        lambda: ["MSET", k(), val(), k(), val()],
        lambda: ["MSETNX", k(), val(), k(), val()],
        lambda: ["APPEND", k(), val()],
        lambda: ["STRLEN", k()],
        lambda: ["GETRANGE", k(), num(), num()],
        lambda: ["SETRANGE", k(), str(rng.randint(0, 20)), val()],
        lambda: ["INCR", k()],
        lambda: ["DECR", k()],
        lambda: ["INCRBY", k(), num()],
        lambda: ["DECRBY", k(), num()],
        lambda: ["INCRBYFLOAT", k(), rng.choice(["1.5", "-2", "0.1", "abc", "10", "1e2"])],
        lambda: ["DEL", k(), k()],
        lambda: ["UNLINK", k()],
        lambda: ["EXISTS", k(), k(), k()],
        lambda: ["TYPE", k()],
        lambda: ["TOUCH", k(), k()],
        lambda: ["EXPIRE", k(), rng.choice(["100", "200", "50", "-1"])] + rng.choice([[], ["NX"], ["XX"], ["NX", "XX"]]),
        lambda: ["PEXPIRE", k(), ttl_ms()] + rng.choice([[], ["NX"], ["XX"]]),
        lambda: ["PEXPIREAT", k(), str(far + rng.choice([0, 1000, 2000]))] + rng.choice([[], ["GT"], ["LT"], ["XX", "GT"]]),
        lambda: ["EXPIREAT", k(), str(far // 1000 + rng.choice([0, 3]))] + rng.choice([["GT"], ["LT"], ["NX"]]),
        lambda: ["TTL", k()],
        lambda: ["PTTL", k()],
        lambda: ["PERSIST", k()],
        lambda: ["RENAME", k(), k()],
        lambda: ["RENAMENX", k(), k()],
        lambda: ["DBSIZE"],
        lambda: ["KEYS", rng.choice(["*", "k[0-2]", "k?", "x*"])],
        lambda: ["SELECT", str(rng.choice([0, 0, 0, 1]))],
        lambda: ["FLUSHDB"] if rng.random() < 0.05 else ["GET", k()],
    ]


@pytest.mark.long_double
@pytest.mark.parametrize("serializer,seed", [("null://", 11), ("zstd://", 11), ("zstd://", 12)])
def test_random_same_as_redis(start_daemon, reference_redis, upstreams, serializer, seed):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    rng = random.Random(seed)
    far = (int(time.time()) + 100000) * 1000
    gens = _generators(rng, far)
    cmds = [rng.choice(gens)() for _ in range(800)]
    _compare(ours, ref, cmds, "seed %d, %s" % (seed, serializer))
    for c in (ours, ref):
        c.cmd("SELECT", "0")
    _check_upstream_matches(up, reference_redis, serializer, dbs=(0, 1))


@pytest.mark.parametrize("serializer", CHAINS)
def test_errors_are_redis_errors(start_daemon, reference_redis, upstreams, serializer):
    """A type error from the upstream comes back as the upstream's own error text."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    up.client(0).hset("h", "f", "v")
    ref_client(reference_redis, 0).hset("h", "f", "v")
    for cmd in [["GET", "h"], ["APPEND", "h", "x"], ["INCR", "h"], ["STRLEN", "h"], ["GETRANGE", "h", "0", "1"],
                ["SETRANGE", "h", "0", "x"], ["GETSET", "h", "v"], ["GETDEL", "h"], ["TYPE", "h"],
                ["MGET", "h", "nokey"], ["SET", "h", "v", "GET"], ["EXISTS", "h"]]:
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        assert b == a, "%r (%s): redis %r, cachetoryd %r" % (cmd, serializer, a, b)
    assert up.client(0).hgetall("h") == {b"f": b"v"}, "the hash upstream changed"
