//! `ComponentInstance.may_enter`: the reentrance rule of the pinned spec.
//! Every instance on the current call chain is non-enterable, from
//! `enter_from` (`Store.lift`, `Store.tick`, `Task.request_cancellation`)
//! to the matching `leave_to`. Here an entry is left when the frame that
//! the entering resume returns to is popped.

use smallvec::SmallVec;

use crate::ids::InstanceId;
use crate::store::Store;

/// One `enter_from` not yet matched by its `leave_to`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entered {
    /// `frames.len()` right after the frame that ends the entry was pushed.
    pub depth: usize,
    pub callee: InstanceId,
    pub caller: Option<InstanceId>,
}

impl Store {
    /// `ComponentInstance.entering_set`: `inst` and its ancestors, minus
    /// `caller` and its ancestors.
    pub(crate) fn entering_set(
        &self,
        inst: InstanceId,
        caller: Option<InstanceId>,
    ) -> SmallVec<[InstanceId; 4]> {
        let mut set = SmallVec::new();
        let mut x = Some(inst);
        while let Some(i) = x {
            if !caller.is_some_and(|c| self.is_ancestor_or_self(i, c)) {
                set.push(i);
            }
            x = self.instances.get(i.key()).and_then(|n| n.parent);
        }
        set
    }

    /// `ComponentInstance.may_enter_from`.
    pub(crate) fn may_enter_from(&self, inst: InstanceId, caller: Option<InstanceId>) -> bool {
        self.entering_set(inst, caller)
            .iter()
            .all(|&i| self.instances.get(i.key()).is_some_and(|x| x.may_enter))
    }

    /// `ComponentInstance.enter_from`, ended when the frame on top of the
    /// stack now is popped.
    pub(crate) fn enter_from(&mut self, inst: InstanceId, caller: Option<InstanceId>) {
        for i in self.entering_set(inst, caller) {
            if let Some(x) = self.instances.get_mut(i.key()) {
                debug_assert!(x.may_enter);
                x.may_enter = false;
            }
        }
        self.entered.push(Entered {
            depth: self.sched.depth(),
            callee: inst,
            caller,
        });
    }

    /// `ComponentInstance.leave_to` of every entry whose frame was popped
    /// (all of them once a trap cleared the stack).
    pub(crate) fn leave_popped(&mut self) {
        while let Some(&e) = self.entered.last() {
            if e.depth <= self.sched.depth() {
                break;
            }
            self.entered.pop();
            for i in self.entering_set(e.callee, e.caller) {
                if let Some(x) = self.instances.get_mut(i.key()) {
                    debug_assert!(!x.may_enter);
                    x.may_enter = true;
                }
            }
        }
    }
}
