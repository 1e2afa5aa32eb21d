//! The storage trait and one module per driver.
//!
//! A store only moves bytes under validated ids and judges expiry; limits, id
//! generation and the C boundary live above it (`crate::sessions`, `crate::ffi`).

use crate::error::Result;
use crate::id::SessionId;
use std::time::Duration;

pub mod file;
pub mod memory;
pub mod redis;

/// A place that keeps sessions. Implementations are shared by all threads.
pub trait Store: Send + Sync {
    /// Stores `data` under `id`, expiring after `lifetime`, unless a live session
    /// already has that id: then nothing is written and the result is `Ok(false)`.
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<bool>;

    /// The data of a live session, `Ok(None)` when it is missing or expired.
    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>>;

    /// Replaces the data of a live session and keeps its expiry. `Ok(false)` when
    /// the session is missing or expired; it is never brought back.
    fn update(&self, id: &SessionId, data: &[u8]) -> Result<bool>;

    /// Removes a session; removing a missing one succeeds.
    fn destroy(&self, id: &SessionId) -> Result<()>;

    /// Deletes every expired session and returns how many it deleted.
    fn remove_expired(&self) -> Result<usize>;
}
