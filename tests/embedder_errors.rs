//! Embedder misuse is the embedder's error: each call below is out of
//! order or names something that does not exist, returns an
//! [`EmbedderError`], poisons no instance, and leaves the guest's task to
//! finish as if the call had never been made.

use canon_async::{
    Action, ElemClass, ElemType, EmbedderError, EndKind, Error, EventCode, LiftKind, Lifted,
    LowerCallee, ResultDelivery, ResumeValue, Store,
};

const EXIT: u32 = 0;

/// A store with one instance and a callback-lifted task of it started and
/// running (its `Action::Start` taken).
fn running_task() -> (Store, Lifted) {
    let mut s = Store::new();
    let inst = s.new_instance();
    let f = Lifted {
        inst,
        func: 1,
        kind: LiftKind::AsyncCallback,
        async_type: true,
    };
    s.invoke(f).expect("invoke at a tick boundary");
    match s.next_action() {
        Action::Start { .. } => {}
        a => panic!("expected Start, got {a:?}"),
    }
    (s, f)
}

/// The running task returns and exits; the store goes idle with no live
/// task and the instance is not poisoned.
fn finish(mut s: Store, f: Lifted) {
    let task = s.running().expect("still running").task();
    assert!(matches!(
        s.running().unwrap().task_return(),
        Ok(ResultDelivery::Host(t)) if t == task
    ));
    s.callback_returned(EXIT).expect("EXIT");
    assert!(matches!(s.next_action(), Action::Idle));
    assert_eq!(s.live_tasks(), 0);
    assert_eq!(s.task_state(task), None);
    assert!(!s.is_poisoned(f.inst));
}

#[test]
fn a_built_in_with_no_running_thread() {
    let mut s = Store::new();
    let inst = s.new_instance();
    assert_eq!(s.running().err(), Some(EmbedderError::NoRunningThread));
    assert_eq!(
        s.callback_returned(EXIT),
        Err(Error::Embedder(EmbedderError::NoRunningThread))
    );
    assert_eq!(
        s.lift_returned().err(),
        Some(Error::Embedder(EmbedderError::NoRunningThread))
    );
    assert_eq!(
        s.exit_thread(),
        Err(Error::Embedder(EmbedderError::NoRunningThread))
    );
    assert!(!s.is_poisoned(inst));
    assert!(matches!(s.next_action(), Action::Idle));
}

#[test]
fn end_sync_call_inside_an_ordinary_task_poisons_nothing() {
    let (mut s, f) = running_task();
    assert_eq!(
        s.end_sync_call(),
        Err(Error::Embedder(EmbedderError::NotInSyncCall))
    );
    assert_eq!(
        s.end_realloc(),
        Err(Error::Embedder(EmbedderError::NotInSyncCall))
    );
    assert!(!s.is_poisoned(f.inst));
    finish(s, f);
}

#[test]
fn invoke_while_a_thread_runs() {
    let (mut s, f) = running_task();
    assert!(!s.at_tick_boundary());
    assert_eq!(
        s.invoke(f),
        Err(Error::Embedder(EmbedderError::NotAtTickBoundary))
    );
    assert_eq!(s.live_tasks(), 1, "the refused invoke made no task");
    finish(s, f);
}

#[test]
fn invoke_of_an_unknown_instance() {
    let mut s = Store::new();
    let mut other = Store::new();
    let _ = other.new_instance();
    let stranger = other.new_instance();
    let f = Lifted {
        inst: stranger,
        func: 1,
        kind: LiftKind::AsyncCallback,
        async_type: true,
    };
    assert_eq!(s.invoke(f), Err(Error::Embedder(EmbedderError::UnknownId)));
    assert_eq!(s.live_tasks(), 0);
}

#[test]
fn host_return_of_a_stale_or_unfinished_subtask() {
    let (mut s, f) = running_task();
    let sub = s
        .running()
        .unwrap()
        .canon_lower(LowerCallee::Host, true)
        .expect("canon lower");
    match s.next_action() {
        Action::HostCall { subtask } => assert_eq!(subtask, sub),
        a => panic!("expected HostCall, got {a:?}"),
    }
    // The host has not answered: the caller gets STARTED (1) and a handle.
    let handle = match s.next_action() {
        Action::Resume {
            value: ResumeValue::I32(packed),
            ..
        } => {
            assert_eq!(packed & 0xf, 1, "STARTED");
            packed >> 4
        }
        a => panic!("expected the caller resumed, got {a:?}"),
    };
    // Not cancelled, so it cannot be resolved as cancelled.
    assert_eq!(s.host_cancelled(sub), Err(EmbedderError::WrongState));
    s.host_return(sub).expect("the first return");
    // Returned already: a second return is out of order.
    assert_eq!(s.host_return(sub), Err(EmbedderError::WrongState));
    assert!(!s.is_poisoned(f.inst));
    // The subtask lives until the guest has seen its event and dropped its
    // handle; then its id is stale.
    assert!(s.subtask_state(sub).is_some());
    let set = s.running().unwrap().waitable_set_new().unwrap();
    s.running().unwrap().waitable_join(handle, set).unwrap();
    let e = s.running().unwrap().waitable_set_poll(false, set).unwrap();
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::Subtask, handle, 2)
    );
    s.running()
        .unwrap()
        .subtask_drop(handle)
        .expect("subtask.drop");
    s.running().unwrap().waitable_set_drop(set).unwrap();
    assert_eq!(s.subtask_state(sub), None);
    assert_eq!(s.host_return(sub), Err(EmbedderError::UnknownId));
    assert_eq!(s.host_cancelled(sub), Err(EmbedderError::UnknownId));
    finish(s, f);
}

#[test]
fn a_host_end_that_does_not_exist() {
    let mut s = Store::new();
    let elem = ElemType {
        id: 0,
        class: ElemClass::Plain,
        size: 1,
        align: 1,
    };
    let shared = s.host_copy_new(EndKind::Stream, elem);
    s.host_end(shared)
        .expect("the host holds its writable end")
        .drop()
        .expect("drop");
    assert_eq!(s.host_end(shared).err(), Some(EmbedderError::UnknownId));
}
