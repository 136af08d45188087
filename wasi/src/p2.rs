//! The WASI 0.2.x interfaces (served for any 0.2 patch version): what
//! CPython's libc reaches through the preview1 adapter.
//!
//! Everything here is synchronous: a 0.2 call that waits (`poll`,
//! `pollable.block`, a blocking read of standard input) blocks the event
//! loop for that long, as a synchronous host call must.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use canon_async_wasmi::{Error, HostCx, HostError, HostResource, Linker, Ty, Val};

use crate::ty::{
    arg_u64, bytes, enum_case, enumeration, err, func, list, ok, ok_unit, option, record, result,
    string, tuple, variant,
};
use crate::{StdinPoll, WasiCtx};

const V: &str = "0.2.9";

/// A 0.2 pollable: ready now, or at a time of the store's clock.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pollable {
    Ready,
    At(Duration),
    /// Standard input has data or has ended.
    Stdin,
}

/// What `check-write` permits (the host writes everything at once).
const CHECK_WRITE: u64 = 1 << 20;

/// The representations of the standard streams' handles.
const STDIN: u32 = 0;
const STDOUT: u32 = 1;
const STDERR: u32 = 2;

/// `wasi:sockets/network`'s `error-code` (0.2).
const SOCKET_ERRORS: &[&str] = &[
    "unknown",
    "access-denied",
    "not-supported",
    "invalid-argument",
    "out-of-memory",
    "timeout",
    "concurrency-conflict",
    "not-in-progress",
    "would-block",
    "invalid-state",
    "new-socket-limit",
    "address-not-bindable",
    "address-in-use",
    "remote-unreachable",
    "connection-refused",
    "connection-reset",
    "connection-aborted",
    "datagram-too-large",
    "name-unresolvable",
    "temporary-resolver-failure",
    "permanent-resolver-failure",
];

fn name(iface: &str, f: &str) -> String {
    format!("wasi:{iface}@{V}#{f}")
}

fn iface(i: &str) -> String {
    format!("wasi:{i}@{V}")
}

/// A resource whose handles the host only hands out and takes back.
fn plain_resource(l: &mut Linker, i: &str, r: &str) -> Result<HostResource, Error> {
    l.resource(&format!("{}#{r}", iface(i)), |_, _| {})
}

