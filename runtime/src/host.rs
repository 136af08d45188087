//! Host functions, host calls in flight, host timers and the host's ends of
//! streams and futures.
//!
//! A host function runs when the core answers `Action::HostCall` for a
//! guest's lowered call of it (the spec's `on_start` for a host callee).
//! A synchronous one returns its results at once. An asynchronous one gets
//! a [`HostCall`] and completes it, now or later, with
//! [`HostCx::complete`] (the spec's `on_resolve` with values) or, once the
//! guest cancelled it, [`HostCx::cancelled`] (`on_resolve(None)`).
//!
//! "Later" is a closure the host schedules: [`HostCx::after`] runs one when
//! the store's clock reaches a deadline; [`HostCx::read`] and
//! [`HostCx::write`] run one when a copy on a host end finishes. All of
//! them run on the store's event loop, with the store at hand.

use std::sync::Arc;
use std::time::Duration;

use canon_async::{ElemClass, EndKind, SharedId, SubtaskId, Transfer, TransferEnd};
use wasmi::AsContextMut;

use crate::abi::lift::load;
use crate::abi::lower::store;
use crate::abi::types::{elem_size, ResId, Ty};
use crate::abi::val::Val;
use crate::canon::{deliver_to_guest, Cx};
use crate::clock::ClockKind;
use crate::error::Trap;
pub use crate::state::{AsyncHostFn, HostDtor, HostError, SyncHostFn};
use crate::state::{
    CopyDone, HostCall, HostCx, HostFunc, HostFuncKind, HostOp, HostResource, HostState, HostTask,
    Pending, Remote, Rt, HOST_RESOURCE_BASE,
};

/// The store's resource type for the host's `r`, made on first use.
pub(crate) fn store_resource(rt: &mut Rt, r: &HostResource) -> ResId {
    if let Some(id) = rt.host.resources.get(&r.0.key) {
        return *id;
    }
    let inst = match rt.host.instance {
        Some(i) => i,
        None => {
            let i = rt.core.new_instance();
            rt.host.instance = Some(i);
            i
        }
    };
    let id = rt.new_resource(inst, None);
    rt.resources[id].host_dtor = r.0.dtor.clone();
    rt.host.resources.insert(r.0.key, id);
    id
}

/// `t` with the host's resource ids replaced by the store's.
pub(crate) fn map_host_resources(rt: &Rt, t: &Ty) -> Ty {
    let m = |r: ResId| {
        r.checked_sub(HOST_RESOURCE_BASE)
            .and_then(|k| rt.host.resources.get(&k).copied())
            .unwrap_or(r)
    };
    let a = |t: &Arc<Ty>| Arc::new(map_host_resources(rt, t));
    match t {
        Ty::Own(r) => Ty::Own(m(*r)),
        Ty::Borrow(r) => Ty::Borrow(m(*r)),
        Ty::List(e) => Ty::List(a(e)),
        Ty::FixedList(e, n) => Ty::FixedList(a(e), *n),
        Ty::Option(e) => Ty::Option(a(e)),
        Ty::Result(x, y) => Ty::Result(x.as_ref().map(a), y.as_ref().map(a)),
        Ty::Record(fs) => Ty::Record(
            fs.iter()
                .map(|(n, t)| (n.clone(), map_host_resources(rt, t)))
                .collect(),
        ),
        Ty::Tuple(ts) => Ty::Tuple(ts.iter().map(|t| map_host_resources(rt, t)).collect()),
        Ty::Variant(cs) => Ty::Variant(
            cs.iter()
                .map(|(n, t)| (n.clone(), t.as_ref().map(|t| map_host_resources(rt, t))))
                .collect(),
        ),
        Ty::Stream(e) => Ty::Stream(e.as_ref().map(a)),
        Ty::Future(e) => Ty::Future(e.as_ref().map(a)),
        t => t.clone(),
    }
}

impl<'a> HostCx<'a> {
    pub(crate) fn new(store: wasmi::StoreContextMut<'a, Rt>) -> Self {
        HostCx { store }
    }

