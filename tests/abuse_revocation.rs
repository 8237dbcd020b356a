//! Long-lived things end when what authorised them ends: a customer's event streams (motion,
//! pan-tilt, dispatch) and live views end within 5 s of a logout, of a password set by the
//! administrator (another process), and of the camera's removal; an agent's link ends when its
//! camera is removed or given a new token; an operator's console stream and shared live view
//! end when the operator is removed, the stream also at their logout; everything of a
//! customer ends when the account is removed, and when the session expires; streams and live views also end after their
//! maximum lifetime. Runs in a loopback-only network namespace (the live views are real
//! WebRTC sessions).

mod common;

use anyhow::{Context, Result, bail};
use common::{Client, Relay, in_loopback_namespace, status_json, wait_online};
use serde_json::json;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
const WITHIN: Duration = Duration::from_secs(5);

/// Opens a server-sent event stream as `client`.
async fn open_stream(client: &Client, path: &str) -> Result<reqwest::Response> {
    let resp = client.get(path).await?;
    if resp.status() != 200 {
        bail!("{path}: {} {}", resp.status(), resp.text().await?);
    }
    Ok(resp)
}

/// How long until the relay ends `stream` (its body ends), or an error after `limit`.
async fn ended_within(
    stream: &mut reqwest::Response,
    what: &str,
    limit: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => return Ok(start.elapsed()),
            Err(_) => bail!("{what}: still open after {limit:?}"),
        }
    }
}

/// Starts a live view of `camera` as `client` (a webrtc-rs peer); returns the peer.
async fn watch(
    client: &Client,
    camera: i64,
) -> Result<std::sync::Arc<webrtc::peer_connection::RTCPeerConnection>> {
    let (pc, sdp) = common::whep_offer().await?;
    let resp = common::post_offer(client, &format!("/api/cameras/{camera}/whep"), sdp).await?;
    if resp.status() != 201 {
        bail!("WHEP: {} {}", resp.status(), resp.text().await?);
    }
    Ok(pc)
}

