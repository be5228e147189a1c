"""Hostile clients: requests built to make the daemon allocate, buffer or stall. Each attack runs against a
daemon of its own, whose peak memory (VmHWM in /proc/PID/status) is read before and after; the growth
must stay bounded and is recorded with helpers.report_figure. Error texts and limits are Redis's.

  - bulk length 2^40 (and 2^63-1, 2^64): "invalid bulk length", the connection is closed, nothing is
    allocated for the declared size (neither resident nor virtual memory grows).
  - multibulk count 2^31: "invalid multibulk length", closed. Count 2^31-1 (Redis accepts up to INT_MAX):
    the header alone allocates nothing proportional to the count; a stream of small arguments after it is
    closed by client-query-buffer-limit (1mb here) without a reply; other clients are served. (Only
    cachetoryd: Redis takes parsed arguments out of the query buffer, so that limit never sees them.)
  - queries that never end, streamed until the daemon reacts: an inline line without a newline ("too big
    inline request" past 64 KB), "*" and "$" header lines that never end ("too big mbulk/bulk count
    string"), and a declared 100 MB bulk (under proto-max-bulk-len) whose bytes keep coming (closed by
    client-query-buffer-limit 1mb, no reply, nothing stored).
  - client-output-buffer-limit is bounded by default (1gb, twice proto-max-bulk-len; Redis's normal class is
    unlimited).
  - a client that pipelines 1,000,000 GETs of a 200-byte value (207 MB of replies) and never reads, with
    client-output-buffer-limit set to 16mb: it is closed; the PING/GET latency of 8 other clients during
    the flood is measured (max and p99, max < 1 s); peak memory stays within a small multiple of the limit;
    the daemon is healthy afterwards.
  - before AUTH (requirepass set): a flood of unauthenticated connections declaring a 100 MB bulk or a
    1,000,000-argument command, pushing data after the header, is refused with Redis's pre-auth errors and
    closed; connections holding the largest unfinished command the pre-auth limits allow stay open and
    cost bounded memory; an authenticated client is unaffected (and may still send large values).
  - tcp-keepalive N: the daemon's side of an accepted connection has a keepalive timer due within N s
    (read from /proc/net/tcp: timer kind 2, time left); 0 turns it off; the default is 300 as in Redis.
  - timeout: a client active more often than the timeout is kept past several timeouts, while an idle one
    is closed (it reads EOF, no reply) after the timeout and not before.

Timing bounds are loose enough for a sanitizer build on a busy two-core machine, and memory bounds leave
room for AddressSanitizer's allocator (its quarantine keeps freed memory resident) while staying well
below what buffering the attack would cost.
"""
import errno
import os
import select
import socket
import threading
import time

import pytest

from conftest import target_mode
from helpers import Conn, Err, encode_command, parse_info, proc_status_kb, report_figure

MB = 1024               # the /proc figures are in kB


# --------------------------------------------------------------------------------------------------
# measuring


class Peak:
    """The daemon's peak resident (VmHWM) and virtual (VmPeak) size when created; .rss_kb() and .virt_kb()
    give the growth of each since."""

    def __init__(self, d):
        assert d.pid is not None, "memory can only be measured on a daemon the tests started"
        self.d = d
        self.hwm0 = proc_status_kb(d.pid, "VmHWM")
        self.peak0 = proc_status_kb(d.pid, "VmPeak")

    def rss_kb(self):
        assert self.d.alive(), "the daemon died:\n" + self.d.status_text()
        return proc_status_kb(self.d.pid, "VmHWM") - self.hwm0

    def virt_kb(self):
        assert self.d.alive(), "the daemon died:\n" + self.d.status_text()
        return proc_status_kb(self.d.pid, "VmPeak") - self.peak0


def _stats(d):
    return d.info("stats")


def _check_counter(d, field, at_least):
    """INFO stats `field` >= at_least. Redis before 7.4 has no such field: only then is it not checked."""
    stats = _stats(d)
    if field not in stats and target_mode():
        return
    assert field in stats, "INFO stats has no %s" % field
    assert int(stats[field]) >= at_least, "INFO stats %s is %s, expected at least %d" % (
        field, stats[field], at_least)


