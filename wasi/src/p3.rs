//! The WASI 0.3.x interfaces (served for any 0.3 patch version): standard
//! streams as `stream<u8>` with a `future` of the result, async clocks on
//! the store's timers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use canon_async::CopyResult;
use canon_async_wasmi::{Error, HostCx, HostError, Linker, Ty, Val};

use crate::ty::{
    arg_u64, async_func, byte_stream, bytes, enumeration, err, func, future, list, ok_unit, option,
    record, result, string, to_bytes, tuple, variant,
};
use crate::{Output, StdinPoll, WasiCtx};

const V: &str = "0.3.0";

fn iface(i: &str) -> String {
    format!("wasi:{i}@{V}")
}

fn name(i: &str, f: &str) -> String {
    format!("wasi:{i}@{V}#{f}")
}

/// `wasi:cli/types`' `error-code`.
const CLI_ERRORS: &[&str] = &["io", "illegal-byte-sequence", "pipe"];

/// `future<result<_, error-code>>` of the standard streams.
fn cli_result() -> Ty {
    result(None, Some(enumeration(CLI_ERRORS)))
}

/// How many bytes the host takes from a guest's stream at once.
const CHUNK: u32 = 64 << 10;

/// Writes `v` to the host's future `f`, then drops it.
fn resolve(cx: &mut HostCx<'_>, f: Val, v: Val) {
    let f2 = f.clone();
    let _ = cx.write(&f, vec![v], move |cx, _| {
        let _ = cx.drop_end(&f2);
    });
}

/// Copies the guest's stream `data` to `out` until the guest drops its
/// end, then resolves the future `f` (`ok`, or `err(pipe)` when `out`
/// fails).
fn drain(cx: &mut HostCx<'_>, ctx: Arc<WasiCtx>, data: Val, f: Val, out: Output) {
    let d = data.clone();
    let f2 = f.clone();
    let r = cx.read(&data, CHUNK, move |cx, vals, done| {
        let f = f2;
        let written = match to_bytes(&vals) {
            Some(b) => ctx.write_out(&out, &b).is_ok(),
            None => false,
        };
        if !written {
            let _ = cx.drop_end(&d);
            resolve(cx, f, crate::ty::err(Val::Variant(2, None)));
        } else if done.result == CopyResult::Dropped {
            let _ = cx.drop_end(&d);
            resolve(cx, f, ok_unit());
        } else {
            drain(cx, ctx, d, f, out);
        }
    });
    if r.is_err() {
        // Not a stream the host can read: report an I/O error.
        let f = f.clone();
        cx.defer(move |cx| resolve(cx, f, crate::ty::err(Val::Variant(0, None))));
    }
}

