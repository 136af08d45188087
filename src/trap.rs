//! Traps: every `trap_if` of the Canonical ABI is one [`Trap`] variant.
//!
//! [`Trap::message`] gives the text the reference `.wast` suite matches
//! (substring match), which is the text Wasmtime uses.

use alloc::string::String;
use core::fmt;

use crate::copy::EndKind;

/// A guest-visible trap raised by a canon built-in, a lift, or the driving
/// loop. Traps poison the instance they occur in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trap {
    /// A handle index that is out of range or refers to an empty slot.
    UnknownHandle(u32),
    /// A handle of the wrong kind (a resource where a waitable set is expected, ...).
    WrongHandleKind(u32),
    /// A resource handle of another resource type.
    WrongResourceType(u32),
    /// A thread index that is out of range or refers to an empty slot.
    UnknownThread(u32),
    /// A table grew past `2^28 - 1` entries.
    TableFull,
    /// A built-in was called while `may_leave` is false (post-return, realloc).
    CannotLeave,
    /// The instance is poisoned by an earlier trap, or may not be entered.
    CannotEnter,
    /// A task of a synchronous function type, or a start function, would block.
    CannotBlockSync,
    /// A callback returned a code above `WAIT`.
    UnsupportedCallbackCode(u32),
    /// `backpressure.inc` reached `2^16`.
    BackpressureOverflow,
    /// `backpressure.dec` went below zero.
    BackpressureUnderflow,
    /// `task.return` or `task.cancel` in a task lifted synchronously.
    TaskNotAsync,
    /// `task.return` on a task that already resolved.
    TaskAlreadyResolved,
    /// `task.cancel` when no cancellation was delivered.
    TaskCancelNotDelivered,
    /// `task.return`/`task.cancel` while borrowed handles remain.
    BorrowsRemain,
    /// The last thread of a task exited before the task resolved.
    TaskNotResolved,
    /// `waitable-set.drop` of a set with members.
    SetNotEmpty,
    /// `waitable-set.drop` of a set that a thread is waiting on.
    SetHasWaiters,
    /// A synchronous operation on a waitable that is in a waitable set.
    SyncInWaitableSet,
    /// `waitable.join` while a thread waits on the waitable synchronously.
    JoinWithSyncWaiter,
    /// `subtask.cancel` after the resolution was delivered.
    SubtaskResolveDelivered,
    /// A second `subtask.cancel`.
    SubtaskCancelTwice,
    /// `subtask.drop` before the resolution was delivered.
    SubtaskNotResolved,
    /// `resource.drop` (or a lift of `own`) while the handle is lent out.
    ResourceBorrowed,
    /// Lifting an `own` from a borrow handle.
    NotOwned,
    /// A stream/future operation on an end whose element type differs.
    EndTypeMismatch(EndKind),
    /// A read or write on an end that is already copying.
    EndBusy(EndKind),
    /// A read on a stream end after the writer dropped.
    ReadAfterDone(EndKind),
    /// A write on an end after the reader dropped (streams) or after the value was written (futures).
    WriteAfterDone(EndKind),
    /// Dropping a writable end while a copy is in progress.
    DropBusy(EndKind),
    /// Dropping a future's writable end before it wrote or saw DROPPED.
    DropFutureUnwritten,
    /// A cancel on an end that is not copying, or that already cancels synchronously.
    CancelNotCopying(EndKind),
    /// Lifting an end that is not a readable end.
    LiftNotReadable(EndKind),
    /// Removing a readable end that is busy: lifting it, or dropping it.
    LiftBusy(EndKind),
    /// Lifting an end after it is DONE.
    LiftAfterDone(EndKind),
    /// Lifting an end that is in a waitable set.
    LiftInWaitableSet(EndKind),
    /// Same-instance read and write of a type that is not a number or payload-less.
    IntraComponentCopy(EndKind),
    /// A stream or future buffer longer than `2^28 - 1`.
    BufferTooLong,
    /// A misaligned pointer.
    UnalignedPointer,
    /// A pointer range outside guest memory.
    OutOfBounds,
    /// `thread.resume-later` / `*-then-resume` on a thread that is not suspended.
    ThreadNotSuspended,
    /// `thread.new-indirect` with a bad table index or function type.
    BadFunctionReference,
    /// The store cannot make progress: every thread waits and no host work
    /// is pending. The core never raises it: [`Action::Idle`](crate::Action::Idle)
    /// says that nothing can run, and an embedder with no host work pending
    /// reports this trap (with [`Store::describe_blocked`](crate::Store::describe_blocked)
    /// for the detail).
    Deadlock,
    /// The core wasm code trapped; the embedder passes its message through.
    Wasm(String),
}

