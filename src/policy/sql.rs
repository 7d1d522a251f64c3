//! SQL as PostgreSQL parses it: what each statement does (its kinds), what it names
//! (relations, functions), the rules that match it, and the text a reviewer sees with its
//! literals masked. Pure: no I/O. The parser is PostgreSQL's own (`pg_query`), so
//! comments, case, quoting and line breaks change nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Mutex, PoisonError};

use pg_query::protobuf::{CmdType, ObjectType, Token, VariableSetKind};
use serde_json::Value;

/// Longest SQL text [`analyze`] takes, in bytes.
pub const MAX_SQL_LEN: usize = 1 << 20;

/// Longest SQL text whose syntax error [`analyze`] locates (it reparses prefixes).
const MAX_POSITION_SEARCH: usize = 64 << 10;

/// What a statement does, or one of the things it does: a statement has several kinds when
/// it nests others (`WITH d AS (DELETE …) SELECT …` is a select and a delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Select,
    Insert,
    Update,
    /// An UPDATE without a WHERE clause (any WHERE counts, `WHERE true` included).
    UpdateNoWhere,
    Delete,
    /// A DELETE without a WHERE clause (any WHERE counts, `WHERE true` included).
    DeleteNoWhere,
    Merge,
    Truncate,
    Drop,
    Alter,
    Create,
    /// CREATE FUNCTION or PROCEDURE; also a `create`.
    CreateFunction,
    Grant,
    Revoke,
    Copy,
    /// COPY … TO PROGRAM: runs a program on the database server.
    CopyToProgram,
    /// COPY … FROM PROGRAM: runs a program on the database server.
    CopyFromProgram,
    /// COPY to or from a file on the database server.
    CopyFile,
    Do,
    Prepare,
    Execute,
    Deallocate,
    Call,
    Set,
    Reset,
    Show,
    Transaction,
    Explain,
    Vacuum,
    Lock,
    Listen,
    Notify,
    Comment,
    /// SQL whose effect cannot be checked before it runs: see [`analyze`].
    Dynamic,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 35] = [
        Kind::Select,
        Kind::Insert,
        Kind::Update,
        Kind::UpdateNoWhere,
        Kind::Delete,
        Kind::DeleteNoWhere,
        Kind::Merge,
        Kind::Truncate,
        Kind::Drop,
        Kind::Alter,
        Kind::Create,
        Kind::CreateFunction,
        Kind::Grant,
        Kind::Revoke,
        Kind::Copy,
        Kind::CopyToProgram,
        Kind::CopyFromProgram,
        Kind::CopyFile,
        Kind::Do,
        Kind::Prepare,
        Kind::Execute,
        Kind::Deallocate,
        Kind::Call,
        Kind::Set,
        Kind::Reset,
        Kind::Show,
        Kind::Transaction,
        Kind::Explain,
        Kind::Vacuum,
        Kind::Lock,
        Kind::Listen,
        Kind::Notify,
        Kind::Comment,
        Kind::Dynamic,
        Kind::Other,
    ];

    /// The name rules use: `delete_no_where`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::UpdateNoWhere => "update_no_where",
            Kind::Delete => "delete",
            Kind::DeleteNoWhere => "delete_no_where",
            Kind::Merge => "merge",
            Kind::Truncate => "truncate",
            Kind::Drop => "drop",
            Kind::Alter => "alter",
            Kind::Create => "create",
            Kind::CreateFunction => "create_function",
            Kind::Grant => "grant",
            Kind::Revoke => "revoke",
            Kind::Copy => "copy",
            Kind::CopyToProgram => "copy_to_program",
            Kind::CopyFromProgram => "copy_from_program",
            Kind::CopyFile => "copy_file",
            Kind::Do => "do",
            Kind::Prepare => "prepare",
            Kind::Execute => "execute",
            Kind::Deallocate => "deallocate",
            Kind::Call => "call",
            Kind::Set => "set",
            Kind::Reset => "reset",
            Kind::Show => "show",
            Kind::Transaction => "transaction",
            Kind::Explain => "explain",
            Kind::Vacuum => "vacuum",
            Kind::Lock => "lock",
            Kind::Listen => "listen",
            Kind::Notify => "notify",
            Kind::Comment => "comment",
            Kind::Dynamic => "dynamic",
            Kind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A relation or function name as PostgreSQL resolved it: unquoted parts folded to lower
/// case, quoted parts kept, unicode escapes decoded. `schema` is `None` when the SQL did not
/// qualify the name (the server's search_path decides, which the gateway does not know).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub schema: Option<String>,
    pub name: String,
}

