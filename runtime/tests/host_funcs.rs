//! Host functions linked to a hand-written component: synchronous and
//! asynchronous host functions (completing at once, later, cancelled),
//! host calls that fail, and link errors.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_async_wasmi::{
    ClockKind, Component, Config, Engine, Error, FuncTy, HostCall, HostCx, HostError, Instance,
    Linker, Store, Ty, Val,
};

const API: &str = "test:host/api@0.1.0";

/// A component over `test:host/api`: `double` (sync) and `wait` (async,
/// returns its argument) lowered synchronously and asynchronously.
const COMPONENT: &str = r#"
(component
  (import "test:host/api@0.1.0" (instance $h
    (export "double" (func (param "x" u32) (result u32)))
    (export "wait" (func async (param "ms" u32) (result u32)))
  ))
  (core module $libc (memory (export "mem") 1))
  (core instance $libc (instantiate $libc))
  (alias export $h "double" (func $double))
  (alias export $h "wait" (func $wait))
  (core func $double (canon lower (func $double)))
  (core func $wait-sync (canon lower (func $wait)))
  (core func $wait-async (canon lower (func $wait) async (memory $libc "mem")))
  (core func $cancel (canon subtask.cancel))
  (core func $drop (canon subtask.drop))
  (core func $ret (canon task.return (result u32)))
  (core module $m
    (import "" "double" (func $double (param i32) (result i32)))
    (import "" "wait" (func $wait (param i32) (result i32)))
    (import "" "wait-async" (func $wait-async (param i32 i32) (result i32)))
    (import "" "cancel" (func $cancel (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "ret" (func $ret (param i32)))
    (import "" "mem" (memory 1))
    (func (export "run-double") (param i32) (result i32)
      (call $double (local.get 0)))
    (func (export "run-wait") (param i32)
      (call $ret (call $wait (local.get 0))))
    ;; Starts `wait` asynchronously, cancels it, returns the subtask's
    ;; final state (2: returned, 4: cancelled before it returned).
    (func (export "run-cancel") (param i32)
      (local $st i32) (local $sub i32)
      (local.set $st (call $wait-async (local.get 0) (i32.const 0)))
      (if (i32.ne (i32.and (local.get $st) (i32.const 0xf)) (i32.const 1))
        (then unreachable))
      (local.set $sub (i32.shr_u (local.get $st) (i32.const 4)))
      (local.set $st (call $cancel (local.get $sub)))
      (call $drop (local.get $sub))
      (call $ret (local.get $st)))
    ;; Starts `wait` asynchronously and traps while it is pending.
    (func (export "run-trap") (param i32)
      (drop (call $wait-async (local.get 0) (i32.const 0)))
      unreachable)
  )
  (core instance $i (instantiate $m (with "" (instance
    (export "double" (func $double))
    (export "wait" (func $wait-sync))
    (export "wait-async" (func $wait-async))
    (export "cancel" (func $cancel))
    (export "drop" (func $drop))
    (export "ret" (func $ret))
    (export "mem" (memory $libc "mem"))))))
  (func (export "run-double") (param "x" u32) (result u32)
    (canon lift (core func $i "run-double")))
  (func (export "run-wait") async (param "ms" u32) (result u32)
    (canon lift (core func $i "run-wait") async))
  (func (export "run-cancel") async (param "ms" u32) (result u32)
    (canon lift (core func $i "run-cancel") async))
  (func (export "run-trap") async (param "ms" u32) (result u32)
    (canon lift (core func $i "run-trap") async))
)
"#;

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    w.encode().unwrap()
}

fn ty(params: &[Ty], result: Option<Ty>, is_async: bool) -> FuncTy {
    FuncTy {
        params: params
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.clone()))
            .collect(),
        result,
        is_async,
    }
}

fn engine() -> Engine {
    Engine::new(&Config {
        clock: ClockKind::Virtual,
        ..Config::default()
    })
}

