'use strict';
// The global API (the default store of the global configuration): init, initJson,
// shutdown, createId, version and every global session_* call. Runs in its own
// process, as node --test runs each file, so the global configuration is this file's.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');
const {
  lib, tempDir, fileConfig, memoryConfig, redisConfig, sleep, sharedRedis, cachedGets, HEADER,
} = require('./helpers');

const { Store, ConfigError, NotFoundError, ConflictError, InvalidArgumentError } = lib;
const ID = /^[0-9a-f]{64}$/;
const MISSING = 'f'.repeat(64);

it('a failed first init: ConfigError until an init succeeds', () => {
  assert.throws(() => lib.initJson('{"sessions": {"driver": "nope"}}'), ConfigError);
  assert.throws(() => lib.create('{}'), (err) => err instanceof ConfigError && /nope/.test(err.message));
  assert.throws(() => lib.init('/nonexistent/config.json'), ConfigError);
  assert.throws(() => lib.initJson(42), InvalidArgumentError);
  lib.initJson(memoryConfig());
  assert.match(lib.create('{}'), ID);
});

it('every global call on the default store', () => {
  lib.initJson(memoryConfig({
    lifetime: 3600, max_lifetime: 7200, owner_key: 'user_id', cookie: { name: 'sid' },
  }));
  assert.equal(lib.count(), 0, 'a new init starts a new memory store');
  const id = lib.create('{"user_id":42}');
  assert.match(id, ID);
  assert.equal(lib.get(id), '{"user_id":42}');
  lib.update(id, Buffer.from('{"user_id":42,"cart":[]}'));
  assert.equal(lib.get(id), '{"user_id":42,"cart":[]}');
  lib.touch(id);
  assert.ok(lib.ttl(id) > 3590);
  assert.equal(lib.exists(id), true);
  const remember = lib.create('{"user_id":42}', 7000);
  assert.ok(lib.ttl(remember) > 3600);
  assert.equal(lib.count(), 2);

  lib.setValue(id, 'flash', '"hi"');
  assert.equal(lib.getValue(id, 'flash'), '"hi"');
  assert.equal(lib.popValue(id, 'flash'), '"hi"');
  assert.equal(lib.popValue(id, 'flash'), null);
  lib.setValue(id, 'x', '1');
  lib.deleteValue(id, 'x');
  assert.equal(lib.getValue(id, 'x'), null);

  const { data, version } = lib.getVersioned(id);
  assert.equal(data, '{"user_id":42,"cart":[]}');
  lib.updateIf(id, '{"user_id":42,"cart":[1]}', version);
  assert.throws(() => lib.updateIf(id, '{}', version), ConflictError);
  assert.equal(lib.getVersioned(MISSING), null);

  const fresh = lib.regenerate(id);
  assert.equal(lib.get(id), null);
  assert.equal(lib.get(fresh), '{"user_id":42,"cart":[1]}');

  assert.equal(lib.countOwner('42'), 2);
  assert.deepEqual(lib.listOwner('42').sort(), [fresh, remember].sort());

  const set = lib.cookieHeader(fresh);
  assert.ok(set.startsWith(`sid=${fresh}; Max-Age=3600; Expires=`), set);
  assert.ok(lib.cookieClearHeader().startsWith('sid=; Max-Age=0;'));
  assert.equal(lib.idFromCookieHeader(`a=b; sid=${fresh}`), fresh);
  assert.equal(lib.idFromCookieHeader('a=b'), null);

  assert.equal(lib.destroyOwner('42'), 2);
  assert.equal(lib.count(), 0);
  assert.throws(() => lib.cacheStats(), (err) => err instanceof InvalidArgumentError &&
    err.code === 2, 'no local_cache');
  const last = lib.create('{}');
  lib.destroy(last);
  assert.equal(lib.get(last), null);
  assert.equal(lib.ttl(last), null);
  assert.equal(lib.exists(last), false);
  assert.throws(() => lib.update(last, '{}'), NotFoundError);
  assert.throws(() => lib.get('nope'), InvalidArgumentError);
});

