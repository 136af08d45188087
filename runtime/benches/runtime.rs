//! The runtime's hot paths, through the embedding API (`Engine`, `Linker`,
//! `Store::call`), on the side-by-side benchmark's components
//! (`benches/side-by-side/wat/`):
//!
//! - `host-import x1000`: a guest makes 1000 async calls to a host import
//!   (`Linker::func_async`) that completes each at once (workload 2a);
//! - `stream 1 MiB`: 1 MiB over a `stream<u8>` between two component
//!   instances, in 64 KiB copies (workload 3).
//!
//! `cargo bench -p canon-async-wasmi --bench runtime`. With
//! `CANON_CALLGRIND=<host|stream>:<iterations>` it runs that many calls of
//! one workload and exits, without criterion, for callgrind:
//!
//! ```sh
//! cargo bench -p canon-async-wasmi --bench runtime --no-run
//! CANON_CALLGRIND=host:100 valgrind --tool=callgrind target/release/deps/runtime-<hash>
//! ```

use std::hint::black_box;

use canon_async_wasmi::{
    Component, Config, Engine, Func, FuncTy, HostError, Linker, Store, Ty, Val,
};
use criterion::Criterion;

const HOST_IMPORT: &str = include_str!("../../benches/side-by-side/wat/host-import.wat");
const STREAM: &str = include_str!("../../benches/side-by-side/wat/stream.wat");

fn encode(wat: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(wat).expect("lex");
    let mut w: wast::Wat = wast::parser::parse(&buf).expect("parse");
    w.encode().expect("encode")
}

/// A store with `wat` instantiated, its export `run`, and what one call of
/// it returns.
fn setup(workload: &str) -> (Store, Func, u32) {
    let (wat, expect) = match workload {
        "host" => (HOST_IMPORT, 42_000),
        "stream" => (STREAM, 1 << 20),
        w => panic!("unknown workload `{w}` (host, stream)"),
    };
    let engine = Engine::new(&Config::default());
    let component = Component::new(&engine, &encode(wat)).expect("component");
    let mut linker = Linker::new();
    if workload == "host" {
        let ty = FuncTy {
            params: Vec::new(),
            result: Some(Ty::U32),
            is_async: true,
        };
        linker
            .func_async("get", ty, |cx, _args, call| {
                cx.complete(call, vec![Val::U32(42)])
                    .map_err(|e| HostError(e.to_string()))?;
                Ok(())
            })
            .expect("link");
    }
    let mut store = Store::new(&engine);
    let instance = linker
        .instantiate(&mut store, &component)
        .expect("instantiate");
    let run = instance.func("run").expect("exported");
    (store, run, expect)
}

fn call(store: &mut Store, run: &Func, expect: u32) {
    let r = store.call(black_box(run), &[]).expect("call");
    assert!(
        matches!(r.as_slice(), [Val::U32(v)] if *v == expect),
        "{r:?}"
    );
}

fn main() {
    if let Ok(spec) = std::env::var("CANON_CALLGRIND") {
        let (workload, n) = spec
            .split_once(':')
            .expect("CANON_CALLGRIND=<host|stream>:<iterations>");
        let n: u64 = n.parse().expect("iterations");
        let (mut store, run, expect) = setup(workload);
        for _ in 0..n {
            call(&mut store, &run, expect);
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for (name, workload) in [("host-import x1000", "host"), ("stream 1 MiB", "stream")] {
        let (mut store, run, expect) = setup(workload);
        c.bench_function(name, |b| b.iter(|| call(&mut store, &run, expect)));
    }
    c.final_summary();
}
