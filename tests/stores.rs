//! The file driver's own guarantees, with real files in real directories: torn
//! reads, crash-safe versions, permissions, symlinks and hard links, expiry judged
//! from the mtime. What every driver shares is in `tests/conformance.rs`.

mod support;

use session::config::Config;
use session::{SessionError, Sessions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::temp::TempDir;

/// The file driver with its storage root at `root` (sessions in `root/sessions`).
fn file_sessions(root: &Path, lifetime_secs: u64) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "lifetime": {lifetime_secs}}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

/// The file driver with an owner index on `user_id`.
fn owner_sessions(root: &Path) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "owner_key": "user_id"}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

/// Runs `check` in a forked child (for what changes the whole process: its user,
/// its limits) and tells whether it returned true there.
fn in_child(check: impl FnOnce() -> bool) -> bool {
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = check();
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// In a forked child: root becomes nobody (permissions then bind); another user
/// stays itself. False when root could not drop.
fn drop_root() -> bool {
    unsafe { libc::geteuid() != 0 || (libc::setgid(65534) == 0 && libc::setuid(65534) == 0) }
}

/// A payload whose every byte repeats its first, with a length that depends on it:
/// a torn or mixed read is visible.
fn payload(round: usize) -> Vec<u8> {
    let fill = b'A' + (round % 26) as u8;
    let len = [10, 200_000, 3, 40_000, 1_000, 150_000][round % 6] + round % 7;
    let mut data = format!("{len}:").into_bytes();
    data.resize(len.max(data.len()), fill);
    data
}

fn check_payload(data: &[u8]) {
    let text = String::from_utf8_lossy(&data[..data.len().min(16)]);
    let (len, _) = text.split_once(':').expect("payload header");
    let len: usize = len.parse().unwrap();
    assert_eq!(data.len(), len, "torn length");
    let body = &data[data.iter().position(|&c| c == b':').unwrap() + 1..];
    assert!(body.windows(2).all(|w| w[0] == w[1]), "mixed contents");
}

#[test]
fn readers_never_see_a_torn_session_while_writers_update() {
    let dir = TempDir::new("stores");
    // Two independent stores on one directory, as two processes would have.
    let a = Arc::new(file_sessions(dir.path(), 3600));
    let b = Arc::new(file_sessions(dir.path(), 3600));
    let id = a.create(&payload(0)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|scope| {
        for (w, store) in [a.clone(), b.clone()].into_iter().enumerate() {
            let stop = stop.clone();
            scope.spawn(move || {
                let mut round = w;
                while !stop.load(Ordering::Relaxed) {
                    store.update(id.as_bytes(), &payload(round)).unwrap();
                    round += 2;
                }
            });
        }
        for store in [a.clone(), b.clone()] {
            scope.spawn(move || {
                for _ in 0..3000 {
                    check_payload(&store.get(id.as_bytes()).unwrap());
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
    });
    check_payload(&a.get(id.as_bytes()).unwrap());
}

#[test]
fn files_are_private_and_symlinks_are_not_followed() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.path().join("sessions");
    assert_eq!(std::fs::metadata(&sessions).unwrap().mode() & 0o777, 0o700);
    let id = s.create(b"secret").unwrap();
    assert_eq!(
        std::fs::metadata(sessions.join(id.as_str()))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );

    // A symlink named like a session id is not followed, by any operation.
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"do not touch").unwrap();
    let planted = "b".repeat(64);
    std::os::unix::fs::symlink(&outside, sessions.join(&planted)).unwrap();
    // A forged id (401), not an unavailable store (503).
    assert_eq!(
        s.get(planted.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.update(planted.as_bytes(), b"overwrite").unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.touch(planted.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.ttl(planted.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch");
    s.remove_expired().unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch");

    // A session directory that is a symlink is refused.
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, root.join("sessions")).unwrap();
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    );
    let err = Sessions::open(&Config::from_json(json.as_bytes()).unwrap())
        .err()
        .expect("a symlinked directory must be refused");
    assert!(err.message.contains("symlink"), "{}", err.message);

    // A directory readable by others is tightened to 0700.
    let loose = dir.path().join("loose");
    std::fs::create_dir_all(loose.join("sessions")).unwrap();
    std::fs::set_permissions(
        loose.join("sessions"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    file_sessions(&loose, 3600);
    assert_eq!(
        std::fs::metadata(loose.join("sessions")).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_hard_link_under_another_id_is_neither_read_nor_written() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.path().join("sessions");
    let id = s.create(b"victim").unwrap();
    let planted = "e".repeat(64);
    std::fs::hard_link(sessions.join(id.as_str()), sessions.join(&planted)).unwrap();
    // Read: reported as tampering (the file names another id), never its data.
    assert_eq!(
        s.get(planted.as_bytes()).unwrap_err().code,
        SessionError::Corrupt
    );
    // Writes: the file has two names, so no write goes through either of them.
    assert_eq!(
        s.update(planted.as_bytes(), b"overwritten")
            .unwrap_err()
            .code,
        SessionError::Corrupt
    );
    assert_eq!(
        s.regenerate(planted.as_bytes()).unwrap_err().code,
        SessionError::Corrupt
    );
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"victim");
}

#[test]
fn file_expiry_is_judged_from_the_mtime_and_checked_under_lock() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.path().join("sessions");
    let id = s.create(b"live").unwrap();
    let path = sessions.join(id.as_str());
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let expected = SystemTime::now() + Duration::from_secs(3600);
    let skew = expected
        .duration_since(mtime)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_secs(5),
        "mtime is not the expiry time"
    );

    // An mtime in the past (an update killed before restoring it) does not get a
    // live session deleted, and the mtime is repaired.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(10))
        .unwrap();
    assert_eq!(s.remove_expired().unwrap(), 0);
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"live");
    assert!(std::fs::metadata(&path).unwrap().modified().unwrap() > SystemTime::now());

    // A file left by a creator that died before writing anything: kept while it may
    // still be in progress, deleted once abandoned.
    let fresh = sessions.join("c".repeat(64));
    std::fs::write(&fresh, b"").unwrap();
    let old = sessions.join("d".repeat(64));
    std::fs::write(&old, b"garbage that is no session").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        s.get("c".repeat(64).as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.get("d".repeat(64).as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(s.remove_expired().unwrap(), 1);
    assert!(fresh.exists() && !old.exists());
    // Files that are not sessions are left alone.
    std::fs::write(sessions.join("README"), b"not ours").unwrap();
    s.remove_expired().unwrap();
    assert!(sessions.join("README").exists());
}

/// One damage of a session file: 7 bytes flipped from `cut`, as a write cut short
/// or a bad sector would leave them, and which versions it leaves whole.
struct Damage {
    cut: usize,
    bytes: Vec<u8>,
    new_intact: bool,
    old_intact: bool,
    /// Some descriptor still checks out (its data may not).
    a_descriptor_intact: bool,
}

/// A session written as `one`, then `two`: its id, its file, the file's bytes and
/// the damages from every `step`-th offset. The layout after create + update:
/// slot 0 names version one, slot 1 version two; the data areas follow the
/// 144-byte header in that order.
fn two_versions_and_their_damages(
    s: &Sessions,
    dir: &Path,
    (one, two): (&[u8], &[u8]),
    step: usize,
) -> (session::SessionId, std::path::PathBuf, Vec<u8>, Vec<Damage>) {
    let id = s.create(one).unwrap();
    s.update(id.as_bytes(), two).unwrap();
    let path = dir.join("sessions").join(id.as_str());
    let good = std::fs::read(&path).unwrap();
    let (desc0, desc1) = (0..72, 72..144);
    let old_data = 144..144 + one.len();
    let new_data = old_data.end..old_data.end + two.len();
    assert_eq!(good.len(), new_data.end);
    let overlaps = |cut: usize, r: &std::ops::Range<usize>| cut < r.end && cut + 7 > r.start;
    let damages = (0..good.len())
        .step_by(step)
        .map(|cut| {
            let mut bytes = good.clone();
            for byte in bytes.iter_mut().skip(cut).take(7) {
                *byte ^= 0x5a;
            }
            Damage {
                cut,
                bytes,
                new_intact: !overlaps(cut, &desc1) && !overlaps(cut, &new_data),
                old_intact: !overlaps(cut, &desc0) && !overlaps(cut, &old_data),
                a_descriptor_intact: !overlaps(cut, &desc0) || !overlaps(cut, &desc1),
            }
        })
        .collect();
    (id, path, good, damages)
}

#[test]
fn a_torn_update_leaves_the_old_version_and_damage_is_corrupt() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let (one, two) = (&b"version one"[..], &b"version two, longer"[..]);
    let (id, path, good, damages) = two_versions_and_their_damages(&s, dir.path(), (one, two), 1);
    // Every damage yields the version that is still intact, never garbage.
    for damage in damages {
        let cut = damage.cut;
        std::fs::write(&path, &damage.bytes).unwrap();
        let got = s.get(id.as_bytes());
        if damage.new_intact {
            assert_eq!(got.unwrap(), two, "damage at {cut}");
        } else if damage.old_intact {
            // Only the older version checks out: it must be found (the reader falls
            // back to it under the shared lock).
            assert_eq!(
                got.unwrap(),
                one,
                "damage at {cut}: no fallback to the intact older version"
            );
        } else if damage.a_descriptor_intact {
            // A descriptor is intact but its data is not: damage, not a miss.
            assert_eq!(
                got.unwrap_err().code,
                SessionError::Corrupt,
                "damage at {cut}"
            );
        } else {
            assert_eq!(
                got.unwrap_err().code,
                SessionError::NotFound,
                "damage at {cut}"
            );
        }
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), two);
}

#[test]
fn a_write_after_damage_builds_on_the_intact_version_or_reports_it() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let (one, two) = (&br#"{"v":"one"}"#[..], &br#"{"v":"two, longer"}"#[..]);
    let (id, path, _, damages) = two_versions_and_their_damages(&s, dir.path(), (one, two), 3);
    for damage in damages {
        let cut = damage.cut;
        for write in ["update", "set_value", "touch then update"] {
            std::fs::write(&path, &damage.bytes).unwrap();
            let after = format!("{{\"after\":\"{write} at {cut}\"}}");
            let result = match write {
                "update" => s.update(id.as_bytes(), after.as_bytes()),
                "set_value" => s.set_value(id.as_bytes(), b"k", b"1"),
                _ => s
                    .touch(id.as_bytes())
                    .and_then(|()| s.update(id.as_bytes(), after.as_bytes())),
            };
            let at = format!("{write}, damage at {cut}");
            if damage.new_intact || damage.old_intact {
                result.unwrap_or_else(|e| panic!("{at}: {e:?}"));
                if write == "set_value" {
                    // Built on the intact version: the newest one that is whole.
                    let v: &[u8] = if damage.new_intact {
                        b"\"two, longer\""
                    } else {
                        b"\"one\""
                    };
                    assert_eq!(
                        s.get_value(id.as_bytes(), b"v").unwrap().unwrap(),
                        v,
                        "{at}"
                    );
                    assert_eq!(s.get_value(id.as_bytes(), b"k").unwrap().unwrap(), b"1");
                } else {
                    assert_eq!(s.get(id.as_bytes()).unwrap(), after.as_bytes(), "{at}");
                }
                // And the next write too: the new version is the newest.
                s.update(id.as_bytes(), b"next").unwrap();
                assert_eq!(s.get(id.as_bytes()).unwrap(), b"next", "{at}");
            } else if damage.a_descriptor_intact {
                assert_eq!(result.unwrap_err().code, SessionError::Corrupt, "{at}");
            } else {
                assert_eq!(result.unwrap_err().code, SessionError::NotFound, "{at}");
            }
        }
    }
}

#[test]
fn remove_expired_judges_ended_files_by_fstatat_and_leaves_the_rest() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.path().join("sessions");
    let live = s.create(b"live").unwrap();
    let ended = s.create_ttl(b"ended", 1).unwrap();
    let recent = s.create_ttl(b"recent", 1).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    // `ended` ended long enough ago for the fast path; `recent` just now.
    let path = sessions.join(ended.as_str());
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(mtime <= SystemTime::now());
    std::thread::sleep(Duration::from_millis(2100));
    let fresh = s.create_ttl(b"fresh", 1).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(s.remove_expired().unwrap(), 3);
    for id in [&ended, &recent, &fresh] {
        assert!(!sessions.join(id.as_str()).exists());
    }
    assert_eq!(s.get(live.as_bytes()).unwrap(), b"live");
    assert_eq!(s.count().unwrap(), 1);

    // An mtime in the past that the driver did not set (someone ran `touch -d`,
    // or a write was cut short before its futimens): the ctime is later, so
    // remove_expired asks the descriptor, which says live.
    let path = sessions.join(live.as_str());
    let old = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let hour_ago = libc::timespec {
        tv_sec: (session::store::now_ns() / 1_000_000_000 - 3600) as libc::time_t,
        tv_nsec: 0,
    };
    let times = [hour_ago, hour_ago];
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, old.as_ptr(), times.as_ptr(), 0) },
        0
    );
    assert_eq!(s.remove_expired().unwrap(), 0);
    assert_eq!(s.get(live.as_bytes()).unwrap(), b"live");
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn a_regenerate_killed_before_its_rename_leaves_the_session_under_the_old_id() {
    use session::store::file::format::{self, descriptors, Descriptor, DESC_LEN};
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    // What a regenerate does before its rename: the other slot gets a descriptor
    // tagged with the new id. Then the process dies: no rename.
    // With `updates` writes first, the live version is in either slot.
    let interrupted = |data: &[u8], updates: usize| {
        let id = s.create(data).unwrap();
        for _ in 0..updates {
            s.update(id.as_bytes(), data).unwrap();
        }
        let new = session::SessionId::generate().unwrap();
        let path = dir.path().join("sessions").join(id.as_str());
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut header = vec![0u8; 2 * DESC_LEN];
        file.read_exact_at(&mut header, 0).unwrap();
        let (slot, live) = descriptors(&header)[0];
        let moved = Descriptor {
            seq: live.seq + 1,
            tag: format::tag(&new),
            ..live
        };
        file.write_all_at(&moved.encode(), ((1 - slot) * DESC_LEN) as u64)
            .unwrap();
        (id, new)
    };
    for updates in [0, 1] {
        // Each kind of call on the old id finds the session again (get, ttl,
        // update); the new id was never given out and stays unknown.
        let (a, a_new) = interrupted(b"read", updates);
        assert_eq!(s.get(a.as_bytes()).unwrap(), b"read");
        let (b, _) = interrupted(b"ttl", updates);
        assert!(s.ttl(b.as_bytes()).unwrap().as_secs() > 3500);
        let (c, _) = interrupted(b"update", updates);
        s.update(c.as_bytes(), b"updated").unwrap();
        assert_eq!(s.get(c.as_bytes()).unwrap(), b"updated");
        assert_eq!(
            s.get(a_new.as_bytes()).unwrap_err().code,
            SessionError::NotFound
        );
        // A regenerate now works.
        let fresh = s.regenerate(a.as_bytes()).unwrap();
        assert_eq!(s.get(fresh.as_bytes()).unwrap(), b"read");
        assert_eq!(s.count().unwrap(), 3 * (updates + 1) as u64);
    }
}

#[test]
fn the_owner_index_is_files_0600_in_0700_directories_and_remove_expired_prunes_it() {
    use session::seal::OwnerTag;
    use session::SessionId;
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let store = s.store();
    let (kept, ended) = (OwnerTag::plain("kept"), OwnerTag::plain("ended"));
    let now = session::store::now_ns();
    let a = SessionId::generate().unwrap();
    let b = SessionId::generate().unwrap();
    store.index_add(&kept, &a, now + 3_600_000_000_000).unwrap();
    store.index_add(&ended, &b, now + 300_000_000).unwrap();
    // A lower bound never shortens an entry.
    store.index_add(&kept, &a, now + 1).unwrap();
    let owners = dir.path().join("sessions").join("owners");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&owners), 0o700);
    assert_eq!(mode(&owners.join(kept.as_str())), 0o700);
    assert_eq!(mode(&owners.join(kept.as_str()).join(a.as_str())), 0o600);
    assert_eq!(store.index_list(&ended).unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(400));
    s.remove_expired().unwrap();
    assert!(
        !owners.join(ended.as_str()).exists(),
        "an owner dir left behind"
    );
    assert_eq!(store.index_list(&kept).unwrap()[0].0, a);
    assert!(store.index_list(&ended).unwrap().is_empty());
    // The index directory is not mistaken for a session.
    assert_eq!(s.count().unwrap(), 0);
    // A re-add after the owner dir was removed works.
    store
        .index_add(&ended, &b, now + 3_600_000_000_000)
        .unwrap();
    assert_eq!(store.index_list(&ended).unwrap().len(), 1);
}

