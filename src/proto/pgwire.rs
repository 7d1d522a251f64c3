//! PostgreSQL's frontend/backend protocol (version 3.0), as far as the gateway's relay reads
//! and writes it: framing with bounded sizes, the startup packets, and the messages the
//! relay decides on, masks or answers itself. Pure encode/decode, no I/O.
//!
//! Decoding never trusts a length: a message over its limit, shorter than its fields need
//! or with a string that does not end is a [`WireError`], never a panic or an allocation of
//! the claimed size.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Protocol 3.0, as a startup packet's version field.
pub const PROTOCOL_3_0: u32 = 196_608;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// PostgreSQL's own bound on a startup packet.
pub const MAX_STARTUP: usize = 10_000;
/// Largest message the relay takes whole (a statement, a row, a copy chunk): larger ones
/// end the connection. PostgreSQL's own bound on a row is 1 GB; the gateway keeps a
/// statement or a row in memory to decide on it or mask it, so its bound is lower.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a message of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("a message claims a length of {0}, shorter than its own length field")]
    BadLength(i64),
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("unsupported protocol version {}.{}", .0 >> 16, .0 & 0xffff)]
    Version(u32),
}

fn malformed(what: &'static str, why: impl Into<String>) -> WireError {
    WireError::Malformed {
        what,
        why: why.into(),
    }
}

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// Asks for TLS; the relay answers `N` (the local endpoint is private) and reads on.
    Ssl,
    /// Asks for GSSAPI encryption; answered `N` as well.
    GssEnc,
    /// Cancels the query running on the connection with this key.
    Cancel { pid: i32, key: Vec<u8> },
    /// Opens a session: `user`, `database`, `options`, `application_name`, …
    Params(Vec<(String, String)>),
}

/// Takes one startup packet off the front of `buf`, if a whole one is there.
pub fn take_startup(buf: &mut BytesMut) -> Result<Option<Startup>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as i64;
    if len < 8 {
        return Err(WireError::BadLength(len));
    }
    if len as usize > MAX_STARTUP {
        return Err(WireError::TooLarge {
            len: len as usize,
            max: MAX_STARTUP,
        });
    }
    if buf.len() < len as usize {
        return Ok(None);
    }
    let mut p = buf.split_to(len as usize).freeze();
    p.advance(4);
    let code = p.get_u32();
    match code {
        SSL_REQUEST => Ok(Some(Startup::Ssl)),
        GSSENC_REQUEST => Ok(Some(Startup::GssEnc)),
        CANCEL_REQUEST => {
            if p.len() < 8 {
                return Err(malformed("cancel request", "shorter than a key"));
            }
            let pid = p.get_i32();
            Ok(Some(Startup::Cancel {
                pid,
                key: p.to_vec(),
            }))
        }
        PROTOCOL_3_0 => {
            let mut params = Vec::new();
            let mut r = Reader::new(&p, "startup message");
            loop {
                let k = r.cstr()?;
                if k.is_empty() {
                    break;
                }
                let v = r.cstr()?;
                params.push((k.to_string(), v.to_string()));
            }
            Ok(Some(Startup::Params(params)))
        }
        v if v >> 16 == 3 => {
            // A 3.x minor version this relay does not speak (3.2 has longer cancel keys):
            // PostgreSQL would answer NegotiateProtocolVersion; a refusal is clearer.
            Err(WireError::Version(v))
        }
        v => Err(WireError::Version(v)),
    }
}

/// One message after the startup: its type byte and its body (without the length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tag: u8,
    pub body: Bytes,
}

impl Message {
    pub fn new(tag: u8, body: impl Into<Bytes>) -> Message {
        Message {
            tag,
            body: body.into(),
        }
    }

    /// The message as sent on the wire.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(5 + self.body.len());
        self.encode_into(&mut b);
        b.freeze()
    }

    pub fn encode_into(&self, b: &mut BytesMut) {
        b.put_u8(self.tag);
        b.put_u32(self.body.len() as u32 + 4);
        b.put_slice(&self.body);
    }

    /// The wire size of the message.
    pub fn wire_len(&self) -> usize {
        5 + self.body.len()
    }
}

