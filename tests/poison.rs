//! A trap in a callee that runs on its own (from a tick, with its caller
//! not on the stack) poisons only the callee's instance; the caller keeps
//! its subtask handle, and that handle never reaches the freed task again.

use canon_async::script::{Ret, Script};
use canon_async::{LiftKind, Trap, BLOCKED};

#[test]
fn subtask_of_a_trapped_callee_stays_unresolved_and_inert() {
    let mut s = Script::new();
    let a = s.instance();
    let b = s.instance();
    let c = s.instance();
    // B yields once, then traps when the tick resumes it.
    let fb = s.func(b, LiftKind::AsyncStackful, true, |g, _| async move {
        g.yield_(false).await?;
        Err(Trap::Wasm("boom".into()))
    });
    // C yields forever-ish: it is live while A cancels B's subtask.
    let fc = s.func(c, LiftKind::AsyncStackful, true, |g, _| async move {
        let cancelled = g.yield_(true).await?;
        g.log(format!("c resumed, cancelled = {cancelled}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let fa = s.func(a, LiftKind::AsyncStackful, true, move |g, _| async move {
        let pb = g.call_async(fb, vec![], 0).await?;
        assert_eq!(pb & 0xf, 1, "B started");
        g.yield_(false).await?; // B runs and traps meanwhile
        let pc = g.call_async(fc, vec![], 0).await?;
        assert_eq!(pc & 0xf, 1, "C started (in the slot B's task freed)");
        // Cancelling B's subtask must not reach C's task.
        let r = g.subtask_cancel(true, pb >> 4).await?;
        g.log(format!("cancel {r:#x}"));
        g.task_return(vec![])?;
        Ok(Ret::Exit)
    });
    let task = s.invoke(fa, vec![]).unwrap();
    assert_eq!(s.run(), Err(Trap::Wasm("boom".into())));
    assert!(s.store().is_poisoned(b));
    assert!(!s.store().is_poisoned(a));
    s.run().unwrap();
    assert_eq!(s.host_results(task), Some(vec![]));
    assert_eq!(
        s.log(),
        vec![
            format!("cancel {BLOCKED:#x}"),
            "c resumed, cancelled = 0".to_string()
        ]
    );
    assert!(!s.store().is_poisoned(c));
}
