"""Proxy mode, dedicated upstream connections: WATCH, blocking commands and subscriptions pin a client to a connection of its own (apart from
the pool) until EXEC / DISCARD / UNWATCH / RESET / disconnect, so that Redis's own WATCH semantics apply
and the codec chain still applies to the values. The pool of dedicated connections is bounded
(upstream-dedicated-max, a clear error when exhausted), and connections come back clean and are reused
(INFO upstream_dedicated_*)."""
import socket
import threading
import time

import pytest
import redis

from helpers import Err, Push, encode_command
from upstream_support import decode, proxy, upstreams, wait_for  # noqa: F401

pytestmark = pytest.mark.needs_cachetoryd


def ded_info(d):
    with d.conn() as c:
        text = c.cmd("INFO", "upstream").decode()
    out = {}
    for line in text.split("\r\n"):
        if line.startswith("upstream_dedicated_"):
            k, v = line.split(":", 1)
            out[k[len("upstream_dedicated_"):]] = int(v)
    assert set(out) >= {"max", "in_use", "idle", "open", "created"}, text
    return out


def py(d):
    return redis.Redis(host=d.host, port=d.port, socket_timeout=10)


def test_watch_exec_aborts_when_watched_key_changes(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    a, b = d.conn(), d.conn()
    assert a.cmd("SET", "k", "1") == "OK"
    assert a.cmd("WATCH", "k") == "OK"
    assert a.cmd("GET", "k") == b"1"
    assert ded_info(d)["in_use"] == 1
    assert b.cmd("SET", "k", "2") == "OK"           # another client changes it
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("SET", "k", "3") == "QUEUED"
    assert a.cmd("EXEC") is None                    # Redis's nil, as from Redis itself
    assert a.cmd("GET", "k") == b"2"
    assert decode("zstd://", up.client(0).get("k")) == b"2"
    # unchanged: it runs, and the value went through the codec chain
    assert a.cmd("WATCH", "k") == "OK"
    assert a.cmd("MULTI") == "OK"
    assert a.cmd("SET", "k", "4") == "QUEUED"
    assert a.cmd("GET", "k") == "QUEUED"
    assert a.cmd("EXEC") == ["OK", b"4"]
    raw = up.client(0).get("k")
    assert raw != b"4" and decode("zstd://", raw) == b"4"
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)


def test_watch_ends_with_unwatch_discard_reset_and_disconnect(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://")
    c = d.conn()
    for end in (["UNWATCH"], ["MULTI"], ["RESET"]):
        assert c.cmd("WATCH", "k") == "OK"
        assert ded_info(d)["in_use"] == 1
        assert c.cmd(*end) in ("OK", "RESET")
        if end == ["MULTI"]:
            assert ded_info(d)["in_use"] == 1       # still watching inside MULTI
            assert c.cmd("DISCARD") == "OK"
        assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5), end
        # what was watched is forgotten: another client's write does not abort the next EXEC
        assert d.conn().cmd("SET", "k", "x") == "OK"
        assert c.cmd("MULTI") == "OK" and c.cmd("SET", "k", "y") == "QUEUED"
        assert c.cmd("EXEC") == ["OK"], end
    assert c.cmd("WATCH", "k") == "OK"
    assert c.cmd("WATCH", "k2") == "OK"             # the same connection: one pin per client
    assert ded_info(d)["in_use"] == 1
    c.close()
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    # the connection came back clean: the next client's EXEC is not aborted by the old WATCH
    assert wait_for(lambda: ded_info(d)["idle"] >= 1, 5)
    e = d.conn()
    assert e.cmd("WATCH", "other") == "OK"
    assert e.cmd("SET", "k", "z") == "OK"           # k was the old client's
    assert e.cmd("MULTI") == "OK" and e.cmd("SET", "other", "1") == "QUEUED"
    assert e.cmd("EXEC") == ["OK"]


