//! HTTP endpoints under `/v1`. See docs/PROTOCOL.md.

use std::sync::Arc;

use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;

use super::reviews::{self, Decision, ReviewError};
use super::store::{NewSession, ReviewFilter, SessionFilter};
use super::{now_ms, Gateway, Pending};
use crate::auth::{AuthError, Identity, Verified};
use crate::policy::review::{self, DecideError, UseError};
use crate::policy::{TargetError, Verdict};
use crate::proto::{
    codes, frame::MAX_FRAME, ApiError, ApprovalRequired, CheckpointList, DecideReview, ErrorBody,
    EventInfo, Health, KeyList, OpenSession, ReviewInfo, ReviewList, SessionList, SessionOpened,
    PROTOCOL_HEADER, PROTOCOL_VERSION,
};

/// An error answer: status plus the JSON body every client can read.
pub(crate) struct ApiFailure(StatusCode, ApiError, Option<u64>);

impl ApiFailure {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiFailure(
            status,
            ApiError {
                code: code.into(),
                message: message.into(),
                hint: None,
                rule: None,
            },
            None,
        )
    }

    /// Asks the client to try again after `secs` (a `retry-after` header).
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.2 = Some(secs);
        self
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.1.hint = Some(hint.into());
        self
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "the gateway could not complete the request; see the gateway's log",
        )
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut resp = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        if let Some(secs) = self.2 {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub(crate) fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ready", get(super::lifecycle::ready))
        .route("/metrics", get(metrics))
        .route("/v1/sessions", post(open_session).get(list_sessions))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/events", get(get_events))
        .route("/v1/sessions/{id}/checkpoints", get(get_checkpoints))
        .route("/v1/keys", get(get_keys))
        .route("/v1/ledger", get(get_ledger))
        .route("/v1/reviews", get(list_reviews))
        .route("/v1/reviews/{id}", get(get_review))
        .route("/v1/reviews/{id}/approve", post(approve_review))
        .route("/v1/reviews/{id}/reject", post(reject_review))
        .route("/v1/reviews/{id}/revoke", post(revoke_review))
        .route("/v1/sessions/{id}/stream", get(attach_stream))
        .merge(super::auth_api::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            gw.policy.limits.body_bytes,
        ))
        .layer(middleware::map_response_with_state(
            gw.clone(),
            body_limit_in_json,
        ))
        .layer(middleware::from_fn_with_state(
            gw.clone(),
            read_body_in_time,
        ))
        .layer(middleware::from_fn(protocol_version))
        .with_state(gw)
}

/// Prometheus text: no token (scrapers have none) and nothing but counts and names.
pub(crate) async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.render(),
    )
        .into_response()
}

/// Refuses requests that announce another protocol version, and stamps ours on every answer.
async fn protocol_version(req: Request<axum::body::Body>, next: Next) -> Response {
    let theirs = req
        .headers()
        .get(PROTOCOL_HEADER)
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u32>().ok()));
    let mut resp = match theirs {
        Some(Some(v)) if v == PROTOCOL_VERSION => next.run(req).await,
        None => next.run(req).await,
        Some(v) => {
            let shown = v.map_or_else(
                || "an unreadable version".to_string(),
                |v| format!("protocol {v}"),
            );
            ApiFailure::new(
                StatusCode::BAD_REQUEST,
                codes::PROTOCOL_MISMATCH,
                format!(
                    "the client speaks {shown}; this gateway speaks protocol {PROTOCOL_VERSION}"
                ),
            )
            .hint("use a hoopx client and gateway of the same protocol version")
            .into_response()
        }
    };
    resp.headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from(PROTOCOL_VERSION));
    resp
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such endpoint")
}

pub(crate) async fn authenticate(
    gw: &Gateway,
    headers: &HeaderMap,
) -> Result<Identity, ApiFailure> {
    Ok(verify(gw, headers).await?.identity)
}

/// The bearer token of a request: `None` when missing or not a Bearer scheme.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// Authenticates a request, with its token's expiry.
pub(crate) async fn verify(gw: &Gateway, headers: &HeaderMap) -> Result<Verified, ApiFailure> {
    let v = gw
        .auth
        .verify(bearer(headers))
        .await
        .map_err(|e| auth_failure(gw, e))?;
    if let Err(wait) = gw.take_request(&v.identity.subject) {
        gw.metrics.refused("rate");
        let per_minute = gw.policy.limits.requests_per_minute;
        tracing::warn!(
            target: "hoopx::access",
            identity = %v.identity.subject,
            per_minute,
            "request refused: rate limit"
        );
        return Err(limited(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} sent more than {per_minute} requests in a minute",
                v.identity.subject
            ),
            format!(
                "wait {} s and try again; the gateway's [limits] requests_per_minute sets the rate",
                wait.as_secs().max(1)
            ),
        )
        .retry_after(wait.as_secs().max(1)));
    }
    Ok(v)
}

