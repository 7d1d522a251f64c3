//! The familiar `ssh` command line on an ssh target, and the host-key check against the
//! target's known_hosts. Pure: the gateway's SSH client (`gateway::ssh`) acts on what this
//! decides.
//!
//! The gateway is the SSH client: it holds the key and opens the connection, so the command
//! line only says *what* to run (`ssh web 'uptime'`, `ssh -t web top`, `ssh -l deploy web`)
//! and how the terminal is set up. Options that would need a local `ssh` (forwarding,
//! another key, a proxy, a config file) cannot be honoured and are refused with a message.

use russh::keys::{HashAlg, PublicKey};

use super::targets::Refusal;

/// Whether the remote side gets a terminal, as OpenSSH decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tty {
    /// A terminal for an interactive shell (no command) when stdin is a terminal.
    Auto,
    /// `-t` / `RequestTTY=yes`: a terminal when stdin is a terminal.
    Yes,
    /// `-tt` / `RequestTTY=force`: a terminal even without one locally.
    Force,
    /// `-T` / `RequestTTY=no`.
    No,
}

/// What an `ssh …` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    pub tty: Tty,
    /// `-n`: stdin is not read (the remote command reads end of file).
    pub no_stdin: bool,
    /// The host as typed (`web`, or `web` of `deploy@web`); `None` when left out.
    pub host: Option<String>,
    /// `-l USER` or `USER@host`.
    pub user: Option<String>,
    /// The remote command: the arguments after the host, joined by spaces as OpenSSH does.
    pub command: Option<String>,
    /// `-o ConnectTimeout=N`, seconds.
    pub connect_timeout: Option<u64>,
}

/// Flags that change nothing here (the gateway's connection has its own settings).
const IGNORED_FLAGS: &str = "46Cqvx";
/// `-o` options accepted; all but `ConnectTimeout` and `RequestTTY` change nothing.
const OPTIONS: &[&str] = &[
    "connecttimeout",
    "serveraliveinterval",
    "serveralivecountmax",
    "requesttty",
    "loglevel",
    "tcpkeepalive",
    "compression",
];

fn refusal(target: &str, what: &str, why: &str) -> Refusal {
    Refusal {
        message: format!("ssh {what} cannot be honoured on target {target:?}: {why}"),
        hint: format!(
            "run `ssh {target} [COMMAND]`; accepted: -t -T -n -l USER -4 -6 -C -q -v -x and -o {}",
            OPTIONS.join("|")
        ),
    }
}

/// Parses `argv` (`ssh [OPTIONS] [USER@]HOST [COMMAND…]`); refuses what the gateway's
/// connection cannot do. `target` names the target in messages.
pub fn parse(argv: &[String], target: &str) -> Result<SshCommand, Refusal> {
    let mut c = SshCommand {
        tty: Tty::Auto,
        no_stdin: false,
        host: None,
        user: None,
        command: None,
        connect_timeout: None,
    };
    let mut t_count = 0;
    let mut i = 1;
    let mut rest_from = None;
    while i < argv.len() {
        let arg = argv[i].as_str();
        if arg == "--" {
            // Options end; the host follows (unless it came before), then the command.
            if c.host.is_none() && i + 1 < argv.len() {
                c.host = Some(argv[i + 1].clone());
                rest_from = Some(i + 2);
            } else {
                rest_from = Some(i + 1);
            }
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            if c.host.is_some() {
                rest_from = Some(i);
                break;
            }
            c.host = Some(arg.to_string());
            i += 1;
            continue;
        };
        // ssh reads options after the host too, up to the remote command.
        for (at, ch) in flags.char_indices() {
            match ch {
                c2 if IGNORED_FLAGS.contains(c2) => {}
                't' => t_count += 1,
                'T' => c.tty = Tty::No,
                'n' => c.no_stdin = true,
                'l' | 'o' => {
                    let value = match &flags[at + 1..] {
                        "" => {
                            i += 1;
                            argv.get(i).cloned().ok_or_else(|| {
                                refusal(target, &format!("-{ch}"), "it needs a value")
                            })?
                        }
                        rest => rest.to_string(),
                    };
                    if ch == 'l' {
                        c.user = Some(value);
                    } else {
                        option(&mut c, &mut t_count, &value, target)?;
                    }
                    break;
                }
                'N' => {
                    return Err(refusal(
                        target,
                        "-N",
                        "the gateway runs commands and shells only, no forwarding",
                    ))
                }
                other => {
                    return Err(refusal(
                        target,
                        &format!("-{other}"),
                        "the gateway holds the target's key and makes the connection itself; options that pick keys, hosts, proxies, configs or forwarding do not apply",
                    ))
                }
            }
        }
        i += 1;
    }
    if t_count == 1 && c.tty != Tty::No {
        c.tty = Tty::Yes;
    } else if t_count > 1 {
        c.tty = Tty::Force;
    }
    if let Some(h) = c.host.take() {
        match h.rsplit_once('@') {
            Some((u, host)) => {
                if c.user.is_none() {
                    c.user = Some(u.to_string());
                }
                c.host = Some(host.to_string());
            }
            None => c.host = Some(h),
        }
    }
    if let Some(from) = rest_from.filter(|&f| f < argv.len()) {
        c.command = Some(argv[from..].join(" "));
    }
    Ok(c)
}

