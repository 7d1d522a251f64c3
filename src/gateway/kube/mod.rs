//! Kubernetes at the API level: one task per tunnelled connection from kubectl (plain
//! HTTP/1.1 over the session stream). The gateway checks the session's own token,
//! resolves each request as the API server will ([`crate::policy::kube::classify`]),
//! decides on it (deny and review rules with request conditions), sends it to the API
//! server on its own TLS connection with the target's token, masks Secret values and text
//! in the answer, and logs each request as an event of the session's hash chain.
//!
//! Streams: watch answers are masked event by event, log answers line by line, and exec
//! or attach upgrades are relayed message by message over WebSocket ([`exec`]).

mod exec;
mod local_tls;
mod upstream;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use super::pg::{FromChannel, ToChannel};
use super::reviews::{self, Ask};
use super::Gateway;
use crate::auth::{Identity, Secret};
use crate::policy::kube::{self as k8s, RequestInfo};
use crate::policy::{Masker, Target, Verdict};
use crate::proto::frame::Notice;

pub(crate) use local_tls::LocalTls;
pub(crate) use upstream::Upstream;

/// Largest piece of a channel's data in one frame.
const CHUNK: usize = 64 * 1024;
/// The client's data is acknowledged once this much was taken.
const ACK_EVERY: usize = 32 * 1024;
/// Largest request body the gateway reads (and hashes for a review).
const MAX_REQUEST: usize = 16 * 1024 * 1024;
/// Largest JSON answer the gateway reads whole to mask; a larger one is refused.
const MAX_ANSWER: usize = 256 * 1024 * 1024;
/// How long a new connection has for its TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest line of a watch or log stream the gateway holds while it waits for its end.
const MAX_LINE: usize = 16 * 1024 * 1024;

type Body = BoxBody<Bytes, std::io::Error>;

/// What every connection of one session shares.
pub(crate) struct KubeCtx {
    pub gw: Arc<Gateway>,
    pub target: Target,
    pub session_id: String,
    pub identity: Identity,
    pub masker: Masker,
    /// The bearer token of the session's kubeconfig.
    pub local_token: Option<Secret>,
    /// The TLS kubectl speaks to the endpoint (terminated here).
    pub local_tls: LocalTls,
    /// An approved request review brought with `--review`, used by the first request it
    /// is bound to.
    pub approval: Mutex<Option<String>>,
    pub upstream: Upstream,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves one tunnelled connection until either side closes. `window` is the channel's
/// allowance towards the client (the session adds the client's acknowledgements to it).
pub(crate) async fn serve(
    ctx: Arc<KubeCtx>,
    ch: u32,
    mut rx: mpsc::UnboundedReceiver<ToChannel>,
    tx: mpsc::UnboundedSender<FromChannel>,
    window: Arc<Semaphore>,
) {
    let (near, far) = tokio::io::duplex(256 * 1024);
    let (mut rd, mut wr) = tokio::io::split(near);
    let ack_tx = tx.clone();
    // The client's bytes into the HTTP server, acknowledged as taken.
    let pump_in = tokio::spawn(async move {
        let mut taken = 0usize;
        while let Some(ToChannel::Data(d)) = rx.recv().await {
            if wr.write_all(&d).await.is_err() {
                break;
            }
            taken += d.len();
            if taken >= ACK_EVERY {
                let _ = ack_tx.send(FromChannel::Ack(ch, taken as u32));
                taken = 0;
            }
        }
        let _ = wr.shutdown().await;
    });
    // The server's bytes to the client, within the window.
    let out_tx = tx.clone();
    let pump_out = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(p) = window.acquire_many(n as u32).await else {
                break;
            };
            p.forget();
            if out_tx
                .send(FromChannel::Data(ch, Bytes::copy_from_slice(&buf[..n])))
                .is_err()
            {
                break;
            }
        }
    };
    let conn = Arc::new(Conn {
        ctx: ctx.clone(),
        ch,
        tx: tx.clone(),
        up: tokio::sync::Mutex::new(None),
    });
    let service = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(conn.handle(req).await) }
    });
    let acceptor = ctx.local_tls.acceptor.clone();
    let server = async move {
        let tls = tokio::time::timeout(HANDSHAKE, acceptor.accept(far))
            .await
            .map_err(|_| "no TLS handshake in time".to_string())?
            .map_err(|e| format!("TLS: {e}"))?;
        hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
            .with_upgrades()
            .await
            .or_else(|e| {
                if e.is_incomplete_message() {
                    Ok(())
                } else {
                    Err(e.to_string())
                }
            })
    };
    let (served, ()) = tokio::join!(server, pump_out);
    if let Err(e) = served {
        tracing::info!(
            target: "hoopx::access",
            session = %ctx.session_id,
            connection = ch,
            error = %e,
            "kubernetes connection ended"
        );
    }
    pump_in.abort();
    let _ = tx.send(FromChannel::Closed(ch));
}

