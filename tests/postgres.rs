//! PostgreSQL at the wire level, end to end, as a user, an auditor and an attacker see it:
//! real psql, pg_dump and psycopg (the extended protocol) through a real gateway that logs
//! in to a real PostgreSQL itself, with SCRAM-SHA-256 and a password only the gateway's
//! machine holds. The caller's machine never holds that password; the statement log says
//! what ran; Ctrl-C cancels the server's query; covered columns are masked on the wire;
//! losing the server or a broken client fails closed, and the endpoint is private.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{run, spawn_piped, wait_timeout, Env, Gateway, Output, Postgres, PtyChild};

const T: Duration = Duration::from_secs(120);

/// The rules of most stories: every built-in detector on.
const DETECTORS: &str = "[rules]\nbuiltin_masks = [\"all\"]\n";

/// A PostgreSQL whose `app` role logs in only with SCRAM-SHA-256 over TCP, a gateway that
/// holds its password, and a caller on another "machine" (its own HOME and TMPDIR).
struct World {
    /// The caller's HOME; session directories go to its `tmp`.
    client: Env,
    /// The gateway's machine: its config, the password file, the store.
    server: Env,
    pg: Option<Postgres>,
    gw: Gateway,
    password: String,
}

fn world(rules: &str) -> World {
    let client = Env::new();
    let server = Env::new();
    let pg = Postgres::start();
    // Unique per test: a scanner finding it anywhere found this test's password.
    let password = {
        use rand::Rng;
        let n: u64 = rand::rng().random();
        format!("Tgt-pw-{n:016x}")
    };
    pg.sql(
        "postgres",
        "alter system set password_encryption = 'scram-sha-256'",
    );
    // The server log says how each connection authenticated.
    pg.sql("postgres", "alter system set log_connections = on");
    pg.sql("postgres", "select pg_reload_conf()");
    wait_until("the settings to be in force", || {
        pg.sql("postgres", "show password_encryption") == "scram-sha-256"
    });
    pg.sql(
        "postgres",
        &format!("create role app login password '{password}'"),
    );
    assert_eq!(
        pg.sql(
            "postgres",
            "select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'app'"
        ),
        "t",
        "app's password is stored as a SCRAM verifier"
    );
    pg.sql("postgres", "create database shop owner app");
    // The tables belong to app, created as app.
    pg.sql(
        "shop",
        r"set role app;
          create table items (id int primary key, name text not null, price numeric(8,2));
          insert into items values (1, 'apple', 0.50), (2, 'pear', 0.75), (3, 'plum', 1.20);
          create table customers (id int primary key, name text, email text, ssn text,
                                  avatar bytea, note text);
          insert into customers values
            (1, 'Ann', 'ann@example.com', '123-45-6789', '\x89504e47', 'vip'),
            (2, 'Ben', 'ben@example.com', '234-56-7890', null, 'new');
          create table employees (id int, ssn text);
          insert into employees values (7, '345-67-8901');
          create table suppliers (id int, email text);
          insert into suppliers values (1, 'sales@acme.example.org');
          create table notes (id int, body text);",
    );
    // app: SCRAM over TCP only; nothing else (no trust, no Unix socket, no md5).
    let hba = pg.dir.path().join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "local all app reject\nhost all app 127.0.0.1/32 scram-sha-256\n\
             host all app all reject\n{old}"
        ),
    )
    .unwrap();
    pg.sql("postgres", "select pg_reload_conf()");
    // The check is real: without the password app is refused, with it app gets in.
    let direct = |pw: Option<&str>| {
        let mut c = Command::new("psql");
        c.args(["-X", "-w", "-At", "-h", "127.0.0.1", "-p"])
            .arg(pg.port.to_string())
            .args(["-U", "app", "-d", "shop", "-c", "select 1"])
            .env_remove("PGPASSWORD");
        if let Some(pw) = pw {
            c.env("PGPASSWORD", pw);
        }
        run(c, "", T)
    };
    wait_until("pg_hba.conf to be in force", || direct(None).code() != 0);
    let ok = direct(Some(&password));
    assert_eq!(ok.code(), 0, "app logs in with its password: {ok:?}");

    let pwfile = server.write("pg-app-password", &format!("{password}\n"));
    let target = |name: &str, more: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n\
             port = {}\nuser = \"app\"\ndatabase = \"shop\"\npassword = {{ file = \"{}\" }}\n{more}\n",
            pg.port,
            pwfile.display()
        )
    };
    // pg_dump reads the catalog with SQL-level PREPARE/EXECUTE: each EXECUTE is judged as
    // the statement its connection prepared, so every built-in rule stays on.
    let config = format!(
        "{}{}{rules}",
        target("pg", "command = [\"psql\", \"python3\"]"),
        target("dump", "command = [\"pg_dump\"]"),
    );
    let gw = Gateway::start(&server, Some(&config), None);
    World {
        client,
        server,
        pg: Some(pg),
        gw,
        password,
    }
}

impl World {
    fn pg(&self) -> &Postgres {
        self.pg.as_ref().expect("the server is running")
    }

