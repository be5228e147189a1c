"""
A small, strict RESP2/RESP3 client for the integration tests.

redis-py rewrites replies (strips "ERR " from errors, turns OK into True, ...), which hides exactly the
details these tests check, so the tests talk to the server with this client instead:

    c = Conn(("127.0.0.1", port))          # or Conn("/path/to.sock") for a unix socket
    c.cmd("SET", "k", "v") == "OK"          # simple string  -> str
    c.cmd("GET", "k") == b"v"               # bulk string    -> bytes
    c.cmd("INCR", "n") == 1                 # integer        -> int
    c.cmd("GET", "missing") is None         # null (RESP2 $-1 / *-1, RESP3 _)
    c.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")   # error -> Err (not raised)

RESP3 types: map -> dict (keys as parsed), set -> RespSet (list), double -> float, boolean -> bool,
big number -> int, verbatim -> Verbatim(str), push -> Push(list); attributes are skipped.

Every socket has a timeout (default 10 s), so a server that does not answer fails the test instead of
hanging the suite.
"""
import socket
import time

DEFAULT_TIMEOUT = 10.0


class Err(str):
    """An error reply. Compares equal only to another Err with the same text."""

    def __eq__(self, other):
        return isinstance(other, Err) and str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self):
        return "Err(%s)" % str.__repr__(self)


class Verbatim(str):
    def __new__(cls, text, fmt="txt"):
        o = str.__new__(cls, text)
        o.fmt = fmt
        return o


class RespSet(list):
    pass


class Push(list):
    pass


class ConnectionClosed(Exception):
    pass


class ProtocolViolation(Exception):
    pass


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, (int, float)):
            b = repr(a).encode() if isinstance(a, float) else str(a).encode()
        else:
            raise TypeError("bad argument type %r" % type(a))
        out.append(b"$%d\r\n" % len(b))
        out.append(b)
        out.append(b"\r\n")
    return b"".join(out)


