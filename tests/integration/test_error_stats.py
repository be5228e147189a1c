"""Error replies counted as Redis 7.0 counts them, compared with a real redis-server given the same commands:
INFO stats' total_error_replies, INFO errorstats (errorstat_<CODE>:count=N), commandstats' failed_calls (the
command ran and answered an error) and rejected_calls (refused before running), in memory mode and in proxy
mode, where the upstream's own errors are relayed; CLIENT LIST's sub= psub= ssub= for a client subscribed
through the proxy."""
import re

import pytest

from helpers import Err, encode_command, parse_info
from upstream_support import proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


def run(conn, commands):
    """Send each command (a tuple) and read its reply; MULTI blocks are plain commands here."""
    return [conn.cmd(*c) for c in commands]


def error_figures(conn, commands):
    """total_error_replies, the errorstat_* lines, and calls/rejected/failed of each cmdstat_<name>."""
    total = int(parse_info(conn.cmd("INFO", "stats"))["total_error_replies"])
    errors = {k: v for k, v in parse_info(conn.cmd("INFO", "errorstats")).items() if k.startswith("errorstat_")}
    stats = {}
    for k, v in parse_info(conn.cmd("INFO", "commandstats")).items():
        name = k[len("cmdstat_"):]
        if name in commands:
            m = re.fullmatch(r"calls=(\d+),usec=\d+,usec_per_call=[\d.]+,rejected_calls=(\d+),failed_calls=(\d+)", v)
            assert m, v
            stats[name] = tuple(int(x) for x in m.groups())
    return total, errors, stats


# the same on cachetoryd's memory backend and on Redis: unknown command, wrong arity (of a command, of a
# container), a failing command, errors of EXEC and MULTI themselves, a failing member of a transaction,
# a transaction aborted by a refused member (EXECABORT)
COMMON = [
    ("NOSUCHCOMMAND", "x"),
    ("SET",),
    ("GET", "a", "b"),
    ("CONFIG",),
    ("SET", "str", "notanumber"),
    ("INCR", "str"),
    ("EXEC",),
    ("MULTI",), ("SET", "a", "1"), ("INCR", "str"), ("EXEC",),
    ("MULTI",), ("SET",), ("GET", "a"), ("EXEC",),
    ("MULTI",), ("MULTI",), ("DISCARD",),
    ("GET", "a"),
]
COMMON_NAMES = {"set", "get", "incr", "exec", "multi", "discard", "config"}


def test_memory_mode_counts_errors_as_redis(start_daemon, reference_redis):
    d = start_daemon()
    got, want = d.conn(), reference_redis.conn()
    for c in (got, want):
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        assert c.cmd("INFO", "errorstats").decode().strip() == "# Errorstats"
        assert c.cmd("FLUSHALL") == "OK"
    replies = run(got, COMMON)
    assert replies == run(want, COMMON)
    assert replies[10] == ["OK", Err("ERR value is not an integer or out of range")]
    assert replies[14] == Err("EXECABORT Transaction discarded because of previous errors.")
    figures = error_figures(got, COMMON_NAMES)
    assert figures == error_figures(want, COMMON_NAMES)
    total, errors, stats = figures
    assert total == 10
    assert errors == {"errorstat_ERR": "count=9", "errorstat_EXECABORT": "count=1"}
    assert stats["incr"] == (2, 0, 2) and stats["set"] == (2, 2, 0) and stats["exec"] == (3, 0, 2)
    # in the default INFO, as Redis 7.0 has it; CONFIG RESETSTAT clears them
    for c in (got, want):
        default = c.cmd("INFO").decode()
        assert "# Errorstats\r\nerrorstat_ERR:count=9\r\n" in default
        assert "errorstat_EXECABORT:count=1" in c.cmd("INFO", "all").decode()
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        assert parse_info(c.cmd("INFO", "stats"))["total_error_replies"] == "0"
        assert "errorstat_" not in c.cmd("INFO", "everything").decode()


def test_pipelined_errors_are_each_counted(start_daemon):
    """Replies that wait behind others (one write of many commands) are counted as they leave."""
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    cmds = [("SET", "k", "v"), ("INCR", "k"), ("GET",), ("NOPE",), ("GET", "k")] * 50
    replies = c.pipeline(cmds)
    assert sum(isinstance(r, Err) for r in replies) == 150
    info = parse_info(c.cmd("INFO", "all"))
    assert info["total_error_replies"] == "150"
    assert info["errorstat_ERR"] == "count=150"
    assert info["cmdstat_incr"].endswith(",rejected_calls=0,failed_calls=50")
    assert info["cmdstat_get"].startswith("calls=50,") and info["cmdstat_get"].endswith(
        ",rejected_calls=50,failed_calls=0")


# through the proxy: the upstream's own errors (WRONGTYPE, NOSCRIPT) relayed, inside a transaction too
PROXY = COMMON + [
    ("HSET", "str", "f", "v"),
    ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"),
    ("HSET", "h"),                          # wrong arity of a forwarded command: rejected
    ("OBJECT", "ENCODING"),                 # ... of a forwarded container's subcommand
    ("MULTI",), ("INCR", "str"), ("HSET", "str", "f", "v"), ("SET", "b", "2"), ("EXEC",),
]


