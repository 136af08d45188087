//! The linker: host functions by their full names, matched to a
//! component's imports at instantiation.
//!
//! A name is `"interface#function"` for a function of an imported
//! interface (`"canon-async:examples/host@0.1.0#sleep-ms"`), or a bare
//! function name for a function the component's world imports directly.
//! An interface's version matches as semver does for a host that
//! implements the newest patch: `@0.2.9` is served by a definition under
//! any `@0.2.x`, `@1.4.0` by any `@1.y.z` (the host's newest wins).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmparser::ComponentTypeRef;

use crate::abi::types::FuncTy;
use crate::abi::val::Val;
use crate::component::parse::Item;
use crate::component::{InstanceVal, ItemVal};
use crate::error::Error;
use crate::host::{map_host_resources, store_resource};
use crate::state::Rt;
use crate::state::{CFunc, HostCall, HostCx, HostError, HostFunc, HostFuncKind, HostResource};

/// Host definitions to link components against.
#[derive(Default, Clone)]
pub struct Linker {
    /// Interface name (exact, with version) → function name → definition.
    interfaces: BTreeMap<String, BTreeMap<String, Arc<HostFunc>>>,
    /// Interface name → resource name → resource type.
    resources: BTreeMap<String, BTreeMap<String, HostResource>>,
    /// Functions imported by the world directly.
    funcs: BTreeMap<String, Arc<HostFunc>>,
    /// Interfaces whose undefined functions trap when called.
    trap_unknown: BTreeMap<String, ()>,
}

/// The part of an interface name that decides compatibility: the name
/// without version, and the version's compatibility class (`0.2` for
/// `0.2.9`, `1` for `1.4.0`), plus the full version for picking the newest.
fn compat_key(iface: &str) -> (String, Option<String>) {
    let Some((base, ver)) = iface.split_once('@') else {
        return (iface.to_string(), None);
    };
    let mut parts = ver.split('.');
    let major = parts.next().unwrap_or("");
    let class = if major == "0" {
        format!("0.{}", parts.next().unwrap_or(""))
    } else {
        major.to_string()
    };
    (base.to_string(), Some(class))
}

impl Linker {
    /// An empty linker.
    pub fn new() -> Self {
        Self::default()
    }

