//! Error types: a guest-visible trap, and everything else that makes a
//! directive fail (encoding, validation, unsupported constructs).

use std::fmt;

/// A trap raised by the runtime on behalf of the Canonical ABI or core wasm.
///
/// The message is compared as a substring with the text the `.wast` file
/// expects, so it follows the wording of wasmtime where the suite pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap(pub String);

/// What [`Trap`]'s `Display` puts before the message.
pub const TRAP_PREFIX: &str = "wasm trap: ";

impl Trap {
    /// A trap with the given message. A message that already starts with
    /// [`TRAP_PREFIX`] (a trap's text passed on) loses it, so that the
    /// printed trap carries the prefix once.
    pub fn new(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        match msg.strip_prefix(TRAP_PREFIX) {
            Some(rest) => Trap(rest.to_string()),
            None => Trap(msg),
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TRAP_PREFIX}{}", self.0)
    }
}

impl std::error::Error for Trap {}

/// A trap of the core (a built-in's `trap_if`, or [`canon_async::Action::Trap`]),
/// with the text the reference suite matches.
impl From<canon_async::Trap> for Trap {
    fn from(t: canon_async::Trap) -> Self {
        Trap::new(t.message())
    }
}

impl wasmi::errors::HostError for Trap {}

/// A misuse of the core by this runtime (its own bug, never the guest's),
/// found inside a host function: it unwinds the core wasm call like a trap,
/// but the driver does not report it to the core as a guest trap, so no
/// instance is poisoned by it. The driver returns it as an internal trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderFault(pub canon_async::EmbedderError);

impl fmt::Display for EmbedderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal: embedder error: {}", self.0)
    }
}

impl std::error::Error for EmbedderFault {}

impl wasmi::errors::HostError for EmbedderFault {}

/// Returns `Err(Trap)` with the message when the condition holds.
pub fn trap_if(cond: bool, msg: &str) -> Result<(), Trap> {
    if cond {
        Err(Trap::new(msg))
    } else {
        Ok(())
    }
}

/// Anything that can go wrong while running a directive.
#[derive(Debug, Clone)]
pub enum Error {
    /// The guest trapped (at instantiation or during a call).
    Trap(Trap),
    /// The text or binary could not be encoded, parsed or validated.
    Invalid(String),
    /// The runtime does not implement something the file uses.
    Unsupported(String),
    /// wasmi rejected a core module that wasmparser (with every feature on)
    /// accepted: invalid for this engine, or a feature wasmi lacks.
    EngineRejected(String),
    /// An import the linker cannot satisfy: missing, or of another type.
    Link(String),
    /// Any other failure of the runtime (a missing export, a misuse).
    Runtime(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Trap(t) => write!(f, "{t}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Unsupported(m) => write!(f, "not yet supported: {m}"),
            Error::EngineRejected(m) => write!(f, "wasmi rejected a core module: {m}"),
            Error::Link(m) => write!(f, "link error: {m}"),
            Error::Runtime(m) => write!(f, "runtime error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Trap> for Error {
    fn from(t: Trap) -> Self {
        Error::Trap(t)
    }
}

/// Converts a wasmi error into a trap, keeping our own host traps intact.
pub fn trap_from_wasmi(e: wasmi::Error) -> Trap {
    if let Some(t) = e.downcast_ref::<Trap>() {
        return t.clone();
    }
    if let Some(code) = e.as_trap_code() {
        return Trap::new(code.trap_message());
    }
    Trap::new(e.to_string())
}

/// Converts a trap into a wasmi error so that it unwinds through core wasm.
pub fn trap_to_wasmi(t: Trap) -> wasmi::Error {
    wasmi::Error::host(t)
}
