//! The global configuration behind the C API's functions without a handle, and its
//! lifecycle.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sessions::Sessions;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// Environment variable naming the config file used when no init call was made.
pub const CONFIG_ENV: &str = "SESSION_CONFIG";

enum State {
    /// Nothing applied yet (or shut down): the first call configures implicitly.
    Unset,
    /// Never configured, and the last explicit init failed: calls report why,
    /// rather than falling back to the embedded default.
    Failed(Error),
    Ready(Registry),
}

/// The stores of the global configuration. Calls clone the `Arc` of their store and
/// release the lock at once: init and shutdown never wait for calls in flight, and
/// a store lives on while a call or a handle still holds it.
struct Registry {
    stores: Vec<Arc<Sessions>>,
    default: usize,
}

// The global configuration always has a default store: `Registry::open` refuses a
// map of several stores without one named "default".

static STATE: RwLock<State> = RwLock::new(State::Unset);

/// Held by `init` while it opens stores, and by the implicit configuration: a call
/// that finds nothing configured while an init is opening its stores waits for that
/// init's outcome instead of configuring the embedded default behind its back.
static INIT: Mutex<()> = Mutex::new(());

/// The store `name` of the global configuration (`None`: the default store),
/// configuring from `SESSION_CONFIG` or the embedded default first if nothing was.
pub fn store(name: Option<&str>) -> Result<Arc<Sessions>> {
    {
        let state = STATE.read();
        match &*state {
            State::Ready(registry) => return registry.get(name),
            State::Failed(err) => return Err(not_configured(err)),
            State::Unset => {}
        }
    }
    let _init = INIT.lock();
    let mut state = STATE.write();
    if let State::Unset = &*state {
        *state = State::Ready(Registry::open(&implicit_config()?)?);
    }
    match &*state {
        State::Ready(registry) => registry.get(name),
        State::Failed(err) => Err(not_configured(err)),
        State::Unset => unreachable!("configured above"),
    }
}

/// The default store of the global configuration.
pub fn default_store() -> Result<Arc<Sessions>> {
    store(None)
}

fn not_configured(err: &Error) -> Error {
    Error::config(format!(
        "libsession is not configured: session_init failed: {}",
        err.message
    ))
}

impl Registry {
    fn open(config: &Config) -> Result<Registry> {
        let default_name = config.default_store()?.name.clone();
        let stores = config
            .stores
            .iter()
            .map(|store| Sessions::open_store(store).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let default = stores
            .iter()
            .position(|s| s.name() == default_name)
            .unwrap_or(0);
        Ok(Registry { stores, default })
    }

    fn get(&self, name: Option<&str>) -> Result<Arc<Sessions>> {
        match name {
            None => Ok(self.stores[self.default].clone()),
            Some(name) => self
                .stores
                .iter()
                .find(|s| s.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let names: Vec<&str> = self.stores.iter().map(|s| s.name()).collect();
                    Error::config(format!(
                        "no session store named {name:?}; the configuration has: {}",
                        names.join(", ")
                    ))
                }),
        }
    }
}

fn implicit_config() -> Result<Config> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => Config::from_file(path.as_ref()),
        _ => Ok(Config::embedded_default()),
    }
}

/// Replaces the configuration. Every store is opened before the old ones are let
/// go, so a failure leaves a working configuration in place; when there was none,
/// later calls report this failure instead of configuring implicitly.
pub fn init(config: Result<Config>) -> Result<()> {
    let _init = INIT.lock();
    let opened = config.and_then(|config| Registry::open(&config));
    let mut state = STATE.write();
    match opened {
        Ok(registry) => {
            let old = std::mem::replace(&mut *state, State::Ready(registry));
            drop(state);
            drop(old);
            Ok(())
        }
        Err(err) => {
            if !matches!(&*state, State::Ready(_)) {
                *state = State::Failed(err.clone());
            }
            Err(err)
        }
    }
}

/// Lets go of the global stores (each is closed once no handle holds it); the next
/// call configures again.
pub fn shutdown() {
    let old = std::mem::replace(&mut *STATE.write(), State::Unset);
    drop(old);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SESSION_CONFIG` set to the empty string counts as not set: the implicit
    /// configuration is the embedded default (files in `./sessions`), not a read
    /// of a file named "". A value that is not empty names the file to read.
    #[test]
    fn an_empty_session_config_means_the_embedded_default() {
        // No other unit test reads or sets SESSION_CONFIG.
        let outside = std::env::var_os(CONFIG_ENV);
        std::env::set_var(CONFIG_ENV, "");
        let empty = implicit_config();
        std::env::set_var(CONFIG_ENV, "/nonexistent/libsession-config.json");
        let named = implicit_config();
        match outside {
            Some(value) => std::env::set_var(CONFIG_ENV, value),
            None => std::env::remove_var(CONFIG_ENV),
        }
        assert_eq!(empty.unwrap(), Config::embedded_default());
        let message = named.unwrap_err().message;
        assert!(
            message.contains("cannot read config file /nonexistent/libsession-config.json"),
            "{message}"
        );
    }
}
