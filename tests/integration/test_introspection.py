"""Introspection tells the truth: COMMAND lists what a client can run here (the forwarded commands too in
proxy mode, only what is served in memory mode), CLUSTER answers as a Redis with cluster support disabled,
and the client-side caching subcommands of CLIENT answer as Redis does for a connection that is not
tracking, or say clearly what cachetoryd does not support. Compared with a real redis-server where Redis
defines the answer."""
import pytest

from helpers import Err
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


def _daemon(start_daemon, upstreams, mode, serializer="zstd://"):
    if mode == "memory":
        return start_daemon(serializer=serializer)
    return proxy(start_daemon, upstreams(), serializer, passthrough="yes" if mode == "proxy" else "no")


def _names(c):
    """COMMAND LIST's commands (it lists their subcommands too, "client|list", as Redis 7 does)."""
    listed = c.cmd("COMMAND", "LIST")
    return {n.decode() for n in listed if b"|" not in n}


@pytest.mark.parametrize("mode", ["memory", "proxy", "proxy-no-passthrough"])
def test_command_count_list_and_info_agree(start_daemon, upstreams, mode):
    d = _daemon(start_daemon, upstreams, mode)
    c = d.conn()
    names = _names(c)
    infos = c.cmd("COMMAND")
    assert c.cmd("COMMAND", "COUNT") == len(names) == len(infos) == len(c.cmd("COMMAND", "INFO"))
    assert {e[0].decode() for e in infos} == names
    assert len(c.cmd("COMMAND", "DOCS")) == 2 * len(names)
    assert {"get", "set", "info", "command", "client", "cluster"} <= names
    forwarded = {"hset", "lpush", "zadd", "sadd", "xadd", "object"}
    if mode == "proxy":
        assert forwarded <= names, forwarded - names
        assert c.cmd("HSET", "h", "f", "v") == 1          # and it runs
    else:
        assert not (forwarded & names), forwarded & names
        assert c.cmd("COMMAND", "INFO", "hset") == [None]
        assert isinstance(c.cmd("HSET", "h", "f", "v"), Err)
    # never listed: refused by class (session, admin), or string values the codec owns but not implemented
    assert not ({"shutdown", "acl", "debug", "setrange_nope"} & names)
    # blocking and pub/sub: on dedicated upstream connections, with passthrough
    assert ({"subscribe", "blpop"} <= names) == (mode == "proxy"), mode
    # WATCH / UNWATCH: run over memory://, and on a dedicated upstream connection in front of Redis
    assert {"watch", "unwatch"} <= names, mode


def test_every_listed_command_is_known_to_command_info(start_daemon, upstreams):
    d = _daemon(start_daemon, upstreams, "proxy")
    c = d.conn()
    names = sorted(_names(c))
    infos = c.cmd("COMMAND", "INFO", *names)
    assert [e[0].decode() for e in infos] == names
    docs = c.cmd("COMMAND", "DOCS", *names)
    assert len(docs) == 2 * len(names)


def test_scripts_listed_only_where_they_run(start_daemon, upstreams):
    """EVAL is forwarded with serializer null:// (Redis sees the clients' values), refused with zstd://:
    COMMAND says the same as running it."""
    up = upstreams()
    plain = proxy(start_daemon, up, "null://", passthrough="yes").conn()
    coded = proxy(start_daemon, up, "zstd://", passthrough="yes").conn()
    assert "eval" in _names(plain) and plain.cmd("EVAL", "return 1", "0") == 1
    assert "eval" not in _names(coded) and isinstance(coded.cmd("EVAL", "return 1", "0"), Err)


@pytest.mark.parametrize("name", ["hset", "lpush", "zrangebyscore", "xadd", "pfadd", "expire", "object"])
def test_command_info_of_a_forwarded_command_as_redis(start_daemon, upstreams, reference_redis, name):
    d = _daemon(start_daemon, upstreams, "proxy")
    c, r = d.conn(), reference_redis.conn()
    ours, theirs = c.cmd("COMMAND", "INFO", name)[0], r.cmd("COMMAND", "INFO", name)[0]
    if ours[0].decode() != name:        # expire is cachetoryd's own: the table's row
        pytest.fail("COMMAND INFO %s: %r" % (name, ours))
    assert len(ours) == len(theirs) == 10
    assert ours[:2] == theirs[:2] and ours[3:6] == theirs[3:6], (ours, theirs)
    assert set(ours[6]) == set(theirs[6]), (ours[6], theirs[6])
    if name != "expire":
        assert set(ours[2]) == set(theirs[2]), (ours[2], theirs[2])
        assert sorted(s[0] for s in ours[9]) == sorted(s[0] for s in theirs[9])
        docs, rdocs = c.cmd("COMMAND", "DOCS", name), r.cmd("COMMAND", "DOCS", name)
        assert docs[0] == rdocs[0] and docs[1][:2] == [b"group", dict(zip(rdocs[1][::2], rdocs[1][1::2]))[b"group"]]
    # RESP3: flags and categories are sets, as Redis sends them
    c.cmd("HELLO", "3")
    r.cmd("HELLO", "3")
    ours, theirs = c.cmd("COMMAND", "INFO", name)[0], r.cmd("COMMAND", "INFO", name)[0]
    assert type(ours[2]) is type(theirs[2]) and type(ours[6]) is type(theirs[6])


