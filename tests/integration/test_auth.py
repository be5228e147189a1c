"""AUTH with requirepass, HELLO ... AUTH, and the pre-authentication protocol limits."""
import pytest

from helpers import Err, parse_info

NOAUTH = Err("NOAUTH Authentication required.")
WRONGPASS = Err("WRONGPASS invalid username-password pair or user is disabled.")
# Redis 7.2 says "HELLO <proto> AUTH <user> <pass>", 7.0 said "HELLO AUTH <user> <pass>"; either is accepted.
HELLO_NOAUTH = {
    Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
        "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at "
        "the same time"),
    Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> "
        "<pass> option can be used to authenticate the client and select the RESP protocol version at the "
        "same time"),
}


@pytest.fixture(scope="module")
def authd(module_start_daemon):
    return module_start_daemon(requirepass="secret")


@pytest.fixture
def anon(authd, request):
    authd.touched_by.add(request.node.nodeid)
    c = authd.conn(auth=False)
    yield c
    c.close()


def test_commands_need_auth(anon):
    assert anon.cmd("GET", "a") == NOAUTH
    assert anon.cmd("SET", "a", "b") == NOAUTH
    assert anon.cmd("PING") == NOAUTH
    assert anon.cmd("CLIENT", "ID") == NOAUTH
    # redis looks the command up (and checks its arity) before checking authentication
    assert anon.cmd("NOSUCHCOMMAND") == Err("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: ")
    assert anon.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")
    # raw bytes
    anon.send(b"GET a\r\n")
    assert anon.read_exact_bytes(34) == b"-NOAUTH Authentication required.\r\n"


def test_wrong_password(anon):
    assert anon.cmd("AUTH", "wrong") == WRONGPASS
    assert anon.cmd("AUTH", "default", "wrong") == WRONGPASS
    assert anon.cmd("AUTH", "nobody", "secret") == WRONGPASS
    assert anon.cmd("GET", "a") == NOAUTH
    assert anon.cmd("AUTH", "a", "b", "c") == Err("ERR syntax error")
    assert anon.cmd("AUTH") == Err("ERR wrong number of arguments for 'auth' command")


def test_auth_password(anon):
    assert anon.cmd("AUTH", "secret") == "OK"
    assert anon.cmd("SET", "a", "b") == "OK"
    assert anon.cmd("GET", "a") == b"b"
    # a wrong AUTH afterwards does not log the client out
    assert anon.cmd("AUTH", "wrong") == WRONGPASS
    assert anon.cmd("GET", "a") == b"b"


def test_auth_default_user(anon):
    assert anon.cmd("AUTH", "default", "secret") == "OK"
    assert anon.cmd("PING") == "PONG"


def test_auth_is_per_connection(authd, anon):
    assert anon.cmd("AUTH", "secret") == "OK"
    other = authd.conn(auth=False)
    assert other.cmd("GET", "a") == NOAUTH


def test_hello_needs_auth(anon):
    assert anon.cmd("HELLO", 3) in HELLO_NOAUTH
    assert anon.cmd("HELLO") in HELLO_NOAUTH
    assert anon.cmd("HELLO", 3, "AUTH", "default", "wrong") == WRONGPASS
    assert anon.cmd("GET", "a") == NOAUTH


def test_hello3_with_auth(anon):
    r = anon.cmd("HELLO", 3, "AUTH", "default", "secret")
    assert isinstance(r, dict) and r[b"proto"] == 3
    anon.send(b"GET missing\r\n")
    assert anon.read_exact_bytes(3) == b"_\r\n"


def test_hello2_with_auth_and_setname(anon):
    r = anon.cmd("HELLO", 2, "AUTH", "default", "secret", "SETNAME", "authed")
    assert isinstance(r, list) and r[r.index(b"proto") + 1] == 2
    assert anon.cmd("CLIENT", "GETNAME") == b"authed"


def test_multi_before_auth(anon):
    assert anon.cmd("MULTI") == NOAUTH
    r = anon.cmd("EXEC")
    # redis 7.0 answers EXEC (itself rejected) with the NOAUTH-flavoured abort; accept what a client sees
    assert r in (NOAUTH, Err("EXECABORT Transaction discarded because of: NOAUTH Authentication required."))


def test_quit_before_auth(anon):
    anon.send(b"QUIT\r\n")
    assert anon.read_until_close(timeout=5) == b"+OK\r\n"


def test_unauthenticated_multibulk_length(anon):
    anon.send(b"*11\r\n")
    assert anon.read_until_close(timeout=5) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"


def test_unauthenticated_bulk_length(authd):
    c = authd.conn(auth=False)
    c.send(b"*1\r\n$16385\r\n")
    assert c.read_until_close(timeout=5) == b"-ERR Protocol error: unauthenticated bulk length\r\n"


