//! Several relay nodes as one service (issue 21): three `eyeward-relay` processes on one
//! PostgreSQL database and one S3 place (Garage), behind HAProxy (`common::cluster`). A camera
//! linked to one node is online, watched, moved and followed from the others; its alert is
//! mailed once; the internal listener is the cluster's only; two operators on two nodes
//! accepting one request make one acceptance and one charge; its sound is heard and its
//! speaker spoken through from a node that does not hold it.

mod common;

use anyhow::{Context, Result};
use common::cluster::Nodes;
use common::smtp::{Smtp, add_address, link, subject};
use common::{Client, jpeg, sse_until, status_json, upload_event, wait_online};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

const PW: &str = "correct horse battery";

/// Watches camera `cam` over WHEP as `client`: the peer connection and the RTP packets it has
/// received so far.
async fn watch(client: &Client, cam: i64) -> Result<(Arc<RTCPeerConnection>, Arc<AtomicU64>)> {
    watch_at(client, &format!("/api/cameras/{cam}/whep")).await
}

/// Watches over WHEP at `path` (a camera's, or a dispatch request's shared view) as `client`.
async fn watch_at(client: &Client, path: &str) -> Result<(Arc<RTCPeerConnection>, Arc<AtomicU64>)> {
    let (pc, sdp) = common::whep_offer().await?;
    let packets = Arc::new(AtomicU64::new(0));
    let counter = packets.clone();
    pc.on_track(Box::new(move |track, _, _| {
        let counter = counter.clone();
        Box::pin(async move {
            while track.read_rtp().await.is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    }));
    let resp = common::post_offer(client, path, sdp).await?;
    anyhow::ensure!(resp.status() == 201, "WHEP: {}", resp.status());
    let answer = resp.text().await?;
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    Ok((pc, packets))
}

/// The internal listener's routes, read from its router's source: each is walked.
fn internal_routes() -> Result<Vec<String>> {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("relay/src/http/internal.rs"),
    )?;
    let routes: Vec<String> = source
        .match_indices(".route(\"")
        .filter_map(|(i, m)| source[i + m.len()..].split('"').next().map(String::from))
        .collect();
    anyhow::ensure!(routes.len() >= 3, "{routes:?}");
    Ok(routes)
}

/// Events uploaded in the test of the live streams (under the per-minute limit).
const EVENTS: usize = 20;

/// When each event arrived on `client`'s live stream of camera `cam`, by event id.
type Seen = Arc<Mutex<HashMap<i64, Instant>>>;

/// Follows camera `cam`'s live events as `client`, noting when each arrives.
async fn follow_events(client: &Client, cam: i64) -> Result<Seen> {
    let mut resp = client
        .get(&format!("/api/cameras/{cam}/events/live"))
        .await?;
    anyhow::ensure!(resp.status() == 200, "events/live: {}", resp.status());
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let now = Instant::now();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                let id = line
                    .strip_prefix("data:")
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
                    .and_then(|v| v["id"].as_i64());
                if let Some(id) = id {
                    noted.lock().unwrap().entry(id).or_insert(now);
                }
            }
        }
    });
    Ok(seen)
}