/// `double` doubles; `wait(ms)` completes with `ms` after `ms` virtual
/// milliseconds (at once for 0); when `answer_cancel`, a cancel request
/// is answered with "cancelled".
fn linker(answer_cancel: bool) -> Linker {
    let mut l = Linker::new();
    l.func(
        &format!("{API}#double"),
        ty(&[Ty::U32], Some(Ty::U32), false),
        |_, args| match args {
            [Val::U32(x)] => Ok(vec![Val::U32(x * 2)]),
            _ => unreachable!("{args:?}"),
        },
    )
    .unwrap();
    l.func_async(
        &format!("{API}#wait"),
        ty(&[Ty::U32], Some(Ty::U32), true),
        move |cx, args, call| {
            let [Val::U32(ms)] = args[..] else {
                unreachable!("{args:?}")
            };
            if ms == 0 {
                cx.complete(call, vec![Val::U32(0)]).unwrap();
                return Ok(());
            }
            if answer_cancel {
                cx.on_cancel(call, move |cx| assert!(cx.cancelled(call)));
            }
            cx.after(Duration::from_millis(ms.into()), move |cx| {
                cx.complete(call, vec![Val::U32(ms)]).unwrap();
            });
            Ok(())
        },
    )
    .unwrap();
    l
}

/// A linker whose `double` answers 0 and whose `wait` is `wait`: for the
/// tests about the asynchronous host function alone.
fn linker_with_wait(
    wait: impl Fn(&mut HostCx<'_>, Vec<Val>, HostCall) -> Result<(), HostError> + Send + Sync + 'static,
) -> Linker {
    let mut l = Linker::new();
    l.func(
        &format!("{API}#double"),
        ty(&[Ty::U32], Some(Ty::U32), false),
        |_, _| Ok(vec![Val::U32(0)]),
    )
    .unwrap();
    l.func_async(
        &format!("{API}#wait"),
        ty(&[Ty::U32], Some(Ty::U32), true),
        wait,
    )
    .unwrap();
    l
}

fn instance(l: &Linker) -> (Store, Instance) {
    let e = engine();
    let c = Component::new(&e, &wat(COMPONENT)).unwrap();
    let mut store = Store::new(&e);
    let inst = l.instantiate(&mut store, &c).unwrap();
    (store, inst)
}

fn call(store: &mut Store, inst: &Instance, f: &str, x: u32) -> Result<Vec<Val>, Error> {
    store.call(&inst.func(f).unwrap(), &[Val::U32(x)])
}

#[test]
fn sync_host_function() {
    let (mut s, i) = instance(&linker(false));
    assert_eq!(call(&mut s, &i, "run-double", 21).unwrap(), [Val::U32(42)]);
}

#[test]
fn async_host_function_completing_at_once() {
    let (mut s, i) = instance(&linker(false));
    assert_eq!(call(&mut s, &i, "run-wait", 0).unwrap(), [Val::U32(0)]);
    assert_eq!(s.now(), Duration::ZERO);
}

#[test]
fn async_host_function_completing_later() {
    let (mut s, i) = instance(&linker(false));
    assert_eq!(call(&mut s, &i, "run-wait", 25).unwrap(), [Val::U32(25)]);
    assert_eq!(s.now(), Duration::from_millis(25));
    assert_eq!(s.live_tasks(&i), 0);
}

#[test]
fn host_call_cancelled_by_the_guest_and_answered_by_the_host() {
    let (mut s, i) = instance(&linker(true));
    // CANCELLED_BEFORE_RETURNED, and no time passed.
    assert_eq!(call(&mut s, &i, "run-cancel", 50).unwrap(), [Val::U32(4)]);
    assert_eq!(s.now(), Duration::ZERO);
    // The host's timer fires later; completing the resolved call is a no-op.
    s.run_until_idle().unwrap();
    assert_eq!(s.now(), Duration::from_millis(50));
}

#[test]
fn host_call_cancel_ignored_by_the_host_returns_normally() {
    let (mut s, i) = instance(&linker(false));
    // The host did not watch for cancellation: the call returns at 50 ms.
    assert_eq!(call(&mut s, &i, "run-cancel", 50).unwrap(), [Val::U32(2)]);
    assert_eq!(s.now(), Duration::from_millis(50));
}

#[test]
fn guest_trap_while_a_host_call_is_pending() {
    let completed = Arc::new(Mutex::new(None));
    let c = completed.clone();
    let l = linker_with_wait(move |cx, _, call| {
        let c = c.clone();
        cx.after(Duration::from_millis(10), move |cx| {
            *c.lock().unwrap() = Some(cx.complete(call, vec![Val::U32(1)]));
        });
        Ok(())
    });
    let (mut s, i) = instance(&l);
    let e = call(&mut s, &i, "run-trap", 10).unwrap_err();
    assert!(e.to_string().contains("unreachable"), "{e}");
    // The timer still fires; its completion is a no-op, not a panic.
    s.run_until_idle().unwrap();
    assert_eq!(*completed.lock().unwrap(), Some(Ok(false)));
}

#[test]
fn host_function_returning_the_wrong_values_traps_the_caller() {
    let mut bad = Linker::new();
    bad.func(
        &format!("{API}#double"),
        ty(&[Ty::U32], Some(Ty::U32), false),
        |_, _| {
            Ok(vec![Val::String(
                canon_async_wasmi::abi::val::Str::from_host("no"),
            )])
        },
    )
    .unwrap();
    bad.func_async(
        &format!("{API}#wait"),
        ty(&[Ty::U32], Some(Ty::U32), true),
        |_, _, _| Ok(()),
    )
    .unwrap();
    let (mut s, i) = instance(&bad);
    let e = call(&mut s, &i, "run-double", 1).unwrap_err().to_string();
    assert!(
        e.contains("host function `test:host/api@0.1.0#double` returned"),
        "{e}"
    );
    // The instance trapped: later calls cannot enter it.
    assert!(call(&mut s, &i, "run-double", 1).is_err());
}

#[test]
fn host_function_error_and_panic_are_reported() {
    let panicked = Arc::new(AtomicBool::new(false));
    let p = panicked.clone();
    let mut l = Linker::new();
    l.func(
        &format!("{API}#double"),
        ty(&[Ty::U32], Some(Ty::U32), false),
        move |_, args| match args {
            [Val::U32(0)] => Err(HostError::new("zero is not allowed")),
            _ => {
                p.store(true, Ordering::SeqCst);
                panic!("host bug")
            }
        },
    )
    .unwrap();
    l.func_async(
        &format!("{API}#wait"),
        ty(&[Ty::U32], Some(Ty::U32), true),
        |_, _, _| Ok(()),
    )
    .unwrap();
    let (mut s, i) = instance(&l);
    let e = call(&mut s, &i, "run-double", 0).unwrap_err().to_string();
    assert!(e.contains("failed: zero is not allowed"), "{e}");
    let (mut s, i) = instance(&l);
    let e = call(&mut s, &i, "run-double", 1).unwrap_err().to_string();
    assert!(e.contains("panicked: host bug"), "{e}");
    assert!(panicked.load(Ordering::SeqCst));
}

/// An async lower of a host function runs the host function inside the
/// `canon lower` built-in (the runtime does not park the caller for it):
/// an error or a panic there still traps the calling instance with the
/// host's message, before the guest's next instruction runs.
#[test]
fn async_lowered_host_function_error_and_panic_trap_the_caller() {
    for panics in [false, true] {
        let l = linker_with_wait(move |_, _, _| {
            if panics {
                panic!("host bug in wait")
            }
            Err(HostError::new("no waiting today"))
        });
        let (mut s, i) = instance(&l);
        // `run-trap` calls `wait` asynchronously, then executes
        // `unreachable`: the host's failure must come first.
        let e = call(&mut s, &i, "run-trap", 5).unwrap_err().to_string();
        let want = if panics {
            "panicked: host bug in wait"
        } else {
            "failed: no waiting today"
        };
        assert!(e.contains(want), "{e}");
        assert!(!e.contains("unreachable"), "{e}");
        // The instance trapped: later calls cannot enter it.
        assert!(call(&mut s, &i, "run-double", 1).is_err());
        assert_eq!(s.live_tasks(&i), 0);
    }
}

#[test]
fn missing_import_is_a_link_error_naming_it() {
    let mut l = Linker::new();
    l.func(
        &format!("{API}#double"),
        ty(&[Ty::U32], Some(Ty::U32), false),
        |_, _| Ok(vec![Val::U32(0)]),
    )
    .unwrap();
    let e = engine();
    let c = Component::new(&e, &wat(COMPONENT)).unwrap();
    let err = l.instantiate(&mut Store::new(&e), &c).err().unwrap();
    assert!(matches!(&err, Error::Link(_)), "{err}");
    let m = err.to_string();
    assert!(
        m.contains("missing import `test:host/api@0.1.0#wait`"),
        "{m}"
    );

    let err = Linker::new()
        .instantiate(&mut Store::new(&e), &c)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("missing import `test:host/api@0.1.0`"),
        "{err}"
    );
}

