//! Opaque access tokens (not JWTs: Google's, or oidc-provider's without resource
//! indicators) checked at the provider's userinfo endpoint (`[auth] opaque_tokens =
//! "userinfo"`). The endpoint comes from discovery. A token the endpoint answers with the
//! user's claims is good; its answer is reused for `opaque_cache` (default 60 s) so a busy
//! client does not ask the provider on every request. Fail closed: a refusal (401, 403) is
//! an invalid token, any other failure means nothing can be checked.

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

pub struct UserInfo {
    issuer: String,
    endpoint: Mutex<Option<String>>,
    http: reqwest::Client,
    max_age: Duration,
    cache: Mutex<Cache>,
}

impl UserInfo {
    pub fn new(issuer: &str, max_age: Duration) -> UserInfo {
        UserInfo {
            issuer: issuer.trim_end_matches('/').to_string(),
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
        if let Some((c, at)) = self.lock().get(&key) {
            if at.elapsed() < self.max_age {
                return Ok(c.clone());
            }
        }
        let endpoint = self.endpoint().await.map_err(AuthError::Unavailable)?;
        let resp = self
            .http
            .get(&endpoint)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| {
                AuthError::Unavailable(format!(
                    "cannot reach {endpoint}: {}",
                    crate::client::describe_reqwest(&e)
                ))
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            self.lock().remove(&key);
            return Err(AuthError::Invalid(format!(
                "the provider's userinfo endpoint refused it ({status})"
            )));
        }
        if !status.is_success() {
            return Err(AuthError::Unavailable(format!(
                "{endpoint} answered {status}"
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
        let e = doc
            .get("userinfo_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!("{url} has no userinfo_endpoint, so opaque tokens cannot be checked")
            })?
            .to_string();
        *self.endpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        Ok(e)
    }
}
