//! Live video over WHEP, received by a real WebRTC peer (webrtc-rs as the viewer): the first
//! frame is decodable (SPS, PPS, IDR), from an agent camera and from a direct one over TCP and
//! UDP; an H.265 camera's own stream goes to a viewer that takes H.265 (VPS, SPS, PPS, then
//! an IRAP picture), H.264 transcoded from it to one that does not; sessions end with DELETE,
//! and bad offers get clean 4xx.

mod common;

use anyhow::{Context, Result, bail};
use common::{Process, Relay, status_json, wait_online};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::packetizer::Depacketizer;

const PW: &str = "correct horse battery";
const LOOPBACK_ONLY: &str = "[webrtc]\nice_addresses = [\"127.0.0.1\"]";

/// A relay with a customer whose agent camera is online (simulated, keyframe every 4 s).
async fn relay_with_live_camera(extra: &str) -> Result<(Relay, i64, Process, common::Client)> {
    let relay = Relay::start(&format!("{LOOPBACK_ONLY}\n{extra}"))?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let id = cam["id"].as_i64().context("id")?;
    let token = cam["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, "sim://fixed", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, id, true, Duration::from_secs(10)).await?;
    Ok((relay, id, agent, alice))
}

/// A receive-only WebRTC peer on loopback.
async fn viewer() -> Result<Arc<RTCPeerConnection>> {
    eyeward_bench::viewer::recvonly(&eyeward_bench::viewer::loopback_api()?).await
}

/// Offers, posts to WHEP, and applies the answer; returns the session's Location.
async fn watch(client: &common::Client, cam: i64, pc: &RTCPeerConnection) -> Result<String> {
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    let sdp = pc
        .local_description()
        .await
        .context("local description")?
        .sdp;
    let resp = client
        .request(reqwest::Method::POST, &format!("/api/cameras/{cam}/whep"))
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("WHEP answered {}: {}", resp.status(), resp.text().await?);
    }
    assert_eq!(resp.headers()["content-type"], "application/sdp");
    assert!(resp.headers().contains_key("etag"));
    let location = resp.headers()["location"].to_str()?.to_owned();
    let answer = resp.text().await?;
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    Ok(location)
}

/// The NAL unit types of every access unit the viewer receives, with the track's SSRC: of
/// H.264, or of H.265 when the track is (read from the RFC 7798 payload headers: a single
/// unit's own, each of an aggregation packet's, a fragmented unit's once).
fn access_units(pc: &RTCPeerConnection) -> tokio::sync::mpsc::UnboundedReceiver<(u32, Vec<u8>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    pc.on_track(Box::new(move |track, _, _| {
        let tx = tx.clone();
        let h265 = track
            .codec()
            .capability
            .mime_type
            .eq_ignore_ascii_case("video/H265");
        Box::pin(async move {
            let mut depacketizer = H264Packet::default();
            let (mut unit, mut types) = (Vec::new(), Vec::new());
            while let Ok((packet, _)) = track.read_rtp().await {
                let payload = &packet.payload;
                if h265 {
                    types.extend(h265_unit_types(payload));
                } else if let Ok(payload) = depacketizer.depacketize(payload) {
                    unit.extend_from_slice(&payload);
                }
                if packet.header.marker && !(unit.is_empty() && types.is_empty()) {
                    types.extend(
                        unit.windows(4)
                            .enumerate()
                            .filter(|(_, w)| w[..3] == [0, 0, 1])
                            .map(|(i, _)| unit[i + 3] & 0x1f),
                    );
                    unit.clear();
                    if tx.send((track.ssrc(), std::mem::take(&mut types))).is_err() {
                        return;
                    }
                }
            }
        })
    }));
    rx
}

/// The H.265 NAL unit types an RTP payload starts or holds.
fn h265_unit_types(payload: &[u8]) -> Vec<u8> {
    let kind = |header: u8| (header >> 1) & 0x3f;
    match payload {
        [h, _, rest @ ..] if kind(*h) == 48 => {
            let mut types = Vec::new();
            let mut rest = rest;
            while let [a, b, tail @ ..] = rest {
                let len = usize::from(u16::from_be_bytes([*a, *b]));
                if let Some(&first) = tail.first() {
                    types.push(kind(first));
                }
                rest = tail.get(len..).unwrap_or_default();
            }
            types
        }
        [h, _, fu, ..] if kind(*h) == 49 => {
            if fu & 0x80 != 0 {
                vec![fu & 0x3f]
            } else {
                Vec::new()
            }
        }
        [h, ..] => vec![kind(*h)],
        [] => Vec::new(),
    }
}

