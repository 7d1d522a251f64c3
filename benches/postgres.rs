//! `cargo bench --bench postgres`: what the wire-level PostgreSQL relay costs next to a
//! direct connection, in the same run, against a real server started for the run.
//!
//! 1. Read-only throughput: `pgbench -S` with 1 client and with 4 clients on 2 threads,
//!    transactions per second direct (TCP to the server) and through
//!    `hoopx exec --target pg -- pgbench …` (the session endpoint, the session stream, a
//!    loopback gateway that checks and records every statement).
//! 2. Added latency per statement: pgbench's per-transaction log (`-l`) of `-S`, p50 and
//!    p99 of each, and the difference.
//! 3. A large result with a `[[rules.columns]]` rule masking one of its columns:
//!    `select * from big` (about 240 MiB of values), MiB/s of result values.
//!
//! The server runs with `fsync=off`; the role `app` logs in with SCRAM over TCP. Figures
//! are medians over interleaved runs. `HOOPX_BENCH_PG_RUNS` (3), `HOOPX_BENCH_PG_SECS` (5,
//! per pgbench -T run), `HOOPX_BENCH_PG_TXNS` (2000, per latency run) and
//! `HOOPX_BENCH_PG_ROWS` (250000, rows of `big`, ~1 KiB each) make it longer or shorter.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hoopx");
const TOKEN: &str = "bench-token";
const PASSWORD: &str = "bench-app-Passw0rd";

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

