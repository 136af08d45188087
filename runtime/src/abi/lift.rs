//! Lifting: core values and linear memory to component values.

use super::types::{
    alignment, elem_size, fields, flat_len, flatten_variant_payload, tuple_layout, variant_cases,
    variant_payload_offset, CoreTy, ResId, Ty,
};
use super::val::{canon_f32, canon_f64, Flat, Str, StrEnc, Val};
use crate::error::{trap_if, Trap};

/// Largest string or list byte length the ABI allows.
pub const MAX_BYTE_LENGTH: u64 = (1 << 28) - 1;

/// What one lift may still materialise, in bytes of host memory.
///
/// The Canonical ABI bounds each list and string by `MAX_LIST_BYTE_LENGTH`
/// and by the memory it lies in (`load_list_from_range`,
/// `load_string_from_range`), but not a value as a whole: nested lists may
/// all point at the same bytes, so a few bytes of guest memory can describe
/// a value of 2^56 bytes. Every lift (call arguments, results,
/// `task.return`, one stream or future copy) therefore gets a budget, and
/// lifting traps once the lists, strings and other composite values it has
/// materialised exceed it. A list costs `size_of::<Val>()` per element (its
/// elements' slots, whatever the element type), a record, tuple or fixed
/// list the same per field, a string the bytes of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiftBudget {
    limit: u64,
    left: u64,
}

impl LiftBudget {
    /// A fresh budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        LiftBudget { limit, left: limit }
    }

    /// How many bytes are left.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Takes `bytes` from the budget, or traps if fewer are left (the
    /// budget is then spent).
    pub fn charge(&mut self, bytes: u64) -> Result<(), Trap> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(Trap::new(format!(
                    "{LIFT_BUDGET_EXHAUSTED}: the lifted value needs more than \
                     the runtime's limit of {} bytes",
                    self.limit
                )))
            }
        }
    }
}

/// The start of the trap message of an exhausted [`LiftBudget`].
pub const LIFT_BUDGET_EXHAUSTED: &str = "value too large to lift";

/// The host bytes a lifted value of `n` slots (list elements, record
/// fields) takes.
fn val_slots(n: u64) -> u64 {
    n.saturating_mul(std::mem::size_of::<Val>() as u64)
}

/// What lifting and lowering need from their surroundings: the memory, the
/// realloc function, the string encoding and the handle table.
pub trait AbiCx {
    /// The linear memory (empty if the options name none).
    fn mem(&self) -> &[u8];
    /// The linear memory, writable.
    fn mem_mut(&mut self) -> &mut [u8];
    /// Whether the other side of this call is the host (trap texts differ).
    fn host_peer(&self) -> bool;
    /// The `string-encoding` option.
    fn encoding(&self) -> StrEnc;
    /// Calls `realloc` (traps if there is none).
    fn realloc(&mut self, old: u32, old_size: u32, align: u32, new_size: u32) -> Result<u32, Trap>;
    /// `lift_own`: removes an owned handle from the table.
    fn lift_own(&mut self, idx: u32, rt: ResId) -> Result<super::val::Handle, Trap>;
    /// `lift_borrow`: reads a handle and records the lend.
    fn lift_borrow(&mut self, idx: u32, rt: ResId) -> Result<super::val::Handle, Trap>;
    /// `lower_own`: adds an owned handle to the table.
    fn lower_own(&mut self, h: super::val::Handle) -> Result<u32, Trap>;
    /// `lower_borrow`: adds a borrowed handle (or passes the rep through).
    fn lower_borrow(&mut self, h: super::val::Handle) -> Result<u32, Trap>;
    /// The budget of the lift in progress (see [`LiftBudget`]).
    fn lift_budget(&mut self) -> &mut LiftBudget;
    /// Lifts a stream, future or error-context handle.
    fn lift_async_handle(&mut self, idx: u32, t: &Ty) -> Result<Val, Trap>;
    /// Lowers a stream, future or error-context value.
    fn lower_async_handle(&mut self, v: &Val, t: &Ty) -> Result<u32, Trap>;
}