/// One tunnelled connection: its requests go to the API server on the gateway's own
/// connection, opened on the first request and reused.
struct Conn {
    ctx: Arc<KubeCtx>,
    ch: u32,
    tx: mpsc::UnboundedSender<FromChannel>,
    up: tokio::sync::Mutex<Option<upstream::Sender>>,
}

/// How a request went, for the log.
struct Outcome<'a> {
    info: &'a RequestInfo,
    method: &'a str,
    status: u16,
    decision: &'static str,
    rule: Option<String>,
    review: Option<String>,
    started: Instant,
    masked: u64,
    /// exec: the command run in the container, masked.
    command: Option<Vec<String>>,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|n: Infallible| match n {})
        .boxed()
}

/// A `Status` answer.
fn status_response(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = k8s::status(code.as_u16(), reason, message).to_string();
    let mut r = Response::new(full(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

impl Conn {
    fn event(&self, e: FromChannel) {
        let _ = self.tx.send(e);
    }

    fn log(&self, o: Outcome<'_>) {
        let i = o.info;
        let mut v = json!({
            "conn": self.ch,
            "method": o.method,
            "verb": i.verb,
            "status": o.status,
            "decision": o.decision,
            "duration_ms": (o.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        });
        if i.resource_request {
            for (k, val) in [
                ("group", &i.group),
                ("version", &i.version),
                ("resource", &i.resource),
                ("subresource", &i.subresource),
                ("namespace", &i.namespace),
                ("name", &i.name),
            ] {
                if !val.is_empty() || k == "resource" || k == "group" {
                    v[k] = val.clone().into();
                }
            }
        } else {
            v["path"] = i.path.clone().into();
        }
        if let Some(c) = &o.command {
            v["command"] = c.clone().into();
        }
        if let Some(r) = &o.rule {
            v["rule"] = r.clone().into();
        }
        if let Some(r) = &o.review {
            v["review_id"] = r.clone().into();
        }
        if o.masked > 0 {
            v["masked"] = o.masked.into();
        }
        self.event(FromChannel::Marker(json!({ "request": v })));
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let ctx = &self.ctx;
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or("").to_string();
        let method = parts.method.as_str().to_string();
        let info = k8s::classify(&method, &path, &query);
        let command = (info.subresource == "exec").then(|| {
            query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("command="))
                .map(|c| {
                    let c = k8s::query_param(&format!("c={c}"), "c").unwrap_or_default();
                    String::from_utf8_lossy(&ctx.masker.mask(c.as_bytes()).0).into_owned()
                })
                .collect::<Vec<_>>()
        });
        let done = |status: u16, decision: &'static str, rule: Option<&str>| Outcome {
            info: &info,
            method: &method,
            status,
            decision,
            rule: rule.map(String::from),
            review: None,
            started,
            masked: 0,
            command: command.clone(),
        };
        // The endpoint is open to every local user: the session's token, or nothing.
        let given = parts
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok = ctx
            .local_token
            .as_ref()
            .is_some_and(|t| constant_eq(given.trim().as_bytes(), t.expose().as_bytes()));
        if !ok {
            self.log(done(401, "unauthorized", None));
            return status_response(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "hoopx: the session's local endpoint takes the token of the kubeconfig hoopx gave the tool",
            );
        }
        if let Some(h) = parts
            .headers
            .keys()
            .find(|h| h.as_str().starts_with("impersonate-"))
        {
            let message = format!(
                "hoopx: {h} is refused: requests go to target {:?} as its own identity",
                ctx.target.name
            );
            self.log(done(403, "denied", Some("kube-impersonation")));
            self.deny_notice("kube-impersonation", &message, &info);
            return status_response(StatusCode::FORBIDDEN, "Forbidden", &message);
        }
        let upgrade = parts.headers.get(hyper::header::UPGRADE).is_some();
        if upgrade {
            let websocket = parts
                .headers
                .get(hyper::header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let streamable = matches!(info.subresource.as_str(), "exec" | "attach");
            if !websocket || !streamable {
                let message = if websocket {
                    format!(
                        "hoopx: the gateway relays exec and attach streams only, not {}",
                        k8s::describe(&info)
                    )
                } else {
                    "hoopx: the gateway relays exec and attach over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io), not SPDY; use kubectl 1.30 or later".to_string()
                };
                self.log(done(400, "refused", Some("kube-streams")));
                return status_response(StatusCode::BAD_REQUEST, "BadRequest", &message);
            }
        }
        let body = match http_body_util::Limited::new(body, MAX_REQUEST)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.log(done(413, "refused", None));
                return status_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!("hoopx: the request body could not be read: {e}"),
                );
            }
        };
        let policy = ctx.gw.policy.clone();
        let mut review_id = None;
        let mut decision = "allowed";
        let mut rule_name = None;
        match policy.check_request(&ctx.target.name, &info) {
            Verdict::Allow => {}
            Verdict::Deny(r) => {
                let message = r.message.clone().unwrap_or_else(|| {
                    format!("{} matches deny rule {:?}", k8s::describe(&info), r.name)
                });
                let message = format!("hoopx: {message} (rule {})", r.name);
                self.log(done(403, "denied", Some(&r.name)));
                self.deny_notice(&r.name, &message, &info);
                return status_response(StatusCode::FORBIDDEN, "Forbidden", &message);
            }
            Verdict::Review(r) => match self.review(r, &info, &method, &parts.uri, &body).await {
                Ok(id) => {
                    review_id = Some(id);
                    decision = "approved";
                    rule_name = Some(r.name.clone());
                }
                Err(message) => {
                    self.log(done(403, "not_approved", Some(&r.name)));
                    return status_response(StatusCode::FORBIDDEN, "Forbidden", &message);
                }
            },
        }
        // To the API server, on the gateway's connection, as the target's identity.
        let terminal = k8s::query_param(&query, "tty").is_some_and(|v| v == "true" || v == "1");
        let up_req = match ctx.upstream.request(&parts, body) {
            Ok(r) => r,
            Err(e) => {
                self.log(done(502, decision, rule_name.as_deref()));
                return status_response(StatusCode::BAD_GATEWAY, "InternalError", &e);
            }
        };
        let resp = {
            let mut up = self.up.lock().await;
            match upstream::send(&ctx.upstream, &mut up, up_req).await {
                Ok(r) => r,
                Err(e) => {
                    drop(up);
                    let message = format!(
                        "hoopx: the gateway could not reach the API server of target {:?}: {e}",
                        ctx.target.name
                    );
                    self.log(done(502, decision, rule_name.as_deref()));
                    return status_response(StatusCode::BAD_GATEWAY, "InternalError", &message);
                }
            }
        };
        let status = resp.status();
        let outcome = |masked| Outcome {
            review: review_id.clone(),
            masked,
            ..done(status.as_u16(), decision, rule_name.as_deref())
        };
        if status == StatusCode::SWITCHING_PROTOCOLS && upgrade {
            // The upstream connection is the stream's now.
            *self.up.lock().await = None;
            self.log(outcome(0));
            return exec::relay(
                self.ctx.clone(),
                self.ch,
                self.tx.clone(),
                &info,
                terminal,
                resp,
                parts_upgrade(parts),
            )
            .await;
        }
        let (rparts, rbody) = resp.into_parts();
        // The gateway asked for no compression: an encoded answer cannot be masked.
        if rparts
            .headers
            .get(hyper::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes() != b"identity")
        {
            self.log(outcome(0));
            return status_response(
                StatusCode::BAD_GATEWAY,
                "InternalError",
                "hoopx: the API server answered compressed although the gateway asked for no compression; not relayed",
            );
        }
        let ctype = rparts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let secrets = info.resource == "secrets";
        let json_type = ctype.starts_with("application/json") || ctype.contains("+json");
        let streaming = info.verb == "watch"
            || ctype.contains("stream=watch")
            || (info.subresource == "log"
                && k8s::query_param(&query, "follow").is_some_and(|v| v == "true" || v == "1"));
        let mut out = Response::builder().status(status);
        for (k, v) in rparts.headers.iter() {
            if !matches!(
                k.as_str(),
                "content-length"
                    | "transfer-encoding"
                    | "connection"
                    | "keep-alive"
                    | "content-encoding"
            ) {
                out = out.header(k, v);
            }
        }
        if streaming {
            self.log(outcome(0));
            let kind = if json_type {
                Lines::Json { secrets }
            } else if !secrets {
                Lines::Text
            } else {
                return status_response(StatusCode::BAD_GATEWAY, "InternalError", "hoopx: the API server answered a secrets request in a form the gateway cannot mask");
            };
            let body = stream_lines(self.ctx.masker.clone(), self.tx.clone(), rbody, kind);
            return out.body(body).unwrap_or_else(|e| {
                status_response(StatusCode::BAD_GATEWAY, "InternalError", &e.to_string())
            });
        }
        let whole = match http_body_util::Limited::new(rbody, MAX_ANSWER)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.log(outcome(0));
                return status_response(
                    StatusCode::BAD_GATEWAY,
                    "InternalError",
                    &format!("hoopx: the API server's answer could not be read: {e}"),
                );
            }
        };
        let (bytes, masked) = if json_type {
            match serde_json::from_slice::<serde_json::Value>(&whole) {
                Ok(mut v) => {
                    let n = k8s::mask_secrets(&mut v, secrets);
                    if n > 0 {
                        (Bytes::from(v.to_string()), n)
                    } else {
                        (whole, 0)
                    }
                }
                Err(_) if secrets => {
                    self.log(outcome(0));
                    return status_response(
                        StatusCode::BAD_GATEWAY,
                        "InternalError",
                        "hoopx: the API server answered a secrets request with JSON the gateway cannot read, so it is not relayed",
                    );
                }
                Err(_) => (whole, 0),
            }
        } else if secrets && !whole.is_empty() {
            self.log(outcome(0));
            return status_response(
                StatusCode::BAD_GATEWAY,
                "InternalError",
                "hoopx: the API server answered a secrets request in a form the gateway cannot mask (not JSON)",
            );
        } else if ctype.starts_with("text/") {
            let (m, counts) = self.ctx.masker.mask_counted(&whole);
            let n: u64 = counts.values().sum();
            if n > 0 {
                self.event(FromChannel::Masks(counts));
            }
            (Bytes::from(m.into_owned()), n)
        } else {
            (whole, 0)
        };
        if masked > 0 {
            let mut c = std::collections::BTreeMap::new();
            if json_type {
                c.insert("k8s-secret".to_string(), masked);
                self.event(FromChannel::Masks(c));
            }
        }
        self.log(outcome(masked));
        out.body(full(bytes)).unwrap_or_else(|e| {
            status_response(StatusCode::BAD_GATEWAY, "InternalError", &e.to_string())
        })
    }

    fn deny_notice(&self, rule: &str, message: &str, info: &RequestInfo) {
        self.event(FromChannel::Notice(Notice {
            kind: "denied".into(),
            rule: Some(rule.into()),
            message: format!(
                "{} refused: {}",
                k8s::describe(info),
                message.strip_prefix("hoopx: ").unwrap_or(message)
            ),
            review_id: None,
        }));
    }

    /// Waits for a review of the request (or uses the approval the session brought): the
    /// review id once approved and used, or the message the client gets.
    async fn review(
        &self,
        rule: &crate::policy::ReviewRule,
        info: &RequestInfo,
        method: &str,
        uri: &hyper::Uri,
        body: &Bytes,
    ) -> Result<String, String> {
        let ctx = &self.ctx;
        let gw = ctx.gw.clone();
        let shown = k8s::describe(info);
        // Bound to the exact request: method, path and query, and the body's hash.
        let exact = format!(
            "{method} {}\0{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
        );
        let subject = ctx.identity.subject.clone();
        let hash = crate::policy::review::command_hash(
            &gw.review_key,
            &subject,
            &ctx.target.name,
            "request",
            exact.as_bytes(),
        );
        let brought = lock(&ctx.approval).clone();
        if let Some(id) = brought {
            if let Ok(r) = gw.use_review(&id, &subject, &hash, &ctx.session_id).await {
                lock(&ctx.approval).take();
                self.approved(&r);
                return Ok(r.id);
            }
        }
        let r = gw
            .ask_review(Ask {
                rule,
                requester: &ctx.identity,
                target: &ctx.target.name,
                kind: "request",
                // The query may carry a command's arguments: masked, as every shown text.
                shown: String::from_utf8_lossy(
                    &ctx.masker
                        .mask(format!("{shown}\n{method} {uri}").as_bytes())
                        .0,
                )
                .into_owned(),
                exact: exact.as_bytes(),
                session_id: Some(ctx.session_id.clone()),
            })
            .await
            .map_err(|e| format!("hoopx: the review could not be opened: {e}"))?;
        self.event(FromChannel::Marker(
            json!({"review_requested": {"review_id": r.id, "rule": r.rule, "request": shown}}),
        ));
        self.event(FromChannel::Notice(Notice {
            kind: "approval_pending".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "waiting for approval of `{shown}` — review {}, reviewers: {}",
                r.id,
                r.reviewers.join(", ")
            ),
            review_id: Some(r.id.clone()),
        }));
        let mut updates = gw.review_updates();
        loop {
            let now = gw
                .load_review(&r.id)
                .await
                .map_err(|e| format!("hoopx: review {}: {e}", r.id))?;
            let Some(now) = now else {
                return Err(format!("hoopx: review {} is gone", r.id));
            };
            if now.status == crate::policy::review::APPROVED {
                return match gw.use_review(&r.id, &subject, &hash, &ctx.session_id).await {
                    Ok(used) => {
                        self.approved(&used);
                        Ok(used.id)
                    }
                    Err(e) => Err(format!("hoopx: review {}: {e}", r.id)),
                };
            }
            if now.status != crate::policy::review::PENDING {
                let why = now.decided_by(None);
                self.event(FromChannel::Marker(json!({"not_approved": now.record()})));
                let message = format!(
                    "hoopx: {shown} not sent: review {} {}{why}",
                    now.id, now.status
                );
                self.event(FromChannel::Notice(Notice {
                    kind: "denied".into(),
                    rule: Some(now.rule.clone()),
                    message: message.clone(),
                    review_id: Some(now.id.clone()),
                }));
                return Err(message);
            }
            tokio::select! {
                _ = updates.changed() => {}
                _ = tokio::time::sleep(reviews::POLL) => {}
            }
        }
    }

    fn approved(&self, r: &crate::proto::ReviewInfo) {
        self.event(FromChannel::Marker(json!({"approved": r.record()})));
        self.event(FromChannel::Notice(Notice {
            kind: "approved".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "review {} approved by {}: request released",
                r.id,
                r.approvers().join(", ")
            ),
            review_id: Some(r.id.clone()),
        }));
    }
}

