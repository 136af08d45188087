//! The server: hyper 1 on tokio accepts connections and parses requests;
//! each request goes over a channel to a worker thread, which owns stores
//! (one instance of the component each) and drives their event loops.
//!
//! A worker calls `wasi:http/handler@0.3.0#handle` with a request resource
//! made from hyper's request (its body fed as it arrives), sends the
//! response's head back as soon as `handle` returns, and streams the body
//! as the guest writes it. An instance stays until its live-task count is
//! zero and no body of it is still in flight (the guest's work after the
//! response); then it is kept for reuse, or dropped once it served
//! `max_instance_reuse` requests. An instance that trapped is discarded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use canon_async_wasi::WasiCtx;
use canon_async_wasmi::{Call, Component, Engine, Func, Instance, Linker, Store, Val};
use hyper::body::Incoming;

use crate::client::Client;
use crate::types::{
    describe_error, method_val, scheme_val, BodyIn, BodyItem, FieldsData, Flow, HttpCtx, OutBody,
    OutTx, RequestData,
};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOpts {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How many requests one instance serves before it is dropped.
    pub max_instance_reuse: u64,
    /// How many requests one instance serves at once.
    pub max_concurrent_per_instance: usize,
    /// The `HOST:PORT`s outgoing requests may go to.
    pub allow_outgoing: Vec<String>,
    /// Worker threads.
    pub workers: usize,
    /// How long `handle` may take to answer (504 after).
    pub handler_timeout: Duration,
    /// Log instances' lives to stderr.
    pub verbose: bool,
}

impl Default for ServeOpts {
    fn default() -> Self {
        ServeOpts {
            addr: ([127, 0, 0, 1], 8080).into(),
            max_instance_reuse: 128,
            max_concurrent_per_instance: 16,
            allow_outgoing: Vec::new(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            handler_timeout: Duration::from_secs(30),
            verbose: false,
        }
    }
}

type Resp = hyper::Response<http_body_util::Either<OutBody, http_body_util::Full<Bytes>>>;

fn plain(status: u16, text: &str) -> Resp {
    let mut r = hyper::Response::new(http_body_util::Either::Right(http_body_util::Full::new(
        Bytes::from(text.to_string()),
    )));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static("text/plain"));
    r
}

/// What a worker is asked.
enum Msg {
    /// A request to serve.
    Request {
        id: u64,
        parts: http::request::Parts,
        credit: tokio::sync::mpsc::UnboundedSender<()>,
        reply: tokio::sync::oneshot::Sender<Resp>,
    },
    /// The next item of request `id`'s body.
    Body { id: u64, item: BodyItem },
    /// Work was queued for a store through its `Remote`.
    Wake,
    /// Stop once every instance is quiescent.
    Shutdown,
}

/// One instance of the component, in a store of its own.
struct Inst {
    n: u64,
    store: Store,
    inst: Instance,
    handle: Func,
    http: Arc<HttpCtx>,
    served: u64,
    /// `handle` calls in flight, with where their answer goes.
    calls: Vec<(Call, u64, tokio::sync::oneshot::Sender<Resp>)>,
    /// Logged as quiescent since it last served.
    idle_logged: bool,
}

struct Worker {
    k: usize,
    rx: mpsc::Receiver<Msg>,
    /// Its own channel, to wake itself from other threads.
    me: mpsc::Sender<Msg>,
    engine: Engine,
    component: Component,
    opts: Arc<ServeOpts>,
    insts: Vec<Inst>,
    /// Which instance each request with a body in flight is in.
    bodies: HashMap<u64, u64>,
    next: Arc<AtomicU64>,
    client: Arc<Client>,
}

fn log(opts: &ServeOpts, s: impl FnOnce() -> String) {
    if opts.verbose {
        eprintln!("[serve] {}", s());
    }
}

