//! Host ends of streams and futures: the embedder holds one end of a
//! stream or future whose other end a guest holds, and copies at its own
//! pace.
//!
//! A host end takes part in the same rendezvous as a guest end (the spec's
//! `SharedStreamImpl` / `SharedFutureImpl`, with no instance), except that
//! its buffer is in host memory: the core counts the host's elements, the
//! host keeps them. A [`Transfer`] side naming the host is a
//! [`TransferEnd::Host`](crate::TransferEnd::Host) with the element offset into the host's buffer.
//!
//! - [`Store::host_copy_new`] creates a stream or future whose writable end
//!   the host holds; its readable end goes to a guest with
//!   [`Store::lower_end`]. A readable end the host received from a guest
//!   ([`Store::lift_end`]) becomes a host end with [`Store::host_adopt`], or
//!   goes on to another guest with [`Store::lower_end`] (no copy at all).
//! - [`Store::host_end`] is the view of a host end through which the host
//!   copies: [`HostEnd::write`] / [`HostEnd::read`] offer a buffer of `n`
//!   elements. A guest copy already waiting is met at once: the answer says
//!   how many elements move now, and where ([`HostCopy::transfer`]).
//!   Otherwise the host's buffer waits for the guest, whose built-in then
//!   returns the [`Transfer`] naming the host side; the host learns the
//!   outcome with [`HostEnd::poll`]. The host's buffer must stay valid
//!   until then. A host that offers nothing leaves a guest copy blocked.
//! - [`HostEnd::cancel`] cancels the host's own waiting copy;
//!   [`HostEnd::defer_cancel`] makes a guest's cancel of a copy waiting
//!   on the host wait until [`HostEnd::cancel_peer`].
//! - [`HostEnd::drop`] drops the host end; a guest copy waiting on it
//!   gets DROPPED.
//!
//! ```
//! use canon_async::{Action, CopyResult, ElemClass, ElemType, EndKind, GuestBuf};
//! use canon_async::{LiftKind, Lifted, Step, Store, TransferEnd};
//!
//! let u8s = ElemType { id: 1, class: ElemClass::Number, size: 1, align: 1 };
//! let mut store = Store::new();
//! let inst = store.new_instance();
//! let mut mem = vec![0u8; 16];
//! let f = Lifted { inst, func: 0, kind: LiftKind::AsyncStackful, async_type: true };
//! store.invoke(f).unwrap();
//! let Action::Start { .. } = store.next_action() else { panic!() };
//!
//! // The host makes a stream<u8> and hands the guest its readable end.
//! let s = store.host_copy_new(EndKind::Stream, u8s);
//! let r = store.lower_end(inst, s).unwrap();
//! // The host offers 3 bytes; no reader waits yet.
//! let host_bytes = [7u8, 8, 9];
//! assert_eq!(store.host_end(s).unwrap().write(3).unwrap().done, None);
//! // The guest reads up to 8 bytes at address 4: eager completion.
//! let buf = GuestBuf { mem: 0, ptr: 4, len: 8, mem_size: 16 };
//! let out = store.running().unwrap().stream_read(u8s, true, r, buf).unwrap();
//! assert_eq!(out.step, Step::Done(CopyResult::Completed as u32 | 3 << 4));
//! // The embedder moves the bytes as the transfer says.
//! let t = out.transfer.unwrap();
//! let TransferEnd::Host { offset, .. } = t.src else { panic!() };
//! let (_, dst) = t.dst.guest().unwrap();
//! let n = t.count as usize;
//! mem[dst as usize..][..n].copy_from_slice(&host_bytes[offset as usize..][..n]);
//! assert_eq!(&mem[4..7], &[7, 8, 9]);
//! // The host learns that its write completed, then closes the stream.
//! let mut end = store.host_end(s).unwrap();
//! let done = end.poll().unwrap();
//! assert_eq!((done.result, done.progress), (CopyResult::Completed, 3));
//! end.drop().unwrap();
//! let out = store.running().unwrap().stream_read(u8s, true, r, buf).unwrap();
//! assert_eq!(out.step, Step::Done(CopyResult::Dropped as u32));
//! ```

use crate::copy::{CopyResult, CopyState, ElemType, EndKind, GuestBuffer, HostSide, Party, Shared};
use crate::error::EmbedderError;
use crate::ids::SharedId;
use crate::store::Store;

use super::Transfer;

/// The outcome of a finished host copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCopyDone {
    /// COMPLETED, DROPPED (the guest's end is gone) or CANCELLED.
    pub result: CopyResult,
    /// Elements moved by this copy, in total.
    pub progress: u32,
}

