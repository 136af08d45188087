//! Stream scenarios after the reference's `run_tests.py` (eager
//! completion, async ops, forwarding, receiving one's own stream, host
//! partial reads and writes, wasm-to-wasm with and without payload, cancel,
//! self copies), driven by hand through the `Store` API with host ends for
//! the reference's `HostSource` / `HostSink`. Every transfer is applied to
//! the guest memories, and the tests check the bytes.
//!
//! Where the reference's host objects behave in a way a host end does not
//! (a `HostSource` that reports DROPPED together with its last elements),
//! the scenario does the same thing in the steps a host end takes, and the
//! comment says so.

#[path = "streams/harness.rs"]
mod harness;

use canon_async::{CopyResult, CopyState, Event, EventCode, Reading, Step, TransferEnd};
use harness::*;

/// `test_eager_stream_completion`: host-backed streams where async and
/// sync reads and writes complete in the call itself.
#[test]
fn eager_stream_completion() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    // The host passes in a source stream with 4 bytes ready.
    let src = h.s.host_copy_new(S, U8);
    let rsi1 = h.s.lower_end(inst, src).unwrap();
    assert_eq!(rsi1, 1);
    assert_eq!(h.host_write(src, U8, &[1, 2, 3, 4]).done, None);
    // The guest returns a fresh stream, which the host reads (a sink with room for 4).
    let (rsi2, wsi2) = h.new_ends(S, U8);
    assert_eq!((rsi2, wsi2), (2, 3));
    let sink = h.s.lift_end(inst, S, U8, rsi2).unwrap();
    h.adopt(sink);
    assert_eq!(h.host_read(sink, 4).done, None);

    assert_eq!(h.read(rsi1, 0, 4), packed(COMPLETED, 4));
    assert_eq!(&h.m()[0..4], &[1, 2, 3, 4]);
    assert_eq!(
        h.s.host_end(src).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 4)
    );

    h.m()[0..4].copy_from_slice(&[11, 12, 13, 14]);
    assert_eq!(h.write(wsi2, 0, 4), packed(COMPLETED, 4));
    assert_eq!(
        h.s.host_end(sink).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 4)
    );
    assert_eq!(h.received(sink), vec![11, 12, 13, 14]);

    // Synchronous reads and writes complete without blocking too.
    let _ = h.host_write(src, U8, &[5, 6, 7, 8]);
    assert_eq!(
        h.try_copy(S, true, U8, false, rsi1, 0, 4),
        Ok(Step::Done(packed(COMPLETED, 4)))
    );
    assert_eq!(&h.m()[0..4], &[5, 6, 7, 8]);
    assert_eq!(
        h.s.host_end(src).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 4)
    );
    let _ = h.host_read(sink, 4);
    h.m()[0..4].copy_from_slice(&[15, 16, 17, 18]);
    assert_eq!(
        h.try_copy(S, false, U8, false, wsi2, 0, 4),
        Ok(Step::Done(packed(COMPLETED, 4)))
    );
    assert_eq!(
        h.s.host_end(sink).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 4)
    );
    assert_eq!(h.received(sink), vec![11, 12, 13, 14, 15, 16, 17, 18]);

    // The source ends (the reference's HostSource says DROPPED along with
    // its last bytes; a host end drops after its last write completed).
    h.s.host_end(src).and_then(|e| e.drop()).unwrap();
    assert_eq!(h.read(rsi1, 0, 4), packed(DROPPED, 0));
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi1)
        .unwrap();
    h.s.running()
        .unwrap()
        .stream_drop_writable(U8, wsi2)
        .unwrap();
    assert_eq!(h.host_read(sink, 4).done, done(CopyResult::Dropped, 0));
    assert_eq!(
        h.s.host_end(sink).ok().map(|e| e.state()),
        Some(CopyState::Done)
    );
    h.s.host_end(sink).and_then(|e| e.drop()).unwrap();
    assert_eq!(h.s.host_end(sink).ok().map(|e| e.state()), None);
    h.finish();
    h.idle();
}

