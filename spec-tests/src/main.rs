//! `canon-async-spec PATH... [--nyi FILE]`: runs `.wast` files or folders.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use canon_async_spec::suite::{collect_wast, ExpectedFailures};
use canon_async_spec::wast_runner::run_file;

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    nyi: usize,
}

fn usage() -> ExitCode {
    eprintln!("usage: canon-async-spec [--nyi LIST] [PATH...]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut nyi_lists: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--nyi" => match args.next() {
                Some(f) => nyi_lists.push(PathBuf::from(f)),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wast"));
    }
    let mut nyi = ExpectedFailures::default();
    for l in &nyi_lists {
        if let Err(e) = nyi.read(l) {
            eprintln!("cannot read {}: {e}", l.display());
            return ExitCode::from(2);
        }
    }
    let mut files = Vec::new();
    for p in &paths {
        match collect_wast(p) {
            Ok(f) => files.extend(f),
            Err(e) => {
                eprintln!("cannot read {}: {e}", p.display());
                return ExitCode::from(2);
            }
        }
    }
    let mut table: BTreeMap<String, Counts> = BTreeMap::new();
    let (mut passed, mut failed) = (0, 0);
    let mut nyi_passed = Vec::new();
    for f in &files {
        let folder = f
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let row = table.entry(folder).or_default();
        let listed = nyi.contains(f);
        let r = run_file(f);
        match (&r, listed) {
            (Ok(()), false) => {
                println!("PASS {}", f.display());
                passed += 1;
                row.passed += 1;
            }
            (Err(e), false) => {
                println!("FAIL {}: {e}", f.display());
                failed += 1;
                row.failed += 1;
            }
            (Ok(()), true) => {
                println!(
                    "PASS {} (listed as not yet implemented, but passes)",
                    f.display()
                );
                nyi_passed.push(f.display().to_string());
                row.nyi += 1;
            }
            (Err(e), true) => {
                println!("NYI  {}: {e}", f.display());
                row.nyi += 1;
            }
        }
    }
    println!();
    println!(
        "{:<60} {:>6} {:>6} {:>4}",
        "folder", "passed", "failed", "nyi"
    );
    for (folder, c) in &table {
        println!("{folder:<60} {:>6} {:>6} {:>4}", c.passed, c.failed, c.nyi);
    }
    for f in &nyi_passed {
        println!("note: {f} is listed as not yet implemented but passes");
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