    fn define(&mut self, name: &str, ty: FuncTy, kind: HostFuncKind) -> Result<&mut Self, Error> {
        let f = Arc::new(HostFunc {
            name: name.to_string(),
            ty,
            kind,
        });
        let slot = match name.split_once('#') {
            Some((iface, func)) if !iface.is_empty() && !func.is_empty() => self
                .interfaces
                .entry(iface.to_string())
                .or_default()
                .entry(func.to_string()),
            Some(_) => {
                return Err(Error::Link(format!(
                    "malformed host function name `{name}`"
                )))
            }
            None => self.funcs.entry(name.to_string()),
        };
        match slot {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(Error::Link(format!("host function `{name}` defined twice")))
            }
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(f);
                Ok(self)
            }
        }
    }

    /// Defines a synchronous host function of type `ty`: it returns its
    /// results at once (an `Err` traps the calling guest).
    pub fn func(
        &mut self,
        name: &str,
        ty: FuncTy,
        f: impl Fn(&mut HostCx<'_>, &[Val]) -> Result<Vec<Val>, HostError> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        self.define(name, ty, HostFuncKind::Sync(Arc::new(f)))
    }

    /// Defines an asynchronous host function of type `ty`: it gets a
    /// [`HostCall`] to complete now or later with [`HostCx::complete`]
    /// (and may watch for cancellation with [`HostCx::on_cancel`]).
    pub fn func_async(
        &mut self,
        name: &str,
        ty: FuncTy,
        f: impl Fn(&mut HostCx<'_>, Vec<Val>, HostCall) -> Result<(), HostError> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        self.define(name, ty, HostFuncKind::Async(Arc::new(f)))
    }

    /// Defines the resource type `name` (`"interface#resource"`); `dtor`
    /// runs with a resource's representation when a guest drops its last
    /// own handle. Use the returned type's [`HostResource::own`] and
    /// [`HostResource::borrow`] in the types of the host's functions.
    pub fn resource(
        &mut self,
        name: &str,
        dtor: impl Fn(&mut HostCx<'_>, u32) + Send + Sync + 'static,
    ) -> Result<HostResource, Error> {
        let Some((iface, res)) = name
            .split_once('#')
            .filter(|(i, r)| !i.is_empty() && !r.is_empty())
        else {
            return Err(Error::Link(format!(
                "a host resource is named `interface#resource`, not `{name}`"
            )));
        };
        let slot = self.resources.entry(iface.to_string()).or_default();
        if slot.contains_key(res) {
            return Err(Error::Link(format!("host resource `{name}` defined twice")));
        }
        let r = HostResource::new(name, Some(Arc::new(dtor)));
        slot.insert(res.to_string(), r.clone());
        Ok(r)
    }

    /// Makes the interface `iface` (matched by version like the host's
    /// functions) known to the linker even where it defines none of its
    /// functions: each function a component imports from it that the
    /// linker does not define becomes a host function of the import's
    /// own type that traps when called ("`name` is not available in this
    /// host"). For interfaces that only define types, and for functions
    /// that can never be reached (methods of a resource the host never
    /// hands out), like Wasmtime's `define_unknown_imports_as_traps`.
    pub fn trap_unknown_funcs(&mut self, iface: &str) -> &mut Self {
        self.trap_unknown.insert(iface.to_string(), ());
        self
    }

    /// The key under which `iface`'s definitions are kept in `map`: an
    /// exact match, else the newest compatible version.
    fn lookup<'m, V>(map: &'m BTreeMap<String, V>, iface: &str) -> Option<&'m V> {
        if let Some(i) = map.get(iface) {
            return Some(i);
        }
        let want = compat_key(iface);
        want.1.as_ref()?;
        map.iter()
            .filter(|(k, _)| compat_key(k) == want)
            .max_by(|a, b| version_order(a.0, b.0))
            .map(|(_, v)| v)
    }

    /// The values for the imports of a component: one instance per
    /// imported interface the linker knows (type-checked when the
    /// component is instantiated), one function per imported function.
    /// The store's resource types for the host's are made here, and the
    /// host functions' types refer to them.
    pub(crate) fn import_args(&self, items: &[Item], rt: &mut Rt) -> HashMap<String, ItemVal> {
        let mut args = HashMap::new();
        for item in items {
            let Item::Import { name, ty } = item else {
                continue;
            };
            match ty {
                ComponentTypeRef::Instance(_) => {
                    let funcs = Self::lookup(&self.interfaces, name);
                    let resources = Self::lookup(&self.resources, name);
                    let trap_unknown_funcs = Self::lookup(&self.trap_unknown, name).is_some();
                    if funcs.is_none() && resources.is_none() && !trap_unknown_funcs {
                        continue;
                    }
                    let mut exports = std::collections::BTreeMap::new();
                    for (n, r) in resources.into_iter().flatten() {
                        let id = store_resource(rt, r);
                        exports.insert(n.clone(), ItemVal::Type(Some(id)));
                    }
                    for (n, f) in funcs.into_iter().flatten() {
                        exports.insert(n.clone(), ItemVal::Func(CFunc::Host(in_store(rt, f))));
                    }
                    let iv = InstanceVal {
                        exports,
                        id: None,
                        trap_unknown_funcs,
                    };
                    args.insert(name.clone(), ItemVal::Instance(Arc::new(iv)));
                }
                ComponentTypeRef::Func(_) => {
                    if let Some(f) = self.funcs.get(name) {
                        args.insert(name.clone(), ItemVal::Func(CFunc::Host(in_store(rt, f))));
                    }
                }
                _ => {}
            }
        }
        args
    }
}

/// `f` with its type's host resources replaced by the store's types.
fn in_store(rt: &Rt, f: &Arc<HostFunc>) -> Arc<HostFunc> {
    let ty = FuncTy {
        params: f
            .ty
            .params
            .iter()
            .map(|(n, t)| (n.clone(), map_host_resources(rt, t)))
            .collect(),
        result: f.ty.result.as_ref().map(|t| map_host_resources(rt, t)),
        is_async: f.ty.is_async,
    };
    if ty == f.ty {
        return f.clone();
    }
    Arc::new(HostFunc {
        name: f.name.clone(),
        ty,
        kind: f.kind.clone(),
    })
}

/// Orders two interface names by their versions, numerically.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let nums = |s: &str| -> Vec<u64> {
        s.split_once('@')
            .map(|(_, v)| v)
            .unwrap_or("")
            .split(['.', '-'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    nums(a).cmp(&nums(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_by_semver_class() {
        assert_eq!(
            compat_key("wasi:cli/stdout@0.2.9"),
            compat_key("wasi:cli/stdout@0.2.0")
        );
        assert_ne!(
            compat_key("wasi:cli/stdout@0.2.9"),
            compat_key("wasi:cli/stdout@0.3.0")
        );
        assert_eq!(compat_key("a:b/c@1.4.0"), compat_key("a:b/c@1.0.1"));
        assert_eq!(
            version_order("a:b/c@0.2.10", "a:b/c@0.2.9"),
            std::cmp::Ordering::Greater
        );
    }

    #[test]
    fn a_name_is_defined_once() {
        let ty = FuncTy {
            params: vec![],
            result: None,
            is_async: false,
        };
        let mut l = Linker::new();
        l.func("a:b/c@0.1.0#f", ty.clone(), |_, _| Ok(vec![]))
            .unwrap();
        let e = l.func("a:b/c@0.1.0#f", ty.clone(), |_, _| Ok(vec![]));
        assert!(matches!(e, Err(Error::Link(m)) if m.contains("defined twice")));
        let e = l.func("#f", ty, |_, _| Ok(vec![]));
        assert!(matches!(e, Err(Error::Link(m)) if m.contains("malformed")));
    }
}
