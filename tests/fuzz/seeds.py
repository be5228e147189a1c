#!/usr/bin/python3
"""Write the hand-made seed inputs of tests/fuzz/corpus/<target>/ (files named seed-*).

    /usr/bin/python3 tests/fuzz/seeds.py [CORPUS-DIR]       (default: tests/fuzz/corpus next to this file)

Seeds are valid values and messages as real clients and cachetory (Python) write them, plus the edge
cases each parser must refuse or bound. The script only (re)writes seed-* files; inputs found by fuzzing
(merged with `scripts/fuzz TARGET SECONDS --merge`) and regression inputs (regress-*) are left alone.
It needs Debian's python3-msgpack and python3-zstd (and the zstd CLI for the streaming frames); seeds
that need a missing one are skipped with a note. Output is deterministic.
"""
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib

try:
    import msgpack
except ImportError:
    msgpack = None
try:
    import zstd
except ImportError:
    zstd = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
written = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "seed-" + name)
    with open(path, "wb") as f:
        f.write(data)
    written[target] = written.get(target, 0) + 1


def skip(what):
    print("seeds.py: skipped %s" % what, file=sys.stderr)


def zstd_c(data, level=3):
    return zstd.compress(data, level)


def zstd_cli(data, *args):
    """A frame as the zstd CLI writes it reading a pipe: no content size (a streaming producer)."""
    if shutil.which("zstd") is None:
        return None
    return subprocess.run(["zstd", "-q", "-c", *args], input=data, stdout=subprocess.PIPE, check=True).stdout


BINARY = bytes(range(256)) * 2

