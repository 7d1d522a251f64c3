//! Test harness: the real `hoopx` binary in a fresh temp HOME, a real gateway on a
//! kernel-assigned loopback port, a real PostgreSQL started from the installed server
//! binaries, and a real pseudo-terminal to drive PTY mode.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hoopx");
pub const DEV_TOKEN: &str = "test-dev-token-0123456789";

/// Waits until `f` returns `Some`, polling, or panics after `timeout` saying `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh HOME with XDG dirs, for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("hoopx-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `hoopx` with a clean environment: only PATH, HOME and XDG dirs.
    pub fn hoopx(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("LANG", "C.UTF-8")
            .current_dir(self.path());
        c
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// The output of a finished command.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with `stdin`, failing the test if it takes longer than `timeout`.
pub fn run(mut cmd: Command, stdin: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = match wait_timeout(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&o.join().unwrap()).into_owned();
            let stderr = String::from_utf8_lossy(&e.join().unwrap()).into_owned();
            panic!("command timed out after {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
    };
    let _ = writer.join();
    Output {
        status,
        stdout: String::from_utf8_lossy(&o.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&e.join().unwrap()).into_owned(),
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Collects a stream on a thread as it comes (partial lines too, such as prompts) so tests
/// can wait for text in it.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    pub fn collect(mut r: impl Read + Send + 'static) -> Lines {
        let l = Lines::default();
        let buf = l.0.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        l
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        wait_for(&format!("{needle:?} in output"), timeout, || {
            let t = self.text();
            t.contains(needle).then_some(t)
        })
    }
}

/// The URL a starting `hoopx gateway serve` says it listens on; panics if it exits first.
pub fn listening_url(child: &mut Child, stderr: &Lines) -> String {
    wait_for("the gateway to listen", Duration::from_secs(30), || {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("gateway exited with {s}: {}", stderr.text());
        }
        let t = stderr.text();
        let at = t.find("listening on ")?;
        let rest = &t[at + "listening on ".len()..];
        // Output is collected as it comes: wait for the whole line.
        let line = &rest[..rest.find('\n')?];
        Some(line.split_whitespace().next()?.to_string())
    })
}

/// A real `hoopx gateway serve --dev` on a free loopback port.
pub struct Gateway {
    pub child: Child,
    pub url: String,
    pub stderr: Lines,
}

impl Gateway {
    /// Starts a gateway with `config` (TOML text) or the default policy, storing in `store`
    /// (default: a SQLite file in the env).
    pub fn start(env: &Env, config: Option<&str>, store: Option<&str>) -> Gateway {
        Gateway::start_with(env, config, store, |_| {})
    }

