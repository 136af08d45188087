//! Component value types as the runtime sees them (resources resolved to
//! runtime ids), their memory layout and their flattening into core types.

use std::sync::Arc;

/// A runtime resource type: an index into the store's resource list.
pub type ResId = usize;

/// A component value type, with resources resolved to runtime ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    /// `bool`.
    Bool,
    /// `s8`.
    S8,
    /// `u8`.
    U8,
    /// `s16`.
    S16,
    /// `u16`.
    U16,
    /// `s32`.
    S32,
    /// `u32`.
    U32,
    /// `s64`.
    S64,
    /// `u64`.
    U64,
    /// `f32` (as bits in a value).
    F32,
    /// `f64` (as bits in a value).
    F64,
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `error-context`.
    ErrorContext,
    /// `list<T>`.
    List(Arc<Ty>),
    /// `list<T, N>`.
    FixedList(Arc<Ty>, u32),
    /// `record`: field names and types (also in a value: `tuple`).
    Record(Arc<[(String, Ty)]>),
    /// `tuple`.
    Tuple(Arc<[Ty]>),
    /// `variant`: case names and payloads (in a value also `enum`, `option`, `result`: case index and payload).
    Variant(Arc<[(String, Option<Ty>)]>),
    /// `enum`: case names.
    Enum(Arc<[String]>),
    /// `option<T>`.
    Option(Arc<Ty>),
    /// `result<T, E>`.
    Result(Option<Arc<Ty>>, Option<Arc<Ty>>),
    /// `flags`: names (in a value: the set bits, 32 per word).
    Flags(Arc<[String]>),
    /// `own<R>`.
    Own(ResId),
    /// `borrow<R>`.
    Borrow(ResId),
    /// `stream<T>` (in a value: the stream).
    Stream(Option<Arc<Ty>>),
    /// `future<T>` (in a value: the future).
    Future(Option<Arc<Ty>>),
}

/// A component function type.
#[derive(Debug, Clone, PartialEq)]
pub struct FuncTy {
    /// The parameters, named.
    pub params: Vec<(String, Ty)>,
    /// The result, if any.
    pub result: Option<Ty>,
    /// Whether it is an `async func`.
    pub is_async: bool,
}

