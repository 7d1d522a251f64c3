//! Column masking of PostgreSQL results: which columns of a RowDescription a
//! `[[rules.columns]]` rule covers (by `table.column`, column-name globs, or data type), and
//! how each DataRow is rewritten before it reaches the client. Pure logic, no I/O.
//!
//! A covered column's values are replaced whole by the rule's label, and the column is
//! described to the client as `text`, so typed clients read the label as a string (in the
//! binary format too: binary `text` is the bytes). Every other value goes through the
//! target's masker (built-in detectors, custom rules, the target's own secrets): values in
//! the text format, and binary values of the text-like types and `bytea`. Binary values of
//! other types (integers, timestamps, …) are numbers, not text: a rule that must cover them
//! names their column or type.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::proto::pgwire::{self, Field, Message, WireError};

use super::Masker;

/// `text`, as the type the client is told a masked column has.
pub const TEXT_OID: u32 = 25;

/// One `[[rules.columns]]` rule.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    pub name: String,
    /// `table.column`, `schema.table.column` or `column` globs (`*`, `?`), lower case.
    pub columns: Vec<String>,
    /// Type names (`bytea`, `jsonb`, …).
    pub types: Vec<String>,
    pub targets: Vec<String>,
    pub label: String,
}

/// The built-in names of common type OIDs (pg_type.oid is fixed for built-in types).
pub fn type_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        16 => "bool",
        17 => "bytea",
        18 => "char",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        26 => "oid",
        114 => "json",
        142 => "xml",
        650 => "cidr",
        700 => "float4",
        701 => "float8",
        829 => "macaddr",
        869 => "inet",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ => return None,
    })
}

/// The type names a rule may name (aliases as PostgreSQL spells them in DDL).
pub fn canonical_type(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "integer" | "int" => "int4".into(),
        "bigint" => "int8".into(),
        "smallint" => "int2".into(),
        "boolean" => "bool".into(),
        "character varying" => "varchar".into(),
        "character" => "bpchar".into(),
        "double precision" => "float8".into(),
        "real" => "float4".into(),
        other => other.to_string(),
    }
}

/// Binary values that are numbers, times or flags, never text: they pass as they are.
/// Every other binary value (text, bytea, json, arrays, records, enums, extension types) goes
/// through the masker: a value it changes is no longer valid binary, and a typed client
/// fails on it rather than read a secret.
fn binary_is_not_text(oid: u32) -> bool {
    matches!(
        oid,
        16 | 20 | 21 | 23 | 26 | 700 | 701 | 1082 | 1083 | 1114 | 1184 | 1186 | 1266 | 1700 | 2950
    )
}

/// `*` and `?` globs, case-insensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A column as the catalog names it: schema, table and column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnName {
    pub schema: String,
    pub table: String,
    pub column: String,
}

/// What a column the catalog could not name becomes, on a target with column rules.
pub const UNRESOLVED: &str = "[REDACTED:column-not-in-catalog]";

impl ColumnName {
    /// A column the catalog lookup could not name (it failed, or the table is not
    /// visible to the gateway's second connection yet).
    pub fn unresolved() -> ColumnName {
        ColumnName {
            schema: String::new(),
            table: String::new(),
            column: String::new(),
        }
    }

    pub fn unknown(&self) -> bool {
        self.table.is_empty()
    }
}

impl ColumnRule {
    /// Whether the rule covers a result column: its real name (from the catalog, when it
    /// is a table's column), its name in the result (an alias too), or its type.
    pub fn covers(&self, field: &Field, real: Option<&ColumnName>) -> bool {
        let ty = type_name(field.type_oid);
        if ty.is_some_and(|t| self.types.iter().any(|r| r == t)) {
            return true;
        }
        self.columns.iter().any(|p| {
            let parts = p.split('.').count();
            match (parts, real) {
                (1, _) if glob(p, &field.name) => true,
                (1, Some(r)) => glob(p, &r.column),
                (2, Some(r)) => glob(p, &format!("{}.{}", r.table, r.column)),
                (3, Some(r)) => glob(p, &format!("{}.{}.{}", r.schema, r.table, r.column)),
                _ => false,
            }
        })
    }

    /// Whether the rule needs the catalog's names (it names tables).
    pub fn needs_catalog(&self) -> bool {
        !self.columns.is_empty()
    }
}

/// The column rules of one target.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub rules: Vec<ColumnRule>,
}

impl Columns {
    pub fn for_target(rules: &[ColumnRule], target: &str) -> Columns {
        Columns {
            rules: rules
                .iter()
                .filter(|r| r.targets.is_empty() || r.targets.iter().any(|t| t == target))
                .cloned()
                .collect(),
        }
    }

