//! The async canon built-ins as wasmi host functions, each a thin wrapper
//! over the core's method of the same name. A built-in that answers
//! `Step::Suspend` parks its thread (see [`crate::canon::suspend`]).

use std::sync::Arc;

use canon_async::{
    ElemClass, ElemType, EndKind, Event, GuestBuf, Step, ThreadSwitch, Transfer, TransferEnd,
};
use wasmi::{AsContextMut, Caller, StoreContextMut};

use crate::abi::lift::{lift_flat_values, load, FlatIter};
use crate::abi::lower::{store, store_string_into_range};
use crate::abi::types::{Ty, MAX_FLAT_PARAMS};
use crate::abi::val::{Flat, Str, StrEnc};
use crate::canon::{core_trap, elem_type, running, suspend, Cx};
use crate::error::{trap_if, trap_to_wasmi, EmbedderFault, Trap};
use crate::state::Opts;
use crate::state::{InstId, Park, Rt};

/// The payload type of a stream or future built-in, with the core's
/// element type for it ([`elem_type`]) resolved on its first call and kept:
/// no hashing of the type on every call. (A built-in belongs to the one
/// store it was instantiated in, whose element type ids these are.)
#[derive(Debug, Clone)]
pub struct Elem {
    ty: Option<Ty>,
    core: std::sync::OnceLock<ElemType>,
}

impl Elem {
    pub(crate) fn new(ty: Option<Ty>) -> Self {
        Elem {
            ty,
            core: std::sync::OnceLock::new(),
        }
    }

    fn core(&self, rt: &mut Rt) -> ElemType {
        *self.core.get_or_init(|| elem_type(rt, &self.ty))
    }
}

/// A built-in with what it needs from its definition.
#[derive(Debug, Clone)]
pub enum Builtin {
    TaskReturn {
        result: Option<Ty>,
        opts: Opts,
    },
    TaskCancel,
    ContextGet(u32),
    ContextSet(u32),
    BackpressureInc,
    BackpressureDec,
    ThreadYield(bool),
    SubtaskDrop,
    SubtaskCancel(bool),
    CopyNew {
        kind: EndKind,
        elem: Elem,
    },
    Copy {
        kind: EndKind,
        readable: bool,
        elem: Elem,
        opts: Opts,
    },
    CancelCopy {
        kind: EndKind,
        readable: bool,
        elem: Elem,
        is_async: bool,
    },
    DropEnd {
        kind: EndKind,
        readable: bool,
        elem: Elem,
    },
    ErrorContextNew(Opts),
    ErrorContextDebugMessage(Opts),
    ErrorContextDrop,
    WaitableSetNew,
    WaitableSetWait {
        cancellable: bool,
        memory: Option<wasmi::Memory>,
    },
    WaitableSetPoll {
        cancellable: bool,
        memory: Option<wasmi::Memory>,
    },
    WaitableSetDrop,
    WaitableJoin,
    ThreadIndex,
    ThreadNewIndirect {
        table: wasmi::Table,
        ft: wasmi::FuncType,
    },
    ThreadResumeLater,
    ThreadSuspend(bool),
    ThreadSwitch(ThreadSwitch, bool),
    Unsupported(String),
}

fn arg(params: &[wasmi::Val], i: usize) -> Result<u32, Trap> {
    match params.get(i) {
        Some(wasmi::Val::I32(v)) => Ok(*v as u32),
        Some(wasmi::Val::I64(v)) => Ok(*v as u32),
        _ => Err(Trap::new("internal: missing built-in argument")),
    }
}

fn set_i32(results: &mut [wasmi::Val], v: u32) {
    if let Some(r) = results.first_mut() {
        *r = wasmi::Val::I32(v as i32);
    }
}

