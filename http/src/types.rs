//! `wasi:http/types@0.3.0` on a [`Linker`]: `fields`, `request`,
//! `response` and `request-options` as host resources whose state is in
//! an [`HttpCtx`] (one per store), their bodies as `stream<u8>` with a
//! `future` of the trailers.
//!
//! A body the host feeds (a request that came in over the network) is a
//! [`BodyIn`]: its chunks arrive one at a time ([`HttpCtx::body_item`]),
//! and the next one is asked for only when the guest took the last one,
//! so the body is never buffered whole. A body the guest writes (a
//! response) is read by the host once the response is handed over
//! ([`HttpCtx::take_response`], [`HttpCtx::send_body`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use canon_async::CopyResult;
use canon_async_wasi::ty::{
    bytes as bytes_val, enumeration, err, future, list, none, ok, ok_unit, option, record, result,
    some, string, to_bytes, tuple, variant,
};
use canon_async_wasmi::{Error, FuncTy, HostCx, HostError, HostResource, Linker, Ty, Val};

/// The interface version served.
pub const V: &str = "0.3.0";

pub(crate) fn name(i: &str, f: &str) -> String {
    format!("wasi:http/{i}@{V}#{f}")
}

/// How many bytes the host reads from a guest's body stream at once.
pub(crate) const CHUNK: u32 = 64 << 10;

/// One piece of an incoming body, as it arrives.
#[derive(Debug)]
pub enum BodyItem {
    /// Bytes of the body.
    Data(Bytes),
    /// The end of the body, with its trailers if any.
    End(Option<http::HeaderMap>),
    /// The body failed (the connection broke).
    Error(String),
}

impl BodyItem {
    /// The next piece of a body hyper receives: data, or its end with the
    /// trailers, or its failure (frames of other kinds are skipped).
    pub async fn next(body: &mut hyper::body::Incoming) -> BodyItem {
        use http_body_util::BodyExt;
        loop {
            return match body.frame().await {
                None => BodyItem::End(None),
                Some(Err(e)) => BodyItem::Error(e.to_string()),
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => BodyItem::Data(d),
                    Err(f) => match f.into_trailers() {
                        Ok(t) => BodyItem::End(Some(t)),
                        Err(_) => continue,
                    },
                },
            };
        }
    }
}

/// A frame of an outgoing body, or its failure.
pub type OutFrame = Result<http_body::Frame<Bytes>, BodyError>;

/// Why a body the host sends failed.
#[derive(Debug)]
pub struct BodyError(pub String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// How many bytes of a body the host sends may wait for the client
/// before the host stops taking more from the guest.
pub const HIGH_WATER: usize = 64 << 10;

/// Flow control of a body the host sends: the bytes queued for the
/// client, and what resumes the source once the client took enough.
#[derive(Default)]
pub struct Flow {
    inner: Mutex<FlowState>,
}

#[derive(Default)]
struct FlowState {
    queued: usize,
    paused: Option<Box<dyn FnOnce() + Send>>,
    closed: bool,
}

impl Flow {
    fn lock(&self) -> MutexGuard<'_, FlowState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` more bytes queued; whether that is over [`HIGH_WATER`].
    fn add(&self, n: usize) -> bool {
        let mut s = self.lock();
        s.queued += n;
        s.queued > HIGH_WATER && !s.closed
    }

    /// Keeps `resume` until the client took enough (runs it now if it
    /// did meanwhile, or is gone).
    fn pause(&self, resume: Box<dyn FnOnce() + Send>) {
        let now = {
            let mut s = self.lock();
            if s.closed || s.queued <= HIGH_WATER / 2 {
                Some(resume)
            } else {
                s.paused = Some(resume);
                None
            }
        };
        if let Some(f) = now {
            f()
        }
    }

    /// The client took `n` bytes.
    pub fn taken(&self, n: usize) {
        let f = {
            let mut s = self.lock();
            s.queued = s.queued.saturating_sub(n);
            if s.queued <= HIGH_WATER / 2 {
                s.paused.take()
            } else {
                None
            }
        };
        if let Some(f) = f {
            f()
        }
    }

    /// The client is gone: nothing waits for it any more.
    pub fn close(&self) {
        let f = {
            let mut s = self.lock();
            s.closed = true;
            s.paused.take()
        };
        if let Some(f) = f {
            f()
        }
    }
}

/// A body the host sends (a response to a client, an outgoing request):
/// frames from the store's thread.
pub struct OutBody {
    /// The frames.
    pub rx: tokio::sync::mpsc::UnboundedReceiver<OutFrame>,
    /// Its flow control.
    pub flow: Arc<Flow>,
}

impl Drop for OutBody {
    fn drop(&mut self) {
        self.flow.close();
    }
}

impl http_body::Body for OutBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        let r = self.rx.poll_recv(cx);
        if let std::task::Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                self.flow.taken(d.len());
            }
        }
        r
    }
}

/// Where the frames of a body the host sends go.
#[derive(Clone)]
pub struct OutTx {
    /// The frames.
    pub tx: tokio::sync::mpsc::UnboundedSender<OutFrame>,
    /// Its flow control.
    pub flow: Arc<Flow>,
}

impl OutTx {
    /// Sends a frame (ignored when the client is gone).
    pub fn send(&self, f: OutFrame) -> bool {
        self.tx.send(f).is_ok()
    }

    /// Sends bytes; whether the client is now too far behind.
    fn send_data(&self, d: Bytes) -> bool {
        let n = d.len();
        // Counted before it can be taken (by another thread) and
        // uncounted.
        let over = self.flow.add(n);
        if self.send(Ok(http_body::Frame::data(d))) {
            over
        } else {
            self.flow.taken(n);
            false
        }
    }
}

/// A header list.
#[derive(Clone, Debug, Default)]
pub struct FieldsData {
    /// Names (lower case) and values, in order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Whether the guest may change it (`immutable` otherwise).
    pub mutable: bool,
}

impl FieldsData {
    /// From hyper's header map (immutable, as the headers of an incoming
    /// request are).
    pub fn from_map(h: &http::HeaderMap) -> Self {
        FieldsData {
            entries: h
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
            mutable: false,
        }
    }

    /// To hyper's header map (entries hyper cannot represent are left out).
    pub fn to_map(&self) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        for (k, v) in &self.entries {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_bytes(v),
            ) {
                m.append(k, v);
            }
        }
        m
    }
}

/// A body as a request or response holds it.
pub enum Body {
    /// None.
    Empty,
    /// Fed by the host: the [`BodyIn`] of this id.
    Host(u64),
    /// Written by a guest: its stream (if any) and its trailers future.
    Guest {
        /// The readable end of the guest's `stream<u8>`.
        contents: Option<Val>,
        /// The readable end of `future<result<option<trailers>, error-code>>`.
        trailers: Val,
    },
}

