//! `resource.new`, `resource.drop`, `resource.rep`.

use crate::ids::{InstanceId, ResourceTypeId};
use crate::instance::ResourceHandle;
use crate::running::Running;
use crate::store::Store;
use crate::trap::{trap_if, Trap};

/// An owned resource was dropped: the embedder runs the destructor of
/// `rt` (if it has one) on `rep`, as a synchronous call into `impl_inst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceDrop {
    /// The resource type.
    pub rt: ResourceTypeId,
    /// The representation to pass to the destructor.
    pub rep: u32,
    /// The instance that implements the resource type.
    pub impl_inst: InstanceId,
}

impl Store {
    /// The resource handle at `i` of `inst`, checked against `rt`.
    pub(crate) fn resource_at(
        &self,
        inst: InstanceId,
        rt: ResourceTypeId,
        i: u32,
    ) -> Result<&ResourceHandle, Trap> {
        match self.inst(inst).resource(i)? {
            h if h.rt == rt => Ok(h),
            _ => Err(Trap::WrongResourceType(i)),
        }
    }
}

impl Running<'_> {
    /// `canon resource.new`: a new owned handle to `rep`.
    pub fn resource_new(self, rt: ResourceTypeId, rep: u32) -> Result<u32, Trap> {
        self.leave(|s, (_, _, inst)| s.lower_own(inst, rt, rep))
    }

    /// `canon resource.drop`: `Some` when an owned handle was dropped and
    /// the embedder must run the destructor.
    pub fn resource_drop(self, rt: ResourceTypeId, i: u32) -> Result<Option<ResourceDrop>, Trap> {
        self.leave(|s, (_, _, inst)| {
            let h = s.resource_at(inst, rt, i)?;
            trap_if(h.num_lends != 0, Trap::ResourceBorrowed)?;
            let (own, rep, scope) = (h.own, h.rep, h.borrow_scope());
            s.inst_mut(inst).remove_resource(i)?;
            if own {
                Ok(Some(ResourceDrop {
                    rt,
                    rep,
                    impl_inst: s.resource_types[rt.0 as usize],
                }))
            } else {
                if let Some(task) = scope {
                    if let Some(t) = s.tasks.get_mut(task.key()) {
                        t.num_borrows -= 1;
                    }
                }
                Ok(None)
            }
        })
    }

    /// `canon resource.rep` (not guarded by `may_leave`).
    pub fn resource_rep(self, rt: ResourceTypeId, i: u32) -> Result<u32, Trap> {
        self.run(|s, (_, _, inst)| s.resource_at(inst, rt, i).map(|h| h.rep))
    }
}
