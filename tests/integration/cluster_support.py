"""
Shared pieces of the Redis Cluster (redis+cluster:// backend) tests; this module holds no test.

  key_slot(key)        the hash slot of a key as Redis computes it: CRC16-XMODEM of the key, or of its hash
                       tag (the bytes between the first '{' and the first '}' after it, when not empty),
                       modulo 16384. key_in_slot(slot) and tagged_key(slot, name) make keys of a slot.
  ClusterNode          a RedisServer (upstream_support) started with cluster-enabled, its own cluster bus
                       port, AOF (appendfsync always, so a killed and restarted node keeps what it
                       acknowledged) and optionally a TLS port as well. node.cmd(...) runs one command on it
                       (helpers.Conn: errors come back as Err).
  Cluster              N masters with R replicas each on loopback, created with
                       `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`, and waited for
                       (wait_stable) until every node says cluster_state:ok, all have the same CLUSTER SLOTS,
                       and every replica is in sync and listed there. Then:
                         masters(), replicas(), master_of(r), replicas_of(m)   roles, asked from the nodes
                         slot_map(), node_for_slot(s), node_for_key(k)        routing (CLUSTER SLOTS)
                         client(node), cluster_client(), seed_url(scheme)     clients and backend URLs
                         reshard(a, b, n)      redis-cli --cluster reshard, then wait_stable
                         failover(replica)     CLUSTER FAILOVER, until every node sees the new master
                         kill(node), kill_master(m) (until a replica took over), restart(node), heal()
                         begin_migration / migrate_keys / finish_migration     one slot moved by hand, for
                                               ASK and TRYAGAIN in between
                         flushall(), sync_replicas(), stop()
                       Every node is stopped by its PID. Each step's duration is in cluster.timings.
  cluster              fixture (module scope): one Cluster for a whole test module (tests flush it as they
                       need); a test that damages its cluster (kill, failover, reshard) uses fresh_cluster.
  fresh_cluster        fixture (function scope): a factory fresh_cluster(**Cluster options) -> a new started
                       Cluster, stopped when the test ends.
  cluster_tls          fixture (module scope): a Cluster with TLS ports too.
  FakeClusterNode      a loopback server answering as a cluster node (strings, MULTI / EXEC, CLUSTER SLOTS
                       as the test sets it) with a hook that may answer any command otherwise: for what
                       a real cluster gives no handle on, as an EXEC redirected after its commands were
                       queued. resp(v) is a value as a RESP2 reply.

Importing the fixtures into a test module (`from cluster_support import cluster, fresh_cluster`) makes them
usable there.

Ports. Each node gets a free loopback port for clients and another one for the cluster bus
(`cluster-port`; the default port+10000 may be taken or above 65535), and, with tls=pki, a TLS port.
With TLS the cluster bus, replication and MIGRATE use TLS (`tls-cluster yes`, `tls-replication yes`); the
ports a node gives out (CLUSTER SLOTS, CLUSTER NODES, MOVED, ASK) are its TLS ports to a client connected
over TLS and its plain ports to a plain one; CLUSTER SHARDS gives both ("port" and "tls-port") to either.
So redis-cli --cluster reshard talks TLS there (its MIGRATEs must name TLS ports).

Redis 7.0.15 now and then loses a slot for good after a restart (see Cluster.lost_slots); wait_stable
puts it back with CLUSTER ADDSLOTS and says so (cluster.repairs), unless told repair=False.

Run this file by hand (`/usr/bin/python3 tests/integration/cluster_support.py [--tls]`) for a self-check:
a cluster is created, key_slot() is compared with CLUSTER KEYSLOT, keys are checked to land where
node_for_key() says, Redis Cluster's errors are shown, 1000 slots are moved, a replica is failed over, a
master is killed and restarted; the time each step took is printed.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

if __name__ == "__main__":          # run by hand: the suite's modules are next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest
import redis

import conftest
from helpers import Err, parse_info
from upstream_support import RedisServer

REDIS_CLI = os.environ.get("REDIS_CLI_BIN", "redis-cli")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")            # redis-cli --cluster colours its output
NSLOTS = 16384
CREATE_TIMEOUT = 30.0           # redis-cli --cluster create, then until the cluster is stable
STABLE_TIMEOUT = 30.0
RESHARD_TIMEOUT = 60.0
FAILOVER_TIMEOUT = 30.0

# -- hash slots -----------------------------------------------------------------------------------

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16_TABLE = _crc16_table()


def crc16(data):
    """CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection): Redis Cluster's key hash.
    crc16(b"123456789") == 0x31C3."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def _bytes(key):
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    return str(key).encode()


def hash_tag(key):
    """The part of key that is hashed: the bytes between the first '{' and the first '}' after it when
    there are some, else the whole key ('{}' and a '{' never closed hash the whole key)."""
    key = _bytes(key)
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            return key[s + 1:e]
    return key


def key_slot(key):
    """The hash slot of key (str or bytes), as CLUSTER KEYSLOT answers."""
    return crc16(hash_tag(key)) % NSLOTS


_KEY_IN_SLOT = {}


def key_in_slot(slot, prefix="k"):
    """A key (str) whose slot is slot: prefix + a number, found by trying numbers (16384 tries on average;
    remembered)."""
    k = (slot, prefix)
    if k not in _KEY_IN_SLOT:
        for i in range(NSLOTS * 64):
            key = "%s%d" % (prefix, i)
            if key_slot(key) == slot:
                _KEY_IN_SLOT[k] = key
                break
        else:
            raise ValueError("no key %s<n> in slot %d" % (prefix, slot))
    return _KEY_IN_SLOT[k]


def tagged_key(slot, name):
    """name with a hash tag that puts it in slot: "{<tag>}name"."""
    return "{%s}%s" % (key_in_slot(slot, "t"), name)


# -- nodes ----------------------------------------------------------------------------------------