/// Stores an event's payload at `ptr` in `memory`.
pub fn store_event(
    ctx: &mut StoreContextMut<'_, Rt>,
    memory: Option<wasmi::Memory>,
    ptr: u32,
    e: &Event,
) -> Result<(), Trap> {
    let m = memory.ok_or_else(|| Trap::new("no memory for the event"))?;
    let data = m.data_mut(&mut *ctx);
    let p = ptr as usize;
    trap_if(ptr % 4 != 0, "unaligned pointer")?;
    let dst = data
        .get_mut(p..p.saturating_add(8))
        .ok_or_else(|| Trap::new("pointer out of bounds of memory"))?;
    dst.copy_from_slice(&e.payload_bytes());
    Ok(())
}

/// The host function body of a built-in.
pub fn call(
    mut caller: Caller<'_, Rt>,
    b: &Arc<Builtin>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let mut ctx = caller.as_context_mut();
    // Every built-in acts for the running thread: none running is the
    // runtime's own bug, not a guest trap.
    if let Err(e) = ctx.data_mut().core.running() {
        return Err(wasmi::Error::host(EmbedderFault(e)));
    }
    let r = call_inner(&mut ctx, b, params, results);
    if ctx.data().trace {
        let name = format!("{b:?}");
        let name = name.split([' ', '{', '(']).next().unwrap_or("");
        eprintln!("[canon-async-spec] {name}{params:?} -> {r:?} {results:?}");
    }
    match r {
        Ok(Some(park)) => Err(suspend(ctx.data_mut(), park)),
        Ok(None) => Ok(()),
        Err(t) => Err(trap_to_wasmi(t)),
    }
}

fn step_i32(s: Step<u32>, results: &mut [wasmi::Val], has_result: bool) -> Option<Park> {
    match s {
        Step::Done(v) => {
            set_i32(results, v);
            None
        }
        Step::Suspend => Some(Park::I32 { has_result }),
    }
}

/// What a built-in's body returns: the park of a thread that suspends,
/// `None` when the built-in returns at once.
type R = Result<Option<Park>, Trap>;

