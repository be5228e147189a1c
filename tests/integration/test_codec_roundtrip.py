"""Round trips through the daemon, with redis-py and with redis-cli, for every codec and several chains:
empty values, binary values with NUL bytes, values of several MB (random and compressible). What the
backend holds is checked to be the chain's format (cachetory decodes it to the value)."""
import subprocess

import pytest
import redis

from test_codec_support import is_utf8, CTRL, DaemonPool, conn, py_decode, random_bytes, text_value

pytestmark = pytest.mark.needs_cachetoryd

RANDOM_5MB = random_bytes(5 << 20, 31)
TEXT_5MB = text_value(5 << 20, 32)

SMALL = {
    "empty": b"",
    "nul_binary": b"\x00\x00" + bytes(range(256)) * 3 + b"\x00",
    "crlf": b"\r\n$5\r\n*1\r\n\r\n",
    "controls": CTRL,
    "utf8": "Grüße 日本語 😀".encode(),
    "1mb_text": text_value(1 << 20, 33),
}

URLS = ["null://", "zlib://", "zstd://", "zstd://?compression-level=-3", "msgpack://", "json://", "pickle://",
        "pickle://?pickle-protocol=2", "pickle://?pickle-protocol=3", "pickle://?pickle-protocol=4",
        "msgpack+zstd://", "json+zlib://", "pickle+zstd://", "msgpack+zlib://?compression-level=1",
        "json+zstd://?compression-threads=2", "zstd://?compression-threads=2"]
# the 5 MB values go through these (every layer is covered at least once)
BIG_URLS = ["zlib://", "zstd://", "msgpack+zstd://", "json+zlib://", "pickle+zstd://"]



def _values(url):
    vals = dict(SMALL)
    if url in BIG_URLS:
        vals["5mb_random"] = RANDOM_5MB
        vals["5mb_text"] = TEXT_5MB
    if "json" in url:
        vals = {k: v for k, v in vals.items() if is_utf8(v)}
    return vals


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


def _redis(d):
    return redis.Redis(host=d.host, port=d.port, socket_timeout=30)


@pytest.mark.parametrize("url", URLS)
def test_redis_py_round_trip(pool, url):
    d = pool.get(url)
    r = _redis(d)
    try:
        vals = _values(url)
        for name, v in vals.items():
            assert r.set("rt:" + name, v) is True
        for name, v in vals.items():
            got = r.get("rt:" + name)
            assert got == v, "%s: %s: GET returned %d bytes, expected %d" % (url, name, len(got or b""), len(v))
            assert r.strlen("rt:" + name) == len(v)
        with conn(d) as c:
            for name, v in vals.items():
                raw = c.cmd("CACHE", "RAWGET", "rt:" + name)
                assert py_decode(url, raw) == v, "%s: %s: the stored bytes do not decode to the value" % (url, name)
                if url != "null://" and name != "empty" and len(v) > 1000:
                    assert raw != v
    finally:
        r.close()


CLI_BIG_URLS = ["zstd://", "json+zlib://", "pickle+zstd://"]


@pytest.mark.parametrize("url", URLS)
def test_redis_cli_round_trip(pool, url, tmp_path):
    d = pool.get(url)
    vals = {k: v for k, v in _values(url).items() if k in ("empty", "nul_binary", "crlf", "controls", "utf8")}
    if url in CLI_BIG_URLS:
        vals["5mb"] = TEXT_5MB if "json" in url else RANDOM_5MB
    cli = ["redis-cli", "-h", d.host, "-p", str(d.port)]
    for name, v in vals.items():
        f = tmp_path / name
        f.write_bytes(v)
        with open(f, "rb") as inp:
            out = subprocess.run(cli + ["-x", "SET", "cli:" + name], stdin=inp, capture_output=True, timeout=30)
        assert out.returncode == 0 and out.stdout.strip() == b"OK", (name, out.stdout[:200], out.stderr[:200])
        out = subprocess.run(cli + ["--raw", "GET", "cli:" + name], capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr[:200]
        assert out.stdout == v + b"\n", "%s: redis-cli GET printed %d bytes, expected %d + newline" % (
            name, len(out.stdout), len(v))
    out = subprocess.run(cli + ["STRLEN", "cli:utf8"], capture_output=True, timeout=30)
    assert out.stdout.strip() in (b"%d" % len(vals["utf8"]), b"(integer) %d" % len(vals["utf8"])), out.stdout
    with conn(d) as c:
        for name, v in vals.items():
            assert py_decode(url, c.cmd("CACHE", "RAWGET", "cli:" + name)) == v


def test_redis_py_pipeline_mixed_sizes(pool):
    d = pool.get("msgpack+zstd://")
    r = _redis(d)
    try:
        p = r.pipeline(transaction=False)
        vals = [b"", b"x", RANDOM_5MB[:300000], b"\x00" * 10, TEXT_5MB[:2000000], b"tail"]
        for i, v in enumerate(vals):
            p.set("pl:%d" % i, v)
            p.get("pl:%d" % i)
        res = p.execute()
        for i, v in enumerate(vals):
            assert res[2 * i] is True
            assert res[2 * i + 1] == v, "pipeline reply %d" % (2 * i + 1)
        # MULTI/EXEC keeps the codec steps on the loop thread: same results
        p = r.pipeline(transaction=True)
        for i, v in enumerate(vals):
            p.set("tx:%d" % i, v)
            p.get("tx:%d" % i)
        res = p.execute()
        for i, v in enumerate(vals):
            assert res[2 * i + 1] == v
    finally:
        r.close()
