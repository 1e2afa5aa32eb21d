//! The session API in plain Rust: one configured store plus the rules every driver
//! shares (fresh ids, size and lifetime limits, what "not found" means), encryption
//! at rest, the owner index and the session cookie. The C API in `ffi.rs` is a thin
//! layer over [`Sessions`].
//!
//! # Encryption
//! With a `secret`, every write seals the data for its id ([`crate::seal`]) and
//! every read opens it; per-key changes open, change and seal again inside the
//! store's atomic read-modify-write, and regenerate seals the data for the new id
//! in the same atomic step as the move.
//!
//! # Owner index
//! With `owner_key`, a write whose data names an owner first records the id in the
//! store's index for that owner (create, update, update_if; per-key changes and
//! regenerate when the owner changes or the id does), then writes the session. A
//! crash in between leaves an entry without a session, which readers skip; never a
//! session without an entry. Entries carry a bound of `max_lifetime` +
//! [`INDEX_SLACK`] from their last write, so an entry outlives its session and the
//! bound tells when it was written. Reading an owner checks every entry against
//! its session (live, and still of that owner), and drops the entries of sessions
//! that are gone once the entry is older than [`INDEX_YOUNG`] (a younger one may
//! belong to a create still in flight).

use crate::config::{Config, OwnerConfig, StoreConfig};
use crate::cookie::CookieConfig;
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use crate::json_object;
use crate::seal::{OwnerTag, Sealer};
use crate::store::{self, nanos, now_ns, Change, Outcome, Peek, Store};
use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Duration;

/// Added to `max_lifetime` in an owner-index entry's bound, so that the entry
/// outlives its session by this much whatever the clocks of writers say.
pub const INDEX_SLACK: Duration = Duration::from_secs(60);
/// An owner-index entry whose session is missing is dropped only once it is this
/// old: a younger one may be a create between its index write and its session
/// write.
pub const INDEX_YOUNG: Duration = Duration::from_secs(600);

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
    regenerate_grace: Duration,
    sealer: Option<Sealer>,
    cookie: CookieConfig,
    owner: Option<OwnerConfig>,
}

/// A live session found through the owner index.
struct Owned {
    id: SessionId,
    absolute_ns: u64,
}

impl Sessions {
    /// Opens the default store of a configuration.
    pub fn open(config: &Config) -> Result<Sessions> {
        Sessions::open_store(config.store(None)?)
    }

    /// Opens one store.
    pub fn open_store(config: &StoreConfig) -> Result<Sessions> {
        let sealer = match config.secrets.split_first() {
            Some((secret, fallbacks)) => Some(Sealer::new(secret, fallbacks)?),
            None => None,
        };
        let store = store::open(&config.driver, config.expiry)?;
        Ok(Sessions {
            name: config.name.clone(),
            store,
            lifetime: config.lifetime,
            max_lifetime: config.max_lifetime,
            max_data_size: config.max_data_size,
            regenerate_grace: config.expiry.regenerate_grace,
            sealer,
            cookie: config.cookie.clone(),
            owner: config.owner.clone(),
        })
    }

