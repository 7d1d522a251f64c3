//! The session recording: one append-only log of events per session, always masked.
//! (Hash chain, signatures, export and replay build on this event type.)

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Input released to the tool (masked).
    Input,
    /// Output of the tool on stdout or the terminal (masked).
    Output,
    /// Output of the tool on stderr, pipe mode only (masked).
    Stderr,
    /// Terminal size, as `COLSxROWS`.
    Resize,
    /// Something the gateway decided, as JSON: denials, mask counts, disconnects.
    Marker,
    /// The tool's exit, as JSON.
    Exit,
}

impl EventKind {
    /// The one-letter code stored and served; `i`, `o`, `r` and `m` follow asciicast.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Input => "i",
            EventKind::Output => "o",
            EventKind::Stderr => "e",
            EventKind::Resize => "r",
            EventKind::Marker => "m",
            EventKind::Exit => "x",
        }
    }

    pub fn from_code(code: &str) -> Option<EventKind> {
        Some(match code {
            "i" => EventKind::Input,
            "o" => EventKind::Output,
            "e" => EventKind::Stderr,
            "r" => EventKind::Resize,
            "m" => EventKind::Marker,
            "x" => EventKind::Exit,
            _ => return None,
        })
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the session's log, from 0, without gaps.
    pub seq: i64,
    /// Microseconds since the session started.
    pub t_us: i64,
    pub kind: EventKind,
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_roundtrip() {
        for k in [
            EventKind::Input,
            EventKind::Output,
            EventKind::Stderr,
            EventKind::Resize,
            EventKind::Marker,
            EventKind::Exit,
        ] {
            assert_eq!(EventKind::from_code(k.code()), Some(k));
        }
        assert_eq!(EventKind::from_code("z"), None);
    }
}
