//! Targets whose credentials the gateway holds: a real sshd driven by the real ssh client,
//! real psql against a real PostgreSQL with password authentication, and real kubectl
//! against a stand-in API server. Each story also shows the credential never reached the
//! caller's stdout or stderr, the recording, or a file left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{free_port, run, wait_for, Env, Gateway, Lines, Output, PtyChild};

const T: Duration = Duration::from_secs(60);

/// `hoopx` pointed at `gw`, with its temp directory in the test's own `tmp`, where the
/// session directories go.
pub(crate) fn hoopx(gw: &Gateway, env: &Env) -> Command {
    let mut c = gw.hoopx(env);
    c.env("TMPDIR", tmp_dir(env));
    c
}

pub(crate) fn tmp_dir(env: &Env) -> PathBuf {
    let p = env.path().join("tmp");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// No session directory (or anything else) is left in the test's temp directory.
pub(crate) fn assert_nothing_left(env: &Env) {
    let left: Vec<_> = std::fs::read_dir(tmp_dir(env))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

/// The last session's recording, as `hoopx replay --format json` exports it, decoded.
pub(crate) fn last_recording(gw: &Gateway, env: &Env) -> String {
    let mut c = gw.hoopx(env);
    c.args(["replay", "last", "--format", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    // Event data is base64 in the export: decode every string that decodes.
    use base64::Engine;
    let mut all = out.stdout.clone();
    for line in out.stdout.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(d) = v["data"].as_str() {
                if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(d) {
                    all.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
    }
    all
}

/// None of `secrets` is in any of the texts.
pub(crate) fn assert_hidden(secrets: &[&str], texts: &[(&str, &str)]) {
    for (what, text) in texts {
        for s in secrets {
            assert!(!text.contains(s), "{what} holds the secret {s:?}:\n{text}");
        }
    }
}

/// A public key's SHA256 fingerprint, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(pub_key: &Path) -> String {
    let out = sh(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pub_key));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn sh(cmd: &mut Command) -> std::process::Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------------------
// ssh

/// A real OpenSSH server on a free loopback port with a generated host key, accepting one
/// generated user key for the current user. Run as the current user; as root it needs the
/// privilege-separation directory /run/sshd.
pub(crate) struct Sshd {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    child: Child,
    pub(crate) log: Lines,
}

fn sshd_bin() -> PathBuf {
    for p in ["/usr/sbin/sshd", "/usr/local/sbin/sshd"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("sshd is not installed: run scripts/test.sh, which installs openssh-server");
}

impl Sshd {
    pub(crate) fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("hoopx-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for key in ["host_key", "user_key"] {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(d.join(key)));
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nUsePAM no\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nPrintMotd no\n\
                 PrintLastLog no\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n",
                d = d.display()
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let mut child = Command::new(sshd_bin())
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start sshd");
            let log = Lines::collect(child.stderr.take().unwrap());
            let up = wait_for("sshd to listen", T, || {
                let t = log.text();
                if t.contains("Server listening on") {
                    return Some(true);
                }
                if let Ok(Some(s)) = child.try_wait() {
                    if t.contains("Address already in use") {
                        return Some(false);
                    }
                    panic!("sshd exited with {s}: {t}");
                }
                None
            });
            if up {
                return Sshd {
                    dir,
                    port,
                    child,
                    log,
                };
            }
        }
        panic!("sshd found no free port in 5 attempts");
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The host's public key, as a bare known_hosts entry.
    pub(crate) fn host_key(&self) -> String {
        std::fs::read_to_string(self.path("host_key.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The lines of the user's private key that are secret (the base64 body).
    pub(crate) fn key_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("user_key"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// A gateway config with target `web` on this server, whose key the gateway reads from
    /// a file, and `stale`, whose known_hosts holds another host's key.
    pub(crate) fn config(&self, other_host_key: &str) -> String {
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        let target = |name: &str, known: &str| {
            format!(
                "[[targets]]\nname = \"{name}\"\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\n\
                 user = \"{user}\"\nprivate_key = {{ file = \"{}\" }}\nknown_hosts = \"{known}\"\n\n",
                self.port,
                self.path("user_key").display(),
            )
        };
        format!(
            "{}{}",
            target("web", &self.host_key()),
            target("stale", other_host_key)
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_runs_commands_on_the_target_with_the_gateways_key_in_pipe_mode() {
    let env = Env::new();
    let sshd = Sshd::start();
    let other = Env::new();
    sh(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k")));
    let other_key = std::fs::read_to_string(other.path().join("k.pub")).unwrap();
    let gw = Gateway::start(&env, Some(&sshd.config(other_key.trim())), None);
    let secrets = sshd.key_lines();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // The caller has no key, no agent and no ssh config of its own: HOME is empty.

    // A remote command, its output and its exit status.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "web"])
        .arg("echo remote-$((6*7)) on $SSH_CONNECTION; exit 3");
    let out = run(c, "", T);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stdout.starts_with("remote-42 on 127.0.0.1 "), "{out:?}");
    assert_nothing_left(&env);

    // No host named: the target's host, with the caller's input as the remote shell's.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh"]);
    let out = run(c, "echo via-stdin\nexit 0\n", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("via-stdin"), "{out:?}");

    // The tool echoes the private key itself (the test's sshd runs on this machine): every
    // line of it is masked.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "web", "--", "ssh", "web", "cat"])
        .arg(sshd.path("user_key"));
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("[REDACTED:"), "{out:?}");
    let rec = last_recording(&gw, &env);
    assert_hidden(
        &secrets,
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("the recording", &rec),
            ("the gateway's log", &gw.stderr.text()),
        ],
    );
    assert_nothing_left(&env);

    // The host key is checked against the target's known_hosts: a mismatch fails at once,
    // with no question asked, naming both fingerprints.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "stale", "--", "ssh", "stale", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    let presented = fingerprint(&sshd.path("host_key.pub"));
    let known = fingerprint(&other.path().join("k.pub"));
    assert!(out.stderr.contains("host key mismatch"), "{out:?}");
    assert!(out.stderr.contains(&presented), "{presented}: {out:?}");
    assert!(out.stderr.contains(&known), "{known}: {out:?}");
    assert_nothing_left(&env);

    // Options that would send the key elsewhere, other hosts and other programs are
    // refused before anything runs.
    let marker = env.path().join("ran");
    for argv in [
        vec![
            "ssh".to_string(),
            "-o".into(),
            format!("ProxyCommand=touch {}", marker.display()),
            "web".into(),
        ],
        vec!["ssh".into(), "-i".into(), "/tmp/k".into(), "web".into()],
        // ssh reads options after the host too.
        vec![
            "ssh".into(),
            "web".into(),
            format!("-oProxyCommand=touch {}", marker.display()),
        ],
        vec!["ssh".into(), "localhost".into(), "true".into()],
        vec![
            "sh".into(),
            "-c".into(),
            format!("touch {}", marker.display()),
        ],
    ] {
        let mut c = hoopx(&gw, &env);
        c.args(["exec", "--target", "web", "--"]).args(&argv);
        let out = run(c, "", T);
        assert_eq!(out.code(), 77, "{argv:?}: {out:?}");
        assert!(out.stderr.contains("hint:"), "{out:?}");
    }
    assert!(!marker.exists());
    assert_nothing_left(&env);
}

#[test]
fn interactive_ssh_under_a_pty_resizes_takes_ctrl_c_and_passes_the_exit_status() {
    let env = Env::new();
    let sshd = Sshd::start();
    let gw = Gateway::start(&env, Some(&sshd.config(&sshd.host_key())), None);
    let mut cmd = hoopx(&gw, &env);
    cmd.env("TERM", "xterm")
        .args(["exec", "--target", "web", "--", "ssh"]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.type_str("PS1='rem''ote$ '\r");
    p.output.wait_for("remote$ ", T);
    p.type_str("stty size\r");
    p.output.wait_for("30 100", T);

    // A resize of the caller's terminal reaches the remote terminal. ssh learns of it by its
    // own SIGWINCH: ask again until the remote side has it.
    p.resize(120, 40);
    let mut resized = false;
    for i in 1000..1020 {
        p.type_str(&format!("stty size; echo asked-$(({i}+0))\r"));
        p.output.wait_for(&format!("asked-{i}"), T);
        if p.output.text().contains("40 120") {
            resized = true;
            break;
        }
    }
    assert!(resized, "{}", p.output.text());

    // Ctrl-C interrupts the remote command, not the session.
    p.type_str("echo started-$((1+1)); sleep 600\r");
    p.output.wait_for("started-2", T);
    p.type_str("\x03");
    p.type_str("echo after-$((1+1))\r");
    p.output.wait_for("after-2", T);

    // The remote shell's exit status is hoopx's.
    p.type_str("exit 4\r");
    let status = p.wait(T);
    assert_eq!(status.code(), Some(4), "{}", p.output.text());
    let screen = p.output.text();
    let secrets = sshd.key_lines();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_hidden(
        &secrets,
        &[
            ("the terminal", &screen),
            ("the recording", &last_recording(&gw, &env)),
        ],
    );
    assert_nothing_left(&env);
    assert!(
        sshd.log.text().contains("Accepted publickey"),
        "{}",
        sshd.log.text()
    );
}

// ---------------------------------------------------------------------------------------
// postgres

#[test]
fn psql_connects_with_the_targets_password_and_nothing_on_the_command_line() {
    let env = Env::new();
    let pg = crate::util::Postgres::start();
    let password = "Sw0rdfish-pg-42";
    pg.create_db("shop");
    pg.sql(
        "shop",
        &format!(
            "create role app login password '{password}'; \
             create table items (id int); insert into items values (1), (2); \
             grant select on items to app;"
        ),
    );
    // Password authentication for `app` over TCP; the rest stays as the harness needs it.
    let hba = pg.dir.path().join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "host all app 127.0.0.1/32 scram-sha-256\nhost all app ::1/128 scram-sha-256\n{old}"
        ),
    )
    .unwrap();
    pg.sql("postgres", "select pg_reload_conf()");
    // Without the password, `app` is refused: the check is real.
    let direct = Command::new("psql")
        .args([
            "-X",
            "-w",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "app",
            "shop",
            "-c",
            "select 1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!direct.status.success());

    let pwfile = env.write("pg-password", &format!("{password}\n"));
    let config = format!(
        "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\n\
         user = \"app\"\ndatabase = \"shop\"\npassword = {{ file = \"{}\" }}\n",
        pg.port,
        pwfile.display()
    );
    let gw = Gateway::start(&env, Some(&config), None);

    // The caller's own libpq settings cannot redirect the connection.
    let mut c = hoopx(&gw, &env);
    c.env("PGHOSTADDR", "192.0.2.1")
        .env("PGPASSWORD", "wrong")
        .args(["exec", "--target", "pg", "--", "psql", "-X", "-At", "-c"])
        .arg("select current_user, current_database(), count(*) from items");
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "app|shop|2", "{out:?}");
    assert_nothing_left(&env);

    // psql echoing the password is masked; the shell escape is denied by default.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "pg", "--", "psql", "-X", "-At"]);
    let out = run(
        c,
        "select 'Sw0rd' || 'fish-pg-42' as pw;\n\\! cat \"$PGPASSFILE\"\nselect 40 + 2;\n",
        T,
    );
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stdout.contains("[REDACTED:target-secret]"), "{out:?}");
    assert!(out.stdout.contains("42"), "{out:?}");
    assert!(out.stderr.contains("psql-shell-escape"), "{out:?}");
    let rec = last_recording(&gw, &env);
    assert_hidden(
        &[password],
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("the recording", &rec),
            ("the gateway's log", &gw.stderr.text()),
        ],
    );
    assert_nothing_left(&env);

    // A connection option on the command line is refused: it could take the password to
    // another server.
    let mut c = hoopx(&gw, &env);
    c.args(["exec", "--target", "pg", "--", "psql", "-h", "192.0.2.1"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stderr.contains("sets the connection itself"), "{out:?}");
    // So is another program, which would get the password file.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--target",
        "pg",
        "--",
        "sh",
        "-c",
        "cat $PGPASSFILE",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 77, "{out:?}");
    assert_nothing_left(&env);

    // Interactive psql under a PTY: connected by the target, the escape withheld at Enter.
    let mut cmd = hoopx(&gw, &env);
    cmd.env("TERM", "xterm")
        .args(["exec", "--target", "pg", "--", "psql", "-X"]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("shop=>", T);
    p.type_str("\\! cat $PGPASSFILE\r");
    p.output.wait_for("psql-shell-escape", T);
    p.type_str("select current_user || '-pty';\r");
    p.output.wait_for("app-pty", T);
    p.type_str("\\q\r");
    assert_eq!(p.wait(T).code(), Some(77), "{}", p.output.text());
    assert_hidden(&[password], &[("the terminal", &p.output.text())]);
    assert_nothing_left(&env);
}

// ---------------------------------------------------------------------------------------
// kubernetes

// The stand-in API server (no real cluster can run here): see tests/kube.rs.
use crate::kube::ApiServer;

#[test]
fn kubectl_uses_a_per_session_kubeconfig_and_deny_rules_match_its_verbs() {
    let env = Env::new();
    let token = "kube-token-7f3a9c2e51d04b86";
    let api = ApiServer::start(env.path(), token);
    let tokfile = env.write("kube-token", token);
    let cafile = env.write("ca.pem", &api.ca_pem);
    let config = format!(
        r#"[[targets]]
name = "cluster"
kind = "kubernetes"
server = "{}"
ca = {{ file = "{}" }}
token = {{ file = "{}" }}
namespace = "shop"

[[rules.deny]]
name = "no-kubectl-exec"
pattern = '^\S*kubectl\s(.*\s)?(exec|attach)(\s|$)'

[[rules.deny]]
name = "no-force"
pattern = '\s--force(\s|=|$)'

[[rules.review]]
name = "kubectl-deletes"
pattern = '^\S*kubectl\s(.*\s)?delete(\s|$)'
reviewers = ["sre"]

[[dev.identities]]
name = "sam"
token = "tok-sam-000001"
groups = ["sre"]
"#,
        api.url,
        cafile.display(),
        tokfile.display()
    );
    let gw = Gateway::start(&env, Some(&config), None);
    // The caller's own kubeconfig points elsewhere; it is never used.
    let own = env.write(
        "own-kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [{name: x, cluster: {server: 'https://192.0.2.1:6443'}}]\n\
         users: [{name: x, user: {token: callers-own-token}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n\
         current-context: x\n",
    );
    let kubectl = |args: &[&str]| {
        let mut c = hoopx(&gw, &env);
        c.env("KUBECONFIG", &own)
            .args(["exec", "--target", "cluster", "--", "kubectl"])
            .args(args);
        run(c, "", T)
    };

    let out = kubectl(&["get", "pods"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("NAME"), "{out:?}");
    assert!(out.stdout.contains("web-1"), "{out:?}");
    assert!(out.stdout.contains("web-2"), "{out:?}");
    assert_nothing_left(&env);
    let reqs = api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/shop/pods")),
        "{reqs:?}"
    );
    assert!(reqs.iter().all(|r| r.ends_with("auth=true")), "{reqs:?}");

    // Deny rules match kubectl's verbs and flags on the command line: nothing is sent.
    let before = api.requests().len();
    for (args, rule) in [
        (vec!["exec", "web-1", "--", "sh"], "no-kubectl-exec"),
        (vec!["delete", "pod", "web-1", "--force"], "no-force"),
        (vec!["port-forward", "web-1", "8080"], "kubectl-tunnel"),
    ] {
        let out = kubectl(&args);
        assert_eq!(out.code(), 77, "{args:?}: {out:?}");
        assert!(out.stderr.contains(rule), "{out:?}");
    }
    // Flags that would take the token to another server are refused too.
    let out = kubectl(&["--server=https://192.0.2.1", "get", "pods"]);
    assert_eq!(out.code(), 77, "{out:?}");
    assert_eq!(api.requests().len(), before, "no request reached the API");
    // A kubectl plugin on the caller's PATH never runs with the token in reach.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = env.path().join("plugin-ran");
    let plugin = bin.join("kubectl-steal");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\ncp \"$KUBECONFIG\" {}\n", marker.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = hoopx(&gw, &env);
    c.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    )
    .args(["exec", "--target", "cluster", "--", "kubectl", "steal"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stderr.contains("no kubectl plugins"), "{out:?}");
    assert!(!marker.exists());

    // A delete waits for a reviewer (review rules match kubectl's verbs too): nothing is
    // sent until one approves, then it goes through once; the token never shows.
    let mut c = hoopx(&gw, &env);
    c.env("KUBECONFIG", &own).args([
        "exec",
        "--no-wait",
        "--output",
        "json",
        "--target",
        "cluster",
        "--",
        "kubectl",
        "delete",
        "pod",
        "web-1",
    ]);
    let asked = run(c, "", T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    assert_eq!(
        api.requests().len(),
        before,
        "nothing reached the API while pending"
    );
    let pending: serde_json::Value =
        serde_json::from_str(asked.stdout.lines().next().unwrap()).unwrap();
    let review = pending["review_id"].as_str().unwrap().to_string();
    let mut c = hoopx(&gw, &env);
    c.env("HOOPX_TOKEN", "tok-sam-000001")
        .args(["review", "approve", &review, "--yes"]);
    assert_eq!(run(c, "", T).code(), 0);
    let mut c = hoopx(&gw, &env);
    c.env("KUBECONFIG", &own).args([
        "exec", "--review", &review, "--target", "cluster", "--", "kubectl", "delete", "pod",
        "web-1",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pod \"web-1\" deleted"), "{out:?}");
    assert!(api
        .requests()
        .iter()
        .any(|r| r.starts_with("DELETE /api/v1/namespaces/shop/pods/web-1")));
    let out2 = kubectl(&["config", "view", "--raw"]);
    assert_eq!(out2.code(), 0, "{out2:?}");
    // The session's kubeconfig names its local endpoint and holds no cluster credential.
    assert!(
        out2.stdout.contains("server: https://127.0.0.1:"),
        "{out2:?}"
    );
    let rec = last_recording(&gw, &env);
    assert_hidden(
        &[token, "callers-own-token"],
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("config view stdout", &out2.stdout),
            ("the recording", &rec),
            ("the gateway's log", &gw.stderr.text()),
        ],
    );
    assert_nothing_left(&env);
}

#[test]
fn target_credential_config_errors_name_the_line() {
    let env = Env::new();
    let check = |text: &str| -> Output {
        let p = env.write("gw.toml", text);
        let mut c = env.hoopx();
        c.args(["gateway", "check", "--dev", "--config"]).arg(&p);
        run(c, "", T)
    };
    let out = check("[[targets]]\nname = \"web\"\nkind = \"ssh\"\nhost = \"10.0.0.1\"\n");
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("gw.toml:1:1"), "{out:?}");
    assert!(out.stderr.contains("known_hosts"), "{out:?}");
    let out = check("[[targets]]\nname = \"k\"\nkind = \"kubernetes\"\nserver = \"https://k:6443\"\nhost = \"x\"\n");
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("gw.toml:5:8"), "{out:?}");
    assert!(
        out.stderr
            .contains("host does not apply to a kubernetes target"),
        "{out:?}"
    );
    let out = check("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\npassword = { file = \"/nonexistent/pw\" }\n");
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("gw.toml:4:12"), "{out:?}");
    assert!(
        out.stderr.contains("cannot read /nonexistent/pw"),
        "{out:?}"
    );
    let out = check("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\nhost = \"db\"\ncommand = [\"psql\", \"sh\"]\nsecret_files.PGSSLKEY = { env = \"PATH\" }\n");
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(
        out.stderr
            .contains("\"sh\" would get the target's credentials"),
        "{out:?}"
    );
    // A postgres password stays at the gateway: any client may use the local endpoint.
    let out = check("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\nhost = \"db\"\nuser = \"app\"\ncommand = [\"psql\", \"python3\"]\npassword = { env = \"PATH\" }\n");
    assert_eq!(out.code(), 0, "{out:?}");
    // Its role is the target's: a client may not try the password as another.
    let out = check("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\nhost = \"db\"\npassword = { env = \"PATH\" }\n");
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("needs user"), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// the session's private directory

#[test]
fn session_files_are_private_and_removed_however_the_session_ends() {
    let env = Env::new();
    let secret = "svc-account-key-5d1f0c";
    let file = env.write("sa.json", &format!("{{\"private_key\": \"{secret}\"}}\n"));
    let config = format!(
        "[[targets]]\nname = \"shell\"\nkind = \"command\"\ncommand = [\"sh\"]\n\
         secret_files.SA_KEY = {{ file = \"{}\" }}\n",
        file.display()
    );
    let mut gw = Gateway::start(&env, Some(&config), None);
    let script = "stat -c '%a %n' \"$HOOPX_SESSION_DIR\" \"$SA_KEY\"; \
                  grep -c svc-account \"$SA_KEY\"; echo ready; exec sleep 600";

    // The tool sees a 0700 directory holding a 0600 file with the value.
    let spawn = |gw: &Gateway| {
        let mut c = hoopx(gw, &env);
        c.args(["exec", "--no-tty", "--", "sh", "-c", script]);
        crate::util::spawn_piped(c)
    };
    let (mut child, stdout, stderr) = spawn(&gw);
    let out = stdout.wait_for("ready", T);
    let dir = tmp_dir(&env);
    assert!(
        out.contains(&format!("700 {}/hoopx-session-", dir.display())),
        "{out}"
    );
    assert!(out.contains("600 "), "{out}");
    assert!(out.contains("\n1\n"), "the tool read the value: {out}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // Ctrl-C (SIGINT to hoopx): forwarded to the tool, which ends; the files go with it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx ends");
    assert_eq!(status.code(), Some(130), "{}", stderr.text());
    assert_nothing_left(&env);

    // SIGTERM to hoopx: the same.
    let (mut child, stdout, _) = spawn(&gw);
    stdout.wait_for("ready", T);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    crate::util::wait_timeout(&mut child, T).expect("hoopx ends");
    assert_nothing_left(&env);

    // SIGKILL leaves the directory behind; the next session removes it.
    let (mut child, stdout, _) = spawn(&gw);
    stdout.wait_for("ready", T);
    let tool = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(tool, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--no-tty",
        "--",
        "sh",
        "-c",
        "ls \"$(dirname \"$HOOPX_SESSION_DIR\")\"",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "only this session's own: {out:?}"
    );
    assert_nothing_left(&env);

    // The gateway lost mid-session: the tool is stopped and the files removed.
    let (mut child, stdout, stderr) = spawn(&gw);
    stdout.wait_for("ready", T);
    gw.kill();
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx ends");
    assert_eq!(status.code(), Some(69), "{}", stderr.text());
    assert_nothing_left(&env);
    assert!(!stdout.text().contains(secret) && !stderr.text().contains(secret));
}
