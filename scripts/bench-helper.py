#!/usr/bin/python3
"""Helper programs of scripts/bench (run with Debian's /usr/bin/python3 and python3-redis).

    bench-helper.py ports N                         N loopback TCP ports that were free a moment ago
    bench-helper.py docs --ports P1,P2 --count N [--seed S] [--batch B] [--prefix K]
                                                    generate N JSON documents (~1 KB, fixed seed) once and
                                                    write them pipelined to each port in turn, checking
                                                    DBSIZE and a sample read back; prints key=value
    bench-helper.py neardocs --count N [--seed S] --set FILE --get FILE
                                                    the near cache rows' hot set: the first N documents of
                                                    `docs` (same generator and seed) under redis-benchmark's
                                                    -r key names key:000000000000 ...; FILE of SET and FILE
                                                    of GET commands (RESP, for redis-cli --pipe); prints
                                                    key=value (docs, raw/min/max/avg bytes)
    bench-helper.py nearcheck --port P [--db D] --count N [--seed S] [--strlen] [--verify K]
                                                    --strlen: STRLEN summed over those N keys (the bytes as
                                                    stored there); --verify: K sampled keys read back equal
                                                    to their document; prints key=value
    bench-helper.py bigwriter --port P --mb 8 --max-writes W --max-seconds T --ready FILE
                                                    SET 8 MB JSON values in a loop (bounded); FILE is
                                                    created once the value is built and the first SET sent
    bench-helper.py getlat --port P --seconds S [--max-ops M] [--keys K] [--prefill]
                                                    time single GETs of small keys; prints key=value
    bench-helper.py conns --port P --pid PID --count N
                                                    RSS of PID before and after N idle clients (each sent a
                                                    PING and got its PONG); prints key=value
    bench-helper.py report --dir DIR                aggregate DIR's raw CSV files: summary CSV files
                                                    (cluster.csv among them), gnuplot data files, and the
                                                    Markdown summary on stdout

Every loop is bounded (counts and deadlines) and every socket has a timeout; only 127.0.0.1 is used.
"""
import argparse
import csv
import json
import os
import random
import resource
import select
import signal
import socket
import statistics
import sys
import time

HOST = "127.0.0.1"


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _sigterm)


def kv(**items):
    for k, v in items.items():
        print("%s=%s" % (k, v))
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# free ports
def cmd_ports(a):
    socks = []
    try:
        for _ in range(a.n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------------
# realistic JSON documents
FIRST = ("Emma Liam Olivia Noah Ava Lucas Mila Finn Sophie Daan Julia Sem Tess Levi Anna Luuk Sara Milan "
         "Zoe Bram Eva Thijs Lotte Jesse Fleur Ruben Isa Lars Nina Max Yara Tim Roos Koen Fenna Stijn "
         "Lieke Jasper Maud Hugo Amira Mohammed Priya Wei Carlos Ingrid Kofi Hana Mateo Aisha").split()
LAST = ("de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|Mulder|"
        "de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|de Graaf|"
        "van der Meer|Kok|Jacobs|Vermeulen|Schouten|Willems|Garcia|Nakamura|Okafor|Kowalski|Nguyen|"
        "Schmidt|Rossi|Silva|Andersson|Haddad").split("|")
CITIES = ("Amsterdam Rotterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Apeldoorn Haarlem "
          "Arnhem Enschede Amersfoort Zaanstad Den-Haag Zwolle Leiden Maastricht Dordrecht Delft Alkmaar "
          "Venlo Deventer Hilversum Heerlen Leeuwarden Roermond Gouda Emmen").split()
STREETS = ("Kerkstraat Schoolstraat Molenweg Dorpsstraat Stationsweg Julianastraat Beatrixlaan Kastanjelaan "
           "Eikenlaan Nieuwstraat Marktplein Parallelweg Industrieweg Sportlaan Prinsengracht Herengracht "
           "Keizersgracht Lindenlaan Vondelstraat Wilhelminastraat Oranjestraat Havenkade Beukenlaan "
           "Populierenweg Zuiderkade").split()
STATUS = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded", "on_hold")
CHANNEL = ("web", "ios", "android", "store", "phone", "partner")
TAGS = ("gift", "priority", "bulk", "fragile", "returning-customer", "promo", "newsletter", "b2b",
        "express", "eco-packaging", "first-order", "loyalty-gold", "loyalty-silver", "backorder")
ADJ = ("compact wireless ergonomic stainless organic recycled portable vintage heavy-duty lightweight "
       "waterproof smart classic modular premium foldable bamboo ceramic cotton insulated").split()
NOUN = ("kettle headphones chair lamp backpack notebook blender jacket speaker mug bottle keyboard "
        "monitor tent blanket cookware-set drill umbrella sneakers watch charger desk").split()
WORDS = ("the customer asked for delivery before noon and mentioned that the previous parcel arrived "
         "damaged please call ahead ring the bell twice leave it with the neighbours at number if nobody "
         "is home invoice should be sent to the company address instead of the private one reference "
         "our purchase order in all correspondence item was out of stock and replaced by a newer model "
         "with the same specifications payment confirmed by bank transfer after reminder customer prefers "
         "email over phone contact support ticket opened about missing manual warehouse reports the "
         "package was repacked quality check passed return window extended because of the holidays "
         "discount applied manually by the store manager gift wrap requested with a handwritten card "
         "address verified against postal database courier picked up late due to weather conditions "
         "partial shipment remaining items follow next week signature required on delivery").split()


_NOTES = []


def _notes_text():
    """A long stream of note words, shuffled with its own fixed seed; each document takes a slice."""
    if not _NOTES:
        r = random.Random(99)
        _NOTES.append(" ".join(r.choice(WORDS) for _ in range(200_000)))
    return _NOTES[0]


def make_doc(rng, i):
    n_items = rng.randint(1, 4)
    items = []
    for _ in range(n_items):
        qty = rng.randint(1, 5)
        price = round(rng.uniform(2.5, 350.0), 2)
        items.append({"sku": "SKU-%06d" % rng.randint(0, 999999),
                      "name": "%s %s" % (rng.choice(ADJ), rng.choice(NOUN)),
                      "quantity": qty, "unit_price": price})
    created = 1_672_531_200 + rng.randint(0, 3 * 365 * 86400)
    updated = created + rng.randint(0, 30 * 86400)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    doc = {
        "id": 1_000_000 + i,
        "uuid": "%08x-%04x-4%03x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                                 0x8000 | rng.getrandbits(14), rng.getrandbits(48)),
        "type": "order",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(updated)),
        "status": rng.choice(STATUS),
        "channel": rng.choice(CHANNEL),
        "customer": {
            "id": rng.randint(10_000, 9_999_999),
            "name": "%s %s" % (first, last),
            "email": "%s.%s%d@example.%s" % (first.lower(), last.lower().replace(" ", ""), rng.randint(1, 999),
                                             rng.choice(("com", "nl", "org", "net"))),
            "phone": "+31 6 %08d" % rng.randint(0, 99_999_999),
            "address": {"street": rng.choice(STREETS), "number": rng.randint(1, 350),
                        "postcode": "%04d %s%s" % (rng.randint(1000, 9999), chr(65 + rng.randint(0, 25)),
                                                   chr(65 + rng.randint(0, 25))),
                        "city": rng.choice(CITIES), "country": "NL"},
        },
        "items": items,
        "total": round(sum(it["quantity"] * it["unit_price"] for it in items), 2),
        "currency": "EUR",
        "tags": rng.sample(TAGS, rng.randint(0, 4)),
        "notes": "",
    }
    target = rng.randint(850, 1150)
    need = target - len(json.dumps(doc, separators=(",", ":")))
    if need > 0:
        text = _notes_text()
        start = rng.randrange(len(text) - 2000)
        start = text.index(" ", start) + 1
        end = text.rfind(" ", start, start + need + 1)
        doc["notes"] = text[start:end if end > start else start + need]
    return json.dumps(doc, separators=(",", ":")).encode()


def connect(port, timeout=30.0, db=0):
    import redis
    return redis.Redis(host=HOST, port=port, db=db, socket_timeout=timeout, socket_connect_timeout=10)


def _write_docs(port, docs, prefix, batch, want):
    r = connect(port, timeout=120.0)
    before = r.dbsize()
    t0 = time.monotonic()
    for lo in range(0, len(docs), batch):
        p = r.pipeline(transaction=False)
        for i in range(lo, min(lo + batch, len(docs))):
            p.set("%s%07d" % (prefix, i), docs[i])
        res = p.execute()
        if not all(x is True for x in res):
            raise SystemExit("docs: port %d: a SET failed: %r" % (port, [x for x in res if x is not True][:3]))
    secs = time.monotonic() - t0
    after = r.dbsize()
    if after - before != len(docs):
        raise SystemExit("docs: port %d: DBSIZE grew by %d, expected %d" % (port, after - before, len(docs)))
    for i in want:
        got = r.get("%s%07d" % (prefix, i))
        if got != docs[i]:
            raise SystemExit("docs: port %d: %s%07d reads back different (%r...)" % (port, prefix, i,
                                                                                      (got or b"")[:40]))
    r.close()
    return secs


