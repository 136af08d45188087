//! Lowering: component values to core values and linear memory.

use super::lift::{AbiCx, FlatSource};
use super::types::{
    align_to, alignment, elem_size, fields, flat_len, flatten_variant_payload, tuple_layout,
    variant_cases, variant_payload_offset, CoreTy, Ty,
};
use super::val::{canon_f32, canon_f64, Flat, Str, StrEnc, Val};
use crate::error::{trap_if, Trap};

fn mismatch() -> Trap {
    Trap::new("value does not match its component type")
}

/// Calls realloc and checks the returned pointer as the ABI requires.
fn realloc_checked(
    cx: &mut dyn AbiCx,
    old: u32,
    old_size: u32,
    align: u32,
    new_size: u64,
    what: &str,
) -> Result<u32, Trap> {
    let new_size = u32::try_from(new_size).map_err(|_| Trap::new("allocation too large"))?;
    let ptr = cx.realloc(old, old_size, align, new_size)?;
    let len = cx.mem().len() as u64;
    let oob = u64::from(ptr) + u64::from(new_size) > len;
    let unaligned = ptr % align.max(1) != 0;
    if cx.host_peer() {
        trap_if(unaligned, "realloc return: result not aligned")?;
        trap_if(oob, "realloc return: beyond end of memory")?;
    } else {
        trap_if(unaligned, "unaligned pointer")?;
        trap_if(oob, &format!("{what} content out-of-bounds"))?;
    }
    Ok(ptr)
}

fn write_bytes(cx: &mut dyn AbiCx, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
    let mem = cx.mem_mut();
    let end = ptr
        .checked_add(bytes.len() as u64)
        .filter(|e| *e <= mem.len() as u64)
        .ok_or_else(|| Trap::new("pointer out of bounds of memory"))?;
    mem[ptr as usize..end as usize].copy_from_slice(bytes);
    Ok(())
}

fn store_uint(cx: &mut dyn AbiCx, ptr: u64, v: u64, n: usize) -> Result<(), Trap> {
    let b = v.to_le_bytes();
    write_bytes(cx, ptr, &b[..n])
}