def _healthy(d, other=None):
    """The daemon is up and serves a fresh connection (and `other`, if given)."""
    assert d.alive(), "the daemon died:\n" + d.status_text()
    with Conn(d.addr, timeout=10) as c:
        if d.password is not None:
            assert c.cmd("AUTH", d.password) == "OK"
        assert c.cmd("PING") == "PONG", "a new connection got no PONG"
        assert c.cmd("SET", "health", "ok") == "OK"
        assert c.cmd("GET", "health") == b"ok"
    if other is not None:
        r = other.cmd("PING")
        assert r == "PONG", "the client connected during the attack got %r to PING" % (r,)


# --------------------------------------------------------------------------------------------------
# sending


def _raw(d, rcvbuf=None, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(d.addr)
    return s


def _stream(sock, unit, max_bytes, timeout=10.0, stall=2.0):
    """Send `unit` over and over (partial sends continue where they stopped, so the stream stays a clean
    repetition of `unit`) until max_bytes are sent, the socket becomes readable (a reply, EOF or reset),
    the server resets it, or it takes nothing for `stall` seconds. Returns (bytes sent, why stopped):
    "max", "readable", "reset", "stalled" or "time"."""
    sent = 0
    pos = 0
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    old = sock.gettimeout()
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLOUT)
    try:
        while sent < max_bytes:
            now = time.monotonic()
            if now >= deadline:
                return sent, "time"
            if now - last_progress >= stall:
                return sent, "stalled"
            wait_ms = max(1, int(1000 * min(0.2, deadline - now, stall - (now - last_progress))))
            events = 0
            for _, ev in poller.poll(wait_ms):
                events |= ev
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                return sent, "readable"
            if not events & select.POLLOUT:
                continue
            try:
                n = sock.send(unit[pos:pos + min(len(unit) - pos, max_bytes - sent)])
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.ECONNRESET):
                    return sent, "reset"
                raise
            sent += n
            pos = (pos + n) % len(unit)
            last_progress = time.monotonic()
        return sent, "max"
    finally:
        sock.settimeout(old)


def _read_until_close(sock, timeout=5.0):
    return Conn.from_socket(sock, timeout=timeout).read_until_close(timeout=timeout)


# --------------------------------------------------------------------------------------------------
# 1. a bulk length of 2^40


BULK_2_40 = b"*1\r\n$1099511627776\r\n"
INVALID_BULK = b"-ERR Protocol error: invalid bulk length\r\n"


def test_bulk_length_2_40(start_daemon):
    d = start_daemon()
    other = d.conn()
    assert other.cmd("PING") == "PONG"
    peak = Peak(d)
    cases = [
        ("2^40 alone", BULK_2_40, 0),
        ("2^40 then 1 MB of payload", BULK_2_40, 1 << 20),
        ("2^40 as the second argument", b"*2\r\n$3\r\nSET\r\n$1099511627776\r\n", 1 << 20),
        ("2^63-1", b"*1\r\n$9223372036854775807\r\n", 0),
        ("2^64 (overflows 64 bits)", b"*1\r\n$18446744073709551616\r\n", 0),
    ]
    for name, header, payload in cases:
        s = _raw(d)
        try:
            s.sendall(header)
            if payload:
                sent, why = _stream(s, b"x" * 65536, payload, timeout=5)
                assert why in ("readable", "reset", "max", "stalled"), "%s: stream stopped: %s" % (name, why)
            got = _read_until_close(s)
        finally:
            s.close()
        assert got == INVALID_BULK, "%s: expected %r then close, got %r" % (name, INVALID_BULK, got[:200])
    grown = peak.rss_kb()
    virt = peak.virt_kb()
    report_figure("hostile: peak RSS growth, bulk length 2^40", grown, "kB")
    assert grown < 8 * MB, "peak RSS grew by %d kB for refused bulk lengths (expected < 8 MB)" % grown
    # a reservation for the declared length would show in the virtual size even if never touched
    assert virt < 512 * MB, "peak virtual size grew by %d kB (expected < 512 MB)" % virt
    _healthy(d, other)


# --------------------------------------------------------------------------------------------------
# 2. multibulk counts 2^31 and 2^31-1


INVALID_MULTIBULK = b"-ERR Protocol error: invalid multibulk length\r\n"


