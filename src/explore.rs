//! Schedule exploration: run a small program under every choice the spec
//! allows (depth-first, by prefix replay), or a sample of them (PCT-style
//! and seeded random search) for larger programs, and replay one schedule
//! exactly from its replay string.
//!
//! A *program* is a function that gets a [`Chooser`], builds a
//! [`Script`](crate::script::Script) over
//! [`Store::with_chooser`](crate::Store::with_chooser) with it, runs it and
//! returns an observable trace (the script log, results, final states) or
//! an error. It must be deterministic given its choices: the explorer
//! checks that when asked ([`Explorer::check_determinism`]).
//!
//! Schedules are named by their replay strings: the index chosen at each
//! choice point the store consulted its chooser at, joined with dots
//! (`"0.1.0"`), as [`Replay::to_replay_string`] prints them.
//!
//! ```
//! use canon_async::explore::{Explorer, replay};
//! use canon_async::script::{Ret, Script};
//! use canon_async::{LiftKind, Store};
//!
//! // Two calls that yield once: the tick chooses who logs first.
//! let program = |chooser| -> Result<Vec<String>, String> {
//!     let mut s = Script::with_store(Store::with_chooser(chooser));
//!     let i = s.instance();
//!     let f = s.func(i, LiftKind::AsyncStackful, true, |g, args| async move {
//!         g.yield_(false).await?;
//!         g.log(format!("{}", args[0]));
//!         g.task_return(vec![])?;
//!         Ok(Ret::Exit)
//!     });
//!     let j = s.instance();
//!     let main = s.func(j, LiftKind::AsyncStackful, true, move |g, _| async move {
//!         g.call_async(f, vec![1], 0).await?;
//!         g.call_async(f, vec![2], 0).await?;
//!         g.task_return(vec![])?;
//!         Ok(Ret::Exit)
//!     });
//!     s.invoke(main, vec![]).map_err(|t| t.to_string())?;
//!     s.run().map_err(|t| t.to_string())?;
//!     Ok(s.log())
//! };
//! let report = Explorer::new().dfs(program).unwrap();
//! assert!(report.complete && report.schedules > 1);
//! assert_eq!(report.outcomes.len(), 2); // ["1", "2"] and ["2", "1"]
//! let (first, _) = replay(program, &report.outcomes[1].1);
//! assert_eq!(first.unwrap(), report.outcomes[1].0);
//! ```

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;
use std::sync::Mutex;

use crate::chooser::{ChoicePoint, Chooser, Deterministic, Replay, Seeded};

/// A chooser shared between the store (which owns a box of it) and the
/// explorer (which reads the recorded trace after the run). A mutex, not a
/// `RefCell`: a [`Chooser`] is `Send`, so that a store can move between threads.
struct Shared<C>(Arc<Mutex<Replay<C>>>);

/// The recorder, poisoned or not (a program that panicked on a schedule
/// still has its trace read, for the report).
fn lock<C>(rec: &Mutex<Replay<C>>) -> std::sync::MutexGuard<'_, Replay<C>> {
    rec.lock().unwrap_or_else(|p| p.into_inner())
}

impl<C: Chooser> Chooser for Shared<C> {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        lock(&self.0).choose(point, n)
    }
}

/// One run of a program: its outcome and the choices it made
/// `(chosen, candidates)`.
pub type Run<T, E> = (Result<T, E>, Vec<(usize, usize)>);

/// Runs `program` once with `prefix` replayed and `fallback` answering
/// every later choice; returns the outcome and the full trace of choices.
pub fn run_with<T, E, C, P>(program: &mut P, prefix: Vec<usize>, fallback: C) -> Run<T, E>
where
    C: Chooser + 'static,
    P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
{
    let rec = Arc::new(Mutex::new(Replay::new(prefix, fallback)));
    let out = run_guarded(program, Box::new(Shared(rec.clone())), &rec);
    let trace = lock(&rec).trace().to_vec();
    (out, trace)
}

fn run_guarded<T, E, C, P>(
    program: &mut P,
    chooser: Box<dyn Chooser>,
    rec: &Mutex<Replay<C>>,
) -> Result<T, E>
where
    C: Chooser,
    P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
{
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    match catch_unwind(AssertUnwindSafe(|| program(chooser))) {
        Ok(r) => r,
        Err(p) => {
            let s = match rec.try_lock() {
                Ok(r) => r.to_replay_string(),
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().to_replay_string(),
                Err(std::sync::TryLockError::WouldBlock) => String::new(),
            };
            std::eprintln!("canon-async explore: the program panicked on schedule \"{s}\"");
            resume_unwind(p)
        }
    }
}

/// The replay string of a trace of choices.
pub fn replay_string(trace: &[(usize, usize)]) -> String {
    let mut s = String::new();
    for (i, (c, _)) in trace.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&format!("{c}"));
    }
    s
}

