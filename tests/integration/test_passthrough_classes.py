"""Passthrough by classification (issue 11): every Redis 7.0 command has a class (src/cmd/classes.c, generated
by scripts/gen-command-classes.py from COMMAND INFO / COMMAND DOCS) that says what cachetoryd does with it:
string-family values run through the codec; scripts and SORT patterns forwarded only when Redis would see
the clients' own bytes; connection, transaction, pub/sub and blocking commands never forwarded; other types
forwarded with passthrough = yes; server administration refused. RESET resets the client's own session and
never reaches the shared upstream (item 4: it reset the pooled connection, and the next client's SET
landed in db 0 instead of the URL's db 3)."""
import pytest

from helpers import Conn, Err
from upstream_support import ZSTD_MAGIC, libzstd_decompress, proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

PASSWORD = "s3cret-up"


def refused(r, name, why):
    return isinstance(r, Err) and str(r).startswith("ERR %s is refused by cachetoryd: %s" % (name, why))


def zproxy(start_daemon, up, serializer="zstd://", db=3, **opts):
    return proxy(start_daemon, up, serializer, db=db, passthrough="yes", upstream_pool_size=1, **opts)


def test_value_family_is_all_implemented(start_daemon, reference_redis):
    """Every @string / @bitmap command of Redis 7.0 is cachetoryd's own: none is unknown, refused or
    forwarded (memory backend: a forwarded one would answer 'unknown command')."""
    ref = reference_redis.conn()
    info = ref.cmd("COMMAND", "INFO")
    cats = lambda e: [x.decode() if isinstance(x, bytes) else x for x in e[6]]  # noqa: E731
    names = sorted(e[0].decode() for e in info if "@string" in cats(e) or "@bitmap" in cats(e))
    assert "setbit" in names and "lcs" in names and len(names) == 29, names
    d = start_daemon(serializer="zstd://")
    c = d.conn()
    for name in names:
        r = c.cmd(name.upper())            # no arguments: the arity error names the command as redis does
        assert r == ref.cmd(name.upper()), "%s: %r" % (name, r)
        assert c.cmd("COMMAND", "INFO", name)[0] is not None, "%s missing from COMMAND INFO" % name


def test_other_types_forwarded_as_they_are(start_daemon, reference_redis, upstreams):
    up = upstreams(password=PASSWORD)
    d = zproxy(start_daemon, up)
    ours, ref = d.conn(), reference_redis.conn()
    for cmd in [["HSET", "h", "f", "v"], ["HGET", "h", "f"], ["LPUSH", "l", "b", "a"], ["LRANGE", "l", "0", "-1"],
                ["SADD", "s", "x"], ["ZADD", "z", "1", "m"], ["XADD", "x", "1-1", "f", "v"], ["XLEN", "x"],
                ["XREAD", "COUNT", "1", "STREAMS", "x", "0"], ["PFADD", "hll", "a"], ["PFCOUNT", "hll"],
                ["GEOADD", "g", "13.361389", "38.115556", "p"], ["OBJECT", "ENCODING", "l"], ["XINFO", "HELP"][:1],
                ["SORT", "l", "ALPHA"], ["SORT", "l", "BY", "nosort"], ["SORT", "l", "ALPHA", "GET", "#"],
                ["SORT", "l", "ALPHA", "BY", "h*->f"], ["COPY", "h", "h2"], ["HGET", "h2", "f"],
                ["MEMORY", "USAGE", "nokey"], ["PUBLISH", "chan", "m"], ["PUBSUB", "NUMSUB", "chan"],
                ["OBJECT", "FOO"], ["XINFO", "FOO"], ["HSET", "h"]]:
        a, b = ref.cmd(*cmd), ours.cmd(*cmd)
        assert b == a, "%r: redis %r, cachetoryd %r" % (cmd, a, b)
    # forwarded verbatim into the URL's database
    assert up.client(3).hget("h", "f") == b"v"
    # DUMP / RESTORE move the stored bytes as they are: a string round-trips through them
    assert ours.cmd("SET", "sv", "hello" * 20) == "OK"
    dump = ours.cmd("DUMP", "sv")
    assert isinstance(dump, bytes)
    assert ours.cmd("RESTORE", "sv2", "0", dump) == "OK"
    assert ours.cmd("GET", "sv2") == b"hello" * 20
    assert libzstd_decompress(up.client(3).get("sv2")) == b"hello" * 20


