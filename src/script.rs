//! A scripted native host: guest code written as Rust `async` closures,
//! guest memory a `Vec<u8>` per instance. Tests, fuzz targets, examples
//! and benchmarks drive the core through it, using only the public API.
//!
//! A guest thread is a boxed future: a built-in that answers
//! [`Step::Suspend`] makes the future return `Pending` until the host gets
//! [`Action::Resume`] for that thread, which is exactly the continuation
//! an engine would park.
//!
//! ```
//! use canon_async::script::{Script, Ret};
//! use canon_async::LiftKind;
//!
//! let mut s = Script::new();
//! let callee_inst = s.instance();
//! let caller_inst = s.instance();
//! let add = s.func(callee_inst, LiftKind::Sync, false, |_g, args| async move {
//!     Ok(Ret::Values(vec![args[0] + args[1]]))
//! });
//! let main = s.func(caller_inst, LiftKind::AsyncStackful, true, move |g, _| async move {
//!     let r = g.call(add, vec![2, 3]).await?;
//!     g.task_return(r)?;
//!     Ok(Ret::Exit)
//! });
//! let task = s.invoke(main, vec![]).unwrap();
//! s.run().unwrap();
//! assert_eq!(s.host_results(task), Some(vec![5]));
//! ```

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell, RefMut};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{
    Action, Caller, CopyOutcome, ElemClass, ElemType, EndKind, Error, Event, GuestBuf, Host,
    InstanceId, LiftKind, Lifted, LowerCallee, ResourceTypeId, ResultDelivery, ResumeValue,
    Running, Step, Store, SubtaskId, TaskId, ThreadId, ThreadSwitch, Transfer, Trap,
};

/// What a guest core function returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A synchronously lifted function's flat results.
    Values(Vec<u64>),
    /// A callback-lifted function's packed code (`EXIT | YIELD | WAIT | si << 4`).
    Code(u32),
    /// A stackful lift or an explicit thread finished.
    Exit,
}

/// The boxed future of a guest thread.
pub type GuestFuture = Pin<Box<dyn Future<Output = Result<Ret, Trap>>>>;
type Body = Rc<dyn Fn(Guest, Vec<u64>) -> GuestFuture>;
type CallbackBody = Rc<dyn Fn(Guest, Event) -> GuestFuture>;
type Slot = Rc<Cell<Option<ResumeValue>>>;
type HostBody = Rc<dyn Fn(&mut HostCtx<'_>, SubtaskId, Vec<u64>) -> HostAnswer>;

/// What a host function does with a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAnswer {
    /// Return these results at once.
    Return(Vec<u64>),
    /// Stay pending; the test completes it with [`Script::complete_host`].
    Pending,
}

/// A host function's access to the script while it runs.
pub struct HostCtx<'a> {
    /// The store.
    pub store: &'a mut Store,
}

/// How a guest lowers a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sync,
    Async { retptr: u32 },
}

struct Call {
    caller: InstanceId,
    args: Vec<u64>,
    mode: Mode,
    results: Option<Vec<u64>>,
    host: Option<usize>,
}

#[derive(Default)]
struct Io {
    mems: Vec<Vec<u8>>,
    bodies: Vec<(Body, Option<CallbackBody>)>,
    hosts: Vec<HostBody>,
    threads_fns: Vec<Body>,
    calls: BTreeMap<SubtaskId, Call>,
    host_args: BTreeMap<TaskId, Vec<u64>>,
    host_results: BTreeMap<TaskId, Vec<u64>>,
    stream_rts: BTreeMap<u32, ResourceTypeId>,
    pending_host: Option<usize>,
    log: Vec<alloc::string::String>,
}

