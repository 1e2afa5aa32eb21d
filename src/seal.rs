//! Encryption at rest: session data sealed with AES-256-GCM (RustCrypto's
//! `aes-gcm`), under keys derived from the configured secrets with HKDF-SHA256 once,
//! when the store opens.
//!
//! A sealed record is
//!
//! ```text
//! 0xA1 | key id (4 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//! ```
//!
//! The key id (also derived from the secret) names the key that sealed the record,
//! so a read tries exactly one key. The associated data is the first five bytes and
//! the session id: a record copied under another id, or with its key id changed,
//! does not open. Every seal draws a fresh nonce from the OS CSPRNG: random 96-bit
//! nonces under one key stay safe for about 2^32 seals (NIST SP 800-38D), so a
//! secret must be rotated before it has sealed that many (the README says how).

use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::rngs::SysRng;
use rand::TryRng;
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// The first byte of a sealed record (format 1).
const FORMAT: u8 = 0xA1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes a sealed record adds to the data.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The HKDF salt; the info strings below tell the derived keys apart.
const SALT: &[u8] = b"libsession";
const INFO_DATA_KEY: &[u8] = b"libsession v1 session data AES-256-GCM key";
const INFO_KEY_ID: &[u8] = b"libsession v1 key id";
const INFO_OWNER_KEY: &[u8] = b"libsession v1 owner index HMAC-SHA256 key";

/// A secret from the configuration. Its bytes are wiped when it is dropped and
/// never shown: `Debug` prints `Secret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret of at least [`MIN_SECRET_LEN`] bytes; `what` names it in the error.
    pub fn new(bytes: &[u8], what: &str) -> Result<Secret> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(Error::config(format!(
                "{what} is {} bytes long: a secret must have at least {MIN_SECRET_LEN} bytes (for example 48 random bytes in base64: `openssl rand -base64 48`)",
                bytes.len()
            )));
        }
        Ok(Secret(Zeroizing::new(bytes.to_vec())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One secret's derived keys.
struct Key {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
    owner: Zeroizing<[u8; 32]>,
}

impl Key {
    fn derive(secret: &Secret) -> Key {
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), &secret.0);
        let mut data_key = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; KEY_ID_LEN];
        let mut owner = Zeroizing::new([0u8; 32]);
        // Lengths far below HKDF's limit of 255 * 32 bytes: expand cannot fail.
        for (info, out) in [
            (INFO_DATA_KEY, &mut data_key[..]),
            (INFO_KEY_ID, &mut id[..]),
            (INFO_OWNER_KEY, &mut owner[..]),
        ] {
            hkdf.expand(info, out)
                .expect("HKDF-SHA256 expands up to 8160 bytes");
        }
        let cipher = Aes256Gcm::new_from_slice(&data_key[..]).expect("a 32-byte AES-256 key");
        Key { id, cipher, owner }
    }
}

