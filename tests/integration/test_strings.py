"""String commands: GET SET (all options) SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX APPEND
STRLEN GETRANGE SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT."""
import time

import pytest

from helpers import Err

NOT_INT = Err("ERR value is not an integer or out of range")
NOT_FLOAT = Err("ERR value is not a valid float")
SYNTAX = Err("ERR syntax error")
OVERFLOW = Err("ERR increment or decrement would overflow")
LLONG_MAX = 9223372036854775807
LLONG_MIN = -9223372036854775808


def test_get_set_basic(c):
    assert c.cmd("GET", "k") is None
    assert c.cmd("SET", "k", "v") == "OK"
    assert c.cmd("GET", "k") == b"v"
    assert c.cmd("SET", "k", "v2") == "OK"
    assert c.cmd("GET", "k") == b"v2"
    assert c.cmd("SET", "empty", "") == "OK"
    assert c.cmd("GET", "empty") == b""
    assert c.cmd("EXISTS", "empty") == 1


def test_binary_safe_keys_and_values(c):
    key = b"k\x00\r\n\xff"
    val = bytes(range(256)) * 4
    assert c.cmd("SET", key, val) == "OK"
    assert c.cmd("GET", key) == val
    assert c.cmd("GET", b"k") is None
    assert c.cmd("STRLEN", key) == 1024


def test_large_value(c):
    val = b"x" * (4 << 20) + b"end"
    assert c.cmd("SET", "big", val) == "OK"
    assert c.cmd("GET", "big") == val
    assert c.cmd("STRLEN", "big") == len(val)


def test_set_ex_px_exat_pxat(c):
    assert c.cmd("SET", "a", "v", "EX", 100) == "OK"
    assert 99 <= c.cmd("TTL", "a") <= 100
    assert c.cmd("SET", "b", "v", "PX", 100000) == "OK"
    assert 98000 <= c.cmd("PTTL", "b") <= 100000
    now = int(time.time())
    assert c.cmd("SET", "c", "v", "EXAT", now + 100) == "OK"
    assert 98 <= c.cmd("TTL", "c") <= 100
    assert c.cmd("EXPIRETIME", "c") == now + 100
    now_ms = int(time.time() * 1000)
    assert c.cmd("SET", "d", "v", "PXAT", now_ms + 100000) == "OK"
    assert c.cmd("PEXPIRETIME", "d") == now_ms + 100000
    assert 98000 <= c.cmd("PTTL", "d") <= 100000
    # lower-case options work as well
    assert c.cmd("set", "e", "v", "ex", 50) == "OK"
    assert 49 <= c.cmd("TTL", "e") <= 50


def test_set_exat_in_the_past_deletes(c):
    c.cmd("SET", "k", "old")
    assert c.cmd("SET", "k", "v", "EXAT", 1) == "OK"
    assert c.cmd("GET", "k") is None
    assert c.cmd("EXISTS", "k") == 0
    assert c.cmd("SET", "k2", "v", "PXAT", 1000) == "OK"
    assert c.cmd("EXISTS", "k2") == 0


def test_set_plain_removes_ttl(c):
    c.cmd("SET", "k", "v", "EX", 100)
    assert c.cmd("SET", "k", "v2") == "OK"
    assert c.cmd("TTL", "k") == -1


def test_set_keepttl(c):
    c.cmd("SET", "k", "v", "EX", 100)
    assert c.cmd("SET", "k", "v2", "KEEPTTL") == "OK"
    assert c.cmd("GET", "k") == b"v2"
    assert 99 <= c.cmd("TTL", "k") <= 100
    assert c.cmd("SET", "n", "v", "KEEPTTL") == "OK"
    assert c.cmd("TTL", "n") == -1


def test_set_nx_xx(c):
    assert c.cmd("SET", "k", "1", "NX") == "OK"
    assert c.cmd("SET", "k", "2", "NX") is None
    assert c.cmd("GET", "k") == b"1"
    assert c.cmd("SET", "k", "3", "XX") == "OK"
    assert c.cmd("GET", "k") == b"3"
    assert c.cmd("SET", "missing", "x", "XX") is None
    assert c.cmd("EXISTS", "missing") == 0
    assert c.cmd("SET", "k2", "v", "NX", "EX", 100) == "OK"
    assert 99 <= c.cmd("TTL", "k2") <= 100