    /// The caller's temp directory, where session directories go.
    fn tmp(&self) -> PathBuf {
        let p = self.client.path().join("tmp");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// `hoopx ARGS` as the caller, pointed at the gateway. PATH is the system's, so
    /// `python3` is Debian's, with psycopg.
    fn hoopx(&self, args: &[&str]) -> Command {
        let mut c = self.gw.hoopx(&self.client);
        c.env("TMPDIR", self.tmp())
            .env("PATH", "/usr/bin:/bin")
            .args(args);
        c
    }

    /// `hoopx exec --no-tty --target pg -- TOOL…`.
    fn exec(&self, tool: &[&str]) -> Command {
        let mut c = self.hoopx(&["exec", "--no-tty", "--target", "pg", "--"]);
        c.args(tool);
        c
    }

    fn psql(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = self.exec(&["psql", "-X"]);
        c.args(args);
        run(c, stdin, T)
    }

    fn python(&self, script: &str) -> Output {
        run(self.exec(&["python3", "-c", script]), "", T)
    }

    /// The marker events of a session's recording (`hoopx replay … --format json`).
    fn markers(&self, session: &str) -> Vec<Value> {
        let out = run(self.hoopx(&["replay", session, "--format", "json"]), "", T);
        assert_eq!(out.code(), 0, "{out:?}");
        out.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "m")
            .map(|e| {
                serde_json::from_str(e["data"].as_str().expect("a marker is JSON text"))
                    .expect("a marker is JSON")
            })
            .collect()
    }

    /// The statement log of a session, in order.
    fn statements(&self, session: &str) -> Vec<Value> {
        self.markers(session)
            .into_iter()
            .filter_map(|m| m.get("statement").cloned())
            .collect()
    }

    /// Waits until the server runs a query of app's containing `needle`.
    fn wait_active(&self, needle: &str) {
        let q = format!(
            "select count(*) from pg_stat_activity where usename = 'app' \
             and state = 'active' and query like '%{needle}%'"
        );
        wait_until(&format!("the server to run {needle}"), || {
            self.pg().sql("shop", &q) != "0"
        });
    }

    /// The one session directory in the caller's temp directory.
    fn session_dir(&self) -> PathBuf {
        let dirs: Vec<_> = std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "one session directory: {dirs:?}");
        dirs[0].clone()
    }

    fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    }
}

/// Polls `f` every 100 ms (each poll may start a process: a loaded machine needs the room)
/// until it holds, or panics after [`T`] saying `what`.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The statement whose text contains `needle` (the first one).
fn statement<'a>(log: &'a [Value], needle: &str) -> &'a Value {
    log.iter()
        .find(|s| s["text"].as_str().unwrap_or("").contains(needle))
        .unwrap_or_else(|| panic!("no statement with {needle:?} in {log:#?}"))
}

/// The statement with `needle` ran: its tag, and its row count when the tag has one.
fn assert_ran(log: &[Value], needle: &str, tag: &str) {
    let s = statement(log, needle);
    assert_eq!(s["status"], "ok", "{s}");
    assert_eq!(s["tag"], tag, "{s}");
    match tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()) {
        Some(rows) => assert_eq!(s["rows"], rows, "{s}"),
        None => assert!(s.get("rows").is_none(), "{s}"),
    }
}

// ---------------------------------------------------------------------------------------
// Using it

