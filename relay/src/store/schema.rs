//! Ids are never given twice. A SQLite table whose key is a plain `INTEGER PRIMARY KEY` gives a
//! new row the highest id + 1: after the newest camera (or account, event, request...) was
//! removed, the next one, another customer's, got its id, and whatever still named the old one
//! by id (a live stream, a link) named the new. `AUTOINCREMENT` never hands out an id twice.
//!
//! SQLite cannot add it to a table, and sqlx runs every migration inside a transaction, where
//! foreign keys cannot be switched off; so this runs after the migrations, on a connection of
//! its own: each such table is rebuilt as SQLite's documentation says
//! (<https://www.sqlite.org/lang_altertable.html#otheralter>), with foreign keys off so that
//! dropping the old table cascades to nothing, all in one transaction that is checked with
//! `PRAGMA foreign_key_check` before it commits. It finds nothing to do once done, and does
//! the same for any table a later migration adds without `AUTOINCREMENT`.
//!
//! A `CHECK` is part of a SQLite table's definition too: the checks a later migration widens
//! ([`WIDENED_CHECKS`], for the household's members) are changed by the same rebuild.

use crate::error::Error;
use sqlx::{Connection, SqlitePool};

/// Checks as the first migrations wrote them, and as they are now: (was, is), applied in
/// order, so a check widened twice goes through both. Members (migration 0016) are accounts
/// of their own role who act in the history and on requests; guards (0020) act on requests
/// from their phones, which have a state of their own between assigned and arrived.
const WIDENED_CHECKS: &[(&str, &str)] = &[
    (
        "CHECK (role IN ('customer', 'operator'))",
        "CHECK (role IN ('customer', 'operator', 'member'))",
    ),
    (
        "CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system'))",
        "CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system', 'member'))",
    ),
    (
        "CHECK (actor_kind IN ('customer', 'operator'))",
        "CHECK (actor_kind IN ('customer', 'operator', 'member'))",
    ),
    (
        "CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system', 'member'))",
        "CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system', 'member', 'guard'))",
    ),
    (
        "CHECK (actor_kind IN ('customer', 'operator', 'member'))",
        "CHECK (actor_kind IN ('customer', 'operator', 'member', 'guard'))",
    ),
    (
        "CHECK (state IN ('requested', 'accepted', 'assigned', 'arrived', 'completed', 'cancelled'))",
        "CHECK (state IN ('requested', 'accepted', 'assigned', 'en_route', 'arrived', 'completed', 'cancelled'))",
    ),
];

/// The primary key SQLite may give again.
const REUSABLE_KEY: &str = "INTEGER PRIMARY KEY";

/// Whether the table defined by `sql` is rebuilt: its ids could be reused, or a check of it
/// was widened since.
fn outdated(sql: &str) -> bool {
    (sql.contains(REUSABLE_KEY) && !sql.contains("AUTOINCREMENT"))
        || WIDENED_CHECKS.iter().any(|(was, _)| sql.contains(was))
}

/// Rebuilds every table that could reuse ids or has a check widened since; returns how many
/// it rebuilt.
pub(super) async fn rebuild_outdated_tables(pool: &SqlitePool) -> Result<usize, Error> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(pool)
    .await?;
    let tables: Vec<(String, String)> = tables
        .into_iter()
        .filter(|(_, sql)| outdated(sql))
        .collect();
    if tables.is_empty() {
        return Ok(0);
    }
    // Detached: this connection, with foreign keys off, never goes back to the pool.
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    for (name, sql) in &tables {
        let rebuilt = format!("{name}__rebuilt");
        let create = rebuilt_definition(sql, &rebuilt).ok_or_else(|| {
            Error::internal(format!("cannot read the definition of table {name}"))
        })?;
        let columns: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info($1)")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
        let columns = columns
            .iter()
            .map(|(c,)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let attached: Vec<(String,)> = sqlx::query_as(
            "SELECT sql FROM sqlite_master WHERE tbl_name = $1 \
             AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::raw_sql(&create).execute(&mut *tx).await?;
        sqlx::raw_sql(&format!(
            "INSERT INTO \"{rebuilt}\" ({columns}) SELECT {columns} FROM \"{name}\"; \
             DROP TABLE \"{name}\"; ALTER TABLE \"{rebuilt}\" RENAME TO \"{name}\";"
        ))
        .execute(&mut *tx)
        .await?;
        for (sql,) in &attached {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
        }
    }
    let violations = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *tx)
        .await?;
    if !violations.is_empty() {
        // Dropping the transaction rolls it back: nothing changed.
        return Err(Error::internal(
            "rebuilding tables for ids never reused would break a foreign key",
        ));
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(tables.len())
}

/// `sql`, a table's `CREATE TABLE` as SQLite keeps it, for a table named `rebuilt` whose first
/// `INTEGER PRIMARY KEY` is `AUTOINCREMENT` and whose checks are as they are now.
fn rebuilt_definition(sql: &str, rebuilt: &str) -> Option<String> {
    let widened = WIDENED_CHECKS
        .iter()
        .fold(sql.to_owned(), |sql, (was, is)| sql.replace(was, is));
    let body = &widened[widened.find('(')?..];
    match body.find(REUSABLE_KEY) {
        Some(key) if !body.contains("AUTOINCREMENT") => {
            let key = key + REUSABLE_KEY.len();
            Some(format!(
                "CREATE TABLE \"{rebuilt}\" {} AUTOINCREMENT{}",
                &body[..key],
                &body[key..]
            ))
        }
        _ => Some(format!("CREATE TABLE \"{rebuilt}\" {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_gets_autoincrement_on_its_key_and_the_new_name() {
        let sql =
            "CREATE TABLE IF NOT EXISTS \"history\" (\n    id INTEGER PRIMARY KEY,\n    at BIGINT)";
        assert!(outdated(sql));
        assert_eq!(
            rebuilt_definition(sql, "history__rebuilt").unwrap(),
            "CREATE TABLE \"history__rebuilt\" (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    at BIGINT)"
        );
        assert!(!outdated("CREATE TABLE t (x TEXT)"));
        assert_eq!(rebuilt_definition("CREATE TABLE t", "t2"), None);
    }

    #[test]
    fn a_widened_check_is_rebuilt_once_with_its_new_values() {
        let sql = "CREATE TABLE \"accounts\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                   role TEXT NOT NULL CHECK (role IN ('customer', 'operator')), name TEXT)";
        assert!(outdated(sql));
        let rebuilt = rebuilt_definition(sql, "accounts__rebuilt").unwrap();
        assert_eq!(
            rebuilt,
            "CREATE TABLE \"accounts__rebuilt\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             role TEXT NOT NULL CHECK (role IN ('customer', 'operator', 'member')), name TEXT)"
        );
        assert!(!outdated(&rebuilt));
    }

    #[test]
    fn a_check_widened_twice_goes_through_both() {
        let sql = "CREATE TABLE \"dispatch_transitions\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                   actor_kind TEXT NOT NULL CHECK (actor_kind IN ('customer', 'operator')))";
        let rebuilt = rebuilt_definition(sql, "t").unwrap();
        assert!(
            rebuilt.contains("CHECK (actor_kind IN ('customer', 'operator', 'member', 'guard'))"),
            "{rebuilt}"
        );
        assert!(!outdated(&rebuilt));
    }
}