def test_watch_inside_multi_and_upstream_side_state(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://")
    c = d.conn()
    assert c.cmd("MULTI") == "OK"
    r = c.cmd("WATCH", "k")
    assert isinstance(r, Err) and str(r) == "ERR WATCH inside MULTI is not allowed"
    assert c.cmd("EXEC") == []
    assert ded_info(d)["in_use"] == 0
    # SELECT while watching: the pinned connection follows the client's database
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("WATCH", "k") == "OK"
    assert c.cmd("SET", "k", "v3") == "OK"
    assert c.cmd("MULTI") == "OK" and c.cmd("GET", "k") == "QUEUED"
    assert c.cmd("EXEC") is None                    # its own write changed the watched key, as in Redis
    assert up.client(3).get("k") == b"v3" and up.client(0).get("k") is None


def test_dedicated_max_exhaustion_error(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", upstream_dedicated_max=2)
    a, b, c = d.conn(), d.conn(), d.conn()
    assert a.cmd("WATCH", "x") == "OK"
    assert b.cmd("WATCH", "y") == "OK"
    r = c.cmd("WATCH", "z")
    assert isinstance(r, Err), r
    assert str(r).startswith("ERR all 2 dedicated upstream connections are in use (upstream-dedicated-max): "), r
    info = ded_info(d)
    assert info["in_use"] == 2 and info["open"] == 2 and info["max"] == 2
    assert a.cmd("UNWATCH") == "OK"
    assert wait_for(lambda: c.cmd("WATCH", "z") == "OK", 5)
    assert ded_info(d)["open"] == 2
    # 0 disables them
    d0 = proxy(start_daemon, up, "null://", upstream_dedicated_max=0)
    r = d0.conn().cmd("WATCH", "z")
    assert r == Err("ERR dedicated upstream connections are disabled (upstream-dedicated-max 0): WATCH, blocking "
                    "commands and subscriptions need one"), r


def test_no_leak_over_1000_cycles(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    c = d.conn()
    before = ded_info(d)
    for i in range(1000):
        assert c.cmd("WATCH", "k") == "OK"
        if i % 2:
            assert c.cmd("UNWATCH") == "OK"
        else:
            assert c.cmd("MULTI") == "OK" and c.cmd("SET", "k", str(i)) == "QUEUED"
            assert c.cmd("EXEC") == ["OK"]
    after = wait_for(lambda: (lambda i: i if i["in_use"] == 0 and i["idle"] == i["open"] else None)(ded_info(d)), 5)
    assert after, ded_info(d)
    assert after["open"] <= 3, after
    assert after["created"] - before["created"] <= 10, (before, after)
    # the upstream agrees: no client beyond the pool, the dedicated ones still open, and cachetoryd's own
    n = len(up.client(0).client_list())
    assert n <= 4 + after["open"] + 2, n


def test_redis_py_watch_retry_loop_under_contention(start_daemon, upstreams):
    """N threads increment one JSON counter through zstd:// with WATCH / GET / MULTI / SET / EXEC: the final
    value is the number of transactions that succeeded, and some had to retry."""
    import json
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://")
    key = "counter"
    py(d).set(key, json.dumps({"n": 0}))
    nthreads, per = 6, 40
    successes, retries, errors = [0], [0], []
    lock = threading.Lock()

    def worker():
        r = py(d)
        try:
            for _ in range(per):
                for _attempt in range(1000):
                    with r.pipeline() as p:
                        try:
                            p.watch(key)
                            v = json.loads(p.get(key))
                            p.multi()
                            p.set(key, json.dumps({"n": v["n"] + 1}))
                            p.execute()
                            with lock:
                                successes[0] += 1
                            break
                        except redis.WatchError:
                            with lock:
                                retries[0] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=worker) for _ in range(nthreads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "workers still running after 60 s"
    assert not errors, errors[:3]
    final = json.loads(py(d).get(key))["n"]
    assert final == successes[0] == nthreads * per, (final, successes[0], retries[0])
    assert retries[0] > 0, "no contention seen in %.1f s" % (time.monotonic() - t0)
    raw = up.client(0).get(key)
    assert json.loads(decode("zstd://", raw)) == {"n": final}
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)


# -- blocking commands ------------------------------------------------------------------------------

def blocked_upstream(up, cmd):
    """The upstream's clients whose last command is cmd (blocked in it)."""
    return [c for c in up.client(0).client_list() if c.get("cmd") == cmd]


def test_blpop_woken_by_lpush_from_another_client(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes", upstream_command_timeout=300)
    a, b = d.conn(), d.conn()
    a.send(encode_command("BLPOP", "l", "10"))
    assert wait_for(lambda: blocked_upstream(up, "blpop"), 5), "BLPOP never reached the upstream"
    assert ded_info(d)["in_use"] == 1
    # CLIENT LIST flags the blocked client with b, as Redis does
    lines = b.cmd("CLIENT", "LIST").decode().splitlines()
    flags = sorted(dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)["flags"] for line in lines)
    assert flags == ["N", "b"], lines
    time.sleep(0.5)                                 # longer than upstream-command-timeout: no timeout
    assert b.cmd("PING") == "PONG"                  # other clients are not held up
    assert b.cmd("LPUSH", "l", "v") == 1
    assert a.read_reply() == [b"l", b"v"]
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    assert wait_for(lambda: ded_info(d)["idle"] == 1, 5)
    # pipelined behind a blocking command, the client's next commands keep their order
    a.send(encode_command("BLPOP", "l2", "10") + encode_command("SET", "k", "after") + encode_command("GET", "k"))
    assert wait_for(lambda: blocked_upstream(up, "blpop"), 5)
    assert b.cmd("SET", "k", "before") == "OK"
    assert b.cmd("RPUSH", "l2", "x") == 1
    assert [a.read_reply() for _ in range(3)] == [[b"l2", b"x"], "OK", b"after"]
    # the other blocking forms
    assert b.cmd("ZADD", "z", "1", "m") == 1
    assert a.cmd("BZPOPMIN", "z", "1") == [b"z", b"m", b"1"]
    assert b.cmd("RPUSH", "src", "e") == 1
    assert a.cmd("BLMOVE", "src", "dst", "LEFT", "RIGHT", "1") == b"e"
    assert a.cmd("BLMPOP", "1", "1", "dst", "LEFT") == [b"dst", [b"e"]]
    assert b.cmd("XADD", "s", "1-1", "f", "v") == b"1-1"
    assert a.cmd("XREAD", "BLOCK", "1000", "STREAMS", "s", "0") == [[b"s", [[b"1-1", [b"f", b"v"]]]]]
    assert a.cmd("WAIT", "0", "0") == 0
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)


def test_blpop_timeout(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_command_timeout=200)
    c = d.conn()
    t = time.monotonic()
    assert c.cmd("BLPOP", "nothing", "0.8") is None     # Redis's nil after the timeout, not an upstream error
    took = time.monotonic() - t
    assert 0.7 <= took < 5, took
    assert c.cmd("XREAD", "BLOCK", "300", "STREAMS", "nos", "$") is None
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)