#[test]
fn psql_runs_commands_scripts_and_meta_commands_and_every_statement_is_logged() {
    let w = world(DETECTORS);

    let out = w.psql(
        &[
            "-At",
            "-c",
            "select current_user, current_database(), count(*), sum(price) from items",
        ],
        "",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "app|shop|3|2.45", "{out:?}");
    // The gateway logged in as app with SCRAM-SHA-256 (the server says so).
    let log = std::fs::read_to_string(w.pg().dir.path().join("server.log")).unwrap();
    assert!(
        log.contains("connection authenticated: identity=\"app\" method=scram-sha-256"),
        "{log}"
    );

    // A script on stdin: several statements, one failing, the rest going on.
    let script = "create table orders (id int primary key, item text, qty int);\n\
                  insert into orders values (1, 'apple', 3), (2, 'pear', 5);\n\
                  update orders set qty = qty + 1 where id = 2;\n\
                  select item, qty from orders order by id;\n\
                  select 1/0;\n\
                  select 'still' || ' here' as after;\n";
    let out = w.psql(&["-At"], script);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout, "CREATE TABLE\nINSERT 0 2\nUPDATE 1\napple|3\npear|6\nstill here\n",
        "{out:?}"
    );
    assert!(out.stderr.contains("ERROR:  division by zero"), "{out:?}");
    assert_eq!(
        w.pg().sql("shop", "select qty from orders where id = 2"),
        "6"
    );

    // The statement log holds each statement, in order, as the server answered it.
    let log = w.statements("last");
    let texts: Vec<_> = log.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert!(texts[0].starts_with("create table orders"), "{texts:?}");
    assert!(texts[5].contains("still"), "{texts:?}");
    assert_ran(&log, "create table orders", "CREATE TABLE");
    assert_ran(&log, "insert into orders", "INSERT 0 2");
    assert_ran(&log, "update orders", "UPDATE 1");
    assert_ran(&log, "select item, qty", "SELECT 2");
    assert_ran(&log, "'still'", "SELECT 1");
    let div = statement(&log, "1/0");
    assert_eq!(div["status"], "error", "{div}");
    assert_eq!(div["sqlstate"], "22012", "{div}");
    assert!(
        div["error"].as_str().unwrap().contains("division by zero"),
        "{div}"
    );
    for s in &log {
        assert_eq!(s["protocol"], "simple", "{s}");
        assert_eq!(s["conn"], log[0]["conn"], "one connection: {s}");
        assert!(s["duration_ms"].is_number(), "{s}");
    }
    let markers = w.markers("last");
    let connected: Vec<_> = markers
        .iter()
        .filter_map(|m| m.get("pg_connected"))
        .collect();
    assert_eq!(connected.len(), 1, "{markers:#?}");
    assert_eq!(connected[0]["via"], "unix", "{markers:#?}");
    assert_eq!(connected[0]["user"], "app");
    assert_eq!(connected[0]["database"], "shop");
    let out = run(w.hoopx(&["verify", "last"]), "", T);
    assert_eq!(out.code(), 0, "the log is in the verified chain: {out:?}");

    // Meta-commands: psql's own catalog queries go through the gateway too.
    let out = w.psql(&["-c", "\\d items"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    for want in [
        "Table \"public.items\"",
        "price  | numeric(8,2)",
        "\"items_pkey\" PRIMARY KEY, btree (id)",
    ] {
        assert!(out.stdout.contains(want), "{want:?} in {out:?}");
    }
    let out = w.psql(&["-c", "\\dt"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    for t in ["customers", "items", "orders", "suppliers"] {
        assert!(out.stdout.contains(&format!("| {t} ")), "{t} in {out:?}");
    }
    let log = w.statements("last");
    assert!(
        log.iter()
            .all(|s| s["status"] == "ok" && s["text"].as_str().unwrap().contains("pg_catalog")),
        "{log:#?}"
    );
    w.assert_nothing_left();
}

#[test]
fn pg_dump_dumps_the_database_through_the_gateway_and_the_dump_restores() {
    let w = world(DETECTORS);
    let out = run(
        w.hoopx(&["exec", "--no-tty", "--target", "dump", "--", "pg_dump"]),
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let dump = &out.stdout;
    for want in [
        "CREATE TABLE public.items (",
        "price numeric(8,2)",
        "ALTER TABLE ONLY public.items",
        "PRIMARY KEY (id)",
        "COPY public.items (id, name, price) FROM stdin;\n1\tapple\t0.50\n2\tpear\t0.75\n3\tplum\t1.20\n\\.",
        "CREATE TABLE public.customers (",
    ] {
        assert!(dump.contains(want), "{want:?} in the dump:\n{dump}");
    }
    // Data the detectors find leaves masked, as in any result.
    assert!(!dump.contains("ann@example.com"), "{dump}");
    assert!(
        dump.contains("1\tAnn\t[REDACTED:email]\t[REDACTED:us-ssn]"),
        "{dump}"
    );
    let log = w.statements("last");
    assert_ran(&log, "COPY public.items", "COPY 3");

    // The dump is a real one: it restores into an empty database.
    w.pg().create_db("restored");
    let file = w.client.write("shop.sql", dump);
    let mut c = Command::new("psql");
    c.args(w.pg().args("restored"))
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        w.pg().sql(
            "restored",
            "select string_agg(name, ',' order by id) from items"
        ),
        "apple,pear,plum"
    );
    w.assert_nothing_left();
}

#[test]
fn psycopg_binds_parameters_prepares_statements_and_runs_transactions_over_socket_and_tcp() {
    let w = world(DETECTORS);
    let script = r#"
import os, psycopg
with psycopg.connect("", autocommit=True) as c:
    cur = c.cursor()
    names = []
    # Auto-prepared after five executions, then run by name; and prepared at once.
    for i in (1, 2, 3, 1, 2, 3, 1, 2):
        cur.execute("select name from items where id = %s", (i,))
        names.append(cur.fetchone()[0])
    for i in (3, 2, 1, 3, 2, 1):
        cur.execute("select name, price from items where id = %s and price > %s", (i, 0), prepare=True)
        names.append(cur.fetchone()[0])
    print("names", ",".join(names))
    cur.execute("select count(*) from pg_prepared_statements where not from_sql")
    print("prepared", cur.fetchone()[0])
    with c.transaction():
        cur.execute("insert into items values (%s, %s, %s)", (10, "kiwi", "2.50"))
        cur.execute("update items set price = price * %s where id = %s", (2, 10))
    try:
        with c.transaction():
            cur.execute("insert into items values (%s, %s, %s)", (11, "fig", 1))
            cur.execute("insert into items values (%s, %s, %s)", (11, "fig again", 1))
    except psycopg.errors.UniqueViolation as e:
        print("rolled back", e.sqlstate)
    cur.executemany("insert into items values (%s, %s, %s)", [(20 + i, f"bulk{i}", i) for i in range(5)])
    cur.execute("select id, name, price from items where id >= %s order by id", (10,))
    for r in cur.fetchall():
        print("row", r[0], r[1], r[2], type(r[2]).__name__)

port = os.environ["PGPORT"]
with psycopg.connect(f"host=127.0.0.1 port={port}") as c:
    print("tcp", c.execute("select count(*) from items").fetchone()[0])
try:
    psycopg.connect(f"host=127.0.0.1 port={port} password=not-the-local-one")
    print("wrong password accepted")
except psycopg.OperationalError as e:
    print("wrong password refused:", str(e).strip().splitlines()[-1])
"#;
    let out = w.python(script);
    assert_eq!(out.code(), 0, "{out:?}");
    let o = &out.stdout;
    assert!(
        o.contains(
            "names apple,pear,plum,apple,pear,plum,apple,pear,plum,pear,apple,plum,pear,apple\n"
        ),
        "{out:?}"
    );
    let prepared: u32 = o
        .lines()
        .find_map(|l| l.strip_prefix("prepared "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(prepared >= 2, "statements prepared on the server: {out:?}");
    assert!(o.contains("rolled back 23505\n"), "{out:?}");
    assert!(o.contains("row 10 kiwi 5.00 Decimal\n"), "{out:?}");
    assert!(o.contains("row 24 bulk4 4.00 Decimal\n"), "{out:?}");
    assert!(!o.contains("row 11"), "{out:?}");
    assert!(o.contains("tcp 9\n"), "{out:?}");
    assert!(
        o.contains("wrong password refused:") && o.contains("password authentication failed"),
        "{out:?}"
    );
    // What the database holds.
    assert_eq!(
        w.pg().sql(
            "shop",
            "select string_agg(id || '=' || price, ',' order by id) from items where id >= 10"
        ),
        "10=5.00,20=0.00,21=1.00,22=2.00,23=3.00,24=4.00"
    );

    // The log: extended-protocol statements with their outcome, the connections' ways in.
    let log = w.statements("last");
    let select = statement(&log, "select name from items where id = $1");
    assert_eq!(select["protocol"], "extended", "{select}");
    let runs = log
        .iter()
        .filter(|s| s["text"] == select["text"] && s["status"] == "ok" && s["rows"] == 1)
        .count();
    assert_eq!(runs, 8, "each execution is logged: {log:#?}");
    let dup = log
        .iter()
        .find(|s| s["sqlstate"] == "23505")
        .unwrap_or_else(|| panic!("the duplicate key is logged: {log:#?}"));
    assert_eq!(dup["status"], "error", "{dup}");
    assert_ran(&log, "update items set price", "UPDATE 1");
    let markers = w.markers("last");
    let via: Vec<_> = markers
        .iter()
        .filter_map(|m| m.get("pg_connected"))
        .map(|c| c["via"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        via,
        ["unix", "tcp"],
        "the wrong password never connected: {markers:#?}"
    );
    w.assert_nothing_left();
}

#[test]
fn copy_in_and_out_through_the_gateway_with_secrets_masked_on_the_way_out() {
    let w = world(DETECTORS);
    let key = "AKIAIOSFODNN7EXAMPLE";
    let script = format!(
        "copy notes (id, body) from stdin;\n\
         1\tplain note\n\
         2\tcontact ann@example.com\n\
         3\tkey {key} here\n\
         \\.\n\
         select count(*) from notes;\n\
         copy notes to stdout;\n\
         select body from notes order by id;\n"
    );
    let out = w.psql(&["-At"], &script);
    assert_eq!(out.code(), 0, "{out:?}");
    // COPY in is data the caller sends: it arrives as it was.
    assert_eq!(
        w.pg().sql(
            "shop",
            "select string_agg(body, '|' order by id) from notes"
        ),
        format!("plain note|contact ann@example.com|key {key} here")
    );
    let masked =
        "1\tplain note\n2\tcontact [REDACTED:email]\n3\tkey [REDACTED:aws-access-key-id] here\n";
    assert!(out.stdout.starts_with("COPY 3\n3\n"), "{out:?}");
    assert!(out.stdout.contains(masked), "{out:?}");
    assert!(
        out.stdout.ends_with(
            "plain note\ncontact [REDACTED:email]\nkey [REDACTED:aws-access-key-id] here\n"
        ),
        "{out:?}"
    );
    let log = w.statements("last");
    assert_ran(&log, "copy notes (id, body) from stdin", "COPY 3");
    assert_ran(&log, "copy notes to stdout", "COPY 3");

    // A client that prints what it received as hex, which no masker of printed text can
    // read: the values were masked on the wire, before they left the gateway.
    let py = r#"
import psycopg
c = psycopg.connect("", autocommit=True)
with c.cursor().copy("copy notes to stdout") as cp:
    data = b"".join(bytes(b) for b in cp)
print("copy", data.hex())
rows = c.execute("select body from notes order by id").fetchall()
print("select", "\n".join(r[0] for r in rows).encode().hex())
"#;
    let out = w.python(py);
    assert_eq!(out.code(), 0, "{out:?}");
    let hex = |what: &str| {
        let h = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or_else(|| panic!("{what}: {out:?}"));
        String::from_utf8(hex::decode(h).unwrap()).unwrap()
    };
    assert_eq!(hex("copy"), masked);
    assert_eq!(
        hex("select"),
        "plain note\ncontact [REDACTED:email]\nkey [REDACTED:aws-access-key-id] here"
    );
    w.assert_nothing_left();
}

#[test]
fn ctrl_c_in_interactive_psql_cancels_the_servers_query_and_the_session_goes_on() {
    let w = world(DETECTORS);
    let mut cmd = w.hoopx(&["exec", "--target", "pg", "--", "psql", "-X"]);
    cmd.env("TERM", "xterm");
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("shop=>", T);
    p.type_str("select pg_sleep(90);\r");
    w.wait_active("pg_sleep(90)");
    let sent = Instant::now();
    p.type_str("\x03");
    p.output
        .wait_for("canceling statement due to user request", T);
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(45),
        "cancelled after {took:?}, not by the query's end"
    );
    // The server's query is gone, not just psql's wait for it.
    wait_until("the server to drop the query", || {
        w.pg().sql(
            "shop",
            "select count(*) from pg_stat_activity where usename = 'app' and state = 'active'",
        ) == "0"
    });
    // The prompt is back and the same connection goes on.
    p.type_str("select 'after' || ' the cancel';\r");
    p.output.wait_for("after the cancel", T);
    p.type_str("\\q\r");
    assert_eq!(p.wait(T).code(), Some(0), "{}", p.output.text());

    let log = w.statements("last");
    let sleep = statement(&log, "pg_sleep(90)");
    assert_eq!(sleep["status"], "error", "{sleep}");
    assert_eq!(sleep["sqlstate"], "57014", "{sleep}");
    let after = statement(&log, "the cancel");
    assert_eq!(after["status"], "ok", "{after}");
    assert_eq!(after["conn"], sleep["conn"], "the same connection");
    // The CancelRequest came on a channel of its own and opened no connection.
    let connected = w
        .markers("last")
        .iter()
        .filter(|m| m.get("pg_connected").is_some())
        .count();
    assert_eq!(connected, 1);
    w.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------
// Column rules

#[test]
fn covered_columns_are_masked_by_name_alias_and_type_in_text_and_binary_results() {
    let label = "[REDACTED:customer-pii]";
    let w = world(&format!(
        "{DETECTORS}\n[[rules.columns]]\nname = \"customer-pii\"\n\
         columns = [\"customers.email\", \"*.ssn\"]\ntypes = [\"bytea\"]\ntargets = [\"pg\"]\n"
    ));
    let out = w.psql(
        &["-At"],
        "select * from customers order by id;\n\
         select email as e, name as n from customers order by id;\n\
         select id, ssn from employees;\n\
         select email from suppliers;\n",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "1|Ann|{label}|{label}|{label}|vip\n\
             2|Ben|{label}|{label}||new\n\
             {label}|Ann\n{label}|Ben\n\
             7|{label}\n\
             [REDACTED:email]\n"
        ),
        "covered by the rule; NULL stays NULL; suppliers.email only by the detector: {out:?}"
    );

    // A typed client reads a string, in the text and the binary format alike; the other
    // columns keep their types and values.
    let py = r#"
import psycopg
c = psycopg.connect("", autocommit=True)
for binary in (False, True):
    cur = c.cursor(binary=binary)
    cur.execute("select id, name, email, ssn, avatar, note from customers where id = %s", (1,))
    print("binary" if binary else "text", [(type(v).__name__, v) for v in cur.fetchone()])
    cur.execute("select e from (select email as e from customers where id = %s) s", (2,))
    print("sub", binary, cur.fetchone()[0])
"#;
    let out = w.python(py);
    assert_eq!(out.code(), 0, "{out:?}");
    let want = format!(
        "[('int', 1), ('str', 'Ann'), ('str', '{label}'), ('str', '{label}'), ('str', '{label}'), ('str', 'vip')]"
    );
    assert!(out.stdout.contains(&format!("text {want}\n")), "{out:?}");
    assert!(out.stdout.contains(&format!("binary {want}\n")), "{out:?}");
    assert!(
        out.stdout.contains(&format!("sub False {label}\n")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("sub True {label}\n")),
        "{out:?}"
    );
    // The database still holds the real values.
    assert_eq!(
        w.pg()
            .sql("shop", "select email from customers where id = 1"),
        "ann@example.com"
    );
    w.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------
// The target's password and the endpoint

/// Where `needle` occurs among every process's environment and command line and every
/// file under `roots`, as a scanner running as the caller's user would find it.
fn scan(roots: &[&Path], needle: &str) -> Vec<String> {
    fn walk(p: &Path, needle: &[u8], found: &mut Vec<String>) {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), needle, found);
            }
        } else if meta.is_file() {
            if let Ok(bytes) = std::fs::read(p) {
                if contains(&bytes, needle) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    let needle = needle.as_bytes();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        for f in ["environ", "cmdline"] {
            // A process may be gone by now.
            if let Ok(bytes) = std::fs::read(e.path().join(f)) {
                if contains(&bytes, needle) {
                    found.push(e.path().join(f).display().to_string());
                }
            }
        }
    }
    for r in roots {
        walk(r, needle, &mut found);
    }
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The pid of the psql process of the session in `dir`. (Debian's /usr/bin/psql is a
/// wrapper that execs the versioned binary: the name is matched at the end.)
fn psql_in(dir: &Path) -> String {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|pid| {
            environ(pid).get("HOOPX_SESSION_DIR").map(PathBuf::from) == Some(dir.to_path_buf())
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        c.split(|b| *b == 0)
                            .next()
                            .unwrap_or(b"")
                            .ends_with(b"psql")
                    })
                    .unwrap_or(false)
        })
        .expect("psql's process")
}

/// `NAME=value` from a process's environment.
fn environ(pid: &str) -> HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn a_scanner_on_the_callers_machine_finds_no_target_password_while_a_session_runs() {
    let w = world(DETECTORS);
    let (mut child, stdout, stderr) = spawn_piped(w.exec(&["psql", "-X", "-At"]));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"select 'conn' || 'ected';\nselect pg_sleep(600);\nselect 'after' || ' the scan';\n",
        )
        .unwrap();
    drop(stdin);
    stdout.wait_for("connected", T);
    w.wait_active("pg_sleep(600)");

    // The tool: psql, with the session's endpoint and its local password.
    let dir = w.session_dir();
    let tool = psql_in(&dir);
    let env = environ(&tool);
    let local = env["PGPASSWORD"].clone();
    assert_eq!(env["PGHOST"], dir.display().to_string());
    assert!(local.len() >= 16, "a real password: {local:?}");
    assert_ne!(local, w.password);
    // The scanner sees what is there: the local password in psql's environment.
    let seen = scan(&[w.client.path()], &local);
    assert!(
        seen.contains(&format!("/proc/{tool}/environ")),
        "the scanner reads the tool's environment: {seen:?}"
    );
    // And finds no target password, anywhere.
    let found = scan(&[w.client.path(), &dir], &w.password);
    assert!(found.is_empty(), "the target's password is in {found:?}");

    // The session's open answer carries the tunnel, never the password.
    let opened = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sessions", w.gw.url))
        .bearer_auth(crate::util::DEV_TOKEN)
        .header("hoopx-protocol", "1")
        .json(&serde_json::json!({"target": "pg", "argv": ["psql"], "mode": "pipe"}))
        .send()
        .unwrap();
    assert!(opened.status().is_success(), "{opened:?}");
    let answer = opened.text().unwrap();
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["tunnel"]["kind"], "postgres", "{answer}");
    assert!(!answer.contains(&w.password), "{answer}");

    // The query ends (cancelled from the server's side); psql goes on and ends.
    w.pg().sql(
        "shop",
        "select pg_cancel_backend(pid) from pg_stat_activity \
         where usename = 'app' and query like '%pg_sleep(600)%'",
    );
    let status = wait_timeout(&mut child, T).expect("psql ends");
    assert_eq!(status.code(), Some(0), "{}", stderr.text());
    assert!(
        stdout.text().ends_with("after the scan\n"),
        "{}",
        stdout.text()
    );

    // Nor does what the gateway wrote: its log, the recording, its store.
    let rec = run(
        w.hoopx(&["replay", &session_of_psql(&w), "--format", "json"]),
        "",
        T,
    );
    assert_eq!(rec.code(), 0, "{rec:?}");
    assert!(rec.stdout.contains("pg_connected"), "{rec:?}");
    assert!(!rec.stdout.contains(&w.password), "the recording");
    assert!(
        !w.gw.stderr.text().contains(&w.password),
        "the gateway's log"
    );
    let pwfile = w.server.path().join("pg-app-password");
    let stored: Vec<_> = scan(&[w.server.path()], &w.password)
        .into_iter()
        .filter(|f| !f.starts_with("/proc/") && Path::new(f) != pwfile)
        .collect();
    assert!(
        stored.is_empty(),
        "the gateway stored the password in {stored:?}"
    );
    w.assert_nothing_left();
}

/// The id of the psql session (the one that ran, not the API's open one).
fn session_of_psql(w: &World) -> String {
    let out = run(w.hoopx(&["sessions", "list", "--output", "json"]), "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    list.iter()
        .find(|s| s["status"] == "exited")
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("{list:#?}"))
        .to_string()
}

/// A startup message for `user` on `database`.
fn startup(user: &str, database: &str) -> Vec<u8> {
    let mut params = Vec::new();
    for s in ["user", user, "database", database] {
        params.extend_from_slice(s.as_bytes());
        params.push(0);
    }
    params.push(0);
    let mut m = ((8 + params.len()) as i32).to_be_bytes().to_vec();
    m.extend_from_slice(&196608i32.to_be_bytes());
    m.extend(params);
    m
}

/// Reads backend messages until `stop` says so or the connection ends: (tag, body) each.
fn messages(s: &mut impl Read, stop: impl Fn(u8, &[u8]) -> bool) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let mut head = [0u8; 5];
        if s.read_exact(&mut head).is_err() {
            return out;
        }
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        if s.read_exact(&mut body).is_err() {
            return out;
        }
        let done = stop(head[0], &body);
        out.push((head[0], body));
        if done {
            return out;
        }
    }
}