class Conn:
    def __init__(self, addr, timeout=DEFAULT_TIMEOUT, connect_timeout=None):
        if isinstance(addr, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(connect_timeout if connect_timeout is not None else timeout)
        try:
            self.sock.connect(addr)
        except Exception:
            self.sock.close()
            raise
        self.sock.settimeout(timeout)
        if not isinstance(addr, str):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.timeout = timeout

    @classmethod
    def from_socket(cls, sock, timeout=DEFAULT_TIMEOUT):
        """Wrap an already connected socket."""
        c = cls.__new__(cls)
        c.sock, c.buf, c.pos, c.timeout = sock, bytearray(), 0, timeout
        sock.settimeout(timeout)
        return c

    # -- raw bytes ----------------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise ConnectionClosed("connection closed by the server")
        if self.pos > (1 << 20) and self.pos > len(self.buf) // 2:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += chunk

    def read_exact_bytes(self, n):
        """Exactly n raw bytes (through the reply buffer)."""
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def read_available(self, wait=0.5):
        """Whatever raw bytes arrive within `wait` seconds (buffered first)."""
        out = bytes(self.buf[self.pos :])
        self.pos = len(self.buf)
        deadline = time.monotonic() + wait
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            self.sock.settimeout(old)
        return out

    def read_until_close(self, timeout=5.0, limit=64 << 20):
        """All raw bytes until the server closes the connection. Raises AssertionError if it does not
        close within `timeout` seconds."""
        out = bytearray(self.buf[self.pos :])
        self.pos = len(self.buf)
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "server did not close the connection within %.1fs; got %r" % (timeout, bytes(out[:300]))
                    )
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
                if len(out) > limit:
                    raise AssertionError("more than %d bytes before close" % limit)
        finally:
            self.sock.settimeout(old)
        return bytes(out)

    def is_closed(self, wait=2.0):
        """True if the server closed the connection (EOF/RST) within `wait` seconds, discarding data."""
        deadline = time.monotonic() + wait
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    return True
                if not chunk:
                    return True
        finally:
            self.sock.settimeout(old)

    # -- parsed replies -----------------------------------------------------------------------------
    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos : i])
                self.pos = i + 2
                return line
            self._fill()

    def read_reply(self):
        line = self._line()
        if not line:
            raise ProtocolViolation("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode("utf-8", "replace")
        if t == b"-":
            return Err(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.read_exact_bytes(n + 2)
            if data[-2:] != b"\r\n":
                raise ProtocolViolation("bulk not terminated by CRLF: %r" % data[-10:])
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        # RESP3
        if t == b"_":
            if rest:
                raise ProtocolViolation("bad null %r" % line)
            return None
        if t == b"%":
            n = int(rest)
            d = {}
            for _ in range(n):
                k = self.read_reply()
                if isinstance(k, list):
                    k = tuple(k)
                d[k] = self.read_reply()
            return d
        if t == b"~":
            return RespSet(self.read_reply() for _ in range(int(rest)))
        if t == b">":
            return Push(self.read_reply() for _ in range(int(rest)))
        if t == b",":
            s = rest.decode()
            return float({"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(s, s))
        if t == b"#":
            if rest not in (b"t", b"f"):
                raise ProtocolViolation("bad boolean %r" % line)
            return rest == b"t"
        if t == b"(":
            return int(rest)
        if t == b"=":
            data = self.read_exact_bytes(int(rest) + 2)[:-2]
            return Verbatim(data[4:].decode("utf-8", "replace"), data[:3].decode())
        if t == b"!":
            data = self.read_exact_bytes(int(rest) + 2)[:-2]
            return Err(data.decode("utf-8", "replace"))
        if t == b"|":
            n = int(rest)
            for _ in range(n):
                self.read_reply()
                self.read_reply()
            return self.read_reply()
        raise ProtocolViolation("unknown reply type %r" % line[:50])

    def cmd(self, *args):
        self.send(encode_command(*args))
        return self.read_reply()

    def pipeline(self, commands):
        """Send all commands in one write, then read one reply each."""
        self.send(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def parse_info(text):
    """INFO bulk -> dict of field -> str value (sections flattened)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.split("\r\n"):
        if not line or line.startswith("#"):
            continue
        k, _, v = line.partition(":")
        out[k] = v
    return out


def parse_keyspace_value(v):
    """'keys=3,expires=1,avg_ttl=0' -> {'keys': 3, 'expires': 1, 'avg_ttl': 0}"""
    out = {}
    for part in v.split(","):
        k, _, val = part.partition("=")
        out[k] = int(val)
    return out


def proc_status_kb(pid, field):
    """A field of /proc/PID/status in kB: VmRSS (resident now), VmHWM (peak resident), VmPeak ..."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def wait_until(pred, timeout, interval=0.02):
    """Poll pred() until true or timeout; returns the last value of pred()."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def server_version(conn):
    """(major, minor, patch) from INFO server redis_version."""
    import re
    info = parse_info(conn.cmd("INFO", "server"))
    return tuple(int(x) for x in re.findall(r"\d+", info.get("redis_version", "0.0.0"))[:3])


def parse_reply_bytes(data):
    """Parse exactly one complete reply from bytes (raises ProtocolViolation if incomplete or if bytes
    are left over)."""
    c = Conn.__new__(Conn)
    c.sock, c.buf, c.pos, c.timeout = None, bytearray(data), 0, 0

    def no_more():
        raise ProtocolViolation("incomplete reply: %r" % bytes(data[:200]))
    c._fill = no_more
    v = c.read_reply()
    if c.pos != len(data):
        raise ProtocolViolation("%d bytes after the reply" % (len(data) - c.pos))
    return v


def report_figure(name, value, unit=""):
    """Record a measured figure (largest memory seen, restarts survived, ...) for the run's report:
    appended as "name: value unit" to the file named by $CACHETORYD_FIGURES (tests/run.sh prints them
    before its summary). A figure never decides a test; the test's own assertions do."""
    import os
    path = os.environ.get("CACHETORYD_FIGURES")
    if not path:
        return
    with open(path, "a") as f:
        f.write("%s: %s%s\n" % (name, value, (" " + unit) if unit else ""))
