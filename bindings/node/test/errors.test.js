'use strict';
// Errors: one SessionError subclass per code, each thrown where the library reports
// its code, read on the calling thread right after the failing call.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, after } = require('node:test');
const {
  lib, tempDir, fileConfig, memoryConfig, redisConfig, sharedRedis, freePort, redis, SECRET,
} = require('./helpers');

const {
  Store, ErrorCode, SessionError, NotFoundError, InvalidArgumentError, TooLargeError,
  UnavailableError, TimeoutError, ConfigError, InternalError, FullError, ConflictError,
  CorruptError,
} = lib;

const MISSING = 'f'.repeat(64);

/** assert.throws for a SessionError subclass with its code and a message. */
function throwsCode(fn, Class, code, message) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Class, `${err.name}: ${err.message} is not a ${Class.name}`);
    assert.ok(err instanceof SessionError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, code);
    assert.equal(err.name, Class.name);
    assert.ok(err.message.length > 0);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('error classes', () => {
  const classes = [
    [NotFoundError, ErrorCode.NOT_FOUND, 1],
    [InvalidArgumentError, ErrorCode.INVALID_ARGUMENT, 2],
    [TooLargeError, ErrorCode.TOO_LARGE, 3],
    [UnavailableError, ErrorCode.STORAGE_UNAVAILABLE, 4],
    [TimeoutError, ErrorCode.TIMEOUT, 5],
    [ConfigError, ErrorCode.CONFIG, 6],
    [InternalError, ErrorCode.INTERNAL, 7],
    [FullError, ErrorCode.FULL, 8],
    [ConflictError, ErrorCode.CONFLICT, 9],
    [CorruptError, ErrorCode.CORRUPT, 10],
  ];

  it('one subclass of SessionError per code, numbers as in session.h', () => {
    assert.equal(ErrorCode.OK, 0);
    for (const [Class, code, number] of classes) {
      assert.equal(code, number);
      const err = new Class('m');
      assert.ok(err instanceof SessionError && err instanceof Error);
      assert.equal(err.code, code);
      assert.equal(err.name, Class.name);
      assert.equal(err.message, 'm');
      const made = SessionError.fromCode(code, 'x');
      assert.equal(made.constructor, Class);
      assert.equal(made.message, 'x');
    }
    const unknown = SessionError.fromCode(99, 'from a newer library');
    assert.equal(unknown.constructor, SessionError);
    assert.equal(unknown.code, 99);
    assert.equal(new SessionError('x').name, 'SessionError');
  });
});