def test_set_get_option(c):
    assert c.cmd("SET", "k", "1", "GET") is None
    assert c.cmd("GET", "k") == b"1"
    assert c.cmd("SET", "k", "2", "GET") == b"1"
    assert c.cmd("GET", "k") == b"2"
    assert c.cmd("SET", "k", "3", "GET", "EX", 100) == b"2"
    assert 99 <= c.cmd("TTL", "k") <= 100
    # NX GET (allowed since 7.0): returns the old value and does not set
    assert c.cmd("SET", "k", "4", "NX", "GET") == b"3"
    assert c.cmd("GET", "k") == b"3"
    assert c.cmd("SET", "new", "5", "NX", "GET") is None
    assert c.cmd("GET", "new") == b"5"
    # XX GET on a missing key
    assert c.cmd("SET", "nokey", "6", "XX", "GET") is None
    assert c.cmd("EXISTS", "nokey") == 0


def test_set_errors(c):
    bad_expire = Err("ERR invalid expire time in 'set' command")
    assert c.cmd("SET", "k", "v", "EX", 0) == bad_expire
    assert c.cmd("SET", "k", "v", "EX", -1) == bad_expire
    assert c.cmd("SET", "k", "v", "PX", 0) == bad_expire
    assert c.cmd("SET", "k", "v", "PX", -100) == bad_expire
    assert c.cmd("SET", "k", "v", "EXAT", 0) == bad_expire
    assert c.cmd("SET", "k", "v", "PXAT", -5) == bad_expire
    assert c.cmd("SET", "k", "v", "EX", LLONG_MAX) == bad_expire
    assert c.cmd("SET", "k", "v", "EX", "abc") == NOT_INT
    assert c.cmd("SET", "k", "v", "PX", "1.5") == NOT_INT
    assert c.cmd("SET", "k", "v", "EX") == SYNTAX
    assert c.cmd("SET", "k", "v", "NX", "XX") == SYNTAX
    assert c.cmd("SET", "k", "v", "EX", 10, "PX", 100) == SYNTAX
    assert c.cmd("SET", "k", "v", "KEEPTTL", "EX", 10) == SYNTAX
    assert c.cmd("SET", "k", "v", "EXAT", 10, "PXAT", 10) == SYNTAX
    assert c.cmd("SET", "k", "v", "FOO") == SYNTAX
    assert c.cmd("SET", "k") == Err("ERR wrong number of arguments for 'set' command")
    # nothing was stored by the failed commands
    assert c.cmd("EXISTS", "k") == 0


def test_setnx(c):
    assert c.cmd("SETNX", "k", "1") == 1
    assert c.cmd("SETNX", "k", "2") == 0
    assert c.cmd("GET", "k") == b"1"
    assert c.cmd("SETNX", "k") == Err("ERR wrong number of arguments for 'setnx' command")


def test_setex_psetex(c):
    assert c.cmd("SETEX", "k", 100, "v") == "OK"
    assert c.cmd("GET", "k") == b"v"
    assert 99 <= c.cmd("TTL", "k") <= 100
    assert c.cmd("PSETEX", "p", 100000, "v") == "OK"
    assert 98000 <= c.cmd("PTTL", "p") <= 100000
    assert c.cmd("SETEX", "k", 0, "v") == Err("ERR invalid expire time in 'setex' command")
    assert c.cmd("SETEX", "k", -10, "v") == Err("ERR invalid expire time in 'setex' command")
    assert c.cmd("PSETEX", "k", 0, "v") == Err("ERR invalid expire time in 'psetex' command")
    assert c.cmd("SETEX", "k", "abc", "v") == NOT_INT
    assert c.cmd("SETEX", "k", 10) == Err("ERR wrong number of arguments for 'setex' command")


def test_getset(c):
    assert c.cmd("GETSET", "k", "1") is None
    assert c.cmd("GETSET", "k", "2") == b"1"
    assert c.cmd("GET", "k") == b"2"
    c.cmd("EXPIRE", "k", 100)
    assert c.cmd("GETSET", "k", "3") == b"2"
    assert c.cmd("TTL", "k") == -1


