"""INFO commandstats / latencystats with redis's field names, and SLOWLOG."""
import os
import re
import signal

import pytest

from helpers import Err, parse_info, wait_until

pytestmark = pytest.mark.needs_cachetoryd


def test_commandstats_count_calls(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    for i in range(7):
        assert c.cmd("SET", "k%d" % i, "v") == "OK"
    for i in range(3):
        c.cmd("GET", "k%d" % i)
    c.cmd("CLIENT", "ID")
    info = parse_info(c.cmd("INFO", "commandstats").decode())
    assert re.fullmatch(r"calls=7,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=0", info["cmdstat_set"])
    assert info["cmdstat_get"].startswith("calls=3,")
    assert info["cmdstat_client|id"].startswith("calls=1,")
    lat = parse_info(c.cmd("INFO", "latencystats").decode())
    m = re.fullmatch(r"p50=([\d.]+),p99=([\d.]+),p99\.9=([\d.]+)", lat["latency_percentiles_usec_set"])
    assert m and float(m.group(1)) <= float(m.group(2)) <= float(m.group(3))
    # the default INFO keeps its sections; commandstats is asked for by name, or with "all"
    assert "cmdstat_set" not in c.cmd("INFO").decode()
    assert "cmdstat_set" in c.cmd("INFO", "all").decode()


def test_rejected_calls_are_counted(start_daemon, tmp_path):
    """A write refused before it runs (denyoom: memory over the limit, here after a reload lowered it)
    counts in rejected_calls."""
    conf = tmp_path / "c.conf"
    conf.write_text("[cache]\nmaxmemory = 1mb\nmaxmemory-policy = noeviction\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    big = b"x" * 400_000
    assert [c.cmd("SET", "k%d" % i, big) for i in range(2)] == ["OK", "OK"]
    conf.write_text("[cache]\nmaxmemory = 512kb\nmaxmemory-policy = noeviction\n")
    os.kill(d.pid, signal.SIGHUP)
    assert wait_until(lambda: c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"524288"], 5)
    r = c.cmd("SET", "k2", "v")
    assert isinstance(r, Err) and str(r).startswith("OOM"), r
    info = parse_info(c.cmd("INFO", "commandstats").decode())
    assert int(re.search(r"rejected_calls=(\d+)", info["cmdstat_set"]).group(1)) == 1


def test_slowlog(start_daemon):
    d = start_daemon(slowlog_log_slower_than="0", slowlog_max_len="3")
    c = d.conn()
    assert c.cmd("SLOWLOG", "RESET") == "OK"
    assert c.cmd("SET", "a", "1") == "OK"
    assert c.cmd("ECHO", "x" * 300) == b"x" * 300
    entries = c.cmd("SLOWLOG", "GET")
    # newest first: SLOWLOG RESET itself is logged before SET? it ran before the reset took effect,
    # so the log holds what came after it
    names = [e[3][0] for e in entries]
    assert names[:2] == [b"ECHO", b"SET"], names
    echo = entries[0]
    assert isinstance(echo[0], int) and isinstance(echo[1], int) and isinstance(echo[2], int)
    assert echo[3][1].startswith(b"x" * 128) and b"more bytes" in echo[3][1]
    assert echo[4].startswith(b"127.0.0.1:")
    for i in range(5):
        c.cmd("PING")
    assert c.cmd("SLOWLOG", "LEN") == 3
    assert len(c.cmd("SLOWLOG", "GET", "-1")) == 3
    assert c.cmd("SLOWLOG", "GET", "-2") == Err("ERR count should be greater than or equal to -1")
    assert c.cmd("SLOWLOG", "NOPE") == Err("ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP.")


def test_cache_hits_and_misses(start_daemon):
    d = start_daemon(serializer="zstd://")
    c = d.conn()
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    assert c.cmd("SET", "a", "1") == "OK"
    c.cmd("GET", "a")
    c.cmd("GET", "nope")
    c.cmd("MGET", "a", "nope", "nope2")
    info = parse_info(c.cmd("INFO", "cache").decode())
    assert info["cache_hits"] == "2" and info["cache_misses"] == "3"
    assert float(info["cache_encode_ratio"]) > 0