#[test]
fn type_mismatch_is_a_link_error_with_both_types() {
    let mut wrong = Linker::new();
    wrong
        .func(
            &format!("{API}#double"),
            ty(&[Ty::U64], Some(Ty::U64), false),
            |_, _| Ok(vec![Val::U64(0)]),
        )
        .unwrap();
    wrong
        .func_async(
            &format!("{API}#wait"),
            ty(&[Ty::U32], Some(Ty::U32), true),
            |_, _, _| Ok(()),
        )
        .unwrap();
    let e = engine();
    let c = Component::new(&e, &wat(COMPONENT)).unwrap();
    let err = wrong.instantiate(&mut Store::new(&e), &c).err().unwrap();
    let m = err.to_string();
    assert!(matches!(&err, Error::Link(_)), "{m}");
    assert!(m.contains("`test:host/api@0.1.0#double`"), "{m}");
    assert!(m.contains("func(x: U32) -> U32"), "{m}");
    assert!(m.contains("func(p0: U64) -> U64"), "{m}");
}

#[test]
fn a_compatible_patch_version_links() {
    // The component imports @0.1.0; the host implements @0.1.7.
    let mut l = Linker::new();
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    l.func(
        "test:host/api@0.1.7#double",
        ty(&[Ty::U32], Some(Ty::U32), false),
        move |_, args| {
            n2.fetch_add(1, Ordering::SeqCst);
            match args {
                [Val::U32(x)] => Ok(vec![Val::U32(x * 2)]),
                _ => unreachable!(),
            }
        },
    )
    .unwrap();
    l.func_async(
        "test:host/api@0.1.7#wait",
        ty(&[Ty::U32], Some(Ty::U32), true),
        |_, _, _| Ok(()),
    )
    .unwrap();
    let (mut s, i) = instance(&l);
    assert_eq!(call(&mut s, &i, "run-double", 4).unwrap(), [Val::U32(8)]);
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

/// A component using a resource type the host defines: it constructs a
/// counter, bumps it twice through a borrow, and drops it.
const RESOURCE_COMPONENT: &str = r#"
(component
  (import "test:host/res@0.1.0" (instance $r
    (export "counter" (type $c (sub resource)))
    (export "[constructor]counter" (func (param "start" u32) (result (own $c))))
    (export "[method]counter.bump" (func (param "self" (borrow $c)) (result u32)))
  ))
  (alias export $r "counter" (type $c))
  (alias export $r "[constructor]counter" (func $new))
  (alias export $r "[method]counter.bump" (func $bump))
  (core func $new (canon lower (func $new)))
  (core func $bump (canon lower (func $bump)))
  (core func $drop (canon resource.drop $c))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "bump" (func $bump (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (func (export "run") (param i32) (result i32)
      (local $h i32) (local $v i32)
      (local.set $h (call $new (local.get 0)))
      (drop (call $bump (local.get $h)))
      (local.set $v (call $bump (local.get $h)))
      (call $drop (local.get $h))
      (local.get $v)))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new))
    (export "bump" (func $bump))
    (export "drop" (func $drop))))))
  (func (export "run") (param "start" u32) (result u32)
    (canon lift (core func $i "run")))
)
"#;

