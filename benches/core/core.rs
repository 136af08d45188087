//! Criterion benchmarks of every scheduling path of the core, driven as an
//! embedder drives it: through the public `Store` API, playing each guest's
//! core code by hand (no interpreter, no boxed futures).
//!
//! Run with short times on shared machines:
//! `cargo bench -p canon-async-bench --bench core -- --warm-up-time 1 --measurement-time 3`.
//!
//! The benchmarks are a package of their own so that they link canon-async
//! as an embedder does, with its default features: the root package's
//! self dev-dependency turns on the `check` feature (and the test kit) for
//! every target of that package, and `check`'s hooks cost about 50
//! instructions per call even when switched off.
//!
//! Each path pulls the exact actions it expects with [`Store::next_action`]
//! and fails on any other: the measured loop is the core's, and a
//! [`canon_async::Host`] around it would measure the dispatch as well.
//! `CANON_BENCH_MANY` sets the task count of the "1M pending tasks" run
//! (default 1,000,000) and the largest population of path 8.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use canon_async::{
    Action, ElemClass, ElemType, EndKind, EventCode, InstanceId, LiftKind, Lifted, LowerCallee,
    ResultDelivery, ResumeValue, Step, Store, SubtaskId, SubtaskState, BLOCKED,
};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};

// ----- a counting global allocator -----------------------------------------

/// Counts the bytes currently allocated by the whole bench binary.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE_BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE_BYTES.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

// ----- small embedder helpers ----------------------------------------------

/// A store with the default (deterministic) chooser.
fn new_store() -> Store {
    Store::new()
}

const RETURNED: u32 = SubtaskState::Returned as u32;
const STARTED: u32 = SubtaskState::Started as u32;
const EXIT: u32 = 0;
const WAIT: u32 = 2;

const U8: ElemType = ElemType {
    id: 1,
    class: ElemClass::Number,
    size: 1,
    align: 1,
};

fn lifted(inst: InstanceId, func: u32, kind: LiftKind, async_type: bool) -> Lifted {
    Lifted {
        inst,
        func,
        kind,
        async_type,
    }
}

#[inline]
fn expect_start(s: &mut Store) {
    match s.next_action() {
        Action::Start { .. } => {}
        a => panic!("expected Start, got {a:?}"),
    }
}

#[inline]
fn expect_resume(s: &mut Store) -> ResumeValue {
    match s.next_action() {
        Action::Resume { value, .. } => value,
        a => panic!("expected Resume, got {a:?}"),
    }
}

#[inline]
fn expect_idle(s: &mut Store) {
    match s.next_action() {
        Action::Idle => {}
        a => panic!("expected Idle, got {a:?}"),
    }
}

/// Starts a stackful async task of `inst` and leaves its thread running
/// (the guest that makes calls in paths 2 and 3).
fn running_caller(s: &mut Store, inst: InstanceId) {
    s.invoke(lifted(inst, 100, LiftKind::AsyncStackful, true))
        .unwrap();
    expect_start(s);
}

// ----- path 1: host -> callback-lifted export that returns at once ------------

fn host_call_returns_at_once(s: &mut Store, f: Lifted) {
    let task = s.invoke(f).unwrap();
    expect_start(s);
    match s.running().unwrap().task_return() {
        Ok(ResultDelivery::Host(t)) if t == task => {}
        r => panic!("task.return: {r:?}"),
    }
    s.callback_returned(EXIT).unwrap();
    expect_idle(s);
    debug_assert!(s.task_state(task).is_none());
}

// ----- path 2: guest -> async host import that completes at once --------------

fn guest_calls_host(s: &mut Store) {
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .unwrap();
    match s.next_action() {
        Action::HostCall { subtask } if subtask == sub => {}
        a => panic!("expected HostCall, got {a:?}"),
    }
    s.host_return(sub).unwrap();
    match expect_resume(s) {
        ResumeValue::I32(RETURNED) => {}
        v => panic!("resumed with {v:?}"),
    }
}

// ----- path 3: guest -> guest, sync lower into a sync lift ----------------------

