//! `canon-async run` through the built binary: the `hello` component built
//! by componentize-py (`../shared/components/hello/hello.wasm`), and WAT
//! command components for the error paths and a large stream.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_canon-async");

/// The `hello` component; a clear failure when it is absent.
fn hello() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/components/hello/hello.wasm");
    assert!(
        p.is_file(),
        "{} is missing: the example components live in ../shared/components/ beside the \
         project checkout; rebuild them with ../shared/components/build.sh (componentize-py \
         0.25.1 from PyPI)",
        p.display()
    );
    p
}

/// One run at a time: `hello`'s sleeps run on the real clock, and the
/// order it prints ("fast,mid,slow" for 10, 20 and 30 ms started within
/// about a millisecond of each other) needs the machine not to be
/// oversubscribed by the test's own runs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn output(c: &mut Command) -> Output {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    c.output().expect("the canon-async binary runs")
}

fn run(args: &[&str]) -> Output {
    output(Command::new(BIN).arg("run").args(args))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes the component of the WAT `text` to a file of the test's own.
fn wat_file(name: &str, text: &str) -> PathBuf {
    let buf = wast::parser::ParseBuffer::new(text).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let bytes = w.encode().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(format!("{name}.wasm"));
    std::fs::write(&p, bytes).unwrap();
    p
}

const HELLO_3_X: &str = "hello from a WASI 0.3 guest; args=['3', 'x']
GREETING=hi
woke in order fast,mid,slow after at least 30 ms
random bytes: 16
this line went through a stream<u8>
";

/// The end of the phase `name` in the `CANON_ASYNC_TIMING` line, in ms.
fn phase_end(stderr: &str, name: &str) -> f64 {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("[timing ms from start] "))
        .unwrap_or_else(|| panic!("no timing line in {stderr}"));
    line.split(", ")
        .find_map(|p| p.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in {line}"))
}

#[test]
fn hello_prints_its_five_lines_and_exits_with_its_code() {
    let h = hello();
    let o = output(Command::new(BIN).env("CANON_ASYNC_TIMING", "1").args([
        "run",
        "--env",
        "GREETING=hi",
        h.to_str().unwrap(),
        "3",
        "x",
    ]));
    let e = stderr(&o);
    assert_eq!(stdout(&o), HELLO_3_X, "stderr: {e}");
    assert_eq!(o.status.code(), Some(3), "stderr: {e}");
    // The sleeps are real: the run (after instantiation) takes at least
    // the longest of them. (That they overlap is measured by the `hello`
    // benchmark: a timed upper bound would be flaky on a loaded machine.)
    let run_ms = phase_end(&e, "run") - phase_end(&e, "instantiate");
    assert!(run_ms >= 30.0, "the run took {run_ms} ms: {e}");
}

#[test]
fn on_the_virtual_clock_hello_prints_the_same() {
    let h = hello();
    let o = output(
        Command::new(BIN)
            .env("CANON_ASYNC_TIMING", "1")
            .args(["run", "--clock", "virtual", "--env", "GREETING=hi"])
            .args([h.to_str().unwrap(), "3", "x"]),
    );
    let e = stderr(&o);
    assert_eq!(stdout(&o), HELLO_3_X, "stderr: {e}");
    assert_eq!(o.status.code(), Some(3), "stderr: {e}");
}

#[test]
fn hello_without_arguments_exits_0_and_sees_no_environment() {
    let h = hello();
    // A variable of this process does not reach the guest unless passed.
    let o = output(
        Command::new(BIN)
            .env("GREETING", "from the host")
            .args(["run", h.to_str().unwrap()]),
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "hello from a WASI 0.3 guest; args=[]",
            "GREETING=<unset>",
            "woke in order fast,mid,slow after at least 30 ms",
            "random bytes: 16",
            "this line went through a stream<u8>",
        ]
    );
    // With --inherit-env it does.
    let o = output(Command::new(BIN).env("GREETING", "inherited").args([
        "run",
        "--inherit-env",
        h.to_str().unwrap(),
    ]));
    assert!(
        stdout(&o).contains("\nGREETING=inherited\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_seeded_schedule_gives_the_same_output_twice() {
    let h = hello();
    // On the virtual clock: on the real one, the command's sleepers of 10
    // and 20 ms can wake out of order on a loaded machine (seen once while
    // another build ran), which is the clock's doing, not the schedule's.
    let args = [
        "--clock",
        "virtual",
        "--schedule",
        "7",
        "--env",
        "GREETING=hi",
        h.to_str().unwrap(),
        "3",
        "x",
    ];
    let a = run(&args);
    let b = run(&args);
    assert_eq!(stdout(&a), HELLO_3_X, "stderr: {}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(a.status.code(), Some(3));
    assert_eq!(b.status.code(), Some(3));
}

/// The replay string a `--print-schedule` run printed.
fn printed_schedule(o: &Output) -> String {
    let e = stderr(o);
    e.lines()
        .find_map(|l| l.strip_prefix("schedule: --schedule replay:"))
        .unwrap_or_else(|| panic!("no schedule in {e}"))
        .to_string()
}

/// A command with one real choice: two `wait-for`s of 1 ms resolve at the
/// same instant of the virtual clock, and which event `waitable-set.wait`
/// delivers first is the chooser's. `run` returns `ok` (status 0) when
/// the first wait's event came first, `err` (status 1) otherwise.
const CHOICE: &str = r#"(component
  (import "wasi:clocks/monotonic-clock@0.3.0" (instance $clock
    (export "wait-for" (func async (param "how-long" u64)))
  ))
  (alias export $clock "wait-for" (func $wait-for))
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core func $wait-for' (canon lower (func $wait-for) async))
  (core func $new (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core func $wait (canon waitable-set.wait (memory (core memory $mem "mem"))))
  (core func $subtask.drop (canon subtask.drop))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "wait-for" (func $wait-for (param i64) (result i32)))
    (import "" "new" (func $new (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "wait" (func $wait (param i32 i32) (result i32)))
    (import "" "subtask.drop" (func $subtask.drop (param i32)))
    (func (export "run") (result i32)
      (local $a i32) (local $b i32) (local $set i32) (local $first i32)
      ;; two 1 ms waits, both pending (STARTED = 1), the same deadline
      (local.set $a (call $wait-for (i64.const 1000000)))
      (local.set $b (call $wait-for (i64.const 1000000)))
      (if (i32.ne (i32.and (local.get $a) (i32.const 0xf)) (i32.const 1)) (then unreachable))
      (if (i32.ne (i32.and (local.get $b) (i32.const 0xf)) (i32.const 1)) (then unreachable))
      (local.set $a (i32.shr_u (local.get $a) (i32.const 4)))
      (local.set $b (i32.shr_u (local.get $b) (i32.const 4)))
      (local.set $set (call $new))
      (call $join (local.get $a) (local.get $set))
      (call $join (local.get $b) (local.get $set))
      ;; both resolve at once: which event comes first is a choice
      (drop (call $wait (local.get $set) (i32.const 0)))
      (local.set $first (i32.load (i32.const 0)))
      (drop (call $wait (local.get $set) (i32.const 0)))
      (call $subtask.drop (local.get $a))
      (call $subtask.drop (local.get $b))
      ;; ok when the first wait's event came first, err otherwise
      (i32.ne (local.get $first) (local.get $a)))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "wait-for" (func $wait-for'))
    (export "new" (func $new))
    (export "join" (func $join))
    (export "wait" (func $wait))
    (export "subtask.drop" (func $subtask.drop))
  ))))
  (func $run async (result (result)) (canon lift (core func $m "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r))
)
"#;

#[test]
fn a_seeded_run_replays_from_its_replay_string() {
    let p = wat_file("choice", CHOICE);
    let p = p.to_str().unwrap();
    let go = |schedule: &str| {
        let o = run(&[
            "--print-schedule",
            "--clock",
            "virtual",
            "--schedule",
            schedule,
            p,
        ]);
        (o.status.code(), printed_schedule(&o))
    };
    // The replay string decides the interleaving, and so the status.
    assert_eq!(go("replay:0"), (Some(0), "0".to_string()));
    assert_eq!(go("replay:1"), (Some(1), "1".to_string()));
    // Every seeded run replays from the string it printed; the seeds
    // between them take both branches.
    let mut statuses = std::collections::BTreeSet::new();
    for seed in 1..=8 {
        let (status, choices) = go(&seed.to_string());
        assert_eq!(go(&format!("replay:{choices}")), (status, choices.clone()));
        statuses.insert(status);
    }
    assert_eq!(statuses.len(), 2, "{statuses:?}");
}

/// A command whose `run` traps.
const TRAPS: &str = r#"(component
  (core module $m (func (export "run") (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func $run async (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r))
)"#;

#[test]
fn a_trap_is_printed_with_its_export_and_a_replay_string() {
    let p = wat_file("traps", TRAPS);
    let o = run(&[p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(134), "{e}");
    assert!(
        e.contains("wasm trap: wasm `unreachable` instruction executed"),
        "{e}"
    );
    assert!(e.contains("`wasi:cli/run@0.3.0#run`"), "{e}");
    assert!(e.contains("traps.wasm` (instance"), "{e}");
    assert!(e.contains("--schedule replay:"), "{e}");
    assert_eq!(stdout(&o), "");
    // The printed replay string is accepted back.
    let replay = e
        .split("--schedule ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let o2 = run(&["--schedule", &replay, p.to_str().unwrap()]);
    assert_eq!(o2.status.code(), Some(134), "{}", stderr(&o2));
}

/// A command importing an interface no host defines.
const UNKNOWN: &str = r#"(component
  (import "wasi:nowhere/nothing@0.1.0" (instance $n (export "f" (func))))
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run async (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r))
)"#;

#[test]
fn an_unknown_interface_is_a_link_error_naming_it() {
    let p = wat_file("unknown", UNKNOWN);
    let o = run(&[p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("link error: missing import `wasi:nowhere/nothing@0.1.0`"),
        "{e}"
    );
}

/// How many bytes the large-stream command writes.
const BIG: usize = 10 << 20;

/// A command that writes `BIG` bytes (byte i is i mod 251) to
/// `wasi:cli/stdout@0.3.0` through one `stream<u8>`, with synchronous
/// `stream.write`s until all of it went, then waits for the future.
const BIG_STREAM: &str = r#"(component
  (import "wasi:cli/stdout@0.3.0" (instance $stdout
    (type $ec (enum "io" "illegal-byte-sequence" "pipe"))
    (export "error-code" (type $ec' (eq $ec)))
    (type $res (result (error $ec')))
    (type $fut (future $res))
    (type $st (stream u8))
    (export "write-via-stream" (func (param "data" $st) (result $fut)))
  ))
  (alias export $stdout "write-via-stream" (func $wvs))
  (alias export $stdout "error-code" (type $ec))
  (type $res (result (error $ec)))
  (type $FT (future $res))
  (type $ST (stream u8))
  (core module $Mem (memory (export "mem") 252))
  (core instance $mem (instantiate $Mem))
  (core func $stream.new (canon stream.new $ST))
  (core func $stream.write (canon stream.write $ST (memory (core memory $mem "mem"))))
  (core func $stream.drop-writable (canon stream.drop-writable $ST))
  (core func $future.read (canon future.read $FT (memory (core memory $mem "mem"))))
  (core func $future.drop-readable (canon future.drop-readable $FT))
  (core func $wvs' (canon lower (func $wvs)))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "stream.new" (func $stream.new (result i64)))
    (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
    (import "" "stream.drop-writable" (func $stream.drop-writable (param i32)))
    (import "" "future.read" (func $future.read (param i32 i32) (result i32)))
    (import "" "future.drop-readable" (func $future.drop-readable (param i32)))
    (import "" "write-via-stream" (func $wvs (param i32) (result i32)))
    (func (export "run") (result i32)
      (local $i i32) (local $rw i64) (local $w i32) (local $f i32) (local $ret i32) (local $done i32)
      ;; 251 bytes 0..250 at 65536, doubled by memory.copy (a long loop of
      ;; single-byte stores would run deep on wasmi's native stack)
      (loop $fill
        (i32.store8 offset=65536 (local.get $i) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $fill (i32.lt_u (local.get $i) (i32.const 251))))
      (loop $double
        (memory.copy (i32.add (i32.const 65536) (local.get $i)) (i32.const 65536) (local.get $i))
        (local.set $i (i32.shl (local.get $i) (i32.const 1)))
        (br_if $double (i32.lt_u (local.get $i) (i32.const 10485760))))
      (local.set $rw (call $stream.new))
      (local.set $w (i32.wrap_i64 (i64.shr_u (local.get $rw) (i64.const 32))))
      (local.set $f (call $wvs (i32.wrap_i64 (local.get $rw))))
      (loop $write
        (local.set $ret (call $stream.write (local.get $w)
          (i32.add (i32.const 65536) (local.get $done))
          (i32.sub (i32.const 10485760) (local.get $done))))
        (if (i32.ne (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 0)) (then unreachable))
        (local.set $done (i32.add (local.get $done) (i32.shr_u (local.get $ret) (i32.const 4))))
        (br_if $write (i32.lt_u (local.get $done) (i32.const 10485760))))
      (call $stream.drop-writable (local.get $w))
      (local.set $ret (call $future.read (local.get $f) (i32.const 0)))
      (if (i32.ne (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 0)) (then unreachable))
      (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 0)) (then unreachable))
      (call $future.drop-readable (local.get $f))
      (i32.const 0))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "stream.new" (func $stream.new))
    (export "stream.write" (func $stream.write))
    (export "stream.drop-writable" (func $stream.drop-writable))
    (export "future.read" (func $future.read))
    (export "future.drop-readable" (func $future.drop-readable))
    (export "write-via-stream" (func $wvs'))
  ))))
  (func $run async (result (result)) (canon lift (core func $m "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r))
)"#;

/// FNV-1a, 64-bit.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn ten_mib_through_the_stdout_stream_arrive_whole() {
    let p = wat_file("big-stream", BIG_STREAM);
    let o = run(&[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    assert_eq!(o.stdout.len(), BIG);
    assert_eq!(hash(&o.stdout), hash(&want));
}

/// A command whose `run` waits on an empty waitable set: nothing can wake it.
const DEADLOCKS: &str = r#"(component
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core func $new (canon waitable-set.new))
  (core func $wait (canon waitable-set.wait (memory (core memory $mem "mem"))))
  (core module $m
    (import "" "new" (func $new (result i32)))
    (import "" "wait" (func $wait (param i32 i32) (result i32)))
    (func (export "run") (result i32)
      (drop (call $wait (call $new) (i32.const 0)))
      (i32.const 0)))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new))
    (export "wait" (func $wait))))))
  (func $run async (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r))
)"#;

#[test]
fn a_deadlock_is_reported_with_a_replay_string() {
    let p = wat_file("deadlocks", DEADLOCKS);
    let o = run(&["--schedule", "3", p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(134), "{e}");
    assert!(e.contains("deadlock detected"), "{e}");
    assert!(
        e.contains("schedule (seed 3); replay it with: --schedule replay:"),
        "{e}"
    );
}

#[test]
fn running_out_of_fuel_traps() {
    let p = wat_file("big-stream-fuel", BIG_STREAM);
    let o = run(&["--fuel", "100", p.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(134), "{e}");
    assert!(e.contains("all fuel consumed by WebAssembly"), "{e}");
    assert_eq!(o.stdout.len(), 0);
}
