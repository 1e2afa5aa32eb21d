// Types of the libsession Node.js binding (index.js). The C contract is
// include/session.h; these names are its functions without the `session_` or
// `session_store_` prefix, in camelCase.
//
// In: every text argument is a string (sent as UTF-8) or a Buffer/Uint8Array (sent as
// its bytes); neither may contain a NUL (InvalidArgumentError).
// Out: every text result is a string decoded from UTF-8; counts and seconds are
// numbers; versions are BigInts; listOwner and cacheStats parse the C call's JSON.
// Failures throw a SessionError subclass. A missing session is null from the get-like
// calls: get, getValue, popValue, getVersioned, ttl and idFromCookieHeader.

/** A text argument: a string (UTF-8) or bytes (a Buffer is a Uint8Array). */
export type Text = string | Uint8Array;

/** Data and version from getVersioned(), for updateIf(). */
export interface Versioned {
  data: string;
  version: bigint;
}

/**
 * cacheStats(): the counters of the Redis driver's local read cache (`local_cache`),
 * the JSON object of session_cache_stats as is: gets answered from memory (`hits`) and
 * sent to Redis (`misses`), sessions dropped because Redis reported a change
 * (`invalidations`), times the whole cache was emptied (`flushes`), what it holds now
 * (`entries`, `bytes`), and whether it is in use (`channel_up`).
 */
export interface CacheStats {
  hits: number;
  misses: number;
  invalidations: number;
  flushes: number;
  entries: number;
  bytes: number;
  channel_up: boolean;
}

/** The codes of session_last_error_code() (enum session_error of session.h). */
export declare const ErrorCode: {
  readonly OK: 0;
  readonly NOT_FOUND: 1;
  readonly INVALID_ARGUMENT: 2;
  readonly TOO_LARGE: 3;
  readonly STORAGE_UNAVAILABLE: 4;
  readonly TIMEOUT: 5;
  readonly CONFIG: 6;
  readonly INTERNAL: 7;
  readonly FULL: 8;
  readonly CONFLICT: 9;
  readonly CORRUPT: 10;
};
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every failure libsession reports; `code` is an ErrorCode value. */
export declare class SessionError extends Error {
  constructor(message: string, code?: number);
  readonly code: number;
  /** A new error of the subclass of `code` (a plain SessionError for an unknown code). */
  static fromCode(code: number, message: string): SessionError;
}
/** 1: no such session (never created, ended, destroyed, regenerated away). HTTP 401. */
export declare class NotFoundError extends SessionError {
  constructor(message: string);
  readonly code: 1;
}
/** 2: a malformed argument, e.g. an id that is not 64 lowercase hex digits. HTTP 401. */
export declare class InvalidArgumentError extends SessionError {
  constructor(message: string);
  readonly code: 2;
}
/** 3: data larger than max_data_size. */
export declare class TooLargeError extends SessionError {
  constructor(message: string);
  readonly code: 3;
}
/** 4: the store could not be reached or written. HTTP 503. */
export declare class UnavailableError extends SessionError {
  constructor(message: string);
  readonly code: 4;
}
/** 5: the store did not answer in time. HTTP 503. */
export declare class TimeoutError extends SessionError {
  constructor(message: string);
  readonly code: 5;
}
/** 6: a bad configuration, or no successful init; the message names the key. */
export declare class ConfigError extends SessionError {
  constructor(message: string);
  readonly code: 6;
}
/** 7: a bug in libsession. */
export declare class InternalError extends SessionError {
  constructor(message: string);
  readonly code: 7;
}
/** 8: the memory store holds max_sessions live sessions. */
export declare class FullError extends SessionError {
  constructor(message: string);
  readonly code: 8;
}
/** 9: updateIf: the session changed since getVersioned; read again and retry. */
export declare class ConflictError extends SessionError {
  constructor(message: string);
  readonly code: 9;
}
/** 10: the stored session was tampered with or does not decrypt. HTTP 401. */
export declare class CorruptError extends SessionError {
  constructor(message: string);
  readonly code: 10;
}

/** The calls shared by a Store and the global API (the global configuration's default store). */
export interface SessionCalls {
  /** A new session holding `data`; its id (64 hex chars). `ttlSeconds`: its lifetime, 1 to max_lifetime. */
  create(data: Text, ttlSeconds?: number | null): string;
  /** The session's data, or null when it is missing or ended. Moves the idle end. */
  get(id: Text): string | null;
  /** Replaces the data; throws NotFoundError when the session is missing. */
  update(id: Text, data: Text): void;
  /** Deletes the session; a success also when it was already gone. */
  destroy(id: Text): void;
  /** Gives the session a fresh id (same data, same absolute end); returns it. */
  regenerate(id: Text): string;
  /** Moves the idle end; throws NotFoundError when the session is missing. */
  touch(id: Text): void;
  /** Seconds left (rounded up), or null when the session is missing or ended. */
  ttl(id: Text): number | null;
  /** Whether the session is live; does not move the idle end. */
  exists(id: Text): boolean;
  /** The number of live sessions (a pass over the store). */
  count(): number;
  /** Member `key` of the session's JSON object as JSON text; null when absent or no session. */
  getValue(id: Text, key: Text): string | null;
  /** Sets member `key` to `jsonValue` (JSON text, e.g. JSON.stringify(value)), atomically. */
  setValue(id: Text, key: Text, jsonValue: Text): void;
  /** Removes member `key`, atomically; a success also when absent. */
  deleteValue(id: Text, key: Text): void;
  /** Reads and removes member `key` in one step (JSON text); null when absent or no session. */
  popValue(id: Text, key: Text): string | null;
  /** The data and its version, or null when the session is missing or ended. */
  getVersioned(id: Text): Versioned | null;
  /** Writes `data` only while the version is still `version`; else ConflictError. */
  updateIf(id: Text, data: Text, version: bigint | number): void;
  /** Ends every live session of `owner` (needs owner_key); returns how many. */
  destroyOwner(owner: Text): number;
  /** Ids of the owner's live sessions, the one that ends first first. */
  listOwner(owner: Text): string[];
  /** The Redis local_cache's counters; InvalidArgumentError for a store without one. */
  cacheStats(): CacheStats;
  /** How many live sessions the owner has. */
  countOwner(owner: Text): number;
  /** A Set-Cookie value giving the browser session `id` (no lookup). */
  cookieHeader(id: Text): string;
  /** A Set-Cookie value that deletes the session cookie. */
  cookieClearHeader(): string;
  /** The session id in a Cookie: header value, or null when it holds none. */
  idFromCookieHeader(cookieHeader: Text): string | null;
}

