//! Generates one `#[test]` per `.wast` file of the folder named by the
//! `CANON_ASYNC_TESTSUITE` environment variable (see `tests/suite.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "wast") {
            out.push(p);
        }
    }
}

/// The nearest `nyi.txt` at or above `dir` (at most three levels up).
fn nyi_list(dir: &Path) -> Vec<PathBuf> {
    let mut d = Some(dir);
    for _ in 0..4 {
        let Some(cur) = d else { break };
        let list = cur.join("nyi.txt");
        if let Ok(text) = std::fs::read_to_string(&list) {
            println!("cargo:rerun-if-changed={}", list.display());
            return text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| cur.join(l).canonicalize().ok())
                .collect();
        }
        d = cur.parent();
    }
    Vec::new()
}

/// The project's `known-failures.txt`: (path suffix, reason) pairs.
fn known_failures() -> Vec<(PathBuf, String)> {
    // Read at run time: `env!` would bake in the path the build script was
    // compiled at, which a copied target folder keeps pointing elsewhere.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let list = Path::new(&manifest).join("known-failures.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    let Ok(text) = std::fs::read_to_string(&list) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (path, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            let path = path.strip_prefix("./").unwrap_or(path);
            (PathBuf::from(path), reason.trim().replace('"', "'"))
        })
        .collect()
}

fn test_name(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let mut name = String::from("wast_");
    for c in rel.to_string_lossy().chars() {
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    name
}

fn main() {
    println!("cargo:rerun-if-env-changed=CANON_ASYNC_TESTSUITE");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::new();
    match std::env::var_os("CANON_ASYNC_TESTSUITE") {
        None => {
            code.push_str(
                "#[test]\nfn suite_not_run() {\n    println!(\"the reference suite tests did not run: \
                 set CANON_ASYNC_TESTSUITE to the suite's test folder and rebuild\");\n}\n",
            );
        }
        Some(dir) => {
            let root = PathBuf::from(dir);
            let root = root.canonicalize().unwrap_or(root);
            println!("cargo:rerun-if-changed={}", root.display());
            let mut files = Vec::new();
            walk(&root, &mut files);
            files.sort();
            let nyi = nyi_list(&root);
            let known = known_failures();
            if files.is_empty() {
                let _ = writeln!(
                    code,
                    "#[test]\nfn suite_empty() {{\n    panic!(\"no .wast files under {:?}\");\n}}",
                    root.display().to_string()
                );
            }
            let mut seen = std::collections::HashSet::new();
            for f in &files {
                let mut name = test_name(&root, f);
                while !seen.insert(name.clone()) {
                    name.push('_');
                }
                let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
                let ignore = if nyi.contains(&canon) {
                    "#[ignore = \"listed in the suite's nyi.txt (lands ahead of implementations)\"]\n"
                        .to_string()
                } else if let Some((_, why)) = known.iter().find(|(p, _)| canon.ends_with(p)) {
                    format!(
                        "#[ignore = \"known failure (spec-tests/known-failures.txt): {why}\"]\n"
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    code,
                    "#[test]\n{ignore}fn {name}() {{\n    run_one({:?});\n}}\n",
                    f.display().to_string()
                );
            }
        }
    }
    std::fs::write(out_dir.join("suite_tests.rs"), code).expect("write generated tests");
}
