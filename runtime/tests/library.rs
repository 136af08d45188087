//! The `library` component built by componentize-py (`../shared/components/
//! library/library.wasm`) linked with host functions written here: async
//! host calls on a virtual clock, streams and futures in both directions,
//! work after a call returned, and many calls in flight at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_async::CopyResult;
use canon_async_wasmi::abi::val::Str;
use canon_async_wasmi::{
    ClockKind, Component, Config, CopyDone, Engine, FuncTy, HostCall, HostCx, Instance, Linker,
    Store, Ty, Val,
};

fn component_bytes() -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/components/library/library.wasm");
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the example components live in ../shared/components/ \
             beside the project checkout; rebuild them with ../shared/components/build.sh \
             (componentize-py 0.25.1 from PyPI)",
            p.display()
        )
    })
}

fn ty(params: &[(&str, Ty)], result: Option<Ty>, is_async: bool) -> FuncTy {
    FuncTy {
        params: params
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
        result,
        is_async,
    }
}

type Log = Arc<Mutex<Vec<(Duration, String)>>>;

const HOST: &str = "canon-async:examples/host@0.1.0";

/// Reads `end` to its end, summing the u32s, then completes `call`.
fn sum_stream(cx: &mut HostCx<'_>, end: Val, acc: u64, call: HostCall) {
    let e = end.clone();
    cx.read(&end, 64, move |cx, vals, done: CopyDone| {
        let acc = acc
            + vals
                .iter()
                .map(|v| match v {
                    Val::U32(n) => u64::from(*n),
                    other => panic!("not a u32: {other:?}"),
                })
                .sum::<u64>();
        if done.result == CopyResult::Dropped {
            cx.drop_end(&e).unwrap();
            cx.complete(call, vec![Val::U64(acc)]).unwrap();
        } else {
            sum_stream(cx, e, acc, call);
        }
    })
    .unwrap();
}

fn linker(log: &Log) -> Linker {
    let mut l = Linker::new();
    l.func_async(
        &format!("{HOST}#sleep-ms"),
        ty(&[("ms", Ty::U32)], None, true),
        |cx, args, call| {
            let [Val::U32(ms)] = args[..] else {
                panic!("{args:?}")
            };
            cx.after(Duration::from_millis(ms.into()), move |cx| {
                cx.complete(call, vec![]).unwrap();
            });
            Ok(())
        },
    )
    .unwrap();
    let log = log.clone();
    l.func(
        &format!("{HOST}#log"),
        ty(&[("line", Ty::String)], None, false),
        move |cx, args| {
            let [Val::String(s)] = args else {
                panic!("{args:?}")
            };
            log.lock().unwrap().push((cx.now(), s.text.clone()));
            Ok(vec![])
        },
    )
    .unwrap();
    l.func_async(
        &format!("{HOST}#sum"),
        ty(
            &[("numbers", Ty::Stream(Some(Arc::new(Ty::U32))))],
            Some(Ty::U64),
            true,
        ),
        |cx, mut args, call| {
            sum_stream(cx, args.remove(0), 0, call);
            Ok(())
        },
    )
    .unwrap();
    l
}

/// Runs `f` on a thread with a large stack (debug builds of wasmi run
/// CPython's deep recursion).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

fn setup() -> (Store, Instance, Log) {
    let engine = Engine::new(&Config {
        clock: ClockKind::Virtual,
        ..Config::default()
    });
    let component = Component::new(&engine, &component_bytes()).unwrap();
    let log: Log = Arc::default();
    let mut store = Store::new(&engine);
    let inst = linker(&log).instantiate(&mut store, &component).unwrap();
    (store, inst, log)
}

fn string(v: &[Val]) -> String {
    match v {
        [Val::String(s)] => s.text.clone(),
        other => panic!("not one string: {other:?}"),
    }
}

fn u32_list(xs: &[u32]) -> Val {
    Val::List(xs.iter().map(|x| Val::U32(*x)).collect())
}

#[test]
fn add_is_a_sync_export() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let add = inst.func("add").unwrap();
        assert_eq!(
            store.call(&add, &[Val::U32(2), Val::U32(3)]).unwrap(),
            vec![Val::U32(5)]
        );
    });
}

