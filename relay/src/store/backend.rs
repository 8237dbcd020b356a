//! The one per-backend piece of the store: SQLite in `data_dir` (the embedded default) or
//! PostgreSQL, each through its own sqlx driver.
//!
//! The store's queries are written once. [`on!`] runs a query on whichever backend a pool, a
//! transaction or a connection belongs to: its body is compiled once per backend, so each
//! runs on its native driver with its own strict types (sqlx's `Any` driver cannot read
//! SQLite's BOOLEAN columns). What differs is here: how a database is opened and migrated, how
//! a transaction begins, and what the backends' errors mean; and one statement of
//! `events.rs`, an upload's, which PostgreSQL takes in one round trip where SQLite takes a
//! transaction.

use crate::error::Error;
use sqlx::Transaction;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};

/// One of the two backends' values.
pub(crate) enum Either<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// Runs `$body` with `$c` bound to the executor of whichever backend `$db` (a [`Pool`], or
/// anything that is a [`Connection`]) is on.
macro_rules! on {
    ($db:expr, $c:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::store::backend::Connection as _;
        match $db.on() {
            $crate::store::backend::Either::Sqlite($c) => $body,
            $crate::store::backend::Either::Postgres($c) => $body,
        }
    }};
}
pub(crate) use on;

/// A pool of connections to one database.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn on(&self) -> Either<&SqlitePool, &PgPool> {
        match self {
            Pool::Sqlite(p) => Either::Sqlite(p),
            Pool::Postgres(p) => Either::Postgres(p),
        }
    }

    /// A transaction, for a change.
    ///
    /// SQLite: most changes read before they write, and SQLite cannot turn a reading
    /// transaction into a writing one once another connection has written (it answers busy at
    /// once, whatever the busy timeout: a 503 for a rename or an event upload that met a
    /// login's write). So every transaction takes the write lock first and waits for it like
    /// any writer.
    ///
    /// PostgreSQL: READ COMMITTED, its default. Races are decided the same way on both, by
    /// conditional updates (`UPDATE … WHERE state = <decided from>`) and unique indexes: under
    /// READ COMMITTED the second of two such updates waits for the first to commit, then
    /// re-checks its `WHERE` on the new row and changes nothing.
    pub(crate) async fn begin(&self) -> Result<Tx, Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A connection of the pool, for reads that belong together.
    pub(crate) async fn acquire(&self) -> Result<Conn, Error> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }
}

/// Something queries run on one at a time: a transaction or a pooled connection.
pub(crate) trait Connection {
    fn on(&mut self) -> Either<&mut SqliteConnection, &mut PgConnection>;
}

/// A transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Connection for Tx {
    fn on(&mut self) -> Either<&mut SqliteConnection, &mut PgConnection> {
        match self {
            Tx::Sqlite(t) => Either::Sqlite(&mut **t),
            Tx::Postgres(t) => Either::Postgres(&mut **t),
        }
    }
}

/// A connection taken from the pool, given back when dropped.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Connection for Conn {
    fn on(&mut self) -> Either<&mut SqliteConnection, &mut PgConnection> {
        match self {
            Conn::Sqlite(c) => Either::Sqlite(&mut **c),
            Conn::Postgres(c) => Either::Postgres(&mut **c),
        }
    }
}
