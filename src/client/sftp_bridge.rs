//! The "SFTP server" that `scp -D` and `sftp -D` run on an ssh target's session: it joins
//! its stdin and stdout to the session's local endpoint (a Unix socket in the session's
//! private directory, named by [`SOCKET_VAR`]), whose connections the gateway relays to
//! the target's SFTP server. It holds no credential: the socket is the session's.
//!
//! scp runs it as `PROGRAM -- HOST sftp`, sftp as `PROGRAM sftp-bridge`; only with
//! [`SOCKET_VAR`] set (the session sets it for its tool) is hoopx this bridge.

use std::io::{Read, Write};
use std::process::ExitCode;

/// The variable the session sets for `scp`/`sftp`: its endpoint's socket.
pub const SOCKET_VAR: &str = "HOOPX_SFTP_SOCKET";

/// Runs the bridge when hoopx was started as one; `None` otherwise.
pub fn run_if_bridge() -> Option<ExitCode> {
    let socket = std::env::var_os(SOCKET_VAR)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let as_scp = args.len() == 3 && args[0] == "--" && args[2] == "sftp";
    let as_sftp = args.len() == 1 && args[0] == "sftp-bridge";
    if !as_scp && !as_sftp {
        return None;
    }
    let conn = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hoopx: cannot reach the session's SFTP endpoint: {e}");
            return Some(ExitCode::from(69));
        }
    };
    let Ok(mut up) = conn.try_clone() else {
        return Some(ExitCode::from(69));
    };
    let mut down = conn;
    let to_server = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match down.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        }
    }
    drop(to_server);
    Some(ExitCode::SUCCESS)
}
