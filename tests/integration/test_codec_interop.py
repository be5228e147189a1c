"""Reverse interop: values produced by Python (zlib, python3-zstd, python3-msgpack, json, pickle) are
planted with CACHE RAWSET, and GET through the daemon returns the expected client value: a bytes or str
object gives its bytes (str as UTF-8), any other object its JSON text as json.dumps(obj) writes it
(Python's default separators and escaping)."""
import json
import pickle
import zlib

import msgpack
import pytest
import zstd

from test_codec_support import CTRL, DaemonPool, conn, libzstd_compress, random_bytes, text_value

pytestmark = pytest.mark.needs_cachetoryd

BYTES_VALUES = {
    "hello": b"hello",
    "nul_binary": b"\x00" + bytes(range(256)) + b"\x00",
    "a1000": b"a" * 1000,
    "utf8": "Grüße 日本語 😀".encode(),
    "big_text": text_value(1 << 20, 21),
    "big_random": random_bytes(1 << 20, 22),
}

OBJECTS = {
    "int_0": 0,
    "int_neg": -1,
    "int_small": 42,
    "int_i64_max": 2 ** 63 - 1,
    "int_i64_min": -2 ** 63,
    "int_u64_max": 2 ** 64 - 1,
    "float_1_5": 1.5,
    "float_0_1": 0.1,
    "float_1_0": 1.0,
    "float_neg_tiny": -2.5e-300,
    "float_1e100": 1e100,
    "float_1e16": 1e16,
    "true": True,
    "false": False,
    "none": None,
    "list": [1, "two", 3.5, None, True],
    "empty_list": [],
    "empty_dict": {},
    "dict": {"a": 1, "b": [1, 2.5, None, True, False], "c": {"d": "é", "e": "😀"}},
    "nested": [[1, [2, [3, {"x": [4, {"y": "z"}]}]]], {"k": [{}]}],
    "str_non_ascii_in_list": ["héllo", "日本", "😀", "\x00\n\"\\"],
    "record": {"id": 123456, "name": "Zoë O'Brien", "tags": ["vip", "β"], "score": 98.25, "active": True,
               "address": {"city": "Zürich", "zip": "8001"}, "last": None},
}


@pytest.fixture(scope="module")
def pool(module_start_daemon):
    return DaemonPool(module_start_daemon)


def _plant_get(d, key, stored):
    with conn(d) as c:
        assert c.cmd("CACHE", "RAWSET", key, stored) == "OK"
        assert c.cmd("CACHE", "RAWGET", key) == stored
        return c.cmd("GET", key)


def _show(got, exp):
    return "GET returned %r, expected %r" % (got[:200] if isinstance(got, bytes) else got, exp[:200])


# ---- compressors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [-1, 0, 1, 6, 9])
@pytest.mark.parametrize("name", list(BYTES_VALUES) + ["empty"])
def test_zlib_from_python(pool, name, level):
    v = BYTES_VALUES.get(name, b"")
    got = _plant_get(pool.get("zlib://"), "z", zlib.compress(v, level))
    assert got == v, _show(got, v)


@pytest.mark.parametrize("level", [-5, 1, 3, 19])
@pytest.mark.parametrize("name", list(BYTES_VALUES))
def test_zstd_from_python_zstd(pool, name, level):
    v = BYTES_VALUES[name]
    if level == 19 and len(v) > 100000:
        v = v[:100000]
    for threads in (0, 1):
        got = _plant_get(pool.get("zstd://"), "z", zstd.compress(v, level, threads))
        assert got == v, _show(got, v)


def test_zstd_empty_frame_from_libzstd(pool):
    # python-zstd cannot write an empty value (see test_codec_support); libzstd's frame of b"" is 9 bytes
    frame = libzstd_compress(b"", 3)
    assert frame == bytes.fromhex("28b52ffd2000010000")
    assert _plant_get(pool.get("zstd://"), "z", frame) == b""


# ---- msgpack --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BYTES_VALUES) + ["empty"])
def test_msgpack_bin_and_str_from_python(pool, name):
    v = BYTES_VALUES.get(name, b"")
    d = pool.get("msgpack://")
    got = _plant_get(d, "m", msgpack.packb(v))
    assert got == v, _show(got, v)
    # old-style raw (str 8/16/32 carrying bytes), as msgpack writes with use_bin_type=False
    got = _plant_get(d, "m", msgpack.packb(v, use_bin_type=False))
    assert got == v, _show(got, v)
    try:
        s = v.decode("utf-8")
    except UnicodeDecodeError:
        return
    got = _plant_get(d, "m", msgpack.packb(s))
    assert got == v, _show(got, v)


@pytest.mark.parametrize("name", list(OBJECTS))
def test_msgpack_objects_render_as_json(pool, name):
    obj = OBJECTS[name]
    exp = json.dumps(obj).encode()
    got = _plant_get(pool.get("msgpack://"), "m", msgpack.packb(obj))
    assert got == exp, _show(got, exp)


def test_msgpack_float32_renders_as_python_reads_it(pool):
    stored = msgpack.packb(0.1, use_single_float=True)          # float 32: 0.10000000149011612
    exp = json.dumps(msgpack.unpackb(stored)).encode()
    assert _plant_get(pool.get("msgpack://"), "m", stored) == exp


