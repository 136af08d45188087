//! The data of a store, every type of it in one leaf module: the runtime
//! state the wasmi store carries ([`Rt`], with the `canon-async` core
//! store), the functions it knows (lifted and host functions, lowered
//! imports, canonical options), the calls in flight, and the host's state.
//!
//! Behaviour lives in the modules above this one: `canon` (lifting,
//! lowering and calls), `builtins` (the canon built-ins), `host` (host
//! functions, timers and host ends), `driver` (the driving loop) and
//! `store` (the embedding API). None of them is imported here.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use canon_async::{CopyResult, InstanceId, LiftKind, ResourceTypeId, SharedId, SubtaskId, TaskId};

use crate::abi::types::{
    flat_len, flatten_functype, tuple_layout, CoreTy, FuncTy, ResId, Ty, MAX_FLAT_ASYNC_PARAMS,
    MAX_FLAT_PARAMS,
};
use crate::abi::val::{StrEnc, Val};
use crate::clock::{Clock, ClockKind, Timers};
use crate::idmap::IdMap;

/// A component instance id: the core's instance id.
pub type InstId = InstanceId;

/// The default of [`Rt::max_lift_bytes`]: 128 MiB.
pub const DEFAULT_MAX_LIFT_BYTES: u64 = 128 << 20;

/// A runtime resource type.
#[derive(Clone)]
pub struct ResourceType {
    /// The core's id for it.
    pub core: ResourceTypeId,
    /// The instance that defined it.
    pub impl_inst: InstId,
    /// Its destructor, if any.
    pub dtor: Option<wasmi::Func>,
    /// The destructor of a resource type the host defines.
    pub host_dtor: Option<crate::state::HostDtor>,
}

/// A guest-to-guest call in flight, keyed by the core's subtask id.
pub struct CallRec {
    /// How the caller lowered the callee.
    pub def: Arc<LowerDef>,
    /// The caller's flat arguments (lifted when the callee starts), in
    /// place up to four (no allocation per call for most functions).
    pub flat_args: smallvec::SmallVec<[crate::abi::val::Flat; 4]>,
    /// The results, once delivered (synchronous lowers).
    pub results: Option<Vec<Val>>,
}

/// A host call of a lifted function, keyed by the core's task id.
pub struct HostInvoke {
    /// The arguments.
    pub args: Vec<Val>,
    /// The results, once delivered.
    pub results: Option<Vec<Val>>,
}

/// How a suspended built-in turns the core's resume value into results.
#[derive(Debug, Clone)]
pub enum Park {
    /// The built-in returns the resume value as one i32 (or nothing).
    /// The built-in returns the resume value as one `i32` (or nothing).
    I32 {
        /// Whether the built-in has an `i32` result.
        has_result: bool,
    },
    /// `waitable-set.wait`: store the event at the pointer, return its code.
    /// `waitable-set.wait`: store the event at the pointer, return its code.
    Event {
        /// The memory of `waitable-set.wait`'s options.
        memory: Option<wasmi::Memory>,
    },
    /// A synchronous lower: lower the callee's results into the caller.
    /// A synchronous lower: lower the callee's results into the caller.
    SyncLower {
        /// The call's subtask.
        subtask: SubtaskId,
    },
}

