//! Future scenarios after the reference's `test_futures` (a host that reads
//! a guest's future and answers with a future of its own), plus the
//! `futures-must-write` rules, and the trap of every stream and future
//! built-in and end transfer, one test each.

#[path = "streams/harness.rs"]
mod harness;

use canon_async::{CopyResult, CopyState, EventCode, GuestBuf, Step, MAX_LENGTH};
use harness::*;

/// `test_futures`: the guest's future goes to the host, which reads it and
/// answers through a future it writes; a cancel after completion returns
/// COMPLETED; both ends are DONE afterwards.
#[test]
fn futures() {
    let mut h = H::new();
    let inst = h.instance();
    h.start(inst, 0);
    for round in 0..2 {
        let (rfi, wfi) = h.new_ends(F, U8);
        assert_eq!((rfi, wfi), (1, 2));
        // The host function takes the readable end and returns its own.
        let incoming = h.s.lift_end(inst, F, U8, rfi).unwrap();
        h.adopt(incoming);
        let outgoing = h.s.host_copy_new(F, U8);
        let rfi = h.s.lower_end(inst, outgoing).unwrap();
        assert_eq!(rfi, 1);
        assert_eq!(h.host_read(incoming, 1).done, None);

        assert_eq!(h.copy(F, true, U8, rfi, 0, 1), B);
        h.m()[8] = 42;
        assert_eq!(h.copy(F, false, U8, wfi, 8, 1), COMPLETED);
        assert_eq!(
            h.s.host_end(incoming).map(|mut e| e.poll()).unwrap(),
            done(CopyResult::Completed, 1)
        );
        assert_eq!(h.received(incoming), vec![42]);
        assert_eq!(
            h.s.host_end(incoming).ok().map(|e| e.state()),
            Some(CopyState::Done)
        );
        let _ = h.host_write(outgoing, U8, &[43]);
        if round == 0 {
            let seti = h.set_new();
            h.join(rfi, seti);
            let e = h.wait_now(seti);
            assert_eq!(
                (e.code, e.index, e.payload),
                (EventCode::FutureRead, rfi, COMPLETED)
            );
            h.join(rfi, 0);
            h.s.running().unwrap().waitable_set_drop(seti).unwrap();
        } else {
            assert_eq!(
                h.s.running().unwrap().future_cancel_read(U8, false, rfi),
                Ok(Step::Done(COMPLETED))
            );
        }
        assert_eq!(h.m()[0], 43);
        h.m()[0] = 0;
        h.s.running()
            .unwrap()
            .future_drop_writable(U8, wfi)
            .unwrap();
        h.s.running()
            .unwrap()
            .future_drop_readable(U8, rfi)
            .unwrap();
        h.s.host_end(incoming).and_then(|e| e.drop()).unwrap();
        h.s.host_end(outgoing).and_then(|e| e.drop()).unwrap();
    }
    h.finish();
}

/// `futures-must-write`: the reader may drop first; the writer's write
/// then returns DROPPED, after which the writer may drop.
#[test]
fn reader_drops_first() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(F, U8);
    h.s.running().unwrap().future_drop_readable(U8, r).unwrap();
    assert_eq!(h.copy(F, false, U8, w, 0, 1), DROPPED);
    h.s.running().unwrap().future_drop_writable(U8, w).unwrap();
    // A pending write is told DROPPED when the reader goes.
    let (r, w) = h.new_ends(F, U8);
    assert_eq!(h.copy(F, false, U8, w, 0, 1), B);
    h.s.running().unwrap().future_drop_readable(U8, r).unwrap();
    let set = h.set_new();
    h.join(w, set);
    let e = h.wait_now(set);
    assert_eq!(
        (e.code, e.index, e.payload),
        (EventCode::FutureWrite, w, DROPPED)
    );
    h.s.running().unwrap().future_drop_writable(U8, w).unwrap();
}

/// A host that holds a future's writable end must write before dropping.
#[test]
fn host_future_writer_must_write() {
    let (mut h, inst) = one();
    let f = h.s.host_copy_new(F, U8);
    let r = h.s.lower_end(inst, f).unwrap();
    assert!(h.s.host_end(f).and_then(|e| e.drop()).is_err());
    assert_eq!(h.copy(F, true, U8, r, 0, 1), B);
    let c = h.host_write(f, U8, &[5]);
    assert_eq!(c.done, done(CopyResult::Completed, 1));
    assert!(h.s.host_end(f).unwrap().write(1).is_err());
    h.s.host_end(f).and_then(|e| e.drop()).unwrap();
    assert_eq!(h.m()[0], 5);
}

// ----- traps ------------------------------------------------------------------

#[test]
fn trap_busy_end() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(S, U8);
    assert_eq!(h.read(r, 0, 4), B);
    traps(
        h.try_copy(S, true, U8, true, r, 0, 4),
        "concurrent operations active",
    );
    assert!(h.s.is_poisoned(inst));
}

