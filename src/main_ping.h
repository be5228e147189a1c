/*
 * main_ping: `cachetoryd --ping HOST:PORT`, a probe for orchestrators that needs no shell and no
 * redis-cli (a FROM-scratch image has neither): it connects, sends PING, and exits 0 on +PONG.
 *
 *   cachetoryd --ping HOST:PORT [--timeout MS] [--upstream]
 *
 * HOST is a name, an IPv4 address or a bracketed IPv6 address ([::1]:6380). --timeout bounds the
 * connect, the write and the read together (default 2000 ms; name resolution follows resolv.conf's own
 * timeout). --upstream asks one more question after the PONG: "INFO keyspace", which a daemon with a
 * redis:// backend forwards to its upstream, and fails when the reply carries "upstream_error:" — a
 * readiness probe, where the plain PING (answered by the daemon itself, never forwarded) is a liveness
 * probe. With a memory:// backend --upstream succeeds as the PING does.
 *
 * Exit status: 0 on success, 1 with one line on stderr saying why not, 2 on a usage error. It runs
 * before anything else of main() and touches no global: no config file is read, no log is opened.
 */
#ifndef CACHETORYD_MAIN_PING_H
#define CACHETORYD_MAIN_PING_H

/* argv[0] is "--ping"; returns the process's exit status. */
int main_ping(int argc, char **argv);

#endif
