'use strict';
// Node.js binding of libsession through koffi: every function of include/session.h,
// wrapped in JavaScript style.
//
// The library is found by LIBSESSION_LIBRARY (a path) when it is set, else by its
// soname libsession.so.0 through the dynamic loader (rpath, LD_LIBRARY_PATH,
// ldconfig). It is loaded once per process: every worker thread that requires this
// module shares the same library, so the same global configuration.
//
// In: every text argument is a string (sent as UTF-8) or a Buffer/Uint8Array (sent
// as its bytes); neither may contain a NUL, which C would cut the text at.
// Out: every text result is a string decoded from UTF-8 (a byte sequence that is not
// UTF-8 becomes U+FFFD); counts are numbers, versions BigInts; listOwner and
// cacheStats give the JSON of the C call parsed (an array of ids, an object).
// Failures throw a SessionError subclass chosen by session_last_error_code(), read
// on the calling thread right after the failing call. A missing session is null from
// the get-like calls: get, getValue, popValue, getVersioned, ttl, idFromCookieHeader.

const koffi = require('koffi');

// ---------------------------------------------------------------------------------
// Errors

/** Codes of session_last_error_code(), as in enum session_error of session.h. */
const ErrorCode = Object.freeze({
  OK: 0,
  NOT_FOUND: 1,
  INVALID_ARGUMENT: 2,
  TOO_LARGE: 3,
  STORAGE_UNAVAILABLE: 4,
  TIMEOUT: 5,
  CONFIG: 6,
  INTERNAL: 7,
  FULL: 8,
  CONFLICT: 9,
  CORRUPT: 10,
});

/** Base class of every failure reported by libsession; `code` is an ErrorCode. */
class SessionError extends Error {
  constructor(message, code = ErrorCode.INTERNAL) {
    super(message);
    this.code = code;
  }

  /** The error of class matching `code` (a SessionError for a code unknown here). */
  static fromCode(code, message) {
    const Class = CLASS_OF_CODE.get(code);
    return Class ? new Class(message) : new SessionError(message, code);
  }
}
Object.defineProperty(SessionError.prototype, 'name', { value: 'SessionError', writable: true });

const CLASS_OF_CODE = new Map();

function errorClass(name, code) {
  const Class = {
    [name]: class extends SessionError {
      constructor(message) {
        super(message, code);
      }
    },
  }[name];
  Object.defineProperty(Class.prototype, 'name', { value: name, writable: true });
  CLASS_OF_CODE.set(code, Class);
  return Class;
}

const NotFoundError = errorClass('NotFoundError', ErrorCode.NOT_FOUND);
const InvalidArgumentError = errorClass('InvalidArgumentError', ErrorCode.INVALID_ARGUMENT);
const TooLargeError = errorClass('TooLargeError', ErrorCode.TOO_LARGE);
const UnavailableError = errorClass('UnavailableError', ErrorCode.STORAGE_UNAVAILABLE);
const TimeoutError = errorClass('TimeoutError', ErrorCode.TIMEOUT);
const ConfigError = errorClass('ConfigError', ErrorCode.CONFIG);
const InternalError = errorClass('InternalError', ErrorCode.INTERNAL);
const FullError = errorClass('FullError', ErrorCode.FULL);
const ConflictError = errorClass('ConflictError', ErrorCode.CONFLICT);
const CorruptError = errorClass('CorruptError', ErrorCode.CORRUPT);

// ---------------------------------------------------------------------------------
// Loading the library

const SONAME = 'libsession.so.0';

function loadLibrary() {
  let path = process.env.LIBSESSION_LIBRARY;
  if (path !== undefined && path !== '') {
    // A name without a slash is a file here, as for Python, not a name for the
    // dynamic loader's search (which could find an installed copy instead).
    if (!path.includes('/')) path = require('path').resolve(path);
    try {
      return { lib: koffi.load(path), path };
    } catch (err) {
      throw new Error(
        `libsession: cannot load LIBSESSION_LIBRARY=${path} (${err.message}). ` +
          `Set LIBSESSION_LIBRARY to the path of ${SONAME} (after cargo build --release --lib: ` +
          `target/release/${SONAME}), or unset it to load ${SONAME} by its soname ` +
          '(rpath, LD_LIBRARY_PATH or ldconfig).',
      );
    }
  }
  try {
    return { lib: koffi.load(SONAME), path: SONAME };
  } catch (err) {
    throw new Error(
      `libsession: cannot load ${SONAME} by its soname (${err.message}), and ` +
        'LIBSESSION_LIBRARY is not set. Install the library (cmake --install, then ldconfig), ' +
        `put its directory in LD_LIBRARY_PATH, or set LIBSESSION_LIBRARY to the path of ${SONAME}.`,
    );
  }
}

