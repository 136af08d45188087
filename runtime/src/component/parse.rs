//! Parses and validates a component binary into a static definition: the
//! items of each (nested) component in section order, plus the validator's
//! type information for it.

use std::sync::Arc;

use wasmparser::{
    CanonicalFunction, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef, Encoding,
    ExternalKind, Parser, Payload, ValidPayload, Validator, WasmFeatures,
};

use crate::error::Error;

/// A core module: its compiled form.
///
/// wasmi runs a module's start function inside `Instance::new`, as a
/// nested call that cannot suspend; so a module with a start section is
/// compiled without it, its start function exported under `start` instead,
/// and the instantiation calls it as a top-level resumable call.
pub struct ModuleDef {
    pub(crate) module: wasmi::Module,
    /// The export name of the removed start function, if the module had one.
    pub(crate) start: Option<String>,
}

/// The export name given to a module's start function (made unique).
const START_EXPORT: &str = "canon-async-spec:start";

fn leb(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len() as u32, out);
    out.extend_from_slice(body);
}

/// Rewrites a core module with a start section: the start section is
/// dropped and its function exported under a fresh name, returned with
/// the new bytes. `None` when the module has no start section.
fn without_start(bytes: &[u8]) -> Result<Option<(Vec<u8>, String)>, Error> {
    let mut start = None;
    let mut names: Vec<String> = Vec::new();
    let mut exports: Option<(std::ops::Range<usize>, u32)> = None;
    for p in Parser::new(0).parse_all(bytes) {
        match p.map_err(invalid)? {
            Payload::StartSection { func, range } => {
                start = Some((func, range.start as usize..range.end as usize))
            }
            Payload::ExportSection(s) => {
                let r = s.range();
                exports = Some((r.start as usize..r.end as usize, s.count()));
                for e in s {
                    names.push(e.map_err(invalid)?.name.to_string());
                }
            }
            Payload::CodeSectionEntry(_) | Payload::End(_) => {}
            _ => {}
        }
    }
    let Some((func, srange)) = start else {
        return Ok(None);
    };
    let mut name = START_EXPORT.to_string();
    while names.contains(&name) {
        name.push('_');
    }
    let mut entry = Vec::new();
    leb(name.len() as u32, &mut entry);
    entry.extend_from_slice(name.as_bytes());
    entry.push(0x00);
    leb(func, &mut entry);
    // Section ranges cover the contents; the id and size come just before.
    let header_start = |r: &std::ops::Range<usize>| -> usize {
        let mut i = r.start - 1;
        while i > 0 && bytes[i - 1] & 0x80 != 0 {
            i -= 1;
        }
        i - 1
    };
    let mut out = Vec::with_capacity(bytes.len() + entry.len() + 8);
    match exports {
        Some((erange, count)) => {
            // Skip the old count in the export section's contents.
            let mut body = Vec::new();
            leb(count + 1, &mut body);
            let mut c = erange.start;
            while bytes[c] & 0x80 != 0 {
                c += 1;
            }
            body.extend_from_slice(&bytes[c + 1..erange.end]);
            body.extend_from_slice(&entry);
            let eh = header_start(&erange);
            let sh = header_start(&srange);
            out.extend_from_slice(&bytes[..eh]);
            section(7, &body, &mut out);
            out.extend_from_slice(&bytes[erange.end..sh]);
            out.extend_from_slice(&bytes[srange.end..]);
        }
        None => {
            // The export section would come right before the start section.
            let mut body = Vec::new();
            leb(1, &mut body);
            body.extend_from_slice(&entry);
            let sh = header_start(&srange);
            out.extend_from_slice(&bytes[..sh]);
            section(7, &body, &mut out);
            out.extend_from_slice(&bytes[srange.end..]);
        }
    }
    Ok(Some((out, name)))
}

/// A core instance definition.
pub(crate) enum CoreInstanceDef {
    Instantiate {
        module: u32,
        args: Vec<(String, u32)>,
    },
    FromExports(Vec<(String, ExternalKind, u32)>),
}

/// A component instance definition.
pub(crate) enum InstanceDef {
    Instantiate {
        component: u32,
        args: Vec<(String, ComponentExternalKind, u32)>,
    },
    FromExports(Vec<(String, ComponentExternalKind, u32)>),
}