def test_getdel(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("GETDEL", "k") == b"v"
    assert c.cmd("EXISTS", "k") == 0
    assert c.cmd("GETDEL", "k") is None
    assert c.cmd("GETDEL") == Err("ERR wrong number of arguments for 'getdel' command")


def test_getex(c):
    assert c.cmd("GETEX", "missing") is None
    assert c.cmd("GETEX", "missing", "EX", 10) is None
    assert c.cmd("EXISTS", "missing") == 0
    c.cmd("SET", "k", "v")
    assert c.cmd("GETEX", "k") == b"v"
    assert c.cmd("TTL", "k") == -1
    assert c.cmd("GETEX", "k", "EX", 100) == b"v"
    assert 99 <= c.cmd("TTL", "k") <= 100
    assert c.cmd("GETEX", "k", "PX", 200000) == b"v"
    assert 198000 <= c.cmd("PTTL", "k") <= 200000
    now = int(time.time())
    assert c.cmd("GETEX", "k", "EXAT", now + 300) == b"v"
    assert c.cmd("EXPIRETIME", "k") == now + 300
    now_ms = int(time.time() * 1000)
    assert c.cmd("GETEX", "k", "PXAT", now_ms + 400000) == b"v"
    assert c.cmd("PEXPIRETIME", "k") == now_ms + 400000
    assert c.cmd("GETEX", "k", "PERSIST") == b"v"
    assert c.cmd("TTL", "k") == -1
    # an expiry in the past deletes the key after returning it
    assert c.cmd("GETEX", "k", "PXAT", 1000) == b"v"
    assert c.cmd("EXISTS", "k") == 0


def test_getex_errors(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("GETEX", "k", "EX", 0) == Err("ERR invalid expire time in 'getex' command")
    assert c.cmd("GETEX", "k", "PX", -1) == Err("ERR invalid expire time in 'getex' command")
    assert c.cmd("GETEX", "k", "EX", "x") == NOT_INT
    assert c.cmd("GETEX", "k", "EX", 10, "PX", 10) == SYNTAX
    assert c.cmd("GETEX", "k", "PERSIST", "EX", 10) == SYNTAX
    assert c.cmd("GETEX", "k", "EX") == SYNTAX
    assert c.cmd("GETEX", "k", "FOO") == SYNTAX
    assert c.cmd("GETEX", "k", "KEEPTTL") == SYNTAX
    assert c.cmd("TTL", "k") == -1


def test_mget_mset(c):
    assert c.cmd("MSET", "a", "1", "b", "2", "c", "3") == "OK"
    assert c.cmd("MGET", "a", "missing", "c", "a") == [b"1", None, b"3", b"1"]
    assert c.cmd("MSET", "a", "x", "a", "y") == "OK"
    assert c.cmd("GET", "a") == b"y"
    assert c.cmd("MSET", "a") == Err("ERR wrong number of arguments for 'mset' command")
    assert c.cmd("MSET", "a", "1", "b") == Err("ERR wrong number of arguments for 'mset' command")
    assert c.cmd("MGET") == Err("ERR wrong number of arguments for 'mget' command")
    c.cmd("SET", "t", "v", "EX", 100)
    c.cmd("MSET", "t", "w")
    assert c.cmd("TTL", "t") == -1


def test_msetnx(c):
    assert c.cmd("MSETNX", "a", "1", "b", "2") == 1
    assert c.cmd("MSETNX", "b", "x", "c", "3") == 0
    assert c.cmd("MGET", "a", "b", "c") == [b"1", b"2", None]
    assert c.cmd("MSETNX", "a") == Err("ERR wrong number of arguments for 'msetnx' command")
    assert c.cmd("MSETNX", "x", "1", "y") == Err("ERR wrong number of arguments for 'msetnx' command")


def test_append_strlen(c):
    assert c.cmd("STRLEN", "k") == 0
    assert c.cmd("APPEND", "k", "Hello") == 5
    assert c.cmd("APPEND", "k", " World") == 11
    assert c.cmd("GET", "k") == b"Hello World"
    assert c.cmd("STRLEN", "k") == 11
    assert c.cmd("APPEND", "k", "") == 11
    c.cmd("EXPIRE", "k", 100)
    c.cmd("APPEND", "k", "!")
    assert 99 <= c.cmd("TTL", "k") <= 100
    c.cmd("SET", "n", 12)
    assert c.cmd("APPEND", "n", 3) == 3
    assert c.cmd("INCR", "n") == 124


def test_getrange(c):
    c.cmd("SET", "k", "Hello World")
    assert c.cmd("GETRANGE", "k", 0, 4) == b"Hello"
    assert c.cmd("GETRANGE", "k", -5, -1) == b"World"
    assert c.cmd("GETRANGE", "k", 0, -1) == b"Hello World"
    assert c.cmd("GETRANGE", "k", 6, 1000) == b"World"
    assert c.cmd("GETRANGE", "k", -100, 2) == b"Hel"
    assert c.cmd("GETRANGE", "k", 5, 3) == b""
    assert c.cmd("GETRANGE", "k", 100, 200) == b""
    assert c.cmd("GETRANGE", "k", -1, -5) == b""
    assert c.cmd("GETRANGE", "k", 3, 3) == b"l"
    assert c.cmd("GETRANGE", "missing", 0, -1) == b""
    assert c.cmd("GETRANGE", "k", "a", 1) == NOT_INT
    assert c.cmd("GETRANGE", "k", 0) == Err("ERR wrong number of arguments for 'getrange' command")
    c.cmd("SET", "e", "")
    assert c.cmd("GETRANGE", "e", 0, -1) == b""


def test_setrange(c):
    assert c.cmd("SETRANGE", "k", 5, "x") == 6
    assert c.cmd("GET", "k") == b"\x00\x00\x00\x00\x00x"
    c.cmd("SET", "h", "Hello World")
    assert c.cmd("SETRANGE", "h", 6, "Redis") == 11
    assert c.cmd("GET", "h") == b"Hello Redis"
    assert c.cmd("SETRANGE", "h", 11, "!!") == 13
    assert c.cmd("GET", "h") == b"Hello Redis!!"
    assert c.cmd("SETRANGE", "h", 15, "z") == 16
    assert c.cmd("GET", "h") == b"Hello Redis!!\x00\x00z"
    # an empty value never creates or pads
    assert c.cmd("SETRANGE", "none", 0, "") == 0
    assert c.cmd("SETRANGE", "none", 10, "") == 0
    assert c.cmd("EXISTS", "none") == 0
    assert c.cmd("SETRANGE", "h", 100, "") == 16
    assert c.cmd("STRLEN", "h") == 16


def test_setrange_errors(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("SETRANGE", "k", -1, "x") == Err("ERR offset is out of range")
    assert c.cmd("SETRANGE", "missing", -1, "x") == Err("ERR offset is out of range")
    assert c.cmd("SETRANGE", "k", 536870912, "x") == Err(
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    assert c.cmd("SETRANGE", "k", "abc", "x") == NOT_INT
    assert c.cmd("GET", "k") == b"v"


def test_setrange_offset_overflow(c):
    # offset + length overflows a signed 64-bit integer: still just the size error (and no crash)
    too_big = Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    c.cmd("SET", "k", "v")
    assert c.cmd("SETRANGE", "k", LLONG_MAX, "x") == too_big
    assert c.cmd("SETRANGE", "k", LLONG_MAX - 1, "xyz") == too_big
    assert c.cmd("SETRANGE", "nokey", LLONG_MAX, "x") == too_big
    assert c.cmd("GET", "k") == b"v"
    assert c.cmd("EXISTS", "nokey") == 0


def test_incr_decr(c):
    assert c.cmd("INCR", "n") == 1
    assert c.cmd("INCR", "n") == 2
    assert c.cmd("DECR", "n") == 1
    assert c.cmd("DECR", "m") == -1
    assert c.cmd("INCRBY", "n", 10) == 11
    assert c.cmd("INCRBY", "n", -20) == -9
    assert c.cmd("DECRBY", "n", 1) == -10
    assert c.cmd("DECRBY", "n", -15) == 5
    assert c.cmd("GET", "n") == b"5"
    c.cmd("SET", "n", "-100")
    assert c.cmd("INCR", "n") == -99
    c.cmd("SET", "t", "5", "EX", 100)
    assert c.cmd("INCR", "t") == 6
    assert 99 <= c.cmd("TTL", "t") <= 100


def test_incr_errors(c):
    for bad in ("abc", "1.5", " 1", "1 ", "", "+1", "0x10", "99999999999999999999", "1e3"):
        c.cmd("SET", "bad", bad)
        assert c.cmd("INCR", "bad") == NOT_INT, bad
        assert c.cmd("GET", "bad") == bad.encode()
    assert c.cmd("INCRBY", "n", "abc") == NOT_INT
    assert c.cmd("INCRBY", "n", "1.0") == NOT_INT
    assert c.cmd("DECRBY", "n", "") == NOT_INT
    assert c.cmd("EXISTS", "n") == 0
    c.cmd("SET", "max", str(LLONG_MAX))
    assert c.cmd("INCR", "max") == OVERFLOW
    assert c.cmd("INCRBY", "max", 1) == OVERFLOW
    assert c.cmd("GET", "max") == str(LLONG_MAX).encode()
    c.cmd("SET", "min", str(LLONG_MIN))
    assert c.cmd("DECR", "min") == OVERFLOW
    assert c.cmd("DECRBY", "min", 1) == OVERFLOW
    assert c.cmd("INCRBY", "min", -1) == OVERFLOW
    assert c.cmd("DECRBY", "x", str(LLONG_MIN)) == Err("ERR decrement would overflow")
    c.cmd("SET", "almost", str(LLONG_MAX - 1))
    assert c.cmd("INCR", "almost") == LLONG_MAX


@pytest.mark.long_double
def test_incrbyfloat(c):
    assert c.cmd("INCRBYFLOAT", "f", "10.5") == b"10.5"
    assert c.cmd("INCRBYFLOAT", "f", "0.1") == b"10.6"
    assert c.cmd("INCRBYFLOAT", "f", "-5") == b"5.6"
    c.cmd("SET", "g", "5.0e3")
    assert c.cmd("INCRBYFLOAT", "g", "2.0e2") == b"5200"
    c.cmd("SET", "i", "1")
    assert c.cmd("INCRBYFLOAT", "i", "2") == b"3"
    assert c.cmd("GET", "i") == b"3"
    assert c.cmd("INCRBYFLOAT", "new", "-1.25") == b"-1.25"
    c.cmd("SET", "t", "1", "EX", 100)
    c.cmd("INCRBYFLOAT", "t", "1")
    assert 99 <= c.cmd("TTL", "t") <= 100


@pytest.mark.long_double
def test_incrbyfloat_errors(c):
    c.cmd("SET", "s", "abc")
    assert c.cmd("INCRBYFLOAT", "s", "1") == NOT_FLOAT
    assert c.cmd("INCRBYFLOAT", "f", "abc") == NOT_FLOAT
    assert c.cmd("INCRBYFLOAT", "f", "") == NOT_FLOAT
    assert c.cmd("INCRBYFLOAT", "f", "1.0x") == NOT_FLOAT
    # redis computes in long double: 1e4932 is still finite, twice that is not
    c.cmd("SET", "big", "1e4932")
    assert c.cmd("INCRBYFLOAT", "big", "1e4932") == Err("ERR increment would produce NaN or Infinity")
    assert c.cmd("GET", "big") == b"1e4932"
    assert c.cmd("EXISTS", "f") == 0


@pytest.mark.long_double
def test_incrbyfloat_infinite_increment(c):
    # redis parses "inf" as a float, and then refuses the infinite result
    assert c.cmd("INCRBYFLOAT", "f", "inf") == Err("ERR increment would produce NaN or Infinity")
    assert c.cmd("INCRBYFLOAT", "f", "-inf") == Err("ERR increment would produce NaN or Infinity")
    assert c.cmd("EXISTS", "f") == 0


@pytest.mark.long_double
def test_incrbyfloat_formatting(c):
    # redis formats the long double result with %.17Lf and trims trailing zeros (never an exponent)
    assert c.cmd("INCRBYFLOAT", "a", "1e20") == b"100000000000000000000"
    assert c.cmd("INCRBYFLOAT", "b", "0.0000001") == b"0.0000001"
    assert c.cmd("INCRBYFLOAT", "c", "3.0e3") == b"3000"
    assert c.cmd("INCRBYFLOAT", "d", "1e-320") == b"0"
    assert c.cmd("INCRBYFLOAT", "e", "1.7e308").startswith(b"17000000000000000")
    # long double range: 1.7e308 + 1.7e308 does not overflow in redis
    r = c.cmd("INCRBYFLOAT", "e", "1.7e308")
    assert isinstance(r, bytes) and r.startswith(b"34000000000000000") and len(r) == 309, r[:40]


def test_concurrent_incr_from_many_clients(srv):
    import threading
    clients, per_client = 20, 500
    errors = []

    def worker():
        try:
            with srv.conn(timeout=20) as w:
                replies = w.pipeline([("INCR", "shared")] * per_client)
                assert all(isinstance(r, int) for r in replies), replies[:5]
                for i in range(per_client // 10):
                    r = w.cmd("INCRBY", "shared2", 2)
                    assert isinstance(r, int)
        except Exception as e:   # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "workers still running after 60 s"
    assert not errors, errors[:3]
    c = srv.conn()
    assert c.cmd("GET", "shared") == str(clients * per_client).encode()
    assert c.cmd("GET", "shared2") == str(clients * per_client // 10 * 2).encode()
