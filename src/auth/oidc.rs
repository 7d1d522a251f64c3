//! The gateway's OpenID authenticator: bearer tokens are JWTs from the configured provider
//! (`[auth] issuer`), checked against its JWKS, or session tokens this gateway issued in
//! exchange for a CI token from a trusted issuer (`[[auth.trusted_issuers]]`).
//!
//! Session tokens are EdDSA JWTs signed with a key derived from the gateway's signing key
//! (so replicas sharing that key accept each other's tokens, and the recording key itself
//! never signs anything but recordings).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};
use sha2::Digest;

use super::jwks::{self, Expect, Key, KeySet};
use super::{AuthError, Authenticator, Exchanged, Identity, Secret, Verified};
use crate::policy::auth::{AuthSettings, TrustedIssuer};

/// The `iss` of the gateway's own session tokens.
pub const SESSION_ISSUER: &str = "urn:hoopx:gateway-session";

pub struct OidcAuthenticator {
    settings: AuthSettings,
    /// `[auth] opaque_tokens = "userinfo"`: how tokens that are not JWTs are checked.
    userinfo: Option<super::userinfo::UserInfo>,
    provider: KeySet,
    trusted: Vec<(TrustedIssuer, KeySet)>,
    session_key: EncodingKey,
    session_verify: Key,
    session_kid: String,
}

impl std::fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .finish_non_exhaustive()
    }
}

impl OidcAuthenticator {
    pub fn new(settings: AuthSettings, signer: &ed25519_dalek::SigningKey) -> Arc<Self> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        // A key of its own for session tokens, derived from the recording key.
        let seed: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"hoopx session tokens v1\0")
            .chain_update(signer.to_bytes())
            .finalize()
            .into();
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = sk
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let session_kid = hex::encode(&sha2::Sha256::digest(sk.verifying_key().as_bytes())[..8]);
        let session_verify = Key::new(
            Some(session_kid.clone()),
            Algorithm::EdDSA,
            // 32 bytes of a valid point: cannot fail.
            DecodingKey::from_ed_components(&x).unwrap_or_else(|_| DecodingKey::from_ed_der(&[])),
        );
        Arc::new(OidcAuthenticator {
            userinfo: settings.opaque_tokens.map(|how| {
                let introspection = match how {
                    crate::policy::auth::OpaqueTokens::UserInfo => None,
                    crate::policy::auth::OpaqueTokens::Introspect => settings
                        .introspection_client
                        .clone()
                        .map(|(id, secret)| super::userinfo::Introspection {
                            client_id: id,
                            client_secret: secret,
                            audience: settings.audience.clone(),
                            cli_client_id: settings.cli_client_id.clone(),
                        }),
                };
                super::userinfo::UserInfo::new(
                    &settings.issuer,
                    settings.opaque_cache,
                    introspection,
                )
            }),
            provider: KeySet::new(&settings.issuer, settings.jwks_uri.clone()),
            trusted: settings
                .trusted_issuers
                .iter()
                .map(|t| (t.clone(), KeySet::new(&t.issuer, t.jwks_uri.clone())))
                .collect(),
            session_key: EncodingKey::from_ed_der(&der),
            session_verify,
            session_kid,
            settings,
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        self.settings
            .algorithms
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// Verifies `token` against `keys` for `expect`; the key is looked up by the token's
    /// `kid` (refetching the JWKS once, rate-limited, when it is unknown).
    async fn check_with(
        keys: &KeySet,
        token: &str,
        expect: &Expect,
    ) -> Result<Map<String, Value>, AuthError> {
        let peek = jwks::peek(token).map_err(AuthError::Invalid)?;
        let key = keys
            .find(peek.kid.as_deref(), &peek.alg)
            .await
            .map_err(AuthError::Unavailable)?
            .ok_or_else(|| {
                AuthError::Invalid(match &peek.kid {
                    Some(kid) => format!(
                        "it is signed with key {kid:?}, which {} does not publish",
                        expect.issuer
                    ),
                    None => format!(
                        "it names no key id and {} has no single {} key",
                        expect.issuer, peek.alg
                    ),
                })
            })?;
        jwks::check(token, &key, expect).map_err(AuthError::Invalid)
    }

    fn groups_of(&self, claims: &Map<String, Value>) -> Vec<String> {
        groups_at(claims, &self.settings.groups_claim)
    }

    fn session_expect(&self) -> Expect {
        Expect {
            issuer: SESSION_ISSUER.into(),
            audience: self.settings.audience.clone(),
            algorithms: vec![Algorithm::EdDSA],
            leeway: self.settings.leeway,
        }
    }

    /// A session token for `identity` until `exp` (Unix seconds).
    pub fn mint(&self, identity: &Identity, via: &str, exp: i64) -> Result<Exchanged, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": SESSION_ISSUER,
            "aud": self.settings.audience,
            "sub": identity.subject,
            "groups": identity.groups,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "via": via,
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.session_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.session_key)
            .map_err(|e| AuthError::Unavailable(format!("cannot sign a session token: {e}")))?;
        Ok(Exchanged {
            token: Secret::new(token),
            identity: identity.clone(),
            expires_at: exp,
        })
    }
}

