//! Runs the directives of one `.wast` file against the runtime.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use wast::component::WastVal;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

use canon_async_wasmi::abi::types::Ty;
use canon_async_wasmi::component::instantiate::ComponentVal;
use canon_async_wasmi::component::{
    instantiate, parse_component, ComponentDef, InstanceVal, ItemVal,
};
use canon_async_wasmi::driver::Driver;
use canon_async_wasmi::error::{Error, Trap};
use canon_async_wasmi::state::{new_store, CFunc, Rt};

use crate::host_val;

/// Fuel given to each directive, so that a runaway loop becomes a trap.
pub const FUEL_PER_DIRECTIVE: u64 = 10_000_000;

/// Creates the engine used for one `.wast` file: wasmi with fuel on.
pub fn new_engine() -> wasmi::Engine {
    let mut config = wasmi::Config::default();
    config.consume_fuel(true);
    wasmi::Engine::new(&config)
}

/// A store for one `.wast` file, tracing when `CANON_ASYNC_TRACE` is set.
fn new_wast_store(engine: &wasmi::Engine) -> wasmi::Store<Rt> {
    let mut store = new_store(engine);
    store.data_mut().trace = std::env::var_os("CANON_ASYNC_TRACE").is_some();
    store
}

/// The first failing directive of a file.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based line of the directive (0 if unknown).
    pub line: usize,
    /// The directive's kind, e.g. `assert_return`.
    pub directive: String,
    /// What went wrong: "expected ..., got ...".
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, line {}, {}",
            self.directive, self.line, self.message
        )
    }
}

/// Runs a `.wast` file; `Ok` if every directive passed.
pub fn run_file(path: &Path) -> Result<(), Failure> {
    let src = std::fs::read_to_string(path).map_err(|e| Failure {
        line: 0,
        directive: "read".into(),
        message: format!("cannot read file: {e}"),
    })?;
    run_source(&src)
}

/// Runs `.wast` source text, catching panics as a last line of defence.
pub fn run_source(src: &str) -> Result<(), Failure> {
    match catch_unwind(AssertUnwindSafe(|| run_source_inner(src))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure {
                line: 0,
                directive: "runtime".into(),
                message: format!("the runtime panicked: {msg}"),
            })
        }
    }
}

fn run_source_inner(src: &str) -> Result<(), Failure> {
    let buf = ParseBuffer::new(src).map_err(|e| Failure {
        line: 0,
        directive: "parse".into(),
        message: format!("cannot lex file: {e}"),
    })?;
    let wast = parser::parse::<Wast<'_>>(&buf).map_err(|e| {
        let mut e = e;
        e.set_text(src);
        Failure {
            line: 0,
            directive: "parse".into(),
            message: format!("cannot parse file: {e}"),
        }
    })?;
    let mut r = Runner::new();
    for d in wast.directives {
        let (line, _) = d.span().linecol_in(src);
        let name = directive_name(&d);
        r.directive(d).map_err(|message| Failure {
            line: line + 1,
            directive: name.to_string(),
            message,
        })?;
    }
    Ok(())
}

