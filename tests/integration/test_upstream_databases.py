"""
Databases and TTLs through a redis:// upstream: every write lands in the database the client selected,
as on a real redis-server, whatever other clients sharing the connection do, whatever the upstream
refuses, and whatever the daemon's clock says.

Each scenario runs the same commands on a real redis-server directly (the reference) and through
cachetoryd in front of another one, and compares the replies and the upstream's keyspace.
"""
import os
import threading
import time

import pytest

from helpers import Conn, Err
from upstream_support import RedisServer, decode, proxy, upstreams  # noqa: F401

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def run(conn, cmds):
    out = []
    for c in cmds:
        r = conn.cmd(*c)
        out.append(str(r) if isinstance(r, Err) else r)
    return out


def keyspace(up, serializer, dbs=range(16)):
    """{db: {key: decoded value}} of the upstream, read directly."""
    out = {}
    with up.conn() as c:
        for db in dbs:
            if isinstance(c.cmd("SELECT", str(db)), Err):
                break                       # the server has fewer databases
            keys = c.cmd("KEYS", "*")
            if keys:
                out[db] = {k: decode(serializer, c.cmd("GET", k)) for k in sorted(keys)
                           if c.cmd("TYPE", k) == "string"}
                out[db].update({k: "<%s>" % c.cmd("TYPE", k) for k in keys if c.cmd("TYPE", k) != "string"})
    return out


def both(upstreams, start_daemon, cmds, serializer="zstd://", extra=(), **opts):
    """Run cmds on a reference redis-server and through cachetoryd; return (ref replies, proxy replies,
    ref keyspace, upstream keyspace)."""
    ref = upstreams(extra=extra)
    up = upstreams(extra=extra)
    d = proxy(start_daemon, up, serializer=serializer, **opts)
    with ref.conn() as rc:
        want = run(rc, cmds)
    got = run(d.conn(), cmds)
    return want, got, keyspace(ref, "null://"), keyspace(up, serializer)


ITEM1 = [("SELECT", "1"), ("SET", "c", "100"), ("SELECT", "0"), ("SET", "c", "5"), ("MULTI",), ("GET", "y"),
         ("SELECT", "1"), ("INCR", "c"), ("EXEC",), ("GET", "c"), ("SELECT", "0"), ("GET", "c")]


@pytest.mark.parametrize("serializer", ["zstd://", "null://"])
@pytest.mark.parametrize("pool", [1, 4])
def test_select_inside_multi_with_read_modify_write(upstreams, start_daemon, serializer, pool):
    want, got, ref_ks, up_ks = both(upstreams, start_daemon, ITEM1, serializer=serializer,
                                    upstream_pool_size=pool)
    assert want[8] == [None, "OK", 101]
    assert got == want
    assert up_ks == ref_ks == {0: {b"c": b"5"}, 1: {b"c": b"101"}}


def test_transaction_reads_keys_in_several_databases(upstreams, start_daemon):
    """Read-modify-writes of one transaction in three databases: each WATCH + MGET in its own."""
    cmds = [("SET", "n", "1"), ("SELECT", "2"), ("SET", "n", "20"), ("SELECT", "3"), ("SET", "n", "300"),
            ("SELECT", "0"), ("MULTI",), ("INCR", "n"), ("SELECT", "2"), ("INCRBY", "n", "2"), ("APPEND", "n", "x"),
            ("SELECT", "3"), ("DECR", "n"), ("SET", "m", "v"), ("APPEND", "m", "w"), ("EXEC",),
            ("GET", "n"), ("SELECT", "2"), ("GET", "n"), ("SELECT", "0"), ("GET", "n")]
    want, got, ref_ks, up_ks = both(upstreams, start_daemon, cmds, upstream_pool_size=1)
    assert got == want
    assert up_ks == ref_ks


def test_aborted_exec_leaves_the_connection_in_its_database(upstreams, start_daemon):
    up = upstreams()
    d = proxy(start_daemon, up, serializer="null://", passthrough="yes", upstream_pool_size=1)
    a, b = d.conn(), d.conn()
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("SET", "a", "1") == "QUEUED"
    assert a.cmd("SELECT", "1") == "QUEUED"
    a.cmd("HSET", "h")                      # wrong arity: Redis refuses it at queue time
    r = a.cmd("EXEC")
    assert r == Err("EXECABORT Transaction discarded because of previous errors."), r
    assert b.cmd("SELECT", "1") == "OK"
    assert b.cmd("SET", "mykey", "v") == "OK"
    assert a.cmd("SET", "other", "w") == "OK"      # a's SELECT never ran: still database 0
    ks = keyspace(up, "null://")
    assert ks == {1: {b"mykey": b"v"}, 0: {b"other": b"w"}}, ks