/// The data of the wasmi store.
pub struct Rt {
    /// The async Canonical ABI state machine.
    pub core: canon_async::Store,
    /// Resource types, by runtime id.
    pub resources: Vec<ResourceType>,
    /// Lifted functions, by the id the core echoes back in actions.
    pub lifted: Vec<Arc<Lifted>>,
    /// Functions started by `thread.new-indirect`, by id.
    pub thread_funcs: slab::Slab<wasmi::Func>,
    /// The canonical options of the stream and future read and write
    /// built-ins, by the id their buffers carry as memory id.
    pub copy_opts: Vec<Opts>,
    /// Element types of streams and futures, by the core's `ElemType::id`.
    pub elem_types: Vec<Option<Ty>>,
    /// The id of each element type in `elem_types`.
    pub elem_type_ids: HashMap<Option<Ty>, u32>,
    /// Debug messages of error-contexts, by id.
    pub error_messages: slab::Slab<String>,
    /// Guest-to-guest calls in flight.
    pub calls: IdMap<SubtaskId, CallRec>,
    /// Host calls in flight.
    pub host_calls: IdMap<TaskId, HostInvoke>,
    /// Host calls whose results were delivered since the embedder last
    /// looked (a task's id is reused once it exits).
    pub delivered: Vec<TaskId>,
    /// Set by a built-in that suspended its thread.
    pub suspend: Option<Park>,
    /// Depth of synchronous helper calls (realloc, post-return, ...) that
    /// run nested inside a host function and so cannot suspend.
    pub nested: u32,
    /// Host calls in flight, timers and host stream/future ends.
    pub(crate) host: crate::state::HostState,
    /// The budget of one lift, in bytes of host memory: call arguments,
    /// results, a `task.return` or one stream or future copy that would
    /// materialise more traps instead (see
    /// [`LiftBudget`](crate::abi::lift::LiftBudget)).
    /// [`DEFAULT_MAX_LIFT_BYTES`] unless set with
    /// [`Rt::set_max_lift_bytes`].
    pub max_lift_bytes: u64,
    /// Whether to print a trace of the driving loop and of every built-in
    /// to stderr (the `.wast` runner sets it from `CANON_ASYNC_TRACE`).
    pub trace: bool,
    /// A buffer reused by plain-data copies between two memories.
    pub(crate) scratch: Vec<u8>,
    /// Helper instances that copy between two memories in one pass.
    pub(crate) copiers: crate::memcopy::Copiers,
}

impl Rt {
    /// Prints an action of the core when tracing is on (the driving loop's
    /// and the nested ones of an async host lower).
    pub(crate) fn trace_action(&self, action: &canon_async::Action) {
        if self.trace {
            eprintln!("[canon-async-spec] action {action:?}");
        }
    }

    fn new() -> Self {
        Rt {
            core: canon_async::Store::new(),
            resources: Vec::new(),
            lifted: Vec::new(),
            thread_funcs: slab::Slab::new(),
            copy_opts: Vec::new(),
            elem_types: Vec::new(),
            elem_type_ids: HashMap::new(),
            error_messages: slab::Slab::new(),
            calls: IdMap::default(),
            host_calls: IdMap::default(),
            delivered: Vec::new(),
            suspend: None,
            nested: 0,
            host: crate::state::HostState::new(crate::clock::ClockKind::Real),
            max_lift_bytes: DEFAULT_MAX_LIFT_BYTES,
            trace: false,
            scratch: Vec::new(),
            copiers: Default::default(),
        }
    }

    /// Sets the budget of each lift, in bytes (see [`Rt::max_lift_bytes`]).
    pub fn set_max_lift_bytes(&mut self, bytes: u64) {
        self.max_lift_bytes = bytes;
    }

    /// Registers a new resource type.
    pub fn new_resource(&mut self, impl_inst: InstId, dtor: Option<wasmi::Func>) -> ResId {
        let core = self.core.new_resource_type(impl_inst);
        self.resources.push(ResourceType {
            core,
            impl_inst,
            dtor,
            host_dtor: None,
        });
        self.resources.len() - 1
    }

    /// The id of a stream or future built-in's options, for its buffers.
    pub fn copy_opts_id(&mut self, opts: &Opts) -> u32 {
        self.copy_opts.push(opts.clone());
        (self.copy_opts.len() - 1) as u32
    }

    /// The id of a stream or future element type.
    pub fn elem_type_id(&mut self, t: &Option<Ty>) -> u32 {
        if let Some(i) = self.elem_type_ids.get(t) {
            return *i;
        }
        let i = self.elem_types.len() as u32;
        self.elem_types.push(t.clone());
        self.elem_type_ids.insert(t.clone(), i);
        i
    }
}

/// Creates a store with fresh runtime state.
pub fn new_store(engine: &wasmi::Engine) -> wasmi::Store<Rt> {
    wasmi::Store::new(engine, Rt::new())
}