/// When event `id` arrived on a followed stream, waiting up to `limit`.
async fn seen_within(seen: &Seen, id: i64, limit: Duration) -> Result<Instant> {
    let start = Instant::now();
    loop {
        if let Some(at) = seen.lock().unwrap().get(&id) {
            return Ok(*at);
        }
        anyhow::ensure!(start.elapsed() < limit, "event {id} not seen in {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until `packets` passes `at_least`; how long that took.
async fn video_within(packets: &AtomicU64, at_least: u64, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    while packets.load(Ordering::Relaxed) < at_least {
        anyhow::ensure!(
            start.elapsed() < limit,
            "{} packets after {limit:?}",
            packets.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_linked_to_one_node_is_watched_moved_and_followed_from_the_others() -> Result<()> {
    let smtp = Smtp::start()?;
    let nodes = Nodes::start(
        &["a", "b", "c"],
        &format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()),
    )?;
    let result: Result<()> = async {
        let a = nodes.node("a");
        let alice = a.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let cam = a.camera(alice, "Porch", "pan-tilt", "dispatch", "agent")?;
        let cam_id = cam["id"].as_i64().context("id")?;
        let token = cam["agent_token"].as_str().context("token")?;
        // The agent links to node a itself, not through the load balancer; the first relay it
        // is given is down, and it moves on.
        let down = format!("http://127.0.0.1:{}", common::free_port()?);
        let agent = common::start_agent_with(
            &down,
            a.dir.path(),
            token,
            "sim://pan-tilt",
            "agent",
            &["--relay", &a.base],
        )?;
        let on_b = nodes.login_on("b", "a@example.jp", PW).await?;
        let on_c = nodes.login_on("c", "a@example.jp", PW).await?;
        wait_online(&on_b, cam_id, true, Duration::from_secs(15)).await?;
        wait_online(&on_c, cam_id, true, Duration::from_secs(5)).await?;
        assert!(agent.log().contains("link down"), "{}", agent.log());

        // Alice confirms an address from node b; the link in the mail is the service's.
        confirm_address(&nodes, &smtp, &on_b).await?;

        // Video through node b, which does not hold the camera: pulled through a.
        let asked = Instant::now();
        let (_pc, packets) = watch(&on_b, cam_id).await?;
        video_within(&packets, 1, Duration::from_secs(15)).await?;
        let first = asked.elapsed();
        video_within(&packets, 100, Duration::from_secs(15)).await?;
        eprintln!(
            "first video through a node that does not hold the camera: {} ms after the offer",
            first.as_millis()
        );
        anyhow::ensure!(
            nodes.node("b").log().contains("feed starting"),
            "b fans out itself"
        );

        // Alice shares the live view with her guard center: the operator on c watches it,
        // pulled through a too.
        a.set_home(alice, "1-9-1 Marunouchi, Chiyoda-ku, Tokyo", "35.6812,139.7671")?;
        a.operator("op@example.jp", "Oscar", "tokyo", PW)?;
        let request = json!({"camera_id": cam_id, "share_live": true});
        let request = common::request_dispatch(&on_b, &request).await?;
        let oscar = nodes.login_on("c", "op@example.jp", PW).await?;
        let shared = format!("/api/ops/dispatch-requests/{request}/whep");
        let (_shared_pc, shared_packets) = watch_at(&oscar, &shared).await?;
        video_within(&shared_packets, 50, Duration::from_secs(15)).await?;

                // Pan-tilt from c: a's agent carries it out; b's stream sees where it went.
        let moved = sse_until(
            &on_b,
            &format!("/api/cameras/{cam_id}/ptz/live"),
            "\"pan\":0.5,\"tilt\":0.25".into(),
        )
        .await?;
        let (status, answer) = status_json(
            on_c.post(
                &format!("/api/cameras/{cam_id}/ptz"),
                &json!({"action": "go_to", "pan": 0.5, "tilt": 0.25}),
            )
            .await?,
        )
        .await?;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["online"], true);
        moved.await??;

        // Events uploaded to a are on b's live stream at once; the first is mailed, once.
        let seen = follow_events(&on_b, cam_id).await?;

        let mut delays = Vec::new();
        for i in 0..EVENTS {
            let key = format!("cluster-event-{i:04}");
            // From the upload's start: the change is made on a some time before its answer.
            let sent = Instant::now();
            let (status, event) =
                status_json(upload_event(a, token, &key, &jpeg(64, 48)).await?).await?;
            assert_eq!(status, 201, "{event}");
            let id = event["id"].as_i64().context("event id")?;
            let at = seen_within(&seen, id, Duration::from_secs(5)).await?;
            delays.push(at.saturating_duration_since(sent));
        }
        delays.sort();
        eprintln!(
            "events uploaded to a, on b's live stream (through HAProxy) after: median {} ms, p95 {} ms, max {} ms",
            delays[delays.len() / 2].as_millis(),
            delays[delays.len() * 95 / 100].as_millis(),
            delays[delays.len() - 1].as_millis()
        );
        let is_alert = |r: &common::smtp::Received| subject(&r.raw).starts_with("Motion:");
        smtp.wait_for("the alert", |m| m.iter().any(is_alert)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let alerts = smtp.received()?.into_iter().filter(is_alert).count();
        assert_eq!(alerts, 1, "one alert mail, sent by one node");

        // The internal routes are on the cluster's listener only, and signed.
        let public = reqwest::get(format!(
            "{}/internal/v1/cameras/{cam_id}/feed",
            nodes.lb.base()
        ))
        .await?;
        assert_eq!(public.status(), 404);
        let internal = nodes.internal_url("a")?;
        for path in internal_routes()? {
            let path = path
                .replace("{id}", &cam_id.to_string())
                .replace("{tunnel}", "0123456789abcdef0123456789abcdef")
                .replace("{to}", "camera");
            let url = format!("{internal}{}", path.trim_start_matches('/'));
            let public = reqwest::get(format!("{}{path}", nodes.lb.base())).await?;
            assert_eq!(public.status(), 404, "{path} on the public listener");
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let forged = reqwest::Client::new()
                    .request(method.clone(), &url)
                    .header("authorization", "Eyeward-Cluster 1.1.00")
                    .send()
                    .await?
                    .status();
                let unsigned = reqwest::Client::new().request(method.clone(), &url).send();
                let unsigned = unsigned.await?.status();
                for status in [forged, unsigned] {
                    assert!([401, 405].contains(&status.as_u16()), "{method} {path}: {status}");
                }
            }
        }
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}

/// b holds no link to the camera's agent: its RTSP client reaches the camera's sound and its
/// speaker through tunnels a opens and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_linked_to_one_node_is_heard_and_spoken_through_from_another() -> Result<()> {
    use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
    let camera =
        common::Camera::start("fixed", &["--audio", "pcmu", "--backchannel", "pcmu"], None)?;
    let nodes = Nodes::start(&["a", "b"], "")?;
    let result: Result<()> = async {
        let a = nodes.node("a");
        let alice = a.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let cam = a.camera(alice, "Porch", "fixed", "dispatch", "agent")?;
        let cam_id = cam["id"].as_i64().context("id")?;
        let token = cam["agent_token"].as_str().context("token")?;
        let _agent =
            common::start_agent_with(&a.base, a.dir.path(), token, &camera.url, "agent", &[])?;
        let on_b = nodes.login_on("b", "a@example.jp", PW).await?;
        wait_online(&on_b, cam_id, true, Duration::from_secs(15)).await?;

        // A view on b with a microphone, whose sound section also receives.
        let pc = eyeward_bench::viewer::recvonly(&eyeward_bench::viewer::loopback_api()?).await?;
        let microphone = eyeward_bench::viewer::microphone();
        pc.add_track(microphone.clone()).await?;
        let sound = Arc::new(AtomicU64::new(0));
        let counter = sound.clone();
        pc.on_track(Box::new(move |track, _, _| {
            let counter = counter.clone();
            Box::pin(async move {
                if track.kind() != RTPCodecType::Audio {
                    return;
                }
                while track.read_rtp().await.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        }));
        let offer = pc.create_offer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(offer).await?;
        let _ = gathered.recv().await;
        let sdp = pc.local_description().await.context("offer")?.sdp;
        let resp = common::post_offer(&on_b, &format!("/api/cameras/{cam_id}/whep"), sdp).await?;
        anyhow::ensure!(resp.status() == 201, "WHEP on b: {}", resp.status());
        let session = resp.headers()["location"].to_str()?.to_owned();
        pc.set_remote_description(RTCSessionDescription::answer(resp.text().await?)?)
            .await?;

        // Listening on b: the camera's G.711 comes through a's agent.
        let (status, answer) = status_json(
            on_b.post(&format!("{session}/sound"), &json!({"listen": true}))
                .await?,
        )
        .await?;
        assert_eq!(status, 200, "{answer}");
        video_within(&sound, 50, Duration::from_secs(15)).await?;

        // Speaking on b: the camera's speaker hears the tone.
        let (status, answer) = status_json(
            on_b.post(&format!("{session}/talk"), &json!({"talk": true}))
                .await?,
        )
        .await?;
        assert_eq!(status, 200, "{answer}");
        let tone = eyeward_bench::viewer::opus_second(Some(880.0)).await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let heard = loop {
            for frame in &tone {
                microphone
                    .write_sample(&webrtc::media::Sample {
                        data: frame.clone(),
                        duration: Duration::from_millis(20),
                        ..Default::default()
                    })
                    .await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let log = camera.process.log();
            let heard = log
                .lines()
                .filter(|l| l.contains("back-channel heard"))
                .filter_map(|l| {
                    l.split("hz=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse::<f64>()
                        .ok()
                })
                .find(|hz| (hz - 880.0).abs() < 20.0);
            if let Some(hz) = heard {
                break hz;
            }
            anyhow::ensure!(Instant::now() < deadline, "the camera heard nothing: {log}");
        };
        eprintln!("spoken through b, the camera heard {heard} Hz");
        let (status, _) = status_json(
            on_b.post(&format!("{session}/talk"), &json!({"talk": false}))
                .await?,
        )
        .await?;
        assert_eq!(status, 200);
        pc.close().await?;
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_on_two_nodes_accepting_one_request_make_one_acceptance_and_one_charge()
-> Result<()> {
    let nodes = Nodes::start(&["a", "b"], "")?;
    let result: Result<()> = async {
        let a = nodes.node("a");
        let alice = a.customer("a@example.jp", "Alice", "tokyo", PW)?;
        a.set_home(
            alice,
            "1-9-1 Marunouchi, Chiyoda-ku, Tokyo",
            "35.6812,139.7671",
        )?;
        a.operator("op@example.jp", "Oscar", "tokyo", PW)?;
        a.operator("op2@example.jp", "Olivia", "tokyo", PW)?;
        let cam = a.camera(alice, "Porch", "fixed", "dispatch", "agent")?;
        let cam_id = cam["id"].as_i64().context("id")?;
        let customer = nodes.login_on("a", "a@example.jp", PW).await?;
        let oscar = nodes.login_on("a", "op@example.jp", PW).await?;
        let olivia = nodes.login_on("b", "op2@example.jp", PW).await?;
        for round in 0..5 {
            // The console on b hears of a request made on a, and of its acceptance.
            let heard = sse_until(
                &olivia,
                "/api/ops/dispatch-requests/live",
                "\"state\":\"accepted\"".into(),
            )
            .await?;
            let id = common::request_dispatch(&customer, &json!({"camera_id": cam_id})).await?;
            let path = format!("/api/ops/dispatch-requests/{id}/accept");
            let empty = json!({});
            let (one, two) = tokio::join!(oscar.post(&path, &empty), olivia.post(&path, &empty));
            let mut statuses = [one?.status().as_u16(), two?.status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "round {round}");
            let line = heard.await??;
            assert!(line.contains(&format!("\"id\":{id}")), "{line}");
            let (_, charges) = status_json(customer.get("/api/charges").await?).await?;
            assert_eq!(
                charges.as_array().map(Vec::len),
                Some(round + 1),
                "{charges}"
            );
            // The customer cancels, so that the camera may ask again.
            let cancel = format!("/api/dispatch-requests/{id}/cancel");
            let (status, body) = status_json(customer.post(&cancel, &json!({})).await?).await?;
            assert_eq!(status, 200, "{body}");
        }
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}

/// A customer's agent cameras, each with its agent linked through the load balancer.
struct Homes {
    cameras: Vec<(i64, String)>,
    _agents: Vec<common::Process>,
}

impl Homes {
    /// `n` fixed cameras of Alice's, each with a simulated camera and its agent, which links
    /// through the load balancer (or to the relays given, in turn).
    fn start(nodes: &Nodes, n: usize) -> Result<Homes> {
        let a = &nodes.nodes[0].1;
        let alice = a.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let mut cameras = Vec::new();
        let mut agents = Vec::new();
        for i in 0..n {
            let cam = a.camera(alice, &format!("Camera {i}"), "fixed", "dispatch", "agent")?;
            let id = cam["id"].as_i64().context("id")?;
            let token = cam["agent_token"].as_str().context("token")?.to_owned();
            let dir = a.dir.path().join(format!("agent{i}"));
            std::fs::create_dir_all(&dir)?;
            agents.push(common::start_agent(
                &nodes.lb.base(),
                &dir,
                &token,
                "sim://fixed",
                "agent",
            )?);
            cameras.push((id, token));
        }
        Ok(Homes {
            cameras,
            _agents: agents,
        })
    }
}

/// Alice's alert address, added and confirmed (through the mailed link) by `client`.
async fn confirm_address(nodes: &Nodes, smtp: &Smtp, client: &Client) -> Result<()> {
    assert_eq!(add_address(client, "home@example.jp").await?.0, 201);
    let mails = smtp
        .wait_for("the confirmation", |m| {
            m.iter().any(|r| r.to == ["home@example.jp"])
        })
        .await?;
    let confirm = link(&mails[0].raw, &format!("{}/confirm/", nodes.lb.base()))?;
    assert_eq!(
        reqwest::Client::new().post(&confirm).send().await?.status(),
        200
    );
    Ok(())
}

/// The node whose log says last that camera `cam` came online there.
fn holder(nodes: &Nodes, cam: i64) -> Option<String> {
    let online =
        format!("agent_link{{camera={cam}}}: eyeward_relay::http::agent_link: camera online");
    nodes
        .nodes
        .iter()
        .filter_map(|(name, relay)| {
            let log = relay.log();
            let at = log
                .lines()
                .rfind(|l| l.contains(&online))?
                .get(..27)?
                .to_owned();
            Some((at, name.clone()))
        })
        .max()
        .map(|(_, name)| name)
}

/// Uploads an event for each camera every `every` through the load balancer until `stop`;
/// the ids of the events the relay acknowledged (201).
fn upload_steadily(
    nodes: &Nodes,
    homes: &Homes,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<i64>> {
    let base = nodes.lb.base();
    let cameras = homes.cameras.clone();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut acked = Vec::new();
        let mut n = 0;
        while !*stop.borrow() {
            for (cam, token) in &cameras {
                n += 1;
                let now = eyeward::UnixMillis::now().0;
                let sent = http
                    .post(format!(
                        "{base}/agent/v1/events?key=steady-{cam}-{n:06}&captured_at={now}\
                         &score=0.04&bbox=0,0,8,8"
                    ))
                    .bearer_auth(token)
                    .header("content-type", "image/jpeg")
                    .body(jpeg(32, 24))
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status() == 201
                    && let Ok(v) = r.json::<serde_json::Value>().await
                    && let Some(id) = v["id"].as_i64()
                {
                    acked.push(id);
                }
            }
            tokio::time::sleep(every).await;
        }
        acked
    })
}

/// Every acknowledged event (by id) is stored, as `client` reads them.
async fn all_stored(client: &Client, acked: &[i64]) -> Result<()> {
    for id in acked {
        let status = client.get(&format!("/api/events/{id}")).await?.status();
        anyhow::ensure!(status == 200, "acknowledged event {id}: {status}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_and_its_cameras_and_viewers_come_back_through_the_others()
-> Result<()> {
    let smtp = Smtp::start()?;
    let nodes = Nodes::start(
        &["a", "b", "c"],
        &format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()),
    )?;
    let homes = Homes::start(&nodes, 3)?;
    let result: Result<()> = async {
        let watcher = nodes.login_on("b", "a@example.jp", PW).await?;
        for (cam, _) in &homes.cameras {
            wait_online(&watcher, *cam, true, Duration::from_secs(20)).await?;
        }
        confirm_address(&nodes, &smtp, &watcher).await?;
        // The node to kill holds a camera that a viewer on another node watches.
        let (victim_cam, victim) = homes
            .cameras
            .iter()
            .find_map(|(cam, _)| Some((*cam, holder(&nodes, *cam)?)))
            .context("no holder in the logs")?;
        let survivor = ["a", "b", "c"]
            .into_iter()
            .find(|n| *n != victim)
            .context("a node")?;
        let viewer = nodes.login_on(survivor, "a@example.jp", PW).await?;
        let (_pc, packets) = watch(&viewer, victim_cam).await?;
        video_within(&packets, 100, Duration::from_secs(15)).await?;
        let on_victim = nodes.login_on(&victim, "a@example.jp", PW).await?;
        let request =
            common::request_dispatch(&on_victim, &json!({"camera_id": victim_cam})).await?;

        let (stop, stopping) = tokio::sync::watch::channel(false);
        let uploads = upload_steadily(&nodes, &homes, Duration::from_millis(300), stopping);
        tokio::time::sleep(Duration::from_secs(2)).await;
        nodes.node(&victim).process.kill_only(libc::SIGKILL);
        let killed = Instant::now();
        let before = packets.load(Ordering::Relaxed);
        // Its agents link again through the load balancer; the survivors take the cameras.
        let moved: Vec<i64> = homes
            .cameras
            .iter()
            .filter(|(cam, _)| holder(&nodes, *cam).as_deref() == Some(victim.as_str()))
            .map(|(cam, _)| *cam)
            .collect();
        for cam in &moved {
            while holder(&nodes, *cam).as_deref() == Some(victim.as_str()) {
                anyhow::ensure!(
                    killed.elapsed() < Duration::from_secs(10),
                    "camera {cam} not back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let back = killed.elapsed();
        for (cam, _) in &homes.cameras {
            wait_online(&viewer, *cam, true, Duration::from_secs(5)).await?;
        }
        video_within(&packets, before + 100, Duration::from_secs(15)).await?;
        let video = killed.elapsed();
        eprintln!(
            "node {victim} killed: its {} camera(s) held by the others after {} ms; the viewer \
             on {survivor} saw video again (same session) after {} ms",
            moved.len(),
            back.as_millis(),
            video.as_millis()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.send_replace(true);
        let acked = uploads.await?;
        anyhow::ensure!(acked.len() > 10, "only {} events acknowledged", acked.len());
        all_stored(&viewer, &acked).await?;
        // Each camera's first event was mailed (the cooldown holds the rest): three alerts,
        // one per camera, whichever node queued and sent them; a mail a dead node was sending
        // may come twice, with one Message-ID.
        let is_alert = |r: &common::smtp::Received| subject(&r.raw).starts_with("Motion:");
        let mails = smtp
            .wait_for("an alert per camera", |m| {
                m.iter().filter(|r| is_alert(r)).count() >= 3
            })
            .await?;
        let mut ids: Vec<String> = mails
            .iter()
            .filter(|r| is_alert(r))
            .filter_map(|r| {
                mail_parser::MessageParser::default()
                    .parse(&r.raw)?
                    .message_id()
                    .map(String::from)
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "one alert per camera: {ids:?}");
        for i in 0..3 {
            let name = format!("Camera {i}");
            assert!(
                mails
                    .iter()
                    .any(|r| is_alert(r) && subject(&r.raw).contains(&name)),
                "no alert for {name}"
            );
        }
        let (status, asked) = status_json(
            viewer
                .get(&format!("/api/dispatch-requests/{request}"))
                .await?,
        )
        .await?;
        assert_eq!(status, 200, "{asked}");
        assert_eq!(asked["request"]["state"], "requested");
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_past_its_lease_acts_for_no_camera_it_lost() -> Result<()> {
    let nodes = Nodes::start(&["a", "b"], "")?;
    let homes = Homes::start(&nodes, 1)?;
    let result: Result<()> = async {
        let (cam, _) = homes.cameras[0].clone();
        let watcher = nodes.login_on("a", "a@example.jp", PW).await?;
        wait_online(&watcher, cam, true, Duration::from_secs(20)).await?;
        let paused = holder(&nodes, cam).context("no holder")?;
        let other = if paused == "a" { "b" } else { "a" };
        let on_paused = nodes.login_on(&paused, "a@example.jp", PW).await?;
        let on_other = nodes.login_on(other, "a@example.jp", PW).await?;
        // Paused past the agent's patience (three missed heartbeats) and the node's lease.
        nodes.node(&paused).process.kill_only(libc::SIGSTOP);
        let stopped = Instant::now();
        while holder(&nodes, cam).as_deref() != Some(other) {
            anyhow::ensure!(
                stopped.elapsed() < Duration::from_secs(30),
                "not taken over"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "taken over {} ms after the pause",
            stopped.elapsed().as_millis()
        );
        tokio::time::sleep(Duration::from_secs(13).saturating_sub(stopped.elapsed())).await;
        nodes.node(&paused).process.kill_only(libc::SIGCONT);
        // At once, the woken node is asked for a camera it lost: it acts for it only
        // through the node that holds it now, or refuses; never on its own stale link.
        let history_before = status_json(on_other.get("/api/history").await?).await?.1;
        let (status, answer) = status_json(
            on_paused
                .post(
                    &format!("/api/cameras/{cam}/ptz"),
                    &json!({"action": "go_to", "pan": 0.1, "tilt": 0.0}),
                )
                .await?,
        )
        .await?;
        // A fixed camera: the command is refused before any agent, wherever it goes; the
        // point is which link the woken node believes in, seen in its log below.
        assert_eq!(status, 409, "{answer}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let fenced = "link closed: the camera is held by another node";
        while !nodes.node(&paused).log().contains(fenced)
            && !nodes
                .node(&paused)
                .log()
                .contains("another node took the camera over")
        {
            anyhow::ensure!(Instant::now() < deadline, "the woken node kept the link");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The woken node wrote nothing about the camera: no "offline" from a lost link.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let history_after = status_json(on_other.get("/api/history").await?).await?.1;
        assert_eq!(
            history_before, history_after,
            "nothing recorded by the woken node"
        );
        wait_online(&on_paused, cam, true, Duration::ZERO).await?;
        assert_eq!(holder(&nodes, cam).as_deref(), Some(other));
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_under_load_loses_nothing() -> Result<()> {
    let mut nodes = Nodes::start(&["a", "b", "c"], "")?;
    let homes = Homes::start(&nodes, 3)?;
    let result: Result<()> = async {
        let watcher = nodes.login_on("a", "a@example.jp", PW).await?;
        for (cam, _) in &homes.cameras {
            wait_online(&watcher, *cam, true, Duration::from_secs(20)).await?;
        }
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let uploads = upload_steadily(&nodes, &homes, Duration::from_millis(300), stopping);
        let mut offline_seen = 0;
        for name in ["a", "b", "c"] {
            let started = Instant::now();
            let status = nodes.node_mut(name).stop()?;
            assert!(status.success(), "{name} stopped with {status}");
            let drained = started.elapsed();
            nodes.node_mut(name).restart()?;
            eprintln!(
                "node {name} drained in {} ms and restarted",
                drained.as_millis()
            );
            // Every camera stays online through the others meanwhile.
            let someone = nodes.login_on(name, "a@example.jp", PW).await?;
            for (cam, _) in &homes.cameras {
                if wait_online(&someone, *cam, true, Duration::from_secs(10))
                    .await
                    .is_err()
                {
                    offline_seen += 1;
                }
            }
        }
        assert_eq!(offline_seen, 0, "cameras stayed online");
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send_replace(true);
        let acked = uploads.await?;
        anyhow::ensure!(acked.len() > 10, "only {} events acknowledged", acked.len());
        let reader = nodes.login_on("b", "a@example.jp", PW).await?;
        all_stored(&reader, &acked).await?;
        // Handed over, never offline: no camera went offline in the history.
        let (_, history) = status_json(reader.get("/api/history").await?).await?;
        let offline = history
            .as_array()
            .context("history")?
            .iter()
            .filter(|h| h["action"] == "camera.offline")
            .count();
        assert_eq!(offline, 0, "{history}");
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}
