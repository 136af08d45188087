//! `run_component_bytes`, the entry point of the `component` fuzz target.

use canon_async_spec::{abi::Val, error::Error, run_component_bytes};

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