def test_multibulk_count_2_31_refused(start_daemon):
    d = start_daemon()
    other = d.conn()
    peak = Peak(d)
    for header in (b"*2147483648\r\n", b"*2147483648\r\n$1\r\nx\r\n", b"*9223372036854775807\r\n"):
        c = d.conn()
        c.send(header)
        got = c.read_until_close(timeout=5)
        assert got == INVALID_MULTIBULK, "%r: expected %r then close, got %r" % (header, INVALID_MULTIBULK, got)
    grown = peak.rss_kb()
    report_figure("hostile: peak RSS growth, multibulk count 2^31", grown, "kB")
    assert grown < 8 * MB, "peak RSS grew by %d kB (expected < 8 MB)" % grown
    _healthy(d, other)


@pytest.mark.needs_cachetoryd
def test_multibulk_count_int_max_then_small_arguments(start_daemon):
    """*2147483647 is a valid count. Its header and first arguments must not allocate for 2^31 arguments
    (16 bytes each would be 32 GB); the arguments that follow are buffered as an unfinished command until
    client-query-buffer-limit (1mb) closes the client, without a reply. (Redis 7.0 moves each argument
    out of its query buffer as it is parsed, so its limit never sees them: it took all 32 MB here.)"""
    d = start_daemon(client_query_buffer_limit="1mb")
    other = d.conn()
    assert other.cmd("SET", "k", "v") == "OK"
    peak = Peak(d)
    arg = b"$1\r\nx\r\n"
    s = _raw(d)
    try:
        s.sendall(b"*2147483647\r\n" + arg * 100)
        assert other.cmd("PING") == "PONG"      # the daemon has read the header by now
        clients = int(parse_info(other.cmd("INFO", "clients"))["connected_clients"])
        assert clients == 2, "connected_clients is %d, expected 2 (with the unfinished command)" % clients
        header_rss, header_virt = peak.rss_kb(), peak.virt_kb()
        report_figure("hostile: peak RSS growth, multibulk count 2^31-1 header", header_rss, "kB")
        assert header_rss < 4 * MB, "peak RSS grew by %d kB after the *2147483647 header (expected < 4 MB)" \
            % header_rss
        assert header_virt < 512 * MB, ("peak virtual size grew by %d kB after the *2147483647 header "
                                        "(expected < 512 MB: nothing sized by the count)" % header_virt)

        # then up to 32 MB of arguments (4.8 million of them): the query buffer limit must end it
        sent, why = _stream(s, arg * 9362, 32 << 20, timeout=20)
        assert other.cmd("GET", "k") == b"v"
        assert why in ("readable", "reset", "stalled"), \
            "the daemon accepted %d bytes of arguments (why=%s) with client-query-buffer-limit 1mb" % (sent, why)
        got = _read_until_close(s)
        assert got == b"", "expected the connection closed without a reply, got %r" % got[:200]
    finally:
        s.close()
    grown = peak.rss_kb()
    report_figure("hostile: peak RSS growth, multibulk count 2^31-1 then %.1f MB of small arguments "
                  "(1mb query limit)" % (sent / 1048576.0), grown, "kB")
    # 1 MB of query buffer, one read of at most 4 MB, and 16 bytes of argv per 7-byte argument
    assert grown < 32 * MB, "peak RSS grew by %d kB (expected < 32 MB with a 1 MB query buffer limit)" % grown
    _check_counter(d, "client_query_buffer_limit_disconnections", 1)
    _healthy(d, other)


# --------------------------------------------------------------------------------------------------
# 3. queries that never end


def _endless(d, name, head, unit, expected, max_bytes=8 << 20):
    """Send head, then unit over and over; the daemon must answer `expected` and close (or close without
    a reply if expected is b""), having buffered little. Returns (bytes sent, RSS growth kB)."""
    peak = Peak(d)
    s = _raw(d)
    try:
        s.sendall(head)
        sent, why = _stream(s, unit, max_bytes, timeout=20)
        assert why != "max" and why != "time", \
            "%s: the daemon took %d bytes and neither replied nor closed (why=%s)" % (name, sent, why)
        got = _read_until_close(s)
    finally:
        s.close()
    assert got == expected, "%s: expected %r then close, got %r (after %d bytes)" % (name, expected, got[:200],
                                                                                    sent)
    return sent, peak.rss_kb()


