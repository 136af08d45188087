//! The embedding API: [`Engine`] (configuration), [`Component`] (parsed
//! and compiled once), [`Store`] (the core store, the wasmi store and the
//! event loop), [`Instance`] and [`Func`].
//!
//! The event loop runs the core's actions (guest code on wasmi) and the
//! host's work (host calls, timers, host ends of streams and futures)
//! until what the embedder waits for has happened: a call's result is
//! delivered ([`Store::call`], [`Store::finish`]), or nothing is left to
//! run ([`Store::run_until_idle`]). When the core is idle and host work is
//! pending (a timer), it waits for it instead of reporting a deadlock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use canon_async::Host as _;
use canon_async::{Action, InstanceId, TaskId};

use crate::abi::types::FuncTy;
use crate::abi::val::Val;
use crate::canon::core_error;
use crate::clock::ClockKind;
use crate::component::{instantiate, parse_component, ComponentDef, InstanceVal, ItemVal};
use crate::driver::Driver;
use crate::error::{Error, Trap};
use crate::host;
use crate::idmap::IdMap;
use crate::linker::Linker;
use crate::state::{CFunc, HostCx, HostState, Lifted};
use crate::state::{HostInvoke, Rt};

/// How the core makes its scheduling choices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Always the first candidate: one fixed interleaving.
    #[default]
    Deterministic,
    /// Pseudo-random choices from a seed.
    Seeded(u64),
    /// Replays recorded choices (then the first candidate).
    Replay(Vec<usize>),
}

/// An engine's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether wasm execution consumes fuel ([`Store::set_fuel`]).
    pub consume_fuel: bool,
    /// The clock stores of this engine use.
    pub clock: ClockKind,
    /// The core's scheduling choices.
    pub schedule: Schedule,
    /// The budget of each lift (call arguments, results, `task.return`, one
    /// stream or future copy) in bytes of host memory; a lift that needs
    /// more traps. 128 MiB by default.
    pub max_lift_bytes: u64,
    /// The deepest wasm call nesting before a trap (wasmi's default when
    /// `None`).
    pub max_recursion_depth: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            consume_fuel: false,
            clock: ClockKind::Real,
            schedule: Schedule::Deterministic,
            max_lift_bytes: crate::state::DEFAULT_MAX_LIFT_BYTES,
            max_recursion_depth: None,
        }
    }
}

/// The wasmi engine with this runtime's configuration; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) wasmi: wasmi::Engine,
    pub(crate) config: Arc<Config>,
}

impl Engine {
    /// An engine with the given configuration.
    pub fn new(config: &Config) -> Self {
        let mut c = wasmi::Config::default();
        c.consume_fuel(config.consume_fuel);
        if let Some(d) = config.max_recursion_depth {
            c.set_max_recursion_depth(d);
        }
        Engine {
            wasmi: wasmi::Engine::new(&c),
            config: Arc::new(config.clone()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(&Config::default())
    }
}

/// A validated component with its core modules compiled; instantiate it
/// as often as needed with [`Linker::instantiate`].
#[derive(Clone)]
pub struct Component {
    pub(crate) def: Arc<ComponentDef>,
}

impl Component {
    /// Parses, validates and compiles a component binary.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Self, Error> {
        Ok(Component {
            def: parse_component(bytes, &engine.wasmi)?,
        })
    }
}

/// A function exported by an instance.
#[derive(Clone, Debug)]
pub struct Func {
    lifted: Arc<Lifted>,
}

impl Func {
    /// Its component type.
    pub fn ty(&self) -> &FuncTy {
        &self.lifted.ty
    }
}

/// An instantiated component.
#[derive(Clone)]
pub struct Instance {
    exports: Arc<InstanceVal>,
    id: InstanceId,
}

impl Instance {
    /// The exported function `name`: a function the component exports
    /// directly, or `"interface#function"` for one of an exported
    /// interface.
    pub fn func(&self, name: &str) -> Option<Func> {
        let item = match name.split_once('#') {
            Some((iface, f)) => match self.exports.exports.get(iface)? {
                ItemVal::Instance(i) => i.exports.get(f)?,
                _ => return None,
            },
            None => self.exports.exports.get(name)?,
        };
        match item {
            ItemVal::Func(CFunc::Lifted(l)) => Some(Func { lifted: l.clone() }),
            _ => None,
        }
    }

