//! Rules on parsed statements, end to end: real psql and a real extended-protocol client
//! (psycopg) against a real PostgreSQL through a real gateway that speaks the wire
//! protocol. Every bypass that beat the old line rules is tried, and the database itself
//! says afterwards that nothing it forbids happened. Statement reviews close the agent's
//! loop: asked with --no-wait, approved by another identity, run once with --review.

use std::time::Duration;

use crate::util::{run, Env, Gateway, Output, Postgres};

const T: Duration = Duration::from_secs(60);
const AGENT: &str = "tok-agent-0001";
const ALICE: &str = "tok-alice-0001";

struct World {
    env: Env,
    pg: Postgres,
    gw: Gateway,
}

fn world() -> World {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("shop");
    pg.sql(
        "shop",
        "create table t (id int); insert into t values (1); \
         create table carts (id int primary key, owner text); \
         insert into carts values (1, 'ann@example.com'), (2, 'ben@example.com'), (3, 'cy@example.com');",
    );
    let config = format!(
        r#"[[targets]]
name = "pg"
kind = "postgres"
command = ["psql", "python3"]
{settings}database = "shop"

[rules]
builtin_masks = ["all"]

[[rules.mask]]
name = "quoted"
pattern = "'.*'"

[[rules.deny]]
name = "no-drop"
statements = ["drop", "truncate"]
message = "dropping or emptying tables needs a migration, not an agent"

[[rules.review]]
name = "deletes"
statements = ["delete", "update"]
reviewers = ["dba"]

[[dev.identities]]
name = "agent"
token = "{AGENT}"
groups = ["agents"]

[[dev.identities]]
name = "alice"
token = "{ALICE}"
groups = ["dba"]
"#,
        settings = pg.target_settings()
    );
    let gw = Gateway::start(&env, Some(&config), None);
    World { env, pg, gw }
}

impl World {
    fn hoopx(&self, token: &str, args: &[&str]) -> std::process::Command {
        let mut c = self.gw.hoopx(&self.env);
        c.env("HOOPX_TOKEN", token).args(args);
        c
    }

    /// `hoopx exec --target pg [flags] -- psql -X [args]` as the agent, in pipe mode.
    fn psql(&self, flags: &[&str], args: &[&str], stdin: &str) -> Output {
        let mut c = self.hoopx(AGENT, &["exec", "--no-tty", "--target", "pg"]);
        c.args(flags).args(["--", "psql", "-X"]).args(args);
        run(c, stdin, T)
    }

    fn table_t_is_there(&self) -> bool {
        self.pg.sql(
            "shop",
            "select count(*) from pg_tables where tablename = 't'",
        ) == "1"
            && self.pg.sql("shop", "select count(*) from t") == "1"
    }

    fn carts(&self) -> String {
        self.pg.sql("shop", "select count(*) from carts")
    }
}