impl FuncTy {
    /// The parameter types, without names.
    pub fn param_types(&self) -> Vec<Ty> {
        self.params.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The result types (zero or one).
    pub fn result_types(&self) -> Vec<Ty> {
        self.result.iter().cloned().collect()
    }

    /// The result types (zero or one), borrowed.
    pub fn results(&self) -> &[Ty] {
        self.result.as_slice()
    }

    /// Whether `other` has the same parameter and result types and the
    /// same `async`-ness (parameter names aside).
    pub fn same_signature(&self, other: &FuncTy) -> bool {
        self.is_async == other.is_async
            && self.result == other.result
            && self.params.len() == other.params.len()
            && self
                .params
                .iter()
                .zip(&other.params)
                .all(|(a, b)| a.1 == b.1)
    }

    /// The type in a WIT-like notation, for messages.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t:?}"))
            .collect();
        let r#async = if self.is_async { "async " } else { "" };
        match &self.result {
            Some(r) => format!("{async}func({}) -> {r:?}", params.join(", "), async = r#async),
            None => format!("{async}func({})", params.join(", "), async = r#async),
        }
    }
}

/// A core value type produced by flattening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreTy {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `f32` (as bits in a value).
    F32,
    /// `f64` (as bits in a value).
    F64,
}

/// How a variant-like type's cases look, whatever its surface form.
pub fn variant_cases(t: &Ty) -> Option<Vec<Option<Ty>>> {
    Some(match t {
        Ty::Variant(cases) => cases.iter().map(|(_, c)| c.clone()).collect(),
        Ty::Enum(labels) => labels.iter().map(|_| None).collect(),
        Ty::Option(t) => vec![None, Some((**t).clone())],
        Ty::Result(ok, err) => vec![
            ok.as_ref().map(|t| (**t).clone()),
            err.as_ref().map(|t| (**t).clone()),
        ],
        _ => return None,
    })
}

/// Size in bytes of the discriminant of a variant with `n` cases.
pub fn discriminant_size(n: usize) -> u32 {
    if n <= 0x100 {
        1
    } else if n <= 0x1_0000 {
        2
    } else {
        4
    }
}

/// Rounds `ptr` up to a multiple of `align` (a power of two).
pub fn align_to(ptr: u64, align: u32) -> u64 {
    let a = u64::from(align.max(1));
    ptr.div_ceil(a) * a
}

fn max_case_alignment(cases: &[Option<Ty>]) -> u32 {
    cases.iter().flatten().map(alignment).max().unwrap_or(1)
}

fn flags_size(n: usize) -> u32 {
    if n == 0 {
        0
    } else if n <= 8 {
        1
    } else if n <= 16 {
        2
    } else {
        4 * n.div_ceil(32) as u32
    }
}

/// The alignment of a value of type `t` in linear memory.
pub fn alignment(t: &Ty) -> u32 {
    match t {
        Ty::Bool | Ty::S8 | Ty::U8 => 1,
        Ty::S16 | Ty::U16 => 2,
        Ty::S32 | Ty::U32 | Ty::F32 | Ty::Char | Ty::ErrorContext => 4,
        Ty::Own(_) | Ty::Borrow(_) | Ty::Stream(_) | Ty::Future(_) => 4,
        Ty::S64 | Ty::U64 | Ty::F64 => 8,
        Ty::String | Ty::List(_) => 4,
        Ty::FixedList(e, _) => alignment(e),
        Ty::Record(fields) => fields.iter().map(|(_, t)| alignment(t)).max().unwrap_or(1),
        Ty::Tuple(ts) => ts.iter().map(alignment).max().unwrap_or(1),
        Ty::Flags(labels) => match flags_size(labels.len()) {
            0 | 1 => 1,
            2 => 2,
            _ => 4,
        },
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => {
            let cases = variant_cases(t).unwrap_or_default();
            discriminant_size(cases.len()).max(max_case_alignment(&cases))
        }
    }
}

/// The size of a value of type `t` in linear memory.
pub fn elem_size(t: &Ty) -> u64 {
    match t {
        Ty::Bool | Ty::S8 | Ty::U8 => 1,
        Ty::S16 | Ty::U16 => 2,
        Ty::S32 | Ty::U32 | Ty::F32 | Ty::Char | Ty::ErrorContext => 4,
        Ty::Own(_) | Ty::Borrow(_) | Ty::Stream(_) | Ty::Future(_) => 4,
        Ty::S64 | Ty::U64 | Ty::F64 => 8,
        Ty::String | Ty::List(_) => 8,
        Ty::FixedList(e, n) => elem_size(e).saturating_mul(u64::from(*n)),
        Ty::Record(_) | Ty::Tuple(_) => tuple_layout(fields(t)).1,
        Ty::Flags(labels) => u64::from(flags_size(labels.len())),
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => {
            let cases = variant_cases(t).unwrap_or_default();
            let mut s = u64::from(discriminant_size(cases.len()));
            s = align_to(s, max_case_alignment(&cases));
            let max = cases.iter().flatten().map(elem_size).max().unwrap_or(0);
            align_to(s.saturating_add(max), alignment(t))
        }
    }
}

/// The alignment and size of a tuple of the types `fs` (of a record with
/// those field types).
pub fn tuple_layout<'t>(fs: impl Iterator<Item = &'t Ty> + Clone) -> (u32, u64) {
    let align = fs.clone().map(alignment).max().unwrap_or(1);
    let mut s = 0u64;
    for f in fs {
        s = align_to(s, alignment(f));
        s = s.saturating_add(elem_size(f));
    }
    (align, align_to(s, align))
}

/// The field types of a record or tuple.
pub fn field_types(t: &Ty) -> Vec<Ty> {
    fields(t).cloned().collect()
}

/// The field types of a record or tuple, borrowed (nothing for another
/// type).
pub fn fields(t: &Ty) -> impl ExactSizeIterator<Item = &Ty> + Clone {
    let (record, tuple): (&[(String, Ty)], &[Ty]) = match t {
        Ty::Record(fields) => (fields, &[]),
        Ty::Tuple(ts) => (&[], ts),
        _ => (&[], &[]),
    };
    // One of the two is empty.
    FieldIter { record, tuple }
}

#[derive(Clone)]
struct FieldIter<'a> {
    record: &'a [(String, Ty)],
    tuple: &'a [Ty],
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = &'a Ty;

    fn next(&mut self) -> Option<&'a Ty> {
        if let Some(((_, t), rest)) = self.record.split_first() {
            self.record = rest;
            return Some(t);
        }
        let (t, rest) = self.tuple.split_first()?;
        self.tuple = rest;
        Some(t)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.record.len() + self.tuple.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

/// The offset of the payload of a variant with the given cases.
pub fn variant_payload_offset(cases: &[Option<Ty>]) -> u64 {
    align_to(
        u64::from(discriminant_size(cases.len())),
        max_case_alignment(cases),
    )
}

