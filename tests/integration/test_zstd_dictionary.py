"""zstd://?dictionary=PATH against the zstd CLI and between daemons:
  - a dictionary made by `zstd --train` on a fixed, generated set of small JSON documents; values stored by
    cachetoryd (CACHE RAWGET) decode with `zstd -D dict -d`, and carry the dictionary's ID;
  - frames made by `zstd -D dict` (checksum on, as the CLI writes them), plain `zstd` frames (cachetory's,
    without a dictionary) read back through GET;
  - a frame made with another dictionary: returned as stored (mixed mode) or an error naming the dictionary
    ID (strict=yes), and counted in INFO cache;
  - the stored size with the dictionary is a fraction of plain zstd's;
  - a file that is not a dictionary stops the daemon at start with a message naming the file;
  - two daemons in front of one Redis with the same dictionary read each other's values."""
import os
import subprocess

import pytest

import conftest
from helpers import Err
from test_codec_config import _run_bad
from upstream_support import proxy, upstreams  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

ZSTD = "/usr/bin/zstd"


def doc(seed, i):
    x = (seed * 2654435761 + i * 40503) & 0xffffffff
    cities = ["Paris", "Berlin", "Madrid", "Rome", "Lisbon"]
    roles = ["admin", "editor", "viewer", "owner"]
    return ('{"id": %d, "name": "user%d", "email": "user%d@example.com", "active": %s, "role": "%s", '
            '"city": "%s", "zip": "%05d", "score": %d.%02d}' % (
                i, i, i, "true" if x & 1 else "false", roles[(x >> 3) % 4], cities[(x >> 7) % 5],
                (x >> 5) % 100000, (x >> 11) % 1000, (x >> 17) % 100)).encode()


def train(tmp, name, seed):
    d = os.path.join(tmp, "samples-" + name)
    os.mkdir(d)
    for i in range(1200):
        with open(os.path.join(d, "%d.json" % i), "wb") as f:
            f.write(doc(seed, i))
    out = os.path.join(tmp, name + ".dict")
    files = [os.path.join(d, f) for f in sorted(os.listdir(d))]
    subprocess.run([ZSTD, "-q", "--train", "--maxdict=16384", "-o", out] + files, check=True, timeout=60)
    return out


def zstd_cli(args, data):
    p = subprocess.run([ZSTD, "-q", "-c"] + args, input=data, stdout=subprocess.PIPE, check=True, timeout=30)
    return p.stdout


@pytest.fixture(scope="module")
def dicts(tmp_path_factory):
    if not os.access(ZSTD, os.X_OK):
        pytest.fail("the zstd CLI (Debian package zstd, in scripts/install-deps.sh) is not installed")
    tmp = str(tmp_path_factory.mktemp("dict"))
    return {"a": train(tmp, "a", 1), "b": train(tmp, "b", 2), "tmp": tmp}


