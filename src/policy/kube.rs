//! Kubernetes API requests as the API server sees them, and what the gateway does with
//! them: [`classify`] resolves a request to verb, API group, version, resource,
//! subresource, namespace and name as the API server's own `RequestInfoFactory` does
//! (k8s.io/apiserver `pkg/endpoints/request/requestinfo.go`); [`KubeMatch`] is a deny or
//! review rule's conditions on it; [`mask_secrets`] masks Secret values in any JSON shape
//! the API answers with (objects, lists, tables, watch events). Pure logic, no I/O.

use serde_json::Value;

/// One API request, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Under `/api` or `/apis/GROUP` with a resource; discovery and other paths are not.
    pub resource_request: bool,
    /// get, list, watch, create, update, patch, delete, deletecollection; for other
    /// paths the lower-case HTTP method.
    pub verb: String,
    /// `""` is the core group (`/api`).
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// `""`: cluster-scoped (or all namespaces).
    pub namespace: String,
    pub name: String,
    /// The path, for requests that are not resource requests.
    pub path: String,
}

/// Subresources that are verbs in the gateway's rules (`verbs = ["exec"]`): they open a
/// stream into a workload or a tunnel through the API server.
pub const SUBRESOURCE_VERBS: &[&str] = &["exec", "attach", "portforward", "proxy", "log"];

/// The verbs a rule may name.
pub const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "exec",
    "attach",
    "portforward",
    "proxy",
    "log",
];

/// Resolves `method` on `path` (no query) with `query` (the raw query string).
pub fn classify(method: &str, path: &str, query: &str) -> RequestInfo {
    let mut info = RequestInfo {
        verb: method.to_ascii_lowercase(),
        path: path.to_string(),
        ..Default::default()
    };
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = if trimmed.is_empty() {
        vec![]
    } else {
        trimmed.split('/').collect()
    };
    // Not under an API prefix (or too short to name a resource): a non-resource request.
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return info;
    }
    let legacy = parts[0] == "api";
    parts.remove(0);
    if !legacy {
        info.group = parts.remove(0).to_string();
        if parts.len() < 2 {
            // /apis/GROUP/VERSION: discovery.
            return info;
        }
    }
    info.version = parts.remove(0).to_string();
    info.resource_request = true;
    // /api/v1/watch/… (deprecated form): a watch.
    if parts.first() == Some(&"watch") {
        parts.remove(0);
        info.verb = "watch".into();
    } else {
        info.verb = match method.to_ascii_uppercase().as_str() {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            other => {
                return RequestInfo {
                    verb: other.to_ascii_lowercase(),
                    ..info
                }
            }
        }
        .into();
    }
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        // namespaces/NAME/status and /finalize are subresources of the namespace.
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    if let Some(r) = parts.first() {
        info.resource = r.to_string();
    }
    if let Some(n) = parts.get(1) {
        info.name = n.to_string();
    }
    if let Some(s) = parts.get(2) {
        info.subresource = s.to_string();
    }
    if info.name.is_empty() && info.verb == "get" {
        info.verb = if query_flag(query, "watch") {
            "watch"
        } else {
            "list"
        }
        .into();
        // A list or watch of one name by field selector is about that name.
        if let Some(sel) = query_param(query, "fieldSelector") {
            if let Some(n) = exact_name(&sel) {
                info.name = n;
            }
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".into();
    }
    info
}

/// The value of `key` in a query string, percent-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn query_flag(query: &str, key: &str) -> bool {
    query_param(query, key).is_some_and(|v| matches!(v.as_str(), "true" | "1"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `metadata.name=x` (or `==`) in a field selector, alone or among other terms.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        (k.trim() == "metadata.name" && !k.ends_with('!'))
            .then(|| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains('/'))
    })
}