/// The NAL unit types of the first access unit, and how long after `since` it came.
async fn first_access_unit(
    units: &mut tokio::sync::mpsc::UnboundedReceiver<(u32, Vec<u8>)>,
    since: Instant,
) -> Result<(Vec<u8>, Duration)> {
    let (_, types) = tokio::time::timeout(Duration::from_secs(15), units.recv())
        .await
        .context("no video within 15 s")?
        .context("track ended")?;
    Ok((types, since.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_viewer_gets_a_decodable_first_frame_at_once() -> Result<()> {
    let (relay, cam, _agent, alice) = relay_with_live_camera("").await?;
    // The first viewer starts the camera's feed; the second finds its picture cached.
    for round in 0..2 {
        let pc = viewer().await?;
        let mut units = access_units(&pc);
        let start = Instant::now();
        let location = watch(&alice, cam, &pc).await?;
        assert!(
            location.starts_with(&format!("/api/cameras/{cam}/whep/")),
            "{location}"
        );
        let (types, took) = first_access_unit(&mut units, start).await?;
        eprintln!("viewer {round}: first frame after {took:?}, NAL types {types:?}");
        assert_eq!(
            types[..3],
            [7, 8, 5],
            "SPS, PPS, then an IDR slice: {types:?}"
        );
        assert!(!types.contains(&6), "no SEI: {types:?}");
        if round == 1 {
            assert!(
                took < Duration::from_secs(2),
                "a cached picture comes at once, not at the next keyframe: {took:?}"
            );
        }
        let resp = alice
            .request(reqwest::Method::DELETE, &location)
            .send()
            .await?;
        assert_eq!(resp.status(), 204);
        assert_eq!(
            status_json(
                alice
                    .request(reqwest::Method::DELETE, &location)
                    .send()
                    .await?
            )
            .await?
            .0,
            404
        );
        pc.close().await?;
    }
    let metrics = relay.client().get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("eyeward_first_frame_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eyeward_relay_latency_seconds_count"),
        "{metrics}"
    );
    Ok(())
}

/// A direct camera's bytes come through the relay's guarded connection (pictures bounded,
/// `source=` pinned), over TCP and over UDP: a viewer decodes its first frame either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_camera_plays_through_the_guarded_connection_over_tcp_and_udp() -> Result<()> {
    let camera = common::Camera::start("fixed", &[], None)?;
    for transport in ["tcp", "udp"] {
        let relay = Relay::start(&format!(
            "{LOOPBACK_ONLY}
[cameras]
allow_private_sources = true
rtsp_transport = \"{transport}\"\n"
        ))?;
        let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let cam = relay.camera(customer, "Gate", "fixed", "camera-only", &camera.url)?;
        let id = cam["id"].as_i64().context("id")?;
        let alice = relay.login("a@example.jp", PW).await?;
        let pc = viewer().await?;
        let mut units = access_units(&pc);
        watch(&alice, id, &pc).await?;
        let (types, took) = first_access_unit(&mut units, Instant::now()).await?;
        eprintln!("direct over {transport}: first frame after {took:?}");
        assert_eq!(types[..3], [7, 8, 5], "{transport}: {types:?}");
        pc.close().await?;
    }
    Ok(())
}

/// Cameras send sound too (G.711 or AAC as a second stream): their video plays as before,
/// pulled directly and through an agent that detects motion on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_with_sound_still_plays_its_video_directly_and_through_its_agent() -> Result<()> {
    let camera = common::Camera::start(
        "fixed",
        &["--audio", "aac", "--keyframe-interval", "1s"],
        None,
    )?;
    let relay = Relay::start(&format!(
        "{LOOPBACK_ONLY}\n[cameras]\nallow_private_sources = true\n"
    ))?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let direct = relay.camera(customer, "Gate", "fixed", "camera-only", &camera.url)?;
    let linked = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let token = linked["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let linked = linked["id"].as_i64().context("id")?;
    wait_online(&alice, linked, true, Duration::from_secs(10)).await?;
    // Its decoder has had a keyframe: the agent keeps the camera's group of pictures.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, id) in [
        ("direct", direct["id"].as_i64().context("id")?),
        ("through the agent", linked),
    ] {
        let pc = viewer().await?;
        let mut units = access_units(&pc);
        watch(&alice, id, &pc).await?;
        let (types, took) = first_access_unit(&mut units, Instant::now()).await?;
        eprintln!("{name}: first frame after {took:?}");
        assert_eq!(types[..3], [7, 8, 5], "{name}: {types:?}");
        pc.close().await?;
    }
    // The agent's decoder ran on the video beside the sound: the view was served from the
    // group of pictures it keeps.
    assert!(agent.served_from_group_of_pictures(), "{}", agent.log());
    Ok(())
}