def test_scripts_refused_with_an_encoding_serializer(start_daemon, upstreams):
    up = upstreams()
    d = zproxy(start_daemon, up, db=0)
    c = d.conn()
    why = "it reads string values inside Redis, where serializer zstd:// stores them encoded"
    for cmd, name in [(["EVAL", "return 1", "0"], "EVAL"), (["EVALSHA", "a" * 40, "0"], "EVALSHA"),
                      (["EVAL_RO", "return 1", "0"], "EVAL_RO"), (["EVALSHA_RO", "a" * 40, "0"], "EVALSHA_RO"),
                      (["FCALL", "f", "0"], "FCALL"), (["FCALL_RO", "f", "0"], "FCALL_RO"),
                      (["SCRIPT", "LOAD", "return 1"], "SCRIPT LOAD"), (["FUNCTION", "LIST"], "FUNCTION LIST")]:
        r = c.cmd(*cmd)
        assert refused(r, name, why), "%r: %r" % (cmd, r)
        assert "passthrough-scripts stored-bytes" in r
    assert c.cmd("RPUSH", "l", "1", "2") == 2
    for cmd in [["SORT", "l", "BY", "w_*"], ["SORT", "l", "GET", "v_*"], ["SORT_RO", "l", "BY", "x", "GET", "o*"]]:
        r = c.cmd(*cmd)
        assert refused(r, cmd[0] + " with a BY or GET pattern", why), "%r: %r" % (cmd, r)
    assert c.cmd("SORT", "l") == [b"1", b"2"]
    # nothing of them reached the upstream
    assert up.client(0).script_exists("e0e1f9fabfc9d4800c877a703b823ac0578ff8db") == [False]


@pytest.mark.parametrize("setting", ["null", "stored-bytes"])
def test_scripts_forwarded_when_allowed(start_daemon, upstreams, setting):
    up = upstreams()
    if setting == "null":
        d = zproxy(start_daemon, up, serializer="null://", db=0)
    else:
        d = zproxy(start_daemon, up, db=0, passthrough_scripts="stored-bytes")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    r = c.cmd("EVAL", "return redis.call('GET', KEYS[1])", "1", "k")
    assert r == (b"v" if setting == "null" else up.client(0).get("k")), r
    assert c.cmd("RPUSH", "l", "2", "1") == 2
    assert sorted(c.cmd("SORT", "l", "BY", "nosuch_*")) == [b"1", b"2"]


# WATCH / UNWATCH are served in both modes (test_watch.py; test_pinned.py: a dedicated upstream connection)
SESSION = [
    (["SUBSCRIBE", "c"], "SUBSCRIBE", "subscribing"), (["PSUBSCRIBE", "c*"], "PSUBSCRIBE", "subscribing"),
    (["SSUBSCRIBE", "c"], "SSUBSCRIBE", "subscribing"), (["UNSUBSCRIBE"], "UNSUBSCRIBE", "subscribing"),
    (["BLPOP", "l", "1"], "BLPOP", "blocking"), (["BZMPOP", "1", "1", "z", "MIN"], "BZMPOP", "blocking"),
    (["XREAD", "BLOCK", "10", "STREAMS", "x", "$"], "XREAD", "blocking"), (["WAIT", "0", "0"], "WAIT", "blocking"),
    (["CLIENT", "REPLY", "OFF"], "CLIENT REPLY", "it changes the state of the connection"),
    (["READONLY"], "READONLY", "cachetoryd talks to a single Redis"),
    (["READWRITE"], "READWRITE", "cachetoryd talks to a single Redis"),
    (["ASKING"], "ASKING", "cachetoryd talks to a single Redis"),
    (["MONITOR"], "MONITOR", "it takes the connection over"), (["PSYNC", "?", "-1"], "PSYNC", "it takes"),
]
ADMIN = [
    (["SHUTDOWN"], "SHUTDOWN"), (["SHUTDOWN", "NOSAVE"], "SHUTDOWN"), (["DEBUG", "SLEEP", "0"], "DEBUG"),
    (["REPLICAOF", "NO", "ONE"], "REPLICAOF"), (["SLAVEOF", "NO", "ONE"], "SLAVEOF"),
    (["ACL", "SETUSER", "x"], "ACL SETUSER"), (["ACL", "WHOAMI"], "ACL WHOAMI"), (["MODULE", "LIST"], "MODULE LIST"),
    (["SAVE"], "SAVE"), (["BGSAVE"], "BGSAVE"), (["BGREWRITEAOF"], "BGREWRITEAOF"), (["FAILOVER"], "FAILOVER"),
    (["SWAPDB", "0", "1"], "SWAPDB"), (["CLIENT", "PAUSE", "100"], "CLIENT PAUSE"),
    (["SCRIPT", "KILL"], "SCRIPT KILL"), (["FUNCTION", "KILL"], "FUNCTION KILL"), (["LATENCY", "RESET"], "LATENCY RESET"),
    (["MIGRATE", "h", "1", "k", "0", "10"], "MIGRATE"), (["MEMORY", "PURGE"], "MEMORY PURGE"),
]


