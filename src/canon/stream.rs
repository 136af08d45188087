//! `stream.*` and `future.*`: new, read, write, cancel-read/write,
//! drop-readable/writable. The rendezvous (`SharedStreamImpl`,
//! `SharedFutureImpl`) and the events computed at delivery are the copy
//! state's, in `copy/shared.rs`.
//!
//! The core decides what moves where; the embedder moves the bytes, as a
//! [`Transfer`] returned by the built-in that completed the rendezvous.

use crate::copy::{
    CopyEnd, CopyResult, CopyState, ElemClass, ElemType, EndKind, GuestBuffer, Party, Shared,
};
use crate::ids::{InstanceId, SharedId, WaitableId};
use crate::instance::Handle;
use crate::running::{Cur, Running};
use crate::store::{Reading, Step, Store, BLOCKED};
use crate::table::MAX_LENGTH;
use crate::trap::{trap_if, Trap};
use crate::waitable::{Pending, Waitable, WaitableKind};

/// A guest buffer as the embedder passes it to `stream.read/write` and
/// `future.read/write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestBuf {
    /// The embedder's id for the memory (the `memory` canonical option),
    /// handed back as [`TransferEnd::Guest::mem`]. The core only carries
    /// it: an embedder may make it the id of the built-in's whole canonical
    /// options, which storing a lifted element into a reader needs
    /// (its `realloc` and string encoding).
    pub mem: u32,
    /// The guest pointer.
    pub ptr: u32,
    /// The length in elements (1 for futures).
    pub len: u32,
    /// The memory's current size in bytes, for the bounds check.
    pub mem_size: u64,
}

/// One side of a [`Transfer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferEnd {
    /// Guest memory.
    Guest {
        /// The instance whose memory it is.
        inst: InstanceId,
        /// The embedder's memory id ([`GuestBuf::mem`] of this side's copy).
        mem: u32,
        /// The address of the first element.
        ptr: u32,
    },
    /// The host end of a stream or future (see [`Store::host_end`]): the
    /// host's buffer of its read or write in progress, from element `offset`
    /// (the elements of that buffer already moved).
    Host {
        /// The stream or future.
        shared: SharedId,
        /// The index of the first element in the host's buffer.
        offset: u32,
    },
}

impl TransferEnd {
    /// The instance and address, for a guest side.
    pub fn guest(&self) -> Option<(InstanceId, u32)> {
        match *self {
            TransferEnd::Guest { inst, ptr, .. } => Some((inst, ptr)),
            TransferEnd::Host { .. } => None,
        }
    }
}

/// Elements the embedder must move now, from the writer's buffer to the
/// reader's, before the guest continues: one bulk copy of
/// `count * elem.size` bytes for [`ElemClass::Number`] and
/// [`ElemClass::Plain`]; lifting and lowering each element (handles go
/// through the store's transfer functions) for [`ElemClass::Lifted`];
/// nothing for [`ElemClass::None`]. A side may be the host's own buffer
/// ([`TransferEnd::Host`]) when the host holds the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The element type.
    pub elem: ElemType,
    /// Where the elements are read from (the writer).
    pub src: TransferEnd,
    /// Where they are written to (the reader).
    pub dst: TransferEnd,
    /// How many elements.
    pub count: u32,
}

/// What a copy built-in returns: the guest-visible result, and the
/// elements to move (if the rendezvous happened in this call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The packed result (`result | progress << 4` for streams, the result
    /// for futures), `BLOCKED`, or a suspension for a synchronous copy.
    pub step: Step<u32>,
    /// Elements to move before anything else happens.
    pub transfer: Option<Transfer>,
}

