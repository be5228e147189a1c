"""Every command that stores or returns a value goes through the chain: MSET/MSETNX/MGET, GETSET, GETDEL,
GETEX, SET ... GET, SETNX/SETEX/PSETEX, and the read-modify-write commands APPEND, SETRANGE, GETRANGE,
STRLEN, INCR/DECR/INCRBY/INCRBYFLOAT decode, modify and re-encode (STRLEN and GETRANGE see the decoded
value)."""
import pytest
import zstd

from helpers import Err
from test_codec_support import DaemonPool, check_stored, conn, is_err, libzstd_decompress, py_decode, \
    py_encode, zstd_frame_header

pytestmark = pytest.mark.needs_cachetoryd

URLS = ["zstd://", "msgpack+zstd://", "json+zlib://", "pickle://?pickle-protocol=2", "zlib://", "msgpack://"]


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


def _stored(c, url, key, v):
    raw = c.cmd("CACHE", "RAWGET", key)
    assert isinstance(raw, bytes), "RAWGET %s replied %r" % (key, raw)
    check_stored(url, raw, v, "%s key %s" % (url, key))


@pytest.mark.parametrize("url", URLS)
def test_mset_mget(pool, url):
    with conn(pool.get(url)) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("MSET", "a", "1", "b", "", "c", "x\x00y") == "OK"
        assert c.cmd("MGET", "a", "b", "missing", "c") == [b"1", b"", None, b"x\x00y"]
        for k, v in (("a", b"1"), ("b", b""), ("c", b"x\x00y")):
            _stored(c, url, k, v)
        assert c.cmd("MSETNX", "d", "dv", "e", "ev") == 1
        assert c.cmd("MSETNX", "d", "other", "f", "fv") == 0
        assert c.cmd("MGET", "d", "e", "f") == [b"dv", b"ev", None]
        _stored(c, url, "d", b"dv")
        # a raw (not encoded) value among encoded ones: returned as it is (mixed mode)
        assert c.cmd("CACHE", "RAWSET", "raw", b"\xc1plain") == "OK"
        assert c.cmd("MGET", "a", "raw", "c") == [b"1", b"\xc1plain", b"x\x00y"]


@pytest.mark.parametrize("url", URLS)
def test_getset_getdel_getex_set_get(pool, url):
    with conn(pool.get(url)) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("SET", "k", "one") == "OK"
        assert c.cmd("GETSET", "k", "two") == b"one"
        _stored(c, url, "k", b"two")
        assert c.cmd("SET", "k", "three", "GET") == b"two"
        _stored(c, url, "k", b"three")
        assert c.cmd("SET", "new", "v", "GET") is None
        _stored(c, url, "new", b"v")
        assert c.cmd("GETEX", "k", "EX", 100) == b"three"
        assert 98 <= c.cmd("TTL", "k") <= 100
        assert c.cmd("GETEX", "k", "PERSIST") == b"three"
        assert c.cmd("TTL", "k") == -1
        _stored(c, url, "k", b"three")
        assert c.cmd("GETDEL", "k") == b"three"
        assert c.cmd("GET", "k") is None
        assert c.cmd("SETNX", "nx", "nxv") == 1
        assert c.cmd("SETEX", "ex", 100, "exv") == "OK"
        assert c.cmd("PSETEX", "px", 100000, "pxv") == "OK"
        assert c.cmd("SET", "xx", "xxv", "NX", "EX", 50) == "OK"
        for k in ("nx", "ex", "px", "xx"):
            _stored(c, url, k, k.encode() + b"v")
            assert c.cmd("GET", k) == k.encode() + b"v"


@pytest.mark.parametrize("url", URLS)
def test_append_setrange_getrange_strlen(pool, url):
    with conn(pool.get(url)) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("SET", "k", "hello") == "OK"
        assert c.cmd("APPEND", "k", " world") == 11
        assert c.cmd("GET", "k") == b"hello world"
        _stored(c, url, "k", b"hello world")
        assert c.cmd("STRLEN", "k") == 11                 # the decoded length, not the stored one
        assert c.cmd("GETRANGE", "k", 0, 4) == b"hello"
        assert c.cmd("GETRANGE", "k", -5, -1) == b"world"
        assert c.cmd("GETRANGE", "k", 20, 30) == b""
        assert c.cmd("SETRANGE", "k", 6, "WORLD") == 11
        assert c.cmd("GET", "k") == b"hello WORLD"
        _stored(c, url, "k", b"hello WORLD")
        assert c.cmd("SETRANGE", "k", 13, "!") == 14
        assert c.cmd("GET", "k") == b"hello WORLD\x00\x00!"
        _stored(c, url, "k", b"hello WORLD\x00\x00!")
        assert c.cmd("APPEND", "fresh", "abc") == 3
        _stored(c, url, "fresh", b"abc")
        assert c.cmd("SETRANGE", "pad", 3, "xyz") == 6
        assert c.cmd("GET", "pad") == b"\x00\x00\x00xyz"
        _stored(c, url, "pad", b"\x00\x00\x00xyz")
        assert c.cmd("STRLEN", "missing") == 0
        # a long compressible value: STRLEN / GETRANGE see the decoded bytes
        big = b"0123456789" * 50000
        assert c.cmd("SET", "big", big) == "OK"
        raw = c.cmd("CACHE", "RAWGET", "big")
        assert len(raw) < len(big) or "msgpack://" == url or "pickle" in url
        assert c.cmd("STRLEN", "big") == len(big)
        assert c.cmd("GETRANGE", "big", 499990, 499999) == b"0123456789"
        assert c.cmd("APPEND", "big", "END") == len(big) + 3
        assert c.cmd("GETRANGE", "big", -5, -1) == b"89END"
        assert py_decode(url, c.cmd("CACHE", "RAWGET", "big")) == big + b"END"


