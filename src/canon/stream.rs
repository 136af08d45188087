//! `stream.*` and `future.*`: new, read, write, cancel-read/write,
//! drop-readable/writable; the rendezvous (`SharedStreamImpl`,
//! `SharedFutureImpl`) and the events computed at delivery.
//!
//! The core decides what moves where; the embedder moves the bytes, as a
//! [`Transfer`] returned by the built-in that completed the rendezvous.

use crate::copy::{
    CopyEnd, CopyResult, CopyState, ElemClass, ElemType, GuestBuffer, PendingSide, Shared,
};
use crate::ids::{InstanceId, SharedId, WaitableId};
use crate::instance::Handle;
use crate::store::{Step, Store, BLOCKED};
use crate::table::MAX_LENGTH;
use crate::trap::{trap_if, EndKind, Trap};
use crate::waitable::{Event, EventCode, Pending, Waitable, WaitableKind};

/// A guest buffer as the embedder passes it to `stream.read/write` and
/// `future.read/write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestBuf {
    /// The embedder's id for the memory (the `memory` canonical option).
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
pub struct TransferEnd {
    /// The instance whose memory it is.
    pub inst: InstanceId,
    /// The embedder's memory id.
    pub mem: u32,
    /// The address of the first element.
    pub ptr: u32,
}

