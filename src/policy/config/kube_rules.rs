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
    other: [&Option<Range<usize>>; 2],
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
                "rule {rule:?} has request conditions (verbs, groups, resources, namespaces, names) and a pattern or statements; give one kind, as two rules if both are meant"
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