def test_values_decode_with_the_zstd_cli(start_daemon, dicts):
    d = start_daemon(serializer="zstd://?dictionary=" + dicts["a"])
    c = d.conn()
    v = doc(9, 5)
    assert c.cmd("SET", "k", v) == "OK"
    raw = c.cmd("CACHE", "RAWGET", "k")
    assert raw[:4] == b"\x28\xb5\x2f\xfd" and len(raw) < len(v) // 2, raw
    assert zstd_cli(["-D", dicts["a"], "-d"], raw) == v
    # without the dictionary the CLI cannot: the frame names it
    p = subprocess.run([ZSTD, "-q", "-d", "-c"], input=raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert p.returncode != 0 and b"ictionary" in p.stderr, p.stderr
    assert c.cmd("GET", "k") == v
    info = d.info("cache")
    assert int(info["cache_zstd_dictionary_id"]) > 0
    assert info["cache_zstd_dictionary_size"] == str(os.path.getsize(dicts["a"]))


def test_frames_from_the_cli_read_back(start_daemon, dicts):
    d = start_daemon(serializer="zstd://?dictionary=" + dicts["a"])
    c = d.conn()
    v = doc(4, 77)
    assert c.cmd("CACHE", "RAWSET", "with", zstd_cli(["-D", dicts["a"]], v)) == "OK"
    assert c.cmd("CACHE", "RAWSET", "plain", zstd_cli(["-3", "--no-check"], v)) == "OK"
    assert c.cmd("GET", "with") == v
    assert c.cmd("GET", "plain") == v
    assert c.cmd("MGET", "with", "plain") == [v, v]


def test_other_dictionary_is_never_a_wrong_value(start_daemon, dicts):
    v = doc(3, 11)
    frame = zstd_cli(["-D", dicts["b"]], v)
    d = start_daemon(serializer="zstd://?dictionary=" + dicts["a"])
    c = d.conn()
    assert c.cmd("CACHE", "RAWSET", "k", frame) == "OK"
    assert c.cmd("GET", "k") == frame                  # mixed mode: as stored
    assert d.info("cache")["cache_zstd_unknown_dictionary_frames"] == "1"
    s = start_daemon(serializer="zstd://?strict=yes&dictionary=" + dicts["a"])
    cs = s.conn()
    assert cs.cmd("CACHE", "RAWSET", "k", frame) == "OK"
    r = cs.cmd("GET", "k")
    assert isinstance(r, Err) and "dictionary ID" in str(r), r


def test_dictionary_shrinks_stored_values(start_daemon, dicts):
    sizes = {}
    for name, url in (("plain", "zstd://"), ("dict", "zstd://?dictionary=" + dicts["a"])):
        d = start_daemon(serializer=url)
        c = d.conn()
        for i in range(300):
            assert c.cmd("SET", "k%d" % i, doc(11, i)) == "OK"
        sizes[name] = sum(len(c.cmd("CACHE", "RAWGET", "k%d" % i)) for i in range(300))
    raw = sum(len(doc(11, i)) for i in range(300))
    assert sizes["dict"] * 2 < sizes["plain"], (sizes, raw)
    assert sizes["dict"] * 3 < raw, (sizes, raw)


def test_bad_dictionary_stops_the_daemon(dicts):
    junk = os.path.join(dicts["tmp"], "junk.dict")
    with open(junk, "wb") as f:
        f.write(bytes(range(256)) * 8)
    rc, text = _run_bad("zstd://?dictionary=" + junk)
    assert rc == 1 and junk in text and "not a zstd dictionary" in text, text
    rc, text = _run_bad("zstd://?dictionary=" + junk + "-missing")
    assert rc == 1 and "missing" in text, text
    rc, text = _run_bad("zlib://?dictionary=" + dicts["a"])
    assert rc == 1 and "only zstd" in text, text


def test_two_daemons_share_values(start_daemon, upstreams, dicts):  # noqa: F811
    up = upstreams()
    url = "zstd://?dictionary=" + dicts["a"]
    a = proxy(start_daemon, up, url).conn()
    b = proxy(start_daemon, up, url).conn()
    vals = {"u:%d" % i: doc(21, i) for i in range(50)}
    for k, v in vals.items():
        assert a.cmd("SET", k, v) == "OK"
    assert b.cmd("MGET", *vals.keys()) == list(vals.values())
    assert b.cmd("SET", "from-b", doc(22, 1)) == "OK"
    assert a.cmd("GET", "from-b") == doc(22, 1)


def test_cache_dict_list_info_export(start_daemon, dicts):
    d = start_daemon(serializer="zstd://?dictionary=" + dicts["a"])
    c = d.conn()
    ids = c.cmd("CACHE", "DICT", "LIST")
    assert isinstance(ids, list) and len(ids) == 1 and ids[0] == int(d.info("cache")["cache_zstd_dictionary_id"])
    info = c.cmd("CACHE", "DICT", "INFO", str(ids[0]))
    assert info == [b"id", ids[0], b"size", os.path.getsize(dicts["a"]), b"encodes", 1], info
    exported = c.cmd("CACHE", "DICT", "EXPORT", str(ids[0]))
    with open(dicts["a"], "rb") as f:
        assert exported == f.read()
    # the exported dictionary decodes what the daemon stored (as a Python program would with it)
    path = os.path.join(dicts["tmp"], "exported.dict")
    with open(path, "wb") as f:
        f.write(exported)
    v = doc(31, 3)
    assert c.cmd("SET", "k", v) == "OK"
    assert zstd_cli(["-D", path, "-d"], c.cmd("CACHE", "RAWGET", "k")) == v
    for bad in (["CACHE", "DICT", "INFO", "12345"], ["CACHE", "DICT", "EXPORT", "x"], ["CACHE", "DICT", "BOGUS"]):
        r = c.cmd(*bad)
        assert isinstance(r, Err), (bad, r)
    plain = start_daemon(serializer="zstd://").conn()
    assert plain.cmd("CACHE", "DICT", "LIST") == []
