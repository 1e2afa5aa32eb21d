//! One soak thread: a random mix of operations on the sessions it created, each
//! read checked against the last write the store acknowledged, plus compare-and-set
//! increments of the shared counter sessions.

use session::{Error, Result, SessionError, SessionId, Sessions};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// Sessions a thread keeps; past this it destroys its oldest before a create.
pub const MAX_TRACKED: usize = 200;
/// Per-key members a thread sets, reads, deletes and pops.
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// Unexpected errors (and losses) whose message is kept, per thread.
const MESSAGES: usize = 5;

#[derive(Clone, Copy)]
pub enum Op {
    Create,
    Get,
    Update,
    SetValue,
    GetValue,
    DeleteValue,
    PopValue,
    UpdateIf,
    Touch,
    Regenerate,
    Destroy,
    Increment,
    RemoveExpired,
    Count,
}

/// The mix: each kind's name and share, per mille (the shares sum to 1000).
pub const MIX: [(Op, &str, usize); 14] = [
    (Op::Create, "create", 110),
    (Op::Get, "get", 220),
    (Op::Update, "update", 90),
    (Op::SetValue, "set_value", 120),
    (Op::GetValue, "get_value", 120),
    (Op::DeleteValue, "delete_value", 30),
    (Op::PopValue, "pop_value", 30),
    (Op::UpdateIf, "update_if", 60),
    (Op::Touch, "touch", 60),
    (Op::Regenerate, "regenerate", 50),
    (Op::Destroy, "destroy", 50),
    (Op::Increment, "cas_increment", 56),
    (Op::RemoveExpired, "remove_expired", 2),
    (Op::Count, "count", 2),
];

fn pick(mut r: usize) -> Op {
    for (op, _, w) in MIX {
        if r < w {
            return op;
        }
        r -= w;
    }
    unreachable!("MIX sums to 1000")
}

/// What a thread (or, merged, a process) saw.
#[derive(Default)]
pub struct Stats {
    pub ops: [u64; 14],
    /// Ops done before the warm-up RSS sample (a thread's share, approximately).
    pub ops_warm: u64,
    /// Unexpected errors by code.
    pub errors: BTreeMap<String, u64>,
    /// The first messages of unexpected errors and losses.
    pub messages: Vec<String>,
    /// Expected: update_if conflicts on the shared counters (retried).
    pub conflicts: u64,
    pub lost_sessions: u64,
    pub lost_updates: u64,
    /// Successful increments of each shared counter.
    pub increments: Vec<u64>,
    pub expired_removed: u64,
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.ops.iter().sum()
    }

    pub fn unexpected(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, o: Stats) {
        for (a, b) in self.ops.iter_mut().zip(o.ops) {
            *a += b;
        }
        self.ops_warm += o.ops_warm;
        for (code, n) in o.errors {
            *self.errors.entry(code).or_default() += n;
        }
        let room = MESSAGES.saturating_sub(self.messages.len());
        self.messages.extend(o.messages.into_iter().take(room));
        self.conflicts += o.conflicts;
        self.lost_sessions += o.lost_sessions;
        self.lost_updates += o.lost_updates;
        self.increments
            .resize(o.increments.len().max(self.increments.len()), 0);
        for (a, b) in self.increments.iter_mut().zip(o.increments) {
            *a += b;
        }
        self.expired_removed += o.expired_removed;
    }

    fn note(&mut self, message: String) {
        if self.messages.len() < MESSAGES {
            self.messages.push(message);
        }
    }

    fn error(&mut self, op: Op, code: &str, message: &str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
        self.note(format!("{}: {code}: {message}", MIX[op as usize].1));
    }

    fn failed(&mut self, op: Op, e: &Error) {
        self.error(op, &format!("{:?}", e.code), &e.message);
    }

    /// The result of `op` on a tracked session: NOT_FOUND is a lost session, any
    /// other error unexpected. `Err` tells the caller to stop tracking the session
    /// (its state is unknown after a failed write).
    fn done<T>(&mut self, op: Op, id: &SessionId, r: Result<T>) -> Track<T> {
        r.map_err(|e| {
            if e.code == SessionError::NotFound {
                self.lost_sessions += 1;
                let id = &id.as_str()[..12];
                self.note(format!("{}: LOST session {id}…: {}", MIX[op as usize].1, e));
            } else {
                self.failed(op, &e);
            }
        })
    }

    fn lost_update(&mut self, op: Op, what: String) {
        self.lost_updates += 1;
        self.note(format!("{}: LOST update: {what}", MIX[op as usize].1));
    }
}

/// `Err`: stop tracking the session (its state is unknown, or a loss was counted).
type Track<T = ()> = std::result::Result<T, ()>;