/// Canonical options of a lift, lower or built-in.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `memory`.
    pub memory: Option<wasmi::Memory>,
    /// `realloc`.
    pub realloc: Option<wasmi::Func>,
    /// `post-return`.
    pub post_return: Option<wasmi::Func>,
    /// `callback`.
    pub callback: Option<wasmi::Func>,
    /// `string-encoding` (UTF-8 when absent).
    pub encoding: Option<StrEnc>,
    /// `async`.
    pub is_async: bool,
    /// The id of these options in [`Rt::copy_opts`], which a stream or
    /// future built-in passes to the core as its buffer's memory id
    /// (`GuestBuf::mem`), so that a copy finds each side's options again.
    ///
    /// [`Rt::copy_opts`]: crate::state::Rt::copy_opts
    /// [`GuestBuf::mem`]: canon_async::GuestBuf::mem
    pub copy_opts_id: Option<u32>,
}

/// A lifted function: a core function of an instance with a component type.
#[derive(Debug)]
pub struct Lifted {
    /// The id the core echoes back in `Action::Start`.
    pub id: u32,
    /// The instance it belongs to.
    pub inst: InstId,
    /// The core function.
    pub core: wasmi::Func,
    /// Its component type.
    pub ty: FuncTy,
    /// Its canonical options.
    pub opts: Opts,
    /// How it was lifted (sync, async callback, async stackful).
    pub kind: LiftKind,
    /// `ty`'s parameter types (computed once, not per call).
    pub(crate) param_tys: Box<[Ty]>,
    /// The core function's result types (`flatten_functype` as lifted).
    pub(crate) core_results: Box<[CoreTy]>,
}

impl Lifted {
    /// A lifted function, with what each call needs of its type computed.
    pub fn new(
        id: u32,
        inst: InstId,
        core: wasmi::Func,
        ty: FuncTy,
        opts: Opts,
        kind: LiftKind,
    ) -> Self {
        let sig = flatten_functype(&ty, opts.is_async, opts.callback.is_some(), true);
        Lifted {
            id,
            inst,
            core,
            param_tys: ty.param_types().into(),
            core_results: sig.results.into(),
            ty,
            opts,
            kind,
        }
    }

    /// The parameter types.
    pub fn param_types(&self) -> &[Ty] {
        &self.param_tys
    }

    /// The core's description of this function.
    pub fn descriptor(&self) -> canon_async::Lifted {
        canon_async::Lifted {
            inst: self.inst,
            func: self.id,
            kind: self.kind,
            async_type: self.ty.is_async,
        }
    }
}

/// A component function value.
#[derive(Debug, Clone)]
pub enum CFunc {
    /// A function lifted from a component instance.
    Lifted(Arc<Lifted>),
    /// A function the host implements (linked with a `Linker`).
    Host(Arc<crate::state::HostFunc>),
}

impl CFunc {
    /// The component type the callee was lifted with.
    pub fn ty(&self) -> &FuncTy {
        match self {
            CFunc::Lifted(l) => &l.ty,
            CFunc::Host(h) => &h.ty,
        }
    }
}

/// What a `canon lower` host function needs.
#[derive(Debug)]
pub struct LowerDef {
    /// The function called.
    pub callee: CFunc,
    /// The instance it belongs to.
    pub inst: InstId,
    /// Its component type.
    pub ty: FuncTy,
    /// Its canonical options.
    pub opts: Opts,
    /// `ty`'s parameter types (computed once, not per call).
    pub(crate) param_tys: Box<[Ty]>,
    /// How many flat parameters (before any out-pointer) the core
    /// function takes.
    pub(crate) flat_params: usize,
    /// The alignment and size of the results as a tuple in memory (where
    /// an async caller's out-pointer points).
    pub(crate) results_layout: (u32, u64),
}

impl LowerDef {
    /// A lowered function, with what each call needs of its type computed.
    pub fn new(callee: CFunc, inst: InstId, ty: FuncTy, opts: Opts) -> Self {
        let param_tys: Box<[Ty]> = ty.param_types().into();
        let n = flat_len(&param_tys);
        let max = if opts.is_async {
            MAX_FLAT_ASYNC_PARAMS
        } else {
            MAX_FLAT_PARAMS
        };
        LowerDef {
            callee,
            inst,
            opts,
            param_tys,
            flat_params: if n > max { 1 } else { n },
            results_layout: tuple_layout(ty.results().iter()),
            ty,
        }
    }

