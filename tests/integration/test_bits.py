"""The bitmap commands and LCS — GETBIT, SETBIT, BITCOUNT, BITPOS, BITFIELD, BITFIELD_RO, BITOP, LCS — run by
cachetoryd on decoded values (issue 11, item 5): every reply equal to a real redis-server 7.0's for the same
commands, with memory:// (null:// and zstd://) and through a redis:// upstream with zstd:// (the value the
proxy returns equal to Redis's, the upstream holding a valid zstd frame of it). Before, with zstd:// and
passthrough = yes, SETBIT / GETBIT / BITCOUNT / LCS were forwarded and read or changed the frame bytes."""
import os
import random

import pytest

from helpers import Conn, Err
from upstream_support import ZSTD_MAGIC, decode, libzstd_decompress, proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

CONFIGS = ["memory-null", "memory-zstd", "upstream-zstd", "upstream-null"]


def make(start_daemon, upstreams, config):
    """(daemon, upstream or None, serializer)."""
    backend, serializer = config.split("-")
    serializer += "://"
    if backend == "memory":
        return start_daemon(serializer=serializer), None, serializer
    up = upstreams()
    return proxy(start_daemon, up, serializer, passthrough="yes", upstream_pool_size=1), up, serializer


def same(ref, ours, cmd):
    a, b = ref.cmd(*cmd), ours.cmd(*cmd)
    assert b == a, "%r: redis %r, cachetoryd %r" % (cmd, a, b)
    return a


def check_stored(up, serializer, ref, keys):
    """Every key: the upstream holds the encoding of exactly what redis holds."""
    if up is None:
        return
    raw = up.client(0)
    for k in keys:
        want = ref.cmd("GET", k)
        got = raw.get(k)
        if want is None:
            assert got is None, "%r: upstream holds %r, redis has no such key" % (k, got)
            continue
        if serializer == "zstd://":
            assert got is not None and got[:4] == ZSTD_MAGIC, "%r: upstream holds %r, not a zstd frame" % (k, got)
            assert libzstd_decompress(got) == want, "%r: the frame decodes to %r, redis holds %r" % (
                k, libzstd_decompress(got), want)
        else:
            assert got == want


ERRORS = [
    # arity, offsets, bit values
    ["GETBIT", "k"], ["GETBIT", "k", "-1"], ["GETBIT", "k", "x"], ["GETBIT", "k", "4294967296"],
    ["GETBIT", "k", "4294967295"],
    ["SETBIT", "k", "4294967296", "1"], ["SETBIT", "k", "-1", "1"], ["SETBIT", "k", "1", "2"],
    ["SETBIT", "k", "1", "-1"], ["SETBIT", "k", "1", "x"], ["SETBIT", "k", "x", "x"], ["SETBIT", "k", "1"],
    # BITCOUNT / BITPOS: the range is checked after the key is looked up
    ["BITCOUNT", "nokey", "x", "y"], ["BITCOUNT", "nokey", "1"], ["BITCOUNT", "k", "1"],
    ["BITCOUNT", "k", "x", "1"], ["BITCOUNT", "k", "0", "1", "BOTH"], ["BITCOUNT", "k", "-1", "-2", "BOTH"],
    ["BITCOUNT", "k", "0", "1", "bit", "x"],
    ["BITPOS", "k", "2"], ["BITPOS", "k", "x"], ["BITPOS", "nokey", "1", "x"], ["BITPOS", "nokey", "0", "x"],
    ["BITPOS", "k", "1", "x"], ["BITPOS", "k", "1", "0", "x"], ["BITPOS", "k", "1", "0", "1", "NIBBLE"],
    ["BITPOS", "k", "1", "0", "1", "BIT", "x"], ["BITPOS", "k", "1", "x", "1", "NIBBLE"],
    # BITFIELD
    ["BITFIELD", "k", "GET", "u64", "0"], ["BITFIELD", "k", "GET", "i65", "0"], ["BITFIELD", "k", "GET", "U8", "0"],
    ["BITFIELD", "k", "GET", "u0", "0"], ["BITFIELD", "k", "GET", "u8"], ["BITFIELD", "k", "FOO", "u8", "0"],
    ["BITFIELD", "k", "GET", "u8", "-1"], ["BITFIELD", "k", "GET", "u8", "#-1"], ["BITFIELD", "k", "SET", "u8", "0", "x"],
    ["BITFIELD", "k", "OVERFLOW", "NONE", "GET", "u8", "0"], ["BITFIELD", "k", "OVERFLOW"],
    ["BITFIELD", "k", "INCRBY", "u8", "0"], ["BITFIELD", "k", "SET", "u8", "4294967296", "1"],
    ["BITFIELD", "k", "SET", "u8", "#536870912", "1"],
    ["BITFIELD_RO", "k", "SET", "u8", "0", "1"], ["BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"],
    ["BITFIELD_RO", "k", "GET", "u8", "0", "OVERFLOW", "SAT"],
    # BITOP
    ["BITOP", "NAND", "d", "a"], ["BITOP", "NOT", "d", "a", "b"], ["BITOP", "AND", "d"],
    # LCS: types first, then options
    ["LCS", "a"], ["LCS", "a", "b", "LEN", "IDX"], ["LCS", "a", "b", "FOO"], ["LCS", "a", "b", "MINMATCHLEN"],
    ["LCS", "a", "b", "MINMATCHLEN", "x"], ["LCS", "nokey1", "nokey2", "FOO"],
]


