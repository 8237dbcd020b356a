//! Backups of a serving relay (`eyeward-relay admin backup`), checked (`verify-backup`) and
//! restored (`restore`) into an empty installation, driven through the real binaries on
//! either backend: SQLite and files in `data_dir`, or PostgreSQL (`pg_dump`) and a bucket.
//!
//! Under load (a live viewer, event uploads at 20 a second, alert mail going out), the
//! restored relay serves every event acknowledged before the backup began, with its picture,
//! and none acknowledged after it ended; the running relay lost nothing acknowledged while
//! the backup ran. A changed picture or a truncated database copy is found by
//! `verify-backup` and by `restore`, which then leaves the installation empty.

mod common;

use anyhow::{Context, Result, ensure};
use common::smtp::{Smtp, confirmed_address};
use common::{
    Client, LOOPBACK_VIEWERS_AND_CAMERAS, Relay, Site, in_loopback_namespace, upload_event,
    wait_online,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// An acknowledged upload: its event's id, which picture it carried, and when the relay's
/// answer came.
struct Acked {
    id: i64,
    picture: usize,
    at: Instant,
}

/// Distinct pictures to upload (each event's picture can be told from the others').
fn pictures(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| common::jpeg(320 + 8 * i as u32, 180))
        .collect()
}

/// The picture of event `id` as `client` gets it: `None` when the relay answers 404.
async fn picture(client: &Client, id: i64) -> Result<Option<Vec<u8>>> {
    let resp = client.get(&format!("/api/events/{id}/snapshot")).await?;
    match resp.status().as_u16() {
        200 => Ok(Some(resp.bytes().await?.to_vec())),
        404 => Ok(None),
        other => anyhow::bail!("event {id}'s picture: {other}"),
    }
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            found.extend(files_under(&entry.path()));
        } else {
            found.push(entry.path());
        }
    }
    found
}

/// `site` holds nothing: no database file, no table, no picture.
async fn is_empty(site: &Site) -> Result<bool> {
    let config = eyeward_relay::config::Config::load(Some(&site.config))?;
    let probe = match &config.database.url {
        None => eyeward_relay::store::backup::probe_sqlite(&config.data_dir).await?,
        Some(url) => eyeward_relay::store::backup::probe_postgres(url, &config.database).await?,
    };
    let mut pictures = 0;
    for folder in ["snapshots", "dispatch", "clips"] {
        pictures += site.pictures(folder).await?.len();
    }
    Ok(probe.tables == 0 && pictures == 0)
}