/// A deny or review rule's conditions on a request: each given list must match (any of
/// its entries), and a rule with no list matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeMatch {
    /// Verbs, or subresources that are verbs (`exec`, `attach`, `portforward`, `proxy`,
    /// `log`), or `*`.
    pub verbs: Vec<String>,
    /// API groups: `""` or `core` for the core group; globs.
    pub groups: Vec<String>,
    /// `pods`, `pods/exec`, `pods/*`, `*`: globs over `resource` or
    /// `resource/subresource` (as RBAC: `pods` alone is not `pods/exec`).
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
}

impl KubeMatch {
    pub fn is_empty(&self) -> bool {
        self.verbs.is_empty()
            && self.groups.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.names.is_empty()
    }

    /// Whether `r` is a request this rule is about. A rule with groups, resources,
    /// namespaces or names matches resource requests only.
    pub fn matches(&self, r: &RequestInfo) -> bool {
        if self.is_empty() {
            return false;
        }
        let about_resources = !(self.groups.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.names.is_empty());
        if about_resources && !r.resource_request {
            return false;
        }
        let verb_ok = self.verbs.is_empty()
            || self.verbs.iter().any(|v| {
                v == "*"
                    || *v == r.verb
                    || (SUBRESOURCE_VERBS.contains(&v.as_str())
                        && r.subresource == *v
                        && r.resource_request)
            });
        let group_ok = self.groups.is_empty()
            || self.groups.iter().any(|g| {
                let g = if g == "core" { "" } else { g.as_str() };
                glob(g, &r.group)
            });
        let full = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let resource_ok =
            self.resources.is_empty() || self.resources.iter().any(|p| glob(p, &full));
        let ns_ok =
            self.namespaces.is_empty() || self.namespaces.iter().any(|p| glob(p, &r.namespace));
        let name_ok = self.names.is_empty() || self.names.iter().any(|p| glob(p, &r.name));
        verb_ok && group_ok && resource_ok && ns_ok && name_ok
    }
}

/// `*` matches any run of characters (`/` included), `?` one; otherwise exact.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
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
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What a reviewer sees of a request: `delete pods web-1 -n shop`.
pub fn describe(r: &RequestInfo) -> String {
    if !r.resource_request {
        return format!("{} {}", r.verb, r.path);
    }
    let mut s = r.verb.clone();
    s.push(' ');
    s.push_str(&r.resource);
    if !r.group.is_empty() {
        s.push('.');
        s.push_str(&r.group);
    }
    if !r.subresource.is_empty() {
        s.push('/');
        s.push_str(&r.subresource);
    }
    if !r.name.is_empty() {
        s.push(' ');
        s.push_str(&r.name);
    }
    let own_namespace = r.resource == "namespaces" && r.name == r.namespace;
    if !r.namespace.is_empty() && !own_namespace {
        s.push_str(" -n ");
        s.push_str(&r.namespace);
    }
    s
}

/// A Kubernetes `Status` answer (kubectl prints its message).
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The `Accept` header the gateway sends upstream: the client's without protobuf (the
/// gateway reads and masks JSON only), `application/json` when nothing is left.
pub fn json_accept(accept: &str) -> String {
    let kept: Vec<&str> = accept
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.to_ascii_lowercase().contains("protobuf"))
        .collect();
    if kept.is_empty() {
        "application/json".into()
    } else {
        kept.join(",")
    }
}

/// The replacement of one masked Secret value in `data` (base64, as the API sends
/// values: decoded it reads `[REDACTED:k8s-secret]`).
pub const MASKED_DATA: &str = "W1JFREFDVEVEOms4cy1zZWNyZXRd";
/// The replacement of one masked value in `stringData`.
pub const MASKED_STRING: &str = "[REDACTED:k8s-secret]";

/// Masks Secret values in an API answer: objects of kind Secret, and (when the request
/// was about secrets, `secrets` true) every object of a list, table or watch event,
/// which the API sends without a kind of their own. Returns the number of values masked.
pub fn mask_secrets(v: &mut Value, secrets: bool) -> u64 {
    let mut n = 0;
    walk(v, secrets, &mut n);
    n
}

