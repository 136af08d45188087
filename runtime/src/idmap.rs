//! Hash maps keyed by small integer ids (the core's `SubtaskId`, `TaskId`,
//! `ThreadId`, `SharedId`, the store's call numbers): one multiplication
//! per key instead of SipHash. The keys are ids the core or the store
//! hands out (dense, reused), never values a guest chooses, so a keyed
//! hash's protection against chosen collisions buys nothing here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A [`HashMap`] keyed by an integer id.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: the key times an odd constant (Fibonacci
/// hashing), its high half folded into the low one. The low bits, which
/// pick the bucket, then depend on the whole key (dense ids spread evenly,
/// and so do ids that differ only in high bits); the high bits, which
/// hashbrown keeps as the tag, mix in the whole key too.
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::IdMap;

    #[test]
    fn dense_and_sparse_keys() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for k in (0..10_000u64).chain((1..=100u64).map(|i| i << 40)) {
            m.insert(k, k + 1);
        }
        for k in (0..10_000u64).chain((1..=100u64).map(|i| i << 40)) {
            assert_eq!(m.remove(&k), Some(k + 1));
        }
        assert!(m.is_empty());
    }
}
