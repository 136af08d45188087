//! Runs the project's own `.wast` files under `spec-tests/wast/`.

#[test]
fn own_wast_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wast");
    let files = canon_async_spec::suite::collect_wast(&dir).expect("read spec-tests/wast");
    assert!(!files.is_empty(), "no .wast files in spec-tests/wast");
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = canon_async_spec::wast_runner::run_file(f) {
            failures.push(format!("FAIL {}: {e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