/// `test_async_stream_ops`: BLOCKED reads and writes, then events with
/// packed payloads; DROPPED; leaving a set with `join(w, 0)`; a sync read
/// of a dropped stream.
#[test]
fn async_stream_ops() {
    let mut h = H::new();
    let inst = h.instance();
    let t = h.start(inst, 0);
    let src = h.s.host_copy_new(S, U8);
    let rsi1 = h.s.lower_end(inst, src).unwrap();
    assert_eq!(h.read(rsi1, 0, 4), B);
    assert_eq!(
        h.s.host_end(src).ok().and_then(|e| e.peer_waiting()),
        Some(4)
    );
    // The host writes while the guest waits: the bytes land at once.
    let c = h.host_write(src, U8, &[1, 2, 3, 4]);
    assert_eq!(c.done, done(CopyResult::Completed, 4));
    assert_eq!(&h.mem[&inst][0..4], &[1, 2, 3, 4]);
    let seti = h.set_new();
    assert_eq!(seti, 2);
    h.join(rsi1, seti);
    assert_eq!(
        h.wait_now(seti),
        Event {
            code: EventCode::StreamRead,
            index: rsi1,
            payload: packed(COMPLETED, 4)
        }
    );

    // A write to a host that is not reading blocks until it reads.
    let (rsi3, wsi3) = h.new_ends(S, U8);
    assert_eq!((rsi3, wsi3), (3, 4));
    let sink = h.s.lift_end(inst, S, U8, rsi3).unwrap();
    h.adopt(sink);
    h.m()[8..12].copy_from_slice(&[21, 22, 23, 24]);
    assert_eq!(h.write(wsi3, 8, 4), B);
    assert_eq!(
        h.s.host_end(sink).ok().and_then(|e| e.peer_waiting()),
        Some(4)
    );
    assert_eq!(h.host_read(sink, 100).done, done(CopyResult::Completed, 4));
    assert_eq!(h.received(sink), vec![21, 22, 23, 24]);
    h.join(wsi3, seti);
    assert_eq!(
        h.wait_now(seti),
        Event {
            code: EventCode::StreamWrite,
            index: wsi3,
            payload: packed(COMPLETED, 4)
        }
    );

    // The guest blocks in `waitable-set.wait` until the host writes.
    assert_eq!(h.read(rsi1, 0, 4), B);
    assert_eq!(h.wait_blocked(seti), Step::Suspend);
    h.idle();
    let _ = h.host_write(src, U8, &[5, 6, 7, 8]);
    let e = h.resumed_event(t);
    assert_eq!((e.index, e.payload), (rsi1, packed(COMPLETED, 4)));
    assert_eq!(&h.mem[&inst][0..4], &[5, 6, 7, 8]);

    // The host's source ends while the guest reads: DROPPED, then DONE.
    assert_eq!(h.read(rsi1, 0, 4), B);
    h.s.host_end(src).and_then(|e| e.drop()).unwrap();
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.payload),
        (EventCode::StreamRead, packed(DROPPED, 0))
    );
    h.join(rsi1, 0);
    // A synchronous read outside the set: already notified, it traps
    // (see the trap tests); here the other stream: sync write after the
    // host dropped its sink returns DROPPED.
    h.join(wsi3, 0);
    h.s.host_end(sink).and_then(|e| e.drop()).unwrap();
    assert_eq!(
        h.try_copy(S, false, U8, false, wsi3, 8, 4),
        Ok(Step::Done(packed(DROPPED, 0)))
    );
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi1)
        .unwrap();
    h.s.running()
        .unwrap()
        .stream_drop_writable(U8, wsi3)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(seti).unwrap();
    h.finish();
    h.idle();
}

/// `test_stream_forward`: a readable end received is passed on unchanged;
/// the host forwards it to another guest without copying anything.
#[test]
fn stream_forward() {
    let mut h = H::new();
    let a = h.instance();
    let b = h.instance();
    let src = h.s.host_copy_new(S, U8);
    h.start(a, 1);
    let rsi = h.s.lower_end(a, src).unwrap();
    assert_eq!(rsi, 1);
    // `a` returns its argument: the same shared stream comes out.
    let out = h.s.lift_end(a, S, U8, rsi).unwrap();
    assert_eq!(out, src);
    h.finish();
    h.idle();
    // The host hands it to `b`, whose reads meet the host's writes directly.
    h.start(b, 2);
    let rb = h.s.lower_end(b, out).unwrap();
    assert_eq!(rb, 1);
    let _ = h.host_write(src, U8, &[9, 8, 7, 6]);
    assert_eq!(h.read(rb, 4, 8), packed(COMPLETED, 4));
    assert_eq!(&h.mem[&b][4..8], &[9, 8, 7, 6]);
    assert_eq!(&h.mem[&a][..], &[0; MEM][..]);
    // Exactly one transfer: host to `b`.
    assert_eq!(h.transfers.len(), 1);
    assert!(matches!(h.transfers[0].src, TransferEnd::Host { .. }));
    assert_eq!(h.transfers[0].dst.guest(), Some((b, 4)));
    h.finish();
}

