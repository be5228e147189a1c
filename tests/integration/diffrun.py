"""
The differential test's runner (test_differential.py and scripts/differential use it; no test here).

Deterministic variant: run_sequence(config, ops) starts fresh servers -- a reference redis-server, and
cachetoryd in the configuration (with its own upstream redis-server for the redis:// ones) -- sends the
same commands to both on one connection each (pipelined in batches; a connection's replies come in
order, so the outcome is the same as one at a time), compares every reply (compare_reply), then every
database's keyspace (compare_keyspace). On a mismatch, shortest_failing(...) finds the shortest
failing prefix by bisection and then removes what it can from it (bounded numbers of tries, fresh
servers each time), and report(...) prints the seed, the configuration and the sequence.

Multi-client variant: run_multi(config, seed, ...) has several threads, on connections of their own,
some in other databases, write values that name their writer, database, key and sequence number; the
order between clients is not deterministic, so invariants are checked (check_multi): every
acknowledged write reads back in its database unless its own client overwrote or deleted it since,
no key is in a database nobody wrote it to, and no value is one that nobody wrote.

Differences from Redis that are by design are listed in ALLOWED_ERRORS below, explicitly; anything
else that differs is a failure.
"""
import os
import random
import re
import threading
import time

import conftest
import diffgen
from helpers import ConnectionClosed, Err
from upstream_support import RedisServer, decode

# ---- configurations -------------------------------------------------------------------------------


class Config:
    def __init__(self, name, serializer, upstream=False, pool=None, passthrough=False, in_make_test=True):
        self.name = name
        self.serializer = serializer
        self.upstream = upstream
        self.pool = pool
        self.passthrough = passthrough
        self.in_make_test = in_make_test

    def features(self):
        f = set(diffgen.DEFAULT_FEATURES)
        if self.passthrough:
            f.add("passthrough")
        if self.upstream:
            f.discard("bitop-in-multi")     # refused there, by design (README): not a difference to find
        return f

    def __repr__(self):
        return self.name


CONFIGS = {c.name: c for c in [
    Config("memory-null", "null://"),
    Config("memory-zstd", "zstd://"),
    Config("redis-zstd-pool1", "zstd://", upstream=True, pool=1, passthrough=True),
    Config("redis-zstd-pool4", "zstd://", upstream=True, pool=4, passthrough=True),
    Config("redis-null-pool4", "null://", upstream=True, pool=4, passthrough=True, in_make_test=False),
]}
MULTI_CONFIGS = ["memory-zstd", "redis-zstd-pool1", "redis-zstd-pool4"]

DATABASES = diffgen.DATABASES
# Each cachetoryd keeps its own default of 16 databases in front of an upstream: a SELECT the
# upstream refuses must be refused to the client (issue 11, item 3), which a shared limit would hide.
REDIS_EXTRA = ["--databases", str(DATABASES)]

# ---- differences allowed by design ---------------------------------------------------------------
# Each entry: (name, why, predicate(config, cmd, redis_reply, cachetoryd_reply) -> bool). A reply pair
# that one of them accepts is not a mismatch (it is counted and shown in the summary). Keep this list
# short and every entry justified: it is the documented set of cachetoryd-specific errors.
_REFUSED_TX = re.compile(r"^ERR upstream: in this transaction .* changes a key that a later read-modify-write "
                         r"on encoded values reads; split the transaction or use null://$")


def refused_transaction(cfg, cmd, ours, queued):
    """True if ours is cachetoryd's documented refusal of a whole MULTI/EXEC block in front of an upstream
    with a codec (src/backend/redis.c: a read-modify-write on encoded values that reads a key an earlier
    command of the same block changes in a way it cannot follow cannot run inside one upstream
    MULTI/EXEC): EXEC answers that error, and nothing of the block ran. The runner
    then sends DISCARD instead of EXEC to the reference, so that both sides go on from the same state;
    had some of the block run, the keyspace comparison (or a later reply) would show it."""
    return bool(cfg.upstream and cfg.serializer != "null://" and _name(cmd) == "EXEC" and isinstance(ours, Err)
                and _REFUSED_TX.match(ours))


# Differences from Redis that are by design: (name, why, predicate(cfg, cmd, redis_reply, ours, queued)).
# A reply pair that one accepts is not a mismatch; it is counted, and the counts are reported. Keep this
# list short, every entry justified: it is the documented set of cachetoryd-specific errors.
# Not generated at all, because cachetoryd refuses them by design (README) and they would need an entry
# here: WATCH / UNWATCH (refused in proxy mode; inside MULTI the refusal also aborts the transaction, where
# Redis says "WATCH inside MULTI is not allowed" and goes on), blocking and pub/sub commands, EVAL and
# friends; nor RANDOMKEY or SCAN cursors (random by definition).
ALLOWED_ERRORS = [
    ("refused-transaction",
     "in front of an upstream with a codec, a MULTI block whose read-modify-write reads a key that an "
     "earlier command of the block changes is refused as a whole (see refused_transaction); the "
     "reference was sent DISCARD instead of EXEC",
     lambda cfg, cmd, a, b, queued: a == "OK" and refused_transaction(cfg, ["EXEC"], b, queued)),
]

