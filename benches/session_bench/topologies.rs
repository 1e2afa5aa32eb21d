//! The Redis topologies (phase 10c, `BENCH_ONLY=topologies`; issue 10, item 4):
//! create, get and set_value through the C ABI with 1 and 8 threads on three
//! topologies started by the bench on free loopback ports, all up at once:
//!
//! - single: one `redis-server` (`tests/support/redis_server.rs`), `url`;
//! - sentinel: 1 primary + 1 replica + 3 sentinels
//!   (`tests/support/redis_sentinel.rs`), `sentinel` (found through the sentinels);
//! - cluster: 3 primaries + 3 replicas made with `redis-cli --cluster create`
//!   (`tests/support/redis_cluster.rs`), `cluster` with the 6 nodes as seeds.
//!
//! Each topology has a `session_store_t` handle of its own (pool_size 16), and the
//! calls are `session_store_create`, `session_store_get` (a random live id) and
//! `session_store_set_value` (one member of the 200-byte JSON object: HMGET+PTTL
//! pipelined, then the update script, 2 round trips). The floor, on the same
//! servers in the same run: `redis-benchmark -t set,get -d 200 -P 1 -r 10000`
//! with `-c 1` and `-c 8` and as many requests as our calls, against the primary
//! (single, sentinel) or with `--cluster` against one node of the cluster.
//! Create and set_value are judged against SET, get against GET; ratio = our
//! latency (p50 and mean) / redis-benchmark's, and our ops/s / its ops/s.
//!
//! Per round (3; 2 quick), the topologies in an order that rotates, and for each
//! 1 thread then 8: ours (create, get, set_value) and redis-benchmark one after the
//! other, which goes first alternating between rounds; medians over the rounds.
//! As in phase 10, in the 1-thread rounds the topology's data servers are pinned
//! to CPU 0 and the client (our thread or redis-benchmark) to CPU 1
//! (BENCH_REDIS_PIN=0: never). Ratios are for information: no targets.
//!
//! Known differences in the floor: on a cluster redis-benchmark runs one thread
//! per primary (its default there) and its keys carry a hash tag per slot
//! (`key:{tag}:NNNNNNNNNNNN`), so they cannot be prepopulated and its GETs mostly
//! miss (nil replies); on single and sentinel every key it reads exists. In that
//! threaded mode its own rps divides by a run time that includes about 0.25 s of
//! overhead (300 and 3,000 requests alike "took" 0.25 s here, 20,000 0.77 s), far
//! more than our runs last, so on the cluster its ops/s is computed as
//! clients / mean latency (Little's law; a closed loop with one request in flight
//! per client), which slightly favours it.

use crate::common::{json_data, last_error, progress, take_id_of, thousands, timed, Handle};
use crate::file::{VALUES, VALUE_KEY};
use crate::redis_driver::{
    pin, prepopulate_keyspace, redis_benchmark_on, rstat_median, threaded_round, RStat,
};
use crate::report::Report;
use crate::Params;
use session::ffi::{session_store_create, session_store_get, session_store_set_value};
use std::ffi::CString;
use std::time::{Duration, Instant};

pub use crate::redis_driver::redis_server;

#[path = "../../tests/support/redis_sentinel.rs"]
mod redis_sentinel;

#[path = "../../tests/support/redis_cluster.rs"]
mod redis_cluster;

const THREADS: [usize; 2] = [1, 8];
/// Keys `key:000000000000`.. that redis-benchmark's `-r` draws from; on single and
/// sentinel all exist beforehand, so its GETs find 200-byte values as ours do.
const KEYSPACE: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum TOp {
    Create,
    Get,
    SetValue,
}

impl TOp {
    const ALL: [TOp; 3] = [TOp::Create, TOp::Get, TOp::SetValue];
    fn name(self) -> &'static str {
        match self {
            TOp::Create => "create",
            TOp::Get => "get",
            TOp::SetValue => "set_value",
        }
    }
    /// The redis-benchmark test it is compared with, and its index in its result.
    fn peer(self) -> (&'static str, usize) {
        match self {
            TOp::Get => ("GET", 1),
            _ => ("SET", 0),
        }
    }
}

struct Params2 {
    rounds: usize,
    /// Calls per op and round with 1 thread.
    ops1: usize,
    /// Calls per op, round and thread with 8 threads.
    ops8: usize,
}

