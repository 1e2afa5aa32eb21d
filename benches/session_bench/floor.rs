//! Floors: bare libc calls relative to a descriptor of a directory, with the flags
//! the file store uses where they are free (O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK), on
//! files as large as the session files they are compared with.

use crate::common::os_check;
use std::ffi::{c_char, CString};
use std::path::Path;

pub struct Dir {
    pub fd: libc::c_int,
}

/// `times` for futimens: atime untouched, mtime `ns` since 1970.
fn mtime_spec(ns: u64) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        },
    ]
}

/// Wall-clock nanoseconds since 1970.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn is_dot(n: *const c_char) -> bool {
    // SAFETY: n is a NUL-terminated d_name; at most 3 bytes are read, stopping at NUL.
    unsafe {
        *n == b'.' as c_char && (*n.add(1) == 0 || (*n.add(1) == b'.' as c_char && *n.add(2) == 0))
    }
}

/// The header and descriptor sizes of a session file, so the floors of the writers
/// read and write as many bytes as the driver does.
pub use session::store::file::format::{DESC_LEN, HEADER_LEN};

impl Dir {
    pub fn open(path: &Path) -> Dir {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        os_check(fd >= 0, "open dir");
        Dir { fd }
    }

    /// open(O_CREAT|O_EXCL) + write + close.
    pub fn create_excl(&self, name: *const c_char, buf: &[u8]) {
        self.create_excl_mtime(name, buf, None)
    }