def test_inline_line_without_newline(start_daemon):
    d = start_daemon()
    other = d.conn()
    sent, grown = _endless(d, "inline without newline", b"SET k ", b"v" * 16384,
                           b"-ERR Protocol error: too big inline request\r\n")
    report_figure("hostile: peak RSS growth, inline line without newline", grown, "kB")
    assert grown < 8 * MB, "peak RSS grew by %d kB for a 64 KB line limit (expected < 8 MB)" % grown
    assert other.cmd("EXISTS", "k") == 0
    _healthy(d, other)


def test_header_lines_that_never_end(start_daemon):
    d = start_daemon()
    other = d.conn()
    growth = []
    for name, head, expected in [
            ("bulk-length line", b"*1\r\n$", b"-ERR Protocol error: too big bulk count string\r\n"),
            ("bulk-length line of the 2nd argument", b"*2\r\n$3\r\nGET\r\n$",
             b"-ERR Protocol error: too big bulk count string\r\n"),
            ("multibulk-count line", b"*", b"-ERR Protocol error: too big mbulk count string\r\n")]:
        sent, grown = _endless(d, name, head, b"1" * 16384, expected)
        growth.append(grown)
    report_figure("hostile: peak RSS growth, header lines that never end", max(growth), "kB")
    assert max(growth) < 8 * MB, "peak RSS grew by %d kB for a 64 KB line limit (expected < 8 MB)" % max(growth)
    _healthy(d, other)


def test_declared_bulk_whose_bytes_keep_coming(start_daemon):
    """A 100 MB bulk is allowed (proto-max-bulk-len is 512 MB), but client-query-buffer-limit 1mb closes
    the client once that much of it is buffered: no reply, nothing stored."""
    d = start_daemon(client_query_buffer_limit="1mb")
    other = d.conn()
    sent, grown = _endless(d, "100 MB bulk", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n", b"z" * 65536, b"",
                           max_bytes=64 << 20)
    report_figure("hostile: peak RSS growth, endless 100 MB bulk (1mb query limit)", grown, "kB")
    assert grown < 24 * MB, "peak RSS grew by %d kB with a 1 MB query buffer limit (expected < 24 MB)" % grown
    assert other.cmd("EXISTS", "k") == 0, "the unfinished SET stored something"
    _check_counter(d, "client_query_buffer_limit_disconnections", 1)
    _healthy(d, other)


# --------------------------------------------------------------------------------------------------
# 4. a million pipelined GETs, never read


GETS = 1_000_000
VALUE = 200                     # bytes: 1,000,000 replies of 207 bytes = 207 MB
OUTPUT_LIMIT_MB = 16
PROBES = 8                      # clients measuring latency during the flood, one request in flight each
DEFAULT_OUTPUT_LIMIT = 1 << 30


def test_default_output_limit_is_bounded(start_daemon):
    """Unlike Redis's normal class (0 = unlimited), the daemon bounds a client's pending output by
    default, so a client that never reads is cut off without any configuration."""
    d = start_daemon()
    r = d.conn().cmd("CONFIG", "GET", "client-output-buffer-limit")
    if target_mode():
        assert isinstance(r, list) and len(r) == 2, "CONFIG GET client-output-buffer-limit replied %r" % (r,)
        return
    assert r == [b"client-output-buffer-limit", str(DEFAULT_OUTPUT_LIMIT).encode()], \
        "expected the default client-output-buffer-limit %d (1gb), CONFIG GET replied %r" % (
            DEFAULT_OUTPUT_LIMIT, r)


