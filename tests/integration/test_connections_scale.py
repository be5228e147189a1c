"""Many clients: 10,000 concurrent connections, and the maxclients limit."""
import socket
import time

from conftest import raise_nofile
from helpers import Conn, parse_info, proc_status_kb, report_figure, wait_until

MAXCLIENTS_ERR = b"-ERR max number of clients reached\r\n"
N = 10000


def _recv_line(s, deadline):
    data = b""
    while not data.endswith(b"\r\n"):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _connect_many(addr, n, batch=250, timeout=10.0):
    """n connections that each answered PING; opened in batches so the listen backlog never overflows."""
    socks = []
    deadline = time.monotonic() + 120
    try:
        while len(socks) < n:
            assert time.monotonic() < deadline, "opening %d connections took more than 120 s" % n
            group = []
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(timeout)
                group.append(s)
                socks.append(s)
                s.connect(addr)
            for s in group:
                s.sendall(b"PING\r\n")
            line_deadline = time.monotonic() + timeout
            for i, s in enumerate(group):
                line = _recv_line(s, line_deadline)
                assert line == b"+PONG\r\n", "connection #%d got %r" % (len(socks) - len(group) + i, line)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _wait_clients(d, conn, expected, timeout=10):
    def ok():
        return int(parse_info(conn.cmd("INFO", "clients"))["connected_clients"]) == expected
    return wait_until(ok, timeout, 0.05)


def test_10000_concurrent_connections(start_daemon):
    have = raise_nofile(N + 1000)
    assert have >= N + 200, "cannot raise this process's RLIMIT_NOFILE above %d" % have
    d = start_daemon(maxclients=N, nofile=N + 6000)
    probe = d.conn()
    assert _wait_clients(d, probe, 1), "stray connections before the test"
    probe.close()
    rss_before = proc_status_kb(d.pid, "VmRSS")
    t0 = time.monotonic()
    socks = _connect_many(d.addr, N)
    try:
        elapsed_open = time.monotonic() - t0
        # all of them at once: one command on every connection, then every reply
        for i, s in enumerate(socks):
            s.sendall(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n" % (len(str(i)), i))
        deadline = time.monotonic() + 30
        for i, s in enumerate(socks):
            body = str(i).encode()
            want = b"$%d\r\n%s\r\n" % (len(body), body)
            got = b""
            while len(got) < len(want):
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(len(want) - len(got))
                assert chunk, "connection #%d closed" % i
                got += chunk
            assert got == want, "connection #%d" % i
        report_figure("connections: RSS per idle client, %s connected" % format(N, ","),
                      "%.1f" % ((proc_status_kb(d.pid, "VmRSS") - rss_before) / N), "kB")
        # the daemon counts them all
        c0 = Conn.from_socket(socks[0])
        info = parse_info(c0.cmd("INFO", "clients"))
        assert int(info["connected_clients"]) == N
        # one more is refused with redis's error, and closed
        extra = socket.create_connection(d.addr, timeout=10)
        try:
            data = b""
            extra.settimeout(10)
            while True:
                chunk = extra.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data == MAXCLIENTS_ERR
        finally:
            extra.close()
        # the established clients are unaffected
        assert c0.cmd("PING") == "PONG"
        assert elapsed_open < 120
    finally:
        for s in socks:
            s.close()
    check = d.conn()
    assert _wait_clients(d, check, 1, timeout=15), "connected_clients did not drop back to 1"


def test_maxclients_reached(start_daemon):
    d = start_daemon(maxclients=3)
    first = d.conn()
    assert _wait_clients(d, first, 1)
    others = [d.conn() for _ in range(2)]
    for o in others:
        assert o.cmd("PING") == "PONG"
    refused = Conn(d.addr, timeout=5)
    assert refused.read_until_close(timeout=5) == MAXCLIENTS_ERR
    refused.close()
    # a freed slot can be used again
    others[0].close()
    assert _wait_clients(d, first, 2)
    again = d.conn()
    assert again.cmd("PING") == "PONG"
    assert int(parse_info(again.cmd("INFO", "stats")).get("rejected_connections", "1")) >= 1
