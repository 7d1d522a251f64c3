//! The client side of identity: logging in at the gateway's OpenID provider (device flow,
//! browser with PKCE, client credentials), refreshing, and finding the token a command
//! runs with.
//!
//! Plain reqwest + serde rather than the `openidconnect` crate: hoopx needs discovery and
//! four token-endpoint requests, all a few lines each, while `openidconnect` brings its
//! own HTTP abstraction and a large tree of crypto crates for ID-token checks the client
//! does not need (the gateway checks every token; the client only carries them).
//!
//! Where a command's token comes from, first match wins:
//! 1. `--token` / `HOOPX_TOKEN`;
//! 2. `HOOPX_CLIENT_ID` + `HOOPX_CLIENT_SECRET`: client credentials at the provider;
//! 3. the cached login for that gateway (`hoopx login`), refreshed when it is about to
//!    expire;
//! 4. an ambient CI token exchanged at the gateway: `HOOPX_ID_TOKEN` (or the variable the
//!    client config's `id_token_env` names: GitLab `id_tokens`, or any CI that can put an
//!    ID token in a variable), or GitHub Actions' `ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN`.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::cache::{self, CacheError, Entry};
use super::Secret;
use crate::client::{ClientError, GatewayClient};
use crate::env_vars;
use crate::proto::auth::AuthInfo;

/// A token this close to its expiry is refreshed before use (a third of its lifetime for
/// tokens that live less than three minutes).
pub const REFRESH_AHEAD: i64 = 60;

/// When a token expiring at `exp` should be renewed (Unix seconds).
pub fn renew_at(token: &Secret, exp: i64) -> i64 {
    let iat = unverified_claims(token)
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(exp - 3 * REFRESH_AHEAD);
    exp - REFRESH_AHEAD.min(((exp - iat) / 3).max(1))
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The gateway or the identity provider cannot be reached.
    #[error("{message}")]
    Unreachable {
        message: String,
        hint: Option<String>,
    },
    /// The provider or the gateway said no (denied, expired, revoked, bad client).
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    /// The setup cannot work (dev gateway, no client id, no gateway…).
    #[error("{message}")]
    Setup {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Gateway(#[from] ClientError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl LoginError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LoginError::Unreachable { hint, .. }
            | LoginError::Refused { hint, .. }
            | LoginError::Setup { hint, .. } => hint.clone(),
            LoginError::Gateway(e) => e.hint(),
            LoginError::Cache(_) => None,
        }
    }
}

