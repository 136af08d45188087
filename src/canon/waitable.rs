//! `waitable-set.new/wait/poll/drop` and `waitable.join`.

use crate::ids::{InstanceId, SetId, WaitableId};
use crate::instance::Handle;
use crate::running::{Cur, Running};
use crate::store::{Reading, Step, Store};
use crate::thread::{Blocked, Resume, WaitCond};
use crate::trap::{trap_if, Trap};
use crate::waitable::{Event, WaitableSet};

impl Store {
    /// The waitable set at handle `i` of `inst`.
    pub(crate) fn set_at(&self, inst: InstanceId, i: u32) -> Result<SetId, Trap> {
        match self.inst(inst).handles.get(i)? {
            Handle::Set(s) => Ok(*s),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// The waitable at handle `i` of `inst`.
    pub(crate) fn waitable_at(&self, inst: InstanceId, i: u32) -> Result<WaitableId, Trap> {
        match self.inst(inst).handles.get(i)? {
            Handle::Waitable(w) => Ok(*w),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    fn waitable_set_wait_inner(
        &mut self,
        (t, _, inst): Cur,
        cancellable: bool,
        si: u32,
        ptr: u32,
    ) -> Result<Step<Event>, Trap> {
        let set = self.set_at(inst, si)?;
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
}

impl Running<'_> {
    /// `canon waitable-set.new`.
    pub fn waitable_set_new(self) -> Result<u32, Trap> {
        self.leave(|s, (_, _, inst)| {
            let set = SetId::from_key(s.sets.insert(WaitableSet::default()));
            let i = s.inst_mut(inst).handles.add(Handle::Set(set));
            if i.is_err() {
                s.sets.remove(set.key());
            }
            i
        })
    }

    /// `canon waitable-set.wait`: the next event of set `si`; blocks until
    /// there is one. The embedder stores [`Event::payload_bytes`] at `ptr`
    /// and returns the code (on resume, [`ResumeValue::Event`](crate::ResumeValue::Event) carries `ptr`).
    pub fn waitable_set_wait(
        self,
        cancellable: bool,
        si: u32,
        ptr: u32,
    ) -> Result<Step<Event>, Trap> {
        self.leave_blocking(true, |s, cur| {
            s.waitable_set_wait_inner(cur, cancellable, si, ptr)
        })
    }

    /// `canon waitable-set.poll`: the next event of set `si`, or NONE; never blocks.
    pub fn waitable_set_poll(self, cancellable: bool, si: u32) -> Result<Event, Trap> {
        self.leave(|s, (_, task, inst)| {
            let set = s.set_at(inst, si)?;
            Ok(if s.task_mut(task).deliver_pending_cancel(cancellable) {
                Event::TASK_CANCELLED
            } else if s.sets[set.key()].num_pending == 0 {
                Event::NONE
            } else {
                s.set_get_pending_event(set)
            })
        })
    }

    /// `canon waitable-set.drop`.
    pub fn waitable_set_drop(self, i: u32) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let set = s.set_at(inst, i)?;
            let ws = &s.sets[set.key()];
            trap_if(ws.num_members != 0, Trap::SetNotEmpty)?;
            trap_if(ws.num_waiting > 0, Trap::SetHasWaiters)?;
            s.inst_mut(inst).handles.remove(i)?;
            s.sets.remove(set.key());
            Ok(())
        })
    }

    /// `canon waitable.join`: moves waitable `wi` into set `si`, or out of
    /// any set when `si` is 0.
    pub fn waitable_join(self, wi: u32, si: u32) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let w = s.waitable_at(inst, wi)?;
            trap_if(s.w(w).has_sync_waiter, Trap::JoinWithSyncWaiter)?;
            let set = if si == 0 {
                None
            } else {
                Some(s.set_at(inst, si)?)
            };
            s.join(w, set);
            Ok(())
        })
    }
}
