"""Differential test (issue 11): seeded random command sequences (diffgen.py) sent to a real redis-server
and to cachetoryd in each configuration of diffrun.CONFIGS -- memory:// with null:// and zstd://, and in
front of an upstream redis-server with zstd://, passthrough on, upstream-pool-size 1 and 4 -- every reply
compared, then every database's keyspace (diffrun.py). On a difference the test prints the seed, the
configuration, the shortest failing prefix and a shrunk sequence, then fails.

A multi-client variant checks invariants where the order between clients is not deterministic.

`make test` runs OPS operations per configuration (CACHETORYD_DIFF_OPS, default 20,000; divided by
conftest.SLOW under valgrind) with the seed CACHETORYD_DIFF_SEED (default 11). scripts/differential runs
longer, with any seed, one configuration or all.
"""
import os
import warnings

import pytest

import conftest
import diffgen
import diffrun
from helpers import report_figure

SEED = int(os.environ.get("CACHETORYD_DIFF_SEED") or 11)
OPS = max(500, int(int(os.environ.get("CACHETORYD_DIFF_OPS") or 20000) / conftest.SLOW))
MULTI_STEPS = max(50, int(1000 / conftest.SLOW))      # batches per client (about 5 commands each)

# KNOWN_OPEN (diffrun.py): TEMPORARY exclusions of defects being fixed; each is reported (warning and an
# xfail test) and fails the run once fixed (strict). The merged main must have it empty.
KNOWN_OPEN = diffrun.KNOWN_OPEN


def _log_dir():
    return conftest._LOGDIR


@pytest.mark.long_double
@pytest.mark.needs_cachetoryd
@pytest.mark.parametrize("config", [n for n, c in diffrun.CONFIGS.items() if c.in_make_test])
def test_same_replies_as_redis(config):
    cfg = diffrun.CONFIGS[config]
    drop, preds, names, _ = diffrun.known_open_filters(config)
    lines = []
    failure, stats = diffrun.run_config(cfg, SEED, OPS, features=cfg.features() - drop, excludes=preds,
                                        log=lines.append, log_dir=_log_dir())
    for name, e in diffrun.known_open_for(config).items():
        left_out = []
        if e.get("features"):
            left_out.append("features %s not generated" % ",".join(e["features"]))
        if name in names:
            left_out.append("%d ops left out" % stats["excluded"].get(names.index(name), 0))
        if left_out:
            warnings.warn("KNOWN_OPEN %s in %s: %s (%s)" % (name, config, ", ".join(left_out), e["why"]))
    if stats["seconds"] > 0:
        report_figure("differential %s: ops per second (redis and cachetoryd in lockstep)" % config,
                      int(stats["ops"] / stats["seconds"]))
    if failure:
        pytest.fail("\n".join(lines + [failure]), pytrace=False)
    assert stats["generated"] == OPS
    if cfg.serializer != "null://":
        # the 2-8 KB values went through the thread pool (codec-thread-min-size 1kb) at least sometimes
        assert stats["offloaded"] > 0, "no codec work on the thread pool in %d ops" % stats["ops"]


def _known_open_cases(multi):
    out = []
    for name, e in KNOWN_OPEN.items():
        if multi and not e.get("multi_flags"):
            continue
        if not multi and not e.get("repro"):
            continue
        for c in e["configs"]:
            if c in diffrun.CONFIGS and (diffrun.CONFIGS[c].in_make_test or os.environ.get("CACHETORYD_DIFF_ALL")):
                if not multi or c in diffrun.MULTI_CONFIGS:
                    out.append((name, c))
    return out or [(None, None)]     # nothing open: one case that says so (not an empty, skipped set)


