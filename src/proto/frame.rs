//! The binary frames of the session stream: one frame per WebSocket binary message, first
//! byte the frame type, then a type-specific body. Pure encode/decode, no I/O.
//!
//! Decoding never trusts a length: a frame over [`MAX_FRAME`] bytes, a body shorter than its
//! type needs or an unknown type is a [`FrameError`], never an allocation or a panic.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Largest data payload a sender may put in one frame.
pub const MAX_DATA: usize = 256 * 1024;
/// Largest frame a receiver accepts (data plus header and a generous margin for JSON).
pub const MAX_FRAME: usize = MAX_DATA + 1024;

/// Which output stream of the tool a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    fn from_byte(b: u8) -> Result<Stream, FrameError> {
        match b {
            1 => Ok(Stream::Stdout),
            2 => Ok(Stream::Stderr),
            other => Err(FrameError::BadField {
                frame: "output",
                why: format!("stream must be 1 (stdout) or 2 (stderr), got {other}"),
            }),
        }
    }
}

/// Frames sent by `hoopx exec` to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Bytes the caller typed or piped, not yet released to the tool.
    Input(Bytes),
    /// The caller's stdin reached end of file.
    InputEof,
    /// Bytes the tool wrote, not yet masked.
    Output { stream: Stream, data: Bytes },
    /// The caller's terminal changed size.
    Resize { cols: u16, rows: u16 },
    /// The tool ended: its exit code, or the signal that killed it.
    Exit { code: i32, signal: Option<i32> },
    /// A fresh bearer token for the same identity (the old one is about to expire): the
    /// session goes on past the old token's expiry.
    Token(crate::auth::Secret),
    /// A connection to the session's local endpoint was accepted: channel `ch` (chosen by
    /// the client, unique in the session) carries it.
    TunnelOpen { ch: u32, via: Via },
    /// Bytes the local connection sent, in order.
    TunnelData { ch: u32, data: Bytes },
    /// `n` bytes of the gateway's [`ServerFrame::TunnelData`] were written to the local
    /// connection: the gateway may send that many more.
    TunnelAck { ch: u32, n: u32 },
    /// The local connection closed (or the client gave up on it).
    TunnelClose { ch: u32 },
    /// A remote-terminal session: the caller got this signal (1 HUP, 2 INT, 3 QUIT,
    /// 15 TERM); the gateway passes it to the remote command.
    Signal(u8),
}

/// How a tunnelled connection reached the session's local endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The Unix socket in the session's private directory.
    Unix = 1,
    /// The loopback TCP port (any local user can reach it: the gateway asks for the
    /// session's local password there).
    Tcp = 2,
}

