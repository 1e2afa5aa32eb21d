'use strict';
// Shared by the tests: the library under test, temporary directories, store
// configurations, and a real redis-server on a free loopback port.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..', '..');
const HEADER = path.join(REPO, 'include', 'session.h');
const BUILT = path.join(REPO, 'target', 'release', 'libsession.so.0');

// The library built from this repository unless the caller chose one.
if (!process.env.LIBSESSION_LIBRARY) {
  process.env.LIBSESSION_LIBRARY = BUILT;
}
const lib = require('..');

const SECRET = 'a test secret of more than thirty-two bytes, never a real one';

/** A fresh temporary directory, removed when the process exits. */
function tempDir(label = 'node') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `libsession-${label}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fileConfig(root, extra = {}) {
  return JSON.stringify({
    sessions: { driver: 'storage', storage_name: 's', ...extra },
    storages: { s: { type: 'filesystem', root } },
  });
}

function memoryConfig(extra = {}) {
  return JSON.stringify({ sessions: { driver: 'memory', ...extra } });
}

let prefixes = 0;
function redisConfig(port, extra = {}) {
  prefixes += 1;
  return JSON.stringify({
    sessions: {
      driver: 'redis',
      url: `redis://127.0.0.1:${port}/0`,
      key_prefix: `node-test-${process.pid}-${prefixes}:`,
      ...extra,
    },
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A loopback port nobody listens on right now (the kernel's choice). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------
// A minimal, binary-safe RESP client: one command per connection.

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `at`; returns [value, next] or null when incomplete. */
function parse(buf, at) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('latin1', at + 1, eol);
  switch (type) {
    case '+':
      return [line, eol + 2];
    case '-':
      return [new Error(line), eol + 2];
    case ':':
      return [Number(line), eol + 2];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, eol + 2];
      if (buf.length < eol + 2 + len + 2) return null;
      return [buf.subarray(eol + 2, eol + 2 + len), eol + 2 + len + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const items = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parse(buf, next);
        if (item === null) return null;
        items.push(item[0]);
        next = item[1];
      }
      return [items, next];
    }
    default:
      throw new Error(`unexpected RESP reply type ${type}`);
  }
}

/** Sends one command to the server on `port`; resolves with its reply. */
function redis(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port}: no answer to ${args[0]} within 5 s`));
    }, 5000);
    socket.on('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const reply = parse(buf, 0);
      if (reply === null) return;
      clearTimeout(timer);
      socket.end();
      if (reply[0] instanceof Error) reject(reply[0]);
      else resolve(reply[0]);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Starts a real redis-server on a free loopback port in its own directory. Rejects
 * (the test fails, it is not skipped) when redis-server is missing.
 */
async function startRedis() {
  const dir = tempDir('redis');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const log = fs.openSync(path.join(dir, `redis-${port}.log`), 'w');
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--daemonize', 'no', '--dir', dir],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const started = await new Promise((resolve, reject) => {
      let done = false;
      const finish = (value, err) => {
        if (done) return;
        done = true;
        if (err) reject(err);
        else resolve(value);
      };
      child.once('error', (err) =>
        finish(null, new Error(
          `cannot run redis-server (${err.message}): install it, e.g. apt-get install redis-server`)));
      child.once('exit', () => finish(false)); // the port was taken meanwhile: try another
      const deadline = Date.now() + 10000;
      (async () => {
        while (!done && Date.now() < deadline) {
          try {
            if ((await redis(port, 'PING')) === 'PONG') return finish(true);
          } catch {
            // not listening yet
          }
          await sleep(20);
        }
        finish(null, new Error(`redis-server on port ${port} did not answer within 10 s`));
      })();
    });
    if (started) {
      child.unref(); // the server never keeps a test process alive: killed at exit
      const server = {
        port,
        pid: child.pid,
        stop() {
          if (child.exitCode === null && child.signalCode === null) {
            try {
              process.kill(child.pid, 'SIGCONT');
            } catch {
              // already gone
            }
            child.kill('SIGKILL');
          }
        },
      };
      process.on('exit', () => server.stop());
      return server;
    }
  }
  throw new Error('redis-server did not start on a free port five times');
}

let shared = null;
/**
 * One redis-server for the whole test file, started by the first test that needs it
 * and stopped when the process exits. Each test that awaits it fails (it is not
 * skipped) when the server cannot start, e.g. redis-server is missing.
 */
function sharedRedis() {
  if (shared === null) shared = startRedis();
  return shared;
}

/**
 * Gets `id` (data '{"user_id":42}') through `store` (a Store, or the module for the
 * global API, with local_cache) `atLeast` times, then, only while no get was answered
 * from the local cache yet, again (at most `most` gets in all, 20 ms apart): the
 * create's own invalidation may arrive while the first get is under way, which then
 * does not fill the cache. Resolves with the last cacheStats().
 */
async function cachedGets(store, id, atLeast = 2, most = 50) {
  let stats;
  for (let n = 1; n <= most; n++) {
    if (store.get(id) !== '{"user_id":42}') throw new Error(`get ${id}: wrong data`);
    stats = store.cacheStats();
    if (n >= atLeast) {
      if (stats.hits >= 1) break;
      await sleep(20);
    }
  }
  return stats;
}

module.exports = {
  REPO,
  HEADER,
  BUILT,
  SECRET,
  lib,
  tempDir,
  fileConfig,
  memoryConfig,
  redisConfig,
  sleep,
  freePort,
  redis,
  startRedis,
  sharedRedis,
  cachedGets,
};
