"""[cache.NAME] sections: caches chosen by key prefix, each with its own serializer and default-ttl, behind
one backend — memory:// and a real redis-server upstream:
  - keys under sess: are stored with zlib, doc: with zstd, doc:big: (the longer prefix wins) with zlib level
    9, others as they are; the stored bytes (CACHE RAWGET, and the upstream itself) decode to what was
    written;
  - MSET / MGET with keys in three caches: the right values, and ONE upstream MSET / MGET;
  - MULTI / EXEC over two caches; INCR / APPEND on a zlib key keep it zlib;
  - per-cache default-ttl, inherited from [cache] when a section sets none, per key inside one MSET;
  - values over codec-thread-min-size in two caches in one MSET (the thread pool);
  - INFO cache's per-cache lines count what was written, CONFIG RESETSTAT clears them, /metrics-style
    series per cache;
  - SIGHUP: a section's new serializer takes the new writes, old values still read back, a new section
    takes its keys, a removed one gives them back; a bad section keeps the running configuration;
  - config errors (duplicate prefix, missing prefix, unknown option, bad name...) stop the daemon with a
    message naming the line and the problem."""
import os
import signal
import subprocess
import time
import zlib

import pytest

import conftest
from helpers import parse_info
from upstream_support import upstreams, wait_for  # noqa: F401  (the fixture)
from test_codec_support import ZSTD_MAGIC, libzstd_decompress

pytestmark = pytest.mark.needs_cachetoryd

CONF = """[cache]
serializer = null://
default-ttl = {default_ttl}

[cache.sess]
prefix = sess: session:
serializer = zlib://
default-ttl = {sess_ttl}

[cache.doc]
prefix = doc:
serializer = zstd://

[cache.big]
prefix = doc:big:
serializer = zlib://?compression-level=9
default-ttl = 0
"""


def write_conf(tmp_path, text=None, **kw):
    p = tmp_path / "prefix.conf"
    params = {"default_ttl": 0, "sess_ttl": 0}
    params.update(kw)
    p.write_text(text if text is not None else CONF.format(**params))
    return p


def is_zlib(raw):
    return len(raw) >= 2 and raw[0] == 0x78 and ((raw[0] << 8) | raw[1]) % 31 == 0


def check_stored(raw, codec, value, what):
    """raw (the stored bytes) is value encoded by codec ('zlib', 'zlib9', 'zstd' or 'null')."""
    assert raw is not None, "%s: nothing stored" % what
    if codec == "null":
        assert raw == value, "%s: stored %r, expected the value itself" % (what, raw[:40])
    elif codec.startswith("zlib"):
        assert is_zlib(raw), "%s: stored %r, not a zlib stream" % (what, raw[:40])
        if codec == "zlib9":
            assert raw[1] == 0xDA, "%s: zlib header %r is not level 9's" % (what, raw[:2])
        else:
            assert raw[1] == 0x9C, "%s: zlib header %r is not the default level's" % (what, raw[:2])
        assert zlib.decompress(raw) == value, what
    elif codec == "zstd":
        assert raw[:4] == ZSTD_MAGIC, "%s: stored %r, not a zstd frame" % (what, raw[:40])
        assert libzstd_decompress(raw) == value, what
    else:
        raise ValueError(codec)


KEYS = [("sess:1", "zlib"), ("session:1", "zlib"), ("doc:1", "zstd"), ("doc:big:1", "zlib9"),
        ("doc:bi", "zstd"), ("other", "null"), ("ses", "null"), ("docs", "null")]


def value_of(key, n=300):
    return (("%s|" % key) * n).encode()[:n]


@pytest.fixture(params=["memory", "redis"])
def setup(request, start_daemon, upstreams, tmp_path):  # noqa: F811
    """start(**conf params, **daemon options) -> (daemon, upstream or None)."""
    def start(conf_text=None, **kw):
        conf_kw = {k: kw.pop(k) for k in ("default_ttl", "sess_ttl") if k in kw}
        conf = write_conf(tmp_path, conf_text, **conf_kw)
        up = upstreams() if request.param == "redis" else None
        d = start_daemon(config_file=conf, backend=up.url() if up else "memory://", **kw)
        d.conf = conf
        return d, up
    return start


