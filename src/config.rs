//! The `config.json` shape of the C Web Framework, parsed into a [`Config`].
//!
//! `sessions` is either one store configuration (the documented shape):
//!
//! ```json
//! {"sessions": {"driver": "storage", "storage_name": "sessions", "lifetime": 3600},
//!  "storages": {"sessions": {"type": "filesystem", "root": "/var/app/storage"}}}
//! ```
//!
//! or a map of names to configurations (the framework's current shape):
//! `{"sessions": {"web": {...}, "api": {...}}}`. The default store is the entry
//! named `default`, else the only entry.
//!
//! This module parses the keys every driver shares (`driver`, `lifetime`, ...);
//! each driver in `crate::store` parses its own. A key nobody owns is an error that
//! names it. Keys outside `sessions`, `storages` and `databases` belong to the rest
//! of the application and are ignored.

use crate::cookie::{self, CookieConfig};
use crate::error::{Error, Result};
use crate::seal::Secret;
use crate::store::{self, DriverConfig, Expiry};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Default session lifetime: one hour.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;
/// Longest lifetime accepted: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
/// Default largest accepted session data: 1 MiB.
pub const DEFAULT_MAX_DATA_SIZE: usize = 1 << 20;
/// Largest `max_data_size` accepted: 512 MiB.
pub const MAX_MAX_DATA_SIZE: u64 = 512 << 20;
/// The name of the store used when a call names none.
pub const DEFAULT_STORE: &str = "default";

/// The keys of `sessions` that every driver shares.
pub const COMMON_KEYS: &[&str] = &[
    "driver",
    "lifetime",
    "max_lifetime",
    "idle_timeout",
    "regenerate_grace",
    "max_data_size",
    "secret",
    "secret_fallbacks",
    "cookie",
    "owner_key",
    "max_sessions_per_owner",
];

/// A complete, validated configuration: one or more named stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub stores: Vec<StoreConfig>,
    /// Index in `stores` of the default store: `None` for a map of several stores
    /// without one named `default` (then only named stores can be opened).
    pub default: Option<usize>,
}

/// The configuration of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `default` for the single shape, else the key in the `sessions` map.
    pub name: String,
    /// How long a session lives after `session_create`; `session_update` keeps it.
    pub lifetime: Duration,
    /// Longest lifetime `session_create_ttl` accepts (default: `lifetime`).
    pub max_lifetime: Duration,
    /// Largest session data accepted, in bytes.
    pub max_data_size: usize,
    pub expiry: Expiry,
    pub driver: DriverConfig,
    /// `secret` then `secret_fallbacks`: empty when data is stored unencrypted.
    pub secrets: Vec<Secret>,
    pub cookie: CookieConfig,
    /// The owner index, when `owner_key` is set.
    pub owner: Option<OwnerConfig>,
}

/// `owner_key` and `max_sessions_per_owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerConfig {
    /// The top-level member of the session data that names its owner.
    pub key: String,
    /// Creating one more session for an owner ends its oldest beyond this many.
    pub max_sessions: Option<u64>,
}

impl Config {
    /// The embedded default: the file driver in `./sessions`, lifetime 3600 s.
    pub fn embedded_default() -> Config {
        let lifetime = Duration::from_secs(DEFAULT_LIFETIME_SECS);
        Config {
            stores: vec![StoreConfig {
                name: DEFAULT_STORE.to_string(),
                lifetime,
                max_lifetime: lifetime,
                max_data_size: DEFAULT_MAX_DATA_SIZE,
                expiry: Expiry::default(),
                driver: DriverConfig::File(store::file::FileConfig::in_dir(".".into())),
                secrets: Vec::new(),
                cookie: CookieConfig::default(),
                owner: None,
            }],
            default: Some(0),
        }
    }

