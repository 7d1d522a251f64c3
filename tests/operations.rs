//! Running the served gateway as an operator does: its structured log, metrics, TLS on the
//! listener, and the limits that keep one client from starving the rest.

use std::time::Duration;

use crate::util::{run, wait_for, Env, Gateway, DEV_TOKEN};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(30);

/// A shell session whose command line and output carry an e-mail address (masked by the
/// config) and whose environment carries the bearer token.
fn session_with_secrets(gw: &Gateway, env: &Env) -> String {
    let mut c = gw.hoopx(env);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "echo out-alice@example.com; exit 3 # carol@example.net",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stdout.contains("[REDACTED:email]"), "{out:?}");
    out.stdout
}

#[test]
fn the_json_log_has_one_object_per_event_with_fields_and_never_a_secret() {
    let env = Env::new();
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.args(["--log-format", "json"]).env("HOOPX_LOG", "debug");
    });
    session_with_secrets(&gw, &env);
    let log = gw.stderr.wait_for("\"session ended\"", T);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let opened = events
        .iter()
        .find(|e| e["message"] == "session opened")
        .expect("a session opened event");
    assert_eq!(opened["level"], "INFO");
    assert_eq!(opened["target"], "hoopx::access");
    assert_eq!(opened["identity"], "dev");
    assert_eq!(opened["target_name"], "shell");
    let id = opened["session"].as_str().unwrap();
    let ended = events
        .iter()
        .find(|e| e["message"] == "session ended")
        .unwrap();
    assert_eq!(ended["session"], id);
    assert_eq!(ended["status"], "exited");
    assert_eq!(ended["exit"], 3);
    // The command line is logged as stored: masked. No token, no unmasked output.
    assert!(opened["argv"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:email]"));
    for secret in [DEV_TOKEN, "carol@example.net", "alice@example.com"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn the_log_filter_comes_from_hoopx_log_and_a_bad_one_is_refused() {
    let env = Env::new();
    // Warnings only: the access log (info) is filtered out.
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.env("HOOPX_LOG", "warn,hoopx=info,hoopx::access=warn");
    });
    session_with_secrets(&gw, &env);
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "list", "--output", "json"]);
    let list = run(c, "", T);
    assert!(list.stdout.contains("\"exited\""), "{list:?}");
    assert!(
        !gw.stderr.text().contains("session opened"),
        "{}",
        gw.stderr.text()
    );

    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("HOOPX_LOG", "info,=[");
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad log filter HOOPX_LOG"), "{out:?}");
}

/// The value of the sample `name` whose labels include `labels`, from Prometheus text.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let (n, rest) = key.split_once('{').unwrap_or((key, ""));
        let ok = n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        ok.then(|| value.parse().ok()).flatten()
    })
}

fn scrape(url: &str) -> String {
    let resp = reqwest::blocking::get(format!("{url}/metrics")).unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().unwrap()
}

