//! Request rules in the config: `verbs`, `groups`, `resources`, `namespaces` and `names`
//! on a `[[rules.deny]]` or `[[rules.review]]` table make it a rule on Kubernetes API
//! requests (see [`crate::policy::kube::KubeMatch`]).

use std::ops::Range;

use toml::Spanned;

use super::{ConfigError, SpannedList};
use crate::policy::kube::{KubeMatch, VERBS};
use crate::policy::{Target, TargetKind};

const FIELDS: [&str; 5] = ["verbs", "groups", "resources", "namespaces", "names"];

/// A rule's request conditions; `None` when it gives none. `other`: the spans of a
/// pattern or statements the same rule gives (refused with request conditions).
pub(super) fn request_match(
    name: &Spanned<String>,
    lists: [&Option<SpannedList>; 5],
    other: [&Option<Range<usize>>; 4],
    on: &[Spanned<String>],
    targets: &[Target],
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Option<KubeMatch>, ConfigError> {
    if lists.iter().all(|l| l.is_none()) {
        return Ok(None);
    }
    let rule = name.get_ref();
    if !super::valid_name(rule) {
        return Err(err(
            name.span(),
            format!("rule name {rule:?} must be letters, digits, '-', '_' or '.'"),
        ));
    }
    if let Some(span) = other.iter().find_map(|o| o.as_ref()) {
        return Err(err(
            span.clone(),
            format!(
                "rule {rule:?} has request conditions (verbs, groups, resources, namespaces, names) and a pattern or SQL conditions; give one kind, as two rules if both are meant"
            ),
        ));
    }
    if let Some(t) = on.iter().find(|t| {
        targets
            .iter()
            .any(|k| &k.name == t.get_ref() && k.kind != TargetKind::Kubernetes)
    }) {
        return Err(err(
            t.span(),
            format!(
                "rule {rule:?} judges Kubernetes API requests, which only kubernetes targets relay; {:?} is not one",
                t.get_ref()
            ),
        ));
    }
    let mut out: [Vec<String>; 5] = Default::default();
    for (i, list) in lists.iter().enumerate() {
        let Some(l) = list else { continue };
        if l.get_ref().is_empty() {
            return Err(err(
                l.span(),
                format!(
                    "rule {rule:?}: {} cannot be empty; leave it out to match any",
                    FIELDS[i]
                ),
            ));
        }
        for v in l.get_ref() {
            let s = v.get_ref().trim().to_string();
            if FIELDS[i] == "verbs" && s != "*" && !VERBS.contains(&s.as_str()) {
                return Err(err(
                    v.span(),
                    format!(
                        "rule {rule:?}: unknown verb {s:?}: expected one of {} or *",
                        VERBS.join(", ")
                    ),
                ));
            }
            out[i].push(s);
        }
    }
    let [verbs, groups, resources, namespaces, names] = out;
    Ok(Some(KubeMatch {
        verbs,
        groups,
        resources,
        namespaces,
        names,
    }))
}

#[cfg(test)]
mod tests {
    use crate::policy::kube::classify;
    use crate::policy::{Policy, Verdict};

    const CLUSTER: &str = "[[targets]]\nname = \"cluster\"\nkind = \"kubernetes\"\nserver = \"https://k:6443\"\n\n[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n\n[[dev.identities]]\nname = \"sam\"\ntoken = \"tok-sam-000001\"\ngroups = [\"sre\"]\n";

    #[test]
    fn request_rules_are_parsed_and_decide() {
        let text = format!(
            "{CLUSTER}\n[[rules.deny]]\nname = \"keep-ns\"\nverbs = [\"delete\"]\nresources = [\"namespaces\"]\n\n[[rules.review]]\nname = \"prod\"\nverbs = [\"delete\", \"deletecollection\"]\nnamespaces = [\"prod\"]\nreviewers = [\"sre\"]\n"
        );
        let p = Policy::from_toml(&text, "gw.toml").unwrap();
        let d = |m: &str, path: &str| match p.check_request("cluster", &classify(m, path, "")) {
            Verdict::Allow => "allow".to_string(),
            Verdict::Deny(r) => format!("deny {}", r.name),
            Verdict::Review(r) => format!("review {}", r.name),
        };
        assert_eq!(d("DELETE", "/api/v1/namespaces/prod"), "deny keep-ns");
        assert_eq!(d("DELETE", "/api/v1/namespaces/prod/pods/x"), "review prod");
        assert_eq!(d("DELETE", "/api/v1/namespaces/prod/pods"), "review prod");
        assert_eq!(d("GET", "/api/v1/namespaces/prod/pods/x"), "allow");
        // Request rules are no line rules: a command line never matches them.
        assert!(p
            .denies("cluster", b"kubectl delete namespace prod")
            .is_none());
    }

    #[test]
    fn client_certificates_come_with_their_key() {
        let t = "[[targets]]\nname = \"k\"\nkind = \"kubernetes\"\nserver = \"https://k:6443\"\n";
        let e = Policy::from_toml(
            &format!("{t}client_certificate = \"-----BEGIN CERTIFICATE-----\"\n"),
            "gw.toml",
        )
        .unwrap_err();
        assert!(e.reason.contains("go together"), "{e}");
        let e = Policy::from_toml(
            "[[targets]]\nname = \"k\"\nkind = \"kubernetes\"\nserver = \"http://k:8080\"\nclient_certificate = \"C\"\nclient_key = { env = \"PATH\" }\n",
            "gw.toml",
        )
        .unwrap_err();
        assert!(e.reason.contains("in the clear"), "{e}");
        let p = Policy::from_toml(
            &format!("{t}client_certificate = \"C\"\nclient_key = {{ env = \"PATH\" }}\n"),
            "gw.toml",
        )
        .unwrap();
        let path = std::env::var("PATH").unwrap();
        assert!(!format!("{:?}", p.targets[0]).contains(&path));
        assert!(p.targets[0].access.secret_values().contains(&path.as_str()));
    }

    #[test]
    fn bad_request_rules_are_refused_at_their_line() {
        let bad = |rule: &str| {
            Policy::from_toml(
                &format!("{CLUSTER}\n[[rules.deny]]\nname = \"r\"\n{rule}"),
                "gw.toml",
            )
            .unwrap_err()
        };
        let e = bad("verbs = [\"destroy\"]\n");
        assert!(e.reason.contains("unknown verb \"destroy\""), "{e}");
        assert_eq!((e.line, e.column), (17, 10), "{e}");
        let e = bad("verbs = []\n");
        assert!(e.reason.contains("cannot be empty"), "{e}");
        let e = bad("verbs = [\"get\"]\npattern = 'x'\n");
        assert!(e.reason.contains("give one kind"), "{e}");
        let e = bad("verbs = [\"get\"]\ntargets = [\"pg\"]\n");
        assert!(e.reason.contains("only kubernetes targets"), "{e}");
    }
}
