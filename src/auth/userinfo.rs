//! Opaque access tokens (not JWTs: Google's, or oidc-provider's without resource
//! indicators) checked at the provider: its userinfo endpoint (`[auth] opaque_tokens =
//! "userinfo"`: a token the endpoint answers with the user's claims is good), or RFC 7662
//! introspection (`"introspect"`, as the gateway's own client: the token must be active,
//! unexpired, and for the gateway's audience or issued to `cli_client_id`). Endpoints come
//! from discovery. An answer is reused for `opaque_cache` (default 60 s), never past the
//! token's `exp`, so a busy client does not ask the provider on every request. Fail
//! closed: a refusal is an invalid token, any other failure means nothing can be checked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::Digest;

use super::AuthError;

/// Cached answers at most; the oldest half is dropped past it.
const MAX_CACHED: usize = 10_000;

/// SHA-256 of a token → its claims and when they were fetched (never the token).
type Cache = HashMap<[u8; 32], (Map<String, Value>, Instant)>;

/// The gateway's client for RFC 7662 introspection, and what a token must be for.
pub struct Introspection {
    pub client_id: String,
    pub client_secret: super::Secret,
    pub audience: String,
    pub cli_client_id: Option<String>,
}

pub struct UserInfo {
    issuer: String,
    introspection: Option<Introspection>,
    endpoint: Mutex<Option<String>>,
    http: reqwest::Client,
    max_age: Duration,
    cache: Mutex<Cache>,
}

impl UserInfo {
    pub fn new(issuer: &str, max_age: Duration, introspection: Option<Introspection>) -> UserInfo {
        UserInfo {
            issuer: issuer.trim_end_matches('/').to_string(),
            introspection,
            endpoint: Mutex::new(None),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            max_age,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The claims the provider gives for `token`, or why not.
    pub async fn claims(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let unexpired =
            |c: &Map<String, Value>| c.get("exp").and_then(Value::as_i64).is_none_or(|e| e > now);
        if let Some((c, at)) = self.lock().get(&key) {
            if at.elapsed() < self.max_age && unexpired(c) {
                return Ok(c.clone());
            }
        }
        let endpoint = self.endpoint().await.map_err(AuthError::Unavailable)?;
        let rb = match &self.introspection {
            None => self.http.get(&endpoint).bearer_auth(token),
            Some(i) => self
                .http
                .post(&endpoint)
                .basic_auth(&i.client_id, Some(i.client_secret.expose()))
                .form(&[("token", token), ("token_type_hint", "access_token")]),
        };
        let resp = rb.send().await.map_err(|e| {
            AuthError::Unavailable(format!(
                "cannot reach {endpoint}: {}",
                crate::client::describe_reqwest(&e)
            ))
        })?;
        let status = resp.status();
        if self.introspection.is_none()
            && (status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN)
        {
            self.lock().remove(&key);
            return Err(AuthError::Invalid(format!(
                "the provider's userinfo endpoint refused it ({status})"
            )));
        }
        if !status.is_success() {
            // For introspection a refusal is of the gateway's own client: nothing checked.
            let why = resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| {
                    let d = v.get("error_description").or_else(|| v.get("error"))?;
                    d.as_str()
                        .map(|d| format!(": {}", crate::cli::printable(d)))
                })
                .unwrap_or_default();
            return Err(AuthError::Unavailable(format!(
                "{endpoint} answered {status}{why}"
            )));
        }
        let claims = match resp.json::<Value>().await {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(AuthError::Unavailable(format!(
                    "{endpoint} did not answer a JSON object"
                )))
            }
        };
        if let Some(i) = &self.introspection {
            if claims.get("active") != Some(&Value::Bool(true)) {
                self.lock().remove(&key);
                return Err(AuthError::Invalid(
                    "the provider's introspection says it is not active (expired, revoked or unknown)".into(),
                ));
            }
            if !unexpired(&claims) {
                return Err(AuthError::Invalid("it has expired".into()));
            }
            let aud = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let client = claims.get("client_id").and_then(Value::as_str);
            let for_us = aud.contains(&i.audience.as_str())
                || (client.is_some() && client == i.cli_client_id.as_deref());
            if !for_us {
                return Err(AuthError::Invalid(format!(
                    "it was issued to client {:?} for {:?}, not for {:?} (nor to cli_client_id)",
                    client.unwrap_or(""),
                    aud,
                    i.audience
                )));
            }
        }
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            let max_age = self.max_age;
            cache.retain(|_, (_, at)| at.elapsed() < max_age);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (claims.clone(), Instant::now()));
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn endpoint(&self) -> Result<String, String> {
        if let Some(e) = self
            .endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(e);
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let resp = self.http.get(&url).send().await.map_err(|e| {
            format!(
                "cannot fetch {url}: {}",
                crate::client::describe_reqwest(&e)
            )
        })?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        let doc: Value = resp
            .json()
            .await
            .map_err(|e| format!("{url} is not JSON: {e}"))?;
        let iss = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if iss.trim_end_matches('/') != self.issuer {
            return Err(format!(
                "{url} names issuer {iss:?}, not {:?}: check [auth] issuer",
                self.issuer
            ));
        }
        let name = if self.introspection.is_some() {
            "introspection_endpoint"
        } else {
            "userinfo_endpoint"
        };
        let e = doc
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url} has no {name}, so opaque tokens cannot be checked"))?
            .to_string();
        *self.endpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        Ok(e)
    }
}