/// `test_receive_own_stream`: a guest's own readable end goes out through
/// the host and comes back at the same index; a sync cancel of the blocked
/// write gives CANCELLED with no progress.
#[test]
fn receive_own_stream() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    let (rsi, wsi) = h.new_ends(S, U8);
    assert_eq!((rsi, wsi), (1, 2));
    assert_eq!(h.write(wsi, 0, 4), B);
    let s = h.s.lift_end(inst, S, U8, rsi).unwrap();
    let rsi2 = h.s.lower_end(inst, s).unwrap();
    assert_eq!(rsi2, 1);
    assert_eq!(
        h.s.running().unwrap().stream_cancel_write(U8, false, wsi),
        Ok(Step::Done(packed(CANCELLED, 0)))
    );
    h.s.running()
        .unwrap()
        .stream_drop_writable(U8, wsi)
        .unwrap();
    // The reader sees the writer gone.
    assert_eq!(h.read(rsi2, 0, 4), packed(DROPPED, 0));
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi2)
        .unwrap();
    h.finish();
}

/// `test_host_partial_reads_writes`: a host source that gives 2 bytes at
/// a time, and a host sink with room for 2, then 4.
#[test]
fn host_partial_reads_writes() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    let src = h.s.host_copy_new(S, U8);
    let rsi = h.s.lower_end(inst, src).unwrap();
    assert_eq!(rsi, 1);
    let _ = h.host_write(src, U8, &[1, 2]);
    assert_eq!(h.read(rsi, 0, 4), packed(COMPLETED, 2));
    assert_eq!(&h.m()[0..2], &[1, 2]);
    assert_eq!(
        h.s.host_end(src).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 2)
    );
    let _ = h.host_write(src, U8, &[3, 4]);
    assert_eq!(h.read(rsi, 0, 4), packed(COMPLETED, 2));
    assert_eq!(&h.m()[0..2], &[3, 4]);
    assert_eq!(
        h.s.host_end(src).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 2)
    );
    // Nothing offered: the guest blocks; the host writes 2 later.
    assert_eq!(h.read(rsi, 0, 4), B);
    assert_eq!(
        h.host_write(src, U8, &[5, 6]).done,
        done(CopyResult::Completed, 2)
    );
    let seti = h.set_new();
    h.join(rsi, seti);
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamRead, rsi, packed(COMPLETED, 2))
    );
    assert_eq!(&h.m()[0..2], &[5, 6]);
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi)
        .unwrap();

    // The sink: the host reads 2 of a 6-byte write, then 4 of the rest.
    let (rsi, wsi) = h.new_ends(S, U8);
    assert_eq!((rsi, wsi), (1, 3));
    let sink = h.s.lift_end(inst, S, U8, rsi).unwrap();
    h.adopt(sink);
    assert_eq!(h.host_read(sink, 2).done, None);
    h.m()[0..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    assert_eq!(h.write(wsi, 0, 6), packed(COMPLETED, 2));
    assert_eq!(
        h.s.host_end(sink).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 2)
    );
    assert_eq!(h.write(wsi, 2, 4), B);
    assert_eq!(h.host_read(sink, 4).done, done(CopyResult::Completed, 4));
    h.join(wsi, seti);
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamWrite, wsi, packed(COMPLETED, 4))
    );
    assert_eq!(h.received(sink), vec![1, 2, 3, 4, 5, 6]);
    h.s.running()
        .unwrap()
        .stream_drop_writable(U8, wsi)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(seti).unwrap();
    assert_eq!(h.host_read(sink, 100).done, done(CopyResult::Dropped, 0));
    h.finish();
}

