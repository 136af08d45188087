//! The guest-visible index tables of a component instance.
//!
//! Index 0 is never valid; the most recently freed index is reused first
//! (a LIFO free list), and a table never holds more than [`MAX_LENGTH`]
//! entries. The reference suite checks exact indices, so this policy is
//! the spec's, not an implementation detail.

use alloc::vec::Vec;

use crate::trap::Trap;

/// `Table.MAX_LENGTH` of the spec: `2^28 - 1`.
pub const MAX_LENGTH: u32 = (1 << 28) - 1;

/// A table of guest-visible indices (the spec's `Table`).
#[derive(Debug, Clone)]
pub struct Table<T> {
    array: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Table<T> {
    /// An empty table whose slot 0 is reserved.
    pub fn new() -> Self {
        Table {
            array: core::iter::once(None).collect(),
            free: Vec::new(),
        }
    }

    /// `Table.add`: the most recently freed index, else a new one.
    pub fn add(&mut self, e: T) -> Result<u32, Trap> {
        if let Some(i) = self.free.pop() {
            debug_assert!(self.array[i as usize].is_none());
            self.array[i as usize] = Some(e);
            Ok(i)
        } else {
            let i = self.array.len();
            if i > MAX_LENGTH as usize {
                return Err(Trap::TableFull);
            }
            self.array.push(Some(e));
            Ok(i as u32)
        }
    }

    /// `Table.get`: traps on an out-of-range or empty slot.
    pub fn get(&self, i: u32) -> Result<&T, Trap> {
        self.array
            .get(i as usize)
            .and_then(Option::as_ref)
            .ok_or(Trap::UnknownHandle(i))
    }

    /// Mutable [`Table::get`].
    #[allow(dead_code)]
    pub fn get_mut(&mut self, i: u32) -> Result<&mut T, Trap> {
        self.array
            .get_mut(i as usize)
            .and_then(Option::as_mut)
            .ok_or(Trap::UnknownHandle(i))
    }

    /// `Table.remove`: traps like `get`; the index goes on the free list.
    pub fn remove(&mut self, i: u32) -> Result<T, Trap> {
        let e = self
            .array
            .get_mut(i as usize)
            .and_then(Option::take)
            .ok_or(Trap::UnknownHandle(i))?;
        self.free.push(i);
        Ok(e)
    }

    /// Iterates over the occupied slots with their indices, in index order.
    #[allow(dead_code)]
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.array
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e)))
    }

    /// The number of occupied slots.
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.array.len() - 1 - self.free.len()
    }

    /// Whether no slot is occupied.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_zero_is_never_valid_and_lifo_reuse() {
        let mut t = Table::new();
        assert_eq!(t.get(0), Err(Trap::UnknownHandle(0)));
        assert_eq!(t.add('a'), Ok(1));
        assert_eq!(t.add('b'), Ok(2));
        assert_eq!(t.add('c'), Ok(3));
        assert_eq!(t.remove(1), Ok('a'));
        assert_eq!(t.remove(3), Ok('c'));
        assert_eq!(t.add('d'), Ok(3));
        assert_eq!(t.add('e'), Ok(1));
        assert_eq!(t.add('f'), Ok(4));
        assert_eq!(t.remove(9), Err(Trap::UnknownHandle(9)));
        assert_eq!(t.len(), 4);
    }
}
