//! The driving loop: asks the core what to do next and does it with wasmi.
//!
//! Every task's implicit thread and every explicit thread runs as its own
//! top-level wasmi resumable call. A built-in that must block returns the
//! [`Suspend`] host error; the resumable call is
//! parked under the core's thread id and resumed with the value the core
//! hands back in `Action::Resume`.

use std::sync::Arc;

use canon_async::{
    Action, Caller as CoreCaller, Event, Host, LiftKind, ResumeValue, SubtaskId, TaskId, ThreadId,
};
use wasmi::{AsContextMut, ResumableCall};

use crate::abi::lift::{lift_flat_values, FlatIter};
use crate::abi::lower::lower_flat_values;
use crate::abi::types::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use crate::abi::val::{Flat, Val};
use crate::builtins::store_event;
use crate::canon::{core_error, deliver, lift_call_args, nested_call, sync_lower_results, Cx};
use crate::error::{trap_from_wasmi, EmbedderFault, Trap};
use crate::idmap::IdMap;
use crate::state::{CFunc, HostInvoke, Lifted, Park, Rt, Suspend};

/// What a top-level wasmi call runs.
#[derive(Clone)]
enum Run {
    /// A task's core function.
    Entry(Arc<Lifted>, TaskId),
    /// A callback-lifted task's callback.
    Callback(Arc<Lifted>),
    /// A thread started by `thread.new-indirect`.
    Thread,
    /// The core function of a synchronous call the runtime makes itself (a
    /// core start function), begun with `Store::begin_sync_call`.
    SyncCall,
}

struct Parked {
    call: wasmi::ResumableCallHostTrap,
    park: Park,
    run: Run,
    /// The buffer for the results of the top-level call, made when it
    /// began (of the core function's result types) and reused on resume.
    outs: Outs,
}

/// The results buffer of a top-level call. (A `SmallVec` in place makes
/// `Parked` larger, and moving it in and out of `parked` then costs more
/// than the allocation it saves per callback.)
type Outs = Vec<wasmi::Val>;

/// Parked continuations, by the core's thread id.
#[derive(Default)]
pub struct Driver {
    parked: IdMap<ThreadId, Parked>,
    /// Set when the core function of a [`Driver::sync_call`] returned.
    sync_done: bool,
}

fn fail(store: &mut wasmi::Store<Rt>, t: Trap) -> Trap {
    store.data_mut().core.wasm_trapped();
    t
}

impl Driver {
    /// Calls a lifted function from the host (`Store.invoke` of
    /// `definitions.py`) and returns its results as soon as they are
    /// delivered (`on_resolve`) and the tick they came in has finished,
    /// or the trap. Work the callee left behind (a thread that keeps
    /// yielding, a callback that keeps returning YIELD) stays parked in the
    /// driver and goes on in the ticks of later calls. Idle before the
    /// results came is a deadlock.
    pub fn invoke(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        f: &CFunc,
        args: Vec<Val>,
    ) -> Result<Vec<Val>, Trap> {
        let CFunc::Lifted(l) = f else {
            return Err(Trap::new("a host function cannot be invoked from the host"));
        };
        let task = store
            .data_mut()
            .core
            .invoke(l.descriptor())
            .map_err(core_error)?;
        store.data_mut().host_calls.insert(
            task,
            HostInvoke {
                args,
                results: None,
            },
        );
        let r = self.run_until_resolved(store, task);
        let call = store.data_mut().host_calls.remove(&task);
        if let Err(t) = r {
            self.forget_dead(store);
            return Err(t);
        }
        match call.and_then(|c| c.results) {
            Some(v) => Ok(v),
            None => Err(Trap::new(format!(
                "{}\n{}",
                canon_async::Trap::Deadlock.message(),
                store.data().core.describe_blocked()
            ))),
        }
    }

