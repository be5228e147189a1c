"""Upstream mode, atomicity: a client's MULTI ... EXEC is one MULTI/EXEC upstream on one connection (seen
with MONITOR, nothing of another client inside it), MGET / MSET are single upstream commands (a reader
never sees half of a write), and read-modify-write commands on encoded values (INCR family, APPEND,
SETRANGE) stay atomic when clients race on one key."""
import threading

import pytest

from helpers import Err, encode_command
from upstream_support import decode, proxy, read_monitor, start_monitor, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

CHAINS = ["null://", "zstd://"]


def _tx(c, cmds):
    assert c.cmd("MULTI") == "OK"
    for cmd in cmds:
        r = c.cmd(*cmd)
        assert r == "QUEUED", "%r inside MULTI replied %r" % (cmd, r)
    return c.cmd("EXEC")


@pytest.mark.parametrize("serializer", CHAINS)
def test_multi_exec_results_same_as_redis(start_daemon, reference_redis, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    ours, ref = d.conn(), reference_redis.conn()
    script = [
        [["SET", "a", "1"], ["INCR", "a"], ["APPEND", "s", "xy"], ["APPEND", "s", "z"], ["GET", "a"],
         ["GET", "s"], ["MSET", "m1", "x", "m2", "y"], ["MGET", "m1", "m2", "a"], ["SETRANGE", "s", "1", "Q"],
         ["INCRBYFLOAT", "f", "1.5"], ["GETSET", "m1", "X"], ["DEL", "m2"], ["EXPIRE", "a", "100"],
         ["TTL", "a"], ["EXISTS", "a", "m2"]],
        [["INCR", "s"], ["SET", "b", "2"], ["GET", "b"]],             # error inside EXEC, rest runs
        [["GETDEL", "b"], ["SET", "c", "v", "NX", "GET"], ["STRLEN", "s"]],
    ]
    for cmds in script:
        a = _tx(ref, cmds)
        b = _tx(ours, cmds)
        assert b == a, "MULTI %r EXEC (%s):\n  redis:      %r\n  cachetoryd: %r" % (cmds, serializer, a, b)
    # queue-time error: EXECABORT, nothing runs
    for c in (ref, ours):
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "never", "v") == "QUEUED"
        assert isinstance(c.cmd("GET"), Err)
    a, b = ref.cmd("EXEC"), ours.cmd("EXEC")
    assert b == a, "EXEC after a queue-time error: redis %r, cachetoryd %r" % (a, b)
    assert up.client(0).exists("never") == 0
    # DISCARD
    for c in (ref, ours):
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "discarded", "v") == "QUEUED"
        assert c.cmd("DISCARD") == "OK"
    assert up.client(0).exists("discarded") == 0
    assert ours.cmd("EXEC") == ref.cmd("EXEC")
    assert ours.cmd("DISCARD") == ref.cmd("DISCARD")
    for k in (b"a", b"s", b"m1", b"f", b"c"):
        assert decode(serializer, up.client(0).get(k)) == ref_get(reference_redis, k), k


def ref_get(ref, k):
    with ref.conn() as c:
        return c.cmd("GET", k)