const loaded = loadLibrary();

// session_store_t * handles and the malloc'd strings the library returns are both
// taken as pointers (BigInts in koffi 3): a returned string is decoded, then freed
// with session_free; never decoded by koffi on the fly (that would leak it).
koffi.opaque('session_store_t');
koffi.pointer('owned_string_t', koffi.opaque('owned_char'));

// Every function of include/session.h, in the header's order. `owned_string_t` stands
// for a returned `char *` that the caller frees; the two `const char *` results
// (session_last_error, session_version) belong to the library and are decoded as is.
const PROTOTYPES = Object.freeze([
  'owned_string_t session_create(const char *data)',
  'owned_string_t session_create_ttl(const char *data, long ttl_seconds)',
  'owned_string_t session_get(const char *session_id)',
  'int session_update(const char *session_id, const char *data)',
  'int session_destroy(const char *session_id)',
  'int session_touch(const char *session_id)',
  'long session_ttl(const char *session_id)',
  'int session_exists(const char *session_id)',
  'long session_count(void)',
  'owned_string_t session_regenerate(const char *session_id)',
  'owned_string_t session_get_versioned(const char *session_id, unsigned long long *version)',
  'int session_update_if(const char *session_id, const char *data, unsigned long long version)',
  'owned_string_t session_get_value(const char *session_id, const char *key)',
  'int session_set_value(const char *session_id, const char *key, const char *json_value)',
  'int session_delete_value(const char *session_id, const char *key)',
  'owned_string_t session_pop_value(const char *session_id, const char *key)',
  'long session_destroy_owner(const char *owner)',
  'owned_string_t session_list_owner(const char *owner)',
  'owned_string_t session_cache_stats(void)',
  'long session_count_owner(const char *owner)',
  'owned_string_t session_cookie_header(const char *session_id)',
  'owned_string_t session_cookie_clear_header(void)',
  'owned_string_t session_id_from_cookie_header(const char *cookie_header)',
  'owned_string_t session_create_id(void)',
  'void session_remove_expired(void)',
  'long session_remove_expired_count(void)',
  'session_store_t *session_store_open(const char *config_path, const char *name)',
  'session_store_t *session_store_open_json(const char *json, const char *name)',
  'session_store_t *session_store(const char *name)',
  'void session_store_close(session_store_t *store)',
  'owned_string_t session_store_create(const session_store_t *store, const char *data)',
  'owned_string_t session_store_create_ttl(const session_store_t *store, const char *data, long ttl_seconds)',
  'owned_string_t session_store_get(const session_store_t *store, const char *session_id)',
  'int session_store_update(const session_store_t *store, const char *session_id, const char *data)',
  'int session_store_destroy(const session_store_t *store, const char *session_id)',
  'long session_store_remove_expired(const session_store_t *store)',
  'int session_store_touch(const session_store_t *store, const char *session_id)',
  'long session_store_ttl(const session_store_t *store, const char *session_id)',
  'int session_store_exists(const session_store_t *store, const char *session_id)',
  'long session_store_count(const session_store_t *store)',
  'owned_string_t session_store_regenerate(const session_store_t *store, const char *session_id)',
  'owned_string_t session_store_get_versioned(const session_store_t *store, const char *session_id, unsigned long long *version)',
  'int session_store_update_if(const session_store_t *store, const char *session_id, const char *data, unsigned long long version)',
  'owned_string_t session_store_get_value(const session_store_t *store, const char *session_id, const char *key)',
  'int session_store_set_value(const session_store_t *store, const char *session_id, const char *key, const char *json_value)',
  'int session_store_delete_value(const session_store_t *store, const char *session_id, const char *key)',
  'owned_string_t session_store_pop_value(const session_store_t *store, const char *session_id, const char *key)',
  'long session_store_destroy_owner(const session_store_t *store, const char *owner)',
  'owned_string_t session_store_list_owner(const session_store_t *store, const char *owner)',
  'owned_string_t session_store_cache_stats(const session_store_t *store)',
  'long session_store_count_owner(const session_store_t *store, const char *owner)',
  'owned_string_t session_store_cookie_header(const session_store_t *store, const char *session_id)',
  'owned_string_t session_store_cookie_clear_header(const session_store_t *store)',
  'owned_string_t session_store_id_from_cookie_header(const session_store_t *store, const char *cookie_header)',
  'void session_free(void *ptr)',
  'int session_init(const char *config_path)',
  'int session_init_json(const char *json)',
  'void session_shutdown(void)',
  'const char *session_last_error(void)',
  'int session_last_error_code(void)',
  'const char *session_version(void)',
]);

