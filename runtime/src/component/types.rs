//! Converts the validator's component types into runtime [`Ty`]s, resolving
//! resource types through the instance's resource map.

use std::collections::HashMap;
use std::sync::Arc;

use wasmparser::component_types::{ComponentDefinedType, ComponentValType, ResourceId};
use wasmparser::types::Types;
use wasmparser::PrimitiveValType;

use crate::abi::types::{FuncTy, ResId, Ty};
use crate::error::Error;

/// Static resource ids (as one component sees them) to runtime resources.
pub type ResourceMap = HashMap<ResourceId, ResId>;

const MAX_DEPTH: u32 = 100;

fn resolve(res: &ResourceMap, id: ResourceId) -> Result<ResId, Error> {
    res.get(&id)
        .copied()
        .ok_or_else(|| Error::Runtime("unresolved resource type".into()))
}

/// Converts a component value type.
pub fn val_ty(types: &Types, t: &ComponentValType, res: &ResourceMap) -> Result<Ty, Error> {
    val_ty_at(types, t, res, 0)
}

fn val_ty_at(
    types: &Types,
    t: &ComponentValType,
    res: &ResourceMap,
    depth: u32,
) -> Result<Ty, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Unsupported("type nesting too deep".into()));
    }
    let sub = |t: &ComponentValType| val_ty_at(types, t, res, depth + 1);
    let opt = |t: &Option<ComponentValType>| -> Result<Option<Arc<Ty>>, Error> {
        t.as_ref().map(|t| sub(t).map(Arc::new)).transpose()
    };
    match t {
        ComponentValType::Primitive(p) => Ok(prim(*p)),
        ComponentValType::Type(id) => {
            let d = types
                .as_ref()
                .get(*id)
                .ok_or_else(|| Error::Runtime("unknown type id".into()))?;
            Ok(match d {
                ComponentDefinedType::Primitive(p) => prim(*p),
                ComponentDefinedType::Record(r) => Ty::Record(
                    r.fields
                        .iter()
                        .map(|(n, t)| Ok((n.to_string(), sub(t)?)))
                        .collect::<Result<Vec<_>, Error>>()?
                        .into(),
                ),
                ComponentDefinedType::Variant(v) => Ty::Variant(
                    v.cases
                        .iter()
                        .map(|(n, c)| Ok((n.to_string(), c.ty.as_ref().map(sub).transpose()?)))
                        .collect::<Result<Vec<_>, Error>>()?
                        .into(),
                ),
                ComponentDefinedType::List { element, .. } => Ty::List(Arc::new(sub(element)?)),
                ComponentDefinedType::Map { key, value, .. } => {
                    Ty::List(Arc::new(Ty::Tuple(vec![sub(key)?, sub(value)?].into())))
                }
                ComponentDefinedType::FixedLengthList {
                    element, length, ..
                } => Ty::FixedList(Arc::new(sub(element)?), *length),
                ComponentDefinedType::Tuple(t) => Ty::Tuple(
                    t.types
                        .iter()
                        .map(sub)
                        .collect::<Result<Vec<_>, Error>>()?
                        .into(),
                ),
                ComponentDefinedType::Flags(f) => {
                    Ty::Flags(f.iter().map(|s| s.to_string()).collect::<Vec<_>>().into())
                }
                ComponentDefinedType::Enum(e) => {
                    Ty::Enum(e.iter().map(|s| s.to_string()).collect::<Vec<_>>().into())
                }
                ComponentDefinedType::Option { ty, .. } => Ty::Option(Arc::new(sub(ty)?)),
                ComponentDefinedType::Result { ok, err, .. } => Ty::Result(opt(ok)?, opt(err)?),
                ComponentDefinedType::Own(r) => Ty::Own(resolve(res, r.resource())?),
                ComponentDefinedType::Borrow(r) => Ty::Borrow(resolve(res, r.resource())?),
                ComponentDefinedType::Future { ty, .. } => Ty::Future(opt(ty)?),
                ComponentDefinedType::Stream { ty, .. } => Ty::Stream(opt(ty)?),
            })
        }
    }
}

fn prim(p: PrimitiveValType) -> Ty {
    match p {
        PrimitiveValType::Bool => Ty::Bool,
        PrimitiveValType::S8 => Ty::S8,
        PrimitiveValType::U8 => Ty::U8,
        PrimitiveValType::S16 => Ty::S16,
        PrimitiveValType::U16 => Ty::U16,
        PrimitiveValType::S32 => Ty::S32,
        PrimitiveValType::U32 => Ty::U32,
        PrimitiveValType::S64 => Ty::S64,
        PrimitiveValType::U64 => Ty::U64,
        PrimitiveValType::F32 => Ty::F32,
        PrimitiveValType::F64 => Ty::F64,
        PrimitiveValType::Char => Ty::Char,
        PrimitiveValType::String => Ty::String,
        PrimitiveValType::ErrorContext => Ty::ErrorContext,
    }
}

/// Converts the type of the component function at `index`.
pub fn func_ty(types: &Types, index: u32, res: &ResourceMap) -> Result<FuncTy, Error> {
    if index >= types.component_function_count() {
        return Err(Error::Runtime(format!(
            "function index {index} out of range"
        )));
    }
    func_ty_of(types, types.component_function_at(index), res)
}

/// Converts the component function type `id`.
pub fn func_ty_of(
    types: &Types,
    id: wasmparser::component_types::ComponentFuncTypeId,
    res: &ResourceMap,
) -> Result<FuncTy, Error> {
    let f = types
        .as_ref()
        .get(id)
        .ok_or_else(|| Error::Runtime("unknown function type".into()))?;
    Ok(FuncTy {
        params: f
            .params
            .iter()
            .map(|(n, t)| Ok((n.to_string(), val_ty(types, t, res)?)))
            .collect::<Result<Vec<_>, Error>>()?,
        result: f
            .result
            .as_ref()
            .map(|t| val_ty(types, t, res))
            .transpose()?,
        is_async: f.async_,
    })
}