/// Elements the embedder must move now, from the writer's buffer to the
/// reader's, before the guest continues: one bulk copy of
/// `count * elem.size` bytes for [`ElemClass::Number`] and
/// [`ElemClass::Plain`]; lifting and lowering each element (handles go
/// through the store's transfer functions) for [`ElemClass::Lifted`];
/// nothing for [`ElemClass::None`].
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
    /// The end at handle `i` of the running instance: of kind `kind`,
    /// readable or not, with element type `elem`.
    fn end_at(
        &self,
        i: u32,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
    ) -> Result<WaitableId, Trap> {
        let w = self.waitable_at(i)?;
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

    pub(crate) fn end(&self, w: WaitableId) -> &CopyEnd {
        self.w(w).end().expect("waitable is a copy end")
    }

    pub(crate) fn end_mut(&mut self, w: WaitableId) -> &mut CopyEnd {
        self.w_mut(w).end_mut().expect("waitable is a copy end")
    }

    /// A new end waitable in `inst`, with its handle.
    pub(crate) fn new_end(
        &mut self,
        inst: InstanceId,
        shared: SharedId,
        readable: bool,
    ) -> Result<u32, Trap> {
        let kind = self.shared[shared.key()].kind;
        let w = WaitableId::from_key(self.waitables.insert(Waitable {
            inst,
            index: 0,
            pending: None,
            wset: None,
            has_sync_waiter: false,
            kind: WaitableKind::End(CopyEnd {
                shared,
                kind,
                readable,
                state: CopyState::Idle,
                buffer: None,
            }),
        }));
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

    /// `canon stream.new` / `canon future.new`: `readable | writable << 32`.
    pub fn copy_new(&mut self, kind: EndKind, elem: ElemType) -> Result<u64, Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let s = SharedId::from_key(self.shared.insert(Shared {
                kind,
                elem,
                dropped: false,
                pending: None,
                ends: 0,
            }));
            let ri = self.new_end(inst, s, true)?;
            let wi = self.new_end(inst, s, false)?;
            Ok(ri as u64 | (wi as u64) << 32)
        });
        self.guard(r)
    }

    /// `canon stream.read/write` and `canon future.read/write`
    /// (`stream_copy` / `future_copy`): `readable` selects read.
    pub fn copy(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        let r = self.copy_inner(kind, readable, elem, async_, i, buf);
        self.guard(r)
    }

    fn copy_inner(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        buf: GuestBuf,
    ) -> Result<CopyOutcome, Trap> {
        let (t, _, inst) = self.leaving()?;
        let w = self.end_at(i, kind, readable, elem)?;
        match self.end(w).state {
            CopyState::Idle => {}
            CopyState::Done if readable => return Err(Trap::ReadAfterDone(kind)),
            CopyState::Done => return Err(Trap::WriteAfterDone(kind)),
            _ => return Err(Trap::EndBusy(kind)),
        }
        trap_if(self.w(w).wset.is_some() && !async_, Trap::SyncInWaitableSet)?;
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
        let transfer = match kind {
            EndKind::Stream => self.stream_rendezvous(inst, w, readable)?,
            EndKind::Future => self.future_rendezvous(inst, w, readable)?,
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

    /// The same-instance rule: only payload-less and number elements.
    fn check_intra(&self, s: SharedId, inst: InstanceId) -> Result<(), Trap> {
        let sh = &self.shared[s.key()];
        let pending_inst = sh.pending.map(|p| p.inst);
        trap_if(
            pending_inst == Some(inst)
                && !matches!(sh.elem.class, ElemClass::None | ElemClass::Number),
            Trap::IntraComponentCopy(sh.kind),
        )
    }

    /// Moves `n` elements from the writer `src` to the reader `dst`.
    fn move_elems(&mut self, src: WaitableId, dst: WaitableId, n: u32) -> Transfer {
        let elem = self.shared[self.end(src).shared.key()].elem;
        let side = |s: &mut Store, w: WaitableId| {
            let inst = s.w(w).inst;
            let b = s
                .end_mut(w)
                .buffer
                .as_mut()
                .expect("buffer of a copying end");
            let at = TransferEnd {
                inst,
                mem: b.mem,
                ptr: b.ptr,
            };
            b.ptr = b.ptr.wrapping_add(n.wrapping_mul(elem.size));
            b.progress += n;
            at
        };
        let src_at = side(self, src);
        let dst_at = side(self, dst);
        Transfer {
            elem,
            src: src_at,
            dst: dst_at,
            count: n,
        }
    }

    fn remain(&self, w: WaitableId) -> u32 {
        self.end(w).buffer.map_or(0, |b| b.remain())
    }

    fn length(&self, w: WaitableId) -> u32 {
        self.end(w).buffer.map_or(0, |b| b.length)
    }

    /// `reset_and_notify_pending(result)`.
    fn notify_pending(&mut self, s: SharedId, result: CopyResult) {
        if let Some(p) = self.shared[s.key()].pending.take() {
            self.set_pending(p.end, Some(Pending::Copy(result, false)));
        }
    }

    /// `SharedStreamImpl.read` / `write` for the end `w` that just started copying.
    fn stream_rendezvous(
        &mut self,
        inst: InstanceId,
        w: WaitableId,
        reading: bool,
    ) -> Result<Option<Transfer>, Trap> {
        let s = self.end(w).shared;
        let sh = &self.shared[s.key()];
        if sh.dropped {
            self.set_pending(w, Some(Pending::Copy(CopyResult::Dropped, false)));
            return Ok(None);
        }
        let Some(p) = sh.pending else {
            self.shared[s.key()].pending = Some(PendingSide { inst, end: w });
            return Ok(None);
        };
        self.check_intra(s, inst)?;
        let (pend_remain, my_remain) = (self.remain(p.end), self.remain(w));
        if pend_remain > 0 {
            let mut transfer = None;
            if my_remain > 0 {
                let n = pend_remain.min(my_remain);
                transfer = Some(if reading {
                    self.move_elems(p.end, w, n)
                } else {
                    self.move_elems(w, p.end, n)
                });
                // `pending_on_copy(reset_pending)`: the pending side stays
                // pending until its event is delivered.
                self.set_pending(p.end, Some(Pending::Copy(CopyResult::Completed, true)));
            }
            self.set_pending(w, Some(Pending::Copy(CopyResult::Completed, false)));
            Ok(transfer)
        } else if !reading && self.length(w) == 0 && self.length(p.end) == 0 {
            // A zero-length write meets a zero-length pending read: the
            // write completes and the reader stays pending.
            self.set_pending(w, Some(Pending::Copy(CopyResult::Completed, false)));
            Ok(None)
        } else {
            self.notify_pending(s, CopyResult::Completed);
            self.shared[s.key()].pending = Some(PendingSide { inst, end: w });
            Ok(None)
        }
    }

    /// `SharedFutureImpl.read` / `write`.
    fn future_rendezvous(
        &mut self,
        inst: InstanceId,
        w: WaitableId,
        reading: bool,
    ) -> Result<Option<Transfer>, Trap> {
        let s = self.end(w).shared;
        let sh = &self.shared[s.key()];
        if sh.dropped {
            debug_assert!(
                !reading,
                "a future's reader cannot outlive a dropped writer"
            );
            self.set_pending(w, Some(Pending::Copy(CopyResult::Dropped, false)));
            return Ok(None);
        }
        let Some(p) = sh.pending else {
            self.shared[s.key()].pending = Some(PendingSide { inst, end: w });
            return Ok(None);
        };
        self.check_intra(s, inst)?;
        let transfer = if reading {
            self.move_elems(p.end, w, 1)
        } else {
            self.move_elems(w, p.end, 1)
        };
        self.notify_pending(s, CopyResult::Completed);
        self.set_pending(w, Some(Pending::Copy(CopyResult::Completed, false)));
        Ok(Some(transfer))
    }

    /// `stream_event` / `future_event`: computed at delivery.
    pub(crate) fn copy_event(&mut self, w: WaitableId, result: CopyResult, reclaim: bool) -> Event {
        let index = self.w(w).index;
        let e = self.end(w);
        let (s, kind, readable) = (e.shared, e.kind, e.readable);
        if reclaim {
            let sh = &mut self.shared[s.key()];
            debug_assert_eq!(sh.pending.map(|p| p.end), Some(w));
            if sh.pending.map(|p| p.end) == Some(w) {
                sh.pending = None;
            }
        }
        let e = self.end_mut(w);
        debug_assert!(e.copying());
        let progress = e.buffer.take().map_or(0, |b| b.progress);
        let (code, payload, done) = match kind {
            EndKind::Stream => (
                if readable {
                    EventCode::StreamRead
                } else {
                    EventCode::StreamWrite
                },
                result as u32 | progress << 4,
                result == CopyResult::Dropped,
            ),
            EndKind::Future => (
                if readable {
                    EventCode::FutureRead
                } else {
                    EventCode::FutureWrite
                },
                result as u32,
                result != CopyResult::Cancelled,
            ),
        };
        e.state = if done {
            CopyState::Done
        } else {
            CopyState::Idle
        };
        Event {
            code,
            index,
            payload,
        }
    }

    /// `canon stream.cancel-read/write`, `canon future.cancel-read/write` (`cancel_copy`).
    pub fn cancel_copy(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let r = self.cancel_copy_inner(kind, readable, elem, async_, i);
        self.guard(r)
    }

    fn cancel_copy_inner(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<Step<u32>, Trap> {
        let (t, _, _) = self.leaving()?;
        let w = self.end_at(i, kind, readable, elem)?;
        trap_if(
            self.end(w).state != CopyState::Copying || self.w(w).has_sync_waiter,
            Trap::CancelNotCopying(kind),
        )?;
        trap_if(self.w(w).wset.is_some() && !async_, Trap::SyncInWaitableSet)?;
        self.end_mut(w).state = CopyState::CancellingCopy;
        if self.w(w).pending.is_none() {
            let s = self.end(w).shared;
            self.notify_pending(s, CopyResult::Cancelled);
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

    /// `canon stream.drop-readable/writable`, `canon future.drop-readable/writable`.
    pub fn drop_end(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        i: u32,
    ) -> Result<(), Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let w = self.end_at(i, kind, readable, elem)?;
            let e = self.end(w);
            if kind == EndKind::Future && !readable {
                trap_if(e.state != CopyState::Done, Trap::DropFutureUnwritten)?;
            }
            trap_if(e.copying(), Trap::DropBusy(kind))?;
            self.inst_mut(inst).handles.remove(i)?;
            self.drop_end_waitable(w);
            Ok(())
        });
        self.guard(r)
    }

    /// `CopyEnd.drop` after the checks: the shared state learns the end is
    /// gone, and is freed with its last end.
    pub(crate) fn drop_end_waitable(&mut self, w: WaitableId) {
        let s = self.end(w).shared;
        let sh = &mut self.shared[s.key()];
        if !sh.dropped {
            sh.dropped = true;
            self.notify_pending(s, CopyResult::Dropped);
        }
        self.drop_waitable(w);
        let sh = &mut self.shared[s.key()];
        sh.ends -= 1;
        if sh.ends == 0 {
            self.shared.remove(s.key());
        }
    }
}
