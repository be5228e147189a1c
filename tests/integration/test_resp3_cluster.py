"""Proxy mode with a Redis Cluster upstream, RESP3 clients: a forwarded command's reply reaches a client
that said HELLO 3 byte for byte as the slot's master sends it to its own HELLO 3 client (maps, sets,
doubles, nulls, errors), through each node's RESP3 connections; MOVED and ASK are followed there and never
shown; a RESP2 client is unchanged; a RESP3 client's own and forwarded commands, pipelined, keep their
order. One 3-master cluster without replicas serves the module."""
import pytest

from cluster_support import Cluster, key_slot, tagged_key
from helpers import encode_command, parse_info, wait_until
from test_resp3_forwarded import raw_cmd, raw_reply

pytestmark = pytest.mark.needs_cachetoryd


@pytest.fixture(scope="module")
def cl():
    c = Cluster(masters=3, replicas_per_master=0)
    yield c
    c.stop()


def proxy(start_daemon, cl, serializer):
    return start_daemon(backend=cl.seed_url(), serializer=serializer, passthrough="yes")


# keys of different slots, spread over the masters
KEYS = {"h": "rh", "z": "rz", "s": "rs", "str": "rstr", "none": "rnone"}

COMMANDS = [
    ("HGETALL", KEYS["h"]),
    ("ZSCORE", KEYS["z"], "a"),
    ("ZRANGE", KEYS["z"], "0", "-1", "WITHSCORES"),
    ("SMEMBERS", KEYS["s"]),
    ("HGET", KEYS["h"], "missing"),         # a null
    ("HGET", KEYS["none"], "f"),            # a null, on another key's node
    ("HGETALL", KEYS["s"]),                 # WRONGTYPE
    ("ZRANGE", KEYS["h"], "0", "-1"),       # WRONGTYPE, on another slot
    ("HEXISTS", KEYS["h"], "f1"),
    ("ZINCRBY", KEYS["z"], "0", "b"),       # a double from a write
]


def fill(cl):
    cl.flushall()
    for args in (("HSET", KEYS["h"], "f1", "v1", "f2", "v2"), ("ZADD", KEYS["z"], "1.5", "a", "2", "b"),
                 ("SADD", KEYS["s"], "x", "y", "z")):
        with cl.node_for_key(args[1]).conn() as u:
            assert isinstance(u.cmd(*args), int)


def direct(cl, proto, commands):
    """Each command's reply from the master of its key, on a connection of protocol proto."""
    out = []
    for cmd in commands:
        with cl.node_for_key(cmd[1]).conn() as u:
            if proto == 3:
                assert raw_cmd(u, "HELLO", "3")[:1] == b"%"
            out.append(raw_cmd(u, *cmd))
    return out


def hello3(d):
    c = d.conn()
    assert raw_cmd(c, "HELLO", "3")[:1] == b"%"
    return c


def info(d):
    with d.conn() as c:
        return parse_info(c.cmd("INFO", "upstream"))


