"""
Harness for the cachetoryd integration tests.

Fixtures
  server         (module scope) the default daemon of a test module: build/cachetoryd started on a free
                 loopback port with default options. Restarted if a test killed it.
  srv            (function) that daemon, made sure to be alive, with every database flushed; conns made
                 with srv.conn() are closed when the test ends.
  c              (function) a Conn (helpers.Conn) to srv.
  start_daemon   (function) factory: start_daemon(maxmemory="10mb", maxmemory_policy="allkeys-lru", ...)
                 starts another daemon with those options (underscores become dashes, values as on the
                 command line: `--maxmemory 10mb`), stopped when the test ends.
  module_start_daemon  the same factory with module scope.
  reference_redis  (function) a real redis-server to compare replies with (test_differential).

Every daemon's stdout and stderr go to a file; when a test fails, the tail of that file for each daemon
the test used is added to the failure report, with the daemon's exit status if it died. A sanitizer
report (make SANITIZER=address/undefined) in the log of a daemon fails the test at teardown.
Daemons are stopped by their PID: SIGTERM, then SIGKILL after a bound; also when a test fails, and they
die with the test process (PR_SET_PDEATHSIG). Every test has a hard time limit (SIGALRM).

Environment
  CACHETORYD_BIN      the daemon binary (default: <repo>/build/cachetoryd)
  CACHETORYD_TARGET   host:port of an already running server (e.g. a real redis-server started with
                      `redis-server --port P --save '' --appendonly no`). The default daemon is then that
                      server, and daemons with special options are real redis-servers started with the
                      equivalent options (redis-server from PATH, or REDIS_SERVER_BIN). Tests that only
                      cachetoryd can run (dummy backend) are marked needs_cachetoryd and skipped in this mode
                      only; without CACHETORYD_TARGET every test runs.
  CACHETORYD_TEST_TIMEOUT  hard limit of one test in seconds (default 120)
"""
import atexit
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import Conn, parse_info  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CACHETORYD_BIN") or (REPO / "build" / "cachetoryd"))
if not BIN.is_absolute():
    BIN = (REPO / BIN).resolve()
TARGET = os.environ.get("CACHETORYD_TARGET") or None
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "redis-server")

TEST_TIMEOUT = float(os.environ.get("CACHETORYD_TEST_TIMEOUT", "120"))  # hard limit of one test, s
START_TIMEOUT = 10.0      # seconds for a daemon to answer PING
STOP_TIMEOUT = 5.0        # seconds between SIGTERM and SIGKILL
STDERR_TAIL = 6000        # bytes of a daemon's log shown on failure

_LOGDIR = tempfile.mkdtemp(prefix="cachetoryd-it-")    # daemon logs; kept when a test failed
_ALL_DAEMONS = []
_TMPDIRS = []


def target_mode():
    return TARGET is not None


def free_port():
    """A loopback TCP port that was free a moment ago (bind to port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def short_tmpdir():
    """A fresh directory with a short path (unix socket paths are limited to 107 bytes), removed at the
    end of the session."""
    d = tempfile.mkdtemp(prefix="ctd-", dir="/tmp")
    _TMPDIRS.append(d)
    return d


_PR_SET_PDEATHSIG = 1


def _make_preexec(nofile):
    def preexec():
        # Die with the test process, so that an interrupted run leaves no daemon behind.
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass
        if nofile:
            raise_nofile(nofile)

    return preexec


def raise_nofile(want):
    """Raise RLIMIT_NOFILE of this process to `want` (the hard limit too when allowed). Returns the
    soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class DaemonError(Exception):
    pass


