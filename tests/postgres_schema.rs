//! The PostgreSQL schema (`relay/migrations/postgres`, issue 20) on a real server: several
//! relay nodes starting at once migrate it once, and it refuses what the SQLite schema's
//! CHECKs, unique indexes and trigger refuse, so a store on either keeps the same rules.

mod common;

use anyhow::{Context, Result, ensure};
use eyeward_testkit::postgres::Postgres;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A node's pool on `url`, with the schema migrated.
async fn migrated(url: &str) -> Result<PgPool> {
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    sqlx::migrate!("relay/migrations/postgres")
        .run(&pool)
        .await?;
    Ok(pool)
}

/// The SQLSTATE of a statement's failure (`None` if it succeeded).
async fn refusal(pool: &PgPool, sql: &str) -> Option<String> {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        Err(e) => Some(format!("not a database error: {e}")),
    }
}

const CHECK: &str = "23514";
const UNIQUE: &str = "23505";
const RAISED: &str = "P0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_starting_at_once_migrate_once() -> Result<()> {
    let pg = Postgres::start()?;
    let url = pg.url("postgres");
    let nodes = (0..4).map(|_| migrated(&url));
    let pools = futures_util::future::try_join_all(nodes).await?;
    let pool = &pools[0];
    let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await?;
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/relay/migrations/postgres"
    ))?
    .count();
    assert_eq!(applied as usize, files, "each migration once");
    // Its one-row tables were seeded once, not once per node.
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM revocations")
        .fetch_one(pool)
        .await?;
    assert_eq!(rows, 1);
    // And a node starting later finds nothing to do.
    migrated(&url).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_what_the_sqlite_schema_refuses() -> Result<()> {
    let pg = Postgres::start()?;
    let pool = migrated(&pg.url("postgres")).await?;
    let account = |role: &str, email: &str| {
        format!(
            "INSERT INTO accounts (role, email, name, guard_center, lang, password_hash, created_at) \
             VALUES ('{role}', '{email}', 'Taro', 'tokyo', 'ja', 'h', 1)"
        )
    };
    ensure!(
        refusal(&pool, &account("customer", "a@example.jp"))
            .await
            .is_none()
    );
    let refusals = [
        (account("admin", "b@example.jp"), CHECK, "a role nobody has"),
        (
            account("customer", "a@example.jp"),
            UNIQUE,
            "an email taken",
        ),
        (
            "INSERT INTO cameras (customer_id, name, model, plan, source_kind, created_at) \
             VALUES (1, 'Porch', 'fixed', 'camera-only', 'rtsp', 1)"
                .to_owned(),
            CHECK,
            "an RTSP camera without its URL",
        ),
        (
            "INSERT INTO arming_switches (customer_id, days, minute, mode, created_at) \
             VALUES (1, 127, 1440, 'away', 1)"
                .to_owned(),
            CHECK,
            "a minute past the day",
        ),
    ];
    for (sql, code, what) in &refusals {
        assert_eq!(refusal(&pool, sql).await.as_deref(), Some(*code), "{what}");
    }

    // A camera's plan is fixed when it is provisioned.
    sqlx::query(
        "INSERT INTO cameras (customer_id, name, model, plan, source_kind, created_at) \
         VALUES (1, 'Porch', 'pan-tilt', 'dispatch', 'agent', 1)",
    )
    .execute(&pool)
    .await?;
    let upgrade = "UPDATE cameras SET plan = 'camera-only' WHERE name = 'Porch'";
    assert_eq!(refusal(&pool, upgrade).await.as_deref(), Some(RAISED));
    let rename = "UPDATE cameras SET name = 'Porch', plan = 'dispatch' WHERE name = 'Porch'";
    assert_eq!(
        refusal(&pool, rename).await,
        None,
        "the same plan is no change"
    );

    // One open dispatch request per camera; a closed one leaves room for the next.
    let request = "INSERT INTO dispatch_requests (customer_id, camera_id, camera_name, \
                   guard_center, state, fee_yen, share_snapshot, share_live, created_at, \
                   updated_at) SELECT customer_id, id, name, 'tokyo', 'requested', 5500, TRUE, TRUE, 1, 1 \
                   FROM cameras WHERE name = 'Porch'";
    assert_eq!(refusal(&pool, request).await, None);
    assert_eq!(refusal(&pool, request).await.as_deref(), Some(UNIQUE));
    sqlx::query("UPDATE dispatch_requests SET state = 'cancelled'")
        .execute(&pool)
        .await?;
    assert_eq!(refusal(&pool, request).await, None);

    // Ids are never reused, even after the newest row is deleted (a refused insert uses one
    // up too: ids are handed out, not counted).
    let (before,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM accounts")
        .fetch_one(&pool)
        .await?;
    sqlx::query("DELETE FROM accounts WHERE id = $1")
        .bind(before)
        .execute(&pool)
        .await?;
    sqlx::query(&account("operator", "c@example.jp"))
        .execute(&pool)
        .await?;
    let (after,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM accounts")
        .fetch_one(&pool)
        .await
        .context("the new account")?;
    assert!(after > before, "id {after} after {before}");
    Ok(())
}