/// An ErrorResponse's fields by code: `C` the SQLSTATE, `M` the message.
fn error_fields(body: &[u8]) -> HashMap<char, String> {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0] as char, String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

#[test]
fn the_endpoint_is_private_and_its_tcp_port_wants_the_sessions_local_password() {
    let w = world(DETECTORS);
    let (mut child, stdout, stderr) = spawn_piped(w.exec(&["psql", "-X", "-At"]));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"select 'conn' || 'ected';\n").unwrap();
    stdout.wait_for("connected", T);

    // The socket is in a directory only the caller's user can enter.
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dir = w.session_dir();
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    let socket = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_socket())
        .expect("the endpoint's socket")
        .path();
    let name = socket.file_name().unwrap().to_string_lossy().into_owned();
    let port: u16 = name
        .strip_prefix(".s.PGSQL.")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name}"));
    if nix::unistd::geteuid().is_root() {
        // Another user's process cannot reach the socket.
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        use std::os::unix::process::CommandExt;
        let mut c = Command::new("/usr/bin/python3");
        c.args([
            "-c",
            "import socket, sys\ns = socket.socket(socket.AF_UNIX)\n\
                       try:\n    s.connect(sys.argv[1]); print('connected')\n\
                       except OSError as e:\n    print(type(e).__name__)",
        ])
        .arg(&socket)
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .current_dir("/");
        let out = run(c, "", T);
        assert_eq!(out.stdout.trim(), "PermissionError", "{out:?}");
    }

    // The loopback port asks any process for a password; a wrong one gets 28P01.
    let tcp = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s
    };
    let password_msg = |pw: &str| {
        let mut m = vec![b'p'];
        m.extend_from_slice(&((4 + pw.len() + 1) as i32).to_be_bytes());
        m.extend_from_slice(pw.as_bytes());
        m.push(0);
        m
    };
    let mut s = tcp();
    s.write_all(&startup("app", "shop")).unwrap();
    let got = messages(&mut s, |tag, _| tag == b'R');
    assert_eq!(
        got.last().map(|(t, b)| (*t, b.clone())),
        Some((b'R', 3i32.to_be_bytes().to_vec())),
        "a cleartext password request"
    );
    s.write_all(&password_msg("guess-0123456789")).unwrap();
    let got = messages(&mut s, |_, _| false);
    let err = got
        .iter()
        .find(|(t, _)| *t == b'E')
        .map(|(_, b)| error_fields(b))
        .unwrap_or_else(|| panic!("an error: {got:?}"));
    assert_eq!(err[&'C'], "28P01", "{err:?}");
    assert_eq!(err[&'S'], "FATAL", "{err:?}");
    assert!(
        !got.iter().any(|(t, _)| *t == b'Z'),
        "never ready for a query"
    );
    // Nor is the target's own password the way in.
    let mut s = tcp();
    s.write_all(&startup("app", "shop")).unwrap();
    messages(&mut s, |tag, _| tag == b'R');
    s.write_all(&password_msg(&w.password)).unwrap();
    let got = messages(&mut s, |_, _| false);
    assert!(
        got.iter()
            .any(|(t, b)| *t == b'E' && error_fields(b)[&'C'] == "28P01"),
        "{got:?}"
    );

    // The session ends: the socket, its directory and the port go with it.
    stdin.write_all(b"select 'bye';\n").unwrap();
    drop(stdin);
    let status = wait_timeout(&mut child, T).expect("psql ends");
    assert_eq!(status.code(), Some(0), "{}", stderr.text());
    assert!(!dir.exists(), "the socket went with the session");
    let connected = w
        .markers("last")
        .iter()
        .filter_map(|m| m.get("pg_connected").cloned())
        .collect::<Vec<_>>();
    assert_eq!(connected.len(), 1, "only psql got in: {connected:?}");
}

