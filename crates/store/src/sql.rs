//! Row mapping shared by the table modules: names and JSON read back from
//! SQLite are checked, and a bad one is a typed error, never a panic.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::Row;
use std::str::FromStr;

/// Reads a column holding an enum's stable name (see `named_enum!`).
pub(crate) struct Named<T>(pub T);

impl<T: FromStr> FromSql for Named<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        T::from_str(s)
            .map(Named)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(crate) fn named<T>(row: &Row<'_>, idx: &str) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    row.get::<_, Named<T>>(idx).map(|n| n.0)
}

/// Escapes user text into an FTS5 query: every word becomes a quoted prefix
/// term, so punctuation in the input can never be FTS syntax.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn fts_query_never_passes_syntax_through() {
        assert_eq!(
            fts_query(r#"push "tag" OR v2.4 (NEAR"#).as_deref(),
            Some(r#""push"* "tag"* "OR"* "v2"* "4"* "NEAR"*"#),
            "quotes, parentheses and operators in user input must become plain terms"
        );
        assert_eq!(fts_query("  ;; "), None, "input without words is no query");
    }
}
