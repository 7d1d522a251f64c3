//! Running the tool: under a pseudo-terminal or under pipes, the caller's terminal in raw
//! mode (restored on every exit path, panics included), window sizes and signals.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

/// The terminal settings to restore, shared with the panic hook.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Puts stdin's terminal in raw mode; dropping the guard restores it.
pub struct RawModeGuard(());

impl RawModeGuard {
    pub fn enable() -> io::Result<RawModeGuard> {
        let stdin = io::stdin();
        let orig = termios::tcgetattr(stdin.as_fd()).map_err(io::Error::from)?;
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(orig);
        install_panic_hook();
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).map_err(io::Error::from)?;
        Ok(RawModeGuard(()))
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the terminal if raw mode is on; safe to call any number of times.
pub fn restore_terminal() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(orig) = saved {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &orig);
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            prev(info);
        }));
    });
}

/// Whether raw mode is on (messages then need `\r\n`).
pub fn raw_mode_on() -> bool {
    SAVED.lock().map(|s| s.is_some()).unwrap_or(false)
}

pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// `(cols, rows)` of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);
    let mut ws: nix::libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let ok = unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }.is_ok();
    (ok && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The tool's I/O ends on our side.
pub enum ToolIo {
    Pty {
        reader: pty_process::OwnedReadPty,
        writer: pty_process::OwnedWritePty,
    },
    Pipe {
        stdin: ChildStdin,
        stdout: ChildStdout,
        stderr: ChildStderr,
    },
}

/// A running tool.
pub struct Tool {
    pub child: Child,
    pub io: Option<ToolIo>,
    pub pid: Option<Pid>,
}

/// Variables of ours the tool must not inherit: the caller's credentials for the gateway.
const WITHHELD_ENV: &[&str] = &[
    crate::env_vars::HOOPX_TOKEN,
    crate::env_vars::HOOPX_DEV_TOKEN,
];

/// Marks every descriptor above stderr that hoopx inherited close-on-exec, so nothing the
/// caller leaked to hoopx reaches the tool and gives it a way around the gateway. Call it
/// first thing, before hoopx opens descriptors of its own.
pub fn cloexec_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range with CLOEXEC only sets a flag on descriptors.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number that may or may not be open; errors are ignored.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    }
}

/// Starts `argv` under a new pseudo-terminal of `size` (cols, rows); variables in `remove`
/// are not inherited (before `env` is applied).
pub fn spawn_pty(
    argv: &[String],
    env: &BTreeMap<String, String>,
    remove: &[String],
    size: Option<(u16, u16)>,
) -> io::Result<Tool> {
    let (pty, pts) = pty_process::open().map_err(pty_err)?;
    let (cols, rows) = size.unwrap_or((80, 24));
    pty.resize(pty_process::Size::new(rows, cols))
        .map_err(pty_err)?;
    let mut cmd = pty_process::Command::new(&argv[0]).args(&argv[1..]);
    for k in WITHHELD_ENV
        .iter()
        .copied()
        .chain(remove.iter().map(String::as_str))
    {
        cmd = cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }

    // `spawn` consumes `pts`, so the only slave end left open is the child's: the master
    // reads EIO once the tool and everything it started have closed the terminal.
    let child = cmd.spawn(pts).map_err(pty_err)?;
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    let (reader, writer) = pty.into_split();
    Ok(Tool {
        child,
        io: Some(ToolIo::Pty { reader, writer }),
        pid,
    })
}

/// Starts `argv` with stdin, stdout and stderr as pipes.
/// Variables in `remove` are not inherited (before `env` is applied).
pub fn spawn_pipes(
    argv: &[String],
    env: &BTreeMap<String, String>,
    remove: &[String],
) -> io::Result<Tool> {
    use std::process::Stdio;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in WITHHELD_ENV
        .iter()
        .copied()
        .chain(remove.iter().map(String::as_str))
    {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A session of its own: no controlling terminal, so the tool cannot read or write the
    // caller's terminal around the gateway (/dev/tty), and the terminal's Ctrl-C reaches
    // only hoopx, which forwards it once.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    let io = match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
        (Some(stdin), Some(stdout), Some(stderr)) => ToolIo::Pipe {
            stdin,
            stdout,
            stderr,
        },
        _ => return Err(io::Error::other("the tool's pipes were not created")),
    };
    Ok(Tool {
        child,
        io: Some(io),
        pid,
    })
}

fn pty_err(e: pty_process::Error) -> io::Error {
    match e {
        pty_process::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl Tool {
    /// Sends `sig` to the tool's whole process group (it leads a session of its own). Safe
    /// after the tool was reaped: a group id is not reused while the group has members.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid {
            let _ = killpg(pid, sig);
        }
    }

    /// Stops the tool: SIGHUP and SIGTERM, then SIGKILL if it is still there after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.signal(Signal::SIGHUP);
        self.signal(Signal::SIGTERM);
        if let Ok(Ok(status)) = tokio::time::timeout(grace, self.child.wait()).await {
            return Some(status);
        }
        self.signal(Signal::SIGKILL);
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }
}

/// The shell convention: the exit code, or 128 + the signal number.
pub fn exit_code(status: &std::process::ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (1, None),
    }
}
