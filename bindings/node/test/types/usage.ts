// A typed user of the binding, checked by `npx tsc -p test/types` (never run): the
// declarations in index.d.ts must accept correct uses and reject wrong ones.

import * as session from "../../index.js";
import {
  Store,
  SessionError,
  NotFoundError,
  ConflictError,
  CorruptError,
  ErrorCode,
  type Versioned,
  type Text,
  type CacheStats,
} from "../../index.js";

function status(store: Store, cookie: string): number {
  const id: string | null = store.idFromCookieHeader(cookie);
  if (id === null) return 401;
  try {
    const data: string | null = store.get(id);
    return data === null ? 401 : 200;
  } catch (err) {
    if (err instanceof CorruptError) return 401;
    if (err instanceof SessionError && err.code === ErrorCode.STORAGE_UNAVAILABLE) return 503;
    throw err;
  }
}

function increment(store: Store, id: string): void {
  for (;;) {
    const current: Versioned | null = store.getVersioned(id);
    if (current === null) throw new NotFoundError("gone");
    const version: bigint = current.version;
    const counter = JSON.parse(current.data) as { n: number };
    try {
      store.updateIf(id, JSON.stringify({ n: counter.n + 1 }), version);
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const code: 9 = err.code;
      void code;
    }
  }
}

const store: Store = Store.fromJson('{"sessions": {"driver": "memory", "owner_key": "user_id"}}');
const other: Store = Store.fromFile("/etc/app/config.json", "api");
const global: Store = Store.named();
const named: Store = Store.named(Buffer.from("api"));
const bytes: Text = new Uint8Array([123, 125]);

const id: string = store.create('{"user_id":42}');
const id2: string = store.create(Buffer.from("{}"), 60);
store.update(id, bytes);
store.touch(id);
store.destroy(id2);
const fresh: string = store.regenerate(id);
const left: number | null = store.ttl(fresh);
const live: boolean = store.exists(fresh);
const n: number = store.count();
const removed: number = store.removeExpired();
store.setValue(fresh, "cart", JSON.stringify([1, 2]));
const value: string | null = store.getValue(fresh, "cart");
const popped: string | null = store.popValue(fresh, "flash");
store.deleteValue(fresh, "cart");
const ended: number = store.destroyOwner("42");
const ids: string[] = store.listOwner("42");
const stats: CacheStats = store.cacheStats();
const hits: number = stats.hits;
const channelUp: boolean = stats.channel_up;
const owned: number = store.countOwner("42");
const setCookie: string = store.cookieHeader(fresh);
const clear: string = store.cookieClearHeader();
const closed: boolean = store.closed;
store.close();
increment(other, id);
void [status(global, "a=b"), named, left, live, n, removed, value, popped, ended, ids, owned,
  setCookie, clear, closed, hits, channelUp];

session.init("/etc/app/config.json");
session.initJson('{"sessions": {"driver": "memory"}}');
const gid: string = session.create("{}", 120);
const gdata: string | null = session.get(gid);
session.update(gid, "{}");
session.touch(gid);
const gv: Versioned | null = session.getVersioned(gid);
if (gv) session.updateIf(gid, "{}", gv.version);
session.updateIf(gid, "{}", 3);
const gttl: number | null = session.ttl(gid);
const gexists: boolean = session.exists(gid);
const gcount: number = session.count();
const gnew: string = session.regenerate(gid);
session.setValue(gnew, "k", "1");
const gval: string | null = session.getValue(gnew, "k");
const gpop: string | null = session.popValue(gnew, "k");
session.deleteValue(gnew, "k");
const gended: number = session.destroyOwner("42");
const glist: string[] = session.listOwner("42");
const gstats: CacheStats = session.cacheStats();
const gowned: number = session.countOwner("42");
const gcookie: string = session.cookieHeader(gnew);
const gclear: string = session.cookieClearHeader();
const gfound: string | null = session.idFromCookieHeader("session_id=x");
session.destroy(gnew);
session.removeExpired();
const gremoved: number = session.removeExpiredCount();
const newId: string = session.createId();
const ver: string = session.version();
const message: string | null = session.lastError();
const code: number = session.lastErrorCode();
const loadedFrom: string = session.binding.libraryPath;
const prototypes: readonly string[] = session.binding.prototypes;
const made: SessionError = SessionError.fromCode(ErrorCode.TIMEOUT, "slow");
const errors: SessionError[] = [
  new session.NotFoundError("m"), new session.InvalidArgumentError("m"), new session.TooLargeError("m"),
  new session.UnavailableError("m"), new session.TimeoutError("m"), new session.ConfigError("m"),
  new session.InternalError("m"), new session.FullError("m"), new session.ConflictError("m"),
  new session.CorruptError("m"),
];
session.shutdown();
void [gdata, gttl, gexists, gcount, gval, gpop, gended, glist, gstats, gowned, gcookie, gclear,
  gfound, gremoved, newId, ver, message, code, loadedFrom, prototypes, made, errors];

// Wrong uses the declarations must reject.
// @ts-expect-error: no public constructor
new Store();
// @ts-expect-error: data is text, not an object
store.create({ user_id: 42 });
// @ts-expect-error: get may return null
const notNull: string = store.get(id);
// @ts-expect-error: versions are BigInts, not strings
store.updateIf(id, "{}", "3");
// @ts-expect-error: a version is a bigint
const wrongVersion: number = store.getVersioned(id)!.version;
// @ts-expect-error: ttl may be null
const wrongTtl: number = store.ttl(id);
// @ts-expect-error: listOwner gives an array
const wrongList: string = store.listOwner("42");
// @ts-expect-error: channel_up is a boolean
const wrongUp: number = store.cacheStats().channel_up;
// @ts-expect-error: ErrorCode is read-only
ErrorCode.OK = 1;
// @ts-expect-error: a ConflictError's code is 9
const wrongCode: 1 = new ConflictError("m").code;
// @ts-expect-error: update returns nothing
const wrongUpdate: boolean = store.update(id, "{}");
void [notNull, wrongVersion, wrongTtl, wrongList, wrongUp, wrongCode, wrongUpdate];