@pytest.mark.parametrize("serializer", ["zstd://", "null://"])
def test_resp3_replies_are_the_masters_own_bytes(start_daemon, cl, serializer):
    fill(cl)
    assert len({cl.node_for_key(k).port for k in KEYS.values()}) >= 2, "the keys should spread over masters"
    d = proxy(start_daemon, cl, serializer)
    want3 = direct(cl, 3, COMMANDS)
    want2 = direct(cl, 2, COMMANDS)
    assert want3[0][:1] == b"%" and want2[0][:1] == b"*"
    assert want3[1][:1] == b"," and want3[3][:1] == b"~" and want3[4] == b"_\r\n" and want3[5] == b"_\r\n"
    assert want3[6].startswith(b"-WRONGTYPE") and want3[7].startswith(b"-WRONGTYPE")
    assert int(info(d)["upstream_resp3_connections"]) == 0         # made on first use
    c3 = hello3(d)
    got3 = [raw_cmd(c3, *cmd) for cmd in COMMANDS]
    for cmd, g, w in zip(COMMANDS, got3, want3):
        assert g == w, (cmd, g, w)
    # pipelined: the same bytes, in order
    c3.send(b"".join(encode_command(*cmd) for cmd in COMMANDS))
    assert [raw_reply(c3) for _ in COMMANDS] == want3
    i = info(d)
    assert int(i["upstream_resp3_connections_ready"]) >= 2, i
    nodes = [dict(f.split("=", 1) for f in v.split(",")) for k, v in i.items() if k.startswith("upstream_node")]
    assert sum(int(n["resp3_ready"]) for n in nodes) >= 2, nodes
    # a RESP2 client still gets RESP2 from the RESP2 connections
    c2 = d.conn()
    got2 = [raw_cmd(c2, *cmd) for cmd in COMMANDS]
    for cmd, g, w in zip(COMMANDS, got2, want2):
        assert g == w, (cmd, g, w)
    # the client's own commands, answered by cachetoryd in its protocol
    assert raw_cmd(c3, "GET", "nokey") == b"_\r\n"
    assert raw_cmd(c2, "GET", "nokey") == b"$-1\r\n"


def test_resp3_ask_and_moved_are_followed(start_daemon, cl):
    cl.flushall()
    d = proxy(start_daemon, cl, "zstd://")
    slot = 4321
    hashes = [tagged_key(slot, "h%d" % i) for i in range(6)]
    z = tagged_key(slot, "z")
    src = cl.node_for_slot(slot)
    with src.conn() as u:
        for i, k in enumerate(hashes):
            assert u.cmd("HSET", k, "f", str(i), "g", "x") == 2
        assert u.cmd("ZADD", z, "2.5", "m") == 1
    cmds = [("HGETALL", k) for k in hashes] + [("ZSCORE", z, "m"), ("HGETALL", tagged_key(slot, "none"))]
    want = direct(cl, 3, cmds)
    assert want[0][:1] == b"%" and want[-2][:1] == b"," and want[-1] == b"%0\r\n"
    c3 = hello3(d)
    assert [raw_cmd(c3, *cmd) for cmd in cmds] == want
    before = int(info(d)["upstream_redirects"])

    dst = [m for m in cl.masters() if m.port != src.port][0]
    cl.begin_migration(slot, dst)
    cl.migrate_keys(slot, src, dst, keys=hashes[:3] + [z])      # the source answers ASK for these
    assert [raw_cmd(c3, *cmd) for cmd in cmds] == want, "during the migration"
    c3.send(b"".join(encode_command(*cmd) for cmd in cmds))
    assert [raw_reply(c3) for _ in cmds] == want, "pipelined during the migration"
    asks = int(info(d)["upstream_redirects"])
    assert asks >= before + 8, (before, asks)

    cl.migrate_keys(slot, src, dst)
    cl.finish_migration(slot, dst)
    # the proxy's map still says src: MOVED, followed to dst's RESP3 connection
    assert [raw_cmd(c3, *cmd) for cmd in cmds] == want, "after the migration"
    assert int(info(d)["upstream_redirects"]) > asks
    assert wait_until(lambda: raw_cmd(c3, "ZSCORE", z, "m") == want[-2], 5)
    # a RESP2 client reads the same data in RESP2
    c2 = d.conn()
    assert raw_cmd(c2, "ZSCORE", z, "m") == b"$3\r\n2.5\r\n"


