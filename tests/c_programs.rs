//! The C programs of `c_examples/` and `tests/c/`, compiled with the system C
//! compiler against `include/session.h` and the libsession.so / libsession.a that
//! cargo built next to this test, then run. One test runs them under valgrind, on
//! the file, memory and Redis drivers.
//!
//! A missing `cc`, `c++` or `valgrind` fails the test (it never skips): run the
//! README's test command, `bash tests/run_all.sh`, which installs them.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest a C program may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(180);

const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the libsession.so and libsession.a of this build: the test
/// executable is `target/<profile>/deps/c_programs-<hash>`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test executable has a directory");
    let profile = deps.parent().expect("deps has a parent");
    for dir in [profile, deps] {
        if dir.join("libsession.so").is_file() && dir.join("libsession.a").is_file() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "libsession.so and libsession.a not found in {} or {}: build with `cargo test` \
         (the crate types cdylib and staticlib are built with the tests)",
        profile.display(),
        deps.display()
    );
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
    let cxx = source.ends_with(".cpp");
    let compiler = if cxx { "c++" } else { "cc" };
    require_tool(compiler);
    let lib = lib_dir();
    let out = tmp.join(exe);
    let mut cmd = Command::new(compiler);
    cmd.current_dir(repo())
        .arg(if cxx { "-std=c++17" } else { "-std=c11" })
        .args(WARNINGS)
        .arg("-g")
        .arg("-Iinclude")
        .arg(source)
        .arg("-o")
        .arg(&out);
    if static_link {
        cmd.arg(lib.join("libsession.a")).args([
            "-lpthread",
            "-ldl",
            "-lm",
            "-lrt",
            "-lgcc_s",
            "-lutil",
        ]);
    } else {
        cmd.arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
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
        .env("LD_LIBRARY_PATH", lib_dir())
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
    let runs: [(&str, &str, Vec<String>); 4] = [
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
