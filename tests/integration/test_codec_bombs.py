"""Decompression bombs and damaged values: no decoder produces or allocates more than max-decoded-size (a
bomb is an error, the daemon stays up and small); truncated or corrupted values are returned as they are
in mixed mode and are an error in strict mode."""
import functools
import json
import pickle
import struct
import zlib

import msgpack
import pytest
import zstd

from test_codec_support import DaemonPool, conn, info, is_err, text_value, vm_hwm_kb

pytestmark = pytest.mark.needs_cachetoryd

MB = 1024  # kB


def _rle_block(size, byte=b"\x00", last=False):
    """A zstd RLE block: `size` copies of one byte (size <= 128 KiB)."""
    hdr = (1 if last else 0) | (1 << 1) | (size << 3)
    return hdr.to_bytes(3, "little") + byte


def zstd_declared_bomb(declared=1 << 40, single_segment=True):
    """A small frame whose header declares `declared` bytes of content."""
    if single_segment:
        head = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + declared.to_bytes(8, "little")
    else:
        head = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 0x38]) + declared.to_bytes(8, "little")
    return head + _rle_block(131072) * 7 + _rle_block(131072, last=True)


def zstd_lying_frame(declared=1000, blocks=1000):
    """A frame that declares `declared` bytes but whose blocks expand to blocks x 128 KiB."""
    head = b"\x28\xb5\x2f\xfd" + bytes([0x80, 0x38]) + declared.to_bytes(4, "little")
    return head + _rle_block(131072) * (blocks - 1) + _rle_block(131072, last=True)


def zstd_streaming_bomb(blocks=2000):
    """A frame without content size (as a streaming compressor writes it) expanding to blocks x 128 KiB."""
    head = b"\x28\xb5\x2f\xfd" + bytes([0x00, 0x38])
    return head + _rle_block(131072) * (blocks - 1) + _rle_block(131072, last=True)


@functools.lru_cache(maxsize=None)
def zlib_zeros(total):
    co = zlib.compressobj()
    chunk = b"\0" * (1 << 20)
    out = [co.compress(chunk) for _ in range(total // len(chunk))]
    out.append(co.flush())
    return b"".join(out)


def _alive(d):
    assert d.alive(), "the daemon died"
    with conn(d) as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SET", "after", "ok") == "OK"
        assert c.cmd("GET", "after") == b"ok"


# ---- bombs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("thread_min", ["0", "1"], ids=["inline", "thread-pool"])
@pytest.mark.parametrize("single", [True, False], ids=["single-segment", "windowed"])
def test_zstd_frame_declaring_1tb(start_daemon, thread_min, single):
    d = start_daemon(serializer="zstd://", codec_thread_min_size=thread_min)
    bomb = zstd_declared_bomb(1 << 40, single)
    base = vm_hwm_kb(d.pid)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "bomb", bomb) == "OK"
        errors_before = int(info(d)["cache_decode_errors"])
        for cmd in (("GET", "bomb"), ("MGET", "bomb"), ("GETEX", "bomb"), ("STRLEN", "bomb"),
                    ("GETRANGE", "bomb", 0, 10), ("APPEND", "bomb", "x"), ("INCR", "bomb"),
                    ("GETSET", "bomb2", "x")):
            if cmd[0] == "GETSET":
                assert c.cmd("CACHE", "RAWSET", "bomb2", bomb) == "OK"
            r = c.cmd(*cmd)
            assert is_err(r), "%s of a frame declaring 2^40 bytes replied %r" % (cmd[0], r if not isinstance(
                r, bytes) else r[:60])
        assert c.cmd("CACHE", "RAWGET", "bomb") == bomb          # nothing rewritten by the failed updates
        assert int(info(d)["cache_decode_errors"]) > errors_before
        r = c.cmd("GETDEL", "bomb")
        assert is_err(r), "GETDEL replied %r" % (r,)
    _alive(d)
    hwm = vm_hwm_kb(d.pid)
    assert hwm < base + 32 * MB, "VmHWM grew from %d kB to %d kB" % (base, hwm)


def test_zstd_bomb_error_also_in_strict_mode_and_chains(start_daemon):
    d = start_daemon(serializer="msgpack+zstd://?strict=yes")
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "bomb", zstd_declared_bomb(1 << 40)) == "OK"
        r = c.cmd("GET", "bomb")
        assert is_err(r), r
    _alive(d)