# ---- KNOWN_OPEN: TEMPORARY exclusions of defects being fixed --------------------------------------
# Each entry: a defect the differential test found that is being fixed elsewhere (issue 11). While an
# entry is here, in its configurations:
#   * the deterministic test does not send the ops its `match(op, in_multi)` selects, nor generate its
#     `features`; the multi-client test turns its `multi_flags` off. The test says so (a warning with the
#     number of ops left out), it does not pass silently;
#   * test_known_open[entry-config] runs the entry's `repro` (its shortest sequence found), and is reported
#     as xfail with the difference while the defect is there; once the defect is fixed it passes, which
#     FAILS the run (strict): then delete the entry. The merged main must end with KNOWN_OPEN empty, and the
#     entry's repro goes to test_differential.REGRESSIONS.
KNOWN_OPEN = {}


def known_open_for(config):
    return {name: e for name, e in KNOWN_OPEN.items() if config in e["configs"]}


def known_open_filters(config, keep=None):
    """(features to drop, exclude predicates with their entry names, multi flags to turn off) of the
    KNOWN_OPEN entries open in config, except `keep`."""
    drop, preds, names, flags = set(), [], [], set()
    for name, e in known_open_for(config).items():
        if name == keep:
            continue
        drop |= set(e.get("features", ()))
        if "match" in e:
            preds.append(e["match"])
            names.append(name)
        flags |= set(e.get("multi_flags", ()))
    return drop, preds, names, flags


# ---- reply comparison -----------------------------------------------------------------------------
PTTL_TOLERANCE_MS = 3000      # two servers a few ms apart, a pipelined batch, the keyspace reads, and a
TTL_TOLERANCE_S = 3           # loaded machine (sanitizer builds); a wrong TTL is off by far more


def _name(cmd):
    a = cmd[0]
    return (a.decode("latin-1") if isinstance(a, bytes) else a).upper()


def _pairs(lst):
    return sorted(zip(lst[0::2], lst[1::2]))


def same_reply(cmd, a, b):
    """True if b (cachetoryd) is the same reply as a (redis) for cmd, allowing only for time (TTLs within
    a tolerance) and order where Redis does not define one (KEYS, SCAN, HGETALL)."""
    name = _name(cmd)
    if isinstance(a, Err) or isinstance(b, Err):
        return a == b
    if name in ("TTL", "EXPIRETIME") and isinstance(a, int) and isinstance(b, int):
        return a == b if min(a, b) < 0 else abs(a - b) <= TTL_TOLERANCE_S
    if name in ("PTTL", "PEXPIRETIME") and isinstance(a, int) and isinstance(b, int):
        return a == b if min(a, b) < 0 else abs(a - b) <= PTTL_TOLERANCE_MS
    if name == "KEYS" and isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    if name == "SCAN" and isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 2:
        return a[0] == b[0] and isinstance(a[1], list) and isinstance(b[1], list) and sorted(a[1]) == sorted(b[1])
    if name == "HGETALL" and isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and _pairs(a) == _pairs(b)
    return a == b and type(a) is type(b)


def allowed_difference(cfg, cmd, a, b, queued=()):
    """The name of the ALLOWED_ERRORS entry that accepts this pair, or None."""
    for name, _, pred in ALLOWED_ERRORS:
        if pred(cfg, cmd, a, b, queued):
            return name
    return None


def short(r, limit=120):
    """repr of a reply, long ones cut."""
    s = repr(r)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


# ---- servers ----------------------------------------------------------------------------------------


class Rig:
    """The servers of one run: a reference redis-server (unless reference=False), and cachetoryd in the
    configuration with its own upstream redis-server for the redis:// ones. Always stopped by PID."""

    def __init__(self, cfg, reference=True, touched_by=None):
        self.cfg = cfg
        self.ref = self.up = self.daemon = None
        self._stop = []
        self.problems = []
        try:
            if reference:
                self.ref = RedisServer(extra=REDIS_EXTRA).start()
            opts = {"serializer": cfg.serializer, "codec_thread_min_size": "1kb"}
            if cfg.upstream:
                self.up = RedisServer(extra=REDIS_EXTRA).start()
                opts.update(backend=self.up.url(0), upstream_pool_size=cfg.pool,
                            passthrough="yes" if cfg.passthrough else "no")
            else:
                opts.update(backend="memory://", databases=DATABASES)
            self.daemon = conftest.spawn_daemon(opts, stop_list=self._stop, redis=False)
            if touched_by:
                self.daemon.touched_by.add(touched_by)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stop everything; cachetoryd's sanitizer (make SANITIZER=...) or valgrind (VALGRIND=1) findings
        go to self.problems."""
        for d in self._stop:
            d.stop()
            found = d.sanitizer_report() or d.valgrind_problem()
            if found:
                self.problems.append("%s\n%s" % (d.status_text(), found))
        for r in (self.ref, self.up):
            if r is not None:
                r.stop()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


# ---- deterministic runs -----------------------------------------------------------------------------


class Mismatch:
    """The first difference of a run: kind 'reply' (index, cmd, the two replies), 'keyspace' (text),
    'closed' (cachetoryd closed the connection or died), 'memory' (sanitizer or valgrind findings)."""

    def __init__(self, kind, index=None, cmd=None, ref=None, ours=None, text=""):
        self.kind, self.index, self.cmd, self.ref, self.ours, self.text = kind, index, cmd, ref, ours, text

    def signature(self):
        """What must stay the same while a failing sequence is shrunk: a wrong reply and a wrong keyspace
        are one kind (a wrong state shows as either, depending on where the sequence is cut); a closed
        connection is another. Requiring the same command would stop the shrinking as soon as the
        state goes wrong earlier and another read notices it first."""
        return (self.kind,) if self.kind in ("closed", "memory") else ("differs",)

    def describe(self):
        if self.kind == "reply":
            return ("op #%d: %s\n    redis:      %s\n    cachetoryd: %s"
                    % (self.index, diffgen.show(self.cmd), short(self.ref, 400), short(self.ours, 400)))
        return "%s%s: %s" % (self.kind, "" if self.index is None else " at op #%d" % self.index, self.text)


class Outcome:
    def __init__(self):
        self.mismatch = None
        self.allowed = {}        # ALLOWED_ERRORS name -> count
        self.ops = 0
        self.seconds = 0.0
        self.offloaded = 0       # INFO cache_offloaded of cachetoryd at the end: thread-pool codec work


def _track_multi(state, cmd, reply):
    """Follow the reference's transaction state: state = {'multi': bool, 'queued': [cmds]}."""
    name = _name(cmd)
    if state["multi"]:
        if name in ("EXEC", "DISCARD"):
            state["multi"] = False
            state["queued"] = []
        elif reply == "QUEUED":
            state["queued"].append(cmd)
    elif name == "MULTI" and reply == "OK":
        state["multi"] = True
        state["queued"] = []


