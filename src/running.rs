//! [`Running`]: the running thread, checked once, as the receiver of
//! every guest built-in.
//!
//! The embedder calls a built-in as `store.running()?.waitable_set_wait(..)`:
//! [`Store::running`] fails with [`EmbedderError::NoRunningThread`] when no
//! thread runs (a misuse that changes nothing), and otherwise names the
//! thread, its task and its instance once for the built-in. Each built-in
//! takes the view by value: it may switch threads or trap, so a view never
//! outlives the one built-in it was made for. The built-ins themselves are
//! written in their concept's file under `canon/`.

use crate::error::EmbedderError;
use crate::ids::{InstanceId, TaskId, ThreadId};
use crate::store::Store;
use crate::trap::{trap_if, Trap};

/// The running thread, its task and its instance: what `definitions.py`
/// passes every built-in as `thread`. Made by [`Store::running`], used up
/// by one built-in.
#[derive(Debug)]
pub struct Running<'a> {
    pub(crate) store: &'a mut Store,
    pub(crate) thread: ThreadId,
    pub(crate) task: TaskId,
    pub(crate) inst: InstanceId,
}

/// The running thread, its task and its instance, as a built-in's body
/// receives them.
pub(crate) type Cur = (ThreadId, TaskId, InstanceId);

impl Store {
    /// The running thread (the one the last [`Action`](crate::Action)
    /// started or resumed), for one built-in.
    pub fn running(&mut self) -> Result<Running<'_>, EmbedderError> {
        let thread = self.sched.current().ok_or(EmbedderError::NoRunningThread)?;
        let th = self
            .threads
            .get(thread.key())
            .ok_or(EmbedderError::NoRunningThread)?;
        let (task, inst) = (th.task, th.inst);
        Ok(Running {
            store: self,
            thread,
            task,
            inst,
        })
    }
}

impl Running<'_> {
    /// The running thread.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// The running thread's task.
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// The running thread's instance.
    pub fn instance(&self) -> InstanceId {
        self.inst
    }

    pub(crate) fn cur(&self) -> Cur {
        (self.thread, self.task, self.inst)
    }

    /// A built-in not guarded by `may_leave`: a trap aborts the call
    /// before it is returned.
    #[inline]
    pub(crate) fn run<T>(
        self,
        f: impl FnOnce(&mut Store, Cur) -> Result<T, Trap>,
    ) -> Result<T, Trap> {
        let cur = self.cur();
        let r = f(self.store, cur);
        self.store.guard(r)
    }

    /// A built-in guarded by `may_leave` (`trap_if(not
    /// thread.task.inst.may_leave)`): [`Running::run`] after the check.
    #[inline]
    pub(crate) fn leave<T>(
        self,
        f: impl FnOnce(&mut Store, Cur) -> Result<T, Trap>,
    ) -> Result<T, Trap> {
        self.leave_blocking(false, f)
    }

    /// [`Running::leave`], then the check of a built-in that may block
    /// (`blocks`) in a synchronous task (`Store::may_block_check`).
    #[inline]
    pub(crate) fn leave_blocking<T>(
        self,
        blocks: bool,
        f: impl FnOnce(&mut Store, Cur) -> Result<T, Trap>,
    ) -> Result<T, Trap> {
        self.run(|s, cur| {
            trap_if(!s.inst(cur.2).may_leave, Trap::CannotLeave)?;
            s.may_block_check(cur.1, blocks)?;
            f(s, cur)
        })
    }
}
