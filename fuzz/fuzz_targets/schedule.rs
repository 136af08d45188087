//! One fixed program, fuzzed choices: the input bytes are the choices the
//! store's chooser makes (each reduced modulo the number of candidates),
//! the first candidate after they run out. The invariants are checked
//! after every step.
#![no_main]

use canon_async::ops::{self, Op};
use canon_async::{Deterministic, Replay};
use libfuzzer_sys::fuzz_target;

fn program() -> Vec<Op> {
    use Op::*;
    vec![
        Invoke { f: 0 },
        SetNew,
        New {
            future: false,
            unit: false,
        },
        Call { f: 5, async_: true },
        Call { f: 4, async_: true },
        CallHost {
            pending: true,
            async_: true,
        },
        Join { wi: 4, si: 1 },
        Join { wi: 5, si: 1 },
        Copy {
            future: false,
            unit: false,
            read: true,
            i: 2,
            len: 2,
            async_: true,
        },
        Yield { cancellable: true },
        Copy {
            future: false,
            unit: false,
            read: false,
            i: 3,
            len: 3,
            async_: true,
        },
        ThreadNew { arg: 1 },
        ResumeLater { i: 2 },
        Backpressure { inc: true },
        Yield { cancellable: false },
        CompleteHost { k: 0, v: 5 },
        Backpressure { inc: false },
        SetWait {
            si: 1,
            cancellable: true,
        },
        CancelCopy {
            future: false,
            unit: false,
            read: true,
            i: 2,
            async_: true,
        },
        SubtaskCancel { i: 4, async_: true },
        Switch {
            i: 1,
            yield_: true,
            promote: true,
            cancellable: false,
        },
        Tick,
        Invoke { f: 1 },
        Yield { cancellable: false },
        SetPoll {
            si: 1,
            cancellable: false,
        },
        DropEnd {
            future: false,
            unit: false,
            read: false,
            i: 3,
        },
        TaskReturn,
        Run,
    ]
}

fuzz_target!(|data: &[u8]| {
    let choices: Vec<usize> = data.iter().map(|&b| b as usize).collect();
    ops::run(&program(), Box::new(Replay::new(choices, Deterministic)));
});