const N = Object.create(null);
for (const prototype of PROTOTYPES) {
  const name = /(session_\w+)\(/.exec(prototype)[1];
  try {
    N[name] = loaded.lib.func(prototype);
  } catch (err) {
    throw new Error(
      `libsession: ${loaded.path} has no usable ${name} (${err.message}): ` +
        'the library is older than this binding; build or install the matching version.',
    );
  }
}
Object.freeze(N);

// ---------------------------------------------------------------------------------
// Arguments and results

/** A text argument for `const char *`: a string, or a Buffer copied with a final NUL. */
function text(value, what) {
  if (typeof value === 'string') {
    if (value.includes('\0')) {
      throw new InvalidArgumentError(`${what} contains a NUL character`);
    }
    return value;
  }
  if (value instanceof Uint8Array) {
    if (value.includes(0)) {
      throw new InvalidArgumentError(`${what} contains a NUL byte`);
    }
    const bytes = Buffer.allocUnsafe(value.length + 1);
    bytes.set(value);
    bytes[value.length] = 0;
    return bytes;
  }
  const got = value === null ? 'null' : typeof value;
  throw new InvalidArgumentError(`${what} must be a string or a Buffer, got ${got}`);
}

/** An optional text argument (a store name): null or undefined is C's NULL. */
function optionalText(value, what) {
  return value === null || value === undefined ? null : text(value, what);
}

function seconds(value) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(`ttlSeconds must be an integer number of seconds, got ${value}`);
  }
  return value;
}

const U64_MAX = (1n << 64n) - 1n;

function toVersion(value) {
  const v = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) {
    throw new InvalidArgumentError(
      `version must be a BigInt (or a safe integer) from 0 to 2^64-1, got ${String(value)}`,
    );
  }
  return v;
}

/** The error of the call `fn` that just failed on this thread. */
function failure(fn) {
  const code = N.session_last_error_code();
  const message = N.session_last_error();
  if (code === ErrorCode.OK) {
    return new InternalError(`${fn} failed but left no error code (a bug in libsession)`);
  }
  return SessionError.fromCode(code, message === null ? `${fn} failed (code ${code})` : message);
}

/** Decodes a returned `char *` and frees it. */
function take(ptr) {
  try {
    return koffi.decode.string(ptr);
  } finally {
    N.session_free(ptr);
  }
}

// How a NULL or error result is read, beyond "throw".
const THROW = 0; // every NULL is a failure
const MISSING = 1; // NOT_FOUND: null
const ABSENT = 2; // NOT_FOUND and OK (no such member): null

function stringCall(fn, args, nulls = THROW) {
  const ptr = N[fn](...args);
  if (ptr !== null) {
    return take(ptr);
  }
  const code = N.session_last_error_code();
  if (nulls !== THROW && code === ErrorCode.NOT_FOUND) return null;
  if (nulls === ABSENT && code === ErrorCode.OK) return null;
  throw failure(fn);
}

function okCall(fn, args) {
  if (N[fn](...args) === 0) {
    throw failure(fn);
  }
}

function countCall(fn, args) {
  const n = N[fn](...args);
  if (n === -1) {
    throw failure(fn);
  }
  return Number(n);
}

