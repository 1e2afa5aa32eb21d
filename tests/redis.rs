//! The Redis driver against a real `redis-server` that each test starts itself on
//! a free loopback port.

mod support;

use session::config::Config;
use session::{SessionError, Sessions};
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;

/// Sessions on `server` with extra `sessions` keys (a JSON fragment).
fn open(server: &RedisServer, lifetime: u64, extra: &str) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "lifetime": {lifetime}{extra}}}}}"#,
        server.url()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

fn exists(server: &RedisServer, db: i64, key: &str) -> bool {
    server.query::<i64>(db, &[b"EXISTS", key.as_bytes()]) == 1
}

#[test]
fn crud_ttl_and_no_resurrection() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 3600, "");
    let id = s.create(b"{\"user_id\":42}").unwrap();
    let key = format!("session:{id}");
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"user_id\":42}");
    let ttl: i64 = server.query(0, &[b"TTL", key.as_bytes()]);
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");

    s.update(id.as_bytes(), b"{\"user_id\":43}").unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"user_id\":43}");
    let ttl: i64 = server.query(0, &[b"TTL", key.as_bytes()]);
    assert!((3590..=3600).contains(&ttl), "update lost the TTL: {ttl}");

    s.destroy(id.as_bytes()).unwrap();
    assert!(!exists(&server, 0, &key));
    s.destroy(id.as_bytes()).unwrap();
    assert_eq!(
        s.get(id.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.update(id.as_bytes(), b"back?").unwrap_err().code,
        SessionError::NotFound
    );
    assert!(
        !exists(&server, 0, &key),
        "update after destroy created a key"
    );
    assert_eq!(s.remove_expired().unwrap(), 0);

    // Hostile ids never reach Redis as keys.
    assert_eq!(s.get(b"*").unwrap_err().code, SessionError::InvalidArgument);
    assert_eq!(
        s.destroy(b"session:*").unwrap_err().code,
        SessionError::InvalidArgument
    );
}

#[test]
fn expiry_after_one_second_and_update_does_not_revive() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 1, "");
    let id = s.create(b"brief").unwrap();
    let key = format!("session:{id}");
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        s.get(id.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(
        s.update(id.as_bytes(), b"revive").unwrap_err().code,
        SessionError::NotFound
    );
    assert!(
        !exists(&server, 0, &key),
        "an expired session came back as a key"
    );
}

#[test]
fn binary_data_round_trips() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 60, "");
    let samples: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        b"\"quoted\" 'single' \\backslash".to_vec(),
        b"with spaces and\nnew\r\nlines\t".to_vec(),
        b"*3\r\n$3\r\nSET\r\n".to_vec(),
        Vec::new(),
        vec![0xff; 1 << 20],
    ];
    for data in samples {
        let id = s.create(&data).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), data);
        s.update(id.as_bytes(), &data[data.len() / 2..]).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), &data[data.len() / 2..]);
    }
}

#[test]
fn dbindex_and_key_prefix_are_respected_on_the_server() {
    let server = RedisServer::start(&[]);
    let json = format!(
        r#"{{"databases": {{"redis": [{{"host_id": "r1", "ip": "127.0.0.1", "port": {}, "dbindex": 3}}]}},
            "sessions": {{"driver": "redis", "storage_name": "r1", "lifetime": 60, "key_prefix": "shop:sess:"}}}}"#,
        server.port
    );
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let id = s.create(b"in db 3").unwrap();
    assert!(exists(&server, 3, &format!("shop:sess:{id}")));
    assert!(!exists(&server, 0, &format!("shop:sess:{id}")));
    assert!(!exists(&server, 3, &format!("session:{id}")));
    let value: Vec<u8> = server.query(3, &[b"HGET", format!("shop:sess:{id}").as_bytes(), b"d"]);
    assert_eq!(value, b"in db 3");
    // count sees only this prefix, in this database.
    server.query::<()>(3, &[b"SET", b"shop:sess:not-an-id", b"x"]);
    server.query::<()>(3, &[b"SET", format!("other:{id}").as_bytes(), b"x"]);
    assert_eq!(s.count().unwrap(), 1);
    let keys: Vec<String> = server.query(0, &[b"KEYS", b"*"]);
    assert!(keys.is_empty(), "keys in db 0: {keys:?}");
}

