//! Running cargo (directly, or through cmake) from inside a test.

#![allow(dead_code)]

use std::process::Command;

/// Removes from `cmd` the variables `cargo test` gives this process for the crate
/// (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...). Build scripts watch some of them
/// (ring's watches CARGO_MANIFEST_DIR), so left in place they would make a nested
/// build recompile dependencies, and the next `cargo test` recompile them back.
pub fn without_cargo_test_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name);
        if set_by_cargo {
            cmd.env_remove(name);
        }
    }
}