    /// How many flat parameters (before any out-pointer) the core function takes.
    pub fn flat_param_count(&self) -> usize {
        self.flat_params
    }

    /// The parameter types.
    pub fn param_types(&self) -> &[Ty] {
        &self.param_tys
    }
}

/// The host error a built-in returns to park its thread.
#[derive(Debug)]
pub struct Suspend;

impl std::fmt::Display for Suspend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("thread suspended")
    }
}

impl wasmi::errors::HostError for Suspend {}

/// An error a host function reports; the guest's call traps with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl HostError {
    /// An error with the given message.
    pub fn new(msg: impl Into<String>) -> Self {
        HostError(msg.into())
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

/// The body of a synchronous host function.
pub type SyncHostFn =
    dyn Fn(&mut HostCx<'_>, &[Val]) -> Result<Vec<Val>, HostError> + Send + Sync + 'static;

/// The body of an asynchronous host function: it completes `call` now or
/// later.
pub type AsyncHostFn =
    dyn Fn(&mut HostCx<'_>, Vec<Val>, HostCall) -> Result<(), HostError> + Send + Sync + 'static;

/// The destructor of a host resource type: runs with the resource's
/// representation when a guest drops its last own handle.
pub type HostDtor = Arc<dyn Fn(&mut HostCx<'_>, u32) + Send + Sync + 'static>;

/// The first id of host resource types in the types a host gives its
/// functions ([`HostResource::own`]); the store's own ids are small.
pub(crate) const HOST_RESOURCE_BASE: usize = 1 << 40;

pub(crate) static NEXT_HOST_RESOURCE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// A resource type the host defines (`Linker::resource`): its values are
/// representations (`u32`) the host chooses; guests hold handles to them.
#[derive(Clone)]
pub struct HostResource(pub(crate) Arc<HostResourceDef>);

pub(crate) struct HostResourceDef {
    pub(crate) key: usize,
    pub(crate) name: String,
    pub(crate) dtor: Option<HostDtor>,
}

impl HostResource {
    pub(crate) fn new(name: &str, dtor: Option<HostDtor>) -> Self {
        let key = NEXT_HOST_RESOURCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HostResource(Arc::new(HostResourceDef {
            key,
            name: name.to_string(),
            dtor,
        }))
    }

    /// `own<R>`, for the host's function types.
    pub fn own(&self) -> Ty {
        Ty::Own(HOST_RESOURCE_BASE + self.0.key)
    }

    /// `borrow<R>`, for the host's function types.
    pub fn borrow(&self) -> Ty {
        Ty::Borrow(HOST_RESOURCE_BASE + self.0.key)
    }

    /// Its full name (`"interface#resource"`).
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl fmt::Debug for HostResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostResource({})", self.0.name)
    }
}

/// A closure the event loop runs later, with the store.
pub type HostTask = Box<dyn FnOnce(&mut HostCx<'_>) + Send + 'static>;

/// How a host function runs.
#[derive(Clone)]
pub enum HostFuncKind {
    /// Returns its results at once.
    Sync(Arc<SyncHostFn>),
    /// Completes a [`HostCall`], now or later.
    Async(Arc<AsyncHostFn>),
}

/// A host function with the component type it implements.
pub struct HostFunc {
    /// Its full name, for messages (`"ns:pkg/iface@1.0.0#name"`).
    pub name: String,
    /// The type the host gave it; imports are checked against it.
    pub ty: FuncTy,
    /// Its body.
    pub kind: HostFuncKind,
}

impl fmt::Debug for HostFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFunc")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .finish_non_exhaustive()
    }
}

/// A call of an asynchronous host function in flight. Completing it after
/// the guest that made it is gone (it trapped, or the call resolved) is a
/// no-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostCall {
    pub(crate) subtask: SubtaskId,
    pub(crate) generation: u64,
}

pub(crate) struct Pending {
    pub(crate) generation: u64,
    pub(crate) func: Arc<HostFunc>,
    pub(crate) on_cancel: Option<HostTask>,
}

/// What a finished host copy reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyDone {
    /// COMPLETED (possibly partial, for a stream), DROPPED (the guest's end
    /// is gone) or CANCELLED.
    pub result: CopyResult,
    /// How many elements moved.
    pub progress: u32,
}

