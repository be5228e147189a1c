#!/usr/bin/python3
"""Write src/cmd/classes.c: every command of Redis 7.0 (and every subcommand of its containers) with the
passthrough class cachetoryd gives it, from a real redis-server's COMMAND INFO and COMMAND DOCS.

    scripts/gen-command-classes.py [--port P] [--redis-server PATH] [--out src/cmd/classes.c]

Without --port the script starts its own redis-server (from PATH, or --redis-server) on a free loopback
port, checks that it is 7.0.x, reads the two replies and stops it by its PID. The generated file is
committed: building cachetoryd never needs a running Redis. Run this again when the Redis version that
cachetoryd follows changes, and review the diff (a new command gets a class from the rules below; an
unexpected one makes the script stop with the command's name, to be given a class by hand).

The classes (README, "Passthrough"):
  VALUE    a string-family value (@string, @bitmap): cachetoryd runs it itself, through the codec chain.
  SCRIPT   reads string values inside Redis (scripts, functions, SORT ... BY / GET): forwarded only when
           the serializer is null:// or passthrough-scripts = stored-bytes.
  SESSION  connection, transaction, pub/sub, blocking and replication commands: run by cachetoryd for
           the client's own session, or refused; never forwarded on a shared upstream connection.
  FORWARD  other types and generic key commands (hash, list, set, zset, stream, geo, hyperloglog, DUMP,
           RESTORE, COPY, OBJECT...): forwarded as they are with passthrough = yes.
  ADMIN    server administration (CONFIG SET, SHUTDOWN, REPLICAOF, ACL, MODULE, CLUSTER, SAVE...):
           refused; a client of the proxy never reconfigures or stops the shared upstream.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# Classes by COMMAND DOCS group; the overrides below come first.
GROUP_CLASS = {
    "string": "VALUE", "bitmap": "VALUE",
    "hash": "FORWARD", "list": "FORWARD", "set": "FORWARD", "sorted-set": "FORWARD", "stream": "FORWARD",
    "geo": "FORWARD", "hyperloglog": "FORWARD", "generic": "FORWARD",
    "scripting": "SCRIPT",
    "connection": "SESSION", "transactions": "SESSION",
    "pubsub": "SESSION",
    "server": "ADMIN", "cluster": "ADMIN",
}

# name -> (class, reason, check). The reason names the refusal message (src/cmd/passthrough.c); the
# check a look at the arguments before forwarding.
OVERRIDES = {
    # blocking forms inside data groups
    "xread": ("FORWARD", "BLOCKING", "XREAD_BLOCK"),          # forwarded unless BLOCK is given
    "xreadgroup": ("FORWARD", "BLOCKING", "XREAD_BLOCK"),
    "wait": ("SESSION", "BLOCKING", None),
    # SORT reads string values with BY / GET patterns
    "sort": ("FORWARD", "SCRIPT", "SORT_PATTERNS"),
    "sort_ro": ("FORWARD", "SCRIPT", "SORT_PATTERNS"),
    # moves keys to another server, with credentials, from the shared upstream
    "migrate": ("ADMIN", "ADMIN", None),
    "restore-asking": ("ADMIN", "CLUSTER", None),
    "pfdebug": ("ADMIN", "ADMIN", None),
    "pfselftest": ("ADMIN", "ADMIN", None),
    # pub/sub: publishing and counting subscribers hold no connection state
    "publish": ("FORWARD", None, None),
    "spublish": ("FORWARD", None, None),
    "pubsub|channels": ("FORWARD", None, None),
    "pubsub|numpat": ("FORWARD", None, None),
    "pubsub|numsub": ("FORWARD", None, None),
    "pubsub|shardchannels": ("FORWARD", None, None),
    "pubsub|shardnumsub": ("FORWARD", None, None),
    "pubsub|help": ("FORWARD", None, None),
    # cluster connection state
    "asking": ("SESSION", "CLUSTER", None),
    "readonly": ("SESSION", "CLUSTER", None),
    "readwrite": ("SESSION", "CLUSTER", None),
    # replication streams and MONITOR take the connection over
    "monitor": ("SESSION", "REPLICATION", None),
    "sync": ("SESSION", "REPLICATION", None),
    "psync": ("SESSION", "REPLICATION", None),
    "replconf": ("SESSION", "REPLICATION", None),
    # scripts: debugging is per connection; killing stops another client's script on the shared upstream
    "script|debug": ("SESSION", "SESSION", None),
    "script|kill": ("ADMIN", "ADMIN", None),
    "client|pause": ("ADMIN", "ADMIN", None),           # pauses every client of the shared upstream
    "client|unpause": ("ADMIN", "ADMIN", None),
    "function|kill": ("ADMIN", "ADMIN", None),
    # keyspace introspection of one key is data
    "memory|usage": ("FORWARD", None, None),
    "memory|help": ("FORWARD", None, None),
    "lolwut": ("FORWARD", None, None),
    "command|getkeys": ("FORWARD", None, None),
    "command|getkeysandflags": ("FORWARD", None, None),
}

# Default refusal reason of a class, by group where it matters.
GROUP_REASON = {
    "pubsub": "PUBSUB", "transactions": "WATCH", "connection": "SESSION", "cluster": "CLUSTER",
    "server": "ADMIN", "scripting": "SCRIPT",
}


def resp_command(sock, f, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return resp_read(f)


def resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise SystemExit("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise SystemExit("redis: " + rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise SystemExit("unexpected reply type %r" % t)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(binary):
    port = free_port()
    d = tempfile.mkdtemp(prefix="gen-classes-")
    p = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--daemonize", "no", "--dir", d, "--logfile", os.path.join(d, "redis.log")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port, d
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("redis-server did not start on port %d" % port)


def classify(name, group, flags):
    if name in OVERRIDES:
        cls, why, check = OVERRIDES[name]
        return cls, why or "NONE", check or "NONE"
    cls = GROUP_CLASS.get(group)
    if cls is None:
        raise SystemExit("no class for %s (group %s): add it to OVERRIDES" % (name, group))
    if "blocking" in flags and cls == "FORWARD":
        return "SESSION", "BLOCKING", "NONE"
    if cls == "FORWARD" or cls == "VALUE":
        return cls, "NONE", "NONE"
    return cls, GROUP_REASON.get(group, "ADMIN"), "NONE"


def c_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def row(e, group, parent_group=None):
    name, arity, flags, first, last, step, acl = e[0], e[1], e[2], e[3], e[4], e[5], e[6]
    g = group or parent_group
    cls, why, check = classify(name, g, flags)
    value_family = "@string" in acl or "@bitmap" in acl
    if value_family != (cls == "VALUE"):
        raise SystemExit("%s: class %s but ACL categories %s: review the rules" % (name, cls, acl))
    return name, ("    {%s, %d, CMD_CLASS_%s, CMD_WHY_%s, CMD_CHECK_%s, %d, %d, %d, %s, %s, %s"
                  % (c_str(name), arity, cls, why, check, first, last, step, c_str(g), c_str(" ".join(flags)),
                     c_str(" ".join(acl))))


def generate(info, docs, version):
    groups = {docs[i]: dict(zip(docs[i + 1][::2], docs[i + 1][1::2]))["group"] for i in range(0, len(docs), 2)}
    subtables, rows = [], []
    for e in sorted(info, key=lambda e: e[0]):
        name, subs = e[0], e[9]
        if subs:
            ident = name.replace("-", "_") + "_subs"
            lines = [row(s, None, groups[name])[1] + ", NULL, 0}," for s in sorted(subs, key=lambda s: s[0])]
            subtables.append("static const cmd_class_t %s[] = {\n%s\n};\n" % (ident, "\n".join(lines)))
            rows.append(row(e, groups[name])[1] + ", %s, %d}," % (ident, len(subs)))
        else:
            rows.append(row(e, groups[name])[1] + ", NULL, 0},")
    return """/*
 * cmd/classes: every command of Redis %s and its passthrough class — GENERATED by
 * scripts/gen-command-classes.py from redis-server %s's COMMAND INFO and COMMAND DOCS. Do not edit by
 * hand: change the rules in the script and run it again (see its docstring and README "Passthrough").
 *
 * Rows are sorted by name (binary search); subcommands ("object|encoding") in their container's table.
 * Columns: name, arity, class, refusal reason, argument check, first/last/step key, group, flags, ACL
 * categories, subcommands.
 */