/// A session of this thread and the last write the store acknowledged.
struct Tracked {
    id: SessionId,
    seq: u64,
    values: [Option<u64>; 3],
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub struct Thread<'a> {
    pub sessions: &'a Sessions,
    pub shared: &'a [SessionId],
    pub warm_up: Instant,
    pub deadline: Instant,
    pub tag: String,
    pub seed: u64,
}

/// The data of a write: the writer, a sequence number unique to the thread, padding
/// to ~200 bytes.
fn data(tag: &str, seq: u64) -> Vec<u8> {
    format!(
        r#"{{"owner":"{tag}","seq":{seq},"pad":"{}"}}"#,
        "x".repeat(150)
    )
    .into_bytes()
}

/// Checks the data read for `t`; a difference is a lost update (and `Err`: the
/// session is no longer tracked, so that one loss counts once).
fn check(st: &mut Stats, op: Op, t: &Tracked, data: &[u8]) -> Track {
    let v: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    let member = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let read = (member("seq"), KEYS.map(member));
    if read == (Some(t.seq), t.values) {
        return Ok(());
    }
    let id = &t.id.as_str()[..12];
    let what = format!(
        "{id}… (seq, {KEYS:?}) expected ({}, {:?}), read {read:?}",
        t.seq, t.values
    );
    st.lost_update(op, what);
    Err(())
}

/// A per-key value as the store returned it (JSON text of a number) against the
/// one expected; as [`check`].
fn check_value(st: &mut Stats, op: Op, t: &Tracked, k: usize, got: Option<Vec<u8>>) -> Track {
    let got = got.map(|v| {
        String::from_utf8_lossy(&v)
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    });
    if got == t.values[k] {
        return Ok(());
    }
    let id = &t.id.as_str()[..12];
    st.lost_update(
        op,
        format!("{id}… {} expected {:?}, read {got:?}", KEYS[k], t.values[k]),
    );
    Err(())
}

/// A session that must be gone (after destroy, or the old id after regenerate).
fn gone(st: &mut Stats, op: Op, s: &Sessions, id: &SessionId) {
    match s.exists(id.as_bytes()) {
        Err(e) if e.code == SessionError::NotFound => {}
        Ok(()) => st.error(
            op,
            "STILL_LIVE",
            "a destroyed or regenerated-away id still exists",
        ),
        Err(e) => st.failed(op, &e),
    }
}

