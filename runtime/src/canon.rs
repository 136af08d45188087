//! `canon lift`/`canon lower` and the lift/lower context, wired to the
//! `canon-async` core: handles go through the core's per-instance table,
//! and a lowered call always suspends the caller (the callee runs as a
//! thread of its own, started by the core; see [`crate::driver`]).

use std::sync::Arc;

use canon_async::{ElemClass, ElemType, LowerCallee, ResultDelivery, SubtaskId, TaskId};
use wasmi::{AsContextMut, Caller, StoreContextMut};

use crate::abi::lift::{lift_flat_values, AbiCx, FlatIter, LiftBudget};
use crate::abi::lower::{lower_flat_values, lower_spilled};
use crate::abi::types::{
    alignment, elem_size, flat_len, flatten_functype, CoreTy, ResId, Ty, MAX_FLAT_ASYNC_PARAMS,
    MAX_FLAT_PARAMS, MAX_FLAT_RESULTS,
};
use crate::abi::val::{Flat, Handle, StrEnc, Val};
use crate::error::{trap_from_wasmi, trap_to_wasmi, EmbedderFault, Trap};
use crate::state::{CFunc, CallRec, InstId, LowerDef, Opts, Park, Rt, Suspend};

/// Converts a core trap into a runtime trap.
pub fn core_trap(t: canon_async::Trap) -> Trap {
    t.into()
}

/// A misuse of the core by this runtime (its own bug, never the guest's):
/// the core changed nothing and poisoned nothing. It unwinds the call as
/// an internal error ([`EmbedderFault`] when
/// raised inside a built-in, which the driver does not count as a guest trap).
pub fn embedder_trap(e: canon_async::EmbedderError) -> Trap {
    Trap::new(EmbedderFault(e).to_string())
}

/// The trap of a core call that may trap or be misused ([`canon_async::Error`]).
pub fn core_error(e: canon_async::Error) -> Trap {
    match e {
        canon_async::Error::Trap(t) => core_trap(t),
        canon_async::Error::Embedder(e) => embedder_trap(e),
    }
}

/// The core's running thread, for one built-in. `builtins::call`
/// checked that one runs before the built-in's body, so an error here is
/// the runtime's own bug.
pub fn running(core: &mut canon_async::Store) -> Result<canon_async::Running<'_>, Trap> {
    core.running().map_err(embedder_trap)
}

/// Parks the running thread: records how to resume it and unwinds to the
/// driver. Inside a nested synchronous helper call this is a trap.
pub fn suspend(rt: &mut Rt, park: Park) -> wasmi::Error {
    if rt.nested > 0 {
        return trap_to_wasmi(Trap::new(
            "cannot block a synchronous task before returning",
        ));
    }
    rt.suspend = Some(park);
    wasmi::Error::host(Suspend)
}

/// Runs a synchronous helper call (realloc, post-return, a destructor)
/// nested in the current host function.
pub fn nested_call(
    ctx: &mut StoreContextMut<'_, Rt>,
    f: wasmi::Func,
    args: &[wasmi::Val],
    outs: &mut [wasmi::Val],
) -> Result<(), Trap> {
    ctx.data_mut().nested += 1;
    let r = f.call(&mut *ctx, args, outs);
    ctx.data_mut().nested -= 1;
    r.map_err(trap_from_wasmi)
}

/// The context of one lift or lower.
pub struct Cx<'a, 'c> {
    /// The store.
    pub ctx: &'a mut StoreContextMut<'c, Rt>,
    /// The canonical options of this lift or lower.
    pub opts: &'a Opts,
    /// The instance whose handle tables are used.
    pub inst: InstId,
    /// Whether the other side is the host (trap texts differ).
    pub host_peer: bool,
    /// The caller's subtask, the scope of borrows lifted from the caller.
    pub subtask: Option<SubtaskId>,
    /// The callee's task, the scope of borrows lowered into it.
    pub task: Option<TaskId>,
    /// What lifting in this context may still materialise (a fresh
    /// [`Rt::max_lift_bytes`] per context).
    pub budget: LiftBudget,
}

impl<'a, 'c> Cx<'a, 'c> {
    /// A context for the given options and instance.
    pub fn new(
        ctx: &'a mut StoreContextMut<'c, Rt>,
        opts: &'a Opts,
        inst: InstId,
        host_peer: bool,
    ) -> Self {
        let budget = LiftBudget::new(ctx.data().max_lift_bytes);
        Cx {
            ctx,
            opts,
            inst,
            host_peer,
            subtask: None,
            task: None,
            budget,
        }
    }

