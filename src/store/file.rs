//! The file driver: one file per session in `ROOT/sessions/`, named by its id.
//!
//! The on-disk format (two checksummed descriptors, then data areas) is in
//! [`format`]; every system call is in [`sys`]. This file holds the store logic.
//!
//! # Crashes and torn reads
//! Writers (update, touch, regenerate) take an exclusive `flock` (waiting at most
//! `lock_timeout_ms`), write new data where it overlaps nothing the live descriptor
//! names, then the other descriptor slot. A writer killed at any instant leaves the
//! old version or the new one, never a mix. Readers take no lock: they read the file
//! in one `pread` and retry if the newest version does not check out (an update ran
//! under them), finally under a shared lock. A new session is written with
//! `O_CREAT | O_EXCL` under an exclusive lock, so that shared lock waits for it; a
//! reader that opens it before the lock finds no descriptor, which means "not
//! found" (create has not returned yet). Under the lock, a file whose data does not
//! check out in any version is damaged: `SESSION_ERROR_CORRUPT`.
//!
//! # Expiry
//! Each descriptor holds the absolute end and the idle end. The file's mtime is set
//! to the earlier of both, and its ctime is then the time of that write, so
//! `remove_expired` and `count` judge a file by one `fstatat`: an mtime in the past
//! and later than the ctime is an end the driver set, and the file goes with one
//! `unlink`. Anything else whose mtime has passed (a write in flight, a creator that
//! died) is checked under the lock first.
//!
//! # Regenerate
//! Under the old file's exclusive lock the driver writes a descriptor tagged with
//! the new id, then renames the file to the new id with `renameat2(RENAME_NOREPLACE)`:
//! at every instant exactly one of the two names holds the session. A reader or
//! writer that opened the old name just before, and finds the new tag, waits for the
//! lock and then sees "not found". With `regenerate_grace`, the data is copied to a
//! new file instead and the old one is marked read-only until the grace ends.
//!
//! # A vanished directory
//! The directory is opened once; a file that is not found makes the driver check
//! that the directory is still the one at its path. If it was deleted, calls fail
//! with `SESSION_ERROR_STORAGE_UNAVAILABLE`; once it is back they work again.
//!
//! # Owner index
//! `sessions/owners/TAG/ID` is an empty file for each session indexed under the
//! owner whose tag is TAG (see [`crate::seal::OwnerTag`]), its mtime the bound
//! after which the entry may go. Listing an owner reads one small directory.
//! `remove_expired` drops entries past their bound and owner directories left
//! empty.
//!
//! # Security
//! The directory is created 0700 (tightened to 0700 if it was looser) and opened
//! with `O_NOFOLLOW`; every file operation is relative to it, on a name that is a
//! validated id, with `O_NOFOLLOW`. Files are 0600.

pub mod format;
pub mod sys;

use super::{now_ns, Change, Expiry, Outcome, Peeked, Store};
use crate::config::{wrong_type, Root, Section};
use crate::error::{Error, Result, SessionError};
use crate::id::{SessionId, ID_LEN};
use crate::seal::OwnerTag;
use format::{descriptors, free_offset, newest_version, Descriptor, DESC_LEN, HEADER_LEN};
use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The keys of `sessions` the file driver owns.
pub const KEYS: &[&str] = &["storage_name", "fsync", "lock_timeout_ms"];

/// Default longest wait for a session file's lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(1000);
/// Optimistic lock-free reads attempted before a reader takes the shared lock.
const OPTIMISTIC_READS: usize = 3;
/// A file without any valid version (its creator died) is deleted by
/// `remove_expired` once it is this old.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// `remove_expired` deletes a file on its `fstatat` alone only once its end is this
/// far in the past, so that a writer which judged the session live just before its
/// end has long finished.
pub const EXPIRED_MARGIN: Duration = Duration::from_secs(2);
/// A writer that judged a session live with less than this left checks afterwards
/// that `remove_expired` did not delete the file under it (a stalled writer).
const NEAR_END: Duration = Duration::from_secs(10);
/// How often a call checks that the directory in use is still the one at its path
/// (a directory renamed away and replaced is picked up within this time; a deleted
/// one at once, by the first file that is not found).
pub const DIR_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// In-process lock stripes of the writers (see [`FileStore::lock_writer`]).
const STRIPES: usize = 64;
/// First read of a session file; larger files take a second read.
// cargo-mutants: another size here (`+` for `*`) changes how many reads a file
// takes, not what they return.
const FIRST_READ: usize = 16 * 1024;
/// No session file is read beyond this: 4 times the largest `max_data_size`.
// cargo-mutants: `+` for the first `*` still allows 512 MiB + 4 bytes, which only a
// session near the largest max_data_size reaches (the other two are caught).
const MAX_FILE_READ: usize = 4 * 512 * 1024 * 1024;

/// The settings of the file driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// The storage root (`storages.NAME.root`); sessions go in `ROOT/sessions/`.
    pub root: PathBuf,
    /// fsync every write before reporting success (durable across power loss).
    pub fsync: bool,
    /// Longest wait for a session file's lock.
    pub lock_timeout: Duration,
}

