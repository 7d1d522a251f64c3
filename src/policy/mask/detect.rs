//! The built-in detectors: what each finds, its literal anchors for the prefilter, and the
//! checks in code (Luhn, IBAN mod-97, SSN ranges) that keep look-alikes such as order
//! numbers, dates and timestamps unmasked.
//!
//! Two shapes. An anchored detector is a regex that only matches near one of its literal
//! anchors (`AKIA`, `ghp_`, `@`, `password`…): a match starts at most `back` bytes before an
//! anchor occurrence, and every byte between its start and that anchor is in `pre`. A digit
//! detector is parsed by hand inside runs of digits and separators.

/// What a built-in detector is made of.
pub(crate) enum Spec {
    Anchored(Anchored),
    Digits(Digits),
}

pub(crate) struct Anchored {
    /// Literals one of which every match contains (case-sensitive).
    pub anchors: &'static [&'static str],
    /// How far before the anchor a match may start.
    pub back: usize,
    /// Bytes allowed between a match's start and its anchor.
    pub pre: fn(u8) -> bool,
    /// ASCII-mode regex; a group named `secret`, when present, is the part replaced.
    pub pattern: &'static str,
    pub max_len: usize,
    /// Extra check on a match: `(haystack, start, end, secret start, secret end)`; it may
    /// look a few bytes past the end.
    pub validate: Option<Validate>,
    /// Grows a match that the regex only opens: `(haystack, end, limit) -> end`.
    pub extend: Option<Extend>,
}

/// `(haystack, start, end, secret start, secret end) -> keep the match`.
pub(crate) type Validate = fn(&[u8], usize, usize, usize, usize) -> bool;

/// `(haystack, end, limit) -> end`.
pub(crate) type Extend = fn(&[u8], usize, usize) -> usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digits {
    Card,
    Iban,
    Ssn,
    Phone,
}

pub(crate) struct Builtin {
    pub name: &'static str,
    pub spec: Spec,
}

/// Longest match of any digit detector.
pub(crate) const DIGITS_MAX: usize = 48;

/// Fewest digits in any digit detector's match: shorter digit runs are skipped at once.
pub(crate) const DIGITS_MIN: usize = 9;