    /// Runs `f` (no parameters, no results) as a synchronous call into
    /// `inst` on a fresh task (`Store::begin_sync_call`): a top-level
    /// resumable call, so it may call imports (the callees run as threads
    /// of their own, through the core's actions) while blocking in it traps
    /// with "cannot block a synchronous task before returning". Returns once
    /// the function returned, without running anything else.
    pub fn sync_call(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        inst: canon_async::InstanceId,
        f: wasmi::Func,
    ) -> Result<(), Trap> {
        let thread = store
            .data_mut()
            .core
            .begin_sync_call(inst)
            .map_err(core_error)?;
        self.sync_done = false;
        let r = f.call_resumable(&mut *store, &[], &mut []);
        let r = self
            .after(store, thread, Run::SyncCall, r, Outs::new())
            .and_then(|()| {
                let done = self.drive(store).run_until(|d| d.driver.sync_done)?;
                if done {
                    Ok(())
                } else {
                    Err(fail(
                        store,
                        Trap::new("internal: idle during a synchronous call"),
                    ))
                }
            });
        self.sync_done = false;
        if r.is_err() {
            self.forget_dead(store);
        }
        r
    }

    pub(crate) fn forget_dead(&mut self, store: &wasmi::Store<Rt>) {
        let core = &store.data().core;
        self.parked.retain(|t, _| core.thread_alive(*t));
    }

    /// Drives the core until the results of the host call `task` are
    /// delivered and the store is at a tick boundary
    /// ([`canon_async::Store::next_action_in_tick`]), or until it is idle
    /// without them (a deadlock). Ticks before that are the core's own:
    /// its chooser picks among every ready thread, the ones earlier calls
    /// left behind included, so a yield loop neither starves this call nor
    /// is starved by it.
    fn run_until_resolved(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        task: TaskId,
    ) -> Result<(), Trap> {
        self.drive(store)
            .run_until(|d| {
                d.wasm
                    .data()
                    .host_calls
                    .get(&task)
                    .is_some_and(|h| h.results.is_some())
            })
            .map(|_| ())
    }

    /// The driver and the store as the core's [`Host`]: what carries out
    /// the core's actions. `host_work` runs the host's ready work after
    /// each action (the embedding API's event loop); the `.wast` runner's
    /// calls have none.
    pub(crate) fn drive<'a>(&'a mut self, wasm: &'a mut wasmi::Store<Rt>) -> Drive<'a> {
        Drive {
            driver: self,
            wasm,
            host_work: false,
        }
    }

    fn callback(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        thread: ThreadId,
        func: u32,
        event: Event,
    ) -> Result<(), Trap> {
        let l = lifted(store, func)?;
        let cb = l
            .opts
            .callback
            .ok_or_else(|| fail(store, Trap::new("callback lift without a callback")))?;
        let args =
            [event.code as u32, event.index, event.payload].map(|v| wasmi::Val::I32(v as i32));
        let mut outs: Outs = vec![wasmi::Val::I32(0)];
        let r = cb.call_resumable(&mut *store, &args, &mut outs);
        self.after(store, thread, Run::Callback(l), r, outs)
    }

    fn start_thread(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        thread: ThreadId,
        func: u32,
        arg: u32,
    ) -> Result<(), Trap> {
        let f = store
            .data_mut()
            .thread_funcs
            .try_remove(func as usize)
            .ok_or_else(|| Trap::new("internal: unknown thread function"))?;
        let r = f.call_resumable(&mut *store, &[wasmi::Val::I32(arg as i32)], &mut []);
        self.after(store, thread, Run::Thread, r, Outs::new())
    }

    fn start(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        thread: ThreadId,
        task: TaskId,
        func: u32,
    ) -> Result<(), Trap> {
        let l = lifted(store, func)?;
        let caller = store.data().core.task_caller(task);
        let (args, host_peer, subtask) = match caller {
            Some(CoreCaller::Guest(s)) => {
                let mut ctx = store.as_context_mut();
                let a = lift_call_args(&mut ctx, s).map_err(|t| fail(store, t))?;
                (a, false, Some(s))
            }
            _ => {
                let a = store
                    .data()
                    .host_calls
                    .get(&task)
                    .map(|h| h.args.clone())
                    .unwrap_or_default();
                (a, true, None)
            }
        };
        let _ = subtask;
        let flat = {
            let mut ctx = store.as_context_mut();
            let mut cx = Cx::new(&mut ctx, &l.opts, l.inst, host_peer);
            cx.task = Some(task);
            lower_flat_values(&mut cx, MAX_FLAT_PARAMS, &args, l.param_types(), None)
        }
        .map_err(|t| fail(store, t))?;
        let wargs: smallvec::SmallVec<[wasmi::Val; 4]> =
            flat.iter().map(|f| f.to_wasmi()).collect();
        let mut outs: Outs = l
            .core_results
            .iter()
            .map(|t| Flat::zero(*t).to_wasmi())
            .collect();
        let r = l.core.call_resumable(&mut *store, &wargs, &mut outs);
        self.after(store, thread, Run::Entry(l, task), r, outs)
    }

