//! The input gate: decides which input bytes reach the tool. Pure state machine, no I/O.
//!
//! Pipe mode: input is released one whole line at a time, after the line was checked.
//! PTY mode: keystrokes are released at once (so the tool can echo them), while the gate
//! keeps its own copy of the line being typed; at Enter the line is checked and the Enter is
//! released only if the line is allowed. A denied line gets Ctrl-E Ctrl-U (end of line, erase
//! line) instead, so the tool never runs it. An Enter inside an unfinished escape sequence is
//! withheld the same way (rule `pty-escape-enter`): the tool's view of the line is unknown.
//! The gate's own reconstruction is simple (backspace, Ctrl-U, Ctrl-W, escape sequences
//! skipped); a line it denies is withheld at once. Otherwise the Enter is handed on as
//! [`GateAction::Submit`]: the gateway then reads the line the user really submitted off the
//! terminal ([`super::screen::LineView`]: history recall and in-line editing included),
//! checks that too, and only then releases the Enter.
//!
//! A line that a review rule matches is handed on as [`GateAction::Review`] (pipe mode) or
//! in the [`GateAction::Submit`] (PTY mode): it waits for a human while later input queues
//! behind it.

use bytes::{Bytes, BytesMut};

use crate::proto::Mode;

/// Largest line the gate holds before it refuses, so a line can never grow without bound.
pub const MAX_LINE: usize = 1024 * 1024;

const CTRL_C: u8 = 0x03;
/// readline's operate-and-get-next: submits the line and recalls the next history entry.
const CTRL_O: u8 = 0x0f;
/// Control keys the stock line editors bind to moving, recalling, completing or erasing,
/// never to submitting: Ctrl-A B E F G, Tab, Ctrl-K L N P R S T X Y, Ctrl-] and Ctrl-_.
/// Any other control key may submit (an inputrc can bind it to accept-line): the line typed
/// so far is checked before it goes out.
const HARMLESS_CONTROL: &[u8] = &[
    0x01, 0x02, 0x05, 0x06, 0x07, 0x09, 0x0b, 0x0c, 0x0e, 0x10, 0x12, 0x13, 0x14, 0x18, 0x19, 0x1d,
    0x1f,
];
/// The rule a withheld submit-other-than-Enter key reports.
pub const SUBMIT_KEY_RULE: &str = "pty-submit-key";
const CTRL_D: u8 = 0x04;
const CTRL_V: u8 = 0x16;
const BS: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const CTRL_W: u8 = 0x17;
const ESC: u8 = 0x1b;
/// What a withheld Enter becomes: Ctrl-E (end of line) then Ctrl-U (erase to its start),
/// which clears the line in readline-style editors and in a terminal's canonical mode.
const ERASE_LINE: &[u8] = b"\x05\x15";
const DEL: u8 = 0x7f;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAction {
    /// Release these bytes to the tool.
    Deliver(Bytes),
    /// This line was withheld; `rule` decided.
    Denied { rule: String, line: Bytes },
    /// Pipe mode: this line waits for a review under `rule`; nothing after it is released
    /// before it is decided.
    Review { rule: String, line: Bytes },
    /// PTY mode: Enter was pressed on a line the keystrokes do not deny. `enter` is what
    /// submits it; `review` is set when the typed line needs a review; `certain` when the
    /// line was typed with keys the gate follows (its copy is the tool's line).
    Submit {
        line: Bytes,
        enter: Bytes,
        review: Option<String>,
        certain: bool,
    },
}

/// What the policy says about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Allow,
    Deny(String),
    Review(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an input line is longer than {MAX_LINE} bytes; hoopx cannot check it, so it was not sent")]
pub struct LineTooLong;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    Start,
    Csi,
}

#[derive(Debug)]
pub struct InputGate {
    mode: Mode,
    line: BytesMut,
    esc: Esc,
    /// The previous byte was Ctrl-V (insert the next one literally).
    literal_next: bool,
    /// The line has keys the gate cannot follow (escape sequences such as arrows, control
    /// keys such as Ctrl-A, Ctrl-R or Tab): its copy may differ from the tool's line.
    uncertain: bool,
}

impl InputGate {
    pub fn new(mode: Mode) -> InputGate {
        InputGate {
            mode,
            line: BytesMut::new(),
            esc: Esc::None,
            literal_next: false,
            uncertain: false,
        }
    }

