//! The text a terminal shows for a run of bytes, which is what the detectors match.
//!
//! A tool can interrupt a value with escape sequences that change nothing on the line it
//! writes: colours (`grep --color` highlighting part of a key), erase-to-end-of-line, mode
//! switches, character-set selection. A line editor echoes a corrected typo as the typo, a
//! backspace and the fix. The view leaves such sequences out and applies each backspace
//! (and, for typed input, each DEL) to the character before it, so `AKIA\e[31mIOSF…` and
//! `AKIAX\bIOSF…` are matched as `AKIAIOSF…`. Every view byte remembers the input byte it
//! came from; a match is replaced in the input, where the replacement keeps escape
//! sequences whole (see [`super::text::replace_into`]).
//!
//! Other sequences (cursor moves, clearing the screen) stay in the view: they separate what
//! is on either side of them.

use super::text::ESC;

const BS: u8 = 0x08;
const DEL: u8 = 0x7f;

/// Which bytes erase the character before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Erase {
    /// Output: a backspace moves back over the character (an echoed correction writes
    /// the new one over it).
    Backspace,
    /// Typed input: backspace and DEL both delete the character before the cursor.
    BackspaceAndDel,
}

/// Whether `b` has anything the view would change.
#[inline]
pub(crate) fn needed(b: &[u8], erase: Erase) -> bool {
    match erase {
        Erase::Backspace => memchr::memchr2(ESC, BS, b).is_some(),
        Erase::BackspaceAndDel => memchr::memchr3(ESC, BS, DEL, b).is_some(),
    }
}

/// The view of some input bytes: `text`, and for each of its bytes the input index it came
/// from (plus one entry past the end: the input's length).
#[derive(Debug, Default)]
pub(crate) struct View {
    pub text: Vec<u8>,
    pub map: Vec<usize>,
}

impl View {
    /// Builds the view of `raw` (the buffers are reused). Unless `fin`, an escape sequence
    /// cut by the end of `raw` ends the view: it is shown or not once it is complete.
    pub fn build(&mut self, raw: &[u8], erase: Erase, fin: bool) {
        self.text.clear();
        self.map.clear();
        self.text.reserve(raw.len());
        self.map.reserve(raw.len() + 1);
        let mut i = 0;
        while i < raw.len() {
            // Copy the plain run up to the next byte of interest in one go.
            let next = match erase {
                Erase::Backspace => memchr::memchr2(ESC, BS, &raw[i..]),
                Erase::BackspaceAndDel => memchr::memchr3(ESC, BS, DEL, &raw[i..]),
            }
            .map_or(raw.len(), |k| i + k);
            self.text.extend_from_slice(&raw[i..next]);
            self.map.extend(i..next);
            i = next;
            if i >= raw.len() {
                break;
            }
            let b = raw[i];
            if b == ESC {
                match invisible(raw, i) {
                    Some(Some(end)) => {
                        i = end;
                        continue;
                    }
                    None if !fin => {
                        self.map.push(i);
                        return;
                    }
                    _ => {}
                }
                self.push(b, i);
                i += 1;
            } else if self.erase_last() {
                i += 1;
            } else {
                self.push(b, i);
                i += 1;
            }
        }
        self.map.push(raw.len());
    }

    fn push(&mut self, b: u8, at: usize) {
        self.text.push(b);
        self.map.push(at);
    }

    /// Drops the last character shown, if there is one on this line.
    fn erase_last(&mut self) -> bool {
        let Some(&last) = self.text.last() else {
            return false;
        };
        if last < 0x20 || last == DEL {
            return false;
        }
        // A whole UTF-8 character: continuation bytes, then their lead.
        while let Some(&b) = self.text.last() {
            self.text.pop();
            self.map.pop();
            if b & 0xc0 != 0x80 {
                break;
            }
        }
        true
    }

    /// The first view index whose input index is at least `raw`.
    pub fn index_of(&self, raw: usize) -> usize {
        self.map[..self.text.len()].partition_point(|&m| m < raw)
    }

    /// The input index where view byte `v` starts (`v` may be the view's length).
    pub fn start(&self, v: usize) -> usize {
        self.map[v]
    }

    /// The input index just past view byte `v - 1` (`v > 0`).
    pub fn end(&self, v: usize) -> usize {
        self.map[v - 1] + 1
    }
}

/// For the escape sequence at `q`: `Some(Some(end))` when it shows nothing and moves
/// nothing (SGR colours, erase to end of line, set/reset mode, character-set selection),
/// `Some(None)` for every other sequence, `None` when `raw` ends before it is known.
fn invisible(raw: &[u8], q: usize) -> Option<Option<usize>> {
    match raw.get(q + 1)? {
        b'(' | b')' => raw.get(q + 2).map(|_| Some(q + 3)),
        b'[' => {
            let limit = q + super::text::ESC_MAX;
            for (i, &b) in raw.iter().enumerate().take(limit).skip(q + 2) {
                match b {
                    b'm' | b'K' | b'h' | b'l' => return Some(Some(i + 1)),
                    0x20..=0x3f => {}
                    _ => return Some(None),
                }
            }
            (raw.len() >= limit).then_some(None)
        }
        _ => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(raw: &[u8], erase: Erase) -> (String, Vec<usize>) {
        let mut v = View::default();
        v.build(raw, erase, true);
        (String::from_utf8_lossy(&v.text).into_owned(), v.map)
    }

    #[test]
    fn colours_and_erases_are_left_out() {
        let raw = b"AKIA\x1b[01;31m\x1b[KIOSF\x1b[m\x1b[KODNN";
        let (t, map) = view(raw, Erase::Backspace);
        assert_eq!(t, "AKIAIOSFODNN");
        assert_eq!(map[4], 15);
        assert_eq!(*map.last().unwrap(), raw.len());
        // Cursor moves separate; an unfinished sequence stays until it is complete.
        assert_eq!(view(b"ab\x1b[2Ccd", Erase::Backspace).0, "ab\x1b[2Ccd");
        assert_eq!(view(b"ab\x1b[3", Erase::Backspace).0, "ab\x1b[3");
        let mut v = View::default();
        v.build(b"ab\x1b[3", Erase::Backspace, false);
        assert_eq!((&v.text[..], &v.map[..]), (&b"ab"[..], &[0, 1, 2][..]));
        assert_eq!(view(b"a\x1b(Bb", Erase::Backspace).0, "ab");
    }

    #[test]
    fn backspaces_erase_the_character_before() {
        assert_eq!(view(b"AKIAX\x08IOSF", Erase::Backspace).0, "AKIAIOSF");
        assert_eq!(view(b"ab\x08 \x08c", Erase::Backspace).0, "ac");
        assert_eq!(view("aé\x08x".as_bytes(), Erase::Backspace).0, "ax");
        // Nothing to erase on this line: the backspace stays and separates.
        assert_eq!(view(b"a\n\x08b", Erase::Backspace).0, "a\n\x08b");
        // DEL erases only in typed input.
        assert_eq!(view(b"abX\x7fc", Erase::BackspaceAndDel).0, "abc");
        assert_eq!(view(b"abX\x7fc", Erase::Backspace).0, "abX\x7fc");
    }

    #[test]
    fn indices_map_both_ways() {
        let mut v = View::default();
        v.build(b"ab\x1b[31mcd", Erase::Backspace, true);
        assert_eq!(v.index_of(2), 2);
        assert_eq!(v.index_of(7), 2);
        assert_eq!(v.index_of(8), 3);
        assert_eq!(v.start(2), 7);
        assert_eq!(v.end(2), 2);
        assert_eq!(v.start(4), 9);
    }
}