def _latencies(conns, running, limit_s):
    """Reply times (s) of PING and GET k (a VALUE-byte value) on the connections, each keeping one request
    in flight, for as long as running() is true (at most limit_s); the requests still in flight then are
    waited for and counted too."""
    get_reply = b"$%d\r\n%s\r\n" % (VALUE, b"v" * VALUE)
    inflight = {}                # fd -> [conn, expected reply, bytes so far, start time, request number]
    lat = []

    def issue(c, i):
        req, exp = (b"PING\r\n", b"+PONG\r\n") if i % 2 == 0 else (b"GET k\r\n", get_reply)
        inflight[c.sock.fileno()] = [c, exp, bytearray(), time.monotonic(), i]
        c.send(req)

    def receive(fd):
        c, exp, got, t0, i = inflight[fd]
        chunk = c.sock.recv(65536)
        assert chunk, "a client measuring latency was disconnected during the flood"
        got += chunk
        if len(got) >= len(exp):
            assert got == exp, "expected %r, got %r" % (exp[:20], bytes(got[:100]))
            lat.append(time.monotonic() - t0)
            del inflight[fd]
            return c, i
        return None

    poller = select.poll()
    for i, c in enumerate(conns):
        poller.register(c.sock, select.POLLIN)
        issue(c, i)
    deadline = time.monotonic() + limit_s
    while running() and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            done = receive(fd)
            if done:
                issue(done[0], done[1] + 1)
    deadline = time.monotonic() + 15
    while inflight and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            receive(fd)
    assert not inflight, "%d requests still unanswered 15 s after the flood" % len(inflight)
    return lat