CLUSTER_CMDS = [
    ("CLUSTER", "INFO"), ("CLUSTER", "SLOTS"), ("CLUSTER", "SHARDS"), ("CLUSTER", "NODES"), ("CLUSTER", "MYID"),
    ("CLUSTER", "KEYSLOT", "k"), ("CLUSTER", "HELP"), ("cluster", "info"), ("CLUSTER", "NOPE"),
    ("CLUSTER", "INFO", "extra"), ("CLUSTER", "KEYSLOT"), ("CLUSTER",),
]


@pytest.mark.parametrize("mode", ["memory", "proxy", "proxy-no-passthrough"])
def test_cluster_commands_as_a_redis_without_cluster(start_daemon, upstreams, reference_redis, mode):
    d = _daemon(start_daemon, upstreams, mode)
    c, r = d.conn(), reference_redis.conn()
    for cmd in CLUSTER_CMDS:
        ours, theirs = c.cmd(*cmd), r.cmd(*cmd)
        assert ours == theirs, "%r: %r, redis-server %r" % (cmd, ours, theirs)
    assert c.cmd("CLUSTER", "INFO") == Err("ERR This instance has cluster support disabled")
    # inside MULTI it queues and fails at EXEC, as on Redis
    for conn in (c, r):
        assert conn.cmd("MULTI") == "OK" and conn.cmd("CLUSTER", "INFO") == "QUEUED"
    assert c.cmd("EXEC") == r.cmd("EXEC")


CLIENT_AS_REDIS = [
    ("CLIENT", "TRACKING", "off"), ("CLIENT", "TRACKING", "maybe"), ("CLIENT", "TRACKING"),
    ("CLIENT", "CACHING", "yes"), ("CLIENT", "CACHING", "no"), ("CLIENT", "CACHING"),
    ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "off"), ("CLIENT", "NO-EVICT", "maybe"),
    ("CLIENT", "NO-EVICT"), ("CLIENT", "GETREDIR"), ("CLIENT", "TRACKINGINFO"),
]


@pytest.mark.parametrize("mode", ["memory", "proxy"])
@pytest.mark.parametrize("proto", [2, 3])
def test_client_caching_subcommands(start_daemon, upstreams, reference_redis, mode, proto):
    d = _daemon(start_daemon, upstreams, mode)
    c, r = d.conn(), reference_redis.conn()
    if proto == 3:
        c.cmd("HELLO", "3")
        r.cmd("HELLO", "3")
    for cmd in CLIENT_AS_REDIS:
        ours, theirs = c.cmd(*cmd), r.cmd(*cmd)
        assert ours == theirs, "%r: %r, redis-server %r" % (cmd, ours, theirs)
    # what cachetoryd cannot honour is refused, saying so; the connection stays a normal one
    r = c.cmd("CLIENT", "TRACKING", "on")
    assert isinstance(r, Err) and "CLIENT TRACKING ON is not supported by cachetoryd" in r, r
    r = c.cmd("CLIENT", "TRACKING", "ON", "BCAST")
    assert isinstance(r, Err) and "not supported by cachetoryd" in r, r
    r = c.cmd("CLIENT", "NO-TOUCH", "on")
    assert isinstance(r, Err) and "CLIENT NO-TOUCH ON is not supported by cachetoryd" in r, r
    assert c.cmd("CLIENT", "NO-TOUCH", "off") == "OK"
    assert c.cmd("CLIENT", "NO-TOUCH", "maybe") == Err("ERR syntax error")
    assert c.cmd("SET", "k", "v") == "OK" and c.cmd("GET", "k") == b"v"
    info = c.cmd("INFO", "clients")
    assert "tracking_clients:0" in (info.decode() if isinstance(info, bytes) else info)


def test_command_list_filterby_as_redis(start_daemon, reference_redis):
    """COMMAND LIST lists subcommands too ("client|list"), as Redis 7; FILTERBY ACLCAT / PATTERN / MODULE
    filter it, and malformed forms are Redis's syntax error."""
    c, r = start_daemon().conn(), reference_redis.conn()
    names = set(x.decode() for x in c.cmd("COMMAND", "LIST"))
    assert {"client|list", "config|get", "config|set", "get"} <= names
    assert len(names) > c.cmd("COMMAND", "COUNT")
    for filt in (["ACLCAT", "transaction"], ["ACLCAT", "TRANSACTION"], ["MODULE", "x"], ["ACLCAT", "nosuchcat"]):
        assert sorted(c.cmd("COMMAND", "LIST", "FILTERBY", *filt)) == sorted(r.cmd("COMMAND", "LIST", "FILTERBY", *filt))
    ours = set(x.decode() for x in c.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG|*"))
    assert ours == {n for n in names if n.startswith("config|")} and "config|get" in ours
    for bad in (["LIST", "FILTERBY"], ["LIST", "FILTERBY", "ACLCAT"], ["LIST", "FILTERBY", "nope", "x"],
                ["LIST", "x", "y", "z"]):
        assert c.cmd("COMMAND", *bad) == r.cmd("COMMAND", *bad), bad