@pytest.mark.needs_cachetoryd
@pytest.mark.parametrize("entry,config", _known_open_cases(False))
def test_known_open(entry, config):
    """A KNOWN_OPEN entry's repro, in its configuration, on fresh servers: expected to differ (xfail, the
    difference as the reason); the same replies and keyspace mean the defect is fixed and the entry must
    go (strict). scripts/differential --known-open ENTRY runs the random sequences with its ops."""
    if entry is None:
        return                        # KNOWN_OPEN has no entry with a repro: nothing is excluded
    cfg = diffrun.CONFIGS[config]
    repro = KNOWN_OPEN[entry]["repro"]
    o = diffrun.run_sequence(cfg, repro)
    if o.mismatch is not None:
        pytest.xfail("KNOWN_OPEN %s still open in %s: %s | %s" % (
            entry, config, " ; ".join(diffgen.show(op) for op in repro), o.mismatch.describe()))
    pytest.fail("KNOWN_OPEN entry %r: its repro (%s) gives the same replies and keyspace as Redis in %s now: "
                "the defect is fixed, remove the entry from diffrun.KNOWN_OPEN" % (
                    entry, " ; ".join(diffgen.show(op) for op in repro), config), pytrace=False)


@pytest.mark.needs_cachetoryd
@pytest.mark.parametrize("config", diffrun.MULTI_CONFIGS)
def test_multi_client_invariants(config):
    cfg = diffrun.CONFIGS[config]
    _, _, _, off = diffrun.known_open_filters(config)
    for name, e in diffrun.known_open_for(config).items():
        if e.get("multi_flags"):
            warnings.warn("KNOWN_OPEN %s in %s: multi-client %s off (%s)" % (
                name, config, ",".join(e["multi_flags"]), e["why"]))
    errors, sent = diffrun.run_multi(cfg, SEED, clients=6, steps=MULTI_STEPS, flags=set(diffrun.MULTI_FLAGS) - off)
    if errors:
        pytest.fail("multi-client invariants broken, config=%s seed=%d (scripts/differential --multi --seed %d "
                    "--config %s):\n  %s" % (config, SEED, SEED, config, "\n  ".join(errors[:25])), pytrace=False)


@pytest.mark.needs_cachetoryd
@pytest.mark.parametrize("entry,config", _known_open_cases(True))
def test_known_open_multi(entry, config):
    """The same for a KNOWN_OPEN entry's multi-client flags."""
    if entry is None:
        return                        # KNOWN_OPEN has no entry with multi-client flags
    cfg = diffrun.CONFIGS[config]
    _, _, _, off = diffrun.known_open_filters(config, keep=entry)
    errors, sent = diffrun.run_multi(cfg, SEED, clients=6, steps=MULTI_STEPS, flags=set(diffrun.MULTI_FLAGS) - off)
    if errors:
        pytest.xfail("KNOWN_OPEN %s still open in %s (multi-client): %s" % (entry, config, errors[0]))
    pytest.fail("KNOWN_OPEN entry %r passes in %s now (multi-client, %d commands): remove its multi_flags or "
                "the entry" % (entry, config, sent), pytrace=False)


