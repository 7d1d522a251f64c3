//! The built-in detectors: what each finds, its literal anchors for the prefilter, and the
//! checks in code (Luhn, IBAN mod-97, SSN ranges) that keep look-alikes such as order
//! numbers, dates and timestamps unmasked.
//!
//! Two shapes. An anchored detector is a regex that only matches near one of its literal
//! anchors (`AKIA`, `ghp_`, `@`, `password`…): a match starts at most `back` bytes before an
//! anchor occurrence, and every byte between its start and that anchor is in `pre`. A digit
//! detector is parsed by hand inside runs of digits and separators.

pub(crate) use super::digits::Digits;

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
    /// Grows a match that the regex only opens: `(haystack, end, limit) -> (end, final)`.
    pub extend: Option<Extend>,
}

/// `(haystack, start, end, secret start, secret end) -> keep the match`.
pub(crate) type Validate = fn(&[u8], usize, usize, usize, usize) -> bool;

/// `(haystack, end, limit) -> (end, final)`: `final` when no byte past `haystack` could
/// change the end.
pub(crate) type Extend = fn(&[u8], usize, usize) -> (usize, bool);

pub(crate) struct Builtin {
    pub name: &'static str,
    pub spec: Spec,
}

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
/// like the block's body (base64 or a `Name: value` header line). Final once the footer is
/// in `hay`, or `limit` cuts the block.
fn pem_end(hay: &[u8], e: usize, limit: usize) -> (usize, bool) {
    let cut = limit < hay.len();
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
            return (e + end, true);
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
    (end.max(e), cut)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_end_at_the_footer_or_the_last_body_line() {
        let hdr = b"-----BEGIN RSA PRIVATE KEY-----";
        let text =
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc=\n-----END RSA PRIVATE KEY-----\nafter";
        let (e, done) = pem_end(text, hdr.len(), text.len());
        assert_eq!((&text[e..], done), (&b"\nafter"[..], true));
        let text = b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc=\nsome prose here\n";
        let (e, done) = pem_end(text, hdr.len(), text.len());
        assert_eq!((&text[e..], done), (&b"\nsome prose here\n"[..], false));
    }
}
