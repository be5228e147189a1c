"""A value that can be written can be read back: client-output-buffer-limit closes a client whose pending
replies exceed it, so a write of a value whose GET reply would exceed it is refused (SET family, MSET,
APPEND, SETRANGE), with an error naming the options; the defaults (proto-max-bulk-len 512mb,
client-output-buffer-limit 1gb) never meet that limit."""
import pytest

from helpers import Err

pytestmark = pytest.mark.needs_cachetoryd

LIMIT = 1 << 20             # client-output-buffer-limit 1mb in these tests
FITS = LIMIT - 32           # the largest value whose reply ("$1048544\r\n" ... "\r\n") is within it


def _is_unreadable_err(r):
    return isinstance(r, Err) and "could never be read back" in r and "client-output-buffer-limit" in r \
        and "proto-max-bulk-len" in r


def test_default_limits_are_consistent(srv):
    c = srv.conn()
    bulk = int(c.cmd("CONFIG", "GET", "proto-max-bulk-len")[1])
    out = int(c.cmd("CONFIG", "GET", "client-output-buffer-limit")[1])
    assert bulk == 512 << 20
    assert out == 0 or out >= bulk + 32, "the largest value (%d) could be written but not read (%d)" % (bulk, out)


@pytest.mark.parametrize("serializer", ["null://", "zstd://"])
def test_unreadable_writes_are_refused(start_daemon, serializer):
    d = start_daemon(client_output_buffer_limit="1mb", proto_max_bulk_len="4mb", serializer=serializer)
    c = d.conn(timeout=30)
    big = b"\x00" * (FITS + 1)                      # zeros: zstd stores it in a few bytes, GET still sends 1 MB
    assert c.cmd("SET", "ok", b"\x00" * FITS) == "OK"
    assert c.cmd("GET", "ok") == b"\x00" * FITS     # the reader is not closed
    for cmd in (("SET", "k", big), ("SETEX", "k", "100", big), ("GETSET", "k", big), ("SETNX", "k", big),
                ("MSET", "a", "1", "k", big), ("MSETNX", "k", big, "a", "1")):
        r = c.cmd(*cmd)
        assert _is_unreadable_err(r), "%s: %r" % (cmd[0], r)
    assert c.cmd("EXISTS", "k", "a") == 0
    assert c.cmd("APPEND", "ok", "x").startswith("ERR a value of %d bytes could never be read back" % (FITS + 1))
    assert c.cmd("SETRANGE", "ok", str(FITS), "x").startswith("ERR a value of %d bytes" % (FITS + 1))
    assert c.cmd("SETRANGE", "new", str(LIMIT), "x").startswith("ERR a value of")
    assert c.cmd("STRLEN", "ok") == FITS
    assert c.cmd("EXISTS", "new") == 0
    assert c.cmd("SETRANGE", "ok", str(FITS - 1), "y") == FITS     # within: fine
    assert c.cmd("PING") == "PONG"


def test_no_output_limit_no_refusal(start_daemon):
    d = start_daemon(client_output_buffer_limit="0", proto_max_bulk_len="4mb")
    c = d.conn(timeout=30)
    v = b"v" * (3 << 20)
    assert c.cmd("SET", "k", v) == "OK"
    assert c.cmd("GET", "k") == v
