"""Proxy mode, RESP3 clients: a forwarded command's reply reaches a client that said HELLO 3 in RESP3, byte
for byte as redis-server itself sends it to a RESP3 connection (maps, sets, doubles, nulls, nested
replies, errors), on upstream connections opened with HELLO 3 (INFO upstream_resp3_*). RESP2 clients
are unchanged, a client's commands keep their order across the two kinds of connection, and the RESP3
connections are made again after the upstream restarts."""
import pytest

from helpers import encode_command
from upstream_support import proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

BLOBS = (b"$", b"!", b"=")
AGGREGATES = (b"*", b"~", b">")
PAIRS = (b"%", b"|")


def raw_reply(c):
    """One reply's bytes exactly as they came (RESP2 or RESP3, nested, attributes included)."""
    line = c._line()
    out = line + b"\r\n"
    t, rest = line[:1], line[1:]
    if t in BLOBS:
        n = int(rest)
        if n >= 0:
            out += c.read_exact_bytes(n + 2)
    elif t in AGGREGATES or t in PAIRS:
        n = int(rest)
        for _ in range(max(n, 0) * (2 if t in PAIRS else 1)):
            out += raw_reply(c)
        if t == b"|":
            out += raw_reply(c)     # the value the attribute describes
    return out


def raw_cmd(c, *args):
    c.send(encode_command(*args))
    return raw_reply(c)


