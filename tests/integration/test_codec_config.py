"""Serializer URLs: an unknown scheme, an unknown parameter or a value out of range makes the daemon exit
with status 1 and a message on stderr that names the offending part; every valid form starts."""
import os
import socket
import subprocess
from pathlib import Path

import pytest

import conftest
from test_codec_support import conn

pytestmark = pytest.mark.needs_cachetoryd

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CACHETORYD_BIN") or (REPO / "build" / "cachetoryd"))
if not BIN.is_absolute():
    BIN = (REPO / BIN).resolve()


def _free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _run_bad(url, *extra):
    """Start the daemon with --serializer url; it must exit by itself. Returns (status, stderr)."""
    argv = [str(BIN), "--bind", "127.0.0.1", "--port", str(_free_port()), "--serializer", url] + list(extra)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        out, err = p.communicate(timeout=5 * conftest.SLOW)
    except subprocess.TimeoutExpired:
        p.kill()                        # the process we started, by its handle
        p.communicate()
        pytest.fail("the daemon accepted --serializer %r and kept running" % url)
    return p.returncode, (out + err).decode("utf-8", "replace")


BAD = [
    ("bogus://", ["bogus"]),
    ("zstd+bogus://", ["bogus"]),
    ("zstd+lz4://?compression-level=3", ["lz4"]),
    ("zstd://?compresion-level=3", ["compresion-level"]),
    ("zstd://?level=3", ["level"]),
    ("json://?pickle-protocoll=2", ["pickle-protocoll"]),
    ("zlib://?compression-level=10", ["compression-level", "10"]),
    ("zlib://?compression-level=-2", ["compression-level", "-2"]),
    ("zlib://?compression-level=abc", ["compression-level", "abc"]),
    ("zstd://?compression-level=23", ["compression-level", "23"]),
    ("zstd://?compression-level=-131073", ["compression-level", "-131073"]),
    ("zstd://?compression-level=3x", ["compression-level", "3x"]),
    ("zstd://?compression-threads=-1", ["compression-threads", "-1"]),
    ("pickle://?pickle-protocol=1", ["pickle-protocol", "1"]),
    ("pickle://?pickle-protocol=6", ["pickle-protocol", "6"]),
    ("pickle://?pickle-protocol=0", ["pickle-protocol", "0"]),
    ("zstd://?strict=maybe", ["strict", "maybe"]),
    ("zstd://?compression-min-size=lots", ["compression-min-size", "lots"]),
    ("zstd://?max-decoded-size=0", ["max-decoded-size"]),
    # a short value stored as it is could be mistaken for a serialized one (b"5" is the msgpack int 53)
    ("msgpack://?compression-min-size=100", ["compression-min-size", "compressor"]),
    ("json://?compression-min-size=100", ["compression-min-size", "compressor"]),
    ("zstd+pickle://?compression-min-size=100", ["compression-min-size", "compressor"]),
]


@pytest.mark.parametrize("url,needles", BAD, ids=[u for u, _ in BAD])
def test_bad_serializer_url_exits_1_naming_it(url, needles):
    if not BIN.exists():
        pytest.fail("daemon binary %s does not exist" % BIN)
    status, text = _run_bad(url)
    assert status == 1, "exit status %r for --serializer %r; output:\n%s" % (status, url, text)
    assert text.strip(), "no message for --serializer %r" % url
    for n in needles:
        assert n in text, "the message for --serializer %r does not name %r:\n%s" % (url, n, text)


def test_bad_serializer_in_config_file(tmp_path):
    cfg = tmp_path / "c.conf"
    cfg.write_text("serializer = zstd://?compression-level=99\n")
    argv = [str(BIN), str(cfg), "--bind", "127.0.0.1", "--port", str(_free_port())]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        out, err = p.communicate(timeout=5 * conftest.SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("the daemon accepted serializer = zstd://?compression-level=99 in a config file")
    text = (out + err).decode("utf-8", "replace")
    assert p.returncode == 1, text
    assert "compression-level" in text and "99" in text, text


GOOD = ["null://", "noop://", "zstandard://", "zstd://?compression-level=-5", "zstd://?compression-level=22",
        "zstd://?compression-level=-131072", "zlib://?compression-level=-1", "zlib://?compression-level=0",
        "msgpack+zstd://?compression-level=3&compression-threads=2", "pickle://?pickle-protocol=2",
        "json+zlib://?compression-level=9&strict=yes&compression-min-size=1kb&max-decoded-size=64mb",
        "noop+zstd://", "zstd://?strict=no", "pickle+zstd://?pickle-protocol=4&compression-level=19"]


@pytest.mark.parametrize("url", GOOD)
def test_valid_serializer_urls_start(start_daemon, url):
    d = start_daemon(serializer=url)
    with conn(d) as c:
        assert c.cmd("SET", "k", "value") == "OK"
        assert c.cmd("GET", "k") == b"value"
    assert d.info("cache")["cache_serializer"] == url
