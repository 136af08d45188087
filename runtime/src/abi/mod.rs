//! Canonical ABI values: types, layout and flattening, lifting and lowering.

pub mod lift;
pub mod lower;
pub mod types;
pub mod val;

pub use types::{CoreTy, FuncTy, Ty};
pub use val::Val;
