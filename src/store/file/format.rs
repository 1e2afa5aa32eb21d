//! The on-disk format of a session file. Pure functions over bytes: no I/O, so it
//! can be tested and fuzzed on its own.
//!
//! ```text
//! offset 0    descriptor slot 0 (72 bytes)
//! offset 72   descriptor slot 1 (72 bytes)
//! offset 144  data areas; each descriptor names the offset and length of its data
//! ```
//!
//! A descriptor, little endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `LSS2` |
//! | 4 | 4 | data length |
//! | 8 | 8 | `seq`: which slot is newest (grows with every descriptor written) |
//! | 16 | 8 | `version`: grows with every change of the data |
//! | 24 | 8 | absolute end, ns since 1970 |
//! | 32 | 8 | idle end, ns since 1970 (`u64::MAX`: no idle timeout) |
//! | 40 | 8 | data offset |
//! | 48 | 8 | `tag`: the first 16 hex digits of the id the file belongs to |
//! | 56 | 4 | flags (bit 0: read-only, the old id of a regenerated session) |
//! | 60 | 4 | CRC-32 of the data |
//! | 64 | 4 | reserved, zero |
//! | 68 | 4 | CRC-32 of bytes 0..68 |
//!
//! The live version is the valid descriptor with the highest `seq` whose data
//! matches its CRC. Writers write new data where it overlaps nothing the live
//! descriptor names, then the *other* slot: a writer killed at any instant leaves the
//! old version intact or the new one complete. The tag lets a reader that opened the
//! file by one name notice that a regenerate renamed it to another id.

use crate::id::SessionId;

pub const MAGIC: u32 = 0x3253_534c; // "LSS2"
pub const DESC_LEN: usize = 72;
pub const HEADER_LEN: usize = 2 * DESC_LEN;
/// `seq` and `version` stay below this; a descriptor with a larger one is invalid.
pub const MAX_COUNTER: u64 = 1 << 62;
/// Flag: the old id of a regenerated session, readable until its end, never written.
pub const FLAG_READ_ONLY: u32 = 1;

/// One version of a session, as described by a descriptor slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub len: u32,
    pub seq: u64,
    pub version: u64,
    pub absolute_ns: u64,
    pub idle_ns: u64,
    pub off: u64,
    pub tag: u64,
    pub flags: u32,
    pub data_crc: u32,
}

impl Descriptor {
    pub fn encode(&self) -> [u8; DESC_LEN] {
        let mut b = [0u8; DESC_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.len.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.version.to_le_bytes());
        b[24..32].copy_from_slice(&self.absolute_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.idle_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.off.to_le_bytes());
        b[48..56].copy_from_slice(&self.tag.to_le_bytes());
        b[56..60].copy_from_slice(&self.flags.to_le_bytes());
        b[60..64].copy_from_slice(&self.data_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..68]);
        b[68..72].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The descriptor in `b`, if its magic and checksum are right.
    pub fn decode(b: &[u8]) -> Option<Descriptor> {
        let b = b.get(..DESC_LEN)?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(v)
        };
        if u32_at(0) != MAGIC || u32_at(68) != crc32fast::hash(&b[0..68]) {
            return None;
        }
        let desc = Descriptor {
            len: u32_at(4),
            seq: u64_at(8),
            version: u64_at(16),
            absolute_ns: u64_at(24),
            idle_ns: u64_at(32),
            off: u64_at(40),
            tag: u64_at(48),
            flags: u32_at(56),
            data_crc: u32_at(60),
        };
        // Counters this large were never written (2^62 writes): such a descriptor
        // is damage, and could not grow past itself.
        (desc.off >= HEADER_LEN as u64 && desc.seq < MAX_COUNTER && desc.version < MAX_COUNTER)
            .then_some(desc)
    }

    /// The end of its data in the file.
    pub fn end(&self) -> u64 {
        self.off.saturating_add(u64::from(self.len))
    }

    /// When the session ends: the earlier of its absolute and idle ends.
    pub fn end_ns(&self) -> u64 {
        self.absolute_ns.min(self.idle_ns)
    }

    pub fn read_only(&self) -> bool {
        self.flags & FLAG_READ_ONLY != 0
    }
}

/// The tag of an id: its first 16 hex digits as a number.
pub fn tag(id: &SessionId) -> u64 {
    id.as_bytes()[..16].iter().fold(0u64, |acc, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        };
        // cargo-mutants: `^` for `|` is equivalent: the shifted acc's low 4 bits are zero.
        acc << 4 | u64::from(digit)
    })
}