class Daemon:
    """A server the tests talk to: one we started (proc is set) or the external target (proc None)."""

    def __init__(self, kind, host, port, unixsocket=None, password=None, options=None):
        self.kind = kind                  # "cachetoryd", "redis-server" or "external"
        self.host = host
        self.port = port
        self.unixsocket = unixsocket
        self.password = password
        self.options = dict(options or {})
        self.proc = None
        self.pid = None
        self.log_path = None
        self.argv = None
        self.exit_status = None
        self.killed = False               # needed SIGKILL at stop
        self.touched_by = set()           # test node ids that used this daemon
        self.conns = []
        self._stopped = False
        self.died_before_stop = False

    # -- connections ---------------------------------------------------------------------------------
    @property
    def addr(self):
        return (self.host, self.port)

    def conn(self, timeout=10.0, auth=True, unix=False):
        c = Conn(self.unixsocket if unix else self.addr, timeout=timeout)
        self.conns.append(c)
        if auth and self.password is not None:
            r = c.cmd("AUTH", self.password)
            assert r == "OK", "AUTH failed: %r" % (r,)
        return c

    def close_conns(self):
        for c in self.conns:
            c.close()
        self.conns = []

    def info(self, section=None):
        with Conn(self.addr) as c:
            if self.password is not None:
                c.cmd("AUTH", self.password)
            r = c.cmd("INFO", section) if section else c.cmd("INFO")
        assert isinstance(r, bytes), "INFO replied %r" % (r,)
        return parse_info(r)

    # -- process -------------------------------------------------------------------------------------
    def alive(self):
        if self.proc is None:
            return True
        return self.proc.poll() is None

    def log_tail(self, n=STDERR_TAIL):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            data = f.read()
        text = data.decode("utf-8", "replace")
        if size > n:
            text = "[... %d bytes before ...]\n" % (size - n) + text
        return text

    def status_text(self):
        if self.proc is None:
            return "external server %s:%d" % self.addr
        rc = self.proc.poll()
        if rc is None:
            state = "running"
        elif rc < 0:
            state = "died from signal %s" % signal.Signals(-rc).name
        else:
            state = "exited with status %d" % rc
        return "%s pid %d (%s)%s\nargv: %s\nlog: %s" % (
            self.kind, self.pid, state, ", killed with SIGKILL after SIGTERM timed out" if self.killed else "",
            " ".join(self.argv or []), self.log_path)

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer")

    def sanitizer_report(self):
        """The part of the log from the first sanitizer report on, or None (a daemon built with
        make SANITIZER=address/undefined reports memory errors, leaks and UB there)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return None
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        idx = [text.find(m) for m in self.SANITIZER_MARKS if m in text]
        if not idx:
            return None
        start = text.rfind("\n", 0, min(idx)) + 1
        return text[start:start + 8000]

    def stop(self):
        """SIGTERM by PID, SIGKILL after STOP_TIMEOUT. Returns the exit status (None if external)."""
        self.close_conns()
        if self.proc is None or self._stopped:
            return self.exit_status
        self._stopped = True
        self.died_before_stop = self.proc.poll() is not None
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.killed = True
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(STOP_TIMEOUT)
        self.exit_status = self.proc.returncode
        return self.exit_status


def _probe(addr, password, pid):
    """None while nothing answers on addr; True once our process (INFO process_id == pid) answers PING;
    False if another process answers there (someone else took the port between free_port() and our
    bind: then this daemon cannot bind and the start is retried on another port)."""
    try:
        c = Conn(addr, timeout=1.0)
    except OSError:
        return None
    try:
        if password is not None:
            c.cmd("AUTH", password)
        if c.cmd("PING") != "PONG":
            return None
        info = c.cmd("INFO", "server")
        if not isinstance(info, bytes):
            return None
        return parse_info(info).get("process_id") == str(pid)
    except Exception:
        return None
    finally:
        c.close()


def _redis_equivalent(opts):
    """redis-server argv for cachetoryd options (target mode), or skip if there is none."""
    args = ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
    for k, v in opts.items():
        if k == "backend":
            if v != "memory://":
                pytest.skip("backend %s exists only in cachetoryd (target mode runs redis-server)" % v)
            continue
        if k == "serializer":
            if v not in ("null://",):
                pytest.skip("serializer %s exists only in cachetoryd" % v)
            continue
        if k == "client-output-buffer-limit":
            args += ["--client-output-buffer-limit", "normal %s %s 0" % (v, v)]
            continue
        if k == "logfile":
            continue
        args += ["--" + k, str(v)]
    return args


def spawn_daemon(options=None, nofile=None, cwd=None, stop_list=None, config_file=None, redis=None):
    """Start a daemon with options (dict; keys as on the command line, '_' allowed for '-'; a value of
    None leaves the option out), after config_file if given (cachetoryd only). Returns a ready Daemon.
    --port and --bind default to a free loopback port and 127.0.0.1. It is cachetoryd, or a real
    redis-server with equivalent options in target mode or when redis=True."""
    if redis is None:
        redis = target_mode()
    opts = {}
    for k, v in (options or {}).items():
        if v is None:
            continue
        opts[k.replace("_", "-")] = v
    opts.setdefault("bind", "127.0.0.1")
    want_port = opts.get("port")

    last_err = None
    for attempt in range(3):
        port = int(want_port) if want_port is not None else free_port()
        opts["port"] = port
        if redis:
            kind = "redis-server"
            if config_file is not None:
                pytest.skip("a cachetoryd config file (target mode runs redis-server)")
            exe = shutil.which(REDIS_SERVER) or REDIS_SERVER
            argv = [exe] + _redis_equivalent(opts)
            run_cwd = cwd or short_tmpdir()
        else:
            kind = "cachetoryd"
            if not BIN.exists():
                raise DaemonError("daemon binary %s does not exist (run make first, or set CACHETORYD_BIN)" % BIN)
            argv = [str(BIN)] + ([str(config_file)] if config_file is not None else [])
            for k, v in opts.items():
                argv += ["--" + k, str(v)]
            run_cwd = cwd or str(REPO)
        d = Daemon(kind, "127.0.0.1", port, unixsocket=opts.get("unixsocket"),
                   password=opts.get("requirepass"), options=opts)
        d.argv = argv
        fd, d.log_path = tempfile.mkstemp(prefix="%s-%d-" % (kind, port), suffix=".log", dir=_LOGDIR)
        try:
            d.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, cwd=run_cwd,
                                      preexec_fn=_make_preexec(nofile), close_fds=True)
        finally:
            os.close(fd)
        d.pid = d.proc.pid
        _ALL_DAEMONS.append(d)
        if stop_list is not None:
            stop_list.append(d)
        deadline = time.monotonic() + START_TIMEOUT
        clash = False
        while time.monotonic() < deadline:
            if d.proc.poll() is not None:
                break
            r = _probe(d.addr, d.password, d.pid)
            if r:
                return d
            if r is False:
                clash = True
                break
            time.sleep(0.02)
        d.stop()
        last_err = DaemonError("%s did not answer PING within %.0fs%s\n%s\n--- log ---\n%s" % (
            kind, START_TIMEOUT, " (another process answers on its port)" if clash else "",
            d.status_text(), d.log_tail()))
        if want_port is not None or not (clash or "in use" in d.log_tail().lower()):
            break
    raise last_err


def _stop_everything():
    for d in _ALL_DAEMONS:
        try:
            d.stop()
        except Exception:
            pass


atexit.register(_stop_everything)


# --------------------------------------------------------------------------------------------------
# pytest hooks


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_cachetoryd: runs only against cachetoryd (skipped in target mode)")


def pytest_sessionfinish(session, exitstatus):
    _stop_everything()
    for d in _TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    if exitstatus == 0:
        shutil.rmtree(_LOGDIR, ignore_errors=True)
    else:
        session.config._cachetoryd_logdir = _LOGDIR


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    logdir = getattr(config, "_cachetoryd_logdir", None)
    if logdir:
        terminalreporter.write_line("daemon logs kept in %s" % logdir)


def pytest_report_header(config):
    if target_mode():
        return "cachetoryd integration: TARGET MODE against %s (special daemons: %s)" % (TARGET, REDIS_SERVER)
    return "cachetoryd integration: daemon %s" % BIN


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_cachetoryd") and target_mode():
        pytest.skip("needs cachetoryd itself (target mode)")


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A hard time limit for every test (SIGALRM in the main thread), on top of the socket timeouts."""
    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded %.0f s (CACHETORYD_TEST_TIMEOUT)" % TEST_TIMEOUT)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in _ALL_DAEMONS:
            # the daemons this test used: those it touched, and every one still running (module ones)
            if d.proc is not None and (item.nodeid in d.touched_by or d.proc.poll() is None):
                rep.sections.append(("%s :%d (%s)" % (d.kind, d.port, rep.when),
                                     d.status_text() + "\n--- log tail ---\n" + d.log_tail()))