// ---------------------------------------------------------------------------------------
// Failing closed

#[test]
fn the_server_lost_mid_query_ends_the_session_with_an_error_and_a_marker() {
    let mut w = world(DETECTORS);
    let (mut child, stdout, stderr) = spawn_piped(w.exec(&["psql", "-X", "-At"]));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"select 'be' || 'fore';\nselect pg_sleep(600);\nselect 'after' || ' the loss';\n",
        )
        .unwrap();
    drop(stdin);
    stdout.wait_for("before", T);
    w.wait_active("pg_sleep(600)");
    // The database server goes away (immediate shutdown).
    drop(w.pg.take());
    let status = wait_timeout(&mut child, T).expect("psql ends");
    let err = stderr.text();
    assert_eq!(status.code(), Some(2), "psql lost its connection: {err}");
    assert!(
        err.contains("the gateway lost the database server"),
        "{err}"
    );
    assert!(
        !stdout.text().contains("after the loss"),
        "{}",
        stdout.text()
    );

    let markers = w.markers("last");
    let lost = markers
        .iter()
        .find_map(|m| m.get("pg_server_lost"))
        .unwrap_or_else(|| panic!("{markers:#?}"));
    assert!(lost["conn"].is_number(), "{lost}");
    let log = w.statements("last");
    assert_eq!(
        statement(&log, "pg_sleep(600)")["status"],
        "lost",
        "{log:#?}"
    );
    let show = run(
        w.hoopx(&["sessions", "show", "last", "--output", "json"]),
        "",
        T,
    );
    let v: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["status"], "exited", "{v}");
    assert_eq!(v["exit_code"], 2, "{v}");
    let out = run(w.hoopx(&["verify", "last"]), "", T);
    assert_eq!(out.code(), 0, "{out:?}");

    // No server: a new connection gets the gateway's error, recorded as a failed connect.
    let out = w.psql(&["-At", "-c", "select 1"], "");
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("could not connect to target"),
        "{out:?}"
    );
    assert!(
        w.markers("last")
            .iter()
            .any(|m| m.get("pg_connect_failed").is_some()),
        "the failed connect is recorded"
    );
    w.assert_nothing_left();
}