impl Store {
    /// The end at handle `i` of `inst`: of kind `kind`,
    /// readable or not, with element type `elem`.
    fn end_at(
        &self,
        inst: InstanceId,
        i: u32,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
    ) -> Result<WaitableId, Trap> {
        let w = self.waitable_at(inst, i)?;
        match self.w(w).end() {
            Some(e) if e.kind == kind && e.readable == readable => {
                trap_if(
                    self.shared[e.shared.key()].elem != elem,
                    Trap::EndTypeMismatch(kind),
                )?;
                Ok(w)
            }
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// A new end waitable in `inst`, with its handle.
    pub(crate) fn new_end(
        &mut self,
        inst: InstanceId,
        shared: SharedId,
        readable: bool,
    ) -> Result<u32, Trap> {
        let kind = self.shared[shared.key()].kind;
        let w = WaitableId::from_key(self.waitables.insert(Waitable::new(
            inst,
            WaitableKind::End(CopyEnd {
                shared,
                kind,
                readable,
                state: CopyState::Idle,
                buffer: None,
            }),
        )));
        match self.inst_mut(inst).handles.add(Handle::Waitable(w)) {
            Ok(i) => {
                self.w_mut(w).index = i;
                self.shared[shared.key()].ends += 1;
                Ok(i)
            }
            Err(e) => {
                self.waitables.remove(w.key());
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_inner(
        &mut self,
        (t, _, inst): Cur,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        let w = self.end_at(inst, i, kind, readable, elem)?;
        match self.end(w).state {
            CopyState::Idle => {}
            CopyState::Done if readable => return Err(Trap::ReadAfterDone(kind)),
            CopyState::Done => return Err(Trap::WriteAfterDone(kind)),
            _ => return Err(Trap::EndBusy(kind)),
        }
        trap_if(
            self.w(w).wset().is_some() && !async_,
            Trap::SyncInWaitableSet,
        )?;
        let length = if kind == EndKind::Future { 1 } else { buf.len };
        trap_if(length > MAX_LENGTH, Trap::BufferTooLong)?;
        if elem.class != ElemClass::None && length > 0 {
            trap_if(buf.ptr % elem.align.max(1) != 0, Trap::UnalignedPointer)?;
            trap_if(
                buf.ptr as u64 + length as u64 * elem.size as u64 > buf.mem_size,
                Trap::OutOfBounds,
            )?;
        }
        let e = self.end_mut(w);
        e.state = CopyState::Copying;
        e.buffer = Some(GuestBuffer {
            mem: buf.mem,
            ptr: buf.ptr,
            length,
            progress: 0,
        });
        let s = self.end(w).shared;
        let transfer = match kind {
            EndKind::Stream => self.stream_rendezvous(s, Some(inst), Party::Guest(w), readable)?,
            EndKind::Future => self.future_rendezvous(s, Some(inst), Party::Guest(w), readable)?,
        };
        let step = if self.w(w).pending.is_some() {
            Step::Done(self.get_pending_event(w).payload)
        } else if async_ {
            Step::Done(BLOCKED)
        } else {
            match self.wait_for_pending_event(t, w) {
                None => Step::Suspend,
                Some(()) => Step::Done(self.get_pending_event(w).payload),
            }
        };
        Ok(CopyOutcome { step, transfer })
    }

    fn cancel_copy_inner(
        &mut self,
        (t, _, inst): Cur,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let w = self.end_at(inst, i, kind, readable, elem)?;
        trap_if(
            self.end(w).state != CopyState::Copying || self.w(w).has_sync_waiter,
            Trap::CancelNotCopying(kind),
        )?;
        trap_if(
            self.w(w).wset().is_some() && !async_,
            Trap::SyncInWaitableSet,
        )?;
        self.end_mut(w).state = CopyState::CancellingCopy;
        // The suite's reading: a partial copy whose end is still the pending
        // side of the rendezvous is still in progress, so it is cancelled
        // (its progress stays in the buffer).
        if self.reading == Reading::Suite
            && self.w(w).pending == Some(Pending::Copy(CopyResult::Completed, true))
        {
            self.set_pending(w, None);
        }
        if self.w(w).pending.is_none() {
            // `shared.cancel()`: a copy without an event is the pending side.
            let s = self.end(w).shared;
            debug_assert_eq!(
                self.shared[s.key()].pending.map(|p| p.end),
                Some(Party::Guest(w))
            );
            match self.shared[s.key()].host.as_mut() {
                // A host that defers cancellation answers later
                // ([`HostEnd::cancel_peer`](crate::HostEnd::cancel_peer)).
                Some(h) if h.defer_cancel => h.cancel_requested = Some(w),
                _ => self.notify_pending(s, CopyResult::Cancelled),
            }
            if self.w(w).pending.is_none() {
                if async_ {
                    return Ok(Step::Done(BLOCKED));
                }
                if self.wait_for_pending_event(t, w).is_none() {
                    return Ok(Step::Suspend);
                }
            }
        }
        Ok(Step::Done(self.get_pending_event(w).payload))
    }
}

impl Running<'_> {
    /// `stream.new` / `future.new` of `kind`.
    pub(crate) fn copy_new(self, kind: EndKind, elem: ElemType) -> Result<u64, Trap> {
        self.leave(|s, (_, _, inst)| {
            let sh = SharedId::from_key(s.shared.insert(Shared {
                kind,
                elem,
                dropped: false,
                pending: None,
                ends: 0,
                host: None,
            }));
            let ri = s.new_end(inst, sh, true)?;
            let wi = s.new_end(inst, sh, false)?;
            Ok(ri as u64 | (wi as u64) << 32)
        })
    }

    /// `stream_copy` / `future_copy`: a read (`readable`) or write of `kind`.
    pub(crate) fn copy(
        self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        self.leave_blocking(!async_, |s, cur| {
            s.copy_inner(cur, kind, readable, elem, async_, i, buf)
        })
    }

    /// `cancel_copy`: a cancel-read (`readable`) or cancel-write of `kind`.
    pub(crate) fn cancel_copy(
        self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.leave_blocking(!async_, |s, cur| {
            s.cancel_copy_inner(cur, kind, readable, elem, async_, i)
        })
    }

    /// `drop`: a drop-readable (`readable`) or drop-writable of `kind`.
    pub(crate) fn drop_end(
        self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        i: u32,
    ) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let w = s.end_at(inst, i, kind, readable, elem)?;
            let e = s.end(w);
            if kind == EndKind::Future && !readable {
                trap_if(e.state != CopyState::Done, Trap::DropFutureUnwritten)?;
            }
            // Wasmtime (and the reference suite) say "remove" for a
            // readable end and "drop" for a writable one.
            let busy = if readable {
                Trap::LiftBusy(kind)
            } else {
                Trap::DropBusy(kind)
            };
            trap_if(e.copying(), busy)?;
            s.inst_mut(inst).handles.remove(i)?;
            s.drop_end_waitable(w);
            Ok(())
        })
    }

    /// `canon stream.new`: `readable | writable << 32`.
    pub fn stream_new(self, elem: ElemType) -> Result<u64, Trap> {
        self.copy_new(EndKind::Stream, elem)
    }

    /// `canon stream.read` (`stream_copy` into `buf`): the packed
    /// `result | progress << 4`, `BLOCKED`, or a suspension (synchronous).
    ///
    /// The call that completes a rendezvous returns the [`Transfer`]: the
    /// embedder moves those elements before the guest continues. A guest
    /// writes to another guest:
    ///
    /// ```
    /// use canon_async::{Action, CopyResult, ElemClass, ElemType, EndKind, GuestBuf};
    /// use canon_async::{LiftKind, Lifted, Step, Store, BLOCKED};
    ///
    /// let u8s = ElemType { id: 1, class: ElemClass::Number, size: 1, align: 1 };
    /// let mut store = Store::new();
    /// let (a, b) = (store.new_instance(), store.new_instance());
    /// let (mut mem_a, mut mem_b) = (vec![0u8; 16], vec![0u8; 16]);
    /// let export = |inst, func| Lifted { inst, func, kind: LiftKind::AsyncStackful, async_type: true };
    ///
    /// // `a` makes a stream<u8> and writes 3 bytes: no reader yet, BLOCKED.
    /// store.invoke(export(a, 0)).unwrap();
    /// let Action::Start { .. } = store.next_action() else { panic!() };
    /// let ends = store.running().unwrap().stream_new(u8s).unwrap();
    /// let (r, w) = (ends as u32, (ends >> 32) as u32);
    /// mem_a[0..3].copy_from_slice(b"abc");
    /// let buf = GuestBuf { mem: 0, ptr: 0, len: 3, mem_size: 16 };
    /// let out = store.running().unwrap().stream_write(u8s, true, w, buf).unwrap();
    /// assert_eq!((out.step, out.transfer), (Step::Done(BLOCKED), None));
    /// // `a` returns the readable end: lifted out of `a` ...
    /// let shared = store.lift_end(a, EndKind::Stream, u8s, r).unwrap();
    /// store.running().unwrap().task_return().unwrap();
    /// store.exit_thread().unwrap();
    /// assert_eq!(store.next_action(), Action::Idle);
    ///
    /// // ... and lowered into `b`, which reads: the rendezvous is this call.
    /// store.invoke(export(b, 1)).unwrap();
    /// let Action::Start { .. } = store.next_action() else { panic!() };
    /// let rb = store.lower_end(b, shared).unwrap();
    /// let buf = GuestBuf { mem: 1, ptr: 8, len: 8, mem_size: 16 };
    /// let out = store.running().unwrap().stream_read(u8s, true, rb, buf).unwrap();
    /// assert_eq!(out.step, Step::Done(CopyResult::Completed as u32 | 3 << 4));
    /// // One bulk copy from `a`'s memory to `b`'s.
    /// let t = out.transfer.unwrap();
    /// let ((_, src), (_, dst)) = (t.src.guest().unwrap(), t.dst.guest().unwrap());
    /// let n = (t.count * t.elem.size) as usize;
    /// mem_b[dst as usize..][..n].copy_from_slice(&mem_a[src as usize..][..n]);
    /// assert_eq!(&mem_b[8..11], b"abc");
    /// ```
    ///
    /// A host holds an end through [`Store::host_end`].
    pub fn stream_read(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        self.copy(EndKind::Stream, true, elem, async_, i, buf)
    }

    /// `canon stream.write` (`stream_copy` from `buf`): as [`Running::stream_read`].
    pub fn stream_write(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        self.copy(EndKind::Stream, false, elem, async_, i, buf)
    }

    /// `canon stream.cancel-read` (`cancel_copy`).
    pub fn stream_cancel_read(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.cancel_copy(EndKind::Stream, true, elem, async_, i)
    }

    /// `canon stream.cancel-write` (`cancel_copy`).
    pub fn stream_cancel_write(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.cancel_copy(EndKind::Stream, false, elem, async_, i)
    }

    /// `canon stream.drop-readable`.
    pub fn stream_drop_readable(self, elem: ElemType, i: u32) -> Result<(), Trap> {
        self.drop_end(EndKind::Stream, true, elem, i)
    }

    /// `canon stream.drop-writable`.
    pub fn stream_drop_writable(self, elem: ElemType, i: u32) -> Result<(), Trap> {
        self.drop_end(EndKind::Stream, false, elem, i)
    }

    /// `canon future.new`: `readable | writable << 32`.
    pub fn future_new(self, elem: ElemType) -> Result<u64, Trap> {
        self.copy_new(EndKind::Future, elem)
    }

    /// `canon future.read` (`future_copy` into `buf`, of length 1): the
    /// result, `BLOCKED`, or a suspension (synchronous).
    pub fn future_read(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        self.copy(EndKind::Future, true, elem, async_, i, buf)
    }

    /// `canon future.write` (`future_copy` from `buf`): as [`Running::future_read`].
    pub fn future_write(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        self.copy(EndKind::Future, false, elem, async_, i, buf)
    }

    /// `canon future.cancel-read` (`cancel_copy`).
    pub fn future_cancel_read(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.cancel_copy(EndKind::Future, true, elem, async_, i)
    }

    /// `canon future.cancel-write` (`cancel_copy`).
    pub fn future_cancel_write(
        self,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        self.cancel_copy(EndKind::Future, false, elem, async_, i)
    }

    /// `canon future.drop-readable`.
    pub fn future_drop_readable(self, elem: ElemType, i: u32) -> Result<(), Trap> {
        self.drop_end(EndKind::Future, true, elem, i)
    }

    /// `canon future.drop-writable`.
    pub fn future_drop_writable(self, elem: ElemType, i: u32) -> Result<(), Trap> {
        self.drop_end(EndKind::Future, false, elem, i)
    }
}
