//! Finding `.wast` files and reading `nyi.txt`-style lists.

use std::io;
use std::path::{Path, PathBuf};

/// All `.wast` files under `path` (or `path` itself), recursively, sorted.
pub fn collect_wast(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.is_dir() {
        walk(path, &mut out)?;
    } else {
        out.push(path.to_path_buf());
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "wast") {
            out.push(p);
        }
    }
    Ok(())
}

/// Files expected to fail: the suite's `nyi.txt` and the project's own
/// `known-failures.txt`. One entry a line (`#` starts a comment line; text
/// after the path is the reason); a path that exists relative to the list's
/// folder names that file, any other path matches every file whose path
/// ends with it (`async/x.wast` matches `.../test/async/x.wast`).
#[derive(Debug, Default, Clone)]
pub struct ExpectedFailures {
    entries: Vec<PathBuf>,
}

impl ExpectedFailures {
    /// Adds the entries of `list`.
    pub fn read(&mut self, list: &Path) -> io::Result<()> {
        let text = std::fs::read_to_string(list)?;
        let base = list.parent().unwrap_or(Path::new("."));
        for l in text.lines().map(str::trim) {
            let Some(entry) = l.split_whitespace().next() else {
                continue;
            };
            if entry.starts_with('#') {
                continue;
            }
            let rel = Path::new(entry.strip_prefix("./").unwrap_or(entry));
            let here = base.join(rel);
            self.entries.push(if here.exists() {
                canonical(&here)
            } else {
                rel.to_path_buf()
            });
        }
        Ok(())
    }

    /// Whether `file` is listed.
    pub fn contains(&self, file: &Path) -> bool {
        let f = canonical(file);
        self.entries
            .iter()
            .any(|e| *e == f || (e.is_relative() && f.ends_with(e)))
    }
}

/// Canonicalizes a path if possible, else returns it unchanged.
pub fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
