//! Bodies of the identity endpoints: `GET /v1/auth` (how to log in here) and
//! `POST /v1/auth/exchange` (a CI token for a gateway session token).

use serde::{Deserialize, Serialize};

/// `GET /v1/auth`: public, so `hoopx login` can find the identity provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// `oidc` when the gateway checks OpenID tokens, `dev` for a development token only.
    pub mode: String,
    /// The OpenID provider's issuer URL.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The audience (resource) tokens must be issued for.
    #[serde(default)]
    pub audience: Option<String>,
    /// The public client id `hoopx login` uses at the provider.
    #[serde(default)]
    pub cli_client_id: Option<String>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Issuers of CI tokens the gateway exchanges (`POST /v1/auth/exchange`), each with
    /// the audience its tokens must carry.
    #[serde(default)]
    pub trusted_issuers: Vec<TrustedIssuerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIssuerInfo {
    pub name: String,
    pub issuer: String,
    pub audience: String,
}

/// `POST /v1/auth/exchange` request.
#[derive(Clone, Serialize, Deserialize)]
pub struct ExchangeRequest {
    /// The CI token (a JWT from a trusted issuer).
    pub token: String,
}

impl std::fmt::Debug for ExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExchangeRequest { token: *** }")
    }
}

/// `POST /v1/auth/exchange` answer: a gateway session token.
#[derive(Clone, Serialize, Deserialize)]
pub struct ExchangeResponse {
    pub access_token: String,
    pub token_type: String,
    /// Unix time in seconds.
    pub expires_at: i64,
    pub subject: String,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for ExchangeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeResponse")
            .field("expires_at", &self.expires_at)
            .field("subject", &self.subject)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/auth/whoami`: the identity a token stands for (for `hoopx status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub subject: String,
    pub groups: Vec<String>,
    /// Unix time in seconds; absent for tokens that do not expire.
    #[serde(default)]
    pub expires_at: Option<i64>,
}