impl FileConfig {
    /// Sessions in `root/sessions`, default settings.
    pub fn in_dir(root: PathBuf) -> FileConfig {
        FileConfig {
            root,
            fsync: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// Reads the file driver's keys: `storage_name` names an entry of `storages`.
pub fn parse(section: &Section, root: &Root) -> Result<FileConfig> {
    let fsync = section.bool("fsync")?.unwrap_or(false);
    let lock_timeout = section
        .millis("lock_timeout_ms")?
        .unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let name = section.string("storage_name")?.ok_or_else(|| {
        Error::config(format!(
            "{} is required for the file driver: name an entry of \"storages\"",
            section.key_path("storage_name")
        ))
    })?;
    let storage = match root.get("storages") {
        Some(Value::Object(storages)) => storages.get(name),
        Some(other) => return Err(wrong_type("storages", "an object", other)),
        None => None,
    };
    let path = format!("storages.{name}");
    let storage = match storage {
        Some(Value::Object(storage)) => Section::new(storage, &path),
        Some(other) => return Err(wrong_type(&path, "an object", other)),
        None => {
            return Err(Error::config(format!(
                "{} {name:?} names no entry of \"storages\"",
                section.key_path("storage_name")
            )))
        }
    };
    match storage.string("type")? {
        Some("filesystem") => {}
        Some(other) => {
            return Err(Error::config(format!(
                "{path}.type {other:?} is not supported; use \"filesystem\""
            )))
        }
        None => {
            return Err(Error::config(format!(
                "{path}.type is required (\"filesystem\")"
            )))
        }
    }
    let root_dir = storage
        .string("root")?
        .ok_or_else(|| Error::config(format!("{path}.root is required: the storage directory")))?;
    if root_dir.is_empty() || root_dir.contains('\0') {
        return Err(Error::config(format!(
            "{path}.root {root_dir:?} is not a usable directory"
        )));
    }
    storage.finish("storage")?;
    Ok(FileConfig {
        root: PathBuf::from(root_dir),
        fsync,
        lock_timeout,
    })
}

pub struct FileStore {
    /// The session directory, absolute.
    path: PathBuf,
    c_path: CString,
    /// The descriptor of the directory now in use.
    dir: AtomicI32,
    /// Every directory descriptor opened (the current one last); closed on drop, so
    /// a call still using a replaced one never sees it closed under it.
    dirs: Mutex<Vec<OwnedFd>>,
    /// When (ns since 1970) the next call re-checks the directory.
    next_check_ns: AtomicU64,
    fsync: bool,
    lock_timeout: Duration,
    expiry: Expiry,
    /// Writers of one session in this process queue on its stripe.
    stripes: Box<[Mutex<()>]>,
}

/// What a re-check of the directory found.
#[derive(PartialEq, Eq)]
enum DirCheck {
    Same,
    Reopened,
}

/// The NUL-terminated file name of a session.
struct Name([u8; ID_LEN + 1]);

impl Name {
    fn of(id: &SessionId) -> Name {
        let mut name = [0u8; ID_LEN + 1];
        name[..ID_LEN].copy_from_slice(id.as_bytes());
        Name(name)
    }

    fn c(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.0).unwrap_or(c"")
    }
}

impl FileStore {
    /// Opens the session directory `ROOT/sessions`, creating it 0700 if needed. The
    /// root must exist: a missing root is an error that names it.
    pub fn open(config: &FileConfig, expiry: Expiry) -> Result<FileStore> {
        let root = std::fs::canonicalize(&config.root).map_err(|err| {
            Error::new(
                SessionError::Config,
                format!(
                    "storage root {} cannot be used: {err} (it must exist; only its sessions/ subdirectory is created)",
                    config.root.display()
                ),
            )
        })?;
        let path = root.join("sessions");
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::config("the session directory contains a NUL byte"))?;
        match sys::mkdir(&c_path, 0o700) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(Error::io(
                    &format!("session directory {}: cannot create it", path.display()),
                    err,
                ))
            }
        }
        let store = FileStore {
            path,
            c_path,
            // cargo-mutants: never read: open_dir sets it before the store is
            // returned (an error drops the store).
            dir: AtomicI32::new(-1),
            dirs: Mutex::new(Vec::new()),
            next_check_ns: AtomicU64::new(
                now_ns().saturating_add(super::nanos(DIR_CHECK_INTERVAL)),
            ),
            fsync: config.fsync,
            lock_timeout: config.lock_timeout,
            expiry,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        };
        store.open_dir()?;
        Ok(store)
    }

    /// The directory the sessions are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error of an operation in the session directory, naming it.
    fn fail(&self, what: &str, err: io::Error) -> Error {
        // A directory, FIFO or socket under a session's name is something planted
        // there, not an outage: reported like a damaged file (401, not 503).
        if matches!(
            err.raw_os_error(),
            Some(libc::EISDIR | libc::ESPIPE | libc::ENXIO)
        ) {
            return Error::new(
                SessionError::Corrupt,
                format!(
                    "session directory {}: {what}: a session's name holds something that is not a session file ({err})",
                    self.path.display()
                ),
            );
        }
        Error::io(
            &format!("session directory {}: {what}", self.path.display()),
            err,
        )
    }

    fn dir(&self) -> RawFd {
        self.dir.load(Ordering::Acquire)
    }

    /// The directory to use, re-checked against its path at most once per
    /// [`DIR_CHECK_INTERVAL`] (two `stat`s), so a replaced directory is picked up.
    fn checked_dir(&self) -> Result<RawFd> {
        let now = now_ns();
        let due = self.next_check_ns.load(Ordering::Relaxed);
        // cargo-mutants: `||` for `&&` checks on every call: two stats more per
        // call, the same answers.
        if now >= due
            && self
                .next_check_ns
                .compare_exchange(
                    due,
                    now.saturating_add(super::nanos(DIR_CHECK_INTERVAL)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.recheck_dir()?;
        }
        Ok(self.dir())
    }

    /// Opens the directory at the path (refusing a symlink), makes it 0700 and
    /// writable-checked, and makes it the one in use.
    fn open_dir(&self) -> Result<()> {
        let fd = sys::open_dir(&self.c_path).map_err(|err| {
            let what = if err.kind() == io::ErrorKind::NotFound {
                "it does not exist (deleted while in use?)"
            } else {
                "cannot open it (it must be a directory; a symlink is refused)"
            };
            Error::new(
                SessionError::StorageUnavailable,
                format!("session directory {}: {what}: {err}", self.path.display()),
            )
        })?;
        let st = sys::stat_fd(fd.as_raw_fd()).map_err(|e| self.fail("cannot stat it", e))?;
        // Whoever owns the directory can list every id in it and plant files. One of
        // another user's is used only as that user keeps it (0700), which only root
        // can get into (`sessionctl` run by an admin); one open to others is made
        // 0700 if it is ours, and refused otherwise (its owner could open it again).
        if st.mode & 0o077 != 0 {
            let euid = sys::geteuid();
            if st.uid != euid {
                return Err(Error::new(
                    SessionError::StorageUnavailable,
                    format!(
                        "session directory {}: it belongs to user id {} (this process runs as {euid}) and is open to others: refused, as that user could read and forge sessions",
                        self.path.display(),
                        st.uid
                    ),
                ));
            }
            sys::fchmod(fd.as_raw_fd(), 0o700)
                .map_err(|e| self.fail("it is open to others and cannot be made 0700", e))?;
        }
        sys::writable(&self.c_path).map_err(|e| self.fail("it is not writable", e))?;
        let mut dirs = self.dirs.lock();
        self.dir.store(fd.as_raw_fd(), Ordering::Release);
        dirs.push(fd);
        Ok(())
    }

    /// Checks that the directory in use is still the one at the path: `Same`, or
    /// `Reopened` when it was replaced (the caller retries once), or an
    /// unavailable-storage error when it is gone.
    fn recheck_dir(&self) -> Result<DirCheck> {
        let current = sys::stat_fd(self.dir()).map_err(|e| self.fail("cannot stat it", e))?;
        // cargo-mutants: `>=` for `>` differs only when a deleted directory's inode
        // number is reused by the one now at the path.
        match sys::stat_at(libc::AT_FDCWD, &self.c_path) {
            Ok(st) if st.dev == current.dev && st.ino == current.ino && current.nlink > 0 => {
                Ok(DirCheck::Same)
            }
            Ok(_) | Err(_) => match self.open_dir() {
                Ok(()) => Ok(DirCheck::Reopened),
                Err(err) => {
                    // Gone from its path (deleted, or renamed away while the old
                    // descriptor still works): every call checks again, and fails,
                    // until it is back, rather than most calls quietly using the
                    // directory that is no longer at the configured path.
                    self.next_check_ns.store(0, Ordering::Relaxed);
                    Err(err)
                }
            },
        }
    }

    /// Opens an existing session file; `None` when there is none. Not finding it
    /// re-checks the directory, so a vanished directory is an error, not a miss.
    fn open_existing(&self, id: &SessionId, flags: libc::c_int) -> Result<Option<File>> {
        let name = Name::of(id);
        let mut dir = self.checked_dir()?;
        for attempt in 0..2 {
            match sys::open_at(dir, name.c(), flags, 0) {
                Ok(file) => return Ok(Some(file)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    if attempt == 1 || self.recheck_dir()? == DirCheck::Same {
                        return Ok(None);
                    }
                    dir = self.dir();
                }
                // A symlink or a directory planted under an id's name is no session:
                // a forged id (401), not an unavailable store (503).
                Err(err) if matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EISDIR)) => {
                    return Ok(None)
                }
                Err(err) => return Err(self.fail("cannot open a session file", err)),
            }
        }
        Ok(None)
    }

    /// Creates a new session file with `O_EXCL`, under an exclusive lock until it
    /// is closed; `None` when the name is taken.
    fn create_file(&self, id: &SessionId) -> Result<Option<File>> {
        let name = Name::of(id);
        // cargo-mutants: `^` for `|` is the same on these distinct bits.
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
        let mut dir = self.checked_dir()?;
        for attempt in 0..2 {
            match sys::open_at(dir, name.c(), flags, 0o600) {
                // Locked until written and closed: a reader that opens it meanwhile
                // waits under its shared lock rather than take the half-written
                // file for a damaged one.
                Ok(file) => {
                    if let Err(err) = self.lock(&file, libc::LOCK_EX) {
                        let _ = sys::unlink_at(dir, name.c());
                        return Err(err);
                    }
                    return Ok(Some(file));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
                // cargo-mutants: `||` for `&&` also checks the directory after
                // another error on the first try, which the second try meets again.
                Err(err) if err.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                    self.recheck_dir()?;
                    dir = self.dir();
                }
                Err(err) => return Err(self.fail("cannot create a session file", err)),
            }
        }
        Err(self.fail(
            "cannot create a session file",
            io::Error::from(io::ErrorKind::NotFound),
        ))
    }

    fn lock(&self, file: &File, op: libc::c_int) -> Result<()> {
        self.lock_within(file, op, self.lock_timeout)
    }

    fn lock_within(&self, file: &File, op: libc::c_int, wait: Duration) -> Result<()> {
        match sys::lock(file, op, wait) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lock_timed_out()),
            Err(err) => Err(self.fail("cannot lock a session file", err)),
        }
    }

    fn lock_timed_out(&self) -> Error {
        Error::new(
            SessionError::Timeout,
            format!(
                "session directory {}: a session file stayed locked by another thread or process: no answer within {} ms (lock_timeout_ms)",
                self.path.display(),
                self.lock_timeout.as_millis()
            ),
        )
    }

    /// The exclusive lock of a session for a writer: first the in-process stripe
    /// of its id (threads of this process queue fairly there, instead of polling
    /// `flock` against each other), then the file's `flock` (other processes),
    /// within `lock_timeout_ms` in all.
    fn lock_writer(&self, id: &SessionId, file: &File) -> Result<MutexGuard<'_, ()>> {
        let started = Instant::now();
        let stripe = &self.stripes[(format::tag(id) % STRIPES as u64) as usize];
        let guard = stripe
            .try_lock_for(self.lock_timeout)
            .ok_or_else(|| self.lock_timed_out())?;
        let left = self.lock_timeout.saturating_sub(started.elapsed());
        self.lock_within(file, libc::LOCK_EX, left)?;
        Ok(guard)
    }

    // cargo-mutants: what an fsync changes shows only after a power loss.
    fn sync_dir(&self) -> Result<()> {
        sys::fsync(self.dir()).map_err(|e| self.fail("fsync of the directory", e))
    }

    /// Writes `desc` into the slot that is not `live_slot`, then sets the mtime to
    /// its end.
    fn write_descriptor(&self, file: &File, live_slot: usize, desc: &Descriptor) -> Result<()> {
        sys::pwrite_all(file, &desc.encode(), ((1 - live_slot) * DESC_LEN) as u64)
            .and_then(|()| sys::set_mtime(file.as_raw_fd(), desc.end_ns()))
            .and_then(|()| if self.fsync { file.sync_all() } else { Ok(()) })
            .map_err(|err| self.fail("cannot write a session file", err))
    }

    /// Reads a session file into `buf`: `FIRST_READ` bytes, and if the file is longer,
    /// up to the end of the furthest data its descriptors name.
    fn read_file(&self, file: &File, buf: &mut Vec<u8>) -> Result<()> {
        let read = |buf: &mut Vec<u8>| -> io::Result<()> {
            buf.clear();
            sys::pread_append(file, buf, FIRST_READ)?;
            if buf.len() < FIRST_READ {
                return Ok(()); // the whole file
            }
            let wanted = descriptors(&buf[..HEADER_LEN])
                .iter()
                .map(|(_, d)| d.end())
                .max()
                .unwrap_or(0);
            // A damaged descriptor may name data far past the end: read (and
            // allocate) no more than the file holds.
            let size = file.metadata()?.len();
            let wanted = usize::try_from(wanted.min(size))
                .unwrap_or(usize::MAX)
                .min(MAX_FILE_READ);
            // cargo-mutants: `>=` adds a read of nothing; `+` for `-` reads on
            // towards the end of the file, and the parser goes by the descriptors.
            if wanted > buf.len() {
                sys::pread_append(file, buf, wanted - buf.len())?;
            }
            Ok(())
        };
        read(buf).map_err(|err| self.fail("cannot read a session file", err))
    }

    fn read_header(&self, file: &File) -> Result<Vec<u8>> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        sys::pread_append(file, &mut header, HEADER_LEN)
            .map_err(|err| self.fail("cannot read a session file", err))?;
        Ok(header)
    }

    /// Runs `write` on the live version of session `id` under the file's exclusive
    /// lock: `Missing` when the file is absent, belongs to another id (a regenerate
    /// renamed it) or has ended.
    fn with_live(
        &self,
        id: &SessionId,
        write: impl FnOnce(&File, usize, Descriptor, u64) -> Result<Outcome>,
    ) -> Result<Outcome> {
        let Some(file) = self.open_existing(id, libc::O_RDWR)? else {
            return Ok(Outcome::Missing);
        };
        let _stripe = self.lock_writer(id, &file)?;
        // A session file has one name. A second one is a hard link planted to read
        // whatever is written next: never write through it.
        let st = sys::stat_fd(file.as_raw_fd()).map_err(|e| self.fail("cannot stat", e))?;
        if st.nlink > 1 {
            return Err(Error::new(
                SessionError::Corrupt,
                format!(
                    "session directory {}: a session file has {} names (a planted hard link): not written",
                    self.path.display(),
                    st.nlink
                ),
            ));
        }
        // Under the exclusive lock a valid descriptor's data is complete: writers
        // write the data before the descriptor that names it.
        let header = self.read_header(&file)?;
        let Some(&(mut slot, mut live)) = descriptors(&header).first() else {
            return Ok(Outcome::Missing);
        };
        if live.tag != format::tag(id) {
            match self.recover_regenerate(id, &file, &header)? {
                Some(restored) => (slot, live) = restored,
                None => return Ok(Outcome::Missing),
            }
        }
        let now = now_ns();
        if live.end_ns() <= now {
            return Ok(Outcome::Missing);
        }
        let (slot, live) = self.intact(&file, &header, (slot, live), st.size)?;
        if live.end_ns() <= now {
            return Ok(Outcome::Missing);
        }
        let outcome = write(&file, slot, live, now)?;
        // remove_expired deletes a file on its fstatat alone once its end is
        // EXPIRED_MARGIN old. A writer that judged the session live close to its end
        // and then stalled that long may have written into a deleted file: say so.
        // cargo-mutants: which writers check (`==`, `>`, `<=` for `<`) shows only
        // for a writer stalled for seconds at this point, which no test can cause.
        if live.end_ns() < now.saturating_add(super::nanos(NEAR_END)) {
            let st = sys::stat_fd(file.as_raw_fd()).map_err(|e| self.fail("cannot stat", e))?;
            if st.nlink == 0 {
                return Ok(Outcome::Missing);
            }
        }
        Ok(outcome)
    }

    /// The version a write builds on, under the exclusive lock: `live` when its data
    /// is whole, else the older version when its data is (the newest was cut short
    /// by a power loss or a truncation, or changed on disk), given `live`'s `seq` so
    /// that the next descriptor, written over the damaged one, is the newest. A
    /// write never places data past a damaged descriptor's end (a huge sparse file)
    /// nor copies a damaged descriptor over the only whole version (as a touch
    /// would). `CORRUPT` when no version is whole.
    fn intact(
        &self,
        file: &File,
        header: &[u8],
        (slot, live): (usize, Descriptor),
        size: u64,
    ) -> Result<(usize, Descriptor)> {
        let (slot, live) = if self.whole(file, &live, size)? {
            (slot, live)
        } else {
            let older = descriptors(header)
                .into_iter()
                .find(|&(s, d)| s != slot && d.tag == live.tag && d.seq <= live.seq);
            match older {
                // cargo-mutants: without `seq`, the damaged descriptor stays the
                // newest until the next full write replaces it: readers then fall
                // back to this version under the lock, with the same answers.
                Some((older_slot, older)) if self.whole(file, &older, size)? => (
                    older_slot,
                    Descriptor {
                        seq: live.seq,
                        ..older
                    },
                ),
                _ => return Err(self.damaged()),
            }
        };
        // A write adds at most 2 to `seq` and 1 to `version`; past MAX_COUNTER the
        // new descriptor would not decode (and the write would seem lost).
        if live.seq > format::MAX_COUNTER - 3 || live.version > format::MAX_COUNTER - 2 {
            return Err(self.damaged());
        }
        Ok((slot, live))
    }

    /// Whether the data `desc` names lies within the file and matches its checksum.
    fn whole(&self, file: &File, desc: &Descriptor, size: u64) -> Result<bool> {
        if desc.end() > size {
            return Ok(false);
        }
        let mut data = vec![0u8; desc.len as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut data, desc.off)
            .map_err(|err| self.fail("cannot read a session file", err))?;
        Ok(crc32fast::hash(&data) == desc.data_crc)
    }

    /// A regenerate killed between re-tagging a file and renaming it leaves the file
    /// under the old name, its newest descriptor tagged with the new id and the other
    /// one still with the old id. Called under the exclusive lock (a live regenerate
    /// holds it until its rename is done) when the newest descriptor of the file
    /// opened as `id` names another id: if the file is still at `id`'s name and the
    /// older descriptor is `id`'s, that one is made newest again. Returns the
    /// restored descriptor and its slot.
    fn recover_regenerate(
        &self,
        id: &SessionId,
        file: &File,
        header: &[u8],
    ) -> Result<Option<(usize, Descriptor)>> {
        let found = descriptors(header);
        let [(new_slot, newest), (_, older)] = found[..] else {
            return Ok(None);
        };
        if older.tag != format::tag(id) || newest.tag == format::tag(id) {
            return Ok(None);
        }
        let (Ok(at_name), Ok(open)) = (
            sys::stat_at(self.dir(), Name::of(id).c()),
            sys::stat_fd(file.as_raw_fd()),
        ) else {
            return Ok(None);
        };
        if (at_name.dev, at_name.ino) != (open.dev, open.ino) {
            return Ok(None); // renamed away: the regenerate completed
        }
        // cargo-mutants: any seq from older's up gives the same file: both slots
        // then name the same version of `id`.
        let restored = Descriptor {
            seq: newest.seq + 1,
            ..older
        };
        // Writes the slot of `newest`, the one that is not `older`'s.
        self.write_descriptor(file, 1 - new_slot, &restored)?;
        Ok(Some((new_slot, restored)))
    }

    /// Opens `id` under the exclusive lock only to recover an interrupted regenerate
    /// (see [`Self::recover_regenerate`]); true when it restored the session.
    fn recover(&self, id: &SessionId) -> Result<bool> {
        let Some(file) = self.open_existing(id, libc::O_RDWR)? else {
            return Ok(false);
        };
        self.lock(&file, libc::LOCK_EX)?;
        let header = self.read_header(&file)?;
        // cargo-mutants: `true` for the guard is the same: recover_regenerate
        // returns None at once for a file whose newest descriptor is `id`'s.
        match descriptors(&header).first() {
            Some(&(_, live)) if live.tag != format::tag(id) => {
                Ok(self.recover_regenerate(id, &file, &header)?.is_some())
            }
            _ => Ok(false),
        }
    }

    /// The live descriptor of `id` from the header alone, retrying under the shared
    /// lock when the file turned out to belong to another id mid-regenerate.
    fn live_descriptor(&self, id: &SessionId) -> Result<Option<Descriptor>> {
        self.live_descriptor_or_recover(id, true)
    }

    fn live_descriptor_or_recover(
        &self,
        id: &SessionId,
        may_recover: bool,
    ) -> Result<Option<Descriptor>> {
        let Some(file) = self.open_existing(id, libc::O_RDONLY)? else {
            return Ok(None);
        };
        let tag = format::tag(id);
        // cargo-mutants: equivalent here: `>=` for `>` (a nanosecond tie); `true`
        // for `locked` (recover waits under the exclusive lock for a regenerate in
        // flight, as the shared lock would); `||` for `&&` (the recovery then
        // happens one call deeper).
        for locked in [false, true] {
            if locked {
                self.lock(&file, libc::LOCK_SH)?;
            }
            let header = self.read_header(&file)?;
            match descriptors(&header).first() {
                Some(&(_, desc)) if desc.tag == tag => {
                    return Ok((desc.end_ns() > now_ns()).then_some(desc));
                }
                Some(_) if locked => {
                    drop(file);
                    if may_recover && self.recover(id)? {
                        return self.live_descriptor_or_recover(id, false);
                    }
                    return Ok(None);
                }
                _ => continue,
            }
        }
        Ok(None)
    }

    /// A get (a peek without `refresh`: the idle end stays); with `may_recover`, a
    /// file left by an interrupted regenerate is given back to `id` first.
    fn read(
        &self,
        id: &SessionId,
        may_recover: bool,
        refresh: bool,
    ) -> Result<Option<(Vec<u8>, Descriptor)>> {
        let Some(file) = self.open_existing(id, libc::O_RDONLY)? else {
            return Ok(None);
        };
        let tag = format::tag(id);
        let mut buf = Vec::new();
        let mut attempt = 0;
        while attempt <= OPTIMISTIC_READS {
            // cargo-mutants: `!=` for `==` takes the shared lock on the first reads
            // instead of the last: slower under writers, the same answers.
            let locked = attempt == OPTIMISTIC_READS;
            if locked {
                self.lock(&file, libc::LOCK_SH)?;
            }
            self.read_file(&file, &mut buf)?;
            match newest_version(&buf, locked) {
                Some((desc, data)) if desc.tag == tag => {
                    let now = now_ns();
                    if desc.end_ns() <= now {
                        return Ok(None);
                    }
                    let data = data.to_vec();
                    let refresh = refresh
                        && !desc.read_only()
                        && self
                            .expiry
                            .refresh_on_read(now, desc.absolute_ns, desc.idle_ns)
                            .is_some();
                    drop(file); // releases a shared lock before the refresh locks
                    if refresh {
                        self.refresh_after_read(id)?;
                    }
                    return Ok(Some((data, desc)));
                }
                // Renamed to another id by a regenerate: wait for it under the lock.
                // cargo-mutants: `false` for the guard, like `||` for the `&&`
                // below, is equivalent: recover waits under the exclusive lock for
                // a regenerate in flight and finds the file renamed away.
                Some(_) if !locked => attempt = OPTIMISTIC_READS,
                Some(_) => {
                    if self.is_foreign(id, &file, &buf) {
                        return Err(Error::new(
                            SessionError::Corrupt,
                            format!(
                                "session directory {}: a session file holds another session's data (copied or moved under this name)",
                                self.path.display()
                            ),
                        ));
                    }
                    drop(file);
                    if may_recover && self.recover(id)? {
                        return self.read(id, false, refresh);
                    }
                    return Ok(None);
                }
                None => attempt += 1,
            }
        }
        // Under the lock and still no valid version. Without a valid descriptor:
        // a creation in progress or abandoned, so the session does not exist (yet).
        // With one whose data does not check out: the file is damaged.
        if descriptors(&buf).iter().any(|(_, d)| d.tag == tag) {
            return Err(self.damaged());
        }
        Ok(None)
    }

    /// Whether `file`, opened as `id` and read into `buf` under the shared lock, is
    /// another session's file put under `id`'s name: still at that name (not renamed
    /// away by a regenerate) and with no descriptor of `id` (not an interrupted
    /// regenerate, which keeps one).
    fn is_foreign(&self, id: &SessionId, file: &File, buf: &[u8]) -> bool {
        let tag = format::tag(id);
        if descriptors(buf).iter().any(|(_, d)| d.tag == tag) {
            return false;
        }
        match (
            sys::stat_at(self.dir(), Name::of(id).c()),
            sys::stat_fd(file.as_raw_fd()),
        ) {
            (Ok(at_name), Ok(open)) => (at_name.dev, at_name.ino) == (open.dev, open.ino),
            _ => false,
        }
    }

    /// A session file whose data does not match its checksum under the lock.
    fn damaged(&self) -> Error {
        Error::new(
            SessionError::Corrupt,
            format!(
                "session directory {}: a session file is damaged (its data does not match its checksum)",
                self.path.display()
            ),
        )
    }

    /// A get's refresh of the idle end: skipped when another thread holds the lock
    /// (a writer, which moves the idle end itself).
    fn refresh_after_read(&self, id: &SessionId) -> Result<()> {
        let Some(file) = self.open_existing(id, libc::O_RDWR)? else {
            return Ok(());
        };
        if !sys::try_lock(&file, libc::LOCK_EX).map_err(|e| self.fail("cannot lock", e))? {
            return Ok(());
        }
        let header = self.read_header(&file)?;
        let Some(&(slot, live)) = descriptors(&header).first() else {
            return Ok(());
        };
        let now = now_ns();
        // cargo-mutants: the read just judged the session live, `id`'s and
        // writable; these checks (`&&` for either `||`) catch a regenerate or the
        // end passing in the microseconds since, which no test can place there.
        if live.tag != format::tag(id) || live.end_ns() <= now || live.read_only() {
            return Ok(());
        }
        let st = sys::stat_fd(file.as_raw_fd()).map_err(|e| self.fail("cannot stat", e))?;
        let (slot, live) = self.intact(&file, &header, (slot, live), st.size)?;
        match self
            .expiry
            .refresh_on_read(now, live.absolute_ns, live.idle_ns)
        {
            Some(idle_ns) => self.write_idle_end(&file, slot, live, idle_ns),
            None => Ok(()),
        }
    }

    /// Moves the idle end of the live version (a new descriptor naming the same
    /// data; the version stays: the data did not change).
    fn write_idle_end(
        &self,
        file: &File,
        slot: usize,
        live: Descriptor,
        idle_ns: u64,
    ) -> Result<()> {
        let desc = Descriptor {
            seq: live.seq + 1,
            idle_ns,
            ..live
        };
        self.write_descriptor(file, slot, &desc)
    }

    fn regenerate_with_grace(
        &self,
        new: &SessionId,
        file: &File,
        (slot, live): (usize, Descriptor),
        now: u64,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome> {
        let mut buf = Vec::new();
        self.read_file(file, &mut buf)?;
        let Some((_, data)) = newest_version(&buf, true) else {
            return Err(self.damaged());
        };
        let rewritten = match rewrite {
            Some(rewrite) => rewrite(data)?,
            None => None,
        };
        let data = rewritten.as_deref().unwrap_or(data);
        let copied = self.write_first(new, data, live.version + 1, live.absolute_ns, now)?;
        if copied != Outcome::Applied {
            return Ok(copied);
        }
        let grace_end = now.saturating_add(super::nanos(self.expiry.regenerate_grace));
        let old = Descriptor {
            seq: live.seq + 1,
            absolute_ns: live.absolute_ns.min(grace_end),
            flags: live.flags | format::FLAG_READ_ONLY,
            ..live
        };
        self.write_descriptor(file, slot, &old)?;
        if self.fsync {
            self.sync_dir()?;
        }
        Ok(Outcome::Applied)
    }

    /// Writes `data` as the next version of a file whose live version is `live` (in
    /// `slot`), under the exclusive lock: the data where it overlaps nothing `live`
    /// names, then the other descriptor, with the next version, the idle end moved
    /// and the id tag `tag` (another id's for a regenerate).
    fn write_data(
        &self,
        file: &File,
        (slot, live): (usize, Descriptor),
        now: u64,
        data: &[u8],
        tag: u64,
    ) -> Result<Outcome> {
        let len = u32::try_from(data.len())
            .map_err(|_| Error::invalid("session data is larger than 4 GiB"))?;
        let off = free_offset(&live, len);
        let desc = Descriptor {
            len,
            seq: live.seq + 1,
            version: live.version + 1,
            idle_ns: self.expiry.idle_end(now, live.absolute_ns),
            off,
            tag,
            data_crc: crc32fast::hash(data),
            ..live
        };
        sys::pwrite_all(file, data, off)
            .map_err(|err| self.fail("cannot write a session file", err))?;
        self.write_descriptor(file, slot, &desc)?;
        Ok(Outcome::Applied)
    }

    /// A new file for `id` holding its first version (`data` at `version`, ending
    /// at `absolute_ns`, idle window starting `now`): header and data in one
    /// `pwritev`, under the exclusive lock of [`Self::create_file`]. `Taken` when
    /// the name exists; a failed write removes the file.
    fn write_first(
        &self,
        id: &SessionId,
        data: &[u8],
        version: u64,
        absolute_ns: u64,
        now: u64,
    ) -> Result<Outcome> {
        let len = u32::try_from(data.len())
            .map_err(|_| Error::invalid("session data is larger than 4 GiB"))?;
        let Some(file) = self.create_file(id)? else {
            return Ok(Outcome::Taken);
        };
        let desc = Descriptor {
            len,
            seq: 1,
            version,
            absolute_ns,
            idle_ns: self.expiry.idle_end(now, absolute_ns),
            off: HEADER_LEN as u64,
            tag: format::tag(id),
            flags: 0,
            data_crc: crc32fast::hash(data),
        };
        let mut header = [0u8; HEADER_LEN];
        header[..DESC_LEN].copy_from_slice(&desc.encode());
        let written = sys::write_two_at(&file, &header, data, 0)
            .and_then(|()| sys::set_mtime(file.as_raw_fd(), desc.end_ns()))
            .and_then(|()| if self.fsync { file.sync_all() } else { Ok(()) });
        if let Err(err) = written {
            let _ = sys::unlink_at(self.dir(), Name::of(id).c());
            return Err(self.fail("cannot write a session file", err));
        }
        Ok(Outcome::Applied)
    }

    /// Calls `each` with the name and `fstatat` of every session file, judging each
    /// name as it is read.
    fn scan(&self, mut each: impl FnMut(RawFd, &CStr, sys::Stat)) -> Result<()> {
        self.recheck_dir()?;
        let dir = self.dir();
        let mut stream =
            sys::DirStream::open(dir).map_err(|e| self.fail("cannot list the directory", e))?;
        stream
            .for_each(|name| {
                if SessionId::parse(name.to_bytes()).is_err() {
                    return;
                }
                if let Ok(st) = sys::stat_at(dir, name) {
                    if st.regular {
                        each(dir, name, st);
                    }
                }
            })
            .map_err(|e| self.fail("cannot list the directory", e))
    }

    /// Calls `each` with the id of every live session file. One `fstatat` for the
    /// common case; an mtime that has passed and that the driver did not set (not
    /// later than the ctime: a write cut short before its `futimens`, by a kill or
    /// a full disk) is judged by the descriptor instead.
    fn scan_live(&self, mut each: impl FnMut(SessionId)) -> Result<()> {
        let now = now_ns();
        self.scan(|_, name, st| {
            let Ok(id) = SessionId::parse(name.to_bytes()) else {
                return;
            };
            // cargo-mutants: `>=` for the first `>` differs only on a nanosecond tie.
            let live = st.mtime_ns > now
                || (st.mtime_ns <= st.ctime_ns && matches!(self.live_descriptor(&id), Ok(Some(_))));
            if live {
                each(id);
            }
        })
    }

    /// Deletes `name` if, checked under its lock, it has ended (or was abandoned
    /// half-created long enough ago). Busy files are left for next time.
    fn remove_if_ended(&self, dir: RawFd, name: &CStr, mtime_ns: u64, now: u64) -> bool {
        let Ok(file) = sys::open_at(dir, name, libc::O_RDWR, 0) else {
            return false;
        };
        if !matches!(sys::try_lock(&file, libc::LOCK_EX), Ok(true)) {
            return false;
        }
        let mut header = Vec::with_capacity(HEADER_LEN);
        if sys::pread_append(&file, &mut header, HEADER_LEN).is_err() {
            return false;
        }
        let abandoned_before = now.saturating_sub(super::nanos(ABANDONED_AFTER));
        // cargo-mutants: `>=` for either `>` differs only on a nanosecond tie.
        match descriptors(&header).first() {
            Some(&(_, live)) if live.end_ns() > now => {
                let _ = sys::set_mtime(file.as_raw_fd(), live.end_ns());
                return false;
            }
            None if mtime_ns > abandoned_before => return false, // creation in progress
            _ => {}
        }
        sys::unlink_at(dir, name).is_ok()
    }
}

