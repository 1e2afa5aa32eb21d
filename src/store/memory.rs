//! The memory driver: sessions in this process's memory, gone when it exits.
//!
//! The map is split into shards by the first bytes of the (random) id, each behind
//! its own reader-writer lock, so threads working on different sessions rarely meet
//! on a lock. A regenerate takes the locks of both ids' shards (in shard order), so
//! no reader ever finds both ids or neither.
//!
//! `max_sessions` caps the live sessions: a create that finds the store full first
//! removes the ended ones, then fails with `SESSION_ERROR_FULL`.

use super::{now_ns, Change, Expiry, Outcome, Peeked, Store};
use crate::config::Section;
use crate::error::Result;
use crate::id::SessionId;
use crate::seal::OwnerTag;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The keys of `sessions` the memory driver owns.
pub const KEYS: &[&str] = &["max_sessions"];

const SHARDS: usize = 64;
/// A full store sweeps its ended sessions at most this often.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The settings of the memory driver.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryConfig {
    /// Most sessions held at once (`None`: no limit).
    pub max_sessions: Option<usize>,
}

/// Reads the memory driver's keys.
pub fn parse(section: &Section) -> Result<MemoryConfig> {
    Ok(MemoryConfig {
        max_sessions: section
            .u64_in("max_sessions", 1..=1 << 40, "a positive integer (sessions)")?
            .map(|n| n as usize),
    })
}

struct Entry {
    data: Box<[u8]>,
    absolute_ns: u64,
    idle_ns: u64,
    version: u64,
    read_only: bool,
}

impl Entry {
    fn end_ns(&self) -> u64 {
        self.absolute_ns.min(self.idle_ns)
    }

    fn live(&self, now: u64) -> bool {
        // cargo-mutants: `>=` for `>` is equivalent: they differ only if the clock reads the end to the ns.
        self.end_ns() > now
    }
}

type Shard = HashMap<SessionId, Entry>;

/// The owner index: for each owner, its sessions and the bound of each entry.
/// Locked after a shard lock, never before one.
type OwnerIndex = HashMap<OwnerTag, HashMap<SessionId, u64>>;

pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
    /// Entries held, ended ones included until they are removed.
    held: AtomicUsize,
    max_sessions: Option<usize>,
    /// When (ns since 1970) a full store may sweep again.
    next_sweep_ns: AtomicU64,
    expiry: Expiry,
    index: Mutex<OwnerIndex>,
}