# ---- resp_parse -------------------------------------------------------------------------------------
R = "resp_parse"
seed(R, "inline-ping", b"PING\r\n")
seed(R, "inline-lf-only", b"PING\n")
seed(R, "inline-empty-lines", b"\r\n\n \t\r\n")
seed(R, "inline-set", b"SET key value\r\nGET key\r\n")
seed(R, "inline-quoted", b'SET "a b" \'c d\' "\\x41\\x4g\\n\\t\\r\\b\\a\\"\\\\" \'it\\\'s\'\r\n')
seed(R, "inline-quote-mid-arg", b'a"b c"d e\r\n')
seed(R, "inline-unbalanced-double", b'SET "abc\r\n')
seed(R, "inline-unbalanced-single", b"SET 'abc\r\n")
seed(R, "inline-close-quote-then-char", b'SET "a"b\r\n')
seed(R, "inline-vt-ff", b"\x0b\x0cGET\x0bx\tk\r\n")
seed(R, "inline-nul", b"PI\x00NG\r\n")
seed(R, "inline-high-bytes", b"SET \xff\xfe \xc3\xa9\r\n")
seed(R, "mb-ping", b"*1\r\n$4\r\nPING\r\n")
seed(R, "mb-set", b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
seed(R, "mb-pipeline", b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
seed(R, "mb-binary-payload", b"*2\r\n$3\r\nSET\r\n$8\r\n\r\n\x00*1\r\n$\r\n")
seed(R, "mb-zero", b"*0\r\n")
seed(R, "mb-minus-one", b"*-1\r\n*-5\r\n")
seed(R, "mb-minus-zero", b"*-0\r\n")
seed(R, "mb-leading-zero", b"*01\r\n$1\r\na\r\n")
seed(R, "mb-plus", b"*+1\r\n")
seed(R, "mb-skipped-bytes", b"*1\rX$1\r\naYZ")
seed(R, "mb-empty-bulk", b"*2\r\n$0\r\n\r\n$0\r\n\r\n")
seed(R, "mb-bulk-minus-one", b"*1\r\n$-1\r\n")
seed(R, "mb-bulk-space", b"*1\r\n$ 1\r\na\r\n")
seed(R, "mb-not-dollar", b"*1\r\n:1\r\n")
seed(R, "mb-not-dollar-cr", b"*1\r\n\r\n")
seed(R, "mb-incomplete", b"*3\r\n$3\r\nSET\r\n$3\r\nke")
seed(R, "mb-count-intmax", b"*2147483647\r\n$1\r\na\r\n")
seed(R, "mb-count-intmax-plus1", b"*2147483648\r\n")
seed(R, "mb-count-11-unauth", b"*11\r\n")
seed(R, "mb-count-overflow", b"*99999999999999999999\r\n")
seed(R, "mb-count-llong-min", b"*-9223372036854775808\r\n")
seed(R, "mb-bulk-16385-unauth", b"*1\r\n$16385\r\n")
seed(R, "mb-bulk-512mb", b"*1\r\n$536870912\r\n")
seed(R, "mb-bulk-512mb-plus1", b"*1\r\n$536870913\r\n")
seed(R, "mb-bulk-2e40", b"*1\r\n$1099511627776\r\n")
seed(R, "mb-bulk-overflow", b"*1\r\n$18446744073709551616\r\n")
seed(R, "mb-nul-in-header", b"*1\x00\r\n$1\r\na\r\n")
seed(R, "mb-nul-in-bulk", b"*1\r\n$4\r\nP\x00NG\r\n")
seed(R, "mixed", b"PING\r\n*1\r\n$4\r\nPING\r\n\r\nECHO \"x\"\n*0\r\n")
seed(R, "inline-64k-no-eol", b"a" * 65537)
seed(R, "inline-64k-exact", b"a" * 65536)
seed(R, "inline-64k-then-eol", b"a" * 65536 + b"\n")
seed(R, "mb-count-64k", b"*" + b"1" * 65537)
seed(R, "mb-bulkhead-64k", b"*1\r\n$" + b"1" * 65537)

# ---- url -------------------------------------------------------------------------------------------
U = "url"
urls = [
    "msgpack+zstd://?compression-level=3", "redis://:pw@host:6379/0", "redis+unix:///run/redis.sock?db=1",
    "redis://user:p%40ss@[::1]:6380/2?a=b&c", "zstd://?compression-level=-5&compression-threads=2",
    "pickle://?pickle-protocol=2&strict=yes&max-decoded-size=1mb&compression-min-size=4kb",
    "pickle+zlib://?compression-min-size=4kb", "json+zlib://?", "HTTP://Example.COM:80/a%20b?x=1+2",
    "://x", "a://%", "a://%4", "a://%00", "a://%zz", "a://[::1", "a://[::1]x", "a://[::1]:", "a://h:99999",
    "a://h:", "a://h:-1", "a://h:+1", "a://h:08", "a://u@h@i", "a://?&&=x", "a://?a=%41+b&a=2", "null://",
    "noop://", "zstandard://", "zlib+zlib+zlib+zlib+zlib+zlib+zlib+zlib+zlib://", "msgpack+unknown://",
    "zstd://host", "zstd:///", "zstd:///path", "zstd://?compression-level=23", "zstd+zlib://?compression-level=9",
    "zstd://?compression-min-size=10&strict=1", "json://?compression-min-size=10", "zstd://?strict=maybe",
    "zstd://?bogus=1", "zstd://?max-decoded-size=0", "zstd://?max-decoded-size=9223372036854775807",
    "zlib://?compression-level=-2", "s c://", "+://", "a+b.c-d://", "json://user@", "redis://:@h",
    "memory://", "dummy://", "zstd://?compression-threads=201", "x:/y", "mailto:a@b",
]
for i, u in enumerate(urls):
    seed(U, "%02d" % i, u)

# ---- config ----------------------------------------------------------------------------------------
C = "config"
with open(os.path.join(HERE, "..", "..", "conf", "cachetoryd.conf"), "rb") as f:
    seed(C, "shipped-conf", f.read())
configs = {
    "minimal": "[server]\nport = 7000\n",
    "all-sections": "port = 1\n[server]\nbind = 127.0.0.1 ::1\n[cache]\nbackend = redis://localhost:6379/0\n"
                    "serializer = msgpack+zstd://\nmaxmemory = 100mb\nmaxmemory-policy = volatile-ttl\n"
                    "[upstream]\nupstream-pool-size = 8\npassthrough = yes\n[log]\nloglevel = debug\nlogfile =\n",
    "unknown-section": "[sever]\nport = 1\n",
    "wrong-section": "[cache]\nport = 1\n",
    "duplicate": "port = 1\n[server]\nport = 2\n",
    "bad-int": "port = x\n",
    "int-range": "port = 65536\n",
    "bind-17": "bind = " + " ".join("127.0.0.%d" % i for i in range(1, 18)) + "\n",
    "bind-bad": "bind = localhost\n",
    "bind-long": "bind = " + "1" * 50 + "\n",
    "long-line": "requirepass = " + "x" * 300 + "\n",
    "long-comment": "# " + "c" * 400 + "\nport = 1\n",
    "bom-crlf": "\ufeff[server]\r\nport = 7000\r\n",
    "indented": "[server]\n   port = 7000\n\tbind = ::1\n",
    "quotes": "requirepass = \"a ; b\"\nunixsocket = '/tmp/x.sock'\npidfile = \"\n",
    "colon": "port: 7000\n",
    "redis-style": "port 7000\n",
    "bind-colons": "bind ::1\n",
    "section-comment": "[server] ; the server\nport = 1\n",
    "section-junk": "[server] x\n",
    "section-open": "[server\n",
    "no-name": "= value\n",
    "sizes": "[server]\nproto-max-bulk-len = 1GB\nclient-query-buffer-limit = 9223372036854775807\n"
             "client-output-buffer-limit = 9223372036854775808\n",
    "size-units": "maxmemory = 1k\ncodec-thread-min-size = 1Mb\n",
    "octal": "unixsocketperm = 0777\n",
    "octal-bad": "unixsocketperm = 0778\n",
    "enum-bad": "loglevel = loud\n",
    "url-bad": "serializer = zstd\n",
    "bool-bad": "passthrough = maybe\n",
    "nul": "port = 70\x0000\n",
    "inline-comment": "port = 7000 ; the port\nbind = ::1 # not a comment\n",
    "argv": "--port\n7000\n--maxmemory\n100mb\n",
    "argv-missing": "--port\n",
    "argv-dash": "--\nx\n",
    "argv-twice": "--port\n1\n--port\n2\n",
    "argv-unknown": "--prot\n1\n",
    "set-pair": "maxmemory-policy\nallkeys-lfu\n",
    "glob-star": "*\n",
    "glob-max": "max*\n",
    "glob-set": "*[a-c]?\n",
    "glob-neg": "[^m]*\n",
    "glob-escape": "\\*\n",
    "glob-unterminated": "*memory[\n",
    "glob-range-dash": "m[a-]x*\n",
    "glob-many-stars": "*a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*\n",
}
for k, v in configs.items():
    seed(C, k, v)

# ---- codec_zlib ------------------------------------------------------------------------------------
Z = "codec_zlib"
seed(Z, "python-level6", zlib.compress(b"hello, world " * 20))
seed(Z, "python-level9-binary", zlib.compress(BINARY, 9))
seed(Z, "python-level0-empty", zlib.compress(b"", 0))
seed(Z, "raw-deflate", zlib.compressobj(6, zlib.DEFLATED, -15).compress(b"raw deflate") +
     zlib.compressobj(6, zlib.DEFLATED, -15).flush())
co = zlib.compressobj(6, zlib.DEFLATED, 31)
seed(Z, "gzip", co.compress(b"gzip wrapped") + co.flush())
good = zlib.compress(b"checksum", 6)
seed(Z, "bad-adler", good[:-1] + bytes([good[-1] ^ 1]))
seed(Z, "truncated", zlib.compress(BINARY)[:-7])
seed(Z, "bomb-10mib", zlib.compress(b"\0" * (10 << 20), 9))
seed(Z, "zeros-1mib-plus1", zlib.compress(b"\0" * ((1 << 20) + 1), 9))
co = zlib.compressobj(9, zlib.DEFLATED, 8)
seed(Z, "window-8", co.compress(b"abc" * 50) + co.flush())
co = zlib.compressobj(1, zlib.DEFLATED, 15)
seed(Z, "sync-flush-no-end", co.compress(b"no final block") + co.flush(zlib.Z_SYNC_FLUSH))

# ---- codec_zstd ------------------------------------------------------------------------------------
S = "codec_zstd"
if zstd is not None:
    seed(S, "python-level3", zstd_c(b"hello, world " * 20))
    seed(S, "python-level1-binary", zstd_c(BINARY, 1))
    seed(S, "python-empty", zstd_c(b""))
    seed(S, "bomb-10mib-declared", zstd_c(b"\0" * (10 << 20), 19))
    seed(S, "zeros-1mib", zstd_c(b"\0" * (1 << 20), 19))
    seed(S, "zeros-1mib-plus1", zstd_c(b"\0" * ((1 << 20) + 1), 19))
    good = zstd_c(b"a" * 100 + BINARY)
    seed(S, "truncated", good[:-3])
    seed(S, "trailing-garbage", good + b"\x00")
else:
    skip("zstd seeds from python3-zstd")
stream = zstd_cli(b"\0" * (2 << 20), "-19")
if stream is not None:
    seed(S, "stream-2mib-no-size", stream)
    seed(S, "stream-checksum-binary", zstd_cli(BINARY * 4, "--check"))
else:
    skip("zstd CLI frames")
# window 2^30, no content size: one raw block of 1 byte
seed(S, "window-2e30", b"\x28\xb5\x2f\xfd\x00\xa0\x09\x00\x00a")
# dictionary id set (1 byte), content size 1: refused, no dictionary
seed(S, "dict-id", b"\x28\xb5\x2f\xfd\x21\x07\x01\x09\x00\x00a")
# frame with checksum flag, wrong checksum
seed(S, "bad-checksum", b"\x28\xb5\x2f\xfd\x24\x01\x09\x00\x00a\x00\x00\x00\x00")
# a legacy (v0.7) magic
seed(S, "legacy-magic", b"\x27\xb5\x2f\xfd" + b"\0" * 8)

# ---- codec_json ------------------------------------------------------------------------------------
J = "codec_json"
jdocs = {
    "string": json.dumps("hello"),
    "string-escapes": json.dumps("\u00e9\U0001f600\n\t\"\\/\x01"),
    "string-raw-utf8": json.dumps("\u00e9\U0001f600", ensure_ascii=False),
    "lone-surrogate": '"\\ud800"',
    "surrogate-pair-escaped": '"\\ud83d\\ude00"',
    "object-repeats": '{"a": 1, "b": 2, "a": 3}',
    "object-nested": '{"a":{"b":[{},[],{"c":null}]},"d":"\\u00e9"}',
    "numbers": "[1, 2.5, -0, -0.0, 1e400, -1e400, 1E2, 1e-400, 0.1, 123456789012345678901234567890]",
    "specials": "[NaN, Infinity, -Infinity, true, false, null]",
    "int-4300": "1" * 4300,
    "int-4301": "1" * 4301,
    "depth-128": "[" * 128 + "]" * 128,
    "depth-129": "[" * 129 + "]" * 129,
    "whitespace": " \t\r\n 1 \n",
    "empty": "",
    "unterminated": '"abc',
    "missing-colon": '{"a" 1}',
    "trailing-comma": "[1,]",
    "leading-zero": "01",
    "minus": "-",
    "dot": "1.",
    "dot-first": ".5",
    "exp": "1e",
    "bad-escape": '"\\x41"',
    "control-char": '"a\x01b"',
    "trailing-data": '"a" "b"',
    "vt-whitespace": "\x0b1",
    "big-string-escapes": json.dumps("\u20ac" * 2000),
    "keys-equal-after-escape": '{"a": 1, "\\u0061": 2}',
}
for k, v in jdocs.items():
    seed(J, k, v)
seed(J, "bom-utf8", b"\xef\xbb\xbf" + json.dumps({"x": [1]}).encode())
doc = json.dumps({"k": ["v", 1, "\u00e9"]})
seed(J, "utf16le-bom", b"\xff\xfe" + doc.encode("utf-16-le"))
seed(J, "utf16be", doc.encode("utf-16-be"))
seed(J, "utf32le", doc.encode("utf-32-le"))
seed(J, "utf32be-bom", b"\x00\x00\xfe\xff" + doc.encode("utf-32-be"))
seed(J, "utf16-odd", doc.encode("utf-16-le")[:-1])
seed(J, "invalid-utf8", b'"\xff\xfe"')

# ---- codec_msgpack ---------------------------------------------------------------------------------
M = "codec_msgpack"
if msgpack is not None:
    values = {
        "nil": None, "true": True, "false": False, "fixint": 5, "negfixint": -3, "uint8": 200, "uint16": 60000,
        "uint32": 4000000000, "uint64": 2 ** 64 - 1, "int8": -100, "int16": -30000, "int32": -2 ** 31,
        "int64": -2 ** 63, "float64": 0.1, "fixstr": "hi", "str8": "s" * 40, "str16": "t" * 300,
        "bin8": b"\x00\xff", "bin16": BINARY, "fixarray": [1, "a", None], "array16": list(range(20)),
        "fixmap": {"a": 1, "b": [True, False]}, "map16": {str(i): i for i in range(20)},
        "nested": {"l": [{"m": {"n": [1.5, -2, "x", b"\x01"]}}]}, "int-keys": {1: "a", 2.5: "b"},
        "bin-in-array": [b"\x00\xe9\xff"],
    }
    for k, v in values.items():
        seed(M, k, msgpack.packb(v, use_bin_type=True, strict_types=False))
    seed(M, "float32", msgpack.packb(0.1, use_single_float=True))
    seed(M, "str32", b"\xdb" + struct.pack(">I", 3) + b"abc")
    seed(M, "bin32", b"\xc6" + struct.pack(">I", 3) + b"abc")
    seed(M, "array32", b"\xdd" + struct.pack(">I", 2) + b"\x01\x02")
    seed(M, "map32", b"\xdf" + struct.pack(">I", 1) + b"\xa1k\xc0")
    seed(M, "array32-2e24-declared", b"\xdd\x01\x00\x00\x00")
    seed(M, "map-repeats", b"\x84\x01\xa1a\xcb" + struct.pack(">d", 1.0) + b"\xa1b\xc3\xa1c\xa1k\xa1d")
    seed(M, "map-nan-keys", b"\x82\xcb" + struct.pack(">d", float("nan")) + b"\x01\xcb" +
         struct.pack(">d", float("nan")) + b"\x02")
    seed(M, "map-bin-key", b"\x81\xc4\x01k\x01")
    seed(M, "map-array-key", b"\x81\x91\x01\x01")
    seed(M, "ext-fixext1", b"\xd4\x01\x00")
    seed(M, "ext8", b"\xc7\x02\x05ab")
    seed(M, "timestamp", msgpack.packb(msgpack.Timestamp(1, 2)))
    seed(M, "c1", b"\xc1")
    seed(M, "truncated", msgpack.packb({"a": [1, 2, 3]})[:-1])
    seed(M, "trailing", msgpack.packb("x") + b"\x00")
    seed(M, "depth-128", b"\x91" * 127 + b"\x90")
    seed(M, "depth-129", b"\x91" * 128 + b"\x90")
    seed(M, "str-invalid-utf8-top", b"\xa2\xff\xfe")
    seed(M, "str-invalid-utf8-inside", b"\x91\xa2\xff\xfe")
    seed(M, "floats-special", msgpack.packb([float("inf"), float("-inf"), float("nan"), -0.0, 1e300]))
else:
    skip("msgpack seeds (python3-msgpack)")

# ---- codec_pickle ----------------------------------------------------------------------------------
P = "codec_pickle"
pvalues = {
    "bytes": b"hello \x00\xff", "bytes-empty": b"", "bytes-300": BINARY[:300], "str": "h\u00e9llo \U0001f600",
    "int": 12345, "int-neg": -7, "int-big": 2 ** 100, "int-huge-neg": -(2 ** 70), "list": [1, "a", b"b", None],
    "dict": {"a": 1, "b": [2.5, True, False]}, "tuple": (1, (2, 3)), "float": 1.5, "none": None, "bool": True,
}
for proto in range(0, 6):
    for k, v in pvalues.items():
        if proto in (2, 3, 5) or k in ("bytes", "str", "dict", "list", "int-big"):
            seed(P, "p%d-%s" % (proto, k), pickle.dumps(v, protocol=proto))
seed(P, "p5-bytearray", pickle.dumps(bytearray(b"ba"), protocol=5))
seed(P, "p4-bytes-64k-unframed", pickle.dumps(b"x" * 65536, protocol=4))
shared = [1, 2]
seed(P, "p4-memo-shared", pickle.dumps([shared, shared, {"k": shared}], protocol=4))
cyc = []
cyc.append(cyc)
seed(P, "p2-cycle", pickle.dumps(cyc, protocol=2))
bomb = []
for _ in range(24):
    bomb = [bomb, bomb]
seed(P, "p4-memo-bomb", pickle.dumps(bomb, protocol=4))
seed(P, "p3-keys-equal", pickle.dumps({1: "int", 1.0: "float", True: "bool", "1": "str"}, protocol=3))
seed(P, "p4-int-4301-digits", pickle.dumps(10 ** 4300, protocol=4))
seed(P, "p4-int-4300-digits", pickle.dumps(10 ** 4299, protocol=4))
seed(P, "p5-set", pickle.dumps({1, 2}, protocol=5))
seed(P, "p5-frozenset", pickle.dumps(frozenset([1]), protocol=5))
seed(P, "p2-global-os-system", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
seed(P, "p5-next-buffer", b"\x80\x05\x97.")
seed(P, "p4-deep-list", b"\x80\x04" + b"]" * 1100 + b"." )
seed(P, "p4-deep-nested", b"\x80\x04" + b"(" * 3 + b"]" + b"a" * 3 + b".")
seed(P, "p0-text", b"(lp0\nI1\naS'abc'\np1\na.")
seed(P, "p1-binstring", b"]q\x00(U\x03abcq\x01K\x01e.")
seed(P, "p4-frame-short", b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.")
seed(P, "p4-frame-huge", b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.")
seed(P, "binunicode8-huge", b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff.")
seed(P, "long4-huge", b"\x80\x02\x8b\xff\xff\xff\x7f.")
seed(P, "stop-only", b".")
seed(P, "empty", b"")
seed(P, "mark-stop", b"(.")
seed(P, "pop-mark-empty", b"1.")
seed(P, "dup-empty", b"2.")
seed(P, "get-missing", b"\x80\x02h\x05.")
seed(P, "float-text", b"F1e400\n.")
seed(P, "float-nan", b"F nan\n.")
seed(P, "int-text-bool", b"I01\n.")
seed(P, "long-text", b"L123456789012345678901234567890L\n.")
seed(P, "string-escapes", b"S'a\\x41\\n\\'q'\n.")
seed(P, "unicode-raw-escape", b"V\\u00e9\\U0001f600\n.")
seed(P, "lone-surrogate", b"\x80\x04\x8c\x03\xed\xa0\x80.")

# ---- chain -----------------------------------------------------------------------------------------
# the first byte picks a chain from fuzz_chain.c's table, by index:
CH = "chain"
if msgpack is not None and zstd is not None:
    V = b"a value \x00\xff"
    T = "a text \u00e9"
    mp = lambda b: msgpack.packb(b, use_bin_type=True)
    chain_seeds = [
        (0, "msgpack-zstd", zstd_c(mp(V))),
        (0, "msgpack-zstd-map", zstd_c(mp({"a": [1, 2.5]}))),
        (1, "json-zlib", zlib.compress(json.dumps(T).encode())),
        (1, "json-zlib-object", zlib.compress(b'{"a": 1, "a": 2}')),
        (2, "pickle-zstd", zstd_c(pickle.dumps(V, protocol=5))),
        (2, "pickle-zstd-dict", zstd_c(pickle.dumps({"k": [1, None]}, protocol=4))),
        (3, "zstd", zstd_c(V)),
        (3, "zstd-bomb", zstd_c(b"\0" * (3 << 20), 19)),
        (4, "zlib", zlib.compress(V, 9)),
        (5, "json", json.dumps(T).encode()),
        (6, "msgpack", mp(V)),
        (7, "pickle-p2", pickle.dumps(V, protocol=2)),
        (8, "pickle-zlib-p3", zlib.compress(pickle.dumps(V, protocol=3))),
        (8, "pickle-zlib-raw-strict", V),
        (9, "pickle-zstd-p4", zstd_c(pickle.dumps(V, protocol=4), -3)),
        (10, "msgpack-zlib-zstd", zstd_c(zlib.compress(mp(V), 1), 1)),
        (11, "json-zstd-strict", zstd_c(json.dumps(T).encode())),
        (11, "json-zstd-raw-strict", b"plain"),
        (12, "zstd-min-size-short", b"short"),
        (12, "zstd-min-size-long", zstd_c(V * 10)),
        (13, "zlib-min-size-strict-short", b"short"),
        (13, "zlib-min-size-strict-raw", V * 3),
        (14, "msgpack-zstd-4kb-over", zstd_c(mp(b"x" * 5000))),
        (15, "null", V),
        (0, "raw-value-mixed", b"not encoded at all"),
    ]
    for idx, name, data in chain_seeds:
        seed(CH, "%02d-%s" % (idx, name), bytes([idx]) + data)
else:
    skip("chain seeds (python3-msgpack and python3-zstd)")

# ---- tls -------------------------------------------------------------------------------------------
# Each input is fed to a server session (as a client's bytes) and to a client session (as a server's
# answers). Bytes that are not TLS, written here; recorded TLS sessions, written by the harness itself
# (fuzz_tls.c: its certificates, and its deterministic randomness under which they replay), from the
# replay build, which is made if missing.
TL = "tls"
seed(TL, "resp-ping", b"*1\r\n$4\r\nPING\r\n")
seed(TL, "resp-inline", b"PING\r\n")
seed(TL, "http-get", b"GET / HTTP/1.1\r\nHost: localhost:6390\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
seed(TL, "redis-error-reply", b"-ERR unknown command '\x16\x03\x01\x02', with args beginning with: \r\n")
# a handshake record's header announcing 512 bytes, and the first 7 of them: more must come
seed(TL, "record-truncated", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00")
seed(TL, "record-too-long", b"\x16\x03\x01\xff\xff" + b"\x00" * 64)
seed(TL, "record-empty", b"\x16\x03\x01\x00\x00")
seed(TL, "alert-fatal", b"\x15\x03\x03\x00\x02\x02\x28")
seed(TL, "alert-close-notify", b"\x15\x03\x03\x00\x02\x01\x00")
seed(TL, "change-cipher-spec", b"\x14\x03\x03\x00\x01\x01")
# an SSLv2-format ClientHello (as old clients sent to find a TLS 1.0 server): 2-byte header, type 1,
# version 3.1, three cipher specs, no session id, a 16-byte challenge
SSL2_BODY = b"\x01\x03\x01\x00\x09\x00\x00\x00\x10" + b"\x00\x00\x2f\x00\x00\x35\x00\x00\xff" + bytes(range(16))
seed(TL, "sslv2-hello", bytes([0x80, len(SSL2_BODY)]) + SSL2_BODY)


def tls_sessions():
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    build = os.environ.get("BUILD", "build")
    binary = os.path.join(root, build, "fuzz-replay", "tls")
    if subprocess.run(["make", "-s", "--no-print-directory", "-C", root, "BUILD=" + build,
                       os.path.join(build, "fuzz-replay", "tls")],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0 or not os.access(binary, os.X_OK):
        skip("the recorded TLS sessions (make %s failed)" % os.path.join(build, "fuzz-replay", "tls"))
        return
    d = os.path.join(ROOT, TL)
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, FUZZ_TLS_SEEDS=d)
    out = subprocess.run([binary, "/dev/null"], env=env, stdout=subprocess.PIPE, check=True).stdout.decode()
    for line in out.splitlines():
        if line.startswith("seed-"):
            written[TL] = written.get(TL, 0) + 1


tls_sessions()

for t in sorted(written):
    print("%-14s %3d seeds" % (t, written[t]))