/// The statement log of the last session, as `hoopx replay --format sql` prints it.
fn statement_log(w: &World) -> String {
    let out = run(
        w.hoopx(AGENT, &["replay", "last", "--format", "sql"]),
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    out.stdout
}

#[test]
fn no_way_of_writing_a_drop_gets_it_past_the_gateway() {
    let w = world();
    let script = w.env.write(
        "bad.sql",
        "select 1 as before;\ndrop table t;\nselect 2 as after;\n",
    );
    let stdin_cases: &[(&str, &str)] = &[
        ("split over lines", "DROP\nTABLE t;\n"),
        ("a comment inside", "drop /* x */ table t;\n"),
        ("case games", "DrOp TaBlE T;\n"),
        ("quoted identifier", "drop table \"t\";\n"),
        ("unicode-escaped identifier", "drop table U&\"\\0074\";\n"),
        ("schema-qualified", "drop table public.t;\n"),
        ("a psql variable", "\\set x drop\n:x table t;\n"),
        ("\\gexec", "select 'drop table t' \\gexec\n"),
        ("truncate", "truncate t;\n"),
        (
            "a DO block (dynamic SQL)",
            "DO $$ BEGIN EXECUTE 'drop table t'; END $$;\n",
        ),
        (
            "an EXECUTE of a statement the gateway never saw prepared",
            "execute never_prepared;\n",
        ),
        (
            "backslash escapes switched on, then a string that hides a drop",
            "set standard_conforming_strings = off;\nselect '\\' , ' ; drop table t; -- ';\n",
        ),
        (
            "the client encoding switched with set_config",
            "select set_config('client_encoding', 'SJIS', false);\n",
        ),
        (
            "an EXECUTE whose argument calls a denied function",
            "prepare p(text) as select $1;\nexecute p(pg_read_file('/etc/passwd'));\n",
        ),
        (
            "a heredoc with several statements",
            "begin;\ninsert into t values (2);\ndrop table t;\ncommit;\n",
        ),
    ];
    for (what, stdin) in stdin_cases {
        let out = w.psql(&[], &[], stdin);
        assert_eq!(out.code(), 77, "{what}: {out:?}");
        assert!(
            out.stderr.contains("ERROR:  hoopx:"),
            "{what}: psql shows the gateway's error: {out:?}"
        );
        assert!(w.table_t_is_there(), "{what}: the table must survive");
    }
    // The transaction with a refused statement was rolled back as a failing statement
    // would roll it back: the insert before it is gone.
    assert_eq!(w.pg.sql("shop", "select count(*) from t"), "1");

    // The startup settings that decide how the server reads text are the gateway's: asking
    // for others is refused before anything runs, and a client encoding is replaced.
    let mut c = w.hoopx(
        AGENT,
        &["exec", "--no-tty", "--target", "pg", "--", "psql", "-X"],
    );
    c.env("PGOPTIONS", "-c standard_conforming_strings=off");
    let out = run(c, "select '\\' , ' ; drop table t; -- ';\n", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains("standard_conforming_strings"),
        "{out:?}"
    );
    assert!(w.table_t_is_there());
    let mut c = w.hoopx(
        AGENT,
        &[
            "exec", "--no-tty", "--target", "pg", "--", "psql", "-X", "-At",
        ],
    );
    c.env("PGCLIENTENCODING", "SJIS");
    let out = run(c, "show client_encoding;\n", T);
    assert_eq!(out.stdout.trim(), "UTF8", "{out:?}");

    // Several statements in one message (-c), and a script file (-f): decided as a whole.
    let out = w.psql(&[], &["-c", "select 1; drop table t"], "");
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stderr.contains("needs a migration"), "{out:?}");
    let out = w.psql(&[], &["-f", script.to_str().unwrap()], "");
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(
        out.stdout.contains("before") && out.stdout.contains("after"),
        "{out:?}"
    );
    assert!(w.table_t_is_there());

    // An extended-protocol client: psycopg sends Parse/Bind/Execute.
    let py = "import psycopg\n\
              c = psycopg.connect('')\n\
              try:\n    c.execute('DROP TABLE t')\n    print('dropped')\n\
              except psycopg.Error as e:\n    print('refused', e.sqlstate)\n";
    let mut c = w.hoopx(AGENT, &["exec", "--no-tty", "--target", "pg", "--"]);
    c.args(["python3", "-c", py]).env("PATH", "/usr/bin:/bin");
    let out = run(c, "", T);
    assert!(out.stdout.contains("refused 42501"), "{out:?}");
    assert!(w.table_t_is_there());

    // An EXECUTE is judged as what its connection prepared: a checked SELECT runs.
    let out = w.psql(
        &[],
        &["-Atq"],
        "prepare p as select count(*) from t;\nexecute p;\n",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "1", "{out:?}");

    // Text that does not parse is not sent.
    let out = w.psql(&[], &["-c", "drop tabel t"], "");
    assert!(
        out.stderr.contains("could not check this statement"),
        "{out:?}"
    );

    // The statement log says what was refused, as the gateway saw it.
    let log = statement_log(&w);
    assert!(log.contains("refused 42601"), "{log}");
    let out = run(w.hoopx(AGENT, &["verify", "last"]), "", T);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn a_statement_review_closes_the_agents_loop() {
    let w = world();
    let delete = "delete from carts where owner = 'ann@example.com' or id > 0;\n";
    // The agent asks without waiting: 75 and the review id.
    let out = w.psql(&["--no-wait", "--output", "json"], &[], delete);
    assert_eq!(out.code(), 75, "{out:?}");
    let id = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "approval_pending")
        .and_then(|e| e["review_id"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("no approval_pending event: {out:?}"));
    assert_eq!(w.carts(), "3", "nothing ran");

    // The review outlives the session; the reviewer sees the statement's whole structure:
    // the mask rule hides each literal on its own, never the `or id > 0`.
    let shown = run(w.hoopx(ALICE, &["review", "show", &id]), "", T);
    assert_eq!(shown.code(), 0, "{shown:?}");
    assert!(shown.stdout.contains("pending"), "{shown:?}");
    assert!(shown.stdout.contains("or id > 0"), "{shown:?}");
    assert!(shown.stdout.contains("$1"), "normalized form: {shown:?}");
    assert!(!shown.stdout.contains("ann@example.com"), "{shown:?}");

    // Not yet approved: --review waits for nothing and says so.
    let early = w.psql(&["--review", &id], &[], delete);
    assert_eq!(early.code(), 75, "{early:?}");
    assert_eq!(w.carts(), "3");

    let ok = run(
        w.hoopx(
            ALICE,
            &["review", "approve", &id, "--yes", "--reason", "cleanup"],
        ),
        "",
        T,
    );
    assert_eq!(ok.code(), 0, "{ok:?}");

    // The same statement under other connection settings is another statement.
    let mut c = w.hoopx(
        AGENT,
        &[
            "exec",
            "--no-tty",
            "--target",
            "pg",
            "--review",
            &id,
            "--approval-timeout",
            "2s",
            "--",
        ],
    );
    c.args(["psql", "-X"])
        .env("PGOPTIONS", "-c search_path=pg_catalog,public");
    let other = run(c, delete, T);
    assert_eq!(other.code(), 75, "{other:?}");
    assert_eq!(w.carts(), "3");

    // The approved statement runs once.
    let ran = w.psql(&["--review", &id], &[], delete);
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert!(ran.stdout.contains("DELETE 3"), "{ran:?}");
    assert_eq!(w.carts(), "0");
    let log = statement_log(&w);
    assert!(log.contains(&format!("review {id}")), "{log}");
    assert!(log.contains("ok DELETE 3"), "{log}");

    // Single use: the same statement again needs a new review.
    w.pg.sql("shop", "insert into carts values (9, 'x')");
    let again = w.psql(&["--review", &id], &[], delete);
    assert_ne!(again.code(), 0, "{again:?}");
    assert_eq!(w.carts(), "1");
}

#[test]
fn an_agent_over_mcp_asks_for_a_statement_review_and_runs_it_once_approved() {
    let w = world();
    let mut mcp = crate::agents::Mcp::start(&w.gw, &w.env);
    let call = serde_json::json!({
        "command": ["psql", "-X"],
        "target": "pg",
        "stdin": "update carts set owner = 'nobody';\n",
    });
    // The statement needs a review: the tool call comes back at once, pending.
    let r = mcp.tool("exec", call.clone());
    let s = &r["structuredContent"];
    assert_eq!(s["status"], "approval_pending", "{r}");
    assert_eq!(s["exit_code"], 75, "{r}");
    let id = s["review_id"].as_str().unwrap().to_string();
    assert_eq!(
        w.pg.sql("shop", "select count(*) from carts where owner = 'nobody'"),
        "0"
    );
    // A human approves it; the agent calls again with the review id.
    let ok = run(w.hoopx(ALICE, &["review", "approve", &id, "--yes"]), "", T);
    assert_eq!(ok.code(), 0, "{ok:?}");
    let mut again = call;
    again["review_id"] = id.clone().into();
    let r = mcp.tool("exec", again);
    assert_eq!(r["structuredContent"]["exit_code"], 0, "{r}");
    assert!(
        r["structuredContent"]["stdout"]
            .as_str()
            .unwrap()
            .contains("UPDATE 3"),
        "{r}"
    );
    assert_eq!(
        w.pg.sql("shop", "select count(*) from carts where owner = 'nobody'"),
        "3"
    );
}

/// Runs `openssl` in `dir`, failing the test on error.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.pem`) and, when `server`, a certificate for 127.0.0.1 it signed.
fn make_ca(dir: &std::path::Path, name: &str, server: bool) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        &key,
        "-out",
        &pem,
        "-days",
        "1",
        "-subj",
        "/CN=hoopx test CA",
    ]);
    openssl(dir, &a);
    if server {
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(dir, &a);
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &pem,
                "-CAkey",
                &key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext",
                "-out",
                "server.crt",
            ],
        );
    }
}