/// What [`HostEnd::write`] and [`HostEnd::read`] return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct HostCopy {
    /// The outcome if the copy finished now; `None` while it waits for the
    /// guest (ask [`HostEnd::poll`] later).
    pub done: Option<HostCopyDone>,
    /// The elements to move now, between the host's buffer and guest memory.
    pub transfer: Option<Transfer>,
}

/// The host's end of a stream or future, as [`Store::host_end`] finds it:
/// the host copies through it.
#[derive(Debug)]
pub struct HostEnd<'a> {
    store: &'a mut Store,
    shared: SharedId,
}

impl Store {
    /// The host's end of the stream or future `shared` ([`EmbedderError::UnknownId`]
    /// when no such stream or future exists or the host holds none of its ends).
    pub fn host_end(&mut self, shared: SharedId) -> Result<HostEnd<'_>, EmbedderError> {
        match self.shared.get(shared.key()) {
            Some(sh) if sh.host.is_some() => Ok(HostEnd {
                store: self,
                shared,
            }),
            _ => Err(EmbedderError::UnknownId),
        }
    }

    /// A new stream or future whose writable end the host holds. Its
    /// readable end is in transit: give it to a guest with
    /// [`Store::lower_end`] (exactly once).
    pub fn host_copy_new(&mut self, kind: EndKind, elem: ElemType) -> SharedId {
        SharedId::from_key(self.shared.insert(Shared {
            kind,
            elem,
            dropped: false,
            pending: None,
            ends: 2,
            host: Some(HostSide::new(false)),
        }))
    }

    /// The host keeps the readable end `shared` it lifted from a guest
    /// ([`Store::lift_end`]) as its own end, to read from.
    pub fn host_adopt(&mut self, shared: SharedId) -> Result<(), EmbedderError> {
        let sh = self
            .shared
            .get_mut(shared.key())
            .ok_or(EmbedderError::UnknownId)?;
        if sh.host.is_some() {
            return Err(EmbedderError::WrongState);
        }
        sh.host = Some(HostSide::new(true));
        Ok(())
    }

    /// The element type of the stream or future `shared` (`None` when no
    /// such stream or future exists): what a host end must convert.
    pub fn shared_elem(&self, shared: SharedId) -> Option<ElemType> {
        self.shared.get(shared.key()).map(|sh| sh.elem)
    }

    /// Moves to `into`, oldest first, the streams and futures whose host
    /// end got an event (its copy finished: a guest copy met it, the guest
    /// dropped its end, or it was cancelled) since this was last asked; ask
    /// [`HostEnd::poll`] for each outcome. An end may come back after
    /// its event was already polled (then `poll` finds nothing), or after
    /// the host dropped it (then [`Store::host_end`] finds nothing).
    /// Drain it after each action the host runs, or it grows with every
    /// event.
    pub fn take_host_events(&mut self, into: &mut alloc::vec::Vec<SharedId>) {
        into.append(&mut self.host_events);
    }
}

