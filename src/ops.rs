//! Random operation programs (cargo feature `arbitrary`): one operation
//! enum that proptest (through [`arbitrary::Unstructured`] over random
//! bytes) and cargo-fuzz both generate, and an interpreter that runs a
//! program through the [scripted host](crate::script).
//!
//! A program runs over several instances, each exporting a stackful, a
//! callback, a synchronous and a sync-lifted async-typed function. The
//! operations form one queue: host operations ([`Op::Invoke`],
//! [`Op::CompleteHost`], [`Op::Tick`], [`Op::Run`]) are performed by the
//! driver between steps of the store; every other operation is a built-in
//! call, performed by whichever guest thread runs when it reaches the
//! front of the queue, with the handle and thread indices it names (often
//! wrong: misuse must trap, never panic). A guest that finds a host
//! operation at the front yields to let the driver perform it; a guest
//! that finds the queue empty returns (calling `task.return` first when
//! its task has not resolved).
//!
//! With the `check` feature the store verifies its invariants after every
//! step, so running a program is a property test of the whole core.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::script::{running, Guest, HostAnswer, Ret, Script};
use crate::ThreadSwitch;
use crate::{
    Action, Chooser, ElemClass, ElemType, EndKind, Event, EventCode, InstanceId, LiftKind, Lifted,
    Store, SubtaskId, TaskState, Trap,
};

/// One operation of a program.
#[derive(Clone, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum Op {
    // ----- the host -----
    /// `Store::invoke` of function `f` (modulo the number of functions).
    Invoke {
        /// The function.
        f: u8,
    },
    /// Completes the `k`-th pending host call with result `v`.
    CompleteHost {
        /// Which pending call.
        k: u8,
        /// The result.
        v: u8,
    },
    /// One `next_action` and its action.
    Tick,
    /// Drive the store until it is idle.
    Run,
    // ----- guest built-ins -----
    /// `waitable-set.new`.
    SetNew,
    /// `waitable-set.wait` (a callback returns `WAIT` instead).
    SetWait {
        /// The set's index.
        si: u8,
        /// Whether the wait is cancellable.
        cancellable: bool,
    },
    /// `waitable-set.poll`.
    SetPoll {
        /// The set's index.
        si: u8,
        /// Whether the poll is cancellable.
        cancellable: bool,
    },
    /// `waitable-set.drop`.
    SetDrop {
        /// The set's index.
        si: u8,
    },
    /// `waitable.join`.
    Join {
        /// The waitable's index.
        wi: u8,
        /// The set's index (0: leave).
        si: u8,
    },
    /// `thread.yield` (a callback returns `YIELD` instead).
    Yield {
        /// Whether it is cancellable.
        cancellable: bool,
    },
    /// `thread.suspend`.
    Suspend {
        /// Whether it is cancellable.
        cancellable: bool,
    },
    /// `thread.new-indirect` of the ops thread function.
    ThreadNew {
        /// The closure argument.
        arg: u8,
    },
    /// `thread.resume-later`.
    ResumeLater {
        /// The thread index.
        i: u8,
    },
    /// One of the four switch built-ins.
    Switch {
        /// The thread index.
        i: u8,
        /// `yield-then-*` rather than `suspend-then-*`.
        yield_: bool,
        /// `*-then-promote` rather than `*-then-resume`.
        promote: bool,
        /// Whether it is cancellable.
        cancellable: bool,
    },
    /// `thread.index`.
    ThreadIndex,
    /// A call of function `f`.
    Call {
        /// The function.
        f: u8,
        /// An async lower.
        async_: bool,
    },
    /// A call of a host function.
    CallHost {
        /// The host function stays pending until [`Op::CompleteHost`].
        pending: bool,
        /// An async lower.
        async_: bool,
    },
    /// `subtask.cancel`.
    SubtaskCancel {
        /// The subtask's index.
        i: u8,
        /// Async.
        async_: bool,
    },
    /// `subtask.drop`.
    SubtaskDrop {
        /// The subtask's index.
        i: u8,
    },
    /// `stream.new` / `future.new`.
    New {
        /// A future.
        future: bool,
        /// Payload-less elements rather than u32s.
        unit: bool,
    },
    /// `stream.read/write`, `future.read/write`.
    Copy {
        /// A future.
        future: bool,
        /// Payload-less elements rather than u32s.
        unit: bool,
        /// A read.
        read: bool,
        /// The end's index.
        i: u8,
        /// The buffer length (streams).
        len: u8,
        /// Async.
        async_: bool,
    },
    /// `stream.cancel-read/write`, `future.cancel-read/write`.
    CancelCopy {
        /// A future.
        future: bool,
        /// Payload-less elements rather than u32s.
        unit: bool,
        /// A read.
        read: bool,
        /// The end's index.
        i: u8,
        /// Async.
        async_: bool,
    },
    /// `stream.drop-*`, `future.drop-*`.
    DropEnd {
        /// A future.
        future: bool,
        /// Payload-less elements rather than u32s.
        unit: bool,
        /// The readable end.
        read: bool,
        /// The end's index.
        i: u8,
    },
    /// Lifts readable end `i` and lowers it into instance `to`.
    PassEnd {
        /// A future.
        future: bool,
        /// Payload-less elements rather than u32s.
        unit: bool,
        /// The end's index.
        i: u8,
        /// The receiving instance.
        to: u8,
    },
    /// `task.return`.
    TaskReturn,
    /// `task.cancel`.
    TaskCancel,
    /// `backpressure.inc` / `dec`.
    Backpressure {
        /// inc rather than dec.
        inc: bool,
    },
    /// `context.set` / `get`.
    Context {
        /// set rather than get.
        set: bool,
        /// The slot.
        i: u8,
    },
    /// `error-context.new` / `drop`.
    ErrorContext {
        /// new rather than drop.
        new: bool,
        /// The index to drop.
        i: u8,
    },
    /// The guest's core code traps (`unreachable`).
    Trap,
    /// The guest's core function returns now.
    Return,
}

