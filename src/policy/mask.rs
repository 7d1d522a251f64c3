//! The simple masker: every mask rule's regex applied to one chunk at a time.
//!
//! Limitation, on purpose for now: a value split across two output chunks is not seen whole,
//! so it can slip through. The streaming engine (holdback window, built-in detectors)
//! replaces this module; its interface stays `mask(&[u8]) -> (bytes, count)`.

use std::borrow::Cow;

use regex::bytes::Regex;

use super::MaskRule;

#[derive(Debug, Clone)]
pub struct Masker {
    rules: Vec<MaskRule>,
}

impl Masker {
    pub fn new(rules: Vec<MaskRule>) -> Masker {
        Masker { rules }
    }

    /// Masks one chunk; returns the masked bytes and how many values were replaced.
    /// Borrows the input when nothing matched.
    pub fn mask<'a>(&self, data: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(data);
        let mut count = 0;
        for rule in &self.rules {
            let n = rule.pattern.find_iter(&out).count();
            if n == 0 {
                continue;
            }
            count += n;
            let replaced = rule
                .pattern
                .replace_all(&out, regex::bytes::NoExpand(rule.replacement.as_bytes()))
                .into_owned();
            out = Cow::Owned(replaced);
        }
        (out, count)
    }
}

fn rule(name: &str, pattern: &str) -> MaskRule {
    MaskRule {
        name: name.to_string(),
        // The built-in patterns are constants covered by the tests below.
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("built-in rule {name}: {e}")),
        targets: vec![],
        replacement: format!("[REDACTED:{name}]"),
    }
}

/// The built-in detectors of the embedded default policy (a first set; the streaming
/// masking engine brings the full list).
pub fn builtin_rules() -> Vec<MaskRule> {
    vec![
        rule(
            "private-key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        ),
        rule("aws-access-key-id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        rule(
            "github-token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        ),
        rule(
            "url-credentials",
            r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
        ),
        rule(
            "password-assignment",
            r#"(?i)\b[a-z0-9_]*(?:password|passwd|secret|token|api[_-]?key)[a-z0-9_]*\s*[=:]\s*[^\s'"]{4,}"#,
        ),
        rule(
            "email",
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(s: &str) -> (String, usize) {
        let m = Masker::new(builtin_rules());
        let (out, n) = m.mask(s.as_bytes());
        (String::from_utf8(out.into_owned()).unwrap(), n)
    }

    #[test]
    fn builtin_rules_hide_secrets() {
        let cases = [
            (
                "key AKIAIOSFODNN7EXAMPLE end",
                "key [REDACTED:aws-access-key-id] end",
            ),
            (
                "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
                "[REDACTED:github-token]",
            ),
            ("PASSWORD=hunter22 ok", "[REDACTED:password-assignment] ok"),
            ("PGPASSWORD=hunter22", "[REDACTED:password-assignment]"),
            ("HOOPX_TOKEN=abcdef123", "[REDACTED:password-assignment]"),
            ("db_password: s3cret!", "[REDACTED:password-assignment]"),
            ("to alice@example.org.", "to [REDACTED:email]."),
        ];
        for (input, want) in cases {
            assert_eq!(mask(input).0, want, "{input}");
        }
        let (out, _) = mask("postgres://app:s3cr3t@db:5432/x");
        assert!(!out.contains("s3cr3t"), "{out}");
        let (out, n) =
            mask("-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\n");
        assert_eq!((out.as_str(), n), ("[REDACTED:private-key]\n", 1));
    }

    #[test]
    fn replacements_are_literal() {
        let rule = MaskRule {
            name: "x".into(),
            pattern: Regex::new("(sec)ret").unwrap(),
            targets: vec![],
            replacement: "$1-${0}".into(),
        };
        let (out, n) = Masker::new(vec![rule]).mask(b"a secret b");
        assert_eq!((&out[..], n), (&b"a $1-${0} b"[..], 1));
    }

    #[test]
    fn clean_text_is_borrowed_and_untouched() {
        let m = Masker::new(builtin_rules());
        let text = b" id | name  \n----+-------\n  1 | order 2024-01-05 v1.2.3 \n";
        let (out, n) = m.mask(text);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(n, 0);
    }
}
