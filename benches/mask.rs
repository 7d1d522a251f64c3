//! `cargo bench --bench mask`: throughput of the streaming mask engine on one core.
//!
//! 1. Clean text: English prose (target ≥ 1 GiB/s) and log lines full of numbers, dates,
//!    versions, hashes and addresses that look like nothing secret (target ≥ 600 MiB/s).
//! 2. psql-style table output where 1% of the rows carry a secret or personal value
//!    (target ≥ 300 MiB/s).
//!
//! Both run the embedded default policy (every built-in detector) as a stream in 16, 64 and
//! 256 KiB chunks, and report the median of several runs: MiB per second of the thread's
//! CPU time (per core, whatever else the machine runs) and of wall time.
//! `HOOPX_BENCH_RUNS` and `HOOPX_BENCH_MIB` change the number of runs and the input size;
//! `HOOPX_BENCH_ONLY=<text>` runs only the inputs whose name contains it.

use std::time::Instant;

use hoopx::policy::Policy;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so every run masks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "request",
    "server",
    "connection",
    "database",
    "query",
    "returned",
    "rows",
    "user",
    "session",
    "cache",
    "started",
    "finished",
    "while",
    "with",
    "from",
    "table",
    "index",
    "version",
    "build",
    "deploy",
    "release",
    "order",
    "invoice",
    "customer",
    "account",
    "network",
    "timeout",
    "retry",
    "worker",
    "queue",
    "message",
    "Rust",
    "PostgreSQL",
    "Kubernetes",
    "pod",
    "node",
    "cluster",
    "backup",
    "restore",
];

/// Clean text of the given kinds of lines: 0 prose, 1 log lines, 2 order lines.
fn clean_text(rng: &mut Rng, size: usize, kinds: &[usize]) -> Vec<u8> {
    let mut out = String::with_capacity(size + 256);
    while out.len() < size {
        match kinds[rng.below(kinds.len())] {
            0 => {
                // A sentence of prose.
                let n = 8 + rng.below(12);
                for k in 0..n {
                    let w = rng.pick(WORDS);
                    if k == 0 {
                        out.push_str(&w[..1].to_uppercase());
                        out.push_str(&w[1..]);
                    } else {
                        out.push(' ');
                        out.push_str(w);
                    }
                }
                out.push_str(".\n");
            }
            1 => {
                // A log line.
                out.push_str(&format!(
                    "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z INFO worker-{} {} {} in {}.{}ms version=v{}.{}.{} rows={} ip=10.{}.{}.{} commit={:016x}{:08x}\n",
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60),
                    rng.below(1000),
                    rng.below(16),
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    rng.below(500),
                    rng.below(10),
                    rng.below(3),
                    rng.below(20),
                    rng.below(50),
                    rng.below(100_000),
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                    rng.next(),
                    rng.next() as u32 | 0xa000_0000,
                ));
            }
            _ => {
                out.push_str(&format!(
                    "order #{} shipped {} items on {}/{}/2024, total {}.{:02} EUR, ticket {}-{}\n",
                    100_000 + rng.below(900_000),
                    1 + rng.below(20),
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(10_000),
                    rng.below(100),
                    rng.pick(&["OPS", "SUP", "DEV"]),
                    rng.below(10_000),
                ));
            }
        }
    }
    out.into_bytes()
}

const SECRETS: &[&str] = &[
    "alice.smith@example.com",
    "4111 1111 1111 1111",
    "+1 (415) 555-2671",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "password=hunter2hunter2",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
];

fn table_text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 256);
    out.push_str("   id   |     name      |  created_at  |  amount  | status  |        note\n");
    out.push_str(
        "--------+---------------+--------------+----------+---------+--------------------------\n",
    );
    let mut row = 0;
    while out.len() < size {
        row += 1;
        let note = if rng.below(100) == 0 {
            rng.pick(SECRETS).to_string()
        } else {
            format!(
                "{} {} {}",
                rng.pick(WORDS),
                rng.pick(WORDS),
                rng.pick(WORDS)
            )
        };
        out.push_str(&format!(
            " {:6} | {:13} | 2024-{:02}-{:02}   | {:8.2} | {:7} | {}\n",
            row,
            rng.pick(WORDS),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(100_000) as f64 / 100.0,
            rng.pick(&["open", "paid", "shipped"]),
            note,
        ));
    }
    out.push_str(&format!("({row} rows)\n"));
    out.into_bytes()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// CPU time of this thread, in seconds.
