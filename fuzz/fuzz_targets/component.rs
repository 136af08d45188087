//! Random valid components (built with `wasm-encoder` from the fuzzer's
//! bytes) run through the `canon-async-spec` runtime: a memory, lifted
//! exports of random kinds (sync, async callback, async stackful) whose core
//! bodies call random canon built-ins and lowered imports on random
//! indices, and optionally a nested callee component of the same shape.
//! Traps and errors are fine; a panic is a bug.
//!
//! Every generated component is validated with wasmparser before it runs;
//! invalid ones are skipped and counted (`CANON_ASYNC_FUZZ_STATS=1` prints
//! the counts now and then).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasm_encoder::{
    CanonicalOption, CodeSection, ComponentBuilder, ComponentExportKind, ComponentValType,
    EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection, MemorySection,
    MemoryType, Module, ModuleArg, PrimitiveValType, TypeSection, ValType,
};

/// Fuel for the instantiation and for each invoke.
const FUEL: u64 = 2_000_000;

static RUNS: AtomicU64 = AtomicU64::new(0);
static SKIPPED: AtomicU64 = AtomicU64::new(0);
static TRAPPED: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sync,
    Callback,
    Stackful,
}

/// A core function the generated bodies may call, with its core signature.
#[derive(Clone)]
struct Callable {
    index: u32,
    params: Vec<ValType>,
    results: Vec<ValType>,
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

fn memory_type() -> MemoryType {
    MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    }
}

