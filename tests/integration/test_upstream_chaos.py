"""Upstream mode, chaos: the upstream redis-server (AOF with appendfsync always) is killed with SIGKILL and
started again on the same port and directory 20 times, while a few clients keep a bounded mixed load going
through cachetoryd; for null:// and zstd://.

Each cycle: about 0.3 s of load with Redis up, SIGKILL (by PID, waited for), about 0.3 s of load with Redis
down (longer, bounded, until every client has had a command answered in that time), then Redis is started
again. Checked:
  - cachetoryd never dies: alive after every cycle and at the end;
  - while Redis is down (commands sent after the process was gone and answered before it was started
    again) every command gets "ERR upstream ..." within the command timeout plus a small slack; every
    command's latency is measured, and no command at any time waits longer than that bound;
  - service comes back within 1 s of Redis's return, for every cycle: from the moment the restarted
    redis-server answers PING itself (RedisServer.start() returns then) to the first successful command
    through cachetoryd, for a probe client and for each load client (each client's commands go to one
    pool connection, so this covers every connection the clients use); after a client's first success it
    sees no error until the next kill. The bound rests on upstream-retry-max=200 ms: a pool connection
    that failed tries again at most 200 ms later, and a connection to a port nobody listens on is refused
    at once, so every connection is back within about 200 ms of Redis being ready;
  - afterwards, reading Redis directly (values decoded for zstd://), with the clients' own bookkeeping
    (each client has its own connection and key space; a write that got an error may or may not have
    been applied, a write nobody sent may never appear):
      unique SETs      every acknowledged one is there with its value; an unacknowledged one is absent
                       or holds the value that was sent;
      overwritten keys the final value is the last acknowledged one or one attempted after it;
      GET / MGET       any value read was written for that key, and never one older than a write
                       acknowledged before the read (GET of an acknowledged unique key returns its value);
      INCR counters    each reply is above the previous acknowledged reply and at most the number of
                       INCRs sent; the final value lies between the last acknowledged reply and the number
                       sent;
      MSET groups      keys written only by MSET, one generation per call: every key of a group holds the
                       same generation (MSET is atomic, in Redis and in its AOF), the last acknowledged one
                       or a later attempted one; MGET never sees a group half written;
      SET + DEL        an acknowledged DEL leaves the key absent; DEL after an acknowledged SET removes one
                       key; otherwise the key is absent or holds the value sent;
      no other keys    a SCAN of Redis finds only keys some client wrote.
"""
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import traceback

import pytest

from helpers import Err, report_figure
from upstream_support import decode, is_upstream_err, proxy, upstream_info, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

CYCLES = 20
UP_TIME = 0.3               # s of load with Redis up, per cycle (counted from the clients' recovery)
DOWN_TIME = 0.3             # s of load with Redis killed, per cycle
CMD_TIMEOUT_MS = 500        # upstream-command-timeout
CONNECT_TIMEOUT_MS = 300    # upstream-connect-timeout
RETRY_MAX_MS = 200          # upstream-retry-max: the recovery bound rests on it
POOL_SIZE = 4
SLACK = 0.3                 # s on top of the command timeout for a reply to reach a Python client
RECOVERY_BOUND = 1.0        # s from Redis answering PING to the first success through cachetoryd
PROBE_LIMIT = 3.0           # s the probe keeps trying after a restart (a failure, but measured)
N_WORKERS = 3
MAX_OPS = 250000            # per client: the load is bounded by count ...
LOAD_DEADLINE = 100.0       # ... and by time (s from its start)
SOCK_TIMEOUT = 5.0          # a reply that takes longer is a hang, reported as such
ERR_PAUSE = 0.001           # a client waits this long after an error before its next command
N_OVER, N_CTR, N_GROUPS, GROUP_SIZE = 8, 4, 3, 4


def uval(t, n):
    return (b"u:%d:%d;" % (t, n)) * 8


def oval(t, j, seq):
    return (b"o:%d:%d:%d;" % (t, j, seq)) * 8


def gval(t, j, gen, m):
    return (b"g:%d:%d:%d:%d;" % (t, j, gen, m)) * 8


