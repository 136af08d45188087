//! `waitable-set.new/wait/poll/drop` and `waitable.join`.

use crate::ids::{SetId, WaitableId};
use crate::instance::Handle;
use crate::store::{Reading, Step, Store};
use crate::thread::{Blocked, Resume, WaitCond};
use crate::trap::{trap_if, Trap};
use crate::waitable::{Event, WaitableSet};

impl Store {
    pub(crate) fn set_at(&self, i: u32) -> Result<SetId, Trap> {
        let (_, _, inst) = self.running()?;
        match self.inst(inst).handles.get(i)? {
            Handle::Set(s) => Ok(*s),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    pub(crate) fn waitable_at(&self, i: u32) -> Result<WaitableId, Trap> {
        let (_, _, inst) = self.running()?;
        match self.inst(inst).handles.get(i)? {
            Handle::Waitable(w) => Ok(*w),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// `canon waitable-set.new`.
    pub fn waitable_set_new(&mut self) -> Result<u32, Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let s = SetId::from_key(self.sets.insert(WaitableSet::default()));
            let i = self.inst_mut(inst).handles.add(Handle::Set(s));
            if i.is_err() {
                self.sets.remove(s.key());
            }
            i
        });
        self.guard(r)
    }

    /// `canon waitable-set.wait`: the next event of set `si`; blocks until
    /// there is one. The embedder stores [`Event::payload_bytes`] at `ptr`
    /// and returns the code (on resume, [`ResumeValue::Event`](crate::ResumeValue::Event) carries `ptr`).
    pub fn waitable_set_wait(
        &mut self,
        cancellable: bool,
        si: u32,
        ptr: u32,
    ) -> Result<Step<Event>, Trap> {
        let r = self.waitable_set_wait_inner(cancellable, si, ptr);
        self.guard(r)
    }

    fn waitable_set_wait_inner(
        &mut self,
        cancellable: bool,
        si: u32,
        ptr: u32,
    ) -> Result<Step<Event>, Trap> {
        let (t, _, _) = self.leaving_blocking(true)?;
        let set = self.set_at(si)?;
        self.sets[set.key()].num_waiting += 1;
        let now = self.reading == Reading::Suite;
        match self.wait_until_or_now(
            t,
            WaitCond::SetEvent(set, None),
            cancellable,
            Resume::Wasm(Blocked::Wait { set, ptr }),
            now,
        ) {
            None => Ok(Step::Suspend),
            Some(cancelled) => {
                self.sets[set.key()].num_waiting -= 1;
                Ok(Step::Done(if cancelled {
                    Event::TASK_CANCELLED
                } else {
                    self.set_get_pending_event(set)
                }))
            }
        }
    }

    /// `canon waitable-set.poll`: the next event of set `si`, or NONE; never blocks.
    pub fn waitable_set_poll(&mut self, cancellable: bool, si: u32) -> Result<Event, Trap> {
        let r = self.leaving().and_then(|(_, task, _)| {
            let set = self.set_at(si)?;
            Ok(if self.task_mut(task).deliver_pending_cancel(cancellable) {
                Event::TASK_CANCELLED
            } else if self.sets[set.key()].num_pending == 0 {
                Event::NONE
            } else {
                self.set_get_pending_event(set)
            })
        });
        self.guard(r)
    }

    /// `canon waitable-set.drop`.
    pub fn waitable_set_drop(&mut self, i: u32) -> Result<(), Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let set = self.set_at(i)?;
            let s = &self.sets[set.key()];
            trap_if(s.num_members != 0, Trap::SetNotEmpty)?;
            trap_if(s.num_waiting > 0, Trap::SetHasWaiters)?;
            self.inst_mut(inst).handles.remove(i)?;
            self.sets.remove(set.key());
            Ok(())
        });
        self.guard(r)
    }

    /// `canon waitable.join`: moves waitable `wi` into set `si`, or out of
    /// any set when `si` is 0.
    pub fn waitable_join(&mut self, wi: u32, si: u32) -> Result<(), Trap> {
        let r = self.leaving().and_then(|_| {
            let w = self.waitable_at(wi)?;
            trap_if(self.w(w).has_sync_waiter, Trap::JoinWithSyncWaiter)?;
            let set = if si == 0 {
                None
            } else {
                Some(self.set_at(si)?)
            };
            self.join(w, set);
            Ok(())
        });
        self.guard(r)
    }
}
