//! `sessionctl`, the operator's command line, run as a program against real stores:
//! files (encrypted, with an owner index) and a real `redis-server`, then a Redis
//! that is gone. Checks output, `--json`, exit codes, and that no secret is printed.

mod support;

use serde_json::Value;
use session::config::Config;
use session::Sessions;
use std::path::Path;
use std::process::Command;
use support::redis_server::RedisServer;
use support::temp::TempDir;

const SECRET: &str = "the sessionctl test secret, over 32 bytes long";

/// Runs sessionctl; returns (exit code, stdout, stderr).
fn ctl(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run sessionctl");
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    (out.status.code().unwrap(), stdout, stderr)
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{out:?}: {e}"))
}

/// Writes `config` to DIR/config.json and opens its default store.
fn setup(dir: &Path, config: &str) -> (std::path::PathBuf, Sessions) {
    let path = dir.join("config.json");
    std::fs::write(&path, config).unwrap();
    let sessions = Sessions::open(&Config::from_file(&path).unwrap()).unwrap();
    (path, sessions)
}

fn check_store(config: &Path, s: &Sessions) {
    let a = s.create(br#"{"user_id":42,"n":1}"#).unwrap();
    let b = s.create(br#"{"user_id":42,"n":2}"#).unwrap();
    let c = s.create(br#"{"user_id":7}"#).unwrap();

    assert_eq!(ctl(config, &["count"]), (0, "3\n".into(), String::new()));
    assert_eq!(json(&ctl(config, &["--json", "count"]).1)["count"], 3);
    let mut all = [a.to_string(), b.to_string(), c.to_string()];
    all.sort();
    assert_eq!(ctl(config, &["list"]).1, format!("{}\n", all.join("\n")));
    let mut owned = vec![a.to_string(), b.to_string()];
    owned.sort();
    let mut listed: Vec<String> =
        serde_json::from_value(json(&ctl(config, &["list", "--owner", "42", "--json"]).1)).unwrap();
    listed.sort();
    assert_eq!(listed, owned);

    assert_eq!(
        ctl(config, &["get", a.as_str()]).1,
        "{\"user_id\":42,\"n\":1}\n"
    );
    assert_eq!(
        json(&ctl(config, &["--json", "get", a.as_str()]).1)["data"],
        "{\"user_id\":42,\"n\":1}"
    );
    let ttl: u64 = ctl(config, &["ttl", a.as_str()]).1.trim().parse().unwrap();
    assert_eq!(ttl, 3600, "whole seconds rounded up, as session_ttl");

    let missing = "0".repeat(64);
    let (code, out, err) = ctl(config, &["get", &missing]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(ctl(config, &["ttl", &missing]).0, 1);
    assert_eq!(ctl(config, &["destroy", &missing]).0, 1);
    let (code, _, err) = ctl(config, &["get", "../../etc/passwd"]);
    assert_eq!(code, 2, "{err}");

    assert_eq!(ctl(config, &["destroy", c.as_str()]).0, 0);
    assert!(s.get(c.as_bytes()).is_err());
    assert_eq!(ctl(config, &["destroy-owner", "42"]).1, "2\n");
    assert!(s.get(a.as_bytes()).is_err() && s.get(b.as_bytes()).is_err());
    assert_eq!(ctl(config, &["count"]).1, "0\n");
    assert_eq!(ctl(config, &["list"]).1, "");
    assert_eq!(ctl(config, &["--json", "list"]).1, "[]\n");
    assert_eq!(json(&ctl(config, &["--json", "gc"]).1)["removed"], 0);

    let stats = json(&ctl(config, &["stats", "--json"]).1);
    assert_eq!(stats["encrypted"], true);
    assert_eq!(stats["owner_key"], "user_id");
    assert_eq!(stats["sessions"], 0);
    assert!(ctl(config, &["stats"]).1.contains("encrypted: true\n"));
}

#[test]
fn sessionctl_on_an_encrypted_file_store() {
    let dir = TempDir::new("sessionctl");
    let config = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "secret": "{SECRET}", "owner_key": "user_id"}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        dir.path().display()
    );
    let (path, sessions) = setup(dir.path(), &config);
    check_store(&path, &sessions);
    assert_eq!(json(&ctl(&path, &["--json", "stats"]).1)["driver"], "file");
}

#[test]
fn sessionctl_on_redis_and_on_a_redis_that_is_gone() {
    let dir = TempDir::new("sessionctl");
    let mut redis = RedisServer::start(&[]);
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "secret": "{SECRET}", "owner_key": "user_id", "command_timeout_ms": 500, "connect_timeout_ms": 500}}}}"#,
        redis.url()
    );
    let (path, sessions) = setup(dir.path(), &config);
    check_store(&path, &sessions);
    redis.kill();
    let (code, _, err) = ctl(&path, &["count"]);
    assert_eq!(code, 3, "{err}");
    assert!(!err.is_empty());
}

#[test]
fn usage_and_configuration_errors_exit_2_without_showing_secrets() {
    let dir = TempDir::new("sessionctl");
    let (path, _) = setup(
        dir.path(),
        &format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}"}}}}"#),
    );
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["get"][..],
        &["count", "extra"][..],
        &["get", "x", "--owner", "1"][..],
        &["--store"][..],
        &["--store", "nope", "count"][..],
    ] {
        let (code, _, err) = ctl(&path, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    let short = dir.path().join("short.json");
    std::fs::write(
        &short,
        r#"{"sessions": {"driver": "memory", "secret": "hunter2-is-short"}}"#,
    )
    .unwrap();
    let (code, _, err) = ctl(&short, &["count"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("at least 32 bytes") && !err.contains("hunter2"),
        "{err}"
    );
    let (code, _, err) = ctl(&dir.path().join("missing.json"), &["count"]);
    assert_eq!(code, 2, "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("destroy-owner X"));
}

#[test]
fn a_file_store_that_does_not_exist_yet_is_not_created() {
    let dir = TempDir::new("sessionctl");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}},
                "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = ctl(&config, &["count"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no session directory"), "{err}");
    assert!(
        !dir.path().join("sessions").exists(),
        "sessionctl created the store"
    );
    // `--` ends the options: an owner may start with "--".
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let (code, out, err) = ctl(&config, &["--", "destroy-owner", "--x"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("owner_key"), "{err}");
}
