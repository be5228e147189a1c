"""
Redis Cluster upstream (backend = redis+cluster://seeds): routing by key slot, multi-key commands across
slots, the whole-keyspace commands, reads from replicas, INFO and metrics. One 3 masters + 3 replicas
cluster serves the module (cluster_support.cluster); resharding, failover and a killed master are in
test_cluster_faults.py.
"""
import pytest

from cluster_support import cluster, fresh_cluster, key_slot, tagged_key  # noqa: F401  (the fixtures)
from helpers import Err, parse_info, wait_until
from test_codec_support import ZSTD_MAGIC

pytestmark = pytest.mark.needs_cachetoryd

CROSSSLOT = Err("CROSSSLOT Keys in request don't hash to the same slot")


def proxy(start_daemon, cl, serializer="null://", **opts):
    return start_daemon(backend=cl.seed_url(), serializer=serializer, **opts)


def spread_keys(n, prefix="k"):
    """n keys whose slots are all different (so they spread over every master)."""
    keys, slots = [], set()
    i = 0
    while len(keys) < n:
        k = "%s%d" % (prefix, i)
        i += 1
        if key_slot(k) not in slots:
            slots.add(key_slot(k))
            keys.append(k)
    return keys


def stored(cl, key):
    """The bytes a key holds, read on the master of its slot directly (None if absent there)."""
    return cl.client(cl.node_for_key(key)).get(key)


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_keys_land_on_the_node_of_their_slot(start_daemon, cluster, serializer):
    cluster.flushall()
    d = proxy(start_daemon, cluster, serializer)
    c = d.conn()
    keys = spread_keys(60)
    for k in keys:
        assert c.cmd("SET", k, "value of " + k) == "OK"
    nodes = set()
    for k in keys:
        raw = stored(cluster, k)
        assert raw is not None, "%s is not on %r, the master of slot %d" % (k, cluster.node_for_key(k), key_slot(k))
        if serializer == "null://":
            assert raw == ("value of " + k).encode()
        else:
            assert raw.startswith(ZSTD_MAGIC), "%s stored as %r" % (k, raw[:8])
        nodes.add(cluster.node_for_key(k).port)
    assert len(nodes) == 3, "60 keys of distinct slots should reach all 3 masters"
    for k in keys:
        assert c.cmd("GET", k) == ("value of " + k).encode()
    # read-modify-write on encoded values, on the key's node
    assert c.cmd("APPEND", keys[0], "!") == len("value of " + keys[0]) + 1
    assert c.cmd("INCR", "counter") == 1 and c.cmd("INCRBY", "counter", 41) == 42
    assert c.cmd("GETSET", keys[1], "new") == ("value of " + keys[1]).encode()
    assert c.cmd("GET", keys[1]) == b"new"
    assert c.cmd("EXPIRE", keys[2], 100) == 1 and 0 < c.cmd("TTL", keys[2]) <= 100
    assert c.cmd("TYPE", keys[3]) == "string"


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_multi_key_commands_across_slots(start_daemon, cluster, serializer):
    cluster.flushall()
    d = proxy(start_daemon, cluster, serializer)
    c = d.conn()
    keys = spread_keys(40, "m")
    for k in keys[::2]:
        c.cmd("SET", k, k.upper())
    # MGET: in the client's order, missing keys as nil, whatever node each key is on
    want = [k.upper().encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
    assert c.cmd("MGET", *keys) == want
    assert c.cmd("MGET", *reversed(keys)) == list(reversed(want))
    assert c.cmd("EXISTS", *keys) == 20
    assert c.cmd("EXISTS", keys[0], keys[0], keys[2], keys[1]) == 3        # repeats count again
    assert c.cmd("TOUCH", *keys[:10]) == 5
    assert c.cmd("DEL", *keys[:10]) == 5
    assert c.cmd("UNLINK", *keys[10:20]) == 5
    assert c.cmd("EXISTS", *keys) == 10
    # MSET / MSETNX: one slot fine, several CROSSSLOT (nothing written)
    assert c.cmd("MSET", "a", "1", "b", "2") == CROSSSLOT
    assert c.cmd("MSETNX", "a", "1", "b", "2") == CROSSSLOT
    assert c.cmd("EXISTS", "a", "b") == 0
    t1, t2 = "{user7}.name", "{user7}.mail"
    assert key_slot(t1) == key_slot(t2)
    assert c.cmd("MSET", t1, "ann", t2, "ann@example.com") == "OK"
    assert c.cmd("MSETNX", t1, "x", "{user7}.other", "y") == 0
    assert c.cmd("MGET", t1, t2) == [b"ann", b"ann@example.com"]
    assert stored(cluster, t1) is not None and stored(cluster, t2) is not None
    assert c.cmd("RENAME", t1, "{user7}.renamed") == "OK"
    assert c.cmd("RENAME", t2, "elsewhere-" + t2.strip("{}")) == CROSSSLOT


def test_split_mset_when_asked(start_daemon, cluster):
    cluster.flushall()
    d = proxy(start_daemon, cluster, "zstd://", cluster_cross_slot_writes="split")
    c = d.conn()
    keys = spread_keys(12, "s")
    args = []
    for k in keys:
        args += [k, "v-" + k]
    assert c.cmd("MSET", *args) == "OK"
    assert c.cmd("MGET", *keys) == [("v-" + k).encode() for k in keys]
    assert all(stored(cluster, k) is not None for k in keys)
    assert c.cmd("MSETNX", keys[0], "x", keys[1], "y") == CROSSSLOT     # its all-or-nothing cannot hold


def test_transactions_in_one_slot_and_across(start_daemon, cluster):
    cluster.flushall()
    d = proxy(start_daemon, cluster, "zstd://")
    c = d.conn()
    a, b = tagged_key(100, "a"), tagged_key(100, "b")
    assert c.pipeline([("MULTI",), ("SET", a, "1"), ("INCR", a), ("APPEND", b, "xy"), ("EXEC",)]) == \
        ["OK", "QUEUED", "QUEUED", "QUEUED", ["OK", 2, 2]]
    assert c.cmd("MGET", a, b) == [b"2", b"xy"]
    other = tagged_key(9000, "c")
    r = c.pipeline([("MULTI",), ("SET", a, "1"), ("SET", other, "2"), ("EXEC",)])
    assert r[:3] == ["OK", "QUEUED", "QUEUED"] and r[3] == CROSSSLOT, r
    assert c.cmd("GET", a) == b"2" and c.cmd("GET", other) is None     # nothing of it ran


def test_whole_keyspace_commands(start_daemon, cluster):
    cluster.flushall()
    d = proxy(start_daemon, cluster, "zstd://")
    c = d.conn()
    keys = spread_keys(150, "w")
    for k in keys:
        c.cmd("SET", k, "1")
    assert c.cmd("DBSIZE") == 150 == sum(cluster.dbsize().values())
    assert sorted(x.decode() for x in c.cmd("KEYS", "*")) == sorted(keys)
    assert sorted(x.decode() for x in c.cmd("KEYS", "w1*")) == sorted(k for k in keys if k.startswith("w1"))
    # SCAN: every key exactly once, across the masters
    seen, cursor, rounds = [], b"0", 0
    while True:
        cursor, batch = c.cmd("SCAN", cursor, "COUNT", "20")
        seen += [x.decode() for x in batch]
        rounds += 1
        assert rounds < 1000
        if cursor == b"0":
            break
    assert sorted(seen) == sorted(keys), "SCAN missed or repeated keys"
    assert rounds > 3
    assert c.cmd("RANDOMKEY").decode() in keys
    assert parse_info(c.cmd("INFO", "keyspace"))["db0"].startswith("keys=150,")
    assert c.cmd("SELECT", "1") == Err("ERR SELECT is not allowed in cluster mode")
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("FLUSHDB") == "OK"
    assert c.cmd("DBSIZE") == 0 and sum(cluster.dbsize().values()) == 0
    assert c.cmd("RANDOMKEY") is None


def test_reads_from_replicas(start_daemon, cluster):
    cluster.flushall()
    d = proxy(start_daemon, cluster, "null://", read_from="replica")
    c = d.conn()
    keys = spread_keys(30, "r")
    for k in keys:
        assert c.cmd("SET", k, k) == "OK"
    cluster.sync_replicas()
    before = {r.port: int(parse_info(r.cmd("INFO", "commandstats")).get("cmdstat_get", "calls=0").split(",")[0][6:])
              for r in cluster.replicas()}
    for k in keys:
        assert c.cmd("GET", k) == k.encode()
    after = {r.port: int(parse_info(r.cmd("INFO", "commandstats")).get("cmdstat_get", "calls=0").split(",")[0][6:])
             for r in cluster.replicas()}
    assert sum(after.values()) - sum(before.values()) >= len(keys), "the GETs did not reach the replicas"
    info = c.cmd("INFO", "upstream").decode()
    assert info.count("role=replica") == 3 and info.count("role=master") == 3


def test_info_and_metrics_list_the_nodes(start_daemon, cluster):
    import urllib.request
    import conftest
    cluster.flushall()
    mport = conftest.free_port()
    d = proxy(start_daemon, cluster, "null://", metrics_port=mport)
    c = d.conn()
    for k in spread_keys(20, "i"):
        c.cmd("SET", k, "1")
    page = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    for m in cluster.masters():
        assert 'cachetoryd_upstream_node_connections_ready{node="%s",role="master"}' % m.name in page
        assert 'cachetoryd_upstream_node_errors_total{node="%s",role="master"} 0' % m.name in page
    assert "cachetoryd_upstream_redirects_total 0" in page
    info = parse_info(c.cmd("INFO", "upstream"))
    assert info["upstream_cluster"] == "yes"
    assert info["upstream_cluster_slots_known"] == "16384"
    nodes = [v for k, v in info.items() if k.startswith("upstream_node")]
    masters = {m.name for m in cluster.masters()}
    listed = {dict(f.split("=", 1) for f in v.split(","))["addr"] for v in nodes if "role=master" in v}
    assert listed == masters
    total = sum(int(dict(f.split("=", 1) for f in v.split(","))["slots"]) for v in nodes)
    assert total == 16384


def test_bad_cluster_urls(start_daemon):
    import conftest
    with pytest.raises(conftest.DaemonError) as e:
        start_daemon(backend="redis+cluster://127.0.0.1:1/3")
    assert "database 0 only" in str(e.value)
    with pytest.raises(conftest.DaemonError) as e:
        start_daemon(backend="redis+cluster://127.0.0.1:1,127.0.0.1:notaport")
    assert "not host:port" in str(e.value)


def test_ask_during_a_slot_migration_is_followed(start_daemon, fresh_cluster_small):
    cl = fresh_cluster_small
    d = proxy(start_daemon, cl, "zstd://")
    c = d.conn()
    slot = 1234
    keys = [tagged_key(slot, "k%d" % i) for i in range(10)]
    for k in keys:
        assert c.cmd("SET", k, k) == "OK"
    src = cl.node_for_slot(slot)
    dst = [m for m in cl.masters() if m.port != src.port][0]
    cl.begin_migration(slot, dst)
    cl.migrate_keys(slot, src, dst, keys=keys[:5])         # half moved: the source answers ASK for them
    for k in keys:
        assert c.cmd("GET", k) == k.encode(), "GET %s during the migration" % k
    assert c.cmd("SET", keys[0], "changed") == "OK"
    cl.migrate_keys(slot, src, dst)
    cl.finish_migration(slot, dst)
    assert c.cmd("GET", keys[0]) == b"changed"
    assert wait_until(lambda: c.cmd("GET", keys[9]) == keys[9].encode(), 5)
    info = parse_info(c.cmd("INFO", "upstream"))
    assert int(info["upstream_redirects"]) >= 5
    src_line = [v for k, v in info.items() if k.startswith("upstream_node") and "addr=%s," % src.name in v][0]
    assert int(dict(f.split("=", 1) for f in src_line.split(","))["redirects"]) >= 5


@pytest.fixture
def fresh_cluster_small(fresh_cluster):
    """3 masters without replicas: quicker to make, for tests that change the slot map."""
    return fresh_cluster(replicas_per_master=0)


def test_rediss_cluster(start_daemon, request):
    from cluster_support import Cluster
    import tls_support
    cl = Cluster(masters=3, replicas_per_master=0, tls=tls_support.make_pki())
    request.addfinalizer(cl.stop)
    d = start_daemon(backend=cl.seed_url("rediss+cluster", query="ssl_ca_certs=%s" % cl.pki.certs["ca"].crt),
                     serializer="zstd://")
    c = d.conn()
    keys = spread_keys(20, "t")
    for k in keys:
        assert c.cmd("SET", k, k) == "OK"
    assert c.cmd("MGET", *keys) == [k.encode() for k in keys]
    info = parse_info(c.cmd("INFO", "upstream"))
    assert info["upstream_tls"] == "yes" and info["upstream_cluster_slots_known"] == "16384"
    assert all(cl.client(cl.node_for_key(k)).get(k).startswith(ZSTD_MAGIC) for k in keys)