class ClusterNode(RedisServer):
    """One redis-server of a Cluster. index is its place in Cluster.nodes (fixed); its role changes."""

    def __init__(self, index, node_timeout_ms, pki=None, extra=(), appendfsync="always"):
        self.index = index
        self.appendfsync = appendfsync
        self.cluster_port = None            # set by Cluster (ports are picked all together)
        self.tls_port = None
        self.pki = pki
        self.node_timeout_ms = node_timeout_ms
        self._id = None
        super().__init__(appendonly=True, extra=extra)

    def argv(self):
        a = super().argv()
        n = len(self.extra)
        base, extra = (a[:-n], a[-n:]) if n else (a, [])
        base += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(self.node_timeout_ms), "--cluster-port", str(self.cluster_port),
                 # a replica's first sync starts at once (the default waits 5 s for more replicas)
                 "--repl-diskless-sync-delay", "0",
                 # the replicas of a killed master take over even if it had been unreachable a while
                 "--cluster-replica-validity-factor", "0"]
        if self.appendfsync != "always":       # the later option wins
            base += ["--appendfsync", self.appendfsync]
        if self.pki is not None:
            import tls_support
            base += tls_support.redis_tls_args(self.pki, self.tls_port)
            base += ["--tls-cluster", "yes", "--tls-replication", "yes"]
        return base + extra

    @property
    def name(self):
        return "127.0.0.1:%d" % self.port

    @property
    def id(self):
        """The node's cluster ID (kept in its nodes.conf across restarts)."""
        if self._id is None:
            with self.conn(timeout=5.0) as c:
                r = c.cmd("CLUSTER", "MYID")
            assert isinstance(r, bytes), "CLUSTER MYID of %s: %r" % (self.name, r)
            self._id = r.decode()
        return self._id

    def cmd(self, *args, timeout=5.0):
        """One command on this node (helpers.Conn: errors come back as Err, not raised)."""
        with self.conn(timeout=timeout) as c:
            return c.cmd(*args)

    def info(self, section=None):
        r = self.cmd("INFO", section) if section else self.cmd("INFO")
        assert isinstance(r, bytes), "INFO of %s: %r" % (self.name, r)
        return parse_info(r)

    def cluster_info(self):
        r = self.cmd("CLUSTER", "INFO")
        assert isinstance(r, bytes), "CLUSTER INFO of %s: %r" % (self.name, r)
        return parse_info(r)

    def cluster_nodes(self):
        """CLUSTER NODES of this node, parsed: {id: {"addr", "port", "bus_port", "flags" (set), "master"
        (id or None), "link", "slots" [(start, end)], "open" (migrating/importing entries)}}."""
        r = self.cmd("CLUSTER", "NODES")
        assert isinstance(r, bytes), "CLUSTER NODES of %s: %r" % (self.name, r)
        return parse_cluster_nodes(r.decode())

    def role(self):
        """'master' or 'slave', from the node itself (ROLE)."""
        r = self.cmd("ROLE")
        assert isinstance(r, list) and r, "ROLE of %s: %r" % (self.name, r)
        return r[0].decode()

    def __repr__(self):
        return "<node %d %s%s>" % (self.index, self.name, "" if self.alive() else " (down)")


def parse_cluster_nodes(text):
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        addr = f[1].split(",")[0]                       # ip:port@cport[,hostname]
        hostport, _, bus = addr.partition("@")
        host, _, port = hostport.rpartition(":")
        slots, opened = [], []
        for s in f[8:]:
            if s.startswith("["):
                opened.append(s)
            elif "-" in s:
                a, b = s.split("-")
                slots.append((int(a), int(b)))
            else:
                slots.append((int(s), int(s)))
        out[f[0]] = {"addr": host, "port": int(port or 0), "bus_port": int(bus or 0),
                     "flags": set(f[2].split(",")), "master": None if f[3] == "-" else f[3],
                     "link": f[7], "slots": slots, "open": opened}
    return out


# -- the cluster ----------------------------------------------------------------------------------

class ClusterError(AssertionError):
    pass


def _wait(pred, timeout, what, interval=0.05):
    """Poll pred() (returns (done, detail)) until done or timeout; raises ClusterError with the last
    detail on timeout."""
    deadline = time.monotonic() + timeout
    detail = None
    while True:
        try:
            done, detail = pred()
        except (OSError, AssertionError, redis.RedisError) as e:
            done, detail = False, "%s: %s" % (type(e).__name__, e)
        if done:
            return detail
        if time.monotonic() >= deadline:
            raise ClusterError("%s: not within %.0f s: %s" % (what, timeout, detail))
        time.sleep(interval)


def _ranges(slots):
    """[1, 2, 3, 7] -> '1-3,7'."""
    out = []
    for x in sorted(slots):
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ",".join("%d-%d" % (a, b) if a != b else str(a) for a, b in out)


def _pick_ports(n):
    """n distinct free loopback ports (free_port() may give one twice)."""
    ports = []
    for _ in range(n * 20):
        p = conftest.free_port()
        if p not in ports:
            ports.append(p)
        if len(ports) == n:
            return ports
    raise ClusterError("could not find %d distinct free ports" % n)


