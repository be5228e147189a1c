"""Server commands: COMMAND, INFO, CONFIG GET, DBSIZE, FLUSHDB, FLUSHALL, TIME; process lifecycle."""
import re
import subprocess
import time

from conftest import BIN, target_mode
from helpers import Err, parse_info, parse_keyspace_value


def test_command_count(c):
    n = c.cmd("COMMAND", "COUNT")
    assert isinstance(n, int) and n >= 40, n


def test_command_info(c):
    r = c.cmd("COMMAND", "INFO", "get", "set", "nosuchcommand")
    assert isinstance(r, list) and len(r) == 3
    get, set_, missing = r
    assert missing is None
    # name, arity, flags, first key, last key, step, ...
    assert get[0] == b"get" and get[1] == 2
    assert isinstance(get[2], list) and "readonly" in get[2]
    assert get[3:6] == [1, 1, 1]
    assert set_[0] == b"set" and set_[1] == -3
    assert "write" in set_[2]
    # COMMAND INFO without names lists every command (7.0)
    every = c.cmd("COMMAND", "INFO")
    assert isinstance(every, list) and len(every) == c.cmd("COMMAND", "COUNT")


def test_command_docs(c):
    r = c.cmd("COMMAND", "DOCS", "get")
    # RESP2: a flat array name, doc-map-as-array
    assert isinstance(r, list) and len(r) == 2 and r[0] == b"get"
    doc = r[1]
    assert isinstance(doc, list) and len(doc) % 2 == 0
    fields = {doc[i]: doc[i + 1] for i in range(0, len(doc), 2)}
    assert b"summary" in fields and isinstance(fields[b"summary"], bytes) and fields[b"summary"]
    assert c.cmd("COMMAND", "DOCS", "nosuchcommand") == []


def test_command_list_contains_basics(c):
    r = c.cmd("COMMAND")
    names = {e[0] for e in r}
    for name in (b"get", b"set", b"del", b"ping", b"multi", b"exec", b"hello", b"info", b"scan"):
        assert name in names


def test_info_sections(srv, c):
    text = c.cmd("INFO").decode()
    for section in ("# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"):
        assert section + "\r\n" in text
    info = parse_info(text)
    assert re.match(r"^7\.\d+\.\d+$", info["redis_version"]), info["redis_version"]
    assert int(info["tcp_port"]) == srv.port
    assert int(info["process_id"]) > 0
    assert int(info["uptime_in_seconds"]) >= 0
    assert int(info["connected_clients"]) >= 1
    # cachetoryd reports the bytes its keyspace accounts for (store.h), so an empty daemon may report 0
    # where redis reports its whole heap: only >= 0 is checked here
    assert int(info["used_memory"]) >= 0
    for f in ("expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses",
              "total_connections_received", "total_commands_processed"):
        assert int(info[f]) >= 0, f
    assert "maxmemory" in info and "maxmemory_policy" in info


def test_info_single_section(c):
    text = c.cmd("INFO", "server").decode()
    assert text.startswith("# Server\r\n")
    assert "# Clients" not in text and "# Keyspace" not in text
    text = c.cmd("INFO", "memory").decode()
    assert text.startswith("# Memory\r\n") and "used_memory:" in text
    text = c.cmd("info", "STATS").decode()
    assert text.startswith("# Stats\r\n") and "keyspace_hits:" in text


def test_info_keyspace(c):
    assert c.cmd("INFO", "keyspace") == b"# Keyspace\r\n"
    c.cmd("SET", "a", "1")
    c.cmd("SET", "b", "2", "EX", 1000)
    c.cmd("SELECT", 2)
    c.cmd("SET", "z", "3")
    info = parse_info(c.cmd("INFO", "keyspace"))
    assert set(info) == {"db0", "db2"}
    db0 = parse_keyspace_value(info["db0"])
    assert db0["keys"] == 2 and db0["expires"] == 1 and "avg_ttl" in db0
    assert re.match(r"^keys=2,expires=1,avg_ttl=\d+$", info["db0"])
    assert info["db2"] == "keys=1,expires=0,avg_ttl=0"


