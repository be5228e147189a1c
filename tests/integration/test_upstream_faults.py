"""Upstream mode, faults:
  - the upstream is stopped and started again (same port, AOF with appendfsync always) under a bounded
    load of SETs: cachetoryd stays up, answers "ERR upstream" errors promptly while it is down, recovers
    within a few seconds, and every SET it acknowledged is in Redis afterwards;
  - the upstream is down when cachetoryd starts, then appears: service starts without a restart;
  - an upstream that never completes the handshake: commands fail within about the connect timeout;
  - a stopped upstream (SIGSTOP): commands time out with an error within about the command timeout,
    cachetoryd's RSS stays bounded while clients keep sending, replies never get crossed after SIGCONT;
  - clients leaving with commands in flight, and Redis closing cachetoryd's connections (idle timeout,
    CLIENT KILL): cachetoryd survives and clients see no error afterwards."""
import statistics
import threading
import time

import pytest

from conftest import DAEMON_BIN
from helpers import encode_command, parse_info
from upstream_support import (decode, is_upstream_err, proxy, timed, upstream_info, upstreams,  # noqa: F401
                              vm_rss_kb, wait_for)

pytestmark = pytest.mark.needs_cachetoryd


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_upstream_restart_under_load(start_daemon, upstreams, serializer):
    cmd_timeout, retry_max = 1000, 500
    up = upstreams(appendonly=True)
    d = proxy(start_daemon, up, serializer, upstream_command_timeout=cmd_timeout,
              upstream_retry_max=retry_max, upstream_connect_timeout=500)
    c = d.conn(timeout=10.0)
    acked, log = {}, []          # log: (phase, t, reply, latency)
    i = 0

    def one(phase):
        nonlocal i
        k, v = "load:%d" % i, ("value-%d-" % i).encode() * 4
        i += 1
        r, dt = timed(c, "SET", k, v)
        log.append((phase, time.monotonic(), r, dt))
        if r == "OK":
            acked[k] = v
        else:
            assert is_upstream_err(r), "SET %s during phase %s replied %r (expected OK or 'ERR upstream ...')" % (
                k, phase, r)
        return r, dt

    # phase 1: upstream up, 0.7 s of load
    t_end = time.monotonic() + 0.7
    while time.monotonic() < t_end:
        r, _ = one("up")
        assert r == "OK", "SET with the upstream up: %r" % (r,)
    n_up = i
    # phase 2: stop the upstream (SIGTERM, it writes its AOF and exits), 2 s of load while it is down
    up.stop()
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        one("down")
    down = [x for x in log if x[0] == "down"]
    errs = [x for x in down if x[2] != "OK"]
    assert len(errs) >= 1, "no error while the upstream was down (%d SETs)" % len(down)
    assert all(x[2] != "OK" for x in down), "SETs acknowledged after the upstream had exited: %r" % (
        [x[2] for x in down if x[2] == "OK"][:3],)
    worst = max(x[3] for x in down)
    assert worst <= cmd_timeout / 1000.0 + 0.5, \
        "a SET took %.2fs while the upstream was down (command timeout %d ms)" % (worst, cmd_timeout)
    med = statistics.median(x[3] for x in errs)
    assert med <= cmd_timeout / 2000.0, \
        "while the upstream was down errors were not fast: median %.3fs over %d errors" % (med, len(errs))
    assert d.alive(), "cachetoryd died while the upstream was down"
    # phase 3: restart the upstream on the same port, measure how long until SETs succeed again
    up.start()
    t_restart = time.monotonic()
    t_ok = None
    while time.monotonic() < t_restart + 6.0:
        r, _ = one("restart")
        if r == "OK":
            t_ok = time.monotonic()
            break
        time.sleep(0.01)
    assert t_ok is not None, "no SET succeeded within 6 s after the upstream came back (last reply %r)" % (
        log[-1][2],)
    recovery = t_ok - t_restart
    assert recovery <= retry_max / 1000.0 + 2.5, "recovery took %.2fs (retry max %d ms)" % (recovery, retry_max)
    # phase 4: steady again, all OK
    t_end = time.monotonic() + 0.7
    while time.monotonic() < t_end:
        r, _ = one("after")
        assert r == "OK", "SET after recovery: %r" % (r,)
    assert d.alive()
    # every acknowledged write is upstream, with its value
    raw = up.client(0)
    missing, wrong = [], []
    keys = list(acked)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for k, got in zip(chunk, raw.mget(chunk)):
            if got is None:
                missing.append(k)
            elif decode(serializer, got) != acked[k]:
                wrong.append((k, got[:40]))
    assert not missing, "%d of %d acknowledged SETs are missing upstream, e.g. %r" % (
        len(missing), len(acked), missing[:5])
    assert not wrong, "acknowledged SETs with other values upstream: %r" % wrong[:5]
    assert n_up > 10
    info, _ = upstream_info(d)
    assert int(info.get("upstream_reconnects", "0")) >= 1, "upstream_reconnects after a restart: %r" % (
        info.get("upstream_reconnects"),)
    assert int(info.get("upstream_errors", "0")) >= 1, "upstream_errors after the outage: %r" % (
        info.get("upstream_errors"),)


