"""Near cache (issue 15): the consistency test. Every read through cachetoryd is checked against the
history of the writes.

Two writers change a hot set of 50 keys: W1 straight on redis-server, W2 through cachetoryd (each on its
own connection), values "w1:<seq>" / "w2:<seq>" (unique, increasing), each write recorded with the time it
was sent and the time its reply was read. Three readers GET and MGET random keys through cachetoryd
(near cache on, zstd://), recording the time each read was sent and what it returned; W2 also reads each
key it wrote right after the write's reply, on another connection through cachetoryd.

A read that returned the value of write V is stale when another write N of the same key was sent after V
had been acknowledged (so Redis applied N after V) and N was acknowledged before the read was sent; its
staleness is (read sent) - (N acknowledged). The times are taken conservatively (sent: just before the
request is written; acknowledged: after the reply was read), so a staleness found here did happen.
Targets: a newer write through cachetoryd is never missed (D = 0); a newer direct write is seen within
D = 50 ms (the invalidation's delivery). Every value read must be one that was written (or nil before the
key's first write). The near cache must have served more than 30 % of the key reads.

The reads are checked while the load runs, in batches (the history of the writes is kept, the reads are
not), so that a long run (NEAR_CONSISTENCY_SECONDS, default 25; scripts/near-consistency) needs little
memory. A batch holds the reads answered before every write then in flight was sent: the writes that can
matter to them are all in the history.
"""
import bisect
import collections
import os
import random
import threading
import time

import pytest

from helpers import report_figure
from test_codec_support import libzstd_compress
from test_near_cache import info, near_proxy, up_calls
from upstream_support import upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

SECONDS = float(os.environ.get("NEAR_CONSISTENCY_SECONDS") or 25)
KEYS = ["hot:%02d" % i for i in range(50)]
READERS = 3
D_DIRECT_MS = 50.0
HIT_RATIO_MIN = 0.30
INF = float("inf")


def _writer(name, conn, encode, log, inflight, errors, stop, seed, check=None, check_log=None):
    """SETs of random hot keys on conn, each appended to log once acknowledged (inflight[name]: when the
    write in flight was sent, None between writes). With check (a connection through cachetoryd), each
    acknowledged write is followed at once by a GET of its key there: a read that must not miss it (D = 0)."""
    rnd = random.Random(seed)
    seq = 0
    try:
        while not stop.is_set():
            key = rnd.choice(KEYS)
            seq += 1
            value = b"%s:%d" % (name.encode(), seq)
            payload = encode(value)
            inflight[name] = time.monotonic()
            t0 = time.monotonic()
            r = conn.cmd("SET", key, payload)
            t1 = time.monotonic()
            if r != "OK":
                errors.append("%s: SET %s replied %r" % (name, key, r))
                return
            log.append((key, value, t0, t1, name))
            inflight[name] = None
            if check is not None:
                t2 = time.monotonic()
                r = check.cmd("GET", key)
                t3 = time.monotonic()
                if r is not None and not isinstance(r, bytes):
                    errors.append("%s: GET %s after the write replied %r" % (name, key, r))
                    return
                check_log.append((t2, t3, [key], [r]))
            time.sleep(rnd.uniform(0.002, 0.006))
    except Exception as e:                      # reported by the test
        errors.append("%s: %r" % (name, e))


def _reader(idx, conn, log, errors, stop, seed):
    rnd = random.Random(seed)
    try:
        while not stop.is_set():
            if rnd.random() < 0.7:
                keys = [rnd.choice(KEYS)]
                t0 = time.monotonic()
                r = conn.cmd("GET", keys[0])
                t1 = time.monotonic()
                vals = [r]
            else:
                keys = rnd.sample(KEYS, rnd.randint(2, 5))
                t0 = time.monotonic()
                vals = conn.cmd("MGET", *keys)
                t1 = time.monotonic()
            if not isinstance(vals, list) or len(vals) != len(keys) or \
                    not all(v is None or isinstance(v, bytes) for v in vals):
                errors.append("reader %d: %s %r replied %r" % (idx, "GET" if len(keys) == 1 else "MGET", keys, vals))
                return
            log.append((t0, t1, keys, vals))
    except Exception as e:
        errors.append("reader %d: %r" % (idx, e))


