//! The gateway's own connection to a PostgreSQL target: TCP, TLS verified against the
//! target's CA when it has one, and authentication with the target's password (SCRAM-SHA-256,
//! md5 or cleartext, as the server asks). The password never leaves this module's stack.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::policy::Target;
use crate::proto::pgwire::{self, Message, WireError};

/// How long connecting and authenticating to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why the gateway could not open its connection: said to the client in an ErrorResponse,
/// so it never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the database server {addr}: {why}")]
    Unreachable { addr: String, why: String },
    #[error("TLS to the database server failed: {0}")]
    Tls(String),
    #[error("the database server refused the gateway's login: {0}")]
    Refused(String),
    #[error(
        "the database server asked for an authentication method the gateway does not speak ({0})"
    )]
    Method(String),
    #[error("the database server broke the protocol: {0}")]
    Protocol(String),
}

impl From<WireError> for UpstreamError {
    fn from(e: WireError) -> Self {
        UpstreamError::Protocol(e.to_string())
    }
}

/// An open, authenticated server connection, with the messages the server sent after
/// authentication up to its first ReadyForQuery (ParameterStatus, BackendKeyData, …).
pub struct Upstream {
    pub io: Box<dyn Io>,
    /// Bytes read past the last message taken.
    pub buf: BytesMut,
    pub greeting: Vec<Message>,
    /// The server's own cancel key: (process id, secret).
    pub key: Option<(i32, Vec<u8>)>,
}

/// Where a target's server is: `host:port`.
pub fn address(target: &Target) -> String {
    let a = &target.access;
    format!(
        "{}:{}",
        a.host.as_deref().unwrap_or("localhost"),
        a.port.unwrap_or(5432)
    )
}

