//! Every example in the README is exercised: each `hoopx` command line in a shell, YAML or
//! systemd block parses as the CLI defines it, each TOML block is a gateway config that
//! `hoopx gateway check` accepts, each JSON block is valid (an MCP client config runs
//! `hoopx mcp`). The behaviour behind the examples is tested by the stories themselves
//! (cli.rs runs the install-and-run line; approvals.rs, agents.rs, targets.rs, … the rest).

use std::time::Duration;

use clap::Parser;

use crate::util::{run, Env};

const T: Duration = Duration::from_secs(30);

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// (info string, body, line number) of every fenced block.
fn blocks(text: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                None => open = Some((rest.trim().to_string(), String::new(), n + 1)),
                Some(b) => out.push(b),
            }
        } else if let Some((_, body, _)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(open.is_none(), "an unclosed code block in the README");
    out
}

/// The `hoopx …` commands of a shell text: lines joined at `\`, split at `&&`, `||`, `;`
/// and `|`, comments dropped, leading `VAR=value` assignments skipped.
fn hoopx_commands(text: &str) -> Vec<Vec<String>> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some(words) = shlex::split(line) else {
            panic!("a README shell line does not parse: {line}");
        };
        let mut current: Vec<String> = Vec::new();
        let mut segments = Vec::new();
        let mut words = words.into_iter();
        while let Some(w) = words.next() {
            if w.starts_with('#') {
                break;
            }
            // Redirections are the shell's, not the command's.
            if [">", ">>", "<", "2>"].contains(&w.as_str()) {
                words.next();
                continue;
            }
            if w.starts_with('>') || w.starts_with('<') || w.starts_with("2>") {
                continue;
            }
            if ["&&", "||", ";", "|"].contains(&w.as_str()) {
                segments.push(std::mem::take(&mut current));
            } else {
                current.push(w);
            }
        }
        segments.push(current);
        for seg in segments {
            let seg: Vec<String> = seg
                .into_iter()
                .skip_while(|w| {
                    w == "export"
                        || (w.contains('=')
                            && !w.starts_with('-')
                            && w.split('=').next().is_some_and(|k| {
                                k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                            }))
                })
                .collect();
            if seg.first().map(String::as_str) == Some("hoopx")
                || seg.first().is_some_and(|w| w.ends_with("/hoopx"))
            {
                out.push(seg);
            }
        }
    }
    out
}

fn parses(argv: &[String], where_: &str) {
    if let Err(e) = hoopx::cli::Cli::try_parse_from(argv) {
        use clap::error::ErrorKind;
        if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            panic!("{where_}: `{}` does not parse:\n{e}", argv.join(" "));
        }
    }
}

#[test]
fn every_readme_example_is_valid() {
    let text = readme();
    let env = Env::new();
    let mut commands = 0;
    for (lang, body, line) in blocks(&text) {
        let at = format!("README.md:{line} ({lang})");
        match lang.as_str() {
            "sh" | "yaml" => {
                let text = if lang == "yaml" {
                    // The commands of `run:` steps.
                    body.lines()
                        .filter_map(|l| l.trim().strip_prefix("run:").or(Some(l.trim())))
                        .collect::<Vec<_>>()
                        .join("\n")
                } else {
                    body.clone()
                };
                for argv in hoopx_commands(&text) {
                    parses(&argv, &at);
                    commands += 1;
                }
                if lang == "yaml" && body.contains("runs-on:") {
                    assert!(
                        body.contains("id-token: write"),
                        "{at}: a GitHub Actions job that gets an OIDC token needs `permissions: id-token: write`"
                    );
                }
            }
            "toml" => {
                let path = env.write("readme.toml", &body);
                let mut c = env.hoopx();
                // The secrets a config names come from the gateway's environment.
                c.env("PROD_DB_PASSWORD", "pw-example")
                    .env("WEB_SSH_KEY", "key-example")
                    .env("K8S_TOKEN", "token-example")
                    .args(["gateway", "check", "--dev", "--config"])
                    .arg(&path);
                let out = run(c, "", T);
                assert_eq!(out.code(), 0, "{at}: {out:?}");
            }
            "json" => {
                let v: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
                if let Some(servers) = v.get("mcpServers") {
                    let hoopx = &servers["hoopx"];
                    assert_eq!(hoopx["command"], "hoopx", "{at}");
                    let args: Vec<String> = serde_json::from_value(hoopx["args"].clone()).unwrap();
                    let mut argv = vec!["hoopx".to_string()];
                    argv.extend(args);
                    parses(&argv, &at);
                }
            }
            "ini" => {
                for l in body.lines() {
                    let l = l.trim();
                    assert!(
                        l.starts_with('#') || !l.contains(" #"),
                        "{at}: systemd has no inline comments: {l}"
                    );
                    if let Some(cmd) = l.strip_prefix("ExecStart=") {
                        let argv = shlex::split(cmd).unwrap();
                        assert!(argv[0].ends_with("/hoopx"), "{at}");
                        let mut argv = argv;
                        argv[0] = "hoopx".into();
                        parses(&argv, &at);
                        commands += 1;
                    }
                }
            }
            "" | "text" => {}
            other => {
                panic!("{at}: a code block of unknown kind {other:?}: teach this test to check it")
            }
        }
    }
    assert!(
        commands > 20,
        "the README's commands were found ({commands})"
    );
}
