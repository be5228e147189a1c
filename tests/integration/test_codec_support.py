"""
Shared pieces of the codec tests (tests/integration/test_codec_*.py); this module holds no test.

Reference encoders are what cachetory's Python side writes (Debian's /usr/bin/python3 with python3-msgpack
and python3-zstd):
    zlib     zlib.compress(v, level)                          level -1 (= 6) by default
    zstd     zstd.compress(v, level)  (python-zstd)           level 3 by default
    msgpack  msgpack.packb(v)                                 bytes -> bin
    json     json.dumps(v.decode()).encode()                  Python's defaults: ensure_ascii, ", " / ": "
    pickle   pickle.dumps(v, protocol=P)                      P 5 by default
and chains apply their layers left to right on write.

python-zstd bundles its own zstd (1.5.2 in Debian 12) while the daemon links the system libzstd (1.5.4),
so for zstd the exact reference is what libzstd.so.1 itself writes for a one-shot compression
(ZSTD_compress, called here through ctypes: one frame, content size in the header, no checksum; with
compression-threads=N, ZSTD_compress2 with N workers), and python-zstd's bytes are compared where both
libraries agree; elsewhere the frame header fields are compared and both sides must read each other's
frames. What was found (Debian 12, 2 CPUs):
  - level 3: python-zstd and libzstd agree byte for byte up to one job (8 MB). Past that they differ:
    python-zstd always compresses with worker threads (ZSTD_c_nbWorkers >= 1 whatever its threads
    argument), which cuts the input into jobs; the daemon's default compression-threads=0 is
    single-threaded. With compression-threads >= 1 the daemon writes python-zstd's bytes.
  - levels 19 and -5: the two versions write other bytes for MB values (same header fields).
  - python-zstd cannot compress or decompress an empty value: zstd.compress(b"") returns 64 bytes of
    uninitialised memory, and zstd.decompress refuses a frame whose content size is 0; empty values are
    checked against libzstd only (the 9-byte frame 28b52ffd2000010000).
zlib: Python's zlib.compress equals compress2 except at level 0 for values of 64 KiB and more (stored blocks
cut at other places); DESIGN.md names compress2, so that is the reference at level 0.
"""
import ctypes
import json
import pickle
import random
import zlib
from urllib.parse import parse_qsl, urlsplit

import msgpack
import pytest
import zstd

from helpers import Conn, Err, proc_status_kb

# ------------------------------------------------------------------------------------------------
# libzstd (the library the daemon links) through ctypes

_lib = ctypes.CDLL("libzstd.so.1")
_lib.ZSTD_versionString.restype = ctypes.c_char_p
_lib.ZSTD_compressBound.restype = ctypes.c_size_t
_lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
_lib.ZSTD_compress.restype = ctypes.c_size_t
_lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
_lib.ZSTD_decompress.restype = ctypes.c_size_t
_lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
_lib.ZSTD_isError.restype = ctypes.c_uint
_lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
_lib.ZSTD_getErrorName.restype = ctypes.c_char_p
_lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
_lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
_lib.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_lib.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
_lib.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

_lib.ZSTD_createCCtx.restype = ctypes.c_void_p
_lib.ZSTD_freeCCtx.argtypes = [ctypes.c_void_p]
_lib.ZSTD_CCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
_lib.ZSTD_CCtx_setParameter.restype = ctypes.c_size_t
_lib.ZSTD_compress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
_lib.ZSTD_compress2.restype = ctypes.c_size_t
_ZSTD_c_compressionLevel = 100
_ZSTD_c_nbWorkers = 400

LIBZSTD_VERSION = _lib.ZSTD_versionString().decode()
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def libzstd_compress(v, level=3):
    """The bytes libzstd.so.1 writes for a one-shot compression at `level`."""
    cap = _lib.ZSTD_compressBound(len(v))
    buf = ctypes.create_string_buffer(max(cap, 1))
    n = _lib.ZSTD_compress(buf, cap, v, len(v), level)
    assert not _lib.ZSTD_isError(n), _lib.ZSTD_getErrorName(n)
    return buf.raw[:n]


def libzstd_compress2(v, level=3, workers=0):
    """The bytes libzstd.so.1 writes with ZSTD_compress2 and ZSTD_c_nbWorkers = workers. With workers >= 1
    (python-zstd always compresses this way, whatever its threads argument) values larger than one job
    (about 8 MB at level 3) are cut into jobs, and the bytes differ from the single-threaded ones."""
    cctx = _lib.ZSTD_createCCtx()
    try:
        for p, val in ((_ZSTD_c_compressionLevel, level), (_ZSTD_c_nbWorkers, workers)):
            r = _lib.ZSTD_CCtx_setParameter(cctx, p, val)
            assert not _lib.ZSTD_isError(r), _lib.ZSTD_getErrorName(r)
        cap = _lib.ZSTD_compressBound(len(v))
        buf = ctypes.create_string_buffer(max(cap, 1))
        n = _lib.ZSTD_compress2(cctx, buf, cap, v, len(v))
        assert not _lib.ZSTD_isError(n), _lib.ZSTD_getErrorName(n)
        return buf.raw[:n]
    finally:
        _lib.ZSTD_freeCCtx(cctx)


