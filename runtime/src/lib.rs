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
pub mod component;
pub mod driver;
pub mod engine;
pub mod error;