impl Store for FileStore {
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<Outcome> {
        let now = now_ns();
        let absolute_ns = now.saturating_add(super::nanos(lifetime));
        let created = self.write_first(id, data, 1, absolute_ns, now)?;
        // cargo-mutants: this only decides when to fsync the directory, which
        // shows only after a power loss.
        if created == Outcome::Applied && self.fsync {
            self.sync_dir()?;
        }
        Ok(created)
    }

    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        Ok(self.read(id, true, true)?.map(|(data, _)| data))
    }

    fn get_versioned(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
        Ok(self
            .read(id, true, true)?
            .map(|(data, desc)| (data, desc.version)))
    }

    fn update_if(&self, id: &SessionId, data: &[u8], version: u64) -> Result<Outcome> {
        self.with_live(id, |file, slot, live, now| {
            if live.read_only() {
                return Ok(Outcome::ReadOnly);
            }
            if live.version != version {
                return Ok(Outcome::Conflict);
            }
            self.write_data(file, (slot, live), now, data, live.tag)
        })
    }

    fn modify(&self, id: &SessionId, change: &mut super::Change) -> Result<Outcome> {
        self.with_live(id, |file, slot, live, now| {
            if live.read_only() {
                return Ok(Outcome::ReadOnly);
            }
            // Under the exclusive lock: the newest version whose data checks out
            // (an older one if the newest is damaged).
            let mut buf = Vec::new();
            self.read_file(file, &mut buf)?;
            let Some((_, current)) = newest_version(&buf, true) else {
                return Err(self.damaged());
            };
            match change(current)? {
                Some(new) => self.write_data(file, (slot, live), now, &new, live.tag),
                None => Ok(Outcome::Applied),
            }
        })
    }

    fn update(&self, id: &SessionId, data: &[u8]) -> Result<Outcome> {
        self.with_live(id, |file, slot, live, now| {
            if live.read_only() {
                return Ok(Outcome::ReadOnly);
            }
            self.write_data(file, (slot, live), now, data, live.tag)
        })
    }

    fn destroy(&self, id: &SessionId) -> Result<()> {
        let name = Name::of(id);
        let mut dir = self.checked_dir()?;
        for attempt in 0..2 {
            match sys::unlink_at(dir, name.c()) {
                Ok(()) => {
                    if self.fsync {
                        self.sync_dir()?;
                    }
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    if attempt == 1 || self.recheck_dir()? == DirCheck::Same {
                        return Ok(());
                    }
                    dir = self.dir();
                }
                // A directory planted under the name: no session there to remove.
                Err(err) if err.raw_os_error() == Some(libc::EISDIR) => return Ok(()),
                Err(err) => return Err(self.fail("cannot delete a session file", err)),
            }
        }
        Ok(())
    }

    fn touch(&self, id: &SessionId) -> Result<Outcome> {
        self.with_live(id, |file, slot, live, now| {
            let idle_ns = self.expiry.idle_end(now, live.absolute_ns);
            // cargo-mutants: `||` for `&&` may move a read-only (old) id's idle end,
            // but its end stays its absolute end, the end of its grace.
            if !live.read_only() && idle_ns > live.idle_ns {
                self.write_idle_end(file, slot, live, idle_ns)?;
            }
            Ok(Outcome::Applied)
        })
    }

    fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        Ok(self
            .live_descriptor(id)?
            .and_then(|d| d.end_ns().checked_sub(now_ns()))
            .filter(|ns| *ns > 0)
            .map(Duration::from_nanos))
    }

    fn count(&self) -> Result<u64> {
        let mut live = 0;
        self.scan_live(|_| live += 1)?;
        Ok(live)
    }

    fn ids(&self) -> Result<Vec<SessionId>> {
        let mut ids = Vec::new();
        self.scan_live(|id| ids.push(id))?;
        Ok(ids)
    }

    fn regenerate(
        &self,
        old: &SessionId,
        new: &SessionId,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome> {
        self.with_live(old, |file, slot, live, now| {
            if live.read_only() {
                return Ok(Outcome::ReadOnly);
            }
            if !self.expiry.regenerate_grace.is_zero() {
                return self.regenerate_with_grace(new, file, (slot, live), now, rewrite);
            }
            let rewritten = match rewrite {
                Some(rewrite) => {
                    let mut buf = Vec::new();
                    self.read_file(file, &mut buf)?;
                    let Some((_, current)) = newest_version(&buf, true) else {
                        return Err(self.damaged());
                    };
                    rewrite(current)?
                }
                None => None,
            };
            // The file re-tagged for the new id (with new data where `rewrite` gave
            // some, written where it overlaps nothing the old version names).
            match rewritten {
                Some(data) => {
                    self.write_data(file, (slot, live), now, &data, format::tag(new))?;
                }
                None => {
                    let moved = Descriptor {
                        seq: live.seq + 1,
                        version: live.version + 1,
                        idle_ns: self.expiry.idle_end(now, live.absolute_ns),
                        tag: format::tag(new),
                        ..live
                    };
                    self.write_descriptor(file, slot, &moved)?;
                }
            }
            let renamed = sys::rename_noreplace(self.dir(), Name::of(old).c(), Name::of(new).c());
            if let Err(err) = renamed {
                // Give the file back to the old id before anyone sees it missing.
                // cargo-mutants: a lower seq (`-`, `*`, or none) leaves the re-tagged
                // descriptor newest under the old name, which the next call restores
                // as after a kill (recover_regenerate): the same answers.
                let back = Descriptor {
                    seq: live.seq + 2,
                    ..live
                };
                self.write_descriptor(file, 1 - slot, &back)?;
                match err.kind() {
                    io::ErrorKind::AlreadyExists => return Ok(Outcome::Taken),
                    // Destroyed (unlinked) while we held its lock. cargo-mutants:
                    // without this arm it is an error instead; no test can place
                    // a destroy between this lock and the rename.
                    io::ErrorKind::NotFound => return Ok(Outcome::Missing),
                    _ => {}
                }
                return Err(self.fail("cannot rename a session file", err));
            }
            if self.fsync {
                self.sync_dir()?;
            }
            Ok(Outcome::Applied)
        })
    }

    fn remove_expired(&self) -> Result<usize> {
        let now = now_ns();
        let settled = now.saturating_sub(super::nanos(EXPIRED_MARGIN));
        let mut removed = 0;
        // cargo-mutants: `==` or `>=` for either `>` below, and `>` for `<=`, send
        // files to the locked check (or away from it) on a nanosecond tie or within
        // the margin, where the lock gives the same answer; `removed > 0` only
        // decides an fsync.
        self.scan(|dir, name, st| {
            if st.mtime_ns > now {
                return; // live: the common case costs one fstatat
            }
            // An end the driver set (mtime later than the write that set it), long
            // enough ago that no writer can still be on it: one unlink.
            let gone = if st.mtime_ns > st.ctime_ns && st.mtime_ns <= settled {
                sys::unlink_at(dir, name).is_ok()
            } else {
                self.remove_if_ended(dir, name, st.mtime_ns, now)
            };
            removed += usize::from(gone);
        })?;
        if removed > 0 && self.fsync {
            self.sync_dir()?;
        }
        self.prune_index(now)?;
        Ok(removed)
    }

    fn peek(&self, id: &SessionId) -> Result<Option<Peeked>> {
        Ok(self
            .read(id, true, false)?
            .map(|(data, desc)| (data, desc.absolute_ns)))
    }

    fn index_add(&self, owner: &OwnerTag, id: &SessionId, until_ns: u64) -> Result<()> {
        let name = Name::of(id);
        for attempt in 0..3 {
            let Some(owner_dir) = self.index_dir(Some(owner), true)? else {
                continue;
            };
            let created = sys::open_at(
                owner_dir.as_raw_fd(),
                name.c(),
                libc::O_WRONLY | libc::O_CREAT,
                0o600,
            );
            match created {
                Ok(file) => {
                    let fd = file.as_raw_fd();
                    let written = sys::stat_fd(fd)
                        .and_then(|st| {
                            // cargo-mutants: `<=` sets the same mtime again.
                            if st.mtime_ns < until_ns {
                                sys::set_mtime(fd, until_ns)?;
                            }
                            Ok(())
                        })
                        .and_then(|()| {
                            if self.fsync {
                                file.sync_all()?;
                                sys::fsync(owner_dir.as_raw_fd())?;
                            }
                            Ok(())
                        });
                    return written.map_err(|e| self.fail("cannot write the owner index", e));
                }
                // Its directory was removed empty by remove_expired just now: again.
                // cargo-mutants: a race no test can place between index_dir and
                // this open; the guard's variants change only how often it retries.
                Err(err) if err.kind() == io::ErrorKind::NotFound && attempt < 2 => {}
                Err(err) => return Err(self.fail("cannot write the owner index", err)),
            }
        }
        Err(self.fail(
            "cannot write the owner index",
            io::Error::from(io::ErrorKind::NotFound),
        ))
    }

    fn index_list(&self, owner: &OwnerTag) -> Result<Vec<(SessionId, u64)>> {
        let Some(owner_dir) = self.index_dir(Some(owner), false)? else {
            return Ok(Vec::new());
        };
        let now = now_ns();
        let mut ids = Vec::new();
        let listed = index_entries(owner_dir.as_raw_fd(), |owner_dir, name, st| {
            let Ok(id) = SessionId::parse(name.to_bytes()) else {
                return;
            };
            if st.mtime_ns > now {
                ids.push((id, st.mtime_ns));
            } else {
                let _ = sys::unlink_at(owner_dir, name);
            }
        });
        listed.map_err(|e| self.fail("cannot read the owner index", e))?;
        Ok(ids)
    }

    fn index_remove(&self, owner: &OwnerTag, ids: &[SessionId]) -> Result<()> {
        let Some(owner_dir) = self.index_dir(Some(owner), false)? else {
            return Ok(());
        };
        for id in ids {
            match sys::unlink_at(owner_dir.as_raw_fd(), Name::of(id).c()) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(self.fail("cannot update the owner index", err))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Calls `each` with the directory, name and `fstatat` of every regular file in
/// the open directory `dir`.
fn index_entries(dir: RawFd, mut each: impl FnMut(RawFd, &CStr, sys::Stat)) -> io::Result<()> {
    sys::DirStream::open(dir)?.for_each(|name| {
        if let Ok(st) = sys::stat_at(dir, name) {
            if st.regular {
                each(dir, name, st);
            }
        }
    })
}

impl FileStore {
    /// The owner index's directory `owners` (with `owner`: `owners/TAG`), opened one
    /// name at a time with `O_NOFOLLOW`, so a symlink planted at either is refused,
    /// never followed. With `create`, a missing directory is made 0700 (its parent
    /// synced with `fsync`); without, a missing one is `None`.
    fn index_dir(&self, owner: Option<&OwnerTag>, create: bool) -> Result<Option<File>> {
        let dir = self.checked_dir()?;
        let Some(root) = self.index_subdir(dir, c"owners", create)? else {
            return Ok(None);
        };
        match owner {
            None => Ok(Some(root)),
            Some(owner) => {
                let tag = CString::new(owner.as_str()).expect("hex digits only");
                self.index_subdir(root.as_raw_fd(), &tag, create)
            }
        }
    }

    fn index_subdir(&self, parent: RawFd, name: &CStr, create: bool) -> Result<Option<File>> {
        // cargo-mutants: `&` for `|` drops O_DIRECTORY, so a file planted here
        // fails at the listing rather than here (same code); the mkdir guards
        // cover two creators racing, and the fsync only shows after a power loss.
        for _ in 0..3 {
            match sys::open_at(parent, name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Ok(dir) => return Ok(Some(dir)),
                Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                    match sys::mkdir_at(parent, name, 0o700) {
                        // A new directory is durable once its parent is synced.
                        Ok(()) if self.fsync => sys::fsync(parent)
                            .map_err(|e| self.fail("cannot sync the owner index", e))?,
                        Ok(()) => {}
                        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(err) => return Err(self.fail("cannot create the owner index", err)),
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(self.fail("cannot open the owner index", err)),
            }
        }
        Ok(None)
    }

    /// `remove_expired`'s pass over the owner index: entries past their bound,
    /// then owner directories left empty.
    fn prune_index(&self, now: u64) -> Result<()> {
        let Some(root) = self.index_dir(None, false)? else {
            return Ok(());
        };
        let root = root.as_raw_fd();
        // cargo-mutants: `||` for `&&` in the name filter, or `&` for `|` in the
        // flags, differ only for names the driver never writes there (then
        // pruned, or failing to open and passed over); `*=` for `+=` below only
        // tries an rmdir that fails on a directory still in use.
        let mut owners: Vec<CString> = Vec::new();
        let listed = sys::DirStream::open(root).and_then(|mut names| {
            names.for_each(|name| {
                let bytes = name.to_bytes();
                if bytes.len() == 32 && bytes.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                {
                    owners.push(name.to_owned());
                }
            })
        });
        listed.map_err(|e| self.fail("cannot read the owner index", e))?;
        for owner in owners {
            let Ok(owner_dir) = sys::open_at(root, &owner, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            else {
                continue;
            };
            let mut kept = 0usize;
            let pruned = index_entries(owner_dir.as_raw_fd(), |owner_dir, name, st| {
                if st.mtime_ns <= now {
                    let _ = sys::unlink_at(owner_dir, name);
                } else {
                    kept += 1;
                }
            });
            pruned.map_err(|e| self.fail("cannot prune the owner index", e))?;
            if kept == 0 {
                // Fails (harmlessly) if an entry was added meanwhile.
                let _ = sys::rmdir_at(root, &owner);
            }
        }
        Ok(())
    }
}
