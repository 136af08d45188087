//! `Waitable`, `WaitableSet`, `Subtask` and events.

use alloc::boxed::Box;
use smallvec::SmallVec;

use crate::copy::CopyEnd;
use crate::ids::{InstanceId, SetId, TaskId};

/// `EventCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventCode {
    /// No event (a `YIELD` resumed, or `poll` found nothing).
    None = 0,
    /// A subtask changed state.
    Subtask = 1,
    /// A stream read progressed.
    StreamRead = 2,
    /// A stream write progressed.
    StreamWrite = 3,
    /// A future read finished.
    FutureRead = 4,
    /// A future write finished.
    FutureWrite = 5,
    /// The task was cancelled.
    TaskCancelled = 6,
}

/// An event as the guest sees it: the code, and two payload words that
/// `waitable-set.wait/poll` store at `ptr` and `ptr + 4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// The event code.
    pub code: EventCode,
    /// The waitable's handle index (0 for NONE and TASK_CANCELLED).
    pub index: u32,
    /// The payload: a subtask state, or a packed copy result.
    pub payload: u32,
}

impl Event {
    pub(crate) const NONE: Event = Event {
        code: EventCode::None,
        index: 0,
        payload: 0,
    };
    pub(crate) const TASK_CANCELLED: Event = Event {
        code: EventCode::TaskCancelled,
        index: 0,
        payload: 0,
    };

    /// The 8 bytes `waitable-set.wait/poll` store at `ptr`: the index then
    /// the payload, each a little-endian u32.
    pub fn payload_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.index.to_le_bytes());
        b[4..].copy_from_slice(&self.payload.to_le_bytes());
        b
    }
}

/// `Subtask.State`, visible to wasm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SubtaskState {
    /// The callee has not started (backpressure).
    Starting = 0,
    /// The callee started and has not returned.
    Started = 1,
    /// The callee returned.
    Returned = 2,
    /// Cancelled before the callee started.
    CancelledBeforeStarted = 3,
    /// Cancelled after the callee started, before it returned.
    CancelledBeforeReturned = 4,
}

impl SubtaskState {
    /// `Subtask.resolved`.
    pub fn resolved(self) -> bool {
        !matches!(self, SubtaskState::Starting | SubtaskState::Started)
    }
}

/// The callee of a subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callee {
    Task(TaskId),
    Host,
    /// The callee's instance trapped: its task is gone, and the subtask
    /// never resolves (a cancellation of it stays pending).
    Gone,
}

#[derive(Debug)]
pub(crate) struct Subtask {
    pub state: SubtaskState,
    pub callee: Callee,
    /// Lent borrow handles (handle indices in the caller's instance);
    /// `None` while none is lent (boxed: lends are rare, and a pending
    /// subtask stays small).
    pub lenders: Option<Box<SmallVec<[u32; 2]>>>,
    /// `Subtask.resolve_delivered`: the lends have ended.
    pub delivered: bool,
    pub cancellation_requested: bool,
    pub async_: bool,
}

impl Subtask {
    pub fn resolve_delivered(&self) -> bool {
        self.delivered
    }
}

/// A pending event, computed at delivery (the spec's `pending_event` closures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// `subtask_event`.
    Subtask,
    /// `stream_event` / `future_event` with its copy result, and whether
    /// delivery reclaims the buffer (`reset_pending`).
    Copy(crate::copy::CopyResult, bool),
}

#[derive(Debug)]
pub(crate) enum WaitableKind {
    Subtask(Subtask),
    End(CopyEnd),
}

/// The spec's `Waitable` with its subclass payload.
#[derive(Debug)]
pub(crate) struct Waitable {
    pub inst: InstanceId,
    /// The handle index in `inst.handles`, 0 when it has none.
    pub index: u32,
    pub pending: Option<Pending>,
    pub wset: Option<SetId>,
    pub has_sync_waiter: bool,
    pub kind: WaitableKind,
}

impl Waitable {
    /// A waitable of `inst` with no handle yet, no event and no set.
    pub fn new(inst: InstanceId, kind: WaitableKind) -> Self {
        Waitable {
            inst,
            index: 0,
            pending: None,
            wset: None,
            has_sync_waiter: false,
            kind,
        }
    }

    pub fn subtask(&self) -> Option<&Subtask> {
        match &self.kind {
            WaitableKind::Subtask(s) => Some(s),
            WaitableKind::End(_) => None,
        }
    }

    pub fn subtask_mut(&mut self) -> Option<&mut Subtask> {
        match &mut self.kind {
            WaitableKind::Subtask(s) => Some(s),
            WaitableKind::End(_) => None,
        }
    }

    pub fn end(&self) -> Option<&CopyEnd> {
        match &self.kind {
            WaitableKind::End(e) => Some(e),
            WaitableKind::Subtask(_) => None,
        }
    }

    pub fn end_mut(&mut self) -> Option<&mut CopyEnd> {
        match &mut self.kind {
            WaitableKind::End(e) => Some(e),
            WaitableKind::Subtask(_) => None,
        }
    }
}

/// The spec's `WaitableSet`.
#[derive(Debug, Default)]
pub(crate) struct WaitableSet {
    /// The members in join order (inline up to four: no allocation for small sets).
    pub elems: SmallVec<[crate::ids::WaitableId; 4]>,
    pub num_waiting: u32,
    /// How many members have a pending event (kept so that readiness is O(1)).
    pub num_pending: u32,
}
