//! A keep-alive server: the host serves requests to a guest handler that
//! sends its response first (`task.return`) and finishes its work after
//! (here: flushing an access log through a host import). The host prints
//! each response as soon as it arrives, and drops each request, with the
//! guest instance that served it, exactly when that instance's live-task
//! count says its work is done: a waker registered with
//! `Store::poll_quiescent_in` fires at that moment.
//!
//! The guest's core code is a small state machine played by the host, one
//! step per action: `Server` implements `canon_async::Host`, and
//! `Host::run` drives the store until it is idle, when the host advances its
//! clock to the next arrival or the next completion of its import.
//!
//! Run with `cargo run --example keepalive`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use canon_async::{
    Error, Event, EventCode, Host, InstanceId, LiftKind, Lifted, LowerCallee, ResultDelivery,
    ResumeValue, Store, SubtaskId, TaskId, ThreadId,
};

/// The core function id of the guest's `handle` export (callback-lifted).
const HANDLE: u32 = 1;
const YIELD: u32 = 1;
const WAIT: u32 = 2;
const EXIT: u32 = 0;

/// A request the host holds until the guest is completely done with it.
struct Request {
    id: u32,
    path: &'static str,
    inst: InstanceId,
    task: TaskId,
    done: Arc<Flag>,
    responded_at: Option<u64>,
}

impl Drop for Request {
    fn drop(&mut self) {
        println!("  [host] request #{} dropped", self.id);
    }
}

/// A waker that raises a flag.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Where the guest's handler is, per thread, between actions.
enum Guest {
    /// Responded and yielded; next: start the log flush.
    Responded,
    /// Called the log-flush import; next: wait for it.
    Flushing,
    /// Waiting on its set for the flush to finish.
    Waiting { set: u32 },
}

/// The host: the store, its clock, the requests it holds and the guest
/// handlers' state.
#[derive(Default)]
struct Server {
    store: Store,
    now: u64,
    requests: BTreeMap<u32, Request>,
    by_task: BTreeMap<TaskId, u32>,
    guests: BTreeMap<ThreadId, (Guest, u32)>,
    /// Host imports in flight: completion time -> subtask.
    flushes: BTreeMap<(u64, u32), SubtaskId>,
    flush_latency: BTreeMap<u32, u64>,
    pending_flush_of: Option<u32>,
}

impl Host for Server {
    type Error = Error;

    fn store(&mut self) -> impl core::ops::DerefMut<Target = Store> + '_ {
        &mut self.store
    }

    fn start(&mut self, thread: ThreadId, task: TaskId, _func: u32) -> Result<(), Error> {
        // Guest: build the response and send it at once.
        let now = self.now;
        let id = self.by_task[&task];
        let path = self.requests[&id].path;
        let status = if path == "/favicon.ico" { 404 } else { 200 };
        match self.store.running()?.task_return()? {
            ResultDelivery::Host(t) => {
                let r = self.requests.get_mut(&self.by_task[&t]).unwrap();
                r.responded_at = Some(now);
                println!(
                    "t={now:>3} response #{id}: {status} for {path} \
                     (guest still working: {} live task(s) in its instance)",
                    self.store.live_tasks_in(r.inst)
                );
            }
            ResultDelivery::Guest(_) => unreachable!(),
        }
        // ... then keep going after a YIELD.
        self.store.callback_returned(YIELD)?;
        self.guests.insert(thread, (Guest::Responded, id));
        Ok(())
    }

    fn callback(&mut self, thread: ThreadId, _: TaskId, _: u32, event: Event) -> Result<(), Error> {
        let (state, id) = self.guests.remove(&thread).expect("a known guest thread");
        match (state, event.code) {
            (Guest::Responded, EventCode::None) => {
                // Guest: flush the access log through a host import.
                self.pending_flush_of = Some(id);
                self.store.running()?.canon_lower(LowerCallee::Host, true)?;
                self.guests.insert(thread, (Guest::Flushing, id));
            }
            (Guest::Waiting { set }, EventCode::Subtask) => {
                assert_eq!(event.payload, 2, "RETURNED");
                self.store.running()?.subtask_drop(event.index)?;
                self.store.running()?.waitable_set_drop(set)?;
                println!("t={:>3} guest #{id}: log flushed, exiting", self.now);
                self.store.callback_returned(EXIT)?;
                self.drop_finished();
            }
            (_, code) => panic!("guest #{id}: unexpected event {code:?}"),
        }
        Ok(())
    }

    fn start_thread(&mut self, _: ThreadId, _: u32, _: u32) -> Result<(), Error> {
        unreachable!("the handler starts no threads")
    }

    fn resume(&mut self, thread: ThreadId, value: ResumeValue) -> Result<(), Error> {
        let ResumeValue::I32(packed) = value else {
            panic!("unexpected resume value {value:?}")
        };
        let (state, id) = self.guests.remove(&thread).expect("a known guest thread");
        assert!(matches!(state, Guest::Flushing));
        let (_, sub) = (packed & 0xf, packed >> 4);
        let set = self.store.running()?.waitable_set_new()?;
        self.store.running()?.waitable_join(sub, set)?;
        self.store.callback_returned(WAIT | (set << 4))?;
        self.guests.insert(thread, (Guest::Waiting { set }, id));
        Ok(())
    }

    fn host_call(&mut self, subtask: SubtaskId) -> Result<(), Error> {
        // Host: the log flush completes after its latency.
        let id = self.pending_flush_of.take().expect("a flush call");
        self.flushes
            .insert((self.now + self.flush_latency[&id], id), subtask);
        Ok(())
    }
}

