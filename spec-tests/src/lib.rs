//! `canon-async-spec`: the `.wast` conformance runner, a client of the
//! `canon-async-wasmi` runtime, used to check `canon-async` against the
//! reference suite of the Component Model and against the project's own
//! `.wast` files: the directives and their assertions, fuel per
//! directive, `CANON_ASYNC_TRACE`, and the conversion of `.wast` values.

pub mod host_val;
pub mod suite;
pub mod wast_runner;

use std::collections::HashMap;

use canon_async_wasmi::error::Error;

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
) -> Result<Vec<Result<Vec<canon_async_wasmi::Val>, Error>>, Error> {
    let engine = wast_runner::new_engine();
    let def = canon_async_wasmi::component::parse_component(bytes, &engine)?;
    let mut store = canon_async_wasmi::state::new_store(&engine);
    let mut driver = canon_async_wasmi::driver::Driver::default();
    store
        .set_fuel(fuel)
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let comp = canon_async_wasmi::component::instantiate::ComponentVal { def, env: None };
    let inst = canon_async_wasmi::component::instantiate(
        &mut store,
        &mut driver,
        &comp,
        &HashMap::new(),
        None,
    )?;
    let mut out = Vec::with_capacity(invokes.len());
    for name in invokes {
        let f = match inst.exports.get(*name) {
            Some(canon_async_wasmi::component::ItemVal::Func(f)) if f.ty().params.is_empty() => {
                f.clone()
            }
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
