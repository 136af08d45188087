//! `canon-async-wasmi`: a WebAssembly component runtime on wasmi over the
//! `canon-async` scheduling core.
//!
//! The layers: `canon-async` (the async Canonical ABI as a sans-IO state
//! machine) ← this crate (component parsing, instantiation, the Canonical
//! ABI's values, the wasmi glue and the driving loop) ← the `.wast`
//! conformance runner (`canon-async-spec`) and the command-line tool.

pub mod abi;
pub mod builtins;
pub mod canon;
pub mod clock;
pub mod component;
pub mod driver;
pub mod error;
pub mod host;
pub mod linker;
pub mod state;
pub mod store;

pub use abi::types::{FuncTy, Ty};
pub use abi::val::Val;
pub use clock::ClockKind;
pub use error::{Error, Trap};
pub use linker::Linker;
pub use state::{CopyDone, HostCall, HostCx, HostError, HostResource};
pub use store::{Call, Component, Config, Engine, Func, Instance, Schedule, Store, StoreStats};
