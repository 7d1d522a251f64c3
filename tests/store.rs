//! One contract, two backends: the same story against SQLite and a real PostgreSQL.

use hoopx::gateway::store::{
    self, Batch, NewSession, SessionEnd, SessionFilter, SessionStats, Store,
};
use hoopx::proto::Mode;
use hoopx::recording::{Checkpoint, Event, EventKind};

fn batch(events: &[Event], checkpoint: Option<Checkpoint>, bytes_out: i64) -> Batch {
    Batch {
        events: events.to_vec(),
        hashes: events.iter().map(|e| [e.seq as u8; 32]).collect(),
        checkpoint,
        stats: SessionStats {
            bytes_out,
            masks: [("email".to_string(), 2u64)].into(),
            ..Default::default()
        },
    }
}

fn filter(limit: i64) -> SessionFilter {
    SessionFilter {
        limit,
        ..Default::default()
    }
}

use crate::util::{Env, Postgres};

async fn story(s: &dyn Store) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let new = |id: &str, at: i64| NewSession {
        id: id.into(),
        identity: "dev".into(),
        target: "pg".into(),
        argv: vec!["psql".into(), "-c".into(), "select 'it''s'".into()],
        mode: Mode::Pipe,
        status: "open".into(),
        started_at: at,
        reason: None,
        replica: None,
    };
    s.create_session(&new("a", 1_000), &key).await.unwrap();
    s.create_session(&new("b", 2_000), &key).await.unwrap();
    s.finish_session(
        "b",
        &SessionEnd {
            status: "aborted".into(),
            ended_at: 2_500,
            exit_code: None,
            reason: Some("client disconnected: it's gone".into()),
        },
        &key,
    )
    .await
    .unwrap();
    let b = s.session("b").await.unwrap().unwrap();
    assert_eq!(b.status, "aborted");
    assert_eq!(b.reason.as_deref(), Some("client disconnected: it's gone"));
    assert_eq!(b.exit_code, None);
    assert!(
        s.create_session(&new("a", 3_000), &key).await.is_err(),
        "ids are unique"
    );
    s.set_status("a", "running").await.unwrap();

    let events: Vec<Event> = (0..1200)
        .map(|i| Event {
            seq: i,
            t_us: i * 10,
            kind: if i % 3 == 0 {
                EventKind::Input
            } else {
                EventKind::Output
            },
            data: vec![(i % 256) as u8; (i % 7) as usize],
        })
        .collect();
    let cp = |count: i64, last: bool| Checkpoint {
        count,
        hash: "ab".repeat(32),
        key_id: "ed25519:0011223344556677".into(),
        signature: "c2ln".into(),
        last,
    };
    s.append("a", &batch(&events[..700], Some(cp(700, false)), 10))
        .await
        .unwrap();
    s.append("a", &batch(&events[700..], None, 20))
        .await
        .unwrap();
    assert!(
        s.append("a", &batch(&events[5..6], None, 30))
            .await
            .is_err(),
        "seq never repeats"
    );
    // A batch with only the closing checkpoint.
    s.append("a", &batch(&[], Some(cp(1200, true)), 40))
        .await
        .unwrap();
    assert_eq!(
        s.checkpoints("a").await.unwrap(),
        [cp(700, false), cp(1200, true)]
    );
    assert!(s.checkpoints("b").await.unwrap().is_empty());
    s.finish_session(
        "a",
        &SessionEnd {
            status: "exited".into(),
            ended_at: 9_000,
            exit_code: Some(3),
            reason: None,
        },
        &key,
    )
    .await
    .unwrap();

    // The ledger: a, b opened, b closed, a closed (the refused duplicate entered nothing),
    // chained and signed, the close naming a's closing checkpoint.
    let ledger = s.ledger(0, 100).await.unwrap();
    let seen: Vec<(String, String)> = ledger
        .iter()
        .map(|e| (e.kind.clone(), e.session_id.clone()))
        .collect();
    let want = [("open", "a"), ("open", "b"), ("close", "b"), ("close", "a")];
    assert_eq!(
        seen,
        want.map(|(k, i)| (k.to_string(), i.to_string())),
        "{ledger:?}"
    );
    let checked = hoopx::recording::ledger::check(
        &ledger,
        0,
        &hoopx::recording::ledger::START,
        &[key.verifying_key()],
    )
    .unwrap();
    assert_eq!(checked.head.unwrap().size, 4);
    let close: hoopx::recording::ledger::CloseBody = serde_json::from_str(&ledger[3].body).unwrap();
    assert_eq!(
        (close.events, close.head),
        (Some(1200), Some("ab".repeat(32)))
    );
    assert_eq!(s.ledger(2, 1).await.unwrap()[0], ledger[2]);
    assert_eq!(
        s.ledger_of("a").await.unwrap(),
        [ledger[0].clone(), ledger[3].clone()]
    );

    let a = s.session("a").await.unwrap().unwrap();
    assert_eq!(a.status, "exited");
    assert_eq!(a.exit_code, Some(3));
    assert_eq!(a.ended_at, Some(9_000));
    assert_eq!(a.event_count, 1200);
    assert_eq!(a.argv[2], "select 'it''s'");
    assert_eq!(a.mode, Mode::Pipe);
    assert_eq!(a.bytes_out, 40, "totals are the last batch's");
    assert_eq!(a.masks.get("email"), Some(&2));
    assert!(s.session("zz").await.unwrap().is_none());

    let list = s.list_sessions(&filter(10)).await.unwrap();
    assert_eq!(
        list.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"],
        "newest first"
    );
    assert_eq!(s.list_sessions(&filter(1)).await.unwrap().len(), 1);
    let only = |f: SessionFilter| async move {
        s.list_sessions(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect::<Vec<_>>()
    };
    let f = |status: Option<&str>, since_ms: Option<i64>, identity: Option<&str>| SessionFilter {
        status: status.map(Into::into),
        since_ms,
        identity: identity.map(Into::into),
        target: Some("pg".into()),
        limit: 10,
        until_ms: None,
    };
    assert_eq!(only(f(Some("aborted"), None, None)).await, ["b"]);
    // Paging back: started at or before.
    let until = SessionFilter {
        until_ms: Some(1_500),
        ..f(None, None, None)
    };
    assert_eq!(only(until).await, ["a"]);
    assert_eq!(only(f(None, Some(1_500), None)).await, ["b"]);
    assert_eq!(only(f(None, None, Some("dev"))).await, ["b", "a"]);
    assert!(only(f(None, None, Some("nobody"))).await.is_empty());

    let back = s.events("a", 0, 10_000).await.unwrap();
    assert_eq!(
        back.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        events
    );
    assert_eq!(back[3].hash, Some([3u8; 32]));
    let page = s.events("a", 1000, 50).await.unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page[0].event.seq, 1000);
    assert!(s.events("b", 0, 10).await.unwrap().is_empty());

    // Leases: a running session whose replica stopped renewing is an orphan; one replica
    // claims it.
    let mut live = new("c", 10_000);
    live.replica = Some("r1".into());
    s.create_session(&live, &key).await.unwrap();
    s.renew_lease("r1", 20_000).await.unwrap();
    assert!(s.orphaned(19_000, 10).await.unwrap().is_empty());
    s.renew_lease("r1", 30_000).await.unwrap();
    assert!(s.orphaned(25_000, 10).await.unwrap().is_empty(), "renewed");
    assert_eq!(
        s.orphaned(31_000, 10).await.unwrap(),
        [("c".to_string(), "r1".to_string())],
        "ended sessions and sessions of no replica are no orphans"
    );
    assert!(s.claim("c", "r1", "r2").await.unwrap());
    assert!(!s.claim("c", "r1", "r3").await.unwrap(), "claimed once");
    assert_eq!(
        s.orphaned(31_000, 10).await.unwrap(),
        [("c".to_string(), "r2".to_string())],
        "r2 has no lease yet"
    );
    s.renew_lease("r2", 40_000).await.unwrap();
    assert!(s.orphaned(31_000, 10).await.unwrap().is_empty());
    // Writes are fenced: fenced to r1, this store may no longer write c (r2 took it over).
    s.fence_to("r1");
    assert!(matches!(
        s.append("c", &batch(&[], None, 0)).await,
        Err(hoopx::gateway::store::StoreError::Fenced(_))
    ));
    s.fence_to("r2");
    s.append("c", &batch(&[], None, 0)).await.unwrap();
    // The store's clock, which leases are compared with, is a real clock.
    let skew = s.now_ms().await.unwrap() - hoopx::gateway::now_ms();
    assert!(skew.abs() < 60_000, "store clock off by {skew} ms");
    s.ping().await.unwrap();
}

