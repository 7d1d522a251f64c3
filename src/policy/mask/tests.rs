use super::view::{Erase, View};
use super::*;

fn builtins() -> Masker {
    Masker::new(builtin_rules())
}

fn mask_with(m: &Masker, s: &str) -> (String, usize) {
    let (out, n) = m.mask(s.as_bytes());
    (String::from_utf8_lossy(&out).into_owned(), n)
}

fn mask(s: &str) -> String {
    mask_with(&builtins(), s).0
}

/// Streams `input` cut at every `step`-th byte, then flushes.
fn stream_in_steps(m: &Masker, input: &[u8], step: usize) -> Vec<u8> {
    let mut st = m.stream();
    let mut out = Vec::new();
    for c in input.chunks(step) {
        out.extend_from_slice(&st.push(c));
    }
    out.extend_from_slice(&st.flush());
    assert_eq!(st.held(), 0);
    out
}

/// Checks that every chunking into two and several parts gives the one-shot result.
fn assert_stream_equivalent(m: &Masker, input: &str) {
    let input = input.as_bytes();
    let (whole, _) = m.mask(input);
    for cut in 0..=input.len() {
        let mut st = m.stream();
        let mut out = st.push(&input[..cut]).into_owned();
        if cut == 44 {
            eprintln!(
                "first {:?} held {}",
                String::from_utf8_lossy(&out),
                st.held()
            );
        }
        out.extend_from_slice(&st.push(&input[cut..]));
        if cut == 44 {
            eprintln!(
                "second {:?} held {}",
                String::from_utf8_lossy(&out),
                st.held()
            );
        }
        out.extend_from_slice(&st.flush());
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole),
            "cut at {cut}"
        );
    }
    for step in [1, 2, 3, 7, 64] {
        let out = stream_in_steps(m, input, step);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole),
            "step {step}"
        );
    }
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
        // Assignments keep the name and mask the value.
        (
            "PASSWORD=hunter22 ok",
            "PASSWORD=[REDACTED:password-assignment] ok",
        ),
        (
            "PGPASSWORD=hunter22",
            "PGPASSWORD=[REDACTED:password-assignment]",
        ),
        (
            "HOOPX_TOKEN=abcdef123",
            "HOOPX_TOKEN=[REDACTED:password-assignment]",
        ),
        (
            "db_password: s3cret!",
            "db_password: [REDACTED:password-assignment]",
        ),
        ("to alice@example.org.", "to [REDACTED:email]."),
    ];
    for (input, want) in cases {
        assert_eq!(mask(input), want, "{input}");
    }
    let out = mask("postgres://app:s3cr3t@db:5432/x");
    assert_eq!(out, "postgres://app:[REDACTED:url-credentials]@db:5432/x");
    let (out, n) = mask_with(
        &builtins(),
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\n",
    );
    assert_eq!((out.as_str(), n), ("[REDACTED:private-key]\n", 1));
}