/// Reruns exactly the schedule named by `schedule` (a replay string such
/// as `"0.1.0"`; later choices, if the program asks for more, take the
/// first candidate). Returns the outcome and the choices made.
///
/// # Panics
///
/// When `schedule` is not a replay string.
pub fn replay<T, E, P>(mut program: P, schedule: &str) -> Run<T, E>
where
    P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
{
    let prefix = Replay::<Deterministic>::parse(schedule).expect("a replay string: \"0.1.0\"");
    run_with(&mut program, prefix, Deterministic)
}

/// A schedule on which the program failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The replay string of the schedule: pass it to [`replay`].
    pub schedule: String,
    /// What went wrong: the program's error, or the determinism mismatch.
    pub error: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "schedule \"{}\": {}", self.schedule, self.error)
    }
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct Report<T> {
    /// How many distinct schedules ran (each a different list of choices).
    pub schedules: usize,
    /// Whether every schedule was explored: no bound on depth or count cut
    /// the search (always `false` for sampling searches).
    pub complete: bool,
    /// The distinct outcomes, each with the first schedule that produced it.
    pub outcomes: Vec<(T, String)>,
    /// The longest list of choices seen.
    pub max_depth: usize,
}

impl<T: PartialEq> Report<T> {
    fn new() -> Self {
        Report {
            schedules: 0,
            complete: false,
            outcomes: Vec::new(),
            max_depth: 0,
        }
    }

    fn record(&mut self, out: T, trace: &[(usize, usize)]) {
        self.schedules += 1;
        self.max_depth = self.max_depth.max(trace.len());
        if !self.outcomes.iter().any(|(o, _)| *o == out) {
            self.outcomes.push((out, replay_string(trace)));
        }
    }
}

/// The bounds and options of an exploration.
#[derive(Clone, Debug)]
pub struct Explorer {
    /// Choice points beyond this depth are not branched on (they take the
    /// first candidate).
    pub max_depth: usize,
    /// At most this many schedules run.
    pub max_schedules: usize,
    /// Run every schedule twice and require the same outcome and choices.
    pub check_determinism: bool,
}

impl Default for Explorer {
    fn default() -> Self {
        Self::new()
    }
}

impl Explorer {
    /// Depth 64, 10 000 schedules, determinism checked.
    pub fn new() -> Self {
        Explorer {
            max_depth: 64,
            max_schedules: 10_000,
            check_determinism: true,
        }
    }

    /// Sets [`Explorer::max_depth`].
    pub fn max_depth(mut self, d: usize) -> Self {
        self.max_depth = d;
        self
    }

    /// Sets [`Explorer::max_schedules`].
    pub fn max_schedules(mut self, n: usize) -> Self {
        self.max_schedules = n;
        self
    }

    /// Sets [`Explorer::check_determinism`].
    pub fn check_determinism(mut self, on: bool) -> Self {
        self.check_determinism = on;
        self
    }

    /// Runs one schedule (twice when checking determinism).
    fn one<T, E, C, P>(
        &self,
        program: &mut P,
        prefix: Vec<usize>,
        fallback: impl Fn() -> C,
    ) -> Result<(T, Vec<(usize, usize)>), Failure>
    where
        T: PartialEq + Debug,
        E: Debug,
        C: Chooser + 'static,
        P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
    {
        let (out, trace) = run_with(program, prefix, fallback());
        let schedule = replay_string(&trace);
        let out = out.map_err(|e| Failure {
            schedule: schedule.clone(),
            error: format!("{e:?}"),
        })?;
        if self.check_determinism {
            let prefix: Vec<usize> = trace.iter().map(|&(c, _)| c).collect();
            let (again, trace2) = run_with(program, prefix, Deterministic);
            let same = matches!(&again, Ok(o) if *o == out) && trace2 == trace;
            if !same {
                return Err(Failure {
                    schedule,
                    error: format!(
                        "nondeterministic program: {out:?} with choices {trace:?}, then {:?} with {trace2:?}",
                        again.map_err(|e| format!("{e:?}"))
                    ),
                });
            }
        }
        Ok((out, trace))
    }