@pytest.mark.parametrize("mode", ["memory", "upstream"])
def test_session_and_admin_commands_refused(start_daemon, upstreams, mode):
    up = None
    if mode == "memory":
        d = start_daemon(serializer="zstd://")
    else:
        up = upstreams(password=PASSWORD)
        d = zproxy(start_daemon, up)
    c = d.conn(timeout=5.0)
    for cmd, name, why in SESSION:
        if mode == "upstream" and why in ("blocking", "subscribing"):
            continue                    # on a dedicated connection of the client's own (test_pinned.py)
        r = c.cmd(*cmd)
        assert refused(r, name, why), "%r: %r" % (cmd, r)
    for cmd, name in ADMIN:
        r = c.cmd(*cmd)
        assert refused(r, name, ""), "%r: %r" % (cmd, r)
    # redis's own errors come first: arity, unknown subcommand, unknown command (7.0 has no WAITAOF)
    assert c.cmd("BLPOP", "l") == Err("ERR wrong number of arguments for 'blpop' command")
    assert c.cmd("CONFIG", "SET") == Err("ERR wrong number of arguments for 'config|set' command")
    # CONFIG SET is cachetoryd's own (test_config_set.py): a Redis-only parameter never reaches the upstream
    before = None
    if up is not None:
        with up.conn() as direct:
            before = direct.cmd("CONFIG", "GET", "hash-max-listpack-entries")[1]
    r = c.cmd("CONFIG", "SET", "hash-max-listpack-entries", "1")
    assert isinstance(r, Err) and "Unknown option or number of arguments for CONFIG SET" in r, r
    if up is not None:
        with up.conn() as direct:
            assert direct.cmd("CONFIG", "GET", "hash-max-listpack-entries")[1] == before != b"1"
    assert c.cmd("CLIENT", "NOPE") == Err("ERR unknown subcommand 'NOPE'. Try CLIENT HELP.")
    assert c.cmd("WAITAOF", "0", "0", "0") == Err("ERR unknown command 'WAITAOF', with args beginning with: '0' '0' '0' ")
    # the connection is still a normal one
    assert c.cmd("SET", "after", "v") == "OK" and c.cmd("GET", "after") == b"v"
    if up is not None:
        assert up.client(3).keys("*") == [b"after"], "a refused command reached the upstream"
        assert up.client(3).config_get("maxmemory") == {"maxmemory": "0"}


