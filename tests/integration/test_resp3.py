"""RESP3 through HELLO, checked on the raw bytes (the installed redis-py 4.3 has no RESP3 support)."""
import re

from helpers import Err, Verbatim, parse_reply_bytes


def hello_fields():
    return [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]


def read_raw(c, n_replies=1):
    """The raw bytes of the next n replies (parsed to find where they end)."""
    start = c.pos
    for _ in range(n_replies):
        c.read_reply()
    return bytes(c.buf[start:c.pos])


def test_hello3_returns_map(c):
    my_id = c.cmd("CLIENT", "ID")
    c.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
    raw = read_raw(c)
    assert raw.startswith(b"%7\r\n$6\r\nserver\r\n")
    m = parse_reply_bytes(raw)
    assert isinstance(m, dict)
    assert list(m.keys()) == hello_fields()
    # cachetoryd may name itself here; redis says "redis"
    assert isinstance(m[b"server"], bytes) and m[b"server"]
    assert re.match(rb"^7\.\d+\.\d+$", m[b"version"]), m[b"version"]
    assert m[b"proto"] == 3
    assert m[b"id"] == my_id
    assert m[b"mode"] == b"standalone"
    assert m[b"role"] == b"master"
    assert m[b"modules"] == []
    assert b":3\r\n" in raw and b"$2\r\nid\r\n:%d\r\n" % my_id in raw


def test_hello_without_version_in_resp2(c):
    r = c.cmd("HELLO")
    assert isinstance(r, list) and len(r) == 14
    assert r[0::2] == hello_fields()
    assert r[5] == 2


def test_null_replies_in_resp3(c):
    c.cmd("HELLO", 3)
    c.send(b"GET missing\r\n")
    assert read_raw(c) == b"_\r\n"
    c.cmd("SET", "a", "x")
    c.send(b"MGET a missing\r\n")
    assert read_raw(c) == b"*2\r\n$1\r\nx\r\n_\r\n"
    c.send(b"SET a y NX\r\n")
    assert read_raw(c) == b"_\r\n"
    c.send(b"GETDEL nokey\r\n")
    assert read_raw(c) == b"_\r\n"
    c.send(b"RANDOMKEY\r\n")
    assert read_raw(c) in (b"$1\r\na\r\n",)
    c.send(b"CLIENT GETNAME\r\n")
    assert read_raw(c) == b"_\r\n"
    # integers, simple strings, bulk strings are unchanged
    c.send(b"INCR n\r\nPING\r\nGET a\r\nINCRBYFLOAT f 1.5\r\n")
    assert read_raw(c, 4) == b":1\r\n+PONG\r\n$1\r\nx\r\n$3\r\n1.5\r\n"


def test_config_get_is_a_map_in_resp3(c):
    c.cmd("HELLO", 3)
    c.send(b"CONFIG GET maxmemory\r\n")
    assert read_raw(c) == b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    c.send(b"CONFIG GET no-such-option\r\n")
    assert read_raw(c) == b"%0\r\n"


def test_info_is_verbatim_in_resp3(c):
    c.cmd("HELLO", 3)
    c.send(b"INFO server\r\n")
    raw = read_raw(c)
    assert raw.startswith(b"=") and b"\r\ntxt:# Server\r\n" in raw
    v = parse_reply_bytes(raw)
    assert isinstance(v, Verbatim) and v.fmt == "txt" and "redis_version:" in v


def test_command_docs_is_a_map_in_resp3(c):
    c.cmd("HELLO", 3)
    r = c.cmd("COMMAND", "DOCS", "get")
    assert isinstance(r, dict) and list(r) == [b"get"]
    assert isinstance(r[b"get"], dict) and r[b"get"][b"summary"]


def test_transactions_in_resp3(c):
    c.cmd("HELLO", 3)
    c.send(b"MULTI\r\nGET missing\r\nSET k v\r\nEXEC\r\n")
    assert read_raw(c, 4) == b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n_\r\n+OK\r\n"


def test_back_to_resp2(c):
    c.cmd("HELLO", 3)
    c.send(b"HELLO 2\r\n")
    raw = read_raw(c)
    assert raw.startswith(b"*14\r\n$6\r\nserver\r\n")
    assert b"$5\r\nproto\r\n:2\r\n" in raw
    c.send(b"GET missing\r\n")
    assert read_raw(c) == b"$-1\r\n"
    c.send(b"CONFIG GET maxmemory\r\n")
    assert read_raw(c) == b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"


def test_hello_errors(c):
    c.send(b"HELLO 4\r\n")
    assert read_raw(c) == b"-NOPROTO unsupported protocol version\r\n"
    assert c.cmd("HELLO", 1) == Err("NOPROTO unsupported protocol version")
    assert c.cmd("HELLO", 0) == Err("NOPROTO unsupported protocol version")
    assert c.cmd("HELLO", "abc") == Err("ERR Protocol version is not an integer or out of range")
    assert c.cmd("HELLO", 3, "FOO") == Err("ERR Syntax error in HELLO option 'FOO'")
    assert c.cmd("HELLO", 3, "SETNAME") == Err("ERR Syntax error in HELLO option 'SETNAME'")
    # a failed HELLO leaves the protocol as it was
    c.send(b"GET missing\r\n")
    assert read_raw(c) == b"$-1\r\n"


def test_hello_setname(c):
    r = c.cmd("HELLO", 3, "SETNAME", "resp3-client")
    assert isinstance(r, dict) and r[b"proto"] == 3
    assert c.cmd("CLIENT", "GETNAME") == b"resp3-client"