/// A host write that a guest drains in several reads before the host
/// learns the outcome: the offsets into the host's buffer advance.
#[test]
fn host_write_drained_by_several_reads() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    let src = h.s.host_copy_new(S, U8);
    let rsi = h.s.lower_end(inst, src).unwrap();
    assert_eq!(h.host_write(src, U8, &[1, 2, 3, 4, 5]).done, None);
    assert_eq!(h.read(rsi, 0, 2), packed(COMPLETED, 2));
    assert_eq!(h.read(rsi, 2, 2), packed(COMPLETED, 2));
    assert_eq!(h.read(rsi, 4, 8), packed(COMPLETED, 1));
    assert_eq!(&h.m()[0..6], &[1, 2, 3, 4, 5, 0]);
    let offsets: Vec<_> = h
        .transfers
        .iter()
        .map(|t| match t.src {
            TransferEnd::Host { offset, .. } => offset,
            _ => panic!("host source"),
        })
        .collect();
    assert_eq!(offsets, vec![0, 2, 4]);
    assert_eq!(
        h.s.host_end(src).map(|mut e| e.poll()).unwrap(),
        done(CopyResult::Completed, 5)
    );
    assert_eq!(h.s.host_end(src).map(|mut e| e.poll()).unwrap(), None);
    // The host's end is idle again; the guest's next read waits.
    assert_eq!(
        h.s.host_end(src).ok().map(|e| e.state()),
        Some(CopyState::Idle)
    );
    assert_eq!(h.read(rsi, 0, 1), B);
    h.finish();
}

/// The wasm-to-wasm scenario with the reader in `b` and the writer in
/// `a`; the reference's "host futures" are host calls the test resolves.
fn wasm_to_wasm(elem: canon_async::ElemType) {
    let payload = elem.size != 0;
    let mut h = H::new();
    let a = h.instance();
    let b = h.instance();
    let ta = h.start(a, 1);
    let (rsi, wsi) = h.new_ends(S, elem);
    assert_eq!((rsi, wsi), (1, 2));
    // `a` returns the readable end to `b` (the test lowers it into `b`).
    let shared = h.s.lift_end(a, S, elem, rsi).unwrap();
    let fut1 = h.park();
    h.idle();

    let tb = h.start(b, 2);
    let ri = h.s.lower_end(b, shared).unwrap();
    assert_eq!(ri, 1);
    assert_eq!(h.copy(S, true, elem, ri, 0, 8), B);
    h.unpark(fut1);
    let setb = h.set_new();
    h.join(ri, setb);
    assert_eq!(h.wait_blocked(setb), Step::Suspend);

    // `a` runs: two writes of 4 fill the pending 8-element read.
    h.resumed_from_park(ta);
    h.m()[0..4].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(h.copy(S, false, elem, wsi, 0, 4), packed(COMPLETED, 4));
    assert_eq!(h.copy(S, false, elem, wsi, 0, 4), packed(COMPLETED, 4));
    // A zero-length write finds the full reader: it waits; cancel it.
    assert_eq!(h.copy(S, false, elem, wsi, 0, 0), B);
    assert_eq!(h.cancel(S, false, elem, wsi), packed(CANCELLED, 0));
    let fut2 = h.park();

    let e = h.resumed_event(tb);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamRead, ri, packed(COMPLETED, 8))
    );
    if payload {
        assert_eq!(&h.m()[0..8], &[1, 2, 3, 4, 1, 2, 3, 4]);
    } else {
        assert_eq!(&h.m()[0..8], &[0; 8]);
    }
    h.unpark(fut2);
    let fut3 = h.park();

    h.resumed_from_park(ta);
    h.m()[0..8].copy_from_slice(&[5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(h.copy(S, false, elem, wsi, 0, 8), B);
    h.unpark(fut3);
    let seta = h.set_new();
    h.join(wsi, seta);
    assert_eq!(h.wait_blocked(seta), Step::Suspend);

    h.resumed_from_park(tb);
    // A zero-length read meets the pending write: it completes at once.
    assert_eq!(h.copy(S, true, elem, ri, 40, 0), packed(COMPLETED, 0));
    h.m()[0..8].fill(0);
    assert_eq!(h.copy(S, true, elem, ri, 0, 2), packed(COMPLETED, 2));
    assert_eq!(h.copy(S, true, elem, ri, 2, 2), packed(COMPLETED, 2));
    if payload {
        assert_eq!(&h.m()[0..6], &[5, 6, 7, 8, 0, 0]);
    }
    let fut4 = h.park();

    let e = h.resumed_event(ta);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamWrite, wsi, packed(COMPLETED, 4))
    );
    // A zero-length write with nobody waiting blocks.
    assert_eq!(h.copy(S, false, elem, wsi, 40, 0), B);
    h.unpark(fut4);
    assert_eq!(h.wait_blocked(seta), Step::Suspend);

    h.resumed_from_park(tb);
    // A zero-length read meets the zero-length write: the writer is
    // notified and the reader waits.
    assert_eq!(h.copy(S, true, elem, ri, 40, 0), B);
    assert_eq!(h.wait_blocked(setb), Step::Suspend);

    let e = h.resumed_event(ta);
    assert_eq!((e.index, e.payload), (wsi, packed(COMPLETED, 0)));
    // A zero-length write meets the zero-length read: the write
    // completes, the reader keeps waiting.
    assert_eq!(h.copy(S, false, elem, wsi, 40, 0), packed(COMPLETED, 0));
    let err = h.s.running().unwrap().error_context_new(7).unwrap();
    assert_eq!(
        h.s.running().unwrap().error_context_debug_message(err),
        Ok(7)
    );
    // Dropping the end takes it out of its set.
    h.s.running()
        .unwrap()
        .stream_drop_writable(elem, wsi)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(seta).unwrap();
    h.s.running().unwrap().error_context_drop(err).unwrap();
    h.finish();

    let e = h.resumed_event(tb);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamRead, ri, packed(DROPPED, 0))
    );
    h.s.running()
        .unwrap()
        .stream_drop_readable(elem, ri)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(setb).unwrap();
    h.finish();
    h.idle();
    assert_eq!(h.s.live_tasks(), 0);
    // Every transfer went from `a` to `b`.
    assert!(h
        .transfers
        .iter()
        .all(|t| t.src.guest().map(|g| g.0) == Some(a) && t.dst.guest().map(|g| g.0) == Some(b)));
    let moved: u32 = h.transfers.iter().map(|t| t.count).sum();
    assert_eq!(moved, 12);
}