#include "cmd/classes.h"

%s
const cmd_class_t cmd_classes[] = {
%s
};
const int cmd_nclasses = (int)(sizeof(cmd_classes) / sizeof(cmd_classes[0]));
""" % (version, version, "\n".join(subtables), "\n".join(r for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, help="an already running redis-server 7.0 on 127.0.0.1")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "cmd",
                                                  "classes.c"))
    a = ap.parse_args()
    proc = tmpdir = None
    port = a.port
    if port is None:
        proc, port, tmpdir = start_redis(a.redis_server)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = sock.makefile("rb")
        server_info = resp_command(sock, f, "INFO", "server")
        version = [l.split(":", 1)[1] for l in server_info.split("\r\n") if l.startswith("redis_version:")][0]
        if not version.startswith("7.0."):
            raise SystemExit("redis-server %s: cachetoryd follows Redis 7.0" % version)
        info = resp_command(sock, f, "COMMAND", "INFO")
        docs = resp_command(sock, f, "COMMAND", "DOCS")
        sock.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(tmpdir, ignore_errors=True)
    text = generate(info, docs, version)
    with open(a.out, "w") as out:
        out.write(text)
    print("%s: %d commands from redis-server %s" % (os.path.normpath(a.out), len(info), version))


if __name__ == "__main__":
    sys.exit(main())