/// A source of flat values with the type each one is wanted at.
pub trait FlatSource {
    /// The next flat value, coerced to `want`.
    fn next(&mut self, want: CoreTy) -> Result<Flat, Trap>;
}

/// Plain flat values in order.
pub struct FlatIter<'a> {
    vals: &'a [Flat],
    pos: usize,
}

impl<'a> FlatIter<'a> {
    /// Iterates over `vals`.
    pub fn new(vals: &'a [Flat]) -> Self {
        FlatIter { vals, pos: 0 }
    }
}

impl FlatSource for FlatIter<'_> {
    fn next(&mut self, want: CoreTy) -> Result<Flat, Trap> {
        let v = self
            .vals
            .get(self.pos)
            .copied()
            .ok_or_else(|| Trap::new("too few core values for the component type"))?;
        self.pos += 1;
        trap_if(v.ty() != want, "core value of the wrong type")?;
        Ok(v)
    }
}

/// Reads a variant payload stored at joined types as the wanted types.
struct Coerce<'s> {
    inner: &'s mut dyn FlatSource,
    have: std::vec::IntoIter<CoreTy>,
}

impl FlatSource for Coerce<'_> {
    fn next(&mut self, want: CoreTy) -> Result<Flat, Trap> {
        let have = self
            .have
            .next()
            .ok_or_else(|| Trap::new("variant payload too long"))?;
        let x = self.inner.next(have)?;
        Ok(match (x, want) {
            (Flat::I32(b), CoreTy::F32) => Flat::F32(canon_f32(b)),
            (Flat::I64(b), CoreTy::I32) => Flat::I32(b as u32),
            (Flat::I64(b), CoreTy::F32) => Flat::F32(canon_f32(b as u32)),
            (Flat::I64(b), CoreTy::F64) => Flat::F64(canon_f64(b)),
            (x, w) if x.ty() == w => x,
            _ => return Err(Trap::new("bad variant payload coercion")),
        })
    }
}

fn next_i32(vi: &mut dyn FlatSource) -> Result<u32, Trap> {
    match vi.next(CoreTy::I32)? {
        Flat::I32(v) => Ok(v),
        _ => Err(Trap::new("expected i32")),
    }
}

fn next_i64(vi: &mut dyn FlatSource) -> Result<u64, Trap> {
    match vi.next(CoreTy::I64)? {
        Flat::I64(v) => Ok(v),
        _ => Err(Trap::new("expected i64")),
    }
}

/// Converts an integer to a `char`, trapping on invalid scalar values.
pub fn to_char(i: u32) -> Result<char, Trap> {
    char::from_u32(i).ok_or_else(|| Trap::new("invalid `char` bit pattern"))
}

