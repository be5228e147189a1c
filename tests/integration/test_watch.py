"""WATCH / UNWATCH in memory mode, with Redis 7.0's semantics: the same command sequences (two clients,
A watching, B writing) run against cachetoryd and a real redis-server must give the same replies; a
key's expiry, its eviction and flushes touch a watch; RESP3's null; redis-py's pipeline.watch() retry
loop under contention through a zstd:// serializer; WATCH stays refused in front of an upstream."""
import json
import threading
import time

import pytest
import redis

from helpers import Conn, Err
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

# Each sequence: (client, command...) steps, client "A" (watches), "B" (writes) or "C" (a third one).
# Before each, the server is flushed. Replies are compared step by step with redis-server's.
SEQUENCES = {
    "set-missing-expired-at-once": [("A", "WATCH", "k"), ("B", "SET", "k", "1", "PXAT", "1"), ("A", "MULTI"),
                                    ("A", "PING"), ("A", "EXEC")],
    "write-by-other": [("A", "WATCH", "k"), ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "SET", "k", "2"),
                       ("A", "EXEC"), ("A", "GET", "k")],
    "same-value": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "SET", "k", "v"), ("A", "MULTI"),
                   ("A", "GET", "k"), ("A", "EXEC")],
    "read-only-other": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "GET", "k"), ("B", "EXISTS", "k"),
                        ("B", "TTL", "k"), ("B", "STRLEN", "k"), ("A", "MULTI"), ("A", "SET", "k", "2"),
                        ("A", "EXEC"), ("A", "GET", "k")],
    "untouched-missing": [("A", "WATCH", "k"), ("B", "SET", "other", "1"), ("A", "MULTI"), ("A", "INCR", "k"),
                          ("A", "EXEC")],
    "del-existing": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "DEL", "k"), ("A", "MULTI"),
                     ("A", "PING"), ("A", "EXEC")],
    "del-missing": [("A", "WATCH", "k"), ("B", "DEL", "k"), ("B", "UNLINK", "k"), ("A", "MULTI"),
                    ("A", "PING"), ("A", "EXEC")],
    "rename-source": [("B", "SET", "a", "v"), ("A", "WATCH", "a"), ("B", "RENAME", "a", "b"), ("A", "MULTI"),
                      ("A", "PING"), ("A", "EXEC")],
    "rename-target": [("B", "SET", "a", "v"), ("A", "WATCH", "b"), ("B", "RENAME", "a", "b"), ("A", "MULTI"),
                      ("A", "PING"), ("A", "EXEC")],
    "renamenx-refused": [("B", "SET", "a", "v"), ("B", "SET", "b", "w"), ("A", "WATCH", "a", "b"),
                         ("B", "RENAMENX", "a", "b"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "rename-onto-itself": [("B", "SET", "a", "v"), ("A", "WATCH", "a"), ("B", "RENAME", "a", "a"),
                           ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "expire": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "EXPIRE", "k", "100"), ("A", "MULTI"),
               ("A", "PING"), ("A", "EXEC")],
    "expire-nx-refused": [("B", "SET", "k", "v", "EX", "100"), ("A", "WATCH", "k"),
                          ("B", "EXPIRE", "k", "50", "NX"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "persist-without-ttl": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "PERSIST", "k"),
                            ("B", "GETEX", "k", "PERSIST"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "persist-with-ttl": [("B", "SET", "k", "v", "EX", "100"), ("A", "WATCH", "k"), ("B", "PERSIST", "k"),
                         ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "getex-ex": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "GETEX", "k", "EX", "100"),
                 ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "getex-plain": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "GETEX", "k"), ("A", "MULTI"),
                    ("A", "PING"), ("A", "EXEC")],
    "incrby-zero": [("B", "SET", "k", "5"), ("A", "WATCH", "k"), ("B", "INCRBY", "k", "0"), ("A", "MULTI"),
                    ("A", "PING"), ("A", "EXEC")],
    "append-empty": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "APPEND", "k", ""), ("A", "MULTI"),
                     ("A", "PING"), ("A", "EXEC")],
    "setrange-empty": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "SETRANGE", "k", "0", ""),
                       ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "setnx-existing": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "SETNX", "k", "w"),
                       ("B", "SET", "k", "w", "NX"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "set-xx-missing": [("A", "WATCH", "k"), ("B", "SET", "k", "w", "XX"), ("A", "MULTI"), ("A", "PING"),
                       ("A", "EXEC")],
    "msetnx-refused": [("B", "SET", "x", "1"), ("A", "WATCH", "k"), ("B", "MSETNX", "k", "1", "x", "2"),
                       ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "mset": [("A", "WATCH", "k"), ("B", "MSET", "j", "1", "k", "2"), ("A", "MULTI"), ("A", "PING"),
             ("A", "EXEC")],
    "getdel": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "GETDEL", "k"), ("A", "MULTI"),
               ("A", "PING"), ("A", "EXEC")],
    "getset": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "GETSET", "k", "v"), ("A", "MULTI"),
               ("A", "PING"), ("A", "EXEC")],
    "bitop-dest": [("B", "SET", "a", "v"), ("A", "WATCH", "d"), ("B", "BITOP", "NOT", "d", "a"),
                   ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "setbit-same-bit": [("B", "SETBIT", "k", "3", "1"), ("A", "WATCH", "k"), ("B", "SETBIT", "k", "3", "1"),
                        ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "setbit-changed": [("B", "SETBIT", "k", "3", "1"), ("A", "WATCH", "k"), ("B", "SETBIT", "k", "3", "0"),
                       ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "flushdb-existing": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "FLUSHDB"), ("A", "MULTI"),
                         ("A", "PING"), ("A", "EXEC")],
    "flushdb-missing": [("B", "SET", "other", "v"), ("A", "WATCH", "k"), ("B", "FLUSHDB"), ("A", "MULTI"),
                        ("A", "PING"), ("A", "EXEC")],
    "flushall-existing": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "FLUSHALL"), ("A", "MULTI"),
                          ("A", "PING"), ("A", "EXEC")],
    "flushall-missing": [("B", "SET", "other", "v"), ("A", "WATCH", "k"), ("B", "FLUSHALL"), ("A", "MULTI"),
                         ("A", "PING"), ("A", "EXEC")],
    "flushdb-other-db": [("B", "SET", "k", "v"), ("A", "WATCH", "k"), ("B", "SELECT", "1"), ("B", "SET", "k", "w"),
                         ("B", "FLUSHDB"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "select-aware": [("A", "WATCH", "k"), ("B", "SELECT", "1"), ("B", "SET", "k", "1"), ("A", "MULTI"),
                     ("A", "SET", "k", "2"), ("A", "EXEC"), ("B", "GET", "k"), ("A", "GET", "k")],
    "select-aware-watch-in-db1": [("A", "SELECT", "1"), ("A", "WATCH", "k"), ("A", "SELECT", "0"),
                                  ("B", "SELECT", "1"), ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "PING"),
                                  ("A", "EXEC")],
    "same-key-two-dbs": [("A", "WATCH", "k"), ("A", "SELECT", "2"), ("A", "WATCH", "k"), ("B", "SELECT", "2"),
                         ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "own-write": [("A", "WATCH", "k"), ("A", "SET", "k", "1"), ("A", "MULTI"), ("A", "GET", "k"), ("A", "EXEC")],
    "watch-inside-multi": [("A", "MULTI"), ("A", "WATCH", "k"), ("A", "SET", "k", "1"), ("A", "EXEC"),
                           ("A", "GET", "k")],
    "watch-no-key": [("A", "WATCH")],
    "watch-no-key-inside-multi": [("A", "MULTI"), ("A", "WATCH"), ("A", "SET", "k", "1"), ("A", "EXEC"),
                                  ("A", "EXISTS", "k")],
    "unwatch": [("A", "WATCH", "k"), ("A", "UNWATCH"), ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "GET", "k"),
                ("A", "EXEC")],
    "unwatch-arity": [("A", "UNWATCH", "k")],
    "unwatch-inside-multi": [("A", "WATCH", "k"), ("A", "MULTI"), ("A", "UNWATCH"), ("B", "SET", "k", "1"),
                             ("A", "EXEC")],
    "discard-unwatches": [("A", "WATCH", "k"), ("A", "MULTI"), ("A", "DISCARD"), ("B", "SET", "k", "1"),
                          ("A", "MULTI"), ("A", "GET", "k"), ("A", "EXEC")],
    "exec-unwatches": [("A", "WATCH", "k"), ("A", "MULTI"), ("A", "EXEC"), ("B", "SET", "k", "1"),
                       ("A", "MULTI"), ("A", "GET", "k"), ("A", "EXEC")],
    "aborted-exec-unwatches": [("A", "WATCH", "k"), ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "EXEC"),
                               ("B", "SET", "k", "2"), ("A", "MULTI"), ("A", "GET", "k"), ("A", "EXEC")],
    "reset-unwatches": [("A", "WATCH", "k"), ("A", "RESET"), ("B", "SET", "k", "1"), ("A", "MULTI"),
                        ("A", "EXEC")],
    "exec-without-multi-keeps-watch": [("A", "WATCH", "k"), ("A", "EXEC"), ("B", "SET", "k", "1"),
                                       ("A", "MULTI"), ("A", "EXEC")],
    "execabort-first": [("A", "WATCH", "k"), ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "NOSUCHCMD"),
                        ("A", "EXEC")],
    "touched-then-watch-more": [("A", "WATCH", "k"), ("B", "SET", "k", "1"), ("A", "WATCH", "j"),
                                ("A", "MULTI"), ("A", "EXEC")],
    "many-keys-one-touched": [("A", "WATCH", "a", "b", "c", "a"), ("A", "WATCH", "d", "c"), ("B", "SET", "d", "1"),
                              ("A", "MULTI"), ("A", "PING"), ("A", "EXEC")],
    "two-watchers": [("A", "WATCH", "k"), ("C", "WATCH", "k"), ("B", "SET", "k", "1"), ("A", "MULTI"),
                     ("A", "EXEC"), ("C", "MULTI"), ("C", "EXEC")],
    "one-of-two-watchers-unwatches": [("A", "WATCH", "k"), ("C", "WATCH", "k"), ("C", "UNWATCH"),
                                      ("B", "SET", "k", "1"), ("A", "MULTI"), ("A", "EXEC"), ("C", "MULTI"),
                                      ("C", "EXEC")],
    "commit-wins": [("A", "WATCH", "k"), ("C", "WATCH", "k"), ("A", "MULTI"), ("A", "SET", "k", "a"),
                    ("A", "EXEC"), ("C", "MULTI"), ("C", "SET", "k", "c"), ("C", "EXEC"), ("B", "GET", "k")],
}