class Cluster:
    def __init__(self, masters=3, replicas_per_master=1, node_timeout_ms=500, tls=None, extra=(), start=True,
                 verbose=True, appendfsync="always"):
        self.nmasters = masters
        self.nreplicas = replicas_per_master
        self.node_timeout_ms = node_timeout_ms
        self.pki = tls
        self.verbose = verbose
        self.timings = {}                   # step -> seconds (start, create, stable, reshard, ...)
        n = masters * (1 + replicas_per_master)
        self.nodes = [ClusterNode(i, node_timeout_ms, pki=tls, extra=extra, appendfsync=appendfsync)
                      for i in range(n)]
        ports = _pick_ports(n * (3 if tls else 2))
        for i, node in enumerate(self.nodes):
            node.port = ports[i]
            node.cluster_port = ports[n + i]
            if tls:
                node.tls_port = ports[2 * n + i]
        self.create_output = ""
        self.repairs = []                   # (node, slots, reply) of repair_lost_slots()
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    def _note(self, step, seconds):
        self.timings[step] = seconds
        if self.verbose:
            print("cluster: %s %.2f s" % (step, seconds), flush=True)

    # -- life cycle -------------------------------------------------------------------------------
    def start(self):
        t0 = time.monotonic()
        self._start_nodes(self.nodes)
        t1 = time.monotonic()
        self._note("nodes started", t1 - t0)
        argv = [REDIS_CLI, "--cluster", "create"] + [n.name for n in self.nodes] + [
            "--cluster-replicas", str(self.nreplicas), "--cluster-yes"]
        p = self._cli(argv, CREATE_TIMEOUT)
        self.create_output = p
        t2 = time.monotonic()
        self._note("redis-cli --cluster create", t2 - t1)
        self._write_once()
        self.wait_stable(max(1.0, CREATE_TIMEOUT - (t2 - t0)))
        t3 = time.monotonic()
        self._note("stable after create", t3 - t2)
        self._note("creation in all", t3 - t0)
        return self

    def _write_once(self):
        """One write (SET and DEL of a key of its slots) on every master, so that the replication offsets
        leave 0: CLUSTER SLOTS leaves out a replica whose offset is 0 (CLUSTER SHARDS says its health is
        "loading"), and without writes the offset moves only with the master's PING every
        repl-ping-replica-period (10 s)."""
        m = _wait(lambda: (all(m is not None for _, _, m, _ in self.slot_map()), self.slot_map()), 10.0,
                  "slot map after create")
        for start, _, mi, _ in m:
            key = key_in_slot(start)

            def write():        # CLUSTERDOWN until this master has heard of every slot
                with self.nodes[mi].conn(timeout=5.0) as c:
                    r = c.pipeline([("SET", key, "x"), ("DEL", key)])
                return r == ["OK", 1], "SET/DEL on %r: %r" % (self.nodes[mi], r)
            _wait(write, 10.0, "a first write")

    def _start_nodes(self, nodes):
        """Start the processes, then wait for each (they get ready in parallel)."""
        for n in nodes:
            assert not n.alive(), "%r already running" % n
        for n in nodes:
            n.proc = subprocess.Popen(n.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, cwd=n.dir,
                                      preexec_fn=conftest._make_preexec(None), close_fds=True)
            n.paused = False
            n.starts += 1
        for n in nodes:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and n.proc.poll() is None and not n._ready():
                time.sleep(0.01)
            if not n._ready():
                raise ClusterError("redis-server %s did not get ready (exit %r)\n%s" % (
                    n.name, n.proc.poll(), n.log_tail()))

    def _cli(self, argv, timeout):
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise ClusterError("%s: no end within %.0f s\n%s" % (" ".join(argv[:3]), timeout,
                                                                 (e.output or b"").decode("utf-8", "replace")))
        out = _ANSI.sub("", p.stdout.decode("utf-8", "replace"))
        if p.returncode != 0 or "[ERR]" in out:
            raise ClusterError("%s failed (exit %d):\n%s" % (" ".join(argv), p.returncode, out))
        return out

    def stop(self):
        """Stop every node by its PID (SIGTERM, SIGKILL after a bound); all of them even if one fails."""
        first = None
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:
                first = first or e
        if first is not None:
            raise first

    def heal(self, timeout=STABLE_TIMEOUT):
        """Resume paused nodes, start stopped or killed ones, wait until stable (for a cluster shared by a
        module after a test that damaged it)."""
        for n in self.nodes:
            if n.paused:
                n.resume()
        dead = [n for n in self.nodes if not n.alive()]
        if dead:
            self._start_nodes(dead)
        return self.wait_stable(timeout)

    def kill(self, node):
        """SIGKILL node by its PID (no shutdown)."""
        node.kill()

    def restart(self, node, wait=True, timeout=STABLE_TIMEOUT):
        """Start a stopped or killed node again on its ports and directory (its nodes.conf and AOF: it
        rejoins with its ID and data; a master that was replaced comes back as a replica). wait: until
        the cluster is stable again."""
        if node.alive():
            node.stop()
        t = time.monotonic()
        self._start_nodes([node])
        if wait:
            self.wait_stable(timeout)
        self._note("restart of node %d" % node.index, time.monotonic() - t)
        return node

    # -- state ------------------------------------------------------------------------------------
    def alive_nodes(self):
        return [n for n in self.nodes if n.alive() and not n.paused]

    def by_id(self, node_id):
        for n in self.nodes:
            if n._id == node_id:
                return n
        for n in self.alive_nodes():
            if n.id == node_id:
                return n
        return None

    def by_port(self, port):
        for n in self.nodes:
            if port in (n.port, n.tls_port):
                return n
        return None

    def _any(self):
        alive = self.alive_nodes()
        if not alive:
            raise ClusterError("no node is running")
        return alive[0]

    def masters(self):
        """The running nodes that say (ROLE) they are masters, in the order of their first slot (masters
        without slots last)."""
        ms = [n for n in self.alive_nodes() if n.role() == "master"]
        first = {}
        for start, _, m, _ in self.slot_map():
            if m is not None and m not in first:
                first[m] = start
        return sorted(ms, key=lambda n: first.get(n.index, NSLOTS + n.index))

    def replicas(self):
        """The running nodes that say (ROLE) they are replicas."""
        return [n for n in self.alive_nodes() if n.role() == "slave"]

    def master_of(self, replica):
        info = replica.info("replication")
        return self.by_port(int(info["master_port"])) if info.get("role") == "slave" else None

    def replicas_of(self, master):
        return [r for r in self.replicas() if self.master_of(r) is master]

    def slot_map(self, node=None):
        """CLUSTER SLOTS of node (any running one by default) as [(start, end, master index, [replica
        indexes])], by start slot. Indexes are into self.nodes."""
        r = (node or self._any()).cmd("CLUSTER", "SLOTS")
        assert isinstance(r, list), "CLUSTER SLOTS: %r" % (r,)
        out = []
        for entry in r:
            start, end, master = entry[0], entry[1], entry[2]
            m = self.by_port(master[1])
            reps = sorted(self.by_port(x[1]).index for x in entry[3:] if self.by_port(x[1]) is not None)
            out.append((start, end, m.index if m else None, reps))
        return sorted(out)

    def node_for_slot(self, slot, slot_map=None):
        for start, end, m, _ in (slot_map or self.slot_map()):
            if start <= slot <= end:
                return self.nodes[m] if m is not None else None
        return None

    def node_for_key(self, key):
        """The master serving key's slot (slot computed here, map asked from a node)."""
        return self.node_for_slot(key_slot(key))

    def slots_of(self, node, slot_map=None):
        """The slots node serves as a master: [(start, end)]."""
        return [(s, e) for s, e, m, _ in (slot_map or self.slot_map()) if m == node.index]

    def nslots_of(self, node, slot_map=None):
        return sum(e - s + 1 for s, e in self.slots_of(node, slot_map))

    def keyslot(self, key, node=None):
        """CLUSTER KEYSLOT as the server computes it."""
        return (node or self._any()).cmd("CLUSTER", "KEYSLOT", key)

    def _stable(self, check_replication=True):
        alive = self.alive_nodes()
        if not alive:
            return False, "no node running"
        maps = {}
        views = {}
        for n in alive:
            ci = n.cluster_info()
            if ci.get("cluster_state") != "ok":
                return False, "%s: cluster_state:%s" % (n.name, ci.get("cluster_state"))
            if ci.get("cluster_slots_assigned") != str(NSLOTS):
                return False, "%s: cluster_slots_assigned:%s" % (n.name, ci.get("cluster_slots_assigned"))
            views[n.index] = n.cluster_nodes()
            maps[n.index] = self.slot_map(n)
        ref = maps[alive[0].index]
        for i, m in maps.items():
            if m != ref:
                return False, "node %d's slot map differs from node %d's:\n%r\n%r" % (
                    i, alive[0].index, m, ref)
        ids = {n.id: n for n in alive}
        for i, view in views.items():
            for nid, n in ids.items():
                e = view.get(nid)
                if e is None:
                    return False, "node %d does not know %r" % (i, n)
                if e["flags"] & {"fail", "fail?", "handshake", "noaddr"}:
                    return False, "node %d sees %r as %s" % (i, n, ",".join(sorted(e["flags"])))
                if e["open"]:
                    return False, "node %d: %r has open slots %s" % (i, n, e["open"])
                if i != n.index and e["link"] != "connected" and "myself" not in e["flags"]:
                    return False, "node %d: link to %r %s" % (i, n, e["link"])
            # the roles every node sees agree with what the nodes say of themselves
            for nid, n in ids.items():
                mine = views[n.index][nid]
                e = view[nid]
                if ("master" in e["flags"]) != ("master" in mine["flags"]) or e["master"] != mine["master"]:
                    return False, "node %d sees %r as %s of %s; it says %s of %s" % (
                        i, n, ",".join(sorted(e["flags"])), e["master"], ",".join(sorted(mine["flags"])),
                        mine["master"])
        if check_replication:
            listed = {(m, r) for _, _, m, reps in ref for r in reps}
            for n in alive:
                info = n.info("replication")
                if info.get("role") != "slave":
                    continue
                if info.get("master_link_status") != "up" or info.get("master_sync_in_progress") != "0":
                    return False, "%r: replication link %s, sync in progress %s" % (
                        n, info.get("master_link_status"), info.get("master_sync_in_progress"))
                m = self.by_port(int(info["master_port"]))
                if m is not None and (m.index, n.index) not in listed:
                    # CLUSTER SLOTS lists a replica once the others have heard of a replication offset
                    return False, "CLUSTER SLOTS does not list %r as a replica of %r yet" % (n, m)
        return True, ref

    def lost_slots(self):
        """[(node, [slots])]: slots that every other running node assigns to a running master while that
        master's own view has them unassigned. Redis 7.0.15 gets there now and then (2 restarts in 20 in
        our runs): after slots were resharded into a master M, M killed and its replica R promoted, M's
        restart (its nodes.conf still claims the slots, with a lower epoch) makes R drop the last slot of
        the range from its own view. R then says cluster_state:fail -- CLUSTERDOWN for all its keys --
        for good, while the others route that slot to R (cf. redis/redis#3122)."""
        alive = self.alive_nodes()
        views = {n.index: n.cluster_nodes() for n in alive}
        out = []
        for n in alive:
            mine = views[n.index]
            if "master" not in mine.get(n.id, {}).get("flags", ()):
                continue
            assigned = set()
            for e in mine.values():
                for a, b in e["slots"]:
                    assigned.update(range(a, b + 1))
            claimed = None
            for i, v in views.items():
                if i == n.index or n.id not in v:
                    continue
                s = set()
                for a, b in v[n.id]["slots"]:
                    s.update(range(a, b + 1))
                claimed = s if claimed is None else claimed & s
            lost = sorted((claimed or set()) - assigned)
            if lost:
                out.append((n, lost))
        return out

    def repair_lost_slots(self):
        """CLUSTER ADDSLOTS on a master for the slots lost_slots() finds (it takes them back with its
        epoch; the others already route them to it). Each repair is printed and kept in self.repairs.
        Returns the repairs made."""
        made = []
        for n, slots in self.lost_slots():
            r = n.cmd("CLUSTER", "ADDSLOTS", *slots)
            made.append((n, slots, r))
            print("cluster: REPAIR (Redis lost slots): CLUSTER ADDSLOTS %s on %r -> %r" % (
                _ranges(slots), n, r), flush=True)
        self.repairs.extend(made)
        return made

    def wait_stable(self, timeout=STABLE_TIMEOUT, check_replication=True, repair=True):
        """Until every running node says cluster_state:ok with all 16384 slots assigned, all have the same
        CLUSTER SLOTS, none sees a running node as failing or a slot open (migrating/importing), all agree
        on who replicates whom, and every replica's link to its master is up with no sync in progress.
        Returns the slot map (as slot_map())."""
        t0 = time.monotonic()
        last = {"t": t0}

        def stable():
            ok, detail = self._stable(check_replication)
            now = time.monotonic()
            # a lost slot never comes back by itself: after 1 s without stability, look for one twice a second
            if not ok and repair and now - t0 > 1.0 and now - last["t"] > 0.5:
                last["t"] = now
                self.repair_lost_slots()
            return ok, detail
        try:
            return _wait(stable, timeout, "cluster stable")
        except ClusterError as e:
            raise ClusterError("%s\n%s" % (e, self.describe())) from None

    def describe(self, log_tail=1500):
        """What every node says (CLUSTER INFO's state, CLUSTER NODES, its log's tail), for failures."""
        out = []
        try:
            out.append("lost slots: %r" % (self.lost_slots(),))
        except Exception as e:
            out.append("lost slots: (%s)" % e)
        for n in self.nodes:
            out.append("--- %r pid %s tls port %s bus port %s" % (n, n.pid, n.tls_port, n.cluster_port))
            if n.alive():
                try:
                    ci = n.cluster_info()
                    out.append(" ".join("%s:%s" % (k, ci.get(k)) for k in (
                        "cluster_state", "cluster_slots_assigned", "cluster_slots_ok", "cluster_slots_pfail",
                        "cluster_slots_fail", "cluster_current_epoch", "cluster_my_epoch")))
                    out.append(n.cmd("CLUSTER", "NODES").decode().rstrip())
                except Exception as e:         # a node that does not answer is part of the picture
                    out.append("(no answer: %s)" % e)
            if log_tail:
                out.append(n.log_tail(log_tail).rstrip())
        return "\n".join(out)

    # -- operations -------------------------------------------------------------------------------
    def reshard(self, from_node, to_node, nslots, timeout=RESHARD_TIMEOUT, pipeline=None):
        """Move nslots slots (with their keys) from from_node to to_node with `redis-cli --cluster reshard`,
        then wait until the cluster is stable. Returns the seconds redis-cli took."""
        self.wait_stable()
        # with tls-cluster yes, the MIGRATE commands redis-cli sends connect over TLS, so redis-cli must
        # see the TLS ports: it talks TLS itself
        argv = [REDIS_CLI] + self._cli_tls_args() + [
                "--cluster", "reshard", "127.0.0.1:%d" % (from_node.tls_port or from_node.port),
                "--cluster-from", from_node.id,
                "--cluster-to", to_node.id, "--cluster-slots", str(nslots), "--cluster-yes"]
        if pipeline:
            argv += ["--cluster-pipeline", str(pipeline)]
        t = time.monotonic()
        self.reshard_output = self._cli(argv, timeout)
        took = time.monotonic() - t
        self._note("reshard of %d slots (redis-cli)" % nslots, took)
        self.wait_stable()
        self._note("reshard of %d slots, until stable" % nslots, time.monotonic() - t)
        return took

    def failover(self, replica, mode=None, timeout=FAILOVER_TIMEOUT):
        """CLUSTER FAILOVER [FORCE|TAKEOVER] on replica; waits until every running node sees it as a master
        (and its old master, if running, as its replica), and the cluster is stable. Returns the seconds
        until every node saw the promotion."""
        old = self.master_of(replica)
        t = time.monotonic()
        r = replica.cmd("CLUSTER", "FAILOVER", *([mode] if mode else []))
        if r != "OK":
            raise ClusterError("CLUSTER FAILOVER on %r: %r" % (replica, r))
        self.wait_promoted(replica, old, timeout)
        took = time.monotonic() - t
        self._note("failover to node %d" % replica.index, took)
        self.wait_stable(timeout)
        return took

    def wait_promoted(self, node, old_master=None, timeout=FAILOVER_TIMEOUT):
        def promoted():
            for n in self.alive_nodes():
                e = n.cluster_nodes().get(node.id)
                if e is None or "master" not in e["flags"] or not e["slots"]:
                    return False, "%r sees %r as %s" % (n, node, e and ",".join(sorted(e["flags"])))
                if old_master is not None and old_master.alive():
                    o = n.cluster_nodes().get(old_master.id)
                    if o is None or o["master"] != node.id:
                        return False, "%r: old master %r replicates %s" % (n, old_master, o and o["master"])
            return True, None
        _wait(promoted, timeout, "%r promoted" % node)

    def wait_failover_of(self, master, candidates=None, timeout=FAILOVER_TIMEOUT):
        """After master died: until one of candidates (its replicas by default, as the running nodes
        see them) says it is a master and every running node sees it so, with master's former slots.
        Returns that node."""
        if candidates is None:
            view = self._any().cluster_nodes()
            candidates = [self.by_id(i) for i, e in view.items() if e["master"] == master.id]
        candidates = [c for c in candidates if c is not None]
        mid = master.id

        def promoted():
            views = [n.cluster_nodes() for n in self.alive_nodes()]
            for c in candidates:
                if not c.alive():
                    continue
                if all(c.id in v and "master" in v[c.id]["flags"] and v[c.id]["slots"] and
                       (mid not in v or not v[mid]["slots"]) for v in views) and c.role() == "master":
                    return True, c
            return False, "none of %r promoted yet" % (candidates,)
        return _wait(promoted, timeout, "failover of %r" % master)

    def kill_master(self, master, timeout=FAILOVER_TIMEOUT):
        """SIGKILL a master and wait until one of its replicas took its slots for every running node.
        Returns (the new master, seconds from the kill to the promotion seen everywhere)."""
        candidates = self.replicas_of(master)
        t = time.monotonic()
        self.kill(master)
        new = self.wait_failover_of(master, candidates, timeout)
        took = time.monotonic() - t
        self._note("kill of master %d -> node %d promoted" % (master.index, new.index), took)
        return new, took

    # -- one slot moved by hand (ASK and TRYAGAIN happen in between) ------------------------------
    def begin_migration(self, slot, dst):
        """Open slot for a move from its owner to dst: IMPORTING on dst, then MIGRATING on the owner (the
        order redis-cli uses). Until finish_migration, the owner answers ASK for keys of the slot it no
        longer holds. Returns the owner."""
        src = self.node_for_slot(slot)
        assert src is not None and src is not dst, "slot %d is on %r" % (slot, src)
        for node, args in ((dst, ("IMPORTING", src.id)), (src, ("MIGRATING", dst.id))):
            r = node.cmd("CLUSTER", "SETSLOT", slot, *args)
            if r != "OK":
                raise ClusterError("CLUSTER SETSLOT %d %s on %r: %r" % (slot, " ".join(args), node, r))
        return src

    def migrate_keys(self, slot, src, dst, keys=None, timeout_ms=5000):
        """MIGRATE keys of slot (all of them by default) from src to dst. Returns how many moved."""
        if keys is None:
            keys = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, 1000000)
            assert isinstance(keys, list), keys
        if not keys:
            return 0
        # with tls-cluster yes, MIGRATE connects over TLS: to the TLS port
        port = dst.tls_port if self.pki is not None else dst.port
        r = src.cmd("MIGRATE", "127.0.0.1", port, "", 0, timeout_ms, "KEYS", *keys,
                    timeout=timeout_ms / 1000.0 + 5)
        if r not in ("OK", "NOKEY"):
            raise ClusterError("MIGRATE of %d keys of slot %d: %r" % (len(keys), slot, r))
        return len(keys)

    def finish_migration(self, slot, dst, wait=True):
        """CLUSTER SETSLOT slot NODE dst on dst, then on every other master (the order redis-cli uses);
        wait: until the cluster is stable."""
        others = [m for m in self.masters() if m is not dst]
        for node in [dst] + others:
            r = node.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
            if r != "OK":
                raise ClusterError("CLUSTER SETSLOT %d NODE on %r: %r" % (slot, node, r))
        if wait:
            self.wait_stable()

    def move_slot(self, slot, dst, wait=True):
        """The three steps above for one slot."""
        src = self.begin_migration(slot, dst)
        self.migrate_keys(slot, src, dst)
        self.finish_migration(slot, dst, wait)

    def flushall(self):
        for m in self.masters():
            r = m.cmd("FLUSHALL")
            assert r == "OK", "FLUSHALL on %r: %r" % (m, r)

    def sync_replicas(self, timeout_ms=5000):
        """WAIT on every master for all its replicas to acknowledge what it has written so far. Returns
        {master: replicas that acknowledged}."""
        out = {}
        for m in self.masters():
            want = len(self.replicas_of(m))
            out[m] = m.cmd("WAIT", want, timeout_ms, timeout=timeout_ms / 1000.0 + 5) if want else 0
        return out

    def dbsize(self):
        """{node: DBSIZE} for the running masters."""
        return {m: m.cmd("DBSIZE") for m in self.masters()}

    # -- clients ----------------------------------------------------------------------------------
    def client(self, node, tls=False, **kw):
        """redis-py client straight to one node (no cluster awareness: a key of another node gets MOVED).
        tls=True: to its TLS port, trusting the cluster's CA."""
        args = dict(host="127.0.0.1", port=node.port, socket_timeout=10, socket_connect_timeout=5)
        if tls:
            args.update(self._tls_kwargs(node))
        args.update(kw)
        return redis.Redis(**args)

    def _tls_kwargs(self, node):
        assert self.pki is not None, "this cluster has no TLS port"
        return dict(port=node.tls_port, ssl=True, ssl_ca_certs=self.pki.certs["ca"].crt,
                    ssl_cert_reqs="required")

    def cluster_client(self, tls=False, **kw):
        """redis.cluster.RedisCluster (redis-py >= 4.1) seeded with every running node, or None when this
        redis-py has none."""
        try:
            from redis.cluster import ClusterNode as PyNode, RedisCluster
        except ImportError:
            return None
        args = dict(socket_timeout=10, socket_connect_timeout=5)
        if tls:
            args.update(ssl=True, ssl_ca_certs=self.pki.certs["ca"].crt, ssl_cert_reqs="required")
        args.update(kw)
        seeds = [PyNode("127.0.0.1", n.tls_port if tls else n.port) for n in self.alive_nodes()]
        return RedisCluster(startup_nodes=seeds, **args)

    def seed_url(self, scheme="redis+cluster", nodes=None, user=None, password=None, query=""):
        """scheme://[user:password@]127.0.0.1:P1,127.0.0.1:P2 with the first two nodes (or `nodes`); the
        TLS ports for a 'rediss' scheme."""
        nodes = self.nodes[:2] if nodes is None else nodes
        tls = scheme.startswith("rediss")
        if tls:
            assert self.pki is not None, "this cluster has no TLS port"
        cred = ""
        if password:
            cred = "%s:%s@" % (user or "", password)
        hosts = ",".join("127.0.0.1:%d" % (n.tls_port if tls else n.port) for n in nodes)
        return "%s://%s%s%s" % (scheme, cred, hosts, ("?" + query) if query else "")

    def _cli_tls_args(self):
        return [] if self.pki is None else ["--tls", "--cacert", self.pki.certs["ca"].crt]

    def cli(self, node, *args, tls=False, timeout=10.0):
        """redis-cli -p PORT [--tls ...] args... against node; returns (exit status, output)."""
        argv = [REDIS_CLI, "-h", "127.0.0.1"]
        if tls:
            argv += ["-p", str(node.tls_port)] + self._cli_tls_args()
        else:
            argv += ["-p", str(node.port)]
        p = subprocess.run(argv + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def __repr__(self):
        return "<Cluster %s>" % ", ".join(repr(n) for n in self.nodes)


# -- a scripted node ------------------------------------------------------------------------------

def resp(v):
    """v as a RESP2 reply: bytes -> bulk, None -> nil, int -> integer, list -> array, Err -> error,
    str -> status."""
    if v is None:
        return b"$-1\r\n"
    if isinstance(v, Err):
        return b"-%s\r\n" % str(v).encode()
    if isinstance(v, str):
        return b"+%s\r\n" % v.encode()
    if isinstance(v, bool) or not isinstance(v, (int, bytes, list)):
        raise TypeError("no RESP form for %r" % (v,))
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, bytes):
        return b"$%d\r\n%s\r\n" % (len(v), v)
    return b"*%d\r\n" % len(v) + b"".join(resp(x) for x in v)


