//! Behaviour of the Rust core on every driver, with real files in real directories.

use session::config::{Config, DriverConfig};
use session::{SessionError, Sessions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory that is removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("libsession-stores-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(driver: DriverConfig, lifetime_secs: u64) -> Config {
    Config {
        lifetime: Duration::from_secs(lifetime_secs),
        max_data_size: 1 << 20,
        driver,
    }
}

fn file_sessions(dir: &Path, lifetime_secs: u64) -> Sessions {
    Sessions::open(&config(
        DriverConfig::File {
            dir: dir.join("sessions"),
            fsync: false,
        },
        lifetime_secs,
    ))
    .unwrap()
}

/// Runs `check` on the file driver (fsync off and on) and on the memory driver.
fn on_every_driver(lifetime_secs: u64, check: impl Fn(&Sessions, Option<&Path>)) {
    let dir = TempDir::new();
    check(
        &file_sessions(&dir.0, lifetime_secs),
        Some(&dir.0.join("sessions")),
    );
    let dir = TempDir::new();
    let durable = Sessions::open(&config(
        DriverConfig::File {
            dir: dir.0.join("sessions"),
            fsync: true,
        },
        lifetime_secs,
    ))
    .unwrap();
    check(&durable, Some(&dir.0.join("sessions")));
    check(
        &Sessions::open(&config(DriverConfig::Memory, lifetime_secs)).unwrap(),
        None,
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn create_get_update_destroy() {
    on_every_driver(3600, |s, dir| {
        let id = s.create(b"{\"user_id\":42}").unwrap();
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"user_id\":42}");
        s.update(id.as_bytes(), b"{\"user_id\":43,\"role\":\"admin\"}")
            .unwrap();
        assert_eq!(
            s.get(id.as_bytes()).unwrap(),
            b"{\"user_id\":43,\"role\":\"admin\"}"
        );
        // Shrinking and growing again keeps the newest data each time.
        for len in [1usize, 5000, 3, 70000, 0, 10] {
            let data = vec![b'a' + (len % 26) as u8; len];
            s.update(id.as_bytes(), &data).unwrap();
            assert_eq!(s.get(id.as_bytes()).unwrap(), data);
        }
        if let Some(dir) = dir {
            assert_eq!(files_in(dir), vec![id.to_string()]);
        }
        s.destroy(id.as_bytes()).unwrap();
        assert_eq!(
            s.get(id.as_bytes()).unwrap_err().code,
            SessionError::NotFound
        );
        // Destroying again succeeds; updating does not bring it back.
        s.destroy(id.as_bytes()).unwrap();
        assert_eq!(
            s.update(id.as_bytes(), b"x").unwrap_err().code,
            SessionError::NotFound
        );
        assert_eq!(
            s.get(id.as_bytes()).unwrap_err().code,
            SessionError::NotFound
        );
        if let Some(dir) = dir {
            assert!(
                files_in(dir).is_empty(),
                "update after destroy created a file"
            );
        }
    });
}

#[test]
fn sessions_expire_and_are_never_resurrected() {
    on_every_driver(1, |s, dir| {
        let id = s.create(b"short-lived").unwrap();
        let keep = s.create(b"also short").unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"short-lived");
        // An update keeps the expiry: it does not extend the session.
        std::thread::sleep(Duration::from_millis(600));
        s.update(keep.as_bytes(), b"updated").unwrap();
        std::thread::sleep(Duration::from_millis(700));
        for id in [&id, &keep] {
            assert_eq!(
                s.get(id.as_bytes()).unwrap_err().code,
                SessionError::NotFound
            );
            assert_eq!(
                s.update(id.as_bytes(), b"again").unwrap_err().code,
                SessionError::NotFound
            );
            assert_eq!(
                s.get(id.as_bytes()).unwrap_err().code,
                SessionError::NotFound
            );
        }
        let live = s.create(b"live").unwrap();
        assert_eq!(s.remove_expired().unwrap(), 2);
        assert_eq!(s.get(live.as_bytes()).unwrap(), b"live");
        if let Some(dir) = dir {
            assert_eq!(files_in(dir), vec![live.to_string()]);
        }
        assert_eq!(s.remove_expired().unwrap(), 0);
    });
}

#[test]
fn hostile_ids_are_rejected_before_touching_the_store() {
    on_every_driver(3600, |s, dir| {
        let hostile: Vec<Vec<u8>> = vec![
            b"../../etc/passwd".to_vec(),
            vec![b'a'; 63],
            vec![b'a'; 65],
            vec![b'A'; 64],
            [vec![b'a'; 20], vec![0], vec![b'a'; 43]].concat(),
            vec![],
            [b"../".to_vec(), vec![b'a'; 61]].concat(),
            [b"/tmp/".to_vec(), vec![b'a'; 59]].concat(),
            vec![b'a'; 100_000],
        ];
        for id in &hostile {
            assert_eq!(s.get(id).unwrap_err().code, SessionError::InvalidArgument);
            assert_eq!(
                s.update(id, b"x").unwrap_err().code,
                SessionError::InvalidArgument
            );
            assert_eq!(
                s.destroy(id).unwrap_err().code,
                SessionError::InvalidArgument
            );
        }
        if let Some(dir) = dir {
            assert!(files_in(dir).is_empty());
        }
    });
}

#[test]
fn any_bytes_round_trip_and_size_is_limited() {
    on_every_driver(3600, |s, _| {
        let binary: Vec<u8> = (1..=255u8)
            .chain(b"\"quoted\" \n\r\t {}".iter().copied())
            .collect();
        let id = s.create(&binary).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), binary);
        let mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8 | 1).collect();
        let big = s.create(&mib).unwrap();
        assert_eq!(s.get(big.as_bytes()).unwrap(), mib);
        s.update(id.as_bytes(), &mib).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), mib);
        let over = vec![b'x'; (1 << 20) + 1];
        let err = s.create(&over).unwrap_err();
        assert_eq!(err.code, SessionError::TooLarge);
        assert!(err.message.contains("max_data_size"), "{}", err.message);
        assert_eq!(
            s.update(id.as_bytes(), &over).unwrap_err().code,
            SessionError::TooLarge
        );
        assert_eq!(
            s.get(id.as_bytes()).unwrap(),
            mib,
            "a rejected update changed the data"
        );
    });
}