    fn rt(&mut self) -> &mut Rt {
        self.ctx.data_mut()
    }

    fn core_rt(&self, r: ResId) -> Result<canon_async::ResourceTypeId, Trap> {
        self.ctx
            .data()
            .resources
            .get(r)
            .map(|x| x.core)
            .ok_or_else(|| Trap::new("internal: unknown resource type"))
    }
}

impl AbiCx for Cx<'_, '_> {
    fn mem(&self) -> &[u8] {
        match self.opts.memory {
            Some(m) => m.data(&*self.ctx),
            None => &[],
        }
    }

    fn mem_mut(&mut self) -> &mut [u8] {
        match self.opts.memory {
            Some(m) => m.data_mut(&mut *self.ctx),
            None => &mut [],
        }
    }

    fn host_peer(&self) -> bool {
        self.host_peer
    }

    fn encoding(&self) -> StrEnc {
        self.opts.encoding.unwrap_or(StrEnc::Utf8)
    }

    fn realloc(&mut self, old: u32, old_size: u32, align: u32, new_size: u32) -> Result<u32, Trap> {
        let f = self
            .opts
            .realloc
            .ok_or_else(|| Trap::new("no `realloc` canonical option"))?;
        let inst = self.inst;
        self.rt().core.begin_realloc(inst).map_err(core_error)?;
        let args = [old, old_size, align, new_size].map(|v| wasmi::Val::I32(v as i32));
        let mut out = [wasmi::Val::I32(0)];
        let r = nested_call(self.ctx, f, &args, &mut out);
        if let Err(t) = r {
            self.rt().core.wasm_trapped();
            return Err(t);
        }
        self.rt().core.end_realloc().map_err(core_error)?;
        match out[0] {
            wasmi::Val::I32(p) => Ok(p as u32),
            _ => Err(Trap::new("realloc returned a non-i32")),
        }
    }

    fn lift_own(&mut self, idx: u32, rt: ResId) -> Result<Handle, Trap> {
        let core_rt = self.core_rt(rt)?;
        let inst = self.inst;
        let rep = self
            .rt()
            .core
            .lift_own(inst, core_rt, idx)
            .map_err(core_trap)?;
        Ok(Handle { rep, rt })
    }

    fn lift_borrow(&mut self, idx: u32, rt: ResId) -> Result<Handle, Trap> {
        let core_rt = self.core_rt(rt)?;
        let subtask = self
            .subtask
            .ok_or_else(|| Trap::new("not yet supported: borrows passed by the host"))?;
        let rep = self
            .rt()
            .core
            .lift_borrow(subtask, core_rt, idx)
            .map_err(core_trap)?;
        Ok(Handle { rep, rt })
    }

    fn lower_own(&mut self, h: Handle) -> Result<u32, Trap> {
        let core_rt = self.core_rt(h.rt)?;
        let inst = self.inst;
        self.rt()
            .core
            .lower_own(inst, core_rt, h.rep)
            .map_err(core_trap)
    }

    fn lower_borrow(&mut self, h: Handle) -> Result<u32, Trap> {
        let core_rt = self.core_rt(h.rt)?;
        let task = self
            .task
            .ok_or_else(|| Trap::new("not yet supported: borrows returned to the host"))?;
        self.rt()
            .core
            .lower_borrow(task, core_rt, h.rep)
            .map_err(core_trap)
    }

    fn lift_budget(&mut self) -> &mut LiftBudget {
        &mut self.budget
    }

    fn lift_async_handle(&mut self, idx: u32, t: &Ty) -> Result<Val, Trap> {
        let inst = self.inst;
        match t {
            Ty::Stream(e) | Ty::Future(e) => {
                let kind = if matches!(t, Ty::Stream(_)) {
                    canon_async::EndKind::Stream
                } else {
                    canon_async::EndKind::Future
                };
                let e = e.as_ref().map(|x| (**x).clone());
                let elem = crate::canon::elem_type(self.rt(), &e);
                let s = self
                    .rt()
                    .core
                    .lift_end(inst, kind, elem, idx)
                    .map_err(core_trap)?;
                Ok(if kind == canon_async::EndKind::Stream {
                    Val::Stream(s)
                } else {
                    Val::Future(s)
                })
            }
            _ => {
                let e = self
                    .rt()
                    .core
                    .lift_error_context(inst, idx)
                    .map_err(core_trap)?;
                Ok(Val::ErrorContext(e))
            }
        }
    }