fn guest_calls_guest_sync(s: &mut Store, callee: Lifted) {
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Guest(callee), false)
        .unwrap();
    expect_start(s);
    match s.lift_returned() {
        Ok(ResultDelivery::Guest(x)) if x == sub => {}
        r => panic!("lift_returned: {r:?}"),
    }
    s.exit_thread().unwrap();
    match expect_resume(s) {
        ResumeValue::Returned(x) if x == sub => {}
        v => panic!("resumed with {v:?}"),
    }
}

// ----- the pending population (paths 7 and 8) ---------------------------------

/// `n` callback-lifted tasks of `inst`, each waiting (WAIT on a set of its
/// own) on a "future": an async host import the host has not completed.
/// Returns the host calls to complete.
fn spawn_pending(s: &mut Store, inst: InstanceId, n: usize) -> Vec<SubtaskId> {
    let f = lifted(inst, 200, LiftKind::AsyncCallback, true);
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        s.invoke(f).unwrap();
        expect_start(s);
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Host, true)
            .unwrap();
        match s.next_action() {
            Action::HostCall { .. } => {}
            a => panic!("expected HostCall, got {a:?}"),
        }
        subs.push(sub);
        let packed = match expect_resume(s) {
            ResumeValue::I32(p) => p,
            v => panic!("resumed with {v:?}"),
        };
        assert_eq!(packed & 0xf, STARTED);
        let si = s.running().unwrap().waitable_set_new().unwrap();
        s.running().unwrap().waitable_join(packed >> 4, si).unwrap();
        s.running().unwrap().context_set(0, si as u64).unwrap();
        s.callback_returned(WAIT | si << 4).unwrap();
        expect_idle(s);
    }
    subs
}

/// Completes the host calls one at a time, as completions arrive, running
/// each woken callback to its exit.
fn complete_pending(s: &mut Store, subs: &[SubtaskId]) {
    let mut done = 0;
    for &sub in subs {
        s.host_return(sub).unwrap();
        loop {
            match s.next_action() {
                Action::Callback { event, .. } => {
                    assert_eq!(event.code, EventCode::Subtask);
                    assert_eq!(event.payload, RETURNED);
                    s.running().unwrap().subtask_drop(event.index).unwrap();
                    let si = s.running().unwrap().context_get(0).unwrap() as u32;
                    s.running().unwrap().waitable_set_drop(si).unwrap();
                    s.running().unwrap().task_return().unwrap();
                    s.callback_returned(EXIT).unwrap();
                    done += 1;
                }
                Action::Idle => break,
                a => panic!("unexpected {a:?}"),
            }
        }
    }
    assert_eq!(done, subs.len());
}

/// Whether to run a group: `CANON_BENCH_GROUPS` lists group name prefixes
/// (for profiling one path without the setup of the others).
fn wanted(group: &str) -> bool {
    std::env::var("CANON_BENCH_GROUPS").map_or(true, |v| v.split(',').any(|g| group.starts_with(g)))
}

/// `n` stackful tasks of `inst`, each parked in a synchronous call of a
/// host import (the "host future" of the reference's scenarios: the host
/// sets it with `host_return`). Returns the host calls to complete.
fn spawn_pending_sync(s: &mut Store, inst: InstanceId, n: usize) -> Vec<SubtaskId> {
    let f = lifted(inst, 300, LiftKind::AsyncStackful, true);
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        s.invoke(f).unwrap();
        expect_start(s);
        let sub = s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Host, false)
            .unwrap();
        match s.next_action() {
            Action::HostCall { .. } => {}
            a => panic!("expected HostCall, got {a:?}"),
        }
        subs.push(sub);
        expect_idle(s);
    }
    subs
}

/// Completes the synchronous host calls one at a time; each caller returns.
fn complete_pending_sync(s: &mut Store, subs: &[SubtaskId]) {
    for &sub in subs {
        s.host_return(sub).unwrap();
        match expect_resume(s) {
            ResumeValue::Returned(x) if x == sub => {}
            v => panic!("resumed with {v:?}"),
        }
        s.running().unwrap().task_return().unwrap();
        s.exit_thread().unwrap();
        expect_idle(s);
    }
}