    /// open(O_CREAT|O_EXCL) + write (+ futimens to `mtime_ns`) + close.
    pub fn create_excl_mtime(&self, name: *const c_char, buf: &[u8], mtime_ns: Option<u64>) {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600,
            );
            os_check(fd >= 0, "floor openat(O_CREAT|O_EXCL)");
            let n = libc::write(fd, buf.as_ptr().cast(), buf.len());
            os_check(n == buf.len() as isize, "floor write");
            if let Some(ns) = mtime_ns {
                let t = mtime_spec(ns);
                os_check(libc::futimens(fd, t.as_ptr()) == 0, "floor futimens");
            }
            libc::close(fd);
        }
    }

    /// temp file open(O_CREAT|O_EXCL) + write + close + rename onto `name`.
    pub fn create_rename(&self, tmp: *const c_char, name: *const c_char, buf: &[u8]) {
        self.create_excl(tmp, buf);
        // SAFETY: valid names.
        os_check(
            unsafe { libc::renameat(self.fd, tmp, self.fd, name) } == 0,
            "floor renameat",
        );
    }

    /// open + read + close.
    pub fn read(&self, name: *const c_char, buf: &mut [u8]) -> usize {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            );
            os_check(fd >= 0, "floor openat(O_RDONLY)");
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            os_check(n > 0, "floor read");
            libc::close(fd);
            n as usize
        }
    }

    /// open + pwrite at 0 + close (in place: not crash-atomic by itself).
    pub fn pwrite_in_place(&self, name: *const c_char, buf: &[u8]) {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            );
            os_check(fd >= 0, "floor openat(O_WRONLY)");
            let n = libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), 0);
            os_check(n == buf.len() as isize, "floor pwrite");
            libc::close(fd);
        }
    }

    /// The system calls of a descriptor write under the lock, as the driver's
    /// regenerate and a get's idle refresh make them: open(O_RDWR) +
    /// flock(LOCK_EX|LOCK_NB) + pread of the header + pwrite of one descriptor +
    /// futimens (the mtime holds the end) + [renameat2(RENAME_NOREPLACE) to
    /// `rename_to`] + close.
    pub fn locked_write(&self, name: *const c_char, rename_to: Option<*const c_char>) {
        let mut header = [0u8; HEADER_LEN];
        let desc = [0x5au8; DESC_LEN];
        let times = mtime_spec(wall_ns() + 3_600_000_000_000);
        // SAFETY: plain syscalls on valid pointers and buffers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            );
            os_check(fd >= 0, "floor openat(O_RDWR)");
            os_check(
                libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0,
                "floor flock",
            );
            let n = libc::pread(fd, header.as_mut_ptr().cast(), HEADER_LEN, 0);
            os_check(n == HEADER_LEN as isize, "floor pread header");
            let n = libc::pwrite(fd, desc.as_ptr().cast(), DESC_LEN, DESC_LEN as libc::off_t);
            os_check(n == DESC_LEN as isize, "floor pwrite descriptor");
            os_check(libc::futimens(fd, times.as_ptr()) == 0, "floor futimens");
            if let Some(to) = rename_to {
                let r = libc::syscall(
                    libc::SYS_renameat2,
                    self.fd,
                    name,
                    self.fd,
                    to,
                    libc::RENAME_NOREPLACE,
                );
                os_check(r == 0, "floor renameat2");
            }
            libc::close(fd);
        }
    }

    /// Sets the mtime of `name` (utimensat, untimed setup).
    pub fn set_mtime(&self, name: *const c_char, ns: u64) {
        let t = mtime_spec(ns);
        // SAFETY: valid name, two timespecs.
        os_check(
            unsafe { libc::utimensat(self.fd, name, t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } == 0,
            "utimensat",
        );
    }

    pub fn unlink(&self, name: *const c_char) {
        // SAFETY: valid name.
        os_check(
            unsafe { libc::unlinkat(self.fd, name, 0) } == 0,
            "floor unlinkat",
        );
    }

    pub fn size_of(&self, name: *const c_char) -> usize {
        // SAFETY: st is written before it is read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        os_check(
            unsafe { libc::fstatat(self.fd, name, &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0,
            "fstatat",
        );
        st.st_size as usize
    }

    /// Lists the directory through a descriptor of its own (opendir, readdir to the
    /// end, closedir), calling `each` with every name but `.` and `..`.
    pub fn list(&self, mut each: impl FnMut(*const c_char)) {
        // SAFETY: plain libc directory calls; each entry is used before the next readdir.
        unsafe {
            let fd = libc::openat(
                self.fd,
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            os_check(fd >= 0, "openat .");
            let stream = libc::fdopendir(fd);
            os_check(!stream.is_null(), "fdopendir");
            loop {
                let e = libc::readdir(stream);
                if e.is_null() {
                    break;
                }
                let n = (*e).d_name.as_ptr();
                if !is_dot(n) {
                    each(n);
                }
            }
            libc::closedir(stream);
        }
    }

    /// A plain readdir of the whole directory; returns the number of entries.
    pub fn readdir_count(&self) -> usize {
        let mut count = 0;
        self.list(|_| count += 1);
        count
    }

    /// readdir of the whole directory + fstatat of every entry, calling `each` with
    /// the name and its stat (entries that vanished in between are skipped).
    pub fn scan_with(&self, mut each: impl FnMut(*const c_char, &libc::stat)) {
        // SAFETY: st is written by fstatat before it is read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let fd = self.fd;
        self.list(|n| {
            // SAFETY: n is NUL-terminated, fd an open directory.
            if unsafe { libc::fstatat(fd, n, &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0 {
                each(n, &st);
            }
        });
    }

    /// readdir + fstatat of every entry: the scan floor. Returns the number of entries.
    pub fn scan(&self) -> usize {
        let mut count = 0;
        self.scan_with(|_, _| count += 1);
        count
    }

    /// readdir + fstatat of every entry + unlink of each whose mtime has passed: the
    /// floor of a GC. Returns (entries, unlinked).
    pub fn scan_unlink_past(&self) -> (usize, usize) {
        let now = wall_ns() as i64;
        let (mut count, mut unlinked) = (0, 0);
        let fd = self.fd;
        self.scan_with(|n, st| {
            count += 1;
            let mtime = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec;
            // SAFETY: n is NUL-terminated, fd an open directory.
            if mtime <= now && unsafe { libc::unlinkat(fd, n, 0) } == 0 {
                unlinked += 1;
            }
        });
        (count, unlinked)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: our descriptor.
        unsafe { libc::close(self.fd) };
    }
}
