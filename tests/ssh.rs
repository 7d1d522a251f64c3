//! ssh targets with the gateway as the SSH client, against a real OpenSSH sshd started by
//! the test (`targets::Sshd`): no local `ssh` runs and the key never reaches the client;
//! line rules hold on the remote shell (checked on the host); signals, EOF and exit
//! statuses behave as with OpenSSH; an unreachable host, a lost gateway end the session.

use std::process::Command;
use std::time::Duration;

use crate::targets::{assert_hidden, assert_nothing_left, hoopx, last_recording, tmp_dir, Sshd};
use crate::util::{free_port, run, spawn_piped, wait_for, wait_timeout, Env, Gateway, PtyChild};

const T: Duration = Duration::from_secs(60);

/// `web` (and `stale`) from [`Sshd::config`], plus a deny rule on input lines and a target
/// on a port nothing listens on.
fn config(sshd: &Sshd) -> String {
    format!(
        "{}[[targets]]\nname = \"down\"\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\n\
         private_key = {{ file = \"{}\" }}\nknown_hosts = \"{}\"\n\n\
         [[rules.deny]]\nname = \"no-forbidden\"\npattern = 'forbidden'\ntargets = [\"web\"]\n",
        sshd.config(&sshd.host_key()),
        free_port(),
        sshd.path("user_key").display(),
        sshd.host_key(),
    )
}

/// Every place a process of the caller's user could find the key while the session runs:
/// the environment and command line of every process, the session directories, HOME.
fn scan_for_key(env: &Env, secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |what: String, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            found.push(what);
        }
    };
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for f in ["environ", "cmdline"] {
            if let Ok(b) = std::fs::read(p.path().join(f)) {
                look(p.path().join(f).display().to_string(), &b);
            }
        }
    }
    let mut dirs = vec![env.path().to_path_buf(), tmp_dir(env)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                look(p.display().to_string(), &b);
            }
        }
    }
    found
}