def run_sequence(conns, seq):
    return [conns[who].cmd(*cmd) for who, *cmd in seq]


def fresh(conns):
    for c in conns.values():
        c.cmd("RESET")
    assert conns["B"].cmd("FLUSHALL") == "OK"


@pytest.fixture(scope="module")
def pair(module_start_daemon):
    """cachetoryd (memory://) and redis-server, each with its three clients."""
    from conftest import spawn_daemon
    started = []
    ref = spawn_daemon({}, stop_list=started, redis=True)
    ours = module_start_daemon()
    yield ({w: ours.conn() for w in "ABC"}, {w: ref.conn() for w in "ABC"})
    for d in started:
        d.stop()


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_sequence_as_redis(pair, name):
    ours, ref = pair
    fresh(ours)
    fresh(ref)
    got, want = run_sequence(ours, SEQUENCES[name]), run_sequence(ref, SEQUENCES[name])
    assert got == want, "%s: redis %r, cachetoryd %r" % (name, want, got)


def test_sequences_cover_both_outcomes(pair):
    """The differential is worth something only if both outcomes occur: aborted and committed EXECs."""
    ours, _ = pair
    aborted = committed = 0
    for name, seq in SEQUENCES.items():
        fresh(ours)
        for (who, *cmd), r in zip(seq, run_sequence(ours, seq)):
            if cmd[0] == "EXEC" and r is None:
                aborted += 1
            elif cmd[0] == "EXEC" and isinstance(r, list):
                committed += 1
    assert aborted >= 20 and committed >= 15, (aborted, committed)