impl Op {
    fn is_host(&self) -> bool {
        matches!(
            self,
            Op::Invoke { .. } | Op::CompleteHost { .. } | Op::Tick | Op::Run
        )
    }
}

/// What a program run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Actions performed.
    pub steps: usize,
    /// Traps (guest code, built-ins, the driving loop, refused invokes).
    pub traps: usize,
    /// Tasks still live at the end.
    pub live: usize,
    /// Every action and trap, in order (for determinism checks).
    pub log: Vec<String>,
}

/// Limits of a run.
const MAX_STEPS: usize = 20_000;
const INSTANCES: usize = 3;
const RETPTR: u32 = 128;
const EVPTR: u32 = 64;
const BUF: u32 = 1024;

struct Ctx {
    ops: RefCell<VecDeque<Op>>,
    fs: RefCell<Vec<Lifted>>,
    insts: Vec<InstanceId>,
    pending: Rc<RefCell<Vec<SubtaskId>>>,
    h_ret: usize,
    h_pend: usize,
}

enum Next {
    Op(Op),
    Host,
    Empty,
}

impl Ctx {
    fn next_guest(&self) -> Next {
        let mut q = self.ops.borrow_mut();
        match q.front() {
            None => Next::Empty,
            Some(o) if o.is_host() => Next::Host,
            Some(_) => Next::Op(q.pop_front().expect("front")),
        }
    }
}

fn elem(unit: bool) -> ElemType {
    if unit {
        ElemType {
            id: 0,
            class: ElemClass::None,
            size: 0,
            align: 1,
        }
    } else {
        ElemType {
            id: 1,
            class: ElemClass::Number,
            size: 4,
            align: 4,
        }
    }
}

fn kind(future: bool) -> EndKind {
    if future {
        EndKind::Future
    } else {
        EndKind::Stream
    }
}

/// A handle or thread index: small, so that many name something (0 never does).
fn idx(i: u8) -> u32 {
    (i % 8) as u32
}

/// How a guest's core code runs ops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A stackful lift, a synchronous lift, or an explicit thread.
    Stack,
    /// A callback lift's core function or callback: returns a code.
    Callback,
}

