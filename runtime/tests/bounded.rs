//! Memory per store stays bounded by what is live: the functions of
//! threads that have started, and the messages of dropped error-contexts,
//! are freed; element types are interned once.

use canon_async_wasmi::{Component, Config, Engine, Linker, Store, Val};

/// `churn(n)`: n times, starts a thread (`thread.new-indirect` +
/// `thread.resume-later`, which exits at once), yields so it runs, and
/// creates and drops an error-context.
const CHURN: &str = r#"
(component
  (core module $Libc
    (memory (export "mem") 1)
    (table (export "table") 1 funcref)
    (data (i32.const 0) "boom"))
  (core instance $libc (instantiate $Libc))
  (core type $start-ty (func (param i32)))
  (alias core export $libc "table" (core table $table))
  (core func $new-thread (canon thread.new-indirect $start-ty (core table $table)))
  (core func $resume-later (canon thread.resume-later))
  (core func $yield (canon thread.yield))
  (core func $ec-new (canon error-context.new (memory $libc "mem")))
  (core func $ec-drop (canon error-context.drop))
  (core func $ret (canon task.return (result u32)))
  (core module $M
    (import "" "table" (table 1 funcref))
    (import "" "new-thread" (func $new-thread (param i32 i32) (result i32)))
    (import "" "resume-later" (func $resume-later (param i32)))
    (import "" "yield" (func $yield (result i32)))
    (import "" "ec-new" (func $ec-new (param i32 i32) (result i32)))
    (import "" "ec-drop" (func $ec-drop (param i32)))
    (import "" "ret" (func $ret (param i32)))
    (func $noop (param i32))
    (elem (i32.const 0) func $noop)
    (func (export "churn") (param $n i32)
      (local $i i32)
      (block $done
        (loop $l
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (call $resume-later (call $new-thread (i32.const 0) (i32.const 0)))
          (drop (call $yield))
          (call $ec-drop (call $ec-new (i32.const 0) (i32.const 4)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
      (call $ret (local.get $n))))
  (core instance $m (instantiate $M (with "" (instance
    (export "table" (table $table))
    (export "new-thread" (func $new-thread))
    (export "resume-later" (func $resume-later))
    (export "yield" (func $yield))
    (export "ec-new" (func $ec-new))
    (export "ec-drop" (func $ec-drop))
    (export "ret" (func $ret))))))
  (func (export "churn") async (param "n" u32) (result u32)
    (canon lift (core func $m "churn") async))
)
"#;

#[test]
fn thread_functions_and_error_messages_are_freed() {
    let buf = wast::parser::ParseBuffer::new(CHURN).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let bytes = w.encode().unwrap();
    let engine = Engine::new(&Config::default());
    let c = Component::new(&engine, &bytes).unwrap();
    let mut store = Store::new(&engine);
    let inst = Linker::new().instantiate(&mut store, &c).unwrap();
    let churn = inst.func("churn").unwrap();
    for _ in 0..3 {
        assert_eq!(
            store.call(&churn, &[Val::U32(1000)]).unwrap(),
            [Val::U32(1000)]
        );
        store.run_until_idle().unwrap();
        let s = store.stats();
        assert_eq!(s.thread_funcs, 0, "{s:?}");
        assert_eq!(s.error_messages, 0, "{s:?}");
        assert_eq!(s.live_tasks, 0, "{s:?}");
        assert_eq!((s.guest_calls, s.host_calls), (0, 0), "{s:?}");
    }
}