/// A body past `[limits] body_bytes` is refused by the body extractor with a plain-text 413:
/// answer it as every other refusal, a JSON error naming the limit.
async fn body_limit_in_json(State(gw): State<Arc<Gateway>>, res: Response) -> Response {
    let plain = res.status() == StatusCode::PAYLOAD_TOO_LARGE
        && res
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none_or(|v| !v.as_bytes().starts_with(b"application/json"));
    if !plain {
        return res;
    }
    gw.metrics.refused("body");
    limited(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the gateway takes ({} bytes)",
            gw.policy.limits.body_bytes
        ),
        "send less; the gateway's [limits] body_bytes sets the size".to_string(),
    )
    .into_response()
}

/// Reads a request's body whole before any handler sees it, within `[limits]
/// body_read_timeout` and `body_bytes`: a client that sends a body a byte now and then (no
/// token needed) cannot hold its connection and slot for ever.
async fn read_body_in_time(
    State(gw): State<Arc<Gateway>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let limits = &gw.policy.limits;
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
        || (req.headers().get(header::CONTENT_LENGTH).is_none()
            && req.headers().get(header::TRANSFER_ENCODING).is_none());
    if empty {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limits.body_bytes);
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        // Past body_bytes: answered as the extractor would, in JSON.
        Ok(Err(e))
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) =>
        {
            body_limit_in_json(
                State(gw.clone()),
                StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            )
            .await
        }
        Ok(Err(e)) => {
            bad_request(format!("the request body could not be read: {e}")).into_response()
        }
        Err(_) => {
            gw.metrics.refused("body_time");
            let mut resp = limited(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    limits.body_read_timeout.as_secs()
                ),
                "send the request again; the gateway's [limits] body_read_timeout sets the time"
                    .to_string(),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

/// A refusal by one of the `[limits]`.
fn limited(status: StatusCode, message: String, hint: String) -> ApiFailure {
    ApiFailure::new(status, codes::LIMITED, message).hint(hint)
}

/// The answer to a refused token: 401 with what to do next, or 503 when the identity
/// provider cannot be reached (nothing could be checked).
pub(crate) fn auth_failure(gw: &Gateway, e: AuthError) -> ApiFailure {
    let status = match e {
        AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::NoExchange(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNAUTHORIZED,
    };
    let code = match e {
        AuthError::Unavailable(_) => codes::UNAVAILABLE,
        AuthError::NoExchange(_) => codes::NOT_FOUND,
        _ => codes::UNAUTHORIZED,
    };
    let oidc = gw.policy.auth.is_some();
    let f = ApiFailure::new(status, code, e.to_string());
    match e {
        AuthError::Missing if oidc => f.hint("run `hoopx login` (or set HOOPX_TOKEN)"),
        AuthError::Missing => f.hint("set HOOPX_TOKEN or pass --token"),
        AuthError::Rejected | AuthError::Invalid(_) if oidc => {
            f.hint("run `hoopx login` for a fresh token, or check HOOPX_TOKEN / --token")
        }
        AuthError::Rejected | AuthError::Invalid(_) => {
            f.hint("check the token; a dev gateway prints its token at start")
        }
        AuthError::Unavailable(_) => {
            f.hint("the gateway cannot reach its identity provider; see the gateway's log")
        }
        AuthError::NoExchange(_) => f,
    }
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// A session request under way, counted against `pending_sessions` until it is done (then
/// the pending session, if any, counts instead).
struct Opening {
    gw: Arc<Gateway>,
    who: String,
}

impl Drop for Opening {
    fn drop(&mut self) {
        let mut opening = self.gw.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = opening.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                opening.remove(&self.who);
            }
        }
    }
}

fn bad_request(msg: impl Into<String>) -> ApiFailure {
    ApiFailure::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, msg)
}