fn many() -> usize {
    std::env::var("CANON_BENCH_MANY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

// ----- benchmarks --------------------------------------------------------------

fn paths_1_to_3(c: &mut Criterion) {
    if !wanted("1-3") {
        return;
    }
    let mut g = c.benchmark_group("1-3 calls");
    {
        let mut s = new_store();
        let inst = s.new_instance();
        let f = lifted(inst, 1, LiftKind::AsyncCallback, true);
        g.bench_function("1 host->callback export, returns at once", |b| {
            b.iter(|| host_call_returns_at_once(&mut s, black_box(f)))
        });
    }
    {
        let mut s = new_store();
        let inst = s.new_instance();
        running_caller(&mut s, inst);
        g.bench_function("2 guest->async host import, completes at once", |b| {
            b.iter(|| guest_calls_host(&mut s))
        });
    }
    {
        let mut s = new_store();
        let caller = s.new_instance();
        let callee = s.new_instance();
        running_caller(&mut s, caller);
        let f = lifted(callee, 2, LiftKind::Sync, false);
        g.bench_function("3 guest->guest sync lower + sync lift", |b| {
            b.iter(|| guest_calls_guest_sync(&mut s, black_box(f)))
        });
    }
    g.finish();
}

fn path_4_switch(c: &mut Criterion) {
    if !wanted("4") {
        return;
    }
    let mut g = c.benchmark_group("4 thread switch");
    g.throughput(Throughput::Elements(2));
    // A: yield-then-resume B (A stays ready); B: suspend, and the tick
    // resumes A. Two switches per iteration.
    {
        let mut s = new_store();
        let inst = s.new_instance();
        running_caller(&mut s, inst);
        let b_index = s.running().unwrap().thread_new_indirect(0, 0).unwrap();
        g.bench_function("yield_then_resume + suspend/tick (per 2 switches)", |b| {
            b.iter(|| {
                match s
                    .running()
                    .unwrap()
                    .thread_yield_then_resume(false, b_index)
                {
                    Ok(Step::Suspend) => {}
                    r => panic!("{r:?}"),
                }
                match s.next_action() {
                    Action::StartThread { .. } | Action::Resume { .. } => {}
                    a => panic!("{a:?}"),
                }
                match s.running().unwrap().thread_suspend(false) {
                    Ok(Step::Suspend) => {}
                    r => panic!("{r:?}"),
                }
                expect_resume(&mut s);
            })
        });
    }
    // A and B each yield-then-promote the other (both stay ready).
    {
        let mut s = new_store();
        let inst = s.new_instance();
        running_caller(&mut s, inst);
        let a_index = s.running().unwrap().thread_index().unwrap();
        let b_index = s.running().unwrap().thread_new_indirect(0, 0).unwrap();
        // Start B once; from then on A and B are both ready while the other runs.
        s.running()
            .unwrap()
            .thread_yield_then_resume(false, b_index)
            .unwrap();
        match s.next_action() {
            Action::StartThread { .. } => {}
            a => panic!("{a:?}"),
        }
        g.bench_function("yield_then_promote ping-pong (per 2 switches)", |b| {
            b.iter(|| {
                // B -> A, then A -> B.
                for i in [a_index, b_index] {
                    match s.running().unwrap().thread_yield_then_promote(false, i) {
                        Ok(Step::Suspend) => {}
                        r => panic!("{r:?}"),
                    }
                    expect_resume(&mut s);
                }
            })
        });
    }
    // A and B each suspend-then-resume the other.
    {
        let mut s = new_store();
        let inst = s.new_instance();
        running_caller(&mut s, inst);
        let a_index = s.running().unwrap().thread_index().unwrap();
        let b_index = s.running().unwrap().thread_new_indirect(0, 0).unwrap();
        s.running()
            .unwrap()
            .thread_suspend_then_resume(false, b_index)
            .unwrap();
        match s.next_action() {
            Action::StartThread { .. } => {}
            a => panic!("{a:?}"),
        }
        g.bench_function("suspend_then_resume ping-pong (per 2 switches)", |b| {
            b.iter(|| {
                for i in [a_index, b_index] {
                    match s.running().unwrap().thread_suspend_then_resume(false, i) {
                        Ok(Step::Suspend) => {}
                        r => panic!("{r:?}"),
                    }
                    expect_resume(&mut s);
                }
            })
        });
    }
    g.finish();
}

fn path_5_wait(c: &mut Criterion) {
    if !wanted("5") {
        return;
    }
    let mut g = c.benchmark_group("5 waitable-set.wait, one ready of N");
    for n in [10usize, 100_000] {
        let mut s = new_store();
        let inst = s.new_instance();
        running_caller(&mut s, inst);
        let si = s.running().unwrap().waitable_set_new().unwrap();
        // N - 1 idle members, then the hot stream's readable end, last in join order.
        for _ in 1..n {
            let ends = s.running().unwrap().stream_new(U8).unwrap();
            s.running().unwrap().waitable_join(ends as u32, si).unwrap();
        }
        let ends = s.running().unwrap().stream_new(U8).unwrap();
        let (ri, wi) = (ends as u32, (ends >> 32) as u32);
        s.running().unwrap().waitable_join(ri, si).unwrap();
        let buf = |mem| canon_async::GuestBuf {
            mem,
            ptr: 0,
            len: 1,
            mem_size: 16,
        };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                // Re-arm: an async read blocks, a write meets it.
                let r = s
                    .running()
                    .unwrap()
                    .stream_read(U8, true, ri, buf(0))
                    .unwrap();
                assert_eq!(r.step, Step::Done(BLOCKED));
                let w = s
                    .running()
                    .unwrap()
                    .stream_write(U8, true, wi, buf(1))
                    .unwrap();
                assert!(w.transfer.is_some());
                // The measured call: the one ready member's event.
                match s.running().unwrap().waitable_set_wait(false, si, 0) {
                    Ok(Step::Suspend) => match expect_resume(&mut s) {
                        ResumeValue::Event { event, .. } => assert_eq!(event.index, ri),
                        v => panic!("{v:?}"),
                    },
                    Ok(Step::Done(e)) => assert_eq!(e.index, ri),
                    r => panic!("{r:?}"),
                }
            })
        });
    }
    g.finish();
}