def test_resp3_client_order_across_both_sets(start_daemon, cl):
    """Own commands of encoded values (SET / GET / DEL on RESP2 connections) and forwarded ones (HSET /
    HGETALL on RESP3 connections), pipelined by one RESP3 client over keys of several nodes, answer in
    order and run in order."""
    cl.flushall()
    d = proxy(start_daemon, cl, "zstd://")
    c = hello3(d)
    tags = ["a", "b", "c", "d"]
    assert len({cl.node_for_key("{%s}" % t).port for t in tags}) >= 2
    rounds = 25
    cmds, want = [], []
    for i in range(rounds):
        for t in tags:
            h, sv = "{%s}o" % t, "{%s}sv" % t
            g = str(i).encode()
            v = b"$%d\r\n%s\r\n" % (len(g), g)
            cmds += [("HSET", h, "f", str(i)), ("DEL", h), ("HGETALL", h), ("HSET", h, "g", str(i)),
                     ("HGETALL", h), ("SET", sv, str(i)), ("GET", sv), ("HGETALL", sv), ("DEL", h)]
            want += [b":1\r\n", b":1\r\n", b"%0\r\n", b":1\r\n", b"%1\r\n$1\r\ng\r\n" + v, b"+OK\r\n", v,
                     None, b":1\r\n"]
    c.send(b"".join(encode_command(*cmd) for cmd in cmds))
    got = [raw_reply(c) for _ in cmds]
    for k, (cmd, g, w) in enumerate(zip(cmds, got, want)):
        if w is None:
            assert g.startswith(b"-WRONGTYPE"), (k, cmd, g)
        else:
            assert g == w, (k, cmd, g, w)
    # stored encoded on the key's master
    with cl.node_for_key("{a}sv").conn() as u:
        assert u.cmd("GET", "{a}sv") != str(rounds - 1).encode()
    assert key_slot("{a}sv") == key_slot("{a}o")


def test_resp3_transactions_and_pins_with_a_cluster(start_daemon, cl):
    """MULTI ... EXEC of a RESP3 client runs on its slot master's RESP3 connection: EXEC's array is the
    master's own RESP3 bytes (maps, doubles, nulls, WRONGTYPE), with cachetoryd's own members decoded in
    place; a RESP2 client's stays RESP2. WATCH and blocking commands are refused (no dedicated connections
    with a cluster); forwarded commands after them are RESP3 again."""
    fill(cl)
    d = proxy(start_daemon, cl, "null://")
    h, z, s = (tagged_key(777, n) for n in ("h", "z", "s"))
    node = cl.node_for_key(h)
    with node.conn() as u:
        assert u.cmd("HSET", h, "f1", "v1", "f2", "v2") == 2 and u.cmd("ZADD", z, "1.5", "a") == 1
        assert u.cmd("SADD", s, "x") == 1
    tx = [("MULTI",), ("HGETALL", h), ("ZSCORE", z, "a"), ("ZRANGE", z, "0", "-1", "WITHSCORES"),
          ("HGET", h, "missing"), ("GET", tagged_key(777, "nokey")), ("HGETALL", s), ("EXEC",)]
    for proto in (3, 2):
        with node.conn() as u:
            if proto == 3:
                assert raw_cmd(u, "HELLO", "3")[:1] == b"%"
            want = [raw_cmd(u, *cmd) for cmd in tx]
        c = hello3(d) if proto == 3 else d.conn()
        got = [raw_cmd(c, *cmd) for cmd in tx]
        assert got == want, (proto, got, want)
        if proto == 3:
            assert b"%2\r\n" in want[-1] and b",1.5\r\n" in want[-1] and b"_\r\n" in want[-1]
        else:
            assert b"%" not in want[-1] and b"$3\r\n1.5\r\n" in want[-1]
        c.close()
    c = hello3(d)
    want3 = direct(cl, 3, [("HGETALL", KEYS["h"])])[0]
    assert raw_cmd(c, "WATCH", KEYS["h"]).startswith(b"-ERR dedicated upstream connections are not available")
    assert raw_cmd(c, "BLPOP", "nolist", "1").startswith(b"-ERR dedicated upstream connections")
    assert raw_cmd(c, "HGETALL", KEYS["h"]) == want3