def test_msgpack_int_map_keys_render_as_json(pool):
    obj = {1: "a", 2: [3]}
    exp = json.dumps(obj).encode()                              # {"1": "a", "2": [3]}
    assert _plant_get(pool.get("msgpack://"), "m", msgpack.packb(obj)) == exp


# ---- json -----------------------------------------------------------------------------------------

JSON_STRINGS = {
    "ascii": "hello",
    "empty": "",
    "non_ascii": "Grüße, 日本語, Ωμέγα",
    "astral": "emoji 😀🎉 and 𝄞",
    "controls": CTRL.decode(),
    "big": text_value(1 << 20, 23).decode(),
}


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("name", list(JSON_STRINGS))
def test_json_strings_from_python(pool, name, ensure_ascii):
    s = JSON_STRINGS[name]
    got = _plant_get(pool.get("json://"), "j", json.dumps(s, ensure_ascii=ensure_ascii).encode())
    exp = s.encode("utf-8")
    assert got == exp, _show(got, exp)


@pytest.mark.parametrize("name", list(OBJECTS))
def test_json_objects_from_python(pool, name):
    obj = OBJECTS[name]
    exp = json.dumps(obj).encode()
    got = _plant_get(pool.get("json://"), "j", json.dumps(obj).encode())
    assert got == exp, _show(got, exp)


def test_json_whitespace_around_string(pool):
    got = _plant_get(pool.get("json://"), "j", b' \n\t"spaced \\u00e9" \r\n')
    assert got == "spaced é".encode()


# ---- pickle ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", list(BYTES_VALUES) + ["empty"])
def test_pickle_bytes_from_python(pool, name, protocol):
    v = BYTES_VALUES.get(name, b"")
    got = _plant_get(pool.get("pickle://"), "p", pickle.dumps(v, protocol=protocol))
    assert got == v, _show(got, v)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", ["hello", "utf8", "big_text"])
def test_pickle_str_from_python(pool, name, protocol):
    v = BYTES_VALUES[name]
    got = _plant_get(pool.get("pickle://"), "p", pickle.dumps(v.decode(), protocol=protocol))
    assert got == v, _show(got, v)


PICKLE_OBJECTS = ["int_0", "int_neg", "int_small", "int_i64_max", "int_i64_min", "int_u64_max", "float_1_5",
                  "float_0_1", "float_1e100", "true", "false", "none", "list", "empty_list", "empty_dict",
                  "dict", "nested", "str_non_ascii_in_list", "record"]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", PICKLE_OBJECTS)
def test_pickle_objects_render_as_json(pool, name, protocol):
    obj = OBJECTS[name]
    exp = json.dumps(obj).encode()
    got = _plant_get(pool.get("pickle://"), "p", pickle.dumps(obj, protocol=protocol))
    assert got == exp, _show(got, exp)


@pytest.mark.parametrize("protocol", [2, 5])
def test_pickle_big_int_and_tuple(pool, protocol):
    d = pool.get("pickle://")
    assert _plant_get(d, "p", pickle.dumps(2 ** 100, protocol=protocol)) == str(2 ** 100).encode()
    assert _plant_get(d, "p", pickle.dumps(-(2 ** 70), protocol=protocol)) == str(-(2 ** 70)).encode()
    assert _plant_get(d, "p", pickle.dumps((1, "a", (2.5,)), protocol=protocol)) == b'[1, "a", [2.5]]'


def test_pickle_shared_references_render_both(pool):
    inner = ["x", 1]
    obj = {"a": inner, "b": inner}                  # memo: the second is a GET of the first
    exp = json.dumps(obj).encode()
    for p in (2, 3, 4, 5):
        assert _plant_get(pool.get("pickle://"), "p", pickle.dumps(obj, protocol=p)) == exp


# ---- chains ---------------------------------------------------------------------------------------

def test_chains_from_python(pool):
    obj = OBJECTS["record"]
    v = BYTES_VALUES["utf8"]
    cases = [
        ("msgpack+zstd://", zstd.compress(msgpack.packb(v), 3), v),
        ("msgpack+zstd://", zstd.compress(msgpack.packb(obj), 3), json.dumps(obj).encode()),
        ("msgpack+zlib://", zlib.compress(msgpack.packb(v)), v),
        ("json+zlib://", zlib.compress(json.dumps(v.decode()).encode()), v),
        ("json+zlib://", zlib.compress(json.dumps(obj).encode(), 9), json.dumps(obj).encode()),
        ("pickle+zstd://", zstd.compress(pickle.dumps(v, 5), 3), v),
        ("pickle+zstd://", zstd.compress(pickle.dumps(obj, 4), 19), json.dumps(obj).encode()),
        ("pickle+zlib://", zlib.compress(pickle.dumps(v, 2)), v),
        ("json+zstd://", zstd.compress(json.dumps("😀 " * 1000).encode(), 3), ("😀 " * 1000).encode()),
    ]
    for url, stored, exp in cases:
        got = _plant_get(pool.get(url), "chain", stored)
        assert got == exp, "%s: %s" % (url, _show(got, exp))
