"""Values of --codec-thread-min-size bytes or more are encoded and decoded on libuv's thread pool: replies
still leave in request order, and one client's big encodes do not stall other clients."""
import threading
import time
import zlib

import pytest
import zstd

from test_codec_support import conn, info, is_err, libzstd_decompress, py_decode, random_bytes, text_value

pytestmark = pytest.mark.needs_cachetoryd

BIG1 = random_bytes(2 << 20, 51)
BIG2 = random_bytes(200000, 52) + b"\x00" * 100000
BIG8 = random_bytes(8 << 20, 53)


def _n(d, field):
    return int(info(d)[field])


def test_pipeline_order_across_offloaded_and_inline_ops(start_daemon):
    d = start_daemon(serializer="zstd://?compression-level=19", codec_thread_min_size="1kb")
    with conn(d, timeout=60) as c:
        cmds = [
            ("SET", "k1", BIG1), ("GET", "k1"), ("SET", "k1", "other"), ("GET", "k1"),
            ("SET", "k2", BIG2), ("SET", "small", "s"), ("GET", "small"), ("GET", "k2"),
            ("APPEND", "k2", "x"), ("STRLEN", "k2"), ("GETRANGE", "k2", -2, -1),
            ("MSET", "a", BIG2, "b", "bee"), ("MGET", "b", "a", "nope"),
            ("GETSET", "a", "ay"), ("GET", "a"), ("GETDEL", "k2"), ("GET", "k2"), ("INCR", "n"), ("PING",),
        ]
        res = c.pipeline(cmds)
        exp = [
            "OK", BIG1, "OK", b"other",
            "OK", "OK", b"s", BIG2,
            len(BIG2) + 1, len(BIG2) + 1, b"\x00x",
            "OK", [b"bee", BIG2, None],
            BIG2, b"ay", BIG2 + b"x", None, 1, "PONG",
        ]
        for i, (cmd, r, e) in enumerate(zip(cmds, res, exp)):
            short = (lambda x: x[:30] + b"..." if isinstance(x, bytes) and len(x) > 40 else x)
            assert r == e, "reply %d to %s: got %r, expected %r" % (
                i, cmd[0], short(r) if not isinstance(r, list) else [short(x) for x in r],
                short(e) if not isinstance(e, list) else [short(x) for x in e])
        assert c.cmd("CACHE", "RAWGET", "k1") == zstd.compress(b"other", 19)
        assert libzstd_decompress(c.cmd("CACHE", "RAWGET", "b")) == b"bee"
    assert _n(d, "cache_offloaded") > 0


def test_thread_pool_decode_undecoded_and_strict(start_daemon):
    d = start_daemon(serializer="zstd://", codec_thread_min_size="1kb")
    frame = zstd.compress(BIG2, 3)                          # written by Python
    raw = random_bytes(100000, 54)                          # not a zstd frame
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", "py", frame) == "OK"
        assert c.cmd("CACHE", "RAWSET", "raw", raw) == "OK"
        off, und = _n(d, "cache_offloaded"), _n(d, "cache_values_undecoded")
        res = c.pipeline([("GET", "py"), ("GET", "raw"), ("MGET", "raw", "py"), ("PING",)])
        assert res[0] == BIG2
        assert res[1] == raw
        assert res[2] == [raw, BIG2]
        assert res[3] == "PONG"
        assert _n(d, "cache_offloaded") > off
        assert _n(d, "cache_values_undecoded") == und + 2
    s = start_daemon(serializer="zstd://?strict=yes", codec_thread_min_size="1kb")
    with conn(s) as c:
        assert c.cmd("CACHE", "RAWSET", "raw", raw) == "OK"
        res = c.pipeline([("SET", "x", BIG1), ("GET", "raw"), ("GET", "x"), ("PING",)])
        assert res[0] == "OK"
        assert is_err(res[1]), res[1]
        assert res[2] == BIG1
        assert res[3] == "PONG"
        assert _n(s, "cache_decode_errors") == 1


def test_multi_exec_with_big_values(start_daemon):
    d = start_daemon(serializer="msgpack+zstd://", codec_thread_min_size="1kb")
    with conn(d, timeout=60) as c:
        res = c.pipeline([("MULTI",), ("SET", "k", BIG1), ("GET", "k"), ("APPEND", "k", "!"), ("STRLEN", "k"),
                          ("EXEC",), ("GET", "k")])
        assert res[0] == "OK"
        assert res[1:5] == ["QUEUED"] * 4
        assert res[5] == ["OK", BIG1, len(BIG1) + 1, len(BIG1) + 1]
        assert res[6] == BIG1 + b"!"