/// The guest-to-guest stream: writer instance W, reader instance R, each
/// with its own memory. Returns the store and the handles; W is blocked on
/// a pending write and R runs.
struct StreamPair {
    s: Store,
    r_read: u32,
    w_write: u32,
    w_set: u32,
    mem_r: Vec<u8>,
    mem_w: Vec<u8>,
}

fn stream_pair(len: usize) -> StreamPair {
    let mut s = new_store();
    let w_inst = s.new_instance();
    let r_inst = s.new_instance();
    let mem_w: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mem_r = vec![0u8; len];
    // W: creates the stream, hands the readable end to R, starts writing.
    running_caller(&mut s, w_inst);
    let ends = s.running().unwrap().stream_new(U8).unwrap();
    let (ri, wi) = (ends as u32, (ends >> 32) as u32);
    let shared = s.lift_end(w_inst, EndKind::Stream, U8, ri).unwrap();
    let r_read = s.lower_end(r_inst, shared).unwrap();
    let w_set = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(wi, w_set).unwrap();
    let mut p = StreamPair {
        s,
        r_read,
        w_write: wi,
        w_set,
        mem_r,
        mem_w,
    };
    p.write_and_wait(len as u32);
    expect_idle(&mut p.s);
    running_caller(&mut p.s, r_inst);
    p
}

impl StreamPair {
    fn buf(&self, len: u32) -> canon_async::GuestBuf {
        canon_async::GuestBuf {
            mem: 0,
            ptr: 0,
            len,
            mem_size: len as u64,
        }
    }

    fn write_and_wait(&mut self, len: u32) {
        let b = self.buf(len);
        let w = (self.s)
            .running()
            .unwrap()
            .stream_write(U8, true, self.w_write, b)
            .unwrap();
        assert_eq!(w.step, Step::Done(BLOCKED));
        assert_eq!(
            self.s
                .running()
                .unwrap()
                .waitable_set_wait(false, self.w_set, 0),
            Ok(Step::Suspend)
        );
    }

