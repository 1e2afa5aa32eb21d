//! Session ids: 32 bytes from the operating system's CSPRNG, written as 64 lowercase
//! hexadecimal characters. Every id that comes from outside is validated here before
//! it reaches a path or a key.

use crate::error::{Error, Result};
use rand::rngs::SysRng;
use rand::TryRng;
use std::fmt;

/// Length of an id in characters.
pub const ID_LEN: usize = 64;

/// A validated session id: exactly 64 characters from `[0-9a-f]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_LEN]);

impl SessionId {
    /// A fresh id from 32 bytes of the OS CSPRNG (`getrandom(2)`).
    pub fn generate() -> Result<SessionId> {
        let mut raw = [0u8; ID_LEN / 2];
        SysRng.try_fill_bytes(&mut raw).map_err(|err| {
            Error::new(
                crate::SessionError::Internal,
                format!("the OS random number generator failed: {err}"),
            )
        })?;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; ID_LEN];
        for (i, byte) in raw.iter().enumerate() {
            text[2 * i] = HEX[usize::from(byte >> 4)];
            text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Ok(SessionId(text))
    }

    /// Validates an id that came from outside (a cookie). Rejects anything that is
    /// not exactly 64 lowercase hexadecimal characters, so no id can name another
    /// path (`../x`, `/etc/passwd`) or carry a separator or a NUL.
    pub fn parse(text: &[u8]) -> Result<SessionId> {
        if text.len() > ID_LEN {
            return Err(Error::invalid(format!(
                "malformed session id: longer than {ID_LEN} characters"
            )));
        }
        if text.len() < ID_LEN {
            return Err(Error::invalid(format!(
                "malformed session id: {} characters, expected {ID_LEN} lowercase hex characters",
                text.len()
            )));
        }
        if !text.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::invalid(
                "malformed session id: only the characters 0-9 and a-f are allowed",
            ));
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(text);
        Ok(SessionId(id))
    }

    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    /// Ids are credentials: debug output shows only a prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.as_str()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_64_lowercase_hex_and_distinct() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(SessionId::parse(a.as_bytes()).unwrap(), a);
    }

    #[test]
    fn hostile_ids_are_rejected() {
        let good = "a".repeat(64);
        assert!(SessionId::parse(good.as_bytes()).is_ok());
        for bad in [
            String::new(),
            "../../etc/passwd".to_string(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            format!("{}\0{}", "a".repeat(31), "a".repeat(32)),
            format!("/{}", "a".repeat(63)),
            format!("..{}", "a".repeat(62)),
            format!("{}/{}", "a".repeat(31), "a".repeat(32)),
            "g".repeat(64),
        ] {
            let err = SessionId::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code, crate::SessionError::InvalidArgument, "{bad:?}");
        }
    }
}
