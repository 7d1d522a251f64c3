//! Terminal-text helpers of the mask engine: ANSI escape sequences, UTF-8 boundaries and the
//! two replacement styles. Masking must never break a terminal: an escape sequence is kept
//! whole and verbatim, a multi-byte character is replaced whole or not at all.

/// The ESC byte that opens every ANSI escape sequence.
pub(crate) const ESC: u8 = 0x1b;

/// Longest escape sequence looked at; a longer unterminated CSI counts as ended there.
pub(crate) const ESC_MAX: usize = 64;

/// End (exclusive) of the escape sequence that opens at `q` (`hay[q] == ESC`).
///
/// CSI (`ESC [` … final byte) is taken whole. Other sequences count as their two-byte
/// introducer (`ESC ]` of OSC, `ESC P` of DCS, `ESC \` of ST, `ESC 7`, …): the payload of an
/// OSC or DCS string is text that may be masked (it can carry a URL with credentials).
/// `None` when the buffer ends before the sequence does.
pub(crate) fn esc_end(hay: &[u8], q: usize) -> Option<usize> {
    debug_assert_eq!(hay.get(q), Some(&ESC));
    let next = *hay.get(q + 1)?;
    if next != b'[' {
        return Some(q + 2);
    }
    let limit = (q + ESC_MAX).min(hay.len());
    for (i, &b) in hay.iter().enumerate().take(limit).skip(q + 2) {
        match b {
            0x40..=0x7e => return Some(i + 1),
            // Parameter and intermediate bytes.
            0x20..=0x3f => {}
            // Anything else (a control byte, another ESC) cuts the sequence short.
            _ => return Some(i),
        }
    }
    if q + ESC_MAX <= hay.len() {
        Some(q + ESC_MAX)
    } else {
        None
    }
}

/// The ESC that opens a sequence covering `s` (`q < s < end`), when there is one. Only the
/// nearest ESC before `s` can: no sequence contains an ESC.
pub(crate) fn escape_around(hay: &[u8], s: usize) -> Option<usize> {
    let from = s.saturating_sub(ESC_MAX);
    let q = from + memchr::memrchr(ESC, &hay[from..s])?;
    match esc_end(hay, q) {
        Some(end) if end <= s => None,
        _ => Some(q),
    }
}

/// Whether `s` lies inside an escape sequence (after its ESC): no match may start there.
pub(crate) fn inside_escape(hay: &[u8], s: usize) -> bool {
    escape_around(hay, s).is_some()
}

/// A UTF-8 continuation byte.
#[inline]
pub(crate) fn is_cont(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// Moves an emit boundary `h` back so it splits neither an escape sequence nor a UTF-8
/// character, but not before `floor`.
pub(crate) fn safe_boundary(hay: &[u8], mut h: usize, floor: usize) -> usize {
    if h > hay.len() || h <= floor {
        return h;
    }
    if let Some(q) = escape_around(hay, h) {
        if q >= floor {
            h = q;
        }
    }
    // The byte before any continuation bytes ending at `h` leads a character; move `h` to
    // it when the character reaches past `h`.
    let mut lead = h;
    while lead > floor && h - lead < 3 && is_cont(hay[lead - 1]) {
        lead -= 1;
    }
    if lead > floor {
        let l = lead - 1;
        let need = match hay[l] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if l + need > h {
            h = l;
        }
    }
    h
}

/// Bit masks of 64 bytes (bit k is byte k): digits, separators (space `-` `.` `+`),
/// parentheses and capital letters.
#[inline]
pub(crate) fn classes(w: &[u8; 64]) -> (u64, u64, u64, u64) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::*;
        let (mut d, mut j, mut p, mut u) = (0u64, 0u64, 0u64, 0u64);
        for k in 0..4 {
            // SAFETY: SSE2 is part of x86_64 (checked by the cfg above); the load reads 16
            // bytes inside `w`.
            unsafe {
                let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast::<__m128i>());
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                let within = |lo: u8, span: u8| {
                    let x = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
                    _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(span as i8)), x)
                };
                let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (16 * k);
                d |= bits(within(b'0', 9));
                u |= bits(within(b'A', 25));
                j |= bits(_mm_or_si128(
                    _mm_or_si128(eq(b' '), eq(b'-')),
                    _mm_or_si128(eq(b'.'), eq(b'+')),
                ));
                p |= bits(_mm_or_si128(eq(b'('), eq(b')')));
            }
        }
        (d, j, p, u)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        let (mut d, mut j, mut p, mut u) = (0u64, 0u64, 0u64, 0u64);
        for (k, &b) in w.iter().enumerate() {
            let bit = 1u64 << k;
            if b.is_ascii_digit() {
                d |= bit;
            } else if b.is_ascii_uppercase() {
                u |= bit;
            } else if matches!(b, b' ' | b'-' | b'.' | b'+') {
                j |= bit;
            } else if matches!(b, b'(' | b')') {
                p |= bit;
            }
        }
        (d, j, p, u)
    }
}

/// How a masked value is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replace {
    /// Fixed text, `[REDACTED:<rule>]` by default.
    Label(String),
    /// One `*` per display column, so psql table columns stay aligned. Tabs, line breaks
    /// and other control characters are kept.
    SameWidth,
}