#[test]
fn metrics_count_sessions_bytes_masks_denials_and_latencies() {
    let env = Env::new();
    let port = crate::util::free_port();
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.args(["--metrics-listen", &format!("127.0.0.1:{port}")]);
    });
    let exec = |args: &[&str], stdin: &str| {
        let mut c = gw.hoopx(&env);
        c.args(["exec", "--target", "shell", "--"]).args(args);
        run(c, stdin, T)
    };
    // 34 bytes out, two e-mail addresses masked.
    let out = exec(&["sh", "-c", "echo alice@example.com bob@example.org"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    // 6 bytes in, 6 out.
    let out = exec(&["cat"], "hello\n");
    assert_eq!(out.stdout, "hello\n", "{out:?}");
    // Refused by the deny rule before it starts.
    let out = exec(&["sh", "-c", "rm -rf /tmp/nothing-here"], "");
    assert_ne!(out.code(), 0, "{out:?}");

    let text = wait_for("the last session stream to end", T, || {
        let t = scrape(&gw.url);
        (sample(&t, "hoopx_sessions_open", &[]) == Some(0.0)).then_some(t)
    });
    let shell = [("target", "shell")];
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(get("hoopx_sessions_started_total", &shell), 3.0);
    assert_eq!(
        get(
            "hoopx_sessions_ended_total",
            &[("target", "shell"), ("outcome", "exited")]
        ),
        2.0
    );
    assert_eq!(
        get(
            "hoopx_sessions_ended_total",
            &[("target", "shell"), ("outcome", "denied")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "hoopx_session_bytes_total",
            &[("target", "shell"), ("direction", "in")]
        ),
        6.0
    );
    assert_eq!(
        get(
            "hoopx_session_bytes_total",
            &[("target", "shell"), ("direction", "out")]
        ),
        40.0
    );
    assert_eq!(get("hoopx_masks_total", &[("rule", "email")]), 2.0);
    assert_eq!(get("hoopx_denials_total", &[("rule", "no-rm")]), 1.0);
    assert!(get("hoopx_store_write_seconds_count", &[]) >= 2.0, "{text}");
    assert!(get("hoopx_relay_seconds_count", &[]) >= 2.0, "{text}");
    // The metrics listener serves the same registry.
    let other = scrape(&format!("http://127.0.0.1:{port}"));
    assert_eq!(
        sample(&other, "hoopx_sessions_started_total", &shell),
        Some(3.0)
    );
}

/// A CA and a certificate for 127.0.0.1 it signed, as PEM: (ca, cert, key).
fn issue(ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "gateway");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn a_tls_gateway_is_trusted_through_hoopx_ca_and_reloads_its_certificate() {
    let env = Env::new();
    let (ca, cert, key) = issue("first CA");
    let ca_path = env.write("ca.pem", &ca);
    let cert_path = env.write("gw.crt", &cert);
    let key_path = env.write("gw.key", &key);
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.arg("--tls-cert").arg(&cert_path);
        c.arg("--tls-key").arg(&key_path);
    });
    assert!(gw.url.starts_with("https://127.0.0.1:"), "{}", gw.url);
    let exec = |ca: Option<&std::path::Path>| {
        let mut c = gw.hoopx(&env);
        if let Some(p) = ca {
            c.env("HOOPX_CA", p);
        }
        c.args([
            "exec",
            "--target",
            "shell",
            "--",
            "sh",
            "-c",
            "echo over-tls",
        ]);
        run(c, "", T)
    };
    // Trusted through HOOPX_CA: the API and the session stream both speak TLS.
    let out = exec(Some(&ca_path));
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "over-tls\n");
    // Without it, a clear refusal that names HOOPX_CA; the tool never runs.
    let out = exec(None);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(out.stderr.contains("HOOPX_CA"), "{out:?}");
    assert!(!out.stdout.contains("over-tls"), "{out:?}");
    // Plain http to the TLS port gets nothing.
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", gw.url.replace("https://", "http://"))
        .env("HOOPX_TOKEN", DEV_TOKEN)
        .args(["exec", "--target", "shell", "--", "true"]);
    assert_ne!(run(c, "", T).code(), 0);

    // A certificate from another CA replaces the files: the gateway picks it up.
    let (ca2, cert2, key2) = issue("second CA");
    let ca2_path = env.write("ca2.pem", &ca2);
    std::fs::write(&key_path, key2).unwrap();
    std::fs::write(&cert_path, cert2).unwrap();
    gw.stderr.wait_for("TLS certificate reloaded", T);
    wait_for("the new certificate in use", T, || {
        (exec(Some(&ca2_path)).code() == 0).then_some(())
    });
    let out = exec(Some(&ca_path));
    assert_eq!(out.code(), 69, "the old CA no longer verifies it: {out:?}");
    // SIGHUP reloads too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    gw.stderr.wait_for("TLS certificate reloaded (SIGHUP)", T);
    assert_eq!(exec(Some(&ca2_path)).code(), 0);
}

#[test]
fn a_bad_ca_file_or_certificate_is_a_config_error() {
    let env = Env::new();
    let bad = env.write("bad.pem", "not a certificate\n");
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&bad)
        .arg("--tls-key")
        .arg(&bad);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad.pem"), "{out:?}");

    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", "https://127.0.0.1:1")
        .env("HOOPX_TOKEN", DEV_TOKEN)
        .env("HOOPX_CA", &bad)
        .args(["exec", "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(
        out.stderr.contains("HOOPX_CA") && out.stderr.contains("bad.pem"),
        "{out:?}"
    );
}

fn limits_config(limits: &str) -> String {
    format!("{SHELL_CONFIG}\n[limits]\n{limits}\n")
}

