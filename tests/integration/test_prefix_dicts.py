"""zstd dictionaries of caches chosen by key prefix ([cache.NAME] with zstd://?dictionary=auto):
  - the default cache and a named one train dictionaries of their own on their own values (different IDs),
    CACHE DICT ... CACHE <name> shows the named cache's, an unknown name is an error;
  - dictionary-dir keeps them as default-<id>.dict and doc-<id>.dict, and a restart gives each cache its own
    back (a file of cache "doc-x" is not taken for one of cache "doc");
  - two daemons in front of one Redis: one MGET through the second daemon, over keys of both caches written
    by the first, waits for both dictionaries and returns every value."""
import os
import time

import pytest

from helpers import Err, parse_info
from test_zstd_dictionary import doc
from upstream_support import upstreams, wait_for  # noqa: F401  (the fixture)

pytestmark = pytest.mark.needs_cachetoryd

AUTO = "zstd://?dictionary=auto&dictionary-size=4kb&dictionary-sample-size=64kb"
CONF = """[cache]
serializer = %s

[cache.doc]
prefix = doc:
serializer = %s
""" % (AUTO, AUTO)


def other(i):
    """Values of the default cache: another shape than doc()'s, so that its dictionary differs."""
    return ("<li class=\"item\" data-n=\"%d\"><a href=\"/items/%d\">Item number %d</a> <span>%s</span></li>"
            % (i, i * 7, i, "in stock" if i % 3 else "sold out")).encode()


def info(c):
    return parse_info(c.cmd("INFO", "cache"))


def named(inf, name):
    out = {}
    for item in inf["cache_" + name].split(","):
        k, _, v = item.partition("=")
        out[k] = v
    return out


def dict_ids(inf):
    return int(inf["cache_zstd_dictionary_id"]), int(named(inf, "doc")["zstd_dictionary_id"])


def write_until_trained(c, start=0, bound=4000):
    """Write doc:<i> and item:<i> until both caches use a dictionary; returns (default id, doc id, next i)."""
    i = start
    while i < start + bound:
        c.cmd("MSET", "doc:%d" % i, doc(1, i), "item:%d" % i, other(i))
        i += 1
        if i % 100 == 0:
            ids = dict_ids(info(c))
            if ids[0] and ids[1]:
                return ids[0], ids[1], i
    # trainings run on the thread pool: give the last one a moment
    ids = wait_for(lambda: (lambda x: x if x[0] and x[1] else None)(dict_ids(info(c))), 10)
    assert ids, "no dictionary after %d values per cache: %r" % (bound, info(c))
    return ids[0], ids[1], i


def settled_ids(c):
    """The caches' dictionary IDs once neither is training: a cache that trained first keeps sampling while
    the other trains, and may adopt a better dictionary meanwhile."""
    def idle():
        inf = info(c)
        return None if int(inf["cache_zstd_dictionary_training"]) or \
            int(named(inf, "doc")["zstd_dictionary_training"]) else dict_ids(inf)
    ids = wait_for(idle, 10)
    assert ids, "still training after 10 s: %r" % info(c)
    return ids


def frame_dict_id(raw):
    """The dictionary ID in a zstd frame header (0 if none)."""
    assert raw[:4] == b"\x28\xb5\x2f\xfd", raw[:8]
    fhd = raw[4]
    size = [0, 1, 2, 4][fhd & 3]
    pos = 5 + (0 if fhd & 0x20 else 1)
    return int.from_bytes(raw[pos:pos + size], "little") if size else 0