def named_line(info, name):
    """The fields of INFO cache's line cache_<name>:a=1,b=2 (values as text)."""
    v = info.get("cache_" + name)
    assert v is not None, "no cache_%s line in INFO: %r" % (name, sorted(info))
    out = {}
    for item in v.split(","):
        k, _, x = item.partition("=")
        out[k] = x
    return out


def test_each_prefix_has_its_serializer(setup):
    d, up = setup()
    c = d.conn()
    for key, _ in KEYS:
        assert c.cmd("SET", key, value_of(key)) == "OK"
    for key, codec in KEYS:
        assert c.cmd("GET", key) == value_of(key)
        check_stored(c.cmd("CACHE", "RAWGET", key), codec, value_of(key), key)
    if up:
        with up.conn() as direct:
            for key, codec in KEYS:
                check_stored(direct.cmd("GET", key), codec, value_of(key), "upstream " + key)
    # a value written before (plain) under an encoding prefix reads back as it is (mixed mode)
    assert c.cmd("CACHE", "RAWSET", "doc:plain", "just text") == "OK"
    assert c.cmd("GET", "doc:plain") == b"just text"


def commandstats(up):
    with up.conn() as direct:
        text = direct.cmd("INFO", "commandstats").decode()
    out = {}
    for line in text.split("\r\n"):
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            out[name[8:]] = int(rest.split(",")[0].split("=")[1])
    return out


def test_mset_mget_across_caches_is_one_command(setup):
    d, up = setup()
    c = d.conn()
    keys = ["sess:m", "doc:m", "doc:big:m", "plain:m"]
    codecs = ["zlib", "zstd", "zlib9", "null"]
    if up:
        with up.conn() as direct:
            assert direct.cmd("CONFIG", "RESETSTAT") == "OK"
    args = []
    for k in keys:
        args += [k, value_of(k, 500)]
    assert c.cmd("MSET", *args) == "OK"
    assert c.cmd("MGET", *keys, "missing") == [value_of(k, 500) for k in keys] + [None]
    for k, codec in zip(keys, codecs):
        check_stored(c.cmd("CACHE", "RAWGET", k), codec, value_of(k, 500), k)
    assert c.cmd("MSETNX", "sess:n1", "a" * 100, "doc:n1", "b" * 100) == 1
    assert c.cmd("MSETNX", "sess:n2", "a", "doc:n1", "c") == 0
    assert c.cmd("MGET", "sess:n1", "doc:n1", "sess:n2") == [b"a" * 100, b"b" * 100, None]
    check_stored(c.cmd("CACHE", "RAWGET", "doc:n1"), "zstd", b"b" * 100, "doc:n1")
    if up:
        st = commandstats(up)
        assert st.get("mset") == 1, st
        assert st.get("msetnx") == 2, st
        assert st.get("set", 0) == 0 and st.get("eval", 0) == 0, st
        # one MGET for the four keys and "missing", one for the three after MSETNX
        assert st.get("mget") == 2, st


def test_transaction_and_read_modify_write(setup):
    d, up = setup()
    c = d.conn()
    r = c.pipeline([("MULTI",), ("SET", "sess:t", "s" * 200), ("SET", "doc:t", "d" * 200),
                    ("MGET", "sess:t", "doc:t"), ("GET", "doc:t"), ("EXEC",)])
    assert r[-1] == ["OK", "OK", [b"s" * 200, b"d" * 200], b"d" * 200], r
    check_stored(c.cmd("CACHE", "RAWGET", "sess:t"), "zlib", b"s" * 200, "sess:t")
    check_stored(c.cmd("CACHE", "RAWGET", "doc:t"), "zstd", b"d" * 200, "doc:t")
    assert c.cmd("INCR", "sess:n") == 1
    assert c.cmd("INCRBY", "sess:n", 41) == 42
    check_stored(c.cmd("CACHE", "RAWGET", "sess:n"), "zlib", b"42", "sess:n after INCR")
    assert c.cmd("APPEND", "sess:a", "hello ") == 6
    assert c.cmd("APPEND", "sess:a", "world") == 11
    check_stored(c.cmd("CACHE", "RAWGET", "sess:a"), "zlib", b"hello world", "sess:a after APPEND")
    assert c.cmd("APPEND", "doc:a", "x" * 50) == 50
    check_stored(c.cmd("CACHE", "RAWGET", "doc:a"), "zstd", b"x" * 50, "doc:a after APPEND")
    assert c.cmd("SETRANGE", "doc:big:r", 2, "ab") == 4
    check_stored(c.cmd("CACHE", "RAWGET", "doc:big:r"), "zlib9", b"\0\0ab", "doc:big:r after SETRANGE")
    assert c.cmd("INCR", "plain:n") == 1
    check_stored(c.cmd("CACHE", "RAWGET", "plain:n"), "null", b"1", "plain:n")
    # GETSET / GETDEL / SET ... GET decode with the key's own chain
    assert c.cmd("SET", "sess:t", "new", "GET") == b"s" * 200
    assert c.cmd("GETDEL", "doc:t") == b"d" * 200
    assert c.cmd("GETEX", "sess:t", "EX", 100) == b"new"
    if up:
        with up.conn() as direct:
            check_stored(direct.cmd("GET", "sess:n"), "zlib", b"42", "upstream sess:n")


