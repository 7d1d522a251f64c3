//! `hoopx login --browser`: the authorization code flow with PKCE (RFC 7636) and a
//! loopback redirect (RFC 8252): hoopx listens on `127.0.0.1` on a port the kernel picks,
//! sends the browser to the provider, and takes the code when the browser comes back.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Serves the loopback redirect until a request with our `state` brings a code (or an
/// error from the provider).
async fn accept_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<Secret, LoginError> {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        while n < buf.len() {
            match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf[n..])).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(k)) => {
                    n += k;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("");
        let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = respond(&mut sock, 404, "Not found.").await;
            continue;
        }
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        if q.get("state").map(String::as_str) != Some(state) {
            let _ = respond(
                &mut sock,
                400,
                "This login was not started here (state mismatch).",
            )
            .await;
            continue;
        }
        if let Some(err) = q.get("error") {
            let _ = respond(
                &mut sock,
                200,
                "The login was not completed. You can close this tab.",
            )
            .await;
            return Err(LoginError::Refused {
                message: format!(
                    "the identity provider ended the login: {err}{}",
                    q.get("error_description")
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                hint: Some("run `hoopx login --browser` again".into()),
            });
        }
        if let Some(code) = q.get("code") {
            let _ = respond(
                &mut sock,
                200,
                "hoopx is logged in. You can close this tab.",
            )
            .await;
            return Ok(Secret::new(code.clone()));
        }
        let _ = respond(&mut sock, 400, "No code in this request.").await;
    }
}

async fn respond(sock: &mut tokio::net::TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let body = format!("<!doctype html><title>hoopx login</title><p>{text}</p>\n");
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    sock.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    sock.shutdown().await
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
