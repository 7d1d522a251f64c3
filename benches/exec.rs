//! `cargo bench --bench exec`: what hoopx costs next to the plain tool, in the same run.
//!
//! 1. Per-call overhead: `hoopx exec -- true` (embedded, and against a loopback gateway)
//!    against plain `true`.
//! 2. Output throughput: `hoopx exec -- cat BIGFILE` under pipes against plain
//!    `cat BIGFILE`, and under a PTY with hoopx itself inside a terminal
//!    (`script -qc 'hoopx exec -- cat BIGFILE'`) against `script -qc 'cat BIGFILE'`. The
//!    file is psql-style rows, so every byte is masked (all built-in detectors) and recorded.
//!
//! Figures are medians; ratios compare with the plain tool. `HOOPX_BENCH_RUNS` and
//! `HOOPX_BENCH_MIB` change the number of runs and the file size.

use std::io::{BufRead, BufReader, Read, Write};
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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn p90(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[((xs.len() as f64 * 0.9).ceil() as usize)
        .saturating_sub(1)
        .min(xs.len() - 1)]
}

struct Bench {
    home: tempfile::TempDir,
}

impl Bench {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .stdin(Stdio::null());
        c
    }
}

/// Runs `make()` once, discarding output, and returns the wall time in ms.
fn time_call(mut c: Command) -> f64 {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let s = c.status().expect("run");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(s.success(), "benchmark command failed: {c:?}");
    ms
}

/// Runs a command, reading all of its stdout; returns (bytes, seconds).
fn time_read(mut c: Command) -> (u64, f64) {
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let t = Instant::now();
    let mut child = c.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => break,
        }
    }
    let s = child.wait().unwrap();
    assert!(s.success(), "benchmark command failed: {c:?}");
    (n, t.elapsed().as_secs_f64())
}

struct Gateway(Child, String);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway(b: &Bench) -> Gateway {
    let mut c = b.cmd(BIN);
    c.args([
        "gateway",
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--store",
    ])
    .arg(format!(
        "sqlite://{}",
        b.home.path().join("gw.db").display()
    ))
    .env("HOOPX_DEV_TOKEN", TOKEN)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = Gateway(c.spawn().expect("start gateway"), String::new());
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("gateway exited");
        }
        if let Some(at) = line.find("listening on ") {
            let url = line[at + 13..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            std::thread::spawn(move || {
                let mut sink = String::new();
                let _ = err.read_to_string(&mut sink);
            });
            child.1 = url;
            return child;
        }
    }
    panic!("gateway did not start");
}

fn row(name: &str, med: f64, p: f64, base: f64, unit: &str) {
    println!(
        "  {name:<34} {med:>9.2} {unit:<5} p90 {p:>9.2}   x{:.2} of plain",
        med / base
    );
}