def dval(t, n):
    return (b"d:%d:%d;" % (t, n)) * 8


def _tag(value, fields):
    """The numbers of a value made by oval/gval (its first ';'-terminated part), or None if it has not
    that shape."""
    if not isinstance(value, bytes):
        return None
    head = value.split(b";", 1)[0].split(b":")
    if len(head) != fields + 1:
        return None
    try:
        return tuple(int(x) for x in head[1:])
    except ValueError:
        return None


class Worker(threading.Thread):
    """One load client: its own connection, its own key space (chaos:<t>:...), its own record of what it
    sent and what was acknowledged, and every command's (start, end, op, error?)."""

    def __init__(self, t, conn, stop, deadline):
        super().__init__(name="chaos-%d" % t, daemon=True)
        self.t = t
        self.conn = conn
        self.stop_ev = stop
        self.deadline = deadline
        self.rng = random.Random(1000 + t)
        self.ops = []               # (t0, t1, op, is_error)
        self.violations = []
        self.fatal = None
        self.last_ok = 0.0          # end of the last successful command
        self.last_sent = 0.0        # start of the last command answered
        self.errors_seen = {}       # error text -> count
        # unique SETs
        self.nu = 0
        self.uniq_acked = []        # keys
        self.uniq_acked_set = set()
        # overwritten keys: per key the seqs sent in order, seq -> index, index of the last acknowledged
        self.seq = 0
        self.over = [{"att": [], "idx": {}, "ack": None} for _ in range(N_OVER)]
        # counters: INCRs sent, acknowledged, last acknowledged reply
        self.ctr = [{"att": 0, "ack": 0, "last": 0} for _ in range(N_CTR)]
        # MSET groups: generations sent in order, gen -> index, index of the last acknowledged
        self.gen = 0
        self.groups = [{"att": [], "idx": {}, "ack": None} for _ in range(N_GROUPS)]
        # SET + DEL keys: n -> {set_ok, del_sent, del_ok}
        self.nd = 0
        self.dels = {}

    # -- keys ---------------------------------------------------------------------------------------
    def ukey(self, n):
        return "chaos:%d:u:%d" % (self.t, n)

    def okey(self, j):
        return "chaos:%d:o:%d" % (self.t, j)

    def ckey(self, j):
        return "chaos:%d:n:%d" % (self.t, j)

    def gkey(self, j, m):
        return "chaos:%d:g:%d:%d" % (self.t, j, m)

    def dkey(self, n):
        return "chaos:%d:d:%d" % (self.t, n)

    # -- commands -----------------------------------------------------------------------------------
    def violate(self, text):
        if len(self.violations) < 50:
            self.violations.append("client %d: %s" % (self.t, text))

    def call(self, op, *args):
        t0 = time.monotonic()
        r = self.conn.cmd(*args)
        t1 = time.monotonic()
        err = isinstance(r, Err)
        self.ops.append((t0, t1, op, err))
        self.last_sent = t0
        if err:
            if not is_upstream_err(r):
                self.violate("%s %s replied %r (expected a reply or 'ERR upstream ...')" % (op, args[1], r))
            text = str(r)
            self.errors_seen[text] = self.errors_seen.get(text, 0) + 1
            time.sleep(ERR_PAUSE)
        else:
            self.last_ok = t1
        return r

    def op_set_unique(self):
        n = self.nu
        self.nu += 1
        k = self.ukey(n)
        r = self.call("SET", "SET", k, uval(self.t, n))
        if r == "OK":
            self.uniq_acked.append(k)
            self.uniq_acked_set.add(k)
        elif not isinstance(r, Err):
            self.violate("SET %s replied %r" % (k, r))

    def op_get_unique(self):
        if not self.uniq_acked:
            return self.op_set_unique()
        k = self.rng.choice(self.uniq_acked)
        n = int(k.rsplit(":", 1)[1])
        r = self.call("GET", "GET", k)
        if isinstance(r, Err):
            return
        if r != uval(self.t, n):
            self.violate("GET %s (its SET was acknowledged) returned %r, expected %r" % (
                k, r if r is None else r[:40], uval(self.t, n)[:40]))

    def op_set_over(self):
        j = self.rng.randrange(N_OVER)
        st = self.over[j]
        seq = self.seq
        self.seq += 1
        st["idx"][seq] = len(st["att"])
        st["att"].append(seq)
        r = self.call("SET", "SET", self.okey(j), oval(self.t, j, seq))
        if r == "OK":
            st["ack"] = st["idx"][seq]
        elif not isinstance(r, Err):
            self.violate("SET %s replied %r" % (self.okey(j), r))

    def check_over_value(self, j, value, what):
        """A value of overwritten key j read at a time when st['ack'] was acknowledged: one sent for this
        key, not older than the last acknowledged write. Returns a complaint or None."""
        st = self.over[j]
        if value is None:
            if st["ack"] is not None:
                return "%s: key %s is missing, its SET #%d was acknowledged" % (
                    what, self.okey(j), st["att"][st["ack"]])
            return None
        tag = _tag(value, 3)
        if tag is None or tag[:2] != (self.t, j) or value != oval(self.t, j, tag[2]):
            return "%s: key %s holds %r, a value no client wrote for it" % (what, self.okey(j), value[:40])
        i = st["idx"].get(tag[2])
        if i is None:
            return "%s: key %s holds value #%d, which was never sent" % (what, self.okey(j), tag[2])
        if st["ack"] is not None and i < st["ack"]:
            return "%s: key %s holds value #%d, older than the acknowledged #%d" % (
                what, self.okey(j), tag[2], st["att"][st["ack"]])
        return None

    def op_get_over(self):
        j = self.rng.randrange(N_OVER)
        r = self.call("GET", "GET", self.okey(j))
        if isinstance(r, Err):
            return
        bad = self.check_over_value(j, r, "GET")
        if bad:
            self.violate(bad)

    def op_incr(self):
        j = self.rng.randrange(N_CTR)
        st = self.ctr[j]
        st["att"] += 1
        r = self.call("INCR", "INCR", self.ckey(j))
        if isinstance(r, Err):
            return
        if not isinstance(r, int) or isinstance(r, bool):
            self.violate("INCR %s replied %r" % (self.ckey(j), r))
            return
        if not (st["last"] < r <= st["att"]):
            self.violate("INCR %s replied %d: expected above the last acknowledged reply %d and at most the "
                         "%d INCRs sent" % (self.ckey(j), r, st["last"], st["att"]))
        st["ack"] += 1
        st["last"] = max(st["last"], r)

    def op_mset(self):
        j = self.rng.randrange(N_GROUPS)
        st = self.groups[j]
        gen = self.gen
        self.gen += 1
        st["idx"][gen] = len(st["att"])
        st["att"].append(gen)
        args = []
        for m in range(GROUP_SIZE):
            args += [self.gkey(j, m), gval(self.t, j, gen, m)]
        r = self.call("MSET", "MSET", *args)
        if r == "OK":
            st["ack"] = st["idx"][gen]
        elif not isinstance(r, Err):
            self.violate("MSET group %s replied %r" % (self.gkey(j, 0), r))

    def check_group_values(self, j, values, what):
        """The values of group j's keys, read at once: all absent (only if no MSET of it was acknowledged)
        or all of one generation sent for it, not older than the last acknowledged."""
        st = self.groups[j]
        if all(v is None for v in values):
            if st["ack"] is not None:
                return "%s: group %s is missing, its MSET gen %d was acknowledged" % (
                    what, self.gkey(j, 0), st["att"][st["ack"]])
            return None
        gens = set()
        for m, v in enumerate(values):
            tag = _tag(v, 4)
            if tag is None or tag[:2] != (self.t, j) or tag[3] != m or v != gval(self.t, j, tag[2], m):
                return "%s: key %s holds %r, a value no client wrote for it (group values %r)" % (
                    what, self.gkey(j, m), v if v is None else v[:40], [x if x is None else x[:24] for x in values])
            gens.add(tag[2])
        if len(gens) != 1:
            return "%s: group %s holds generations %r across its keys: MSET was not atomic" % (
                what, self.gkey(j, 0), sorted(gens))
        gen = gens.pop()
        i = st["idx"].get(gen)
        if i is None:
            return "%s: group %s holds gen %d, which was never sent" % (what, self.gkey(j, 0), gen)
        if st["ack"] is not None and i < st["ack"]:
            return "%s: group %s holds gen %d, older than the acknowledged gen %d" % (
                what, self.gkey(j, 0), gen, st["att"][st["ack"]])
        return None

    def op_mget(self):
        j = self.rng.randrange(N_GROUPS)
        r = self.call("MGET", "MGET", *[self.gkey(j, m) for m in range(GROUP_SIZE)])
        if isinstance(r, Err):
            return
        if not isinstance(r, list) or len(r) != GROUP_SIZE:
            self.violate("MGET of group %s replied %r" % (self.gkey(j, 0), r))
            return
        bad = self.check_group_values(j, r, "MGET")
        if bad:
            self.violate(bad)

    def op_set_del(self):
        n = self.nd
        self.nd += 1
        k = self.dkey(n)
        rec = {"set_ok": False, "del_sent": False, "del_ok": False}
        self.dels[n] = rec
        r = self.call("SET", "SET", k, dval(self.t, n))
        if r == "OK":
            rec["set_ok"] = True
        elif not isinstance(r, Err):
            self.violate("SET %s replied %r" % (k, r))
        rec["del_sent"] = True
        r = self.call("DEL", "DEL", k)
        if isinstance(r, Err):
            return
        if r not in (0, 1) or isinstance(r, bool):
            self.violate("DEL %s replied %r" % (k, r))
            return
        rec["del_ok"] = True
        if rec["set_ok"] and r != 1:
            self.violate("DEL %s replied %r after its SET was acknowledged (expected 1)" % (k, r))

    # -- the loop -------------------------------------------------------------------------------------
    def run(self):
        ops = [(0.30, self.op_set_unique), (0.50, self.op_set_over), (0.62, self.op_get_over),
               (0.70, self.op_get_unique), (0.80, self.op_incr), (0.90, self.op_mset), (0.95, self.op_mget),
               (1.01, self.op_set_del)]
        try:
            while (not self.stop_ev.is_set() and len(self.ops) < MAX_OPS
                   and time.monotonic() < self.deadline):
                x = self.rng.random()
                for bound, fn in ops:
                    if x < bound:
                        fn()
                        break
        except Exception as e:
            self.fatal = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4))

    def first_ok_after(self, t):
        """End time of this client's first successful command that ended after t, or None."""
        for t0, t1, _, err in self.ops:
            if t1 > t and not err:
                return t1
        return None