/// Each detector: values it must mask and look-alikes it must leave alone.
#[test]
fn every_detector_has_true_and_false_positives() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "private-key",
            &[
                "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
                "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\nMHcCAQEEI\n-----END EC PRIVATE KEY-----",
            ],
            &["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "the private key is in the vault"],
        ),
        (
            "aws-access-key-id",
            &["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"],
            &["AKIAIOSFODNN7EXAMPL", "XAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLEX"],
        ),
        (
            "aws-secret-access-key",
            &[
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            ],
            &["aws_secret_access_key = short"],
        ),
        (
            "github-token",
            &[
                "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
                "gho_16C7e42F292c6912E7710c838347Ae178B4a",
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP",
            ],
            &["ghp_short", "ghp_0123456789abcdefghijklmnopqrstuvwxy"],
        ),
        (
            "gitlab-token",
            &["glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-AbCdEf1234567890_-Zz", "GR1348941abcdefghijklmnopqrst"],
            &["glpat-short", "myglpat-xxxxxxxxxxxxxxxxxxxx"],
        ),
        (
            "slack-token",
            &[
                "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
                "xoxp-1234-5678-abcdefghij",
                "xapp-1-A0123456789-1234567890123-abcdef",
            ],
            &["xoxb-short", "xoxq-1234567890-abcdef"],
        ),
        (
            "stripe-key",
            &["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "rk_test_51H8abcdefghijklmn", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            &["sk_live_", "pk_live_4eC39HqLyjWDarjtT1zdp7dc"],
        ),
        (
            "google-api-key",
            &["AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"],
            &["AIzaSyDaGmWKa4JsXZ", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQeX"],
        ),
        (
            "jwt",
            &["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"],
            &["eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.notajwt.x"],
        ),
        (
            "authorization-header",
            &["Authorization: Bearer abc.def.ghi123", "authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: token1234"],
            &["Authorization: x", "no authorization here"],
        ),
        (
            "url-credentials",
            &["postgres://app:s3cr3t@db:5432/x", "https://user:p%40ss@example.com/"],
            &["https://example.com/a:b@c", "postgres://db:5432/x", "https://user@example.com/"],
        ),
        (
            "password-assignment",
            &["password=hunter22", "export PGPASSWORD='s3cr3t pass'", "\"api_key\": \"abcd1234\"", "client_secret: xyzw1234", "?token=abcdef&x=1"],
            &["password: true", "max_tokens=4096 ", "tokenizer: bert", "password=abc", "Password for user postgres:", "password=$PGPASS", "passwordless: yes"],
        ),
        (
            "email",
            &["alice@example.org", "bob.smith+tag@mail.example.co.uk"],
            &["user@localhost", "pkg@1.2.3", "icon@2x.png", "@types/node"],
        ),
        (
            "payment-card",
            &["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
            &["4111 1111 1111 1112", "order 1234567890123456", "2024-01-05 12:34:56"],
        ),
        (
            "iban",
            &["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"],
            &["DE89 3704 0044 0532 0130 01", "ID12345678901234567890"],
        ),
        (
            "us-ssn",
            &["123-45-6789"],
            &["000-12-3456", "123-45-67890", "2023-45-6789"],
        ),
        (
            "phone-number",
            &["+1 (415) 555-2671", "+442079460958", "(415) 555-2671", "415-555-2671", "020 7946 0958"],
            &["192.168.100.200", "v1.415.555", "2024-01-05", "12:34:56.789", "ticket 4155552671"],
        ),
    ];
    for (name, good, bad) in cases {
        let m = Masker::new(vec![builtin_rule(
            detect::names().find(|n| n == name).unwrap(),
        )]);
        for g in *good {
            let text = format!("x {g} y");
            let (out, n) = mask_with(&m, &text);
            assert_eq!(n, 1, "{name} should mask {g:?}: {out}");
            assert!(out.contains(&format!("[REDACTED:{name}]")), "{name}: {out}");
            assert_stream_equivalent(&m, &text);
        }
        for b in *bad {
            let text = format!("x {b} y");
            let (out, n) = mask_with(&m, &text);
            assert_eq!(
                (out.as_str(), n),
                (text.as_str(), 0),
                "{name} should leave {b:?}"
            );
        }
    }
}

#[test]
fn look_alikes_stay_untouched() {
    let text = "\
 id |   order_no    |      created_at        | version |                 commit                   |                 uuid                 |     ip
----+---------------+------------------------+---------+------------------------------------------+--------------------------------------+---------------
  1 | ORD-2024-0001 | 2024-01-05 12:34:56+00 | 1.2.3   | 4b825dc642cb6eb9a060e54bf8d69288fbee4904 | 550e8400-e29b-41d4-a716-446655440000 | 192.168.10.254
  2 | 100023456789  | 2023-12-31T23:59:59Z   | v10.0.1 | e83c5163316f89bfbde7d9ab23ca2e25604af290 | 123e4567-e89b-12d3-a456-426614174000 | 10.0.0.1
(2 rows)

[2024-01-05T12:34:56.789Z] INFO request_id=8f14e45f took 12.5ms size=1048576 port 5432 pid 12345
Total: 1,234,567.89 EUR; 3 of 10 done, 99.9% at 14:02:03, build #4567, ISBN 978-3-16-148410-0
";
    let (out, n) = mask_with(&builtins(), text);
    assert_eq!((out.as_str(), n), (text, 0));
    let (out, _) = builtins().mask(text.as_bytes());
    assert!(matches!(out, Cow::Borrowed(_)));
}

#[test]
fn split_secrets_are_masked_at_every_cut() {
    let m = builtins();
    for input in [
        "mail alice@example.org now and AKIAIOSFODNN7EXAMPLE\n",
        "card 4111 1111 1111 1111 exp\r\npassword=hunter22\n",
        "url postgres://app:s3cr3t@db:5432/x ok",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nafter",
        "\x1b[31mpassword=hunter22\x1b[0m done",
        "héllo wörld bob@example.com 日本語 +44 20 7946 0958",
    ] {
        assert_stream_equivalent(&m, input);
        let out = stream_in_steps(&m, input.as_bytes(), 1);
        for secret in [
            "alice@",
            "IOSFODNN7",
            "4111",
            "hunter22",
            "s3cr3t",
            "MIIE",
            "7946",
        ] {
            assert!(
                !String::from_utf8_lossy(&out).contains(secret),
                "{secret} in {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}

#[test]
fn clean_chunks_are_borrowed_and_tails_held_only_when_needed() {
    let m = builtins();
    let mut st = m.stream();
    let chunk = b"select 1;\n id | name\n----+------\n  1 | abc\n";
    let out = st.push(chunk);
    assert!(matches!(out, Cow::Borrowed(_)));
    assert_eq!(&out[..], chunk);
    assert_eq!(st.held(), 0);
    // A tail that could begin an address is held until more comes or a flush.
    let out = st.push(b"contact bob");
    assert_eq!(&out[..], b"contact ");
    assert_eq!(st.held(), 3);
    let out = st.push(b"@example.com\n");
    assert_eq!(&out[..], b"[REDACTED:email]\n");
    assert_eq!(st.held(), 0);
    assert_eq!(st.counts().get("email"), Some(&1));
    let out = st.push(b"prompt> bob");
    assert_eq!(&out[..], b"prompt> ");
    assert_eq!(st.flush(), b"bob");
    assert_eq!(st.held(), 0);
}

#[test]
fn escapes_and_characters_are_never_split() {
    let m = builtins();
    let mut st = m.stream();
    let out = st.push(b"ok \x1b[3");
    assert_eq!(&out[..], b"ok ");
    let out = st.push(b"1mred\x1b[0m\n");
    assert_eq!(&out[..], b"\x1b[31mred\x1b[0m\n");
    let text = "日本".as_bytes();
    let out = st.push(&text[..4]);
    assert_eq!(&out[..], &text[..3]);
    let out = st.push(&text[4..]);
    assert_eq!(&out[..], &text[3..]);
    // A masked value inside colours keeps the colours.
    let (out, n) = m.mask(b"\x1b[1mpassword=\x1b[31mhunter22\x1b[0m\n");
    assert_eq!(n, 1);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "\x1b[1mpassword=\x1b[31m[REDACTED:password-assignment]\x1b[0m\n"
    );
}

#[test]
fn same_width_keeps_table_columns() {
    let mut rule = builtin_rule("email");
    rule.replace = Replace::SameWidth;
    let m = Masker::new(vec![rule]);
    let table = " id |       email       \n----+-------------------\n  1 | bob@example.com\n";
    let (out, n) = mask_with(&m, table);
    assert_eq!(n, 1);
    assert_eq!(
        out,
        " id |       email       \n----+-------------------\n  1 | ***************\n"
    );
}

#[test]
fn custom_regexes_literals_and_target_secrets() {
    let custom = MaskRule {
        name: "ticket".into(),
        matcher: Matcher::Regex {
            pattern: r"\bTKT-[0-9]{4,8}\b".into(),
            regex: Arc::new(compile_regex(r"\bTKT-[0-9]{4,8}\b", 1 << 20).unwrap()),
            max_len: 16,
        },
        targets: vec![],
        replace: Replace::Label("<ticket>".into()),
    };
    let lits = MaskRule {
        name: "codename".into(),
        matcher: Matcher::Literals(vec!["BLUEBIRD".into(), "BLUEBIRD-2".into()]),
        targets: vec![],
        replace: Replace::SameWidth,
    };
    let m = Masker::new(vec![custom, lits]).with_secrets(["hunter22", "abc", "s3cr3t-pw"]);
    assert_eq!(m.rule_names()[0], TARGET_SECRET);
    let input = "see TKT-12345 and BLUEBIRD-2, BLUEBIRD; pw s3cr3t-pw and hunter22 but abc stays";
    let (out, n) = mask_with(&m, input);
    assert_eq!(
        out,
        "see <ticket> and **********, ********; pw [REDACTED:target-secret] and [REDACTED:target-secret] but abc stays"
    );
    assert_eq!(n, 5);
    assert_stream_equivalent(&m, input);
    let mut st = m.stream();
    st.push(input.as_bytes());
    st.flush();
    let counts: Vec<_> = st.counts().iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        counts,
        [("codename", 2), ("target-secret", 2), ("ticket", 1)]
    );
}

#[test]
fn custom_regex_tails_are_held_only_while_they_can_match() {
    let re = r"(?i)internal-[a-z]+-[0-9]+";
    let m = Masker::new(vec![MaskRule {
        name: "host".into(),
        matcher: Matcher::Regex {
            pattern: re.into(),
            regex: Arc::new(compile_regex(re, 1 << 20).unwrap()),
            max_len: 64,
        },
        targets: vec![],
        replace: Replace::Label("[host]".into()),
    }]);
    let mut st = m.stream();
    assert_eq!(&st.push(b"connect to intern")[..], b"connect to ");
    assert_eq!(&st.push(b"al-db-7 now")[..], b"[host] now");
    assert_eq!(&st.push(b"plain text\n")[..], b"plain text\n");
    assert_eq!(st.held(), 0);
    assert_stream_equivalent(&m, "a internal-db-1 b INTERNAL-x-22\n");
}

#[test]
fn the_longest_leftmost_match_wins() {
    // The URL starts before the address inside it.
    assert_eq!(
        mask("see https://bob:pw@example.com/x"),
        "see https://bob:[REDACTED:url-credentials]@example.com/x"
    );
    // An Authorization header takes its JWT.
    let out = mask("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghij\n");
    assert_eq!(
        out,
        "Authorization: Bearer [REDACTED:authorization-header]\n"
    );
}

#[test]
fn replacements_are_literal() {
    let re = "(sec)ret";
    let rule = MaskRule {
        name: "x".into(),
        matcher: Matcher::Regex {
            pattern: re.into(),
            regex: Arc::new(compile_regex(re, 1 << 20).unwrap()),
            max_len: 16,
        },
        targets: vec![],
        replace: Replace::Label("$1-${0}".into()),
    };
    let (out, n) = Masker::new(vec![rule]).mask(b"a secret b");
    assert_eq!((&out[..], n), (&b"a $1-${0} b"[..], 1));
}

#[test]
fn digit_scan_finds_every_digit() {
    let hay = b"abcdefgh1jklmnop2qrstuvwxyz\xff\x80\x393";
    let mut found = vec![];
    let mut i = 0;
    while let Some(d) = next_digit(hay, i) {
        found.push(d);
        i = d + 1;
    }
    let want: Vec<usize> = (0..hay.len())
        .filter(|&k| hay[k].is_ascii_digit())
        .collect();
    assert_eq!(found, want);
}

/// One write after another, with what a pause between them lets go.
#[derive(Debug, Clone, Copy)]
enum Pause {
    None,
    /// Quiet past the clear bound only.
    Short,
    /// Quiet past both bounds.
    Long,
}

fn written(st: &mut MaskStream, parts: &[(&[u8], Pause)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (part, pause) in parts {
        out.extend_from_slice(&st.push(part));
        match pause {
            Pause::None => {}
            Pause::Short => out.extend(st.release(Release::Clear)),
            Pause::Long => {
                out.extend(st.release(Release::Clear));
                out.extend(st.release(Release::Masked));
            }
        }
    }
    out.extend(st.flush());
    out
}

/// What a terminal would show for `out`.
fn shown(out: &[u8]) -> String {
    let mut v = View::default();
    v.build(out, Erase::Backspace, true);
    String::from_utf8_lossy(&v.text).into_owned()
}

const SPLIT_CORPUS: &[(&str, &str)] = &[
    ("card 4111 1111 1111 1111 ok\n", "4111 1111 1111 1111"),
    ("key AKIAIOSFODNN7EXAMPLE ok\n", "AKIAIOSFODNN7EXAMPLE"),
    ("iban DE89 3704 0044 0532 0130 00 ok\n", "DE89 3704 0044 0532 0130 00"),
    ("call +1 (415) 555-2671 now\n", "+1 (415) 555-2671"),
    ("ssn 123-45-6789 ok\n", "123-45-6789"),
    ("mail dave@example.com ok\n", "dave@example.com"),
    ("export PGPASSWORD=hunter2hunter2\n", "hunter2hunter2"),
    ("db postgres://app:s3cr3tpw@db:5432/x\n", "s3cr3tpw"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nabcdefghijklmnop==\n-----END RSA PRIVATE KEY-----\n",
        "MIIEowIBAAKCAQEA7bq",
    ),
    (
        "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U x\n",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    ("gh ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
    ("Authorization: Bearer abcdefghijklmnop1234\n", "abcdefghijklmnop1234"),
];

#[test]
fn a_value_split_by_a_pause_is_never_shown_whole() {
    let m = builtins();
    for (text, value) in SPLIT_CORPUS {
        let b = text.as_bytes();
        for cut in 1..b.len() {
            for pause in [Pause::Short, Pause::Long] {
                let mut st = m.stream();
                let out = written(&mut st, &[(&b[..cut], pause), (&b[cut..], Pause::None)]);
                let s = String::from_utf8_lossy(&out);
                assert!(
                    !s.contains(value) && !shown(&out).contains(value),
                    "{value} shown after a {pause:?} pause at {cut}: {s:?}"
                );
                assert_eq!(st.held(), 0);
            }
        }
    }
}

#[test]
fn a_value_typed_key_by_key_is_masked_in_the_echo() {
    let m = builtins();
    for (text, value) in SPLIT_CORPUS {
        for pause in [Pause::Short, Pause::Long] {
            let mut st = m.stream();
            let keys: Vec<(&[u8], Pause)> = text.as_bytes().chunks(1).map(|k| (k, pause)).collect();
            let out = written(&mut st, &keys);
            let s = String::from_utf8_lossy(&out);
            assert!(!s.contains(value), "{value} echoed ({pause:?}): {s:?}");
        }
    }
}

#[test]
fn ordinary_typing_goes_out_at_the_first_pause() {
    let m = builtins();
    let mut st = m.stream();
    let mut out = Vec::new();
    for k in "select id, created_at from orders where total > 100.50;".bytes() {
        out.extend_from_slice(&st.push(&[k]));
        out.extend(st.release(Release::Clear));
        assert_eq!(st.held(), 0, "{:?} held", String::from_utf8_lossy(&out));
    }
    // A number that could still become a card goes out while it is short...
    let mut st = m.stream();
    assert_eq!(&st.push(b"id 41234")[..], b"id ");
    assert_eq!(st.release(Release::Clear), b"41234");
    // ...but once it could be part of one, it waits, then goes out masked.
    assert_eq!(&st.push(b"5")[..], b"");
    assert_eq!(st.release(Release::Clear), b"");
    assert_eq!(st.release(Release::Masked), b"[REDACTED:payment-card]");
    // The rest of the same value is masked as its continuation.
    assert_eq!(&st.push(b"6789012349\n")[..], b"\n");
    assert_eq!(st.counts().get("payment-card"), Some(&1));
}

#[test]
fn a_prompt_that_could_start_a_value_is_shown_and_the_value_still_masked() {
    let m = builtins();
    let mut st = m.stream();
    assert_eq!(&st.push(b"token=")[..], b"");
    assert_eq!(st.release(Release::Clear), b"token=");
    assert_eq!(st.held(), 0);
    assert_eq!(
        &st.push(b"hunter2hunter2\n")[..],
        b"[REDACTED:password-assignment]\n"
    );
    // An address whose local part went out at a pause keeps its domain hidden.
    let mut st = m.stream();
    assert_eq!(&st.push(b"to dave")[..], b"to ");
    assert_eq!(st.release(Release::Clear), b"dave");
    assert_eq!(&st.push(b"@exam")[..], b"");
    assert_eq!(st.release(Release::Clear), b"");
    assert_eq!(st.release(Release::Masked), b"[REDACTED:email]");
    assert_eq!(&st.push(b"ple.com, ok\n")[..], b", ok\n");
    assert_eq!(st.counts().get("email"), Some(&1));
}

#[test]
fn values_complete_as_they_stand_go_out_masked_at_the_first_pause() {
    let m = builtins();
    let mut st = m.stream();
    assert_eq!(&st.push(b"key AKIAIOSFODNN7EXAMPLE")[..], b"key ");
    assert_eq!(st.release(Release::Clear), b"[REDACTED:aws-access-key-id]");
    // A longer value would have been one match: its rest is hidden too.
    let mut st = m.stream();
    st.push(b"ghp_0123456789abcdefghijklmnopqrstuvwxyz");
    assert_eq!(st.release(Release::Clear), b"[REDACTED:github-token]");
    assert_eq!(&st.push(b"ABCD;\n")[..], b";\n");
}

#[test]
fn colour_codes_and_corrections_inside_a_value_do_not_hide_it() {
    let m = builtins();
    // grep --color highlighting part of a key: matched as shown, escapes kept.
    let input = "key AKIA\x1b[01;31m\x1b[KIOSFODNN7\x1b[m\x1b[KEXAMPLE end\n";
    let (out, n) = mask_with(&m, input);
    assert_eq!(n, 1);
    assert_eq!(
        out,
        "key [REDACTED:aws-access-key-id]\x1b[01;31m\x1b[K\x1b[m\x1b[K end\n"
    );
    assert_stream_equivalent(&m, input);
    // A coloured card number, and one in a coloured table cell.
    let (out, _) = mask_with(&m, "\x1b[32m4111 1111 1111 1111\x1b[0m");
    assert_eq!(out, "\x1b[32m[REDACTED:payment-card]\x1b[0m");
    // A typo corrected by the line editor's echo (backspace, erase to end of line).
    let (out, _) = mask_with(&m, "AKIAIOSFOX\x08\x1b[KDNN7EXAMPLE\r\n");
    assert_eq!(out, "[REDACTED:aws-access-key-id]\x1b[K\r\n");
    // Same-width keeps the columns: the backspace stays.
    let mut rule = builtin_rule("aws-access-key-id");
    rule.replace = Replace::SameWidth;
    let (out, _) = mask_with(&Masker::new(vec![rule]), "AKIAIOSFOX\x08DNN7EXAMPLE");
    assert_eq!(out, "**********\x08***********");
    // Cursor moves still separate what is on either side.
    let (out, _) = mask_with(&m, "AKIAIOSFOD\x1b[5CNN7EXAMPLE");
    assert_eq!(out, "AKIAIOSFOD\x1b[5CNN7EXAMPLE");
}

#[test]
fn typed_input_with_deletes_is_masked_as_the_line_it_makes() {
    let m = builtins();
    let mut st = m.input_stream();
    let mut out = Vec::new();
    for k in b"select 'AKIAIOSFOX\x7fDNN7EXAMPLE';\r".chunks(1) {
        out.extend_from_slice(&st.push(k));
        out.extend(st.release(Release::Clear));
    }
    out.extend(st.flush());
    let s = String::from_utf8_lossy(&out);
    // `AKI` went out before the anchor was complete: it is not part of the value.
    assert_eq!(s, "select 'AKI[REDACTED:aws-access-key-id]';\r");
    // An output stream does not read DEL as a delete.
    let (out, n) = m.mask(b"AKIAIOSFOX\x7fDNN7EXAMPLE");
    assert_eq!((&out[..], n), (&b"AKIAIOSFOX\x7fDNN7EXAMPLE"[..], 0));
}
