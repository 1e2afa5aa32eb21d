//! libsession: server-side HTTP sessions for C web servers.
//!
//! The C API (`include/session.h`) lives in [`ffi`]; it is a thin layer over the
//! plain Rust core: [`config`] parses `config.json`, [`id`] makes and validates
//! session ids, [`store`] holds the storage trait with one module per driver, and
//! [`sessions`] ties a store to the shared rules.

pub mod config;
pub mod cookie;
pub mod error;
pub mod ffi;
pub mod id;
pub mod json_object;
pub mod seal;
pub mod sessions;
pub mod store;

mod global;

pub use config::{Config, StoreConfig};
pub use error::{Error, Result, SessionError};
pub use id::SessionId;
pub use sessions::Sessions;
pub use store::{DriverConfig, Outcome, Store};