fn join(a: CoreTy, b: CoreTy) -> CoreTy {
    if a == b {
        a
    } else if matches!(
        (a, b),
        (CoreTy::I32, CoreTy::F32) | (CoreTy::F32, CoreTy::I32)
    ) {
        CoreTy::I32
    } else {
        CoreTy::I64
    }
}

/// The flat payload types of a variant (without the discriminant).
pub fn flatten_variant_payload(cases: &[Option<Ty>]) -> Vec<CoreTy> {
    let mut flat: Vec<CoreTy> = Vec::new();
    for c in cases.iter().flatten() {
        for (i, ft) in flatten(c).into_iter().enumerate() {
            if i < flat.len() {
                flat[i] = join(flat[i], ft);
            } else {
                flat.push(ft);
            }
        }
    }
    flat
}

/// Flattens one type into core types.
pub fn flatten(t: &Ty) -> Vec<CoreTy> {
    let mut out = Vec::new();
    flatten_into(t, &mut out);
    out
}

fn flatten_into(t: &Ty, out: &mut Vec<CoreTy>) {
    match t {
        Ty::S64 | Ty::U64 => out.push(CoreTy::I64),
        Ty::F32 => out.push(CoreTy::F32),
        Ty::F64 => out.push(CoreTy::F64),
        Ty::String | Ty::List(_) => {
            out.push(CoreTy::I32);
            out.push(CoreTy::I32);
        }
        Ty::FixedList(e, n) => {
            let inner = flatten(e);
            for _ in 0..*n {
                out.extend_from_slice(&inner);
                if out.len() > 1024 {
                    break;
                }
            }
        }
        Ty::Record(_) | Ty::Tuple(_) => {
            for f in fields(t) {
                flatten_into(f, out);
            }
        }
        Ty::Flags(labels) => {
            for _ in 0..labels.len().div_ceil(32) {
                out.push(CoreTy::I32);
            }
        }
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => {
            let cases = variant_cases(t).unwrap_or_default();
            out.push(CoreTy::I32);
            out.extend(flatten_variant_payload(&cases));
        }
        _ => out.push(CoreTy::I32),
    }
}

/// Flattens a list of types.
pub fn flatten_types(ts: &[Ty]) -> Vec<CoreTy> {
    let mut out = Vec::new();
    for t in ts {
        flatten_into(t, &mut out);
    }
    out
}

/// How many core values `ts` flatten to (exactly, up to a fixed-size list
/// longer than 1024 values, which counts as more than 1024), without
/// building them.
pub fn flat_len(ts: &[Ty]) -> usize {
    fn one(t: &Ty) -> usize {
        match t {
            Ty::String | Ty::List(_) => 2,
            Ty::FixedList(e, n) => one(e).saturating_mul(*n as usize).min(1025),
            Ty::Record(_) | Ty::Tuple(_) => fields(t).map(one).fold(0, usize::saturating_add),
            Ty::Flags(labels) => labels.len().div_ceil(32),
            Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => flatten(t).len(),
            _ => 1,
        }
    }
    ts.iter().map(one).fold(0, usize::saturating_add)
}

/// Maximum number of flat parameters before they spill to memory.
pub const MAX_FLAT_PARAMS: usize = 16;
/// Maximum number of flat parameters of an async lowered call.
pub const MAX_FLAT_ASYNC_PARAMS: usize = 4;
/// Maximum number of flat results before they spill to memory.
pub const MAX_FLAT_RESULTS: usize = 1;

/// A core function signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSig {
    /// The core parameter types.
    pub params: Vec<CoreTy>,
    /// The core result types.
    pub results: Vec<CoreTy>,
}

/// `flatten_functype` for a synchronous lift or lower, or an async one.
pub fn flatten_functype(ft: &FuncTy, is_async: bool, has_callback: bool, lift: bool) -> CoreSig {
    let mut params = flatten_types(&ft.param_types());
    let mut results = flatten_types(&ft.result_types());
    if !is_async {
        if params.len() > MAX_FLAT_PARAMS {
            params = vec![CoreTy::I32];
        }
        if results.len() > MAX_FLAT_RESULTS {
            if lift {
                results = vec![CoreTy::I32];
            } else {
                params.push(CoreTy::I32);
                results = Vec::new();
            }
        }
    } else if lift {
        if params.len() > MAX_FLAT_PARAMS {
            params = vec![CoreTy::I32];
        }
        results = if has_callback {
            vec![CoreTy::I32]
        } else {
            Vec::new()
        };
    } else {
        if params.len() > MAX_FLAT_ASYNC_PARAMS {
            params = vec![CoreTy::I32];
        }
        if !results.is_empty() {
            params.push(CoreTy::I32);
        }
        results = vec![CoreTy::I32];
    }
    CoreSig { params, results }
}
