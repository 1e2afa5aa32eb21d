//! The C programs of `c_examples/` and `tests/c/`, compiled with the system C
//! compiler against `include/session.h` and a libsession.so / libsession.a built
//! from the current sources, then run. One test runs them under valgrind, on the
//! file, memory and Redis drivers.
//!
//! `cargo test` rebuilds only the rlib for the integration tests and does not
//! refresh `target/<profile>/libsession.so` / `.a`, so linking whatever lies there
//! could test a stale library. Each run of this test binary therefore runs
//! `cargo build --lib` once (same profile as this binary, same target directory: a
//! no-op when the outer `cargo test` just compiled the library) and links the
//! artifacts cargo reports.
//!
//! A missing `cc`, `c++` or `valgrind` fails the test (it never skips): run the
//! README's test command, `bash tests/run_all.sh`, which installs them.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest a C program may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(180);

const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The libsession.so and libsession.a built from the current sources.
struct BuiltLibrary {
    shared: PathBuf,
    static_lib: PathBuf,
}

impl BuiltLibrary {
    /// The directory of libsession.so, for `-L`, the rpath and LD_LIBRARY_PATH.
    fn dir(&self) -> &Path {
        self.shared.parent().expect("libsession.so has a directory")
    }
}

/// The library built from the current sources, by one `cargo build --lib` per test
/// process; every test that links the library fails with cargo's output if that
/// build failed.
fn library() -> &'static BuiltLibrary {
    static LIBRARY: OnceLock<Result<BuiltLibrary, String>> = OnceLock::new();
    match LIBRARY.get_or_init(build_library) {
        Ok(library) => library,
        Err(message) => panic!("{message}"),
    }
}

/// The cargo arguments selecting the profile this test binary was built with: it
/// is `<target-dir>/<profile-dir>/deps/c_programs-<hash>`, where the profile
/// directory is `debug` for dev/test, `release` for release/bench, else the name
/// of a custom profile.
fn profile_args() -> Vec<String> {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|name| name == "deps"))
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str());
    match profile_dir {
        Some("debug") => vec![],
        Some("release") => vec!["--release".into()],
        Some(custom) => vec!["--profile".into(), custom.into()],
        // An unfamiliar layout: go by how this binary was compiled.
        None if cfg!(debug_assertions) => vec![],
        None => vec!["--release".into()],
    }
}

/// Runs `cargo build --lib` on this repository and returns the libsession.so and
/// libsession.a it produced, or an error message carrying cargo's whole output.
///
/// The build uses cargo's default target directory (`target/`, or what
/// CARGO_TARGET_DIR or the cargo config says), as a plain `cargo test` does. That
/// `cargo test` holds the directory's lock only while it builds, not while the
/// tests run, and the library it has just compiled is reused: the build costs a
/// fraction of a second. (After `cargo test --target-dir DIR` this build still
/// compiles the current sources, into `target/`, only slower the first time.)
/// The paths come from cargo's JSON messages, not from a guessed layout.
fn build_library() -> Result<BuiltLibrary, String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo())
        .arg("build")
        .arg("--lib")
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .arg("--message-format=json-render-diagnostics")
        .args(profile_args())
        .stdin(Stdio::null());
    support::cargo_env::without_cargo_test_env(&mut cmd);
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .map_err(|err| format!("cannot start {shown}: {err}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut shared = None;
    let mut static_lib = None;
    let mut other_stdout = String::new();
    for line in stdout.lines() {
        if !line.starts_with('{') {
            other_stdout.push_str(line);
            other_stdout.push('\n');
            continue;
        }
        if !line.contains(r#""reason":"compiler-artifact""#) {
            continue;
        }
        for file in json_string_array(line, "filenames") {
            let file = PathBuf::from(file);
            match file.file_name().and_then(|name| name.to_str()) {
                Some("libsession.so") => shared = Some(file),
                Some("libsession.a") => static_lib = Some(file),
                _ => {}
            }
        }
    }
    let failure = |why: &str| {
        format!(
            "building libsession from the current sources failed: {why}\ncommand: {shown}\n\
             status: {}\n--- cargo stderr ---\n{stderr}\n--- cargo stdout (non-JSON lines) \
             ---\n{other_stdout}",
            output.status
        )
    };
    if !output.status.success() {
        return Err(failure("cargo failed"));
    }
    match (shared, static_lib) {
        (Some(shared), Some(static_lib)) if shared.is_file() && static_lib.is_file() => {
            if shared.parent() != static_lib.parent() {
                return Err(failure(
                    "libsession.so and libsession.a are in different directories",
                ));
            }
            println!(
                "linking the C programs against {} and {}",
                shared.display(),
                static_lib.display()
            );
            Ok(BuiltLibrary { shared, static_lib })
        }
        _ => Err(failure(
            "cargo reported no existing libsession.so and libsession.a (are the crate types \
             cdylib and staticlib still in Cargo.toml?)",
        )),
    }
}

/// The strings of the array `"key":[...]` in one line of cargo's JSON output.
fn json_string_array(line: &str, key: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let Some(start) = line.find(&format!("\"{key}\":[")) else {
        return strings;
    };
    let mut chars = line[start + key.len() + 4..].chars();
    loop {
        match chars.next() {
            Some('"') => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') | None => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let code = u32::from_str_radix(&hex, 16).ok();
                                value.extend(code.and_then(char::from_u32));
                            }
                            Some(other) => value.push(other),
                            None => break,
                        },
                        Some(c) => value.push(c),
                    }
                }
                strings.push(value);
            }
            Some(']') | None => return strings,
            Some(_) => {}
        }
    }
}

