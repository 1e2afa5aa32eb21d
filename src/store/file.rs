//! The file driver: one file per session in one directory.
//!
//! # Safety against crashes and torn reads
//! A session file holds two checksummed *descriptors* followed by data areas:
//!
//! ```text
//! offset 0   descriptor slot 0 (40 bytes)
//! offset 40  descriptor slot 1 (40 bytes)
//! offset 80  data areas; each descriptor names the offset and length of its data
//! ```
//!
//! A descriptor is `magic, len, seq, expires_ns, off, data_crc, desc_crc` (little
//! endian). The live version is the valid descriptor with the highest `seq` whose
//! data matches `data_crc`. An update, under an exclusive `flock`, writes the new
//! data where it overlaps nothing the live descriptor points to, and only then
//! overwrites the *other* descriptor slot with `seq + 1`. A writer killed at any
//! instant therefore leaves either the old version intact or the new one complete;
//! the old one is never touched. Readers take no lock: they read the file in one
//! `pread`, and if the newest version does not check out (an update ran under
//! them) they retry, and finally read under a shared lock. An update costs one open,
//! two small `pwrite`s and no inode allocation, close to an in-place write.
//!
//! A new session is written with `O_CREAT | O_EXCL` (an id collision never
//! overwrites a live session). A reader that meets it half-written finds no valid
//! descriptor, which means "not found": correct, since `session_create` has not
//! returned yet. A creator killed half-way leaves such a file, which
//! [`FileStore::remove_expired`] deletes once it is older than [`ABANDONED_AFTER`].
//!
//! # Expiry
//! The file's mtime is set to the session's expiry time, so `remove_expired` judges
//! each file with one `fstatat` and no read; only files whose mtime has passed are
//! opened, locked and checked against their descriptor before they are unlinked.
//!
//! # Security
//! The directory is created 0700 (and tightened to 0700 if it was looser) and opened
//! once with `O_NOFOLLOW`; every file operation is relative to that descriptor, on a
//! name that is a validated 64-character hex id, with `O_NOFOLLOW`. Files are 0600.

use super::Store;
use crate::error::{Error, Result};
use crate::id::{SessionId, ID_LEN};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: u32 = 0x3153_534c; // "LSS1"
const DESC_LEN: usize = 40;
const HEADER_LEN: usize = 2 * DESC_LEN;
/// Optimistic lock-free reads attempted before a reader takes the shared lock.
const OPTIMISTIC_READS: usize = 3;
/// A file without any valid version (its creator died) is deleted by
/// `remove_expired` once it is this old.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// First read of a session file; larger files take a second read.
const FIRST_READ: usize = 16 * 1024;
/// No session file is read beyond this: 4 times the largest `max_data_size`.
const MAX_FILE_READ: usize = 4 * 512 * 1024 * 1024;

/// One version of a session, as described by a descriptor slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    len: u32,
    seq: u64,
    expires_ns: u64,
    off: u64,
    data_crc: u32,
}

impl Descriptor {
    fn encode(&self) -> [u8; DESC_LEN] {
        let mut b = [0u8; DESC_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.len.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.expires_ns.to_le_bytes());
        b[24..32].copy_from_slice(&self.off.to_le_bytes());
        b[32..36].copy_from_slice(&self.data_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The descriptor in `b`, if its magic and checksum are right.
    fn decode(b: &[u8]) -> Option<Descriptor> {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if b.len() < DESC_LEN || u32_at(0) != MAGIC || u32_at(36) != crc32fast::hash(&b[0..36]) {
            return None;
        }
        let desc = Descriptor {
            len: u32_at(4),
            seq: u64_at(8),
            expires_ns: u64_at(16),
            off: u64_at(24),
            data_crc: u32_at(32),
        };
        (desc.off >= HEADER_LEN as u64).then_some(desc)
    }

    fn end(&self) -> u64 {
        self.off + u64::from(self.len)
    }
}

/// The valid descriptors of a header, newest first: `(slot, descriptor)`.
fn descriptors(header: &[u8]) -> Vec<(usize, Descriptor)> {
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

/// What a read of a whole session file found.
enum Found<'a> {
    /// The newest version, with its data.
    Version(Descriptor, &'a [u8]),
    /// No version checks out (half-written, or changing under the read).
    Nothing,
}

/// The newest version in `file` whose data checks out. With `fallback`, an older
/// version is accepted when the newest is damaged (only under the shared lock,
/// where no writer runs, so damage is real and not an update in flight).
fn newest_version(file: &[u8], fallback: bool) -> Found<'_> {
    for (_, desc) in descriptors(file) {
        let data = usize::try_from(desc.off)
            .ok()
            .zip(usize::try_from(desc.end()).ok())
            .and_then(|(start, end)| file.get(start..end));
        if let Some(data) = data {
            if crc32fast::hash(data) == desc.data_crc {
                return Found::Version(desc, data);
            }
        }
        if !fallback {
            break;
        }
    }
    Found::Nothing
}

pub struct FileStore {
    dir: OwnedFd,
    path: PathBuf,
    fsync: bool,
}

impl FileStore {
    /// Opens (creating it 0700 if needed) the session directory `path`.
    pub fn open(path: &Path, fsync: bool) -> Result<FileStore> {
        let fail = |what: &str, err: io::Error| {
            Error::io(
                &format!("session directory {}: {what}", path.display()),
                err,
            )
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|err| fail("cannot create it", err))?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::config("the session directory contains a NUL byte"))?;
        // SAFETY: c_path is a valid NUL-terminated string.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(fail(
                "cannot open it (a symlink is refused)",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let meta = File::from(dir.try_clone().map_err(|e| fail("dup", e))?)
            .metadata()
            .map_err(|e| fail("cannot stat it", e))?;
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o077 != 0 {
            // SAFETY: fchmod on a descriptor we own.
            if unsafe { libc::fchmod(dir.as_raw_fd(), 0o700) } != 0 {
                return Err(fail(
                    "it is readable by others and cannot be made 0700",
                    io::Error::last_os_error(),
                ));
            }
        }
        // SAFETY: access(2) with a valid path.
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
            return Err(fail("it is not writable", io::Error::last_os_error()));
        }
        Ok(FileStore {
            dir,
            path: path.to_path_buf(),
            fsync,
        })
    }

