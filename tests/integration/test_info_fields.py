"""INFO: the sections and fields monitoring tools read (redis_exporter, Datadog's redisdb check), with
Redis's names, units and value types, compared with a real redis-server; values that are true (rates
sampled as Redis samples them, keyspace counters counted or taken from the upstream); INFO all /
everything / several sections at once as Redis 7 answers them."""
import time

import pytest

from helpers import encode_command, parse_info
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

# What redis_exporter and Datadog's redisdb check read from INFO, and what type Redis gives each.
INT_FIELDS = [
    "uptime_in_seconds", "uptime_in_days", "process_id", "tcp_port", "connected_clients", "blocked_clients",
    "tracking_clients", "maxclients", "used_memory", "used_memory_rss", "used_memory_peak", "maxmemory",
    "mem_fragmentation_bytes", "loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress",
    "rdb_last_save_time", "aof_enabled", "aof_rewrite_in_progress", "total_connections_received",
    "total_commands_processed", "instantaneous_ops_per_sec", "total_net_input_bytes", "total_net_output_bytes",
    "rejected_connections", "expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses",
    "connected_slaves", "master_repl_offset", "repl_backlog_active", "repl_backlog_histlen", "cluster_enabled",
]
FLOAT_FIELDS = [
    "mem_fragmentation_ratio", "instantaneous_input_kbps", "instantaneous_output_kbps", "used_cpu_sys",
    "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children",
]
TEXT_FIELDS = ["redis_version", "redis_mode", "os", "run_id", "role", "maxmemory_policy", "rdb_last_bgsave_status"]


def _info(d, *sections):
    with d.conn() as c:
        r = c.cmd("INFO", *sections)
    assert isinstance(r, bytes), "INFO replied %r" % (r,)
    return r.decode()


def _headers(text):
    return [line[2:] for line in text.split("\r\n") if line.startswith("# ")]


def _check_types(info, where):
    for f in INT_FIELDS:
        assert f in info, "%s: INFO has no %s" % (where, f)
        int(info[f])
    for f in FLOAT_FIELDS:
        assert f in info, "%s: INFO has no %s" % (where, f)
        float(info[f])
    for f in TEXT_FIELDS:
        assert info.get(f), "%s: INFO has no %s" % (where, f)


@pytest.mark.parametrize("mode", ["memory", "proxy"])
def test_monitoring_fields_as_redis(start_daemon, reference_redis, upstreams, mode):
    ref = parse_info(_info(reference_redis, "everything"))
    _check_types(ref, "redis-server")           # the list itself is Redis's
    d = start_daemon() if mode == "memory" else proxy(start_daemon, upstreams(), "zstd://")
    info = parse_info(_info(d))
    _check_types(info, mode)
    assert info["role"] == "master" and info["redis_mode"] == "standalone" and info["cluster_enabled"] == "0"
    assert len(info["run_id"]) == 40 and int(info["run_id"], 16) >= 0
    assert info["run_id"] == parse_info(_info(d, "server"))["run_id"], "run_id changes between calls"
    assert int(info["uptime_in_days"]) == int(info["uptime_in_seconds"]) // 86400
    # memory: the ratio is the resident bytes over what the allocator handed out, as Redis computes it
    rss, heap = int(info["used_memory_rss"]), int(info["allocator_allocated"])
    assert rss > 0 and heap > 0
    assert abs(float(info["mem_fragmentation_ratio"]) - rss / heap) < 0.02 * (rss / heap) + 0.01
    assert int(info["used_memory_peak"]) >= int(info["used_memory"])


def test_cpu_fields_count_the_work_done(start_daemon):
    d = start_daemon()
    before = parse_info(_info(d, "cpu"))
    c = d.conn()
    value = b"x" * 2000
    for _ in range(20):
        c.send(b"".join(encode_command("SET", "k%d" % i, value) for i in range(500)))
        for _ in range(500):
            assert c.read_reply() == "OK"
    after = parse_info(_info(d, "cpu"))
    spent = sum(float(after[f]) - float(before[f]) for f in ("used_cpu_sys", "used_cpu_user"))
    assert spent > 0, (before, after)
    assert float(after["used_cpu_user_main_thread"]) <= float(after["used_cpu_user"]) + 1e-6