def wait_past(ms):
    """Let ms milliseconds of wall time pass (a TTL has to run out: there is nothing to poll for)."""
    end = time.monotonic() + ms / 1000.0
    while time.monotonic() < end:
        time.sleep(0.01)


@pytest.mark.parametrize("access", ["none", "read-by-other"])
def test_expired_after_watch_fails_exec(pair, access):
    """A key whose TTL runs out after WATCH fails the EXEC, whether or not anything reclaimed it."""
    for conns in pair:
        fresh(conns)
        a, b = conns["A"], conns["B"]
        assert a.cmd("SET", "k", "v", "PX", "60") == "OK"
        assert a.cmd("WATCH", "k") == "OK"
        wait_past(90)
        if access == "read-by-other":
            assert b.cmd("GET", "k") is None
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "k", "new") == "QUEUED"
        assert a.cmd("EXEC") is None
        assert a.cmd("EXISTS", "k") == 0


def test_expired_before_watch_is_absent(pair):
    """A key already expired when WATCH ran counts as absent: its reclaiming touches nothing, writing it
    does."""
    for conns in pair:
        fresh(conns)
        a, b = conns["A"], conns["B"]
        assert a.cmd("SET", "k", "v", "PX", "20") == "OK"
        wait_past(40)
        assert a.cmd("WATCH", "k") == "OK"
        assert b.cmd("GET", "k") is None
        assert a.cmd("MULTI") == "OK" and a.cmd("SET", "k", "1") == "QUEUED"
        assert a.cmd("EXEC") == ["OK"]
        assert a.cmd("SET", "j", "v", "PX", "20") == "OK"
        wait_past(40)
        assert a.cmd("WATCH", "j") == "OK"
        assert b.cmd("SET", "j", "w") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("EXEC") is None