fn thread_cpu() -> f64 {
    let mut t = hoopx_libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to.
    unsafe { hoopx_libc::clock_gettime(hoopx_libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

use nix::libc as hoopx_libc;

/// Streams `input` through a fresh stream in `chunk`-byte pushes; returns MiB/s of CPU time
/// and of wall time, and the number of values masked.
fn run(policy: &Policy, input: &[u8], chunk: usize) -> (f64, f64, u64) {
    let masker = policy.masker("local");
    let mut stream = masker.stream();
    let mut out_len = 0;
    let start = Instant::now();
    let cpu = thread_cpu();
    for c in input.chunks(chunk) {
        out_len += stream.push(c).len();
    }
    out_len += stream.flush().len();
    let cpu = thread_cpu() - cpu;
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(out_len);
    let masked = stream.counts().values().sum();
    let mib = input.len() as f64 / (1024.0 * 1024.0);
    (mib / cpu, mib / secs, masked)
}

fn main() {
    let runs = env_num("HOOPX_BENCH_RUNS", 7);
    let mib = env_num("HOOPX_BENCH_MIB", 32);
    let policy = Policy::embedded_default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let clean = clean_text(&mut rng, mib << 20, &[0, 1, 2]);
    let prose = clean_text(&mut rng, mib << 20, &[0]);
    let logs = clean_text(&mut rng, mib << 20, &[1]);
    let table = table_text(&mut rng, mib << 20);
    println!("mask engine, {mib} MiB inputs, median of {runs} runs, one core:");
    for (name, input, target) in [
        ("clean: prose", &prose, 1024.0),
        ("clean: log lines (numbers, dates, IPs)", &logs, 600.0),
        ("clean: prose, logs, order lines", &clean, 600.0),
        ("psql table, 1% rows with a secret", &table, 300.0),
    ]
    .into_iter()
    .filter(|(name, ..)| {
        std::env::var("HOOPX_BENCH_ONLY").map_or(true, |only| name.contains(only.as_str()))
    }) {
        for chunk in [16 << 10, 64 << 10, 256 << 10] {
            let mut speeds = vec![];
            let mut walls = vec![];
            let mut masked = 0;
            for _ in 0..runs {
                let (speed, wall, n) = run(&policy, input, chunk);
                speeds.push(speed);
                walls.push(wall);
                masked = n;
            }
            let speed = median(speeds);
            println!(
                "  {name:40} chunks {:3} KiB: {speed:6.0} MiB/s per core, {:6.0} wall (target {target:.0}) {masked} masked{}",
                chunk >> 10,
                median(walls),
                if speed >= target { "" } else { "  BELOW TARGET" }
            );
        }
    }
    // With HOOPX_BENCH_RULES=1: each detector alone on the log lines, to find the slow one.
    if env_num("HOOPX_BENCH_RULES", 0) == 1 {
        use hoopx::policy::mask::{builtin_rule, detect};
        for name in detect::names() {
            let m = hoopx::policy::Masker::new(vec![builtin_rule(name)]);
            let start = Instant::now();
            let mut st = m.stream();
            for c in logs.chunks(64 << 10) {
                std::hint::black_box(st.push(c).len());
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "  {name:24} alone on log lines: {:8.0} MiB/s",
                logs.len() as f64 / 1048576.0 / secs
            );
        }
    }
    // The clean text must stay clean: a masked value there is a false positive.
    let (out, n) = policy.masker("local").mask(&clean);
    let n = n + policy.masker("local").mask(&logs).1 + policy.masker("local").mask(&prose).1;
    if n > 0 {
        let text = String::from_utf8_lossy(&out);
        for line in text.lines().filter(|l| l.contains("REDACTED")).take(5) {
            eprintln!("false positive: {line}");
        }
        panic!("{n} false positives in the clean text");
    }
}
