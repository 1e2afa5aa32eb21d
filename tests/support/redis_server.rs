//! A real `redis-server` for tests and the benchmark: started on a free loopback
//! port in its own temporary directory, killed when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    /// Password of the default user, if the server requires one.
    pub password: Option<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl RedisServer {
    /// Starts a server with extra `redis-server` arguments (e.g. `--requirepass x`).
    pub fn start(extra: &[&str]) -> RedisServer {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("libsession-redis-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let password = extra
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1].to_string());
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
            password,
        };
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "redis-server did not start on a free port five times; see {}",
            server.dir.display()
        );
    }

    /// Starts the process on `self.port`; true when it answers PING.
    fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run redis-server ({err}): install it with `bash tests/run_all.sh`")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!(
                    "redis-server exited at start ({status}), port {}",
                    self.port
                );
                self.child = None;
                return false;
            }
            if self.admin_try().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "redis-server on port {} did not answer within 10 s",
            self.port
        );
    }

    fn admin_try(&self) -> Option<redis::Connection> {
        let mut info = redis::RedisConnectionInfo::default();
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        let info = redis::IntoConnectionInfo::into_connection_info(("127.0.0.1", self.port))
            .ok()?
            .set_redis_settings(info);
        let client = redis::Client::open(info).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        redis::cmd("PING").query::<String>(&mut conn).ok()?;
        Some(conn)
    }

    /// A direct connection to the server, as its administrator.
    pub fn admin(&self) -> redis::Connection {
        self.admin_try()
            .expect("admin connection to the test redis-server")
    }

    /// Runs a command on database `db` and returns its reply.
    pub fn query<T: redis::FromRedisValue>(&self, db: i64, args: &[&[u8]]) -> T {
        let mut conn = self.admin();
        redis::cmd("SELECT").arg(db).query::<()>(&mut conn).unwrap();
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut conn).unwrap()
    }

    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with no data).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that a call failed the way an outage should: the store is unavailable
/// or timed out (503), never "no such session" or anything else.
pub fn assert_outage(err: &session::Error) {
    assert!(
        matches!(
            err.code,
            session::SessionError::StorageUnavailable | session::SessionError::Timeout
        ),
        "{:?}: {}",
        err.code,
        err.message
    );
}
