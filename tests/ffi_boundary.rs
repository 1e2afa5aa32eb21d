//! Every export goes through the panic boundary, and exports are written literally
//! (cbindgen does not expand macros, so a macro-made export would vanish from the
//! header).

#[test]
fn every_export_runs_inside_the_boundary() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/ffi.rs")).unwrap();
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/session.h")).unwrap();
    let mut exports = 0;
    let mut rest = source.as_str();
    while let Some(at) = rest.find("#[no_mangle]") {
        rest = &rest[at + "#[no_mangle]".len()..];
        let end = rest.find("\n}\n").expect("function end");
        let body = &rest[..end];
        let signature = body
            .lines()
            .find(|l| l.contains("extern \"C\" fn"))
            .expect("an extern fn");
        assert!(
            body.contains("boundary(") || body.contains("no_panic("),
            "export without the panic boundary: {signature}"
        );
        let name = signature
            .split("fn ")
            .nth(1)
            .and_then(|s| s.split('(').next())
            .unwrap();
        assert!(
            header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
            "export {name} is missing from the header"
        );
        exports += 1;
    }
    assert!(exports >= 13, "found only {exports} exports");
    for dir in ["src", "src/store"] {
        for entry in std::fs::read_dir(format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("ffi.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains("#[no_mangle]"),
                    "export outside src/ffi.rs: {}",
                    path.display()
                );
            }
        }
    }
}