def test_upstream_down_at_start_then_appears(start_daemon, upstreams):
    up = upstreams(start=False)                  # a free port, nothing listening yet
    d = proxy(start_daemon, up, "zstd://", upstream_retry_max=300, upstream_command_timeout=1000)
    c = d.conn()
    for _ in range(5):
        r, dt = timed(c, "SET", "k", "v")
        assert is_upstream_err(r), "SET with no upstream listening: %r" % (r,)
        assert "127.0.0.1:%d" % up.port in r, "the error does not name the upstream: %r" % (r,)
        assert dt < 0.5, "SET with no upstream listening took %.2fs to fail" % dt
    r = c.cmd("GET", "k")
    assert is_upstream_err(r), r
    up.start()
    ok = wait_for(lambda: c.cmd("SET", "k", "v") == "OK", 5.0)
    assert ok, "no service 5 s after the upstream appeared: %r" % (c.cmd("SET", "k", "v"),)
    assert c.cmd("GET", "k") == b"v"
    assert decode("zstd://", up.client(0).get("k")) == b"v"


def test_connect_timeout(start_daemon, upstreams):
    """An upstream that accepts TCP connections but never answers the handshake (stopped, with a password
    to send): commands fail within about the connect timeout, not the much longer command timeout."""
    up = upstreams(password="pw")
    up.pause()
    try:
        d = proxy(start_daemon, up, "null://", upstream_connect_timeout=300, upstream_command_timeout=5000,
                  upstream_retry_max=200)
        c = d.conn(timeout=15.0)
        for _ in range(3):
            r, dt = timed(c, "SET", "k", "v")
            assert is_upstream_err(r), "SET while the upstream never completes the handshake: %r" % (r,)
            assert dt < 1.5, "SET took %.2fs to fail (connect timeout 300 ms, command timeout 5000 ms): %r" % (dt, r)
    finally:
        up.resume()
    ok = wait_for(lambda: c.cmd("SET", "k", "v") == "OK", 5.0)
    assert ok, "no service after the upstream resumed: %r" % (c.cmd("SET", "k", "v"),)


def _asan_build():
    with open(DAEMON_BIN, "rb") as f:
        return b"__asan_init" in f.read()


ASAN = _asan_build()


def memory_kb(d):
    """The daemon's memory: its resident size, or under AddressSanitizer the bytes its allocations hold
    (INFO allocator_allocated): ASan keeps freed blocks in a quarantine of up to 256 MB, by design, so the
    resident size of a daemon that frees as much as it allocates grows until the quarantine is full."""
    if not ASAN:
        return vm_rss_kb(d.pid)
    with d.conn() as c:
        return int(parse_info(c.cmd("INFO", "memory"))["allocator_allocated"]) // 1024