#[test]
fn host_resource_own_borrow_and_destructor() {
    type Counters = Arc<Mutex<std::collections::HashMap<u32, u32>>>;
    let counters: Counters = Arc::default();
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let mut l = Linker::new();
    let (c, d) = (counters.clone(), dropped.clone());
    let res = l
        .resource("test:host/res@0.1.0#counter", move |_, rep| {
            c.lock().unwrap().remove(&rep);
            d.lock().unwrap().push(rep);
        })
        .unwrap();
    let (c, r) = (counters.clone(), res.clone());
    l.func(
        "test:host/res@0.1.0#[constructor]counter",
        ty(&[Ty::U32], Some(res.own()), false),
        move |cx, args| {
            let [Val::U32(start)] = args else {
                unreachable!()
            };
            let mut c = c.lock().unwrap();
            let rep = 100 + c.len() as u32;
            c.insert(rep, *start);
            Ok(vec![cx.resource_new(&r, rep)])
        },
    )
    .unwrap();
    let (c, r) = (counters.clone(), res.clone());
    l.func(
        "test:host/res@0.1.0#[method]counter.bump",
        ty(&[res.borrow()], Some(Ty::U32), false),
        move |cx, args| {
            let rep = cx.resource_rep(&r, &args[0]).expect("a borrowed counter");
            let mut c = c.lock().unwrap();
            let v = c.get_mut(&rep).unwrap();
            *v += 1;
            Ok(vec![Val::U32(*v)])
        },
    )
    .unwrap();
    let e = engine();
    let comp = Component::new(&e, &wat(RESOURCE_COMPONENT)).unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &comp).unwrap();
    assert_eq!(call(&mut s, &i, "run", 10).unwrap(), [Val::U32(12)]);
    assert_eq!(*dropped.lock().unwrap(), vec![100]);
    assert!(counters.lock().unwrap().is_empty());
}