def test_select_refused_by_the_upstream(upstreams, start_daemon):
    """The upstream has 4 databases, cachetoryd's `databases` is 16: Redis's error, and the next
    commands run where Redis would run them."""
    cmds = [("SELECT", "10"), ("SET", "k", "v"), ("GET", "k"), ("SELECT", "3"), ("SET", "k3", "v3"),
            ("MULTI",), ("SET", "a", "1"), ("SELECT", "10"), ("SET", "b", "2"), ("SELECT", "2"), ("SET", "c", "3"),
            ("EXEC",), ("SET", "d", "4")]
    want, got, ref_ks, up_ks = both(upstreams, start_daemon, cmds, extra=["--databases", "4"])
    assert want[0] == "ERR DB index is out of range"
    assert got == want
    assert up_ks == ref_ks
    assert set(up_ks) == {0, 2, 3}


def test_pipelined_commands_wait_for_a_select(upstreams, start_daemon):
    """SELECT and the commands after it in one write: they run in the database Redis has selected."""
    up = upstreams(extra=["--databases", "4"])
    d = proxy(start_daemon, up, serializer="zstd://", upstream_pool_size=1)
    c = d.conn()
    replies = c.pipeline([("SELECT", "10"), ("SET", "k", "v"), ("SELECT", "2"), ("SET", "k2", "v2"),
                          ("SELECT", "9"), ("GET", "k2")])
    assert [str(x) if isinstance(x, Err) else x for x in replies] == [
        "ERR DB index is out of range", "OK", "OK", "OK", "ERR DB index is out of range", b"v2"]
    assert keyspace(up, "zstd://") == {0: {b"k": b"v"}, 2: {b"k2": b"v2"}}


