"""Real client programs against the daemon: redis-cli (RESP2 and RESP3), redis-benchmark, redis-py."""
import re
import subprocess

import redis



def cli(srv, *args, stdin=None, timeout=30):
    argv = ["redis-cli", "-h", srv.host, "-p", str(srv.port)] + [str(a) for a in args]
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_redis_cli_set_get(srv):
    assert cli(srv, "SET", "foo", "bar") == (0, "OK\n", "")
    assert cli(srv, "GET", "foo") == (0, "bar\n", "")
    assert cli(srv, "--no-raw", "GET", "missing") == (0, "(nil)\n", "")
    assert cli(srv, "--no-raw", "INCR", "n") == (0, "(integer) 1\n", "")
    assert cli(srv, "--no-raw", "MGET", "foo", "missing") == (0, '1) "bar"\n2) (nil)\n', "")
    rc, out, _ = cli(srv, "NOSUCH", "a")
    assert out == "ERR unknown command 'NOSUCH', with args beginning with: 'a' \n\n"


def test_redis_cli_stdin_pipeline(srv):
    rc, out, err = cli(srv, stdin=b"SET x 1\nINCR x\nGET x\nDEL x\n")
    assert (rc, out) == (0, "OK\n2\n2\n1\n"), err


def test_redis_cli_resp3(srv):
    assert cli(srv, "-3", "SET", "foo", "bar") == (0, "OK\n", "")
    assert cli(srv, "-3", "GET", "foo") == (0, "bar\n", "")
    assert cli(srv, "-3", "--no-raw", "GET", "missing") == (0, "(nil)\n", "")
    assert cli(srv, "-3", "--no-raw", "CONFIG", "GET", "maxmemory") == (0, '1# "maxmemory" => "0"\n', "")
    rc, out, err = cli(srv, "-3", "--no-raw", "HELLO", "3")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 7
    assert re.match(r'^3# "proto" => \(integer\) 3$', lines[2])
    assert lines[6] == '7# "modules" => (empty array)'


def test_redis_cli_with_password(start_daemon):
    d = start_daemon(requirepass="secret")
    rc, out, err = cli(d, "--no-auth-warning", "-a", "secret", "PING")
    assert (rc, out) == (0, "PONG\n"), err
    rc, out, err = cli(d, "--no-auth-warning", "--user", "default", "--pass", "secret", "-3", "SET", "k", "v")
    assert (rc, out) == (0, "OK\n"), err
    rc, out, err = cli(d, "PING")
    assert out == "NOAUTH Authentication required.\n\n"


def test_redis_benchmark(srv):
    argv = ["redis-benchmark", "-h", srv.host, "-p", str(srv.port), "-t", "set,get,mset",
            "-n", "100000", "-P", "16", "-q"]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=180)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    lines = [l.strip() for l in re.split(r"[\r\n]+", out) if l.strip()]
    bad = [l for l in lines if re.search(r"error|warning|\bERR\b", l, re.I)]
    assert not bad, "error lines from redis-benchmark:\n" + "\n".join(bad)
    rates = {}
    for l in lines:
        m = re.match(r"^([A-Z]+(?: \(\d+ keys\))?): ([\d.]+) requests per second", l)
        if m:
            rates[m.group(1)] = float(m.group(2))
    assert set(rates) == {"SET", "GET", "MSET (10 keys)"}, out
    for name, rate in rates.items():
        assert rate > 0, "%s: %s" % (name, rate)


def test_redis_py(srv):
    r = redis.Redis(host=srv.host, port=srv.port, socket_timeout=10, socket_connect_timeout=10)
    try:
        assert r.ping() is True
        assert r.set("py", "value", ex=100) is True
        assert r.get("py") == b"value"
        assert 99 <= r.ttl("py") <= 100
        assert r.mset({"a": 1, "b": 2}) is True
        assert r.mget(["a", "b", "zz"]) == [b"1", b"2", None]
        assert r.incrbyfloat("f", 1.5) == 1.5
        p = r.pipeline(transaction=True)
        p.incr("cnt").incr("cnt").get("cnt")
        assert p.execute() == [1, 2, b"2"]
        assert sorted(r.scan_iter(match="*", count=2)) == [b"a", b"b", b"cnt", b"f", b"py"]
        assert r.dbsize() == 5
        info = r.info()
        assert "used_memory" in info and "connected_clients" in info
        try:
            r.incr("py")
            raise AssertionError("INCR on a non-integer did not fail")
        except redis.ResponseError as e:
            assert str(e) == "value is not an integer or out of range"
    finally:
        r.close()
