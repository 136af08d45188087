//! A guest loop runs in constant native stack: wasmi's dispatch must not
//! grow the stack per instruction (it does when its tail calls are not
//! optimised, as in a debug build without the profile settings of the
//! root Cargo.toml).

use canon_async_wasmi::{Component, Config, Engine, Linker, Store, Val};

#[test]
fn ten_million_iterations_on_the_test_thread_stack() {
    let wat = r#"(component
      (core module $M
        (func (export "spin") (param i32) (result i32)
          (local $i i32)
          (block $d (loop $l
            (br_if $d (i32.ge_u (local.get $i) (local.get 0)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))
          (local.get $i)))
      (core instance $m (instantiate $M))
      (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $m "spin"))))"#;
    let buf = wast::parser::ParseBuffer::new(wat).unwrap();
    let bytes = wast::parser::parse::<wast::Wat>(&buf)
        .unwrap()
        .encode()
        .unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &bytes).unwrap();
    let mut s = Store::new(&e);
    let i = Linker::new().instantiate(&mut s, &c).unwrap();
    let f = i.func("spin").unwrap();
    assert_eq!(
        s.call(&f, &[Val::U32(10_000_000)]).unwrap(),
        [Val::U32(10_000_000)]
    );
}
