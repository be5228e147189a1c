#!/usr/bin/python3
"""
Generate tests/unit/data/pickle_vectors.h for tests/unit/test_codec_pickle.c from CPython itself:

    /usr/bin/python3 tests/unit/data/pickle_vectors.py > tests/unit/data/pickle_vectors.h

Encode vectors: pickle.dumps(payload, protocol=P) for P = 2..5 and many sizes, stored as the bytes
before and after the payload's text (found with pickletools, not assumed), so the header stays small
whatever the size; the test rebuilds the payload with the same formula (pv_payload).

Decode vectors: pickle.dumps(obj, protocol=P) for P = 0..5 and what cachetoryd must return for it: the
bytes of a bytes value, the UTF-8 of a str, json.dumps(obj) for anything else (bytes inside a
structure as their latin-1 text). Every proper prefix is checked here to be refused by CPython too.

Edge vectors: hand-made pickles (EDGES) with CPython's verdict, or cachetoryd's where a note says why it
differs. An audit hook (refuse_globals) stops pickle.loads before it imports anything but the two
callables cachetoryd allows: the malicious pickles among them are never run here.
"""
import json
import math
import pickle
import pickletools
import sys
import warnings

assert sys.version_info[:2] == (3, 11), "vectors are CPython 3.11's"


def payload(n):
    # keep in sync with pv_payload() in test_codec_pickle.c
    return bytes(((i * 131 + 7) >> 1) & 0xff for i in range(n))


def fnv(b):
    # FNV-1a 64, as pv_fnv() in test_codec_pickle.c
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
    return h


def hexs(b):
    return '"' + b.hex() + '"'


def split(pk, proto):
    """(prefix, suffix) around the payload's bytes in pk, located by the pickle's own opcodes."""
    for op, arg, pos in pickletools.genops(pk):
        if op.name in ('SHORT_BINBYTES', 'BINBYTES', 'BINBYTES8', 'BINUNICODE') and not (
                op.name == 'BINUNICODE' and arg == 'latin1'):
            start = pos + 1 + {'SHORT_BINBYTES': 1, 'BINBYTES': 4, 'BINBYTES8': 8, 'BINUNICODE': 4}[op.name]
            body = arg if isinstance(arg, bytes) else arg.encode('utf-8', 'surrogatepass')
            assert pk[start:start + len(body)] == body
            return pk[:start], pk[start + len(body):]
    return pk, b''   # protocol 2, b'': no payload


