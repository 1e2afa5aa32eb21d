//! The committed header is the contract: it must equal what cbindgen generates
//! from the sources now, and it must carry the version of Cargo.toml.

use std::ffi::CStr;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let Some(generated) = option_env!("SESSION_GENERATED_HEADER") else {
        panic!(
            "build.rs did not generate the header: see the cbindgen warning in the build output"
        );
    };
    let fresh = std::fs::read_to_string(generated).expect("read generated header");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/session.h"))
            .expect("read include/session.h");
    assert!(
        fresh == committed,
        "include/session.h differs from what cbindgen generates; run `SESSION_WRITE_HEADER=1 cargo build` and commit it"
    );
}

#[test]
fn header_documents_every_function_and_the_version_agrees() {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/session.h")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define LIBSESSION_VERSION \"{version}\"")));
    let lib_version = unsafe { CStr::from_ptr(session::ffi::session_version()) };
    assert_eq!(lib_version.to_str().unwrap(), version);

    let lines: Vec<&str> = header.lines().collect();
    let mut functions = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("char *session_")
            || line.starts_with("int session_")
            || line.starts_with("void session_")
            || line.starts_with("const char *session_")
        {
            functions += 1;
            assert!(
                i > 0 && lines[i - 1].trim() == "*/",
                "no doc comment above `{line}`"
            );
        }
    }
    assert!(
        functions >= 13,
        "expected the full API in the header, found {functions} functions"
    );
    for name in [
        "session_create(const char *data)",
        "session_get(const char *session_id)",
        "session_update(const char *session_id, const char *data)",
        "session_destroy(const char *session_id)",
        "session_create_id(void)",
        "session_remove_expired(void)",
    ] {
        assert!(
            header.contains(name),
            "documented prototype missing: {name}"
        );
    }
    assert!(header.contains("#ifndef LIBSESSION_SESSION_H"));
    assert!(header.contains("extern \"C\""));
}