def _compare_one(cfg, cmd, a, b, queued, out):
    """None if the replies agree (allowed differences counted in out), else the reason."""
    allowed = allowed_difference(cfg, cmd, a, b, queued)
    if allowed:
        out.allowed[allowed] = out.allowed.get(allowed, 0) + 1
        return True
    if _name(cmd) == "EXEC" and isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b) or len(a) != len(queued):
            return False
        for q, x, y in zip(queued, a, b):
            if not _compare_one(cfg, q, x, y, [], out):
                return False
        return True
    return same_reply(cmd, a, b)


def _runs(ops, start, batch):
    """Split ops[start:start+batch] where the client changes: [(client or None, [(index, cmd)...])].
    None: no switch before it (the current client goes on)."""
    out = []
    cur = []
    client = None
    for idx in range(start, min(len(ops), start + batch)):
        op = ops[idx]
        if op[0] == diffgen.SWITCH:
            if cur or client is not None:
                out.append((client, cur))
            client, cur = int(op[1]), []
        else:
            cur.append((idx, op))
    out.append((client, cur))
    return out


def run_sequence(cfg, ops, batch=64, keyspace=True):
    """Run ops on fresh servers; an Outcome whose mismatch is None if every reply and the keyspace
    agree. Each client (diffgen's @CLIENT n) has one connection to each server; a client's commands
    are pipelined up to the next switch, and all its replies are read before the next client's
    commands leave, so the order between clients is the sequence's."""
    out = Outcome()
    t0 = time.monotonic()
    with Rig(cfg) as rig:
        refs = [rig.ref.conn() for _ in range(diffgen.CLIENTS)]
        ourss = [rig.daemon.conn() for _ in range(diffgen.CLIENTS)]
        states = [{"multi": False, "queued": []} for _ in range(diffgen.CLIENTS)]
        client = 0
        i = 0
        while i < len(ops) and out.mismatch is None:
            for switch_to, items in _runs(ops, i, batch):
                if switch_to is not None:
                    client = switch_to
                if not items:
                    continue
                if not _run_items(cfg, rig, refs[client], ourss[client], states[client], items, out):
                    break
            i = min(len(ops), i + batch)
        out.ops = i
        if out.mismatch is None and keyspace:
            text = compare_keyspace(rig)
            if text:
                out.mismatch = Mismatch("keyspace", len(ops) - 1 if ops else None, text=text)
        if rig.daemon.alive():
            try:
                out.offloaded = int(rig.daemon.info("cache").get("cache_offloaded", 0))
            except (AssertionError, ConnectionClosed, OSError, ValueError):
                pass
        if out.mismatch is None and not rig.daemon.alive():
            out.mismatch = Mismatch("closed", text="cachetoryd died: %s\n--- log tail ---\n%s" % (
                rig.daemon.status_text(), rig.daemon.log_tail(3000)))
        for c in refs:
            c.close()
    if rig.problems and out.mismatch is None:
        out.mismatch = Mismatch("memory", text="memory errors in cachetoryd:\n" + "\n".join(rig.problems))
    out.seconds = time.monotonic() - t0
    return out


