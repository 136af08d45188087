//! `canon-async-wasi`: a WASI host for `canon-async-wasmi`, on its
//! [`Linker`]: [`add_to_linker`] defines every interface a
//! `wasi:cli/command` component imports.
//!
//! - WASI 0.3.0: `wasi:cli` (environment, exit, stdin / stdout / stderr as
//!   `stream<u8>` with the `future` of the result, terminal-* answering
//!   "not a terminal"), `wasi:clocks` (monotonic, with `wait-for` /
//!   `wait-until` on the store's timers; system clock; timezone answering
//!   "unknown"), `wasi:random` (random, insecure, insecure-seed).
//! - WASI 0.2.x, as CPython's libc reaches it through the preview1
//!   adapter: `wasi:io` (poll, error, streams), `wasi:cli`, clocks, random.
//! - Filesystem and sockets, 0.2.x and 0.3.0: linked, and denied: no
//!   preopened directories, socket creation and name lookup answer
//!   "access denied". Their other functions are methods of resources the
//!   host never hands out; they trap if reached.
//!
//! Versions match as Wasmtime's do: an import `@0.2.9` is served by the
//! 0.2 implementation for any 0.2.x, `@0.3.y` by the 0.3 one; an interface
//! the host does not know is a link error naming it.
//!
//! Nothing of the host's environment reaches the guest unless the
//! embedder puts it in the [`WasiCtx`]: no variable, no directory, no
//! network.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use canon_async_wasmi::{Error, Linker};

mod p2;
mod p3;
pub mod ty;

/// Where a guest's standard output or error goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A buffer in memory (for tests and embedders that capture output).
    Buffer(Arc<Mutex<Vec<u8>>>),
    /// Nowhere.
    Null,
}

impl Output {
    /// Writes all of `bytes` and flushes.
    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes)?;
                o.flush()
            }
            Output::Stderr => {
                let mut o = std::io::stderr().lock();
                o.write_all(bytes)?;
                o.flush()
            }
            Output::Buffer(b) => {
                b.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(bytes);
                Ok(())
            }
            Output::Null => Ok(()),
        }
    }
}

/// Where a guest's standard input comes from.
#[derive(Clone, Debug, Default)]
pub enum Input {
    /// Nothing: end of file at once.
    #[default]
    Empty,
    /// The process's standard input (read on a thread of its own, so the
    /// event loop never blocks on it).
    Stdin,
    /// These bytes, then end of file.
    Bytes(Arc<[u8]>),
}

/// What the guest sees of the host: its arguments, its environment, its
/// standard streams. Shared by the host functions of one store.
pub struct WasiCtx {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Output,
    stderr: Output,
    stdin: Input,
    state: Mutex<State>,
}

/// The host's mutable state.
struct State {
    exit: Option<u8>,
    insecure: u64,
    insecure_seed: (u64, u64),
    /// 0.2 pollables by representation.
    pollables: HashMap<u32, p2::Pollable>,
    next_pollable: u32,
    /// Standard input, once something asked for it.
    stdin: Option<StdinReader>,
    /// Bytes of standard input read but not yet handed out.
    stdin_left: Vec<u8>,
    /// Standard input has ended.
    stdin_eof: bool,
    /// When the guest first wrote to its standard output or error.
    first_output: Option<std::time::Instant>,
}