fn call_inner(
    ctx: &mut StoreContextMut<'_, Rt>,
    b: &Builtin,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> R {
    match b {
        Builtin::TaskReturn { result, opts } => task_return(ctx, params, results, result, opts),
        Builtin::TaskCancel => task_cancel(ctx, params, results),
        Builtin::ContextGet(i) => context_get(ctx, params, results, i),
        Builtin::ContextSet(i) => context_set(ctx, params, results, i),
        Builtin::BackpressureInc => backpressure_inc(ctx, params, results),
        Builtin::BackpressureDec => backpressure_dec(ctx, params, results),
        Builtin::ThreadYield(c) => thread_yield(ctx, params, results, c),
        Builtin::SubtaskDrop => subtask_drop(ctx, params, results),
        Builtin::SubtaskCancel(a) => subtask_cancel(ctx, params, results, a),
        Builtin::CopyNew { kind, elem } => copy_new(ctx, params, results, kind, elem),
        Builtin::Copy {
            kind,
            readable,
            elem,
            opts,
        } => copy(ctx, params, results, kind, readable, elem, opts),
        Builtin::CancelCopy {
            kind,
            readable,
            elem,
            is_async,
        } => cancel_copy(ctx, params, results, kind, readable, elem, is_async),
        Builtin::DropEnd {
            kind,
            readable,
            elem,
        } => drop_end(ctx, params, results, kind, readable, elem),
        Builtin::ErrorContextNew(opts) => error_context_new(ctx, params, results, opts),
        Builtin::ErrorContextDebugMessage(opts) => {
            error_context_debug_message(ctx, params, results, opts)
        }
        Builtin::ErrorContextDrop => error_context_drop(ctx, params, results),
        Builtin::WaitableSetNew => waitable_set_new(ctx, params, results),
        Builtin::WaitableSetWait {
            cancellable,
            memory,
        } => waitable_set_wait(ctx, params, results, cancellable, memory),
        Builtin::WaitableSetPoll {
            cancellable,
            memory,
        } => waitable_set_poll(ctx, params, results, cancellable, memory),
        Builtin::WaitableSetDrop => waitable_set_drop(ctx, params, results),
        Builtin::WaitableJoin => waitable_join(ctx, params, results),
        Builtin::ThreadIndex => thread_index(ctx, params, results),
        Builtin::ThreadNewIndirect { table, ft } => {
            thread_new_indirect(ctx, params, results, table, ft)
        }
        Builtin::ThreadResumeLater => thread_resume_later(ctx, params, results),
        Builtin::ThreadSuspend(c) => thread_suspend(ctx, params, results, c),
        Builtin::ThreadSwitch(k, c) => thread_switch(ctx, params, results, *k, c),
        Builtin::Unsupported(name) => Err(Trap::new(format!("not yet supported: canon {name}"))),
    }
}

/// `canon task.return` (`canon_task_return` in `definitions.py`).
fn task_return(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
    result: &Option<Ty>,
    opts: &Opts,
) -> R {
    let rt = ctx.data_mut();
    // The core leaves the type and options check to the embedder.
    let expected = rt
        .core
        .current_thread()
        .and_then(|t| rt.core.thread_task(t))
        .and_then(|k| rt.core.task_func(k))
        .and_then(|f| rt.lifted.get(f.func as usize))
        .cloned();
    if let Some(l) = expected {
        let needs_memory = result.as_ref().is_some_and(lift_reads_memory);
        if l.ty.result != *result || !lift_options_equal(ctx, opts, &l.opts, needs_memory) {
            ctx.data_mut().core.wasm_trapped();
            return Err(Trap::new(
                "invalid `task.return` signature and/or options for current task",
            ));
        }
    }
    let rt = ctx.data_mut();
    let delivery = running(&mut rt.core)?.task_return().map_err(core_trap)?;
    let inst = current_inst(rt)?;
    let tys: Vec<Ty> = result.iter().cloned().collect();
    let flat: Vec<Flat> = params.iter().map(Flat::from_wasmi).collect();
    let vals = {
        let mut cx = Cx::new(ctx, opts, inst, false);
        let mut it = FlatIter::new(&flat);
        lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut it, &tys)
    };
    let vals = match vals {
        Ok(v) => v,
        Err(t) => {
            ctx.data_mut().core.wasm_trapped();
            return Err(t);
        }
    };
    crate::canon::deliver(ctx, delivery, vals)?;
    Ok(None)
}

/// `canon task.cancel` (`canon_task_cancel` in `definitions.py`).
fn task_cancel(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?.task_cancel().map_err(core_trap)?;
    Ok(None)
}

/// `canon context.get` (`canon_context_get` in `definitions.py`).
fn context_get(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    i: &u32,
) -> R {
    let rt = ctx.data_mut();
    let v = running(&mut rt.core)?.context_get(*i).map_err(core_trap)?;
    set_i32(results, v as u32);
    Ok(None)
}

/// `canon context.set` (`canon_context_set` in `definitions.py`).
fn context_set(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
    i: &u32,
) -> R {
    let rt = ctx.data_mut();
    let v = arg(params, 0)?;
    running(&mut rt.core)?
        .context_set(*i, u64::from(v))
        .map_err(core_trap)?;
    Ok(None)
}

/// `canon backpressure.inc` (`canon_backpressure_inc` in `definitions.py`).
fn backpressure_inc(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .backpressure_inc()
        .map(|_| None)
        .map_err(core_trap)
}

/// `canon backpressure.dec` (`canon_backpressure_dec` in `definitions.py`).
fn backpressure_dec(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .backpressure_dec()
        .map(|_| None)
        .map_err(core_trap)
}

/// `canon thread.yield` (`canon_thread_yield` in `definitions.py`).
fn thread_yield(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    c: &bool,
) -> R {
    let rt = ctx.data_mut();
    let s = running(&mut rt.core)?.thread_yield(*c).map_err(core_trap)?;
    Ok(step_i32(s, results, true))
}