/// The `q` quantile (0..=1) of `xs`, nearest rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    let rank = (xs.len() as f64 * q).ceil() as usize;
    xs[rank.saturating_sub(1).min(xs.len() - 1)]
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `c`, panicking with its stderr when it fails.
fn run(c: &mut Command) -> Output {
    let out = c.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Finds a PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/*/bin.
fn pg_bin(name: &str) -> PathBuf {
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
    panic!("PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)");
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

/// A real PostgreSQL server in a temp dir on a free port, stopped on drop: `postgres`
/// trusted over TCP (the bench's own setup), `app` with a SCRAM password.
struct Postgres {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("hoopx-bench-pg-")
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
        run(&mut init);
        // First match wins: the bench's superuser is trusted, `app` proves its password.
        let hba = "local all all trust\n\
                   host all postgres 127.0.0.1/32 trust\n\
                   host all app 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let log = dir.path().join("server.log");
        // The port is free when picked but may be taken before postgres binds it.
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
                .args(["-c", "synchronous_commit=off", "-c", "max_connections=50"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            as_postgres_user(&mut srv, &data);
            let mut child = srv.spawn().expect("start postgres");
            let ready = wait_for(
                "PostgreSQL to accept connections",
                Duration::from_secs(30),
                || {
                    let ok = Command::new("psql")
                        .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
                        .args(["-p", &port.to_string(), "-Atc", "select 1"])
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
                return Postgres {
                    _dir: dir,
                    port,
                    child,
                };
            }
        }
        panic!("postgres found no free port in 5 attempts");
    }

    /// Runs SQL as the superuser in `db`, directly; returns the unaligned output.
    fn sql(&self, db: &str, sql: &str) -> String {
        let out = run(Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", db])
            .args(["-p", &self.port.to_string()])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let _ = self.child.wait();
    }
}

struct Gateway(Child, String);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Bench {
    home: tempfile::TempDir,
    pg: Postgres,
    gw: Option<Gateway>,
}

impl Bench {
    /// `program` in a clean environment with the bench's HOME.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .stdin(Stdio::null());
        c
    }

    /// pgbench straight to the server, as `app` over TCP.
    fn direct(&self, args: &[&str]) -> Command {
        let mut c = self.cmd("pgbench");
        c.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.pg.port.to_string())
            .env("PGUSER", "app")
            .env("PGDATABASE", "bench")
            .env("PGPASSWORD", PASSWORD)
            .args(args);
        c
    }

    /// pgbench through `hoopx exec --target pg` and the loopback gateway.
    fn proxied(&self, args: &[&str]) -> Command {
        let gw = self.gw.as_ref().expect("gateway started");
        let mut c = self.cmd(BIN);
        c.env("HOOPX_GATEWAY", &gw.1)
            .env("HOOPX_TOKEN", TOKEN)
            .args(["exec", "--no-tty", "--target", "pg", "--", "pgbench"])
            .args(args);
        c
    }

    fn start_gateway(&mut self, config: &str) {
        use std::io::{BufRead, BufReader, Read};
        let path = self.home.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let mut c = self.cmd(BIN);
        c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
            .arg("--config")
            .arg(&path)
            .arg("--store")
            .arg(format!(
                "sqlite://{}",
                self.home.path().join("gw.db").display()
            ))
            .env("HOOPX_DEV_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut gw = Gateway(c.spawn().expect("start gateway"), String::new());
        let mut err = BufReader::new(gw.0.stderr.take().unwrap());
        let mut line = String::new();
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            line.clear();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("gateway exited: {seen}");
            }
            seen.push_str(&line);
            if let Some(at) = line.find("listening on ") {
                gw.1 = line[at + 13..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    let _ = err.read_to_string(&mut sink);
                });
                self.gw = Some(gw);
                return;
            }
        }
        panic!("gateway did not start");
    }
}

/// The number after `key` in pgbench's report (`tps = 1234.5 (…)`).
fn report_value(out: &Output, key: &str) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in pgbench's report:\n{text}"))
}

/// Per-transaction latencies in µs from the `pgbench_log.*` files in `dir` (3rd column),
/// removing the files.
fn take_latencies(dir: &Path) -> Vec<f64> {
    let mut xs = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("pgbench_log.") {
            continue;
        }
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            if let Some(us) = l
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<f64>().ok())
            {
                xs.push(us);
            }
        }
        std::fs::remove_file(&p).unwrap();
    }
    assert!(!xs.is_empty(), "pgbench wrote no latency log in {dir:?}");
    xs
}

fn ratio_row(name: &str, direct: f64, proxied: f64, unit: &str) {
    println!(
        "  {name:<30} {direct:>10.1} {proxied:>10.1}  {unit:<6} x{:.2}",
        proxied / direct
    );
}

fn main() {
    let runs = env_num("HOOPX_BENCH_PG_RUNS", 3).max(1);
    let secs = env_num("HOOPX_BENCH_PG_SECS", 5).max(1).to_string();
    let txns = env_num("HOOPX_BENCH_PG_TXNS", 2000).max(100).to_string();
    let rows = env_num("HOOPX_BENCH_PG_ROWS", 250_000).max(1000);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let started = Instant::now();
    let home = tempfile::Builder::new()
        .prefix("hoopx-bench-")
        .tempdir()
        .unwrap();
    let pg = Postgres::start();
    pg.sql(
        "postgres",
        &format!("create role app login password '{PASSWORD}'"),
    );
    pg.sql("postgres", "create database bench owner app");
    let mut b = Bench { home, pg, gw: None };
    run(&mut b.direct(&["-i", "-s", "1", "-q"]));
    // ~1 KiB rows: an id, a 932-byte payload (stored inline, uncompressed) and an email the
    // column rule masks.
    let mut c = b.cmd("psql");
    c.env("PGPASSWORD", PASSWORD)
        .args(["-X", "-h", "127.0.0.1", "-U", "app", "-d", "bench"])
        .args(["-p", &b.pg.port.to_string(), "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "create table big as select i, md5(i::text) || repeat('x', 900) as payload, \
             'user' || i || '@example.com' as email from generate_series(1, {rows}) i"
        ))
        .args(["-c", "vacuum analyze big"]);
    run(&mut c);
    // What a `select *` carries: the values in the text format, without the wire's framing.
    let big_bytes: f64 =
        b.pg.sql(
            "bench",
            "select sum(octet_length(i::text) + octet_length(payload) + octet_length(email)) \
             from big",
        )
        .parse()
        .unwrap();
    let big_mib = big_bytes / (1 << 20) as f64;

    let pwfile = b.home.path().join("pg-password");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let config = format!(
        "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\ncommand = [\"psql\", \"pgbench\"]\n\
         host = \"127.0.0.1\"\nport = {}\nuser = \"app\"\ndatabase = \"bench\"\n\
         password = {{ file = \"{}\" }}\n\n\
         [[rules.columns]]\nname = \"big-email\"\ncolumns = [\"big.email\"]\n",
        b.pg.port,
        pwfile.display()
    );
    b.start_gateway(&config);
    // Masking is on: a proxied read of `big` shows the rule's label, not the addresses.
    let mut c = b.cmd(BIN);
    c.env("HOOPX_GATEWAY", &b.gw.as_ref().unwrap().1)
        .env("HOOPX_TOKEN", TOKEN)
        .args(["exec", "--no-tty", "--target", "pg", "--"])
        .args([
            "psql",
            "-X",
            "-At",
            "-c",
            "select email from big where i = 7",
        ]);
    let masked = String::from_utf8_lossy(&run(&mut c).stdout)
        .trim()
        .to_string();
    assert!(
        !masked.is_empty() && !masked.contains("@example.com"),
        "the column rule did not mask big.email: {masked:?}"
    );

    println!(
        "hoopx postgres benchmark: PostgreSQL {}, {cores} cores, loadavg {}",
        b.pg.sql("postgres", "show server_version"),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  {runs} interleaved runs per figure, medians; setup took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "  {:<30} {:>10} {:>10}  {:<6} proxied/direct",
        "", "direct", "hoopx", ""
    );

    // 1. Read-only transactions per second.
    let clients: [&[&str]; 2] = [&["-c", "1"], &["-c", "4", "-j", "2"]];
    let (mut tps_d, mut tps_p) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
    for _ in 0..runs {
        for (i, c) in clients.iter().enumerate() {
            let mut args = vec!["-S", "-n", "-T", &secs];
            args.extend(c.iter());
            tps_d[i].push(report_value(&run(&mut b.direct(&args)), "tps = "));
            tps_p[i].push(report_value(&run(&mut b.proxied(&args)), "tps = "));
        }
    }
    println!("select-only throughput (pgbench -T {secs}):");
    for (i, c) in clients.iter().enumerate() {
        let name = format!("pgbench -S {}", c.join(" "));
        let (d, p) = (&tps_d[i], &tps_p[i]);
        ratio_row(&name, median(d), median(p), "tps");
    }

    // 2. Per-statement latency, from pgbench's per-transaction log.
    let logs = tempfile::tempdir_in(b.home.path()).unwrap();
    let (mut lat_d, mut lat_p) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let args = ["-S", "-n", "-t", &txns, "-c", "1", "-l"];
        run(b.direct(&args).current_dir(logs.path()));
        lat_d.extend(take_latencies(logs.path()));
        run(b.proxied(&args).current_dir(logs.path()));
        lat_p.extend(take_latencies(logs.path()));
    }
    println!(
        "statement latency (pgbench -S -t {txns} -l, {} statements each):",
        lat_d.len()
    );
    let (d50, p50) = (quantile(&lat_d, 0.5), quantile(&lat_p, 0.5));
    let (d99, p99) = (quantile(&lat_d, 0.99), quantile(&lat_p, 0.99));
    ratio_row("p50", d50, p50, "µs");
    ratio_row("p99", d99, p99, "µs");
    println!(
        "  added by hoopx: p50 {:.0} µs, p99 {:.0} µs",
        p50 - d50,
        p99 - d99
    );

    // 3. A large result through the column rule.
    let script = b.home.path().join("big.sql");
    std::fs::write(&script, "select * from big;\n").unwrap();
    let script = script.display().to_string();
    let (mut big_d, mut big_p) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let args = ["-n", "-t", "2", "-f", &script];
        // pgbench's latency average: ms per `select *`, connection set-up excluded.
        let ms = report_value(&run(&mut b.direct(&args)), "latency average = ");
        big_d.push(big_mib / (ms / 1000.0));
        let ms = report_value(&run(&mut b.proxied(&args)), "latency average = ");
        big_p.push(big_mib / (ms / 1000.0));
    }
    println!(
        "large result: select * from big ({rows} rows, {big_mib:.0} MiB of values, big.email masked):"
    );
    ratio_row("result values", median(&big_d), median(&big_p), "MiB/s");
    println!(
        "  total {:.0} s; loadavg at the end {}",
        started.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
