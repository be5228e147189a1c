"""The wire protocol on raw sockets: protocol errors (exact text, then the connection is closed), inline
commands, split input, and deep pipelining."""
import socket
import time

import pytest

from helpers import Err, encode_command


def _error_then_close(srv, payload, expected):
    c = srv.conn()
    c.send(payload)
    got = c.read_until_close(timeout=5)
    assert got == expected
    return c


@pytest.mark.parametrize("payload,expected", [
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*3000000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\nxyz\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
    (b"*1\r\n:5\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$600000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b'SET a "b\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"SET a 'b\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b'SET a "b"c\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    (b"*1\r\n$" + b"1" * 70000, b"-ERR Protocol error: too big bulk count string\r\n"),
], ids=["multibulk-abc", "multibulk-huge", "expected-dollar", "expected-dollar-colon", "bulk-negative",
        "bulk-abc", "bulk-minus-one", "bulk-over-max", "unbalanced-double", "unbalanced-single",
        "quote-then-char", "inline-too-big", "bulk-count-too-big"])
def test_protocol_errors_close_connection(srv, payload, expected):
    _error_then_close(srv, payload, expected)


def test_replies_before_protocol_error_are_delivered(srv):
    # the good commands in front of the bad one are answered, then the error, then the close
    _error_then_close(srv, b"SET a 1\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
                      b"+OK\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n")


def test_daemon_survives_protocol_errors(srv):
    for _ in range(20):
        _error_then_close(srv, b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n")
    c = srv.conn()
    assert c.cmd("PING") == "PONG"


def test_incomplete_command_waits(c):
    c.send(b"*1\r\nx")   # no line end yet: redis waits for more, no reply, no close
    assert c.read_available(0.3) == b""
    c.send(b"yz\r\n")     # now the line is complete and wrong
    assert c.read_until_close(timeout=5) == b"-ERR Protocol error: expected '$', got 'x'\r\n"


def test_incomplete_bulk_waits(c):
    c.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel")
    assert c.read_available(0.3) == b""
    c.send(b"lo\r\n")
    assert c.read_reply() == b"hello"


def test_inline_commands(c):
    c.send(b"PING\r\n")
    assert c.read_exact_bytes(7) == b"+PONG\r\n"
    c.send(b'SET a "b c"\r\n')
    assert c.read_exact_bytes(5) == b"+OK\r\n"
    c.send(b"GET a\r\n")
    assert c.read_exact_bytes(9) == b"$3\r\nb c\r\n"
    c.send(b"PING\n")        # bare LF
    assert c.read_exact_bytes(7) == b"+PONG\r\n"
    c.send(b"   ECHO    x   \r\n")
    assert c.read_exact_bytes(7) == b"$1\r\nx\r\n"
    c.send(b'ECHO "a\\x41\\n"\r\n')
    assert c.read_exact_bytes(9) == b"$3\r\naA\n\r\n"
    c.send(b"ECHO 'it\\'s'\r\n")
    assert c.read_exact_bytes(10) == b"$4\r\nit's\r\n"
    c.send(b'SET "" empty\r\nGET ""\r\n')
    assert c.read_exact_bytes(16) == b"+OK\r\n$5\r\nempty\r\n"


def test_empty_lines_and_empty_multibulk_are_ignored(c):
    c.send(b"\r\n\r\n*0\r\n*-1\r\nPING\r\n")
    assert c.read_exact_bytes(7) == b"+PONG\r\n"
    assert c.read_available(0.2) == b""


def test_empty_command_name(c):
    c.send(b"*1\r\n$0\r\n\r\n")
    assert c.read_reply() == Err("ERR unknown command '', with args beginning with: ")
    assert c.cmd("PING") == "PONG"


def test_command_split_byte_by_byte(c):
    payload = encode_command("SET", "split", "x" * 100) + encode_command("GET", "split")
    for i in range(len(payload)):
        c.send(payload[i:i + 1])
        if i % 40 == 0:
            time.sleep(0.001)
    assert c.read_reply() == "OK"
    assert c.read_reply() == b"x" * 100


def test_large_bulk_in_chunks(c):
    val = b"y" * (3 << 20)
    payload = encode_command("SET", "big", val)
    for i in range(0, len(payload), 65536):
        c.send(payload[i:i + 65536])
    assert c.read_reply() == "OK"
    assert c.cmd("STRLEN", "big") == len(val)


def test_deep_pipeline(c):
    n = 10000
    cmds = []
    for i in range(n // 2):
        cmds.append(("SET", "pk:%d" % i, "value-%d" % i))
        cmds.append(("GET", "pk:%d" % i))
    t0 = time.monotonic()
    c.send(b"".join(encode_command(*x) for x in cmds))
    replies = [c.read_reply() for _ in cmds]
    assert time.monotonic() - t0 < 30
    for i in range(n // 2):
        assert replies[2 * i] == "OK"
        assert replies[2 * i + 1] == ("value-%d" % i).encode()


def test_deep_pipeline_order_incr(c):
    n = 10000
    c.send(b"INCR counter\r\n" * n)
    for i in range(1, n + 1):
        assert c.read_reply() == i


def test_pipeline_mixed_inline_and_multibulk(c):
    c.send(b"SET a 1\r\n" + encode_command("INCR", "a") + b"GET a\r\n" + encode_command("PING"))
    assert [c.read_reply() for _ in range(4)] == ["OK", 2, b"2", "PONG"]


def test_client_closing_mid_command(srv):
    # a client that goes away in the middle of a command does not disturb the daemon
    for _ in range(20):
        s = socket.create_connection(srv.addr, timeout=5)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
        s.close()
    c = srv.conn()
    assert c.cmd("EXISTS", "k") == 0
    assert c.cmd("PING") == "PONG"


def test_client_reset_connection(srv):
    import struct
    for _ in range(10):
        s = socket.create_connection(srv.addr, timeout=5)
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n" * 100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()   # RST
    c = srv.conn()
    assert c.cmd("PING") == "PONG"
