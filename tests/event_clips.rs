//! Event clips end to end (issue 24): the real agent records the simulated camera's intruder
//! and uploads the clip after the snapshot; the relay checks and stores it and serves it to
//! its owner with range requests (404 to anyone else, 416 past its end). An upload whose
//! link is cut half-way, and one whose agent is killed half-way, go on from where they
//! stopped: the clip arrives whole and once, for at most 1.2 times its bytes. What is not an
//! MP4 clip, or not the clip its upload says, is refused with nothing stored. A clip being
//! recorded when the agent is stopped is finished and sent at its next start. A clip shared
//! with a dispatch request plays for its guard center only while the request is open, each
//! look in the customer's history.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Process, Relay, start_agent_with, status_json};
use eyeward_testkit::uplink::Uplink;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// Short events, and clips of 3 s before and 2 s after.
const AGENT_CONFIG: &str = "[motion]\nstop_after = \"500ms\"\ncooldown = \"1s\"\n\
                            [clips]\nenabled = true\npre_roll = \"3s\"\npost_roll = \"2s\"\n";

/// The owner's events of camera `cam`, newest first.
async fn events(client: &common::Client, cam: i64) -> Result<Vec<Value>> {
    let (status, list) =
        status_json(client.get(&format!("/api/cameras/{cam}/events")).await?).await?;
    ensure!(status == 200, "events: {status} {list}");
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// Waits up to `within` for `count` motion events of `cam` with their clips.
async fn clipped_events(
    client: &common::Client,
    cam: i64,
    count: usize,
    within: Duration,
    agent_log: impl Fn() -> String,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + within;
    loop {
        let clipped: Vec<Value> = events(client, cam)
            .await?
            .into_iter()
            .filter(|e| e["clip"].is_object())
            .collect();
        if clipped.len() >= count {
            return Ok(clipped);
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {count} clips after {within:?}; agent log:\n{}",
            clipped.len(),
            agent_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A relay, Alice's agent camera on it, and Bob with a camera of his own.
struct Scene {
    relay: Relay,
    alice: common::Client,
    bob: common::Client,
    cam: i64,
    token: String,
    bob_token: String,
}

impl Scene {
    async fn start() -> Result<Scene> {
        let relay = Relay::start("")?;
        let alice_id = relay.customer("alice@example.jp", "Alice", "tokyo", PW)?;
        let bob_id = relay.customer("bob@example.jp", "Bob", "tokyo", PW)?;
        let cam = relay.camera(alice_id, "Front door", "fixed", "dispatch", "agent")?;
        let bobs = relay.camera(bob_id, "Garage", "fixed", "dispatch", "agent")?;
        let alice = relay.login("alice@example.jp", PW).await?;
        let bob = relay.login("bob@example.jp", PW).await?;
        Ok(Scene {
            alice,
            bob,
            cam: cam["id"].as_i64().context("id")?,
            token: cam["agent_token"].as_str().context("token")?.to_owned(),
            bob_token: bobs["agent_token"].as_str().context("token")?.to_owned(),
            relay,
        })
    }

    fn agent(&self, base: &str, camera: &Camera, n: u32) -> Result<Process> {
        let dir = self.relay.dir.path();
        let config = dir.join("agent.toml");
        std::fs::write(&config, AGENT_CONFIG)?;
        let queue = dir.join("agent.queue");
        start_agent_with(
            base,
            dir,
            &self.token,
            &camera.url,
            &format!("agent-{n}"),
            &[
                "--config",
                config.to_str().context("utf-8")?,
                "--queue-dir",
                queue.to_str().context("utf-8")?,
            ],
        )
    }

    fn agent_url(&self, path: &str) -> String {
        self.relay.url(path)
    }
}

/// Frames of the MP4 at `path` as ffprobe reads them: (keyframe, time in seconds).
fn frames_of(path: &Path) -> Result<Vec<(bool, f64)>> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .context("running ffprobe (install ffmpeg: the README's test command does)")?;
    ensure!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| {
            let (time, flags) = l.split_once(',').context("pts_time,flags")?;
            Ok((flags.contains('K'), time.parse::<f64>()?))
        })
        .collect()
}

#[tokio::test]
async fn an_events_clip_comes_after_its_snapshot_and_is_served_to_its_owner_only() -> Result<()> {
    let scene = Scene::start().await?;
    // The intruder enters 8 s in and takes 3 s; a keyframe every 2 s.
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "8s",
            "--motion-crossing",
            "3s",
            "--keyframe-interval",
            "2s",
            "--motion-every",
            "60s",
        ],
        None,
    )?;
    let agent = scene.agent(&scene.relay.base, &camera, 1)?;
    let events = clipped_events(&scene.alice, scene.cam, 1, Duration::from_secs(60), || {
        agent.log()
    })
    .await?;
    let event = &events[0];
    let clip = &event["clip"];
    let id = event["id"].as_i64().context("id")?;
    assert_eq!(clip["url"], format!("/api/events/{id}/clip"));
    assert_eq!(clip["codec"], "h264");
    assert_eq!(
        (clip["width"].as_u64(), clip["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let (bytes, length, event_at) = (
        clip["bytes"].as_u64().context("bytes")?,
        clip["length_ms"].as_u64().context("length_ms")?,
        clip["event_at_ms"].as_u64().context("event_at_ms")?,
    );
    // At least the pre-roll before the detection (from the keyframe before it), the
    // crossing and the post-roll after.
    assert!((3000..=5200).contains(&event_at), "{clip}");
    assert!(length >= event_at + 3000, "{clip}");
    assert!(event["snapshot_url"].is_string(), "the snapshot came too");

    // The owner gets it whole, and in parts as a player seeks.
    let whole = scene.alice.get(&format!("/api/events/{id}/clip")).await?;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await?;
    assert_eq!(whole.len() as u64, bytes);
    let part = scene
        .alice
        .request(reqwest::Method::GET, &format!("/api/events/{id}/clip"))
        .header("range", "bytes=100-199")
        .send()
        .await?;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{bytes}").as_str()
    );
    assert_eq!(&part.bytes().await?[..], &whole[100..200]);
    let past = scene
        .alice
        .request(reqwest::Method::GET, &format!("/api/events/{id}/clip"))
        .header("range", format!("bytes={bytes}-"))
        .send()
        .await?;
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{bytes}").as_str()
    );
    let saved = scene
        .alice
        .get(&format!("/api/events/{id}/clip?download=1"))
        .await?;
    let disposition = saved.headers()["content-disposition"].to_str()?.to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"front-door-")
            && disposition.ends_with(".mp4\""),
        "{disposition}"
    );
    // Nobody else: not Bob, not without a session.
    for client in [&scene.bob, &scene.relay.client()] {
        let resp = client.get(&format!("/api/events/{id}/clip")).await?;
        assert!(
            matches!(resp.status().as_u16(), 401 | 404),
            "{}",
            resp.status()
        );
    }
    // Nor Bob's agent, which cannot even ask what the relay holds of it.
    let key_of = |log: &str| -> Option<String> {
        log.split("key=")
            .nth(1)?
            .split_whitespace()
            .next()
            .map(str::to_owned)
    };
    let key = key_of(&agent.log()).context("the agent logs its event's key")?;
    let bobs = reqwest::Client::new()
        .head(scene.agent_url(&format!("/agent/v1/events/{key}/clip")))
        .bearer_auth(&scene.bob_token)
        .send()
        .await?;
    assert_eq!(bobs.status(), 404);

    // What was stored decodes from a keyframe at 0, its frames continuous.
    let path = scene.relay.dir.path().join("saved.mp4");
    std::fs::write(&path, &whole)?;
    let frames = frames_of(&path)?;
    assert!(
        frames[0].0 && frames[0].1.abs() < 0.001,
        "{:?}",
        &frames[..2]
    );
    let gaps: Vec<f64> = frames.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps.iter().all(|g| (0.02..0.2).contains(g)), "{gaps:?}");
    let log = agent.log();
    assert_eq!(log.matches("clip uploaded").count(), 1, "{log}");
    let snapshot_at = log.find("event uploaded").context("the event went")?;
    assert!(
        log.find("clip uploaded").context("the clip went")? > snapshot_at,
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_clip_being_recorded_when_the_agent_stops_is_kept_and_sent_at_its_next_start()
-> Result<()> {
    let scene = Scene::start().await?;
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "6s",
            "--motion-crossing",
            "3s",
            "--motion-every",
            "600s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    // A long post-roll: the agent is stopped while the clip is still being recorded.
    let dir = scene.relay.dir.path();
    const CONFIG: &str = "[motion]\nstop_after = \"500ms\"\n[clips]\nenabled = true\npre_roll = \"3s\"\npost_roll = \"30s\"\n";
    let queue = dir.join("stopping.queue");
    let args = ["--queue-dir", queue.to_str().context("utf-8")?];
    let start = |name| {
        scene
            .relay
            .start_configured_agent(&scene.token, &camera.url, name, CONFIG, &args)
    };
    let mut agent = start("stopping-1")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent.log().contains("event uploaded") {
        ensure!(Instant::now() < deadline, "no event: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two seconds into the post-roll, SIGTERM: the clip so far is finished into the queue.
    tokio::time::sleep(Duration::from_secs(4)).await;
    agent.stop()?;
    let log = agent.log();
    assert!(log.contains("clip queued"), "{log}");
    assert!(!log.contains("lost"), "{log}");
    let records: Vec<String> = std::fs::read_dir(&queue)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()))
        .collect::<Result<_, _>>()?;
    assert!(
        records
            .iter()
            .any(|r| r.contains("\"kind\":\"clip\"") && r.contains("\"recording\":false")),
        "{records:?}"
    );
    // Started again, it sends the clip: shorter than asked, whole.
    let agent = start("stopping-2")?;
    let events = clipped_events(&scene.alice, scene.cam, 1, Duration::from_secs(30), || {
        agent.log()
    })
    .await?;
    let clip = &events[0]["clip"];
    let length = clip["length_ms"].as_u64().context("length_ms")?;
    assert!(length < 20_000, "cut short at the stop: {clip}");
    assert!(
        length >= clip["event_at_ms"].as_u64().context("event_at_ms")? + 3_000,
        "{clip}"
    );
    Ok(())
}

/// The bytes of snapshots the agent's log says it queued.
fn snapshot_bytes(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("snapshot queued"))
        .filter_map(|l| {
            l.split("bytes=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn a_clip_upload_cut_off_or_killed_half_way_goes_on_from_where_it_stopped() -> Result<()> {
    let scene = Scene::start().await?;
    // A home's uplink of about 400 kB/s (16 KiB every 40 ms): an upload takes seconds.
    let uplink = Uplink::start(&scene.relay.base, Some(Duration::from_millis(40))).await?;
    // Grain makes the encoder spend its 2 Mbit/s: clips of a few megabytes. The intruder
    // crosses 8 s in, and 25 s after that again.
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "8s",
            "--motion-crossing",
            "3s",
            "--motion-every",
            "25s",
            "--keyframe-interval",
            "2s",
            "--grain",
            "12",
        ],
        None,
    )?;
    let mut agent = scene.agent(&uplink.base, &camera, 1)?;

    // The first clip: the link is cut with a third of it sent.
    uplink
        .until_puts(1_000_000, Duration::from_secs(40))
        .await
        .with_context(|| agent.log())?;
    uplink.cut_for(Duration::from_secs(2)).await;
    let first = clipped_events(&scene.alice, scene.cam, 1, Duration::from_secs(60), || {
        agent.log()
    })
    .await?;
    let first_bytes = first[0]["clip"]["bytes"].as_u64().context("bytes")?;
    ensure!(
        first_bytes > 1_500_000,
        "a clip of {first_bytes} bytes is too small to cut"
    );

    // The second: the agent is killed with a third of it sent, and started again.
    let before = uplink.puts();
    uplink
        .until_puts(1_000_000, Duration::from_secs(40))
        .await
        .with_context(|| agent.log())?;
    agent.kill_only(libc::SIGKILL);
    let killed_log = agent.log();
    let _ = agent.stop();
    let agent = scene.agent(&uplink.base, &camera, 2)?;
    let both = clipped_events(&scene.alice, scene.cam, 2, Duration::from_secs(60), || {
        agent.log()
    })
    .await?;
    let second_bytes = both[0]["clip"]["bytes"].as_u64().context("bytes")?;
    ensure!(uplink.puts() > before);

    // Each arrived whole and once, and went on from where it stopped: all the agents sent
    // (both clips, their snapshots and the requests' headers) is at most 1.2 times the
    // clips and the snapshots.
    let events = events(&scene.alice, scene.cam).await?;
    let motion: Vec<&Value> = events.iter().filter(|e| e["kind"] == "motion").collect();
    assert_eq!(motion.len(), 2, "{events:?}");
    let snapshots = snapshot_bytes(&killed_log) + snapshot_bytes(&agent.log());
    let sent = uplink.uploads();
    let ratio = sent as f64 / (first_bytes + second_bytes + snapshots) as f64;
    println!(
        "clips {first_bytes} and {second_bytes} bytes, snapshots {snapshots}: {sent} bytes sent, {ratio:.3}x"
    );
    assert!(ratio <= 1.2, "{ratio:.3}x");
    let logs = format!("{killed_log}{}", agent.log());
    assert!(logs.contains("from=0 "), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("clip bytes sent") && !l.contains("from=0 ")),
        "an upload went on from where it stopped: {logs}"
    );
    // The relay stored each once.
    let relay_log = scene.relay.log();
    assert_eq!(relay_log.matches("clip stored").count(), 2, "{relay_log}");
    Ok(())
}

