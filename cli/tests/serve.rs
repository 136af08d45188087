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
        Server::start_with(&component(), args)
    }

    fn start_with(component: &str, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canon-async"))
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "-v"])
            .args(args)
            .arg(component)
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

/// `error-code`'s cases, with their payloads in WAT.
const ERROR_CODE: &[(&str, &str)] = &[
    ("DNS-timeout", ""),
    ("DNS-error", "$dns"),
    ("destination-not-found", ""),
    ("destination-unavailable", ""),
    ("destination-IP-prohibited", ""),
    ("destination-IP-unroutable", ""),
    ("connection-refused", ""),
    ("connection-terminated", ""),
    ("connection-timeout", ""),
    ("connection-read-timeout", ""),
    ("connection-write-timeout", ""),
    ("connection-limit-reached", ""),
    ("TLS-protocol-error", ""),
    ("TLS-certificate-error", ""),
    ("TLS-alert-received", "$tls"),
    ("HTTP-request-denied", ""),
    ("HTTP-request-length-required", ""),
    ("HTTP-request-body-size", "(option u64)"),
    ("HTTP-request-method-invalid", ""),
    ("HTTP-request-URI-invalid", ""),
    ("HTTP-request-URI-too-long", ""),
    ("HTTP-request-header-section-size", "(option u32)"),
    ("HTTP-request-header-size", "(option $fsp)"),
    ("HTTP-request-trailer-section-size", "(option u32)"),
    ("HTTP-request-trailer-size", "$fsp"),
    ("HTTP-response-incomplete", ""),
    ("HTTP-response-header-section-size", "(option u32)"),
    ("HTTP-response-header-size", "$fsp"),
    ("HTTP-response-body-size", "(option u64)"),
    ("HTTP-response-trailer-section-size", "(option u32)"),
    ("HTTP-response-trailer-size", "$fsp"),
    ("HTTP-response-transfer-coding", "(option string)"),
    ("HTTP-response-content-coding", "(option string)"),
    ("HTTP-response-timeout", ""),
    ("HTTP-upgrade-failed", ""),
    ("HTTP-protocol-error", ""),
    ("loop-detected", ""),
    ("configuration-error", ""),
    ("internal-error", "(option string)"),
];

/// A `wasi:http` proxy written in WAT: `handle` sends the request it got
/// on with `wasi:http/client@0.3.0#send` and answers with the response
/// (or the error code) that came back.
fn proxy_component() -> Vec<u8> {
    let cases: String = ERROR_CODE
        .iter()
        .map(|(n, p)| format!("(case \"{n}\" {p})"))
        .collect::<Vec<_>>()
        .join(" ");
    let wat = format!(
        r#"(component $C
  (import "wasi:http/types@0.3.0" (instance $types
    (export "request" (type (sub resource)))
    (export "response" (type (sub resource)))
    (type $fsp0 (record (field "field-name" (option string)) (field "field-size" (option u32))))
    (export "field-size-payload" (type $fsp (eq $fsp0)))
    (type $dns0 (record (field "rcode" (option string)) (field "info-code" (option u16))))
    (export "DNS-error-payload" (type $dns (eq $dns0)))
    (type $tls0 (record (field "alert-id" (option u8)) (field "alert-message" (option string))))
    (export "TLS-alert-received-payload" (type $tls (eq $tls0)))
    (type $ec0 (variant {cases}))
    (export "error-code" (type (eq $ec0)))))
  (alias export $types "request" (type $req))
  (alias export $types "response" (type $resp))
  (alias export $types "error-code" (type $ec))
  (type $res (result (own $resp) (error $ec)))
  (import "wasi:http/client@0.3.0" (instance $client
    (alias outer $C $req (type $r))
    (alias outer $C $resp (type $rs))
    (alias outer $C $ec (type $e))
    (export "send" (func async (param "request" (own $r)) (result (result (own $rs) (error $e)))))))
  (alias export $client "send" (func $send))
  (core module $Libc
    (memory (export "mem") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $Libc))
  (core func $send (canon lower (func $send) (memory $libc "mem") (realloc (func $libc "realloc"))))
  (core func $ret (canon task.return (result $res) (memory $libc "mem")))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "send" (func $send (param i32 i32)))
    (import "" "ret" (func $ret (param i32 i32 i32 i64 i32 i32 i32 i32)))
    (func (export "handle") (param $req i32)
      (call $send (local.get $req) (i32.const 64))
      (if (i32.eqz (i32.load8_u (i32.const 64)))
        (then (call $ret (i32.const 0) (i32.load (i32.const 72))
                         (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
        (else (call $ret (i32.const 1) (i32.load8_u (i32.const 72))
                         (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $libc "mem"))
    (export "send" (func $send))
    (export "ret" (func $ret))))))
  (func $handle async (param "request" (own $req)) (result $res)
    (canon lift (core func $m "handle") async (memory $libc "mem")))
  (instance $h (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $h))
)"#
    );
    let buf = wast::parser::ParseBuffer::new(&wat).unwrap();
    let mut w: wast::Wat = wast::parser::parse(&buf).unwrap();
    w.encode().unwrap()
}