/// Lowers one value into flat core values.
pub fn lower_flat(cx: &mut dyn AbiCx, v: &Val, t: &Ty, out: &mut Vec<Flat>) -> Result<(), Trap> {
    match (t, v) {
        (Ty::Bool, Val::Bool(b)) => out.push(Flat::I32(u32::from(*b))),
        (Ty::U8, Val::U8(x)) => out.push(Flat::I32(u32::from(*x))),
        (Ty::S8, Val::S8(x)) => out.push(Flat::I32(i32::from(*x) as u32)),
        (Ty::U16, Val::U16(x)) => out.push(Flat::I32(u32::from(*x))),
        (Ty::S16, Val::S16(x)) => out.push(Flat::I32(i32::from(*x) as u32)),
        (Ty::U32, Val::U32(x)) => out.push(Flat::I32(*x)),
        (Ty::S32, Val::S32(x)) => out.push(Flat::I32(*x as u32)),
        (Ty::U64, Val::U64(x)) => out.push(Flat::I64(*x)),
        (Ty::S64, Val::S64(x)) => out.push(Flat::I64(*x as u64)),
        (Ty::F32, Val::F32(b)) => out.push(Flat::F32(canon_f32(*b))),
        (Ty::F64, Val::F64(b)) => out.push(Flat::F64(canon_f64(*b))),
        (Ty::Char, Val::Char(c)) => out.push(Flat::I32(u32::from(*c))),
        (Ty::String, Val::String(s)) => {
            let (p, n) = store_string_into_range(cx, s)?;
            out.push(Flat::I32(p));
            out.push(Flat::I32(n));
        }
        (Ty::List(e), Val::List(vs)) => {
            let (p, n) = store_list_into_range(cx, vs, e)?;
            out.push(Flat::I32(p));
            out.push(Flat::I32(n));
        }
        (Ty::FixedList(e, _), Val::List(vs)) => {
            for v in vs {
                lower_flat(cx, v, e, out)?;
            }
        }
        (Ty::Record(_) | Ty::Tuple(_), Val::Record(vs)) => {
            let fts = fields(t);
            if fts.len() != vs.len() {
                return Err(mismatch());
            }
            for (v, ft) in vs.iter().zip(fts) {
                lower_flat(cx, v, ft, out)?;
            }
        }
        (Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..), Val::Variant(i, p)) => {
            let cases = variant_cases(t).unwrap_or_default();
            let want = flatten_variant_payload(&cases);
            let case = cases.get(*i as usize).ok_or_else(mismatch)?;
            out.push(Flat::I32(*i));
            let mut payload = Vec::new();
            match (case, p) {
                (None, None) => {}
                (Some(ct), Some(pv)) => lower_flat(cx, pv, ct, &mut payload)?,
                _ => return Err(mismatch()),
            }
            for (k, w) in want.iter().enumerate() {
                let x = match payload.get(k) {
                    None => Flat::zero(*w),
                    Some(x) => match (*x, *w) {
                        (Flat::F32(b), CoreTy::I32) => Flat::I32(b),
                        (Flat::I32(b), CoreTy::I64) => Flat::I64(u64::from(b)),
                        (Flat::F32(b), CoreTy::I64) => Flat::I64(u64::from(b)),
                        (Flat::F64(b), CoreTy::I64) => Flat::I64(b),
                        (x, w) if x.ty() == w => x,
                        _ => return Err(mismatch()),
                    },
                };
                out.push(x);
            }
        }
        (Ty::Flags(labels), Val::Flags(words)) => {
            for w in 0..labels.len().div_ceil(32) {
                out.push(Flat::I32(words.get(w).copied().unwrap_or(0)));
            }
        }
        (Ty::Own(_), Val::Own(h)) => out.push(Flat::I32(cx.lower_own(*h)?)),
        (Ty::Borrow(_), Val::Borrow(h)) => out.push(Flat::I32(cx.lower_borrow(*h)?)),
        (Ty::Stream(_) | Ty::Future(_) | Ty::ErrorContext, v) => {
            out.push(Flat::I32(cx.lower_async_handle(v, t)?))
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// Stores a value of type `t` at `ptr`.
pub fn store(cx: &mut dyn AbiCx, v: &Val, t: &Ty, ptr: u64) -> Result<(), Trap> {
    match (t, v) {
        (Ty::Bool, Val::Bool(b)) => store_uint(cx, ptr, u64::from(*b), 1),
        (Ty::U8, Val::U8(x)) => store_uint(cx, ptr, u64::from(*x), 1),
        (Ty::S8, Val::S8(x)) => store_uint(cx, ptr, *x as u8 as u64, 1),
        (Ty::U16, Val::U16(x)) => store_uint(cx, ptr, u64::from(*x), 2),
        (Ty::S16, Val::S16(x)) => store_uint(cx, ptr, *x as u16 as u64, 2),
        (Ty::U32, Val::U32(x)) => store_uint(cx, ptr, u64::from(*x), 4),
        (Ty::S32, Val::S32(x)) => store_uint(cx, ptr, *x as u32 as u64, 4),
        (Ty::U64, Val::U64(x)) => store_uint(cx, ptr, *x, 8),
        (Ty::S64, Val::S64(x)) => store_uint(cx, ptr, *x as u64, 8),
        (Ty::F32, Val::F32(b)) => store_uint(cx, ptr, u64::from(canon_f32(*b)), 4),
        (Ty::F64, Val::F64(b)) => store_uint(cx, ptr, canon_f64(*b), 8),
        (Ty::Char, Val::Char(c)) => store_uint(cx, ptr, u64::from(u32::from(*c)), 4),
        (Ty::String, Val::String(s)) => {
            let (p, n) = store_string_into_range(cx, s)?;
            store_uint(cx, ptr, u64::from(p), 4)?;
            store_uint(cx, ptr + 4, u64::from(n), 4)
        }
        (Ty::List(e), Val::List(vs)) => {
            let (p, n) = store_list_into_range(cx, vs, e)?;
            store_uint(cx, ptr, u64::from(p), 4)?;
            store_uint(cx, ptr + 4, u64::from(n), 4)
        }
        (Ty::FixedList(e, _), Val::List(vs)) => {
            let size = elem_size(e);
            for (i, v) in vs.iter().enumerate() {
                store(cx, v, e, ptr + i as u64 * size)?;
            }
            Ok(())
        }
        (Ty::Record(_) | Ty::Tuple(_), Val::Record(vs)) => store_fields(cx, vs, fields(t), ptr),
        (Ty::Variant(_) | Ty::Enum(_) | Ty::Option(_) | Ty::Result(..), Val::Variant(i, p)) => {
            let cases = variant_cases(t).unwrap_or_default();
            let dsize = super::types::discriminant_size(cases.len()) as usize;
            store_uint(cx, ptr, u64::from(*i), dsize)?;
            let off = variant_payload_offset(&cases);
            match (cases.get(*i as usize).ok_or_else(mismatch)?, p) {
                (None, None) => Ok(()),
                (Some(ct), Some(pv)) => store(cx, pv, ct, ptr + off),
                _ => Err(mismatch()),
            }
        }
        (Ty::Flags(_), Val::Flags(words)) => {
            let size = elem_size(t);
            if size <= 4 {
                store_uint(
                    cx,
                    ptr,
                    u64::from(words.first().copied().unwrap_or(0)),
                    size as usize,
                )
            } else {
                for (k, w) in words.iter().enumerate() {
                    store_uint(cx, ptr + 4 * k as u64, u64::from(*w), 4)?;
                }
                Ok(())
            }
        }
        (Ty::Own(_), Val::Own(h)) => {
            let i = cx.lower_own(*h)?;
            store_uint(cx, ptr, u64::from(i), 4)
        }
        (Ty::Borrow(_), Val::Borrow(h)) => {
            let i = cx.lower_borrow(*h)?;
            store_uint(cx, ptr, u64::from(i), 4)
        }
        (Ty::Stream(_) | Ty::Future(_) | Ty::ErrorContext, v) => {
            let i = cx.lower_async_handle(v, t)?;
            store_uint(cx, ptr, u64::from(i), 4)
        }
        _ => Err(mismatch()),
    }
}

/// `store_list_into_range`: allocates and stores a list.
pub fn store_list_into_range(cx: &mut dyn AbiCx, vs: &[Val], e: &Ty) -> Result<(u32, u32), Trap> {
    let size = elem_size(e);
    let bytes = (vs.len() as u64).saturating_mul(size);
    let align = alignment(e);
    let ptr = realloc_checked(cx, 0, 0, align, bytes, "list")?;
    for (i, v) in vs.iter().enumerate() {
        store(cx, v, e, u64::from(ptr) + i as u64 * size)?;
    }
    Ok((ptr, vs.len() as u32))
}

const UTF16_TAG: u32 = 1 << 31;

fn utf16_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// `store_string_into_range`: transcodes a string into the destination.
pub fn store_string_into_range(cx: &mut dyn AbiCx, s: &Str) -> Result<(u32, u32), Trap> {
    #[derive(PartialEq)]
    enum Simple {
        Utf8,
        Utf16,
        Latin1,
    }
    let (simple, units) = match s.enc {
        StrEnc::Utf8 => (Simple::Utf8, s.tagged_code_units),
        StrEnc::Utf16 => (Simple::Utf16, s.tagged_code_units),
        StrEnc::Latin1Utf16 => {
            if s.tagged_code_units & UTF16_TAG != 0 {
                (Simple::Utf16, s.tagged_code_units ^ UTF16_TAG)
            } else {
                (Simple::Latin1, s.tagged_code_units)
            }
        }
    };
    let text = s.text.as_str();
    match cx.encoding() {
        StrEnc::Utf8 => match simple {
            Simple::Utf8 => copy(cx, text.as_bytes(), units, 1, 1),
            Simple::Utf16 => to_utf8(cx, text, units, u64::from(units) * 3),
            Simple::Latin1 => to_utf8(cx, text, units, u64::from(units) * 2),
        },
        StrEnc::Utf16 => match simple {
            Simple::Utf8 => utf8_to_utf16(cx, text, units),
            Simple::Utf16 | Simple::Latin1 => copy(cx, &utf16_bytes(text), units, 2, 2),
        },
        StrEnc::Latin1Utf16 => match (s.enc, simple) {
            (StrEnc::Latin1Utf16, Simple::Latin1) => {
                let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
                copy(cx, &bytes, units, 1, 2)
            }
            (StrEnc::Latin1Utf16, _) => probably_utf16_to_latin1_or_utf16(cx, text, units),
            _ => to_latin1_or_utf16(cx, text, units),
        },
    }
}

fn copy(
    cx: &mut dyn AbiCx,
    bytes: &[u8],
    units: u32,
    unit: u64,
    align: u32,
) -> Result<(u32, u32), Trap> {
    let len = unit * u64::from(units);
    let ptr = realloc_checked(cx, 0, 0, align, len, "string")?;
    let n = (len as usize).min(bytes.len());
    write_bytes(cx, u64::from(ptr), &bytes[..n])?;
    Ok((ptr, units))
}

fn to_utf8(cx: &mut dyn AbiCx, text: &str, units: u32, worst: u64) -> Result<(u32, u32), Trap> {
    let mut ptr = realloc_checked(cx, 0, 0, 1, u64::from(units), "string")?;
    for (i, c) in text.chars().enumerate() {
        if (c as u32) < 0x80 {
            write_bytes(cx, u64::from(ptr) + i as u64, &[c as u8])?;
        } else {
            ptr = realloc_checked(cx, ptr, units, 1, worst, "string")?;
            let enc = text.as_bytes();
            write_bytes(cx, u64::from(ptr) + i as u64, &enc[i..])?;
            if worst > enc.len() as u64 {
                ptr = realloc_checked(cx, ptr, worst as u32, 1, enc.len() as u64, "string")?;
            }
            return Ok((ptr, enc.len() as u32));
        }
    }
    Ok((ptr, units))
}

fn utf8_to_utf16(cx: &mut dyn AbiCx, text: &str, units: u32) -> Result<(u32, u32), Trap> {
    let worst = 2 * u64::from(units);
    let mut ptr = realloc_checked(cx, 0, 0, 2, worst, "string")?;
    let enc = utf16_bytes(text);
    write_bytes(cx, u64::from(ptr), &enc)?;
    if (enc.len() as u64) < worst {
        ptr = realloc_checked(cx, ptr, worst as u32, 2, enc.len() as u64, "string")?;
    }
    Ok((ptr, (enc.len() / 2) as u32))
}

fn to_latin1_or_utf16(cx: &mut dyn AbiCx, text: &str, units: u32) -> Result<(u32, u32), Trap> {
    let mut ptr = realloc_checked(cx, 0, 0, 2, u64::from(units), "string")?;
    let mut n = 0u64;
    for c in text.chars() {
        if (c as u32) < 0x100 {
            write_bytes(cx, u64::from(ptr) + n, &[c as u32 as u8])?;
            n += 1;
        } else {
            let worst = 2 * u64::from(units);
            ptr = realloc_checked(cx, ptr, units, 2, worst, "string")?;
            let enc = utf16_bytes(text);
            write_bytes(cx, u64::from(ptr), &enc)?;
            if worst > enc.len() as u64 {
                ptr = realloc_checked(cx, ptr, worst as u32, 2, enc.len() as u64, "string")?;
            }
            return Ok((ptr, (enc.len() / 2) as u32 | UTF16_TAG));
        }
    }
    if n < u64::from(units) {
        ptr = realloc_checked(cx, ptr, units, 2, n, "string")?;
    }
    Ok((ptr, n as u32))
}

fn probably_utf16_to_latin1_or_utf16(
    cx: &mut dyn AbiCx,
    text: &str,
    units: u32,
) -> Result<(u32, u32), Trap> {
    let bytes = 2 * u64::from(units);
    let ptr = realloc_checked(cx, 0, 0, 2, bytes, "string")?;
    let enc = utf16_bytes(text);
    write_bytes(cx, u64::from(ptr), &enc)?;
    if text.chars().any(|c| c as u32 >= 0x100) {
        return Ok((ptr, (enc.len() / 2) as u32 | UTF16_TAG));
    }
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    write_bytes(cx, u64::from(ptr), &latin1)?;
    let ptr = realloc_checked(cx, ptr, bytes as u32, 1, latin1.len() as u64, "string")?;
    Ok((ptr, latin1.len() as u32))
}

/// Stores the fields of a record or tuple laid out from `ptr`.
fn store_fields<'t>(
    cx: &mut dyn AbiCx,
    vs: &[Val],
    fts: impl ExactSizeIterator<Item = &'t Ty>,
    ptr: u64,
) -> Result<(), Trap> {
    if fts.len() != vs.len() {
        return Err(mismatch());
    }
    let mut p = ptr;
    for (v, ft) in vs.iter().zip(fts) {
        p = align_to(p, alignment(ft));
        store(cx, v, ft, p)?;
        p += elem_size(ft);
    }
    Ok(())
}

/// `lower_flat_values`: lowers parameters or results, spilling to memory
/// when there are more than `max_flat` flat values.
pub fn lower_flat_values(
    cx: &mut dyn AbiCx,
    max_flat: usize,
    vs: &[Val],
    ts: &[Ty],
    out_param: Option<&mut dyn FlatSource>,
) -> Result<Vec<Flat>, Trap> {
    let flat = flat_len(ts);
    if flat > max_flat {
        return lower_spilled(cx, vs, ts, tuple_layout(ts.iter()), out_param);
    }
    let mut out = Vec::new();
    if vs.len() != ts.len() {
        return Err(mismatch());
    }
    for (v, t) in vs.iter().zip(ts) {
        lower_flat(cx, v, t, &mut out)?;
    }
    debug_assert!(out.len() <= flat.max(1));
    Ok(out)
}

/// The spilling half of [`lower_flat_values`]: stores `vs` as a tuple of
/// the types `ts`, whose alignment and size are `layout`
/// ([`tuple_layout`]), at the out-pointer `out_param` yields, or else in
/// memory from `realloc` (then the one flat value is its pointer).
pub fn lower_spilled(
    cx: &mut dyn AbiCx,
    vs: &[Val],
    ts: &[Ty],
    (align, size): (u32, u64),
    out_param: Option<&mut dyn FlatSource>,
) -> Result<Vec<Flat>, Trap> {
    let mut out = Vec::new();
    let ptr = match out_param {
        None => {
            let p = realloc_checked(cx, 0, 0, align, size, "tuple")?;
            out.push(Flat::I32(p));
            p
        }
        Some(src) => match src.next(CoreTy::I32)? {
            Flat::I32(p) => p,
            _ => return Err(Trap::new("expected i32 out-pointer")),
        },
    };
    trap_if(ptr % align != 0, "unaligned pointer")?;
    trap_if(
        u64::from(ptr) + size > cx.mem().len() as u64,
        "pointer out of bounds of memory",
    )?;
    store_fields(cx, vs, ts.iter(), u64::from(ptr))?;
    Ok(out)
}
