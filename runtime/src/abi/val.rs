//! Component values in transit between a lift and a lower, and flat core
//! values.

use super::types::{CoreTy, ResId};

/// A string's source encoding, as the Canonical ABI tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrEnc {
    /// UTF-8.
    Utf8,
    /// UTF-16.
    Utf16,
    /// Latin-1 or UTF-16 (`latin1+utf16`).
    Latin1Utf16,
}

/// A lifted string: its text, the encoding it was lifted from and the
/// (possibly tagged) number of code units it had there.
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    /// The text.
    pub text: String,
    /// The encoding it was lifted from.
    pub enc: StrEnc,
    /// Its length in code units there, tagged for `latin1+utf16`.
    pub tagged_code_units: u32,
}

impl Str {
    /// A string coming from the host, counted in UTF-8 bytes.
    pub fn from_host(s: &str) -> Self {
        Str {
            text: s.to_string(),
            enc: StrEnc::Utf8,
            tagged_code_units: s.len() as u32,
        }
    }
}

/// A resource handle in transit: the resource's representation and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    /// The resource's representation.
    pub rep: u32,
    /// The runtime resource type.
    pub rt: ResId,
}

/// A component value. Records and tuples share `Record`; variants, enums,
/// options and results share `Variant` (case index and payload); fixed and
/// variable lists share `List`. Floats are kept as bits.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `bool`.
    Bool(bool),
    /// `s8`.
    S8(i8),
    /// `u8`.
    U8(u8),
    /// `s16`.
    S16(i16),
    /// `u16`.
    U16(u16),
    /// `s32`.
    S32(i32),
    /// `u32`.
    U32(u32),
    /// `s64`.
    S64(i64),
    /// `u64`.
    U64(u64),
    /// `f32` (as bits in a value).
    F32(u32),
    /// `f64` (as bits in a value).
    F64(u64),
    /// `char`.
    Char(char),
    /// `string`.
    String(Str),
    /// `list<T>`.
    List(Vec<Val>),
    /// `record`: field names and types (also in a value: `tuple`).
    Record(Vec<Val>),
    /// `variant`: case names and payloads (in a value also `enum`, `option`, `result`: case index and payload).
    Variant(u32, Option<Box<Val>>),
    /// `flags`: names (in a value: the set bits, 32 per word).
    Flags(Vec<u32>),
    /// `own<R>`.
    Own(Handle),
    /// `borrow<R>`.
    Borrow(Handle),
    /// `stream<T>` (in a value: the stream).
    Stream(canon_async::SharedId),
    /// `future<T>` (in a value: the future).
    Future(canon_async::SharedId),
    /// `error-context`.
    ErrorContext(canon_async::ErrorContextId),
}

/// A flat core value, kept as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flat {
    /// `i32`.
    I32(u32),
    /// `i64`.
    I64(u64),
    /// `f32` (as bits in a value).
    F32(u32),
    /// `f64` (as bits in a value).
    F64(u64),
}

impl Flat {
    /// The core type of this value.
    pub fn ty(self) -> CoreTy {
        match self {
            Flat::I32(_) => CoreTy::I32,
            Flat::I64(_) => CoreTy::I64,
            Flat::F32(_) => CoreTy::F32,
            Flat::F64(_) => CoreTy::F64,
        }
    }

    /// The zero value of a core type.
    pub fn zero(t: CoreTy) -> Flat {
        match t {
            CoreTy::I32 => Flat::I32(0),
            CoreTy::I64 => Flat::I64(0),
            CoreTy::F32 => Flat::F32(0),
            CoreTy::F64 => Flat::F64(0),
        }
    }

    /// Converts to a wasmi value.
    pub fn to_wasmi(self) -> wasmi::Val {
        match self {
            Flat::I32(v) => wasmi::Val::I32(v as i32),
            Flat::I64(v) => wasmi::Val::I64(v as i64),
            Flat::F32(v) => wasmi::Val::F32(wasmi::F32::from_bits(v)),
            Flat::F64(v) => wasmi::Val::F64(wasmi::F64::from_bits(v)),
        }
    }

    /// Converts from a wasmi value (reference values become 0).
    pub fn from_wasmi(v: &wasmi::Val) -> Flat {
        match v {
            wasmi::Val::I32(v) => Flat::I32(*v as u32),
            wasmi::Val::I64(v) => Flat::I64(*v as u64),
            wasmi::Val::F32(v) => Flat::F32(v.to_bits()),
            wasmi::Val::F64(v) => Flat::F64(v.to_bits()),
            _ => Flat::I32(0),
        }
    }
}

/// The canonical 32-bit NaN.
pub const CANONICAL_F32_NAN: u32 = 0x7fc0_0000;
/// The canonical 64-bit NaN.
pub const CANONICAL_F64_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Canonicalizes a NaN bit pattern of an f32.
pub fn canon_f32(bits: u32) -> u32 {
    if f32::from_bits(bits).is_nan() {
        CANONICAL_F32_NAN
    } else {
        bits
    }
}

/// Canonicalizes a NaN bit pattern of an f64.
pub fn canon_f64(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        CANONICAL_F64_NAN
    } else {
        bits
    }
}
