//! Storage: the relay's database behind one handle.
//!
//! SQLite (WAL) in `data_dir` is the embedded default. Queries use `$N` parameters and
//! portable types so that PostgreSQL can follow without a rewrite. Every change that a person
//! asked for is written together with its operation-history entry, in one transaction.

mod accounts;
mod arming;
mod backend;
pub mod backup;
mod cameras;
mod cluster;
mod copy;
mod dispatch;
mod events;
mod guard_phones;
mod history;
mod household;
mod identity;
mod mail;
mod passkeys;
mod push;
mod schema;
mod sessions;
#[cfg(test)]
mod upgrade_tests;

pub use accounts::{Account, AccountWithHash, NewAccount};
pub use arming::{Arming, MAX_SWITCHES, StoredSwitch};
pub use cameras::{Camera, NewCamera};
pub use cluster::{CHANGES, JobsLock, Owner};
pub use dispatch::{
    Charge, Dispatch, DispatchStep, Guard, Home, HomeNotes, NewDispatch, StepDetails,
};
pub use events::{AlertPolicy, Event, EventPage, Gap, NewEvent, StoredClip, is_taken_key};
pub use guard_phones::{GUARD_SESSION_FOR, GuardSession};
pub use history::{Actor, Audit, Channel, HistoryEntry};
pub use household::{Invitation, MAX_MEMBERS, Member, NewInvitation};
pub use identity::IdentityCheckTurn;
pub use mail::{
    AlertAddress, MAX_ALERT_ADDRESSES, MailKind, NoticesWanted, OutboxMail, UNSUBSCRIBE_FOR,
};
pub use passkeys::{NewPasskey, PasskeyEntry, StoredPasskey};
pub use push::{MAX_DEVICES, NewDevice, PushDevice, PushTarget, service_of};
pub use sessions::SessionRow;

use crate::config::{DatabaseConfig, DatabaseTls};
use crate::error::{Error, ErrorKind};
use backend::{Pool, Tx, on};
pub use copy::TableCopy;
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// The file name of the database inside `data_dir`.
pub const DB_FILE: &str = "eyeward.db";

/// How long a PostgreSQL connection may sit idle in the pool before it is pinged when lent.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Opens the configured database: PostgreSQL when `database.url` is set, else SQLite in
    /// `data_dir`.
    pub async fn open(data_dir: &Path, database: &DatabaseConfig) -> Result<Store, Error> {
        match &database.url {
            Some(url) => Store::open_postgres(url, database).await,
            None => Store::open_sqlite(data_dir).await,
        }
    }

    /// Opens (creating if needed) the SQLite database in `data_dir` and brings its schema up
    /// to date.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create data_dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it is acknowledged, even after power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // The admin CLI may write while the server runs; wait rather than fail.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        // sqlx takes no lock for SQLite migrations; the server and an admin command starting
        // on a fresh folder at once would both try them. A file lock makes them take turns.
        let lock = std::fs::File::create(data_dir.join("migrate.lock"))
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| Error::internal(format!("cannot lock {}: {e}", data_dir.display())))?;
        let migrated = match Store::before_migrating_sqlite(&pool, data_dir).await {
            Ok(()) => sqlx::migrate!("./migrations/sqlite")
                .run(&pool)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        let rebuilt = match migrated {
            Ok(()) => schema::rebuild_outdated_tables(&pool).await,
            Err(e) => Err(e),
        };
        drop(lock);
        if rebuilt? > 0 {
            tracing::info!("tables rebuilt: ids never reused, checks as they are now");
        }
        Store::opened(Pool::Sqlite(pool)).await
    }

    /// Refuses a database a newer relay wrote, and keeps a copy of one about to be upgraded:
    /// each migration commits whole, so a failed upgrade leaves the database at the last
    /// version it reached (the relay refuses to start; started again it goes on from there),
    /// and the copy is the way back from anything else (docs/operations.md, "Upgrades").
    async fn before_migrating_sqlite(
        pool: &sqlx::SqlitePool,
        data_dir: &Path,
    ) -> Result<(), Error> {
        let mut conn = Pool::Sqlite(pool.clone()).acquire().await?;
        let Some(applied) = backup::applied_schema(&mut conn).await? else {
            return Ok(());
        };
        drop(conn);
        let engine = backup::Engine::Sqlite;
        engine.refuse_newer(applied)?;
        let newest = engine.newest_schema();
        let copy = data_dir.join(format!("{DB_FILE}.schema-{applied}"));
        if applied < newest && !copy.exists() {
            let partial = data_dir.join(format!("{DB_FILE}.schema-{applied}.partial"));
            let _ = std::fs::remove_file(&partial);
            Store {
                pool: Pool::Sqlite(pool.clone()),
            }
            .copy_sqlite_into(&partial)
            .await?;
            std::fs::rename(&partial, &copy)
                .map_err(|e| Error::storage("the copy before the upgrade", &e))?;
            tracing::info!(
                from = applied,
                to = newest,
                copy = %copy.display(),
                "upgrading the database; its copy as it was is kept"
            );
        }
        Ok(())
    }

    /// Connects to PostgreSQL at `url` and brings its schema up to date. sqlx holds a
    /// PostgreSQL advisory lock while it migrates, so nodes starting at once migrate once.
    pub async fn open_postgres(url: &url::Url, database: &DatabaseConfig) -> Result<Store, Error> {
        let pool = connect_postgres(url, database, database.pool_size).await?;
        let mut conn = Pool::Postgres(pool.clone()).acquire().await?;
        if let Some(applied) = backup::applied_schema(&mut conn).await? {
            backup::Engine::Postgres.refuse_newer(applied)?;
        }
        drop(conn);
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Store::opened(Pool::Postgres(pool)).await
    }
}