fn ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}
fn scheme(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')
}
fn pem_pre(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b' ' | b'-')
}
fn email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}
fn header_pre(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'-'
}
fn aws_pre(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn none(_: u8) -> bool {
    false
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// The byte after the match does not continue the token.
fn ends_token(hay: &[u8], _s: usize, e: usize, _ms: usize, _me: usize) -> bool {
    hay.get(e).is_none_or(|&b| !token_char(b))
}

fn ends_gitlab(hay: &[u8], _s: usize, e: usize, _ms: usize, _me: usize) -> bool {
    hay.get(e).is_none_or(|&b| !(token_char(b) || b == b'.'))
}

fn ends_aws_secret(hay: &[u8], _s: usize, _e: usize, _ms: usize, me: usize) -> bool {
    hay.get(me)
        .is_none_or(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')))
}

fn valid_email(hay: &[u8], _s: usize, e: usize, _ms: usize, _me: usize) -> bool {
    if hay.get(e).is_some_and(|&b| token_char(b)) {
        return false;
    }
    // `icon@2x.png` is a file name, not an address.
    let tld_start = hay[..e]
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(e, |p| p + 1);
    let tld = hay[tld_start..e].to_ascii_lowercase();
    !matches!(
        tld.as_slice(),
        b"png" | b"jpg" | b"jpeg" | b"gif" | b"svg" | b"webp" | b"ico" | b"bmp"
    )
}

/// A `password=` value that is a placeholder or a flag rather than a secret.
fn valid_assignment(hay: &[u8], _s: usize, _e: usize, ms: usize, me: usize) -> bool {
    let v = &hay[ms..me];
    let v = v
        .strip_prefix(b"\"")
        .or_else(|| v.strip_prefix(b"'"))
        .unwrap_or(v);
    let v = v
        .strip_suffix(b"\"")
        .or_else(|| v.strip_suffix(b"'"))
        .unwrap_or(v);
    let lower = v.to_ascii_lowercase();
    let placeholder = matches!(
        lower.as_slice(),
        b"true" | b"false" | b"null" | b"none" | b"nil" | b"undefined" | b"yes" | b"no"
    ) || v.iter().all(|&b| b == b'*')
        || v.starts_with(b"[REDACTED")
        || v.starts_with(b"$")
        || v.starts_with(b"<");
    !placeholder
}

/// The end of a PEM private key block whose header ends at `e`: after its `-----END …-----`
/// footer, or, when the footer is missing or too far, after the last line that still looks
/// like the block's body (base64 or a `Name: value` header line).
fn pem_end(hay: &[u8], e: usize, limit: usize) -> usize {
    let limit = limit.min(hay.len());
    let body = &hay[e..limit];
    let footer = memchr::memmem::find(body, b"-----END ").and_then(|f| {
        let from = f + 9;
        let close = memchr::memmem::find(&body[from..(from + 64).min(body.len())], b"-----")?;
        let fields = &body[from..from + close];
        if !(fields.ends_with(b"PRIVATE KEY") || fields.ends_with(b"PRIVATE KEY BLOCK")) {
            return None;
        }
        Some((f, from + close + 5))
    });
    let body_ok = |b: &[u8]| {
        b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\r' | b'\n'))
            || b.contains(&b':')
    };
    if let Some((f, end)) = footer {
        if body[..f].split(|&b| b == b'\n').all(body_ok) {
            return e + end;
        }
    }
    // No footer in reach: mask the body lines that follow the header.
    let mut end = e;
    let mut at = e;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !line.ends_with(b"\n") || !body_ok(text) {
            if body_ok(text) && at + line.len() == limit {
                end = limit;
            }
            break;
        }
        at += line.len();
        if !text.is_empty() {
            end = at - 1 - usize::from(line.ends_with(b"\r\n"));
        }
    }
    end.max(e)
}

const PASSWORD_ANCHORS: &[&str] = &[
    "password", "Password", "PASSWORD", "passwd", "Passwd", "PASSWD", "secret", "Secret", "SECRET",
    "token", "Token", "TOKEN", "apikey", "ApiKey", "apiKey", "APIKEY", "api_key", "API_KEY",
    "api-key", "Api-Key", "API-KEY",
];

/// Every built-in detector, in priority order: when two match at the same place, the longer
/// match wins, then the one listed first.
pub(crate) static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "private-key",
        spec: Spec::Anchored(Anchored {
            anchors: &["PRIVATE KEY"],
            back: 48,
            pre: pem_pre,
            pattern: r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            max_len: 16 * 1024 + 128,
            validate: None,
            extend: Some(pem_end),
        }),
    },
    Builtin {
        name: "aws-access-key-id",
        spec: Spec::Anchored(Anchored {
            anchors: &["AKIA", "ASIA"],
            back: 0,
            pre: none,
            pattern: r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            max_len: 20,
            validate: None,
            extend: None,
        }),
    },
    Builtin {
        name: "aws-secret-access-key",
        spec: Spec::Anchored(Anchored {
            anchors: &[
                "secret_access_key",
                "SECRET_ACCESS_KEY",
                "SecretAccessKey",
                "secretAccessKey",
            ],
            back: 4,
            pre: aws_pre,
            pattern: r#"(?i:(?:aws_?)?secret_?access_?key)["']?[ \t]*[:=][ \t]*["']?(?P<secret>[A-Za-z0-9/+]{40})["']?"#,
            max_len: 100,
            validate: Some(ends_aws_secret),
            extend: None,
        }),
    },
    Builtin {
        name: "github-token",
        spec: Spec::Anchored(Anchored {
            anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            back: 0,
            pre: none,
            pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\b",
            max_len: 256,
            validate: None,
            extend: None,
        }),
    },
    Builtin {
        name: "gitlab-token",
        spec: Spec::Anchored(Anchored {
            anchors: &[
                "glpat-",
                "gloas-",
                "gldt-",
                "glrt-",
                "glptt-",
                "glcbt-",
                "glimt-",
                "glsoat-",
                "glffct-",
                "glagent-",
                "GR1348941",
            ],
            back: 0,
            pre: none,
            pattern: r"\b(?:gl(?:pat|oas|dt|rt|ptt|cbt|imt|soat|ffct|agent)-|GR1348941)[A-Za-z0-9_.-]{20,255}",
            max_len: 270,
            validate: Some(ends_gitlab),
            extend: None,
        }),
    },
    Builtin {
        name: "slack-token",
        spec: Spec::Anchored(Anchored {
            anchors: &[
                "xoxb-",
                "xoxp-",
                "xoxa-",
                "xoxr-",
                "xoxs-",
                "xoxo-",
                "xoxe-",
                "xoxe.",
                "xapp-",
                "hooks.slack.com/",
            ],
            back: 0,
            pre: none,
            pattern: r"\bxox[abposre](?:\.xox[abposre])?-[A-Za-z0-9-]{10,250}|\bxapp-[0-9]-[A-Za-z0-9-]{10,250}|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,250}",
            max_len: 300,
            validate: Some(ends_token),
            extend: None,
        }),
    },
    Builtin {
        name: "stripe-key",
        spec: Spec::Anchored(Anchored {
            anchors: &["sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"],
            back: 0,
            pre: none,
            pattern: r"\b(?:[sr]k_(?:live|test)_[A-Za-z0-9]{10,247}|whsec_[A-Za-z0-9]{24,100})\b",
            max_len: 256,
            validate: None,
            extend: None,
        }),
    },
    Builtin {
        name: "google-api-key",
        spec: Spec::Anchored(Anchored {
            anchors: &["AIza"],
            back: 0,
            pre: none,
            pattern: r"\bAIza[0-9A-Za-z_-]{35}",
            max_len: 39,
            validate: Some(ends_token),
            extend: None,
        }),
    },
    Builtin {
        name: "jwt",
        spec: Spec::Anchored(Anchored {
            anchors: &["eyJ"],
            back: 0,
            pre: none,
            pattern: r"\beyJ[A-Za-z0-9_-]{4,2000}\.eyJ[A-Za-z0-9_-]{2,6000}\.[A-Za-z0-9_-]{0,2000}",
            max_len: 10_010,
            validate: Some(ends_token),
            extend: None,
        }),
    },
    Builtin {
        name: "authorization-header",
        spec: Spec::Anchored(Anchored {
            anchors: &["authorization", "Authorization", "AUTHORIZATION"],
            back: 6,
            pre: header_pre,
            pattern: r#"(?i:(?:proxy-)?authorization)["']?[ \t]*[:=][ \t]*["']?(?:\x1b\[[0-9;]*m)*(?:(?i:bearer|basic|token|bot|negotiate|ntlm|apikey)[ \t]+)?(?P<secret>(?i:digest|aws4-hmac-sha256)[ \t]+[^\x00-\x1f\x7f]{1,2048}|[^\x00-\x20\x7f'",;]{4,2048})"#,
            max_len: 2100,
            validate: None,
            extend: None,
        }),
    },
    Builtin {
        name: "url-credentials",
        spec: Spec::Anchored(Anchored {
            anchors: &["://"],
            back: 32,
            pre: scheme,
            pattern: r#"[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\x00-\x20\x7f/:@'"<>\\]{1,128}:(?P<secret>[^\x00-\x20\x7f/@'"<>\\]{1,256})@"#,
            max_len: 430,
            validate: None,
            extend: None,
        }),
    },
    Builtin {
        name: "password-assignment",
        spec: Spec::Anchored(Anchored {
            anchors: PASSWORD_ANCHORS,
            back: 64,
            pre: ident,
            pattern: r#"[A-Za-z0-9_.-]{0,64}?(?i:password|passwd|secret|token|api[_-]?key)(?:[_.-][A-Za-z0-9_.-]{0,40})?["']?(?:\x1b\[[0-9;]*m)*[ \t]*(?::=|=>|[=:])[ \t]*(?:\x1b\[[0-9;]*m)*(?P<secret>"[^"\x00-\x1f]{4,256}"|'[^'\x00-\x1f]{4,256}'|[^\x00-\x20\x7f'"`,;&]{4,256})"#,
            max_len: 400,
            validate: Some(valid_assignment),
            extend: None,
        }),
    },
    Builtin {
        name: "email",
        spec: Spec::Anchored(Anchored {
            anchors: &["@"],
            back: 64,
            pre: email_local,
            pattern: r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}",
            max_len: 64 + 1 + 64 * 9 + 25,
            validate: Some(valid_email),
            extend: None,
        }),
    },
    Builtin {
        name: "payment-card",
        spec: Spec::Digits(Digits::Card),
    },
    Builtin {
        name: "iban",
        spec: Spec::Digits(Digits::Iban),
    },
    Builtin {
        name: "us-ssn",
        spec: Spec::Digits(Digits::Ssn),
    },
    Builtin {
        name: "phone-number",
        spec: Spec::Digits(Digits::Phone),
    },
];