/// Builds a component; returns it with its exported function names.
fn component(
    u: &mut Unstructured<'_>,
    depth: u32,
) -> Result<(ComponentBuilder, Vec<(String, Kind)>)> {
    let mut b = ComponentBuilder::default();

    // The memory, in a module of its own so that built-ins can name it
    // before the main module is instantiated.
    let mut mm = Module::new();
    let mut ms = MemorySection::new();
    ms.memory(memory_type());
    mm.section(&ms);
    let mut es = ExportSection::new();
    es.export("mem", ExportKind::Memory, 0);
    mm.section(&es);
    let mm = b.core_module(None, &mm);
    let mi = b.core_instantiate(None, mm, Vec::<(&str, ModuleArg)>::new());
    let mem = b.core_alias_export(None, mi, "mem", ExportKind::Memory);

    // Types: stream<u8>, future<u8>, and the sync and async `func()`.
    let u8t = Some(ComponentValType::Primitive(PrimitiveValType::U8));
    let (ts, enc) = b.type_defined(None);
    enc.stream(u8t);
    let (tf, enc) = b.type_defined(None);
    enc.future(u8t);
    let (t_sync, mut enc) = b.type_function(None);
    enc.async_(false)
        .params(Vec::<(&str, ComponentValType)>::new())
        .result(None);
    let (t_async, mut enc) = b.type_function(None);
    enc.async_(true)
        .params(Vec::<(&str, ComponentValType)>::new())
        .result(None);

    let mut callables: Vec<Callable> = Vec::new();
    let add = |index: u32, params: &[ValType], results: &[ValType]| Callable {
        index,
        params: params.to_vec(),
        results: results.to_vec(),
    };

    // A callee component, lowered sync or async.
    if depth == 0 && u.ratio(2, 3)? {
        let (child, names) = component(u, depth + 1)?;
        let c = b.component(None, child);
        let ci = b.instantiate(None, c, Vec::<(&str, ComponentExportKind, u32)>::new());
        for (n, kind) in &names {
            let f = b.alias_export(ci, n, ComponentExportKind::Func);
            // An async lower needs an async function type.
            if *kind != Kind::Sync && u.arbitrary()? {
                let i = b.lower_func(None, f, [CanonicalOption::Async]);
                callables.push(add(i, &[], &[I32]));
            } else {
                let i = b.lower_func(None, f, []);
                callables.push(add(i, &[], &[]));
            }
        }
    }

    let m = || [CanonicalOption::Memory(mem)];
    let am = || [CanonicalOption::Memory(mem), CanonicalOption::Async];
    let builtins = [
        (b.waitable_set_new(), &[][..], &[I32][..]),
        (b.waitable_set_wait(false, mem), &[I32, I32], &[I32]),
        (b.waitable_set_wait(true, mem), &[I32, I32], &[I32]),
        (b.waitable_set_poll(false, mem), &[I32, I32], &[I32]),
        (b.waitable_set_drop(), &[I32], &[]),
        (b.waitable_join(), &[I32, I32], &[]),
        (b.task_return(None, []), &[], &[]),
        (b.task_cancel(), &[], &[]),
        (b.subtask_drop(), &[I32], &[]),
        (b.subtask_cancel(false), &[I32], &[I32]),
        (b.subtask_cancel(true), &[I32], &[I32]),
        (b.stream_new(ts), &[], &[I64]),
        (b.stream_read(ts, am()), &[I32, I32, I32], &[I32]),
        (b.stream_write(ts, am()), &[I32, I32, I32], &[I32]),
        (b.stream_read(ts, m()), &[I32, I32, I32], &[I32]),
        (b.stream_write(ts, m()), &[I32, I32, I32], &[I32]),
        (b.stream_cancel_read(ts, false), &[I32], &[I32]),
        (b.stream_cancel_read(ts, true), &[I32], &[I32]),
        (b.stream_cancel_write(ts, false), &[I32], &[I32]),
        (b.stream_cancel_write(ts, true), &[I32], &[I32]),
        (b.stream_drop_readable(ts), &[I32], &[]),
        (b.stream_drop_writable(ts), &[I32], &[]),
        (b.future_new(tf), &[], &[I64]),
        (b.future_read(tf, am()), &[I32, I32], &[I32]),
        (b.future_write(tf, am()), &[I32, I32], &[I32]),
        (b.future_read(tf, m()), &[I32, I32], &[I32]),
        (b.future_write(tf, m()), &[I32, I32], &[I32]),
        (b.future_cancel_read(tf, false), &[I32], &[I32]),
        (b.future_cancel_read(tf, true), &[I32], &[I32]),
        (b.future_cancel_write(tf, false), &[I32], &[I32]),
        (b.future_cancel_write(tf, true), &[I32], &[I32]),
        (b.future_drop_readable(tf), &[I32], &[]),
        (b.future_drop_writable(tf), &[I32], &[]),
        (b.backpressure_inc(), &[], &[]),
        (b.backpressure_dec(), &[], &[]),
        (b.context_get(I32, 0), &[], &[I32]),
        (b.context_set(I32, 0), &[I32], &[]),
        (b.thread_yield(false), &[], &[I32]),
        (b.thread_yield(true), &[], &[I32]),
        (b.thread_index(), &[], &[I32]),
    ];
    // `task.return` is the seventh built-in.
    let task_return_idx = (callables.len() + 6) as u32;
    for (i, p, r) in builtins {
        callables.push(add(i, p, r));
    }

    // The main core module: imports the memory and every callable.
    let n_exports = u.int_in_range(1..=NAMES.len())?;
    let kinds: Vec<Kind> = (0..n_exports)
        .map(|_| {
            Ok(match u.int_in_range(0..=2)? {
                0 => Kind::Sync,
                1 => Kind::Callback,
                _ => Kind::Stackful,
            })
        })
        .collect::<Result<_>>()?;
    let mut types = TypeSection::new();
    let mut sigs: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut type_of = |p: &[ValType], r: &[ValType], types: &mut TypeSection| -> u32 {
        if let Some(i) = sigs.iter().position(|(a, b)| a == p && b == r) {
            return i as u32;
        }
        types.ty().function(p.iter().copied(), r.iter().copied());
        sigs.push((p.to_vec(), r.to_vec()));
        (sigs.len() - 1) as u32
    };
    let mut imports = ImportSection::new();
    imports.import("", "mem", EntityType::Memory(memory_type()));
    for (k, c) in callables.iter().enumerate() {
        let t = type_of(&c.params, &c.results, &mut types);
        imports.import("", &format!("f{k}"), EntityType::Function(t));
    }
    let n_imported = callables.len() as u32;
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut exports = ExportSection::new();
    let mut next = n_imported;
    for (i, kind) in kinds.iter().enumerate() {
        let entry_results: &[ValType] = if *kind == Kind::Callback { &[I32] } else { &[] };
        let t = type_of(&[], entry_results, &mut types);
        funcs.function(t);
        code.function(&body(u, &callables, 0, *kind, task_return_idx)?);
        exports.export(&format!("e{i}"), ExportKind::Func, next);
        next += 1;
        if *kind == Kind::Callback {
            let t = type_of(&[I32, I32, I32], &[I32], &mut types);
            funcs.function(t);
            code.function(&body(u, &callables, 3, *kind, task_return_idx)?);
            exports.export(&format!("c{i}"), ExportKind::Func, next);
            next += 1;
        }
    }
    let mut main = Module::new();
    main.section(&types);
    main.section(&imports);
    main.section(&funcs);
    main.section(&exports);
    main.section(&code);
    let main = b.core_module(None, &main);

    let names: Vec<String> = (0..callables.len()).map(|k| format!("f{k}")).collect();
    let mut items: Vec<(&str, ExportKind, u32)> = vec![("mem", ExportKind::Memory, mem)];
    for (k, c) in callables.iter().enumerate() {
        items.push((&names[k], ExportKind::Func, c.index));
    }
    let args = b.core_instantiate_exports(None, items);
    let main = b.core_instantiate(None, main, [("", ModuleArg::Instance(args))]);

    let mut out = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let core = b.core_alias_export(None, main, &format!("e{i}"), ExportKind::Func);
        let f = match kind {
            Kind::Sync => b.lift_func(None, core, t_sync, []),
            Kind::Stackful => b.lift_func(None, core, t_async, [CanonicalOption::Async]),
            Kind::Callback => {
                let cb = b.core_alias_export(None, main, &format!("c{i}"), ExportKind::Func);
                b.lift_func(
                    None,
                    core,
                    t_async,
                    [CanonicalOption::Async, CanonicalOption::Callback(cb)],
                )
            }
        };
        b.export(NAMES[i], ComponentExportKind::Func, f, None);
        out.push((NAMES[i].to_string(), *kind));
    }
    Ok((b, out))
}

