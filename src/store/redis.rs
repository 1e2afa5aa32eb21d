//! The Redis driver: sessions shared by every server that reaches one Redis.
//!
//! A session is a hash under `key_prefix` + id, with the key's TTL set to the
//! session's end (the earlier of its absolute and idle ends):
//!
//! | field | meaning |
//! |---|---|
//! | `d` | the data, raw bytes |
//! | `a` | the absolute end, ms since 1970 (the writer's clock) |
//! | `n` | the same end in ns, which orders an owner's sessions by age |
//! | `v` | the version, grows with every change of the data |
//! | `r` | present on the old id of a regenerated session during its grace: read-only |
//!
//! Commands:
//! - get: `HGET key d` (with an idle timeout, `HMGET` and `PTTL` in one round trip;
//!   once more than 1% of the idle timeout has passed, a script moves the TTL);
//! - create, update, touch, regenerate: one Lua script each, atomic on the server.
//!   Create writes only if the key does not exist; update only if it exists (never
//!   bringing back an ended session) and keeps the TTL unless the idle end moves;
//!   regenerate `RENAME`s the key (or copies it and marks the old one read-only
//!   during the grace);
//! - destroy: `DEL`; ttl: `PTTL`; exists: `EXISTS`;
//! - count: `SCAN` over `key_prefix` followed by 64 hex digits, 1,000 keys per
//!   round trip: O(N) in the keys of the database, so for dashboards, not per request;
//! - remove_expired: Redis expires sessions itself; it prunes the owner index.
//!
//! Owner index: a sorted set under `key_prefix` + `owner:` + the owner's tag, each
//! member an id scored with a bound on its session's end (ms). A script adds a
//! member (keeping the higher score), drops members past their bound and keeps the
//! set's own TTL at its latest bound, so an owner who never comes back leaves
//! nothing behind. It is written before the session (create, or a write that
//! changes the owner), so a crash between the two leaves a stale member, never an
//! unindexed session; readers check every member against its session.
//!
//! With `sentinel`, the server is the primary the sentinels name (checked with
//! `ROLE`); a connection that fails or meets `READONLY` makes the store forget it
//! and ask the sentinels again at its next connection, so a failover needs no
//! re-init.
//!
//! With `cluster`, each pooled connection is a Redis Cluster connection that
//! routes every command by its key's slot and follows MOVED and ASK. Every command
//! and script touches one key; where two keys change together the order of the
//! writes keeps it safe when cut short (regenerate: mark the old key read-only,
//! write the new one, delete the old; the owner index first). Pipelines are not
//! available there: the few that read one key become scripts, the ones over many
//! keys go key by key, and SCAN runs on every primary.
//!
//! With `local_cache`, gets are answered from this process's memory while Redis
//! tracks the prefix for it (`CLIENT TRACKING` in broadcast mode); the cache, its
//! channel and its listener thread are in `redis/local_cache.rs`. This file reads
//! through it (`cached_get`), fills it from `read`, drops sessions
//! after its own writes (`forget_on_return`) and probes that new pooled
//! connections reach the server the channel watches.
//!
//! Connections come from a small pool: at most `pool_size` open, each command bounded
//! by `command_timeout` (a frozen server gives a timeout, never a hang). The store
//! connects and authenticates once when it opens, unless `lazy_connect`. A
//! connection that fails is dropped, never reused; after a server restart the first
//! call on a stale pooled connection retries once on a fresh one, so calls succeed
//! again without re-init. A forked child never touches the sockets it inherited: the
//! pool notices the new pid and starts empty.

mod local_cache;

use super::{now_ns, CacheStats, Change, Expiry, Outcome, Peek, Peeked, Store};
use crate::config::{wrong_type, Root, Section};
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use crate::seal::OwnerTag;
use local_cache::{mono_ns, LocalCache};
pub use local_cache::{CacheConfig, ENTRY_OVERHEAD};
use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Script};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The keys of `sessions` the Redis driver owns.
pub const KEYS: &[&str] = super::REDIS_KEYS;

/// Default Redis timeouts (connect, and each command).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default most Redis connections open at once.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Default key prefix of the Redis driver.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

/// Where the Redis driver connects, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub server: RedisServer,
    /// Prepended to the session id to make the key (default `session:`).
    pub key_prefix: String,
    pub connect_timeout: Duration,
    /// Longest wait for one command's answer (and for a free pooled connection).
    pub command_timeout: Duration,
    /// Most connections open at once.
    pub pool_size: usize,
    /// PEM file of the certificate authorities trusted for `rediss://` (default:
    /// the system's trust store).
    pub tls_ca_file: Option<PathBuf>,
    /// Connect at the first call instead of when the store opens.
    pub lazy_connect: bool,
    /// `local_cache`: keep the sessions read in this process's memory.
    pub local_cache: Option<CacheConfig>,
}

/// The Redis server to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisServer {
    /// `sessions.url`: `redis://`, `rediss://` (TLS) or `unix://`; it carries the
    /// database, user and password itself.
    Url(Secret),
    /// A primary found through Redis Sentinel: `sessions.sentinel`, or the
    /// `sentinel` of an entry of `databases.redis`.
    Sentinel(SentinelConfig),
    /// Redis Cluster: `sessions.cluster`, or the `cluster` of an entry of
    /// `databases.redis`, with that entry's `user` and `password`.
    Cluster {
        /// Seed nodes: `"host:port"` or `redis://` URLs.
        nodes: Vec<Secret>,
        user: Option<String>,
        password: Option<Secret>,
    },
    /// An entry of `databases.redis`.
    Entry {
        host_id: String,
        ip: String,
        port: u16,
        dbindex: i64,
        user: Option<String>,
        password: Option<Secret>,
    },
}

/// `"sentinel": {"master_name": ..., "nodes": ["host:port", ...]}`: the sentinels
/// to ask, with their own optional `sentinel_user` / `sentinel_password`, and the
/// `user`, `password` and `dbindex` of the primary they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    pub master_name: String,
    pub nodes: Vec<(String, u16)>,
    pub sentinel_user: Option<String>,
    pub sentinel_password: Option<Secret>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub dbindex: i64,
}

/// Reads the `sentinel` object at `section.key`.
fn sentinel(section: &Section, key: &str) -> Result<Option<SentinelConfig>> {
    let Some(value) = section.get(key) else {
        return Ok(None);
    };
    let path = section.key_path(key);
    let Value::Object(map) = value else {
        return Err(wrong_type(&path, "an object", value));
    };
    let object = Section::new(map, &path);
    let master_name = object
        .string("master_name")?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            Error::config(format!(
                "{path}.master_name is required: the name the sentinels monitor the primary under"
            ))
        })?
        .to_string();
    let nodes = match object.get("nodes") {
        Some(Value::Array(nodes)) if !nodes.is_empty() => nodes
            .iter()
            .map(|node| host_port(node, &format!("{path}.nodes")))
            .collect::<Result<Vec<_>>>()?,
        Some(Value::Array(_)) | None => {
            return Err(Error::config(format!(
                "{path}.nodes is required: a non-empty array of \"host:port\" of the sentinels"
            )))
        }
        Some(other) => return Err(wrong_type(&format!("{path}.nodes"), "an array", other)),
    };
    let config = SentinelConfig {
        master_name,
        nodes,
        sentinel_user: object.string("sentinel_user")?.map(str::to_string),
        sentinel_password: object
            .string("sentinel_password")?
            .map(|p| Secret(p.to_string())),
        user: object.string("user")?.map(str::to_string),
        password: object.string("password")?.map(|p| Secret(p.to_string())),
        dbindex: object
            .u64_in("dbindex", 0..=1 << 31, "a non-negative integer")?
            .unwrap_or(0) as i64,
    };
    object.finish("redis")?;
    Ok(Some(config))
}