    fn lower_async_handle(&mut self, v: &Val, _t: &Ty) -> Result<u32, Trap> {
        let inst = self.inst;
        match v {
            Val::Stream(s) | Val::Future(s) => {
                self.rt().core.lower_end(inst, *s).map_err(core_trap)
            }
            Val::ErrorContext(e) => self
                .rt()
                .core
                .lower_error_context(inst, *e)
                .map_err(core_trap),
            _ => Err(Trap::new("value does not match its component type")),
        }
    }
}

/// The core signature of a lowered function.
pub fn lower_sig(def: &LowerDef) -> wasmi::FuncType {
    let sig = flatten_functype(&def.ty, def.opts.is_async, false, false);
    wasmi::FuncType::new(
        sig.params.iter().map(|t| core_valtype(*t)),
        sig.results.iter().map(|t| core_valtype(*t)),
    )
}

/// Converts a flattened core type to a wasmi value type.
pub fn core_valtype(t: CoreTy) -> wasmi::ValType {
    match t {
        CoreTy::I32 => wasmi::ValType::I32,
        CoreTy::I64 => wasmi::ValType::I64,
        CoreTy::F32 => wasmi::ValType::F32,
        CoreTy::F64 => wasmi::ValType::F64,
    }
}

/// The body of a lowered function: starts the call in the core and
/// suspends the caller until the core resumes it.
pub fn lowered_call(
    mut caller: Caller<'_, Rt>,
    def: &Arc<LowerDef>,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let mut ctx = caller.as_context_mut();
    let rt = ctx.data_mut();
    let callee = match &def.callee {
        CFunc::Lifted(l) => LowerCallee::Guest(l.descriptor()),
        CFunc::Host(h) if h.ty.is_async => LowerCallee::AsyncHost,
        CFunc::Host(_) => LowerCallee::Host,
    };
    let running = rt
        .core
        .running()
        .map_err(|e| wasmi::Error::host(EmbedderFault(e)))?;
    let me = running.thread();
    let subtask = running
        .canon_lower(callee, def.opts.is_async)
        .map_err(|t| trap_to_wasmi(core_trap(t)))?;
    rt.calls.insert(
        subtask,
        CallRec {
            def: def.clone(),
            flat_args: params.iter().map(Flat::from_wasmi).collect(),
            results: None,
        },
    );
    if let (true, CFunc::Host(h), 0) = (def.opts.is_async, &def.callee, rt.nested) {
        let h = h.clone();
        let packed = async_host_call(&mut ctx, me, subtask, h)?;
        results[0] = wasmi::Val::I32(packed as i32);
        return Ok(());
    }
    let park = if def.opts.is_async {
        Park::I32 { has_result: true }
    } else {
        Park::SyncLower { subtask }
    };
    Err(suspend(rt, park))
}

/// An async lower of a host function, without parking the caller: the
/// core's next two actions are known (`canon_lower` emitted
/// [`Action::HostCall`](canon_async::Action::HostCall) for `subtask`, and
/// once the host function has run the caller's frame resumes it with the
/// packed `state | index << 4`), so the built-in carries them out itself,
/// nested, and returns the caller's value at once instead of unwinding the
/// wasmi call to be resumed with it. Host work the call made ready (the
/// event loop's `after_action`) runs at the driving loop's next action.
fn async_host_call(
    ctx: &mut StoreContextMut<'_, Rt>,
    caller: canon_async::ThreadId,
    subtask: SubtaskId,
    func: Arc<crate::state::HostFunc>,
) -> Result<u32, wasmi::Error> {
    use canon_async::{Action, ResumeValue};
    let next = |ctx: &mut StoreContextMut<'_, Rt>| {
        let a = ctx.data_mut().core.next_action();
        ctx.data().trace_action(&a);
        a
    };
    let unexpected = |what: &str, a: Action| {
        trap_to_wasmi(Trap::new(format!(
            "internal: expected {what} after an async host lower, the core gave {a:?}"
        )))
    };
    match next(ctx) {
        Action::HostCall { subtask: s } if s == subtask => {}
        a => return Err(unexpected("its HostCall", a)),
    }
    crate::host::run_host_call(ctx, subtask, func).map_err(trap_to_wasmi)?;
    match next(ctx) {
        Action::Resume {
            thread,
            value: ResumeValue::I32(v),
        } if thread == caller => Ok(v),
        Action::Trap(t) => Err(trap_to_wasmi(core_trap(t))),
        a => Err(unexpected("the caller's Resume", a)),
    }
}