def _verify_final(workers, raw, serializer, probe_values):
    """Compare what Redis holds (read directly) with the clients' records. Returns (complaints,
    acknowledged writes checked)."""
    bad = []
    checked = 0

    def get_many(keys):
        out = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            out += [decode(serializer, v) for v in raw.mget(chunk)]
        return dict(zip(keys, out))

    expected_keys = {"chaos:probe"}
    for w in workers:
        t = w.t
        # unique SETs
        keys = [w.ukey(n) for n in range(w.nu)]
        expected_keys.update(keys)
        got = get_many(keys)
        for n, k in enumerate(keys):
            v = got[k]
            if k in w.uniq_acked_set:
                checked += 1
                if v != uval(t, n):
                    bad.append("unique key %s: its SET was acknowledged, Redis holds %r" % (
                        k, v if v is None else v[:40]))
            elif v is not None and v != uval(t, n):
                bad.append("unique key %s (SET not acknowledged) holds %r, not the value sent" % (k, v[:40]))
        # overwritten keys
        keys = [w.okey(j) for j in range(N_OVER)]
        expected_keys.update(keys)
        got = get_many(keys)
        for j, k in enumerate(keys):
            if w.over[j]["ack"] is not None:
                checked += 1
            complaint = w.check_over_value(j, got[k], "final")
            if complaint:
                bad.append(complaint)
        # counters
        keys = [w.ckey(j) for j in range(N_CTR)]
        expected_keys.update(keys)
        got = get_many(keys)
        for j, k in enumerate(keys):
            st = w.ctr[j]
            checked += st["ack"]
            v = got[k]
            lo = max(st["last"], st["ack"])
            try:
                n = 0 if v is None else int(v)
            except ValueError:
                bad.append("counter %s holds %r, not a number" % (k, v[:40]))
                continue
            if not (lo <= n <= st["att"]):
                bad.append("counter %s holds %r: expected between %d (last acknowledged reply; %d INCRs "
                           "acknowledged) and %d (INCRs sent)" % (k, v, st["last"], st["ack"], st["att"]))
        # MSET groups
        for j in range(N_GROUPS):
            keys = [w.gkey(j, m) for m in range(GROUP_SIZE)]
            expected_keys.update(keys)
            got = get_many(keys)
            if w.groups[j]["ack"] is not None:
                checked += 1
            complaint = w.check_group_values(j, [got[k] for k in keys], "final")
            if complaint:
                bad.append(complaint)
        # SET + DEL
        keys = [w.dkey(n) for n in range(w.nd)]
        expected_keys.update(keys)
        got = get_many(keys)
        for n, k in enumerate(keys):
            rec, v = w.dels[n], got[k]
            if rec["del_ok"]:
                checked += 1
                if v is not None:
                    bad.append("key %s: its DEL was acknowledged, Redis holds %r" % (k, v[:40]))
            elif v is not None and v != dval(t, n):
                bad.append("key %s holds %r, not the value sent" % (k, v[:40]))
    v = decode(serializer, raw.get("chaos:probe"))
    if v not in probe_values:
        bad.append("chaos:probe holds %r, which the probe never wrote" % (v,))
    # no key nobody wrote
    strangers = []
    for k in raw.scan_iter(count=1000):
        if k.decode("latin-1") not in expected_keys:
            strangers.append(k)
    if strangers:
        bad.append("%d keys in Redis that no client wrote, e.g. %r" % (len(strangers), strangers[:5]))
    return bad, checked