def test_zstd_frame_over_max_decoded_size(start_daemon):
    """The default max-decoded-size is proto-max-bulk-len."""
    d = start_daemon(serializer="zstd://", proto_max_bulk_len="2mb")
    v = b"z" * (3 << 20)
    frame = zstd.compress(v, 3)                    # a genuine frame of 3 MB of content
    assert len(frame) < 1000
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "big", frame) == "OK"
        r = c.cmd("GET", "big")
        assert is_err(r), "GET of a frame of 3 MB with proto-max-bulk-len 2mb replied %r" % (
            r[:50] if isinstance(r, bytes) else r)
        assert c.cmd("CACHE", "RAWSET", "ok", zstd.compress(b"z" * (1 << 20), 3)) == "OK"
        assert c.cmd("GET", "ok") == b"z" * (1 << 20)
    _alive(d)


def test_zstd_lying_frame(start_daemon):
    """Declares 1000 bytes, expands to 125 MB: never produced; mixed mode returns it as stored."""
    d = start_daemon(serializer="zstd://")
    frame = zstd_lying_frame(1000, 1000)
    base = vm_hwm_kb(d.pid)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "lie", frame) == "OK"
        r = c.cmd("GET", "lie")
        assert r == frame or is_err(r), "GET of a lying frame replied %r" % (r[:60] if isinstance(r, bytes) else r)
    _alive(d)
    hwm = vm_hwm_kb(d.pid)
    assert hwm < base + 32 * MB, "VmHWM grew from %d kB to %d kB" % (base, hwm)


def test_zstd_frame_without_content_size_past_the_limit(start_daemon):
    d = start_daemon(serializer="zstd://?max-decoded-size=10mb")
    frame = zstd_streaming_bomb(2000)              # 250 MB of zeros, 8 kB stored
    base = vm_hwm_kb(d.pid)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "s", frame) == "OK"
        r = c.cmd("GET", "s")
        assert r == frame or is_err(r), "GET replied %r" % (r[:60] if isinstance(r, bytes) else r)
    _alive(d)
    hwm = vm_hwm_kb(d.pid)
    assert hwm < base + 40 * MB, "VmHWM grew from %d kB to %d kB" % (base, hwm)


@pytest.mark.parametrize("url", ["zlib://?max-decoded-size=10mb", "json+zlib://?max-decoded-size=10mb"])
def test_zlib_bomb_200mb_of_zeros(start_daemon, url):
    d = start_daemon(serializer=url)
    bomb = zlib_zeros(200 << 20)
    assert len(bomb) < 300000
    base = vm_hwm_kb(d.pid)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "bomb", bomb) == "OK"
        r = c.cmd("GET", "bomb")
        assert is_err(r), "GET of a zlib stream of 200 MB with max-decoded-size=10mb replied %r" % (
            r[:60] if isinstance(r, bytes) else r)
        r = c.cmd("APPEND", "bomb", "x")
        assert is_err(r), "APPEND replied %r" % (r,)
        assert c.cmd("CACHE", "RAWGET", "bomb") == bomb
        # under the limit it decodes
        if url.startswith("zlib"):
            ok, n = zlib_zeros(8 << 20), 8 << 20
        else:
            ok, n = zlib.compress(json.dumps("\0" * (1 << 20)).encode()), 1 << 20     # 6 MB of JSON text
        assert c.cmd("CACHE", "RAWSET", "ok", ok) == "OK"
        got = c.cmd("GET", "ok")
        assert got == b"\0" * n, "GET of %d zeros under the limit returned %r" % (
            n, got[:60] if isinstance(got, bytes) else got)
    _alive(d)
    hwm = vm_hwm_kb(d.pid)
    assert hwm < base + 64 * MB, "VmHWM grew from %d kB to %d kB (200 MB bomb, 10 MB limit)" % (base, hwm)


