//! `cargo bench --bench ssh`: what the gateway as SSH client costs next to plain OpenSSH,
//! in the same run, against a real sshd started for the run (loopback, generated keys).
//!
//! 1. Throughput: `ssh HOST cat BIGFILE > /dev/null`, plain `ssh` against
//!    `hoopx exec --target web -- ssh web cat BIGFILE` (the gateway's SSH channel, masking
//!    and recording every byte, the session stream to the client), MiB/s.
//! 2. Per call: `ssh HOST true`, wall time of the whole command, plain against hoopx.
//!
//! Figures are medians over interleaved runs. `HOOPX_BENCH_SSH_RUNS` (3),
//! `HOOPX_BENCH_SSH_MIB` (64, the file) and `HOOPX_BENCH_SSH_CALLS` (10 per run) change it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hoopx");
const TOKEN: &str = "bench-token";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ok(c: &mut Command) {
    let out = c.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `c` with stdout to /dev/null; its wall time.
fn timed(c: &mut Command) -> Duration {
    let t = Instant::now();
    let out = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_of(mut child: Child, needle: &'static str) -> (Kill, String) {
    use std::io::{BufRead, BufReader};
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no {needle:?} within 30 s"));
    (Kill(child), line)
}

fn main() {
    let runs = env_num("HOOPX_BENCH_SSH_RUNS", 3);
    let mib = env_num("HOOPX_BENCH_SSH_MIB", 64);
    let calls = env_num("HOOPX_BENCH_SSH_CALLS", 10);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| -> PathBuf { d.join(n) };
    for key in ["host_key", "user_key"] {
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(p(key)));
    }
    std::fs::copy(p("user_key.pub"), p("authorized_keys")).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let port = free_port();
    std::fs::write(
        p("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             PrintMotd no\nPrintLastLog no\nSubsystem sftp internal-sftp\n",
            d = d.display()
        ),
    )
    .unwrap();
    let sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(p("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sshd (install openssh-server)");
    let (_sshd, _) = log_of(sshd, "Server listening on");
    let host_key = std::fs::read_to_string(p("host_key.pub")).unwrap();
    let host_key = host_key.trim();
    std::fs::write(p("known_hosts"), format!("[127.0.0.1]:{port} {host_key}\n")).unwrap();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    std::fs::write(
        p("gateway.toml"),
        format!(
            "[[targets]]\nname = \"web\"\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             user = \"{user}\"\nprivate_key = {{ file = \"{}\" }}\nknown_hosts = \"{host_key}\"\n",
            p("user_key").display()
        ),
    )
    .unwrap();
    let gw = Command::new(BIN)
        .args([
            "gateway",
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(p("gateway.toml"))
        .arg("--store")
        .arg(format!("sqlite://{}", p("gw.db").display()))
        .env("HOOPX_DEV_TOKEN", TOKEN)
        .env("HOME", d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the gateway");
    let (_gw, line) = log_of(gw, "listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    // The big file, on the "remote" host (this machine).
    let big = p("big");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let row = b"42 | 2026-11-04 10:00:00 | shipped   | 129.90 | order for customer 1234\n";
        let mut left = mib << 20;
        while left > 0 {
            let n = left.min(row.len());
            f.write_all(&row[..n]).unwrap();
            left -= n;
        }
    }
    let plain = |cmd: &str| {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", p("known_hosts").display()))
        .arg("-i")
        .arg(p("user_key"))
        .args(["-p", &port.to_string(), "127.0.0.1", cmd]);
        c
    };
    let home = p("home");
    std::fs::create_dir_all(&home).unwrap();
    let hoopx = |cmd: &str| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("HOOPX_GATEWAY", &url)
            .env("HOOPX_TOKEN", TOKEN)
            .args(["exec", "--target", "web", "--", "ssh", "web", cmd]);
        c
    };
    let cat = format!("cat {}", big.display());
    let (mut tp, mut th, mut cp, mut ch) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let size = (mib << 20) as f64 / (1 << 20) as f64;
        tp.push(size / timed(&mut plain(&cat)).as_secs_f64());
        th.push(size / timed(&mut hoopx(&cat)).as_secs_f64());
        for _ in 0..calls {
            cp.push(timed(&mut plain("true")).as_secs_f64() * 1000.0);
            ch.push(timed(&mut hoopx("true")).as_secs_f64() * 1000.0);
        }
    }
    let (tp, th, cp, ch) = (median(&tp), median(&th), median(&cp), median(&ch));
    println!("ssh through the gateway against plain OpenSSH, same sshd, {runs} runs (medians)");
    println!("| figure | plain ssh | hoopx | hoopx/plain |");
    println!("|---|---|---|---|");
    println!(
        "| `ssh host cat` {mib} MiB | {tp:.0} MiB/s | {th:.0} MiB/s | {:.2} |",
        th / tp
    );
    println!(
        "| `ssh host true`, per call | {cp:.1} ms | {ch:.1} ms | {:+.1} ms |",
        ch - cp
    );
}