/// `canon subtask.drop` (`canon_subtask_drop` in `definitions.py`).
fn subtask_drop(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .subtask_drop(arg(params, 0)?)
        .map_err(core_trap)?;
    Ok(None)
}

/// `canon subtask.cancel` (`canon_subtask_cancel` in `definitions.py`).
fn subtask_cancel(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    a: &bool,
) -> R {
    let rt = ctx.data_mut();
    let s = running(&mut rt.core)?
        .subtask_cancel(*a, arg(params, 0)?)
        .map_err(core_trap)?;
    Ok(step_i32(s, results, true))
}

/// `canon stream.new / future.new` (`canon_stream_new`, `canon_future_new` in `definitions.py`).
fn copy_new(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    kind: &EndKind,
    elem: &Elem,
) -> R {
    let rt = ctx.data_mut();
    let e = elem.core(rt);
    let r = running(&mut rt.core)?;
    let v = match kind {
        EndKind::Stream => r.stream_new(e),
        EndKind::Future => r.future_new(e),
    }
    .map_err(core_trap)?;
    if let Some(r) = results.first_mut() {
        *r = wasmi::Val::I64(v as i64);
    }
    Ok(None)
}

/// `canon stream.read / stream.write / future.read / future.write` (`canon_stream_read`, `canon_stream_write`, `canon_future_read`, `canon_future_write` in `definitions.py`).
fn copy(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    kind: &EndKind,
    readable: &bool,
    elem: &Elem,
    opts: &Opts,
) -> R {
    let rt = ctx.data_mut();
    let e = elem.core(rt);
    let i = arg(params, 0)?;
    let ptr = arg(params, 1)?;
    let len = if *kind == EndKind::Stream {
        arg(params, 2)?
    } else {
        1
    };
    let mem = opts.copy_opts_id.unwrap_or(u32::MAX);
    let mem_size = opts.memory.map_or(0, |m| m.data(&*ctx).len() as u64);
    let buf = GuestBuf {
        mem,
        ptr,
        len,
        mem_size,
    };
    let r = running(&mut ctx.data_mut().core)?;
    let a = opts.is_async;
    let out = match (kind, readable) {
        (EndKind::Stream, true) => r.stream_read(e, a, i, buf),
        (EndKind::Stream, false) => r.stream_write(e, a, i, buf),
        (EndKind::Future, true) => r.future_read(e, a, i, buf),
        (EndKind::Future, false) => r.future_write(e, a, i, buf),
    }
    .map_err(core_trap)?;
    if ctx.data().trace {
        eprintln!("[canon-async-spec] copy {kind:?} readable={readable} -> {out:?}");
    }
    if let Some(t) = out.transfer {
        if let Err(trap) = transfer(ctx, &t) {
            ctx.data_mut().core.wasm_trapped();
            return Err(trap);
        }
    }
    Ok(step_i32(out.step, results, true))
}

/// `canon stream.cancel-read / stream.cancel-write / future.cancel-read / future.cancel-write` (`canon_stream_cancel_read`, `canon_stream_cancel_write`, `canon_future_cancel_read`, `canon_future_cancel_write` in `definitions.py`).
fn cancel_copy(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    kind: &EndKind,
    readable: &bool,
    elem: &Elem,
    is_async: &bool,
) -> R {
    let rt = ctx.data_mut();
    let e = elem.core(rt);
    let (i, a) = (arg(params, 0)?, *is_async);
    let r = running(&mut rt.core)?;
    let s = match (kind, readable) {
        (EndKind::Stream, true) => r.stream_cancel_read(e, a, i),
        (EndKind::Stream, false) => r.stream_cancel_write(e, a, i),
        (EndKind::Future, true) => r.future_cancel_read(e, a, i),
        (EndKind::Future, false) => r.future_cancel_write(e, a, i),
    }
    .map_err(core_trap)?;
    Ok(step_i32(s, results, true))
}

