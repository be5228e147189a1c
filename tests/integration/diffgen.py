"""
Seeded random command sequences for the differential test (test_differential.py, scripts/differential);
this module holds no test and talks to no server.

    ops = generate(seed, n, features, far_s)      # a list of commands, each a list of str/bytes

The same (seed, n, features, far_s) always gives the same list. Every command is valid Redis 7 syntax
or a deliberate error (wrong arity, unknown command, bad option, out-of-range database...), and its
reply is deterministic when the sequence runs on one connection, whatever the speed of the server:

  * no TTL is short enough to expire during a run. Expiries either delete at once (EXPIRE k 0, EXPIRE k
    -1, an EXAT / PXAT in the past) or are far away, from three bands that never overlap:
      up band    seconds 2,000 + i          (i = the op's position in the sequence: later op, later expiry)
      down band  seconds 1,000,000 - 100*i  (later op, earlier expiry, by 100 s per op)
      far band   absolute, far_s + [0, 10^6) seconds (far_s is about 30 days ahead)
    so that GT / LT / NX / XX comparisons between two expiries give the same answer on every server,
    even when two commands run in the same millisecond (relative expiries set by the same value in the
    same millisecond would tie on one server and not on another). Removing ops from a sequence keeps
    this true (the bands stay monotonic), which the shrinking of a failing sequence relies on.
  * no command whose reply is random (RANDOMKEY, SPOP, SCAN cursors: SCAN is always COUNT 1000 over
    fewer keys, which answers cursor 0 with every key).

Features (a set of names) choose the families generated; FEATURES has them all with what they cover.
"""
import random

DATABASES = 4          # SELECT 0..3 (the reference redis runs with --databases 4)
STRING_KEYS = ["k%d" % i for i in range(8)]
HASH_KEYS = ["h0", "h1"]
LIST_KEYS = ["l0", "l1"]
LARGE_MIN, LARGE_MAX = 2048, 8192      # over --codec-thread-min-size 1kb: the thread-pool path

FEATURES = {
    "strings":      "GET SET (NX XX GET KEEPTTL) GETSET GETDEL MGET MSET MSETNX SETNX STRLEN GETRANGE SUBSTR",
    "rmw":          "INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND SETRANGE (read-modify-write through the codec)",
    "expire":       "EX PX EXAT PXAT on SET, SETEX PSETEX, EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), "
                    "PERSIST, GETEX (EX PX EXAT PXAT PERSIST), TTL PTTL EXPIRETIME PEXPIRETIME",
    "keyspace":     "DEL UNLINK EXISTS TYPE TOUCH KEYS SCAN DBSIZE",
    "rename":       "RENAME RENAMENX",
    "flush":        "FLUSHDB (and rarely FLUSHALL)",
    "select":       "SELECT 0..3",
    "select-bad":   "SELECT of a database that does not exist, or not a number",
    "multi":        "MULTI EXEC DISCARD blocks, with read-modify-writes inside",
    "multi-errors": "queued errors (wrong arity, unknown command -> EXECABORT), nested MULTI, EXEC/DISCARD "
                    "without MULTI, errors at EXEC time",
    "multi-select": "SELECT inside MULTI",
    "errors":       "wrong arity, unknown commands, bad options, WRONGTYPE",
    "large":        "values of 2-8 KB (over codec-thread-min-size 1kb)",
    "binary":       "values with NUL and non-UTF-8 bytes",
    "bits":         "SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO LCS",
    "bitop-in-multi": "BITOP inside MULTI (cachetoryd refuses it in front of an upstream, README)",
    "passthrough":  "HSET HGET HGETALL HDEL LPUSH RPUSH LRANGE LPOP LLEN (passthrough = yes only)",
    "clients":      "@CLIENT n: the next commands go on client connection n (0..2), each with its own "
                    "database and transaction state; the runner waits for every reply before it switches, "
                    "so the order stays deterministic (an aborted EXEC on one client, SELECT on another...)",
}
CLIENTS = 3
SWITCH = "@CLIENT"     # a pseudo-command for the runner, never sent
DEFAULT_FEATURES = frozenset(FEATURES) - {"passthrough"}