def libzstd_decompress(frame, limit=1 << 30):
    """Decode one frame with libzstd.so.1; the frame must declare its content size."""
    size = _lib.ZSTD_getFrameContentSize(frame, len(frame))
    assert size < (1 << 64) - 2, "frame does not declare its content size (or is not a frame)"
    assert size <= limit
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _lib.ZSTD_decompress(buf, size, frame, len(frame))
    assert not _lib.ZSTD_isError(n), _lib.ZSTD_getErrorName(n)
    return buf.raw[:n]


def zstd_frame_header(b):
    """Fields of a zstd frame header (RFC 8878 3.1.1.1)."""
    assert b[:4] == ZSTD_MAGIC, "not a zstd frame: %r" % b[:8]
    fhd = b[4]
    fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
    assert (fhd >> 3) & 1 == 0, "reserved bit set"
    pos = 5
    window = None
    if not single:
        window = b[pos]
        pos += 1
    did_size = (0, 1, 2, 4)[did_flag]
    dict_id = int.from_bytes(b[pos:pos + did_size], "little") if did_size else 0
    pos += did_size
    fcs_size = ((1 if single else 0), 2, 4, 8)[fcs_flag]
    fcs = None
    if fcs_size:
        fcs = int.from_bytes(b[pos:pos + fcs_size], "little") + (256 if fcs_size == 2 else 0)
    pos += fcs_size
    return {"single_segment": single, "checksum": checksum, "dict_id": dict_id, "content_size": fcs,
            "window_descriptor": window, "header_size": pos}


def check_zstd_frame(raw, v, level, what="", threads=0):
    """raw is what the daemon stored for v at `level`: cachetory's format (one frame, content size, no
    checksum), byte for byte what libzstd writes, what python-zstd writes where python-zstd agrees with
    libzstd, and readable by python-zstd (cachetory's reader) and libzstd."""
    hdr = zstd_frame_header(raw)
    assert hdr["content_size"] == len(v), "%s: frame declares content size %r, value has %d bytes" % (
        what, hdr["content_size"], len(v))
    assert hdr["checksum"] == 0, "%s: frame has a checksum (cachetory's frames have none)" % what
    assert hdr["dict_id"] == 0, "%s: frame names a dictionary" % what
    assert _lib.ZSTD_findFrameCompressedSize(raw, len(raw)) == len(raw), "%s: not exactly one frame" % what
    assert libzstd_decompress(raw) == v, "%s: libzstd does not decode the daemon's frame to the value" % what
    if v:
        assert zstd.decompress(raw) == v, "%s: python-zstd does not decode the daemon's frame" % what
    ref = libzstd_compress(v, level) if threads == 0 else libzstd_compress2(v, level, threads)
    assert raw == ref, "%s: %d bytes differ from libzstd %s's one-shot frame at level %d, %d workers (%d bytes)" % (
        what, len(raw), LIBZSTD_VERSION, level, threads, len(ref))
    if v:
        py = zstd.compress(v, level)
        if py == ref:
            assert raw == py
        else:
            # python-zstd's bundled zstd writes other bytes for this value: same header fields, and
            # libzstd reads python-zstd's frame (the other direction is checked above)
            ph = zstd_frame_header(py)
            assert (ph["content_size"], ph["checksum"], ph["dict_id"]) == (len(v), 0, 0)
            assert libzstd_decompress(py) == v


# ------------------------------------------------------------------------------------------------
# zlib's compress2 (what DESIGN.md names for the zlib layer) through ctypes

_libz = ctypes.CDLL("libz.so.1")
_libz.compressBound.restype = ctypes.c_ulong
_libz.compressBound.argtypes = [ctypes.c_ulong]
_libz.compress2.restype = ctypes.c_int
_libz.compress2.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong), ctypes.c_char_p, ctypes.c_ulong,
                            ctypes.c_int]


def zlib_compress2(v, level=-1):
    """The bytes zlib's compress2() writes. Equal to Python's zlib.compress(v, level) except at level 0
    for values of 64 KiB and more: the stored blocks are cut where each one's output buffer ends, and
    CPython feeds deflate() another output buffer size than compress2 does."""
    size = ctypes.c_ulong(_libz.compressBound(len(v)))
    buf = ctypes.create_string_buffer(max(size.value, 1))
    rc = _libz.compress2(buf, ctypes.byref(size), v, len(v), level)
    assert rc == 0, rc
    return buf.raw[:size.value]


# ------------------------------------------------------------------------------------------------
# cachetory's encoders and decoders, by URL

def url_layers(url):
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    layers = [s for s in parts.scheme.split("+") if s not in ("null", "noop")]
    return ["zstd" if s == "zstandard" else s for s in layers], params