/// A backend on an ephemeral port: answers every request with its method,
/// path and body.
async fn backend() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let what = format!("{} {} ", req.method(), req.uri());
                        let body = req.into_body().collect().await?.to_bytes();
                        let mut out = what.into_bytes();
                        out.extend_from_slice(&body);
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(out))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn outgoing_requests_go_only_where_allowed() {
    let dir = std::env::temp_dir().join(format!("canon-async-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join("proxy.wasm");
    std::fs::write(&wasm, proxy_component()).unwrap();
    let wasm = wasm.display().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let back = rt.block_on(backend()).to_string();
    let allowed = Server::start_with(&wasm, &["--allow-outgoing", &back]);
    let denied = Server::start_with(&wasm, &[]);
    let (a, d) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            // The proxy sends the request on to its `Host`: the backend.
            let mut c = connect(&allowed.addr).await;
            let a = send(&mut c, &back, "POST", "/via/proxy?x=1", b"payload".to_vec()).await;
            let mut c = connect(&denied.addr).await;
            let d = send(&mut c, &back, "GET", "/nope", vec![]).await;
            (a, d)
        })
        .await
        .expect("the test took too long")
    });
    assert_eq!(a.status, 200, "{:#?}", allowed.lines());
    assert_eq!(
        String::from_utf8_lossy(&a.body),
        "POST /via/proxy?x=1 payload"
    );
    // Not allowed: the guest's `send` got `HTTP-request-denied`, which it
    // returned from `handle`.
    assert_eq!(d.status, 500);
    denied.wait_line(
        "handle returned an error: HTTP-request-denied",
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A request body the test writes piece by piece.
struct ChanBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|d| d.map(|d| Ok(hyper::body::Frame::data(d))))
    }
}

#[test]
fn a_request_body_reaches_the_guest_as_it_arrives() {
    let s = Server::start(&["--workers", "1"]);
    let addr = s.addr.clone();
    let got = bounded(60, async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let req = hyper::Request::builder()
            .method("POST")
            .uri("/echo")
            .header("host", &addr)
            .body(ChanBody(rx))
            .unwrap();
        tx.send(Bytes::from_static(b"first\n")).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        // The first piece comes back while the request is still open:
        // neither body is buffered whole.
        let mut got = Vec::new();
        while got.len() < 6 {
            let f = body.frame().await.expect("a frame").unwrap();
            got.extend_from_slice(f.data_ref().unwrap());
        }
        assert_eq!(got, b"first\n");
        tx.send(Bytes::from_static(b"second\n")).unwrap();
        drop(tx);
        while let Some(f) = body.frame().await {
            if let Ok(d) = f.unwrap().into_data() {
                got.extend_from_slice(&d);
            }
        }
        got
    });
    assert_eq!(got, b"first\nsecond\n");
}
