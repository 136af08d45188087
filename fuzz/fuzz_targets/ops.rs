//! Random operation programs (`canon_async::ops`) with fuzzed choices, the
//! store's invariants checked after every step.
#![no_main]

use canon_async::{ops, Seeded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seed, rest) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as u64, rest),
        _ => (0, data),
    };
    let prog = ops::from_bytes(rest);
    ops::run(&prog, Box::new(Seeded::new(seed)));
});
