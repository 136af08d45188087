//! `canon-async serve` with the `keepalive` component
//! (`../shared/components/keepalive/`), through real sockets: the server
//! is the binary on an ephemeral port of 127.0.0.1, the client hyper's.
//! Every wait is bounded and every server is killed at the end.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

fn component() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/components/keepalive/keepalive.wasm");
    assert!(
        p.exists(),
        "{} is missing: the example components live in ../shared/components/ beside the checkout",
        p.display()
    );
    p.display().to_string()
}

type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// A server child process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    log: Log,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canon-async"))
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "-v"])
            .args(args)
            .arg(component())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start canon-async serve");
        let log: Log = Arc::default();
        let err = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                l.lock().unwrap().push((Instant::now(), line));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
        });
        let mut s = Server {
            child,
            addr: String::new(),
            log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server did not start in time");
        s.addr = line
            .trim()
            .strip_prefix("serving on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log: {:?}", s.lines()))
            .to_string();
        s
    }

    fn lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Waits (bounded) until a log line contains `pat`; its time.
    fn wait_line(&self, pat: &str, within: Duration) -> Instant {
        let t0 = Instant::now();
        loop {
            if let Some((t, _)) = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|(_, l)| l.contains(pat))
            {
                return *t;
            }
            assert!(
                t0.elapsed() < within,
                "no log line with {pat:?} within {within:?}; log: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits (bounded) for the process to exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "the server exited with {st}");
                // Let the log reader take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the server did not stop within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(addr: &str) -> SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

struct Got {
    status: u16,
    body: Vec<u8>,
    /// When each data frame arrived.
    chunks: Vec<(Instant, usize)>,
    done: Instant,
}

async fn send(
    s: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Got {
    send_slow(s, addr, method, path, body, Duration::ZERO).await
}

/// `send`, reading the response's body with a pause after each frame.
async fn send_slow(
    s: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    pause: Duration,
) -> Got {
    s.ready().await.expect("connection ready");
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = s.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let mut b = resp.into_body();
    let mut got = Vec::new();
    let mut chunks = Vec::new();
    while let Some(f) = b.frame().await {
        if let Ok(d) = f.expect("body frame").into_data() {
            chunks.push((Instant::now(), d.len()));
            got.extend_from_slice(&d);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
    Got {
        status,
        body: got,
        chunks,
        done: Instant::now(),
    }
}

async fn get(addr: &str, path: &str) -> Got {
    let mut s = connect(addr).await;
    send(&mut s, addr, "GET", path, vec![]).await
}

fn owned_get(
    addr: &str,
    path: &'static str,
) -> impl std::future::Future<Output = Got> + Send + 'static {
    let a = addr.to_string();
    async move { get(&a, path).await }
}

fn bounded<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(secs), f).await })
        .expect("the test took too long")
}

fn count(lines: &[String], pat: &str) -> usize {
    lines.iter().filter(|l| l.contains(pat)).count()
}

#[test]
fn hello_not_found_and_a_streamed_body_the_guest_outlives() {
    let s = Server::start(&["--workers", "1", "--max-instance-reuse", "1"]);
    let addr = s.addr.clone();
    let (hello, nf, stream) = bounded(60, async {
        let hello = get(&addr, "/hello").await;
        let nf = get(&addr, "/no/such/path").await;
        let stream = get(&addr, "/stream?n=3&ms=50").await;
        (hello, nf, stream)
    });
    assert_eq!(
        (hello.status, hello.body.as_slice()),
        (200, &b"hello\n"[..])
    );
    assert_eq!((nf.status, nf.body.as_slice()), (404, &b"not found\n"[..]));
    assert_eq!(stream.status, 200);
    assert_eq!(stream.body, b"line 0\nline 1\nline 2\n");
    // The body streamed: its first line arrived well before its last was
    // written (the lines are 50 ms apart).
    let (first, last) = (stream.chunks[0].0, stream.chunks.last().unwrap().0);
    assert!(stream.chunks.len() >= 3, "chunks: {:?}", stream.chunks);
    assert!(
        last.duration_since(first) >= Duration::from_millis(80),
        "the lines arrived together: {:?}",
        stream.chunks
    );
    // The guest's work after the response: its stderr line comes after
    // the client had the whole body...
    let finished = s.wait_line("/stream: finished 3 lines", Duration::from_secs(10));
    assert!(
        finished > stream.done,
        "the guest finished before the body ended"
    );
    // ...and its instance (the third, one request each) is dropped only
    // after that line.
    s.wait_line("instance 3 dropped", Duration::from_secs(10));
    let lines = s.lines();
    let at = |pat: &str| lines.iter().position(|l| l.contains(pat)).unwrap();
    assert!(at("/stream: finished 3 lines") < at("instance 3 quiescent"));
    assert!(at("instance 3 quiescent") < at("instance 3 dropped"));
    assert!(at("instance 1 dropped") < at("instance 2 created"));
}

