//! The copy state of `definitions.py`'s `SharedStreamImpl` and
//! `SharedFutureImpl` (the rendezvous of a reader and a writer), the
//! `CopyEnd` subclasses' buffers and states, and the `stream_event` /
//! `future_event` computed at delivery. The `stream.*` / `future.*`
//! built-ins over them are in `canon/stream.rs`; the host's end in
//! `canon/host_end.rs`.

use crate::canon::{Transfer, TransferEnd};
use crate::copy::{
    CopyEnd, CopyResult, CopyState, ElemClass, EndKind, GuestBuffer, Party, PendingSide,
};
use crate::ids::{InstanceId, SharedId, WaitableId};
use crate::store::Store;
use crate::trap::{trap_if, Trap};
use crate::waitable::{Event, EventCode, Pending};

impl Store {
    pub(crate) fn end(&self, w: WaitableId) -> &CopyEnd {
        self.w(w).end().expect("waitable is a copy end")
    }

    pub(crate) fn end_mut(&mut self, w: WaitableId) -> &mut CopyEnd {
        self.w_mut(w).end_mut().expect("waitable is a copy end")
    }

    /// The same-instance rule: only payload-less and number elements.
    pub(crate) fn check_intra(&self, s: SharedId, inst: Option<InstanceId>) -> Result<(), Trap> {
        let sh = &self.shared[s.key()];
        let pending_inst = sh.pending.and_then(|p| p.inst);
        trap_if(
            inst.is_some()
                && pending_inst == inst
                && !matches!(sh.elem.class, ElemClass::None | ElemClass::Number),
            Trap::IntraComponentCopy(sh.kind),
        )
    }

    pub(crate) fn party_buf(&self, s: SharedId, p: Party) -> Option<GuestBuffer> {
        match p {
            Party::Guest(w) => self.end(w).buffer,
            Party::Host => self.shared[s.key()].host.as_ref().and_then(|h| h.buffer),
        }
    }

    pub(crate) fn party_buf_mut(&mut self, s: SharedId, p: Party) -> &mut GuestBuffer {
        let b = match p {
            Party::Guest(w) => self.end_mut(w).buffer.as_mut(),
            Party::Host => self.shared[s.key()]
                .host
                .as_mut()
                .and_then(|h| h.buffer.as_mut()),
        };
        b.expect("buffer of a copying end")
    }

    /// `Buffer.remain`.
    pub(crate) fn remain(&self, s: SharedId, p: Party) -> u32 {
        self.party_buf(s, p).map_or(0, |b| b.remain())
    }

    /// `Buffer.is_zero_length`.
    pub(crate) fn zero_length(&self, s: SharedId, p: Party) -> bool {
        self.party_buf(s, p).is_none_or(|b| b.length == 0)
    }

    /// `set_pending_event` of the party's `stream_event` / `future_event`.
    pub(crate) fn set_copy_event(
        &mut self,
        s: SharedId,
        p: Party,
        result: CopyResult,
        reclaim: bool,
    ) {
        match p {
            Party::Guest(w) => self.set_pending(w, Some(Pending::Copy(result, reclaim))),
            Party::Host => {
                if let Some(h) = self.shared[s.key()].host.as_mut() {
                    h.event = Some((result, reclaim));
                    self.host_events.push(s);
                }
            }
        }
    }