impl Params2 {
    fn new(p: &Params) -> Params2 {
        if p.quick {
            Params2 {
                rounds: 2,
                ops1: 300,
                ops8: 100,
            }
        } else {
            Params2 {
                rounds: 3,
                ops1: 3_000,
                ops8: 1_500,
            }
        }
    }
    fn ops(&self, threads: usize) -> usize {
        if threads == 1 {
            self.ops1
        } else {
            self.ops8
        }
    }
}

/// One topology under test.
struct Topo {
    name: &'static str,
    handle: Handle,
    /// The port redis-benchmark is given, and whether with `--cluster`.
    rb_port: u16,
    rb_cluster: bool,
    /// The redis-server processes that hold data (pinned in the 1-thread rounds).
    pids: Vec<libc::pid_t>,
    ids: Vec<CString>,
    /// [threads index][op] per round, and redis-benchmark [threads index][SET, GET].
    ours: Vec<Vec<Vec<RStat>>>,
    theirs: Vec<Vec<Vec<RStat>>>,
}

/// The pid of the redis-server on `port`, from its `INFO server`.
fn port_pid(port: u16) -> Option<libc::pid_t> {
    let client = redis::Client::open(("127.0.0.1", port)).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

fn store_config(members: &str) -> CString {
    CString::new(format!(
        r#"{{"sessions": {{"driver": "redis", {members}, "lifetime": 3600, "pool_size": 16, "connect_timeout_ms": 1000, "command_timeout_ms": 1000}}}}"#
    ))
    .unwrap()
}

/// `threads` threads make `ops` calls of `op` each on `h`, started together; ids
/// for get and set_value are drawn from `ids`; created ids are returned. Every
/// call is timed alone; checking and freeing what it returns is not.
fn our_round(
    h: &Handle,
    op: TOp,
    threads: usize,
    ops: usize,
    ids: &[CString],
    seed: u64,
    cpu: Option<usize>,
) -> (RStat, Vec<CString>) {
    let data = [json_data(seed), json_data(seed ^ 1)];
    threaded_round(threads, ops, seed, cpu, |_, i, rng, samples, created| {
        let store = h.raw();
        match op {
            TOp::Create => {
                let d = data[i & 1].as_ptr();
                let mut out = std::ptr::null_mut();
                // SAFETY: open handle, NUL-terminated data.
                samples.push(timed(|| out = unsafe { session_store_create(store, d) }));
                created.push(take_id_of(out, "session_store_create"));
            }
            TOp::Get => {
                let id = ids[rng.below(ids.len())].as_ptr();
                let mut out = std::ptr::null_mut();
                // SAFETY: open handle, NUL-terminated id.
                samples.push(timed(|| out = unsafe { session_store_get(store, id) }));
                assert!(!out.is_null(), "session_store_get: {}", last_error());
                // SAFETY: malloc'd by libsession, ours to free.
                unsafe { libc::free(out.cast()) };
            }
            TOp::SetValue => {
                let id = ids[rng.below(ids.len())].as_ptr();
                let (k, v) = (VALUE_KEY.as_ptr(), VALUES[i & 1].as_ptr());
                let mut rc = 0;
                // SAFETY: open handle, NUL-terminated strings.
                samples.push(timed(|| {
                    rc = unsafe { session_store_set_value(store, id, k, v) }
                }));
                assert!(rc != 0, "session_store_set_value: {}", last_error());
            }
        }
    })
}

/// Phase 10c: see the top of the file.
pub fn phase(p: &Params, rep: &mut Report, start: Instant) {
    let tp = Params2::new(p);
    let phase_start = Instant::now();
    progress(start, "topologies: starting a redis-server");
    let single = redis_server::RedisServer::start(&[]);
    progress(
        start,
        "topologies: starting Sentinel (1 primary, 1 replica, 3 sentinels)",
    );
    // down-after 5 s rather than the tests' 1 s: a loaded machine must not make the
    // sentinels fail the primary over in the middle of a measurement.
    let sentinel = redis_sentinel::RedisSentinel::start_with(5000);
    progress(
        start,
        "topologies: starting a Redis Cluster (3 primaries, 3 replicas)",
    );
    let cluster = redis_cluster::RedisCluster::start(3, 1);
    let started = phase_start.elapsed();
    let version = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    prepopulate_keyspace(&single, KEYSPACE);
    prepopulate_keyspace(&sentinel.primary, KEYSPACE);

    let seeds: Vec<String> = cluster.seeds().iter().map(|s| format!("\"{s}\"")).collect();
    let cluster_ports = cluster.ports();
    let empty = || vec![vec![Vec::new(); 3]; THREADS.len()];
    let mut topos = vec![
        Topo {
            name: "single",
            handle: Handle::open(&store_config(&format!(r#""url": "{}""#, single.url()))),
            rb_port: single.port,
            rb_cluster: false,
            pids: port_pid(single.port).into_iter().collect(),
            ids: Vec::new(),
            ours: empty(),
            theirs: empty(),
        },
        Topo {
            name: "sentinel",
            handle: Handle::open(&store_config(&sentinel.snippet())),
            rb_port: sentinel.primary_port(),
            rb_cluster: false,
            pids: [sentinel.primary_port(), sentinel.replica_port()]
                .into_iter()
                .filter_map(port_pid)
                .collect(),
            ids: Vec::new(),
            ours: empty(),
            theirs: empty(),
        },
        Topo {
            name: "cluster",
            handle: Handle::open(&store_config(&format!(
                r#""cluster": [{}]"#,
                seeds.join(", ")
            ))),
            rb_port: cluster.primaries()[0],
            rb_cluster: true,
            pids: cluster_ports.iter().copied().filter_map(port_pid).collect(),
            ids: Vec::new(),
            ours: empty(),
            theirs: empty(),
        },
    ];

    // Placement of the 1-thread rounds, as in phase 10 (see redis_driver.rs).
    let all_cpus: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    let pinning = std::env::var("BENCH_REDIS_PIN").map_or(true, |v| v != "0")
        && all_cpus.len() >= 2
        && topos
            .iter()
            .all(|t| !t.pids.is_empty() && t.pids.iter().all(|&pid| pin(pid, &all_cpus)));
    let place = |t: &Topo, threads: usize| -> Option<usize> {
        if !pinning {
            return None;
        }
        let (cpus, client) = if threads == 1 {
            (&[0][..], Some(1))
        } else {
            (&all_cpus[..], None)
        };
        for &pid in &t.pids {
            assert!(pin(pid, cpus), "cannot pin redis-server {pid} to {cpus:?}");
        }
        client
    };

    let mut seed = 0x70b0_u64;
    progress(start, "topologies: warm-up");
    for t in &mut topos {
        for threads in THREADS {
            let cpu = place(t, threads);
            for op in TOp::ALL {
                let (_, created) = our_round(&t.handle, op, threads, 100, &t.ids, seed, cpu);
                t.ids.extend(created);
                seed += 1;
            }
            redis_benchmark_on(t.rb_port, t.rb_cluster, threads, 500, KEYSPACE, cpu);
        }
    }

    for r in 0..tp.rounds {
        progress(
            start,
            &format!(
                "topologies: round {}/{} ({})",
                r + 1,
                tp.rounds,
                if r % 2 == 0 {
                    "ours first"
                } else {
                    "redis-benchmark first"
                }
            ),
        );
        let n_topos = topos.len();
        for k in 0..n_topos {
            let t = &mut topos[(k + r) % n_topos];
            for (ti, threads) in THREADS.into_iter().enumerate() {
                let ops = tp.ops(threads);
                let cpu = place(t, threads);
                for side in 0..2 {
                    if (side + r) % 2 == 0 {
                        for (j, op) in TOp::ALL.into_iter().enumerate() {
                            let (stat, created) =
                                our_round(&t.handle, op, threads, ops, &t.ids, seed, cpu);
                            seed += 1;
                            t.ids.extend(created);
                            t.ours[ti][j].push(stat);
                        }
                    } else {
                        let mut rb = redis_benchmark_on(
                            t.rb_port,
                            t.rb_cluster,
                            threads,
                            threads * ops,
                            KEYSPACE,
                            cpu,
                        );
                        if t.rb_cluster {
                            // Its rps includes ~0.25 s of overhead in its threaded
                            // (cluster) mode; clients / mean latency instead.
                            for stat in &mut rb {
                                stat.ops_s = threads as f64 * 1e9 / stat.avg_ns;
                            }
                        }
                        t.theirs[ti][0].push(rb[0]);
                        t.theirs[ti][1].push(rb[1]);
                    }
                }
            }
        }
    }
    let measured = phase_start.elapsed() - started;

    let keys_per_primary: Vec<String> = cluster
        .keys_per_node("session:*")
        .into_iter()
        .map(|(port, n)| format!("{port}: {}", thousands(n as f64)))
        .collect();
    let us = |ns: f64| format!("{:.1}", ns / 1e3);
    let mut lines = vec![
        format!(
            "{version}; started by the bench in {:.1} s: single 127.0.0.1:{}; sentinel primary {} replica {} sentinels {:?}; cluster nodes {:?}",
            started.as_secs_f64(),
            single.port,
            sentinel.primary_port(),
            sentinel.replica_port(),
            sentinel.sentinel_ports(),
            cluster_ports
        ),
        format!(
            "{} rounds, topologies in rotating order, ours and redis-benchmark alternating which goes first; per round and op {} calls with 1 thread, 8 x {} with 8; medians over the rounds; measured in {:.1} s",
            tp.rounds,
            tp.ops1,
            tp.ops8,
            measured.as_secs_f64()
        ),
        format!(
            "floor: redis-benchmark -t set,get -d 200 -P 1 -r {KEYSPACE} -c 1|8, -n = our calls: -p primary (single, sentinel), --cluster -p {} (cluster: one thread per primary, keys tagged per slot so its GETs mostly miss, ops/s = clients / mean latency)",
            topos[2].rb_port
        ),
        if pinning {
            "1 thread/client: the topology's redis-servers pinned to CPU 0, the client (ours or redis-benchmark) to CPU 1; 8: unpinned".to_string()
        } else {
            "nothing pinned (BENCH_REDIS_PIN=0, one CPU, or sched_setaffinity failed)".to_string()
        },
        "ratios: ours / redis-benchmark's (p50 and mean latency, ops/s); 'vs single': our ops/s / the single node's (same op, threads); for information, no targets".to_string(),
        String::new(),
        format!(
            "{:<8} {:<3} {:<9} {:>8} {:>7} {:>7} {:>7} | {:<3} {:>8} {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6} | {:>6}",
            "topology", "thr", "op", "ops/s", "avg us", "p50 us", "p99 us", "rb", "ops/s",
            "avg us", "p50 us", "p99 us", "p50", "avg", "ops/s", "vs single"
        ),
        "-".repeat(130),
    ];
    let single_ops: Vec<Vec<f64>> = (0..THREADS.len())
        .map(|ti| {
            (0..TOp::ALL.len())
                .map(|j| rstat_median(&topos[0].ours[ti][j]).ops_s)
                .collect()
        })
        .collect();
    for t in &topos {
        for (ti, threads) in THREADS.into_iter().enumerate() {
            for (j, op) in TOp::ALL.into_iter().enumerate() {
                let o = rstat_median(&t.ours[ti][j]);
                let (peer, pi) = op.peer();
                let f = rstat_median(&t.theirs[ti][pi]);
                lines.push(format!(
                    "{:<8} {:<3} {:<9} {:>8} {:>7} {:>7} {:>7} | {:<3} {:>8} {:>7} {:>7} {:>7} | {:>5.2}x {:>5.2}x {:>5.2}x | {:>5.2}x",
                    t.name,
                    threads,
                    op.name(),
                    thousands(o.ops_s),
                    us(o.avg_ns),
                    us(o.p50_ns),
                    us(o.p99_ns),
                    peer,
                    thousands(f.ops_s),
                    us(f.avg_ns),
                    us(f.p50_ns),
                    us(f.p99_ns),
                    o.p50_ns / f.p50_ns,
                    o.avg_ns / f.avg_ns,
                    o.ops_s / f.ops_s,
                    o.ops_s / single_ops[ti][j],
                ));
            }
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "sessions stored at the end: single {}, sentinel {}, cluster {} (per primary: {})",
        thousands(topos[0].ids.len() as f64),
        thousands(topos[1].ids.len() as f64),
        thousands(topos[2].ids.len() as f64),
        keys_per_primary.join(", ")
    ));
    rep.topologies = lines;
    drop(topos);
}
