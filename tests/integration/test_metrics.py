"""Prometheus metrics on metrics-port: the text exposition format, parsed here line by line."""
import re
import socket

import pytest

from conftest import free_port

pytestmark = pytest.mark.needs_cachetoryd

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})? '
                  r'(-?[0-9.e+-]+|\+Inf|NaN)$')


def http_get(port, path="/metrics"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body.decode()


def parse(body):
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith("# HELP ") or line.startswith("# TYPE "), line
            continue
        m = LINE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(5))
    return samples


def test_metrics_endpoint(start_daemon):
    port = free_port()
    d = start_daemon(metrics_port=str(port), serializer="zstd://")
    c = d.conn()
    for i in range(5):
        assert c.cmd("SET", "k%d" % i, "v" * 100) == "OK"
    c.cmd("GET", "k1")
    c.cmd("GET", "missing")
    head, body = http_get(port)
    assert head.startswith("HTTP/1.1 200 OK")
    assert "text/plain; version=0.0.4" in head
    m = parse(body)
    assert m["cachetoryd_up"] == 1
    assert m["cachetoryd_connected_clients"] >= 1
    assert m['cachetoryd_db_keys{db="0"}'] == 5
    assert m["cachetoryd_keyspace_hits_total"] >= 1 and m["cachetoryd_keyspace_misses_total"] >= 1
    assert m['cachetoryd_cache_encodes_total{cache="default"}'] == 5
    assert m['cachetoryd_command_duration_seconds_count{cmd="set"}'] == 5
    assert m['cachetoryd_command_duration_seconds_bucket{cmd="set",le="+Inf"}'] == 5
    buckets = sorted((float(k.split('le="')[1].rstrip('"}')), v) for k, v in m.items()
                     if k.startswith('cachetoryd_command_duration_seconds_bucket{cmd="set"') and "+Inf" not in k)
    assert buckets and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))       # cumulative
    head, _ = http_get(port, "/other")
    assert head.startswith("HTTP/1.1 404")


def test_metrics_refuse_endless_heads(start_daemon):
    port = free_port()
    d = start_daemon(metrics_port=str(port))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 9000)
        assert s.recv(100) == b""          # closed without an answer
    except ConnectionResetError:
        pass
    s.close()
    assert d.conn().cmd("PING") == "PONG"


def _closed_by_server(s, timeout):
    """True if the server closed s within timeout seconds (EOF or reset), False if it is still open."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_metrics_connections_are_bounded_and_time_out(start_daemon):
    """A client opening many connections to the metrics port, or never sending a request, holds at most
    32 of them (HTTP_MAX_CONNS), and none for longer than 5 s (HTTP_TIMEOUT_MS); a scrape works
    again afterwards, and the daemon's own clients are not affected."""
    import time
    port = free_port()
    d = start_daemon(metrics_port=str(port))
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        open_now = [s for s in socks if not _closed_by_server(s, 0.01)]
        assert len(open_now) <= 32, "%d idle metrics connections held" % len(open_now)
        assert len(open_now) >= 1
        assert d.conn().cmd("PING") == "PONG"
        t0 = time.monotonic()
        for s in open_now:
            assert _closed_by_server(s, max(0.1, 8 - (time.monotonic() - t0))), \
                "an idle metrics connection still open after 8 s"
        assert time.monotonic() - t0 < 8
        # one that sends half a request and stalls is closed too
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        socks.append(s)
        assert _closed_by_server(s, 8)
        head, body = http_get(port)
        assert head.startswith("HTTP/1.1 200 OK") and "cachetoryd_up 1" in body
    finally:
        for s in socks:
            s.close()
