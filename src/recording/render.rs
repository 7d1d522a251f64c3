//! What the screen showed: the plain text of a session (`hoopx replay --format text`) and a
//! [`Timeline`] of keyframes that repaints the terminal as it was at any moment.
//!
//! PTY sessions go through asciinema's terminal emulator (`avt`), which hands over lines as
//! they scroll off. It runs at ~30 MB/s, so long runs of plain lines (printable text, SGR
//! colours at most, each line shorter than the terminal, ending in CRLF) take a fast path:
//! once the emulator has shown that such lines simply scroll (a probe of `rows + 1` lines
//! fed normally, then the screen checked), the middle of the run is copied out directly and
//! only its last `rows - 1` lines are fed. The result is the same text and, for runs without
//! SGR, the same emulator state. Pipe sessions are text already: escape sequences are
//! stripped and CR / backspace overwrite, with chunks free of them copied through.

use std::borrow::Cow;
use std::io::{self, Write};

use unicode_width::UnicodeWidthChar;

use super::format::parse_size;
use super::{EventKind, Recording};
use crate::proto::Mode;

// ---------------------------------------------------------------------------------------
// Bytes to text

/// Decodes a byte stream split into chunks as UTF-8; invalid bytes become U+FFFD, a
/// character split between chunks is kept until its end arrives.
#[derive(Debug, Clone, Default)]
struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8], out: &mut String) {
        let joined;
        let mut rest: &[u8] = if self.carry.is_empty() {
            bytes
        } else {
            let mut j = std::mem::take(&mut self.carry);
            j.extend_from_slice(bytes);
            joined = j;
            &joined
        };
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&rest[..valid]).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &rest[valid + n..];
                        }
                        None => {
                            self.carry = rest[valid..].to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self, out: &mut String) {
        if !std::mem::take(&mut self.carry).is_empty() {
            out.push('\u{FFFD}');
        }
    }
}

/// Output as a terminal shows it: pipe sessions wrote `\n` to a terminal that adds the CR.
fn screen_bytes(mode: Mode, data: &[u8]) -> Cow<'_, [u8]> {
    if mode == Mode::Pty || !data.contains(&b'\n') {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}

/// The bytes a player writes to the terminal for an output event.
pub fn display_bytes(mode: Mode, data: &[u8]) -> Cow<'_, [u8]> {
    screen_bytes(mode, data)
}

fn is_output(kind: EventKind) -> bool {
    matches!(kind, EventKind::Output | EventKind::Stderr)
}

/// The terminal size a session starts with: its first well-formed resize, else 80x24.
pub fn initial_size(rec: &Recording) -> (u16, u16) {
    rec.events
        .iter()
        .filter(|e| e.kind == EventKind::Resize)
        .find_map(|e| parse_size(&e.data))
        .unwrap_or((80, 24))
}

// ---------------------------------------------------------------------------------------
// The emulator with the plain-run fast path

