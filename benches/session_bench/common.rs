//! What every driver's section shares: session data and file names, a PRNG, the C
//! API with its checks kept outside the timed region, and small helpers.

use session::ffi::{
    session_create, session_init_json, session_last_error, session_store_close,
    session_store_create, session_store_create_ttl, session_store_open_json, SessionStore,
};
use std::ffi::{c_char, CStr, CString};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DATA_LEN: usize = 200;

// ---------------------------------------------------------------------------
// Data, names, PRNG

/// ~200-byte JSON-like session data; `tag` varies its content.
pub fn json_data(tag: u64) -> CString {
    let mut s = format!(
        r#"{{"user_id":{},"name":"Ada Lovelace","email":"ada@example.org","roles":["admin","editor"],"csrf":"{:016x}{:016x}","cart":[17,42,99],"theme":"dark","lang":"en-GB","flash":""#,
        tag % 1_000_000,
        tag.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        tag ^ 0xdead_beef
    );
    while s.len() < DATA_LEN - 2 {
        s.push('x');
    }
    s.push_str("\"}");
    assert_eq!(s.len(), DATA_LEN);
    CString::new(s).unwrap()
}

/// A 64-character file name (like a session id, but not one: the first character is
/// not hex, so the store's scans skip it), NUL-terminated.
pub type Name = [u8; 65];

pub fn name(prefix: char, n: u64) -> Name {
    let s = format!("{prefix}{n:063x}");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(s.as_bytes());
    out
}

pub fn cname(n: &Name) -> *const c_char {
    n.as_ptr().cast()
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------
// The C API, with checks outside the timed region

pub fn last_error() -> String {
    let p = session_last_error();
    if p.is_null() {
        "(no error)".into()
    } else {
        // SAFETY: a NUL-terminated string owned by libsession, valid until the next call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Configures the global store (the functions without a handle).
pub fn init(json: &CStr) {
    // SAFETY: valid NUL-terminated string.
    if unsafe { session_init_json(json.as_ptr()) } == 0 {
        panic!("session_init_json failed: {}", last_error());
    }
}

/// A file store in `root/sessions`; `extra` adds keys to `sessions`
/// (`idle_timeout`, `regenerate_grace`).
pub fn file_config_with(root: &Path, lifetime: u64, extra: serde_json::Value) -> CString {
    let mut sessions = serde_json::json!(
        {"driver": "storage", "storage_name": "bench", "lifetime": lifetime}
    );
    if let (Some(s), Some(e)) = (sessions.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let v = serde_json::json!({
        "sessions": sessions,
        "storages": {"bench": {"type": "filesystem", "root": root.to_str().expect("utf-8 path")}}
    });
    CString::new(v.to_string()).unwrap()
}

pub fn file_config(root: &Path, lifetime: u64) -> CString {
    file_config_with(root, lifetime, serde_json::json!({}))
}

pub fn memory_config(lifetime: u64) -> CString {
    let v = serde_json::json!({"sessions": {"driver": "memory", "lifetime": lifetime}});
    CString::new(v.to_string()).unwrap()
}

/// Takes a malloc'd id returned by `what` (create, regenerate), checks it, frees it.
pub fn take_id_of(p: *mut c_char, what: &str) -> CString {
    if p.is_null() {
        panic!("{what} failed: {}", last_error());
    }
    // SAFETY: p is a NUL-terminated malloc'd string that we own.
    let id = unsafe { CStr::from_ptr(p) }.to_owned();
    // SAFETY: malloc'd by libsession, freed once.
    unsafe { libc::free(p.cast()) };
    assert_eq!(id.as_bytes().len(), 64);
    id
}

pub fn take_id(p: *mut c_char) -> CString {
    take_id_of(p, "session_create")
}

/// A `session_store_t` handle (`session_store_open_json`), closed on drop. The
/// handle is documented as usable from many threads at once.
pub struct Handle(*mut SessionStore);

// SAFETY: libsession documents a handle as usable by many threads at once; it is
// closed only on drop, after every thread that borrowed it is done.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Handle {
    pub fn open(json: &CStr) -> Handle {
        // SAFETY: NUL-terminated JSON; NULL name: the default store.
        let h = unsafe { session_store_open_json(json.as_ptr(), std::ptr::null()) };
        if h.is_null() {
            panic!("session_store_open_json failed: {}", last_error());
        }
        Handle(h)
    }

    pub fn raw(&self) -> *const SessionStore {
        self.0
    }

    /// `session_store_create`, untimed, checked.
    pub fn create(&self, data: &CStr) -> CString {
        // SAFETY: open handle, NUL-terminated data.
        take_id_of(
            unsafe { session_store_create(self.0, data.as_ptr()) },
            "session_store_create",
        )
    }

    /// `session_store_create_ttl`, untimed, checked.
    pub fn create_ttl(&self, data: &CStr, ttl: i64) -> CString {
        // SAFETY: open handle, NUL-terminated data.
        take_id_of(
            unsafe { session_store_create_ttl(self.0, data.as_ptr(), ttl as _) },
            "session_store_create_ttl",
        )
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { session_store_close(self.0) };
    }
}

/// Creates `n` sessions in the global store; also returns the µs/create of each
/// tenth of the work (a tenth that is much slower than the others hit an ext4 block
/// group full of recently freed inodes, see main.rs).
pub fn populate(n: usize, data: &CStr) -> (Vec<CString>, Duration, Vec<f64>) {
    // SAFETY: data is NUL-terminated.
    populate_with(n, |_| take_id(unsafe { session_create(data.as_ptr()) }))
}

/// Creates `n` sessions with `create(i)`, timing each tenth.
pub fn populate_with(
    n: usize,
    mut create: impl FnMut(usize) -> CString,
) -> (Vec<CString>, Duration, Vec<f64>) {
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    let mut tenths = Vec::new();
    let chunk = n.div_ceil(10).max(1);
    let mut tc = Instant::now();
    for i in 0..n {
        ids.push(create(i));
        if (i + 1) % chunk == 0 || i + 1 == n {
            let len = (i % chunk + 1) as f64;
            tenths.push((tc.elapsed().as_nanos() as f64 / len / 1e3).round());
            tc = Instant::now();
        }
    }
    (ids, t.elapsed(), tenths)
}

#[inline(always)]
pub fn timed(f: impl FnOnce()) -> u64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as u64
}

pub fn os_check(ok: bool, what: &str) {
    if !ok {
        panic!("{what}: {}", io::Error::last_os_error());
    }
}

pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ms(ns: f64) -> String {
    format!("{:.2}", ns / 1e6)
}

pub fn progress(start: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", start.elapsed().as_secs_f64());
}

/// Sleeps until `since + wait`.
pub fn sleep_until(since: Instant, wait: Duration) {
    std::thread::sleep(wait.saturating_sub(since.elapsed()));
}

pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The filesystem type of `path` (`statfs` f_type), if it can be read.
pub fn fs_type(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs fills the struct it is given.
    unsafe {
        let mut sfs: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut sfs) == 0).then_some(sfs.f_type as u64)
    }
}