/// Lifts a guest caller's arguments at the callee's start.
pub fn lift_call_args(
    ctx: &mut StoreContextMut<'_, Rt>,
    subtask: SubtaskId,
) -> Result<Vec<Val>, Trap> {
    // The flat arguments are taken out of the call's record while they are
    // lifted (lifting needs the store) and put back after (the out-pointer
    // of an async caller's results is among them).
    let (def, flat) = {
        let rec = ctx
            .data_mut()
            .calls
            .get_mut(&subtask)
            .ok_or_else(|| Trap::new("internal: unknown subtask"))?;
        if rec.def.param_types().is_empty() {
            // Nothing to lift (what lifting no values would return).
            return Ok(Vec::new());
        }
        (rec.def.clone(), std::mem::take(&mut rec.flat_args))
    };
    let max = if def.opts.is_async {
        MAX_FLAT_ASYNC_PARAMS
    } else {
        MAX_FLAT_PARAMS
    };
    let mut cx = Cx::new(ctx, &def.opts, def.inst, false);
    cx.subtask = Some(subtask);
    let mut it = FlatIter::new(&flat);
    let r = lift_flat_values(&mut cx, max, &mut it, def.param_types());
    if let Some(rec) = ctx.data_mut().calls.get_mut(&subtask) {
        rec.flat_args = flat;
    }
    r
}

/// Delivers a guest call's results: kept for a synchronous caller (lowered
/// when it resumes), stored through the out-pointer of an async caller.
pub fn deliver_to_guest(
    ctx: &mut StoreContextMut<'_, Rt>,
    subtask: SubtaskId,
    vals: Vec<Val>,
) -> Result<(), Trap> {
    let def = {
        let rec = ctx
            .data_mut()
            .calls
            .get_mut(&subtask)
            .ok_or_else(|| Trap::new("internal: unknown subtask"))?;
        if !rec.def.opts.is_async {
            rec.results = Some(vals);
            return Ok(());
        }
        rec.def.clone()
    };
    let rec = ctx.data_mut().calls.remove(&subtask);
    let flat = rec.map(|r| r.flat_args).unwrap_or_default();
    let k = def.flat_param_count();
    let mut it = FlatIter::new(flat.get(k..).unwrap_or(&[]));
    let mut cx = Cx::new(ctx, &def.opts, def.inst, false);
    let tys = def.ty.results();
    if tys.is_empty() {
        return Ok(());
    }
    // `lower_flat_values` with no flat results allowed: spilled, with the
    // layout computed once, unless the results flatten to nothing.
    if flat_len(tys) == 0 {
        return lower_flat_values(&mut cx, 0, &vals, tys, Some(&mut it)).map(|_| ());
    }
    lower_spilled(&mut cx, &vals, tys, def.results_layout, Some(&mut it)).map(|_| ())
}

/// Lowers a synchronous call's results into the resumed caller.
pub fn sync_lower_results(
    ctx: &mut StoreContextMut<'_, Rt>,
    subtask: SubtaskId,
) -> Result<Vec<wasmi::Val>, Trap> {
    let rec = ctx
        .data_mut()
        .calls
        .remove(&subtask)
        .ok_or_else(|| Trap::new("internal: unknown subtask"))?;
    let vals = rec
        .results
        .ok_or_else(|| Trap::new("internal: results were not delivered"))?;
    let def = rec.def;
    let k = def.flat_param_count();
    let mut it = FlatIter::new(rec.flat_args.get(k..).unwrap_or(&[]));
    let mut cx = Cx::new(ctx, &def.opts, def.inst, false);
    let out = lower_flat_values(
        &mut cx,
        MAX_FLAT_RESULTS,
        &vals,
        def.ty.results(),
        Some(&mut it),
    )?;
    Ok(out.into_iter().map(Flat::to_wasmi).collect())
}

fn arg_i32(params: &[wasmi::Val], i: usize) -> Result<u32, Trap> {
    match params.get(i) {
        Some(wasmi::Val::I32(v)) => Ok(*v as u32),
        _ => Err(Trap::new("internal: expected an i32 argument")),
    }
}