@pytest.mark.parametrize("config", CONFIGS)
def test_bits_errors_as_redis(start_daemon, reference_redis, upstreams, config):
    d, up, serializer = make(start_daemon, upstreams, config)
    ours, ref = d.conn(), reference_redis.conn()
    for cmd in [["SET", "k", "foobar"], ["SET", "a", "abcdef"], ["SET", "b", "xbcdey"]]:
        same(ref, ours, cmd)
    for cmd in ERRORS:
        same(ref, ours, cmd)
    check_stored(up, serializer, ref, ["k", "a", "b", "nokey"])


def fixed_sequence():
    return [
        # the reproduction of issue 11 item 5
        ["SET", "bk", "hello"], ["SETBIT", "bk", "3", "1"], ["GET", "bk"], ["GETBIT", "bk", "3"],
        ["GETBIT", "bk", "1000"], ["BITCOUNT", "bk"], ["STRLEN", "bk"],
        # SETBIT grows with zeros, a missing key is created
        ["SETBIT", "new", "100", "1"], ["GET", "new"], ["SETBIT", "new", "100", "1"], ["SETBIT", "new", "100", "0"],
        ["SETBIT", "zero", "7", "0"], ["GET", "zero"], ["GETBIT", "nokey", "0"],
        # BITCOUNT ranges
        ["SET", "s", "foobar"], ["BITCOUNT", "s"], ["BITCOUNT", "s", "0", "0"], ["BITCOUNT", "s", "1", "1"],
        ["BITCOUNT", "s", "1", "1", "BYTE"], ["BITCOUNT", "s", "5", "30", "BIT"], ["BITCOUNT", "s", "-1", "-1"],
        ["BITCOUNT", "s", "-2", "-1", "bit"], ["BITCOUNT", "s", "-100", "100"], ["BITCOUNT", "s", "3", "1"],
        ["BITCOUNT", "s", "-1", "-3"], ["BITCOUNT", "s", "0", "-1", "BIT"], ["BITCOUNT", "s", "7", "7", "BIT"],
        ["BITCOUNT", "s", "9", "14", "BIT"], ["BITCOUNT", "nokey"], ["BITCOUNT", "nokey", "0", "1", "BIT"],
        # BITPOS
        ["SET", "p", b"\xff\xf0\x00"], ["BITPOS", "p", "0"], ["BITPOS", "p", "1"], ["BITPOS", "p", "1", "2"],
        ["BITPOS", "p", "0", "0"], ["BITPOS", "p", "0", "0", "0"], ["BITPOS", "p", "0", "0", "-1"],
        ["BITPOS", "p", "1", "1", "-1", "BYTE"], ["BITPOS", "p", "0", "2", "12", "BIT"],
        ["BITPOS", "p", "0", "0", "11", "BIT"], ["BITPOS", "p", "1", "12", "23", "BIT"],
        ["BITPOS", "p", "1", "7", "9", "bit"], ["BITPOS", "p", "0", "-5", "-1", "BIT"],
        ["SET", "ones", b"\xff\xff"], ["BITPOS", "ones", "0"], ["BITPOS", "ones", "0", "0", "-1"],
        ["BITPOS", "ones", "0", "1"], ["BITPOS", "ones", "0", "0", "9", "BIT"], ["BITPOS", "ones", "1", "3", "2"],
        ["BITPOS", "nokey", "0"], ["BITPOS", "nokey", "1"], ["SET", "empty", ""], ["BITPOS", "empty", "0"],
        ["BITPOS", "empty", "1"], ["BITCOUNT", "empty"],
        # BITFIELD
        ["BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "i8", "0", "INCRBY", "i8", "0", "100"],
        ["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "100", "INCRBY", "i8", "0", "-1000"],
        ["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-1", "INCRBY", "i8", "0", "-1000",
         "GET", "i8", "0"],
        ["BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "7"],
        ["BITFIELD", "bf", "SET", "u8", "#3", "255", "GET", "u4", "#6", "GET", "u8", "#3", "GET", "i5", "27"],
        ["BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "SET", "u8", "8", "300", "GET", "u16", "0"],
        ["BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "-300", "SET", "i8", "8", "300", "GET", "i16", "0"],
        ["BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "SET", "i8", "0", "-129", "GET", "u8", "0"],
        ["BITFIELD", "bf", "SET", "i64", "0", "-9223372036854775808", "GET", "i64", "0",
         "INCRBY", "i64", "0", "-1", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-5", "INCRBY", "i64", "0",
         "9223372036854775807", "INCRBY", "i64", "0", "9223372036854775807"],
        ["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", "9223372036854775807"],
        ["BITFIELD", "bf", "SET", "u63", "1", "9223372036854775807", "GET", "u63", "1", "INCRBY", "u63", "1", "1"],
        ["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u63", "1", "-9223372036854775808", "GET", "u63", "1"],
        ["BITFIELD", "bf", "GET", "u8", "1000000"], ["GET", "bf"], ["STRLEN", "bf"],
        ["BITFIELD", "nokey"], ["BITFIELD", "nokey", "GET", "i16", "0"], ["EXISTS", "nokey"],
        ["BITFIELD", "fails", "OVERFLOW", "FAIL", "SET", "u8", "16", "256"], ["GET", "fails"],
        ["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i8", "#1"], ["BITFIELD_RO", "nokey", "GET", "u8", "0"],
        ["BITFIELD_RO", "bf"],
        # BITOP
        ["SET", "x", "foobar"], ["SET", "y", "abcdefghij"], ["SET", "z", ""],
        ["BITOP", "AND", "dand", "x", "y"], ["GET", "dand"], ["BITOP", "OR", "dor", "x", "y", "nokey"],
        ["GET", "dor"], ["BITOP", "XOR", "dxor", "x", "y", "x"], ["GET", "dxor"], ["BITOP", "NOT", "dnot", "y"],
        ["GET", "dnot"], ["BITOP", "and", "dand2", "y", "nokey"], ["GET", "dand2"],
        ["SET", "dempty", "was here"], ["EXPIRE", "dempty", "100"], ["BITOP", "OR", "dempty", "nokey", "z"],
        ["EXISTS", "dempty"], ["BITOP", "NOT", "dself", "nokey"], ["EXISTS", "dself"],
        ["SET", "ttl", "v"], ["EXPIRE", "ttl", "100"], ["BITOP", "OR", "ttl", "x"], ["TTL", "ttl"], ["GET", "ttl"],
        ["BITOP", "XOR", "x", "x", "y"], ["GET", "x"],
        # LCS
        ["SET", "l1", "ohmytext"], ["SET", "l2", "mynewtext"], ["LCS", "l1", "l2"], ["LCS", "l1", "l2", "LEN"],
        ["LCS", "l1", "l2", "IDX"], ["LCS", "l1", "l2", "IDX", "MINMATCHLEN", "4"],
        ["LCS", "l1", "l2", "IDX", "MINMATCHLEN", "-4", "WITHMATCHLEN"], ["LCS", "l1", "l2", "idx", "withmatchlen"],
        ["LCS", "l1", "nokey"], ["LCS", "nokey", "nokey2", "IDX"], ["LCS", "l1", "l1", "IDX", "WITHMATCHLEN"],
        ["LCS", "l1", "l2", "LEN", "MINMATCHLEN", "2"],
    ]


KEYS = ["bk", "new", "zero", "s", "p", "ones", "empty", "bf", "fails", "x", "y", "z", "dand", "dor", "dxor", "dnot",
        "dand2", "dempty", "dself", "ttl", "l1", "l2", "nokey"]


@pytest.mark.parametrize("config", CONFIGS)
def test_bits_replies_as_redis(start_daemon, reference_redis, upstreams, config):
    d, up, serializer = make(start_daemon, upstreams, config)
    ours, ref = d.conn(), reference_redis.conn()
    for cmd in fixed_sequence():
        same(ref, ours, cmd)
    for k in KEYS:
        same(ref, ours, ["GET", k])
    check_stored(up, serializer, ref, KEYS)


@pytest.mark.parametrize("config", ["memory-zstd", "upstream-zstd"])
def test_lcs_and_bits_resp3(start_daemon, reference_redis, upstreams, config):
    d, up, serializer = make(start_daemon, upstreams, config)
    ours, ref = d.conn(), reference_redis.conn()
    ours.cmd("HELLO", "3")
    ref.cmd("HELLO", "3")
    for cmd in [["SET", "l1", "ohmytext"], ["SET", "l2", "mynewtext"], ["LCS", "l1", "l2", "IDX", "WITHMATCHLEN"],
                ["BITFIELD", "b", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "GET", "u8", "0"]]:
        same(ref, ours, cmd)


def test_lcs_of_long_values_through_zstd(start_daemon, reference_redis, upstreams):
    """The issue's example: LCS of two 300-byte strings answered a 25-byte match of zstd frame bytes."""
    d, up, serializer = make(start_daemon, upstreams, "upstream-zstd")
    ours, ref = d.conn(), reference_redis.conn()
    rnd = random.Random(11)
    a = bytes(rnd.choice(b"ACGT") for _ in range(300))
    b = bytes(rnd.choice(b"ACGT") for _ in range(300))
    for cmd in [["SET", "a", a], ["SET", "b", b], ["LCS", "a", "b"], ["LCS", "a", "b", "LEN"],
                ["LCS", "a", "b", "IDX", "MINMATCHLEN", "5", "WITHMATCHLEN"]]:
        same(ref, ours, cmd)
    assert len(ours.cmd("LCS", "a", "b")) > 150


@pytest.mark.parametrize("config", CONFIGS)
def test_bits_random_against_redis(start_daemon, reference_redis, upstreams, config):
    """A seeded random mix of the bit commands over a few keys, every reply compared with redis's.
    CACHETORYD_BITS_SEED and CACHETORYD_BITS_STEPS replay a seed or run longer."""
    d, up, serializer = make(start_daemon, upstreams, config)
    ours, ref = d.conn(), reference_redis.conn()
    seed = int(os.environ.get("CACHETORYD_BITS_SEED") or random.randrange(1 << 30))
    steps = int(os.environ.get("CACHETORYD_BITS_STEPS") or 600)
    rnd = random.Random(seed)
    keys = ["r0", "r1", "r2", "r3"]

    def num(lo, hi):
        return str(rnd.randint(lo, hi))

    def bftype():
        s = rnd.choice("iu")
        return s + str(rnd.randint(1, 64 if s == "i" else 63))

    for step in range(steps):
        k = rnd.choice(keys)
        kind = rnd.randrange(10)
        if kind == 0:
            cmd = ["SET", k, bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 12)))]
        elif kind == 1:
            cmd = ["SETBIT", k, num(0, 120), num(0, 1)]
        elif kind == 2:
            cmd = ["GETBIT", k, num(0, 130)]
        elif kind == 3:
            cmd = ["BITCOUNT", k] + ([num(-20, 20), num(-20, 20)] + rnd.choice([[], ["BIT"], ["BYTE"]])
                                     if rnd.random() < 0.8 else [])
        elif kind == 4:
            n = rnd.choice([0, 1, 2, 3])
            extra = [num(-40, 40), num(-40, 40), rnd.choice(["BIT", "BYTE"])][:n]
            if n == 3 and extra[2] == "BYTE":
                extra[:2] = [num(-6, 6), num(-6, 6)]
            cmd = ["BITPOS", k, num(0, 1)] + extra
        elif kind == 5:
            cmd = ["BITFIELD", k]
            for _ in range(rnd.randint(1, 4)):
                op = rnd.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
                if op == "OVERFLOW":
                    cmd += [op, rnd.choice(["WRAP", "SAT", "FAIL"])]
                    continue
                t = bftype()
                off = rnd.choice([num(0, 90), "#" + num(0, 3)])
                cmd += [op, t, off]
                if op != "GET":
                    cmd.append(str(rnd.choice([rnd.randint(-300, 300), rnd.randint(-(1 << 63), (1 << 63) - 1)])))
        elif kind == 6:
            op = rnd.choice(["AND", "OR", "XOR", "NOT"])
            src = [rnd.choice(keys + ["missing"])] if op == "NOT" else rnd.sample(keys + ["missing"], rnd.randint(1, 4))
            cmd = ["BITOP", op, k] + src
        elif kind == 7:
            cmd = ["LCS", k, rnd.choice(keys)] + rnd.choice([[], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"],
                                                              ["IDX", "MINMATCHLEN", num(0, 3)]])
        elif kind == 8:
            cmd = ["BITFIELD_RO", k, "GET", bftype(), num(0, 100)]
        else:
            cmd = ["GET", k]
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        if b != a:
            values = {x: ref.cmd("GET", x) for x in keys}
            assert b == a, "seed %d step %d %r: redis %r, cachetoryd %r; values %r" % (seed, step, cmd, a, b, values)
        if cmd[0] in ("SETBIT", "BITFIELD", "BITOP"):
            target = cmd[2] if cmd[0] == "BITOP" else cmd[1]
            a, b = ref.cmd("GET", target), ours.cmd("GET", target)
            assert b == a, "seed %d step %d %r: redis holds %r, cachetoryd %r" % (seed, step, cmd, a, b)
    for k in keys:
        same(ref, ours, ["GET", k])
    check_stored(up, serializer, ref, keys)


@pytest.mark.parametrize("config", ["memory-zstd", "upstream-zstd"])
def test_bits_pipelined_and_in_multi(start_daemon, reference_redis, upstreams, config):
    """A write's effect is seen by the next command of a pipeline, and inside MULTI (memory)."""
    d, up, serializer = make(start_daemon, upstreams, config)
    ours, ref = d.conn(), reference_redis.conn()
    cmds = [["SET", "a", "abc"], ["SET", "b", "xyz"], ["BITOP", "XOR", "d", "a", "b"], ["GET", "d"],
            ["SETBIT", "d", "0", "1"], ["GETBIT", "d", "0"], ["BITOP", "AND", "d", "a", "missing"], ["EXISTS", "d"],
            ["BITFIELD", "f", "INCRBY", "u8", "0", "5"], ["BITFIELD", "f", "GET", "u8", "0"], ["GET", "f"]]
    assert ours.pipeline(cmds) == ref.pipeline(cmds)
    multi = [["MULTI"], ["SETBIT", "m", "1", "1"], ["BITCOUNT", "m"], ["BITFIELD", "m", "INCRBY", "u4", "0", "3"],
             ["LCS", "a", "b", "LEN"], ["GET", "m"], ["EXEC"]]
    assert ours.pipeline(multi) == ref.pipeline(multi)
    if up is None:
        bitop_multi = [["MULTI"], ["BITOP", "OR", "o", "a", "b"], ["GET", "o"], ["EXEC"]]
        assert ours.pipeline(bitop_multi) == ref.pipeline(bitop_multi)
    else:
        # upstream: BITOP's write would not be part of the transaction; refused, the rest runs
        r = ours.pipeline([["MULTI"], ["BITOP", "OR", "o", "a", "b"], ["GET", "a"], ["EXEC"]])
        assert r[3][0] == Err("ERR BITOP inside MULTI is not supported by cachetoryd with a redis:// backend: "
                              "its result could not be written inside the transaction; run it outside MULTI")
        assert r[3][1] == b"abc"
    check_stored(up, serializer, ref, ["a", "b", "d", "f", "m"])


def test_bits_wrong_type_upstream(start_daemon, reference_redis, upstreams):
    """Keys of other types (written through passthrough): redis's WRONGTYPE and LCS errors."""
    d, up, serializer = make(start_daemon, upstreams, "upstream-zstd")
    ours, ref = d.conn(), reference_redis.conn()
    for cmd in [["HSET", "h", "f", "v"], ["SET", "s", "abc"], ["GETBIT", "h", "0"], ["SETBIT", "h", "0", "1"],
                ["BITCOUNT", "h"], ["BITPOS", "h", "1"], ["BITFIELD", "h", "GET", "u8", "0"],
                ["BITFIELD", "h", "SET", "u8", "0", "1"], ["BITFIELD_RO", "h", "GET", "u8", "0"],
                ["BITOP", "OR", "d", "s", "h"], ["EXISTS", "d"], ["BITOP", "OR", "h", "s"], ["TYPE", "h"],
                ["LCS", "s", "nokey"], ["HSET", "h2", "f", "v"], ["LCS", "s", "h2"], ["LCS", "h2", "s", "FOO"]]:
        same(ref, ours, cmd)