def test_each_cache_trains_its_own(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    d = start_daemon(config_file=conf, dictionary_dir=str(tmp_path))
    c = d.conn()
    write_until_trained(c)
    did, nid = settled_ids(c)
    assert did != nid
    # the next values name their cache's dictionary
    c.cmd("MSET", "doc:new", doc(1, 99999), "item:new", other(99999))
    assert frame_dict_id(c.cmd("CACHE", "RAWGET", "doc:new")) == nid
    assert frame_dict_id(c.cmd("CACHE", "RAWGET", "item:new")) == did
    assert c.cmd("MGET", "doc:new", "item:new", "doc:3") == [doc(1, 99999), other(99999), doc(1, 3)]
    mine, docs = c.cmd("CACHE", "DICT", "LIST"), c.cmd("CACHE", "DICT", "LIST", "CACHE", "doc")
    assert did in mine and nid in docs and not set(mine) & set(docs), (mine, docs)
    assert len(c.cmd("CACHE", "DICT", "EXPORT", str(nid), "CACHE", "doc")) > 1000
    assert isinstance(c.cmd("CACHE", "DICT", "EXPORT", str(nid)), Err)    # not the default cache's
    r = c.cmd("CACHE", "DICT", "LIST", "CACHE", "nosuch")
    assert isinstance(r, Err) and "no such cache" in str(r)
    assert isinstance(c.cmd("CACHE", "DICT", "TRAIN", "CACHE", "doc"), int)
    # dictionary-dir: one file per cache and dictionary
    files = sorted(os.listdir(tmp_path))
    assert "default-%d.dict" % did in files and "doc-%d.dict" % nid in files, files


def test_dictionary_dir_gives_each_cache_its_own(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    ddir = tmp_path / "dicts"
    ddir.mkdir()
    d = start_daemon(config_file=conf, dictionary_dir=str(ddir))
    c = d.conn()
    write_until_trained(c)
    did, nid = settled_ids(c)
    raw_doc = c.cmd("CACHE", "RAWGET", "doc:7")
    c.cmd("SET", "item:last", other(5))
    raw_item = c.cmd("CACHE", "RAWGET", "item:last")
    assert frame_dict_id(raw_item) == did
    d.stop()
    # a file of another cache whose name starts with "doc-" is not doc's
    (ddir / ("doc-x-%d.dict" % 12345)).write_bytes(b"not read")
    mtimes = {f: os.path.getmtime(ddir / f) for f in os.listdir(ddir)}
    assert mtimes

    d2 = start_daemon(config_file=conf, dictionary_dir=str(ddir))
    c2 = d2.conn()
    inf = info(c2)
    assert dict_ids(inf) == (did, nid)
    assert int(inf["cache_zstd_dictionary_trainings"]) == 0
    # the stored bytes of before read back through the caches they belong to
    c2.cmd("CACHE", "RAWSET", "doc:7", raw_doc)
    c2.cmd("CACHE", "RAWSET", "item:last", raw_item)
    assert c2.cmd("MGET", "doc:7", "item:last") == [doc(1, 7), other(5)]
    log = d2.log_tail(200)
    assert "doc-x-12345" not in log


def test_second_daemon_fetches_both_dictionaries_in_one_mget(start_daemon, upstreams, tmp_path):  # noqa: F811
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    up = upstreams()
    a = start_daemon(config_file=conf, backend=up.url())
    ca = a.conn()
    _, _, n = write_until_trained(ca)
    did, nid = settled_ids(ca)
    ca.cmd("MSET", "doc:w", doc(1, 123456), "item:w", other(123456))
    with up.conn() as direct:
        assert direct.cmd("EXISTS", "cachetoryd:zstd-dict:%d" % did) == 1
        assert direct.cmd("EXISTS", "cachetoryd:zstd-dict:%d" % nid) == 1
        assert frame_dict_id(direct.cmd("GET", "doc:w")) == nid
    b = start_daemon(config_file=conf, backend=up.url())
    cb = b.conn()
    t0 = time.monotonic()
    got = cb.cmd("MGET", "item:w", "doc:w", "doc:1", "item:nothing")
    assert got == [other(123456), doc(1, 123456), doc(1, 1), None], got[:3]
    assert time.monotonic() - t0 < 5
    inf = info(cb)
    assert int(inf["cache_zstd_dictionaries_fetched"]) == 2
    assert int(inf["cache_values_undecoded"]) == 0
    assert named(inf, "doc")["values_undecoded"] == "0"
    # every value written by the first daemon reads back through the second
    keys = ["doc:%d" % i for i in range(0, n, 7)] + ["item:%d" % i for i in range(0, n, 7)]
    want = [doc(1, i) for i in range(0, n, 7)] + [other(i) for i in range(0, n, 7)]
    assert cb.cmd("MGET", *keys) == want
