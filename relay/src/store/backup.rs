//! The database's part of backups and upgrades: a consistent copy of the live database, what
//! the copy's rows name in the picture storage, and which schema version a database is at.
//!
//! SQLite: `VACUUM INTO` writes a consistent copy in one read transaction while the relay goes
//! on writing (a file copy of a WAL database is not one); the copy is then read on its own, so
//! the pictures a backup takes are exactly those its rows name. PostgreSQL: the names are read
//! in a REPEATABLE READ transaction whose snapshot `pg_dump` is given (see
//! [`Store::on_exported_snapshot`]), so the dump and the names are of one moment.
//!
//! A schema version is the number of the newest migration a database has applied; the two
//! engines count their own.

use super::Store;
use super::backend::{Conn, Connection, Either, Pool, Tx, on};
use crate::config::DatabaseConfig;
use crate::error::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

/// The database engines a relay runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        })
    }
}

impl Engine {
    /// The newest schema version this relay knows on this engine.
    pub fn newest_schema(self) -> i64 {
        let migrator = match self {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Refuses a database at `schema`, written by a newer relay: nothing of it is changed.
    pub fn refuse_newer(self, schema: i64) -> Result<(), Error> {
        let newest = self.newest_schema();
        if schema > newest {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "the database is at schema version {schema}, but this eyeward-relay {} \
                     knows versions up to {newest}: a newer relay wrote it. Run that version \
                     (or newer), or restore a backup made before the upgrade \
                     (docs/operations.md); nothing was changed",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        Ok(())
    }
}

/// The objects a database's rows name, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NamedObjects {
    /// Events with a snapshot: (camera, idempotency key).
    pub snapshots: Vec<(i64, String)>,
    /// Events with a clip: (camera, idempotency key).
    pub clips: Vec<(i64, String)>,
    /// Dispatch requests with a shared picture.
    pub shared_pictures: Vec<i64>,
}

/// What a copy of the database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub schema_version: i64,
    /// Rows per table.
    pub rows: BTreeMap<String, i64>,
    pub named: NamedObjects,
}

impl Store {
    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// Writes a consistent copy of this (SQLite) database to `file`, which must not exist,
    /// while others go on writing; the copy is on disk when this returns.
    pub async fn copy_sqlite_into(&self, file: &Path) -> Result<(), Error> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(Error::internal("VACUUM INTO is SQLite's"));
        };
        let path = file.to_str().ok_or_else(|| {
            Error::new(ErrorKind::InvalidArgument, "the backup path is not UTF-8")
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(pool)
            .await?;
        std::fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::storage("the database copy", &e))
    }

    /// Runs `work` with the id of an exported snapshot of this (PostgreSQL) database and what
    /// the database holds in it: `pg_dump --snapshot` run by `work` dumps that same moment.
    pub async fn on_exported_snapshot<T, F>(
        &self,
        work: impl FnOnce(String, Contents) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let Pool::Postgres(pool) = &self.pool else {
            return Err(Error::internal("exported snapshots are PostgreSQL's"));
        };
        let mut tx = Tx::Postgres(pool.begin().await?);
        on!(tx, c => sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(c)
            .await
            .map(drop))?;
        let snapshot: String = on!(tx, c => sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(c)
            .await)?;
        let contents = contents(&mut tx).await?;
        // The snapshot stays valid while this transaction is open.
        let done = work(snapshot, contents).await;
        tx.commit().await?;
        done
    }

    /// The schema version of the database this store is on.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        let mut conn = self.pool.acquire().await?;
        applied_schema(&mut conn).await.map(|v| v.unwrap_or(0))
    }
}

/// Opens the SQLite database copy `file` to read it and never change it.
pub async fn open_copy(file: &Path) -> Result<SqliteCopy, Error> {
    let options = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .immutable(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{} is no SQLite database", file.display()),
            )
            .with_source(e)
        })?;
    Ok(SqliteCopy(Pool::Sqlite(pool)))
}

/// A SQLite database copy, open to read.
pub struct SqliteCopy(Pool);

impl SqliteCopy {
    /// What the copy holds.
    pub async fn contents(&self) -> Result<Contents, Error> {
        contents(&mut self.0.acquire().await?).await
    }

