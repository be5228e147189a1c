"""CONFIG SET and CONFIG REWRITE: Redis 7.0's syntax and errors (compared with a real redis-server where
Redis defines them), every live option settable with an effect where it is cheap to see, all or none,
options that need a restart and Redis-only parameters refused (never forwarded), and a rewritten config
file that keeps its comments and gives the same configuration after a restart."""
import os
import socket

import pytest

from conftest import free_port
from helpers import Err
from tls_support import tls_context, tls_pki  # noqa: F401
from upstream_support import proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

# A valid value other than the default for every live option, and what CONFIG GET then shows.
LIVE = {
    "timeout": ("300", b"300"),
    "tcp-keepalive": ("60", b"60"),
    "requirepass": ("s3cret", b"s3cret"),
    "client-query-buffer-limit": ("64mb", b"67108864"),
    "client-output-buffer-limit": ("512mb", b"536870912"),
    "slowlog-log-slower-than": ("5000", b"5000"),
    "slowlog-max-len": ("64", b"64"),
    "serializer": ("zlib://?compression-level=1", b"zlib://?compression-level=1"),
    "default-ttl": ("3600", b"3600"),
    "codec-thread-nice": ("5", b"5"),
    "maxmemory": ("100mb", b"104857600"),
    "maxmemory-policy": ("volatile-lru", b"volatile-lru"),
    "near-cache-size": ("32mb", b"33554432"),
    "near-cache-max-value-size": ("1kb", b"1024"),
    "near-cache-ttl": ("1500", b"1500"),
    "upstream-connect-timeout": ("500", b"500"),
    "upstream-command-timeout": ("1500", b"1500"),
    "upstream-retry-max": ("1000", b"1000"),
    "passthrough": ("yes", b"yes"),
    "passthrough-scripts": ("stored-bytes", b"stored-bytes"),
    "tls-cert-file": ("/nonexistent/cert.pem", b"/nonexistent/cert.pem"),
    "tls-key-file": ("/nonexistent/key.pem", b"/nonexistent/key.pem"),
    "tls-key-file-pass": ("pw", b"pw"),
    "tls-ca-cert-file": ("/nonexistent/ca.pem", b"/nonexistent/ca.pem"),
    "tls-ca-cert-dir": ("/nonexistent", b"/nonexistent"),
    "tls-auth-clients": ("optional", b"optional"),
    "tls-protocols": ("TLSv1.3", b"TLSv1.3"),
    "tls-ciphers": ("HIGH", b"HIGH"),
    "tls-ciphersuites": ("TLS_AES_128_GCM_SHA256", b"TLS_AES_128_GCM_SHA256"),
    "tls-prefer-server-ciphers": ("yes", b"yes"),
    "tls-session-caching": ("no", b"no"),
    "tls-session-cache-size": ("100", b"100"),
    "tls-session-cache-timeout": ("60", b"60"),
    "tls-handshake-timeout": ("5000", b"5000"),
    "loglevel": ("verbose", b"verbose"),
    "logfile": (None, None),        # a file in the test's own directory
}


def get(c, name):
    r = c.cmd("CONFIG", "GET", name)
    assert isinstance(r, list) and len(r) == 2, "CONFIG GET %s: %r" % (name, r)
    return r[1]


def all_options(c):
    r = c.cmd("CONFIG", "GET", "*")
    return dict(zip(r[0::2], r[1::2]))


def test_live_options_are_exactly_the_table(start_daemon):
    """Each option CONFIG GET lists is either settable (and then in LIVE) or refused as needing a restart."""
    d = start_daemon()
    c = d.conn()
    settable = set()
    for name, value in all_options(c).items():
        if name in (b"save", b"appendonly"):
            continue
        r = c.cmd("CONFIG", "SET", name, value)
        if r == "OK":
            settable.add(name.decode())
        else:
            assert isinstance(r, Err) and "needs a restart" in r, "CONFIG SET %s %r: %r" % (name, value, r)
    assert settable == set(LIVE), "live options differ from the test's list: %r" % (settable ^ set(LIVE))


@pytest.mark.parametrize("name", sorted(LIVE))
def test_set_each_live_option(start_daemon, tmp_path, name):
    d = start_daemon()
    c = d.conn()
    value, shown = LIVE[name]
    if value is None:
        value = str(tmp_path / "x.log")
        shown = value.encode()
    assert c.cmd("CONFIG", "SET", name, value) == "OK"
    if name == "requirepass":
        assert c.cmd("AUTH", value) == "OK"
    assert get(c, name) == shown
    assert get(c, name.upper()) == shown


