//! What the client trusts for an `https://` gateway: the system's roots, the bundled
//! Mozilla roots, and the CA certificates in `HOOPX_CA` (or `ca = "…"` in the client
//! config). One rustls config serves the HTTP API (reqwest) and the session stream
//! (tokio-tungstenite).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;

use super::ClientError;

/// `ca = "…"` from the client config, set once the config is read.
static CONFIG_CA: OnceLock<PathBuf> = OnceLock::new();
static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();

/// Records the client config's `ca` (HOOPX_CA wins over it).
pub fn set_config_ca(path: PathBuf) {
    let _ = CONFIG_CA.set(path);
}

/// The CA file in force and where it was named.
fn ca_file() -> Option<(PathBuf, &'static str)> {
    if let Some(p) = std::env::var_os(crate::env_vars::HOOPX_CA).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), "HOOPX_CA"));
    }
    CONFIG_CA
        .get()
        .map(|p| (p.clone(), "`ca` in the client config"))
}

/// The rustls client config, built once per process.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    CONFIG.get_or_init(build).clone().map_err(ClientError::Tls)
}

fn build() -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates leave the bundled roots and HOOPX_CA.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some((path, source)) = ca_file() {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| format!("cannot read the CA file {} ({source}): {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "the CA file {} ({source}) holds no PEM CERTIFICATE block",
                path.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("the CA file {} ({source}): {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The hint for a failure to reach the gateway: a certificate the client does not trust
/// names HOOPX_CA.
pub(crate) fn untrusted_hint(why: &str) -> Option<String> {
    let w = why.to_ascii_lowercase();
    (w.contains("certificate") || w.contains("unknownissuer")).then(|| {
        match ca_file() {
            Some((p, source)) => format!(
                "the gateway's certificate is not signed by a CA hoopx trusts (system roots, and {} from {source}): check that file holds the CA that issued it",
                p.display()
            ),
            None => "the gateway's certificate is not signed by a CA hoopx trusts: if it comes from a private CA, set HOOPX_CA=/path/to/ca.pem (or `ca = \"/path/to/ca.pem\"` in the client config)".to_string(),
        }
    })
}
