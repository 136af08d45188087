//! Plain-data copies between two linear memories of one store in one pass.
//!
//! wasmi lends one memory at a time (`Memory::data_mut` borrows the whole
//! store), so safe code can move bytes from one memory to another only
//! through a buffer of its own: two copies. wasmi itself can do it in one:
//! a core module that imports both memories and runs `memory.copy` from
//! one to the other (the multi-memory proposal, on by default in wasmi).
//! [`Copiers`] keeps one such helper instance per pair of memories (per
//! pair of the stream and future built-ins' option ids, which name them),
//! made on first use. Where it cannot be made (a 64-bit memory, a custom
//! page size, an engine without multi-memory), or a call
//! of it fails (the wasm call stack is full), the caller falls back to its
//! two-copy path; what lands in memory is the same either way.

use wasmi::{AsContextMut, Extern, Instance, Memory, Module, StoreContextMut, TypedFunc};

use crate::idmap::IdMap;

/// `(module (import "" "d" (memory 0)) (import "" "s" (memory 0))
///   (func (export "copy") (param i32 i32 i32)
///     (memory.copy 0 1 (local.get 0) (local.get 1) (local.get 2))))`,
/// encoded by hand (the runtime has no text-format dependency).
const COPIER: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // type: (i32 i32 i32) -> ()
    0x02, 0x0d, 0x02, // imports: 2
    0x00, 0x01, b'd', 0x02, 0x00, 0x00, // "" "d" (memory 0)
    0x00, 0x01, b's', 0x02, 0x00, 0x00, // "" "s" (memory 0)
    0x03, 0x02, 0x01, 0x00, // functions: type 0
    0x07, 0x08, 0x01, 0x04, b'c', b'o', b'p', b'y', 0x00, 0x00, // export "copy"
    0x0a, 0x0e, 0x01, 0x0c, 0x00, // code: one body of 12 bytes, no locals
    0x20, 0x00, 0x20, 0x01, 0x20, 0x02, // local.get 0, 1, 2
    0xfc, 0x0a, 0x00, 0x01, // memory.copy (dst memory 0) (src memory 1)
    0x0b, // end
];

type CopyFn = TypedFunc<(i32, i32, i32), ()>;

/// The fuel a helper call runs on (far more than any copy of a 32-bit
/// memory costs).
const HELPER_FUEL: u64 = 1 << 48;

/// The store's helper instances, by (source, destination) key.
#[derive(Default)]
pub(crate) struct Copiers {
    /// The compiled helper module: `None` until first needed, then
    /// `Some(None)` if the engine rejected it.
    module: Option<Option<Module>>,
    by_pair: IdMap<(u32, u32), Option<CopyFn>>,
}

impl Copiers {
    /// Copies `len` bytes from `src[src_at..]` to `dst[dst_at..]` (two
    /// distinct memories, both ranges already checked to be in bounds) in
    /// one pass, with the helper instance kept under `key`. `false` when
    /// there is no helper for these memories or its call failed: nothing
    /// was written then. The store's fuel, if metered, is as before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy<T>(
        &mut self,
        ctx: &mut StoreContextMut<'_, T>,
        key: (u32, u32),
        src: Memory,
        src_at: u32,
        dst: Memory,
        dst_at: u32,
        len: u32,
    ) -> bool {
        let Some(f) = self.helper(ctx, key, src, dst) else {
            return false;
        };
        // The helper's instructions are not the guest's: with fuel metered,
        // it runs on fuel of its own and the guest's is put back after.
        let fuel = ctx.get_fuel().ok();
        if fuel.is_some() && ctx.set_fuel(HELPER_FUEL).is_err() {
            return false;
        }
        let r = f.call(&mut *ctx, (dst_at as i32, src_at as i32, len as i32));
        if let Some(fuel) = fuel {
            let _ = ctx.set_fuel(fuel);
        }
        r.is_ok()
    }

    fn helper<T>(
        &mut self,
        ctx: &mut StoreContextMut<'_, T>,
        key: (u32, u32),
        src: Memory,
        dst: Memory,
    ) -> Option<CopyFn> {
        if let Some(f) = self.by_pair.get(&key) {
            return *f;
        }
        let module = self
            .module
            .get_or_insert_with(|| Module::new(ctx.engine(), COPIER).ok())
            .clone();
        let f = module.and_then(|m| {
            let inst = Instance::new(
                ctx.as_context_mut(),
                &m,
                &[Extern::Memory(dst), Extern::Memory(src)],
            )
            .ok()?;
            inst.get_typed_func::<(i32, i32, i32), ()>(&*ctx, "copy")
                .ok()
        });
        self.by_pair.insert(key, f);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::Copiers;
    use wasmi::{AsContextMut, Engine, Memory, MemoryType, Store};

    #[test]
    fn copies_between_two_memories() {
        let mut config = wasmi::Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let mut store = Store::new(&engine, ());
        store.set_fuel(1_000).unwrap();
        let a = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        let b = Memory::new(&mut store, MemoryType::new(2, None)).unwrap();
        for (i, x) in a.data_mut(&mut store).iter_mut().enumerate() {
            *x = (i % 251) as u8;
        }
        let mut c = Copiers::default();
        let mut ctx = store.as_context_mut();
        assert!(c.copy(&mut ctx, (0, 1), a, 100, b, 70_000, 60_000));
        // The same pair again: the helper kept.
        assert!(c.copy(&mut ctx, (0, 1), a, 0, b, 0, 10));
        assert_eq!(store.get_fuel().unwrap(), 1_000);
        let (da, db) = (a.data(&store), b.data(&store));
        assert_eq!(&db[70_000..130_000], &da[100..60_100]);
        assert_eq!(&db[..10], &da[..10]);
        assert!(db[10..70_000].iter().all(|&x| x == 0));
        assert!(db[130_000..].iter().all(|&x| x == 0));
    }

    #[test]
    fn no_helper_for_a_custom_page_size() {
        let engine = Engine::default();
        let mut store = Store::new(&engine, ());
        let a = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        let mut ty = MemoryType::builder();
        ty.min(100).page_size_log2(0);
        let b = Memory::new(&mut store, ty.build().unwrap()).unwrap();
        let mut c = Copiers::default();
        let mut ctx = store.as_context_mut();
        assert!(!c.copy(&mut ctx, (0, 1), a, 0, b, 0, 10));
    }
}
