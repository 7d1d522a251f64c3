//! The statement log of a recording (postgres targets): the `statement` markers the gateway
//! recorded as the server answered each statement on the gateway's own connection, written
//! as SQL with a comment line per statement (`hoopx replay --format sql`).

use std::io::{self, Write};

use super::{EventKind, Recording};

/// The objects of a recording's `{key: {…}}` markers, in order, with their times (µs).
fn markers_of(rec: &Recording, key: &str) -> Vec<(i64, serde_json::Value)> {
    rec.events
        .iter()
        .filter(|e| e.kind == EventKind::Marker)
        .filter_map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.data).ok()?;
            let s = v.get(key)?;
            s.is_object().then(|| (e.t_us, s.clone()))
        })
        .collect()
}

/// The `statement` objects of a recording, in order, with their times (µs).
pub fn statements(rec: &Recording) -> Vec<(i64, serde_json::Value)> {
    markers_of(rec, "statement")
}

/// Writes the statement log: `-- TIME conn N STATUS TAG/SQLSTATE (DURATION)` and the
/// statement, masked as recorded.
pub fn write_sql(w: &mut dyn Write, rec: &Recording) -> io::Result<()> {
    for (t_us, s) in statements(rec) {
        let str_of = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let secs = t_us / 1_000_000;
        let mut head = format!(
            "-- {:02}:{:02}.{:03} conn {} {}",
            secs / 60,
            secs % 60,
            (t_us / 1000) % 1000,
            s.get("conn").and_then(|v| v.as_u64()).unwrap_or(0),
            str_of("status"),
        );
        for k in ["tag", "sqlstate"] {
            if !str_of(k).is_empty() {
                head.push(' ');
                head.push_str(str_of(k));
            }
        }
        if let Some(d) = s.get("duration_ms").and_then(|v| v.as_f64()) {
            head.push_str(&format!(" ({d} ms)"));
        }
        if let Some(id) = s.get("review_id").and_then(|v| v.as_str()) {
            head.push_str(&format!(" review {id}"));
        }
        // One line per comment: a message with line breaks stays a comment.
        writeln!(w, "{}", head.replace('\n', " "))?;
        if !str_of("error").is_empty() {
            writeln!(w, "-- error: {}", str_of("error").replace('\n', " "))?;
        }
        let text = str_of("text").trim_end();
        if text.is_empty() {
            writeln!(w, "-- (no text)")?;
        } else if text.ends_with(';') {
            writeln!(w, "{text}")?;
        } else {
            writeln!(w, "{text};")?;
        }
    }
    Ok(())
}

/// The `request` objects of a recording (kubernetes targets), in order, with their times.
pub fn requests(rec: &Recording) -> Vec<(i64, serde_json::Value)> {
    markers_of(rec, "request")
}