def test_info_hits_and_misses(srv, c):
    before = parse_info(c.cmd("INFO", "stats"))
    c.cmd("SET", "h", "v")
    c.cmd("GET", "h")
    c.cmd("GET", "h")
    c.cmd("GET", "nope")
    after = parse_info(c.cmd("INFO", "stats"))
    assert int(after["keyspace_hits"]) - int(before["keyspace_hits"]) == 2
    assert int(after["keyspace_misses"]) - int(before["keyspace_misses"]) == 1


def test_info_connected_clients(srv, c):
    base = int(parse_info(c.cmd("INFO", "clients"))["connected_clients"])
    extra = [srv.conn() for _ in range(3)]
    for e in extra:
        e.cmd("PING")
    assert int(parse_info(c.cmd("INFO", "clients"))["connected_clients"]) == base + 3


def test_config_get(c):
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    assert c.cmd("CONFIG", "GET", "no-such-option") == []
    r = c.cmd("CONFIG", "GET", "maxmemory*")
    fields = {r[i]: r[i + 1] for i in range(0, len(r), 2)}
    assert fields[b"maxmemory"] == b"0"
    assert b"maxmemory-policy" in fields
    assert c.cmd("CONFIG", "GET") == Err("ERR wrong number of arguments for 'config|get' command")


def test_config_get_configured_values(start_daemon):
    d = start_daemon(maxmemory="10mb", maxmemory_policy="allkeys-lru", maxclients=123)
    c = d.conn()
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
    assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"]
    assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"123"]
    assert c.cmd("CONFIG", "GET", "port") == [b"port", str(d.port).encode()]
    info = parse_info(c.cmd("INFO", "memory"))
    assert info["maxmemory"] == "10485760"
    assert info["maxmemory_policy"] == "allkeys-lru"


def test_dbsize(c):
    assert c.cmd("DBSIZE") == 0
    c.cmd("MSET", "a", 1, "b", 2, "c", 3)
    assert c.cmd("DBSIZE") == 3
    c.cmd("DEL", "a")
    assert c.cmd("DBSIZE") == 2
    c.cmd("SELECT", 1)
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("DBSIZE", "x") == Err("ERR wrong number of arguments for 'dbsize' command")


def test_flushdb_only_current(c):
    c.cmd("SET", "a", 1)
    c.cmd("SELECT", 1)
    c.cmd("SET", "b", 1)
    assert c.cmd("FLUSHDB") == "OK"
    assert c.cmd("DBSIZE") == 0
    c.cmd("SELECT", 0)
    assert c.cmd("DBSIZE") == 1
    assert c.cmd("FLUSHDB", "ASYNC") == "OK"
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("FLUSHDB", "SYNC") == "OK"
    assert c.cmd("FLUSHDB", "bogus") == Err("ERR syntax error")


def test_flushall(c):
    for mode in (None, "ASYNC", "SYNC", "async"):
        for db in (0, 7, 15):
            c.cmd("SELECT", db)
            c.cmd("SET", "k%d" % db, "v")
        r = c.cmd("FLUSHALL", mode) if mode else c.cmd("FLUSHALL")
        assert r == "OK"
        for db in (0, 7, 15):
            c.cmd("SELECT", db)
            assert c.cmd("DBSIZE") == 0
    assert c.cmd("FLUSHALL", "bogus") == Err("ERR syntax error")


def test_time(c):
    r = c.cmd("TIME")
    assert isinstance(r, list) and len(r) == 2
    secs, usecs = int(r[0]), int(r[1])
    assert abs(secs - time.time()) < 5
    assert 0 <= usecs < 1000000
    r2 = c.cmd("TIME")
    assert (int(r2[0]), int(r2[1])) >= (secs, usecs)


def test_sigterm_exits_cleanly(start_daemon):
    d = start_daemon()
    c = d.conn()
    c.cmd("SET", "a", "b")
    t0 = time.monotonic()
    status = d.stop()
    assert not d.killed, "did not exit within 5 s of SIGTERM"
    assert status == 0, "exit status %r after SIGTERM" % status
    assert time.monotonic() - t0 < 5


def test_bad_option_refuses_to_start(tmp_path):
    exe = "redis-server" if target_mode() else str(BIN)
    p = subprocess.run([exe, "--port", "notaport"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10, cwd=str(tmp_path))
    assert p.returncode != 0
    out = p.stdout.decode(errors="replace")
    assert "port" in out.lower(), out