fn refused(message: impl Into<String>, hint: &str) -> LoginError {
    LoginError::Refused {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

/// What the provider's discovery document says (the parts hoopx uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// Tokens from the provider's token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

/// A gateway's identity provider, discovered.
#[derive(Debug, Clone)]
pub struct Provider {
    pub gateway: String,
    pub info: AuthInfo,
    pub disc: Discovery,
    pub audience: String,
    http: reqwest::Client,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Asks the gateway how to log in there.
pub async fn auth_info(gateway: &str) -> Result<AuthInfo, LoginError> {
    Ok(GatewayClient::new(gateway, None)?.auth_info().await?)
}

impl Provider {
    /// `GET /v1/auth` at the gateway, then the provider's discovery document.
    pub async fn discover(gateway: &str) -> Result<Provider, LoginError> {
        let info = auth_info(gateway).await?;
        let (Some(issuer), Some(audience)) = (info.issuer.clone(), info.audience.clone()) else {
            return Err(LoginError::Setup {
                message: format!("the gateway at {gateway} runs in dev mode: there is no identity provider to log in with"),
                hint: Some("set HOOPX_TOKEN to the token the dev gateway printed at start".into()),
            });
        };
        let http = http();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let disc: Discovery = get_json(&http, &url).await.and_then(|v| {
            serde_json::from_value(v).map_err(|e| LoginError::Unreachable {
                message: format!("{url} is not an OpenID discovery document: {e}"),
                hint: Some("check the gateway's [auth] issuer".into()),
            })
        })?;
        if disc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(LoginError::Setup {
                message: format!(
                    "{url} names issuer {:?}, but the gateway trusts {issuer:?}",
                    disc.issuer
                ),
                hint: Some(
                    "the gateway's [auth] issuer must be the provider's exact issuer URL".into(),
                ),
            });
        }
        Ok(Provider {
            gateway: gateway.trim_end_matches('/').to_string(),
            info,
            disc,
            audience,
            http,
        })
    }

    /// The public client id `hoopx login` uses.
    pub fn cli_client_id(&self) -> Result<String, LoginError> {
        self.info.cli_client_id.clone().ok_or_else(|| LoginError::Setup {
            message: "the gateway names no client id for hoopx login".into(),
            hint: Some("the gateway's [auth] table needs cli_client_id = \"…\" (a public client at the provider)".into()),
        })
    }

    /// Posts a form to the token endpoint; the provider's `error` becomes a [`LoginError`].
    async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &Secret)>,
    ) -> Result<Result<TokenSet, (String, String)>, LoginError> {
        let mut rb = self.http.post(&self.disc.token_endpoint).form(form);
        if let Some((id, secret)) = basic {
            rb = rb.basic_auth(id, Some(secret.expose()));
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| unreachable(&self.disc.token_endpoint, &e))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let Some(at) = v.get("access_token").and_then(Value::as_str) else {
                return Err(LoginError::Refused {
                    message: format!(
                        "{} answered without an access token",
                        self.disc.token_endpoint
                    ),
                    hint: None,
                });
            };
            return Ok(Ok(TokenSet {
                access_token: Secret::new(at),
                refresh_token: v
                    .get("refresh_token")
                    .and_then(Value::as_str)
                    .map(Secret::new),
                expires_at: v
                    .get("expires_in")
                    .and_then(Value::as_i64)
                    .map(|s| now() + s),
            }));
        }
        let code = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let desc = v
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if code.is_empty() {
            return Err(LoginError::Unreachable {
                message: format!("{} answered {status}", self.disc.token_endpoint),
                hint: None,
            });
        }
        Ok(Err((code, desc)))
    }

    /// Starts a device authorization: what to show the person.
    pub async fn device_start(&self, client_id: &str) -> Result<DeviceStart, LoginError> {
        let Some(url) = &self.disc.device_authorization_endpoint else {
            return Err(LoginError::Setup {
                message: format!("{} offers no device flow", self.disc.issuer),
                hint: Some(
                    "use `hoopx login --browser`, or enable the device flow at the provider".into(),
                ),
            });
        };
        let resp = self
            .http
            .post(url)
            .form(&[
                ("client_id", client_id),
                ("scope", "openid offline_access"),
                ("resource", &self.audience),
            ])
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match (s("device_code"), s("user_code"), s("verification_uri")) {
            (Some(device_code), Some(user_code), Some(verification_uri)) if status.is_success() => {
                Ok(DeviceStart {
                    device_code: Secret::new(device_code),
                    user_code,
                    verification_uri_complete: s("verification_uri_complete"),
                    verification_uri,
                    interval: v.get("interval").and_then(Value::as_u64).unwrap_or(5).max(1),
                    expires_at: now() + v.get("expires_in").and_then(Value::as_i64).unwrap_or(600),
                })
            }
            _ => Err(refused(
                format!(
                    "the provider refused to start a device login: {}",
                    s("error_description").or(s("error")).unwrap_or_else(|| status.to_string())
                ),
                "check the gateway's [auth] cli_client_id: it must be a public client allowed the device flow",
            )),
        }
    }

    /// Polls until the person approved, denied or the code expired.
    pub async fn device_poll(
        &self,
        client_id: &str,
        start: &DeviceStart,
    ) -> Result<TokenSet, LoginError> {
        let mut interval = start.interval;
        loop {
            if now() > start.expires_at {
                return Err(refused(
                    "the login code expired before it was approved",
                    "run `hoopx login` again and approve within the time shown",
                ));
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let r = self
                .token_request(
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", start.device_code.expose()),
                        ("client_id", client_id),
                    ],
                    None,
                )
                .await?;
            match r {
                Ok(t) => return Ok(t),
                Err((code, _)) if code == "authorization_pending" => {}
                Err((code, _)) if code == "slow_down" => interval += 5,
                Err((code, _)) if code == "access_denied" => {
                    return Err(refused(
                        "the login was denied at the identity provider",
                        "run `hoopx login` again and approve the request",
                    ))
                }
                Err((code, _)) if code == "expired_token" => {
                    return Err(refused(
                        "the login code expired before it was approved",
                        "run `hoopx login` again and approve within the time shown",
                    ))
                }
                Err((code, desc)) => {
                    return Err(refused(
                        format!("the provider refused the login: {code}: {desc}"),
                        "run `hoopx login` again",
                    ))
                }
            }
        }
    }

    /// New tokens from a refresh token.
    pub async fn refresh(&self, client_id: &str, refresh: &Secret) -> Result<TokenSet, LoginError> {
        match self
            .token_request(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.expose()),
                    ("client_id", client_id),
                    ("resource", &self.audience),
                ],
                None,
            )
            .await?
        {
            Ok(mut t) => {
                // Providers that do not rotate refresh tokens keep the old one valid.
                if t.refresh_token.is_none() {
                    t.refresh_token = Some(refresh.clone());
                }
                Ok(t)
            }
            Err((code, desc)) => Err(refused(
                format!(
                    "your login could not be renewed ({code}: {desc}): it expired or was revoked"
                ),
                &format!("run `hoopx login --gateway {}`", self.gateway),
            )),
        }
    }

    /// A machine's token: OAuth client credentials.
    pub async fn client_credentials(
        &self,
        id: &str,
        secret: &Secret,
    ) -> Result<TokenSet, LoginError> {
        match self
            .token_request(
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", &self.audience),
                ],
                Some((id, secret)),
            )
            .await?
        {
            Ok(t) => Ok(t),
            Err((code, desc)) => Err(refused(
                format!("the identity provider refused client {id:?}: {code}: {desc}"),
                "check HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET",
            )),
        }
    }

    /// Tokens for an authorization code (browser login with PKCE).
    pub async fn exchange_code(
        &self,
        client_id: &str,
        code: &Secret,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<TokenSet, LoginError> {
        match self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("redirect_uri", redirect_uri),
                    ("client_id", client_id),
                    ("code_verifier", verifier.expose()),
                    ("resource", &self.audience),
                ],
                None,
            )
            .await?
        {
            Ok(t) => Ok(t),
            Err((code, desc)) => Err(refused(
                format!("the provider refused the login code: {code}: {desc}"),
                "run `hoopx login --browser` again",
            )),
        }
    }

    /// Revokes a token at the provider, if it has a revocation endpoint (best effort).
    pub async fn revoke(&self, client_id: &str, token: &Secret) -> Result<(), LoginError> {
        let Some(url) = &self.disc.revocation_endpoint else {
            return Ok(());
        };
        let resp = self
            .http
            .post(url)
            .form(&[("token", token.expose()), ("client_id", client_id)])
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(LoginError::Refused {
                message: format!("{url} answered {} to the revocation", resp.status()),
                hint: None,
            })
        }
    }

    /// The cache entry for tokens from this provider.
    pub fn entry(&self, client_id: &str, flow: &str, t: TokenSet) -> Entry {
        let claims = unverified_claims(&t.access_token);
        Entry {
            issuer: self.disc.issuer.clone(),
            client_id: client_id.to_string(),
            audience: self.audience.clone(),
            expires_at: t
                .expires_at
                .or_else(|| claims.get("exp").and_then(Value::as_i64)),
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            flow: flow.into(),
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            groups: vec![],
        }
    }
}