    /// The names of the instance's exports.
    pub fn export_names(&self) -> impl Iterator<Item = &str> {
        self.exports.exports.keys().map(String::as_str)
    }

    /// The core's id of the instance.
    pub fn id(&self) -> InstanceId {
        self.id
    }
}

/// A call from the host in flight, started with [`Store::call_concurrent`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Call {
    id: u64,
    inst: InstanceId,
}

/// A call from the host: waiting for a tick boundary to start, or started
/// as the core's task.
enum CallSlot {
    Queued(Arc<Lifted>, Vec<Val>),
    Started(TaskId),
    Done(Result<Vec<Val>, Error>),
}

/// Sizes of a store's per-store lists ([`Store::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Tasks created and not yet exited.
    pub live_tasks: usize,
    /// Functions of `thread.new-indirect` threads not started yet.
    pub thread_funcs: usize,
    /// Debug messages of live error-contexts.
    pub error_messages: usize,
    /// Distinct stream and future element types seen.
    pub elem_types: usize,
    /// Guest-to-guest and guest-to-host calls in flight.
    pub guest_calls: usize,
    /// Calls from the host in flight.
    pub host_calls: usize,
}

/// A store: the core's state, the wasmi store with every instance's
/// memories and tables, and the host's state.
pub struct Store {
    wasm: wasmi::Store<Rt>,
    driver: Driver,
    calls: IdMap<u64, CallSlot>,
    /// The call each started task belongs to.
    tasks: IdMap<TaskId, u64>,
    queued: VecDeque<u64>,
    next_call: u64,
}

impl Store {
    /// A new store for `engine`'s components.
    pub fn new(engine: &Engine) -> Self {
        let mut wasm = crate::state::new_store(&engine.wasmi);
        let cfg = &engine.config;
        let rt = wasm.data_mut();
        rt.host = HostState::new(cfg.clock);
        rt.set_max_lift_bytes(cfg.max_lift_bytes);
        match &cfg.schedule {
            Schedule::Deterministic => {}
            Schedule::Seeded(s) => {
                rt.core.set_chooser(Box::new(canon_async::Seeded::new(*s)));
            }
            Schedule::Replay(p) => {
                rt.core.set_chooser(Box::new(canon_async::Replay::new(
                    p.clone(),
                    canon_async::Deterministic,
                )));
            }
        }
        Store {
            wasm,
            driver: Driver::default(),
            calls: IdMap::default(),
            tasks: IdMap::default(),
            queued: VecDeque::new(),
            next_call: 0,
        }
    }

    /// Replaces the core's chooser (the engine's [`Schedule`] picks one
    /// when the store is made): for a chooser of the embedder's own, such
    /// as one that records the run's choices for a replay string.
    pub fn set_chooser(&mut self, chooser: Box<dyn canon_async::Chooser>) {
        self.wasm.data_mut().core.set_chooser(chooser);
    }

    /// Sets the fuel left (when the engine consumes fuel).
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.wasm
            .set_fuel(fuel)
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// The store's clock: time since it was created.
    pub fn now(&self) -> Duration {
        self.wasm.data().host.clock.now()
    }

