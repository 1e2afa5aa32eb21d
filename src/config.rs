//! The `config.json` shape of the C Web Framework, parsed into a [`Config`].
//!
//! ```json
//! {"sessions": {"driver": "storage", "storage_name": "sessions", "lifetime": 3600},
//!  "storages": {"sessions": {"type": "filesystem", "root": "/var/app/storage"}}}
//! ```
//!
//! Every error names the key and the value that is wrong. Keys outside `sessions`,
//! `storages` and `databases` belong to the rest of the application and are ignored.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Default session lifetime: one hour.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;
/// Longest lifetime accepted: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
/// Default largest accepted session data: 1 MiB.
pub const DEFAULT_MAX_DATA_SIZE: usize = 1 << 20;
/// Largest `max_data_size` accepted: 512 MiB.
pub const MAX_MAX_DATA_SIZE: u64 = 512 << 20;

/// A complete, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a session lives after `session_create`; `session_update` keeps it.
    pub lifetime: Duration,
    /// Largest session data accepted, in bytes.
    pub max_data_size: usize,
    pub driver: DriverConfig,
}

/// Which store keeps the sessions, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    /// One file per session in `dir` (the file driver).
    File {
        dir: PathBuf,
        /// fsync every write before reporting success (durable across power loss).
        fsync: bool,
    },
    /// An in-process store; sessions die with the process.
    Memory,
    /// A Redis server: an entry of `databases.redis`, or `sessions.url`.
    Redis(RedisConfig),
}

/// Where the Redis driver connects, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub server: RedisServer,
    /// Prepended to the session id to make the key (default `session:`).
    pub key_prefix: String,
    pub connect_timeout: Duration,
    /// Longest wait for one command's answer (and for a free pooled connection).
    pub command_timeout: Duration,
    /// Most connections open at once; they are made when first needed.
    pub pool_size: usize,
    /// PEM file of the certificate authorities trusted for `rediss://` (default:
    /// the system's trust store).
    pub tls_ca_file: Option<PathBuf>,
}

/// The Redis server to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisServer {
    /// `sessions.url`: `redis://`, `rediss://` (TLS) or `unix://`; it carries the
    /// database, user and password itself.
    Url(Secret),
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

/// A string that may hold a password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Default Redis timeouts (connect, and each command).
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 1000;
/// Default most Redis connections open at once.
pub const DEFAULT_REDIS_POOL_SIZE: usize = 16;
/// Default key prefix of the Redis driver.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

const SESSION_KEYS: &[&str] = &[
    "driver",
    "storage_name",
    "host_id",
    "lifetime",
    "max_data_size",
    "fsync",
    "url",
    "key_prefix",
    "connect_timeout_ms",
    "command_timeout_ms",
    "pool_size",
    "tls_ca_file",
];

impl Config {
    /// The embedded default: the file driver in `./sessions`, lifetime 3600 s.
    pub fn embedded_default() -> Config {
        Config {
            lifetime: Duration::from_secs(DEFAULT_LIFETIME_SECS),
            max_data_size: DEFAULT_MAX_DATA_SIZE,
            driver: DriverConfig::File {
                dir: PathBuf::from("./sessions"),
                fsync: false,
            },
        }
    }

    /// Reads and parses a `config.json` file.
    pub fn from_file(path: &std::path::Path) -> Result<Config> {
        let text = std::fs::read(path).map_err(|err| {
            Error::config(format!("cannot read config file {}: {err}", path.display()))
        })?;
        Config::from_json(&text).map_err(|err| {
            Error::config(format!("config file {}: {}", path.display(), err.message))
        })
    }