/// Frames sent by the gateway to `hoopx exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// The session is open and recorded: the client may start the tool now.
    Ready,
    /// Input released to the tool.
    Deliver(Bytes),
    /// All input was released: close the tool's stdin.
    DeliverEof,
    /// One [`ClientFrame::Input`] or [`ClientFrame::InputEof`] was handled.
    InputAck,
    /// Masked output, in order. Masking can make a chunk longer than [`MAX_DATA`], so the
    /// answer to one [`ClientFrame::Output`] may come in several frames: all but the last
    /// have `more` set. The last one (`more == false`) is the acknowledgement.
    Output {
        stream: Stream,
        data: Bytes,
        more: bool,
    },
    /// Masked output the gateway held back (the start of what might have been a secret
    /// split across chunks) and releases once the tool went quiet or ended. It answers no
    /// [`ClientFrame::Output`]: the chunks it came from were already acknowledged.
    Released { stream: Stream, data: Bytes },
    /// Something the caller must be told, e.g. a denied input line.
    Notice(Notice),
    /// The exit was recorded and the session is closed.
    Closed(Closed),
    /// The gateway ends the session because of an error; the stream closes after it.
    Error(StreamError),
    /// Bytes for a tunnelled local connection, in order.
    TunnelData { ch: u32, data: Bytes },
    /// `n` bytes of the client's [`ClientFrame::TunnelData`] were taken: it may send that
    /// many more.
    TunnelAck { ch: u32, n: u32 },
    /// The gateway closed the channel: the client closes the local connection.
    TunnelClose { ch: u32 },
    /// A remote-terminal session: the remote command ended with this code (128 + n for a
    /// signal). Sent before [`ServerFrame::Closed`].
    Exited { code: i32, signal: Option<i32> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `denied` (a line withheld: by a deny rule, or its review was rejected, expired or
    /// revoked), `approval_pending` (a line waits for a review) or `approved` (it was
    /// released after its review).
    pub kind: String,
    #[serde(default)]
    pub rule: Option<String>,
    pub message: String,
    /// The review, for the `approval_*` and review-related kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub status: String,
    pub events: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamError {
    /// `protocol`, `policy` or `internal`.
    pub code: String,
    pub message: String,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    #[error("truncated {frame} frame: needs {need} bytes, got {got}")]
    Truncated {
        frame: &'static str,
        need: usize,
        got: usize,
    },
    #[error("bad {frame} frame: {why}")]
    BadField { frame: &'static str, why: String },
}

/// Flag on the stream byte of a gateway output frame: more frames answer the same chunk.
const MORE: u8 = 0x80;

mod tag {
    pub const INPUT: u8 = 0x01;
    pub const INPUT_EOF: u8 = 0x02;
    pub const OUTPUT: u8 = 0x03;
    pub const RESIZE: u8 = 0x04;
    pub const EXIT: u8 = 0x05;
    pub const TOKEN: u8 = 0x06;
    pub const TUNNEL_OPEN: u8 = 0x07;
    pub const TUNNEL_DATA: u8 = 0x08;
    pub const TUNNEL_ACK: u8 = 0x09;
    pub const TUNNEL_CLOSE: u8 = 0x0a;
    pub const SIGNAL: u8 = 0x0b;

    pub const READY: u8 = 0x81;
    pub const DELIVER: u8 = 0x82;
    pub const DELIVER_EOF: u8 = 0x83;
    pub const INPUT_ACK: u8 = 0x84;
    pub const S_OUTPUT: u8 = 0x85;
    pub const NOTICE: u8 = 0x86;
    pub const CLOSED: u8 = 0x87;
    pub const ERROR: u8 = 0x88;
    pub const RELEASED: u8 = 0x89;
    pub const S_TUNNEL_DATA: u8 = 0x8a;
    pub const S_TUNNEL_ACK: u8 = 0x8b;
    pub const S_TUNNEL_CLOSE: u8 = 0x8c;
    pub const EXITED: u8 = 0x8d;
}

/// Tunnel frames: the channel id, then `rest`.
fn tunnel(tag: u8, ch: u32, rest: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + rest.len());
    b.put_u8(tag);
    b.put_u32(ch);
    b.put_slice(rest);
    b.freeze()
}

/// The channel id of a tunnel frame's body, and what follows it.
fn channel(frame: &'static str, body: &Bytes) -> Result<(u32, Bytes), FrameError> {
    if body.len() < 4 {
        return Err(FrameError::Truncated {
            frame,
            need: 5,
            got: body.len() + 1,
        });
    }
    Ok((
        u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        body.slice(4..),
    ))
}

/// The acknowledged byte count of a tunnel-ack body (after the channel id).
fn ack_count(rest: &[u8]) -> Result<u32, FrameError> {
    exact("tunnel-ack", rest, 4)?;
    Ok(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]))
}

fn with_tag(tag: u8, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + body.len());
    b.put_u8(tag);
    b.put_slice(body);
    b.freeze()
}

fn json<T: Serialize>(tag: u8, v: &T) -> Bytes {
    // Serializing these plain structs cannot fail.
    with_tag(tag, &serde_json::to_vec(v).unwrap_or_default())
}