/// `canon stream.drop-readable / stream.drop-writable / future.drop-readable / future.drop-writable` (`canon_stream_drop_readable`, `canon_stream_drop_writable`, `canon_future_drop_readable`, `canon_future_drop_writable` in `definitions.py`).
fn drop_end(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
    kind: &EndKind,
    readable: &bool,
    elem: &Elem,
) -> R {
    let rt = ctx.data_mut();
    let e = elem.core(rt);
    let i = arg(params, 0)?;
    let r = running(&mut rt.core)?;
    match (kind, readable) {
        (EndKind::Stream, true) => r.stream_drop_readable(e, i),
        (EndKind::Stream, false) => r.stream_drop_writable(e, i),
        (EndKind::Future, true) => r.future_drop_readable(e, i),
        (EndKind::Future, false) => r.future_drop_writable(e, i),
    }
    .map_err(core_trap)?;
    Ok(None)
}

/// `canon error-context.new` (`canon_error_context_new` in `definitions.py`).
fn error_context_new(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    opts: &Opts,
) -> R {
    let rt = ctx.data_mut();
    let inst = current_inst(rt)?;
    let (ptr, units) = (arg(params, 0)?, arg(params, 1)?);
    let s = {
        let mut cx = Cx::new(ctx, opts, inst, false);
        crate::abi::lift::load_string_from_range(&mut cx, ptr, units)?
    };
    let rt = ctx.data_mut();
    let id = rt.error_messages.insert(s.text) as u32;
    let i = running(&mut rt.core)?
        .error_context_new(id)
        .map_err(core_trap)?;
    set_i32(results, i);
    Ok(None)
}

/// `canon error-context.debug-message` (`canon_error_context_debug_message` in `definitions.py`).
fn error_context_debug_message(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
    opts: &Opts,
) -> R {
    let rt = ctx.data_mut();
    let inst = current_inst(rt)?;
    let (i, ptr) = (arg(params, 0)?, arg(params, 1)?);
    let id = running(&mut rt.core)?
        .error_context_debug_message(i)
        .map_err(core_trap)?;
    let text = rt
        .error_messages
        .get(id as usize)
        .cloned()
        .unwrap_or_default();
    // (The core keeps the message id while any handle to the context is
    // alive; freed ids come back from `Store::take_freed_error_message`.)
    let mut cx = Cx::new(ctx, opts, inst, false);
    let s = Str::from_host(&text);
    let (p, n) = store_string_into_range(&mut cx, &s)?;
    store(
        &mut cx,
        &crate::abi::Val::Record(vec![crate::abi::Val::U32(p), crate::abi::Val::U32(n)]),
        &Ty::Tuple(vec![Ty::U32, Ty::U32].into()),
        u64::from(ptr),
    )?;
    Ok(None)
}

/// `canon error-context.drop` (`canon_error_context_drop` in `definitions.py`).
fn error_context_drop(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .error_context_drop(arg(params, 0)?)
        .map_err(core_trap)?;
    while let Some(id) = rt.core.take_freed_error_message() {
        rt.error_messages.try_remove(id as usize);
    }
    Ok(None)
}

/// `canon waitable-set.new` (`canon_waitable_set_new` in `definitions.py`).
fn waitable_set_new(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    let i = running(&mut rt.core)?
        .waitable_set_new()
        .map_err(core_trap)?;
    set_i32(results, i);
    Ok(None)
}

/// `canon waitable-set.wait` (`canon_waitable_set_wait` in `definitions.py`).
fn waitable_set_wait(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    cancellable: &bool,
    memory: &Option<wasmi::Memory>,
) -> R {
    let rt = ctx.data_mut();
    let (si, ptr) = (arg(params, 0)?, arg(params, 1)?);
    match running(&mut rt.core)?
        .waitable_set_wait(*cancellable, si, ptr)
        .map_err(core_trap)?
    {
        Step::Done(e) => {
            store_event(ctx, *memory, ptr, &e)?;
            set_i32(results, e.code as u32);
            Ok(None)
        }
        Step::Suspend => Ok(Some(Park::Event { memory: *memory })),
    }
}