impl HostEnd<'_> {
    fn side(&self) -> &HostSide {
        self.store.shared[self.shared.key()]
            .host
            .as_ref()
            .expect("a host end view names a host end")
    }

    fn side_mut(&mut self) -> &mut HostSide {
        self.store.shared[self.shared.key()]
            .host
            .as_mut()
            .expect("a host end view names a host end")
    }

    fn kind(&self) -> EndKind {
        self.store.shared[self.shared.key()].kind
    }

    /// The stream or future.
    pub fn shared(&self) -> SharedId {
        self.shared
    }

    /// Its element type: what the host must convert.
    pub fn elem(&self) -> ElemType {
        self.store.shared[self.shared.key()].elem
    }

    /// The state of the host's end.
    pub fn state(&self) -> CopyState {
        self.side().state
    }

    /// How many elements a guest copy waiting on this end can still take
    /// (a reader) or give (a writer); `None` when no guest copy waits (or
    /// the host's own copy is the one waiting).
    pub fn peer_waiting(&self) -> Option<u32> {
        match self.store.shared[self.shared.key()].pending?.end {
            Party::Guest(w) => Some(self.store.end(w).buffer.map_or(0, |b| b.remain())),
            Party::Host => None,
        }
    }

    /// The host writes up to `n` elements (1 for a future) to the guest
    /// reading from this stream or future.
    pub fn write(&mut self, n: u32) -> Result<HostCopy, EmbedderError> {
        self.copy(false, n)
    }

    /// The host reads up to `n` elements (1 for a future) from the guest
    /// writing to this stream or future.
    pub fn read(&mut self, n: u32) -> Result<HostCopy, EmbedderError> {
        self.copy(true, n)
    }

    fn copy(&mut self, reading: bool, n: u32) -> Result<HostCopy, EmbedderError> {
        let (s, kind) = (self.shared, self.kind());
        let length = if kind == EndKind::Future { 1 } else { n };
        let h = self.side_mut();
        if h.readable != reading || h.state != CopyState::Idle {
            return Err(EmbedderError::WrongState);
        }
        if length > crate::table::MAX_LENGTH {
            return Err(EmbedderError::WrongState);
        }
        h.state = CopyState::Copying;
        h.buffer = Some(GuestBuffer {
            mem: 0,
            ptr: 0,
            length,
            progress: 0,
        });
        let r = match kind {
            EndKind::Stream => self.store.stream_rendezvous(s, None, Party::Host, reading),
            EndKind::Future => self.store.future_rendezvous(s, None, Party::Host, reading),
        };
        // The same-instance rule never applies to the host.
        let transfer = r.unwrap_or(None);
        Ok(HostCopy {
            done: self.poll(),
            transfer,
        })
    }

    /// Delivers the pending event of this end, if any: the host's copy
    /// finished (its buffer is free again).
    pub fn poll(&mut self) -> Option<HostCopyDone> {
        let (result, reclaim) = self.side_mut().event.take()?;
        let progress = self
            .store
            .deliver_copy(self.shared, Party::Host, result, reclaim);
        Some(HostCopyDone { result, progress })
    }

    /// Cancels the host's copy in progress: the outcome, which is
    /// COMPLETED or DROPPED when that happened first.
    pub fn cancel(&mut self) -> Result<HostCopyDone, EmbedderError> {
        let h = self.side_mut();
        if h.state != CopyState::Copying {
            return Err(EmbedderError::WrongState);
        }
        h.state = CopyState::CancellingCopy;
        if h.event.is_none() {
            let s = self.shared;
            debug_assert_eq!(
                self.store.shared[s.key()].pending.map(|p| p.end),
                Some(Party::Host)
            );
            self.store.notify_pending(s, CopyResult::Cancelled);
        }
        Ok(self.poll().expect("the cancelled copy's event"))
    }

    /// Whether a guest's cancel of a copy waiting on this end waits for
    /// the host ([`HostEnd::cancel_peer`]) instead of finishing at once
    /// (the default).
    pub fn defer_cancel(&mut self, defer: bool) {
        self.side_mut().defer_cancel = defer;
    }

    /// Whether a guest asked to cancel its copy waiting on this end and
    /// waits for [`HostEnd::cancel_peer`].
    pub fn cancel_requested(&self) -> bool {
        self.side().cancel_requested.is_some()
    }

    /// The host lets a deferred guest cancel finish: the guest's copy gets
    /// CANCELLED with the progress it made (the host may have moved
    /// elements first). Returns whether a cancel was waiting.
    pub fn cancel_peer(&mut self) -> bool {
        let Some(w) = self.side_mut().cancel_requested.take() else {
            return false;
        };
        let (store, shared) = (&mut *self.store, self.shared);
        let still = store.waitables.get(w.key()).is_some_and(|x| {
            x.end()
                .is_some_and(|e| e.shared == shared && e.state == CopyState::CancellingCopy)
        }) && store.shared[shared.key()].pending.map(|p| p.end)
            == Some(Party::Guest(w));
        if still {
            store.notify_pending(shared, CopyResult::Cancelled);
        }
        still
    }

    /// Drops the host end. A guest copy waiting on it gets DROPPED. Like a
    /// guest's drop, it must not be copying, and a future's writable end
    /// must have written its value (or seen DROPPED) first
    /// ([`EmbedderError::WrongState`] otherwise, and the end stays).
    pub fn drop(self) -> Result<(), EmbedderError> {
        let kind = self.kind();
        let h = self.side();
        if matches!(h.state, CopyState::Copying | CopyState::CancellingCopy)
            || (kind == EndKind::Future && !h.readable && h.state != CopyState::Done)
        {
            return Err(EmbedderError::WrongState);
        }
        let (store, shared) = (self.store, self.shared);
        let sh = &mut store.shared[shared.key()];
        sh.host = None;
        if !sh.dropped {
            sh.dropped = true;
            store.notify_pending(shared, CopyResult::Dropped);
        }
        let sh = &mut store.shared[shared.key()];
        sh.ends -= 1;
        if sh.ends == 0 {
            store.shared.remove(shared.key());
        }
        Ok(())
    }
}

impl HostSide {
    fn new(readable: bool) -> Self {
        HostSide {
            readable,
            state: CopyState::Idle,
            buffer: None,
            event: None,
            defer_cancel: false,
            cancel_requested: None,
        }
    }
}
