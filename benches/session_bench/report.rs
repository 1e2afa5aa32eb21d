//! What the run found, and how it is printed: the per-operation table of the memory
//! and file drivers, the scans (count, remove_expired), the churn, the Redis table,
//! and every target with PASS or MISS.

use crate::common::thousands;
use crate::stats::Stat;
use crate::Params;

pub struct Floor {
    pub label: &'static str,
    pub stat: Stat,
    /// Target ratio; None: for information.
    pub target: Option<f64>,
}

pub struct Row {
    pub driver: &'static str,
    pub stored: usize,
    pub op: &'static str,
    pub stat: Stat,
    pub floors: Vec<Floor>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// session_count and session_remove_expired lines.
    pub scans: Vec<String>,
    /// Cleanup under churn.
    pub churn: Vec<String>,
    pub notes: Vec<String>,
    pub verdicts: Vec<(String, bool)>,
    pub scan_floor_per_entry: Option<f64>,
    /// The Redis phase's table and notes, printed as they are.
    pub redis: Vec<String>,
    /// Phase 10c: the Redis topologies (single, Sentinel, Cluster).
    pub topologies: Vec<String>,
    /// Phase 10d: the Redis driver's local read cache.
    pub local_cache: Vec<String>,
    /// Encryption at rest and the owner index (contents.rs), printed as they are.
    pub contents: Vec<String>,
}

impl Report {
    pub fn find(&self, driver: &str, stored: usize, op: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.driver == driver && r.stored == stored && r.op == op)
    }
    pub fn floor(&self, driver: &str, stored: usize, op: &str, label: &str) -> Option<f64> {
        self.find(driver, stored, op)?
            .floors
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.stat.median())
    }
    /// Records a target; returns "PASS" or "MISS".
    pub fn verdict(&mut self, what: String, pass: bool) -> &'static str {
        self.verdicts.push((what, pass));
        pass_miss(pass)
    }
}