fn rep(cx: &mut HostCx<'_>, r: &HostResource, v: Option<&Val>) -> Result<u32, HostError> {
    v.and_then(|v| cx.resource_rep(r, v))
        .ok_or_else(|| HostError::new(format!("expected a handle of `{}`", r.name())))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Waits (for real) until the store's clock reaches `t`.
fn sleep_until(cx: &HostCx<'_>, t: Duration) {
    let now = cx.now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

pub(crate) fn add_to_linker(l: &mut Linker, ctx: &Arc<WasiCtx>) -> Result<(), Error> {
    // wasi:io/poll
    let c = ctx.clone();
    let pollable = l.resource(&format!("{}#pollable", iface("io/poll")), move |_, rep| {
        c.state().pollables.remove(&rep);
    })?;
    let new_pollable = {
        let ctx = ctx.clone();
        let pollable = pollable.clone();
        Arc::new(move |cx: &mut HostCx<'_>, p: Pollable| -> Val {
            let rep = {
                let mut s = ctx.state();
                let rep = s.next_pollable;
                s.next_pollable = s.next_pollable.wrapping_add(1).max(1);
                s.pollables.insert(rep, p);
                rep
            };
            cx.resource_new(&pollable, rep)
        })
    };
    let ready_of = {
        let ctx = ctx.clone();
        move |rep: u32| ctx.state().pollables.get(&rep).copied()
    };
    {
        let (p, ready_at) = (pollable.clone(), ready_of.clone());
        let stdin_ctx = ctx.clone();
        l.func(
            &name("io/poll", "[method]pollable.block"),
            func(&[pollable.borrow()], None),
            move |cx, args| {
                let r = rep(cx, &p, args.first())?;
                match ready_at(r) {
                    Some(Pollable::At(t)) => sleep_until(cx, t),
                    Some(Pollable::Stdin) => {
                        stdin_ctx.stdin_ready(true);
                    }
                    _ => {}
                }
                Ok(vec![])
            },
        )?;
        let (p, ready_at) = (pollable.clone(), ready_of.clone());
        let stdin_ctx = ctx.clone();
        l.func(
            &name("io/poll", "[method]pollable.ready"),
            func(&[pollable.borrow()], Some(Ty::Bool)),
            move |cx, args| {
                let r = rep(cx, &p, args.first())?;
                let ready = match ready_at(r) {
                    Some(Pollable::At(t)) => cx.now() >= t,
                    Some(Pollable::Stdin) => stdin_ctx.stdin_ready(false),
                    _ => true,
                };
                Ok(vec![Val::Bool(ready)])
            },
        )?;
        let (p, ready_at) = (pollable.clone(), ready_of.clone());
        let stdin_ctx = ctx.clone();
        l.func(
            &name("io/poll", "poll"),
            func(&[list(pollable.borrow())], Some(list(Ty::U32))),
            move |cx, args| {
                let Some(Val::List(ps)) = args.first() else {
                    return Err(HostError::new("poll: expected a list"));
                };
                if ps.is_empty() {
                    return Err(HostError::new("poll: an empty list of pollables"));
                }
                let mut what = Vec::with_capacity(ps.len());
                for v in ps {
                    let r = rep(cx, &p, Some(v))?;
                    what.push(ready_at(r).unwrap_or(Pollable::Ready));
                }
                loop {
                    let now = cx.now();
                    let ready: Vec<Val> = (0u32..)
                        .zip(&what)
                        .filter(|(_, p)| match p {
                            Pollable::Ready => true,
                            Pollable::At(t) => *t <= now,
                            Pollable::Stdin => stdin_ctx.stdin_ready(false),
                        })
                        .map(|(i, _)| Val::U32(i))
                        .collect();
                    if !ready.is_empty() {
                        return Ok(vec![Val::List(ready)]);
                    }
                    let first = what
                        .iter()
                        .filter_map(|p| match p {
                            Pollable::At(t) => Some(*t),
                            _ => None,
                        })
                        .min();
                    let stdin = what.iter().any(|p| matches!(p, Pollable::Stdin));
                    match (first, stdin) {
                        (None, _) => {
                            stdin_ctx.stdin_ready(true);
                        }
                        (Some(t), false) => sleep_until(cx, t),
                        // Both: look at stdin every millisecond.
                        (Some(t), true) => sleep_until(cx, t.min(now + Duration::from_millis(1))),
                    }
                }
            },
        )?;
    }

    // wasi:io/error
    let error = plain_resource(l, "io/error", "error")?;
    l.func(
        &name("io/error", "[method]error.to-debug-string"),
        func(&[error.borrow()], Some(Ty::String)),
        |_, _| Ok(vec![string("I/O error")]),
    )?;

    // wasi:io/streams
    let input = plain_resource(l, "io/streams", "input-stream")?;
    let output = plain_resource(l, "io/streams", "output-stream")?;
    l.trap_unknown_funcs(&iface("io/streams"));
    let stream_error = variant(&[
        ("last-operation-failed", Some(error.own())),
        ("closed", None),
    ]);
    let closed = || err(Val::Variant(1, None));
    let sr = |t: Option<Ty>| result(t, Some(stream_error.clone()));
    let out_of = {
        let ctx = ctx.clone();
        let output = output.clone();
        move |cx: &mut HostCx<'_>, v: Option<&Val>| -> Result<crate::Output, HostError> {
            Ok(match rep(cx, &output, v)? {
                STDERR => ctx.stderr.clone(),
                _ => ctx.stdout.clone(),
            })
        }
    };
    let write = {
        let out_of = out_of.clone();
        let ctx = ctx.clone();
        move |cx: &mut HostCx<'_>, args: &[Val]| -> Result<Vec<Val>, HostError> {
            let o = out_of(cx, args.first())?;
            let Some(Val::List(b)) = args.get(1) else {
                return Err(HostError::new("write: expected a list<u8>"));
            };
            let b = crate::ty::to_bytes(b).ok_or_else(|| HostError::new("not bytes"))?;
            Ok(vec![match ctx.write_out(&o, &b) {
                Ok(()) => ok_unit(),
                Err(_) => closed(),
            }])
        }
    };
    for m in ["write", "blocking-write-and-flush"] {
        l.func(
            &name("io/streams", &format!("[method]output-stream.{m}")),
            func(&[output.borrow(), list(Ty::U8)], Some(sr(None))),
            write.clone(),
        )?;
    }
    for m in ["write-zeroes", "blocking-write-zeroes-and-flush"] {
        let out_of = out_of.clone();
        let ctx = ctx.clone();
        l.func(
            &name("io/streams", &format!("[method]output-stream.{m}")),
            func(&[output.borrow(), Ty::U64], Some(sr(None))),
            move |cx, args| {
                let o = out_of(cx, args.first())?;
                let n = arg_u64(args, 1)?;
                if n > CHECK_WRITE {
                    return Err(HostError::new(format!(
                        "{n} zeroes written where check-write permits {CHECK_WRITE}"
                    )));
                }
                let n = n as usize;
                Ok(vec![match ctx.write_out(&o, &vec![0; n]) {
                    Ok(()) => ok_unit(),
                    Err(_) => closed(),
                }])
            },
        )?;
    }
    for m in ["flush", "blocking-flush"] {
        l.func(
            &name("io/streams", &format!("[method]output-stream.{m}")),
            func(&[output.borrow()], Some(sr(None))),
            |_, _| Ok(vec![ok_unit()]),
        )?;
    }
    l.func(
        &name("io/streams", "[method]output-stream.check-write"),
        func(&[output.borrow()], Some(sr(Some(Ty::U64)))),
        |_, _| Ok(vec![ok(Val::U64(CHECK_WRITE))]),
    )?;
    for (r, res, p) in [
        ("output-stream", &output, Pollable::Ready),
        ("input-stream", &input, Pollable::Stdin),
    ] {
        let np = new_pollable.clone();
        l.func(
            &name("io/streams", &format!("[method]{r}.subscribe")),
            func(&[res.borrow()], Some(pollable.own())),
            move |cx, _| Ok(vec![np(cx, p)]),
        )?;
    }
    for (m, block) in [("read", false), ("blocking-read", true)] {
        let ctx = ctx.clone();
        l.func(
            &name("io/streams", &format!("[method]input-stream.{m}")),
            func(&[input.borrow(), Ty::U64], Some(sr(Some(list(Ty::U8))))),
            move |_, args| {
                let want = arg_u64(args, 1)?;
                if want == 0 {
                    return Ok(vec![ok(bytes(&[]))]);
                }
                let max = want.min(64 << 10) as usize;
                // A non-blocking read of the process's stdin returns what
                // has arrived (possibly nothing).
                Ok(vec![match ctx.stdin_poll(max, block) {
                    StdinPoll::Data(d) => ok(bytes(&d)),
                    StdinPoll::Pending => ok(bytes(&[])),
                    StdinPoll::Eof => closed(),
                }])
            },
        )?;
    }

    // wasi:cli
    for (i, f, r, res) in [
        ("cli/stdin", "get-stdin", STDIN, &input),
        ("cli/stdout", "get-stdout", STDOUT, &output),
        ("cli/stderr", "get-stderr", STDERR, &output),
    ] {
        let res2 = res.clone();
        l.func(&name(i, f), func(&[], Some(res.own())), move |cx, _| {
            Ok(vec![cx.resource_new(&res2, r)])
        })?;
    }
    add_environment(l, &iface("cli/environment"), ctx)?;
    add_exit(l, &iface("cli/exit"), ctx)?;
    add_terminals(l, &|i| iface(i))?;

    // wasi:clocks
    l.func(
        &name("clocks/monotonic-clock", "now"),
        func(&[], Some(Ty::U64)),
        |cx, _| Ok(vec![Val::U64(nanos(cx.now()))]),
    )?;
    l.func(
        &name("clocks/monotonic-clock", "resolution"),
        func(&[], Some(Ty::U64)),
        |_, _| Ok(vec![Val::U64(1)]),
    )?;
    {
        let np = new_pollable.clone();
        l.func(
            &name("clocks/monotonic-clock", "subscribe-instant"),
            func(&[Ty::U64], Some(pollable.own())),
            move |cx, args| {
                let t = Duration::from_nanos(arg_u64(args, 0)?);
                Ok(vec![np(cx, Pollable::At(t))])
            },
        )?;
        let np = new_pollable.clone();
        l.func(
            &name("clocks/monotonic-clock", "subscribe-duration"),
            func(&[Ty::U64], Some(pollable.own())),
            move |cx, args| {
                let t = cx
                    .now()
                    .saturating_add(Duration::from_nanos(arg_u64(args, 0)?));
                Ok(vec![np(cx, Pollable::At(t))])
            },
        )?;
    }
    let datetime = record(&[("seconds", Ty::U64), ("nanoseconds", Ty::U32)]);
    l.func(
        &name("clocks/wall-clock", "now"),
        func(&[], Some(datetime.clone())),
        |_, _| {
            let d = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Ok(vec![Val::Record(vec![
                Val::U64(d.as_secs()),
                Val::U32(d.subsec_nanos()),
            ])])
        },
    )?;
    l.func(
        &name("clocks/wall-clock", "resolution"),
        func(&[], Some(datetime)),
        |_, _| Ok(vec![Val::Record(vec![Val::U64(0), Val::U32(1)])]),
    )?;

    // wasi:random
    l.func(
        &name("random/random", "get-random-bytes"),
        func(&[Ty::U64], Some(list(Ty::U8))),
        |_, args| {
            let n = arg_u64(args, 0)?;
            if n > crate::MAX_RANDOM_BYTES {
                return Err(HostError::new(format!(
                    "get-random-bytes: {n} bytes asked for, at most {} at once",
                    crate::MAX_RANDOM_BYTES
                )));
            }
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
                let n = arg_u64(args, 0)?;
                if n > crate::MAX_RANDOM_BYTES {
                    return Err(HostError::new("get-insecure-random-bytes: too many bytes"));
                }
                Ok(vec![bytes(&c.insecure_bytes(n as usize))])
            },
        )?;
        let ctx2 = ctx.clone();
        l.func(
            &name("random/insecure", "get-insecure-random-u64"),
            func(&[], Some(Ty::U64)),
            move |_, _| Ok(vec![Val::U64(ctx2.insecure_u64())]),
        )?;
        let c = ctx.clone();
        l.func(
            &name("random/insecure-seed", "insecure-seed"),
            func(&[], Some(tuple([Ty::U64, Ty::U64]))),
            move |_, _| {
                let (a, b) = c.state().insecure_seed;
                Ok(vec![Val::Record(vec![Val::U64(a), Val::U64(b)])])
            },
        )?;
    }

    // wasi:filesystem: no preopened directory, so no descriptor ever.
    let descriptor = plain_resource(l, "filesystem/types", "descriptor")?;
    plain_resource(l, "filesystem/types", "directory-entry-stream")?;
    l.trap_unknown_funcs(&iface("filesystem/types"));
    l.func(
        &name("filesystem/preopens", "get-directories"),
        func(&[], Some(list(tuple([descriptor.own(), Ty::String])))),
        |_, _| Ok(vec![Val::List(vec![])]),
    )?;

    // wasi:sockets: every socket and name lookup is denied.
    let network = plain_resource(l, "sockets/network", "network")?;
    l.trap_unknown_funcs(&iface("sockets/network"));
    let nw = network.clone();
    l.func(
        &name("sockets/instance-network", "instance-network"),
        func(&[], Some(network.own())),
        move |cx, _| Ok(vec![cx.resource_new(&nw, 0)]),
    )?;
    let code = enumeration(SOCKET_ERRORS);
    let family = enumeration(&["ipv4", "ipv6"]);
    let denied = || err(enum_case(SOCKET_ERRORS, "access-denied"));
    for (i, r, f) in [
        ("sockets/udp", "udp-socket", "sockets/udp-create-socket"),
        ("sockets/tcp", "tcp-socket", "sockets/tcp-create-socket"),
    ] {
        let sock = plain_resource(l, i, r)?;
        l.trap_unknown_funcs(&iface(i));
        l.func(
            &name(f, &format!("create-{r}")),
            func(
                std::slice::from_ref(&family),
                Some(result(Some(sock.own()), Some(code.clone()))),
            ),
            move |_, _| Ok(vec![denied()]),
        )?;
    }
    plain_resource(l, "sockets/udp", "incoming-datagram-stream")?;
    plain_resource(l, "sockets/udp", "outgoing-datagram-stream")?;
    let lookup = plain_resource(l, "sockets/ip-name-lookup", "resolve-address-stream")?;
    l.trap_unknown_funcs(&iface("sockets/ip-name-lookup"));
    l.func(
        &name("sockets/ip-name-lookup", "resolve-addresses"),
        func(
            &[network.borrow(), Ty::String],
            Some(result(Some(lookup.own()), Some(code))),
        ),
        move |_, _| Ok(vec![denied()]),
    )?;
    Ok(())
}

