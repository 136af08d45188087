//! Instantiates a component definition: walks its items in order, building
//! the index spaces of one component instance.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmparser::component_types::{
    ComponentAnyTypeId, ComponentEntityType, ComponentInstanceTypeId,
};
use wasmparser::types::Types;
use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentExternalKind, ComponentOuterAliasKind,
    ComponentTypeRef, ExternalKind,
};

use super::parse::{AliasDef, ComponentDef, CoreInstanceDef, InstanceDef, Item, ModuleDef};
use super::types::{func_ty, ResourceMap};
use crate::abi::types::ResId;
use crate::abi::val::StrEnc;
use crate::builtins::{Builtin, Elem};
use crate::canon;
use crate::driver::Driver;
use crate::error::{trap_from_wasmi, trap_to_wasmi, Error, Trap};
use crate::state::{CFunc, Lifted, LowerDef, Opts};
use crate::state::{InstId, Rt};
use canon_async::{EndKind, LiftKind};

/// A component together with the environment its outer aliases see.
#[derive(Clone)]
pub struct ComponentVal {
    /// The parsed component.
    pub def: Arc<ComponentDef>,
    /// The index spaces of the enclosing components, for outer aliases.
    pub env: Option<Arc<OuterEnv>>,
}

/// A snapshot of an enclosing component instance's index spaces.
pub struct OuterEnv {
    modules: Vec<Arc<ModuleDef>>,
    components: Vec<ComponentVal>,
    types: Vec<Option<ResId>>,
    resources: ResourceMap,
    parent: Option<Arc<OuterEnv>>,
}

/// A value that can be imported or exported.
#[derive(Clone)]
pub enum ItemVal {
    /// A function.
    Func(CFunc),
    /// A component instance.
    Instance(Arc<InstanceVal>),
    /// A component, not yet instantiated.
    Component(ComponentVal),
    /// A core module.
    Module(Arc<ModuleDef>),
    /// A type; `Some` for a resource type.
    Type(Option<ResId>),
    /// A value (component-level values are not supported).
    Value,
}

/// A component instance's exports.
#[derive(Default)]
pub struct InstanceVal {
    /// The exports by name.
    pub exports: BTreeMap<String, ItemVal>,
    /// The core's instance, for an instance made by instantiating a
    /// component (`None` for a bag of exports).
    pub id: Option<InstId>,
    /// A host instance whose functions the import's type names but the
    /// host does not define become trapping host functions of the
    /// import's type (`Linker::trap_unknown_funcs`).
    pub trap_unknown_funcs: bool,
}

type CoreInstance = Arc<HashMap<String, wasmi::Extern>>;

struct Frame<'d> {
    def: &'d ComponentDef,
    inst: InstId,
    env: Option<Arc<OuterEnv>>,
    core_funcs: Vec<wasmi::Func>,
    core_memories: Vec<wasmi::Memory>,
    core_tables: Vec<wasmi::Table>,
    core_globals: Vec<wasmi::Global>,
    core_instances: Vec<CoreInstance>,
    core_modules: Vec<Arc<ModuleDef>>,
    funcs: Vec<CFunc>,
    instances: Vec<Arc<InstanceVal>>,
    components: Vec<ComponentVal>,
    types: Vec<Option<ResId>>,
    resources: ResourceMap,
    exports: BTreeMap<String, ItemVal>,
}

fn rt_err(m: impl Into<String>) -> Error {
    Error::Runtime(m.into())
}

fn get<T: Clone>(v: &[T], i: u32, what: &str) -> Result<T, Error> {
    v.get(i as usize)
        .cloned()
        .ok_or_else(|| rt_err(format!("{what} index {i} out of range")))
}

/// Instantiates `comp` with the given named arguments.
pub fn instantiate(
    store: &mut wasmi::Store<Rt>,
    driver: &mut Driver,
    comp: &ComponentVal,
    args: &HashMap<String, ItemVal>,
    parent: Option<InstId>,
) -> Result<Arc<InstanceVal>, Error> {
    let core = &mut store.data_mut().core;
    let inst = match parent {
        Some(p) => core.new_child_instance(p),
        None => core.new_instance(),
    };
    let mut f = Frame {
        def: &comp.def,
        inst,
        env: comp.env.clone(),
        core_funcs: Vec::new(),
        core_memories: Vec::new(),
        core_tables: Vec::new(),
        core_globals: Vec::new(),
        core_instances: Vec::new(),
        core_modules: Vec::new(),
        funcs: Vec::new(),
        instances: Vec::new(),
        components: Vec::new(),
        types: Vec::new(),
        resources: comp
            .env
            .as_ref()
            .map(|e| e.resources.clone())
            .unwrap_or_default(),
        exports: BTreeMap::new(),
    };
    let r = (|| -> Result<(), Error> {
        for item in &comp.def.items {
            f.item(store, driver, item, args)?;
        }
        Ok(())
    })();
    r?;
    Ok(Arc::new(InstanceVal {
        exports: f.exports,
        id: Some(inst),
        trap_unknown_funcs: false,
    }))
}

