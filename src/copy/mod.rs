//! Streams and futures: the shared rendezvous state and the copy ends.

mod shared;

use crate::ids::{InstanceId, SharedId, WaitableId};

/// The kind of a stream or future end (`stream<T>` or `future<T>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndKind {
    /// `stream<T>`.
    Stream,
    /// `future<T>`.
    Future,
}

impl EndKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EndKind::Stream => "stream",
            EndKind::Future => "future",
        }
    }
}

/// `CopyResult`.
// One byte (`as u32` gives the guest-visible value): a pending copy event
// and its waitable stay small (path 7 of the benchmarks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CopyResult {
    /// The copy completed (possibly partially, for streams).
    Completed = 0,
    /// The other end was dropped.
    Dropped = 1,
    /// The copy was cancelled.
    Cancelled = 2,
}

/// `CopyState` of one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyState {
    /// No copy in progress.
    Idle,
    /// A read or write is in progress.
    Copying,
    /// A cancel of the copy in progress was requested.
    CancellingCopy,
    /// The end can no longer copy.
    Done,
}

/// The element type of a stream or future, as far as the core needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ElemType {
    /// The embedder's identity for the type: two ends are compatible iff equal.
    pub id: u32,
    /// What a copy of the elements needs.
    pub class: ElemClass,
    /// `elem_size` in bytes (0 for payload-less).
    pub size: u32,
    /// `alignment` in bytes (1 for payload-less).
    pub align: u32,
}

/// How elements of a stream or future move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemClass {
    /// `stream` / `future` without a payload: the pointer is ignored.
    None,
    /// A number type: plain bytes, and same-instance copies are allowed.
    Number,
    /// Plain data (records of numbers, ...): one bulk memory copy.
    Plain,
    /// Elements that carry handles or need lifting: through the embedder's element hook.
    Lifted,
}

/// A guest buffer of a pending copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestBuffer {
    /// The embedder's memory id ([`GuestBuf::mem`](crate::GuestBuf::mem)).
    pub mem: u32,
    /// The next element's address.
    pub ptr: u32,
    /// The length in elements.
    pub length: u32,
    /// Elements copied so far.
    pub progress: u32,
}

impl GuestBuffer {
    pub(crate) fn remain(&self) -> u32 {
        self.length - self.progress
    }
}

/// One end of a stream or future (the spec's `CopyEnd` subclasses).
#[derive(Debug)]
pub(crate) struct CopyEnd {
    pub shared: SharedId,
    pub kind: EndKind,
    pub readable: bool,
    pub state: CopyState,
    pub buffer: Option<GuestBuffer>,
}

impl CopyEnd {
    pub fn copying(&self) -> bool {
        matches!(self.state, CopyState::Copying | CopyState::CancellingCopy)
    }
}

/// A participant of a copy: a guest end, or the host end of the shared state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Party {
    Guest(WaitableId),
    Host,
}

/// The side of a copy that waits for its partner (`pending_inst`,
/// `pending_buffer` and the callbacks, which live on the party's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingSide {
    /// `None` for the host.
    pub inst: Option<InstanceId>,
    pub end: Party,
}

/// The end of a stream or future that the host holds (see
/// [`Store::host_end`](crate::Store::host_end)): a copy end without a
/// handle, whose buffer lives in host memory.
#[derive(Debug)]
pub(crate) struct HostSide {
    pub readable: bool,
    pub state: CopyState,
    /// The host's buffer of the copy in progress (`ptr` unused).
    pub buffer: Option<GuestBuffer>,
    /// The pending event: the copy result, and whether delivery reclaims
    /// the buffer (`reset_pending`).
    pub event: Option<(CopyResult, bool)>,
    /// Whether a guest's cancel of a copy waiting on this end waits for
    /// the host ([`HostEnd::defer_cancel`](crate::HostEnd::defer_cancel)).
    pub defer_cancel: bool,
    /// The guest end whose cancel waits for the host.
    pub cancel_requested: Option<WaitableId>,
}

/// `SharedStreamImpl` / `SharedFutureImpl`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub kind: EndKind,
    pub elem: ElemType,
    pub dropped: bool,
    pub pending: Option<PendingSide>,
    /// Live ends of this stream or future: handles, ends in transit
    /// between a lift and a lower, and the host end.
    pub ends: u32,
    /// The end the host holds, if any.
    pub host: Option<HostSide>,
}
