#!/usr/bin/env python3
"""scripts/bench-dict-get.py — GET of ~1 KB JSON documents at pipeline 1 with a C client (redis-benchmark):
cachetoryd memory:// zstd:// against zstd://?dictionary=auto (a dictionary trained on the documents), five
interleaved rounds of `redis-benchmark -t get -r 10000 -n 200000 -c 50 -P 1`, medians of ops/s and of the
daemon's CPU (user + system from /proc) per command. scripts/bench's dictionary rows time GETs with a Python
client, which is the ceiling at pipeline 1; this one is not.

    /usr/bin/python3 scripts/bench-dict-get.py [path/to/cachetoryd]      (default build/cachetoryd)
"""
import json
import os
import random
import socket
import subprocess
import sys
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "cachetoryd")
SETUPS = (("zstd://", "zstd://"), ("zstd://?dictionary=auto", "zstd://?dictionary=auto&dictionary-sample-size=2mb"))
DOCS = 10000
ROUNDS = 5


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def doc(i):
    """Document i: the same bytes every run (a generator seeded by i)."""
    rnd = random.Random(i)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"]
    d = {"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i, "active": rnd.random() < 0.5,
         "roles": rnd.sample(["admin", "editor", "viewer", "owner", "guest"], 2),
         "address": {"street": "%d Main Street" % rnd.randint(1, 999),
                     "city": rnd.choice(["Paris", "Berlin", "Madrid", "Rome", "Lisbon"]),
                     "zip": "%05d" % rnd.randint(0, 99999)},
         "score": round(rnd.random() * 1000, 2),
         "tags": [rnd.choice("abcd") * rnd.randint(1, 5) for _ in range(5)],
         "bio": " ".join(rnd.choice(words) for _ in range(80))}
    return json.dumps(d).encode()


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    procs = {}
    try:
        for name, serializer in SETUPS:
            port = free_port()
            p = subprocess.Popen([BIN, "--bind", "127.0.0.1", "--port", str(port), "--serializer", serializer],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs[name] = (p, port)
        time.sleep(0.5)
        for name, (p, port) in procs.items():
            r = redis.Redis(port=port)
            for _ in range(2):                  # the second pass is written with the dictionary
                pipe = r.pipeline(transaction=False)
                for i in range(DOCS):
                    pipe.set("key:%012d" % i, doc(i))       # redis-benchmark -r's key names
                    if i % 500 == 499:
                        pipe.execute()
                pipe.execute()
                time.sleep(3)                   # a training, if one started, is done by then
            info = r.info("cache")
            print("%s: dictionary %s, stored / raw %.3f" % (name, info.get("cache_zstd_dictionary_id"),
                                                            info.get("cache_encode_ratio")), flush=True)
        results = {name: [] for name, _ in SETUPS}
        for rnd in range(ROUNDS):
            for name, _ in SETUPS:
                p, port = procs[name]
                c0 = cpu_seconds(p.pid)
                out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "get", "-r", str(DOCS), "-n", "200000",
                                      "-c", "50", "-P", "1", "--csv", "-q"], capture_output=True, text=True).stdout
                c1 = cpu_seconds(p.pid)
                line = next(x for x in out.splitlines() if x.startswith('"GET"'))
                ops = float(line.split(",")[1].strip('"'))
                results[name].append((ops, (c1 - c0) / 200000 * 1e6))
                print("round %d %s: %.0f ops/s, %.2f us CPU per GET" % (rnd, name, ops, results[name][-1][1]),
                      flush=True)
        med = {}
        for name, rows in results.items():
            med[name] = (sorted(x[0] for x in rows)[ROUNDS // 2], sorted(x[1] for x in rows)[ROUNDS // 2])
            print("%s: median %.0f ops/s, %.2f us CPU per GET" % (name, med[name][0], med[name][1]))
        a, b = med[SETUPS[0][0]], med[SETUPS[1][0]]
        print("dictionary / plain: %.2fx ops/s, %.2fx CPU per GET" % (b[0] / a[0], b[1] / a[1]))
    finally:
        for p, _ in procs.values():
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
