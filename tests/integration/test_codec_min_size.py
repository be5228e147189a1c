"""compression-min-size: GET returns exactly what SET wrote, for every value.

A value shorter than compression-min-size is stored as it is only when it cannot be taken for the chain's
output (it fails the compressor's header check: zlib's two header bytes, zstd's magic number); a short
value that looks like a frame (zlib.compress(b"secret-value"), a zstd frame, a truncated one, a bomb) is
encoded like a long one. Reading decodes whatever decodes, so neither kind can come back as other bytes.
"""
import random
import zlib

import pytest

from test_codec_support import is_utf8, DaemonPool, conn, info, libzstd_compress, py_decode

pytestmark = pytest.mark.needs_cachetoryd

MIN = 300


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


def _zstd_header_declaring(size):
    """A zstd frame header (single segment, 8-byte content size) declaring `size` bytes, and one empty
    raw block that ends the frame: a frame that promises more than it holds."""
    return (b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + size.to_bytes(8, "little") + b"\x01\x00\x00")


def short_values(seed):
    """Values shorter than MIN: random bytes, text, and frames of both compressors, whole, cut, with
    bytes after them, and ones that decode to much more than they are (or more than max-decoded-size)."""
    rnd = random.Random(seed)
    vals = [b"", b"x", b"x\x9c", b"\x78\xda", b"\x28\xb5\x2f\xfd", zlib.compress(b"secret-value")]
    for _ in range(150):
        vals.append(rnd.randbytes(rnd.randrange(0, MIN)))
    for _ in range(100):
        data = rnd.randbytes(rnd.randrange(0, 120)) if rnd.random() < 0.5 else \
            bytes([rnd.randrange(97, 100)]) * rnd.randrange(0, 3000)
        for frame in (zlib.compress(data, rnd.choice([-1, 0, 1, 9])), libzstd_compress(data, rnd.choice([1, 3, 19]))):
            vals.append(frame)
            vals.append(frame[:rnd.randrange(0, len(frame) + 1)])       # cut anywhere
            vals.append(frame + rnd.randbytes(rnd.randrange(1, 4)))     # bytes after the end
            flip = bytearray(frame)
            if flip:
                flip[rnd.randrange(len(flip))] ^= 1 << rnd.randrange(8)
            vals.append(bytes(flip))
        vals.append(b"\x78\x9c" + rnd.randbytes(rnd.randrange(0, 40)))  # a zlib header, then noise
    vals.append(zlib.compress(b"\x00" * 200000, 9))                     # over max-decoded-size (64 KB)
    vals.append(libzstd_compress(b"\x00" * 200000))
    vals.append(_zstd_header_declaring(1 << 40))                        # declares 1 TB
    vals.append(_zstd_header_declaring(20))
    return [v for v in vals if len(v) < MIN]


@pytest.mark.parametrize("url", [
    "zlib://?compression-min-size=%d&max-decoded-size=64kb" % MIN,
    "zstd://?compression-min-size=%d&max-decoded-size=64kb" % MIN,
    "zlib://?compression-min-size=%d&strict=yes" % MIN,
    "msgpack+zstd://?compression-min-size=%d" % MIN,
    "json+zlib://?compression-min-size=%d" % MIN,
])
def test_short_values_read_back_exactly(pool, url):
    d = pool.get(url)
    vals = short_values(zlib.crc32(url.encode()))      # the same values in every run
    if url.startswith("json"):
        vals = [v for v in vals if is_utf8(v)]
    with conn(d) as c:
        c.cmd("FLUSHALL")
        res = c.pipeline([("SET", "k%d" % i, v) for i, v in enumerate(vals)])
        assert res == ["OK"] * len(vals)
        res = c.pipeline([("GET", "k%d" % i) for i in range(len(vals))])
        for i, (v, got) in enumerate(zip(vals, res)):
            assert got == v, "%s: SET %r, GET gave %r" % (url, v[:40], got[:40] if isinstance(got, bytes) else got)
        assert c.cmd("MGET", *["k%d" % i for i in range(len(vals))]) == vals
        stored_as_is = 0
        for i, v in enumerate(vals):
            raw = c.cmd("CACHE", "RAWGET", "k%d" % i)
            if raw == v:
                stored_as_is += 1
            else:                                   # encoded: in cachetory's format
                assert py_decode(url.split("?")[0], raw) == v
        if not url.startswith("json"):      # json's own check keeps many UTF-8 values encoded
            assert stored_as_is > len(vals) // 2, "most short values are stored as they are"
        assert c.cmd("STRLEN", "k5") == len(vals[5])



def test_issue_example_zlib_frame_as_a_value(pool):
    """The report: a 20-byte zlib stream SET with compression-min-size=100 read back decompressed."""
    d = pool.get("zlib://?compression-min-size=100")
    v = zlib.compress(b"secret-value")
    assert len(v) == 20
    with conn(d) as c:
        assert c.cmd("SET", "k", v) == "OK"
        assert c.cmd("GET", "k") == v
        assert zlib.decompress(c.cmd("CACHE", "RAWGET", "k")) == v     # stored encoded, as cachetory would
        assert c.cmd("SET", "p", "plain") == "OK"
        assert c.cmd("CACHE", "RAWGET", "p") == b"plain"                 # ordinary short values as they are
        # APPEND to a short frame-like value keeps it exact too
        assert c.cmd("APPEND", "k", "") == len(v)
        assert c.cmd("GET", "k") == v
        assert c.cmd("SET", "z", v[:2]) == "OK"
        assert c.cmd("APPEND", "z", v[2:]) == len(v)
        assert c.cmd("GET", "z") == v
    assert int(info(d)["cache_decode_errors"]) == 0
