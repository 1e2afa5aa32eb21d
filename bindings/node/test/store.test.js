'use strict';
// Every Store method on the file, memory and Redis drivers (a real redis-server on a
// free loopback port, started by the first Redis test).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it: test, after } = require('node:test');
const {
  lib, tempDir, fileConfig, memoryConfig, redisConfig, sleep, sharedRedis, cachedGets,
} = require('./helpers');

const { Store, InvalidArgumentError, NotFoundError, ConflictError, ConfigError } = lib;

const ID = /^[0-9a-f]{64}$/;
const MISSING = 'f'.repeat(64);

let redisServer = null;

const drivers = {
  files: (extra) => fileConfig(tempDir('files'), extra),
  memory: (extra) => memoryConfig(extra),
  redis: (extra) => redisConfig(redisServer.port, extra),
};

for (const [driver, config] of Object.entries(drivers)) {
  describe(`Store on ${driver}`, () => {
    // On Redis each test first awaits the server (started once, on a free loopback
    // port): without redis-server, each of these tests fails.
    const it = (name, fn) => test(name, async () => {
      if (driver === 'redis') redisServer = await sharedRedis();
      return fn();
    });
    const opened = [];
    const open = (extra) => {
      const store = Store.fromJson(config(extra));
      opened.push(store);
      return store;
    };
    after(() => opened.forEach((store) => store.close()));

    it('create, get, update, destroy', () => {
      const s = open();
      const id = s.create('{"user_id":1}');
      assert.match(id, ID);
      assert.equal(s.get(id), '{"user_id":1}');
      assert.equal(s.update(id, '{"user_id":1,"cart":[1]}'), undefined);
      assert.equal(s.get(id), '{"user_id":1,"cart":[1]}');
      assert.equal(s.destroy(id), undefined);
      assert.equal(s.get(id), null);
      s.destroy(id); // already gone: still a success
      assert.throws(() => s.update(id, '{}'), NotFoundError);
    });

    it('takes strings and Buffers, gives strings', () => {
      const s = open();
      const text = '{"name":"Zoë 🙂","note":"\\u0000 is escaped"}';
      const a = s.create(text);
      assert.equal(s.get(a), text);
      const b = s.create(Buffer.from(text, 'utf8'));
      assert.equal(s.get(b), text);
      assert.equal(s.get(Buffer.from(b)), text, 'an id may be a Buffer too');
      s.update(a, new Uint8Array(Buffer.from('{"bytes":true}')));
      assert.equal(s.get(a), '{"bytes":true}');
      for (const bad of ['a\0b', Buffer.from([0x7b, 0, 0x7d])]) {
        assert.throws(() => s.create(bad), (err) =>
          err instanceof InvalidArgumentError && /NUL/.test(err.message));
      }
      for (const bad of [undefined, null, 42, {}]) {
        assert.throws(() => s.create(bad), InvalidArgumentError);
        assert.throws(() => s.get(bad), InvalidArgumentError);
      }
    });

    it('create with a ttl, ttl, touch, exists, count', () => {
      const s = open({ lifetime: 100, max_lifetime: 1000, idle_timeout: 50 });
      assert.equal(s.count(), 0);
      const plain = s.create('{}');
      const long = s.create('{}', 500);
      const ttlPlain = s.ttl(plain);
      assert.ok(ttlPlain > 40 && ttlPlain <= 50, `idle end first: ${ttlPlain}`);
      s.touch(long);
      assert.ok(s.ttl(long) > 40 && s.ttl(long) <= 50);
      assert.equal(s.exists(plain), true);
      assert.equal(s.exists(MISSING), false);
      assert.equal(s.count(), 2);
      assert.equal(s.ttl(MISSING), null);
      assert.throws(() => s.touch(MISSING), NotFoundError);
      assert.throws(() => s.create('{}', 5000), InvalidArgumentError);
      assert.throws(() => s.create('{}', 0), InvalidArgumentError);
      assert.throws(() => s.create('{}', 1.5), InvalidArgumentError);
      const noIdle = open({ lifetime: 100, max_lifetime: 1000 });
      const remember = noIdle.create('{}', 500);
      const left = noIdle.ttl(remember);
      assert.ok(left > 490 && left <= 500, `ttl ${left}`);
      assert.ok(noIdle.ttl(noIdle.create('{}')) <= 100);
    });

    it('per-key values', () => {
      const s = open();
      const id = s.create('{"user_id":42,  "theme":"dark"}');
      assert.equal(s.getValue(id, 'user_id'), '42');
      assert.equal(s.getValue(id, 'nothing'), null);
      s.setValue(id, 'cart', '[1,2,3]');
      s.setValue(id, Buffer.from('flash'), '"Saved."');
      assert.equal(s.get(id), '{"user_id":42,  "theme":"dark","cart":[1,2,3],"flash":"Saved."}');
      assert.equal(s.popValue(id, 'flash'), '"Saved."');
      assert.equal(s.popValue(id, 'flash'), null, 'a flash is shown once');
      s.deleteValue(id, 'cart');
      s.deleteValue(id, 'cart'); // absent: still a success
      assert.equal(s.get(id), '{"user_id":42,  "theme":"dark"}');
      assert.throws(() => s.setValue(id, 'k', 'not json'), InvalidArgumentError);
      assert.equal(s.get(id), '{"user_id":42,  "theme":"dark"}', 'a failed set changes nothing');
      assert.equal(s.getValue(MISSING, 'user_id'), null);
      assert.equal(s.popValue(MISSING, 'user_id'), null);
      assert.throws(() => s.setValue(MISSING, 'k', '1'), NotFoundError);
      assert.throws(() => s.deleteValue(MISSING, 'k'), NotFoundError);
      const notObject = s.create('[1,2]');
      assert.throws(() => s.getValue(notObject, 'k'), InvalidArgumentError);
    });

    it('getVersioned and updateIf', () => {
      const s = open();
      const id = s.create('{"n":0}');
      const first = s.getVersioned(id);
      assert.equal(first.data, '{"n":0}');
      assert.equal(typeof first.version, 'bigint');
      s.updateIf(id, '{"n":1}', first.version);
      const second = s.getVersioned(id);
      assert.ok(second.version > first.version);
      assert.throws(() => s.updateIf(id, '{"n":99}', first.version), (err) =>
        err instanceof ConflictError && err.code === lib.ErrorCode.CONFLICT);
      assert.equal(s.get(id), '{"n":1}');
      s.setValue(id, 'n', '2');
      const third = s.getVersioned(id);
      assert.ok(third.version > second.version);
      s.updateIf(id, '{"n":3}', Number(third.version)); // a safe integer works too
      assert.equal(s.get(id), '{"n":3}');
      assert.equal(s.getVersioned(MISSING), null);
      assert.throws(() => s.updateIf(MISSING, '{}', 1n), NotFoundError);
      assert.throws(() => s.updateIf(id, '{}', -1n), InvalidArgumentError);
      assert.throws(() => s.updateIf(id, '{}', 1n << 64n), InvalidArgumentError);
      assert.throws(() => s.updateIf(id, '{}', '1'), InvalidArgumentError);
    });

    it('regenerate', () => {
      const s = open();
      const old = s.create('{"user_id":5}');
      const fresh = s.regenerate(old);
      assert.match(fresh, ID);
      assert.notEqual(fresh, old);
      assert.equal(s.get(fresh), '{"user_id":5}');
      assert.equal(s.get(old), null);
      assert.equal(s.exists(old), false);
      assert.throws(() => s.regenerate(old), NotFoundError);
      assert.throws(() => s.regenerate('../etc/passwd'), InvalidArgumentError);
      const graced = open({ regenerate_grace: 10 });
      const before = graced.create('{"a":1}');
      const after = graced.regenerate(before);
      assert.equal(graced.get(before), '{"a":1}', 'the old id reads during the grace');
      assert.throws(() => graced.update(before, '{}'), NotFoundError);
      assert.equal(graced.get(after), '{"a":1}');
    });

    it('owner index: destroyOwner, listOwner, countOwner', () => {
      const s = open({ owner_key: 'user_id' });
      const mine = [s.create('{"user_id":42}'), s.create('{"user_id":"42","d":1}'),
        s.create('{"user_id":42,"d":2}')];
      const other = s.create('{"user_id":7}');
      assert.equal(s.countOwner('42'), 3);
      assert.deepEqual([...s.listOwner('42')].sort(), [...mine].sort());
      assert.deepEqual(s.listOwner('nobody'), []);
      assert.equal(s.destroyOwner(Buffer.from('42')), 3);
      for (const id of mine) assert.equal(s.exists(id), false);
      assert.equal(s.exists(other), true);
      assert.equal(s.countOwner('42'), 0);
      assert.equal(s.destroyOwner('42'), 0);
      assert.equal(s.countOwner('7'), 1);
      assert.throws(() => s.countOwner(''), InvalidArgumentError);
      const none = open();
      assert.throws(() => none.countOwner('42'), ConfigError, 'no owner_key');
    });

    it('owner index: max_sessions_per_owner', async () => {
      const s = open({ owner_key: 'user_id', max_sessions_per_owner: 2 });
      // Apart by more than a millisecond: Redis keeps ends to the millisecond, and of
      // sessions whose ends tie the limit may keep one too many (reported separately).
      const first = s.create('{"user_id":1}');
      await sleep(3);
      const second = s.create('{"user_id":1}');
      await sleep(3);
      const third = s.create('{"user_id":1}');
      assert.equal(s.countOwner('1'), 2);
      assert.deepEqual([first, second, third].map((id) => s.exists(id)), [false, true, true]);
      assert.deepEqual(s.listOwner('1'), [second, third], 'the one that ends first first');
    });

    it('cacheStats: the Redis local_cache\'s counters, InvalidArgumentError without one',
      async () => {
        if (driver === 'redis') {
          // (A generous max_stale_ms: on a loaded machine a late heartbeat would send the
          // gets to Redis.)
          const s = open({ local_cache: { max_stale_ms: 2000 } });
          const before = s.cacheStats();
          assert.deepEqual(Object.keys(before).sort(),
            ['bytes', 'channel_up', 'entries', 'flushes', 'hits', 'invalidations', 'misses']);
          assert.equal(before.hits, 0);
          assert.equal(before.entries, 0);
          const id = s.create('{"user_id":42}');
          const stats = await cachedGets(s, id);
          assert.ok(stats.hits >= 1, JSON.stringify(stats));
          assert.ok(stats.entries >= 1, JSON.stringify(stats));
          assert.ok(stats.bytes > 0, JSON.stringify(stats));
          assert.equal(stats.channel_up, true, JSON.stringify(stats));
        }
        // Every driver without local_cache (Redis too): InvalidArgumentError, code 2.
        const plain = open();
        assert.throws(() => plain.cacheStats(), (err) => err instanceof InvalidArgumentError &&
          err.code === lib.ErrorCode.INVALID_ARGUMENT && err.code === 2 &&
          /local_cache/.test(err.message));
      });

    it('cookies', () => {
      const s = open({ lifetime: 3600, cookie: { name: 'sid', same_site: 'Strict' } });
      const id = s.create('{}');
      const set = s.cookieHeader(id);
      assert.ok(set.startsWith(`sid=${id}; Max-Age=3600; Expires=`), set);
      assert.ok(set.endsWith('; Path=/; Secure; HttpOnly; SameSite=Strict'), set);
      assert.equal(s.cookieClearHeader(),
        'sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Strict');
      assert.equal(s.idFromCookieHeader(`theme=dark; sid=${id}`), id);
      assert.equal(s.idFromCookieHeader(`Cookie: sid="${id}"`), id);
      assert.equal(s.idFromCookieHeader(`sid=forged; sid=${id}`), id);
      assert.equal(s.idFromCookieHeader('theme=dark'), null);
      assert.equal(s.idFromCookieHeader(`session_id=${id}`), null, 'another cookie name');
      assert.throws(() => s.cookieHeader('not-an-id'), InvalidArgumentError);
      const plain = open({ cookie: { persistent: false, secure: false } });
      assert.equal(plain.cookieHeader(id), `session_id=${id}; Path=/; HttpOnly; SameSite=Lax`);
    });

    it('removeExpired', async () => {
      const s = open({ lifetime: 100, max_lifetime: 100 });
      const short = [s.create('{}', 1), s.create('{}', 1)];
      const kept = s.create('{}');
      await sleep(3200); // files: deleted once the end is 2 s old
      for (const id of short) assert.equal(s.get(id), null);
      const removed = s.removeExpired();
      // Redis expires keys itself: removeExpired deletes nothing there.
      assert.equal(removed, driver === 'redis' ? 0 : 2);
      assert.equal(s.count(), 1);
      assert.equal(s.get(kept), '{}');
    });

    it('close is idempotent, a closed store throws', () => {
      const s = open();
      const id = s.create('{}');
      assert.equal(s.closed, false);
      s.close();
      s.close();
      assert.equal(s.closed, true);
      const calls = {
        create: () => s.create('{}'), get: () => s.get(id), update: () => s.update(id, '{}'),
        destroy: () => s.destroy(id), regenerate: () => s.regenerate(id),
        touch: () => s.touch(id), ttl: () => s.ttl(id), exists: () => s.exists(id),
        count: () => s.count(), removeExpired: () => s.removeExpired(),
        getValue: () => s.getValue(id, 'k'), setValue: () => s.setValue(id, 'k', '1'),
        deleteValue: () => s.deleteValue(id, 'k'), popValue: () => s.popValue(id, 'k'),
        getVersioned: () => s.getVersioned(id), updateIf: () => s.updateIf(id, '{}', 1n),
        destroyOwner: () => s.destroyOwner('1'), listOwner: () => s.listOwner('1'),
        cacheStats: () => s.cacheStats(),
        countOwner: () => s.countOwner('1'), cookieHeader: () => s.cookieHeader(id),
        cookieClearHeader: () => s.cookieClearHeader(),
        idFromCookieHeader: () => s.idFromCookieHeader(`session_id=${id}`),
      };
      for (const [name, call] of Object.entries(calls)) {
        assert.throws(call, (err) => err instanceof InvalidArgumentError &&
          /closed/.test(err.message), name);
      }
    });

    it('Store.fromFile and named stores of one configuration', () => {
      const dir = tempDir('config');
      const file = path.join(dir, 'config.json');
      const one = JSON.parse(config({ lifetime: 60 }));
      const both = {
        ...one,
        sessions: { default: one.sessions, api: { ...one.sessions, lifetime: 120 } },
      };
      fs.writeFileSync(file, JSON.stringify(both));
      const def = Store.fromFile(file);
      const api = Store.fromFile(Buffer.from(file), 'api');
      const apiJson = Store.fromJson(JSON.stringify(both), 'api');
      opened.push(def, api, apiJson);
      assert.ok(def.ttl(def.create('{}')) <= 60);
      assert.ok(api.ttl(api.create('{}')) > 60);
      assert.ok(apiJson.ttl(apiJson.create('{}')) > 60);
      assert.throws(() => Store.fromFile(file, 'nope'), ConfigError);
      assert.throws(() => Store.fromFile(path.join(dir, 'missing.json')), ConfigError);
    });
  });
}

test('Store cannot be constructed directly', () => {
  assert.throws(() => new Store(), TypeError);
});
