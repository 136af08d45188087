//! Canonical built-ins and calls: `canon lift`/`canon lower` for
//! synchronous calls, the resource built-ins, and the lift/lower context.

use std::sync::Arc;

use wasmi::{AsContextMut, Caller, StoreContextMut};

use crate::abi::lift::{lift_flat_values, AbiCx, FlatIter};
use crate::abi::lower::lower_flat_values;
use crate::abi::types::{
    flatten_functype, CoreTy, FuncTy, ResId, Ty, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS,
};
use crate::abi::val::{Flat, Handle, StrEnc, Val};
use crate::engine::{InstId, Rt, TaskRec};
use crate::error::{trap_from_wasmi, trap_if, trap_to_wasmi, Trap};
use crate::handles::{wrong_type, ResourceHandle};

/// Canonical options of a lift, lower or built-in.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub memory: Option<wasmi::Memory>,
    pub realloc: Option<wasmi::Func>,
    pub post_return: Option<wasmi::Func>,
    pub callback: Option<wasmi::Func>,
    pub encoding: Option<StrEnc>,
    pub is_async: bool,
}

/// A lifted function: a core function of an instance with a component type.
#[derive(Debug)]
pub struct Lifted {
    pub inst: InstId,
    pub core: wasmi::Func,
    pub ty: FuncTy,
    pub opts: Opts,
}

/// A component function value.
#[derive(Debug, Clone)]
pub enum CFunc {
    Lifted(Arc<Lifted>),
}

impl CFunc {
    /// The component type the callee was lifted with.
    pub fn ty(&self) -> &FuncTy {
        match self {
            CFunc::Lifted(l) => &l.ty,
        }
    }
}

/// The context of one lift or lower.
pub struct Cx<'a, 'c> {
    pub ctx: &'a mut StoreContextMut<'c, Rt>,
    pub opts: &'a Opts,
    pub inst: InstId,
    pub host_peer: bool,
    /// The callee's task, the scope of borrows lowered into it.
    pub task: Option<usize>,
    /// Own handles lent by `lift_borrow`, released when the call ends.
    pub lends: Vec<(InstId, u32)>,
}

impl<'a, 'c> Cx<'a, 'c> {
    /// A context for the given options and instance.
    pub fn new(
        ctx: &'a mut StoreContextMut<'c, Rt>,
        opts: &'a Opts,
        inst: InstId,
        host_peer: bool,
    ) -> Self {
        Cx {
            ctx,
            opts,
            inst,
            host_peer,
            task: None,
            lends: Vec::new(),
        }
    }

    fn rt(&mut self) -> &mut Rt {
        self.ctx.data_mut()
    }
}

fn bad_inst() -> Trap {
    Trap::new("internal: unknown component instance")
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
        set_may_leave(self.rt(), inst, false)?;
        let args = [old, old_size, align, new_size].map(|v| wasmi::Val::I32(v as i32));
        let mut out = [wasmi::Val::I32(0)];
        let r = f.call(&mut *self.ctx, &args, &mut out);
        set_may_leave(self.rt(), inst, true)?;
        r.map_err(trap_from_wasmi)?;
        match out[0] {
            wasmi::Val::I32(p) => Ok(p as u32),
            _ => Err(Trap::new("realloc returned a non-i32")),
        }
    }

    fn lift_own(&mut self, idx: u32, rt: ResId) -> Result<Handle, Trap> {
        let inst = self.inst;
        let table = &mut self.rt().insts.get_mut(inst).ok_or_else(bad_inst)?.handles;
        let h = table.get(idx)?;
        trap_if(h.rt != rt, &wrong_type(idx).0)?;
        trap_if(
            h.num_lends != 0,
            "cannot remove owned resource while borrowed",
        )?;
        trap_if(
            !h.own,
            &format!("handle index {idx} is not an owned handle"),
        )?;
        let h = table.remove(idx)?;
        Ok(Handle { rep: h.rep, rt })
    }

    fn lift_borrow(&mut self, idx: u32, rt: ResId) -> Result<Handle, Trap> {
        let inst = self.inst;
        let table = &mut self.rt().insts.get_mut(inst).ok_or_else(bad_inst)?.handles;
        let h = table.get_mut(idx)?;
        trap_if(h.rt != rt, &wrong_type(idx).0)?;
        let rep = h.rep;
        if h.own {
            h.num_lends += 1;
            self.lends.push((inst, idx));
        }
        Ok(Handle { rep, rt })
    }

    fn lower_own(&mut self, h: Handle) -> Result<u32, Trap> {
        let inst = self.inst;
        self.rt()
            .insts
            .get_mut(inst)
            .ok_or_else(bad_inst)?
            .handles
            .add(ResourceHandle {
                rt: h.rt,
                rep: h.rep,
                own: true,
                borrow_scope: None,
                num_lends: 0,
            })
    }

    fn lower_borrow(&mut self, h: Handle) -> Result<u32, Trap> {
        let inst = self.inst;
        let task = self.task;
        let rt = self.rt();
        let impl_inst = rt.resources.get(h.rt).map(|r| r.impl_inst);
        if impl_inst == Some(inst) {
            return Ok(h.rep);
        }
        if let Some(t) = task.and_then(|t| rt.tasks.get_mut(t)) {
            t.num_borrows += 1;
        }
        rt.insts
            .get_mut(inst)
            .ok_or_else(bad_inst)?
            .handles
            .add(ResourceHandle {
                rt: h.rt,
                rep: h.rep,
                own: false,
                borrow_scope: task,
                num_lends: 0,
            })
    }

    fn lift_async_handle(&mut self, _idx: u32, t: &Ty) -> Result<Val, Trap> {
        Err(Trap::new(format!(
            "not yet supported: lifting {t:?} (needs the async core)"
        )))
    }

    fn lower_async_handle(&mut self, _v: &Val, t: &Ty) -> Result<u32, Trap> {
        Err(Trap::new(format!(
            "not yet supported: lowering {t:?} (needs the async core)"
        )))
    }
}

