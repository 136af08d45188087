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

/// `elem_size(t, 'i64')` and `alignment(t, 'i64')` of defined value types,
/// by the validator's id, as far as computed.
pub type LayoutMemo = HashMap<wasmparser::component_types::ComponentDefinedTypeId, (u64, u64)>;

/// The largest `elem_size(t, 'i64')` a defined value type may have:
/// validation requires it to be less than 2^28 (`MAX_LIST_BYTE_LENGTH`).
pub const MAX_VALUE_SIZE: u64 = (1 << 28) - 1;

/// Checks the validation rule on defined value types: `elem_size(t, 'i64')`
/// (the spec's `elem_size` in `definitions.py`, with 64-bit pointers) must
/// be less than 2^28. Sizes saturate, so no length or product overflows.
pub fn check_value_size(
    types: wasmparser::types::TypesRef<'_>,
    id: wasmparser::component_types::ComponentDefinedTypeId,
    memo: &mut LayoutMemo,
) -> Result<(), Error> {
    let (size, _) = layout64(types, &ComponentValType::Type(id), memo)?;
    if size > MAX_VALUE_SIZE {
        return Err(Error::Invalid(format!(
            "value type of {size} bytes in linear memory exceeds maximum byte size \
             of {MAX_VALUE_SIZE}"
        )));
    }
    Ok(())
}

/// `(elem_size(t, 'i64'), alignment(t, 'i64'))`, saturating.
fn layout64(
    types: wasmparser::types::TypesRef<'_>,
    t: &ComponentValType,
    memo: &mut LayoutMemo,
) -> Result<(u64, u64), Error> {
    let id = match t {
        ComponentValType::Primitive(p) => return Ok(prim_layout64(*p)),
        ComponentValType::Type(id) => *id,
    };
    if let Some(l) = memo.get(&id) {
        return Ok(*l);
    }
    let d = types
        .get(id)
        .ok_or_else(|| Error::Runtime("unknown type id".into()))?;
    let l = match d {
        ComponentDefinedType::Primitive(p) => prim_layout64(*p),
        ComponentDefinedType::Record(r) => record_layout64(types, r.fields.values(), memo)?,
        ComponentDefinedType::Tuple(t) => record_layout64(types, t.types.iter(), memo)?,
        ComponentDefinedType::List { .. } | ComponentDefinedType::Map { .. } => (16, 8),
        ComponentDefinedType::FixedLengthList {
            element, length, ..
        } => {
            let (s, a) = layout64(types, element, memo)?;
            (s.saturating_mul(u64::from(*length)), a)
        }
        ComponentDefinedType::Flags(f) => match f.len() {
            0..=8 => (1, 1),
            9..=16 => (2, 2),
            n => (4 * (n as u64).div_ceil(32), 4),
        },
        ComponentDefinedType::Enum(e) => variant_layout64(e.len(), [(0, 1)]),
        ComponentDefinedType::Variant(v) => {
            let cases = v
                .cases
                .values()
                .filter_map(|c| c.ty.as_ref())
                .map(|t| layout64(types, t, memo))
                .collect::<Result<Vec<_>, Error>>()?;
            variant_layout64(v.cases.len(), cases)
        }
        ComponentDefinedType::Option { ty, .. } => {
            variant_layout64(2, [layout64(types, ty, memo)?])
        }
        ComponentDefinedType::Result { ok, err, .. } => {
            let cases = [ok, err]
                .into_iter()
                .flatten()
                .map(|t| layout64(types, t, memo))
                .collect::<Result<Vec<_>, Error>>()?;
            variant_layout64(2, cases)
        }
        ComponentDefinedType::Own(_)
        | ComponentDefinedType::Borrow(_)
        | ComponentDefinedType::Future { .. }
        | ComponentDefinedType::Stream { .. } => (4, 4),
    };
    memo.insert(id, l);
    Ok(l)
}

/// `elem_size_record`: the fields in order, each at its alignment.
fn record_layout64<'t>(
    types: wasmparser::types::TypesRef<'_>,
    fields: impl Iterator<Item = &'t ComponentValType>,
    memo: &mut LayoutMemo,
) -> Result<(u64, u64), Error> {
    let (mut s, mut a) = (0u64, 1u64);
    for f in fields {
        let (fs, fa) = layout64(types, f, memo)?;
        s = align_up(s, fa).saturating_add(fs);
        a = a.max(fa);
    }
    Ok((align_up(s, a), a))
}

/// `elem_size_variant` of `n` cases with the given payload layouts.
fn variant_layout64(n: usize, payloads: impl IntoIterator<Item = (u64, u64)>) -> (u64, u64) {
    let d = if n <= 0x100 {
        1
    } else if n <= 0x1_0000 {
        2
    } else {
        4
    };
    let (mut max_s, mut max_a) = (0u64, 1u64);
    for (s, a) in payloads {
        max_s = max_s.max(s);
        max_a = max_a.max(a);
    }
    let a = max_a.max(d);
    let s = align_up(d, max_a).saturating_add(max_s);
    (align_up(s, a), a)
}

fn align_up(p: u64, a: u64) -> u64 {
    p.div_ceil(a).saturating_mul(a)
}

fn prim_layout64(p: PrimitiveValType) -> (u64, u64) {
    match p {
        PrimitiveValType::Bool | PrimitiveValType::S8 | PrimitiveValType::U8 => (1, 1),
        PrimitiveValType::S16 | PrimitiveValType::U16 => (2, 2),
        PrimitiveValType::S32
        | PrimitiveValType::U32
        | PrimitiveValType::F32
        | PrimitiveValType::Char
        | PrimitiveValType::ErrorContext => (4, 4),
        PrimitiveValType::S64 | PrimitiveValType::U64 | PrimitiveValType::F64 => (8, 8),
        PrimitiveValType::String => (16, 8),
    }
}