/// An alias definition.
pub(crate) enum AliasDef {
    InstanceExport {
        kind: ComponentExternalKind,
        instance: u32,
        name: String,
    },
    CoreInstanceExport {
        kind: ExternalKind,
        instance: u32,
        name: String,
    },
    Outer {
        kind: ComponentOuterAliasKind,
        count: u32,
        index: u32,
    },
}

/// One item of a component, in section order.
pub(crate) enum Item {
    CoreModule(Arc<ModuleDef>),
    CoreInstance(CoreInstanceDef),
    CoreType,
    Component(Arc<ComponentDef>),
    Instance(InstanceDef),
    Alias(AliasDef),
    /// A type definition; `Some(dtor)` for a resource type.
    Type(Option<Option<u32>>),
    Canon(CanonicalFunction),
    Start {
        func: u32,
        args: Vec<u32>,
    },
    Import {
        name: String,
        ty: ComponentTypeRef,
    },
    Export {
        name: String,
        kind: ComponentExternalKind,
        index: u32,
    },
}

/// A validated component definition.
pub struct ComponentDef {
    pub(crate) items: Vec<Item>,
    pub(crate) types: wasmparser::types::Types,
}

enum Frame {
    Module,
    Component(Vec<Item>),
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Invalid(e.to_string())
}

/// The validation rule on the size of defined value types (see
/// [`super::types::check_value_size`]), for the last `count` types of the
/// component being validated: those its type section just defined.
fn check_value_sizes(
    validator: &Validator,
    count: u32,
    memo: &mut super::types::LayoutMemo,
) -> Result<(), Error> {
    let Some(types) = validator.types(0) else {
        return Ok(());
    };
    let n = types.component_type_count();
    for i in n.saturating_sub(count)..n {
        if let wasmparser::component_types::ComponentAnyTypeId::Defined(id) =
            types.component_any_type_at(i)
        {
            super::types::check_value_size(types, id, memo)?;
        }
    }
    Ok(())
}