class Checker:
    """The history of the writes (per key, sorted by send time) and the figures of the reads checked.

    Long runs: a write is forgotten once a newer write of its key (sent after it was acknowledged) was
    acknowledged more than KEEP_S before the reads being checked; a read that still returns it is stale by
    more than that, and counted so (its value is recognised by the writer's sequence number)."""

    KEEP_S = 30.0

    def __init__(self):
        self.writes = {k: [] for k in KEYS}     # (sent, acked, who, seq)
        self.by_value = {}
        self.forgotten = {k: {"w1": 0, "w2": 0} for k in KEYS}   # highest sequence number forgotten
        self.forgotten_by = {}                  # key -> (acked, who) of the write that made them old
        self.nwrites = {"w1": 0, "w2": 0}
        self.reads = self.key_reads = 0
        self.max_stale_ms = 0.0
        self.stale_direct = self.stale_proxy = self.unknown = 0
        self.examples = []

    def add_write(self, key, value, t0, t1, who):
        seq = int(value.split(b":")[1])
        bisect.insort(self.writes[key], (t0, t1, who, seq))
        self.by_value[(key, value)] = (t0, t1, who)
        self.nwrites[who] += 1

    def forget(self, horizon):
        limit = horizon - self.KEEP_S
        for key, ws in self.writes.items():
            newest = None
            for w in ws:
                if w[1] < limit and (newest is None or w[0] > newest[0]):
                    newest = w
            if newest is None:
                continue
            n = 0
            while n < len(ws) and ws[n][1] < newest[0]:
                t0, t1, who, seq = ws[n]
                del self.by_value[(key, b"%s:%d" % (who.encode(), seq))]
                self.forgotten[key][who] = max(self.forgotten[key][who], seq)
                n += 1
            if n:
                del ws[:n]
                self.forgotten_by[key] = (newest[1], newest[2])

    def _example(self, text):
        if len(self.examples) < 10:
            self.examples.append(text)

    def _stale(self, key, val, t0, direct, through):
        stale_ms = (t0 - min(direct, through)) * 1000.0
        self.max_stale_ms = max(self.max_stale_ms, stale_ms)
        if through < t0:
            self.stale_proxy += 1
            self._example("read of %s sent %.2f ms after a newer write through cachetoryd was acknowledged "
                          "returned %r" % (key, (t0 - through) * 1000.0, val))
        elif (t0 - direct) * 1000.0 > D_DIRECT_MS:
            self.stale_direct += 1
            self._example("read of %s sent %.2f ms after a newer direct write was acknowledged returned %r" % (
                key, (t0 - direct) * 1000.0, val))

    def check_read(self, t0, t1, keys, vals):
        self.reads += 1
        for key, val in zip(keys, vals):
            self.key_reads += 1
            if val is None:
                v_ack = -INF                    # nil: only before the key's first write
            else:
                w = self.by_value.get((key, val))
                if w is None:
                    who, _, seq = val.partition(b":")
                    who = who.decode("latin-1")
                    if who in ("w1", "w2") and seq.isdigit() and 0 < int(seq) <= self.forgotten[key][who]:
                        acked, by = self.forgotten_by[key]          # a long forgotten value
                        self._stale(key, val, t0, acked if by == "w1" else INF, acked if by == "w2" else INF)
                        continue
                if w is None or w[0] > t1:
                    self.unknown += 1
                    self._example("read of %s returned %r: %s" % (
                        key, val, "never written to it" if w is None else "written only after the read answered"))
                    continue
                v_ack = w[1]
            # the writes sent after the value's write was acknowledged: Redis applied them after it
            direct = through = INF
            ws = self.writes[key]
            for i in range(len(ws) - 1, -1, -1):
                s, a, who, _ = ws[i]
                if s <= v_ack:
                    break
                if who == "w1":
                    direct = min(direct, a)
                else:
                    through = min(through, a)
            self._stale(key, val, t0, direct, through)