/// Writes the replacement of `text` to `out`. Escape sequences inside `text` are kept
/// verbatim (after the label, or in place for same-width), so colours and cursor moves
/// survive.
pub(crate) fn replace_into(out: &mut Vec<u8>, text: &[u8], how: &Replace) {
    if let Replace::Label(label) = how {
        out.extend_from_slice(label.as_bytes());
    }
    continue_into(out, text, how);
}

/// Writes the replacement of `text` when it continues a value whose replacement was
/// already written: for a label only the escape sequences (the label stands for the whole
/// value), for same-width the stars.
pub(crate) fn continue_into(out: &mut Vec<u8>, text: &[u8], how: &Replace) {
    match how {
        Replace::Label(_) => {
            let mut i = 0;
            while let Some(off) = memchr::memchr(ESC, &text[i..]) {
                let q = i + off;
                let end = esc_end(text, q).unwrap_or(text.len());
                out.extend_from_slice(&text[q..end]);
                i = end;
            }
        }
        Replace::SameWidth => {
            let mut i = 0;
            while i < text.len() {
                let b = text[i];
                if b == ESC {
                    let end = esc_end(text, i).unwrap_or(text.len());
                    out.extend_from_slice(&text[i..end]);
                    i = end;
                } else if b < 0x20 || b == 0x7f {
                    // Tabs, line breaks and backspaces keep the columns.
                    out.push(b);
                    i += 1;
                } else if b < 0x80 {
                    out.push(b'*');
                    i += 1;
                } else {
                    let (ch, len) = decode(&text[i..]);
                    let width = ch.map_or(1, char_width);
                    out.extend(std::iter::repeat_n(b'*', width));
                    i += len;
                }
            }
        }
    }
}

/// Decodes one UTF-8 character at the start of `b` (non-empty, first byte ≥ 0x80); an
/// invalid sequence counts as one byte.
fn decode(b: &[u8]) -> (Option<char>, usize) {
    let len = match b[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (None, 1),
    };
    match b.get(..len).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => (s.chars().next(), len),
        None => (None, 1),
    }
}

/// Display columns of a character: 2 for East Asian wide and fullwidth characters and
/// emoji, 0 for combining marks, else 1. A close approximation of `wcwidth`, enough to keep
/// columns aligned in the common cases.
fn char_width(c: char) -> usize {
    let c = c as u32;
    match c {
        0x0300..=0x036f | 0x200b..=0x200f | 0xfe00..=0xfe0f => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_measured() {
        let s = b"a\x1b[1;31mred\x1b[0m\x1b]0;title\x07";
        assert_eq!(esc_end(s, 1), Some(8));
        assert_eq!(esc_end(s, 11), Some(15));
        assert_eq!(esc_end(s, 15), Some(17));
        assert_eq!(esc_end(b"\x1b[1;3", 0), None);
        assert_eq!(esc_end(b"\x1b", 0), None);
        assert!(inside_escape(s, 3));
        assert!(!inside_escape(s, 8));
        assert!(!inside_escape(s, 17), "an OSC payload is text");
    }

    #[test]
    fn boundaries_split_neither_escapes_nor_characters() {
        let s = "ab\x1b[31mcd".as_bytes();
        assert_eq!(safe_boundary(s, 5, 0), 2);
        assert_eq!(safe_boundary(s, 7, 0), 7);
        let s = "aé".as_bytes();
        assert_eq!(safe_boundary(s, 2, 0), 1);
        let s = "a€b".as_bytes();
        assert_eq!(safe_boundary(s, 3, 0), 1);
        assert_eq!(safe_boundary(s, 3, 2), 3, "never before the floor");
        assert_eq!(
            safe_boundary(&s[..3], 3, 0),
            1,
            "an incomplete character at the end"
        );
        assert_eq!(
            safe_boundary(b"ab\x1b[3", 5, 0),
            2,
            "an open escape at the end"
        );
    }

    #[test]
    fn classes_mark_each_byte() {
        let mut w = [b'x'; 64];
        w[..12].copy_from_slice(b"(12) A-9.+ Z");
        w[63] = b'7';
        let (d, j, p, u) = classes(&w);
        assert_eq!(d, 1 << 1 | 1 << 2 | 1 << 7 | 1 << 63);
        assert_eq!(j, 1 << 4 | 1 << 6 | 1 << 8 | 1 << 9 | 1 << 10);
        assert_eq!(p, 1 | 1 << 3);
        assert_eq!(u, 1 << 5 | 1 << 11);
    }

    #[test]
    fn replacements_keep_escapes_and_width() {
        let mut out = Vec::new();
        replace_into(&mut out, "pä\x1b[0m日x\n".as_bytes(), &Replace::SameWidth);
        assert_eq!(out, b"**\x1b[0m***\n");
        out.clear();
        replace_into(
            &mut out,
            b"hunter2\x1b[0m",
            &Replace::Label("[REDACTED:x]".into()),
        );
        assert_eq!(out, b"[REDACTED:x]\x1b[0m");
    }
}