def test_limits_within_bounds_before_auth(authd):
    c = authd.conn(auth=False)
    # 10 arguments and a 16384-byte bulk are still allowed before AUTH (and get NOAUTH)
    c.send(b"*10\r\n$4\r\nMGET\r\n" + b"$1\r\nx\r\n" * 9)
    assert c.read_reply() == NOAUTH
    c.send(b"*2\r\n$3\r\nGET\r\n$16384\r\n" + b"k" * 16384 + b"\r\n")
    assert c.read_reply() == NOAUTH


def test_big_multibulk_after_auth(authd):
    c = authd.conn(auth=True)
    c.send(b"*13\r\n$4\r\nMSET\r\n" + b"$1\r\nk\r\n$1\r\nv\r\n" * 6)
    assert c.read_reply() == "OK"
    big = b"v" * 20000
    assert c.cmd("SET", "big", big) == "OK"
    assert c.cmd("GET", "big") == big


def test_auth_without_password_configured(c):
    assert c.cmd("AUTH", "x") == Err(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")


def test_rejected_commands_counted_nowhere_harmful(authd):
    # the daemon keeps serving authenticated clients while others are refused
    bad = [authd.conn(auth=False) for _ in range(10)]
    for b in bad:
        assert b.cmd("GET", "a") == NOAUTH
    good = authd.conn()
    assert good.cmd("PING") == "PONG"
    info = parse_info(good.cmd("INFO", "clients"))
    assert int(info["connected_clients"]) >= 11


AUTH_NO_PASSWORD = Err("ERR AUTH <password> called without any password configured for the default user. "
                       "Are you sure your configuration is correct?")


def test_user_names_are_case_sensitive(anon, c):
    assert anon.cmd("AUTH", "DEFAULT", "secret") == WRONGPASS
    assert anon.cmd("HELLO", "3", "AUTH", "Default", "secret") == WRONGPASS
    assert anon.cmd("GET", "a") == NOAUTH
    assert anon.cmd("AUTH", "default", "secret") == "OK"
    # no password configured: the default user takes any password, and no other user exists
    assert c.cmd("AUTH", "DEFAULT", "x") == WRONGPASS
    assert c.cmd("AUTH", "nobody", "x") == WRONGPASS
    assert c.cmd("AUTH", "default", "x") == "OK"


@pytest.mark.needs_cachetoryd
def test_reload_removing_and_adding_requirepass(tmp_path):
    """As redis 7 with CONFIG SET requirepass (checked against redis-server 7.0.15): with no password every
    client is the default user, authenticated, also one that connected while a password was set and never
    gave it; a client authenticated once stays so when a password comes back; one that never authenticated
    is refused again."""
    import signal
    from test_lifecycle import Proc
    from helpers import Conn, wait_until

    class AuthProc(Proc):
        def _up(self):
            try:
                with Conn(("127.0.0.1", self.port), timeout=1) as x:
                    return x.cmd("PING") == NOAUTH
            except OSError:
                return False

    d = AuthProc("[server]\nrequirepass = pw1\n")
    try:
        never = d.conn()                       # connected with a password set, never authenticates
        later = d.conn()                       # the same, authenticates once the password is gone
        authed = d.conn()
        assert authed.cmd("AUTH", "pw1") == "OK"
        for x in (never, later):
            assert x.cmd("GET", "k") == NOAUTH
        d.write_conf("[server]\nrequirepass = \n")
        d.p.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "requirepass is now" in d.text(), 5), d.text()
        fresh = d.conn()                       # connected with no password
        for x in (never, later, authed, fresh):
            assert x.cmd("SET", "k", "v") == "OK"
            assert x.cmd("GET", "k") == b"v"
        # the pre-AUTH protocol limits (10 arguments, 16 KB bulks) are lifted too
        args = []
        for i in range(20):
            args += ["k%d" % i, "v"]
        assert never.cmd("MSET", *args) == "OK"
        assert never.cmd("SET", "big", b"x" * 20000) == "OK"
        assert isinstance(never.cmd("HELLO", "2"), list)
        assert later.cmd("AUTH", "x") == AUTH_NO_PASSWORD
        assert later.cmd("AUTH", "DEFAULT", "x") == WRONGPASS
        assert later.cmd("AUTH", "default", "anything") == "OK"
        assert "pw1" not in d.text()           # no log line shows requirepass

        d.write_conf("[server]\nrequirepass = pw2\n")
        d.p.send_signal(signal.SIGHUP)
        assert wait_until(lambda: d.text().count("requirepass is now") == 2, 5), d.text()
        for x in (later, authed, fresh):       # authenticated once (by AUTH, or by connecting without a password)
            assert x.cmd("PING") == "PONG", x
        assert never.cmd("GET", "k") == NOAUTH
        assert never.cmd("MSET", *args) == Err("ERR Protocol error: unauthenticated multibulk length")
        newer = d.conn()
        assert newer.cmd("GET", "k") == NOAUTH
        assert newer.cmd("AUTH", "pw1") == WRONGPASS
        assert newer.cmd("AUTH", "pw2") == "OK"
        assert "pw2" not in d.text()
    finally:
        d.stop()
