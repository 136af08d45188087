//! `canon-async`: the command-line tool of the canon-async runtime.
//!
//! ```text
//! canon-async run [--env K=V]... [--inherit-env] [--fuel N]
//!                 [--schedule SEED|replay:CHOICES] COMPONENT.wasm [ARGS]...
//! ```
//!
//! `run` instantiates a `wasi:cli/command` component with the WASI host of
//! `canon-async-wasi` (the process's stdio, the real clock, no
//! environment variable unless passed, no filesystem, no network) and
//! calls `wasi:cli/run@0.3.x#run`. The process exits with the guest's
//! status: its `wasi:cli/exit` status, else 0 when `run` returns `ok` and
//! 1 for `err`. A trap or a deadlock is printed with the export and the
//! instance it happened in and the run's replay string, and exits with
//! status 134 (as a trapping `wasmtime run` does on Unix); a component
//! that cannot be read, compiled or linked exits with 1.
//!
//! ```text
//! canon-async serve [--addr 127.0.0.1:8080] [--max-instance-reuse N]
//!                   [--max-concurrent-per-instance N] [--allow-outgoing HOST:PORT]...
//!                   [--workers N] [--handler-timeout SECONDS] [-v] COMPONENT.wasm
//! ```
//!
//! `serve` serves a `wasi:http/handler@0.3.0` component over HTTP/1.1
//! (`canon-async-wasi-http`): it prints `serving on http://ADDR` once it
//! listens, and stops on SIGINT or SIGTERM once its instances are
//! quiescent. `-v` logs each instance's creation, quiescence and drop.
//!
//! `--print-schedule` prints the run's replay string at its end whatever
//! the outcome. `--clock virtual` runs on a virtual clock: sleeps take no real time,
//! and with `--schedule` the run is reproducible whatever the machine's
//! load. `CANON_ASYNC_TIMING=1` prints when each phase ended (read,
//! parse and compile, instantiate, first output, run) to stderr.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use canon_async::{ChoicePoint, Chooser, Deterministic, Replay, Seeded};
use canon_async_wasi::WasiCtx;
use canon_async_wasmi::{ClockKind, Component, Config, Engine, Linker, Store, Val};

const USAGE: &str = "usage: canon-async run [--env K=V]... [--inherit-env] [--fuel N] \
[--schedule SEED|replay:CHOICES] [--print-schedule] [--clock real|virtual] COMPONENT.wasm [ARGS]...
       canon-async serve [--addr 127.0.0.1:8080] [--max-instance-reuse N] \
[--max-concurrent-per-instance N] [--allow-outgoing HOST:PORT]... [--workers N] \
[--handler-timeout SECONDS] [-v] COMPONENT.wasm";

/// The exit status of a run that trapped or deadlocked.
const TRAP_STATUS: u8 = 134;

/// The scheduling choices of a run.
#[derive(Debug, Clone)]
enum Schedule {
    Deterministic,
    Seed(u64),
    Replay(Vec<usize>),
}

#[derive(Debug)]
struct RunOpts {
    env: Vec<(String, String)>,
    fuel: Option<u64>,
    schedule: Schedule,
    component: String,
    args: Vec<String>,
    clock: ClockKind,
    /// Print the run's replay string to stderr at its end, too.
    print_schedule: bool,
    /// Print the time each phase took to stderr (`CANON_ASYNC_TIMING=1`).
    timing: bool,
    /// When the process started.
    start: Instant,
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    if let Some(r) = s.strip_prefix("replay:") {
        return Replay::<Deterministic>::parse(r)
            .map(Schedule::Replay)
            .ok_or_else(|| format!("`{r}` is not a replay string (like `0.1.0`)"));
    }
    let seed = s.strip_prefix("seed:").unwrap_or(s);
    if let Ok(n) = seed.parse() {
        return Ok(Schedule::Seed(n));
    }
    if s.contains('.') {
        if let Some(r) = Replay::<Deterministic>::parse(s) {
            return Ok(Schedule::Replay(r));
        }
    }
    Err(format!(
        "`{s}` is neither a seed (a number) nor a replay string (`replay:0.1.0`)"
    ))
}