/// Opens a session over the API without attaching its stream.
fn open_unattached(gw: &Gateway, argv: &[&str]) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .json(&serde_json::json!({"target": "shell", "argv": argv, "mode": "pipe"}))
        .send()
        .unwrap()
}

/// Reads until the peer closes; true if it closed within `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_and_half_sent_connections_neither_block_sessions_nor_stay() {
    use std::io::Write;
    let env = Env::new();
    let config = limits_config("header_read_timeout = \"1s\"\nmax_connections = 400");
    let gw = Gateway::start(&env, Some(&config), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut idle: Vec<_> = (0..200)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost: gw\r\n")
        .unwrap();
    // A real session runs while they are open.
    let mut c = gw.hoopx(&env);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "echo still-served",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.stdout, "still-served\n", "{out:?}");
    // The header timeout drops them all, the half-sent request included.
    assert!(closed_within(&mut half, Duration::from_secs(10)));
    for s in idle.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(10)));
    }
}

#[test]
fn past_the_connection_cap_new_connections_get_503() {
    use std::io::{Read, Write};
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("max_connections = 4")), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let _held: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let text = wait_for("a 503 past the cap", T, || {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 503").then_some(text)
    });
    assert!(text.contains("too many open connections"), "{text}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", gw.url));
    // The metrics request itself needs a slot: the cap holds until one is freed.
    assert!(metrics.is_err() || metrics.unwrap().status() == 503);
}

#[test]
fn one_identity_cannot_pile_up_unattached_sessions_or_huge_command_lines() {
    let env = Env::new();
    let config = limits_config("pending_sessions = 2\nargv_bytes = 1000\nattach_within = \"60s\"");
    let gw = Gateway::start(&env, Some(&config), None);
    for _ in 0..2 {
        assert_eq!(open_unattached(&gw, &["cat"]).status(), 201);
    }
    let refused = open_unattached(&gw, &["cat"]);
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], "limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2 sessions opened and not attached"),
        "{body}"
    );
    // The client says the same and the tool never runs.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--target", "shell", "--", "sh", "-c", "echo ran"]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("not attached yet"), "{out:?}");
    assert!(!out.stdout.contains("ran"));

    let env2 = Env::new();
    let gw2 = Gateway::start(&env2, Some(&config), None);
    let huge = "x".repeat(2000);
    let mut c = gw2.hoopx(&env2);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        &format!("echo {huge}"),
    ]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains("the command line is too long"),
        "{out:?}"
    );
    assert!(out.stderr.contains("argv_bytes"), "{out:?}");
    let list = {
        let mut c = gw2.hoopx(&env2);
        c.args(["sessions", "list", "--output", "json"]);
        run(c, "", T).stdout
    };
    assert_eq!(
        list.trim(),
        "[]",
        "nothing stored for a refused command line"
    );
}

#[test]
fn a_session_that_never_attaches_expires_and_says_so() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("attach_within = \"1s\"")), None);
    let opened: serde_json::Value = open_unattached(&gw, &["cat"]).json().unwrap();
    let id = opened["session_id"].as_str().unwrap().to_string();
    let s = wait_for("the session to expire", T, || {
        let s: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/v1/sessions/{id}", gw.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .ok()?
            .json()
            .ok()?;
        (s["status"] != "open").then_some(s)
    });
    assert_eq!(s["status"], "aborted", "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("never attached"),
        "{s}"
    );
    // Its recording verifies: the expiry is signed evidence like any end.
    let mut c = gw.hoopx(&env);
    c.args(["verify", &id]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn an_identity_past_its_request_rate_gets_429() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("requests_per_minute = 5")), None);
    let get = || {
        reqwest::blocking::Client::new()
            .get(format!("{}/v1/sessions", gw.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(get().status(), 200);
    }
    let refused = get();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 5 requests in a minute"),
        "{body}"
    );
    let text = reqwest::blocking::get(format!("{}/metrics", gw.url))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        sample(&text, "hoopx_requests_refused_total", &[("reason", "rate")]),
        Some(1.0)
    );
}

#[test]
fn a_request_whose_body_stalls_is_dropped_after_the_idle_timeout() {
    use std::io::Write;
    let env = Env::new();
    let config = limits_config("idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"");
    let gw = Gateway::start(&env, Some(&config), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    // Whole headers (the header timeout is done with) and a body that never comes.
    write!(
        s,
        "POST /v1/sessions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {DEV_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"argv\""
    )
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
}