/// `test_wasm_to_wasm_stream`.
#[test]
fn wasm_to_wasm_stream() {
    wasm_to_wasm(U8);
}

/// `test_wasm_to_wasm_stream_empty`: the same without a payload; pointers
/// are ignored and nothing lands in memory.
#[test]
fn wasm_to_wasm_stream_empty() {
    wasm_to_wasm(UNIT);
}

/// The suite's reading (`cancel-stream.wast`): cancelling a write whose
/// buffer was partly drained while it is still the pending side gives
/// CANCELLED with the progress, and the reader keeps what it got.
#[test]
fn cancel_after_partial_progress_suite_reading() {
    for sync_cancel in [true, false] {
        let mut h = H::new();
        h.s.set_reading(Reading::Suite);
        let inst = h.instance();
        h.start(inst, 0);
        let (rsi, wsi) = h.new_ends(S, U8);
        let sink = h.s.lift_end(inst, S, U8, rsi).unwrap();
        h.adopt(sink);
        h.m()[0..4].copy_from_slice(&[0xa, 0xb, 0xc, 0xd]);
        assert_eq!(h.write(wsi, 0, 4), B);
        assert_eq!(h.host_read(sink, 2).done, done(CopyResult::Completed, 2));
        assert_eq!(h.received(sink), vec![0xa, 0xb]);
        let r =
            h.s.running()
                .unwrap()
                .stream_cancel_write(U8, !sync_cancel, wsi);
        assert_eq!(r, Ok(Step::Done(packed(CANCELLED, 2))));
        // The end is idle again: another write may start.
        assert_eq!(h.write(wsi, 2, 2), B);
    }
}