/// The valid descriptors of a header, newest first: `(slot, descriptor)`.
pub fn descriptors(header: &[u8]) -> Vec<(usize, Descriptor)> {
    let mut found: Vec<(usize, Descriptor)> = (0..2)
        .filter_map(|slot| {
            let start = slot * DESC_LEN;
            header
                .get(start..start + DESC_LEN)
                .and_then(Descriptor::decode)
                .map(|d| (slot, d))
        })
        .collect();
    found.sort_by_key(|d| std::cmp::Reverse(d.1.seq));
    found
}

/// The newest version in `file` whose data checks out. With `fallback`, an older
/// version is accepted when the newest is damaged (only under the shared lock,
/// where no writer runs, so damage is real and not an update in flight).
pub fn newest_version(file: &[u8], fallback: bool) -> Option<(Descriptor, &[u8])> {
    for (_, desc) in descriptors(file) {
        let data = usize::try_from(desc.off)
            .ok()
            .zip(usize::try_from(desc.end()).ok())
            .and_then(|(start, end)| file.get(start..end));
        if let Some(data) = data {
            if crc32fast::hash(data) == desc.data_crc {
                return Some((desc, data));
            }
        }
        if !fallback {
            break;
        }
    }
    None
}

/// Where new data of `len` bytes goes so that it overlaps nothing `live` names:
/// right after the header if it fits before the live data, else after it.
pub fn free_offset(live: &Descriptor, len: u32) -> u64 {
    if HEADER_LEN as u64 + u64::from(len) <= live.off {
        HEADER_LEN as u64
    } else {
        live.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(len: u32, seq: u64, off: u64, data: &[u8]) -> Descriptor {
        Descriptor {
            len,
            seq,
            version: seq,
            absolute_ns: u64::MAX,
            idle_ns: u64::MAX,
            off,
            tag: 7,
            flags: 0,
            data_crc: crc32fast::hash(data),
        }
    }

    #[test]
    fn descriptor_round_trip_and_damage() {
        let d = desc(5, 7, HEADER_LEN as u64, b"hello");
        let mut b = d.encode();
        assert_eq!(Descriptor::decode(&b), Some(d));
        b[10] ^= 1;
        assert_eq!(Descriptor::decode(&b), None);
        assert_eq!(Descriptor::decode(&[0u8; DESC_LEN]), None);
        assert_eq!(Descriptor::decode(&[0u8; 3]), None);
    }

    #[test]
    fn tags_are_the_first_sixteen_hex_digits() {
        let id =
            SessionId::parse(format!("00000000000000ff{}", "0".repeat(48)).as_bytes()).unwrap();
        assert_eq!(tag(&id), 255);
    }

    #[test]
    fn newest_valid_version_wins_and_torn_newest_is_not_trusted() {
        let old = b"old data";
        let new = b"new!";
        let h = HEADER_LEN as u64;
        let mut file = vec![0u8; HEADER_LEN];
        file[..DESC_LEN].copy_from_slice(&desc(8, 1, h, old).encode());
        file[DESC_LEN..HEADER_LEN].copy_from_slice(&desc(4, 2, h + 8, new).encode());
        file.extend_from_slice(old);
        file.extend_from_slice(new);
        assert_eq!(newest_version(&file, false).unwrap().1, b"new!");
        // The newest data torn: without fallback nothing, with fallback the old one.
        file[HEADER_LEN + 9] ^= 0xff;
        assert!(newest_version(&file, false).is_none());
        assert_eq!(newest_version(&file, true).unwrap().1, b"old data");
    }

    #[test]
    fn counters_at_max_counter_are_damage() {
        let h = HEADER_LEN as u64;
        let below = desc(5, MAX_COUNTER - 1, h, b"hello");
        assert_eq!(Descriptor::decode(&below.encode()), Some(below));
        let seq_at_max = Descriptor {
            seq: MAX_COUNTER,
            version: 1,
            ..below
        };
        assert_eq!(Descriptor::decode(&seq_at_max.encode()), None);
        let version_at_max = Descriptor {
            seq: 1,
            version: MAX_COUNTER,
            ..below
        };
        assert_eq!(Descriptor::decode(&version_at_max.encode()), None);
    }

    #[test]
    fn read_only_is_flag_bit_zero() {
        let d = desc(0, 1, HEADER_LEN as u64, b"");
        assert!(!d.read_only());
        assert!(Descriptor {
            flags: FLAG_READ_ONLY,
            ..d
        }
        .read_only());
        assert!(Descriptor { flags: 3, ..d }.read_only());
        assert!(!Descriptor { flags: 2, ..d }.read_only());
    }

    #[test]
    fn free_offset_uses_the_gap_before_live_data_only_if_it_fits() {
        let h = HEADER_LEN as u64;
        // 10 bytes fit exactly between the header and live data at h + 10.
        let live = desc(4, 1, h + 10, b"live");
        assert_eq!(free_offset(&live, 10), h);
        assert_eq!(free_offset(&live, 11), h + 14);
    }
}