/// Table columns of a Secret row that never hold a value (the API server's own: name,
/// type, the number of keys, age).
const SAFE_COLUMNS: &[&str] = &["Name", "Namespace", "Type", "Data", "Age"];

/// A Table's cells of Secret rows: strings in other columns, or holding one of the row
/// object's values, are masked.
fn mask_table_cells(o: &mut serde_json::Map<String, Value>, secrets: bool, n: &mut u64) {
    let columns: Vec<String> = o
        .get("columnDefinitions")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|d| d["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Array(rows)) = o.get_mut("rows") else {
        return;
    };
    for row in rows {
        let obj = &row["object"];
        let is_secret = secrets || obj.get("kind").and_then(Value::as_str) == Some("Secret");
        if !is_secret {
            continue;
        }
        let mut values: Vec<String> = Vec::new();
        for field in ["data", "stringData"] {
            if let Some(d) = obj.get(field).and_then(Value::as_object) {
                values.extend(d.values().filter_map(Value::as_str).map(String::from));
            }
        }
        let Some(Value::Array(cells)) = row.get_mut("cells") else {
            continue;
        };
        for (i, cell) in cells.iter_mut().enumerate() {
            let safe = columns
                .get(i)
                .is_some_and(|c| SAFE_COLUMNS.contains(&c.as_str()));
            let holds_value = |t: &str| {
                values
                    .iter()
                    .any(|v| !v.is_empty() && t.contains(v.as_str()))
            };
            let mask = match cell {
                Value::String(t) => !safe || holds_value(t),
                Value::Object(_) | Value::Array(_) => !safe || holds_value(&cell.to_string()),
                _ => false,
            };
            if mask {
                *cell = Value::String(MASKED_STRING.into());
                *n += 1;
            }
        }
    }
}

fn walk(v: &mut Value, secrets: bool, n: &mut u64) {
    match v {
        Value::Object(o) => {
            if o.get("kind").and_then(Value::as_str) == Some("Table") {
                // Before the row objects are masked: their values find the cells.
                mask_table_cells(o, secrets, n);
            }
            let is_secret = o.get("kind").and_then(Value::as_str) == Some("Secret")
                || (secrets
                    && o.contains_key("metadata")
                    && (o.contains_key("data") || o.contains_key("stringData")));
            if is_secret {
                mask_secret(o, n);
            }
            for (_, c) in o.iter_mut() {
                walk(c, secrets, n);
            }
        }
        Value::Array(a) => {
            for c in a {
                walk(c, secrets, n);
            }
        }
        _ => {}
    }
}

fn mask_secret(o: &mut serde_json::Map<String, Value>, n: &mut u64) {
    for (field, with) in [("data", MASKED_DATA), ("stringData", MASKED_STRING)] {
        if let Some(Value::Object(d)) = o.get_mut(field) {
            for (_, val) in d.iter_mut() {
                if !val.is_null() {
                    *val = Value::String(with.into());
                    *n += 1;
                }
            }
        }
    }
    // `kubectl apply` keeps the applied object, values and all, in an annotation.
    if let Some(Value::Object(ann)) = o.get_mut("metadata").and_then(|m| m.get_mut("annotations")) {
        for (_, val) in ann.iter_mut() {
            let Some(text) = val.as_str() else { continue };
            if !(text.contains("\"data\"") || text.contains("\"stringData\"")) {
                continue;
            }
            let masked = match serde_json::from_str::<Value>(text) {
                Ok(mut inner) => {
                    let mut m = 0;
                    if let Value::Object(io) = &mut inner {
                        mask_secret(io, &mut m);
                    }
                    *n += m;
                    inner.to_string()
                }
                // Not JSON but naming data: not shown at all.
                Err(_) => {
                    *n += 1;
                    MASKED_STRING.into()
                }
            };
            *val = Value::String(masked);
        }
    }
}

