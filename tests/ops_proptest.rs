//! Random operation programs (`canon_async::ops`) through the scripted
//! host, with the store's invariants checked after every step (the `check`
//! feature, on for the tests): several instances and tasks issue random
//! built-in calls with random handle and thread indices, the host
//! completes calls and ticks. Misuse must trap, never panic, and a run
//! must be reproducible from its choices.
//!
//! 256 cases by default; set `CANON_ASYNC_PROPTEST_CASES` for more.

use canon_async::ops::{self, Op};
use canon_async::{Deterministic, Seeded};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CANON_ASYNC_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Programs: operations decoded by `arbitrary::Arbitrary` from random
/// bytes, so proptest and cargo-fuzz generate the same language.
fn programs() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(any::<u8>(), 0..1500).prop_map(|b| ops::from_bytes(&b))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_programs_keep_the_invariants(prog in programs(), seed in any::<u64>()) {
        let a = ops::run(&prog, Box::new(Seeded::new(seed)));
        // The same choices give the same run.
        let b = ops::run(&prog, Box::new(Seeded::new(seed)));
        prop_assert_eq!(&a, &b);
    }
}

#[test]
fn a_hand_written_program_runs() {
    use Op::*;
    let prog = vec![
        Invoke { f: 0 },
        SetNew,
        New {
            future: false,
            unit: false,
        },
        Call { f: 1, async_: true },
        CallHost {
            pending: true,
            async_: true,
        },
        Join { wi: 3, si: 1 },
        Copy {
            future: false,
            unit: false,
            read: true,
            i: 1,
            len: 2,
            async_: true,
        },
        Copy {
            future: false,
            unit: false,
            read: false,
            i: 2,
            len: 3,
            async_: true,
        },
        CompleteHost { k: 0, v: 5 },
        SetWait {
            si: 1,
            cancellable: true,
        },
        Run,
        ThreadNew { arg: 3 },
        ResumeLater { i: 2 },
        Yield { cancellable: false },
        SubtaskCancel {
            i: 3,
            async_: false,
        },
        Tick,
        Run,
    ];
    let out = ops::run(&prog, Box::new(Deterministic));
    assert!(out.steps > 0);
}

/// Regression (proptest): a callee traps inside a synchronous call; the
/// caller's in-flight subtask (no handle yet) was left in the store.
#[test]
fn trap_in_sync_callee_frees_the_in_flight_subtask() {
    use Op::*;
    let prog = vec![
        Tick,
        Tick,
        Call {
            f: 4,
            async_: false,
        },
        SetWait {
            si: 0,
            cancellable: false,
        },
    ];
    let out = ops::run(&prog, Box::new(Seeded::new(0)));
    assert_eq!(out.live, 0);
}
