"""Mixed mode (default): a stored value that is not in the chain's format is returned as it is and counted
in cache_values_undecoded. Strict mode (?strict=yes): the same read is an error. compression-min-size:
shorter values are stored as they are, longer ones encoded."""
import pickle
import zlib

import pytest
import zstd

from test_codec_support import DaemonPool, conn, info, is_err, py_encode

pytestmark = pytest.mark.needs_cachetoryd

URLS = ["zstd://", "zlib://", "msgpack://", "json://", "pickle://", "msgpack+zstd://", "json+zlib://",
        "pickle+zstd://"]

# values written to Redis before cachetoryd was put in front: plain text, binary, a session blob
RAW_VALUES = [
    b"plain old value written before cachetoryd",
    b"\x00\xff raw binary \x00",
    b"<html><body>cached page</body></html>",
    b"\xc1",
]


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


def _n(d, field):
    return int(info(d)[field])


@pytest.mark.parametrize("url", URLS)
def test_mixed_mode_returns_raw_values(pool, url):
    d = pool.get(url)
    with conn(d) as c:
        before = _n(d, "cache_values_undecoded")
        for i, v in enumerate(RAW_VALUES):
            assert c.cmd("CACHE", "RAWSET", "raw:%d" % i, v) == "OK"
        for i, v in enumerate(RAW_VALUES):
            got = c.cmd("GET", "raw:%d" % i)
            assert got == v, "%s: GET of a raw value %r returned %r" % (url, v, got)
        assert _n(d, "cache_values_undecoded") == before + len(RAW_VALUES)
        keys = ["raw:%d" % i for i in range(len(RAW_VALUES))]
        assert c.cmd("MGET", *keys) == RAW_VALUES
        assert _n(d, "cache_values_undecoded") == before + 2 * len(RAW_VALUES)
        assert c.cmd("STRLEN", "raw:0") == len(RAW_VALUES[0])
        assert c.cmd("GETRANGE", "raw:0", 0, 4) == RAW_VALUES[0][:5]
        # an APPEND to a raw value stores the whole value encoded
        assert c.cmd("APPEND", "raw:0", "!") == len(RAW_VALUES[0]) + 1
        assert c.cmd("CACHE", "RAWGET", "raw:0") != RAW_VALUES[0] + b"!"
        assert c.cmd("GET", "raw:0") == RAW_VALUES[0] + b"!"


@pytest.mark.parametrize("url", URLS)
def test_strict_mode_refuses_raw_values(pool, url):
    surl = url + ("&" if "?" in url else "?") + "strict=yes"
    d = pool.get(surl)
    with conn(d) as c:
        before = _n(d, "cache_decode_errors")
        for i, v in enumerate(RAW_VALUES):
            assert c.cmd("CACHE", "RAWSET", "raw:%d" % i, v) == "OK"
            r = c.cmd("GET", "raw:%d" % i)
            assert is_err(r), "%s: GET of raw %r replied %r, expected an ERR error" % (surl, v, r)
            assert c.cmd("CACHE", "RAWGET", "raw:%d" % i) == v          # still there, untouched
        assert _n(d, "cache_decode_errors") == before + len(RAW_VALUES)
        assert _n(d, "cache_values_undecoded") == 0
        r = c.cmd("MGET", "raw:0", "missing")
        assert is_err(r), "MGET of a raw value in strict mode replied %r" % (r,)
        # values in the chain's format still work, the connection is fine
        assert c.cmd("SET", "good", "value") == "OK"
        assert c.cmd("GET", "good") == b"value"
        assert c.cmd("PING") == "PONG"


def test_strict_no_is_mixed(pool):
    d = pool.get("zstd://?strict=no")
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "r", "plain") == "OK"
        assert c.cmd("GET", "r") == b"plain"


@pytest.mark.parametrize("url", ["zstd://?compression-min-size=100", "zlib://?compression-min-size=100",
                                 "msgpack+zstd://?compression-min-size=100"])
def test_compression_min_size(pool, url):
    d = pool.get(url)
    with conn(d) as c:
        short = b"s" * 99
        exact = b"e" * 100
        long = b"l" * 5000
        for k, v in (("short", short), ("exact", exact), ("long", long), ("empty", b"")):
            assert c.cmd("SET", k, v) == "OK"
        assert c.cmd("CACHE", "RAWGET", "short") == short              # shorter: stored as it is
        assert c.cmd("CACHE", "RAWGET", "empty") == b""
        base = url.split("?")[0]
        for k, v in (("exact", exact), ("long", long)):                # 100 bytes and more: encoded
            raw = c.cmd("CACHE", "RAWGET", k)
            assert raw == py_encode(base, v), "%s: %s stored as %r" % (url, k, raw[:40])
        for k, v in (("short", short), ("exact", exact), ("long", long), ("empty", b"")):
            assert c.cmd("GET", k) == v
        # an APPEND that crosses the threshold encodes
        assert c.cmd("APPEND", "short", "ss") == 101
        assert c.cmd("CACHE", "RAWGET", "short") == py_encode(base, short + b"ss")
        assert c.cmd("GET", "short") == short + b"ss"


def test_compression_min_size_with_units_and_strict(pool):
    d = pool.get("zstd://?compression-min-size=1kb&strict=yes")
    with conn(d) as c:
        v = b"x" * 1023
        assert c.cmd("SET", "k", v) == "OK"
        assert c.cmd("CACHE", "RAWGET", "k") == v
        assert c.cmd("GET", "k") == v                  # short raw values are no error even in strict mode
        w = b"y" * 1024
        assert c.cmd("SET", "w", w) == "OK"
        assert c.cmd("CACHE", "RAWGET", "w") == zstd.compress(w, 3)
        assert c.cmd("GET", "w") == w
        # a long raw value is an error in strict mode
        assert c.cmd("CACHE", "RAWSET", "r", b"r" * 2000) == "OK"
        assert is_err(c.cmd("GET", "r"))


def test_python_values_still_decode_in_mixed_mode(pool):
    """Mixed mode does not get in the way of values in the chain's format, written by either side."""
    d = pool.get("pickle+zstd://")
    with conn(d) as c:
        before = _n(d, "cache_values_undecoded")
        assert c.cmd("CACHE", "RAWSET", "py", zstd.compress(pickle.dumps(b"from python", 5), 3)) == "OK"
        assert c.cmd("GET", "py") == b"from python"
        assert c.cmd("SET", "d", "from daemon") == "OK"
        assert c.cmd("GET", "d") == b"from daemon"
        assert _n(d, "cache_values_undecoded") == before
    d = pool.get("zlib://")
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "py", zlib.compress(b"x" * 10)) == "OK"
        assert c.cmd("GET", "py") == b"x" * 10