/// An H.265 camera (x265, an open group of pictures: CRA pictures after the first IDR): a
/// viewer that takes H.265 gets the camera's own stream at once, though the relay had not read
/// the camera before (it asks the camera first); one that takes only H.264 gets it transcoded
/// from that same feed, not from a session of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_takes_h265_gets_the_cameras_own_and_another_h264_transcoded_from_it()
-> Result<()> {
    let h265 = [&common::SMALL_CAMERA[..], &["--video", "h265"]].concat();
    let camera = common::Camera::start("fixed", &h265, None)?;
    let relay = Relay::start(common::LOOPBACK_VIEWERS_AND_CAMERAS)?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(customer, "Gate", "fixed", "camera-only", &camera.url)?;
    let id = cam["id"].as_i64().context("id")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let apis = [
        ("takes H.265", eyeward_bench::viewer::loopback_api()?),
        ("takes H.264 only", eyeward_bench::viewer::h264_api()?),
    ];
    let mut viewers = Vec::new();
    for (what, api) in &apis {
        let pc = eyeward_bench::viewer::recvonly(api).await?;
        let mut units = access_units(&pc);
        watch(&alice, id, &pc).await?;
        let (types, took) = first_access_unit(&mut units, Instant::now()).await?;
        eprintln!("a viewer that {what}: first frame after {took:?}, NAL types {types:?}");
        // The types are read as the track's codec says: H.265's only from an H.265 track.
        if *what == "takes H.265" {
            assert_eq!(types[..3], [32, 33, 34], "VPS, SPS, PPS: {types:?}");
            assert!(
                (16..=21).contains(&types[3]),
                "then an IRAP picture: {types:?}"
            );
        } else {
            assert_eq!(types[..3], [7, 8, 5], "SPS, PPS, IDR: {types:?}");
        }
        viewers.push(pc);
    }
    let log = relay.process.log();
    for feed in ["codec=H265", "codec=H264"] {
        let starts = log
            .lines()
            .filter(|l| l.contains(feed) && l.contains("feed starting"))
            .count();
        assert_eq!(starts, 1, "{feed}: {log}");
    }
    assert_eq!(
        log.matches("transcoding the camera's H.265 to H.264")
            .count(),
        1,
        "{log}"
    );
    // The H.264 feed reads the H.265 feed: one RTSP session with the camera.
    assert_eq!(
        log.matches("feed{camera=1 codec=H264}: retina").count(),
        0,
        "{log}"
    );
    for pc in viewers {
        pc.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_foreign_sessions_get_clean_errors() -> Result<()> {
    let (relay, cam, _agent, alice) =
        relay_with_live_camera("max_viewers_per_customer = 1").await?;
    let bob_id = relay.customer("b@example.jp", "Bob", "west", PW)?;
    let bob_cam = relay.camera(bob_id, "Bob's", "fixed", "dispatch", "agent")?["id"]
        .as_i64()
        .context("id")?;
    let bob = relay.login("b@example.jp", PW).await?;
    let path = format!("/api/cameras/{cam}/whep");
    let post = |client: &common::Client, path: &str, ctype: &str, body: String| {
        client
            .request(reqwest::Method::POST, path)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let no_video =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
            .to_owned();
    for (ctype, body, want) in [
        ("application/sdp", "garbage".to_owned(), 400),
        ("application/sdp", no_video, 400),
        (
            "application/sdp",
            format!("v=0\r\n{}", "a=x\r\n".repeat(200_000)),
            413,
        ), // 1 MB
        ("text/plain", "v=0".to_owned(), 415),
    ] {
        let (status, err) = status_json(post(&alice, &path, ctype, body).await?).await?;
        assert_eq!(status, want, "{err}");
    }
    // Another customer's camera, no session, an unknown camera.
    let pc = viewer().await?;
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer.clone()).await?;
    assert_eq!(
        status_json(
            post(
                &alice,
                &format!("/api/cameras/{bob_cam}/whep"),
                "application/sdp",
                offer.sdp.clone()
            )
            .await?
        )
        .await?
        .0,
        404
    );
    assert_eq!(
        status_json(post(&relay.client(), &path, "application/sdp", offer.sdp.clone()).await?)
            .await?
            .0,
        401
    );
    assert_eq!(
        status_json(
            post(
                &alice,
                "/api/cameras/99999/whep",
                "application/sdp",
                offer.sdp
            )
            .await?
        )
        .await?
        .0,
        404
    );
    pc.close().await?;

    // A real session: another customer cannot end it; its owner can.
    let pc = viewer().await?;
    let mut units = access_units(&pc);
    let location = watch(&alice, cam, &pc).await?;
    assert_eq!(
        status_json(
            bob.request(reqwest::Method::DELETE, &location)
                .send()
                .await?
        )
        .await?
        .0,
        404
    );
    let foreign = location.replace(&format!("/cameras/{cam}/"), &format!("/cameras/{bob_cam}/"));
    assert_eq!(
        status_json(
            bob.request(reqwest::Method::DELETE, &foreign)
                .send()
                .await?
        )
        .await?
        .0,
        404
    );
    let (types, _) = first_access_unit(&mut units, Instant::now()).await?;
    assert_eq!(types[..2], [7, 8]);
    // One live view per customer here: a second is refused, and the first plays on.
    let extra = viewer().await?;
    let offer = extra.create_offer(None).await?;
    extra.set_local_description(offer.clone()).await?;
    let (status, err) =
        status_json(post(&alice, &path, "application/sdp", offer.sdp).await?).await?;
    assert_eq!(status, 429, "{err}");
    assert!(
        units.recv().await.is_some(),
        "the first viewer still gets video"
    );
    assert_eq!(
        alice
            .request(reqwest::Method::DELETE, &location)
            .send()
            .await?
            .status(),
        204
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyframe_request_is_answered_from_the_cache() -> Result<()> {
    let (relay, cam, _agent, alice) = relay_with_live_camera("").await?;
    let pc = viewer().await?;
    let mut units = access_units(&pc);
    watch(&alice, cam, &pc).await?;
    first_access_unit(&mut units, Instant::now()).await?;
    // Let the cached start pass, then ask for a keyframe the camera would only send seconds
    // later (it sends one every 4 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ssrc, _) = units.recv().await.context("video")?;
    while units.try_recv().is_ok() {}
    let pli = PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc: ssrc,
    };
    let asked = Instant::now();
    pc.write_rtcp(&[Box::new(pli)]).await?;
    let deadline = asked + Duration::from_millis(700);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (_, types) = tokio::time::timeout(left, units.recv())
            .await
            .context("no keyframe soon after the request")?
            .context("track ended")?;
        if types.contains(&5) {
            assert_eq!(types[..2], [7, 8], "{types:?}");
            eprintln!("keyframe {:?} after the request", asked.elapsed());
            break;
        }
    }
    let metrics = relay.client().get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("eyeward_keyframe_requests_answered_total 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_without_sound_to_hear_is_a_clean_409_and_another_customers_session_404()
-> Result<()> {
    use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
    use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
    use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
    // The simulated camera has no microphone.
    let (relay, cam, _agent, alice) = relay_with_live_camera("").await?;
    relay.customer("b@example.jp", "Bob", "west", PW)?;
    let bob = relay.login("b@example.jp", PW).await?;
    let listen = |client: &common::Client, location: &str, body: &str| {
        client
            .request(reqwest::Method::POST, &format!("{location}/sound"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    // A view set up with video alone.
    let video_only = viewer().await?;
    let location = watch(&alice, cam, &video_only).await?;
    let (status, body) =
        status_json(listen(&alice, &location, r#"{"listen":true}"#).await?).await?;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("without sound"),
        "{body}"
    );
    // A view with sound, of a camera that has none.
    let with_sound = viewer().await?;
    with_sound
        .add_transceiver_from_kind(
            RTPCodecType::Audio,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            }),
        )
        .await?;
    let location = watch(&alice, cam, &with_sound).await?;
    let (status, body) =
        status_json(listen(&alice, &location, r#"{"listen":true}"#).await?).await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "the camera sends no sound", "{body}");
    let (status, body) =
        status_json(listen(&alice, &location, r#"{"listen":false}"#).await?).await?;
    assert_eq!(
        (status, body["listening"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    // Not a listen request; another customer's session.
    let (status, _) = status_json(listen(&alice, &location, r#"{"listen":"yes"}"#).await?).await?;
    assert_eq!(status, 400);
    let (status, _) = status_json(listen(&bob, &location, r#"{"listen":true}"#).await?).await?;
    assert_eq!(status, 404);
    video_only.close().await?;
    with_sound.close().await?;
    Ok(())
}