/// What the person is shown to approve a device login.
#[derive(Debug)]
pub struct DeviceStart {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub interval: u64,
    pub expires_at: i64,
}

fn unreachable(url: &str, e: &reqwest::Error) -> LoginError {
    LoginError::Unreachable {
        message: format!(
            "cannot reach the identity provider at {url}: {}",
            crate::client::describe_reqwest(e)
        ),
        hint: Some("check the network, and the gateway's [auth] issuer".into()),
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, LoginError> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    if !resp.status().is_success() {
        return Err(LoginError::Unreachable {
            message: format!("{url} answered {}", resp.status()),
            hint: Some("check the gateway's [auth] issuer".into()),
        });
    }
    resp.json().await.map_err(|e| LoginError::Unreachable {
        message: format!("{url} did not answer JSON: {e}"),
        hint: None,
    })
}

/// A JWT's claims, unverified (the client only reads its own token's `sub` and `exp`; the
/// gateway verifies). Empty for opaque tokens.
pub fn unverified_claims(token: &Secret) -> serde_json::Map<String, Value> {
    token
        .expose()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Where a command's token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--token` / `HOOPX_TOKEN`.
    Given,
    /// `HOOPX_CLIENT_ID` / `HOOPX_CLIENT_SECRET`.
    ClientCredentials,
    /// The cached `hoopx login`.
    Login,
    /// GitHub Actions' ID token, exchanged at the gateway.
    GitHubActions,
    /// A CI ID token from this environment variable, exchanged at the gateway.
    IdToken(String),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Given => "HOOPX_TOKEN / --token".into(),
            Source::ClientCredentials => "client credentials (HOOPX_CLIENT_ID)".into(),
            Source::Login => "hoopx login".into(),
            Source::GitHubActions => "GitHub Actions ID token, exchanged".into(),
            Source::IdToken(var) => format!("CI ID token from {var}, exchanged"),
        }
    }
}