    /// Parses the JSON text of a configuration.
    pub fn from_json(text: &[u8]) -> Result<Config> {
        let root: Value = serde_json::from_slice(text)
            .map_err(|err| Error::config(format!("config is not valid JSON: {err}")))?;
        let root = root
            .as_object()
            .ok_or_else(|| Error::config("config must be a JSON object"))?;
        let sessions = match root.get("sessions") {
            Some(Value::Object(map)) => map,
            Some(other) => return Err(wrong_type("sessions", "an object", other)),
            None => return Err(Error::config("config has no \"sessions\" object")),
        };
        for key in sessions.keys() {
            if !SESSION_KEYS.contains(&key.as_str()) {
                return Err(Error::config(format!(
                    "unknown key sessions.{key}; known keys: {}",
                    SESSION_KEYS.join(", ")
                )));
            }
        }

        let lifetime = match sessions.get("lifetime") {
            None => DEFAULT_LIFETIME_SECS,
            Some(value) => match value.as_u64() {
                Some(secs) if secs > 0 && secs <= MAX_LIFETIME_SECS => secs,
                _ => {
                    return Err(wrong_type(
                        "sessions.lifetime",
                        "a positive integer (seconds) of at most 315360000 (ten years)",
                        value,
                    ))
                }
            },
        };
        let max_data_size = match sessions.get("max_data_size") {
            None => DEFAULT_MAX_DATA_SIZE,
            Some(value) => match value.as_u64() {
                Some(n) if n > 0 && n <= MAX_MAX_DATA_SIZE => n as usize,
                _ => {
                    return Err(wrong_type(
                        "sessions.max_data_size",
                        "a positive integer of at most 536870912 (bytes)",
                        value,
                    ))
                }
            },
        };
        let fsync = match sessions.get("fsync") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(value) => return Err(wrong_type("sessions.fsync", "true or false", value)),
        };
        let driver = match sessions.get("driver") {
            None => "storage",
            Some(Value::String(name)) => name.as_str(),
            Some(value) => return Err(wrong_type("sessions.driver", "a string", value)),
        };

        let driver = match driver {
            "storage" | "filesystem" | "file" => file_driver(root, sessions, fsync)?,
            "memory" => DriverConfig::Memory,
            "redis" => DriverConfig::Redis(redis_driver(root, sessions)?),
            other => {
                return Err(Error::config(format!(
                    "sessions.driver {:?} is not a known driver; use \"storage\" (files), \"memory\" or \"redis\"",
                    other
                )))
            }
        };
        Ok(Config {
            lifetime: Duration::from_secs(lifetime),
            max_data_size,
            driver,
        })
    }
}

fn file_driver(
    root: &Map<String, Value>,
    sessions: &Map<String, Value>,
    fsync: bool,
) -> Result<DriverConfig> {
    let name = string_key(sessions, "sessions", "storage_name")?.ok_or_else(|| {
        Error::config(
            "sessions.storage_name is required for the file driver: name an entry of \"storages\"",
        )
    })?;
    let storage = match root.get("storages") {
        Some(Value::Object(storages)) => storages.get(name),
        Some(other) => return Err(wrong_type("storages", "an object", other)),
        None => None,
    };
    let storage = match storage {
        Some(Value::Object(storage)) => storage,
        Some(other) => return Err(wrong_type(&format!("storages.{name}"), "an object", other)),
        None => {
            return Err(Error::config(format!(
                "sessions.storage_name {name:?} names no entry of \"storages\""
            )))
        }
    };
    let path = format!("storages.{name}");
    match string_key(storage, &path, "type")? {
        Some("filesystem") => {}
        Some(other) => {
            return Err(Error::config(format!(
                "{path}.type {other:?} is not supported; use \"filesystem\""
            )))
        }
        None => {
            return Err(Error::config(format!(
                "{path}.type is required (\"filesystem\")"
            )))
        }
    }
    let root_dir = string_key(storage, &path, "root")?
        .ok_or_else(|| Error::config(format!("{path}.root is required: the storage directory")))?;
    if root_dir.is_empty() || root_dir.contains('\0') {
        return Err(Error::config(format!(
            "{path}.root {root_dir:?} is not a usable directory"
        )));
    }
    Ok(DriverConfig::File {
        dir: PathBuf::from(root_dir).join("sessions"),
        fsync,
    })
}

fn redis_driver(root: &Map<String, Value>, sessions: &Map<String, Value>) -> Result<RedisConfig> {
    let server = match string_key(sessions, "sessions", "url")? {
        Some(url) => {
            let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
            if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(Error::config(
                    "sessions.url must start with redis://, rediss:// (TLS) or unix://",
                ));
            }
            RedisServer::Url(Secret(url.to_string()))
        }
        None => redis_entry(root, sessions)?,
    };
    let key_prefix = string_key(sessions, "sessions", "key_prefix")?
        .unwrap_or(DEFAULT_KEY_PREFIX)
        .to_string();
    if key_prefix.len() > 256 {
        return Err(Error::config(
            "sessions.key_prefix is longer than 256 bytes",
        ));
    }
    let millis = |key: &str| -> Result<Duration> {
        match sessions.get(key) {
            None => Ok(Duration::from_millis(DEFAULT_REDIS_TIMEOUT_MS)),
            Some(value) => match value.as_u64() {
                Some(ms) if (1..=600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                _ => Err(wrong_type(
                    &format!("sessions.{key}"),
                    "an integer from 1 to 600000 (milliseconds)",
                    value,
                )),
            },
        }
    };
    let pool_size = match sessions.get("pool_size") {
        None => DEFAULT_REDIS_POOL_SIZE,
        Some(value) => match value.as_u64() {
            Some(n) if (1..=1024).contains(&n) => n as usize,
            _ => {
                return Err(wrong_type(
                    "sessions.pool_size",
                    "an integer from 1 to 1024",
                    value,
                ))
            }
        },
    };
    let tls_ca_file = string_key(sessions, "sessions", "tls_ca_file")?.map(PathBuf::from);
    if tls_ca_file.is_some()
        && !matches!(&server, RedisServer::Url(url) if url.0.starts_with("rediss://"))
    {
        return Err(Error::config(
            "sessions.tls_ca_file needs a TLS server: set sessions.url to a rediss:// URL",
        ));
    }
    Ok(RedisConfig {
        server,
        key_prefix,
        connect_timeout: millis("connect_timeout_ms")?,
        command_timeout: millis("command_timeout_ms")?,
        pool_size,
        tls_ca_file,
    })
}

