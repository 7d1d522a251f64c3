//! The gateway client: the HTTP API (reqwest) and the session stream (WebSocket).

pub mod remote;
pub mod session;
pub mod session_dir;
pub mod sftp_bridge;
pub mod tls;
pub mod tunnel;

use std::time::Duration;

/// How many times a request refused by the gateway's rate limit is sent again.
const RATE_RETRIES: u32 = 5;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::auth::Secret;
use crate::proto::{
    codes, ApprovalRequired, DecideReview, ErrorBody, OpenSession, ReviewInfo, ReviewList,
    SessionInfo, SessionList, SessionOpened, PROTOCOL_HEADER, PROTOCOL_VERSION,
};

/// What can go wrong talking to a gateway; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    BadUrl(String),
    /// The CA file (HOOPX_CA, `ca` in the client config) cannot be used.
    #[error("{0}")]
    Tls(String),
    #[error("cannot reach the gateway at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the gateway refused the token: {message}")]
    Unauthorized {
        message: String,
        hint: Option<String>,
    },
    #[error("denied by policy: {message}")]
    Denied {
        message: String,
        rule: Option<String>,
        hint: Option<String>,
    },
    #[error("{message}")]
    UnknownTarget {
        message: String,
        hint: Option<String>,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{message}")]
    NotFound {
        message: String,
        hint: Option<String>,
    },
    /// The command waits for a review (`approval_pending`).
    #[error("{message}")]
    Pending {
        message: String,
        hint: Option<String>,
    },
    /// Not allowed (`forbidden`): deciding one's own review, or without the group.
    #[error("{message}")]
    Forbidden { message: String },
    /// The resource is not in a state that allows this (`conflict`).
    #[error("{message}")]
    Conflict {
        message: String,
        hint: Option<String>,
    },
    #[error("the gateway answered {status}: {message}")]
    Api {
        status: u16,
        message: String,
        hint: Option<String>,
    },
}

/// Where this process's gateway URL came from (`--gateway`, `HOOPX_GATEWAY`, or the client
/// config file), for hints that tell the user what to change.
static GATEWAY_SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records where the gateway URL came from (the first call wins).
pub fn set_gateway_source(source: String) {
    let _ = GATEWAY_SOURCE.set(source);
}

impl ClientError {
    /// The hint to show under the error, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::Unreachable { why, .. } if tls::untrusted_hint(why).is_some() => {
                tls::untrusted_hint(why)
            }
            ClientError::Unreachable { .. } => Some(format!(
                "check {}, or remove it to use the embedded gateway",
                GATEWAY_SOURCE
                    .get()
                    .map_or("--gateway / HOOPX_GATEWAY", String::as_str)
            )),
            ClientError::Unauthorized { hint, .. }
            | ClientError::Pending { hint, .. }
            | ClientError::Conflict { hint, .. }
            | ClientError::Denied { hint, .. }
            | ClientError::UnknownTarget { hint, .. }
            | ClientError::NotFound { hint, .. }
            | ClientError::Api { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// A connection to one gateway with one token (clones share it: a renewed token, set on
/// one, is what all of them send next).
#[derive(Clone)]
pub struct GatewayClient {
    base: String,
    token: std::sync::Arc<std::sync::RwLock<Option<Secret>>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base)
            .field("token", &self.token())
            .finish()
    }
}