/// The names of the built-in detectors, in priority order.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

// ---- digit detectors ------------------------------------------------------------------

/// Bytes that can appear in a digit detector's match: runs of them around digits are the
/// regions the digit detectors look at.
pub(crate) static NUMERIC: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'+');
        b += 1;
    }
    t
};

fn at(hay: &[u8], i: usize) -> u8 {
    hay.get(i).copied().unwrap_or(0)
}
fn digit(hay: &[u8], i: usize) -> bool {
    at(hay, i).is_ascii_digit()
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
fn num_end(hay: &[u8], e: usize) -> bool {
    let Some(&n) = hay.get(e) else { return true };
    !(word(n) || matches!(n, b'.' | b'-' | b'/' | b':' | b',') && digit(hay, e + 1))
}

impl Digits {
    /// Whether a match can start with this byte.
    pub(crate) fn starts(self, b: u8) -> bool {
        match self {
            Digits::Card | Digits::Ssn => b.is_ascii_digit(),
            Digits::Iban => b.is_ascii_uppercase(),
            Digits::Phone => b.is_ascii_digit() || b == b'+' || b == b'(',
        }
    }

    /// The end of this detector's match starting at `s`, reading no further than `limit`
    /// plus two bytes of look-ahead.
    pub(crate) fn at(self, hay: &[u8], s: usize, limit: usize) -> Option<usize> {
        if !num_start(hay, s) {
            return None;
        }
        let hay = &hay[..(limit + 2).min(hay.len())];
        match self {
            Digits::Card => card(hay, s, limit),
            Digits::Iban => iban(hay, s),
            Digits::Ssn => ssn(hay, s),
            Digits::Phone => phone(hay, s),
        }
    }
}

/// A payment card number: 13–19 digits, whole or in groups split by single spaces or dashes
/// (one kind throughout), with a known network prefix for its length and a valid Luhn check
/// digit. When groups go on past a valid number, the longest valid prefix of whole groups
/// is the card.
fn card(hay: &[u8], s: usize, limit: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut i = s;
    let mut sep = None;
    let mut best = None;
    loop {
        while i < limit && digit(hay, i) {
            if n == 19 {
                return best;
            }
            digits[n] = hay[i] - b'0';
            n += 1;
            i += 1;
        }
        if (13..=19).contains(&n) && num_end(hay, i) && card_valid(&digits[..n]) {
            best = Some(i);
        }
        let c = at(hay, i);
        if matches!(c, b' ' | b'-') && sep.is_none_or(|x| x == c) && digit(hay, i + 1) {
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
fn ssn(hay: &[u8], s: usize) -> Option<usize> {
    let b = hay.get(s..s + 11)?;
    let shape = b.iter().enumerate().all(|(k, &c)| {
        if k == 3 || k == 6 {
            c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !shape || !num_end(hay, s + 11) {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x - b'0'));
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    (area != 0 && area != 666 && area < 900 && group != 0 && serial != 0).then_some(s + 11)
}

/// A phone number: international (`+` and 10–15 digits, in groups split by single spaces,
/// dashes, dots or parentheses), North American (`(212) 555-0187`, `212-555-0187`,
/// `212.555.0187`, `212 555 0187`, optionally after `1-`) or a national number with a trunk
/// zero (`020 7946 0958`, `01 23 45 67 89`: 10–11 digits in at least two groups).
fn phone(hay: &[u8], s: usize) -> Option<usize> {
    match at(hay, s) {
        b'+' => intl(hay, s),
        b'(' => nanp(hay, s),
        b'0' => trunk(hay, s),
        b'1' if matches!(at(hay, s + 1), b'-' | b'.' | b' ') => {
            let e = nanp(hay, s + 2)?;
            (at(hay, s + 5) == at(hay, s + 1) || at(hay, s + 2) == b'(').then_some(e)
        }
        _ => nanp(hay, s),
    }
}

fn intl(hay: &[u8], s: usize) -> Option<usize> {
    if s > 0 && matches!(hay[s - 1], b'+' | b'-') || !matches!(at(hay, s + 1), b'1'..=b'9') {
        return None;
    }
    // `+2024-01-05` is a date, not a number.
    let date = (s + 1..s + 5).all(|k| digit(hay, k))
        && at(hay, s + 5) == b'-'
        && digit(hay, s + 6)
        && digit(hay, s + 7)
        && at(hay, s + 8) == b'-';
    if date {
        return None;
    }
    let mut i = s + 1;
    let mut n = 0;
    let mut best = None;
    loop {
        if digit(hay, i) {
            while digit(hay, i) {
                n += 1;
                i += 1;
            }
        } else if at(hay, i) == b'(' && digit(hay, i + 1) {
            let mut j = i + 1;
            while digit(hay, j) {
                n += 1;
                j += 1;
            }
            if at(hay, j) != b')' {
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
        if n >= 10 && num_end(hay, i) {
            best = Some(i);
        }
        let c = at(hay, i);
        let next = at(hay, i + 1);
        if matches!(c, b' ' | b'-' | b'.') && (next.is_ascii_digit() || next == b'(') {
            i += 1;
        } else if !(c == b'(' && digit(hay, i + 1)) {
            return best;
        }
    }
}

/// North American numbering plan: area code and exchange start with 2–9.
fn nanp(hay: &[u8], s: usize) -> Option<usize> {
    let three =
        |i: usize| matches!(at(hay, i), b'2'..=b'9') && digit(hay, i + 1) && digit(hay, i + 2);
    let (i, sep) = if at(hay, s) == b'(' {
        if !three(s + 1) || at(hay, s + 4) != b')' {
            return None;
        }
        let i = if at(hay, s + 5) == b' ' { s + 6 } else { s + 5 };
        (i, None)
    } else {
        if !three(s) || !matches!(at(hay, s + 3), b'-' | b'.' | b' ') {
            return None;
        }
        (s + 4, Some(at(hay, s + 3)))
    };
    if !three(i) {
        return None;
    }
    let c = at(hay, i + 3);
    let ok_sep = match sep {
        Some(x) => c == x,
        None => matches!(c, b'-' | b'.' | b' '),
    };
    let e = i + 8;
    (ok_sep && (i + 4..e).all(|k| digit(hay, k)) && num_end(hay, e)).then_some(e)
}

/// A national number after a trunk zero: French style, five pairs (`01 23 45 67 89`, with
/// spaces, dots or dashes), or an area code of 3–5 digits and one or two groups of 3–8
/// digits split by spaces or dashes (`020 7946 0958`, `030 1234567`), 10–11 digits in all.
fn trunk(hay: &[u8], s: usize) -> Option<usize> {
    if !matches!(at(hay, s + 1), b'1'..=b'9') {
        return None;
    }
    let groups = |seps: &[u8]| {
        let mut i = s;
        let mut lens = vec![];
        let mut sep = None;
        loop {
            let start = i;
            while digit(hay, i) && i - start < 12 {
                i += 1;
            }
            lens.push(i - start);
            let c = at(hay, i);
            if seps.contains(&c)
                && sep.is_none_or(|x| x == c)
                && digit(hay, i + 1)
                && lens.len() < 6
            {
                sep = Some(c);
                i += 1;
            } else {
                return (lens, i);
            }
        }
    };
    let (lens, e) = groups(b" .-");
    if lens == [2, 2, 2, 2, 2] && num_end(hay, e) {
        return Some(e);
    }
    let (lens, e) = groups(b" -");
    let total: usize = lens.iter().sum();
    let ok = (3..=5).contains(&lens[0])
        && (2..=3).contains(&lens.len())
        && lens[1..].iter().all(|l| (3..=8).contains(l))
        && (10..=11).contains(&total);
    (ok && num_end(hay, e)).then_some(e)
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
fn iban(hay: &[u8], s: usize) -> Option<usize> {
    let cc = hay.get(s..s + 2)?;
    if !digit(hay, s + 2) || !digit(hay, s + 3) {
        return None;
    }
    let len = IBAN_LENGTHS.iter().find(|(c, _)| c[..] == *cc)?.1;
    let spaced = at(hay, s + 4) == b' ';
    let mut chars = [0u8; 34];
    chars[..4].copy_from_slice(&hay[s..s + 4]);
    let mut i = s + 4;
    for (k, slot) in chars.iter_mut().enumerate().take(len).skip(4) {
        if spaced && k % 4 == 0 {
            if at(hay, i) != b' ' {
                return None;
            }
            i += 1;
        }
        let c = at(hay, i);
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return None;
        }
        *slot = c;
        i += 1;
    }
    if hay.get(i).is_some_and(|&b| word(b)) {
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

    #[test]
    fn pem_blocks_end_at_the_footer_or_the_last_body_line() {
        let hdr = b"-----BEGIN RSA PRIVATE KEY-----";
        let text =
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc=\n-----END RSA PRIVATE KEY-----\nafter";
        let e = pem_end(text, hdr.len(), text.len());
        assert_eq!(&text[e..], b"\nafter");
        let text = b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc=\nsome prose here\n";
        let e = pem_end(text, hdr.len(), text.len());
        assert_eq!(&text[e..], b"\nsome prose here\n");
    }
}
