"""The json serializer refuses values that are not valid UTF-8 with an error (starting with "ERR"), and
nothing is stored; valid UTF-8 (NUL and control characters included) is written as Python's json.dumps
writes the string."""
import json

import pytest

from test_codec_support import DaemonPool, conn, info, is_err

pytestmark = pytest.mark.needs_cachetoryd

INVALID = {
    "ff": b"\xff",
    "latin1": "café".encode("latin-1"),
    "truncated_2byte": b"abc\xc3",
    "lone_continuation": b"\x80abc",
    "overlong_nul": b"\xc0\x80",
    "overlong_slash": b"\xe0\x80\xaf",
    "surrogate_half": b"\xed\xa0\x80",              # U+D800 encoded (CESU-8 / WTF-8), not UTF-8
    "above_10ffff": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "truncated_4byte": "😀".encode()[:3],
    "binary": bytes(range(256)),
}


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


@pytest.mark.parametrize("url", ["json://", "json+zlib://", "json+zstd://"])
@pytest.mark.parametrize("name", list(INVALID))
def test_json_refuses_invalid_utf8(pool, url, name):
    v = INVALID[name]
    d = pool.get(url)
    with conn(d) as c:
        c.cmd("DEL", "k", "old")
        errs = int(info(d)["cache_encode_errors"])
        r = c.cmd("SET", "k", v)
        assert is_err(r), "%s: SET of %r replied %r, expected an ERR error" % (url, v, r)
        assert c.cmd("EXISTS", "k") == 0, "a refused value was stored"
        assert int(info(d)["cache_encode_errors"]) == errs + 1
        # an existing value is left as it was
        assert c.cmd("SET", "old", "kept") == "OK"
        assert is_err(c.cmd("SET", "old", v))
        assert is_err(c.cmd("GETSET", "old", v))
        assert is_err(c.cmd("SET", "old", v, "GET"))
        assert c.cmd("GET", "old") == b"kept"
        # MSET is all or nothing
        assert is_err(c.cmd("MSET", "m1", "fine", "m2", v))
        assert c.cmd("EXISTS", "m1", "m2") == 0
        assert c.cmd("PING") == "PONG"


def test_json_accepts_all_valid_utf8(pool):
    d = pool.get("json://")
    valid = [b"", b"\x00", "\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode(),
             "\ufeffBOM".encode(), "\u2028\u2029".encode(), b"\x00" * 50 + b"\x1f"]
    with conn(d) as c:
        for v in valid:
            assert c.cmd("SET", "k", v) == "OK", v
            assert c.cmd("CACHE", "RAWGET", "k") == json.dumps(v.decode()).encode(), v
            assert c.cmd("GET", "k") == v


def test_json_refusal_on_the_thread_pool_keeps_order(start_daemon):
    d = start_daemon(serializer="json://", codec_thread_min_size="1kb")
    bad = b"valid start " * 200 + b"\xff"
    good = "ok é ".encode() * 1000
    with conn(d) as c:
        res = c.pipeline([("SET", "k", bad), ("GET", "k"), ("SET", "g", good), ("MSET", "a", "fine", "b", bad),
                          ("EXISTS", "a", "b"), ("GET", "g"), ("PING",)])
        assert is_err(res[0]), res[0]
        assert res[1] is None
        assert res[2] == "OK"
        assert is_err(res[3]), res[3]
        assert res[4] == 0
        assert res[5] == good
        assert res[6] == "PONG"