    /// A configuration holding one store.
    pub fn single(store: StoreConfig) -> Config {
        Config {
            stores: vec![store],
            default: Some(0),
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
        let root = Root(
            root.as_object()
                .ok_or_else(|| Error::config("config must be a JSON object"))?,
        );
        let sessions = match root.0.get("sessions") {
            Some(Value::Object(map)) => map,
            Some(other) => return Err(wrong_type("sessions", "an object", other)),
            None => return Err(Error::config("config has no \"sessions\" object")),
        };
        if !is_named_map(sessions) {
            let store = parse_store(DEFAULT_STORE, &Section::new(sessions, "sessions"), &root)?;
            return Ok(Config::single(store));
        }
        let mut stores = Vec::new();
        for (name, value) in sessions {
            let path = format!("sessions.{name}");
            let Value::Object(map) = value else {
                return Err(wrong_type(&path, "an object", value));
            };
            stores.push(parse_store(name, &Section::new(map, &path), &root)?);
        }
        let default = match stores.iter().position(|s| s.name == DEFAULT_STORE) {
            Some(index) => Some(index),
            None if stores.len() == 1 => Some(0),
            None => None,
        };
        Ok(Config { stores, default })
    }

    /// The default store, or the error that says why there is none.
    pub fn default_store(&self) -> Result<&StoreConfig> {
        self.default.map(|i| &self.stores[i]).ok_or_else(|| {
            Error::config(format!(
                "sessions names {} stores ({}) and none is named \"default\": name one \"default\", or name the store to open",
                self.stores.len(),
                self.names().join(", ")
            ))
        })
    }

    fn names(&self) -> Vec<&str> {
        self.stores.iter().map(|s| s.name.as_str()).collect()
    }

    /// The store called `name`, or the default store for `None`.
    pub fn store(&self, name: Option<&str>) -> Result<&StoreConfig> {
        match name {
            None => self.default_store(),
            Some(name) => self.stores.iter().find(|s| s.name == name).ok_or_else(|| {
                Error::config(format!(
                    "no session store named {name:?}; the configuration has: {}",
                    self.names().join(", ")
                ))
            }),
        }
    }
}

/// `sessions` is a map of named stores when it is not empty, none of its keys is a
/// configuration key, and every value is an object.
fn is_named_map(sessions: &Map<String, Value>) -> bool {
    let known = |key: &str| COMMON_KEYS.contains(&key) || store::owner_of(key).is_some();
    !sessions.is_empty()
        && sessions
            .iter()
            .all(|(key, value)| value.is_object() && !known(key))
}

fn parse_store(name: &str, section: &Section, root: &Root) -> Result<StoreConfig> {
    let lifetime = section
        .u64_in("lifetime", 1..=MAX_LIFETIME_SECS, SECONDS_TEN_YEARS)?
        .unwrap_or(DEFAULT_LIFETIME_SECS);
    let max_lifetime = section
        .u64_in("max_lifetime", 1..=MAX_LIFETIME_SECS, SECONDS_TEN_YEARS)?
        .unwrap_or(lifetime);
    if max_lifetime < lifetime {
        return Err(Error::config(format!(
            "{} ({max_lifetime}) is shorter than {} ({lifetime})",
            section.key_path("max_lifetime"),
            section.key_path("lifetime")
        )));
    }
    let idle_timeout = section.u64_in("idle_timeout", 1..=MAX_LIFETIME_SECS, SECONDS_TEN_YEARS)?;
    let regenerate_grace = section
        .u64_in(
            "regenerate_grace",
            0..=3600,
            "an integer from 0 to 3600 (seconds)",
        )?
        .unwrap_or(0);
    let max_data_size = section
        .u64_in(
            "max_data_size",
            1..=MAX_MAX_DATA_SIZE,
            "a positive integer of at most 536870912 (bytes)",
        )?
        .map_or(DEFAULT_MAX_DATA_SIZE, |n| n as usize);
    let secrets = parse_secrets(section)?;
    let cookie = cookie::parse(section)?;
    let owner = parse_owner(section)?;
    let driver = section.string("driver")?.unwrap_or("storage");
    let config = store::parse(driver, section, root)?;
    section.finish(driver)?;
    Ok(StoreConfig {
        name: name.to_string(),
        lifetime: Duration::from_secs(lifetime),
        max_lifetime: Duration::from_secs(max_lifetime),
        max_data_size,
        expiry: Expiry {
            idle_timeout: idle_timeout.map(Duration::from_secs),
            regenerate_grace: Duration::from_secs(regenerate_grace),
        },
        driver: config,
        secrets,
        cookie,
        owner,
    })
}

/// `secret` and `secret_fallbacks`: each at least 32 bytes, never quoted.
fn parse_secrets(section: &Section) -> Result<Vec<Secret>> {
    let mut secrets = Vec::new();
    if let Some(secret) = section.string("secret")? {
        secrets.push(Secret::new(secret.as_bytes(), &section.key_path("secret"))?);
    }
    let key = section.key_path("secret_fallbacks");
    match section.get("secret_fallbacks") {
        None => {}
        Some(_) if secrets.is_empty() => {
            return Err(Error::config(format!(
                "{key} needs {}: the secret every write uses",
                section.key_path("secret")
            )))
        }
        Some(Value::Array(list)) => {
            for (i, value) in list.iter().enumerate() {
                let Value::String(text) = value else {
                    return Err(Error::config(format!("{key}[{i}] must be a string")));
                };
                secrets.push(Secret::new(text.as_bytes(), &format!("{key}[{i}]"))?);
            }
        }
        Some(_) => return Err(Error::config(format!("{key} must be an array of strings"))),
    }
    Ok(secrets)
}

/// `owner_key` and `max_sessions_per_owner`.
fn parse_owner(section: &Section) -> Result<Option<OwnerConfig>> {
    let key = section.string("owner_key")?;
    let max_sessions = section.u64_in(
        "max_sessions_per_owner",
        1..=1_000_000,
        "an integer from 1 to 1000000 (sessions)",
    )?;
    match (key, max_sessions) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::config(format!(
            "{} needs {}: the member of the session data that names its owner",
            section.key_path("max_sessions_per_owner"),
            section.key_path("owner_key")
        ))),
        (Some(""), _) => Err(Error::config(format!(
            "{} must name a member of the session data, such as \"user_id\"",
            section.key_path("owner_key")
        ))),
        (Some(key), max_sessions) => Ok(Some(OwnerConfig {
            key: key.to_string(),
            max_sessions,
        })),
    }
}