#[test]
fn destroy_removes_a_damaged_file_also_with_an_owner_index() {
    let dir = TempDir::new("stores");
    let s = owner_sessions(dir.path());
    let id = s.create(b"{\"user_id\":1,\"x\":\"abcdefgh\"}").unwrap();
    let path = dir.path().join("sessions").join(id.as_str());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        s.get(id.as_bytes()).unwrap_err().code,
        SessionError::Corrupt
    );
    s.destroy(id.as_bytes()).unwrap();
    assert!(!path.exists());
    assert_eq!(
        s.get(id.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
}

#[test]
fn a_damaged_file_or_a_create_in_flight_never_fails_the_owner_calls() {
    let dir = TempDir::new("stores");
    let s = owner_sessions(dir.path());
    let damaged = s.create(b"{\"user_id\":42,\"n\":1}").unwrap();
    let intact = s.create(b"{\"user_id\":42,\"n\":2}").unwrap();
    let path = dir.path().join("sessions").join(damaged.as_str());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(s.list_owner(b"42").unwrap(), vec![intact]);
    assert_eq!(s.count_owner(b"42").unwrap(), 1);
    // Creates (12 KB, so a write is not one page) racing with owner reads: a file
    // being written is never taken for a damaged one.
    let big = format!("{{\"user_id\":7,\"pad\":\"{}\"}}", "x".repeat(12 * 1024));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut failures = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_millis(1500);
            while std::time::Instant::now() < deadline {
                let id = s.create(big.as_bytes()).unwrap();
                s.destroy(id.as_bytes()).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        while !stop.load(Ordering::Relaxed) {
            if s.list_owner(b"7").is_err() {
                failures += 1;
            }
        }
    });
    assert_eq!(failures, 0, "owner reads failed while creates ran");
    assert_eq!(s.destroy_owner(b"42").unwrap(), 1);
}