impl GatewayClient {
    pub fn new(url: &str, token: Option<Secret>) -> Result<GatewayClient, ClientError> {
        let base = url.trim_end_matches('/').to_string();
        if !base.contains("://") && !base.contains(char::is_whitespace) {
            return Err(ClientError::BadUrl(format!(
                "gateway URL {url:?} has no scheme: write https://{base} (or http://{base} for a gateway on loopback)"
            )));
        }
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::BadUrl(format!("gateway URL {url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::BadUrl(format!(
                "gateway URL {url:?} must look like https://gateway.example.com or http://127.0.0.1:8433"
            )));
        }
        if let Some(t) = &token {
            if reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose())).is_err() {
                return Err(ClientError::Unauthorized {
                    message:
                        "the token has characters an HTTP header cannot carry (a stray newline?)"
                            .into(),
                    hint: Some(
                        "check HOOPX_TOKEN / --token for whitespace or control characters".into(),
                    ),
                });
            }
        }
        if parsed.scheme() == "http" && token.is_some() && !is_loopback(&parsed) {
            crate::client::session::say(&format!(
                "warning: sending the token to {} over plain http; use https outside a trusted network",
                parsed.host_str().unwrap_or_default()
            ));
        }
        let mut http = reqwest::Client::builder();
        if parsed.scheme() == "https" {
            http = http.use_preconfigured_tls((*tls::client_config()?).clone());
        }
        let http = http
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::BadUrl(format!("cannot set up HTTP: {e}")))?;
        Ok(GatewayClient {
            base,
            token: std::sync::Arc::new(std::sync::RwLock::new(token)),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<Secret> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the token (a renewed one) for every clone of this client.
    pub fn set_token(&self, token: Secret) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(t) = self.token() {
            rb = rb.bearer_auth(t.expose());
        }
        rb
    }

    async fn call<T: DeserializeOwned>(
        &self,
        mut rb: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        // A request refused by the gateway's rate limit is sent again once the gateway says
        // it fits (`retry-after`), a few times: long `--follow`s and exports slow down
        // instead of failing.
        let mut retries = 0;
        let resp = loop {
            let again = (retries < RATE_RETRIES).then(|| rb.try_clone()).flatten();
            let resp = rb.send().await.map_err(|e| ClientError::Unreachable {
                url: crate::gateway::store::redact_url(&self.base),
                why: describe_reqwest(&e),
            })?;
            let wait = (resp.status() == StatusCode::TOO_MANY_REQUESTS)
                .then(|| resp.headers().get(reqwest::header::RETRY_AFTER))
                .flatten()
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .filter(|s| *s <= 60);
            match (wait, again) {
                (Some(secs), Some(next)) => {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    retries += 1;
                    rb = next;
                }
                _ => break resp,
            }
        };
        let status = resp.status();
        let theirs = resp
            .headers()
            .get(PROTOCOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(|e| ClientError::Unreachable {
            url: crate::gateway::store::redact_url(&self.base),
            why: describe_reqwest(&e),
        })?;
        match theirs.as_deref().map(|v| v.trim().parse::<u32>()) {
            Some(Ok(v)) if v == PROTOCOL_VERSION => {}
            // An error from something in front of the gateway (a proxy's 502, say).
            None if !status.is_success() => {
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    message: format!(
                        "the answer is not from a hoopx gateway (a proxy in front of {}?)",
                        self.base
                    ),
                    hint: Some("check that the gateway behind that address is running".into()),
                })
            }
            Some(_) => {
                return Err(ClientError::Protocol(format!(
                    "the gateway speaks protocol {}, this hoopx speaks {PROTOCOL_VERSION}; use matching versions",
                    theirs.unwrap_or_default()
                )))
            }
            None => {
                return Err(ClientError::Protocol(format!(
                    "{} answered {status} without a {PROTOCOL_HEADER} header: is it a hoopx gateway?",
                    self.base
                )))
            }
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                ClientError::Protocol(format!("unreadable answer from the gateway: {e}"))
            });
        }
        let Ok(ErrorBody { error: err }) = serde_json::from_slice::<ErrorBody>(&body) else {
            return Err(ClientError::Api {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_string(),
                hint: None,
            });
        };
        Err(match (status, err.code.as_str()) {
            (StatusCode::UNAUTHORIZED, _) => ClientError::Unauthorized {
                message: err.message,
                hint: err.hint,
            },
            (_, codes::DENIED) => ClientError::Denied {
                message: err.message,
                rule: err.rule,
                hint: err.hint,
            },
            (_, codes::UNKNOWN_TARGET) => ClientError::UnknownTarget {
                message: err.message,
                hint: err.hint,
            },
            (_, codes::PROTOCOL_MISMATCH) => ClientError::Protocol(err.message),
            (_, codes::APPROVAL_PENDING) => ClientError::Pending {
                message: err.message,
                hint: err.hint,
            },
            (_, codes::FORBIDDEN) => ClientError::Forbidden {
                message: err.message,
            },
            (_, codes::CONFLICT) => ClientError::Conflict {
                message: err.message,
                hint: err.hint,
            },
            (StatusCode::NOT_FOUND, codes::NOT_FOUND) => ClientError::NotFound {
                message: err.message,
                hint: err.hint,
            },
            _ => ClientError::Api {
                status: status.as_u16(),
                message: err.message,
                hint: err.hint,
            },
        })
    }

    /// Opens a session, or learns that the command waits for a review.
    pub async fn open_session(&self, req: &OpenSession) -> Result<Opened, ClientError> {
        let answer: OpenAnswer = self
            .call(
                self.request(reqwest::Method::POST, "/v1/sessions")
                    .json(req),
            )
            .await?;
        Ok(match answer {
            OpenAnswer::Review(a) => Opened::Review(Box::new(a.review)),
            OpenAnswer::Session(s) => Opened::Session(s),
        })
    }

    /// Reviews, newest first.
    pub async fn list_reviews(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ReviewInfo>, ClientError> {
        let mut q = vec![("limit", limit.to_string())];
        q.extend(status.map(|s| ("status", s.to_string())));
        let list: ReviewList = self
            .call(self.request(reqwest::Method::GET, "/v1/reviews").query(&q))
            .await?;
        Ok(list.reviews)
    }

    /// One review; with `wait_secs`, the gateway answers as soon as it is no longer
    /// pending, or after that long.
    pub async fn review(&self, id: &str, wait_secs: u64) -> Result<ReviewInfo, ClientError> {
        let mut rb = self.request(reqwest::Method::GET, &review_path(id, ""));
        if wait_secs > 0 {
            rb = rb
                .query(&[("wait", wait_secs.to_string())])
                .timeout(std::time::Duration::from_secs(wait_secs + 30));
        }
        self.call(rb).await
    }

    /// `action`: `approve`, `reject` or `revoke`.
    pub async fn decide_review(
        &self,
        id: &str,
        action: &str,
        reason: Option<String>,
    ) -> Result<ReviewInfo, ClientError> {
        self.call(
            self.request(
                reqwest::Method::POST,
                &review_path(id, &format!("/{action}")),
            )
            .json(&DecideReview { reason }),
        )
        .await
    }

    /// Sessions, newest first; `query` holds `limit`, `user`, `target`, `status`, `since`
    /// (Unix ms) pairs.
    pub async fn list_sessions(
        &self,
        query: &[(&str, String)],
    ) -> Result<Vec<SessionInfo>, ClientError> {
        let list: SessionList = self
            .call(
                self.request(reqwest::Method::GET, "/v1/sessions")
                    .query(query),
            )
            .await?;
        Ok(list.sessions)
    }

    pub async fn session(&self, id: &str) -> Result<SessionInfo, ClientError> {
        self.call(self.request(reqwest::Method::GET, &session_path(id, "")))
            .await
    }

    /// One page of a session's events from `from` on (the gateway bounds a page's size).
    pub async fn events(
        &self,
        id: &str,
        from: i64,
        limit: u32,
    ) -> Result<Vec<crate::proto::EventInfo>, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, &session_path(id, "/events"))
                .query(&[("from", from.to_string()), ("limit", limit.to_string())]),
        )
        .await
    }

    pub async fn checkpoints(
        &self,
        id: &str,
    ) -> Result<Vec<crate::recording::Checkpoint>, ClientError> {
        let list: crate::proto::CheckpointList = self
            .call(self.request(reqwest::Method::GET, &session_path(id, "/checkpoints")))
            .await?;
        Ok(list.checkpoints)
    }

    /// Ledger entries from `from` on (at most `limit`), or one session's entries.
    pub async fn ledger(
        &self,
        from: i64,
        limit: i64,
        session: Option<&str>,
    ) -> Result<Vec<crate::recording::ledger::LedgerEntry>, ClientError> {
        let mut req = self.request(reqwest::Method::GET, "/v1/ledger");
        req = match session {
            Some(id) => req.query(&[("session", id)]),
            None => req.query(&[("from", from), ("limit", limit)]),
        };
        let list: crate::proto::LedgerList = self.call(req).await?;
        Ok(list.entries)
    }

    /// The keys the gateway signs recordings with.
    pub async fn keys(&self) -> Result<Vec<crate::recording::PublicKeyInfo>, ClientError> {
        let list: crate::proto::KeyList = self
            .call(self.request(reqwest::Method::GET, "/v1/keys"))
            .await?;
        Ok(list.keys)
    }

    /// How to log in to this gateway (no token needed).
    pub async fn auth_info(&self) -> Result<crate::proto::auth::AuthInfo, ClientError> {
        self.call(self.request(reqwest::Method::GET, "/v1/auth"))
            .await
    }

    /// The identity this client's token stands for.
    pub async fn whoami(&self) -> Result<crate::proto::auth::WhoAmI, ClientError> {
        self.call(self.request(reqwest::Method::GET, "/v1/auth/whoami"))
            .await
    }

    /// Exchanges a CI token for a gateway session token.
    pub async fn exchange(
        &self,
        ci_token: &Secret,
    ) -> Result<crate::proto::auth::ExchangeResponse, ClientError> {
        let body = crate::proto::auth::ExchangeRequest {
            token: ci_token.expose().to_string(),
        };
        self.call(
            self.request(reqwest::Method::POST, "/v1/auth/exchange")
                .json(&body),
        )
        .await
    }

    /// The WebSocket URL of a path on this gateway.
    pub fn ws_url(&self, path: &str) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        };
        format!("{base}{path}")
    }
}

/// `/v1/sessions/{id}{rest}` with the id percent-encoded: ids come from users.
fn review_path(id: &str, rest: &str) -> String {
    session_path(id, rest).replacen("/v1/sessions/", "/v1/reviews/", 1)
}

/// What `POST /v1/sessions` answered: a session, or a review to wait for.
#[derive(Debug)]
pub enum Opened {
    Session(SessionOpened),
    Review(Box<ReviewInfo>),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OpenAnswer {
    Review(Box<ApprovalRequired>),
    Session(SessionOpened),
}

fn session_path(id: &str, rest: &str) -> String {
    let mut enc = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/v1/sessions/{enc}{rest}")
}

/// One line on why a request failed, without reqwest's nested debug output.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        last
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