def test_default_ttl_per_cache(setup):
    d, up = setup(default_ttl=300, sess_ttl=100)
    c = d.conn()
    # sess: 100; doc: inherits [cache]'s 300; doc:big: sets 0 (none); others [cache]'s 300
    want = {"sess:k": (90, 100), "doc:k": (290, 300), "doc:big:k": (-1, -1), "other:k": (290, 300)}

    def check(what):
        for k, (lo, hi) in want.items():
            t = c.cmd("TTL", k)
            assert lo <= t <= hi, "%s: TTL of %s is %r, expected %d..%d" % (what, k, t, lo, hi)
            if up:
                with up.conn() as direct:
                    t = direct.cmd("TTL", k)
                    assert lo <= t <= hi, "%s upstream: TTL of %s is %r" % (what, k, t)

    for k in want:
        assert c.cmd("SET", k, "v") == "OK"
    check("SET")
    assert c.cmd("DEL", *want) == 4
    args = []
    for k in want:
        args += [k, "v" * 80]
    assert c.cmd("MSET", *args) == "OK"
    check("MSET")
    assert c.cmd("MGET", *want) == [b"v" * 80] * 4
    assert c.cmd("DEL", *want) == 4
    assert c.cmd("MSETNX", *args) == 1
    check("MSETNX")
    assert c.cmd("DEL", *want) == 4
    for k in want:
        assert c.cmd("INCR", k) == 1
    check("INCR")
    assert c.cmd("DEL", *want) == 4
    for k in want:
        assert c.cmd("APPEND", k, "x") == 1
        assert c.cmd("SET", k + "2", "y", "KEEPTTL") == "OK"
    check("APPEND")
    want = {k + "2": v for k, v in want.items()}
    check("SET KEEPTTL")
    # an explicit TTL wins
    assert c.cmd("SET", "sess:e", "v", "EX", 1000) == "OK"
    assert 990 <= c.cmd("TTL", "sess:e") <= 1000


def test_large_values_in_two_caches_use_the_thread_pool(setup):
    d, up = setup(codec_thread_min_size="4kb")
    c = d.conn()
    big_s = bytes(range(256)) * 200 + b"s" * 20000
    big_d = b'{"doc": "' + b"abcdefgh" * 8000 + b'"}'
    assert c.cmd("MSET", "sess:L", big_s, "doc:L", big_d, "plain:L", b"p" * 10000) == "OK"
    assert c.cmd("MGET", "sess:L", "doc:L", "plain:L") == [big_s, big_d, b"p" * 10000]
    check_stored(c.cmd("CACHE", "RAWGET", "sess:L"), "zlib", big_s, "sess:L")
    check_stored(c.cmd("CACHE", "RAWGET", "doc:L"), "zstd", big_d, "doc:L")
    assert c.cmd("GET", "doc:L") == big_d
    info = parse_info(c.cmd("INFO", "cache"))
    sess, doc = named_line(info, "sess"), named_line(info, "doc")
    assert int(sess["offloaded"]) >= 2 and int(doc["offloaded"]) >= 3, (sess, doc)
    assert int(sess["encodes"]) == 1 and int(doc["encodes"]) == 1, (sess, doc)
    assert int(info["cache_offloaded"]) == 0          # the default cache is null://: nothing to code


