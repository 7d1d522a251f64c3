//! Masking that holds across time, end to end: a tool writes one value of every built-in
//! detector in pieces with pauses (none, past the clear bound, past the mask bound), in
//! pipe mode and under a terminal, and a person types secrets key by key into psql. No
//! value reaches the caller's screen, the store or any export whole; benign lines come
//! through untouched.

use std::path::Path;
use std::time::Duration;

use crate::util::{run, Env, Postgres, PtyChild};

const T: Duration = Duration::from_secs(90);

/// One value per built-in detector, as a line a tool writes, and the part that must never
/// be shown whole.
const CORPUS: &[(&str, &str)] = &[
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bqQ3xYzW\nZmFrZWtleWJvZHkxMjM0NTY=\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7bqQ3xYzW",
    ),
    ("aws AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "gh ghp_0123456789abcdefghijklmnopqrstuvwxyzAB ok",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
    ),
    ("gl glpat-AbCdEf1234567890_-Zz ok", "glpat-AbCdEf1234567890_-Zz"),
    (
        "slack xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx ok",
        "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
    ),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe ok",
        "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "Authorization: Bearer abcdefghijklmnop1234567890",
        "abcdefghijklmnop1234567890",
    ),
    ("db postgres://app:s3cr3tpassw0rd@db:5432/x", "s3cr3tpassw0rd"),
    ("export PGPASSWORD=hunter2hunter2", "hunter2hunter2"),
    ("mail dave@example.com ok", "dave@example.com"),
    ("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("iban DE89 3704 0044 0532 0130 00 ok", "DE89 3704 0044 0532 0130 00"),
    ("ssn 123-45-6789 ok", "123-45-6789"),
    ("phone +1 (415) 555-2671 ok", "+1 (415) 555-2671"),
    // grep --color highlighting part of a key.
    (
        "grep AKIA\x1b[01;31m\x1b[KIOSFODNN7\x1b[m\x1b[KEXAMPLE ok",
        "AKIAIOSFODNN7EXAMPLE",
    ),
];

const BENIGN: &[&str] = &[
    "order ORD-2024-0001 shipped 2024-01-05 12:34:56 v1.2.3 total 1234.50",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 ip 192.168.10.254",
    "----+---------------+------------",
];

/// Pauses in seconds: none, past the clear bound only, past a terminal's mask bound, and
/// past a pipe's.
const PAUSES: &[f64] = &[0.0, 0.03, 0.3, 1.2];

/// A small deterministic generator, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `printf` of `part` with every byte that a shell or printf could read as special
/// written as an octal escape.
fn printf(part: &str) -> String {
    let mut s = String::from("printf '");
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b" .,:=_+()@/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\{b:03o}"));
        }
    }
    s.push('\'');
    s
}

/// A shell script writing the corpus, each value cut into up to four writes with pauses
/// between them, benign lines in between; returns it and the longest it sleeps.
fn corpus_script(seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut steps = vec![];
    for (k, (text, _)) in CORPUS.iter().enumerate() {
        steps.push(printf(&format!("{}\n", BENIGN[k % BENIGN.len()])));
        let mut cuts: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| 1 + rng.below(text.len() - 1))
            .filter(|&c| text.is_char_boundary(c))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut at = 0;
        for cut in cuts.into_iter().chain([text.len()]) {
            steps.push(printf(&text[at..cut]));
            at = cut;
            if cut < text.len() {
                // Each pause length comes round in turn; which value gets which is random.
                let p = PAUSES[(k + rng.below(PAUSES.len())) % PAUSES.len()];
                if p > 0.0 {
                    steps.push(format!("sleep {p}"));
                }
            }
        }
        steps.push(printf("\n"));
    }
    steps.push(printf("done\n"));
    steps.join("; ")
}