/// Takes one message off the front of `buf`, if a whole one is there. A message over `max`
/// is an error as soon as its header is in.
pub fn take_message(buf: &mut BytesMut, max: usize) -> Result<Option<Message>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as i64;
    if len < 4 {
        return Err(WireError::BadLength(len));
    }
    let total = len as usize + 1;
    if total > max {
        return Err(WireError::TooLarge { len: total, max });
    }
    if buf.len() < total {
        // Room for the rest, once: the claimed length is within the limit.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut m = buf.split_to(total).freeze();
    let tag = m[0];
    m.advance(5);
    Ok(Some(Message { tag, body: m }))
}

/// Reads the fields of one message body.
pub struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { b, what }
    }

    pub fn cstr(&mut self) -> Result<&'a str, WireError> {
        let end = memchr::memchr(0, self.b)
            .ok_or_else(|| malformed(self.what, "a string without its terminating zero"))?;
        let s = std::str::from_utf8(&self.b[..end])
            .map_err(|_| malformed(self.what, "a string that is not UTF-8"))?;
        self.b = &self.b[end + 1..];
        Ok(s)
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        let v = self
            .b
            .get(..2)
            .ok_or_else(|| malformed(self.what, "truncated"))?;
        let v = i16::from_be_bytes([v[0], v[1]]);
        self.b = &self.b[2..];
        Ok(v)
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        let v = self
            .b
            .get(..4)
            .ok_or_else(|| malformed(self.what, "truncated"))?;
        let v = i32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        self.b = &self.b[4..];
        Ok(v)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        let v = *self
            .b
            .first()
            .ok_or_else(|| malformed(self.what, "truncated"))?;
        self.b = &self.b[1..];
        Ok(v)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let v = self
            .b
            .get(..n)
            .ok_or_else(|| malformed(self.what, "truncated"))?;
        self.b = &self.b[n..];
        Ok(v)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b
    }
}

fn put_cstr(b: &mut BytesMut, s: &str) {
    // A zero inside would end the string early: such text never comes from us.
    b.put_slice(s.replace('\0', "").as_bytes());
    b.put_u8(0);
}

/// `Q`: the text of a simple query.
pub fn query_text(body: &[u8]) -> Result<&str, WireError> {
    Reader::new(body, "query").cstr()
}

/// `P`: a Parse message's statement name, query text and parameter type count.
pub struct Parse<'a> {
    pub name: &'a str,
    pub query: &'a str,
}

pub fn parse_message(body: &[u8]) -> Result<Parse<'_>, WireError> {
    let mut r = Reader::new(body, "parse");
    Ok(Parse {
        name: r.cstr()?,
        query: r.cstr()?,
    })
}

/// `B`: a Bind message's portal, statement and result format codes.
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    pub result_formats: Vec<i16>,
}

pub fn bind_message(body: &[u8]) -> Result<Bind<'_>, WireError> {
    let mut r = Reader::new(body, "bind");
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let nf = r.i16()?;
    for _ in 0..nf.max(0) {
        r.i16()?;
    }
    let np = r.i16()?;
    for _ in 0..np.max(0) {
        let len = r.i32()?;
        if len > 0 {
            r.bytes(len as usize)?;
        }
    }
    let nr = r.i16()?;
    let mut result_formats = Vec::with_capacity(nr.max(0) as usize);
    for _ in 0..nr.max(0) {
        result_formats.push(r.i16()?);
    }
    Ok(Bind {
        portal,
        statement,
        result_formats,
    })
}

/// `E`: the portal an Execute runs.
pub fn execute_portal(body: &[u8]) -> Result<&str, WireError> {
    Reader::new(body, "execute").cstr()
}