/// The seed nodes at `section.key`: `["host:port" or "redis://...", ...]`.
fn cluster(section: &Section, key: &str) -> Result<Option<Vec<Secret>>> {
    let Some(value) = section.get(key) else {
        return Ok(None);
    };
    let path = section.key_path(key);
    let nodes = match value {
        Value::Array(nodes) if !nodes.is_empty() => nodes,
        Value::Array(_) => {
            return Err(Error::config(format!(
                "{path} is empty: name the cluster's seed nodes, \"host:port\""
            )))
        }
        other => {
            return Err(wrong_type(
                &path,
                "an array of \"host:port\" strings",
                other,
            ))
        }
    };
    nodes
        .iter()
        .map(|node| match node.as_str() {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Ok(Secret(url.to_string()))
            }
            Some(_) => {
                host_port(node, &path).map(|(host, port)| Secret(format!("redis://{host}:{port}")))
            }
            None => Err(wrong_type(&path, "an array of \"host:port\" strings", node)),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `"host:port"` (an IPv6 host in brackets: `"[::1]:26379"`).
fn host_port(node: &Value, path: &str) -> Result<(String, u16)> {
    let text = node
        .as_str()
        .ok_or_else(|| wrong_type(path, "an array of \"host:port\" strings", node))?;
    let parsed = text.rsplit_once(':').and_then(|(host, port)| {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
        (!host.is_empty()).then(|| (host.to_string(), port))
    });
    parsed.ok_or_else(|| Error::config(format!("{path}: {text:?} is not \"host:port\"")))
}

/// A string that may hold a password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads the Redis driver's keys: `url`, or `storage_name`/`host_id` naming an
/// entry of `databases.redis`.
pub fn parse(section: &Section, root: &Root) -> Result<RedisConfig> {
    let sentinel = sentinel(section, "sentinel")?;
    let cluster = cluster(section, "cluster")?;
    let named = [
        section.string("url")?.is_some(),
        sentinel.is_some(),
        cluster.is_some(),
        section.string("host_id")?.is_some() || section.string("storage_name")?.is_some(),
    ];
    if named.iter().filter(|n| **n).count() > 1 {
        return Err(Error::config(format!(
            "{}, {}, {} and storage_name/host_id each name a server: keep one",
            section.key_path("url"),
            section.key_path("sentinel"),
            section.key_path("cluster")
        )));
    }
    let server = match (section.string("url")?, sentinel) {
        (None, None) if cluster.is_some() => RedisServer::Cluster {
            nodes: cluster.unwrap_or_default(),
            user: None,
            password: None,
        },
        (Some(_), Some(_)) => unreachable!("refused above"),
        (None, Some(sentinel)) => RedisServer::Sentinel(sentinel),
        (Some(url), None) => {
            let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
            if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(Error::config(format!(
                    "{} must start with redis://, rediss:// (TLS) or unix://",
                    section.key_path("url")
                )));
            }
            RedisServer::Url(Secret(url.to_string()))
        }
        (None, None) => entry(section, root)?,
    };
    let key_prefix = section
        .string("key_prefix")?
        .unwrap_or(DEFAULT_KEY_PREFIX)
        .to_string();
    if key_prefix.len() > 256 {
        return Err(Error::config(format!(
            "{} is longer than 256 bytes",
            section.key_path("key_prefix")
        )));
    }
    let pool_size = section
        .u64_in("pool_size", 1..=1024, "an integer from 1 to 1024")?
        .map_or(DEFAULT_POOL_SIZE, |n| n as usize);
    let tls_ca_file = section.string("tls_ca_file")?.map(PathBuf::from);
    let tls = match &server {
        RedisServer::Url(url) => url.0.starts_with("rediss://"),
        RedisServer::Cluster { nodes, .. } => nodes.iter().all(|n| n.0.starts_with("rediss://")),
        _ => false,
    };
    if matches!(&server, RedisServer::Cluster { .. }) && key_prefix.contains('{') {
        return Err(Error::config(format!(
            "{} contains '{{': on a cluster a hash tag would put every session in one slot",
            section.key_path("key_prefix")
        )));
    }
    let local_cache = local_cache(section)?;
    if local_cache.is_some() && matches!(&server, RedisServer::Cluster { .. }) {
        return Err(Error::config(format!(
            "{} is not available with {}: use a single server or Sentinel",
            section.key_path("local_cache"),
            section.key_path("cluster")
        )));
    }
    if tls_ca_file.is_some() && !tls {
        return Err(Error::config(format!(
            "{} needs a TLS server: set {} (or every seed of {}) to a rediss:// URL",
            section.key_path("tls_ca_file"),
            section.key_path("url"),
            section.key_path("cluster")
        )));
    }
    Ok(RedisConfig {
        server,
        key_prefix,
        connect_timeout: section
            .millis("connect_timeout_ms")?
            .unwrap_or(DEFAULT_TIMEOUT),
        command_timeout: section
            .millis("command_timeout_ms")?
            .unwrap_or(DEFAULT_TIMEOUT),
        pool_size,
        tls_ca_file,
        lazy_connect: section.bool("lazy_connect")?.unwrap_or(false),
        local_cache,
    })
}

/// `"local_cache": {"max_entries": N, "max_bytes": N, "max_stale_ms": N}` (each
/// optional; `{}` for the defaults), or `false` for none.
fn local_cache(section: &Section) -> Result<Option<CacheConfig>> {
    let Some(value) = section.get("local_cache") else {
        return Ok(None);
    };
    let path = section.key_path("local_cache");
    let map = match value {
        Value::Bool(false) => return Ok(None),
        Value::Object(map) => map,
        other => return Err(wrong_type(&path, "an object (or false)", other)),
    };
    let object = Section::new(map, &path);
    let config = CacheConfig {
        max_entries: object
            .u64_in(
                "max_entries",
                1..=100_000_000,
                "an integer from 1 to 100000000",
            )?
            .map_or(local_cache::DEFAULT_MAX_ENTRIES, |n| n as usize),
        max_bytes: object
            .u64_in("max_bytes", 4096..=1 << 40, "an integer from 4096 to 2^40")?
            .map_or(local_cache::DEFAULT_MAX_BYTES, |n| n as usize),
        max_stale: match object.u64_in("max_stale_ms", 4..=60_000, "an integer from 4 to 60000")? {
            Some(ms) => Duration::from_millis(ms),
            None => local_cache::DEFAULT_MAX_STALE,
        },
    };
    object.finish("redis")?;
    Ok(Some(config))
}

/// The entry of `databases.redis` that `host_id` (or `storage_name`) names.
fn entry(section: &Section, root: &Root) -> Result<RedisServer> {
    let host_id = match (section.string("host_id")?, section.string("storage_name")?) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => {
            return Err(Error::config(format!(
                "the redis driver needs {} (or host_id) naming an entry of databases.redis, or {}",
                section.key_path("storage_name"),
                section.key_path("url")
            )))
        }
    };
    let servers = root
        .get("databases")
        .and_then(|d| d.get("redis"))
        .ok_or_else(|| {
            Error::config(format!(
                "{} {host_id:?}: there is no databases.redis list",
                section.key_path("storage_name")
            ))
        })?;
    let servers = servers
        .as_array()
        .ok_or_else(|| wrong_type("databases.redis", "an array", servers))?;
    let entry = servers
        .iter()
        .find(|s| s.get("host_id").and_then(Value::as_str) == Some(host_id))
        .ok_or_else(|| {
            Error::config(format!(
                "{} {host_id:?} names no entry of databases.redis",
                section.key_path("storage_name")
            ))
        })?;
    let Value::Object(entry) = entry else {
        return Err(wrong_type("databases.redis[]", "an object", entry));
    };
    let entry = Section::new(entry, &format!("databases.redis[{host_id}]"));
    let _ = entry.string("host_id")?;
    if let Some(nodes) = cluster(&entry, "cluster")? {
        if entry.get("ip").is_some()
            || entry.get("port").is_some()
            || entry.get("sentinel").is_some()
        {
            return Err(Error::config(format!(
                "{} and ip/port/sentinel each name a server: keep one",
                entry.key_path("cluster")
            )));
        }
        let user = entry.string("user")?.map(str::to_string);
        let password = entry.string("password")?.map(|p| Secret(p.to_string()));
        if entry
            .get("dbindex")
            .is_some_and(|db| db.as_u64() != Some(0))
        {
            return Err(Error::config(format!(
                "{}: Redis Cluster has only database 0",
                entry.key_path("dbindex")
            )));
        }
        entry.finish("redis")?;
        return Ok(RedisServer::Cluster {
            nodes,
            user,
            password,
        });
    }
    if let Some(mut sentinel) = sentinel(&entry, "sentinel")? {
        if entry.get("ip").is_some() || entry.get("port").is_some() {
            return Err(Error::config(format!(
                "{} and ip/port both name a server: keep one",
                entry.key_path("sentinel")
            )));
        }
        // The entry's own credentials and database are the primary's: given in
        // one place only.
        let inner = sentinel.user.is_some() || sentinel.password.is_some() || sentinel.dbindex != 0;
        let outer = ["user", "password", "dbindex"]
            .iter()
            .any(|k| entry.get(k).is_some());
        if inner && outer {
            return Err(Error::config(format!(
                "{}: give the primary's user, password and dbindex either in the entry or in its sentinel object, not both",
                entry.key_path("sentinel")
            )));
        }
        if let Some(user) = entry.string("user")? {
            sentinel.user = Some(user.to_string());
        }
        if let Some(password) = entry.string("password")? {
            sentinel.password = Some(Secret(password.to_string()));
        }
        if let Some(db) = entry.u64_in("dbindex", 0..=1 << 31, "a non-negative integer")? {
            sentinel.dbindex = db as i64;
        }
        entry.finish("redis")?;
        return Ok(RedisServer::Sentinel(sentinel));
    }
    let ip = entry.string("ip")?.unwrap_or("127.0.0.1").to_string();
    let port = entry
        .u64_in("port", 1..=65535, "an integer from 1 to 65535")?
        .unwrap_or(6379) as u16;
    let dbindex = entry
        .u64_in("dbindex", 0..=1 << 31, "a non-negative integer")?
        .unwrap_or(0) as i64;
    let user = entry.string("user")?.map(str::to_string);
    let password = entry.string("password")?.map(|p| Secret(p.to_string()));
    entry.finish("redis")?;
    Ok(RedisServer::Entry {
        host_id: host_id.to_string(),
        ip,
        port,
        dbindex,
        user,
        password,
    })
}

pub struct RedisStore {
    net: Arc<Net>,
    key_prefix: Vec<u8>,
    pool_size: usize,
    pool: Mutex<Pool>,
    released: Condvar,
    expiry: Expiry,
    /// `local_cache`, shared with its listener thread.
    cache: Option<Arc<LocalCache>>,
}

/// Where connections go.
enum Target {
    /// One server.
    Fixed(Client),
    /// The primary that Redis Sentinel names, asked again after a failure.
    Sentinel(SentinelTarget),
    /// Redis Cluster: each connection follows MOVED and ASK to the node that
    /// holds a key's slot.
    Cluster {
        client: redis::cluster::ClusterClient,
        /// For the direct connections to each primary that SCAN needs: the
        /// credentials of the entry or of the first seed URL, and with `rediss://`
        /// seeds TLS (with the CA of `tls_ca_file`, if any).
        user: Option<String>,
        password: Option<Secret>,
        tls: Option<Option<Vec<u8>>>,
    },
}

/// A pooled connection: to one server (with its tag, see [`Conn::server`]), or
/// to a whole cluster.
enum Conn {
    Node(redis::Connection, u64),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Conn::Node(conn, _) => conn,
            Conn::Cluster(conn) => conn.as_mut(),
        }
    }

    /// Which server the connection reaches: 0 for the one server of a fixed
    /// address, a hash of the primary's address under Sentinel. A read fills
    /// the local cache only through the server its channel watches.
    fn server(&self) -> u64 {
        match self {
            Conn::Node(_, server) => *server,
            Conn::Cluster(_) => 0,
        }
    }
}

/// The tag of a primary's address (see [`Conn::server`]).
fn server_tag(addr: &(String, u16)) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut hasher);
    hasher.finish() | 1
}

struct SentinelTarget {
    config: SentinelConfig,
    /// The primary in use (address and client), `None` until the sentinels are
    /// asked, and again after a connection to it failed or found a replica.
    primary: Mutex<Option<((String, u16), Client)>>,
    /// When the sentinels are next asked whether the primary is still the same
    /// (ns since 1970): a planned failover leaves the old primary writable for a
    /// while, so a working connection is no proof.
    next_check_ns: std::sync::atomic::AtomicU64,
}

