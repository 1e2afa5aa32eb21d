//! Pre-fork servers configure libsession, then fork workers: a child must never use
//! the connections it inherited. One test per binary: it forks.

mod support;

use session::ffi::*;
use std::ffi::{CStr, CString};
use support::redis_server::RedisServer;

fn connections_received(server: &RedisServer) -> i64 {
    let info: String = server.query(0, &[b"INFO", b"stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn create(data: &str) -> Option<CString> {
    let data = CString::new(data).unwrap();
    let id = unsafe { session_create(data.as_ptr()) };
    if id.is_null() {
        return None;
    }
    let owned = unsafe { CStr::from_ptr(id) }.to_owned();
    unsafe { libc::free(id.cast()) };
    Some(owned)
}

fn get(id: &CStr) -> Option<Vec<u8>> {
    let data = unsafe { session_get(id.as_ptr()) };
    if data.is_null() {
        return None;
    }
    let owned = unsafe { CStr::from_ptr(data) }.to_bytes().to_vec();
    unsafe { libc::free(data.cast()) };
    Some(owned)
}

#[test]
fn a_forked_child_works_on_its_own_connections() {
    let server = RedisServer::start(&[]);
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "lifetime": 60, "pool_size": 2}}}}"#,
        server.url()
    );
    let json = CString::new(json).unwrap();
    assert_eq!(unsafe { session_init_json(json.as_ptr()) }, 1);
    let id = create("from the parent").unwrap();
    assert_eq!(get(&id).unwrap(), b"from the parent");
    let before = connections_received(&server);

    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let mut ok = get(&id).as_deref() == Some(&b"from the parent"[..]);
            for i in 0..200 {
                let own = create(&format!("child {i}")).unwrap();
                ok &= get(&own).as_deref() == Some(format!("child {i}").as_bytes());
                let data = CString::new("child updated").unwrap();
                ok &= unsafe { session_update(own.as_ptr(), data.as_ptr()) } == 1;
                ok &= unsafe { session_destroy(own.as_ptr()) } == 1;
            }
            ok
        });
        unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
    }
    // The parent keeps working on its own connection while the child runs.
    for i in 0..200 {
        let mine = create(&format!("parent {i}")).unwrap();
        assert_eq!(get(&mine).unwrap(), format!("parent {i}").as_bytes());
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
    let after = connections_received(&server);
    // The child connected anew (the admin queries count one connection each).
    assert!(
        after >= before + 2,
        "the child made no connection of its own: {before} -> {after}"
    );
    assert_eq!(get(&id).unwrap(), b"from the parent");
    session_shutdown();
}
