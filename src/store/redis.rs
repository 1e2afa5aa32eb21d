//! The Redis driver: sessions shared by every server that reaches one Redis.
//!
//! Commands (keys are `key_prefix` + id, values are the raw bytes):
//! - create: `SET key value NX EX lifetime`: an id collision never overwrites;
//! - get: `GET key`;
//! - update: `SET key value XX KEEPTTL`: only while the key exists, keeping its TTL,
//!   so an expired or destroyed session is never brought back;
//! - destroy: `DEL key`;
//! - remove_expired: nothing to do, Redis expires keys itself.
//!
//! Connections come from a small pool: made when first needed, at most `pool_size`
//! open, each command bounded by `command_timeout` (a frozen server gives a timeout,
//! never a hang). A connection that fails is dropped, never reused; after a server
//! restart the first call on a stale pooled connection retries once on a fresh one,
//! so calls succeed again without re-init. A forked child never touches the sockets
//! it inherited: the pool notices the new pid and starts empty.

use super::Store;
use crate::config::{RedisConfig, RedisServer};
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use parking_lot::{Condvar, Mutex};
use redis::{Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};
use std::time::{Duration, Instant};

pub struct RedisStore {
    client: Client,
    /// `host:port db N`, without credentials, for messages.
    name: String,
    key_prefix: Vec<u8>,
    connect_timeout: Duration,
    command_timeout: Duration,
    pool_size: usize,
    pool: Mutex<Pool>,
    released: Condvar,
}

struct Pool {
    /// The process the connections belong to.
    pid: u32,
    idle: Vec<redis::Connection>,
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

/// A connection lent by the pool; given back (or dropped if broken) on drop.
struct Lent<'a> {
    store: &'a RedisStore,
    conn: Option<redis::Connection>,
    reused: bool,
    healthy: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut pool = self.store.pool.lock();
        // A lent connection is given back in the process that borrowed it: fork()
        // is never called inside a call, and only the forking thread lives on.
        match self.conn.take() {
            Some(conn) if self.healthy => pool.idle.push(conn),
            // Broken, or never made (the connect failed): free its slot.
            _ => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.store.released.notify_one();
    }
}

fn connection_info(config: &RedisConfig) -> Result<ConnectionInfo> {
    match &config.server {
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

/// A Redis error without its details, which may quote the URL and its password.
fn kind_only(err: &redis::RedisError) -> String {
    format!("{:?}", err.kind())
}

impl RedisStore {
    /// Prepares the store; no connection is made until the first call.
    pub fn open(config: &RedisConfig) -> Result<RedisStore> {
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
        Ok(RedisStore {
            client,
            name,
            key_prefix: config.key_prefix.as_bytes().to_vec(),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            pool_size: config.pool_size,
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                idle: Vec::new(),
                open: 0,
            }),
            released: Condvar::new(),
        })
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
        let deadline = Instant::now() + self.command_timeout;
        let pid = std::process::id();
        let mut pool = self.pool.lock();
        pool.adopt(pid);
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(Lent {
                    store: self,
                    conn: Some(conn),
                    reused: true,
                    healthy: true,
                });
            }
            if pool.open < self.pool_size {
                pool.open += 1;
                drop(pool);
                let mut lent = Lent {
                    store: self,
                    conn: None,
                    reused: false,
                    healthy: false,
                };
                let conn = self.connect()?; // on error, `lent` gives the slot back
                lent.conn = Some(conn);
                lent.healthy = true;
                return Ok(lent);
            }
            if self.released.wait_until(&mut pool, deadline).timed_out() {
                return Err(Error::new(
                    SessionError::Timeout,
                    format!(
                        "{}: all {} pooled connections stayed busy for {} ms (raise sessions.pool_size)",
                        self.name,
                        self.pool_size,
                        self.command_timeout.as_millis()
                    ),
                ));
            }
        }
    }

    fn connect(&self) -> Result<redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(|err| self.error("cannot connect", &err))?;
        conn.set_read_timeout(Some(self.command_timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.command_timeout)))
            .map_err(|err| self.error("cannot set timeouts", &err))?;
        Ok(conn)
    }

    /// Drops every idle connection: after one turned out dead, the others (made
    /// before the same server restart) are most likely dead too.
    fn drop_idle(&self) {
        let mut pool = self.pool.lock();
        let dropped = pool.idle.len();
        pool.idle.clear();
        pool.open -= dropped;
    }

    /// Runs one command. A stale pooled connection (the server restarted since it
    /// was made) is replaced and the command retried once on a fresh connection.
    fn run<T: redis::FromRedisValue>(&self, what: &str, cmd: &Cmd) -> Result<T> {
        let mut retried = false;
        loop {
            let mut lent = self.lend()?;
            let conn = lent.conn.as_mut().expect("a lent connection");
            match cmd.query::<T>(conn) {
                Ok(value) => return Ok(value),
                Err(err) => {
                    // Any I/O failure leaves the connection in an unknown state (a
                    // late answer could pair with the next command): never reuse it.
                    let broken = err.is_io_error() || err.is_unrecoverable_error();
                    if broken {
                        lent.healthy = false;
                    }
                    let stale = broken && lent.reused && !err.is_timeout();
                    drop(lent);
                    if stale && !retried {
                        retried = true;
                        self.drop_idle();
                        continue;
                    }
                    return Err(self.error(what, &err));
                }
            }
        }
    }

    fn error(&self, what: &str, err: &redis::RedisError) -> Error {
        let code = if err.is_timeout() {
            SessionError::Timeout
        } else if err.kind() == redis::ErrorKind::AuthenticationFailed {
            SessionError::Config
        } else {
            SessionError::StorageUnavailable
        };
        let hint = match code {
            SessionError::Timeout => " (no answer in time)",
            SessionError::Config => " (check the user and password)",
            _ => "",
        };
        Error::new(code, format!("{}: {what}: {err}{hint}", self.name))
    }
}

/// `OK` from a conditional `SET`, or nil when its condition failed.
fn set_applied(reply: Value) -> bool {
    matches!(reply, Value::Okay | Value::SimpleString(_))
}

impl Store for RedisStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id))
            .arg(data)
            .arg("NX")
            .arg("EX")
            .arg(lifetime.as_secs().max(1));
        Ok(set_applied(self.run("SET NX EX", &cmd)?))
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(id));
        self.run("GET", &cmd)
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id)).arg(data).arg("XX").arg("KEEPTTL");
        Ok(set_applied(self.run("SET XX KEEPTTL", &cmd)?))
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(id));
        self.run::<i64>("DEL", &cmd).map(|_| ())
    }

    fn remove_expired(&self) -> Result<usize> {
        Ok(0) // Redis expires keys by itself
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.pool.lock().adopt(std::process::id());
    }
}