/// A line leaving the screen: from the emulator, or a plain line the fast path skipped.
enum Scrolled<'a> {
    Line(&'a avt::Line),
    Plain(&'a str),
}

/// Screen sizes are capped so a hostile resize cannot allocate gigabytes.
const MAX_COLS: usize = 1000;
const MAX_ROWS: usize = 500;

struct Term {
    vt: avt::Vt,
    cols: usize,
    rows: usize,
}

impl Term {
    fn new(cols: usize, rows: usize) -> Term {
        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
        Term {
            vt: avt::Vt::builder()
                .size(cols, rows)
                .scrollback_limit(0)
                .build(),
            cols,
            rows,
        }
    }

    fn resize(&mut self, cols: usize, rows: usize, sink: &mut dyn FnMut(Scrolled<'_>)) {
        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
        if (cols, rows) == (self.cols, self.rows) {
            return;
        }
        self.cols = cols;
        self.rows = rows;
        for l in self.vt.resize(cols, rows).scrollback {
            sink(Scrolled::Line(&l));
        }
    }

    /// Feeds text to the emulator; returns the last line that scrolled off.
    fn feed_vt(&mut self, text: &str, sink: &mut dyn FnMut(Scrolled<'_>)) -> Option<avt::Line> {
        let mut last = None;
        if text.is_empty() {
            return None;
        }
        for l in self.vt.feed_str(text).scrollback {
            sink(Scrolled::Line(&l));
            last = Some(l);
        }
        last
    }

    /// Feeds text, taking the fast path through long runs of plain lines. With `exact`,
    /// the emulator's state (not only its text) stays what feeding everything gives: plain
    /// lines may then colour only when they end with a reset, and a skipped middle may
    /// colour only when the probe did too, so the colour after the middle is the default
    /// both ways (it shows in the blank row each scroll adds).
    fn feed(&mut self, text: &str, exact: bool, sink: &mut dyn FnMut(Scrolled<'_>)) {
        if self.rows < 2 || text.len() < 4096 {
            self.feed_vt(text, sink);
            return;
        }
        let min_run = 2 * self.rows + 16;
        let bytes = text.as_bytes();
        let mut fed = 0; // text[..fed] is in the emulator
        let mut run: Vec<(usize, usize, bool)> = Vec::new();
        let mut line_start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &bytes[line_start..]) {
            let end = line_start + nl + 1;
            let line = &text[line_start..end];
            let plain = plain_width(line)
                .filter(|&(w, sgr)| w < self.cols && !(exact && sgr == Sgr::Other));
            if let Some((_, sgr)) = plain {
                let coloured = sgr != Sgr::None;
                let probe = self.rows + 1;
                if exact && coloured && run.len() >= probe && !run[..probe].iter().any(|l| l.2) {
                    // It would colour a skipped middle after a probe without colour: end
                    // the run here (lines too few for the fast path are fed as they are).
                    if run.len() >= min_run {
                        fed = self.fast_run(text, fed, &run, exact, sink);
                    }
                    run.clear();
                }
                run.push((line_start, end, coloured));
            } else {
                if run.len() >= min_run {
                    fed = self.fast_run(text, fed, &run, exact, sink);
                }
                run.clear();
            }
            line_start = end;
        }
        if run.len() >= min_run {
            fed = self.fast_run(text, fed, &run, exact, sink);
        }
        self.feed_vt(&text[fed..], sink);
    }

    /// Feeds `text[fed..]` up to the end of `run`, skipping the run's middle when the probe
    /// shows plain lines just scroll. Returns the new `fed`.
    fn fast_run(
        &mut self,
        text: &str,
        fed: usize,
        run: &[(usize, usize, bool)],
        exact: bool,
        sink: &mut dyn FnMut(Scrolled<'_>),
    ) -> usize {
        let rows = self.rows;
        let probe = rows + 1;
        let run_end = run[run.len() - 1].1;
        self.feed_vt(&text[fed..run[0].0], sink);
        let last = self.feed_vt(&text[run[0].0..run[probe - 1].1], sink);
        let line_of = |i: usize| &text[run[i].0..run[i].1];
        let tail = run.len() - (rows - 1);
        let colours = |r: &[(usize, usize, bool)]| r.iter().any(|l| l.2);
        let ok = (!exact || !colours(&run[probe..tail]) || colours(&run[..probe])) && {
            let cursor = self.vt.cursor();
            let view: Vec<&avt::Line> = self.vt.view().collect();
            cursor.col == 0
                && cursor.row == rows - 1
                && view.len() == rows
                && view[rows - 1].text().trim_end().is_empty()
                && last.is_some_and(|l| {
                    l.text().trim_end() == visible(line_of(probe - rows)).trim_end()
                })
                && (0..rows - 1).all(|r| {
                    view[r].text().trim_end() == visible(line_of(probe - rows + 1 + r)).trim_end()
                })
                // A designated line-drawing charset would have changed these letters.
                && (probe - rows..probe)
                    .any(|i| line_of(i).bytes().any(|b| (b'_'..=b'~').contains(&b)))
        };
        if !ok {
            self.feed_vt(&text[run[probe].0..run_end], sink);
            return run_end;
        }
        #[cfg(test)]
        FAST_LINES.with(|c| c.set(c.get() + tail - probe));
        // The screen scrolls off first (fed the tail), then the middle, which never shows.
        self.feed_vt(&text[run[tail].0..run_end], sink);
        for &(s, e, _) in &run[probe..tail] {
            sink(Scrolled::Plain(&text[s..e]));
        }
        run_end
    }
}

#[cfg(test)]
thread_local! {
    /// Lines the fast path skipped, so tests can tell it ran.
    static FAST_LINES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The SGR sequences of a plain line.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sgr {
    None,
    /// The last one is a reset (`ESC [ m` or `ESC [ 0 m`): the line ends in default colours.
    EndsReset,
    Other,
}

/// The width of a plain line (text and SGR sequences, CRLF at the end) and its SGRs, or
/// `None` when the line is anything else.
fn plain_width(line: &str) -> Option<(usize, Sgr)> {
    let body = line.strip_suffix("\r\n")?;
    let b = body.as_bytes();
    let mut width = 0;
    let mut sgr = Sgr::None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if (0x20..0x7f).contains(&c) {
            width += 1;
            i += 1;
        } else if c == 0x1b {
            if b.get(i + 1) != Some(&b'[') {
                return None;
            }
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
                j += 1;
            }
            if b.get(j) != Some(&b'm') {
                return None;
            }
            let params = &body[i + 2..j];
            sgr = if params.is_empty() || params == "0" {
                Sgr::EndsReset
            } else {
                Sgr::Other
            };
            i = j + 1;
        } else if c >= 0x80 {
            let ch = body[i..].chars().next()?;
            if ch < '\u{a0}' || ch.width() == Some(2) {
                return None;
            }
            width += 1;
            i += ch.len_utf8();
        } else {
            return None;
        }
    }
    Some((width, sgr))
}

/// A plain line's text as shown: without SGR sequences and the line ending.
fn visible(line: &str) -> Cow<'_, str> {
    let body = line.trim_end_matches(['\r', '\n']);
    if !body.contains('\x1b') {
        return Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------------------
// Text

/// Writes the text the screen showed, without escape codes, as a transcript: for a PTY
/// session every line the terminal showed, in order, including lines that scrolled off and
/// screens that were cleared (`clear`, Ctrl-L, a reset, leaving a full-screen program's
/// alternate screen), then the final screen (trailing blank lines trimmed); for a pipe
/// session stdout and stderr with escapes stripped and CR / backspace applied.
pub fn text(rec: &Recording, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    match rec.session.mode {
        Mode::Pty => pty_text(rec, &mut w, true)?,
        Mode::Pipe => pipe_text(rec, &mut w)?,
    }
    w.flush()
}

/// Writes the final screen only, as the terminal showed it when the session ended (trailing
/// blank lines trimmed): `hoopx replay --format screen`.
pub fn screen(rec: &Recording, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    let (c, r) = initial_size(rec);
    let mut term = Term::new(c.into(), r.into());
    let mut utf8 = Utf8Stream::default();
    let mut pending = String::new();
    let mut skip = |_: Scrolled<'_>| {};
    for e in &rec.events {
        if is_output(e.kind) {
            utf8.push(&screen_bytes(rec.session.mode, &e.data), &mut pending);
            if pending.len() >= BATCH {
                let cut = pending.rfind('\n').map_or(pending.len(), |i| i + 1);
                term.feed(&pending[..cut], false, &mut skip);
                pending.drain(..cut);
            }
        } else if e.kind == EventKind::Resize {
            if let Some((c, r)) = parse_size(&e.data) {
                term.feed(&pending, false, &mut skip);
                pending.clear();
                term.resize(c.into(), r.into(), &mut skip);
            }
        }
    }
    utf8.finish(&mut pending);
    term.feed(&pending, false, &mut skip);
    for l in screen_lines(&term.vt) {
        writeln!(w, "{l}")?;
    }
    w.flush()
}

/// The lines of the screen as shown, wrapped lines joined, trailing blank lines trimmed.
fn screen_lines(vt: &avt::Vt) -> Vec<String> {
    let mut unwrap = avt::util::TextUnwrapper::new();
    let mut lines: Vec<String> = vt.view().filter_map(|l| unwrap.push(l)).collect();
    lines.extend(unwrap.flush());
    while lines.last().is_some_and(|l| l.trim_end().is_empty()) {
        lines.pop();
    }
    lines
}

/// A control sequence after which what the screen shows is gone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wipe {
    /// ED 2 (erase the whole screen) or RIS (reset).
    Screen,
    /// ED 0 (erase below the cursor): the whole screen when the cursor is at home.
    Below,
    /// Entering the alternate screen (modes 47, 1047, 1049): the main screen stays.
    AltOn,
    /// Leaving it: the alternate screen's content is gone.
    AltOff,
}

/// The next sequence in `text[from..]` that wipes the screen: its start, end and kind.
/// ED 3 (erase the scrollback) is not one: lines are written as they scroll off.
fn next_wipe(text: &str, from: usize) -> Option<(usize, usize, Wipe)> {
    let b = text.as_bytes();
    let mut i = from;
    while let Some(off) = memchr::memchr(0x1b, &b[i..]) {
        let s = i + off;
        match b.get(s + 1) {
            Some(b'c') => return Some((s, s + 2, Wipe::Screen)),
            Some(b'[') => {
                let mut j = s + 2;
                while j < b.len() && (0x30..0x40).contains(&b[j]) {
                    j += 1;
                }
                let &fin = b.get(j)?;
                let params = &text[s + 2..j];
                let alt = || {
                    params
                        .strip_prefix('?')
                        .is_some_and(|p| p.split(';').any(|m| matches!(m, "47" | "1047" | "1049")))
                };
                let kind = match fin {
                    b'J' if params == "2" => Some(Wipe::Screen),
                    b'J' if params.is_empty() || params == "0" => Some(Wipe::Below),
                    b'h' if alt() => Some(Wipe::AltOn),
                    b'l' if alt() => Some(Wipe::AltOff),
                    _ => None,
                };
                if let Some(k) = kind {
                    return Some((s, j + 1, k));
                }
                i = j;
            }
            Some(_) => i = s + 1,
            None => return None,
        }
    }
    None
}

struct TextOut<'a> {
    w: &'a mut dyn Write,
    unwrap: avt::util::TextUnwrapper,
    err: Option<io::Error>,
}

impl TextOut<'_> {
    fn take(&mut self, s: Scrolled<'_>) {
        if self.err.is_some() {
            return;
        }
        let r = match s {
            Scrolled::Line(l) => match self.unwrap.push(l) {
                Some(text) => writeln!(self.w, "{text}"),
                None => Ok(()),
            },
            Scrolled::Plain(p) => writeln!(self.w, "{}", visible(p).trim_end()),
        };
        if let Err(e) = r {
            self.err = Some(e);
        }
    }

    /// Writes the screen's lines before they are wiped, after the lines that scrolled off.
    fn screen(&mut self, vt: &avt::Vt) {
        if self.err.is_some() {
            return;
        }
        let mut lines: Vec<String> = vt.view().filter_map(|l| self.unwrap.push(l)).collect();
        lines.extend(std::mem::replace(&mut self.unwrap, avt::util::TextUnwrapper::new()).flush());
        while lines.last().is_some_and(|l| l.trim_end().is_empty()) {
            lines.pop();
        }
        for l in lines {
            if let Err(e) = writeln!(self.w, "{l}") {
                self.err = Some(e);
                return;
            }
        }
    }
}

/// Feeds `text` to the terminal; with `keep`, writes the screen out before each sequence
/// that wipes it. `alt` tracks whether the alternate screen is showing.
fn feed_keeping(term: &mut Term, text: &str, keep: bool, alt: &mut bool, out: &mut TextOut<'_>) {
    let mut fed = 0;
    let mut from = 0;
    while let Some((s, e, kind)) = keep.then(|| next_wipe(text, from)).flatten() {
        from = e;
        let wipes = match kind {
            Wipe::Screen | Wipe::Below => true,
            Wipe::AltOn => {
                *alt = true;
                false
            }
            Wipe::AltOff => std::mem::replace(alt, false),
        };
        if !wipes {
            continue;
        }
        term.feed(&text[fed..s], false, &mut |l| out.take(l));
        fed = s;
        if kind == Wipe::Below {
            let c = term.vt.cursor();
            if (c.col, c.row) != (0, 0) {
                continue;
            }
        }
        out.screen(&term.vt);
    }
    term.feed(&text[fed..], false, &mut |l| out.take(l));
}

const BATCH: usize = 1 << 20;

fn pty_text(rec: &Recording, w: &mut dyn Write, keep: bool) -> io::Result<()> {
    let (c, r) = initial_size(rec);
    let mut term = Term::new(c.into(), r.into());
    let mut out = TextOut {
        w,
        unwrap: avt::util::TextUnwrapper::new(),
        err: None,
    };
    let mut utf8 = Utf8Stream::default();
    let mut pending = String::new();
    let mut alt = false;
    for e in &rec.events {
        if is_output(e.kind) {
            utf8.push(&e.data, &mut pending);
            if pending.len() >= BATCH {
                // Up to the last complete line; the rest waits for more.
                let cut = pending.rfind('\n').map_or(pending.len(), |i| i + 1);
                feed_keeping(&mut term, &pending[..cut], keep, &mut alt, &mut out);
                pending.drain(..cut);
            }
        } else if e.kind == EventKind::Resize {
            if let Some((c, r)) = parse_size(&e.data) {
                feed_keeping(&mut term, &pending, keep, &mut alt, &mut out);
                pending.clear();
                term.resize(c.into(), r.into(), &mut |s| out.take(s));
            }
        }
        if let Some(e) = out.err.take() {
            return Err(e);
        }
    }
    utf8.finish(&mut pending);
    feed_keeping(&mut term, &pending, keep, &mut alt, &mut out);
    if let Some(e) = out.err.take() {
        return Err(e);
    }
    out.screen(&term.vt);
    out.err.map_or(Ok(()), Err)
}

/// Escape-stripping, CR / backspace aware line builder for pipe sessions.
#[derive(Default)]
struct PipeText {
    line: Vec<u8>,
    /// Byte position in `line` where the next character goes.
    cursor: usize,
    esc: Esc,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum Esc {
    #[default]
    None,
    /// After ESC.
    Start,
    /// After ESC and an intermediate byte (`(`, `)`, `#`, ...): one more byte.
    Intermediate,
    /// In a CSI sequence, until a final byte.
    Csi,
    /// In an OSC / DCS / APC string, until BEL or ST.
    Str,
    /// In a string, after ESC (ST is ESC \).
    StrMaybeSt,
}

/// Bytes that need the slow path: C0 controls other than LF and TAB, and DEL.
fn special(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f
}

impl PipeText {
    fn push(&mut self, data: &[u8], w: &mut dyn Write) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.esc == Esc::None && self.cursor == self.line.len() {
                // Fast path: copy up to the next special byte.
                let n = rest.iter().position(|&b| special(b)).unwrap_or(rest.len());
                let (plain, after) = rest.split_at(n);
                match memchr::memrchr(b'\n', plain) {
                    Some(i) => {
                        if !self.line.is_empty() {
                            w.write_all(&self.line)?;
                            self.line.clear();
                        }
                        w.write_all(&plain[..=i])?;
                        self.line.extend_from_slice(&plain[i + 1..]);
                    }
                    None => self.line.extend_from_slice(plain),
                }
                self.cursor = self.line.len();
                rest = after;
                if rest.is_empty() {
                    break;
                }
            }
            let b = rest[0];
            rest = &rest[1..];
            self.byte(b, w)?;
        }
        Ok(())
    }

    fn byte(&mut self, b: u8, w: &mut dyn Write) -> io::Result<()> {
        match self.esc {
            Esc::Start => {
                self.esc = match b {
                    b'[' => Esc::Csi,
                    b']' | b'P' | b'_' | b'^' | b'X' => Esc::Str,
                    0x20..=0x2f => Esc::Intermediate,
                    _ => Esc::None,
                };
                return Ok(());
            }
            Esc::Intermediate => {
                self.esc = Esc::None;
                return Ok(());
            }
            Esc::Csi => {
                if (0x40..=0x7e).contains(&b) || b == 0x1b {
                    self.esc = if b == 0x1b { Esc::Start } else { Esc::None };
                }
                return Ok(());
            }
            Esc::Str => {
                match b {
                    0x07 => self.esc = Esc::None,
                    0x1b => self.esc = Esc::StrMaybeSt,
                    _ => {}
                }
                return Ok(());
            }
            Esc::StrMaybeSt => {
                self.esc = if b == b'\\' { Esc::None } else { Esc::Str };
                return Ok(());
            }
            Esc::None => {}
        }
        match b {
            0x1b => self.esc = Esc::Start,
            b'\n' => {
                self.line.push(b'\n');
                w.write_all(&self.line)?;
                self.line.clear();
                self.cursor = 0;
            }
            b'\r' => self.cursor = 0,
            0x08 => {
                // Back one character (over UTF-8 continuation bytes).
                while self.cursor > 0 {
                    self.cursor -= 1;
                    if self.line[self.cursor] & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            b'\t' => self.put(b),
            _ if special(b) => {}
            _ => self.put(b),
        }
        Ok(())
    }

    /// Writes a byte at the cursor: appends at the end, overwrites a character before it.
    fn put(&mut self, b: u8) {
        if self.cursor >= self.line.len() {
            self.line.push(b);
            self.cursor = self.line.len();
            return;
        }
        let is_cont = b & 0xc0 == 0x80;
        if is_cont {
            self.line.insert(self.cursor, b);
        } else {
            // Replace the whole character at the cursor.
            let mut end = self.cursor + 1;
            while end < self.line.len() && self.line[end] & 0xc0 == 0x80 {
                end += 1;
            }
            self.line.splice(self.cursor..end, [b]);
        }
        self.cursor += 1;
    }

    fn finish(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if !self.line.is_empty() {
            w.write_all(&self.line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn pipe_text(rec: &Recording, w: &mut dyn Write) -> io::Result<()> {
    let mut p = PipeText::default();
    for e in rec.events.iter().filter(|e| is_output(e.kind)) {
        p.push(&e.data, w)?;
    }
    p.finish(w)
}

// ---------------------------------------------------------------------------------------
// Timeline

/// Emulator state after the first `event` events.
struct Keyframe {
    event: usize,
    cols: usize,
    rows: usize,
    dump: String,
    carry: Utf8Stream,
}

/// Keyframes and indexes over a recording, for seeking: the screen at any moment is
/// rebuilt from the nearest keyframe before it.
pub struct Timeline<'a> {
    rec: &'a Recording,
    /// Per event, the latest time up to it (times that go backwards do not go back here).
    times: Vec<i64>,
    keyframes: Vec<Keyframe>,
}

/// Bytes written before a keyframe's dump: leave the alternate screen, soft reset, clear.
const REPAINT_PREFIX: &[u8] = b"\x1b[?1049l\x1b[!p\x1b[0m\x1b[H\x1b[2J";

impl<'a> Timeline<'a> {
    /// Builds keyframes every 512 KiB of output or 30 s, in one pass over the output.
    pub fn new(rec: &'a Recording) -> Timeline<'a> {
        Timeline::with_spacing(rec, 512 * 1024, 30_000_000)
    }

    /// [`Timeline::new`] with the keyframe spacing given.
    pub fn with_spacing(rec: &'a Recording, every_bytes: usize, every_us: i64) -> Timeline<'a> {
        let mut times = Vec::with_capacity(rec.events.len());
        let mut max = i64::MIN;
        for e in &rec.events {
            max = max.max(e.t_us);
            times.push(max);
        }
        let (c, r) = initial_size(rec);
        let mut st = Replay::new(rec.session.mode, c.into(), r.into(), Utf8Stream::default());
        let mut keyframes = vec![st.keyframe(0)];
        let mut since_bytes = 0usize;
        let mut kf_time = times.first().copied().unwrap_or(0);
        for (i, e) in rec.events.iter().enumerate() {
            st.event(e.kind, &e.data);
            if is_output(e.kind) {
                since_bytes += e.data.len();
            }
            let t = times[i];
            if since_bytes > 0
                && (since_bytes >= every_bytes || t.saturating_sub(kf_time) >= every_us)
            {
                keyframes.push(st.keyframe(i + 1));
                since_bytes = 0;
                kf_time = t;
            }
        }
        Timeline {
            rec,
            times,
            keyframes,
        }
    }

    /// The time of the last event, in microseconds since the start.
    pub fn duration(&self) -> i64 {
        self.times.last().copied().unwrap_or(0).max(0)
    }

    /// Markers and their labels (the marker text), in order.
    pub fn markers(&self) -> Vec<(i64, String)> {
        self.rec
            .events
            .iter()
            .zip(&self.times)
            .filter(|(e, _)| e.kind == EventKind::Marker)
            .map(|(e, &t)| (t, String::from_utf8_lossy(&e.data).into_owned()))
            .collect()
    }

    /// How many events happened at or before `t_us`: the index of the first event after.
    pub fn event_at(&self, t_us: i64) -> usize {
        self.times.partition_point(|&t| t <= t_us)
    }

    /// The time the screen reaches after `n` events (0 before any).
    pub fn time_of(&self, n: usize) -> i64 {
        n.checked_sub(1)
            .and_then(|i| self.times.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Bytes that repaint a terminal to the state at `t_us`: clear, the screen with its
    /// attributes, modes and cursor. Replays only from the nearest keyframe.
    pub fn screen_at(&self, t_us: i64) -> Vec<u8> {
        self.screen_after(self.event_at(t_us))
    }

    /// [`Timeline::screen_at`] by event count: the state after the first `n` events.
    pub fn screen_after(&self, n: usize) -> Vec<u8> {
        let n = n.min(self.rec.events.len());
        let k = self
            .keyframes
            .partition_point(|k| k.event <= n)
            .saturating_sub(1);
        let Some(kf) = self.keyframes.get(k) else {
            return REPAINT_PREFIX.to_vec();
        };
        let mut st = Replay::new(self.rec.session.mode, kf.cols, kf.rows, kf.carry.clone());
        st.term.vt.feed_str(&kf.dump);
        for e in &self.rec.events[kf.event..n] {
            st.event(e.kind, &e.data);
        }
        st.flush();
        let mut out = REPAINT_PREFIX.to_vec();
        out.extend_from_slice(st.term.vt.dump().as_bytes());
        out
    }

    /// The terminal size at the state after `n` events.
    pub fn size_after(&self, n: usize) -> (usize, usize) {
        let mut size = self
            .keyframes
            .iter()
            .rev()
            .find(|k| k.event <= n)
            .map_or((80, 24), |k| (k.cols, k.rows));
        let start = self
            .keyframes
            .iter()
            .rev()
            .find(|k| k.event <= n)
            .map_or(0, |k| k.event);
        for e in self.rec.events.get(start..n).unwrap_or_default() {
            if e.kind == EventKind::Resize {
                if let Some((c, r)) = parse_size(&e.data) {
                    size = (usize::from(c).min(MAX_COLS), usize::from(r).min(MAX_ROWS));
                }
            }
        }
        size
    }

    /// How many keyframes were taken.
    pub fn keyframes(&self) -> usize {
        self.keyframes.len()
    }
}

/// Replays events into an emulator, batching output between resizes.
struct Replay {
    mode: Mode,
    term: Term,
    utf8: Utf8Stream,
    pending: String,
}

impl Replay {
    fn new(mode: Mode, cols: usize, rows: usize, utf8: Utf8Stream) -> Replay {
        Replay {
            mode,
            term: Term::new(cols, rows),
            utf8,
            pending: String::new(),
        }
    }

    fn event(&mut self, kind: EventKind, data: &[u8]) {
        if is_output(kind) {
            self.utf8
                .push(&screen_bytes(self.mode, data), &mut self.pending);
            if self.pending.len() >= BATCH {
                self.flush();
            }
        } else if kind == EventKind::Resize {
            if let Some((c, r)) = parse_size(data) {
                self.flush();
                self.term.resize(c.into(), r.into(), &mut |_| {});
            }
        }
    }

    fn flush(&mut self) {
        self.term.feed(&self.pending, true, &mut |_| {});
        self.pending.clear();
    }

    fn keyframe(&mut self, event: usize) -> Keyframe {
        self.flush();
        Keyframe {
            event,
            cols: self.term.cols,
            rows: self.term.rows,
            dump: self.term.vt.dump(),
            carry: self.utf8.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SessionInfo;
    use crate::recording::Event;
    use rand::{Rng, SeedableRng};

    fn rec(mode: Mode, events: Vec<(EventKind, Vec<u8>)>) -> Recording {
        Recording {
            session: SessionInfo {
                id: "s".into(),
                identity: "i".into(),
                target: "t".into(),
                argv: vec!["sh".into()],
                mode,
                status: "exited".into(),
                started_at: 0,
                ended_at: None,
                exit_code: None,
                reason: None,
                event_count: events.len() as i64,
                ..Default::default()
            },
            keys: vec![],
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, (kind, data))| Event {
                    seq: i as i64,
                    t_us: i as i64 * 1000,
                    kind,
                    data,
                })
                .collect(),
            checkpoints: vec![],
        }
    }

    fn text_of(r: &Recording) -> String {
        let mut out = Vec::new();
        text(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The text without the screens wiped on the way: what avt's collector gives too.
    fn scrolled_text_of(r: &Recording) -> String {
        let mut out = Vec::new();
        pty_text(r, &mut out, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn screen_of(r: &Recording) -> String {
        let mut out = Vec::new();
        screen(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// What avt's own collector makes of the same output: the reference for the fast path.
    fn reference_text(r: &Recording) -> String {
        let (c, rows) = initial_size(r);
        let mut tc = avt::util::TextCollector::new(
            avt::Vt::builder()
                .size(c.into(), rows.into())
                .scrollback_limit(0)
                .build(),
        );
        let mut out = String::new();
        let mut utf8 = Utf8Stream::default();
        for e in &r.events {
            if is_output(e.kind) {
                let mut s = String::new();
                utf8.push(&e.data, &mut s);
                for l in tc.feed_str(&s) {
                    out.push_str(&l);
                    out.push('\n');
                }
            } else if let Some((c, rr)) = parse_size(&e.data) {
                for l in tc.resize(c, rr) {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        for l in tc.flush() {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    fn out(s: &str) -> (EventKind, Vec<u8>) {
        (EventKind::Output, s.as_bytes().to_vec())
    }

    #[test]
    fn pty_text_shows_scrolled_lines_and_the_final_screen() {
        let r = rec(
            Mode::Pty,
            vec![
                (EventKind::Resize, b"20x3".to_vec()),
                out("one\r\n\x1b[31mtwo\x1b[0m\r\nthree\r\nfour\r\nfi"),
                out("ve\r\n\r\n"),
            ],
        );
        assert_eq!(text_of(&r), "one\ntwo\nthree\nfour\nfive\n");
        // Overwrites and clears show their result.
        let r = rec(Mode::Pty, vec![out("50%\r80%\r\x1b[Kdone\r\n")]);
        assert_eq!(text_of(&r), "done\n");
    }

    #[test]
    fn pty_text_keeps_what_was_cleared_and_screen_shows_the_end() {
        let r = rec(
            Mode::Pty,
            vec![
                (EventKind::Resize, b"20x5".to_vec()),
                // `clear`, Ctrl-L in readline, a reset, ED 0 at home, ED 3 alone.
                out("ERROR: one\r\n\x1b[H\x1b[2J\x1b[3Jtwo\r\n\x1b[H\x1b[J"),
                out("three\r\n\x1bcfour\r\nfive\x1b[3J\r\n"),
                // ED 0 below the cursor leaves the lines above it.
                out("six\x1b[J\r\n"),
                // A full-screen program: its screen was shown, the main screen comes back.
                out("\x1b[?1049h\x1b[Hin vim\x1b[?1049l\x1b[?25lseven\r\n"),
            ],
        );
        assert_eq!(
            text_of(&r),
            "ERROR: one\ntwo\nthree\nin vim\nfour\nfive\nsix\nseven\n"
        );
        assert_eq!(screen_of(&r), "four\nfive\nsix\nseven\n");
        // Leaving an alternate screen never entered wipes nothing.
        let r = rec(Mode::Pty, vec![out("a\r\n\x1b[?47lb\r\n")]);
        assert_eq!(text_of(&r), "a\nb\n");
        // Pipe sessions: the final screen is the last lines.
        let r = rec(
            Mode::Pipe,
            vec![(EventKind::Resize, b"20x2".to_vec()), out("1\n2\n3\n")],
        );
        assert_eq!(screen_of(&r), "3\n");
    }

    fn long_output(rng: &mut rand::rngs::StdRng, lines: usize) -> String {
        let mut s = String::new();
        for i in 0..lines {
            if rng.random_range(0..30) == 0 {
                // 0: no colour, 1: every line coloured, 2: now and then.
                let style = rng.random_range(0..3);
                for j in 0..rng.random_range(50..400) {
                    if style == 1 || (style == 2 && rng.random_range(0..60) == 0) {
                        s.push_str(&format!("{j} plain \x1b[33mcoloured\x1b[0m line\r\n"));
                    } else {
                        s.push_str(&format!("{j} plain line ä\r\n"));
                    }
                }
            }
            match rng.random_range(0..40) {
                0 => s.push_str("\x1b[1;32muser@host\x1b[0m:~$ ls\r\n"),
                1 => s.push_str("tab\there\r\n"),
                2 => s.push_str(&"w".repeat(130)), // wraps
                3 => s.push_str("\x1b(0lqqk\x1b(B mixed\r\n"),
                4 => s.push_str("ünïcødé ✓ 漢字 line\r\n"),
                5 => s.push_str("\x1b[?1049h\x1b[Hfull screen app\x1b[?1049l"),
                7 => s.push_str("\x1b[44mblue from here on\r\n"),
                6 => s.push_str("\x1b[2;10r\x1b[10Hin region\r\nmore\r\n\x1b[r"),
                _ => s.push_str(&format!(
                    " {i:>6} | row of plain psql output  | {}\r\n",
                    i * 7
                )),
            }
        }
        s
    }

    #[test]
    fn the_fast_path_gives_the_emulators_text() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for round in 0..6 {
            let body = long_output(&mut rng, 3000);
            // Split at random points, including inside escapes and UTF-8 characters.
            let bytes = body.as_bytes();
            let mut events = vec![(EventKind::Resize, b"100x24".to_vec())];
            let mut i = 0;
            while i < bytes.len() {
                let j = (i + rng.random_range(1..9000)).min(bytes.len());
                events.push((EventKind::Output, bytes[i..j].to_vec()));
                if round % 2 == 1 && rng.random_range(0..30) == 0 {
                    events.push((EventKind::Resize, b"90x30".to_vec()));
                }
                i = j;
            }
            let r = rec(Mode::Pty, events);
            let before = FAST_LINES.with(|c| c.get());
            assert_eq!(scrolled_text_of(&r), reference_text(&r), "round {round}");
            assert!(
                FAST_LINES.with(|c| c.get()) > before + 1000,
                "fast path unused"
            );
        }
    }

    #[test]
    fn the_fast_path_holds_under_a_line_drawing_charset() {
        // G0 switched to line drawing, then plain lines without letters it maps in the probe.
        let mut s = String::from("\x1b(0");
        for i in 0..400 {
            s.push_str(&format!("{i:05} 12345\r\n"));
        }
        s.push_str("lqqk\r\n");
        for _ in 0..200 {
            s.push_str("lower case x\r\n");
        }
        let r = rec(Mode::Pty, vec![out(&s)]);
        assert_eq!(scrolled_text_of(&r), reference_text(&r));
    }

    #[test]
    fn pipe_text_strips_escapes_and_applies_cr_and_backspace() {
        let r = rec(
            Mode::Pipe,
            vec![
                out("plain\n\x1b[31mred\x1b[0m\n"),
                (EventKind::Stderr, b"err: \x1b]0;title\x07x\n".to_vec()),
                out("10%\r20%\r100%\ndone\x08\x08NE\nab\x1b["),
                out("1mc\ttail"),
                (EventKind::Input, b"ignored\n".to_vec()),
            ],
        );
        assert_eq!(text_of(&r), "plain\nred\nerr: x\n100%\ndoNE\nabc\ttail\n");
    }

    #[test]
    fn text_survives_garbage() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for mode in [Mode::Pty, Mode::Pipe] {
            let mut events = vec![(EventKind::Resize, b"0x0".to_vec())];
            for _ in 0..200 {
                let n = rng.random_range(0..300);
                events.push((EventKind::Output, (0..n).map(|_| rng.random()).collect()));
                if rng.random_range(0..20) == 0 {
                    let sz = format!(
                        "{}x{}",
                        rng.random_range(0..70000),
                        rng.random_range(0..70000)
                    );
                    events.push((EventKind::Resize, sz.into_bytes()));
                }
            }
            let r = rec(mode, events);
            let mut out = Vec::new();
            text(&r, &mut out).unwrap();
            let t = Timeline::with_spacing(&r, 1000, 1_000_000);
            for s in [0, 50_000, i64::MAX, i64::MIN] {
                t.screen_at(s);
            }
        }
    }

    /// The state after `n` events, fed one event at a time the simple way.
    fn reference_dump(r: &Recording, n: usize) -> String {
        let (c, rows) = initial_size(r);
        let mut vt = avt::Vt::builder()
            .size(c.into(), rows.into())
            .scrollback_limit(0)
            .build();
        let mut utf8 = Utf8Stream::default();
        for e in &r.events[..n] {
            if is_output(e.kind) {
                let mut s = String::new();
                utf8.push(&screen_bytes(r.session.mode, &e.data), &mut s);
                vt.feed_str(&s);
            } else if let Some((c, rr)) = parse_size(&e.data) {
                vt.resize(c.into(), rr.into());
            }
        }
        vt.dump()
    }

    #[test]
    fn screen_at_repaints_exactly_the_state_at_that_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for mode in [Mode::Pty, Mode::Pipe] {
            let body = long_output(&mut rng, 4000);
            let bytes = body.as_bytes();
            let mut events = vec![(EventKind::Resize, b"100x24".to_vec())];
            let mut i = 0;
            while i < bytes.len() {
                let j = (i + rng.random_range(1..3000)).min(bytes.len());
                events.push((EventKind::Output, bytes[i..j].to_vec()));
                if rng.random_range(0..40) == 0 {
                    events.push((EventKind::Resize, b"90x30".to_vec()));
                }
                if rng.random_range(0..40) == 0 {
                    events.push((EventKind::Marker, b"{\"mask\":1}".to_vec()));
                }
                i = j;
            }
            let r = rec(mode, events);
            let before = FAST_LINES.with(|c| c.get());
            let t = Timeline::with_spacing(&r, 20_000, 10_000_000);
            assert!(t.keyframes() > 5);
            assert!(FAST_LINES.with(|c| c.get()) > before, "fast path unused");
            for _ in 0..25 {
                let n = rng.random_range(0..=r.events.len());
                let at = if n == 0 { -1 } else { r.events[n - 1].t_us };
                assert_eq!(t.event_at(at), n);
                let (c, rows) = t.size_after(n);
                let mut vt = avt::Vt::builder().size(c, rows).scrollback_limit(0).build();
                vt.feed_str(&String::from_utf8(t.screen_at(at)).unwrap());
                assert_eq!(
                    vt.dump(),
                    reference_dump(&r, n),
                    "{mode:?} after {n} events"
                );
            }
        }
    }

    #[test]
    fn timeline_indexes_time_and_markers() {
        let r = rec(
            Mode::Pty,
            vec![
                out("a"),
                (EventKind::Marker, b"approved".to_vec()),
                out("b"),
            ],
        );
        let t = Timeline::new(&r);
        assert_eq!(t.duration(), 2000);
        assert_eq!(t.markers(), vec![(1000, "approved".to_string())]);
        assert_eq!(t.event_at(-5), 0);
        assert_eq!(t.event_at(0), 1);
        assert_eq!(t.event_at(1500), 2);
        assert_eq!(t.event_at(i64::MAX), 3);
        assert_eq!(t.time_of(2), 1000);
    }
}