fn option(
    c: &mut SshCommand,
    t_count: &mut usize,
    value: &str,
    target: &str,
) -> Result<(), Refusal> {
    let (key, val) = match value.split_once(['=', ' ', '\t']) {
        Some((k, v)) => (k.to_ascii_lowercase(), v.trim().to_string()),
        None => (value.to_ascii_lowercase(), String::new()),
    };
    if !OPTIONS.contains(&key.as_str()) {
        return Err(refusal(
            target,
            &format!("-o {value}"),
            "the gateway makes the connection with the target's own settings",
        ));
    }
    match key.as_str() {
        "connecttimeout" => {
            c.connect_timeout = Some(val.parse().map_err(|_| {
                refusal(
                    target,
                    &format!("-o {value}"),
                    "ConnectTimeout takes seconds",
                )
            })?)
        }
        "requesttty" => {
            *t_count = 0;
            c.tty = match val.to_ascii_lowercase().as_str() {
                "yes" => Tty::Yes,
                "force" => Tty::Force,
                "no" => Tty::No,
                "auto" => Tty::Auto,
                _ => {
                    return Err(refusal(
                        target,
                        &format!("-o {value}"),
                        "RequestTTY is yes, no, force or auto",
                    ))
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl SshCommand {
    /// Whether the remote side gets a terminal, given whether stdin is one (OpenSSH's rule).
    pub fn wants_pty(&self, stdin_is_tty: bool) -> bool {
        match self.tty {
            Tty::No => false,
            Tty::Force => true,
            Tty::Yes => stdin_is_tty,
            Tty::Auto => self.command.is_none() && stdin_is_tty,
        }
    }

    /// The host, when given, must be the target (its name, or its host setting); the user,
    /// when given, the target's. Anything else would need another key.
    pub fn check_target(
        &self,
        target: &str,
        host: Option<&str>,
        user: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(h) = &self.host {
            if h != target && Some(h.as_str()) != host {
                return Err(Refusal {
                    message: format!(
                        "ssh to {h:?} on target {target:?}: this target connects to its own host only"
                    ),
                    hint: format!(
                        "name the target as the host: `ssh {target} [COMMAND]`, or leave the host out"
                    ),
                });
            }
        }
        if let (Some(asked), Some(own)) = (&self.user, user) {
            if asked != own {
                return Err(Refusal {
                    message: format!(
                        "ssh as {asked:?} on target {target:?}: the target's key logs in as {own:?} only"
                    ),
                    hint: format!("leave the user out, or use {own:?}"),
                });
            }
        }
        Ok(())
    }
}

/// `scp` and `sftp` on an ssh target: the local tool speaks SFTP to a hoopx bridge (`-D`,
/// added by the client) and the gateway to the target, so options that pick a transport,
/// a key, a config or another SFTP server are refused; every remote operand must name the
/// target (its name or host, with its user if any).
pub fn check_transfer(
    argv: &[String],
    target: &str,
    host: Option<&str>,
    user: Option<&str>,
) -> Result<(), Refusal> {
    let program = super::program_name(argv.first().map_or("", String::as_str));
    let (flags, values): (&str, &str) = match program {
        "scp" => ("46BCpqrTv", "l"),
        _ => ("46aCfNpqrv", "blRB"),
    };
    let why = |what: &str| {
        Refusal {
        message: format!(
            "{program} {what} cannot be honoured on target {target:?}: the gateway makes the connection and speaks to the target's SFTP server itself"
        ),
        hint: format!(
            "run `{program} [-{flags}] …` with {target}:PATH as the remote side"
        ),
    }
    };
    let mut remote = false;
    let mut i = 1;
    let mut options_ended = false;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if !options_ended && arg == "--" {
            options_ended = true;
            continue;
        }
        if let Some(fl) = arg
            .strip_prefix('-')
            .filter(|f| !f.is_empty() && !options_ended)
        {
            for (at, c) in fl.char_indices() {
                if flags.contains(c) {
                    continue;
                }
                if values.contains(c) {
                    if at + 1 == fl.len() {
                        i += 1;
                    }
                    break;
                }
                return Err(why(&format!("-{c}")));
            }
            continue;
        }
        // `[user@]host:path` (scp, sftp) or `[user@]host` (sftp's destination).
        let spec = match arg.split_once(':') {
            Some((h, _)) if !h.contains('/') => Some(h),
            None if program == "sftp" && !remote => Some(arg.as_str()),
            _ => None,
        };
        let Some(spec) = spec else { continue };
        let (u, h) = match spec.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, spec),
        };
        if h != target && Some(h) != host {
            return Err(Refusal {
                message: format!(
                    "{program} to {h:?} on target {target:?}: this target connects to its own host only"
                ),
                hint: format!("name the target as the host: {target}:PATH"),
            });
        }
        if let (Some(u), Some(own)) = (u, user) {
            if u != own {
                return Err(Refusal {
                    message: format!(
                        "{program} as {u:?} on target {target:?}: the target's key logs in as {own:?} only"
                    ),
                    hint: format!("leave the user out, or use {own:?}"),
                });
            }
        }
        remote = true;
    }
    if !remote {
        return Err(Refusal {
            message: format!("{program} on target {target:?} names no remote file"),
            hint: format!("name the remote side as {target}:PATH"),
        });
    }
    Ok(())
}

/// What the host presented, against what the target's known_hosts holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    Known,
    /// No entry matches: the fingerprint (SHA256) shown, and those known for the host.
    Mismatch {
        presented: String,
        known: Vec<String>,
    },
    /// The key is marked `@revoked`.
    Revoked {
        presented: String,
    },
}

/// Checks `key` against the known_hosts `text` for `host` on `port`: lines given as a bare
/// key apply to the target's host; full lines apply when a pattern names the host
/// (`host`, `[host]:port`, `*` wildcards, `!negation`). Hashed names (`|1|…`) and
/// `@cert-authority` lines are not used. No trust on first use: nothing matching is a
/// mismatch.
pub fn check_host_key(text: &str, host: &str, port: u16, key: &PublicKey) -> HostKey {
    let presented = fingerprint(key);
    let mut known = Vec::new();
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        let mut revoked = false;
        match fields.first().copied() {
            Some("@revoked") => {
                revoked = true;
                fields.remove(0);
            }
            Some(m) if m.starts_with('@') => continue,
            _ => {}
        }
        let bare = fields.first().is_some_and(|f| is_key_type(f));
        let (applies, key_fields) = if bare {
            (true, &fields[..])
        } else if fields.len() >= 3 {
            (patterns_match(fields[0], &name), &fields[1..])
        } else {
            continue;
        };
        if !applies || key_fields.len() < 2 {
            continue;
        }
        let Ok(k) = russh::keys::parse_public_key_base64(key_fields[1]) else {
            continue;
        };
        if k.key_data() == key.key_data() {
            if revoked {
                return HostKey::Revoked { presented };
            }
            return HostKey::Known;
        }
        if !revoked {
            known.push(fingerprint(&k));
        }
    }
    HostKey::Mismatch { presented, known }
}

