//! Issue 7: the same async components, run in Wasmtime and in canon-async
//! (the spec-tests runtime, `canon-async-spec`, on wasmi), timed side by side.
//!
//! `cargo run --release` in this folder. Environment:
//! - `SBS_BATCHES` (default 7): timed batches per workload and side;
//! - `SBS_BATCH_MS` (default 200): the target length of one batch, from
//!   which the number of iterations per batch is calibrated;
//! - `SBS_ONLY` (optional): a comma-separated list of workload keys
//!   (`ping`, `calls`, `host`, `stream`, `fanout`);
//! - `SBS_SIDE` (optional): `wasmtime` or `canon` to run one side only (for
//!   profiling one of them).
//!
//! What is timed is one iteration: one call of the export from the host,
//! run until its task returned. Compilation and instantiation are not timed
//! on either side. Each side gets one untimed warm-up batch (which also
//! calibrates the batch size); the number printed is the median over the
//! batches of a batch's time divided by its iterations.
//!
//! The two sides do not pay for the same thing: canon-async's side
//! interprets the core wasm with wasmi (with fuel metering on, as the
//! spec-tests engine is configured), while Wasmtime compiles it to native
//! code with Cranelift ahead of the timed part. The ratio therefore mixes
//! the cost of the async machinery with the interpreter-versus-JIT gap.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