async fn open_session(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    if gw.lifecycle.draining() {
        return Err(ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::UNAVAILABLE,
            "this gateway is draining (shutting down) and takes no new sessions",
        )
        .hint("run the command again: another replica takes it, or this one once restarted"));
    }
    let Verified {
        identity,
        expires_at,
    } = verify(&gw, &headers).await?;
    let req: OpenSession = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("invalid session request: {e}")))?;
    let Some(argv0) = req.argv.first().filter(|a| !a.is_empty()) else {
        return Err(bad_request("argv is empty: name the command to run"));
    };
    let limits = &gw.policy.limits;
    let argv_bytes: usize = req.argv.iter().map(String::len).sum();
    if req.argv.len() > 4096 || argv_bytes > limits.argv_bytes {
        gw.metrics.refused("argv");
        return Err(limited(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the command line is too long: {} arguments, {argv_bytes} bytes (the gateway takes at most 4096 arguments and {} bytes)",
                req.argv.len(),
                limits.argv_bytes
            ),
            "pass large input on stdin or in a file rather than as arguments; the gateway's [limits] argv_bytes sets the size".into(),
        ));
    }
    let (pending, opening_slot) = {
        let map = gw.pending();
        let mut opening = gw.opening.lock().unwrap_or_else(|e| e.into_inner());
        let under_way = opening.get(&identity.subject).copied().unwrap_or(0);
        let pending = under_way
            + map
                .values()
                .filter(|p| p.identity.subject == identity.subject)
                .count();
        let slot = (pending < limits.pending_sessions).then(|| {
            *opening.entry(identity.subject.clone()).or_insert(0) += 1;
            Opening {
                gw: gw.clone(),
                who: identity.subject.clone(),
            }
        });
        (pending, slot)
    };
    if opening_slot.is_none() {
        gw.metrics.refused("pending");
        tracing::warn!(
            target: "hoopx::access",
            identity = %identity.subject,
            pending,
            "session refused: too many sessions waiting for their stream"
        );
        return Err(limited(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} has {pending} sessions opened and not attached yet (at most {})",
                identity.subject, limits.pending_sessions
            ),
            format!(
                "attach or abandon them (they expire {} s after opening); the gateway's [limits] pending_sessions sets the number",
                limits.attach_within.as_secs()
            ),
        ));
    }
    let target = gw
        .policy
        .resolve_target(req.target.as_deref(), argv0)
        .map_err(|e| match e {
            TargetError::ProgramNotAllowed { .. } => {
                ApiFailure::new(StatusCode::FORBIDDEN, codes::DENIED, e.to_string())
                    .hint("run one of the target's programs, or ask for another target")
            }
            _ => ApiFailure::new(StatusCode::NOT_FOUND, codes::UNKNOWN_TARGET, e.to_string())
                .hint("`hoopx exec --target NAME` picks a target explicitly"),
        })?;
    if !target.admits(&identity.groups) {
        tracing::info!(
            target: "hoopx::access",
            identity = %identity.subject,
            target_name = %target.name,
            groups = ?identity.groups,
            "session refused: not in the target's groups"
        );
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            codes::DENIED,
            format!(
                "target {:?} is open to the groups {} only, and {} is in {}",
                target.name,
                target.groups.join(", "),
                identity.subject,
                if identity.groups.is_empty() {
                    "none".to_string()
                } else {
                    identity.groups.join(", ")
                }
            ),
        )
        .hint("ask an administrator for one of those groups, or pick another target"));
    }
    // What the tool gets (credentials, generated configs), or why this command line may
    // not run on the target: refused like a program the target does not run.
    let setup = crate::policy::targets::setup(target, &req.argv).map_err(|r| {
        ApiFailure::new(StatusCode::FORBIDDEN, codes::DENIED, r.message).hint(r.hint)
    })?;
    let program = crate::policy::program_name(argv0);
    let ssh_target = target.kind == crate::policy::TargetKind::Ssh;
    let id = uuid::Uuid::new_v4().to_string();
    let verdict = gw.policy.check_argv(&target.name, &req.argv);
    let denied = match verdict {
        Verdict::Deny(rule) => Some(rule),
        _ => None,
    };
    // A command line can carry secrets (`psql postgres://app:pw@db`): only its masked form
    // is ever stored or shown.
    let masker = gw.policy.masker(&target.name);
    let masked_argv: Vec<String> = req
        .argv
        .iter()
        .map(|a| String::from_utf8_lossy(&masker.mask(a.as_bytes()).0).into_owned())
        .collect();
    let exact = review::argv_bytes(&req.argv);
    let mut approval = None;
    let mut statement_review = None;
    let mut line_review = None;
    if let (None, Some(review_id)) = (&denied, &req.review) {
        // A statement's approval (postgres targets) is used by the statement it is bound
        // to, inside the session; the session only carries it.
        let r = gw
            .load_review(review_id)
            .await
            .map_err(ApiFailure::internal)?;
        if let Some(r) =
            r.filter(|r| r.kind == "statement" || r.kind == "request" || r.kind == "line")
        {
            if r.requester != identity.subject || r.target != target.name {
                return Err(review_refusal(reviews::ReviewError::Use(
                    UseError::Mismatch { id: r.id },
                )));
            }
            // Usable now? (Checked on a copy: the statement itself uses it up.)
            let mut probe = r.clone();
            let hash = probe.command_hash.clone();
            if let Err(e) = probe.consume(&identity.subject, &hash, &id, now_ms()) {
                return Err(review_refusal(reviews::ReviewError::Use(e)));
            }
            if r.kind == "line" {
                line_review = Some(r.id);
            } else {
                statement_review = Some(r.id);
            }
        }
    }
    if let (true, Verdict::Review(rule)) =
        (statement_review.is_some() || line_review.is_some(), verdict)
    {
        // The statement's or line's approval says nothing of the command line, which needs
        // its own.
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            codes::DENIED,
            format!(
                "--review names an approval of a {}, but this command line needs a review of its own (rule {:?})",
                if line_review.is_some() { "line of input" } else { "statement" },
                rule.name
            ),
        )
        .hint("run the command without --review to ask for the command line's review, or use a command line no review rule matches"));
    }
    if denied.is_none() && statement_review.is_none() && line_review.is_none() {
        if let Some(review_id) = &req.review {
            // An approval is bound to this requester, target and exact command, and is
            // used up here.
            let hash = review::command_hash(
                &gw.review_key,
                &identity.subject,
                &target.name,
                "command",
                &exact,
            );
            match gw
                .use_review(review_id, &identity.subject, &hash, &id)
                .await
            {
                Ok(r) => approval = Some(r),
                Err(e) => return Err(review_refusal(e)),
            }
        } else if let Verdict::Review(rule) = verdict {
            let r = gw
                .ask_review(reviews::Ask {
                    rule,
                    requester: &identity,
                    target: &target.name,
                    kind: "command",
                    shown: review::display_argv(&masked_argv),
                    exact: &exact,
                    session_id: None,
                })
                .await
                .map_err(ApiFailure::internal)?;
            return Ok((
                StatusCode::ACCEPTED,
                Json(ApprovalRequired { review: r.public() }),
            )
                .into_response());
        }
    }
    let session = NewSession {
        id: id.clone(),
        identity: identity.subject.clone(),
        target: target.name.clone(),
        argv: masked_argv,
        mode: req.mode,
        status: if denied.is_some() { "denied" } else { "open" }.into(),
        started_at: now_ms(),
        reason: denied.map(|r| format!("command denied by rule {}", r.name)),
        replica: Some(gw.lifecycle.replica.clone()),
    };
    gw.store
        .create_session(&session, &gw.signer)
        .await
        .map_err(ApiFailure::internal)?;
    tracing::info!(
        target: "hoopx::access",
        session = %id,
        identity = %session.identity,
        target_name = %session.target,
        mode = %session.mode.as_str(),
        argv = ?session.argv,
        rule = denied.map(|r| r.name.as_str()),
        "{}",
        if denied.is_some() { "session denied" } else { "session opened" }
    );
    gw.metrics.started(&session.target);
    if let Some(rule) = denied {
        gw.metrics.denied(&rule.name);
        gw.metrics.ended(&session.target, "denied");
        // The refusal is evidence too: one marker, signed as the whole recording.
        let end = super::store::SessionEnd {
            status: "denied".into(),
            ended_at: now_ms(),
            exit_code: None,
            reason: session.reason.clone(),
        };
        let batch = closing_marker(
            &gw,
            &Pending {
                id: id.clone(),
                identity: identity.clone(),
                target: session.target.clone(),
                mode: session.mode,
                argv: session.argv.clone(),
                started_at: session.started_at,
                started: std::time::Instant::now(),
                cols: None,
                rows: None,
                expires_at,
                approval: None,
                statement_review: None,
                line_review: None,
                local_password: None,
                local_tls: None,
                remote: None,
                sftp_user: None,
            },
            serde_json::json!({"denied": rule.name, "argv": session.argv}),
            super::store::SessionStats {
                denials: 1,
                ..Default::default()
            },
            &end,
        );
        gw.store
            .append(&id, &batch)
            .await
            .map_err(ApiFailure::internal)?;
        gw.store
            .finish_session(&id, &end, &gw.signer)
            .await
            .map_err(ApiFailure::internal)?;
        let mut f = ApiFailure::new(
            StatusCode::FORBIDDEN,
            codes::DENIED,
            rule.message
                .clone()
                .unwrap_or_else(|| format!("the command matches deny rule {:?}", rule.name)),
        );
        f.1.rule = Some(rule.name.clone());
        return Err(f);
    }
    // Postgres targets: the tool reaches the target through a local endpoint of the
    // session; its TCP side takes a password that is worth nothing outside the session.
    // Kubernetes targets likewise: the kubeconfig's token is the endpoint's, not the
    // cluster's. scp and sftp on ssh targets: the same endpoint, relayed to the target's
    // SFTP server.
    let sftp = ssh_target && (program == "scp" || program == "sftp");
    let tunnel_kind = match target.kind {
        crate::policy::TargetKind::Postgres => Some("postgres"),
        crate::policy::TargetKind::Kubernetes => Some("kubernetes"),
        crate::policy::TargetKind::Ssh if sftp => Some("sftp"),
        _ => None,
    };
    let local_tls = match tunnel_kind {
        Some("kubernetes") => {
            // The session's requests go to this server: a target the gateway cannot reach
            // with (a CA without certificates) fails here, not at the tool's first request.
            super::kube::Upstream::new(target).map_err(ApiFailure::internal)?;
            Some(super::kube::LocalTls::generate().map_err(|e| {
                ApiFailure::internal(format!(
                    "cannot make the session endpoint's certificate: {e}"
                ))
            })?)
        }
        _ => None,
    };
    let tunnel = tunnel_kind.map(|kind| {
        use rand::RngCore;
        let mut r = [0u8; 24];
        rand::rng().fill_bytes(&mut r);
        Box::new(crate::proto::TunnelSpec {
            kind: kind.into(),
            local_password: hex::encode(r),
            namespace: (kind == "kubernetes")
                .then(|| target.access.namespace.clone())
                .flatten(),
            ca: local_tls.as_ref().map(|t| t.cert_pem.clone()),
        })
    });
    let sftp_user = sftp.then(|| ssh_user(target, None));
    // ssh targets: the gateway is the SSH client; the client runs no tool.
    let remote = (ssh_target && program == "ssh")
        .then(|| remote_spec(target, &req))
        .transpose()
        .map_err(|r| {
            ApiFailure::new(StatusCode::FORBIDDEN, codes::DENIED, r.message).hint(r.hint)
        })?;
    gw.pending().insert(
        id.clone(),
        Pending {
            id: id.clone(),
            identity,
            target: target.name.clone(),
            mode: req.mode,
            argv: session.argv.clone(),
            started_at: session.started_at,
            started: std::time::Instant::now(),
            cols: req.cols.filter(|&c| c > 0),
            rows: req.rows.filter(|&r| r > 0),
            expires_at,
            approval,
            statement_review,
            line_review,
            local_password: tunnel
                .as_ref()
                .map(|t| crate::auth::Secret::new(t.local_password.clone())),
            local_tls,
            remote: remote.clone(),
            sftp_user,
        },
    );
    reap_if_never_attached(gw.clone(), id.clone());
    let opened = SessionOpened {
        stream: format!("/v1/sessions/{id}/stream"),
        session_id: id,
        target: target.name.clone(),
        // The tool's environment and files: plain settings and the target's credentials,
        // for the child process only (the client never prints or stores them).
        env: setup.env,
        env_remove: setup.env_remove,
        files: setup.files,
        argv: setup.argv,
        tunnel,
        remote: remote.map(|_| "ssh".to_string()),
    };
    Ok((StatusCode::CREATED, Json(opened)).into_response())
}

