//! The SFTP (version 3) byte stream between a local `sftp`/`scp` and the target's SFTP
//! server, read enough to know what is transferred: packets split out of the stream, the
//! paths of file operations, and each file's transfer (direction, path, size, SHA-256) from
//! its OPEN to its CLOSE. Pure: the gateway's relay (`gateway::sftp`) feeds it bytes and
//! acts on what it says.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Largest SFTP packet taken (OpenSSH's sftp-server allows 256 KiB).
pub const MAX_PACKET: usize = 256 * 1024 + 1024;

pub const FXP_INIT: u8 = 1;
pub const FXP_OPEN: u8 = 3;
pub const FXP_CLOSE: u8 = 4;
pub const FXP_READ: u8 = 5;
pub const FXP_WRITE: u8 = 6;
pub const FXP_SETSTAT: u8 = 9;
pub const FXP_REMOVE: u8 = 13;
pub const FXP_MKDIR: u8 = 14;
pub const FXP_RMDIR: u8 = 15;
pub const FXP_RENAME: u8 = 18;
pub const FXP_SYMLINK: u8 = 20;
pub const FXP_STATUS: u8 = 101;
pub const FXP_HANDLE: u8 = 102;
pub const FXP_DATA: u8 = 103;
/// `SSH_FX_PERMISSION_DENIED`.
pub const FX_PERMISSION_DENIED: u32 = 3;

const PF_WRITE: u32 = 2;

/// Splits a byte stream into SFTP packets (length prefix included).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Whole packets in `data` (with what came before); `Err` for a packet over
    /// [`MAX_PACKET`].
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 4 {
                return Ok(out);
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if len > MAX_PACKET {
                return Err(format!("an SFTP packet of {len} bytes is over the limit"));
            }
            if self.buf.len() < 4 + len {
                return Ok(out);
            }
            out.push(self.buf.drain(..4 + len).collect());
        }
    }
}

/// Reads SSH wire fields out of a packet body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (h, t) = self.0.split_at_checked(4)?;
        self.0 = t;
        Some(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let hi = self.u32()? as u64;
        Some(hi << 32 | self.u32()? as u64)
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let (h, t) = self.0.split_at_checked(n)?;
        self.0 = t;
        Some(h)
    }
}

/// One client request, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u32,
    pub kind: u8,
    /// What the rules see: `sftp-get PATH`, `sftp-put PATH`, `sftp-remove PATH`,
    /// `sftp-rename OLD NEW`, `sftp-mkdir PATH`, `sftp-rmdir PATH`, `sftp-setstat PATH`,
    /// `sftp-symlink PATH TARGET`; `None` for requests that name no path to check.
    pub line: Option<String>,
}

/// Reads a client packet (length prefix included).
pub fn request(packet: &[u8]) -> Option<Request> {
    let kind = *packet.get(4)?;
    let mut r = Reader(packet.get(5..)?);
    if kind == FXP_INIT {
        return Some(Request {
            id: 0,
            kind,
            line: None,
        });
    }
    let id = r.u32()?;
    let path =
        |r: &mut Reader| String::from_utf8_lossy(r.string().unwrap_or_default()).into_owned();
    let line = match kind {
        FXP_OPEN => {
            let p = path(&mut r);
            let flags = r.u32()?;
            Some(if flags & PF_WRITE != 0 {
                format!("sftp-put {p}")
            } else {
                format!("sftp-get {p}")
            })
        }
        FXP_REMOVE => Some(format!("sftp-remove {}", path(&mut r))),
        FXP_MKDIR => Some(format!("sftp-mkdir {}", path(&mut r))),
        FXP_RMDIR => Some(format!("sftp-rmdir {}", path(&mut r))),
        FXP_SETSTAT => Some(format!("sftp-setstat {}", path(&mut r))),
        FXP_RENAME => {
            let a = path(&mut r);
            Some(format!("sftp-rename {a} {}", path(&mut r)))
        }
        FXP_SYMLINK => {
            let a = path(&mut r);
            Some(format!("sftp-symlink {a} {}", path(&mut r)))
        }
        _ => None,
    };
    Some(Request { id, kind, line })
}

/// `SSH_FXP_STATUS` for request `id`: the answer to a refused request.
pub fn status(id: u32, code: u32, message: &str) -> Vec<u8> {
    let mut body = vec![FXP_STATUS];
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message.as_bytes());
    body.extend_from_slice(&0u32.to_be_bytes());
    let mut p = (body.len() as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// A finished transfer: one file opened, read or written, and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// `upload` (written on the target) or `download`.
    pub direction: &'static str,
    pub path: String,
    pub size: u64,
    /// Of the bytes in the order they crossed: the file's hash for sequential transfers
    /// (`scp`, `sftp get`/`put`).
    pub sha256: String,
}

struct Open {
    upload: bool,
    path: String,
    size: u64,
    hash: Sha256,
}

/// Follows OPEN → HANDLE → READ/DATA or WRITE → CLOSE across both directions.
#[derive(Default)]
pub struct Transfers {
    /// OPEN requests waiting for their handle: id → (upload, path).
    opening: HashMap<u32, (bool, String)>,
    /// READ requests waiting for their data: id → handle.
    reading: HashMap<u32, Vec<u8>>,
    open: HashMap<Vec<u8>, Open>,
}

