//! `wasi:http/client@0.3.0#send`: outgoing requests through hyper's
//! client, allowed only to the `HOST:PORT`s the embedder names; every
//! other one is answered with `HTTP-request-denied` without touching the
//! network.
//!
//! The request's body is read from the guest as hyper sends it; the
//! response comes back as a `response` resource whose body is fed to the
//! guest frame by frame, through the store's [`Remote`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use canon_async_wasi::ty::{err, ok};
use canon_async_wasmi::{Error, HostError, Linker, Remote, Ty, Val};

use crate::types::{
    error_case, error_code, method_of, name, scheme_of, BodyIn, BodyItem, FieldsData, Flow,
    HttpCtx, OutBody, OutTx, ResponseData,
};

/// Where outgoing requests may go, and the runtime that sends them.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// The `HOST:PORT`s allowed.
    pub allow: Vec<String>,
    /// The tokio runtime the requests go out on (none: every request is
    /// answered `configuration-error`).
    pub rt: Option<tokio::runtime::Handle>,
}

impl Client {
    /// Whether a request to `authority` (`HOST[:PORT]`, the port 80 when
    /// absent) may go out.
    pub fn allows(&self, authority: &str) -> bool {
        let a = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        self.allow.iter().any(|x| x.eq_ignore_ascii_case(&a))
    }
}

/// Ids of the bodies of outgoing requests' responses (apart from the
/// server's request ids).
static NEXT_BODY: AtomicU64 = AtomicU64::new(1 << 62);

fn code(case: &str) -> Val {
    Val::Variant(error_case(case), None)
}

/// Feeds a response's body to the guest through `remote`, one frame per
/// credit.
async fn feed(
    id: u64,
    mut body: hyper::body::Incoming,
    mut credit: tokio::sync::mpsc::UnboundedReceiver<()>,
    remote: Remote,
    ctx: Arc<HttpCtx>,
) {
    while credit.recv().await.is_some() {
        let item = BodyItem::next(&mut body).await;
        let last = !matches!(item, BodyItem::Data(_));
        let c = ctx.clone();
        if !remote.run(move |cx| c.body_item(cx, id, item)) || last {
            ctx.wake_store();
            return;
        }
        ctx.wake_store();
    }
}

pub(crate) fn add_to_linker(
    l: &mut Linker,
    ctx: &Arc<HttpCtx>,
    own_req: Ty,
    own_resp: Ty,
) -> Result<(), Error> {
    let c = ctx.clone();
    l.func_async(
        &name("client", "send"),
        canon_async_wasi::ty::async_func(
            &[own_req],
            Some(canon_async_wasi::ty::result(
                Some(own_resp),
                Some(error_code()),
            )),
        ),
        move |cx, args, call| {
            let req = c
                .take_request(cx, &args[0])
                .ok_or_else(|| HostError::new("send: not a request"))?;
            let authority = req.authority.clone().unwrap_or_default();
            let client = c.client.as_ref().filter(|cl| cl.allows(&authority));
            let answer = |cx: &mut canon_async_wasmi::HostCx<'_>, v: Val| {
                cx.complete(call, vec![v])
                    .map(|_| ())
                    .map_err(|t| HostError::new(t.to_string()))
            };
            let Some(client) = client else {
                return answer(cx, err(code("HTTP-request-denied")));
            };
            let Some(rt) = client.rt.clone() else {
                return answer(cx, err(code("configuration-error")));
            };
            if scheme_of(&req.scheme).is_some_and(|s| s != "http") {
                // No TLS in this host.
                return answer(cx, err(code("TLS-protocol-error")));
            }
            let Some(method) = method_of(&req.method) else {
                return answer(cx, err(code("HTTP-request-method-invalid")));
            };
            let path = req.path_with_query.clone().unwrap_or_else(|| "/".into());
            let mut head = http::Request::builder().method(method).uri(path);
            let mut headers = req.headers.to_map();
            if !headers.contains_key(http::header::HOST) {
                if let Ok(h) = http::HeaderValue::from_str(&authority) {
                    headers.insert(http::header::HOST, h);
                }
            }
            if let Some(h) = head.headers_mut() {
                *h = headers;
            }
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let flow = Arc::new(Flow::default());
            let Ok(hreq) = head.body(OutBody {
                rx,
                flow: flow.clone(),
            }) else {
                return answer(cx, err(code("HTTP-request-URI-invalid")));
            };
            // The request's body goes out as the guest writes it.
            c.send_body(cx, req.body, None, OutTx { tx, flow });
            let remote = cx.remote();
            let ctx = c.clone();
            rt.spawn(async move {
                let r: Result<_, Val> = async {
                    let tcp = tokio::net::TcpStream::connect(&authority)
                        .await
                        .map_err(|_| code("connection-refused"))?;
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                            .await
                            .map_err(|_| code("HTTP-protocol-error"))?;
                    tokio::spawn(conn);
                    sender
                        .send_request(hreq)
                        .await
                        .map_err(|_| code("HTTP-protocol-error"))
                }
                .await;
                let c2 = ctx.clone();
                match r {
                    Ok(resp) => {
                        let (parts, body) = resp.into_parts();
                        let id = NEXT_BODY.fetch_add(1, Ordering::Relaxed);
                        let (credit_tx, credit_rx) = tokio::sync::mpsc::unbounded_channel();
                        remote.run(move |cx| {
                            c2.add_body(id, BodyIn::new(credit_tx));
                            let r = ResponseData {
                                status: parts.status.as_u16(),
                                headers: FieldsData::from_map(&parts.headers),
                                body: crate::types::Body::Host(id),
                                sent: None,
                            };
                            let v = c2.new_response(cx, r);
                            let _ = cx.complete(call, vec![ok(v)]);
                        });
                        tokio::spawn(feed(id, body, credit_rx, remote, ctx.clone()));
                    }
                    Err(e) => {
                        remote.run(move |cx| {
                            let _ = cx.complete(call, vec![err(e)]);
                        });
                    }
                }
                ctx.wake_store();
            });
            Ok(())
        },
    )?;
    Ok(())
}
