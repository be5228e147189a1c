"""Shutdown while a codec job runs on the thread pool: a level-19 zstd SET of several MB takes seconds
there. SIGTERM waits for it (the job's value goes on to the backend and the client gets its reply), then
frees the chain; a second SIGTERM stops at once without touching what the job still uses. Either way
the daemon exits 0 with no memory error (run with CACHETORYD_BIN=build-address/cachetoryd for ASan)."""
import random
import signal
import time

import pytest

pytestmark = pytest.mark.needs_cachetoryd


def slow_value(n_words=900_000):
    """Text that zstd -19 compresses slowly: a few MB of words from a random vocabulary."""
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    return b" ".join(rng.choice(words) for _ in range(n_words))


def start_slow_set(start_daemon, value=None):
    # hz 500: the loop wakes every 2 ms, so a wait counted in loop turns (not in jobs) runs out early
    d = start_daemon(serializer="zstd://?compression-level=19", hz="500")
    c = d.conn(timeout=120)
    assert c.cmd("PING") == "PONG"
    value = value or VALUE
    c.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value))
    time.sleep(0.5)                     # the job is running
    return d, c


VALUE = slow_value()


def finish(d, timeout):
    rc = d.proc.wait(timeout)
    report = d.sanitizer_report()
    assert report is None, report
    return rc


def test_sigterm_waits_for_a_running_codec_job(start_daemon):
    d, c = start_slow_set(start_daemon)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert c.read_reply() == "OK"       # the value was encoded and stored before the daemon went
    assert finish(d, 120) == 0
    with open(d.log_path) as f:
        log = f.read()
    assert "bye" in log, log[-2000:]
    print("shutdown took %.1fs" % (time.monotonic() - t0))


def test_sigterm_waits_for_the_job_of_a_client_gone(start_daemon):
    """The client left: the drain has no one to wait for and stops the loop at once; the job still runs
    with the chain and goes on to the backend, so shutdown waits for it before freeing either. The value
    is twice the others: its job outlasts the drain's 5 s, so the wait after the loop stopped is what
    keeps the chain alive."""
    d, c = start_slow_set(start_daemon, VALUE + b" " + VALUE[::-1])
    c.close()
    time.sleep(0.1)
    d.proc.send_signal(signal.SIGTERM)
    assert finish(d, 120) == 0
    with open(d.log_path) as f:
        log = f.read()
    assert "waiting for 1 codec jobs" in log and "bye" in log, log[-2000:]


def test_second_sigterm_stops_without_waiting_for_the_job(start_daemon):
    d, c = start_slow_set(start_daemon)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert finish(d, 30) == 0
    assert time.monotonic() - t0 < 3.0, "a second SIGTERM should stop at once"
    with open(d.log_path) as f:
        log = f.read()
    assert "codec job" in log, log[-2000:]