    /// One copy: R reads (meets W's pending write: apply the transfer),
    /// yields; W gets its event, writes again (pending) and waits; R runs.
    fn round(&mut self, len: u32) {
        let b = self.buf(len);
        let r = (self.s)
            .running()
            .unwrap()
            .stream_read(U8, true, self.r_read, b)
            .unwrap();
        let t = r.transfer.expect("rendezvous");
        let (Some((_, src)), Some((_, dst))) = (t.src.guest(), t.dst.guest()) else {
            panic!("guest ends")
        };
        let (src, dst, n) = (src as usize, dst as usize, t.count as usize);
        self.mem_r[dst..dst + n].copy_from_slice(&self.mem_w[src..src + n]);
        assert_eq!(r.step, Step::Done(len << 4));
        assert_eq!(
            self.s.running().unwrap().thread_yield(false),
            Ok(Step::Suspend)
        );
        match expect_resume(&mut self.s) {
            ResumeValue::Event { event, .. } => debug_assert_eq!(event.payload, len << 4),
            v => panic!("{v:?}"),
        }
        self.write_and_wait(len);
        expect_resume(&mut self.s);
    }
}

fn path_6_stream(c: &mut Criterion) {
    if !wanted("6") {
        return;
    }
    let mut g = c.benchmark_group("6 stream<u8> guest-to-guest");
    for len in [65_536usize, 16] {
        g.throughput(Throughput::Bytes(len as u64));
        let mut p = stream_pair(len);
        g.bench_function(BenchmarkId::new("rendezvous+memcpy", len), |b| {
            b.iter(|| p.round(len as u32))
        });
        let src = vec![7u8; len];
        let mut dst = vec![0u8; len];
        g.bench_function(BenchmarkId::new("plain memcpy", len), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

type Spawn = fn(&mut Store, InstanceId, usize) -> Vec<SubtaskId>;
type Complete = fn(&mut Store, &[SubtaskId]);

fn path_7_million(c: &mut Criterion) {
    if !wanted("7") {
        return;
    }
    let n = many();
    let mut g = c.benchmark_group("7 pending tasks");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(1));
    g.warm_up_time(Duration::from_millis(1));
    let scenarios: [(&str, Spawn, Complete); 2] = [
        (
            "callback task, async host call, WAIT on own set",
            spawn_pending,
            complete_pending,
        ),
        (
            "stackful task, sync host call",
            spawn_pending_sync,
            complete_pending_sync,
        ),
    ];
    for (name, spawn, complete) in scenarios {
        let mut reported = false;
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut s = new_store();
                    let inst = s.new_instance();
                    let before = live_bytes();
                    let t0 = Instant::now();
                    let subs = spawn(&mut s, inst, n);
                    let t1 = Instant::now();
                    let bytes = live_bytes() - before - (subs.capacity() * 4) as isize;
                    assert_eq!(s.live_tasks(), n);
                    complete(&mut s, &subs);
                    let t2 = Instant::now();
                    assert_eq!(s.live_tasks(), 0);
                    if !reported {
                        reported = true;
                        eprintln!(
                            "path 7 ({name}): N={n}: {:.1} heap bytes per pending task; create {:.0} ns/task, complete {:.0} ns/task",
                            bytes as f64 / n as f64,
                            (t1 - t0).as_nanos() as f64 / n as f64,
                            (t2 - t1).as_nanos() as f64 / n as f64,
                        );
                    }
                    total += t2 - t0;
                }
                total
            })
        });
    }
    g.finish();
}

