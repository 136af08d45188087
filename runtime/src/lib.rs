#![warn(missing_docs)]

//! `canon-async-wasmi`: a WebAssembly component runtime on wasmi over the
//! `canon-async` scheduling core.
//!
//! The layers: `canon-async` (the async Canonical ABI as a sans-IO state
//! machine) ← this crate (component parsing, instantiation, the Canonical
//! ABI's values, the wasmi glue, the linker with host functions, and the
//! event loop) ← the `.wast` conformance runner (`canon-async-spec`) and
//! the command-line tool.
//!
//! The embedding API follows the shape Wasmtime users know: an [`Engine`]
//! (configuration), a [`Component`] (parsed and compiled once), a
//! [`Linker`] (host functions and resource types by their full names), a
//! [`Store`] (the core store, wasmi's store and the event loop) and an
//! [`Instance`] with its exports. Host functions take and return [`Val`]s
//! and declare their [`FuncTy`], checked against the import's type when a
//! component is instantiated; an asynchronous one completes its
//! [`HostCall`] now or later (here on a timer of the store's clock).
//!
//! ```
//! use std::time::Duration;
//! use canon_async_wasmi::{ClockKind, Component, Config, Engine, FuncTy, Linker, Store, Ty, Val};
//!
//! // A component that calls `double` (sync) and then `slow-inc` (async).
//! let wat = r#"(component
//!   (import "example:host/math@0.1.0" (instance $h
//!     (export "double" (func (param "x" u32) (result u32)))
//!     (export "slow-inc" (func async (param "x" u32) (result u32)))))
//!   (alias export $h "double" (func $double))
//!   (alias export $h "slow-inc" (func $slow-inc))
//!   (core func $double (canon lower (func $double)))
//!   (core func $slow-inc (canon lower (func $slow-inc)))
//!   (core func $return (canon task.return (result u32)))
//!   (core module $M
//!     (import "" "double" (func $double (param i32) (result i32)))
//!     (import "" "slow-inc" (func $slow-inc (param i32) (result i32)))
//!     (import "" "return" (func $return (param i32)))
//!     (func (export "run") (param i32)
//!       (call $return (call $slow-inc (call $double (local.get 0))))))
//!   (core instance $m (instantiate $M (with "" (instance
//!     (export "double" (func $double))
//!     (export "slow-inc" (func $slow-inc))
//!     (export "return" (func $return))))))
//!   (func (export "run") async (param "x" u32) (result u32)
//!     (canon lift (core func $m "run") async)))"#;
//! # let buf = wast::parser::ParseBuffer::new(wat).unwrap();
//! # let bytes = wast::parser::parse::<wast::Wat>(&buf).unwrap().encode().unwrap();
//!
//! let engine = Engine::new(&Config { clock: ClockKind::Virtual, ..Config::default() });
//! let component = Component::new(&engine, &bytes)?;
//!
//! let u32_to_u32 = |is_async| FuncTy {
//!     params: vec![("x".into(), Ty::U32)],
//!     result: Some(Ty::U32),
//!     is_async,
//! };
//! let mut linker = Linker::new();
//! linker.func("example:host/math@0.1.0#double", u32_to_u32(false), |_cx, args| {
//!     let [Val::U32(x)] = args else { unreachable!("type-checked") };
//!     Ok(vec![Val::U32(x * 2)])
//! })?;
//! linker.func_async("example:host/math@0.1.0#slow-inc", u32_to_u32(true), |cx, args, call| {
//!     let [Val::U32(x)] = args[..] else { unreachable!("type-checked") };
//!     // Complete the call 10 ms later on the store's clock.
//!     cx.after(Duration::from_millis(10), move |cx| {
//!         cx.complete(call, vec![Val::U32(x + 1)]).unwrap();
//!     });
//!     Ok(())
//! })?;
//!
//! let mut store = Store::new(&engine);
//! let instance = linker.instantiate(&mut store, &component)?;
//! let run = instance.func("run").expect("exported");
//! assert_eq!(store.call(&run, &[Val::U32(20)])?, [Val::U32(41)]);
//! assert_eq!(store.now(), Duration::from_millis(10)); // the virtual clock
//! assert_eq!(store.live_tasks(&instance), 0);
//! # Ok::<(), canon_async_wasmi::Error>(())
//! ```
//!
//! Modules, leaf first: [`error`], [`abi`] (types, values, lifting and
//! lowering), [`state`] (every data type of a store), [`clock`], [`canon`]
//! (the lift/lower context, calls and results), [`host`] (host functions,
//! timers, host ends of streams and futures), the canon built-ins,
//! [`driver`] (the driving loop over the core's actions), [`component`]
//! (parsing and instantiation), [`linker`] and [`store`] (the embedding
//! API).

pub mod abi;
pub(crate) mod builtins;
pub mod canon;
pub mod clock;
pub mod component;
pub mod driver;
pub mod error;
pub mod host;
pub mod idmap;
pub mod linker;
pub(crate) mod memcopy;
pub mod state;
pub mod store;

pub use abi::types::{FuncTy, Ty};
pub use abi::val::Val;
pub use clock::ClockKind;
pub use error::{Error, Trap};
pub use linker::Linker;
pub use state::{CopyDone, HostCall, HostCx, HostError, HostResource, Remote};
pub use store::{Call, Component, Config, Engine, Func, Instance, Schedule, Store, StoreStats};
