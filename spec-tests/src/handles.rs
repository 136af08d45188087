//! Interim per-instance handle table for resources, used until the core
//! crate offers `resource.new/rep/drop` through its own table.
//!
//! Follows the spec's allocation policy: index 0 is never valid, and the
//! most recently freed index is reused first.

use crate::abi::types::ResId;
use crate::error::Trap;

/// Largest number of entries a table may hold.
pub const MAX_LENGTH: usize = (1 << 28) - 1;

/// A resource handle in a component instance's table.
#[derive(Debug, Clone)]
pub struct ResourceHandle {
    pub rt: ResId,
    pub rep: u32,
    pub own: bool,
    /// The call (task) that lent this borrow, for borrows.
    pub borrow_scope: Option<usize>,
    /// How many calls currently borrow this own handle.
    pub num_lends: u32,
}

/// A handle table.
#[derive(Debug, Default)]
pub struct HandleTable {
    array: Vec<Option<ResourceHandle>>,
    free: Vec<u32>,
}

fn unknown(i: u32) -> Trap {
    Trap::new(format!("unknown handle index {i}"))
}

impl HandleTable {
    /// Adds an entry and returns its index.
    pub fn add(&mut self, h: ResourceHandle) -> Result<u32, Trap> {
        if self.array.is_empty() {
            self.array.push(None);
        }
        if let Some(i) = self.free.pop() {
            self.array[i as usize] = Some(h);
            return Ok(i);
        }
        let i = self.array.len();
        if i > MAX_LENGTH {
            return Err(Trap::new("handle table full"));
        }
        self.array.push(Some(h));
        Ok(i as u32)
    }

    /// The entry at `i`.
    pub fn get(&self, i: u32) -> Result<&ResourceHandle, Trap> {
        match self.array.get(i as usize) {
            Some(Some(h)) if i != 0 => Ok(h),
            _ => Err(unknown(i)),
        }
    }

    /// The entry at `i`, mutably.
    pub fn get_mut(&mut self, i: u32) -> Result<&mut ResourceHandle, Trap> {
        match self.array.get_mut(i as usize) {
            Some(Some(h)) if i != 0 => Ok(h),
            _ => Err(unknown(i)),
        }
    }

    /// Removes the entry at `i`.
    pub fn remove(&mut self, i: u32) -> Result<ResourceHandle, Trap> {
        self.get(i)?;
        let h = self.array[i as usize].take().ok_or_else(|| unknown(i))?;
        self.free.push(i);
        Ok(h)
    }
}

/// The trap for a handle of the wrong resource type.
pub fn wrong_type(i: u32) -> Trap {
    Trap::new(format!(
        "handle index {i} used with the wrong type, expected guest-defined resource but found a different guest-defined resource"
    ))
}
