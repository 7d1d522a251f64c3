//! The digit detectors (payment cards, IBANs, US SSNs, phone numbers), parsed by hand
//! inside runs of digits and separators, with the checks in code (Luhn, network prefixes,
//! IBAN mod-97, SSN ranges) that keep order numbers, dates and versions unmasked.
//!
//! Every parser reads its input through [`Hay`], which notes whether it looked at or past
//! the end of the bytes at hand. A parse that never did is decided: no byte still to come
//! can change it. One that did may still change, so a stream holds it back. The parsers
//! fail as soon as a prefix can no longer become a match (a card that starts with 1, a
//! phone number without its separator), so an ordinary number is decided at once.

use std::cell::Cell;

/// Longest match of any digit detector.
pub(crate) const DIGITS_MAX: usize = 48;

/// Fewest digits in any digit detector's match: shorter digit runs are skipped at once.
pub(crate) const DIGITS_MIN: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digits {
    Card,
    Iban,
    Ssn,
    Phone,
}

/// The bytes a parser reads: a window of the input, and whether the window ends where the
/// input at hand ends (then a read past it is a read of bytes still to come).
pub(crate) struct Hay<'a> {
    b: &'a [u8],
    at_end: bool,
    touched: Cell<bool>,
}

impl<'a> Hay<'a> {
    fn new(b: &'a [u8], at_end: bool) -> Hay<'a> {
        Hay {
            b,
            at_end,
            touched: Cell::new(false),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<u8> {
        let c = self.b.get(i).copied();
        if c.is_none() && self.at_end {
            self.touched.set(true);
        }
        c
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.get(i).unwrap_or(0)
    }

    #[inline]
    fn digit(&self, i: usize) -> bool {
        self.at(i).is_ascii_digit()
    }
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A number may start at `s`: not inside a word, and not after a digit and a joining
/// punctuation mark (`1.2`, `10-4`, `1,000`, `12:30`).
pub(crate) fn num_start(hay: &[u8], s: usize) -> bool {
    if s == 0 {
        return true;
    }
    let p = hay[s - 1];
    !(word(p)
        || matches!(p, b'.' | b'-' | b'/' | b':' | b',') && s >= 2 && hay[s - 2].is_ascii_digit())
}

/// A number may end at `e`: not inside a word, and not before a joining punctuation mark and
/// a digit.
fn num_end(h: &Hay, e: usize) -> bool {
    let Some(n) = h.get(e) else { return true };
    !(word(n) || matches!(n, b'.' | b'-' | b'/' | b':' | b',') && h.digit(e + 1))
}

impl Digits {
    /// Digits and letters a match still being written has before they count as part of a
    /// value (see [`super::MaskStream`]): fewer may go out in clear when a stream must let
    /// its tail go. At most six (what a receipt shows of a card) and under half the
    /// shortest match.
    pub(crate) fn partial(self) -> usize {
        match self {
            Digits::Card | Digits::Iban => 6,
            Digits::Phone => 5,
            Digits::Ssn => 4,
        }
    }

    /// A quick look at the first bytes: `true` when no match can start at `s` whatever
    /// follows (it reads only bytes at hand). [`decide`](Self::decide) then says the same,
    /// slower.
    #[inline]
    pub(crate) fn rejects(self, hay: &[u8], s: usize) -> bool {
        let not = |i: usize, ok: fn(u8) -> bool| hay.get(s + i).is_some_and(|&c| !ok(c));
        let digit = |c: u8| c.is_ascii_digit();
        let sep = |c: u8| matches!(c, b'-' | b'.' | b' ');
        match (self, hay[s]) {
            (Digits::Card, c) => !matches!(c, b'2'..=b'6'),
            (Digits::Ssn, _) => {
                not(0, digit) || not(1, digit) || not(2, digit) || not(3, |c| c == b'-')
            }
            (Digits::Phone, b'+' | b'(') => false,
            (Digits::Phone, b'0') => not(1, |c| matches!(c, b'1'..=b'9')),
            (Digits::Phone, b'1') => not(1, sep),
            (Digits::Phone, b'2'..=b'9') => not(1, digit) || not(2, digit) || not(3, sep),
            (Digits::Phone, _) => true,
            (Digits::Iban, c) => !c.is_ascii_uppercase(),
        }
    }

    /// The end of this detector's match starting at `s`, reading no further than `limit`
    /// plus two bytes of look-ahead; bytes past the end of `hay` count as absent.
    #[cfg(test)]
    pub(crate) fn at(self, hay: &[u8], s: usize, limit: usize) -> Option<usize> {
        self.decide(hay, s, limit).0
    }

    /// [`at`](Self::at), and whether the answer may still change when bytes follow `hay`.
    pub(crate) fn decide(self, hay: &[u8], s: usize, limit: usize) -> (Option<usize>, bool) {
        if !num_start(hay, s) {
            return (None, false);
        }
        let cut = (limit + 2).min(hay.len());
        let h = Hay::new(&hay[..cut], cut == hay.len());
        let end = match self {
            Digits::Card => card(&h, s),
            Digits::Iban => iban(&h, s),
            Digits::Ssn => ssn(&h, s),
            Digits::Phone => phone(&h, s),
        };
        (end, h.touched.get())
    }
}

/// A payment card number: 13–19 digits, whole or in groups split by single spaces or dashes
/// (one kind throughout), with a known network prefix for its length and a valid Luhn check
/// digit. When groups go on past a valid number, the longest valid prefix of whole groups
/// is the card.
fn card(h: &Hay, s: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut i = s;
    let mut sep = None;
    let mut best = None;
    loop {
        while h.digit(i) {
            if n == 19 {
                return best;
            }
            digits[n] = h.at(i) - b'0';
            n += 1;
            i += 1;
            if n <= 4 && !card_prefix(&digits[..n]) {
                return best;
            }
        }
        if (13..=19).contains(&n) && num_end(h, i) && card_valid(&digits[..n]) {
            best = Some(i);
        }
        let c = h.at(i);
        if matches!(c, b' ' | b'-') && sep.is_none_or(|x| x == c) && h.digit(i + 1) {
            sep = Some(c);
            i += 1;
        } else {
            return best;
        }
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &x)| {
            let x = u32::from(x);
            if k % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// Whether the first (up to four) digits can begin a card of some network.
fn card_prefix(d: &[u8]) -> bool {
    let p = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    match (d[0], d.len()) {
        (2..=6, 1) => true,
        (2, 2 | 3) => (22..=27).contains(&p(2)),
        (2, _) => (2221..=2720).contains(&p(4)),
        (3, 2) => matches!(p(2), 30 | 34..=39),
        (3, _) => match p(2) {
            30 => (300..=305).contains(&p(3)),
            35 if d.len() == 4 => (3528..=3589).contains(&p(4)),
            34..=39 => true,
            _ => false,
        },
        (4..=6, _) => true,
        _ => false,
    }
}

fn card_valid(d: &[u8]) -> bool {
    let p = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    let network = match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&p(4)) && len == 16,
        5 => match p(2) {
            51..=55 => len == 16,
            50 | 56..=59 => (13..=19).contains(&len),
            _ => false,
        },
        3 => match p(2) {
            34 | 37 => len == 15,
            36 | 38 | 39 => (14..=19).contains(&len),
            30 => (300..=305).contains(&p(3)) && (14..=19).contains(&len),
            35 => (3528..=3589).contains(&p(4)) && (16..=19).contains(&len),
            _ => false,
        },
        6 => (13..=19).contains(&len),
        _ => false,
    };
    network && luhn(d) && d.iter().any(|&x| x != d[0])
}

/// A US social security number, `AAA-GG-SSSS` (dashed form only: nine bare digits are too
/// often something else), with an area other than 000, 666 and 900–999, a group other than
/// 00 and a serial other than 0000.
fn ssn(h: &Hay, s: usize) -> Option<usize> {
    let mut num = 0u32;
    for k in 0..11 {
        let c = h.at(s + k);
        if k == 3 || k == 6 {
            if c != b'-' {
                return None;
            }
            let ok = if k == 3 {
                num != 0 && num != 666 && num < 900
            } else {
                num % 100 != 0
            };
            if !ok {
                return None;
            }
            continue;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        num = num * 10 + u32::from(c - b'0');
    }
    (num % 10_000 != 0 && num_end(h, s + 11)).then_some(s + 11)
}

/// A phone number: international (`+` and 10–15 digits, in groups split by single spaces,
/// dashes, dots or parentheses), North American (`(212) 555-0187`, `212-555-0187`,
/// `212.555.0187`, `212 555 0187`, optionally after `1-`) or a national number with a trunk
/// zero (`020 7946 0958`, `01 23 45 67 89`: 10–11 digits in at least two groups).
fn phone(h: &Hay, s: usize) -> Option<usize> {
    match h.at(s) {
        b'+' => intl(h, s),
        b'(' => nanp(h, s),
        b'0' => trunk(h, s),
        b'1' if matches!(h.at(s + 1), b'-' | b'.' | b' ') => {
            let e = nanp(h, s + 2)?;
            (h.at(s + 5) == h.at(s + 1) || h.at(s + 2) == b'(').then_some(e)
        }
        _ => nanp(h, s),
    }
}

fn intl(h: &Hay, s: usize) -> Option<usize> {
    if s > 0 && matches!(h.at(s - 1), b'+' | b'-') || !matches!(h.at(s + 1), b'1'..=b'9') {
        return None;
    }
    // `+2024-01-05` is a date, not a number.
    let date = (s + 1..s + 5).all(|k| h.digit(k))
        && h.at(s + 5) == b'-'
        && h.digit(s + 6)
        && h.digit(s + 7)
        && h.at(s + 8) == b'-';
    if date {
        return None;
    }
    let mut i = s + 1;
    let mut n = 0;
    let mut best = None;
    loop {
        if h.digit(i) {
            while h.digit(i) {
                n += 1;
                i += 1;
            }
        } else if h.at(i) == b'(' && h.digit(i + 1) {
            let mut j = i + 1;
            while h.digit(j) {
                n += 1;
                j += 1;
            }
            if h.at(j) != b')' {
                return best;
            }
            i = j + 1;
        } else {
            return best;
        }
        if n > 15 {
            return best;
        }
        // Groups may go on into other numbers: the longest run of whole groups that makes
        // a valid length is the number.
        if n >= 10 && num_end(h, i) {
            best = Some(i);
        }
        let c = h.at(i);
        let next = h.at(i + 1);
        if matches!(c, b' ' | b'-' | b'.') && (next.is_ascii_digit() || next == b'(') {
            i += 1;
        } else if !(c == b'(' && h.digit(i + 1)) {
            return best;
        }
    }
}

/// North American numbering plan: area code and exchange start with 2–9.
fn nanp(h: &Hay, s: usize) -> Option<usize> {
    let three = |i: usize| matches!(h.at(i), b'2'..=b'9') && h.digit(i + 1) && h.digit(i + 2);
    let (i, sep) = if h.at(s) == b'(' {
        if !three(s + 1) || h.at(s + 4) != b')' {
            return None;
        }
        let i = if h.at(s + 5) == b' ' { s + 6 } else { s + 5 };
        (i, None)
    } else {
        if !three(s) || !matches!(h.at(s + 3), b'-' | b'.' | b' ') {
            return None;
        }
        (s + 4, Some(h.at(s + 3)))
    };
    if !three(i) {
        return None;
    }
    let c = h.at(i + 3);
    let ok_sep = match sep {
        Some(x) => c == x,
        None => matches!(c, b'-' | b'.' | b' '),
    };
    let e = i + 8;
    (ok_sep && (i + 4..e).all(|k| h.digit(k)) && num_end(h, e)).then_some(e)
}

/// A national number after a trunk zero: French style, five pairs (`01 23 45 67 89`, with
/// spaces, dots or dashes), or an area code of 3–5 digits and one or two groups of 3–8
/// digits split by spaces or dashes (`020 7946 0958`, `030 1234567`), 10–11 digits in all.
fn trunk(h: &Hay, s: usize) -> Option<usize> {
    if !matches!(h.at(s + 1), b'1'..=b'9') {
        return None;
    }
    let groups = |seps: &[u8]| {
        let mut i = s;
        let mut lens = [0usize; 6];
        let mut k = 0;
        let mut sep = None;
        loop {
            let start = i;
            while h.digit(i) && i - start < 12 {
                i += 1;
            }
            lens[k] = i - start;
            k += 1;
            let c = h.at(i);
            if seps.contains(&c) && sep.is_none_or(|x| x == c) && h.digit(i + 1) && k < 6 {
                sep = Some(c);
                i += 1;
            } else {
                return (lens, k, i);
            }
        }
    };
    let (lens, k, e) = groups(b" .-");
    if lens[..k] == [2, 2, 2, 2, 2] && num_end(h, e) {
        return Some(e);
    }
    let (lens, k, e) = groups(b" -");
    let lens = &lens[..k];
    let total: usize = lens.iter().sum();
    let ok = (3..=5).contains(&lens[0])
        && (2..=3).contains(&lens.len())
        && lens[1..].iter().all(|l| (3..=8).contains(l))
        && (10..=11).contains(&total);
    (ok && num_end(h, e)).then_some(e)
}

/// IBAN lengths by country code.
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// An IBAN: country code, two check digits and the country's length of letters and digits,
/// compact or in groups of four split by single spaces, with a valid mod-97 checksum.
fn iban(h: &Hay, s: usize) -> Option<usize> {
    if !h.at(s).is_ascii_uppercase() || !h.at(s + 1).is_ascii_uppercase() {
        return None;
    }
    let cc = [h.at(s), h.at(s + 1)];
    let len = IBAN_LENGTHS.iter().find(|(c, _)| **c == cc)?.1;
    if !h.digit(s + 2) || !h.digit(s + 3) {
        return None;
    }
    let spaced = h.at(s + 4) == b' ';
    let mut chars = [0u8; 34];
    chars[..2].copy_from_slice(&cc);
    chars[2] = h.at(s + 2);
    chars[3] = h.at(s + 3);
    let mut i = s + 4;
    for (k, slot) in chars.iter_mut().enumerate().take(len).skip(4) {
        if spaced && k % 4 == 0 {
            if h.at(i) != b' ' {
                return None;
            }
            i += 1;
        }
        let c = h.at(i);
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return None;
        }
        *slot = c;
        i += 1;
    }
    if h.get(i).is_some_and(word) {
        return None;
    }
    // Mod-97 over the BBAN followed by the country code and check digits, letters as 10–35.
    let mut rem = 0u32;
    for &c in chars[4..len].iter().chain(&chars[..4]) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97;
        }
    }
    (rem == 1).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(d: Digits, s: &str) -> Option<&str> {
        let e = d.at(s.as_bytes(), 0, s.len().min(DIGITS_MAX))?;
        Some(&s[..e])
    }

    #[test]
    fn cards_need_luhn_prefix_and_length() {
        for good in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5500 0000 0000 0004",
            "3782 822463 10005",
            "6011111111111117",
            "2223000048400011",
        ] {
            assert_eq!(m(Digits::Card, good), Some(good), "{good}");
        }
        assert_eq!(
            m(Digits::Card, "4111 1111 1111 1111 2024"),
            Some("4111 1111 1111 1111")
        );
        for bad in [
            "4111111111111112",
            "1234567890123452",
            "4111-1111 1111-1111",
            "0000000000000000",
            "41111111111111111111111",
            "4111111111111111x",
            "9111111111111111",
        ] {
            assert_eq!(m(Digits::Card, bad), None, "{bad}");
        }
    }

    #[test]
    fn ibans_need_country_length_and_checksum() {
        for good in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 32",
            "NO9386011117947",
        ] {
            assert_eq!(m(Digits::Iban, good), Some(good), "{good}");
        }
        for bad in [
            "DE89370400440532013001",
            "XX89370400440532013000",
            "DE8937040044",
        ] {
            assert_eq!(m(Digits::Iban, bad), None, "{bad}");
        }
    }