def test_ttl_left_alone_keeps_exec(pair):
    """A key with a TTL that has not run out does not fail the EXEC."""
    for conns in pair:
        fresh(conns)
        a = conns["A"]
        assert a.cmd("SET", "k", "v", "EX", "100") == "OK"
        assert a.cmd("WATCH", "k") == "OK"
        assert a.cmd("MULTI") == "OK" and a.cmd("GET", "k") == "QUEUED"
        assert a.cmd("EXEC") == [b"v"]


def test_active_expiry_touches(start_daemon):
    """The expire cycle reclaiming a watched key (nobody reads it) is a modification too."""
    d = start_daemon(hz=50)
    a, b = d.conn(), d.conn()
    assert a.cmd("SET", "k", "v", "PX", "30") == "OK"
    assert a.cmd("WATCH", "k") == "OK"
    deadline = time.monotonic() + 5
    while d.info("keyspace").get("db0") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert d.info("keyspace").get("db0") is None, "the expire cycle did not reclaim the key"
    assert b.cmd("DBSIZE") == 0
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("EXEC") is None


def test_eviction_touches(start_daemon):
    """A watched key evicted under maxmemory fails the EXEC; one that survives does not."""
    d = start_daemon(maxmemory="20kb", maxmemory_policy="allkeys-random")
    a, b = d.conn(), d.conn()
    assert a.cmd("SET", "w", "x" * 100) == "OK"
    assert a.cmd("WATCH", "w") == "OK"
    for i in range(5000):
        assert b.cmd("SET", "fill:%d" % i, "y" * 100) == "OK"
        if b.cmd("EXISTS", "w") == 0:
            break
    else:
        pytest.fail("w was never evicted")
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("EXEC") is None
    assert int(d.info("stats")["evicted_keys"]) > 0


def test_resp3_null_reply(start_daemon):
    """An aborted EXEC is RESP2's *-1 and RESP3's _ (as Redis 7.0)."""
    d = start_daemon()
    for proto, null in (("2", b"*-1\r\n"), ("3", b"_\r\n")):
        a, b = d.conn(), d.conn()
        a.cmd("HELLO", proto)
        assert a.cmd("WATCH", "k") == "OK"
        assert b.cmd("SET", "k", "1") == "OK"
        assert a.cmd("MULTI") == "OK"
        a.send(b"EXEC\r\n")
        assert a.read_exact_bytes(len(null)) == null
        a.close()
        b.close()


