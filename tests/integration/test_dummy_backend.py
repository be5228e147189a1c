"""--backend dummy://: every write succeeds, nothing is stored, every read misses."""
import pytest

from helpers import parse_info

pytestmark = pytest.mark.needs_cachetoryd


@pytest.fixture(scope="module")
def dummy(module_start_daemon):
    return module_start_daemon(backend="dummy://")


@pytest.fixture
def dc(dummy, request):
    dummy.touched_by.add(request.node.nodeid)
    c = dummy.conn()
    yield c
    c.close()


def test_set_get(dc):
    assert dc.cmd("SET", "k", "v") == "OK"
    assert dc.cmd("GET", "k") is None
    assert dc.cmd("SET", "k", "v", "EX", 100) == "OK"
    assert dc.cmd("GET", "k") is None


def test_dbsize_zero(dc):
    dc.cmd("MSET", "a", "1", "b", "2")
    assert dc.cmd("DBSIZE") == 0
    assert dc.cmd("EXISTS", "a", "b") == 0
    assert dc.cmd("MGET", "a", "b") == [None, None]
    assert dc.cmd("KEYS", "*") == []
    assert dc.cmd("TTL", "a") == -2


def test_mset_ok(dc):
    assert dc.cmd("MSET", "a", "1", "b", "2") == "OK"


def test_connection_commands_still_work(dc):
    assert dc.cmd("PING") == "PONG"
    assert dc.cmd("ECHO", "x") == b"x"
    assert dc.cmd("SELECT", 3) == "OK"
    assert dc.cmd("SET", "k", "v") == "OK"
    assert dc.cmd("GET", "k") is None
    info = parse_info(dc.cmd("INFO"))
    assert int(info["connected_clients"]) >= 1
    assert dc.cmd("FLUSHALL") == "OK"


def test_pipeline_on_dummy(dc):
    replies = dc.pipeline([("SET", "p%d" % i, "v") for i in range(1000)] +
                          [("GET", "p%d" % i) for i in range(1000)])
    assert replies == ["OK"] * 1000 + [None] * 1000