def zlib_level(params):
    return int(params.get("compression-level", -1))


def zstd_level(params):
    return int(params.get("compression-level", 3))


def py_encode(url, v):
    """What cachetory (Python) stores for the client value v (bytes) with the serializer URL."""
    layers, params = url_layers(url)
    for layer in layers:
        if layer == "zlib":
            v = zlib.compress(v, zlib_level(params))
        elif layer == "zstd":
            v = libzstd_compress(v, zstd_level(params)) if not v else zstd.compress(v, zstd_level(params))
        elif layer == "msgpack":
            v = msgpack.packb(v)
        elif layer == "json":
            v = json.dumps(v.decode("utf-8")).encode()
        elif layer == "pickle":
            v = pickle.dumps(v, protocol=int(params.get("pickle-protocol", 5)))
        else:
            raise ValueError(layer)
    return v


def _render(obj):
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return json.dumps(obj).encode()


def py_decode(url, raw):
    """The client value cachetoryd should return for stored bytes raw (layers right to left)."""
    layers, params = url_layers(url)
    obj = raw
    for layer in reversed(layers):
        if not isinstance(obj, (bytes, bytearray)):
            obj = _render(obj)
        if layer == "zlib":
            obj = zlib.decompress(obj)
        elif layer == "zstd":
            obj = libzstd_decompress(obj)
        elif layer == "msgpack":
            obj = msgpack.unpackb(obj, raw=False, strict_map_key=False)
        elif layer == "json":
            obj = json.loads(obj.decode("utf-8"))
        elif layer == "pickle":
            obj = pickle.loads(obj)
    return _render(obj)


def check_stored(url, raw, v, what=""):
    """raw (CACHE RAWGET) is exactly what cachetory writes for v with url."""
    layers, params = url_layers(url)
    if layers and layers[-1] == "zstd":
        inner_url = url.replace("+zstd", "").replace("+zstandard", "")
        inner = py_encode(inner_url, v) if len(layers) > 1 else v
        check_zstd_frame(raw, inner, zstd_level(params), what, int(params.get("compression-threads", 0)))
        return
    exp = py_encode(url, v)
    if raw != exp and layers and layers[-1] == "zlib" and zlib_level(params) == 0:
        # level 0: Python's stored blocks are cut elsewhere (see zlib_compress2); compress2's bytes then,
        # and both read the same
        inner = py_encode(url.replace("+zlib", ""), v) if len(layers) > 1 else v
        c2 = zlib_compress2(inner, 0)
        if raw == c2 and zlib.decompress(raw) == inner:
            return
    if raw != exp:
        i = next((k for k in range(min(len(raw), len(exp))) if raw[k] != exp[k]), min(len(raw), len(exp)))
        pytest.fail("%s: stored bytes differ from cachetory's (%d vs %d bytes), first difference at %d:\n"
                    "  daemon:    %r\n  cachetory: %r" % (what, len(raw), len(exp), i, raw[max(0, i - 20):i + 40],
                                                          exp[max(0, i - 20):i + 40]))


# ------------------------------------------------------------------------------------------------
# values

def text_value(size, seed):
    """Deterministic UTF-8 text of about `size` bytes (words, some non-ASCII, emoji), cut at a word."""
    r = random.Random(seed)
    words = ["cache", "value", "record", "id", "name", "Grüße", "naïve", "日本語", "Ωμέγα", "😀", "🎉",
             "status", "ok", "error", "timestamp", "2024-05-01T12:00:00Z", "user", "ünïcödé", "données"]
    words += ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 10))) for _ in range(2000)]
    parts = r.choices(words, k=size // 5 + 10)
    out = " ".join(parts).encode()
    cut = out[:size]
    while True:
        try:
            cut.decode("utf-8")
            return cut
        except UnicodeDecodeError:
            cut = cut[:-1]


def random_bytes(size, seed):
    return random.Random(seed).randbytes(size)


CTRL = b"\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f \"quote\" back\\slash /slash end"

# ------------------------------------------------------------------------------------------------
# daemons and connections


class DaemonPool:
    """Daemons by (serializer, options), started once per test module."""

    def __init__(self, factory):
        self.factory = factory
        self.daemons = {}

    def get(self, url, **opts):
        key = (url, tuple(sorted(opts.items())))
        d = self.daemons.get(key)
        if d is None or not d.alive():
            d = self.factory(serializer=url, **opts)
            self.daemons[key] = d
        return d


def conn(d, timeout=30.0):
    return Conn(d.addr, timeout=timeout)


def info(d):
    return d.info("cache")


def vm_hwm_kb(pid):
    return proc_status_kb(pid, "VmHWM")


def vm_rss_kb(pid):
    return proc_status_kb(pid, "VmRSS")


def is_err(r):
    return isinstance(r, Err) and str(r).startswith("ERR")


def is_utf8(v):
    """True if the bytes v are UTF-8 text (the json codec takes nothing else)."""
    try:
        v.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