    /// Feeds input; `check` says what the policy thinks of a line.
    pub fn feed(
        &mut self,
        data: &[u8],
        check: impl Fn(&[u8]) -> Check,
    ) -> Result<Vec<GateAction>, LineTooLong> {
        match self.mode {
            Mode::Pipe => self.feed_pipe(data, check),
            Mode::Pty => self.feed_pty(data, check),
        }
    }

    /// End of input: the last, unterminated line is checked and released.
    pub fn finish(&mut self, check: impl Fn(&[u8]) -> Check) -> Vec<GateAction> {
        if self.mode == Mode::Pty || self.line.is_empty() {
            self.line.clear();
            return vec![];
        }
        let line = self.line.split().freeze();
        vec![action(check(&line), line)]
    }

    fn feed_pipe(
        &mut self,
        data: &[u8],
        check: impl Fn(&[u8]) -> Check,
    ) -> Result<Vec<GateAction>, LineTooLong> {
        let mut out: Vec<GateAction> = Vec::new();
        // Consecutive allowed lines are released together, in one buffer.
        let mut allowed = BytesMut::new();
        let mut rest = data;
        while let Some(nl) = memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(nl + 1);
            rest = tail;
            let held = !self.line.is_empty();
            if held {
                self.line.extend_from_slice(head);
            }
            let line: &[u8] = if held { &self.line } else { head };
            if line.len() > MAX_LINE {
                return Err(LineTooLong);
            }
            let verdict = check(line);
            if verdict == Check::Allow {
                allowed.extend_from_slice(line);
            } else {
                if !allowed.is_empty() {
                    out.push(GateAction::Deliver(allowed.split().freeze()));
                }
                out.push(action(verdict, Bytes::copy_from_slice(line)));
            }
            if held {
                self.line.clear();
            }
        }
        if !allowed.is_empty() {
            out.push(GateAction::Deliver(allowed.freeze()));
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(out)
    }