def test_set_several_at_once(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "maxmemory", "10mb", "DEFAULT-TTL", "50", "loglevel", "warning") == "OK"
    assert [get(c, n) for n in ("maxmemory", "default-ttl", "loglevel")] == [b"10485760", b"50", b"warning"]


def test_maxmemory_takes_effect(start_daemon):
    d = start_daemon(maxmemory_policy="noeviction")
    c = d.conn()
    assert c.cmd("SET", "a", "x" * 50000) == "OK"
    assert c.cmd("CONFIG", "SET", "maxmemory", "1") == "OK"
    r = c.cmd("SET", "b", "y")
    assert isinstance(r, Err) and r.startswith("OOM"), r
    assert d.info("memory")["maxmemory"] == "1"
    assert c.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
    assert c.cmd("SET", "b", "y") == "OK"


def test_default_ttl_takes_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("SET", "before", "v") == "OK"
    assert c.cmd("CONFIG", "SET", "default-ttl", "100") == "OK"
    assert c.cmd("SET", "after", "v") == "OK"
    assert c.cmd("TTL", "before") == -1
    assert 0 < c.cmd("TTL", "after") <= 100


def test_requirepass_takes_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "requirepass", "pw1") == "OK"
    other = d.conn(auth=False)
    assert other.cmd("GET", "k") == Err("NOAUTH Authentication required.")
    assert other.cmd("AUTH", "pw1") == "OK"
    assert other.cmd("GET", "k") is None
    assert c.cmd("AUTH", "pw1") == "OK"
    assert c.cmd("CONFIG", "SET", "requirepass", "") == "OK"
    assert d.conn(auth=False).cmd("GET", "k") is None


def test_slowlog_options_take_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "3") == "OK"
    assert c.cmd("SLOWLOG", "RESET") == "OK"
    for i in range(10):
        c.cmd("SET", "k%d" % i, "v")
    assert c.cmd("SLOWLOG", "LEN") == 3
    assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1") == "OK"
    assert c.cmd("SLOWLOG", "RESET") == "OK"
    c.cmd("SET", "k", "v")
    assert c.cmd("SLOWLOG", "LEN") == 0


def test_serializer_takes_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("SET", "plain", "hello") == "OK"
    assert c.cmd("CONFIG", "SET", "serializer", "zlib://") == "OK"
    assert c.cmd("SET", "z", "hello" * 10) == "OK"
    raw = c.cmd("CACHE", "RAWGET", "z")
    assert isinstance(raw, bytes) and raw[:1] == b"\x78", raw     # zlib's container
    assert c.cmd("GET", "z") == b"hello" * 10
    assert c.cmd("GET", "plain") == b"hello"                      # mixed mode: raw bytes read back
    r = c.cmd("CONFIG", "SET", "serializer", "nosuch://")
    assert isinstance(r, Err) and r.startswith(
        "ERR CONFIG SET failed (possibly related to argument 'serializer') - "), r
    assert get(c, "serializer") == b"zlib://"


def test_loglevel_and_logfile_take_effect(start_daemon, tmp_path):
    d = start_daemon()
    c = d.conn()
    log = tmp_path / "new.log"
    assert c.cmd("CONFIG", "SET", "logfile", str(log)) == "OK"
    assert log.exists()
    assert c.cmd("CONFIG", "SET", "loglevel", "warning") == "OK"
    assert c.cmd("CONFIG", "SET", "maxmemory", "1mb") == "OK"
    assert c.cmd("CONFIG", "SET", "loglevel", "notice") == "OK"
    assert c.cmd("CONFIG", "SET", "maxmemory", "2mb") == "OK"
    assert wait_for(lambda: "maxmemory is now '2097152'" in log.read_text(), 2), log.read_text()
    assert "maxmemory is now '1048576'" not in log.read_text()


def test_output_buffer_limit_takes_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "1000") == "OK"
    r = c.cmd("SET", "big", "x" * 5000)
    assert isinstance(r, Err), r
    assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "1mb") == "OK"
    assert c.cmd("SET", "big", "x" * 5000) == "OK"


def test_timeout_takes_effect(start_daemon):
    d = start_daemon()
    c = d.conn()
    idle = d.conn()
    assert idle.cmd("PING") == "PONG"
    assert c.cmd("CONFIG", "SET", "timeout", "1") == "OK"

    def closed():
        try:
            return len(c.cmd("CLIENT", "LIST").splitlines()) == 1
        except OSError:
            return False
    assert wait_for(closed, 5), "the idle client was not closed"


# -- all or none ----------------------------------------------------------------------------------