    fn host(&mut self) -> &mut HostState {
        &mut self.store.data_mut().host
    }

    /// The store's clock: time since the store was created.
    pub fn now(&self) -> Duration {
        self.store.data().host.clock.now()
    }

    /// Runs `f` once the store's clock has advanced by `delay`.
    pub fn after(&mut self, delay: Duration, f: impl FnOnce(&mut HostCx<'_>) + Send + 'static) {
        let deadline = self.now() + delay;
        self.host().timers.push(deadline, Box::new(f));
    }

    /// A handle to send host work to this store's event loop from another
    /// thread or an I/O completion (see [`Remote`]).
    pub fn remote(&mut self) -> Remote {
        let h = self.host();
        Remote {
            tx: h.remote_tx.clone(),
            hold: Some(h.remote_holds.clone()),
        }
    }

    /// Runs `f` on the event loop's next turn.
    pub fn defer(&mut self, f: impl FnOnce(&mut HostCx<'_>) + Send + 'static) {
        self.host().ready.push_back(Box::new(f));
    }

    /// Runs `f` if the guest cancels `call` (`subtask.cancel`); `f` then
    /// answers with [`HostCx::cancelled`] or [`HostCx::complete`]. Without
    /// it, a cancel request is ignored and the call completes normally.
    pub fn on_cancel(&mut self, call: HostCall, f: impl FnOnce(&mut HostCx<'_>) + Send + 'static) {
        if let Some(p) = self.host().pending.get_mut(&call.subtask) {
            if p.generation == call.generation {
                p.on_cancel = Some(Box::new(f));
            }
        }
    }

    /// Completes `call` with its results (the spec's `on_resolve`): they are
    /// lowered into the caller now. `Ok(false)` when the call is no longer
    /// in flight (the guest trapped, or it was answered already); an `Err`
    /// when the results do not match the function's type (the guest's call
    /// traps with that message, too).
    pub fn complete(&mut self, call: HostCall, results: Vec<Val>) -> Result<bool, Trap> {
        let Some(p) = self.take_pending(call) else {
            return Ok(false);
        };
        let subtask = call.subtask;
        let core = &self.store.data().core;
        let caller_gone = core
            .subtask_caller(subtask)
            .is_none_or(|i| core.is_poisoned(i));
        if caller_gone {
            return Ok(false);
        }
        if let Err(t) = check_results(&p.func, &results) {
            self.store.data_mut().core.host_trapped(subtask);
            return Err(t);
        }
        let mut ctx = self.store.as_context_mut();
        if let Err(t) = deliver_to_guest(&mut ctx, subtask, results) {
            self.store.data_mut().core.host_trapped(subtask);
            return Err(t);
        }
        Ok(self.store.data_mut().core.host_return(subtask).is_ok())
    }

    /// Answers a cancelled `call` with "cancelled before it returned" (the
    /// spec's `on_resolve(None)`). `false` when the call is not in flight
    /// or the guest did not ask to cancel it.
    pub fn cancelled(&mut self, call: HostCall) -> bool {
        let live = self
            .store
            .data()
            .host
            .pending
            .get(&call.subtask)
            .is_some_and(|p| p.generation == call.generation);
        if !live
            || self
                .store
                .data_mut()
                .core
                .host_cancelled(call.subtask)
                .is_err()
        {
            return false;
        }
        self.take_pending(call);
        self.store.data_mut().calls.remove(&call.subtask);
        true
    }

    fn take_pending(&mut self, call: HostCall) -> Option<Pending> {
        let h = self.host();
        match h.pending.get(&call.subtask) {
            Some(p) if p.generation == call.generation => h.pending.remove(&call.subtask),
            _ => None,
        }
    }

    /// A new own handle of the host resource type `r` with representation
    /// `rep`, to pass to a guest (it calls `r`'s destructor with `rep` when
    /// it drops the handle).
    pub fn resource_new(&mut self, r: &HostResource, rep: u32) -> Val {
        let rt = store_resource(self.store.data_mut(), r);
        Val::Own(crate::abi::val::Handle { rep, rt })
    }

    /// The representation of an own or borrow handle of the host resource
    /// type `r` a guest passed (`None` for another value).
    pub fn resource_rep(&mut self, r: &HostResource, v: &Val) -> Option<u32> {
        let rt = store_resource(self.store.data_mut(), r);
        match v {
            Val::Own(h) | Val::Borrow(h) if h.rt == rt => Some(h.rep),
            _ => None,
        }
    }

    /// A new stream (`elem: None` for `stream` without payload) whose
    /// writable end the host holds. Pass the returned value (its readable
    /// end) to the guest exactly once, as an argument or a result.
    pub fn stream_new(&mut self, elem: Option<Ty>) -> Val {
        Val::Stream(self.end_new(EndKind::Stream, elem))
    }

    /// A new future whose writable end the host holds (see
    /// [`HostCx::stream_new`]).
    pub fn future_new(&mut self, elem: Option<Ty>) -> Val {
        Val::Future(self.end_new(EndKind::Future, elem))
    }

    fn end_new(&mut self, kind: EndKind, elem: Option<Ty>) -> SharedId {
        let rt = self.store.data_mut();
        // The host's resource types (`HostResource::own`) as the store's,
        // as in the host's function types: the guest's end has those.
        let elem = elem.map(|t| map_host_resources(rt, &t));
        let e = crate::canon::elem_type(rt, &elem);
        rt.core.host_copy_new(kind, e)
    }

    /// Reads up to `max` elements (1 for a future) from the readable end
    /// `end` the host received from a guest (a `Val::Stream`/`Val::Future`
    /// argument or result); `done` runs with the elements once the copy
    /// finishes. Elements a guest writer already offers move at once.
    pub fn read(
        &mut self,
        end: &Val,
        max: u32,
        done: impl FnOnce(&mut HostCx<'_>, Vec<Val>, CopyDone) + Send + 'static,
    ) -> Result<(), Trap> {
        let s = end_id(end)?;
        let rt = self.store.data_mut();
        if rt.core.host_end(s).is_err() {
            rt.core
                .host_adopt(s)
                .map_err(|e| Trap::new(format!("not a readable end the host holds: {e:?}")))?;
        }
        if rt.host.ops.contains_key(&s) {
            return Err(Trap::new("a copy on this host end is in progress"));
        }
        let c = rt
            .core
            .host_end(s)
            .and_then(|mut e| e.read(max))
            .map_err(|e| Trap::new(format!("host read: {e:?}")))?;
        rt.host.ops.insert(
            s,
            HostOp::Read {
                buf: Vec::new(),
                done: Box::new(done),
            },
        );
        self.after_copy(s, c)
    }

    /// Writes `vals` (one value for a future) to the guest reading from
    /// the writable end `end` the host created ([`HostCx::stream_new`]);
    /// `done` runs once the copy finishes (a stream reader may take fewer
    /// than offered: see [`CopyDone::progress`]).
    pub fn write(
        &mut self,
        end: &Val,
        vals: Vec<Val>,
        done: impl FnOnce(&mut HostCx<'_>, CopyDone) + Send + 'static,
    ) -> Result<(), Trap> {
        let s = end_id(end)?;
        let rt = self.store.data_mut();
        if rt.host.ops.contains_key(&s) {
            return Err(Trap::new("a copy on this host end is in progress"));
        }
        let n = u32::try_from(vals.len()).map_err(|_| Trap::new("too many values"))?;
        let c = rt
            .core
            .host_end(s)
            .and_then(|mut e| e.write(n))
            .map_err(|e| Trap::new(format!("not a writable end the host holds: {e:?}")))?;
        rt.host.ops.insert(
            s,
            HostOp::Write {
                vals,
                done: Box::new(done),
            },
        );
        self.after_copy(s, c)
    }

    /// Cancels the host's copy in progress on `end`; its `done` closure
    /// runs with the outcome (COMPLETED or DROPPED if that came first).
    pub fn cancel_copy(&mut self, end: &Val) -> Result<(), Trap> {
        let s = end_id(end)?;
        let d = self
            .store
            .data_mut()
            .core
            .host_end(s)
            .and_then(|mut e| e.cancel())
            .map_err(|e| Trap::new(format!("host cancel: {e:?}")))?;
        self.finish(s, d.into());
        Ok(())
    }

    /// Drops the host's end `end`: a guest copy waiting on it sees DROPPED.
    pub fn drop_end(&mut self, end: &Val) -> Result<(), Trap> {
        let s = end_id(end)?;
        self.store
            .data_mut()
            .core
            .host_end(s)
            .and_then(|e| e.drop())
            .map_err(|e| Trap::new(format!("host drop: {e:?}")))
    }

    fn after_copy(&mut self, s: SharedId, c: canon_async::HostCopy) -> Result<(), Trap> {
        if let Some(t) = c.transfer {
            let mut ctx = self.store.as_context_mut();
            host_transfer(&mut ctx, &t)?;
        }
        if let Some(d) = c.done {
            self.finish(s, d.into());
        }
        Ok(())
    }

    /// The host copy on `s` finished: queue its closure.
    fn finish(&mut self, s: SharedId, d: CopyDone) {
        let Some(op) = self.host().ops.remove(&s) else {
            return;
        };
        let task: HostTask = match op {
            HostOp::Read { buf, done } => Box::new(move |cx| done(cx, buf, d)),
            HostOp::Write { done, .. } => Box::new(move |cx| done(cx, d)),
        };
        self.host().ready.push_back(task);
    }
}

fn end_id(v: &Val) -> Result<SharedId, Trap> {
    match v {
        Val::Stream(s) | Val::Future(s) => Ok(*s),
        _ => Err(Trap::new("not a stream or future value")),
    }
}

/// Whether `v` is a value of type `t` (handles are checked by kind only).
pub fn val_has_type(v: &Val, t: &Ty) -> bool {
    use crate::abi::types::{field_types, variant_cases};
    match (v, t) {
        (Val::Bool(_), Ty::Bool)
        | (Val::S8(_), Ty::S8)
        | (Val::U8(_), Ty::U8)
        | (Val::S16(_), Ty::S16)
        | (Val::U16(_), Ty::U16)
        | (Val::S32(_), Ty::S32)
        | (Val::U32(_), Ty::U32)
        | (Val::S64(_), Ty::S64)
        | (Val::U64(_), Ty::U64)
        | (Val::F32(_), Ty::F32)
        | (Val::F64(_), Ty::F64)
        | (Val::Char(_), Ty::Char)
        | (Val::String(_), Ty::String)
        | (Val::Own(_), Ty::Own(_))
        | (Val::Borrow(_), Ty::Borrow(_))
        | (Val::Stream(_), Ty::Stream(_))
        | (Val::Future(_), Ty::Future(_))
        | (Val::ErrorContext(_), Ty::ErrorContext) => true,
        (Val::List(vs), Ty::List(e)) => vs.iter().all(|v| val_has_type(v, e)),
        (Val::List(vs), Ty::FixedList(e, n)) => {
            vs.len() == *n as usize && vs.iter().all(|v| val_has_type(v, e))
        }
        (Val::Record(vs), Ty::Record(_) | Ty::Tuple(_)) => {
            let ts = field_types(t);
            vs.len() == ts.len() && vs.iter().zip(&ts).all(|(v, t)| val_has_type(v, t))
        }
        (Val::Variant(i, p), _) => match variant_cases(t) {
            Some(cases) => match (cases.get(*i as usize), p) {
                (Some(None), None) => true,
                (Some(Some(ct)), Some(p)) => val_has_type(p, ct),
                _ => false,
            },
            None => false,
        },
        (Val::Flags(_), Ty::Flags(_)) => true,
        _ => false,
    }
}

fn check_results(f: &HostFunc, results: &[Val]) -> Result<(), Trap> {
    let tys = f.ty.results();
    let ok = results.len() == tys.len() && results.iter().zip(tys).all(|(v, t)| val_has_type(v, t));
    if ok {
        Ok(())
    } else {
        Err(Trap::new(format!(
            "host function `{}` returned {results:?} where its type has results {tys:?}",
            f.name
        )))
    }
}

/// Moves the elements of a rendezvous one of whose sides is a host end:
/// lifted from guest memory into the host's read buffer, or lowered from
/// the host's write buffer into guest memory. Marks the host end so the
/// event loop reports its copy's outcome.
pub(crate) fn host_transfer(
    ctx: &mut wasmi::StoreContextMut<'_, Rt>,
    t: &Transfer,
) -> Result<(), Trap> {
    let rt = ctx.data();
    let ety = rt.elem_types.get(t.elem.id as usize).cloned().flatten();
    // The guest side's own canonical options: its memory, `realloc` and
    // string encoding.
    let guest_opts = |rt: &Rt, e: &TransferEnd| match *e {
        TransferEnd::Guest { inst, mem, ptr } => Some((
            inst,
            rt.copy_opts.get(mem as usize).cloned().unwrap_or_default(),
            ptr,
        )),
        TransferEnd::Host { .. } => None,
    };
    match (t.src, t.dst) {
        (TransferEnd::Host { shared, offset }, dst) => {
            let Some((inst, opts, ptr)) = guest_opts(ctx.data(), &dst) else {
                return Err(Trap::new("internal: a copy between two host ends"));
            };
            let vals = match ctx.data().host.ops.get(&shared) {
                Some(HostOp::Write { vals, .. }) => {
                    let from = offset as usize;
                    vals.get(from..from + t.count as usize)
                        .ok_or_else(|| Trap::new("internal: host write buffer too short"))?
                        .to_vec()
                }
                _ => return Err(Trap::new("internal: no host write in progress")),
            };
            let (Some(ety), false) = (ety, t.elem.class == ElemClass::None) else {
                return Ok(());
            };
            let size = elem_size(&ety);
            let mut cx = Cx::new(ctx, &opts, inst, true);
            for (k, v) in vals.iter().enumerate() {
                store(&mut cx, v, &ety, u64::from(ptr) + k as u64 * size)?;
            }
            Ok(())
        }
        (src, TransferEnd::Host { shared, .. }) => {
            let Some((inst, opts, ptr)) = guest_opts(ctx.data(), &src) else {
                return Err(Trap::new("internal: a copy between two host ends"));
            };
            let mut got = Vec::with_capacity(t.count as usize);
            match ety {
                Some(ety) if t.elem.class != ElemClass::None => {
                    let size = elem_size(&ety);
                    let mut cx = Cx::new(ctx, &opts, inst, true);
                    for k in 0..u64::from(t.count) {
                        got.push(load(&mut cx, u64::from(ptr) + k * size, &ety)?);
                    }
                }
                _ => {}
            }
            match ctx.data_mut().host.ops.get_mut(&shared) {
                Some(HostOp::Read { buf, .. }) => buf.extend(got),
                _ => return Err(Trap::new("internal: no host read in progress")),
            }
            Ok(())
        }
        _ => Err(Trap::new(
            "internal: a guest-to-guest copy in host_transfer",
        )),
    }
}

/// Runs the host side of `Action::HostCall` for `subtask`: lifts the
/// arguments from the caller and runs the host function.
pub(crate) fn run_host_call(
    store: &mut impl AsContextMut<Data = Rt>,
    subtask: SubtaskId,
    func: Arc<HostFunc>,
) -> Result<(), Trap> {
    let mut store = store.as_context_mut();
    let args = {
        let mut ctx = store.as_context_mut();
        crate::canon::lift_call_args(&mut ctx, subtask)?
    };
    let h = &mut store.data_mut().host;
    h.generation += 1;
    let call = HostCall {
        subtask,
        generation: h.generation,
    };
    h.pending.insert(
        subtask,
        Pending {
            generation: call.generation,
            func: func.clone(),
            on_cancel: None,
        },
    );
    let mut cx = HostCx::new(store.as_context_mut());
    let name = &func.name;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &func.kind {
        HostFuncKind::Sync(f) => f(&mut cx, &args).map(Some),
        HostFuncKind::Async(f) => f(&mut cx, args, call).map(|()| None),
    }));
    match r {
        Err(p) => {
            cx.take_pending(call);
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Trap::new(format!("host function `{name}` panicked: {msg}")))
        }
        Ok(Err(e)) => {
            cx.take_pending(call);
            Err(Trap::new(format!("host function `{name}` failed: {e}")))
        }
        Ok(Ok(Some(results))) => cx.complete(call, results).map(|_| ()),
        Ok(Ok(None)) => Ok(()),
    }
}

/// Runs the host side of `Action::HostCancel`: the cancel closure the host
/// registered for the call, if any.
pub(crate) fn run_host_cancel(store: &mut wasmi::Store<Rt>, subtask: SubtaskId) {
    let f = store
        .data_mut()
        .host
        .pending
        .get_mut(&subtask)
        .and_then(|p| p.on_cancel.take());
    if let Some(f) = f {
        f(&mut HostCx::new(store.as_context_mut()));
    }
}

/// One turn of host work: reports the host ends whose copies finished,
/// runs the ready closures and the due timers. When nothing of that ran
/// and `wait` is set (the core is idle), waits for the next timer (a
/// virtual clock jumps to it) and runs it. Returns whether anything ran.
pub(crate) fn turn(store: &mut wasmi::Store<Rt>, wait: bool) -> Result<bool, Trap> {
    let mut ran = poll_host_ends(store);
    while let Ok(f) = store.data().host.remote_rx.try_recv() {
        f(&mut HostCx::new(store.as_context_mut()));
        ran = true;
    }
    loop {
        while let Some(f) = store.data_mut().host.ready.pop_front() {
            f(&mut HostCx::new(store.as_context_mut()));
            ran = true;
        }
        // The clock is read only when a timer is set (a real clock's read
        // is a system call, and this runs after every action).
        if store.data().host.timers.next_deadline().is_none() {
            break;
        }
        let now = store.data().host.clock.now();
        let Some(f) = store.data_mut().host.timers.pop_due(now) else {
            break;
        };
        f(&mut HostCx::new(store.as_context_mut()));
        ran = true;
    }
    if ran || !wait {
        return Ok(ran);
    }
    let h = &mut store.data_mut().host;
    let remotes = Arc::strong_count(&h.remote_holds) > 1;
    match h.timers.next_deadline() {
        // A virtual clock jumps to its next timer only when nothing can
        // come from outside first.
        Some(deadline) if !remotes || h.clock.kind() == ClockKind::Virtual => {
            h.clock.wait_until(deadline)
        }
        Some(deadline) => {
            let wait = deadline.saturating_sub(h.clock.now());
            if let Ok(f) = h.remote_rx.recv_timeout(wait) {
                f(&mut HostCx::new(store.as_context_mut()));
            }
        }
        None if remotes => match h.remote_rx.recv() {
            Ok(f) => f(&mut HostCx::new(store.as_context_mut())),
            Err(_) => return Ok(false),
        },
        None => return Ok(false),
    }
    turn(store, false).map(|_| true)
}

/// Reports the finished copies of host ends: the ends the core says got
/// an event (a guest copy met the host's, the guest dropped its end, or
/// the copy was cancelled).
pub(crate) fn poll_host_ends(store: &mut wasmi::Store<Rt>) -> bool {
    let rt = store.data_mut();
    let mut ended = std::mem::take(&mut rt.host.ended);
    rt.core.take_host_events(&mut ended);
    let mut any = false;
    for &s in &ended {
        let done = store
            .data_mut()
            .core
            .host_end(s)
            .ok()
            .and_then(|mut e| e.poll());
        if let Some(d) = done {
            HostCx::new(store.as_context_mut()).finish(s, d.into());
            any = true;
        }
    }
    ended.clear();
    store.data_mut().host.ended = ended;
    any
}
