//! A remote-terminal session on the client side (ssh targets): no tool runs here. The
//! caller's terminal (raw, with its resizes) or pipes feed `Input` frames, and the gateway's
//! masked output comes back unasked, from the gateway's own SSH channel; its `Exited` frame
//! carries the remote command's status. Everything the gateway checks, masks and records
//! stays on its side of the stream, as for a local tool.
//!
//! Back-pressure: input as in `session` (a permit per chunk, released by `InputAck`, which
//! the gateway holds while the remote has not taken its input). Output: the stream is read
//! only while the writer has room ([`session::OUTPUT_WINDOW`] chunks), so a slow terminal
//! holds the gateway, and the gateway the remote command, through TCP and SSH windows.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use super::session::{
    self, next_token, notice_event, say, send_to, stream_error, stream_frame, FromCaller, Out,
    Outcome, RunOptions, SessionError, Signals, Ws, GATEWAY_SILENCE, INPUT_WINDOW, KEEPALIVE,
    OUTPUT_WINDOW,
};
use crate::proto::frame::{ClientFrame, ServerFrame};
use crate::pty;

/// Runs a remote-terminal session until the gateway reports the remote command's exit and
/// closes the session. `no_stdin`: the caller's stdin is not read (`ssh -n`).
pub async fn run(
    ws: Ws,
    pty_mode: bool,
    no_stdin: bool,
    mut sig: Signals,
    opts: &RunOptions,
    mut tokens: Option<mpsc::UnboundedReceiver<crate::auth::Secret>>,
) -> Result<Outcome, SessionError> {
    let (mut ws, mut ws_rx) = {
        let (sink, mut stream) = ws.split();
        // Bounded: while the writer is behind, the socket is not read.
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(m) = stream.next().await {
                let failed = m.is_err();
                if tx.send(m).await.is_err() || failed {
                    break;
                }
            }
        });
        (sink, rx)
    };
    let out_window = Arc::new(Semaphore::new(OUTPUT_WINDOW));
    let in_window = Arc::new(Semaphore::new(INPUT_WINDOW));
    let (caller_tx, mut caller_rx) = mpsc::channel::<FromCaller>(INPUT_WINDOW + 2);
    let (to_out, to_out_rx) = mpsc::unbounded_channel();
    let (stdout_closed_tx, mut stdout_closed) = mpsc::unbounded_channel();
    let output_writer =
        session::spawn_output_writer(to_out_rx, stdout_closed_tx, opts.json, opts.capture);
    let mut caller_eof = false;
    if no_stdin {
        // The remote command reads end of file at once.
        caller_eof = true;
    } else {
        session::spawn_stdin_reader(in_window.clone(), caller_tx);
    }
    let mut in_permits: VecDeque<OwnedSemaphorePermit> = VecDeque::new();
    let mut permit: Option<OwnedSemaphorePermit> = None;
    let mut exit: Option<i32> = None;
    let mut denied = 0usize;
    let mut signals = 0u32;
    let mut waiting_review: Option<(tokio::time::Instant, String)> = None;
    let mut last_heard = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;

    let result: Result<(), SessionError> = loop {
        // One signal is passed to the remote command (sshd may refuse to deliver it: it
        // signals no root login, for one); a second gives up on the session.
        let mut forward = |n: u8| -> Option<Message> {
            signals += 1;
            (signals == 1).then(|| {
                say(&format!(
                    "signal {n} passed to the remote command; send it again to end the session"
                ));
                Message::Binary(ClientFrame::Signal(n).encode())
            })
        };
        let fwd = tokio::select! {
            p = out_window.clone().acquire_owned(), if permit.is_none() => {
                permit = p.ok();
                continue;
            }
            msg = ws_rx.recv(), if permit.is_some() => {
                last_heard = tokio::time::Instant::now();
                let frame = match stream_frame(msg) {
                    Ok(Some(f)) => f,
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                };
                match frame {
                    ServerFrame::Output { stream, data, .. } | ServerFrame::Released { stream, data } => {
                        let p = permit.take().into_iter().collect();
                        let _ = to_out.send(Out::Data(stream, data, p));
                    }
                    ServerFrame::InputAck => match in_permits.pop_front() {
                        Some(p) => drop(p),
                        None => break Err(SessionError::Protocol("input acknowledged that was never sent".into())),
                    },
                    ServerFrame::Notice(n) => {
                        if n.kind == "denied" { denied += 1; }
                        match (n.kind.as_str(), &n.review_id) {
                            ("approval_pending", Some(id)) => waiting_review = Some((tokio::time::Instant::now(), id.clone())),
                            (_, Some(id)) if waiting_review.as_ref().is_some_and(|w| &w.1 == id) => waiting_review = None,
                            _ => {}
                        }
                        if opts.json || opts.capture.is_some() {
                            let _ = to_out.send(Out::Event(notice_event(&n)));
                        } else {
                            let _ = to_out.send(Out::Say(crate::cli::printable(&n.message)));
                        }
                    }
                    ServerFrame::Exited { code, .. } => exit = Some(code),
                    ServerFrame::Closed(_) if exit.is_some() => break Ok(()),
                    ServerFrame::Closed(_) => break Err(SessionError::Protocol("the gateway closed the session before the remote command ended".into())),
                    ServerFrame::Error(e) => break Err(stream_error(e)),
                    other => break Err(SessionError::Protocol(format!("unexpected frame in a remote-terminal session: {other:?}"))),
                }
                None
            }
            m = caller_rx.recv(), if !caller_eof => match m {
                Some(FromCaller::Chunk(data, p)) => {
                    in_permits.push_back(p);
                    Some(Message::Binary(ClientFrame::Input(data).encode()))
                }
                Some(FromCaller::Eof) | None => {
                    caller_eof = true;
                    // Under a terminal, end of input is ^D typed by the caller.
                    let frame = if pty_mode { ClientFrame::Input(Bytes::from_static(b"\x04")) } else { ClientFrame::InputEof };
                    match in_window.clone().acquire_owned().await {
                        Ok(p) => in_permits.push_back(p),
                        Err(_) => break Err(SessionError::Spawn("input window closed".into())),
                    }
                    Some(Message::Binary(frame.encode()))
                }
            },
            t = next_token(&mut tokens) => match t {
                Some(t) => Some(Message::Binary(ClientFrame::Token(t).encode())),
                None => { tokens = None; None }
            },
            _ = async {
                    match (&waiting_review, opts.approval_timeout) {
                        (Some((since, _)), Some(limit)) => tokio::time::sleep_until(*since + limit).await,
                        _ => std::future::pending().await,
                    }
                } => {
                    let id = waiting_review.take().map(|w| w.1).unwrap_or_default();
                    break Err(SessionError::ApprovalTimeout(id));
                }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > GATEWAY_SILENCE {
                    break Err(SessionError::GatewayLost(format!("no answer from the gateway for {} s", GATEWAY_SILENCE.as_secs())));
                }
                Some(Message::Ping(Bytes::new()))
            }
            _ = sig.int.recv() => match forward(2) { Some(m) => Some(m), None => { exit = Some(130); break Ok(()) } },
            _ = sig.term.recv() => match forward(15) { Some(m) => Some(m), None => { exit = Some(143); break Ok(()) } },
            _ = sig.hup.recv() => match forward(1) { Some(m) => Some(m), None => { exit = Some(129); break Ok(()) } },
            _ = sig.quit.recv() => match forward(3) { Some(m) => Some(m), None => { exit = Some(131); break Ok(()) } },
            Some(()) = stdout_closed.recv() => {
                // Nobody reads our stdout any more: the remote command gets SIGPIPE's kin.
                forward(15)
            }
            _ = sig.winch.recv(), if pty_mode => {
                let fd = std::io::stdout();
                pty::window_size(std::os::fd::AsFd::as_fd(&fd))
                    .map(|(cols, rows)| Message::Binary(ClientFrame::Resize { cols, rows }.encode()))
            }
        };
        if let Some(m) = fwd {
            if let Err(e) = send_to(&mut ws, m).await {
                break Err(e);
            }
        }
    };
    drop(to_out);
    let joined = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::task::spawn_blocking(move || output_writer.join()),
    )
    .await;
    match result {
        Ok(()) => {
            let captured = joined
                .ok()
                .and_then(Result::ok)
                .and_then(Result::ok)
                .flatten();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                futures_util::SinkExt::close(&mut ws),
            )
            .await;
            Ok(Outcome {
                code: exit.unwrap_or(255),
                denied,
                captured,
            })
        }
        Err(e) => Err(e),
    }
}
