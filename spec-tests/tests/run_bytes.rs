//! `run_component_bytes`, the entry point of the `component` fuzz target.

use canon_async_spec::run_component_bytes;
use canon_async_wasmi::{abi::Val, error::Error};

fn encode(wat: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(wat).unwrap();
    let mut w: wast::Wat<'_> = wast::parser::parse(&buf).unwrap();
    w.encode().unwrap()
}

#[test]
fn invokes_traps_and_missing_exports() {
    let bytes = encode(
        r#"(component
            (core module $M
              (global $n (mut i32) (i32.const 0))
              (func $start (global.set $n (i32.const 41)))
              (start $start)
              (func (export "next") (result i32)
                (global.set $n (i32.add (global.get $n) (i32.const 1)))
                (global.get $n))
              (func (export "boom") unreachable))
            (core instance $m (instantiate $M))
            (func (export "next") (result u32) (canon lift (core func $m "next")))
            (func (export "boom") (canon lift (core func $m "boom"))))"#,
    );
    let r =
        run_component_bytes(&bytes, &["next", "next", "nope", "boom", "next"], 1_000_000).unwrap();
    assert!(matches!(r[0].as_deref(), Ok([Val::U32(42)])), "{r:?}");
    assert!(matches!(r[1].as_deref(), Ok([Val::U32(43)])), "{r:?}");
    assert!(matches!(r[2], Err(Error::Runtime(_))), "{r:?}");
    assert!(
        matches!(&r[3], Err(Error::Trap(t)) if t.0.contains("unreachable")),
        "{r:?}"
    );
    assert!(
        matches!(&r[4], Err(Error::Trap(t)) if t.0.contains("cannot enter")),
        "{r:?}"
    );
}

#[test]
fn invalid_bytes_and_fuel() {
    assert!(matches!(
        run_component_bytes(b"\0asm", &[], 1000),
        Err(Error::Invalid(_))
    ));
    let bytes = encode(
        r#"(component
            (core module $M (func (export "spin") (loop $l (br $l))))
            (core instance $m (instantiate $M))
            (func (export "spin") (canon lift (core func $m "spin"))))"#,
    );
    // Little fuel: wasmi's interpreter recurses per executed instruction in
    // debug builds, so a long spin would overflow the test thread's stack.
    let r = run_component_bytes(&bytes, &["spin"], 200).unwrap();
    assert!(
        matches!(&r[0], Err(Error::Trap(t)) if t.0.contains("fuel")),
        "{r:?}"
    );
}

/// An export that resolves and leaves its thread yielding forever: each
/// invoke returns its value, the left-behind loop does not eat the fuel of
/// later invokes, and the run ends (nothing runs it after the last invoke).
#[test]
fn left_behind_yield_loop() {
    let bytes = encode(
        r#"(component
            (canon thread.yield (core func $yield))
            (canon task.return (result u32) (core func $task.return))
            (core module $M
              (import "" "yield" (func $yield (result i32)))
              (import "" "task.return" (func $task.return (param i32)))
              (func (export "start")
                (call $task.return (i32.const 42))
                (loop $l (drop (call $yield)) (br $l)))
              (func (export "answer") (result i32) (i32.const 9)))
            (core instance $m (instantiate $M (with "" (instance
              (export "yield" (func $yield))
              (export "task.return" (func $task.return))))))
            (func (export "start") async (result u32)
              (canon lift (core func $m "start") async))
            (func (export "answer") (result u32) (canon lift (core func $m "answer"))))"#,
    );
    let r = run_component_bytes(&bytes, &["start", "answer", "start", "answer"], 10_000).unwrap();
    assert!(matches!(r[0].as_deref(), Ok([Val::U32(42)])), "{r:?}");
    assert!(matches!(r[1].as_deref(), Ok([Val::U32(9)])), "{r:?}");
    assert!(matches!(r[2].as_deref(), Ok([Val::U32(42)])), "{r:?}");
    assert!(matches!(r[3].as_deref(), Ok([Val::U32(9)])), "{r:?}");
}
