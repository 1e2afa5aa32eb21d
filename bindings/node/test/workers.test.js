'use strict';
// 8 worker threads share one store and do mixed operations: no error, exact counts.
// The library is loaded once per process, so the threads share its state.

const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { it } = require('node:test');
const { lib, tempDir, fileConfig, memoryConfig } = require('./helpers');

const WORKERS = 8;
const ROUNDS = 200; // per worker: a session (half destroyed), a key, a counter increment

async function run(mode, store, json) {
  const counterId = store.create('{"n":0}');
  const keysId = store.create('{}');
  const barrier = new SharedArrayBuffer(4);
  const results = await Promise.all(Array.from({ length: WORKERS }, (_, worker) =>
    new Promise((resolve, reject) => {
      const thread = new Worker(path.join(__dirname, 'worker.js'), {
        workerData: {
          mode, json, counterId, keysId, worker, workers: WORKERS, rounds: ROUNDS,
          barrier,
        },
      });
      let result = null;
      thread.once('message', (message) => { result = message; });
      thread.once('error', reject);
      thread.once('exit', (code) => (code === 0 && result
        ? resolve(result) : reject(new Error(`worker ${worker} exited with ${code}`))));
    })));
  assert.deepEqual(results.flatMap((r) => r.errors), []);
  const kept = results.flatMap((r) => r.kept);
  assert.equal(kept.length, WORKERS * ROUNDS / 2);
  assert.equal(new Set(kept).size, kept.length);
  assert.equal(store.count(), WORKERS * ROUNDS / 2 + 2);
  for (const id of kept) assert.equal(store.exists(id), true);
  assert.equal(JSON.parse(store.get(counterId)).n, WORKERS * ROUNDS, 'no increment lost');
  const keys = JSON.parse(store.get(keysId));
  assert.equal(Object.keys(keys).length, WORKERS * ROUNDS, 'no key lost');
  return results.reduce((sum, r) => sum + r.conflicts, 0);
}

it('8 threads, each with its own handle on one file store directory', async (t) => {
  const json = fileConfig(tempDir('workers'));
  const store = lib.Store.fromJson(json);
  try {
    t.diagnostic(`compare-and-set retries: ${await run('handle', store, json)}`);
  } finally {
    store.close();
  }
});

it('8 threads on the global memory store, configured once by the main thread', async (t) => {
  lib.initJson(memoryConfig({ lifetime: 3600 }));
  try {
    t.diagnostic(`compare-and-set retries: ${await run('global', lib, null)}`);
  } finally {
    lib.shutdown();
  }
});
