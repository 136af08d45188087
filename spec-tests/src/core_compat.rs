//! The few core calls this runtime needs that are still landing in the
//! core: synchronous calls made by the embedder (start functions,
//! `realloc`, destructors) and child instances.
//!
//! With the `core-sync-calls` feature they call the core's
//! `begin_sync_call`/`end_sync_call`, `begin_realloc`/`end_realloc` and
//! `new_child_instance`. Without it (the default until those land in the
//! core's main branch) a start function or destructor runs with no thread
//! of its own (its built-ins then trap), `realloc` toggles `may_leave` of
//! the running thread's instance, and nested instances are not linked to
//! their parent.

use canon_async::{InstanceId, Store, Trap};

/// Starts a synchronous call into `inst` made by the embedder.
pub fn begin_sync_call(core: &mut Store, inst: InstanceId) -> Result<(), Trap> {
    #[cfg(feature = "core-sync-calls")]
    {
        core.begin_sync_call(inst).map(|_| ())
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        let _ = (core, inst);
        Ok(())
    }
}

/// Ends the call begun with [`begin_sync_call`].
pub fn end_sync_call(core: &mut Store) -> Result<(), Trap> {
    #[cfg(feature = "core-sync-calls")]
    {
        core.end_sync_call()
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        let _ = core;
        Ok(())
    }
}

/// Starts a `realloc` call into `inst` (`may_leave` off while it runs).
pub fn begin_realloc(core: &mut Store, inst: InstanceId) -> Result<(), Trap> {
    #[cfg(feature = "core-sync-calls")]
    {
        core.begin_realloc(inst).map(|_| ())
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        let _ = inst;
        core.set_may_leave(false);
        Ok(())
    }
}

/// Ends the call begun with [`begin_realloc`].
pub fn end_realloc(core: &mut Store) -> Result<(), Trap> {
    #[cfg(feature = "core-sync-calls")]
    {
        core.end_realloc()
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        core.set_may_leave(true);
        Ok(())
    }
}

/// Creates a component instance, nested in `parent` if any.
pub fn new_instance(core: &mut Store, parent: Option<InstanceId>) -> InstanceId {
    #[cfg(feature = "core-sync-calls")]
    {
        match parent {
            Some(p) => core.new_child_instance(p),
            None => core.new_instance(),
        }
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        let _ = parent;
        core.new_instance()
    }
}

/// The trap of a `thread.new-indirect` whose table element is null or of
/// the wrong type.
pub fn thread_new_indirect_invalid(core: &mut Store) -> Trap {
    #[cfg(feature = "core-sync-calls")]
    {
        core.thread_new_indirect_invalid()
    }
    #[cfg(not(feature = "core-sync-calls"))]
    {
        let _ = core;
        Trap::BadFunctionReference
    }
}
