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

use crate::error::Error;
use sqlx::{Connection, SqlitePool};

/// Rebuilds every table that could reuse ids; returns how many it rebuilt.
pub(super) async fn make_ids_never_reused(pool: &SqlitePool) -> Result<usize, Error> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND sql LIKE '%INTEGER PRIMARY KEY%' AND sql NOT LIKE '%AUTOINCREMENT%' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(pool)
    .await?;
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
        let create = with_autoincrement(sql, &rebuilt).ok_or_else(|| {
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
/// `INTEGER PRIMARY KEY` is `AUTOINCREMENT`.
fn with_autoincrement(sql: &str, rebuilt: &str) -> Option<String> {
    const KEY: &str = "INTEGER PRIMARY KEY";
    let body = &sql[sql.find('(')?..];
    let key = body.find(KEY)? + KEY.len();
    Some(format!(
        "CREATE TABLE \"{rebuilt}\" {} AUTOINCREMENT{}",
        &body[..key],
        &body[key..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_gets_autoincrement_on_its_key_and_the_new_name() {
        let sql =
            "CREATE TABLE IF NOT EXISTS \"history\" (\n    id INTEGER PRIMARY KEY,\n    at BIGINT)";
        assert_eq!(
            with_autoincrement(sql, "history__rebuilt").unwrap(),
            "CREATE TABLE \"history__rebuilt\" (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    at BIGINT)"
        );
        assert_eq!(with_autoincrement("CREATE TABLE t (x TEXT)", "t2"), None);
    }
}