/// The client side of an upgrade: what hyper hands over once the 101 is sent.
fn parts_upgrade(parts: hyper::http::request::Parts) -> hyper::upgrade::OnUpgrade {
    let mut req = Request::from_parts(parts, ());
    hyper::upgrade::on(&mut req)
}

/// What a streamed answer carries, line by line.
#[derive(Clone, Copy)]
enum Lines {
    /// Watch events (one JSON object a line): Secret values masked.
    Json { secrets: bool },
    /// Logs and other text: the detectors.
    Text,
}

/// A streamed answer, masked line by line as it arrives: a watch's events, a followed log.
fn stream_lines(
    masker: Masker,
    tx: mpsc::UnboundedSender<FromChannel>,
    mut body: Incoming,
    kind: Lines,
) -> Body {
    let (otx, orx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut buf = BytesMut::new();
        let send_line = |line: &[u8]| -> Bytes {
            match kind {
                Lines::Json { secrets } => {
                    let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
                    match serde_json::from_slice::<serde_json::Value>(trimmed) {
                        Ok(mut v) => {
                            let n = k8s::mask_secrets(&mut v, secrets);
                            if n > 0 {
                                let mut c = std::collections::BTreeMap::new();
                                c.insert("k8s-secret".to_string(), n);
                                let _ = tx.send(FromChannel::Masks(c));
                                let mut s = v.to_string().into_bytes();
                                s.push(b'\n');
                                return Bytes::from(s);
                            }
                            Bytes::copy_from_slice(line)
                        }
                        Err(_) if secrets => Bytes::new(),
                        Err(_) => Bytes::copy_from_slice(line),
                    }
                }
                Lines::Text => {
                    let (m, counts) = masker.mask_counted(line);
                    if counts.values().any(|n| *n > 0) {
                        let _ = tx.send(FromChannel::Masks(counts));
                    }
                    Bytes::from(m.into_owned())
                }
            }
        };
        loop {
            // The tool went away (or the session ended): the API server's stream is
            // let go at once, not at its next event.
            let next = tokio::select! {
                f = body.frame() => f,
                _ = otx.closed() => return,
            };
            let frame = match next {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    let _ = otx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
                None => break,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut out = BytesMut::new();
            while let Some(at) = memchr::memchr(b'\n', &buf) {
                let line = buf.split_to(at + 1);
                out.extend_from_slice(&send_line(&line));
            }
            if buf.len() > MAX_LINE {
                // A line this long is cut: what came so far goes as a line of its own.
                let line = buf.split();
                out.extend_from_slice(&send_line(&line));
            }
            if !out.is_empty() && otx.send(Ok(Frame::data(out.freeze()))).await.is_err() {
                return;
            }
        }
        if !buf.is_empty() {
            let last = send_line(&buf);
            let _ = otx.send(Ok(Frame::data(last))).await;
        }
    });
    let stream = futures_util::stream::unfold(orx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    StreamBody::new(stream).boxed()
}