/// Lifts one value from flat core values.
pub fn lift_flat(cx: &mut dyn AbiCx, vi: &mut dyn FlatSource, t: &Ty) -> Result<Val, Trap> {
    Ok(match t {
        Ty::Bool => Val::Bool(next_i32(vi)? != 0),
        Ty::U8 => Val::U8(next_i32(vi)? as u8),
        Ty::S8 => Val::S8(next_i32(vi)? as u8 as i8),
        Ty::U16 => Val::U16(next_i32(vi)? as u16),
        Ty::S16 => Val::S16(next_i32(vi)? as u16 as i16),
        Ty::U32 => Val::U32(next_i32(vi)?),
        Ty::S32 => Val::S32(next_i32(vi)? as i32),
        Ty::U64 => Val::U64(next_i64(vi)?),
        Ty::S64 => Val::S64(next_i64(vi)? as i64),
        Ty::F32 => match vi.next(CoreTy::F32)? {
            Flat::F32(b) => Val::F32(canon_f32(b)),
            _ => return Err(Trap::new("expected f32")),
        },
        Ty::F64 => match vi.next(CoreTy::F64)? {
            Flat::F64(b) => Val::F64(canon_f64(b)),
            _ => return Err(Trap::new("expected f64")),
        },
        Ty::Char => Val::Char(to_char(next_i32(vi)?)?),
        Ty::String => {
            let ptr = next_i32(vi)?;
            let len = next_i32(vi)?;
            Val::String(load_string_from_range(cx, ptr, len)?)
        }
        Ty::List(e) => {
            let ptr = next_i32(vi)?;
            let len = next_i32(vi)?;
            Val::List(load_list_from_range(cx, ptr, len, e)?)
        }
        Ty::FixedList(e, n) => {
            cx.lift_budget().charge(val_slots(u64::from(*n)))?;
            let mut out = Vec::new();
            for _ in 0..*n {
                out.push(lift_flat(cx, vi, e)?);
            }
            Val::List(out)
        }
        Ty::Record(_) | Ty::Tuple(_) => {
            let fs = fields(t);
            cx.lift_budget().charge(val_slots(fs.len() as u64))?;
            let mut out = Vec::with_capacity(fs.len());
            for f in fs {
                out.push(lift_flat(cx, vi, f)?);
            }
            Val::Record(out)
        }
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => {
            let cases = variant_cases(t).unwrap_or_default();
            let payload = flatten_variant_payload(&cases);
            let idx = next_i32(vi)?;
            trap_if(idx as usize >= cases.len(), "invalid variant discriminant")?;
            let mut co = Coerce {
                inner: vi,
                have: payload.into_iter(),
            };
            let v = match &cases[idx as usize] {
                None => None,
                Some(ct) => {
                    cx.lift_budget().charge(val_slots(1))?;
                    Some(Box::new(lift_flat(cx, &mut co, ct)?))
                }
            };
            let rest: Vec<CoreTy> = co.have.collect();
            for have in rest {
                vi.next(have)?;
            }
            Val::Variant(idx, v)
        }
        Ty::Flags(labels) => {
            let n = labels.len();
            let mut words = Vec::new();
            for w in 0..n.div_ceil(32) {
                let bits = next_i32(vi)?;
                words.push(mask_flags(bits, n, w));
            }
            Val::Flags(words)
        }
        Ty::Own(rt) => Val::Own(cx.lift_own(next_i32(vi)?, *rt)?),
        Ty::Borrow(rt) => Val::Borrow(cx.lift_borrow(next_i32(vi)?, *rt)?),
        Ty::Stream(_) | Ty::Future(_) | Ty::ErrorContext => {
            let i = next_i32(vi)?;
            cx.lift_async_handle(i, t)?
        }
    })
}

fn mask_flags(bits: u32, n: usize, word: usize) -> u32 {
    let here = n.saturating_sub(word * 32).min(32);
    if here >= 32 {
        bits
    } else {
        bits & ((1u32 << here) - 1)
    }
}

/// Bounds-checked read of `n` bytes at `ptr`.
pub fn read_bytes(cx: &dyn AbiCx, ptr: u64, n: u64) -> Result<&[u8], Trap> {
    let mem = cx.mem();
    let end = ptr.checked_add(n).filter(|e| *e <= mem.len() as u64);
    match end {
        Some(end) => Ok(&mem[ptr as usize..end as usize]),
        None => Err(Trap::new("pointer out of bounds of memory")),
    }
}

fn load_uint(cx: &dyn AbiCx, ptr: u64, n: u64) -> Result<u64, Trap> {
    let b = read_bytes(cx, ptr, n)?;
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(*byte) << (8 * i);
    }
    Ok(v)
}

