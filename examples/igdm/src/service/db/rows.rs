//! Multi-row statements: many rows in one round trip to the database.
//!
//! Every statement costs a round trip (on SQLite, two thread hand-overs to the connection's
//! worker), so the pipeline collects the rows of a batch and writes them with one `INSERT` per
//! few hundred rows.

use std::fmt::Write as _;

use super::{Backend, Result, Tx};

/// Most parameters in one statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;

/// A value to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// TEXT (or NULL).
    Text(Option<String>),
    /// INTEGER / BIGINT (or NULL).
    Int(Option<i64>),
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_owned()))
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}

impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_owned))
    }
}

impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

/// `head VALUES (...), (...) suffix` for `count` rows of `width` columns, numbered from `$1`.
///
/// On SQLite the values are anonymous `?` parameters instead (bound in order): SQLite looks a
/// numbered parameter's name up in a list of all of them, when the statement is prepared and
/// again when each value is bound, so numbered parameters cost quadratic time in a statement
/// of thousands of values. `head` and `suffix` must hold no parameters of their own.
pub(crate) fn values_sql(
    head: &str,
    width: usize,
    count: usize,
    suffix: &str,
    backend: Backend,
) -> String {
    let mut sql = String::with_capacity(head.len() + suffix.len() + count * width * 5);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for row in 0..count {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..width {
            if col > 0 {
                sql.push_str(", ");
            }
            if backend == Backend::Sqlite {
                sql.push('?');
            } else {
                let _ = write!(sql, "${}", row * width + col + 1);
            }
        }
        sql.push(')');
    }
    if !suffix.is_empty() {
        sql.push(' ');
        sql.push_str(suffix);
    }
    sql
}

fn chunk_rows(width: usize, max_params: usize) -> usize {
    (max_params / width.max(1)).max(1)
}

/// Inserts `rows` (each `width` values) with `head` (`INSERT INTO t (a, b)`) and `suffix`
/// (e.g. `ON CONFLICT (a) DO NOTHING`); the number of rows written.
pub async fn insert(
    tx: &mut Tx,
    head: &str,
    width: usize,
    rows: &[Vec<Param>],
    suffix: &str,
) -> Result<u64> {
    insert_chunked(tx, head, width, rows, suffix, MAX_PARAMS).await
}

async fn insert_chunked(
    tx: &mut Tx,
    head: &str,
    width: usize,
    rows: &[Vec<Param>],
    suffix: &str,
    max_params: usize,
) -> Result<u64> {
    let mut written = 0;
    for chunk in rows.chunks(chunk_rows(width, max_params)) {
        let sql = values_sql(head, width, chunk.len(), suffix, tx.backend());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in chunk.iter().flatten() {
            query = match value {
                Param::Text(v) => query.bind(v.clone()),
                Param::Int(v) => query.bind(*v),
            };
        }
        written += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(written)
}

/// Like [`insert`], with a `suffix` ending in `RETURNING <one text column>`: the returned values.
pub async fn insert_returning(
    tx: &mut Tx,
    head: &str,
    width: usize,
    rows: &[Vec<Param>],
    suffix: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in rows.chunks(chunk_rows(width, MAX_PARAMS)) {
        let sql = values_sql(head, width, chunk.len(), suffix, tx.backend());
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for value in chunk.iter().flatten() {
            query = match value {
                Param::Text(v) => query.bind(v.clone()),
                Param::Int(v) => query.bind(*v),
            };
        }
        out.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// The rows of `table` whose key columns `key` equal one of `pairs`, with `columns` (written
/// with the table's alias `t`, e.g. `t.account, t.key`), a few hundred pairs per statement.
///
/// The pairs are joined as a `VALUES` list (`FROM (VALUES ...) AS v JOIN table AS t ON ...`),
/// so that each pair is one index search; SQLite answers `(a, b) IN (VALUES ...)` by scanning
/// the whole table.
pub async fn select_pairs(
    tx: &mut Tx,
    table: &str,
    key: (&str, &str),
    columns: &str,
    pairs: &[(&str, &str)],
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut out = Vec::new();
    for chunk in pairs.chunks(500) {
        let sql = values_sql(
            &format!("SELECT {columns} FROM ("),
            2,
            chunk.len(),
            &format!(
                ") AS v JOIN {table} AS t ON t.{} = v.column1 AND t.{} = v.column2",
                key.0, key.1
            ),
            tx.backend(),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (a, b) in chunk {
            query = query.bind(*a).bind(*b);
        }
        out.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// `$first, $first+1, ...` for `count` values: the inside of an `IN (...)` list.
pub fn placeholders(first: usize, count: usize) -> String {
    let mut s = String::with_capacity(count * 5);
    for i in 0..count {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "${}", first + i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::db::testing::temp_db;

    #[test]
    fn values_are_numbered_row_by_row() {
        assert_eq!(
            values_sql(
                "INSERT INTO t (a, b)",
                2,
                2,
                "ON CONFLICT DO NOTHING",
                Backend::Postgres
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", 2, 2, "", Backend::Sqlite),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(chunk_rows(11, MAX_PARAMS), 2727);
        assert_eq!(chunk_rows(3, 2), 1);
    }

    #[tokio::test]
    async fn inserts_many_rows_in_chunks_and_returns_the_new_keys() {
        let t = temp_db().await;
        let mut tx = t.db.begin().await.unwrap();
        let rows: Vec<Vec<Param>> = (0..20i64)
            .map(|i| {
                vec![
                    Param::from("acct"),
                    Param::from(format!("k{i}")),
                    Param::from(i),
                ]
            })
            .collect();
        // 3 rows (9 parameters) per statement: 7 statements
        let n = insert_chunked(
            &mut tx,
            "INSERT INTO dedup_keys (account, key, at)",
            3,
            &rows,
            "",
            9,
        )
        .await
        .unwrap();
        assert_eq!(n, 20);
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dedup_keys")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(stored, 20);
        // again with two new keys: only those come back
        let mut again = rows[..5].to_vec();
        again.push(vec!["acct".into(), "new-1".into(), Param::Int(Some(1))]);
        again.push(vec!["acct".into(), "new-2".into(), Param::Int(None)]);
        let back = insert_returning(
            &mut tx,
            "INSERT INTO dedup_keys (account, key, at)",
            3,
            &again[..6],
            "ON CONFLICT (account, key) DO NOTHING RETURNING key",
        )
        .await
        .unwrap();
        assert_eq!(back, vec!["new-1".to_string()]);
        // a NULL in a NOT NULL column is refused as a whole statement
        assert!(insert_returning(
            &mut tx,
            "INSERT INTO dedup_keys (account, key, at)",
            3,
            &again[6..],
            "RETURNING key",
        )
        .await
        .is_err());
    }
}