// ---------------------------------------------------------------------------------
// The operations, each written once for the global API (prefix "session_", no
// handle) and for a Store (prefix "session_store_", its handle first).

const ops = {
  create(p, h, data, ttlSeconds) {
    if (ttlSeconds === undefined || ttlSeconds === null) {
      return stringCall(`${p}create`, [...h, text(data, 'data')]);
    }
    return stringCall(`${p}create_ttl`, [...h, text(data, 'data'), seconds(ttlSeconds)]);
  },
  get(p, h, id) {
    return stringCall(`${p}get`, [...h, text(id, 'session_id')], MISSING);
  },
  update(p, h, id, data) {
    okCall(`${p}update`, [...h, text(id, 'session_id'), text(data, 'data')]);
  },
  destroy(p, h, id) {
    okCall(`${p}destroy`, [...h, text(id, 'session_id')]);
  },
  regenerate(p, h, id) {
    return stringCall(`${p}regenerate`, [...h, text(id, 'session_id')]);
  },
  touch(p, h, id) {
    okCall(`${p}touch`, [...h, text(id, 'session_id')]);
  },
  ttl(p, h, id) {
    const fn = `${p}ttl`;
    const left = N[fn](...h, text(id, 'session_id'));
    if (left !== -1) return Number(left);
    if (N.session_last_error_code() === ErrorCode.NOT_FOUND) return null;
    throw failure(fn);
  },
  exists(p, h, id) {
    const fn = `${p}exists`;
    if (N[fn](...h, text(id, 'session_id')) !== 0) return true;
    if (N.session_last_error_code() === ErrorCode.NOT_FOUND) return false;
    throw failure(fn);
  },
  count(p, h) {
    return countCall(`${p}count`, h);
  },
  getValue(p, h, id, key) {
    return stringCall(`${p}get_value`, [...h, text(id, 'session_id'), text(key, 'key')], ABSENT);
  },
  setValue(p, h, id, key, jsonValue) {
    okCall(`${p}set_value`, [
      ...h,
      text(id, 'session_id'),
      text(key, 'key'),
      text(jsonValue, 'json_value'),
    ]);
  },
  deleteValue(p, h, id, key) {
    okCall(`${p}delete_value`, [...h, text(id, 'session_id'), text(key, 'key')]);
  },
  popValue(p, h, id, key) {
    return stringCall(`${p}pop_value`, [...h, text(id, 'session_id'), text(key, 'key')], ABSENT);
  },
  getVersioned(p, h, id) {
    const out = new BigUint64Array(1);
    const data = stringCall(`${p}get_versioned`, [...h, text(id, 'session_id'), out], MISSING);
    return data === null ? null : { data, version: out[0] };
  },
  updateIf(p, h, id, data, v) {
    okCall(`${p}update_if`, [...h, text(id, 'session_id'), text(data, 'data'), toVersion(v)]);
  },
  destroyOwner(p, h, owner) {
    return countCall(`${p}destroy_owner`, [...h, text(owner, 'owner')]);
  },
  listOwner(p, h, owner) {
    return JSON.parse(stringCall(`${p}list_owner`, [...h, text(owner, 'owner')]));
  },
  cacheStats(p, h) {
    return JSON.parse(stringCall(`${p}cache_stats`, h));
  },
  countOwner(p, h, owner) {
    return countCall(`${p}count_owner`, [...h, text(owner, 'owner')]);
  },
  cookieHeader(p, h, id) {
    return stringCall(`${p}cookie_header`, [...h, text(id, 'session_id')]);
  },
  cookieClearHeader(p, h) {
    return stringCall(`${p}cookie_clear_header`, h);
  },
  idFromCookieHeader(p, h, header) {
    return stringCall(`${p}id_from_cookie_header`, [...h, text(header, 'cookie_header')], MISSING);
  },
};

// ---------------------------------------------------------------------------------
// Store: a handle on one store

const CONSTRUCT = Symbol('Store');

// A handle that was never closed is closed when its Store is garbage-collected.
const finalizer = new FinalizationRegistry((handle) => N.session_store_close(handle));

const STORE = 'session_store_';

class Store {
  #handle;