def cmd_docs(a):
    """Generate the documents once, then write them to every port in turn."""
    rng = random.Random(a.seed)
    docs = [make_doc(rng, i) for i in range(a.count)]
    total = sum(len(d) for d in docs)
    want = sorted(random.Random(a.seed + 1).sample(range(a.count), min(50, a.count)))
    kv(docs=a.count, raw_bytes=total, avg_bytes="%.0f" % (total / max(a.count, 1)))
    for port in [int(x) for x in a.ports.split(",") if x]:
        secs = _write_docs(port, docs, a.prefix, a.batch, want)
        kv(**{"seconds_%d" % port: "%.2f" % secs})


# ---------------------------------------------------------------------------------------------
# the near cache rows' hot set: the memory rows' documents under redis-benchmark's -r key names
def near_docs(count, seed):
    """The first COUNT documents of cmd_docs with the same seed (the same generator and sequence)."""
    rng = random.Random(seed)
    return [make_doc(rng, i) for i in range(count)]


def near_key(i):
    return b"key:%012d" % i  # redis-benchmark's "key:__rand_int__" with -r: 12 digits, zero-padded


def cmd_neardocs(a):
    docs = near_docs(a.count, a.seed)
    with open(a.set, "wb") as fs, open(a.get, "wb") as fg:
        for i, d in enumerate(docs):
            k = near_key(i)
            fs.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(d), d))
            fg.write(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
    sizes = [len(d) for d in docs]
    kv(docs=len(docs), raw_bytes=sum(sizes), min_bytes=min(sizes) if sizes else 0,
       max_bytes=max(sizes) if sizes else 0, avg_bytes="%.0f" % (sum(sizes) / max(len(sizes), 1)))


def cmd_nearcheck(a):
    """With --strlen, STRLEN summed over the hot set's keys (the bytes as stored there); with --verify K, K
    sampled keys (fixed seed) read back equal to their document."""
    r = connect(a.port, timeout=60.0, db=a.db)
    stored = 0
    missing = 0
    for lo in range(0, a.count if a.strlen else 0, 1000):
        p = r.pipeline(transaction=False)
        for i in range(lo, min(lo + 1000, a.count)):
            p.strlen(near_key(i))
        for n in p.execute():
            stored += n
            missing += n == 0
    if missing:
        raise SystemExit("nearcheck: port %d db %d: %d of the %d keys are missing or empty" % (
            a.port, a.db, missing, a.count))
    checked = 0
    if a.verify:
        docs = near_docs(a.count, a.seed)
        want = sorted(random.Random(a.seed + 2).sample(range(a.count), min(a.verify, a.count)))
        p = r.pipeline(transaction=False)
        for i in want:
            p.get(near_key(i))
        for i, got in zip(want, p.execute()):
            if got != docs[i]:
                raise SystemExit("nearcheck: port %d: %s reads back different (%r...)" % (
                    a.port, near_key(i).decode(), (got or b"")[:40]))
            checked += 1
    r.close()
    if a.strlen:
        kv(keys=a.count, stored_bytes=stored)
    kv(verified=checked)


# ---------------------------------------------------------------------------------------------
# isolation: big writer and small-GET latency
def cmd_bigwriter(a):
    r = connect(a.port, timeout=max(60.0, a.max_seconds * 4))
    rng = random.Random(4242)
    size = int(a.mb * 1024 * 1024)
    parts = []
    n = 0
    i = 0
    while n < size and i < 100_000:  # bounded
        d = make_doc(rng, i)
        parts.append(d)
        n += len(d) + 1
        i += 1
    blob = bytearray(b"[" + b",".join(parts)[: size - 2] + b"]")
    deadline = time.monotonic() + a.max_seconds
    done = 0
    times = []
    for w in range(a.max_writes):
        if time.monotonic() >= deadline:
            break
        blob[1:17] = b"%016d" % w
        t = time.monotonic()
        if w == 0 and a.ready:
            with open(a.ready, "w") as f:
                f.write("ready\n")
        if r.set("big:%d" % (w % 4), bytes(blob)) is not True:
            raise SystemExit("bigwriter: SET of %d bytes failed" % size)
        times.append(time.monotonic() - t)
        done += 1
        kv(set_seconds="%.3f" % times[-1])  # one line per completed write: usable even if stopped early
    kv(big_writes=done, big_bytes=size, big_set_seconds_avg="%.3f" % (statistics.mean(times) if times else 0))


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def cmd_getlat(a):
    r = connect(a.port, timeout=30.0)
    if a.prefill:
        p = r.pipeline(transaction=False)
        for i in range(a.keys):
            p.set("small:%d" % i, b"v" * 100)
        p.execute()
    rng = random.Random(7)
    lat = []
    starts = []  # with --trace: when each GET was sent (time.monotonic, the same clock in every process)
    misses = 0
    deadline = time.monotonic() + a.seconds
    for _ in range(a.max_ops):
        now = time.monotonic()
        if now >= deadline:
            break
        k = "small:%d" % rng.randrange(a.keys)
        t = time.perf_counter()
        v = r.get(k)
        lat.append(time.perf_counter() - t)
        if a.trace:
            starts.append(now)
        if v is None:
            misses += 1
    if misses:
        raise SystemExit("getlat: %d GETs missed (keys not prefilled?)" % misses)
    if a.trace:
        with open(a.trace, "w") as f:
            f.writelines("%.6f %.6f\n" % x for x in zip(starts, lat))
    lat.sort()
    ms = lambda x: "%.3f" % (x * 1000.0)
    kv(ops=len(lat), p50_ms=ms(pct(lat, 50)), p99_ms=ms(pct(lat, 99)), p999_ms=ms(pct(lat, 99.9)),
       max_ms=ms(lat[-1] if lat else float("nan")))


# ---------------------------------------------------------------------------------------------
# idle connections
def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("conns: no VmRSS for pid %d" % pid)


def cmd_conns(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise SystemExit("conns: need %d file descriptors, hard limit is %d" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    time.sleep(0.3)
    before = rss_kb(a.pid)
    ping = b"*1\r\n$4\r\nPING\r\n"
    socks = []
    deadline = time.monotonic() + a.timeout
    try:
        while len(socks) < a.count:
            if time.monotonic() > deadline:
                raise SystemExit("conns: only %d of %d clients connected within %ds" % (len(socks), a.count,
                                                                                        a.timeout))
            batch = []
            for _ in range(min(a.batch, a.count - len(socks))):
                s = socket.create_connection((HOST, a.port), timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                batch.append(s)
                socks.append(s)
            for s in batch:
                s.sendall(ping)
            for s in batch:
                got = b""
                for _ in range(16):  # bounded: a reply of 7 bytes
                    chunk = s.recv(64)
                    if not chunk:
                        raise SystemExit("conns: server closed client %d (%r)" % (len(socks), got))
                    got += chunk
                    if got.endswith(b"\r\n"):
                        break
                if got != b"+PONG\r\n":
                    raise SystemExit("conns: unexpected reply %r at client %d" % (got, len(socks)))
        time.sleep(0.5)
        after = rss_kb(a.pid)
        kv(clients=len(socks), rss_before_kb=before, rss_after_kb=after,
           per_client_bytes="%.0f" % ((after - before) * 1024.0 / max(len(socks), 1)))
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------------
# zstd dictionaries (zstd://?dictionary=auto)
def load_docs(path, count):
    """The first COUNT documents of a dictdocs file (one JSON document a line)."""
    docs = []
    with open(path, "rb") as f:
        for line in f:
            if len(docs) >= count:
                break
            docs.append(line.rstrip(b"\n"))
    if len(docs) < count:
        raise SystemExit("%s holds %d documents, %d wanted" % (path, len(docs), count))
    return docs


def cmd_dictdocs(a):
    """The first N documents of `docs` (same generator and seed), one a line, into FILE; make_doc writes
    compact JSON, which has no newline."""
    rng = random.Random(a.seed)
    sizes = []
    with open(a.out, "wb") as f:
        for i in range(a.count):
            d = make_doc(rng, i)
            if b"\n" in d:
                raise SystemExit("dictdocs: document %d has a newline" % i)
            f.write(d + b"\n")
            sizes.append(len(d))
    kv(docs=len(sizes), raw_bytes=sum(sizes), min_bytes=min(sizes), max_bytes=max(sizes),
       avg_bytes="%.0f" % (sum(sizes) / max(len(sizes), 1)))


def dict_state(r):
    """(cache_zstd_dictionary_id, cache_zstd_dictionary_training, the whole INFO cache) of a cachetoryd."""
    i = r.info("cache")
    return int(i.get("cache_zstd_dictionary_id", 0)), int(i.get("cache_zstd_dictionary_training", 0)), i


def dict_wait_training(r, max_wait):
    """Wait until no training runs (polled every 20 ms, at most MAX_WAIT s); the dictionary ID then."""
    deadline = time.monotonic() + max_wait
    did, training, _ = dict_state(r)
    while training:
        if time.monotonic() >= deadline:
            raise SystemExit("a dictionary training still runs after %d s" % max_wait)
        time.sleep(0.02)
        did, training, _ = dict_state(r)
    return did


def doc_key(prefix, i):
    return b"%s%07d" % (prefix, i)


def cmd_dictfill(a):
    """Write the first COUNT documents through a cachetoryd in pipelined batches. With --wait-dict, INFO cache
    after each batch: while a dictionary training runs the writes pause (so that the documents that follow
    are written with the dictionary it makes, as on a server whose training took no time), and the number
    of documents written when cache_zstd_dictionary_id first names a dictionary is docs_before_dict. Then
    the bytes as stored: STRLEN summed over the keys in the upstream Redis (--upstream-port), or the
    encoded bytes of INFO cache (memory://), and used_memory before and after (the upstream's, or the
    daemon's); 50 sampled keys are read back equal."""
    prefix = a.prefix.encode()
    docs = load_docs(a.docs, a.count)
    r = connect(a.port, timeout=120.0)
    up = connect(a.upstream_port, timeout=120.0, db=a.upstream_db) if a.upstream_port else None
    meas = up if up is not None else r
    mem0 = int(meas.info("memory")["used_memory"])
    _, _, i0 = dict_state(r)
    adopted = None
    i_adopt = None  # INFO cache when the dictionary was first seen in use
    paused = 0.0
    pauses = 0
    t0 = time.monotonic()
    for lo in range(0, len(docs), a.batch):
        hi = min(lo + a.batch, len(docs))
        p = r.pipeline(transaction=False)
        for i in range(lo, hi):
            p.set(doc_key(prefix, i), docs[i])
        res = p.execute()
        if not all(x is True for x in res):
            raise SystemExit("dictfill: port %d: a SET failed: %r" % (a.port, [x for x in res if x is not True][:3]))
        if a.wait_dict and adopted is None:
            did, training, _ = dict_state(r)
            if training:
                tp = time.monotonic()
                did = dict_wait_training(r, a.max_wait)
                paused += time.monotonic() - tp
                pauses += 1
            if did:
                adopted = hi
                i_adopt = dict_state(r)[2]
    secs = time.monotonic() - t0 - paused
    if a.wait_dict and adopted is None:
        tp = time.monotonic()
        if dict_wait_training(r, a.max_wait):
            adopted = len(docs)
        paused += time.monotonic() - tp
    did, training, i1 = dict_state(r)
    mem1 = int(meas.info("memory")["used_memory"])
    d = lambda f, i: int(i1.get(f, 0)) - int(i.get(f, 0))
    enc_in, enc_out = d("cache_encode_bytes_in", i0), d("cache_encode_bytes_out", i0)
    stored = enc_out
    # the documents written once the dictionary was in use, alone: raw and stored bytes
    after_raw = after_stored = ""
    if i_adopt is not None and adopted < len(docs):
        after_raw, after_stored = d("cache_encode_bytes_in", i_adopt), d("cache_encode_bytes_out", i_adopt)
    if up is not None:
        stored = 0
        after_stored = 0 if after_raw != "" else ""
        for lo in range(0, len(docs), 1000):
            p = up.pipeline(transaction=False)
            for i in range(lo, min(lo + 1000, len(docs))):
                p.strlen(doc_key(prefix, i))
            for i, n in zip(range(lo, min(lo + 1000, len(docs))), p.execute()):
                if n == 0:
                    raise SystemExit("dictfill: upstream port %d db %d: a key is missing" % (a.upstream_port,
                                                                                           a.upstream_db))
                stored += n
                if after_raw != "" and i >= adopted:
                    after_stored += n
        if after_raw != "":
            after_raw = sum(len(x) for x in docs[adopted:])
    want = sorted(random.Random(a.seed + 1).sample(range(len(docs)), min(50, len(docs))))
    p = r.pipeline(transaction=False)
    for i in want:
        p.get(doc_key(prefix, i))
    for i, got in zip(want, p.execute()):
        if got != docs[i]:
            raise SystemExit("dictfill: port %d: %s reads back different (%r...)" % (
                a.port, doc_key(prefix, i).decode(), (got or b"")[:40]))
    kv(docs=len(docs), raw_bytes=sum(len(x) for x in docs), write_seconds="%.2f" % secs,
       paused_seconds="%.2f" % paused, pauses=pauses, docs_before_dict="" if adopted is None else adopted,
       dictionary_id=did, dictionaries=i1.get("cache_zstd_dictionaries", 0),
       trainings=i1.get("cache_zstd_dictionary_trainings", 0),
       trainings_unused=i1.get("cache_zstd_dictionary_trainings_unused", 0),
       trained_ratio=i1.get("cache_zstd_dictionary_trained_ratio", ""),
       used_memory_before=mem0, used_memory_after=mem1, encode_bytes_in=enc_in, encode_bytes_out=enc_out,
       stored_bytes=stored, after_dict_raw_bytes=after_raw, after_dict_stored_bytes=after_stored,
       verified=len(want))


def resp_command(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in args)


def resp_reply(buf, pos):
    """One RESP reply of buf at pos: (kind, value, next pos), or None while incomplete. kind is the type byte
    (b"+", b"-", b":", b"$"); a bulk string's value is its bytes (None for a nil)."""
    e = buf.find(b"\r\n", pos)
    if e < 0:
        return None
    kind = buf[pos:pos + 1]
    if kind != b"$":
        return kind, bytes(buf[pos + 1:e]), e + 2
    n = int(buf[pos + 1:e])
    if n < 0:
        return kind, None, e + 2
    if len(buf) < e + 2 + n + 2:
        return None
    return kind, bytes(buf[e + 2:e + 2 + n]), e + 2 + n + 2


def dictload_worker(port, cmds, expect, order, first, ops, pipeline, go, out):
    """One connection's share of a dictload run: OPS commands from position FIRST of ORDER (cycled), PIPELINE
    at a time; waits for a byte on GO, then writes its result (JSON) to the file OUT."""
    s = socket.create_connection((HOST, port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if os.read(go, 1) != b"g":
        raise SystemExit(1)
    lat = []
    bad = []
    done = 0
    k = first
    n = len(order)
    t_start = time.monotonic()
    while done < ops:
        m = min(pipeline, ops - done)
        idx = [order[(k + j) % n] for j in range(m)]
        k += m
        t = time.perf_counter()
        s.sendall(b"".join(cmds[i] for i in idx))
        buf = bytearray()
        pos = 0
        got = 0
        for _ in range(100_000):  # bounded: each pass reads at least one byte or ends
            while got < m:
                rep = resp_reply(buf, pos)
                if rep is None:
                    break
                kind, val, pos = rep
                want = expect[idx[got]] if expect is not None else None
                if kind == b"-" or (want is not None and val != want) or (want is None and val != b"OK"):
                    if len(bad) < 3:
                        bad.append("%r" % ((val or b"")[:60],))
                    else:
                        bad.append("")
                got += 1
            if got == m:
                break
            chunk = s.recv(1 << 18)
            if not chunk:
                raise SystemExit("dictload: the server closed the connection")
            buf += chunk
        if got != m:
            raise SystemExit("dictload: replies did not arrive")
        lat.append(time.perf_counter() - t)
        done += m
    t_end = time.monotonic()
    s.close()
    with open(out, "w") as f:
        json.dump({"ops": done, "start": t_start, "end": t_end, "lat": lat, "bad": len(bad),
                   "bad_first": [b for b in bad if b][:3]}, f)


def cpu_seconds(pid):
    """User + system CPU of PID so far, in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmd_dictload(a):
    """SET or GET of the first KEYS documents (keys in a fixed shuffled order), COUNT commands over CONNS
    connections (one forked process each), PIPELINE commands in flight per connection; GET replies must equal
    the documents. Measured from the moment every connection is up to the last reply: ops/s, round-trip
    p50/p99 (one round trip = PIPELINE commands), and the CPU of the server (--pid, /proc/PID/stat) and of
    the client processes over that span."""
    prefix = a.prefix.encode()
    docs = load_docs(a.docs, a.keys)
    keys = [doc_key(prefix, i) for i in range(a.keys)]
    if a.op == "set":
        cmds = [resp_command(b"SET", keys[i], docs[i]) for i in range(a.keys)]
        expect = None
    else:
        cmds = [resp_command(b"GET", keys[i]) for i in range(a.keys)]
        expect = docs
    order = list(range(a.keys))
    random.Random(a.seed + 3).shuffle(order)
    tmp = a.tmp or "/tmp"
    outs, pids = [], []
    go_r, go_w = os.pipe()
    per = [a.count // a.conns + (1 if c < a.count % a.conns else 0) for c in range(a.conns)]
    try:
        for c in range(a.conns):
            out = os.path.join(tmp, "dictload-%d-%d.json" % (os.getpid(), c))
            outs.append(out)
            pid = os.fork()
            if pid == 0:
                rc = 0
                try:
                    os.close(go_w)
                    dictload_worker(a.port, cmds, expect, order, c * a.keys // a.conns, per[c], a.pipeline, go_r,
                                    out)
                except BaseException as e:  # the child must not return into the parent's code
                    sys.stderr.write("dictload worker %d: %s\n" % (c, e))
                    rc = 1
                finally:
                    os._exit(rc)
            pids.append(pid)
        os.close(go_r)
        time.sleep(0.3)  # the connections are made (a worker connects before it waits for GO)
        c0 = os.times()
        k0 = cpu_seconds(a.pid)
        t0 = time.monotonic()
        os.write(go_w, b"g" * a.conns)
        failed = 0
        for pid in pids:
            _, st = os.waitpid(pid, 0)
            failed += st != 0
        pids = []
        k1 = cpu_seconds(a.pid)
        c1 = os.times()
        if failed:
            raise SystemExit("dictload: %d of %d connections failed" % (failed, a.conns))
        res = []
        for out in outs:
            with open(out) as f:
                res.append(json.load(f))
    finally:
        os.close(go_w)
        for pid in pids:  # (only on an error: stop the workers still running)
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except OSError:
                pass
        for out in outs:
            try:
                os.unlink(out)
            except OSError:
                pass
    end = max(x["end"] for x in res)
    wall = end - t0
    ops = sum(x["ops"] for x in res)
    lat = sorted(v for x in res for v in x["lat"])
    bad = sum(x["bad"] for x in res)
    first = [b for x in res for b in x["bad_first"]][:3]
    if bad:
        raise SystemExit("dictload: %d of %d %s replies were not as expected: %s" % (bad, ops, a.op.upper(),
                                                                                     "; ".join(first)))
    ms = lambda x: "%.3f" % (x * 1000.0)
    kv(ops=ops, seconds="%.3f" % wall, rps="%.1f" % (ops / wall if wall > 0 else 0), p50_ms=ms(pct(lat, 50)),
       p99_ms=ms(pct(lat, 99)), server_cpu_s="%.3f" % (k1 - k0),
       client_cpu_s="%.3f" % ((c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)),
       mismatches=bad)


def read_trace(path):
    rows = []
    with open(path) as f:
        for line in f:
            t, v = line.split()
            rows.append((float(t), float(v)))
    return rows


def cmd_dictiso(a):
    """Small-GET latency while dictionary trainings run, against quiet. First the sample is filled (FILL
    documents) and the automatic training it starts is waited for. Quiet: `getlat` for SECONDS. Loaded:
    `getlat` again while this process trains back to back: the sample refilled (the FILL documents again,
    pipelined: CACHE DICT TRAIN takes the sample), then CACHE DICT TRAIN sent, INFO cache polled every
    50 ms until its reply (cache_zstd_dictionary_training:1 seen or not), and so on until the GETs end.
    A GET counts as "during a training" when it was sent between a TRAIN and its reply."""
    import subprocess
    prefix = a.prefix.encode()
    docs = load_docs(a.docs, a.fill)
    r = connect(a.port, timeout=300.0)

    def refill():
        for lo in range(0, len(docs), 500):
            p = r.pipeline(transaction=False)
            for i in range(lo, min(lo + 500, len(docs))):
                p.set(doc_key(prefix, i), docs[i])
            if not all(x is True for x in p.execute()):
                raise SystemExit("dictiso: a SET failed")

    def getlat(trace, prefill):
        args = [sys.executable, os.path.abspath(__file__), "getlat", "--port", str(a.port), "--seconds",
                str(a.seconds), "--trace", trace] + (["--prefill"] if prefill else [])
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(proc, what):
        try:
            out, err = proc.communicate(timeout=a.seconds + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SystemExit("dictiso: %s GET timing did not end" % what)
        if proc.returncode != 0:
            raise SystemExit("dictiso: %s GET timing failed: %s" % (what, err.decode(errors="replace")[-300:]))

    t = time.monotonic()
    refill()
    first = dict_wait_training(r, a.max_wait)
    if not first:
        raise SystemExit("dictiso: no dictionary after the sample was filled with %d documents (INFO cache: %r)" % (
            len(docs), dict_state(r)[2]))
    first_s = time.monotonic() - t
    qtrace, ltrace = a.trace_prefix + "-quiet.txt", a.trace_prefix + "-loaded.txt"
    proc = getlat(qtrace, True)
    finish(proc, "quiet")
    quiet = sorted(v for _, v in read_trace(qtrace))

    spans = []       # (sent, answered) of each TRAIN
    seen = 0         # TRAINs during which INFO said cache_zstd_dictionary_training:1
    errors = []
    refill_s = []
    proc = getlat(ltrace, False)
    try:
        for _ in range(a.max_trainings):
            if proc.poll() is not None:
                break
            t = time.monotonic()
            refill()
            refill_s.append(time.monotonic() - t)
            s = socket.create_connection((HOST, a.port), timeout=10)
            try:
                t0 = time.monotonic()
                s.sendall(resp_command(b"CACHE", b"DICT", b"TRAIN"))
                buf = bytearray()
                rep = None
                running = False
                deadline = t0 + a.max_wait
                while rep is None:
                    if time.monotonic() >= deadline:
                        raise SystemExit("dictiso: CACHE DICT TRAIN not answered within %d s" % a.max_wait)
                    ready, _, _ = select.select([s], [], [], 0.05)
                    if ready:
                        chunk = s.recv(4096)
                        if not chunk:
                            raise SystemExit("dictiso: the server closed the connection during CACHE DICT TRAIN")
                        buf += chunk
                        rep = resp_reply(buf, 0)
                    elif not running:
                        running = dict_state(r)[1] == 1
                t1 = time.monotonic()
            finally:
                s.close()
            spans.append((t0, t1))
            seen += running
            if rep[0] == b"-":
                errors.append(rep[1].decode(errors="replace"))
    finally:
        finish(proc, "loaded")
    loaded = read_trace(ltrace)
    during = sorted(v for ts, v in loaded if any(t0 <= ts <= t1 for t0, t1 in spans))
    outside = sorted(v for ts, v in loaded if not any(t0 <= ts <= t1 for t0, t1 in spans))
    alll = sorted(v for _, v in loaded)
    lo_end = loaded[-1][0] if loaded else 0
    lo_start = loaded[0][0] if loaded else 0
    busy = sum(max(0.0, min(t1, lo_end) - max(t0, lo_start)) for t0, t1 in spans)
    ms = lambda x: "%.3f" % (x * 1000.0)
    train_s = [t1 - t0 for t0, t1 in spans]
    kv(first_training_seconds="%.2f" % first_s, quiet_ops=len(quiet), quiet_p50_ms=ms(pct(quiet, 50)),
       quiet_p99_ms=ms(pct(quiet, 99)), loaded_ops=len(alll), loaded_p50_ms=ms(pct(alll, 50)),
       loaded_p99_ms=ms(pct(alll, 99)), during_ops=len(during), during_p50_ms=ms(pct(during, 50)),
       during_p99_ms=ms(pct(during, 99)), during_max_ms=ms(during[-1] if during else float("nan")),
       outside_ops=len(outside), outside_p99_ms=ms(pct(outside, 99)), trainings=len(spans),
       trainings_seen_running=seen, training_errors=len(errors),
       training_error_first=(errors[0][:120].replace(",", ";") if errors else ""),
       training_seconds_avg="%.2f" % (statistics.mean(train_s) if train_s else 0),
       refill_seconds_avg="%.2f" % (statistics.mean(refill_s) if refill_s else 0),
       training_share="%.3f" % (busy / (lo_end - lo_start) if lo_end > lo_start else 0))


def cmd_dictread(a):
    """Read the first COUNT documents back (GET, pipelined) through a cachetoryd that did not write them;
    count those equal to their document, different, and missing; then that daemon's dictionary counters."""
    prefix = a.prefix.encode()
    docs = load_docs(a.docs, a.count)
    r = connect(a.port, timeout=120.0)
    equal = differ = missing = 0
    first = ""
    for lo in range(0, len(docs), 500):
        p = r.pipeline(transaction=False)
        for i in range(lo, min(lo + 500, len(docs))):
            p.get(doc_key(prefix, i))
        for i, got in zip(range(lo, min(lo + 500, len(docs))), p.execute(raise_on_error=False)):
            if got == docs[i]:
                equal += 1
            elif got is None:
                missing += 1
            else:
                differ += 1
                if not first:
                    first = "%s: %r" % (doc_key(prefix, i).decode(), (str(got) if isinstance(got, Exception)
                                                                      else got)[:60])
    i = r.info("cache")
    kv(read=len(docs), equal=equal, mismatches=differ, missing=missing,
       first_mismatch=first.replace(",", ";").replace("\n", " "),
       dictionaries_fetched=i.get("cache_zstd_dictionaries_fetched", 0),
       dictionary_fetch_failures=i.get("cache_zstd_dictionary_fetch_failures", 0),
       dictionaries=i.get("cache_zstd_dictionaries", 0), decode_errors=i.get("cache_decode_errors", 0),
       values_undecoded=i.get("cache_values_undecoded", 0))


# ---------------------------------------------------------------------------------------------
# report
def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def fnum(x, nd=0):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if v != v:
        return "n/a"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{nd}f}".format(v, nd=nd)


def mb(x):
    try:
        return "%.1f MB" % (float(x) / 1e6)
    except (TypeError, ValueError):
        return "n/a"


def cmd_report(a):
    d = a.dir
    meta = {}
    if os.path.exists(os.path.join(d, "meta.txt")):
        with open(os.path.join(d, "meta.txt")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    setups = read_csv(os.path.join(d, "setups.csv"))
    labels = {s["setup"]: s["label"] for s in setups}
    # TLS setup -> the plain setup it is compared with (setups.csv of an older run has no such column)
    plain_of = {s["setup"]: s["plain"] for s in setups if s.get("tls") == "yes" and s.get("plain")}
    out = []
    P = out.append
    P("### Benchmark results — %s, %s (`nproc` = %s)%s" % (
        meta.get("date", "?"), meta.get("cpu", "?"), meta.get("nproc", "?"),
        ", quick run (smoke test, not representative)" if meta.get("mode") == "quick" else ""))
    P("")
    P("cachetoryd %s, %s, %s; load average at start %s. Same machine, same run; figures are indicative."
      % (meta.get("version", "?"), meta.get("redis_version", "?"), meta.get("nutcracker_version", "?"),
         meta.get("loadavg", "?")))
    P("")
    na = [s for s in setups if s["available"] != "yes"]
    notes = {}
    for s in na:
        notes.setdefault(s["note"], []).append(s["label"])
    for note, names in notes.items():
        P("**Not available in this build:** %s — %s." % (", ".join(names), note.rstrip(".")))
        P("")

    # throughput -------------------------------------------------------------------------------
    raw = read_csv(os.path.join(d, "throughput-raw.csv"))
    groups = {}
    for r in raw:
        groups.setdefault((r["setup"], r["test"], int(r["pipeline"])), []).append(r)
    tests = ["SET", "GET", "MSET (10 keys)"]
    pipes = sorted({k[2] for k in groups})
    order = [s["setup"] for s in setups if s["available"] == "yes" and s.get("throughput") == "yes"]
    med = {}
    for key, rows in groups.items():
        med[key] = (statistics.median(float(x["rps"]) for x in rows),
                    statistics.median(float(x["p50_ms"]) for x in rows),
                    statistics.median(float(x["p99_ms"]) for x in rows), len(rows),
                    min(float(x["rps"]) for x in rows), max(float(x["rps"]) for x in rows))
    if med:
        P("#### Throughput and latency")
        P("")
        P("`redis-benchmark -c 50 -d 100 -r 100000 -n %s -P <pipeline> -t set,get,mset --csv`, setups "
          "interleaved, median of %s round(s); ratios are ops/s against redis-server direct and against "
          "nutcracker → redis%s." % (meta.get("requests", "?"), meta.get("rounds", "?"),
                                      " (TLS rows: `--tls --cacert`, against redis-server's TLS port)"
                                      if plain_of else ""))
        P("")
        P("| setup | test | pipeline | ops/s | range of rounds | p50 ms | p99 ms | ×redis | ×nutcracker |")
        P("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        rows_csv = []
        for t in tests:
            for p in pipes:
                for s in order:
                    m = med.get((s, t, p))
                    if not m:
                        continue
                    rr = med.get(("redis-tls" if s in plain_of else "redis", t, p))
                    rn = None if s in plain_of else med.get(("nutcracker", t, p))
                    is_ctd = s.startswith("ctd")
                    xr = m[0] / rr[0] if (is_ctd and rr and rr[0]) else None
                    xn = m[0] / rn[0] if (is_ctd and rn and rn[0]) else None
                    P("| %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
                        labels.get(s, s), t, p, fnum(m[0]),
                        "%.0fk–%.0fk" % (m[4] / 1e3, m[5] / 1e3) if m[3] > 1 else "", fnum(m[1], 3), fnum(m[2], 3),
                        ("%.2f" % xr) if xr else "", ("%.2f" % xn) if xn else ""))
                    rows_csv.append([s, labels.get(s, s), t, p, "%.2f" % m[0], "%.3f" % m[1], "%.3f" % m[2],
                                     m[3], "%.2f" % m[4], "%.2f" % m[5],
                                     ("%.3f" % xr) if xr else "", ("%.3f" % xn) if xn else ""])
        write_csv(os.path.join(d, "throughput.csv"),
                  ["setup", "label", "test", "pipeline", "rps_median", "p50_ms_median", "p99_ms_median",
                   "rounds", "rps_min", "rps_max", "ratio_vs_redis", "ratio_vs_nutcracker"], rows_csv)
        # gnuplot data: one row per test@pipeline, one column per setup
        with open(os.path.join(d, "throughput.dat"), "w") as f:
            f.write("case\t" + "\t".join(labels.get(s, s) for s in order) + "\n")
            for p in pipes:
                for t in tests:
                    vals = []
                    for s in order:
                        m = med.get((s, t, p))
                        vals.append("%.0f" % m[0] if m else "0")
                    f.write('%s P%d\t%s\n' % (t.replace(" (10 keys)", "x10"), p, "\t".join(vals)))
        P("")

    # CPU: is the client the ceiling? ----------------------------------------------------------
    cpu = read_csv(os.path.join(d, "cpu-raw.csv"))
    cg = {}
    for r in cpu:
        if float(r["wall_s"]) > 0 and int(r["commands"]) > 0:
            cg.setdefault((r["setup"], int(r["pipeline"])), []).append(r)
    if cg:
        P("#### CPU per run")
        P("")
        P("Each redis-benchmark run above (SET, GET and MSET: %s commands): the client's CPU as a share of "
          "the run's wall time, and the server's own CPU (user + system, the proxy alone for proxied "
          "setups) per command; medians over the rounds. A client near 100%% is the ceiling of that run: "
          "the servers behind it are then told apart by their CPU, not by ops/s." % fnum(cpu[0]["commands"]))
        P("")
        P("| setup | pipeline | client CPU | server CPU µs/command |")
        P("|---|---:|---:|---:|")
        rows_csv = []
        for p in sorted({k[1] for k in cg}):
            for s in order:
                rows = cg.get((s, p))
                if not rows:
                    continue
                client = statistics.median(float(x["client_cpu_s"]) / float(x["wall_s"]) for x in rows)
                server = statistics.median(float(x["server_cpu_s"]) * 1e6 / int(x["commands"]) for x in rows)
                P("| %s | %d | %.0f%% | %.2f |" % (labels.get(s, s), p, client * 100, server))
                rows_csv.append([s, labels.get(s, s), p, "%.3f" % client, "%.3f" % server, len(rows)])
        write_csv(os.path.join(d, "cpu.csv"),
                  ["setup", "label", "pipeline", "client_cpu_share", "server_cpu_us_per_command", "rounds"],
                  rows_csv)
        P("")

    # TLS overhead -----------------------------------------------------------------------------
    tls_pairs = [(t, pl) for t, pl in plain_of.items() if t in order and pl in order]
    if tls_pairs and cg:
        tlsinfo = {}
        if os.path.exists(os.path.join(d, "tls.txt")):
            with open(os.path.join(d, "tls.txt")) as f:
                for line in f:
                    if "=" in line:
                        k, v = line.rstrip("\n").split("=", 1)
                        tlsinfo[k] = v.strip()

        def us_per_cmd(r):
            return float(r["server_cpu_s"]) * 1e6 / int(r["commands"])

        def cpu_med(s, p):
            rows = cg.get((s, p))
            return statistics.median(us_per_cmd(x) for x in rows) if rows else None

        def rps(s, t, p):
            m = med.get((s, t, p))
            return fnum(m[0]) if m else "n/a"

        P("#### TLS overhead per command")
        P("")
        P("The same runs over TLS: redis-benchmark `--tls --cacert` against each server's TLS port (%s). "
          "TLS overhead = the server's CPU per command over TLS minus its CPU per command plain (medians over "
          "the rounds; user + system, the proxy's alone for cachetoryd → redis, whose TLS row has TLS on both "
          "sides, client → cachetoryd → redis-server, and its plain row none; the rows marked client side "
          "alone and upstream side alone have TLS on that side only). Target: cachetoryd's overhead "
          "no larger than redis-server's." % (tlsinfo.get("cert", "throwaway certificates")))
        P("")
        sess = []
        for t, _ in tls_pairs:
            if tlsinfo.get("client_" + t):
                sess.append("%s: %s" % (labels.get(t, t), tlsinfo["client_" + t]))
        for t, _ in tls_pairs:
            if tlsinfo.get("upstream_" + t, "").strip():
                sess.append("upstream connections of %s: %s" % (labels.get(t, t), tlsinfo["upstream_" + t]))
        if sess:
            P("Negotiated: %s." % "; ".join(sess))
            P("")
        P("| server | pipeline | SET ops/s plain → TLS | GET ops/s plain → TLS | CPU µs/cmd plain | "
          "CPU µs/cmd TLS | TLS overhead µs/cmd | range of rounds | ×redis-server's overhead |")
        P("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows_csv = []
        for p in sorted({k[1] for k in cg}):
            ref = None
            for t, pl in sorted(tls_pairs, key=lambda x: order.index(x[0])):
                a, b = cpu_med(pl, p), cpu_med(t, p)
                if a is None or b is None:
                    continue
                over = b - a
                if t == "redis-tls":
                    ref = over
                # per-round overheads, pairing the rounds of the TLS and the plain setup
                pr = {x["round"]: us_per_cmd(x) for x in cg.get((pl, p), [])}
                per = [us_per_cmd(x) - pr[x["round"]] for x in cg.get((t, p), []) if x["round"] in pr]
                rel = (over / ref) if (ref and t != "redis-tls" and ref > 0) else None
                P("| %s | %d | %s → %s | %s → %s | %.2f | %.2f | %+.2f | %s | %s |" % (
                    labels.get(t, t), p, rps(pl, "SET", p), rps(t, "SET", p),
                    rps(pl, "GET", p), rps(t, "GET", p), a, b, over,
                    "%+.2f … %+.2f" % (min(per), max(per)) if len(per) > 1 else "",
                    ("%.2f" % rel) if rel is not None else ""))
                rows_csv.append([t, pl, labels.get(t, t), p, "%.3f" % a, "%.3f" % b, "%.3f" % over,
                                 ("%.3f" % min(per)) if per else "", ("%.3f" % max(per)) if per else "",
                                 ("%.3f" % rel) if rel is not None else "",
                                 ("yes" if over <= ref else "no") if (ref is not None and t != "redis-tls")
                                 else ""])
        write_csv(os.path.join(d, "tls.csv"),
                  ["setup", "plain_setup", "label", "pipeline", "plain_cpu_us_per_command",
                   "tls_cpu_us_per_command", "tls_overhead_us_per_command", "overhead_min_us", "overhead_max_us",
                   "overhead_vs_redis", "within_target"], rows_csv)
        P("")
        for setup, what in (("ctd-tls-up-null", "cachetoryd TLS → redis TLS"),
                            ("ctd-tls-client", "its client side alone"),
                            ("ctd-tls-upstream", "its upstream side alone")):
            verdict = []
            for r in rows_csv:
                if r[0] == setup and r[10]:
                    verdict.append("P%s %s (%s µs against redis-server's %s µs)" % (
                        r[3], "within the target" if r[10] == "yes" else "above the target",
                        "%+.2f" % float(r[6]),
                        "%+.2f" % float(next(x[6] for x in rows_csv if x[0] == "redis-tls" and x[3] == r[3]))))
            if verdict:
                P("%s: %s." % (what, "; ".join(verdict)))
                P("")

    # Redis Cluster ----------------------------------------------------------------------------
    craw = read_csv(os.path.join(d, "cluster-raw.csv"))
    ccpu = read_csv(os.path.join(d, "cluster-cpu-raw.csv"))
    corder = [s["setup"] for s in setups if s.get("cluster") == "yes" and s["available"] == "yes"]
    if craw or ccpu:
        cgrp = {}
        for r in craw:
            cgrp.setdefault((r["setup"], r["test"], int(r["pipeline"])), []).append(r)
        cpug = {}
        for r in ccpu:
            if float(r["wall_s"]) > 0 and int(r["commands"]) > 0:
                cpug.setdefault((r["setup"], r["test"], int(r["pipeline"])), []).append(r)
        ctests = [t for t in ["SET", "GET", "MSET (10 keys)"] if any(k[1] == t for k in cgrp)]
        cpipes = sorted({k[2] for k in cgrp})
        tag = meta.get("cluster_tag", "{bench}")

        def cmed(s, t, p):
            rows = cgrp.get((s, t, p))
            if not rows:
                return None
            return (statistics.median(float(x["rps"]) for x in rows),
                    statistics.median(float(x["p50_ms"]) for x in rows),
                    statistics.median(float(x["p99_ms"]) for x in rows), len(rows),
                    min(float(x["rps"]) for x in rows), max(float(x["rps"]) for x in rows))

        def ccpu_med(s, t, p):
            # medians over the rounds of: the nodes' CPU, cachetoryd's, their sum (µs per command), the
            # client's share of a core
            rows = cpug.get((s, t, p))
            if not rows:
                return None
            us = lambda x, f: float(x[f]) * 1e6 / int(x["commands"])
            return (statistics.median(us(x, "nodes_cpu_s") for x in rows),
                    statistics.median(us(x, "proxy_cpu_s") for x in rows),
                    statistics.median(us(x, "nodes_cpu_s") + us(x, "proxy_cpu_s") for x in rows),
                    statistics.median(float(x["client_cpu_s"]) / float(x["wall_s"]) for x in rows))

        P("#### Redis Cluster: cachetoryd → cluster against redis-benchmark --cluster")
        P("")
        nodes = meta.get("cluster_nodes", "3")
        P("A cluster of %s masters (no replicas) on this machine. `redis-benchmark --threads %s -c 50 -d 100 "
          "-r 100000 -n <requests> -P <pipeline> --csv`, one run per test, setups interleaved, the cluster "
          "emptied before each setup's SET run, median of %s round(s); requests: %s at pipeline 1, %s at "
          "pipeline 16 (MSET %s). Direct: `redis-benchmark --cluster -h 127.0.0.1 -p <node 1>`, which gives each "
          "client the hash tag of one slot of the node it talks to (the keys live in %s slots, one per node); "
          "through cachetoryd (`--backend redis+cluster://<node 1>,<node 2>`) the keys are untagged and spread "
          "over all 16384 slots. redis-benchmark --cluster always runs client threads (one per master by "
          "default) and a threaded run ends at its next 250 ms timer, which counts in its ops/s: hence the same "
          "--threads for every row and the longer runs at pipeline 16." % (
              nodes, meta.get("cluster_client_threads", nodes), meta.get("rounds", "?"),
              fnum(meta.get("requests", "?")), fnum(meta.get("cluster_requests_p16", "?")),
              fnum(meta.get("cluster_requests_p16_mset", "?")), nodes))
        P("")
        if "MSET (10 keys)" in ctests:
            P("MSET: the direct rows run redis-benchmark --cluster's own MSET (10 keys sharing the client's "
              "hash tag, so one slot of the client's node). redis-benchmark's MSET through a proxy has untagged "
              "keys, which cachetoryd answers with CROSSSLOT (`--cluster-cross-slot-writes split` would make it "
              "a different, non-atomic workload), so the cachetoryd rows send `MSET key:%s:__rand_int__ <100 "
              "bytes> ×10` from redis-benchmark's command line: 10 keys in one slot, every MSET on one and the "
              "same node, where the direct rows spread them over the %s nodes." % (
                  tag, meta.get("cluster_nodes", "3")))
        else:
            P("MSET: no MSET rows in this run (see the failed steps).")
        P("")
        P("CPU per command: user + system CPU (from /proc/PID/stat, before and after each run) of all the "
          "cluster's nodes, of cachetoryd, and their sum, over the run's commands (an MSET of 10 keys is one "
          "command); ×direct divides cachetoryd's figure (ops/s, or total CPU) by the direct row's. Client: "
          "redis-benchmark's CPU (all its threads) as a share of one core over the run's wall time, start-up "
          "included.")
        P("")
        P("| setup | test | pipeline | ops/s | range of rounds | p50 ms | p99 ms | ×direct ops/s | "
          "CPU µs/cmd nodes | CPU µs/cmd cachetoryd | CPU µs/cmd total | ×direct CPU | client CPU |")
        P("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows_csv = []
        for t in ctests:
            for p in cpipes:
                base = cmed("cl-direct", t, p)
                bcpu = ccpu_med("cl-direct", t, p)
                for s in corder:
                    m = cmed(s, t, p)
                    c = ccpu_med(s, t, p)
                    if not m and not c:
                        continue
                    direct = s == "cl-direct"
                    xr = m[0] / base[0] if (not direct and m and base and base[0]) else None
                    xc = c[2] / bcpu[2] if (not direct and c and bcpu and bcpu[2]) else None
                    P("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        labels.get(s, s), t, p, fnum(m[0]) if m else "n/a",
                        "%.0fk–%.0fk" % (m[4] / 1e3, m[5] / 1e3) if (m and m[3] > 1) else "",
                        fnum(m[1], 3) if m else "", fnum(m[2], 3) if m else "",
                        ("%.2f" % xr) if xr else "",
                        ("%.2f" % c[0]) if c else "", ("%.2f" % c[1]) if (c and not direct) else "",
                        ("%.2f" % c[2]) if c else "", ("%.2f" % xc) if xc else "",
                        ("%.0f%%" % (c[3] * 100)) if c else ""))
                    rows_csv.append([s, labels.get(s, s), t, p,
                                     ("%.2f" % m[0]) if m else "", ("%.2f" % m[4]) if m else "",
                                     ("%.2f" % m[5]) if m else "", ("%.3f" % m[1]) if m else "",
                                     ("%.3f" % m[2]) if m else "", m[3] if m else 0,
                                     ("%.3f" % xr) if xr else "",
                                     ("%.3f" % c[0]) if c else "", ("%.3f" % c[1]) if (c and not direct) else "",
                                     ("%.3f" % c[2]) if c else "", ("%.3f" % xc) if xc else "",
                                     ("%.3f" % c[3]) if c else ""])
        write_csv(os.path.join(d, "cluster.csv"),
                  ["setup", "label", "test", "pipeline", "rps_median", "rps_min", "rps_max", "p50_ms_median",
                   "p99_ms_median", "rounds", "ratio_rps_vs_direct", "nodes_cpu_us_per_command",
                   "proxy_cpu_us_per_command", "total_cpu_us_per_command", "ratio_cpu_vs_direct",
                   "client_cpu_share"], rows_csv)
        P("")

    # memory -----------------------------------------------------------------------------------
    mem = read_csv(os.path.join(d, "memory.csv"))
    if mem:
        docs = mem[0].get("docs", "?")
        avg = mem[0].get("avg_doc_bytes", "?")
        P("#### Memory: %s JSON documents (avg %s bytes, %s raw, seed %s)" % (
            fnum(docs), avg, mb(mem[0].get("raw_bytes")), meta.get("seed", "?")))
        P("")
        P("| setup | codec | used_memory | used_memory_rss | RSS − empty RSS | used_memory per doc | "
          "encode ratio | vs redis used_memory |")
        P("|---|---|---:|---:|---:|---:|---:|---:|")
        base = None
        for m in mem:
            if m["setup"] == "mem-redis":
                base = float(m["used_memory"])
        for m in mem:
            um = float(m["used_memory"])
            P("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                m["label"], m["codec"], mb(um), mb(m["rss"]),
                mb(float(m["rss"]) - float(m["rss_empty"])), fnum(um / max(float(m["docs"]), 1)),
                m.get("encode_ratio") or "", ("%.2f" % (um / base)) if base else ""))
        P("")
        P("used_memory: redis-server's allocator total; cachetoryd's accounted dataset (key + value + fixed "
          "per-key overhead). For setups that write through cachetoryd to redis, used_memory is the "
          "upstream redis-server's. used_memory_rss: the process's resident set (bytes).")
        P("")
        with open(os.path.join(d, "memory.dat"), "w") as f:
            f.write('setup\tused_memory MB\tRSS MB\n')
            for m in mem:
                name = {"redis-server": "redis-server raw", "cachetoryd memory://": "ctd memory:// " + m["codec"],
                        "cachetoryd → redis": "redis via ctd " + m["codec"]}.get(m["label"], m["label"])
                f.write('%s\t%.1f\t%.1f\n' % (name,
                                                float(m["used_memory"]) / 1e6, float(m["rss"]) / 1e6))

    # isolation --------------------------------------------------------------------------------
    iso = read_csv(os.path.join(d, "isolation.csv"))
    if iso:
        P("#### Isolation: small GETs while another client writes %s MB values" % iso[0].get("big_mb", "8"))
        P("")
        P("One client times single GETs of 100-byte keys (%s s each phase); another SETs %s MB JSON values "
          "in a loop." % (iso[0].get("seconds", "?"), iso[0].get("big_mb", "8")))
        P("")
        P("| server | GETs quiet | p50 quiet ms | p99 quiet ms | GETs loaded | p50 loaded ms | p99 loaded ms "
          "| max loaded ms | big SETs (avg s) | p99 loaded / quiet |")
        P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in iso:
            ratio = float(m["loaded_p99_ms"]) / float(m["quiet_p99_ms"]) if float(m["quiet_p99_ms"]) else 0
            P("| %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %.2f |" % (
                m["label"], fnum(m["quiet_ops"]), m["quiet_p50_ms"], m["quiet_p99_ms"], fnum(m["loaded_ops"]),
                m["loaded_p50_ms"], m["loaded_p99_ms"], m["loaded_max_ms"], m["big_writes"],
                m["big_set_seconds_avg"], ratio))
        P("")

    # connections ------------------------------------------------------------------------------
    con = read_csv(os.path.join(d, "connections.csv"))
    if con:
        P("#### Idle connections")
        P("")
        P("| server | clients | RSS before | RSS with clients | per client |")
        P("|---|---:|---:|---:|---:|")
        for m in con:
            P("| %s | %s | %s | %s | %s B |" % (m["label"], fnum(m["clients"]),
                                                 mb(float(m["rss_before_kb"]) * 1024),
                                                 mb(float(m["rss_after_kb"]) * 1024), fnum(m["per_client_bytes"])))
        P("")

    fails = meta.get("failures", "")
    if fails:
        P("**Failed steps:** %s" % fails.replace(";", "; "))
        P("")
    P("Run time %s s; CSV files and charts in `%s`." % (meta.get("elapsed", "?"), meta.get("out", d)))
    print("\n".join(out))


def cmd_dictreport(a):
    """The summary's "zstd dictionaries" section (Markdown, on stdout) from DIR's dict-*.csv files; writes
    dict-throughput.csv (medians over the rounds) and dict-targets.csv."""
    d = a.dir
    meta = {}
    if os.path.exists(os.path.join(d, "meta.txt")):
        with open(os.path.join(d, "meta.txt")) as f:
            meta = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    out = []
    P = out.append
    targets = []  # (target, bound, measured, met or None)

    def fl(x):
        try:
            return float(x)
        except (TypeError, ValueError):
            return None

    P("#### zstd dictionaries: zstd:// against zstd://?dictionary=auto")
    P("")
    P("Load average %s at the start of these rows, %s at their end; other work shares the machine's %s cores, "
      "so the figures are indicative." % (meta.get("dict_load_start", "?"), meta.get("dict_load_end", "?"),
                                          meta.get("nproc", "?")))
    P("")

    # memory
    mem = read_csv(os.path.join(d, "dict-memory.csv"))
    if mem:
        P("**Memory.** %s JSON documents (the memory rows' generator and seed, %s raw) written once through each "
          "setup, pipelined, 200 a batch; with dictionary=auto the writes pause while a training runs (INFO "
          "cache_zstd_dictionary_training), and \"documents before\" counts those written when "
          "cache_zstd_dictionary_id first named the dictionary (they stay compressed without it). Stored: the "
          "values' bytes as stored — STRLEN summed over the keys in the upstream redis-server (cachetoryd → "
          "redis), or cache_encode_bytes_out of INFO cache (memory://), over the documents' bytes (the same "
          "figures over the documents written after the dictionary was in use: their own column); used_memory: the growth of the "
          "upstream redis-server's used_memory (its allocator, keys and the dictionary's key included), or of "
          "cachetoryd's accounted dataset (memory://: key, value and a fixed per-key overhead)." % (
              fnum(mem[0]["docs"]), mb(mem[0]["raw_bytes"])))
        P("")
        P("| setup | serializer | stored | stored / raw | used_memory growth | used_memory / raw | documents before "
          "the dictionary | stored / raw of the documents after | dictionary ID | trainings (unused) | trained "
          "ratio |")
        P("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in mem:
            dic = "dictionary=auto" in m["serializer"]
            P("| %s | `%s` | %s | %.3f | %s | %.3f | %s | %s | %s | %s | %s |" % (
                m["label"], m["serializer"], mb(m["stored_bytes"]), float(m["stored_raw_ratio"]),
                mb(m["used_memory_delta"]), float(m["used_memory_raw_ratio"]),
                fnum(m["docs_before_dict"]) if dic and m["docs_before_dict"] else ("none" if dic else ""),
                m.get("after_dict_ratio", "") if dic else "",
                m["dictionary_id"] if dic else "", ("%s (%s)" % (m["trainings"], m["trainings_unused"])) if dic else "",
                m["trained_ratio"] if dic else ""))
            r = float(m["stored_raw_ratio"])
            if dic:
                targets.append(("%s: stored / raw" % m["label"], "<= 0.35", "%.3f" % r, r <= 0.35))
            else:
                targets.append(("%s (no dictionary): stored / raw" % m["label"], "about 0.62-0.68",
                                "%.3f" % r, 0.62 <= r <= 0.68))
        P("")

    # throughput
    raw = read_csv(os.path.join(d, "dict-throughput-raw.csv"))
    fill = read_csv(os.path.join(d, "dict-throughput-fill.csv"))
    if raw:
        labels = {"dt-zstd": "memory:// zstd://", "dt-dict": "memory:// zstd://?dictionary=auto"}
        groups = {}
        for r in raw:
            groups.setdefault((r["setup"], r["op"], int(r["pipeline"])), []).append(r)
        med = {}
        for k, rows in groups.items():
            med[k] = {"n": len(rows), "rps": statistics.median(float(x["rps"]) for x in rows),
                      "min": min(float(x["rps"]) for x in rows), "max": max(float(x["rps"]) for x in rows),
                      "p50": statistics.median(float(x["p50_ms"]) for x in rows),
                      "p99": statistics.median(float(x["p99_ms"]) for x in rows),
                      "us": statistics.median(float(x["server_cpu_s"]) * 1e6 / int(x["ops"]) for x in rows),
                      "client": statistics.median(float(x["client_cpu_s"]) / float(x["seconds"]) for x in rows)}
        fills = {(f["setup"], f["pass"]): f for f in fill}
        f2 = fills.get(("dt-dict", "2"), {})
        fa = fills.get(("dt-dict", "after"), {})
        P("**Throughput.** SET and GET of %s documents (the first of the same sequence, keys in a fixed shuffled "
          "order) from bench-helper.py's own client (redis-benchmark sends no JSON documents): %s connections, "
          "one process each, %s commands at pipeline 1 and %s at pipeline 16, GET replies compared with the "
          "documents; setups interleaved, median of %s round(s). Before the rounds each setup got every document "
          "twice, so that with dictionary=auto the dictionary (ID %s, trained ratio %s) was in use and every "
          "value was written with it; trainings by the end of the rounds: %s. CPU: user + system of cachetoryd "
          "(/proc/PID/stat) per command over the measured span; client: the client processes' CPU as a share "
          "of one core (Python: the client is the ceiling at pipeline 1, compare CPU per command there)." % (
              fnum(meta.get("dict_keys", "?")), meta.get("dict_conns", "?"), fnum(meta.get("dict_req_p1", "?")),
              fnum(meta.get("dict_req_p16", "?")), meta.get("rounds", "?"), f2.get("dictionary_id", "?"),
              f2.get("trained_ratio", "?"), fa.get("trainings", "?")))
        P("")
        P("| setup | op | pipeline | ops/s | range of rounds | p50 ms | p99 ms | cachetoryd CPU µs/command | "
          "×zstd:// ops/s | ×zstd:// CPU | client CPU |")
        P("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows_csv = []
        pipes = sorted({k[2] for k in med})
        for p in pipes:
            for op in ("SET", "GET"):
                base = med.get(("dt-zstd", op, p))
                for s in ("dt-zstd", "dt-dict"):
                    m = med.get((s, op, p))
                    if not m:
                        continue
                    xr = m["rps"] / base["rps"] if (s != "dt-zstd" and base and base["rps"]) else None
                    xc = m["us"] / base["us"] if (s != "dt-zstd" and base and base["us"]) else None
                    P("| %s | %s | %d | %s | %s | %.3f | %.3f | %.2f | %s | %s | %.0f%% |" % (
                        labels[s], op, p, fnum(m["rps"]),
                        "%.1fk–%.1fk" % (m["min"] / 1e3, m["max"] / 1e3) if m["n"] > 1 else "", m["p50"], m["p99"],
                        m["us"], "%.2f" % xr if xr else "", "%.2f" % xc if xc else "", m["client"] * 100))
                    rows_csv.append([s, labels[s], op, p, m["n"], "%.1f" % m["rps"], "%.1f" % m["min"],
                                     "%.1f" % m["max"], "%.3f" % m["p50"], "%.3f" % m["p99"], "%.3f" % m["us"],
                                     "%.3f" % m["client"], "%.3f" % xr if xr else "", "%.3f" % xc if xc else ""])
                    if xr is not None:
                        # a client near a whole core is the ceiling: the ops/s ratio then says little
                        busy = max(m["client"], base["client"])
                        targets.append(("dictionary=auto %s P%d: ops/s against zstd://" % (op, p), ">= 1.00",
                                        "%.2f (%s against %s)%s" % (xr, fnum(m["rps"]), fnum(base["rps"]),
                                                                    "; the client at %.0f%% of a core: it is the "
                                                                    "ceiling" % (busy * 100) if busy >= 0.9 else ""),
                                        xr >= 1.0))
                    if xc is not None:
                        targets.append(("dictionary=auto %s P%d: CPU per command against zstd://" % (op, p),
                                        "<= 1.00", "%.2f (%.2f µs against %.2f µs)" % (xc, m["us"], base["us"]),
                                        xc <= 1.0))
        write_csv(os.path.join(d, "dict-throughput.csv"),
                  ["setup", "label", "op", "pipeline", "rounds", "rps_median", "rps_min", "rps_max", "p50_ms_median",
                   "p99_ms_median", "cachetoryd_cpu_us_per_command", "client_cpu_share", "ratio_rps_vs_zstd",
                   "ratio_cpu_vs_zstd"], rows_csv)
        P("")

    # isolation
    iso = read_csv(os.path.join(d, "dict-isolation.csv"))
    for m in iso:
        P("**Small GETs while a training runs.** %s: one client times single GETs of 100-byte keys, %s s quiet, "
          "then %s s while this script trains back to back: the sample refilled (about %s MB of documents, "
          "pipelined, %s s on average: CACHE DICT TRAIN takes the sample), then `CACHE DICT TRAIN`, whose reply "
          "comes when the dictionary is made (%s s on average; INFO showed cache_zstd_dictionary_training:1 "
          "during %s of the %s trainings). \"During a training\": the GETs sent between a TRAIN and its reply "
          "(%.0f%% of the loaded phase). The first training, started by the sample filling up, took %s s." % (
              m["label"], m["seconds"], m["seconds"], m["sample_mb"], m["refill_seconds_avg"],
              m["training_seconds_avg"], m["trainings_seen_running"], m["trainings"],
              100 * (fl(m["training_share"]) or 0), m["first_training_seconds"]))
        P("")
        P("| phase | GETs | p50 ms | p99 ms | max ms |")
        P("|---|---:|---:|---:|---:|")
        P("| quiet | %s | %s | %s | |" % (fnum(m["quiet_ops"]), m["quiet_p50_ms"], m["quiet_p99_ms"]))
        P("| during a training | %s | %s | %s | %s |" % (fnum(m["during_ops"]), m["during_p50_ms"],
                                                         m["during_p99_ms"], m["during_max_ms"]))
        P("| refilling the sample (between trainings) | %s | | %s | |" % (fnum(m["outside_ops"]), m["outside_p99_ms"]))
        P("| whole loaded phase | %s | | %s | |" % (fnum(m["loaded_ops"]), m["loaded_p99_ms"]))
        P("")
        ratio = fl(m["p99_ratio"])
        targets.append(("small-GET p99 during a training / quiet", "<= 2.00",
                        "%s (%s ms against %s ms)" % ("%.2f" % ratio if ratio is not None else "n/a",
                                                      m["during_p99_ms"], m["quiet_p99_ms"]),
                        None if ratio is None else ratio <= 2.0))

    # two daemons
    share = read_csv(os.path.join(d, "dict-share.csv"))
    for m in share:
        P("**Two daemons, one redis-server.** Both cachetoryd → redis with `zstd://?dictionary=auto` and "
          "`--dictionary-key-prefix bench:zstd-dict:`. The first wrote %s documents (its dictionary %s in use "
          "after %s of them, stored upstream under `%s`, %s bytes); the second, which had written nothing, read "
          "them all back: %s read, %s equal, %s different, %s missing; it fetched %s dictionary(ies) from the "
          "upstream (%s fetch failures, %s decode errors)." % (
              fnum(m["docs"]), m["dictionary_id"], fnum(m["docs_before_dict"]) if m["docs_before_dict"] else "?",
              m["dictionary_key"], m["dictionary_key_bytes"], fnum(m["read"]), fnum(m["equal"]),
              m["mismatches"], m["missing"], m["reader_dictionaries_fetched"], m["reader_fetch_failures"],
              m["reader_decode_errors"]))
        if m["first_mismatch"]:
            P("First mismatch: %s." % m["first_mismatch"])
        P("")
        ok = m["mismatches"] == "0" and m["missing"] == "0" and m["read"] == m["docs"]
        targets.append(("second daemon reads the first's documents", "0 different, 0 missing",
                        "%s read, %s different, %s missing" % (m["read"], m["mismatches"], m["missing"]), ok))

    if not (mem or raw or iso or share):
        P("No dictionary row completed.")
        P("")
    if targets:
        P("Targets:")
        P("")
        P("| target | bound | measured | met |")
        P("|---|---|---|---|")
        for t in targets:
            P("| %s | %s | %s | %s |" % (t[0], t[1], t[2], "n/a" if t[3] is None else ("**met**" if t[3] else
                                                                                       "**not met**")))
        P("")
        write_csv(os.path.join(d, "dict-targets.csv"), ["target", "bound", "measured", "met"],
                  [[t[0], t[1], t[2], "" if t[3] is None else ("yes" if t[3] else "no")] for t in targets])
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("docs")
    p.add_argument("--ports", required=True, help="comma-separated")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--prefix", default="doc:")
    p = sub.add_parser("neardocs")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--set", required=True)
    p.add_argument("--get", required=True)
    p = sub.add_parser("nearcheck")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--strlen", action="store_true")
    p.add_argument("--verify", type=int, default=0)
    p = sub.add_parser("bigwriter")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mb", type=float, default=8)
    p.add_argument("--max-writes", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=30)
    p.add_argument("--ready", default="")
    p = sub.add_parser("getlat")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--max-ops", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--prefill", action="store_true")
    p.add_argument("--trace", default="", help="write each GET's start (monotonic s) and latency (s) here")
    p = sub.add_parser("dictdocs")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--out", required=True)
    p = sub.add_parser("dictfill")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--prefix", default="doc:")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--wait-dict", action="store_true")
    p.add_argument("--max-wait", type=int, default=300)
    p.add_argument("--upstream-port", type=int, default=0)
    p.add_argument("--upstream-db", type=int, default=0)
    p = sub.add_parser("dictload")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--op", choices=("set", "get"), required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--conns", type=int, default=2)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--prefix", default="doc:")
    p.add_argument("--tmp", default="")
    p = sub.add_parser("dictiso")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--fill", type=int, required=True)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--prefix", default="doc:")
    p.add_argument("--max-wait", type=int, default=300)
    p.add_argument("--max-trainings", type=int, default=50)
    p.add_argument("--trace-prefix", required=True)
    p = sub.add_parser("dictread")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--docs", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--prefix", default="doc:")
    p = sub.add_parser("dictreport")
    p.add_argument("--dir", required=True)
    p = sub.add_parser("conns")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--timeout", type=int, default=120)
    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)
    a = ap.parse_args()
    {"ports": cmd_ports, "docs": cmd_docs, "neardocs": cmd_neardocs, "nearcheck": cmd_nearcheck,
     "bigwriter": cmd_bigwriter, "getlat": cmd_getlat, "dictdocs": cmd_dictdocs, "dictfill": cmd_dictfill,
     "dictload": cmd_dictload, "dictiso": cmd_dictiso, "dictread": cmd_dictread,
     "dictreport": cmd_dictreport,
     "conns": cmd_conns, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