/// The scripted host. See the [module docs](self).
pub struct Script {
    store: Rc<RefCell<Store>>,
    io: Rc<RefCell<Io>>,
    parked: BTreeMap<ThreadId, (GuestFuture, Slot)>,
    /// Guest memory size of new instances, in bytes.
    pub memory_size: usize,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

/// The guest's view while its code runs: the running thread, its
/// instance's memory, and the built-ins.
#[derive(Clone)]
pub struct Guest {
    store: Rc<RefCell<Store>>,
    io: Rc<RefCell<Io>>,
    thread: ThreadId,
    inst: InstanceId,
    slot: Rc<Cell<Option<ResumeValue>>>,
}

struct ResumeFut(Rc<Cell<Option<ResumeValue>>>);

impl Future for ResumeFut {
    type Output = ResumeValue;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<ResumeValue> {
        match self.0.take() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

impl Script {
    /// A script over a store with the deterministic chooser.
    pub fn new() -> Self {
        Self::with_store(Store::new())
    }

    /// A script over `store` (with the chooser of your choice).
    pub fn with_store(store: Store) -> Self {
        Script {
            store: Rc::new(RefCell::new(store)),
            io: Rc::new(RefCell::new(Io::default())),
            parked: BTreeMap::new(),
            memory_size: 1 << 16,
        }
    }

    /// The store, for assertions and direct calls.
    pub fn store(&self) -> RefMut<'_, Store> {
        self.store.borrow_mut()
    }

    /// A new instance with a zeroed memory of [`Script::memory_size`] bytes.
    pub fn instance(&mut self) -> InstanceId {
        let i = self.store.borrow_mut().new_instance();
        let mut io = self.io.borrow_mut();
        while io.mems.len() <= i.as_u32() as usize {
            io.mems.push(vec![0; self.memory_size]);
        }
        i
    }

    /// Guest memory of `inst`.
    pub fn memory(&self, inst: InstanceId) -> RefMut<'_, Vec<u8>> {
        RefMut::map(self.io.borrow_mut(), |io| {
            &mut io.mems[inst.as_u32() as usize]
        })
    }

    /// Lines the guests logged with [`Guest::log`], in order.
    pub fn log(&self) -> Vec<alloc::string::String> {
        self.io.borrow().log.clone()
    }

    /// Defines a lifted function of `inst` whose core function is `body`.
    pub fn func<F, Fut>(
        &mut self,
        inst: InstanceId,
        kind: LiftKind,
        async_type: bool,
        body: F,
    ) -> Lifted
    where
        F: Fn(Guest, Vec<u64>) -> Fut + 'static,
        Fut: Future<Output = Result<Ret, Trap>> + 'static,
    {
        let body: Body = Rc::new(move |g, a| Box::pin(body(g, a)));
        let mut io = self.io.borrow_mut();
        io.bodies.push((body, None));
        Lifted {
            inst,
            func: (io.bodies.len() - 1) as u32,
            kind,
            async_type,
        }
    }

    /// Defines an async callback-lifted function: `body` is the core
    /// function, `callback` receives each event; both return [`Ret::Code`].
    pub fn callback_func<F, Fut, C, CFut>(
        &mut self,
        inst: InstanceId,
        body: F,
        callback: C,
    ) -> Lifted
    where
        F: Fn(Guest, Vec<u64>) -> Fut + 'static,
        Fut: Future<Output = Result<Ret, Trap>> + 'static,
        C: Fn(Guest, Event) -> CFut + 'static,
        CFut: Future<Output = Result<Ret, Trap>> + 'static,
    {
        let f = self.func(inst, LiftKind::AsyncCallback, true, body);
        let cb: CallbackBody = Rc::new(move |g, e| Box::pin(callback(g, e)));
        self.io.borrow_mut().bodies[f.func as usize].1 = Some(cb);
        f
    }