    /// `PRAGMA integrity_check`'s findings: empty when the file is sound.
    pub async fn integrity_problems(&self) -> Result<Vec<String>, Error> {
        let Pool::Sqlite(pool) = &self.0 else {
            unreachable!("a copy is SQLite")
        };
        let found: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(pool)
            .await?;
        Ok(found.into_iter().filter(|f| f != "ok").collect())
    }

    pub async fn close(self) {
        let Pool::Sqlite(pool) = self.0 else {
            unreachable!("a copy is SQLite")
        };
        pool.close().await;
    }
}

/// The newest migration the database on `c` applied; `None` for a database not yet made.
pub(super) async fn applied_schema(c: &mut impl Connection) -> Result<Option<i64>, Error> {
    let made: bool = match c.on() {
        Either::Sqlite(c) => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')",
            )
            .fetch_one(c)
            .await?
        }
        Either::Postgres(c) => {
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(c)
                .await?
        }
    };
    if !made {
        return Ok(None);
    }
    let version: Option<i64> = on!(c, c => sqlx::query_scalar(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(c).await)?;
    Ok(version)
}

/// The rows per table, and the objects they name, read on one connection (or transaction).
pub(super) async fn contents(c: &mut impl Connection) -> Result<Contents, Error> {
    let schema_version = applied_schema(c).await?.unwrap_or(0);
    let tables: Vec<String> = match c.on() {
        Either::Sqlite(c) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
             ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(c)
        .await?,
        Either::Postgres(c) => {
            sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name",
            )
            .fetch_all(c)
            .await?
        }
    };
    let mut rows = BTreeMap::new();
    for table in tables {
        let count = format!("SELECT COUNT(*) FROM \"{table}\"");
        let n: i64 = on!(c, c => sqlx::query_scalar(&count).fetch_one(c).await)?;
        rows.insert(table, n);
    }
    let snapshots = on!(c, c => sqlx::query_as(
        "SELECT camera_id, idempotency_key FROM events WHERE snapshot_bytes > 0 ORDER BY id")
        .fetch_all(c).await)?;
    let clips = on!(c, c => sqlx::query_as(
        "SELECT camera_id, idempotency_key FROM events WHERE clip_bytes > 0 ORDER BY id")
        .fetch_all(c).await)?;
    let shared_pictures = on!(c, c => sqlx::query_scalar(
        "SELECT id FROM dispatch_requests WHERE snapshot_bytes > 0 ORDER BY id")
        .fetch_all(c).await)?;
    Ok(Contents {
        schema_version,
        rows,
        named: NamedObjects {
            snapshots,
            clips,
            shared_pictures,
        },
    })
}

/// What a database is, looked at without changing it: for `check-config` and for a restore,
/// which goes only into a database with no table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub engine: Engine,
    /// `None`: no database made yet.
    pub schema_version: Option<i64>,
    pub tables: i64,
}

/// Looks at the SQLite database in `data_dir`, if there is one, without changing it.
pub async fn probe_sqlite(data_dir: &Path) -> Result<Probe, Error> {
    let file = data_dir.join(super::DB_FILE);
    if !file.exists() {
        return Ok(Probe {
            engine: Engine::Sqlite,
            schema_version: None,
            tables: 0,
        });
    }
    let options = SqliteConnectOptions::new().filename(&file).read_only(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let probed = probe(
        &mut Pool::Sqlite(pool.clone()).acquire().await?,
        Engine::Sqlite,
    )
    .await;
    pool.close().await;
    probed
}

/// Looks at the PostgreSQL database at `url` without changing it.
pub async fn probe_postgres(url: &url::Url, database: &DatabaseConfig) -> Result<Probe, Error> {
    let pool = super::connect_postgres(url, database, 1).await?;
    let probed = probe(
        &mut Pool::Postgres(pool.clone()).acquire().await?,
        Engine::Postgres,
    )
    .await;
    pool.close().await;
    probed
}

async fn probe(conn: &mut Conn, engine: Engine) -> Result<Probe, Error> {
    let tables: i64 = match conn.on() {
        Either::Sqlite(c) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
                .fetch_one(c)
                .await?
        }
        Either::Postgres(c) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_one(c)
        .await?,
    };
    Ok(Probe {
        engine,
        schema_version: applied_schema(conn).await?,
        tables,
    })
}