/// Removes a directory of our own (in /dev/shm) at the end, also on a panic.
pub struct RemoveDir(Option<PathBuf>);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            if let Err(err) = std::fs::remove_dir_all(d) {
                eprintln!("cleanup of {}: {err}", d.display());
            }
        }
    }
}

/// A directory on tmpfs for a section that must run there: `run_dir/label` if the
/// run directory is on tmpfs, else a directory of ours in /dev/shm (removed when the
/// guard drops), else `run_dir/label` anyway.
pub fn tmpfs_root(run_dir: &Path, label: &str) -> (PathBuf, RemoveDir) {
    if fs_type(run_dir) == Some(TMPFS_MAGIC) {
        return (run_dir.join(label), RemoveDir(None));
    }
    let shm = Path::new("/dev/shm");
    if fs_type(shm) == Some(TMPFS_MAGIC) {
        let d = shm.join(format!("session_bench.{}.{label}", std::process::id()));
        if std::fs::create_dir(&d).is_ok() {
            return (d.clone(), RemoveDir(Some(d)));
        }
    }
    (run_dir.join(label), RemoveDir(None))
}

pub fn fs_name(t: u64) -> &'static str {
    match t {
        0xEF53 => "ext4",
        TMPFS_MAGIC => "tmpfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlayfs",
        _ => "?",
    }
}

/// Median of a list of values (NaN when empty).
pub fn median_of(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One timed `session_regenerate` of a random id of `ids`; the new id takes its place.
pub fn regenerate_one(ids: &mut [CString], rng: &mut Rng) -> u64 {
    let j = rng.below(ids.len());
    let id = ids[j].as_ptr();
    let mut out = std::ptr::null_mut();
    // SAFETY: a valid NUL-terminated id.
    let ns = timed(|| out = unsafe { session::ffi::session_regenerate(id) });
    ids[j] = take_id_of(out, "session_regenerate");
    ns
}