# --------------------------------------------------------------------------------------------------
# fixtures


class _Factory:
    def __init__(self, request):
        self.request = request
        self.started = []

    def __call__(self, nofile=None, cwd=None, config_file=None, **options):
        d = spawn_daemon(options, nofile=nofile, cwd=cwd, stop_list=self.started, config_file=config_file)
        node = self.request.node
        if isinstance(node, pytest.Item):
            d.touched_by.add(node.nodeid)
        return d

    def stop_all(self):
        for d in self.started:
            d.stop()
        _fail_on_sanitizer_reports(self.started)


def _fail_on_sanitizer_reports(daemons):
    """Fail (at teardown) for sanitizer reports of daemons that were still running when stopped: leaks
    found at exit, or errors that did not abort. A daemon that died earlier already failed the test
    that was using it, with its log in the report."""
    reports = []
    for d in daemons:
        if d.died_before_stop:
            continue
        r = d.sanitizer_report()
        if r:
            reports.append("%s\n%s" % (d.status_text(), r))
    if reports:
        pytest.fail("sanitizer report in the daemon's log:\n" + "\n\n".join(reports), pytrace=False)


@pytest.fixture
def start_daemon(request):
    f = _Factory(request)
    yield f
    f.stop_all()


@pytest.fixture
def reference_redis(request):
    """A real redis-server (from PATH, or REDIS_SERVER_BIN) to compare replies with."""
    started = []
    d = spawn_daemon({}, stop_list=started, redis=True)
    d.touched_by.add(request.node.nodeid)
    yield d
    for x in started:
        x.stop()


@pytest.fixture(scope="module")
def module_start_daemon(request):
    f = _Factory(request)
    yield f
    f.stop_all()


class _ServerHolder:
    def __init__(self):
        self.daemon = None
        self.started = []

    def get(self):
        if self.daemon is None or not self.daemon.alive():
            if target_mode():
                host, _, port = TARGET.rpartition(":")
                self.daemon = Daemon("external", host or "127.0.0.1", int(port))
            else:
                self.daemon = spawn_daemon({}, stop_list=self.started)
        return self.daemon


@pytest.fixture(scope="module")
def server():
    h = _ServerHolder()
    yield h
    for d in h.started:
        d.stop()
    _fail_on_sanitizer_reports(h.started)


@pytest.fixture
def srv(server, request):
    d = server.get()
    d.touched_by.add(request.node.nodeid)
    with d.conn() as c:
        r = c.cmd("FLUSHALL")
        assert r == "OK", "FLUSHALL before the test replied %r" % (r,)
    yield d
    d.close_conns()


@pytest.fixture
def c(srv):
    return srv.conn()

