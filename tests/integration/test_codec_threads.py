"""Values of --codec-thread-min-size bytes or more are encoded and decoded on libuv's thread pool: replies
still leave in request order, and one client's big encodes do not stall other clients."""
import threading
import time

import pytest
import zstd

from test_codec_support import conn, info, is_err, libzstd_decompress, random_bytes, text_value

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