/// The kubeconfig of a session: its server is the session's local endpoint (TLS with the
/// session's own certificate, `ca_pem`) and its only credential the session's own token.
/// JSON, which kubectl reads as YAML.
pub fn local_kubeconfig(
    context: &str,
    namespace: Option<&str>,
    port: u16,
    token: &str,
    ca_pem: &str,
) -> String {
    use base64::Engine;
    let mut ctx = serde_json::json!({ "cluster": context, "user": context });
    if let Some(ns) = namespace {
        ctx["namespace"] = ns.into();
    }
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": context, "cluster": {
            "server": format!("https://127.0.0.1:{port}"),
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        } }],
        "users": [{ "name": context, "user": { "token": token } }],
        "contexts": [{ "name": context, "context": ctx }],
        "current-context": context,
        "preferences": {},
    });
    format!("{config:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: &str, url: &str) -> RequestInfo {
        let (p, q) = url.split_once('?').unwrap_or((url, ""));
        classify(method, p, q)
    }

    fn short(r: &RequestInfo) -> String {
        format!(
            "{} g={} v={} r={} s={} ns={} n={}",
            r.verb, r.group, r.version, r.resource, r.subresource, r.namespace, r.name
        )
    }

    #[test]
    fn requests_resolve_as_the_api_server_resolves_them() {
        for (m, url, want) in [
            (
                "GET",
                "/api/v1/namespaces/shop/pods",
                "list g= v=v1 r=pods s= ns=shop n=",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/pods/web-1",
                "get g= v=v1 r=pods s= ns=shop n=web-1",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/pods?watch=true",
                "watch g= v=v1 r=pods s= ns=shop n=",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/pods?fieldSelector=metadata.name%3Dweb-1&watch=1",
                "watch g= v=v1 r=pods s= ns=shop n=web-1",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/shop/pods",
                "watch g= v=v1 r=pods s= ns=shop n=",
            ),
            ("GET", "/api/v1/pods", "list g= v=v1 r=pods s= ns= n="),
            (
                "DELETE",
                "/api/v1/namespaces/shop/pods/web-1",
                "delete g= v=v1 r=pods s= ns=shop n=web-1",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/shop/pods",
                "deletecollection g= v=v1 r=pods s= ns=shop n=",
            ),
            (
                "POST",
                "/api/v1/namespaces/shop/pods",
                "create g= v=v1 r=pods s= ns=shop n=",
            ),
            (
                "PUT",
                "/api/v1/namespaces/shop/pods/web-1/status",
                "update g= v=v1 r=pods s=status ns=shop n=web-1",
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/web",
                "patch g=apps v=v1 r=deployments s= ns=shop n=web",
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                "get g=apps v=v1 r=deployments s=scale ns=shop n=web",
            ),
            (
                "POST",
                "/api/v1/namespaces/shop/pods/web-1/exec?command=sh&stdin=true",
                "create g= v=v1 r=pods s=exec ns=shop n=web-1",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/pods/web-1/exec?command=sh",
                "get g= v=v1 r=pods s=exec ns=shop n=web-1",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/pods/web-1/log?follow=true",
                "get g= v=v1 r=pods s=log ns=shop n=web-1",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/services/web/proxy/admin/x",
                "get g= v=v1 r=services s=proxy ns=shop n=web",
            ),
            // Namespaces themselves: cluster-scoped, and their own namespace.
            (
                "DELETE",
                "/api/v1/namespaces/prod",
                "delete g= v=v1 r=namespaces s= ns=prod n=prod",
            ),
            (
                "GET",
                "/api/v1/namespaces",
                "list g= v=v1 r=namespaces s= ns= n=",
            ),
            (
                "PUT",
                "/api/v1/namespaces/prod/finalize",
                "update g= v=v1 r=namespaces s=finalize ns=prod n=prod",
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                "get g=rbac.authorization.k8s.io v=v1 r=clusterroles s= ns= n=admin",
            ),
            (
                "DELETE",
                "/api/v1/nodes/n1",
                "delete g= v=v1 r=nodes s= ns= n=n1",
            ),
        ] {
            let r = c(m, url);
            assert!(r.resource_request, "{url}");
            assert_eq!(short(&r), want, "{m} {url}");
        }
        for (m, url) in [
            ("GET", "/api"),
            ("GET", "/api/v1"),
            ("GET", "/apis"),
            ("GET", "/apis/apps/v1"),
            ("GET", "/version"),
            ("GET", "/openapi/v2"),
            ("GET", "/healthz"),
        ] {
            let r = c(m, url);
            assert!(!r.resource_request, "{url}: {r:?}");
            assert_eq!(r.verb, "get");
        }
    }

    fn rule(verbs: &[&str], resources: &[&str], namespaces: &[&str]) -> KubeMatch {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        KubeMatch {
            verbs: v(verbs),
            resources: v(resources),
            namespaces: v(namespaces),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_resources_namespaces_and_subresource_verbs() {
        let delete_ns = rule(&["delete"], &["namespaces"], &[]);
        assert!(delete_ns.matches(&c("DELETE", "/api/v1/namespaces/prod")));
        assert!(!delete_ns.matches(&c("DELETE", "/api/v1/namespaces/prod/pods/x")));
        assert!(!delete_ns.matches(&c("GET", "/api/v1/namespaces/prod")));
        let prod_deletes = rule(&["delete", "deletecollection"], &[], &["prod"]);
        assert!(prod_deletes.matches(&c("DELETE", "/api/v1/namespaces/prod/pods/x")));
        assert!(prod_deletes.matches(&c("DELETE", "/apis/apps/v1/namespaces/prod/deployments")));
        assert!(!prod_deletes.matches(&c("DELETE", "/api/v1/namespaces/dev/pods/x")));
        let exec = rule(&["exec", "attach"], &[], &[]);
        assert!(exec.matches(&c("POST", "/api/v1/namespaces/a/pods/p/exec")));
        assert!(exec.matches(&c("GET", "/api/v1/namespaces/a/pods/p/attach")));
        assert!(!exec.matches(&c("GET", "/api/v1/namespaces/a/pods/p/log")));
        assert!(!exec.matches(&c("GET", "/api/v1/namespaces/a/pods/p")));
        // RBAC's reading of resources: `pods` is not `pods/exec`; `pods/*` and `*` are.
        let pods = rule(&[], &["pods"], &[]);
        assert!(pods.matches(&c("GET", "/api/v1/namespaces/a/pods/p")));
        assert!(!pods.matches(&c("POST", "/api/v1/namespaces/a/pods/p/exec")));
        assert!(rule(&[], &["pods/*"], &[]).matches(&c("POST", "/api/v1/namespaces/a/pods/p/exec")));
        assert!(rule(&["*"], &[], &[]).matches(&c("GET", "/version")));
        assert!(!rule(&[], &["*"], &[]).matches(&c("GET", "/version")));
        let core = KubeMatch {
            groups: vec!["core".into()],
            ..Default::default()
        };
        assert!(core.matches(&c("GET", "/api/v1/pods")));
        assert!(!core.matches(&c("GET", "/apis/apps/v1/deployments")));
        let names = KubeMatch {
            names: vec!["web-*".into()],
            ..Default::default()
        };
        assert!(names.matches(&c("GET", "/api/v1/namespaces/a/pods/web-1")));
        assert!(!names.matches(&c("GET", "/api/v1/namespaces/a/pods/db-1")));
        assert!(!KubeMatch::default().matches(&c("GET", "/api/v1/pods")));
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("pods/*", "pods/exec"));
        assert!(!glob("pods/*", "pods"));
        assert!(glob("p?ds", "pods"));
        assert!(glob("*-prod", "eu-prod"));
        assert!(!glob("*-prod", "eu-prod-2"));
    }

    #[test]
    fn secret_values_are_masked_in_every_shape() {
        let secret = serde_json::json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "db", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration":
                    "{\"apiVersion\":\"v1\",\"data\":{\"pw\":\"aHVudGVyMg==\"},\"kind\":\"Secret\"}\n",
                "note": "plain"}},
            "data": {"pw": "aHVudGVyMg==", "user": "YWRtaW4="},
            "stringData": {"x": "hunter2"}});
        let mut one = secret.clone();
        assert_eq!(mask_secrets(&mut one, false), 4);
        let text = one.to_string();
        assert!(
            !text.contains("aHVudGVyMg") && !text.contains("YWRtaW4") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(one["data"]["pw"], MASKED_DATA);
        assert_eq!(one["metadata"]["annotations"]["note"], "plain");
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(MASKED_DATA)
            .unwrap();
        assert_eq!(decoded, MASKED_STRING.as_bytes());
        // A list's items carry no kind of their own.
        let mut item = secret.clone();
        item.as_object_mut().unwrap().remove("kind");
        let mut list =
            serde_json::json!({"kind": "SecretList", "items": [item.clone(), item.clone()]});
        assert_eq!(mask_secrets(&mut list, true), 8);
        assert!(!list.to_string().contains("aHVudGVyMg"));
        // A table's rows carry the object.
        let mut table = serde_json::json!({"kind": "Table",
            "columnDefinitions": [{"name": "Name"}, {"name": "Type"}, {"name": "Data"}, {"name": "Password"}, {"name": "Name"}],
            "rows": [{"cells": ["db", "Opaque", 2, "hunter2", "x aHVudGVyMg== y"], "object": secret.clone()}]});
        mask_secrets(&mut table, true);
        let text = table.to_string();
        assert!(
            !text.contains("aHVudGVyMg") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(table["rows"][0]["cells"][0], "db");
        assert_eq!(table["rows"][0]["cells"][2], 2);
        // A watch event.
        let mut ev = serde_json::json!({"type": "ADDED", "object": secret.clone()});
        mask_secrets(&mut ev, false);
        assert!(!ev.to_string().contains("aHVudGVyMg"));
        // Other objects keep their data.
        let mut cm = serde_json::json!({"kind": "ConfigMap", "metadata": {}, "data": {"a": "b"}});
        assert_eq!(mask_secrets(&mut cm, false), 0);
        assert_eq!(cm["data"]["a"], "b");
    }

    #[test]
    fn accept_headers_lose_protobuf() {
        assert_eq!(
            json_accept("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        );
        assert_eq!(
            json_accept("application/vnd.kubernetes.protobuf"),
            "application/json"
        );
        assert_eq!(json_accept(""), "application/json");
    }

    #[test]
    fn descriptions_and_kubeconfigs() {
        assert_eq!(
            describe(&c("DELETE", "/api/v1/namespaces/shop/pods/web-1")),
            "delete pods web-1 -n shop"
        );
        assert_eq!(
            describe(&c("DELETE", "/api/v1/namespaces/prod")),
            "delete namespaces prod"
        );
        assert_eq!(
            describe(&c("POST", "/api/v1/namespaces/a/pods/p/exec")),
            "create pods/exec p -n a"
        );
        assert_eq!(describe(&c("GET", "/version")), "get /version");
        let k: Value =
            serde_json::from_str(&local_kubeconfig("c", Some("shop"), 4321, "tok", "PEM")).unwrap();
        assert_eq!(
            k["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:4321"
        );
        assert_eq!(k["users"][0]["user"]["token"], "tok");
        assert_eq!(k["contexts"][0]["context"]["namespace"], "shop");
    }

    #[test]
    fn query_parameters_decode() {
        assert_eq!(
            query_param("a=1&fieldSelector=metadata.name%3Dx", "fieldSelector").as_deref(),
            Some("metadata.name=x")
        );
        assert_eq!(query_param("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(query_param("a", "a").as_deref(), Some(""));
    }
}