fn redis_entry(root: &Map<String, Value>, sessions: &Map<String, Value>) -> Result<RedisServer> {
    let host_id = match (
        string_key(sessions, "sessions", "host_id")?,
        string_key(sessions, "sessions", "storage_name")?,
    ) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => {
            return Err(Error::config(
                "the redis driver needs sessions.storage_name (or host_id) naming an entry of databases.redis, or sessions.url",
            ))
        }
    };
    let servers = root
        .get("databases")
        .and_then(|d| d.get("redis"))
        .ok_or_else(|| {
            Error::config(format!(
                "sessions.storage_name {host_id:?}: there is no databases.redis list"
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
                "sessions.storage_name {host_id:?} names no entry of databases.redis"
            ))
        })?;
    let entry = entry
        .as_object()
        .ok_or_else(|| wrong_type("databases.redis[]", "an object", entry))?;
    let path = format!("databases.redis[{host_id}]");
    let ip = string_key(entry, &path, "ip")?
        .unwrap_or("127.0.0.1")
        .to_string();
    let port = match entry.get("port") {
        None => 6379,
        Some(value) => match value.as_u64() {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            _ => {
                return Err(wrong_type(
                    &format!("{path}.port"),
                    "an integer from 1 to 65535",
                    value,
                ))
            }
        },
    };
    let dbindex = match entry.get("dbindex") {
        None => 0,
        Some(value) => match value.as_i64() {
            Some(n) if n >= 0 => n,
            _ => {
                return Err(wrong_type(
                    &format!("{path}.dbindex"),
                    "a non-negative integer",
                    value,
                ))
            }
        },
    };
    Ok(RedisServer::Entry {
        host_id: host_id.to_string(),
        ip,
        port,
        dbindex,
        user: string_key(entry, &path, "user")?.map(str::to_string),
        password: string_key(entry, &path, "password")?.map(|p| Secret(p.to_string())),
    })
}

/// An optional string member; any other JSON type is an error naming the key.
fn string_key<'a>(map: &'a Map<String, Value>, path: &str, key: &str) -> Result<Option<&'a str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(wrong_type(&format!("{path}.{key}"), "a string", other)),
    }
}

