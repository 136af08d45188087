//! Building the component types of host functions ([`FuncTy`], [`Ty`]) and
//! the values they take and return, in the shape the runtime compares
//! with a component's imports (names of record fields, variant cases,
//! enum labels and flags included; parameter names aside).

use std::sync::Arc;

use canon_async_wasmi::abi::val::Str;
use canon_async_wasmi::{FuncTy, Ty, Val};

/// `list<t>`.
pub fn list(t: Ty) -> Ty {
    Ty::List(Arc::new(t))
}

/// `option<t>`.
pub fn option(t: Ty) -> Ty {
    Ty::Option(Arc::new(t))
}

/// `result<ok, err>` (`None` for `_`).
pub fn result(ok: Option<Ty>, err: Option<Ty>) -> Ty {
    Ty::Result(ok.map(Arc::new), err.map(Arc::new))
}

/// `tuple<ts...>`.
pub fn tuple(ts: impl IntoIterator<Item = Ty>) -> Ty {
    Ty::Tuple(ts.into_iter().collect::<Vec<_>>().into())
}

/// `record { name: t, ... }`.
pub fn record(fields: &[(&str, Ty)]) -> Ty {
    Ty::Record(
        fields
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// `variant { case(t), case, ... }`.
pub fn variant(cases: &[(&str, Option<Ty>)]) -> Ty {
    Ty::Variant(
        cases
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// `enum { label, ... }`.
pub fn enumeration(labels: &[&str]) -> Ty {
    Ty::Enum(
        labels
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into(),
    )
}

/// `stream<u8>`.
pub fn byte_stream() -> Ty {
    Ty::Stream(Some(Arc::new(Ty::U8)))
}

/// `future<t>`.
pub fn future(t: Option<Ty>) -> Ty {
    Ty::Future(t.map(Arc::new))
}

/// A synchronous function type (parameter names are not compared).
pub fn func(params: &[Ty], result: Option<Ty>) -> FuncTy {
    FuncTy {
        params: params
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.clone()))
            .collect(),
        result,
        is_async: false,
    }
}

/// An `async` function type.
pub fn async_func(params: &[Ty], result: Option<Ty>) -> FuncTy {
    FuncTy {
        is_async: true,
        ..func(params, result)
    }
}

/// `ok` of a `result<_, E>`.
pub fn ok_unit() -> Val {
    Val::Variant(0, None)
}

/// `ok(v)`.
pub fn ok(v: Val) -> Val {
    Val::Variant(0, Some(Box::new(v)))
}

/// `err(v)`.
pub fn err(v: Val) -> Val {
    Val::Variant(1, Some(Box::new(v)))
}

/// `none`.
pub fn none() -> Val {
    Val::Variant(0, None)
}

/// `some(v)`.
pub fn some(v: Val) -> Val {
    Val::Variant(1, Some(Box::new(v)))
}

/// A string value.
pub fn string(s: &str) -> Val {
    Val::String(Str::from_host(s))
}

/// A `list<u8>` value.
pub fn bytes(b: &[u8]) -> Val {
    Val::List(b.iter().map(|b| Val::U8(*b)).collect())
}

/// The bytes of a `list<u8>` value (or of `u8` stream elements).
pub fn to_bytes(vals: &[Val]) -> Option<Vec<u8>> {
    vals.iter()
        .map(|v| match v {
            Val::U8(b) => Some(*b),
            _ => None,
        })
        .collect()
}

/// The case `label` of the enum `labels`, as a value.
pub fn enum_case(labels: &[&str], label: &str) -> Val {
    let i = labels.iter().position(|l| *l == label).unwrap_or(0);
    Val::Variant(i as u32, None)
}

/// The `u64` argument `i` of `args`.
pub fn arg_u64(args: &[Val], i: usize) -> Result<u64, canon_async_wasmi::HostError> {
    match args.get(i) {
        Some(Val::U64(n)) => Ok(*n),
        other => Err(canon_async_wasmi::HostError::new(format!(
            "argument {i}: expected a u64, got {other:?}"
        ))),
    }
}
