//! The install, as a C project would consume it: `cmake --install` into a
//! temporary prefix, then out-of-tree C programs built against that prefix with
//! pkg-config and with `find_package(session)` (shared and static), run with no
//! LD_LIBRARY_PATH. Also checks the layout: the soname and its links, no debug info
//! in the installed binaries (kept aside in lib/.debug), the header, sessionctl.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::temp::TempDir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` (without the variables `cargo test` sets, and without
/// LD_LIBRARY_PATH); returns its stdout, or fails with its whole output.
#[track_caller]
fn run(cmd: &mut Command) -> String {
    support::cargo_env::without_cargo_test_env(cmd);
    cmd.env_remove("LD_LIBRARY_PATH");
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e} (tests/run_all.sh installs what the tests need)")
    });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{shown} failed: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    stdout
}

fn sh(script: &str) -> String {
    run(Command::new("sh").arg("-c").arg(script))
}

/// A consumer: a session in a file store under its working directory, and the
/// path of the libsession it loaded (from dladdr), so the test sees which copy ran.
const APP: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <session.h>

int main(void)
{
    mkdir("root", 0700);
    if (!session_init_json("{\"sessions\": {\"driver\": \"storage\", \"storage_name\": \"s\"},"
                           " \"storages\": {\"s\": {\"type\": \"filesystem\", \"root\": \"root\"}}}")) {
        fprintf(stderr, "init: %s\n", session_last_error());
        return 1;
    }
    char *id = session_create("{\"user_id\":42}");
    char *data = id ? session_get(id) : NULL;
    if (!data) {
        fprintf(stderr, "create/get: %s\n", session_last_error());
        return 1;
    }
    Dl_info info;
    const char *from = dladdr((void *)session_get, &info) && info.dli_fname ? info.dli_fname : "?";
    printf("%s %s %s\n", LIBSESSION_VERSION, data, from);
    free(data);
    free(id);
    session_shutdown();
    return 0;
}
"#;

fn readelf(args: &[&str], file: &Path) -> String {
    run(Command::new("readelf").args(args).arg(file))
}