/// Validates `bytes` as a component and builds its definition, compiling
/// every core module with `engine`.
pub fn parse_component(bytes: &[u8], engine: &wasmi::Engine) -> Result<Arc<ComponentDef>, Error> {
    // Every feature the validator knows, but nested namespaces and
    // packages in names (🪺), which the suite expects to be rejected.
    let mut validator =
        Validator::new_with_features(WasmFeatures::all() - WasmFeatures::CM_NESTED_NAMES);
    // The first core module wasmi rejected (or that could not be
    // rewritten): reported only once the whole component has validated, so
    // that a reason the validator finds later (a malformed nested module,
    // an import mismatch) comes first.
    let mut engine_err: Option<Error> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut done: Option<Arc<ComponentDef>> = None;
    let mut layouts = super::types::LayoutMemo::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        let valid = validator.payload(&payload).map_err(invalid)?;
        match valid {
            ValidPayload::Func(func, body) => {
                let mut fv = func.into_validator(Default::default());
                fv.validate(&body).map_err(invalid)?;
            }
            ValidPayload::End(types) => match stack.pop() {
                Some(Frame::Component(items)) => {
                    let def = Arc::new(ComponentDef { items, types });
                    match stack.last_mut() {
                        Some(Frame::Component(parent)) => parent.push(Item::Component(def)),
                        Some(Frame::Module) => return Err(invalid("component inside a module")),
                        None => done = Some(def),
                    }
                }
                Some(Frame::Module) => {
                    if stack.is_empty() {
                        return Err(Error::Unsupported(
                            "top-level core modules (only components are run)".into(),
                        ));
                    }
                }
                None => return Err(invalid("unbalanced end")),
            },
            ValidPayload::Ok | ValidPayload::Parser(_) => {}
        }
        let items = match stack.last_mut() {
            Some(Frame::Component(items)) => Some(items),
            _ => None,
        };
        match payload {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                Encoding::Module => Frame::Module,
                Encoding::Component => Frame::Component(Vec::new()),
            }),
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let items = items.ok_or_else(|| invalid("module outside a component"))?;
                let module_bytes = bytes
                    .get(unchecked_range.start as usize..unchecked_range.end as usize)
                    .ok_or_else(|| invalid("module range"))?;
                if engine_err.is_some() {
                    continue;
                }
                let compiled = without_start(module_bytes).and_then(|rewritten| {
                    let (module_bytes, start) = match &rewritten {
                        Some((b, name)) => (&b[..], Some(name.clone())),
                        None => (module_bytes, None),
                    };
                    let module = wasmi::Module::new(engine, module_bytes)
                        .map_err(|e| Error::EngineRejected(e.to_string()))?;
                    Ok(ModuleDef { module, start })
                });
                match compiled {
                    Ok(m) => items.push(Item::CoreModule(Arc::new(m))),
                    Err(e) => engine_err = Some(e),
                }
            }
            Payload::InstanceSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for inst in s {
                    let inst = inst.map_err(invalid)?;
                    items.push(Item::CoreInstance(match inst {
                        wasmparser::Instance::Instantiate { module_index, args } => {
                            CoreInstanceDef::Instantiate {
                                module: module_index,
                                args: args.iter().map(|a| (a.name.to_string(), a.index)).collect(),
                            }
                        }
                        wasmparser::Instance::FromExports(exports) => CoreInstanceDef::FromExports(
                            exports
                                .iter()
                                .map(|e| (e.name.to_string(), e.kind, e.index))
                                .collect(),
                        ),
                    }));
                }
            }
            Payload::CoreTypeSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for _ in 0..s.count() {
                    items.push(Item::CoreType);
                }
            }
            Payload::ComponentInstanceSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for inst in s {
                    let inst = inst.map_err(invalid)?;
                    items.push(Item::Instance(match inst {
                        wasmparser::ComponentInstance::Instantiate {
                            component_index,
                            args,
                        } => InstanceDef::Instantiate {
                            component: component_index,
                            args: args
                                .iter()
                                .map(|a| (a.name.to_string(), a.kind, a.index))
                                .collect(),
                        },
                        wasmparser::ComponentInstance::FromExports(exports) => {
                            InstanceDef::FromExports(
                                exports
                                    .iter()
                                    .map(|e| (e.name.name.to_string(), e.kind, e.index))
                                    .collect(),
                            )
                        }
                    }));
                }
            }
            Payload::ComponentAliasSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for a in s {
                    let a = a.map_err(invalid)?;
                    items.push(Item::Alias(match a {
                        wasmparser::ComponentAlias::InstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => AliasDef::InstanceExport {
                            kind,
                            instance: instance_index,
                            name: name.to_string(),
                        },
                        wasmparser::ComponentAlias::CoreInstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => AliasDef::CoreInstanceExport {
                            kind,
                            instance: instance_index,
                            name: name.to_string(),
                        },
                        wasmparser::ComponentAlias::Outer { kind, count, index } => {
                            AliasDef::Outer { kind, count, index }
                        }
                    }));
                }
            }
            Payload::ComponentTypeSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                check_value_sizes(&validator, s.count(), &mut layouts)?;
                for t in s {
                    let t = t.map_err(invalid)?;
                    items.push(Item::Type(match t {
                        wasmparser::ComponentType::Resource { dtor, .. } => Some(dtor),
                        _ => None,
                    }));
                }
            }
            Payload::ComponentCanonicalSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for c in s {
                    items.push(Item::Canon(c.map_err(invalid)?));
                }
            }
            Payload::ComponentStartSection { start, .. } => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                items.push(Item::Start {
                    func: start.func_index,
                    args: start.arguments.to_vec(),
                });
            }
            Payload::ComponentImportSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for i in s {
                    let i = i.map_err(invalid)?;
                    items.push(Item::Import {
                        name: i.name.name.to_string(),
                        ty: i.ty,
                    });
                }
            }
            Payload::ComponentExportSection(s) => {
                let items = items.ok_or_else(|| invalid("section outside a component"))?;
                for e in s {
                    let e = e.map_err(invalid)?;
                    items.push(Item::Export {
                        name: e.name.name.to_string(),
                        kind: e.kind,
                        index: e.index,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(e) = engine_err {
        return Err(e);
    }
    done.ok_or_else(|| invalid("no component"))
}