    /// The name of the store in its configuration.
    pub fn name(&self) -> &str {
        &self.name
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
        let owner = self.owner_of(data);
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate()?;
            if let Some(owner) = &owner {
                self.index(owner, &id)?;
            }
            let sealed = self.seal(&id, data)?;
            match self.store.create(&id, &sealed, lifetime)? {
                Outcome::Taken => continue,
                outcome => {
                    self.written(outcome)?;
                    self.limit_owner(owner.as_deref(), &id)?;
                    return Ok(id);
                }
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
        let stored = self.store.get(&id)?.ok_or_else(Error::not_found)?;
        self.unseal(&id, stored)
    }

    /// Replaces the data of a live session, keeping its absolute end.
    pub fn update(&self, id: &[u8], data: &[u8]) -> Result<()> {
        self.replace(id, data, None)
    }

    /// The data of a live session without moving its idle end: a look by an
    /// operator (`sessionctl get`), not a use of the session.
    pub fn peek(&self, id: &[u8]) -> Result<Vec<u8>> {
        let id = SessionId::parse(id)?;
        let (stored, _) = self.store.peek(&id)?.ok_or_else(Error::not_found)?;
        self.unseal(&id, stored)
    }

    /// The data of a live session and its version.
    pub fn get_versioned(&self, id: &[u8]) -> Result<(Vec<u8>, u64)> {
        let id = SessionId::parse(id)?;
        let (stored, version) = self
            .store
            .get_versioned(&id)?
            .ok_or_else(Error::not_found)?;
        Ok((self.unseal(&id, stored)?, version))
    }

    /// Replaces the data only while the version is `version`; `Conflict` otherwise.
    pub fn update_if(&self, id: &[u8], data: &[u8], version: u64) -> Result<()> {
        self.replace(id, data, Some(version))
    }

    /// update (`version` `None`) and update_if: the data indexed under its owner
    /// first, sealed, written, then the owner's limit applied.
    fn replace(&self, id: &[u8], data: &[u8], version: Option<u64>) -> Result<()> {
        let id = SessionId::parse(id)?;
        self.check_size(data)?;
        let owner = self.owner_of(data);
        if let Some(owner) = &owner {
            self.index(owner, &id)?;
        }
        let sealed = self.seal(&id, data)?;
        let outcome = match version {
            None => self.store.update(&id, &sealed)?,
            Some(version) => self.store.update_if(&id, &sealed, version)?,
        };
        // An update of an id that names no session (a forged cookie) takes back
        // its entry at once, so forged ids do not pile up in the index.
        if let (Outcome::Missing, Some(owner)) = (outcome, &owner) {
            let _ = self.forget(owner, std::slice::from_ref(&id));
        }
        self.written(outcome)?;
        self.limit_owner(owner.as_deref(), &id)
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

    /// One atomic read-modify-write of the data as the caller sees it (opened
    /// and sealed again around `change` with a secret; indexed under its owner
    /// when `change` gives it another one).
    fn change(&self, id: &[u8], change: &mut Change) -> Result<()> {
        let id = SessionId::parse(id)?;
        let mut new_owner = None;
        let mut stored_change = |stored: &[u8]| -> Result<Option<Vec<u8>>> {
            new_owner = None;
            let plain = self.unseal_ref(&id, stored)?;
            let Some(new) = change(&plain)? else {
                return Ok(None);
            };
            if self.owner.is_some() {
                if let Some(owner) = self.owner_of(&new) {
                    if self.owner_of(&plain).as_ref() != Some(&owner) {
                        self.index(&owner, &id)?;
                        new_owner = Some(owner);
                    }
                }
            }
            Ok(Some(self.seal(&id, &new)?.into_owned()))
        };
        let outcome = self.store.modify(&id, &mut stored_change)?;
        self.written(outcome)?;
        self.limit_owner(new_owner.as_deref(), &id)
    }

    /// Removes a session; a session that is already gone is not an error. With
    /// an owner index, its entry goes too (after the session: a crash in between
    /// leaves only a stale entry).
    pub fn destroy(&self, id: &[u8]) -> Result<()> {
        let id = SessionId::parse(id)?;
        if self.owner.is_none() {
            return self.store.destroy(&id);
        }
        let owner = match self.store.take(&id) {
            Ok(Some(stored)) => self
                .unseal_ref(&id, &stored)
                .ok()
                .and_then(|plain| self.owner_of(&plain)),
            Ok(None) => None,
            // A damaged or planted record (or, on Redis, a key of another type)
            // still goes. cargo-mutants: `true` here sends every other error of
            // take (an unavailable directory or server) to a destroy that meets
            // it again.
            Err(err) if matches!(err.code, SessionError::Corrupt | SessionError::NotFound) => {
                self.store.destroy(&id)?;
                None
            }
            Err(err) => return Err(err),
        };
        match owner {
            Some(owner) => self.forget(&owner, std::slice::from_ref(&id)),
            None => Ok(()),
        }
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

    /// [`Sessions::ttl`] in whole seconds, rounded up: a live session never
    /// reports 0.
    pub fn ttl_secs(&self, id: &[u8]) -> Result<u64> {
        let left = self.ttl(id)?;
        Ok((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1))
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

    /// The ids of the live sessions, sorted (for operators: O(sessions)).
    pub fn ids(&self) -> Result<Vec<SessionId>> {
        let mut ids = self.store.ids()?;
        ids.sort_unstable_by_key(|id| *id.as_bytes());
        ids.dedup();
        Ok(ids)
    }

    /// Gives a live session a fresh id (same data, same absolute end, idle window
    /// restarted); the old id is gone, or read-only during `regenerate_grace`.
    pub fn regenerate(&self, id: &[u8]) -> Result<SessionId> {
        let old = SessionId::parse(id)?;
        for _ in 0..CREATE_ATTEMPTS {
            let new = SessionId::generate()?;
            let mut owner = None;
            // With a secret or an owner index the data is looked at inside the
            // move: sealed for the new id, and the new id indexed first.
            let mut rewrite = |stored: &[u8]| -> Result<Option<Vec<u8>>> {
                let plain = self.unseal_ref(&old, stored)?;
                owner = self.owner_of(&plain);
                if let Some(owner) = &owner {
                    self.index(owner, &new)?;
                }
                match &self.sealer {
                    Some(sealer) => sealer.seal(&new, &plain).map(Some),
                    None => Ok(None),
                }
            };
            let rewrite: Option<&mut Change> = if self.sealer.is_some() || self.owner.is_some() {
                Some(&mut rewrite)
            } else {
                None
            };
            match self.store.regenerate(&old, &new, rewrite)? {
                Outcome::Taken => continue,
                outcome => self.written(outcome)?,
            }
            // Without a grace the old id is gone: so is its entry (best effort:
            // the move has happened; a stale entry is skipped by readers anyway).
            if let (Some(owner), true) = (owner, self.regenerate_grace.is_zero()) {
                let _ = self.forget(&owner, std::slice::from_ref(&old));
            }
            return Ok(new);
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

    /// Ends every live session of `owner`; returns how many it ended.
    pub fn destroy_owner(&self, owner: &[u8]) -> Result<u64> {
        let ids: Vec<SessionId> = self.owned(owner)?.into_iter().map(|s| s.id).collect();
        self.store.destroy_many(&ids)?;
        self.forget(json_key(owner)?, &ids)?;
        Ok(ids.len() as u64)
    }

    /// The ids of the live sessions of `owner`, the one that ends first first.
    pub fn list_owner(&self, owner: &[u8]) -> Result<Vec<SessionId>> {
        Ok(self.owned(owner)?.into_iter().map(|s| s.id).collect())
    }

    /// How many live sessions `owner` has.
    pub fn count_owner(&self, owner: &[u8]) -> Result<u64> {
        Ok(self.owned(owner)?.len() as u64)
    }

    /// The `Set-Cookie` value that gives the browser session `id`.
    pub fn cookie_header(&self, id: &[u8]) -> Result<String> {
        let id = SessionId::parse(id)?;
        let now_secs = now_ns() / 1_000_000_000;
        Ok(self.cookie.set_header(&id, self.lifetime, now_secs))
    }

    /// The `Set-Cookie` value that deletes the session cookie.
    pub fn clear_cookie_header(&self) -> String {
        self.cookie.clear_header()
    }

    /// The session id in a request's `Cookie:` header value.
    pub fn id_from_cookie_header(&self, header: &[u8]) -> Result<SessionId> {
        self.cookie.find_id(header)
    }
}

/// Encryption and the owner index.
impl Sessions {
    /// The bytes stored for `plain` under `id`: sealed when there is a secret.
    fn seal<'a>(&self, id: &SessionId, plain: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match &self.sealer {
            Some(sealer) => sealer.seal(id, plain).map(Cow::Owned),
            None => Ok(Cow::Borrowed(plain)),
        }
    }

    /// The data of the bytes stored under `id`.
    fn unseal(&self, id: &SessionId, stored: Vec<u8>) -> Result<Vec<u8>> {
        match &self.sealer {
            Some(sealer) => sealer.open(id, &stored),
            None => Ok(stored),
        }
    }

    fn unseal_ref<'a>(&self, id: &SessionId, stored: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match &self.sealer {
            Some(sealer) => sealer.open(id, stored).map(Cow::Owned),
            None => Ok(Cow::Borrowed(stored)),
        }
    }

    /// The owner `data` names: its `owner_key` member, a string as it is or a
    /// number as its JSON text. `None` without an owner index, or when the data
    /// is not an object, lacks the member, or holds another type or "".
    fn owner_of(&self, data: &[u8]) -> Option<String> {
        let key = &self.owner.as_ref()?.key;
        let value = json_object::get(data, key).ok()??;
        match value.first()? {
            b'"' => serde_json::from_slice::<String>(value)
                .ok()
                .filter(|s| !s.is_empty()),
            b'-' | b'0'..=b'9' => std::str::from_utf8(value).ok().map(str::to_string),
            _ => None,
        }
    }

    /// The tags `owner` may be indexed under: the current secret's first (new
    /// entries), then each fallback's (entries written before a rotation).
    fn owner_tags(&self, owner: &str) -> Vec<OwnerTag> {
        match &self.sealer {
            Some(sealer) => sealer.owner_tags(owner),
            None => vec![OwnerTag::plain(owner)],
        }
    }

    fn index_span(&self) -> u64 {
        nanos(self.max_lifetime + INDEX_SLACK)
    }

    /// Records `id` under `owner` before a write that makes it the owner's.
    fn index(&self, owner: &str, id: &SessionId) -> Result<()> {
        let tag = match &self.sealer {
            Some(sealer) => sealer.owner_tag(owner),
            None => OwnerTag::plain(owner),
        };
        let bound = now_ns().saturating_add(self.index_span());
        self.store.index_add(&tag, id, bound)
    }

    /// Drops the entries of `ids` (sessions that are gone) under every tag of
    /// `owner`.
    fn forget(&self, owner: &str, ids: &[SessionId]) -> Result<()> {
        for tag in self.owner_tags(owner) {
            self.store.index_remove(&tag, ids)?;
        }
        Ok(())
    }

    /// The live sessions of `owner`, checked one by one against the index (the
    /// one that ends first first). Drops the entries of sessions that are gone.
    fn owned(&self, owner: &[u8]) -> Result<Vec<Owned>> {
        if self.owner.is_none() {
            return Err(Error::config(format!(
                "session store {:?} has no owner index: set \"owner_key\" in its configuration",
                self.name
            )));
        }
        let owner = json_key(owner)?;
        if owner.is_empty() {
            return Err(Error::invalid("owner is empty"));
        }
        let now = now_ns();
        // An entry bound before this was written more than INDEX_YOUNG ago.
        let settled = (now + self.index_span()).saturating_sub(nanos(INDEX_YOUNG));
        let mut owned: Vec<Owned> = Vec::new();
        let mut seen: HashSet<SessionId> = HashSet::new();
        for tag in self.owner_tags(owner) {
            let entries = self.store.index_list(&tag)?;
            let ids: Vec<SessionId> = entries.iter().map(|(id, _)| *id).collect();
            let found = self.store.peek_many(&ids)?;
            let mut gone = Vec::new();
            for ((id, bound), found) in entries.into_iter().zip(found) {
                let (stored, absolute_ns) = match found {
                    Peek::Live(found) => found,
                    Peek::Missing => {
                        if bound <= settled {
                            gone.push(id);
                        }
                        continue;
                    }
                    // Damaged (a file that does not check out): passed over.
                    Peek::Damaged => continue,
                };
                // A session that does not open (an old secret, damage) or names
                // another owner now is passed over; its entry stays until its bound.
                let Ok(plain) = self.unseal_ref(&id, &stored) else {
                    continue;
                };
                let is_owner = self.owner_of(&plain).as_deref() == Some(owner);
                if is_owner && seen.insert(id) {
                    owned.push(Owned { id, absolute_ns });
                }
            }
            if !gone.is_empty() {
                self.store.index_remove(&tag, &gone)?;
            }
        }
        owned.sort_by_key(|o| (o.absolute_ns, *o.id.as_bytes()));
        Ok(owned)
    }

    /// After a write that made `new` a session of `owner` (create, or a write that
    /// set or changed the owner): ends the owner's sessions beyond
    /// `max_sessions_per_owner`, those that end first first. Only sessions that
    /// sort before `new` go, so of two logins racing each other the later one
    /// always stays.
    ///
    /// The write it follows has happened: a failure here (the store went away
    /// meanwhile) does not undo or fail it. The limit is then applied by the
    /// owner's next such write.
    fn limit_owner(&self, owner: Option<&str>, new: &SessionId) -> Result<()> {
        let (Some(owner), Some(max)) = (owner, self.owner.as_ref().and_then(|o| o.max_sessions))
        else {
            return Ok(());
        };
        let Ok(owned) = self.owned(owner.as_bytes()) else {
            return Ok(());
        };
        let Some(position) = owned.iter().position(|o| o.id == *new) else {
            return Ok(());
        };
        let excess = (owned.len() as u64).saturating_sub(max) as usize;
        let oldest: Vec<SessionId> = owned[..position]
            .iter()
            .take(excess)
            .map(|o| o.id)
            .collect();
        if self.store.destroy_many(&oldest).is_ok() {
            let _ = self.forget(owner, &oldest);
        }
        Ok(())
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