def test_reset_is_local_and_the_urls_db_stays(start_daemon, upstreams):
    """Issue 11 item 4: RESET with passthrough reset the shared upstream connection — its database and
    its authentication — and the next client's SET landed in db 0."""
    up = upstreams(password=PASSWORD)
    d = zproxy(start_daemon, up, requirepass="clientpw")
    a = d.conn()
    assert a.cmd("AUTH", "clientpw") == "OK"
    assert isinstance(a.cmd("HELLO", "3"), dict)
    assert a.cmd("SELECT", "5") == "OK"
    assert a.cmd("CLIENT", "SETNAME", "alice") == "OK"
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("SET", "queued", "x") == "QUEUED"
    assert a.cmd("RESET") == "RESET"
    # the session is a new connection's: no transaction, db 0, RESP2, no name, not authenticated
    assert a.cmd("EXEC") == Err("NOAUTH Authentication required.")
    assert a.cmd("AUTH", "clientpw") == "OK"
    assert a.cmd("EXEC") == Err("ERR EXEC without MULTI")
    assert a.cmd("CLIENT", "GETNAME") is None
    assert a.cmd("HGETALL", "nohash") == []            # RESP2 again (a map in RESP3)
    assert a.cmd("SET", "a-key", "1") == "OK"
    # another client, on the same single upstream connection
    b = d.conn()
    assert b.cmd("AUTH", "clientpw") == "OK"
    assert b.cmd("SET", "mykey", "v") == "OK"
    assert b.cmd("HSET", "h", "f", "v") == 1           # forwarded, on the same connection
    assert sorted(up.client(3).keys("*")) == [b"a-key", b"h", b"mykey"]
    assert up.client(0).keys("*") == [] and up.client(5).keys("*") == []
    assert up.client(3).get("queued") is None
    # RESET never reached Redis
    assert "cmdstat_reset" not in up.client(0).info("commandstats")


def test_reset_resp3_and_inside_multi(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert isinstance(c.cmd("HELLO", "3"), dict)
    assert c.cmd("SELECT", "2") == "OK"
    assert c.cmd("SET", "k", "2") == "OK"
    assert c.cmd("RESET") == "RESET"
    assert c.cmd("GET", "k") is None                   # db 0 again
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("RESET") == "RESET"                    # not queued
    assert c.cmd("PING") == "PONG"


def test_move_and_copy_to_a_database(start_daemon, upstreams):
    """Database numbers are the upstream's: MOVE and COPY ... DB take a key from the client's database
    (the URL's, 3) to the one named, stored bytes as they are, and it reads back decoded there."""
    up = upstreams(password=PASSWORD)
    d = zproxy(start_daemon, up)
    c = d.conn(timeout=5.0)
    assert c.cmd("SET", "k", "moved") == "OK" and c.cmd("SET", "a", "copied") == "OK"
    assert c.cmd("MOVE", "k", "1") == 1
    assert c.cmd("COPY", "a", "b", "DB", "0") == 1
    assert c.cmd("GET", "k") is None and c.cmd("GET", "a") == b"copied"
    assert sorted(up.client(3).keys("*")) == [b"a"]
    assert c.cmd("SELECT", "1") == "OK" and c.cmd("GET", "k") == b"moved"
    assert c.cmd("SELECT", "0") == "OK" and c.cmd("GET", "b") == b"copied"
    assert up.client(1).get("k")[:4] == ZSTD_MAGIC


def test_refusals_come_after_authentication(start_daemon, upstreams):
    """Before AUTH, a refused command gets NOAUTH as on Redis; unknown commands and wrong arities keep
    their own errors, which Redis gives first."""
    ref = upstreams(password="pw")
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes", requirepass="pw")
    cmds = [("CONFIG", "SET", "maxmemory", "1"), ("WATCH", "k"), ("SUBSCRIBE", "ch"), ("BLPOP", "l", "0"),
            ("HSET", "h", "f", "v"), ("EVAL", "return 1", "0"), ("BLPOP", "l"), ("WAITAOF", "0", "0", "0"),
            ("CLIENT", "TRACKING", "on"), ("SHUTDOWN",), ("GET", "k")]
    c = d.conn(auth=False)
    r = Conn(ref.addr)
    try:
        for cmd in cmds:
            assert c.cmd(*cmd) == r.cmd(*cmd), cmd
    finally:
        r.close()
    assert c.cmd("AUTH", "pw") == "OK"
    assert c.cmd("WATCH", "k") == "OK"             # on a dedicated upstream connection (test_pinned.py)