/// `ffmpeg`'s fragmented MP4 of `seconds` of a test pattern in H.264: a clip as an agent
/// makes one.
fn test_clip(dir: &Path, seconds: u32) -> Result<Vec<u8>> {
    let path = dir.join("pattern.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=320x240:rate=15:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "0",
            "-g",
            "15",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ])
        .arg(&path)
        .status()
        .context("running ffmpeg (install ffmpeg: the README's test command does)")?;
    ensure!(status.success(), "ffmpeg could not make a clip");
    Ok(std::fs::read(path)?)
}

#[tokio::test]
async fn what_is_not_the_clip_its_upload_says_is_refused_and_nothing_stored() -> Result<()> {
    let scene = Scene::start().await?;
    let key = "event-for-a-clip-01";
    let resp = common::upload_event(&scene.relay, &scene.token, key, &common::jpeg(64, 48)).await?;
    assert_eq!(resp.status(), 201);
    let clip = test_clip(scene.relay.dir.path(), 2)?;
    let total = clip.len();
    let http = reqwest::Client::new();
    let url = scene.agent_url(&format!("/agent/v1/events/{key}/clip"));
    let put = |query: &str, range: String, body: Vec<u8>, ctype: &str| {
        http.put(format!("{url}?{query}"))
            .bearer_auth(&scene.token)
            .header("content-type", ctype.to_owned())
            .header("content-range", range)
            .body(body)
            .send()
    };
    let ok_query = "codec=h264&length_ms=1933&event_at_ms=500";
    let held = || async {
        let r = http.head(&url).bearer_auth(&scene.token).send().await?;
        anyhow::Ok((
            r.status().as_u16(),
            r.headers()["upload-offset"].to_str()?.to_owned(),
        ))
    };

    // Not an MP4: refused once whole, nothing kept.
    let garbage = vec![7u8; 5000];
    let resp = put(ok_query, "bytes 0-4999/5000".into(), garbage, "video/mp4").await?;
    let (status, body) = status_json(resp).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("clip_not_mp4")),
        "{body}"
    );
    assert_eq!(held().await?, (200, "0".into()));
    // An MP4, but not what the upload says: H.265, or ten seconds long.
    for (query, code) in [
        ("codec=h265&length_ms=1933&event_at_ms=500", "clip_mismatch"),
        (
            "codec=h264&length_ms=10000&event_at_ms=500",
            "clip_mismatch",
        ),
    ] {
        let resp = put(
            query,
            format!("bytes 0-{}/{total}", total - 1),
            clip.clone(),
            "video/mp4",
        )
        .await?;
        let (status, body) = status_json(resp).await?;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some(code)),
            "{query}: {body}"
        );
    }
    // Bad requests: no range, a range beyond the clip, not video/mp4, a bad query, another
    // camera's event.
    let resp = http
        .put(format!("{url}?{ok_query}"))
        .bearer_auth(&scene.token)
        .header("content-type", "video/mp4")
        .body(clip.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let resp = put(
        ok_query,
        format!("bytes 0-{total}/{total}"),
        clip.clone(),
        "video/mp4",
    )
    .await?;
    assert_eq!(resp.status(), 400);
    let resp = put(
        ok_query,
        format!("bytes 0-{}/{total}", total - 1),
        clip.clone(),
        "image/jpeg",
    )
    .await?;
    assert_eq!(resp.status(), 415);
    let resp = put(
        "codec=vp8&length_ms=1&event_at_ms=0",
        format!("bytes 0-{}/{total}", total - 1),
        clip.clone(),
        "video/mp4",
    )
    .await?;
    assert_eq!(resp.status(), 400);
    let resp = http
        .put(format!("{url}?{ok_query}"))
        .bearer_auth(&scene.bob_token)
        .header("content-type", "video/mp4")
        .header("content-range", format!("bytes 0-{}/{total}", total - 1))
        .body(clip.clone())
        .send()
        .await?;
    assert_eq!(
        resp.status(),
        404,
        "Bob's agent cannot send Alice's event a clip"
    );
    let events = events(&scene.alice, scene.cam).await?;
    assert!(events[0].get("clip").is_none(), "{events:?}");
    // Nothing kept: no clip where the relay keeps them (files or bucket), no upload begun.
    let uploads = || {
        std::fs::read_dir(scene.relay.dir.path().join("data/clip-uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(
        (scene.relay.pictures("clips").await?.len(), uploads()),
        (0, 0)
    );

    // The clip in two parts, the second first sent from the wrong place.
    let half = total / 2;
    let resp = put(
        ok_query,
        format!("bytes 0-{}/{total}", half - 1),
        clip[..half].to_vec(),
        "video/mp4",
    )
    .await?;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["upload-offset"], half.to_string().as_str());
    assert_eq!(held().await?, (200, half.to_string()));
    let resp = put(
        ok_query,
        format!("bytes 0-{}/{total}", total - 1),
        clip.clone(),
        "video/mp4",
    )
    .await?;
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["upload-offset"], half.to_string().as_str());
    let resp = put(
        ok_query,
        format!("bytes {half}-{}/{total}", total - 1),
        clip[half..].to_vec(),
        "video/mp4",
    )
    .await?;
    let (status, event) = status_json(resp).await?;
    assert_eq!(status, 201, "{event}");
    assert_eq!(event["clip"]["bytes"], total);
    assert_eq!(event["clip"]["length_ms"], 1933);
    assert_eq!(
        (
            event["clip"]["width"].as_u64(),
            event["clip"]["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    // Again: the same clip, stored once.
    let resp = put(
        ok_query,
        format!("bytes */{total}"),
        Vec::new(),
        "video/mp4",
    )
    .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(held().await?, (200, total.to_string()));
    let id = event["id"].as_i64().context("id")?;
    let got = scene
        .alice
        .get(&format!("/api/events/{id}/clip"))
        .await?
        .bytes()
        .await?;
    assert_eq!(&got[..], &clip[..]);
    assert_eq!(
        (scene.relay.pictures("clips").await?.len(), uploads()),
        (1, 0)
    );
    Ok(())
}

#[tokio::test]
async fn a_shared_clip_plays_for_the_guard_center_only_while_the_request_is_open() -> Result<()> {
    let scene = Scene::start().await?;
    scene
        .relay
        .operator("op@example.jp", "Oscar", "tokyo", PW)?;
    scene.relay.operator("east@example.jp", "Eve", "east", PW)?;
    let tokyo = scene.relay.login("op@example.jp", PW).await?;
    let east = scene.relay.login("east@example.jp", PW).await?;
    let http = reqwest::Client::new();
    // An event whose clip is coming, and one without.
    let now = eyeward::UnixMillis::now().0;
    let upload = |key: &str, clip: &str| {
        http.post(scene.agent_url(&format!(
            "/agent/v1/events?key={key}&captured_at={now}&score=0.04&bbox=0,0,8,8{clip}"
        )))
        .bearer_auth(&scene.token)
        .header("content-type", "image/jpeg")
        .body(common::jpeg(64, 48))
        .send()
    };
    let (status, with_clip) = status_json(upload("with-a-clip-1", "&clip=coming").await?).await?;
    assert_eq!(
        (status, &with_clip["clip_coming"]),
        (201, &Value::Bool(true)),
        "{with_clip}"
    );
    let (_, without) = status_json(upload("without-clip-1", "").await?).await?;
    let bobs = common::upload_event(
        &scene.relay,
        &scene.bob_token,
        "bobs-event-1",
        &common::jpeg(64, 48),
    )
    .await?;
    let (_, bobs) = status_json(bobs).await?;
    let request = |event: &Value| {
        let body = serde_json::json!({"camera_id": scene.cam, "share_clip_of": event["id"]});
        let alice = &scene.alice;
        async move { alice.post("/api/dispatch-requests", &body).await }
    };
    assert_eq!(request(&without).await?.status(), 409, "no clip to share");
    assert_eq!(request(&bobs).await?.status(), 404, "not Alice's");

    // Shared while the clip is on its way: the center is told it is coming.
    let (status, d) = status_json(request(&with_clip).await?).await?;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().context("request id")?;
    let path = format!("/api/ops/dispatch-requests/{id}");
    let (_, opened) = status_json(tokyo.get(&path).await?).await?;
    assert_eq!(opened["clip_coming"], true, "{opened}");
    assert_eq!(opened["request"]["shares_clip"], true);
    assert_eq!(tokyo.get(&format!("{path}/clip")).await?.status(), 404);

    // It comes: the center plays it; each look (from its first byte) is in Alice's history,
    // a seek is not; nothing of it is cached.
    let clip = test_clip(scene.relay.dir.path(), 2)?;
    let total = clip.len();
    let put = http
        .put(scene.agent_url(
            "/agent/v1/events/with-a-clip-1/clip?codec=h264&length_ms=1933&event_at_ms=500",
        ))
        .bearer_auth(&scene.token)
        .header("content-type", "video/mp4")
        .header("content-range", format!("bytes 0-{}/{total}", total - 1))
        .body(clip.clone())
        .send()
        .await?;
    assert_eq!(put.status(), 201);
    let (_, opened) = status_json(tokyo.get(&path).await?).await?;
    assert_eq!(opened["clip"]["url"], format!("{path}/clip"), "{opened}");
    let ranged = |client: &common::Client, range: &'static str| {
        client
            .request(reqwest::Method::GET, &format!("{path}/clip"))
            .header("range", range)
            .send()
    };
    let look = ranged(&tokyo, "bytes=0-").await?;
    assert_eq!(look.status(), 206);
    assert_eq!(look.headers()["cache-control"], "no-store");
    assert_eq!(&look.bytes().await?[..], &clip[..]);
    assert_eq!(ranged(&tokyo, "bytes=1000-").await?.status(), 206);
    assert_eq!(tokyo.get(&format!("{path}/clip")).await?.status(), 200);
    assert_eq!(
        ranged(&east, "bytes=0-").await?.status(),
        404,
        "another center"
    );
    let looks = || async {
        let (_, history) = status_json(scene.alice.get("/api/history?limit=100").await?).await?;
        anyhow::Ok(
            history
                .as_array()
                .context("history")?
                .iter()
                .filter(|e| e["action"] == "dispatch.clip_viewed")
                .map(|e| e["actor_name"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(looks().await?, ["Oscar", "Oscar"]);

    // Closed, it is shared no more.
    let cancelled = scene
        .alice
        .post(
            &format!("/api/dispatch-requests/{id}/cancel"),
            &serde_json::json!({}),
        )
        .await?;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(ranged(&tokyo, "bytes=0-").await?.status(), 404);
    let (_, closed) = status_json(tokyo.get(&path).await?).await?;
    assert!(closed.get("clip").is_none(), "{closed}");
    assert_eq!(looks().await?.len(), 2);
    Ok(())
}
