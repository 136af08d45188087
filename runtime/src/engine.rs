//! wasmi glue: the engine configuration and the store's runtime state,
//! which owns the `canon-async` core store.

use std::collections::HashMap;
use std::sync::Arc;

use canon_async::{InstanceId, ResourceTypeId, SubtaskId, TaskId};

use crate::abi::types::{ResId, Ty};
use crate::abi::val::Val;
use crate::canon::{Lifted, LowerDef, Opts};

/// A component instance id: the core's instance id.
pub type InstId = InstanceId;

/// Fuel given to each directive, so that a runaway loop becomes a trap.
pub const FUEL_PER_DIRECTIVE: u64 = 10_000_000;

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
    pub host_dtor: Option<crate::host::HostDtor>,
}

/// A guest-to-guest call in flight, keyed by the core's subtask id.
pub struct CallRec {
    /// How the caller lowered the callee.
    pub def: Arc<LowerDef>,
    /// The caller's flat arguments (lifted when the callee starts).
    pub flat_args: Vec<crate::abi::val::Flat>,
    /// The results, once delivered (synchronous lowers).
    pub results: Option<Vec<Val>>,
}

/// A host call of a lifted function, keyed by the core's task id.
pub struct HostCall {
    pub args: Vec<Val>,
    pub results: Option<Vec<Val>>,
}

/// How a suspended built-in turns the core's resume value into results.
#[derive(Debug, Clone)]
pub enum Park {
    /// The built-in returns the resume value as one i32 (or nothing).
    I32 { has_result: bool },
    /// `waitable-set.wait`: store the event at the pointer, return its code.
    Event { memory: Option<wasmi::Memory> },
    /// A synchronous lower: lower the callee's results into the caller.
    SyncLower { subtask: SubtaskId },
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
    pub thread_funcs: Vec<wasmi::Func>,
    /// The canonical options of the stream and future read and write
    /// built-ins, by the id their buffers carry as memory id.
    pub copy_opts: Vec<Opts>,
    /// Element types of streams and futures, by the core's `ElemType::id`.
    pub elem_types: Vec<Option<Ty>>,
    /// Debug messages of error-contexts, by id.
    pub error_messages: Vec<String>,
    /// Guest-to-guest calls in flight.
    pub calls: HashMap<SubtaskId, CallRec>,
    /// Host calls in flight.
    pub host_calls: HashMap<TaskId, HostCall>,
    /// Host calls whose results were delivered since the embedder last
    /// looked (a task's id is reused once it exits).
    pub delivered: Vec<TaskId>,
    /// Set by a built-in that suspended its thread.
    pub suspend: Option<Park>,
    /// Depth of synchronous helper calls (realloc, post-return, ...) that
    /// run nested inside a host function and so cannot suspend.
    pub nested: u32,
    /// Host calls in flight, timers and host stream/future ends.
    pub(crate) host: crate::host::HostState,
    /// The budget of one lift, in bytes of host memory: call arguments,
    /// results, a `task.return` or one stream or future copy that would
    /// materialise more traps instead (see
    /// [`LiftBudget`](crate::abi::lift::LiftBudget)).
    /// [`DEFAULT_MAX_LIFT_BYTES`] unless set with
    /// [`Rt::set_max_lift_bytes`].
    pub max_lift_bytes: u64,
}

impl Rt {
    fn new() -> Self {
        Rt {
            core: canon_async::Store::new(),
            resources: Vec::new(),
            lifted: Vec::new(),
            thread_funcs: Vec::new(),
            copy_opts: Vec::new(),
            elem_types: Vec::new(),
            error_messages: Vec::new(),
            calls: HashMap::new(),
            host_calls: HashMap::new(),
            delivered: Vec::new(),
            suspend: None,
            nested: 0,
            host: crate::host::HostState::new(crate::clock::ClockKind::Real),
            max_lift_bytes: DEFAULT_MAX_LIFT_BYTES,
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
        if let Some(i) = self.elem_types.iter().position(|x| x == t) {
            return i as u32;
        }
        self.elem_types.push(t.clone());
        (self.elem_types.len() - 1) as u32
    }
}

/// Creates the engine used for one `.wast` file.
pub fn new_engine() -> wasmi::Engine {
    let mut config = wasmi::Config::default();
    config.consume_fuel(true);
    wasmi::Engine::new(&config)
}

/// Creates a store with fresh runtime state.
pub fn new_store(engine: &wasmi::Engine) -> wasmi::Store<Rt> {
    wasmi::Store::new(engine, Rt::new())
}