class FakeClusterNode:
    """A loopback server that answers as a cluster node whose answers a test decides: for the moments a
    real cluster gives no handle on (an EXEC redirected after its commands were queued). It keeps string
    keys (GET, SET, DEL), runs MULTI / EXEC (WATCH accepted, never tripped) and answers CLUSTER SLOTS
    with slots() (set by the test: [(start, end, node)]). hook(node, argv) runs first for every command:
    a reply (see resp()) is sent instead, None lets the command run as above. Every command is
    remembered in seen (lists of bytes). Stopped with stop() (its threads end with their sockets)."""

    def __init__(self, hook=None):
        self.hook = hook
        self.slots = lambda: []
        self.data = {}
        self.seen = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def name(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _commands(buf):
        """The complete commands (arrays of bulk strings) at the start of buf, and what is left."""
        out = []
        while buf.startswith(b"*"):
            end = buf.find(b"\r\n")
            if end < 0:
                break
            n, pos, argv = int(buf[1:end]), end + 2, []
            for _ in range(n):
                end = buf.find(b"\r\n", pos)
                if end < 0 or buf[pos:pos + 1] != b"$":
                    return out, buf
                ln = int(buf[pos + 1:end])
                if len(buf) < end + 2 + ln + 2:
                    return out, buf
                argv.append(bytes(buf[end + 2:end + 2 + ln]))
                pos = end + 2 + ln + 2
            out.append(argv)
            buf = buf[pos:]
        return out, buf

    def _serve(self, c):
        buf, queued = b"", None
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            cmds, buf = self._commands(buf + chunk)
            out = []
            for argv in cmds:
                with self.lock:
                    self.seen.append(argv)
                    r = self.hook(self, argv) if self.hook else None
                    name = argv[0].upper()
                    if r is not None:
                        if name == b"EXEC":
                            queued = None        # a refused EXEC ends the transaction, as in Redis
                    elif name == b"MULTI":
                        queued, r = [], "OK"
                    elif name == b"EXEC":
                        r, queued = [self._run(a) for a in queued or []], None
                    elif queued is not None:
                        queued.append(argv)
                        r = "QUEUED"
                    else:
                        r = self._run(argv)
                out.append(resp(r))
            try:
                c.sendall(b"".join(out))
            except OSError:
                return

    def _run(self, argv):
        name = argv[0].upper()
        if name in (b"PING",):
            return "PONG"
        if name in (b"WATCH", b"UNWATCH", b"READONLY", b"ASKING"):
            return "OK"
        if name == b"SELECT":
            return "OK" if argv[1] == b"0" else Err("ERR SELECT is not allowed in cluster mode")
        if name == b"GET":
            return self.data.get(argv[1])
        if name == b"SET":
            self.data[argv[1]] = argv[2]
            return "OK"
        if name == b"DEL":
            return sum(self.data.pop(k, None) is not None for k in argv[1:])
        if name == b"CLUSTER" and argv[1].upper() == b"SLOTS":
            return [[a, b, [b"127.0.0.1", n.port, b"%040d" % n.port]] for a, b, n in self.slots()]
        return Err("ERR unknown command '%s'" % argv[0].decode("utf-8", "replace"))

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """One 3 masters + 3 replicas cluster for a test module (tests flush it themselves if they need)."""
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster():
    """Factory: fresh_cluster(**Cluster options) -> a new cluster, stopped when the test ends."""
    made = []

    def make(**kw):
        kw["start"] = False
        c = Cluster(**kw)
        made.append(c)
        c.start()
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture(scope="module")
def cluster_tls():
    import tls_support
    c = Cluster(tls=tls_support.make_pki())
    yield c
    c.stop()


# -- a self-check run by hand ---------------------------------------------------------------------

SLOT_PROBES = [b"", b"{", b"}", b"{}", b"{}a", b"a{}", b"{}{a}", b"{a}{}", b"{a", b"a{b", b"a}b{", b"}{a}",
               b"{{a}}", b"{a}}", b"a{b}c{d}", b"{user1000}.following", b"{user1000}.followers",
               b"foo{}{bar}", b"foo{{bar}}zap", b"foo{bar}{zap}", b"123456789", b"\x00{\xff}\x80",
               "{é}x".encode(), b"{ }", b" {a} "]


def slot_probe_keys(n=400, seed=14):
    """SLOT_PROBES and n more keys with and without hash tags (closed, empty, not closed, nested), for
    comparing key_slot() with CLUSTER KEYSLOT."""
    import random
    rnd = random.Random(seed)
    keys = list(SLOT_PROBES)
    alphabet = b"ab{}{}xyz:._-\x00\xff"
    for i in range(n):
        kind = i % 5
        body = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))
        if kind == 0:
            keys.append(b"key:%d" % i)
        elif kind == 1:
            keys.append(b"{tag%d}%s" % (i % 17, body))
        elif kind == 2:
            keys.append(b"%s{}%s" % (body, body[::-1]))
        elif kind == 3:
            keys.append(b"x{%s" % body.replace(b"}", b""))
        else:
            keys.append(body)
    return keys