#[test]
fn a_directory_renamed_away_is_unavailable_on_every_call_until_it_is_back() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let id = s.create(b"kept").unwrap();
    let (path, away) = (dir.path().join("sessions"), dir.path().join("away"));
    std::fs::rename(&path, &away).unwrap();
    // Within the check interval (1 s) a call may still reach the moved directory;
    // once a check has seen it gone, every call fails until it is back.
    std::thread::sleep(Duration::from_millis(1100));
    let mut results = Vec::new();
    for _ in 0..30 {
        results.push(s.get(id.as_bytes()).map_err(|e| e.code));
        results.push(s.create(b"new").map(|_| Vec::new()).map_err(|e| e.code));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        results
            .iter()
            .all(|r| *r == Err(SessionError::StorageUnavailable)),
        "{results:?}"
    );
    assert_eq!(
        std::fs::read_dir(&away).unwrap().count(),
        1,
        "a create went to the moved directory"
    );
    std::fs::rename(&away, &path).unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"kept");
}

#[test]
fn symlinks_planted_in_the_owner_index_are_never_followed() {
    use session::seal::OwnerTag;
    use session::SessionId;
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let store = s.store();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let owners = dir.path().join("sessions").join("owners");
    let tag = OwnerTag::plain("victim");
    let id = SessionId::generate().unwrap();
    // A symlink in place of owners/TAG, then in place of owners itself.
    std::fs::create_dir(&owners).unwrap();
    std::os::unix::fs::symlink(&outside, owners.join(tag.as_str())).unwrap();
    assert!(store.index_add(&tag, &id, u64::MAX / 2).is_err());
    assert!(store.index_list(&tag).is_err());
    std::fs::remove_file(owners.join(tag.as_str())).unwrap();
    std::fs::remove_dir(&owners).unwrap();
    std::os::unix::fs::symlink(&outside, &owners).unwrap();
    assert!(store.index_add(&tag, &id, u64::MAX / 2).is_err());
    s.remove_expired().unwrap_err();
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through a symlink"
    );
}