    /// `start`, with more arguments or environment for `gateway serve` set by `more`.
    pub fn start_with(
        env: &Env,
        config: Option<&str>,
        store: Option<&str>,
        more: impl FnOnce(&mut Command),
    ) -> Gateway {
        let mut cmd = env.hoopx();
        cmd.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"]);
        if let Some(c) = config {
            let p = env.write("gateway.toml", c);
            cmd.arg("--config").arg(p);
        }
        let store = store
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", env.path().join("gw.db").display()));
        cmd.arg("--store").arg(store);
        more(&mut cmd);
        cmd.env("HOOPX_DEV_TOKEN", DEV_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gateway");
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let url = listening_url(&mut child, &stderr);
        Gateway { child, url, stderr }
    }

    /// `hoopx` pointed at this gateway with the dev token.
    pub fn hoopx(&self, env: &Env) -> Command {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &self.url)
            .env("HOOPX_TOKEN", DEV_TOKEN);
        c
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Finds a PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/*/bin.
pub fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    for d in dirs {
        if d.join(name).exists() {
            return d.join(name);
        }
    }
    for d in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "PostgreSQL's {name} is not installed: run the README's test command, which installs it"
    );
}

/// A real PostgreSQL server in a temp dir on a free port, trust auth, stopped on drop.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn as_postgres_user(cmd: &mut Command, dir: &Path) {
    use std::os::unix::process::CommandExt;
    // initdb refuses to run as root; run the server as the `postgres` user then.
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect(
                "running as root needs a `postgres` user (installed with the postgresql package)",
            );
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("hoopx-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut init = Command::new(pg_bin("initdb"));
        init.args(["-D"]).arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        as_postgres_user(&mut init, dir.path());
        as_postgres_user(&mut init, &data);
        let out = init.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The port is free when picked but may be taken before postgres binds it (tests run
        // in parallel): then try another one.
        let log = dir.path().join("server.log");
        for _attempt in 0..5 {
            let port = free_port();
            let mut srv = Command::new(pg_bin("postgres"));
            srv.arg("-D")
                .arg(&data)
                .args([
                    "-p",
                    &port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                ])
                .arg(format!("unix_socket_directories={}", dir.path().display()))
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            as_postgres_user(&mut srv, &data);
            let mut child = srv.spawn().expect("start postgres");
            let args = |db: &str| {
                ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-p"]
                    .map(String::from)
                    .to_vec()
            };
            let ready = wait_for(
                "PostgreSQL to accept connections",
                Duration::from_secs(30),
                || {
                    let ok = Command::new("psql")
                        .args(args("postgres"))
                        .arg(port.to_string())
                        .args(["-Atc", "select 1"])
                        .stdin(Stdio::null())
                        .output()
                        .map(|o| o.status.success())
                        .unwrap_or(false);
                    if ok {
                        return Some(true);
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        let text = std::fs::read_to_string(&log).unwrap_or_default();
                        if text.contains("could not bind") || text.contains("already in use") {
                            return Some(false);
                        }
                        panic!("postgres exited with {status}: {text}");
                    }
                    None
                },
            );
            if ready {
                return Postgres { dir, port, child };
            }
        }
        panic!("postgres found no free port in 5 attempts");
    }

    /// A postgres target's connection settings for this server (trust auth as
    /// `postgres`), to put under `kind = "postgres"` in a gateway config.
    pub fn target_settings(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\n",
            self.port
        )
    }

    /// `config` with every postgres target pointed at this server.
    pub fn config(&self, config: &str) -> String {
        config.replace(
            "kind = \"postgres\"\n",
            &format!("kind = \"postgres\"\n{}", self.target_settings()),
        )
    }

    /// psql connection arguments for `db`.
    pub fn args(&self, db: &str) -> Vec<String> {
        vec![
            "-X".into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
            "-d".into(),
            db.into(),
        ]
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL directly, not through hoopx: how a test looks at the database itself.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(self.args(db))
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn create_db(&self, db: &str) {
        self.sql("postgres", &format!("create database {db}"));
    }
}

impl Postgres {
    /// Stops the server (fast shutdown: clients are disconnected) and starts it again on
    /// the same port and data, waiting until it accepts connections.
    pub fn restart(&mut self, down_for: Duration) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = wait_timeout(&mut self.child, Duration::from_secs(30));
        std::thread::sleep(down_for);
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server-restarted.log");
        let mut srv = Command::new(pg_bin("postgres"));
        srv.arg("-D")
            .arg(&data)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
            ])
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        as_postgres_user(&mut srv, &data);
        self.child = srv.spawn().expect("restart postgres");
        let port = self.port.to_string();
        wait_for(
            "PostgreSQL to accept connections again",
            Duration::from_secs(30),
            || {
                Command::new("psql")
                    .args([
                        "-X",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-p",
                    ])
                    .arg(&port)
                    .args(["-Atc", "select 1"])
                    .stdin(Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
            },
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        if wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process on a real pseudo-terminal that the test holds the master of.
pub struct PtyChild {
    pub child: Child,
    master: std::fs::File,
    /// The slave side, kept open so the test can read the terminal's settings.
    pub slave: OwnedFd,
    pub output: Lines,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl PtyChild {
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> PtyChild {
        use std::os::unix::process::CommandExt;
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave_fd = pty.slave.as_raw_fd();
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(dup(&pty.slave))
            .stdout(dup(&pty.slave))
            .stderr(dup(&pty.slave));
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if nix::libc::ioctl(slave_fd, nix::libc::TIOCSCTTY as _, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        let master = std::fs::File::from(pty.master);
        let raw = Arc::new(Mutex::new(Vec::new()));
        let output = Lines::default();
        {
            let mut r = master.try_clone().unwrap();
            let raw = raw.clone();
            let text = output.0.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                    text.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        PtyChild {
            child,
            master,
            slave: pty.slave,
            output,
            raw,
        }
    }

    pub fn type_str(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Resizes the terminal; the kernel sends SIGWINCH to its foreground process group.
    pub fn resize(&self, cols: u16, rows: u16) {
        let ws = nix::libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let r = unsafe { nix::libc::ioctl(self.master.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ");
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match wait_timeout(&mut self.child, timeout) {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                panic!(
                    "pty child did not exit within {timeout:?}; screen:\n{}",
                    self.output.text()
                );
            }
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tool that records its pid, says `ready` and would then run for ten minutes: long
/// enough that only hoopx stopping it can make it go away within a test.
pub struct LongTool {
    pidfile: PathBuf,
}

impl LongTool {
    pub fn new(env: &Env) -> LongTool {
        LongTool {
            pidfile: env.path().join("tool.pid"),
        }
    }

    /// The `sh -c` script to run.
    pub fn script(&self) -> String {
        format!(
            "echo $$ > {}; echo ready; exec sleep 600",
            self.pidfile.display()
        )
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        let text = std::fs::read_to_string(&self.pidfile).expect("the tool wrote its pid");
        nix::unistd::Pid::from_raw(text.trim().parse().expect("a pid"))
    }

    pub fn wait_gone(&self, timeout: Duration) {
        let pid = self.pid();
        wait_for("the tool to be gone", timeout, || {
            nix::sys::signal::kill(pid, None).is_err().then_some(())
        });
    }
}

/// Starts `cmd` with stdin, stdout and stderr as pipes, collecting the output streams.
pub fn spawn_piped(mut cmd: Command) -> (Child, Lines, Lines) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = Lines::collect(child.stdout.take().unwrap());
    let stderr = Lines::collect(child.stderr.take().unwrap());
    (child, stdout, stderr)
}