# Every defect the differential test found, as its shortest sequence: each must give Redis's replies and
# keyspace in every configuration it was found in (the note of issue 11 lists them with their fixes).
UPSTREAM = [n for n in diffrun.CONFIGS if n.startswith("redis-") and diffrun.CONFIGS[n].in_make_test]
ALL = [n for n in diffrun.CONFIGS if diffrun.CONFIGS[n].in_make_test]
REGRESSIONS = {
    "bits-through-codec": (ALL, [["SET", "k0", "hello"], ["SETBIT", "k0", "3", "1"], ["GET", "k0"],
                                 ["BITCOUNT", "k0"], ["SETRANGE", "k1", "10", "-3"], ["RENAME", "k1", "k0"],
                                 ["BITFIELD", "k0", "OVERFLOW", "WRAP", "INCRBY", "i5", "100", "-180"]]),
    "getex-expiry-checked-after-the-key": (ALL, [["GETEX", "k0", "EX", "0"], ["MULTI"], ["GETEX", "k6", "EX", "1.5"],
                                                 ["EXEC"], ["SET", "k1", "v"], ["GETEX", "k1", "PX", "-5"]]),
    "select-out-of-range-upstream": (UPSTREAM, [["SELECT", "15"], ["SET", "k0", "v"]]),
    "select-inside-multi-upstream": (UPSTREAM, [["MULTI"], ["LRANGE", "l1", "0", "2"], ["SELECT", "1"],
                                                ["SET", "k3", "1e3"], ["EXEC"], ["GET", "k3"]]),
    "selects-inside-multi-then-a-write": (UPSTREAM, [["MULTI"], ["SELECT", "3"], ["SELECT", "2"], ["EXEC"],
                                                     ["SET", "k2", "9223372036854775806"]]),
    "passthrough-queued-error": (UPSTREAM, [["MULTI"], ["LPUSH", "l0"], ["SELECT", "1"], ["EXEC"], ["SET", "k0", "v"]]),
    "rmw-on-other-type-in-multi": (UPSTREAM, [["LPUSH", "l1", "x"], ["RENAME", "l1", "k3"], ["MULTI"],
                                              ["INCRBYFLOAT", "k3", "1.5"], ["APPEND", "k3", "x"], ["SET", "k3", "1"],
                                              ["INCR", "k3"], ["EXEC"]]),
    "expire-deletes-before-rmw-in-multi": (UPSTREAM, [["SET", "k6", "xyz"], ["MULTI"], ["EXPIRE", "k6", "0"],
                                                      ["DECRBY", "k6", "-1"], ["EXEC"]]),
    "incrbyfloat-type-before-argument": (UPSTREAM, [["HSET", "h1", "f", "1"], ["INCRBYFLOAT", "h1", "abc"],
                                                    ["INCRBYFLOAT", "k1", "abc"]]),
    "lcs-type-inside-multi": (UPSTREAM, [["RPUSH", "k5", "x"], ["MULTI"], ["SET", "k3", "abc"], ["LCS", "k5", "k3"],
                                         ["DEL", "k5"], ["SET", "k5", "abd"], ["LCS", "k5", "k3"], ["EXEC"]]),
    "forwarded-command-on-other-keys-in-multi": (UPSTREAM, [["MULTI"], ["HDEL", "h1", "f2"], ["SETBIT", "k0", "8", "0"],
                                                            ["LPOP", "l0"], ["DECR", "k7"], ["EXEC"]]),
}


@pytest.mark.needs_cachetoryd
@pytest.mark.parametrize("name,config", [(n, c) for n, (configs, _) in REGRESSIONS.items() for c in configs])
def test_found_defects_stay_fixed(name, config):
    """A sequence the differential test once found different from Redis, on fresh servers."""
    seq = REGRESSIONS[name][1]
    o = diffrun.run_sequence(diffrun.CONFIGS[config], seq)
    assert o.mismatch is None, "%s in %s: %s | %s" % (name, config, " ; ".join(diffgen.show(op) for op in seq),
                                                     o.mismatch.describe())


def test_generator_is_deterministic_and_covers_the_families():
    """Same seed, same sequence; every family named in the issue is generated."""
    f = diffgen.DEFAULT_FEATURES | {"passthrough"}
    a = diffgen.generate(5, 3000, f)
    assert a == diffgen.generate(5, 3000, f)
    names = {op[0] for op in a}
    for want in ["SELECT", "MULTI", "EXEC", "DISCARD", "SETBIT", "BITFIELD", "LCS", "BITOP", "HSET", "LPUSH",
                 "GETEX", "EXPIRE", "PEXPIREAT", "PERSIST", "RENAME", "RENAMENX", "FLUSHDB", "SETRANGE",
                 "INCRBYFLOAT", "APPEND", "DEL", "DBSIZE", "EXISTS", "TYPE", "SCAN", "KEYS"]:
        assert want in names, want
    assert any(len(x) >= diffgen.LARGE_MIN for op in a for x in op if isinstance(x, bytes))
    assert any(op[0] == "SET" and "PXAT" in op for op in a)
    # queued errors inside a MULTI block
    assert any(op == ["NOSUCHCMD", "x"] or op == ["GET"] for op in a)
