//! What a PTY line really is when the user presses Enter: read off the terminal, not off the
//! keystrokes. Line editors (readline, libedit, zle) let a user recall history, search it,
//! move the cursor and edit in the middle; the keystrokes then say little about the line,
//! but the screen shows it. Pure state, no I/O.
//!
//! The tool's recent output is kept in a small window. At the first keystroke of a line a
//! terminal emulator is started from that window, which puts the prompt on its screen; the
//! text before the cursor at that moment is the prompt. From then on every output byte (the
//! echo and the editor's redraws) is fed to it, and at Enter the logical line under the
//! cursor, minus the prompt, is the line submitted. Only the output produced while a line
//! is being typed goes through the emulator, so a tool's bulk output costs a copy into the
//! window and nothing more.

/// The emulator's size at most, whatever size the client reports: a screen is allocated
/// whole, so a made-up 65535×65535 terminal must not become a multi-gigabyte allocation.
const MAX_COLS: u16 = 1000;
const MAX_ROWS: u16 = 500;

/// Output kept to rebuild the screen at a line's first keystroke.
const WINDOW: usize = 16 * 1024;

/// Output fed to the emulator for one line at most: past this the tool is streaming, not
/// echoing, and the emulator is dropped (rebuilt from the window when needed), so bulk
/// output costs a copy, not a terminal emulation.
const MAX_FED: usize = 64 * 1024;

pub struct LineView {
    cols: usize,
    rows: usize,
    /// The last [`WINDOW`] bytes (up to 2×) of output.
    recent: Vec<u8>,
    active: Option<Active>,
    /// A line is being typed (its first key came), whether or not the emulator still runs.
    open: bool,
    /// While this line was typed, the tool switched character sets or insert mode: what the
    /// screen shows may not be the characters the tool holds.
    suspect: bool,
    /// The end of the last output chunk, for sequences split across chunks.
    tail: Vec<u8>,
}

struct Active {
    vt: avt::Vt,
    /// `None` when the line's start is unknown (the emulator was rebuilt mid-line).
    prompt: Option<String>,
    fed: usize,
    /// An incomplete UTF-8 sequence at the end of the last output chunk.
    carry: Vec<u8>,
}

impl std::fmt::Debug for LineView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineView")
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("active", &self.active.is_some())
            .finish()
    }
}

impl LineView {
    pub fn new(cols: u16, rows: u16) -> LineView {
        LineView {
            cols: usize::from(cols.clamp(2, MAX_COLS)),
            rows: usize::from(rows.clamp(1, MAX_ROWS)),
            recent: Vec::new(),
            active: None,
            open: false,
            suspect: false,
            tail: Vec::new(),
        }
    }

