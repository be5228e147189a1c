"""Configuration: cachetoryd's INI file and command-line overrides (cachetoryd only), and options that
redis-server has too (databases, timeout)."""
import subprocess
import time

import pytest

from conftest import BIN, REPO
from helpers import Err


@pytest.mark.needs_cachetoryd
def test_config_file_values(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[server]\ndatabases = 4\nmaxclients = 77\n\n[cache]\nmaxmemory = 5mb\n"
                    "maxmemory-policy = volatile-ttl\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"5242880"]
    assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"volatile-ttl"]
    assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"77"]
    assert c.cmd("SELECT", 3) == "OK"
    assert c.cmd("SELECT", 4) == Err("ERR DB index is out of range")


@pytest.mark.needs_cachetoryd
def test_command_line_overrides_file(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[cache]\nmaxmemory = 5mb\n")
    d = start_daemon(config_file=conf, maxmemory="6mb")
    assert d.conn().cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"6291456"]


@pytest.mark.needs_cachetoryd
def test_shipped_config_file_starts(start_daemon):
    d = start_daemon(config_file=REPO / "conf" / "cachetoryd.conf")
    c = d.conn()
    assert c.cmd("SET", "k", "v") == "OK"
    assert c.cmd("GET", "k") == b"v"


@pytest.mark.needs_cachetoryd
def test_bad_config_file_is_refused(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nport = 1234\nno-such-option = 1\n")
    p = subprocess.run([str(BIN), str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10, cwd=str(tmp_path))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 1, out
    assert "bad.conf:3" in out and "no-such-option" in out, out


@pytest.mark.needs_cachetoryd
def test_test_config_flag(tmp_path):
    p = subprocess.run([str(BIN), "--test-config", str(REPO / "conf" / "cachetoryd.conf")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    assert p.returncode == 0, p.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("[cache]\nmaxmemory = lots\n")
    p = subprocess.run([str(BIN), "--test-config", str(bad)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    assert p.returncode == 1, p.stdout
    assert b"maxmemory" in p.stdout


def test_databases_option(start_daemon):
    d = start_daemon(databases=2)
    c = d.conn()
    assert c.cmd("SELECT", 1) == "OK"
    assert c.cmd("SELECT", 2) == Err("ERR DB index is out of range")


def test_idle_timeout_closes_clients(start_daemon):
    d = start_daemon(timeout=1)
    idle = d.conn()
    assert idle.cmd("PING") == "PONG"
    busy = d.conn()
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 6:
        assert busy.cmd("PING") == "PONG"       # an active client is kept
        if idle.is_closed(wait=0.2):
            closed = True
            break
    assert closed, "idle client still connected 6 s after timeout 1"
    assert time.monotonic() - t0 >= 0.9
    assert busy.cmd("PING") == "PONG"
