//! `canon-async-spec`: a WebAssembly component runtime over wasmi and a
//! `.wast` runner, used to check `canon-async` against the reference suite
//! of the Component Model and against the project's own `.wast` files.

pub use canon_async_wasmi::{abi, builtins, canon, component, driver, engine, error};

pub mod host_val;
pub mod suite;
pub mod wast_runner;

use std::collections::HashMap;

/// Validates, instantiates and runs a component binary: calls each export
/// named in `invokes` (which must take no parameters) from the host, in
/// order, each with `fuel` units of fuel (instantiation gets `fuel` too).
///
/// `Err` when the component is invalid, unsupported, or traps while it is
/// instantiated; otherwise one result per invoke (a trap, or a missing or
/// unsuitable export, is an `Err` there and the later invokes still run).
/// Panics are not caught: this is the entry point of the `component` fuzz
/// target, for which a panic is a bug.
pub fn run_component_bytes(
    bytes: &[u8],
    invokes: &[&str],
    fuel: u64,
) -> Result<Vec<Result<Vec<abi::Val>, error::Error>>, error::Error> {
    use error::Error;
    let engine = engine::new_engine();
    let def = component::parse_component(bytes, &engine)?;
    let mut store = engine::new_store(&engine);
    let mut driver = driver::Driver::default();
    store
        .set_fuel(fuel)
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let comp = component::instantiate::ComponentVal { def, env: None };
    let inst = component::instantiate(&mut store, &mut driver, &comp, &HashMap::new(), None)?;
    let mut out = Vec::with_capacity(invokes.len());
    for name in invokes {
        let f = match inst.exports.get(*name) {
            Some(component::ItemVal::Func(f)) if f.ty().params.is_empty() => f.clone(),
            _ => {
                out.push(Err(Error::Runtime(format!(
                    "no exported function `{name}` without parameters"
                ))));
                continue;
            }
        };
        store
            .set_fuel(fuel)
            .map_err(|e| Error::Runtime(e.to_string()))?;
        out.push(
            driver
                .invoke(&mut store, &f, Vec::new())
                .map_err(Error::Trap),
        );
    }
    Ok(out)
}
