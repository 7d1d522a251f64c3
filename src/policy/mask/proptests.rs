//! Property tests: for random inputs with planted secrets and random chunkings, a stream
//! gives what one-shot masking gives and lets no planted secret through; look-alikes are
//! left alone.

use proptest::prelude::*;

use super::*;

fn all_rules() -> Masker {
    let re = r"(?i)\bTKT-[0-9]{4,8}\b";
    let mut rules = vec![
        MaskRule {
            name: "ticket".into(),
            matcher: Matcher::Regex {
                pattern: re.into(),
                regex: Arc::new(compile_regex(re, 1 << 20).expect("valid")),
                max_len: 16,
            },
            targets: vec![],
            replace: Replace::Label("<ticket>".into()),
        },
        MaskRule {
            name: "codename".into(),
            matcher: Matcher::Literals(vec!["BLUEBIRD".into(), "BLUEBIRD-2".into()]),
            targets: vec![],
            replace: Replace::SameWidth,
        },
    ];
    rules.extend(builtin_rules());
    // Same-width on a few built-ins too, so both replacement styles are exercised.
    for r in &mut rules {
        if matches!(r.name.as_str(), "payment-card" | "phone-number" | "jwt") {
            r.replace = Replace::SameWidth;
        }
    }
    Masker::new(rules).with_secrets(["Sup3r-S3cret", "pg-pass-0042"])
}

/// Masks `input` as a stream cut into `cuts` (cycled), then flushed.
fn streamed(m: &Masker, input: &[u8], cuts: &[usize]) -> (Vec<u8>, u64) {
    let mut st = m.stream();
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < input.len() {
        let len = cuts[k % cuts.len()].min(input.len() - at);
        out.extend_from_slice(&st.push(&input[at..at + len]));
        at += len;
        k += 1;
    }
    out.extend_from_slice(&st.flush());
    (out, st.counts().values().sum())
}

fn luhn_complete(prefix: &[u8]) -> u8 {
    // The check digit that makes `prefix` + digit pass Luhn.
    let sum: u32 = prefix
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 0 {
                let y = d * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A planted secret: the text written, and the part that must not survive.
fn secret() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z]{3,10}\\.[a-z]{2,8}".prop_map(|l| {
            let e = format!("{l}@example.com");
            (e.clone(), e)
        }),
        "[A-Z0-9]{16}".prop_map(|k| {
            let t = format!("AKIA{k}");
            (t.clone(), t)
        }),
        "[A-Za-z0-9]{36}".prop_map(|k| {
            let t = format!("ghp_{k}");
            (t.clone(), t)
        }),
        "[A-Za-z0-9]{20,30}".prop_map(|k| {
            let t = format!("glpat-{k}");
            (t.clone(), t)
        }),
        "[A-Za-z0-9]{35}".prop_map(|k| {
            let t = format!("AIza{k}");
            (t.clone(), t)
        }),
        "[A-Za-z0-9]{12,30}".prop_map(|k| {
            let t = format!("sk_live_{k}");
            (t.clone(), t)
        }),
        (
            "[A-Za-z0-9_-]{10,30}",
            "[A-Za-z0-9_-]{10,30}",
            "[A-Za-z0-9_-]{10,40}"
        )
            .prop_map(|(a, b, c)| {
                let t = format!("eyJ{a}.eyJ{b}.{c}");
                (t.clone(), t)
            }),
        (
            "(password|PGPASSWORD|api_key|client_secret|TOKEN)",
            "[=:]",
            "[A-Za-z0-9]{8,20}"
        )
            .prop_map(|(k, sep, v)| (format!("{k}{sep}{v}"), v)),
        "[A-Za-z0-9]{8,16}"
            .prop_map(|p| (format!("postgres://app:{p}@db:5432/x"), format!(":{p}@"))),
        "[A-Za-z0-9]{16,30}".prop_map(|t| (format!("Authorization: Bearer {t}"), t)),
        (proptest::collection::vec(0u8..10, 14), 0usize..3).prop_map(|(mut d, style)| {
            d.insert(0, 4);
            let check = luhn_complete(&d);
            d.push(check);
            let digits: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            let text = match style {
                0 => digits.clone(),
                1 => digits
                    .as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => digits
                    .as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join("-"),
            };
            (text.clone(), text)
        }),
        (100u32..899, 10u32..99, 1000u32..9999)
            .prop_filter("valid area", |(a, _, _)| *a != 666)
            .prop_map(|(a, g, s)| {
                let t = format!("{a}-{g}-{s}");
                (t.clone(), t)
            }),
        (200u32..999, 200u32..999, 0u32..10000).prop_map(|(a, x, n)| {
            let t = format!("+1 ({a}) {x}-{n:04}");
            (t.clone(), format!("{x}-{n:04}"))
        }),
        prop_oneof![
            Just("DE89 3704 0044 0532 0130 00"),
            Just("GB82WEST12345698765432"),
            Just("FR14 2004 1010 0505 0001 3M02 606"),
        ]
        .prop_map(|t| (t.to_string(), t.to_string())),
        proptest::collection::vec("[A-Za-z0-9+/]{20,64}", 1..6).prop_map(|lines| {
            let body = lines.join("\n");
            (
                format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"),
                lines[0].clone(),
            )
        }),
        Just(("Sup3r-S3cret".to_string(), "Sup3r-S3cret".to_string())),
        Just(("BLUEBIRD-2".to_string(), "BLUEBIRD".to_string())),
        "[0-9]{4,8}".prop_map(|n| (format!("TKT-{n}"), format!("TKT-{n}"))),
    ]
}