#[test]
fn race_returns_in_completion_order_on_the_virtual_clock() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let race = inst.func("race").unwrap();
        let r = store.call(&race, &[u32_list(&[30, 10, 20])]).unwrap();
        assert_eq!(string(&r), "b,c,a");
        assert_eq!(store.now(), Duration::from_millis(30));
    });
}

#[test]
fn count_returns_a_stream_the_host_reads() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let count = inst.func("count").unwrap();
        let r = store.call(&count, &[Val::U32(5)]).unwrap();
        let [s @ Val::Stream(_)] = &r[..] else {
            panic!("{r:?}")
        };
        let got: Arc<Mutex<Vec<u32>>> = Arc::default();
        let ended = Arc::new(Mutex::new(false));
        fn read_on(
            cx: &mut HostCx<'_>,
            s: Val,
            got: Arc<Mutex<Vec<u32>>>,
            ended: Arc<Mutex<bool>>,
        ) {
            let s2 = s.clone();
            cx.read(&s, 16, move |cx, vals, d| {
                got.lock().unwrap().extend(vals.iter().map(|v| match v {
                    Val::U32(n) => *n,
                    o => panic!("{o:?}"),
                }));
                if d.result == CopyResult::Dropped {
                    *ended.lock().unwrap() = true;
                    cx.drop_end(&s2).unwrap();
                } else {
                    read_on(cx, s2, got, ended);
                }
            })
            .unwrap();
        }
        let (g, e) = (got.clone(), ended.clone());
        store.with_host(|cx| read_on(cx, s.clone(), g, e));
        store.run_until_idle().unwrap();
        assert!(*ended.lock().unwrap());
        assert_eq!(*got.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn later_returns_a_future_of_twice_x() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let later = inst.func("later").unwrap();
        let r = store.call(&later, &[Val::U32(21)]).unwrap();
        let [f @ Val::Future(_)] = &r[..] else {
            panic!("{r:?}")
        };
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        let f2 = f.clone();
        store.with_host(|cx| {
            cx.read(f, 1, move |cx, vals, d| {
                assert_eq!(d.result, CopyResult::Completed);
                *g.lock().unwrap() = Some(vals);
                cx.drop_end(&f2).unwrap();
            })
            .unwrap()
        });
        store.run_until_idle().unwrap();
        assert_eq!(*got.lock().unwrap(), Some(vec![Val::U32(42)]));
    });
}

#[test]
fn total_is_summed_by_the_host_from_a_guest_stream() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let total = inst.func("total").unwrap();
        let r = store.call(&total, &[Val::U32(1000)]).unwrap();
        assert_eq!(r, vec![Val::U64(500_500)]);
    });
}

#[test]
fn fire_and_forget_keeps_the_instance_live_until_it_logged() {
    big_stack(|| {
        let (mut store, inst, log) = setup();
        let f = inst.func("fire-and-forget").unwrap();
        let r = store
            .call(&f, &[Val::String(Str::from_host("x")), Val::U32(10)])
            .unwrap();
        assert_eq!(r, vec![Val::Bool(true)]);
        assert_eq!(store.now(), Duration::ZERO);
        assert!(log.lock().unwrap().is_empty());
        assert!(store.live_tasks(&inst) > 0, "the task is still working");
        store.run_until_idle().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec![(Duration::from_millis(10), "x".to_string())]
        );
        assert_eq!(store.live_tasks(&inst), 0);
    });
}

#[test]
fn a_hundred_overlapping_races_in_one_instance() {
    big_stack(|| {
        let (mut store, inst, _) = setup();
        let race = inst.func("race").unwrap();
        let calls: Vec<_> = (0..100u32)
            .map(|i| {
                let d = [30 + i % 7, 10 + i % 5, 20 + i % 3];
                let c = store.call_concurrent(&race, &[u32_list(&d)]).unwrap();
                let mut order = [(d[0], 'a'), (d[1], 'b'), (d[2], 'c')];
                order.sort();
                let want: Vec<String> = order.iter().map(|(_, c)| c.to_string()).collect();
                (c, want.join(","))
            })
            .collect();
        for (c, want) in calls {
            assert_eq!(string(&store.finish(c).unwrap()), want);
        }
        // All 300 sleeps overlapped: the clock stands at the longest one.
        assert_eq!(store.now(), Duration::from_millis(36));
    });
}
