//! The session API in plain Rust: one configured store plus the rules every driver
//! shares (fresh ids, size and lifetime limits, what "not found" means). The C API
//! in `ffi.rs` is a thin layer over [`Sessions`].

use crate::config::{Config, StoreConfig};
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use crate::json_object;
use crate::store::{self, Change, Outcome, Store};
use std::time::Duration;

/// Fresh ids tried before `create` gives up; a collision of 256-bit random ids
/// does not happen, so a second try already means the store misbehaves.
const CREATE_ATTEMPTS: usize = 3;

/// One store and its rules. Shared by all threads.
pub struct Sessions {
    name: String,
    store: Box<dyn Store>,
    lifetime: Duration,
    max_lifetime: Duration,
    max_data_size: usize,
}

impl Sessions {
    /// Opens the default store of a configuration.
    pub fn open(config: &Config) -> Result<Sessions> {
        Sessions::open_store(config.store(None)?)
    }

    /// Opens one store.
    pub fn open_store(config: &StoreConfig) -> Result<Sessions> {
        let store = store::open(&config.driver, config.expiry)?;
        Ok(Sessions {
            name: config.name.clone(),
            store,
            lifetime: config.lifetime,
            max_lifetime: config.max_lifetime,
            max_data_size: config.max_data_size,
        })
    }

    /// The name of the store in its configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The store itself, for tests of the storage contract.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
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

    /// Stores `data` under a fresh id that lives `lifetime`; returns the id.
    pub fn create(&self, data: &[u8]) -> Result<SessionId> {
        self.create_for(data, self.lifetime)
    }

    /// Stores `data` under a fresh id that lives `ttl_seconds` (1 to `max_lifetime`).
    pub fn create_ttl(&self, data: &[u8], ttl_seconds: i64) -> Result<SessionId> {
        let max = self.max_lifetime.as_secs();
        let ttl = u64::try_from(ttl_seconds)
            .ok()
            .filter(|t| (1..=max).contains(t))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "ttl_seconds must be from 1 to {max} (max_lifetime), got {ttl_seconds}"
                ))
            })?;
        self.create_for(data, Duration::from_secs(ttl))
    }

    fn create_for(&self, data: &[u8], lifetime: Duration) -> Result<SessionId> {
        self.check_size(data)?;
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate()?;
            match self.store.create(&id, data, lifetime)? {
                Outcome::Taken => continue,
                outcome => return self.written(outcome).map(|()| id),
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

    /// Replaces the data of a live session, keeping its absolute end.
    pub fn update(&self, id: &[u8], data: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.check_size(data)?;
        self.written(self.store.update(&id, data)?)
    }

    /// The data of a live session and its version.
    pub fn get_versioned(&self, id: &[u8]) -> Result<(Vec<u8>, u64)> {
        let id = SessionId::parse(id)?;
        self.store.get_versioned(&id)?.ok_or_else(Error::not_found)
    }

    /// Replaces the data only while the version is `version`; `Conflict` otherwise.
    pub fn update_if(&self, id: &[u8], data: &[u8], version: u64) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.check_size(data)?;
        self.written(self.store.update_if(&id, data, version)?)
    }

    /// The value of top-level member `key` of a session whose data is a JSON
    /// object, as JSON text; `None` when there is no such member.
    pub fn get_value(&self, id: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = json_key(key)?;
        let data = self.get(id)?;
        Ok(json_object::get(&data, key)?.map(<[u8]>::to_vec))
    }

    /// Sets member `key` to the JSON text `value`, in one atomic step.
    pub fn set_value(&self, id: &[u8], key: &[u8], value: &[u8]) -> Result<()> {
        let key = json_key(key)?;
        json_object::check_value(value)?;
        self.change(id, &mut |data| {
            let new = json_object::set(data, key, value)?;
            self.check_size(&new)?;
            Ok(Some(new))
        })
    }

    /// Removes member `key`, in one atomic step; a missing member is no error.
    pub fn delete_value(&self, id: &[u8], key: &[u8]) -> Result<()> {
        self.pop_value(id, key).map(|_| ())
    }

    /// Reads and removes member `key` in one atomic step (flash messages).
    pub fn pop_value(&self, id: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = json_key(key)?;
        let mut popped = None;
        self.change(id, &mut |data| {
            popped = None;
            Ok(json_object::remove(data, key)?.map(|(new, value)| {
                popped = Some(value);
                new
            }))
        })?;
        Ok(popped)
    }

    fn change(&self, id: &[u8], change: &mut Change) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.written(self.store.modify(&id, change)?)
    }

    /// Removes a session; a session that is already gone is not an error.
    pub fn destroy(&self, id: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.store.destroy(&id)
    }

    /// Moves the idle end of a live session.
    pub fn touch(&self, id: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.written(self.store.touch(&id)?)
    }

    /// Time left until a live session ends.
    pub fn ttl(&self, id: &[u8]) -> Result<Duration> {
        let id = SessionId::parse(id)?;
        self.store.ttl(&id)?.ok_or_else(Error::not_found)
    }

    /// Whether a live session has this id: an error (`NotFound`) when not.
    pub fn exists(&self, id: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        if self.store.exists(&id)? {
            Ok(())
        } else {
            Err(Error::not_found())
        }
    }

    /// Live sessions in the store.
    pub fn count(&self) -> Result<u64> {
        self.store.count()
    }

    /// Gives a live session a fresh id (same data, same absolute end, idle window
    /// restarted); the old id is gone, or read-only during `regenerate_grace`.
    pub fn regenerate(&self, id: &[u8]) -> Result<SessionId> {
        let old = SessionId::parse(id)?;
        for _ in 0..CREATE_ATTEMPTS {
            let new = SessionId::generate()?;
            match self.store.regenerate(&old, &new)? {
                Outcome::Taken => continue,
                outcome => return self.written(outcome).map(|()| new),
            }
        }
        Err(Error::new(
            SessionError::Internal,
            "could not find a free session id: the random number generator repeats",
        ))
    }

    /// Deletes the ended sessions and returns how many.
    pub fn remove_expired(&self) -> Result<usize> {
        self.store.remove_expired()
    }
}

impl Sessions {
    /// A write's outcome as the API reports it.
    fn written(&self, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Applied => Ok(()),
            Outcome::ReadOnly => Err(Error::new(
                SessionError::NotFound,
                "session id was replaced by session_regenerate: it still reads during regenerate_grace but cannot be written",
            )),
            Outcome::Full => Err(Error::new(
                SessionError::Full,
                format!(
                    "session store {:?} is full (max_sessions live sessions)",
                    self.name
                ),
            )),
            Outcome::Conflict => Err(Error::new(
                SessionError::Conflict,
                "session changed since it was read (its version is newer): read it again and retry",
            )),
            Outcome::Missing | Outcome::Taken => Err(Error::not_found()),
        }
    }
}

/// A member name from outside: UTF-8 (JSON names are strings).
fn json_key(key: &[u8]) -> Result<&str> {
    std::str::from_utf8(key).map_err(|_| Error::invalid("key is not UTF-8"))
}