/// How often a Sentinel store asks the sentinels which server is the primary.
const SENTINEL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl SentinelTarget {
    fn forget(&self) {
        *self.primary.lock() = None;
    }
}

struct Pool {
    /// The process the connections belong to.
    pid: u32,
    /// Grows when the connections in existence must not be reused (the primary
    /// changed, or one of them turned out dead): a lent one of an older
    /// generation is closed when given back.
    generation: u64,
    idle: Vec<Conn>,
    /// Connections in existence: idle, lent out, or being made.
    open: usize,
}

impl Pool {
    /// Makes the pool belong to process `pid`. In a forked child the inherited
    /// sockets belong to the parent: they are leaked rather than closed (closing
    /// could disturb the parent's protocol) and the pool starts empty.
    fn adopt(&mut self, pid: u32) {
        if self.pid != pid {
            for conn in self.idle.drain(..) {
                std::mem::forget(conn);
            }
            self.pid = pid;
            self.open = 0;
        }
    }
}

/// See [`RedisStore::forget_on_return`].
struct ForgetOnReturn<'a>(Option<&'a LocalCache>, &'a [SessionId]);

impl Drop for ForgetOnReturn<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.0 {
            self.1.iter().for_each(|id| cache.forget(id));
        }
    }
}

/// A connection lent by the pool; given back (or dropped if broken) on drop.
struct Lent<'a> {
    store: &'a RedisStore,
    generation: u64,
    conn: Option<Conn>,
    reused: bool,
    healthy: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut pool = self.store.pool.lock();
        // A lent connection is given back in the process that borrowed it: fork()
        // is never called inside a call, and only the forking thread lives on.
        match self.conn.take() {
            Some(conn) if self.healthy && self.generation == pool.generation => {
                pool.idle.push(conn)
            }
            // Broken, or never made (the connect failed): free its slot.
            _ => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.store.released.notify_one();
    }
}