#[test]
fn async_host_call_completed_from_another_thread() {
    let l = linker_with_wait(|cx, args, call| {
        let [Val::U32(ms)] = args[..] else {
            unreachable!()
        };
        // An "I/O completion": another thread answers through a Remote;
        // the idle event loop waits for it instead of deadlocking.
        let remote = cx.remote();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms.into()));
            remote.run(move |cx| {
                cx.complete(call, vec![Val::U32(ms + 1)]).unwrap();
            });
        });
        Ok(())
    });
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &wat(COMPONENT)).unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &c).unwrap();
    assert_eq!(call(&mut s, &i, "run-wait", 5).unwrap(), [Val::U32(6)]);
    // No Remote is left: an idle store with nothing pending returns.
    s.run_until_idle().unwrap();
}

#[test]
fn idle_event_loop_returns_when_the_last_remote_is_dropped_without_sending() {
    let (mut s, _i) = instance(&linker(false));
    let remote = s.with_host(|cx| cx.remote());
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(remote);
    });
    // The store runs on a thread of its own, so that a loop that kept
    // waiting after the drop fails the test instead of hanging it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = s.run_until_idle();
        let _ = done_tx.send(r.is_ok());
    });
    dropper.join().unwrap();
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "run_until_idle must return once no Remote is left"
    );
}
