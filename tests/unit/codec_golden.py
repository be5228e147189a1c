#!/usr/bin/python3
"""Print the golden vectors of tests/unit/test_codec_zlib.c and test_codec_zstd.c as C tables.

The bytes are what cachetory writes: ZlibCompressor is zlib.compress(data, level) (CPython's zlib module),
ZstdCompressor is zstd.compress(data, level, threads) (python-zstd; Debian: apt-get install python3-zstd).

    /usr/bin/python3 tests/unit/codec_golden.py zlib|zstd

python-zstd 1.5.2.5 (Debian 12) cannot compress an empty value: it returns ZSTD_compressBound(0) = 64
bytes of uninitialized memory instead of a frame (its compress() skips ZSTD_compress2 when the input is
empty; later versions fixed it). The empty vector is therefore taken from the zstd CLI,
`zstd -3 --no-check -c EMPTY_FILE`, which is also what ZSTD_compress2 writes.
"""
import sys
import zlib

INPUTS = {
    "empty": b"",
    "hello": b"hello",
    "a1000": b"a" * 1000,
    # binary with NUL bytes: every byte value once, then a NUL-rich record 40 times (856 bytes)
    "binary": bytes(range(256)) + b"\x00\x00\x01\x00key\x00value\x00\xff" * 40,
}
ZSTD_EMPTY = "28b52ffd2000010000"


def c_string(hexstr, indent="     "):
    if not hexstr:
        return '""'
    parts = [hexstr[i:i + 96] for i in range(0, len(hexstr), 96)]
    return ("\n" + indent).join('"%s"' % p for p in parts)


def main():
    kind = sys.argv[1]
    if kind == "zlib":
        levels = (-1, 0, 1, 6, 9)
        enc = lambda data, lvl: zlib.compress(data, lvl).hex()
    else:
        import zstd
        levels = (-5, 1, 3, 19)
        enc = lambda data, lvl: zstd.compress(data, lvl).hex() if data else ZSTD_EMPTY
    for name, data in INPUTS.items():
        for lvl in levels:
            print("    {GOLDEN_%s, %d,\n     %s}," % (name.upper(), lvl, c_string(enc(data, lvl))))


main()
