#!/usr/bin/env node
// One Node.js Redis client against a TLS port: connect with the given TLS options, run
// SET / GET / MGET, print one line of JSON and exit (0 when every step ran, 1 otherwise). The keys are
// left in place (PREFIX:CLIENT:1 holds VALUE below, PREFIX:CLIENT:2 "second") for the caller to check.
//
//   node tls_client.js ioredis|redis --port P [--host H] --ca CA [--cert CRT --key KEY] [--prefix P]
//
// Output: {"client": "ioredis", "ok": true, "set": "OK", "get": "...", "mget": ["...", "second", null]}
//     or: {"client": "ioredis", "ok": false, "error": "...", "code": "..."}
// Every run is bounded: a hard timer ends the process after --timeout ms (default 10000).
'use strict';

const fs = require('node:fs');

function parseArgs(argv) {
  const out = { host: '127.0.0.1', prefix: 'node', timeout: 10000 };
  out.client = argv[0];
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) {
      throw new Error('bad argument ' + k);
    }
    out[k.slice(2)] = v;
  }
  if (!['ioredis', 'redis'].includes(out.client)) {
    throw new Error('first argument: ioredis or redis, not ' + out.client);
  }
  if (!out.port || !out.ca) {
    throw new Error('--port and --ca are required');
  }
  out.port = Number(out.port);
  out.timeout = Number(out.timeout);
  return out;
}

function tlsOptions(a) {
  const t = { ca: [fs.readFileSync(a.ca)] };
  if (a.cert) t.cert = fs.readFileSync(a.cert);
  if (a.key) t.key = fs.readFileSync(a.key);
  return t;
}

// the value of PREFIX:CLIENT:1 (UTF-8 on the wire)
const VALUE = 'caf\u00e9 \u2615 over TLS';

async function withIoredis(a) {
  const Redis = require('ioredis');
  const r = new Redis({
    host: a.host, port: a.port, tls: tlsOptions(a),
    lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false,
    retryStrategy: () => null, connectTimeout: a.timeout,
  });
  // ioredis rejects the pending command with a bare "Connection is closed."; the cause (a TLS
  // alert, a verification failure) comes as an 'error' event: keep it for the report
  let cause = null;
  r.on('error', (e) => { cause = cause || e; });
  try {
    await r.connect();
    const k1 = a.prefix + ':ioredis:1';
    const k2 = a.prefix + ':ioredis:2';
    const set = await r.set(k1, VALUE);
    await r.set(k2, 'second');
    const get = await r.get(k1);
    const mget = await r.mget(k1, k2, a.prefix + ':ioredis:missing');
    return { set, get, mget };
  } catch (e) {
    if (cause) {
      e.message = e.message + ' (' + cause.message + ')';
      e.code = e.code || cause.code;
    }
    throw e;
  } finally {
    r.disconnect();
  }
}

async function withNodeRedis(a) {
  const { createClient } = require('redis');
  const c = createClient({
    socket: {
      host: a.host, port: a.port, tls: true, ...tlsOptions(a),
      connectTimeout: a.timeout, reconnectStrategy: false,
    },
  });
  c.on('error', () => {});          // reported through the rejected connect / command instead
  await c.connect();
  try {
    const k1 = a.prefix + ':redis:1';
    const k2 = a.prefix + ':redis:2';
    const set = await c.set(k1, VALUE);
    await c.set(k2, 'second');
    const get = await c.get(k1);
    const mget = await c.mGet([k1, k2, a.prefix + ':redis:missing']);
    return { set, get, mget };
  } finally {
    await c.close().catch(() => c.destroy());
  }
}

async function main() {
  let a;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(String(e.message) + '\n');
    process.exit(2);
  }
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ client: a.client, ok: false, error: 'timed out after ' + a.timeout + ' ms' }) + '\n');
    process.exit(1);
  }, a.timeout + 2000);
  try {
    const r = a.client === 'ioredis' ? await withIoredis(a) : await withNodeRedis(a);
    process.stdout.write(JSON.stringify({ client: a.client, ok: true, ...r }) + '\n');
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    process.stdout.write(JSON.stringify({ client: a.client, ok: false, error: String(e && e.message), code: e && e.code }) + '\n');
    clearTimeout(timer);
    process.exit(1);
  }
}

main();