    /// The tool wrote these bytes.
    pub fn output(&mut self, data: &[u8]) {
        if self.open {
            let mut probe = std::mem::take(&mut self.tail);
            probe.extend_from_slice(&data[..data.len().min(MAX_FED)]);
            self.suspect |= tricks(&probe);
            let keep = data.len().min(3);
            self.tail = data[data.len() - keep..].to_vec();
        }
        if let Some(a) = &mut self.active {
            a.fed += data.len();
            if a.fed > MAX_FED {
                self.active = None;
            } else {
                feed(&mut a.vt, &mut a.carry, data);
            }
        }
        if data.len() >= WINDOW {
            // Bulk output: only its tail can matter, so only its tail is copied.
            self.recent.clear();
            self.recent.extend_from_slice(&data[data.len() - WINDOW..]);
        } else {
            self.recent.extend_from_slice(data);
            if self.recent.len() > 2 * WINDOW {
                let cut = self.recent.len() - WINDOW;
                self.recent.drain(..cut);
            }
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.cols = usize::from(cols.clamp(2, MAX_COLS));
        self.rows = usize::from(rows.clamp(1, MAX_ROWS));
        if let Some(a) = &mut self.active {
            a.vt.resize(self.cols, self.rows);
        }
    }

    /// A key of the current line reaches the tool: at the line's first key the screen is
    /// rebuilt and the prompt noted.
    pub fn keystroke(&mut self) {
        if self.active.is_some() {
            return;
        }
        let mut vt = avt::Vt::builder()
            .size(self.cols, self.rows)
            .scrollback_limit(0)
            .build();
        // Start at a line boundary when the window has one: the prompt's line is whole.
        let start = self
            .recent
            .iter()
            .position(|&b| b == b'\n')
            .filter(|_| self.recent.len() >= WINDOW)
            .map_or(0, |p| p + 1);
        let mut carry = Vec::new();
        feed(&mut vt, &mut carry, &self.recent[start..]);
        // The text left of the cursor at a line's first key is its prompt; rebuilt mid-line
        // (after streaming output), the prompt is unknown.
        let prompt = (!self.open).then(|| {
            let (line, cursor_at) = logical_line(&vt);
            line.chars().take(cursor_at).collect()
        });
        if !self.open {
            self.suspect = false;
            self.tail.clear();
        }
        self.open = true;
        self.active = Some(Active {
            vt,
            prompt,
            fed: 0,
            carry,
        });
    }

    /// The line on the screen at Enter, without its prompt (the whole logical line when
    /// the prompt is no longer at its start). Ends the line: the next key starts a new one.
    pub fn submit(&mut self) -> String {
        self.keystroke();
        self.open = false;
        let Some(a) = self.active.take() else {
            return String::new();
        };
        let (line, _) = logical_line(&a.vt);
        let line = line.trim_end();
        match a.prompt.as_deref().map(|p| (p, line.strip_prefix(p))) {
            Some((p, Some(rest))) if !p.is_empty() => rest.to_string(),
            // The prompt is unknown or gone: the whole line is checked, prompt and all.
            _ => line.to_string(),
        }
    }

    /// Whether the screen of the line being typed can be trusted to show what the tool
    /// holds: not when the tool switched character sets (`ESC ( 0`, SO/SI, single shifts) or
    /// insert mode (`ESC [ 4 h`) while it was typed. Read before [`Self::submit`].
    pub fn suspect(&self) -> bool {
        self.suspect
    }

    /// Forgets the line being typed (it was erased, or the tool was interrupted).
    pub fn reset(&mut self) {
        self.active = None;
        self.open = false;
    }
}

/// Character-set and insert-mode switches in terminal output: SO and SI, designations
/// `ESC ( ) * + x`, single shifts `ESC N` / `ESC O`, and `ESC [ 4 h|l` (IRM).
fn tricks(out: &[u8]) -> bool {
    out.iter().enumerate().any(|(i, &b)| {
        let next = |k: usize| out.get(i + k).copied();
        match b {
            0x0e | 0x0f => true,
            0x1b => match next(1) {
                Some(b'(' | b')' | b'*' | b'+') => next(2).is_some_and(|c| c != b'B'),
                Some(b'N' | b'O') => {
                    !matches!(next(2), Some(b'A'..=b'D' | b'H' | b'F' | b'P'..=b'S'))
                }
                Some(b'[') => {
                    let rest = &out[i + 2..];
                    let end = rest.iter().position(|c| (0x40..=0x7e).contains(c));
                    end.is_some_and(|e| {
                        matches!(rest[e], b'h' | b'l')
                            && rest[..e].split(|&c| c == b';').any(|p| p == b"4")
                    })
                }
                _ => false,
            },
            _ => false,
        }
    })
}

fn feed(vt: &mut avt::Vt, carry: &mut Vec<u8>, data: &[u8]) {
    let owned;
    let bytes: &[u8] = if carry.is_empty() {
        data
    } else {
        carry.extend_from_slice(data);
        owned = std::mem::take(carry);
        &owned
    };
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                vt.feed_str(s);
                return;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // Valid by construction.
                vt.feed_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    None => {
                        carry.extend_from_slice(bad);
                        return;
                    }
                    Some(n) => {
                        vt.feed_str("\u{fffd}");
                        rest = &bad[n..];
                    }
                }
            }
        }
    }
}