fn types_of<'a>(f: &Frame<'a>) -> &'a Types {
    &f.def.types
}

impl Frame<'_> {
    fn snapshot(&self) -> Arc<OuterEnv> {
        Arc::new(OuterEnv {
            modules: self.core_modules.clone(),
            components: self.components.clone(),
            types: self.types.clone(),
            resources: self.resources.clone(),
            parent: self.env.clone(),
        })
    }

    fn outer(&self, count: u32) -> Result<Option<Arc<OuterEnv>>, Error> {
        if count == 0 {
            return Ok(None);
        }
        let mut e = self.env.clone();
        for _ in 1..count {
            e = e.and_then(|e| e.parent.clone());
        }
        e.map(Some)
            .ok_or_else(|| rt_err("outer alias beyond the outermost component"))
    }

    /// Maps the resource at the new type index to `slot` (or records the
    /// resource the index already names).
    fn push_type(&mut self, slot: Option<ResId>) {
        let idx = self.types.len() as u32;
        let types = types_of(self);
        let mut slot = slot;
        if idx < types.as_ref().component_type_count() {
            if let ComponentAnyTypeId::Resource(aid) = types.component_any_type_at(idx) {
                match (slot, self.resources.get(&aid.resource())) {
                    (Some(r), _) => {
                        self.resources.insert(aid.resource(), r);
                    }
                    (None, Some(r)) => slot = Some(*r),
                    (None, None) => {}
                }
            }
        }
        self.types.push(slot);
    }

    fn bind_instance(&mut self, ty: ComponentInstanceTypeId, inst: &InstanceVal, depth: u32) {
        if depth > 50 {
            return;
        }
        let types = types_of(self);
        let Some(it) = types.as_ref().get(ty) else {
            return;
        };
        for (name, item) in it.exports.iter() {
            match (&item.ty, inst.exports.get(name.as_str())) {
                (
                    ComponentEntityType::Type {
                        referenced,
                        created,
                    },
                    Some(ItemVal::Type(Some(r))),
                ) => {
                    let r = *r;
                    for t in [referenced, created] {
                        if let ComponentAnyTypeId::Resource(aid) = t {
                            self.resources.insert(aid.resource(), r);
                        }
                    }
                }
                (ComponentEntityType::Instance(sub), Some(ItemVal::Instance(si))) => {
                    let sub = *sub;
                    let si = si.clone();
                    self.bind_instance(sub, &si, depth + 1);
                }
                _ => {}
            }
        }
    }

    fn push_instance(&mut self, i: Arc<InstanceVal>) {
        let idx = self.instances.len() as u32;
        let types = types_of(self);
        if idx < types.component_instance_count() as u32 {
            let ty = types.component_instance_at(idx);
            self.bind_instance(ty, &i, 0);
        }
        self.instances.push(i);
    }

    fn push_item(&mut self, kind: ComponentExternalKind, v: ItemVal) -> Result<(), Error> {
        match (kind, v) {
            (ComponentExternalKind::Func, ItemVal::Func(f)) => self.funcs.push(f),
            (ComponentExternalKind::Instance, ItemVal::Instance(i)) => self.push_instance(i),
            (ComponentExternalKind::Component, ItemVal::Component(c)) => self.components.push(c),
            (ComponentExternalKind::Module, ItemVal::Module(m)) => self.core_modules.push(m),
            (ComponentExternalKind::Type, ItemVal::Type(t)) => self.push_type(t),
            (ComponentExternalKind::Value, _) => {}
            _ => return Err(rt_err("item of the wrong kind")),
        }
        Ok(())
    }

    fn item_at(&self, kind: ComponentExternalKind, index: u32) -> Result<ItemVal, Error> {
        Ok(match kind {
            ComponentExternalKind::Func => ItemVal::Func(get(&self.funcs, index, "func")?),
            ComponentExternalKind::Instance => {
                ItemVal::Instance(get(&self.instances, index, "instance")?)
            }
            ComponentExternalKind::Component => {
                ItemVal::Component(get(&self.components, index, "component")?)
            }
            ComponentExternalKind::Module => {
                ItemVal::Module(get(&self.core_modules, index, "module")?)
            }
            ComponentExternalKind::Type => ItemVal::Type(get(&self.types, index, "type")?),
            ComponentExternalKind::Value => ItemVal::Value,
        })
    }

    fn item(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        driver: &mut Driver,
        item: &Item,
        args: &HashMap<String, ItemVal>,
    ) -> Result<(), Error> {
        match item {
            Item::CoreModule(m) => self.core_modules.push(m.clone()),
            Item::CoreType => {}
            Item::Component(c) => {
                let env = self.snapshot();
                self.components.push(ComponentVal {
                    def: c.clone(),
                    env: Some(env),
                });
            }
            Item::CoreInstance(ci) => {
                let ci = self.core_instance(store, driver, ci)?;
                self.core_instances.push(ci);
            }
            Item::Instance(InstanceDef::Instantiate {
                component,
                args: iargs,
            }) => {
                let c = get(&self.components, *component, "component")?;
                let mut a = HashMap::new();
                for (name, kind, idx) in iargs {
                    a.insert(name.clone(), self.item_at(*kind, *idx)?);
                }
                let i = instantiate(store, driver, &c, &a, Some(self.inst))?;
                self.push_instance(i);
            }
            Item::Instance(InstanceDef::FromExports(exports)) => {
                let mut iv = InstanceVal::default();
                for (name, kind, idx) in exports {
                    iv.exports.insert(name.clone(), self.item_at(*kind, *idx)?);
                }
                self.push_instance(Arc::new(iv));
            }
            Item::Alias(a) => self.alias(a)?,
            Item::Type(res) => match res {
                Some(dtor) => {
                    let dtor = dtor
                        .map(|d| get(&self.core_funcs, d, "core func"))
                        .transpose()?;
                    let r = store.data_mut().new_resource(self.inst, dtor);
                    self.push_type(Some(r));
                }
                None => self.push_type(None),
            },
            Item::Canon(c) => self.canon(store, c)?,
            Item::Start { func, args, .. } => {
                // Component-level values are not supported, so only a start
                // function without arguments runs; its results are values
                // and are dropped. It runs as a host call of the function,
                // driven like an invoke.
                if !args.is_empty() {
                    return Err(Error::Unsupported(
                        "component start functions with value arguments".into(),
                    ));
                }
                let f = get(&self.funcs, *func, "func")?;
                driver.invoke(store, &f, Vec::new()).map_err(Error::Trap)?;
            }
            Item::Import { name, ty } => {
                let v = args
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::Link(format!("missing import `{name}`")))?;
                let kind = match ty {
                    ComponentTypeRef::Module(_) => ComponentExternalKind::Module,
                    ComponentTypeRef::Func(_) => ComponentExternalKind::Func,
                    ComponentTypeRef::Value(_) => ComponentExternalKind::Value,
                    ComponentTypeRef::Type(_) => ComponentExternalKind::Type,
                    ComponentTypeRef::Instance(_) => ComponentExternalKind::Instance,
                    ComponentTypeRef::Component(_) => ComponentExternalKind::Component,
                };
                self.push_item(kind, v.clone())
                    .map_err(|_| rt_err(format!("import `{name}` of the wrong kind")))?;
                if let ItemVal::Instance(i) = &v {
                    let i = self.complete_import(name, i.trap_unknown_funcs)?;
                    self.check_host_funcs(name, &i)?;
                }
            }
            Item::Export { name, kind, index } => {
                let v = self.item_at(*kind, *index)?;
                self.exports.insert(name.clone(), v.clone());
                self.push_item(*kind, v)?;
            }
        }
        Ok(())
    }

    /// Completes the instance just imported as `name` (it replaces the
    /// imported instance) with what a host instance leaves out: the types
    /// its type exports (a type defined in the interface, or a resource
    /// used from another one, as bound when that one was imported), and,
    /// when `trap_funcs` is set, a trapping host function of the import's
    /// own type for each function it does not define.
    fn complete_import(&mut self, name: &str, trap_funcs: bool) -> Result<Arc<InstanceVal>, Error> {
        let types = types_of(self);
        let Some(last) = self.instances.last().cloned() else {
            return Err(rt_err("internal: no imported instance"));
        };
        let idx = self.instances.len() as u32 - 1;
        if idx >= types.component_instance_count() as u32 {
            return Ok(last);
        }
        let ty = &types[types.component_instance_at(idx)];
        let mut exports = last.exports.clone();
        let mut changed = false;
        for (export, et) in ty.exports.iter() {
            if exports.contains_key(export.as_str()) {
                continue;
            }
            let fid = match &et.ty {
                ComponentEntityType::Type {
                    referenced,
                    created,
                } => {
                    let res = [referenced, created].into_iter().find_map(|t| match t {
                        ComponentAnyTypeId::Resource(aid) => Some(aid.resource()),
                        _ => None,
                    });
                    let v = match res {
                        None => None,
                        Some(r) => match self.resources.get(&r) {
                            Some(id) => Some(*id),
                            None => continue,
                        },
                    };
                    exports.insert(export.to_string(), ItemVal::Type(v));
                    changed = true;
                    continue;
                }
                ComponentEntityType::Func(fid) if trap_funcs => fid,
                _ => continue,
            };
            changed = true;
            let want = super::types::func_ty_of(types, *fid, &self.resources)?;
            let full = format!("{name}#{export}");
            let msg = format!("`{full}` is not available in this host");
            let f = crate::state::HostFunc {
                name: full,
                ty: want,
                kind: crate::state::HostFuncKind::Sync(Arc::new(move |_, _| {
                    Err(crate::state::HostError::new(msg.clone()))
                })),
            };
            exports.insert(export.to_string(), ItemVal::Func(CFunc::Host(Arc::new(f))));
        }
        if !changed {
            return Ok(last);
        }
        let i = Arc::new(InstanceVal {
            exports,
            id: last.id,
            trap_unknown_funcs: last.trap_unknown_funcs,
        });
        if let Some(slot) = self.instances.last_mut() {
            *slot = i.clone();
        }
        Ok(i)
    }

    /// Checks the host functions of the instance just imported as `name`
    /// against the functions its type exports: each must be there, with
    /// the same parameter and result types.
    fn check_host_funcs(&self, name: &str, inst: &InstanceVal) -> Result<(), Error> {
        let types = types_of(self);
        let Some(idx) = (self.instances.len() as u32).checked_sub(1) else {
            return Ok(());
        };
        if idx >= types.component_instance_count() as u32 {
            return Ok(());
        }
        let ty = &types[types.component_instance_at(idx)];
        for (export, et) in ty.exports.iter() {
            let ComponentEntityType::Func(fid) = &et.ty else {
                continue;
            };
            let want = super::types::func_ty_of(types, *fid, &self.resources)?;
            match inst.exports.get(export.as_str()) {
                None => {
                    return Err(Error::Link(format!(
                        "missing import `{name}#{export}` (of type {})",
                        want.describe()
                    )))
                }
                Some(ItemVal::Func(CFunc::Host(h))) if !h.ty.same_signature(&want) => {
                    return Err(Error::Link(format!(
                        "import `{name}#{export}` has type {}, but the host function has type {}",
                        want.describe(),
                        h.ty.describe()
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn alias(&mut self, a: &AliasDef) -> Result<(), Error> {
        match a {
            AliasDef::InstanceExport {
                kind,
                instance,
                name,
            } => {
                let i = get(&self.instances, *instance, "instance")?;
                let v = i
                    .exports
                    .get(name)
                    .cloned()
                    .ok_or_else(|| rt_err(format!("instance has no export `{name}`")))?;
                self.push_item(*kind, v)
            }
            AliasDef::CoreInstanceExport {
                kind,
                instance,
                name,
            } => {
                let i = get(&self.core_instances, *instance, "core instance")?;
                let e = i
                    .get(name)
                    .cloned()
                    .ok_or_else(|| rt_err(format!("core instance has no export `{name}`")))?;
                match (kind, e) {
                    (ExternalKind::Func | ExternalKind::FuncExact, wasmi::Extern::Func(f)) => {
                        self.core_funcs.push(f)
                    }
                    (ExternalKind::Memory, wasmi::Extern::Memory(m)) => self.core_memories.push(m),
                    (ExternalKind::Table, wasmi::Extern::Table(t)) => self.core_tables.push(t),
                    (ExternalKind::Global, wasmi::Extern::Global(g)) => self.core_globals.push(g),
                    _ => return Err(Error::Unsupported(format!("core alias of kind {kind:?}"))),
                }
                Ok(())
            }
            AliasDef::Outer { kind, count, index } => {
                let env = self.outer(*count)?;
                match kind {
                    ComponentOuterAliasKind::CoreType => {}
                    ComponentOuterAliasKind::CoreModule => {
                        let m = match &env {
                            None => get(&self.core_modules, *index, "module")?,
                            Some(e) => get(&e.modules, *index, "module")?,
                        };
                        self.core_modules.push(m);
                    }
                    ComponentOuterAliasKind::Component => {
                        let c = match &env {
                            None => get(&self.components, *index, "component")?,
                            Some(e) => get(&e.components, *index, "component")?,
                        };
                        self.components.push(c);
                    }
                    ComponentOuterAliasKind::Type => {
                        let t = match &env {
                            None => get(&self.types, *index, "type")?,
                            Some(e) => get(&e.types, *index, "type")?,
                        };
                        self.push_type(t);
                    }
                }
                Ok(())
            }
        }
    }

    fn core_instance(
        &mut self,
        store: &mut wasmi::Store<Rt>,
        driver: &mut Driver,
        ci: &CoreInstanceDef,
    ) -> Result<CoreInstance, Error> {
        match ci {
            CoreInstanceDef::Instantiate { module, args } => {
                let m = get(&self.core_modules, *module, "module")?;
                let mut named: HashMap<&str, CoreInstance> = HashMap::new();
                for (name, idx) in args {
                    named.insert(
                        name.as_str(),
                        get(&self.core_instances, *idx, "core instance")?,
                    );
                }
                let mut externs = Vec::new();
                for imp in m.module.imports() {
                    let e = named
                        .get(imp.module())
                        .and_then(|i| i.get(imp.name()))
                        .cloned()
                        .ok_or_else(|| {
                            rt_err(format!(
                                "missing core import `{}` `{}`",
                                imp.module(),
                                imp.name()
                            ))
                        })?;
                    externs.push(e);
                }
                let inst = match wasmi::Instance::new(&mut *store, &m.module, &externs) {
                    Ok(i) => i,
                    Err(e) => {
                        return Err(
                            if e.as_trap_code().is_some() || e.downcast_ref::<Trap>().is_some() {
                                Error::Trap(trap_from_wasmi(e))
                            } else {
                                rt_err(format!("core instantiation failed: {e}"))
                            },
                        );
                    }
                };
                // The start function (taken out of the module, see
                // `ModuleDef`) runs as a synchronous call of its own, a
                // top-level resumable call: it may call imports, and
                // blocking in it traps.
                if let Some(name) = &m.start {
                    let f = inst
                        .get_func(&*store, name)
                        .ok_or_else(|| rt_err("internal: start function not exported"))?;
                    driver.sync_call(store, self.inst, f).map_err(Error::Trap)?;
                }
                let mut map = HashMap::new();
                for exp in inst.exports(&*store) {
                    if m.start.as_deref() == Some(exp.name()) {
                        continue;
                    }
                    map.insert(exp.name().to_string(), exp.into_extern());
                }
                Ok(Arc::new(map))
            }
            CoreInstanceDef::FromExports(exports) => {
                let mut map = HashMap::new();
                for (name, kind, idx) in exports {
                    let e = match kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            wasmi::Extern::Func(get(&self.core_funcs, *idx, "core func")?)
                        }
                        ExternalKind::Memory => {
                            wasmi::Extern::Memory(get(&self.core_memories, *idx, "memory")?)
                        }
                        ExternalKind::Table => {
                            wasmi::Extern::Table(get(&self.core_tables, *idx, "table")?)
                        }
                        ExternalKind::Global => {
                            wasmi::Extern::Global(get(&self.core_globals, *idx, "global")?)
                        }
                        ExternalKind::Tag => return Err(Error::Unsupported("core tags".into())),
                    };
                    map.insert(name.clone(), e);
                }
                Ok(Arc::new(map))
            }
        }
    }

    fn opts(&self, options: &[CanonicalOption]) -> Result<Opts, Error> {
        let mut o = Opts::default();
        for opt in options {
            match opt {
                CanonicalOption::UTF8 => o.encoding = Some(StrEnc::Utf8),
                CanonicalOption::UTF16 => o.encoding = Some(StrEnc::Utf16),
                CanonicalOption::CompactUTF16 => o.encoding = Some(StrEnc::Latin1Utf16),
                CanonicalOption::Memory(m) => {
                    o.memory = Some(get(&self.core_memories, *m, "memory")?)
                }
                CanonicalOption::Realloc(f) => {
                    o.realloc = Some(get(&self.core_funcs, *f, "core func")?)
                }
                CanonicalOption::PostReturn(f) => {
                    o.post_return = Some(get(&self.core_funcs, *f, "core func")?)
                }
                CanonicalOption::Callback(f) => {
                    o.callback = Some(get(&self.core_funcs, *f, "core func")?)
                }
                CanonicalOption::Async => o.is_async = true,
                CanonicalOption::CoreType(_) => {}
                CanonicalOption::Gc => {
                    return Err(Error::Unsupported("the `gc` canonical option".into()))
                }
            }
        }
        Ok(o)
    }

    /// The core function type the validator assigned to the next core func.
    fn next_core_func_type(&self) -> Result<wasmi::FuncType, Error> {
        let types = types_of(self).as_ref();
        let idx = self.core_funcs.len() as u32;
        if idx >= types.function_count() {
            return Err(rt_err("core function index out of range"));
        }
        let id = types.core_function_at(idx);
        let sub = types.get(id).ok_or_else(|| rt_err("unknown core type"))?;
        let wasmparser::CompositeInnerType::Func(ft) = &sub.composite_type.inner else {
            return Err(rt_err("core function without a function type"));
        };
        let conv = |t: &wasmparser::ValType| -> Result<wasmi::ValType, Error> {
            Ok(match t {
                wasmparser::ValType::I32 => wasmi::ValType::I32,
                wasmparser::ValType::I64 => wasmi::ValType::I64,
                wasmparser::ValType::F32 => wasmi::ValType::F32,
                wasmparser::ValType::F64 => wasmi::ValType::F64,
                _ => return Err(Error::Unsupported(format!("core value type {t:?}"))),
            })
        };
        let params = ft
            .params()
            .iter()
            .map(conv)
            .collect::<Result<Vec<_>, _>>()?;
        let results = ft
            .results()
            .iter()
            .map(conv)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(wasmi::FuncType::new(params, results))
    }

    fn resource_at(&self, idx: u32) -> Result<ResId, Error> {
        get(&self.types, idx, "type")?.ok_or_else(|| rt_err("not a resource type"))
    }

    fn canon(&mut self, store: &mut wasmi::Store<Rt>, c: &CanonicalFunction) -> Result<(), Error> {
        match c {
            CanonicalFunction::Lift {
                core_func_index,
                options,
                ..
            } => {
                let core = get(&self.core_funcs, *core_func_index, "core func")?;
                let ty = func_ty(types_of(self), self.funcs.len() as u32, &self.resources)?;
                let opts = self.opts(options)?;
                let kind = match (opts.is_async, opts.callback.is_some()) {
                    (false, _) => LiftKind::Sync,
                    (true, true) => LiftKind::AsyncCallback,
                    (true, false) => LiftKind::AsyncStackful,
                };
                let rt = store.data_mut();
                let id = rt.lifted.len() as u32;
                let l = Arc::new(Lifted::new(id, self.inst, core, ty, opts, kind));
                rt.lifted.push(l.clone());
                self.funcs.push(CFunc::Lifted(l));
            }
            CanonicalFunction::Lower {
                func_index,
                options,
            } => {
                let callee = get(&self.funcs, *func_index, "func")?;
                let ty = func_ty(types_of(self), *func_index, &self.resources)?;
                let opts = self.opts(options)?;
                let def = Arc::new(LowerDef::new(callee, self.inst, ty, opts));
                let sig = canon::lower_sig(&def);
                let f = wasmi::Func::new(&mut *store, sig, move |caller, params, results| {
                    canon::lowered_call(caller, &def, params, results)
                });
                self.core_funcs.push(f);
            }
            CanonicalFunction::ResourceNew { resource } => {
                let rt = self.resource_at(*resource)?;
                let sig = self.next_core_func_type()?;
                let f = wasmi::Func::new(&mut *store, sig, move |mut caller, params, results| {
                    let mut ctx = wasmi::AsContextMut::as_context_mut(&mut caller);
                    let i = canon::resource_new(&mut ctx, rt, params).map_err(trap_to_wasmi)?;
                    results[0] = wasmi::Val::I32(i as i32);
                    Ok(())
                });
                self.core_funcs.push(f);
            }
            CanonicalFunction::ResourceRep { resource } => {
                let rt = self.resource_at(*resource)?;
                let sig = self.next_core_func_type()?;
                let f = wasmi::Func::new(&mut *store, sig, move |mut caller, params, results| {
                    let mut ctx = wasmi::AsContextMut::as_context_mut(&mut caller);
                    let i = canon::resource_rep(&mut ctx, rt, params).map_err(trap_to_wasmi)?;
                    results[0] = wasmi::Val::I32(i as i32);
                    Ok(())
                });
                self.core_funcs.push(f);
            }
            CanonicalFunction::ResourceDrop { resource } => {
                let rt = self.resource_at(*resource)?;
                let sig = self.next_core_func_type()?;
                let f = wasmi::Func::new(&mut *store, sig, move |mut caller, params, _results| {
                    let mut ctx = wasmi::AsContextMut::as_context_mut(&mut caller);
                    canon::resource_drop(&mut ctx, rt, params).map_err(trap_to_wasmi)
                });
                self.core_funcs.push(f);
            }
            other => {
                let sig = self.next_core_func_type()?;
                let mut b = self.builtin(other)?;
                if let Builtin::Copy { opts, .. } = &mut b {
                    opts.copy_opts_id = Some(store.data_mut().copy_opts_id(opts));
                }
                let b = Arc::new(b);
                let f = wasmi::Func::new(&mut *store, sig, move |caller, params, results| {
                    crate::builtins::call(caller, &b, params, results)
                });
                self.core_funcs.push(f);
            }
        }
        Ok(())
    }

    /// The payload type of the stream or future type at `ty`.
    fn payload(&self, ty: u32) -> Result<Option<crate::abi::Ty>, Error> {
        let types = types_of(self);
        if ty >= types.as_ref().component_type_count() {
            return Err(rt_err("type index out of range"));
        }
        let ComponentAnyTypeId::Defined(id) = types.as_ref().component_any_type_at(ty) else {
            return Err(rt_err("not a defined type"));
        };
        let vt = wasmparser::component_types::ComponentValType::Type(id);
        match super::types::val_ty(types, &vt, &self.resources)? {
            crate::abi::Ty::Stream(p) | crate::abi::Ty::Future(p) => Ok(p.map(|p| (*p).clone())),
            _ => Err(rt_err("not a stream or future type")),
        }
    }

    fn reader_val_ty(&self, t: &wasmparser::ComponentValType) -> Result<crate::abi::Ty, Error> {
        let types = types_of(self);
        let vt = match t {
            wasmparser::ComponentValType::Primitive(p) => {
                wasmparser::component_types::ComponentValType::Primitive(*p)
            }
            wasmparser::ComponentValType::Type(idx) => {
                if *idx >= types.as_ref().component_type_count() {
                    return Err(rt_err("type index out of range"));
                }
                match types.as_ref().component_any_type_at(*idx) {
                    ComponentAnyTypeId::Defined(id) => {
                        wasmparser::component_types::ComponentValType::Type(id)
                    }
                    _ => return Err(rt_err("not a value type")),
                }
            }
        };
        super::types::val_ty(types, &vt, &self.resources)
    }

    fn builtin(&self, c: &CanonicalFunction) -> Result<Builtin, Error> {
        use CanonicalFunction as C;
        let stream = EndKind::Stream;
        let future = EndKind::Future;
        Ok(match c {
            C::TaskReturn { result, options } => Builtin::TaskReturn {
                result: result.as_ref().map(|t| self.reader_val_ty(t)).transpose()?,
                opts: self.opts(options)?,
            },
            C::TaskCancel => Builtin::TaskCancel,
            C::ContextGet { slot, .. } => Builtin::ContextGet(*slot),
            C::ContextSet { slot, .. } => Builtin::ContextSet(*slot),
            C::BackpressureInc => Builtin::BackpressureInc,
            C::BackpressureDec => Builtin::BackpressureDec,
            C::ThreadYield { cancellable } => Builtin::ThreadYield(*cancellable),
            C::SubtaskDrop => Builtin::SubtaskDrop,
            C::SubtaskCancel { async_ } => Builtin::SubtaskCancel(*async_),
            C::StreamNew { ty } => Builtin::CopyNew {
                kind: stream,
                elem: Elem::new(self.payload(*ty)?),
            },
            C::FutureNew { ty } => Builtin::CopyNew {
                kind: future,
                elem: Elem::new(self.payload(*ty)?),
            },
            C::StreamRead { ty, options } | C::StreamWrite { ty, options } => Builtin::Copy {
                kind: stream,
                readable: matches!(c, C::StreamRead { .. }),
                elem: Elem::new(self.payload(*ty)?),
                opts: self.opts(options)?,
            },
            C::FutureRead { ty, options } | C::FutureWrite { ty, options } => Builtin::Copy {
                kind: future,
                readable: matches!(c, C::FutureRead { .. }),
                elem: Elem::new(self.payload(*ty)?),
                opts: self.opts(options)?,
            },
            C::StreamCancelRead { ty, async_ } | C::StreamCancelWrite { ty, async_ } => {
                Builtin::CancelCopy {
                    kind: stream,
                    readable: matches!(c, C::StreamCancelRead { .. }),
                    elem: Elem::new(self.payload(*ty)?),
                    is_async: *async_,
                }
            }
            C::FutureCancelRead { ty, async_ } | C::FutureCancelWrite { ty, async_ } => {
                Builtin::CancelCopy {
                    kind: future,
                    readable: matches!(c, C::FutureCancelRead { .. }),
                    elem: Elem::new(self.payload(*ty)?),
                    is_async: *async_,
                }
            }
            C::StreamDropReadable { ty } | C::StreamDropWritable { ty } => Builtin::DropEnd {
                kind: stream,
                readable: matches!(c, C::StreamDropReadable { .. }),
                elem: Elem::new(self.payload(*ty)?),
            },
            C::FutureDropReadable { ty } | C::FutureDropWritable { ty } => Builtin::DropEnd {
                kind: future,
                readable: matches!(c, C::FutureDropReadable { .. }),
                elem: Elem::new(self.payload(*ty)?),
            },
            C::ErrorContextNew { options } => Builtin::ErrorContextNew(self.opts(options)?),
            C::ErrorContextDebugMessage { options } => {
                Builtin::ErrorContextDebugMessage(self.opts(options)?)
            }
            C::ErrorContextDrop => Builtin::ErrorContextDrop,
            C::WaitableSetNew => Builtin::WaitableSetNew,
            C::WaitableSetWait {
                cancellable,
                memory,
            } => Builtin::WaitableSetWait {
                cancellable: *cancellable,
                memory: Some(get(&self.core_memories, *memory, "memory")?),
            },
            C::WaitableSetPoll {
                cancellable,
                memory,
            } => Builtin::WaitableSetPoll {
                cancellable: *cancellable,
                memory: Some(get(&self.core_memories, *memory, "memory")?),
            },
            C::WaitableSetDrop => Builtin::WaitableSetDrop,
            C::WaitableJoin => Builtin::WaitableJoin,
            C::ThreadIndex => Builtin::ThreadIndex,
            C::ThreadNewIndirect { table_index, .. } => Builtin::ThreadNewIndirect {
                table: get(&self.core_tables, *table_index, "table")?,
                ft: wasmi::FuncType::new([wasmi::ValType::I32], []),
            },
            C::ThreadResumeLater => Builtin::ThreadResumeLater,
            C::ThreadSuspend { cancellable } => Builtin::ThreadSuspend(*cancellable),
            C::ThreadSuspendThenResume { cancellable } => {
                Builtin::ThreadSwitch(canon_async::ThreadSwitch::SuspendThenResume, *cancellable)
            }
            C::ThreadYieldThenResume { cancellable } => {
                Builtin::ThreadSwitch(canon_async::ThreadSwitch::YieldThenResume, *cancellable)
            }
            C::ThreadSuspendThenPromote { cancellable } => {
                Builtin::ThreadSwitch(canon_async::ThreadSwitch::SuspendThenPromote, *cancellable)
            }
            C::ThreadYieldThenPromote { cancellable } => {
                Builtin::ThreadSwitch(canon_async::ThreadSwitch::YieldThenPromote, *cancellable)
            }
            other => Builtin::Unsupported(builtin_name(other)),
        })
    }
}

/// A short name of a canon built-in for messages.
pub fn builtin_name(c: &CanonicalFunction) -> String {
    let s = format!("{c:?}");
    s.split([' ', '{', '('])
        .next()
        .unwrap_or("built-in")
        .to_string()
}
