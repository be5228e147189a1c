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
  CACHETORYD_TEST_TIMEOUT  hard limit of one test in seconds (default 120; 900 under VALGRIND=1)
  VALGRIND            1: every cachetoryd the tests start runs under valgrind's memcheck (see below)
  CACHETORYD_SLOW     factor for the bounds that tests scale with conftest.SLOW (default 20 under
                      VALGRIND=1, else 1)

VALGRIND=1
  Daemons started by spawn_daemon run as `valgrind --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --log-file=<daemon log>.valgrind build/cachetoryd ...`; tests that start
  conftest.BIN themselves (or $CACHETORYD_BIN) get a wrapper script that does the same with a log per
  process. A test fails when a daemon it used reports a memory error (checked after every test, also for
  the module's daemon) or, once the daemon has exited, a definite leak; the failure quotes the report.
  A log without valgrind's final summary (daemon killed with SIGKILL, or still running after the test)
  fails as well: the leak check did not happen. valgrind also reads $VALGRIND_OPTS (e.g.
  --track-origins=yes). Tests marked `timing` (latency, RSS or throughput bounds that cannot hold at
  valgrind's speed) or `long_double` (INCRBYFLOAT results that need 80-bit arithmetic, which valgrind
  does not have) are deselected and counted; START_TIMEOUT, STOP_TIMEOUT and the default socket
  timeout of Daemon.conn() grow, and tests scale their own bounds with conftest.SLOW.
"""
import atexit
import ctypes
import os
import re
import resource
import shutil
import shlex
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

VALGRIND = os.environ.get("VALGRIND", "").strip().lower() not in ("", "0", "no", "false")
# how much slower the daemon runs than natively: tests multiply their own time bounds by it
SLOW = float(os.environ.get("CACHETORYD_SLOW") or (20 if VALGRIND else 1))

TEST_TIMEOUT = float(os.environ.get("CACHETORYD_TEST_TIMEOUT") or (900 if VALGRIND else 120))  # one test, s
# seconds for a daemon to answer PING; between SIGTERM and SIGKILL (the daemon drains its clients for
# up to 5 s, then valgrind checks for leaks)
START_TIMEOUT, STOP_TIMEOUT = (60.0, 60.0) if VALGRIND else (10.0, 5.0)
CONN_TIMEOUT = 10.0 * SLOW  # default socket timeout of Daemon.conn()
STDERR_TAIL = 6000        # bytes of a daemon's log shown on failure

_LOGDIR = tempfile.mkdtemp(prefix="cachetoryd-it-")    # daemon logs; kept when a test failed
_ALL_DAEMONS = []
_TMPDIRS = []

# ---- valgrind -------------------------------------------------------------------------------------
VALGRIND_ARGV = [os.environ.get("VALGRIND_BIN") or "valgrind", "--tool=memcheck", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--trace-children=no",
                 "--num-callers=30"]
# No --error-exitcode: tests check the daemon's own exit status; the log is what decides.
DAEMON_BIN = BIN          # the real binary; BIN is the valgrind wrapper under VALGRIND=1
_DIRECT_LOG = os.path.join(_LOGDIR, "direct-%p.valgrind")  # logs of daemons started through the wrapper
if VALGRIND and TARGET is None:
    if shutil.which(VALGRIND_ARGV[0]) is None:
        raise pytest.UsageError("VALGRIND=1: %s not found (scripts/install-deps.sh installs it)" % VALGRIND_ARGV[0])
    BIN = Path(_LOGDIR) / "cachetoryd-valgrind"
    BIN.write_text("#!/bin/sh\n# cachetoryd under valgrind, for the tests that start conftest.BIN themselves\n"
                   "exec %s --log-file=%s %s \"$@\"\n" % (
                       " ".join(shlex.quote(a) for a in VALGRIND_ARGV), shlex.quote(_DIRECT_LOG),
                       shlex.quote(str(DAEMON_BIN))))
    BIN.chmod(0o755)
    os.environ["CACHETORYD_BIN"] = str(BIN)    # for test modules that read it themselves

# The first line of each paragraph of a valgrind log that is not a finding.
_VG_NOT_FINDINGS = re.compile(
    r"(Memcheck, a memory error detector|HEAP SUMMARY:|LEAK SUMMARY:|All heap blocks were freed|"
    r"Reachable blocks|For lists of detected|For counts of detected|ERROR SUMMARY:|Use --track-origins|"
    r"Warning: |WARNING: )")


class ValgrindLog:
    """What a valgrind log says so far: its findings (error and definite-leak paragraphs, prefixes
    removed), whether the final summary is there, and the error count of that summary."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.paragraphs = []
        cur = []
        for line in text.splitlines():
            line = re.sub(r"^==\d+== ?", "", line)
            if line.strip():
                cur.append(line)
            elif cur:
                self.paragraphs.append("\n".join(cur))
                cur = []
        if cur:
            self.paragraphs.append("\n".join(cur))
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        self.complete = m is not None
        self.errors = int(m.group(1)) if m else None
        self.findings = [p for p in self.paragraphs if not _VG_NOT_FINDINGS.match(p)]
        self.leak_summary = next((p for p in self.paragraphs if p.startswith("LEAK SUMMARY:")), "")
        self.leak_summary = "\n".join(l for l in self.leak_summary.splitlines() if l.startswith((" ", "LEAK")))

    def report(self, findings, limit=12000):
        text = "\n\n".join(findings)
        if self.leak_summary:
            text += "\n\n" + self.leak_summary
        if len(text) > limit:
            text = text[:limit] + "\n[... %d more bytes in %s]" % (len(text) - limit, self.path)
        return text


_VALGRIND_PROBLEMS = []    # (test node id, first line): all of them, in the terminal summary


def _valgrind_fail(node, texts):
    """Fail the current test (at teardown) with valgrind's reports, and note them for the summary (when
    several teardowns fail at once, pytest reports only the first)."""
    for t in texts:
        _VALGRIND_PROBLEMS.append((node.nodeid, t.splitlines()[0] if t else ""))
    pytest.fail("\n\n".join(texts), pytrace=False)


def valgrind_problem(log_path, seen=0, exited=True, what="the daemon", test_failed=False):
    """None, or the text of a failure: findings of the valgrind log past the first `seen` ones (memory
    errors; definite leaks once the process exited), or, if it exited, a missing final summary (not
    when the test failed already: it killed a daemon that did not behave). Returns (text or None,
    number of findings now)."""
    if not log_path or not os.path.exists(log_path):
        return ("no valgrind log %s for %s" % (log_path, what) if exited else None), seen
    log = ValgrindLog(log_path)
    new = log.findings[seen:]
    texts = []
    if new:
        texts.append("valgrind reports %d finding(s) for %s (log %s):\n%s" % (
            len(new), what, log_path, log.report(new)))
    if exited and not log.complete and not test_failed:
        texts.append("valgrind log %s has no final summary: %s did not exit by itself (killed with SIGKILL?), "
                     "so no leak check happened" % (log_path, what))
    if texts:
        return "\n".join(texts), len(log.findings)
    if exited and log.errors and not log.findings:
        # counted by valgrind, but not in a paragraph of its own (e.g. repeated errors already shown)
        return ("valgrind counted %d error(s) for %s (log %s):\n%s" % (
            log.errors, what, log_path, log.report(log.findings[-3:]))), len(log.findings)
    return None, len(log.findings)


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
        self.valgrind_log = None          # VALGRIND=1: valgrind's log for this daemon
        self.valgrind_seen = 0            # findings of that log already reported

    # -- connections ---------------------------------------------------------------------------------
    @property
    def addr(self):
        return (self.host, self.port)

    def conn(self, timeout=None, auth=True, unix=False):
        c = Conn(self.unixsocket if unix else self.addr, timeout=CONN_TIMEOUT if timeout is None else timeout)
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
        with Conn(self.addr, timeout=CONN_TIMEOUT) as c:
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

    def valgrind_problem(self, test_failed=False):
        """VALGRIND=1: the findings of this daemon's valgrind log not reported yet (memory errors while it
        runs; definite leaks and a missing final summary once it has exited), or None."""
        if self.valgrind_log is None:
            return None
        text, self.valgrind_seen = valgrind_problem(
            self.valgrind_log, self.valgrind_seen, exited=self.proc.poll() is not None,
            what="%s pid %d" % (self.kind, self.pid), test_failed=test_failed)
        return text

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


def spawn_daemon(options=None, nofile=None, cwd=None, stop_list=None, config_file=None, redis=None, env=None):
    """Start a daemon with options (dict; keys as on the command line, '_' allowed for '-'; a value of
    None leaves the option out), after config_file if given (cachetoryd only), with env (a dict) added
    to this process's environment. Returns a ready Daemon.
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
            if not DAEMON_BIN.exists():
                raise DaemonError("daemon binary %s does not exist (run make first, or set CACHETORYD_BIN)"
                                  % DAEMON_BIN)
            argv = [str(DAEMON_BIN)] + ([str(config_file)] if config_file is not None else [])
            for k, v in opts.items():
                argv += ["--" + k, str(v)]
            run_cwd = cwd or str(REPO)
        d = Daemon(kind, "127.0.0.1", port, unixsocket=opts.get("unixsocket"),
                   password=opts.get("requirepass"), options=opts)
        fd, d.log_path = tempfile.mkstemp(prefix="%s-%d-" % (kind, port), suffix=".log", dir=_LOGDIR)
        if VALGRIND and kind == "cachetoryd":
            d.valgrind_log = d.log_path + ".valgrind"
            argv = VALGRIND_ARGV + ["--log-file=" + d.valgrind_log] + argv
        d.argv = argv
        try:
            d.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, cwd=run_cwd,
                                      preexec_fn=_make_preexec(nofile), close_fds=True,
                                      env=dict(os.environ, **env) if env else None)
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
    for name, why in _VALGRIND_DESELECT.items():
        config.addinivalue_line("markers", "%s: %s; deselected under VALGRIND=1" % (name, why))


# markers of the tests that cannot pass under valgrind, and why
_VALGRIND_DESELECT = {
    "timing": "asserts latency, throughput or memory (RSS) bounds that do not hold at valgrind's speed",
    "long_double": "expects 80-bit long double results (INCRBYFLOAT), which valgrind computes with 64-bit doubles",
}
_VALGRIND_DESELECT_SHORT = {"timing": "timing/memory bounds", "long_double": "80-bit long double arithmetic"}


def pytest_collection_modifyitems(session, config, items):
    if not VALGRIND:
        return
    lines = []
    for name in _VALGRIND_DESELECT:
        out = [it for it in items if it.get_closest_marker(name)]
        items[:] = [it for it in items if not it.get_closest_marker(name)]
        if out:
            config.hook.pytest_deselected(items=out)
        lines.append("%d tests deselected under VALGRIND=1: %s (marker %s)" % (
            len(out), _VALGRIND_DESELECT_SHORT[name], name))
    config._valgrind_deselected = lines
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        for line in lines:
            tr.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    _stop_everything()
    if _DIRECT_PENDING and session.exitstatus == 0:
        session.exitstatus = 1      # listed in the terminal summary
        exitstatus = 1
    for d in _TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    if exitstatus == 0:
        shutil.rmtree(_LOGDIR, ignore_errors=True)
    else:
        session.config._cachetoryd_logdir = _LOGDIR


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in getattr(config, "_valgrind_deselected", ()):
        terminalreporter.write_line(line)
    for path, started_by in sorted(_DIRECT_PENDING.items()):
        _VALGRIND_PROBLEMS.append((started_by, "cachetoryd started through %s was still running at the end "
                                   "(no leak check): %s" % (BIN, path)))
    _DIRECT_PENDING.clear()
    if _VALGRIND_PROBLEMS:
        terminalreporter.section("valgrind: %d report(s)" % len(_VALGRIND_PROBLEMS))
        for nodeid, first in _VALGRIND_PROBLEMS:
            terminalreporter.write_line("%s: %s" % (nodeid, first))
    logdir = getattr(config, "_cachetoryd_logdir", None)
    if logdir:
        terminalreporter.write_line("daemon logs kept in %s" % logdir)


def pytest_report_header(config):
    if target_mode():
        return "cachetoryd integration: TARGET MODE against %s (special daemons: %s)" % (TARGET, REDIS_SERVER)
    if VALGRIND:
        return "cachetoryd integration: daemon %s under %s (SLOW=%g)" % (DAEMON_BIN, " ".join(VALGRIND_ARGV), SLOW)
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
    setattr(item, "_cachetoryd_rep_" + rep.when, rep)
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

    def __call__(self, nofile=None, cwd=None, config_file=None, env=None, **options):
        d = spawn_daemon(options, nofile=nofile, cwd=cwd, stop_list=self.started, config_file=config_file,
                         env=env)
        node = self.request.node
        if isinstance(node, pytest.Item):
            d.touched_by.add(node.nodeid)
        return d

    def stop_all(self):
        for d in self.started:
            d.stop()
        _fail_on_sanitizer_reports(self.started, _test_failed(self.request.node), self.request.node)


def _test_failed(node):
    """True if node is a test whose setup or call has failed (pytest_runtest_makereport notes it)."""
    return any(getattr(getattr(node, "_cachetoryd_rep_" + when, None), "failed", False)
               for when in ("setup", "call"))


def _fail_on_sanitizer_reports(daemons, test_failed=False, node=None):
    """Fail (at teardown) for sanitizer reports of daemons that were still running when stopped: leaks
    found at exit, or errors that did not abort. A daemon that died earlier already failed the test
    that was using it, with its log in the report. Under VALGRIND=1, every daemon's valgrind findings
    not reported yet, and a log without a final summary (that daemon was killed), fail as well."""
    reports = []
    vg = []
    for d in daemons:
        r = d.valgrind_problem(test_failed)
        if r:
            vg.append(r)
            reports.append("%s\n%s" % (d.status_text(), r))
        if d.died_before_stop:
            continue
        r = d.sanitizer_report()
        if r:
            reports.append("sanitizer report in the daemon's log:\n%s\n%s" % (d.status_text(), r))
    for r in vg:
        _VALGRIND_PROBLEMS.append((node.nodeid if node is not None else "?", r.splitlines()[0]))
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


_DIRECT_PENDING = {}    # valgrind logs of wrapper-started daemons not checked yet: path -> test that started it
_DIRECT_SEEN = set()


def _check_direct_daemons(node, nodeid):
    """Fail node's teardown for the valgrind logs of the daemons started through the wrapper (BIN) that
    have exited since the last check; a new log is put down to the test nodeid."""
    for path in _direct_logs():
        if path not in _DIRECT_SEEN:
            _DIRECT_SEEN.add(path)
            _DIRECT_PENDING[path] = nodeid
    failed = _test_failed(node)
    reports = []
    for path, started_by in sorted(_DIRECT_PENDING.items()):
        pid = _direct_logs()[path]
        if _running(pid):
            continue
        del _DIRECT_PENDING[path]
        what = "cachetoryd pid %d (started by %s)" % (pid, "the test" if started_by == node.nodeid else started_by)
        text, _ = valgrind_problem(path, exited=True, test_failed=failed, what=what)
        if text:
            reports.append(text)
    if reports:
        _valgrind_fail(node, reports)


@pytest.fixture(autouse=True)
def _valgrind_direct_daemons(request):
    """VALGRIND=1: after a test, the valgrind logs of the daemons started through the wrapper by the test
    itself. Autouse, so it is torn down after the test's own fixtures have stopped those daemons."""
    yield
    if VALGRIND and TARGET is None:
        _check_direct_daemons(request.node, request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def _valgrind_direct_daemons_module(request):
    """The same at the end of a module, after its module-scoped fixtures have stopped their daemons."""
    yield
    if VALGRIND and TARGET is None:
        _check_direct_daemons(request.node, request.node.nodeid)


def _direct_logs():
    """{path: pid} of the valgrind logs written through the wrapper."""
    pattern = re.compile(re.escape(os.path.basename(_DIRECT_LOG)).replace("%p", r"(\d+)") + "$")
    out = {}
    for f in os.listdir(_LOGDIR):
        m = pattern.match(f)
        if m:
            out[os.path.join(_LOGDIR, f)] = int(m.group(1))
    return out


def _running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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
def server(request):
    h = _ServerHolder()
    yield h
    for d in h.started:
        d.stop()
    _fail_on_sanitizer_reports(h.started, node=request.node)


@pytest.fixture
def srv(server, request):
    d = server.get()
    d.touched_by.add(request.node.nodeid)
    with d.conn() as c:
        r = c.cmd("FLUSHALL")
        assert r == "OK", "FLUSHALL before the test replied %r" % (r,)
    yield d
    d.close_conns()
    r = d.valgrind_problem()           # memory errors while this test used the module's daemon
    if r:
        _valgrind_fail(request.node, ["%s\n%s" % (r, d.status_text())])


@pytest.fixture
def c(srv):
    return srv.conn()