def test_no_offload_with_zero(start_daemon):
    d = start_daemon(serializer="zstd://", codec_thread_min_size="0")
    with conn(d) as c:
        assert c.cmd("SET", "k", BIG1) == "OK"
        assert c.cmd("GET", "k") == BIG1
    assert _n(d, "cache_offloaded") == 0


def test_below_threshold_is_inline(start_daemon):
    d = start_daemon(serializer="zstd://", codec_thread_min_size="1mb")
    with conn(d) as c:
        v = text_value(500000, 55)
        assert c.cmd("SET", "k", v) == "OK"
        assert c.cmd("GET", "k") == v
        assert _n(d, "cache_offloaded") == 0
        assert c.cmd("SET", "k", BIG1) == "OK"
        assert c.cmd("GET", "k") == BIG1
        assert _n(d, "cache_offloaded") >= 2


@pytest.mark.timing
def test_big_encodes_do_not_stall_other_clients(start_daemon):
    d = start_daemon(serializer="zstd://?compression-level=19", codec_thread_min_size="64kb")
    with conn(d) as c:
        assert c.cmd("SET", "small", "tiny") == "OK"
    result = {}

    def writer():
        try:
            with conn(d, timeout=60) as w:
                t0 = time.monotonic()
                result["set"] = w.cmd("SET", "big8", BIG8)
                result["set_time"] = time.monotonic() - t0
                result["get"] = w.cmd("STRLEN", "big8") == len(BIG8)
        except Exception as e:          # reported below
            result["error"] = repr(e)

    lat = []
    with conn(d, timeout=30) as r:
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.05)                # the writer's 8 MB are on their way
        while t.is_alive():
            t0 = time.monotonic()
            assert r.cmd("PING") == "PONG"
            assert r.cmd("GET", "small") == b"tiny"
            lat.append(time.monotonic() - t0)
            time.sleep(0.005)
        t.join()
    assert "error" not in result, result.get("error")
    assert result["set"] == "OK" and result["get"], result
    enc = result["set_time"]
    worst = max(lat) if lat else 0.0
    assert len(lat) >= 5, "only %d probes while the 8 MB SET took %.2fs" % (len(lat), enc)
    assert worst < 0.5, "a PING/GET took %.3fs while another client's 8 MB SET (level 19) took %.2fs" % (
        worst, enc)
    print("8 MB SET at level 19: %.2fs; %d probes, worst %.4fs" % (enc, len(lat), worst))
    if enc > 1.0:
        assert worst < enc / 4, "worst probe %.3fs vs one big encode %.2fs" % (worst, enc)
    assert _n(d, "cache_offloaded") >= 2


def _thread_nices(pid):
    """{thread id: (name, nice)} of a process, from /proc/PID/task/TID/stat (nice is field 19)."""
    import os
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, int(fields[16]))
    return out


@pytest.mark.parametrize("nice", [0, 15])
def test_codec_jobs_run_at_codec_thread_nice(start_daemon, nice):
    """A pool thread takes codec-thread-nice when it runs a codec job; the loop thread keeps its own."""
    d = start_daemon(serializer="zstd://", codec_thread_min_size="1kb", codec_thread_nice=nice)
    before = _thread_nices(d.pid)
    assert before[d.pid][1] == 0, "loop thread nice before any job: %r" % (before[d.pid],)
    with conn(d) as c:
        for i in range(8):                   # several jobs, so that more than one pool thread may run one
            assert c.cmd("SET", "big%d" % i, BIG2) == "OK"
            assert c.cmd("GET", "big%d" % i) == BIG2
    after = _thread_nices(d.pid)
    assert after[d.pid][1] == 0, "loop thread nice after codec jobs: %r" % (after[d.pid],)
    pool = {tid: v for tid, v in after.items() if tid != d.pid and v[0].startswith("libuv-worker")}
    if not pool:   # older libuv names no thread: every thread but the loop's belongs to the pool
        pool = {tid: v for tid, v in after.items() if tid != d.pid}
    reniced = [tid for tid, (_, n) in pool.items() if n == nice]
    assert reniced, "no pool thread at nice %d after codec jobs: %r" % (nice, after)
    assert all(n in (0, nice) for _, n in pool.values()), "pool threads with other nice values: %r" % (pool,)
    assert _n(d, "cache_offloaded") >= 8