    /// Moves `n` elements from the writer `src` to the reader `dst`
    /// (`dst.write(src.read(n))`): the embedder moves them as the returned
    /// [`Transfer`] says.
    pub(crate) fn move_elems(&mut self, s: SharedId, src: Party, dst: Party, n: u32) -> Transfer {
        let elem = self.shared[s.key()].elem;
        let side = |st: &mut Store, p: Party| {
            let inst = match p {
                Party::Guest(w) => Some(st.w(w).inst),
                Party::Host => None,
            };
            let b = st.party_buf_mut(s, p);
            let at = match inst {
                Some(inst) => TransferEnd::Guest {
                    inst,
                    mem: b.mem,
                    ptr: b.ptr,
                },
                None => TransferEnd::Host {
                    shared: s,
                    offset: b.progress,
                },
            };
            debug_assert!(n <= b.remain());
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

    /// `reset_and_notify_pending(result)`.
    pub(crate) fn notify_pending(&mut self, s: SharedId, result: CopyResult) {
        if let Some(p) = self.shared[s.key()].pending.take() {
            self.set_copy_event(s, p.end, result, false);
        }
    }

    /// `SharedStreamImpl.read` / `write` for `me`, which just started
    /// copying (`inst` is `None` for the host).
    pub(crate) fn stream_rendezvous(
        &mut self,
        s: SharedId,
        inst: Option<InstanceId>,
        me: Party,
        reading: bool,
    ) -> Result<Option<Transfer>, Trap> {
        let sh = &self.shared[s.key()];
        if sh.dropped {
            self.set_copy_event(s, me, CopyResult::Dropped, false);
            return Ok(None);
        }
        let Some(p) = sh.pending else {
            self.shared[s.key()].pending = Some(PendingSide { inst, end: me });
            return Ok(None);
        };
        self.check_intra(s, inst)?;
        let (pend_remain, my_remain) = (self.remain(s, p.end), self.remain(s, me));
        if pend_remain > 0 {
            let mut transfer = None;
            if my_remain > 0 {
                let n = pend_remain.min(my_remain);
                transfer = Some(if reading {
                    self.move_elems(s, p.end, me, n)
                } else {
                    self.move_elems(s, me, p.end, n)
                });
                // `pending_on_copy(reset_pending)`: the pending side stays
                // pending until its event is delivered.
                self.set_copy_event(s, p.end, CopyResult::Completed, true);
            }
            self.set_copy_event(s, me, CopyResult::Completed, false);
            Ok(transfer)
        } else if !reading && self.zero_length(s, me) && self.zero_length(s, p.end) {
            // A zero-length write meets a zero-length pending read: the
            // write completes and the reader stays pending.
            self.set_copy_event(s, me, CopyResult::Completed, false);
            Ok(None)
        } else {
            self.notify_pending(s, CopyResult::Completed);
            self.shared[s.key()].pending = Some(PendingSide { inst, end: me });
            Ok(None)
        }
    }

    /// `SharedFutureImpl.read` / `write`.
    pub(crate) fn future_rendezvous(
        &mut self,
        s: SharedId,
        inst: Option<InstanceId>,
        me: Party,
        reading: bool,
    ) -> Result<Option<Transfer>, Trap> {
        let sh = &self.shared[s.key()];
        if sh.dropped {
            debug_assert!(
                !reading,
                "a future's reader cannot outlive a dropped writer"
            );
            self.set_copy_event(s, me, CopyResult::Dropped, false);
            return Ok(None);
        }
        let Some(p) = sh.pending else {
            self.shared[s.key()].pending = Some(PendingSide { inst, end: me });
            return Ok(None);
        };
        self.check_intra(s, inst)?;
        let transfer = if reading {
            self.move_elems(s, p.end, me, 1)
        } else {
            self.move_elems(s, me, p.end, 1)
        };
        self.notify_pending(s, CopyResult::Completed);
        self.set_copy_event(s, me, CopyResult::Completed, false);
        Ok(Some(transfer))
    }

    /// The result, the progress and the new state of a delivered copy
    /// event (the parts `stream_event` and `future_event` share).
    pub(crate) fn deliver_copy(
        &mut self,
        s: SharedId,
        p: Party,
        result: CopyResult,
        reclaim: bool,
    ) -> u32 {
        let sh = &mut self.shared[s.key()];
        if reclaim {
            // `reclaim_buffer` = `reset_pending`: the party was left pending
            // by `pending_on_copy`, and nothing else can have replaced it.
            debug_assert_eq!(sh.pending.map(|q| q.end), Some(p));
            if sh.pending.map(|q| q.end) == Some(p) {
                sh.pending = None;
            }
        }
        let kind = sh.kind;
        let (state, buffer) = match p {
            Party::Guest(w) => {
                let e = self.end_mut(w);
                (&mut e.state, &mut e.buffer)
            }
            Party::Host => {
                let h = self.shared[s.key()].host.as_mut().expect("host end");
                (&mut h.state, &mut h.buffer)
            }
        };
        debug_assert!(matches!(
            *state,
            CopyState::Copying | CopyState::CancellingCopy
        ));
        let done = match kind {
            EndKind::Stream => result == CopyResult::Dropped,
            EndKind::Future => result != CopyResult::Cancelled,
        };
        *state = if done {
            CopyState::Done
        } else {
            CopyState::Idle
        };
        buffer.take().map_or(0, |b| b.progress)
    }

    /// `stream_event` / `future_event`: computed at delivery.
    pub(crate) fn copy_event(&mut self, w: WaitableId, result: CopyResult, reclaim: bool) -> Event {
        let index = self.w(w).index;
        let e = self.end(w);
        let (s, kind, readable) = (e.shared, e.kind, e.readable);
        let progress = self.deliver_copy(s, Party::Guest(w), result, reclaim);
        let (code, payload) = match (kind, readable) {
            (EndKind::Stream, true) => (EventCode::StreamRead, result as u32 | progress << 4),
            (EndKind::Stream, false) => (EventCode::StreamWrite, result as u32 | progress << 4),
            (EndKind::Future, true) => (EventCode::FutureRead, result as u32),
            (EndKind::Future, false) => (EventCode::FutureWrite, result as u32),
        };
        Event {
            code,
            index,
            payload,
        }
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