/// What ends a guest's run of ops.
enum Turn {
    Done,
    Code(u32),
}

async fn run_ops(g: &Guest, ctx: &Ctx, mode: Mode) -> Result<Turn, Trap> {
    loop {
        let op = match ctx.next_guest() {
            Next::Empty => return Ok(Turn::Done),
            Next::Host => {
                if mode == Mode::Callback {
                    return Ok(Turn::Code(1));
                }
                g.yield_(false).await?;
                continue;
            }
            Next::Op(op) => op,
        };
        match op {
            Op::Return => return Ok(Turn::Done),
            Op::Trap => return Err(Trap::Wasm("unreachable".into())),
            Op::Yield { .. } if mode == Mode::Callback => return Ok(Turn::Code(1)),
            Op::SetWait { si, .. } if mode == Mode::Callback => {
                return Ok(Turn::Code(2 | idx(si) << 4))
            }
            op => guest_op(g, ctx, op).await?,
        }
    }
}

async fn guest_op(g: &Guest, ctx: &Ctx, op: Op) -> Result<(), Trap> {
    let inst = g.instance();
    match op {
        Op::SetNew => {
            running(&mut g.store()).waitable_set_new()?;
        }
        Op::SetWait { si, cancellable } => {
            g.wait(cancellable, idx(si), EVPTR).await?;
        }
        Op::SetPoll { si, cancellable } => {
            g.poll(cancellable, idx(si), EVPTR)?;
        }
        Op::SetDrop { si } => running(&mut g.store()).waitable_set_drop(idx(si))?,
        Op::Join { wi, si } => running(&mut g.store()).waitable_join(idx(wi), idx(si))?,
        Op::Yield { cancellable } => {
            g.yield_(cancellable).await?;
        }
        Op::Suspend { cancellable } => {
            g.suspend(cancellable).await?;
        }
        Op::ThreadNew { arg } => {
            running(&mut g.store()).thread_new_indirect(0, arg as u32)?;
        }
        Op::ResumeLater { i } => running(&mut g.store()).thread_resume_later(idx(i))?,
        Op::Switch {
            i,
            yield_,
            promote,
            cancellable,
        } => {
            let i = idx(i);
            let kind = match (yield_, promote) {
                (false, false) => ThreadSwitch::SuspendThenResume,
                (true, false) => ThreadSwitch::YieldThenResume,
                (false, true) => ThreadSwitch::SuspendThenPromote,
                (true, true) => ThreadSwitch::YieldThenPromote,
            };
            g.switch(kind, cancellable, i).await?;
        }
        Op::ThreadIndex => {
            running(&mut g.store()).thread_index()?;
        }
        Op::Call { f, async_ } => {
            let f = {
                let fs = ctx.fs.borrow();
                fs[f as usize % fs.len()]
            };
            if async_ {
                g.call_async(f, vec![], RETPTR).await?;
            } else {
                g.call(f, vec![]).await?;
            }
        }
        Op::CallHost { pending, async_ } => {
            let h = if pending { ctx.h_pend } else { ctx.h_ret };
            if async_ {
                g.call_host_async(h, vec![], RETPTR).await?;
            } else {
                g.call_host(h, vec![]).await?;
            }
        }
        Op::SubtaskCancel { i, async_ } => {
            g.subtask_cancel(async_, idx(i)).await?;
        }
        Op::SubtaskDrop { i } => running(&mut g.store()).subtask_drop(idx(i))?,
        Op::New { future, unit } => {
            running(&mut g.store()).copy_new(kind(future), elem(unit))?;
        }
        Op::Copy {
            future,
            unit,
            read,
            i,
            len,
            async_,
        } => {
            let len = (len % 5) as u32;
            g.copy(kind(future), read, elem(unit), async_, idx(i), BUF, len)
                .await?;
        }
        Op::CancelCopy {
            future,
            unit,
            read,
            i,
            async_,
        } => {
            g.cancel_copy(kind(future), read, elem(unit), async_, idx(i))
                .await?;
        }
        Op::DropEnd {
            future,
            unit,
            read,
            i,
        } => running(&mut g.store()).drop_end(kind(future), read, elem(unit), idx(i))?,
        Op::PassEnd {
            future,
            unit,
            i,
            to,
        } => {
            let to = ctx.insts[to as usize % ctx.insts.len()];
            let mut st = g.store();
            let s = st.lift_end(inst, kind(future), elem(unit), idx(i))?;
            st.lower_end(to, s)?;
        }
        Op::TaskReturn => g.task_return(vec![])?,
        Op::TaskCancel => running(&mut g.store()).task_cancel()?,
        Op::Backpressure { inc } => {
            if inc {
                running(&mut g.store()).backpressure_inc()?
            } else {
                running(&mut g.store()).backpressure_dec()?
            }
        }
        Op::Context { set, i } => {
            if set {
                running(&mut g.store()).context_set(i as u32, i as u64)?
            } else {
                running(&mut g.store()).context_get(i as u32)?;
            }
        }
        Op::ErrorContext { new, i } => {
            if new {
                running(&mut g.store()).error_context_new(i as u32)?;
            } else {
                running(&mut g.store()).error_context_drop(idx(i))?
            }
        }
        Op::Invoke { .. }
        | Op::CompleteHost { .. }
        | Op::Tick
        | Op::Run
        | Op::Trap
        | Op::Return => {}
    }
    Ok(())
}