/// A connection info for `host:port` with optional credentials and a database.
fn tcp_info(
    host: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&Secret>,
    db: i64,
) -> Result<ConnectionInfo> {
    let mut redis = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(user) = user {
        redis = redis.set_username(user);
    }
    if let Some(password) = password {
        redis = redis.set_password(&password.0);
    }
    Ok(ConnectionAddr::Tcp(host.to_string(), port)
        .into_connection_info()
        .map_err(|err| Error::config(format!("redis {host}:{port}: {}", kind_only(&err))))?
        .set_redis_settings(redis)
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
}

fn connection_info(config: &RedisConfig) -> Result<ConnectionInfo> {
    match &config.server {
        RedisServer::Sentinel(_) | RedisServer::Cluster { .. } => Err(Error::config(
            "a sentinel or a cluster has no fixed address",
        )),
        RedisServer::Url(url) => url.0.as_str().into_connection_info().map_err(|err| {
            Error::config(format!(
                "sessions.url is not a usable Redis URL ({})",
                kind_only(&err)
            ))
        }),
        RedisServer::Entry {
            ip,
            port,
            dbindex,
            user,
            password,
            ..
        } => {
            let mut redis = redis::RedisConnectionInfo::default().set_db(*dbindex);
            if let Some(user) = user {
                redis = redis.set_username(user);
            }
            if let Some(password) = password {
                redis = redis.set_password(&password.0);
            }
            Ok(ConnectionAddr::Tcp(ip.clone(), *port)
                .into_connection_info()
                .map_err(|err| Error::config(format!("databases.redis: {err}")))?
                .set_redis_settings(redis))
        }
    }
}

/// The seed nodes for messages: the first one's `host:port`, never credentials.
fn cluster_name(nodes: &[Secret]) -> String {
    let first = nodes.first().map_or("", |node| {
        let rest = node
            .0
            .split_once("://")
            .map_or(node.0.as_str(), |(_, rest)| rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        rest.split('/').next().unwrap_or_default()
    });
    match nodes.len() {
        0 | 1 => format!("(seed {first})"),
        n => format!("(seeds {first} and {} more)", n - 1),
    }
}

/// A Redis error without its details, which may quote the URL and its password.
fn kind_only(err: &redis::RedisError) -> String {
    format!("{:?}", err.kind())
}

impl RedisStore {
    /// Prepares the store and, unless `lazy_connect`, connects and authenticates
    /// once, so that a wrong password or an unreachable server fails here.
    pub fn open(config: &RedisConfig, expiry: Expiry) -> Result<RedisStore> {
        let (target, name) = match &config.server {
            RedisServer::Sentinel(sentinel) => {
                if config.tls_ca_file.is_some() {
                    return Err(Error::config(
                        "sessions.tls_ca_file: TLS through Redis Sentinel is not supported; use a rediss:// url",
                    ));
                }
                let name = format!(
                    "redis sentinel {:?} db {}",
                    sentinel.master_name, sentinel.dbindex
                );
                let target = Target::Sentinel(SentinelTarget {
                    config: sentinel.clone(),
                    primary: Mutex::new(None),
                    next_check_ns: std::sync::atomic::AtomicU64::new(0),
                });
                (target, name)
            }
            RedisServer::Cluster {
                nodes,
                user,
                password,
            } => {
                let mut builder =
                    redis::cluster::ClusterClient::builder(nodes.iter().map(|node| node.0.clone()))
                        .connection_timeout(config.connect_timeout)
                        .response_timeout(config.command_timeout)
                        .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
                        // MOVED, ASK and TRYAGAIN are followed (a few times, briefly);
                        // a node that is down fails the call, within its timeouts.
                        .retries(3)
                        .min_retry_wait(10)
                        .max_retry_wait(100);
                if let Some(user) = user {
                    builder = builder.username(user);
                }
                if let Some(password) = password {
                    builder = builder.password(&password.0);
                }
                let mut ca = None;
                if let Some(path) = &config.tls_ca_file {
                    let pem = std::fs::read(path).map_err(|err| {
                        Error::config(format!("sessions.tls_ca_file {}: {err}", path.display()))
                    })?;
                    builder = builder.certs(redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.clone()),
                    });
                    ca = Some(pem);
                }
                let tls = nodes
                    .iter()
                    .all(|n| n.0.starts_with("rediss://"))
                    .then_some(ca);
                // Credentials given in the first seed URL serve SCAN too.
                let seed = nodes
                    .first()
                    .and_then(|n| n.0.as_str().into_connection_info().ok());
                let seed_user = seed
                    .as_ref()
                    .and_then(|i| i.redis_settings().username().map(str::to_string));
                let seed_password = seed
                    .as_ref()
                    .and_then(|i| i.redis_settings().password().map(|p| Secret(p.to_string())));
                let name = format!("redis cluster {}", cluster_name(nodes));
                let client = builder
                    .build()
                    .map_err(|err| Error::config(format!("{name}: {}", kind_only(&err))))?;
                let target = Target::Cluster {
                    client,
                    user: user.clone().or(seed_user),
                    password: password.clone().or(seed_password),
                    tls,
                };
                (target, name)
            }
            _ => Self::fixed(config)?,
        };
        let store = RedisStore {
            net: Arc::new(Net {
                target,
                name,
                connect_timeout: config.connect_timeout,
                command_timeout: config.command_timeout,
            }),
            key_prefix: config.key_prefix.as_bytes().to_vec(),
            pool_size: config.pool_size,
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                generation: 0,
                idle: Vec::new(),
                open: 0,
            }),
            released: Condvar::new(),
            expiry,
            cache: config
                .local_cache
                .map(|cache| Arc::new(LocalCache::new(cache, config.key_prefix.as_bytes()))),
        };
        if !config.lazy_connect {
            // One PING: a server that wants a password we lack says so now. The
            // connection stays in the pool.
            // (ECHO, not PING: a cluster sends PING to every primary and needs
            // them all; ECHO goes to one node, so a store opens with one down.)
            store.run::<String>("PING", |c| redis::cmd("ECHO").arg("PONG").query(c))?;
            // And the cache's channel: a server that refuses tracking says so now.
            if let Some(cache) = &store.cache {
                store.open_channel_now(cache)?;
            }
        }
        Ok(store)
    }

    /// The client and name of a store on one server (`url` or an entry).
    fn fixed(config: &RedisConfig) -> Result<(Target, String)> {
        let info = connection_info(config)?;
        let db = info.redis_settings().db();
        let name = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis {host}:{port} db {db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("redis TLS {host}:{port} db {db}"),
            ConnectionAddr::Unix(path) => format!("redis unix:{} db {db}", path.display()),
            _ => format!("redis db {db}"),
        };
        // Requests are small and answered at once: never let Nagle hold one back.
        let info = info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = match &config.tls_ca_file {
            None => Client::open(info),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|err| {
                    Error::config(format!("sessions.tls_ca_file {}: {err}", path.display()))
                })?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(info, certificates)
            }
        }
        .map_err(|err| Error::config(format!("{name}: {}", kind_only(&err))))?;
        Ok((Target::Fixed(client), name))
    }

    /// Opens the local cache's invalidation channel now, at init: a server that
    /// refuses tracking fails the init. The listener runs in a thread of its own.
    fn open_channel_now(&self, cache: &Arc<LocalCache>) -> Result<()> {
        let Some(epoch) = cache.should_open(mono_ns()) else {
            return Ok(());
        };
        let since = mono_ns();
        let (conns, server) = match self.net.subscribe_channel(&self.key_prefix) {
            Ok(opened) => opened,
            Err(err) => {
                cache.open_failed(epoch, mono_ns());
                return Err(err);
            }
        };
        if !cache.opened(epoch, server, &conns.mark, since) {
            return Ok(());
        }
        let (net, listener) = (Arc::clone(&self.net), Arc::clone(cache));
        self.spawn_channel_thread(cache, epoch, move || {
            local_cache::listen(&listener, conns, epoch, net.command_timeout)
        })
    }

    /// Opens the local cache's invalidation channel in the background, if none
    /// is open or being opened and the wait after a failed try is over: a get
    /// never waits for it, and goes to Redis until the channel is up.
    fn open_channel_later(&self, cache: &Arc<LocalCache>) {
        let Some(epoch) = cache.should_open(mono_ns()) else {
            return;
        };
        let (net, listener) = (Arc::clone(&self.net), Arc::clone(cache));
        let prefix = self.key_prefix.clone();
        let _ = self.spawn_channel_thread(cache, epoch, move || {
            let since = mono_ns();
            match net.subscribe_channel(&prefix) {
                Ok((conns, server)) => {
                    if listener.opened(epoch, server, &conns.mark, since) {
                        local_cache::listen(&listener, conns, epoch, net.command_timeout)
                    }
                }
                // Reported by the counters (`channel_up`); tried again later.
                Err(_) => listener.open_failed(epoch, mono_ns()),
            }
        });
    }

    /// Runs `run` in a thread of the cache's channel, with the asynchronous
    /// signals held off (the application's handlers run in its own threads; an
    /// interrupted read would look like a lost channel).
    fn spawn_channel_thread(
        &self,
        cache: &Arc<LocalCache>,
        epoch: u64,
        run: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        cache
            .spawn(epoch, move || {
                let _held = SignalsHeld::new();
                run()
            })
            .map_err(|err| {
                cache.open_failed(epoch, mono_ns());
                Error::new(
                    SessionError::StorageUnavailable,
                    format!(
                        "{}: local_cache: cannot start its listener thread: {err}",
                        self.net.name
                    ),
                )
            })
    }

    /// A new pooled connection and the local cache's channel must reach the same
    /// server: a probe published on the channel's mark channel finds no
    /// receiver otherwise (a DNS name that now names another server), and the
    /// channel is given up.
    /// (A failed probe fails the new connection: its state is unknown.)
    fn probe(&self, cache: &LocalCache, conn: &mut Conn) -> Result<()> {
        cache.follow(conn.server());
        if let Some((epoch, mark)) = cache.mark() {
            let receivers = redis::cmd("PUBLISH")
                .arg(&mark)
                .arg("probe")
                .query::<i64>(conn.like())
                .map_err(|err| self.net.error("local_cache probe", &err))?;
            if receivers < 1 {
                cache.lost(epoch);
            }
        }
        Ok(())
    }

    /// Drops `ids` from the local cache when dropped: after a write returns (or
    /// fails: it may have run), so that this process reads its own writes.
    fn forget_on_return<'a>(&'a self, ids: &'a [SessionId]) -> ForgetOnReturn<'a> {
        ForgetOnReturn(self.cache.as_deref(), ids)
    }

    fn key(&self, id: &SessionId) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.key_prefix.len() + id.as_bytes().len());
        key.extend_from_slice(&self.key_prefix);
        key.extend_from_slice(id.as_bytes());
        key
    }

    /// A connection: an idle one, a new one while fewer than `pool_size` exist, or
    /// the next one given back within `command_timeout`.
    fn lend(&self) -> Result<Lent<'_>> {
        if let Target::Sentinel(sentinel) = &self.net.target {
            self.recheck_primary(sentinel);
        }
        let deadline = Instant::now() + self.net.command_timeout;
        let pid = std::process::id();
        let mut pool = self.pool.lock();
        pool.adopt(pid);
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(Lent {
                    store: self,
                    generation: pool.generation,
                    conn: Some(conn),
                    reused: true,
                    healthy: true,
                });
            }
            if pool.open < self.pool_size {
                pool.open += 1;
                let generation = pool.generation;
                drop(pool);
                let mut lent = Lent {
                    store: self,
                    generation,
                    conn: None,
                    reused: false,
                    healthy: false,
                };
                let mut conn = self.net.connect()?; // on error, `lent` gives the slot back
                if let Some(cache) = &self.cache {
                    self.probe(cache, &mut conn)?;
                }
                lent.conn = Some(conn);
                lent.healthy = true;
                return Ok(lent);
            }
            if self.released.wait_until(&mut pool, deadline).timed_out() {
                return Err(Error::new(
                    SessionError::Timeout,
                    format!(
                        "{}: all {} pooled connections stayed busy for {} ms (raise sessions.pool_size)",
                        self.net.name,
                        self.pool_size,
                        self.net.command_timeout.as_millis()
                    ),
                ));
            }
        }
    }

    /// Drops every idle connection: after one turned out dead, the others (made
    /// before the same server restart) are most likely dead too.
    fn drop_idle(&self) {
        let mut pool = self.pool.lock();
        let dropped = pool.idle.len();
        pool.idle.clear();
        pool.open -= dropped;
        pool.generation += 1;
    }

    /// At most once per `SENTINEL_CHECK_INTERVAL`, asks the sentinels which server
    /// is the primary; when it is another one, every connection to the old one is
    /// dropped (idle ones now, lent ones when given back). A failed check changes
    /// nothing: the calls themselves report an unreachable primary.
    fn recheck_primary(&self, sentinel: &SentinelTarget) {
        use std::sync::atomic::Ordering;
        let now = now_ns();
        let due = sentinel.next_check_ns.load(Ordering::Relaxed);
        if now < due
            || sentinel
                .next_check_ns
                .compare_exchange(
                    due,
                    now.saturating_add(super::nanos(SENTINEL_CHECK_INTERVAL)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let Ok((addr, client)) = self.net.ask_sentinels(&sentinel.config) else {
            return;
        };
        let server = server_tag(&addr);
        let mut primary = sentinel.primary.lock();
        let changed = primary.as_ref().is_some_and(|(known, _)| *known != addr);
        *primary = Some((addr, client));
        drop(primary);
        if changed {
            self.drop_idle();
            if let Some(cache) = &self.cache {
                // The old primary may stay writable for seconds (a planned
                // failover), and its channel would miss the new one's writes.
                cache.follow(server);
            }
        }
    }

    /// Runs one command (or script, or pipeline) on a pooled connection. A stale
    /// pooled connection (the server restarted since it was made) is replaced and
    /// the command retried once on a fresh connection.
    fn run<T>(
        &self,
        what: &str,
        command: impl FnMut(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.run_tagged(what, command).map(|(value, _)| value)
    }

    /// [`RedisStore::run`], also telling which server answered ([`Conn::server`]).
    fn run_tagged<T>(
        &self,
        what: &str,
        mut command: impl FnMut(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<(T, u64)> {
        let _held = SignalsHeld::new();
        let mut retried = false;
        loop {
            let mut lent = self.lend()?;
            let Some(conn) = lent.conn.as_mut() else {
                return Err(Error::new(SessionError::Internal, "lent no connection"));
            };
            match command(conn.like()) {
                Ok(value) => return Ok((value, conn.server())),
                Err(err) => {
                    // Any I/O failure leaves the connection in an unknown state (a
                    // late answer could pair with the next command): never reuse it.
                    // A demoted primary refuses writes: the command did not run. (Redis
                    // drops its clients when it becomes a replica, so this is for a
                    // connection made to it while the sentinels still named it.)
                    let demoted = err.code() == Some("READONLY")
                        || (err.code() == Some("ERR") && err.to_string().contains("READONLY"));
                    let broken = err.is_io_error() || err.is_unrecoverable_error() || demoted;
                    if broken {
                        lent.healthy = false;
                        if let Target::Sentinel(sentinel) = &self.net.target {
                            sentinel.forget();
                        }
                    }
                    let stale = (broken && lent.reused && !err.is_timeout()) || demoted;
                    // A signal interrupted the wait for the reply (EINTR): the
                    // command may have run, so only a repeatable one is sent again.
                    let repeat = interrupted(&err) && !NOT_REPEATABLE.contains(&what);
                    drop(lent);
                    if (stale || repeat) && !retried {
                        retried = true;
                        if stale {
                            self.drop_idle();
                        }
                        continue;
                    }
                    return Err(self.net.error(what, &err));
                }
            }
        }
    }
}

/// How a store reaches Redis: shared with the local cache's listener thread,
/// which opens its own connection.
struct Net {
    target: Target,
    /// `host:port db N`, without credentials, for messages.
    name: String,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Net {
    fn connect(&self) -> Result<Conn> {
        let sentinel = match &self.target {
            Target::Fixed(client) => return self.connect_to(client).map(|c| Conn::Node(c, 0)),
            Target::Cluster { client, .. } => {
                let conn = client
                    .get_connection()
                    .map_err(|err| self.error("cannot connect", &err))?;
                conn.set_read_timeout(Some(self.command_timeout))
                    .and_then(|()| conn.set_write_timeout(Some(self.command_timeout)))
                    .map_err(|err| self.error("cannot set timeouts", &err))?;
                return Ok(Conn::Cluster(Box::new(conn)));
            }
            Target::Sentinel(sentinel) => sentinel,
        };
        // The primary known, else (or when it fails, or turns out to be a replica
        // after a failover) the one the sentinels name now.
        let mut asked = false;
        loop {
            let known = sentinel
                .primary
                .lock()
                .as_ref()
                .map(|(addr, client)| (server_tag(addr), client.clone()));
            let (server, client) = match known {
                Some(known) => known,
                None => {
                    asked = true;
                    let (addr, client) = self.ask_sentinels(&sentinel.config)?;
                    let server = server_tag(&addr);
                    *sentinel.primary.lock() = Some((addr, client.clone()));
                    (server, client)
                }
            };
            let conn = self
                .connect_to(&client)
                .and_then(|mut conn| self.check_primary(&mut conn).map(|()| conn));
            match conn {
                Ok(conn) => return Ok(Conn::Node(conn, server)),
                Err(err) => {
                    sentinel.forget();
                    if asked {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// The primary named by the first sentinel that answers.
    fn ask_sentinels(&self, config: &SentinelConfig) -> Result<((String, u16), Client)> {
        let mut last = None;
        for (host, port) in &config.nodes {
            let info = tcp_info(
                host,
                *port,
                config.sentinel_user.as_deref(),
                config.sentinel_password.as_ref(),
                0,
            )?;
            let asked = Client::open(info)
                .and_then(|client| client.get_connection_with_timeout(self.connect_timeout))
                .and_then(|mut conn| {
                    conn.set_read_timeout(Some(self.command_timeout))?;
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(&config.master_name)
                        .query::<Option<(String, u16)>>(&mut conn)
                });
            match asked {
                Ok(Some((host, port))) => {
                    let info = tcp_info(
                        &host,
                        port,
                        config.user.as_deref(),
                        config.password.as_ref(),
                        config.dbindex,
                    )?;
                    return Client::open(info)
                        .map(|client| ((host, port), client))
                        .map_err(|err| {
                            self.error("cannot use the primary the sentinels name", &err)
                        });
                }
                Ok(None) => {
                    last = Some(Error::new(
                        SessionError::Config,
                        format!(
                            "{}: sentinel {host}:{port} monitors no primary named {:?}",
                            self.name, config.master_name
                        ),
                    ))
                }
                Err(err) => {
                    last = Some(self.error(&format!("cannot ask sentinel {host}:{port}"), &err))
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::config("no sentinel configured")))
    }

    /// Fails when the server is not a primary (a demoted one, until the sentinels
    /// have reconfigured it, still answers reads).
    fn check_primary(&self, conn: &mut redis::Connection) -> Result<()> {
        // HELLO (without a protocol version: the connection stays as it is) tells
        // the role to any user; ROLE needs @admin.
        let hello: std::collections::HashMap<String, redis::Value> =
            match redis::cmd("HELLO").query(conn) {
                Ok(hello) => hello,
                Err(err) if err.code() == Some("NOPERM") => return Ok(()),
                Err(err) => return Err(self.error("HELLO", &err)),
            };
        match hello.get("role").map(redis::from_redis_value_ref::<String>) {
            Some(Ok(role)) if role == "master" => Ok(()),
            _ => Err(Error::new(
                SessionError::StorageUnavailable,
                format!("{}: the server the sentinels name is not a primary (a failover is in progress)", self.name),
            )),
        }
    }

    fn connect_to(&self, client: &Client) -> Result<redis::Connection> {
        // A signal can interrupt the handshake (EINTR): nothing ran yet, try again.
        let mut tries = 0;
        let conn = loop {
            match client.get_connection_with_timeout(self.connect_timeout) {
                Err(err) if interrupted(&err) && tries < 3 => tries += 1,
                other => break other.map_err(|err| self.error("cannot connect", &err))?,
            }
        };
        conn.set_read_timeout(Some(self.command_timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.command_timeout)))
            .map_err(|err| self.error("cannot set timeouts", &err))?;
        Ok(conn)
    }

    fn error(&self, what: &str, err: &redis::RedisError) -> Error {
        if err.code() == Some("WRONGTYPE") {
            // A key of another type under the prefix (another application's, or a
            // session of libsession 0.1, which stored strings): no session here.
            return Error::new(
                SessionError::NotFound,
                format!(
                    "{}: {what}: the key holds no session of this libsession version (WRONGTYPE)",
                    self.name
                ),
            );
        }
        let code = if err.is_timeout() {
            SessionError::Timeout
        } else if err.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        {
            SessionError::Config
        } else {
            SessionError::StorageUnavailable
        };
        let message = match code {
            SessionError::Timeout => {
                let limit = if what == "cannot connect" {
                    self.connect_timeout
                } else {
                    self.command_timeout
                };
                format!(
                    "{}: {what}: no answer within {} ms",
                    self.name,
                    limit.as_millis()
                )
            }
            SessionError::Config => {
                format!("{}: {what}: {err} (check the user and password)", self.name)
            }
            _ => format!("{}: {what}: {err}", self.name),
        };
        Error::new(code, message)
    }

    /// A new connection that receives the invalidations of every key under the
    /// prefix (see `local_cache.rs`), and the server it reaches.
    fn subscribe_channel(
        self: &Arc<Self>,
        key_prefix: &[u8],
    ) -> Result<(local_cache::Connections, u64)> {
        let _held = SignalsHeld::new();
        let node = |conn| match conn {
            Conn::Node(conn, server) => Ok((conn, server)),
            Conn::Cluster(_) => Err(Error::config("local_cache is not available on a cluster")),
        };
        let (mut channel, server) = node(self.connect()?)?;
        let failed = |err: redis::RedisError| {
            let mut err = self.error("local_cache channel", &err);
            if err.code == SessionError::Config {
                err.message.push_str(
                    "; local_cache needs CLIENT TRACKING (Redis 6 or later) and a user allowed CLIENT ID, CLIENT TRACKING, SUBSCRIBE and PUBLISH (channels __redis__:invalidate and __libsession:mark:*)",
                );
            }
            err
        };
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query(&mut channel)
            .map_err(failed)?;
        let mark = local_cache::mark_channel(id);
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("on")
            .arg("REDIRECT")
            .arg(id)
            .arg("BCAST")
            .arg("PREFIX")
            .arg(key_prefix)
            .query::<()>(&mut channel)
            .map_err(failed)?;
        for name in [local_cache::INVALIDATE_CHANNEL, mark.as_str()] {
            redis::cmd("SUBSCRIBE")
                .arg(name)
                .query::<redis::Value>(&mut channel)
                .map_err(failed)?;
        }
        // The heart: on the same server, as a first mark shows.
        let (mut heart, heart_server) = node(self.connect()?)?;
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(&mark)
            .arg("open")
            .query(&mut heart)
            .map_err(failed)?;
        if receivers != 1 || heart_server != server {
            return Err(Error::new(
                SessionError::StorageUnavailable,
                format!(
                    "{}: local_cache channel: its two connections reached different servers (a failover?)",
                    self.name
                ),
            ));
        }
        Ok((
            local_cache::Connections {
                channel,
                heart,
                mark,
                watch: self.watch(server),
            },
            server,
        ))
    }

    /// For the cache's listener: whether the server tagged `server` is still
    /// the one to watch. Under Sentinel the sentinels are asked once a
    /// `SENTINEL_CHECK_INTERVAL` (a planned failover leaves the old primary up and
    /// writable for seconds); an unanswered question changes nothing.
    fn watch(self: &Arc<Self>, server: u64) -> Box<dyn FnMut() -> bool + Send> {
        if !matches!(self.target, Target::Sentinel(_)) {
            return Box::new(|| true);
        }
        let net = Arc::clone(self);
        let mut next = Instant::now() + SENTINEL_CHECK_INTERVAL;
        Box::new(move || {
            if Instant::now() < next {
                return true;
            }
            next = Instant::now() + SENTINEL_CHECK_INTERVAL;
            let Target::Sentinel(sentinel) = &net.target else {
                return true;
            };
            match net.ask_sentinels(&sentinel.config) {
                Ok((addr, _)) => server_tag(&addr) == server,
                Err(_) => true,
            }
        })
    }
}

/// The commands (by their `what` in [`RedisStore::run`]) that must not run twice:
/// every other one reads, or writes the same result again.
const NOT_REPEATABLE: [&str; 5] = [
    "create script",
    "update script",
    "regenerate script",
    "regenerate mark script",
    "regenerate copy script",
];

/// Holds off the asynchronous signals of the calling thread while it exists: a
/// C server's signal handlers (SIGCHLD, SIGALRM, SIGTERM, ...) then cannot
/// interrupt a call between its request and its reply (EINTR), which would leave
/// the reply unknown. A signal that comes meanwhile is delivered when the call
/// returns (each of its waits is bounded by `connect_timeout` or
/// `command_timeout`). The EINTR retries below remain for the stop signals, which
/// cannot be held. Signals that report a fault of the
/// thread itself (SIGSEGV, ...) are never held.
struct SignalsHeld(libc::sigset_t, std::marker::PhantomData<*const ()>);

impl SignalsHeld {
    fn new() -> SignalsHeld {
        // SAFETY: sigset_t is plain data, set up by sigfillset/sigdelset before use;
        // pthread_sigmask only changes the calling thread's mask and stores the old
        // one in `old`, restored by Drop.
        unsafe {
            let mut held: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut held);
            for fault in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGTRAP,
                libc::SIGSYS,
                libc::SIGABRT,
            ] {
                libc::sigdelset(&mut held, fault);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &held, &mut old);
            SignalsHeld(old, std::marker::PhantomData)
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` on this same thread (the value
        // is not Send, so it is dropped where it was made).
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Whether a Redis error is a system call interrupted by a signal (EINTR).
fn interrupted(err: &redis::RedisError) -> bool {
    use std::error::Error as _;
    err.source()
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| e.kind() == std::io::ErrorKind::Interrupted)
}

/// ARGV: data, absolute end (ms), TTL (ms), end (ns), request token ("": none).
/// 1 created (or created by this same request, sent again), 0 taken.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 't') == ARGV[5] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'a', ARGV[2], 'v', 1, 'n', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 't', ARGV[5]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1";

/// ARGV: data, now (ms), idle timeout (ms, 0: none), expected version ("": any),
/// request token ("": none). 1 done (or done by this same request, sent again), 0
/// missing, -1 read-only, -3 another version.
const UPDATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'a', 'r', 'v', 't')
if not f[1] then return 0 end
if ARGV[5] ~= '' and f[4] == ARGV[5] then return 1 end
if f[2] then return -1 end
if ARGV[4] ~= '' and f[3] ~= ARGV[4] then return -3 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 't', ARGV[5]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
local idle = tonumber(ARGV[3])
if idle > 0 then
  local ttl = math.min(idle, tonumber(f[1]) - tonumber(ARGV[2]))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 1";

/// ARGV: now (ms), idle timeout (ms). Moves the TTL to the new idle end, never
/// past the absolute end, never shorter. 1 live, 0 missing.
const TOUCH: &str = r"
local f = redis.call('HMGET', KEYS[1], 'a', 'r')
if not f[1] then return 0 end
if f[2] then return 1 end
local ttl = math.min(tonumber(ARGV[2]), tonumber(f[1]) - tonumber(ARGV[1]))
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1";

/// KEYS: old, new. ARGV: now (ms), idle timeout (ms, 0: none), grace (ms, 0: none),
/// expected version ("": any), "1" to give the new id the data ARGV[6] ("": keep).
/// 1 done, 0 old missing, -1 old read-only, -2 new taken, -3 another version.
const REGENERATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'a', 'r', 'v')
if not f[1] then return 0 end
if f[2] then return -1 end
if ARGV[4] ~= '' and f[3] ~= ARGV[4] then return -3 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local ttl = tonumber(f[1]) - tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
if idle > 0 and idle < ttl then ttl = idle end
if ttl <= 0 then return 0 end
local grace = tonumber(ARGV[3])
if grace > 0 then
  local data = ARGV[6]
  if ARGV[5] ~= '1' then data = redis.call('HGET', KEYS[1], 'd') end
  redis.call('HSET', KEYS[2], 'd', data, 'a', f[1], 'v', tonumber(f[3]) + 1)
  local n = redis.call('HGET', KEYS[1], 'n')
  if n then redis.call('HSET', KEYS[2], 'n', n) end
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('HSET', KEYS[1], 'r', 1)
  if grace < redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], grace) end
else
  redis.call('RENAME', KEYS[1], KEYS[2])
  if ARGV[5] == '1' then redis.call('HSET', KEYS[2], 'd', ARGV[6]) end
  redis.call('HINCRBY', KEYS[2], 'v', 1)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1";

/// KEYS: the owner's set. ARGV: id, bound (ms), now (ms). Adds the id (keeping
/// the higher bound), drops members past their bound, keeps the set's TTL at
/// least until the new bound.
const INDEX_ADD: &str = r"
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or tonumber(old) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[3])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1";

/// Regenerate on a cluster, step 1 of 3 (the two ids' keys lie in different
/// slots, so no one script can move a session): marks the old key read-only and
/// shortens its TTL to ARGV[3] ms (the grace, or a few seconds: if the steps after
/// it never run, the old id ends soon anyway). ARGV: now (ms), idle timeout (ms,
/// 0: none), hold (ms), expected version ("": any). Returns {1, data, absolute
/// end, version, end in ns, TTL for the new key} or {0} missing, {-1} read-only,
/// {-3} another version. ARGV[5], the request token, marks the key (`r`), so that
/// the same request sent again gets the same answer.
const REGENERATE_MARK: &str = r"
local f = redis.call('HMGET', KEYS[1], 'a', 'r', 'v', 'd', 'n')
if not f[1] then return {0} end
if f[2] and f[2] == ARGV[5] then
  local ttl = tonumber(f[1]) - tonumber(ARGV[1])
  local idle = tonumber(ARGV[2])
  if idle > 0 and idle < ttl then ttl = idle end
  return {1, f[4], f[1], f[3], f[5] or '', string.format('%d', ttl)}
end
if f[2] then return {-1} end
if ARGV[4] ~= '' and f[3] ~= ARGV[4] then return {-3} end
local ttl = tonumber(f[1]) - tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
if idle > 0 and idle < ttl then ttl = idle end
if ttl <= 0 then return {0} end
redis.call('HSET', KEYS[1], 'r', ARGV[5])
local hold = tonumber(ARGV[3])
if hold < redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], hold) end
return {1, f[4], f[1], f[3], f[5] or '', string.format('%d', ttl)}";

/// Regenerate on a cluster, step 2: the new key, only if it does not exist. ARGV:
/// data, absolute end (ms), version, end in ns ("": none), TTL (ms), request
/// token. 1 (also for this same request sent again) or 0 (taken).
const REGENERATE_COPY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 't') == ARGV[6] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'a', ARGV[2], 'v', ARGV[3], 't', ARGV[6])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1";

/// Regenerate on a cluster, when step 2 found the new id taken: the old key is
/// writable again, with its TTL (ARGV[1] ms) back.
const REGENERATE_UNDO: &str = r"
if redis.call('HGET', KEYS[1], 'r') == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'r')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1";

/// How long the old id of a session regenerated on a cluster without a grace
/// stays readable if the regenerate is cut short after its first step.
const CLUSTER_REGENERATE_HOLD_MS: u64 = 10_000;

/// A read in one round trip where pipelines are not available (a cluster):
/// the fields `d`, `a`, `r`, `v` and the key's PTTL.
const READ: &str = r"
return {redis.call('HMGET', KEYS[1], 'd', 'a', 'r', 'v'), redis.call('PTTL', KEYS[1])}";

/// HGET and DEL in one step where MULTI pipelines are not available (a
/// cluster); a key of another type is deleted all the same.
const TAKE: &str = r"
local ok, d = pcall(redis.call, 'HGET', KEYS[1], 'd')
redis.call('DEL', KEYS[1])
if ok then return d end
return false";

static SCRIPTS: Lazy<[Script; 10]> = Lazy::new(|| {
    [
        Script::new(CREATE),
        Script::new(UPDATE),
        Script::new(TOUCH),
        Script::new(REGENERATE),
        Script::new(INDEX_ADD),
        Script::new(REGENERATE_MARK),
        Script::new(REGENERATE_COPY),
        Script::new(READ),
        Script::new(TAKE),
        Script::new(REGENERATE_UNDO),
    ]
});

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

impl RedisStore {
    fn idle_ms(&self) -> u64 {
        self.expiry.idle_timeout.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        })
    }

    /// Moves the idle end of a session whose TTL runs out at `end_ns`, if a read
    /// at `now` should.
    fn refresh_after_read(
        &self,
        key: &[u8],
        absolute_ns: u64,
        end_ns: u64,
        now: u64,
    ) -> Result<()> {
        if self
            .expiry
            .refresh_on_read(now, absolute_ns, end_ns)
            .is_none()
        {
            return Ok(());
        }
        let idle_ms = self.idle_ms();
        self.run("touch script", |c| {
            SCRIPTS[2]
                .key(key)
                .arg(ms(now))
                .arg(idle_ms)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }
}

impl RedisStore {
    /// The data and version of a session in one round trip (`HMGET` and `PTTL`,
    /// pipelined), moving the idle end when a read should.
    fn read(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
        let key = self.key(id);
        type Fields = (Option<Vec<u8>>, Option<u64>, Option<Vec<u8>>, Option<u64>);
        // Recorded before the request goes out (see `local_cache.rs`).
        let reading = self.cache.as_ref().and_then(|cache| {
            let reading = cache.begin(id);
            if reading.is_none() {
                // No channel (yet, or any more): one is opened in the background,
                // and until it is up reads go to Redis uncached.
                self.open_channel_later(cache);
            }
            reading
        });
        // (The clocks only matter for a read that fills the cache.)
        let (sent, wall) = match reading {
            Some(_) => (mono_ns(), now_ns()),
            None => (0, 0),
        };
        let (((data, absolute_ms, read_only, version), pttl), server): ((Fields, i64), u64) = self
            .run_tagged("HMGET", |c| {
                if !c.supports_pipelining() {
                    // A cluster connection: one round trip as a script.
                    return SCRIPTS[7].key(&key).invoke(c);
                }
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&key)
                    .arg("d")
                    .arg("a")
                    .arg("r")
                    .arg("v")
                    .cmd("PTTL")
                    .arg(&key)
                    .query(c)
            })?;
        let (Some(data), Some(absolute_ms)) = (data, absolute_ms) else {
            return Ok(None);
        };
        if let Some(reading) = reading.filter(|_| pttl > 0) {
            // Both ends on the monotonic clock, counted from before the request.
            let absolute_left = absolute_ms.saturating_mul(1_000_000).saturating_sub(wall);
            reading.fill(
                server,
                local_cache::Hit {
                    data: data.clone(),
                    version: version.unwrap_or(0),
                    absolute_ns: sent.saturating_add(absolute_left),
                    end_ns: sent.saturating_add(pttl as u64 * 1_000_000),
                    read_only: read_only.is_some(),
                },
            );
        }
        if self.expiry.idle_timeout.is_some() && read_only.is_none() && pttl > 0 {
            let now = now_ns();
            let end_ns = now.saturating_add(pttl as u64 * 1_000_000);
            self.refresh_after_read(&key, absolute_ms.saturating_mul(1_000_000), end_ns, now)?;
        }
        Ok(Some((data, version.unwrap_or(0))))
    }

    /// Replaces the data (with `expected`, only while the version is that one).
    fn write(&self, id: &SessionId, data: &[u8], expected: Option<u64>) -> Result<Outcome> {
        let _forget = self.forget_on_return(std::slice::from_ref(id));
        let token = self.request_token();
        let key = self.key(id);
        let idle_ms = self.idle_ms();
        let now = now_ns();
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let done = self.run("update script", |c| {
            SCRIPTS[1]
                .key(&key)
                .arg(data)
                .arg(ms(now))
                .arg(idle_ms)
                .arg(&expected)
                .arg(&token)
                .invoke::<i64>(c)
        })?;
        Ok(match done {
            1 => Outcome::Applied,
            -1 => Outcome::ReadOnly,
            -3 => Outcome::Conflict,
            _ => Outcome::Missing,
        })
    }
}

impl RedisStore {
    /// A get through the local cache: answered from it when it holds the session
    /// and need not move its idle end; from Redis otherwise (filling it).
    fn cached_get(&self, cache: &Arc<LocalCache>, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let now = mono_ns();
        if let Some(hit) = cache.lookup(id, now) {
            if hit.read_only
                || self
                    .expiry
                    .refresh_on_read(now, hit.absolute_ns, hit.end_ns)
                    .is_none()
            {
                return Ok(Some(hit.data));
            }
        }
        Ok(self.read(id)?.map(|(data, _)| data))
    }
}

impl RedisStore {
    /// Calls `each` with every key `SCAN` finds for `pattern`, 1,000 per round
    /// trip (a key may come twice).
    fn scan(&self, pattern: &[u8], mut each: impl FnMut(Vec<u8>) -> Result<()>) -> Result<()> {
        let Target::Cluster {
            user,
            password,
            tls,
            ..
        } = &self.net.target
        else {
            return self.scan_node(pattern, &mut each, &mut |what, command| {
                self.run(what, command)
            });
        };
        // Each primary holds its own slots: SCAN them all, one connection each.
        for (host, port) in self.primaries()? {
            let mut info = tcp_info(&host, port, user.as_deref(), password.as_ref(), 0)?;
            if tls.is_some() {
                let addr = ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port,
                    insecure: false,
                    tls_params: None,
                };
                info = addr
                    .into_connection_info()
                    .map_err(|err| self.net.error("TLS", &err))?
                    .set_redis_settings(info.redis_settings().clone());
            }
            let held = SignalsHeld::new();
            let client = match tls {
                Some(Some(pem)) => Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.clone()),
                    },
                ),
                _ => Client::open(info),
            };
            let mut conn = client
                .and_then(|client| client.get_connection_with_timeout(self.net.connect_timeout))
                .map_err(|err| {
                    self.net
                        .error(&format!("cannot connect to {host}:{port}"), &err)
                })?;
            conn.set_read_timeout(Some(self.net.command_timeout))
                .and_then(|()| conn.set_write_timeout(Some(self.net.command_timeout)))
                .map_err(|err| self.net.error("cannot set timeouts", &err))?;
            drop(held);
            self.scan_node(pattern, &mut each, &mut |what, command| {
                let _held = SignalsHeld::new();
                command(&mut conn).map_err(|err| self.net.error(what, &err))
            })?;
        }
        Ok(())
    }

    /// The primaries of the cluster, from `CLUSTER SLOTS`.
    fn primaries(&self) -> Result<Vec<(String, u16)>> {
        let slots: Vec<Vec<redis::Value>> = self.run("CLUSTER SLOTS", |c| {
            redis::cmd("CLUSTER").arg("SLOTS").query(c)
        })?;
        let mut primaries: Vec<(String, u16)> = slots
            .iter()
            .filter_map(|range| {
                let node = range.get(2)?;
                let (host, port): (String, u16) =
                    redis::from_redis_value_ref(node).ok().or_else(|| {
                        let fields: Vec<redis::Value> = redis::from_redis_value_ref(node).ok()?;
                        Some((
                            redis::from_redis_value_ref(fields.first()?).ok()?,
                            redis::from_redis_value_ref(fields.get(1)?).ok()?,
                        ))
                    })?;
                Some((host, port))
            })
            .collect();
        primaries.sort();
        primaries.dedup();
        Ok(primaries)
    }

    /// SCAN of one server, through `run`.
    #[allow(clippy::type_complexity)]
    fn scan_node(
        &self,
        pattern: &[u8],
        each: &mut dyn FnMut(Vec<u8>) -> Result<()>,
        run: &mut dyn FnMut(
            &str,
            &mut dyn FnMut(
                &mut dyn redis::ConnectionLike,
            ) -> redis::RedisResult<(u64, Vec<Vec<u8>>)>,
        ) -> Result<(u64, Vec<Vec<u8>>)>,
    ) -> Result<()> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys) = run("SCAN", &mut |c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            for key in keys {
                each(key)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Calls `each` with the id of every session key (a key may come twice).
    fn scan_ids(&self, mut each: impl FnMut(SessionId)) -> Result<()> {
        let pattern = id_pattern(&self.key_prefix);
        let prefix = self.key_prefix.len();
        self.scan(&pattern, |key| {
            if let Some(id) = key.get(prefix..).and_then(|id| SessionId::parse(id).ok()) {
                each(id);
            }
            Ok(())
        })
    }

    /// The key of an owner's set in the owner index.
    fn owner_key(&self, owner: &OwnerTag) -> Vec<u8> {
        let mut key = self.key_prefix.clone();
        key.extend_from_slice(b"owner:");
        key.extend_from_slice(owner.as_str().as_bytes());
        key
    }

    /// Drops the members of one owner's set that are past their bound.
    fn prune_owner(&self, key: &[u8]) -> Result<()> {
        let now = ms(now_ns());
        self.run::<i64>("ZREMRANGEBYSCORE", |c| {
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now)
                .query(c)
        })
        .map(|_| ())
    }

    /// One run of the regenerate script; with `checked`, only while the version is
    /// the one given, and with that version's rewritten data for the new id.
    fn regenerate_as(
        &self,
        old: &SessionId,
        new: &SessionId,
        checked: Option<(u64, Option<&[u8]>)>,
    ) -> Result<Outcome> {
        let ids = [*old, *new];
        let _forget = self.forget_on_return(&ids);
        let (old_key, new_key) = (self.key(old), self.key(new));
        let idle_ms = self.idle_ms();
        let grace_ms = u64::try_from(self.expiry.regenerate_grace.as_millis()).unwrap_or(u64::MAX);
        let now = now_ns();
        let expected = checked.map(|(v, _)| v.to_string()).unwrap_or_default();
        let data = checked.and_then(|(_, data)| data);
        if matches!(self.net.target, Target::Cluster { .. }) {
            return self.regenerate_in_steps(&old_key, &new_key, now, &expected, data);
        }
        let done = self.run("regenerate script", |c| {
            SCRIPTS[3]
                .key(&old_key)
                .key(&new_key)
                .arg(ms(now))
                .arg(idle_ms)
                .arg(grace_ms)
                .arg(&expected)
                .arg(if data.is_some() { "1" } else { "" })
                .arg(data.unwrap_or_default())
                .invoke::<i64>(c)
        })?;
        Ok(match done {
            1 => Outcome::Applied,
            -1 => Outcome::ReadOnly,
            -2 => Outcome::Taken,
            -3 => Outcome::Conflict,
            _ => Outcome::Missing,
        })
    }
}

impl RedisStore {
    /// A token naming one write request on a cluster, which the write scripts
    /// store (`t`, or `r` for a regenerate's mark) so that the same request, sent
    /// again by the cluster client after a timeout or a lost connection although
    /// Redis ran it, gets the same answer instead of being applied twice. Empty on
    /// one server or Sentinel, where a write is never sent twice.
    fn request_token(&self) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        if !matches!(self.net.target, Target::Cluster { .. }) {
            return String::new();
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static SEED: Lazy<String> = Lazy::new(|| {
            SessionId::generate().map_or_else(
                |_| format!("{:x}", now_ns()),
                |id| id.as_str()[..16].to_string(),
            )
        });
        format!(
            "{}{:x}.{:x}",
            *SEED,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Regenerate on a cluster, in three steps that are safe when cut short: the
    /// old key is marked read-only with a short TTL (a cut here ends the session
    /// within `CLUSTER_REGENERATE_HOLD_MS` or the grace: a logout, never two
    /// writable ids), the new key is written, and without a grace the old key is
    /// deleted (a cut before that leaves it readable, read-only, until its short
    /// TTL).
    fn regenerate_in_steps(
        &self,
        old_key: &[u8],
        new_key: &[u8],
        now: u64,
        expected: &str,
        data: Option<&[u8]>,
    ) -> Result<Outcome> {
        let token = self.request_token();
        let grace = self.expiry.regenerate_grace;
        let hold_ms = if grace.is_zero() {
            CLUSTER_REGENERATE_HOLD_MS
        } else {
            u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)
        };
        let idle_ms = self.idle_ms();
        let marked: Vec<redis::Value> = self.run("regenerate mark script", |c| {
            SCRIPTS[5]
                .key(old_key)
                .arg(ms(now))
                .arg(idle_ms)
                .arg(hold_ms)
                .arg(expected)
                .arg(&token)
                .invoke(c)
        })?;
        let field = |i: usize| -> Result<Vec<u8>> {
            marked
                .get(i)
                .and_then(|v| redis::from_redis_value_ref::<Vec<u8>>(v).ok())
                .ok_or_else(|| {
                    Error::new(
                        SessionError::StorageUnavailable,
                        format!("{}: regenerate: a malformed reply", self.net.name),
                    )
                })
        };
        let status: i64 = marked
            .first()
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or(0);
        match status {
            1 => {}
            -1 => return Ok(Outcome::ReadOnly),
            -3 => return Ok(Outcome::Conflict),
            _ => return Ok(Outcome::Missing),
        }
        let old_data = field(1)?;
        let (absolute, version, end_ns, ttl) = (field(2)?, field(3)?, field(4)?, field(5)?);
        let version: u64 = std::str::from_utf8(&version)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let copied: i64 = self.run("regenerate copy script", |c| {
            SCRIPTS[6]
                .key(new_key)
                .arg(data.unwrap_or(&old_data))
                .arg(&absolute)
                .arg(version + 1)
                .arg(&end_ns)
                .arg(&ttl)
                .arg(&token)
                .invoke(c)
        })?;
        if copied != 1 {
            // The new id is taken (never, with 256-bit ids): give the old one back
            // its writes and TTL, so the caller can retry with another id.
            self.run::<i64>("regenerate undo script", |c| {
                SCRIPTS[9].key(old_key).arg(&ttl).arg(&token).invoke(c)
            })?;
            return Ok(Outcome::Taken);
        }
        if grace.is_zero() {
            // Best effort: the session has moved; an old key left behind is
            // read-only and ends within CLUSTER_REGENERATE_HOLD_MS.
            let _ = self.run::<i64>("DEL", |c| redis::cmd("DEL").arg(old_key).query(c));
        }
        Ok(Outcome::Applied)
    }
}

/// A glob pattern matching exactly `prefix` followed by 64 lowercase hex digits.
fn id_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = glob_literal(prefix);
    for _ in 0..64 {
        pattern.extend_from_slice(b"[0-9a-f]");
    }
    pattern
}

/// `text` escaped for a glob pattern: it matches itself only.
fn glob_literal(text: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(text.len() * 2 + 64 * 8);
    for &b in text {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(b);
    }
    pattern
}

impl Store for RedisStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<Outcome> {
        let _forget = self.forget_on_return(std::slice::from_ref(id));
        let token = self.request_token();
        let now = now_ns();
        let absolute_ns = now.saturating_add(super::nanos(lifetime));
        let end_ns = self.expiry.idle_end(now, absolute_ns).min(absolute_ns);
        let key = self.key(id);
        let created = self.run("create script", |c| {
            SCRIPTS[0]
                .key(&key)
                .arg(data)
                .arg(ms(absolute_ns))
                .arg(ms(end_ns - now).max(1))
                .arg(absolute_ns)
                .arg(&token)
                .invoke::<i64>(c)
        })?;
        Ok(if created == 1 {
            Outcome::Applied
        } else {
            Outcome::Taken
        })
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        if let Some(cache) = &self.cache {
            return self.cached_get(cache, id);
        }
        let key = self.key(id);
        if self.expiry.idle_timeout.is_none() {
            return self.run("HGET", |c| redis::cmd("HGET").arg(&key).arg("d").query(c));
        }
        Ok(self.read(id)?.map(|(data, _)| data))
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<Outcome> {
        self.write(id, data, None)
    }

    fn update_if(&self, id: &SessionId, data: &[u8], version: u64) -> Result<Outcome> {
        self.write(id, data, Some(version))
    }

    fn get_versioned(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
        self.read(id)
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        let _forget = self.forget_on_return(std::slice::from_ref(id));
        let key = self.key(id);
        self.run::<i64>("DEL", |c| redis::cmd("DEL").arg(&key).query(c))
            .map(|_| ())
    }

    fn take(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let _forget = self.forget_on_return(std::slice::from_ref(id));
        let key = self.key(id);
        // A key of another type (WRONGTYPE for HGET) is deleted all the same.
        type Reply = (redis::RedisResult<Option<Vec<u8>>>, i64);
        let (data, _): Reply = self.run("HGET and DEL", |c| {
            if !c.supports_pipelining() {
                let data: Option<Vec<u8>> = SCRIPTS[8].key(&key).invoke(c)?;
                return Ok((Ok(data), 1));
            }
            redis::pipe()
                .atomic()
                .ignore_errors()
                .cmd("HGET")
                .arg(&key)
                .arg("d")
                .cmd("DEL")
                .arg(&key)
                .query(c)
        })?;
        Ok(data.ok().flatten())
    }

    fn destroy_many(&self, ids: &[SessionId]) -> Result<()> {
        let _forget = self.forget_on_return(ids);
        if ids.is_empty() {
            return Ok(());
        }
        if matches!(self.net.target, Target::Cluster { .. }) {
            // Keys of many slots: one DEL each, each routed to its node.
            for id in ids {
                self.destroy(id)?;
            }
            return Ok(());
        }
        // One DEL per key, pipelined: each touches one key (one slot).
        self.run::<Vec<i64>>("DEL", |c| {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.cmd("DEL").arg(self.key(id));
            }
            pipe.query(c)
        })
        .map(|_| ())
    }

    fn touch(&self, id: &SessionId) -> Result<Outcome> {
        let key = self.key(id);
        let live = if self.expiry.idle_timeout.is_none() {
            self.run::<i64>("EXISTS", |c| redis::cmd("EXISTS").arg(&key).query(c))?
        } else {
            let idle_ms = self.idle_ms();
            let now = now_ns();
            self.run("touch script", |c| {
                SCRIPTS[2]
                    .key(&key)
                    .arg(ms(now))
                    .arg(idle_ms)
                    .invoke::<i64>(c)
            })?
        };
        Ok(if live == 1 {
            Outcome::Applied
        } else {
            Outcome::Missing
        })
    }

    fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        let key = self.key(id);
        let pttl: i64 = self.run("PTTL", |c| redis::cmd("PTTL").arg(&key).query(c))?;
        Ok((pttl > 0).then(|| Duration::from_millis(pttl as u64)))
    }

    fn exists(&self, id: &SessionId) -> Result<bool> {
        let key = self.key(id);
        let n: i64 = self.run("EXISTS", |c| redis::cmd("EXISTS").arg(&key).query(c))?;
        Ok(n == 1)
    }

    fn count(&self) -> Result<u64> {
        // SCAN may return a key twice (when the table grows under it): count each
        // once, remembering 8 bytes per key (its id's first 16 hex digits).
        let mut seen: HashSet<u64> = HashSet::new();
        self.scan_ids(|id| {
            seen.insert(super::file::format::tag(&id));
        })?;
        Ok(seen.len() as u64)
    }

    fn ids(&self) -> Result<Vec<SessionId>> {
        let mut seen: HashSet<SessionId> = HashSet::new();
        self.scan_ids(|id| {
            seen.insert(id);
        })?;
        Ok(seen.into_iter().collect())
    }

    fn regenerate(
        &self,
        old: &SessionId,
        new: &SessionId,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome> {
        let Some(rewrite) = rewrite else {
            return self.regenerate_as(old, new, None);
        };
        // Read, rewrite, then move only while the version is the one read.
        let deadline = Instant::now() + super::OPTIMISTIC_DEADLINE;
        let mut conflicts = 0u32;
        loop {
            let Some((data, version)) = self.read(old)? else {
                return Ok(Outcome::Missing);
            };
            let new_data = rewrite(&data)?;
            match self.regenerate_as(old, new, Some((version, new_data.as_deref())))? {
                Outcome::Conflict if Instant::now() < deadline => {
                    conflicts += 1;
                    super::backoff(conflicts);
                }
                Outcome::Conflict => return Err(super::too_many_conflicts(conflicts)),
                outcome => return Ok(outcome),
            }
        }
    }

    fn remove_expired(&self) -> Result<usize> {
        // Redis expires sessions by itself; the owner index is pruned here.
        let mut pattern = glob_literal(&self.key_prefix);
        pattern.extend_from_slice(b"owner:*");
        self.scan(&pattern, |key| self.prune_owner(&key))?;
        Ok(0)
    }

    fn peek(&self, id: &SessionId) -> Result<Option<Peeked>> {
        Ok(match self.peek_many(std::slice::from_ref(id))?.pop() {
            Some(Peek::Live(found)) => Some(found),
            _ => None,
        })
    }

    fn peek_many(&self, ids: &[SessionId]) -> Result<Vec<Peek>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| self.key(id)).collect();
        // Each reply on its own: a key of another type (WRONGTYPE) is no session
        // and does not fail the others.
        type Reply = redis::RedisResult<(Option<Vec<u8>>, Option<u64>, Option<u64>)>;
        let found: Vec<Reply> = if matches!(self.net.target, Target::Cluster { .. }) {
            // Keys of many slots: one HMGET each, each routed to its node.
            let mut found = Vec::with_capacity(keys.len());
            for key in &keys {
                found.push(self.run("HMGET", |c| {
                    match redis::cmd("HMGET")
                        .arg(key)
                        .arg("d")
                        .arg("a")
                        .arg("n")
                        .query(c)
                    {
                        Err(err) if err.code() == Some("WRONGTYPE") => Ok(Err(err)),
                        other => other.map(Ok),
                    }
                })?);
            }
            found
        } else {
            self.run("HMGET", |c| {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for key in &keys {
                    pipe.cmd("HMGET").arg(key).arg("d").arg("a").arg("n");
                }
                pipe.query(c)
            })?
        };
        found
            .into_iter()
            .map(|reply| match reply {
                // The end in ns when the session has it (`n`), so that sessions
                // created within one millisecond still sort by age.
                Ok((Some(data), Some(absolute_ms), absolute_ns)) => Ok(Peek::Live((
                    data,
                    absolute_ns.unwrap_or(absolute_ms.saturating_mul(1_000_000)),
                ))),
                Ok(_) => Ok(Peek::Missing),
                Err(err) if err.code() == Some("WRONGTYPE") => Ok(Peek::Missing),
                Err(err) => Err(self.net.error("HMGET", &err)),
            })
            .collect()
    }

    fn index_add(&self, owner: &OwnerTag, id: &SessionId, until_ns: u64) -> Result<()> {
        let key = self.owner_key(owner);
        let now = now_ns();
        self.run("owner index script", |c| {
            SCRIPTS[4]
                .key(&key)
                .arg(id.as_str())
                .arg(ms(until_ns))
                .arg(ms(now))
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn index_list(&self, owner: &OwnerTag) -> Result<Vec<(SessionId, u64)>> {
        let key = self.owner_key(owner);
        let now = ms(now_ns());
        let (_, members): (i64, Vec<(Vec<u8>, f64)>) = self.run("ZRANGE", |c| {
            if !c.supports_pipelining() {
                let pruned: i64 = redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(now)
                    .query(c)?;
                let members = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(c)?;
                return Ok((pruned, members));
            }
            redis::pipe()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now)
                .cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c)
        })?;
        Ok(members
            .iter()
            .filter_map(|(m, bound_ms)| {
                let id = SessionId::parse(m).ok()?;
                Some((id, (*bound_ms as u64).saturating_mul(1_000_000)))
            })
            .collect())
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|cache| cache.stats())
    }

    fn index_remove(&self, owner: &OwnerTag, ids: &[SessionId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.owner_key(owner);
        self.run::<i64>("ZREM", |c| {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(&key);
            for id in ids {
                cmd.arg(id.as_str());
            }
            cmd.query(c)
        })
        .map(|_| ())
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(cache) = &self.cache {
            cache.stop(Duration::from_millis(200));
        }
        self.pool.lock().adopt(std::process::id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_debugs_as_stars() {
        let secret = Secret("hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        let server = RedisServer::Url(Secret("redis://u:hunter2@h:1".into()));
        assert!(!format!("{server:?}").contains("hunter2"));
        assert!(format!("{server:?}").contains("Secret(***)"));
    }

    #[test]
    fn a_cluster_is_named_by_its_first_seed_without_credentials() {
        let nodes =
            |urls: &[&str]| -> Vec<Secret> { urls.iter().map(|u| Secret(u.to_string())).collect() };
        assert_eq!(cluster_name(&nodes(&["redis://h1:7000"])), "(seed h1:7000)");
        assert_eq!(
            cluster_name(&nodes(&[
                "rediss://user:pw@h1:7000/0",
                "redis://h2:7001",
                "h3:7002"
            ])),
            "(seeds h1:7000 and 2 more)"
        );
        assert_eq!(cluster_name(&nodes(&["redis://:p@w@h:1"])), "(seed h:1)");
    }

    #[test]
    fn a_redis_error_is_told_by_its_kind_without_the_url() {
        let err = redis::Client::open("redis://user:hunter2@h:notaport").unwrap_err();
        let text = kind_only(&err);
        assert_eq!(text, "InvalidClientConfig");
    }

    #[test]
    fn a_store_on_one_server_is_named_by_its_address_and_database() {
        let name = |url: &str| {
            let json = format!(r#"{{"sessions": {{"driver": "redis", "url": "{url}"}}}}"#);
            let config = crate::config::Config::from_json(json.as_bytes()).unwrap();
            match &config.store(None).unwrap().driver {
                crate::store::DriverConfig::Redis(redis) => RedisStore::fixed(redis).unwrap().1,
                _ => panic!("not redis"),
            }
        };
        assert_eq!(name("redis://u:pw@h:6379/2"), "redis h:6379 db 2");
        assert_eq!(name("rediss://h:6380/1"), "redis TLS h:6380 db 1");
        assert_eq!(
            name("unix:///tmp/r.sock?db=3"),
            "redis unix:/tmp/r.sock db 3"
        );
    }

    #[test]
    fn server_tags_are_never_zero_and_tell_addresses_apart() {
        let tags: std::collections::HashSet<u64> = (1..=20u16)
            .map(|port| server_tag(&("10.0.0.1".to_string(), port)))
            .collect();
        assert_eq!(tags.len(), 20);
        assert!(!tags.contains(&0));
        assert_eq!(
            server_tag(&("h".to_string(), 1)),
            server_tag(&("h".to_string(), 1))
        );
    }
}