/// `D` (frontend Describe) and `C` (frontend Close): `S`tatement or `P`ortal, and its name.
pub fn target_of<'a>(body: &'a [u8], what: &'static str) -> Result<(u8, &'a str), WireError> {
    let mut r = Reader::new(body, what);
    let kind = r.u8()?;
    if kind != b'S' && kind != b'P' {
        return Err(malformed(what, format!("unknown kind {kind:#04x}")));
    }
    Ok((kind, r.cstr()?))
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The table's OID, 0 when the column is not a table's.
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_len: i16,
    pub type_mod: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

pub fn row_description(body: &[u8]) -> Result<Vec<Field>, WireError> {
    let mut r = Reader::new(body, "row description");
    let n = r.i16()?;
    let mut out = Vec::with_capacity(n.clamp(0, 1664) as usize);
    for _ in 0..n.max(0) {
        out.push(Field {
            name: r.cstr()?.to_string(),
            table_oid: r.i32()? as u32,
            column: r.i16()?,
            type_oid: r.i32()? as u32,
            type_len: r.i16()?,
            type_mod: r.i32()?,
            format: r.i16()?,
        });
    }
    Ok(out)
}

pub fn encode_row_description(fields: &[Field]) -> Message {
    let mut b = BytesMut::new();
    b.put_i16(fields.len() as i16);
    for f in fields {
        put_cstr(&mut b, &f.name);
        b.put_u32(f.table_oid);
        b.put_i16(f.column);
        b.put_u32(f.type_oid);
        b.put_i16(f.type_len);
        b.put_i32(f.type_mod);
        b.put_i16(f.format);
    }
    Message::new(b'T', b.freeze())
}

/// The values of a DataRow (`None`: SQL NULL), as slices of its body.
pub fn data_row(body: &[u8]) -> Result<Vec<Option<&[u8]>>, WireError> {
    let mut r = Reader::new(body, "data row");
    let n = r.i16()?;
    let mut out = Vec::with_capacity(n.clamp(0, 1664) as usize);
    for _ in 0..n.max(0) {
        let len = r.i32()?;
        out.push(if len < 0 {
            None
        } else {
            Some(r.bytes(len as usize)?)
        });
    }
    Ok(out)
}

pub fn encode_data_row<'a>(values: impl ExactSizeIterator<Item = Option<&'a [u8]>>) -> Message {
    let mut b = BytesMut::new();
    b.put_i16(values.len() as i16);
    for v in values {
        match v {
            None => b.put_i32(-1),
            Some(v) => {
                b.put_i32(v.len() as i32);
                b.put_slice(v);
            }
        }
    }
    Message::new(b'D', b.freeze())
}

/// `C`: a CommandComplete's tag (`DELETE 3`, `SELECT 10`, `CREATE TABLE`).
pub fn command_tag(body: &[u8]) -> Result<&str, WireError> {
    Reader::new(body, "command complete").cstr()
}

/// The row count a command tag reports, if it reports one.
pub fn tag_rows(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let verb = words.next()?;
    let last = tag.rsplit(' ').next()?;
    matches!(
        verb,
        "INSERT" | "DELETE" | "UPDATE" | "SELECT" | "MOVE" | "FETCH" | "COPY" | "MERGE"
    )
    .then(|| last.parse().ok())
    .flatten()
}

/// `E` / `N`: an ErrorResponse's or NoticeResponse's fields by code (`C` SQLSTATE, `M`
/// message, `S` severity, …).
pub fn error_fields(body: &[u8]) -> Result<Vec<(u8, String)>, WireError> {
    let mut r = Reader::new(body, "error response");
    let mut out = Vec::new();
    loop {
        let code = r.u8()?;
        if code == 0 {
            return Ok(out);
        }
        out.push((code, r.cstr()?.to_string()));
    }
}

/// An ErrorResponse (`E`) or NoticeResponse (`N`) with these fields.
pub fn encode_fields(tag: u8, fields: &[(u8, String)]) -> Message {
    let mut b = BytesMut::new();
    for (code, v) in fields {
        b.put_u8(*code);
        put_cstr(&mut b, v);
    }
    b.put_u8(0);
    Message::new(tag, b.freeze())
}

