//! The memory driver (phase 1): create, get, update, regenerate and destroy at the
//! small and the large store size, count and remove_expired over the large one.
//! No floor but for regenerate (a std `HashMap` remove + insert of the same entry
//! under a new key, the map as large as the store): for information. set_value and
//! update_if (version from an untimed get_versioned) run interleaved with update, in
//! the same rounds, and are shown beside it (information).

use crate::common::{
    init, json_data, last_error, memory_config, ms, populate, progress, regenerate_one, take_id,
    thousands, timed, Rng,
};
use crate::file::{VALUES, VALUE_KEY};
use crate::report::{Floor, Report, Row};
use crate::stats::{run_rounds, two};
use crate::Params;
use session::ffi::{
    session_count, session_create, session_destroy, session_get, session_get_versioned,
    session_last_error, session_remove_expired, session_set_value, session_shutdown,
    session_update, session_update_if,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub fn scenario(p: &Params, n: usize, rng: &mut Rng, rep: &mut Report, start: Instant) {
    progress(start, &format!("memory driver, {n} stored"));
    init(&memory_config(3600));
    let data = json_data(1);
    let upd = [json_data(2), json_data(3)];
    let (mut ids, took, _) = populate(n, &data);
    rep.notes.push(format!(
        "populate memory {n}: {:.2} s ({} ns/create)",
        took.as_secs_f64(),
        thousands(took.as_nanos() as f64 / n as f64)
    ));

    if n == p.large {
        let mut calls = Vec::new();
        for _ in 0..p.scan_rounds {
            let mut c = 0;
            calls.push(timed(|| c = session_count()) as f64);
            assert_eq!(c, n as libc::c_long, "session_count: {}", last_error());
        }
        let med = crate::common::median_of(calls.iter().copied());
        rep.scans.push(format!(
            "memory  {:>7}  count (walk the shards)         {:>9} ms  {:>8} ns/entry   (median of {} calls)",
            thousands(n as f64),
            ms(med),
            thousands(med / n as f64),
            calls.len()
        ));
    }

    let get = run_rounds(p, 1, |_, _| {
        let id = &ids[rng.below(ids.len())];
        let mut out = std::ptr::null_mut();
        // SAFETY: valid strings.
        let ns = timed(|| out = unsafe { session_get(id.as_ptr()) });
        assert!(!out.is_null(), "session_get: {}", last_error());
        // SAFETY: malloc'd by libsession, ours to free.
        unsafe { libc::free(out.cast()) };
        ns
    });
    // update, set_value and update_if, interleaved call by call.
    let mut value_ops = run_rounds(p, 3, |k, g| {
        let id = ids[rng.below(ids.len())].as_ptr();
        let d = upd[g & 1].as_ptr();
        let mut ok = 0;
        let ns = match k {
            // SAFETY: valid strings.
            0 => timed(|| ok = unsafe { session_update(id, d) }),
            1 => {
                let (key, v) = (VALUE_KEY.as_ptr(), VALUES[g & 1].as_ptr());
                // SAFETY: valid strings.
                timed(|| ok = unsafe { session_set_value(id, key, v) })
            }
            _ => {
                let mut version = 0;
                // SAFETY: valid string, writable version.
                let out = unsafe { session_get_versioned(id, &mut version) };
                assert!(!out.is_null(), "session_get_versioned: {}", last_error());
                // SAFETY: malloc'd by libsession, ours to free.
                unsafe { libc::free(out.cast()) };
                // SAFETY: valid strings.
                timed(|| ok = unsafe { session_update_if(id, d, version) })
            }
        };
        assert!(
            ok != 0,
            "memory {}: {}",
            ["update", "set_value", "update_if"][k],
            last_error()
        );
        ns
    });
    let update_if = value_ops.pop().unwrap();
    let set_value = value_ops.pop().unwrap();
    let update = value_ops;

    // regenerate vs a HashMap as large as the store: remove the entry, insert it
    // under a new key (the new key is made outside the timed region).
    let mut map: HashMap<[u8; 64], Box<[u8]>> = HashMap::with_capacity(n);
    let key = |rng: &mut Rng| -> [u8; 64] {
        let mut k = [0u8; 64];
        for chunk in k.chunks_mut(16) {
            chunk.copy_from_slice(format!("{:016x}", rng.next()).as_bytes());
        }
        k
    };
    let mut keys: Vec<[u8; 64]> = (0..n).map(|_| key(rng)).collect();
    for k in &keys {
        map.insert(*k, data.as_bytes().into());
    }
    let regenerate = run_rounds(p, 2, |k, _| {
        if k == 0 {
            regenerate_one(&mut ids, rng)
        } else {
            let j = rng.below(keys.len());
            let new = key(rng);
            let old = keys[j];
            let ns = timed(|| {
                let v = map.remove(&old).expect("floor key");
                map.insert(new, v);
            });
            keys[j] = new;
            ns
        }
    });
    let (regenerate, hashmap) = two(regenerate);

    let mut created = Vec::with_capacity(p.rounds * p.ops);
    let create = run_rounds(p, 1, |_, _| {
        let mut out = std::ptr::null_mut();
        // SAFETY: valid string.
        let ns = timed(|| out = unsafe { session_create(data.as_ptr()) });
        created.push(take_id(out));
        ns
    });
    let destroy = run_rounds(p, 1, |_, g| {
        let id = &created[g];
        let mut ok = 0;
        // SAFETY: valid string.
        let ns = timed(|| ok = unsafe { session_destroy(id.as_ptr()) });
        assert!(ok != 0, "session_destroy: {}", last_error());
        ns
    });
    for (op, stat) in [
        ("create", create),
        ("get", get),
        ("update", update),
        ("destroy", destroy),
    ] {
        let stat = stat.into_iter().next().unwrap();
        rep.rows.push(Row {
            driver: "memory",
            stored: n,
            op,
            stat,
            floors: vec![],
        });
    }
    let update_stat = rep.find("memory", n, "update").unwrap().stat.clone();
    for (op, stat) in [("set_value", set_value), ("update_if", update_if)] {
        rep.rows.push(Row {
            driver: "memory",
            stored: n,
            op,
            stat,
            floors: vec![Floor {
                label: "our update (same rounds)",
                stat: update_stat.clone(),
                target: None,
            }],
        });
    }
    rep.rows.push(Row {
        driver: "memory",
        stored: n,
        op: "regenerate",
        stat: regenerate,
        floors: vec![Floor {
            label: "HashMap remove+insert (no id, no lock)",
            stat: hashmap,
            target: None,
        }],
    });
    session_shutdown();
}

pub fn gc(p: &Params, rep: &mut Report, start: Instant) {
    let n = p.large;
    progress(start, &format!("memory driver, GC over {n}"));
    let data = json_data(7);
    init(&memory_config(3600));
    let _ = populate(n, &data);
    let mut scan = Vec::new();
    for _ in 0..p.scan_rounds {
        scan.push(timed(|| session_remove_expired()) as f64);
        assert!(
            session_last_error().is_null(),
            "remove_expired: {}",
            last_error()
        );
    }
    let scan = crate::common::median_of(scan.into_iter());
    session_shutdown();

    init(&memory_config(1));
    let t = Instant::now();
    let _ = populate(n, &data);
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(t.elapsed()));
    let all = timed(|| session_remove_expired()) as f64;
    assert!(
        session_last_error().is_null(),
        "remove_expired: {}",
        last_error()
    );
    session_shutdown();
    rep.scans.push(format!(
        "memory  {:>7}  remove_expired, none expired   {:>9} ms  {:>8} ns/entry",
        thousands(n as f64),
        ms(scan),
        thousands(scan / n as f64)
    ));
    rep.scans.push(format!(
        "memory  {:>7}  remove_expired, all expired    {:>9} ms  {:>8} ns/entry",
        thousands(n as f64),
        ms(all),
        thousands(all / n as f64)
    ));
}