/// The keys of a store with a `secret`: the first seals, all of them open.
pub struct Sealer {
    keys: Vec<Key>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

impl Sealer {
    /// Derives the keys of `secret` (which seals) and `fallbacks` (which only open).
    pub fn new(secret: &Secret, fallbacks: &[Secret]) -> Result<Sealer> {
        let keys: Vec<Key> = std::iter::once(secret)
            .chain(fallbacks)
            .map(Key::derive)
            .collect();
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id == key.id) {
                return Err(Error::config(
                    "secret_fallbacks repeats a secret (or two secrets share a key id): list each secret once",
                ));
            }
        }
        Ok(Sealer { keys })
    }

    /// `plain` sealed for session `id` with the current secret.
    pub fn seal(&self, id: &SessionId, plain: &[u8]) -> Result<Vec<u8>> {
        let key = &self.keys[0];
        let mut record = Vec::with_capacity(plain.len() + OVERHEAD);
        record.push(FORMAT);
        record.extend_from_slice(&key.id);
        let mut nonce = [0u8; NONCE_LEN];
        SysRng.try_fill_bytes(&mut nonce).map_err(|err| {
            Error::new(
                SessionError::Internal,
                format!("the OS random number generator failed: {err}"),
            )
        })?;
        record.extend_from_slice(&nonce);
        let aad = associated_data(&record[..1 + KEY_ID_LEN], id);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::new(SessionError::Internal, "AES-256-GCM encryption failed"))?;
        record.extend_from_slice(&sealed);
        Ok(record)
    }

    /// The data of a record sealed for session `id`: `Corrupt` when it is not a
    /// sealed record, was sealed with a secret that is not configured, or does not
    /// authenticate (changed, truncated, or moved from another id).
    pub fn open(&self, id: &SessionId, record: &[u8]) -> Result<Vec<u8>> {
        if record.len() < OVERHEAD || record[0] != FORMAT {
            return Err(corrupt(
                "session data is not an encrypted record (stored without a secret, truncated or damaged)",
            ));
        }
        let key_id = &record[1..1 + KEY_ID_LEN];
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or_else(|| {
            corrupt("session data was encrypted with a secret that is neither secret nor one of secret_fallbacks")
        })?;
        let aad = associated_data(&record[..1 + KEY_ID_LEN], id);
        key.cipher
            .decrypt(
                Nonce::from_slice(&record[1 + KEY_ID_LEN..HEADER_LEN]),
                Payload {
                    msg: &record[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                corrupt("session data does not authenticate: it was changed, truncated or copied from another session id")
            })
    }

    /// The owner-index tag new entries of `owner` get (the current secret's).
    pub fn owner_tag(&self, owner: &str) -> OwnerTag {
        OwnerTag::keyed(&self.keys[0].owner[..], owner)
    }

    /// The owner-index tags of `owner` under every key, the current one first.
    pub fn owner_tags(&self, owner: &str) -> Vec<OwnerTag> {
        self.keys
            .iter()
            .map(|k| OwnerTag::keyed(&k.owner[..], owner))
            .collect()
    }
}