/// A fresh, empty scratch directory, removed by `Drop` when the test passed.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "libsession-c-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("create the temp dir");
        TempDir { path }
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept the files of the failed test in {}",
                self.path.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Checks that a tool is installed, failing the test with the fix if not.
fn require_tool(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` is not installed, so the C programs cannot be tested. Run the README's \
         test command, `bash tests/run_all.sh`, which installs it (apt-get install gcc g++ \
         valgrind cmake)"
    );
}

/// Runs a command to completion with a timeout, its output in files of `tmp`.
/// Returns (success, exit description, stdout, stderr).
fn run(mut cmd: Command, tmp: &TempDir, label: &str) -> (bool, String, String, String) {
    let out_path = tmp.join(&format!("{label}.stdout"));
    let err_path = tmp.join(&format!("{label}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("create stdout file"))
        .stderr(fs::File::create(&err_path).expect("create stderr file"));
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {shown}: {err}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(status) => (status.success(), format!("{status}"), stdout, stderr),
        None => (
            false,
            format!("killed after {} s", TIMEOUT.as_secs()),
            stdout,
            stderr,
        ),
    }
}

fn assert_ran(label: &str, result: (bool, String, String, String)) -> String {
    let (ok, status, stdout, stderr) = result;
    assert!(
        ok,
        "{label} failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    print!("--- {label} ---\n{stdout}{stderr}");
    stdout
}

/// Compiles `source` (relative to the repository) into `tmp/exe`, against the
/// shared library, or the static one with `static_link`.
fn compile(tmp: &TempDir, source: &str, exe: &str, static_link: bool) -> PathBuf {
    compile_with(tmp, source, exe, static_link, &[])
}

/// [`compile`] with `extra` compiler flags (a sanitizer's) after the usual ones.
fn compile_with(
    tmp: &TempDir,
    source: &str,
    exe: &str,
    static_link: bool,
    extra: &[&str],
) -> PathBuf {
    let cxx = source.ends_with(".cpp");
    let compiler = if cxx { "c++" } else { "cc" };
    require_tool(compiler);
    let lib = library();
    let out = tmp.join(exe);
    let mut cmd = Command::new(compiler);
    cmd.current_dir(repo())
        .arg(if cxx { "-std=c++17" } else { "-std=c11" })
        .args(WARNINGS)
        .arg("-g")
        .args(extra)
        .arg("-Iinclude")
        .arg(source)
        .arg("-o")
        .arg(&out);
    if static_link {
        cmd.arg(&lib.static_lib)
            .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s", "-lutil"]);
    } else {
        cmd.arg(format!("-L{}", lib.dir().display()))
            .arg(format!("-Wl,-rpath,{}", lib.dir().display()))
            .args(["-lsession", "-lpthread"]);
    }
    assert_ran(
        &format!("compile {source}"),
        run(cmd, tmp, &format!("{exe}.cc")),
    );
    out
}

/// A command running `exe` in a fresh working directory `tmp/cwd-<label>`, with
/// LD_LIBRARY_PATH pointing at the library and no SESSION_CONFIG from outside.
fn program(tmp: &TempDir, exe: &Path, label: &str, valgrind: bool) -> Command {
    let cwd = tmp.join(&format!("cwd-{label}"));
    fs::create_dir_all(&cwd).expect("create the working directory");
    let mut cmd = if valgrind {
        require_tool("valgrind");
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "--quiet",
        ])
        .arg(exe);
        cmd
    } else {
        Command::new(exe)
    };
    cmd.current_dir(cwd)
        .env("LD_LIBRARY_PATH", library().dir())
        .env_remove("SESSION_CONFIG");
    cmd
}

fn compile_and_run(source: &str, exe: &str, args: &[&str]) -> String {
    let tmp = TempDir::new(exe);
    let path = compile(&tmp, source, exe, false);
    let mut cmd = program(&tmp, &path, exe, false);
    cmd.args(args);
    assert_ran(exe, run(cmd, &tmp, exe))
}

#[test]
fn crud_example() {
    let out = compile_and_run("c_examples/crud.c", "crud", &[]);
    assert!(out.contains("crud: all steps OK"), "{out}");
}

#[test]
fn crud_example_linked_statically() {
    let tmp = TempDir::new("crud-static");
    let exe = compile(&tmp, "c_examples/crud.c", "crud-static", true);
    // No LD_LIBRARY_PATH needed, and the binary does not load libsession.so.
    let ldd = Command::new("ldd").arg(&exe).output();
    if let Ok(ldd) = ldd {
        let text = String::from_utf8_lossy(&ldd.stdout);
        assert!(
            !text.contains("libsession"),
            "static binary loads libsession.so:\n{text}"
        );
    }
    let cwd = tmp.join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.current_dir(&cwd).env_remove("SESSION_CONFIG");
    let out = assert_ran("crud-static", run(cmd, &tmp, "crud-static"));
    assert!(out.contains("crud: all steps OK"), "{out}");
    // The embedded default keeps the files in ./sessions of the working directory.
    assert!(cwd.join("sessions").is_dir(), "no ./sessions directory");
}

#[test]
fn threads_example_file_driver() {
    let out = compile_and_run("c_examples/threads.c", "threads", &["4", "2000"]);
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
}

#[test]
fn threads_example_memory_driver() {
    let out = compile_and_run(
        "c_examples/threads.c",
        "threads-memory",
        &["8", "5000", r#"{"sessions": {"driver": "memory"}}"#],
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
}

#[test]
fn threads_example_redis_driver() {
    let server = support::redis_server::RedisServer::start(&[]);
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 8}}}}"#,
        server.url()
    );
    let out = compile_and_run(
        "c_examples/threads.c",
        "threads-redis",
        &["8", "2000", &config],
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
}

#[test]
fn api_test() {
    let tmp = TempDir::new("api_test");
    let exe = compile(&tmp, "tests/c/api_test.c", "api_test", false);
    let store = tmp.join("store");
    let mut cmd = program(&tmp, &exe, "api_test", false);
    cmd.arg(&store);
    let out = assert_ran("api_test", run(cmd, &tmp, "api_test"));
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn multiprocess() {
    let tmp = TempDir::new("multiprocess");
    let exe = compile(&tmp, "tests/c/multiprocess.c", "multiprocess", false);
    let mut cmd = program(&tmp, &exe, "multiprocess", false);
    cmd.arg(tmp.join("store"));
    let out = assert_ran("multiprocess", run(cmd, &tmp, "multiprocess"));
    assert!(out.contains(", 0 failures"), "{out}");
}

#[test]
fn crash_test() {
    let tmp = TempDir::new("crash_test");
    let exe = compile(&tmp, "tests/c/crash_test.c", "crash_test", false);
    let mut cmd = program(&tmp, &exe, "crash_test", false);
    cmd.arg(tmp.join("store"));
    let out = assert_ran("crash_test", run(cmd, &tmp, "crash_test"));
    assert!(out.contains("all rounds passed"), "{out}");
}

/// A config whose default store is the file driver with storage root `root`.
fn file_store_config(root: &Path) -> String {
    format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}}, "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    )
}

const MEMORY_CONFIG: &str = r#"{"sessions": {"driver": "memory"}}"#;

/// Runs tests/c/lifecycle_test.c with scratch directory `tmp/store` on the store
/// `config` describes (its root, if any, is created by the program).
fn lifecycle_test(tmp: &TempDir, label: &str, config: &str) {
    let exe = compile(tmp, "tests/c/lifecycle_test.c", "lifecycle_test", false);
    let mut cmd = program(tmp, &exe, label, false);
    cmd.arg(tmp.join("store")).arg(config);
    let out = assert_ran(label, run(cmd, tmp, label));
    assert!(
        out.contains("lifecycle_test: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
}

#[test]
fn lifecycle_test_file_driver() {
    let tmp = TempDir::new("lifecycle-file");
    // The root does not exist yet: the program creates it, as a server must.
    let config = file_store_config(&tmp.join("store").join("file-root"));
    lifecycle_test(&tmp, "lifecycle-file", &config);
}

#[test]
fn lifecycle_test_memory_driver() {
    let tmp = TempDir::new("lifecycle-memory");
    lifecycle_test(&tmp, "lifecycle-memory", MEMORY_CONFIG);
}

#[test]
fn lifecycle_test_redis_driver() {
    let server = support::redis_server::RedisServer::start(&[]);
    let tmp = TempDir::new("lifecycle-redis");
    // The map shape, with the store under test named "default".
    let config = format!(
        r#"{{"sessions": {{"default": {{"driver": "redis", "url": "{}", "pool_size": 4}}}}}}"#,
        server.url()
    );
    lifecycle_test(&tmp, "lifecycle-redis", &config);
}

/// Runs tests/c/values_test.c (issue 7: per-key values and compare-and-set) on the
/// store `config` describes (its root, if any, is created by the program), with the
/// full sizes: 8 threads x 500 keys on one session, 8 threads x 1,000 update_if
/// increments, and on files and Redis 2 processes x 4 threads x 500 keys.
fn values_test(tmp: &TempDir, label: &str, config: &str) -> String {
    let exe = compile(tmp, "tests/c/values_test.c", "values_test", false);
    let mut cmd = program(tmp, &exe, label, false);
    cmd.arg(config);
    let started = Instant::now();
    let out = assert_ran(label, run(cmd, tmp, label));
    println!("{label} took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        out.contains("values_test: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
    assert!(
        out.contains("1 process(es) x 8 threads x 500 keys: expected 4000 members, got 4000"),
        "{out}"
    );
    assert!(
        out.contains("8 threads x 1000 update_if increments: counter 8000"),
        "{out}"
    );
    out
}

/// The multi-process part ran (files and Redis): 2 x 4 x 500 keys, none lost.
fn assert_multiprocess_ran(out: &str) {
    assert!(
        out.contains("2 process(es) x 4 threads x 500 keys: expected 4000 members, got 4000"),
        "{out}"
    );
    assert!(!out.contains("skipped"), "{out}");
}

#[test]
fn values_test_file_driver() {
    let tmp = TempDir::new("values-file");
    // The root does not exist yet: the program creates it, as a server must. 8
    // threads (and 2 processes) queue on one session's lock whose data grows to
    // 4,000 members: on a loaded 2-core machine a writer may wait longer than the
    // default lock_timeout_ms (1 s), which is a timeout, not a lost update.
    let config = file_store_config(&tmp.join("store").join("file-root")).replace(
        r#""storage_name": "s""#,
        r#""storage_name": "s", "lock_timeout_ms": 10000"#,
    );
    let out = values_test(&tmp, "values-file", &config);
    assert_multiprocess_ran(&out);
}

#[test]
fn values_test_memory_driver() {
    let tmp = TempDir::new("values-memory");
    let out = values_test(&tmp, "values-memory", MEMORY_CONFIG);
    // Memory sessions belong to one process: only that part is skipped, and said so.
    assert!(
        out.contains("multi-process part skipped: the memory driver keeps sessions per process"),
        "{out}"
    );
}

#[test]
fn values_test_redis_driver() {
    let server = support::redis_server::RedisServer::start(&[]);
    // (A generous command timeout: the test is about lost updates, and a loaded
    // machine running other suites can hold a reply for a second.)
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 8, "command_timeout_ms": 5000}}}}"#,
        server.url()
    );
    let tmp = TempDir::new("values-redis");
    let out = values_test(&tmp, "values-redis", &config);
    assert_multiprocess_ran(&out);
}

#[test]
fn values_test_redis_local_cache() {
    let server = support::redis_server::RedisServer::start(&[]);
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 8, "command_timeout_ms": 5000, "local_cache": {{}}}}}}"#,
        server.url()
    );
    let tmp = TempDir::new("values-redis-cache");
    let out = values_test(&tmp, "values-redis-cache", &config);
    assert_multiprocess_ran(&out);
}

#[test]
fn threads_example_redis_local_cache() {
    let server = support::redis_server::RedisServer::start(&[]);
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 8, "local_cache": {{}}}}}}"#,
        server.url()
    );
    let out = compile_and_run(
        "c_examples/threads.c",
        "threads-redis-cache",
        &["8", "2000", &config],
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
}

#[test]
fn cache_test() {
    let server = support::redis_server::RedisServer::start(&[]);
    let out = compile_and_run("tests/c/cache_test.c", "cache_test", &[&server.url()]);
    assert!(
        out.contains("cache_test: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
}

/// Runs tests/c/contents_test.c (issue 7: encryption at rest, cookies, the owner
/// index) on the store `config` describes (its root, if any, is created by the
/// program), with the full sizes: 10 owners x 100 sessions, and on files and Redis
/// 2 processes x 4 threads x 60 sessions. `redis_port` is the port of the Redis
/// store's server: the program reads and damages stored records with redis-cli.
fn contents_test(tmp: &TempDir, label: &str, config: &str, redis_port: Option<u16>) -> String {
    let exe = compile(tmp, "tests/c/contents_test.c", "contents_test", false);
    let mut cmd = program(tmp, &exe, label, false);
    cmd.arg(config).env_remove("SESSION_TEST_REDIS_PORT");
    if let Some(port) = redis_port {
        require_tool("redis-cli");
        cmd.env("SESSION_TEST_REDIS_PORT", port.to_string());
    }
    let started = Instant::now();
    let out = assert_ran(label, run(cmd, tmp, label));
    println!("{label} took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        out.contains("contents_test: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
    assert!(
        out.contains("42 Cookie: header values, each through the global API and a handle"),
        "{out}"
    );
    assert!(
        out.contains("destroy_owner(\"3\") ended 100 sessions in ")
            && out.contains("; 900 owned and 15 other sessions intact"),
        "{out}"
    );
    out
}

/// The parts that need shared storage ran (files and Redis): nothing in the clear
/// at rest, rotation, and 2 x 4 x 60 sessions of 4 owners, none lost.
fn assert_shared_storage_parts_ran(out: &str) {
    assert!(out.contains("contents_test: at rest: "), "{out}");
    assert!(
        out.contains("rotation: A -> B with fallback A -> B alone checked"),
        "{out}"
    );
    assert!(
        out.contains("2 processes x 4 threads: 480 sessions of 4 owners in ")
            && out.contains("each owner exactly 120 (4 of 4 right), destroy_owner ended 480"),
        "{out}"
    );
    assert!(!out.contains("skipped"), "{out}");
}

#[test]
fn contents_test_file_driver() {
    let tmp = TempDir::new("contents-file");
    // The root does not exist yet: the program creates it, as a server must.
    let config = file_store_config(&tmp.join("store").join("file-root"));
    let out = contents_test(&tmp, "contents-file", &config, None);
    assert_shared_storage_parts_ran(&out);
    assert!(
        out.contains("marker in 0, owner in 0 contents / 0 names, control in 1"),
        "{out}"
    );
}

#[test]
fn contents_test_memory_driver() {
    let tmp = TempDir::new("contents-memory");
    let out = contents_test(&tmp, "contents-memory", MEMORY_CONFIG, None);
    // Memory sessions belong to one handle of one process: only the parts that need
    // the stored bytes or shared storage are skipped, and said so.
    for skipped in [
        "at-rest check skipped: the memory driver's stored bytes are not reachable from C",
        "damaged and moved records skipped: the memory driver's stored bytes are not reachable",
        "rotation skipped: each memory store belongs to its handle",
        "multi-process part skipped: the memory driver keeps sessions per process",
    ] {
        assert!(out.contains(skipped), "{out}");
    }
}

#[test]
fn contents_test_redis_driver() {
    let server = support::redis_server::RedisServer::start(&[]);
    let config = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 8}}}}"#,
        server.url()
    );
    let tmp = TempDir::new("contents-redis");
    let out = contents_test(&tmp, "contents-redis", &config, Some(server.port));
    assert_shared_storage_parts_ran(&out);
    assert!(out.contains("at rest: Redis hash fields and "), "{out}");
}

#[test]
fn header_compiles_as_cxx() {
    let out = compile_and_run("tests/c/header_cxx.cpp", "header_cxx", &[]);
    assert!(out.contains("header_cxx: OK"), "{out}");
}

#[test]
fn valgrind_finds_no_error_and_no_leak() {
    require_tool("valgrind");
    let tmp = TempDir::new("valgrind");
    let server = support::redis_server::RedisServer::start(&[]);
    let redis = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}"}}}}"#,
        server.url()
    );
    // lifecycle_test includes 1,000 handles opened and closed: each leaked handle
    // or store would show as a definite leak.
    let lifecycle_file = file_store_config(&tmp.join("lifecycle-file").join("file-root"));
    let contents_file = file_store_config(&tmp.join("contents-file").join("file-root"));
    let cached = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "local_cache": {{}}}}}}"#,
        server.url()
    );
    let runs: [(&str, &str, Vec<String>); 10] = [
        ("c_examples/crud.c", "crud", vec![]),
        (
            "c_examples/threads.c",
            "threads",
            vec!["2".into(), "300".into()],
        ),
        (
            "tests/c/api_test.c",
            "api_test",
            vec![tmp.join("api-store").display().to_string()],
        ),
        (
            "c_examples/threads.c",
            "threads",
            vec!["2".into(), "200".into(), redis],
        ),
        // The local read cache: its listener thread, the fork of nothing, the
        // JSON of session_cache_stats.
        (
            "c_examples/threads.c",
            "threads",
            vec!["2".into(), "200".into(), cached],
        ),
        ("tests/c/cache_test.c", "cache_test", vec![server.url()]),
        (
            "tests/c/lifecycle_test.c",
            "lifecycle_test",
            vec![
                tmp.join("lifecycle-file").display().to_string(),
                lifecycle_file,
            ],
        ),
        (
            "tests/c/lifecycle_test.c",
            "lifecycle_test",
            vec![
                tmp.join("lifecycle-memory").display().to_string(),
                MEMORY_CONFIG.into(),
            ],
        ),
        // 100 keys per thread instead of 500: each set_value rewrites the whole
        // object, so the cost grows with the square of the keys; under valgrind on
        // the debug library 8 x 100 keys take about 8 s, 8 x 500 would pass the
        // timeout. The 1,000 increments per thread stay (under a second).
        (
            "tests/c/values_test.c",
            "values_test",
            vec![MEMORY_CONFIG.into(), "100".into()],
        ),
        // On files, where the program does the most itself (reads, damages and copies
        // session files, forks 2 processes of 4 threads); 10 owners x 50 sessions and
        // 20 sessions per thread keep it to a few seconds.
        (
            "tests/c/contents_test.c",
            "contents_test",
            vec![contents_file, "50".into(), "20".into()],
        ),
    ];
    for (source, exe, args) in &runs {
        let path = compile(&tmp, source, exe, false);
        let label = format!("valgrind-{exe}");
        let mut cmd = program(&tmp, &path, &label, true);
        cmd.args(args);
        let (ok, status, stdout, stderr) = run(cmd, &tmp, &label);
        assert!(
            ok,
            "valgrind {exe} failed ({status}; 99 means valgrind found errors or leaks)\n\
             --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
        // With --quiet valgrind prints nothing unless it found something.
        assert!(
            !stderr.contains("=="),
            "valgrind reported something for {exe}:\n{stderr}"
        );
        println!("--- valgrind {exe}: no error, no leak ---\n{stdout}");
    }
}

// ---------------------------------------------------------------------------
// Sanitizers (issue 9). The C programs are compiled with gcc's AddressSanitizer +
// UndefinedBehaviorSanitizer, or ThreadSanitizer, and linked against the same
// libsession.so as above. The Rust library itself is NOT instrumented (that would
// need a nightly `-Zsanitizer`): what the sanitizers check is the C side of the
// API. ASan still sees every allocation of the library, as Rust's allocator is
// malloc/free, which ASan replaces: LeakSanitizer reports a string, handle or store
// the library allocated and never freed, and a C program freeing a library pointer
// twice or reading past a returned buffer is caught. No LeakSanitizer suppression
// is needed: what the library keeps for the process lifetime (the global
// configuration and stores) stays reachable from its statics, which LSan does not
// count as leaked.
// ---------------------------------------------------------------------------

/// gcc's ASan + UBSan flags: every UB report is fatal (no recovery).
const ASAN_UBSAN_FLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];

/// gcc's TSan flags; -O1 as TSan's documentation recommends, to keep it fast.
const TSAN_FLAGS: &[&str] = &["-fsanitize=thread", "-fno-omit-frame-pointer", "-O1"];

/// What a sanitizer prints when it found something; none may appear on stderr.
const ASAN_UBSAN_REPORTS: &[&str] = &[
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "AddressSanitizer:",
];
const TSAN_REPORTS: &[&str] = &["WARNING: ThreadSanitizer", "ThreadSanitizer:"];

/// A command running `exe` (built with `flags`) as [`program`] does, with the
/// sanitizer options set here, whatever the environment says: leaks detected,
/// every report fatal or counted, and exit status 99 when anything was reported.
fn sanitized_program(tmp: &TempDir, exe: &Path, label: &str, flags: &[&str]) -> Command {
    let mut cmd = program(tmp, exe, label, false);
    cmd.env_remove("LD_PRELOAD");
    if flags == TSAN_FLAGS {
        let suppressions = repo().join("tests/c/tsan.supp");
        assert!(
            suppressions.is_file(),
            "{} is missing",
            suppressions.display()
        );
        // halt_on_error=0: every race of the run is reported, then exit 99.
        cmd.env(
            "TSAN_OPTIONS",
            format!(
                "halt_on_error=0:exitcode=99:second_deadlock_stack=1:suppressions={}",
                suppressions.display()
            ),
        );
    } else {
        cmd.env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=99",
        )
        .env(
            "UBSAN_OPTIONS",
            "print_stacktrace=1:halt_on_error=1:exitcode=99",
        );
    }
    cmd
}

/// Compiles `source` with the sanitizer `flags` and runs it with `args`; fails the
/// test unless it exits 0 with no sanitizer report on stderr. Returns its stdout.
fn run_sanitized(
    tmp: &TempDir,
    source: &str,
    label: &str,
    flags: &[&str],
    args: &[String],
) -> String {
    let exe_name = Path::new(source)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .expect("a source file name");
    let tsan = flags == TSAN_FLAGS;
    let exe = format!("{exe_name}-{}", if tsan { "tsan" } else { "asan" });
    let path = tmp.join(&exe);
    let path = if path.is_file() {
        path
    } else {
        compile_with(tmp, source, &exe, false, flags)
    };
    let mut cmd = sanitized_program(tmp, &path, label, flags);
    cmd.args(args);
    let started = Instant::now();
    let (ok, status, stdout, stderr) = run(cmd, tmp, label);
    let reports = if tsan {
        TSAN_REPORTS
    } else {
        ASAN_UBSAN_REPORTS
    };
    let found: Vec<&str> = stderr
        .lines()
        .filter(|line| reports.iter().any(|report| line.contains(report)))
        .collect();
    assert!(
        ok && found.is_empty(),
        "{label} failed under the sanitizer ({status}; 99 means it reported something)\n\
         reports: {found:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    println!(
        "--- {label}: exit 0, no sanitizer report, {:.1} s ---\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    stdout
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

/// The examples, api_test, multiprocess and crash_test under ASan + UBSan, on the
/// file driver (the examples on memory too), with reduced sizes.
#[test]
fn asan_ubsan_examples_and_api_test() {
    let tmp = TempDir::new("asan-examples");
    let f = ASAN_UBSAN_FLAGS;
    let out = run_sanitized(&tmp, "c_examples/crud.c", "asan-crud", f, &[]);
    assert!(out.contains("crud: all steps OK"), "{out}");
    // Without a config: the embedded default, files in ./sessions.
    let out = run_sanitized(
        &tmp,
        "c_examples/threads.c",
        "asan-threads-file",
        f,
        &strings(&["4", "500"]),
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
    let out = run_sanitized(
        &tmp,
        "c_examples/threads.c",
        "asan-threads-memory",
        f,
        &strings(&["4", "500", MEMORY_CONFIG]),
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
    // api_test runs its own file and memory stores under DIR.
    let api_dir = tmp.join("api-store").display().to_string();
    let out = run_sanitized(&tmp, "tests/c/api_test.c", "asan-api_test", f, &[api_dir]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
    // 2 worker processes x 300 operations (the default is 4 x 3,000).
    let mp_dir = tmp.join("mp-store").display().to_string();
    let out = run_sanitized(
        &tmp,
        "tests/c/multiprocess.c",
        "asan-multiprocess",
        f,
        &[mp_dir, "2".into(), "300".into()],
    );
    assert!(out.contains(", 0 failures"), "{out}");
    // 5 rounds instead of 40. The SIGKILLed children never reach LSan's exit-time
    // check (nor should they); the parent, which reads everything back, does.
    let crash_dir = tmp.join("crash-store").display().to_string();
    let out = run_sanitized(
        &tmp,
        "tests/c/crash_test.c",
        "asan-crash_test",
        f,
        &[crash_dir, "5".into()],
    );
    assert!(out.contains("all rounds passed"), "{out}");
}

/// lifecycle_test under ASan + UBSan on one driver: its full run, including 1,000
/// handles opened and closed (each leaked one would be an LSan report). About 10 s,
/// nearly all of it the program's own sleeps (idle timeouts), not CPU.
fn asan_ubsan_lifecycle(name: &str, memory: bool) {
    let tmp = TempDir::new(name);
    let config = if memory {
        MEMORY_CONFIG.to_string()
    } else {
        file_store_config(&tmp.join("store").join("file-root"))
    };
    let args = [tmp.join("store").display().to_string(), config];
    let out = run_sanitized(
        &tmp,
        "tests/c/lifecycle_test.c",
        name,
        ASAN_UBSAN_FLAGS,
        &args,
    );
    assert!(
        out.contains("lifecycle_test: ") && out.contains(" passed, 0 failed"),
        "{out}"
    );
}

#[test]
fn asan_ubsan_lifecycle_file_driver() {
    asan_ubsan_lifecycle("asan-lifecycle-file", false);
}

#[test]
fn asan_ubsan_lifecycle_memory_driver() {
    asan_ubsan_lifecycle("asan-lifecycle-memory", true);
}

/// values_test and contents_test under ASan + UBSan on files and memory, with
/// reduced sizes: 8 threads x 50 keys and 8 x 200 increments; 10 owners x 50
/// sessions and 20 sessions per thread (on files 2 processes x 4 threads).
#[test]
fn asan_ubsan_values_and_contents() {
    let tmp = TempDir::new("asan-values-contents");
    let f = ASAN_UBSAN_FLAGS;
    for memory in [false, true] {
        let driver = if memory { "memory" } else { "file" };
        let config = |name: &str| {
            if memory {
                MEMORY_CONFIG.to_string()
            } else {
                file_store_config(&tmp.join(name).join("file-root"))
            }
        };
        let label = format!("asan-values-{driver}");
        let out = run_sanitized(
            &tmp,
            "tests/c/values_test.c",
            &label,
            f,
            &[config("values"), "50".into(), "200".into()],
        );
        assert!(out.contains(" passed, 0 failed"), "{out}");
        assert!(
            out.contains("1 process(es) x 8 threads x 50 keys: expected 400 members, got 400"),
            "{out}"
        );
        assert!(
            out.contains("8 threads x 200 update_if increments: counter 1600"),
            "{out}"
        );
        if !memory {
            assert!(
                out.contains("2 process(es) x 4 threads x 50 keys: expected 400 members, got 400"),
                "{out}"
            );
        }
        let label = format!("asan-contents-{driver}");
        let out = run_sanitized(
            &tmp,
            "tests/c/contents_test.c",
            &label,
            f,
            &[config("contents"), "50".into(), "20".into()],
        );
        assert!(out.contains(" passed, 0 failed"), "{out}");
        assert!(
            out.contains("destroy_owner(\"3\") ended 50 sessions in ")
                && out.contains("; 450 owned and 15 other sessions intact"),
            "{out}"
        );
        if !memory {
            assert_shared_storage_parts_ran_with(&out, 160, 40);
        }
    }
}

/// [`assert_shared_storage_parts_ran`] for a run with `total` sessions in the
/// multi-process part, `per_owner` for each of its 4 owners.
fn assert_shared_storage_parts_ran_with(out: &str, total: u32, per_owner: u32) {
    assert!(out.contains("contents_test: at rest: "), "{out}");
    assert!(
        out.contains(&format!(
            "2 processes x 4 threads: {total} sessions of 4 owners in "
        )) && out.contains(&format!(
            "each owner exactly {per_owner} (4 of 4 right), destroy_owner ended {total}"
        )),
        "{out}"
    );
    assert!(!out.contains("skipped"), "{out}");
}

/// A C program with a real data race (two threads incrementing a plain global
/// while calling the library): TSan, with the options and suppressions the other
/// TSan run uses, must report it. This keeps `tsan_threads_and_values` meaningful:
/// if a suppression or option ever hid the C programs' own races, this fails.
const TSAN_CANARY: &str = r#"#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "session.h"

static long shared_counter; /* written by both threads with no lock: a race */

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        char *id = session_create("{}");
        if (id == NULL)
            return NULL;
        shared_counter++;
        session_destroy(id);
        free(id);
    }
    return NULL;
}

int main(void)
{
    pthread_t a, b;
    if (!session_init_json("{\"sessions\": {\"driver\": \"memory\"}}"))
        return 1;
    pthread_create(&a, NULL, worker, NULL);
    pthread_create(&b, NULL, worker, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("tsan_canary: %ld\n", shared_counter);
    return 0;
}
"#;

#[test]
fn tsan_reports_a_race_in_c_code() {
    let tmp = TempDir::new("tsan-canary");
    let source = tmp.join("tsan_canary.c");
    fs::write(&source, TSAN_CANARY).expect("write the canary");
    let source = source.display().to_string();
    let exe = compile_with(&tmp, &source, "tsan_canary", false, TSAN_FLAGS);
    let cmd = sanitized_program(&tmp, &exe, "tsan-canary", TSAN_FLAGS);
    let (ok, status, stdout, stderr) = run(cmd, &tmp, "tsan-canary");
    assert!(
        !ok && status.contains("99")
            && stderr.contains("WARNING: ThreadSanitizer: data race")
            && stderr.contains("tsan_canary.c"),
        "TSan did not report the canary's race ({status})\n--- stdout ---\n{stdout}\n\
         --- stderr ---\n{stderr}"
    );
    println!("--- tsan-canary: the race was reported ({status}) ---");
}

/// c_examples/threads.c (8 threads) and values_test.c (8 threads setting keys of
/// one session, 8 threads in an update_if loop; on files also 2 forked processes of
/// 4 threads) under ThreadSanitizer on the file and memory drivers: no race in the
/// C programs' own code. See tests/c/tsan.supp for the one suppression.
#[test]
fn tsan_threads_and_values() {
    let tmp = TempDir::new("tsan");
    let f = TSAN_FLAGS;
    // Without a config: the embedded default, files in ./sessions.
    let out = run_sanitized(
        &tmp,
        "c_examples/threads.c",
        "tsan-threads-file",
        f,
        &strings(&["8", "500"]),
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
    let out = run_sanitized(
        &tmp,
        "c_examples/threads.c",
        "tsan-threads-memory",
        f,
        &strings(&["8", "1000", MEMORY_CONFIG]),
    );
    assert!(out.contains("0 errors, 0 lost sessions"), "{out}");
    for memory in [false, true] {
        let config = if memory {
            MEMORY_CONFIG.to_string()
        } else {
            file_store_config(&tmp.join("values").join("file-root"))
        };
        let label = format!("tsan-values-{}", if memory { "memory" } else { "file" });
        let out = run_sanitized(
            &tmp,
            "tests/c/values_test.c",
            &label,
            f,
            &[config, "50".into(), "200".into()],
        );
        assert!(out.contains(" passed, 0 failed"), "{out}");
        assert!(
            out.contains("1 process(es) x 8 threads x 50 keys: expected 400 members, got 400"),
            "{out}"
        );
        assert!(
            out.contains("8 threads x 200 update_if increments: counter 1600"),
            "{out}"
        );
    }
}
