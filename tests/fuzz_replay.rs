//! Replays the fuzz targets' seed corpus (`fuzz/corpus/TARGET/`) and every input
//! that once crashed a target (`fuzz/regressions/TARGET/`) through the targets'
//! bodies (`fuzz/src/lib.rs`), in a plain `cargo test`: a fixed crash stays fixed
//! without libFuzzer. The fuzzing itself is `bash fuzz/run.sh` (see the README).

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::Path;
use std::sync::Mutex;

/// `c_api` drives the global configuration, and the replays share one process.
static SERIAL: Mutex<()> = Mutex::new(());

/// Removes the directory of this process's file store (`file_format`'s), also when
/// a replay fails.
struct Scratch;

impl Drop for Scratch {
    fn drop(&mut self) {
        let dir = std::env::temp_dir().join(format!("session-fuzz-{}-files", std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn replay(target: &str, body: fn(&[u8])) {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _scratch = Scratch;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for folder in ["corpus", "regressions"] {
        let dir = root.join(folder).join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.is_file() && !path.ends_with(".gitkeep"))
            .collect();
        inputs.sort();
        for path in inputs {
            let data = std::fs::read(&path).expect("read input");
            eprintln!("replaying {}", path.display());
            body(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no seed input for fuzz target {target}");
}

#[test]
fn fuzz_config_corpus_and_regressions() {
    replay("config", targets::config);
}

#[test]
fn fuzz_id_corpus_and_regressions() {
    replay("id", targets::id);
}

#[test]
fn fuzz_cookie_corpus_and_regressions() {
    replay("cookie", targets::cookie);
}

#[test]
fn fuzz_file_format_corpus_and_regressions() {
    replay("file_format", targets::file_format);
}

#[test]
fn fuzz_sealed_record_corpus_and_regressions() {
    replay("sealed_record", targets::sealed_record);
}

#[test]
fn fuzz_json_ops_corpus_and_regressions() {
    replay("json_ops", targets::json_ops);
}

#[test]
fn fuzz_c_api_corpus_and_regressions() {
    replay("c_api", targets::c_api);
}
