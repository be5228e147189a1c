"""Connection commands: PING, ECHO, QUIT, SELECT, CLIENT ..., unknown commands and wrong arity."""
import pytest

from conftest import target_mode
from helpers import Conn, Err, server_version, wait_until


def test_ping(c):
    assert c.cmd("PING") == "PONG"
    assert c.cmd("ping") == "PONG"
    assert c.cmd("PING", "hello world") == b"hello world"
    assert c.cmd("PING", "") == b""
    assert c.cmd("PING", "a", "b") == Err("ERR wrong number of arguments for 'ping' command")


def test_ping_raw_bytes(c):
    c.send(b"*1\r\n$4\r\nPING\r\n")
    assert c.read_exact_bytes(7) == b"+PONG\r\n"
    c.send(b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n")
    assert c.read_exact_bytes(8) == b"$2\r\nhi\r\n"


def test_echo(c):
    assert c.cmd("ECHO", "hello") == b"hello"
    assert c.cmd("ECHO", b"bin\x00\r\nary") == b"bin\x00\r\nary"
    assert c.cmd("ECHO") == Err("ERR wrong number of arguments for 'echo' command")
    assert c.cmd("ECHO", "a", "b") == Err("ERR wrong number of arguments for 'echo' command")


def test_quit_replies_ok_and_closes(c):
    c.send(b"*1\r\n$4\r\nQUIT\r\n")
    assert c.read_until_close(timeout=5) == b"+OK\r\n"


def test_quit_after_pipelined_commands(c):
    # replies to the commands before QUIT are all sent, nothing after it is executed
    c.send(b"SET q 1\r\nINCR q\r\nQUIT\r\nINCR q\r\n")
    assert c.read_until_close(timeout=5) == b"+OK\r\n:2\r\n+OK\r\n"


def test_select_range(srv, c):
    for db in range(16):
        assert c.cmd("SELECT", db) == "OK"
    assert c.cmd("SELECT", 16) == Err("ERR DB index is out of range")
    assert c.cmd("SELECT", -1) == Err("ERR DB index is out of range")
    assert c.cmd("SELECT", "abc") == Err("ERR value is not an integer or out of range")
    assert c.cmd("SELECT") == Err("ERR wrong number of arguments for 'select' command")


def test_select_index_beyond_int(c):
    # redis parses the index as an int: beyond 32 bits it is this range error, not "not an integer"
    msg = Err("ERR value is out of range, value must between -2147483648 and 2147483647")
    assert c.cmd("SELECT", 2147483648) == msg
    assert c.cmd("SELECT", -9223372036854775808) == msg
    assert c.cmd("SELECT", 2147483647) == Err("ERR DB index is out of range")


def test_select_isolates_databases(srv, c):
    assert c.cmd("SET", "k", "db0") == "OK"
    assert c.cmd("SELECT", 3) == "OK"
    assert c.cmd("GET", "k") is None
    assert c.cmd("SET", "k", "db3") == "OK"
    assert c.cmd("DBSIZE") == 1
    assert c.cmd("SELECT", 0) == "OK"
    assert c.cmd("GET", "k") == b"db0"
    # the database is per connection
    other = srv.conn()
    assert other.cmd("GET", "k") == b"db0"
    assert other.cmd("SELECT", 3) == "OK"
    assert other.cmd("GET", "k") == b"db3"


def test_client_id(srv, c):
    a = c.cmd("CLIENT", "ID")
    assert isinstance(a, int) and a > 0
    assert c.cmd("CLIENT", "ID") == a
    b = srv.conn().cmd("CLIENT", "ID")
    assert isinstance(b, int) and b > a


def test_client_setname_getname(c):
    assert c.cmd("CLIENT", "GETNAME") is None
    assert c.cmd("CLIENT", "SETNAME", "worker-1") == "OK"
    assert c.cmd("CLIENT", "GETNAME") == b"worker-1"
    assert c.cmd("CLIENT", "SETNAME", "bad name") == Err(
        "ERR Client names cannot contain spaces, newlines or special characters.")
    assert c.cmd("CLIENT", "GETNAME") == b"worker-1"
    # an empty name removes it
    assert c.cmd("CLIENT", "SETNAME", "") == "OK"
    assert c.cmd("CLIENT", "GETNAME") is None
    assert c.cmd("CLIENT", "SETNAME") == Err("ERR wrong number of arguments for 'client|setname' command")


def test_client_setinfo(c):
    # CLIENT SETINFO is Redis 7.2; cachetoryd implements it. A redis-server 7.0 target does not have it.
    if target_mode() and server_version(c) < (7, 2, 0):
        pytest.skip("target redis-server < 7.2 has no CLIENT SETINFO")
    assert c.cmd("CLIENT", "SETINFO", "LIB-NAME", "cachetory-tests") == "OK"
    assert c.cmd("CLIENT", "SETINFO", "lib-ver", "1.2.3") == "OK"
    listing = c.cmd("CLIENT", "LIST", "ID", c.cmd("CLIENT", "ID")).decode()
    assert "lib-name=cachetory-tests" in listing
    assert "lib-ver=1.2.3" in listing
    r = c.cmd("CLIENT", "SETINFO", "no-such-attr", "x")
    assert isinstance(r, Err) and r.startswith("ERR ")


def test_client_list(srv, c):
    assert c.cmd("CLIENT", "SETNAME", "lister") == "OK"
    other = srv.conn()
    assert other.cmd("SELECT", 5) == "OK"
    other_id = other.cmd("CLIENT", "ID")
    my_id = c.cmd("CLIENT", "ID")
    listing = c.cmd("CLIENT", "LIST")
    assert isinstance(listing, bytes)
    text = listing.decode()
    assert text.endswith("\n")
    lines = {}
    for line in text.strip("\n").split("\n"):
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        lines[int(fields["id"])] = fields
    assert my_id in lines and other_id in lines
    me = lines[my_id]
    assert me["name"] == "lister"
    assert me["db"] == "0"
    assert me["addr"].startswith("127.0.0.1:")
    assert lines[other_id]["db"] == "5"
    assert lines[other_id]["name"] == ""
    # filtered by id
    only = c.cmd("CLIENT", "LIST", "ID", other_id).decode()
    assert only.count("\n") == 1 and only.startswith("id=%d " % other_id)
    # redis 7 names the last command with its full name, container|subcommand
    assert me["cmd"] == "client|list"
    assert lines[other_id]["cmd"] == "client|id"


def test_client_kill_id(srv, c):
    victim = srv.conn()
    vid = victim.cmd("CLIENT", "ID")
    assert c.cmd("CLIENT", "KILL", "ID", vid) == 1
    assert victim.is_closed(wait=3), "killed client was not disconnected"
    # no such client any more: the filter form replies 0
    assert c.cmd("CLIENT", "KILL", "ID", vid) == 0
    assert c.cmd("CLIENT", "KILL", "ID", "notanumber") == Err(
        "ERR client-id should be greater than 0")
    # the killer is still fine
    assert c.cmd("PING") == "PONG"


def test_client_kill_old_style(srv, c):
    assert c.cmd("CLIENT", "KILL", "127.0.0.1:1") == Err("ERR No such client")
    victim = srv.conn()
    addr = "%s:%d" % victim.sock.getsockname()
    assert c.cmd("CLIENT", "KILL", addr) == "OK"
    assert victim.is_closed(wait=3)


def test_client_kill_addr_and_skipme(srv, c):
    victim = srv.conn()
    addr = "%s:%d" % victim.sock.getsockname()
    assert c.cmd("CLIENT", "KILL", "ADDR", addr) == 1
    assert victim.is_closed(wait=3)
    assert c.cmd("CLIENT", "KILL", "ADDR", addr) == 0
    # SKIPME yes (the default) spares the caller; with SKIPME no it is closed after the reply
    me = "%s:%d" % c.sock.getsockname()
    assert c.cmd("CLIENT", "KILL", "ADDR", me) == 0
    assert c.cmd("CLIENT", "KILL", "ADDR", me, "SKIPME", "yes") == 0
    c.send(b"CLIENT KILL ADDR %s SKIPME no\r\n" % me.encode())
    assert c.read_until_close(timeout=5) == b":1\r\n"


def test_client_unknown_subcommand(c):
    assert c.cmd("CLIENT", "foo") == Err("ERR unknown subcommand 'foo'. Try CLIENT HELP.")


def test_unknown_command(c):
    assert c.cmd("foo", "a", "b") == Err("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
    assert c.cmd("foo") == Err("ERR unknown command 'foo', with args beginning with: ")
    assert c.cmd("FooBar", "x") == Err("ERR unknown command 'FooBar', with args beginning with: 'x' ")
    # the connection stays usable
    assert c.cmd("PING") == "PONG"


def test_wrong_arity(c):
    assert c.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")
    assert c.cmd("get", "a", "b") == Err("ERR wrong number of arguments for 'get' command")
    assert c.cmd("SET", "a") == Err("ERR wrong number of arguments for 'set' command")
    assert c.cmd("DEL") == Err("ERR wrong number of arguments for 'del' command")
    assert c.cmd("PING") == "PONG"


def test_connections_are_counted(srv, c):
    def clients():
        from helpers import parse_info
        return int(parse_info(c.cmd("INFO", "clients"))["connected_clients"])
    base = clients()
    extra = [srv.conn() for _ in range(5)]
    for e in extra:
        assert e.cmd("PING") == "PONG"
    assert clients() == base + 5
    for e in extra:
        e.close()
    assert wait_until(lambda: clients() == base, 3), "connected_clients did not go back to %d" % base


def test_many_sequential_connections(srv):
    for i in range(200):
        with Conn(srv.addr, timeout=5) as x:
            if srv.password:
                x.cmd("AUTH", srv.password)
            assert x.cmd("ECHO", str(i)) == str(i).encode()
