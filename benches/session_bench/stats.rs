//! Statistics: rounds of interleaved calls, medians of round means, percentiles.

use crate::Params;

#[derive(Default, Clone)]
pub struct Stat {
    pub round_means: Vec<f64>,
    pub samples: Vec<u64>,
}

impl Stat {
    pub fn median(&self) -> f64 {
        crate::common::median_of(self.round_means.iter().copied())
    }
    pub fn p99(&self) -> u64 {
        self.percentile(0.99)
    }
    /// The `q` quantile (0.5: the median) of the per-call latencies of all rounds.
    pub fn percentile(&self, q: f64) -> u64 {
        let mut v = self.samples.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0;
        }
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
    }
    pub fn spread(&self) -> (f64, f64) {
        let min = self
            .round_means
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        let max = self.round_means.iter().cloned().fold(0.0, f64::max);
        (min, max)
    }
}

/// Runs `rounds` x `ops` iterations; each iteration calls `op(kind, index)` once per
/// kind, in an order that rotates every iteration. `op` returns the ns of its call.
pub fn run_rounds(p: &Params, kinds: usize, op: impl FnMut(usize, usize) -> u64) -> Vec<Stat> {
    run_rounds_n(p.rounds, p.ops, kinds, op)
}

/// `run_rounds` with explicit counts.
pub fn run_rounds_n(
    rounds: usize,
    ops: usize,
    kinds: usize,
    mut op: impl FnMut(usize, usize) -> u64,
) -> Vec<Stat> {
    let mut stats = vec![Stat::default(); kinds];
    for r in 0..rounds {
        let mut sums = vec![0u64; kinds];
        for i in 0..ops {
            let g = r * ops + i;
            for slot in 0..kinds {
                let k = (i + slot) % kinds;
                let ns = op(k, g);
                sums[k] += ns;
                stats[k].samples.push(ns);
            }
        }
        for k in 0..kinds {
            stats[k].round_means.push(sums[k] as f64 / ops as f64);
        }
    }
    stats
}

/// Splits the result of a 2-kind `run_rounds`.
pub fn two(v: Vec<Stat>) -> (Stat, Stat) {
    let mut it = v.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}