impl Trap {
    /// The message, as the reference suite matches it (substring), without
    /// a "wasm trap: " prefix: an embedder that prints one adds it itself.
    pub fn message(&self) -> String {
        use alloc::format;
        match self {
            Trap::UnknownHandle(i) => format!("unknown handle index {i}"),
            Trap::WrongHandleKind(i) => format!("handle index {i} used with the wrong type"),
            Trap::WrongResourceType(i) => format!(
                "handle index {i} used with the wrong type, expected guest-defined resource but found a different guest-defined resource"
            ),
            Trap::UnknownThread(i) => format!("unknown thread index {i}"),
            Trap::TableFull => "handle table full".into(),
            Trap::CannotLeave => "cannot leave component instance".into(),
            Trap::CannotEnter => "cannot enter component instance".into(),
            Trap::CannotBlockSync => "cannot block a synchronous task before returning".into(),
            Trap::UnsupportedCallbackCode(c) => format!("unsupported callback code: {c}"),
            Trap::BackpressureOverflow => "backpressure counter overflow".into(),
            Trap::BackpressureUnderflow => "backpressure counter underflow".into(),
            Trap::TaskNotAsync => "task.return or task.cancel used in a synchronously lifted task".into(),
            Trap::TaskAlreadyResolved => "task.return called more than once, or after cancellation".into(),
            Trap::TaskCancelNotDelivered => "task.cancel called before cancellation was delivered".into(),
            Trap::BorrowsRemain => "borrow handles still remain at the end of the call".into(),
            Trap::TaskNotResolved => "cannot exit a task before it returned or was cancelled".into(),
            Trap::SetNotEmpty => "cannot drop waitable set with members".into(),
            Trap::SetHasWaiters => "cannot drop waitable set with waiters".into(),
            Trap::SyncInWaitableSet => {
                "waitable cannot be used synchronously while added to a waitable set".into()
            }
            // The reference suite (trap-if-sync-and-waitable-set.wast,
            // join-during-sync-*) expects the same text as SyncInWaitableSet.
            Trap::JoinWithSyncWaiter => {
                "waitable cannot be used synchronously while added to a waitable set (it is waited on synchronously)".into()
            }
            Trap::SubtaskResolveDelivered => "cannot cancel a subtask whose resolution was delivered".into(),
            Trap::SubtaskCancelTwice => "cannot cancel a subtask twice".into(),
            Trap::SubtaskNotResolved => "cannot drop a subtask which has not yet resolved".into(),
            Trap::ResourceBorrowed => "cannot remove owned resource while borrowed".into(),
            Trap::NotOwned => "cannot lift an owned handle from a borrow handle".into(),
            Trap::EndTypeMismatch(k) => format!("{} end used with the wrong element type", k.name()),
            // The reference suite's text (big-interleaving-test.wast).
            Trap::EndBusy(_) => "cannot have concurrent operations active on a future/stream".into(),
            Trap::ReadAfterDone(EndKind::Stream) => {
                "cannot read from stream after being notified that the writable end dropped".into()
            }
            Trap::ReadAfterDone(EndKind::Future) => "cannot read from future after previous read succeeded".into(),
            Trap::WriteAfterDone(EndKind::Stream) => {
                "cannot write to stream after being notified that the readable end dropped".into()
            }
            Trap::WriteAfterDone(EndKind::Future) => {
                "cannot write to future after previous write succeeded or readable end dropped".into()
            }
            Trap::DropBusy(k) => format!("cannot drop busy {}", k.name()),
            Trap::DropFutureUnwritten => "cannot drop future write end without first writing a value".into(),
            Trap::CancelNotCopying(k) => format!("cannot cancel a {} copy that is not pending", k.name()),
            Trap::LiftNotReadable(k) => format!("cannot lift the writable end of a {}", k.name()),
            Trap::LiftBusy(k) => format!("cannot remove busy {}", k.name()),
            Trap::LiftAfterDone(EndKind::Stream) => {
                "cannot lift stream after being notified that the writable end dropped".into()
            }
            Trap::LiftAfterDone(EndKind::Future) => "cannot lift future after previous read succeeded".into(),
            Trap::LiftInWaitableSet(k) => format!("cannot lift {} while it's in a waitable set", k.name()),
            Trap::IntraComponentCopy(k) => format!("cannot read from and write to intra-component {}", k.name()),
            Trap::BufferTooLong => "buffer length exceeds 2^28-1".into(),
            Trap::UnalignedPointer => "unaligned pointer".into(),
            Trap::OutOfBounds => "pointer out of bounds of memory".into(),
            Trap::ThreadNotSuspended => "cannot resume a thread that is not suspended".into(),
            Trap::BadFunctionReference => "invalid function reference for thread.new-indirect".into(),
            Trap::Deadlock => "deadlock detected: event loop cannot make further progress".into(),
            Trap::Wasm(m) => m.clone(),
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for Trap {}

/// Shorthand used by the built-ins: `trap_if(cond, Trap::X)?`.
#[inline]
pub(crate) fn trap_if(cond: bool, trap: Trap) -> Result<(), Trap> {
    if cond {
        Err(trap)
    } else {
        Ok(())
    }
}