const UNDER_LOAD: &str = "a_backup_under_load_restores_every_event_acknowledged_before_it";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_event_acknowledged_before_it() -> Result<()> {
    if !in_loopback_namespace(UNDER_LOAD)? {
        return Ok(());
    }
    let smtp = Smtp::start()?;
    let extra = format!(
        "{LOOPBACK_VIEWERS_AND_CAMERAS}[events]\nmax_per_minute_per_camera = 100000\n\
         [mail]\nsmtp_url = \"{}\"\nalert_cooldown = \"1s\"\n",
        smtp.url()
    );
    let relay = Relay::start(&extra)?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;

    // A live viewer of one camera...
    let porch = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let porch_id = porch["id"].as_i64().context("id")?;
    let _agent = relay.start_agent(
        porch["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "Porch",
    )?;
    wait_online(&alice, porch_id, true, Duration::from_secs(20)).await?;
    let (viewer, offer) = common::whep_offer().await?;
    let whep = format!("/api/cameras/{porch_id}/whep");
    let answered = common::post_offer(&alice, &whep, offer).await?;
    ensure!(answered.status() == 201, "WHEP: {}", answered.status());
    let answer = answered.text().await?;
    viewer
        .set_remote_description(
            webrtc::peer_connection::sdp::session_description::RTCSessionDescription::answer(
                answer,
            )?,
        )
        .await?;

    // ...while another uploads 20 events a second, each mailed (one a second: the cooldown).
    let door = relay.camera(owner, "Door", "fixed", "dispatch", "agent")?;
    let token = door["agent_token"].as_str().context("token")?.to_owned();
    let pictures = pictures(20);
    let backup_dir = tempfile::tempdir()?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let acked_so_far = std::sync::atomic::AtomicUsize::new(0);
    let uploads = async {
        let mut acked = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            n += 1;
            let picture = n % pictures.len();
            let resp =
                upload_event(&relay, &token, &format!("load-{n:06}"), &pictures[picture]).await?;
            ensure!(resp.status() == 201, "upload {n}: {}", resp.status());
            let event: Value = resp.json().await?;
            acked.push(Acked {
                id: event["id"].as_i64().context("event id")?,
                picture,
                at: Instant::now(),
            });
            acked_so_far.store(acked.len(), std::sync::atomic::Ordering::Relaxed);
        }
        Ok::<_, anyhow::Error>(acked)
    };
    let backup = async {
        // A hundred events first (five seconds at the load's pace; a loaded machine answers
        // some late), so that the backup has pictures to copy while the load goes on.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked_so_far.load(std::sync::atomic::Ordering::Relaxed) < 100 {
            ensure!(
                Instant::now() < deadline,
                "the load never reached 100 events"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let began = Instant::now();
        let config = relay.config.clone();
        let to = backup_dir.path().to_owned();
        let done = tokio::task::spawn_blocking(move || {
            common::admin(&config, &["backup", "--to", to.to_str().unwrap()], "")
        })
        .await?;
        let ended = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, anyhow::Error>((began, ended, done?))
    };
    let (acked, ran) = tokio::join!(uploads, backup);
    let (acked, (began, ended, summary)) = (acked?, ran?);
    let before: Vec<&Acked> = acked.iter().filter(|a| a.at < began).collect();
    let during = acked
        .iter()
        .filter(|a| a.at >= began && a.at <= ended)
        .count();
    let after: Vec<&Acked> = acked.iter().filter(|a| a.at > ended).collect();
    eprintln!(
        "backup: {summary}; uploads acknowledged before it {}, during it {during}, after it {}",
        before.len(),
        after.len()
    );
    ensure!(
        before.len() >= 100,
        "the load before the backup: {}",
        before.len()
    );
    ensure!(
        during >= 1,
        "no upload was acknowledged while the backup ran"
    );
    ensure!(summary["events"].as_i64() >= Some(before.len() as i64));
    ensure!(summary["vanished"] == 0, "{summary}");

    // The running relay lost nothing, acknowledged during the backup or not; the live view
    // and the mail went on.
    for a in &acked {
        ensure!(
            picture(&alice, a.id).await?.as_deref() == Some(&pictures[a.picture][..]),
            "the running relay lost event {}",
            a.id
        );
    }
    use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState::Connected;
    ensure!(
        viewer.connection_state() == Connected,
        "the live view ended"
    );
    let alerts = smtp
        .received()?
        .iter()
        .filter(|m| m.to == ["home@example.jp"])
        .count();
    ensure!(alerts >= 5, "alert mail during the load: {alerts}");
    viewer.close().await?;

    // Restored into an empty installation, the backup serves every event acknowledged
    // before it began, with its picture, and none acknowledged after it ended.
    let backup_path = backup_dir.path().to_str().context("utf-8")?;
    common::admin(&relay.config, &["verify-backup", "--from", backup_path], "")?;
    let target = Site::new("127.0.0.1:0", &extra)?;
    let restored = target.admin(&["restore", "--from", backup_path], "")?;
    ensure!(
        restored["backup"]["events"] == summary["events"],
        "{restored}"
    );
    let mut copy = Relay::run(target)?;
    let alice_there = copy.login("a@example.jp", PW).await?;
    for a in &before {
        ensure!(
            picture(&alice_there, a.id).await?.as_deref() == Some(&pictures[a.picture][..]),
            "event {} acknowledged before the backup is not restored with its picture",
            a.id
        );
    }
    for a in &after {
        ensure!(
            picture(&alice_there, a.id).await?.is_none(),
            "event {} acknowledged after the backup ended is in it",
            a.id
        );
    }
    copy.stop()?;
    if copy.database.is_none() {
        let file = copy.dir.path().join("data").join("eyeward.db");
        let restored = eyeward_relay::store::backup::open_copy(&file).await?;
        let problems = restored.integrity_problems().await?;
        restored.close().await;
        ensure!(problems.is_empty(), "integrity_check: {problems:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_picture_or_a_truncated_database_copy_is_found_and_never_restored() -> Result<()>
{
    let relay = Relay::start("[events]\nmax_per_minute_per_camera = 1000\n")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let door = relay.camera(owner, "Door", "fixed", "dispatch", "agent")?;
    let token = door["agent_token"].as_str().context("token")?;
    let pictures = pictures(3);
    for (n, picture) in pictures.iter().enumerate() {
        let resp = upload_event(&relay, token, &format!("event-{n:04}"), picture).await?;
        ensure!(resp.status() == 201);
    }
    let dir = tempfile::tempdir()?;
    let to = dir.path().to_str().context("utf-8")?;
    let first = relay.admin(&["backup", "--to", to], "")?;
    ensure!(
        first["objects"] == 3 && first["objects_copied"] == 3,
        "{first}"
    );
    // Taken again into the same folder, it copies only what is new.
    let resp = upload_event(&relay, token, "event-0003", &pictures[0]).await?;
    ensure!(resp.status() == 201);
    let again = relay.admin(&["backup", "--to", to], "")?;
    ensure!(
        again["objects"] == 4 && again["objects_copied"] == 1,
        "{again}"
    );
    relay.admin(&["verify-backup", "--from", to], "")?;

    let refused = |what: &str, names: &str| -> Result<()> {
        let (ok, json, stderr) = relay.admin_raw(&["verify-backup", "--from", to], "")?;
        let said = json["error"].as_str().unwrap_or_default();
        ensure!(
            !ok && said.contains("damaged") && said.contains(names),
            "verify-backup of {what}: {json} {stderr}"
        );
        Ok(())
    };
    let restore_refused = |what: String| async move {
        let target = Site::new("127.0.0.1:0", "")?;
        let (ok, json, _) = target.admin_raw(&["restore", "--from", to], "")?;
        ensure!(!ok, "restore of {what}: {json}");
        ensure!(is_empty(&target).await?, "a refused restore left something");
        Ok::<_, anyhow::Error>(())
    };

    // One bit of one picture changed.
    let picture = files_under(&dir.path().join("objects"))
        .into_iter()
        .next()
        .context("a picture in the backup")?;
    let name = picture
        .strip_prefix(dir.path().join("objects"))?
        .to_str()
        .context("utf-8")?
        .to_owned();
    let kept = std::fs::read(&picture)?;
    let mut changed = kept.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 1;
    std::fs::write(&picture, &changed)?;
    refused("a changed picture", &name)?;
    restore_refused(format!("a changed picture ({name})")).await?;
    std::fs::write(&picture, &kept)?;
    relay.admin(&["verify-backup", "--from", to], "")?;

    // The database copy cut to half its length.
    let database = std::fs::read_dir(dir.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("database-"))
        })
        .context("the database copy")?;
    let length = std::fs::metadata(&database)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&database)?
        .set_len(length / 2)?;
    let file = database
        .file_name()
        .context("name")?
        .to_string_lossy()
        .into_owned();
    refused("a truncated database copy", &file)?;
    restore_refused("a truncated database copy".to_owned()).await?;
    Ok(())
}