impl Name {
    /// A name from its parts, the last being the object's own (`db.schema.name` keeps
    /// schema and name).
    fn from_parts(parts: &[String]) -> Option<Name> {
        let (name, rest) = parts.split_last()?;
        Some(Name {
            schema: rest.last().filter(|s| !s.is_empty()).cloned(),
            name: name.clone(),
        })
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One statement of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// What the statement does: its own kind first, then those of everything nested in it.
    pub kinds: Vec<Kind>,
    /// Every relation named anywhere in the statement, CTE names included.
    pub relations: Vec<Name>,
    /// Every function called anywhere in the statement.
    pub functions: Vec<Name>,
    /// The statement's own source text.
    pub text: String,
    /// `PREPARE name AS …`: the name (its query's kinds are in `kinds`).
    pub prepares: Option<String>,
    /// `EXECUTE name(…)`: the name, whose query this analysis cannot see (`dynamic`),
    /// unless the caller knows what was prepared under it.
    pub executes: Option<String>,
    /// Run-time settings it changes, lower case (`SET x`, `RESET x`, `SET NAMES` as
    /// `client_encoding`, `set_config('x', …)`); `*` for RESET ALL or a name not known
    /// before it runs.
    pub settings: Vec<String>,
    /// A COPY that sends rows to the client (`COPY … TO STDOUT`).
    pub copy_out: bool,
}

impl Statement {
    /// The statement's own kind (`explain` for EXPLAIN ANALYZE DELETE), for logs.
    pub fn primary_kind(&self) -> Kind {
        self.kinds.first().copied().unwrap_or(Kind::Other)
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// The statements of one protocol message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub statements: Vec<Statement>,
}

/// SQL the gateway does not pass on: PostgreSQL's own parse error, or input too large or
/// too deeply nested to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub message: String,
    /// Where the error is, in characters from 1, as in PostgreSQL's error position.
    pub position: Option<usize>,
    /// The SQLSTATE to answer with: 42601 syntax error, 54000 too long, 54001 too
    /// deeply nested, XX000 the parser could not run.
    pub sqlstate: &'static str,
}

impl SqlError {
    fn new(message: impl Into<String>, sqlstate: &'static str) -> SqlError {
        SqlError {
            message: message.into(),
            position: None,
            sqlstate,
        }
    }
}

/// Parses the SQL text of one protocol message (a simple query may hold several
/// statements; text with none, only blanks or comments, gives none) and says what each
/// statement does, walking the whole tree: CTEs, subqueries, EXPLAIN's query, PREPARE's
/// query, rule actions, SQL-standard function bodies.
///
/// `dynamic` marks what cannot be checked before it runs: DO blocks; EXECUTE of a
/// prepared statement (its text was checked at PREPARE, but which one runs is not
/// tracked); CREATE FUNCTION/PROCEDURE with a body given as a string, in any language
/// (`LANGUAGE sql AS '…'` too; a `BEGIN ATOMIC … END` or `RETURN …` body is parsed and
/// walked instead); and calls of functions that run SQL or read relations named in text:
/// `dblink*`, `query_to_xml*`, `table_to_xml*`, `schema_to_xml*`, `database_to_xml*`,
/// `ts_stat`, `crosstab*`, `connectby`.
pub fn analyze(sql: &str) -> Result<Analysis, SqlError> {
    if sql.len() > MAX_SQL_LEN {
        return Err(SqlError::new(
            format!(
                "the statement is {} bytes; the gateway checks at most {MAX_SQL_LEN}",
                sql.len()
            ),
            "54000",
        ));
    }
    if sql.contains('\0') {
        return Err(SqlError::new("the statement holds a NUL byte", "42601"));
    }
    let owned = sql.to_string();
    on_parser_thread(move || analyze_here(&owned)).unwrap_or_else(|| {
        Err(SqlError::new(
            "the gateway's SQL parser could not run",
            "XX000",
        ))
    })
}

fn analyze_here(sql: &str) -> Result<Analysis, SqlError> {
    let parsed = pg_query::parse(sql, 0).map_err(|e| parse_error(sql, e))?;
    let mut statements = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(stmt) = &raw.stmt else { continue };
        let tree = serde_json::to_value(stmt).map_err(|e| {
            SqlError::new(format!("the parse tree could not be read: {e}"), "XX000")
        })?;
        let mut found = Found::default();
        let primary = match tree.get("node").and_then(Value::as_object) {
            Some(node) => node
                .iter()
                .next()
                .map(|(tag, fields)| {
                    kinds_of(tag, fields)
                        .first()
                        .copied()
                        .unwrap_or(if tag == "SelectStmt" {
                            Kind::Select
                        } else {
                            Kind::Other
                        })
                })
                .unwrap_or(Kind::Other),
            None => Kind::Other,
        };
        walk(&tree, &mut found);
        found.kinds.remove(&primary);
        let mut kinds = vec![primary];
        kinds.extend(std::mem::take(&mut found.kinds));
        let sorted = |names: BTreeSet<Name>| {
            let mut names: Vec<Name> = names.into_iter().collect();
            names.sort_by_cached_key(Name::to_string);
            names
        };
        let node_name = |tag: &str| {
            tree.get("node")
                .and_then(|n| n.get(tag))
                .and_then(|n| n.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        statements.push(Statement {
            kinds,
            relations: sorted(std::mem::take(&mut found.relations)),
            functions: sorted(std::mem::take(&mut found.functions)),
            text: statement_text(sql, raw.stmt_location, raw.stmt_len),
            prepares: node_name("PrepareStmt"),
            executes: node_name("ExecuteStmt"),
            settings: found.settings.into_iter().collect(),
            copy_out: found.copy_out,
        });
    }
    Ok(Analysis { statements })
}

fn parse_error(sql: &str, e: pg_query::Error) -> SqlError {
    match e {
        pg_query::Error::Parse(message) if message.contains("nested too deeply") => SqlError::new(
            "the statement is nested too deeply for the gateway to check",
            "54001",
        ),
        pg_query::Error::Parse(message) => SqlError {
            position: error_position(sql),
            message,
            sqlstate: "42601",
        },
        // The tree decoder stops at 100 levels: a chain of about 50 operators (a || b || …).
        pg_query::Error::Decode(_) => SqlError::new(
            "the statement is nested too deeply for the gateway to check (a chain of 50 or more operators such as + or || nests that deep)",
            "54001",
        ),
        other => SqlError::new(other.to_string(), "42601"),
    }
}

/// Where PostgreSQL's parser stops, in characters from 1: the token at which a prefix of
/// the text first fails other than "at end of input" (a parser that fails at a token fails
/// there for every longer prefix, so the prefixes are bisected).
fn error_position(sql: &str) -> Option<usize> {
    let chars = |bytes: usize| sql.get(..bytes).map(|s| s.chars().count() + 1);
    if sql.len() > MAX_POSITION_SEARCH {
        return None;
    }
    let tokens = scan(sql)?;
    let fails_at_token = |k: usize| {
        let end = tokens.get(k).and_then(|t| usize::try_from(t.end).ok());
        match end
            .and_then(|end| sql.get(..end))
            .map(|p| pg_query::parse(p, 0))
        {
            Some(Err(pg_query::Error::Parse(m))) => !m.contains("at end of input"),
            _ => false,
        }
    };
    let (mut lo, mut hi) = (0, tokens.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails_at_token(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    match tokens.get(lo) {
        Some(t) => chars(usize::try_from(t.start).ok()?),
        None => chars(sql.len()),
    }
}

/// A statement's own text: PostgreSQL's location and length (0: to the end), trimmed.
fn statement_text(sql: &str, location: i32, len: i32) -> String {
    let start = usize::try_from(location).unwrap_or(0);
    let end = match usize::try_from(len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(n) => start.saturating_add(n),
    };
    sql.get(start..end).unwrap_or(sql).trim().to_string()
}

/// Stack of the parser thread. The parse tree is decoded recursively, up to 100 levels,
/// which in a debug build needs more than the 2 MiB of a tokio worker thread.
const PARSER_STACK: usize = 16 << 20;

type Job = Box<dyn FnOnce() + Send>;

/// The parser thread, started on first use and again should it ever be gone.
static PARSER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);

/// Runs `f` on the parser thread and waits for its result; `None` if it could not run.
fn on_parser_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    {
        let mut parser = PARSER.lock().unwrap_or_else(PoisonError::into_inner);
        let job = match parser.as_ref() {
            Some(p) => match p.send(job) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            let (jobs, queue) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("hoopx-sql".into())
                .stack_size(PARSER_STACK)
                .spawn(move || {
                    for job in queue {
                        // A panicking job drops its reply sender: its caller gets `None`.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .ok()?;
            jobs.send(job).ok()?;
            *parser = Some(jobs);
        }
    }
    rx.recv().ok()
}

/// What a walk over a statement's tree found.
#[derive(Default)]
struct Found {
    kinds: BTreeSet<Kind>,
    relations: BTreeSet<Name>,
    functions: BTreeSet<Name>,
    settings: BTreeSet<String>,
    copy_out: bool,
}

/// Visits every node of a parse tree (as JSON: tagged nodes `{"DeleteStmt": {…}}`, and
/// untagged typed fields such as a DeleteStmt's `relation`, recognised by their fields).
fn walk(v: &Value, found: &mut Found) {
    match v {
        Value::Object(map) => {
            if let Some(name) = range_var(map) {
                found.relations.insert(name);
            }
            if let Some(name) = func_call(map) {
                if let Some(kind) = function_kind(&name) {
                    found.kinds.insert(kind);
                }
                if name.name.eq_ignore_ascii_case("set_config") {
                    // Its first argument names the setting: known only when a constant.
                    let setting = map
                        .get("args")
                        .and_then(|a| a.get(0))
                        .and_then(|a| a.pointer("/node/AConst/val/Sval/sval"))
                        .and_then(Value::as_str);
                    found
                        .settings
                        .insert(setting.map_or_else(|| "*".to_string(), str::to_lowercase));
                }
                found.functions.insert(name);
            }
            for (key, child) in map {
                if key.starts_with(|c: char| c.is_ascii_uppercase()) {
                    found.kinds.extend(kinds_of(key, child));
                    if key == "VariableSetStmt" {
                        let name = child
                            .get("name")
                            .and_then(Value::as_str)
                            .filter(|n| !n.is_empty());
                        found
                            .settings
                            .insert(name.map_or_else(|| "*".to_string(), str::to_lowercase));
                    }
                    if key == "CopyStmt"
                        && !child
                            .get("is_from")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    {
                        found.copy_out = true;
                    }
                    if key == "DropStmt" {
                        found.relations.extend(dropped_relations(child));
                    }
                }
                walk(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
        _ => {}
    }
}

/// The kinds a node adds, its own kind first; none for nodes that are not statements.
fn kinds_of(tag: &str, node: &Value) -> Vec<Kind> {
    let flag = |field: &str| node.get(field).and_then(Value::as_bool).unwrap_or(false);
    let int = |field: &str| node.get(field).and_then(Value::as_i64).unwrap_or(0);
    let present = |field: &str| match node.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    let grant = |is_grant: bool| if is_grant { Kind::Grant } else { Kind::Revoke };
    match tag {
        // A VALUES list is a select only on its own, not as the rows of an INSERT.
        "SelectStmt" if present("values_lists") => vec![],
        "SelectStmt" if present("into_clause") => vec![Kind::Select, Kind::Create],
        "SelectStmt" => vec![Kind::Select],
        "InsertStmt" => vec![Kind::Insert],
        "UpdateStmt" if present("where_clause") => vec![Kind::Update],
        "UpdateStmt" => vec![Kind::Update, Kind::UpdateNoWhere],
        "DeleteStmt" if present("where_clause") => vec![Kind::Delete],
        "DeleteStmt" => vec![Kind::Delete, Kind::DeleteNoWhere],
        "MergeStmt" => vec![Kind::Merge],
        "MergeWhenClause" => match CmdType::try_from(int("command_type") as i32) {
            Ok(CmdType::CmdUpdate) => vec![Kind::Update],
            Ok(CmdType::CmdDelete) => vec![Kind::Delete],
            Ok(CmdType::CmdInsert) => vec![Kind::Insert],
            _ => vec![],
        },
        "TruncateStmt" => vec![Kind::Truncate],
        "CopyStmt" => match (flag("is_program"), flag("is_from")) {
            (true, true) => vec![Kind::Copy, Kind::CopyFromProgram],
            (true, false) => vec![Kind::Copy, Kind::CopyToProgram],
            _ if present("filename") => vec![Kind::Copy, Kind::CopyFile],
            _ => vec![Kind::Copy],
        },
        "CreateFunctionStmt" if present("sql_body") => vec![Kind::CreateFunction, Kind::Create],
        "CreateFunctionStmt" => vec![Kind::CreateFunction, Kind::Create, Kind::Dynamic],
        "GrantStmt" | "GrantRoleStmt" => vec![grant(flag("is_grant"))],
        "AlterDefaultPrivilegesStmt" => {
            let is_grant = node
                .get("action")
                .and_then(|a| a.get("is_grant"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            vec![Kind::Alter, grant(is_grant)]
        }
        "DoStmt" => vec![Kind::Do, Kind::Dynamic],
        "PrepareStmt" => vec![Kind::Prepare],
        "ExecuteStmt" => vec![Kind::Execute, Kind::Dynamic],
        "DeallocateStmt" => vec![Kind::Deallocate],
        "CallStmt" => vec![Kind::Call],
        "VariableSetStmt" => match VariableSetKind::try_from(int("kind") as i32) {
            Ok(VariableSetKind::VarReset | VariableSetKind::VarResetAll) => vec![Kind::Reset],
            _ => vec![Kind::Set],
        },
        "ConstraintsSetStmt" => vec![Kind::Set],
        "DiscardStmt" => vec![Kind::Reset],
        "VariableShowStmt" => vec![Kind::Show],
        "TransactionStmt" => vec![Kind::Transaction],
        "ExplainStmt" => vec![Kind::Explain],
        "VacuumStmt" => vec![Kind::Vacuum],
        "LockStmt" => vec![Kind::Lock],
        "ListenStmt" | "UnlistenStmt" => vec![Kind::Listen],
        "NotifyStmt" => vec![Kind::Notify],
        "CommentStmt" => vec![Kind::Comment],
        "RenameStmt" | "ReassignOwnedStmt" => vec![Kind::Alter],
        "IndexStmt"
        | "ViewStmt"
        | "RuleStmt"
        | "DefineStmt"
        | "CompositeTypeStmt"
        | "ImportForeignSchemaStmt" => vec![Kind::Create],
        t if t.ends_with("Stmt") && t.starts_with("Create") => vec![Kind::Create],
        t if t.ends_with("Stmt") && t.starts_with("Alter") => vec![Kind::Alter],
        t if t.ends_with("Stmt") && t.starts_with("Drop") => vec![Kind::Drop],
        _ => vec![],
    }
}

/// Functions that run SQL given as text, or read relations named in text: what they do
/// cannot be checked before they run.
const DYNAMIC_FUNCTIONS: &[&str] = &[
    "dblink*",
    "query_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "ts_stat",
    "crosstab*",
    "connectby",
];

/// The kind a function call adds: `dynamic` for [`DYNAMIC_FUNCTIONS`], `set` for
/// `set_config` (it sets a parameter, as SET does, the role and search_path included).
/// Whether a function runs SQL given as text (its calls are `dynamic`).
pub fn is_dynamic_function(f: &Name) -> bool {
    function_kind(f) == Some(Kind::Dynamic)
}

fn function_kind(f: &Name) -> Option<Kind> {
    let name = f.name.to_lowercase();
    if DYNAMIC_FUNCTIONS.iter().any(|p| glob(p, &name)) {
        Some(Kind::Dynamic)
    } else if name == "set_config" {
        Some(Kind::Set)
    } else {
        None
    }
}

/// The `String` parts of a name list: `[{"node": {"String": {"sval": "public"}}}, …]`.
fn name_parts(list: Option<&Value>) -> Option<Vec<String>> {
    list?
        .as_array()?
        .iter()
        .map(|part| {
            part.get("node")?
                .get("String")?
                .get("sval")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// A RangeVar, tagged or in a typed field: a relation named in the statement.
fn range_var(map: &serde_json::Map<String, Value>) -> Option<Name> {
    if !map.contains_key("relpersistence") {
        return None;
    }
    let relname = map.get("relname")?.as_str()?;
    let schema = map.get("schemaname")?.as_str()?;
    Some(Name {
        schema: (!schema.is_empty()).then(|| schema.to_string()),
        name: relname.to_string(),
    })
}

/// A FuncCall, tagged or in a typed field (CALL's): a function called by the statement.
fn func_call(map: &serde_json::Map<String, Value>) -> Option<Name> {
    if !map.contains_key("func_variadic") {
        return None;
    }
    Name::from_parts(&name_parts(map.get("funcname"))?)
}

/// The relations a DROP TABLE, VIEW, INDEX, SEQUENCE or FOREIGN TABLE names (as name
/// lists, not RangeVars).
fn dropped_relations(node: &Value) -> Vec<Name> {
    let relation_types = [
        ObjectType::ObjectTable,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
        ObjectType::ObjectIndex,
        ObjectType::ObjectSequence,
        ObjectType::ObjectForeignTable,
    ];
    let remove_type = node.get("remove_type").and_then(Value::as_i64);
    if !relation_types
        .iter()
        .any(|t| Some(*t as i64) == remove_type)
    {
        return vec![];
    }
    node.get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let parts = name_parts(o.get("node")?.get("List")?.get("items"))?;
            Name::from_parts(&parts)
        })
        .collect()
}

/// `*` any run of characters, `?` one; the rest literal, compared without case.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A rule's relation or function pattern: `name`, `schema.name`, with `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameGlob {
    schema: Option<String>,
    name: String,
}

impl NameGlob {
    /// `carts`, `public.carts`, `billing.*`, `*.secrets`, `pg_read_*`.
    pub fn parse(s: &str) -> Result<NameGlob, String> {
        let parts: Vec<&str> = s.split('.').collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(format!(
                "{s:?} is not a name: write name or schema.name, with * and ? as wildcards"
            ));
        }
        match parts.as_slice() {
            [name] => Ok(NameGlob {
                schema: None,
                name: name.to_string(),
            }),
            [schema, name] => Ok(NameGlob {
                schema: Some(schema.to_string()),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "{s:?} has more than one '.': write name or schema.name"
            )),
        }
    }

    /// Whether `n` may be what this pattern names. Without case. A pattern without schema
    /// matches the name in any schema; a name the SQL did not qualify matches any schema
    /// pattern, as the search_path that resolves it is not known.
    pub fn matches(&self, n: &Name) -> bool {
        let schema_ok = match (&self.schema, &n.schema) {
            (Some(p), Some(s)) => glob(p, s),
            _ => true,
        };
        schema_ok && glob(&self.name, &n.name)
    }
}

impl fmt::Display for NameGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The statement conditions of a rule: each given list must match (AND), by any of its
/// elements (OR). An empty list is no condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlMatch {
    pub kinds: Vec<Kind>,
    pub relations: Vec<NameGlob>,
    pub functions: Vec<NameGlob>,
}

impl SqlMatch {
    /// Whether the statement meets every condition. Conditions hold for the statement as a
    /// whole: a delete from one table in a CTE and a select from another meet
    /// `kinds = [delete]` with `relations = [the other]`.
    pub fn matches(&self, s: &Statement) -> bool {
        let any = |globs: &[NameGlob], names: &[Name]| {
            globs.is_empty() || globs.iter().any(|g| names.iter().any(|n| g.matches(n)))
        };
        (self.kinds.is_empty() || self.kinds.iter().any(|k| s.has(*k)))
            && any(&self.relations, &s.relations)
            && any(&self.functions, &s.functions)
    }
}

/// The scanner's tokens. Text of PostgreSQL's blanks alone has none (and `scan_tokens`
/// must not be called with it: it would build a slice from a null pointer).
fn scan(sql: &str) -> Option<Vec<pg_query::protobuf::ScanToken>> {
    if sql
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    {
        return Some(vec![]);
    }
    pg_query::scan_tokens(sql).ok()
}

fn is_literal_or_comment(token: i32) -> bool {
    [
        Token::Sconst,
        Token::Usconst,
        Token::Bconst,
        Token::Xconst,
        Token::Iconst,
        Token::Fconst,
        Token::SqlComment,
        Token::CComment,
    ]
    .iter()
    .any(|t| *t as i32 == token)
}

/// The text a reviewer and the recording see: each literal (string, dollar-quoted, bit,
/// number) and each comment passed through `mask` on its own, keywords, operators and
/// identifiers kept as written, so no mask can swallow the SQL between two literals. Text
/// the scanner refuses (an unterminated quote) goes through `mask` whole.
pub fn display(sql: &str, mask: impl Fn(&str) -> String) -> String {
    let Some(tokens) = scan(sql) else {
        return mask(sql);
    };
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for t in tokens {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            return mask(sql);
        };
        let (Some(gap), Some(text)) = (sql.get(at..start), sql.get(start..end)) else {
            return mask(sql);
        };
        out.push_str(gap);
        if is_literal_or_comment(t.token) {
            out.push_str(&mask(text));
        } else {
            out.push_str(text);
        }
        at = end;
    }
    out.push_str(sql.get(at..).unwrap_or_default());
    out
}

/// The statement with its constants as `$1`, `$2`… and its comments dropped, to show
/// beside [`display`]; `None` for SQL PostgreSQL cannot parse.
pub fn normalized(sql: &str) -> Option<String> {
    if sql.len() > MAX_SQL_LEN || sql.contains('\0') {
        return None;
    }
    let normalized = pg_query::normalize(sql).ok()?;
    let tokens = scan(&normalized)?;
    let mut out = String::with_capacity(normalized.len());
    let mut at = 0;
    for t in tokens {
        let start = usize::try_from(t.start).ok()?;
        let end = usize::try_from(t.end).ok()?;
        out.push_str(normalized.get(at..start)?);
        if t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32 {
            out.push(' ');
        } else {
            out.push_str(normalized.get(start..end)?);
        }
        at = end;
    }
    out.push_str(normalized.get(at..)?);
    Some(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let a = analyze(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(a.statements.len(), 1, "{sql}: {a:?}");
        a.statements.into_iter().next().unwrap()
    }

    fn kinds(sql: &str) -> Vec<&'static str> {
        one(sql).kinds.iter().map(|k| k.as_str()).collect()
    }

    fn names(list: &[Name]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    fn check_kinds(cases: &[(&str, &[&str])]) {
        for (sql, want) in cases {
            assert_eq!(kinds(sql), *want, "{sql}");
        }
    }

    #[test]
    fn data_statements_have_their_kinds() {
        check_kinds(&[
            ("select * from t", &["select"]),
            ("values (1), (2)", &["select"]),
            ("insert into t values (1)", &["insert"]),
            ("insert into t select * from u", &["insert", "select"]),
            ("update t set x = 1", &["update", "update_no_where"]),
            ("update t set x = 1 where id = 2", &["update"]),
            ("delete from t", &["delete", "delete_no_where"]),
            ("delete from t where id = 1", &["delete"]),
            // A WHERE clause is judged present, not meaningful.
            ("delete from carts where true", &["delete"]),
            ("delete/**/from carts", &["delete", "delete_no_where"]),
            (
                "merge into t using s on t.id = s.id when matched then delete when not matched then insert values (s.id)",
                &["merge", "insert", "delete"],
            ),
            (
                "merge into t using s on t.id = s.id when matched then update set x = 1",
                &["merge", "update"],
            ),
            ("select * into newt from t", &["select", "create"]),
            ("truncate a, b", &["truncate"]),
            ("copy t to stdout", &["copy"]),
            ("copy t from stdin", &["copy"]),
            ("copy (select 1) to stdout", &["copy", "select"]),
            ("COPY t TO PROGRAM 'sh'", &["copy", "copy_to_program"]),
            ("copy t from program 'curl x'", &["copy", "copy_from_program"]),
            ("copy t to '/tmp/t.csv'", &["copy", "copy_file"]),
            ("copy t from '/etc/passwd'", &["copy", "copy_file"]),
        ]);
    }

    #[test]
    fn schema_and_session_statements_have_their_kinds() {
        check_kinds(&[
            ("drop table t", &["drop"]),
            ("drop schema s cascade", &["drop"]),
            ("drop database d", &["drop"]),
            ("drop function f(int)", &["drop"]),
            ("drop role r", &["drop"]),
            ("drop owned by r", &["drop"]),
            ("alter table t add column c int", &["alter"]),
            ("alter table t rename to u", &["alter"]),
            ("alter role r superuser", &["alter"]),
            ("alter database d set x = 1", &["alter"]),
            ("alter system set work_mem = '1GB'", &["alter"]),
            ("create table t (a int)", &["create"]),
            ("create index on t (a)", &["create"]),
            ("create view v as select * from t", &["create", "select"]),
            ("create table n as select * from t", &["create", "select"]),
            ("create role r", &["create"]),
            ("create extension dblink", &["create"]),
            (
                "create rule r as on insert to t do instead delete from u",
                &["create", "delete", "delete_no_where"],
            ),
            (
                "create trigger tr before insert on t for each row execute function f()",
                &["create"],
            ),
            (
                "create function f() returns void language plpgsql as $$ begin delete from t; end $$",
                &["create_function", "create", "dynamic"],
            ),
            (
                "create function f() returns int language sql as 'select 1'",
                &["create_function", "create", "dynamic"],
            ),
            (
                "create procedure p() language sql begin atomic delete from carts where id = 1; end",
                &["create_function", "delete", "create"],
            ),
            (
                "create function f() returns int language sql return 1",
                &["create_function", "create"],
            ),
            ("grant select on t to r", &["grant"]),
            ("grant admin to bob", &["grant"]),
            ("revoke select on t from r", &["revoke"]),
            ("revoke admin from bob", &["revoke"]),
            (
                "alter default privileges grant select on tables to r",
                &["alter", "grant"],
            ),
            ("do $$ begin null; end $$", &["do", "dynamic"]),
            ("prepare p as select 1", &["prepare", "select"]),
            ("execute p", &["execute", "dynamic"]),
            ("deallocate p", &["deallocate"]),
            ("deallocate all", &["deallocate"]),
            ("call p(1)", &["call"]),
            ("set role admin", &["set"]),
            ("set search_path = evil, public", &["set"]),
            ("set session authorization bob", &["set"]),
            ("set constraints all deferred", &["set"]),
            ("reset role", &["reset"]),
            ("reset all", &["reset"]),
            ("discard all", &["reset"]),
            ("show work_mem", &["show"]),
            ("begin", &["transaction"]),
            ("commit", &["transaction"]),
            ("rollback to savepoint s", &["transaction"]),
            ("explain select 1", &["explain", "select"]),
            ("vacuum t", &["vacuum"]),
            ("analyze t", &["vacuum"]),
            ("lock table t in exclusive mode", &["lock"]),
            ("listen c", &["listen"]),
            ("unlisten *", &["listen"]),
            ("notify c, 'x'", &["notify"]),
            ("comment on table t is 'x'", &["comment"]),
            ("checkpoint", &["other"]),
            ("declare c cursor for select 1", &["other", "select"]),
            ("select set_config('search_path', 'evil', false)", &["select", "set"]),
        ]);
    }

    #[test]
    fn nested_statements_add_their_kinds() {
        let s = one("WITH d AS (DELETE FROM carts RETURNING *) SELECT * FROM d");
        assert_eq!(s.primary_kind(), Kind::Select);
        assert!(s.has(Kind::Delete) && s.has(Kind::DeleteNoWhere), "{s:?}");
        assert!(names(&s.relations).contains(&"carts".to_string()));
        check_kinds(&[
            (
                "EXPLAIN ANALYZE DELETE FROM carts",
                &["explain", "delete", "delete_no_where"],
            ),
            (
                "with u as (update t set x = 1 where id = 1 returning *) select * from u",
                &["select", "update"],
            ),
            (
                "select * from t where id in (select id from u where exists (select 1 from v))",
                &["select"],
            ),
            (
                "create table x as execute p",
                &["create", "execute", "dynamic"],
            ),
        ]);
    }

    #[test]
    fn prepare_carries_its_query_and_execute_is_dynamic() {
        let a = analyze("PREPARE p AS DELETE FROM carts; EXECUTE p").unwrap();
        let [prepare, execute] = a.statements.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(
            prepare.kinds,
            [Kind::Prepare, Kind::Delete, Kind::DeleteNoWhere]
        );
        assert_eq!(names(&prepare.relations), ["carts"]);
        assert_eq!(execute.kinds, [Kind::Execute, Kind::Dynamic]);
        assert_eq!(execute.executes.as_deref(), Some("p"));
        let settings = |sql: &str| one(sql).settings;
        assert_eq!(
            settings("SET standard_conforming_strings = off"),
            ["standard_conforming_strings"]
        );
        assert_eq!(settings("set NAMES 'SJIS'"), ["client_encoding"]);
        assert_eq!(settings("RESET ALL"), ["*"]);
        assert_eq!(
            settings("select set_config('Client_Encoding', 'SJIS', false)"),
            ["client_encoding"]
        );
        assert_eq!(settings("select set_config(x, 'y', false) from t"), ["*"]);
        assert!(settings("select 1").is_empty());
        assert!(one("COPY t TO STDOUT").copy_out);
        assert!(one("copy (select * from t) to stdout with csv").copy_out);
        assert!(!one("COPY t FROM STDIN").copy_out);
        assert_eq!(
            (prepare.text.as_str(), execute.text.as_str()),
            ("PREPARE p AS DELETE FROM carts", "EXECUTE p")
        );
    }

    #[test]
    fn spelling_does_not_hide_a_drop() {
        for sql in [
            "DROP\nTABLE t",
            "drop /* x */ table t",
            "drop -- x\n table t",
            "DrOp TaBlE t",
            "drop table \"t\"",
            "drop table U&\"\\0074\"",
            "drop table if exists t cascade",
            "  drop table t;",
        ] {
            let s = one(sql);
            assert_eq!(s.kinds, [Kind::Drop], "{sql}");
            assert_eq!(names(&s.relations), ["t"], "{sql}");
        }
        assert_eq!(names(&one("drop table \"T\"").relations), ["T"]);
        assert_eq!(names(&one("drop table public.t").relations), ["public.t"]);
        assert_eq!(
            names(&one("drop table db.public.t").relations),
            ["public.t"]
        );
        assert_eq!(
            names(&one("drop view v, s.w").relations),
            ["s.w", "v"],
            "views, indexes and sequences are relations too"
        );
        assert!(one("drop function t()").relations.is_empty());
        let a = analyze("select 1; drop table t").unwrap();
        assert_eq!(a.statements[1].kinds, [Kind::Drop]);
        assert_eq!(a.statements[1].text, "drop table t");
    }

    #[test]
    fn dynamic_sql_is_marked() {
        for sql in [
            "DO $$ BEGIN EXECUTE 'drop table t'; END $$",
            "execute p(1)",
            "select * from dblink('dbname=x', 'drop table t') as t(a int)",
            "select dblink_exec('drop table t')",
            "select public.dblink_exec('c', 'drop table t')",
            "select query_to_xml('delete from t returning *', true, false, '')",
            "select query_to_xmlschema('select 1', true, false, '')",
            "select table_to_xml('secrets', true, false, '')",
            "select database_to_xml(true, false, '')",
            "select * from ts_stat('select v from secrets')",
            "select * from crosstab('select 1')",
            "create function f() returns void language plpgsql as $$ begin end $$",
            "create function f() returns void language c as 'lib', 'sym'",
            "select 1 where exists (select dblink('x', 'y'))",
        ] {
            assert!(one(sql).has(Kind::Dynamic), "{sql}");
        }
        for sql in [
            "select 1",
            "prepare p as select 1",
            "select f(1)",
            "create function f() returns int language sql return 1",
            "select xmlelement(name a)",
        ] {
            assert!(!one(sql).has(Kind::Dynamic), "{sql}");
        }
    }

    #[test]
    fn relations_are_collected_everywhere() {
        let rels = |sql: &str| names(&one(sql).relations);
        assert_eq!(
            rels("select * from s.t join u on s.t.id = u.id"),
            ["s.t", "u"]
        );
        assert_eq!(rels("truncate a, b"), ["a", "b"]);
        assert_eq!(rels("insert into t (a) select a from s.u"), ["s.u", "t"]);
        assert_eq!(rels("update t set a = (select max(a) from u)"), ["t", "u"]);
        assert_eq!(rels("delete from t using u where t.id = u.id"), ["t", "u"]);
        assert_eq!(
            rels("alter table billing.carts rename to c"),
            ["billing.carts"]
        );
        assert_eq!(rels("alter table t add column c int"), ["t"]);
        assert_eq!(rels("copy secrets to stdout"), ["secrets"]);
        assert_eq!(rels("lock table a, b"), ["a", "b"]);
        assert_eq!(rels("grant select on table s.t, u to r"), ["s.t", "u"]);
        assert_eq!(rels("vacuum full t"), ["t"]);
        assert_eq!(rels("select * into newt from t"), ["newt", "t"]);
        assert_eq!(rels("create index i on t (a)"), ["t"]);
        assert_eq!(rels("select * from \"Carts\""), ["Carts"]);
        assert_eq!(rels("select * from U&\"d\\0061ta\""), ["data"]);
        assert_eq!(
            rels("merge into t using s on t.id = s.id when matched then delete"),
            ["s", "t"]
        );
        assert_eq!(rels("select 1 from (select * from inner_t) x"), ["inner_t"]);
        assert_eq!(
            rels("select * from a union select * from b except select * from c"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn functions_are_collected_everywhere() {
        let funcs = |sql: &str| names(&one(sql).functions);
        assert_eq!(
            funcs("select pg_read_file('/etc/passwd')"),
            ["pg_read_file"]
        );
        assert_eq!(
            funcs("select PG_CATALOG.PG_READ_FILE('x')"),
            ["pg_catalog.pg_read_file"]
        );
        assert_eq!(funcs("select \"Upper\"(x) from t"), ["Upper"]);
        assert_eq!(funcs("call s.p(lower('X'))"), ["lower", "s.p"]);
        assert_eq!(
            funcs("select * from t where a = (select max(b) from u) order by coalesce(c, now())"),
            ["max", "now"],
            "coalesce is syntax, not a call"
        );
        assert_eq!(
            funcs("insert into t values (lo_import('/etc/passwd'))"),
            ["lo_import"]
        );
        assert_eq!(
            funcs("select * from generate_series(1, 3)"),
            ["generate_series"]
        );
    }

    #[test]
    fn empty_and_comment_only_text_has_no_statements() {
        for sql in ["", "   ", "-- nothing\n", "/* nothing */", ";", " ; ; "] {
            assert_eq!(analyze(sql).unwrap(), Analysis::default(), "{sql:?}");
        }
    }

    #[test]
    fn parse_errors_carry_the_message_and_position() {
        let e = analyze("select 1 fro m").unwrap_err();
        assert_eq!(e.message, "syntax error at or near \"m\"");
        assert_eq!((e.position, e.sqlstate), (Some(14), "42601"));
        let e = analyze("select (").unwrap_err();
        assert_eq!(e.message, "syntax error at end of input");
        assert_eq!(e.position, Some(9));
        let e = analyze("select 'é' frm t").unwrap_err();
        assert_eq!(e.position, Some(16), "counted in characters: {e:?}");
        let e = analyze("select 1; drpo table t").unwrap_err();
        assert_eq!(e.position, Some(11), "{e:?}");
        let e = analyze("select 'abc").unwrap_err();
        assert!(e.message.contains("unterminated quoted string"), "{e:?}");
        assert_eq!(e.sqlstate, "42601");
        // Nothing of a message with an error is taken: the valid first statement included.
        assert!(analyze("select 1; this is not sql").is_err());
    }

    #[test]
    fn oversized_and_odd_input_is_refused_not_a_crash() {
        let e = analyze(&"x".repeat(MAX_SQL_LEN + 1)).unwrap_err();
        assert_eq!(e.sqlstate, "54000");
        assert!(analyze("select 1\0; drop table t").is_err());
        for n in [300, 5000] {
            let deep = format!("select {}", vec!["1"; n].join(" + "));
            let e = analyze(&deep).unwrap_err();
            assert_eq!(e.sqlstate, "54001", "{e:?}");
        }
        let deep = format!("select {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(analyze(&deep).is_err());
        // The parser runs on its own stack, whatever the caller's.
        let small = std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(|| {
                let deep = format!("select {}", vec!["a"; 80].join(" || "));
                analyze(&deep).map(|_| ()).map_err(|e| e.sqlstate)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(small, Err("54001"));
        assert_eq!(
            kinds(&format!("select {}", vec!["a"; 40].join(" || "))),
            ["select"]
        );
    }

    #[test]
    fn analysis_runs_from_many_threads_at_once() {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    (0..20)
                        .map(|_| one(&format!("delete from t{i}")).relations[0].name.clone())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert!(h.join().unwrap().iter().all(|n| *n == format!("t{i}")));
        }
    }

    #[test]
    fn globs_match_names_without_case() {
        let n = |s: Option<&str>, name: &str| Name {
            schema: s.map(str::to_string),
            name: name.to_string(),
        };
        let cases = [
            ("public.carts", n(Some("public"), "carts"), true),
            ("public.carts", n(None, "carts"), true),
            ("public.carts", n(Some("billing"), "carts"), false),
            ("public.carts", n(Some("public"), "carts2"), false),
            ("*.carts", n(Some("x"), "carts"), true),
            ("*.carts", n(None, "carts"), true),
            ("carts", n(Some("anything"), "carts"), true),
            ("carts", n(None, "Carts"), true),
            ("billing.*", n(Some("billing"), "x"), true),
            ("billing.*", n(Some("public"), "x"), false),
            ("billing.*", n(None, "x"), true),
            (
                "pg_read_*",
                n(Some("pg_catalog"), "pg_read_binary_file"),
                true,
            ),
            ("pg_read_*", n(None, "pg_reader"), false),
            ("pg_catalog.pg_read_file", n(None, "pg_read_file"), true),
            ("lo_?mport", n(None, "lo_import"), true),
            ("lo_?mport", n(None, "lo_iimport"), false),
            ("*a*b*", n(None, "xxaxxbxx"), true),
            ("*a*b", n(None, "xxaxxbxxc"), false),
            ("*", n(Some("s"), ""), true),
        ];
        for (glob, name, want) in cases {
            assert_eq!(
                NameGlob::parse(glob).unwrap().matches(&name),
                want,
                "{glob} vs {name}"
            );
        }
        for bad in ["", ".", "a.", ".a", "a.b.c", " "] {
            assert!(NameGlob::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NameGlob::parse("billing.*").unwrap().to_string(),
            "billing.*"
        );
    }

    #[test]
    fn a_match_needs_every_condition_and_any_element() {
        let rule = SqlMatch {
            kinds: vec![Kind::Delete, Kind::Truncate],
            relations: vec![NameGlob::parse("public.carts").unwrap()],
            functions: vec![],
        };
        assert!(rule.matches(&one("delete from carts where id = 1")));
        assert!(rule.matches(&one("truncate public.carts")));
        assert!(
            rule.matches(&one("DELETE FROM \"Carts\"")),
            "case: the safe side"
        );
        assert!(!rule.matches(&one("delete from orders")));
        assert!(!rule.matches(&one("select * from carts")));
        assert!(!rule.matches(&one("delete from billing.carts")));
        let funcs = SqlMatch {
            functions: vec![NameGlob::parse("pg_read_*").unwrap()],
            ..SqlMatch::default()
        };
        assert!(funcs.matches(&one("select pg_catalog.pg_read_binary_file('/x')")));
        assert!(!funcs.matches(&one("select 'pg_read_file'")));
        assert!(
            SqlMatch::default().matches(&one("select 1")),
            "no condition"
        );
    }

    #[test]
    fn display_masks_each_literal_on_its_own() {
        // A greedy mask over a whole line would take everything between the quotes.
        let greedy = regex::Regex::new("'.*'").unwrap();
        let mask = |s: &str| greedy.replace_all(s, "'***'").into_owned();
        let sql = "select * from users where name = 'bob' or id > 0 and note = 'x'";
        assert_eq!(
            display(sql, mask),
            "select * from users where name = '***' or id > 0 and note = '***'"
        );
        let all = |s: &str| format!("<{}>", s.len());
        assert_eq!(
            display(
                "SELECT \"Name\", 42, 1.5, x'ff', b'01', E'a\\'b', $$dollar$$ -- note\nFROM t /* c */",
                all
            ),
            "SELECT \"Name\", <2>, <3>, <5>, <5>, <7>, <10> <7>\nFROM t <7>"
        );
        assert_eq!(display("select $1, :x", all), "select $1, :x");
        assert_eq!(display("", all), "");
        // Text the scanner refuses goes through the mask whole.
        assert_eq!(display("select 'open", all), "<12>");
    }

    #[test]
    fn normalized_text_has_parameters_and_no_comments() {
        assert_eq!(
            normalized("select * from t where a = 'secret' and b = 42 -- pw: hunter2\n"),
            Some("select * from t where a = $1 and b = $2".to_string())
        );
        assert_eq!(
            normalized("select /* pw */ 1"),
            Some("select   $1".to_string())
        );
        assert_eq!(normalized("select ("), None);
    }

    #[test]
    fn docs_list_every_kind() {
        let docs = include_str!("../../docs/POSTGRES.md");
        for k in Kind::ALL {
            assert!(
                docs.contains(&format!("| `{k}` |")),
                "docs/POSTGRES.md has no row for {k}"
            );
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("dropp"), None);
        let mut sorted = Kind::ALL.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), Kind::ALL.len());
    }
}