/// Loads a value of type `t` from memory at `ptr`.
pub fn load(cx: &mut dyn AbiCx, ptr: u64, t: &Ty) -> Result<Val, Trap> {
    Ok(match t {
        Ty::Bool => Val::Bool(load_uint(cx, ptr, 1)? != 0),
        Ty::U8 => Val::U8(load_uint(cx, ptr, 1)? as u8),
        Ty::S8 => Val::S8(load_uint(cx, ptr, 1)? as u8 as i8),
        Ty::U16 => Val::U16(load_uint(cx, ptr, 2)? as u16),
        Ty::S16 => Val::S16(load_uint(cx, ptr, 2)? as u16 as i16),
        Ty::U32 => Val::U32(load_uint(cx, ptr, 4)? as u32),
        Ty::S32 => Val::S32(load_uint(cx, ptr, 4)? as u32 as i32),
        Ty::U64 => Val::U64(load_uint(cx, ptr, 8)?),
        Ty::S64 => Val::S64(load_uint(cx, ptr, 8)? as i64),
        Ty::F32 => Val::F32(canon_f32(load_uint(cx, ptr, 4)? as u32)),
        Ty::F64 => Val::F64(canon_f64(load_uint(cx, ptr, 8)?)),
        Ty::Char => Val::Char(to_char(load_uint(cx, ptr, 4)? as u32)?),
        Ty::String => {
            let p = load_uint(cx, ptr, 4)? as u32;
            let n = load_uint(cx, ptr + 4, 4)? as u32;
            Val::String(load_string_from_range(cx, p, n)?)
        }
        Ty::List(e) => {
            let p = load_uint(cx, ptr, 4)? as u32;
            let n = load_uint(cx, ptr + 4, 4)? as u32;
            Val::List(load_list_from_range(cx, p, n, e)?)
        }
        Ty::FixedList(e, n) => {
            cx.lift_budget().charge(val_slots(u64::from(*n)))?;
            let size = elem_size(e);
            let mut out = Vec::new();
            for i in 0..u64::from(*n) {
                out.push(load(cx, ptr + i * size, e)?);
            }
            Val::List(out)
        }
        Ty::Record(_) | Ty::Tuple(_) => Val::Record(load_fields(cx, ptr, fields(t))?),
        Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..) => {
            let cases = variant_cases(t).unwrap_or_default();
            let dsize = super::types::discriminant_size(cases.len());
            let idx = load_uint(cx, ptr, u64::from(dsize))?;
            trap_if(idx >= cases.len() as u64, "invalid variant discriminant")?;
            let off = variant_payload_offset(&cases);
            let v = match &cases[idx as usize] {
                None => None,
                Some(ct) => {
                    cx.lift_budget().charge(val_slots(1))?;
                    Some(Box::new(load(cx, ptr + off, ct)?))
                }
            };
            Val::Variant(idx as u32, v)
        }
        Ty::Flags(labels) => {
            let n = labels.len();
            let size = elem_size(t);
            let mut words = Vec::new();
            if size <= 4 {
                words.push(mask_flags(load_uint(cx, ptr, size)? as u32, n, 0));
            } else {
                for w in 0..n.div_ceil(32) {
                    let bits = load_uint(cx, ptr + 4 * w as u64, 4)? as u32;
                    words.push(mask_flags(bits, n, w));
                }
            }
            Val::Flags(words)
        }
        Ty::Own(rt) => {
            let i = load_uint(cx, ptr, 4)? as u32;
            Val::Own(cx.lift_own(i, *rt)?)
        }
        Ty::Borrow(rt) => {
            let i = load_uint(cx, ptr, 4)? as u32;
            Val::Borrow(cx.lift_borrow(i, *rt)?)
        }
        Ty::Stream(_) | Ty::Future(_) | Ty::ErrorContext => {
            let i = load_uint(cx, ptr, 4)? as u32;
            cx.lift_async_handle(i, t)?
        }
    })
}