impl Thread<'_> {
    pub fn run(&self) -> Stats {
        let s = self.sessions;
        let mut st = Stats {
            increments: vec![0; self.shared.len()],
            ..Stats::default()
        };
        let mut rng = Rng(self.seed | 1);
        let mut mine: VecDeque<Tracked> = VecDeque::new();
        let mut seq = 0u64;
        // The last value this thread wrote to each shared counter.
        let mut written = vec![0u64; self.shared.len()];
        let mut warm = true;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            if warm && now >= self.warm_up {
                warm = false;
                st.ops_warm = st.total();
            }
            let op = pick(rng.below(1000));
            let op = if mine.is_empty() && (op as usize) < Op::Increment as usize {
                Op::Create
            } else {
                op
            };
            st.ops[op as usize] += 1;
            let i = rng.below(mine.len().max(1));
            let k = rng.below(KEYS.len());
            seq += 1;
            let keep = match op {
                Op::Create => {
                    if mine.len() >= MAX_TRACKED {
                        let old = mine.pop_front().unwrap();
                        st.ops[Op::Destroy as usize] += 1;
                        let _ = st.done(Op::Destroy, &old.id, s.destroy(old.id.as_bytes()));
                    }
                    match s.create(&data(&self.tag, seq)) {
                        Ok(id) => mine.push_back(Tracked {
                            id,
                            seq,
                            values: [None; 3],
                        }),
                        Err(e) => st.failed(op, &e),
                    }
                    Ok(())
                }
                Op::Get => {
                    let t = &mine[i];
                    st.done(op, &t.id, s.get(t.id.as_bytes()))
                        .and_then(|d| check(&mut st, op, t, &d))
                }
                Op::Update => {
                    let t = &mut mine[i];
                    let r = s.update(t.id.as_bytes(), &data(&self.tag, seq));
                    st.done(op, &t.id, r).map(|()| {
                        t.seq = seq;
                        t.values = [None; 3];
                    })
                }
                Op::SetValue => {
                    let t = &mut mine[i];
                    let r = s.set_value(
                        t.id.as_bytes(),
                        KEYS[k].as_bytes(),
                        seq.to_string().as_bytes(),
                    );
                    st.done(op, &t.id, r).map(|()| t.values[k] = Some(seq))
                }
                Op::GetValue => {
                    let t = &mine[i];
                    let r = s.get_value(t.id.as_bytes(), KEYS[k].as_bytes());
                    st.done(op, &t.id, r)
                        .and_then(|v| check_value(&mut st, op, t, k, v))
                }
                Op::DeleteValue => {
                    let t = &mut mine[i];
                    let r = s.delete_value(t.id.as_bytes(), KEYS[k].as_bytes());
                    st.done(op, &t.id, r).map(|()| t.values[k] = None)
                }
                Op::PopValue => {
                    let t = &mut mine[i];
                    let r = s.pop_value(t.id.as_bytes(), KEYS[k].as_bytes());
                    st.done(op, &t.id, r)
                        .and_then(|v| check_value(&mut st, op, t, k, v))
                        .map(|()| t.values[k] = None)
                }
                Op::UpdateIf => {
                    let t = &mut mine[i];
                    let r = s.get_versioned(t.id.as_bytes());
                    st.done(op, &t.id, r).and_then(|(d, version)| {
                        check(&mut st, op, t, &d)?;
                        // Nobody else writes this session: a conflict is a bug.
                        let r = s.update_if(t.id.as_bytes(), &data(&self.tag, seq), version);
                        st.done(op, &t.id, r).map(|()| {
                            t.seq = seq;
                            t.values = [None; 3];
                        })
                    })
                }
                Op::Touch => {
                    let t = &mine[i];
                    st.done(op, &t.id, s.touch(t.id.as_bytes()))
                }
                Op::Regenerate => {
                    let t = &mut mine[i];
                    st.done(op, &t.id, s.regenerate(t.id.as_bytes()))
                        .map(|new| {
                            let old = std::mem::replace(&mut t.id, new);
                            gone(&mut st, op, s, &old);
                        })
                }
                Op::Destroy => {
                    let t = mine.remove(i).unwrap();
                    let r = s.destroy(t.id.as_bytes());
                    let _ = st.done(op, &t.id, r).map(|()| gone(&mut st, op, s, &t.id));
                    Ok(())
                }
                Op::Increment => {
                    let c = rng.below(self.shared.len());
                    self.increment(&mut st, c, &mut written[c]);
                    Ok(())
                }
                Op::RemoveExpired => {
                    match s.remove_expired() {
                        Ok(n) => st.expired_removed += n as u64,
                        Err(e) => st.failed(op, &e),
                    }
                    Ok(())
                }
                Op::Count => {
                    match s.count() {
                        // This thread's sessions are live throughout the call.
                        Ok(n) if n < mine.len() as u64 => {
                            st.lost_sessions += 1;
                            st.note(format!("count: LOST: {n} < this thread's {}", mine.len()));
                        }
                        Ok(_) => {}
                        Err(e) => st.failed(op, &e),
                    }
                    Ok(())
                }
            };
            if keep.is_err() && (op as usize) < Op::Increment as usize && i < mine.len() {
                mine.remove(i);
            }
        }
        // Last check: every session still tracked reads back as last written.
        for t in &mine {
            st.ops[Op::Get as usize] += 1;
            let r = s.get(t.id.as_bytes());
            let _ = st
                .done(Op::Get, &t.id, r)
                .and_then(|d| check(&mut st, Op::Get, t, &d));
        }
        st
    }

    /// One compare-and-set increment of shared counter `c`, retried on conflict. A
    /// value below the last one this thread wrote is a lost update.
    fn increment(&self, st: &mut Stats, c: usize, written: &mut u64) {
        let s = self.sessions;
        let id = &self.shared[c];
        for _ in 0..100_000 {
            let Ok((d, version)) = st.done(Op::Increment, id, s.get_versioned(id.as_bytes()))
            else {
                return;
            };
            let n = counter(&d);
            if n < *written || n == u64::MAX {
                let what = format!("shared counter {c} read {n} after this thread wrote {written}");
                st.lost_update(Op::Increment, what);
                return;
            }
            let r = s.update_if(id.as_bytes(), &counter_data(n + 1), version);
            match r {
                Ok(()) => {
                    *written = n + 1;
                    st.increments[c] += 1;
                    return;
                }
                Err(Error {
                    code: SessionError::Conflict,
                    ..
                }) => st.conflicts += 1,
                Err(e) => {
                    st.failed(Op::Increment, &e);
                    return;
                }
            }
        }
        st.error(Op::Increment, "STARVED", "100000 conflicts in a row");
    }
}

/// The data of a shared counter session.
pub fn counter_data(n: u64) -> Vec<u8> {
    format!(r#"{{"n":{n}}}"#).into_bytes()
}

pub fn counter(data: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    v["n"].as_u64().unwrap_or(u64::MAX)
}