#[test]
fn concurrent_slow_requests_overlap_and_a_large_body_echoes() {
    let s = Server::start(&[]);
    let addr = s.addr.clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let body: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (slow, took, echo, slow_echo, lines) = bounded(120, async {
        // Warm up: an instance per worker.
        let warm: Vec<_> = (0..2).map(|_| owned_get(&addr, "/hello")).collect();
        for w in futures_join(warm).await {
            assert_eq!(w.status, 200);
        }
        let t0 = Instant::now();
        let slow = futures_join((0..8).map(|_| owned_get(&addr, "/slow?ms=200")).collect()).await;
        let took = t0.elapsed();
        let mut c = connect(&addr).await;
        let echo = send(&mut c, &addr, "POST", "/echo", body.clone()).await;
        // A client that reads slowly: the host stops taking the body from
        // its source while the client is behind, and every byte arrives.
        let slow_echo = send_slow(
            &mut c,
            &addr,
            "POST",
            "/echo",
            body.clone(),
            Duration::from_millis(1),
        )
        .await;
        let lines = send(&mut c, &addr, "GET", "/stream?n=2000&ms=0", vec![]).await;
        (slow, took, echo, slow_echo, lines)
    });
    for r in &slow {
        assert_eq!((r.status, r.body.as_slice()), (200, &b"slept 200 ms\n"[..]));
    }
    assert!(
        took < Duration::from_millis(8 * 200 / 2),
        "8 × /slow?ms=200 took {took:?}: the calls did not overlap"
    );
    assert_eq!(echo.status, 200);
    assert!(
        echo.body == body,
        "the echoed body differs ({} bytes back)",
        echo.body.len()
    );
    assert!(
        slow_echo.body == body,
        "the slowly read echo differs ({} bytes)",
        slow_echo.body.len()
    );
    let want: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(lines.status, 200);
    assert!(
        lines.body == want.as_bytes(),
        "{} bytes of lines",
        lines.body.len()
    );
}

/// Runs the futures concurrently (on the runtime's tasks).
async fn futures_join<T: Send + 'static>(
    fs: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let hs: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in hs {
        out.push(h.await.expect("task"));
    }
    out
}

#[test]
fn a_trap_answers_500_and_its_instance_is_not_reused_and_malformed_requests_get_400() {
    let mut s = Server::start(&["--workers", "1"]);
    let addr = s.addr.clone();
    let (ok1, trap, ok2) = bounded(60, async {
        let ok1 = get(&addr, "/hello").await;
        // `int("x")` raises in the guest: componentize-py traps.
        let trap = get(&addr, "/stream?n=x").await;
        let ok2 = get(&addr, "/hello").await;
        (ok1, trap, ok2)
    });
    assert_eq!(ok1.status, 200);
    assert_eq!(trap.status, 500);
    assert_eq!((ok2.status, ok2.body.as_slice()), (200, &b"hello\n"[..]));
    let lines = s.lines();
    let at = |pat: &str| lines.iter().position(|l| l.contains(pat));
    assert!(at("instance 1 trapped").is_some(), "{lines:#?}");
    // The trapped instance was dropped and a new one serves the next request.
    assert!(at("instance 1 dropped").unwrap() < at("instance 2 created").unwrap());

    // A malformed request never reaches the guest: hyper answers 400.
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let mut got = String::new();
    let _ = tcp.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 400"), "got {got:?}");
    s.stop();
    let lines = s.lines();
    assert_eq!(count(&lines, "instance 3 created"), 0, "{lines:#?}");
}

#[test]
fn a_handler_that_does_not_answer_in_time_gets_504() {
    let s = Server::start(&["--handler-timeout", "0.3"]);
    let addr = s.addr.clone();
    let (late, t) = bounded(60, async {
        let _ = get(&addr, "/hello").await;
        let t0 = Instant::now();
        (get(&addr, "/slow?ms=1500").await, t0.elapsed())
    });
    assert_eq!(late.status, 504);
    assert!(t < Duration::from_millis(1400), "504 after {t:?}");
}

#[test]
fn many_requests_leave_no_instance_and_no_task_alive() {
    let mut s = Server::start(&["--max-instance-reuse", "100"]);
    let addr = s.addr.clone();
    let n_seq = 2000;
    let n_conc = 200;
    bounded(300, async {
        let mut c = connect(&addr).await;
        for i in 0..n_seq {
            let path = if i % 10 == 0 {
                "/stream?n=2&ms=0"
            } else {
                "/hello"
            };
            let r = send(&mut c, &addr, "GET", path, vec![]).await;
            assert_eq!(r.status, 200);
        }
        let rs = futures_join(
            (0..n_conc)
                .map(|_| owned_get(&addr, "/slow?ms=20"))
                .collect(),
        )
        .await;
        for r in rs {
            assert_eq!((r.status, r.body.as_slice()), (200, &b"slept 20 ms\n"[..]));
        }
    });
    s.stop();
    let lines = s.lines();
    let created = count(&lines, " created");
    let dropped = count(&lines, " dropped");
    assert!(
        created >= (n_seq + n_conc) / 100,
        "{created} instances for 2200 requests"
    );
    assert_eq!(created, dropped, "instances created and dropped differ");
    assert_eq!(count(&lines, "trapped"), 0);
    // Every instance still there at shutdown was quiescent.
    for l in lines.iter().filter(|l| l.contains("dropped at shutdown")) {
        assert!(l.contains("(0 live tasks)"), "{l}");
    }
}