/// A request.
pub struct RequestData {
    /// `method` as a value.
    pub method: Val,
    /// `option<scheme>` as a value.
    pub scheme: Val,
    /// The authority.
    pub authority: Option<String>,
    /// The path with query.
    pub path_with_query: Option<String>,
    /// The headers.
    pub headers: FieldsData,
    /// The body.
    pub body: Body,
}

/// A response.
pub struct ResponseData {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: FieldsData,
    /// The body.
    pub body: Body,
    /// The host's writable end of the future `response.new` returned (the
    /// outcome of sending the response).
    pub sent: Option<Val>,
}

/// Where the chunks of a host-fed body go.
enum Target {
    /// Nobody asked for them yet.
    Waiting,
    /// To the guest, through the host's writable ends of the stream and
    /// trailers future `consume-body` returned.
    Guest { stream: Val, trailers: Val },
    /// Straight to an outgoing body (`sid` in `Tables::sending`): the
    /// guest passed the stream it got from `consume-body` on as the
    /// contents of a response.
    Bridged { tx: OutTx, sid: u64 },
}

/// A body the host feeds, chunk by chunk.
pub struct BodyIn {
    target: Target,
    /// The stream and trailers future handed to the guest, to recognise
    /// them when they come back (`Target::Guest`'s values).
    ends: Option<(Val, Val)>,
    /// Items that arrived and were not passed on yet.
    queue: VecDeque<BodyItem>,
    /// Whether a write to the guest is in progress.
    writing: bool,
    /// Asks the source for the next item.
    credit: tokio::sync::mpsc::UnboundedSender<()>,
}

impl BodyIn {
    /// A body whose next item is asked for on `credit`.
    pub fn new(credit: tokio::sync::mpsc::UnboundedSender<()>) -> Self {
        BodyIn {
            target: Target::Waiting,
            ends: None,
            queue: VecDeque::new(),
            writing: false,
            credit,
        }
    }
}

/// The host resources of `wasi:http/types`.
#[derive(Clone)]
pub struct Resources {
    /// `fields`.
    pub fields: HostResource,
    /// `request`.
    pub request: HostResource,
    /// `response`.
    pub response: HostResource,
    /// `request-options`.
    pub options: HostResource,
}

#[derive(Default)]
struct Tables {
    next: u32,
    fields: HashMap<u32, FieldsData>,
    requests: HashMap<u32, RequestData>,
    responses: HashMap<u32, ResponseData>,
    options: HashMap<u32, [Option<u64>; 3]>,
    bodies: HashMap<u64, BodyIn>,
    /// Bodies being sent, by id: failed with an error if the instance
    /// traps.
    sending: HashMap<u64, OutTx>,
    next_send: u64,
}

impl Tables {
    fn rep(&mut self) -> u32 {
        self.next = self.next.wrapping_add(1).max(1);
        self.next
    }
}

/// The state of `wasi:http` for one store.
pub struct HttpCtx {
    tables: Mutex<Tables>,
    res: std::sync::OnceLock<Resources>,
    /// Wakes the thread that drives the store (work was queued through a
    /// `Remote`).
    wake: std::sync::OnceLock<Arc<dyn Fn() + Send + Sync>>,
    /// Outgoing requests: which `HOST:PORT`s are allowed, and how they go.
    pub(crate) client: Option<Arc<crate::client::Client>>,
}

impl HttpCtx {
    /// A context with empty tables; `client` sends outgoing requests (all
    /// are denied without one).
    pub fn new(client: Option<Arc<crate::client::Client>>) -> Arc<Self> {
        Arc::new(HttpCtx {
            tables: Mutex::new(Tables::default()),
            res: std::sync::OnceLock::new(),
            wake: std::sync::OnceLock::new(),
            client,
        })
    }

