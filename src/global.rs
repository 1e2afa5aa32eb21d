//! The one process-wide [`Sessions`] behind the C API, and its lifecycle.

use crate::config::Config;
use crate::error::Result;
use crate::sessions::Sessions;
use parking_lot::{RwLock, RwLockWriteGuard};

/// Calls hold the read lock while they run, so `session_init` and
/// `session_shutdown` wait for calls in flight and never free a store under them.
static STATE: RwLock<Option<Sessions>> = RwLock::new(None);

/// Environment variable naming the config file used when no init call was made.
pub const CONFIG_ENV: &str = "SESSION_CONFIG";

/// Runs `f` on the configured sessions, initialising them first from
/// `SESSION_CONFIG` or the embedded default if nothing was configured.
pub fn with<R>(f: impl FnOnce(&Sessions) -> Result<R>) -> Result<R> {
    {
        let state = STATE.read();
        if let Some(sessions) = state.as_ref() {
            return f(sessions);
        }
    }
    let mut state = STATE.write();
    if state.is_none() {
        *state = Some(Sessions::open(&implicit_config()?)?);
    }
    let state = RwLockWriteGuard::downgrade(state);
    match state.as_ref() {
        Some(sessions) => f(sessions),
        None => unreachable!("initialised above"),
    }
}

fn implicit_config() -> Result<Config> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => Config::from_file(path.as_ref()),
        _ => Ok(Config::embedded_default()),
    }
}

/// Replaces the configuration. The new store is opened completely before the old
/// one is closed, so a failure leaves the previous configuration in place.
pub fn init(config: &Config) -> Result<()> {
    let sessions = Sessions::open(config)?;
    let old = STATE.write().replace(sessions);
    drop(old);
    Ok(())
}

/// Closes the store and frees it; the next call initialises again.
pub fn shutdown() {
    let old = STATE.write().take();
    drop(old);
}
