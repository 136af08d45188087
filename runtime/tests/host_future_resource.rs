//! A host future whose element type has a host resource in it
//! (`future<own<r>>` made with `HostCx::future_new(Some(r.own()))`): the
//! guest's end has the store's resource type, and the host's value (an
//! own handle) reaches the guest and comes back as the same resource.

use std::sync::Arc;

use canon_async_wasmi::{Component, Config, Engine, FuncTy, Linker, Store, Ty};

const COMPONENT: &str = r#"
(component
  (import "test:host/res@0.1.0" (instance $h
    (export "r" (type (sub resource)))
    (export "make" (func (result (future (own 0)))))))
  (alias export $h "r" (type $r))
  (alias export $h "make" (func $make))
  (type $f (future (own $r)))
  (core module $Libc (memory (export "mem") 1))
  (core instance $libc (instantiate $Libc))
  (core func $make (canon lower (func $make)))
  (core func $read (canon future.read $f async (memory $libc "mem")))
  (core func $dropr (canon future.drop-readable $f))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "make" (func $make (result i32)))
    (import "" "read" (func $read (param i32 i32) (result i32)))
    (import "" "dropr" (func $dropr (param i32)))
    (global $f (mut i32) (i32.const 0))
    ;; Takes the host's future.
    (func (export "start") (global.set $f (call $make)))
    ;; Reads it (the host's value is there by now) and returns the handle
    ;; it held.
    (func (export "get") (result i32)
      (if (i32.ne (i32.and (call $read (global.get $f) (i32.const 0)) (i32.const 0xf)) (i32.const 0))
        (then unreachable))
      (call $dropr (global.get $f))
      (i32.load (i32.const 0))))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $libc "mem"))
    (export "make" (func $make))
    (export "read" (func $read))
    (export "dropr" (func $dropr))))))
  (func (export "start") (canon lift (core func $m "start")))
  (func (export "get") (result (own $r)) (canon lift (core func $m "get")))
)
"#;

#[test]
fn a_host_resource_travels_through_a_host_future() {
    let mut l = Linker::new();
    let r = l.resource("test:host/res@0.1.0#r", |_, _| {}).unwrap();
    let r2 = r.clone();
    l.func(
        "test:host/res@0.1.0#make",
        FuncTy {
            params: vec![],
            result: Some(Ty::Future(Some(Arc::new(r.own())))),
            is_async: false,
        },
        move |cx, _| {
            let f = cx.future_new(Some(r2.own()));
            let v = cx.resource_new(&r2, 7);
            let f2 = f.clone();
            // Once the future's readable end is the guest's.
            cx.defer(move |cx| {
                let f3 = f2.clone();
                let r = cx.write(&f2, vec![v], move |cx, _| cx.drop_end(&f3).unwrap());
                r.unwrap();
            });
            Ok(vec![f])
        },
    )
    .unwrap();
    let buf = wast::parser::ParseBuffer::new(COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &w.encode().unwrap()).unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &c).unwrap();
    s.call(&i.func("start").unwrap(), &[]).unwrap();
    s.run_until_idle().unwrap();
    let got = s.call(&i.func("get").unwrap(), &[]).unwrap();
    let rep = s.with_host(|cx| cx.resource_rep(&r, &got[0]));
    assert_eq!(rep, Some(7), "{got:?}");
}