/// `task.return` unless the running task has resolved.
fn finish_task(g: &Guest) -> Result<(), Trap> {
    let state = {
        let st = g.store();
        st.thread_task(g.thread()).and_then(|t| st.task_state(t))
    };
    if state.is_some_and(|s| s != TaskState::Resolved) {
        g.task_return(vec![])?;
    }
    Ok(())
}

/// Builds the instances and functions of an ops program over `store`.
fn build(store: Store, ops: Vec<Op>) -> (Script, Rc<Ctx>) {
    let mut s = Script::with_store(store);
    let insts: Vec<InstanceId> = (0..INSTANCES).map(|_| s.instance()).collect();
    let pend: Rc<RefCell<Vec<SubtaskId>>> = Rc::default();
    let p2 = pend.clone();
    let h_ret = s.host_fn(|_, _, _| HostAnswer::Return(vec![7]));
    let h_pend = s.host_fn(move |_, sub, _| {
        p2.borrow_mut().push(sub);
        HostAnswer::Pending
    });
    let ctx = Rc::new(Ctx {
        ops: RefCell::new(ops.into()),
        fs: RefCell::new(Vec::new()),
        insts: insts.clone(),
        pending: pend,
        h_ret,
        h_pend,
    });
    let c = ctx.clone();
    s.table_fn(move |g, _| {
        let c = c.clone();
        async move {
            run_ops(&g, &c, Mode::Stack).await?;
            Ok(Ret::Exit)
        }
    });
    let mut fs = Vec::new();
    for &i in &insts {
        let c = ctx.clone();
        fs.push(s.func(i, LiftKind::AsyncStackful, true, move |g, _| {
            let c = c.clone();
            async move {
                run_ops(&g, &c, Mode::Stack).await?;
                finish_task(&g)?;
                Ok(Ret::Exit)
            }
        }));
        let (c1, c2) = (ctx.clone(), ctx.clone());
        fs.push(s.callback_func(
            i,
            move |g, _| {
                let c = c1.clone();
                async move {
                    match run_ops(&g, &c, Mode::Callback).await? {
                        Turn::Code(code) => Ok(Ret::Code(code)),
                        Turn::Done => {
                            finish_task(&g)?;
                            Ok(Ret::Code(0))
                        }
                    }
                }
            },
            move |g, e: Event| {
                let c = c2.clone();
                async move {
                    if e.code == EventCode::TaskCancelled {
                        g.log("cancelled");
                    }
                    match run_ops(&g, &c, Mode::Callback).await? {
                        Turn::Code(code) => Ok(Ret::Code(code)),
                        Turn::Done => {
                            finish_task(&g)?;
                            Ok(Ret::Code(0))
                        }
                    }
                }
            },
        ));
        for async_type in [false, true] {
            let c = ctx.clone();
            fs.push(s.func(i, LiftKind::Sync, async_type, move |g, _| {
                let c = c.clone();
                async move {
                    run_ops(&g, &c, Mode::Stack).await?;
                    Ok(Ret::Values(vec![1]))
                }
            }));
        }
    }
    *ctx.fs.borrow_mut() = fs;
    (s, ctx)
}