@pytest.mark.parametrize("url", URLS)
def test_incr_family(pool, url):
    with conn(pool.get(url)) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("SET", "n", "10") == "OK"
        assert c.cmd("INCR", "n") == 11
        _stored(c, url, "n", b"11")
        assert c.cmd("INCRBY", "n", 5) == 16
        assert c.cmd("DECR", "n") == 15
        assert c.cmd("DECRBY", "n", 20) == -5
        _stored(c, url, "n", b"-5")
        assert c.cmd("GET", "n") == b"-5"
        assert c.cmd("INCRBYFLOAT", "n", "5.5") == b"0.5"
        _stored(c, url, "n", b"0.5")
        assert c.cmd("GET", "n") == b"0.5"
        assert c.cmd("INCR", "fresh") == 1
        _stored(c, url, "fresh", b"1")
        assert c.cmd("SET", "s", "abc") == "OK"
        assert c.cmd("INCR", "s") == Err("ERR value is not an integer or out of range")
        assert c.cmd("GET", "s") == b"abc"
        # a raw value written before the chain (mixed mode) is read, incremented and stored encoded
        assert c.cmd("CACHE", "RAWSET", "old", "41") == "OK"
        assert c.cmd("INCR", "old") == 42
        _stored(c, url, "old", b"42")


def test_incr_on_zstd_stores_a_zstd_frame_of_the_digits(pool):
    with conn(pool.get("zstd://")) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("SET", "n", "99") == "OK"
        assert c.cmd("INCR", "n") == 100
        raw = c.cmd("CACHE", "RAWGET", "n")
        assert zstd_frame_header(raw)["content_size"] == 3
        assert libzstd_decompress(raw) == b"100"
        assert zstd.decompress(raw) == b"100"
        assert raw == zstd.compress(b"100", 3)
        assert c.cmd("INCRBYFLOAT", "n", "0.25") == b"100.25"
        assert c.cmd("CACHE", "RAWGET", "n") == zstd.compress(b"100.25", 3)


def test_json_append_stays_valid_json(pool):
    url = "json://"
    with conn(pool.get(url)) as c:
        c.cmd("FLUSHALL")
        assert c.cmd("SET", "k", 'say "hi"') == "OK"
        assert c.cmd("CACHE", "RAWGET", "k") == b'"say \\"hi\\""'
        assert c.cmd("APPEND", "k", " é😀") == len('say "hi" é😀'.encode())
        assert c.cmd("CACHE", "RAWGET", "k") == py_encode(url, 'say "hi" é😀'.encode())
        # a byte range that cuts a character: GETRANGE works on the decoded bytes
        assert c.cmd("GETRANGE", "k", 10, 10) == "é".encode()[1:2]
        # SETRANGE / APPEND that would leave invalid UTF-8: refused, the value unchanged
        r = c.cmd("APPEND", "k", b"\xff")
        assert is_err(r), "APPEND of \\xff to a json value replied %r" % (r,)
        r = c.cmd("SETRANGE", "k", 0, b"\xc3")
        assert is_err(r), "SETRANGE leaving invalid UTF-8 replied %r" % (r,)
        assert c.cmd("GET", "k") == 'say "hi" é😀'.encode()


def test_keys_are_never_encoded(pool):
    with conn(pool.get("msgpack+zstd://")) as c:
        c.cmd("FLUSHALL")
        key = b"user:\x00:\xff:\xc3\xa9"
        assert c.cmd("SET", key, "v") == "OK"
        assert c.cmd("MSET", "k2", "v2") == "OK"
        assert sorted(c.cmd("KEYS", "*")) == sorted([key, b"k2"])
        assert c.cmd("EXISTS", key) == 1
        assert c.cmd("SCAN", 0, "MATCH", "user:*")[1] == [key]
        assert c.cmd("RENAME", key, "renamed") == "OK"
        assert c.cmd("GET", "renamed") == b"v"
