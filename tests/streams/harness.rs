//! A hand-driven embedder for the stream and future tests: guest memories
//! are `Vec<u8>`s, the host ends' buffers are `Vec<u8>`s, and every
//! [`Transfer`] a built-in or a host operation returns is applied at once,
//! so the bytes really move.
#![allow(dead_code)]

use std::collections::HashMap;

use canon_async::{
    Action, CopyResult, ElemClass, ElemType, EndKind, Event, GuestBuf, HostCopy, HostCopyDone,
    InstanceId, LiftKind, Lifted, LowerCallee, Reading, ResumeValue, SharedId, Step, Store,
    SubtaskId, ThreadId, Transfer, TransferEnd, Trap, BLOCKED,
};

pub const S: EndKind = EndKind::Stream;
pub const F: EndKind = EndKind::Future;
pub const U8: ElemType = ElemType {
    id: 1,
    class: ElemClass::Number,
    size: 1,
    align: 1,
};
pub const UNIT: ElemType = ElemType {
    id: 2,
    class: ElemClass::None,
    size: 0,
    align: 1,
};
pub const F64: ElemType = ElemType {
    id: 3,
    class: ElemClass::Number,
    size: 8,
    align: 8,
};
/// `char`: not a number type, so no same-instance copies.
pub const CHAR: ElemType = ElemType {
    id: 4,
    class: ElemClass::Plain,
    size: 4,
    align: 4,
};
pub const U32: ElemType = ElemType {
    id: 5,
    class: ElemClass::Number,
    size: 4,
    align: 4,
};

pub const COMPLETED: u32 = CopyResult::Completed as u32;
pub const DROPPED: u32 = CopyResult::Dropped as u32;
pub const CANCELLED: u32 = CopyResult::Cancelled as u32;

/// `result | progress << 4`.
pub fn packed(result: u32, progress: u32) -> u32 {
    result | progress << 4
}

pub fn done(result: CopyResult, progress: u32) -> Option<HostCopyDone> {
    Some(HostCopyDone { result, progress })
}

pub const MEM: usize = 128;

pub struct H {
    pub s: Store,
    pub mem: HashMap<InstanceId, Vec<u8>>,
    /// The bytes of the host's current write on each host end.
    pub host_out: HashMap<SharedId, Vec<u8>>,
    /// Every byte the host read from each host end, in order.
    pub received: HashMap<SharedId, Vec<u8>>,
    /// Transfers applied, for tests that check them.
    pub transfers: Vec<Transfer>,
}

impl H {
    /// A harness over a store with definitions.py's reading (the scenarios
    /// come from run_tests.py).
    pub fn new() -> H {
        let mut s = Store::new();
        s.set_reading(Reading::Definitions);
        H {
            s,
            mem: HashMap::new(),
            host_out: HashMap::new(),
            received: HashMap::new(),
            transfers: Vec::new(),
        }
    }

    pub fn instance(&mut self) -> InstanceId {
        let i = self.s.new_instance();
        self.mem.insert(i, vec![0; MEM]);
        i
    }

    /// Invokes a stackful async export of `inst` and runs until it starts.
    pub fn start(&mut self, inst: InstanceId, func: u32) -> ThreadId {
        let f = Lifted {
            inst,
            func,
            kind: LiftKind::AsyncStackful,
            async_type: true,
        };
        self.s.invoke(f).unwrap();
        match self.s.next_action() {
            Action::Start {
                thread, func: g, ..
            } if g == func => thread,
            a => panic!("expected the start of {func}, got {a:?}"),
        }
    }

    /// The running task returns and its thread exits.
    pub fn finish(&mut self) {
        self.s.running().unwrap().task_return().unwrap();
        self.s.exit_thread().unwrap();
    }

    pub fn inst(&self) -> InstanceId {
        let t = self.s.current_thread().expect("a running thread");
        self.s.thread_instance(t).unwrap()
    }

    pub fn m(&mut self) -> &mut Vec<u8> {
        let i = self.inst();
        self.mem.get_mut(&i).unwrap()
    }

