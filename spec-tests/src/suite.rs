//! Finding `.wast` files and reading `nyi.txt`-style lists.

use std::collections::HashSet;
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

/// Reads a list in the format of the suite's `nyi.txt`: one path a line,
/// relative to the list's folder; `#` starts a comment line. Returns the
/// listed files, canonicalized where they exist.
pub fn read_nyi(list: &Path) -> io::Result<HashSet<PathBuf>> {
    let text = std::fs::read_to_string(list)?;
    let base = list.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| canonical(&base.join(l)))
        .collect())
}

/// Canonicalizes a path if possible, else returns it unchanged.
pub fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
