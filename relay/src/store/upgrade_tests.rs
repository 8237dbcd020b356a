//! Upgrades from every schema this project has shipped. Each test makes a database at each
//! earlier schema version from the migrations of that time (they are kept in the tree,
//! unchanged, as sqlx checks), fills it with what a relay of that version held, then opens it
//! as this relay does and reads it back through the store. No database file is committed: the
//! old schemas are made afresh each run.

use super::backend::Pool;
use super::backup::{Engine, probe_sqlite};
use super::testing::{customer_audit, new_postgres_database, on_servers};
use super::*;
use eyeward::{CustomerId, Email, GuardCenter, Language, Role, UnixMillis};
use sqlx::migrate::Migrator;
use std::borrow::Cow;

/// What a relay of each version held, by the version of each engine from which the SQL
/// runs: two accounts and a camera with its agent token and history; two events; a
/// confirmed alert address; a completed dispatch request with its charge. Ids are given by
/// the database in order (1, 2, ...).
const SEEDS: &[(Engine, i64, &str)] = &[
    (Engine::Sqlite, 1, ACCOUNTS_AND_CAMERA),
    (Engine::Postgres, 1, ACCOUNTS_AND_CAMERA),
    (Engine::Sqlite, 2, EVENTS),
    (Engine::Postgres, 1, EVENTS),
    (Engine::Sqlite, 4, ALERT_ADDRESS),
    (Engine::Postgres, 1, ALERT_ADDRESS),
    (Engine::Sqlite, 6, DISPATCH),
    (Engine::Postgres, 1, DISPATCH),
];

const ACCOUNTS_AND_CAMERA: &str = "
INSERT INTO accounts (role, email, name, guard_center, lang, password_hash, created_at)
    VALUES ('customer', 'old@example.jp', 'Old Customer', 'tokyo', 'en', 'hash-of-old', 1000);
INSERT INTO accounts (role, email, name, guard_center, lang, password_hash, created_at)
    VALUES ('operator', 'op@example.jp', 'Operator', 'tokyo', 'ja', 'hash-of-op', 1000);
INSERT INTO cameras (customer_id, name, model, plan, source_kind, created_at)
    VALUES (1, 'Porch', 'fixed', 'dispatch', 'agent', 1000);
INSERT INTO agent_tokens (camera_id, token_hash, created_at) VALUES (1, 'agent-token-hash', 1000);
INSERT INTO history (at, customer_id, actor_kind, actor_name, channel, action, detail)
    VALUES (1000, 1, 'admin', 'admin', 'admin-cli', 'camera.add', 'Porch');
";

const EVENTS: &str = "
INSERT INTO events (camera_id, idempotency_key, captured_at, received_at, score, bbox, width,
    height, snapshot_bytes)
    VALUES (1, 'old-event-1', 2000, 2000, 0.05, '[0,0,8,8]', 64, 64, 100),
           (1, 'old-event-2', 3000, 3000, 0.06, '[8,8,8,8]', 64, 64, 120);
";

const ALERT_ADDRESS: &str = "
INSERT INTO alert_addresses (customer_id, email, confirmed_at, unsubscribe, created_at)
    VALUES (1, 'home@example.jp', 1500, 'old-unsubscribe-token', 1400);
";

const DISPATCH: &str = "
INSERT INTO dispatch_requests (customer_id, camera_id, camera_name, guard_center, state, note,
    fee_yen, share_snapshot, share_live, created_at, updated_at)
    VALUES (1, 1, 'Porch', 'tokyo', 'completed', 'the gate code is 1234', 8000, TRUE, FALSE,
    4000, 5000);
INSERT INTO charges (customer_id, request_id, amount_yen, charged_at) VALUES (1, 1, 8000, 5000);
";

fn migrator(engine: Engine) -> Migrator {
    match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
    }
}