#[test]
fn trap_second_cancel_after_blocked() {
    let (mut h, inst) = one();
    let src = h.s.host_copy_new(S, U8);
    let r = h.s.lower_end(inst, src).unwrap();
    h.s.host_end(src).map(|mut e| e.defer_cancel(true)).unwrap();
    assert_eq!(h.read(r, 0, 4), B);
    assert_eq!(h.cancel(S, true, U8, r), B);
    traps(
        h.s.running().unwrap().stream_cancel_read(U8, true, r),
        "cancel",
    );
}

#[test]
fn trap_cancel_when_idle() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, U8);
    traps(
        h.s.running().unwrap().stream_cancel_read(U8, true, r),
        "cancel",
    );
}

const IN_SET: &str = "waitable cannot be used synchronously while added to a waitable set";

#[test]
fn trap_sync_read_in_set() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, U8);
    let set = h.set_new();
    h.join(r, set);
    traps(h.try_copy(S, true, U8, false, r, 0, 4), IN_SET);
}

#[test]
fn trap_sync_future_write_in_set() {
    let (mut h, _) = one();
    let (_r, w) = h.new_ends(F, U8);
    let set = h.set_new();
    h.join(w, set);
    traps(h.try_copy(F, false, U8, false, w, 0, 1), IN_SET);
}

#[test]
fn trap_sync_cancel_in_set() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, U8);
    let set = h.set_new();
    h.join(r, set);
    assert_eq!(h.read(r, 0, 4), B);
    traps(
        h.s.running().unwrap().stream_cancel_read(U8, false, r),
        IN_SET,
    );
}

#[test]
fn trap_read_stream_after_done() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    h.s.running().unwrap().stream_drop_writable(U8, w).unwrap();
    assert_eq!(h.read(r, 0, 4), packed(DROPPED, 0));
    traps(
        h.try_copy(S, true, U8, true, r, 0, 4),
        "cannot read from stream after being notified that the writable end dropped",
    );
}

#[test]
fn trap_write_stream_after_done() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    assert_eq!(h.write(w, 0, 4), B);
    h.s.running().unwrap().stream_drop_readable(U8, r).unwrap();
    // The DROPPED is delivered by the sync... async cancel here.
    assert_eq!(h.cancel(S, false, U8, w), packed(DROPPED, 0));
    traps(
        h.try_copy(S, false, U8, true, w, 0, 4),
        "cannot write to stream after being notified that the readable end dropped",
    );
}

#[test]
fn trap_read_future_after_done() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(F, U8);
    assert_eq!(h.copy(F, false, U8, w, 0, 1), B);
    assert_eq!(h.copy(F, true, U8, r, 4, 1), COMPLETED);
    traps(
        h.try_copy(F, true, U8, true, r, 4, 1),
        "cannot read from future after previous read succeeded",
    );
}

#[test]
fn trap_write_future_after_done() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(F, U8);
    assert_eq!(h.copy(F, true, U8, r, 4, 1), B);
    assert_eq!(h.copy(F, false, U8, w, 0, 1), COMPLETED);
    traps(
        h.try_copy(F, false, U8, true, w, 0, 1),
        "cannot write to future after previous write succeeded or readable end dropped",
    );
}

#[test]
fn trap_write_future_after_reader_dropped() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(F, U8);
    h.s.running().unwrap().future_drop_readable(U8, r).unwrap();
    assert_eq!(h.copy(F, false, U8, w, 0, 1), DROPPED);
    traps(
        h.try_copy(F, false, U8, true, w, 0, 1),
        "cannot write to future after previous write succeeded or readable end dropped",
    );
}

#[test]
fn trap_drop_busy_writable() {
    let (mut h, inst) = one();
    let (_r, w) = h.new_ends(S, U8);
    assert_eq!(h.write(w, 0, 4), B);
    traps(
        h.s.running().unwrap().stream_drop_writable(U8, w),
        "cannot drop busy stream",
    );
    assert!(h.s.is_poisoned(inst));
}

#[test]
fn trap_drop_busy_readable() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U8);
    assert_eq!(h.read(r, 0, 8), B);
    // Even after elements arrived, until the event is delivered.
    assert_eq!(h.write(w, 0, 4), packed(COMPLETED, 4));
    traps(
        h.s.running().unwrap().stream_drop_readable(U8, r),
        "cannot remove busy stream",
    );
}

#[test]
fn trap_drop_future_writer_unwritten() {
    let (mut h, _) = one();
    let (_r, w) = h.new_ends(F, U8);
    traps(
        h.s.running().unwrap().future_drop_writable(U8, w),
        "cannot drop future write end without first writing a value",
    );
}

#[test]
fn trap_lift_writable_end() {
    let (mut h, inst) = one();
    let (_r, w) = h.new_ends(S, U8);
    traps(h.s.lift_end(inst, S, U8, w), "writable");
}

#[test]
fn trap_lift_busy_end() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(S, U8);
    assert_eq!(h.read(r, 0, 4), B);
    traps(h.s.lift_end(inst, S, U8, r), "cannot remove busy stream");
}