    fn resume(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        thread: ThreadId,
        value: ResumeValue,
    ) -> Result<(), Trap> {
        let p = self
            .parked
            .remove(&thread)
            .ok_or_else(|| fail(store, Trap::new("internal: no parked continuation")))?;
        // One i32 (or nothing) in place; a synchronous lower's results in
        // a vector.
        let mut one = [wasmi::Val::I32(0)];
        let lowered: Vec<wasmi::Val>;
        let inputs: &[wasmi::Val] = match (&p.park, value) {
            (Park::I32 { has_result }, ResumeValue::I32(v)) => {
                if *has_result {
                    one[0] = wasmi::Val::I32(v as i32);
                    &one
                } else {
                    &[]
                }
            }
            (Park::Event { memory }, ResumeValue::Event { event, ptr }) => {
                let mut ctx = store.as_context_mut();
                store_event(&mut ctx, *memory, ptr, &event).map_err(|t| fail(store, t))?;
                one[0] = wasmi::Val::I32(event.code as u32 as i32);
                &one
            }
            (Park::SyncLower { .. }, ResumeValue::Returned(s)) => {
                let mut ctx = store.as_context_mut();
                lowered = sync_lower_results(&mut ctx, s).map_err(|t| fail(store, t))?;
                &lowered
            }
            (park, v) => {
                return Err(fail(
                    store,
                    Trap::new(format!("internal: resume {v:?} for {park:?}")),
                ))
            }
        };
        let mut outs = p.outs;
        let r = p.call.resume(&mut *store, inputs, &mut outs);
        self.after(store, thread, p.run, r, outs)
    }

    fn after(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        thread: ThreadId,
        run: Run,
        r: Result<ResumableCall, wasmi::Error>,
        outs: Outs,
    ) -> Result<(), Trap> {
        match r {
            Ok(ResumableCall::Finished) => self.finished(store, run, outs),
            Ok(ResumableCall::HostTrap(h)) => {
                if h.host_error().downcast_ref::<Suspend>().is_some() {
                    if store.data().trace {
                        eprintln!(
                            "[canon-async-spec] park {thread:?}: {:?}",
                            store.data().suspend
                        );
                    }
                    let park =
                        store.data_mut().suspend.take().ok_or_else(|| {
                            fail(store, Trap::new("internal: suspend without park"))
                        })?;
                    self.parked.insert(
                        thread,
                        Parked {
                            call: h,
                            park,
                            run,
                            outs,
                        },
                    );
                    Ok(())
                } else if let Some(f) = h.host_error().downcast_ref::<EmbedderFault>() {
                    // The runtime's own misuse of the core: not a guest trap.
                    Err(Trap::new(f.to_string()))
                } else {
                    let t = trap_from_wasmi(h.into_host_error());
                    Err(fail(store, t))
                }
            }
            Ok(ResumableCall::OutOfFuel(_)) => {
                Err(fail(store, Trap::new("all fuel consumed by WebAssembly")))
            }
            Err(e) => match e.downcast_ref::<EmbedderFault>() {
                Some(f) => Err(Trap::new(f.to_string())),
                None => Err(fail(store, trap_from_wasmi(e))),
            },
        }
    }