@pytest.mark.parametrize("serializer", CHAINS)
def test_multi_exec_is_one_transaction_upstream(start_daemon, upstreams, serializer):
    """With one upstream connection shared by two clients, MONITOR shows the client's MULTI, its commands,
    EXEC on one upstream connection, with none of the other client's commands in between, while the other
    client keeps getting its own replies."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer, upstream_pool_size=1)
    tx, other = d.conn(), d.conn()
    assert other.cmd("SET", "other:k", "ov") == "OK"
    mon = start_monitor(up)
    stop = threading.Event()
    other_bad = []

    def hammer():
        for i in range(2000):
            if stop.is_set():
                return
            r = other.cmd("GET", "other:k")
            if r != b"ov":
                other_bad.append(r)
                return

    t = threading.Thread(target=hammer)
    t.start()
    try:
        results = []
        for i in range(20):
            results.append(_tx(tx, [["SET", "tx:a", str(i)], ["SET", "tx:b", str(i)], ["GET", "tx:a"],
                                    ["MGET", "tx:a", "tx:b"]]))
    finally:
        stop.set()
        t.join(20)
    assert not other_bad, "a concurrent client got %r instead of its value" % other_bad[:3]
    for i, r in enumerate(results):
        assert r == ["OK", "OK", str(i).encode(), [str(i).encode()] * 2], "EXEC #%d replied %r" % (i, r)

    def enough(entries):
        return sum(1 for e in entries if e[2][:1] == ["EXEC"]) >= 20
    entries = read_monitor(mon, enough, timeout=5.0)
    mon.close()
    names = [e[2][0].upper() for e in entries if e[2]]
    assert names.count("MULTI") >= 20 and names.count("EXEC") >= 20, \
        "MONITOR upstream saw %d MULTI and %d EXEC for 20 client transactions: %r" % (
            names.count("MULTI"), names.count("EXEC"), sorted(set(names)))
    # per upstream connection: every MULTI .. EXEC holds the transaction's SETs and nothing of 'other:'
    open_tx = {}
    seen = 0
    for db, addr, args in entries:
        name = args[0].upper() if args else ""
        if name == "MULTI":
            assert addr not in open_tx, "nested MULTI on %s" % addr
            open_tx[addr] = []
        elif name in ("EXEC", "DISCARD") and addr in open_tx:
            body = open_tx.pop(addr)
            if name == "EXEC" and any(a[:2] == ["SET", "tx:a"] for a in body):
                seen += 1
                assert any(a[:2] == ["SET", "tx:b"] for a in body), "tx:b not in the same MULTI: %r" % body
            assert not any(any("other:" in x for x in a) for a in body), \
                "another client's command ran inside a client's MULTI upstream: %r" % body
        elif addr in open_tx:
            open_tx[addr].append(args)
    assert seen == 20, "found %d of 20 transactions as one MULTI..EXEC upstream" % seen


@pytest.mark.parametrize("serializer", CHAINS)
def test_mset_mget_and_transactions_never_seen_half_done(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    w1, w2, reader = d.conn(), d.conn(), d.conn()
    assert w1.cmd("MSET", "x", "0", "y", "0") == "OK"
    errors = []

    def writer_mset():
        for i in range(1, 301):
            r = w1.cmd("MSET", "x", "m%d" % i, "y", "m%d" % i)
            if r != "OK":
                errors.append(("MSET", r))
                return

    def writer_tx():
        for i in range(1, 151):
            r = _tx(w2, [["SET", "x", "t%d" % i], ["SET", "y", "t%d" % i]])
            if r != ["OK", "OK"]:
                errors.append(("EXEC", r))
                return

    ts = [threading.Thread(target=writer_mset), threading.Thread(target=writer_tx)]
    for t in ts:
        t.start()
    torn = []
    reads = 0
    try:
        while any(t.is_alive() for t in ts) and reads < 20000:
            r = reader.cmd("MGET", "x", "y")
            reads += 1
            if not (isinstance(r, list) and len(r) == 2 and r[0] == r[1]):
                torn.append(r)
                if len(torn) > 5:
                    break
    finally:
        for t in ts:
            t.join(30)
    assert not errors, errors[:3]
    assert not torn, "MGET saw a half-done MSET / MULTI (%d of %d reads): %r" % (len(torn), reads, torn[:5])
    assert reads > 10


@pytest.mark.parametrize("serializer", CHAINS)
def test_read_modify_write_is_atomic(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, upstream_pool_size=4)
    threads_n, per = 4, 60
    conns = [d.conn(timeout=20.0) for _ in range(threads_n)]
    bad = []

    def work(c, t):
        for i in range(per):
            for cmd, ok in ((["INCR", "ctr"], int), (["INCRBY", "ctr2", "3"], int),
                            (["INCRBYFLOAT", "fl", "0.5"], bytes), (["APPEND", "log", "x"], int),
                            (["SETRANGE", "sr", str(t), "y"], int)):
                r = c.cmd(*cmd)
                if not isinstance(r, ok) or isinstance(r, Err):
                    bad.append((cmd, r))
                    return

    ts = [threading.Thread(target=work, args=(conns[t], t)) for t in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not bad, "read-modify-write commands failed under contention: %r" % bad[:5]
    total = threads_n * per
    c = d.conn()
    assert c.cmd("GET", "ctr") == str(total).encode(), "INCR lost updates: %r != %d" % (c.cmd("GET", "ctr"), total)
    assert c.cmd("GET", "ctr2") == str(3 * total).encode(), "INCRBY lost updates"
    assert c.cmd("GET", "fl") == str(total // 2).encode(), "INCRBYFLOAT lost updates: %r" % c.cmd("GET", "fl")
    assert c.cmd("STRLEN", "log") == total, "APPEND lost updates: %r" % c.cmd("STRLEN", "log")
    assert c.cmd("GET", "sr") == b"y" * threads_n
    raw = up.client(0)
    assert decode(serializer, raw.get("ctr")) == str(total).encode()
    assert decode(serializer, raw.get("log")) == b"x" * total
    if serializer == "zstd://":
        assert raw.get("log")[:4] == b"\x28\xb5\x2f\xfd", "APPEND result upstream is not a zstd frame"


def test_rmw_pipelined_by_one_client_keeps_order(start_daemon, upstreams):
    """A client pipelining INCRs and GETs on an encoded value gets every reply in order."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    cmds = []
    for i in range(100):
        cmds += [["INCR", "p"], ["GET", "p"], ["APPEND", "q", "a"], ["STRLEN", "q"]]
    c.send(b"".join(encode_command(*x) for x in cmds))
    replies = [c.read_reply() for _ in cmds]
    for i in range(100):
        assert replies[4 * i:4 * i + 4] == [i + 1, str(i + 1).encode(), i + 1, i + 1], \
            "pipelined round %d: %r" % (i, replies[4 * i:4 * i + 4])


