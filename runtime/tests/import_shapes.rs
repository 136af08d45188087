//! Imported interfaces as WASI hosts meet them: an interface that only
//! defines types, a resource used by one interface from another (the
//! type aliased from the interface that uses it), functions the host does
//! not define ([`Linker::trap_unknown_funcs`]), and an unknown interface
//! (a link error naming it).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use canon_async_wasmi::{Component, Engine, Error, FuncTy, Linker, Store, Ty, Val};

const COMPONENT: &str = r#"(component
  (import "test:shapes/types@0.1.0" (instance $types
    (type $e (enum "a" "b"))
    (export "e" (type (eq $e)))
  ))
  (import "test:shapes/res@0.1.0" (instance $res
    (export "thing" (type (sub resource)))
  ))
  (alias export $res "thing" (type $thing))
  (import "test:shapes/user@0.1.0" (instance $user
    (alias outer 1 $thing (type $outer))
    (export "thing" (type $t (eq $outer)))
    (export "make" (func (result (own $t))))
    (export "peek" (func (param "t" (borrow $t)) (result u32)))
    (export "unused" (func))
  ))
  (alias export $types "e" (type $e))
  (alias export $user "thing" (type $thing2))
  (alias export $user "make" (func $make))
  (alias export $user "peek" (func $peek))
  (alias export $user "unused" (func $unused))
  (core func $make' (canon lower (func $make)))
  (core func $peek' (canon lower (func $peek)))
  (core func $unused' (canon lower (func $unused)))
  (core func $drop (canon resource.drop $thing2))
  (core module $M
    (import "" "make" (func $make (result i32)))
    (import "" "peek" (func $peek (param i32) (result i32)))
    (import "" "unused" (func $unused))
    (import "" "drop" (func $drop (param i32)))
    (func (export "run") (result i32) (local $h i32) (local $r i32)
      (local.set $h (call $make))
      (local.set $r (call $peek (local.get $h)))
      (call $drop (local.get $h))
      (local.get $r))
    (func (export "call-unused") (call $unused))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "make" (func $make'))
    (export "peek" (func $peek'))
    (export "unused" (func $unused'))
    (export "drop" (func $drop))
  ))))
  (func (export "run") (result u32) (canon lift (core func $m "run")))
  (func (export "call-unused") (canon lift (core func $m "call-unused")))
)
"#;

fn component(e: &Engine) -> Component {
    let buf = wast::parser::ParseBuffer::new(COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    Component::new(e, &w.encode().unwrap()).unwrap()
}

/// The host: the resource in `res`, `make` and `peek` in `user`; with
/// `trap_unknown`, `types` known and `user`'s other functions trapping.
fn linker(dropped: &Arc<AtomicU32>, trap_unknown: bool) -> Linker {
    let mut l = Linker::new();
    let d = dropped.clone();
    let thing = l
        .resource("test:shapes/res@0.1.0#thing", move |_, rep| {
            d.store(rep, Ordering::SeqCst)
        })
        .unwrap();
    let t = thing.clone();
    l.func(
        "test:shapes/user@0.1.0#make",
        FuncTy {
            params: vec![],
            result: Some(thing.own()),
            is_async: false,
        },
        move |cx, _| Ok(vec![cx.resource_new(&t, 42)]),
    )
    .unwrap();
    let t = thing.clone();
    l.func(
        "test:shapes/user@0.1.0#peek",
        FuncTy {
            params: vec![("t".into(), thing.borrow())],
            result: Some(Ty::U32),
            is_async: false,
        },
        move |cx, args| Ok(vec![Val::U32(cx.resource_rep(&t, &args[0]).unwrap())]),
    )
    .unwrap();
    if trap_unknown {
        l.trap_unknown_funcs("test:shapes/types@0.1.0");
        l.trap_unknown_funcs("test:shapes/user@0.1.0");
    }
    l
}

#[test]
fn a_resource_used_from_another_interface_is_the_hosts() {
    let e = Engine::default();
    let c = component(&e);
    let dropped = Arc::new(AtomicU32::new(0));
    let mut s = Store::new(&e);
    let i = linker(&dropped, true).instantiate(&mut s, &c).unwrap();
    let run = i.func("run").unwrap();
    assert_eq!(s.call(&run, &[]).unwrap(), vec![Val::U32(42)]);
    assert_eq!(dropped.load(Ordering::SeqCst), 42);
}

#[test]
fn a_function_the_host_does_not_define_traps_when_called() {
    let e = Engine::default();
    let c = component(&e);
    let mut s = Store::new(&e);
    let i = linker(&Arc::default(), true)
        .instantiate(&mut s, &c)
        .unwrap();
    let f = i.func("call-unused").unwrap();
    let err = s.call(&f, &[]).unwrap_err().to_string();
    assert!(
        err.contains("`test:shapes/user@0.1.0#unused` is not available in this host"),
        "{err}"
    );
}

#[test]
fn without_trap_unknown_funcs_the_missing_pieces_are_link_errors() {
    let e = Engine::default();
    let c = component(&e);
    let err = linker(&Arc::default(), false)
        .instantiate(&mut Store::new(&e), &c)
        .err()
        .unwrap();
    assert!(matches!(&err, Error::Link(_)), "{err}");
    assert!(
        err.to_string()
            .contains("missing import `test:shapes/types@0.1.0`"),
        "{err}"
    );
    let mut l = linker(&Arc::default(), false);
    l.trap_unknown_funcs("test:shapes/types@0.1.0");
    let err = l.instantiate(&mut Store::new(&e), &c).err().unwrap();
    assert!(matches!(&err, Error::Link(_)), "{err}");
    assert!(
        err.to_string()
            .contains("missing import `test:shapes/user@0.1.0#unused`"),
        "{err}"
    );
}