def test_slow_upstream_times_out_and_memory_stays_bounded(start_daemon, upstreams):
    cmd_timeout = 500
    up = upstreams()
    d = proxy(start_daemon, up, "null://", upstream_command_timeout=cmd_timeout, upstream_pool_size=2)
    c = d.conn(timeout=10.0)
    values = {"pre:%d" % i: ("value-%d" % i).encode() for i in range(200)}
    assert c.cmd("MSET", *[x for kv in values.items() for x in kv]) == "OK"
    rss0 = memory_kb(d)
    up.pause()
    try:
        # 1. a command waiting for the stopped upstream shows in INFO (answered by cachetoryd itself)
        p = d.conn(timeout=10.0)
        p.send(encode_command("GET", "pre:3"))
        time.sleep(0.1)
        info, _ = upstream_info(d)
        inflight = int(info.get("upstream_commands_in_flight", "-1"))
        r = p.read_reply()
        assert is_upstream_err(r), "GET with the upstream stopped: %r" % (r,)
        assert "timed out" in r, "the first command to a stopped upstream should time out: %r" % (r,)
        # single commands: an "ERR upstream" error within about the command timeout
        for cmd in (["GET", "pre:1"], ["SET", "x", "y"], ["MGET", "pre:1", "pre:2"], ["INCR", "n"]):
            r, dt = timed(c, *cmd)
            assert is_upstream_err(r), "%r with the upstream stopped: %r" % (cmd, r)
            assert dt <= cmd_timeout / 1000.0 + 0.7, "%r took %.2fs to fail (command timeout %d ms)" % (
                cmd, dt, cmd_timeout)
        # 2. three clients keep sending pipelined 8 KB SETs for 3 s (each keeps at most 256 unanswered)
        big = b"z" * 8192
        stop = threading.Event()
        stats = {"sent": 0, "replies": 0, "bad": []}
        lock = threading.Lock()

        def flood(k):
            f = d.conn(timeout=10.0)
            outstanding = 0
            try:
                while not stop.is_set():
                    if outstanding < 256:
                        f.send(b"".join(encode_command("SET", "flood:%d:%d" % (k, j), big) for j in range(32)))
                        outstanding += 32
                        with lock:
                            stats["sent"] += 32
                    r = f.read_reply()
                    outstanding -= 1
                    with lock:
                        stats["replies"] += 1
                    if not is_upstream_err(r):
                        stats["bad"].append(r)
                        return
                while outstanding:
                    r = f.read_reply()
                    outstanding -= 1
            except Exception as e:                 # a timeout here is a failure reported below
                stats["bad"].append(repr(e))
            finally:
                f.close()

        ts = [threading.Thread(target=flood, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        samples = []
        t0 = time.monotonic()
        while time.monotonic() < t0 + 3.0:
            samples.append((time.monotonic() - t0, memory_kb(d)))
            time.sleep(0.1)
        stop.set()
        for t in ts:
            t.join(15)
        assert not any(t.is_alive() for t in ts), "flooding clients did not get their replies"
        assert not stats["bad"], "flooding clients got %r" % stats["bad"][:3]
        assert d.alive()
        peak = max(s[1] for s in samples)
        early = max(s[1] for s in samples if s[0] <= 1.0)
        late = max(s[1] for s in samples if s[0] >= 2.0)
        assert peak - rss0 < 96 * 1024, "memory grew by %d MB with the upstream stopped (%d commands sent)" % (
            (peak - rss0) // 1024, stats["sent"])
        assert late - early < 24 * 1024, \
            "memory kept growing with the upstream stopped: %d MB at 1 s, %d MB at 2-3 s (%d commands sent)" % (
                early // 1024, late // 1024, stats["sent"])
        assert inflight >= 1, "upstream_commands_in_flight was %d with a command waiting" % inflight
        info, _ = upstream_info(d)
        assert int(info.get("upstream_timeouts", "0")) >= 1, "upstream_timeouts: %r" % info.get("upstream_timeouts")
    finally:
        up.resume()
    # 3. service resumes, and every reply matches its own command (no reply of a timed-out command
    #    given to a later one)
    ok = wait_for(lambda: c.cmd("GET", "pre:0") == b"value-0", 5.0)
    assert ok, "no service 5 s after SIGCONT: %r" % (c.cmd("GET", "pre:0"),)
    conns = [d.conn() for _ in range(4)]
    items = list(values.items())
    for n, (k, v) in enumerate(items):
        r = conns[n % 4].cmd("GET", k)
        assert r == v, "after SIGCONT, GET %s got %r (expected %r): replies crossed" % (k, r, v)
    keys = [k for k, _ in items[:50]]
    assert c.cmd("MGET", *keys) == [values[k] for k in keys]
    assert c.cmd("SET", "after", "ok") == "OK" and c.cmd("GET", "after") == b"ok"
    wait_for(lambda: upstream_info(d)[0].get("upstream_commands_in_flight") == "0", 3.0)
    assert upstream_info(d)[0].get("upstream_commands_in_flight") == "0", "commands in flight when idle"


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_clients_leaving_with_commands_in_flight(start_daemon, upstreams, serializer):
    """Clients that close their connection while their commands (plain, read-modify-write, MULTI) wait for
    a stopped upstream: cachetoryd survives the late replies and timeouts, and serves everyone afterwards."""
    up = upstreams()
    d = proxy(start_daemon, up, serializer, upstream_command_timeout=1500, upstream_pool_size=2)
    with d.conn() as c:
        assert c.cmd("SET", "k", "v") == "OK"
    up.pause()
    try:
        for n in range(6):
            g = d.conn()
            cmds = [["GET", "k"], ["SET", "s:%d" % n, "v"], ["INCR", "ctr"], ["APPEND", "ap", "x"],
                    ["MGET", "k", "s:0"], ["MULTI"], ["SET", "t", "1"], ["INCR", "t"], ["EXEC"]] * 20
            g.send(b"".join(encode_command(*x) for x in cmds))
            time.sleep(0.02)
            g.close()
        time.sleep(0.2)
    finally:
        up.resume()                               # the upstream answers while the clients are gone
    time.sleep(0.3)
    up.pause()
    try:
        for n in range(3):                        # and clients leaving while their commands time out
            g = d.conn()
            g.send(b"".join(encode_command("INCR", "late") for _ in range(50)))
            g.close()
        time.sleep(1.8)                           # past the command timeout
    finally:
        up.resume()
    assert d.alive(), "cachetoryd died after clients left with commands in flight"
    c = d.conn()
    ok = wait_for(lambda: c.cmd("GET", "k") == b"v", 5.0)
    assert ok, "no service after the upstream resumed: %r" % (c.cmd("GET", "k"),)
    for i in range(50):
        assert c.cmd("SET", "after:%d" % i, str(i)) == "OK"
        assert c.cmd("GET", "after:%d" % i) == str(i).encode()
    assert isinstance(c.cmd("INCR", "ctr"), int)


def test_upstream_closing_connections(start_daemon, upstreams):
    """Redis closing cachetoryd's connections (its idle `timeout`, or CLIENT KILL) is noticed and mended
    before the next command: clients see no error."""
    up = upstreams(extra=["--timeout", "1"])
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    time.sleep(2.5)                               # Redis closes idle pool connections after 1 s (its cron: within ~1 s more)
    for _ in range(3):
        r = c.cmd("GET", "k")
        assert r == b"v", "GET after Redis closed idle connections: %r" % (r,)
    with up.conn() as u:
        assert u.cmd("CLIENT", "KILL", "SKIPME", "yes") >= 1
    time.sleep(0.3)
    for _ in range(3):
        r = c.cmd("INCR", "n")
        assert isinstance(r, int), "INCR after CLIENT KILL of cachetoryd's connections: %r" % (r,)