/// Text that looks a bit like a secret but is not.
fn benign() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,10}",
        "[A-Z][a-z]{1,8}",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{3}Z",
        "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]",
        "v?[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,3}",
        "[0-9a-f]{40}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "(ORD|INV)-[0-9]{4,10}",
        "#[0-9]{3,8}",
        "[0-9]{1,6}",
        "[0-9]{1,4}\\.[0-9]{2}",
        "-{1,12}\\+-{1,12}",
        "\\|",
        "\\x1b\\[[0-9]{1,2}(;[0-9]{1,2})?m",
        "[äöüéß日本語]{1,5}",
        "(the|token|secret|password|key|mail|at) (is|was) (here|gone)",
    ]
}

fn joiner() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(" "), Just("\n"), Just(" | "), Just(", "), Just("\r\n")]
}

/// Fragments that drive the engine into its corners: anchors, cut escapes and characters.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        Just(b"AKIA".to_vec()),
        Just(b"@".to_vec()),
        Just(b"a@b.co".to_vec()),
        Just(b"password=".to_vec()),
        Just(b"://u:p@".to_vec()),
        Just(b"\x1b[".to_vec()),
        Just(b"\x1b[31m".to_vec()),
        Just(b"-----BEGIN RSA PRIVATE KEY-----\n".to_vec()),
        Just(b"-----END RSA PRIVATE KEY-----".to_vec()),
        Just(b"4111 1111 1111 1111".to_vec()),
        Just(b"+1 (415) 555-2671".to_vec()),
        Just(b"DE89".to_vec()),
        Just(b"123-45-6789".to_vec()),
        Just(b"eyJ".to_vec()),
        Just("é日".as_bytes().to_vec()),
        Just(b"\xe6\x97".to_vec()),
        Just(b"Sup3r-S3cr".to_vec()),
        Just(b"BLUEBIRD".to_vec()),
        Just(b"TKT-12".to_vec()),
        "[a-zA-Z0-9 .:=_-]{0,20}".prop_map(String::into_bytes),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..200, 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn streams_equal_one_shot_and_hide_planted_secrets(
        parts in proptest::collection::vec(
            prop_oneof![
                3 => benign().prop_map(|b| (b, None)),
                1 => secret().prop_map(|(t, s)| (t, Some(s))),
            ],
            0..30,
        ),
        joiners in proptest::collection::vec(joiner(), 1..5),
        cuts in cuts(),
    ) {
        let m = all_rules();
        let mut input = String::new();
        let mut planted = vec![];
        for (k, (text, secret)) in parts.iter().enumerate() {
            if k > 0 {
                input.push_str(joiners[k % joiners.len()]);
            }
            input.push_str(text);
            if let Some(s) = secret {
                planted.push(s.clone());
            }
        }
        let (whole, n) = m.mask(input.as_bytes());
        let (out, counted) = streamed(&m, input.as_bytes(), &cuts);
        prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&whole));
        prop_assert_eq!(counted, n as u64);
        let out = String::from_utf8_lossy(&out);
        for s in &planted {
            prop_assert!(!out.contains(s.as_str()), "{:?} survived in {:?}", s, out);
        }
        if planted.is_empty() {
            prop_assert_eq!(out.as_ref(), input.as_str(), "look-alikes were masked");
        }
    }

    #[test]
    fn any_bytes_stream_like_one_shot(
        frags in proptest::collection::vec(fragment(), 0..40),
        cuts in cuts(),
    ) {
        let m = all_rules();
        let input: Vec<u8> = frags.concat();
        let (whole, n) = m.mask(&input);
        let (out, counted) = streamed(&m, &input, &cuts);
        prop_assert_eq!(&out[..], &whole[..]);
        prop_assert_eq!(counted, n as u64);
    }
}