#[test]
fn sessions_of_several_mebibytes_are_read_whole_after_updates() {
    let dir = TempDir::new("stores");
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "max_data_size": 8388608}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        dir.path().display()
    );
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let big = |fill: u8, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| fill.wrapping_add((i % 253) as u8))
            .collect()
    };
    let id = s.create(&big(1, 5 << 20)).unwrap();
    assert!(s.get(id.as_bytes()).unwrap() == big(1, 5 << 20));
    // Both versions in the file, the live one after the other.
    s.update(id.as_bytes(), &big(2, 7 << 20)).unwrap();
    assert!(s.get(id.as_bytes()).unwrap() == big(2, 7 << 20));
    s.update(id.as_bytes(), &big(3, 3 << 20)).unwrap();
    assert!(s.get(id.as_bytes()).unwrap() == big(3, 3 << 20));
}

#[test]
fn a_storage_root_that_cannot_be_used_is_refused_with_what_is_wrong() {
    let dir = TempDir::new("stores");
    let config = |root: &str| {
        let json = format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}},
                "storages": {{"s": {{"type": "filesystem", "root": {}}}}}}}"#,
            serde_json::to_string(root).unwrap()
        );
        Config::from_json(json.as_bytes())
    };
    for root in ["", "/tmp/a\0b"] {
        let err = config(root).unwrap_err();
        assert_eq!(err.code, SessionError::Config);
        assert!(err.message.contains("is not a usable directory"), "{err:?}");
    }
    // A root that is a file: sessions/ cannot be created in it.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = Sessions::open(&config(file.to_str().unwrap()).unwrap())
        .err()
        .expect("a file as the storage root");
    assert!(err.message.contains("cannot create it"), "{err:?}");
    assert!(err.message.contains("Not a directory"), "{err:?}");
}

