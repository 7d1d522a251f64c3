//! Usage errors, configuration errors and generated files.

use std::time::Duration;

use crate::util::{run, Env};
use crate::EXAMPLE_CONFIG;

const T: Duration = Duration::from_secs(30);

#[test]
fn usage_errors_exit_64() {
    let env = Env::new();
    for args in [
        vec!["exec"],
        vec!["exec", "--tty", "--no-tty", "--", "true"],
        vec!["no-such-command"],
        vec!["exec", "--bogus", "--", "true"],
        vec![],
    ] {
        let mut c = env.hoopx();
        c.args(&args);
        let out = run(c, "", T);
        assert_eq!(out.code(), 64, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let mut c = env.hoopx();
    c.arg("--help");
    assert_eq!(run(c, "", T).code(), 0);
    let mut c = env.hoopx();
    c.args(["exec", "--gateway", "not a url", "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("not a URL"), "{out:?}");
}

#[test]
fn the_example_config_is_accepted_and_a_bad_one_is_refused_with_file_and_line() {
    let env = Env::new();
    let good = env.write("good.toml", EXAMPLE_CONFIG);
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--dev", "--config"]).arg(&good);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("(1 target, 1 mask rule,"), "{out:?}");
    // Without --dev, check refuses what serve would refuse: nobody could sign in.
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--config"]).arg(&good);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("no authentication"), "{out:?}");
    assert!(out.stderr.contains("--dev"), "{out:?}");

    let bad = env.write(
        "bad.toml",
        "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n\n[[rules.deny]]\nname = \"x\"\npattern = '(?i)drop(('\n",
    );
    for sub in ["check", "serve"] {
        let mut c = env.hoopx();
        c.args([
            "gateway",
            sub,
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&bad);
        if sub == "check" {
            c = env.hoopx();
            c.args(["gateway", "check", "--dev", "--config"]).arg(&bad);
        }
        let out = run(c, "", T);
        assert_eq!(out.code(), 78, "{sub}: {out:?}");
        assert!(
            out.stderr.contains(&format!("{}:7:", bad.display())),
            "{sub}: {out:?}"
        );
        assert!(out.stderr.contains("invalid regex"), "{sub}: {out:?}");
    }

    // Every bad rule in one run, each regex with a caret where it breaks; ignored settings
    // are warned about.
    let bad = env.write(
        "bad2.toml",
        "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n\n[[dev.identities]]\nname = \"bob\"\ntoken = \"bob-token-123\"\n\n[[rules.deny]]\nname = \"x\"\npattern = '(?i)drop(('\n\n[[rules.deny]]\nname = \"y\"\npattern = 'a[bc'\n",
    );
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--config"]).arg(&bad);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad config (2 errors):"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:11:21: rule \"x\": invalid regex: unclosed group\n    (?i)drop((\n             ^",
            bad.display()
        )),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("rule \"y\": invalid regex: unclosed character class\n    a[bc\n     ^"),
        "{out:?}"
    );
    let fixed = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("drop((", "drop")
        .replace("a[bc", "abc")
        .replace(
            "[[targets]]",
            "[auth]\nissuer = \"https://idp.example.com\"\naudience = \"x\"\n\n[[targets]]",
        );
    std::fs::write(&bad, fixed).unwrap();
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--config"]).arg(&bad);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr
            .contains("[[dev.identities]] (1 entry) are ignored without --dev"),
        "{out:?}"
    );

    // A serve without any authentication refuses to start.
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&good);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
}

#[test]
fn a_bad_client_config_exits_78_with_its_line() {
    let env = Env::new();
    std::fs::create_dir_all(env.path().join("config/hoopx")).unwrap();
    env.write(
        "config/hoopx/config.toml",
        "gateway = \"http://127.0.0.1:1\"\ntarget = 5\n",
    );
    let mut c = env.hoopx();
    c.args(["exec", "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("config.toml:2"), "{out:?}");
    // A good one points exec at its gateway (unreachable here: exit 69).
    env.write(
        "config/hoopx/config.toml",
        "gateway = \"http://127.0.0.1:1\"\n",
    );
    let mut c = env.hoopx();
    c.args(["exec", "--", "true"]);
    assert_eq!(run(c, "", T).code(), 69);
}

#[test]
fn completions_and_man_pages_have_not_drifted() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args(["generate", "--out"]).arg(env.path());
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["completions", "man"] {
        let fresh = env.path().join(dir);
        let mut names: Vec<_> = std::fs::read_dir(&fresh)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert!(!names.is_empty());
        let mut committed: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        committed.sort();
        assert_eq!(
            names, committed,
            "{dir}/ differs: run `cargo run -- generate`"
        );
        for n in names {
            let a = std::fs::read(fresh.join(&n)).unwrap();
            let b = std::fs::read(root.join(dir).join(&n)).unwrap();
            assert!(
                a == b,
                "{dir}/{} has drifted: run `cargo run -- generate`",
                n.to_string_lossy()
            );
        }
    }
}

#[test]
fn completion_and_man_print_what_ships() {
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let hoopx = |args: &[&str]| {
        let mut c = env.hoopx();
        c.args(args);
        run(c, "", T)
    };
    for (shell, file) in [
        ("bash", "hoopx.bash"),
        ("zsh", "_hoopx"),
        ("fish", "hoopx.fish"),
        ("elvish", "hoopx.elv"),
        ("powershell", "_hoopx.ps1"),
    ] {
        let out = hoopx(&["completion", shell]);
        assert_eq!(out.code(), 0, "{out:?}");
        let shipped = std::fs::read_to_string(root.join("completions").join(file)).unwrap();
        assert!(
            out.stdout == shipped,
            "hoopx completion {shell} differs from completions/{file}"
        );
    }
    for (args, file) in [
        (vec!["man"], "hoopx.1"),
        (vec!["man", "exec"], "hoopx-exec.1"),
        (vec!["man", "sessions", "export"], "hoopx-sessions-export.1"),
    ] {
        let out = hoopx(&args);
        assert_eq!(out.code(), 0, "{out:?}");
        let shipped = std::fs::read_to_string(root.join("man").join(file)).unwrap();
        assert!(
            out.stdout == shipped,
            "hoopx {args:?} differs from man/{file}"
        );
    }
    // Bash really loads it: the completion function is defined afterwards.
    let script = env.write("c.bash", &hoopx(&["completion", "bash"]).stdout);
    let out = run(
        {
            let mut c = std::process::Command::new("bash");
            c.arg("-c")
                .arg(format!("source {} && declare -F _hoopx", script.display()));
            c
        },
        "",
        T,
    );
    assert_eq!(out.stdout.trim(), "_hoopx", "{out:?}");
    let out = hoopx(&["man", "nosuch"]);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(
        out.stderr.contains("there is no command `hoopx nosuch`"),
        "{out:?}"
    );
    let out = hoopx(&["completion", "tcsh"]);
    assert_ne!(out.code(), 0, "{out:?}");
}

/// The README's install step: build dependencies (scripts/deps.sh), then cargo install.
const INSTALL: &str = "scripts/deps.sh --build && cargo install --locked --path . && ";

#[test]
fn the_readme_main_job_does_what_the_readme_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with(INSTALL))
        .expect("the README's install-and-run command");
    let job = line.trim_start_matches(INSTALL);
    let env = Env::new();
    // The installed binary is the one under test: put it first on PATH.
    let bin_dir = std::path::Path::new(crate::util::BIN).parent().unwrap();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(job).env_clear();
    for (k, v) in env.hoopx().get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.env(
        "PATH",
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    sh.current_dir(env.path());
    let out = run(sh, "", T);
    assert_eq!(out.code(), 3, "{out:?}");
    assert_eq!(
        out.stdout, "deploy key [REDACTED:aws-access-key-id], owner [REDACTED:email]\n",
        "{out:?}"
    );
}

#[test]
fn a_bad_listen_address_is_a_usage_error_and_a_named_config_must_exist() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "not-an-address"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("--listen takes HOST:PORT"), "{out:?}");

    let mut c = env.hoopx();
    c.env("HOOPX_CONFIG", env.path().join("missing.toml"))
        .args(["exec", "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("missing.toml"), "{out:?}");
}

#[test]
fn exec_settings_come_from_flags_then_environment_then_the_config_file() {
    let env = Env::new();
    let gw = crate::util::Gateway::start(&env, Some(crate::SHELL_CONFIG), None);
    let dead = "http://127.0.0.1:1";
    std::fs::create_dir_all(env.path().join("config/hoopx")).unwrap();

    // The config file alone points at the gateway and picks the target.
    env.write(
        "config/hoopx/config.toml",
        &format!("gateway = \"{}\"\ntarget = \"shell\"\n", gw.url),
    );
    let mut c = env.hoopx();
    c.env("HOOPX_TOKEN", crate::util::DEV_TOKEN).args([
        "exec",
        "--",
        "sh",
        "-c",
        "echo via-config",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.stdout, "via-config\n", "{out:?}");

    // The environment wins over the config file, and a flag wins over the environment.
    env.write(
        "config/hoopx/config.toml",
        &format!("gateway = \"{dead}\"\n"),
    );
    let mut c = env.hoopx();
    c.env("HOOPX_TOKEN", crate::util::DEV_TOKEN)
        .env("HOOPX_GATEWAY", &gw.url)
        .args(["exec", "--", "sh", "-c", "echo via-env"]);
    assert_eq!(run(c, "", T).stdout, "via-env\n");
    let mut c = env.hoopx();
    c.env("HOOPX_TOKEN", crate::util::DEV_TOKEN)
        .env("HOOPX_GATEWAY", &gw.url)
        .args(["exec", "--gateway", dead, "--", "sh", "-c", "echo never"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");

    // HOOPX_TARGET names the target; an unknown one is a usage error.
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TARGET", "nope")
        .args(["exec", "--", "sh", "-c", "echo never"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("no target named \"nope\""), "{out:?}");

    // A tool that cannot start is 127.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--target", "shell", "--", "cat", "--version"]);
    let ok = run(c, "", T);
    assert_eq!(ok.code(), 0, "{ok:?}");
    let empty = env.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = gw.hoopx(&env);
    c.env("PATH", &empty)
        .args(["exec", "--", "sh", "-c", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(out.stderr.contains("cannot run sh"), "{out:?}");
}

#[test]
fn the_readme_gateway_config_is_accepted_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("### Gateway config\n\n```toml\n")
        .expect("the README's gateway config");
    let body = &readme[start..];
    let body = &body[body.find("```toml\n").unwrap() + 8..];
    let config = &body[..body.find("```").unwrap()];
    let env = Env::new();
    let path = env.write("readme.toml", config);
    let mut c = env.hoopx();
    // The secrets it names come from the gateway's environment.
    c.env("PROD_DB_PASSWORD", "pw-example")
        .env("WEB_SSH_KEY", "key-example")
        .env("K8S_TOKEN", "token-example")
        .args(["gateway", "check", "--dev", "--config"])
        .arg(&path);
    let out = run(c, "", std::time::Duration::from_secs(30));
    assert_eq!(out.code(), 0, "{out:?}\n{config}");
    assert!(out.stdout.contains("OK (3 targets"), "{out:?}");
}

#[test]
fn dash_o_is_output_and_list_times_say_their_zone() {
    let env = Env::new();
    let hoopx = |args: &[&str]| {
        let mut c = env.hoopx();
        c.args(args);
        run(c, "", T)
    };
    let out = hoopx(&["exec", "-o", "json", "--", "true"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{out:?}"
    );
    let out = hoopx(&["sessions", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{out:?}");
    let out = hoopx(&["sessions", "list"]);
    assert!(
        out.stdout.starts_with("ID") && out.stdout.contains("STARTED (UTC)"),
        "{out:?}"
    );
}

#[test]
fn replay_from_past_the_end_or_an_unknown_marker_says_what_there_is() {
    let env = Env::new();
    let hoopx = |args: &[&str]| {
        let mut c = env.hoopx();
        c.args(args);
        run(c, "", T)
    };
    assert_eq!(hoopx(&["exec", "--", "sh", "-c", "echo hi"]).code(), 0);
    let out = hoopx(&["replay", "last", "--from", "10:00"]);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(
        out.stderr
            .contains("10:00 is past the end of the session, which lasts 0:"),
        "{out:?}"
    );
    let out = hoopx(&["replay", "last", "--from", "no-such-marker"]);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(
        out.stderr.contains("its markers: 0:00 {\"closed\""),
        "{out:?}"
    );
}