    /// Defines a host function; returns its id for [`Guest::call_host`].
    pub fn host_fn<F>(&mut self, body: F) -> usize
    where
        F: Fn(&mut HostCtx<'_>, SubtaskId, Vec<u64>) -> HostAnswer + 'static,
    {
        let mut io = self.io.borrow_mut();
        io.hosts.push(Rc::new(body));
        io.hosts.len() - 1
    }

    /// Puts a thread function in the (single, shared) function table used
    /// by `thread.new-indirect`; returns its table index.
    pub fn table_fn<F, Fut>(&mut self, body: F) -> u32
    where
        F: Fn(Guest, Vec<u64>) -> Fut + 'static,
        Fut: Future<Output = Result<Ret, Trap>> + 'static,
    {
        let mut io = self.io.borrow_mut();
        io.threads_fns
            .push(Rc::new(move |g, a| Box::pin(body(g, a))));
        (io.threads_fns.len() - 1) as u32
    }

    /// Declares that stream/future elements of type id `elem` are `own` handles of `rt`.
    pub fn own_elements(&mut self, elem: u32, rt: ResourceTypeId) {
        self.io.borrow_mut().stream_rts.insert(elem, rt);
    }

    /// `Store.invoke` from the host with flat `args`.
    /// As [`Store::invoke`], an invoke while guest code runs is an
    /// [`EmbedderError`](crate::EmbedderError), not a trap.
    pub fn invoke(&mut self, f: Lifted, args: Vec<u64>) -> Result<TaskId, Error> {
        let task = self.store.borrow_mut().invoke(f)?;
        self.io.borrow_mut().host_args.insert(task, args);
        Ok(task)
    }

    /// The results a host-invoked task returned, once it did.
    pub fn host_results(&self, task: TaskId) -> Option<Vec<u64>> {
        self.io.borrow().host_results.get(&task).cloned()
    }

    /// Completes a pending host call with `results` (written through the
    /// caller's out-pointer for an async lower).
    pub fn complete_host(
        &mut self,
        subtask: SubtaskId,
        results: Vec<u64>,
    ) -> Result<(), crate::EmbedderError> {
        self.store.borrow_mut().host_return(subtask)?;
        deliver(&self.io, ResultDelivery::Guest(subtask), results);
        Ok(())
    }

    /// Drives the store until it is idle ([`Host::run`]): `Ok` when nothing
    /// is ready to run (a host-invoked call may still be pending: check the
    /// results), the trap otherwise.
    pub fn run(&mut self) -> Result<(), Trap> {
        let r = Host::run(self);
        if r.is_err() {
            self.forget_dead();
        }
        r
    }

    /// Like [`Script::run`], but an idle store whose `task` did not return
    /// is a deadlock.
    pub fn run_to_completion(&mut self, task: TaskId) -> Result<Vec<u64>, Trap> {
        self.run()?;
        self.host_results(task).ok_or(Trap::Deadlock)
    }

    /// Performs one action ([`Host::dispatch`]).
    pub fn step(&mut self, a: Action) -> Result<(), Trap> {
        match a {
            Action::Trap(_) => Ok(()),
            a => self.dispatch(a),
        }
    }

    fn guest(&mut self, thread: ThreadId) -> Guest {
        let inst = self
            .store
            .borrow()
            .thread_instance(thread)
            .expect("live thread");
        Guest {
            store: self.store.clone(),
            io: self.io.clone(),
            thread,
            inst,
            slot: Rc::new(Cell::new(None)),
        }
    }

    fn poll(
        &mut self,
        thread: ThreadId,
        mut fut: GuestFuture,
        slot: Rc<Cell<Option<ResumeValue>>>,
    ) -> Result<(), Trap> {
        let mut cx = Context::from_waker(futures_task::noop_waker_ref());
        match fut.as_mut().poll(&mut cx) {
            Poll::Pending => {
                self.parked.insert(thread, (fut, slot));
                Ok(())
            }
            Poll::Ready(Ok(ret)) => {
                let r = self.returned(ret);
                if r.is_err() {
                    self.forget_dead();
                }
                r
            }
            Poll::Ready(Err(t)) => {
                let mut store = self.store.borrow_mut();
                if store.current_thread() == Some(thread) {
                    store.wasm_trapped();
                }
                drop(store);
                self.forget_dead();
                Err(t)
            }
        }
    }

    fn returned(&mut self, ret: Ret) -> Result<(), Trap> {
        match ret {
            Ret::Values(vals) => {
                let d = trap_of(self.store.borrow_mut().lift_returned())?;
                deliver(&self.io, d, vals);
                trap_of(self.store.borrow_mut().exit_thread())
            }
            Ret::Code(c) => trap_of(self.store.borrow_mut().callback_returned(c)),
            Ret::Exit => trap_of(self.store.borrow_mut().exit_thread()),
        }
    }

    fn forget_dead(&mut self) {
        let store = self.store.borrow();
        self.parked.retain(|t, _| store.thread_alive(*t));
    }
}

/// The scripted host carries out the core's actions: guest threads are
/// boxed futures, parked while a built-in they called answers
/// [`Step::Suspend`].
impl Host for Script {
    type Error = Trap;

