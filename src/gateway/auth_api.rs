//! Identity endpoints: `GET /v1/auth` (public: how to log in to this gateway),
//! `GET /v1/auth/whoami` and `POST /v1/auth/exchange` (a trusted CI token for a
//! short-lived gateway session token). See docs/PROTOCOL.md §2 and docs/IDENTITY.md.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::api::{auth_failure, bearer, verify, ApiFailure};
use super::Gateway;
use crate::proto::auth::{AuthInfo, ExchangeRequest, ExchangeResponse, TrustedIssuerInfo, WhoAmI};
use crate::proto::codes;

pub(crate) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/auth", get(info))
        .route("/v1/auth/whoami", get(whoami))
        .route("/v1/auth/exchange", post(exchange))
}

async fn info(State(gw): State<Arc<Gateway>>) -> Json<AuthInfo> {
    Json(match &gw.policy.auth {
        None => AuthInfo {
            mode: "dev".into(),
            ..Default::default()
        },
        Some(a) => AuthInfo {
            mode: "oidc".into(),
            issuer: Some(a.issuer.clone()),
            audience: Some(a.audience.clone()),
            cli_client_id: a.cli_client_id.clone(),
            groups_claim: Some(a.groups_claim.clone()),
            trusted_issuers: a
                .trusted_issuers
                .iter()
                .map(|t| TrustedIssuerInfo {
                    name: t.name.clone(),
                    issuer: t.issuer.clone(),
                    audience: t.audience.clone(),
                })
                .collect(),
        },
    })
}

async fn whoami(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiFailure> {
    let v = verify(&gw, &headers).await?;
    Ok(Json(WhoAmI {
        subject: v.identity.subject,
        groups: v.identity.groups,
        expires_at: v.expires_at,
    }))
}

/// The CI token comes in the body (`{"token": "…"}`) or as the bearer token.
async fn exchange(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ExchangeResponse>, ApiFailure> {
    let token = if body.is_empty() {
        bearer(&headers).map(str::to_string)
    } else {
        let req: ExchangeRequest = serde_json::from_slice(&body).map_err(|e| {
            ApiFailure::new(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                format!("invalid exchange request: {e}"),
            )
            .hint("send {\"token\": \"<the CI's ID token>\"}")
        })?;
        Some(req.token)
    };
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Err(auth_failure(&gw, crate::auth::AuthError::Missing));
    };
    let x = gw
        .auth
        .exchange(token.trim())
        .await
        .map_err(|e| auth_failure(&gw, e))?;
    tracing::info!(
        target: "hoopx::access",
        identity = %x.identity.subject,
        groups = ?x.identity.groups,
        "exchanged a CI token"
    );
    Ok(Json(ExchangeResponse {
        access_token: x.token.expose().to_string(),
        token_type: "Bearer".into(),
        expires_at: x.expires_at,
        subject: x.identity.subject,
        groups: x.identity.groups,
    }))
}
