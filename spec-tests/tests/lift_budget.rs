//! The lift budget is a setting of the runtime (`Rt::set_max_lift_bytes`):
//! a guest-to-guest call whose argument costs exactly the budget goes
//! through, one byte less traps with the budget's message.

use std::collections::HashMap;

use canon_async_spec::wast_runner::new_engine;
use canon_async_wasmi::abi::Val;
use canon_async_wasmi::component::{self, instantiate::ComponentVal, ItemVal};
use canon_async_wasmi::driver::Driver;
use canon_async_wasmi::state::{new_store, DEFAULT_MAX_LIFT_BYTES};

/// `run` passes a `list<u8>` of 100 bytes to a callee that returns its
/// length.
const WAT: &str = r#"(component
  (component $Callee
    (core module $M
      (memory (export "mem") 1)
      (global $next (mut i32) (i32.const 1024))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $next))
        (global.set $next (i32.add (local.get $p) (local.get 3)))
        (local.get $p))
      (func (export "len") (param i32 i32) (result i32) (local.get 1)))
    (core instance $m (instantiate $M))
    (func (export "len") (param "x" (list u8)) (result u32)
      (canon lift (core func $m "len") (memory $m "mem") (realloc (func $m "realloc")))))
  (component $Caller
    (import "len" (func $len (param "x" (list u8)) (result u32)))
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core func $len' (canon lower (func $len) (memory $mem "mem")))
    (core module $M
      (import "" "len" (func $len (param i32 i32) (result i32)))
      (func (export "run") (result i32) (call $len (i32.const 0) (i32.const 100))))
    (core instance $m (instantiate $M (with "" (instance (export "len" (func $len'))))))
    (func (export "run") (result u32) (canon lift (core func $m "run"))))
  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "len" (func $callee "len"))))
  (func (export "run") (alias export $caller "run")))"#;

fn run_with_budget(bytes: Option<u64>) -> Result<Vec<Val>, String> {
    let buf = wast::parser::ParseBuffer::new(WAT).unwrap();
    let mut w: wast::Wat<'_> = wast::parser::parse(&buf).unwrap();
    let bin = w.encode().unwrap();
    let engine = new_engine();
    let def = component::parse_component(&bin, &engine).unwrap();
    let mut store = new_store(&engine);
    assert_eq!(store.data().max_lift_bytes, DEFAULT_MAX_LIFT_BYTES);
    if let Some(b) = bytes {
        store.data_mut().set_max_lift_bytes(b);
    }
    store.set_fuel(1_000_000).unwrap();
    let mut driver = Driver::default();
    let comp = ComponentVal { def, env: None };
    let inst = component::instantiate(&mut store, &mut driver, &comp, &HashMap::new(), None)
        .map_err(|e| e.to_string())?;
    let Some(ItemVal::Func(f)) = inst.exports.get("run") else {
        panic!("no export `run`");
    };
    let f = f.clone();
    driver.invoke(&mut store, &f, Vec::new()).map_err(|t| t.0)
}

#[test]
fn budget_is_configurable() {
    let list = 100 * std::mem::size_of::<Val>() as u64;
    assert_eq!(run_with_budget(None), Ok(vec![Val::U32(100)]));
    assert_eq!(run_with_budget(Some(list)), Ok(vec![Val::U32(100)]));
    let e = run_with_budget(Some(list - 1)).unwrap_err();
    assert!(
        e.contains("value too large to lift") && e.contains(&format!("{} bytes", list - 1)),
        "{e}"
    );
}