#[test]
fn the_gateway_lost_mid_query_stops_the_tool_and_removes_the_endpoint() {
    let mut w = world(DETECTORS);
    let (mut child, stdout, stderr) = spawn_piped(w.exec(&["psql", "-X", "-At"]));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"select 'conn' || 'ected';\nselect pg_sleep(600);\n")
        .unwrap();
    drop(stdin);
    stdout.wait_for("connected", T);
    w.wait_active("pg_sleep(600)");
    let dir = w.session_dir();
    let tool = psql_in(&dir);
    w.gw.kill();
    let status = wait_timeout(&mut child, T).expect("hoopx ends");
    assert_eq!(status.code(), Some(69), "{}", stderr.text());
    wait_until("psql to be stopped", || {
        !Path::new(&format!("/proc/{tool}")).exists()
    });
    assert!(!dir.exists());
    w.assert_nothing_left();
}

#[test]
fn a_malformed_or_oversized_message_ends_that_connection_and_nothing_else() {
    let w = world(DETECTORS);
    // A raw client on the session's socket, then a second psql in the same session.
    let py = r#"
import os, socket, struct, subprocess
path = os.path.join(os.environ["PGHOST"], ".s.PGSQL." + os.environ["PGPORT"])

def connect(login):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    if login:
        p = b"user\0app\0database\0shop\0\0"
        s.sendall(struct.pack("!ii", 8 + len(p), 196608) + p)
        read(s, b"Z")
    return s

def read(s, stop=None):
    got, buf = [], b""
    while True:
        while len(buf) >= 5:
            n = struct.unpack("!i", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            tag, body, buf = buf[:1], buf[5:n + 1], buf[n + 1:]
            if tag == b"E":
                fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
                got.append("E:" + fields.get(b"C", b"").decode())
            else:
                got.append(tag.decode())
            if tag == stop:
                return got
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:
            return got + ["EOF"]
        buf += d

cases = {
    "startup too large": (False, struct.pack("!ii", 1 << 30, 196608)),
    "startup too short": (False, struct.pack("!i", 2)),
    "length too short": (True, b"Q" + struct.pack("!i", 2)),
    "query over 64 MiB": (True, b"Q" + struct.pack("!i", (64 << 20) + 16) + b"select 1"),
    "query of garbage bytes": (True, b"Q" + struct.pack("!i", 4 + 5) + b"\xff\xfe\xfd\xfc\0"),
    "parse cut short": (True, b"P" + struct.pack("!i", 4 + 9) + b"s1\0select"),
    "unknown message type": (True, b"!" + struct.pack("!i", 8) + b"junk"),
}
for name, (login, data) in cases.items():
    s = connect(login)
    s.sendall(data)
    print(name, "->", " ".join(read(s)))
    s.close()

out = subprocess.run(["psql", "-X", "-At", "-c", "select 'second ' || 'psql'"], capture_output=True, text=True)
print("psql", out.returncode, out.stdout.strip(), out.stderr.strip())
"#;
    let out = w.python(py);
    assert_eq!(out.code(), 0, "{out:?}");
    let o = &out.stdout;
    // Each gets PostgreSQL's "protocol violation" from the gateway; the connection ends.
    for case in [
        "startup too large",
        "startup too short",
        "length too short",
        "query over 64 MiB",
        "query of garbage bytes",
        "parse cut short",
        "unknown message type",
    ] {
        assert!(
            o.contains(&format!("{case} -> E:08P01 EOF\n")),
            "{case}: {out:?}"
        );
    }
    assert!(o.contains("psql 0 second psql"), "{out:?}");
    // The gateway goes on: a new session works.
    let out = w.psql(&["-At", "-c", "select 'new ' || 'session'"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "new session\n");
    w.assert_nothing_left();
}

#[test]
fn replication_and_other_users_or_databases_are_refused_before_the_server_is_reached() {
    let w = world(DETECTORS);
    let py = r#"
import psycopg
for conninfo in ("replication=database", "replication=true", "user=postgres", "dbname=postgres"):
    try:
        psycopg.connect(conninfo).close()
        print(conninfo, "connected")
    except psycopg.OperationalError as e:
        print(conninfo, "refused:", str(e).strip().splitlines()[-1])
"#;
    let out = w.python(py);
    assert_eq!(out.code(), 0, "{out:?}");
    let o = &out.stdout;
    assert!(
        o.contains("replication=database refused: connection failed: FATAL:  hoopx: replication connections are refused"),
        "{out:?}"
    );
    assert!(
        o.contains("replication=true refused: connection failed: FATAL:  hoopx: replication connections are refused"),
        "{out:?}"
    );
    assert!(
        o.contains("user=postgres refused: connection failed: FATAL:  hoopx: target \"pg\" connects as \"app\", not \"postgres\""),
        "{out:?}"
    );
    assert!(
        o.contains("dbname=postgres refused: connection failed: FATAL:  hoopx: target \"pg\" connects to database \"shop\" only, not \"postgres\""),
        "{out:?}"
    );
    // None of them reached the server: no connection, nothing streamed.
    let markers = w.markers("last");
    assert!(
        !markers
            .iter()
            .any(|m| m.get("pg_connected").is_some() || m.get("statement").is_some()),
        "{markers:#?}"
    );
    let log = std::fs::read_to_string(w.pg().dir.path().join("server.log")).unwrap();
    assert!(!log.contains("replication connection"), "{log}");
    // psql's way of asking (a connection string) is refused before anything starts.
    let out = w.psql(&["dbname=shop replication=database"], "");
    assert_eq!(out.code(), 77, "{out:?}");
    w.assert_nothing_left();
}
