//! The session API in plain Rust: one configured store plus the rules every driver
//! shares (fresh ids, size limit, what "not found" means). The C API in `ffi.rs`
//! is a thin layer over one global [`Sessions`].

use crate::config::{Config, DriverConfig};
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use crate::store::file::FileStore;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::Store;
use std::time::Duration;

/// Fresh ids tried before `create` gives up; a collision of 256-bit random ids
/// does not happen, so a second try already means the store misbehaves.
const CREATE_ATTEMPTS: usize = 3;

pub struct Sessions {
    store: Box<dyn Store>,
    lifetime: Duration,
    max_data_size: usize,
}

impl Sessions {
    /// Opens the store a configuration names.
    pub fn open(config: &Config) -> Result<Sessions> {
        let store: Box<dyn Store> = match &config.driver {
            DriverConfig::File { dir, fsync } => Box::new(FileStore::open(dir, *fsync)?),
            DriverConfig::Memory => Box::new(MemoryStore::new()),
            DriverConfig::Redis(redis) => Box::new(RedisStore::open(redis)?),
        };
        Ok(Sessions::with_store(
            store,
            config.lifetime,
            config.max_data_size,
        ))
    }

    pub fn with_store(store: Box<dyn Store>, lifetime: Duration, max_data_size: usize) -> Sessions {
        Sessions {
            store,
            lifetime,
            max_data_size,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn check_size(&self, data: &[u8]) -> Result<()> {
        if data.len() > self.max_data_size {
            return Err(Error::new(
                SessionError::TooLarge,
                format!(
                    "session data is {} bytes, more than max_data_size ({} bytes)",
                    data.len(),
                    self.max_data_size
                ),
            ));
        }
        Ok(())
    }

    /// Stores `data` under a fresh id and returns the id.
    pub fn create(&self, data: &[u8]) -> Result<SessionId> {
        self.check_size(data)?;
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate()?;
            if self.store.create(&id, data, self.lifetime)? {
                return Ok(id);
            }
        }
        Err(Error::new(
            SessionError::Internal,
            "could not find a free session id: the random number generator repeats",
        ))
    }

    /// The data of a live session.
    pub fn get(&self, id: &[u8]) -> Result<Vec<u8>> {
        let id = SessionId::parse(id)?;
        self.store.get(&id)?.ok_or_else(Error::not_found)
    }

    /// Replaces the data of a live session, keeping its expiry.
    pub fn update(&self, id: &[u8], data: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.check_size(data)?;
        if self.store.update(&id, data)? {
            Ok(())
        } else {
            Err(Error::not_found())
        }
    }

    /// Removes a session; a session that is already gone is not an error.
    pub fn destroy(&self, id: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.store.destroy(&id)
    }

    /// Deletes the expired sessions and returns how many.
    pub fn remove_expired(&self) -> Result<usize> {
        self.store.remove_expired()
    }
}
