"""Proxy mode, RESP3 clients inside MULTI ... EXEC and on dedicated connections: EXEC's array and the replies
on a pinned connection (WATCH, blocking commands) are byte for byte what redis-server sends a HELLO 3
client. Forwarded members keep their RESP3 shapes (maps, doubles, sets, nulls, errors) while cachetoryd's
own members (GET / MGET / SET of encoded values) are decoded; WATCH's aborted EXEC is RESP3's null; a
dedicated connection cleaned by RESET and reused still answers a RESP3 client in RESP3 and a RESP2 client
in RESP2, and a client that switches protocol while it holds one gets its new protocol at once. RESP2 clients
are unchanged."""
import pytest

from helpers import encode_command
from test_resp3_forwarded import raw_cmd, raw_reply
from upstream_support import proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

SERIALIZERS = ["zstd://", "null://"]

TX = [
    ("MULTI",),
    ("HSET", "h", "f1", "v1", "f2", "v2"),
    ("HGETALL", "h"),
    ("ZADD", "z", "1.5", "a", "2", "b"),
    ("ZSCORE", "z", "a"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ("SMEMBERS", "s"),
    ("GET", "sk"),                  # cachetoryd's own: decoded
    ("GET", "nokey"),
    ("MGET", "sk", "nokey"),
    ("HGET", "h", "nofield"),
    ("HGETALL", "s"),               # WRONGTYPE inside EXEC
    ("SET", "sk2", "written"),
    ("APPEND", "sk", " and more"),  # a read-modify-write of an encoded value inside: WATCH / GET first
    ("GET", "sk"),
    ("SELECT", "1"),
    ("HSET", "h", "db", "1"),
    ("HGETALL", "h"),
    ("SELECT", "0"),
    ("EXEC",),
    ("HGETALL", "h"),
    ("GET", "sk"),
]


def pipeline(c, commands):
    """Send every command at once, read each reply's bytes."""
    c.send(b"".join(encode_command(*cmd) for cmd in commands))
    return [raw_reply(c) for _ in commands]


def hello(c, proto):
    if proto == 3:
        assert raw_cmd(c, "HELLO", "3")[:1] == b"%"


def seed(up, d, c):
    """The same starting data upstream; sk written through cachetoryd (encoded) when c is given."""
    with up.conn() as u:
        u.cmd("FLUSHALL")
        assert u.cmd("SADD", "s", "x", "y", "z") == 3
        if c is None:
            assert u.cmd("SET", "sk", "value as written") == "OK"
    if c is not None:
        assert raw_cmd(c, "SET", "sk", "value as written") == b"+OK\r\n"


def redis_transcript(up, proto, commands, before=()):
    seed(up, None, None)
    with up.conn() as u:
        hello(u, proto)
        for cmd in before:
            raw_cmd(u, *cmd)
        return pipeline(u, commands)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_exec_array_is_redis_own_resp3_bytes(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    want3 = redis_transcript(up, 3, TX)
    want2 = redis_transcript(up, 2, TX)
    # what the comparison covers: RESP3 shapes in EXEC's array that RESP2 lacks
    ex = want3[-3]
    assert ex.startswith(b"*18\r\n") and b"%2\r\n" in ex and b",1.5\r\n" in ex and b"~3\r\n" in ex, ex
    assert b"-WRONGTYPE" in ex and b"_\r\n" in ex and b"%1\r\n$2\r\ndb\r\n$1\r\n1\r\n" in ex, ex
    assert want3[-1] == b"$25\r\nvalue as written and more\r\n"
    c3 = d.conn()
    hello(c3, 3)
    seed(up, d, c3)
    got3 = pipeline(c3, TX)
    assert got3 == want3, (got3[-3], want3[-3])
    if serializer == "zstd://":         # the GET inside went through the codec chain
        with up.conn() as u:
            assert u.cmd("GET", "sk") != b"value as written"
            assert u.cmd("GET", "sk2") != b"written"
    # a RESP2 client on the same daemon: unchanged
    c2 = d.conn()
    seed(up, d, c2)
    got2 = pipeline(c2, TX)
    assert got2 == want2, (got2[-3], want2[-3])


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_order_across_connections_around_exec(start_daemon, upstreams, serializer):
    """Own commands (the RESP2 connections) before and after a transaction with forwarded members (the
    RESP3 connection), pipelined: they run in the client's order."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    cmds = []
    for i in range(20):
        cmds += [("SET", "sk", "a%d" % i), ("MULTI",), ("HSET", "h", "f", str(i)), ("GET", "sk"),
                 ("SET", "sk", "b%d" % i), ("EXEC",), ("GET", "sk"), ("HGETALL", "h"), ("DEL", "h")]
    want = redis_transcript(up, 3, cmds)
    c = d.conn()
    hello(c, 3)
    seed(up, d, c)
    assert pipeline(c, cmds) == want


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_watch_exec_committed_and_aborted(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    other = d.conn()
    tx = [("MULTI",), ("SET", "k", "new"), ("HGETALL", "h"), ("ZSCORE", "z", "a"), ("GET", "k"), ("EXEC",)]

    def run(c, touch):
        """WATCH k, GET k, a forwarded read on the pinned connection, [another client writes k], MULTI ... EXEC"""
        out = [raw_cmd(c, "SET", "k", "old"), raw_cmd(c, "HSET", "h", "f", "v"), raw_cmd(c, "ZADD", "z", "0.25", "a"),
               raw_cmd(c, "WATCH", "k"), raw_cmd(c, "GET", "k"), raw_cmd(c, "HGETALL", "h")]
        if touch:
            touch()
        return out + pipeline(c, tx) + [raw_cmd(c, "GET", "k")]

    def direct(touched):
        seed(up, None, None)
        with up.conn() as u, up.conn() as w:
            hello(u, 3)
            return run(u, (lambda: w.cmd("SET", "k", "other")) if touched else None)

    for touched in (False, True):
        want = direct(touched)
        assert want[5] == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        if touched:
            assert want[-2] == b"_\r\n" and want[-1] == b"$5\r\nother\r\n"
        else:
            assert b"%1\r\n" in want[-2] and b",0.25\r\n" in want[-2] and want[-1] == b"$3\r\nnew\r\n"
        c = d.conn()
        hello(c, 3)
        seed(up, d, c)
        got = run(c, (lambda: raw_cmd(other, "SET", "k", "other")) if touched else None)
        assert got == want, (touched, got, want)
        c.close()


def test_blocking_commands_on_a_pinned_connection(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes")
    cmds = [("ZADD", "z", "1.5", "m", "2.75", "n"), ("BZPOPMIN", "z", "1"), ("BZPOPMAX", "z", "1"),
            ("RPUSH", "l", "a", "b"), ("BLPOP", "l", "1"), ("BRPOP", "l", "1"), ("BLPOP", "l", "0.05"),
            ("BZPOPMIN", "z", "0.05")]
    want = redis_transcript(up, 3, cmds)
    assert want[1] == b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n,1.5\r\n" and want[6] == b"_\r\n"
    c = d.conn()
    hello(c, 3)
    seed(up, d, c)
    assert [raw_cmd(c, *cmd) for cmd in cmds] == want
    # woken by another client's write
    c.send(encode_command("BZPOPMIN", "zw", "5"))
    other = d.conn()
    assert wait_for(lambda: any(f.get("cmd") == "bzpopmin" for f in up.clients_from()), 5)
    assert raw_cmd(other, "ZADD", "zw", "3.5", "w") == b":1\r\n"
    assert raw_reply(c) == b"*3\r\n$2\r\nzw\r\n$1\r\nw\r\n,3.5\r\n"
    # a RESP2 client: RESP2, as before
    c2 = d.conn()
    assert raw_cmd(c2, "ZADD", "z", "1.5", "m") == b":1\r\n"
    assert raw_cmd(c2, "BZPOPMIN", "z", "1") == b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$3\r\n1.5\r\n"
    assert raw_cmd(c2, "BLPOP", "l", "0.05") == b"*-1\r\n"


def test_reused_dedicated_connection_answers_in_each_clients_protocol(start_daemon, upstreams):
    """One dedicated connection: a RESP3 client's WATCH switches it to RESP3, RESET cleans it (back to
    RESP2) when UNWATCH hands it back, and the next pin gets each client's protocol again."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_dedicated_max=1)
    with up.conn() as u:
        assert u.cmd("HSET", "h", "f", "v") == 1
    m3, m2 = b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n", b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    c3, c2 = d.conn(), d.conn()
    hello(c3, 3)

    def idle():
        with d.conn() as c:
            text = c.cmd("INFO", "upstream").decode()
        return "upstream_dedicated_idle:1\r\n" in text

    for _ in range(2):
        assert raw_cmd(c3, "WATCH", "k") == b"+OK\r\n"
        assert raw_cmd(c3, "HGETALL", "h") == m3
        assert pipeline(c3, [("MULTI",), ("HGETALL", "h"), ("EXEC",)]) == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n" + m3]
        assert wait_for(idle, 5)        # EXEC handed it back: cleaned (RESET), then idle
        assert raw_cmd(c3, "WATCH", "k") == b"+OK\r\n"
        assert raw_cmd(c3, "HGETALL", "h") == m3     # RESP3 again on the cleaned connection
        assert raw_cmd(c3, "UNWATCH") == b"+OK\r\n"
        assert wait_for(idle, 5)
        assert raw_cmd(c2, "WATCH", "k") == b"+OK\r\n"
        assert raw_cmd(c2, "HGETALL", "h") == m2
        assert pipeline(c2, [("MULTI",), ("HGETALL", "h"), ("EXEC",)]) == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n" + m2]
        assert wait_for(idle, 5)
    with d.conn() as c:
        assert "upstream_dedicated_created:1\r\n" in c.cmd("INFO", "upstream").decode()


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_own_commands_on_a_pinned_resp3_connection(start_daemon, upstreams, serializer):
    """After WATCH and a forwarded command (the dedicated connection speaks RESP3 from then on),
    cachetoryd's own commands still read Redis's replies right: answered as Redis answers them."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    cmds = [("WATCH", "sk"), ("HGETALL", "h"), ("GET", "sk"), ("MGET", "sk", "nokey"), ("DBSIZE",),
            ("TYPE", "sk"), ("TYPE", "s"), ("KEYS", "sk*"), ("TTL", "sk"), ("EXISTS", "sk", "nokey"),
            ("INFO", "keyspace"), ("SET", "sk3", "x"), ("DEL", "sk3"), ("UNWATCH",)]
    want = redis_transcript(up, 3, cmds)
    assert want[10].startswith(b"=")        # a verbatim string
    c = d.conn()
    hello(c, 3)
    seed(up, d, c)
    got = [raw_cmd(c, *cmd) for cmd in cmds]
    assert got == want


def test_hello_switches_the_protocol_of_a_held_dedicated_connection(start_daemon, upstreams):
    """A client that says HELLO 2 (or HELLO 3 again) while it holds a dedicated connection (WATCH, before
    EXEC) gets every later reply in its new protocol, as from redis-server: forwarded commands, a blocking
    command's timeout, EXEC's array, and after UNWATCH."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_dedicated_max=1)
    steps = [("HSET", "h", "f1", "v1", "f2", "v2"), ("ZADD", "z", "1.5", "a"), ("WATCH", "k"), ("HGETALL", "h"),
             ("HELLO", "2"), ("HGETALL", "h"), ("ZSCORE", "z", "a"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
             ("BLPOP", "nolist", "0.05"), ("MULTI",), ("HGETALL", "h"), ("ZSCORE", "z", "a"), ("EXEC",),
             ("WATCH", "k"), ("HELLO", "3"), ("HGETALL", "h"), ("ZSCORE", "z", "a"), ("BLPOP", "nolist", "0.05"),
             ("HELLO", "2"), ("UNWATCH",), ("HGETALL", "h"), ("ZSCORE", "z", "a")]

    def run(c):
        hello(c, 3)
        return [raw_cmd(c, *cmd) for cmd in steps]

    seed(up, None, None)
    with up.conn() as u:
        want = run(u)
    assert want[5] == b"*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n" and want[8] == b"*-1\r\n"
    assert want[15][:1] == b"%" and want[16] == b",1.5\r\n" and want[17] == b"_\r\n"
    seed(up, None, None)
    c = d.conn()
    got = run(c)
    c.close()
    for i, cmd in enumerate(steps):
        if cmd[0] != "HELLO":           # HELLO's own reply names the server (version, id)
            assert got[i] == want[i], (i, cmd, got[i], want[i])


def test_resp3_client_watch_keeps_its_connection_in_resp3(start_daemon, upstreams):
    """WATCH is sent in the client's protocol: a RESP3 client alternating WATCH and forwarded reads on its
    dedicated connection costs no HELLO 2 / HELLO 3 round trips (counted by the upstream)."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_dedicated_max=1)
    with up.conn() as u:
        assert u.cmd("HSET", "h", "f", "v") == 1
    m3 = b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"

    def hellos():
        with up.conn() as u:
            stats = u.cmd("INFO", "commandstats").decode()
        line = [x for x in stats.split("\r\n") if x.startswith("cmdstat_hello:")]
        return int(line[0].split("calls=")[1].split(",")[0]) if line else 0

    c = d.conn()
    hello(c, 3)
    assert raw_cmd(c, "WATCH", "k") == b"+OK\r\n"
    assert raw_cmd(c, "HGETALL", "h") == m3
    before = hellos()
    for _ in range(5):
        assert raw_cmd(c, "WATCH", "k") == b"+OK\r\n"
        assert raw_cmd(c, "HGETALL", "h") == m3
    assert hellos() == before
    assert raw_cmd(c, "UNWATCH") == b"+OK\r\n"
    c.close()