def _run_items(cfg, rig, ref, ours, state, items, out):
    """One client's pipelined commands [(index, cmd)] on both servers; False (and out.mismatch set) on
    the first difference."""
    chunk = [cmd for _, cmd in items]
    try:
        b_all = ours.pipeline(chunk)
    except (ConnectionClosed, OSError) as e:
        out.mismatch = Mismatch("closed", items[0][0], text="cachetoryd closed the connection in ops #%d..#%d "
                                "(%s); %s\n--- log tail ---\n%s" % (items[0][0], items[-1][0], e,
                                                                    rig.daemon.status_text(), rig.daemon.log_tail(3000)))
        return False
    # cachetoryd first: a block it refuses as a whole (refused_transaction) is discarded on the
    # reference. Whether it is one is known from the commands cachetoryd queued (a difference in
    # what was queued shows as a mismatch at that command anyway).
    ref_chunk = []
    sim = dict(state, queued=list(state["queued"]))
    for cmd, b in zip(chunk, b_all):
        if sim["multi"] and refused_transaction(cfg, cmd, b, sim["queued"]):
            ref_chunk.append(["DISCARD"])
        else:
            ref_chunk.append(cmd)
        _track_multi(sim, cmd, b)
    a_all = ref.pipeline(ref_chunk)
    for j, ((idx, cmd), a, b) in enumerate(zip(items, a_all, b_all)):
        queued = list(state["queued"])
        _track_multi(state, ref_chunk[j], a)
        if not _compare_one(cfg, cmd, a, b, queued, out):
            out.mismatch = Mismatch("reply", idx, cmd, a, b)
            return False
    return True


# ---- keyspace ---------------------------------------------------------------------------------------


def dump_keyspace(conn, serializer=None):
    """{db: {key: (type, value, pttl)}} of databases 0..DATABASES-1 read with SCAN, TYPE, PTTL and the
    type's read command. serializer: decode string values with it (the upstream read directly)."""
    out = {}
    for db in range(DATABASES):
        r = conn.cmd("SELECT", str(db))
        if r != "OK":
            raise AssertionError("SELECT %d while reading the keyspace: %r" % (db, r))
        keys = set()
        cursor = b"0"
        for _ in range(1000):
            r = conn.cmd("SCAN", cursor, "COUNT", "1000")
            if not (isinstance(r, list) and len(r) == 2 and isinstance(r[1], list)):
                raise AssertionError("SCAN in db %d replied %s" % (db, short(r)))
            cursor = r[0]
            keys.update(r[1])
            if cursor in (b"0", "0"):
                break
        keys = sorted(keys)
        meta = conn.pipeline([c for k in keys for c in (["TYPE", k], ["PTTL", k])])
        reads = []
        for n, k in enumerate(keys):
            t = meta[2 * n]
            reads.append({"string": ["GET", k], "hash": ["HGETALL", k], "list": ["LRANGE", k, "0", "-1"]}.get(
                t, ["TYPE", k]))
        vals = conn.pipeline(reads)
        db_out = {}
        for n, k in enumerate(keys):
            t, pttl, v = meta[2 * n], meta[2 * n + 1], vals[n]
            if t == "hash" and isinstance(v, list):
                v = _pairs(v)
            if t == "string" and serializer and isinstance(v, bytes):
                v = decode(serializer, v)
            db_out[k] = (t, v, pttl)
        out[db] = db_out
    conn.cmd("SELECT", "0")
    return out


def _same_entry(x, y):
    (t1, v1, p1), (t2, v2, p2) = x, y
    if t1 != t2 or v1 != v2:
        return False
    if isinstance(p1, int) and isinstance(p2, int) and min(p1, p2) >= 0:
        return abs(p1 - p2) <= PTTL_TOLERANCE_MS
    return p1 == p2


def diff_keyspaces(want, got, what):
    """Lines describing how got differs from want (empty: the same)."""
    lines = []
    for db in range(DATABASES):
        w, g = want.get(db, {}), got.get(db, {})
        for k in sorted(set(w) | set(g)):
            if k not in g:
                lines.append("db %d key %r: missing in %s (redis: %s)" % (db, k, what, short(w[k])))
            elif k not in w:
                lines.append("db %d key %r: in %s only: %s" % (db, k, what, short(g[k])))
            elif not _same_entry(w[k], g[k]):
                lines.append("db %d key %r: redis %s, %s %s" % (db, k, short(w[k]), what, short(g[k])))
    return lines


def compare_keyspace(rig):
    """'' if every database of cachetoryd (read through it; and, in front of an upstream, the upstream
    read directly and decoded) holds what the reference holds, else the differences."""
    ref = rig.ref.conn()
    try:
        want = dump_keyspace(ref)
    finally:
        ref.close()
    lines = []
    c = rig.daemon.conn()
    try:
        lines += diff_keyspaces(want, dump_keyspace(c), "cachetoryd")
    except (AssertionError, ConnectionClosed, OSError) as e:
        lines.append("reading the keyspace through cachetoryd: %s" % e)
    if rig.up is not None:
        u = rig.up.conn()
        try:
            lines += diff_keyspaces(want, dump_keyspace(u, rig.cfg.serializer), "the upstream (decoded)")
        finally:
            u.close()
    return "\n    ".join(lines[:30]) + ("\n    ... %d more" % (len(lines) - 30) if len(lines) > 30 else "")


# ---- shrinking --------------------------------------------------------------------------------------


def _fails(cfg, ops, signature, stats):
    stats["tries"] += 1
    m = run_sequence(cfg, ops).mismatch
    if m is None:
        return None
    if signature is not None and m.signature() != signature:
        return None
    return m


