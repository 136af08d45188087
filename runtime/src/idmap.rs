//! Hash maps keyed by small integer ids (the core's `SubtaskId`, `TaskId`,
//! `ThreadId`, `SharedId`, the store's call numbers), on `rustc-hash`'s
//! multiply-and-rotate hasher instead of SipHash. The keys are ids the core
//! or the store hands out (dense, reused), never values a guest chooses, so
//! a keyed hash's protection against chosen collisions buys nothing here.

/// A hash map keyed by an integer id.
pub type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;