def test_pipelined_gets_never_read(start_daemon):
    """1,000,000 pipelined GETs (207 MB of replies), never read, with client-output-buffer-limit 16mb set
    explicitly: at the default 1gb the test would hold hundreds of MB, and a sanitizer build, whose
    realloc copies the growing output buffer, stalls the loop for seconds on the large steps."""
    d = start_daemon(client_output_buffer_limit="%dmb" % OUTPUT_LIMIT_MB)
    probe = d.conn(timeout=10)
    assert probe.cmd("SET", "k", b"v" * VALUE) == "OK"
    others = [d.conn(timeout=10) for _ in range(PROBES)]
    payload = encode_command("GET", "k") * GETS
    peak = Peak(d)

    flood = _raw(d, rcvbuf=4096, timeout=15)
    result = {}

    def send_all():
        try:
            flood.sendall(payload)
            result["why"] = "all sent"
        except (BrokenPipeError, ConnectionResetError):
            result["why"] = "reset"
        except socket.timeout:
            result["why"] = "stalled"
        except OSError as e:
            result["why"] = "error %s" % e
        result["t"] = time.monotonic()

    t_start = time.monotonic()
    th = threading.Thread(target=send_all, daemon=True)
    th.start()
    try:
        latencies = _latencies(others, th.is_alive, 60)
        th.join(20)
        assert not th.is_alive(), "the flooding client was still sending after 60 s"
        assert result["why"] in ("reset", "all sent"), "sending the GETs ended with: %s" % result["why"]
        # its connection ends, having received far less than the 207 MB asked for
        received = 0
        closed = False
        deadline = time.monotonic() + 15
        flood.settimeout(1)
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = flood.recv(1 << 16)
                except socket.timeout:
                    continue
                if not chunk:
                    closed = True
                    break
                received += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        assert closed, "the flooding client is still connected 15 s after sending (received %d bytes)" % received
    finally:
        flood.close()
    flood_s = result["t"] - t_start
    grown = peak.rss_kb()
    assert latencies, "no request of the other clients completed during the flood"
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    report_figure("hostile: peak RSS growth, 1,000,000 pipelined GETs never read (16mb output limit)",
                  grown // MB, "MB")
    report_figure("hostile: max latency of %d other clients during the GET flood" % PROBES,
                  "%.1f" % (lat[-1] * 1000), "ms")
    report_figure("hostile: p99 latency of %d other clients during the GET flood" % PROBES,
                  "%.1f" % (p99 * 1000), "ms")
    report_figure("hostile: requests of %d other clients during the GET flood (%.2f s)" % (PROBES, flood_s),
                  len(lat))
    assert received < (GETS * (VALUE + 7)) // 4, "the flooding client received %d bytes: not cut off" % received
    assert lat[-1] < 1.0, "during the flood another client waited %.3f s for a reply (p99 %.3f s, %d requests)" % (
        lat[-1], p99, len(lat))
    # the limit, the copy made while growing the buffer, allocator slack (a sanitizer's quarantine):
    # well below the 207 MB of replies
    assert grown < 6 * OUTPUT_LIMIT_MB * MB, \
        "peak RSS grew by %d MB for a client limited to %d MB of output (expected < %d MB)" % (
            grown // MB, OUTPUT_LIMIT_MB, 6 * OUTPUT_LIMIT_MB)
    _check_counter(d, "client_output_buffer_limit_disconnections", 1)
    clients = int(parse_info(probe.cmd("INFO", "clients"))["connected_clients"])
    assert clients == 1 + PROBES, "connected_clients is %d after the flood, expected %d (the other clients)" % (
        clients, 1 + PROBES)
    _healthy(d, probe)
    assert probe.cmd("GET", "k") == b"v" * VALUE


# --------------------------------------------------------------------------------------------------
# 5. before AUTH


UNAUTH_BULK = b"-ERR Protocol error: unauthenticated bulk length\r\n"
UNAUTH_MULTIBULK = b"-ERR Protocol error: unauthenticated multibulk length\r\n"
NOAUTH = Err("NOAUTH Authentication required.")


def test_unauthenticated_flood(start_daemon):
    """100 connections declare a 100 MB bulk, 100 a 1,000,000-argument command, each pushing up to 1 MB
    after the header: all are refused and closed, having buffered nothing. 100 more hold the largest
    unfinished command allowed before AUTH (10 arguments, the 10th of 16384 bytes not yet complete,
    ~150 KB each): they stay connected. Memory stays near what the held ones need, and an authenticated
    client is served throughout, with values larger than the pre-auth limit."""
    n = 100
    d = start_daemon(requirepass="secret")
    good = d.conn()
    big = b"B" * 200_000
    assert good.cmd("SET", "big", big) == "OK"
    peak = Peak(d)

    held_cmd = (b"*10\r\n$4\r\nMGET\r\n" + (b"$16384\r\n" + b"a" * 16384 + b"\r\n") * 8 + b"$16384\r\n"
                + b"a" * 16000)
    refused = []
    held = []
    try:
        for i in range(n):
            s = _raw(d)
            refused.append((s, UNAUTH_BULK))
            s.sendall(b"*2\r\n$3\r\nGET\r\n$104857600\r\n")
            s = _raw(d)
            refused.append((s, UNAUTH_MULTIBULK))
            s.sendall(b"*1000000\r\n")
            s = _raw(d)
            held.append(s)
            s.sendall(held_cmd)
        t0 = time.monotonic()
        assert good.cmd("PING") == "PONG"
        ping_s = time.monotonic() - t0
        # push data after the refused headers, as long as the sockets take it
        pushed = 0
        for s, expected in refused:
            unit = b"x" * 65536 if expected == UNAUTH_BULK else b"$1\r\nx\r\n" * 9362
            sent, _ = _stream(s, unit, 1 << 20, timeout=2, stall=0.05)
            pushed += sent
        for i, (s, expected) in enumerate(refused):
            got = _read_until_close(s)
            assert got == expected, "unauthenticated connection #%d: expected %r then close, got %r" % (
                i, expected, got[:200])
        # the held ones are still there, waiting for the rest of their command
        clients = int(parse_info(good.cmd("INFO", "clients"))["connected_clients"])
        assert clients == 1 + n, "connected_clients is %d, expected %d (the held connections and one " \
            "authenticated)" % (clients, 1 + n)
        grown = peak.rss_kb()
        for i, s in enumerate(held[:5]):
            c = Conn.from_socket(s, timeout=10)
            c.send(b"a" * 384 + b"\r\n")
            r = c.read_reply()
            assert r == NOAUTH, "held connection #%d finished its command and got %r" % (i, r)
    finally:
        for s, _ in refused:
            s.close()
        for s in held:
            s.close()
    report_figure("hostile: peak RSS growth, %d unauthenticated connections (%d holding ~150 KB, %.0f MB "
                  "pushed after refused headers)" % (3 * n, n, pushed / 1048576.0), grown // MB, "MB")
    # what the held connections need, plus slack (a sanitizer's quarantine); the data pushed after the
    # refused headers (about 1 MB a connection) would add 100 MB or more if it were buffered
    held_mb = n * len(held_cmd) / 1048576.0
    assert grown < (held_mb + 48) * MB, (
        "peak RSS grew by %d MB; the held connections account for %.0f MB (expected < %.0f MB)" % (
            grown // MB, held_mb, held_mb + 48))
    assert ping_s < 1.0, "PING of the authenticated client took %.3f s" % ping_s
    assert good.cmd("GET", "big") == big
    assert good.cmd("SET", "big2", big) == "OK"
    _healthy(d, good)


# --------------------------------------------------------------------------------------------------
# 6. TCP keepalive and the idle timeout


def _tcp_entry(daemon_port, client_port):
    """The daemon's side of a loopback connection in /proc/net/tcp: (timer kind, seconds left)."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == daemon_port and int(remote.split(":")[1], 16) == client_port
                    and fields[3] == "01"):         # ESTABLISHED
                kind, when = fields[5].split(":")
                return int(kind, 16), int(when, 16) / hz
    return None


def _keepalive_timer(d):
    """(timer kind, seconds left) of the daemon's side of a fresh, idle connection, once no retransmit
    timer (kind 1) is pending on it."""
    c = d.conn()
    assert c.cmd("PING") == "PONG"
    client_port = c.sock.getsockname()[1]
    deadline = time.monotonic() + 3
    while True:
        time.sleep(0.1)
        entry = _tcp_entry(d.port, client_port)
        assert entry is not None, "no ESTABLISHED entry for 127.0.0.1:%d <- :%d in /proc/net/tcp" % (
            d.port, client_port)
        if entry[0] != 1 or time.monotonic() > deadline:
            return entry


def test_tcp_keepalive(start_daemon):
    # /proc/net/tcp timer kinds: 0 none, 1 retransmit, 2 keepalive (sk_timer), 4 zero-window probe
    for option, interval in ((7, 7), (1000, 1000), (None, 300)):
        d = start_daemon(tcp_keepalive=option)
        kind, left = _keepalive_timer(d)
        what = "--tcp-keepalive %s" % option if option is not None else "the default tcp-keepalive"
        assert kind == 2, "%s: expected a keepalive timer (kind 2) on the accepted socket, found kind %d" % (
            what, kind)
        assert interval - 5 < left <= interval, "%s: keepalive due in %.2f s, expected within (%d, %d]" % (
            what, left, interval - 5, interval)
        d.stop()
    d = start_daemon(tcp_keepalive=0)
    for _ in range(3):
        kind, left = _keepalive_timer(d)
        assert kind == 0, "--tcp-keepalive 0: expected no timer on an idle connection, found kind %d " \
            "(%.2f s left)" % (kind, left)


def _closed_within(sock, wait):
    """(closed, data): whether the peer closed the connection (EOF or reset) within `wait` seconds, and
    the bytes that arrived before."""
    data = b""
    deadline = time.monotonic() + wait
    old = sock.gettimeout()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, data
            sock.settimeout(left)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                return False, data
            except ConnectionResetError:
                return True, data
            if not chunk:
                return True, data
            data += chunk
    finally:
        sock.settimeout(old)


def test_idle_timeout_keeps_active_client(start_daemon):
    timeout = 2
    d = start_daemon(timeout=timeout)
    idle = d.conn()
    active = d.conn()
    assert idle.cmd("PING") == "PONG"
    t0 = time.monotonic()
    closed_at = None
    pings = 0
    # the active client sends a command every 0.4 s (a fifth of the timeout) for 3 timeouts
    while time.monotonic() - t0 < 3 * timeout:
        r = active.cmd("PING")
        assert r == "PONG", "the active client got %r %.1f s in (timeout %d)" % (r, time.monotonic() - t0,
                                                                             timeout)
        pings += 1
        if closed_at is None:
            closed, data = _closed_within(idle.sock, 0.4)
            assert data == b"", "the idle client received %r" % data[:200]
            if closed:
                closed_at = time.monotonic() - t0
        else:
            time.sleep(0.4)
    assert closed_at is not None, "the idle client was still connected %.1f s after its last command " \
        "(timeout %d)" % (time.monotonic() - t0, timeout)
    assert closed_at >= timeout - 0.2, "the idle client was closed after %.2f s, before the timeout of %d s" % (
        closed_at, timeout)
    assert pings >= 10, "the active client sent only %d commands in %d s" % (pings, 3 * timeout)
    r = active.cmd("PING")
    assert r == "PONG", "the active client got %r after %.1f s" % (r, time.monotonic() - t0)
    clients = int(parse_info(active.cmd("INFO", "clients"))["connected_clients"])
    assert clients == 1, "connected_clients is %d, expected 1 (the active client)" % clients
    report_figure("hostile: idle client closed after (timeout %d s)" % timeout, "%.2f" % closed_at, "s")