fn exact(frame: &'static str, body: &[u8], need: usize) -> Result<(), FrameError> {
    if body.len() != need {
        if body.len() < need {
            return Err(FrameError::Truncated {
                frame,
                need: need + 1,
                got: body.len() + 1,
            });
        }
        return Err(FrameError::BadField {
            frame,
            why: format!("{} trailing bytes", body.len() - need),
        });
    }
    Ok(())
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    frame: &'static str,
    body: &[u8],
) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::BadField {
        frame,
        why: e.to_string(),
    })
}

fn split(raw: &Bytes) -> Result<(u8, Bytes), FrameError> {
    if raw.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: raw.len(),
            max: MAX_FRAME,
        });
    }
    let Some(&tag) = raw.first() else {
        return Err(FrameError::Empty);
    };
    Ok((tag, raw.slice(1..)))
}

impl ClientFrame {
    pub fn encode(&self) -> Bytes {
        match self {
            ClientFrame::Input(d) => with_tag(tag::INPUT, d),
            ClientFrame::InputEof => with_tag(tag::INPUT_EOF, &[]),
            ClientFrame::Output { stream, data } => {
                let mut b = BytesMut::with_capacity(2 + data.len());
                b.put_u8(tag::OUTPUT);
                b.put_u8(*stream as u8);
                b.put_slice(data);
                b.freeze()
            }
            ClientFrame::Resize { cols, rows } => {
                let mut b = BytesMut::with_capacity(5);
                b.put_u8(tag::RESIZE);
                b.put_u16(*cols);
                b.put_u16(*rows);
                b.freeze()
            }
            ClientFrame::Token(t) => with_tag(tag::TOKEN, t.expose().as_bytes()),
            ClientFrame::TunnelOpen { ch, via } => tunnel(tag::TUNNEL_OPEN, *ch, &[*via as u8]),
            ClientFrame::TunnelData { ch, data } => tunnel(tag::TUNNEL_DATA, *ch, data),
            ClientFrame::TunnelAck { ch, n } => tunnel(tag::TUNNEL_ACK, *ch, &n.to_be_bytes()),
            ClientFrame::TunnelClose { ch } => tunnel(tag::TUNNEL_CLOSE, *ch, &[]),
            ClientFrame::Signal(n) => with_tag(tag::SIGNAL, &[*n]),
            ClientFrame::Exit { code, signal } => {
                let mut b = BytesMut::with_capacity(9);
                b.put_u8(tag::EXIT);
                b.put_i32(*code);
                b.put_i32(signal.unwrap_or(0));
                b.freeze()
            }
        }
    }