def test_resp3_redirected_command_does_not_stall_the_order_guard(start_daemon, cl):
    """An own command told ASK comes back behind the client's later commands on the node it is sent to,
    while a forwarded command between them waits for that node's RESP3 connection to be made: all of
    them answer, in the client's order (the guard ignores the redirected one)."""
    cl.flushall()
    d = proxy(start_daemon, cl, "zstd://")
    slot = 777
    k = tagged_key(slot, "k")
    src = cl.node_for_slot(slot)
    dst = [m for m in cl.masters() if m.port != src.port][0]
    other = [s for s in range(0, 16384, 97) if cl.node_for_slot(s) is dst and s != slot][0]
    k2, k3 = tagged_key(other, "h"), tagged_key(other, "s")
    with d.conn() as c2:
        assert c2.cmd("SET", k, "moved value") == "OK" and c2.cmd("SET", k3, "three") == "OK"
    with dst.conn() as u:
        assert u.cmd("HSET", k2, "f", "v") == 1
    want_h = direct(cl, 3, [("HGETALL", k2)])[0]
    cl.begin_migration(slot, dst)
    cl.migrate_keys(slot, src, dst, keys=[k])                   # the source answers ASK for it
    try:
        c = hello3(d)
        cmds = [("GET", k), ("HGETALL", k2), ("GET", k3), ("GET", k), ("HGETALL", k2)]
        c.send(b"".join(encode_command(*cmd) for cmd in cmds))
        got = [raw_reply(c) for _ in cmds]
        assert got == [b"$11\r\nmoved value\r\n", want_h, b"$5\r\nthree\r\n", b"$11\r\nmoved value\r\n",
                       want_h], got
    finally:
        cl.migrate_keys(slot, src, dst)
        cl.finish_migration(slot, dst)


def test_reload_frees_every_nodes_resp3_set(start_daemon, cl, tmp_path):
    """SIGHUP with another seed list makes a new backend, whose nodes get their own RESP3 sets; the old
    backend's (in use) close with it. A seed list that fails half way leaves nothing behind on the loop
    (its first node's connections were never on it) and changes nothing."""
    import signal
    import time
    fill(cl)
    conf = tmp_path / "c.conf"
    conf.write_text("backend = %s\npassthrough = yes\n" % cl.seed_url())
    d = start_daemon(config_file=conf)
    want = direct(cl, 3, COMMANDS[:4])
    c = hello3(d)
    assert [raw_cmd(c, *cmd) for cmd in COMMANDS[:4]] == want

    def sighup(expect):
        # the backend replaced by the previous reload may still be finishing (at most the command timeout)
        busy = "reload again shortly"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            n, b = d.log_tail(100000).count(expect), d.log_tail(100000).count(busy)
            d.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda: d.log_tail(100000).count(expect) > n or d.log_tail(100000).count(busy) > b,
                              5), d.log_tail()
            if d.log_tail(100000).count(expect) > n:
                return
            time.sleep(0.2)         # the retry interval of a refused reload
        raise AssertionError(d.log_tail())

    conf.write_text("backend = %s\npassthrough = yes\n" % cl.seed_url(nodes=list(reversed(cl.masters()))))
    sighup("reload: backend is now")
    c2 = hello3(d)
    assert [raw_cmd(c2, *cmd) for cmd in COMMANDS[:4]] == want
    assert int(info(d)["upstream_resp3_connections_ready"]) >= 2
    conf.write_text("backend = %s,127.0.0.1:notaport\npassthrough = yes\n" % cl.seed_url())
    sighup("is not host:port")
    # said once, with what stays, and not as an option that needs a restart
    assert wait_until(lambda: "the upstream stays '" in d.log_tail(100000), 5), d.log_tail()
    assert "needs a restart" not in d.log_tail(100000), d.log_tail()
    c3 = hello3(d)
    assert [raw_cmd(c3, *cmd) for cmd in COMMANDS[:4]] == want
    assert [raw_cmd(c, *cmd) for cmd in COMMANDS[:4]] == want
    assert d.alive()
