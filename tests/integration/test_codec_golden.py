"""Golden wire formats: a value SET through the daemon is stored (CACHE RAWGET) exactly as cachetory's
Python side writes it, for every codec and several chains (see test_codec_support for the references and
what is compared for zstd)."""
import pytest
import zstd

from test_codec_support import is_utf8, CTRL, DaemonPool, check_stored, conn, libzstd_decompress, py_decode, random_bytes, \
    text_value

pytestmark = pytest.mark.needs_cachetoryd

BIG_TEXT = text_value(3 << 20, 11)          # 3 MB of UTF-8 text, compressible
BIG_RANDOM = random_bytes(2 << 20, 12)      # 2 MB of random bytes
# Larger than one zstd job at level 3 (8 MB): python-zstd always compresses with worker threads
# (ZSTD_c_nbWorkers >= 1), which cuts such a value into jobs; the daemon does the same only with
# compression-threads >= 1 (see test_zstd_past_one_job)
BIG_TEXT_9MB = text_value(9 << 20, 13)

VALUES = {
    "empty": b"",
    "hello": b"hello",
    "nul_binary": b"\x00" + bytes(range(256)) + b"\x00\x00end\x00",
    "a1000": b"a" * 1000,
    "utf8": "Grüße, naïve café — 日本語 Ωμέγα 😀🎉 \u2028 end".encode(),
    "controls": CTRL,
    "b255": b"z" * 255,
    "b256": b"z" * 256,
    "b65535": b"q" * 65535,
    "b65536": b"q" * 65536,
    "b70000": bytes(range(256)) * 273 + b"tail",
    "big_text_3mb": BIG_TEXT,
    "big_random_2mb": BIG_RANDOM,
}

URLS = [
    "null://",
    "zlib://",
    "zlib://?compression-level=0",
    "zlib://?compression-level=1",
    "zlib://?compression-level=9",
    "zstd://",
    "zstandard://",
    "zstd://?compression-level=1",
    "zstd://?compression-level=-5",
    "zstd://?compression-level=19",
    "msgpack://",
    "json://",
    "pickle://",
    "pickle://?pickle-protocol=2",
    "pickle://?pickle-protocol=3",
    "pickle://?pickle-protocol=4",
    "pickle://?pickle-protocol=5",
    "msgpack+zstd://",
    "msgpack+zstd://?compression-level=7",
    "json+zlib://",
    "pickle+zstd://",
    "pickle+zlib://?pickle-protocol=2&compression-level=9",
    "json+zstd://",
]


BIG_URLS = ["null://", "zlib://", "zlib://?compression-level=0", "zstd://", "msgpack://", "json://", "pickle://",
            "pickle://?pickle-protocol=2", "pickle://?pickle-protocol=3", "msgpack+zstd://", "json+zlib://",
            "pickle+zstd://"]



def _cases():
    for url in URLS:
        for name, v in VALUES.items():
            if url.startswith("json") and not is_utf8(v):
                continue        # refused by the json serializer: test_codec_json
            if name.startswith("big_") and url not in BIG_URLS:
                continue        # the MB values go through one URL per layer and parameter that matters
            if name.startswith("b6") and "zlib" not in url and "pickle" not in url and "msgpack" not in url:
                continue        # bin16/bin32 and pickle frame boundaries; nothing new for others
            yield pytest.param(url, name, id="%s-%s" % (url, name))


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


@pytest.mark.parametrize("url,name", list(_cases()))
def test_set_stores_cachetory_bytes(pool, url, name):
    v = VALUES[name]
    d = pool.get(url)
    with conn(d) as c:
        key = "golden:" + name
        assert c.cmd("SET", key, v) == "OK"
        raw = c.cmd("CACHE", "RAWGET", key)
        assert isinstance(raw, bytes), "CACHE RAWGET replied %r" % (raw,)
        check_stored(url, raw, v, "%s %s" % (url, name))
        # and cachetory reads it back as the value
        assert py_decode(url, raw) == v
        got = c.cmd("GET", key)
        assert got == v, "GET returned %d bytes, expected %d" % (len(got or b""), len(v))


@pytest.mark.parametrize("url", ["zstd://", "zstd://?compression-threads=2"])
def test_zstd_past_one_job(pool, url):
    """A 9 MB value: with compression-threads=0 (the default) the daemon writes libzstd's single-threaded
    frame, which differs from python-zstd's (same header fields, both read each other's); with
    compression-threads >= 1 the bytes are python-zstd's."""
    v = BIG_TEXT_9MB
    d = pool.get(url)
    with conn(d) as c:
        assert c.cmd("SET", "big9", v) == "OK"
        raw = c.cmd("CACHE", "RAWGET", "big9")
        check_stored(url, raw, v, url + " 9 MB")
        py = zstd.compress(v, 3)
        if "threads=2" in url:
            assert raw == py, "with compression-threads=2 the 9 MB frame differs from python-zstd's"
        else:
            assert zstd.decompress(raw) == v and libzstd_decompress(py) == v
        assert c.cmd("GET", "big9") == v
