//! `resource.new`, `resource.drop`, `resource.rep`.

use crate::ids::{InstanceId, ResourceTypeId};
use crate::instance::ResourceHandle;
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

    /// `canon resource.new`: a new owned handle to `rep`.
    pub fn resource_new(&mut self, rt: ResourceTypeId, rep: u32) -> Result<u32, Trap> {
        let r = self
            .leaving()
            .and_then(|(_, _, inst)| self.lower_own(inst, rt, rep));
        self.guard(r)
    }

    /// `canon resource.drop`: `Some` when an owned handle was dropped and
    /// the embedder must run the destructor.
    pub fn resource_drop(
        &mut self,
        rt: ResourceTypeId,
        i: u32,
    ) -> Result<Option<ResourceDrop>, Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let h = self.resource_at(inst, rt, i)?;
            trap_if(h.num_lends != 0, Trap::ResourceBorrowed)?;
            let (own, rep, scope) = (h.own, h.rep, h.borrow_scope());
            self.inst_mut(inst).remove_resource(i)?;
            if own {
                Ok(Some(ResourceDrop {
                    rt,
                    rep,
                    impl_inst: self.resource_types[rt.0 as usize],
                }))
            } else {
                if let Some(task) = scope {
                    if let Some(t) = self.tasks.get_mut(task.key()) {
                        t.num_borrows -= 1;
                    }
                }
                Ok(None)
            }
        });
        self.guard(r)
    }

    /// `canon resource.rep` (not guarded by `may_leave`).
    pub fn resource_rep(&mut self, rt: ResourceTypeId, i: u32) -> Result<u32, Trap> {
        let r = self
            .running()
            .and_then(|(_, _, inst)| self.resource_at(inst, rt, i).map(|h| h.rep));
        self.guard(r)
    }
}