struct Workload {
    key: &'static str,
    title: &'static str,
    wat: &'static str,
    export: &'static str,
    /// What one call must return.
    expect: u32,
    /// Units of work in one iteration, and their name (for the per-unit
    /// column).
    units: f64,
    unit: &'static str,
    /// Imports `get: async func() -> u32` from the host: canon-async runs
    /// it through the runtime's embedding API (`Linker::func_async`).
    host_get: bool,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        key: "ping",
        title: "1. host->guest async call (callback lift, task.return + EXIT)",
        wat: include_str!("../wat/ping.wat"),
        export: "ping",
        expect: 42,
        units: 1.0,
        unit: "call",
        host_get: false,
    },
    Workload {
        key: "calls",
        title: "2. guest->guest async call x1000",
        wat: include_str!("../wat/calls.wat"),
        export: "run",
        expect: 42_000,
        units: 1000.0,
        unit: "call",
        host_get: false,
    },
    Workload {
        key: "host",
        title: "2a. guest->host async import x1000, completing at once",
        wat: include_str!("../wat/host-import.wat"),
        export: "run",
        expect: 42_000,
        units: 1000.0,
        unit: "call",
        host_get: true,
    },
    Workload {
        key: "stream",
        title: "3. guest->guest stream<u8>, 1 MiB in 64 KiB copies",
        wat: include_str!("../wat/stream.wat"),
        export: "run",
        expect: 1 << 20,
        units: 16.0,
        unit: "64KiB copy",
        host_get: false,
    },
    Workload {
        key: "fanout",
        title: "4. 10,000 concurrent tasks each awaiting a subtask",
        wat: include_str!("../wat/fanout.wat"),
        export: "run",
        expect: 10_000,
        units: 10_000.0,
        unit: "task",
        host_get: false,
    },
];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one warm-up batch of one iteration (more if that is very short),
/// picks the batch size from it, then times `batches` batches. Returns the
/// median time per iteration and the batch size.
fn measure(
    batches: usize,
    target: Duration,
    mut run: impl FnMut(u64) -> Result<Duration, String>,
) -> Result<(Duration, u64), String> {
    let mut n = 1u64;
    let mut warm = run(n)?;
    while warm < target / 10 && n < 1 << 24 {
        n *= 4;
        warm = run(n)?;
    }
    let per = warm.as_secs_f64() / n as f64;
    let n = ((target.as_secs_f64() / per) as u64).max(1);
    let mut times: Vec<f64> = Vec::with_capacity(batches);
    for _ in 0..batches {
        times.push(run(n)?.as_secs_f64() / n as f64);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((Duration::from_secs_f64(times[times.len() / 2]), n))
}

fn encode(wat: &str) -> Result<Vec<u8>, String> {
    let buf = wast::parser::ParseBuffer::new(wat).map_err(|e| e.to_string())?;
    let mut w: wast::Wat = wast::parser::parse(&buf).map_err(|e| e.to_string())?;
    w.encode().map_err(|e| e.to_string())
}

/// canon-async through the spec-tests runtime (wasmi).
fn canon_side(
    w: &Workload,
    bytes: &[u8],
    batches: usize,
    target: Duration,
) -> Result<(Duration, u64), String> {
    use canon_async_wasmi::abi::Val;
    use canon_async_wasmi::component::{self, instantiate::ComponentVal, ItemVal};
    use canon_async_wasmi::driver::Driver;

    const FUEL: u64 = u64::MAX / 4;
    let engine = canon_async_spec::wast_runner::new_engine();
    let def = component::parse_component(bytes, &engine).map_err(|e| e.to_string())?;
    let mut store = canon_async_wasmi::state::new_store(&engine);
    let mut driver = Driver::default();
    store.set_fuel(FUEL).map_err(|e| e.to_string())?;
    let comp = ComponentVal { def, env: None };
    let inst = component::instantiate(&mut store, &mut driver, &comp, &HashMap::new(), None)
        .map_err(|e| e.to_string())?;
    let f = match inst.exports.get(w.export) {
        Some(ItemVal::Func(f)) => f.clone(),
        _ => return Err(format!("no exported function `{}`", w.export)),
    };
    measure(batches, target, |n| {
        store.set_fuel(FUEL).map_err(|e| e.to_string())?;
        let t = Instant::now();
        for _ in 0..n {
            let r = driver
                .invoke(&mut store, &f, Vec::new())
                .map_err(|e| e.to_string())?;
            if !matches!(r.as_slice(), [Val::U32(v)] if *v == w.expect) {
                return Err(format!("unexpected result {r:?}"));
            }
        }
        Ok(t.elapsed())
    })
}

/// canon-async through the runtime's embedding API (`canon_async_wasmi`'s
/// `Engine`, `Linker::func_async`, `Store::call`), for the workloads that
/// import `get` from the host: the host function completes its call at once
/// with 42. Fuel metering is off here (the embedding API's default), unlike
/// the spec-tests side of the other workloads.
fn canon_host_side(
    w: &Workload,
    bytes: &[u8],
    batches: usize,
    target: Duration,
) -> Result<(Duration, u64), String> {
    use canon_async_wasmi::{Component, Config, Engine, FuncTy, Linker, Store, Ty, Val};

    let engine = Engine::new(&Config::default());
    let component = Component::new(&engine, bytes).map_err(|e| e.to_string())?;
    let mut linker = Linker::new();
    let ty = FuncTy {
        params: Vec::new(),
        result: Some(Ty::U32),
        is_async: true,
    };
    linker
        .func_async("get", ty, |cx, _args, call| {
            cx.complete(call, vec![Val::U32(42)])
                .map_err(|e| canon_async_wasmi::HostError(e.to_string()))?;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let mut store = Store::new(&engine);
    let instance = linker
        .instantiate(&mut store, &component)
        .map_err(|e| e.to_string())?;
    let f = instance
        .func(w.export)
        .ok_or_else(|| format!("no exported function `{}`", w.export))?;
    measure(batches, target, |n| {
        let t = Instant::now();
        for _ in 0..n {
            let r = store.call(&f, &[]).map_err(|e| e.to_string())?;
            if !matches!(r.as_slice(), [Val::U32(v)] if *v == w.expect) {
                return Err(format!("unexpected result {r:?}"));
            }
        }
        Ok(t.elapsed())
    })
}

/// A minimal executor: polls on this thread, parks until woken.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Wasmtime, with the component-model-async proposal, through its
/// concurrent call API: one `Store::run_concurrent` per batch, inside which
/// the batch's calls are made one after the other with
/// `TypedFunc::call_concurrent`, each awaited before the next.
fn wasmtime_side(
    w: &Workload,
    bytes: &[u8],
    batches: usize,
    target: Duration,
) -> Result<(Duration, u64), String> {
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Engine, Store};

    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.concurrency_support(true);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    // Compilation (Cranelift) happens here, outside the timed part.
    // The same binary canon-async gets (encoded by wast 258); should
    // Wasmtime's wasmparser (0.254) reject it, the text, through Wasmtime's
    // own `wat`, with a note.
    let component = match Component::new(&engine, bytes) {
        Ok(c) => c,
        Err(e) => {
            println!("  note: Wasmtime rejected the wast 258 binary ({e}); compiling the text with its own wat");
            Component::new(&engine, w.wat).map_err(|e| format!("{e:?}"))?
        }
    };
    let mut store = Store::new(&engine, ());
    let mut linker: Linker<()> = Linker::new(&engine);
    if w.host_get {
        linker
            .root()
            .func_wrap_concurrent("get", |_, (): ()| Box::pin(async { Ok((42u32,)) }))
            .map_err(|e| format!("{e:?}"))?;
    }
    let instance =
        block_on(linker.instantiate_async(&mut store, &component)).map_err(|e| format!("{e:?}"))?;
    let f = instance
        .get_typed_func::<(), (u32,)>(&mut store, w.export)
        .map_err(|e| format!("{e:?}"))?;
    let expect = w.expect;
    measure(batches, target, |n| {
        let t = Instant::now();
        let wrong = block_on(
            store.run_concurrent(async move |a| -> wasmtime::Result<u64> {
                let mut wrong = 0;
                for _ in 0..n {
                    let (v,) = f.call_concurrent(a, ()).await?;
                    wrong += u64::from(v != expect);
                }
                Ok(wrong)
            }),
        )
        .map_err(|e| format!("{e:?}"))?
        .map_err(|e| format!("{e:?}"))?;
        let el = t.elapsed();
        if wrong != 0 {
            return Err(format!(
                "{wrong} calls returned something other than {expect}"
            ));
        }
        Ok(el)
    })
}

fn fmt_dur(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    let batches = env_num("SBS_BATCHES", 7).max(1) as usize;
    let target = Duration::from_millis(env_num("SBS_BATCH_MS", 200));
    let only: Option<Vec<String>> = std::env::var("SBS_ONLY")
        .ok()
        .map(|s| s.split(',').map(|k| k.trim().to_string()).collect());

    println!("side-by-side: median of {batches} batches of ~{} ms each; time per host call (one iteration)", target.as_millis());
    println!("Wasmtime 48.0.8: Cranelift JIT, compile time excluded. canon-async: spec-tests runtime, wasmi interpreter (fuel metering on).");
    println!("ratio = canon-async / Wasmtime (above 1: canon-async slower)\n");
    let mut failed = false;
    for w in WORKLOADS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|k| k == w.key)) {
            continue;
        }
        println!("{}", w.title);
        let bytes = match encode(w.wat) {
            Ok(b) => b,
            Err(e) => {
                println!("  encoding failed: {e}");
                failed = true;
                continue;
            }
        };
        let side = std::env::var("SBS_SIDE").unwrap_or_default();
        let wt = if side == "canon" {
            Err("not run (SBS_SIDE=canon)".to_string())
        } else {
            wasmtime_side(w, &bytes, batches, target)
        };
        let ca = if side == "wasmtime" {
            Err("not run (SBS_SIDE=wasmtime)".to_string())
        } else if w.host_get {
            canon_host_side(w, &bytes, batches, target)
        } else {
            canon_side(w, &bytes, batches, target)
        };
        let show = |name: &str, r: &Result<(Duration, u64), String>| match r {
            Ok((d, n)) => println!(
                "  {name:<12} {:>10} per iteration  ({:>10} per {}; {n} iterations/batch)",
                fmt_dur(*d),
                fmt_dur(d.div_f64(w.units)),
                w.unit
            ),
            Err(e) if e.starts_with("not run") => println!("  {name:<12} {e}"),
            Err(e) => println!("  {name:<12} FAILED: {e}"),
        };
        show("Wasmtime", &wt);
        show("canon-async", &ca);
        match (&wt, &ca) {
            (Ok((a, _)), Ok((b, _))) => {
                println!("  ratio        {:.2}x\n", b.as_secs_f64() / a.as_secs_f64())
            }
            _ => {
                failed = true;
                println!("  ratio        n/a\n")
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