    fn finished(&mut self, store: &mut wasmi::Store<Rt>, run: Run, outs: Outs) -> Result<(), Trap> {
        match run {
            Run::Entry(l, task) if l.kind == LiftKind::Sync => {
                let flat: Vec<Flat> = outs.iter().map(Flat::from_wasmi).collect();
                let host_peer = !matches!(
                    store.data().core.task_caller(task),
                    Some(CoreCaller::Guest(_))
                );
                let vals = {
                    let mut ctx = store.as_context_mut();
                    let mut cx = Cx::new(&mut ctx, &l.opts, l.inst, host_peer);
                    let mut it = FlatIter::new(&flat);
                    lift_flat_values(&mut cx, MAX_FLAT_RESULTS, &mut it, l.ty.results())
                }
                .map_err(|t| fail(store, t))?;
                let d = store.data_mut().core.lift_returned().map_err(core_error)?;
                {
                    let mut ctx = store.as_context_mut();
                    deliver(&mut ctx, d, vals).map_err(|t| fail(store, t))?;
                }
                if let Some(pr) = l.opts.post_return {
                    store.data_mut().core.set_may_leave(false);
                    let mut ctx = store.as_context_mut();
                    let r = nested_call(&mut ctx, pr, &outs, &mut []);
                    store.data_mut().core.set_may_leave(true);
                    r.map_err(|t| fail(store, t))?;
                }
                store.data_mut().core.exit_thread().map_err(core_error)
            }
            Run::SyncCall => {
                self.sync_done = true;
                store.data_mut().core.end_sync_call().map_err(core_error)
            }
            Run::Entry(l, _) | Run::Callback(l) if l.kind == LiftKind::AsyncCallback => {
                let code = match outs.first() {
                    Some(wasmi::Val::I32(v)) => *v as u32,
                    _ => 0,
                };
                store
                    .data_mut()
                    .core
                    .callback_returned(code)
                    .map_err(core_error)
            }
            _ => store.data_mut().core.exit_thread().map_err(core_error),
        }
    }
}

fn lifted(store: &mut wasmi::Store<Rt>, func: u32) -> Result<Arc<Lifted>, Trap> {
    match store.data().lifted.get(func as usize).cloned() {
        Some(l) => Ok(l),
        None => Err(fail(store, Trap::new("internal: unknown lifted function"))),
    }
}

/// The core's [`Host`] for a wasmi store: every action is a top-level
/// resumable call started, resumed or finished by the [`Driver`], or a host
/// function run.
pub(crate) struct Drive<'a> {
    pub(crate) driver: &'a mut Driver,
    pub(crate) wasm: &'a mut wasmi::Store<Rt>,
    /// Whether the host's ready work runs after each action.
    pub(crate) host_work: bool,
}

impl Drive<'_> {
    /// With the host's ready work run after each action
    /// ([`crate::host::turn`]).
    pub(crate) fn with_host_work(mut self) -> Self {
        self.host_work = true;
        self
    }
}

impl Host for Drive<'_> {
    type Error = Trap;

    fn store(&mut self) -> impl std::ops::DerefMut<Target = canon_async::Store> + '_ {
        &mut self.wasm.data_mut().core
    }

    fn observe(&mut self, action: &Action) {
        self.wasm.data().trace_action(action);
    }

    fn after_action(&mut self) -> Result<(), Trap> {
        if self.host_work {
            crate::host::turn(self.wasm, false)?;
        }
        Ok(())
    }

    fn start(&mut self, thread: ThreadId, task: TaskId, func: u32) -> Result<(), Trap> {
        self.driver.start(self.wasm, thread, task, func)
    }

    fn callback(
        &mut self,
        thread: ThreadId,
        _: TaskId,
        func: u32,
        event: Event,
    ) -> Result<(), Trap> {
        self.driver.callback(self.wasm, thread, func, event)
    }

    fn start_thread(&mut self, thread: ThreadId, func: u32, arg: u32) -> Result<(), Trap> {
        self.driver.start_thread(self.wasm, thread, func, arg)
    }

    fn resume(&mut self, thread: ThreadId, value: ResumeValue) -> Result<(), Trap> {
        self.driver.resume(self.wasm, thread, value)
    }

    fn host_call(&mut self, subtask: SubtaskId) -> Result<(), Trap> {
        let store = &mut *self.wasm;
        let func = match store.data().calls.get(&subtask).map(|c| &c.def.callee) {
            Some(CFunc::Host(h)) => h.clone(),
            _ => return Err(fail(store, Trap::new("internal: unknown host call"))),
        };
        crate::host::run_host_call(store, subtask, func).map_err(|t| fail(store, t))
    }

    fn host_cancel(&mut self, subtask: SubtaskId) -> Result<(), Trap> {
        crate::host::run_host_cancel(self.wasm, subtask);
        Ok(())
    }
}