describe('errors from the library', () => {
  const stores = [];
  const open = (json, name) => {
    const store = Store.fromJson(json, name);
    stores.push(store);
    return store;
  };
  after(() => stores.forEach((s) => s.close()));

  it('NotFound', () => {
    const s = open(memoryConfig());
    throwsCode(() => s.update(MISSING, '{}'), NotFoundError, 1, /not found/);
    throwsCode(() => s.touch(MISSING), NotFoundError, 1);
    throwsCode(() => s.regenerate(MISSING), NotFoundError, 1);
    throwsCode(() => s.setValue(MISSING, 'k', '1'), NotFoundError, 1);
    throwsCode(() => s.updateIf(MISSING, '{}', 1n), NotFoundError, 1);
    // The get-like calls answer null instead.
    assert.equal(s.get(MISSING), null);
    assert.equal(s.ttl(MISSING), null);
  });

  it('InvalidArgument for a malformed id, on every call that takes one', () => {
    const s = open(memoryConfig());
    for (const bad of ['abc', 'F'.repeat(64), `${'f'.repeat(63)}/`, '../../etc/passwd', '']) {
      for (const call of [
        () => s.get(bad), () => s.update(bad, '{}'), () => s.destroy(bad),
        () => s.touch(bad), () => s.ttl(bad), () => s.exists(bad), () => s.regenerate(bad),
        () => s.getValue(bad, 'k'), () => s.setValue(bad, 'k', '1'),
        () => s.deleteValue(bad, 'k'), () => s.popValue(bad, 'k'),
        () => s.getVersioned(bad), () => s.updateIf(bad, '{}', 1n), () => s.cookieHeader(bad),
      ]) {
        throwsCode(call, InvalidArgumentError, 2, /session id/);
      }
    }
    const id = s.create('{"a":1}');
    throwsCode(() => s.setValue(id, 'k', '{oops'), InvalidArgumentError, 2);
    throwsCode(() => s.create('{}', -5), InvalidArgumentError, 2);
  });

  it('Conflict from updateIf', () => {
    const s = open(memoryConfig());
    const id = s.create('{"n":0}');
    const { version } = s.getVersioned(id);
    s.update(id, '{"n":1}');
    throwsCode(() => s.updateIf(id, '{"n":2}', version), ConflictError, 9, /changed/);
    assert.equal(s.get(id), '{"n":1}');
  });

  it('Corrupt from a tampered encrypted file', () => {
    const root = tempDir('corrupt');
    const s = open(fileConfig(root, { secret: SECRET }));
    const id = s.create('{"user_id":42,"marker":"PLAINTEXT-MARKER"}');
    const file = path.join(root, 'sessions', id);
    const bytes = fs.readFileSync(file);
    assert.equal(bytes.includes('PLAINTEXT-MARKER'), false, 'sealed at rest');
    assert.equal(s.get(id), '{"user_id":42,"marker":"PLAINTEXT-MARKER"}');

    // The file copied under another id: it does not open there.
    const other = lib.createId();
    fs.copyFileSync(file, path.join(root, 'sessions', other));
    throwsCode(() => s.get(other), CorruptError, 10, /another session/);

    // One flipped byte of a file written once: no intact version left.
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 1;
    fs.writeFileSync(file, flipped);
    throwsCode(() => s.get(id), CorruptError, 10);
    throwsCode(() => s.getVersioned(id), CorruptError, 10);
    throwsCode(() => s.getValue(id, 'user_id'), CorruptError, 10);
    throwsCode(() => s.setValue(id, 'k', '1'), CorruptError, 10);
    throwsCode(() => s.regenerate(id), CorruptError, 10);
    assert.deepEqual(fs.readFileSync(file), flipped, 'a failed write left the file alone');

    // The same store without the secret's key: a store with another secret.
    fs.writeFileSync(file, bytes);
    const rotated = open(fileConfig(root, { secret: `${SECRET} but another one` }));
    throwsCode(() => rotated.get(id), CorruptError, 10);
    assert.equal(s.get(id), '{"user_id":42,"marker":"PLAINTEXT-MARKER"}');
  });

  it('ConfigError', () => {
    throwsCode(() => Store.fromJson('{"sessions": {"driver": "memory", "lifetme": 5}}'),
      ConfigError, 6, /lifetme/);
    throwsCode(() => Store.fromJson('{"sessions": {"driver": "postgres"}}'), ConfigError, 6);
    throwsCode(() => Store.fromJson('not json'), ConfigError, 6);
    throwsCode(() => Store.fromJson(fileConfig('/nonexistent/libsession-root')), ConfigError, 6,
      /nonexistent/);
    let short;
    assert.throws(() => Store.fromJson(memoryConfig({ secret: 'hunter2-hunter2' })), (err) => {
      short = err;
      return err instanceof ConfigError;
    });
    assert.equal(short.message.includes('hunter2'), false, 'a secret never shows');
    throwsCode(() => Store.fromJson(memoryConfig({ cookie: { same_site: 'None', secure: false } })),
      ConfigError, 6);
    const noOwner = open(memoryConfig());
    throwsCode(() => noOwner.destroyOwner('42'), ConfigError, 6, /owner_key/);
    throwsCode(() => noOwner.listOwner('42'), ConfigError, 6);
    throwsCode(() => Store.fromJson(memoryConfig(), 'no-such-store'), ConfigError, 6);
  });

  it('TooLarge and Full', () => {
    const small = open(memoryConfig({ max_data_size: 16 }));
    throwsCode(() => small.create('{"x":"0123456789"}'), TooLargeError, 3);
    const id = small.create('{"x":1}');
    throwsCode(() => small.setValue(id, 'y', '"0123456789"'), TooLargeError, 3);
    const full = open(memoryConfig({ max_sessions: 2 }));
    full.create('{}');
    full.create('{}');
    throwsCode(() => full.create('{}'), FullError, 8);
  });

  it('Unavailable: a deleted session directory, an unreachable Redis', async () => {
    const root = tempDir('gone');
    const s = open(fileConfig(root));
    const id = s.create('{}');
    fs.rmSync(path.join(root, 'sessions'), { recursive: true });
    throwsCode(() => s.get(id), UnavailableError, 4);
    const port = await freePort(); // nobody listens there
    const json = JSON.stringify({
      sessions: { driver: 'redis', url: `redis://127.0.0.1:${port}/0`, lazy_connect: true,
        connect_timeout_ms: 500 },
    });
    const down = open(json);
    throwsCode(() => down.create('{}'), UnavailableError, 4, new RegExp(String(port)));
    throwsCode(() => Store.fromJson(json.replace('"lazy_connect":true', '"lazy_connect":false')),
      UnavailableError, 4);
  });

  it('lastError and lastErrorCode describe the thread\'s last call', () => {
    const s = open(memoryConfig());
    assert.throws(() => s.get('bad'), InvalidArgumentError);
    assert.equal(lib.lastErrorCode(), ErrorCode.INVALID_ARGUMENT);
    assert.match(lib.lastError(), /session id/);
    s.create('{}');
    assert.equal(lib.lastErrorCode(), ErrorCode.OK);
    assert.equal(lib.lastError(), null);
  });
});

describe('errors from the library on Redis', () => {
  // A real server on a free loopback port, awaited by each test: without
  // redis-server, each of these tests fails.
  const stores = [];
  const open = (json) => {
    const store = Store.fromJson(json);
    stores.push(store);
    return store;
  };
  after(() => stores.forEach((s) => s.close()));

  it('Corrupt from a tampered encrypted Redis record', async () => {
    const redisServer = await sharedRedis();
    const json = redisConfig(redisServer.port, { secret: SECRET });
    const s = open(json);
    const prefix = JSON.parse(json).sessions.key_prefix;
    const id = s.create('{"user_id":1}');
    const sealed = await redis(redisServer.port, 'HGET', prefix + id, 'd');
    assert.ok(Buffer.isBuffer(sealed) && !sealed.includes('user_id'));
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    await redis(redisServer.port, 'HSET', prefix + id, 'd', flipped);
    throwsCode(() => s.get(id), CorruptError, 10);
  });

  it('Timeout: a frozen Redis', async () => {
    const redisServer = await sharedRedis();
    const s = open(redisConfig(redisServer.port, { command_timeout_ms: 300 }));
    const id = s.create('{}');
    process.kill(redisServer.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      throwsCode(() => s.get(id), TimeoutError, 5);
      assert.ok(Date.now() - started < 5000);
    } finally {
      process.kill(redisServer.pid, 'SIGCONT');
    }
    assert.equal(s.get(id), '{}', 'back once the server answers again');
  });
});