/** A handle on one session store (session_store_t). Close it when done. */
export declare class Store implements SessionCalls {
  private constructor();
  /** session_store_open_json: store `name` (the default store when omitted) of JSON config text. */
  static fromJson(json: Text, name?: Text | null): Store;
  /** session_store_open: store `name` of the config.json file at `path`. */
  static fromFile(path: Text, name?: Text | null): Store;
  /** session_store: a handle on store `name` of the global configuration (default store when omitted). */
  static named(name?: Text | null): Store;
  /** True once close() was called. */
  readonly closed: boolean;
  /** session_store_close; idempotent. Every other method throws InvalidArgumentError afterwards. */
  close(): void;
  /** Deletes the ended sessions; returns how many (0 on Redis, which expires keys itself). */
  removeExpired(): number;

  create(data: Text, ttlSeconds?: number | null): string;
  get(id: Text): string | null;
  update(id: Text, data: Text): void;
  destroy(id: Text): void;
  regenerate(id: Text): string;
  touch(id: Text): void;
  ttl(id: Text): number | null;
  exists(id: Text): boolean;
  count(): number;
  getValue(id: Text, key: Text): string | null;
  setValue(id: Text, key: Text, jsonValue: Text): void;
  deleteValue(id: Text, key: Text): void;
  popValue(id: Text, key: Text): string | null;
  getVersioned(id: Text): Versioned | null;
  updateIf(id: Text, data: Text, version: bigint | number): void;
  destroyOwner(owner: Text): number;
  listOwner(owner: Text): string[];
  cacheStats(): CacheStats;
  countOwner(owner: Text): number;
  cookieHeader(id: Text): string;
  cookieClearHeader(): string;
  idFromCookieHeader(cookieHeader: Text): string | null;
}

/** session_init: configures the global API from a config.json file. */
export declare function init(configPath: Text): void;
/** session_init_json: configures the global API from JSON text. */
export declare function initJson(json: Text): void;
/** session_shutdown: lets go of the global stores; a later call configures again. */
export declare function shutdown(): void;
/** session_create_id: 64 lowercase hex characters from the OS CSPRNG; stores nothing. */
export declare function createId(): string;
/** session_version: the library's version, "MAJOR.MINOR.PATCH". */
export declare function version(): string;
/** session_remove_expired: deletes the ended sessions of the default store. */
export declare function removeExpired(): void;
/** session_remove_expired_count: the same, and returns how many it deleted. */
export declare function removeExpiredCount(): number;
/** session_last_error: the calling thread's last failure message, null after a success. */
export declare function lastError(): string | null;
/** session_last_error_code: the calling thread's last ErrorCode, 0 after a success. */
export declare function lastErrorCode(): number;

export declare function create(data: Text, ttlSeconds?: number | null): string;
export declare function get(id: Text): string | null;
export declare function update(id: Text, data: Text): void;
export declare function destroy(id: Text): void;
export declare function regenerate(id: Text): string;
export declare function touch(id: Text): void;
export declare function ttl(id: Text): number | null;
export declare function exists(id: Text): boolean;
export declare function count(): number;
export declare function getValue(id: Text, key: Text): string | null;
export declare function setValue(id: Text, key: Text, jsonValue: Text): void;
export declare function deleteValue(id: Text, key: Text): void;
export declare function popValue(id: Text, key: Text): string | null;
export declare function getVersioned(id: Text): Versioned | null;
export declare function updateIf(id: Text, data: Text, version: bigint | number): void;
export declare function destroyOwner(owner: Text): number;
export declare function listOwner(owner: Text): string[];
export declare function cacheStats(): CacheStats;
export declare function countOwner(owner: Text): number;
export declare function cookieHeader(id: Text): string;
export declare function cookieClearHeader(): string;
export declare function idFromCookieHeader(cookieHeader: Text): string | null;

/** What was loaded and how each C function is bound (for tests and diagnostics). */
export declare const binding: {
  /** LIBSESSION_LIBRARY, or "libsession.so.0" when loaded by soname. */
  readonly libraryPath: string;
  /** The koffi prototype of every function of session.h. */
  readonly prototypes: readonly string[];
  /** The raw koffi functions by C name: returned strings are BigInt pointers to free. */
  readonly native: { readonly [cName: string]: (...args: any[]) => any };
  /** For each C function, the JavaScript call that reaches it ("get", "Store#get", ...). */
  readonly calls: { readonly [cName: string]: string };
};