    fn store(&mut self) -> impl core::ops::DerefMut<Target = Store> + '_ {
        self.store.borrow_mut()
    }

    fn start(&mut self, thread: ThreadId, task: TaskId, func: u32) -> Result<(), Trap> {
        let args = {
            let mut io = self.io.borrow_mut();
            match self.store.borrow().task_caller(task) {
                Some(Caller::Guest(s)) => {
                    io.calls.get(&s).map(|c| c.args.clone()).unwrap_or_default()
                }
                _ => io.host_args.remove(&task).unwrap_or_default(),
            }
        };
        let body = self.io.borrow().bodies[func as usize].0.clone();
        let g = self.guest(thread);
        let fut = body(g.clone(), args);
        self.poll(thread, fut, g.slot)
    }

    fn callback(
        &mut self,
        thread: ThreadId,
        _: TaskId,
        func: u32,
        event: Event,
    ) -> Result<(), Trap> {
        let cb = self.io.borrow().bodies[func as usize].1.clone();
        let cb = cb.ok_or_else(|| Trap::Wasm("no callback".into()))?;
        let g = self.guest(thread);
        let fut = cb(g.clone(), event);
        self.poll(thread, fut, g.slot)
    }

    fn start_thread(&mut self, thread: ThreadId, func: u32, arg: u32) -> Result<(), Trap> {
        let body = self.io.borrow().threads_fns.get(func as usize).cloned();
        let body = body.ok_or(Trap::BadFunctionReference)?;
        let g = self.guest(thread);
        let fut = body(g.clone(), vec![arg as u64]);
        self.poll(thread, fut, g.slot)
    }

    fn resume(&mut self, thread: ThreadId, value: ResumeValue) -> Result<(), Trap> {
        let (fut, slot) = self
            .parked
            .remove(&thread)
            .ok_or_else(|| Trap::Wasm("resume of an unparked thread".into()))?;
        slot.set(Some(value));
        self.poll(thread, fut, slot)
    }

    fn host_call(&mut self, subtask: SubtaskId) -> Result<(), Trap> {
        let (h, args) = {
            let mut io = self.io.borrow_mut();
            let h = io.pending_host.take().expect("host call announced");
            let body = io.hosts[h].clone();
            let c = io.calls.get_mut(&subtask).expect("call recorded");
            c.host = Some(h);
            (body, c.args.clone())
        };
        let answer = {
            let mut store = self.store.borrow_mut();
            h(&mut HostCtx { store: &mut store }, subtask, args)
        };
        if let HostAnswer::Return(vals) = answer {
            self.complete_host(subtask, vals)
                .map_err(|_| Trap::Wasm("host_return refused".into()))?;
        }
        Ok(())
    }

    fn host_cancel(&mut self, subtask: SubtaskId) -> Result<(), Trap> {
        let _ = self.store.borrow_mut().host_cancelled(subtask);
        Ok(())
    }
}

/// Hands results to whoever called (the spec's `on_resolve` lowering).
fn deliver(io: &Rc<RefCell<Io>>, d: ResultDelivery, vals: Vec<u64>) {
    let mut io = io.borrow_mut();
    match d {
        ResultDelivery::Host(task) => {
            io.host_results.insert(task, vals);
        }
        ResultDelivery::Guest(s) => {
            let Some(c) = io.calls.get_mut(&s) else {
                return;
            };
            match c.mode {
                Mode::Sync => c.results = Some(vals),
                Mode::Async { retptr } => {
                    let inst = c.caller.as_u32() as usize;
                    for (k, v) in vals.iter().enumerate() {
                        let at = retptr as usize + 4 * k;
                        io.mems[inst][at..at + 4].copy_from_slice(&(*v as u32).to_le_bytes());
                    }
                }
            }
        }
    }
}

impl Guest {
    /// The running thread.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// The guest's instance.
    pub fn instance(&self) -> InstanceId {
        self.inst
    }