fn associated_data(header: &[u8], id: &SessionId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + id.as_bytes().len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn corrupt(message: &str) -> Error {
    Error::new(SessionError::Corrupt, message)
}

/// The name of an owner in the owner index: 32 lowercase hex digits of
/// HMAC-SHA256 of the owner, keyed from the secret when the store has one, so that
/// an index entry (a file name, a Redis key) does not show who owns it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerTag([u8; 32]);

impl OwnerTag {
    /// The tag of `owner` in a store without a secret.
    pub fn plain(owner: &str) -> OwnerTag {
        OwnerTag::keyed(b"libsession owner index", owner)
    }

    fn keyed(key: &[u8], owner: &str) -> OwnerTag {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(owner.as_bytes());
        let digest = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 32];
        for (i, byte) in digest[..16].iter().enumerate() {
            text[2 * i] = HEX[usize::from(byte >> 4)];
            text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        OwnerTag(text)
    }

    /// The tag as text (hex digits only: safe in a file name or a Redis key).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }
}

impl fmt::Debug for OwnerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerTag({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::new(text.as_bytes(), "secret").unwrap()
    }

    const A: &str = "an example secret of more than 32 bytes, A";
    const B: &str = "an example secret of more than 32 bytes, B";

    #[test]
    fn seals_and_opens_under_the_same_id_only() {
        let sealer = Sealer::new(&secret(A), &[]).unwrap();
        let id = SessionId::generate().unwrap();
        let other = SessionId::generate().unwrap();
        let record = sealer.seal(&id, b"{\"user\":42}").unwrap();
        assert_eq!(record.len(), 11 + OVERHEAD);
        assert!(!record.windows(4).any(|w| w == b"user"));
        assert_eq!(sealer.open(&id, &record).unwrap(), b"{\"user\":42}");
        assert_eq!(
            sealer.open(&other, &record).unwrap_err().code,
            SessionError::Corrupt
        );
        // A fresh nonce per seal.
        assert_ne!(
            sealer.seal(&id, b"x").unwrap(),
            sealer.seal(&id, b"x").unwrap()
        );
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_corrupt() {
        let sealer = Sealer::new(&secret(A), &[]).unwrap();
        let id = SessionId::generate().unwrap();
        let record = sealer.seal(&id, b"some session data").unwrap();
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                sealer.open(&id, &bad).unwrap_err().code,
                SessionError::Corrupt
            );
            assert_eq!(
                sealer.open(&id, &record[..i]).unwrap_err().code,
                SessionError::Corrupt
            );
        }
    }

    #[test]
    fn fallbacks_open_and_the_current_secret_seals() {
        let old = Sealer::new(&secret(A), &[]).unwrap();
        let rotated = Sealer::new(&secret(B), &[secret(A)]).unwrap();
        let new_only = Sealer::new(&secret(B), &[]).unwrap();
        let id = SessionId::generate().unwrap();
        let record = old.seal(&id, b"data").unwrap();
        assert_eq!(rotated.open(&id, &record).unwrap(), b"data");
        assert_eq!(
            new_only.open(&id, &record).unwrap_err().code,
            SessionError::Corrupt
        );
        let resealed = rotated.seal(&id, b"data").unwrap();
        assert_eq!(new_only.open(&id, &resealed).unwrap(), b"data");
        assert_eq!(
            old.open(&id, &resealed).unwrap_err().code,
            SessionError::Corrupt
        );
    }

    #[test]
    fn short_and_repeated_secrets_are_rejected_without_showing_them() {
        let err = Secret::new(b"too short", "sessions.secret").unwrap_err();
        assert_eq!(err.code, SessionError::Config);
        assert!(!err.message.contains("too short"));
        assert!(Sealer::new(&secret(A), &[secret(A)]).is_err());
        assert_eq!(format!("{:?}", secret(A)), "Secret(..)");
    }

    #[test]
    fn empty_data_seals_to_a_record_of_exactly_the_overhead_and_opens() {
        let sealer = Sealer::new(&secret(A), &[]).unwrap();
        let id = SessionId::generate().unwrap();
        let record = sealer.seal(&id, b"").unwrap();
        assert_eq!(record.len(), OVERHEAD);
        assert_eq!(sealer.open(&id, &record).unwrap(), b"");
        assert_eq!(
            sealer.open(&id, &record[..OVERHEAD - 1]).unwrap_err().code,
            SessionError::Corrupt
        );
    }

    #[test]
    fn a_plain_owner_tag_is_the_hex_of_the_first_half_of_its_hmac() {
        // HMAC-SHA256(key = "libsession owner index", message = "42"), first 16
        // bytes in lowercase hex, as computed independently (Python's hmac module).
        let tag = OwnerTag::plain("42");
        assert_eq!(tag.as_str(), "a6f67c5c0e7fe60af71cf9f403fcfdb4");
        assert_eq!(
            format!("{tag:?}"),
            "OwnerTag(a6f67c5c0e7fe60af71cf9f403fcfdb4)"
        );
    }

    #[test]
    fn a_sealer_shows_only_how_many_keys_it_has() {
        let sealer = Sealer::new(&secret(A), &[secret(B)]).unwrap();
        assert_eq!(format!("{sealer:?}"), "Sealer(2 keys)");
    }

    #[test]
    fn owner_tags_depend_on_the_key() {
        let a = Sealer::new(&secret(A), &[secret(B)]).unwrap();
        let tags = a.owner_tags("42");
        assert_eq!(tags.len(), 2);
        assert_ne!(tags[0], tags[1]);
        assert_ne!(tags[0], OwnerTag::plain("42"));
        assert_eq!(OwnerTag::plain("42"), OwnerTag::plain("42"));
        assert_ne!(OwnerTag::plain("42"), OwnerTag::plain("43"));
        assert_eq!(tags[0].as_str().len(), 32);
    }
}
