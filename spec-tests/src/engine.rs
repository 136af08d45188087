//! wasmi glue: the engine configuration and the store's runtime state.

use crate::abi::types::ResId;
use crate::handles::HandleTable;

/// A component instance id: an index into [`Rt::insts`].
pub type InstId = usize;

/// Fuel given to each directive, so that a runaway loop becomes a trap.
pub const FUEL_PER_DIRECTIVE: u64 = 200_000_000;

/// Runtime state of one component instance.
#[derive(Debug, Default)]
pub struct InstState {
    /// Cleared while post-return or realloc runs.
    pub may_leave: bool,
    /// Set after a trap: later entries trap.
    pub poisoned: bool,
    /// Set while a synchronous call is inside the instance.
    pub entered: bool,
    /// Resource handles.
    pub handles: HandleTable,
}

/// A runtime resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// The instance that defined it.
    pub impl_inst: InstId,
    /// Its destructor, if any.
    pub dtor: Option<wasmi::Func>,
}

/// A call in progress (a synchronous task).
#[derive(Debug, Clone)]
pub struct TaskRec {
    pub inst: InstId,
    pub num_borrows: u32,
}

/// The data of the wasmi store.
#[derive(Debug, Default)]
pub struct Rt {
    pub insts: Vec<InstState>,
    pub resources: Vec<ResourceType>,
    pub tasks: Vec<TaskRec>,
}

impl Rt {
    /// Registers a new component instance.
    pub fn new_instance(&mut self) -> InstId {
        self.insts.push(InstState {
            may_leave: true,
            ..InstState::default()
        });
        self.insts.len() - 1
    }

    /// Registers a new resource type.
    pub fn new_resource(&mut self, impl_inst: InstId, dtor: Option<wasmi::Func>) -> ResId {
        self.resources.push(ResourceType { impl_inst, dtor });
        self.resources.len() - 1
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
    wasmi::Store::new(engine, Rt::default())
}