#[test]
fn password_and_acl_user() {
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    let mut admin = server.admin();
    redis::cmd("ACL")
        .arg(&["SETUSER", "web", "on", ">webpw", "~session:*", "+@all"])
        .query::<()>(&mut admin)
        .unwrap();

    let entry = |user: &str, password: &str| {
        let user = if user.is_empty() {
            String::new()
        } else {
            format!(r#", "user": "{user}""#)
        };
        format!(
            r#"{{"databases": {{"redis": [{{"host_id": "r1", "ip": "127.0.0.1", "port": {}, "dbindex": 0{user}, "password": "{password}"}}]}},
                "sessions": {{"driver": "redis", "storage_name": "r1", "lifetime": 60}}}}"#,
            server.port
        )
    };
    for (user, password) in [("", "s3cret"), ("web", "webpw")] {
        let s =
            Sessions::open(&Config::from_json(entry(user, password).as_bytes()).unwrap()).unwrap();
        let id = s.create(b"authenticated").unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"authenticated");
    }
    // A URL with user and password works the same.
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}"}}}}"#,
        server.url()
    );
    let err = Sessions::open(&Config::from_json(json.as_bytes()).unwrap())
        .err()
        .unwrap();
    assert_eq!(err.code, SessionError::Config, "{}", err.message);
    assert!(err.message.contains("NOAUTH"), "{}", err.message);
    let url = format!("redis://web:webpw@127.0.0.1:{}/0", server.port);
    let json = format!(r#"{{"sessions": {{"driver": "redis", "url": "{url}"}}}}"#);
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    assert!(s.create(b"via url").is_ok());

    // A wrong password or an unknown user fails when the store opens, not later.
    for (user, password) in [("", "wrong"), ("web", "wrong"), ("nobody", "s3cret")] {
        let err = Sessions::open(&Config::from_json(entry(user, password).as_bytes()).unwrap())
            .err()
            .expect("a wrong password must fail the open");
        assert_eq!(err.code, SessionError::Config, "{}", err.message);
        let message = err.message.to_lowercase();
        assert!(
            message.contains("auth") || message.contains("password"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("wrong") && !err.message.contains("s3cret"),
            "password in message"
        );
        // With lazy_connect the open succeeds and the first call reports it.
        let lazy = entry(user, password).replace(
            r#""lifetime": 60"#,
            r#""lifetime": 60, "lazy_connect": true"#,
        );
        let s = Sessions::open(&Config::from_json(lazy.as_bytes()).unwrap()).unwrap();
        assert_eq!(s.create(b"x").unwrap_err().code, SessionError::Config);
    }
}

#[test]
fn a_pool_smaller_than_the_thread_count_serves_every_thread() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 60, r#", "pool_size": 2"#);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..300 {
                    let id = s.create(b"x").unwrap();
                    s.get(id.as_bytes()).unwrap();
                }
            });
        }
    });
    let info: String = server.query(0, &[b"INFO", b"clients"]);
    let connected: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        connected <= 3,
        "pool_size 2 but {connected} clients (one is the admin)"
    );
}

#[test]
fn server_killed_gives_errors_and_restarted_gives_recovery_without_reinit() {
    let mut server = RedisServer::start(&[]);
    let s = open(
        &server,
        60,
        r#", "connect_timeout_ms": 300, "command_timeout_ms": 300, "pool_size": 4"#,
    );
    // Fill the pool with connections that the restart will break.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    s.create(b"before").unwrap();
                }
            });
        }
    });
    let before = s.create(b"before the crash").unwrap();
    server.kill();
    for _ in 0..5 {
        let start = Instant::now();
        let err = s.create(b"during").unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
        assert!(
            matches!(
                err.code,
                SessionError::StorageUnavailable | SessionError::Timeout
            ),
            "{err:?}"
        );
        assert!(
            err.message.contains(&format!("127.0.0.1:{}", server.port)),
            "{}",
            err.message
        );
        assert_eq!(
            s.get(before.as_bytes()).unwrap_err().code,
            SessionError::StorageUnavailable
        );
    }
    server.restart();
    // No re-init: the very next calls succeed (the data died with the server).
    let id = s.create(b"after the restart").unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"after the restart");
    assert_eq!(
        s.get(before.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    // A restart between two calls leaves every pooled connection dead: the next
    // call still succeeds (it retries once on a fresh connection).
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    s.create(b"fill the pool").unwrap();
                }
            });
        }
    });
    server.restart();
    for _ in 0..20 {
        s.create(b"again").unwrap();
    }
}

#[test]
fn a_frozen_server_gives_timeouts_not_hangs() {
    let server = RedisServer::start(&[]);
    let s = open(
        &server,
        60,
        r#", "connect_timeout_ms": 200, "command_timeout_ms": 200, "pool_size": 2"#,
    );
    let id = s.create(b"frozen soon").unwrap();
    server.signal(libc::SIGSTOP);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let t = Instant::now();
                let err = s.get(id.as_bytes()).unwrap_err();
                assert_eq!(err.code, SessionError::Timeout, "{}", err.message);
                assert!(
                    t.elapsed() < Duration::from_millis(1500),
                    "took {:?}",
                    t.elapsed()
                );
            });
        }
    });
    assert!(start.elapsed() < Duration::from_secs(3));
    server.signal(libc::SIGCONT);
    // Once the server answers again, so do the calls.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match s.get(id.as_bytes()) {
            Ok(data) => {
                assert_eq!(data, b"frozen soon");
                break;
            }
            Err(err) if Instant::now() < deadline => {
                assert_eq!(err.code, SessionError::Timeout, "{}", err.message);
            }
            Err(err) => panic!("no recovery after SIGCONT: {}", err.message),
        }
    }
}