/// Brings the database on `pool` to schema `version` with the migrations of that time,
/// seeding each step's rows as soon as its tables are there.
async fn made_at_version(pool: &Pool, engine: Engine, version: i64) {
    let all = migrator(engine);
    let mut seeded = 0;
    for step in all.iter().filter(|m| m.version <= version) {
        let upto = Migrator {
            migrations: Cow::Owned(
                all.iter()
                    .filter(|m| m.version <= step.version)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        match pool {
            Pool::Sqlite(p) => upto.run(p).await.unwrap(),
            Pool::Postgres(p) => upto.run(p).await.unwrap(),
        }
        for (_, _, sql) in SEEDS
            .iter()
            .filter(|(e, from, _)| *e == engine && *from <= step.version)
            .skip(seeded)
        {
            on!(pool, c => sqlx::raw_sql(sql).execute(c).await.map(drop)).unwrap();
            seeded += 1;
        }
    }
}

/// Checks that `store`, upgraded from schema `version` of `engine`, holds every row seeded
/// into it, as the store reads them now.
async fn holds_what_was_seeded(store: &Store, version: i64, engine: Engine) {
    let seeded = |sql: &str| {
        SEEDS
            .iter()
            .any(|(e, from, s)| *e == engine && *s == sql && *from <= version)
    };
    let holder = store
        .account_for_login(&Email::parse("old@example.jp").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.account.id, 1, "schema {version}");
    assert_eq!(holder.account.role, Role::Customer);
    assert_eq!(holder.password_hash, "hash-of-old");
    let cameras = store.cameras_of(CustomerId(1)).await.unwrap();
    assert_eq!(cameras.len(), 1);
    assert_eq!(cameras[0].name, "Porch");
    let by_token = store
        .camera_for_agent_token("agent-token-hash")
        .await
        .unwrap();
    assert_eq!(by_token.map(|c| c.id), Some(cameras[0].id));
    if seeded(EVENTS) {
        let events = store
            .events_of(CustomerId(1), None, None, EventPage::default(), 10)
            .await
            .unwrap();
        let keys: Vec<&str> = events.iter().map(|e| e.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["old-event-2", "old-event-1"], "schema {version}");
        assert_eq!(events[0].snapshot_bytes, 120);
    }
    if seeded(ALERT_ADDRESS) {
        let addresses = store.alert_addresses(CustomerId(1)).await.unwrap();
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].confirmed_at, Some(1500));
    }
    if seeded(DISPATCH) {
        let requests = store.dispatch(1).await.unwrap().unwrap();
        assert_eq!(requests.note.as_deref(), Some("the gate code is 1234"));
        assert_eq!(requests.fee_yen, 8000);
        let charges = store.charges_of(CustomerId(1)).await.unwrap();
        assert_eq!(charges.len(), 1);
    }
    // The upgraded database gives new ids after the old ones, and takes new rows.
    let audit = customer_audit(1, UnixMillis(9000));
    let new = store
        .create_account(
            NewAccount {
                role: Role::Customer,
                email: Email::parse("new@example.jp").unwrap(),
                name: eyeward::DisplayName::parse("New").unwrap(),
                guard_center: GuardCenter::Tokyo,
                lang: Language::Ja,
                password_hash: "h".into(),
            },
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(new, 3, "schema {version}");
}

/// The engine the tests run on (see `testing::on_servers`).
fn engine_under_test() -> Engine {
    if on_servers() {
        Engine::Postgres
    } else {
        Engine::Sqlite
    }
}

#[tokio::test]
async fn a_database_of_every_earlier_schema_upgrades_with_its_data() {
    let engine = engine_under_test();
    let first_with_data = 1;
    for version in first_with_data..engine.newest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = match engine {
            Engine::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join(DB_FILE))
                    .create_if_missing(true)
                    .foreign_keys(true);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                made_at_version(&Pool::Sqlite(pool.clone()), engine, version).await;
                pool.close().await;
                let probed = probe_sqlite(dir.path()).await.unwrap();
                assert_eq!(probed.schema_version, Some(version));
                let store = Store::open_sqlite(dir.path()).await.unwrap();
                // The database as it was is kept beside it.
                let kept = dir.path().join(format!("{DB_FILE}.schema-{version}"));
                assert!(kept.exists(), "no copy before upgrading from {version}");
                store
            }
            Engine::Postgres => {
                let (url, database) = new_postgres_database();
                let pool = connect_postgres(&url, &database, 2).await.unwrap();
                made_at_version(&Pool::Postgres(pool.clone()), engine, version).await;
                pool.close().await;
                Store::open_postgres(&url, &database).await.unwrap()
            }
        };
        assert_eq!(
            store.schema_version().await.unwrap(),
            engine.newest_schema()
        );
        holds_what_was_seeded(&store, version, engine).await;
    }
}

/// A fresh database of `engine`'s, migrated: its SQLite folder (kept by the guard) or its
/// PostgreSQL URL and config.
async fn fresh(engine: Engine) -> (tempfile::TempDir, Option<(url::Url, DatabaseConfig)>, Store) {
    let dir = tempfile::tempdir().unwrap();
    match engine {
        Engine::Sqlite => {
            let store = Store::open_sqlite(dir.path()).await.unwrap();
            (dir, None, store)
        }
        Engine::Postgres => {
            let (url, database) = new_postgres_database();
            let store = Store::open_postgres(&url, &database).await.unwrap();
            (dir, Some((url, database)), store)
        }
    }
}

async fn contents_of(store: &Store) -> super::backup::Contents {
    super::backup::contents(&mut store.pool.acquire().await.unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_from_a_newer_relay_is_refused_and_left_as_it_was() {
    let engine = engine_under_test();
    let (dir, postgres, store) = fresh(engine).await;
    let newer = engine.newest_schema() + 1;
    on!(store.pool, c => sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer relay', TRUE, $2, 0)")
        .bind(newer)
        .bind(vec![0u8; 48])
        .execute(c)
        .await
        .map(drop))
    .unwrap();
    let before = contents_of(&store).await;
    let opened = match &postgres {
        None => Store::open_sqlite(dir.path()).await,
        Some((url, database)) => Store::open_postgres(url, database).await,
    };
    let refused = opened.err().expect("a newer database is refused");
    assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
    let said = refused.to_string();
    assert!(
        said.contains(&format!("schema version {newer}")) && said.contains("newer relay"),
        "{said}"
    );
    assert_eq!(contents_of(&store).await, before);
    let copies = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".schema-"))
        .count();
    assert_eq!(copies, 0, "no upgrade copy of a refused database");
}