/// `canon waitable-set.poll` (`canon_waitable_set_poll` in `definitions.py`).
fn waitable_set_poll(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    cancellable: &bool,
    memory: &Option<wasmi::Memory>,
) -> R {
    let rt = ctx.data_mut();
    let (si, ptr) = (arg(params, 0)?, arg(params, 1)?);
    let e = running(&mut rt.core)?
        .waitable_set_poll(*cancellable, si)
        .map_err(core_trap)?;
    store_event(ctx, *memory, ptr, &e)?;
    set_i32(results, e.code as u32);
    Ok(None)
}

/// `canon waitable-set.drop` (`canon_waitable_set_drop` in `definitions.py`).
fn waitable_set_drop(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .waitable_set_drop(arg(params, 0)?)
        .map_err(core_trap)?;
    Ok(None)
}

/// `canon waitable.join` (`canon_waitable_join` in `definitions.py`).
fn waitable_join(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .waitable_join(arg(params, 0)?, arg(params, 1)?)
        .map_err(core_trap)?;
    Ok(None)
}

/// `canon thread.index` (`canon_thread_index` in `definitions.py`).
fn thread_index(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    let i = running(&mut rt.core)?.thread_index().map_err(core_trap)?;
    set_i32(results, i);
    Ok(None)
}

/// `canon thread.new-indirect` (`canon_thread_new_indirect` in `definitions.py`).
fn thread_new_indirect(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    table: &wasmi::Table,
    ft: &wasmi::FuncType,
) -> R {
    let (fi, c) = (arg(params, 0)?, arg(params, 1)?);
    let f = match table.get(&*ctx, u64::from(fi)) {
        Some(wasmi::Ref::Func(f)) => f.val().copied(),
        _ => None,
    };
    let ok = f.filter(|f| f.ty(&*ctx) == *ft);
    let rt = ctx.data_mut();
    match ok {
        None => Err(core_trap(
            running(&mut rt.core)?.thread_new_indirect_invalid(),
        )),
        Some(f) => {
            // Kept until the thread starts (`Action::StartThread`).
            let id = rt.thread_funcs.insert(f) as u32;
            let i = running(&mut rt.core)?
                .thread_new_indirect(id, c)
                .map_err(core_trap)?;
            set_i32(results, i);
            Ok(None)
        }
    }
}

/// `canon thread.resume-later` (`canon_thread_resume_later` in `definitions.py`).
fn thread_resume_later(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    _results: &mut [wasmi::Val],
) -> R {
    let rt = ctx.data_mut();
    running(&mut rt.core)?
        .thread_resume_later(arg(params, 0)?)
        .map_err(core_trap)?;
    Ok(None)
}

/// `canon thread.suspend` (`canon_thread_suspend` in `definitions.py`).
fn thread_suspend(
    ctx: &mut StoreContextMut<'_, Rt>,
    _params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    c: &bool,
) -> R {
    let rt = ctx.data_mut();
    let s = running(&mut rt.core)?
        .thread_suspend(*c)
        .map_err(core_trap)?;
    Ok(step_i32(s, results, true))
}

/// `canon thread.suspend-then-resume`, `thread.yield-then-resume`,
/// `thread.suspend-then-promote` and `thread.yield-then-promote`
/// (`canon_thread_suspend_then_resume`, `canon_thread_yield_then_resume`,
/// `canon_thread_suspend_then_promote`, `canon_thread_yield_then_promote`
/// in `definitions.py`): one switch to thread `i`, as the core has it.
fn thread_switch(
    ctx: &mut StoreContextMut<'_, Rt>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
    kind: ThreadSwitch,
    c: &bool,
) -> R {
    let rt = ctx.data_mut();
    let s = running(&mut rt.core)?
        .thread_switch(kind, *c, arg(params, 0)?)
        .map_err(core_trap)?;
    Ok(step_i32(s, results, true))
}

