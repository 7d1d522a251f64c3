//! The gateway's accept loop: HTTP/1.1 (WebSocket upgrades included) on plain TCP or TLS,
//! with the connection limits of `[limits]`: a cap on open connections, a header-read
//! timeout and an idle timeout. The TLS certificate is reloaded on SIGHUP and when its
//! files change, without dropping connections.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls;

use crate::policy::Limits;

/// A certificate and key from PEM files, swapped in place when they change.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<rustls::ServerConfig>, Stamp)>,
}

/// The files' modification times and sizes when last loaded.
type Stamp = Vec<Option<(SystemTime, u64)>>;

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `cert` (a PEM chain, leaf first) and `key` (PEM); the error says which file
    /// is wrong and why.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, String> {
        let stamp = stamp(cert, key);
        let config = server_config(cert, key)?;
        Ok(Arc::new(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new((Arc::new(config), stamp)),
        }))
    }

    pub(crate) fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Loads the files again; on failure the previous certificate stays in use.
    pub fn reload(&self, why: &str) {
        let stamp = stamp(&self.cert, &self.key);
        match server_config(&self.cert, &self.key) {
            Ok(c) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(c), stamp);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded ({why})");
            }
            Err(e) => {
                // Remember the stamp so a half-written pair is retried on its next change.
                self.current.write().unwrap_or_else(|e| e.into_inner()).1 = stamp;
                tracing::error!(error = %e, "TLS certificate not reloaded ({why}); the previous one stays in use");
            }
        }
    }

    /// Reloads on SIGHUP and when either file changes (checked every second).
    pub fn watch(self: &Arc<Self>) {
        let tls = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hup = signal(SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let hup_fired = async {
                    match &mut hup {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = hup_fired => tls.reload("SIGHUP"),
                    _ = tick.tick() => {
                        let now = stamp(&tls.cert, &tls.key);
                        let known = tls.current.read().unwrap_or_else(|e| e.into_inner()).1.clone();
                        if now != known {
                            tls.reload("the files changed");
                        }
                    }
                }
            }
        });
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key]
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {}: no CERTIFICATE block in the file",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    // HTTP/1.1 only: session streams are WebSocket upgrades.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish
/// their requests (upgraded session streams go on: the gateway ends them itself).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: Limits,
    metrics: Arc<dyn Fn(&str) + Send + Sync>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    // Each connection task holds a sender: when all are dropped, every request is done.
    let (inflight, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics("connections");
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
            tokio::spawn(refuse(tcp, tls.is_none()));
            continue;
        };
        let app = app.clone();
        let tls = tls.as_ref().map(|t| t.config());
        let mut closing = closing_rx.clone();
        let limits = limits.clone();
        let inflight = inflight.clone();
        tokio::spawn(async move {
            let _inflight = inflight;
            // The slot goes with the socket: an upgraded session stream keeps it until it
            // closes, after this task is done.
            let io = Watched::new(tcp, limits.idle_timeout, slot);
            let service = hyper_util::service::TowerToHyperService::new(app);
            let run = async {
                match tls {
                    None => serve_conn(io, service, &limits, &mut closing).await,
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io))
                            .await
                        {
                            Ok(Ok(tls)) => serve_conn(tls, service, &limits, &mut closing).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "no TLS handshake in time"),
                        }
                    }
                }
            };
            run.await;
        });
    }
    closing.send_replace(true);
    // Requests under way finish (a review decision, an export page); upgraded session
    // streams are not waited for here: the gateway ends them itself.
    drop(inflight);
    if tokio::time::timeout(FINISH_REQUESTS, all_done.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still under way after {} s are cut off",
            FINISH_REQUESTS.as_secs()
        );
    }
    Ok(())
}

/// How long a stopping gateway lets requests under way finish (review waits answer at once
/// when it stops).
const FINISH_REQUESTS: Duration = Duration::from_secs(10);

async fn serve_conn<I, S>(io: I, service: S, limits: &Limits, closing: &mut watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = closing.wait_for(|c| *c) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// Past the connection cap: a plain-HTTP client is told why; a TLS one is closed.
async fn refuse(mut tcp: TcpStream, plain: bool) {
    if plain {
        let body = "{\"error\":{\"code\":\"unavailable\",\"message\":\"the gateway has too many open connections\",\"hint\":\"try again shortly; the gateway's [limits] max_connections sets the cap\"}}";
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ =
            tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
    }
    let _ = tcp.shutdown().await;
}

/// A TCP stream that fails its reads once nothing arrived for the idle timeout, holding its
/// slot under `max_connections` for as long as it is open.
struct Watched {
    tcp: TcpStream,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Watched {
    fn new(tcp: TcpStream, idle: Duration, slot: tokio::sync::OwnedSemaphorePermit) -> Watched {
        Watched {
            tcp,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            _slot: slot,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.tcp).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
