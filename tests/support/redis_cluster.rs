//! A real Redis Cluster for tests: `redis-server` nodes started in parallel on
//! free loopback ports (a client port and a cluster-bus port each, so no
//! `port + 10000` assumption), each in its own temporary directory, joined with
//! `redis-cli --cluster create`. Every process is killed and the directories are
//! removed when the cluster is dropped, also when a test panics.
//!
//! Only single-node connections are used (the redis crate's cluster feature is
//! not needed): `route` follows `MOVED` and `ASK` replies by hand.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);
const SLOTS: usize = 16384;

struct Node {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    /// `CLUSTER MYID`, stable for the life of the process.
    id: String,
    /// `None` once killed.
    child: Mutex<Option<Child>>,
    /// Extra `redis-server` arguments.
    args: Vec<String>,
}

pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    replicas_per_primary: usize,
    /// For each killed node: the replicas it had just before it was killed.
    former_replicas: Mutex<BTreeMap<u16, Vec<u16>>>,
}

/// What one node believes about the cluster (from its `CLUSTER NODES`), with the
/// killed nodes left out so that live nodes can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    /// Slot ranges `(first, last, owner port)`, merged and sorted.
    owners: Vec<(u16, u16, u16)>,
    primaries: BTreeSet<u16>,
    /// Replica port -> its primary's port.
    replicas: BTreeMap<u16, u16>,
}

/// `n` distinct free loopback ports, all bound at once so that none repeats.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("no free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(("127.0.0.1", port))?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(conn)
}

fn port_of(addr: &str) -> Option<u16> {
    // "ip:port@cport[,hostname]"
    let addr = addr.split('@').next()?;
    addr.rsplit(':').next()?.parse().ok()
}

fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// Spawns `cmd` so that it dies with the test process even when the cluster is
/// never dropped (a `static` shared cluster, or the test binary killed by a
/// timeout): on Linux the child gets `PR_SET_PDEATHSIG` = SIGKILL. That signal
/// follows the *thread* that forked, so every node is forked by one spawner
/// thread that lives as long as the process.
#[cfg(target_os = "linux")]
fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc::{channel, Sender};
    type Job = (Command, Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Mutex<Sender<Job>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("redis-cluster-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let parent = std::process::id() as libc::pid_t;
                    // SAFETY: only async-signal-safe calls between fork and exec.
                    unsafe {
                        cmd.pre_exec(move || {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            if libc::getppid() != parent {
                                libc::_exit(1);
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("redis-cluster spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = channel();
    spawner.lock().unwrap().send((cmd, tx)).unwrap();
    rx.recv().unwrap()
}

#[cfg(not(target_os = "linux"))]
fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    cmd.spawn()
}

impl RedisCluster {
    /// Starts `primaries * (1 + replicas_per_primary)` nodes, joins them with
    /// `redis-cli --cluster create`, and returns once every node reports
    /// `cluster_state:ok`, all nodes agree on the slot map and the roles, and
    /// every replica's link to its primary is up.
    pub fn start(primaries: usize, replicas_per_primary: usize) -> RedisCluster {
        Self::start_with(primaries, replicas_per_primary, &[])
    }

    /// `start` with extra `redis-server` arguments for every node (ACL users,
    /// say; the `default` user must keep the commands this module uses).
    pub fn start_with(
        primaries: usize,
        replicas_per_primary: usize,
        args: &[&str],
    ) -> RedisCluster {
        assert!(
            primaries >= 3,
            "redis-cli --cluster create needs 3 primaries"
        );
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "libsession-redis-cluster-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            dir,
            nodes: Vec::new(),
            replicas_per_primary,
            former_replicas: Mutex::new(BTreeMap::new()),
        };
        let count = primaries * (1 + replicas_per_primary);
        let ports = free_ports(2 * count);
        for i in 0..count {
            let dir = cluster.dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let node = Node {
                port: ports[2 * i],
                bus_port: ports[2 * i + 1],
                dir,
                id: String::new(),
                child: Mutex::new(None),
                args: args.iter().map(|a| a.to_string()).collect(),
            };
            node.spawn();
            cluster.nodes.push(node);
        }
        cluster.wait_for_processes();

        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create
            .args(["--cluster-replicas", &replicas_per_primary.to_string()])
            .arg("--cluster-yes");
        cluster.run_cli(create);

        cluster.wait_settled(
            Duration::from_secs(30),
            true,
            "after redis-cli --cluster create",
        );
        cluster
    }

    /// Waits until each node answers PING as the process we started; a node
    /// whose process exited (its port was taken meanwhile) gets new ports.
    fn wait_for_processes(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempts = vec![1; self.nodes.len()];
        let mut pending: Vec<usize> = (0..self.nodes.len()).collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for i in pending {
                let node = &mut self.nodes[i];
                let exited = {
                    let mut child = node.child.lock().unwrap();
                    match child.as_mut().unwrap().try_wait().unwrap() {
                        Some(status) => {
                            eprintln!(
                                "redis-server exited at start ({status}), ports {}/{}",
                                node.port, node.bus_port
                            );
                            *child = None;
                            true
                        }
                        None => false,
                    }
                };
                if exited {
                    attempts[i] += 1;
                    if attempts[i] > 5 {
                        panic!(
                            "redis-server for cluster node {i} did not start five times:\n{}",
                            self.log_tails()
                        );
                    }
                    let ports = free_ports(2);
                    node.port = ports[0];
                    node.bus_port = ports[1];
                    node.spawn();
                    still.push(i);
                } else if let Some(id) = node.ready_id() {
                    node.id = id;
                } else {
                    still.push(i);
                }
            }
            pending = still;
            if !pending.is_empty() {
                if Instant::now() > deadline {
                    panic!(
                        "cluster nodes {pending:?} did not answer within 10 s:\n{}",
                        self.log_tails()
                    );
                }
                std::thread::sleep(POLL);
            }
        }
    }

    /// Runs a `redis-cli` command, panicking with its output and the node logs
    /// when it fails.
    fn run_cli(&self, mut cmd: Command) -> String {
        let output = cmd.stdin(Stdio::null()).output().unwrap_or_else(|err| {
            panic!("cannot run redis-cli ({err}): install it with `bash tests/run_all.sh`")
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() || text.contains("[ERR]") {
            panic!(
                "{cmd:?} failed ({}):\n{text}\n{}",
                output.status,
                self.log_tails()
            );
        }
        text
    }

    fn node_at(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .map(|n| n.port)
            .collect()
    }

    /// `"127.0.0.1:port"` of every node, killed ones included.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// Ports of every node, killed ones included.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The node id (`CLUSTER MYID`) of the node on `port`.
    pub fn node_id(&self, port: u16) -> &str {
        &self.node_at(port).id
    }

    pub fn is_alive(&self, port: u16) -> bool {
        self.node_at(port).alive()
    }

    /// `ROLE` of every live node: `(port, Some(primary port))` for replicas,
    /// `(port, None)` for primaries.
    fn roles(&self) -> Vec<(u16, Option<u16>)> {
        self.live_ports()
            .into_iter()
            .map(|port| {
                let role: redis::Value = self.query(port, &["ROLE"]);
                let redis::Value::Array(items) = role else {
                    panic!("ROLE of {port}: {role:?}")
                };
                let kind: String = redis::from_redis_value(items[0].clone()).unwrap();
                match kind.as_str() {
                    "master" => (port, None),
                    "slave" => (
                        port,
                        Some(redis::from_redis_value(items[2].clone()).unwrap()),
                    ),
                    other => panic!("ROLE of {port}: {other}"),
                }
            })
            .collect()
    }

    /// Ports of the live nodes that are primaries now (each node's own `ROLE`).
    pub fn primaries(&self) -> Vec<u16> {
        self.roles()
            .into_iter()
            .filter(|(_, primary)| primary.is_none())
            .map(|(port, _)| port)
            .collect()
    }

    /// Ports of the live nodes that replicate `port` now (each node's own `ROLE`).
    pub fn replicas_of(&self, port: u16) -> Vec<u16> {
        self.roles()
            .into_iter()
            .filter(|(_, primary)| *primary == Some(port))
            .map(|(replica, _)| replica)
            .collect()
    }

    /// An admin connection to the node on `port` (single node: no redirects).
    pub fn node(&self, port: u16) -> redis::Connection {
        connect(port).unwrap_or_else(|err| panic!("connection to cluster node {port}: {err}"))
    }

    /// Runs one command on the node on `port` and returns its reply.
    pub fn query<T: redis::FromRedisValue>(&self, port: u16, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.node(port))
            .unwrap_or_else(|err| panic!("{args:?} on cluster node {port}: {err}"))
    }

    /// Runs a one-key command on the node that serves it, following `MOVED`
    /// and `ASK` redirects by hand, and retrying `TRYAGAIN`/`CLUSTERDOWN`
    /// for up to 5 s.
    pub fn route<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let live = self.live_ports();
        let mut port = *live.first().expect("no live cluster node");
        let mut asking = false;
        for _ in 0..1000 {
            let mut conn = self.node(port);
            let result = if asking {
                redis::pipe()
                    .cmd("ASKING")
                    .ignore()
                    .add_command(cmd.clone())
                    .query::<(T,)>(&mut conn)
                    .map(|(v,)| v)
            } else {
                cmd.query::<T>(&mut conn)
            };
            match result {
                Ok(value) => return value,
                Err(err) => {
                    use redis::{ErrorKind, ServerErrorKind};
                    let kind = err.kind();
                    if let Some((addr, _slot)) = err.redirect_node() {
                        asking = kind == ErrorKind::Server(ServerErrorKind::Ask);
                        port = port_of(addr)
                            .unwrap_or_else(|| panic!("redirect to {addr:?} for {args:?}"));
                        continue;
                    }
                    let retry = matches!(
                        kind,
                        ErrorKind::Server(ServerErrorKind::TryAgain)
                            | ErrorKind::Server(ServerErrorKind::ClusterDown)
                    );
                    if retry && Instant::now() < deadline {
                        asking = false;
                        std::thread::sleep(POLL);
                        continue;
                    }
                    panic!("{args:?} on cluster node {port}: {err}");
                }
            }
        }
        panic!("{args:?}: too many redirects");
    }

    /// Number of keys matching `pattern` (a `SCAN MATCH` glob) on each current
    /// primary.
    pub fn keys_per_node(&self, pattern: &str) -> BTreeMap<u16, usize> {
        self.primaries()
            .into_iter()
            .map(|port| {
                // KEYS (test data is small), so that it works when a test
                // denies SCAN to the default user.
                let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
                    .arg(pattern)
                    .query(&mut self.node(port))
                    .unwrap_or_else(|err| panic!("KEYS on cluster node {port}: {err}"));
                (port, keys.len())
            })
            .collect()
    }

    /// Slot ranges `(first, last, owner port)` as the node on `port` sees them
    /// (from its `CLUSTER NODES`).
    pub fn slot_owners(&self, port: u16) -> Vec<(u16, u16, u16)> {
        self.view(&mut self.node(port))
            .unwrap_or_else(|err| panic!("CLUSTER NODES on {port}: {err}"))
            .owners
    }

    /// Number of slots each primary owns, as the node on `port` sees it.
    pub fn slots_per_node(&self, port: u16) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for (first, last, owner) in self.slot_owners(port) {
            *counts.entry(owner).or_insert(0) += (last - first) as usize + 1;
        }
        counts
    }

    /// SIGKILLs the node on `port` (its directory and log stay until drop).
    pub fn kill(&self, port: u16) {
        let replicas = self.replicas_of(port);
        self.former_replicas.lock().unwrap().insert(port, replicas);
        self.node_at(port).kill();
    }

    /// After `kill(old_primary)`: waits until one of its former replicas is a
    /// primary, every live node reports `cluster_state:ok` and all agree on the
    /// slot map; returns the promoted replica's port.
    pub fn wait_for_failover(&self, old_primary: u16, timeout: Duration) -> u16 {
        assert!(
            !self.is_alive(old_primary),
            "wait_for_failover({old_primary}): kill it first"
        );
        let candidates = self
            .former_replicas
            .lock()
            .unwrap()
            .get(&old_primary)
            .cloned()
            .unwrap_or_default();
        assert!(
            !candidates.is_empty(),
            "node {old_primary} had no replica to promote"
        );
        let deadline = Instant::now() + timeout;
        loop {
            let promoted = candidates.iter().copied().find(|&port| {
                connect(port)
                    .and_then(|mut c| redis::cmd("ROLE").query::<redis::Value>(&mut c))
                    .ok()
                    .and_then(|v| match v {
                        redis::Value::Array(items) => items.first().cloned(),
                        _ => None,
                    })
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
                    .is_some_and(|role| role == "master")
            });
            if let Some(promoted) = promoted {
                match self.settled(false) {
                    Ok(view) if view.primaries.contains(&promoted) => return promoted,
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no replica of {old_primary} ({candidates:?}) was promoted within {timeout:?} \
                     (state: {:?}):\n{}",
                    self.settled(false).err(),
                    self.log_tails()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Moves `slots` slots from the primary on `from` to the primary on `to`
    /// with `redis-cli --cluster reshard`, and waits until every node agrees
    /// on the new slot map. Safe to call while other threads write.
    pub fn reshard(&self, from: u16, to: u16, slots: usize) {
        self.wait_settled(Duration::from_secs(15), false, "before reshard");
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster")
            .arg("reshard")
            .arg(format!("127.0.0.1:{to}"))
            .args(["--cluster-from", self.node_id(from)])
            .args(["--cluster-to", self.node_id(to)])
            .args(["--cluster-slots", &slots.to_string()])
            .arg("--cluster-yes");
        self.run_cli(cmd);
        self.wait_settled(Duration::from_secs(15), false, "after reshard");
    }

    /// Evens out the slots over all primaries (empty ones included) with
    /// `redis-cli --cluster rebalance`, and waits until every node agrees.
    pub fn rebalance(&self) {
        self.wait_settled(Duration::from_secs(15), false, "before rebalance");
        let port = self.primaries()[0];
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster")
            .arg("rebalance")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cluster-use-empty-masters")
            .arg("--cluster-yes");
        self.run_cli(cmd);
        self.wait_settled(Duration::from_secs(15), false, "after rebalance");
    }

    /// Waits until `settled`, panicking with the last reason and the logs.
    pub fn wait_stable(&self, timeout: Duration) {
        self.wait_settled(timeout, false, "wait_stable");
    }

    fn wait_settled(&self, timeout: Duration, initial: bool, when: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let reason = match self.settled(initial) {
                Ok(_) => return,
                Err(reason) => reason,
            };
            if Instant::now() > deadline {
                panic!(
                    "the cluster did not settle within {timeout:?} {when}: {reason}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The common view when every live node reports `cluster_state:ok`, covers
    /// all slots, has no migration open and sees the same slots, primaries and
    /// replicas. `initial` also requires the shape asked of `start` and every
    /// replica's link up.
    fn settled(&self, initial: bool) -> Result<View, String> {
        let mut common: Option<(u16, View)> = None;
        for port in self.live_ports() {
            let mut conn = connect(port).map_err(|e| format!("{port}: {e}"))?;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut conn)
                .map_err(|e| format!("{port}: {e}"))?;
            if info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("{port} is not ok yet"));
            }
            let view = self.view(&mut conn).map_err(|e| format!("{port}: {e}"))?;
            if initial && view.replicas.contains_key(&port) {
                let repl: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut conn)
                    .map_err(|e| format!("{port}: {e}"))?;
                if info_field(&repl, "master_link_status") != Some("up") {
                    return Err(format!("replica {port}: link to its primary not up"));
                }
            }
            match &common {
                None => common = Some((port, view)),
                Some((first, seen)) if *seen != view => {
                    return Err(format!("{first} and {port} disagree: {seen:?} vs {view:?}"));
                }
                Some(_) => {}
            }
        }
        let (_, view) = common.ok_or("no live node")?;
        if initial {
            let primaries = self.nodes.len() / (1 + self.replicas_per_primary);
            if view.primaries.len() != primaries
                || view.replicas.len() != self.nodes.len() - primaries
            {
                return Err(format!("not all roles assigned yet: {view:?}"));
            }
            for primary in &view.primaries {
                let n = view.replicas.values().filter(|p| *p == primary).count();
                if n != self.replicas_per_primary {
                    return Err(format!("{primary} has {n} replicas: {view:?}"));
                }
            }
        }
        Ok(view)
    }

    /// Parses `CLUSTER NODES` from `conn`, leaving out killed nodes.
    fn view(&self, conn: &mut redis::Connection) -> Result<View, String> {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(conn)
            .map_err(|e| e.to_string())?;
        let mut ids = BTreeMap::new();
        let mut lines = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return Err(format!("bad CLUSTER NODES line {line:?}"));
            }
            let port = port_of(fields[1]).ok_or(format!("bad address in {line:?}"))?;
            ids.insert(fields[0].to_string(), port);
            lines.push((port, fields));
        }
        let mut owner: Vec<Option<u16>> = vec![None; SLOTS];
        let mut view = View {
            owners: Vec::new(),
            primaries: BTreeSet::new(),
            replicas: BTreeMap::new(),
        };
        for (port, fields) in &lines {
            let flags: Vec<&str> = fields[2].split(',').collect();
            if flags.contains(&"handshake") || flags.contains(&"noaddr") {
                return Err(format!("node {} in handshake", fields[0]));
            }
            for slot in &fields[8..] {
                if slot.starts_with('[') {
                    return Err(format!("slot migration open: {slot}"));
                }
                let (first, last) = match slot.split_once('-') {
                    Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
                    None => (slot.parse(), slot.parse()),
                };
                let (Ok(first), Ok(last)) = (first, last) else {
                    return Err(format!("bad slot {slot:?}"));
                };
                for o in &mut owner[first..=last] {
                    *o = Some(*port);
                }
            }
            if self.nodes.iter().any(|n| n.port == *port && !n.alive()) {
                continue;
            }
            if flags.contains(&"fail") || flags.contains(&"fail?") {
                return Err(format!("live node {port} flagged {}", fields[2]));
            }
            if flags.contains(&"master") {
                view.primaries.insert(*port);
            } else if flags.contains(&"slave") {
                let primary = ids
                    .get(fields[3])
                    .ok_or(format!("replica {port} of unknown {}", fields[3]))?;
                view.replicas.insert(*port, *primary);
            }
        }
        let mut slot = 0;
        while slot < SLOTS {
            let o = owner[slot].ok_or(format!("slot {slot} has no owner"))?;
            let mut last = slot;
            while last + 1 < SLOTS && owner[last + 1] == Some(o) {
                last += 1;
            }
            view.owners.push((slot as u16, last as u16, o));
            slot = last + 1;
        }
        Ok(view)
    }

    /// The last lines of every node's log, for panic messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(12)..];
            out.push_str(&format!(
                "--- node {} (bus {}, {}) {}:\n{}\n",
                node.port,
                node.bus_port,
                if node.alive() { "alive" } else { "dead" },
                node.dir.display(),
                tail.join("\n")
            ));
        }
        out
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Node {
    fn spawn(&self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let _ = std::fs::remove_file(self.dir.join("nodes.conf"));
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-port", &self.bus_port.to_string()])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--appendonly", "no", "--save", "", "--daemonize", "no"])
            // Replicas sync at once instead of after the default 5 s delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        let child = spawn_tied(cmd).unwrap_or_else(|err| {
            panic!("cannot run redis-server ({err}): install it with `bash tests/run_all.sh`")
        });
        *self.child.lock().unwrap() = Some(child);
    }

    /// The node id once the node answers as the process we started (not some
    /// other server that took the port).
    fn ready_id(&self) -> Option<String> {
        let pid = self.child.lock().unwrap().as_ref()?.id();
        let mut conn = connect(self.port).ok()?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
        if info_field(&info, "process_id")?.parse::<u32>().ok()? != pid {
            return None;
        }
        redis::cmd("CLUSTER").arg("MYID").query(&mut conn).ok()
    }

    fn alive(&self) -> bool {
        self.child.lock().unwrap().is_some()
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