/// The suite's reading (`big-interleaving-test.wast`): `waitable-set.wait`
/// on a set whose member already has an event returns it without
/// switching; under `Reading::Definitions` the deterministic chooser
/// switches first and the scheduler resumes the thread with the event.
#[test]
fn wait_with_pending_event_by_reading() {
    for reading in [Reading::Suite, Reading::Definitions] {
        let mut h = H::new();
        h.s.set_reading(reading);
        let inst = h.instance();
        let t = h.start(inst, 0);
        let (rsi, wsi) = h.new_ends(S, U8);
        assert_eq!(h.write(wsi, 0, 4), B);
        assert_eq!(h.read(rsi, 4, 4), packed(COMPLETED, 4));
        let seti = h.set_new();
        h.join(wsi, seti);
        let want = Event {
            code: EventCode::StreamWrite,
            index: wsi,
            payload: packed(COMPLETED, 4),
        };
        match h
            .s
            .running()
            .unwrap()
            .waitable_set_wait(false, seti, 0)
            .unwrap()
        {
            Step::Done(e) if reading == Reading::Suite => assert_eq!(e, want),
            Step::Suspend if reading == Reading::Definitions => {
                assert_eq!(h.resumed_event(t), want)
            }
            r => panic!("{reading:?}: unexpected {r:?}"),
        }
        h.join(wsi, 0);
        h.s.running().unwrap().waitable_set_drop(seti).unwrap();
        h.s.running()
            .unwrap()
            .stream_drop_readable(U8, rsi)
            .unwrap();
        h.s.running()
            .unwrap()
            .stream_drop_writable(U8, wsi)
            .unwrap();
        h.finish();
        h.idle();
    }
}

/// `test_cancel_copy`: cancelling after partial progress gives COMPLETED
/// with that progress; cancelling with none gives CANCELLED; a host that
/// defers the cancel makes the async cancel BLOCKED, and the later event
/// is CANCELLED with what the host moved meanwhile.
#[test]
fn cancel_copy() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    for sync_cancel in [true, false] {
        let (rsi, wsi) = h.new_ends(S, U8);
        let sink = h.s.lift_end(inst, S, U8, rsi).unwrap();
        h.adopt(sink);
        h.m()[0..4].copy_from_slice(&[0xa, 0xb, 0xc, 0xd]);
        assert_eq!(h.write(wsi, 0, 4), B);
        assert_eq!(h.host_read(sink, 2).done, done(CopyResult::Completed, 2));
        assert_eq!(h.received(sink), vec![0xa, 0xb]);
        let r =
            h.s.running()
                .unwrap()
                .stream_cancel_write(U8, !sync_cancel, wsi);
        assert_eq!(r, Ok(Step::Done(packed(COMPLETED, 2))));
        h.s.running()
            .unwrap()
            .stream_drop_writable(U8, wsi)
            .unwrap();
        assert_eq!(h.host_read(sink, 100).done, done(CopyResult::Dropped, 0));
        h.s.host_end(sink).and_then(|e| e.drop()).unwrap();
    }

    let src = h.s.host_copy_new(S, U8);
    let rsi = h.s.lower_end(inst, src).unwrap();
    assert_eq!(h.read(rsi, 0, 4), B);
    assert_eq!(
        h.s.running().unwrap().stream_cancel_read(U8, false, rsi),
        Ok(Step::Done(packed(CANCELLED, 0)))
    );
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi)
        .unwrap();
    h.s.host_end(src).and_then(|e| e.drop()).unwrap();

    let src = h.s.host_copy_new(S, U8);
    let rsi = h.s.lower_end(inst, src).unwrap();
    assert_eq!(h.read(rsi, 0, 4), B);
    h.s.host_end(src).map(|mut e| e.defer_cancel(true)).unwrap();
    assert_eq!(h.cancel(S, true, U8, rsi), B);
    assert!(h.s.host_end(src).is_ok_and(|e| e.cancel_requested()));
    // The host still writes 2 bytes, then lets the cancel finish.
    assert_eq!(
        h.host_write(src, U8, &[7, 8]).done,
        done(CopyResult::Completed, 2)
    );
    assert_eq!(h.s.host_end(src).map(|mut e| e.cancel_peer()), Ok(true));
    assert!(!h.s.host_end(src).is_ok_and(|e| e.cancel_requested()));
    let seti = h.set_new();
    h.join(rsi, seti);
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamRead, rsi, packed(CANCELLED, 2))
    );
    assert_eq!(&h.m()[0..2], &[7, 8]);
    h.s.running()
        .unwrap()
        .stream_drop_readable(U8, rsi)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(seti).unwrap();
    h.finish();
}