/// `LiftOptions.equal(opts, task.opts)` of `canon_task_return`, for the
/// options `lhs` of `task.return` and `rhs` of the task's lift: the same
/// string encoding and the same memory instance (or no memory on both
/// sides). As the reference suite and componentize-py's output need it
/// (`spec-tests/DIFFERENCES.md`, section 7), a `task.return` without a
/// `memory` also matches a lift that has one when lifting the result never
/// reads memory (`needs_memory` false: no result, or one of scalars).
fn lift_options_equal(
    ctx: &StoreContextMut<'_, Rt>,
    lhs: &Opts,
    rhs: &Opts,
    needs_memory: bool,
) -> bool {
    lhs.encoding.unwrap_or(StrEnc::Utf8) == rhs.encoding.unwrap_or(StrEnc::Utf8)
        && match (lhs.memory, rhs.memory) {
            (None, None) => true,
            (Some(a), Some(b)) => same_memory(ctx, a, b),
            (None, Some(_)) => !needs_memory,
            (Some(_), None) => false,
        }
}

/// Whether lifting a `task.return` result of type `t` reads memory: it
/// holds a string or a list, or it flattens to more than
/// `MAX_FLAT_PARAMS` values (passed by pointer).
fn lift_reads_memory(t: &Ty) -> bool {
    fn holds_buffer(t: &Ty) -> bool {
        match t {
            Ty::String | Ty::List(_) => true,
            Ty::FixedList(e, _) | Ty::Option(e) => holds_buffer(e),
            Ty::Record(fs) => fs.iter().any(|(_, t)| holds_buffer(t)),
            Ty::Tuple(ts) => ts.iter().any(holds_buffer),
            Ty::Variant(cs) => cs.iter().any(|(_, t)| t.as_ref().is_some_and(holds_buffer)),
            Ty::Result(a, b) => [a, b]
                .iter()
                .any(|t| t.as_ref().is_some_and(|t| holds_buffer(t))),
            _ => false,
        }
    }
    holds_buffer(t)
        || crate::abi::types::flatten_types(std::slice::from_ref(t)).len() > MAX_FLAT_PARAMS
}

/// Whether two memory handles name the same memory instance (`is`).
/// wasmi's handles have no `PartialEq`: two live memories with bytes never
/// share a data pointer; for empty ones the handles' `Debug` text, which
/// shows the store and the memory's key in it, tells them apart.
fn same_memory(ctx: &StoreContextMut<'_, Rt>, a: wasmi::Memory, b: wasmi::Memory) -> bool {
    if a.data_ptr(ctx) != b.data_ptr(ctx) {
        return false;
    }
    a.data_size(ctx) != 0 || format!("{a:?}") == format!("{b:?}")
}

/// The instance of the running thread.
pub fn current_inst(rt: &Rt) -> Result<InstId, Trap> {
    rt.core
        .current_thread()
        .and_then(|t| rt.core.thread_instance(t))
        .ok_or_else(|| Trap::new("internal: no running thread"))
}

/// Moves elements of a completed stream or future rendezvous: `dst.write(
/// src.read(n))` of `SharedStreamImpl` / `SharedFutureImpl`, where
/// `ReadableBufferGuestImpl.read` loads with the writer's options and
/// `WritableBufferGuestImpl.write` stores with the reader's (its memory,
/// and the `realloc` and string encoding of `store_list_into_valid_range`).
/// Each side's options are found by the id its buffer carries as memory id.
/// The smallest plain-data copy between two memories made in one pass
/// through a helper instance rather than twice through the scratch buffer
/// (below it, the helper's call costs more than the second copy).
const ONE_PASS_MIN: usize = 8 << 10;