fn parse_run(mut args: impl Iterator<Item = String>, start: Instant) -> Result<RunOpts, String> {
    let mut clock = ClockKind::Real;
    let mut print_schedule = false;
    let mut env = Vec::new();
    let mut fuel = None;
    let mut schedule = Schedule::Deterministic;
    let mut component = None;
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match a.as_str() {
            "--env" => {
                let kv = value("--env")?;
                match kv.split_once('=') {
                    Some((k, v)) => env.push((k.to_string(), v.to_string())),
                    // `--env K` passes the host's value of K, if any.
                    None => {
                        if let Ok(v) = std::env::var(&kv) {
                            env.push((kv, v));
                        }
                    }
                }
            }
            "--inherit-env" => env.extend(std::env::vars()),
            "--print-schedule" => print_schedule = true,
            "--fuel" => {
                let v = value("--fuel")?;
                fuel = Some(
                    v.parse()
                        .map_err(|_| format!("`--fuel {v}`: not a number"))?,
                );
            }
            "--schedule" => schedule = parse_schedule(&value("--schedule")?)?,
            "--clock" => {
                clock = match value("--clock")?.as_str() {
                    "real" => ClockKind::Real,
                    "virtual" => ClockKind::Virtual,
                    c => return Err(format!("`--clock {c}`: `real` or `virtual`")),
                }
            }
            "--" => {
                component = args.next();
                break;
            }
            f if f.starts_with("--") => return Err(format!("unknown option `{f}`")),
            _ => {
                component = Some(a);
                break;
            }
        }
    }
    let component = component.ok_or("no component given")?;
    Ok(RunOpts {
        env,
        fuel,
        schedule,
        component,
        args: args.collect(),
        clock,
        print_schedule,
        start,
        timing: std::env::var_os("CANON_ASYNC_TIMING").is_some_and(|v| v == "1"),
    })
}

/// A chooser that records every choice, for the run's replay string.
struct Recording {
    inner: Box<dyn Chooser>,
    trace: Arc<Mutex<Vec<usize>>>,
}

impl Chooser for Recording {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        let c = self.inner.choose(point, n) % n.max(1);
        self.trace.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        c
    }

    fn always_first(&self) -> bool {
        // The deterministic profile's skipped choices are all 0, which a
        // replay's fallback repeats.
        self.inner.always_first()
    }
}

fn replay_string(trace: &Mutex<Vec<usize>>) -> String {
    let t = trace.lock().unwrap_or_else(|p| p.into_inner());
    let s: Vec<String> = t.iter().map(|c| c.to_string()).collect();
    s.join(".")
}

fn run(o: RunOpts) -> u8 {
    let t0 = o.start;
    let phases = std::cell::RefCell::new(Vec::new());
    let phase = |what: &'static str| phases.borrow_mut().push((what, Instant::now()));
    let bytes = match std::fs::read(&o.component) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", o.component);
            return 1;
        }
    };
    phase("read");
    let engine = Engine::new(&Config {
        consume_fuel: o.fuel.is_some(),
        clock: o.clock,
        ..Config::default()
    });
    let component = match Component::new(&engine, &bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: `{}`: {e}", o.component);
            return 1;
        }
    };
    phase("parse and compile");
    let mut argv = vec![o.component.clone()];
    argv.extend(o.args.iter().cloned());
    let mut ctx = WasiCtx::new(argv).stdin(canon_async_wasi::Input::Stdin);
    for (k, v) in &o.env {
        ctx = ctx.env(k, v);
    }
    let ctx = Arc::new(ctx);
    let mut linker = Linker::new();
    if let Err(e) = canon_async_wasi::add_to_linker(&mut linker, &ctx) {
        eprintln!("error: the WASI host: {e}");
        return 1;
    }
    let mut store = Store::new(&engine);
    let trace = Arc::new(Mutex::new(Vec::new()));
    let inner: Box<dyn Chooser> = match &o.schedule {
        Schedule::Deterministic => Box::new(Deterministic),
        Schedule::Seed(s) => Box::new(Seeded::new(*s)),
        Schedule::Replay(r) => Box::new(Replay::new(r.clone(), Deterministic)),
    };
    store.set_chooser(Box::new(Recording {
        inner,
        trace: trace.clone(),
    }));
    if let Some(f) = o.fuel {
        if let Err(e) = store.set_fuel(f) {
            eprintln!("error: {e}");
            return 1;
        }
    }
    let inst = match linker.instantiate(&mut store, &component) {
        Ok(i) => i,
        Err(e) => {
            if let Some(code) = ctx.exit_code() {
                return code;
            }
            eprintln!("error: cannot instantiate `{}`: {e}", o.component);
            return match e {
                canon_async_wasmi::Error::Trap(_) => TRAP_STATUS,
                _ => 1,
            };
        }
    };
    phase("instantiate");
    let export = inst
        .export_names()
        .find(|n| n.starts_with("wasi:cli/run@0.3."))
        .map(|n| format!("{n}#run"));
    let Some((export, func)) = export.and_then(|e| inst.func(&e).map(|f| (e, f))) else {
        eprintln!(
            "error: `{}` is not a command: it exports no `wasi:cli/run@0.3.x#run` (its exports: {})",
            o.component,
            inst.export_names().collect::<Vec<_>>().join(", ")
        );
        return 1;
    };
    let r = store.call(&func, &[]);
    phase("run");
    if o.print_schedule {
        eprintln!("schedule: --schedule replay:{}", replay_string(&trace));
    }
    if o.timing {
        // Each phase's end, from the process's start; the first output
        // falls inside the run.
        let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1e3;
        let mut line: Vec<String> = phases
            .borrow()
            .iter()
            .map(|(w, t)| format!("{w} {:.1}", ms(*t)))
            .collect();
        if let Some(t) = ctx.first_output() {
            line.push(format!("first output {:.1}", ms(t)));
        }
        eprintln!("[timing ms from start] {}", line.join(", "));
    }
    if let Some(code) = ctx.exit_code() {
        return code;
    }
    match r {
        Ok(v) => match v.as_slice() {
            [Val::Variant(0, _)] => 0,
            _ => 1,
        },
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "  in the call of `{export}`, exported by `{}` (instance {})",
                o.component,
                inst.id().as_u32()
            );
            let how = match &o.schedule {
                Schedule::Deterministic => "the deterministic schedule".to_string(),
                Schedule::Seed(s) => format!("seed {s}"),
                Schedule::Replay(_) => "a replay".to_string(),
            };
            eprintln!(
                "  schedule ({how}); replay it with: --schedule replay:{}",
                replay_string(&trace)
            );
            TRAP_STATUS
        }
    }
}