fn core_rt_of(rt: &Rt, r: ResId) -> Result<canon_async::ResourceTypeId, Trap> {
    rt.resources
        .get(r)
        .map(|x| x.core)
        .ok_or_else(|| Trap::new("internal: unknown resource type"))
}

/// `resource.new`.
pub fn resource_new(
    ctx: &mut StoreContextMut<'_, Rt>,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<u32, Trap> {
    let rep = arg_i32(params, 0)?;
    let s = ctx.data_mut();
    let c = core_rt_of(s, rt)?;
    running(&mut s.core)?
        .resource_new(c, rep)
        .map_err(core_trap)
}

/// `resource.rep`.
pub fn resource_rep(
    ctx: &mut StoreContextMut<'_, Rt>,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<u32, Trap> {
    let i = arg_i32(params, 0)?;
    let s = ctx.data_mut();
    let c = core_rt_of(s, rt)?;
    running(&mut s.core)?.resource_rep(c, i).map_err(core_trap)
}

/// `resource.drop`, running the destructor as a nested synchronous call.
pub fn resource_drop(
    ctx: &mut StoreContextMut<'_, Rt>,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<(), Trap> {
    let i = arg_i32(params, 0)?;
    let s = ctx.data_mut();
    let c = core_rt_of(s, rt)?;
    let Some(d) = running(&mut s.core)?
        .resource_drop(c, i)
        .map_err(core_trap)?
    else {
        return Ok(());
    };
    if let Some(host_dtor) = s.resources.get(rt).and_then(|r| r.host_dtor.clone()) {
        host_dtor(&mut crate::state::HostCx::new(ctx.as_context_mut()), d.rep);
        return Ok(());
    }
    let Some(dtor) = s.resources.get(rt).and_then(|r| r.dtor) else {
        return Ok(());
    };
    s.core.begin_sync_call(d.impl_inst).map_err(core_error)?;
    let r = nested_call(ctx, dtor, &[wasmi::Val::I32(d.rep as i32)], &mut []);
    if let Err(t) = r {
        ctx.data_mut().core.wasm_trapped();
        return Err(t);
    }
    ctx.data_mut().core.end_sync_call().map_err(core_error)
}

/// Delivers a task's results as the core says.
pub fn deliver(
    ctx: &mut StoreContextMut<'_, Rt>,
    d: ResultDelivery,
    vals: Vec<Val>,
) -> Result<(), Trap> {
    match d {
        ResultDelivery::Host(task) => {
            let rt = ctx.data_mut();
            if let Some(h) = rt.host_calls.get_mut(&task) {
                h.results = Some(vals);
                rt.delivered.push(task);
            }
            Ok(())
        }
        ResultDelivery::Guest(subtask) => deliver_to_guest(ctx, subtask, vals),
    }
}

/// Whether an element type is a number (same-instance copies allowed).
fn is_number(t: &Ty) -> bool {
    matches!(
        t,
        Ty::U8
            | Ty::S8
            | Ty::U16
            | Ty::S16
            | Ty::U32
            | Ty::S32
            | Ty::U64
            | Ty::S64
            | Ty::F32
            | Ty::F64
    )
}

/// Whether values of a type need lifting (handles, pointers, checks).
fn needs_lifting(t: &Ty) -> bool {
    match t {
        Ty::Bool | Ty::Char | Ty::String | Ty::List(_) | Ty::ErrorContext => true,
        Ty::Own(_) | Ty::Borrow(_) | Ty::Stream(_) | Ty::Future(_) => true,
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) | Ty::Flags(_) => true,
        Ty::FixedList(e, _) => needs_lifting(e),
        Ty::Record(fs) => fs.iter().any(|(_, t)| needs_lifting(t)),
        Ty::Tuple(ts) => ts.iter().any(needs_lifting),
        _ => false,
    }
}

/// The core's element type for a stream or future payload.
pub fn elem_type(rt: &mut Rt, t: &Option<Ty>) -> ElemType {
    let id = rt.elem_type_id(t);
    match t {
        None => ElemType {
            id,
            class: ElemClass::None,
            size: 0,
            align: 1,
        },
        Some(t) => ElemType {
            id,
            class: if is_number(t) {
                ElemClass::Number
            } else if needs_lifting(t) {
                ElemClass::Lifted
            } else {
                ElemClass::Plain
            },
            size: elem_size(t) as u32,
            align: alignment(t),
        },
    }
}