/// Who the gateway logs in as on an ssh target: the command line's user (checked against
/// the target's), else the target's, else the gateway's own.
fn ssh_user(target: &crate::policy::Target, asked: Option<String>) -> String {
    asked
        .or_else(|| target.access.user.clone())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".into())
}

/// What the gateway's SSH channel runs for `req` on an ssh target (the command line was
/// checked by the target's setup already).
fn remote_spec(
    target: &crate::policy::Target,
    req: &OpenSession,
) -> Result<super::ssh::RemoteSpec, crate::policy::targets::Refusal> {
    let c = crate::policy::ssh::parse(&req.argv, &target.name)?;
    let user = ssh_user(target, c.user.clone());
    let pty = (req.mode == crate::proto::Mode::Pty).then(|| {
        (
            req.term
                .clone()
                .filter(|t| !t.is_empty() && t.len() < 64)
                .unwrap_or_else(|| "xterm".into()),
            req.cols.filter(|&c| c > 0).unwrap_or(80),
            req.rows.filter(|&r| r > 0).unwrap_or(24),
        )
    });
    Ok(super::ssh::RemoteSpec {
        user,
        command: c.command,
        pty,
        no_stdin: c.no_stdin,
        connect_timeout: c.connect_timeout,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    user: Option<String>,
    target: Option<String>,
    status: Option<String>,
    /// Unix time in milliseconds.
    since: Option<i64>,
    /// Unix time in milliseconds: started at or before (to page back).
    until: Option<i64>,
}

async fn list_sessions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<SessionList>, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    let identity = match q.user {
        _ if gw.reads_all(&who) => q.user,
        Some(u) if u != who.subject => {
            return Err(super::access::refused(
                &who,
                &format!("the sessions of {u}"),
            ))
        }
        // Everyone else lists their own sessions.
        _ => Some(who.subject.clone()),
    };
    let filter = SessionFilter {
        identity,
        target: q.target,
        status: q.status,
        since_ms: q.since,
        until_ms: q.until,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
    };
    let sessions = gw
        .store
        .list_sessions(&filter)
        .await
        .map_err(ApiFailure::internal)?;
    Ok(Json(SessionList { sessions }))
}

async fn get_session(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    match gw.store.session(&id).await.map_err(ApiFailure::internal)? {
        Some(s) if !gw.may_read_session(&who, &s.identity) => Err(super::access::refused(
            &who,
            &format!("session {id}, which belongs to {}", s.identity),
        )),
        Some(s) => Ok(Json(s).into_response()),
        None => Err(no_session(&id)),
    }
}

/// 404 unless the store knows session `id`; 403 unless `who` may read it.
async fn ensure_session(gw: &Gateway, who: &Identity, id: &str) -> Result<(), ApiFailure> {
    match gw.store.session(id).await.map_err(ApiFailure::internal)? {
        Some(s) if !gw.may_read_session(who, &s.identity) => Err(super::access::refused(
            who,
            &format!("session {id}, which belongs to {}", s.identity),
        )),
        Some(_) => Ok(()),
        None => Err(no_session(id)),
    }
}

fn no_session(id: &str) -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("no session {id:?}"),
    )
    .hint("`hoopx sessions list` shows the sessions this gateway knows")
}

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<i64>,
    limit: Option<i64>,
}

