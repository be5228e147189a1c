"""zstd://?dictionary=auto: dictionaries cachetoryd trains from the values written.
  - memory://: after enough writes a dictionary is trained and adopted; later values' frames name its ID,
    read back equal and are a fraction of plain zstd's size; values written before it still read back;
  - CACHE DICT LIST / INFO / EXPORT (the export decodes stored values with `zstd -D`), TRAIN (now, with a
    size), LOAD (a dictionary from `zstd --train`; bytes that are not one are refused);
  - dictionary-dir: trained dictionaries written as <cache>-<id>.dict and loaded at start (the newest
    file's encodes), so a restarted daemon decodes old frames and compresses without training again;
  - redis:// backend: the dictionary is stored upstream under <dictionary-key-prefix><id> (SET NX) before
    a value uses it, and a second daemon fetches it when it reads such a value (a read-modify-write or a
    transaction does not wait for the fetch: refused until the dictionary is there); a damaged dictionary
    key never makes a wrong value: the stored bytes (mixed), an error (strict), read-modify-writes
    refused, also for a dictionary cut short with its header intact (the frames' checksum fails);
  - values zstd cannot shrink: the dictionary trained from them is not adopted;
  - two daemons training at once in front of one Redis read each other's values;
  - a frame naming a dictionary nobody has: the stored bytes and a counter (mixed), an error naming the ID
    (strict);
  - bad dictionary=auto parameters stop the daemon at start with the reason."""
import os
import random
import subprocess
import time

import pytest

import conftest
from helpers import Err
from test_codec_config import _run_bad
from test_codec_support import ZSTD_MAGIC, zstd_frame_header
from test_zstd_dictionary import ZSTD, dicts, doc, zstd_cli  # noqa: F401  (dicts: fixture)
from upstream_support import proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd

# small enough that a few hundred documents fill the sample and training takes milliseconds
AUTO = "zstd://?dictionary=auto&dictionary-size=8kb&dictionary-sample-size=128kb"
PREFIX = "cachetoryd:zstd-dict:"
WRITES_MAX = 4000           # documents written at most while waiting for a dictionary
DEADLINE = 30.0 * conftest.SLOW     # seconds to wait for a training
WAIT = 5.0 * conftest.SLOW          # seconds for a fetch, a file or a log line to appear


def bigdoc(seed, i):
    """A JSON document of about 300-800 bytes: two to four of test_zstd_dictionary's user records."""
    return b'{"page": %d, "users": [' % i + b", ".join(doc(seed, i * 4 + j) for j in range(2 + i % 3)) + b"]}"


def zinfo(d):
    """INFO cache's zstd dictionary fields (cache_zstd_ removed): counters as int, ratios as float."""
    out = {}
    for k, v in d.info("cache").items():
        if k.startswith("cache_zstd_"):
            out[k[len("cache_zstd_"):]] = float(v) if "." in v else int(v)
    return out


def dict_id(raw):
    """The dictionary ID a stored zstd frame names (0: none)."""
    assert raw[:4] == ZSTD_MAGIC, "not a zstd frame: %r" % raw[:16]
    return zstd_frame_header(raw)["dict_id"]


def write_until_trained(d, c, value, prefix="k", start=0, step=50):
    """SET value(i) under prefix+i, from start on, until a training has started (INFO polled every step
    writes; at most WRITES_MAX values), then wait for it to end without writing more (so that no second
    training follows at once), bounded by DEADLINE. Returns (INFO's zstd fields, next i)."""
    deadline = time.monotonic() + DEADLINE
    i = start
    while True:
        z = zinfo(d)
        if z["dictionary_training"] or z["dictionary_trainings"]:
            break
        assert time.monotonic() < deadline and i - start < WRITES_MAX, "no training after %d writes: %r" % (
            i - start, z)
        for _ in range(step):
            assert c.cmd("SET", "%s%d" % (prefix, i), value(i)) == "OK"
            i += 1
    while z["dictionary_training"]:
        assert time.monotonic() < deadline, "training still under way after %.0f s: %r" % (DEADLINE, z)
        time.sleep(0.02)
        z = zinfo(d)
    return z, i


def write_until_dictionary(d, c, seed, prefix="k"):
    """write_until_trained with bigdoc(seed, i), expecting the dictionary to be adopted. Returns (its
    ID, next i)."""
    z, i = write_until_trained(d, c, lambda i: bigdoc(seed, i), prefix)
    assert z["dictionary_id"] and z["dictionary_trainings"] == 1, z
    return z["dictionary_id"], i