impl Server {
    /// A request arrives: one guest instance per request, and a waker for
    /// the moment its live-task count reaches zero.
    fn arrive(&mut self, id: u32, path: &'static str, latency: u64) {
        let inst = self.store.new_instance();
        let f = Lifted {
            inst,
            func: HANDLE,
            kind: LiftKind::AsyncCallback,
            async_type: true,
        };
        let task = self.store.invoke(f).expect("invoke");
        let done = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(done.clone());
        let _ = self
            .store
            .poll_quiescent_in(inst, &mut Context::from_waker(&waker));
        println!("t={:>3} request #{id}: GET {path}", self.now);
        self.by_task.insert(task, id);
        self.flush_latency.insert(id, latency);
        self.requests.insert(
            id,
            Request {
                id,
                path,
                inst,
                task,
                done,
                responded_at: None,
            },
        );
    }

    /// Drops every request whose instance has no live task left: its
    /// waker fired exactly when the count reached zero.
    fn drop_finished(&mut self) {
        let now = self.now;
        let finished: Vec<u32> = self
            .requests
            .values()
            .filter(|r| r.done.0.load(Ordering::SeqCst))
            .map(|r| r.id)
            .collect();
        for id in finished {
            let r = self.requests.remove(&id).unwrap();
            assert_eq!(self.store.live_tasks_in(r.inst), 0);
            assert_eq!(self.store.task_state(r.task), None);
            println!(
                "t={now:>3} request #{id} done: responded at t={}, all work finished at t={now} \
                 ({} task(s) still live in the store)",
                r.responded_at.expect("responded before finishing"),
                self.store.live_tasks()
            );
        }
    }
}

fn main() {
    // (arrival time, path, log-flush latency)
    let incoming = [
        (0, "/index.html", 30),
        (5, "/api/users", 10),
        (8, "/favicon.ico", 50),
        (20, "/api/orders", 5),
    ];
    let mut arrivals: Vec<_> = incoming.iter().enumerate().collect();
    arrivals.reverse();
    let mut server = Server::default();
    loop {
        server.run().expect("no trap");
        // Idle: nothing runnable. Advance time to the next arrival or the
        // next host completion.
        let next_arrival = arrivals.last().map(|(_, a)| a.0);
        let next_flush = server.flushes.keys().next().map(|k| k.0);
        match (next_arrival, next_flush) {
            (None, None) => break,
            (Some(a), f) if f.is_none_or(|f| a <= f) => {
                let (i, &(at, path, latency)) = arrivals.pop().unwrap();
                server.now = at;
                server.arrive(i as u32 + 1, path, latency);
            }
            _ => {
                let (&(at, id), &sub) = server.flushes.iter().next().unwrap();
                server.flushes.remove(&(at, id));
                server.now = at;
                server.store.host_return(sub).expect("host_return");
            }
        }
    }
    let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
    assert_eq!(
        server
            .store
            .poll_quiescent(&mut Context::from_waker(&waker)),
        Poll::Ready(())
    );
    assert!(server.requests.is_empty());
    println!(
        "t={:>3} all requests served; the store is quiescent",
        server.now
    );
}