    fn feed_pty(
        &mut self,
        data: &[u8],
        check: impl Fn(&[u8]) -> Check,
    ) -> Result<Vec<GateAction>, LineTooLong> {
        let mut out = Vec::new();
        let mut pending = BytesMut::new();
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            i += 1;
            let enter = b == b'\r' || b == b'\n';
            // Alt+Enter arrives as ESC CR in one read: drop the ESC, keep the Enter (checked).
            if b == ESC && self.esc == Esc::None && matches!(data.get(i), Some(b'\r' | b'\n')) {
                continue;
            }
            if self.literal_next {
                self.literal_next = false;
                if enter {
                    // Ctrl-V Enter puts a line break inside the tool's line without submitting
                    // it: the gate cannot follow that line, so it is not released.
                    self.withhold(&mut pending, &mut out, "pty-escape-enter".into());
                    continue;
                }
                if self.line.len() >= MAX_LINE {
                    return Err(LineTooLong);
                }
                self.line.extend_from_slice(&[b]);
                pending.extend_from_slice(&[b]);
                continue;
            }
            if self.esc != Esc::None {
                if enter {
                    // An Enter inside an escape sequence whose start the tool already has: the
                    // tool's idea of the line is unknowable, so the line is not released.
                    self.esc = Esc::None;
                    self.withhold(&mut pending, &mut out, "pty-escape-enter".into());
                    continue;
                }
                self.esc = match (self.esc, b) {
                    (Esc::Start, b'[' | b'O') => Esc::Csi,
                    (Esc::Csi, 0x40..=0x7e) | (Esc::Start, _) => Esc::None,
                    (state, _) => state,
                };
                pending.extend_from_slice(&[b]);
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    let review = match check(&self.line) {
                        Check::Deny(rule) => {
                            self.withhold(&mut pending, &mut out, rule);
                            continue;
                        }
                        Check::Review(rule) => Some(rule),
                        Check::Allow => None,
                    };
                    if !pending.is_empty() {
                        out.push(GateAction::Deliver(pending.split().freeze()));
                    }
                    out.push(GateAction::Submit {
                        line: self.line.split().freeze(),
                        enter: Bytes::copy_from_slice(&[b]),
                        review,
                        certain: !std::mem::take(&mut self.uncertain),
                    });
                    continue;
                }
                ESC => {
                    self.esc = Esc::Start;
                    self.uncertain = true;
                }
                CTRL_V => self.literal_next = true,
                CTRL_O => {
                    // Submits the line and puts the next history entry in its place: what
                    // runs next is a line nobody typed. Never passed on.
                    self.withhold(&mut pending, &mut out, SUBMIT_KEY_RULE.into());
                    continue;
                }
                c if c < 0x20
                    && !HARMLESS_CONTROL.contains(&c)
                    && !matches!(c, CTRL_D | BS | CTRL_U | CTRL_C | CTRL_W) =>
                {
                    // A key that may be bound to submitting: the line must pass as if it
                    // were an Enter, and a line the gate cannot follow is not risked.
                    let verdict = if self.uncertain || self.line.is_empty() {
                        if self.uncertain {
                            Check::Deny(SUBMIT_KEY_RULE.into())
                        } else {
                            Check::Allow
                        }
                    } else {
                        check(&self.line)
                    };
                    if let Check::Deny(rule) | Check::Review(rule) = verdict {
                        self.withhold(&mut pending, &mut out, rule);
                        continue;
                    }
                    self.uncertain = true;
                    self.line.extend_from_slice(&[b]);
                }
                CTRL_D if !self.line.is_empty() => {
                    // In a terminal's canonical mode Ctrl-D hands the partial line to the tool
                    // without an Enter: check it like one. The gate keeps the line either way
                    // (an editor may just delete a character), so a later Enter checks it all.
                    // A line that would need a review cannot wait here (there is no Enter to
                    // hold): it is withheld.
                    if let Check::Deny(rule) | Check::Review(rule) = check(&self.line) {
                        self.withhold(&mut pending, &mut out, rule);
                        continue;
                    }
                }
                DEL | BS => {
                    // Drop one character, including its UTF-8 continuation bytes.
                    while let Some(last) = self.line.last().copied() {
                        self.line.truncate(self.line.len() - 1);
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                }
                CTRL_U | CTRL_C => {
                    self.line.clear();
                    self.uncertain = false;
                }
                CTRL_W => {
                    let trimmed = self.line.iter().rposition(|c| !c.is_ascii_whitespace());
                    let keep = trimmed
                        .and_then(|end| {
                            self.line[..end]
                                .iter()
                                .rposition(|c| c.is_ascii_whitespace())
                        })
                        .map_or(0, |p| p + 1);
                    self.line.truncate(keep);
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    // A control key (Ctrl-A, Ctrl-R, Tab, …) may move, recall or complete:
                    // the gate's copy cannot follow it.
                    if b < 0x20 {
                        self.uncertain = true;
                    }
                    self.line.extend_from_slice(&[b]);
                }
            }
            pending.extend_from_slice(&[b]);
        }
        if !pending.is_empty() {
            out.push(GateAction::Deliver(pending.freeze()));
        }
        Ok(out)
    }
}

impl InputGate {
    /// Withholds the line being typed: what was typed so far goes out followed by
    /// [`ERASE_LINE`] instead of the Enter, and the denial is reported.
    fn withhold(&mut self, pending: &mut BytesMut, out: &mut Vec<GateAction>, rule: String) {
        let line = self.line.split().freeze();
        self.uncertain = false;
        pending.extend_from_slice(ERASE_LINE);
        out.push(GateAction::Deliver(pending.split().freeze()));
        out.push(GateAction::Denied { rule, line });
    }
}