def save(tmp, name, data):
    path = os.path.join(str(tmp), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def log_has(d, text):
    return wait_for(lambda: text in d.log_tail(200000), WAIT)


# ---- memory:// ------------------------------------------------------------------------------------------

def test_trained_dictionary_is_adopted_and_shrinks_values(start_daemon):
    d = start_daemon(serializer=AUTO)
    c = d.conn()
    z = zinfo(d)
    assert z["dictionary_auto"] == 1 and z["dictionary_id"] == 0 and z["dictionaries"] == 0, z
    did, n = write_until_dictionary(d, c, 1)
    assert did >= 32768, did                      # ZDICT's IDs are outside zstd's reserved range
    z = zinfo(d)
    assert z["dictionaries"] == 1 and z["dictionary_trainings"] == 1 and z["dictionary_trainings_unused"] == 0, z
    assert z["dictionary_size"] <= 8192 and 0 < z["dictionary_trained_ratio"] < 0.9 * 0.5, z
    assert log_has(d, "zstd dictionary %d" % did)
    # values written before the dictionary: plain frames, still read back
    first = c.cmd("CACHE", "RAWGET", "k0")
    assert dict_id(first) == 0 and c.cmd("GET", "k0") == bigdoc(1, 0)
    # values written after: frames naming it, equal on the way back, single and MGET
    keys = ["after:%d" % i for i in range(200)]
    vals = [bigdoc(2, i) for i in range(200)]
    for k, v in zip(keys, vals):
        assert c.cmd("SET", k, v) == "OK"
    raws = [c.cmd("CACHE", "RAWGET", k) for k in keys]
    assert all(dict_id(r) == did for r in raws), {dict_id(r) for r in raws}
    assert c.cmd("MGET", *keys) == vals
    assert all(c.cmd("GET", k) == v for k, v in zip(keys[:20], vals[:20]))
    assert c.cmd("GET", "k%d" % (n - 1)) == bigdoc(1, n - 1)
    # the same documents through plain zstd://
    p = start_daemon(serializer="zstd://").conn()
    for k, v in zip(keys, vals):
        assert p.cmd("SET", k, v) == "OK"
    plain = sum(len(p.cmd("CACHE", "RAWGET", k)) for k in keys)
    with_dict = sum(len(r) for r in raws)
    assert with_dict * 2 < plain, (with_dict, plain, sum(map(len, vals)))
    assert zinfo(d)["unknown_dictionary_frames"] == 0


def test_cache_dict_commands(start_daemon, dicts, tmp_path):  # noqa: F811
    d = start_daemon(serializer=AUTO)
    c = d.conn()
    # nothing sampled yet: nothing to train from
    r = c.cmd("CACHE", "DICT", "TRAIN")
    assert isinstance(r, Err) and "not enough values sampled" in r, r
    did, n = write_until_dictionary(d, c, 3)
    assert c.cmd("CACHE", "DICT", "LIST") == [did]
    info = c.cmd("CACHE", "DICT", "INFO", str(did))
    assert info == [b"id", did, b"size", zinfo(d)["dictionary_size"], b"encodes", 1], info
    exported = c.cmd("CACHE", "DICT", "EXPORT", str(did))
    assert isinstance(exported, bytes) and len(exported) == info[3]
    path = save(tmp_path, "auto.dict", exported)
    v = bigdoc(4, 1)
    assert c.cmd("SET", "v", v) == "OK"
    raw = c.cmd("CACHE", "RAWGET", "v")
    assert dict_id(raw) == did
    assert zstd_cli(["-D", path, "-d"], raw) == v
    # without it the CLI cannot: the frame needs the dictionary
    p = subprocess.run([ZSTD, "-q", "-d", "-c"], input=raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert p.returncode != 0, p.stdout

    # TRAIN now, with another size, from what was sampled since: a second dictionary, and new values use it
    for i in range(n, n + 300):
        assert c.cmd("SET", "k%d" % i, bigdoc(5, i)) == "OK"
    did2 = c.cmd("CACHE", "DICT", "TRAIN", "4096")
    assert isinstance(did2, int) and did2 not in (0, did), did2
    assert c.cmd("CACHE", "DICT", "LIST") == [did, did2]
    assert c.cmd("CACHE", "DICT", "INFO", str(did2)) == [b"id", did2, b"size", 4096, b"encodes", 1]
    assert c.cmd("CACHE", "DICT", "INFO", str(did))[-1] == 0
    z = zinfo(d)
    assert z["dictionary_id"] == did2 and z["dictionaries"] == 2 and z["dictionary_trainings"] == 2, z
    assert c.cmd("SET", "v2", bigdoc(4, 2)) == "OK"
    assert dict_id(c.cmd("CACHE", "RAWGET", "v2")) == did2
    assert c.cmd("MGET", "v", "v2") == [v, bigdoc(4, 2)]       # the first dictionary still decodes

    # LOAD: a dictionary made elsewhere is added and used; anything else is refused
    with open(dicts["a"], "rb") as f:
        ext = f.read()
    ext_id = int.from_bytes(ext[4:8], "little")
    assert c.cmd("CACHE", "DICT", "LOAD", str(ext_id), ext) == ext_id
    assert c.cmd("SET", "v3", doc(1, 7)) == "OK"
    raw3 = c.cmd("CACHE", "RAWGET", "v3")
    assert dict_id(raw3) == ext_id and zstd_cli(["-D", dicts["a"], "-d"], raw3) == doc(1, 7)
    assert c.cmd("CACHE", "DICT", "LIST") == [did, did2, ext_id]
    for bad in ([str(ext_id), b"\x00" * 64],                 # not a dictionary
                [str(ext_id), bytes(range(256)) * 8],
                [str(ext_id + 1), ext],                      # the ID given is not the dictionary's
                ["x", ext]):
        r = c.cmd("CACHE", "DICT", "LOAD", *bad)
        assert isinstance(r, Err), (bad[0], r)
    r = c.cmd("CACHE", "DICT", "LOAD", str(ext_id), ext[:64])   # header kept, tables cut off
    assert isinstance(r, Err) and "dictionary" in r, r
    assert c.cmd("CACHE", "DICT", "LIST") == [did, did2, ext_id]
    for bad in (["CACHE", "DICT", "TRAIN", "12"], ["CACHE", "DICT", "TRAIN", "x"],
                ["CACHE", "DICT", "TRAIN", str(2 << 20)], ["CACHE", "DICT", "INFO", "1"],
                ["CACHE", "DICT", "EXPORT", str(did + 1)]):
        r = c.cmd(*bad)
        assert isinstance(r, Err), (bad, r)
    # a serializer that does not train
    plain = start_daemon(serializer="zstd://").conn()
    r = plain.cmd("CACHE", "DICT", "TRAIN")
    assert isinstance(r, Err) and "dictionary=auto" in r, r
    r = plain.cmd("CACHE", "DICT", "LOAD", str(ext_id), ext)
    assert isinstance(r, Err), r


def test_dictionary_dir_survives_a_restart(start_daemon, tmp_path):
    ddir = str(tmp_path / "dicts")
    os.mkdir(ddir)
    d = start_daemon(serializer=AUTO, dictionary_dir=ddir)
    c = d.conn()
    did, n = write_until_dictionary(d, c, 6)
    f1 = os.path.join(ddir, "default-%d.dict" % did)
    assert wait_for(lambda: os.path.exists(f1), WAIT), os.listdir(ddir)
    with open(f1, "rb") as f:
        assert f.read() == c.cmd("CACHE", "DICT", "EXPORT", str(did))
    assert zinfo(d)["dictionaries_stored"] == 1
    v = bigdoc(7, 1)
    assert c.cmd("SET", "v", v) == "OK"
    raw = c.cmd("CACHE", "RAWGET", "v")
    assert dict_id(raw) == did
    # a second dictionary, then the first file made the newest: that one encodes after the restart
    for i in range(n, n + 300):
        assert c.cmd("SET", "k%d" % i, bigdoc(8, i)) == "OK"
    did2 = c.cmd("CACHE", "DICT", "TRAIN")
    assert isinstance(did2, int) and did2 not in (0, did), did2
    assert c.cmd("SET", "v2", bigdoc(7, 2)) == "OK"
    raw2 = c.cmd("CACHE", "RAWGET", "v2")
    assert dict_id(raw2) == did2
    f2 = os.path.join(ddir, "default-%d.dict" % did2)
    assert os.path.exists(f2), os.listdir(ddir)
    now = time.time()
    os.utime(f2, (now - 100, now - 100))
    os.utime(f1, (now, now))
    # files that are not this cache's dictionaries are skipped, and do not stop the daemon
    save(ddir, "default-1.dict", b"not a dictionary at all, only text" * 4)
    save(ddir, "other-%d.dict" % did, b"\x00" * 100)
    d.stop()

    d = start_daemon(serializer=AUTO, dictionary_dir=ddir)
    c = d.conn()
    z = zinfo(d)
    assert z["dictionaries"] == 2 and z["dictionary_id"] == did and z["dictionary_trainings"] == 0, z
    assert sorted(c.cmd("CACHE", "DICT", "LIST")) == sorted([did, did2])
    assert log_has(d, "default-1.dict")
    assert c.cmd("GET", "v") is None                  # memory:// starts empty
    assert c.cmd("CACHE", "RAWSET", "v", raw) == "OK"
    assert c.cmd("CACHE", "RAWSET", "v2", raw2) == "OK"
    assert c.cmd("MGET", "v", "v2") == [v, bigdoc(7, 2)]
    # new values use the loaded dictionary, with no training
    for i in range(20):
        assert c.cmd("SET", "n%d" % i, bigdoc(9, i)) == "OK"
        assert dict_id(c.cmd("CACHE", "RAWGET", "n%d" % i)) == did
    z = zinfo(d)
    assert z["dictionary_trainings"] == 0 and z["dictionary_training"] == 0 and z["unknown_dictionary_frames"] == 0, z


@pytest.mark.parametrize("url,text", [
    ("zstd://?dictionary=auto&dictionary-size=512", "dictionary-size '512': must be a size between 1024 and"),
    ("zstd://?dictionary=auto&dictionary-size=2mb", "dictionary-size '2mb': must be a size between"),
    ("zstd://?dictionary=auto&dictionary-sample-size=1kb", "dictionary-sample-size '1kb': must be a size"),
    ("zstd://?dictionary=auto&dictionary-size=16kb&dictionary-sample-size=64kb",
     "must be at least 8 times dictionary-size"),
    ("zstd://?dictionary=auto&dictionary-retrain-drift=0", "dictionary-retrain-drift '0': must be a percentage"),
    ("zstd://?dictionary=auto&dictionary-retrain-drift=5x", "dictionary-retrain-drift '5x'"),
    ("zstd://?dictionary-size=8kb", "dictionary-size: only with dictionary=auto"),
    ("zstd://?dictionary-sample-size=1mb", "dictionary-sample-size: only with dictionary=auto"),
    ("zlib://?dictionary=auto", "only zstd"),
])
def test_bad_auto_parameters_stop_the_daemon(url, text):
    rc, out = _run_bad(url)
    assert rc == 1 and text in out, out


# ---- values a dictionary does not help ------------------------------------------------------------------

def test_incompressible_values_adopt_no_dictionary(start_daemon):
    d = start_daemon(serializer=AUTO)
    c = d.conn()
    rnd = random.Random(5)
    vals = {}

    def value(i):
        vals["r%d" % i] = rnd.randbytes(rnd.randint(300, 1000))
        return vals["r%d" % i]
    write_until_trained(d, c, value, "r")
    z = zinfo(d)
    assert z["dictionary_id"] == 0 and z["dictionaries"] == 0 and z["dictionary_trainings_unused"] >= 1, z
    assert z["dictionary_trained_ratio"] == 0, z
    assert log_has(d, "no zstd dictionary")
    assert c.cmd("CACHE", "DICT", "LIST") == []
    keys = list(vals)[-100:]
    for k in keys:
        raw = c.cmd("CACHE", "RAWGET", k)
        assert dict_id(raw) == 0, k
    assert c.cmd("MGET", *keys) == [vals[k] for k in keys]
    # a forced training on the same kind of values is refused the same way, with the reason (40 KB more
    # values: too few for the sample to be full and an automatic training to start)
    for j in range(80):
        assert c.cmd("SET", "x%d" % j, rnd.randbytes(500)) == "OK"
    r = c.cmd("CACHE", "DICT", "TRAIN")
    assert isinstance(r, Err) and "no zstd dictionary" in r, r
    assert zinfo(d)["dictionaries"] == 0


# ---- a frame whose dictionary nobody has -----------------------------------------------------------------

def test_never_seen_dictionary_id(start_daemon, upstreams, dicts):  # noqa: F811
    v = doc(3, 11)
    frame = zstd_cli(["-D", dicts["b"]], v)
    bid = dict_id(frame)
    assert bid != 0
    d = start_daemon(serializer=AUTO)
    c = d.conn()
    assert c.cmd("CACHE", "RAWSET", "k", frame) == "OK"
    assert c.cmd("GET", "k") == frame                   # mixed mode: as stored, never decoded wrongly
    assert zinfo(d)["unknown_dictionary_frames"] == 1
    r = c.cmd("APPEND", "k", "x")
    assert isinstance(r, Err) and "dictionary" in r, r
    assert c.cmd("CACHE", "RAWGET", "k") == frame       # unchanged
    s = start_daemon(serializer=AUTO + "&strict=yes")
    cs = s.conn()
    assert cs.cmd("CACHE", "RAWSET", "k", frame) == "OK"
    r = cs.cmd("GET", "k")
    assert isinstance(r, Err) and "dictionary ID" in r and str(bid) in r, r
    assert zinfo(s)["unknown_dictionary_frames"] >= 1
    # in front of a Redis: looked for upstream once, not found, then as stored
    up = upstreams()
    u = proxy(start_daemon, up, AUTO)
    cu = u.conn()
    assert cu.cmd("CACHE", "RAWSET", "k", frame) == "OK"
    assert cu.cmd("GET", "k") == frame
    z = zinfo(u)
    assert z["dictionary_fetch_failures"] == 1 and z["dictionaries_fetched"] == 0, z
    assert log_has(u, "%s%d: no such key" % (PREFIX, bid))
    assert cu.cmd("GET", "k") == frame
    assert zinfo(u)["dictionary_fetch_failures"] == 1     # not asked for again at once


# ---- in front of a Redis ---------------------------------------------------------------------------------

def test_dictionary_stored_upstream_and_fetched_by_another_daemon(start_daemon, upstreams, dicts):  # noqa: F811
    up = upstreams()
    r = up.client()
    a = proxy(start_daemon, up, AUTO)
    ca = a.conn()
    did, n = write_until_dictionary(a, ca, 12)
    # stored upstream before any value names it, as the dictionary's bytes
    assert r.get(PREFIX + str(did)) == ca.cmd("CACHE", "DICT", "EXPORT", str(did))
    assert r.ttl(PREFIX + str(did)) == -1
    z = zinfo(a)
    assert z["dictionaries_stored"] == 1 and z["dictionary_store_failures"] == 0, z
    keys = ["after:%d" % i for i in range(100)]
    vals = [bigdoc(13, i) for i in range(100)]
    for k, v in zip(keys, vals):
        assert ca.cmd("SET", k, v) == "OK"
    assert all(dict_id(r.get(k)) == did for k in keys)

    # a second daemon meets a frame naming the dictionary: fetches it once, reads every value
    b = proxy(start_daemon, up, AUTO)
    cb = b.conn()
    assert zinfo(b)["dictionaries"] == 0
    assert cb.cmd("MGET", *keys) == vals
    assert cb.cmd("GET", "k0") == bigdoc(12, 0) and cb.cmd("GET", "k%d" % (n - 1)) == bigdoc(12, n - 1)
    z = zinfo(b)
    assert z["dictionaries_fetched"] == 1 and z["dictionary_fetch_failures"] == 0 and z["dictionaries"] == 1, z
    assert z["unknown_dictionary_frames"] == 0, z
    assert cb.cmd("CACHE", "DICT", "LIST") == [did]
    assert log_has(b, "zstd dictionary %d fetched from upstream key %s%d" % (did, PREFIX, did))
    # read-modify-writes once it is there
    assert cb.cmd("APPEND", keys[0], "!") == len(vals[0]) + 1
    assert ca.cmd("GET", keys[0]) == vals[0] + b"!"

    # a read-modify-write cannot wait for the fetch: refused (value unchanged) until the dictionary is there
    f = proxy(start_daemon, up, AUTO)
    cf = f.conn()
    before = r.get(keys[2])
    res = cf.cmd("APPEND", keys[2], "!")
    assert isinstance(res, Err) and "try again" in res, res
    assert r.get(keys[2]) == before
    assert wait_for(lambda: zinfo(f)["dictionaries_fetched"], WAIT)
    assert cf.cmd("APPEND", keys[2], "!") == len(vals[2]) + 1
    assert ca.cmd("GET", keys[2]) == vals[2] + b"!"
    g = proxy(start_daemon, up, AUTO)
    cg = g.conn()
    res = cg.cmd("GETDEL", keys[3])
    assert isinstance(res, Err) and "try again" in res, res
    assert r.get(keys[3]) is not None
    assert wait_for(lambda: zinfo(g)["dictionaries_fetched"], WAIT)
    assert cg.cmd("GETDEL", keys[3]) == vals[3] and r.get(keys[3]) is None
    # nor can a transaction: a read answers the stored bytes (mixed mode; or the value, if the fetch the
    # transaction started came back first), a change is refused
    h = proxy(start_daemon, up, AUTO)
    ch = h.conn()
    assert ch.cmd("MULTI") == "OK"
    assert ch.cmd("GET", keys[4]) == "QUEUED" and ch.cmd("INCR", keys[5]) == "QUEUED"
    got, incr = ch.cmd("EXEC")
    assert got in (r.get(keys[4]), vals[4]) and isinstance(incr, Err) and "dictionary" in incr, (got[:40], incr)
    assert wait_for(lambda: zinfo(h)["dictionaries_fetched"], WAIT)
    assert ch.cmd("MGET", keys[4], keys[5]) == vals[4:6]

    # another prefix: the dictionary is not found there, and the value comes back as stored
    o = proxy(start_daemon, up, AUTO, dictionary_key_prefix="elsewhere:")
    co = o.conn()
    assert co.cmd("GET", keys[1]) == r.get(keys[1])
    z = zinfo(o)
    assert z["dictionary_fetch_failures"] == 1 and z["dictionaries"] == 0, z
    assert log_has(o, "elsewhere:%d: no such key" % did)

    # LOAD stores with SET NX: a key already holding other bytes is not overwritten, and not used
    with open(dicts["a"], "rb") as f:
        ext = f.read()
    ext_id = int.from_bytes(ext[4:8], "little")
    r.set(PREFIX + str(ext_id), b"someone else's bytes")
    res = ca.cmd("CACHE", "DICT", "LOAD", str(ext_id), ext)
    assert isinstance(res, Err) and "holds other bytes" in res, res
    assert r.get(PREFIX + str(ext_id)) == b"someone else's bytes"
    z = zinfo(a)
    assert z["dictionary_store_failures"] == 1 and z["dictionary_id"] == did and z["dictionaries"] == 1, z
    # ... the same bytes are fine (another daemon stored the same dictionary)
    r.set(PREFIX + str(ext_id), ext)
    assert ca.cmd("CACHE", "DICT", "LOAD", str(ext_id), ext) == ext_id
    assert zinfo(a)["dictionary_id"] == ext_id


def _written_with_dictionary(start_daemon, up, seed):
    """A daemon in front of up that trained a dictionary, and a value written with it:
    (daemon, conn, dictionary ID, key, value, dictionary bytes)."""
    a = proxy(start_daemon, up, AUTO)
    ca = a.conn()
    did, _ = write_until_dictionary(a, ca, seed)
    v = bigdoc(seed + 1, 5)
    assert ca.cmd("SET", "v", v) == "OK"
    return a, ca, did, "v", v, up.client().get(PREFIX + str(did))


def _check_never_wrong(start_daemon, up, did, key, fetched=False):
    """Daemons that did not train did's dictionary read key (written with it) while the upstream key of
    the dictionary is damaged: mixed mode gives the stored bytes, strict an error naming the ID, and
    read-modify-writes leave the value alone. fetched: the damaged dictionary is still a dictionary with
    that ID (cut short), fetched and added, and the frames fail to decode with it."""
    r = up.client()
    stored = r.get(key)
    d = proxy(start_daemon, up, AUTO)
    c = d.conn()
    got = c.cmd("GET", key)
    assert got == stored, "mixed mode answered %r, not the stored bytes" % (got[:60],)
    for cmd in (["APPEND", key, "x"], ["INCR", key], ["SETRANGE", key, "0", "x"]):
        res = c.cmd(*cmd)
        assert isinstance(res, Err) and "dictionary" in res, (cmd, res)
    assert r.get(key) == stored, "a read-modify-write changed a value it could not decode"
    z = zinfo(d)
    assert z["dictionary_fetch_failures"] == int(not fetched) and z["dictionaries_fetched"] == int(fetched), z
    assert z["unknown_dictionary_frames"] >= 1, z
    assert log_has(d, "zstd dictionary %d %sfrom upstream key %s%d" % (did, "fetched " if fetched else "", PREFIX, did))
    s = proxy(start_daemon, up, AUTO + "&strict=yes")
    res = s.conn().cmd("GET", key)
    assert isinstance(res, Err) and ("dictionary ID %d" % did) in res, res
    assert r.get(key) == stored


@pytest.mark.parametrize("damage", ["garbage", "header-only", "empty", "deleted"])
def test_damaged_dictionary_upstream_is_never_used(start_daemon, upstreams, damage):  # noqa: F811
    up = upstreams()
    _, ca, did, key, v, dbytes = _written_with_dictionary(start_daemon, up, 20)
    r = up.client()
    if damage == "deleted":
        r.delete(PREFIX + str(did))
    else:
        r.set(PREFIX + str(did), {"garbage": b"garbage " * 100, "header-only": dbytes[:8], "empty": b""}[damage])
    _check_never_wrong(start_daemon, up, did, key)
    assert ca.cmd("GET", key) == v          # the daemon that trained it still has it


@pytest.mark.parametrize("cut", [100, 4096])
def test_truncated_dictionary_upstream_never_gives_a_wrong_value(start_daemon, upstreams, cut):  # noqa: F811
    up = upstreams()
    _, _, did, key, _, dbytes = _written_with_dictionary(start_daemon, up, 30)
    up.client().set(PREFIX + str(did), dbytes[:-cut])
    _check_never_wrong(start_daemon, up, did, key, fetched=True)


def test_two_daemons_train_at_once(start_daemon, upstreams):  # noqa: F811
    up = upstreams()
    r = up.client()
    a = proxy(start_daemon, up, AUTO)
    b = proxy(start_daemon, up, AUTO)
    ca, cb = a.conn(), b.conn()
    # both samples fill together (writes alternate), so both train at about the same moment
    deadline = time.monotonic() + DEADLINE
    i = 0
    while not (zinfo(a)["dictionary_id"] and zinfo(b)["dictionary_id"]):
        assert time.monotonic() < deadline, (i, zinfo(a), zinfo(b))
        if i >= WRITES_MAX:
            time.sleep(0.05)
            continue
        for _ in range(25):
            assert ca.cmd("SET", "a:%d" % i, bigdoc(40, i)) == "OK"
            assert cb.cmd("SET", "b:%d" % i, bigdoc(41, i)) == "OK"
            i += 1
    ida, idb = zinfo(a)["dictionary_id"], zinfo(b)["dictionary_id"]
    assert ida != idb, "two samples, one dictionary ID"
    assert r.get(PREFIX + str(ida)) == ca.cmd("CACHE", "DICT", "EXPORT", str(ida))
    assert r.get(PREFIX + str(idb)) == cb.cmd("CACHE", "DICT", "EXPORT", str(idb))
    va = {"na:%d" % j: bigdoc(42, j) for j in range(60)}
    vb = {"nb:%d" % j: bigdoc(43, j) for j in range(60)}
    for k, v in va.items():
        assert ca.cmd("SET", k, v) == "OK"
    for k, v in vb.items():
        assert cb.cmd("SET", k, v) == "OK"
    assert {dict_id(r.get(k)) for k in va} == {ida}
    assert {dict_id(r.get(k)) for k in vb} == {idb}
    # each reads what the other wrote, before and after its dictionary
    assert cb.cmd("MGET", *va) == list(va.values())
    assert ca.cmd("MGET", *vb) == list(vb.values())
    assert cb.cmd("MGET", "a:0", "a:%d" % (i - 1)) == [bigdoc(40, 0), bigdoc(40, i - 1)]
    assert ca.cmd("MGET", "b:0", "b:%d" % (i - 1)) == [bigdoc(41, 0), bigdoc(41, i - 1)]
    assert sorted(ca.cmd("CACHE", "DICT", "LIST")) == sorted(cb.cmd("CACHE", "DICT", "LIST")) == sorted([ida, idb])
    for d in (a, b):
        z = zinfo(d)
        assert z["dictionaries_fetched"] == 1 and z["dictionary_fetch_failures"] == 0, z
        assert z["dictionary_store_failures"] == 0 and z["unknown_dictionary_frames"] == 0, z
    # new values keep each daemon's own dictionary
    assert zinfo(a)["dictionary_id"] == ida and zinfo(b)["dictionary_id"] == idb