fn wrong_type(key: &str, expected: &str, got: &Value) -> Error {
    let mut shown = got.to_string();
    if shown.len() > 60 {
        let mut cut = 57;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("...");
    }
    Error::config(format!("{key} must be {expected}, got {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Config::from_json(json.as_bytes()).unwrap_err().message
    }

    #[test]
    fn documented_file_config() {
        let config = Config::from_json(
            br#"{"sessions": {"driver": "storage", "storage_name": "sessions", "lifetime": 3600},
                 "storages": {"sessions": {"type": "filesystem", "root": "/var/app/storage"}},
                 "server": {"port": 80}}"#,
        )
        .unwrap();
        assert_eq!(config.lifetime, Duration::from_secs(3600));
        assert_eq!(config.max_data_size, 1 << 20);
        assert_eq!(
            config.driver,
            DriverConfig::File {
                dir: PathBuf::from("/var/app/storage/sessions"),
                fsync: false
            }
        );
    }

    #[test]
    fn memory_and_redis_configs() {
        let config = Config::from_json(
            br#"{"sessions": {"driver": "memory", "lifetime": 5, "max_data_size": 100}}"#,
        )
        .unwrap();
        assert_eq!(config.driver, DriverConfig::Memory);
        assert_eq!(config.max_data_size, 100);
        let config = Config::from_json(
            br#"{"databases": {"redis": [{"host_id": "r1", "ip": "127.0.0.1", "port": 6380, "dbindex": 2}]},
                 "sessions": {"driver": "redis", "storage_name": "r1", "lifetime": 3600}}"#,
        )
        .unwrap();
        assert_eq!(
            config.driver,
            DriverConfig::Redis(RedisConfig {
                server: RedisServer::Entry {
                    host_id: "r1".into(),
                    ip: "127.0.0.1".into(),
                    port: 6380,
                    dbindex: 2,
                    user: None,
                    password: None,
                },
                key_prefix: "session:".into(),
                connect_timeout: Duration::from_millis(1000),
                command_timeout: Duration::from_millis(1000),
                pool_size: 16,
                tls_ca_file: None,
            })
        );
        let config = Config::from_json(
            br#"{"sessions": {"driver": "redis", "url": "rediss://u:pw@cache:6380/3", "key_prefix": "app:",
                              "connect_timeout_ms": 250, "command_timeout_ms": 500, "pool_size": 4}}"#,
        )
        .unwrap();
        let DriverConfig::Redis(redis) = config.driver else {
            panic!("not redis")
        };
        assert_eq!(
            redis.server,
            RedisServer::Url(Secret("rediss://u:pw@cache:6380/3".into()))
        );
        assert_eq!((redis.key_prefix.as_str(), redis.pool_size), ("app:", 4));
        assert_eq!(redis.command_timeout, Duration::from_millis(500));
        assert!(
            !format!("{redis:?}").contains("pw"),
            "Debug shows the password"
        );
    }

    #[test]
    fn errors_name_the_key_and_value() {
        assert!(err(r#"{"sessions": {"driver": "mongo"}}"#).contains("sessions.driver \"mongo\""));
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetime": 0}}"#)
            .contains("sessions.lifetime must be a positive integer (seconds) of at most 315360000 (ten years), got 0"));
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetime": -5}}"#).contains("got -5"));
        assert!(
            err(r#"{"sessions": {"driver": "memory", "lifetime": 18446744074}}"#)
                .contains("at most 315360000")
        );
        assert!(
            Config::from_json(br#"{"sessions": {"driver": "memory", "lifetime": 315360000}}"#)
                .is_ok()
        );
        assert!(
            err(r#"{"sessions": {"driver": "memory", "lifetime": "3600"}}"#)
                .contains("got \"3600\"")
        );
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetime": 1.5}}"#).contains("got 1.5"));
        assert!(err(r#"{"sessions": {"driver": 3}}"#)
            .contains("sessions.driver must be a string, got 3"));
        assert!(
            err(r#"{"sessions": {"driver": "storage", "storage_name": "x"}}"#)
                .contains("\"x\" names no entry of \"storages\"")
        );
        assert!(err(r#"{"sessions": {"driver": "storage"}}"#)
            .contains("sessions.storage_name is required"));
        assert!(err(r#"{"sessions": {"driver": "storage", "storage_name": "s"}, "storages": {"s": {"type": "s3", "root": "/x"}}}"#).contains("storages.s.type \"s3\""));
        assert!(err(r#"{"sessions": {"driver": "storage", "storage_name": "s"}, "storages": {"s": {"type": "filesystem", "root": 7}}}"#).contains("storages.s.root must be a string, got 7"));
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetme": 5}}"#)
            .contains("unknown key sessions.lifetme"));
        assert!(err(
            r#"{"sessions": {"driver": "redis", "storage_name": "r9"}, "databases": {"redis": []}}"#
        )
        .contains("\"r9\" names no entry of databases.redis"));
        assert!(err(r#"{"sessions": {"driver": "memory", "fsync": "yes"}}"#)
            .contains("sessions.fsync must be true or false"));
        assert!(err(r#"[1]"#).contains("must be a JSON object"));
        assert!(
            err(r#"{"sessions": {"driver": "redis", "url": "http://x"}}"#).contains("sessions.url")
        );
        assert!(
            err(r#"{"sessions": {"driver": "redis", "url": "redis://x", "pool_size": 0}}"#)
                .contains("sessions.pool_size")
        );
        assert!(err(
            r#"{"sessions": {"driver": "redis", "url": "redis://x", "command_timeout_ms": "1s"}}"#
        )
        .contains("sessions.command_timeout_ms"));
        assert!(err(r#"{"sessions": {"driver": "redis"}}"#).contains("sessions.url"));
        assert!(err(r#"{"sessions": "#).contains("not valid JSON"));
        assert!(err(r#"{}"#).contains("no \"sessions\" object"));
    }
}
