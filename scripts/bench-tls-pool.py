#!/usr/bin/env python3
"""Pool the TLS rows of several `scripts/bench --tls-only` runs.

    scripts/bench --tls-only --rounds 5 --no-install; cp -r /tmp/cachetoryd-bench run1   # (and again: run2 ...)
    /usr/bin/python3 scripts/bench-tls-pool.py run1 run2 run3

Each round's TLS overhead per command is its TLS setup's server CPU per command minus the plain setup's in
the same round (cpu-raw.csv); printed: the median over every round of every run, its quartiles, and the
ratio to redis-server's median. One run's rounds are few and the machine's noise is large (a round's
overhead varies by ±30 %), so runs are pooled before the setups are compared."""
import csv
import statistics
import sys

PAIRS = {"redis-tls": "redis", "ctd-tls-mem": "ctd-mem", "ctd-tls-up-null": "ctd-up-null",
         "ctd-tls-client": "ctd-up-null", "ctd-tls-upstream": "ctd-up-null"}
LABELS = {"redis-tls": "redis-server", "ctd-tls-mem": "cachetoryd memory:// (one TLS side)",
          "ctd-tls-up-null": "cachetoryd TLS -> redis TLS (both sides)",
          "ctd-tls-client": "cachetoryd TLS -> redis (client side alone)",
          "ctd-tls-upstream": "cachetoryd -> redis TLS (upstream side alone)"}


def main(dirs):
    if not dirs:
        sys.exit(__doc__)
    cpu = {}
    for run, d in enumerate(dirs):
        with open(d + "/cpu-raw.csv") as f:
            for r in csv.DictReader(f):
                cpu[(run, r["round"], r["setup"], r["pipeline"])] = float(r["server_cpu_s"]) / int(r["commands"]) * 1e6
    for pl in sorted({k[3] for k in cpu}, key=int):
        over = {}
        for (run, rnd, s, p), v in cpu.items():
            if p == pl and s in PAIRS and (run, rnd, PAIRS[s], p) in cpu:
                over.setdefault(s, []).append(v - cpu[(run, rnd, PAIRS[s], p)])
        if "redis-tls" not in over:
            continue
        base = statistics.median(over["redis-tls"])
        for s in PAIRS:
            if s not in over or len(over[s]) < 2:
                continue
            m = statistics.median(over[s])
            q = statistics.quantiles(over[s], n=4)
            print("P%-3s %-46s rounds %2d  overhead %+6.2f us/cmd (quartiles %+.2f .. %+.2f)  %.2fx redis-server"
                  % (pl, LABELS[s], len(over[s]), m, q[0], q[2], m / base))


if __name__ == "__main__":
    main(sys.argv[1:])
