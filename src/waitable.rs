//! `Waitable`, `WaitableSet` and events.

use crate::chooser::ChoicePoint;
use crate::copy::CopyEnd;
use crate::ids::{InstanceId, SetId, ThreadId, WaitableId};
use crate::store::Store;
use crate::subtask::Subtask;
use crate::thread::{Blocked, Resume, WaitCond};
use crate::wait_queue::Key;

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

/// `Waitable::set` of a waitable in no set (set keys stay far below it).
const NO_SET: u32 = u32::MAX;

/// The spec's `Waitable` with its subclass payload.
#[derive(Debug)]
pub(crate) struct Waitable {
    pub inst: InstanceId,
    /// The handle index in `inst.handles`, 0 when it has none.
    pub index: u32,
    pub pending: Option<Pending>,
    /// `Waitable.wset`, without an `Option` (`NO_SET` when none: 8 bytes
    /// less per waitable); see [`Waitable::wset`].
    set: u32,
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
            set: NO_SET,
            has_sync_waiter: false,
            kind,
        }
    }

    /// `Waitable.wset`: the set it is a member of.
    #[inline]
    pub fn wset(&self) -> Option<SetId> {
        (self.set != NO_SET).then_some(SetId(self.set))
    }

    /// Sets `Waitable.wset`.
    #[inline]
    fn set_wset(&mut self, s: Option<SetId>) {
        self.set = s.map_or(NO_SET, |s| s.0);
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

/// The spec's `WaitableSet`. Its `elems` are not kept as a list: each
/// member names its set (`Waitable.wset`), the members with a pending
/// event are in `Store::set_events` in join order, and the set itself
/// only counts its members (12 bytes: path 7 of the benchmarks; leaving a
/// set of 100,000 members is O(1)).
#[derive(Debug, Default)]
pub(crate) struct WaitableSet {
    /// `len(elems)`.
    pub num_members: u32,
    pub num_waiting: u32,
    /// How many members have a pending event (kept so that readiness is O(1)).
    pub num_pending: u32,
}

impl Store {
    /// `Waitable.set_pending_event`, keeping the set's pending count.
    pub(crate) fn set_pending(&mut self, w: WaitableId, p: Option<Pending>) {
        let wt = self.w_mut(w);
        let had = wt.pending.is_some();
        wt.pending = p;
        let has = p.is_some();
        if let Some(s) = wt.wset() {
            let set = &mut self.sets[s.key()];
            match (had, has) {
                (false, true) => {
                    set.num_pending += 1;
                    self.set_events.add(s, w);
                }
                (true, false) => {
                    set.num_pending -= 1;
                    self.set_events.remove(s, w);
                }
                _ => {}
            }
            if !had && has {
                self.waiting.notify(Key::Set(s));
            }
        }
        if !had && has {
            self.waiting.notify(Key::Waitable(w));
        }
    }

    /// `Waitable.join`.
    pub(crate) fn join(&mut self, w: WaitableId, set: Option<SetId>) {
        let (old, pending) = {
            let wt = self.w(w);
            (wt.wset(), wt.pending.is_some())
        };
        if let Some(o) = old {
            let s = &mut self.sets[o.key()];
            s.num_members -= 1;
            if pending {
                s.num_pending -= 1;
                self.set_events.remove(o, w);
            }
        }
        self.w_mut(w).set_wset(set);
        if let Some(n) = set {
            let s = &mut self.sets[n.key()];
            s.num_members += 1;
            self.set_events.joined(w);
            if pending {
                s.num_pending += 1;
                self.set_events.add(n, w);
                self.waiting.notify(Key::Set(n));
            }
        }
    }

    /// `Waitable.get_pending_event`: takes the pending event and computes it.
    pub(crate) fn get_pending_event(&mut self, w: WaitableId) -> Event {
        let p = self.w(w).pending.expect("pending event");
        self.set_pending(w, None);
        let index = self.w(w).index;
        match p {
            Pending::Subtask => {
                let s = self.sub(w);
                let state = s.state;
                if state.resolved() && !s.resolve_delivered() {
                    self.deliver_resolve(w);
                }
                Event {
                    code: EventCode::Subtask,
                    index,
                    payload: state as u32,
                }
            }
            Pending::Copy(result, reclaim) => self.copy_event(w, result, reclaim),
        }
    }

    /// `WaitableSet.get_pending_event`: the chooser picks among the members
    /// with an event, in join order.
    pub(crate) fn set_get_pending_event(&mut self, s: SetId) -> Event {
        let set = &self.sets[s.key()];
        debug_assert!(set.num_pending > 0);
        let n = set.num_pending as usize;
        let k = self.choose(ChoicePoint::SetEvent, n);
        let w = self.set_events.nth(s, k).expect("member with an event");
        self.get_pending_event(w)
    }

    /// `Waitable.wait_for_pending_event` (non-cancellable): `None` when the
    /// thread blocked, `Some(())` when the event is already there.
    pub(crate) fn wait_for_pending_event(&mut self, t: ThreadId, w: WaitableId) -> Option<()> {
        debug_assert!(self.w(w).wset().is_none() && !self.w(w).has_sync_waiter);
        self.w_mut(w).has_sync_waiter = true;
        let r = self.wait_until(
            t,
            WaitCond::PendingEvent(w),
            false,
            Resume::Wasm(Blocked::SyncEvent { waitable: w }),
        );
        if r.is_some() {
            self.w_mut(w).has_sync_waiter = false;
        }
        r.map(|_| ())
    }

    /// `Waitable.drop`: leaves its set; the object is freed.
    pub(crate) fn drop_waitable(&mut self, w: WaitableId) {
        debug_assert!(self.w(w).pending.is_none() && !self.w(w).has_sync_waiter);
        self.join(w, None);
        self.waitables.remove(w.key());
    }
}