async fn get_events(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<EventInfo>>, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    ensure_session(&gw, &who, &id).await?;
    let events = gw
        .store
        .events(
            &id,
            q.from.unwrap_or(0).max(0),
            q.limit.unwrap_or(1000).clamp(1, 10_000),
        )
        .await
        .map_err(ApiFailure::internal)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    // One answer carries at most about this much event data; clients page with `from`.
    const PAGE_BYTES: usize = 8 * 1024 * 1024;
    let mut bytes = 0;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if bytes >= PAGE_BYTES {
            break;
        }
        bytes += e.event.data.len();
        out.push(EventInfo {
            seq: e.event.seq,
            t_us: e.event.t_us,
            kind: e.event.kind.code().into(),
            data: b64.encode(&e.event.data),
            hash: e.hash.map(hex::encode),
        });
    }
    Ok(Json(out))
}

async fn get_checkpoints(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CheckpointList>, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    ensure_session(&gw, &who, &id).await?;
    let checkpoints = gw
        .store
        .checkpoints(&id)
        .await
        .map_err(ApiFailure::internal)?;
    Ok(Json(CheckpointList { checkpoints }))
}

/// The public keys recordings are signed with. Public by nature: no authentication, so an
/// auditor can fetch them to pin with `hoopx verify --key`.
async fn get_keys(State(gw): State<Arc<Gateway>>) -> Json<KeyList> {
    let mut key = crate::recording::chain::public_key_info(&gw.signer.verifying_key());
    key.holder = Some(gw.kind().into());
    Json(KeyList { keys: vec![key] })
}