def test_bad_value_changes_nothing(start_daemon):
    d = start_daemon()
    c = d.conn()
    before = all_options(c)
    r = c.cmd("CONFIG", "SET", "maxmemory", "10mb", "default-ttl", "-5", "loglevel", "debug")
    assert r == Err("ERR CONFIG SET failed (possibly related to argument 'default-ttl') - "
                    "default-ttl must be an integer between 0 and 2147483647"), r
    assert all_options(c) == before
    r = c.cmd("CONFIG", "SET", "maxmemory", "10mb", "serializer", "zstd://?compression-level=99")
    assert isinstance(r, Err) and "'serializer'" in r, r
    assert all_options(c) == before
    r = c.cmd("CONFIG", "SET", "maxmemory", "10mb", "logfile", "/nonexistent/dir/x.log")
    assert isinstance(r, Err) and "'logfile'" in r and "cannot open" in r, r
    assert all_options(c) == before


def test_line_break_refused(start_daemon):
    d = start_daemon()
    c = d.conn()
    r = c.cmd("CONFIG", "SET", "requirepass", "a\nb")
    assert isinstance(r, Err) and "line break" in r, r
    assert get(c, "requirepass") == b""


def test_non_live_option_needs_restart(start_daemon):
    d = start_daemon()
    c = d.conn()
    port = get(c, "port")
    r = c.cmd("CONFIG", "SET", "maxmemory", "5mb", "port", "7777")
    assert r == Err("ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config: "
                    "port needs a restart (set it in the config file, then restart)"), r
    assert get(c, "port") == port and get(c, "maxmemory") == b"0"
    r = c.cmd("CONFIG", "SET", "backend", "dummy://")
    assert isinstance(r, Err) and "backend needs a restart" in r, r


# -- Redis's errors --------------------------------------------------------------------------------

REDIS_ERRORS = [
    ["CONFIG", "SET", "no-such-option", "1"],
    ["CONFIG", "SET", "maxmemory", "1mb", "no-such-option", "1"],
    ["CONFIG", "SET", "maxmemory"],
    ["CONFIG", "SET"],
    ["CONFIG", "SET", "maxmemory", "1mb", "timeout"],
    ["CONFIG", "SET", "maxmemory", "1mb", "maxmemory", "2mb"],
    ["CONFIG", "SET", "maxmemory", "1mb", "MAXMEMORY", "2mb"],
    ["CONFIG", "SET", "maxmemory", "1mb", "maxmemory", "2mb", "no-such-option", "1"],
    ["CONFIG", "REWRITE"],
    ["CONFIG", "REWRITE", "extra"],
]


def test_errors_as_redis(start_daemon, reference_redis):
    d = start_daemon()
    c, ref = d.conn(), reference_redis.conn()
    for cmd in REDIS_ERRORS:
        mine, theirs = c.cmd(*cmd), ref.cmd(*cmd)
        assert isinstance(theirs, Err), (cmd, theirs)
        assert mine == theirs, "%r: cachetoryd %r, redis %r" % (cmd, mine, theirs)


def test_help_lists_set_and_rewrite(start_daemon, reference_redis):
    c = start_daemon().conn()
    mine = c.cmd("CONFIG", "HELP")
    theirs = reference_redis.conn().cmd("CONFIG", "HELP")
    for line in ("SET <directive> <value>", "REWRITE"):
        assert line in mine and line in theirs, (mine, theirs)


@pytest.mark.parametrize("name", ["hash-max-listpack-entries", "save", "appendonly", "maxmemory-samples"])
def test_redis_only_parameter_unknown(start_daemon, name):
    c = start_daemon().conn()
    r = c.cmd("CONFIG", "SET", name, "1")
    assert r == Err("ERR Unknown option or number of arguments for CONFIG SET - '%s'" % name), r


