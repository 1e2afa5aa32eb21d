'use strict';
// One worker thread of workers.test.js: mixed operations on a store shared with 7
// other threads, either through its own handle on a shared file store directory
// (mode "handle") or through the global API configured once by the main thread
// (mode "global"). Posts what it kept and every error it met.

const { parentPort, workerData } = require('node:worker_threads');
const lib = require('..');

const { mode, json, counterId, keysId, worker, workers, rounds, barrier } = workerData;
const store = mode === 'handle' ? lib.Store.fromJson(json) : lib;
const errors = [];
const kept = [];
let conflicts = 0;

function check(condition, what) {
  if (!condition) throw new Error(`worker ${worker}: ${what}`);
}

/** One compare-and-set increment of the shared counter, retried on a conflict. */
function increment() {
  for (;;) {
    const { data, version } = store.getVersioned(counterId);
    const counter = JSON.parse(data);
    counter.n += 1;
    try {
      store.updateIf(counterId, JSON.stringify(counter), version);
      return;
    } catch (err) {
      if (!(err instanceof lib.ConflictError)) throw err;
      conflicts += 1;
    }
  }
}

// Start together: every thread waits until all are loaded and ready.
const ready = new Int32Array(barrier);
Atomics.add(ready, 0, 1);
Atomics.notify(ready, 0);
for (let seen = Atomics.load(ready, 0); seen < workers; seen = Atomics.load(ready, 0)) {
  Atomics.wait(ready, 0, seen, 100);
}

try {
  for (let i = 0; i < rounds; i++) {
    let id = store.create(JSON.stringify({ w: worker, i }));
    check(store.get(id) === JSON.stringify({ w: worker, i }), 'get after create');
    store.setValue(id, 'x', String(i));
    check(store.getValue(id, 'x') === String(i), 'getValue after setValue');
    store.update(id, JSON.stringify({ w: worker, i, updated: true }));
    store.touch(id);
    check(store.ttl(id) > 0 && store.exists(id), 'ttl and exists');
    const versioned = store.getVersioned(id);
    store.updateIf(id, JSON.stringify({ w: worker, i, v: String(versioned.version) }), versioned.version);
    if (i % 5 === 0) {
      const fresh = store.regenerate(id);
      check(store.get(id) === null, 'the old id is gone');
      id = fresh;
    }
    check(store.idFromCookieHeader(`a=b; session_id=${id}`) === id, 'cookie round trip');
    store.setValue(keysId, `w${worker}_${i}`, String(i));
    increment();
    if (i % 2 === 0) {
      store.destroy(id);
      check(store.get(id) === null, 'get after destroy');
    } else {
      kept.push(id);
    }
  }
} catch (err) {
  errors.push(`${err.name}: ${err.message}`);
} finally {
  if (mode === 'handle') store.close();
}
parentPort.postMessage({ kept, errors, conflicts });
