"""Per-client buffer limits. client-output-buffer-limit: a client that sends requests but never reads the
replies is disconnected once its pending output passes the limit, while the other clients keep getting
prompt replies. client-query-buffer-limit: a client whose unprocessed input passes it is disconnected."""
import errno
import socket
import time

from helpers import Conn, encode_command, parse_info, proc_status_kb, report_figure, wait_until

VALUE_SIZE = 100_000
GETS = 1000                     # 100 MB of replies if the daemon kept them all


def test_slow_reader_is_disconnected(start_daemon):
    d = start_daemon(client_output_buffer_limit="1mb")
    fast = d.conn(timeout=5)
    assert fast.cmd("SET", "big", b"x" * VALUE_SIZE) == "OK"

    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(d.addr)
    try:
        slow.sendall(b"CLIENT ID\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = slow.recv(1)
            assert chunk, "slow client closed before CLIENT ID"
            line += chunk
        slow_id = int(line[1:-2])

        # flood: many GETs of the large value, never reading; ping from the other client in between
        payload = b"GET big\r\n" * GETS
        slow.setblocking(False)
        sent = 0
        latencies = []
        reset = False
        deadline = time.monotonic() + 10
        while sent < len(payload) and time.monotonic() < deadline and not reset:
            try:
                sent += slow.send(payload[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.EPIPE):
                    reset = True
                else:
                    raise
            t0 = time.monotonic()
            assert fast.cmd("PING") == "PONG"
            latencies.append(time.monotonic() - t0)

        def slow_gone():
            listing = fast.cmd("CLIENT", "LIST").decode()
            return ("id=%d " % slow_id) not in listing
        assert wait_until(slow_gone, 5, 0.05), "slow reader still connected 5 s after flooding"

        # meanwhile the other client was served promptly
        for _ in range(20):
            t0 = time.monotonic()
            assert fast.cmd("GET", "big") == b"x" * VALUE_SIZE
            latencies.append(time.monotonic() - t0)
        # (redis: about 1 ms; the bound is loose for slow or sanitizer builds)
        assert max(latencies) < 2.0, "a reply to the other client took %.3f s" % max(latencies)

        # the slow client sees the end of its connection after far less than all the replies
        slow.setblocking(True)
        slow.settimeout(5)
        received = 0
        try:
            while True:
                chunk = slow.recv(1 << 16)
                if not chunk:
                    break
                received += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        except socket.timeout:
            raise AssertionError("slow client's connection still open (received %d bytes)" % received)
        assert received < GETS * VALUE_SIZE // 2, "received %d bytes: not cut off" % received
    finally:
        slow.close()
    assert fast.cmd("PING") == "PONG"


def test_reading_client_with_big_replies_is_not_disconnected(start_daemon):
    # a client that does read gets every reply even when they add up to far more than the limit
    d = start_daemon(client_output_buffer_limit="1mb")
    c = d.conn(timeout=10)
    c.cmd("SET", "v", b"z" * 200_000)
    for _ in range(5):
        replies = c.pipeline([("GET", "v")] * 4)   # 800 KB per round, read at once
        assert replies == [b"z" * 200_000] * 4
    assert c.cmd("PING") == "PONG"
    info = parse_info(c.cmd("INFO", "clients"))
    assert int(info["connected_clients"]) == 1


def test_query_buffer_limit(start_daemon):
    d = start_daemon(client_query_buffer_limit="1mb")
    other = d.conn()
    big = d.conn()
    # sent in pieces, so that the daemon sees more than 1 MB of input that is not a whole command yet
    # (redis also refuses it when it arrives at once; cachetoryd then accepted it in ~1 of 20 tries)
    data = encode_command("SET", "k", b"x" * (2 << 20))
    try:
        for i in range(0, len(data), 256 * 1024):
            big.send(data[i:i + 256 * 1024])
            time.sleep(0.01)
    except OSError:
        pass
    # closed without a reply, nothing stored
    assert big.read_until_close(timeout=5) == b""
    assert other.cmd("EXISTS", "k") == 0
    # many small pipelined commands are consumed as they arrive, so they never hit the limit
    ok = d.conn(timeout=20)
    ok.send(b"PING\r\n" * 300000)
    assert ok.read_exact_bytes(7 * 300000) == b"+PONG\r\n" * 300000
    assert other.cmd("PING") == "PONG"


def test_output_limit_bounds_memory(start_daemon):
    """The limit bounds what the daemon holds for a slow reader: its peak memory must not grow by the
    100 MB of replies requested in one go (redis: +1 MB; it checks the limit after every reply)."""
    d = start_daemon(client_output_buffer_limit="1mb")
    fast = d.conn()
    assert fast.cmd("SET", "big", b"x" * VALUE_SIZE) == "OK"
    before = proc_status_kb(d.pid, "VmHWM")
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(d.addr)
    try:
        slow.sendall(b"GET big\r\n" * GETS)       # 9 KB of requests, 100 MB of replies
        assert fast.cmd("PING") == "PONG"
        assert Conn.from_socket(slow).is_closed(wait=5), "slow reader not disconnected"
    finally:
        slow.close()
    assert fast.cmd("PING") == "PONG"
    grown_mb = (proc_status_kb(d.pid, "VmHWM") - before) / 1024
    report_figure("buffer limits: peak RSS growth, slow reader of 100 MB of replies (1mb output limit)",
                  "%.1f" % grown_mb, "MB")
    assert grown_mb < 25, "peak RSS grew by %.0f MB for a client limited to 1 MB of output" % grown_mb


def test_output_limit_counts_the_write_in_flight(start_daemon):
    """The limit covers all pending output: the replies queued after the command and the bytes of an
    earlier write the socket has not taken yet. A client is closed with at most about one reply over the
    limit (redis: the same), not with nearly twice the limit pending."""
    import re
    limit, size = 1 << 20, 60_000
    d = start_daemon(client_output_buffer_limit="1mb")
    fast = d.conn()
    assert fast.cmd("SET", "v", b"y" * size) == "OK"
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(d.addr)
    try:
        for _ in range(40):                          # bounded: about 38 MB of replies asked for in all
            try:
                slow.sendall(b"GET v\r\n" * 16)
            except OSError:
                break
            if "over client-output-buffer-limit" in d.log_tail(1 << 16):
                break
            time.sleep(0.1)
        assert Conn.from_socket(slow).is_closed(wait=5), "client that never reads not closed"
    finally:
        slow.close()
    m = re.findall(r"output of (\d+) bytes is over client-output-buffer-limit", d.log_tail(1 << 16))
    assert m, "no output-limit line in the log:\n%s" % d.log_tail()
    pending = int(m[-1])
    assert pending <= limit + 2 * (size + 16), \
        "closed with %d bytes pending for a limit of %d (replies of %d bytes)" % (pending, limit, size)
    assert fast.cmd("PING") == "PONG"
