//! The canon built-ins, one method of [`Running`](crate::Running) each,
//! named as the spec names them and grouped as CanonicalABI.md orders them.
//!
//! Every built-in acts for the running thread (the one the last
//! [`Action`](crate::Action) started or resumed), which
//! [`Store::running`](crate::Store::running) checks once. A trap poisons the
//! instances of the call before it is returned; the embedder then traps
//! the guest's core wasm call with it.

mod error_context;
mod host_end;
mod lower;
mod resource;
mod stream;
mod subtask;
mod task;
mod thread;
mod transfer;
mod waitable;

pub use host_end::{HostCopy, HostCopyDone, HostEnd};
pub use lower::LowerCallee;
pub use resource::ResourceDrop;
pub use stream::{CopyOutcome, GuestBuf, Transfer, TransferEnd};
pub use thread::{ThreadSwitch, SYNC_CALL_FUNC};
