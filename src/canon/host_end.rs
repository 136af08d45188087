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
//! - [`Store::host_write`] / [`Store::host_read`] offer a buffer of `n`
//!   elements. A guest copy already waiting is met at once: the answer says
//!   how many elements move now, and where ([`HostCopy::transfer`]).
//!   Otherwise the host's buffer waits for the guest, whose built-in then
//!   returns the [`Transfer`] naming the host side; the host learns the
//!   outcome with [`Store::host_poll`]. The host's buffer must stay valid
//!   until then. A host that offers nothing leaves a guest copy blocked.
//! - [`Store::host_cancel`] cancels the host's own waiting copy;
//!   [`Store::host_defer_cancel`] makes a guest's cancel of a copy waiting
//!   on the host wait until [`Store::host_cancel_peer`].
//! - [`Store::host_drop`] drops the host end; a guest copy waiting on it
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
//! assert_eq!(store.host_write(s, 3).unwrap().done, None);
//! // The guest reads up to 8 bytes at address 4: eager completion.
//! let buf = GuestBuf { mem: 0, ptr: 4, len: 8, mem_size: 16 };
//! let out = store.copy(EndKind::Stream, true, u8s, true, r, buf).unwrap();
//! assert_eq!(out.step, Step::Done(CopyResult::Completed as u32 | 3 << 4));
//! // The embedder moves the bytes as the transfer says.
//! let t = out.transfer.unwrap();
//! let TransferEnd::Host { offset, .. } = t.src else { panic!() };
//! let (_, dst) = t.dst.guest().unwrap();
//! let n = t.count as usize;
//! mem[dst as usize..][..n].copy_from_slice(&host_bytes[offset as usize..][..n]);
//! assert_eq!(&mem[4..7], &[7, 8, 9]);
//! // The host learns that its write completed, then closes the stream.
//! let done = store.host_poll(s).unwrap().unwrap();
//! assert_eq!((done.result, done.progress), (CopyResult::Completed, 3));
//! store.host_drop(s).unwrap();
//! let out = store.copy(EndKind::Stream, true, u8s, true, r, buf).unwrap();
//! assert_eq!(out.step, Step::Done(CopyResult::Dropped as u32));
//! ```

use crate::copy::EndKind;
use crate::copy::{CopyResult, CopyState, ElemType, GuestBuffer, HostEnd, Party, Shared};
use crate::ids::SharedId;
use crate::store::{EmbedderError, Store};

use super::Transfer;

/// The outcome of a finished host copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCopyDone {
    /// COMPLETED, DROPPED (the guest's end is gone) or CANCELLED.
    pub result: CopyResult,
    /// Elements moved by this copy, in total.
    pub progress: u32,
}

/// What [`Store::host_write`] and [`Store::host_read`] return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct HostCopy {
    /// The outcome if the copy finished now; `None` while it waits for the
    /// guest (ask [`Store::host_poll`] later).
    pub done: Option<HostCopyDone>,
    /// The elements to move now, between the host's buffer and guest memory.
    pub transfer: Option<Transfer>,
}

impl Store {
    fn host_end(&self, s: SharedId) -> Result<&HostEnd, EmbedderError> {
        self.shared
            .get(s.key())
            .and_then(|sh| sh.host.as_ref())
            .ok_or(EmbedderError::UnknownId)
    }

    fn host_end_mut(&mut self, s: SharedId) -> Result<&mut HostEnd, EmbedderError> {
        self.shared
            .get_mut(s.key())
            .and_then(|sh| sh.host.as_mut())
            .ok_or(EmbedderError::UnknownId)
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
            host: Some(HostEnd::new(false)),
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
        sh.host = Some(HostEnd::new(true));
        Ok(())
    }

    /// The element type of the stream or future `shared` (`None` when no
    /// such stream or future exists): what a host end must convert.
    pub fn shared_elem(&self, shared: SharedId) -> Option<ElemType> {
        self.shared.get(shared.key()).map(|sh| sh.elem)
    }

    /// The state of the host's end of `shared`.
    pub fn host_state(&self, shared: SharedId) -> Option<CopyState> {
        self.host_end(shared).ok().map(|h| h.state)
    }

    /// How many elements a guest copy waiting on the host end of `shared`
    /// can still take (a reader) or give (a writer); `None` when no guest
    /// copy waits (or the host's own copy is the one waiting).
    pub fn host_peer_waiting(&self, shared: SharedId) -> Option<u32> {
        self.host_end(shared).ok()?;
        match self.shared[shared.key()].pending?.end {
            Party::Guest(w) => Some(self.end(w).buffer.map_or(0, |b| b.remain())),
            Party::Host => None,
        }
    }

    /// The host writes up to `n` elements (1 for a future) to the guest
    /// reading from `shared`.
    pub fn host_write(&mut self, shared: SharedId, n: u32) -> Result<HostCopy, EmbedderError> {
        self.host_copy(shared, false, n)
    }

    /// The host reads up to `n` elements (1 for a future) from the guest
    /// writing to `shared`.
    pub fn host_read(&mut self, shared: SharedId, n: u32) -> Result<HostCopy, EmbedderError> {
        self.host_copy(shared, true, n)
    }

