//! The host's end of a stream: a host function returns a `stream<u8>` and
//! writes it as the guest reads, in partial copies (the guest reads 4 bytes
//! at a time from the host's one write of 10), and a guest that drops its
//! end part-way (the host's write ends DROPPED with what was taken).

use std::sync::{Arc, Mutex};

use canon_async::CopyResult;
use canon_async_wasmi::{
    Component, Config, CopyDone, Engine, FuncTy, HostCx, Linker, Store, Ty, Val,
};

const COMPONENT: &str = r#"
(component
  (type $s (stream u8))
  (import "test:host/bytes@0.1.0" (instance $h
    (export "source" (func (param "n" u32) (result (stream u8))))))
  (alias export $h "source" (func $source))
  (core module $Libc (memory (export "mem") 1))
  (core instance $libc (instantiate $Libc))
  (core func $source (canon lower (func $source)))
  (core func $read (canon stream.read $s (memory $libc "mem")))
  (core func $drop (canon stream.drop-readable $s))
  (core func $ret (canon task.return (result u32)))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "source" (func $source (param i32) (result i32)))
    (import "" "read" (func $read (param i32 i32 i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "ret" (func $ret (param i32)))
    ;; Reads the stream 4 bytes at a time until the host drops it;
    ;; returns the sum of the bytes.
    (func (export "sum") (param $n i32)
      (local $h i32) (local $r i32) (local $k i32) (local $sum i32)
      (local.set $h (call $source (local.get $n)))
      (block $end
        (loop $l
          (local.set $r (call $read (local.get $h) (i32.const 0) (i32.const 4)))
          (local.set $k (i32.const 0))
          (block $d (loop $b
            (br_if $d (i32.ge_u (local.get $k) (i32.shr_u (local.get $r) (i32.const 4))))
            (local.set $sum (i32.add (local.get $sum) (i32.load8_u (local.get $k))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $b)))
          (br_if $end (i32.eq (i32.and (local.get $r) (i32.const 0xf)) (i32.const 1)))
          (br $l)))
      (call $drop (local.get $h))
      (call $ret (local.get $sum)))
    ;; Reads 4 bytes, then drops its end.
    (func (export "first4") (param $n i32)
      (local $h i32)
      (local.set $h (call $source (local.get $n)))
      (drop (call $read (local.get $h) (i32.const 0) (i32.const 4)))
      (call $drop (local.get $h))
      (call $ret (i32.add (i32.add (i32.load8_u (i32.const 0)) (i32.load8_u (i32.const 1)))
                          (i32.add (i32.load8_u (i32.const 2)) (i32.load8_u (i32.const 3)))))))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $libc "mem"))
    (export "source" (func $source))
    (export "read" (func $read))
    (export "drop" (func $drop))
    (export "ret" (func $ret))))))
  (func (export "sum") async (param "n" u32) (result u32)
    (canon lift (core func $m "sum") async))
  (func (export "first4") async (param "n" u32) (result u32)
    (canon lift (core func $m "first4") async))
)
"#;

type Log = Arc<Mutex<Vec<(usize, CopyDone)>>>;

/// Writes `vals` to `end`, again with the rest after each partial copy,
/// logging each outcome; drops the end when done or when the reader left.
fn write_all(cx: &mut HostCx<'_>, end: Val, vals: Vec<Val>, log: Log) {
    let e = end.clone();
    let offered = vals.len();
    let rest = vals.clone();
    cx.write(&end, vals, move |cx, d| {
        log.lock().unwrap().push((offered, d));
        let left = rest[d.progress as usize..].to_vec();
        if d.result == CopyResult::Completed && !left.is_empty() {
            write_all(cx, e, left, log);
        } else {
            cx.drop_end(&e).unwrap();
        }
    })
    .unwrap();
}

fn setup() -> (Store, canon_async_wasmi::Instance, Log) {
    let log: Log = Arc::default();
    let mut l = Linker::new();
    let lg = log.clone();
    l.func(
        "test:host/bytes@0.1.0#source",
        FuncTy {
            params: vec![("n".into(), Ty::U32)],
            result: Some(Ty::Stream(Some(Arc::new(Ty::U8)))),
            is_async: false,
        },
        move |cx, args| {
            let [Val::U32(n)] = args[..] else {
                unreachable!()
            };
            let s = cx.stream_new(Some(Ty::U8));
            let vals: Vec<Val> = (1..=n).map(|i| Val::U8(i as u8)).collect();
            let (s2, lg) = (s.clone(), lg.clone());
            // Start writing once the stream's readable end is the guest's.
            cx.defer(move |cx| write_all(cx, s2, vals, lg));
            Ok(vec![s])
        },
    )
    .unwrap();
    let buf = wast::parser::ParseBuffer::new(COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &w.encode().unwrap()).unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &c).unwrap();
    (s, i, log)
}

