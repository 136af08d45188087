//! `canon-async run hello.wasm` on the real clock against the same run on
//! the virtual clock (its three sleeps of 10, 20 and 30 ms take no time):
//! the sleeps overlap when the real run takes at least 30 ms and less
//! than 60 ms more than the virtual one. Also the time from the process's
//! start to the guest's first output, and where it goes.
//!
//! `cargo bench -p canon-async-cli --bench hello` (release build).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_canon-async");
const RUNS: usize = 9;

/// One run: (wall time, the phases' ends from the process's start), in ms.
fn once(clock: &str, hello: &Path) -> (f64, Vec<(String, f64)>) {
    let t = Instant::now();
    let o = Command::new(BIN)
        .env("CANON_ASYNC_TIMING", "1")
        .args(["run", "--clock", clock, "--env", "GREETING=hi"])
        .arg(hello)
        .output()
        .expect("the canon-async binary runs");
    let wall = t.elapsed().as_secs_f64() * 1e3;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("[timing ms from start] "))
        .expect("a timing line");
    let phases = line
        .split(", ")
        .filter_map(|p| {
            let (name, ms) = p.rsplit_once(' ')?;
            Some((name.to_string(), ms.parse().ok()?))
        })
        .collect();
    (wall, phases)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn phase(p: &[(String, f64)], name: &str) -> f64 {
    p.iter().find(|(n, _)| n == name).map(|(_, t)| *t).unwrap()
}

fn main() {
    let hello =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/components/hello/hello.wasm");
    assert!(
        hello.is_file(),
        "{} is missing (see ../shared/components/README.md)",
        hello.display()
    );
    let mut results = Vec::new();
    for clock in ["real", "virtual"] {
        let runs: Vec<_> = (0..RUNS).map(|_| once(clock, &hello)).collect();
        let wall = median(runs.iter().map(|r| r.0).collect());
        // The run itself: from the end of instantiation to the end.
        let run = median(
            runs.iter()
                .map(|r| phase(&r.1, "run") - phase(&r.1, "instantiate"))
                .collect(),
        );
        let at = |name: &str| median(runs.iter().map(|r| phase(&r.1, name)).collect());
        println!(
            "{clock:>7} clock: wall {wall:.1} ms; from start: read {:.1}, parse and compile {:.1}, \
             instantiate {:.1}, first output {:.1}, end {:.1} ms; the run {run:.1} ms (medians of {RUNS})",
            at("read"),
            at("parse and compile"),
            at("instantiate"),
            at("first output"),
            at("run"),
        );
        results.push(run);
    }
    let extra = results[0] - results[1];
    let ok = results[0] >= 30.0 && extra < 60.0;
    println!(
        "sleeps: the real run takes {:.1} ms, {extra:.1} ms more than on the virtual clock \
         (want >= 30 ms and < 60 ms more: {})",
        results[0],
        if ok { "ok, they overlap" } else { "NOT MET" }
    );
}