def _drain(checker, write_logs, read_logs, inflight, final=False):
    """Move the acknowledged writes into the history, then check the reads that answered before every write
    still in flight was sent (all of them once the load stopped)."""
    horizon = INF if final else time.monotonic() - 0.2
    for who in ("w1", "w2"):                    # read before the logs: a write started later is newer
        since = inflight.get(who)
        if since is not None and not final:
            horizon = min(horizon, since)
    for log in write_logs:
        while log:
            checker.add_write(*log.popleft())
    for log in read_logs:
        while log and log[0][1] < horizon:
            checker.check_read(*log.popleft())
    if not final:
        checker.forget(horizon)


@pytest.mark.timing
def test_consistency_under_concurrent_writers(start_daemon, upstreams):
    up = upstreams()
    d = near_proxy(start_daemon, up, "zstd://")
    stop = threading.Event()
    errors = []
    w1_log, w2_log = collections.deque(), collections.deque()
    read_logs = [collections.deque() for _ in range(READERS + 1)]   # the last one: W2's reads of its writes
    inflight = {"w1": None, "w2": None}
    checker = Checker()
    direct = up.conn()
    through = d.conn()
    readers = [d.conn() for _ in range(READERS)]
    i0 = info(d)
    g0 = up_calls(up, "get") + up_calls(up, "mget")
    seed = random.randrange(1 << 30)
    threads = [
        threading.Thread(target=_writer, args=("w1", direct, libzstd_compress, w1_log, inflight, errors, stop,
                                               seed + 1)),
        threading.Thread(target=_writer, args=("w2", through, lambda v: v, w2_log, inflight, errors, stop,
                                               seed + 2, d.conn(), read_logs[READERS])),
    ] + [threading.Thread(target=_reader, args=(i, readers[i], read_logs[i], errors, stop, seed + 10 + i))
         for i in range(READERS)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    try:
        while time.monotonic() < t_start + SECONDS and not errors:
            time.sleep(0.25)
            _drain(checker, (w1_log, w2_log), read_logs, inflight)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    elapsed = time.monotonic() - t_start
    assert not any(t.is_alive() for t in threads), "load threads did not stop"
    assert not errors, "errors during the load: %r" % errors[:5]
    _drain(checker, (w1_log, w2_log), read_logs, inflight, final=True)
    i1 = info(d)
    assert i1["near_cache_state"] == "on", i1.get("near_cache_off_reason")
    hits = int(i1["near_cache_hits"]) - int(i0["near_cache_hits"])
    upstream_reads = up_calls(up, "get") + up_calls(up, "mget") - g0
    ratio = hits / float(max(1, checker.key_reads))
    summary = ("near cache consistency: %.1f s, %d direct writes, %d writes through cachetoryd, %d reads "
               "(%d key reads), hit ratio %.1f%%, upstream GET/MGET %d, invalidations %d, races %d; "
               "max staleness %.2f ms, stale reads beyond %g ms after direct writes: %d, after writes "
               "through cachetoryd: %d, unknown values: %d" % (
                   elapsed, checker.nwrites["w1"], checker.nwrites["w2"], checker.reads, checker.key_reads,
                   100 * ratio, upstream_reads,
                   int(i1["near_cache_invalidations"]) - int(i0["near_cache_invalidations"]),
                   int(i1["near_cache_races"]) - int(i0["near_cache_races"]), checker.max_stale_ms, D_DIRECT_MS,
                   checker.stale_direct, checker.stale_proxy, checker.unknown))
    print(summary)
    report_figure("near cache max staleness", "%.2f" % checker.max_stale_ms, "ms")
    report_figure("near cache stale reads beyond %g ms" % D_DIRECT_MS, checker.stale_direct + checker.stale_proxy)
    report_figure("near cache hit ratio (consistency test)", "%.1f" % (100 * ratio), "%")
    detail = summary + "\n" + "\n".join(checker.examples)
    assert checker.nwrites["w1"] > 50 * SECONDS and checker.nwrites["w2"] > 50 * SECONDS, "too few writes: " + detail
    assert checker.key_reads > 200 * SECONDS, "too few reads: " + detail
    assert checker.unknown == 0, detail
    assert checker.stale_proxy == 0, detail
    assert checker.stale_direct == 0, detail
    assert ratio > HIT_RATIO_MIN, "the near cache served too little to prove anything: " + detail