    pub fn decode(raw: &Bytes) -> Result<ClientFrame, FrameError> {
        let (t, body) = split(raw)?;
        match t {
            tag::INPUT => Ok(ClientFrame::Input(body)),
            tag::INPUT_EOF => {
                exact("input-eof", &body, 0)?;
                Ok(ClientFrame::InputEof)
            }
            tag::OUTPUT => {
                let Some(&s) = body.first() else {
                    return Err(FrameError::Truncated {
                        frame: "output",
                        need: 2,
                        got: 1,
                    });
                };
                Ok(ClientFrame::Output {
                    stream: Stream::from_byte(s)?,
                    data: body.slice(1..),
                })
            }
            tag::RESIZE => {
                exact("resize", &body, 4)?;
                let cols = u16::from_be_bytes([body[0], body[1]]);
                let rows = u16::from_be_bytes([body[2], body[3]]);
                if cols == 0 || rows == 0 {
                    return Err(FrameError::BadField {
                        frame: "resize",
                        why: format!("{cols}x{rows} is not a terminal size"),
                    });
                }
                Ok(ClientFrame::Resize { cols, rows })
            }
            tag::EXIT => {
                exact("exit", &body, 8)?;
                let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let sig = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                Ok(ClientFrame::Exit {
                    code,
                    signal: (sig != 0).then_some(sig),
                })
            }
            tag::TOKEN => {
                let token = std::str::from_utf8(&body)
                    .ok()
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| FrameError::BadField {
                        frame: "token",
                        why: "the token must be non-empty printable ASCII".into(),
                    })?;
                Ok(ClientFrame::Token(crate::auth::Secret::new(token)))
            }
            tag::TUNNEL_OPEN => {
                let (ch, rest) = channel("tunnel-open", &body)?;
                exact("tunnel-open", &rest, 1)?;
                let via = match rest[0] {
                    1 => Via::Unix,
                    2 => Via::Tcp,
                    other => {
                        return Err(FrameError::BadField {
                            frame: "tunnel-open",
                            why: format!("via must be 1 (unix) or 2 (tcp), got {other}"),
                        })
                    }
                };
                Ok(ClientFrame::TunnelOpen { ch, via })
            }
            tag::TUNNEL_DATA => {
                let (ch, data) = channel("tunnel-data", &body)?;
                Ok(ClientFrame::TunnelData { ch, data })
            }
            tag::TUNNEL_ACK => {
                let (ch, rest) = channel("tunnel-ack", &body)?;
                Ok(ClientFrame::TunnelAck {
                    ch,
                    n: ack_count(&rest)?,
                })
            }
            tag::TUNNEL_CLOSE => {
                let (ch, rest) = channel("tunnel-close", &body)?;
                exact("tunnel-close", &rest, 0)?;
                Ok(ClientFrame::TunnelClose { ch })
            }
            tag::SIGNAL => {
                exact("signal", &body, 1)?;
                Ok(ClientFrame::Signal(body[0]))
            }
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

impl ServerFrame {
    pub fn encode(&self) -> Bytes {
        match self {
            ServerFrame::Ready => with_tag(tag::READY, &[]),
            ServerFrame::Deliver(d) => with_tag(tag::DELIVER, d),
            ServerFrame::DeliverEof => with_tag(tag::DELIVER_EOF, &[]),
            ServerFrame::InputAck => with_tag(tag::INPUT_ACK, &[]),
            ServerFrame::Output { stream, data, more } => {
                let mut b = BytesMut::with_capacity(2 + data.len());
                b.put_u8(tag::S_OUTPUT);
                b.put_u8(*stream as u8 | if *more { MORE } else { 0 });
                b.put_slice(data);
                b.freeze()
            }
            ServerFrame::Released { stream, data } => {
                let mut b = BytesMut::with_capacity(2 + data.len());
                b.put_u8(tag::RELEASED);
                b.put_u8(*stream as u8);
                b.put_slice(data);
                b.freeze()
            }
            ServerFrame::Notice(n) => json(tag::NOTICE, n),
            ServerFrame::Closed(c) => json(tag::CLOSED, c),
            ServerFrame::Error(e) => json(tag::ERROR, e),
            ServerFrame::TunnelData { ch, data } => tunnel(tag::S_TUNNEL_DATA, *ch, data),
            ServerFrame::TunnelAck { ch, n } => tunnel(tag::S_TUNNEL_ACK, *ch, &n.to_be_bytes()),
            ServerFrame::TunnelClose { ch } => tunnel(tag::S_TUNNEL_CLOSE, *ch, &[]),
            ServerFrame::Exited { code, signal } => {
                let mut b = BytesMut::with_capacity(9);
                b.put_u8(tag::EXITED);
                b.put_i32(*code);
                b.put_i32(signal.unwrap_or(0));
                b.freeze()
            }
        }
    }

    pub fn decode(raw: &Bytes) -> Result<ServerFrame, FrameError> {
        let (t, body) = split(raw)?;
        match t {
            tag::READY => exact("ready", &body, 0).map(|_| ServerFrame::Ready),
            tag::DELIVER => Ok(ServerFrame::Deliver(body)),
            tag::DELIVER_EOF => exact("deliver-eof", &body, 0).map(|_| ServerFrame::DeliverEof),
            tag::INPUT_ACK => exact("input-ack", &body, 0).map(|_| ServerFrame::InputAck),
            tag::S_OUTPUT => {
                let Some(&s) = body.first() else {
                    return Err(FrameError::Truncated {
                        frame: "output",
                        need: 2,
                        got: 1,
                    });
                };
                Ok(ServerFrame::Output {
                    stream: Stream::from_byte(s & !MORE)?,
                    data: body.slice(1..),
                    more: s & MORE != 0,
                })
            }
            tag::RELEASED => {
                let Some(&s) = body.first() else {
                    return Err(FrameError::Truncated {
                        frame: "released",
                        need: 2,
                        got: 1,
                    });
                };
                Ok(ServerFrame::Released {
                    stream: Stream::from_byte(s)?,
                    data: body.slice(1..),
                })
            }
            tag::NOTICE => parse_json("notice", &body).map(ServerFrame::Notice),
            tag::CLOSED => parse_json("closed", &body).map(ServerFrame::Closed),
            tag::ERROR => parse_json("error", &body).map(ServerFrame::Error),
            tag::S_TUNNEL_DATA => {
                let (ch, data) = channel("tunnel-data", &body)?;
                Ok(ServerFrame::TunnelData { ch, data })
            }
            tag::S_TUNNEL_ACK => {
                let (ch, rest) = channel("tunnel-ack", &body)?;
                Ok(ServerFrame::TunnelAck {
                    ch,
                    n: ack_count(&rest)?,
                })
            }
            tag::S_TUNNEL_CLOSE => {
                let (ch, rest) = channel("tunnel-close", &body)?;
                exact("tunnel-close", &rest, 0)?;
                Ok(ServerFrame::TunnelClose { ch })
            }
            tag::EXITED => {
                exact("exited", &body, 8)?;
                let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let sig = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                Ok(ServerFrame::Exited {
                    code,
                    signal: (sig != 0).then_some(sig),
                })
            }
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_roundtrip(f: ClientFrame) {
        assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f);
    }

    fn server_roundtrip(f: ServerFrame) {
        assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
    }

    #[test]
    fn every_client_frame_roundtrips() {
        client_roundtrip(ClientFrame::Input(Bytes::from_static(b"select 1;\n")));
        client_roundtrip(ClientFrame::Input(Bytes::new()));
        client_roundtrip(ClientFrame::InputEof);
        client_roundtrip(ClientFrame::Token(crate::auth::Secret::new("eyJ.a.b")));
        assert!(ClientFrame::decode(&Bytes::from_static(b"\x06")).is_err());
        assert!(ClientFrame::decode(&Bytes::from_static(b"\x06a b")).is_err());
        assert!(!format!(
            "{:?}",
            ClientFrame::Token(crate::auth::Secret::new("eyJ.a.b"))
        )
        .contains("eyJ"));
        client_roundtrip(ClientFrame::Output {
            stream: Stream::Stderr,
            data: Bytes::from_static(b"\x00\xff err"),
        });
        client_roundtrip(ClientFrame::Resize {
            cols: 132,
            rows: 43,
        });
        client_roundtrip(ClientFrame::Exit {
            code: -1,
            signal: None,
        });
        client_roundtrip(ClientFrame::Exit {
            code: 137,
            signal: Some(9),
        });
        client_roundtrip(ClientFrame::TunnelOpen {
            ch: 7,
            via: Via::Tcp,
        });
        client_roundtrip(ClientFrame::TunnelData {
            ch: u32::MAX,
            data: Bytes::from_static(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
        });
        client_roundtrip(ClientFrame::TunnelAck { ch: 1, n: 65536 });
        client_roundtrip(ClientFrame::TunnelClose { ch: 1 });
        client_roundtrip(ClientFrame::Signal(2));
        assert!(ClientFrame::decode(&Bytes::from_static(b"\x07\x00\x00\x00\x01\x03")).is_err());
        assert!(ClientFrame::decode(&Bytes::from_static(b"\x08\x00\x00")).is_err());
        assert!(ClientFrame::decode(&Bytes::from_static(b"\x09\x00\x00\x00\x01\x00")).is_err());
    }

    #[test]
    fn every_server_frame_roundtrips() {
        server_roundtrip(ServerFrame::Ready);
        server_roundtrip(ServerFrame::Deliver(Bytes::from_static(b"x")));
        server_roundtrip(ServerFrame::DeliverEof);
        server_roundtrip(ServerFrame::InputAck);
        server_roundtrip(ServerFrame::Released {
            stream: Stream::Stderr,
            data: Bytes::from_static(b"tail"),
        });
        server_roundtrip(ServerFrame::Output {
            stream: Stream::Stdout,
            data: Bytes::from_static(b"[REDACTED:email]"),
            more: false,
        });
        server_roundtrip(ServerFrame::Output {
            stream: Stream::Stderr,
            data: Bytes::from_static(b"part"),
            more: true,
        });
        server_roundtrip(ServerFrame::Notice(Notice {
            kind: "denied".into(),
            rule: Some("no-drop".into()),
            message: "m".into(),
            review_id: Some("r".into()),
        }));
        server_roundtrip(ServerFrame::Closed(Closed {
            status: "exited".into(),
            events: 4,
        }));
        server_roundtrip(ServerFrame::Error(StreamError {
            code: "protocol".into(),
            message: "m".into(),
        }));
        server_roundtrip(ServerFrame::TunnelData {
            ch: 3,
            data: Bytes::from_static(b"Z\x00\x00\x00\x05I"),
        });
        server_roundtrip(ServerFrame::TunnelAck { ch: 3, n: 1 });
        server_roundtrip(ServerFrame::TunnelClose { ch: 3 });
        server_roundtrip(ServerFrame::Exited {
            code: 130,
            signal: Some(2),
        });
        assert!(ServerFrame::decode(&Bytes::from_static(b"\x8c\x00\x00\x00\x03x")).is_err());
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let cases: Vec<(&[u8], FrameError)> = vec![
            (b"", FrameError::Empty),
            (b"\x7f", FrameError::UnknownType(0x7f)),
            (b"\x81", FrameError::UnknownType(0x81)),
            (
                b"\x03",
                FrameError::Truncated {
                    frame: "output",
                    need: 2,
                    got: 1,
                },
            ),
            (
                b"\x04\x00\x50",
                FrameError::Truncated {
                    frame: "resize",
                    need: 5,
                    got: 3,
                },
            ),
            (
                b"\x05\x00\x00\x00",
                FrameError::Truncated {
                    frame: "exit",
                    need: 9,
                    got: 4,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                ClientFrame::decode(&Bytes::copy_from_slice(raw)).unwrap_err(),
                want,
                "{raw:?}"
            );
        }
        assert!(matches!(
            ClientFrame::decode(&Bytes::from_static(b"\x03\x07data")),
            Err(FrameError::BadField { .. })
        ));
        assert!(matches!(
            ClientFrame::decode(&Bytes::from_static(b"\x04\x00\x00\x00\x18")),
            Err(FrameError::BadField { .. })
        ));
        assert!(matches!(
            ClientFrame::decode(&Bytes::from_static(b"\x02junk")),
            Err(FrameError::BadField { .. })
        ));
        assert!(matches!(
            ServerFrame::decode(&Bytes::from_static(b"\x86{not json")),
            Err(FrameError::BadField { .. })
        ));
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing() {
        let big = Bytes::from(vec![1u8; MAX_FRAME + 1]);
        assert_eq!(
            ClientFrame::decode(&big).unwrap_err(),
            FrameError::TooLarge {
                len: MAX_FRAME + 1,
                max: MAX_FRAME
            }
        );
        let ok = Bytes::from(vec![1u8; MAX_FRAME]);
        assert!(ClientFrame::decode(&ok).is_ok());
    }

    #[test]
    fn every_truncation_of_every_frame_is_handled() {
        let frames = [
            ClientFrame::Resize { cols: 80, rows: 24 }.encode(),
            ClientFrame::Exit {
                code: 3,
                signal: Some(15),
            }
            .encode(),
            ClientFrame::Output {
                stream: Stream::Stdout,
                data: Bytes::from_static(b"abc"),
            }
            .encode(),
        ];
        for f in frames {
            for cut in 0..f.len() {
                // Must return (Ok or Err), never panic.
                let _ = ClientFrame::decode(&f.slice(..cut));
            }
        }
    }
}