fn parse_serve(
    mut args: impl Iterator<Item = String>,
) -> Result<(String, canon_async_wasi_http::ServeOpts), String> {
    let mut o = canon_async_wasi_http::ServeOpts::default();
    let mut component = None;
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("`{flag} {v}`: not a number"))
        }
        match a.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                o.addr = v
                    .parse()
                    .map_err(|_| format!("`--addr {v}`: not an address like 127.0.0.1:8080"))?;
            }
            "--max-instance-reuse" => {
                o.max_instance_reuse = num("--max-instance-reuse", &value(&a)?)?;
                if o.max_instance_reuse == 0 {
                    return Err("`--max-instance-reuse` is at least 1".into());
                }
            }
            "--max-concurrent-per-instance" => {
                o.max_concurrent_per_instance = num("--max-concurrent-per-instance", &value(&a)?)?;
                if o.max_concurrent_per_instance == 0 {
                    return Err("`--max-concurrent-per-instance` is at least 1".into());
                }
            }
            "--allow-outgoing" => o.allow_outgoing.push(value(&a)?),
            "--workers" => o.workers = num::<usize>("--workers", &value(&a)?)?.max(1),
            "--handler-timeout" => {
                let s: f64 = num("--handler-timeout", &value(&a)?)?;
                o.handler_timeout = std::time::Duration::try_from_secs_f64(s)
                    .map_err(|_| format!("`--handler-timeout {s}`: not a duration"))?;
            }
            "-v" | "--verbose" => o.verbose = true,
            "--" => {
                component = args.next();
                break;
            }
            f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
            _ => {
                component = Some(a);
                break;
            }
        }
    }
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument `{extra}` after the component"));
    }
    Ok((component.ok_or("no component given")?, o))
}

fn serve(path: &str, o: canon_async_wasi_http::ServeOpts) -> u8 {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read `{path}`: {e}");
            return 1;
        }
    };
    let r = canon_async_wasi_http::serve(&bytes, o, |addr| {
        use std::io::Write;
        println!("serving on http://{addr}");
        let _ = std::io::stdout().flush();
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: `{path}`: {e}");
            1
        }
    }
}

fn main() -> ExitCode {
    let start = Instant::now();
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("run") => match parse_run(args, start) {
            Ok(o) => {
                // CPython's recursion runs deep: give the store a large stack.
                let t = std::thread::Builder::new()
                    .name("canon-async run".into())
                    .stack_size(256 << 20)
                    .spawn(move || run(o));
                match t.map(|t| t.join()) {
                    Ok(Ok(c)) => c,
                    Ok(Err(_)) => {
                        eprintln!("error: the runtime panicked");
                        101
                    }
                    Err(e) => {
                        eprintln!("error: cannot start the run's thread: {e}");
                        1
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}\n{USAGE}");
                2
            }
        },
        Some("serve") => match parse_serve(args) {
            Ok((path, o)) => serve(&path, o),
            Err(e) => {
                eprintln!("error: {e}\n{USAGE}");
                2
            }
        },
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`\n{USAGE}");
            2
        }
        None => {
            eprintln!("{USAGE}");
            2
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}