#[test]
fn tls_to_the_server_is_verified_against_the_targets_ca() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("shop");
    let password = "Tls-0nly-pw-77";
    pg.sql(
        "shop",
        &format!("create role app login password '{password}'"),
    );
    // The server's certificate and key live in its data directory, owned by its user.
    let data = pg.dir.path().join("data");
    let certs = env.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_ca(&certs, "ca", true);
    make_ca(&certs, "other", false);
    for f in ["server.crt", "server.key"] {
        std::fs::copy(certs.join(f), data.join(f)).unwrap();
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        if nix::unistd::geteuid().is_root() {
            let u = nix::unistd::User::from_name("postgres").unwrap().unwrap();
            std::os::unix::fs::chown(data.join(f), Some(u.uid.as_raw()), Some(u.gid.as_raw()))
                .unwrap();
        }
    }
    // `app` may only come in over TLS, with its password.
    let hba = data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all app 127.0.0.1/32 scram-sha-256\nhost all app 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    pg.sql("postgres", "alter system set ssl = on");
    pg.sql("postgres", "select pg_reload_conf()");
    crate::util::wait_for("TLS to be on", T, || {
        (pg.sql("postgres", "show ssl") == "on").then_some(())
    });

    let pwfile = env.write("pw", &format!("{password}\n"));
    let target = |name: &str, ca: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"app\"\ndatabase = \"shop\"\npassword = {{ file = \"{}\" }}\nca = {{ file = \"{}\" }}\n",
            pg.port,
            pwfile.display(),
            certs.join(ca).display()
        )
    };
    let config = format!(
        "{}\n{}",
        target("pg", "ca.pem"),
        target("forged", "other.pem")
    );
    let gw = Gateway::start(&env, Some(&config), None);

    let mut c = gw.hoopx(&env);
    c.args(["exec", "--target", "pg", "--", "psql", "-X", "-At", "-c"])
        .arg("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "t",
        "the gateway's connection is TLS: {out:?}"
    );

    // A server whose certificate the target's CA did not sign is not talked to.
    let mut c = gw.hoopx(&env);
    c.args([
        "exec", "--target", "forged", "--", "psql", "-X", "-At", "-c", "select 1",
    ]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("TLS"), "{out:?}");
    assert!(!out.stdout.contains('1'), "{out:?}");
}