pub fn pass_miss(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// The order of the operations in the table.
fn op_rank(op: &str) -> usize {
    [
        "create",
        "get",
        "get idle",
        "get refresh",
        "update",
        "set_value",
        "update_if",
        "regenerate",
        "destroy",
    ]
    .iter()
    .position(|o| *o == op)
    .unwrap_or(usize::MAX)
}

pub fn print_report(p: &Params, rep: &Report) {
    let mut verdicts: Vec<(String, bool)> = rep.verdicts.clone();
    if !rep.rows.is_empty() {
        print_local_tables(p, rep, &mut verdicts);
    }
    if !rep.churn.is_empty() {
        println!();
        println!("cleanup under churn:");
        for l in &rep.churn {
            println!("  {l}");
        }
    }
    if !rep.contents.is_empty() {
        println!();
        println!("encryption at rest and the owner index (same run, calls interleaved):");
        for l in &rep.contents {
            if l.is_empty() {
                println!();
            } else {
                println!("  {l}");
            }
        }
    }
    if !rep.redis.is_empty() {
        println!();
        println!("redis driver vs redis-benchmark (same run, same redis-server):");
        for l in &rep.redis {
            println!("  {l}");
        }
    }
    if !rep.topologies.is_empty() {
        println!();
        println!("redis topologies vs redis-benchmark (same run, same servers):");
        for l in &rep.topologies {
            println!("  {l}");
        }
    }
    if !rep.local_cache.is_empty() {
        println!();
        println!("redis local read cache: session_store_get vs redis-benchmark GET (same run, same redis-server):");
        for l in &rep.local_cache {
            println!("  {l}");
        }
    }
    println!();
    let misses = verdicts.iter().filter(|(_, pass)| !pass).count();
    println!("targets: {} pass, {} miss", verdicts.len() - misses, misses);
    for (what, pass) in &verdicts {
        println!("  {} {what}", pass_miss(*pass));
    }
}

/// The memory and file drivers' tables, scan lines, spreads and notes.
fn print_local_tables(p: &Params, rep: &Report, verdicts: &mut Vec<(String, bool)>) {
    println!();
    println!(
        "{:<6} {:>7} {:<11} {:>9} {:>10} {:>9}  {:<48} {:>9} {:>7}  target",
        "driver",
        "stored",
        "op",
        "ns/op",
        "ops/s",
        "p99 ns",
        "floor (same run, same directory)",
        "floor ns",
        "ratio"
    );
    println!("{}", "-".repeat(136));
    let mut rows: Vec<&Row> = rep.rows.iter().collect();
    rows.sort_by_key(|r| (r.driver != "memory", r.stored, op_rank(r.op)));
    for row in &rows {
        let med = row.stat.median();
        let left = format!(
            "{:<6} {:>7} {:<11} {:>9} {:>10} {:>9}",
            row.driver,
            thousands(row.stored as f64),
            row.op,
            thousands(med),
            thousands(1e9 / med),
            thousands(row.stat.p99() as f64)
        );
        if row.floors.is_empty() {
            println!("{left}");
        }
        for (i, f) in row.floors.iter().enumerate() {
            let fm = f.stat.median();
            let ratio = med / fm;
            let target = match f.target {
                Some(t) => {
                    let pass = ratio <= t;
                    verdicts.push((
                        format!(
                            "{} {} at {} stored <= {t}x {}: {ratio:.2}x",
                            row.driver,
                            row.op,
                            thousands(row.stored as f64),
                            f.label
                        ),
                        pass,
                    ));
                    format!("<= {t}x {}", pass_miss(pass))
                }
                None => "info".into(),
            };
            println!(
                "{:<56}  {:<48} {:>9} {:>6.2}x  {target}",
                if i == 0 { left.as_str() } else { "" },
                f.label,
                thousands(fm),
                ratio
            );
        }
    }
    println!("(*) measured in the delete phase, where such a design permanently lives; see benches/session_bench/main.rs");
    println!("get idle: idle_timeout 3600, so no get writes (1% rule); get refresh: idle_timeout 100 s and each session read once 1.1 s after its create, so every get writes");

    // create at large vs small
    if let (Some(s), Some(l)) = (
        rep.find("file", p.small, "create"),
        rep.find("file", p.large, "create"),
    ) {
        let ratio = l.stat.median() / s.stat.median();
        let label = "tmp open(O_EXCL)+write+close+rename";
        let floor_growth = |label: &str| match (
            rep.floor("file", p.small, "create", label),
            rep.floor("file", p.large, "create", label),
        ) {
            (Some(fs), Some(fl)) => fl / fs,
            _ => f64::NAN,
        };
        let rename_growth = floor_growth(label);
        let excl_growth = floor_growth("open(O_CREAT|O_EXCL)+write+close");
        let pass = ratio <= 1.2;
        println!(
            "file create at {} stored / at {} stored: {:.2}x  <= 1.2x {}  (the floors moved by: tmp+rename {:.2}x, open(O_EXCL) {:.2}x; ours normalised by the rename floor: {:.2}x)",
            thousands(p.large as f64),
            thousands(p.small as f64),
            ratio,
            pass_miss(pass),
            rename_growth,
            excl_growth,
            ratio / rename_growth
        );
        verdicts.push((
            format!(
                "file create at {} stored <= 1.2x create at {}: {ratio:.2}x",
                p.large, p.small
            ),
            pass,
        ));
    }

    println!();
    println!("session_count and session_remove_expired (one call over the whole store):");
    for l in &rep.scans {
        println!("  {l}");
    }
    println!();
    println!("round spread (min..max of round means, ns/op):");
    for row in &rows {
        let (a, b) = row.stat.spread();
        let mut line = format!(
            "  {:<6} {:>7} {:<11} {}..{}",
            row.driver,
            thousands(row.stored as f64),
            row.op,
            thousands(a),
            thousands(b)
        );
        for f in &row.floors {
            let (a, b) = f.stat.spread();
            line.push_str(&format!(
                " | {} {}..{}",
                f.label.split_whitespace().next().unwrap_or(""),
                thousands(a),
                thousands(b)
            ));
        }
        println!("{line}");
    }
    for n in &rep.notes {
        println!("  {n}");
    }
}