/// The host cancels its own waiting copies, in both directions.
#[test]
fn host_cancels_its_copies() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    // A write nobody read: CANCELLED, nothing moved.
    let src = h.s.host_copy_new(S, U8);
    let rsi = h.s.lower_end(inst, src).unwrap();
    assert_eq!(h.host_write(src, U8, &[1, 2, 3]).done, None);
    assert_eq!(
        h.s.host_end(src).and_then(|mut e| e.cancel()),
        Ok(canon_async::HostCopyDone {
            result: CopyResult::Cancelled,
            progress: 0
        })
    );
    assert_eq!(h.read(rsi, 0, 4), B);
    // A write partly read before the cancel: COMPLETED with the progress.
    h.s.running()
        .unwrap()
        .stream_cancel_read(U8, true, rsi)
        .unwrap();
    assert_eq!(h.host_write(src, U8, &[4, 5, 6]).done, None);
    assert_eq!(h.read(rsi, 0, 1), packed(COMPLETED, 1));
    assert_eq!(h.m()[0], 4);
    assert_eq!(
        h.s.host_end(src).and_then(|mut e| e.cancel()),
        Ok(canon_async::HostCopyDone {
            result: CopyResult::Completed,
            progress: 1
        })
    );
    // A read of a writer that is gone: DROPPED.
    let (r2, w2) = h.new_ends(S, U8);
    let sink = h.s.lift_end(inst, S, U8, r2).unwrap();
    h.adopt(sink);
    assert_eq!(h.host_read(sink, 4).done, None);
    let got = h.s.host_end(sink).and_then(|mut e| e.cancel()).unwrap();
    assert_eq!((got.result, got.progress), (CopyResult::Cancelled, 0));
    h.s.running().unwrap().stream_drop_writable(U8, w2).unwrap();
    assert_eq!(h.host_read(sink, 4).done, done(CopyResult::Dropped, 0));
    // Cancelling with nothing in progress is the embedder's error.
    assert!(h.s.host_end(sink).and_then(|mut e| e.cancel()).is_err());
    h.finish();
}

/// `test_self_copy`: one instance reads what it writes, for payload-less
/// and number elements; the writer sees DROPPED with its progress.
fn self_copy(elem: canon_async::ElemType) {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    let size = elem.size as usize;
    let seti = h.set_new();
    let (rfi, wfi) = h.new_ends(F, elem);
    let val: Vec<u8> = (1..=size as u8).collect();
    h.m()[8..8 + size].copy_from_slice(&val);
    assert_eq!(h.copy(F, false, elem, wfi, 8, 1), B);
    assert_eq!(h.copy(F, true, elem, rfi, 24, 1), COMPLETED);
    assert_eq!(&h.m()[24..24 + size], &val[..]);
    h.s.running()
        .unwrap()
        .future_drop_readable(elem, rfi)
        .unwrap();
    h.join(wfi, seti);
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::FutureWrite, wfi, COMPLETED)
    );
    h.s.running()
        .unwrap()
        .future_drop_writable(elem, wfi)
        .unwrap();

    let (rsi, wsi) = h.new_ends(S, elem);
    let vals: Vec<u8> = (1..=3 * size as u8).collect();
    h.m()[8..8 + 3 * size].copy_from_slice(&vals);
    h.m()[32..64].fill(0);
    assert_eq!(h.copy(S, false, elem, wsi, 8, 3), B);
    assert_eq!(h.copy(S, true, elem, rsi, 32, 1), packed(COMPLETED, 1));
    assert_eq!(
        h.copy(S, true, elem, rsi, 32 + size as u32, 4),
        packed(COMPLETED, 2)
    );
    assert_eq!(&h.m()[32..32 + 3 * size], &vals[..]);
    h.s.running()
        .unwrap()
        .stream_drop_readable(elem, rsi)
        .unwrap();
    h.join(wsi, seti);
    let e = h.wait_now(seti);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::StreamWrite, wsi, packed(DROPPED, 3))
    );
    h.s.running()
        .unwrap()
        .stream_drop_writable(elem, wsi)
        .unwrap();
    h.s.running().unwrap().waitable_set_drop(seti).unwrap();
    h.finish();
}