const SECONDS_TEN_YEARS: &str = "a positive integer (seconds) of at most 315360000 (ten years)";

/// The whole configuration, for drivers that look up `storages` or `databases`.
pub struct Root<'a>(pub &'a Map<String, Value>);

impl<'a> Root<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }
}

/// A JSON object of the configuration being read. It remembers which keys were
/// read, so that [`Section::finish`] rejects every key nobody owns, by name.
pub struct Section<'a> {
    map: &'a Map<String, Value>,
    path: String,
    used: RefCell<Vec<String>>,
}

impl<'a> Section<'a> {
    pub fn new(map: &'a Map<String, Value>, path: &str) -> Section<'a> {
        Section {
            map,
            path: path.to_string(),
            used: RefCell::new(Vec::new()),
        }
    }

    /// `path.key`, for messages.
    pub fn key_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of `key`, marking it as read.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().push(key.to_string());
        self.map.get(key)
    }

    /// An optional string.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(wrong_type(&self.key_path(key), "a string", other)),
        }
    }

    /// An optional boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.key_path(key), "true or false", other)),
        }
    }

    /// An optional integer in `range`; `expected` describes it in the message.
    pub fn u64_in(
        &self,
        key: &str,
        range: RangeInclusive<u64>,
        expected: &str,
    ) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(wrong_type(&self.key_path(key), expected, value)),
            },
        }
    }

    /// An optional duration in milliseconds, from 1 ms to 10 minutes.
    pub fn millis(&self, key: &str) -> Result<Option<Duration>> {
        Ok(self
            .u64_in(
                key,
                1..=600_000,
                "an integer from 1 to 600000 (milliseconds)",
            )?
            .map(Duration::from_millis))
    }

    /// Fails on the first key that was never read, naming it, and the driver that
    /// owns it when another driver does.
    pub fn finish(&self, driver: &str) -> Result<()> {
        let used = self.used.borrow();
        for key in self.map.keys() {
            if used.iter().any(|u| u == key) {
                continue;
            }
            let path = self.key_path(key);
            if self.path.starts_with("sessions") {
                if let Some(owner) = store::owner_of(key) {
                    return Err(Error::config(format!(
                        "{path} belongs to the {owner} driver, not to the {driver:?} driver of {}",
                        self.path
                    )));
                }
            }
            let mut known: Vec<&str> = used.iter().map(String::as_str).collect();
            known.sort_unstable();
            known.dedup();
            return Err(Error::config(format!(
                "unknown key {path}; known keys here: {}",
                known.join(", ")
            )));
        }
        Ok(())
    }
}