#[test]
fn eight_threads_ten_thousand_mixed_operations_each() {
    on_every_driver(3600, |s, dir| {
        std::thread::scope(|scope| {
            for t in 0..8u32 {
                scope.spawn(move || {
                    let mut live: Vec<(session::SessionId, Vec<u8>)> = Vec::new();
                    for i in 0..10_000u32 {
                        let data = format!("{{\"thread\":{t},\"op\":{i}}}").into_bytes();
                        match i % 10 {
                            0..=2 => {
                                let id = s.create(&data).unwrap();
                                live.push((id, data));
                            }
                            3..=5 if !live.is_empty() => {
                                let (id, expect) = &live[i as usize % live.len()];
                                assert_eq!(
                                    &s.get(id.as_bytes()).unwrap(),
                                    expect,
                                    "lost or wrong session"
                                );
                            }
                            6..=8 if !live.is_empty() => {
                                let k = i as usize % live.len();
                                s.update(live[k].0.as_bytes(), &data).unwrap();
                                live[k].1 = data;
                            }
                            _ if live.len() > 20 => {
                                let (id, _) = live.swap_remove(i as usize % live.len());
                                s.destroy(id.as_bytes()).unwrap();
                                assert_eq!(
                                    s.get(id.as_bytes()).unwrap_err().code,
                                    SessionError::NotFound
                                );
                            }
                            _ => {}
                        }
                    }
                    for (id, expect) in &live {
                        assert_eq!(
                            &s.get(id.as_bytes()).unwrap(),
                            expect,
                            "lost session at the end"
                        );
                        s.destroy(id.as_bytes()).unwrap();
                    }
                });
            }
        });
        if let Some(dir) = dir {
            assert!(files_in(dir).is_empty());
        }
    });
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
    let dir = TempDir::new();
    // Two independent stores on one directory, as two processes would have.
    let a = Arc::new(file_sessions(&dir.0, 3600));
    let b = Arc::new(file_sessions(&dir.0, 3600));
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
    let dir = TempDir::new();
    let s = file_sessions(&dir.0, 3600);
    let sessions = dir.0.join("sessions");
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
    let outside = dir.0.join("outside");
    std::fs::write(&outside, b"do not touch").unwrap();
    let planted = "b".repeat(64);
    std::os::unix::fs::symlink(&outside, sessions.join(&planted)).unwrap();
    assert!(s.get(planted.as_bytes()).is_err());
    assert!(s.update(planted.as_bytes(), b"overwrite").is_err());
    assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch");
    s.remove_expired().unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch");

    // A session directory that is a symlink is refused.
    let real = dir.0.join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.0.join("link")).unwrap();
    let err = Sessions::open(&config(
        DriverConfig::File {
            dir: dir.0.join("link"),
            fsync: false,
        },
        3600,
    ))
    .err()
    .expect("a symlinked directory must be refused");
    assert!(err.message.contains("symlink"), "{}", err.message);

    // A directory readable by others is tightened to 0700.
    let loose = dir.0.join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    Sessions::open(&config(
        DriverConfig::File {
            dir: loose.clone(),
            fsync: false,
        },
        3600,
    ))
    .unwrap();
    assert_eq!(std::fs::metadata(&loose).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn file_expiry_is_judged_from_the_mtime_and_checked_under_lock() {
    let dir = TempDir::new();
    let s = file_sessions(&dir.0, 3600);
    let sessions = dir.0.join("sessions");
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

#[test]
fn a_torn_update_leaves_the_old_version() {
    let dir = TempDir::new();
    let s = file_sessions(&dir.0, 3600);
    let id = s.create(b"version one").unwrap();
    s.update(id.as_bytes(), b"version two, longer").unwrap();
    let path = dir.0.join("sessions").join(id.as_str());
    let good = std::fs::read(&path).unwrap();
    // Every truncation of the newest version's data or descriptor, as a write cut
    // short would leave it, yields one of the two versions, never garbage.
    for cut in 0..good.len() {
        let mut damaged = good.clone();
        for byte in damaged.iter_mut().skip(cut).take(7) {
            *byte ^= 0x5a;
        }
        std::fs::write(&path, &damaged).unwrap();
        match s.get(id.as_bytes()) {
            Ok(data) => assert!(
                data == b"version one" || data == b"version two, longer",
                "damage at {cut} returned {:?}",
                String::from_utf8_lossy(&data)
            ),
            Err(err) => assert_eq!(err.code, SessionError::NotFound, "damage at {cut}"),
        }
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"version two, longer");
}