#[test]
fn self_copy_none() {
    self_copy(UNIT);
}

#[test]
fn self_copy_u8() {
    self_copy(U8);
}

#[test]
fn self_copy_f64() {
    self_copy(F64);
}

/// The zero-length rules of `SharedStreamImpl`, one by one.
#[test]
fn zero_length_read_meets_pending_write() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    h.m()[0..4].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(h.write(w, 0, 4), B);
    // The zero-length read completes at once and nothing moves; the
    // writer keeps waiting without an event.
    assert_eq!(h.read(r, 40, 0), packed(COMPLETED, 0));
    assert!(h.transfers.is_empty());
    let set = h.set_new();
    h.join(w, set);
    assert_eq!(
        h.s.running()
            .unwrap()
            .waitable_set_poll(false, set)
            .unwrap()
            .code,
        EventCode::None
    );
    assert_eq!(h.read(r, 40, 4), packed(COMPLETED, 4));
    assert_eq!(&h.m()[40..44], &[1, 2, 3, 4]);
}

#[test]
fn zero_length_write_meets_zero_length_read() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    assert_eq!(h.read(r, 0, 0), B);
    // The write completes; the reader stays pending, with no event.
    assert_eq!(h.write(w, 0, 0), packed(COMPLETED, 0));
    let set = h.set_new();
    h.join(r, set);
    assert_eq!(
        h.s.running()
            .unwrap()
            .waitable_set_poll(false, set)
            .unwrap()
            .code,
        EventCode::None
    );
    // A second zero-length write completes the same way.
    assert_eq!(h.write(w, 0, 0), packed(COMPLETED, 0));
    assert_eq!(
        h.s.running()
            .unwrap()
            .waitable_set_poll(false, set)
            .unwrap()
            .code,
        EventCode::None
    );
}

#[test]
fn nonempty_write_meets_zero_length_read() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    assert_eq!(h.read(r, 0, 0), B);
    // The zero-length reader is notified COMPLETED; the writer waits.
    assert_eq!(h.write(w, 8, 4), B);
    let set = h.set_new();
    h.join(r, set);
    let e = h.wait_now(set);
    assert_eq!((e.index, e.payload), (r, packed(COMPLETED, 0)));
    h.join(r, 0);
    h.join(w, set);
    assert_eq!(
        h.s.running()
            .unwrap()
            .waitable_set_poll(false, set)
            .unwrap()
            .code,
        EventCode::None
    );
    assert_eq!(h.read(r, 0, 8), packed(COMPLETED, 4));
}

#[test]
fn zero_length_read_meets_zero_length_write() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    assert_eq!(h.write(w, 0, 0), B);
    // Unlike a write, a zero-length read does not complete against a
    // zero-length writer: the writer is notified, the reader waits.
    assert_eq!(h.read(r, 0, 0), B);
    let set = h.set_new();
    h.join(w, set);
    let e = h.wait_now(set);
    assert_eq!((e.index, e.payload), (w, packed(COMPLETED, 0)));
}

/// A synchronous read that waits is completed by the writer's rendezvous
/// on another thread (the 🚝 sync-streams case).
#[test]
fn sync_read_completed_by_another_task() {
    let mut h = H::new();
    let a = h.instance();
    let b = h.instance();
    let ta = h.start(a, 1);
    let (r, w) = h.new_ends(S, U8);
    let shared = h.s.lift_end(a, S, U8, r).unwrap();
    assert_eq!(h.try_copy(S, false, U8, false, w, 0, 0), Ok(Step::Suspend));
    h.idle();
    let tb = h.start(b, 2);
    let rb = h.s.lower_end(b, shared).unwrap();
    // The zero-length sync write woke up when this read came along.
    assert_eq!(h.try_copy(S, true, U8, false, rb, 0, 4), Ok(Step::Suspend));
    assert_eq!(h.resumed_i32(ta), packed(COMPLETED, 0));
    h.m()[0..3].copy_from_slice(&[3, 2, 1]);
    assert_eq!(h.write(w, 0, 3), packed(COMPLETED, 3));
    h.finish();
    assert_eq!(h.resumed_i32(tb), packed(COMPLETED, 3));
    assert_eq!(&h.mem[&b][0..3], &[3, 2, 1]);
    h.finish();
}