#[test]
fn a_remote_shell_runs_with_no_local_ssh_no_key_on_the_client_and_line_rules_on_the_host() {
    let env = Env::new();
    let sshd = Sshd::start();
    let gw = Gateway::start(&env, Some(&config(&sshd)), None);
    let work = tempfile::tempdir().unwrap();
    let forbidden = work.path().join("forbidden-file");
    let allowed = work.path().join("allowed-file");
    let mut cmd = hoopx(&gw, &env);
    // No ssh on the caller's PATH at all: the session cannot be a local ssh.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    cmd.env("PATH", &bin)
        .env("TERM", "xterm")
        .args(["exec", "--target", "web", "--", "ssh", "web"]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.type_str("PS1='rem''ote$ '\r");
    p.output.wait_for("remote$ ", T);

    // While the session runs: no key material anywhere a process of the caller can read.
    let found = scan_for_key(&env, &sshd.key_lines());
    assert!(found.is_empty(), "key material in {found:?}");

    // A denied line never reaches the host; an allowed one does.
    p.type_str(&format!("touch {}\r", forbidden.display()));
    p.output.wait_for("no-forbidden", T);
    // Ctrl-O (readline's operate-and-get-next) would submit the line without an Enter and
    // recall another: the line is withheld, with the reason.
    let sneaky = work.path().join("sneaky-file");
    p.type_str(&format!("touch {}\x0f", sneaky.display()));
    p.output.wait_for("key other than Enter", T);
    p.type_str(&format!(
        "touch {}; echo done-$((2+3))\r",
        allowed.display()
    ));
    p.output.wait_for("done-5", T);
    assert!(allowed.exists());
    assert!(!forbidden.exists(), "the denied line ran on the host");
    assert!(!sneaky.exists(), "the Ctrl-O line ran on the host");
    p.type_str("exit\r");
    p.output.wait_for("2 input line(s) denied", T);
    let status = p.wait(T);
    // A withheld line makes hoopx exit 77 once the remote shell ends.
    assert_eq!(status.code(), Some(77), "{}", p.output.text());
    let rec = last_recording(&gw, &env);
    assert!(rec.contains(r#"\"denied\":\"no-forbidden\""#), "{rec}");
    assert!(rec.contains(r#"\"pty\":true"#), "{rec}");
    let secrets = sshd.key_lines();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_hidden(
        &secrets,
        &[("the recording", &rec), ("the terminal", &p.output.text())],
    );
    assert_nothing_left(&env);

    // The same in pipe mode: the line is withheld, the rest runs.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "web"]);
    let out = run(
        c,
        &format!("touch {}\necho piped-$((1+1))\n", forbidden.display()),
        T,
    );
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stdout.contains("piped-2"), "{out:?}");
    assert!(out.stderr.contains("no-forbidden"), "{out:?}");
    assert!(!forbidden.exists());
    let v = hoopx(&gw, &env).args(["verify", "last"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn pipes_pass_eof_signals_and_exit_statuses_as_openssh_does() {
    let env = Env::new();
    let sshd = Sshd::start();
    let gw = Gateway::start(&env, Some(&config(&sshd)), None);

    // EOF on stdin reaches the remote command.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "web", "wc", "-l"]);
    let out = run(c, "a\nb\nc\n", T);
    assert_eq!((out.code(), out.stdout.trim()), (0, "3"), "{out:?}");

    // stdout and stderr stay apart; `-n` reads no stdin; the status passes through.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "-n", "web"])
        .arg("echo out; echo err >&2; cat; exit 5");
    let out = run(c, "never read\n", T);
    assert_eq!(out.code(), 5, "{out:?}");
    assert_eq!(out.stdout, "out\n", "{out:?}");
    assert!(out.stderr.contains("err"), "{out:?}");

    // A remote command killed by a signal: 128 + n.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--target",
        "web",
        "--",
        "ssh",
        "web",
        "kill -TERM $$",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 143, "{out:?}");

    // Ctrl-C (SIGINT to hoopx) in pipe mode is passed to the remote command as a signal
    // request (this sshd refuses to signal a root login, so here the command goes on); a
    // second one ends the session at once, 130.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "web"])
        .arg("trap 'echo got-int; exit 7' INT; echo ready; sleep 600 & wait");
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("ready", T);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    stderr.wait_for("send it again", T);
    let root = nix::unistd::geteuid().is_root();
    if !root {
        let status = wait_timeout(&mut child, T).expect("the remote command ends");
        assert_eq!(status.code(), Some(7), "{}", stderr.text());
        assert!(stdout.text().contains("got-int"), "{}", stdout.text());
        return;
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_timeout(&mut child, T).expect("hoopx ends after a second Ctrl-C");
    assert_eq!(status.code(), Some(130), "{}", stderr.text());
    assert!(last_recording(&gw, &env).contains(r#"\"signal\":\"INT\""#));
}

#[test]
fn an_unreachable_host_or_a_lost_gateway_ends_the_session_clearly() {
    let env = Env::new();
    let sshd = Sshd::start();
    let mut gw = Gateway::start(&env, Some(&config(&sshd)), None);

    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "down", "--", "ssh", "down", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(out.stderr.contains("cannot reach 127.0.0.1:"), "{out:?}");

    // The gateway goes away mid-session: hoopx ends (69) and the remote command with it.
    let pidfile = env.path().join("remote.pid");
    let mut c = hoopx(&gw, &env);
    // Under a terminal (-tt): the remote command is hung up with it, as with OpenSSH.
    c.args(["exec", "--target", "web", "--", "ssh", "-tt", "web"])
        .arg(format!(
            "echo $$ > {}; echo ready; exec sleep 600",
            pidfile.display()
        ));
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("ready", T);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    gw.kill();
    let status = wait_timeout(&mut child, T).expect("hoopx ends when the gateway is lost");
    assert_eq!(status.code(), Some(69), "{}", stderr.text());
    assert!(
        stderr.text().contains("lost the gateway"),
        "{}",
        stderr.text()
    );
    wait_for("the remote command to end", T, || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            .is_err()
            .then_some(())
    });
    let _ = Command::new("true").status();
}

/// The API answer for an ssh target carries nothing of the target, and a client cannot
/// write the remote side's output or exit into the recording.
#[test]
fn the_session_answer_holds_no_key_and_the_client_cannot_forge_remote_output() {
    use futures_util::{SinkExt, StreamExt};
    use hoopx::proto::frame::{ClientFrame, ServerFrame, Stream};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let env = Env::new();
    let sshd = Sshd::start();
    let gw = Gateway::start(&env, Some(&config(&sshd)), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (id, error) = rt.block_on(async {
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/sessions", gw.url))
            .bearer_auth(crate::util::DEV_TOKEN)
            .header("hoopx-protocol", "1")
            .json(&serde_json::json!({"target": "web", "argv": ["ssh", "web", "sleep 30"], "mode": "pipe"}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for secret in sshd.key_lines() {
            assert!(!answer.contains(&secret), "the answer holds the key: {answer}");
        }
        let opened: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(opened["remote"], "ssh", "{answer}");
        assert!(opened.get("files").is_none() && opened.get("argv").is_none(), "{answer}");
        let id = opened["session_id"].as_str().unwrap().to_string();
        let url = format!(
            "{}{}",
            gw.url.replace("http://", "ws://"),
            opened["stream"].as_str().unwrap()
        );
        let mut req = url.into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert(
            "authorization",
            format!("Bearer {}", crate::util::DEV_TOKEN).parse().unwrap(),
        );
        h.insert("hoopx-protocol", "1".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let forged = ClientFrame::Output {
            stream: Stream::Stdout,
            data: bytes::Bytes::from_static(b"forged output\n"),
        };
        let mut error = None;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(T, ws.next()).await {
            let Message::Binary(b) = m else { break };
            match ServerFrame::decode(&b).unwrap() {
                ServerFrame::Ready => ws.send(Message::Binary(forged.encode())).await.unwrap(),
                ServerFrame::Error(e) => {
                    error = Some(e);
                    break;
                }
                _ => {}
            }
        }
        (id, error)
    });
    let e = error.expect("a protocol error");
    assert_eq!(e.code, "protocol", "{e:?}");
    let rec = last_recording(&gw, &env);
    assert!(!rec.contains("forged output"), "{rec}");
    assert!(rec.contains(&id) && rec.contains("aborted"), "{rec}");
}

#[test]
fn scp_and_sftp_go_through_the_gateway_and_each_transfer_is_recorded() {
    use sha2::Digest;
    let env = Env::new();
    let sshd = Sshd::start();
    let gw = Gateway::start(
        &env,
        Some(&format!(
            "{}[[rules.deny]]\nname = \"no-secret-files\"\npattern = '^sftp-\\S+ \\S*/secret'\ntargets = [\"web\"]\n",
            config(&sshd)
        )),
        None,
    );
    let remote = tempfile::tempdir().unwrap();
    let r = |name: &str| remote.path().join(name);
    std::fs::create_dir_all(r("secret")).unwrap();
    let content = "hello from the caller\n".repeat(5000);
    std::fs::write(env.path().join("up.txt"), &content).unwrap();
    // Only scp and sftp on PATH: no local ssh can carry the transfer.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["scp", "sftp"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), bin.join(tool)).unwrap();
    }
    let tool = |args: &[&str]| {
        let mut c = hoopx(&gw, &env);
        c.env("PATH", &bin)
            .args(["exec", "--target", "web", "--"])
            .args(args);
        run(c, "", T)
    };

    // Up and down with scp.
    let out = tool(&["scp", "up.txt", &format!("web:{}", r("up.txt").display())]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(r("up.txt")).unwrap(), content);
    let rec = last_recording(&gw, &env);
    let sha = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    assert!(rec.contains(r#"\"direction\":\"upload\""#), "{rec}");
    assert!(rec.contains(&sha), "{rec}");
    assert!(
        rec.contains(&format!("\\\"size\\\":{}", content.len())),
        "{rec}"
    );
    let out = tool(&["scp", &format!("web:{}", r("up.txt").display()), "down.txt"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(env.path().join("down.txt")).unwrap(),
        content
    );
    let rec = last_recording(&gw, &env);
    assert!(rec.contains(r#"\"direction\":\"download\""#), "{rec}");
    assert!(rec.contains(&sha), "{rec}");

    // A path a deny rule names is refused at the gateway: nothing reaches the host.
    let out = tool(&[
        "scp",
        "up.txt",
        &format!("web:{}", r("secret/x.txt").display()),
    ]);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("no-secret-files"), "{out:?}");
    assert!(!r("secret/x.txt").exists());

    // sftp, put and get in a batch.
    let batch = env.write(
        "batch",
        &format!(
            "put up.txt {0}\nget {0} got.txt\n",
            r("via-sftp.txt").display()
        ),
    );
    let out = tool(&["sftp", "-b", batch.to_str().unwrap(), "web"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(r("via-sftp.txt")).unwrap(), content);
    assert_eq!(
        std::fs::read_to_string(env.path().join("got.txt")).unwrap(),
        content
    );
    let rec = last_recording(&gw, &env);
    assert!(rec.matches(&sha).count() >= 2, "{rec}");
    let secrets = sshd.key_lines();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_hidden(&secrets, &[("the recording", &rec)]);
    assert_nothing_left(&env);
}