def test_proxy_mode_counts_relayed_errors_as_redis(start_daemon, upstreams, reference_redis):
    up = upstreams()
    d = proxy(start_daemon, up, passthrough="yes")
    got, want = d.conn(), reference_redis.conn()
    for c in (got, want):
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    assert want.cmd("FLUSHALL") == "OK"
    assert up.conn().cmd("FLUSHALL") == "OK"
    replies = run(got, PROXY)
    assert replies == run(want, PROXY)
    assert replies[-1] == [Err("ERR value is not an integer or out of range"),
                           Err("WRONGTYPE Operation against a key holding the wrong kind of value"), "OK"]
    # forwarded commands are counted by their own names, as on Redis
    names = COMMON_NAMES | {"hset", "evalsha", "object|encoding"}
    total, errors, stats = error_figures(got, names)
    assert (total, errors, stats) == error_figures(want, names)
    assert stats["hset"] == (2, 1, 2) and stats["evalsha"] == (1, 0, 1) and stats["object|encoding"] == (0, 1, 0)
    assert total == 16
    assert errors == {"errorstat_ERR": "count=12", "errorstat_EXECABORT": "count=1",
                      "errorstat_NOSCRIPT": "count=1", "errorstat_WRONGTYPE": "count=2"}


def client_line(conn, name):
    for line in conn.cmd("CLIENT", "LIST").decode().splitlines():
        if " name=%s " % name in line:
            return dict(f.split("=", 1) for f in line.split(" "))
    raise AssertionError("no client named %s" % name)


def test_client_list_counts_subscriptions_through_the_proxy(start_daemon, upstreams, reference_redis):
    up = upstreams()
    d = proxy(start_daemon, up, passthrough="yes")
    for server in (d, reference_redis):
        sub, other = server.conn(), server.conn()
        assert sub.cmd("CLIENT", "SETNAME", "subscriber") == "OK"
        assert client_line(other, "subscriber")["sub"] == "0"
        sub.send(encode_command("SUBSCRIBE", "a", "b") + encode_command("SUBSCRIBE", "a") +
                 encode_command("PSUBSCRIBE", "p*") + encode_command("UNSUBSCRIBE", "a") +
                 encode_command("SSUBSCRIBE", "s1"))
        assert [sub.read_reply() for _ in range(6)] == [
            [b"subscribe", b"a", 1], [b"subscribe", b"b", 2], [b"subscribe", b"a", 2],
            [b"psubscribe", b"p*", 3], [b"unsubscribe", b"a", 2], [b"ssubscribe", b"s1", 1]]
        line = client_line(other, "subscriber")
        assert (line["sub"], line["psub"], line["ssub"], line["flags"]) == ("1", "1", "1", "P"), (server, line)
        # subscribed (RESP2): another command is refused before it runs
        assert other.cmd("CONFIG", "RESETSTAT") == "OK"
        assert sub.cmd("GET", "k") == Err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                                         "PING / QUIT / RESET are allowed in this context")
        info = parse_info(other.cmd("INFO", "all"))
        assert info["cmdstat_get"] == "calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"
        assert info["total_error_replies"] == "1"
        sub.send(encode_command("PUNSUBSCRIBE") + encode_command("SUNSUBSCRIBE") + encode_command("UNSUBSCRIBE"))
        assert [sub.read_reply() for _ in range(3)] == [
            [b"punsubscribe", b"p*", 1], [b"sunsubscribe", b"s1", 0], [b"unsubscribe", b"b", 0]]
        assert wait_for(lambda: client_line(other, "subscriber")["flags"] == "N", 5)
        line = client_line(other, "subscriber")
        assert (line["sub"], line["psub"], line["ssub"]) == ("0", "0", "0")


def test_error_codes_are_bounded(start_daemon, upstreams):
    """Distinct codes relayed from the upstream's scripts (redis.error_reply) are kept up to 128; the next new
    one empties the table, which then shows ERRORSTATS_DISABLED until CONFIG RESETSTAT (Redis 7.2.5 / 7.4's
    bound; 7.0 kept them all). total_error_replies counts every one."""
    up = upstreams()
    d = proxy(start_daemon, up, passthrough="yes")
    c = d.conn()
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    script = "return redis.error_reply(ARGV[1] .. ' made up')"
    replies = c.pipeline([("EVAL", script, "0", "CODE%d" % i) for i in range(130)])
    assert replies[129] == Err("CODE129 made up")
    info = parse_info(c.cmd("INFO", "all"))
    assert info["total_error_replies"] == "130"
    assert {k: v for k, v in info.items() if k.startswith("errorstat_")} == {
        "errorstat_ERRORSTATS_DISABLED": "count=1"}
    assert info["cmdstat_eval"].endswith(",rejected_calls=0,failed_calls=130")
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    assert c.cmd("EVAL", script, "0", "AGAIN") == Err("AGAIN made up")
    assert c.cmd("INFO", "errorstats").decode() == "# Errorstats\r\nerrorstat_AGAIN:count=1\r\n"