    fn host_copy(&mut self, s: SharedId, reading: bool, n: u32) -> Result<HostCopy, EmbedderError> {
        let kind = self.host_kind(s)?;
        let h = self.host_end_mut(s)?;
        if h.readable != reading || h.state != CopyState::Idle {
            return Err(EmbedderError::WrongState);
        }
        let length = if kind == EndKind::Future { 1 } else { n };
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
            EndKind::Stream => self.stream_rendezvous(s, None, Party::Host, reading),
            EndKind::Future => self.future_rendezvous(s, None, Party::Host, reading),
        };
        // The same-instance rule never applies to the host.
        let transfer = r.unwrap_or(None);
        Ok(HostCopy {
            done: self.host_poll(s)?,
            transfer,
        })
    }

    fn host_kind(&self, s: SharedId) -> Result<EndKind, EmbedderError> {
        self.host_end(s)?;
        Ok(self.shared[s.key()].kind)
    }

    /// Moves to `into`, oldest first, the streams and futures whose host
    /// end got an event (its copy finished: a guest copy met it, the guest
    /// dropped its end, or it was cancelled) since this was last asked; ask
    /// [`Store::host_poll`] for each outcome. An end may come back after
    /// its event was already polled (then `host_poll` finds nothing).
    /// Drain it after each action the host runs, or it grows with every
    /// event.
    pub fn take_host_events(&mut self, into: &mut alloc::vec::Vec<SharedId>) {
        into.append(&mut self.host_events);
    }

    /// Delivers the pending event of the host end of `shared`, if any: the
    /// host's copy finished (its buffer is free again).
    pub fn host_poll(&mut self, shared: SharedId) -> Result<Option<HostCopyDone>, EmbedderError> {
        let h = self.host_end_mut(shared)?;
        let Some((result, reclaim)) = h.event.take() else {
            return Ok(None);
        };
        let progress = self.deliver_copy(shared, Party::Host, result, reclaim);
        Ok(Some(HostCopyDone { result, progress }))
    }

    /// Cancels the host's copy in progress on `shared`: the outcome, which
    /// is COMPLETED or DROPPED when that happened first.
    pub fn host_cancel(&mut self, shared: SharedId) -> Result<HostCopyDone, EmbedderError> {
        let h = self.host_end_mut(shared)?;
        if h.state != CopyState::Copying {
            return Err(EmbedderError::WrongState);
        }
        h.state = CopyState::CancellingCopy;
        if h.event.is_none() {
            debug_assert_eq!(
                self.shared[shared.key()].pending.map(|p| p.end),
                Some(Party::Host)
            );
            self.notify_pending(shared, CopyResult::Cancelled);
        }
        Ok(self.host_poll(shared)?.expect("the cancelled copy's event"))
    }

    /// Whether a guest's cancel of a copy waiting on the host end of
    /// `shared` waits for the host ([`Store::host_cancel_peer`]) instead of
    /// finishing at once (the default).
    pub fn host_defer_cancel(
        &mut self,
        shared: SharedId,
        defer: bool,
    ) -> Result<(), EmbedderError> {
        self.host_end_mut(shared)?.defer_cancel = defer;
        Ok(())
    }

    /// Whether a guest asked to cancel its copy waiting on `shared` and
    /// waits for [`Store::host_cancel_peer`].
    pub fn host_cancel_requested(&self, shared: SharedId) -> bool {
        self.host_end(shared)
            .is_ok_and(|h| h.cancel_requested.is_some())
    }

    /// The host lets a deferred guest cancel finish: the guest's copy gets
    /// CANCELLED with the progress it made (the host may have moved
    /// elements first). Returns whether a cancel was waiting.
    pub fn host_cancel_peer(&mut self, shared: SharedId) -> Result<bool, EmbedderError> {
        let Some(w) = self.host_end_mut(shared)?.cancel_requested.take() else {
            return Ok(false);
        };
        let still = self.waitables.get(w.key()).is_some_and(|x| {
            x.end()
                .is_some_and(|e| e.shared == shared && e.state == CopyState::CancellingCopy)
        }) && self.shared[shared.key()].pending.map(|p| p.end) == Some(Party::Guest(w));
        if still {
            self.notify_pending(shared, CopyResult::Cancelled);
        }
        Ok(still)
    }

    /// Drops the host end of `shared`. A guest copy waiting on it gets
    /// DROPPED. Like a guest's drop, it must not be copying, and a future's
    /// writable end must have written its value (or seen DROPPED) first.
    pub fn host_drop(&mut self, shared: SharedId) -> Result<(), EmbedderError> {
        let kind = self.host_kind(shared)?;
        let h = self.host_end(shared)?;
        if matches!(h.state, CopyState::Copying | CopyState::CancellingCopy)
            || (kind == EndKind::Future && !h.readable && h.state != CopyState::Done)
        {
            return Err(EmbedderError::WrongState);
        }
        let sh = &mut self.shared[shared.key()];
        sh.host = None;
        if !sh.dropped {
            sh.dropped = true;
            self.notify_pending(shared, CopyResult::Dropped);
        }
        let sh = &mut self.shared[shared.key()];
        sh.ends -= 1;
        if sh.ends == 0 {
            self.shared.remove(shared.key());
        }
        Ok(())
    }
}

impl HostEnd {
    fn new(readable: bool) -> Self {
        HostEnd {
            readable,
            state: CopyState::Idle,
            buffer: None,
            event: None,
            defer_cancel: false,
            cancel_requested: None,
        }
    }
}
