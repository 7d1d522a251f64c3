//! `hoopx login --browser`: the authorization code flow with PKCE (RFC 7636) and a
//! loopback redirect (RFC 8252): hoopx listens on `127.0.0.1` on a port the kernel picks,
//! sends the browser to the provider, and takes the code when the browser comes back.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::login::{LoginError, Provider, TokenSet};
use super::Secret;
use crate::client::session::say;

/// How long hoopx waits for the browser to come back.
const WAIT: Duration = Duration::from_secs(300);

fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub async fn login(p: &Provider, client_id: &str, open: bool) -> Result<TokenSet, LoginError> {
    let Some(auth_endpoint) = &p.disc.authorization_endpoint else {
        return Err(LoginError::Setup {
            message: format!("{} offers no authorization endpoint", p.disc.issuer),
            hint: Some("use the device flow: `hoopx login` without --browser".into()),
        });
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| LoginError::Setup {
            message: format!("cannot listen on 127.0.0.1 for the browser's return: {e}"),
            hint: Some("use the device flow: `hoopx login` without --browser".into()),
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| LoginError::Setup {
            message: e.to_string(),
            hint: None,
        })?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let verifier = Secret::new(random_b64(32));
    let state = random_b64(16);
    let mut url = reqwest::Url::parse(auth_endpoint).map_err(|e| LoginError::Setup {
        message: format!("the provider's authorization endpoint is not a URL: {e}"),
        hint: None,
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid offline_access")
        .append_pair("prompt", "consent")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(verifier.expose()))
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &p.audience);
    say("to log in, open this address in a browser on this machine:");
    eprintln!("\n    {url}\n");
    if open {
        open_browser(url.as_str());
    }
    say("waiting for the browser to come back…");
    let code = tokio::time::timeout(WAIT, accept_code(&listener, &state))
        .await
        .map_err(|_| LoginError::Refused {
            message: format!(
                "the browser did not come back within {} minutes",
                WAIT.as_secs() / 60
            ),
            hint: Some(
                "run `hoopx login --browser` again, or `hoopx login` for the device flow".into(),
            ),
        })??;
    p.exchange_code(client_id, &code, &redirect, &verifier)
        .await
}

/// Starts the desktop's browser on `url`, if there is one; the address is printed anyway.
fn open_browser(url: &str) {
    for opener in ["xdg-open", "open"] {
        let spawned = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return;
        }
    }
}

/// Serves the loopback redirect (hyper, HTTP/1.1) until a request with our `state` brings a
/// code (or an error from the provider). The outcome is taken once its page was sent, so the
/// browser always sees how the login ended.
async fn accept_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<Secret, LoginError> {
    type Outcome = Arc<Mutex<Option<Result<Secret, LoginError>>>>;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Result<Secret, LoginError>>(1);
    loop {
        tokio::select! {
            Some(outcome) = done_rx.recv() => return outcome,
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                let state = state.to_string();
                let done_tx = done_tx.clone();
                tokio::spawn(async move {
                    let outcome: Outcome = Arc::default();
                    let seen = outcome.clone();
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (status, text, result) = callback(req.uri(), &state);
                        if let Some(r) = result {
                            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                        }
                        std::future::ready(Ok::<_, std::convert::Infallible>(page(status, text)))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
                    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                    let taken = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(r) = taken {
                        let _ = done_tx.send(r).await;
                    }
                });
            }
        }
    }
}

/// What one request to the loopback redirect gets: status, page text, and the login's
/// outcome when the request ends it.
fn callback(
    uri: &hyper::Uri,
    state: &str,
) -> (StatusCode, &'static str, Option<Result<Secret, LoginError>>) {
    if uri.path() != "/callback" {
        return (StatusCode::NOT_FOUND, "Not found.", None);
    }
    let q: HashMap<String, String> = reqwest::Url::parse(&format!("http://127.0.0.1{uri}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    if q.get("state").map(String::as_str) != Some(state) {
        return (
            StatusCode::BAD_REQUEST,
            "This login was not started here (state mismatch).",
            None,
        );
    }
    if let Some(err) = q.get("error") {
        let refused = LoginError::Refused {
            message: format!(
                "the identity provider ended the login: {err}{}",
                q.get("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            hint: Some("run `hoopx login --browser` again".into()),
        };
        return (
            StatusCode::OK,
            "The login was not completed. You can close this tab.",
            Some(Err(refused)),
        );
    }
    match q.get("code") {
        Some(code) => (
            StatusCode::OK,
            "hoopx is logged in. You can close this tab.",
            Some(Ok(Secret::new(code.clone()))),
        ),
        None => (StatusCode::BAD_REQUEST, "No code in this request.", None),
    }
}

fn page(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = format!("<!doctype html><title>hoopx login</title><p>{text}</p>\n");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            super::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