  /** Use Store.fromJson, Store.fromFile or Store.named. */
  constructor(token, handle) {
    if (token !== CONSTRUCT) {
      throw new TypeError('use Store.fromJson(), Store.fromFile() or Store.named()');
    }
    this.#handle = handle;
    finalizer.register(this, handle, this);
  }

  static #open(fn, args) {
    const handle = N[fn](...args);
    if (handle === null) {
      throw failure(fn);
    }
    return new Store(CONSTRUCT, handle);
  }

  /** session_store_open_json: store `name` (default store if omitted) of JSON config text. */
  static fromJson(json, name) {
    return Store.#open('session_store_open_json', [text(json, 'json'), optionalText(name, 'name')]);
  }

  /** session_store_open: store `name` of the config.json file at `path`. */
  static fromFile(path, name) {
    return Store.#open('session_store_open', [text(path, 'config_path'), optionalText(name, 'name')]);
  }

  /** session_store: a handle on store `name` of the global configuration. */
  static named(name) {
    return Store.#open('session_store', [optionalText(name, 'name')]);
  }

  /** True once close() was called. */
  get closed() {
    return this.#handle === null;
  }

  /** session_store_close. Idempotent; every other method throws afterwards. */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    finalizer.unregister(this);
    N.session_store_close(handle);
  }

  #h() {
    if (this.#handle === null) {
      throw new InvalidArgumentError('the store is closed');
    }
    return [this.#handle];
  }

  create(data, ttlSeconds) {
    return ops.create(STORE, this.#h(), data, ttlSeconds);
  }
  get(id) {
    return ops.get(STORE, this.#h(), id);
  }
  update(id, data) {
    return ops.update(STORE, this.#h(), id, data);
  }
  destroy(id) {
    return ops.destroy(STORE, this.#h(), id);
  }
  regenerate(id) {
    return ops.regenerate(STORE, this.#h(), id);
  }
  touch(id) {
    return ops.touch(STORE, this.#h(), id);
  }
  ttl(id) {
    return ops.ttl(STORE, this.#h(), id);
  }
  exists(id) {
    return ops.exists(STORE, this.#h(), id);
  }
  count() {
    return ops.count(STORE, this.#h());
  }
  /** session_store_remove_expired: deletes the ended sessions, returns how many. */
  removeExpired() {
    return countCall(`${STORE}remove_expired`, this.#h());
  }
  getValue(id, key) {
    return ops.getValue(STORE, this.#h(), id, key);
  }
  setValue(id, key, jsonValue) {
    return ops.setValue(STORE, this.#h(), id, key, jsonValue);
  }
  deleteValue(id, key) {
    return ops.deleteValue(STORE, this.#h(), id, key);
  }
  popValue(id, key) {
    return ops.popValue(STORE, this.#h(), id, key);
  }
  getVersioned(id) {
    return ops.getVersioned(STORE, this.#h(), id);
  }
  updateIf(id, data, v) {
    return ops.updateIf(STORE, this.#h(), id, data, v);
  }
  destroyOwner(owner) {
    return ops.destroyOwner(STORE, this.#h(), owner);
  }
  listOwner(owner) {
    return ops.listOwner(STORE, this.#h(), owner);
  }
  /** session_store_cache_stats: the counters of the Redis driver's local_cache. */
  cacheStats() {
    return ops.cacheStats(STORE, this.#h());
  }
  countOwner(owner) {
    return ops.countOwner(STORE, this.#h(), owner);
  }
  cookieHeader(id) {
    return ops.cookieHeader(STORE, this.#h(), id);
  }
  cookieClearHeader() {
    return ops.cookieClearHeader(STORE, this.#h());
  }
  idFromCookieHeader(header) {
    return ops.idFromCookieHeader(STORE, this.#h(), header);
  }
}

// ---------------------------------------------------------------------------------
// The global API: the default store of the global configuration

const G = 'session_';
const NO_HANDLE = Object.freeze([]);

function init(path) {
  okCall('session_init', [text(path, 'config_path')]);
}
function initJson(json) {
  okCall('session_init_json', [text(json, 'json')]);
}
function shutdown() {
  N.session_shutdown();
}
function createId() {
  return stringCall('session_create_id', []);
}
function version() {
  return N.session_version();
}
/** session_remove_expired: deletes the ended sessions of the default store. */
function removeExpired() {
  N.session_remove_expired();
  if (N.session_last_error_code() !== ErrorCode.OK) {
    throw failure('session_remove_expired');
  }
}
/** session_remove_expired_count: the same, and returns how many it deleted. */
function removeExpiredCount() {
  return countCall('session_remove_expired_count', NO_HANDLE);
}
/** session_last_error: this thread's last failure message, null after a success. */
function lastError() {
  return N.session_last_error();
}
/** session_last_error_code: this thread's last ErrorCode, 0 after a success. */
function lastErrorCode() {
  return N.session_last_error_code();
}

const globalApi = {};
for (const name of Object.keys(ops)) {
  const op = ops[name];
  globalApi[name] = { [name]: (...args) => op(G, NO_HANDLE, ...args) }[name];
}

// Where each C function of session.h is reached. session_free is called on every
// returned string; the tests check this table against the header.
const CALLS = Object.freeze({
  session_create: 'create',
  session_create_ttl: 'create',
  session_get: 'get',
  session_update: 'update',
  session_destroy: 'destroy',
  session_touch: 'touch',
  session_ttl: 'ttl',
  session_exists: 'exists',
  session_count: 'count',
  session_regenerate: 'regenerate',
  session_get_versioned: 'getVersioned',
  session_update_if: 'updateIf',
  session_get_value: 'getValue',
  session_set_value: 'setValue',
  session_delete_value: 'deleteValue',
  session_pop_value: 'popValue',
  session_destroy_owner: 'destroyOwner',
  session_list_owner: 'listOwner',
  session_cache_stats: 'cacheStats',
  session_count_owner: 'countOwner',
  session_cookie_header: 'cookieHeader',
  session_cookie_clear_header: 'cookieClearHeader',
  session_id_from_cookie_header: 'idFromCookieHeader',
  session_create_id: 'createId',
  session_remove_expired: 'removeExpired',
  session_remove_expired_count: 'removeExpiredCount',
  session_store_open: 'Store.fromFile',
  session_store_open_json: 'Store.fromJson',
  session_store: 'Store.named',
  session_store_close: 'Store#close',
  session_store_create: 'Store#create',
  session_store_create_ttl: 'Store#create',
  session_store_get: 'Store#get',
  session_store_update: 'Store#update',
  session_store_destroy: 'Store#destroy',
  session_store_remove_expired: 'Store#removeExpired',
  session_store_touch: 'Store#touch',
  session_store_ttl: 'Store#ttl',
  session_store_exists: 'Store#exists',
  session_store_count: 'Store#count',
  session_store_regenerate: 'Store#regenerate',
  session_store_get_versioned: 'Store#getVersioned',
  session_store_update_if: 'Store#updateIf',
  session_store_get_value: 'Store#getValue',
  session_store_set_value: 'Store#setValue',
  session_store_delete_value: 'Store#deleteValue',
  session_store_pop_value: 'Store#popValue',
  session_store_destroy_owner: 'Store#destroyOwner',
  session_store_list_owner: 'Store#listOwner',
  session_store_cache_stats: 'Store#cacheStats',
  session_store_count_owner: 'Store#countOwner',
  session_store_cookie_header: 'Store#cookieHeader',
  session_store_cookie_clear_header: 'Store#cookieClearHeader',
  session_store_id_from_cookie_header: 'Store#idFromCookieHeader',
  session_free: 'every returned string',
  session_init: 'init',
  session_init_json: 'initJson',
  session_shutdown: 'shutdown',
  session_last_error: 'lastError',
  session_last_error_code: 'lastErrorCode',
  session_version: 'version',
});

module.exports = {
  Store,
  init,
  initJson,
  shutdown,
  createId,
  version,
  removeExpired,
  removeExpiredCount,
  lastError,
  lastErrorCode,
  ...globalApi,
  ErrorCode,
  SessionError,
  NotFoundError,
  InvalidArgumentError,
  TooLargeError,
  UnavailableError,
  TimeoutError,
  ConfigError,
  InternalError,
  FullError,
  ConflictError,
  CorruptError,
  binding: Object.freeze({
    libraryPath: loaded.path,
    prototypes: PROTOTYPES,
    native: N,
    calls: CALLS,
  }),
};
