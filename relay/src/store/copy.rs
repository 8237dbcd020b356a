//! Copying a single-node installation's database (SQLite) into PostgreSQL, for `eyeward-relay
//! admin migrate-storage`.
//!
//! Driven by the two schemas rather than by a list of tables: every table and column of the
//! one must be in the other (they are kept so, migration for migration), each value is read
//! as the PostgreSQL column's type says, and tables are copied parents first (PostgreSQL's
//! foreign keys give the order). Rows keep their ids, so every link, token and mail that
//! names one still does. A row already in the target is skipped, so the copy can be run
//! again after a failure and picks up where it stopped; then each identity is set past the
//! highest id SQLite ever gave (ids are never reused), and the counts are compared.

use super::Store;
use super::backend::Pool;
use crate::error::{Error, ErrorKind};
use serde::Serialize;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet};

/// Rows read and written at once.
const BATCH: i64 = 500;

/// What the copy did to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCopy {
    pub table: String,
    /// Rows in the installation's database.
    pub rows: i64,
    /// Rows this run added to PostgreSQL (the others were there from an earlier run).
    pub copied: u64,
}

/// A column as PostgreSQL types it.
struct Column {
    name: String,
    kind: Kind,
}

/// The value types the schemas use.
#[derive(Clone, Copy)]
enum Kind {
    Integer,
    Boolean,
    Double,
    Text,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" | "integer" | "smallint" => Kind::Integer,
            "boolean" => Kind::Boolean,
            "double precision" | "real" => Kind::Double,
            "text" => Kind::Text,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

fn refused(msg: String) -> Error {
    Error::new(ErrorKind::FailedPrecondition, msg)
}

impl Store {
    /// Copies every row of this store (SQLite) into `target` (PostgreSQL, migrated).
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<TableCopy>, Error> {
        let (Pool::Sqlite(source), Pool::Postgres(target)) = (&self.pool, &target.pool) else {
            return Err(refused(
                "the copy goes from SQLite into PostgreSQL".to_owned(),
            ));
        };
        let tables = parents_first(target).await?;
        let theirs: BTreeSet<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
             ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        )
        .fetch_all(source)
        .await?
        .into_iter()
        .collect();
        let ours: BTreeSet<String> = tables.iter().cloned().collect();
        if theirs != ours {
            return Err(refused(format!(
                "the databases' tables differ (SQLite: {theirs:?}; PostgreSQL: {ours:?}): \
                 is the relay that wrote them the same version as this one?"
            )));
        }
        let mut copied = Vec::new();
        for table in &tables {
            let has_key: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::regclass \
                 AND indisprimary)",
            )
            .bind(table)
            .fetch_one(target)
            .await?;
            // A table without a key holds no records but the running relay's own state (the
            // revocation counter, which a relay reads afresh when it starts): not copied.
            if has_key {
                copied.push(copy_table(source, target, table).await?);
            }
        }
        Ok(copied)
    }
}

/// The target's tables, each after every table it refers to.
async fn parents_first(target: &PgPool) -> Result<Vec<String>, Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         AND table_name NOT LIKE '\\_sqlx%' AND NOT table_name = ANY($1) ORDER BY table_name",
    )
    // The cluster's own rows (nodes, who holds which camera) are PostgreSQL's alone: a
    // single-node installation has none to bring.
    .bind(super::cluster::CLUSTER_TABLES)
    .fetch_all(target)
    .await?;
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::TEXT, c.confrelid::regclass::TEXT FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(target)
    .await?;
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (child, parent) in &references {
        if child != parent
            && let Some(of) = parents.get_mut(child.as_str())
        {
            of.insert(parent.as_str());
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < tables.len() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(t, of)| {
                !ordered.iter().any(|o| o == *t)
                    && of.iter().all(|p| ordered.iter().any(|o| o == p))
            })
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            return Err(Error::internal(
                "the tables' foreign keys go round in a circle",
            ));
        }
        ordered.extend(ready.into_iter().map(str::to_owned));
    }
    Ok(ordered)
}

