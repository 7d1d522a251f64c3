//! The TLS of a kubernetes session's local endpoint: kubectl sends a bearer token only
//! over TLS, so each session gets its own self-signed certificate for 127.0.0.1, made
//! at the gateway when the session opens. The client gets the certificate (not secret)
//! for the kubeconfig; the key never leaves the gateway, which terminates TLS per
//! tunnelled connection.

use std::sync::Arc;

/// A session's certificate and the acceptor holding its key.
#[derive(Clone)]
pub(crate) struct LocalTls {
    pub cert_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for LocalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTls")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl LocalTls {
    pub fn generate() -> Result<LocalTls, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                .map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hoopx session endpoint");
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(300)).into();
        params.not_after = (now + std::time::Duration::from_secs(400 * 24 * 3600)).into();
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .map_err(|e| e.to_string())?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LocalTls {
            cert_pem: cert.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        })
    }
}