@pytest.fixture
def aof_dir():
    """A directory for Redis's AOF on tmpfs when there is one, removed after the upstream stopped (this
    fixture is set up before `upstreams`, so torn down after it). appendfsync always still makes Redis
    write a command to its AOF before replying, which is what survives SIGKILL (the page cache outlives
    the process); tmpfs only spares each write a disk flush, which would cap the load at a few hundred
    writes per second."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="ctd-chaos-", dir=base)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_upstream_killed_and_restarted_under_mixed_load(aof_dir, start_daemon, upstreams, serializer):
    up = upstreams(appendonly=True, extra=["--dir", aof_dir])
    d = proxy(start_daemon, up, serializer, upstream_command_timeout=CMD_TIMEOUT_MS,
              upstream_connect_timeout=CONNECT_TIMEOUT_MS, upstream_retry_max=RETRY_MAX_MS,
              upstream_pool_size=POOL_SIZE)
    probe = d.conn(timeout=SOCK_TIMEOUT)
    r = probe.cmd("SET", "chaos:probe", "p:start")
    assert r == "OK", "SET through cachetoryd with Redis up replied %r" % (r,)
    probe_values = {b"p:start"}
    err_bound = CMD_TIMEOUT_MS / 1000.0 + SLACK

    stop = threading.Event()
    t_begin = time.monotonic()
    workers = [Worker(t, d.conn(timeout=SOCK_TIMEOUT), stop, t_begin + LOAD_DEADLINE) for t in range(N_WORKERS)]
    for w in workers:
        w.start()

    cycles = []                 # per cycle: times of kill, death, restart, ready, probe success
    probe_lat = []              # (latency, reply) of every probe command
    t_ready = t_begin
    try:
        for cyc in range(CYCLES):
            # Redis up: load until UP_TIME after the clients recovered (cycle 0: after the start)
            time.sleep(max(0.0, t_ready + UP_TIME - time.monotonic()))
            for w in workers:
                assert w.fatal is None, "cycle %d: client %d failed: %s" % (cyc, w.t, w.fatal)
            assert d.alive(), "cachetoryd died during cycle %d with Redis up:\n%s" % (cyc, d.status_text())
            t_kill = time.monotonic()
            status = up.kill()
            t_dead = time.monotonic()
            assert status == -9, "redis-server after SIGKILL: exit status %r (expected -9)" % (status,)
            # load with Redis down: DOWN_TIME, and until every client had a command sent and answered in
            # that time (a stalled client or machine would otherwise leave the outage untested)
            time.sleep(DOWN_TIME)
            deadline = t_dead + DOWN_TIME + 2.0
            while time.monotonic() < deadline and not all(w.last_sent >= t_dead or not w.is_alive() for w in workers):
                time.sleep(0.005)
            assert d.alive(), "cachetoryd died during cycle %d with Redis down:\n%s" % (cyc, d.status_text())
            t_start = time.monotonic()
            up.start()
            t_ready = time.monotonic()
            # the probe: first success through cachetoryd after Redis answers PING
            t_ok, last = None, None
            n_try = 0
            while time.monotonic() < t_ready + PROBE_LIMIT:
                n_try += 1
                val = b"p:%d:%d" % (cyc, n_try)
                probe_values.add(val)
                p0 = time.monotonic()
                last = probe.cmd("SET", "chaos:probe", val)
                p1 = time.monotonic()
                probe_lat.append((p1 - p0, last))
                if last == "OK":
                    t_ok = p1
                    break
                assert is_upstream_err(last), "probe SET after restart %d replied %r" % (cyc, last)
                time.sleep(0.005)
            # every client serves again (bounded wait; the check itself comes after the run)
            deadline = t_ready + RECOVERY_BOUND + 0.5
            while time.monotonic() < deadline and not all(w.last_ok > t_ready or not w.is_alive() for w in workers):
                time.sleep(0.005)
            cycles.append({"kill": t_kill, "dead": t_dead, "start": t_start, "ready": t_ready, "ok": t_ok,
                           "tries": n_try, "last": last})
            assert d.alive(), "cachetoryd died after restart %d:\n%s" % (cyc, d.status_text())
        time.sleep(max(0.0, t_ready + UP_TIME - time.monotonic()))
    finally:
        stop.set()
        for w in workers:
            w.join(SOCK_TIMEOUT + 5)
    t_end = time.monotonic()
    assert not any(w.is_alive() for w in workers), "load clients did not finish (a reply never came?)"
    for w in workers:
        assert w.fatal is None, "client %d failed: %s" % (w.t, w.fatal)
    assert d.alive(), "cachetoryd died at the end of the run:\n%s" % d.status_text()
    info, _ = upstream_info(d)

    # ---- latencies and errors, cycle by cycle ----------------------------------------------------
    problems = []
    all_ops = [(w.t,) + o for w in workers for o in w.ops]
    for w in workers:
        if len(w.ops) >= MAX_OPS:
            problems.append("client %d reached its %d commands before the run ended" % (w.t, MAX_OPS))
    down_err_lat = []
    recoveries, client_recoveries = [], []
    for cyc, cy in enumerate(cycles):
        # sent while Redis was down (answered then, or after it was started again)
        sent_down = [o for o in all_ops if cy["dead"] <= o[1] < cy["start"]]
        down = [o for o in sent_down if o[2] <= cy["start"]]
        oks = [o for o in down if not o[4]]
        if oks:
            problems.append("cycle %d: %d commands acknowledged while Redis was down, e.g. %r at +%.3fs" % (
                cyc, len(oks), oks[0][3], oks[0][1] - cy["dead"]))
        for w in workers:
            if not any(o[0] == w.t for o in down):
                spans = ["%s from %+.3fs to %+.3fs%s" % (o[2], o[0] - cy["dead"], o[1] - cy["dead"],
                                                         " (error)" if o[3] else "")
                         for o in w.ops if o[0] < cy["start"] and o[1] > cy["dead"]]
                problems.append("cycle %d: client %d had no command sent and answered while Redis was down (%.3fs "
                                "from its death to its restart); its commands overlapping that time, relative to "
                                "the death: %s" % (cyc, w.t, cy["start"] - cy["dead"], "; ".join(spans[:6]) or "none"))
        down_err_lat += [o[2] - o[1] for o in sent_down if o[4]]
        if sent_down and max(o[2] - o[1] for o in sent_down) > err_bound:
            worst = max(sent_down, key=lambda o: o[2] - o[1])
            problems.append("cycle %d: with Redis down a %s took %.3fs to fail (command timeout %d ms + %.1fs)" % (
                cyc, worst[3], worst[2] - worst[1], CMD_TIMEOUT_MS, SLACK))
        if cy["ok"] is None:
            problems.append("cycle %d: no probe SET succeeded within %.0fs of Redis answering PING (%d tries, "
                            "last reply %r)" % (cyc, PROBE_LIMIT, cy["tries"], cy["last"]))
            recoveries.append(PROBE_LIMIT)
        else:
            recoveries.append(cy["ok"] - cy["ready"])
        next_kill = cycles[cyc + 1]["kill"] if cyc + 1 < len(cycles) else t_end
        for w in workers:
            first = w.first_ok_after(cy["ready"])
            if first is None or first > next_kill:
                problems.append("cycle %d: client %d had no successful command before the next kill" % (cyc, w.t))
                continue
            client_recoveries.append(max(0.0, first - cy["ready"]))
            # once served again, no error until the next kill
            errs = [o for o in w.ops if o[3] and o[0] >= first and o[1] <= next_kill]
            if errs:
                problems.append("cycle %d: client %d got %d errors with Redis up after it was served again, "
                                "the first %s at +%.3fs after Redis was ready" % (
                                    cyc, w.t, len(errs), errs[0][2], errs[0][0] - cy["ready"]))
    slow_rec = [(i, r) for i, r in enumerate(recoveries) if r > RECOVERY_BOUND]
    if slow_rec:
        problems.append("recovery over %.1fs (upstream-retry-max %d ms) in cycles %r" % (
            RECOVERY_BOUND, RETRY_MAX_MS, [(i, round(r, 3)) for i, r in slow_rec]))
    if client_recoveries and max(client_recoveries) > RECOVERY_BOUND:
        problems.append("a load client was served again only %.3fs after Redis answered PING (bound %.1fs)" % (
            max(client_recoveries), RECOVERY_BOUND))
    lat_all = [o[2] - o[1] for o in all_ops] + [x[0] for x in probe_lat]
    if max(lat_all) > err_bound:
        worst = max(all_ops, key=lambda o: o[2] - o[1])
        problems.append("a command took %.3fs (command timeout %d ms + %.1fs); slowest client command: %s "
                        "of client %d, %.3fs" % (max(lat_all), CMD_TIMEOUT_MS, SLACK, worst[3], worst[0],
                                                 worst[2] - worst[1]))
    for w in workers:
        problems += w.violations

    # ---- what Redis holds ------------------------------------------------------------------------
    raw = up.client(0)
    final_bad, checked = _verify_final(workers, raw, serializer, probe_values)
    problems += final_bad
    acked_cmds = sum(1 for o in all_ops if not o[4])

    name = "upstream chaos %s" % serializer
    report_figure(name + ": restarts survived", len(cycles))
    report_figure(name + ": acknowledged writes checked", checked)
    report_figure(name + ": commands (acknowledged / sent)", "%d / %d" % (acked_cmds, len(all_ops)))
    report_figure(name + ": recovery max", "%.3f" % max(recoveries), "s")
    report_figure(name + ": recovery median", "%.3f" % statistics.median(recoveries), "s")
    if client_recoveries:
        report_figure(name + ": client recovery max", "%.3f" % max(client_recoveries), "s")
    if down_err_lat:
        report_figure(name + ": max error latency while down", "%.1f" % (max(down_err_lat) * 1000), "ms")

    assert len(cycles) == CYCLES
    assert not problems, "%d problems over %d kill/restart cycles (%s):\n  %s\nupstream errors seen: %r" % (
        len(problems), len(cycles), serializer, "\n  ".join(problems[:40]),
        sorted({e for w in workers for e in w.errors_seen})[:8])
    assert checked >= 500, "only %d acknowledged writes were checked (expected at least 500 over %d cycles)" % (
        checked, CYCLES)
    assert int(info.get("upstream_reconnects", "0")) >= CYCLES, \
        "INFO upstream_reconnects is %r after %d restarts" % (info.get("upstream_reconnects"), CYCLES)
    assert d.alive(), "cachetoryd died:\n%s" % d.status_text()