async fn tcp(target: &Target) -> Result<TcpStream, UpstreamError> {
    let addr = address(target);
    let s = TcpStream::connect(&addr)
        .await
        .map_err(|e| UpstreamError::Unreachable {
            addr: addr.clone(),
            why: e.to_string(),
        })?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Opens the transport: plain TCP, or TLS when the target has a CA (verify-full: the
/// server's certificate must chain to the CA and name the host).
async fn transport(target: &Target) -> Result<Box<dyn Io>, UpstreamError> {
    let mut s = tcp(target).await?;
    let Some(ca) = &target.access.ca else {
        return Ok(Box::new(s));
    };
    s.write_all(&pgwire::ssl_request())
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer)
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    if answer[0] != b'S' {
        return Err(UpstreamError::Tls(
            "the server does not offer TLS, and the target requires it (it has a CA)".into(),
        ));
    }
    let config = tls_config(ca)?;
    let host = target.access.host.as_deref().unwrap_or("localhost");
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| UpstreamError::Tls(format!("bad server name {host:?}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, s)
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    Ok(Box::new(tls))
}

fn tls_config(ca_pem: &str) -> Result<rustls::ClientConfig, UpstreamError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| UpstreamError::Tls(format!("the target's CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| UpstreamError::Tls(format!("the target's CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(UpstreamError::Tls(
            "the target's CA holds no certificate".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn read_message(io: &mut Box<dyn Io>, buf: &mut BytesMut) -> Result<Message, UpstreamError> {
    loop {
        if let Some(m) = pgwire::take_message(buf, pgwire::MAX_MESSAGE)? {
            return Ok(m);
        }
        let n = io
            .read_buf(buf)
            .await
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        if n == 0 {
            return Err(UpstreamError::Protocol(
                "the server closed the connection during login".into(),
            ));
        }
    }
}

async fn write(io: &mut Box<dyn Io>, m: &Message) -> Result<(), UpstreamError> {
    io.write_all(&m.encode())
        .await
        .map_err(|e| UpstreamError::Protocol(e.to_string()))
}

/// The server's ErrorResponse as one line.
pub fn describe_error(body: &[u8]) -> String {
    match pgwire::error_fields(body) {
        Ok(f) => {
            let get = |c: u8| f.iter().find(|(k, _)| *k == c).map(|(_, v)| v.as_str());
            format!(
                "{} ({})",
                get(b'M').unwrap_or("no message"),
                get(b'C').unwrap_or("no SQLSTATE")
            )
        }
        Err(e) => e.to_string(),
    }
}

/// Connects and logs in as the target's user with `params` (database, options, …), within
/// [`CONNECT_TIMEOUT`].
pub async fn connect(
    target: &Target,
    params: &[(String, String)],
) -> Result<Upstream, UpstreamError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, login(target, params)).await {
        Ok(r) => r,
        Err(_) => Err(UpstreamError::Unreachable {
            addr: address(target),
            why: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

async fn login(target: &Target, params: &[(String, String)]) -> Result<Upstream, UpstreamError> {
    let mut io = transport(target).await?;
    io.write_all(&pgwire::startup_message(params))
        .await
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(8192);
    let user = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let password = || {
        target
            .access
            .password
            .as_ref()
            .map(|p| p.expose().as_bytes().to_vec())
            .ok_or_else(|| {
                UpstreamError::Refused(
                    "the server asks for a password and the target has none".into(),
                )
            })
    };
    let mut scram: Option<ScramSha256> = None;
    loop {
        let m = read_message(&mut io, &mut buf).await?;
        match m.tag {
            b'E' => return Err(UpstreamError::Refused(describe_error(&m.body))),
            b'R' => {}
            other => {
                return Err(UpstreamError::Protocol(format!(
                    "unexpected message {:?} during login",
                    other as char
                )))
            }
        }
        let mut r = pgwire::Reader::new(&m.body, "authentication request");
        match r.i32()? {
            0 => break,
            3 if target.access.ca.is_none() => {
                // Whoever answers on that address would read the password.
                return Err(UpstreamError::Method(
                    "a cleartext password over a connection without TLS: give the target a `ca` so the gateway speaks TLS, or have the server use scram-sha-256".into(),
                ));
            }
            3 => {
                let mut b = BytesMut::new();
                b.put_slice(&password()?);
                b.put_u8(0);
                write(&mut io, &Message::new(b'p', b.freeze())).await?;
            }
            5 => {
                let salt = r.bytes(4)?;
                let hash = postgres_protocol::authentication::md5_hash(
                    user.as_bytes(),
                    &password()?,
                    [salt[0], salt[1], salt[2], salt[3]],
                );
                let mut b = BytesMut::new();
                b.put_slice(hash.as_bytes());
                b.put_u8(0);
                write(&mut io, &Message::new(b'p', b.freeze())).await?;
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = r.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m.to_string());
                }
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(UpstreamError::Method(mechanisms.join(", ")));
                }
                // No channel binding: the TLS session (if any) is verified against the CA.
                let s = ScramSha256::new(&password()?, ChannelBinding::unsupported());
                let mut b = BytesMut::new();
                b.put_slice(SCRAM_SHA_256.as_bytes());
                b.put_u8(0);
                b.put_i32(s.message().len() as i32);
                b.put_slice(s.message());
                write(&mut io, &Message::new(b'p', b.freeze())).await?;
                scram = Some(s);
            }
            11 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| UpstreamError::Protocol("SASL continue before SASL".into()))?;
                s.update(r.rest())
                    .map_err(|e| UpstreamError::Refused(format!("SCRAM: {e}")))?;
                write(&mut io, &Message::new(b'p', s.message().to_vec())).await?;
            }
            12 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| UpstreamError::Protocol("SASL final before SASL".into()))?;
                // Proves the server knew the password too.
                s.finish(r.rest())
                    .map_err(|e| UpstreamError::Refused(format!("SCRAM: {e}")))?;
            }
            other => return Err(UpstreamError::Method(format!("method {other}"))),
        }
    }
    let mut greeting = Vec::new();
    let mut key = None;
    loop {
        let m = read_message(&mut io, &mut buf).await?;
        match m.tag {
            b'E' => return Err(UpstreamError::Refused(describe_error(&m.body))),
            b'K' => {
                let mut r = pgwire::Reader::new(&m.body, "backend key data");
                let pid = r.i32()?;
                key = Some((pid, r.rest().to_vec()));
            }
            b'Z' => {
                greeting.push(m);
                break;
            }
            _ => greeting.push(m),
        }
    }
    Ok(Upstream {
        io,
        buf,
        greeting,
        key,
    })
}

/// Sends a CancelRequest for the server connection with `key`, on a connection of its own.
pub async fn cancel(target: &Target, key: &(i32, Vec<u8>)) -> Result<(), UpstreamError> {
    let mut s = tcp(target).await?;
    s.write_all(&pgwire::cancel_request(key.0, &key.1))
        .await
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    // The server closes the connection once it has read the request.
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut sink)).await;
    Ok(())
}
