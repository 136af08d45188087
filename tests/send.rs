//! A `Store` is `Send`: a server's worker pool can move it between threads.

use canon_async::{Action, LiftKind, Lifted, ResultDelivery, Seeded, Store};

#[test]
fn a_store_moves_to_another_thread_mid_call() {
    let mut store = Store::with_chooser(Box::new(Seeded::new(3)));
    let inst = store.new_instance();
    let f = Lifted {
        inst,
        func: 1,
        kind: LiftKind::AsyncCallback,
        async_type: true,
    };
    let task = store.invoke(f).unwrap();
    let Action::Start { func: 1, .. } = store.next_action() else {
        panic!("expected the start of the callee")
    };
    // The call is half-way through (its thread runs) when the store moves.
    let mut store = std::thread::spawn(move || {
        assert_eq!(
            store.running().unwrap().task_return().unwrap(),
            ResultDelivery::Host(task)
        );
        store.callback_returned(0).unwrap();
        store
    })
    .join()
    .unwrap();
    assert_eq!(store.next_action(), Action::Idle);
    assert_eq!(store.live_tasks(), 0);
}