    /// Whether result columns need the catalog's names to be judged.
    pub fn needs_catalog(&self) -> bool {
        self.rules.iter().any(ColumnRule::needs_catalog)
    }

    /// How rows of a result with these columns are masked; `names` gives a table column's
    /// catalog name by (table OID, column number).
    pub fn plan(&self, fields: &[Field], names: &HashMap<(u32, i16), ColumnName>) -> ColumnPlan {
        let cols = fields
            .iter()
            .map(|f| {
                let real = names.get(&(f.table_oid, f.column));
                if real.is_some_and(ColumnName::unknown) && self.needs_catalog() {
                    // The catalog could not name it: masked whole (fail closed).
                    return Col::Redact(UNRESOLVED.into(), "columns-unresolved".into());
                }
                match self.rules.iter().find(|r| r.covers(f, real)) {
                    Some(r) => Col::Redact(r.label.clone(), r.name.clone()),
                    None if f.format == 0 || !binary_is_not_text(f.type_oid) => Col::Detect,
                    None => Col::Keep,
                }
            })
            .collect();
        ColumnPlan { cols: Some(cols) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Col {
    /// Replaced whole by the label (rule name for counts).
    Redact(String, String),
    /// Through the masker.
    Detect,
    /// Passed as it is (binary numbers and the like).
    Keep,
}

/// How the rows of one result are masked.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// `None`: columns unknown (rows without a description): every value through the
    /// masker.
    cols: Option<Vec<Col>>,
}

impl ColumnPlan {
    pub fn unknown() -> ColumnPlan {
        ColumnPlan { cols: None }
    }

    /// Whether any column is redacted whole.
    pub fn redacts(&self) -> bool {
        self.cols
            .iter()
            .flatten()
            .any(|c| matches!(c, Col::Redact(..)))
    }

    /// The RowDescription the client gets: redacted columns become `text`.
    pub fn describe(&self, fields: &[Field]) -> Vec<Field> {
        let mut out = fields.to_vec();
        if let Some(cols) = &self.cols {
            for (f, c) in out.iter_mut().zip(cols) {
                if matches!(c, Col::Redact(..)) {
                    f.type_oid = TEXT_OID;
                    f.type_len = -1;
                    f.type_mod = -1;
                }
            }
        }
        out
    }

    /// The masked row, or `None` when the row goes as it is; what was masked is added to
    /// `counts` by rule. A row whose column count differs from the description is masked as
    /// if the columns were unknown.
    pub fn row(
        &self,
        body: &[u8],
        masker: &Masker,
        counts: &mut BTreeMap<String, u64>,
    ) -> Result<Option<Message>, WireError> {
        let values = pgwire::data_row(body)?;
        let cols = self.cols.as_ref().filter(|c| c.len() == values.len());
        let mut changed = false;
        let mut out: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let col = cols.map_or(&Col::Detect, |c| &c[i]);
            let new = match (v, col) {
                (None, _) => None,
                (Some(v), Col::Keep) => Some(Cow::Borrowed(*v)),
                (Some(_), Col::Redact(label, rule)) => {
                    changed = true;
                    *counts.entry(rule.clone()).or_default() += 1;
                    Some(Cow::Owned(label.as_bytes().to_vec()))
                }
                (Some(v), Col::Detect) => {
                    let (m, n) = masker.mask_counted(v);
                    if !n.is_empty() {
                        changed = true;
                        for (rule, k) in n {
                            *counts.entry(rule).or_default() += k;
                        }
                    }
                    Some(m)
                }
            };
            out.push(new);
        }
        if !changed {
            return Ok(None);
        }
        Ok(Some(pgwire::encode_data_row(
            out.iter().map(|v| v.as_deref()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn field(name: &str, table: u32, col: i16, ty: u32, format: i16) -> Field {
        Field {
            name: name.into(),
            table_oid: table,
            column: col,
            type_oid: ty,
            type_len: -1,
            type_mod: -1,
            format,
        }
    }

    fn rule(columns: &[&str], types: &[&str]) -> ColumnRule {
        ColumnRule {
            name: "pii".into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            types: types.iter().map(|s| s.to_string()).collect(),
            targets: vec![],
            label: "[REDACTED:pii]".into(),
        }
    }

    fn masker() -> Masker {
        Policy::from_toml(
            "[rules]\nbuiltin_masks = [\"all\"]\n[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n",
            "t.toml",
        )
        .unwrap()
        .masker("pg")
    }

    #[test]
    fn globs() {
        assert!(glob("customers.email", "Customers.EMAIL"));
        assert!(glob("*.ssn", "people.ssn"));
        assert!(glob("card_*", "card_number"));
        assert!(glob("c?rd", "card"));
        assert!(!glob("card", "cards"));
        assert!(!glob("*.ssn", "people.ssn_hash"));
        assert!(glob("*", ""));
    }

    #[test]
    fn rules_cover_by_real_name_alias_and_type() {
        let email = field("e", 16384, 2, 25, 0);
        let real = ColumnName {
            schema: "public".into(),
            table: "customers".into(),
            column: "email".into(),
        };
        // `select email as e from customers`: caught by the catalog name, not the alias.
        assert!(rule(&["customers.email"], &[]).covers(&email, Some(&real)));
        assert!(rule(&["public.customers.email"], &[]).covers(&email, Some(&real)));
        assert!(rule(&["email"], &[]).covers(&email, Some(&real)));
        assert!(!rule(&["orders.email"], &[]).covers(&email, Some(&real)));
        // Without the catalog, a bare name still matches the result's own name.
        assert!(rule(&["e"], &[]).covers(&email, None));
        assert!(!rule(&["customers.email"], &[]).covers(&email, None));
        assert!(rule(&[], &["bytea"]).covers(&field("b", 0, 0, 17, 1), None));
    }

    #[test]
    fn rows_are_rewritten_and_described_as_text() {
        let m = masker();
        let fields = vec![
            field("id", 1, 1, 23, 1),
            field("ssn", 1, 2, 1043, 0),
            field("note", 1, 3, 25, 0),
            field("blob", 1, 4, 17, 1),
        ];
        let cols = Columns {
            rules: vec![rule(&["ssn"], &[])],
        };
        let plan = cols.plan(&fields, &HashMap::new());
        let desc = plan.describe(&fields);
        assert_eq!(desc[1].type_oid, TEXT_OID);
        assert_eq!(desc[0], fields[0]);
        let row = pgwire::encode_data_row(
            [
                Some(&[0u8, 0, 0, 7][..]),
                Some(&b"123-45-6789"[..]),
                Some(&b"mail dave@example.com now"[..]),
                None,
            ]
            .into_iter(),
        );
        let mut counts = BTreeMap::new();
        let out = plan
            .row(&row.body, &m, &mut counts)
            .unwrap()
            .expect("masked");
        assert_eq!(counts.get("pii"), Some(&1));
        assert_eq!(counts.get("email"), Some(&1), "{counts:?}");
        let vals = pgwire::data_row(&out.body).unwrap();
        assert_eq!(vals[0], Some(&[0u8, 0, 0, 7][..]), "binary int kept");
        assert_eq!(vals[1], Some(&b"[REDACTED:pii]"[..]));
        assert!(!String::from_utf8_lossy(vals[2].unwrap()).contains("dave@example.com"));
        assert_eq!(vals[3], None);
        // A clean row goes as it is.
        let clean = pgwire::encode_data_row([Some(&b"1"[..])].into_iter());
        assert!(ColumnPlan::unknown()
            .row(&clean.body, &m, &mut counts)
            .unwrap()
            .is_none());
        // Unknown columns: every value through the masker.
        let leak = pgwire::encode_data_row([Some(&b"AKIAIOSFODNN7EXAMPLE"[..])].into_iter());
        let out = ColumnPlan::unknown()
            .row(&leak.body, &m, &mut counts)
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&out.body).contains("AKIAIOSFODNN7EXAMPLE"));
        // A column the catalog could not name is masked whole on a target with column
        // rules that name tables.
        let named = Columns {
            rules: vec![rule(&["customers.email"], &[])],
        };
        let mut unknown = HashMap::new();
        unknown.insert((1, 3), ColumnName::unresolved());
        let p2 = named.plan(&fields, &unknown);
        assert_eq!(p2.describe(&fields)[2].type_oid, TEXT_OID);
        assert!(p2.redacts());
        // A binary array of text goes through the masker; a binary int does not.
        let arr = vec![field("a", 0, 0, 1009, 1), field("n", 0, 0, 20, 1)];
        let p3 = Columns::default().plan(&arr, &HashMap::new());
        let row = pgwire::encode_data_row(
            [
                Some(&b"\x00AKIAIOSFODNN7EXAMPLE"[..]),
                Some(&b"\x00\x00"[..]),
            ]
            .into_iter(),
        );
        let out = p3.row(&row.body, &m, &mut counts).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&out.body).contains("AKIAIOSFODNN7EXAMPLE"));
        // A broken row is an error, not a panic.
        assert!(plan.row(&row.body[..5], &m, &mut counts).is_err());
    }
}