/// The text a terminal shows (or a line editor keeps): escape sequences and carriage
/// returns left out, backspaces and DELs applied.
fn displayed(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            '\r' => {}
            '\x08' | '\x7f' => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn assert_hidden(what: &str, text: &str, values: &[&str]) {
    let shown = displayed(text);
    for v in values {
        assert!(
            !text.contains(v) && !shown.contains(v),
            "{v:?} whole in {what}:\n{shown}"
        );
    }
}

/// Checks the last session's store and every export: no value whole, even where it spans
/// events (input and output joined as a replay shows them).
fn assert_recording_hides(env: &Env, values: &[&str]) {
    for format in ["text", "cast"] {
        let mut c = env.hoopx();
        c.args(["replay", "last", "--format", format]);
        let out = run(c, "", T);
        assert_eq!(out.code(), 0, "{out:?}");
        let mut joined = String::new();
        if format == "cast" {
            for line in out.stdout.lines().skip(1) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                joined.push_str(v[2].as_str().unwrap_or_default());
            }
        }
        assert_hidden(&format!("replay --format {format}"), &out.stdout, values);
        assert_hidden(
            &format!("replay --format {format}, joined"),
            &joined,
            values,
        );
    }
    let mut c = env.hoopx();
    c.args(["replay", "last", "--format", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let (mut input, mut output) = (String::new(), String::new());
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let data = v["data"].as_str().unwrap_or_default();
        match v["kind"].as_str() {
            Some("i") => input.push_str(data),
            Some("o" | "e") => output.push_str(data),
            _ => {}
        }
    }
    assert_hidden("recorded input", &input, values);
    assert_hidden("recorded output", &output, values);
    assert_hidden("replay --format json", &out.stdout, values);
    // The store's files themselves.
    fn walk(dir: &Path, values: &[&str]) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, values);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                for v in values {
                    assert!(!text.contains(v), "{v:?} in {}", path.display());
                }
            }
        }
    }
    walk(&env.path().join("data"), values);
}

fn values() -> Vec<&'static str> {
    CORPUS.iter().map(|(_, v)| *v).collect()
}

#[test]
fn values_written_in_pieces_are_masked_in_pipe_mode() {
    let env = Env::new();
    // From a file: on the command line the values would be masked (and recorded) as such.
    let script = env.write("corpus.sh", &corpus_script(0x5eed_0001));
    let mut c = env.hoopx();
    c.args(["exec", "--no-tty", "--", "sh"]).arg(&script);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.ends_with("done\n"), "{out:?}");
    assert_hidden("stdout", &out.stdout, &values());
    for b in BENIGN {
        assert!(
            out.stdout.contains(&format!("{b}\n")),
            "{b} changed:\n{}",
            out.stdout
        );
    }
    for label in [
        "[REDACTED:payment-card]",
        "[REDACTED:private-key]",
        "[REDACTED:email]",
    ] {
        assert!(out.stdout.contains(label), "{label}:\n{}", out.stdout);
    }
    assert_recording_hides(&env, &values());
}

#[test]
fn values_written_in_pieces_are_masked_under_a_terminal() {
    let env = Env::new();
    let script = env.write("corpus.sh", &corpus_script(0x5eed_0002));
    let mut c = env.hoopx();
    c.env("TERM", "xterm")
        .args(["exec", "--tty", "--", "sh"])
        .arg(&script);
    let mut p = PtyChild::spawn(c, 200, 50);
    p.output.wait_for("done", T);
    assert_eq!(p.wait(T).code(), Some(0), "{}", p.output.text());
    let screen = p.output.text();
    assert_hidden("the terminal", &screen, &values());
    let shown = displayed(&screen);
    for b in BENIGN {
        assert!(shown.contains(b), "{b} changed:\n{shown}");
    }
    assert_recording_hides(&env, &values());
}

/// Types `s` into the terminal key by key, `gap` apart, as a person would.
fn type_slowly(p: &mut PtyChild, s: &str, gap: Duration) {
    for c in s.chars() {
        p.type_str(&c.to_string());
        std::thread::sleep(gap);
    }
}

#[test]
fn secrets_typed_key_by_key_are_masked_in_the_echo_and_the_recording() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    let mut cmd = env.hoopx();
    cmd.env("TERM", "xterm")
        .args(["exec", "--", "psql"])
        .args(pg.args("app"));
    let mut p = PtyChild::spawn(cmd, 120, 30);
    p.output.wait_for("app=#", T);
    // At human speed (the terminal's mask bound passes between some keys), with a typo
    // corrected inside the key.
    type_slowly(&mut p, "select 'AKIAIOSFODX", Duration::from_millis(120));
    type_slowly(
        &mut p,
        "\x7fNN7EXAMPLE' as k;\r",
        Duration::from_millis(300),
    );
    p.output.wait_for("(1 row)", T);
    type_slowly(
        &mut p,
        "select 'dave@example.com' as m;\r",
        Duration::from_millis(90),
    );
    crate::util::wait_for("the second result", T, || {
        (p.output.text().matches("(1 row)").count() >= 2).then_some(())
    });
    // Ordinary typing is echoed as typed.
    let screen = p.output.text();
    assert!(displayed(&screen).contains("select '"), "{screen}");
    p.type_str("\\q\r");
    assert_eq!(p.wait(T).code(), Some(0), "{}", p.output.text());
    let values = [
        "AKIAIOSFODNN7EXAMPLE",
        "IOSFODNN7EXAMPLE",
        "dave@example.com",
    ];
    assert_hidden("the typist's terminal", &p.output.text(), &values);
    assert_recording_hides(&env, &values);
}
