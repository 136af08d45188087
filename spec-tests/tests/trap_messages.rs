//! A trap is printed with one "wasm trap: " prefix, whichever part of the
//! runtime (the core, the driver's deadlock check, wasmi) raised it.

use canon_async_spec::{run_component_bytes, wast_runner::run_source};
use canon_async_wasmi::error::Error;

/// A stackful async export whose core function returns without
/// `task.return`: the core traps with `Trap::TaskNotResolved`.
const NO_RETURN: &str = r#"(component
  (core module $M (func (export "f")))
  (core instance $m (instantiate $M))
  (func (export "f") async (result u32) (canon lift (core func $m "f") async)))"#;

/// A callback-lifted export that waits on an empty waitable set: nothing
/// can ever wake it, so the invoke deadlocks.
const DEADLOCK: &str = r#"(component
  (canon waitable-set.new (core func $waitable-set.new))
  (core module $M
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (func (export "f") (result i32)
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (call $waitable-set.new) (i32.const 4))))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
  (core instance $m (instantiate $M (with "" (instance
    (export "waitable-set.new" (func $waitable-set.new))))))
  (func (export "f") async (result u32)
    (canon lift (core func $m "f") async (callback (func $m "cb")))))"#;

fn encode(wat: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(wat).unwrap();
    let mut w: wast::Wat<'_> = wast::parser::parse(&buf).unwrap();
    w.encode().unwrap()
}

fn failure_of(component: &str) -> String {
    let src = format!("{component}\n(assert_return (invoke \"f\") (u32.const 0))\n");
    run_source(&src).expect_err("the invoke must trap").message
}

#[test]
fn core_trap_has_one_prefix() {
    assert_eq!(
        failure_of(NO_RETURN),
        "expected a return, got wasm trap: cannot exit a task before it returned or was cancelled"
    );
    let r = run_component_bytes(&encode(NO_RETURN), &["f"], 100_000).unwrap();
    match &r[0] {
        Err(e @ Error::Trap(_)) => assert_eq!(
            e.to_string(),
            "wasm trap: cannot exit a task before it returned or was cancelled"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn deadlock_has_one_prefix() {
    let m = failure_of(DEADLOCK);
    let first = m.lines().next().unwrap();
    assert_eq!(
        first,
        "expected a return, got wasm trap: deadlock detected: event loop cannot make further progress"
    );
    assert_eq!(m.matches("wasm trap:").count(), 1, "{m}");
    let r = run_component_bytes(&encode(DEADLOCK), &["f"], 100_000).unwrap();
    match &r[0] {
        Err(e @ Error::Trap(_)) => {
            let s = e.to_string();
            assert!(
                s.starts_with(
                    "wasm trap: deadlock detected: event loop cannot make further progress\n"
                ),
                "{s}"
            );
            assert_eq!(s.matches("wasm trap:").count(), 1, "{s}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn wasm_trap_has_one_prefix() {
    let m = failure_of(
        r#"(component
  (core module $M (func (export "f") (result i32) unreachable))
  (core instance $m (instantiate $M))
  (func (export "f") (result u32) (canon lift (core func $m "f"))))"#,
    );
    assert_eq!(
        m,
        "expected a return, got wasm trap: wasm `unreachable` instruction executed"
    );
}