/// A pool of at most `size` connections to PostgreSQL at `url`, as `database` says; nothing
/// is changed in it.
async fn connect_postgres(
    url: &url::Url,
    database: &DatabaseConfig,
    size: u32,
) -> Result<sqlx::PgPool, Error> {
    let mut options = PgConnectOptions::from_url(url)
        .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("database.url: {e}")))?
        .application_name("eyeward-relay")
        .ssl_mode(match database.tls {
            DatabaseTls::VerifyFull => PgSslMode::VerifyFull,
            DatabaseTls::Require => PgSslMode::Require,
            DatabaseTls::Disable => PgSslMode::Disable,
        })
        .options([(
            "statement_timeout",
            database.statement_timeout.as_millis().to_string(),
        )]);
    if let Some(file) = &database.password_file {
        let password = std::fs::read_to_string(file).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot read database.password_file {}: {e}", file.display()),
            )
        })?;
        options = options.password(password.trim_end_matches(['\r', '\n']));
    }
    if let Some(ca) = &database.ca_file {
        options = options.ssl_root_cert(ca);
    }
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(database.connect_timeout)
        // sqlx pings every connection given back to the pool, and by default once more
        // before handing it out: a round trip per query under load. A connection in use
        // moments ago is known alive; one idle a while (the server may have restarted
        // meanwhile) is pinged first, and a dead one is replaced rather than failing a
        // request.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, "cannot reach the database").with_source(e))
}

impl Store {
    /// The store on a migrated pool, once what older versions left is brought up to date.
    async fn opened(pool: Pool) -> Result<Store, Error> {
        let store = Store { pool };
        // No unsubscribe token stays in clear at rest (see migration 0008).
        let moved = store
            .hash_legacy_unsubscribe_tokens(
                eyeward::clock::Clock::real().now().plus(UNSUBSCRIBE_FOR),
            )
            .await?;
        if moved > 0 {
            tracing::info!(addresses = moved, "unsubscribe tokens now kept hashed");
        }
        Ok(store)
    }

    /// A transaction, for a change (see [`Pool::begin`]).
    async fn begin(&self) -> Result<Tx, Error> {
        self.pool.begin().await
    }

    /// The revocation counter (see [`crate::revocation`]).
    pub async fn revocation_generation(&self) -> Result<i64, Error> {
        let (g,): (i64,) = on!(self.pool, c => sqlx::query_as("SELECT generation FROM revocations")
            .fetch_one(c)
            .await)?;
        Ok(g)
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("SELECT 1").execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// Maps a unique-constraint violation to a 409 with `msg`; anything else stays internal.
fn conflict_on_unique(e: sqlx::Error, msg: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::new(ErrorKind::FailedPrecondition, msg.to_owned())
        }
        _ => e.into(),
    }
}

/// Parses a value the database holds in a checked TEXT column.
fn parse_column<T: std::str::FromStr>(column: &str, value: &str) -> Result<T, Error> {
    value
        .parse()
        .map_err(|_| Error::internal(format!("database holds an unknown {column} {value:?}")))
}