def test_disconnect_while_blocked_closes_the_connection(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes")
    before = len(up.client(0).client_list())
    a = d.conn()
    a.send(encode_command("BLPOP", "l", "0"))
    assert wait_for(lambda: blocked_upstream(up, "blpop"), 5)
    info = ded_info(d)
    assert info["in_use"] == 1 and info["open"] == 1
    a.close()
    # closed, not handed back: nothing still blocked upstream could pop what comes next
    assert wait_for(lambda: ded_info(d)["open"] == 0, 5), ded_info(d)
    assert ded_info(d)["in_use"] == 0
    assert wait_for(lambda: not blocked_upstream(up, "blpop"), 5)
    assert wait_for(lambda: len(up.client(0).client_list()) == before, 5)
    with d.conn() as b:
        assert b.cmd("LPUSH", "l", "v") == 1
        assert b.cmd("LLEN", "l") == 1


def test_watch_right_after_exec_takes_the_connection_being_cleaned(start_daemon, upstreams):
    """At upstream-dedicated-max, a client's next WATCH sent right behind its EXEC (a retry loop) gets the
    connection EXEC just handed back, while its RESET is still on the way: its commands queue behind the
    clean-up, and Redis watches the key for it alone (a change by another client aborts its EXEC)."""
    up = upstreams()
    d = proxy(start_daemon, up, "null://", upstream_dedicated_max=1)
    a, other = d.conn(), d.conn()
    for i in range(50):
        a.send(b"".join(encode_command(*cmd) for cmd in (
            ("WATCH", "k"), ("GET", "k"), ("MULTI",), ("SET", "k", str(i)), ("EXEC",),
            ("UNWATCH",), ("WATCH", "k"), ("GET", "k"))))
        got = [a.read_reply() for _ in range(8)]
        assert got[:5] == ["OK", None if i == 0 else str(i - 1).encode(), "OK", "QUEUED", ["OK"]], (i, got)
        assert got[5:] == ["OK", "OK", str(i).encode()], (i, got)
        if i % 10 == 9:
            # the watch is the client's own: another client's write aborts the EXEC
            assert other.cmd("SET", "k", str(i)) == "OK"
            assert a.cmd("MULTI") == "OK" and a.cmd("SET", "k", "lost") == "QUEUED"
            assert a.cmd("EXEC") is None
        else:
            assert a.cmd("UNWATCH") == "OK"
    assert a.cmd("GET", "k") == b"49"
    info = ded_info(d)
    assert info["open"] == 1, info


def test_blocking_refused_without_dedicated_connections(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", upstream_dedicated_max=1)
    a, b = d.conn(), d.conn()
    a.send(encode_command("BLPOP", "l", "0"))
    assert wait_for(lambda: blocked_upstream(up, "blpop"), 5)
    r = b.cmd("BRPOP", "l", "0")
    assert isinstance(r, Err) and str(r).startswith("ERR all 1 dedicated upstream connections are in use"), r
    assert b.cmd("RPUSH", "l", "v") == 1
    assert a.read_reply() == [b"l", b"v"]
    # without passthrough they stay refused
    d2 = proxy(start_daemon, up, "null://")
    r = d2.conn().cmd("BLPOP", "l", "0")
    assert isinstance(r, Err) and "BLPOP is refused by cachetoryd" in str(r), r


# -- pub/sub --------------------------------------------------------------------------------------

def test_subscribe_publish_round_trip(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "zstd://", passthrough="yes")
    a, b = d.conn(), d.conn()
    assert a.cmd("UNSUBSCRIBE") == [b"unsubscribe", None, 0]     # subscribed to nothing: answered here
    assert ded_info(d)["in_use"] == 0
    assert a.cmd("SUBSCRIBE", "ch", "ch2") == [b"subscribe", b"ch", 1]
    assert a.read_reply() == [b"subscribe", b"ch2", 2]
    assert ded_info(d)["in_use"] == 1
    assert b.cmd("PUBLISH", "ch", "hello") == 1
    assert a.read_reply() == [b"message", b"ch", b"hello"]
    assert up.client(0).publish("ch2", b"\x00bin") == 1           # published straight to Redis: relayed too
    assert a.read_reply() == [b"message", b"ch2", b"\x00bin"]
    # subscribed (RESP2): PING answers as Redis does there, other commands are refused as by Redis
    assert a.cmd("PING") == [b"pong", b""]
    assert a.cmd("PING", "x") == [b"pong", b"x"]
    assert a.cmd("GET", "k") == Err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                                    "QUIT / RESET are allowed in this context")
    assert a.cmd("UNSUBSCRIBE", "ch") == [b"unsubscribe", b"ch", 1]
    assert b.cmd("PUBLISH", "ch", "gone") == 0
    assert a.cmd("UNSUBSCRIBE") == [b"unsubscribe", b"ch2", 0]
    # subscribed to nothing: the connection goes back, the client is a normal one again
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    assert a.cmd("SET", "k", "v") == "OK" and a.cmd("GET", "k") == b"v"


def test_pattern_subscriptions(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes")
    a, b = d.conn(), d.conn()
    assert a.cmd("PSUBSCRIBE", "news.*") == [b"psubscribe", b"news.*", 1]
    assert a.cmd("SUBSCRIBE", "plain") == [b"subscribe", b"plain", 2]
    assert b.cmd("PUBLISH", "news.sport", "goal") == 1
    assert a.read_reply() == [b"pmessage", b"news.*", b"news.sport", b"goal"]
    assert b.cmd("PUBLISH", "other", "x") == 0
    assert a.cmd("UNSUBSCRIBE") == [b"unsubscribe", b"plain", 1]
    time.sleep(0.2)
    assert ded_info(d)["in_use"] == 1                # the pattern is still subscribed
    assert b.cmd("PUBLISH", "news.x", "y") == 1
    assert a.read_reply() == [b"pmessage", b"news.*", b"news.x", b"y"]
    assert a.cmd("PUNSUBSCRIBE") == [b"punsubscribe", b"news.*", 0]
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    # subscribe again right after unsubscribing everything: still subscribed, nothing lost
    a.send(encode_command("UNSUBSCRIBE") + encode_command("SUBSCRIBE", "again"))
    assert a.read_reply() == [b"unsubscribe", None, 0]
    assert a.read_reply() == [b"subscribe", b"again", 1]
    a.send(encode_command("SUBSCRIBE", "s1") + encode_command("UNSUBSCRIBE", "s1", "again") +
           encode_command("SUBSCRIBE", "s2"))
    assert [a.read_reply() for _ in range(4)] == [[b"subscribe", b"s1", 2], [b"unsubscribe", b"s1", 1],
                                                  [b"unsubscribe", b"again", 0], [b"subscribe", b"s2", 1]]
    time.sleep(0.2)
    assert ded_info(d)["in_use"] == 1
    assert b.cmd("PUBLISH", "s2", "still") == 1
    assert a.read_reply() == [b"message", b"s2", b"still"]
    # RESET ends the subscriptions and hands the connection back
    assert a.cmd("RESET") == "RESET"
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    assert b.cmd("PUBLISH", "s2", "none") == 0


def test_resp3_push_frames(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes")
    a, b = d.conn(), d.conn()
    assert isinstance(a.cmd("HELLO", "3"), dict)
    r = a.cmd("SUBSCRIBE", "ch")
    assert isinstance(r, Push) and list(r) == [b"subscribe", b"ch", 1], r
    assert b.cmd("PUBLISH", "ch", "m") == 1
    r = a.read_reply()
    assert isinstance(r, Push) and list(r) == [b"message", b"ch", b"m"], r
    # RESP3: other commands run while subscribed
    assert a.cmd("PING") == "PONG"
    assert a.cmd("SET", "k", "v") == "OK"
    r = a.cmd("UNSUBSCRIBE", "ch")
    assert isinstance(r, Push) and list(r) == [b"unsubscribe", b"ch", 0], r
    assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5)
    r = a.cmd("UNSUBSCRIBE")
    assert isinstance(r, Push) and list(r) == [b"unsubscribe", None, 0], r


def test_slow_subscriber_is_disconnected(start_daemon, upstreams):
    up = upstreams()
    d = proxy(start_daemon, up, "null://", passthrough="yes", client_output_buffer_limit="1mb")
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(d.addr)
    try:
        slow.sendall(encode_command("SUBSCRIBE", "flood"))
        assert wait_for(lambda: up.client(0).pubsub_numsub("flood") == [(b"flood", 1)], 5)
        pub = up.conn(timeout=10)
        msg = b"x" * 100_000
        received = None
        deadline = time.monotonic() + 20
        for _ in range(300):                              # up to 30 MB, far over the 1 MB limit
            received = pub.cmd("PUBLISH", "flood", msg)
            if received == 0 or time.monotonic() > deadline:
                break                                     # the subscriber is gone
        assert received == 0, "the subscriber was never disconnected"
        assert wait_for(lambda: ded_info(d)["in_use"] == 0, 5), ded_info(d)
        with d.conn() as c:
            assert c.cmd("PING") == "PONG"
            stats = c.cmd("INFO", "stats").decode()
            # closed by cachetoryd's limit (or, if the daemon fell behind reading, Redis's own pubsub limit
            # closed the dedicated connection first, and the subscriber with it)
            assert ("client_output_buffer_limit_disconnections:1" in stats or
                    ded_info(d)["open"] == 0), stats
        slow.settimeout(5)
        try:
            while slow.recv(65536):
                pass                                      # drain what was sent before the close
        except ConnectionResetError:
            pass
    finally:
        slow.close()