#[test]
fn trap_lift_stream_after_done() {
    let (mut h, inst) = one();
    let (r, w) = h.new_ends(S, U8);
    h.s.running().unwrap().stream_drop_writable(U8, w).unwrap();
    assert_eq!(h.read(r, 0, 4), packed(DROPPED, 0));
    traps(
        h.s.lift_end(inst, S, U8, r),
        "cannot lift stream after being notified that the writable end dropped",
    );
}

#[test]
fn trap_lift_future_after_done() {
    let (mut h, inst) = one();
    let (r, w) = h.new_ends(F, U8);
    assert_eq!(h.copy(F, false, U8, w, 0, 1), B);
    assert_eq!(h.copy(F, true, U8, r, 4, 1), COMPLETED);
    traps(
        h.s.lift_end(inst, F, U8, r),
        "cannot lift future after previous read succeeded",
    );
}

#[test]
fn trap_lift_stream_in_set() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(S, U8);
    let set = h.set_new();
    h.join(r, set);
    traps(
        h.s.lift_end(inst, S, U8, r),
        "cannot lift stream while it's in a waitable set",
    );
}

#[test]
fn trap_lift_future_in_set() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(F, U8);
    let set = h.set_new();
    h.join(r, set);
    traps(
        h.s.lift_end(inst, F, U8, r),
        "cannot lift future while it's in a waitable set",
    );
}

#[test]
fn trap_lift_wrong_type() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(S, U8);
    traps(h.s.lift_end(inst, S, F64, r), "wrong element type");
}

#[test]
fn trap_intra_component_future_of_char() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(F, CHAR);
    assert_eq!(h.copy(F, false, CHAR, w, 0, 1), B);
    traps(
        h.try_copy(F, true, CHAR, true, r, 4, 1),
        "cannot read from and write to intra-component future",
    );
}

#[test]
fn trap_intra_component_stream_of_char() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, CHAR);
    assert_eq!(h.copy(S, true, CHAR, r, 0, 2), B);
    traps(
        h.try_copy(S, false, CHAR, true, w, 8, 2),
        "cannot read from and write to intra-component stream",
    );
}

/// Across instances, `char` elements copy fine.
#[test]
fn char_stream_across_instances() {
    let mut h = H::new();
    let a = h.instance();
    let b = h.instance();
    h.start(a, 1);
    let (r, w) = h.new_ends(S, CHAR);
    let sh = h.s.lift_end(a, S, CHAR, r).unwrap();
    h.m()[0..8].copy_from_slice(&[0x41, 0, 0, 0, 0x42, 0, 0, 0]);
    assert_eq!(h.copy(S, false, CHAR, w, 0, 2), B);
    let _ = h.park();
    h.idle();
    h.start(b, 2);
    let rb = h.s.lower_end(b, sh).unwrap();
    assert_eq!(h.copy(S, true, CHAR, rb, 4, 4), packed(COMPLETED, 2));
    assert_eq!(&h.m()[4..12], &[0x41, 0, 0, 0, 0x42, 0, 0, 0]);
}

#[test]
fn trap_wrong_element_type() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, U8);
    traps(
        h.try_copy(S, true, F64, true, r, 0, 1),
        "wrong element type",
    );
}

#[test]
fn trap_buffer_too_long() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, UNIT);
    // Payload-less: no bounds, but the length limit holds.
    assert_eq!(h.copy(S, true, UNIT, r, 0, MAX_LENGTH), B);
    h.s.running()
        .unwrap()
        .stream_cancel_read(UNIT, true, r)
        .unwrap();
    traps(
        h.try_copy(S, true, UNIT, true, r, 0, MAX_LENGTH + 1),
        "2^28-1",
    );
}

#[test]
fn trap_unaligned_pointer() {
    let (mut h, _) = one();
    let (r, _w) = h.new_ends(S, F64);
    // A zero-length buffer is not checked.
    assert_eq!(h.copy(S, true, F64, r, 4, 0), B);
    h.s.running()
        .unwrap()
        .stream_cancel_read(F64, true, r)
        .unwrap();
    traps(h.try_copy(S, true, F64, true, r, 4, 1), "unaligned pointer");
}

#[test]
fn trap_out_of_bounds() {
    let (mut h, _) = one();
    let (r, w) = h.new_ends(S, U32);
    // Exactly up to the end is fine.
    assert_eq!(h.copy(S, true, U32, r, MEM as u32 - 8, 2), B);
    traps(
        h.try_copy(S, false, U32, true, w, MEM as u32 - 4, 2),
        "out of bounds",
    );
}

#[test]
fn trap_out_of_bounds_future_huge_pointer() {
    let (mut h, inst) = one();
    let (r, _w) = h.new_ends(F, U32);
    let buf = GuestBuf {
        mem: inst.as_u32(),
        ptr: u32::MAX - 3,
        len: 1,
        mem_size: MEM as u64,
    };
    traps(
        h.s.running().unwrap().future_read(U32, true, r, buf),
        "out of bounds",
    );
}