/// A token for a gateway, and how to get a fresh one.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub gateway: String,
    pub source: Source,
    pub token: Secret,
    /// Unix seconds, when known.
    pub expires_at: Option<i64>,
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// The token a command runs with against `gateway` (see the module doc for the order);
/// `None` when there is none at all. `id_token_var` names the variable that holds a CI ID
/// token (default `HOOPX_ID_TOKEN`).
pub async fn obtain(
    gateway: &str,
    given: Option<Secret>,
    id_token_var: Option<&str>,
) -> Result<Option<Credentials>, LoginError> {
    if let Some(token) = given {
        let expires_at = unverified_claims(&token).get("exp").and_then(Value::as_i64);
        return Ok(Some(Credentials {
            gateway: gateway.into(),
            source: Source::Given,
            token,
            expires_at,
        }));
    }
    let (id, secret) = (
        env_nonempty(env_vars::HOOPX_CLIENT_ID),
        env_nonempty(env_vars::HOOPX_CLIENT_SECRET),
    );
    if id.is_some() != secret.is_some() {
        return Err(LoginError::Setup {
            message: format!(
                "{} is set but {} is not",
                if id.is_some() {
                    env_vars::HOOPX_CLIENT_ID
                } else {
                    env_vars::HOOPX_CLIENT_SECRET
                },
                if id.is_some() {
                    env_vars::HOOPX_CLIENT_SECRET
                } else {
                    env_vars::HOOPX_CLIENT_ID
                },
            ),
            hint: Some(
                "a machine identity needs both; unset both to use `hoopx login` or a CI identity"
                    .into(),
            ),
        });
    }
    if client_credentials_env().is_some() {
        return fetch(gateway, &Source::ClientCredentials, None)
            .await
            .map(Some);
    }
    if cache::get(gateway)?.is_some() {
        return renew_login(gateway, None).await.map(Some);
    }
    let id_token_var = id_token_var.unwrap_or(env_vars::HOOPX_ID_TOKEN);
    if env_nonempty(id_token_var).is_some() {
        return fetch(gateway, &Source::IdToken(id_token_var.into()), None)
            .await
            .map(Some);
    }
    if env_nonempty(env_vars::ACTIONS_ID_TOKEN_REQUEST_URL).is_some() {
        return fetch(gateway, &Source::GitHubActions, None).await.map(Some);
    }
    Ok(None)
}

fn client_credentials_env() -> Option<(String, Secret)> {
    Some((
        env_nonempty(env_vars::HOOPX_CLIENT_ID)?,
        Secret::new(env_nonempty(env_vars::HOOPX_CLIENT_SECRET)?),
    ))
}

/// A fresh token from the same source as `old` (a refresh, a new client-credentials token,
/// a new exchange). A given token cannot be renewed.
pub async fn renew(old: &Credentials) -> Result<Credentials, LoginError> {
    fetch(&old.gateway, &old.source, Some(&old.token)).await
}

/// A token from `source`; for a login, one other than `stale`.
async fn fetch(
    gateway: &str,
    source: &Source,
    stale: Option<&Secret>,
) -> Result<Credentials, LoginError> {
    let done = |token: Secret, expires_at: Option<i64>| Credentials {
        gateway: gateway.into(),
        source: source.clone(),
        token,
        expires_at,
    };
    match source {
        Source::Given => Err(refused(
            "the token from HOOPX_TOKEN / --token has expired and hoopx cannot renew it",
            "use `hoopx login`, client credentials or a CI identity, which hoopx renews by itself",
        )),
        Source::Login => renew_login(gateway, stale).await,
        Source::ClientCredentials => {
            let (id, secret) = client_credentials_env().ok_or_else(|| LoginError::Setup {
                message: "HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET must both be set".into(),
                hint: None,
            })?;
            let p = Provider::discover(gateway).await?;
            let t = p.client_credentials(&id, &secret).await?;
            let exp = t.expires_at;
            Ok(done(t.access_token, exp))
        }
        Source::IdToken(var) => {
            let ci = env_nonempty(var)
                .map(Secret::new)
                .ok_or_else(|| LoginError::Setup {
                    message: format!("{var} is not set"),
                    hint: None,
                })?;
            let x = GatewayClient::new(gateway, None)?.exchange(&ci).await?;
            Ok(done(Secret::new(x.access_token), Some(x.expires_at)))
        }
        Source::GitHubActions => {
            let info = auth_info(gateway).await?;
            let audience = github_audience(&info);
            let ci = github_id_token(&audience).await?;
            let x = GatewayClient::new(gateway, None)?.exchange(&ci).await?;
            Ok(done(Secret::new(x.access_token), Some(x.expires_at)))
        }
    }
}

