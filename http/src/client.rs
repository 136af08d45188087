//! `wasi:http/client@0.3.0#send`: outgoing requests, allowed only to the
//! `HOST:PORT`s the embedder names; every other one is answered with
//! `HTTP-request-denied` without touching the network.

use std::sync::Arc;

use canon_async_wasi::ty::err;
use canon_async_wasmi::{Error, HostError, Linker, Ty, Val};

use crate::types::{error_case, error_code, name, HttpCtx};

/// Where outgoing requests may go.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// The `HOST:PORT`s allowed.
    pub allow: Vec<String>,
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
            let allowed = c.client.as_ref().is_some_and(|cl| cl.allows(&authority));
            let answer = if allowed {
                // Outgoing requests through hyper's client are not
                // implemented yet: an allowed destination is reported
                // unavailable.
                err(Val::Variant(error_case("destination-unavailable"), None))
            } else {
                err(Val::Variant(error_case("HTTP-request-denied"), None))
            };
            cx.complete(call, vec![answer])
                .map_err(|t| HostError::new(t.to_string()))?;
            Ok(())
        },
    )?;
    Ok(())
}