def test_info_counts_per_cache(setup):
    d, up = setup(default_ttl=7, sess_ttl=100)
    c = d.conn()
    info = parse_info(c.cmd("INFO", "cache"))
    assert info["cache_name"] == "default" and info["cache_serializer"] == "null://"
    sess = named_line(info, "sess")
    assert sess["serializer"] == "zlib://" and sess["prefixes"] == "sess:|session:", sess
    assert sess["default_ttl"] == "100" and named_line(info, "doc")["default_ttl"] == "7"
    assert named_line(info, "big")["prefixes"] == "doc:big:"
    assert int(sess["encodes"]) == 0
    for i in range(3):
        assert c.cmd("SET", "sess:%d" % i, "a" * 100) == "OK"
    assert c.cmd("MSET", "doc:1", "b" * 1000, "doc:2", "c" * 10, "sess:9", "d" * 50) == "OK"
    assert c.cmd("MGET", "doc:1", "doc:2", "sess:0", "nothing") == [b"b" * 1000, b"c" * 10, b"a" * 100, None]
    info = parse_info(c.cmd("INFO", "cache"))
    sess, doc, big = named_line(info, "sess"), named_line(info, "doc"), named_line(info, "big")
    assert (int(sess["encodes"]), int(sess["encode_bytes_in"])) == (4, 350), sess
    assert (int(doc["encodes"]), int(doc["encode_bytes_in"])) == (2, 1010), doc
    assert int(doc["encode_bytes_out"]) < 1010 and 0 < float(doc["encode_ratio"]) < 1, doc
    assert (int(sess["decodes"]), int(doc["decodes"]), int(big["decodes"])) == (1, 2, 0)
    assert int(sess["decode_errors"]) == 0 and int(sess["values_undecoded"]) == 0
    assert int(info["cache_encodes"]) == 0
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"
    info = parse_info(c.cmd("INFO", "cache"))
    assert named_line(info, "sess")["encodes"] == "0" and named_line(info, "doc")["decodes"] == "0"


def test_metrics_series_per_cache(start_daemon, tmp_path):
    port = conftest.free_port()
    d = start_daemon(config_file=write_conf(tmp_path), metrics_port=port)
    c = d.conn()
    assert c.cmd("SET", "doc:1", "x" * 100) == "OK"
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    assert text.count("# TYPE cachetoryd_cache_encodes_total counter") == 1
    for name in ("default", "sess", "doc", "big"):
        assert 'cachetoryd_cache_encodes_total{cache="%s"}' % name in text, text
    assert 'cachetoryd_cache_encodes_total{cache="doc"} 1' in text


def sighup(d, expect):
    n = d.log_tail(100000).count(expect)
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: d.log_tail(100000).count(expect) > n, 5), d.log_tail()