#[test]
fn host_writer_with_partial_copies() {
    let (mut s, i, log) = setup();
    let f = i.func("sum").unwrap();
    assert_eq!(s.call(&f, &[Val::U32(10)]).unwrap(), [Val::U32(55)]);
    s.run_until_idle().unwrap();
    let log = log.lock().unwrap();
    // The guest took the 10 bytes offered in reads of 4, 4 and 2: the
    // host's one write stays in progress until its buffer is used up.
    assert_eq!(
        *log,
        vec![(
            10,
            CopyDone {
                result: CopyResult::Completed,
                progress: 10
            }
        )]
    );
    assert_eq!(s.live_tasks(&i), 0);
}

#[test]
fn host_writer_sees_the_reader_drop() {
    let (mut s, i, log) = setup();
    let f = i.func("first4").unwrap();
    assert_eq!(
        s.call(&f, &[Val::U32(10)]).unwrap(),
        [Val::U32(1 + 2 + 3 + 4)]
    );
    s.run_until_idle().unwrap();
    // The write ends DROPPED, with the 4 bytes the guest took before.
    assert_eq!(
        *log.lock().unwrap(),
        vec![(
            10,
            CopyDone {
                result: CopyResult::Dropped,
                progress: 4
            }
        )]
    );
}

/// A guest hands the host the readable end of a stream it writes only
/// after the host's call returned: the host's read waits, the host cancels
/// it (CANCELLED, nothing moved) and drops its end, and the guest's write
/// then sees DROPPED.
const READER_COMPONENT: &str = r#"
(component
  (type $s (stream u8))
  (import "test:host/bytes@0.1.0" (instance $h
    (export "sink" (func (param "s" (stream u8))))))
  (alias export $h "sink" (func $sink))
  (core module $Libc (memory (export "mem") 1))
  (core instance $libc (instantiate $Libc))
  (core func $sink (canon lower (func $sink)))
  (core func $new (canon stream.new $s))
  (core func $write (canon stream.write $s (memory $libc "mem")))
  (core func $drop (canon stream.drop-writable $s))
  (core func $ret (canon task.return (result u32)))
  (core module $M
    (import "" "sink" (func $sink (param i32)))
    (import "" "new" (func $new (result i64)))
    (import "" "write" (func $write (param i32 i32 i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "ret" (func $ret (param i32)))
    (func (export "run")
      (local $rw i64) (local $w i32) (local $r i32)
      (local.set $rw (call $new))
      (local.set $w (i32.wrap_i64 (i64.shr_u (local.get $rw) (i64.const 32))))
      (call $sink (i32.wrap_i64 (local.get $rw)))
      (local.set $r (call $write (local.get $w) (i32.const 0) (i32.const 4)))
      (call $drop (local.get $w))
      (call $ret (local.get $r))))
  (core instance $m (instantiate $M (with "" (instance
    (export "sink" (func $sink))
    (export "new" (func $new))
    (export "write" (func $write))
    (export "drop" (func $drop))
    (export "ret" (func $ret))))))
  (func (export "run") async (result u32)
    (canon lift (core func $m "run") async))
)
"#;

#[test]
fn host_reader_cancels_a_waiting_read() {
    type ReadLog = Arc<Mutex<Vec<(Vec<Val>, CopyDone)>>>;
    let log: ReadLog = Arc::default();
    let mut l = Linker::new();
    let lg = log.clone();
    l.func(
        "test:host/bytes@0.1.0#sink",
        FuncTy {
            params: vec![("s".into(), Ty::Stream(Some(Arc::new(Ty::U8))))],
            result: None,
            is_async: false,
        },
        move |cx, args| {
            let s = args[0].clone();
            let lg = lg.clone();
            cx.read(&s, 4, move |_, vals, d| lg.lock().unwrap().push((vals, d)))
                .unwrap();
            // Nothing was written yet: the read waits; cancel it.
            cx.cancel_copy(&s).unwrap();
            cx.drop_end(&s).unwrap();
            Ok(vec![])
        },
    )
    .unwrap();
    let buf = wast::parser::ParseBuffer::new(READER_COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let e = Engine::new(&Config::default());
    let c = Component::new(&e, &w.encode().unwrap()).unwrap();
    let mut s = Store::new(&e);
    let i = l.instantiate(&mut s, &c).unwrap();
    let f = i.func("run").unwrap();
    // The guest's write after the host dropped its end: DROPPED (1).
    assert_eq!(s.call(&f, &[]).unwrap(), [Val::U32(1)]);
    assert_eq!(
        *log.lock().unwrap(),
        vec![(
            vec![],
            CopyDone {
                result: CopyResult::Cancelled,
                progress: 0
            }
        )]
    );
}