fn transfer(ctx: &mut StoreContextMut<'_, Rt>, t: &Transfer) -> Result<(), Trap> {
    if matches!(t.src, TransferEnd::Host { .. }) || matches!(t.dst, TransferEnd::Host { .. }) {
        return crate::host::host_transfer(ctx, t);
    }
    let rt = ctx.data();
    let side = |e: &TransferEnd| match *e {
        TransferEnd::Guest { inst, mem, ptr } => {
            let opts = rt.copy_opts.get(mem as usize).cloned().unwrap_or_default();
            Ok((inst, opts, ptr))
        }
        TransferEnd::Host { .. } => Err(Trap::new("not yet supported: host stream ends")),
    };
    let (src_inst, src_opts, src_ptr) = side(&t.src)?;
    let (dst_inst, dst_opts, dst_ptr) = side(&t.dst)?;
    if t.count == 0 {
        return Ok(());
    }
    match t.elem.class {
        ElemClass::None => Ok(()),
        ElemClass::Number | ElemClass::Plain => {
            let (Some(sm), Some(dm)) = (src_opts.memory, dst_opts.memory) else {
                return Err(Trap::new("internal: copy without memory"));
            };
            let oob = || Trap::new("pointer out of bounds of memory");
            let n = t.count as usize * t.elem.size as usize;
            let src = src_ptr as usize..(src_ptr as usize).checked_add(n).ok_or_else(oob)?;
            let dst = dst_ptr as usize..(dst_ptr as usize).checked_add(n).ok_or_else(oob)?;
            if same_memory(ctx, sm, dm) {
                // One memory (a stream between two threads of an instance,
                // or instances sharing a memory): one `copy_within`.
                let mem = sm.data_mut(&mut *ctx);
                if src.end > mem.len() || dst.end > mem.len() {
                    return Err(oob());
                }
                mem.copy_within(src, dst.start);
                return Ok(());
            }
            if src.end > sm.data_size(&*ctx) || dst.end > dm.data_size(&*ctx) {
                return Err(oob());
            }
            // Two memories of one store cannot be borrowed at once: a large
            // copy runs as one `memory.copy` between them in a helper
            // instance (crate::memcopy); a small one, or one the helper
            // cannot do, goes through the store's reused scratch buffer
            // (two copies, no allocation once warm).
            if n >= ONE_PASS_MIN {
                let key = match (t.src, t.dst) {
                    (TransferEnd::Guest { mem: s, .. }, TransferEnd::Guest { mem: d, .. }) => {
                        (s, d)
                    }
                    _ => return Err(Trap::new("internal: a host end in a guest copy")),
                };
                let mut copiers = std::mem::take(&mut ctx.data_mut().copiers);
                let done = copiers.copy(ctx, key, sm, src_ptr, dm, dst_ptr, n as u32);
                ctx.data_mut().copiers = copiers;
                if done {
                    return Ok(());
                }
            }
            let (mem, rt) = sm.data_and_store_mut(&mut *ctx);
            let mut scratch = std::mem::take(&mut rt.scratch);
            scratch.clear();
            scratch.extend_from_slice(mem.get(src).ok_or_else(oob)?);
            let r = dm
                .data_mut(&mut *ctx)
                .get_mut(dst)
                .ok_or_else(oob)
                .map(|d| d.copy_from_slice(&scratch));
            ctx.data_mut().scratch = scratch;
            r
        }
        ElemClass::Lifted => {
            let ety = (ctx
                .data()
                .elem_types
                .get(t.elem.id as usize)
                .cloned()
                .flatten())
            .ok_or_else(|| Trap::new("internal: unknown element type"))?;
            let size = u64::from(t.elem.size);
            // One budget for the whole copy, not one per element.
            let mut budget = crate::abi::lift::LiftBudget::new(ctx.data().max_lift_bytes);
            for k in 0..u64::from(t.count) {
                let v = {
                    let mut cx = Cx::new(ctx, &src_opts, src_inst, false);
                    cx.budget = budget;
                    let v = load(&mut cx, u64::from(src_ptr) + k * size, &ety)?;
                    budget = cx.budget;
                    v
                };
                let mut cx = Cx::new(ctx, &dst_opts, dst_inst, false);
                store(&mut cx, &v, &ety, u64::from(dst_ptr) + k * size)?;
            }
            Ok(())
        }
    }
}
