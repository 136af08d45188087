//! A keep-alive server: the host serves requests to a guest handler that
//! sends its response first (`task.return`) and finishes its work after
//! (here: flushing an access log through a host import). The host prints
//! each response as soon as it arrives, and drops each request, with the
//! guest instance that served it, exactly when that instance's live-task
//! count says its work is done: a waker registered with
//! `Store::poll_quiescent_in` fires at that moment.
//!
//! The embedding is driven by hand: the guest's core code is a small state
//! machine played by the host loop, one step per `Action`.
//!
//! Run with `cargo run --example keepalive`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use canon_async::{
    Action, EventCode, InstanceId, LiftKind, Lifted, LowerCallee, ResultDelivery, ResumeValue,
    Store, SubtaskId, TaskId, ThreadId,
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

fn main() {
    let mut store = Store::new();
    // (arrival time, path, log-flush latency)
    let incoming = [
        (0, "/index.html", 30),
        (5, "/api/users", 10),
        (8, "/favicon.ico", 50),
        (20, "/api/orders", 5),
    ];
    let mut arrivals: Vec<_> = incoming.iter().enumerate().collect();
    arrivals.reverse();
    let mut now = 0u64;
    let mut requests: BTreeMap<u32, Request> = BTreeMap::new();
    let mut by_task: BTreeMap<TaskId, u32> = BTreeMap::new();
    let mut guests: BTreeMap<ThreadId, (Guest, u32)> = BTreeMap::new();
    // Host imports in flight: completion time -> subtask.
    let mut flushes: BTreeMap<(u64, u32), SubtaskId> = BTreeMap::new();
    let mut flush_latency: BTreeMap<u32, u64> = BTreeMap::new();
    let mut pending_flush_of: Option<u32> = None;

    loop {
        match store.next_action() {
            Action::Start { thread, task, .. } => {
                // Guest: build the response and send it at once.
                let id = by_task[&task];
                let path = requests[&id].path;
                let status = if path == "/favicon.ico" { 404 } else { 200 };
                match store.task_return().expect("task.return") {
                    ResultDelivery::Host(t) => {
                        let r = requests.get_mut(&by_task[&t]).unwrap();
                        r.responded_at = Some(now);
                        println!(
                            "t={now:>3} response #{id}: {status} for {path} \
                             (guest still working: {} live task(s) in its instance)",
                            store.live_tasks_in(r.inst)
                        );
                    }
                    ResultDelivery::Guest(_) => unreachable!(),
                }
                // ... then keep going after a YIELD.
                store.callback_returned(YIELD).expect("callback");
                guests.insert(thread, (Guest::Responded, id));
            }
            Action::Callback { thread, event, .. } => {
                let (state, id) = guests.remove(&thread).expect("a known guest thread");
                match (state, event.code) {
                    (Guest::Responded, EventCode::None) => {
                        // Guest: flush the access log through a host import.
                        pending_flush_of = Some(id);
                        store.canon_lower(LowerCallee::Host, true).expect("lower");
                        guests.insert(thread, (Guest::Flushing, id));
                    }
                    (Guest::Waiting { set }, EventCode::Subtask) => {
                        assert_eq!(event.payload, 2, "RETURNED");
                        store.subtask_drop(event.index).expect("subtask.drop");
                        store.waitable_set_drop(set).expect("waitable-set.drop");
                        println!("t={now:>3} guest #{id}: log flushed, exiting");
                        store.callback_returned(EXIT).expect("callback");
                    }
                    (_, code) => panic!("guest #{id}: unexpected event {code:?}"),
                }
            }
            Action::HostCall { subtask } => {
                // Host: the log flush completes after its latency.
                let id = pending_flush_of.take().expect("a flush call");
                flushes.insert((now + flush_latency[&id], id), subtask);
            }
            Action::Resume {
                thread,
                value: ResumeValue::I32(packed),
            } => {
                let (state, id) = guests.remove(&thread).expect("a known guest thread");
                assert!(matches!(state, Guest::Flushing));
                let (_, sub) = (packed & 0xf, packed >> 4);
                let set = store.waitable_set_new().expect("waitable-set.new");
                store.waitable_join(sub, set).expect("waitable.join");
                store
                    .callback_returned(WAIT | (set << 4))
                    .expect("callback");
                guests.insert(thread, (Guest::Waiting { set }, id));
            }
            Action::Idle => {
                // Nothing runnable: advance time to the next arrival or the
                // next host completion.
                let next_arrival = arrivals.last().map(|(_, a)| a.0);
                let next_flush = flushes.keys().next().map(|k| k.0);
                match (next_arrival, next_flush) {
                    (None, None) => break,
                    (Some(a), f) if f.is_none_or(|f| a <= f) => {
                        let (i, &(at, path, latency)) = arrivals.pop().unwrap();
                        now = at;
                        let id = i as u32 + 1;
                        // One guest instance per request.
                        let inst = store.new_instance();
                        let f = Lifted {
                            inst,
                            func: HANDLE,
                            kind: LiftKind::AsyncCallback,
                            async_type: true,
                        };
                        let task = store.invoke(f).expect("invoke");
                        let done = Arc::new(Flag(AtomicBool::new(false)));
                        let waker = Waker::from(done.clone());
                        let _ = store.poll_quiescent_in(inst, &mut Context::from_waker(&waker));
                        println!("t={now:>3} request #{id}: GET {path}");
                        by_task.insert(task, id);
                        flush_latency.insert(id, latency);
                        requests.insert(
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
                    _ => {
                        let (&(at, id), &sub) = flushes.iter().next().unwrap();
                        flushes.remove(&(at, id));
                        now = at;
                        store.host_return(sub).expect("host_return");
                    }
                }
            }
            a => panic!("unexpected action {a:?}"),
        }
        // Drop every request whose instance has no live task left: its
        // waker fired exactly when the count reached zero.
        let finished: Vec<u32> = requests
            .values()
            .filter(|r| r.done.0.load(Ordering::SeqCst))
            .map(|r| r.id)
            .collect();
        for id in finished {
            let r = requests.remove(&id).unwrap();
            assert_eq!(store.live_tasks_in(r.inst), 0);
            assert_eq!(store.task_state(r.task), None);
            println!(
                "t={now:>3} request #{id} done: responded at t={}, all work finished at t={now} \
                 ({} task(s) still live in the store)",
                r.responded_at.expect("responded before finishing"),
                store.live_tasks()
            );
        }
    }
    let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
    assert_eq!(
        store.poll_quiescent(&mut Context::from_waker(&waker)),
        Poll::Ready(())
    );
    assert!(requests.is_empty());
    println!("t={now:>3} all requests served; the store is quiescent");
}
