//! Standard input through `wasi:cli/stdin@0.3.0`'s `read-via-stream`: every
//! byte arrives, in reads smaller than the host's chunks, then the stream
//! ends and the future resolves to `ok`.

use std::sync::Arc;

use canon_async_wasi::{add_to_linker, Input, Output, WasiCtx};
use canon_async_wasmi::{Component, Engine, Linker, Store, Val};

const COMPONENT: &str = r#"(component
  (import "wasi:cli/stdin@0.3.0" (instance $stdin
    (type $ec (enum "io" "illegal-byte-sequence" "pipe"))
    (export "error-code" (type $ec' (eq $ec)))
    (type $res (result (error $ec')))
    (type $fut (future $res))
    (type $st (stream u8))
    (export "read-via-stream" (func (result (tuple $st $fut))))
  ))
  (alias export $stdin "read-via-stream" (func $rvs))
  (alias export $stdin "error-code" (type $ec))
  (type $res (result (error $ec)))
  (type $FT (future $res))
  (type $ST (stream u8))
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (core func $rvs' (canon lower (func $rvs) (memory (core memory $mem "mem"))))
  (core func $stream.read (canon stream.read $ST (memory (core memory $mem "mem"))))
  (core func $stream.drop-readable (canon stream.drop-readable $ST))
  (core func $future.read (canon future.read $FT (memory (core memory $mem "mem"))))
  (core func $future.drop-readable (canon future.drop-readable $FT))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "rvs" (func $rvs (param i32)))
    (import "" "stream.read" (func $stream.read (param i32 i32 i32) (result i32)))
    (import "" "stream.drop-readable" (func $stream.drop-readable (param i32)))
    (import "" "future.read" (func $future.read (param i32 i32) (result i32)))
    (import "" "future.drop-readable" (func $future.drop-readable (param i32)))
    (global $count (mut i32) (i32.const 0))
    (global $sum (mut i32) (i32.const 0))
    (func (export "cat") (result i32)
      (local $s i32) (local $f i32) (local $ret i32) (local $n i32) (local $i i32)
      (call $rvs (i32.const 0))
      (local.set $s (i32.load (i32.const 0)))
      (local.set $f (i32.load (i32.const 4)))
      (loop $read
        (local.set $ret (call $stream.read (local.get $s) (i32.const 1024) (i32.const 1000)))
        (local.set $n (i32.shr_u (local.get $ret) (i32.const 4)))
        (local.set $i (i32.const 0))
        (block $done
          (loop $add
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (global.set $sum (i32.add (global.get $sum) (i32.load8_u offset=1024 (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $add)))
        (global.set $count (i32.add (global.get $count) (local.get $n)))
        (br_if $read (i32.eqz (i32.and (local.get $ret) (i32.const 0xf)))))
      (call $stream.drop-readable (local.get $s))
      (local.set $ret (call $future.read (local.get $f) (i32.const 8)))
      (if (i32.ne (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 0)) (then unreachable))
      (if (i32.ne (i32.load8_u (i32.const 8)) (i32.const 0)) (then unreachable))
      (call $future.drop-readable (local.get $f))
      (global.get $count))
    (func (export "sum") (result i32) (global.get $sum))
  )
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "rvs" (func $rvs'))
    (export "stream.read" (func $stream.read))
    (export "stream.drop-readable" (func $stream.drop-readable))
    (export "future.read" (func $future.read))
    (export "future.drop-readable" (func $future.drop-readable))
  ))))
  (func (export "cat") async (result u32) (canon lift (core func $m "cat")))
  (func (export "sum") (result u32) (canon lift (core func $m "sum")))
)
"#;

/// Runs `cat` over `input`: (bytes read, their sum mod 2^32).
fn cat(input: Input) -> (u32, u32) {
    let engine = Engine::default();
    let buf = wast::parser::ParseBuffer::new(COMPONENT).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    let c = Component::new(&engine, &w.encode().unwrap()).unwrap();
    let ctx = Arc::new(
        WasiCtx::new(vec!["cat".into()])
            .stdin(input)
            .stdout(Output::Null),
    );
    let mut l = Linker::new();
    add_to_linker(&mut l, &ctx).unwrap();
    let mut s = Store::new(&engine);
    let i = l.instantiate(&mut s, &c).unwrap();
    let mut call = |name: &str| match s.call(&i.func(name).unwrap(), &[]).unwrap()[..] {
        [Val::U32(n)] => n,
        ref r => panic!("{r:?}"),
    };
    (call("cat"), call("sum"))
}

/// Runs `f` on a thread with a large stack (the guest's byte loops run on
/// wasmi's native stack).
fn big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[test]
fn every_byte_of_stdin_arrives_then_the_stream_ends() {
    // More than one host chunk (64 KiB), read 1000 bytes at a time.
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let sum = data.iter().map(|b| u32::from(*b)).sum::<u32>();
    let n = data.len() as u32;
    let got = big_stack(move || cat(Input::Bytes(data.into())));
    assert_eq!(got, (n, sum));
}

#[test]
fn empty_stdin_ends_at_once() {
    assert_eq!(big_stack(|| cat(Input::Empty)), (0, 0));
}