/// A random core body: calls of random callables with arguments from
/// small constants, likely pointers and locals; results kept in locals.
fn body(
    u: &mut Unstructured<'_>,
    callables: &[Callable],
    n_params: u32,
    kind: Kind,
    task_return: u32,
) -> Result<Function> {
    // Locals after the parameters: four i32 and one i64.
    let n_i32 = n_params + 4;
    let wide = n_i32;
    let mut f = Function::new([(4, I32), (1, I64)]);
    let mut ins = f.instructions();
    let n_ops = u.int_in_range(0..=12)?;
    for _ in 0..n_ops {
        let k = u.choose_index(callables.len())?;
        let c = &callables[k];
        for p in &c.params {
            debug_assert_eq!(*p, I32);
            // Locals hold handles the body got back, so they come first.
            match u.int_in_range(0..=3)? {
                0 => {
                    ins.i32_const(u.int_in_range(0..=4)?);
                }
                1 | 2 => {
                    ins.local_get(u.int_in_range(0..=n_i32 - 1)?);
                }
                _ => {
                    ins.i32_const(*u.choose(&[0, 4, 8, 16, 64, 65532, 65536])?);
                }
            }
        }
        ins.call(k as u32);
        for r in c.results.iter().rev() {
            if *r == I64 {
                // Both ends of a new stream or future, into two locals.
                ins.local_set(wide);
                let lo = n_params + u.int_in_range(0..=3)?;
                let hi = n_params + u.int_in_range(0..=3)?;
                ins.local_get(wide).i32_wrap_i64().local_set(lo);
                ins.local_get(wide)
                    .i64_const(32)
                    .i64_shr_u()
                    .i32_wrap_i64()
                    .local_set(hi);
            } else if u.arbitrary()? {
                ins.local_set(n_params + u.int_in_range(0..=3)?);
            } else {
                ins.drop();
            }
        }
    }
    if kind != Kind::Sync && u.ratio(3, 4)? {
        ins.call(task_return);
    }
    if kind == Kind::Callback {
        match u.int_in_range(0..=3)? {
            0 | 1 => {
                ins.i32_const(0);
            }
            2 => {
                ins.i32_const(1);
            }
            _ => {
                ins.local_get(u.int_in_range(0..=n_i32 - 1)?)
                    .i32_const(4)
                    .i32_shl()
                    .i32_const(2)
                    .i32_or();
            }
        }
    }
    ins.end();
    Ok(f)
}

/// Short inputs (libFuzzer starts with a few bytes and grows them slowly)
/// are stretched into 2 KiB by a PRNG seeded with them, so that every
/// input builds a component with bodies; longer inputs are used as they are.
fn stretch(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if data.len() >= 256 {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        x = (x ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = Vec::with_capacity(2048);
    while out.len() < 2048 {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    std::borrow::Cow::Owned(out)
}

fn run(data: &[u8]) -> Result<()> {
    let data = stretch(data);
    let mut u = Unstructured::new(&data);
    let (b, names) = component(&mut u, 0)?;
    let bytes = b.finish();
    let n = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    if std::env::var_os("CANON_ASYNC_FUZZ_STATS").is_some() && n.is_power_of_two() {
        eprintln!(
            "[component] runs {n}, skipped as invalid {}, trapped or failed {}",
            SKIPPED.load(Ordering::Relaxed),
            TRAPPED.load(Ordering::Relaxed)
        );
    }
    let mut v = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    if let Err(e) = v.validate_all(&bytes) {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        if std::env::var_os("CANON_ASYNC_FUZZ_INVALID").is_some() {
            eprintln!("[component] invalid: {e}");
        }
        return Ok(());
    }
    let n_invokes = u.int_in_range(1..=4)?;
    let mut invokes = Vec::new();
    for _ in 0..n_invokes {
        invokes.push(u.choose(&names)?.0.as_str());
    }
    let r = canon_async_spec::run_component_bytes(&bytes, &invokes, FUEL);
    if std::env::var_os("CANON_ASYNC_FUZZ_SHOW").is_some() {
        eprintln!("[component] {invokes:?}: {r:?}");
    }
    match r {
        Ok(rs) => {
            if rs.iter().any(|r| r.is_err()) {
                TRAPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(_) => {
            TRAPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