impl MemoryStore {
    pub fn new(config: &MemoryConfig, expiry: Expiry) -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            held: AtomicUsize::new(0),
            max_sessions: config.max_sessions,
            next_sweep_ns: AtomicU64::new(0),
            expiry,
            index: Mutex::new(HashMap::new()),
        }
    }

    /// The shard of an id: its first two hex digits (a random byte), modulo SHARDS.
    fn shard_index(id: &SessionId) -> usize {
        let digit = |c: u8| usize::from(if c <= b'9' { c - b'0' } else { c - b'a' + 10 });
        let bytes = id.as_bytes();
        // cargo-mutants: `^` for `|` is equivalent: the shifted digit's low 4 bits are zero.
        (digit(bytes[0]) << 4 | digit(bytes[1])) % SHARDS
    }

    fn shard(&self, id: &SessionId) -> &RwLock<Shard> {
        &self.shards[Self::shard_index(id)]
    }

    /// Number of sessions held, ended ones included until they are removed.
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `id` into a locked shard with a slot reserved by [`Self::reserve`]:
    /// replacing an ended entry gives the slot back.
    fn put(&self, shard: &mut Shard, id: SessionId, entry: Entry) {
        if shard.insert(id, entry).is_some() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn take(&self, shard: &mut Shard, id: &SessionId) -> Option<Entry> {
        let entry = shard.remove(id);
        if entry.is_some() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
        entry
    }

    /// Reserves the slot of one more entry in `held`: `false` when `max_sessions`
    /// are held even after removing the ended ones (swept at most every
    /// [`SWEEP_INTERVAL`], so a full store of live sessions does not walk every
    /// entry on every create). The caller gives the slot back with [`Self::release`]
    /// if it inserts nothing.
    fn reserve(&self) -> bool {
        let Some(max) = self.max_sessions else {
            self.held.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        let mut swept = false;
        loop {
            let held = self.held.load(Ordering::Relaxed);
            if held < max {
                if self
                    .held
                    .compare_exchange(held, held + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            let now = now_ns();
            let due = self.next_sweep_ns.load(Ordering::Relaxed);
            // cargo-mutants: `<=` for `<` is equivalent: they differ only if the clock reads `due` to the ns.
            if swept
                || now < due
                || self
                    .next_sweep_ns
                    .compare_exchange(
                        due,
                        now.saturating_add(super::nanos(SWEEP_INTERVAL)),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                return false;
            }
            let _ = self.remove_expired();
            swept = true;
        }
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Store for MemoryStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<Outcome> {
        if !self.reserve() {
            return Ok(Outcome::Full);
        }
        let now = now_ns();
        let mut shard = self.shard(id).write();
        if shard.get(id).is_some_and(|e| e.live(now)) {
            self.release();
            return Ok(Outcome::Taken);
        }
        let absolute_ns = now.saturating_add(super::nanos(lifetime));
        let entry = Entry {
            data: data.into(),
            absolute_ns,
            idle_ns: self.expiry.idle_end(now, absolute_ns),
            version: 1,
            read_only: false,
        };
        self.put(&mut shard, *id, entry);
        Ok(Outcome::Applied)
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        Ok(self.read(id)?.map(|(data, _)| data))
    }

    fn get_versioned(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
        self.read(id)
    }

    fn update_if(&self, id: &SessionId, data: &[u8], version: u64) -> Result<Outcome> {
        self.write(id, Some(version), &mut |_| Ok(Some(data.to_vec())))
    }

    fn modify(&self, id: &SessionId, change: &mut super::Change) -> Result<Outcome> {
        self.write(id, None, change)
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<Outcome> {
        self.write(id, None, &mut |_| Ok(Some(data.to_vec())))
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        let mut shard = self.shard(id).write();
        self.take(&mut shard, id);
        Ok(())
    }

    fn touch(&self, id: &SessionId) -> Result<Outcome> {
        let now = now_ns();
        let mut shard = self.shard(id).write();
        match shard.get_mut(id) {
            Some(entry) if entry.live(now) => {
                if !entry.read_only {
                    let idle_ns = self.expiry.idle_end(now, entry.absolute_ns);
                    entry.idle_ns = entry.idle_ns.max(idle_ns);
                }
                Ok(Outcome::Applied)
            }
            _ => Ok(Outcome::Missing),
        }
    }

    fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        let now = now_ns();
        let shard = self.shard(id).read();
        Ok(shard
            .get(id)
            .filter(|e| e.live(now))
            .map(|e| Duration::from_nanos(e.end_ns() - now)))
    }

    fn count(&self) -> Result<u64> {
        let now = now_ns();
        Ok(self
            .shards
            .iter()
            .map(|s| s.read().values().filter(|e| e.live(now)).count() as u64)
            .sum())
    }

    fn ids(&self) -> Result<Vec<SessionId>> {
        let now = now_ns();
        Ok(self
            .shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .iter()
                    .filter(|(_, e)| e.live(now))
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    fn regenerate(
        &self,
        old: &SessionId,
        new: &SessionId,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome> {
        let now = now_ns();
        // With a grace the old entry stays: the new one needs a slot of its own,
        // reserved before any shard is locked (a full store sweeps every shard).
        let reserved = self.grace(now).map(|_| self.reserve());
        let (a, b) = (Self::shard_index(old), Self::shard_index(new));
        let outcome = {
            // Both shards locked, in index order, for one atomic step.
            let mut first = self.shards[a.min(b)].write();
            let mut second = (a != b).then(|| self.shards[a.max(b)].write());
            let (old_shard, new_shard) = match second.as_deref_mut() {
                None => (&mut *first, None),
                // cargo-mutants: `<=` for `<` is equivalent: `second` exists only when a != b.
                Some(other) if a < b => (&mut *first, Some(other)),
                Some(other) => (other, Some(&mut *first)),
            };
            self.regenerate_locked(old_shard, new_shard, old, new, now, reserved, rewrite)
        };
        if reserved == Some(true) && !matches!(outcome, Ok(Outcome::Applied)) {
            self.release();
        }
        outcome
    }

    fn remove_expired(&self) -> Result<usize> {
        let now = now_ns();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let before = shard.len();
            shard.retain(|_, e| e.live(now));
            removed += before - shard.len();
        }
        self.held.fetch_sub(removed, Ordering::Relaxed);
        self.prune_index(now);
        Ok(removed)
    }

    fn peek(&self, id: &SessionId) -> Result<Option<Peeked>> {
        let now = now_ns();
        let shard = self.shard(id).read();
        Ok(shard
            .get(id)
            .filter(|e| e.live(now))
            .map(|e| (e.data.to_vec(), e.absolute_ns)))
    }

    fn index_add(&self, owner: &OwnerTag, id: &SessionId, until_ns: u64) -> Result<()> {
        let mut index = self.index.lock();
        let until = index.entry(*owner).or_default().entry(*id).or_insert(0);
        *until = (*until).max(until_ns);
        Ok(())
    }

    fn index_list(&self, owner: &OwnerTag) -> Result<Vec<(SessionId, u64)>> {
        let now = now_ns();
        let mut index = self.index.lock();
        let Some(entries) = index.get_mut(owner) else {
            return Ok(Vec::new());
        };
        // cargo-mutants: `>=` for `>` is equivalent: they differ only if the clock reads a bound to the ns.
        entries.retain(|_, until| *until > now);
        let ids = entries.iter().map(|(id, until)| (*id, *until)).collect();
        if entries.is_empty() {
            index.remove(owner);
        }
        Ok(ids)
    }

    fn index_remove(&self, owner: &OwnerTag, ids: &[SessionId]) -> Result<()> {
        let mut index = self.index.lock();
        if let Some(entries) = index.get_mut(owner) {
            for id in ids {
                entries.remove(id);
            }
            if entries.is_empty() {
                index.remove(owner);
            }
        }
        Ok(())
    }
}

impl MemoryStore {
    /// Every write of a live session's data, under its shard's write lock: with
    /// `expected`, only while the version is that one. New data bumps the version
    /// and moves the idle end.
    fn write(
        &self,
        id: &SessionId,
        expected: Option<u64>,
        change: &mut super::Change,
    ) -> Result<Outcome> {
        let now = now_ns();
        let mut shard = self.shard(id).write();
        let Some(entry) = shard.get_mut(id).filter(|e| e.live(now)) else {
            return Ok(Outcome::Missing);
        };
        if entry.read_only {
            return Ok(Outcome::ReadOnly);
        }
        if expected.is_some_and(|v| v != entry.version) {
            return Ok(Outcome::Conflict);
        }
        if let Some(new) = change(&entry.data)? {
            entry.data = new.into();
            entry.version += 1;
            entry.idle_ns = self.expiry.idle_end(now, entry.absolute_ns);
        }
        Ok(Outcome::Applied)
    }

    /// A get, with the version.
    fn read(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
        let now = now_ns();
        let refresh = {
            let shard = self.shard(id).read();
            let Some(entry) = shard.get(id).filter(|e| e.live(now)) else {
                return Ok(None);
            };
            let refresh = if entry.read_only {
                None
            } else {
                self.expiry
                    .refresh_on_read(now, entry.absolute_ns, entry.idle_ns)
            };
            if refresh.is_none() {
                return Ok(Some((entry.data.to_vec(), entry.version)));
            }
            refresh
        };
        // Rarely (once per 1% of idle_timeout): move the idle end under the write lock.
        let mut shard = self.shard(id).write();
        let Some(entry) = shard.get_mut(id).filter(|e| e.live(now)) else {
            return Ok(None);
        };
        if let Some(idle_ns) = refresh {
            entry.idle_ns = entry.idle_ns.max(idle_ns);
        }
        Ok(Some((entry.data.to_vec(), entry.version)))
    }

    /// Drops the index entries past their bound.
    fn prune_index(&self, now: u64) {
        self.index.lock().retain(|_, entries| {
            // cargo-mutants: `>=` for `>` is equivalent: they differ only if the clock reads a bound to the ns.
            entries.retain(|_, until| *until > now);
            !entries.is_empty()
        });
    }

    /// A regenerate with the shards of both ids locked (`new_shard` is `None` when
    /// both ids share `old_shard`). `reserved`: with a grace, whether a slot for the
    /// new entry was reserved.
    #[allow(clippy::too_many_arguments)]
    fn regenerate_locked(
        &self,
        old_shard: &mut Shard,
        new_shard: Option<&mut Shard>,
        old: &SessionId,
        new: &SessionId,
        now: u64,
        reserved: Option<bool>,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome> {
        let mut moved = match old_shard.get(old) {
            Some(e) if e.live(now) && e.read_only => return Ok(Outcome::ReadOnly),
            Some(e) if e.live(now) => self.moved(e, now),
            _ => return Ok(Outcome::Missing),
        };
        let taken = new_shard.as_deref().unwrap_or(old_shard).get(new);
        if taken.is_some_and(|e| e.live(now)) {
            return Ok(Outcome::Taken);
        }
        if reserved == Some(false) {
            return Ok(Outcome::Full);
        }
        if let Some(rewrite) = rewrite {
            if let Some(data) = rewrite(&moved.data)? {
                moved.data = data.into();
            }
        }
        match self.grace(now) {
            Some(end) => {
                if let Some(e) = old_shard.get_mut(old) {
                    e.read_only = true;
                    e.absolute_ns = e.absolute_ns.min(end);
                }
            }
            None => {
                // The old entry's slot passes to the new one.
                old_shard.remove(old);
            }
        }
        self.put(new_shard.unwrap_or(old_shard), *new, moved);
        Ok(Outcome::Applied)
    }

    /// The entry a regenerate puts under the new id.
    fn moved(&self, entry: &Entry, now: u64) -> Entry {
        Entry {
            data: entry.data.clone(),
            absolute_ns: entry.absolute_ns,
            idle_ns: self.expiry.idle_end(now, entry.absolute_ns),
            version: entry.version + 1,
            read_only: false,
        }
    }

    /// When the old id of a session regenerated now stops reading, if it has a grace.
    fn grace(&self, now: u64) -> Option<u64> {
        let grace = self.expiry.regenerate_grace;
        (!grace.is_zero()).then(|| now.saturating_add(super::nanos(grace)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id whose hex text starts with `prefix`, padded with `fill`.
    fn id(prefix: &str, fill: char) -> SessionId {
        let text: String = prefix
            .chars()
            .chain(std::iter::repeat(fill))
            .take(64)
            .collect();
        SessionId::parse(text.as_bytes()).unwrap()
    }

    fn store(max_sessions: Option<usize>, grace: Duration) -> MemoryStore {
        MemoryStore::new(
            &MemoryConfig { max_sessions },
            Expiry {
                idle_timeout: None,
                regenerate_grace: grace,
            },
        )
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Ids spread over every shard: the shard is the first byte of the id (its two
    /// leading hex digits) modulo the number of shards.
    #[test]
    fn the_shard_of_an_id_is_its_first_byte_modulo_the_shard_count() {
        let mut used = std::collections::HashSet::new();
        for byte in 0..=255usize {
            let shard = MemoryStore::shard_index(&id(&format!("{byte:02x}"), 'f'));
            assert_eq!(shard, byte % SHARDS, "first byte {byte:02x}");
            used.insert(shard);
        }
        assert_eq!(used.len(), SHARDS);
    }

    #[test]
    fn len_counts_the_entries_held() {
        let s = store(None, Duration::ZERO);
        assert_eq!((s.len(), s.is_empty()), (0, true));
        let (a, b) = (id("01", '0'), id("02", '0'));
        assert_eq!(s.create(&a, b"1", HOUR).unwrap(), Outcome::Applied);
        assert_eq!((s.len(), s.is_empty()), (1, false));
        assert_eq!(s.create(&b, b"2", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.len(), 2);
        s.destroy(&a).unwrap();
        s.destroy(&a).unwrap();
        assert_eq!((s.len(), s.is_empty()), (1, false));
        s.destroy(&b).unwrap();
        assert_eq!((s.len(), s.is_empty()), (0, true));
    }

    /// A full store sweeps its ended sessions only when a sweep is due, then not
    /// again for SWEEP_INTERVAL.
    #[test]
    fn a_full_store_sweeps_only_when_a_sweep_is_due() {
        let s = store(Some(1), Duration::ZERO);
        let (a, b) = (id("01", '0'), id("02", '0'));
        // `a` ends at once but holds the only slot until a sweep removes it.
        assert_eq!(
            s.create(&a, b"a", Duration::from_nanos(1)).unwrap(),
            Outcome::Applied
        );
        s.next_sweep_ns.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(s.create(&b, b"b", HOUR).unwrap(), Outcome::Full);
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_sweep_ns.load(Ordering::Relaxed), u64::MAX);
        // Due: the create sweeps `a` away and takes its slot.
        s.next_sweep_ns.store(0, Ordering::Relaxed);
        let before = now_ns();
        assert_eq!(s.create(&b, b"b", HOUR).unwrap(), Outcome::Applied);
        let next = s.next_sweep_ns.load(Ordering::Relaxed);
        assert!(
            next >= before + super::super::nanos(SWEEP_INTERVAL),
            "{next} {before}"
        );
        assert!(next <= now_ns() + super::super::nanos(SWEEP_INTERVAL));
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(&b).unwrap().as_deref(), Some(&b"b"[..]));
        // Full of live sessions, a due sweep frees nothing: full, once.
        s.next_sweep_ns.store(0, Ordering::Relaxed);
        assert_eq!(s.create(&a, b"a", HOUR).unwrap(), Outcome::Full);
        assert_eq!(s.len(), 1);
    }

    /// A create or regenerate that inserts nothing gives its reserved slot back.
    #[test]
    fn a_create_or_regenerate_that_inserts_nothing_gives_its_slot_back() {
        let s = store(Some(3), Duration::ZERO);
        let (a, b, c) = (id("01", '0'), id("02", '0'), id("03", '0'));
        assert_eq!(s.create(&a, b"a", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.create(&a, b"a", HOUR).unwrap(), Outcome::Taken);
        assert_eq!(s.len(), 1);
        assert_eq!(s.create(&b, b"b", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.create(&c, b"c", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.len(), 3);

        // With a grace a regenerate reserves a slot for the new entry.
        let s = store(Some(3), HOUR);
        assert_eq!(s.create(&a, b"a", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.create(&b, b"b", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.regenerate(&a, &b, None).unwrap(), Outcome::Taken);
        assert_eq!(s.regenerate(&c, &b, None).unwrap(), Outcome::Missing);
        assert_eq!(s.len(), 2);
        assert_eq!(s.regenerate(&a, &c, None).unwrap(), Outcome::Applied);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(&a).unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(s.get(&c).unwrap().as_deref(), Some(&b"a"[..]));
        // Full: the regenerate is refused and holds nothing more.
        let d = id("04", '0');
        assert_eq!(s.regenerate(&b, &d, None).unwrap(), Outcome::Full);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn ids_and_count_are_the_live_sessions() {
        let s = store(None, Duration::ZERO);
        assert_eq!(s.ids().unwrap(), []);
        let (a, b, c) = (id("01", '0'), id("c2", '0'), id("03", '0'));
        assert_eq!(s.create(&a, b"a", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(s.create(&b, b"b", HOUR).unwrap(), Outcome::Applied);
        assert_eq!(
            s.create(&c, b"c", Duration::from_nanos(1)).unwrap(),
            Outcome::Applied
        );
        let mut ids = s.ids().unwrap();
        ids.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        assert_eq!(ids, [a, b]);
        assert_eq!(s.count().unwrap(), 2);
    }

    #[test]
    fn update_if_writes_only_the_version_it_names() {
        let s = store(None, Duration::ZERO);
        let a = id("01", '0');
        assert_eq!(s.create(&a, b"v1", HOUR).unwrap(), Outcome::Applied);
        let (data, v1) = s.get_versioned(&a).unwrap().unwrap();
        assert_eq!(data, b"v1");
        assert_eq!(s.update_if(&a, b"no", v1 + 1).unwrap(), Outcome::Conflict);
        assert_eq!(s.update_if(&a, b"v2", v1).unwrap(), Outcome::Applied);
        assert_eq!(
            s.get_versioned(&a).unwrap().unwrap(),
            (b"v2".to_vec(), v1 + 1)
        );
        assert_eq!(s.update_if(&a, b"no", v1).unwrap(), Outcome::Conflict);
        assert_eq!(s.get(&a).unwrap().as_deref(), Some(&b"v2"[..]));
    }

    /// A sweep also drops the owner-index entries past their bound, and the owners
    /// left without entries, so that the index does not grow without end.
    #[test]
    fn remove_expired_prunes_the_owner_index() {
        let s = store(None, Duration::ZERO);
        let (gone, kept) = (OwnerTag::plain("gone"), OwnerTag::plain("kept"));
        let (a, b) = (id("01", '0'), id("02", '0'));
        let past = now_ns() - 1;
        s.index_add(&gone, &a, past).unwrap();
        s.index_add(&kept, &a, past).unwrap();
        s.index_add(&kept, &b, u64::MAX).unwrap();
        assert_eq!(s.remove_expired().unwrap(), 0);
        let index = s.index.lock();
        assert!(!index.contains_key(&gone));
        assert_eq!(index[&kept].iter().collect::<Vec<_>>(), [(&b, &u64::MAX)]);
    }

    /// A regenerate locks the shards of both ids in index order whichever id is in
    /// the lower shard, or one shard when both ids share it.
    #[test]
    fn regenerate_between_and_within_shards() {
        let low = "00"; // shard 0
        let high = "3f"; // shard 63
        let low_too = "40"; // shard 0 again
        for grace in [Duration::ZERO, HOUR] {
            for (old, new) in [(low, high), (high, low), (low, low_too), (low_too, low)] {
                let s = store(None, grace);
                let (old, new) = (id(old, 'a'), id(new, 'b'));
                assert_eq!(s.create(&old, b"data", HOUR).unwrap(), Outcome::Applied);
                assert_eq!(
                    s.regenerate(&old, &new, None).unwrap(),
                    Outcome::Applied,
                    "{old:?} -> {new:?}"
                );
                assert_eq!(s.get(&new).unwrap().as_deref(), Some(&b"data"[..]));
                if grace.is_zero() {
                    assert_eq!(s.get(&old).unwrap(), None);
                    assert_eq!(s.len(), 1);
                } else {
                    assert_eq!(s.get(&old).unwrap().as_deref(), Some(&b"data"[..]));
                    assert_eq!(s.update(&old, b"x").unwrap(), Outcome::ReadOnly);
                    assert_eq!(s.len(), 2);
                }
                assert_eq!(s.update(&new, b"new").unwrap(), Outcome::Applied);
                assert_eq!(s.get(&new).unwrap().as_deref(), Some(&b"new"[..]));
            }
        }
    }
}