/// The groups in claim `name`: a list of strings, or one string of space- or
/// comma-separated names. A dotted name that is not a top-level claim is a path into
/// nested objects (Keycloak's `realm_access.roles`).
pub fn groups_at(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let found = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let mut v = claims.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        Some(v)
    });
    match found {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

fn expires(claims: &Map<String, Value>) -> Option<i64> {
    claims.get("exp").and_then(Value::as_i64)
}

#[async_trait]
impl Authenticator for OidcAuthenticator {
    async fn ready(&self) -> Result<(), String> {
        self.provider
            .ready()
            .await
            .map_err(|e| format!("identity provider keys: {e}"))
    }

    async fn authenticate(&self, bearer: Option<&str>) -> Result<Identity, AuthError> {
        Ok(self.verify(bearer).await?.identity)
    }

    async fn verify(&self, bearer: Option<&str>) -> Result<Verified, AuthError> {
        let token = bearer.ok_or(AuthError::Missing)?;
        let peek = match (jwks::peek(token), &self.userinfo) {
            (Ok(p), _) => p,
            (Err(_), Some(userinfo)) => {
                // An opaque access token: the provider says whose it is.
                let claims = userinfo.claims(token).await?;
                let subject = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        AuthError::Invalid("the provider's userinfo has no \"sub\"".into())
                    })?;
                return Ok(Verified {
                    identity: Identity {
                        subject: subject.to_string(),
                        groups: self.groups_of(&claims),
                    },
                    // From introspection; else unknown: the provider is asked again once
                    // the cached answer is old.
                    expires_at: claims.get("exp").and_then(Value::as_i64),
                });
            }
            (Err(e), None) => {
                return Err(AuthError::Invalid(format!(
                    "{e}; if the provider issues opaque access tokens, set opaque_tokens = \"userinfo\" in [auth]"
                )))
            }
        };
        match peek.iss.as_deref() {
            Some(SESSION_ISSUER) => {
                let claims = jwks::check(token, &self.session_verify, &self.session_expect())
                    .map_err(|e| AuthError::Invalid(format!("gateway session token: {e}")))?;
                let groups = match claims.get("groups") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    _ => vec![],
                };
                Ok(Verified {
                    identity: Identity {
                        subject: claims.get("sub").and_then(Value::as_str).unwrap_or("").to_string(),
                        groups,
                    },
                    expires_at: expires(&claims),
                })
            }
            Some(iss) if iss.trim_end_matches('/') == self.settings.issuer.trim_end_matches('/') => {
                let expect = Expect {
                    issuer: iss.to_string(),
                    audience: self.settings.audience.clone(),
                    algorithms: self.algorithms(),
                    leeway: self.settings.leeway,
                };
                let claims = Self::check_with(&self.provider, token, &expect).await?;
                let subject = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| AuthError::Invalid("the token has an empty \"sub\"".into()))?;
                Ok(Verified {
                    identity: Identity {
                        subject: subject.to_string(),
                        groups: self.groups_of(&claims),
                    },
                    expires_at: expires(&claims),
                })
            }
            Some(iss) if self.trusted.iter().any(|(t, _)| t.issuer.trim_end_matches('/') == iss.trim_end_matches('/')) => {
                Err(AuthError::Invalid(format!(
                    "tokens from {iss} are exchanged first (POST /v1/auth/exchange, as `hoopx exec` does), not used directly"
                )))
            }
            Some(iss) => Err(AuthError::Invalid(format!(
                "it was issued by {iss:?}; this gateway accepts tokens from {:?}",
                self.settings.issuer
            ))),
            None => Err(AuthError::Invalid("the token has no \"iss\" claim".into())),
        }
    }

    async fn exchange(&self, token: &str) -> Result<Exchanged, AuthError> {
        let peek = jwks::peek(token).map_err(AuthError::Invalid)?;
        let iss = peek
            .iss
            .ok_or_else(|| AuthError::Invalid("the CI token has no \"iss\" claim".into()))?;
        let Some((trusted, keys)) = self
            .trusted
            .iter()
            .find(|(t, _)| t.issuer.trim_end_matches('/') == iss.trim_end_matches('/'))
        else {
            return Err(AuthError::Invalid(format!(
                "CI tokens from {iss:?} are not trusted here; trusted: {}",
                if self.trusted.is_empty() {
                    "none (add [[auth.trusted_issuers]] to the gateway config)".to_string()
                } else {
                    self.trusted
                        .iter()
                        .map(|(t, _)| format!("{:?}", t.issuer))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        };
        let expect = Expect {
            issuer: iss.clone(),
            audience: trusted.audience.clone(),
            algorithms: self.algorithms(),
            leeway: self.settings.leeway,
        };
        let claims = Self::check_with(keys, token, &expect).await?;
        if let Some(why) = trusted.unmet(&claims) {
            return Err(AuthError::Invalid(format!(
                "the CI token does not meet trusted issuer {:?}'s constraints: {why}",
                trusted.name
            )));
        }
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        let identity = Identity {
            subject: format!("{}:{sub}", trusted.name),
            groups: trusted.groups.clone(),
        };
        // `[auth] session_ttl`, but never longer than the CI token itself.
        let mut exp = chrono::Utc::now().timestamp()
            + i64::try_from(self.settings.session_ttl.as_secs().max(1)).unwrap_or(i64::MAX / 2);
        if let Some(ci_exp) = expires(&claims) {
            exp = exp.min(ci_exp);
        }
        self.mint(&identity, &trusted.name, exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_lists_strings_and_nested_claims() {
        let c = serde_json::json!({
            "groups": ["dba", "dev", 7],
            "scp": "a b,c",
            "realm_access": {"roles": ["ops"]},
            "odd.name": ["dotted"]
        });
        let c = c.as_object().unwrap();
        assert_eq!(groups_at(c, "groups"), ["dba", "dev"]);
        assert_eq!(groups_at(c, "scp"), ["a", "b", "c"]);
        assert_eq!(groups_at(c, "realm_access.roles"), ["ops"]);
        assert_eq!(groups_at(c, "odd.name"), ["dotted"]);
        assert!(groups_at(c, "missing").is_empty());
        assert!(groups_at(c, "realm_access.nope").is_empty());
    }

    #[tokio::test]
    async fn session_tokens_round_trip_and_other_gateways_refuse_them() {
        let settings = crate::policy::auth::AuthSettings {
            issuer: "https://idp.example.com".into(),
            audience: "urn:gw".into(),
            cli_client_id: None,
            groups_claim: "groups".into(),
            algorithms: vec![],
            jwks_uri: None,
            leeway: std::time::Duration::from_secs(30),
            session_ttl: std::time::Duration::from_secs(60),
            expiry_grace: std::time::Duration::from_secs(60),
            trusted_issuers: vec![],
            opaque_tokens: None,
            opaque_cache: std::time::Duration::from_secs(60),
            introspection_client: None,
        };
        let a = OidcAuthenticator::new(
            settings.clone(),
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        );
        let b = OidcAuthenticator::new(settings, &ed25519_dalek::SigningKey::from_bytes(&[2; 32]));
        let who = Identity {
            subject: "github:repo:x".into(),
            groups: vec!["ci".into()],
        };
        let exp = chrono::Utc::now().timestamp() + 60;
        let t = a.mint(&who, "github", exp).unwrap();
        let v = a.verify(Some(t.token.expose())).await.unwrap();
        assert_eq!((v.identity, v.expires_at), (who.clone(), Some(exp)));
        assert!(matches!(
            b.verify(Some(t.token.expose())).await,
            Err(AuthError::Invalid(_))
        ));
        // Expired session tokens are refused like any other.
        let old = a
            .mint(&who, "github", chrono::Utc::now().timestamp() - 120)
            .unwrap();
        let e = a.verify(Some(old.token.expose())).await.unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // No trusted issuers: nothing to exchange.
        assert!(a.exchange(t.token.expose()).await.is_err());
        assert!(!format!("{a:?}").contains(t.token.expose()));
    }
}
