//! `canon-async-spec`: a WebAssembly component runtime over wasmi and a
//! `.wast` runner, used to check `canon-async` against the reference suite
//! of the Component Model and against the project's own `.wast` files.

pub mod abi;
pub mod builtins;
pub mod canon;
pub mod component;
pub mod driver;
pub mod engine;
pub mod error;
pub mod host_val;
pub mod suite;
pub mod wast_runner;