/// An ErrorResponse the gateway sends itself: severity `ERROR` (the session goes on) or
/// `FATAL` (the connection ends).
pub fn error_response(
    severity: &str,
    sqlstate: &str,
    message: &str,
    hint: Option<&str>,
) -> Message {
    let mut b = BytesMut::new();
    for (code, v) in [(b'S', severity), (b'V', severity), (b'C', sqlstate)] {
        b.put_u8(code);
        put_cstr(&mut b, v);
    }
    b.put_u8(b'M');
    put_cstr(&mut b, message);
    if let Some(h) = hint {
        b.put_u8(b'H');
        put_cstr(&mut b, h);
    }
    b.put_u8(0);
    Message::new(b'E', b.freeze())
}

pub fn ready_for_query(status: u8) -> Message {
    Message::new(b'Z', vec![status])
}

pub fn auth_ok() -> Message {
    Message::new(b'R', 0i32.to_be_bytes().to_vec())
}

/// Asks the client for a cleartext password (the local TCP endpoint's session password).
pub fn auth_cleartext() -> Message {
    Message::new(b'R', 3i32.to_be_bytes().to_vec())
}

pub fn backend_key(pid: i32, key: i32) -> Message {
    let mut b = BytesMut::with_capacity(8);
    b.put_i32(pid);
    b.put_i32(key);
    Message::new(b'K', b.freeze())
}

/// `p`: the password a client sent.
pub fn password(body: &[u8]) -> Result<&str, WireError> {
    Reader::new(body, "password message").cstr()
}

/// The StartupMessage the gateway sends the server.
pub fn startup_message(params: &[(String, String)]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u32(PROTOCOL_3_0);
    for (k, v) in params {
        put_cstr(&mut body, k);
        put_cstr(&mut body, v);
    }
    body.put_u8(0);
    let mut b = BytesMut::with_capacity(4 + body.len());
    b.put_u32(body.len() as u32 + 4);
    b.put_slice(&body);
    b.freeze()
}

pub fn ssl_request() -> Bytes {
    let mut b = BytesMut::with_capacity(8);
    b.put_u32(8);
    b.put_u32(SSL_REQUEST);
    b.freeze()
}