#[test]
fn rows_errors_and_notices_are_masked_before_they_leave_the_gateway() {
    let w = world();
    w.pg.sql("shop", "create unique index on carts (owner)");
    // The script spells '@' out before printing, so the terminal path's masker cannot be
    // what hides the addresses: only the gateway's masking of the wire can.
    let py = "import psycopg\n\
              c = psycopg.connect('')\n\
              for (o,) in c.execute('select owner from carts order by id'):\n    print('row', o.replace('@', ' at '))\n\
              try:\n    c.execute(\"insert into carts values (9, 'ann@example.com')\")\n\
              except psycopg.Error as e:\n    print('detail', (e.diag.message_detail or '').replace('@', ' at '))\n";
    let mut c = w.hoopx(AGENT, &["exec", "--no-tty", "--target", "pg", "--"]);
    c.args(["python3", "-c", py]).env("PATH", "/usr/bin:/bin");
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout.matches("row [REDACTED:email]").count(),
        3,
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("detail Key (owner)=([REDACTED:email]) already exists."),
        "{out:?}"
    );
    assert!(!out.stdout.contains(" at example.com"), "{out:?}");
    // The session counts what the gateway masked.
    let show = run(
        w.hoopx(AGENT, &["sessions", "show", "last", "--output", "json"]),
        "",
        T,
    );
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert!(v["masks"]["email"].as_u64().unwrap_or(0) >= 4, "{v}");
    assert!(v["statements"]["total"].as_u64().unwrap_or(0) >= 2, "{v}");
}