/// The relay's live sessions of `camera`, from `/metrics`.
async fn viewers(relay: &Relay, camera: i64) -> Result<i64> {
    let text = relay.client().get("/metrics").await?.text().await?;
    let line = format!("eyeward_viewers{{camera=\"{camera}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(Ok(0), str::parse)?)
}

/// Waits until `camera` has no live session left.
async fn no_viewers_within(relay: &Relay, camera: i64, what: &str) -> Result<Duration> {
    let start = Instant::now();
    while viewers(relay, camera).await? > 0 {
        if start.elapsed() > WITHIN {
            bail!("{what}: a live view of camera {camera} still runs after {WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(start.elapsed())
}

/// Waits until the relay's log says `needle`.
async fn logged_within(relay: &Relay, needle: &str) -> Result<Duration> {
    let start = Instant::now();
    while !relay.log().contains(needle) {
        if start.elapsed() > WITHIN {
            bail!("no {needle:?} in the relay's log after {WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(start.elapsed())
}

/// Adds camera `name` (`model`, dispatch plan) of `owner` with its agent running a simulated
/// camera; returns its id and the agent (stopped when dropped).
fn camera_with_agent(
    relay: &Relay,
    owner: i64,
    name: &str,
    model: &str,
) -> Result<(i64, common::Process)> {
    let cam = relay.camera(owner, name, model, "dispatch", "agent")?;
    let agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        &format!("sim://{model}"),
        name,
    )?;
    Ok((cam["id"].as_i64().context("id")?, agent))
}

/// Alice, watching her camera live with its motion stream open: the camera's id, the stream,
/// and what keeps the rest alive (agent, client, peer).
async fn watched_camera(
    relay: &Relay,
) -> Result<(
    i64,
    reqwest::Response,
    (
        common::Process,
        Client,
        std::sync::Arc<webrtc::peer_connection::RTCPeerConnection>,
    ),
)> {
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let (cam_id, agent) = camera_with_agent(relay, alice_id, "Porch", "fixed")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;
    let motion = open_stream(&alice, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let pc = watch(&alice, cam_id).await?;
    Ok((cam_id, motion, (agent, alice, pc)))
}

const REVOKED: &str = "every_stream_ends_when_its_grant_is_taken_away";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_ends_when_its_grant_is_taken_away() -> Result<()> {
    if !in_loopback_namespace(REVOKED)? {
        return Ok(());
    }
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]\n")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let (cam_id, _agent) = camera_with_agent(&relay, alice_id, "Porch", "pan-tilt")?;
    let (spare_id, _spare_agent) = camera_with_agent(&relay, alice_id, "Gate", "fixed")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;
    wait_online(&alice, spare_id, true, Duration::from_secs(15)).await?;
    let mut took = Vec::new();

    // A logout ends every stream and live view of that session.
    let mut motion = open_stream(&alice, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let mut ptz = open_stream(&alice, &format!("/api/cameras/{cam_id}/ptz/live")).await?;
    let mut dispatch = open_stream(&alice, "/api/dispatch-requests/live").await?;
    let _pc = watch(&alice, cam_id).await?;
    assert_eq!(viewers(&relay, cam_id).await?, 1);
    assert_eq!(alice.post("/api/logout", &json!({})).await?.status(), 204);
    took.push(ended_within(&mut motion, "motion stream after logout", WITHIN).await?);
    took.push(ended_within(&mut ptz, "pan-tilt stream after logout", WITHIN).await?);
    took.push(ended_within(&mut dispatch, "dispatch stream after logout", WITHIN).await?);
    took.push(no_viewers_within(&relay, cam_id, "after logout").await?);

    // A password set by the administrator (another process) ends them too.
    let alice = relay.login("a@example.jp", PW).await?;
    let mut motion = open_stream(&alice, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let _pc = watch(&alice, cam_id).await?;
    relay.admin(
        &["customer", "set-password", "--id", &alice_id.to_string()],
        "a new long password\n",
    )?;
    took.push(ended_within(&mut motion, "motion stream after a password reset", WITHIN).await?);
    took.push(no_viewers_within(&relay, cam_id, "after a password reset").await?);
    let (status, _) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(status, 401, "the old session is over");

    // A new agent token ends the camera's link (the old token's agent is refused after).
    relay.admin(&["camera", "new-token", "--id", &spare_id.to_string()], "")?;
    took.push(logged_within(&relay, "the agent token was revoked").await?);

    // The camera removed: its streams, live views and agent link end.
    let alice = relay.login("a@example.jp", "a new long password").await?;
    let mut motion = open_stream(&alice, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let mut ptz = open_stream(&alice, &format!("/api/cameras/{cam_id}/ptz/live")).await?;
    let mut dispatch = open_stream(&alice, "/api/dispatch-requests/live").await?;
    let _pc = watch(&alice, cam_id).await?;
    relay.admin(&["camera", "remove", "--id", &cam_id.to_string()], "")?;
    took.push(
        ended_within(
            &mut motion,
            "motion stream after the camera's removal",
            WITHIN,
        )
        .await?,
    );
    took.push(
        ended_within(
            &mut ptz,
            "pan-tilt stream after the camera's removal",
            WITHIN,
        )
        .await?,
    );
    took.push(no_viewers_within(&relay, cam_id, "after the camera's removal").await?);
    // The session is still good: its stream not about that camera goes on.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), dispatch.chunk())
            .await
            .is_err(),
        "the dispatch stream ended with the camera"
    );
    let removed_logs = relay.log().matches("the agent token was revoked").count();
    assert!(removed_logs >= 2, "the removed camera's link did not end");

    // An operator's console stream and shared live view end when the operator is removed.
    let op_id = relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let op = relay.login("op@example.jp", PW).await?;
    let request =
        common::request_dispatch(&alice, &json!({"camera_id": spare_id, "share_live": true}))
            .await?;
    let new_token = relay.admin(&["camera", "new-token", "--id", &spare_id.to_string()], "")?;
    let _spare_again = relay.start_agent(
        new_token["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "spare-again",
    )?;
    wait_online(&alice, spare_id, true, Duration::from_secs(15)).await?;
    let mut console = open_stream(&op, "/api/ops/dispatch-requests/live").await?;
    let (_pc, sdp) = common::whep_offer().await?;
    let path = format!("/api/ops/dispatch-requests/{request}/whep");
    let shared = common::post_offer(&op, &path, sdp).await?;
    assert_eq!(shared.status(), 201);
    assert_eq!(viewers(&relay, spare_id).await?, 1);
    relay.admin(&["operator", "remove", "--id", &op_id.to_string()], "")?;
    took.push(
        ended_within(
            &mut console,
            "the console stream after the operator's removal",
            WITHIN,
        )
        .await?,
    );
    took.push(
        no_viewers_within(
            &relay,
            spare_id,
            "the operator's shared view after their removal",
        )
        .await?,
    );

    // An operator's logout ends their console stream.
    relay.operator("op2@example.jp", "Olga", "tokyo", PW)?;
    let op = relay.login("op2@example.jp", PW).await?;
    let mut console = open_stream(&op, "/api/ops/dispatch-requests/live").await?;
    assert_eq!(op.post("/api/logout", &json!({})).await?.status(), 204);
    took.push(
        ended_within(
            &mut console,
            "the console stream after the operator's logout",
            WITHIN,
        )
        .await?,
    );

    // The customer's account removed: every stream and live view of it ends.
    let mut dispatch = open_stream(&alice, "/api/dispatch-requests/live").await?;
    let _pc = watch(&alice, spare_id).await?;
    relay.admin(&["customer", "remove", "--id", &alice_id.to_string()], "")?;
    took.push(
        ended_within(
            &mut dispatch,
            "the dispatch stream after the account's removal",
            WITHIN,
        )
        .await?,
    );
    took.push(no_viewers_within(&relay, spare_id, "after the account's removal").await?);

    eprintln!("revocations took {took:?}");
    Ok(())
}

const EXPIRY: &str = "a_session_that_expires_ends_its_streams";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_expires_ends_its_streams() -> Result<()> {
    if !in_loopback_namespace(EXPIRY)? {
        return Ok(());
    }
    let relay = Relay::start(
        "[auth]\nsession_idle_timeout = \"3s\"\n[webrtc]\nice_addresses = [\"127.0.0.1\"]\n",
    )?;
    let (cam_id, mut motion, _watching) = watched_camera(&relay).await?;
    // Nothing more from this session: it expires 3 s after its last request.
    let ended = ended_within(
        &mut motion,
        "a stream of an expired session",
        Duration::from_secs(8),
    )
    .await?;
    assert!(ended >= Duration::from_secs(2), "ended early: {ended:?}");
    no_viewers_within(&relay, cam_id, "after the session expired").await?;
    Ok(())
}

const LIFETIME: &str = "streams_and_live_views_end_after_their_lifetime";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_live_views_end_after_their_lifetime() -> Result<()> {
    if !in_loopback_namespace(LIFETIME)? {
        return Ok(());
    }
    let relay = Relay::start(
        "[http]\nmax_event_stream = \"2s\"\n\
         [webrtc]\nice_addresses = [\"127.0.0.1\"]\nmax_session = \"2s\"\n",
    )?;
    let (cam_id, mut motion, watching) = watched_camera(&relay).await?;
    let stream = ended_within(&mut motion, "a stream past its lifetime", WITHIN).await?;
    assert!(
        stream >= Duration::from_millis(1500),
        "ended early: {stream:?}"
    );
    no_viewers_within(&relay, cam_id, "past its lifetime").await?;
    // The session itself is untouched: the next stream opens.
    open_stream(&watching.1, &format!("/api/cameras/{cam_id}/events/live")).await?;
    Ok(())
}

const MEMBER_REVOKED: &str =
    "a_members_live_view_and_streams_end_when_the_holder_takes_the_right_away";

/// A household member watches the holder's camera live with its event stream open: taking
/// `watch` away ends the live view (the event stream goes on: `events` stays), taking
/// `events` away ends that stream, and removing the member ends all they had open, each
/// within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_live_view_and_streams_end_when_the_holder_takes_the_right_away() -> Result<()> {
    if !in_loopback_namespace(MEMBER_REVOKED)? {
        return Ok(());
    }
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]\n")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let (cam_id, _agent) = camera_with_agent(&relay, alice_id, "Porch", "fixed")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;
    let cameras = |rights: &[&str]| json!({ "cameras": { cam_id.to_string(): rights } });
    let hana = relay
        .member(
            &alice,
            "hana@example.jp",
            "Hana",
            cameras(&["watch", "events"]),
            PW,
        )
        .await?;
    let (_, household) = status_json(alice.get("/api/household").await?).await?;
    let member = household["members"][0]["id"]
        .as_i64()
        .context("member id")?;
    let rights = format!("/api/household/members/{member}");
    let mut took = Vec::new();

    let mut motion = open_stream(&hana, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let _pc = watch(&hana, cam_id).await?;
    assert_eq!(viewers(&relay, cam_id).await?, 1);
    let put = alice
        .request(reqwest::Method::PUT, &rights)
        .json(&cameras(&["events"]));
    assert_eq!(put.send().await?.status(), 200);
    took.push(no_viewers_within(&relay, cam_id, "after watch was taken away").await?);
    let (status, _) = status_json(
        common::post_offer(
            &hana,
            &format!("/api/cameras/{cam_id}/whep"),
            common::whep_offer().await?.1,
        )
        .await?,
    )
    .await?;
    assert_eq!(status, 403, "watching is no longer hers");

    let put = alice
        .request(reqwest::Method::PUT, &rights)
        .json(&cameras(&[]));
    assert_eq!(put.send().await?.status(), 200);
    took.push(
        ended_within(
            &mut motion,
            "events stream after events was taken away",
            WITHIN,
        )
        .await?,
    );

    let put = alice
        .request(reqwest::Method::PUT, &rights)
        .json(&cameras(&["watch", "events"]));
    assert_eq!(put.send().await?.status(), 200);
    let mut motion = open_stream(&hana, &format!("/api/cameras/{cam_id}/events/live")).await?;
    let _pc = watch(&hana, cam_id).await?;
    let delete = alice.request(reqwest::Method::DELETE, &rights);
    assert_eq!(delete.send().await?.status(), 204);
    took.push(
        ended_within(
            &mut motion,
            "events stream after the member's removal",
            WITHIN,
        )
        .await?,
    );
    took.push(no_viewers_within(&relay, cam_id, "after the member's removal").await?);
    let (status, _) = status_json(hana.get("/api/me").await?).await?;
    assert_eq!(status, 401, "her session went with her");
    eprintln!("ended after {took:?}");
    Ok(())
}