impl Transfers {
    /// A client packet the server will get.
    pub fn client(&mut self, packet: &[u8]) -> Option<Transfer> {
        let kind = *packet.get(4)?;
        let mut r = Reader(packet.get(5..)?);
        let id = r.u32()?;
        match kind {
            FXP_OPEN => {
                let path = String::from_utf8_lossy(r.string()?).into_owned();
                let flags = r.u32()?;
                self.opening.insert(id, (flags & PF_WRITE != 0, path));
            }
            FXP_READ => {
                let h = r.string()?.to_vec();
                self.reading.insert(id, h);
            }
            FXP_WRITE => {
                let h = r.string()?;
                let _offset = r.u64()?;
                let data = r.string()?;
                if let Some(o) = self.open.get_mut(h) {
                    o.size += data.len() as u64;
                    o.hash.update(data);
                }
            }
            FXP_CLOSE => {
                let h = r.string()?;
                let o = self.open.remove(h)?;
                return Some(Transfer {
                    direction: if o.upload { "upload" } else { "download" },
                    path: o.path,
                    size: o.size,
                    sha256: hex::encode(o.hash.finalize()),
                });
            }
            _ => {}
        }
        None
    }

    /// A server packet the client will get.
    pub fn server(&mut self, packet: &[u8]) {
        let (Some(&kind), Some(body)) = (packet.get(4), packet.get(5..)) else {
            return;
        };
        let mut r = Reader(body);
        let Some(id) = r.u32() else { return };
        match kind {
            FXP_HANDLE => {
                if let (Some((upload, path)), Some(h)) = (self.opening.remove(&id), r.string()) {
                    self.open.insert(
                        h.to_vec(),
                        Open {
                            upload,
                            path,
                            size: 0,
                            hash: Sha256::new(),
                        },
                    );
                }
            }
            FXP_DATA => {
                if let (Some(h), Some(data)) = (self.reading.remove(&id), r.string()) {
                    if let Some(o) = self.open.get_mut(&h) {
                        o.size += data.len() as u64;
                        o.hash.update(data);
                    }
                }
            }
            FXP_STATUS => {
                self.opening.remove(&id);
                self.reading.remove(&id);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
        let mut body = vec![kind];
        for f in fields {
            body.extend_from_slice(f);
        }
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(&body);
        p
    }

    fn s(v: &[u8]) -> Vec<u8> {
        let mut o = (v.len() as u32).to_be_bytes().to_vec();
        o.extend_from_slice(v);
        o
    }

    #[test]
    fn packets_split_across_chunks_are_framed_and_oversized_ones_refused() {
        let p = packet(FXP_REMOVE, &[&7u32.to_be_bytes(), &s(b"/tmp/x")]);
        let mut f = Framer::default();
        assert!(f.push(&p[..3]).unwrap().is_empty());
        let got = f.push(&p[3..]).unwrap();
        assert_eq!(got, std::slice::from_ref(&p));
        let r = request(&got[0]).unwrap();
        assert_eq!((r.id, r.line.as_deref()), (7, Some("sftp-remove /tmp/x")));
        assert!(Framer::default().push(&[0xff, 0xff, 0xff, 0xff]).is_err());
        // Truncated fields never panic.
        assert!(request(&packet(FXP_OPEN, &[&[0, 0]])).is_none());
    }

    #[test]
    fn an_upload_and_a_download_are_followed_to_their_close() {
        let mut t = Transfers::default();
        let open = packet(
            FXP_OPEN,
            &[
                &1u32.to_be_bytes(),
                &s(b"/srv/up.txt"),
                &(PF_WRITE | 8).to_be_bytes(),
                &0u32.to_be_bytes(),
            ],
        );
        assert_eq!(
            request(&open).unwrap().line.as_deref(),
            Some("sftp-put /srv/up.txt")
        );
        t.client(&open);
        t.server(&packet(FXP_HANDLE, &[&1u32.to_be_bytes(), &s(b"h1")]));
        for (off, chunk) in [(0u64, &b"hello "[..]), (6, b"world")] {
            t.client(&packet(
                FXP_WRITE,
                &[
                    &2u32.to_be_bytes(),
                    &s(b"h1"),
                    &off.to_be_bytes(),
                    &s(chunk),
                ],
            ));
        }
        let done = t
            .client(&packet(FXP_CLOSE, &[&3u32.to_be_bytes(), &s(b"h1")]))
            .unwrap();
        assert_eq!(
            (done.direction, done.path.as_str(), done.size),
            ("upload", "/srv/up.txt", 11)
        );
        assert_eq!(done.sha256, hex::encode(Sha256::digest(b"hello world")));

        let open = packet(
            FXP_OPEN,
            &[
                &4u32.to_be_bytes(),
                &s(b"/etc/motd"),
                &1u32.to_be_bytes(),
                &0u32.to_be_bytes(),
            ],
        );
        assert_eq!(
            request(&open).unwrap().line.as_deref(),
            Some("sftp-get /etc/motd")
        );
        t.client(&open);
        t.server(&packet(FXP_HANDLE, &[&4u32.to_be_bytes(), &s(b"h2")]));
        t.client(&packet(
            FXP_READ,
            &[
                &5u32.to_be_bytes(),
                &s(b"h2"),
                &0u64.to_be_bytes(),
                &32768u32.to_be_bytes(),
            ],
        ));
        t.server(&packet(FXP_DATA, &[&5u32.to_be_bytes(), &s(b"motd")]));
        let done = t
            .client(&packet(FXP_CLOSE, &[&6u32.to_be_bytes(), &s(b"h2")]))
            .unwrap();
        assert_eq!((done.direction, done.size), ("download", 4));
        let st = status(9, FX_PERMISSION_DENIED, "no");
        assert_eq!(st.len(), 4 + 1 + 4 + 4 + 4 + 2 + 4);
    }
}