def test_sighup_reloads_sections(setup):
    d, up = setup()
    c = d.conn()
    assert c.cmd("SET", "doc:old", "o" * 200) == "OK"
    assert c.cmd("SET", "sess:old", "s" * 200) == "OK"
    assert c.cmd("SET", "log:old", "l" * 200) == "OK"
    old_doc_raw = c.cmd("CACHE", "RAWGET", "doc:old")
    # doc: now zlib; sess: gone (its keys go back to [cache], null://); log: a new cache with zstd
    d.conf.write_text("""[cache]
serializer = null://
[cache.doc]
prefix = doc:
serializer = zlib://
default-ttl = 50
[cache.big]
prefix = doc:big:
serializer = zlib://?compression-level=9
[cache.logs]
prefix = log:
serializer = zstd://
""")
    sighup(d, "sections applied")
    assert c.cmd("SET", "doc:new", "n" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "doc:new"), "zlib", b"n" * 200, "doc:new after reload")
    assert 40 <= c.cmd("TTL", "doc:new") <= 50
    assert c.cmd("GET", "doc:new") == b"n" * 200
    # written with zstd before: read back as stored (mixed mode), never an error
    assert c.cmd("GET", "doc:old") == old_doc_raw
    assert c.cmd("SET", "log:new", "g" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "log:new"), "zstd", b"g" * 200, "log:new")
    assert c.cmd("GET", "log:old") == b"l" * 200               # stored plain before: mixed mode
    assert c.cmd("SET", "sess:new", "t" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "sess:new"), "null", b"t" * 200, "sess:new")
    info = parse_info(c.cmd("INFO", "cache"))
    assert "cache_sess" not in info and named_line(info, "logs")["serializer"] == "zstd://"
    assert named_line(info, "doc")["serializer"] == "zlib://"

    # a bad file (the same prefix in two sections): nothing changes
    d.conf.write_text("[cache.doc]\nprefix = doc:\nserializer = zstd://\n[cache.x]\nprefix = doc:\n")
    sighup(d, "running configuration is unchanged")
    assert "is also in [cache.doc]" in d.log_tail()
    assert c.cmd("SET", "doc:new2", "n" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "doc:new2"), "zlib", b"n" * 200, "doc:new2 after a bad reload")
    # a serializer no chain can be made of: the sections keep their running configuration
    d.conf.write_text("[cache.doc]\nprefix = doc:\nserializer = nope://\n")
    sighup(d, "keep their running configuration")
    assert "[cache.doc] serializer" in d.log_tail()
    assert c.cmd("SET", "doc:new3", "n" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "doc:new3"), "zlib", b"n" * 200, "doc:new3 after a bad serializer")
    assert c.cmd("SET", "log:new3", "g" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "log:new3"), "zstd", b"g" * 200, "log:new3 after a bad serializer")
    # no sections at all: every key in [cache]
    d.conf.write_text("[cache]\nserializer = zlib://\n")
    sighup(d, "serializer is now 'zlib://'")
    assert wait_for(lambda: "cache_doc" not in parse_info(c.cmd("INFO", "cache")), 5)
    assert c.cmd("SET", "doc:new4", "n" * 200) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "doc:new4"), "zlib", b"n" * 200, "doc:new4 in [cache]")
    assert c.cmd("GET", "doc:new2") == b"n" * 200


def test_sighup_section_inherits_cache_serializer(start_daemon, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[cache]\nserializer = null://\n[cache.a]\nprefix = a:\n[cache.b]\nprefix = b:\n"
                    "serializer = zstd://\n")
    d = start_daemon(config_file=conf)
    c = d.conn()
    assert c.cmd("SET", "a:1", "x" * 100) == "OK"
    assert c.cmd("CACHE", "RAWGET", "a:1") == b"x" * 100
    conf.write_text("[cache]\nserializer = zlib://\n[cache.a]\nprefix = a:\n[cache.b]\nprefix = b:\n"
                    "serializer = zstd://\n")
    sighup(d, "configuration reloaded")
    assert c.cmd("SET", "a:2", "x" * 100) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "a:2"), "zlib", b"x" * 100, "a:2 after [cache] changed")
    assert c.cmd("SET", "b:2", "x" * 100) == "OK"
    check_stored(c.cmd("CACHE", "RAWGET", "b:2"), "zstd", b"x" * 100, "b:2 keeps its own")


BAD = [
    ("[cache.a]\nprefix = x:\n[cache.b]\nprefix = y: x:\n", ":4:", "prefix 'x:' of [cache.b] is also in [cache.a]"),
    ("[cache.a]\nserializer = zstd://\n", ":1:", "[cache.a] has no prefix"),
    ("[cache.a]\nprefix =\n", ":2:", "must be one or more key prefixes"),
    ("[cache.a]\nprefix = x:\nnear-cache-size = 1mb\n", ":3:", "'near-cache-size' is not a per-cache option"),
    ("[cache.a]\nprefix = x:\nnear-cache = maybe\n", ":3:", "near-cache"),
    ("[cache.a]\nprefix = x:\nnear-cache-ttl = -5\n", ":3:", "near-cache-ttl"),
    ("[cache.a]\nprefix = x:\nwhatever = 1\n", ":3:", "unknown option 'whatever' in [cache.a]"),
    ("[cache.a b]\nprefix = x:\n", ":1:", "bad cache name 'a b'"),
    ("[cache.%s]\nprefix = x:\n" % ("n" * 33), ":1:", "bad cache name"),
    ("[cache.]\nprefix = x:\n", ":1:", "bad cache name"),
    ("[cache.default]\nprefix = x:\n", ":1:", "'default' is reserved"),
    ("[cache.a]\nprefix = x:\n[cache.a]\nprefix = y:\n", ":3:", "[cache.a] is already at line 1"),
    ("[cache.a]\nprefix = x:\nprefix = y:\n", ":3:", "prefix is already set at line 2"),
    ("[cache.a]\nprefix = x:\ndefault-ttl = -1\n", ":3:", "default-ttl must be an integer"),
    ("[cache.a]\nprefix = x:\nserializer = nope://\n", ":3:", "[cache.a] serializer"),
    ("".join("[cache.c%d]\nprefix = p%d:\n" % (i, i) for i in range(65)), ":129:", "at most 64"),
]


