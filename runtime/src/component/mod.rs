//! Components: static definitions parsed from the binary, type conversion,
//! and instantiation.

pub mod instantiate;
pub mod parse;
pub mod types;

pub use instantiate::{instantiate, InstanceVal, ItemVal};
pub use parse::{parse_component, ComponentDef};