/// A message for a value of the wrong type or range, quoting (a short prefix of) it.
pub fn wrong_type(key: &str, expected: &str, got: &Value) -> Error {
    // Values that may hold a secret are never quoted.
    if key.ends_with("password")
        || key.ends_with(".url")
        || key.starts_with("databases")
        || key.contains("secret")
    {
        return Error::config(format!("{key} must be {expected}"));
    }
    // An object or an array may hold anything, secrets included (found by
    // fuzzing: `"driver": {"secret": ...}`): only its kind is named.
    let mut shown = match got {
        Value::Object(_) => {
            return Error::config(format!("{key} must be {expected}, got an object"))
        }
        Value::Array(_) => return Error::config(format!("{key} must be {expected}, got an array")),
        scalar => scalar.to_string(),
    };
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
    use crate::store::file::FileConfig;
    use std::path::PathBuf;

    fn err(json: &str) -> String {
        Config::from_json(json.as_bytes()).unwrap_err().message
    }

    fn one(json: &str) -> StoreConfig {
        let config = Config::from_json(json.as_bytes()).unwrap();
        config.default_store().unwrap().clone()
    }

    #[test]
    fn documented_file_config() {
        let store = one(
            r#"{"sessions": {"driver": "storage", "storage_name": "sessions", "lifetime": 3600},
                 "storages": {"sessions": {"type": "filesystem", "root": "/var/app/storage"}},
                 "server": {"port": 80}}"#,
        );
        assert_eq!(store.name, "default");
        assert_eq!(store.lifetime, Duration::from_secs(3600));
        assert_eq!(store.max_lifetime, Duration::from_secs(3600));
        assert_eq!(store.expiry, Expiry::default());
        match store.driver {
            DriverConfig::File(FileConfig { root, .. }) => {
                assert_eq!(root, PathBuf::from("/var/app/storage"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn named_stores_and_the_default() {
        let config = Config::from_json(
            br#"{"sessions": {"web": {"driver": "memory", "idle_timeout": 600},
                              "api": {"driver": "filesystem", "storage_name": "s", "lifetime": 60}},
                 "storages": {"s": {"type": "filesystem", "root": "/tmp"}}}"#,
        )
        .unwrap();
        // Named stores open; the default is an error that says why.
        assert_eq!(config.store(Some("api")).unwrap().lifetime.as_secs(), 60);
        assert!(config
            .store(None)
            .unwrap_err()
            .message
            .contains("none is named \"default\""));
        let config = Config::from_json(
            br#"{"sessions": {"web": {"driver": "memory", "idle_timeout": 600},
                              "default": {"driver": "memory", "regenerate_grace": 5}}}"#,
        )
        .unwrap();
        assert_eq!(config.store(None).unwrap().name, "default");
        assert_eq!(
            config.store(Some("web")).unwrap().expiry.idle_timeout,
            Some(Duration::from_secs(600))
        );
        assert!(config
            .store(Some("nope"))
            .unwrap_err()
            .message
            .contains("no session store named \"nope\""));
        // One entry: it is the default whatever its name.
        let config = Config::from_json(br#"{"sessions": {"only": {"driver": "memory"}}}"#).unwrap();
        assert_eq!(config.store(None).unwrap().name, "only");
        assert!(
            err(r#"{"sessions": {"web": {"driver": "memory", "lifetme": 5}}}"#)
                .contains("unknown key sessions.web.lifetme")
        );
    }

    #[test]
    fn errors_name_the_key_and_value() {
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetime": 0}}"#)
            .contains("sessions.lifetime must be a positive integer (seconds) of at most 315360000 (ten years), got 0"));
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetime": -5}}"#).contains("got -5"));
        assert!(
            err(r#"{"sessions": {"driver": "memory", "lifetime": "3600"}}"#)
                .contains("got \"3600\"")
        );
        assert!(err(r#"{"sessions": {"driver": 3}}"#)
            .contains("sessions.driver must be a string, got 3"));
        assert!(err(r#"{"sessions": {"driver": "memory", "lifetme": 5}}"#)
            .contains("unknown key sessions.lifetme"));
        assert!(err(r#"{"sessions": {"driver": "memory", "fsync": true}}"#)
            .contains("sessions.fsync belongs to the storage driver"));
        assert!(
            err(r#"{"sessions": {"driver": "memory", "lifetime": 60, "max_lifetime": 30}}"#)
                .contains("shorter than")
        );
        assert!(
            err(r#"{"sessions": {"driver": "memory", "regenerate_grace": 7200}}"#)
                .contains("sessions.regenerate_grace must be an integer from 0 to 3600")
        );
        assert!(err(r#"[1]"#).contains("must be a JSON object"));
        assert!(err(r#"{"sessions": "#).contains("not valid JSON"));
        assert!(err(r#"{}"#).contains("no \"sessions\" object"));
        assert!(err(r#"{"sessions": {"driver": "tape"}}"#).contains("not a known driver"));
    }

    /// `lifetime`, `max_lifetime` and `idle_timeout` accept any number of seconds
    /// from 1 to 315360000 (ten years), as the README's table says, and nothing
    /// beyond.
    #[test]
    fn durations_accept_up_to_ten_years_and_no_more() {
        const TEN_YEARS: u64 = 315_360_000;
        let store = one(&format!(
            r#"{{"sessions": {{"driver": "memory", "lifetime": {TEN_YEARS},
                 "max_lifetime": {TEN_YEARS}, "idle_timeout": {TEN_YEARS}}}}}"#
        ));
        assert_eq!(store.lifetime, Duration::from_secs(TEN_YEARS));
        assert_eq!(store.max_lifetime, Duration::from_secs(TEN_YEARS));
        assert_eq!(
            store.expiry.idle_timeout,
            Some(Duration::from_secs(TEN_YEARS))
        );
        for key in ["lifetime", "max_lifetime", "idle_timeout"] {
            let message = err(&format!(
                r#"{{"sessions": {{"driver": "memory", "{key}": {}}}}}"#,
                TEN_YEARS + 1
            ));
            assert!(
                message.contains(&format!("sessions.{key} must be a positive integer (seconds) of at most 315360000 (ten years)")),
                "{message}"
            );
        }
    }

    /// A single store is read as one store even when every key it has holds an
    /// object: `{"sessions": {"cookie": {...}}}` is the single shape with its cookie
    /// settings (here missing the file driver's `storage_name`), not a map holding
    /// a store named "cookie".
    #[test]
    fn a_single_store_whose_keys_all_hold_objects_is_not_a_map_of_stores() {
        let message = err(r#"{"sessions": {"cookie": {"name": "sid"}}}"#);
        assert!(
            message.contains("sessions.storage_name is required for the file driver"),
            "{message}"
        );
    }

    /// A cookie that browsers would drop is refused with a message naming the
    /// section it comes from (README, Cookies: "naming the key"), also in a map of
    /// named stores.
    #[test]
    fn refused_cookie_rules_name_their_section() {
        let message = err(
            r#"{"sessions": {"driver": "memory", "cookie": {"same_site": "None", "secure": false}}}"#,
        );
        assert!(
            message.starts_with("sessions.cookie: same_site \"None\" needs \"secure\": true"),
            "{message}"
        );
        let message = err(
            r#"{"sessions": {"web": {"driver": "memory", "cookie": {"name": "__Host-sid", "path": "/app"}}}}"#,
        );
        assert!(
            message.starts_with("sessions.web.cookie: a name starting with __Host- needs"),
            "{message}"
        );
    }

    /// A wrong value is quoted in full up to 60 characters (the README's
    /// `..., got 0`), and a longer one by its first 57 bytes and `...`, cut on a
    /// character boundary.
    #[test]
    fn wrong_values_are_quoted_in_full_or_by_a_short_prefix() {
        let wrong = |value: &str| {
            err(&format!(
                r#"{{"sessions": {{"driver": "memory", "lifetime": {value}}}}}"#
            ))
        };
        assert_eq!(
            wrong("0"),
            "sessions.lifetime must be a positive integer (seconds) of at most 315360000 (ten years), got 0"
        );
        // 60 characters with the quotes: shown whole.
        let sixty = format!("\"{}\"", "x".repeat(58));
        assert!(
            wrong(&sixty).ends_with(&format!(", got {sixty}")),
            "{}",
            wrong(&sixty)
        );
        // Longer: the first 57 bytes, then "...".
        let long = format!("\"{}\"", "x".repeat(100));
        assert!(
            wrong(&long).ends_with(&format!(", got {}...", &long[..57])),
            "{}",
            wrong(&long)
        );
        // A character across byte 57 is left out whole, never cut in two.
        let accented = format!("\"{}é{}\"", "x".repeat(55), "x".repeat(40));
        assert!(
            wrong(&accented).ends_with(&format!(", got \"{}...", "x".repeat(55))),
            "{}",
            wrong(&accented)
        );
    }

    #[test]
    #[cfg(feature = "redis")]
    fn sentinel_and_cluster_nodes_are_read_as_written_and_checked() {
        use crate::store::redis::{RedisServer, Secret, SentinelConfig};
        let server = |json: &str| match one(json).driver {
            DriverConfig::Redis(redis) => redis.server,
            _ => panic!("not redis"),
        };
        let sentinel = |nodes: &str, extra: &str| {
            format!(
                r#"{{"sessions": {{"driver": "redis", "sentinel": {{"master_name": "m", "nodes": {nodes}{extra}}}}}}}"#
            )
        };
        assert_eq!(
            server(&sentinel(
                r#"["10.0.0.1:26379", "[::1]:26380", "s.example:1"]"#,
                r#", "dbindex": 2147483648"#
            )),
            RedisServer::Sentinel(SentinelConfig {
                master_name: "m".into(),
                nodes: vec![
                    ("10.0.0.1".into(), 26379),
                    ("::1".into(), 26380),
                    ("s.example".into(), 1)
                ],
                sentinel_user: None,
                sentinel_password: None,
                user: None,
                password: None,
                dbindex: 1 << 31,
            })
        );
        assert!(err(&sentinel("[]", "")).contains("nodes is required"));
        assert!(err(&sentinel(r#"["h:1"]"#, r#", "dbindex": 2147483649"#)).contains("dbindex"));
        let cluster =
            |nodes: &str| format!(r#"{{"sessions": {{"driver": "redis", "cluster": {nodes}}}}}"#);
        assert_eq!(
            server(&cluster(
                r#"["h1:7000", "redis://u:p@h2:7001", "rediss://h3:7002"]"#
            )),
            RedisServer::Cluster {
                nodes: vec![
                    Secret("redis://h1:7000".into()),
                    Secret("redis://u:p@h2:7001".into()),
                    Secret("rediss://h3:7002".into()),
                ],
                user: None,
                password: None,
            }
        );
        assert!(err(&cluster("[]")).contains("is empty"));
        for bad in ["h:0", "h", ":7000", "h:65536", "[]:1"] {
            let message = err(&cluster(&format!("[{bad:?}]")));
            assert!(message.contains("is not \"host:port\""), "{bad}: {message}");
            let message = err(&sentinel(&format!("[{bad:?}]"), ""));
            assert!(message.contains("is not \"host:port\""), "{bad}: {message}");
        }
    }

    #[test]
    #[cfg(feature = "redis")]
    fn redis_servers_named_twice_or_prefixes_too_long_are_refused() {
        let redis = |keys: &str| {
            format!(
                r#"{{"databases": {{"redis": [{{"host_id": "r", "ip": "127.0.0.1", "port": 6379}},
                    {{"host_id": "c", "cluster": ["h:7000"], "ip": "127.0.0.1"}}]}},
                  "sessions": {{"driver": "redis", {keys}}}}}"#
            )
        };
        let sentinel = r#""sentinel": {"master_name": "m", "nodes": ["h:26379"]}"#;
        for (keys, refusal) in [
            (
                format!(r#""url": "redis://h", {sentinel}"#),
                "each name a server",
            ),
            (
                r#""url": "redis://h", "cluster": ["h:1"]"#.to_string(),
                "each name a server",
            ),
            (
                r#""url": "redis://h", "storage_name": "r""#.to_string(),
                "each name a server",
            ),
            (
                format!(r#"{sentinel}, "host_id": "r""#),
                "each name a server",
            ),
            (
                r#""storage_name": "c""#.to_string(),
                "ip/port/sentinel each name a server",
            ),
        ] {
            let message = err(&redis(&keys));
            assert!(message.contains(refusal), "{keys}: {message}");
        }
        let prefix = |len: usize| {
            redis(&format!(
                r#""url": "redis://h", "key_prefix": "{}""#,
                "p".repeat(len)
            ))
        };
        assert!(Config::from_json(prefix(256).as_bytes()).is_ok());
        assert!(err(&prefix(257)).contains("key_prefix is longer than 256 bytes"));
        assert!(Config::from_json(redis(r#""storage_name": "r""#).as_bytes()).is_ok());
    }

    #[test]
    #[cfg(feature = "redis")]
    fn redis_entries_tls_and_credentials_are_checked_where_they_are_given() {
        use crate::store::redis::RedisServer;
        // An entry of databases.redis, used by storage_name "e".
        let entry = |fields: &str| {
            format!(
                r#"{{"databases": {{"redis": [{{"host_id": "e", {fields}}}]}},
                    "sessions": {{"driver": "redis", "storage_name": "e"}}}}"#
            )
        };
        let server = |json: &str| match one(json).driver {
            DriverConfig::Redis(redis) => redis.server,
            _ => panic!("not redis"),
        };
        let sentinel = r#""sentinel": {"master_name": "m", "nodes": ["h:26379"]"#;
        for (fields, refusal) in [
            (
                r#""cluster": ["h:1"], "port": 7000"#.to_string(),
                "ip/port/sentinel each name a server",
            ),
            (
                format!(r#""cluster": ["h:1"], {sentinel}}}"#),
                "ip/port/sentinel each name a server",
            ),
            (
                r#""cluster": ["h:1"], "dbindex": 1"#.to_string(),
                "Redis Cluster has only database 0",
            ),
            (
                format!(r#"{sentinel}}}, "port": 6380"#),
                "ip/port both name a server",
            ),
            (
                format!(r#"{sentinel}, "user": "u"}}, "password": "p""#),
                "either in the entry or in its sentinel object",
            ),
            (
                format!(r#"{sentinel}, "password": "p"}}, "dbindex": 1"#),
                "either in the entry or in its sentinel object",
            ),
            (
                format!(r#"{sentinel}, "dbindex": 3}}, "user": "u""#),
                "either in the entry or in its sentinel object",
            ),
        ] {
            let message = err(&entry(&fields));
            assert!(message.contains(refusal), "{fields}: {message}");
        }
        assert!(matches!(
            server(&entry(r#""cluster": ["h:1"], "dbindex": 0"#)),
            RedisServer::Cluster { .. }
        ));
        // Credentials in one place or the other, and the largest database.
        for fields in [
            format!(r#"{sentinel}, "user": "u", "dbindex": 2147483648}}"#),
            format!(r#"{sentinel}}}, "user": "u", "dbindex": 2147483648"#),
        ] {
            match server(&entry(&fields)) {
                RedisServer::Sentinel(s) => {
                    assert_eq!(s.user.as_deref(), Some("u"));
                    assert_eq!(s.dbindex, 1 << 31);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            server(&entry(
                r#""ip": "10.1.1.1", "port": 7, "dbindex": 2147483648"#
            )),
            RedisServer::Entry {
                port: 7,
                dbindex: 2147483648,
                ..
            }
        ));

        // tls_ca_file only with a TLS server: a rediss:// URL, or every seed.
        let tls = |server: &str| {
            format!(r#"{{"sessions": {{"driver": "redis", {server}, "tls_ca_file": "/ca.pem"}}}}"#)
        };
        assert!(Config::from_json(tls(r#""url": "rediss://h""#).as_bytes()).is_ok());
        assert!(Config::from_json(
            tls(r#""cluster": ["rediss://a:1", "rediss://b:2"]"#).as_bytes()
        )
        .is_ok());
        for server in [
            r#""url": "redis://h""#.to_string(),
            r#""cluster": ["rediss://a:1", "b:2"]"#.to_string(),
            format!("{sentinel}}}"),
        ] {
            assert!(
                err(&tls(&server)).contains("needs a TLS server"),
                "{server}"
            );
        }
    }

    #[test]
    #[cfg(feature = "redis")]
    fn the_local_cache_has_documented_defaults_and_takes_each_setting() {
        use crate::store::redis::CacheConfig;
        let cache = |extra: &str| match one(&format!(
            r#"{{"sessions": {{"driver": "redis", "url": "redis://h"{extra}}}}}"#
        ))
        .driver
        {
            DriverConfig::Redis(redis) => redis.local_cache,
            _ => panic!("not redis"),
        };
        assert_eq!(cache(""), None);
        assert_eq!(cache(r#", "local_cache": false"#), None);
        // The defaults the README gives.
        assert_eq!(
            cache(r#", "local_cache": {}"#),
            Some(CacheConfig {
                max_entries: 10_000,
                max_bytes: 67_108_864,
                max_stale: Duration::from_millis(100),
            })
        );
        assert_eq!(
            cache(r#", "local_cache": {"max_entries": 5, "max_bytes": 4096, "max_stale_ms": 40}"#),
            Some(CacheConfig {
                max_entries: 5,
                max_bytes: 4096,
                max_stale: Duration::from_millis(40),
            })
        );
    }

    #[test]
    #[cfg(feature = "redis")]
    fn redis_values_that_may_hold_a_secret_are_never_quoted() {
        let secret = err(r#"{"sessions": {"driver": "redis", "host_id": "r"},
                "databases": {"redis": [{"host_id": "r", "password": 31415926535}]}}"#);
        assert!(
            secret.contains("databases.redis[r].password must be a string"),
            "{secret}"
        );
        assert!(!secret.contains("31415926535"), "{secret}");
        let url = err(r#"{"sessions": {"driver": "redis", "url": ["redis://u:pw@h"]}}"#);
        assert!(
            url.contains("sessions.url must be a string") && !url.contains("pw"),
            "{url}"
        );
    }

    /// A build without the Redis driver still knows its keys, and says why it
    /// cannot use them (`cargo test --no-default-features --lib` runs it).
    #[test]
    #[cfg(not(feature = "redis"))]
    fn a_build_without_redis_says_so() {
        let message = err(r#"{"sessions": {"driver": "redis", "url": "redis://h"}}"#);
        assert!(
            message.contains("built without the Redis driver"),
            "{message}"
        );
        let message = err(r#"{"sessions": {"driver": "memory", "url": "redis://h"}}"#);
        assert!(message.contains("belongs to the redis driver"), "{message}");
        one(r#"{"sessions": {"driver": "memory"}}"#);
    }
}