/// Descriptors of this process open on `path` (a directory in use by a store).
fn descriptors_on(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn the_directory_is_reopened_only_when_it_was_replaced() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let path = dir.path().join("sessions");
    let id = s.create(b"kept").unwrap();
    // Calls over three check intervals: the one directory, opened once.
    let until = std::time::Instant::now() + Duration::from_millis(3300);
    while std::time::Instant::now() < until {
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(descriptors_on(&path), 1);

    // Replaced by another store's directory: the first miss checks the path again
    // and finds the session there, before any periodic check.
    let other = TempDir::new("stores");
    let t = file_sessions(other.path(), 3600);
    let theirs = t.create(b"theirs").unwrap();
    std::fs::rename(&path, dir.path().join("old")).unwrap();
    std::fs::rename(other.path().join("sessions"), &path).unwrap();
    assert_eq!(s.get(theirs.as_bytes()).unwrap(), b"theirs");
    let made = s.create(b"new").unwrap();
    assert!(path.join(made.as_str()).exists());
    // This store's new descriptor, and the other store's, which moved with it.
    assert_eq!(descriptors_on(&path), 2);
    drop(t);

    // Deleted and made again: the first create meets the deleted directory, checks
    // the path again and lands in the new one; so does a get.
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let made = s.create(b"after").unwrap();
    assert!(path.join(made.as_str()).exists());
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::copy(
        dir.path().join("old").join(id.as_str()),
        path.join(id.as_str()),
    )
    .unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"kept");
    // And a destroy.
    let saved = std::fs::read(path.join(id.as_str())).unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join(id.as_str()), saved).unwrap();
    s.destroy(id.as_bytes()).unwrap();
    assert!(
        !path.join(id.as_str()).exists(),
        "destroy missed the new directory"
    );
}

