//! Generates the C header with cbindgen into `OUT_DIR/session.h`, and gives the
//! shared library its soname, `libsession.so.MAJOR` (see [`soname`]).
//!
//! The committed `include/session.h` is the contract: `tests/header.rs` compares it
//! with this fresh generation. Set `SESSION_WRITE_HEADER=1` to refresh the committed
//! copy. A cbindgen failure (usually a Rust syntax error) only prints a warning, so
//! rustc's own error messages stay visible.

use std::env;
use std::path::PathBuf;

fn main() {
    soname();
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=SESSION_WRITE_HEADER");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let generated = out_dir.join("session.h");

    let mut config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(err) => {
            println!("cargo:warning=cbindgen.toml: {err}");
            return;
        }
    };
    let (major, minor, patch) = (
        env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default(),
        env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default(),
        env::var("CARGO_PKG_VERSION_PATCH").unwrap_or_default(),
    );
    config.after_includes = Some(format!(
        "\n#define LIBSESSION_VERSION_MAJOR {major}\n#define LIBSESSION_VERSION_MINOR {minor}\n\
         #define LIBSESSION_VERSION_PATCH {patch}\n#define LIBSESSION_VERSION \"{major}.{minor}.{patch}\"\n\n\
         /* Length of a session id: 64 lowercase hexadecimal characters. */\n\
         #define SESSION_ID_LEN 64\n\n\
         /* An opaque handle on one session store: made by session_store_open(),\n   \
         session_store_open_json() or session_store(), released with\n   \
         session_store_close(). One handle may be used by many threads at once. */\n\
         typedef struct session_store session_store_t;"
    ));

    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&generated);
            println!(
                "cargo:rustc-env=SESSION_GENERATED_HEADER={}",
                generated.display()
            );
            if env::var_os("SESSION_WRITE_HEADER").is_some() {
                bindings.write_to_file(crate_dir.join("include").join("session.h"));
            }
        }
        Err(err) => {
            // Do not panic: rustc reports the underlying error better than cbindgen.
            println!("cargo:warning=cbindgen could not generate session.h: {err}");
        }
    }
}

/// The shared library is linked with the soname `libsession.so.MAJOR` (`.so.0` while
/// the version is 0.x: versions of one major number only append to the ABI), so a
/// program linked against it asks for `libsession.so.0` and keeps working with any
/// later 0.x installed as `libsession.so.0 -> libsession.so.0.y.z`. The install
/// (CMakeLists.txt) lays that out. In cargo's own output directory a symlink
/// `libsession.so.0 -> libsession.so` lets programs linked there run too
/// (`-Wl,-rpath,$PWD/target/release`, as the README's link line does).
fn soname() {
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let soname = format!("libsession.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // OUT_DIR is PROFILE_DIR/build/session-HASH/out.
    let Some(profile_dir) = env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(PathBuf::from))
    else {
        return;
    };
    let link = profile_dir.join(&soname);
    if std::fs::read_link(&link).ok().as_deref() != Some(std::path::Path::new("libsession.so")) {
        let _ = std::fs::remove_file(&link);
        if let Err(err) = std::os::unix::fs::symlink("libsession.so", &link) {
            println!("cargo:warning=cannot create {}: {err}", link.display());
        }
    }
}