def render(v):
    """What cachetoryd returns for a decoded value."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode('utf-8')

    def latin1(x):
        if isinstance(x, (bytes, bytearray)):
            return bytes(x).decode('latin-1')
        if isinstance(x, list):
            return [latin1(y) for y in x]
        if isinstance(x, tuple):
            return tuple(latin1(y) for y in x)
        if isinstance(x, dict):
            return {k: latin1(y) for k, y in x.items()}
        return x
    return json.dumps(latin1(v)).encode('ascii')


# Hand-made pickles: CPython decides (accepted: what cachetoryd must return; refused: CODEC_EFORMAT),
# except where a note says cachetoryd deliberately refuses what CPython accepts.
ONLY_CANONICAL = 'cachetoryd accepts only the spellings CPython writes'
EDGES = [
    # end of the pickle
    (b'N.garbage', None), (b'K\x01K\x02.', None), (b'(K\x01.', None), (b'(.', None), (b'K\x01(.', None),
    (b'', None), (b'N', None), (b'.', None), (b'\x80\x05', None),
    # MARK and its fence
    (b'K\x01(]a.', None), (b'](K\x01a.', None), (b']K\x01(K\x02ea.', None), (b'(' * 1000 + b']' + b'.', None),
    (b'N(K\x01\x86.', None), (b'K\x01(e.', None), (b'K\x01(u.', None), (b'K\x01(K\x02u.', None),
    (b'(K\x01\x85.', None), (b'K\x01K\x02\x85(\x86.', None), (b'N(\x94.', None), (b'N(p0\n.', None),
    (b'(t.', None), (b'N(Nt\x85.', None), (b'e.', None), (b'a.', None), (b's.', None), (b'Na.', None),
    (b'N0.', None), (b'NN0.', None), (b'N2.', None), (b'(N1.', None), (b'N(N1.', None), (b'N(0.', None),
    (b'N(0N.', None), (b'2.', None), (b'1.', None), (b't.', None), (b'l.', None), (b'd.', None),
    (b'\x85.', None), (b'N\x86.', None), (b'NN\x87.', None), (b'NNN\x87.', None),
    # protocol and frames
    (b'\x80\x06N.', None), (b'\x80\x05N.', None), (b'\x80\xffN.', None),
    (b'\x95\x05\x00\x00\x00\x00\x00\x00\x00N.', None), (b'\x95\x01\x00\x00\x00\x00\x00\x00\x00N.', None),
    (b'\x95\x00\x00\x00\x00\x00\x00\x00\x00N.', None), (b'\x95\x02\x00\x00\x00\x00\x00\x00\x00N.', None),
    (b'\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01\x95\x01\x00\x00\x00\x00\x00\x00\x00.', None),
    (b'\x95\x00\x00\x00\x00\x00\x00\x00\x80N.', None), (b'\x95\x00\x00\x00', None),
    # the memo
    (b'p0\n.', None), (b'Np0\nNg0\n\x86.', None), (b'Np-1\n.', None), (b'Ng1\n.', None), (b'Np\n.', None),
    (b'Nq\x05\x94h\x01.', None), (b'Nq\x05\x94h\x00.', None), (b'Nr\x00\x01\x00\x00j\x00\x01\x00\x00.', None),
    (b'Nh\x00.', None), (b'Nj\x00\x00\x00\x00.', None), (b'K\x01q\x00K\x02q\x00h\x00.', None),
    (b']q\x00K\x01ah\x00.', None), (b'\x94.', None),
    (b'Np 1\n.', ONLY_CANONICAL), (b'Np+1\ng1\n.', ONLY_CANONICAL),
    # the two callables
    (b'c__builtin__\nbytes\n)R.', None), (b'\x80\x03c__builtin__\nbytes\n)R.', None),
    (b'\x80\x03cbuiltins\nbytes\n)R.', None), (b'\x80\x02cbuiltins\nbytes\n)R.', None),
    (b'\x80\x04\x8c\x08builtins\x8c\x05bytes\x93)R.', None), (b'\x80\x04\x8c\x0b__builtin__\x8c\x05bytes\x93)R.', None),
    (b'\x80\x02\x8c\x0b__builtin__\x8c\x05bytes\x93)R.', None),
    (b'\x80\x02\x80\x03c__builtin__\nbytes\n)R.', None), (b'\x80\x03\x80\x02c__builtin__\nbytes\n)R.', None),
    (b'\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1\x86R.', None),
    (b'\x80\x02c_codecs\nencode\nC\x01aX\x06\x00\x00\x00latin1\x86R.', None),
    (b'\x80\x02c_codecs\nencode\n]R.', None), (b'\x80\x02c_codecs\nencode\nN.', None),
    (b'\x80\x02c__builtin__\nbytes\n.', None), (b'\x80\x02c_codecs\nencode\n)R.', None),
    (b'\x80\x02c_codecs\nencode\n(X\x01\x00\x00\x00aX\x06\x00\x00\x00latin1tR.', None),
    (b'\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03R]q\x04h\x03\x8c\x01x\x86R\x86.', None),
    (b'c_codecs\nencode\n(V\\u00ff\\u0000a\nVlatin1\ntR.', None),
    (b'c_codecs\nencode\n(Vab\nh\x00tR.', None),
    (b'\x8c\x07_codecs\x8c\x06encode\x93.', None), (b'\x8c\x08__main__\x8c\x05bytes\x93.', None),
    (b'K\x01\x8c\x05bytes\x93.', None), (b'\x8c\x05bytes\x93.', None), (b'c_codecs\nencode.', None),
    (b'cbuiltins\nbytes\n]R.', None), (b'cbuiltins\nbytes\n(tR.', None), (b'cbuiltins\nbytes\n)K\x01R.', None),
    (b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00utf-8\x86R.', 'only (str, \'latin1\') is understood'),
    (b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00a\x85R.', 'only (str, \'latin1\') is understood'),
    (b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00LATIN1\x86R.', 'only (str, \'latin1\') is understood'),
    (b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00latin1X\x06\x00\x00\x00strict\x87R.', 'only (str, \'latin1\') is understood'),
    (b'\x80\x02c__builtin__\nbytes\nK\x01\x85R.', 'only bytes() with no argument is understood'),
    # anything else that calls code: refused (here CPython is stopped by refuse_globals before it runs it)
    (b'cos\nsystem\n(Vecho hi\ntR.', None), (b'\x80\x02cposix\nsystem\nX\x05\x00\x00\x00echo \x85R.', None),
    (b'\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.', None), (b'cbuiltins\neval\n(V1\ntR.', None),
    (b'cbuiltins\ngetattr\n.', None), (b'}N\x8c\x01a\x86b.', None), (b'(cbuiltins\nint\no.', None),
    (b'(ibuiltins\nint\n.', None), (b'\x80\x02cbuiltins\nint\n)\x81.', None), (b'P0\n.', None), (b'NQ.', None),
    (b'\x82\x01.', None), (b'\x83\x01\x00.', None), (b'\x84\x01\x00\x00\x00.', None),
    (b'\x97.', None), (b'(\x97.', None), (b'N\x98.', None), (b'\x8f.', None), (b'\x8f(K\x01\x90.', None),
    (b'(K\x01\x91.', None), (b'\x80\x04cbuiltins\nint\n)}\x92.', None), (b'\xff.', None), (b'\x00.', None),
    (b'R.', None), (b'NR.', None), (b'NNR.', None),
    # numbers
    (b'I01\n.', None), (b'I00\n.', None), (b'I1\n.', None), (b'I-0\n.', None), (b'I0\n.', None), (b'I-1\n.', None),
    (b'I08\n.', None), (b'I99999999999999999999\n.', None), (b'I-9223372036854775808\n.', None),
    (b'I9223372036854775807\n.', None), (b'I9223372036854775808\n.', None), (b'I-9223372036854775809\n.', None),
    (b'I\n.', None), (b'I-\n.', None), (b'I1x\n.', None), (b'I1', None),
    (b'I+1\n.', ONLY_CANONICAL), (b'I 1\n.', ONLY_CANONICAL), (b'I010\n.', ONLY_CANONICAL),
    (b'I001\n.', ONLY_CANONICAL), (b'I000\n.', ONLY_CANONICAL), (b'I1 \n.', ONLY_CANONICAL),
    (b'L123L\n.', None), (b'L123\n.', None), (b'L0012\n.', None), (b'L-5L\n.', None), (b'L\n.', None),
    (b'LL\n.', None), (b'L0\n.', None), (b'L-0L\n.', None), (b'L00\n.', ONLY_CANONICAL),
    (b'L1_000\n.', ONLY_CANONICAL), (b'L+3\n.', ONLY_CANONICAL), (b'L3LL\n.', None), (b'L-L\n.', None),
    (b'L' + b'1' * 4300 + b'\n.', None), (b'L' + b'1' * 4301 + b'\n.', None),
    (b'L-' + b'9' * 4300 + b'L\n.', None), (b'I' + b'1' * 4301 + b'\n.', None),
    (b'\x8a\x00.', None), (b'\x8a\x01\xff.', None), (b'\x8a\x02\xff\x00.', None), (b'\x8a\x01\x80.', None),
    (b'\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.', None), (b'\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\xff.', None),
    (b'\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\x00.', None), (b'\x8a\x0a' + b'\xff' * 10 + b'.', None),
    (b'\x8a\x0a' + b'\x00' * 9 + b'\x80.', None), (b'\x8a\x02\x00\x00.', None),
    (b'\x8b\xff\xff\xff\xff.', None), (b'\x8b\x03\x00\x00\x00\x01\x02\x03.', None),
    (b'\x8b' + (1791).to_bytes(4, 'little') + b'\xff' * 1790 + b'\x7f.', None),
    (b'\x8b' + (1792).to_bytes(4, 'little') + b'\xff' * 1791 + b'\x7f.', None),
    (b'\x8b' + (1786).to_bytes(4, 'little') + b'\x00' * 1785 + b'\x01.', None),
    (b'\x8b' + (1787).to_bytes(4, 'little') + b'\x00' * 1786 + b'\x01.', None),
    (b'\x8b' + (5000).to_bytes(4, 'little') + b'\x00' * 4999 + b'\x01.', None),
    (b'(\x8b' + (5000).to_bytes(4, 'little') + b'\x00' * 4999 + b'\x011N.', None),
    (b'J\xff\xff\xff\xff.', None), (b'J\x00\x00\x00\x80.', None), (b'M\xff\xff.', None), (b'K\xff.', None),
    (b'F1.5\n.', None), (b'Finf\n.', None), (b'Fnan\n.', None), (b'F1e500\n.', None), (b'F-1e500\n.', None),
    (b'F1e-400\n.', None), (b'F0x10\n.', None), (b'F 1.5\n.', None), (b'Finfinity\n.', None), (b'F1_0\n.', None),
    (b'F-INF\n.', None), (b'F+NaN\n.', None), (b'F1.\n.', None), (b'F.5\n.', None), (b'F.\n.', None),
    (b'F1e\n.', None), (b'F1e+\n.', None), (b'F1e+5\n.', None), (b'F-0.0\n.', None), (b'F\n.', None),
    (b'F1.5 \n.', None), (b'Fnan(1)\n.', None), (b'Finfx\n.', None), (b'F0.1\n.', None),
    (b'F2.2250738585072011e-308\n.', None), (b'F' + b'1' * 400 + b'\n.', None),
    (b'F0.' + b'0' * 400 + b'1\n.', None), (b'G\x7f\xf0\x00\x00\x00\x00\x00\x00.', None),
    (b'G\xff\xf8\x00\x00\x00\x00\x00\x01.', None), (b'G\x80\x00\x00\x00\x00\x00\x00\x00.', None),
    (b'G\x00\x00\x00\x00\x00\x00\x00\x01.', None), (b'G?\xb9\x99\x99\x99\x99\x99\x9a.', None),
    # strings
    (b'V\\u0041\n.', None), (b'V\\\\u0041\n.', None), (b'V\\\n.', None), (b'V\\x\n.', None), (b'V\\u00\n.', None),
    (b'V\\U00110000\n.', None), (b'V\xff\n.', None), (b'V\\U0001F600\n.', None), (b'V\n.', None),
    (b'V\\\\\\u0041\n.', None), (b'V\\\\\\\\u0041\n.', None), (b'Va\\\n.', None), (b'V\\u004g\n.', None),
    (b'V\\\xff\\u0041\n.', None), (b'V\\u00411\n.', None), (b'V\\UFFFFFFFF\n.', None), (b'V\\U0010ffff\n.', None),
    (b'V\\u20ac\\U0001f600\x80\n.', None), (b'Vab', None),
    (b'X\x03\x00\x00\x00\xc0\x80a.', None), (b'X\x02\x00\x00\x00\xe2\x82.', None), (b'X\x01\x00\x00\x00\x80.', None),
    (b'X\x04\x00\x00\x00\xf4\x90\x80\x80.', None), (b'X\x04\x00\x00\x00\xf0\x8f\xbf\xbf.', None),
    (b'X\x03\x00\x00\x00\xe0\x9f\xbf.', None), (b'X\x04\x00\x00\x00\xf4\x8f\xbf\xbf.', None),
    (b'X\x03\x00\x00\x00\xef\xbf\xbf.', None), (b'X\x02\x00\x00\x00\xc2\x80.', None),
    (b'\x8c\x03\xe2\x82\xac.', None), (b'\x8d\x03\x00\x00\x00\x00\x00\x00\x00\xe2\x82\xac.', None),
    (b'X\x03\x00\x00\x00\xed\xa0\x80.', None),
    (b'X\x03\x00\x00\x00\xed\xbf\xbf\x85.', 'a str with a lone surrogate is not rendered'),
    (b'V\\ud800\n.', None),
    (b'T\x01\x00\x00\x00a.', None), (b'U\x01\xff.', None), (b'U\x02ab.', None), (b'T\xff\xff\xff\xff.', None),
    (b"S'a'\n.", None), (b'S"a\'\n.', None), (b"S'a\n.", None), (b"S'\\x4'\n.", None),
    (b"S'\\q\\101\\x41\\n'\n.", None), (b"S'\\'\n.", None), (b"S'\\777'\n.", None), (b"S'\xff'\n.", None),
    (b"S'\\xff'\n.", None), (b"S'\n.", None), (b"S''\n.", None), (b'S""\n.', None), (b"S'\\t\\v\\a\\b\\f\\r\\\"\\''\n.", None),
    (b"S'\\0\\1\\12\\123\\1234'\n.", None), (b"S'\\x'\n.", None), (b"S'\\x4g'\n.", None),
    # bytes
    (b'C\x00.', None), (b'C\x03abc.', None), (b'B\x03\x00\x00\x00abc.', None),
    (b'\x8e\x03\x00\x00\x00\x00\x00\x00\x00abc.', None), (b'\x96\x03\x00\x00\x00\x00\x00\x00\x00abc.', None),
    (b'(C\x01\xffC\x00\x96\x01\x00\x00\x00\x00\x00\x00\x00\x80l.', None),
    (b'\x96\x01\x00\x00\x00\x00\x00\x00\x00a(K\x01e.', 'APPENDS only into a list (CPython extends the bytearray)'),
    (b'\x96\x01\x00\x00\x00\x00\x00\x00\x00a(e.', None),
    # containers
    (b'](K\x01K\x02K\x03d.', None), (b'(K\x01K\x02K\x03d.', None), (b']K\x01K\x02s.', None), (b')K\x01a.', None),
    (b'}K\x01K\x02sG?\xf0\x00\x00\x00\x00\x00\x00K\x03s\x88K\x04s.', None),
    (b'}G?\xf0\x00\x00\x00\x00\x00\x00K\x03sK\x01K\x02s.', None),
    (b'}]K\x01s.', None), (b'}K\x01]\x85K\x01s.', None), (b'}K\x01\x85K\x01s.', None), (b'}C\x01aK\x01s.', None),
    (b'}NK\x01s.', None), (b'}\x89K\x01s.', None), (b'}(K\x01K\x02K\x01K\x03u.', None), (b'(K\x01K\x02K\x01K\x03d.', None),
    (b'}K\x01K\x02s\x8a\x01\x01K\x09s.', None),
    (b'}X\x01\x00\x00\x00aK\x01sX\x01\x00\x00\x00bK\x02sX\x01\x00\x00\x00aK\x03s.', None),
    (b'}G\x7f\xf8\x00\x00\x00\x00\x00\x00K\x01sG\x7f\xf8\x00\x00\x00\x00\x00\x00K\x02s.', None),
    (b'}G\x7f\xf8\x00\x00\x00\x00\x00\x00q\x00K\x01sh\x00K\x02s.', None),
    (b'}G\xc3\xe0\x00\x00\x00\x00\x00\x00K\x01s\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80K\x02s.', None),
    (b'}GD\x00\x00\x00\x00\x00\x00\x00K\x01s\x8a\x09' + (2**65).to_bytes(9, 'little') + b'K\x02s.', None),
    (b'}GD\x00\x00\x00\x00\x00\x00\x00K\x01sL36893488147419103232\nK\x02s.', None),
    (b'}GD\x00\x00\x00\x00\x00\x00\x01K\x01sL36893488147419103232\nK\x02s.', None),
    (b'}G\xc4\x00\x00\x00\x00\x00\x00\x00K\x01sL-36893488147419103232\nK\x02s.', None),
    (b'}G\x7f\xef\xff\xff\xff\xff\xff\xffK\x01sG\x7f\xef\xff\xff\xff\xff\xff\xffK\x02s.', None),
    (b'}GC\xe0\x00\x00\x00\x00\x00\x00K\x01s.', None), (b'}G\x80\x00\x00\x00\x00\x00\x00\x00K\x01sK\x00K\x02s.', None),
    (b'}K\x00K\x01s\x89K\x02sG\x00\x00\x00\x00\x00\x00\x00\x00K\x03s.', None),
    (b'}X\x01\x00\x00\x00aK\x01s\x8c\x01aK\x02sV\\u0061\nK\x03s.', None),
    (b'}NK\x01sNK\x02s.', None), (b'}G\x7f\xf0\x00\x00\x00\x00\x00\x00K\x01sG\x7f\xf0\x00\x00\x00\x00\x00\x00K\x02s.', None),
    (b'}G\xbf\xf8\x00\x00\x00\x00\x00\x00K\x01s.', None), (b'}L' + b'9' * 300 + b'\nK\x01s.', None),
    (b'}\x8b' + (5000).to_bytes(4, 'little') + b'\x00' * 4999 + b'\x01K\x01s.', None),
    (b'}\x8b' + (5000).to_bytes(4, 'little') + b'\x00' * 4999 + b'\x01K\x01sK\x02K\x03s.', None),
    (b'}(K\x01K\x02K\x03K\x04u(K\x05K\x06K\x01K\x07u.', None),
    (b'}X\x03\x00\x00\x00\xed\xa0\x80K\x01s.', 'a str with a lone surrogate is not rendered'),
    (b'}(K\x01]\x85\x85K\x01u.', None), (b'}(K\x01)\x85\x85K\x01u.', None), (b'}\x96\x00\x00\x00\x00\x00\x00\x00\x00K\x01s.', None),
    (b'}}K\x01s.', None), (b'N}K\x01K\x02s.', None), (b'}K\x01s.', None),
    (b']K\x01aK\x00K\x05s.', 'SETITEM only into a dict (CPython calls list.__setitem__)'),
    (b']q\x00h\x00a.', None), (b'}q\x00X\x01\x00\x00\x00ah\x00s.', None), (b']q\x00h\x00\x85a.', None),
    (b']q\x00(h\x00h\x00h\x00e.', None), (b'](]q\x00h\x00h\x00e.', None), (b']q\x00]q\x01h\x00ah\x01h\x00a.', None),
    (b'](K\x01K\x02e(K\x03e.', None), (b'(]t.', None), (b'(}l.', None), (b')q\x00h\x00h\x00\x86.', None),
    (b'((((((((((((((((((((((((((((((((((((((((((((((((ttttttttttttttttttttttttttttttttttttttttttttttt.', None),
    (b'\x91.', None), (b'cbuiltins\nbytes\n.', None), (b'c_codecs\nencode\n\x85.', None),
]


ALLOWED_GLOBALS = {('_codecs', 'encode'), ('builtins', 'bytes'), ('__builtin__', 'bytes')}


def refuse_globals(event, args):
    """Audit hook: never let pickle.loads import (let alone call) anything cachetoryd would not allow."""
    if event == 'pickle.find_class' and (args[0], args[1]) not in ALLOWED_GLOBALS:
        raise pickle.UnpicklingError('refused global %s.%s' % (args[0], args[1]))


def main():
    sys.addaudithook(refuse_globals)
    warnings.simplefilter("ignore", DeprecationWarning)
    out = []
    w = out.append
    w('/* Generated by tests/unit/data/pickle_vectors.py with CPython %s: do not edit. */' % sys.version.split()[0])
    w('')
    w('typedef struct pv_encode { int proto; size_t size; size_t total; const char *prefix; const char *suffix; } pv_encode_t;')
    w('static const pv_encode_t pv_encodes[] = {')
    sizes = [0, 1, 2, 3, 4, 5, 10, 127, 128, 255, 256, 257, 1000, 65519, 65529, 65530, 65535, 65536, 65537,
             100000, 1 << 20]
    for proto in (2, 3, 4, 5):
        for n in sizes:
            p = payload(n)
            pk = pickle.dumps(p, protocol=proto)
            pre, suf = split(pk, proto)
            body = p.decode('latin-1').encode('utf-8') if proto == 2 else p
            assert pk == pre + body + suf
            w('    { %d, %d, %d, %s, %s },' % (proto, n, len(pk), hexs(pre), hexs(suf)))
    w('};')
    w('')

    # whole pickles of a few special values, byte for byte
    w('typedef struct pv_whole { int proto; const char *value; const char *pickle; } pv_whole_t;')
    w('static const pv_whole_t pv_wholes[] = {')
    for v in (b'', b'\x00', b'latin1', b'\x80', b'\xff\xfe', bytes(range(256)), b'.', b'\n', b'q\x00.'):
        for proto in (2, 3, 4, 5):
            w('    { %d, %s, %s },' % (proto, hexs(v), hexs(pickle.dumps(v, protocol=proto))))
    w('};')
    w('')

    shared = [1, 'x']
    values = [
        b'', b'a', b'latin1', b'\x00\xff\x80\x7f', bytes(range(256)), b'\\u0041\n\r\x1a',
        '', 'a', 'h\u00e9llo', '\u20ac', '\U0001f600', 'a\nb\\c"d\x00\x7f', '\u2028', 'x' * 300,
        0, 1, -1, 255, 256, 65535, 65536, -32768, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63 - 1, -2**63,
        2**63, -2**63 - 1, 2**64, -2**64, 10**100, -10**100, 2**1000, -(2**2040),
        True, False, None,
        0.0, -0.0, 1.5, -2.25, 0.1, 1e16, 1e-05, 1e-07, 1e308, 5e-324, 123456789.123, 1.0,
        float('nan'), float('inf'), float('-inf'),
        [], (), {}, [[]], ((),), [{}],
        [1, 'a', None, True, False, 1.5, -7, 2**70],
        (1, (2, (3, (4,)))), (1, 2), (1, 2, 3), (1, 2, 3, 4),
        {'a': 1, 'b': [1, 2, {'c': None}], 'd': (True,)},
        {1: 'x', 2.5: 'y', None: 'z', True: 'w', 2**80: 'v', -3: 'u', float('inf'): 't', float('nan'): 's', -0.0: 'r'},
        {False: 0},
        [shared, shared, [shared]],
        {'k': shared, 'l': shared},
        ['\u00e9', '\U0001f600', {'\u20ac': '\u2028'}],
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        bytearray(b'ba\x00'),
    ]
    deep = []
    for _ in range(200):
        deep = [deep]
    # big ones (APPENDS / SETITEMS batches of 1000, 4300-digit ints, deep nesting): a few protocols only
    few = {
        id(deep): (0, 2, 5),
    }
    values.append(deep)
    for v, protos in (([None] * 1001, (0, 2, 5)), (list(range(1001)), (2,)),
                      ({i: None for i in range(1001)}, (5,)), (10**4299 * 7, (2,)),
                      ([b'in', [b'\xff\x00'], {'b': bytearray(b'\x01')}], (5,))):
        values.append(v)
        few[id(v)] = protos

    w('/* want_hex: the bytes returned; want_json: the JSON text returned; a long result is given by its length')
    w(' * and FNV-1a 64 hash instead (both NULL). */')
    w('typedef struct pv_decode {')
    w('    const char *name; int proto; const char *pickle; const char *want_hex; const char *want_json;')
    w('    size_t want_len; unsigned long long want_fnv;')
    w('} pv_decode_t;')
    w('static const pv_decode_t pv_decodes[] = {')
    for v in values:
        name = repr(v)
        if len(name) > 40:
            name = name[:37] + '...'
        name = name.replace('\\', '\\\\').replace('"', '\\"')
        for proto in range(6):
            if isinstance(v, bytearray) and proto < 5:
                continue        # protocols 0..4 write bytearray(...) as a REDUCE of builtins.bytearray
            if proto not in few.get(id(v), range(6)):
                continue
            pk = pickle.dumps(v, protocol=proto)
            back = pickle.loads(pk)
            if not (isinstance(v, float) and math.isnan(v)):
                assert back == v or isinstance(v, dict), (v, proto)
            want = render(back)
            for k in range(len(pk)) if len(pk) < 600 else range(0, len(pk), 7):
                try:
                    pickle.loads(pk[:k])
                    raise AssertionError('prefix %d of %r accepted' % (k, pk))
                except AssertionError:
                    raise
                except Exception:
                    pass
            if len(want) > 128:
                w('    { "%s", %d, %s, NULL, NULL, %d, 0x%016xull },' % (name, proto, hexs(pk), len(want), fnv(want)))
            elif isinstance(back, (bytes, bytearray, str)):
                w('    { "%s", %d, %s, %s, NULL, 0, 0 },' % (name, proto, hexs(pk), hexs(want)))
            else:
                text = want.decode('ascii').replace('\\', '\\\\').replace('"', '\\"')
                w('    { "%s", %d, %s, NULL, "%s", 0, 0 },' % (name, proto, hexs(pk), text))
    w('};')

    w('')
    w('/* The pickle is pre, then run_len bytes run_byte, then post (long runs are not spelled out). ok: decoding')
    w(' * succeeds and returns want_hex (or, when that is NULL, want_len bytes of FNV-1a 64 hash want_fnv);')
    w(' * otherwise it fails with CODEC_EFORMAT. note: why cachetoryd refuses what CPython accepts, NULL where')
    w(' * it agrees with CPython. */')
    w('typedef struct pv_edge {')
    w('    const char *pre; int run_byte; size_t run_len; const char *post;')
    w('    int ok; const char *want_hex; size_t want_len; unsigned long long want_fnv; const char *note;')
    w('} pv_edge_t;')
    w('static const pv_edge_t pv_edges[] = {')
    seen = set()
    for pk, note in EDGES:
        assert pk not in seen, pk
        seen.add(pk)
        try:
            want = render(pickle.loads(pk))
            ok = 1
        except Exception:
            ok = 0
            want = b''
        if note is not None:
            assert ok == 1, ('CPython refuses it anyway', pk)
            ok = 0
            want = b''
        # the longest run of one byte, if long
        best = (0, 0)
        i = 0
        while i < len(pk):
            j = i
            while j < len(pk) and pk[j] == pk[i]:
                j += 1
            if j - i > best[1]:
                best = (i, j - i)
            i = j
        if best[1] < 32:
            best = (len(pk), 0)
        pre, run, post = pk[:best[0]], pk[best[0]:best[0] + best[1]], pk[best[0] + best[1]:]
        wh = 'NULL' if len(want) > 128 else hexs(want)
        w('    { %s, 0x%02x, %d, %s, %d, %s, %d, 0x%016xull, %s },' % (
            hexs(pre), run[0] if run else 0, len(run), hexs(post), ok, wh, len(want), fnv(want),
            'NULL' if note is None else '"' + note.replace("'", "\\'") + '"'))
    w('};')
    print('\n'.join(out))


if __name__ == '__main__':
    main()