#[test]
fn two_stores_on_one_directory_lose_no_per_key_update() {
    // As two processes would: each store has its own in-process locks, so only
    // the files' locks keep their read-modify-writes apart.
    let dir = TempDir::new("stores");
    let a = file_sessions(dir.path(), 3600);
    let b = file_sessions(dir.path(), 3600);
    let id = a.create(b"{}").unwrap();
    const EACH: usize = 150;
    std::thread::scope(|scope| {
        for (t, store) in [&a, &b, &a, &b].into_iter().enumerate() {
            scope.spawn(move || {
                for k in 0..EACH {
                    let key = format!("t{t}k{k}");
                    store
                        .set_value(id.as_bytes(), key.as_bytes(), b"1")
                        .unwrap();
                }
            });
        }
    });
    let data: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&b.get(id.as_bytes()).unwrap()).unwrap();
    assert_eq!(data.len(), 4 * EACH, "lost set_values");
}

#[test]
fn a_process_out_of_descriptors_gets_an_unavailable_store_not_a_missing_session() {
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let id = s.create(b"kept").unwrap();
    // In a child: every descriptor taken, then a get and a create.
    assert!(in_child(|| {
        let rl = libc::rlimit {
            rlim_cur: 256,
            rlim_max: 256,
        };
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
        while unsafe { libc::dup(0) } >= 0 {}
        let out_of_descriptors = |result: session::Result<_>| {
            matches!(result, Err(session::Error { code: SessionError::StorageUnavailable, message })
                if message.contains("Too many open files"))
        };
        out_of_descriptors(s.get(id.as_bytes()).map(|_| ()))
            && out_of_descriptors(s.create(b"new").map(|_| ()))
    }));
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"kept");
}

