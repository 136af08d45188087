//! The two ways an embedder call fails: the guest trapped ([`Trap`], which
//! poisons the instances of the call), or the embedder misused the API
//! ([`EmbedderError`], which changes nothing and never reaches a guest).

use core::fmt;

use crate::trap::Trap;

/// A misuse of the embedder API (never caused by guest input). The call
/// that returns it has changed nothing: no instance is poisoned, and the
/// guest never sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedderError {
    /// A built-in (or a report that a core function returned) while no
    /// thread runs ([`Store::running`](crate::Store::running)).
    NoRunningThread,
    /// The id names nothing (it was freed, or never existed).
    UnknownId,
    /// The object is not in the state the call needs.
    WrongState,
    /// [`Store::invoke`](crate::Store::invoke) while guest code runs or a
    /// call is part-way through (not at a tick boundary).
    NotAtTickBoundary,
    /// [`Store::end_sync_call`](crate::Store::end_sync_call) or
    /// [`Store::end_realloc`](crate::Store::end_realloc) while the running
    /// thread is not the thread of the innermost synchronous call begun
    /// with [`Store::begin_sync_call`](crate::Store::begin_sync_call).
    NotInSyncCall,
}

impl fmt::Display for EmbedderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbedderError::NoRunningThread => "no thread is running",
            EmbedderError::UnknownId => "unknown id",
            EmbedderError::WrongState => "object is not in the state this call needs",
            EmbedderError::NotAtTickBoundary => "invoke while guest code runs",
            EmbedderError::NotInSyncCall => {
                "the running thread is not the thread of a synchronous call begun by the embedder"
            }
        })
    }
}

impl core::error::Error for EmbedderError {}

/// What an embedder call that can both trap and be misused returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The guest trapped: the instances of the call are poisoned; trap the
    /// guest's core wasm call with it.
    Trap(Trap),
    /// The embedder misused the API: nothing changed.
    Embedder(EmbedderError),
}

impl From<Trap> for Error {
    fn from(t: Trap) -> Self {
        Error::Trap(t)
    }
}

impl From<EmbedderError> for Error {
    fn from(e: EmbedderError) -> Self {
        Error::Embedder(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Trap(t) => write!(f, "{t}"),
            Error::Embedder(e) => write!(f, "embedder error: {e}"),
        }
    }
}

impl core::error::Error for Error {}