/// Runs `ops` over a store whose choices `chooser` makes. Never panics
/// unless the core has a bug (with the `check` feature, a broken invariant).
pub fn run(ops: &[Op], chooser: Box<dyn Chooser>) -> Outcome {
    let (mut s, ctx) = build(Store::with_chooser(chooser), ops.to_vec());
    let mut out = Outcome::default();
    let mut invokes = 0usize;
    // One action of the store; false when it was idle.
    let step = |s: &mut Script, out: &mut Outcome| -> bool {
        let a = s.store().next_action();
        match a {
            Action::Idle => false,
            Action::Trap(t) => {
                out.steps += 1;
                out.traps += 1;
                out.log.push(format!("trap {t:?}"));
                true
            }
            a => {
                out.steps += 1;
                out.log.push(format!("{a:?}"));
                if let Err(t) = s.step(a) {
                    out.traps += 1;
                    out.log.push(format!("trap {t:?}"));
                }
                true
            }
        }
    };
    while out.steps < MAX_STEPS {
        let front = ctx.ops.borrow().front().cloned();
        let Some(op) = front else { break };
        if op.is_host() {
            ctx.ops.borrow_mut().pop_front();
            match op {
                Op::Invoke { f } => {
                    invoke(&mut s, &ctx, f as usize, &mut out);
                }
                Op::CompleteHost { k, v } => {
                    let sub = {
                        let mut p = ctx.pending.borrow_mut();
                        sync_pending(&s, &mut p);
                        if p.is_empty() {
                            None
                        } else {
                            let k = k as usize % p.len();
                            Some(p.remove(k))
                        }
                    };
                    if let Some(sub) = sub {
                        let r = s.complete_host(sub, vec![v as u64]);
                        out.log.push(format!("complete {sub:?}: {r:?}"));
                    }
                }
                Op::Tick => {
                    step(&mut s, &mut out);
                }
                Op::Run => while out.steps < MAX_STEPS && step(&mut s, &mut out) {},
                _ => {}
            }
        } else if !step(&mut s, &mut out) {
            // Idle with a guest op first: a new call of some function runs
            // it (or, when the call is refused, the op is dropped).
            if !invoke(&mut s, &ctx, invokes, &mut out) {
                ctx.ops.borrow_mut().pop_front();
            }
            invokes += 1;
        }
    }
    ctx.ops.borrow_mut().clear();
    while out.steps < MAX_STEPS && step(&mut s, &mut out) {}
    out.live = s.store().live_tasks();
    out
}

/// Forgets recorded host calls that resolved (cancelled) or are gone.
fn sync_pending(s: &Script, p: &mut Vec<SubtaskId>) {
    let st = s.store();
    p.retain(|&sub| st.subtask_state(sub).is_some_and(|x| !x.resolved()));
}

fn invoke(s: &mut Script, ctx: &Ctx, f: usize, out: &mut Outcome) -> bool {
    let f = {
        let fs = ctx.fs.borrow();
        fs[f % fs.len()]
    };
    match s.invoke(f, vec![]) {
        Ok(t) => {
            out.log.push(format!("invoke {f:?}: {t:?}"));
            true
        }
        Err(e) => {
            // An invoke while guest code runs is the embedder's mistake,
            // not a trap.
            if let crate::Error::Trap(_) = e {
                out.traps += 1;
            }
            out.log.push(format!("invoke {f:?}: {e:?}"));
            false
        }
    }
}

/// Decodes a program from fuzzer bytes.
pub fn from_bytes(data: &[u8]) -> Vec<Op> {
    let mut u = arbitrary::Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 256 {
        match u.arbitrary::<Op>() {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}
