"""Keyspace commands: DEL UNLINK EXISTS TYPE TOUCH EXPIRE* TTL PTTL EXPIRETIME PEXPIRETIME PERSIST KEYS
SCAN RANDOMKEY RENAME RENAMENX, and expiry actually happening (lazily and in the background)."""
import time

from helpers import Err, parse_info, wait_until

NOT_INT = Err("ERR value is not an integer or out of range")
INCOMPATIBLE = Err("ERR NX and XX, GT or LT options at the same time are not compatible")


def test_del_unlink(c):
    c.cmd("MSET", "a", 1, "b", 2, "c", 3, "d", 4)
    assert c.cmd("DEL", "a", "b", "missing") == 2
    assert c.cmd("DEL", "a") == 0
    assert c.cmd("DEL", "c", "c") == 1
    assert c.cmd("UNLINK", "d", "missing") == 1
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("UNLINK") == Err("ERR wrong number of arguments for 'unlink' command")


def test_exists_counts_duplicates(c):
    c.cmd("MSET", "a", 1, "b", 2)
    assert c.cmd("EXISTS", "a") == 1
    assert c.cmd("EXISTS", "missing") == 0
    assert c.cmd("EXISTS", "a", "a", "b", "missing", "a") == 4
    assert c.cmd("EXISTS") == Err("ERR wrong number of arguments for 'exists' command")


def test_type(c):
    c.cmd("SET", "s", "v")
    assert c.cmd("TYPE", "s") == "string"
    assert c.cmd("TYPE", "missing") == "none"


def test_touch(c):
    c.cmd("MSET", "a", 1, "b", 2)
    assert c.cmd("TOUCH", "a", "b", "missing") == 2
    assert c.cmd("TOUCH", "a", "a") == 2