def test_redis_only_parameter_never_reaches_upstream(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes")
    c = d.conn()
    before = up.client().config_get("hash-max-listpack-entries")
    r = c.cmd("CONFIG", "SET", "hash-max-listpack-entries", "7")
    assert r == Err("ERR Unknown option or number of arguments for CONFIG SET - 'hash-max-listpack-entries'"), r
    assert up.client().config_get("hash-max-listpack-entries") == before
    # a live option of cachetoryd's own changes here, not upstream
    assert c.cmd("CONFIG", "SET", "upstream-command-timeout", "1500") == "OK"
    assert get(c, "upstream-command-timeout") == b"1500"
    assert c.cmd("HSET", "h", "f", "v") == 1                      # passthrough still works


# -- CONFIG REWRITE --------------------------------------------------------------------------------

CONF = """# cachetoryd test configuration
; a second comment style

[server]
# the idle timeout
timeout = 10   ; inline comment
slowlog-max-len = 128

[cache]
# memory limit below
maxmemory = 100mb
default-ttl = 0

[cache.docs]
prefix = doc:
default-ttl = 60

[log]
loglevel = notice
"""


def test_rewrite_keeps_comments_and_round_trips(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "timeout", "20", "maxmemory", "50mb", "slowlog-log-slower-than", "77",
                 "loglevel", "warning", "requirepass", "pw x") == "OK"
    assert c.cmd("AUTH", "pw x") == "OK"
    assert c.cmd("CONFIG", "SET", "maxmemory", "104857600") == "OK"   # back to the file's value
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    text = conf.read_text()
    lines = text.splitlines()
    for keep in ("# cachetoryd test configuration", "; a second comment style", "# the idle timeout",
                 "# memory limit below", "maxmemory = 100mb", "[cache.docs]", "prefix = doc:",
                 "default-ttl = 60", "slowlog-max-len = 128"):
        assert keep in lines, "%r gone from\n%s" % (keep, text)
    assert "timeout = 20   ; inline comment" in lines, text
    assert "loglevel = warning" in lines, text
    # added at the end of [server], before the blank line that ends it
    i = lines.index("slowlog-max-len = 128")
    assert set(lines[i + 1:i + 4]) >= {"requirepass = pw x", "slowlog-log-slower-than = 77"}, text
    assert lines.index("[cache]") > i
    before = all_options(c)
    assert not list(tmp_path.glob(".c.conf.rewrite-*")), "a temporary file was left"
    # a second rewrite with nothing changed leaves the file as it is
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    assert conf.read_text() == text
    d.stop()
    # the same password on the command line only tells the harness what to AUTH with
    d2 = start_daemon(config_file=conf, requirepass="pw x")
    c2 = d2.conn()
    after = all_options(c2)
    port_bind = (b"port", b"bind")
    assert {k: v for k, v in after.items() if k not in port_bind} == \
        {k: v for k, v in before.items() if k not in port_bind}


def test_rewrite_adds_missing_sections(start_daemon, tmp_path):
    conf = tmp_path / "min.conf"
    conf.write_text("# only a comment\n")
    os.chmod(conf, 0o600)
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "default-ttl", "30", "tls-protocols", "TLSv1.3") == "OK"
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    text = conf.read_text()
    assert text.startswith("# only a comment\n"), text
    assert "[cache]\ndefault-ttl = 30\n" in text and "[tls]\ntls-protocols = TLSv1.3\n" in text, text
    assert (os.stat(conf).st_mode & 0o777) == 0o600
    d.stop()
    d2 = start_daemon(config_file=conf)
    assert get(d2.conn(), "default-ttl") == b"30"


def test_rewrite_unwritable_dir_errors(start_daemon, tmp_path):
    """The file cannot be written (here its directory became a plain file, which stops root as well): an
    error, and nothing written."""
    sub = tmp_path / "gone"
    sub.mkdir()
    conf = sub / "c.conf"
    conf.write_text("[server]\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "timeout", "5") == "OK"
    conf.unlink()
    sub.rmdir()
    sub.write_text("not a directory\n")
    r = c.cmd("CONFIG", "REWRITE")
    assert isinstance(r, Err) and r.startswith("ERR Rewriting config file: "), r
    assert sub.read_text() == "not a directory\n"
    assert sorted(os.listdir(tmp_path)) == ["gone"]


def test_slowlog_redacts_secret_values(start_daemon):
    d = start_daemon()
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK"
    assert c.cmd("CONFIG", "SET", "timeout", "7", "tls-key-file-pass", "topsecret") == "OK"
    assert c.cmd("CONFIG", "SET", "requirepass", "hunter2") == "OK"
    assert c.cmd("AUTH", "hunter2") == "OK"
    entries = c.cmd("SLOWLOG", "GET", "10")
    args = [e[3] for e in entries]
    flat = b" ".join(a for e in args for a in e)
    assert b"topsecret" not in flat and b"hunter2" not in flat, args
    assert [b"CONFIG", b"SET", b"timeout", b"7", b"tls-key-file-pass", b"(redacted)"] in args, args
    assert [b"CONFIG", b"SET", b"requirepass", b"(redacted)"] in args, args


def test_logfile_set_empty_goes_back_to_stderr(start_daemon, tmp_path):
    log = tmp_path / "first.log"
    d = start_daemon(logfile=str(log))
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "logfile", "") == "OK"
    assert c.cmd("CONFIG", "SET", "maxmemory", "3mb") == "OK"
    assert wait_for(lambda: "maxmemory is now '3145728'" in d.log_tail(50), 2), d.log_tail(20)
    assert "maxmemory is now '3145728'" not in log.read_text()