    /// Runs `f` with the host's view of the store: to read a stream a call
    /// returned, to write one, to set a timer.
    pub fn with_host<R>(&mut self, f: impl FnOnce(&mut HostCx<'_>) -> R) -> R {
        f(&mut HostCx::new(wasmi::AsContextMut::as_context_mut(
            &mut self.wasm,
        )))
    }

    /// Tasks created and not yet exited in `inst`: the instance is
    /// quiescent (may be dropped or reused) when this is 0.
    pub fn live_tasks(&self, inst: &Instance) -> usize {
        self.wasm.data().core.live_tasks_in(inst.id)
    }

    /// Ready when no task of `inst` is live; otherwise registers the
    /// waker, woken when the count reaches zero.
    pub fn poll_quiescent(&mut self, inst: &Instance, cx: &mut Context<'_>) -> Poll<()> {
        self.wasm.data_mut().core.poll_quiescent_in(inst.id, cx)
    }

    /// Sizes of the store's per-store lists, to check that memory stays
    /// bounded by what is live.
    pub fn stats(&self) -> StoreStats {
        let rt = self.wasm.data();
        StoreStats {
            live_tasks: rt.core.live_tasks(),
            thread_funcs: rt.thread_funcs.len(),
            error_messages: rt.error_messages.len(),
            elem_types: rt.elem_types.len(),
            guest_calls: rt.calls.len(),
            host_calls: rt.host_calls.len(),
        }
    }

    pub(crate) fn instantiate(
        &mut self,
        linker: &Linker,
        component: &Component,
    ) -> Result<Instance, Error> {
        let args = linker.import_args(&component.def.items, self.wasm.data_mut());
        let comp = crate::component::instantiate::ComponentVal {
            def: component.def.clone(),
            env: None,
        };
        let exports = instantiate(&mut self.wasm, &mut self.driver, &comp, &args, None)?;
        let id = exports
            .id
            .ok_or_else(|| Error::Runtime("internal: instance without id".into()))?;
        Ok(Instance { exports, id })
    }

    /// Calls `f` with `args` and runs the event loop until its result is
    /// delivered (work the callee goes on with afterwards stays for later
    /// calls and [`Store::run_until_idle`]).
    pub fn call(&mut self, f: &Func, args: &[Val]) -> Result<Vec<Val>, Error> {
        let c = self.call_concurrent(f, args)?;
        self.finish(c)
    }

    /// Starts a call of `f` without running anything: many calls can be in
    /// flight in one instance at once; get each one's result with
    /// [`Store::finish`].
    pub fn call_concurrent(&mut self, f: &Func, args: &[Val]) -> Result<Call, Error> {
        let l = &f.lifted;
        let tys = l.param_types();
        if args.len() != tys.len() || !args.iter().zip(tys).all(|(v, t)| host::val_has_type(v, t)) {
            return Err(Error::Runtime(format!(
                "arguments {args:?} do not match the function's type {}",
                l.ty.describe()
            )));
        }
        self.next_call += 1;
        let id = self.next_call;
        self.calls
            .insert(id, CallSlot::Queued(l.clone(), args.to_vec()));
        self.queued.push_back(id);
        Ok(Call { id, inst: l.inst })
    }

    /// Starts the queued calls (the core takes a new call only at a tick
    /// boundary: `Store::invoke`).
    fn start_queued(&mut self) {
        while self.wasm.data().core.at_tick_boundary() {
            let Some(id) = self.queued.pop_front() else {
                return;
            };
            let Some(CallSlot::Queued(l, args)) = self.calls.remove(&id) else {
                continue;
            };
            let rt = self.wasm.data_mut();
            let slot = match rt.core.invoke(l.descriptor()) {
                Ok(task) => {
                    rt.host_calls.insert(
                        task,
                        HostInvoke {
                            args,
                            results: None,
                        },
                    );
                    self.tasks.insert(task, id);
                    CallSlot::Started(task)
                }
                Err(e) => CallSlot::Done(Err(Error::Trap(core_error(e)))),
            };
            self.calls.insert(id, slot);
        }
    }

    /// Moves delivered results to their calls.
    fn collect_delivered(&mut self) {
        let rt = self.wasm.data_mut();
        for task in rt.delivered.drain(..) {
            let results = rt.host_calls.remove(&task).and_then(|h| h.results);
            if let (Some(id), Some(r)) = (self.tasks.remove(&task), results) {
                self.calls.insert(id, CallSlot::Done(Ok(r)));
            }
        }
    }

    /// The outcome of `call`, if it is known (without running anything):
    /// its results once delivered, or the error that ended it.
    pub fn try_result(&mut self, call: &Call) -> Option<Result<Vec<Val>, Error>> {
        self.collect_delivered();
        match self.calls.get(&call.id)? {
            CallSlot::Queued(..) => None,
            CallSlot::Done(_) => match self.calls.remove(&call.id) {
                Some(CallSlot::Done(r)) => Some(r),
                _ => None,
            },
            CallSlot::Started(_) => {
                if self.wasm.data().core.is_poisoned(call.inst) {
                    self.forget(call);
                    return Some(Err(Error::Trap(Trap::new(
                        "the called instance trapped before the call returned",
                    ))));
                }
                None
            }
        }
    }

    /// Runs the event loop until `call`'s result is delivered.
    pub fn finish(&mut self, call: Call) -> Result<Vec<Val>, Error> {
        loop {
            if let Some(r) = self.try_result(&call) {
                // Finish the tick in which the result came; what the callee
                // left behind stays for later.
                let ran = self
                    .driver
                    .drive(&mut self.wasm)
                    .with_host_work()
                    .run_until(|_| true);
                if let Err(t) = ran {
                    self.driver.forget_dead(&self.wasm);
                    return Err(Error::Trap(t));
                }
                return r;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => {
                    self.forget(&call);
                    return Err(Error::Trap(Trap::new(format!(
                        "deadlock detected: event loop cannot make further progress\n{}",
                        self.wasm.data().core.describe_blocked()
                    ))));
                }
                Err(e) => {
                    self.forget(&call);
                    return Err(e);
                }
            }
        }
    }

    fn forget(&mut self, call: &Call) {
        if let Some(CallSlot::Started(task)) = self.calls.remove(&call.id) {
            self.tasks.remove(&task);
            self.wasm.data_mut().host_calls.remove(&task);
        }
    }

    /// Runs the event loop until neither the core nor the host has
    /// anything left to run (threads waiting for something that cannot
    /// happen are left waiting).
    pub fn run_until_idle(&mut self) -> Result<(), Error> {
        while self.step()? {}
        Ok(())
    }

    /// Runs the event loop for as long as something can run without
    /// waiting (the core's actions, the host's ready work, due timers and
    /// the closures a [`crate::Remote`] sent), and never blocks. Returns
    /// the time until the store's next timer is due (`None`: no timer is
    /// set): for an embedder that drives many stores, or a store and
    /// channels of its own, on one thread and does the waiting itself (on
    /// a real clock; a virtual clock does not advance here). Results of
    /// calls are then known to [`Store::try_result`].
    pub fn run_ready(&mut self) -> Result<Option<Duration>, Error> {
        loop {
            self.start_queued();
            let a = self.wasm.data_mut().core.next_action();
            let r = match a {
                Action::Idle if !self.queued.is_empty() => Ok(true),
                Action::Idle => host::turn(&mut self.wasm, false),
                a => self
                    .driver
                    .drive(&mut self.wasm)
                    .with_host_work()
                    .dispatch(a)
                    .map(|()| true),
            };
            match r {
                Ok(true) => {}
                Ok(false) => break,
                Err(t) => {
                    self.driver.forget_dead(&self.wasm);
                    return Err(Error::Trap(t));
                }
            }
        }
        let h = &self.wasm.data().host;
        Ok(h.timers
            .next_deadline()
            .map(|d| d.saturating_sub(h.clock.now())))
    }

    /// One turn of the event loop: one core action and the host work it
    /// made ready, or, when the core is idle, the host's next piece of
    /// work (waiting for the next timer). `false` when nothing can run.
    fn step(&mut self) -> Result<bool, Error> {
        self.start_queued();
        let a = self.wasm.data_mut().core.next_action();
        let r = match a {
            // Calls waiting to start go first; then host work, waiting
            // for the next timer if nothing else can run.
            Action::Idle if !self.queued.is_empty() => Ok(true),
            Action::Idle => host::turn(&mut self.wasm, true),
            a => self
                .driver
                .drive(&mut self.wasm)
                .with_host_work()
                .dispatch(a)
                .map(|()| true),
        };
        r.map_err(|t| {
            self.driver.forget_dead(&self.wasm);
            Error::Trap(t)
        })
    }
}

impl Linker {
    /// Instantiates `component` in `store`, its imports satisfied by this
    /// linker's definitions (each checked against the import's type).
    pub fn instantiate(&self, store: &mut Store, component: &Component) -> Result<Instance, Error> {
        store.instantiate(self, component)
    }
}
