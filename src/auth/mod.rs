//! Identity: who is calling. The gateway authenticates every request through one
//! [`Authenticator`]; dev mode has one static token, OIDC plugs in behind the same trait
//! ([`oidc`] validates JWTs against the provider's keys from [`jwks`]); the client side
//! of logging in lives in [`login`] and its token cache in [`cache`].

pub mod cache;
pub mod jwks;
pub mod login;
pub mod oidc;
pub mod pkce;
pub mod userinfo;

use async_trait::async_trait;
use base64::Engine;
use rand::RngCore;

/// A secret string: its `Debug` never shows the value, and it is only read through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    Missing,
    #[error("the bearer token was not accepted")]
    Rejected,
    /// Rejected, and why (never the token itself).
    #[error("the bearer token was not accepted: {0}")]
    Invalid(String),
    /// The identity provider's keys could not be fetched: nothing can be checked.
    #[error("cannot check the token: {0}")]
    Unavailable(String),
    /// This gateway exchanges no tokens (no `[[auth.trusted_issuers]]`).
    #[error("{0}")]
    NoExchange(String),
}

/// An identity and until when its token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: Identity,
    /// Unix time in seconds (the token's `exp`); `None`: does not expire.
    pub expires_at: Option<i64>,
}

/// A short-lived gateway token issued in exchange for a CI token.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub token: Secret,
    pub identity: Identity,
    /// Unix time in seconds.
    pub expires_at: i64,
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity, AuthError>;

    /// [`Authenticator::authenticate`], with the token's expiry (for sessions that must end
    /// when it lapses).
    async fn verify(&self, bearer: Option<&str>) -> Result<Verified, AuthError> {
        Ok(Verified {
            identity: self.authenticate(bearer).await?,
            expires_at: None,
        })
    }

    /// Whether tokens can be checked now (readiness): `Err` says why not, e.g. the identity
    /// provider's keys could not be fetched.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Exchanges a token from a trusted CI issuer for a gateway session token.
    async fn exchange(&self, _token: &str) -> Result<Exchanged, AuthError> {
        Err(AuthError::NoExchange(
            "this gateway exchanges no CI tokens (its config has no [[auth.trusted_issuers]])"
                .into(),
        ))
    }
}

/// Tries each authenticator in turn: the first that accepts the token wins (dev token and
/// OIDC side by side on a `--dev` gateway with an `[auth]` table).
pub struct Chain(pub Vec<std::sync::Arc<dyn Authenticator>>);

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity, AuthError> {
        Ok(self.verify(bearer).await?.identity)
    }

    async fn verify(&self, bearer: Option<&str>) -> Result<Verified, AuthError> {
        let mut last = AuthError::Missing;
        for a in &self.0 {
            match a.verify(bearer).await {
                Ok(v) => return Ok(v),
                // The most telling refusal wins: a reason over a bare "rejected".
                Err(e @ (AuthError::Invalid(_) | AuthError::Unavailable(_))) => last = e,
                Err(e) if last == AuthError::Missing => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }

    async fn ready(&self) -> Result<(), String> {
        for a in &self.0 {
            a.ready().await?;
        }
        Ok(())
    }

    async fn exchange(&self, token: &str) -> Result<Exchanged, AuthError> {
        let mut last = None;
        for a in &self.0 {
            match a.exchange(token).await {
                Ok(x) => return Ok(x),
                Err(AuthError::NoExchange(m)) => {
                    last.get_or_insert(AuthError::NoExchange(m));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(AuthError::NoExchange("no authenticator".into())))
    }
}

/// `gateway serve --dev`: one shared token for the identity `dev`, plus the named
/// identities of the config's `[[dev.identities]]` (each its own token and groups), so
/// reviews can be tried with a requester and a reviewer without an identity provider.
#[derive(Debug)]
pub struct DevToken {
    token: Secret,
    identities: Vec<(Secret, Identity)>,
}

/// The identity of a `--dev` gateway's own dev token.
pub const DEV_SUBJECT: &str = "dev";

impl DevToken {
    pub fn new(token: Secret) -> DevToken {
        DevToken {
            token,
            identities: Vec::new(),
        }
    }

    /// Adds a named identity with its own token.
    pub fn with_identity(mut self, token: Secret, identity: Identity) -> DevToken {
        self.identities.push((token, identity));
        self
    }
}

#[async_trait]
impl Authenticator for DevToken {
    async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity, AuthError> {
        let bearer = bearer.ok_or(AuthError::Missing)?;
        // Every token is compared, so the time taken says nothing about which one matched.
        let mut found = None;
        if constant_time_eq(bearer.as_bytes(), self.token.expose().as_bytes()) {
            found = Some(Identity {
                subject: DEV_SUBJECT.into(),
                groups: vec![],
            });
        }
        for (token, identity) in &self.identities {
            if constant_time_eq(bearer.as_bytes(), token.expose().as_bytes()) {
                found = Some(identity.clone());
            }
        }
        found.ok_or(AuthError::Rejected)
    }
}

/// The embedded gateway: a random per-process token held by the same process, and the
/// local user's name as identity.
#[derive(Debug)]
pub struct LocalToken {
    token: Secret,
    user: String,
}

impl LocalToken {
    pub fn new(token: Secret, user: String) -> LocalToken {
        LocalToken { token, user }
    }
}

#[async_trait]
impl Authenticator for LocalToken {
    async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity, AuthError> {
        let bearer = bearer.ok_or(AuthError::Missing)?;
        if constant_time_eq(bearer.as_bytes(), self.token.expose().as_bytes()) {
            Ok(Identity {
                subject: format!("local:{}", self.user),
                groups: vec![],
            })
        } else {
            Err(AuthError::Rejected)
        }
    }
}

/// A fresh random token: 32 bytes, URL-safe base64.
pub fn generate_token() -> Secret {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_themselves() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let d = DevToken::new(s);
        assert!(!format!("{d:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn dev_token_accepts_only_its_token() {
        let a = DevToken::new(Secret::new("t0k"));
        assert_eq!(a.authenticate(Some("t0k")).await.unwrap().subject, "dev");
        assert_eq!(a.authenticate(Some("t0K")).await, Err(AuthError::Rejected));
        assert_eq!(a.authenticate(Some("")).await, Err(AuthError::Rejected));
        assert_eq!(a.authenticate(None).await, Err(AuthError::Missing));
    }

    #[tokio::test]
    async fn dev_identities_have_their_own_tokens_and_groups() {
        let a = DevToken::new(Secret::new("shared-token")).with_identity(
            Secret::new("tok-alice"),
            Identity {
                subject: "alice".into(),
                groups: vec!["dba".into()],
            },
        );
        let alice = a.authenticate(Some("tok-alice")).await.unwrap();
        assert_eq!((alice.subject.as_str(), alice.groups.len()), ("alice", 1));
        assert_eq!(
            a.authenticate(Some("shared-token")).await.unwrap().subject,
            "dev"
        );
        assert_eq!(
            a.authenticate(Some("tok-alic")).await,
            Err(AuthError::Rejected)
        );
        assert!(!format!("{a:?}").contains("tok-alice"));
    }

    #[test]
    fn generated_tokens_differ() {
        assert_ne!(generate_token(), generate_token());
        assert_eq!(generate_token().expose().len(), 43);
    }
}