pub fn cancel_request(pid: i32, key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(12 + key.len());
    b.put_u32(12 + key.len() as u32);
    b.put_u32(CANCEL_REQUEST);
    b.put_i32(pid);
    b.put_slice(key);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u32(body.len() as u32 + 4);
        b.put_slice(body);
        b
    }

    #[test]
    fn startup_packets() {
        let mut b = BytesMut::from(&ssl_request()[..]);
        assert_eq!(take_startup(&mut b).unwrap(), Some(Startup::Ssl));
        assert!(b.is_empty());
        let mut b = BytesMut::from(&cancel_request(42, &[0, 0, 0, 7])[..]);
        assert_eq!(
            take_startup(&mut b).unwrap(),
            Some(Startup::Cancel {
                pid: 42,
                key: vec![0, 0, 0, 7]
            })
        );
        let params = vec![
            ("user".to_string(), "app".to_string()),
            ("database".to_string(), "shop".to_string()),
        ];
        let whole = startup_message(&params);
        // Arrives in pieces: nothing until it is whole.
        let mut b = BytesMut::from(&whole[..3]);
        assert_eq!(take_startup(&mut b).unwrap(), None);
        b.extend_from_slice(&whole[3..10]);
        assert_eq!(take_startup(&mut b).unwrap(), None);
        b.extend_from_slice(&whole[10..]);
        assert_eq!(take_startup(&mut b).unwrap(), Some(Startup::Params(params)));
        // Bad ones are errors.
        assert!(take_startup(&mut startup(&[0, 0])).is_err());
        let mut big = BytesMut::new();
        big.put_u32(1 << 20);
        assert!(matches!(
            take_startup(&mut big),
            Err(WireError::TooLarge { .. })
        ));
        let mut v2 = startup(&0x0002_0000u32.to_be_bytes());
        assert!(matches!(take_startup(&mut v2), Err(WireError::Version(_))));
        let mut unterminated = startup(&[0, 3, 0, 0, b'u', b's']);
        assert!(take_startup(&mut unterminated).is_err());
    }

    #[test]
    fn messages_frame_and_bound() {
        let q = Message::new(b'Q', &b"select 1\0"[..]);
        let wire = q.encode();
        let mut b = BytesMut::from(&wire[..4]);
        assert_eq!(take_message(&mut b, MAX_MESSAGE).unwrap(), None);
        b.extend_from_slice(&wire[4..]);
        b.extend_from_slice(&wire);
        assert_eq!(take_message(&mut b, MAX_MESSAGE).unwrap(), Some(q.clone()));
        assert_eq!(take_message(&mut b, MAX_MESSAGE).unwrap(), Some(q));
        assert!(b.is_empty());
        assert_eq!(query_text(b"select 1\0").unwrap(), "select 1", "query text");
        assert!(query_text(b"select 1").is_err());
        let mut huge = BytesMut::from(&b"Q\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            take_message(&mut huge, MAX_MESSAGE),
            Err(WireError::TooLarge { .. })
        ));
        let mut short = BytesMut::from(&b"Q\x00\x00\x00\x02"[..]);
        assert_eq!(
            take_message(&mut short, MAX_MESSAGE),
            Err(WireError::BadLength(2))
        );
    }

    #[test]
    fn rows_roundtrip_and_rewrite() {
        let fields = vec![
            Field {
                name: "email".into(),
                table_oid: 16384,
                column: 2,
                type_oid: 25,
                type_len: -1,
                type_mod: -1,
                format: 0,
            },
            Field {
                name: "id".into(),
                table_oid: 16384,
                column: 1,
                type_oid: 23,
                type_len: 4,
                type_mod: -1,
                format: 1,
            },
        ];
        let m = encode_row_description(&fields);
        assert_eq!(row_description(&m.body).unwrap(), fields);
        let row = encode_data_row([Some(&b"a@b.c"[..]), None].into_iter());
        assert_eq!(
            data_row(&row.body).unwrap(),
            vec![Some(&b"a@b.c"[..]), None]
        );
        assert!(data_row(&row.body[..row.body.len() - 2]).is_err());
        assert!(data_row(b"\x00\x01\x7f\xff\xff\xff").is_err());
    }

    #[test]
    fn errors_tags_and_extended_messages() {
        let e = error_response("ERROR", "42501", "denied by rule no-drop", Some("ask"));
        let f = error_fields(&e.body).unwrap();
        assert_eq!(encode_fields(b'E', &f), e);
        assert!(f.contains(&(b'C', "42501".into())));
        assert!(f.contains(&(b'M', "denied by rule no-drop".into())));
        assert_eq!(tag_rows("DELETE 3"), Some(3));
        assert_eq!(tag_rows("INSERT 0 5"), Some(5));
        assert_eq!(tag_rows("CREATE TABLE"), None);
        assert_eq!(tag_rows("SELECT 0"), Some(0));
        let p = parse_message(b"s1\0select $1\0\x00\x00").unwrap();
        assert_eq!((p.name, p.query), ("s1", "select $1"));
        let mut bind = BytesMut::new();
        bind.put_slice(b"p1\0s1\0");
        bind.put_i16(1);
        bind.put_i16(0);
        bind.put_i16(1);
        bind.put_i32(2);
        bind.put_slice(b"42");
        bind.put_i16(2);
        bind.put_i16(0);
        bind.put_i16(1);
        let b = bind_message(&bind).unwrap();
        assert_eq!(
            (b.portal, b.statement, b.result_formats),
            ("p1", "s1", vec![0, 1])
        );
        assert!(bind_message(&bind[..bind.len() - 1]).is_err());
        assert_eq!(target_of(b"Pp1\0", "describe").unwrap(), (b'P', "p1"));
        assert!(target_of(b"Xp1\0", "describe").is_err());
    }
}