fn set_may_leave(rt: &mut Rt, inst: InstId, v: bool) -> Result<(), Trap> {
    rt.insts.get_mut(inst).ok_or_else(bad_inst)?.may_leave = v;
    Ok(())
}

fn check_may_leave(rt: &Rt, inst: InstId) -> Result<(), Trap> {
    let s = rt.insts.get(inst).ok_or_else(bad_inst)?;
    trap_if(!s.may_leave, "cannot leave component instance")
}

fn release_lends(rt: &mut Rt, lends: &[(InstId, u32)]) {
    for (inst, idx) in lends {
        if let Some(h) = rt
            .insts
            .get_mut(*inst)
            .and_then(|s| s.handles.get_mut(*idx).ok())
        {
            h.num_lends = h.num_lends.saturating_sub(1);
        }
    }
}

/// Calls a component function synchronously with lifted arguments and
/// returns its lifted results. `host_peer` says the caller is the host.
pub fn call_func(
    ctx: &mut StoreContextMut<'_, Rt>,
    f: &CFunc,
    args: Vec<Val>,
    host_peer: bool,
) -> Result<Vec<Val>, Trap> {
    match f {
        CFunc::Lifted(l) => call_lifted(ctx, l, args, host_peer),
    }
}

fn call_lifted(
    ctx: &mut StoreContextMut<'_, Rt>,
    l: &Lifted,
    args: Vec<Val>,
    host_peer: bool,
) -> Result<Vec<Val>, Trap> {
    if l.opts.is_async {
        return Err(Trap::new(
            "not yet supported: async-lifted functions (needs the async core)",
        ));
    }
    {
        let rt = ctx.data_mut();
        let s = rt.insts.get(l.inst).ok_or_else(bad_inst)?;
        trap_if(s.poisoned, "cannot enter component instance")?;
        rt.tasks.push(TaskRec {
            inst: l.inst,
            num_borrows: 0,
        });
    }
    let task = ctx.data().tasks.len() - 1;
    let r = call_lifted_in_task(ctx, l, args, host_peer, task);
    let rt = ctx.data_mut();
    rt.tasks.truncate(task);
    if r.is_err() {
        if let Some(s) = rt.insts.get_mut(l.inst) {
            s.poisoned = true;
        }
    }
    r
}

fn call_lifted_in_task(
    ctx: &mut StoreContextMut<'_, Rt>,
    l: &Lifted,
    args: Vec<Val>,
    host_peer: bool,
    task: usize,
) -> Result<Vec<Val>, Trap> {
    let param_tys = l.ty.param_types();
    let result_tys = l.ty.result_types();
    let flat_args = {
        let mut cx = Cx::new(ctx, &l.opts, l.inst, host_peer);
        cx.task = Some(task);
        lower_flat_values(&mut cx, MAX_FLAT_PARAMS, &args, &param_tys, None)?
    };
    let sig = flatten_functype(&l.ty, false, false, true);
    let wargs: Vec<wasmi::Val> = flat_args.iter().map(|f| f.to_wasmi()).collect();
    let mut wres: Vec<wasmi::Val> = sig
        .results
        .iter()
        .map(|t| Flat::zero(*t).to_wasmi())
        .collect();
    l.core
        .call(&mut *ctx, &wargs, &mut wres)
        .map_err(trap_from_wasmi)?;
    let flat_res: Vec<Flat> = wres.iter().map(Flat::from_wasmi).collect();
    let results = {
        let mut cx = Cx::new(ctx, &l.opts, l.inst, host_peer);
        let mut it = FlatIter::new(&flat_res);
        lift_flat_values(&mut cx, MAX_FLAT_RESULTS, &mut it, &result_tys)?
    };
    let borrows = ctx
        .data()
        .tasks
        .get(task)
        .map(|t| t.num_borrows)
        .unwrap_or(0);
    trap_if(
        borrows > 0,
        "borrow handles still remain at the end of the call",
    )?;
    if let Some(pr) = l.opts.post_return {
        set_may_leave(ctx.data_mut(), l.inst, false)?;
        let r = pr.call(&mut *ctx, &wres, &mut []);
        set_may_leave(ctx.data_mut(), l.inst, true)?;
        r.map_err(trap_from_wasmi)?;
    }
    Ok(results)
}