fn path_8_population(c: &mut Criterion) {
    if !wanted("8") {
        return;
    }
    let mut g = c.benchmark_group("8 calls with others alive");
    for others in [10usize, 10_000, many()] {
        let mut s = new_store();
        let busy = s.new_instance();
        let _subs = spawn_pending(&mut s, busy, others);
        let inst = s.new_instance();
        let f = lifted(inst, 1, LiftKind::AsyncCallback, true);
        g.bench_with_input(
            BenchmarkId::new("1 host->callback", others),
            &others,
            |b, _| b.iter(|| host_call_returns_at_once(&mut s, black_box(f))),
        );
        let callee = s.new_instance();
        running_caller(&mut s, inst);
        g.bench_with_input(
            BenchmarkId::new("2 guest->host", others),
            &others,
            |b, _| b.iter(|| guest_calls_host(&mut s)),
        );
        let f = lifted(callee, 2, LiftKind::Sync, false);
        g.bench_with_input(
            BenchmarkId::new("3 guest->guest sync", others),
            &others,
            |b, _| b.iter(|| guest_calls_guest_sync(&mut s, black_box(f))),
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    paths_1_to_3,
    path_4_switch,
    path_5_wait,
    path_6_stream,
    path_7_million,
    path_8_population
);
/// `CANON_CALLGRIND=<path>:<iterations>` runs one path's loop that many
/// times and exits, without criterion: `benches/callgrind.sh` runs it
/// under callgrind at two iteration counts and takes the difference, so
/// that the setup cancels out. Paths: `1`, `2`, `3`, `4` (one
/// `yield-then-resume` round trip: two switches), `4p` (promote ping-pong,
/// two switches), `4s` (suspend-then-resume ping-pong, two switches), `7`
/// (that many pending callback tasks; prints the heap bytes per task).
fn callgrind_mode(spec: &str) {
    let (path, n) = spec
        .split_once(':')
        .expect("CANON_CALLGRIND=<path>:<iterations>");
    let n: usize = n.parse().expect("iterations");
    let mut s = new_store();
    match path {
        "1" => {
            let inst = s.new_instance();
            let f = lifted(inst, 1, LiftKind::AsyncCallback, true);
            for _ in 0..n {
                host_call_returns_at_once(&mut s, black_box(f));
            }
        }
        "2" => {
            let inst = s.new_instance();
            running_caller(&mut s, inst);
            for _ in 0..n {
                guest_calls_host(&mut s);
            }
        }
        "3" => {
            let caller = s.new_instance();
            let callee = s.new_instance();
            running_caller(&mut s, caller);
            let f = lifted(callee, 2, LiftKind::Sync, false);
            for _ in 0..n {
                guest_calls_guest_sync(&mut s, black_box(f));
            }
        }
        "4" => {
            let inst = s.new_instance();
            running_caller(&mut s, inst);
            let b_index = s.running().unwrap().thread_new_indirect(0, 0).unwrap();
            for _ in 0..n {
                assert_eq!(
                    s.running()
                        .unwrap()
                        .thread_yield_then_resume(false, b_index),
                    Ok(Step::Suspend)
                );
                match s.next_action() {
                    Action::StartThread { .. } | Action::Resume { .. } => {}
                    a => panic!("{a:?}"),
                }
                assert_eq!(
                    s.running().unwrap().thread_suspend(false),
                    Ok(Step::Suspend)
                );
                expect_resume(&mut s);
            }
        }
        "4p" | "4s" => {
            let inst = s.new_instance();
            running_caller(&mut s, inst);
            let a_index = s.running().unwrap().thread_index().unwrap();
            let b_index = s.running().unwrap().thread_new_indirect(0, 0).unwrap();
            let promote = path == "4p";
            let switch = |s: &mut Store, i| {
                if promote {
                    s.running().unwrap().thread_yield_then_promote(false, i)
                } else {
                    s.running().unwrap().thread_suspend_then_resume(false, i)
                }
            };
            // Start B once (A stays ready for the promote ping-pong).
            if promote {
                s.running()
                    .unwrap()
                    .thread_yield_then_resume(false, b_index)
                    .unwrap();
            } else {
                s.running()
                    .unwrap()
                    .thread_suspend_then_resume(false, b_index)
                    .unwrap();
            }
            match s.next_action() {
                Action::StartThread { .. } => {}
                a => panic!("{a:?}"),
            }
            for _ in 0..n {
                for i in [a_index, b_index] {
                    assert_eq!(switch(&mut s, i), Ok(Step::Suspend));
                    expect_resume(&mut s);
                }
            }
        }
        "7" => {
            let inst = s.new_instance();
            let before = live_bytes();
            let subs = spawn_pending(&mut s, inst, n);
            let bytes = live_bytes() - before - (subs.capacity() * 4) as isize;
            println!(
                "path 7: N={n}: {:.1} heap bytes per pending task",
                bytes as f64 / n as f64
            );
            complete_pending(&mut s, &subs);
            assert_eq!(s.live_tasks(), 0);
        }
        p => panic!("unknown path {p}"),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("CANON_CALLGRIND") {
        callgrind_mode(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