/// The logical line under the cursor (wrapped rows joined) and the cursor's character index
/// in it.
fn logical_line(vt: &avt::Vt) -> (String, usize) {
    let view: Vec<&avt::Line> = vt.view().collect();
    let cursor = vt.cursor();
    let row = cursor.row.min(view.len().saturating_sub(1));
    let wrapped = |r: usize| avt::util::TextUnwrapper::new().push(view[r]).is_none();
    let mut first = row;
    while first > 0 && wrapped(first - 1) {
        first -= 1;
    }
    let mut last = row;
    while last + 1 < view.len() && wrapped(last) {
        last += 1;
    }
    let mut text = String::new();
    let mut cursor_at = 0;
    for (r, line) in view.iter().enumerate().take(last + 1).skip(first) {
        let chars: Vec<char> = line.chars().collect();
        if r < row {
            cursor_at += chars.len();
        } else if r == row {
            cursor_at += cursor.col.min(chars.len());
        }
        text.extend(chars);
    }
    (text, cursor_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_and_insert_mode_switches_while_a_line_is_typed_make_it_suspect() {
        for trick in [
            &b"\x1b(0"[..],
            b"\x0e",
            b"\x1b)0\x0e",
            b"\x1b[4h",
            b"\x1b[?1;4h",
        ] {
            let mut v = LineView::new(80, 24);
            v.output(b"$ ");
            v.keystroke();
            v.output(b"ls");
            // Split across chunks too.
            let (a, b) = trick.split_at(1);
            v.output(a);
            v.output(b);
            assert!(v.suspect(), "{trick:?}");
            v.submit();
            // The next line starts clean.
            v.keystroke();
            v.output(b"x");
            assert!(!v.suspect(), "{trick:?}");
        }
        let mut v = LineView::new(80, 24);
        // Before the line (the prompt's own drawing) and plain editing redraws are fine.
        v.output(b"\x1b(0q\x1b(B$ ");
        v.keystroke();
        v.output(b"ls\x08\x1b[K\x1b[1;5H\x1b[?2004h\x1b(B");
        assert!(!v.suspect());
    }

    fn typed(view: &mut LineView, echo: &[&[u8]]) -> String {
        view.keystroke();
        for e in echo {
            view.output(e);
        }
        view.submit()
    }

    #[test]
    fn plain_typing_is_read_without_the_prompt() {
        let mut v = LineView::new(80, 24);
        v.output(b"psql (15.1)\r\nType \"help\" for help.\r\n\r\npostgres=# ");
        assert_eq!(typed(&mut v, &[b"sel", b"ect 1;"]), "select 1;");
    }

    #[test]
    fn history_recall_is_what_the_screen_shows() {
        let mut v = LineView::new(80, 24);
        v.output(b"postgres=# ");
        // Up arrow: readline rewrites the line from the prompt on.
        assert_eq!(
            typed(&mut v, &[b"\r\x1b[Kpostgres=# DELETE FROM accounts;"]),
            "DELETE FROM accounts;"
        );
    }

    #[test]
    fn in_line_editing_is_followed() {
        let mut v = LineView::new(80, 24);
        v.output(b"$ ");
        // "SELECT x FROM t", then cursor back 15 and "DELETE" typed over "SELECT".
        let line = typed(
            &mut v,
            &[b"SELECT x FROM t", b"\x1b[15D", b"DELETE\x1b[K FROM t"],
        );
        assert_eq!(line, "DELETE FROM t");
    }

    #[test]
    fn wrapped_lines_are_joined() {
        let mut v = LineView::new(20, 5);
        v.output(b"db=> ");
        let long = b"select aaaaaaaaaa, bbbbbbbbbb, cccccccccc;";
        assert_eq!(
            typed(&mut v, &[long]),
            "select aaaaaaaaaa, bbbbbbbbbb, cccccccccc;"
        );
    }

    #[test]
    fn output_split_inside_a_character_is_kept() {
        let mut v = LineView::new(80, 24);
        v.output(b"> ");
        let e = "é".as_bytes();
        assert_eq!(typed(&mut v, &[b"caf", &e[..1], &e[1..]]), "café");
    }

    #[test]
    fn a_new_line_starts_after_submit() {
        let mut v = LineView::new(80, 24);
        v.output(b"$ ");
        assert_eq!(typed(&mut v, &[b"one"]), "one");
        v.output(b"\r\nout\r\n$ ");
        assert_eq!(typed(&mut v, &[b"two"]), "two");
    }

    #[test]
    fn streaming_output_stops_the_emulator_and_the_line_is_still_read() {
        let mut v = LineView::new(80, 24);
        v.output(b"$ ");
        v.keystroke();
        for _ in 0..5_000 {
            v.output(b"a line the tool streams while the user types\r\n");
        }
        assert!(v.active.is_none(), "bulk output is not emulated");
        v.output(b"$ drop table t");
        // Rebuilt mid-line, the prompt is unknown: the whole line is checked.
        assert_eq!(v.submit(), "$ drop table t");
    }

    #[test]
    fn a_made_up_terminal_size_is_bounded() {
        let mut v = LineView::new(u16::MAX, u16::MAX);
        v.output(b"$ ");
        v.keystroke();
        v.resize(u16::MAX, u16::MAX);
        v.output(b"ls");
        assert_eq!(v.submit(), "ls");
        assert_eq!((v.cols, v.rows), (1000, 500));
    }

    #[test]
    fn a_long_history_keeps_the_window_small() {
        let mut v = LineView::new(80, 24);
        for _ in 0..10_000 {
            v.output(b"a line of output that scrolls by\r\n");
        }
        assert!(v.recent.len() <= 2 * WINDOW);
        v.output(b"$ ");
        assert_eq!(typed(&mut v, &[b"ls"]), "ls");
    }
}