def test_clients_in_different_databases_share_one_connection(upstreams, start_daemon):
    up = upstreams()
    d = proxy(start_daemon, up, serializer="zstd://", upstream_pool_size=1)
    errors = []

    def client(db):
        try:
            c = d.conn()
            assert c.cmd("SELECT", str(db)) == "OK"
            for i in range(300):
                cmds = [("SET", "k%d" % i, "db%d-%d" % (db, i)), ("INCR", "n"), ("APPEND", "s", "x")]
                assert c.pipeline(cmds)[0] == "OK"
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(db,)) for db in (0, 1, 2, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    ks = keyspace(up, "zstd://")
    assert sorted(ks) == [0, 1, 2, 5]
    for db in (0, 1, 2, 5):
        assert ks[db][b"n"] == b"300" and ks[db][b"s"] == b"x" * 300
        assert all(ks[db][b"k%d" % i] == b"db%d-%d" % (db, i) for i in range(300))


def test_upstream_restarted_with_fewer_databases(upstreams, start_daemon):
    """A database selected before the upstream came back with fewer: the command fails with Redis's
    error, nothing is written anywhere else."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer="zstd://", upstream_pool_size=1, upstream_retry_max=100)
    c = d.conn()
    assert c.cmd("SELECT", "6") == "OK"
    assert c.cmd("SET", "k", "v") == "OK"
    up.stop()
    up.extra = ["--databases", "4"]
    up.start()
    r = None
    for _ in range(100):                    # until the connection is back
        r = c.cmd("SET", "k2", "v2")
        if not (isinstance(r, Err) and "upstream" in str(r)):
            break
        time.sleep(0.05)
    assert str(r) == "ERR DB index is out of range", r
    assert keyspace(up, "zstd://", range(4)) == {}


@pytest.mark.skipif(not os.path.exists(FAKETIME_LIB), reason="faketime is not installed (scripts/install-deps.sh)")
def test_relative_ttls_do_not_depend_on_the_daemons_clock(upstreams, start_daemon):
    """cachetoryd's clock an hour ahead of the upstream's: relative TTLs stay what the client asked."""
    up = upstreams()
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+3600s", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    d = proxy(start_daemon, up, serializer="zstd://", default_ttl=500, env=env)
    c = d.conn()
    assert int(c.cmd("TIME")[0]) - int(up.conn().cmd("TIME")[0]) > 3500, "faketime did not shift the clock"
    assert c.cmd("SET", "ex", "v", "EX", "100") == "OK"
    assert c.cmd("SET", "px", "v", "PX", "200000") == "OK"
    assert c.cmd("SET", "dflt", "v") == "OK"
    assert c.cmd("MSET", "m1", "v", "m2", "v") == "OK"
    assert c.cmd("SET", "e", "v") == "OK"
    assert c.cmd("EXPIRE", "e", "50") == 1
    assert c.cmd("SET", "g", "v") == "OK"
    assert c.cmd("GETEX", "g", "EX", "70") == b"v"
    assert c.cmd("SET", "i", "5") == "OK"
    assert c.cmd("INCR", "i") == 6                  # keeps its TTL
    with up.conn() as u:
        got = {k: u.cmd("TTL", k) for k in ("ex", "px", "dflt", "m1", "m2", "e", "g", "i")}
    assert 98 <= got["ex"] <= 100 and 198 <= got["px"] <= 200 and 48 <= got["e"] <= 50, got
    assert 68 <= got["g"] <= 70 and all(498 <= got[k] <= 500 for k in ("dflt", "m1", "m2", "i")), got
    assert 98 <= c.cmd("TTL", "ex") <= 100
    assert 199000 <= c.cmd("PTTL", "px") <= 200000
    assert c.cmd("TTL", "missing") == -2


@pytest.mark.parametrize("serializer", ["zstd://", "null://"])
def test_url_database_is_where_clients_start(upstreams, start_daemon, serializer):
    """redis://host/3: a client starts in database 3, SELECT 0 reaches database 0 and SELECT 3 comes
    back to where it started; no two client databases are one upstream database."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer=serializer, db=3)
    c = d.conn()
    assert c.cmd("SET", "start", "s") == "OK"
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("GET", "start") is None
    assert c.cmd("SET", "zero", "z") == "OK"
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("GET", "start") == b"s"
    assert c.cmd("GET", "zero") is None
    assert keyspace(up, serializer) == {0: {b"zero": b"z"}, 3: {b"start": b"s"}}
    assert "db=3" in d.conn().cmd("CLIENT", "INFO").decode()


@pytest.mark.parametrize("serializer", ["zstd://", "null://"])
def test_exec_refused_upstream_is_one_error(upstreams, start_daemon, serializer):
    """The upstream refuses a queued command (OOM at its maxmemory): EXEC answers Redis's EXECABORT as
    its one reply, nothing ran, and the client's database is unchanged."""
    up = upstreams(extra=["--maxmemory", "1", "--maxmemory-policy", "noeviction"])
    d = proxy(start_daemon, up, serializer=serializer, upstream_pool_size=1)
    c = d.conn()
    assert c.pipeline([("MULTI",), ("GET", "a"), ("SELECT", "2"), ("SET", "k", "v"), ("PING",)]) == [
        "OK", "QUEUED", "QUEUED", "QUEUED", "QUEUED"]
    assert c.cmd("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")
    assert c.cmd("GET", "k") is None          # still database 0
    assert c.cmd("CLIENT", "INFO").decode().count(" db=0 ") == 1
    assert keyspace(up, serializer) == {}


@pytest.mark.parametrize("pool", [1, 4])
def test_commands_after_exec_wait_for_every_select_in_it(upstreams, start_daemon, pool):
    """Two SELECTs in one transaction, the next command pipelined behind EXEC: it runs in the last one."""
    cmds = [("MULTI",), ("SELECT", "3"), ("SELECT", "2"), ("EXEC",), ("SET", "k2", "v"), ("MULTI",),
            ("SELECT", "1"), ("INCR", "n"), ("SELECT", "0"), ("INCR", "n"), ("SELECT", "1"), ("EXEC",),
            ("INCR", "n")]
    ref = upstreams()
    up = upstreams()
    d = proxy(start_daemon, up, serializer="zstd://", upstream_pool_size=pool)
    with ref.conn() as rc:
        want = rc.pipeline(cmds)
    assert d.conn().pipeline(cmds) == want
    assert keyspace(up, "zstd://") == keyspace(ref, "null://") == {
        0: {b"n": b"1"}, 1: {b"n": b"2"}, 2: {b"k2": b"v"}}


def test_multi_step_commands_stay_in_their_database(upstreams, start_daemon):
    """LCS and BITOP read, then ask the types of missing keys or write, in later steps: every step in the
    database the command was sent in, whatever SELECT the client pipelined behind it."""
    cmds = [("SELECT", "3"), ("RPUSH", "k1", "x"), ("SET", "k7", "abc"), ("BITOP", "OR", "d", "k7", "k7"),
            ("LCS", "k7", "k1"), ("SELECT", "0"), ("SET", "k7", "abd"), ("SET", "k1", "abd"),
            ("LCS", "k7", "k1"), ("GET", "d"), ("SELECT", "3"), ("GET", "d"), ("SELECT", "0")]
    ref = upstreams()
    up = upstreams()
    d = proxy(start_daemon, up, serializer="zstd://", passthrough="yes", upstream_pool_size=1)
    with ref.conn() as rc:
        want = rc.pipeline(cmds)
    assert d.conn().pipeline(cmds) == want
    assert want[4] == Err("ERR The specified keys must contain string values") and want[11] == b"abc"
    assert keyspace(up, "zstd://") == keyspace(ref, "null://")


def test_multi_step_commands_see_no_later_command_of_their_client(upstreams, start_daemon):
    """LCS asks the type of a key its MGET found missing: the client's next write to that key (a large
    value, encoded on the thread pool) waits until the LCS is done, as Redis runs them in order."""
    cmds = [("HSET", "h", "f", "v"), ("SET", "s", "abc"), ("LCS", "h", "s"), ("SET", "h", "abc" * 3000),
            ("LCS", "h", "s"), ("BITOP", "AND", "d", "h", "s"), ("DEL", "s"), ("GET", "d")]
    ref = upstreams()
    up = upstreams()
    d = proxy(start_daemon, up, serializer="zstd://", passthrough="yes", upstream_pool_size=1,
              codec_thread_min_size="1kb")
    with ref.conn() as rc:
        want = rc.pipeline(cmds)
    for _ in range(20):
        assert d.conn().pipeline(cmds) == want
        d.conn().cmd("FLUSHALL")
    assert want[2] == Err("ERR The specified keys must contain string values")