def test_sections_selected_as_redis_7(start_daemon, reference_redis):
    d = start_daemon()
    for args in [("server", "clients"), ("CLIENTS", "Server"), ("stats",), ("cpu", "replication"),
                 ("commandstats",), ("nosuch",), ("persistence", "cluster")]:
        ours, theirs = _headers(_info(d, *args)), _headers(_info(reference_redis, *args))
        assert ours == theirs, "INFO %s: %r, redis-server %r" % (" ".join(args), ours, theirs)
    default = _headers(_info(d))
    for name in ("all", "everything"):
        got = _headers(_info(d, name))
        assert "Commandstats" in got and "Latencystats" in got, (name, got)
        assert set(default) < set(got), (name, default, got)
    assert "Commandstats" not in default and "Latencystats" not in default
    assert _headers(_info(d, "default")) == default
    # the order of Redis 7's own sections is Redis's
    redis_order = _headers(_info(reference_redis))
    assert [h for h in default if h in redis_order] == [h for h in redis_order if h in default]


def test_instantaneous_ops_per_sec_follows_the_load(start_daemon):
    """Redis averages 16 samples of 100 ms: after 1.6 s of steady load the figure is that load's rate,
    and after 1.6 s of quiet it falls back to about 0."""
    d = start_daemon()
    c = d.conn()
    batch = b"".join(encode_command("PING") for _ in range(200))
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 2.0:
        c.send(batch)
        for _ in range(200):
            c.read_reply()
        sent += 200
        time.sleep(0.01)
    rate = sent / (time.monotonic() - t0)
    info = parse_info(c.cmd("INFO", "stats"))
    ops = int(info["instantaneous_ops_per_sec"])
    assert 0.5 * rate <= ops <= 1.5 * rate, "instantaneous_ops_per_sec %d, measured %.0f/s" % (ops, rate)
    assert float(info["instantaneous_input_kbps"]) > 0 and float(info["instantaneous_output_kbps"]) > 0
    time.sleep(1.8)
    info = parse_info(c.cmd("INFO", "stats"))
    assert int(info["instantaneous_ops_per_sec"]) <= 2, info["instantaneous_ops_per_sec"]
    assert float(info["instantaneous_input_kbps"]) < 0.5


KEYSPACE_READS = [
    ("SET", "k", "v"), ("GET", "k"), ("GET", "nokey"), ("MGET", "k", "nokey", "k"), ("STRLEN", "k"),
    ("GETRANGE", "nokey", "0", "1"),
]
# Redis counts these lookups too; the memory store does not yet.
KEYSPACE_READS_NOTOUCH = [("EXISTS", "k", "nokey"), ("TTL", "nokey"), ("TYPE", "k")]


def _counters(d):
    info = parse_info(_info(d, "stats"))
    return {f: int(info[f]) for f in ("keyspace_hits", "keyspace_misses", "expired_keys", "evicted_keys")}


def _keyspace_counters_compared(start_daemon, reference_redis, reads):
    d = start_daemon()
    for target in (d, reference_redis):
        with target.conn() as c:
            for cmd in reads:
                c.cmd(*cmd)
            assert c.cmd("SET", "short", "v", "PX", "1") == "OK"
            time.sleep(0.02)
            assert c.cmd("GET", "short") is None
    assert _counters(d) == _counters(reference_redis)


def test_keyspace_counters_memory_mode_as_redis(start_daemon, reference_redis):
    _keyspace_counters_compared(start_daemon, reference_redis, KEYSPACE_READS)


def test_keyspace_counters_of_exists_ttl_type(start_daemon, reference_redis):
    _keyspace_counters_compared(start_daemon, reference_redis, KEYSPACE_READS + KEYSPACE_READS_NOTOUCH)


def test_keyspace_counters_proxy_mode_are_the_upstreams(start_daemon, upstreams):
    """Proxy mode: cachetoryd holds no keys; the keyspace counters are the upstream's own (and its
    reads through the proxy are cache_hits / cache_misses)."""
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    with d.conn() as c:
        assert c.cmd("SET", "k", "v") == "OK" and c.cmd("GET", "k") == b"v" and c.cmd("GET", "nokey") is None
        assert c.cmd("SET", "short", "v", "PX", "1") == "OK"
        time.sleep(0.02)
        assert c.cmd("GET", "short") is None
    ours = _counters(d)
    theirs = {f: int(v) for f, v in up.client().info("stats").items() if f in ours}
    assert ours == theirs
    assert ours["keyspace_hits"] >= 1 and ours["keyspace_misses"] >= 2 and ours["expired_keys"] >= 1
    info = parse_info(_info(d))
    assert int(info["cache_hits"]) == 1 and int(info["cache_misses"]) == 2
    assert info["maxmemory"] == "0" and info["maxmemory_policy"] == "noeviction"
    # the upstream's keyspace still closes the default INFO
    assert _headers(_info(d))[-1] == "Keyspace" and "db0" in info
