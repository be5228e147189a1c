"""MULTI / EXEC / DISCARD."""
from helpers import Err

EXECABORT = Err("EXECABORT Transaction discarded because of previous errors.")


def test_multi_exec(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "a", "1") == "QUEUED"
    assert c.cmd("INCR", "a") == "QUEUED"
    assert c.cmd("GET", "a") == "QUEUED"
    assert c.cmd("GET", "missing") == "QUEUED"
    assert c.cmd("MGET", "a", "missing") == "QUEUED"
    assert c.cmd("EXEC") == ["OK", 2, b"2", None, [b"2", None]]
    assert c.cmd("GET", "a") == b"2"


def test_empty_transaction(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("EXEC") == []


def test_raw_bytes_of_queued_and_exec(c):
    c.send(b"MULTI\r\nSET k v\r\nGET k\r\nEXEC\r\n")
    expected = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\nv\r\n"
    assert c.read_exact_bytes(len(expected)) == expected


def test_queued_commands_not_visible_before_exec(srv, c):
    other = srv.conn()
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "k", "v") == "QUEUED"
    assert other.cmd("GET", "k") is None
    assert c.cmd("EXEC") == ["OK"]
    assert other.cmd("GET", "k") == b"v"


def test_runtime_error_inside_exec(c):
    c.cmd("SET", "s", "notanumber")
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("INCR", "s") == "QUEUED"
    assert c.cmd("SET", "b", "1") == "QUEUED"
    assert c.cmd("INCRBYFLOAT", "s", "1") == "QUEUED"
    assert c.cmd("SET", "x", "1", "EX", 0) == "QUEUED"   # argument errors found at run time
    assert c.cmd("RENAME", "nokey", "y") == "QUEUED"
    assert c.cmd("INCR", "b") == "QUEUED"
    assert c.cmd("EXEC") == [
        Err("ERR value is not an integer or out of range"),
        "OK",
        Err("ERR value is not a valid float"),
        Err("ERR invalid expire time in 'set' command"),
        Err("ERR no such key"),
        2,
    ]
    # the other commands were applied
    assert c.cmd("GET", "b") == b"2"
    assert c.cmd("GET", "s") == b"notanumber"


def test_execabort_unknown_command(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "a", "1") == "QUEUED"
    assert c.cmd("NOSUCHCMD", "x") == Err("ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ")
    assert c.cmd("SET", "b", "1") == "QUEUED"
    assert c.cmd("EXEC") == EXECABORT
    assert c.cmd("EXISTS", "a", "b") == 0
    # the transaction is over
    assert c.cmd("EXEC") == Err("ERR EXEC without MULTI")


def test_execabort_wrong_arity(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("INCR", "a") == "QUEUED"
    assert c.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")
    assert c.cmd("EXEC") == EXECABORT
    assert c.cmd("GET", "a") is None


def test_nested_multi(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "a", "1") == "QUEUED"
    assert c.cmd("MULTI") == Err("ERR MULTI calls can not be nested")
    # the nested MULTI does not abort the transaction
    assert c.cmd("EXEC") == ["OK"]
    assert c.cmd("GET", "a") == b"1"


def test_exec_discard_without_multi(c):
    assert c.cmd("EXEC") == Err("ERR EXEC without MULTI")
    assert c.cmd("DISCARD") == Err("ERR DISCARD without MULTI")


def test_discard(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "a", "1") == "QUEUED"
    assert c.cmd("DISCARD") == "OK"
    assert c.cmd("GET", "a") is None
    assert c.cmd("EXEC") == Err("ERR EXEC without MULTI")
    # DISCARD also clears the error state of an aborted transaction
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("NOPE") == Err("ERR unknown command 'NOPE', with args beginning with: ")
    assert c.cmd("DISCARD") == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "a", "2") == "QUEUED"
    assert c.cmd("EXEC") == ["OK"]


def test_select_inside_transaction(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SELECT", 1) == "QUEUED"
    assert c.cmd("SET", "k", "db1") == "QUEUED"
    assert c.cmd("EXEC") == ["OK", "OK"]
    # the SELECT stays in effect after EXEC
    assert c.cmd("GET", "k") == b"db1"
    assert c.cmd("SELECT", 0) == "OK"
    assert c.cmd("GET", "k") is None


def test_large_transaction(c):
    assert c.cmd("MULTI") == "OK"
    replies = c.pipeline([("INCR", "n") for _ in range(1000)])
    assert replies == ["QUEUED"] * 1000
    assert c.cmd("EXEC") == list(range(1, 1001))
