"""INFO's "# Cache" section: its fields are there and add up (bytes before and after encoding, the ratio,
encode/decode counts, values passed through undecoded, decode errors), and CONFIG RESETSTAT clears them."""
import pytest

from helpers import parse_info
from test_codec_support import conn, info, text_value

pytestmark = pytest.mark.needs_cachetoryd

FIELDS = ["cache_name", "cache_serializer", "cache_encodes", "cache_encode_bytes_in", "cache_encode_bytes_out",
          "cache_encode_ratio", "cache_encode_usec", "cache_encode_errors", "cache_decodes",
          "cache_decode_bytes_in", "cache_decode_bytes_out", "cache_decode_usec", "cache_decode_errors",
          "cache_values_undecoded", "cache_offloaded"]


def _nums(d):
    i = info(d)
    return {k: (float(v) if k.endswith("_ratio") else int(v)) for k, v in i.items()
            if k.startswith("cache_") and k not in ("cache_name", "cache_serializer") and "=" not in v}


def test_cache_section_present(start_daemon):
    d = start_daemon(serializer="zstd://?compression-level=5")
    with conn(d) as c:
        full = c.cmd("INFO")
        assert b"# Cache\r\n" in full
        sec = c.cmd("INFO", "cache")
        assert sec.startswith(b"# Cache\r\n"), sec[:100]
        assert b"# Server" not in sec
    fields = parse_info(sec)
    for f in FIELDS:
        assert f in fields, "INFO cache lacks %s: %r" % (f, sec)
    assert fields["cache_serializer"] == "zstd://?compression-level=5"
    assert parse_info(full)["cache_encodes"] == "0"


def test_counters_add_up_with_zstd(start_daemon):
    d = start_daemon(serializer="zstd://", codec_thread_min_size="0")
    v = text_value(1 << 20, 61)                                # compressible
    with conn(d) as c:
        s0 = _nums(d)
        assert s0["cache_encodes"] == 0 and s0["cache_decodes"] == 0
        assert c.cmd("SET", "a", v) == "OK"
        assert c.cmd("SET", "b", "x" * 1000) == "OK"
        raw_a = c.cmd("CACHE", "RAWGET", "a")
        raw_b = c.cmd("CACHE", "RAWGET", "b")
        s1 = _nums(d)
        assert s1["cache_encodes"] == 2
        assert s1["cache_encode_bytes_in"] == len(v) + 1000
        assert s1["cache_encode_bytes_out"] == len(raw_a) + len(raw_b)
        assert s1["cache_encode_bytes_out"] < s1["cache_encode_bytes_in"]
        ratio = s1["cache_encode_bytes_out"] / s1["cache_encode_bytes_in"]
        assert abs(s1["cache_encode_ratio"] - ratio) < 0.001 or \
            abs(s1["cache_encode_ratio"] - 1 / ratio) < 0.01 * (1 / ratio), \
            "cache_encode_ratio %r is neither out/in %.4f nor in/out %.4f" % (s1["cache_encode_ratio"], ratio,
                                                                             1 / ratio)
        assert s1["cache_decodes"] == 0                       # RAWGET decodes nothing
        assert c.cmd("GET", "a") == v
        assert c.cmd("MGET", "a", "b", "missing") == [v, b"x" * 1000, None]
        s2 = _nums(d)
        assert s2["cache_decodes"] == 3
        assert s2["cache_decode_bytes_in"] == 2 * len(raw_a) + len(raw_b)
        assert s2["cache_decode_bytes_out"] == 2 * len(v) + 1000
        assert s2["cache_values_undecoded"] == 0 and s2["cache_decode_errors"] == 0
        assert s2["cache_offloaded"] == 0
        # a raw value: undecoded, passes as it is
        assert c.cmd("CACHE", "RAWSET", "raw", "plain") == "OK"
        assert c.cmd("GET", "raw") == b"plain"
        s3 = _nums(d)
        assert s3["cache_values_undecoded"] == 1
        assert s3["cache_decodes"] == s2["cache_decodes"] + 1
        # CONFIG RESETSTAT clears the section
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        s4 = _nums(d)
        for k in ("cache_encodes", "cache_encode_bytes_in", "cache_encode_bytes_out", "cache_decodes",
                  "cache_decode_bytes_in", "cache_decode_bytes_out", "cache_values_undecoded",
                  "cache_decode_errors", "cache_encode_errors", "cache_offloaded"):
            assert s4[k] == 0, "%s is %d after CONFIG RESETSTAT" % (k, s4[k])


def test_counters_on_the_thread_pool(start_daemon):
    d = start_daemon(serializer="zstd://", codec_thread_min_size="1kb")
    v = text_value(1 << 20, 62)
    with conn(d) as c:
        assert c.cmd("SET", "a", v) == "OK"
        raw = c.cmd("CACHE", "RAWGET", "a")
        assert c.cmd("GET", "a") == v
        s = _nums(d)
        assert s["cache_offloaded"] >= 2
        assert s["cache_encodes"] == 1 and s["cache_decodes"] == 1
        assert s["cache_encode_bytes_in"] == len(v) and s["cache_encode_bytes_out"] == len(raw)
        assert s["cache_decode_bytes_in"] == len(raw) and s["cache_decode_bytes_out"] == len(v)
        assert s["cache_encode_usec"] > 0 and s["cache_decode_usec"] >= 0


def test_null_serializer_counts_nothing_encoded(start_daemon):
    d = start_daemon(serializer="null://")
    with conn(d) as c:
        assert c.cmd("SET", "a", "value") == "OK"
        assert c.cmd("GET", "a") == b"value"
    s = _nums(d)
    assert s["cache_encode_bytes_in"] == s["cache_encode_bytes_out"]
    assert s["cache_values_undecoded"] == 0