/// What a `canon lower` host function needs.
pub struct LowerDef {
    pub callee: CFunc,
    pub inst: InstId,
    pub ty: FuncTy,
    pub opts: Opts,
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

/// The body of a synchronously lowered function.
pub fn lowered_call(
    mut caller: Caller<'_, Rt>,
    def: &LowerDef,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let mut ctx = caller.as_context_mut();
    lowered_call_inner(&mut ctx, def, params, results).map_err(trap_to_wasmi)
}

fn lowered_call_inner(
    ctx: &mut StoreContextMut<'_, Rt>,
    def: &LowerDef,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), Trap> {
    if def.opts.is_async {
        return Err(Trap::new(
            "not yet supported: async-lowered calls (needs the async core)",
        ));
    }
    check_may_leave(ctx.data(), def.inst)?;
    let flat: Vec<Flat> = params.iter().map(Flat::from_wasmi).collect();
    let mut it = FlatIter::new(&flat);
    let (args, lends) = {
        let mut cx = Cx::new(ctx, &def.opts, def.inst, false);
        let args = lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut it, &def.ty.param_types())?;
        (args, std::mem::take(&mut cx.lends))
    };
    let r = call_func(ctx, &def.callee, args, false);
    release_lends(ctx.data_mut(), &lends);
    let vals = r?;
    let mut cx = Cx::new(ctx, &def.opts, def.inst, false);
    let out = lower_flat_values(
        &mut cx,
        MAX_FLAT_RESULTS,
        &vals,
        &def.ty.result_types(),
        Some(&mut it),
    )?;
    trap_if(out.len() != results.len(), "internal: result arity")?;
    for (slot, v) in results.iter_mut().zip(out) {
        *slot = v.to_wasmi();
    }
    Ok(())
}

fn arg_i32(params: &[wasmi::Val], i: usize) -> Result<u32, Trap> {
    match params.get(i) {
        Some(wasmi::Val::I32(v)) => Ok(*v as u32),
        _ => Err(Trap::new("internal: expected an i32 argument")),
    }
}

/// `resource.new`.
pub fn resource_new(
    ctx: &mut StoreContextMut<'_, Rt>,
    inst: InstId,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<u32, Trap> {
    let rep = arg_i32(params, 0)?;
    let s = ctx.data_mut();
    check_may_leave(s, inst)?;
    s.insts
        .get_mut(inst)
        .ok_or_else(bad_inst)?
        .handles
        .add(ResourceHandle {
            rt,
            rep,
            own: true,
            borrow_scope: None,
            num_lends: 0,
        })
}

/// `resource.rep`.
pub fn resource_rep(
    ctx: &mut StoreContextMut<'_, Rt>,
    inst: InstId,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<u32, Trap> {
    let i = arg_i32(params, 0)?;
    let h = ctx
        .data()
        .insts
        .get(inst)
        .ok_or_else(bad_inst)?
        .handles
        .get(i)?;
    trap_if(h.rt != rt, &wrong_type(i).0)?;
    Ok(h.rep)
}

/// `resource.drop`.
pub fn resource_drop(
    ctx: &mut StoreContextMut<'_, Rt>,
    inst: InstId,
    rt: ResId,
    params: &[wasmi::Val],
) -> Result<(), Trap> {
    let i = arg_i32(params, 0)?;
    let s = ctx.data_mut();
    check_may_leave(s, inst)?;
    let table = &mut s.insts.get_mut(inst).ok_or_else(bad_inst)?.handles;
    let h = table.get(i)?;
    trap_if(h.rt != rt, &wrong_type(i).0)?;
    trap_if(
        h.num_lends != 0,
        "cannot remove owned resource while borrowed",
    )?;
    let h = table.remove(i)?;
    if !h.own {
        if let Some(t) = h.borrow_scope.and_then(|t| s.tasks.get_mut(t)) {
            t.num_borrows = t.num_borrows.saturating_sub(1);
        }
        return Ok(());
    }
    let res = s
        .resources
        .get(rt)
        .cloned()
        .ok_or_else(|| Trap::new("internal: unknown resource"))?;
    let Some(dtor) = res.dtor else {
        return Ok(());
    };
    if res.impl_inst != inst {
        let callee = s.insts.get(res.impl_inst).ok_or_else(bad_inst)?;
        trap_if(callee.poisoned, "cannot enter component instance")?;
    }
    dtor.call(&mut *ctx, &[wasmi::Val::I32(h.rep as i32)], &mut [])
        .map_err(trap_from_wasmi)
}