def test_zlib_bomb_on_the_thread_pool(start_daemon):
    d = start_daemon(serializer="zlib://?max-decoded-size=10mb", codec_thread_min_size="1kb")
    bomb = zlib_zeros(200 << 20)
    base = vm_hwm_kb(d.pid)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "bomb", bomb) == "OK"
        res = c.pipeline([("GET", "bomb"), ("PING",), ("GET", "bomb"), ("SET", "k", "v"), ("GET", "k")])
        assert is_err(res[0]) and is_err(res[2]), res[:3]
        assert res[1] == "PONG" and res[3] == "OK" and res[4] == b"v"
    _alive(d)
    assert vm_hwm_kb(d.pid) < base + 64 * MB


def test_msgpack_and_pickle_huge_declared_lengths(start_daemon):
    """Length prefixes that declare GBs over a few bytes of data: not allocated, returned as stored."""
    cases = [
        ("msgpack://", b"\xc6\x7f\xff\xff\xffabc"),                     # bin 32 of 2 GB
        ("msgpack://", b"\xdd\x7f\xff\xff\xff\x01"),                    # array 32 of 2^31 elements
        ("msgpack://", b"\xdf\x7f\xff\xff\xff\x01\x02"),                # map 32
        ("pickle://", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc"),   # BINBYTES8 of 1 TB
        ("pickle://", b"\x80\x03B\xff\xff\xff\x7fabc"),                 # BINBYTES of 2 GB
        ("pickle://", b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"K\x01."),  # FRAME of 1 TB
    ]
    daemons = {}
    for url, v in cases:
        d = daemons.get(url) or daemons.setdefault(url, start_daemon(serializer=url))
        base = vm_hwm_kb(d.pid)
        with conn(d) as c:
            assert c.cmd("CACHE", "RAWSET", "k", v) == "OK"
            r = c.cmd("GET", "k")
            assert r == v or is_err(r), "%s: GET of %r replied %r" % (url, v, r)
        _alive(d)
        assert vm_hwm_kb(d.pid) < base + 32 * MB, "%s: %r grew VmHWM" % (url, v)


# ---- truncated and corrupted values ---------------------------------------------------------------

TEXT = text_value(10000, 41)


def _flip(b, i, mask=0xFF):
    b = bytearray(b)
    b[i] ^= mask
    return bytes(b)


DAMAGED = [
    ("zstd://", "truncated", zstd.compress(TEXT, 3)[:-5]),
    ("zstd://", "truncated_header", zstd.compress(TEXT, 3)[:7]),
    ("zstd://", "magic_only", b"\x28\xb5\x2f\xfd"),
    ("zstd://", "content_size_off_by_one", _flip(zstd.compress(b"hello", 3), 5, 0x03)),
    ("zstd://", "trailing_garbage", zstd.compress(b"hello", 3) + b"garbage"),
    ("zlib://", "truncated", zlib.compress(TEXT)[:-3]),
    ("zlib://", "truncated_deflate", zlib.compress(TEXT)[:len(zlib.compress(TEXT)) // 2]),
    ("zlib://", "bad_adler32", _flip(zlib.compress(TEXT), -1)),
    ("zlib://", "bad_header_check", _flip(zlib.compress(TEXT), 1, 0x01)),
    ("zlib://", "header_only", b"\x78\x9c"),
    ("msgpack://", "truncated_bin", msgpack.packb(b"x" * 100)[:-10]),
    ("msgpack://", "truncated_array", msgpack.packb([1, 2, 3])[:-1]),
    ("msgpack://", "trailing_data", msgpack.packb(b"abc") + b"\x01"),
    ("msgpack://", "reserved_byte", b"\xc1"),
    ("json://", "unterminated_string", b'"abc'),
    ("json://", "unterminated_object", b'{"a": 1'),
    ("json://", "trailing_data", b'"abc" x'),
    ("json://", "bad_escape", b'"\\x41"'),
    ("pickle://", "no_stop", pickle.dumps(b"x" * 100, 5)[:-1]),
    ("pickle://", "truncated", pickle.dumps(b"x" * 100, 5)[:-50]),
    ("pickle://", "truncated_p2", pickle.dumps(b"x" * 100, 2)[:-10]),
    ("pickle://", "global_os_system", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85Rq\x01."),
    ("pickle://", "global_builtins_eval", b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R."),
    ("pickle://", "codecs_encode_other_encoding",
     b"\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00hiq\x01X\x05\x00\x00\x00utf_8q\x02\x86q\x03Rq\x04."),
    ("pickle://", "set_object", pickle.dumps({1, 2}, 4)),
    ("msgpack+zstd://", "inner_not_msgpack", zstd.compress(b"\xc1 not msgpack", 3)),
    ("json+zlib://", "inner_not_json", zlib.compress(b"not json")),
]


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


@pytest.mark.parametrize("url,name,v", [pytest.param(u, n, v, id="%s-%s" % (u, n)) for u, n, v in DAMAGED])
def test_damaged_values_mixed_and_strict(pool, url, name, v):
    d = pool.get(url)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "bad", v) == "OK"
        got = c.cmd("GET", "bad")
        assert got == v, "mixed %s %s: GET returned %r, expected the stored bytes" % (
            url, name, got[:80] if isinstance(got, bytes) else got)
    sd = pool.get(url + "?strict=yes")
    with conn(sd) as c:
        assert c.cmd("CACHE", "RAWSET", "bad", v) == "OK"
        got = c.cmd("GET", "bad")
        assert is_err(got), "strict %s %s: GET returned %r, expected an ERR error" % (
            url, name, got[:80] if isinstance(got, bytes) else got)
        assert c.cmd("PING") == "PONG"


@pytest.mark.parametrize("url,v", [
    ("json://", b"[" * 200000 + b"]" * 200000),
    ("json://", b'{"a":' * 100000 + b"1" + b"}" * 100000),
    ("msgpack://", b"\x91" * 200000 + b"\xc0"),
    ("pickle://", b"\x80\x02" + b"]" * 200000 + b"."),
    ("pickle://", b"\x80\x02" + b"(" * 200000 + b"l" * 200000 + b"."),
], ids=["json-array", "json-object", "msgpack", "pickle-lists", "pickle-marks"])
def test_deep_nesting_does_not_crash(pool, url, v):
    d = pool.get(url)
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "deep", v) == "OK"
        got = c.cmd("GET", "deep")
        assert isinstance(got, bytes) or is_err(got), got
    _alive(d)


# ---- an error reply leaves the key as it was --------------------------------------------------------

UNREADABLE = [
    ("zstd://", "bomb", zstd_declared_bomb(1 << 40)),                  # past max-decoded-size: always an error
    ("zstd://?strict=yes", "raw_in_strict", b"raw value"),             # not in the format, strict
    ("msgpack+zstd://?strict=yes", "raw_in_strict_chain", b"raw value"),
]
WRITES = [("GETSET", "k", "new"), ("SET", "k", "new", "GET"), ("GETDEL", "k"), ("GETEX", "k", "EX", 100),
          ("GETEX", "k", "PERSIST"), ("APPEND", "k", "x"), ("SETRANGE", "k", 0, "x"), ("INCR", "k"),
          ("INCRBYFLOAT", "k", "1.5")]


@pytest.mark.parametrize("thread_min", ["0", "1"], ids=["inline", "thread-pool"])
@pytest.mark.parametrize("url,name,old", [pytest.param(u, n, v, id=n) for u, n, v in UNREADABLE])
def test_failed_read_of_old_value_has_no_side_effect(pool, url, name, old, thread_min):
    """GETSET, SET ... GET, GETDEL, GETEX and the read-modify-write commands need the old value decoded;
    when that fails they reply with an error, and an error means the command did nothing: the key keeps
    its bytes and its TTL (as Redis does when SET ... GET meets a value of the wrong type)."""
    d = pool.get(url, codec_thread_min_size=thread_min)
    with conn(d) as c:
        done = []
        for cmd in WRITES:
            assert c.cmd("CACHE", "RAWSET", "k", old) == "OK"
            if cmd[:3] == ("GETEX", "k", "PERSIST"):
                assert c.cmd("EXPIRE", "k", 500) == 1
            ttl = c.cmd("TTL", "k")
            r = c.cmd(*cmd)
            assert is_err(r), "%s: %s replied %r" % (url, cmd[0], r)
            now = c.cmd("CACHE", "RAWGET", "k")
            if now != old or c.cmd("TTL", "k") != ttl:
                done.append("%s %s -> key now %r, TTL %r (was %r)" % (
                    " ".join(str(a) for a in cmd[:1] + cmd[2:]), r[:40],
                    now[:20] if isinstance(now, bytes) else now, c.cmd("TTL", "k"), ttl))
        assert not done, "%s: an error reply, but the command changed the key:\n  %s" % (url, "\n  ".join(done))


MAX1MB_URLS = ["zstd://?max-decoded-size=1mb", "json+zlib://?max-decoded-size=1mb", "msgpack://?max-decoded-size=1mb"]


def _short(r):
    return r[:100] if isinstance(r, bytes) else r


@pytest.mark.parametrize("url", MAX1MB_URLS)
def test_set_past_max_decoded_size_is_refused_or_readable(pool, url):
    """A value larger than max-decoded-size could be stored but never read back: the SET must be refused
    (an OK must mean that GET returns the value)."""
    d = pool.get(url)
    big = b"x" * ((1 << 20) + 1)
    with conn(d) as c:
        c.cmd("DEL", "k")
        r = c.cmd("SET", "k", big)
        if r == "OK":
            got = c.cmd("GET", "k")
            assert got == big, "%s: SET of %d bytes replied OK, then GET replied %r" % (url, len(big), _short(got))
        else:
            assert is_err(r), r
            assert c.cmd("EXISTS", "k") == 0


@pytest.mark.parametrize("url", MAX1MB_URLS)
def test_append_past_max_decoded_size_is_refused_or_readable(pool, url):
    d = pool.get(url)
    with conn(d) as c:
        c.cmd("DEL", "j")
        assert c.cmd("SET", "j", b"y" * ((1 << 20) - 10)) == "OK"
        assert c.cmd("STRLEN", "j") == (1 << 20) - 10
        r = c.cmd("APPEND", "j", b"z" * 20)
        if not is_err(r):
            got = c.cmd("GET", "j")
            assert isinstance(got, bytes) and len(got) == r, \
                "%s: APPEND past max-decoded-size replied %r, then GET replied %r" % (url, r, _short(got))
        else:
            assert c.cmd("STRLEN", "j") == (1 << 20) - 10


def test_json_escapes_count_against_max_decoded_size(pool):
    """300 kB of NUL bytes is 1.8 MB of JSON text (\\u0000 each): under a 1 MB max-decoded-size the value
    itself fits; SET must not store something GET then refuses."""
    d = pool.get("json+zlib://?max-decoded-size=1mb")
    v = b"\x00" * 300000
    with conn(d) as c:
        r = c.cmd("SET", "nul", v)
        if r == "OK":
            got = c.cmd("GET", "nul")
            assert got == v, "SET of 300 kB of NULs replied OK, then GET replied %r" % (_short(got),)
        else:
            assert is_err(r), r
