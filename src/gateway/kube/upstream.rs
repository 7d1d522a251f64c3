//! The gateway's own connection to a kubernetes target's API server: TLS verified against
//! the target's CA (or the public roots when it names none), HTTP/1.1, the target's token.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response};

use super::Body;
use crate::auth::Secret;
use crate::policy::kube::json_accept;
use crate::policy::Target;

pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Body>;

/// Where and how the gateway reaches one target's API server.
pub(crate) struct Upstream {
    host: String,
    port: u16,
    /// A path the server URL carries (`https://h/k8s`), put before every request's.
    base: String,
    /// `None`: plain HTTP (a server without a token, on a trusted network).
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<Secret>,
}

impl Upstream {
    pub fn new(target: &Target) -> Result<Upstream, String> {
        let a = &target.access;
        let server = a.server.as_deref().unwrap_or("");
        let uri: hyper::Uri = server
            .parse()
            .map_err(|e| format!("target {:?}: server {server:?}: {e}", target.name))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "target {:?}: server {server:?} is not an http(s) URL",
                    target.name
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("target {:?}: server {server:?} names no host", target.name))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            Some(Arc::new(
                tls_config(a.ca.as_deref(), client_identity(target)?)
                    .map_err(|e| format!("target {:?}: {e}", target.name))?,
            ))
        } else {
            None
        };
        Ok(Upstream {
            host,
            port,
            base: uri.path().trim_end_matches('/').to_string(),
            tls,
            token: a.token.clone(),
        })
    }

    /// The request as the API server gets it: the client's method, path, query, headers
    /// and body, with the target's credential instead of the session's, no hop-by-hop
    /// headers, no compression (the gateway reads the answer) and JSON instead of protobuf.
    pub fn request(
        &self,
        parts: &hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<Request<Body>, String> {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut b = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{pq}", self.base));
        let upgrade = parts.headers.contains_key(hyper::header::UPGRADE);
        for (k, v) in parts.headers.iter() {
            let drop = matches!(
                k.as_str(),
                "authorization"
                    | "host"
                    | "keep-alive"
                    | "proxy-authorization"
                    | "proxy-connection"
                    | "te"
                    | "trailer"
                    | "transfer-encoding"
                    | "accept-encoding"
                    | "content-length"
                    | "accept"
            ) || (k.as_str() == "connection" && !upgrade);
            if !drop {
                b = b.header(k, v);
            }
        }
        let accept = parts
            .headers
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        b = b
            .header(hyper::header::HOST, host)
            .header(hyper::header::ACCEPT, json_accept(accept));
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| "the target's token is not a valid header value".to_string())?;
            v.set_sensitive(true);
            b = b.header(HeaderName::from_static("authorization"), v);
        }
        b.body(super::full(body)).map_err(|e| e.to_string())
    }

    async fn connect(&self) -> Result<Sender, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("bad server name {:?}: {e}", self.host))?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.host))?;
                handshake(tls).await
            }
            None => handshake(tcp).await,
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Sends `req` on the connection in `slot`, opening one when there is none or the last
/// one was closed.
pub(crate) async fn send(
    up: &Upstream,
    slot: &mut Option<Sender>,
    req: Request<Body>,
) -> Result<Response<Incoming>, String> {
    if let Some(s) = slot.as_mut() {
        if s.ready().await.is_err() {
            *slot = None;
        }
    }
    if slot.is_none() {
        *slot = Some(up.connect().await?);
    }
    let Some(s) = slot.as_mut() else {
        return Err("no connection".into());
    };
    s.ready().await.map_err(|e| e.to_string())?;
    s.send_request(req).await.map_err(|e| {
        *slot = None;
        e.to_string()
    })
}

type Identity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// The target's client certificate chain and key, when it has them.
fn client_identity(target: &Target) -> Result<Option<Identity>, String> {
    use rustls::pki_types::pem::PemObject;
    let a = &target.access;
    let (Some(cert), Some(key)) = (&a.client_certificate, &a.client_key) else {
        return Ok(None);
    };
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("target {:?}: client_certificate: {e}", target.name))?;
    if chain.is_empty() {
        return Err(format!(
            "target {:?}: client_certificate holds no certificate",
            target.name
        ));
    }
    // The key's text never goes into an error.
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).map_err(
        |_| {
            format!(
                "target {:?}: client_key is not a PEM private key",
                target.name
            )
        },
    )?;
    Ok(Some((chain, key)))
}

fn tls_config(
    ca_pem: Option<&str>,
    identity: Option<Identity>,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("the target's CA: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the target's CA: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the target's CA holds no certificate".into());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key do not go together: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::targets::Access;
    use crate::policy::TargetKind;

    fn target(server: &str) -> Target {
        Target {
            name: "cluster".into(),
            kind: TargetKind::Kubernetes,
            command: vec![],
            env: Default::default(),
            secret_env: Default::default(),
            groups: vec![],
            access: Access {
                server: Some(server.into()),
                token: Some(Secret::new("cluster-token")),
                ..Default::default()
            },
        }
    }

    #[test]
    fn requests_carry_the_targets_token_and_ask_for_plain_json() {
        let up = Upstream::new(&target("http://10.0.0.1:8080/prefix/")).unwrap();
        let req = Request::builder()
            .method("DELETE")
            .uri("/api/v1/namespaces/shop/pods/web-1?gracePeriodSeconds=0")
            .header("authorization", "Bearer session-token")
            .header("host", "127.0.0.1:4444")
            .header(
                "accept",
                "application/vnd.kubernetes.protobuf, application/json",
            )
            .header("accept-encoding", "gzip")
            .header("user-agent", "kubectl/v1.32")
            .header("connection", "close")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let out = up.request(&parts, Bytes::from_static(b"{}")).unwrap();
        assert_eq!(
            out.uri(),
            "/prefix/api/v1/namespaces/shop/pods/web-1?gracePeriodSeconds=0"
        );
        let h = out.headers();
        assert_eq!(h["authorization"], "Bearer cluster-token");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h.get_all("authorization").iter().count(), 1);
        assert_eq!(h["host"], "10.0.0.1:8080");
        assert_eq!(h["accept"], "application/json");
        assert!(h.get("accept-encoding").is_none());
        assert!(h.get("connection").is_none());
        assert_eq!(h["user-agent"], "kubectl/v1.32");
    }

    #[test]
    fn servers_and_cas_are_checked() {
        assert!(Upstream::new(&target("k8s:6443")).is_err());
        let mut t = target("https://k8s:6443");
        t.access.ca = Some("not a certificate".into());
        let e = Upstream::new(&t).err().unwrap();
        assert!(e.contains("CA"), "{e}");
        t.access.ca = None;
        assert!(Upstream::new(&t).is_ok(), "the public roots without a CA");
    }
}