/// Copies one table's rows, in batches that each commit.
async fn copy_table(source: &SqlitePool, target: &PgPool, table: &str) -> Result<TableCopy, Error> {
    let columns: Vec<Column> = sqlx::query_as::<_, (String, String)>(
        "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(target)
    .await?
    .into_iter()
    .map(|(name, data_type)| {
        let kind = Kind::of(&data_type).ok_or_else(|| {
            Error::internal(format!(
                "{table}.{name}: no copy for PostgreSQL type {data_type}"
            ))
        })?;
        Ok(Column { name, kind })
    })
    .collect::<Result<_, Error>>()?;
    let theirs: BTreeSet<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
        .bind(table)
        .fetch_all(source)
        .await?
        .into_iter()
        .collect();
    let ours: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
    if theirs != ours {
        return Err(refused(format!(
            "table {table}'s columns differ (SQLite: {theirs:?}; PostgreSQL: {ours:?})"
        )));
    }
    let names = columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
        .fetch_one(source)
        .await?;
    let mut copied = 0;
    let mut after = i64::MIN;
    loop {
        let batch: Vec<SqliteRow> = sqlx::query(&format!(
            "SELECT rowid AS copy_rowid, {names} FROM \"{table}\" WHERE rowid > $1 \
             ORDER BY rowid LIMIT {BATCH}"
        ))
        .bind(after)
        .fetch_all(source)
        .await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.try_get("copy_rowid")?;
        let mut insert = QueryBuilder::new(format!(
            "INSERT INTO \"{table}\" ({names}) OVERRIDING SYSTEM VALUE "
        ));
        let mut bad = None;
        insert.push_values(&batch, |mut values, row| {
            for column in &columns {
                if let Err(e) = bind_value(&mut values, row, column) {
                    bad.get_or_insert(e);
                }
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        // A row copied by an earlier run is left as it is.
        insert.push(" ON CONFLICT DO NOTHING");
        copied += insert.build().execute(target).await?.rows_affected();
    }
    let ids_given: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
            .bind(table)
            .fetch_optional(source)
            .await?;
    let identity: Option<String> = sqlx::query_scalar(
        "SELECT column_name::TEXT FROM information_schema.columns WHERE table_schema = \
         current_schema() AND table_name = $1 AND is_identity = 'YES'",
    )
    .bind(table)
    .fetch_optional(target)
    .await?;
    if let Some(id) = identity {
        // Past every id SQLite ever gave, removed rows' too: ids are never given twice.
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST($3, \
             (SELECT COALESCE(MAX(\"{id}\"), 0) FROM \"{table}\"), 1))"
        ))
        .bind(table)
        .bind(&id)
        .bind(ids_given.unwrap_or(0))
        .execute(target)
        .await?;
    }
    let now: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
        .fetch_one(target)
        .await?;
    if now != rows {
        return Err(refused(format!(
            "table {table}: {rows} rows in SQLite but {now} in PostgreSQL after the copy \
             (was the relay still writing? stop it and run the copy again)"
        )));
    }
    Ok(TableCopy {
        table: table.to_owned(),
        rows,
        copied,
    })
}

/// Binds `row`'s value of `column`, read as the PostgreSQL column's type.
fn bind_value(
    values: &mut sqlx::query_builder::Separated<'_, '_, sqlx::Postgres, &'static str>,
    row: &SqliteRow,
    column: &Column,
) -> Result<(), Error> {
    let name = column.name.as_str();
    match column.kind {
        Kind::Integer => values.push_bind(row.try_get::<Option<i64>, _>(name)?),
        Kind::Boolean => values.push_bind(row.try_get::<Option<bool>, _>(name)?),
        Kind::Double => values.push_bind(row.try_get::<Option<f64>, _>(name)?),
        Kind::Text => values.push_bind(row.try_get::<Option<String>, _>(name)?),
        Kind::Bytes => values.push_bind(row.try_get::<Option<Vec<u8>>, _>(name)?),
    };
    Ok(())
}
