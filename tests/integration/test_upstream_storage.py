"""Upstream mode, what lands in Redis: the encoded bytes (a zstd frame with zstd://, the value itself with
null://), legacy plain values read back unchanged through a zstd chain, SELECT and the URL's database
reaching the right upstream database, redis+unix://, and DBSIZE / FLUSHDB / FLUSHALL / INFO keyspace
reflecting the upstream."""
import pytest

from helpers import parse_info, parse_keyspace_value
from helpers import Err
from upstream_support import ZSTD_MAGIC, decode, encode_check, proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

VALUES = [b"hello world", b"x" * 5000, b"\x00\xff\x10 binary", "caf\u00e9 \u2603".encode(), b"12345"]


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_upstream_holds_encoded_bytes(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    c = d.conn()
    raw = up.client(0)
    expected = {}
    for i, v in enumerate(VALUES):
        assert c.cmd("SET", "set:%d" % i, v) == "OK"
        expected["set:%d" % i] = v
    assert c.cmd("MSET", "ms:a", b"alpha", "ms:b", b"beta" * 100) == "OK"
    expected.update({"ms:a": b"alpha", "ms:b": b"beta" * 100})
    assert c.cmd("MSETNX", "mn:a", b"one", "mn:b", b"two") == 1
    expected.update({"mn:a": b"one", "mn:b": b"two"})
    assert c.cmd("SETEX", "sx", "100", b"with ttl") == "OK"
    expected["sx"] = b"with ttl"
    assert c.cmd("SET", "sg", b"old") == "OK"
    assert c.cmd("GETSET", "sg", b"new value") == b"old"
    expected["sg"] = b"new value"
    assert c.cmd("SET", "sg2", b"first") == "OK"
    assert c.cmd("SET", "sg2", b"second", "GET") == b"first"
    expected["sg2"] = b"second"
    assert c.cmd("APPEND", "ap", b"abc") == 3
    assert c.cmd("APPEND", "ap", b"defgh") == 8
    expected["ap"] = b"abcdefgh"
    assert c.cmd("SETRANGE", "sr", "2", b"XY") == 4
    expected["sr"] = b"\x00\x00XY"
    assert c.cmd("INCR", "n") == 1
    assert c.cmd("INCRBY", "n", "41") == 42
    expected["n"] = b"42"
    assert c.cmd("INCRBYFLOAT", "f", "2.5") == b"2.5"
    expected["f"] = b"2.5"
    assert c.cmd("SETNX", "snx", b"nx value") == 1
    expected["snx"] = b"nx value"
    assert c.cmd("SET", "pxv", b"px value", "PX", "100000") == "OK"
    expected["pxv"] = b"px value"
    for k, v in expected.items():
        encode_check(serializer, raw.get(k), v, "%s after writes through cachetoryd" % k)
        assert c.cmd("GET", k) == v, "GET %s through cachetoryd" % k
    assert c.cmd("MGET", *expected.keys()) == list(expected.values())
    assert c.cmd("STRLEN", "set:1") == 5000
    assert c.cmd("GETRANGE", "set:0", "0", "4") == b"hello"
    # commands that must not rewrite the stored bytes
    before = raw.get("set:0")
    assert c.cmd("GETEX", "set:0", "EX", "100") == VALUES[0]
    assert c.cmd("RENAME", "set:0", "renamed") == "OK"
    assert raw.get("renamed") == before, "GETEX / RENAME changed the stored bytes"
    assert 0 < raw.ttl("renamed") <= 100
    if serializer == "zstd://":
        # something actually got compressed: 5000 x's are a few bytes as a frame
        assert len(raw.get("set:1")) < 100


def test_legacy_plain_values_read_through_zstd(start_daemon, upstreams):
    """Keys written straight into Redis before cachetoryd (plain values) read back unchanged through a zstd
    chain (mixed mode), next to values cachetoryd encoded; reading does not rewrite them."""
    up = upstreams()
    raw = up.client(0)
    legacy = {
        "legacy:text": b"plain old value written before cachetoryd",
        "legacy:bin": b"\x00\xff raw binary \x00",
        "legacy:html": b"<html><body>cached page</body></html>",
        "legacy:num": b"17",
        "legacy:empty": b"",
        "legacy:short": b"\x28\xb5",      # starts like a zstd magic, but is not a frame
    }
    for k, v in legacy.items():
        raw.set(k, v)
    raw.set("legacy:ttl", b"expiring", ex=100)
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    for k, v in legacy.items():
        assert c.cmd("GET", k) == v, "legacy %s through zstd://: %r" % (k, c.cmd("GET", k))
    assert c.cmd("SET", "new", b"encoded by cachetoryd") == "OK"
    assert raw.get("new")[:4] == ZSTD_MAGIC
    keys = list(legacy) + ["new", "missing"]
    assert c.cmd("MGET", *keys) == list(legacy.values()) + [b"encoded by cachetoryd", None]
    assert c.cmd("GET", "legacy:ttl") == b"expiring"
    assert c.cmd("STRLEN", "legacy:text") == len(legacy["legacy:text"])
    assert c.cmd("GETRANGE", "legacy:html", "7", "10") == b"body"
    assert c.cmd("EXISTS", *legacy.keys()) == len(legacy)
    assert c.cmd("TYPE", "legacy:text") == "string"
    for k, v in legacy.items():
        assert raw.get(k) == v, "reading %s through cachetoryd rewrote it upstream: %r" % (k, raw.get(k))
    # a legacy integer stays usable by the read-modify-write path (as in memory mode, where INCR and
    # APPEND on a value stored raw decode it as it is and store the result encoded)
    assert c.cmd("INCR", "legacy:num") == 18
    assert c.cmd("GET", "legacy:num") == b"18"
    assert decode("zstd://", raw.get("legacy:num")) == b"18"
    assert c.cmd("APPEND", "legacy:text", b" + more") == len(legacy["legacy:text"]) + 7
    assert c.cmd("GET", "legacy:text") == legacy["legacy:text"] + b" + more"
    assert decode("zstd://", raw.get("legacy:text")) == legacy["legacy:text"] + b" + more"


def test_strict_chain_refuses_legacy_values(start_daemon, upstreams):
    """zstd://?strict=yes: a plain value upstream is an error (as in memory mode), encoded values read."""
    up = upstreams()
    up.client(0).set("legacy", b"plain")
    d = proxy(start_daemon, up, "zstd://?strict=yes")
    c = d.conn()
    assert c.cmd("SET", "new", b"value") == "OK"
    assert c.cmd("GET", "new") == b"value"
    r = c.cmd("GET", "legacy")
    assert isinstance(r, Err) and "strict" in r, "GET of a plain value with strict=yes: %r" % (r,)
    r = c.cmd("MGET", "new", "legacy")
    assert isinstance(r, Err) and "strict" in r, "MGET with a plain value, strict=yes: %r" % (r,)
    assert up.client(0).get("legacy") == b"plain"


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_select_reaches_upstream_database(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, upstream_pool_size=2)
    a, b = d.conn(), d.conn()
    assert a.cmd("SELECT", "3") == "OK"
    assert a.cmd("SET", "k", b"in db 3") == "OK"
    assert b.cmd("SET", "k", b"in db 0") == "OK"
    encode_check(serializer, up.client(3).get("k"), b"in db 3", "db 3 upstream")
    encode_check(serializer, up.client(0).get("k"), b"in db 0", "db 0 upstream")
    assert a.cmd("GET", "k") == b"in db 3"
    assert b.cmd("GET", "k") == b"in db 0"
    # interleaved pipelines of both clients over a pool shared by both: nothing crosses databases
    n = 200
    a.send(b"".join(_enc("SET", "a:%d" % i, "A%d" % i) for i in range(n)))
    b.send(b"".join(_enc("SET", "b:%d" % i, "B%d" % i) for i in range(n)))
    ra = [a.read_reply() for _ in range(n)]
    rb = [b.read_reply() for _ in range(n)]
    assert ra == ["OK"] * n and rb == ["OK"] * n, (ra[:3], rb[:3])
    db3 = sorted(up.client(3).keys("*"))
    db0 = sorted(up.client(0).keys("*"))
    assert db3 == sorted([b"k"] + [b"a:%d" % i for i in range(n)]), "db 3 upstream holds %r..." % db3[:5]
    assert db0 == sorted([b"k"] + [b"b:%d" % i for i in range(n)]), "db 0 upstream holds %r..." % db0[:5]
    assert a.cmd("DBSIZE") == n + 1 and b.cmd("DBSIZE") == n + 1
    assert a.cmd("MGET", "a:0", "b:0", "a:199") == [b"A0", None, b"A199"]
    assert b.cmd("MGET", "a:0", "b:0", "b:199") == [None, b"B0", b"B199"]
    # back to 0, and an out-of-range database is refused as redis does
    assert a.cmd("SELECT", "0") == "OK"
    assert a.cmd("GET", "k") == b"in db 0"
    assert str(a.cmd("SELECT", "99999")).startswith("ERR")


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_select_with_every_kind_of_command(start_daemon, upstreams, serializer):
    """One upstream connection shared by clients in databases 0, 3 and 5, each sending plain commands,
    MSET, read-modify-write commands, a MULTI ... EXEC and a passthrough command: every key lands in its
    client's database upstream."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer, upstream_pool_size=1, passthrough="yes")
    dbs = [0, 3, 5]
    conns = {}
    for db in dbs:
        conns[db] = d.conn()
        assert conns[db].cmd("SELECT", str(db)) == "OK"
    for rnd in range(3):
        batch = {}
        for db in dbs:
            tag = "d%d-r%d" % (db, rnd)
            cmds = [["SET", "plain:" + tag, tag], ["MSET", "ms1:" + tag, tag, "ms2:" + tag, tag],
                    ["INCR", "ctr:" + tag], ["APPEND", "app:" + tag, tag],
                    ["MULTI"], ["SET", "tx:" + tag, tag], ["INCR", "txctr:" + tag], ["EXEC"],
                    ["HSET", "hash:" + tag, "f", tag], ["SET", "px:" + tag, tag, "PX", "100000"]]
            conns[db].send(b"".join(_enc(*x) for x in cmds))
            batch[db] = cmds
        for db in dbs:
            tag = "d%d-r%d" % (db, rnd)
            got = [conns[db].read_reply() for _ in batch[db]]
            assert got == ["OK", "OK", 1, len(tag), "OK", "QUEUED", "QUEUED", ["OK", 1], 1, "OK"], \
                "client in db %d, round %d: %r" % (db, rnd, got)
    for db in dbs:
        keys = sorted(k.decode() for k in up.client(db).keys("*"))
        want = sorted("%s:d%d-r%d" % (p, db, rnd) for p in ("plain", "ms1", "ms2", "ctr", "app", "tx", "txctr",
                                                             "hash", "px") for rnd in range(3))
        assert keys == want, "db %d upstream: %d keys, unexpected %r, missing %r" % (
            db, len(keys), sorted(set(keys) - set(want))[:6], sorted(set(want) - set(keys))[:6])
        tag = "d%d-r0" % db
        encode_check(serializer, up.client(db).get("app:" + tag), tag.encode(), "APPEND in db %d" % db)
        encode_check(serializer, up.client(db).get("ctr:" + tag), b"1", "INCR in db %d" % db)
        assert conns[db].cmd("GET", "tx:" + tag) == tag.encode()
        assert conns[db].cmd("DBSIZE") == len(want)


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_large_values_pipelined(start_daemon, upstreams, serializer):
    """Values past codec-thread-min-size (encoded on the thread pool) next to small ones, pipelined: every
    reply in order, the upstream holds each one encoded."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    c = d.conn(timeout=30.0)
    vals = {}
    for i in range(12):
        size = [10, 200 * 1024, 3, 3 * 1024 * 1024, 70000, 0][i % 6]
        vals["big:%d" % i] = (b"%08d|" % i + bytes(range(256)) * (size // 256 + 1))[:size]
    cmds = []
    for k, v in vals.items():
        cmds += [["SET", k, v], ["GET", k], ["STRLEN", k]]
    c.send(b"".join(_enc(*x) for x in cmds))
    replies = [c.read_reply() for _ in cmds]
    for n, (k, v) in enumerate(vals.items()):
        assert replies[3 * n] == "OK", (k, replies[3 * n])
        assert replies[3 * n + 1] == v, "GET %s (%d bytes) in a pipeline: got %r..." % (
            k, len(v), (replies[3 * n + 1] or b"")[:40])
        assert replies[3 * n + 2] == len(v), (k, replies[3 * n + 2])
    raw = up.client(0)
    for k, v in vals.items():
        if v:
            encode_check(serializer, raw.get(k), v, k)
    assert c.cmd("MGET", *vals.keys()) == list(vals.values())


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_url_database(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, db=5)
    c = d.conn()
    assert c.cmd("SET", "k", b"v5") == "OK"
    assert c.cmd("INCR", "n") == 1
    encode_check(serializer, up.client(5).get("k"), b"v5", "key written with redis://.../5")
    assert up.client(0).dbsize() == 0, "redis://.../5 wrote into db 0"
    assert up.client(5).dbsize() == 2
    assert c.cmd("DBSIZE") == 2
    # a client's SELECT n reaches database n upstream, whatever the URL's database
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("SET", "k3", b"v3") == "OK"
    assert c.cmd("INCR", "n3") == 1
    encode_check(serializer, up.client(3).get("k3"), b"v3", "SELECT 3 with redis://.../5")
    assert sorted(up.client(3).keys("*")) == [b"k3", b"n3"]
    assert up.client(8).dbsize() == 0, "SELECT 3 with redis://.../5 reached db 8"
    assert c.cmd("DBSIZE") == 2


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_redis_unix_socket(start_daemon, upstreams, serializer):
    up = upstreams(unix=True)
    assert up.port == 0
    url = up.url(db=2)
    assert url.startswith("redis+unix:///") and url.endswith("?db=2")
    d = proxy(start_daemon, up, serializer, url=url)
    c = d.conn()
    assert c.cmd("SET", "k", b"over a unix socket") == "OK"
    assert c.cmd("MSET", "a", b"1", "b", b"2") == "OK"
    assert c.cmd("GET", "k") == b"over a unix socket"
    assert c.cmd("MGET", "a", "b", "c") == [b"1", b"2", None]
    encode_check(serializer, up.client(2).get("k"), b"over a unix socket", "db 2 over the socket")
    assert up.client(0).dbsize() == 0
    # no ?db= means database 0
    d0 = proxy(start_daemon, up, serializer, url="redis+unix://%s" % up.unixsocket)
    c0 = d0.conn()
    assert c0.cmd("SET", "zero", b"z") == "OK"
    encode_check(serializer, up.client(0).get("zero"), b"z", "db 0 over the socket")


def test_keyspace_commands_reflect_upstream(start_daemon, upstreams):
    up = upstreams()
    r0, r2 = up.client(0), up.client(2)
    r0.mset({"a": "1", "b": "2", "c": "3"})
    r0.set("t", "x", ex=1000)
    r2.mset({"x": "1", "y": "2"})
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    assert c.cmd("DBSIZE") == 4
    assert sorted(c.cmd("KEYS", "*")) == [b"a", b"b", b"c", b"t"]
    ks = parse_info(c.cmd("INFO", "keyspace"))
    assert "db0" in ks and "db2" in ks, "INFO keyspace through cachetoryd: %r" % ks
    k0, k2 = parse_keyspace_value(ks["db0"]), parse_keyspace_value(ks["db2"])
    assert (k0["keys"], k0["expires"]) == (4, 1), ks["db0"]
    assert (k2["keys"], k2["expires"]) == (2, 0), ks["db2"]
    assert c.cmd("SELECT", "2") == "OK"
    assert c.cmd("DBSIZE") == 2
    assert c.cmd("FLUSHDB") == "OK"
    assert r2.dbsize() == 0 and r0.dbsize() == 4, "FLUSHDB in db 2 through cachetoryd"
    assert c.cmd("SET", "again", "v") == "OK"
    assert c.cmd("FLUSHALL") == "OK"
    assert r0.dbsize() == 0 and r2.dbsize() == 0, "FLUSHALL through cachetoryd left keys upstream"
    r0.set("x", "1")
    r2.set("y", "1")
    assert c.cmd("FLUSHALL", "ASYNC") == "OK"
    assert wait_for(lambda: r0.dbsize() == 0 and r2.dbsize() == 0, 3.0), "FLUSHALL ASYNC left keys upstream"
    r2.set("y", "1")
    assert c.cmd("FLUSHDB", "SYNC") == "OK"          # the client is in db 2
    assert r2.dbsize() == 0
    ks = parse_info(c.cmd("INFO", "keyspace"))
    assert not any(k.startswith("db") for k in ks), "INFO keyspace after FLUSHALL: %r" % ks


def _enc(*args):
    from helpers import encode_command
    return encode_command(*args)