/// Writes `vals` to the host's stream `s`, re-offering what a reader did
/// not take; `then(cx, dropped)` runs once all moved or the reader left.
fn write_all(
    cx: &mut HostCx<'_>,
    s: Val,
    vals: Vec<Val>,
    then: impl FnOnce(&mut HostCx<'_>, bool) + Send + 'static,
) {
    let s2 = s.clone();
    let rest = vals.clone();
    let r = cx.write(&s, vals, move |cx, done| {
        if done.result == CopyResult::Dropped {
            return then(cx, true);
        }
        let rest = rest[(done.progress as usize).min(rest.len())..].to_vec();
        if rest.is_empty() {
            then(cx, false)
        } else {
            write_all(cx, s2, rest, then)
        }
    });
    if r.is_err() {
        // The stream is gone: as if the reader had dropped it.
        cx.defer(move |cx| {
            let _ = cx.drop_end(&s);
        });
    }
}

/// Feeds standard input to the host's stream `s`, then resolves `f`.
fn feed(cx: &mut HostCx<'_>, ctx: Arc<WasiCtx>, s: Val, f: Val) {
    match ctx.stdin_poll(CHUNK as usize, false) {
        StdinPoll::Data(d) => {
            let vals = d.iter().map(|b| Val::U8(*b)).collect();
            write_all(cx, s.clone(), vals, move |cx, dropped| {
                if dropped {
                    let _ = cx.drop_end(&s);
                    resolve(cx, f, ok_unit());
                } else {
                    feed(cx, ctx, s, f);
                }
            });
        }
        StdinPoll::Pending => cx.after(Duration::from_millis(1), move |cx| feed(cx, ctx, s, f)),
        StdinPoll::Eof => {
            let _ = cx.drop_end(&s);
            resolve(cx, f, ok_unit());
        }
    }
}

pub(crate) fn add_to_linker(l: &mut Linker, ctx: &Arc<WasiCtx>) -> Result<(), Error> {
    // wasi:cli
    crate::p2::add_environment(l, &iface("cli/environment"), ctx)?;
    crate::p2::add_exit(l, &iface("cli/exit"), ctx)?;
    l.trap_unknown_funcs(&iface("cli/types"));
    for (i, out) in [
        ("cli/stdout", ctx.stdout.clone()),
        ("cli/stderr", ctx.stderr.clone()),
    ] {
        let c = ctx.clone();
        l.func(
            &name(i, "write-via-stream"),
            func(&[byte_stream()], Some(future(Some(cli_result())))),
            move |cx, args| {
                let data = args
                    .first()
                    .cloned()
                    .ok_or_else(|| HostError::new("write-via-stream: no stream"))?;
                let f = cx.future_new(Some(cli_result()));
                drain(cx, c.clone(), data, f.clone(), out.clone());
                Ok(vec![f])
            },
        )?;
    }
    {
        let c = ctx.clone();
        l.func(
            &name("cli/stdin", "read-via-stream"),
            func(
                &[],
                Some(tuple([byte_stream(), future(Some(cli_result()))])),
            ),
            move |cx, _| {
                let s = cx.stream_new(Some(Ty::U8));
                let f = cx.future_new(Some(cli_result()));
                let (c, s2, f2) = (c.clone(), s.clone(), f.clone());
                cx.defer(move |cx| feed(cx, c, s2, f2));
                Ok(vec![Val::Record(vec![s, f])])
            },
        )?;
    }
    crate::p2::add_terminals(l, &iface)?;

    // wasi:clocks
    l.trap_unknown_funcs(&iface("clocks/types"));
    l.func(
        &name("clocks/monotonic-clock", "now"),
        func(&[], Some(Ty::U64)),
        |cx, _| {
            Ok(vec![Val::U64(
                u64::try_from(cx.now().as_nanos()).unwrap_or(u64::MAX),
            )])
        },
    )?;
    l.func(
        &name("clocks/monotonic-clock", "get-resolution"),
        func(&[], Some(Ty::U64)),
        |_, _| Ok(vec![Val::U64(1)]),
    )?;
    for until in [false, true] {
        let f = if until { "wait-until" } else { "wait-for" };
        l.func_async(
            &name("clocks/monotonic-clock", f),
            async_func(&[Ty::U64], None),
            move |cx, args, call| {
                let n = Duration::from_nanos(arg_u64(&args, 0)?);
                let delay = if until { n.saturating_sub(cx.now()) } else { n };
                cx.after(delay, move |cx| {
                    let _ = cx.complete(call, vec![]);
                });
                cx.on_cancel(call, move |cx| {
                    cx.cancelled(call);
                });
                Ok(())
            },
        )?;
    }
    let instant = record(&[("seconds", Ty::S64), ("nanoseconds", Ty::U32)]);
    l.func(
        &name("clocks/system-clock", "now"),
        func(&[], Some(instant.clone())),
        |_, _| {
            let (s, n) = match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
                Err(e) => {
                    // Before 1970: seconds negative, nanoseconds positive.
                    let d = e.duration();
                    let (mut s, mut n) = (-(d.as_secs() as i64), d.subsec_nanos());
                    if n > 0 {
                        s -= 1;
                        n = 1_000_000_000 - n;
                    }
                    (s, n)
                }
            };
            Ok(vec![Val::Record(vec![Val::S64(s), Val::U32(n)])])
        },
    )?;
    l.func(
        &name("clocks/system-clock", "get-resolution"),
        func(&[], Some(Ty::U64)),
        |_, _| Ok(vec![Val::U64(1)]),
    )?;
    // wasi:clocks/timezone (unstable): the host exposes no timezone.
    l.func(
        &name("clocks/timezone", "iana-id"),
        func(&[], Some(option(Ty::String))),
        |_, _| Ok(vec![crate::ty::none()]),
    )?;
    l.func(
        &name("clocks/timezone", "utc-offset"),
        func(&[instant], Some(option(Ty::S64))),
        |_, _| Ok(vec![crate::ty::none()]),
    )?;
    l.func(
        &name("clocks/timezone", "to-debug-string"),
        func(&[], Some(Ty::String)),
        |_, _| Ok(vec![string("unknown timezone")]),
    )?;

    // wasi:random
    l.func(
        &name("random/random", "get-random-bytes"),
        func(&[Ty::U64], Some(list(Ty::U8))),
        |_, args| {
            let n = arg_u64(args, 0)?.min(crate::MAX_RANDOM_BYTES);
            Ok(vec![bytes(&crate::random_bytes(n as usize)?)])
        },
    )?;
    l.func(
        &name("random/random", "get-random-u64"),
        func(&[], Some(Ty::U64)),
        |_, _| {
            let b = crate::random_bytes(8)?;
            let mut w = [0; 8];
            w.copy_from_slice(&b);
            Ok(vec![Val::U64(u64::from_le_bytes(w))])
        },
    )?;
    {
        let c = ctx.clone();
        l.func(
            &name("random/insecure", "get-insecure-random-bytes"),
            func(&[Ty::U64], Some(list(Ty::U8))),
            move |_, args| {
                let n = arg_u64(args, 0)?.min(crate::MAX_RANDOM_BYTES);
                Ok(vec![bytes(&c.insecure_bytes(n as usize))])
            },
        )?;
        let c = ctx.clone();
        l.func(
            &name("random/insecure", "get-insecure-random-u64"),
            func(&[], Some(Ty::U64)),
            move |_, _| Ok(vec![Val::U64(c.insecure_u64())]),
        )?;
        let c = ctx.clone();
        l.func(
            &name("random/insecure-seed", "get-insecure-seed"),
            func(&[], Some(tuple([Ty::U64, Ty::U64]))),
            move |_, _| {
                let (a, b) = c.state().insecure_seed;
                Ok(vec![Val::Record(vec![Val::U64(a), Val::U64(b)])])
            },
        )?;
    }

    // wasi:filesystem: no preopened directory, so no descriptor ever.
    let descriptor = l.resource(
        &format!("{}#descriptor", iface("filesystem/types")),
        |_, _| {},
    )?;
    l.trap_unknown_funcs(&iface("filesystem/types"));
    l.func(
        &name("filesystem/preopens", "get-directories"),
        func(&[], Some(list(tuple([descriptor.own(), Ty::String])))),
        |_, _| Ok(vec![Val::List(vec![])]),
    )?;

    // wasi:sockets: every socket and name lookup is denied.
    let other = Some(option(Ty::String));
    let code = variant(&[
        ("access-denied", None),
        ("not-supported", None),
        ("invalid-argument", None),
        ("out-of-memory", None),
        ("timeout", None),
        ("invalid-state", None),
        ("address-not-bindable", None),
        ("address-in-use", None),
        ("remote-unreachable", None),
        ("connection-refused", None),
        ("connection-broken", None),
        ("connection-reset", None),
        ("connection-aborted", None),
        ("datagram-too-large", None),
        ("other", other.clone()),
    ]);
    let family = enumeration(&["ipv4", "ipv6"]);
    let denied = || err(Val::Variant(0, None));
    for r in ["tcp-socket", "udp-socket"] {
        let sock = l.resource(&format!("{}#{r}", iface("sockets/types")), |_, _| {})?;
        l.func(
            &name("sockets/types", &format!("[static]{r}.create")),
            func(
                std::slice::from_ref(&family),
                Some(result(Some(sock.own()), Some(code.clone()))),
            ),
            move |_, _| Ok(vec![denied()]),
        )?;
    }
    l.trap_unknown_funcs(&iface("sockets/types"));
    let lookup_code = variant(&[
        ("access-denied", None),
        ("invalid-argument", None),
        ("name-unresolvable", None),
        ("temporary-resolver-failure", None),
        ("permanent-resolver-failure", None),
        ("other", other),
    ]);
    let ip = variant(&[
        ("ipv4", Some(tuple([Ty::U8, Ty::U8, Ty::U8, Ty::U8]))),
        ("ipv6", Some(tuple(vec![Ty::U16; 8]))),
    ]);
    l.func_async(
        &name("sockets/ip-name-lookup", "resolve-addresses"),
        async_func(
            &[Ty::String],
            Some(result(Some(list(ip)), Some(lookup_code))),
        ),
        move |cx, _, call| {
            cx.complete(call, vec![denied()])
                .map_err(|t| HostError::new(t.to_string()))?;
            Ok(())
        },
    )?;
    Ok(())
}
