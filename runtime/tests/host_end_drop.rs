//! A guest drops its end of a stream while the host's copy on the other
//! end waits: the host's copy finishes DROPPED on the event loop's next
//! turn (a copy that waits must not wait forever because nobody polled
//! its end).

use std::sync::{Arc, Mutex};

use canon_async::CopyResult;
use canon_async_wasmi::{Component, Config, CopyDone, Engine, Linker, Store, Val};

const COMPONENT: &str = r#"
(component
  (type $s (stream u8))
  (core func $new (canon stream.new $s))
  (core func $dropw (canon stream.drop-writable $s))
  (core module $M
    (import "" "new" (func $new (result i64)))
    (import "" "dropw" (func $dropw (param i32)))
    (global $w (mut i32) (i32.const 0))
    ;; Keeps the writable end, returns the readable one.
    (func (export "make") (result i32) (local $ends i64)
      (local.set $ends (call $new))
      (global.set $w (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      (i32.wrap_i64 (local.get $ends)))
    (func (export "close") (call $dropw (global.get $w))))
  (core instance $m (instantiate $M (with "" (instance
    (export "new" (func $new))
    (export "dropw" (func $dropw))))))
  (func (export "make") (result (stream u8)) (canon lift (core func $m "make")))
  (func (export "close") (canon lift (core func $m "close")))
)
"#;

/// What the host's read finished with.
type Got = Arc<Mutex<Option<(Vec<Val>, CopyDone)>>>;

#[test]
fn a_guest_dropping_its_writable_end_finishes_the_hosts_waiting_read() {
    let buf = wast::parser::ParseBuffer::new(COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &w.encode().unwrap()).unwrap();
    let mut s = Store::new(&e);
    let i = Linker::new().instantiate(&mut s, &c).unwrap();
    let make = i.func("make").unwrap();
    let close = i.func("close").unwrap();
    let [end] = &s.call(&make, &[]).unwrap()[..] else {
        panic!("one result")
    };
    let got: Got = Arc::default();
    let g = got.clone();
    s.with_host(|cx| {
        cx.read(end, 16, move |_, vals, d| {
            *g.lock().unwrap() = Some((vals, d))
        })
        .unwrap()
    });
    s.run_until_idle().unwrap();
    assert!(got.lock().unwrap().is_none(), "nothing was written yet");
    s.call(&close, &[]).unwrap();
    s.run_until_idle().unwrap();
    let (vals, d) = got
        .lock()
        .unwrap()
        .take()
        .expect("the host's read finished");
    assert!(vals.is_empty());
    assert_eq!(d.result, CopyResult::Dropped);
}

#[test]
fn run_ready_runs_what_can_run_and_reports_the_next_timer() {
    use canon_async_wasmi::{FuncTy, Ty};
    use std::time::Duration;
    let wat = r#"(component
      (import "example:host/math@0.1.0" (instance $h
        (export "slow-inc" (func async (param "x" u32) (result u32)))))
      (alias export $h "slow-inc" (func $slow-inc))
      (core func $slow-inc (canon lower (func $slow-inc)))
      (core func $return (canon task.return (result u32)))
      (core module $M
        (import "" "slow-inc" (func $slow-inc (param i32) (result i32)))
        (import "" "return" (func $return (param i32)))
        (func (export "run") (param i32)
          (call $return (call $slow-inc (local.get 0)))))
      (core instance $m (instantiate $M (with "" (instance
        (export "slow-inc" (func $slow-inc))
        (export "return" (func $return))))))
      (func (export "run") async (param "x" u32) (result u32)
        (canon lift (core func $m "run") async)))"#;
    let buf = wast::parser::ParseBuffer::new(wat).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &w.encode().unwrap()).unwrap();
    let mut l = Linker::new();
    l.func_async(
        "example:host/math@0.1.0#slow-inc",
        FuncTy {
            params: vec![("x".into(), Ty::U32)],
            result: Some(Ty::U32),
            is_async: true,
        },
        |cx, args, call| {
            let [Val::U32(x)] = args[..] else {
                unreachable!()
            };
            cx.after(Duration::from_millis(1500), move |cx| {
                cx.complete(call, vec![Val::U32(x + 1)]).unwrap();
            });
            Ok(())
        },
    )
    .unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &c).unwrap();
    let run = i.func("run").unwrap();
    let call = s.call_concurrent(&run, &[Val::U32(1)]).unwrap();
    // Runs the guest up to its host call, and returns without waiting.
    let t0 = std::time::Instant::now();
    let wait = s.run_ready().unwrap().expect("a timer is set");
    // (well before the timer, even on a loaded machine)
    assert!(t0.elapsed() < Duration::from_millis(1000));
    assert!(wait <= Duration::from_millis(1500) && wait > Duration::ZERO);
    assert!(s.try_result(&call).is_none());
    assert_eq!(s.live_tasks(&i), 1);
    std::thread::sleep(wait);
    assert_eq!(s.run_ready().unwrap(), None);
    assert_eq!(s.try_result(&call).unwrap().unwrap(), [Val::U32(2)]);
    assert_eq!(s.live_tasks(&i), 0);
}
