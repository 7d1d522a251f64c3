//! Malformed, truncated and oversized frames from one client are a protocol error for that
//! client, while the gateway keeps serving others.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hoopx::proto::frame::{ServerFrame, MAX_FRAME};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::util::{Env, Gateway, Lines, DEV_TOKEN};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(30);

async fn open_raw_session(
    gw: &Gateway,
) -> (
    String,
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let http = reqwest::Client::new();
    let opened: serde_json::Value = http
        .post(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .header("hoopx-protocol", "1")
        .json(&serde_json::json!({"argv": ["cat"], "mode": "pipe"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = opened["session_id"].as_str().unwrap().to_string();
    let url = format!(
        "{}{}",
        gw.url.replace("http://", "ws://"),
        opened["stream"].as_str().unwrap()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {DEV_TOKEN}").parse().unwrap(),
    );
    req.headers_mut()
        .insert("hoopx-protocol", "1".parse().unwrap());
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Binary(b))) => {
            assert_eq!(ServerFrame::decode(&b).unwrap(), ServerFrame::Ready)
        }
        other => panic!("expected ready, got {other:?}"),
    }
    (id, ws)
}

/// Sends `bad` and expects a protocol error frame, then the end of the stream; returns the
/// session id and whether the error frame arrived.
async fn expect_protocol_error(gw: &Gateway, bad: Message, huge: bool) -> (String, bool) {
    let (id, mut ws) = open_raw_session(gw).await;
    if huge {
        // The WebSocket layer itself may cut the connection while we are still sending.
        let _ = ws.send(bad).await;
    } else {
        ws.send(bad).await.unwrap();
    }
    let mut error = None;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the gateway answers")
        {
            Some(Ok(Message::Binary(b))) => {
                if let Ok(ServerFrame::Error(e)) = ServerFrame::decode(&b) {
                    error = Some(e);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    if let Some(e) = &error {
        assert_eq!(e.code, "protocol", "{e:?}");
    }
    (id, error.is_some())
}

fn session_status(gw: &Gateway, id: &str) -> serde_json::Value {
    reqwest::blocking::Client::new()
        .get(format!("{}/v1/sessions/{id}", gw.url))
        .bearer_auth(DEV_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn bad_frames_end_only_the_offending_session() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);

    // A well-behaved session, running the whole time.
    let mut good = gw.hoopx(&env);
    good.args(["exec", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut good = good.spawn().unwrap();
    let mut good_in = good.stdin.take().unwrap();
    let good_out = Lines::collect(good.stdout.take().unwrap());
    writeln!(good_in, "before").unwrap();
    good_out.wait_for("before", T);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let cases: Vec<(&str, Message)> = vec![
        ("empty", Message::Binary(Vec::new().into())),
        ("unknown type", Message::Binary(vec![0x7e, 1, 2].into())),
        ("truncated resize", Message::Binary(vec![0x04, 0x00].into())),
        ("truncated output", Message::Binary(vec![0x03].into())),
        ("bad stream", Message::Binary(vec![0x03, 9, b'x'].into())),
        ("text", Message::Text("hello".into())),
        (
            "over the frame limit",
            Message::Binary(vec![0x01; MAX_FRAME + 1].into()),
        ),
        (
            "far over the frame limit",
            Message::Binary(vec![0x01; MAX_FRAME * 4].into()),
        ),
    ];
    for (name, msg) in cases {
        let huge = name == "far over the frame limit";
        let (id, got_error_frame) = rt.block_on(expect_protocol_error(&gw, msg, huge));
        // Only a message the WebSocket layer cuts off mid-send may miss its error frame.
        assert!(got_error_frame || huge, "{name}: no protocol error frame");
        let s = crate::util::wait_for(&format!("{name}: session recorded as aborted"), T, || {
            let s = session_status(&gw, &id);
            (s["status"] == "aborted").then_some(s)
        });
        assert!(
            s["reason"].as_str().unwrap().starts_with("protocol error"),
            "{name}: {s}"
        );
    }

    // The good session still works end to end.
    writeln!(good_in, "after").unwrap();
    good_out.wait_for("after", T);
    drop(good_in);
    let status = crate::util::wait_timeout(&mut good, T).unwrap();
    assert_eq!(status.code(), Some(0));
    // And new sessions open fine.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo fresh"]);
    let out = crate::util::run(c, "", T);
    assert_eq!(out.stdout, "fresh\n", "{out:?}");
}

#[test]
fn a_stream_attaches_only_once() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (id, _ws) = open_raw_session(&gw).await;
        let url = format!(
            "{}/v1/sessions/{id}/stream",
            gw.url.replace("http://", "ws://")
        );
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {DEV_TOKEN}").parse().unwrap(),
        );
        let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    });
}
