//! The upgrade path from one machine to the company's servers (issue 20): `eyeward-relay admin
//! migrate-storage` copies a populated single-node installation (SQLite and pictures in its
//! folder) into PostgreSQL and a Garage bucket, again without copying twice, and picks up
//! where a broken copy stopped; then the relay serves from the new backends with every
//! customer, camera, event picture, mail state and dispatch record as it was, its ids
//! included, and gives no id twice.

mod common;

use anyhow::{Context, Result, ensure};
use common::smtp::{Smtp, confirmed_address};
use common::{Relay, Site, status_json};
use eyeward_testkit::garage::Garage;
use eyeward_testkit::postgres::Postgres;
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

/// What a customer and the admin see of an installation, to compare before and after.
async fn everything(relay: &Relay, alice: &common::Client) -> Result<Value> {
    let mut seen = serde_json::Map::new();
    for path in [
        "/api/me",
        "/api/cameras",
        "/api/alert-addresses",
        "/api/dispatch-requests",
        "/api/arming",
    ] {
        let (status, body) = status_json(alice.get(path).await?).await?;
        ensure!(status == 200, "{path}: {status} {body}");
        seen.insert(path.to_owned(), body);
    }
    let (_, cameras) = status_json(alice.get("/api/cameras").await?).await?;
    for camera in cameras.as_array().context("cameras")? {
        let path = format!("/api/cameras/{}/events?limit=200", camera["id"]);
        let (_, events) = status_json(alice.get(&path).await?).await?;
        // Each snapshot's bytes, read back through the relay.
        for event in events.as_array().context("events")? {
            if let Some(url) = event["snapshot_url"].as_str() {
                let bytes = alice.get(url).await?.bytes().await?;
                seen.insert(url.to_owned(), json!(bytes.len()));
                seen.insert(format!("{url}#sum"), json!(checksum(&bytes)));
            }
        }
        seen.insert(path, events);
    }
    for list in ["customer", "camera", "guard"] {
        seen.insert(format!("admin {list}"), relay.admin(&[list, "list"], "")?);
    }
    Ok(Value::Object(seen))
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `admin migrate-storage` on `relay`'s config; its JSON answer.
fn migrate(relay: &Relay, to: &str) -> Result<Value> {
    relay.admin(&["migrate-storage", "--to", to, "--objects", "s3"], "")
}

/// Rows the last run copied, over all tables.
fn copied(answer: &Value) -> i64 {
    answer["tables"]
        .as_array()
        .map_or(0, |t| t.iter().filter_map(|t| t["copied"].as_i64()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_installation_moves_to_postgres_and_s3_with_everything_intact() -> Result<()> {
    let smtp = Smtp::start()?;
    // The installation as it runs today: SQLite and files, whatever the test pass is on.
    let site = Site::new(
        "127.0.0.1:0",
        &format!(
            "[mail]\nsmtp_url = \"{}\"\n[database]\n[storage]\n",
            smtp.url()
        ),
    )?;
    let mut relay = Relay::run(site)?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.set_home(alice_id, "東京都千代田区1-1", "35.68,139.76")?;
    let bob_id = relay.customer("b@example.jp", "Bob", "east", PW)?;
    relay.guard("tokyo", "Guard One", "35.69,139.70")?;
    let porch = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let porch_id = porch["id"].as_i64().context("id")?;
    let token = porch["agent_token"].as_str().context("token")?.to_owned();
    let gate = relay.camera(bob_id, "Gate", "fixed", "camera-only", "agent")?;
    // A camera removed: its id must never come back.
    let gone = relay.camera(alice_id, "Old", "fixed", "camera-only", "agent")?;
    relay.admin(&["camera", "remove", "--id", &gone["id"].to_string()], "")?;

    let alice = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;
    for n in 0..12 {
        let upload = common::upload_event(
            &relay,
            &token,
            &format!("move-{n:04}"),
            &common::jpeg(320, 180),
        )
        .await?;
        ensure!(upload.status() == 201, "upload {n}: {}", upload.status());
    }
    let request = common::request_dispatch(
        &alice,
        &json!({"camera_id": porch_id, "share_snapshot": true}),
    )
    .await?;
    let put = alice
        .request(
            reqwest::Method::PUT,
            &format!("/api/dispatch-requests/{request}/snapshot"),
        )
        .header("content-type", "image/jpeg")
        .body(common::jpeg(640, 360))
        .send()
        .await?;
    ensure!(put.status() == 204, "shared picture: {}", put.status());
    let (status, _) = status_json(
        alice
            .post(
                "/api/arming/schedule",
                &json!({"days": ["mon"], "time": "08:00", "mode": "away"}),
            )
            .await?,
    )
    .await?;
    ensure!(status == 201, "arming switch: {status}");
    let before = everything(&relay, &alice).await?;
    relay.stop()?;

    // The company's servers; the bucket goes into the config first.
    let pg = Postgres::start()?;
    let url = pg.database()?;
    let garage = Garage::start()?;
    let storage = garage.place().config(relay.dir.path())?;
    // A database on this machine, without TLS.
    let config = std::fs::read_to_string(&relay.config)?
        .replace("[database]\n", "[database]\ntls = \"disable\"\n")
        .replace("[storage]\n", &storage);
    std::fs::write(&relay.config, &config)?;

    let first = migrate(&relay, &url)?;
    assert!(copied(&first) > 20, "{first}");
    assert_eq!(
        first["pictures"]["pictures"], 13,
        "12 snapshots and 1 shared picture"
    );
    assert_eq!(first["pictures"]["copied"], 13);
    // Again: nothing is copied twice.
    let again = migrate(&relay, &url)?;
    assert_eq!(copied(&again), 0, "{again}");
    assert_eq!(again["pictures"]["copied"], 0);
    // A copy broken off half-way (rows and pictures missing) is completed by the next run.
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    psql("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id DESC LIMIT 5)")?;
    let bucket = eyeward_relay::objects::Objects::open(
        relay.dir.path(),
        &eyeward_relay::config::Config::parse(&format!("{storage}\n"))?.storage,
    )
    .await?;
    let snapshots = bucket.list("snapshots").await?;
    for listed in snapshots.iter().take(3) {
        bucket
            .delete(&eyeward_relay::objects::ObjectKey::listed(
                "snapshots",
                listed,
            ))
            .await?;
    }
    let resumed = migrate(&relay, &url)?;
    assert_eq!(copied(&resumed), 5, "{resumed}");
    assert_eq!(resumed["pictures"]["copied"], 3);

    // The relay on the new backends: everything as it was, the old sessions included.
    std::fs::write(
        &relay.config,
        config.replace("[database]\n", &format!("[database]\nurl = {url:?}\n")),
    )?;
    relay.restart()?;
    let after = everything(&relay, &alice).await?;
    assert_eq!(after, before);
    // The pictures come from the bucket now, not the old folder.
    std::fs::remove_dir_all(relay.dir.path().join("data/snapshots"))?;
    std::fs::remove_dir_all(relay.dir.path().join("data/dispatch"))?;
    assert_eq!(everything(&relay, &alice).await?, before);
    // The agent's token still works, and new ids come after every id ever given.
    let upload =
        common::upload_event(&relay, &token, "after-0001", &common::jpeg(320, 180)).await?;
    assert_eq!(upload.status(), 201);
    let new_camera = relay.camera(alice_id, "New", "fixed", "camera-only", "agent")?;
    assert!(
        new_camera["id"].as_i64() > gone["id"].as_i64(),
        "{new_camera} after the removed {gone}"
    );
    assert!(gate["id"].as_i64() < new_camera["id"].as_i64());
    assert!(!relay.log().contains("internal error"), "{}", relay.log());
    Ok(())
}