/// The cached login for `gateway`, refreshed when it is about to expire or when it is
/// still `stale` (the token the caller wants replaced). Refreshes happen under the cache
/// lock; a login another process refreshed meanwhile is used as it is.
async fn renew_login(gateway: &str, stale: Option<&Secret>) -> Result<Credentials, LoginError> {
    let not_logged_in = || {
        refused(
            format!("not logged in to {gateway}"),
            &format!("run `hoopx login --gateway {gateway}`"),
        )
    };
    let usable = |e: &Entry| {
        e.expires_at
            .is_none_or(|exp| now() < renew_at(&e.access_token, exp))
            && stale.is_none_or(|s| *s != e.access_token)
    };
    let done = |e: Entry| Credentials {
        gateway: gateway.into(),
        source: Source::Login,
        token: e.access_token,
        expires_at: e.expires_at,
    };
    let entry = cache::get(gateway)?.ok_or_else(not_logged_in)?;
    if usable(&entry) {
        return Ok(done(entry));
    }
    let _lock = tokio::task::spawn_blocking(cache::lock)
        .await
        .map_err(|e| LoginError::Setup {
            message: format!("cannot wait for the token cache lock: {e}"),
            hint: None,
        })??;
    let entry = cache::get(gateway)?.ok_or_else(not_logged_in)?;
    if usable(&entry) {
        return Ok(done(entry));
    }
    let Some(refresh) = &entry.refresh_token else {
        return Err(refused(
            format!("your login to {gateway} has expired"),
            &format!("run `hoopx login --gateway {gateway}`"),
        ));
    };
    let p = Provider::discover(gateway).await?;
    let t = p.refresh(&entry.client_id, refresh).await?;
    let mut updated = p.entry(&entry.client_id, &entry.flow, t);
    updated.subject = entry.subject.clone();
    updated.groups = entry.groups.clone();
    cache::put(gateway, &updated)?;
    Ok(done(updated))
}

/// The audience to ask GitHub for: the trusted issuer's that is GitHub's (or the only
/// one), else the gateway's.
fn github_audience(info: &AuthInfo) -> String {
    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    info.trusted_issuers
        .iter()
        .find(|t| t.issuer.trim_end_matches('/') == GITHUB)
        .or(match info.trusted_issuers.as_slice() {
            [one] => Some(one),
            _ => None,
        })
        .map(|t| t.audience.clone())
        .or_else(|| info.audience.clone())
        .unwrap_or_default()
}

/// Asks the GitHub Actions runtime for an ID token for `audience`.
async fn github_id_token(audience: &str) -> Result<Secret, LoginError> {
    let (Some(url), Some(bearer)) = (
        env_nonempty(env_vars::ACTIONS_ID_TOKEN_REQUEST_URL),
        env_nonempty(env_vars::ACTIONS_ID_TOKEN_REQUEST_TOKEN),
    ) else {
        return Err(LoginError::Setup {
            message:
                "ACTIONS_ID_TOKEN_REQUEST_URL is set but ACTIONS_ID_TOKEN_REQUEST_TOKEN is not"
                    .into(),
            hint: Some("give the job `permissions: id-token: write`".into()),
        });
    };
    let mut u = reqwest::Url::parse(&url).map_err(|e| LoginError::Setup {
        message: format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"),
        hint: None,
    })?;
    u.query_pairs_mut().append_pair("audience", audience);
    let shown = format!(
        "{}://{}{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.path()
    );
    let resp = http()
        .get(u)
        .bearer_auth(&bearer)
        .send()
        .await
        .map_err(|e| unreachable(&shown, &e))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    match v.get("value").and_then(Value::as_str) {
        Some(t) if status.is_success() => Ok(Secret::new(t)),
        _ => Err(refused(
            format!("GitHub Actions gave no ID token ({shown} answered {status})"),
            "give the job `permissions: id-token: write`",
        )),
    }
}