    /// Depth-first search over every choice point: runs the program with a
    /// replayed prefix (the first candidate after it), then, for each choice
    /// point past the prefix with `n` candidates, queues the prefixes that
    /// take each other candidate. Stops at the first failing schedule.
    pub fn dfs<T, E, P>(&self, mut program: P) -> Result<Report<T>, Failure>
    where
        T: PartialEq + Debug,
        E: Debug,
        P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
    {
        let mut report = Report::new();
        let mut stack: Vec<Vec<usize>> = vec![Vec::new()];
        let mut cut = false;
        while let Some(prefix) = stack.pop() {
            if report.schedules >= self.max_schedules {
                cut = true;
                break;
            }
            let plen = prefix.len();
            let (out, trace) = self.one(&mut program, prefix, || Deterministic)?;
            // Push alternatives deepest-last so the search goes depth-first
            // in candidate order.
            for i in (plen..trace.len()).rev() {
                let (_, n) = trace[i];
                if i >= self.max_depth {
                    if n > 1 {
                        cut = true;
                    }
                    continue;
                }
                for alt in (1..n).rev() {
                    let mut p: Vec<usize> = trace[..i].iter().map(|&(c, _)| c).collect();
                    p.push(alt);
                    stack.push(p);
                }
            }
            report.record(out, &trace);
        }
        report.complete = !cut && stack.is_empty();
        Ok(report)
    }

    /// Seeded random search: `runs` schedules with [`Seeded`] choices
    /// (seeds `seed`, `seed + 1`, ...). `schedules` counts the distinct ones.
    pub fn random<T, E, P>(
        &self,
        mut program: P,
        seed: u64,
        runs: usize,
    ) -> Result<Report<T>, Failure>
    where
        T: PartialEq + Debug,
        E: Debug,
        P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
    {
        self.sample(
            &mut program,
            (0..runs as u64).map(|k| Seeded::new(seed.wrapping_add(k))),
        )
    }

    /// PCT-style search (probabilistic concurrency testing) for programs
    /// too large to enumerate: each run follows one fixed policy (the first
    /// candidate, or the last: a strict priority among the ready threads in
    /// waiting order) except at `depth` change points drawn uniformly
    /// among the choice points of a run of the default schedule, where it
    /// takes a uniformly random candidate. A bug that needs `depth`
    /// specific deviations is hit with probability about `1 / (n^depth)`
    /// per run for `n` choice points, independently of how many other
    /// choices the program makes. The chooser sees candidate positions, not
    /// thread identities, so the priorities are over positions.
    pub fn pct<T, E, P>(
        &self,
        mut program: P,
        seed: u64,
        depth: usize,
        runs: usize,
    ) -> Result<Report<T>, Failure>
    where
        T: PartialEq + Debug,
        E: Debug,
        P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
    {
        let (_, base) = run_with(&mut program, Vec::new(), Deterministic);
        let k = base.len().max(1) as u64;
        let mut rng = Seeded::new(seed);
        let choosers = (0..runs).map(move |_| {
            let mut changes: Vec<u64> = (0..depth)
                .map(|_| rng.choose(ChoicePoint::Tick, k as usize) as u64)
                .collect();
            changes.sort_unstable();
            let last = rng.choose(ChoicePoint::Tick, 2) == 1;
            let s = rng.choose(ChoicePoint::Tick, usize::MAX) as u64;
            Pct {
                step: 0,
                changes,
                last,
                rng: Seeded::new(s),
            }
        });
        self.sample(&mut program, choosers)
    }

    /// One run per chooser of `choosers` (the random and PCT searches);
    /// `schedules` counts the distinct ones.
    fn sample<T, E, C, P>(
        &self,
        program: &mut P,
        choosers: impl IntoIterator<Item = C>,
    ) -> Result<Report<T>, Failure>
    where
        T: PartialEq + Debug,
        E: Debug,
        C: Chooser + Clone + 'static,
        P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
    {
        let mut report = Report::new();
        let mut seen: Vec<String> = Vec::new();
        for chooser in choosers {
            let (out, trace) = self.one(program, Vec::new(), || chooser.clone())?;
            let s = replay_string(&trace);
            if !seen.contains(&s) {
                seen.push(s);
                report.record(out, &trace);
            }
        }
        Ok(report)
    }
}

/// The chooser of one PCT run.
#[derive(Clone)]
struct Pct {
    step: u64,
    changes: Vec<u64>,
    last: bool,
    rng: Seeded,
}

impl Chooser for Pct {
    fn choose(&mut self, point: ChoicePoint, n: usize) -> usize {
        let step = self.step;
        self.step += 1;
        if self.changes.contains(&step) {
            self.rng.choose(point, n)
        } else if self.last {
            n - 1
        } else {
            0
        }
    }
}

/// Checks that `program` is deterministic on `schedule`: two runs give the
/// same outcome and the same choices.
pub fn check_determinism<T, E, P>(mut program: P, schedule: &str) -> Result<T, Failure>
where
    T: PartialEq + Debug,
    E: Debug,
    P: FnMut(Box<dyn Chooser>) -> Result<T, E>,
{
    let prefix = Replay::<Deterministic>::parse(schedule).ok_or_else(|| Failure {
        schedule: schedule.into(),
        error: "not a replay string".into(),
    })?;
    Explorer::new()
        .check_determinism(true)
        .one(&mut program, prefix, || Deterministic)
        .map(|(o, _)| o)
}