def shortest_failing(cfg, ops, first, max_bisect=14, max_shrink=30, log=print):
    """From a failing run (its first Mismatch `first`), on fresh servers each time:
      1. the prefix up to the failing op is run again (does it reproduce?);
      2. bisection over the prefix length: the shortest prefix that fails, with the reply mismatch or
         a keyspace difference at its end (a write to the wrong database shows there long before a
         later read trips over it);
      3. removal of chunks of that prefix (delta debugging) while it still fails the same way.
    Returns (prefix_len or None if it did not reproduce, shrunk ops, their Mismatch, tries used)."""
    stats = {"tries": 0}
    end = (first.index + 1) if first.index is not None else len(ops)
    m = _fails(cfg, ops[:end], None, stats)
    if m is None:
        return None, None, None, stats["tries"]
    best, best_m = end, m
    lo = 0                                 # the empty prefix passes
    while best - lo > 1 and stats["tries"] < max_bisect:
        mid = (lo + best) // 2
        mm = _fails(cfg, ops[:mid], None, stats)
        if mm is None:
            lo = mid
        else:
            best, best_m = mid, mm
    log("    shortest failing prefix: %d ops (%d tries)" % (best, stats["tries"]))
    seq = list(ops[:best])
    sig = best_m.signature()
    cur_m = best_m
    n = 2
    budget = stats["tries"] + max_shrink
    while len(seq) > 1 and stats["tries"] < budget:
        size = max(1, len(seq) // n)
        removed = False
        for start in range(0, len(seq), size):
            if stats["tries"] >= budget:
                break
            cand = seq[:start] + seq[start + size:]
            if not cand:
                continue
            mm = _fails(cfg, cand, sig, stats)
            if mm is not None:
                seq, cur_m, removed = cand, mm, True
                n = max(n - 1, 2)
                break
        if not removed:
            if size == 1:
                break
            n = min(len(seq), n * 2)
    return best, seq, cur_m, stats["tries"]


def report(cfg, seed, episode, ops, first, shrink_result, log_dir=None, generated=None):
    """The text of a failure: seed, configuration, first mismatch, shortest prefix, shrunk sequence."""
    best, seq, m, tries = shrink_result if shrink_result is not None else (None, None, None, 0)
    lines = ["DIFFERENTIAL MISMATCH  config=%s seed=%d episode=%d (sequence seed %d, %d ops sent)"
             % (cfg.name, seed, episode, episode_seed(seed, episode), len(ops)),
             "  reproduce: scripts/differential --seed %d --config %s --episode %d --ops %d"
             % (seed, cfg.name, episode, generated or len(ops)),
             "  first difference: " + first.describe()]
    if shrink_result is None or best is None:
        if shrink_result is None:
            lines.append("  not shrunk (scripts/differential shrinks it)")
        else:
            lines.append("  it did NOT reproduce on fresh servers (timing-dependent?): the first %d ops were run "
                         "again and agreed" % (first.index + 1 if first.index is not None else len(ops)))
        lines.append("  last ops before it:")
        lo = max(0, (first.index or 0) - 30)
        lines += ["    #%d %s" % (lo + n, diffgen.show(o)) for n, o in enumerate(ops[lo:(first.index or 0) + 1])]
        return "\n".join(lines)
    lines.append("  shortest failing prefix: %d ops" % best)
    if log_dir:
        path = os.path.join(log_dir, "diff-%s-seed%d-ep%d-prefix.txt" % (cfg.name, seed, episode))
        with open(path, "w") as f:
            f.write("".join(diffgen.show(o, 10 ** 9) + "\n" for o in ops[:best]))
        lines.append("  (written to %s)" % path)
    if best <= 40:
        lines += ["    %s" % diffgen.show(o) for o in ops[:best]]
    lines.append("  shrunk to %d ops (%d runs on fresh servers in all), which fail with:" % (len(seq), tries))
    lines.append("    " + m.describe().replace("\n", "\n    "))
    lines += ["    | %s" % diffgen.show(o) for o in seq[:80]]
    if len(seq) > 80:
        lines.append("    | ... %d more" % (len(seq) - 80))
    return "\n".join(lines)


# ---- episodes -----------------------------------------------------------------------------------------
EPISODE_OPS = 5000       # one sequence on fresh servers; a long run is several


def episode_seed(seed, episode):
    return seed * 1000003 + episode


def exclude_ops(ops, excludes):
    """ops without those that one of excludes (predicates pred(op, in_multi)) matches; in_multi is
    whether the op comes after a MULTI not yet closed by EXEC / DISCARD (read from the sequence, not
    from the replies). Returns (kept ops, {predicate index: ops dropped})."""
    kept, dropped = [], {}
    in_multi = [False] * diffgen.CLIENTS
    client = 0
    for op in ops:
        name = _name(op)
        if name == diffgen.SWITCH:
            client = int(op[1])
            kept.append(op)
            continue
        hit = None
        for n, pred in enumerate(excludes):
            if pred(op, in_multi[client]):
                hit = n
                break
        if hit is not None:
            dropped[hit] = dropped.get(hit, 0) + 1
            continue
        kept.append(op)
        if name == "MULTI":
            in_multi[client] = True
        elif name in ("EXEC", "DISCARD"):
            in_multi[client] = False
    return kept, dropped


def run_config(cfg, seed, total_ops, features=None, excludes=(), log=print, shrink=True, max_bisect=14,
               max_shrink=30, log_dir=None, only_episode=None):
    """total_ops generated in sequences of EPISODE_OPS (episode 0, 1, ...), each run on fresh servers,
    minus the ops that a predicate of excludes matches (see exclude_ops; KNOWN_OPEN's). only_episode:
    run that episode alone (of min(total_ops, EPISODE_OPS) ops). Returns (failure text or None, stats:
    ops generated and run, seconds, ALLOWED_ERRORS counts, ops excluded per predicate index)."""
    features = cfg.features() if features is None else set(features)
    stats = {"ops": 0, "generated": 0, "seconds": 0.0, "allowed": {}, "excluded": {}, "offloaded": 0}
    episode = 0 if only_episode is None else only_episode
    while stats["generated"] < total_ops:
        n = min(EPISODE_OPS, total_ops - stats["generated"])
        if only_episode is not None:
            total_ops = n
        stats["generated"] += n
        ops = diffgen.generate(episode_seed(seed, episode), n, features)
        ops, dropped = exclude_ops(ops, list(excludes))
        for k, v in dropped.items():
            stats["excluded"][k] = stats["excluded"].get(k, 0) + v
        o = run_sequence(cfg, ops)
        stats["ops"] += o.ops
        stats["seconds"] += o.seconds
        stats["offloaded"] += o.offloaded
        for k, v in o.allowed.items():
            stats["allowed"][k] = stats["allowed"].get(k, 0) + v
        if o.mismatch is not None:
            log("  %s: seed %d episode %d: %s" % (cfg.name, seed, episode, o.mismatch.describe()))
            if shrink:
                res = shortest_failing(cfg, ops, o.mismatch, max_bisect, max_shrink, log=log)
            else:
                res = None
            return report(cfg, seed, episode, ops, o.mismatch, res, log_dir, generated=n), stats
        episode += 1
    return None, stats


# ---- multi-client invariants --------------------------------------------------------------------------
_VAL_RE = re.compile(rb"^w(\d+)\|d(\d+)\|([^|]*)\|s(\d+)\|")


def _tag(client, db, key, seq, pad):
    v = b"w%d|d%d|%s|s%d|" % (client, db, key.encode(), seq)
    return v + b"x" * pad


class _Client(threading.Thread):
    """One client: its own keys c<N>:k<j> in every database; a model of what each of them holds."""

    KEYS = 5

    def __init__(self, n, addr_conn, seed, ops, passthrough, dbs, errors, all_written, lock, flags):
        super().__init__(name="diff-client-%d" % n, daemon=True)
        self.n, self.conn, self.rng, self.ops = n, addr_conn, random.Random(seed), ops
        self.passthrough = passthrough
        self.multi_select = "multi_select" in flags
        self.passthrough_abort = passthrough and "passthrough_abort" in flags
        self.db = dbs[0]
        self.dbs = dbs
        # (db, key) -> value bytes, or None when absent; every key starts absent (only this client
        # writes its keys); a key whose write failed is dropped from the model (unknown)
        self.model = {(db, "c%d:k%d" % (n, j)): None for db in range(DATABASES) for j in range(self.KEYS)}
        self.ttl = {}              # (db, key) -> True when its last write set a TTL
        self.hash = {}             # (db, hkey) -> {field: value}
        self.errors = errors
        self.written = all_written  # (db, key) -> set of values ever sent (any client)
        self.lock = lock
        self.seq = 0
        self.sent = 0
        self.plan_db = self.db
        self.log = []              # the last commands, for the failure report

    def key(self, j=None):
        return "c%d:k%d" % (self.n, self.rng.randrange(self.KEYS) if j is None else j)

    def value(self, key):
        self.seq += 1
        pad = self.rng.choice([0, 0, 0, 10, 200, self.rng.randint(2048, 8192)])
        v = _tag(self.n, self.plan_db, key, self.seq, pad)
        with self.lock:
            self.written.setdefault((self.plan_db, key), set()).add(v)
        return v

    def fail(self, text):
        self.errors.append("client %d (db %d): %s\n      last commands: %s" % (
            self.n, self.db, text, "; ".join(self.log[-12:])))

    def step(self):
        """One batch of commands, pipelined; each with its expectation checked against the model."""
        rng = self.rng
        batch = []                 # (cmd, check(reply))
        self.plan_db = self.db     # the database the batch's next command will run in
        for _ in range(rng.randint(1, 6)):
            c = rng.randrange(100)
            if c < 30:
                k = self.key()
                v = self.value(k)
                ex = rng.random() < 0.2
                cmd = ["SET", k, v] + (["EX", "100000"] if ex else [])
                batch.append((cmd, self._ack_write({k: v}, ex)))
            elif c < 40:
                ks = rng.sample(range(self.KEYS), 2)
                kv = {self.key(j): None for j in ks}
                for k in kv:
                    kv[k] = self.value(k)
                batch.append((["MSET"] + [x for kv_ in kv.items() for x in kv_], self._ack_write(kv, False)))
            elif c < 60:
                k = self.key()
                batch.append((["GET", k], self._expect_get(k)))
            elif c < 68:
                other = rng.randrange(64)
                k = "c%d:k%d" % (other % 8, rng.randrange(self.KEYS))
                batch.append((["GET", k], self._plausible(k)))
            elif c < 74:
                k = self.key()
                batch.append((["DEL", k], self._expect_del(k)))
            elif c < 77:
                k = self.key()
                batch.append((["PEXPIRE", k, "0"], self._expect_del(k)))
            elif c < 85:
                db = rng.choice(self.dbs)
                batch.append((["SELECT", str(db)], self._select(db)))
                self.plan_db = db
            elif c < 92:
                k1, k2 = self.key(0), self.key(1)
                v1, v2 = self.value(k1), self.value(k2)
                batch.append((["MULTI"], self._eq("OK")))
                batch.append((["SET", k1, v1], self._eq("QUEUED")))
                batch.append((["SET", k2, v2], self._eq("QUEUED")))
                batch.append((["EXEC"], self._ack_exec({k1: v1, k2: v2})))
            elif c < 94 and self.multi_select:
                self._multi_select_block(batch)
            elif c < 97 and self.passthrough:
                h = "c%d:h" % self.n
                f = "f%d" % rng.randrange(3)
                v = self.value(h + ":" + f)
                batch.append((["HSET", h, f, v], self._ack_hset(h, f, v)))
            else:
                k = self.key()
                batch.append((["EXISTS", k], self._expect_exists(k)))
        cmds = [b[0] for b in batch]
        self.sent += len(cmds)
        self.log += [diffgen.show(c, 24) for c in cmds]
        del self.log[:-40]
        replies = self.conn.pipeline(cmds)
        for (cmd, check), r in zip(batch, replies):
            check(cmd, r)

    def _multi_select_block(self, batch):
        """MULTI; SELECT other; SET k v; [GET or HSET short of arguments: a queued error]; EXEC -- then the client is in
        the other database (or, aborted, where it was, with nothing written)."""
        rng = self.rng
        db2 = rng.choice(self.dbs)
        k = self.key()
        abort = rng.random() < 0.3
        before = self.plan_db
        self.plan_db = db2
        v = self.value(k)
        batch.append((["MULTI"], self._eq("OK")))
        batch.append((["SELECT", str(db2)], self._eq("QUEUED")))
        batch.append((["SET", k, v], self._eq("QUEUED")))
        if abort:
            # a queued error: one cachetoryd finds itself, or (passthrough) one the upstream finds
            if self.passthrough_abort and rng.random() < 0.5:
                batch.append((["HSET", "c%d:h" % self.n], self._eq(Err("ERR wrong number of arguments for 'hset' command"))))
            else:
                batch.append((["GET"], self._eq(Err("ERR wrong number of arguments for 'get' command"))))
            self.plan_db = before

        def check(cmd, r):
            if abort:
                if r != Err("EXECABORT Transaction discarded because of previous errors."):
                    self.fail("EXEC of an aborted block (SELECT %d inside) replied %s" % (db2, short(r)))
                return
            if r != ["OK", "OK"]:
                self.fail("EXEC of MULTI; SELECT %d; SET replied %s" % (db2, short(r)))
                self.model.pop((db2, k), None)
                return
            self.db = db2
            self.model[(db2, k)] = v
            self.ttl[(db2, k)] = False
        batch.append((["EXEC"], check))

    # expectations: each returns check(cmd, reply), which also updates the model -------------------
    def _eq(self, want):
        def check(cmd, r):
            if r != want:
                self.fail("%s replied %s, expected %r" % (diffgen.show(cmd, 40), short(r), want))
        return check

    def _ack_write(self, kv, with_ttl):
        def check(cmd, r):
            if r != "OK":
                self.fail("%s replied %s" % (diffgen.show(cmd, 40), short(r)))
                for k in kv:                      # unknown now: forget what the model knew
                    self.model.pop((self.db, k), None)
                return
            for k, v in kv.items():
                self.model[(self.db, k)] = v
                self.ttl[(self.db, k)] = with_ttl
        return check

    def _ack_exec(self, kv):
        def check(cmd, r):
            if r != ["OK", "OK"]:
                self.fail("EXEC of two SETs replied %s" % short(r))
                for k in kv:
                    self.model.pop((self.db, k), None)
                return
            for k, v in kv.items():
                self.model[(self.db, k)] = v
                self.ttl[(self.db, k)] = False
        return check

    def _ack_hset(self, h, f, v):
        def check(cmd, r):
            if not isinstance(r, int) or isinstance(r, Err):
                self.fail("%s replied %s" % (diffgen.show(cmd, 40), short(r)))
                return
            self.hash.setdefault((self.db, h), {})[f.encode()] = v
        return check

    def _expect_get(self, k):
        def check(cmd, r):
            key = (self.db, k)
            if key not in self.model:
                if r is not None:
                    self._plausible(k)(cmd, r)
                    self.model[key] = r
                return
            if r != self.model[key]:
                self.fail("GET %s replied %s, but this client's last acknowledged write there was %s"
                          % (k, short(r, 60), short(self.model[key], 60)))
        return check

    def _plausible(self, k):
        def check(cmd, r):
            db = self.db
            if r is None:
                return
            if not isinstance(r, bytes):
                self.fail("GET %s (another client's key) replied %s" % (k, short(r)))
                return
            m = _VAL_RE.match(r)
            with self.lock:
                known = r in self.written.get((db, k), ())
            if not known:
                where = ("written as db %s key %s" % (m.group(2).decode(), m.group(3).decode())) if m else "no one's"
                self.fail("GET %s in db %d replied %s, a value nobody wrote there (%s)" % (k, db, short(r, 60), where))
        return check

    def _expect_del(self, k):
        def check(cmd, r):
            key = (self.db, k)
            if key in self.model:
                want = 0 if self.model[key] is None else 1
                if r != want:
                    self.fail("%s replied %s, expected %d" % (diffgen.show(cmd), short(r), want))
            elif not isinstance(r, int):
                self.fail("%s replied %s" % (diffgen.show(cmd), short(r)))
            self.model[key] = None
            self.ttl[key] = False
        return check

    def _expect_exists(self, k):
        def check(cmd, r):
            key = (self.db, k)
            if key in self.model and r != (0 if self.model[key] is None else 1):
                self.fail("EXISTS %s replied %s, the model says %r" % (k, short(r), short(self.model[key], 40)))
        return check

    def _select(self, db):
        def check(cmd, r):
            if r != "OK":
                self.fail("SELECT %d replied %s" % (db, short(r)))
                return
            self.db = db
        return check

    def run(self):
        try:
            for _ in range(self.ops):
                self.step()
                if len(self.errors) > 20:
                    break
        except Exception as e:          # a closed connection, a timeout: the failure names it
            self.fail("stopped by %s: %s" % (type(e).__name__, e))


MULTI_FLAGS = {
    "multi_select": "some transactions SELECT another database inside MULTI, some aborted by a queued error",
    "passthrough_abort": "(passthrough) some of those are aborted by a forwarded command's error (HSET short "
                         "of arguments) instead of one cachetoryd finds itself",
}


def run_multi(cfg, seed, clients=6, steps=400, flags=None, touched_by=None):
    """Several clients at once on one cachetoryd in configuration cfg; returns a list of violations
    (empty: every invariant held) and the number of commands sent. flags: MULTI_FLAGS names that are
    on (default: all)."""
    flags = set(MULTI_FLAGS) if flags is None else set(flags)
    errors = []
    written = {}
    lock = threading.Lock()
    with Rig(cfg, reference=False, touched_by=touched_by) as rig:
        threads = []
        for n in range(clients):
            dbs = [n % DATABASES] if n < clients // 2 else sorted({n % DATABASES, (n + 1) % DATABASES, 0})
            c = rig.daemon.conn(timeout=30)
            if dbs[0] != 0:
                assert c.cmd("SELECT", str(dbs[0])) == "OK"
            threads.append(_Client(n, c, seed * 7919 + n, steps, cfg.passthrough, dbs, errors, written, lock,
                                   flags))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            if t.is_alive():
                errors.append("client %d did not finish within 120 s" % t.n)
        if len(errors) < 5:
            try:
                errors += check_multi(rig, threads, written)
            except (AssertionError, ConnectionClosed, OSError) as e:
                errors.append("reading the final keyspace: %s; %s" % (e, rig.daemon.status_text()))
        sent = sum(t.sent for t in threads)
    errors += ["memory errors in cachetoryd:\n" + p for p in rig.problems]
    return errors, sent


def check_multi(rig, clients, written):
    """The invariants over the final keyspace, read through cachetoryd and, in front of an upstream,
    read directly from it (decoded)."""
    errors = []
    views = []
    c = rig.daemon.conn(timeout=30)
    views.append(("cachetoryd", dump_keyspace(c)))
    if rig.up is not None:
        u = rig.up.conn()
        try:
            views.append(("the upstream (decoded)", dump_keyspace(u, rig.cfg.serializer)))
        finally:
            u.close()
    by_n = {t.n: t for t in clients}
    for what, ks in views:
        for db in range(DATABASES):
            for k, (typ, v, pttl) in ks.get(db, {}).items():
                name = k.decode() if isinstance(k, bytes) else k
                m = re.match(r"^c(\d+):(k\d+|h)$", name)
                if not m or int(m.group(1)) not in by_n:
                    errors.append("%s: db %d holds key %r that no client wrote" % (what, db, name))
                    continue
                t = by_n[int(m.group(1))]
                if m.group(2) == "h":
                    want = t.hash.get((db, name))
                    if want is None:
                        errors.append("%s: db %d holds hash %s, never written in that db" % (what, db, name))
                    elif dict(v) != want:
                        errors.append("%s: db %d hash %s is %s, expected %s" % (what, db, name, short(v), short(want)))
                    continue
                if (db, name) not in written:
                    errors.append("%s: key %s is in db %d, where nobody wrote it (value %s)" % (
                        what, name, db, short(v, 60)))
                elif v not in written[(db, name)]:
                    errors.append("%s: db %d key %s holds %s, a value nobody wrote there" % (what, db, name, short(v, 60)))
                elif (db, name) in t.model and t.model[(db, name)] != v:
                    errors.append("%s: db %d key %s holds %s, but client %d's last acknowledged write was %s" % (
                        what, db, name, short(v, 60), t.n, short(t.model[(db, name)], 60)))
                elif t.ttl.get((db, name)) is not None and t.ttl[(db, name)] != (pttl >= 0):
                    errors.append("%s: db %d key %s has PTTL %r, its last write %s a TTL" % (
                        what, db, name, pttl, "set" if t.ttl[(db, name)] else "did not set"))
        for t in clients:
            for (db, name), v in t.model.items():
                if v is not None and name not in {(x.decode() if isinstance(x, bytes) else x)
                                                  for x in ks.get(db, {})}:
                    errors.append("%s: db %d key %s is missing; client %d's last acknowledged write was %s" % (
                        what, db, name, t.n, short(v, 60)))
    return errors