    #[test]
    fn ssns_need_dashes_and_valid_ranges() {
        assert_eq!(m(Digits::Ssn, "123-45-6789"), Some("123-45-6789"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123456789",
            "123-45-67890",
        ] {
            assert_eq!(m(Digits::Ssn, bad), None, "{bad}");
        }
    }

    #[test]
    fn phones_in_international_and_national_forms() {
        for good in [
            "+14155552671",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "+49 30 1234567",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "1-415-555-2671",
            "020 7946 0958",
            "01 23 45 67 89",
        ] {
            assert_eq!(m(Digits::Phone, good), Some(good), "{good}");
        }
        for bad in [
            "+2024-01-05 12",
            "+1234",
            "123-456-7890",
            "2024-01-05",
            "192.168.100.200",
            "415-555-26710",
            "415-555.2671",
            "0 12 34",
        ] {
            assert_eq!(m(Digits::Phone, bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod reject_tests {
    use super::*;

    /// A quick rejection never contradicts the full parse, at any cut of the input.
    #[test]
    fn quick_rejections_agree_with_the_parsers() {
        let samples = [
            "4111 1111 1111 1111",
            "123-45-6789",
            "+1 (415) 555-2671",
            "(415) 555-2671",
            "415-555-2671",
            "1-415-555-2671",
            "020 7946 0958",
            "01 23 45 67 89",
            "DE89 3704 0044 0532 0130 00",
            "10.123.45.67",
            "2024-01-05",
            "5500-0000-0000-0004",
            "0 12",
            "1.415.555.2671",
        ];
        for text in samples {
            for cut in 1..=text.len() {
                let hay = &text.as_bytes()[..cut];
                for d in [Digits::Card, Digits::Iban, Digits::Ssn, Digits::Phone] {
                    if d.rejects(hay, 0) {
                        let (end, open) = d.decide(hay, 0, hay.len().min(DIGITS_MAX));
                        assert_eq!((end, open), (None, false), "{d:?} {:?}", &text[..cut]);
                    }
                }
            }
        }
    }
}