fn main() {
    let runs = env_num("HOOPX_BENCH_RUNS", 30);
    let mib = env_num("HOOPX_BENCH_MIB", 64);
    let b = Bench {
        home: tempfile::tempdir().unwrap(),
    };
    let gw = start_gateway(&b);
    let remote = |args: &[&str]| {
        let mut c = b.cmd(BIN);
        c.env("HOOPX_GATEWAY", &gw.1)
            .env("HOOPX_TOKEN", TOKEN)
            .args(args);
        c
    };
    let embedded = |args: &[&str]| {
        let mut c = b.cmd(BIN);
        c.args(args);
        c
    };

    println!("hoopx benchmark: {runs} runs per figure, {mib} MiB file; medians");
    println!();
    println!("per-call overhead (wall time of one call)");
    let mut plain = Vec::new();
    let mut emb = Vec::new();
    let mut rem = Vec::new();
    for i in 0..runs + 3 {
        // Interleave the variants so machine noise hits all of them alike; skip warm-up.
        let p = time_call(b.cmd("true"));
        let e = time_call(embedded(&["exec", "--no-tty", "--", "true"]));
        let r = time_call(remote(&["exec", "--no-tty", "--", "true"]));
        if i >= 3 {
            plain.push(p);
            emb.push(e);
            rem.push(r);
        }
    }
    let base = median(plain.clone());
    row("true", base, p90(plain), base, "ms");
    row(
        "hoopx exec -- true (embedded)",
        median(emb.clone()),
        p90(emb.clone()),
        base,
        "ms",
    );
    row(
        "hoopx exec -- true (loopback gw)",
        median(rem.clone()),
        p90(rem.clone()),
        base,
        "ms",
    );
    println!(
        "  added per call: embedded {:.2} ms, loopback gateway {:.2} ms (target <= 15 ms)",
        median(emb) - base,
        median(rem) - base
    );

    // A file of psql-style table rows, no secrets in it.
    let big = b.home.path().join("big.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut i = 0u64;
        let mut written = 0usize;
        while written < mib << 20 {
            let line = format!(
                " {i:>8} | order-{:06} | 2024-0{}-1{} | shipped   | {:>10}.{:02}\n",
                i * 7 % 999_983,
                i % 9 + 1,
                i % 10,
                i * 13 % 100_000,
                i % 100
            );
            f.write_all(line.as_bytes()).unwrap();
            written += line.len();
            i += 1;
        }
    }
    let big_s = big.display().to_string();
    let size_mib = std::fs::metadata(&big).unwrap().len() as f64 / (1 << 20) as f64;
    let throughput_runs = (runs / 6).max(3);
    println!();
    println!("output throughput of cat {size_mib:.0} MiB ({throughput_runs} runs, MiB/s)");
    let mut results: Vec<(&str, Vec<f64>)> = vec![
        ("plain pipe: cat", vec![]),
        ("plain pty: script -qc cat", vec![]),
        ("hoopx pipe (loopback gw)", vec![]),
        ("hoopx pty in a terminal (loopback)", vec![]),
        ("hoopx pipe (embedded)", vec![]),
        ("hoopx pty in a terminal (embedded)", vec![]),
    ];
    // hoopx inside a terminal of its own, as a person runs it: `script` gives it one.
    let in_terminal = |env: &[(&str, &str)]| {
        let mut s = b.cmd("script");
        s.args(["-qec", &format!("{BIN} exec -- cat {big_s}"), "/dev/null"])
            .envs(env.iter().copied());
        s
    };
    for _ in 0..throughput_runs {
        let mut cmds = Vec::new();
        let mut c = b.cmd("cat");
        c.arg(&big);
        cmds.push(c);
        let mut c = b.cmd("script");
        c.args(["-qec", &format!("cat {big_s}"), "/dev/null"]);
        cmds.push(c);
        cmds.push(remote(&["exec", "--no-tty", "--", "cat", &big_s]));
        cmds.push(in_terminal(&[
            ("HOOPX_GATEWAY", &gw.1),
            ("HOOPX_TOKEN", TOKEN),
        ]));
        cmds.push(embedded(&["exec", "--no-tty", "--", "cat", &big_s]));
        cmds.push(in_terminal(&[]));
        for (i, c) in cmds.into_iter().enumerate() {
            let (bytes, secs) = time_read(c);
            results[i].1.push(bytes as f64 / (1 << 20) as f64 / secs);
        }
    }
    let pipe_base = median(results[0].1.clone());
    let pty_base = median(results[1].1.clone());
    for (name, xs) in &results {
        let base = if name.contains("pty") {
            pty_base
        } else {
            pipe_base
        };
        row(name, median(xs.clone()), p90(xs.clone()), base, "MiB/s");
    }
    println!(
        "  hoopx pipe, masked and recorded: {:.0} MiB/s (target >= 150)",
        median(results[2].1.clone())
    );
    println!(
        "  hoopx pty in a terminal / plain pty: {:.0}% loopback, {:.0}% embedded (target >= 60%)",
        100.0 * median(results[3].1.clone()) / pty_base,
        100.0 * median(results[5].1.clone()) / pty_base
    );

    // Input: the same file piped into `wc -c`, plain and through hoopx (pipe mode, every
    // line checked against the deny rules and recorded).
    println!();
    println!("input throughput of {size_mib:.0} MiB into wc -c ({throughput_runs} runs, MiB/s)");
    let mut plain_in = Vec::new();
    let mut hoopx_in = Vec::new();
    for _ in 0..throughput_runs {
        let mut c = b.cmd("wc");
        c.arg("-c").stdin(std::fs::File::open(&big).unwrap());
        let t = time_call(c) / 1000.0;
        plain_in.push(size_mib / t);
        let mut c = remote(&["exec", "--no-tty", "--", "wc", "-c"]);
        c.stdin(std::fs::File::open(&big).unwrap());
        let t = time_call(c) / 1000.0;
        hoopx_in.push(size_mib / t);
    }
    let base = median(plain_in.clone());
    row("plain: wc -c < file", base, p90(plain_in), base, "MiB/s");
    row(
        "hoopx pipe (loopback gw)",
        median(hoopx_in.clone()),
        p90(hoopx_in),
        base,
        "MiB/s",
    );

    // Interactive lines: in PTY mode a line typed with plain keys is decided at Enter at
    // once; a line with keys the gate cannot follow (here Ctrl-A) waits for the tool's echo
    // and is read off the screen, so it pays a settle time.
    let lines = 40;
    let plain_text: String = (0..lines).map(|i| format!("select {i};\n")).collect();
    let edited_text: String = (0..lines).map(|i| format!("\x01select {i};\n")).collect();
    let plain_in = b.home.path().join("lines.txt");
    let edited_in = b.home.path().join("edited.txt");
    std::fs::write(&plain_in, plain_text).unwrap();
    std::fs::write(&edited_in, edited_text).unwrap();
    println!();
    println!(
        "PTY lines: {lines} lines into head -n {lines} under a PTY ({throughput_runs} runs, ms for all {lines})"
    );
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("plain pty: script -qc head", vec![]),
        ("hoopx pty, typed lines", vec![]),
        ("hoopx pty, edited lines (Ctrl-A)", vec![]),
    ];
    for _ in 0..throughput_runs {
        let mut c = b.cmd("script");
        c.args(["-qec", &format!("head -n {lines}"), "/dev/null"])
            .stdin(std::fs::File::open(&plain_in).unwrap());
        rows[0].1.push(time_call(c));
        for (i, input) in [(1, &plain_in), (2, &edited_in)] {
            let mut c = remote(&["exec", "--tty", "--", "head", "-n", &lines.to_string()]);
            c.stdin(std::fs::File::open(input).unwrap());
            rows[i].1.push(time_call(c));
        }
    }
    let base = median(rows[0].1.clone());
    for (name, xs) in &rows {
        row(name, median(xs.clone()), p90(xs.clone()), base, "ms");
    }
}