#[derive(serde::Deserialize)]
struct LedgerQuery {
    from: Option<i64>,
    limit: Option<i64>,
    /// Only this session's entries (they stay listed when the session itself is gone).
    session: Option<String>,
}

/// The session ledger: `?from=N&limit=M` pages through it, `?session=ID` gives one
/// session's entries.
async fn get_ledger(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<crate::proto::LedgerList>, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    // The whole ledger names every session: auditors only. A session's own entries go to
    // whoever may read the session.
    if !gw.reads_all(&who) {
        let owner = match &q.session {
            Some(id) => gw
                .store
                .session(id)
                .await
                .map_err(ApiFailure::internal)?
                .map(|s| s.identity),
            None => None,
        };
        if owner.is_none_or(|o| o != who.subject) {
            return Err(super::access::refused(&who, "the session ledger"));
        }
    }
    let entries = match &q.session {
        Some(id) => gw.store.ledger_of(id).await,
        None => {
            gw.store
                .ledger(
                    q.from.unwrap_or(0).max(0),
                    q.limit.unwrap_or(1000).clamp(1, 10_000),
                )
                .await
        }
    }
    .map_err(ApiFailure::internal)?;
    Ok(Json(crate::proto::LedgerList { entries }))
}

async fn attach_stream(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiFailure> {
    let Verified {
        identity,
        expires_at,
    } = verify(&gw, &headers).await?;
    let ws = ws.map_err(|e| {
        bad_request(format!(
            "this endpoint is the session's WebSocket stream: {e}"
        ))
        .hint("connect with a WebSocket client, as `hoopx exec` does")
    })?;
    let pending = {
        let mut map = gw.pending();
        match map.get(&id) {
            None => {
                return Err(ApiFailure::new(
                    StatusCode::NOT_FOUND,
                    codes::NOT_FOUND,
                    format!("no session {id:?} is waiting for its stream"),
                )
                .hint("open a session with POST /v1/sessions first; a stream attaches once"))
            }
            Some(p) if p.identity != identity => {
                return Err(ApiFailure::new(
                    StatusCode::FORBIDDEN,
                    codes::DENIED,
                    "this session belongs to another identity",
                ))
            }
            Some(_) => map.remove(&id),
        }
    };
    // Taken out under the lock above, so a stream attaches once; a second attach is a 404.
    let Some(mut pending) = pending else {
        return Err(ApiFailure::internal(
            "pending session vanished under the lock",
        ));
    };
    // The token the stream attached with is the freshest one.
    pending.expires_at = expires_at;
    Ok(ws
        .max_message_size(MAX_FRAME * 2)
        .max_frame_size(MAX_FRAME * 2)
        .on_upgrade(move |socket| super::stream::run(gw, pending, socket)))
}

/// Ends a session whose client never attached its stream, so nothing stays `open` forever.
fn reap_if_never_attached(gw: Arc<Gateway>, id: String) {
    tokio::spawn(async move {
        tokio::time::sleep(gw.policy.limits.attach_within).await;
        let Some(pending) = gw.pending().remove(&id) else {
            return;
        };
        let why = format!(
            "expired: the client never attached the session stream within {} s",
            gw.policy.limits.attach_within.as_secs_f64()
        );
        let why = why.as_str();
        gw.metrics.ended(&pending.target, "aborted");
        let end = super::store::SessionEnd {
            status: "aborted".into(),
            ended_at: now_ms(),
            exit_code: None,
            reason: Some(why.into()),
        };
        let batch = closing_marker(
            &gw,
            &pending,
            serde_json::json!({ "aborted": why }),
            Default::default(),
            &end,
        );
        let stored = gw.store.append(&id, &batch).await;
        if let Err(e) = stored.and(gw.store.finish_session(&id, &end, &gw.signer).await) {
            tracing::error!(session = %id, error = %e, "could not record the session's end");
        }
    });
}

/// A session's whole log when it ends before its stream runs: one marker and the signed
/// close, under a closing checkpoint, so even a refusal is signed evidence.
fn closing_marker(
    gw: &Gateway,
    p: &Pending,
    marker: serde_json::Value,
    stats: super::store::SessionStats,
    end: &super::store::SessionEnd,
) -> super::store::Batch {
    use crate::recording::{chain, Event, EventKind};
    let t_us = p.started.elapsed().as_micros() as i64;
    let facts = super::stream::closed_facts(gw, end, &stats);
    let events: Vec<Event> = [marker, facts.marker()]
        .into_iter()
        .enumerate()
        .map(|(seq, m)| Event {
            seq: seq as i64,
            t_us,
            kind: EventKind::Marker,
            data: m.to_string().into_bytes(),
        })
        .collect();
    let mut head = chain::genesis(
        &p.id,
        &p.identity.subject,
        &p.target,
        &p.argv,
        p.mode,
        p.started_at,
    );
    let hashes: Vec<_> = events
        .iter()
        .map(|e| {
            head = chain::next(&head, e);
            head
        })
        .collect();
    super::store::Batch {
        checkpoint: Some(chain::sign(
            &gw.signer,
            &p.id,
            events.len() as i64,
            &head,
            true,
        )),
        events,
        hashes,
        stats,
    }
}

/// Why a review could not be used or decided, as an answer.
fn review_refusal(e: ReviewError) -> ApiFailure {
    match e {
        ReviewError::NotFound(id) => ApiFailure::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("no review {id}"),
        )
        .hint("`hoopx review list` shows the reviews this gateway knows"),
        ReviewError::Use(u @ UseError::Pending { .. }) => {
            ApiFailure::new(StatusCode::CONFLICT, codes::APPROVAL_PENDING, u.to_string())
                .hint("wait for a reviewer, then run the same command with --review again")
        }
        ReviewError::Use(u) => ApiFailure::new(StatusCode::FORBIDDEN, codes::DENIED, u.to_string())
            .hint("run the command without --review to ask for a new review"),
        ReviewError::Decide(
            d @ (DecideError::OwnRequest { .. }
            | DecideError::NotAReviewer { .. }
            | DecideError::CannotRevoke { .. }),
        ) => ApiFailure::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, d.to_string()),
        ReviewError::Decide(d @ DecideError::ReasonRequired) => bad_request(d.to_string()),
        ReviewError::Decide(d) => {
            ApiFailure::new(StatusCode::CONFLICT, codes::CONFLICT, d.to_string())
                .hint("`hoopx review show ID` shows its decisions")
        }
        ReviewError::Busy(_) => ApiFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::INTERNAL,
            e.to_string(),
        ),
        ReviewError::Store(e) => ApiFailure::internal(e),
    }
}