def check_key_slots(node, keys):
    """[(key, key_slot(key), CLUSTER KEYSLOT key)] for the keys where they differ (none expected)."""
    with node.conn() as c:
        got = c.pipeline([("CLUSTER", "KEYSLOT", k) for k in keys])
    return [(k, key_slot(k), g) for k, g in zip(keys, got) if key_slot(k) != g]


def _self_check(tls):
    import shutil
    pki = None
    if tls:
        import tls_support
        pki = tls_support.make_pki()
    t0 = time.monotonic()
    c = Cluster(tls=pki)
    seen = {}
    try:
        print("nodes:", c.nodes)
        print("slot map:", c.slot_map())
        print("masters:", c.masters(), "replicas:", c.replicas())
        print("seed url:", c.seed_url(), c.seed_url("rediss+cluster") if tls else "")

        # 1. the slot of a key, here and on the server
        keys = slot_probe_keys()
        bad = check_key_slots(c.nodes[0], keys)
        assert not bad, bad[:10]
        print("key_slot() == CLUSTER KEYSLOT for %d keys" % len(keys))

        # 2. keys land where node_for_key() says
        cc = c.cluster_client()
        print("redis-py", redis.__version__, "cluster client:", type(cc).__name__)
        data = {("k%d" % i if i % 3 else "{grp%d}k%d" % (i % 7, i)): "v%d" % i for i in range(600)}
        t = time.monotonic()
        for k, v in data.items():
            assert cc.set(k, v)
        print("600 SETs through RedisCluster: %.2f s" % (time.monotonic() - t))
        smap = c.slot_map()
        for k, v in data.items():
            owner = c.node_for_slot(key_slot(k), smap)
            assert owner.cmd("GET", k) == v.encode(), (k, owner)
            other = next(m for m in c.masters() if m is not owner)
            r = other.cmd("GET", k)
            assert isinstance(r, Err) and r.startswith("MOVED %d 127.0.0.1:%d" % (key_slot(k), owner.port)), r
        seen["MOVED"] = r
        print("keys on their nodes:", {n.index: s for n, s in c.dbsize().items()})

        # 3. Redis Cluster's errors
        m0 = c.masters()[0]
        a, b = key_in_slot(0), key_in_slot(1)
        seen["CROSSSLOT"] = m0.cmd("MSET", a, "1", b, "2")
        seen["CROSSSLOT (MGET)"] = m0.cmd("MGET", a, b)
        seen["SELECT 1"] = m0.cmd("SELECT", "1")
        seen["SELECT 0"] = m0.cmd("SELECT", "0")
        seen["CLUSTER SHARDS"] = m0.cmd("CLUSTER", "SHARDS")
        rep = c.replicas_of(m0)[0]
        seen["GET on a replica"] = rep.cmd("GET", a)
        with rep.conn() as rc:
            seen["READONLY + GET on a replica"] = rc.pipeline([("READONLY",), ("GET", a), ("SET", a, "x")])
        # ASK and TRYAGAIN: slot 0 half moved to the second master
        dst = c.masters()[1]
        k1, k2 = "{%s}one" % a, "{%s}two" % a
        assert m0.cmd("MSET", k1, "1", k2, "2") == "OK"
        src = c.begin_migration(0, dst)
        c.migrate_keys(0, src, dst, keys=[k1])
        seen["ASK (key moved)"] = src.cmd("GET", k1)
        seen["GET on the source (key still there)"] = src.cmd("GET", k2)
        seen["TRYAGAIN (MGET, keys split)"] = src.cmd("MGET", k1, k2)
        with dst.conn() as dc:
            seen["target without ASKING"] = dc.cmd("GET", k1)
            seen["target ASKING + MGET"] = dc.pipeline([("ASKING",), ("MGET", k1, k2)])
            seen["target ASKING + GET"] = dc.pipeline([("ASKING",), ("GET", k1)])
        seen["SET of a new key on the source"] = src.cmd("SET", "{%s}three" % a, "3")
        c.migrate_keys(0, src, dst)
        c.finish_migration(0, dst)
        assert c.node_for_slot(0) is dst and dst.cmd("MGET", k1, k2) == [b"1", b"2"]
        # CLUSTERDOWN: a slot nobody serves
        dst.cmd("DEL", k1, k2, "{%s}three" % a)
        for n in c.alive_nodes():
            assert n.cmd("CLUSTER", "DELSLOTS", 0) in ("OK", Err("ERR Slot 0 is already unassigned")), n
        seen["CLUSTERDOWN (slot not served)"] = _wait(
            lambda: (lambda r: (isinstance(r, Err) and "CLUSTERDOWN" in r, r))(dst.cmd("GET", a)), 5.0,
            "CLUSTERDOWN")
        seen["CLUSTERDOWN, other slot"] = _wait(
            lambda: (lambda r: (isinstance(r, Err) and "CLUSTERDOWN" in r, r))(dst.cmd("GET", b)), 5.0,
            "CLUSTERDOWN (other slot)")
        assert dst.cmd("CLUSTER", "ADDSLOTS", 0) == "OK"
        c.wait_stable()
        for k, r in seen.items():
            print("  %-36s %r" % (k + ":", r))

        # 4. resharding
        m = c.masters()
        before = c.nslots_of(m[0])
        took = c.reshard(m[0], m[1], 1000)
        assert c.nslots_of(m[0]) == before - 1000, c.slot_map()
        for k, v in data.items():
            assert c.node_for_key(k).cmd("GET", k) == v.encode(), k
        print("after reshard: slot map", c.slot_map())

        # 5. manual failover
        m2 = c.masters()[2]
        r2 = c.replicas_of(m2)[0]
        c.failover(r2)
        assert r2.role() == "master" and m2.role() == "slave"
        for k, v in data.items():
            assert c.node_for_key(k).cmd("GET", k) == v.encode(), k

        # 6. a master killed, then restarted
        victim = c.masters()[0]
        new, took = c.kill_master(victim)
        t = time.monotonic()
        c.wait_stable()
        c._note("stable after the kill", time.monotonic() - t)
        lost = [k for k, v in data.items() if c.node_for_key(k).cmd("GET", k) != v.encode()]
        print("keys lost with the killed master: %d" % len(lost))
        c.restart(victim)
        assert victim.role() == "slave" and c.master_of(victim) is new, (victim.role(), c.master_of(victim))
        print("restarted: %r is a replica of %r" % (victim, new))

        if tls:
            print("CLUSTER SHARDS, plain:", new.cmd("CLUSTER", "SHARDS")[0])
            rc, out = c.cli(new, "CLUSTER", "SHARDS", tls=True)
            print("CLUSTER SHARDS over TLS (redis-cli):", " ".join(out.split()[:40]))
            rc, out = c.cli(new, "-c", "GET", "k1", tls=True)
            print("redis-cli --tls -c GET k1 ->", rc, out.strip())
            tc = c.cluster_client(tls=True)
            print("RedisCluster over TLS: GET k1 ->", tc.get("k1"), "nodes", [n.port for n in tc.get_nodes()])
            c.reshard(c.masters()[1], c.masters()[0], 100)
        print("timings:")
        for k, v in c.timings.items():
            print("  %-44s %.2f s" % (k, v))
    finally:
        c.stop()
        for n in c.nodes:
            shutil.rmtree(n.dir, ignore_errors=True)
        if pki is not None:
            shutil.rmtree(pki.dir, ignore_errors=True)
    print("self-check done in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    _self_check("--tls" in sys.argv[1:])