fn directive_name(d: &WastDirective<'_>) -> &'static str {
    match d {
        WastDirective::Module(_) => "component",
        WastDirective::ModuleDefinition(_) => "component definition",
        WastDirective::ModuleInstance { .. } => "component instance",
        WastDirective::AssertMalformed { .. } => "assert_malformed",
        WastDirective::AssertInvalid { .. } => "assert_invalid",
        WastDirective::Register { .. } => "register",
        WastDirective::Invoke(_) => "invoke",
        WastDirective::AssertTrap { .. } => "assert_trap",
        WastDirective::AssertReturn { .. } => "assert_return",
        WastDirective::AssertExhaustion { .. } => "assert_exhaustion",
        WastDirective::AssertUnlinkable { .. } => "assert_unlinkable",
        WastDirective::AssertException { .. } => "assert_exception",
        WastDirective::AssertSuspension { .. } => "assert_suspension",
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
        WastDirective::AssertInvalidCustom { .. } => "assert_invalid_custom",
        WastDirective::AssertMalformedCustom { .. } => "assert_malformed_custom",
    }
}

struct Runner {
    engine: wasmi::Engine,
    store: wasmi::Store<Rt>,
    current: Option<Arc<InstanceVal>>,
    named: HashMap<String, Arc<InstanceVal>>,
    definitions: HashMap<String, Arc<ComponentDef>>,
    last_definition: Option<Arc<ComponentDef>>,
    driver: Driver,
}

fn show_err(e: &Error) -> String {
    e.to_string()
}

impl Runner {
    fn new() -> Self {
        let engine = new_engine();
        let store = new_wast_store(&engine);
        Runner {
            engine,
            store,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
            last_definition: None,
            driver: Driver::default(),
        }
    }

    fn define(&mut self, wat: &mut QuoteWat<'_>) -> Result<Arc<ComponentDef>, Error> {
        if let QuoteWat::Wat(Wat::Module(_)) | QuoteWat::QuoteModule(..) = wat {
            return Err(Error::Unsupported("core `module` directives".into()));
        }
        let bytes = wat.encode().map_err(|e| Error::Invalid(e.to_string()))?;
        parse_component(&bytes, &self.engine)
    }

    fn instantiate_def(&mut self, def: Arc<ComponentDef>) -> Result<Arc<InstanceVal>, Error> {
        self.store
            .set_fuel(FUEL_PER_DIRECTIVE)
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let comp = ComponentVal { def, env: None };
        instantiate(
            &mut self.store,
            &mut self.driver,
            &comp,
            &HashMap::new(),
            None,
        )
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Result<(), String> {
        match d {
            WastDirective::Module(mut wat) => {
                let name = wat.name().map(|id| id.name().to_string());
                let def = self.define(&mut wat).map_err(|e| show_err(&e))?;
                let inst = self.instantiate_def(def).map_err(|e| show_err(&e))?;
                if let Some(n) = name {
                    self.named.insert(n, inst.clone());
                }
                self.current = Some(inst);
                Ok(())
            }
            WastDirective::ModuleDefinition(mut wat) => {
                let name = wat.name().map(|id| id.name().to_string());
                let def = self.define(&mut wat).map_err(|e| show_err(&e))?;
                if let Some(n) = name {
                    self.definitions.insert(n, def.clone());
                }
                self.last_definition = Some(def);
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let def = match module {
                    Some(id) => self.definitions.get(id.name()).cloned(),
                    None => self.last_definition.clone(),
                }
                .ok_or_else(|| "unknown component definition".to_string())?;
                let inst = self.instantiate_def(def).map_err(|e| show_err(&e))?;
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), inst.clone());
                }
                self.current = Some(inst);
                Ok(())
            }
            WastDirective::Invoke(inv) => self.invoke(&inv).map(|_| ()).map_err(|e| show_err(&e)),
            WastDirective::AssertReturn { exec, results, .. } => {
                let WastExecute::Invoke(inv) = exec else {
                    return Err("not yet supported: assert_return on a non-invoke".into());
                };
                let (vals, ty) = self
                    .invoke(&inv)
                    .map_err(|e| format!("expected a return, got {}", show_err(&e)))?;
                let expected: Vec<&WastVal<'_>> = results
                    .iter()
                    .map(|r| match r {
                        WastRet::Component(v) => Ok(v),
                        _ => Err("core results are not supported".to_string()),
                    })
                    .collect::<Result<_, _>>()?;
                let tys: Vec<Ty> = ty.into_iter().collect();
                let got: Vec<String> = vals
                    .iter()
                    .zip(&tys)
                    .map(|(v, t)| host_val::show(v, t))
                    .collect();
                if expected.len() != vals.len() || tys.len() != vals.len() {
                    return Err(format!(
                        "expected {} result(s), got [{}]",
                        expected.len(),
                        got.join(" ")
                    ));
                }
                for ((e, v), t) in expected.iter().zip(&vals).zip(&tys) {
                    if !host_val::matches(e, v, t) {
                        return Err(format!("expected {e:?}, got [{}]", got.join(" ")));
                    }
                }
                Ok(())
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                let r = match exec {
                    WastExecute::Invoke(inv) => self.invoke(&inv).map(|_| ()),
                    WastExecute::Wat(wat) => {
                        let mut q = QuoteWat::Wat(wat);
                        self.define(&mut q)
                            .and_then(|def| self.instantiate_def(def))
                            .map(|_| ())
                    }
                    WastExecute::Get { .. } => {
                        return Err("not yet supported: assert_trap on `get`".into())
                    }
                };
                match r {
                    Err(Error::Trap(t)) if t.to_string().contains(message) => Ok(()),
                    Err(e) => Err(format!("expected trap {message:?}, got {}", show_err(&e))),
                    Ok(()) => Err(format!("expected trap {message:?}, got success")),
                }
            }
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            }
            | WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => match self.define(&mut module) {
                Err(Error::Invalid(_)) => Ok(()),
                // wasmi's rejection counts only with the expected reason,
                // since it may be a feature wasmi lacks.
                Err(Error::EngineRejected(m)) if m.contains(message) => Ok(()),
                Err(e) => Err(format!(
                    "expected invalid {message:?}, got {}",
                    show_err(&e)
                )),
                Ok(_) => Err(format!(
                    "expected invalid {message:?}, got a valid component"
                )),
            },
            other => Err(format!(
                "not yet supported: the `{}` directive",
                directive_name(&other)
            )),
        }
    }

    fn invoke(
        &mut self,
        inv: &WastInvoke<'_>,
    ) -> Result<(Vec<canon_async_wasmi::Val>, Option<Ty>), Error> {
        let inst = match inv.module {
            Some(id) => self.named.get(id.name()).cloned(),
            None => self.current.clone(),
        }
        .ok_or_else(|| Error::Runtime("no component instance to invoke".into()))?;
        let f: CFunc = match inst.exports.get(inv.name) {
            Some(ItemVal::Func(f)) => f.clone(),
            _ => {
                return Err(Error::Runtime(format!(
                    "no exported function `{}`",
                    inv.name
                )))
            }
        };
        let ty = f.ty().clone();
        if inv.args.len() != ty.params.len() {
            return Err(Error::Runtime("wrong number of arguments".into()));
        }
        let mut args = Vec::new();
        for (a, (_, t)) in inv.args.iter().zip(&ty.params) {
            let WastArg::Component(v) = a else {
                return Err(Error::Unsupported("core arguments".into()));
            };
            args.push(host_val::to_val(v, t).map_err(Error::Runtime)?);
        }
        self.store
            .set_fuel(FUEL_PER_DIRECTIVE)
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let r = self
            .driver
            .invoke(&mut self.store, &f, args)
            .map_err(|t: Trap| Error::Trap(t))?;
        Ok((r, ty.result.clone()))
    }
}