#[derive(Deserialize)]
struct ReviewQuery {
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_reviews(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<ReviewQuery>,
) -> Result<Json<ReviewList>, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    if let Some(s) = q
        .status
        .as_deref()
        .filter(|s| !review::STATUSES.contains(s))
    {
        return Err(bad_request(format!(
            "unknown review status {s:?}: expected one of {}",
            review::STATUSES.join(", ")
        )));
    }
    gw.expire_reviews().await.map_err(ApiFailure::internal)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let all = gw.reads_all(&who);
    let reviews = gw
        .store
        .list_reviews(&ReviewFilter {
            status: q.status,
            // Others see a part: look further back for it.
            limit: if all { limit } else { 1000 },
            ..Default::default()
        })
        .await
        .map_err(ApiFailure::internal)?;
    Ok(Json(ReviewList {
        reviews: reviews
            .into_iter()
            .filter(|r| all || gw.may_read_review(&who, r))
            .take(limit as usize)
            .map(ReviewInfo::public)
            .collect(),
    }))
}

#[derive(Deserialize)]
struct WaitQuery {
    /// Seconds to wait for the review to leave `pending` (long poll), at most 60.
    wait: Option<u64>,
}

async fn get_review(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(q.wait.unwrap_or(0).min(60));
    let mut changed = gw.review_updates();
    // A stopping gateway answers at once: the client asks again, of another replica.
    let mut stopping = gw.stopping();
    loop {
        let r = gw
            .load_review(&id)
            .await
            .map_err(ApiFailure::internal)?
            .ok_or_else(|| review_refusal(ReviewError::NotFound(id.clone())))?;
        if !gw.may_read_review(&who, &r) {
            return Err(super::access::refused(
                &who,
                &format!("review {id}, which {} asked for", r.requester),
            ));
        }
        if r.status != review::PENDING
            || tokio::time::Instant::now() >= deadline
            || *stopping.borrow()
        {
            return Ok(Json(r.public()).into_response());
        }
        // Woken by a decision on this gateway; another replica's is seen at the next poll.
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + reviews::POLL),
            async {
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = stopping.wait_for(|s| *s) => {}
                }
            },
        )
        .await;
    }
}

async fn decide(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    id: String,
    body: axum::body::Bytes,
    decision: Decision,
) -> Result<Response, ApiFailure> {
    let who = authenticate(&gw, &headers).await?;
    let req: DecideReview = if body.is_empty() {
        DecideReview::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid decision: {e}")))?
    };
    if req.reason.as_ref().is_some_and(|r| r.len() > 4096) {
        return Err(bad_request("the reason is longer than 4096 bytes"));
    }
    let r = gw
        .decide_review(&id, Some(&who), decision, req.reason)
        .await
        .map_err(review_refusal)?;
    Ok(Json(r.public()).into_response())
}

async fn approve_review(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    decide(gw, headers, id, body, Decision::Approve).await
}

async fn reject_review(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    decide(gw, headers, id, body, Decision::Reject).await
}

async fn revoke_review(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    decide(gw, headers, id, body, Decision::Revoke).await
}