/// Standard input as chunks: read on a thread (the process's stdin) or
/// handed out from memory.
pub(crate) struct StdinReader {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl StdinReader {
    fn new(input: &Input) -> Self {
        let (tx, rx) = mpsc::channel();
        match input {
            Input::Empty => {}
            Input::Bytes(b) => {
                for c in b.chunks(64 << 10) {
                    let _ = tx.send(c.to_vec());
                }
            }
            Input::Stdin => {
                std::thread::spawn(move || {
                    let mut stdin = std::io::stdin();
                    let mut buf = vec![0; 64 << 10];
                    loop {
                        match stdin.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if tx.send(buf[..n].to_vec()).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
        StdinReader { rx }
    }
}

/// What a poll of standard input found.
pub(crate) enum StdinPoll {
    Data(Vec<u8>),
    Pending,
    Eof,
}

impl WasiCtx {
    /// A context with the given arguments (the program's name first, as
    /// `get-arguments` returns them), no environment, empty standard
    /// input, and the process's standard output and error.
    pub fn new(args: Vec<String>) -> Self {
        let mut seed = [0u8; 24];
        let _ = getrandom::fill(&mut seed);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        WasiCtx {
            args,
            env: Vec::new(),
            stdout: Output::Stdout,
            stderr: Output::Stderr,
            stdin: Input::Empty,
            state: Mutex::new(State {
                exit: None,
                insecure: word(0) | 1,
                insecure_seed: (word(1), word(2)),
                pollables: HashMap::new(),
                next_pollable: 1,
                stdin: None,
                stdin_left: Vec::new(),
                stdin_eof: false,
                first_output: None,
            }),
        }
    }

    /// Adds an environment variable the guest sees.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Where the guest's standard output goes.
    pub fn stdout(mut self, o: Output) -> Self {
        self.stdout = o;
        self
    }

    /// Where the guest's standard error goes.
    pub fn stderr(mut self, o: Output) -> Self {
        self.stderr = o;
        self
    }

    /// Where the guest's standard input comes from.
    pub fn stdin(mut self, i: Input) -> Self {
        self.stdin = i;
        self
    }

    /// The status the guest exited with through `wasi:cli/exit` (its call
    /// of `exit` traps, to stop the guest), if it did.
    pub fn exit_code(&self) -> Option<u8> {
        self.state().exit
    }

    /// When the guest first wrote to its standard output or error (for
    /// measuring the time to first output).
    pub fn first_output(&self) -> Option<std::time::Instant> {
        self.state().first_output
    }

    /// Writes `bytes` to `o` for the guest.
    pub(crate) fn write_out(&self, o: &Output, bytes: &[u8]) -> std::io::Result<()> {
        self.state()
            .first_output
            .get_or_insert_with(std::time::Instant::now);
        o.write(bytes)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the guest's exit status; the error stops the guest.
    pub(crate) fn exit(&self, code: u8) -> canon_async_wasmi::HostError {
        let mut s = self.state();
        s.exit.get_or_insert(code);
        canon_async_wasmi::HostError::new(format!("the guest exited with status {code}"))
    }

    pub(crate) fn insecure_u64(&self) -> u64 {
        let mut s = self.state();
        // xorshift64*
        let mut x = s.insecure;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.insecure = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn insecure_bytes(&self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.insecure_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// At most `max` (> 0) bytes of standard input, without blocking
    /// (`block`: wait for some).
    pub(crate) fn stdin_poll(&self, max: usize, block: bool) -> StdinPoll {
        let mut s = self.state();
        if !s.stdin_left.is_empty() {
            let n = s.stdin_left.len().min(max);
            let rest = s.stdin_left.split_off(n);
            return StdinPoll::Data(std::mem::replace(&mut s.stdin_left, rest));
        }
        if s.stdin_eof {
            return StdinPoll::Eof;
        }
        let input = self.stdin.clone();
        let r = s.stdin.get_or_insert_with(|| StdinReader::new(&input));
        let got = if block {
            r.rx.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            r.rx.try_recv()
        };
        match got {
            Ok(mut d) => {
                if d.len() > max {
                    s.stdin_left = d.split_off(max);
                }
                StdinPoll::Data(d)
            }
            Err(mpsc::TryRecvError::Empty) => StdinPoll::Pending,
            Err(mpsc::TryRecvError::Disconnected) => {
                s.stdin_eof = true;
                StdinPoll::Eof
            }
        }
    }

    /// Whether a read of standard input would not block (`block`: wait
    /// until it would not).
    pub(crate) fn stdin_ready(&self, block: bool) -> bool {
        match self.stdin_poll(usize::MAX, block) {
            StdinPoll::Data(d) => {
                let mut s = self.state();
                let rest = std::mem::take(&mut s.stdin_left);
                s.stdin_left = d;
                s.stdin_left.extend(rest);
                true
            }
            StdinPoll::Eof => true,
            StdinPoll::Pending => false,
        }
    }
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, canon_async_wasmi::HostError> {
    let mut v = vec![0; n];
    getrandom::fill(&mut v)
        .map_err(|e| canon_async_wasmi::HostError::new(format!("no randomness: {e}")))?;
    Ok(v)
}

/// The most bytes one `get-random-bytes` call returns (0.3's `max-len` may
/// be answered with fewer; a 0.2 call asking for more traps).
pub(crate) const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Defines every WASI interface this host implements on `linker`, for the
/// context `ctx` (like `wasmtime_wasi::add_to_linker`).
pub fn add_to_linker(linker: &mut Linker, ctx: &Arc<WasiCtx>) -> Result<(), Error> {
    p2::add_to_linker(linker, ctx)?;
    p3::add_to_linker(linker, ctx)?;
    Ok(())
}