def zstd_rle_frame(size, byte=0):
    """A zstd frame of `size` copies of `byte` made of RLE blocks (4 bytes per 128 KiB): 128 MB is 4 KB
    stored, and the frame declares its content size (single segment), as cachetory's frames do."""
    out = bytearray(b"\x28\xb5\x2f\xfd" + bytes([0xA0]) + size.to_bytes(4, "little"))
    left = size
    while left > 0:
        n = min(128 << 10, left)
        left -= n
        out += ((1 if left == 0 else 0) | (1 << 1) | (n << 3)).to_bytes(3, "little") + bytes([byte])
    return bytes(out)


@pytest.mark.parametrize("url,stored", [
    ("zstd://", lambda: zstd_rle_frame(128 << 20)),
    ("zlib://", lambda: zlib.compress(b"\x00" * (48 << 20), 9)),
])
def test_small_stored_large_decoded_is_offloaded(start_daemon, url, stored):
    """The thread-pool decision looks at the decoded size: a value stored in a few KB that decodes to tens
    of MB (zstd declares it in the frame; zlib is found out by inflating within the threshold) is decoded
    on the pool, for STRLEN, GET and MGET; small values still decode inline."""
    d = start_daemon(serializer=url)                       # codec-thread-min-size: 64kb (default)
    raw = stored()
    assert len(raw) < 64 << 10
    size = len(py_decode(url, raw))
    with conn(d, timeout=60) as c:
        assert c.cmd("CACHE", "RAWSET", "big", raw) == "OK"
        assert c.cmd("SET", "small", "s" * 1000) == "OK"
        off = _n(d, "cache_offloaded")
        assert c.cmd("STRLEN", "big") == size
        assert _n(d, "cache_offloaded") == off + 1
        assert c.cmd("GETRANGE", "big", -3, -1) == b"\x00\x00\x00"
        assert c.cmd("MGET", "small", "big") == [b"s" * 1000, b"\x00" * size]
        assert _n(d, "cache_offloaded") == off + 4
        assert c.cmd("GET", "small") == b"s" * 1000             # decodes to 1000 bytes: inline
        assert c.cmd("STRLEN", "small") == 1000
        assert _n(d, "cache_offloaded") == off + 4
        assert _n(d, "cache_decode_errors") == 0


def test_decode_just_under_and_at_the_threshold(start_daemon):
    """codec-thread-min-size counts decoded bytes: min - 1 inline, min and more on the pool."""
    d = start_daemon(serializer="zlib://", codec_thread_min_size="10kb")
    with conn(d) as c:
        for k, n in (("under", 10239), ("at", 10240), ("over", 10241)):
            assert c.cmd("CACHE", "RAWSET", k, zlib.compress(b"a" * n)) == "OK"
        off = _n(d, "cache_offloaded")
        assert c.cmd("STRLEN", "under") == 10239
        assert _n(d, "cache_offloaded") == off
        assert c.cmd("STRLEN", "at") == 10240
        assert _n(d, "cache_offloaded") == off + 1
        assert c.cmd("STRLEN", "over") == 10241
        assert _n(d, "cache_offloaded") == off + 2
        # two values under the threshold each, over it together: the pool
        assert c.cmd("MGET", "under", "under") == [b"a" * 10239] * 2
        assert _n(d, "cache_offloaded") == off + 4


@pytest.mark.timing
def test_ping_answers_while_a_small_stored_value_decodes(start_daemon):
    """STRLEN of 128 MB of zeros stored as 4 KB of zstd, and a PING from another client sent right after
    it: the PING does not wait for the decode (before the fix it waited ~50 ms, the whole decode)."""
    d = start_daemon(serializer="zstd://")
    with conn(d, timeout=60) as c:
        assert c.cmd("CACHE", "RAWSET", "big", zstd_rle_frame(128 << 20)) == "OK"
    pings, strlens = [], []
    with conn(d, timeout=60) as a, conn(d, timeout=60) as b:
        assert b.cmd("PING") == "PONG"
        for _ in range(5):
            t0 = time.monotonic()
            a.send(b"*2\r\n$6\r\nSTRLEN\r\n$3\r\nbig\r\n")
            time.sleep(0.002)                   # the STRLEN is read first
            t1 = time.monotonic()
            assert b.cmd("PING") == "PONG"
            pings.append(time.monotonic() - t1)
            assert a.read_reply() == 128 << 20
            strlens.append(time.monotonic() - t0)
    pings.sort()
    strlens.sort()
    print("STRLEN of 128 MB: median %.4fs; PING meanwhile: median %.5fs, worst %.5fs" % (
        strlens[2], pings[2], pings[-1]))
    assert _n(d, "cache_offloaded") >= 5
    assert pings[2] < 0.02 and pings[2] < strlens[2] / 2, (pings, strlens)