#[test]
fn unreachable_server_fails_fast_with_a_clear_message() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    drop(server); // nothing listens on that port now
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{url}", "connect_timeout_ms": 500}}}}"#
    );
    // The open connects once: an unreachable server fails it.
    let start = Instant::now();
    let err = Sessions::open(&Config::from_json(json.as_bytes()).unwrap())
        .err()
        .expect("an unreachable server must fail the open");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(err.code, SessionError::StorageUnavailable);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    // With lazy_connect, each call reports it instead.
    let lazy = json.replace("500", r#"500, "lazy_connect": true"#);
    let s = Sessions::open(&Config::from_json(lazy.as_bytes()).unwrap()).unwrap();
    let start = Instant::now();
    let err = s.create(b"x").unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(err.code, SessionError::StorageUnavailable);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
}

#[test]
fn unix_socket_url() {
    let dir = std::env::temp_dir().join(format!("libsession-redis-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let server = RedisServer::start(&[
        "--unixsocket",
        socket.to_str().unwrap(),
        "--unixsocketperm",
        "700",
    ]);
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "unix://{}", "lifetime": 60}}}}"#,
        socket.display()
    );
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let id = s.create(b"over a unix socket").unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"over a unix socket");
    assert!(exists(&server, 0, &format!("session:{id}")));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl command.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command (installed by `bash tests/run_all.sh`)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=libsession test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn tls_url_with_a_private_ca() {
    let dir = std::env::temp_dir().join(format!("libsession-redis-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let server = RedisServer::start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &file("server.crt"),
        "--tls-key-file",
        &file("server.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let config = |ca: &str| {
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "rediss://127.0.0.1:{tls_port}/2", "lifetime": 60,
                "connect_timeout_ms": 2000{ca}}}}}"#
        )
    };
    let ca = format!(r#", "tls_ca_file": "{}""#, file("ca.crt"));
    let s = Sessions::open(&Config::from_json(config(&ca).as_bytes()).unwrap()).unwrap();
    let id = s.create(b"over TLS").unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"over TLS");
    assert!(exists(&server, 2, &format!("session:{id}")));

    // Without the private CA the server's certificate is not trusted.
    let err = Sessions::open(&Config::from_json(config("").as_bytes()).unwrap())
        .err()
        .expect("an untrusted certificate must fail the open");
    assert_eq!(
        err.code,
        SessionError::StorageUnavailable,
        "{}",
        err.message
    );
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// A C server's signal handlers (installed without SA_RESTART, as signal handlers
/// of many servers are) would interrupt blocking socket calls with EINTR: calls
/// hold signals off, so none fails for it, reads and writes alike.
#[test]
fn signals_never_fail_a_call() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 3600, "");
    let id = s.create(b"{\"user_id\":42}").unwrap();
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as *const () as usize;
        action.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let worker = unsafe { libc::pthread_self() };
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut failures = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                unsafe { libc::pthread_kill(worker, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_micros(20));
            }
        });
        for i in 0..3000 {
            let result = match i % 6 {
                0 => s.get(id.as_bytes()).map(|_| ()),
                1 => s.ttl(id.as_bytes()).map(|_| ()),
                2 => s.exists(id.as_bytes()),
                3 => s.update(id.as_bytes(), format!("{{\"n\":{i}}}").as_bytes()),
                4 => s.set_value(id.as_bytes(), b"k", b"1"),
                _ => s.touch(id.as_bytes()),
            };
            if let Err(e) = result {
                failures.push(e.message);
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
}

/// A key of another type under the prefix (a 0.1 session, another application's
/// key) that the owner index names never fails the owner calls, and destroy
/// removes it.
#[test]
fn a_key_of_another_type_in_the_owner_index_is_passed_over() {
    let server = RedisServer::start(&[]);
    let s = open(&server, 3600, r#", "owner_key": "user_id""#);
    let foreign = session::SessionId::generate().unwrap();
    let key = format!("session:{foreign}");
    let _: String = server.query(0, &[b"SET", key.as_bytes(), b"a 0.1 session"]);
    // The update indexes the id first, then finds the key is no hash.
    assert!(s.update(foreign.as_bytes(), b"{\"user_id\":1}").is_err());
    let real = s.create(b"{\"user_id\":1}").unwrap();
    assert_eq!(s.list_owner(b"1").unwrap(), vec![real]);
    assert_eq!(s.count_owner(b"1").unwrap(), 1);
    s.destroy(foreign.as_bytes()).unwrap();
    assert!(!exists(&server, 0, &key));
    assert_eq!(s.destroy_owner(b"1").unwrap(), 1);
}