def test_tls_settings_all_or_none(start_daemon, tls_pki):
    """A TLS setting the listener cannot use fails the whole call, and the listener keeps serving."""
    pki = tls_pki
    d = start_daemon(tls_port=free_port(), tls_cert_file=pki.certs["server"].crt,
                     tls_key_file=pki.certs["server"].key, tls_auth_clients="no")
    c = d.conn()
    r = c.cmd("CONFIG", "SET", "maxmemory", "5mb", "tls-cert-file", "/nonexistent/cert.pem")
    assert isinstance(r, Err) and r.startswith(
        "ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - "), r
    assert get(c, "maxmemory") == b"0" and get(c, "tls-cert-file") == pki.certs["server"].crt.encode()
    ctx = tls_context(pki)
    with socket.create_connection(("127.0.0.1", int(d.options["tls-port"])), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            t.sendall(b"PING\r\n")
            assert t.recv(16) == b"+PONG\r\n"
    assert c.cmd("CONFIG", "SET", "tls-protocols", "TLSv1.3", "tls-session-cache-size", "100") == "OK"
    assert get(c, "tls-protocols") == b"TLSv1.3"


def test_rewrite_quotes_a_leading_semicolon(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[server]\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "tls-key-file-pass", ";secret") == "OK"
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    d.stop()
    d2 = start_daemon(config_file=conf)
    assert d2.conn().cmd("CONFIG", "GET", "tls-key-file-pass") == [b"tls-key-file-pass", b";secret"]


@pytest.mark.parametrize("value,why", [("ab ;cd", "';' after a space"), ("x" * 300, "too long")])
def test_rewrite_refuses_what_the_file_cannot_hold(start_daemon, tmp_path, value, why):
    conf = tmp_path / "c.conf"
    conf.write_text("[server]\n; a comment\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "requirepass", value) == "OK"
    assert c.cmd("AUTH", value) == "OK"                     # whole, not cut at 511 bytes or at the ';'
    assert c.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", value.encode()]
    r = c.cmd("CONFIG", "REWRITE")
    assert isinstance(r, Err) and why in r and "requirepass" in r and value not in r, r
    assert conf.read_text() == "[server]\n; a comment\n"
    assert sorted(os.listdir(tmp_path)) == ["c.conf"]       # no temporary file left behind


def test_rewrite_never_writes_through_a_planted_link(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[server]\n")
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    d = start_daemon(config_file=conf)
    for name in (".c.conf.rewrite-%d" % d.pid, ".c.conf.rewrite-XXXXXX"):
        os.symlink(victim, tmp_path / name)
    c = d.conn()
    assert c.cmd("CONFIG", "SET", "timeout", "9") == "OK"
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    assert victim.read_text() == "untouched\n"
    assert "timeout = 9" in conf.read_text()


def test_rewrite_of_a_file_with_a_byte_order_mark(start_daemon, tmp_path):
    import subprocess
    import conftest
    conf = tmp_path / "bom.conf"
    conf.write_bytes(b"\xef\xbb\xbftimeout = 5\n[cache]\nhz = 10\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    p = subprocess.run([str(conftest.BIN), "-t", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    assert p.returncode == 0, p.stdout
    assert conf.read_bytes().count(b"timeout") == 1


def test_slowlog_max_len_keeps_the_newest_as_redis(start_daemon, reference_redis):
    def run(c):
        lens = []
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
        c.cmd("SLOWLOG", "RESET")
        for i in range(5):
            c.cmd("SET", "k%d" % i, "v")
        c.cmd("CONFIG", "SET", "slowlog-max-len", "64")
        lens.append(c.cmd("SLOWLOG", "LEN"))
        c.cmd("CONFIG", "SET", "slowlog-max-len", "3")
        lens.append(c.cmd("SLOWLOG", "LEN"))
        lens.append([e[3][:2] for e in c.cmd("SLOWLOG", "GET", "10")])
        return lens
    assert run(start_daemon().conn()) == run(reference_redis.conn())


def test_config_file_error_hides_a_secret_line(tmp_path):
    import subprocess
    import conftest
    conf = tmp_path / "c.conf"
    conf.write_text("[server]\nrequirepass = %s\n" % ("s3cr3t" * 40))
    p = subprocess.run([str(conftest.BIN), "-t", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    out = p.stdout.decode()
    assert p.returncode == 1 and "requirepass = (hidden)" in out and "s3cr3t" not in out, out