    pub fn apply(&mut self, t: Transfer) {
        self.transfers.push(t);
        let bytes = (t.count * t.elem.size) as usize;
        let data: Vec<u8> = match t.src {
            TransferEnd::Guest { inst, ptr, .. } => {
                self.mem[&inst][ptr as usize..][..bytes].to_vec()
            }
            TransferEnd::Host { shared, offset } => {
                let at = (offset * t.elem.size) as usize;
                self.host_out[&shared][at..][..bytes].to_vec()
            }
        };
        match t.dst {
            TransferEnd::Guest { inst, ptr, .. } => {
                self.mem.get_mut(&inst).unwrap()[ptr as usize..][..bytes].copy_from_slice(&data)
            }
            TransferEnd::Host { shared, .. } => {
                self.received.entry(shared).or_default().extend(data)
            }
        }
    }

    // ----- guest built-ins, for the running thread --------------------------

    pub fn new_ends(&mut self, kind: EndKind, elem: ElemType) -> (u32, u32) {
        let r = self.s.running().unwrap();
        let p = match kind {
            S => r.stream_new(elem),
            F => r.future_new(elem),
        }
        .unwrap();
        (p as u32, (p >> 32) as u32)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn try_copy(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        ptr: u32,
        len: u32,
    ) -> Result<Step<u32>, Trap> {
        let inst = self.inst();
        let buf = GuestBuf {
            mem: inst.as_u32(),
            ptr,
            len,
            mem_size: self.mem[&inst].len() as u64,
        };
        let r = self.s.running().unwrap();
        let out = match (kind, readable) {
            (S, true) => r.stream_read(elem, async_, i, buf),
            (S, false) => r.stream_write(elem, async_, i, buf),
            (F, true) => r.future_read(elem, async_, i, buf),
            (F, false) => r.future_write(elem, async_, i, buf),
        }?;
        if let Some(t) = out.transfer {
            self.apply(t);
        }
        Ok(out.step)
    }

    /// An async copy that must return at once: its result.
    #[track_caller]
    pub fn copy(
        &mut self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        i: u32,
        ptr: u32,
        len: u32,
    ) -> u32 {
        match self.try_copy(kind, readable, elem, true, i, ptr, len) {
            Ok(Step::Done(v)) => v,
            r => panic!("expected an async copy result, got {r:?}"),
        }
    }

    #[track_caller]
    pub fn read(&mut self, i: u32, ptr: u32, len: u32) -> u32 {
        self.copy(S, true, U8, i, ptr, len)
    }

    #[track_caller]
    pub fn write(&mut self, i: u32, ptr: u32, len: u32) -> u32 {
        self.copy(S, false, U8, i, ptr, len)
    }

    #[track_caller]
    pub fn cancel(&mut self, kind: EndKind, readable: bool, elem: ElemType, i: u32) -> u32 {
        let r = self.s.running().unwrap();
        let step = match (kind, readable) {
            (S, true) => r.stream_cancel_read(elem, true, i),
            (S, false) => r.stream_cancel_write(elem, true, i),
            (F, true) => r.future_cancel_read(elem, true, i),
            (F, false) => r.future_cancel_write(elem, true, i),
        };
        match step {
            Ok(Step::Done(v)) => v,
            r => panic!("expected an async cancel result, got {r:?}"),
        }
    }

    pub fn set_new(&mut self) -> u32 {
        self.s.running().unwrap().waitable_set_new().unwrap()
    }

    pub fn join(&mut self, w: u32, set: u32) {
        self.s.running().unwrap().waitable_join(w, set).unwrap()
    }

    /// `waitable-set.wait` on a set that has an event: the event, at once
    /// or after the thread yielded to the scheduler (which must resume it
    /// next: nothing else is ready in these tests).
    #[track_caller]
    pub fn wait_now(&mut self, set: u32) -> Event {
        let t = self.s.current_thread().unwrap();
        match self
            .s
            .running()
            .unwrap()
            .waitable_set_wait(false, set, 0)
            .unwrap()
        {
            Step::Done(e) => e,
            Step::Suspend => self.resumed_event(t),
        }
    }

    /// `waitable-set.wait` that blocks: the other threads run (through
    /// `between`) until this one resumes with the event.
    #[track_caller]
    pub fn wait_blocked(&mut self, set: u32) -> Step<Event> {
        self.s
            .running()
            .unwrap()
            .waitable_set_wait(false, set, 0)
            .unwrap()
    }

    /// The next action must resume `t` with an event.
    #[track_caller]
    pub fn resumed_event(&mut self, t: ThreadId) -> Event {
        match self.s.next_action() {
            Action::Resume {
                thread,
                value: ResumeValue::Event { event, .. },
            } if thread == t => event,
            a => panic!("expected an event for {t:?}, got {a:?}"),
        }
    }

    /// The next action must resume `t` with an i32.
    #[track_caller]
    pub fn resumed_i32(&mut self, t: ThreadId) -> u32 {
        match self.s.next_action() {
            Action::Resume {
                thread,
                value: ResumeValue::I32(v),
            } if thread == t => v,
            a => panic!("expected an i32 for {t:?}, got {a:?}"),
        }
    }

    /// The running thread waits for a host "future": a synchronous call of
    /// a host function that the test resolves later with [`H::unpark`].
    #[track_caller]
    pub fn park(&mut self) -> SubtaskId {
        let sub = self
            .s
            .running()
            .unwrap()
            .canon_lower(LowerCallee::Host, false)
            .unwrap();
        match self.s.next_action() {
            Action::HostCall { subtask } if subtask == sub => sub,
            a => panic!("expected the host call, got {a:?}"),
        }
    }

    /// Sets the host "future" `sub`: its caller becomes ready.
    pub fn unpark(&mut self, sub: SubtaskId) {
        self.s.host_return(sub).unwrap();
    }

    /// The next action must resume `t` from [`H::park`].
    #[track_caller]
    pub fn resumed_from_park(&mut self, t: ThreadId) {
        match self.s.next_action() {
            Action::Resume {
                thread,
                value: ResumeValue::Returned(_),
            } if thread == t => {}
            a => panic!("expected {t:?} back from its host call, got {a:?}"),
        }
    }

    #[track_caller]
    pub fn idle(&mut self) {
        assert_eq!(self.s.next_action(), Action::Idle);
    }

    // ----- host ends ------------------------------------------------------------

    /// The host writes `bytes` (whole elements of `elem`) to `shared`.
    pub fn host_write(&mut self, shared: SharedId, elem: ElemType, bytes: &[u8]) -> HostCopy {
        // Payload-less: one "byte" per element.
        let n = (bytes.len() as u32)
            .checked_div(elem.size)
            .unwrap_or(bytes.len() as u32);
        self.host_out.insert(shared, bytes.to_vec());
        let c = self.s.host_end(shared).unwrap().write(n).unwrap();
        if let Some(t) = c.transfer {
            self.apply(t);
        }
        c
    }

    /// The host keeps a readable end it lifted (its received bytes start empty).
    pub fn adopt(&mut self, shared: SharedId) {
        self.s.host_adopt(shared).unwrap();
        self.received.remove(&shared);
    }

    pub fn host_read(&mut self, shared: SharedId, n: u32) -> HostCopy {
        let c = self.s.host_end(shared).unwrap().read(n).unwrap();
        if let Some(t) = c.transfer {
            self.apply(t);
        }
        c
    }

    pub fn received(&self, shared: SharedId) -> Vec<u8> {
        self.received.get(&shared).cloned().unwrap_or_default()
    }
}

/// The running thread of a fresh store with one instance, for trap tests.
pub fn one() -> (H, InstanceId) {
    let mut h = H::new();
    let i = h.instance();
    h.start(i, 0);
    (h, i)
}

/// Asserts that `r` is the trap whose message contains `msg`.
#[track_caller]
pub fn traps<T: std::fmt::Debug>(r: Result<T, Trap>, msg: &str) {
    match r {
        Err(t) => assert!(
            t.message().contains(msg),
            "expected a trap with {msg:?}, got {:?}",
            t.message()
        ),
        Ok(v) => panic!("expected a trap with {msg:?}, got Ok({v:?})"),
    }
}

pub const B: u32 = BLOCKED;