    /// The directory the sessions are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_session(&self, id: &SessionId, flags: libc::c_int) -> io::Result<File> {
        let mut name = [0u8; ID_LEN + 1];
        name[..ID_LEN].copy_from_slice(id.as_bytes());
        self.open_name(&name, flags, 0o600)
    }

    /// `openat` in the session directory; `name` ends with a NUL.
    fn open_name(&self, name: &[u8], flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
        debug_assert_eq!(name.last(), Some(&0));
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: name is NUL-terminated, dir is an open directory descriptor.
        let fd = syscall(|| unsafe {
            libc::openat(self.dir.as_raw_fd(), name.as_ptr().cast(), flags, mode) as isize
        })?;
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd as RawFd) })
    }

    fn sync_dir(&self) -> Result<()> {
        // SAFETY: fsync on our directory descriptor.
        if unsafe { libc::fsync(self.dir.as_raw_fd()) } != 0 {
            return Err(Error::io(
                "fsync of the session directory",
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Reads a session file into `buf`: `FIRST_READ` bytes, and if the file is longer,
    /// up to the end of the furthest data its descriptors name (bytes beyond it are
    /// stale and not read). The buffer is not zeroed first.
    fn read_file(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        pread_append(file, buf, FIRST_READ)?;
        if buf.len() < FIRST_READ {
            return Ok(()); // the whole file
        }
        let wanted = descriptors(&buf[..HEADER_LEN])
            .iter()
            .map(|(_, d)| d.end())
            .max()
            .unwrap_or(0);
        let wanted = usize::try_from(wanted)
            .unwrap_or(usize::MAX)
            .min(MAX_FILE_READ);
        if wanted > buf.len() {
            pread_append(file, buf, wanted - buf.len())?;
        }
        Ok(())
    }
}

/// Appends up to `count` bytes read from `file` at offset `buf.len()`; stops early
/// only at the end of the file.
fn pread_append(file: &File, buf: &mut Vec<u8>, count: usize) -> io::Result<()> {
    buf.reserve_exact(count);
    let end = buf.len() + count;
    while buf.len() < end {
        let (filled, want) = (buf.len(), end - buf.len());
        let spare = buf.spare_capacity_mut().as_mut_ptr();
        // SAFETY: pread writes at most `want` bytes into the spare capacity.
        let n = syscall(|| unsafe {
            libc::pread(file.as_raw_fd(), spare.cast(), want, filled as libc::off_t)
        })?;
        if n == 0 {
            break;
        }
        // SAFETY: the kernel initialised n more bytes.
        unsafe { buf.set_len(filled + n) };
    }
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs a system call again while a signal interrupts it; its non-negative
/// result, or the error it reported.
fn syscall(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let result = call();
        if result >= 0 {
            return Ok(result as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on an open descriptor.
    syscall(|| unsafe { libc::flock(file.as_raw_fd(), op) as isize }).map(|_| ())
}

/// Sets the file's mtime to the session's expiry, leaving atime alone.
fn set_mtime(fd: RawFd, expires_ns: u64) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: (expires_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (expires_ns % 1_000_000_000) as libc::c_long,
        },
    ];
    // SAFETY: times points to two valid timespecs.
    if unsafe { libc::futimens(fd, times.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes two buffers at `offset` with `pwritev`, finishing short writes.
fn write_two_at(file: &File, first: &[u8], second: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0usize;
    let total = first.len() + second.len();
    while done < total {
        let (a, b) = if done < first.len() {
            (&first[done..], second)
        } else {
            (&second[done - first.len()..], &[][..])
        };
        let iov = [
            libc::iovec {
                iov_base: a.as_ptr() as *mut libc::c_void,
                iov_len: a.len(),
            },
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            },
        ];
        let count = if b.is_empty() { 1 } else { 2 };
        let at = (offset + done as u64) as libc::off_t;
        // SAFETY: the iovecs point into live slices for the duration of the call.
        let n = syscall(|| unsafe { libc::pwritev(file.as_raw_fd(), iov.as_ptr(), count, at) })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        done += n;
    }
    Ok(())
}

impl Store for FileStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<bool> {
        let len = u32::try_from(data.len())
            .map_err(|_| Error::invalid("session data is larger than 4 GiB"))?;
        let file = match self.open_session(id, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(err) => return Err(Error::io("cannot create the session file", err)),
        };
        let lifetime_ns = u64::try_from(lifetime.as_nanos()).unwrap_or(u64::MAX);
        let expires_ns = now_ns().saturating_add(lifetime_ns);
        let desc = Descriptor {
            len,
            seq: 1,
            expires_ns,
            off: HEADER_LEN as u64,
            data_crc: crc32fast::hash(data),
        };
        let mut header = [0u8; HEADER_LEN];
        header[..DESC_LEN].copy_from_slice(&desc.encode());
        let written = write_two_at(&file, &header, data, 0)
            .and_then(|()| set_mtime(file.as_raw_fd(), expires_ns))
            .and_then(|()| if self.fsync { file.sync_all() } else { Ok(()) });
        if let Err(err) = written {
            let _ = self.destroy(id);
            return Err(Error::io("cannot write the session file", err));
        }
        drop(file);
        if self.fsync {
            self.sync_dir()?;
        }
        Ok(true)
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let file = match self.open_session(id, libc::O_RDONLY) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io("cannot open the session file", err)),
        };
        let mut buf = Vec::new();
        let read = |buf: &mut Vec<u8>| {
            FileStore::read_file(&file, buf)
                .map_err(|err| Error::io("cannot read the session file", err))
        };
        for attempt in 0..=OPTIMISTIC_READS {
            let locked = attempt == OPTIMISTIC_READS;
            if locked {
                flock(&file, libc::LOCK_SH)
                    .map_err(|err| Error::io("cannot lock the session file", err))?;
            }
            read(&mut buf)?;
            if let Found::Version(desc, data) = newest_version(&buf, locked) {
                if desc.expires_ns <= now_ns() {
                    return Ok(None);
                }
                return Ok(Some(data.to_vec()));
            }
        }
        // Under the lock and still no valid version: a creation in progress or
        // abandoned. Either way the session does not exist (yet).
        Ok(None)
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<bool> {
        let len = u32::try_from(data.len())
            .map_err(|_| Error::invalid("session data is larger than 4 GiB"))?;
        let file = match self.open_session(id, libc::O_RDWR) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(Error::io("cannot open the session file", err)),
        };
        flock(&file, libc::LOCK_EX)
            .map_err(|err| Error::io("cannot lock the session file", err))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        pread_append(&file, &mut header, HEADER_LEN)
            .map_err(|err| Error::io("cannot read the session file", err))?;
        // Under the exclusive lock a valid descriptor's data is complete: writers
        // write the data before the descriptor that names it.
        let Some(&(live_slot, live)) = descriptors(&header).first() else {
            return Ok(false);
        };
        if live.expires_ns <= now_ns() {
            return Ok(false);
        }
        let off = if HEADER_LEN as u64 + u64::from(len) <= live.off {
            HEADER_LEN as u64
        } else {
            live.end()
        };
        let desc = Descriptor {
            len,
            seq: live.seq + 1,
            expires_ns: live.expires_ns,
            off,
            data_crc: crc32fast::hash(data),
        };
        let written = file
            .write_all_at(data, off)
            .and_then(|()| file.write_all_at(&desc.encode(), ((1 - live_slot) * DESC_LEN) as u64))
            .and_then(|()| set_mtime(file.as_raw_fd(), live.expires_ns))
            .and_then(|()| if self.fsync { file.sync_all() } else { Ok(()) });
        written.map_err(|err| Error::io("cannot write the session file", err))?;
        Ok(true)
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        let mut name = [0u8; ID_LEN + 1];
        name[..ID_LEN].copy_from_slice(id.as_bytes());
        // SAFETY: name is NUL-terminated; dir is our directory descriptor.
        if unsafe { libc::unlinkat(self.dir.as_raw_fd(), name.as_ptr().cast(), 0) } != 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::NotFound {
                return Err(Error::io("cannot delete the session file", err));
            }
        } else if self.fsync {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn remove_expired(&self) -> Result<usize> {
        let now = now_ns();
        let abandoned_before = now.saturating_sub(ABANDONED_AFTER.as_nanos() as u64);
        let mut removed = 0;
        let mut header = Vec::with_capacity(HEADER_LEN);
        for name in self.list()? {
            let name = name.as_bytes_with_nul();
            let Some(mtime) = self.stat_mtime(name) else {
                continue;
            };
            if mtime > now {
                continue; // expires later: the common case costs one fstatat
            }
            // A candidate: check it under the exclusive lock, as an update could be
            // between its data write and the restoring of the mtime.
            let Ok(file) = self.open_name(name, libc::O_RDWR, 0) else {
                continue;
            };
            if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
                continue; // busy: a writer is on it, judge it next time
            }
            header.clear();
            if pread_append(&file, &mut header, HEADER_LEN).is_err() {
                continue;
            }
            match descriptors(&header).first() {
                Some(&(_, live)) if live.expires_ns > now => {
                    let _ = set_mtime(file.as_raw_fd(), live.expires_ns);
                    continue;
                }
                None if mtime > abandoned_before => continue, // creation in progress
                _ => {}
            }
            // SAFETY: name is NUL-terminated; dir is our directory descriptor.
            if unsafe { libc::unlinkat(self.dir.as_raw_fd(), name.as_ptr().cast(), 0) } == 0 {
                removed += 1;
            }
        }
        if removed > 0 && self.fsync {
            self.sync_dir()?;
        }
        Ok(removed)
    }
}

impl FileStore {
    /// Names in the directory that are session ids.
    fn list(&self) -> Result<Vec<CString>> {
        let fail = |err| Error::io("cannot list the session directory", err);
        // SAFETY: a new descriptor for the same directory, so readdir owns its own.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(fail(io::Error::last_os_error()));
        }
        // SAFETY: fd is a directory descriptor; fdopendir takes ownership of it.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            let err = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so fd is still ours to close.
            unsafe { libc::close(fd) };
            return Err(fail(err));
        }
        let mut names = Vec::new();
        loop {
            // SAFETY: stream is a valid DIR*; the entry is copied before the next call.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is a NUL-terminated array inside the entry.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if SessionId::parse(name.to_bytes()).is_ok() {
                names.push(name.to_owned());
            }
        }
        // SAFETY: stream came from fdopendir and is closed once.
        unsafe { libc::closedir(stream) };
        Ok(names)
    }

    /// The mtime in ns of a regular file in the directory, `None` for anything else.
    fn stat_mtime(&self, name: &[u8]) -> Option<u64> {
        // SAFETY: st is written by fstatat before it is read; name is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::fstatat(
                self.dir.as_raw_fd(),
                name.as_ptr().cast(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        Some((st.st_mtime as u64).saturating_mul(1_000_000_000) + st.st_mtime_nsec as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip_and_damage() {
        let d = Descriptor {
            len: 5,
            seq: 7,
            expires_ns: 99,
            off: 80,
            data_crc: 3,
        };
        let mut b = d.encode();
        assert_eq!(Descriptor::decode(&b), Some(d));
        b[10] ^= 1;
        assert_eq!(Descriptor::decode(&b), None);
        assert_eq!(Descriptor::decode(&[0u8; DESC_LEN]), None);
    }

    #[test]
    fn newest_valid_version_wins_and_torn_newest_is_not_trusted() {
        let old = b"old data";
        let new = b"new!";
        let mut file = vec![0u8; HEADER_LEN];
        let d0 = Descriptor {
            len: 8,
            seq: 1,
            expires_ns: u64::MAX,
            off: 80,
            data_crc: crc32fast::hash(old),
        };
        let d1 = Descriptor {
            len: 4,
            seq: 2,
            expires_ns: u64::MAX,
            off: 88,
            data_crc: crc32fast::hash(new),
        };
        file[..DESC_LEN].copy_from_slice(&d0.encode());
        file[DESC_LEN..HEADER_LEN].copy_from_slice(&d1.encode());
        file.extend_from_slice(old);
        file.extend_from_slice(new);
        assert!(matches!(
            newest_version(&file, false),
            Found::Version(_, b"new!")
        ));
        // The newest data torn: without fallback nothing, with fallback the old one.
        file[89] ^= 0xff;
        assert!(matches!(newest_version(&file, false), Found::Nothing));
        assert!(matches!(
            newest_version(&file, true),
            Found::Version(_, b"old data")
        ));
    }
}
