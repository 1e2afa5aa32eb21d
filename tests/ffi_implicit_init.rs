//! Without an init call, the first call configures the library: from the file named
//! by SESSION_CONFIG if set, else the embedded default (files in ./sessions). This
//! binary holds one test because it changes the process's cwd and environment.

use session::ffi::*;
use std::ffi::{CStr, CString};

fn create(data: &str) -> String {
    let data = CString::new(data).unwrap();
    let id = unsafe { session_create(data.as_ptr()) };
    assert!(!id.is_null(), "create failed: {:?}", unsafe {
        CStr::from_ptr(session_last_error())
    });
    let text = unsafe { CStr::from_ptr(id) }.to_str().unwrap().to_string();
    unsafe { libc::free(id.cast()) };
    text
}

#[test]
fn first_call_uses_the_embedded_default_then_session_config() {
    let dir = std::env::temp_dir().join(format!("libsession-implicit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    std::env::remove_var("SESSION_CONFIG");

    // The embedded default: the file driver in ./sessions.
    let id = create("{\"default\":true}");
    assert!(dir.join("sessions").join(&id).is_file());
    session_shutdown();

    // SESSION_CONFIG names a config file: here the memory driver, so nothing new
    // appears on disk.
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"sessions": {"driver": "memory", "lifetime": 60}}"#,
    )
    .unwrap();
    std::env::set_var("SESSION_CONFIG", &config);
    let id = create("{\"memory\":true}");
    assert!(!dir.join("sessions").join(&id).exists());
    let cid = CString::new(id).unwrap();
    let data = unsafe { session_get(cid.as_ptr()) };
    assert_eq!(
        unsafe { CStr::from_ptr(data) }.to_bytes(),
        b"{\"memory\":true}"
    );
    unsafe { libc::free(data.cast()) };
    session_shutdown();

    // A broken SESSION_CONFIG makes calls fail with a config error, not fall back.
    std::fs::write(
        &config,
        r#"{"sessions": {"driver": "memory", "lifetime": 0}}"#,
    )
    .unwrap();
    let data = CString::new("x").unwrap();
    assert!(unsafe { session_create(data.as_ptr()) }.is_null());
    assert_eq!(
        session_last_error_code(),
        session::SessionError::Config as i32
    );
    let message = unsafe { CStr::from_ptr(session_last_error()) }
        .to_string_lossy()
        .into_owned();
    assert!(
        message.contains("sessions.lifetime") && message.contains("config.json"),
        "{message}"
    );

    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