/// `load_string_from_range`.
pub fn load_string_from_range(cx: &mut dyn AbiCx, ptr: u32, tagged: u32) -> Result<Str, Trap> {
    let enc = cx.encoding();
    let tag = 1u32 << 31;
    let (align, byte_len, utf16) = match enc {
        StrEnc::Utf8 => (1, u64::from(tagged), false),
        StrEnc::Utf16 => (2, 2 * u64::from(tagged), true),
        StrEnc::Latin1Utf16 => {
            if tagged & tag != 0 {
                (2, 2 * u64::from(tagged ^ tag), true)
            } else {
                (2, u64::from(tagged), false)
            }
        }
    };
    let oob = if cx.host_peer() {
        "string pointer/length out of bounds of memory"
    } else {
        "string content out-of-bounds"
    };
    trap_if(byte_len > MAX_BYTE_LENGTH, oob)?;
    trap_if(u64::from(ptr) % align != 0, "unaligned pointer")?;
    trap_if(u64::from(ptr) + byte_len > cx.mem().len() as u64, oob)?;
    // What decoding materialises at most: the UTF-8 text (a Latin-1 byte
    // takes up to 2 bytes there; a UTF-16 code unit up to 3, after the
    // units themselves).
    let cost = match (enc, utf16) {
        (StrEnc::Utf8, _) => byte_len,
        (_, false) => 2 * byte_len,
        (_, true) => byte_len + byte_len / 2 * 3,
    };
    cx.lift_budget().charge(cost)?;
    let bytes = read_bytes(cx, u64::from(ptr), byte_len)?;
    let text = if utf16 {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| Trap::new("invalid utf-16"))?
    } else if enc == StrEnc::Utf8 {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(e) if e.error_len().is_none() => {
                return Err(Trap::new("invalid utf-8: incomplete utf-8 byte sequence"))
            }
            Err(_) => return Err(Trap::new("invalid utf-8")),
        }
    } else {
        bytes.iter().map(|b| char::from(*b)).collect()
    };
    Ok(Str {
        text,
        enc,
        tagged_code_units: tagged,
    })
}

/// `load_list_from_range`.
pub fn load_list_from_range(
    cx: &mut dyn AbiCx,
    ptr: u32,
    len: u32,
    e: &Ty,
) -> Result<Vec<Val>, Trap> {
    let size = elem_size(e);
    let total = u64::from(len).saturating_mul(size);
    let oob = if cx.host_peer() {
        "list pointer/length out of bounds of memory"
    } else {
        "list content out-of-bounds"
    };
    trap_if(total > MAX_BYTE_LENGTH, oob)?;
    trap_if(
        u64::from(ptr) % u64::from(alignment(e)) != 0,
        "unaligned pointer",
    )?;
    trap_if(u64::from(ptr) + total > cx.mem().len() as u64, oob)?;
    cx.lift_budget().charge(val_slots(u64::from(len)))?;
    let mut out = Vec::with_capacity(len.min(4096) as usize);
    for i in 0..u64::from(len) {
        out.push(load(cx, u64::from(ptr) + i * size, e)?);
    }
    Ok(out)
}

/// Loads the fields of a record or tuple laid out from `ptr`.
fn load_fields<'t>(
    cx: &mut dyn AbiCx,
    ptr: u64,
    fs: impl ExactSizeIterator<Item = &'t Ty>,
) -> Result<Vec<Val>, Trap> {
    cx.lift_budget().charge(val_slots(fs.len() as u64))?;
    let mut out = Vec::with_capacity(fs.len());
    let mut p = ptr;
    for f in fs {
        p = super::types::align_to(p, alignment(f));
        out.push(load(cx, p, f)?);
        p += elem_size(f);
    }
    Ok(out)
}

/// `lift_flat_values`: lifts a parameter or result list.
pub fn lift_flat_values(
    cx: &mut dyn AbiCx,
    max_flat: usize,
    vi: &mut dyn FlatSource,
    ts: &[Ty],
) -> Result<Vec<Val>, Trap> {
    if flat_len(ts) > max_flat {
        let ptr = u64::from(next_i32(vi)?);
        let (align, size) = tuple_layout(ts.iter());
        trap_if(ptr % u64::from(align) != 0, "unaligned pointer")?;
        trap_if(
            ptr + size > cx.mem().len() as u64,
            "pointer out of bounds of memory",
        )?;
        load_fields(cx, ptr, ts.iter())
    } else {
        ts.iter().map(|t| lift_flat(cx, vi, t)).collect()
    }
}
