//! Host-side values of `.wast` files (`wast::component::WastVal`): conversion
//! to runtime values for `invoke`, and comparison for `assert_return`.

use wast::component::WastVal;

use canon_async_wasmi::abi::types::{field_types, variant_cases, Ty};
use canon_async_wasmi::abi::val::{Str, Val};

/// Converts a host value to a runtime value of type `t`.
pub fn to_val(w: &WastVal<'_>, t: &Ty) -> Result<Val, String> {
    let err = || format!("host value {w:?} does not fit type {t:?}");
    Ok(match (w, t) {
        (WastVal::Bool(b), Ty::Bool) => Val::Bool(*b),
        (WastVal::U8(x), Ty::U8) => Val::U8(*x),
        (WastVal::S8(x), Ty::S8) => Val::S8(*x),
        (WastVal::U16(x), Ty::U16) => Val::U16(*x),
        (WastVal::S16(x), Ty::S16) => Val::S16(*x),
        (WastVal::U32(x), Ty::U32) => Val::U32(*x),
        (WastVal::S32(x), Ty::S32) => Val::S32(*x),
        (WastVal::U64(x), Ty::U64) => Val::U64(*x),
        (WastVal::S64(x), Ty::S64) => Val::S64(*x),
        (WastVal::F32(x), Ty::F32) => Val::F32(x.bits),
        (WastVal::F64(x), Ty::F64) => Val::F64(x.bits),
        (WastVal::Char(c), Ty::Char) => Val::Char(*c),
        (WastVal::String(s), Ty::String) => Val::String(Str::from_host(s)),
        (WastVal::List(vs), Ty::List(e)) => {
            Val::List(vs.iter().map(|v| to_val(v, e)).collect::<Result<_, _>>()?)
        }
        (WastVal::List(vs), Ty::FixedList(e, n)) if vs.len() == *n as usize => {
            Val::List(vs.iter().map(|v| to_val(v, e)).collect::<Result<_, _>>()?)
        }
        (WastVal::Record(fs), Ty::Record(ft)) if fs.len() == ft.len() => {
            let mut out = Vec::new();
            for ((n, v), (fname, fty)) in fs.iter().zip(ft.iter()) {
                if n != fname {
                    return Err(err());
                }
                out.push(to_val(v, fty)?);
            }
            Val::Record(out)
        }
        (WastVal::Tuple(vs), Ty::Tuple(ts)) if vs.len() == ts.len() => Val::Record(
            vs.iter()
                .zip(ts.iter())
                .map(|(v, t)| to_val(v, t))
                .collect::<Result<_, _>>()?,
        ),
        (WastVal::Variant(name, payload), Ty::Variant(cases)) => {
            let i = cases.iter().position(|(n, _)| n == name).ok_or_else(err)?;
            let p = match (&cases[i].1, payload) {
                (None, None) => None,
                (Some(ct), Some(p)) => Some(Box::new(to_val(p, ct)?)),
                _ => return Err(err()),
            };
            Val::Variant(i as u32, p)
        }
        (WastVal::Enum(name), Ty::Enum(labels)) => Val::Variant(
            labels.iter().position(|n| n == name).ok_or_else(err)? as u32,
            None,
        ),
        (WastVal::Option(None), Ty::Option(_)) => Val::Variant(0, None),
        (WastVal::Option(Some(v)), Ty::Option(e)) => Val::Variant(1, Some(Box::new(to_val(v, e)?))),
        (WastVal::Result(r), Ty::Result(ok, er)) => {
            let (i, p, pt) = match r {
                Ok(p) => (0, p, ok),
                Err(p) => (1, p, er),
            };
            let p = match (p, pt) {
                (None, None) => None,
                (Some(p), Some(pt)) => Some(Box::new(to_val(p, pt)?)),
                _ => return Err(err()),
            };
            Val::Variant(i, p)
        }
        (WastVal::Flags(names), Ty::Flags(labels)) => {
            let mut words = vec![0u32; labels.len().div_ceil(32)];
            for n in names {
                let i = labels.iter().position(|l| l == n).ok_or_else(err)?;
                words[i / 32] |= 1 << (i % 32);
            }
            Val::Flags(words)
        }
        _ => return Err(err()),
    })
}

/// Whether a runtime result equals the expected host value.
pub fn matches(expected: &WastVal<'_>, got: &Val, t: &Ty) -> bool {
    let Ok(want) = to_val(expected, t) else {
        return false;
    };
    eq(&want, got)
}

fn eq(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::F32(x), Val::F32(y)) => {
            x == y || (f32::from_bits(*x).is_nan() && f32::from_bits(*y).is_nan())
        }
        (Val::F64(x), Val::F64(y)) => {
            x == y || (f64::from_bits(*x).is_nan() && f64::from_bits(*y).is_nan())
        }
        (Val::String(x), Val::String(y)) => x.text == y.text,
        (Val::List(x), Val::List(y)) | (Val::Record(x), Val::Record(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| eq(a, b))
        }
        (Val::Variant(i, p), Val::Variant(j, q)) => {
            i == j
                && match (p, q) {
                    (None, None) => true,
                    (Some(p), Some(q)) => eq(p, q),
                    _ => false,
                }
        }
        _ => a == b,
    }
}

/// Formats a runtime value in `.wast` syntax, for FAIL lines.
pub fn show(v: &Val, t: &Ty) -> String {
    match (v, t) {
        (Val::Bool(b), _) => format!("(bool.const {b})"),
        (Val::U8(x), _) => format!("(u8.const {x})"),
        (Val::S8(x), _) => format!("(s8.const {x})"),
        (Val::U16(x), _) => format!("(u16.const {x})"),
        (Val::S16(x), _) => format!("(s16.const {x})"),
        (Val::U32(x), _) => format!("(u32.const {x})"),
        (Val::S32(x), _) => format!("(s32.const {x})"),
        (Val::U64(x), _) => format!("(u64.const {x})"),
        (Val::S64(x), _) => format!("(s64.const {x})"),
        (Val::F32(x), _) => format!("(f32.const {})", f32::from_bits(*x)),
        (Val::F64(x), _) => format!("(f64.const {})", f64::from_bits(*x)),
        (Val::Char(c), _) => format!("(char.const {c:?})"),
        (Val::String(s), _) => format!("(str.const {:?})", s.text),
        (Val::List(vs), Ty::List(e) | Ty::FixedList(e, _)) => {
            let items: Vec<String> = vs.iter().map(|v| show(v, e)).collect();
            format!("(list.const {})", items.join(" "))
        }
        (Val::Record(vs), Ty::Record(_) | Ty::Tuple(_)) => {
            let items: Vec<String> = vs
                .iter()
                .zip(field_types(t))
                .map(|(v, t)| show(v, &t))
                .collect();
            format!("(record/tuple {})", items.join(" "))
        }
        (Val::Variant(i, p), _) => {
            let payload = match (
                p,
                variant_cases(t).and_then(|c| c.get(*i as usize).cloned()),
            ) {
                (Some(p), Some(Some(pt))) => format!(" {}", show(p, &pt)),
                _ => String::new(),
            };
            format!("(case {i}{payload})")
        }
        (Val::Flags(w), _) => format!("(flags {w:?})"),
        (v, _) => format!("{v:?}"),
    }
}
