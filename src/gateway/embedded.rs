//! The embedded default: with no gateway configured, `hoopx` runs the same gateway code
//! in-process, on a loopback port only this process knows the token for, against a SQLite
//! store in the XDG data directory, with the default policy.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{store, Gateway};
use crate::auth::{generate_token, LocalToken, Secret};
use crate::policy::Policy;

/// A running embedded gateway; it stops when dropped.
pub struct Embedded {
    pub url: String,
    pub token: Secret,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "cannot find a data directory for the embedded gateway's store: set HOME or XDG_DATA_HOME"
    )]
    NoDataDir,
    #[error("cannot open the embedded gateway's store: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot start the embedded gateway on a loopback port: {0}")]
    Bind(std::io::Error),
    #[error("{0}")]
    Key(#[from] super::signing::KeyError),
}

/// The embedded store's URL.
pub fn store_url() -> Result<String, EmbeddedError> {
    let dir = crate::dirs::data_dir().ok_or(EmbeddedError::NoDataDir)?;
    Ok(format!("sqlite://{}", dir.join("embedded.db").display()))
}

pub async fn start() -> Result<Embedded, EmbeddedError> {
    let store = store::open_local(&store_url()?).await?;
    let dir = crate::dirs::data_dir().ok_or(EmbeddedError::NoDataDir)?;
    let signer = super::signing::load_or_create(&dir.join("embedded-signing.pem"))?;
    let token = generate_token();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string());
    let auth = Arc::new(LocalToken::new(token.clone(), user));
    let gw = Gateway::new(Policy::embedded_default(), auth, store, signer, false);
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(EmbeddedError::Bind)?;
    let addr = listener.local_addr().map_err(EmbeddedError::Bind)?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(super::serve(gw, listener, async move {
        let _ = stopped.await;
    }));
    Ok(Embedded {
        url: format!("http://{addr}"),
        token,
        stop: Some(stop),
    })
}