/// `wasi:cli/environment` (0.2 and 0.3 have the same functions).
/// `wasi:cli/exit` (the same in 0.2 and 0.3): `exit` with 0 for `ok` and
/// 1 for `err`, `exit-with-code` with the guest's code; both end the run.
pub(crate) fn add_exit(l: &mut Linker, iface: &str, ctx: &Arc<WasiCtx>) -> Result<(), Error> {
    let c = ctx.clone();
    l.func(
        &format!("{iface}#exit"),
        func(&[result(None, None)], None),
        move |_, args| {
            let code = match args.first() {
                Some(Val::Variant(0, _)) => 0,
                _ => 1,
            };
            Err(c.exit(code))
        },
    )?;
    let c = ctx.clone();
    l.func(
        &format!("{iface}#exit-with-code"),
        func(&[Ty::U8], None),
        move |_, args| match args.first() {
            Some(Val::U8(code)) => Err(c.exit(*code)),
            _ => Err(HostError::new("exit-with-code: expected a u8")),
        },
    )?;
    Ok(())
}

pub(crate) fn add_environment(
    l: &mut Linker,
    iface: &str,
    ctx: &Arc<WasiCtx>,
) -> Result<(), Error> {
    let c = ctx.clone();
    l.func(
        &format!("{iface}#get-environment"),
        func(&[], Some(list(tuple([Ty::String, Ty::String])))),
        move |_, _| {
            Ok(vec![Val::List(
                c.env
                    .iter()
                    .map(|(k, v)| Val::Record(vec![string(k), string(v)]))
                    .collect(),
            )])
        },
    )?;
    let c = ctx.clone();
    l.func(
        &format!("{iface}#get-arguments"),
        func(&[], Some(list(Ty::String))),
        move |_, _| Ok(vec![Val::List(c.args.iter().map(|a| string(a)).collect())]),
    )?;
    for f in ["initial-cwd", "get-initial-cwd"] {
        l.func(
            &format!("{iface}#{f}"),
            func(&[], Some(option(Ty::String))),
            |_, _| Ok(vec![crate::ty::none()]),
        )?;
    }
    Ok(())
}

/// `wasi:cli/terminal-*`: nothing is a terminal.
pub(crate) fn add_terminals(l: &mut Linker, iface: &dyn Fn(&str) -> String) -> Result<(), Error> {
    let input = l.resource(
        &format!("{}#terminal-input", iface("cli/terminal-input")),
        |_, _| {},
    )?;
    let output = l.resource(
        &format!("{}#terminal-output", iface("cli/terminal-output")),
        |_, _| {},
    )?;
    for (i, f, r) in [
        ("cli/terminal-stdin", "get-terminal-stdin", &input),
        ("cli/terminal-stdout", "get-terminal-stdout", &output),
        ("cli/terminal-stderr", "get-terminal-stderr", &output),
    ] {
        l.func(
            &format!("{}#{f}", iface(i)),
            func(&[], Some(option(r.own()))),
            |_, _| Ok(vec![crate::ty::none()]),
        )?;
    }
    Ok(())
}
