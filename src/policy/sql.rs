//! TEMPORARY stand-in for the SQL analysis (replaced by the pg_query-based module).

use super::{Policy, Verdict};

#[derive(Debug)]
pub struct SqlError(pub String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub kinds: Vec<String>,
    pub relations: Vec<String>,
    pub functions: Vec<String>,
    pub text: String,
}

impl Statement {
    pub fn function_call() -> Statement {
        Statement {
            kinds: vec!["dynamic".into()],
            relations: vec![],
            functions: vec![],
            text: String::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub statements: Vec<Statement>,
}

pub fn analyze(sql: &str) -> Result<Analysis, SqlError> {
    Ok(Analysis {
        statements: vec![Statement {
            kinds: vec!["other".into()],
            relations: vec![],
            functions: vec![],
            text: sql.to_string(),
        }],
    })
}

pub fn display(sql: &str, _mask: impl Fn(&str) -> String) -> String {
    sql.to_string()
}

pub fn normalized(sql: &str) -> String {
    sql.to_string()
}

impl Policy {
    pub fn check_statements(&self, _target: &str, _a: &Analysis) -> Verdict<'_> {
        Verdict::Allow
    }
}