FAR_BAND = 1000000      # seconds of the far band after far_s
DOWN_BASE, DOWN_STEP = 1000000, 100
UP_BASE = 2000
MAX_OPS_PER_SEQUENCE = 9000   # the down band stays positive and apart from the up band


class _Gen:
    def __init__(self, seed, features, far_s):
        self.rng = random.Random(seed)
        self.f = frozenset(features)
        self.far_s = far_s
        self.i = 0                  # position of the op being generated

    # -- pieces -----------------------------------------------------------------------------------
    def key(self):
        r = self.rng.random()
        if "passthrough" in self.f and r < 0.08:
            return self.rng.choice(HASH_KEYS + LIST_KEYS)
        return self.rng.choice(STRING_KEYS)

    def skey(self):
        return self.rng.choice(STRING_KEYS)

    def large(self):
        rng = self.rng
        n = rng.randint(LARGE_MIN, LARGE_MAX)
        kind = rng.random()
        if kind < 0.4:      # compresses well: stored far under the thread-pool threshold
            return (b"%c" % rng.choice(b"abcxyz")) * n
        if kind < 0.7:      # does not compress
            return rng.getrandbits(8 * n).to_bytes(n, "little")
        # text with some repetition
        words = [b"alpha", b"beta", b"gamma", b"delta", b"%d" % rng.randint(0, 999)]
        out = bytearray()
        while len(out) < n:
            out += rng.choice(words) + b" "
        return bytes(out[:n])

    def val(self):
        rng = self.rng
        r = rng.random()
        if "large" in self.f and r < 0.03:
            return self.large()
        if "binary" in self.f and r < 0.07:
            return rng.choice([b"\x00", b"\xff\xfe\x00x", b"a\r\nb", bytes(range(256)), b"\x28\xb5\x2f\xfd"])
        return rng.choice(["", "a", "hello", "10", "-3", "3.25", "abc def", "9223372036854775806",
                           "1e3", "0", "xyz" * 10, " 5", "5 "])

    def num(self):
        return str(self.rng.choice([0, 1, -1, 5, 100, 12345, -7, 2 ** 62, "x", "1.5", "007", -(2 ** 62),
                                    2 ** 63, ""]))

    def up_s(self):
        return UP_BASE + self.i

    def down_s(self):
        return DOWN_BASE - DOWN_STEP * self.i

    def rel_s(self):
        """A relative expiry in seconds, from the up or the down band."""
        return str(self.up_s() if self.rng.random() < 0.5 else self.down_s())

    def rel_ms(self):
        return str(int(self.rel_s()) * 1000 + self.rng.randint(0, 999))

    def abs_s(self, past_ok=True):
        if past_ok and self.rng.random() < 0.1:
            return str(self.rng.choice([1, 1000000000]))          # in the past (2001): deletes
        return str(self.far_s + self.rng.randrange(FAR_BAND))

    def abs_ms(self, past_ok=True):
        return str(int(self.abs_s(past_ok)) * 1000 + self.rng.randint(0, 999))

    def bad_expire(self):
        return self.rng.choice(["0", "-5", "x", "9223372036854775807", "1.5", ""])

    # -- families ----------------------------------------------------------------------------------
    def strings(self):
        rng, k, v = self.rng, self.key, self.val
        c = rng.randrange(14)
        if c == 0:
            return ["GET", k()]
        if c == 1:
            return ["SET", k(), v()]
        if c == 2:
            opts = rng.sample(["NX", "XX", "GET", "KEEPTTL"], rng.randint(1, 2))
            return ["SET", k(), v()] + opts
        if c == 3:
            return ["GETSET", k(), v()]
        if c == 4:
            return ["GETDEL", k()]
        if c == 5:
            return ["MGET"] + [k() for _ in range(rng.randint(1, 4))]
        if c == 6:
            n = rng.randint(1, 3)
            return ["MSET"] + sum([[k(), v()] for _ in range(n)], [])
        if c == 7:
            return ["MSETNX"] + sum([[k(), v()] for _ in range(rng.randint(1, 3))], [])
        if c == 8:
            return ["SETNX", k(), v()]
        if c == 9:
            return ["STRLEN", k()]
        if c == 10:
            return [rng.choice(["GETRANGE", "SUBSTR"]), k(), self.num(), self.num()]
        if c == 11:
            return ["GETRANGE", k(), str(rng.randint(-10, 10)), str(rng.randint(-10, 3000))]
        if c == 12:
            return ["GET", k()]
        return ["EXISTS", k()]

    def rmw(self):
        rng, k = self.rng, self.key
        c = rng.randrange(9)
        if c == 0:
            return ["INCR", k()]
        if c == 1:
            return ["DECR", k()]
        if c == 2:
            return ["INCRBY", k(), self.num()]
        if c == 3:
            return ["DECRBY", k(), self.num()]
        if c == 4:
            return ["INCRBYFLOAT", k(), rng.choice(["1.5", "-2", "0.1", "abc", "10", "1e2", "inf", "5.0e3"])]
        if c in (5, 6):
            return ["APPEND", k(), self.val()]
        off = rng.choice([0, 1, 3, 10, 100, rng.randint(0, 5000), -1, 536870912])
        return ["SETRANGE", k(), str(off), self.val()]

    def expire(self):
        rng, k = self.rng, self.key
        c = rng.randrange(16)
        if c == 0:
            form = rng.choice(["EX", "PX", "EXAT", "PXAT"])
            # never a time in the past: Redis 7.0 stores the key already expired, and DBSIZE counts it
            # until its expiry cycle happens to remove it (timing); EXPIREAT and GETEX delete at once
            t = {"EX": self.rel_s, "PX": self.rel_ms, "EXAT": lambda: self.abs_s(False),
                 "PXAT": lambda: self.abs_ms(False)}[form]()
            extra = rng.choice([[], [], ["NX"], ["XX"], ["GET"], ["KEEPTTL"], ["XX", "GET"]])
            return ["SET", k(), self.val(), form, t] + extra
        if c == 1:
            return ["SET", k(), self.val(), rng.choice(["EX", "PX", "EXAT", "PXAT"]), self.bad_expire()]
        if c == 2:
            return ["SET", k(), self.val(), "KEEPTTL"] + rng.choice([[], ["XX"], ["GET"]])
        if c == 3:
            return ["SETEX", k(), rng.choice([self.rel_s(), self.rel_s(), self.bad_expire()]), self.val()]
        if c == 4:
            return ["PSETEX", k(), rng.choice([self.rel_ms(), self.rel_ms(), self.bad_expire()]), self.val()]
        if c == 5:
            t = rng.choice([self.rel_s(), self.rel_s(), self.rel_s(), "0", "-1"])
            return ["EXPIRE", k(), t] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["GT", "LT"]])
        if c == 6:
            t = rng.choice([self.rel_ms(), self.rel_ms(), "0", "-100"])
            return ["PEXPIRE", k(), t] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["XX", "GT"]])
        if c == 7:
            return ["EXPIREAT", k(), self.abs_s()] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])
        if c == 8:
            return ["PEXPIREAT", k(), self.abs_ms()] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])
        if c == 9:
            return [rng.choice(["EXPIRE", "PEXPIRE"]), k(), self.bad_expire()]
        if c == 10:
            return ["PERSIST", k()]
        if c == 11:
            form = rng.choice([[], ["PERSIST"], ["EX", self.rel_s()], ["PX", self.rel_ms()],
                               ["EXAT", self.abs_s()], ["PXAT", self.abs_ms()], ["EX"], ["EX", self.bad_expire()],
                               ["PERSIST", "EX", "10"]])
            return ["GETEX", k()] + form
        return [rng.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "TTL", "PTTL"]), k()]

    def keyspace(self):
        rng, k = self.rng, self.key
        c = rng.randrange(9)
        if c in (0, 1):
            return ["DEL"] + [k() for _ in range(rng.randint(1, 3))]
        if c == 2:
            return ["UNLINK", k()]
        if c == 3:
            return ["EXISTS"] + [k() for _ in range(rng.randint(1, 4))]
        if c == 4:
            return ["TYPE", k()]
        if c == 5:
            return ["TOUCH", k(), k()]
        if c == 6:
            return ["KEYS", rng.choice(["*", "k[0-3]", "k?", "x*", "[hl]*"])]
        if c == 7:
            return ["SCAN", "0", "MATCH", rng.choice(["*", "k*", "h*"]), "COUNT", "1000"]
        return ["DBSIZE"]

    def rename(self):
        return [self.rng.choice(["RENAME", "RENAMENX", "RENAME"]), self.key(), self.key()]

    def flush(self):
        if self.rng.random() < 0.15:
            return ["FLUSHALL"]
        return ["FLUSHDB"]

    def select(self):
        return ["SELECT", str(self.rng.randrange(DATABASES))]

    def select_bad(self):
        return ["SELECT", self.rng.choice(["4", "15", "16", "100", "-1", "x", "1.5"])]

    def errors(self):
        rng, k = self.rng, self.key
        c = rng.randrange(8)
        if c == 0:
            return ["GET"]
        if c == 1:
            return ["SET", k()]
        if c == 2:
            return ["NOSUCHCMD", k()]
        if c == 3:
            return ["SET", k(), self.val(), rng.choice(["NX XX", "EX", "FOO", "PX"])]
        if c == 4:
            return ["INCRBY", k()]
        if c == 5:
            return ["MSET", k()]
        if c == 6:
            return ["EXPIRE", k(), "10", "FOO"]
        return ["GETRANGE", k(), "0"]

    def bits(self):
        rng, k = self.rng, self.skey
        c = rng.randrange(12)
        if c in (0, 1):
            off = rng.choice([0, 1, 7, 8, 15, 63, rng.randint(0, 200), rng.randint(0, 60000)])
            return ["SETBIT", k(), str(off), rng.choice(["0", "1", "1"])]
        if c == 2:
            return ["SETBIT", k(), rng.choice(["-1", "x", "4294967296"]), rng.choice(["1", "2"])]
        if c == 3:
            return ["GETBIT", k(), str(rng.choice([0, 3, 8, 100, rng.randint(0, 70000)]))]
        if c == 4:
            extra = rng.choice([[], ["0", "-1"], ["1", "3"], ["0", "-1", "BIT"], ["2", "40", "BIT"],
                                ["-3", "-1", "BYTE"], ["0"], ["0", "1", "FOO"]])
            return ["BITCOUNT", k()] + extra
        if c == 5:
            extra = rng.choice([[], ["0"], ["1", "-1"], ["0", "-1", "BIT"], ["3", "30", "BIT"], ["2", "5", "BYTE"]])
            return ["BITPOS", k(), rng.choice(["0", "1"])] + extra
        if c == 6:
            op = rng.choice(["AND", "OR", "XOR", "NOT", "AND", "NOPE"])
            srcs = [k()] if op == "NOT" else [k() for _ in range(rng.randint(1, 3))]
            return ["BITOP", op, k()] + srcs
        if c in (7, 8):
            subs = []
            for _ in range(rng.randint(1, 3)):
                t = rng.choice(["u8", "i8", "u4", "i5", "u1", "i16", "u63", "i64", "u64", "i0"])
                off = rng.choice(["0", "3", "#1", "100", "#0"])
                s = rng.randrange(4)
                if s == 0:
                    subs += ["GET", t, off]
                elif s == 1:
                    subs += ["SET", t, off, str(rng.randint(-300, 300))]
                elif s == 2:
                    subs += ["INCRBY", t, off, str(rng.randint(-200, 200))]
                else:
                    subs += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL", "BAD"])]
            return ["BITFIELD", k()] + subs
        if c == 9:
            return ["BITFIELD_RO", k(), "GET", rng.choice(["u8", "i4", "u16"]), rng.choice(["0", "5", "#2"])]
        extra = rng.choice([[], ["LEN"], ["IDX"], ["IDX", "MINMATCHLEN", "2"], ["IDX", "WITHMATCHLEN"],
                            ["IDX", "MINMATCHLEN", "1", "WITHMATCHLEN"]])
        return ["LCS", k(), k()] + extra

    def passthrough(self):
        rng = self.rng
        h, l = rng.choice(HASH_KEYS), rng.choice(LIST_KEYS)
        f = rng.choice(["f1", "f2", "f3"])
        c = rng.randrange(10)
        if c in (0, 1):
            return ["HSET", h, f, self.val()] + rng.choice([[], ["f9", "x"]])
        if c == 2:
            return ["HGET", h, f]
        if c == 3:
            return ["HGETALL", h]
        if c == 4:
            return ["HDEL", h, f]
        if c in (5, 6):
            return [rng.choice(["LPUSH", "RPUSH"]), l] + [self.val() for _ in range(rng.randint(1, 3))]
        if c == 7:
            return ["LRANGE", l, "0", rng.choice(["-1", "2"])]
        if c == 8:
            return ["LPOP", l]
        return ["LLEN", rng.choice([l, h, self.skey()])]

    # -- transactions ------------------------------------------------------------------------------
    def inner(self):
        """One command for inside a MULTI block."""
        fam = self.pick(["strings", "rmw", "rmw", "expire", "keyspace", "rename", "bits", "passthrough",
                         "multi-select"])
        if fam == "multi-select":
            return self.select() if self.rng.random() < 0.8 or "select-bad" not in self.f else self.select_bad()
        op = getattr(self, fam.replace("-", "_"))()
        for _ in range(100):
            if op[0] != "BITOP" or "bitop-in-multi" in self.f:
                break
            op = self.bits()
        return op

    def multi_block(self):
        """MULTI, 1-6 commands, EXEC (or DISCARD); sometimes a queued error. Each command's TTL bands
        come from its own position (self.i counts on)."""
        rng = self.rng
        block = [["MULTI"]]
        for _ in range(rng.randint(1, 6)):
            self.i += 1
            if "multi-errors" in self.f and rng.random() < 0.06:
                errs = [["GET"], ["NOSUCHCMD", "x"], ["SET", "k0"], ["MULTI"], ["INCRBY", "k1", "x"]]
                if "passthrough" in self.f:     # found by the upstream at queue time
                    errs += [["HSET", "h0", "f1"], ["LPUSH", "l0"]]
                block.append(rng.choice(errs))
            else:
                block.append(self.inner())
        block.append(["DISCARD"] if rng.random() < 0.1 else ["EXEC"])
        return block

    def pick(self, families):
        ok = [f for f in families if f in self.f]
        return self.rng.choice(ok) if ok else "strings"