    /// Sets how to wake the thread that drives the store.
    pub fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let _ = self.wake.set(wake);
    }

    /// Wakes the thread that drives the store, if it is told how.
    pub fn wake_store(&self) {
        if let Some(w) = self.wake.get() {
            w()
        }
    }

    fn t(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The resources (after [`add_to_linker`]).
    pub fn resources(&self) -> &Resources {
        self.res.get().expect("add_to_linker ran")
    }

    /// Makes a request resource for the guest.
    pub fn new_request(&self, cx: &mut HostCx<'_>, r: RequestData) -> Val {
        let mut t = self.t();
        let rep = t.rep();
        t.requests.insert(rep, r);
        drop(t);
        cx.resource_new(&self.resources().request, rep)
    }

    /// Makes a response resource for the guest.
    pub fn new_response(&self, cx: &mut HostCx<'_>, r: ResponseData) -> Val {
        let mut t = self.t();
        let rep = t.rep();
        t.responses.insert(rep, r);
        drop(t);
        cx.resource_new(&self.resources().response, rep)
    }

    /// Registers a host-fed body under `id`.
    pub fn add_body(&self, id: u64, b: BodyIn) {
        self.t().bodies.insert(id, b);
    }

    /// The response an own handle the guest passed refers to (removed
    /// from the table: the host owns it now).
    pub fn take_response(&self, cx: &mut HostCx<'_>, v: &Val) -> Option<ResponseData> {
        let rep = cx.resource_rep(&self.resources().response, v)?;
        self.t().responses.remove(&rep)
    }

    /// The request an own handle refers to (removed from the table).
    pub fn take_request(&self, cx: &mut HostCx<'_>, v: &Val) -> Option<RequestData> {
        let rep = cx.resource_rep(&self.resources().request, v)?;
        self.t().requests.remove(&rep)
    }

    /// How many bodies are being sent now.
    pub fn sending(&self) -> usize {
        self.t().sending.len()
    }

    /// Fails every body being sent (the instance trapped).
    pub fn fail_all(&self, why: &str) {
        for (_, tx) in self.t().sending.drain() {
            let _ = tx.send(Err(BodyError(why.to_string())));
        }
    }

    fn fields_rep(&self, cx: &mut HostCx<'_>, v: &Val) -> Result<u32, HostError> {
        cx.resource_rep(&self.resources().fields, v)
            .ok_or_else(|| HostError::new("not a fields handle"))
    }

    fn new_fields(&self, cx: &mut HostCx<'_>, f: FieldsData) -> Val {
        let mut t = self.t();
        let rep = t.rep();
        t.fields.insert(rep, f);
        drop(t);
        cx.resource_new(&self.resources().fields, rep)
    }

    fn take_fields(&self, cx: &mut HostCx<'_>, v: &Val) -> Result<FieldsData, HostError> {
        let rep = self.fields_rep(cx, v)?;
        self.t()
            .fields
            .remove(&rep)
            .ok_or_else(|| HostError::new("unknown fields"))
    }

    /// A host-fed body's next item arrived.
    pub fn body_item(self: &Arc<Self>, cx: &mut HostCx<'_>, id: u64, item: BodyItem) {
        let mut t = self.t();
        let Some(b) = t.bodies.get_mut(&id) else {
            return;
        };
        b.queue.push_back(item);
        drop(t);
        self.pump(cx, id);
    }

    /// Passes a host-fed body's queued items on, as far as its target
    /// takes them now.
    fn pump(self: &Arc<Self>, cx: &mut HostCx<'_>, id: u64) {
        loop {
            let mut t = self.t();
            let Some(b) = t.bodies.get_mut(&id) else {
                return;
            };
            if b.writing {
                return;
            }
            let Some(item) = b.queue.pop_front() else {
                return;
            };
            match &b.target {
                Target::Waiting => {
                    b.queue.push_front(item);
                    return;
                }
                Target::Bridged { tx, sid } => {
                    let (tx, sid) = (tx.clone(), *sid);
                    match item {
                        BodyItem::Data(d) => {
                            let credit = b.credit.clone();
                            if tx.send_data(d) {
                                tx.flow.pause(Box::new(move || {
                                    let _ = credit.send(());
                                }));
                            } else {
                                let _ = credit.send(());
                            }
                        }
                        BodyItem::End(trailers) => {
                            t.bodies.remove(&id);
                            t.sending.remove(&sid);
                            drop(t);
                            if let Some(tr) = trailers {
                                let _ = tx.send(Ok(http_body::Frame::trailers(tr)));
                            }
                            return;
                        }
                        BodyItem::Error(e) => {
                            t.bodies.remove(&id);
                            t.sending.remove(&sid);
                            let _ = tx.send(Err(BodyError(e)));
                            return;
                        }
                    }
                }
                Target::Guest { stream, trailers } => {
                    let (stream, trailers) = (stream.clone(), trailers.clone());
                    match item {
                        BodyItem::Data(d) => {
                            b.writing = true;
                            drop(t);
                            let vals = d.iter().map(|b| Val::U8(*b)).collect();
                            let me = self.clone();
                            write_all(cx, stream, vals, move |cx, dropped| {
                                let mut t = me.t();
                                if dropped {
                                    // The guest does not want the rest.
                                    if let Some(b) = t.bodies.remove(&id) {
                                        drop(t);
                                        if let Target::Guest { stream, trailers } = b.target {
                                            let _ = cx.drop_end(&stream);
                                            resolve(cx, trailers, ok(none()));
                                        }
                                    }
                                    return;
                                }
                                if let Some(b) = t.bodies.get_mut(&id) {
                                    b.writing = false;
                                    let _ = b.credit.send(());
                                }
                                drop(t);
                                me.pump(cx, id);
                            });
                            return;
                        }
                        BodyItem::End(tr) => {
                            t.bodies.remove(&id);
                            drop(t);
                            let _ = cx.drop_end(&stream);
                            let v = match tr {
                                Some(tr) => {
                                    let f = self.new_fields(cx, FieldsData::from_map(&tr));
                                    ok(some(f))
                                }
                                None => ok(none()),
                            };
                            resolve(cx, trailers, v);
                            return;
                        }
                        BodyItem::Error(e) => {
                            t.bodies.remove(&id);
                            drop(t);
                            let _ = cx.drop_end(&stream);
                            resolve(cx, trailers, err(internal_error(&e)));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Sends the body `body` of a response to `tx`: reads the guest's
    /// stream as it writes it, then the trailers; or bridges a host-fed
    /// body straight through. `sent` (the future `response.new` returned)
    /// is resolved at the end.
    pub fn send_body(
        self: &Arc<Self>,
        cx: &mut HostCx<'_>,
        body: Body,
        sent: Option<Val>,
        tx: OutTx,
    ) {
        let mut t = self.t();
        t.next_send += 1;
        let sid = t.next_send;
        t.sending.insert(sid, tx.clone());
        drop(t);
        match body {
            Body::Empty => self.body_done(cx, sid, sent, None),
            Body::Host(id) => {
                let mut t = self.t();
                if let Some(b) = t.bodies.get_mut(&id) {
                    b.target = Target::Bridged {
                        tx: tx.clone(),
                        sid,
                    };
                    let _ = b.credit.send(());
                } else {
                    t.sending.remove(&sid);
                }
                drop(t);
                self.pump(cx, id);
                resolve_opt(cx, sent, ok_unit());
            }
            Body::Guest { contents, trailers } => {
                // A host-fed stream coming back: bridge it.
                let bridged = contents.as_ref().and_then(|c| {
                    self.t()
                        .bodies
                        .iter()
                        .find(|(_, b)| b.ends.as_ref().is_some_and(|(s, _)| s == c))
                        .map(|(id, _)| *id)
                });
                if let Some(id) = bridged {
                    // The trailers come with the bridged body (the
                    // request's own); a future of the guest's is read and
                    // dropped.
                    let mut t = self.t();
                    let same = t
                        .bodies
                        .get(&id)
                        .and_then(|b| b.ends.as_ref())
                        .is_some_and(|(_, f)| *f == trailers);
                    if let Some(b) = t.bodies.get_mut(&id) {
                        b.target = Target::Bridged {
                            tx: tx.clone(),
                            sid,
                        };
                        if !b.writing {
                            let _ = b.credit.send(());
                        }
                    }
                    drop(t);
                    if !same {
                        discard_future(cx, trailers);
                    }
                    self.pump(cx, id);
                    resolve_opt(cx, sent, ok_unit());
                    return;
                }
                match contents {
                    Some(c) => self.read_body(cx, sid, c, trailers, sent),
                    None => self.read_trailers(cx, sid, trailers, sent),
                }
            }
        }
    }

    fn read_body(
        self: &Arc<Self>,
        cx: &mut HostCx<'_>,
        sid: u64,
        c: Val,
        trailers: Val,
        sent: Option<Val>,
    ) {
        let me = self.clone();
        let c2 = c.clone();
        let r = cx.read(&c, CHUNK, move |cx, vals, done| {
            if let Some(b) = to_bytes(&vals).filter(|b| !b.is_empty()) {
                // A client that left: the guest's work goes on, its bytes
                // go nowhere.
                let out = me.t().sending.get(&sid).cloned();
                if let Some(out) = out {
                    if out.send_data(Bytes::from(b)) && done.result != CopyResult::Dropped {
                        // The client is behind: read on once it caught up.
                        let remote = cx.remote();
                        let wake = me.wake.get().cloned();
                        let me2 = me.clone();
                        out.flow.pause(Box::new(move || {
                            remote.run(move |cx| me2.read_body(cx, sid, c2, trailers, sent));
                            if let Some(w) = wake {
                                w();
                            }
                        }));
                        return;
                    }
                }
            }
            if done.result == CopyResult::Dropped {
                let _ = cx.drop_end(&c2);
                me.read_trailers(cx, sid, trailers, sent);
            } else {
                me.read_body(cx, sid, c2, trailers, sent);
            }
        });
        if let Err(e) = r {
            self.fail(sid, &format!("cannot read the response body: {e}"));
        }
    }

    fn read_trailers(
        self: &Arc<Self>,
        cx: &mut HostCx<'_>,
        sid: u64,
        trailers: Val,
        sent: Option<Val>,
    ) {
        let me = self.clone();
        let f = trailers.clone();
        let sent2 = sent.clone();
        let r = cx.read(&trailers, 1, move |cx, vals, _| {
            let _ = cx.drop_end(&f);
            // result<option<trailers>, error-code>
            let tr = match vals.first() {
                Some(Val::Variant(0, Some(o))) => match o.as_ref() {
                    Val::Variant(1, Some(h)) => me.take_fields(cx, h).ok(),
                    _ => None,
                },
                Some(Val::Variant(1, _)) => {
                    me.fail(sid, "the guest's body failed");
                    resolve_opt(cx, sent, ok_unit());
                    return;
                }
                _ => None,
            };
            me.body_done(cx, sid, sent, tr.map(|f| f.to_map()));
        });
        if r.is_err() {
            self.body_done(cx, sid, sent2, None);
        }
    }

    fn body_done(
        &self,
        cx: &mut HostCx<'_>,
        sid: u64,
        sent: Option<Val>,
        tr: Option<http::HeaderMap>,
    ) {
        if let Some(tx) = self.t().sending.remove(&sid) {
            if let Some(tr) = tr {
                let _ = tx.send(Ok(http_body::Frame::trailers(tr)));
            }
        }
        resolve_opt(cx, sent, ok_unit());
    }

    fn fail(&self, sid: u64, why: &str) {
        if let Some(tx) = self.t().sending.remove(&sid) {
            let _ = tx.send(Err(BodyError(why.to_string())));
        }
    }
}

/// Writes `v` to the host's future `f`, then drops it.
pub(crate) fn resolve(cx: &mut HostCx<'_>, f: Val, v: Val) {
    let f2 = f.clone();
    let _ = cx.write(&f, vec![v], move |cx, _| {
        let _ = cx.drop_end(&f2);
    });
}

fn resolve_opt(cx: &mut HostCx<'_>, f: Option<Val>, v: Val) {
    if let Some(f) = f {
        resolve(cx, f, v);
    }
}

/// Reads the guest's future `f` (whatever it says) and drops it, so that
/// its writer is never left waiting.
pub(crate) fn discard_future(cx: &mut HostCx<'_>, f: Val) {
    let f2 = f.clone();
    let _ = cx.read(&f, 1, move |cx, _, _| {
        let _ = cx.drop_end(&f2);
    });
}

/// Writes `vals` to the host's stream `s`, re-offering what the reader did
/// not take; `then(cx, dropped)` runs once all moved or the reader left.
fn write_all(
    cx: &mut HostCx<'_>,
    s: Val,
    vals: Vec<Val>,
    then: impl FnOnce(&mut HostCx<'_>, bool) + Send + 'static,
) {
    let s2 = s.clone();
    let mut rest = vals.clone();
    let slot = Arc::new(Mutex::new(Some(then)));
    let slot2 = slot.clone();
    let r = cx.write(&s, vals, move |cx, done| {
        let Some(then) = slot2.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        if done.result == CopyResult::Dropped {
            return then(cx, true);
        }
        rest.drain(..(done.progress as usize).min(rest.len()));
        if rest.is_empty() {
            then(cx, false)
        } else {
            write_all(cx, s2, rest, then)
        }
    });
    if r.is_err() {
        if let Some(then) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            cx.defer(move |cx| then(cx, true));
        }
    }
}

/// `field-size-payload`.
fn field_size() -> Ty {
    record(&[
        ("field-name", option(Ty::String)),
        ("field-size", option(Ty::U32)),
    ])
}

/// `error-code`.
pub fn error_code() -> Ty {
    let o = |t: Ty| Some(option(t));
    variant(&[
        ("DNS-timeout", None),
        (
            "DNS-error",
            Some(record(&[
                ("rcode", option(Ty::String)),
                ("info-code", option(Ty::U16)),
            ])),
        ),
        ("destination-not-found", None),
        ("destination-unavailable", None),
        ("destination-IP-prohibited", None),
        ("destination-IP-unroutable", None),
        ("connection-refused", None),
        ("connection-terminated", None),
        ("connection-timeout", None),
        ("connection-read-timeout", None),
        ("connection-write-timeout", None),
        ("connection-limit-reached", None),
        ("TLS-protocol-error", None),
        ("TLS-certificate-error", None),
        (
            "TLS-alert-received",
            Some(record(&[
                ("alert-id", option(Ty::U8)),
                ("alert-message", option(Ty::String)),
            ])),
        ),
        ("HTTP-request-denied", None),
        ("HTTP-request-length-required", None),
        ("HTTP-request-body-size", o(Ty::U64)),
        ("HTTP-request-method-invalid", None),
        ("HTTP-request-URI-invalid", None),
        ("HTTP-request-URI-too-long", None),
        ("HTTP-request-header-section-size", o(Ty::U32)),
        ("HTTP-request-header-size", o(field_size())),
        ("HTTP-request-trailer-section-size", o(Ty::U32)),
        ("HTTP-request-trailer-size", Some(field_size())),
        ("HTTP-response-incomplete", None),
        ("HTTP-response-header-section-size", o(Ty::U32)),
        ("HTTP-response-header-size", Some(field_size())),
        ("HTTP-response-body-size", o(Ty::U64)),
        ("HTTP-response-trailer-section-size", o(Ty::U32)),
        ("HTTP-response-trailer-size", Some(field_size())),
        ("HTTP-response-transfer-coding", o(Ty::String)),
        ("HTTP-response-content-coding", o(Ty::String)),
        ("HTTP-response-timeout", None),
        ("HTTP-upgrade-failed", None),
        ("HTTP-protocol-error", None),
        ("loop-detected", None),
        ("configuration-error", None),
        ("internal-error", o(Ty::String)),
    ])
}

/// The index of `error-code`'s case `name`.
pub fn error_case(name: &str) -> u32 {
    match error_code() {
        Ty::Variant(cs) => cs.iter().position(|(n, _)| n == name).unwrap_or(0) as u32,
        _ => 0,
    }
}

/// `internal-error(some(msg))`.
pub fn internal_error(msg: &str) -> Val {
    Val::Variant(
        error_case("internal-error"),
        Some(Box::new(some(string(msg)))),
    )
}

/// A readable description of an `error-code` value.
pub fn describe_error(v: &Val) -> String {
    match (error_code(), v) {
        (Ty::Variant(cs), Val::Variant(i, p)) => {
            let n = cs
                .get(*i as usize)
                .map_or("?", |c| c.0.as_str())
                .to_string();
            match p {
                Some(p) => format!("{n}({p:?})"),
                None => n,
            }
        }
        _ => format!("{v:?}"),
    }
}

const METHODS: &[&str] = &[
    "get", "head", "post", "put", "delete", "connect", "options", "trace", "patch",
];

/// `method`.
fn method_ty() -> Ty {
    let mut cs: Vec<(&str, Option<Ty>)> = METHODS.iter().map(|m| (*m, None)).collect();
    cs.push(("other", Some(Ty::String)));
    variant(&cs)
}

/// `method` as a value.
pub fn method_val(m: &http::Method) -> Val {
    let s = m.as_str().to_ascii_lowercase();
    match METHODS.iter().position(|x| *x == s) {
        Some(i) => Val::Variant(i as u32, None),
        None => Val::Variant(METHODS.len() as u32, Some(Box::new(string(m.as_str())))),
    }
}

/// The method a `method` value stands for.
pub fn method_of(v: &Val) -> Option<http::Method> {
    match v {
        Val::Variant(i, None) => METHODS
            .get(*i as usize)
            .and_then(|m| http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()),
        Val::Variant(_, Some(s)) => match s.as_ref() {
            Val::String(s) => http::Method::from_bytes(s.text.as_bytes()).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// `scheme`.
fn scheme_ty() -> Ty {
    variant(&[("HTTP", None), ("HTTPS", None), ("other", Some(Ty::String))])
}

/// `some(scheme)` for `http`/`https`/another.
pub fn scheme_val(s: Option<&str>) -> Val {
    match s {
        None => none(),
        Some("http") => some(Val::Variant(0, None)),
        Some("https") => some(Val::Variant(1, None)),
        Some(o) => some(Val::Variant(2, Some(Box::new(string(o))))),
    }
}

/// The scheme of an `option<scheme>` value.
pub fn scheme_of(v: &Val) -> Option<String> {
    match v {
        Val::Variant(1, Some(s)) => match s.as_ref() {
            Val::Variant(0, _) => Some("http".into()),
            Val::Variant(1, _) => Some("https".into()),
            Val::Variant(2, Some(o)) => match o.as_ref() {
                Val::String(s) => Some(s.text.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn header_error() -> Ty {
    variant(&[
        ("invalid-syntax", None),
        ("forbidden", None),
        ("immutable", None),
        ("size-exceeded", None),
        ("other", Some(option(Ty::String))),
    ])
}

fn he(case: u32) -> Val {
    err(Val::Variant(case, None))
}

const INVALID_SYNTAX: u32 = 0;
const IMMUTABLE: u32 = 2;

fn options_error() -> Ty {
    variant(&[
        ("not-supported", None),
        ("immutable", None),
        ("other", Some(option(Ty::String))),
    ])
}

fn sfunc(params: &[Ty], result: Option<Ty>) -> FuncTy {
    canon_async_wasi::ty::func(params, result)
}

fn str_arg(args: &[Val], i: usize) -> Result<String, HostError> {
    match args.get(i) {
        Some(Val::String(s)) => Ok(s.text.clone()),
        o => Err(HostError::new(format!(
            "argument {i}: expected a string, got {o:?}"
        ))),
    }
}

fn opt_str(v: Option<&Val>) -> Option<String> {
    match v {
        Some(Val::Variant(1, Some(s))) => match s.as_ref() {
            Val::String(s) => Some(s.text.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn opt_str_val(s: &Option<String>) -> Val {
    match s {
        Some(s) => some(string(s)),
        None => none(),
    }
}

fn valid_name(n: &str) -> bool {
    http::HeaderName::from_bytes(n.as_bytes()).is_ok()
}

fn valid_value(v: &[u8]) -> bool {
    http::HeaderValue::from_bytes(v).is_ok()
}

fn entry_list(f: &FieldsData) -> Val {
    Val::List(
        f.entries
            .iter()
            .map(|(k, v)| Val::Record(vec![string(k), bytes_val(v)]))
            .collect(),
    )
}

fn body_ty() -> Ty {
    canon_async_wasi::ty::byte_stream()
}

/// Defines `wasi:http/types@0.3.0` (and `wasi:http/client@0.3.0`) on
/// `linker` for the context `ctx`.
pub fn add_to_linker(l: &mut Linker, ctx: &Arc<HttpCtx>) -> Result<(), Error> {
    let iface = format!("wasi:http/types@{V}");
    let dtor = |which: u8| {
        let c = Arc::downgrade(ctx);
        move |_: &mut HostCx<'_>, rep: u32| {
            if let Some(c) = c.upgrade() {
                let mut t = c.t();
                match which {
                    0 => {
                        t.fields.remove(&rep);
                    }
                    1 => {
                        if let Some(RequestData {
                            body: Body::Host(id),
                            ..
                        }) = t.requests.remove(&rep)
                        {
                            t.bodies.remove(&id);
                        }
                    }
                    2 => {
                        t.responses.remove(&rep);
                    }
                    _ => {
                        t.options.remove(&rep);
                    }
                }
            }
        }
    };
    let res = Resources {
        fields: l.resource(&format!("{iface}#fields"), dtor(0))?,
        request: l.resource(&format!("{iface}#request"), dtor(1))?,
        response: l.resource(&format!("{iface}#response"), dtor(2))?,
        options: l.resource(&format!("{iface}#request-options"), dtor(3))?,
    };
    let _ = ctx.res.set(res.clone());
    l.trap_unknown_funcs(&iface);
    let fields = res.fields.clone();
    let own_f = fields.own();
    let bor_f = fields.borrow();
    let entries = list(tuple([Ty::String, list(Ty::U8)]));
    let t = |f: &str| name("types", f);

    // fields
    {
        let c = ctx.clone();
        l.func(
            &t("[constructor]fields"),
            sfunc(&[], Some(own_f.clone())),
            move |cx, _| {
                Ok(vec![c.new_fields(
                    cx,
                    FieldsData {
                        entries: vec![],
                        mutable: true,
                    },
                )])
            },
        )?;
        let c = ctx.clone();
        l.func(
            &t("[static]fields.from-list"),
            sfunc(
                std::slice::from_ref(&entries),
                Some(result(Some(own_f.clone()), Some(header_error()))),
            ),
            move |cx, args| {
                let Some(Val::List(es)) = args.first() else {
                    return Err(HostError::new("from-list: expected a list"));
                };
                let mut f = FieldsData {
                    entries: vec![],
                    mutable: true,
                };
                for e in es {
                    let Val::Record(kv) = e else {
                        return Err(HostError::new("from-list: expected tuples"));
                    };
                    let k = str_arg(kv, 0)?.to_ascii_lowercase();
                    let v = kv.get(1).and_then(|v| match v {
                        Val::List(b) => to_bytes(b),
                        _ => None,
                    });
                    match v {
                        Some(v) if valid_name(&k) && valid_value(&v) => f.entries.push((k, v)),
                        _ => return Ok(vec![he(INVALID_SYNTAX)]),
                    }
                }
                Ok(vec![ok(c.new_fields(cx, f))])
            },
        )?;
        // The methods: each runs `op` on the fields the borrow names.
        type Op = dyn Fn(&mut FieldsData, &[Val]) -> Result<Val, HostError> + Send + Sync;
        let method = |l: &mut Linker, m: &str, params: &[Ty], res_ty: Option<Ty>, op: Box<Op>| {
            let c = ctx.clone();
            let mut ps = vec![bor_f.clone()];
            ps.extend_from_slice(params);
            l.func(
                &t(&format!("[method]fields.{m}")),
                sfunc(&ps, res_ty),
                move |cx, args| {
                    let rep = c.fields_rep(cx, &args[0])?;
                    let mut tb = c.t();
                    let f = tb
                        .fields
                        .get_mut(&rep)
                        .ok_or_else(|| HostError::new("unknown fields"))?;
                    Ok(vec![op(f, &args[1..])?])
                },
            )
            .map(|_| ())
        };
        let lower = |a: &[Val]| str_arg(a, 0).map(|s| s.to_ascii_lowercase());
        method(
            l,
            "get",
            &[Ty::String],
            Some(list(list(Ty::U8))),
            Box::new(move |f, a| {
                let k = lower(a)?;
                Ok(Val::List(
                    f.entries
                        .iter()
                        .filter(|(n, _)| *n == k)
                        .map(|(_, v)| bytes_val(v))
                        .collect(),
                ))
            }),
        )?;
        method(
            l,
            "has",
            &[Ty::String],
            Some(Ty::Bool),
            Box::new(move |f, a| {
                let k = lower(a)?;
                Ok(Val::Bool(f.entries.iter().any(|(n, _)| *n == k)))
            }),
        )?;
        method(
            l,
            "set",
            &[Ty::String, list(list(Ty::U8))],
            Some(result(None, Some(header_error()))),
            Box::new(move |f, a| {
                let k = lower(a)?;
                if !f.mutable {
                    return Ok(he(IMMUTABLE));
                }
                let Some(Val::List(vs)) = a.get(1) else {
                    return Err(HostError::new("set: expected a list"));
                };
                let vs: Option<Vec<Vec<u8>>> = vs
                    .iter()
                    .map(|v| match v {
                        Val::List(b) => to_bytes(b).filter(|b| valid_value(b)),
                        _ => None,
                    })
                    .collect();
                let Some(vs) = vs.filter(|_| valid_name(&k)) else {
                    return Ok(he(INVALID_SYNTAX));
                };
                f.entries.retain(|(n, _)| *n != k);
                f.entries.extend(vs.into_iter().map(|v| (k.clone(), v)));
                Ok(ok_unit())
            }),
        )?;
        for (m, give) in [("delete", false), ("get-and-delete", true)] {
            let rt = if give {
                result(Some(list(list(Ty::U8))), Some(header_error()))
            } else {
                result(None, Some(header_error()))
            };
            method(
                l,
                m,
                &[Ty::String],
                Some(rt),
                Box::new(move |f, a| {
                    let k = lower(a)?;
                    if !f.mutable {
                        return Ok(he(IMMUTABLE));
                    }
                    let old: Vec<Val> = f
                        .entries
                        .iter()
                        .filter(|(n, _)| *n == k)
                        .map(|(_, v)| bytes_val(v))
                        .collect();
                    f.entries.retain(|(n, _)| *n != k);
                    Ok(if give { ok(Val::List(old)) } else { ok_unit() })
                }),
            )?;
        }
        method(
            l,
            "append",
            &[Ty::String, list(Ty::U8)],
            Some(result(None, Some(header_error()))),
            Box::new(move |f, a| {
                let k = lower(a)?;
                if !f.mutable {
                    return Ok(he(IMMUTABLE));
                }
                let v = match a.get(1) {
                    Some(Val::List(b)) => to_bytes(b),
                    _ => None,
                };
                match v {
                    Some(v) if valid_name(&k) && valid_value(&v) => {
                        f.entries.push((k, v));
                        Ok(ok_unit())
                    }
                    _ => Ok(he(INVALID_SYNTAX)),
                }
            }),
        )?;
        method(
            l,
            "copy-all",
            &[],
            Some(entries.clone()),
            Box::new(|f, _| Ok(entry_list(f))),
        )?;
        let c = ctx.clone();
        l.func(
            &t("[method]fields.clone"),
            sfunc(std::slice::from_ref(&bor_f), Some(own_f.clone())),
            move |cx, args| {
                let rep = c.fields_rep(cx, &args[0])?;
                let f = c
                    .t()
                    .fields
                    .get(&rep)
                    .cloned()
                    .ok_or_else(|| HostError::new("unknown fields"))?;
                Ok(vec![c.new_fields(cx, FieldsData { mutable: true, ..f })])
            },
        )?;
    }

    let trailers_ty = result(Some(option(own_f.clone())), Some(error_code()));
    let sent_ty = result(None, Some(error_code()));
    let own_req = res.request.own();
    let bor_req = res.request.borrow();
    let own_resp = res.response.own();
    let bor_resp = res.response.borrow();
    let own_opt = res.options.own();
    let bor_opt = res.options.borrow();

    // request
    {
        let c = ctx.clone();
        let tt = trailers_ty.clone();
        let st = sent_ty.clone();
        l.func(
            &t("[static]request.new"),
            sfunc(
                &[
                    own_f.clone(),
                    option(body_ty()),
                    future(Some(trailers_ty.clone())),
                    option(own_opt.clone()),
                ],
                Some(tuple([own_req.clone(), future(Some(sent_ty.clone()))])),
            ),
            move |cx, args| {
                let headers = c.take_fields(cx, &args[0])?;
                let contents = match &args[1] {
                    Val::Variant(1, Some(s)) => Some(s.as_ref().clone()),
                    _ => None,
                };
                if let Val::Variant(1, Some(o)) = &args[3] {
                    if let Some(rep) = cx.resource_rep(&c.resources().options, o) {
                        c.t().options.remove(&rep);
                    }
                }
                let _ = &tt;
                let sent = cx.future_new(Some(st.clone()));
                let r = RequestData {
                    method: Val::Variant(0, None),
                    scheme: none(),
                    authority: None,
                    path_with_query: None,
                    headers: FieldsData {
                        mutable: false,
                        ..headers
                    },
                    body: Body::Guest {
                        contents,
                        trailers: args[2].clone(),
                    },
                };
                let req = c.new_request(cx, r);
                // Outgoing requests are sent (or denied) as a whole by
                // `client.send`; nothing reports on this future later.
                resolve(cx, sent.clone(), ok_unit());
                Ok(vec![Val::Record(vec![req, sent])])
            },
        )?;
        type ReqOp = dyn Fn(&mut RequestData, &[Val]) -> Result<Val, HostError> + Send + Sync;
        let rmethod =
            |l: &mut Linker, m: &str, params: &[Ty], res_ty: Option<Ty>, op: Box<ReqOp>| {
                let c = ctx.clone();
                let mut ps = vec![bor_req.clone()];
                ps.extend_from_slice(params);
                l.func(
                    &t(&format!("[method]request.{m}")),
                    sfunc(&ps, res_ty),
                    move |cx, args| {
                        let rep = cx
                            .resource_rep(&c.resources().request, &args[0])
                            .ok_or_else(|| HostError::new("not a request handle"))?;
                        let mut tb = c.t();
                        let r = tb
                            .requests
                            .get_mut(&rep)
                            .ok_or_else(|| HostError::new("unknown request"))?;
                        Ok(vec![op(r, &args[1..])?])
                    },
                )
                .map(|_| ())
            };
        let unit_ok = || result(None, None);
        rmethod(
            l,
            "get-method",
            &[],
            Some(method_ty()),
            Box::new(|r, _| Ok(r.method.clone())),
        )?;
        rmethod(
            l,
            "set-method",
            &[method_ty()],
            Some(unit_ok()),
            Box::new(|r, a| {
                if method_of(&a[0]).is_none() {
                    return Ok(Val::Variant(1, None));
                }
                r.method = a[0].clone();
                Ok(ok_unit())
            }),
        )?;
        rmethod(
            l,
            "get-path-with-query",
            &[],
            Some(option(Ty::String)),
            Box::new(|r, _| Ok(opt_str_val(&r.path_with_query))),
        )?;
        rmethod(
            l,
            "set-path-with-query",
            &[option(Ty::String)],
            Some(unit_ok()),
            Box::new(|r, a| {
                r.path_with_query = opt_str(a.first());
                Ok(ok_unit())
            }),
        )?;
        rmethod(
            l,
            "get-scheme",
            &[],
            Some(option(scheme_ty())),
            Box::new(|r, _| Ok(r.scheme.clone())),
        )?;
        rmethod(
            l,
            "set-scheme",
            &[option(scheme_ty())],
            Some(unit_ok()),
            Box::new(|r, a| {
                r.scheme = a[0].clone();
                Ok(ok_unit())
            }),
        )?;
        rmethod(
            l,
            "get-authority",
            &[],
            Some(option(Ty::String)),
            Box::new(|r, _| Ok(opt_str_val(&r.authority))),
        )?;
        rmethod(
            l,
            "set-authority",
            &[option(Ty::String)],
            Some(unit_ok()),
            Box::new(|r, a| {
                r.authority = opt_str(a.first());
                Ok(ok_unit())
            }),
        )?;
        rmethod(
            l,
            "get-options",
            &[],
            Some(option(own_opt.clone())),
            Box::new(|_, _| Ok(none())),
        )?;
        let c = ctx.clone();
        l.func(
            &t("[method]request.get-headers"),
            sfunc(std::slice::from_ref(&bor_req), Some(own_f.clone())),
            move |cx, args| {
                let rep = cx
                    .resource_rep(&c.resources().request, &args[0])
                    .ok_or_else(|| HostError::new("not a request handle"))?;
                let h = c
                    .t()
                    .requests
                    .get(&rep)
                    .map(|r| r.headers.clone())
                    .ok_or_else(|| HostError::new("unknown request"))?;
                Ok(vec![c.new_fields(
                    cx,
                    FieldsData {
                        mutable: false,
                        ..h
                    },
                )])
            },
        )?;
        let c = ctx.clone();
        let tt = trailers_ty.clone();
        l.func(
            &t("[static]request.consume-body"),
            sfunc(
                &[own_req.clone(), future(Some(sent_ty.clone()))],
                Some(tuple([body_ty(), future(Some(trailers_ty.clone()))])),
            ),
            move |cx, args| {
                let r = c
                    .take_request(cx, &args[0])
                    .ok_or_else(|| HostError::new("unknown request"))?;
                discard_future(cx, args[1].clone());
                Ok(vec![c.consume(cx, r.body, &tt)])
            },
        )?;
    }

    // response
    {
        let c = ctx.clone();
        let st = sent_ty.clone();
        l.func(
            &t("[static]response.new"),
            sfunc(
                &[
                    own_f.clone(),
                    option(body_ty()),
                    future(Some(trailers_ty.clone())),
                ],
                Some(tuple([own_resp.clone(), future(Some(sent_ty.clone()))])),
            ),
            move |cx, args| {
                let headers = c.take_fields(cx, &args[0])?;
                let contents = match &args[1] {
                    Val::Variant(1, Some(s)) => Some(s.as_ref().clone()),
                    _ => None,
                };
                let sent = cx.future_new(Some(st.clone()));
                let r = ResponseData {
                    status: 200,
                    headers: FieldsData {
                        mutable: false,
                        ..headers
                    },
                    body: Body::Guest {
                        contents,
                        trailers: args[2].clone(),
                    },
                    sent: Some(sent.clone()),
                };
                Ok(vec![Val::Record(vec![c.new_response(cx, r), sent])])
            },
        )?;
        let resp_rep = |c: &HttpCtx, cx: &mut HostCx<'_>, v: &Val| {
            cx.resource_rep(&c.resources().response, v)
                .ok_or_else(|| HostError::new("not a response handle"))
        };
        let c = ctx.clone();
        l.func(
            &t("[method]response.get-status-code"),
            sfunc(std::slice::from_ref(&bor_resp), Some(Ty::U16)),
            move |cx, a| {
                let rep = resp_rep(&c, cx, &a[0])?;
                let s = c
                    .t()
                    .responses
                    .get(&rep)
                    .map(|r| r.status)
                    .ok_or_else(|| HostError::new("unknown response"))?;
                Ok(vec![Val::U16(s)])
            },
        )?;
        let c = ctx.clone();
        l.func(
            &t("[method]response.set-status-code"),
            sfunc(&[bor_resp.clone(), Ty::U16], Some(result(None, None))),
            move |cx, a| {
                let rep = resp_rep(&c, cx, &a[0])?;
                let Val::U16(s) = a[1] else {
                    return Err(HostError::new("set-status-code: expected a u16"));
                };
                if !(100..=999).contains(&s) {
                    return Ok(vec![Val::Variant(1, None)]);
                }
                let mut tb = c.t();
                let r = tb
                    .responses
                    .get_mut(&rep)
                    .ok_or_else(|| HostError::new("unknown response"))?;
                r.status = s;
                Ok(vec![ok_unit()])
            },
        )?;
        let c = ctx.clone();
        l.func(
            &t("[method]response.get-headers"),
            sfunc(std::slice::from_ref(&bor_resp), Some(own_f.clone())),
            move |cx, a| {
                let rep = resp_rep(&c, cx, &a[0])?;
                let h = c
                    .t()
                    .responses
                    .get(&rep)
                    .map(|r| r.headers.clone())
                    .ok_or_else(|| HostError::new("unknown response"))?;
                Ok(vec![c.new_fields(
                    cx,
                    FieldsData {
                        mutable: false,
                        ..h
                    },
                )])
            },
        )?;
        let c = ctx.clone();
        let tt = trailers_ty.clone();
        l.func(
            &t("[static]response.consume-body"),
            sfunc(
                &[own_resp.clone(), future(Some(sent_ty.clone()))],
                Some(tuple([body_ty(), future(Some(trailers_ty.clone()))])),
            ),
            move |cx, args| {
                let r = c
                    .take_response(cx, &args[0])
                    .ok_or_else(|| HostError::new("unknown response"))?;
                discard_future(cx, args[1].clone());
                if let Some(s) = r.sent {
                    resolve(cx, s, ok_unit());
                }
                Ok(vec![c.consume(cx, r.body, &tt)])
            },
        )?;
    }

    // request-options
    {
        let c = ctx.clone();
        l.func(
            &t("[constructor]request-options"),
            sfunc(&[], Some(own_opt.clone())),
            move |cx, _| {
                let mut tb = c.t();
                let rep = tb.rep();
                tb.options.insert(rep, [None; 3]);
                drop(tb);
                Ok(vec![cx.resource_new(&c.resources().options, rep)])
            },
        )?;
        for (i, what) in [
            "connect-timeout",
            "first-byte-timeout",
            "between-bytes-timeout",
        ]
        .iter()
        .enumerate()
        {
            let c = ctx.clone();
            l.func(
                &t(&format!("[method]request-options.get-{what}")),
                sfunc(std::slice::from_ref(&bor_opt), Some(option(Ty::U64))),
                move |cx, a| {
                    let rep = cx
                        .resource_rep(&c.resources().options, &a[0])
                        .ok_or_else(|| HostError::new("not request-options"))?;
                    let v = c.t().options.get(&rep).and_then(|o| o[i]);
                    Ok(vec![v.map_or(none(), |d| some(Val::U64(d)))])
                },
            )?;
            let c = ctx.clone();
            l.func(
                &t(&format!("[method]request-options.set-{what}")),
                sfunc(
                    &[bor_opt.clone(), option(Ty::U64)],
                    Some(result(None, Some(options_error()))),
                ),
                move |cx, a| {
                    let rep = cx
                        .resource_rep(&c.resources().options, &a[0])
                        .ok_or_else(|| HostError::new("not request-options"))?;
                    let d = match &a[1] {
                        Val::Variant(1, Some(d)) => match d.as_ref() {
                            Val::U64(d) => Some(*d),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(o) = c.t().options.get_mut(&rep) {
                        o[i] = d;
                    }
                    Ok(vec![ok_unit()])
                },
            )?;
        }
        let c = ctx.clone();
        l.func(
            &t("[method]request-options.clone"),
            sfunc(std::slice::from_ref(&bor_opt), Some(own_opt.clone())),
            move |cx, a| {
                let rep = cx
                    .resource_rep(&c.resources().options, &a[0])
                    .ok_or_else(|| HostError::new("not request-options"))?;
                let mut tb = c.t();
                let o = tb.options.get(&rep).copied().unwrap_or([None; 3]);
                let new = tb.rep();
                tb.options.insert(new, o);
                drop(tb);
                Ok(vec![cx.resource_new(&c.resources().options, new)])
            },
        )?;
    }
    let _ = enumeration;
    crate::client::add_to_linker(l, ctx, own_req, own_resp)?;
    Ok(())
}

impl HttpCtx {
    /// `consume-body`: the stream and trailers future of `body`.
    fn consume(self: &Arc<Self>, cx: &mut HostCx<'_>, body: Body, trailers_ty: &Ty) -> Val {
        match body {
            Body::Guest { contents, trailers } => {
                let s = match contents {
                    Some(s) => s,
                    None => {
                        // No body: an empty stream.
                        let s = cx.stream_new(Some(Ty::U8));
                        let _ = cx.drop_end(&s);
                        s
                    }
                };
                Val::Record(vec![s, trailers])
            }
            Body::Empty => {
                let s = cx.stream_new(Some(Ty::U8));
                let f = cx.future_new(Some(trailers_ty.clone()));
                let _ = cx.drop_end(&s);
                resolve(cx, f.clone(), ok(none()));
                Val::Record(vec![s, f])
            }
            Body::Host(id) => {
                let s = cx.stream_new(Some(Ty::U8));
                let f = cx.future_new(Some(trailers_ty.clone()));
                let mut t = self.t();
                if let Some(b) = t.bodies.get_mut(&id) {
                    b.target = Target::Guest {
                        stream: s.clone(),
                        trailers: f.clone(),
                    };
                    b.ends = Some((s.clone(), f.clone()));
                    let _ = b.credit.send(());
                }
                drop(t);
                self.pump(cx, id);
                Val::Record(vec![s, f])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The consumer (another thread) may take a frame before the sender
    /// paused: the pause must still be resumed, every time.
    #[test]
    fn a_pause_is_always_resumed_when_the_consumer_is_fast() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutFrame>();
        let out = OutTx {
            tx,
            flow: Arc::new(Flow::default()),
        };
        let flow = out.flow.clone();
        let consumer = std::thread::spawn(move || {
            while let Some(f) = rx.blocking_recv() {
                if let Some(d) = f.ok().and_then(|f| f.into_data().ok()) {
                    flow.taken(d.len());
                }
            }
        });
        for _ in 0..20_000 {
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            if out.send_data(Bytes::from(vec![0u8; HIGH_WATER + 1])) {
                out.flow.pause(Box::new(move || {
                    let _ = done_tx.send(());
                }));
                done_rx
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .expect("the paused sender was never resumed");
            }
        }
        drop(out);
        consumer.join().unwrap();
    }
}
