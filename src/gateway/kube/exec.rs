//! `kubectl exec` and `attach` streams: the client's WebSocket (subprotocols
//! `v5.channel.k8s.io` … `v1.channel.k8s.io`, each message's first byte naming its stream)
//! relayed message by message to the API server's. The client's stdin goes through the
//! target's line rules (a refused line never reaches the container), the container's
//! stdout and stderr through the masker, and both are recorded as `exec` events.
//!
//! On a terminal (`-t`) keystrokes pass as they are typed and the Enter that ends a line
//! waits for its check; a refused line is erased (Ctrl-U) instead of entered. Without a
//! terminal whole lines are checked before they are sent.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{status_response, Body, KubeCtx};
use crate::gateway::pg::FromChannel;
use crate::policy::kube::{self as k8s, RequestInfo};
use crate::policy::Verdict;
use crate::proto::frame::Notice;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
/// v5: a message `[CLOSE, stream]` ends that stream.
const CLOSE: u8 = 255;
/// Longest stdin line the gateway holds for its check.
const MAX_LINE: usize = 64 * 1024;

/// Answers the client's upgrade with the API server's 101 and relays the two WebSockets.
pub(super) async fn relay(
    ctx: Arc<KubeCtx>,
    ch: u32,
    tx: mpsc::UnboundedSender<FromChannel>,
    info: &RequestInfo,
    terminal: bool,
    resp: Response<Incoming>,
    client: hyper::upgrade::OnUpgrade,
) -> Response<Body> {
    let protocol = resp
        .headers()
        .get(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !protocol.ends_with(".channel.k8s.io") || protocol.contains("base64") {
        return status_response(
            StatusCode::BAD_GATEWAY,
            "InternalError",
            &format!("hoopx: the API server chose the stream protocol {protocol:?}, which the gateway does not relay"),
        );
    }
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let what = k8s::describe(info);
    tokio::spawn(async move {
        let (server, client) = match tokio::try_join!(hyper::upgrade::on(resp), client) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(
                    target: "hoopx::access",
                    session = %ctx.session_id,
                    channel = ch,
                    error = %e,
                    "kubernetes exec stream failed"
                );
                return;
            }
        };
        let server = WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(server),
            Role::Client,
            None,
        )
        .await;
        let client = WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(client),
            Role::Server,
            None,
        )
        .await;
        pump(ctx, ch, tx, client, server, terminal, what).await;
    });
    out.body(super::full(Bytes::new())).unwrap_or_else(|e| {
        status_response(StatusCode::BAD_GATEWAY, "InternalError", &e.to_string())
    })
}