/// Tells the relay's long-lived things to check their grants again (see
/// [`crate::revocation`]): called in the transaction that takes a grant away.
pub(crate) async fn revoke(tx: &mut Tx) -> Result<(), Error> {
    on!(tx, c => sqlx::query("UPDATE revocations SET generation = generation + 1")
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use eyeward::{
        CameraId, CameraModel, CameraSource, CustomerId, DisplayName, Email, Plan, UnixMillis,
    };

    /// The variable that runs the tests on PostgreSQL and S3 (Garage) when it is
    /// `postgres-s3`; `scripts/test.sh` runs them on both backends.
    pub(crate) const BACKEND_VARIABLE: &str = "EYEWARD_TEST_BACKEND";

    /// Whether [`BACKEND_VARIABLE`] asks for PostgreSQL and S3.
    pub(crate) fn on_servers() -> bool {
        match std::env::var(BACKEND_VARIABLE).as_deref() {
            Ok("postgres-s3") => true,
            Ok("embedded") | Err(_) => false,
            Ok(other) => panic!("{BACKEND_VARIABLE}={other}: embedded or postgres-s3"),
        }
    }

    /// A new, empty database of its own on the test process's PostgreSQL, and a config to
    /// reach it.
    pub(crate) fn new_postgres_database() -> (url::Url, DatabaseConfig) {
        let url = eyeward_testkit::postgres::Postgres::shared()
            .database()
            .unwrap();
        let database = DatabaseConfig {
            tls: DatabaseTls::Disable,
            pool_size: 4,
            ..DatabaseConfig::default()
        };
        (url.parse().unwrap(), database)
    }

    /// A store on a new database of its own on the test process's PostgreSQL.
    pub(crate) async fn on_postgres() -> Store {
        let (url, database) = new_postgres_database();
        Store::open_postgres(&url, &database).await.unwrap()
    }

    /// A fresh store, removed when the guard drops: SQLite in a temporary folder, or a new
    /// database of its own on the test process's PostgreSQL.
    pub(crate) async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = if on_servers() {
            on_postgres().await
        } else {
            Store::open_sqlite(dir.path()).await.unwrap()
        };
        (store, dir)
    }

    /// Customer `id`, "Taro", acting through the web at `at`.
    pub(crate) fn customer_audit(id: i64, at: UnixMillis) -> Audit {
        Audit {
            actor: Actor::Customer {
                id,
                name: "Taro".into(),
            },
            channel: Channel::Web,
            at,
        }
    }

    /// A customer with this email (in English, password hash "h").
    pub(crate) async fn customer(s: &Store, email: &str) -> eyeward::CustomerId {
        use eyeward::{DisplayName, Email, GuardCenter, Language, Role, UnixMillis};
        let id = s
            .create_account(
                NewAccount {
                    role: Role::Customer,
                    email: Email::parse(email).unwrap(),
                    name: DisplayName::parse("Taro").unwrap(),
                    guard_center: GuardCenter::Tokyo,
                    lang: Language::En,
                    password_hash: "h".into(),
                },
                &Audit::admin(UnixMillis(1)),
            )
            .await
            .unwrap();
        eyeward::CustomerId(id)
    }

    /// A customer with one agent camera, "Porch".
    pub(crate) async fn porch(s: &Store, audit: &Audit) -> (i64, CameraId) {
        let owner = customer(s, "a@example.jp").await.0;
        let camera = s
            .add_camera(
                NewCamera {
                    customer_id: CustomerId(owner),
                    name: DisplayName::parse("Porch").unwrap(),
                    model: CameraModel::Fixed,
                    plan: Plan::Dispatch,
                    source: CameraSource::Agent,
                    agent_token_hash: Some("t".into()),
                },
                audit,
            )
            .await
            .unwrap();
        (owner, camera)
    }

    /// `home@example.jp`, added for `owner` and confirmed at `t0`.
    pub(crate) async fn confirmed_address(s: &Store, owner: i64, t0: UnixMillis) {
        s.add_alert_address(
            CustomerId(owner),
            &Email::parse("home@example.jp").unwrap(),
            "c",
            t0.plus(Duration::from_secs(3600)),
            "<c@test>",
            |_| Ok(b"confirm".to_vec()),
            &Audit::admin(t0),
        )
        .await
        .unwrap();
        s.confirm_alert_address("c", t0).await.unwrap().unwrap();
    }

    pub(crate) fn motion(camera: CameraId, key: &str, at: UnixMillis) -> NewEvent {
        NewEvent {
            camera,
            idempotency_key: key.into(),
            captured_at: at,
            received_at: at,
            score: 0.05,
            bbox: [0, 0, 16, 16],
            width: 64,
            height: 64,
            snapshot_bytes: 100,
            gap: None,
            clip_coming: false,
        }
    }
}