impl Worker {
    fn new_instance(&mut self) -> Result<Inst, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let wasi = Arc::new(WasiCtx::new(vec!["serve".into()]));
        let http = HttpCtx::new(Some(self.client.clone()));
        let me = Mutex::new(self.me.clone());
        http.set_wake(Arc::new(move || {
            let _ = me.lock().unwrap_or_else(|p| p.into_inner()).send(Msg::Wake);
        }));
        let mut linker = Linker::new();
        canon_async_wasi::add_to_linker(&mut linker, &wasi).map_err(|e| e.to_string())?;
        crate::types::add_to_linker(&mut linker, &http).map_err(|e| e.to_string())?;
        let mut store = Store::new(&self.engine);
        let inst = linker
            .instantiate(&mut store, &self.component)
            .map_err(|e| format!("cannot instantiate the component: {e}"))?;
        let export = inst
            .export_names()
            .find(|n| n.starts_with("wasi:http/handler@0.3."))
            .map(|n| format!("{n}#handle"))
            .ok_or("the component exports no wasi:http/handler@0.3.x")?;
        let handle = inst.func(&export).ok_or("no handle function")?;
        log(&self.opts, || {
            format!("instance {n} created (worker {})", self.k)
        });
        Ok(Inst {
            n,
            store,
            inst,
            handle,
            http,
            served: 0,
            calls: Vec::new(),
            idle_logged: false,
        })
    }

    fn busy(i: &Inst) -> usize {
        i.calls.len() + i.http.sending()
    }

    fn start(
        &mut self,
        id: u64,
        parts: http::request::Parts,
        credit: tokio::sync::mpsc::UnboundedSender<()>,
        reply: tokio::sync::oneshot::Sender<Resp>,
    ) {
        let o = self.opts.clone();
        let pick = self.insts.iter().position(|i| {
            i.served < o.max_instance_reuse && Self::busy(i) < o.max_concurrent_per_instance
        });
        let k = match pick {
            Some(k) => k,
            None => match self.new_instance() {
                Ok(i) => {
                    self.insts.push(i);
                    self.insts.len() - 1
                }
                Err(e) => {
                    eprintln!("[serve] error: {e}");
                    let _ = reply.send(plain(500, "internal server error\n"));
                    return;
                }
            },
        };
        let i = &mut self.insts[k];
        i.served += 1;
        i.idle_logged = false;
        let authority = parts.uri.authority().map(|a| a.to_string()).or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
        let req = RequestData {
            method: method_val(&parts.method),
            scheme: scheme_val(Some(parts.uri.scheme_str().unwrap_or("http"))),
            authority,
            path_with_query: parts.uri.path_and_query().map(|p| p.to_string()),
            headers: FieldsData::from_map(&parts.headers),
            body: crate::types::Body::Host(id),
        };
        i.http.add_body(id, BodyIn::new(credit));
        self.bodies.insert(id, i.n);
        let http = i.http.clone();
        let v = i.store.with_host(|cx| http.new_request(cx, req));
        match i.store.call_concurrent(&i.handle, &[v]) {
            Ok(c) => i.calls.push((c, id, reply)),
            Err(e) => {
                eprintln!("[serve] error: cannot call handle: {e}");
                let _ = reply.send(plain(500, "internal server error\n"));
            }
        }
    }

    /// Runs every instance as far as it goes without waiting; answers the
    /// calls that returned; drops the instances whose work is done.
    /// Returns the time until the next timer of any instance.
    fn drive(&mut self) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        let o = self.opts.clone();
        let mut k = 0;
        while k < self.insts.len() {
            let i = &mut self.insts[k];
            let mut dead = None;
            // Until no call returns any more: the response's body starts
            // host work of its own.
            let mut answered = true;
            while answered && dead.is_none() {
                answered = false;
                match i.store.run_ready() {
                    Ok(w) => {
                        if let Some(w) = w {
                            wait = Some(wait.map_or(w, |x| x.min(w)));
                        }
                    }
                    Err(e) => {
                        dead = Some(e.to_string());
                        break;
                    }
                }
                let mut j = 0;
                while j < i.calls.len() {
                    match i.store.try_result(&i.calls[j].0) {
                        None => j += 1,
                        Some(r) => {
                            let (_, _, reply) = i.calls.remove(j);
                            answered = true;
                            match r {
                                Ok(vals) => {
                                    let http = i.http.clone();
                                    let resp = i.store.with_host(|cx| respond(cx, &http, vals));
                                    let _ = reply.send(resp);
                                }
                                Err(e) => {
                                    let _ = reply.send(plain(500, "internal server error\n"));
                                    dead = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            if let Some(e) = dead {
                let i = self.insts.remove(k);
                log(&o, || format!("instance {} trapped: {e}", i.n));
                for (_, _, reply) in i.calls {
                    let _ = reply.send(plain(500, "internal server error\n"));
                }
                i.http.fail_all("the instance trapped");
                self.bodies.retain(|_, n| *n != i.n);
                log(&o, || {
                    format!("instance {} dropped (trapped; not reused)", i.n)
                });
                continue;
            }
            let live = i.store.live_tasks(&i.inst);
            if live == 0 && Self::busy(i) == 0 && !i.idle_logged {
                i.idle_logged = true;
                log(&o, || {
                    format!(
                        "instance {} quiescent (0 live tasks, {} requests served)",
                        i.n, i.served
                    )
                });
                if i.served >= o.max_instance_reuse {
                    let i = self.insts.remove(k);
                    self.bodies.retain(|_, n| *n != i.n);
                    log(&o, || format!("instance {} dropped", i.n));
                    continue;
                }
            }
            k += 1;
        }
        wait
    }

    fn body(&mut self, id: u64, item: BodyItem) {
        let Some(n) = self.bodies.get(&id).copied() else {
            return;
        };
        if matches!(item, BodyItem::End(_) | BodyItem::Error(_)) {
            self.bodies.remove(&id);
        }
        if let Some(i) = self.insts.iter_mut().find(|i| i.n == n) {
            let http = i.http.clone();
            i.store.with_host(|cx| http.body_item(cx, id, item));
        }
    }

    fn run(mut self) {
        let mut stopping: Option<Instant> = None;
        loop {
            let wait = self.drive();
            if let Some(t) = stopping {
                let idle = self
                    .insts
                    .iter()
                    .all(|i| Self::busy(i) == 0 && i.store.live_tasks(&i.inst) == 0);
                if idle || t.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
            // Wait for a message or the next timer (at least a short poll
            // while stopping).
            let wait = match (wait, stopping) {
                (w, Some(_)) => Some(
                    w.unwrap_or(Duration::from_millis(10))
                        .min(Duration::from_millis(10)),
                ),
                (w, None) => w,
            };
            let first = match wait {
                Some(w) => match self.rx.recv_timeout(w) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => Some(Msg::Shutdown),
                },
                None => Some(self.rx.recv().unwrap_or(Msg::Shutdown)),
            };
            let mut next = first;
            while let Some(m) = next.take() {
                match m {
                    Msg::Request {
                        id,
                        parts,
                        credit,
                        reply,
                    } => {
                        if stopping.is_some() {
                            let _ = reply.send(plain(503, "shutting down\n"));
                        } else {
                            self.start(id, parts, credit, reply)
                        }
                    }
                    Msg::Body { id, item } => self.body(id, item),
                    Msg::Wake => {}
                    Msg::Shutdown => {
                        stopping.get_or_insert_with(Instant::now);
                    }
                }
                next = self.rx.try_recv().ok();
            }
        }
        let o = self.opts.clone();
        for i in self.insts.drain(..) {
            log(&o, || {
                format!(
                    "instance {} dropped at shutdown ({} live tasks)",
                    i.n,
                    i.store.live_tasks(&i.inst)
                )
            });
        }
        log(&o, || format!("worker {} stopped", self.k));
    }
}

/// The hyper response for `handle`'s result.
fn respond(cx: &mut canon_async_wasmi::HostCx<'_>, http: &Arc<HttpCtx>, vals: Vec<Val>) -> Resp {
    let v = match vals.into_iter().next() {
        Some(Val::Variant(0, Some(v))) => *v,
        Some(Val::Variant(1, Some(e))) => {
            eprintln!("[serve] handle returned an error: {}", describe_error(&e));
            return plain(500, "internal server error\n");
        }
        other => {
            eprintln!("[serve] handle returned {other:?}");
            return plain(500, "internal server error\n");
        }
    };
    let Some(r) = http.take_response(cx, &v) else {
        return plain(500, "internal server error\n");
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let flow = Arc::new(Flow::default());
    let tx = OutTx {
        tx,
        flow: flow.clone(),
    };
    let mut resp = hyper::Response::new(http_body_util::Either::Left(OutBody { rx, flow }));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    *resp.headers_mut() = r.headers.to_map();
    http.send_body(cx, r.body, r.sent, tx);
    resp
}

/// Feeds request `id`'s body to the worker, one frame per credit.
async fn feed(
    id: u64,
    mut body: Incoming,
    mut credit: tokio::sync::mpsc::UnboundedReceiver<()>,
    worker: mpsc::Sender<Msg>,
) {
    while credit.recv().await.is_some() {
        let item = BodyItem::next(&mut body).await;
        let last = !matches!(item, BodyItem::Data(_));
        if worker.send(Msg::Body { id, item }).is_err() || last {
            return;
        }
    }
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
}

/// Serves `component` as `opts` say until SIGINT or SIGTERM; `ready` is
/// told the address once the server listens. Blocks.
pub fn serve(
    component_bytes: &[u8],
    opts: ServeOpts,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let engine = Engine::new(&canon_async_wasmi::Config::default());
    let component = Component::new(&engine, component_bytes).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let opts = Arc::new(opts);
    let next = Arc::new(AtomicU64::new(0));
    let client = Arc::new(Client {
        allow: opts.allow_outgoing.clone(),
        rt: Some(rt.handle().clone()),
    });
    let mut txs = Vec::new();
    let mut threads = Vec::new();
    for k in 0..opts.workers.max(1) {
        let (tx, rx) = mpsc::channel();
        txs.push(tx.clone());
        let (engine, component, opts2, next, client) = (
            engine.clone(),
            component.clone(),
            opts.clone(),
            next.clone(),
            client.clone(),
        );
        let make = move || Worker {
            k,
            rx,
            me: tx,
            engine,
            component,
            opts: opts2,
            insts: Vec::new(),
            bodies: HashMap::new(),
            next,
            client,
        };
        // CPython's recursion runs deep: a large stack, as `run` has.
        let t = std::thread::Builder::new()
            .name(format!("canon-async serve worker {k}"))
            .stack_size(256 << 20)
            .spawn(move || make().run())
            .map_err(|e| e.to_string())?;
        threads.push(t);
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(opts.addr))
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    ready(addr);
    let txs2 = txs.clone();
    let o = opts.clone();
    rt.block_on(async move {
        let req_ids = Arc::new(AtomicU64::new(0));
        let rr = Arc::new(AtomicU64::new(0));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        loop {
            let (conn, _) = tokio::select! {
                c = listener.accept() => match c {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            };
            let _ = conn.set_nodelay(true);
            let txs = txs2.clone();
            let (req_ids, rr, o) = (req_ids.clone(), rr.clone(), o.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let id = req_ids.fetch_add(1, Ordering::Relaxed) + 1;
                    // Each connection's requests go to the workers in turn.
                    let w = rr.fetch_add(1, Ordering::Relaxed) as usize % txs.len();
                    let tx = txs[w].clone();
                    let timeout = o.handler_timeout;
                    async move {
                        let (parts, body) = req.into_parts();
                        let (credit_tx, credit_rx) = tokio::sync::mpsc::unbounded_channel();
                        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                        tokio::spawn(feed(id, body, credit_rx, tx.clone()));
                        let sent = tx.send(Msg::Request {
                            id,
                            parts,
                            credit: credit_tx,
                            reply: reply_tx,
                        });
                        if sent.is_err() {
                            return Ok::<_, Infallible>(plain(503, "shutting down\n"));
                        }
                        Ok(match tokio::time::timeout(timeout, reply_rx).await {
                            Ok(Ok(r)) => r,
                            Ok(Err(_)) => plain(500, "internal server error\n"),
                            Err(_) => plain(504, "gateway timeout\n"),
                        })
                    }
                });
                let io = hyper_util::rt::TokioIo::new(conn);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
        Ok::<(), String>(())
    })?;
    log(&opts, || "stopping".into());
    for tx in &txs {
        let _ = tx.send(Msg::Shutdown);
    }
    drop(txs);
    for t in threads {
        let _ = t.join();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