def test_expire_family(c):
    c.cmd("MSET", "a", 1, "b", 2, "c", 3, "d", 4)
    assert c.cmd("EXPIRE", "a", 100) == 1
    assert 99 <= c.cmd("TTL", "a") <= 100
    assert c.cmd("PEXPIRE", "b", 100000) == 1
    assert 98000 <= c.cmd("PTTL", "b") <= 100000
    now = int(time.time())
    assert c.cmd("EXPIREAT", "c", now + 200) == 1
    assert c.cmd("EXPIRETIME", "c") == now + 200
    assert 198 <= c.cmd("TTL", "c") <= 200
    now_ms = int(time.time() * 1000)
    assert c.cmd("PEXPIREAT", "d", now_ms + 300000) == 1
    assert c.cmd("PEXPIRETIME", "d") == now_ms + 300000
    assert c.cmd("EXPIRETIME", "d") in ((now_ms + 300000) // 1000, (now_ms + 300000 + 500) // 1000)
    for cmd in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        assert c.cmd(cmd, "missing", 100) == 0
        assert c.cmd(cmd, "a", "abc") == NOT_INT
        assert c.cmd(cmd, "a") == Err("ERR wrong number of arguments for '%s' command" % cmd.lower())


def test_expiretime_rounds_to_nearest_second(c):
    # redis answers TTL and EXPIRETIME as (ms + 500) / 1000: rounded, not truncated
    at_ms = (int(time.time()) + 300) * 1000 + 700
    c.cmd("SET", "k", "v")
    assert c.cmd("PEXPIREAT", "k", at_ms) == 1
    assert c.cmd("PEXPIRETIME", "k") == at_ms
    assert c.cmd("EXPIRETIME", "k") == at_ms // 1000 + 1
    at_ms = (int(time.time()) + 300) * 1000 + 300
    assert c.cmd("PEXPIREAT", "k", at_ms) == 1
    assert c.cmd("EXPIRETIME", "k") == at_ms // 1000
    # the largest time: Redis 7.0 answers the rounded value (no overflow on the way)
    assert c.cmd("PEXPIREAT", "k", 2 ** 63 - 1) == 1
    assert c.cmd("EXPIRETIME", "k") == 9223372036854776
    assert c.cmd("PEXPIRETIME", "k") == 2 ** 63 - 1
    assert c.cmd("TTL", "k") > 9223370000000000


def test_ttl_rounds_to_nearest_second(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("PEXPIRE", "k", 1800) == 1
    assert c.cmd("TTL", "k") == 2          # 1.8 s (less a few ms) rounds to 2
    assert c.cmd("PEXPIRE", "k", 1300) == 1
    assert c.cmd("TTL", "k") == 1


def test_ttl_pttl_special_values(c):
    assert c.cmd("TTL", "missing") == -2
    assert c.cmd("PTTL", "missing") == -2
    assert c.cmd("EXPIRETIME", "missing") == -2
    assert c.cmd("PEXPIRETIME", "missing") == -2
    c.cmd("SET", "p", "v")
    assert c.cmd("TTL", "p") == -1
    assert c.cmd("PTTL", "p") == -1
    assert c.cmd("EXPIRETIME", "p") == -1
    assert c.cmd("PEXPIRETIME", "p") == -1


def test_expire_non_positive_deletes(c):
    c.cmd("MSET", "a", 1, "b", 2, "c", 3, "d", 4)
    assert c.cmd("EXPIRE", "a", 0) == 1
    assert c.cmd("EXISTS", "a") == 0
    assert c.cmd("PEXPIRE", "b", -100) == 1
    assert c.cmd("EXISTS", "b") == 0
    assert c.cmd("EXPIREAT", "c", 1) == 1
    assert c.cmd("GET", "c") is None
    assert c.cmd("PEXPIREAT", "d", 1000) == 1
    assert c.cmd("TTL", "d") == -2


def test_expire_overflow(c):
    c.cmd("SET", "a", 1)
    assert c.cmd("EXPIRE", "a", 9223372036854775807) == Err("ERR invalid expire time in 'expire' command")
    assert c.cmd("PEXPIRE", "a", 9223372036854775807) == Err("ERR invalid expire time in 'pexpire' command")
    assert c.cmd("EXPIREAT", "a", 9223372036854775807) == Err("ERR invalid expire time in 'expireat' command")
    assert c.cmd("TTL", "a") == -1


def test_expire_nx_xx(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("EXPIRE", "k", 100, "XX") == 0
    assert c.cmd("TTL", "k") == -1
    assert c.cmd("EXPIRE", "k", 100, "NX") == 1
    assert 99 <= c.cmd("TTL", "k") <= 100
    assert c.cmd("EXPIRE", "k", 200, "NX") == 0
    assert c.cmd("EXPIRE", "k", 200, "xx") == 1
    assert 199 <= c.cmd("TTL", "k") <= 200
    assert c.cmd("PEXPIRE", "missing", 100, "NX") == 0


def test_expire_gt_lt(c):
    c.cmd("SET", "k", "v")
    # a key without expiry counts as an infinite TTL
    assert c.cmd("EXPIRE", "k", 100, "GT") == 0
    assert c.cmd("TTL", "k") == -1
    assert c.cmd("EXPIRE", "k", 100, "LT") == 1
    assert 99 <= c.cmd("TTL", "k") <= 100
    assert c.cmd("EXPIRE", "k", 50, "GT") == 0
    assert c.cmd("EXPIRE", "k", 200, "GT") == 1
    assert 199 <= c.cmd("TTL", "k") <= 200
    assert c.cmd("EXPIRE", "k", 300, "LT") == 0
    assert c.cmd("PEXPIRE", "k", 150000, "lt") == 1
    assert 148000 <= c.cmd("PTTL", "k") <= 150000
    assert c.cmd("EXPIRE", "k", 100, "XX", "GT") == 0
    assert c.cmd("EXPIRE", "k", 100, "XX", "LT") == 1


def test_expire_option_errors(c):
    c.cmd("SET", "k", "v")
    assert c.cmd("EXPIRE", "k", 100, "NX", "XX") == INCOMPATIBLE
    assert c.cmd("EXPIRE", "k", 100, "NX", "GT") == INCOMPATIBLE
    assert c.cmd("PEXPIRE", "k", 100, "NX", "LT") == INCOMPATIBLE
    assert c.cmd("EXPIRE", "k", 100, "GT", "LT") == Err(
        "ERR GT and LT options at the same time are not compatible")
    assert c.cmd("EXPIRE", "k", 100, "FOO") == Err("ERR Unsupported option FOO")
    assert c.cmd("TTL", "k") == -1


def test_persist(c):
    c.cmd("SET", "k", "v", "EX", 100)
    assert c.cmd("PERSIST", "k") == 1
    assert c.cmd("TTL", "k") == -1
    assert c.cmd("PERSIST", "k") == 0
    assert c.cmd("PERSIST", "missing") == 0


def test_keys_patterns(c):
    names = ["hello", "hallo", "hxllo", "hllo", "heeeello", "hbllo", "foo", "a*b", "a?b", "aXb", "h[llo"]
    for n in names:
        c.cmd("SET", n, 1)

    def keys(p):
        return sorted(k.decode() for k in c.cmd("KEYS", p))
    assert keys("*") == sorted(names)
    assert keys("h?llo") == ["h[llo", "hallo", "hbllo", "hello", "hxllo"]
    assert keys("h*llo") == ["h[llo", "hallo", "hbllo", "heeeello", "hello", "hllo", "hxllo"]
    assert keys("h[ae]llo") == ["hallo", "hello"]
    assert keys("h[^e]llo") == ["h[llo", "hallo", "hbllo", "hxllo"]
    assert keys("h[a-b]llo") == ["hallo", "hbllo"]
    assert keys("a\\*b") == ["a*b"]
    assert keys("a\\?b") == ["a?b"]
    assert keys("a?b") == ["a*b", "a?b", "aXb"]
    assert keys("h\\[llo") == ["h[llo"]
    assert keys("nomatch*") == []
    assert keys("foo") == ["foo"]
    assert keys("F*") == []


def test_keys_skips_expired(c):
    c.cmd("SET", "live", 1)
    c.cmd("SET", "dead", 1, "PX", 1)
    time.sleep(0.02)
    assert c.cmd("KEYS", "*") == [b"live"]


def _scan_all(c, *opts, max_iter=10000):
    cursor = b"0"
    seen = []
    calls = 0
    while True:
        r = c.cmd("SCAN", cursor, *opts)
        assert isinstance(r, list) and len(r) == 2, r
        cursor, batch = r
        assert isinstance(cursor, bytes)
        seen.extend(batch)
        calls += 1
        assert calls <= max_iter, "SCAN did not return cursor 0 after %d calls" % max_iter
        if cursor == b"0":
            return seen, calls


def test_scan_complete(c):
    keys = {("key:%d" % i).encode() for i in range(1000)}
    c.pipeline([("SET", k, "v") for k in keys])
    seen, calls = _scan_all(c, "COUNT", 10)
    assert set(seen) == keys
    assert calls > 10  # COUNT 10 over 1000 keys takes many calls
    seen, _ = _scan_all(c)
    assert set(seen) == keys
    seen, calls = _scan_all(c, "COUNT", 5000)
    assert set(seen) == keys and len(seen) == 1000


def test_scan_match_and_type(c):
    c.pipeline([("SET", "user:%d" % i, "v") for i in range(300)] +
               [("SET", "item:%d" % i, "v") for i in range(300)])
    seen, _ = _scan_all(c, "MATCH", "user:*", "COUNT", 20)
    assert set(seen) == {("user:%d" % i).encode() for i in range(300)}
    seen, _ = _scan_all(c, "MATCH", "user:1?", "COUNT", 1000)
    assert sorted(seen) == sorted(("user:1%d" % i).encode() for i in range(10))
    seen, _ = _scan_all(c, "TYPE", "string", "COUNT", 100)
    assert len(set(seen)) == 600
    seen, _ = _scan_all(c, "TYPE", "list", "COUNT", 100)
    assert seen == []
    seen, _ = _scan_all(c, "MATCH", "item:*", "TYPE", "string")
    assert len(set(seen)) == 300


def test_scan_empty_and_errors(c):
    assert c.cmd("SCAN", 0) == [b"0", []]
    c.cmd("SET", "a", 1)
    assert c.cmd("SCAN", "abc") == Err("ERR invalid cursor")
    assert c.cmd("SCAN", 0, "COUNT", 0) == Err("ERR syntax error")
    assert c.cmd("SCAN", 0, "COUNT", "x") == NOT_INT
    assert c.cmd("SCAN", 0, "FOO") == Err("ERR syntax error")
    assert c.cmd("SCAN", 0, "MATCH") == Err("ERR syntax error")


def test_randomkey(c):
    assert c.cmd("RANDOMKEY") is None
    names = {b"a", b"b", b"c"}
    for n in names:
        c.cmd("SET", n, 1)
    got = {c.cmd("RANDOMKEY") for _ in range(50)}
    assert got <= names and got


def test_rename(c):
    c.cmd("SET", "a", "1", "EX", 100)
    assert c.cmd("RENAME", "a", "b") == "OK"
    assert c.cmd("EXISTS", "a") == 0
    assert c.cmd("GET", "b") == b"1"
    assert 99 <= c.cmd("TTL", "b") <= 100
    c.cmd("SET", "c", "3")
    assert c.cmd("RENAME", "c", "b") == "OK"
    assert c.cmd("GET", "b") == b"3"
    assert c.cmd("TTL", "b") == -1
    assert c.cmd("RENAME", "b", "b") == "OK"
    assert c.cmd("GET", "b") == b"3"
    assert c.cmd("RENAME", "missing", "x") == Err("ERR no such key")
    assert c.cmd("RENAME", "missing", "missing") == Err("ERR no such key")


def test_renamenx(c):
    c.cmd("MSET", "a", 1, "b", 2)
    assert c.cmd("RENAMENX", "a", "b") == 0
    assert c.cmd("MGET", "a", "b") == [b"1", b"2"]
    assert c.cmd("RENAMENX", "a", "c") == 1
    assert c.cmd("MGET", "a", "c") == [None, b"1"]
    assert c.cmd("RENAMENX", "missing", "x") == Err("ERR no such key")
    assert c.cmd("RENAMENX", "c", "c") == 0


def test_expiry_happens(c):
    c.cmd("SET", "short", "v", "PX", 100)
    c.cmd("SET", "other", "v", "PX", 100)
    c.cmd("SET", "kept", "v")
    assert c.cmd("GET", "short") == b"v"
    time.sleep(0.3)
    assert c.cmd("GET", "short") is None
    assert c.cmd("EXISTS", "other") == 0
    assert c.cmd("TTL", "short") == -2
    assert c.cmd("GET", "kept") == b"v"
    assert c.cmd("SET", "short", "again") == "OK"
    assert c.cmd("TTL", "short") == -1


def test_expired_key_cannot_be_revived_by_persist(c):
    c.cmd("SET", "k", "v", "PX", 50)
    time.sleep(0.15)
    assert c.cmd("PERSIST", "k") == 0
    assert c.cmd("EXPIRE", "k", 100) == 0
    assert c.cmd("RENAME", "k", "x") == Err("ERR no such key")
    assert c.cmd("APPEND", "k", "z") == 1
    assert c.cmd("GET", "k") == b"z"


def test_background_expiry(srv, c):
    """Keys written once and never read disappear from DBSIZE (active expiry) within ~2 s."""
    before = int(parse_info(c.cmd("INFO", "stats"))["expired_keys"])
    c.pipeline([("SET", "bg:%d" % i, "v", "PX", 100) for i in range(200)])
    c.cmd("SET", "persistent", "v")
    assert c.cmd("DBSIZE") == 201
    ok = wait_until(lambda: c.cmd("DBSIZE") == 1, timeout=2.5, interval=0.05)
    assert ok, "DBSIZE still %r 2.5 s after the keys expired" % c.cmd("DBSIZE")
    after = int(parse_info(c.cmd("INFO", "stats"))["expired_keys"])
    assert after - before == 200
    assert "db0:keys=1,expires=0" in c.cmd("INFO", "keyspace").decode()


def test_scan_guarantee_while_keyspace_grows_and_shrinks(c):
    """Every key present for the whole iteration is returned, even while the table is resized."""
    stable = {("stable:%d" % i).encode() for i in range(2000)}
    c.pipeline([("SET", k, "v") for k in stable])
    cursor, seen, calls, added = b"0", set(), 0, 0
    while True:
        cursor, batch = c.cmd("SCAN", cursor, "COUNT", 10)
        seen.update(batch)
        calls += 1
        assert calls < 20000
        # grow a lot (forces rehashing) during the first part, then delete the extra keys again
        if added < 20000:
            c.pipeline([("SET", "grow:%d" % (added + i), "v") for i in range(500)])
            added += 500
        elif added < 40000:
            c.pipeline([("DEL", "grow:%d" % (added - 20000 + i)) for i in range(1000)])
            added += 1000
        if cursor == b"0":
            break
    missing = stable - seen
    assert not missing, "%d stable keys never returned by SCAN, e.g. %r" % (len(missing), sorted(missing)[:5])


def test_scan_guarantee_while_shrinking(c):
    stable = {("s:%d" % i).encode() for i in range(500)}
    c.pipeline([("SET", k, "v") for k in stable])
    c.pipeline([("SET", "tmp:%d" % i, "v") for i in range(30000)])
    cursor, seen, calls, deleted = b"0", set(), 0, 0
    while True:
        cursor, batch = c.cmd("SCAN", cursor, "COUNT", 20)
        seen.update(batch)
        calls += 1
        assert calls < 20000
        if deleted < 30000:
            c.pipeline([("DEL", "tmp:%d" % (deleted + i)) for i in range(3000)])
            deleted += 3000
        if cursor == b"0":
            break
    assert stable <= seen, "%d stable keys missed" % len(stable - seen)
    assert c.cmd("DBSIZE") == 500


# Redis 7 reads the cursor with strtoul: a sign, then digits, modulo 2^64; "" is 0; no spaces, no junk,
# nothing over 2^64 - 1 (checked against redis-server 7.0.15).
SCAN_CURSORS_OK = ["-1", "18446744073709551615", "-18446744073709551615", "+1", "", "00", "-0",
                   "9223372036854775808", "0" * 40 + "1"]
SCAN_CURSORS_BAD = ["18446744073709551616", "-18446744073709551616", "abc", "1.5", " 1", "1 ", "0x10", "-",
                    "+", "--1", "1a"]


def test_scan_cursor_forms(c):
    for cur in SCAN_CURSORS_OK:
        assert c.cmd("SCAN", cur) == [b"0", []], "SCAN %r on an empty database" % cur
    for cur in SCAN_CURSORS_BAD:
        assert c.cmd("SCAN", cur) == Err("ERR invalid cursor"), "SCAN %r" % cur
    for i in range(50):
        c.cmd("SET", "k%d" % i, "v")
    # -1 is the last cursor of the walk: some keys, then the end
    cur, keys = c.cmd("SCAN", "-1", "COUNT", "1")
    assert cur == b"0" and all(k.startswith(b"k") for k in keys)
    # a walk from 0 still sees every key once at least
    seen, cur = set(), b"0"
    for _ in range(1000):
        cur, keys = c.cmd("SCAN", cur)
        seen.update(keys)
        if cur == b"0":
            break
    assert seen == {b"k%d" % i for i in range(50)}