#[test]
fn a_session_is_written_up_to_the_largest_counters_and_no_further() {
    use session::store::file::format::{Descriptor, DESC_LEN, MAX_COUNTER};
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    // A write adds at most 2 to seq and 1 to version: these are the last
    // counters a write may start from.
    let cases = [
        (MAX_COUNTER - 3, MAX_COUNTER - 2, true),
        (MAX_COUNTER - 2, 5, false),
        (5, MAX_COUNTER - 1, false),
    ];
    for (seq, version, writable) in cases {
        let id = s.create(b"start").unwrap();
        let path = dir.path().join("sessions").join(id.as_str());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(&path)
            .unwrap();
        let mut slot = [0u8; DESC_LEN];
        file.read_exact_at(&mut slot, 0).unwrap();
        let desc = Descriptor {
            seq,
            version,
            ..Descriptor::decode(&slot).expect("slot 0 holds the created version")
        };
        file.write_all_at(&desc.encode(), 0).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"start");
        let result = s.update(id.as_bytes(), b"next");
        let at = format!("seq {seq}, version {version}");
        if writable {
            result.unwrap_or_else(|e| panic!("{at}: {e:?}"));
            let (data, v) = s.get_versioned(id.as_bytes()).unwrap();
            assert_eq!(data, b"next", "{at}");
            assert_eq!(v, MAX_COUNTER - 1, "{at}");
        } else {
            assert_eq!(result.unwrap_err().code, SessionError::Corrupt, "{at}");
            assert_eq!(s.get(id.as_bytes()).unwrap(), b"start", "{at}");
        }
    }
}

#[test]
fn a_process_that_may_not_write_the_directory_gets_errors_never_a_silent_success() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("stores");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.path().join("sessions");
    let id = s.create(b"kept").unwrap();
    // In a child that may not write in the directory (root drops to nobody, for
    // whom the 0700 directory is closed; another user makes it 0500 first).
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let denied_in_child = in_child(|| {
        let denied = |result: session::Result<()>| {
            matches!(result, Err(session::Error { code: SessionError::StorageUnavailable, message })
                if message.contains("Permission denied"))
        };
        drop_root() && denied(s.destroy(id.as_bytes())) && denied(s.create(b"new").map(|_| ()))
    });
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(denied_in_child);
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"kept");
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn an_owner_index_entry_that_cannot_be_removed_is_an_error() {
    use session::seal::OwnerTag;
    use session::SessionId;
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("stores");
    let s = owner_sessions(dir.path());
    // An entry of a session that never came, with a bound (a minute from now)
    // that tells it was written long ago: the next read of the owner removes it.
    let tag = OwnerTag::plain("9");
    let stale = SessionId::generate().unwrap();
    let now = session::store::now_ns();
    s.store()
        .index_add(&tag, &stale, now + 60_000_000_000)
        .unwrap();
    // A child that may read the index but not write it: nobody (for root), with
    // the directories opened to reading; or this user with them read-only.
    let sessions = dir.path().join("sessions");
    let owner_dir = sessions.join("owners").join(tag.as_str());
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root { 0o755 } else { 0o555 };
    for path in [&sessions, &sessions.join("owners"), &owner_dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let denied_in_child = in_child(|| {
        drop_root()
            && matches!(s.list_owner(b"9"), Err(session::Error { code: SessionError::StorageUnavailable, message })
                if message.contains("Permission denied"))
    });
    for path in [&sessions, &sessions.join("owners"), &owner_dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert!(denied_in_child);
    assert!(s.list_owner(b"9").unwrap().is_empty());
    assert!(s.store().index_list(&tag).unwrap().is_empty());
}