it('cacheStats on the default store: Redis with local_cache', async () => {
  const server = await sharedRedis();
  lib.initJson(redisConfig(server.port, { lifetime: 3600, local_cache: { max_stale_ms: 2000 } }));
  assert.equal(lib.cacheStats().hits, 0);
  const id = lib.create('{"user_id":42}');
  const stats = await cachedGets(lib, id);
  assert.ok(stats.hits >= 1, JSON.stringify(stats));
  assert.ok(stats.entries >= 1, JSON.stringify(stats));
  assert.equal(stats.channel_up, true, JSON.stringify(stats));
  const same = Store.named(); // the same store: the same counters
  assert.ok(same.cacheStats().hits >= stats.hits);
  same.close();
  lib.initJson(redisConfig(server.port));
  assert.throws(() => lib.cacheStats(), (err) => err instanceof InvalidArgumentError &&
    err.code === lib.ErrorCode.INVALID_ARGUMENT && /local_cache/.test(err.message));
  lib.initJson(memoryConfig()); // the tests below run on memory
});

it('createId, version, lastError, lastErrorCode', () => {
  const a = lib.createId();
  assert.match(a, ID);
  assert.notEqual(lib.createId(), a);
  const header = fs.readFileSync(HEADER, 'utf8');
  const expected = /#define LIBSESSION_VERSION "([^"]+)"/.exec(header)[1];
  assert.equal(lib.version(), expected);
  assert.throws(() => lib.touch(MISSING), NotFoundError);
  assert.equal(lib.lastErrorCode(), lib.ErrorCode.NOT_FOUND);
  assert.match(lib.lastError(), /not found/);
  lib.createId();
  assert.equal(lib.lastErrorCode(), 0);
  assert.equal(lib.lastError(), null);
});

it('removeExpired and removeExpiredCount', async () => {
  lib.initJson(memoryConfig({ lifetime: 3600 }));
  lib.create('{}', 1);
  lib.create('{}', 1);
  const kept = lib.create('{}');
  await sleep(1200);
  assert.equal(lib.removeExpiredCount(), 2);
  assert.equal(lib.removeExpiredCount(), 0);
  lib.create('{}', 1);
  await sleep(1200);
  assert.equal(lib.removeExpired(), undefined);
  assert.equal(lib.count(), 1);
  assert.equal(lib.get(kept), '{}');
});

it('init from a file with named stores; Store.named; shutdown', () => {
  const dir = tempDir('global');
  const file = path.join(dir, 'config.json');
  const files = JSON.parse(fileConfig(dir, { lifetime: 60 }));
  fs.writeFileSync(file, JSON.stringify({
    ...files,
    sessions: { default: files.sessions, api: { driver: 'memory', lifetime: 86400 } },
  }));
  lib.init(file);
  const id = lib.create('{"page":1}');
  assert.ok(fs.existsSync(path.join(dir, 'sessions', id)), 'the default store is the file one');
  const api = Store.named('api');
  const def = Store.named();
  const defToo = Store.named(null);
  try {
    assert.equal(def.get(id), '{"page":1}');
    assert.equal(defToo.get(id), '{"page":1}');
    const token = api.create('{"client":7}');
    assert.ok(api.ttl(token) > 3600);
    assert.equal(lib.get(token), null, 'not in the default store');
    assert.throws(() => Store.named('nope'), ConfigError);

    // A handle keeps its store after shutdown; the next global call configures
    // again, here from SESSION_CONFIG.
    lib.shutdown();
    assert.equal(api.get(token), '{"client":7}');
    const other = tempDir('global-env');
    const envFile = path.join(other, 'config.json');
    fs.writeFileSync(envFile, fileConfig(other));
    process.env.SESSION_CONFIG = envFile;
    const later = lib.create('{}');
    assert.ok(fs.existsSync(path.join(other, 'sessions', later)));
    assert.equal(lib.get(id), null, 'the old default store is no longer the global one');
    assert.equal(def.get(id), '{"page":1}', 'but its handle still reads it');
  } finally {
    api.close();
    def.close();
    defToo.close();
    lib.shutdown();
  }
});