#[test]
fn install_then_build_consumers_with_pkg_config_and_find_package() {
    let temp = TempDir::new("install");
    let (build, prefix) = (temp.join("build"), temp.join("prefix"));
    run(Command::new("cmake")
        .arg("-S")
        .arg(repo())
        .arg("-B")
        .arg(&build)
        .arg("-DSESSION_BUILD_TESTS=OFF"));
    run(Command::new("cmake").arg("--build").arg(&build));
    // The prefix is chosen at install time, not at configure time: every file
    // must follow it (pkg-config and find_package files included).
    run(Command::new("cmake")
        .arg("--install")
        .arg(&build)
        .arg("--prefix")
        .arg(&prefix));

    // pkg-config says where things went.
    let pc_path = prefix.join("lib/pkgconfig");
    let pkg = |args: &str| {
        sh(&format!(
            "PKG_CONFIG_PATH='{}' pkg-config {args} session",
            pc_path.display()
        ))
        .trim()
        .to_string()
    };
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(pkg("--modversion"), version);
    let libdir = PathBuf::from(pkg("--variable=libdir"))
        .canonicalize()
        .expect("pkg-config's libdir exists");
    assert!(
        libdir.starts_with(prefix.canonicalize().unwrap()),
        "{}",
        libdir.display()
    );
    // Every installed file is in the manifest (an uninstall removes them all).
    let manifest = std::fs::read_to_string(build.join("install_manifest.txt")).unwrap();
    for name in [
        "libsession.so.0",
        "libsession.so",
        "libsession.a",
        "session.pc",
        "sessionConfig.cmake",
        "sessionctl",
        "session.h",
    ] {
        assert!(
            manifest.lines().any(|l| l.ends_with(&format!("/{name}"))),
            "{name} missing from install_manifest.txt"
        );
    }
    assert!(manifest.contains(".debug/libsession.so."));
    let real = libdir.join(format!("libsession.so.{version}"));
    let major = version.split('.').next().unwrap();
    let soname = format!("libsession.so.{major}");

    // The layout: the real file, its soname link, the development link.
    assert!(std::fs::symlink_metadata(&real).unwrap().is_file());
    assert_eq!(
        std::fs::read_link(libdir.join(&soname)).unwrap(),
        PathBuf::from(format!("libsession.so.{version}"))
    );
    assert_eq!(
        std::fs::read_link(libdir.join("libsession.so")).unwrap(),
        PathBuf::from(&soname)
    );
    assert!(readelf(&["-d"], &real).contains(&format!("Library soname: [{soname}]")));
    // No debug info installed; the shared library's is kept aside, linked by name.
    let debug = libdir.join(format!(".debug/libsession.so.{version}.debug"));
    for stripped in [
        &real,
        &libdir.join("libsession.a"),
        &prefix.join("bin/sessionctl"),
    ] {
        assert!(
            !readelf(&["-S", "-W"], stripped).contains(".debug_info"),
            "{} has debug info",
            stripped.display()
        );
    }
    assert!(readelf(&["-S", "-W"], &debug).contains(".debug_info"));
    assert!(readelf(&["-S", "-W"], &real).contains(".gnu_debuglink"));
    assert!(
        std::fs::metadata(&real).unwrap().len() < 8 << 20,
        "a large .so"
    );
    assert_eq!(
        std::fs::read(prefix.join("include/session.h")).unwrap(),
        std::fs::read(repo().join("include/session.h")).unwrap()
    );

    let work = temp.join("consumer");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("app.c"), APP).unwrap();
    let expect = |binary: &Path, loaded_from: Option<&Path>| {
        let out = run(Command::new(binary).current_dir(&work));
        let mut words = out.split_whitespace();
        assert_eq!(words.next(), Some(version), "{out}");
        assert_eq!(words.next(), Some("{\"user_id\":42}"), "{out}");
        if let Some(dir) = loaded_from {
            let from = words.next().unwrap();
            let real = Path::new(from).canonicalize().unwrap();
            assert!(
                real.starts_with(dir),
                "{} loaded libsession from {from}, not from {}",
                binary.display(),
                dir.display()
            );
        }
    };

    // 1. pkg-config, with the rpath the README recommends.
    let app_pc = work.join("app_pc");
    sh(&format!(
        "cd '{}' && PKG_CONFIG_PATH='{}' cc -Wall -Werror app.c $(PKG_CONFIG_PATH='{}' pkg-config --cflags --libs session) \
         -Wl,-rpath,\"$(PKG_CONFIG_PATH='{}' pkg-config --variable=libdir session)\" -o '{}'",
        work.display(),
        pc_path.display(),
        pc_path.display(),
        pc_path.display(),
        app_pc.display()
    ));
    assert!(readelf(&["-d"], &app_pc).contains(&format!("Shared library: [{soname}]")));
    expect(&app_pc, Some(&libdir));

    // 2. find_package(session): the shared target and the static one.
    std::fs::write(
        work.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.17)\nproject(consumer C)\n\
         find_package(session 0.2 REQUIRED)\n\
         add_executable(app_cmake app.c)\ntarget_link_libraries(app_cmake PRIVATE session::session)\n\
         add_executable(app_static app.c)\ntarget_link_libraries(app_static PRIVATE session::static)\n",
    )
    .unwrap();
    let cbuild = work.join("build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&work)
        .arg("-B")
        .arg(&cbuild)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    run(Command::new("cmake").arg("--build").arg(&cbuild));
    expect(&cbuild.join("app_cmake"), Some(&libdir));
    let app_static = cbuild.join("app_static");
    assert!(!readelf(&["-d"], &app_static).contains("libsession"));
    expect(&app_static, None);

    // 3. The installed sessionctl sees the consumer's sessions.
    std::fs::write(
        work.join("config.json"),
        format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}},
                "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
            work.join("root").display()
        ),
    )
    .unwrap();
    let count = run(Command::new(prefix.join("bin/sessionctl"))
        .arg("--config")
        .arg(work.join("config.json"))
        .arg("count"));
    assert_eq!(count, "3\n");
}