/// What a pause after a write lets go.
#[derive(Debug, Clone, Copy)]
enum Pause {
    None,
    /// Past the clear bound only.
    Short,
    /// Past both bounds.
    Long,
}

fn pause() -> impl Strategy<Value = Pause> {
    prop_oneof![Just(Pause::None), Just(Pause::Short), Just(Pause::Long)]
}

fn after(st: &mut MaskStream, pause: Pause, out: &mut Vec<u8>) {
    match pause {
        Pause::None => {}
        Pause::Short => out.extend(st.release(Release::Clear)),
        Pause::Long => {
            out.extend(st.release(Release::Clear));
            out.extend(st.release(Release::Masked));
        }
    }
}

/// What a terminal shows for `out`.
fn shown(out: &[u8]) -> String {
    let mut v = super::view::View::default();
    v.build(out, super::view::Erase::Backspace, true);
    String::from_utf8_lossy(&v.text).into_owned()
}

/// A line with a planted value, how it is cut into up to four writes, and the pauses.
#[derive(Debug, Clone)]
struct Planted {
    text: String,
    value: String,
    cuts: Vec<usize>,
    pauses: Vec<Pause>,
}

fn planted() -> impl Strategy<Value = Planted> {
    (
        secret(),
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
        proptest::collection::vec(pause(), 4),
        proptest::option::of(any::<proptest::sample::Index>()),
    )
        .prop_map(|((text, value), cuts, pauses, colour)| {
            // Sometimes a colour starts inside the value (`grep --color`).
            let text = match colour {
                Some(at) => {
                    let mut at = at.index(text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    format!(
                        "{}\x1b[01;31m\x1b[K{}\x1b[m\x1b[K",
                        &text[..at],
                        &text[at..]
                    )
                }
                None => text,
            };
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            Planted {
                text,
                value,
                cuts,
                pauses,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every built-in detector and the custom rules: a planted value written in up to four
    /// parts with pauses between them (none, past the clear bound, past both) is never
    /// emitted whole, in the bytes or as a terminal shows them; benign lines written
    /// around it come through untouched.
    #[test]
    fn values_written_over_time_are_never_shown_whole(
        lines in proptest::collection::vec(
            prop_oneof![
                2 => benign().prop_map(Err),
                1 => planted().prop_map(Ok),
            ],
            1..10,
        ),
        line_pauses in proptest::collection::vec(pause(), 10),
        typed in any::<bool>(),
    ) {
        let m = all_rules();
        let mut st = if typed { m.input_stream() } else { m.stream() };
        let mut out = Vec::new();
        out.extend_from_slice(&st.push(b"\n"));
        for (k, line) in lines.iter().enumerate() {
            match line {
                Err(benign) => out.extend_from_slice(&st.push(benign.as_bytes())),
                Ok(p) => {
                    let b = p.text.as_bytes();
                    let mut at = 0;
                    for (i, &cut) in p.cuts.iter().chain([b.len()].iter()).enumerate() {
                        out.extend_from_slice(&st.push(&b[at..cut.max(at)]));
                        after(&mut st, p.pauses[i % p.pauses.len()], &mut out);
                        at = cut.max(at);
                    }
                }
            }
            out.extend_from_slice(&st.push(b"\n"));
            after(&mut st, line_pauses[k], &mut out);
        }
        out.extend(st.flush());
        prop_assert_eq!(st.held(), 0);
        let raw = String::from_utf8_lossy(&out).into_owned();
        let seen = shown(&out);
        for line in &lines {
            match line {
                Ok(p) => {
                    prop_assert!(!raw.contains(&p.value), "{:?} emitted in {:?}", p.value, raw);
                    prop_assert!(!seen.contains(&p.value), "{:?} shown in {:?}", p.value, seen);
                }
                Err(benign) => {
                    let whole = format!("\n{benign}\n");
                    prop_assert!(raw.contains(&whole), "{:?} changed in {:?}", benign, raw);
                }
            }
        }
    }
}