#[test]
fn sqlite_and_postgres_tell_the_same_story() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("gw");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let path = env.path().join("nested/dir/store.db");
        let sqlite = store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(sqlite.backend(), "sqlite");
        story(sqlite.as_ref()).await;
        // Reopening runs no migration twice and keeps the data.
        drop(sqlite);
        let again = store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(again.session("a").await.unwrap().unwrap().event_count, 1200);

        let postgres = store::open(&pg.url("gw")).await.unwrap();
        assert_eq!(postgres.backend(), "postgres");
        story(postgres.as_ref()).await;
        drop(postgres);
        let again = store::open(&pg.url("gw")).await.unwrap();
        assert_eq!(again.session("a").await.unwrap().unwrap().event_count, 1200);

        assert!(store::open("mysql://x").await.is_err());
    });
}

#[test]
fn a_gateway_runs_on_postgres_end_to_end() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("gw");
    let gw = crate::util::Gateway::start(&env, Some(crate::SHELL_CONFIG), Some(&pg.url("gw")));
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo on postgres"]);
    let out = crate::util::run(c, "", std::time::Duration::from_secs(30));
    assert_eq!(out.stdout, "on postgres\n", "{out:?}");
    assert_eq!(
        pg.sql("gw", "select status || ' ' || exit_code from sessions"),
        "exited 0"
    );
}