@pytest.mark.parametrize("serializer", CHAINS)
def test_commands_reach_upstream_whole(start_daemon, upstreams, serializer):
    """MONITOR upstream: MGET is one MGET, MSET one MSET, MSETNX one MSETNX (never split); with null://
    INCR / APPEND are forwarded as they are, with zstd:// they run as WATCH ... MULTI ... EXEC."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer)
    c = d.conn()
    mon = start_monitor(up)
    keys = ["mk:%d" % i for i in range(25)]
    assert c.cmd("MSET", *[x for k in keys for x in (k, k + "-v")]) == "OK"
    assert c.cmd("MGET", *keys) == [(k + "-v").encode() for k in keys]
    assert c.cmd("MSETNX", "nx:a", "1", "nx:b", "2", "nx:c", "3") == 1
    assert c.cmd("INCR", "ctr") == 1
    assert c.cmd("APPEND", "ap", "xyz") == 3
    assert c.cmd("SET", "marker:end", "1") == "OK"
    entries = read_monitor(mon, lambda es: any(e[2][:2] == ["SET", "marker:end"] for e in es), timeout=5.0)
    mon.close()
    cmds = [e[2] for e in entries if e[2]]
    names = [a[0].upper() for a in cmds]
    msets = [a for a in cmds if a[0].upper() == "MSET"]
    assert len(msets) == 1 and len(msets[0]) == 1 + 2 * len(keys), \
        "MSET of %d keys reached the upstream as %r" % (len(keys), [len(a) for a in msets])
    mgets = [a for a in cmds if a[0].upper() == "MGET"]
    assert len(mgets) == 1 and mgets[0][1:] == keys, "MGET reached the upstream as %r" % (mgets,)
    msetnx = [a for a in cmds if a[0].upper() == "MSETNX"]
    assert len(msetnx) == 1 and msetnx[0][1::2] == ["nx:a", "nx:b", "nx:c"], msetnx
    assert not any(n in ("SET", "GET", "SETNX") and a[1].startswith(("mk:", "nx:")) for n, a in zip(names, cmds)), \
        "multi-key commands were split into single-key ones upstream: %r" % cmds[:10]
    ctr_cmds = [a[0].upper() for a in cmds if len(a) > 1 and a[1] == "ctr"]
    if serializer == "null://":
        assert ctr_cmds == ["INCR"], "INCR with null:// reached the upstream as %r" % ctr_cmds
        assert [a[0].upper() for a in cmds if len(a) > 1 and a[1] == "ap"] == ["APPEND"]
    else:
        assert "WATCH" in ctr_cmds and "INCR" not in ctr_cmds, \
            "INCR with zstd:// reached the upstream as %r (expected WATCH/GET ... MULTI SET EXEC)" % ctr_cmds
        assert "MULTI" in names and "EXEC" in names


def test_rmw_hot_key_many_connections(start_daemon, upstreams):
    """A hot counter (rate limiter style): 48 clients pipelining INCR on one key over a pool of 24
    connections. Every INCR succeeds (a read-modify-write retries until it wins; a Redis INCR never asks
    the client to try again) and none is lost."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", upstream_pool_size=24)
    nthreads, per = 48, 100
    conns = [d.conn(timeout=30.0) for _ in range(nthreads)]
    errors = []

    def work(c):
        for _ in range(per // 10):
            c.send(b"".join(encode_command("INCR", "hot") for _ in range(10)))
            for _ in range(10):
                r = c.read_reply()
                if not isinstance(r, int):
                    errors.append(r)

    ts = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    final = int(d.conn().cmd("GET", "hot"))
    assert final + len(errors) == nthreads * per, "INCRs lost: %d applied + %d errors != %d" % (
        final, len(errors), nthreads * per)
    assert not errors, "%d of %d INCRs on a hot key failed, e.g. %r" % (len(errors), nthreads * per, errors[:2])
