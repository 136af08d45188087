#![warn(missing_docs)]

//! `canon-async-wasi-http`: a `wasi:http@0.3.0` host for
//! `canon-async-wasmi`, and a server on hyper 1 and tokio that serves a
//! `wasi:http/handler@0.3.0` component (`canon-async serve`).
//!
//! - [`types`]: `wasi:http/types@0.3.0` (fields, request, response,
//!   request-options, error-code; bodies as `stream<u8>` with a trailers
//!   `future`) as host resources in a per-store [`types::HttpCtx`].
//! - [`client`]: `wasi:http/client@0.3.0#send` through hyper's client,
//!   denied unless the destination is allowed.
//! - [`server`]: the server; each guest instance is kept exactly as long
//!   as its work (its live-task count) lasts, then reused or dropped.

pub mod client;
pub mod server;
pub mod types;

pub use server::{serve, ServeOpts};
