//! The memory driver: sessions in this process's memory, gone when it exits.
//!
//! The map is split into shards by the first byte of the (random) id, each behind
//! its own reader-writer lock, so threads working on different sessions rarely
//! meet on a lock.

use super::Store;
use crate::error::Result;
use crate::id::SessionId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SHARDS: usize = 64;
/// Stands in for an expiry too far away for `Instant` (the config caps lifetimes).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

struct Entry {
    data: Box<[u8]>,
    expires: Instant,
}

pub struct MemoryStore {
    shards: Box<[RwLock<HashMap<SessionId, Entry>>]>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: &SessionId) -> &RwLock<HashMap<SessionId, Entry>> {
        let bytes = id.as_bytes();
        let index = (usize::from(bytes[0]) << 8 | usize::from(bytes[1])) % SHARDS;
        &self.shards[index]
    }

    /// Number of sessions held, expired ones included until they are removed.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl Store for MemoryStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut shard = self.shard(id).write();
        if shard.get(id).is_some_and(|e| e.expires > now) {
            return Ok(false);
        }
        shard.insert(
            *id,
            Entry {
                data: data.into(),
                expires: now.checked_add(lifetime).unwrap_or(now + FAR_FUTURE),
            },
        );
        Ok(true)
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let shard = self.shard(id).read();
        Ok(shard
            .get(id)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.data.to_vec()))
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<bool> {
        let mut shard = self.shard(id).write();
        match shard.get_mut(id) {
            Some(entry) if entry.expires > Instant::now() => {
                entry.data = data.into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        self.shard(id).write().remove(id);
        Ok(())
    }

    fn remove_expired(&self) -> Result<usize> {
        let now = Instant::now();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            let before = shard.len();
            shard.retain(|_, e| e.expires > now);
            removed += before - shard.len();
        }
        Ok(removed)
    }
}
