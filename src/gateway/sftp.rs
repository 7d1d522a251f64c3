//! `scp` and `sftp` on an ssh target: each connection of the tool to the session's local
//! endpoint (the hoopx bridge that `scp -D`/`sftp -D` run as their "SFTP server") is relayed
//! to the `sftp` subsystem of the gateway's own SSH connection to the target. Every request
//! that names a path is checked against the session's rules first (a refused one is
//! answered `SSH_FX_PERMISSION_DENIED` and never reaches the host), and each file's
//! transfer is recorded when it closes: direction, path, size, SHA-256
//! (`policy::sftp`).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use super::pg::{FromChannel, ToChannel};
use super::Gateway;
use crate::policy::sftp::{self as wire, Framer, Transfers};
use crate::policy::{Target, Verdict};
use crate::proto::frame::{Notice, Via};

/// Largest piece of data in one frame towards the client.
const CHUNK: usize = 64 * 1024;

/// What every SFTP channel of one session shares.
pub(crate) struct SftpCtx {
    pub gw: Arc<Gateway>,
    pub target: Target,
    pub user: String,
}

pub(crate) async fn serve(
    ctx: Arc<SftpCtx>,
    ch: u32,
    via: Via,
    mut rx: mpsc::UnboundedReceiver<ToChannel>,
    tx: mpsc::UnboundedSender<FromChannel>,
    window: Arc<Semaphore>,
) {
    let fail = |why: String| {
        let _ = tx.send(FromChannel::Marker(json!({ "sftp_failed": why })));
        let _ = tx.send(FromChannel::Closed(ch));
    };
    if via != Via::Unix {
        // The loopback port is open to every local user: file transfers take the private
        // socket only.
        return fail(
            "an SFTP connection came over TCP; only the session's socket serves it".into(),
        );
    }
    let handle = match super::ssh::connect(&ctx.target, &ctx.user, None).await {
        Ok(h) => h,
        Err(e) => return fail(e.to_string()),
    };
    let channel = match handle.channel_open_session().await {
        Ok(c) => c,
        Err(e) => return fail(format!("the host opened no session channel: {e}")),
    };
    if let Err(e) = channel.request_subsystem(true, "sftp").await {
        return fail(format!("the host did not start its SFTP server: {e}"));
    }
    let (mut read, write) = channel.split();
    loop {
        match read.wait().await {
            Some(russh::ChannelMsg::Success) => break,
            Some(russh::ChannelMsg::Failure | russh::ChannelMsg::Close) | None => {
                return fail(format!(
                    "the host {} has no SFTP server (the sftp subsystem was refused)",
                    ctx.target.name
                ))
            }
            Some(_) => {}
        }
    }
    let mut from_client = Framer::default();
    let mut from_server = Framer::default();
    let mut transfers = Transfers::default();
    let send_client = |data: Vec<u8>, window: &Arc<Semaphore>| {
        let tx = tx.clone();
        let window = window.clone();
        async move {
            for part in data.chunks(CHUNK) {
                let Ok(p) = window.acquire_many(part.len() as u32).await else {
                    return false;
                };
                p.forget();
                if tx
                    .send(FromChannel::Data(ch, Bytes::copy_from_slice(part)))
                    .is_err()
                {
                    return false;
                }
            }
            true
        }
    };
    loop {
        tokio::select! {
            m = rx.recv() => {
                let data = match m {
                    Some(ToChannel::Data(d)) => d,
                    Some(ToChannel::Close) | None => break,
                };
                let _ = tx.send(FromChannel::Ack(ch, data.len() as u32));
                let packets = match from_client.push(&data) {
                    Ok(p) => p,
                    Err(e) => return fail(e),
                };
                for p in packets {
                    let Some(req) = wire::request(&p) else {
                        return fail("a malformed SFTP request".into());
                    };
                    if let Some(line) = &req.line {
                        let refused = match ctx.gw.policy.check(&ctx.target.name, line.as_bytes()) {
                            Verdict::Allow => None,
                            Verdict::Deny(r) => Some(r.name.clone()),
                            // A transfer cannot wait for a reviewer: withheld.
                            Verdict::Review(r) => Some(format!("{}:not-reviewable", r.name)),
                        };
                        if let Some(rule) = refused {
                            let _ = tx.send(FromChannel::Marker(json!({"denied": rule, "line": line})));
                            let _ = tx.send(FromChannel::Notice(Notice {
                                kind: "denied".into(),
                                rule: Some(rule.clone()),
                                message: format!("file operation refused by deny rule {rule:?}: {line}"),
                                review_id: None,
                            }));
                            let answer = wire::status(req.id, wire::FX_PERMISSION_DENIED, &format!("refused by hoopx rule {rule}"));
                            if !send_client(answer, &window).await {
                                return;
                            }
                            continue;
                        }
                    }
                    if let Some(t) = transfers.client(&p) {
                        let _ = tx.send(FromChannel::Marker(json!({"transfer": {
                            "direction": t.direction,
                            "path": t.path,
                            "size": t.size,
                            "sha256": t.sha256,
                        }})));
                    }
                    if write.data_bytes(Bytes::from(p)).await.is_err() {
                        return fail("the host's SFTP server went away".into());
                    }
                }
            }
            msg = read.wait() => {
                let data = match msg {
                    Some(russh::ChannelMsg::Data { data }) => data,
                    Some(russh::ChannelMsg::Close | russh::ChannelMsg::Eof) | None => break,
                    Some(_) => continue,
                };
                let packets = match from_server.push(&data) {
                    Ok(p) => p,
                    Err(e) => return fail(e),
                };
                for p in packets {
                    transfers.server(&p);
                    if !send_client(p, &window).await {
                        return;
                    }
                }
            }
        }
    }
    let _ = write.eof().await;
    let _ = tx.send(FromChannel::Closed(ch));
}
