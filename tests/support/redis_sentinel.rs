//! A real Redis Sentinel setup for tests and the benchmark: 1 primary, 1 replica
//! (in sync before the sentinels start) and 3 sentinels, each a `redis-server` on
//! a free loopback port in its own temporary directory, killed when dropped.
//!
//! ```ignore
//! let t = RedisSentinel::start();
//! let json = format!(r#"{{"sessions": {{"driver": "redis", {}}}}}"#, t.snippet());
//! ```

#![allow(dead_code)]

use super::redis_server::RedisServer;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the sentinels monitor the primary under (`master_name`).
pub const MASTER: &str = "sessions-primary";

/// A `redis-server --sentinel` on a free loopback port, monitoring `MASTER`.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Sentinel {
    /// Starts a sentinel that watches the primary on `primary_port` (quorum 2),
    /// and declares it down after `down_after_ms` without an answer.
    fn start(primary_port: u16, down_after_ms: u64) -> Sentinel {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("libsession-sentinel-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} {down_after_ms}\n\
                 sentinel failover-timeout {MASTER} 5000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sentinel.log")).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let sentinel = Sentinel { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sentinel.master().is_none() {
            assert!(Instant::now() < deadline, "sentinel {n} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    /// The primary's port as this sentinel sees it.
    pub fn master(&self) -> Option<u16> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER)
            .query::<Option<(String, u16)>>(&mut conn)
            .ok()
            .flatten()
            .map(|(_, port)| port)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 1 primary, 1 replica, 3 sentinels. No `Drop` of its own (each part kills its
/// process), so a test may move the primary out to kill it.
pub struct RedisSentinel {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
}

impl RedisSentinel {
    /// Starts the topology with `down-after-milliseconds 1000` (a killed primary
    /// is replaced within seconds), once the replica is in sync.
    pub fn start() -> RedisSentinel {
        RedisSentinel::start_with(1000)
    }

    /// `start` with the sentinels' `down-after-milliseconds` (the benchmark uses a
    /// longer one, so that a loaded machine never triggers a failover).
    pub fn start_with(down_after_ms: u64) -> RedisSentinel {
        let primary = RedisServer::start(&[]);
        let port = primary.port.to_string();
        let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &port]);
        // The replica is in sync before the sentinels watch it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = replica.query(0, &[b"INFO", b"replication"]);
            if info.contains("master_link_status:up") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not sync: {info}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sentinels = (0..3)
            .map(|_| Sentinel::start(primary.port, down_after_ms))
            .collect();
        RedisSentinel {
            primary,
            replica,
            sentinels,
        }
    }

    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    pub fn replica_port(&self) -> u16 {
        self.replica.port
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The sentinels as the items of a JSON list: `"127.0.0.1:p1", "127.0.0.1:p2", ...`.
    pub fn nodes(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("\"127.0.0.1:{}\"", s.port))
            .collect();
        nodes.join(", ")
    }

    /// The `"sentinel": {...}` member of a `sessions` object naming this topology.
    pub fn snippet(&self) -> String {
        format!(
            r#""sentinel": {{"master_name": "{MASTER}", "nodes": [{}]}}"#,
            self.nodes()
        )
    }

    /// A whole configuration: a Redis store on this topology with 500 ms
    /// timeouts and a lifetime of 600 s; `extra` is appended to the `sessions`
    /// object (`, "key": value, ...`).
    pub fn config(&self, extra: &str) -> String {
        format!(
            r#"{{"sessions": {{"driver": "redis", {},
               "connect_timeout_ms": 500, "command_timeout_ms": 500, "lifetime": 600{extra}}}}}"#,
            self.snippet()
        )
    }
}