def test_values_in_watched_transaction_go_through_serializer(start_daemon):
    """The serializer applies inside a watched transaction as outside: what EXEC wrote reads back, and
    is stored compressed."""
    d = start_daemon(serializer="zstd://")
    a = d.conn()
    v = "hello world " * 100
    assert a.cmd("SET", "k", v) == "OK"
    assert a.cmd("WATCH", "k") == "OK"
    assert a.cmd("GET", "k") == v.encode()
    assert a.cmd("MULTI") == "OK" and a.cmd("APPEND", "k", "!") == "QUEUED"
    assert a.cmd("EXEC") == [len(v) + 1]
    assert a.cmd("GET", "k") == (v + "!").encode()
    raw = a.cmd("CACHE", "RAWGET", "k")
    assert isinstance(raw, bytes) and raw[:4] == b"\x28\xb5\x2f\xfd" and len(raw) < len(v)


def test_many_watchers_and_keys_come_and_go(start_daemon):
    """Clients watching many keys, many clients watching one key, clients leaving while watching (and
    while touched): nothing is left behind (the sanitizer build checks the frees at exit), and the
    daemon keeps answering. One client is still watching when the daemon stops."""
    d = start_daemon()
    w = d.conn()
    keys = ["key:%d" % i for i in range(2000)]
    assert w.cmd("WATCH", *keys) == "OK"
    assert w.cmd("WATCH", *keys[:1000]) == "OK"     # again: no duplicate
    clients = [d.conn() for _ in range(50)]
    for c in clients:
        assert c.cmd("WATCH", "hot", keys[7]) == "OK"
    assert d.conn().cmd("SET", keys[1999], "x") == "OK"
    assert w.cmd("MULTI") == "OK"
    assert w.cmd("EXEC") is None
    for c in clients[:25]:
        c.close()
    assert d.conn().cmd("SET", "hot", "1") == "OK"
    for c in clients[25:40]:
        assert c.cmd("MULTI") == "OK" and c.cmd("EXEC") is None
    for c in clients[40:]:
        c.close()
    last = d.conn()
    assert last.cmd("WATCH", *keys[:100]) == "OK"
    assert last.cmd("PING") == "PONG"
    assert d.conn().cmd("FLUSHALL") == "OK"


def test_pipeline_watch_retry_loop_under_contention(start_daemon):
    """redis-py's pipeline.watch() CAS loop: 8 threads increment one JSON counter through zstd://; the
    final value equals the number of transactions that committed, and none was lost."""
    d = start_daemon(serializer="zstd://")
    setup = redis.Redis(host=d.host, port=d.port, socket_timeout=10)
    setup.set("counter", json.dumps({"n": 0}))
    threads_n, attempts = 8, 60
    committed = [0] * threads_n
    aborted = [0] * threads_n
    errors = []

    def worker(i):
        r = redis.Redis(host=d.host, port=d.port, socket_timeout=10)
        try:
            for _ in range(attempts):
                with r.pipeline() as p:
                    try:
                        p.watch("counter")
                        cur = json.loads(p.get("counter"))
                        p.multi()
                        p.set("counter", json.dumps({"n": cur["n"] + 1}))
                        p.execute()
                        committed[i] += 1
                    except redis.WatchError:
                        aborted[i] += 1
        except Exception as e:              # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            r.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert not any(t.is_alive() for t in ts), "a worker did not finish"
    assert not errors, errors
    final = json.loads(setup.get("counter"))["n"]
    assert sum(committed) + sum(aborted) == threads_n * attempts
    assert final == sum(committed), (final, sum(committed), sum(aborted))
    assert sum(committed) > 0
    raw = setup.execute_command("CACHE", "RAWGET", "counter")
    assert raw[:4] == b"\x28\xb5\x2f\xfd"
    setup.close()


def test_proxy_mode_without_dedicated_connections_refuses_watch(start_daemon, upstreams):  # noqa: F811
    """In front of an upstream WATCH needs a dedicated connection (test_pinned.py); with
    upstream-dedicated-max = 0 there is none: a clear error, and the client goes on unpinned."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", upstream_dedicated_max=0)
    c = d.conn()
    r = c.cmd("WATCH", "k")
    assert isinstance(r, Err) and "upstream-dedicated-max" in r, r
    assert c.cmd("UNWATCH") == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "k", "v") == "QUEUED"
    assert c.cmd("EXEC") == ["OK"]
    assert c.cmd("GET", "k") == b"v"
