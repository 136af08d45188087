//! `ComponentInstance.may_enter`: the reentrance rule of the pinned spec.
//! Every instance on the current call chain is non-enterable, from
//! `enter_from` (`Store.lift`, `Store.tick`, `Task.request_cancellation`)
//! to the matching `leave_to`. Here an entry is left when the frame that
//! the entering resume returns to is popped.

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
    #[cfg(feature = "check")]
    pub(crate) fn entering_set(
        &self,
        inst: InstanceId,
        caller: Option<InstanceId>,
    ) -> smallvec::SmallVec<[InstanceId; 4]> {
        let mut set = smallvec::SmallVec::new();
        let mut x = Some(inst);
        while let Some(i) = x {
            if !caller.is_some_and(|c| self.is_ancestor_or_self(i, c)) {
                set.push(i);
            }
            x = self.instances.get(i.key()).and_then(|n| n.parent);
        }
        set
    }

    /// `ComponentInstance.may_enter_from` (walks the entering set in place,
    /// without collecting it).
    pub(crate) fn may_enter_from(&self, inst: InstanceId, caller: Option<InstanceId>) -> bool {
        let mut x = Some(inst);
        while let Some(i) = x {
            let node = self.instances.get(i.key());
            let entering = !caller.is_some_and(|c| self.is_ancestor_or_self(i, c));
            if entering && !node.is_some_and(|n| n.may_enter) {
                return false;
            }
            x = node.and_then(|n| n.parent);
        }
        true
    }

    /// Sets `may_enter` of every instance of `entering_set(inst, caller)`
    /// to `value` (walked in place, without collecting the set).
    fn set_may_enter(&mut self, inst: InstanceId, caller: Option<InstanceId>, value: bool) {
        // The common case first: a top-level instance entered from the host
        // or from another top-level instance is the whole entering set.
        let top_level =
            |s: &Self, i: InstanceId| s.instances.get(i.key()).is_some_and(|n| n.parent.is_none());
        if top_level(self, inst) && caller.is_none_or(|c| c != inst && top_level(self, c)) {
            let n = &mut self.instances[inst.key()];
            debug_assert_eq!(n.may_enter, !value);
            n.may_enter = value;
            return;
        }
        let mut x = Some(inst);
        while let Some(i) = x {
            let entering = !caller.is_some_and(|c| self.is_ancestor_or_self(i, c));
            let Some(n) = self.instances.get_mut(i.key()) else {
                break;
            };
            if entering {
                debug_assert_eq!(n.may_enter, !value);
                n.may_enter = value;
            }
            x = n.parent;
        }
    }

    /// `ComponentInstance.enter_from`, ended when the frame on top of the
    /// stack now is popped.
    pub(crate) fn enter_from(&mut self, inst: InstanceId, caller: Option<InstanceId>) {
        self.set_may_enter(inst, caller, false);
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
            self.set_may_enter(e.callee, e.caller, true);
        }
    }
}