    /// The store, for built-ins that never block (drop the guard before awaiting).
    pub fn store(&self) -> RefMut<'_, Store> {
        self.store.borrow_mut()
    }

    /// Appends a line to the script's log.
    pub fn log(&self, line: impl Into<alloc::string::String>) {
        self.io.borrow_mut().log.push(line.into());
    }

    /// Reads a little-endian u32 of guest memory.
    pub fn load_u32(&self, ptr: u32) -> u32 {
        let io = self.io.borrow();
        let m = &io.mems[self.inst.as_u32() as usize];
        let p = ptr as usize;
        u32::from_le_bytes(m[p..p + 4].try_into().expect("4 bytes"))
    }

    /// Writes a little-endian u32 of guest memory.
    pub fn store_u32(&self, ptr: u32, v: u32) {
        let mut io = self.io.borrow_mut();
        let p = ptr as usize;
        io.mems[self.inst.as_u32() as usize][p..p + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Guest memory bytes `[ptr, ptr + len)`.
    pub fn load_bytes(&self, ptr: u32, len: u32) -> Vec<u8> {
        let io = self.io.borrow();
        io.mems[self.inst.as_u32() as usize][ptr as usize..(ptr + len) as usize].to_vec()
    }

    /// Writes guest memory bytes at `ptr`.
    pub fn store_bytes(&self, ptr: u32, bytes: &[u8]) {
        let mut io = self.io.borrow_mut();
        let p = ptr as usize;
        io.mems[self.inst.as_u32() as usize][p..p + bytes.len()].copy_from_slice(bytes);
    }

    async fn block<T>(
        &self,
        step: Result<Step<T>, Trap>,
        f: impl FnOnce(ResumeValue) -> T,
    ) -> Result<T, Trap> {
        match step? {
            Step::Done(v) => Ok(v),
            Step::Suspend => Ok(f(ResumeFut(self.slot.clone()).await)),
        }
    }

    fn lower(
        &self,
        callee: LowerCallee,
        mode: Mode,
        args: Vec<u64>,
        host: Option<usize>,
    ) -> Result<SubtaskId, Trap> {
        self.io.borrow_mut().pending_host = host;
        let s = running(&mut self.store.borrow_mut()).canon_lower(callee, mode != Mode::Sync)?;
        self.io.borrow_mut().calls.insert(
            s,
            Call {
                caller: self.inst,
                args,
                mode,
                results: None,
                host,
            },
        );
        Ok(s)
    }

    async fn finish_call(&self, mode: Mode) -> Result<CallResult, Trap> {
        let v = ResumeFut(self.slot.clone()).await;
        Ok(match (mode, v) {
            (_, ResumeValue::Returned(s)) => {
                let c = self.io.borrow_mut().calls.remove(&s);
                CallResult::Returned(c.and_then(|c| c.results).unwrap_or_default())
            }
            (_, ResumeValue::I32(packed)) => CallResult::Packed(packed),
            (_, ResumeValue::Event { .. }) => CallResult::Packed(u32::MAX),
        })
    }

    /// A synchronous lower of `f` with flat `args`: its results.
    pub async fn call(&self, f: Lifted, args: Vec<u64>) -> Result<Vec<u64>, Trap> {
        self.lower(LowerCallee::Guest(f), Mode::Sync, args, None)?;
        match self.finish_call(Mode::Sync).await? {
            CallResult::Returned(v) => Ok(v),
            CallResult::Packed(_) => {
                Err(Trap::Wasm("sync call resumed with a packed value".into()))
            }
        }
    }

    /// An async lower of `f`: the packed `state | index << 4` (or
    /// `RETURNED`); the results are written at `retptr` as u32s.
    pub async fn call_async(&self, f: Lifted, args: Vec<u64>, retptr: u32) -> Result<u32, Trap> {
        self.lower(LowerCallee::Guest(f), Mode::Async { retptr }, args, None)?;
        match self.finish_call(Mode::Async { retptr }).await? {
            CallResult::Packed(p) => Ok(p),
            CallResult::Returned(_) => Err(Trap::Wasm("async call resumed with results".into())),
        }
    }

    /// A synchronous call of host function `h`.
    pub async fn call_host(&self, h: usize, args: Vec<u64>) -> Result<Vec<u64>, Trap> {
        self.lower(LowerCallee::Host, Mode::Sync, args, Some(h))?;
        match self.finish_call(Mode::Sync).await? {
            CallResult::Returned(v) => Ok(v),
            CallResult::Packed(_) => {
                Err(Trap::Wasm("sync call resumed with a packed value".into()))
            }
        }
    }

    /// An async call of host function `h` (results written at `retptr`).
    pub async fn call_host_async(
        &self,
        h: usize,
        args: Vec<u64>,
        retptr: u32,
    ) -> Result<u32, Trap> {
        self.lower(LowerCallee::Host, Mode::Async { retptr }, args, Some(h))?;
        match self.finish_call(Mode::Async { retptr }).await? {
            CallResult::Packed(p) => Ok(p),
            CallResult::Returned(_) => Err(Trap::Wasm("async call resumed with results".into())),
        }
    }

    /// `task.return` with flat results.
    pub fn task_return(&self, vals: Vec<u64>) -> Result<(), Trap> {
        let d = running(&mut self.store.borrow_mut()).task_return()?;
        deliver(&self.io, d, vals);
        Ok(())
    }

    /// `waitable-set.wait`: the event; its payload is also stored at `ptr`.
    pub async fn wait(&self, cancellable: bool, si: u32, ptr: u32) -> Result<Event, Trap> {
        let step = running(&mut self.store.borrow_mut()).waitable_set_wait(cancellable, si, ptr);
        let e = self
            .block(step, |v| match v {
                ResumeValue::Event { event, .. } => event,
                _ => Event {
                    code: crate::EventCode::None,
                    index: u32::MAX,
                    payload: u32::MAX,
                },
            })
            .await?;
        self.store_bytes(ptr, &e.payload_bytes());
        Ok(e)
    }

    /// `waitable-set.poll`: the event; its payload is also stored at `ptr`.
    pub fn poll(&self, cancellable: bool, si: u32, ptr: u32) -> Result<Event, Trap> {
        let e = running(&mut self.store.borrow_mut()).waitable_set_poll(cancellable, si)?;
        self.store_bytes(ptr, &e.payload_bytes());
        Ok(e)
    }

    fn i32_of(v: ResumeValue) -> u32 {
        match v {
            ResumeValue::I32(x) => x,
            _ => u32::MAX,
        }
    }

    /// `thread.yield`: `Cancelled`.
    pub async fn yield_(&self, cancellable: bool) -> Result<u32, Trap> {
        let s = running(&mut self.store.borrow_mut()).thread_yield(cancellable);
        self.block(s, Self::i32_of).await
    }

    /// `thread.suspend`: `Cancelled`.
    pub async fn suspend(&self, cancellable: bool) -> Result<u32, Trap> {
        let s = running(&mut self.store.borrow_mut()).thread_suspend(cancellable);
        self.block(s, Self::i32_of).await
    }

    /// A switch built-in (`thread.suspend-then-resume`,
    /// `thread.yield-then-resume`, `thread.suspend-then-promote`,
    /// `thread.yield-then-promote`): `Cancelled`.
    pub async fn switch(&self, kind: ThreadSwitch, cancellable: bool, i: u32) -> Result<u32, Trap> {
        let s = running(&mut self.store.borrow_mut()).thread_switch(kind, cancellable, i);
        self.block(s, Self::i32_of).await
    }

    /// `subtask.cancel`: the subtask state, or `BLOCKED`.
    pub async fn subtask_cancel(&self, async_: bool, i: u32) -> Result<u32, Trap> {
        let s = running(&mut self.store.borrow_mut()).subtask_cancel(async_, i);
        self.block(s, Self::i32_of).await
    }

    /// A stream or future read (`readable`) or write on handle `i`, with
    /// the buffer at `ptr` of `len` elements in this instance's memory; the
    /// elements move through guest memory as the core's [`Transfer`] says.
    #[allow(clippy::too_many_arguments)]
    pub async fn copy(
        &self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
        ptr: u32,
        len: u32,
    ) -> Result<u32, Trap> {
        let mem_size = self.io.borrow().mems[self.inst.as_u32() as usize].len() as u64;
        let buf = GuestBuf {
            mem: self.inst.as_u32(),
            ptr,
            len,
            mem_size,
        };
        let CopyOutcome { step, transfer } =
            running(&mut self.store.borrow_mut()).copy(kind, readable, elem, async_, i, buf)?;
        if let Some(t) = transfer {
            apply_transfer(&self.store, &self.io, t)?;
        }
        self.block(Ok(step), Self::i32_of).await
    }

    /// `stream.cancel-*` / `future.cancel-*`.
    pub async fn cancel_copy(
        &self,
        kind: EndKind,
        readable: bool,
        elem: ElemType,
        async_: bool,
        i: u32,
    ) -> Result<u32, Trap> {
        let s = running(&mut self.store.borrow_mut()).cancel_copy(kind, readable, elem, async_, i);
        self.block(s, Self::i32_of).await
    }
}

/// The running thread of a store the script host drives: a script guest
/// calls built-ins only while its own thread runs, so there always is one
/// (panics otherwise: a bug of the test kit, not a trap).
pub fn running(store: &mut Store) -> Running<'_> {
    store
        .running()
        .expect("a script guest calls built-ins only while its thread runs")
}

/// The trap of an embedder call the script host makes: its calls never
/// misuse the store, so an [`EmbedderError`](crate::EmbedderError) is a
/// bug of the test kit (it panics), never a trap.
pub fn trap_of<T>(r: Result<T, Error>) -> Result<T, Trap> {
    r.map_err(|e| match e {
        Error::Trap(t) => t,
        Error::Embedder(e) => panic!("the script host misused the store: {e}"),
    })
}

/// Moves the elements of a rendezvous between guest memories.
pub fn apply_transfer_to(
    mems: &mut [Vec<u8>],
    store: &mut Store,
    t: Transfer,
    own_rt: Option<ResourceTypeId>,
) -> Result<(), Trap> {
    let bytes = (t.count * t.elem.size) as usize;
    if t.elem.class == ElemClass::None {
        return Ok(());
    }
    let (Some((src_inst, src_ptr)), Some((dst_inst, dst_ptr))) = (t.src.guest(), t.dst.guest())
    else {
        return Err(Trap::Wasm(
            "a host end's elements move through the host's own buffer".into(),
        ));
    };
    match t.elem.class {
        ElemClass::None => Ok(()),
        ElemClass::Number | ElemClass::Plain => {
            let (s, d) = (src_inst.as_u32() as usize, dst_inst.as_u32() as usize);
            let (sp, dp) = (src_ptr as usize, dst_ptr as usize);
            if s == d {
                mems[s].copy_within(sp..sp + bytes, dp);
            } else {
                let chunk = mems[s][sp..sp + bytes].to_vec();
                mems[d][dp..dp + bytes].copy_from_slice(&chunk);
            }
            Ok(())
        }
        ElemClass::Lifted => {
            let rt =
                own_rt.ok_or_else(|| Trap::Wasm("no resource type for the elements".into()))?;
            for k in 0..t.count as usize {
                let sp = src_ptr as usize + 4 * k;
                let dp = dst_ptr as usize + 4 * k;
                let h = u32::from_le_bytes(
                    mems[src_inst.as_u32() as usize][sp..sp + 4]
                        .try_into()
                        .expect("4"),
                );
                let rep = store.lift_own(src_inst, rt, h)?;
                let nh = store.lower_own(dst_inst, rt, rep)?;
                mems[dst_inst.as_u32() as usize][dp..dp + 4].copy_from_slice(&nh.to_le_bytes());
            }
            Ok(())
        }
    }
}

fn apply_transfer(
    store: &Rc<RefCell<Store>>,
    io: &Rc<RefCell<Io>>,
    t: Transfer,
) -> Result<(), Trap> {
    let mut io = io.borrow_mut();
    let rt = io.stream_rts.get(&t.elem.id).copied();
    apply_transfer_to(&mut io.mems, &mut store.borrow_mut(), t, rt)
}

/// How a lowered call resumed.
enum CallResult {
    Returned(Vec<u64>),
    Packed(u32),
}