# weights of the families for one step (a MULTI block counts as one step)
_WEIGHTS = [("strings", 22), ("rmw", 14), ("expire", 16), ("keyspace", 8), ("rename", 3), ("flush", 0.6),
            ("select", 5), ("select-bad", 0.8), ("multi", 4), ("errors", 2), ("bits", 10),
            ("passthrough", 8), ("multi-errors", 0.6), ("clients", 2)]


def generate(seed, n, features=DEFAULT_FEATURES, far_s=None):
    """n commands (a MULTI block at the end may be cut short) for the given features. far_s: the start of
    the far band (Unix seconds); by default about 30 days from 2026-01-01, which is in the future for the
    servers' clocks as long as the tests run before 2050 (the far band is then decades ahead)."""
    if n > MAX_OPS_PER_SEQUENCE:
        raise ValueError("at most %d ops in one sequence (the TTL bands), got %d" % (MAX_OPS_PER_SEQUENCE, n))
    if far_s is None:
        far_s = 2600000000          # 2052-05: beyond any relative TTL generated
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError("unknown features %s (known: %s)" % (sorted(unknown), sorted(FEATURES)))
    g = _Gen(seed, features, far_s)
    fams = [(f, w) for f, w in _WEIGHTS if f in g.f]
    names = [f for f, _ in fams]
    weights = [w for _, w in fams]
    ops = []
    while len(ops) < n:
        g.i = len(ops)
        fam = g.rng.choices(names, weights)[0]
        if fam == "multi":
            ops.extend(g.multi_block())
        elif fam == "multi-errors":
            ops.append(g.rng.choice([["EXEC"], ["DISCARD"]]))
        elif fam == "select-bad":
            ops.append(g.select_bad())
        elif fam == "clients":
            ops.append([SWITCH, str(g.rng.randrange(CLIENTS))])
        else:
            ops.append(getattr(g, fam.replace("-", "_"))())
    return ops[:n]


def show(op, limit=60):
    """A command as one readable line: long or binary arguments abbreviated."""
    out = []
    for a in op:
        if isinstance(a, bytes):
            if len(a) > limit:
                out.append("<%d bytes %r...>" % (len(a), a[:12]))
            else:
                try:
                    s = a.decode()
                    out.append(s if s and " " not in s and s.isprintable() else repr(s))
                except UnicodeDecodeError:
                    out.append(repr(a))
        else:
            out.append(a if a and " " not in a else repr(a))
    return " ".join(out)