async fn pump<C, S>(
    ctx: Arc<KubeCtx>,
    ch: u32,
    tx: mpsc::UnboundedSender<FromChannel>,
    client: WebSocketStream<C>,
    server: WebSocketStream<S>,
    terminal: bool,
    what: String,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut cw, mut cr) = client.split();
    let (mut sw, mut sr) = server.split();
    let record = |stream: &str, data: &[u8]| {
        let _ = tx.send(FromChannel::Marker(json!({"exec": {
            "conn": ch,
            "stream": stream,
            "data": String::from_utf8_lossy(data),
        }})));
    };
    let mut gate = Gate {
        line: Vec::new(),
        terminal,
    };
    loop {
        tokio::select! {
            m = cr.next() => {
                let Some(Ok(m)) = m else { break };
                let checker = |line: &[u8]| check(&ctx, line);
                // What goes to the container: checked stdin, then the message itself when
                // it is not stdin (a resize, the end of stdin, the close).
                let (send, refused, then, last) = match m {
                    Message::Binary(b) if b.first() == Some(&STDIN) => {
                        let (s, r) = gate.input(&b[1..], checker);
                        (s, r, None, false)
                    }
                    // v5: the end of stdin; what is left of the last line goes first.
                    Message::Binary(b) if b.as_ref() == [CLOSE, STDIN] => {
                        let (s, r) = gate.flush(checker);
                        (s, r, Some(Message::Binary(b)), false)
                    }
                    Message::Close(c) => {
                        let (s, r) = gate.flush(checker);
                        (s, r, Some(Message::Close(c)), true)
                    }
                    m @ (Message::Binary(_) | Message::Text(_)) => (vec![], vec![], Some(m), false),
                    _ => continue,
                };
                if !send.is_empty() {
                    let mut f = vec![STDIN];
                    f.extend_from_slice(&send);
                    record("stdin", &send);
                    if sw.send(Message::Binary(f.into())).await.is_err() { break; }
                }
                for (line, rule, message) in refused {
                    let shown = String::from_utf8_lossy(&ctx.masker.mask(&line).0).into_owned();
                    let _ = tx.send(FromChannel::Marker(json!({"denied": rule, "line": shown, "conn": ch})));
                    let _ = tx.send(FromChannel::Notice(Notice {
                        kind: "denied".into(),
                        rule: Some(rule.clone()),
                        message: format!("{what}: input line refused: {message}"),
                        review_id: None,
                    }));
                    let mut f = vec![STDERR];
                    f.extend_from_slice(format!("{}hoopx: line refused by rule {rule}: {message}\r\n", if terminal { "\r\n" } else { "" }).as_bytes());
                    let _ = cw.send(Message::Binary(f.into())).await;
                }
                if let Some(m) = then {
                    if sw.send(m).await.is_err() || last { break; }
                }
            }
            m = sr.next() => {
                let Some(Ok(m)) = m else { break };
                match m {
                    Message::Binary(b) if matches!(b.first(), Some(&STDOUT) | Some(&STDERR)) => {
                        let (m, counts) = ctx.masker.mask_counted(&b[1..]);
                        if counts.values().any(|n| *n > 0) {
                            let _ = tx.send(FromChannel::Masks(counts));
                        }
                        record(if b[0] == STDOUT { "stdout" } else { "stderr" }, &m);
                        let mut f = vec![b[0]];
                        f.extend_from_slice(&m);
                        if cw.send(Message::Binary(f.into())).await.is_err() { break; }
                    }
                    Message::Close(c) => {
                        let _ = cw.send(Message::Close(c)).await;
                        break;
                    }
                    m @ (Message::Binary(_) | Message::Text(_)) => {
                        if let Err(_e) = cw.send(m).await { break; }
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = cw.close().await;
    let _ = sw.close().await;
}

/// A line's verdict: `None` to send it, else the rule and the message.
fn check(ctx: &KubeCtx, line: &[u8]) -> Option<(String, String)> {
    match ctx.gw.policy.check(&ctx.target.name, line) {
        Verdict::Allow => None,
        Verdict::Deny(r) => Some((
            r.name.clone(),
            r.message
                .clone()
                .unwrap_or_else(|| format!("the line matches deny rule {:?}", r.name)),
        )),
        // An exec stream cannot wait for a human: a line a review rule holds is refused.
        Verdict::Review(r) => Some((
            r.name.clone(),
            format!(
                "the line needs a review (rule {:?}), which exec input cannot wait for; run it as its own command",
                r.name
            ),
        )),
    }
}

/// Stdin, line by line: what to send now and the lines refused.
struct Gate {
    line: Vec<u8>,
    terminal: bool,
}

type Refused = Vec<(Vec<u8>, String, String)>;

impl Gate {
    fn input(
        &mut self,
        data: &[u8],
        check: impl Fn(&[u8]) -> Option<(String, String)>,
    ) -> (Vec<u8>, Refused) {
        let mut send = Vec::new();
        let mut refused = Vec::new();
        for &b in data {
            let end = if self.terminal {
                b == b'\r' || b == b'\n'
            } else {
                b == b'\n'
            };
            if end {
                let line = std::mem::take(&mut self.line);
                match check(&line) {
                    None => {
                        if !self.terminal {
                            send.extend_from_slice(&line);
                        }
                        send.push(b);
                    }
                    Some((rule, message)) => {
                        if self.terminal {
                            // What was typed is erased instead of entered.
                            send.push(0x15);
                        }
                        refused.push((line, rule, message));
                    }
                }
                continue;
            }
            if self.terminal {
                match b {
                    0x7f | 0x08 => {
                        self.line.pop();
                    }
                    0x15 | 0x03 => self.line.clear(),
                    _ => self.line.push(b),
                }
                send.push(b);
            } else {
                self.line.push(b);
                if self.line.len() > MAX_LINE {
                    // A line too long to hold is checked as it stands and sent.
                    let line = std::mem::take(&mut self.line);
                    match check(&line) {
                        None => send.extend_from_slice(&line),
                        Some((rule, message)) => refused.push((line, rule, message)),
                    }
                }
            }
        }
        (send, refused)
    }
}

impl Gate {
    /// The end of stdin: the last line, without its newline, is checked and sent.
    fn flush(&mut self, check: impl Fn(&[u8]) -> Option<(String, String)>) -> (Vec<u8>, Refused) {
        let line = std::mem::take(&mut self.line);
        if self.terminal || line.is_empty() {
            // On a terminal what was typed is already sent, without its Enter.
            return (vec![], vec![]);
        }
        match check(&line) {
            None => (line, vec![]),
            Some((rule, message)) => (vec![], vec![(line, rule, message)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_rm(l: &[u8]) -> Option<(String, String)> {
        l.windows(2)
            .any(|w| w == b"rm")
            .then(|| ("no-rm".to_string(), "no".to_string()))
    }

    #[test]
    fn pipe_input_goes_by_whole_lines() {
        let mut g = Gate {
            line: vec![],
            terminal: false,
        };
        let (s, r) = g.input(b"echo a\nrm -rf /\nec", deny_rm);
        assert_eq!(s, b"echo a\n");
        assert_eq!(r.len(), 1);
        let (s, r) = g.input(b"ho b\n", deny_rm);
        assert_eq!(s, b"echo b\n");
        assert!(r.is_empty());
        // The last line without a newline goes at the end of stdin.
        let (s, _) = g.input(b"tail", deny_rm);
        assert!(s.is_empty());
        assert_eq!(g.flush(deny_rm).0, b"tail");
        g.input(b"rm x", deny_rm);
        assert_eq!(g.flush(deny_rm).1.len(), 1);
    }

    #[test]
    fn terminal_input_passes_keys_and_holds_the_enter() {
        let mut g = Gate {
            line: vec![],
            terminal: true,
        };
        let (s, r) = g.input(b"rmx\x7f -r\r", deny_rm);
        assert_eq!(s, b"rmx\x7f -r\x15");
        assert_eq!(r[0].0, b"rm -r");
        let (s, r) = g.input(b"ls\r", deny_rm);
        assert_eq!(s, b"ls\r");
        assert!(r.is_empty());
    }
}