pub(crate) type ReadDone = Box<dyn FnOnce(&mut HostCx<'_>, Vec<Val>, CopyDone) + Send + 'static>;
pub(crate) type WriteDone = Box<dyn FnOnce(&mut HostCx<'_>, CopyDone) + Send + 'static>;

pub(crate) enum HostOp {
    Read { buf: Vec<Val>, done: ReadDone },
    Write { vals: Vec<Val>, done: WriteDone },
}

/// The host's state in a store: calls in flight, timers, host ends.
pub(crate) struct HostState {
    pub(crate) pending: IdMap<SubtaskId, Pending>,
    pub(crate) generation: u64,
    pub(crate) clock: Clock,
    pub(crate) timers: Timers<HostTask>,
    pub(crate) ready: VecDeque<HostTask>,
    pub(crate) ops: IdMap<SharedId, HostOp>,
    /// A buffer reused for the host ends the core reports events on.
    pub(crate) ended: Vec<SharedId>,
    /// The store's resource types for the host's, by host resource key.
    pub(crate) resources: HashMap<usize, ResId>,
    /// The core instance that host resource types belong to.
    pub(crate) instance: Option<canon_async::InstanceId>,
    /// Closures sent from other threads ([`Remote`]).
    pub(crate) remote_tx: std::sync::mpsc::Sender<HostTask>,
    pub(crate) remote_rx: std::sync::mpsc::Receiver<HostTask>,
    /// One clone per live [`Remote`]: while any is alive, an idle event
    /// loop waits for what it sends instead of reporting a deadlock.
    pub(crate) remote_holds: Arc<()>,
}

/// A handle to send host work to a store's event loop from anywhere (another
/// thread, an I/O completion, a channel): [`Remote::run`] queues a closure
/// that runs on the loop with the store at hand. While a `Remote` is
/// alive, an idle event loop waits for it instead of reporting a deadlock;
/// drop it when no more work will come.
#[derive(Clone)]
pub struct Remote {
    pub(crate) tx: std::sync::mpsc::Sender<HostTask>,
    /// This `Remote`'s share of `remote_holds` (taken when it drops).
    pub(crate) hold: Option<Arc<()>>,
}

impl Remote {
    /// Queues `f` to run on the store's event loop; `false` when the store
    /// is gone.
    pub fn run(&self, f: impl FnOnce(&mut HostCx<'_>) + Send + 'static) -> bool {
        self.tx.send(Box::new(f)).is_ok()
    }
}

/// Dropping a `Remote` wakes an event loop that is waiting for one (with a
/// closure that does nothing), so that it counts the live `Remote`s again
/// and returns once none is left, rather than waiting on a channel the
/// store itself keeps open.
impl Drop for Remote {
    fn drop(&mut self) {
        // The share goes first: the woken loop must already count one less.
        drop(self.hold.take());
        let _ = self.tx.send(Box::new(|_| {}));
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Remote")
    }
}

impl HostState {
    pub(crate) fn new(clock: ClockKind) -> Self {
        let (remote_tx, remote_rx) = std::sync::mpsc::channel();
        HostState {
            pending: IdMap::default(),
            generation: 0,
            clock: Clock::new(clock),
            timers: Timers::default(),
            ready: VecDeque::new(),
            ops: IdMap::default(),
            ended: Vec::new(),
            resources: HashMap::new(),
            instance: None,
            remote_tx,
            remote_rx,
            remote_holds: Arc::new(()),
        }
    }
}

/// The store, as host code sees it while it runs.
pub struct HostCx<'a> {
    pub(crate) store: wasmi::StoreContextMut<'a, Rt>,
}

impl From<canon_async::HostCopyDone> for CopyDone {
    fn from(d: canon_async::HostCopyDone) -> Self {
        CopyDone {
            result: d.result,
            progress: d.progress,
        }
    }
}