/// Writes the request log of a kubernetes session, one line a request:
/// `TIME conn N STATUS DECISION VERB RESOURCE[/SUB] [NAME] [-n NS] [rule R] [review ID] (DURATION)`.
pub fn write_requests(w: &mut dyn Write, rec: &Recording) -> io::Result<()> {
    for (t_us, r) in requests(rec) {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let secs = t_us / 1_000_000;
        let mut line = format!(
            "{:02}:{:02}.{:03} conn {} {} {} {}",
            secs / 60,
            secs % 60,
            (t_us / 1000) % 1000,
            r.get("conn").and_then(|v| v.as_u64()).unwrap_or(0),
            r.get("status").and_then(|v| v.as_u64()).unwrap_or(0),
            s("decision"),
            s("verb"),
        );
        if r.get("resource").is_some() {
            line.push(' ');
            line.push_str(&s("resource"));
            if !s("group").is_empty() {
                line.push('.');
                line.push_str(&s("group"));
            }
            if !s("subresource").is_empty() {
                line.push('/');
                line.push_str(&s("subresource"));
            }
            let (name, ns) = (s("name"), s("namespace"));
            if !name.is_empty() {
                line.push(' ');
                line.push_str(&name);
            }
            let own_namespace = s("resource") == "namespaces" && ns == name;
            if !ns.is_empty() && !own_namespace {
                line.push_str(" -n ");
                line.push_str(&ns);
            }
        } else {
            line.push(' ');
            line.push_str(&s("path"));
        }
        if let Some(c) = r.get("command").and_then(|c| c.as_array()) {
            let words: Vec<&str> = c.iter().filter_map(|w| w.as_str()).collect();
            line.push_str(&format!(" -- {}", words.join(" ")));
        }
        if !s("rule").is_empty() {
            line.push_str(" rule ");
            line.push_str(&s("rule"));
        }
        if !s("review_id").is_empty() {
            line.push_str(" review ");
            line.push_str(&s("review_id"));
        }
        if let Some(d) = r.get("duration_ms").and_then(|v| v.as_f64()) {
            line.push_str(&format!(" ({d} ms)"));
        }
        // One line per request, whatever a name holds.
        writeln!(w, "{}", line.replace(['\n', '\r'], " "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Event;

    #[test]
    fn statements_are_listed_with_their_outcome() {
        let ev = |seq, t_us, data: &str| Event {
            seq,
            t_us,
            kind: EventKind::Marker,
            data: data.as_bytes().to_vec(),
        };
        let rec = Recording {
            session: Default::default(),
            keys: vec![],
            events: vec![
                ev(
                    0,
                    1_500_000,
                    r#"{"statement":{"conn":1,"status":"ok","tag":"DELETE 2","duration_ms":0.4,"text":"delete from t where id < 3"}}"#,
                ),
                ev(1, 2_000_000, r#"{"masked":{"email":1}}"#),
                ev(
                    2,
                    61_002_000,
                    r#"{"statement":{"conn":2,"status":"denied","sqlstate":"42501","error":"no\ndrops","text":"drop table t;"}}"#,
                ),
                Event {
                    seq: 3,
                    t_us: 0,
                    kind: EventKind::Output,
                    data: b"{\"statement\":1}".to_vec(),
                },
            ],
            checkpoints: vec![],
        };
        assert_eq!(statements(&rec).len(), 2);
        let mut out = Vec::new();
        write_sql(&mut out, &rec).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-- 00:01.500 conn 1 ok DELETE 2 (0.4 ms)\ndelete from t where id < 3;\n\
             -- 01:01.002 conn 2 denied 42501\n-- error: no drops\ndrop table t;\n"
        );
    }

    #[test]
    fn requests_are_listed_one_a_line() {
        let ev = |seq, t_us, data: &str| Event {
            seq,
            t_us,
            kind: EventKind::Marker,
            data: data.as_bytes().to_vec(),
        };
        let rec = Recording {
            session: Default::default(),
            keys: vec![],
            events: vec![
                ev(
                    0,
                    1_500_000,
                    r#"{"request":{"conn":1,"status":403,"decision":"denied","verb":"delete","group":"","resource":"namespaces","namespace":"prod","name":"prod","rule":"keep","duration_ms":0.2}}"#,
                ),
                ev(
                    1,
                    2_000_000,
                    r#"{"request":{"conn":2,"status":200,"decision":"allowed","verb":"get","path":"/version","duration_ms":1.5}}"#,
                ),
                ev(
                    2,
                    3_000_000,
                    r#"{"request":{"conn":2,"status":200,"decision":"approved","verb":"create","group":"apps","resource":"deployments","subresource":"scale","namespace":"shop","name":"web","review_id":"r1","duration_ms":3}}"#,
                ),
                ev(3, 3_000_000, r#"{"statement":{"conn":1}}"#),
            ],
            checkpoints: vec![],
        };
        let mut out = Vec::new();
        write_requests(&mut out, &rec).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "00:01.500 conn 1 403 denied delete namespaces prod rule keep (0.2 ms)\n\
             00:02.000 conn 2 200 allowed get /version (1.5 ms)\n\
             00:03.000 conn 2 200 approved create deployments.apps/scale web -n shop review r1 (3 ms)\n"
        );
    }
}