COMMANDS = [
    ("HGETALL", "h"),
    ("HRANDFIELD", "h1", "1", "WITHVALUES"),
    ("ZSCORE", "z", "a"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ("SMEMBERS", "s"),
    ("XINFO", "STREAM", "st"),
    ("XRANGE", "st", "-", "+"),
    ("HGET", "h", "missing"),
    ("HGETALL", "s"),                       # WRONGTYPE
    ("ZINCRBY", "z", "0", "b"),             # a double from a write
    ("HEXISTS", "h", "f1"),
    ("SISMEMBER", "s", "nope"),
]


def fill(up):
    with up.conn() as u:
        u.cmd("FLUSHALL")
        assert u.cmd("HSET", "h", "f1", "v1", "f2", "v2") == 2
        assert u.cmd("HSET", "h1", "only", "value") == 1
        assert u.cmd("ZADD", "z", "1.5", "a", "2", "b") == 2
        assert u.cmd("SADD", "s", "x", "y", "z") == 3
        assert u.cmd("XADD", "st", "1-1", "a", "1") == b"1-1"
        assert u.cmd("XADD", "st", "2-1", "b", "2") == b"2-1"


def direct(up, proto, commands):
    with up.conn() as u:
        if proto == 3:
            assert raw_cmd(u, "HELLO", "3")[:1] == b"%"
        return [raw_cmd(u, *cmd) for cmd in commands]


def resp3_info(d):
    with d.conn() as c:
        text = c.cmd("INFO", "upstream").decode()
    out = {}
    for line in text.split("\r\n"):
        if line.startswith("upstream_resp3_"):
            k, v = line.split(":", 1)
            out[k[len("upstream_resp3_"):]] = int(v)
    assert set(out) >= {"connections", "connections_ready", "commands_in_flight"}, text
    return out


@pytest.mark.parametrize("serializer", ["zstd://", "null://"])
def test_resp3_replies_are_redis_own_bytes(start_daemon, upstreams, serializer):
    up = upstreams()
    d = proxy(start_daemon, up, serializer, passthrough="yes")
    fill(up)
    want3 = direct(up, 3, COMMANDS)
    want2 = direct(up, 2, COMMANDS)
    # what the comparison covers: RESP3 shapes that differ from RESP2
    assert want3[0][:1] == b"%" and want2[0][:1] == b"*"
    assert want3[2][:1] == b"," and want3[4][:1] == b"~" and want3[7] == b"_\r\n"
    assert want3[8].startswith(b"-WRONGTYPE")
    assert resp3_info(d)["connections"] == 0        # made on first use
    c3 = d.conn()
    assert raw_cmd(c3, "HELLO", "3")[:1] == b"%"
    got3 = [raw_cmd(c3, *cmd) for cmd in COMMANDS]
    for cmd, g, w in zip(COMMANDS, got3, want3):
        assert g == w, (cmd, g, w)
    info = resp3_info(d)
    assert info["connections"] >= 1 and info["connections_ready"] >= 1, info
    # a RESP2 client still gets RESP2 from the RESP2 connections
    c2 = d.conn()
    got2 = [raw_cmd(c2, *cmd) for cmd in COMMANDS]
    for cmd, g, w in zip(COMMANDS, got2, want2):
        assert g == w, (cmd, g, w)
    # the client's own commands are answered by cachetoryd in its protocol, next to forwarded ones
    assert raw_cmd(c3, "GET", "nokey") == b"_\r\n"
    assert raw_cmd(c2, "GET", "nokey") == b"$-1\r\n"


def test_resp3_client_order_across_connections(start_daemon, upstreams):
    """HSET / HGETALL go on a RESP3 connection, DEL on a RESP2 one: pipelined, they still run in order."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes")
    c = d.conn()
    assert raw_cmd(c, "HELLO", "3")[:1] == b"%"
    rounds = 50
    cmds = []
    for i in range(rounds):
        cmds += [("HSET", "o", "f", str(i)), ("DEL", "o"), ("HGETALL", "o"), ("HSET", "o", "g", str(i)),
                 ("HGETALL", "o"), ("SET", "sv", str(i)), ("GET", "sv")]
    c.send(b"".join(encode_command(*cmd) for cmd in cmds))
    got = [raw_reply(c) for _ in cmds]
    for i in range(rounds):
        r = got[i * 7:(i + 1) * 7]
        g = str(i).encode()
        assert r == [b":1\r\n", b":1\r\n", b"%0\r\n", b":1\r\n",
                     b"%1\r\n$1\r\ng\r\n$" + str(len(g)).encode() + b"\r\n" + g + b"\r\n",
                     b"+OK\r\n", b"$" + str(len(g)).encode() + b"\r\n" + g + b"\r\n"], (i, r)
        assert raw_cmd(c, "DEL", "o") in (b":1\r\n", b":0\r\n")


def test_resp3_connections_reconnect_after_upstream_restart(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_retry_max="200")
    fill(up)
    c = d.conn()
    assert raw_cmd(c, "HELLO", "3")[:1] == b"%"
    want = direct(up, 3, COMMANDS[:3])
    assert [raw_cmd(c, *cmd) for cmd in COMMANDS[:3]] == want
    up.stop()
    up.start()
    fill(up)

    def answers():
        try:
            return raw_cmd(d.conn(), "HELLO", "3")[:1] == b"%" and raw_cmd(c, *COMMANDS[0]) == want[0]
        except Exception:
            return False

    # the first commands after the restart may fail with the upstream's error; then they are answered
    assert wait_for(answers, 10)
    assert [raw_cmd(c, *cmd) for cmd in COMMANDS[:3]] == want
    info = resp3_info(d)
    assert info["connections_ready"] >= 1, info


@pytest.mark.parametrize("user", [None, "app"])
def test_resp3_connections_authenticate_and_select(start_daemon, upstreams, user):
    """HELLO 3 AUTH (the default user, or the URL's) replaces AUTH; the URL's database and a client's SELECT
    apply on the RESP3 connections as on the others."""
    up = upstreams(password="s3cret")
    if user:
        with up.conn() as u:
            assert u.cmd("ACL", "SETUSER", user, "on", ">apppass", "~*", "+@all") == "OK"
    url = up.url(db=2, user=user, password="apppass" if user else "s3cret")
    d = proxy(start_daemon, up, "zstd://", url=url, passthrough="yes")
    for db in (2, 5):
        with up.conn(db=db) as u:
            assert u.cmd("HSET", "h", "db", str(db)) == 1
    c = d.conn()
    assert raw_cmd(c, "HELLO", "3")[:1] == b"%"
    assert raw_cmd(c, "HGETALL", "h") == b"%1\r\n$2\r\ndb\r\n$1\r\n2\r\n"
    assert raw_cmd(c, "SELECT", "5") == b"+OK\r\n"
    assert raw_cmd(c, "HGETALL", "h") == b"%1\r\n$2\r\ndb\r\n$1\r\n5\r\n"
    assert raw_cmd(c, "SELECT", "0") == b"+OK\r\n"
    assert raw_cmd(c, "HGETALL", "h") == b"%0\r\n"
    assert resp3_info(d)["connections_ready"] >= 1


NULL_ARRAYS = [
    ("XREAD", "COUNT", "1", "STREAMS", "nostream", "0"),    # *-1: nothing to read
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),
    ("GEOPOS", "g", "Palermo", "nowhere"),                   # an element *-1
    ("LPOS", "nolist", "x"),                                  # $-1
    ("MULTI",),
    ("BLPOP", "nolist", "1"),                                 # inside MULTI: *-1 at once
    ("XREAD", "STREAMS", "nostream", "0"),
    ("EXEC",),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_null_arrays_stay_null_arrays(start_daemon, upstreams, proto):
    """Redis answers a null array (*-1 in RESP2) where a list reply has none: XREAD with nothing new, GEOPOS
    of a missing member, BLPOP that timed out. hiredis reads *-1 and $-1 as one nil; a forwarded reply
    must keep which it was, in and out of MULTI ... EXEC."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes")
    fill(up)
    want = direct(up, proto, NULL_ARRAYS)
    assert want[0] == (b"*-1\r\n" if proto == 2 else b"_\r\n")
    c = d.conn()
    if proto == 3:
        assert raw_cmd(c, "HELLO", "3")[:1] == b"%"
    fill(up)
    got = [raw_cmd(c, *cmd) for cmd in NULL_ARRAYS]
    for cmd, g, w in zip(NULL_ARRAYS, got, want):
        assert g == w, (cmd, g, w)