fn is_key_type(f: &str) -> bool {
    f.starts_with("ssh-")
        || f.starts_with("ecdsa-")
        || f.starts_with("sk-")
        || f.starts_with("rsa-")
}

/// A known_hosts pattern list (`a,b,[c]:2222,!d,*.e`) against one name.
fn patterns_match(list: &str, name: &str) -> bool {
    let mut hit = false;
    for p in list.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, name) {
                return false;
            }
        } else if glob(p, name) {
            hit = true;
        }
    }
    hit
}

fn glob(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// `SHA256:…`, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The number OpenSSH's signal names stand for, for exit statuses (128 + n).
pub fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn p(s: &str) -> SshCommand {
        parse(&argv(s), "web").unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn the_familiar_command_lines_parse_as_openssh_reads_them() {
        let c = p("ssh web uptime -a");
        assert_eq!(c.host.as_deref(), Some("web"));
        assert_eq!(c.command.as_deref(), Some("uptime -a"));
        assert_eq!(c.tty, Tty::Auto);
        assert!(!c.wants_pty(true), "a command gets no terminal");
        assert!(p("ssh web").wants_pty(true));
        assert!(!p("ssh web").wants_pty(false));
        assert!(p("ssh -t web top").wants_pty(true));
        assert!(!p("ssh -t web top").wants_pty(false));
        assert!(p("ssh -tt web top").wants_pty(false));
        assert!(!p("ssh -T web").wants_pty(true));
        assert!(p("ssh -o RequestTTY=force web x").wants_pty(false));
        assert!(!p("ssh -oRequestTTY=no web").wants_pty(true));
        let c = p("ssh -l deploy web");
        assert_eq!(c.user.as_deref(), Some("deploy"));
        let c = p("ssh deploy@web ls");
        assert_eq!(
            (c.user.as_deref(), c.host.as_deref()),
            (Some("deploy"), Some("web"))
        );
        let c = p("ssh -n -q -v -C web true");
        assert!(c.no_stdin);
        let c = p("ssh -o ConnectTimeout=5 web");
        assert_eq!(c.connect_timeout, Some(5));
        // After the command starts, options are the command's.
        assert_eq!(
            p("ssh web ls -o x -i y").command.as_deref(),
            Some("ls -o x -i y")
        );
        assert_eq!(
            p("ssh web -t -- ls -F /").command.as_deref(),
            Some("ls -F /")
        );
        assert_eq!(p("ssh -- web -x").command.as_deref(), Some("-x"));
        let c = p("ssh");
        assert_eq!((c.host, c.command), (None, None));
    }

    #[test]
    fn options_that_need_a_local_ssh_are_refused_with_the_reason() {
        for bad in [
            "ssh -F /tmp/cfg web",
            "ssh -i key web",
            "ssh -oProxyCommand=nc web",
            "ssh -o ProxyCommand=sh web",
            "ssh -o LocalCommand=x web",
            "ssh -L 1:h:2 web",
            "ssh -R 1:h:2 web",
            "ssh -D 1080 web",
            "ssh -J jump web",
            "ssh -A web",
            "ssh -N web",
            "ssh -W h:1 web",
            "ssh -vE log web",
            "ssh -p 22 web",
            "ssh web -o ProxyCommand=sh",
            "ssh -o ConnectTimeout=x web",
            "ssh -l",
        ] {
            let e = parse(&argv(bad), "web").expect_err(bad);
            assert!(e.message.contains("target \"web\""), "{bad}: {e:?}");
            assert!(e.hint.contains("ssh web"), "{bad}: {e:?}");
        }
        let c = p("ssh other true");
        assert!(c
            .check_target("web", Some("10.0.0.5"), Some("deploy"))
            .is_err());
        assert!(p("ssh 10.0.0.5")
            .check_target("web", Some("10.0.0.5"), None)
            .is_ok());
        assert!(p("ssh root@web")
            .check_target("web", None, Some("deploy"))
            .is_err());
        assert!(p("ssh deploy@web")
            .check_target("web", None, Some("deploy"))
            .is_ok());
        assert!(p("ssh").check_target("web", None, Some("deploy")).is_ok());
    }

    #[test]
    fn scp_and_sftp_name_the_target_and_take_no_transport_options() {
        let ok = |s: &str| check_transfer(&argv(s), "web", Some("10.0.0.5"), Some("deploy"));
        for good in [
            "scp f web:/tmp/f",
            "scp -r -p dir deploy@web:/tmp/",
            "scp web:/etc/motd .",
            "scp -l 100 f 10.0.0.5:x",
            "sftp web",
            "sftp web:/tmp/f local",
            "sftp -b batch -q deploy@web",
        ] {
            assert!(ok(good).is_ok(), "{good}: {:?}", ok(good));
        }
        for bad in [
            "scp f other:/tmp/f",
            "scp -o ProxyCommand=x f web:/x",
            "scp -S prog f web:/x",
            "scp -D prog f web:/x",
            "scp -F cfg f web:/x",
            "scp -i key f web:/x",
            "scp -O f web:/x",
            "scp f root@web:/x",
            "scp a b",
            "sftp -D prog web",
            "sftp -s sub web",
            "sftp other",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBr3m6Ik4cX4Nyq7Mk1BnX6M0s2FQXOmKMdzJq8NDNOh";

    #[test]
    fn host_keys_are_checked_against_known_hosts_only() {
        let key = russh::keys::parse_public_key_base64(ED).unwrap();
        let other = russh::keys::parse_public_key_base64(ED2).unwrap();
        let bare = format!("ssh-ed25519 {ED}");
        assert_eq!(check_host_key(&bare, "h", 22, &key), HostKey::Known);
        let full = format!("[10.0.0.5]:2222,web ssh-ed25519 {ED} comment");
        assert_eq!(
            check_host_key(&full, "10.0.0.5", 2222, &key),
            HostKey::Known
        );
        // The port counts: the same key under another port's entry does not apply.
        assert!(matches!(
            check_host_key(&full, "10.0.0.5", 22, &key),
            HostKey::Mismatch { .. }
        ));
        let wild = format!("*.internal,!bad.internal ssh-ed25519 {ED}");
        assert_eq!(
            check_host_key(&wild, "db.internal", 22, &key),
            HostKey::Known
        );
        assert!(matches!(
            check_host_key(&wild, "bad.internal", 22, &key),
            HostKey::Mismatch { .. }
        ));
        match check_host_key(&bare, "h", 22, &other) {
            HostKey::Mismatch { presented, known } => {
                assert_eq!(presented, fingerprint(&other));
                assert_eq!(known, [fingerprint(&key)]);
                assert!(presented.starts_with("SHA256:"));
            }
            k => panic!("{k:?}"),
        }
        let revoked = format!("@revoked * ssh-ed25519 {ED}\nssh-ed25519 {ED}");
        assert!(matches!(
            check_host_key(&revoked, "h", 22, &key),
            HostKey::Revoked { .. }
        ));
        // Nothing known: never trusted on first use.
        assert!(matches!(
            check_host_key("", "h", 22, &key),
            HostKey::Mismatch { .. }
        ));
        assert_eq!(signal_number("INT"), 2);
        assert_eq!(signal_number("TERM"), 15);
    }
}