/// What a whole line gets in pipe mode, given its verdict.
fn action(verdict: Check, line: Bytes) -> GateAction {
    match verdict {
        Check::Allow => GateAction::Deliver(line),
        Check::Deny(rule) => GateAction::Denied { rule, line },
        Check::Review(rule) => GateAction::Review { rule, line },
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_rule(line: &[u8]) -> Check {
        let l = String::from_utf8_lossy(line).to_lowercase();
        if l.contains("drop table") {
            Check::Deny("no-drop".into())
        } else if l.contains("delete from") {
            Check::Review("deletes".into())
        } else {
            Check::Allow
        }
    }

    /// What reaches the tool when every submitted PTY line is allowed.
    fn delivered(actions: &[GateAction]) -> Vec<u8> {
        actions
            .iter()
            .filter_map(|a| match a {
                GateAction::Deliver(d) => Some(d.to_vec()),
                GateAction::Submit { enter, .. } => Some(enter.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn pipe_mode_hands_on_lines_that_need_a_review() {
        let mut g = InputGate::new(Mode::Pipe);
        let a = g
            .feed(
                b"select 1;
delete from t;
select 2;
",
                drop_rule,
            )
            .unwrap();
        assert_eq!(a.len(), 3);
        assert!(
            matches!(&a[1], GateAction::Review { rule, line } if rule == "deletes" && &line[..] == b"delete from t;\n")
        );
    }

    #[test]
    fn pty_mode_submits_the_typed_line_with_its_enter() {
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"delete from t;\r", drop_rule).unwrap();
        assert_eq!(a.len(), 2);
        assert!(
            matches!(&a[1], GateAction::Submit { line, enter, review: Some(r), certain: true } if &line[..] == b"delete from t;" && &enter[..] == b"\r" && r == "deletes")
        );
        let a = g.feed(b"\x1b[A\r", drop_rule).unwrap();
        assert!(matches!(&a[1], GateAction::Submit { line, review: None, .. } if line.is_empty()));
        // History recall, Ctrl-A, Tab: the typed copy is not the tool's line.
        for keys in [&b"\x1b[A\r"[..], b"\x01drop \r", b"dro\t\r"] {
            let a = g.feed(keys, drop_rule).unwrap();
            assert!(
                matches!(a.last(), Some(GateAction::Submit { certain: false, .. })),
                "{keys:?}: {a:?}"
            );
        }
        // Certainty starts over with the next line.
        let a = g.feed(b"select 1;\r", drop_rule).unwrap();
        assert!(matches!(
            a.last(),
            Some(GateAction::Submit { certain: true, .. })
        ));
    }

    #[test]
    fn keys_that_submit_other_than_enter_cannot_slip_a_line_past_the_rules() {
        let denied = |a: &[GateAction], rule: &str| {
            a.iter()
                .any(|x| matches!(x, GateAction::Denied { rule: r, .. } if r == rule))
        };
        // Ctrl-O (operate-and-get-next) is never passed on, whatever the line.
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"select 1;\x0f", drop_rule).unwrap();
        assert!(denied(&a, SUBMIT_KEY_RULE), "{a:?}");
        assert!(!delivered(&a).contains(&0x0f));
        assert!(delivered(&a).ends_with(ERASE_LINE));
        // Ctrl-J submits like Enter: checked like Enter.
        let a = g.feed(b"drop table t;\n", drop_rule).unwrap();
        assert!(denied(&a, "no-drop"), "{a:?}");
        // A key an inputrc may bind to accept-line (Ctrl-Q, Ctrl-Z, Ctrl-\\): the typed line
        // is checked before the key goes out.
        for key in [0x11u8, 0x1a, 0x1c] {
            let mut keys = b"drop table t;".to_vec();
            keys.push(key);
            let a = g.feed(&keys, drop_rule).unwrap();
            assert!(denied(&a, "no-drop"), "{key:#x}: {a:?}");
            assert!(!delivered(&a).contains(&key));
        }
        // After keys the gate cannot follow (history recall), such a key is not risked.
        let a = g.feed(b"\x1b[A\x11", drop_rule).unwrap();
        assert!(denied(&a, SUBMIT_KEY_RULE), "{a:?}");
        // An allowed line lets it through; the stock editing keys pass as before.
        let a = g.feed(b"select 1;\x11", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"select 1;\x11");
        let a = g.feed(b"\r\x01\x05ls\t\r", drop_rule).unwrap();
        assert!(
            a.iter().all(|x| !matches!(x, GateAction::Denied { .. })),
            "{a:?}"
        );
    }

    #[test]
    fn pipe_mode_holds_partial_lines_until_newline() {
        let mut g = InputGate::new(Mode::Pipe);
        assert!(g.feed(b"select ", drop_rule).unwrap().is_empty());
        let a = g.feed(b"1;\nselect 2;\nsel", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"select 1;\nselect 2;\n");
        assert_eq!(a.len(), 1, "consecutive lines coalesce");
        let a = g.finish(drop_rule);
        assert_eq!(delivered(&a), b"sel");
    }

    #[test]
    fn pipe_mode_withholds_denied_lines_split_across_chunks() {
        let mut g = InputGate::new(Mode::Pipe);
        let mut all = g.feed(b"select 1;\nDROP TA", drop_rule).unwrap();
        all.extend(g.feed(b"BLE users;\nselect 3;\n", drop_rule).unwrap());
        assert_eq!(delivered(&all), b"select 1;\nselect 3;\n");
        assert!(all.iter().any(|a| matches!(a, GateAction::Denied { rule, line } if rule == "no-drop" && &line[..] == b"DROP TABLE users;\n")));
        let mut g = InputGate::new(Mode::Pipe);
        g.feed(b"drop table x;", drop_rule).unwrap();
        let fin = g.finish(drop_rule);
        assert!(
            delivered(&fin).is_empty(),
            "an unterminated last line is checked too"
        );
    }

    #[test]
    fn pty_mode_echoes_keys_and_erases_a_denied_line() {
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"drop tabel", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"drop tabel");
        // Fix the typo with backspaces, then press Enter.
        let a = g.feed(b"\x7f\x7fle t;\r", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"\x7f\x7fle t;\x05\x15");
        assert!(matches!(&a[1], GateAction::Denied { line, .. } if &line[..] == b"drop table t;"));
        let a = g.feed(b"select 1;\r", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"select 1;\r");
    }

    #[test]
    fn pty_mode_skips_escape_sequences_and_handles_kill_keys() {
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"drop \x1b[Dtable x\r", drop_rule).unwrap();
        assert!(a.iter().any(|x| matches!(x, GateAction::Denied { .. })));
        let a = g.feed(b"drop table\x15select 1\r", drop_rule).unwrap();
        assert!(!a.iter().any(|x| matches!(x, GateAction::Denied { .. })));
        let a = g
            .feed(b"drop table x\x17\x17\x17select\r", drop_rule)
            .unwrap();
        assert!(!a.iter().any(|x| matches!(x, GateAction::Denied { .. })));
    }

    #[test]
    fn an_enter_inside_an_escape_sequence_is_still_checked() {
        for keys in [
            &b"drop table t;\x1b\r"[..],
            b"drop table t;\x1b[\r",
            b"drop table t;\x1b[1\n",
        ] {
            let mut g = InputGate::new(Mode::Pty);
            let a = g.feed(keys, drop_rule).unwrap();
            assert!(
                a.iter().any(|x| matches!(x, GateAction::Denied { .. })),
                "{keys:?}"
            );
            assert!(
                !delivered(&a).contains(&b'\r') && !delivered(&a).contains(&b'\n'),
                "{keys:?}"
            );
        }
    }

    #[test]
    fn ctrl_v_enter_and_ctrl_d_cannot_smuggle_a_line() {
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"drop \x16\rtable t;\r", drop_rule).unwrap();
        assert!(a
            .iter()
            .any(|x| matches!(x, GateAction::Denied { rule, .. } if rule == "pty-escape-enter")));
        // The smuggled Enter became an erase; "table t;" alone is a harmless line.
        assert_eq!(delivered(&a), b"drop \x16\x05\x15table t;\r");

        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"drop table t;\x04", drop_rule).unwrap();
        assert!(a.iter().any(|x| matches!(x, GateAction::Denied { .. })));
        assert!(!delivered(&a).contains(&CTRL_D));
        // An allowed Ctrl-D passes, and the line stays under watch until Enter.
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"drop\x04", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"drop\x04");
        let a = g.feed(b" table t;\r", drop_rule).unwrap();
        assert!(a.iter().any(|x| matches!(x, GateAction::Denied { .. })));
        // Ctrl-V before an ordinary key just inserts it.
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"select \x16\x011;\r", drop_rule).unwrap();
        assert!(delivered(&a).ends_with(b"\r"));
    }

    #[test]
    fn alt_enter_on_an_allowed_line_is_an_enter() {
        let mut g = InputGate::new(Mode::Pty);
        let a = g.feed(b"select 1;\x1b\r", drop_rule).unwrap();
        assert_eq!(delivered(&a), b"select 1;\r");
    }

    #[test]
    fn lines_are_bounded() {
        let mut g = InputGate::new(Mode::Pipe);
        let big = vec![b'a'; MAX_LINE + 1];
        assert_eq!(g.feed(&big, drop_rule).unwrap_err(), LineTooLong);
    }
}