@pytest.mark.parametrize("text,line,message", BAD, ids=[b[2][:30] for b in BAD])
def test_config_errors(tmp_path, text, line, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    for args in ([str(conftest.BIN), str(conf), "--port", "0"], [str(conftest.BIN), "-t", str(conf)]):
        p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20, cwd=str(tmp_path))
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 1, out
        assert "bad.conf" + line in out and message in out, out


def test_sixty_four_sections_are_fine(start_daemon, tmp_path):
    conf = tmp_path / "many.conf"
    conf.write_text("".join("[cache.c%d]\nprefix = p%d:\nserializer = %s\n" % (
        i, i, "zlib://" if i % 2 else "zstd://") for i in range(64)))
    d = start_daemon(config_file=conf)
    c = d.conn()
    for i in (0, 1, 63):
        assert c.cmd("SET", "p%d:k" % i, "v" * 100) == "OK"
        check_stored(c.cmd("CACHE", "RAWGET", "p%d:k" % i), "zlib" if i % 2 else "zstd", b"v" * 100, i)
    assert c.cmd("SET", "p64:k", "v") == "OK"
    assert c.cmd("CACHE", "RAWGET", "p64:k") == b"v"


NEAR_CONF = """[cache]
serializer = zstd://
near-cache = {default_near}

[cache.sess]
prefix = sess:
near-cache = {sess_near}

[cache.hot]
prefix = hot:
near-cache = yes
near-cache-ttl = {hot_ttl}
"""


def test_near_cache_per_cache(start_daemon, upstreams, tmp_path):  # noqa: F811
    """near-cache and near-cache-ttl per [cache.NAME]: a cache that says no keeps nothing near, one with
    its own TTL bound has its entries expire on it, and a section alone can turn the near cache on."""
    from test_near_cache import near, tracking_ready, up_calls
    up = upstreams()
    conf = tmp_path / "near.conf"
    conf.write_text(NEAR_CONF.format(default_near="yes", sess_near="no", hot_ttl=300))
    d = start_daemon(config_file=conf, backend=up.url())
    assert wait_for(lambda: tracking_ready(d), 10 * conftest.SLOW)
    c = d.conn()
    for k in ("plain", "sess:1", "hot:1"):
        assert c.cmd("SET", k, value_of(k)) == "OK"

    def gets(key, n=3):
        g0 = up_calls(up, "get")
        for _ in range(n):
            assert c.cmd("GET", key) == value_of(key)
        return up_calls(up, "get") - g0

    assert gets("plain") == 1, "the default cache's keys are kept near"
    assert gets("sess:1") == 3, "[cache.sess] near-cache = no: every GET goes upstream"
    assert gets("hot:1") == 1
    time.sleep(0.45)
    assert gets("hot:1") == 1, "[cache.hot]'s entry outlived its near-cache-ttl (300 ms)"
    assert gets("plain") == 0, "the default cache's entry has no TTL bound"
    inf = parse_info(c.cmd("INFO", "cache"))
    assert named_line(inf, "sess")["near_cache"] == "0"
    assert named_line(inf, "hot")["near_cache_ttl"] == "300"

    # SIGHUP: sess keys are kept from now on
    conf.write_text(NEAR_CONF.format(default_near="yes", sess_near="yes", hot_ttl=300))
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: named_line(parse_info(c.cmd("INFO", "cache")), "sess")["near_cache"] == "1",
                    5 * conftest.SLOW)
    assert gets("sess:1") == 1
    d.stop()

    # [cache] without a near cache, one section with: only its keys are kept near
    conf.write_text(NEAR_CONF.format(default_near="no", sess_near="no", hot_ttl=0))
    d = start_daemon(config_file=conf, backend=up.url())
    assert wait_for(lambda: tracking_ready(d), 10 * conftest.SLOW)
    c = d.conn()
    assert gets("plain") == 3
    assert gets("hot:1") == 1
    assert near(d, "hits") >= 2
