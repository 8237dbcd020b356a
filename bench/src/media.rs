//! The media benchmark (`bench/media.sh`, issue 23): what each transcode costs the relay for
//! one camera at 1280×720, 15 fps (its sound AAC at 16 kHz), and how soon each path shows its
//! first frame. webrtc-rs viewers on loopback, the relay and a simulated camera read
//! directly, release builds:
//! - passthrough: one viewer of the camera's H.264, for `--seconds`;
//! - H.264 → VP8: a viewer that takes VP8 alone joins as well;
//! - AAC → Opus: the first viewer listens as well;
//! - H.265 → H.264: a viewer that takes H.264 and not H.265 joins a second camera, the same
//!   but in H.265;
//! - H.265 passed through: a viewer that takes H.265 joins that camera as well;
//!
//! each the relay's CPU (cores, from `/proc`) and resident memory against the stage before;
//! then first frame (offer to first RTP packet), `--joins` times each: H.264 warm (the feed
//! runs), VP8 cold (the transcode starts for the join, the H.264 feed running) and VP8 warm,
//! H.265 passed through cold (the camera's session starts for the join) and warm, then H.264
//! from the H.265 camera cold (its transcode starts for the join, the H.265 feed running) and
//! warm;
//! then talkback, mouth to camera: a viewer's microphone (Opus, 20 ms frames: a second of
//! silence, then a second of a 660 Hz tone) through the relay to the camera's speaker (the
//! simulator's ONVIF back-channel, which logs when each stretch of sound began), from the
//! tone's first sample (a frame before its frame is sent, as from a microphone) to its onset
//! heard, `--presses` times; against the same frames
//! sent straight to the camera's back-channel by the relay's own RTSP back-channel client,
//! with no browser connection and no relay between.
//!
//! `media [--seconds S] [--joins N] [--presses N]`; prints a Markdown section.

use anyhow::{Context, Result};
use eyeward_bench::process::{
    BENCH_EMAIL, BENCH_PASSWORD, Running, add_camera, provision_customer, start_relay,
    start_simulator, usage,
};
use eyeward_bench::quantile;
use eyeward_bench::viewer::{Eyeward, Viewer, h264_api, loopback_api, opus_second, vp8_api};
use eyeward_relay::talk::Backchannel;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::api::API;
use webrtc::media::Sample;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

/// The microphone's tone, and how long an Opus frame lasts.
const TONE_HZ: f64 = 660.0;
const FRAME: Duration = Duration::from_millis(20);

/// Where the bench's speech goes: a viewer's microphone (through the relay), or the camera's
/// back-channel itself.
enum Mouth {
    Relay(Arc<TrackLocalStaticSample>),
    Direct(Backchannel),
}

impl Mouth {
    async fn say(&mut self, frame: &bytes::Bytes, timestamp: u32) -> Result<()> {
        match self {
            Mouth::Relay(track) => {
                let sample = Sample {
                    data: frame.clone(),
                    duration: FRAME,
                    ..Default::default()
                };
                track.write_sample(&sample).await?;
            }
            Mouth::Direct(backchannel) => backchannel.push(timestamp, frame)?,
        }
        Ok(())
    }
}

/// When the camera's speaker heard a stretch of sound at the tone's pitch begin (Unix ms),
/// the first since `since`, from the simulator's log.
fn heard_since(log: &Path, since: i64) -> Option<i64> {
    let log = std::fs::read_to_string(log).ok()?;
    log.lines()
        .filter(|l| l.contains("back-channel heard"))
        .filter_map(|l| {
            let field = |name: &str| -> Option<i64> {
                l.split(&format!("{name}="))
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            };
            let hz = field("hz")?;
            let began = field("began_unix_ms")?;
            ((hz - TONE_HZ as i64).abs() <= 20 && began >= since).then_some(began)
        })
        .min()
}

/// Presses "speak" `presses` times through `mouth`: a second of silence, then a second of the
/// tone; the time from the tone's first frame to the camera hearing it, in ms, each time.
async fn mouth_to_camera(
    mouth: &mut Mouth,
    sim_log: &Path,
    presses: usize,
    tone: &[bytes::Bytes],
    silence: &[bytes::Bytes],
) -> Result<Vec<f64>> {
    let mut took = Vec::with_capacity(presses);
    let mut timestamp: u32 = 0;
    let mut tick = tokio::time::interval(FRAME);
    for _ in 0..presses {
        let mut started = None;
        for (i, frame) in silence.iter().chain(tone).enumerate() {
            tick.tick().await;
            // A microphone sends a frame once its last sample is in: the tone's first sample
            // was spoken a frame before its frame goes.
            if i == silence.len() {
                started = Some(eyeward::clock::Clock::real().now().0 - FRAME.as_millis() as i64);
            }
            mouth.say(frame, timestamp).await?;
            timestamp = timestamp.wrapping_add(960);
        }
        let started = started.context("no tone sent")?;
        let deadline = Instant::now() + Duration::from_secs(3);
        let began = loop {
            if let Some(began) = heard_since(sim_log, started - 100) {
                break began;
            }
            anyhow::ensure!(Instant::now() < deadline, "the camera heard no tone");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        took.push((began - started) as f64);
    }
    Ok(took)
}

struct Args {
    seconds: u64,
    joins: usize,
    presses: usize,
}

fn args() -> Result<Args> {
    let mut args = Args {
        seconds: 20,
        joins: 8,
        presses: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => args.seconds = value.parse()?,
            "--joins" => args.joins = value.parse()?,
            "--presses" => args.presses = value.parse()?,
            other => {
                anyhow::bail!("unknown flag {other}: media [--seconds S] [--joins N] [--presses N]")
            }
        }
    }
    Ok(args)
}

/// The relay's CPU (cores) and resident memory (MB) over `seconds`.
async fn measure(relay: &Running, seconds: u64) -> Result<(f64, f64)> {
    let before = usage(relay.pid())?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = usage(relay.pid())?;
    let cores = (after.cpu - before.cpu).as_secs_f64() / seconds as f64;
    Ok((cores, after.rss_bytes as f64 / 1e6))
}

/// Waits until `viewer` has had a packet; how long since `since`.
async fn first_packet(viewer: &Viewer, since: Instant) -> Result<Duration> {
    while viewer.packets() == 0 {
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(20),
            "no packet in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(since.elapsed())
}

/// A viewer of `camera` joined through `api`, and its first packet's time from the offer.
async fn join(eyeward: &Eyeward, api: &API, camera: i64) -> Result<(Viewer, Duration)> {
    let since = Instant::now();
    let viewer = eyeward.join(api, camera).await?;
    let took = first_packet(&viewer, since).await?;
    Ok((viewer, took))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let dir = std::env::temp_dir().join(format!("eyeward-media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_sim, camera_url) = start_simulator(
        "fixed",
        "127.0.0.1:0",
        &[
            "--audio",
            "aac",
            "--backchannel",
            "pcmu",
            "--grain",
            "12",
            "--keyframe-interval",
            "2s",
        ],
        &dir.join("sim.log"),
    )?;
    let (_h265_sim, h265_url) = start_simulator(
        "fixed",
        "127.0.0.1:0",
        &[
            "--video",
            "h265",
            "--grain",
            "12",
            "--keyframe-interval",
            "2s",
        ],
        &dir.join("sim-h265.log"),
    )?;
    // Transcoded feeds linger a second after their last viewer, so that each cold join
    // starts them.
    let extra = "[webrtc]\nice_addresses = [\"127.0.0.1\"]\nlinger = \"1s\"\n\
                 [cameras]\nallow_private_sources = true\n";
    let (config, customer) = provision_customer(&dir, extra)?;
    let id = |v: serde_json::Value| v["id"].as_i64().context("camera id");
    let camera = id(add_camera(
        &config,
        customer,
        "Street",
        "fixed",
        &camera_url,
    )?)?;
    let h265_camera = id(add_camera(&config, customer, "Porch", "fixed", &h265_url)?)?;
    let (relay, base) = start_relay(&config, &dir.join("relay.log"))?;
    let eyeward = Eyeward::login(&base, BENCH_EMAIL, BENCH_PASSWORD).await?;
    // Viewers that take H.264 and not H.265 (as Chromium without a hardware decoder), VP8
    // alone, and H.265 too (webrtc-rs's default codecs, as Safari).
    let (h264_api, vp8_api, h265_api) = (h264_api()?, vp8_api()?, loopback_api()?);

    eprintln!("passthrough, {} s…", args.seconds);
    let listener = eyeward.join_with_sound(&h264_api, camera).await?;
    first_packet(&listener, Instant::now()).await?;
    let passthrough = measure(&relay, args.seconds).await?;
    eprintln!("H.264 → VP8, {} s…", args.seconds);
    let (vp8_viewer, _) = join(&eyeward, &vp8_api, camera).await?;
    let vp8 = measure(&relay, args.seconds).await?;
    eprintln!("AAC → Opus, {} s…", args.seconds);
    let heard = eyeward.listen(&listener, true).await?;
    let opus = measure(&relay, args.seconds).await?;
    eprintln!("H.265 → H.264, {} s…", args.seconds);
    let (h265_viewer, _) = join(&eyeward, &h264_api, h265_camera).await?;
    let h265 = measure(&relay, args.seconds).await?;
    eprintln!("H.265 passed through, {} s…", args.seconds);
    let (h265_taker, _) = join(&eyeward, &h265_api, h265_camera).await?;
    let answer = h265_taker.pc.remote_description().await.map(|d| d.sdp);
    anyhow::ensure!(
        answer.as_deref().is_some_and(|a| a.contains(" H265/90000")),
        "the relay did not answer a viewer that takes H.265 with it: {answer:?}"
    );
    let h265_passed = measure(&relay, args.seconds).await?;
    eyeward.leave(h265_taker).await?;
    eyeward.leave(h265_viewer).await?;
    eyeward.leave(vp8_viewer).await?;

    eprintln!("first frames, {} joins each…", args.joins);
    let (mut h264_warm, mut vp8_cold, mut vp8_warm) = (Vec::new(), Vec::new(), Vec::new());
    let (mut h265_cold, mut h265_warm) = (Vec::new(), Vec::new());
    let (mut passed_cold, mut passed_warm) = (Vec::new(), Vec::new());
    let ms = |took: Duration| took.as_secs_f64() * 1000.0;
    for _ in 0..args.joins {
        // The VP8 feed and the H.265 camera's are gone (their linger), the H.264 one runs
        // for the listener.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cold, took) = join(&eyeward, &vp8_api, camera).await?;
        vp8_cold.push(ms(took));
        let (warm, took) = join(&eyeward, &vp8_api, camera).await?;
        vp8_warm.push(ms(took));
        let (h264, took) = join(&eyeward, &h264_api, camera).await?;
        h264_warm.push(ms(took));
        // The H.265 camera's own feed first, then its H.264 transcoded from that.
        let (passed_first, took) = join(&eyeward, &h265_api, h265_camera).await?;
        passed_cold.push(ms(took));
        let (passed_next, took) = join(&eyeward, &h265_api, h265_camera).await?;
        passed_warm.push(ms(took));
        let (h265_first, took) = join(&eyeward, &h264_api, h265_camera).await?;
        h265_cold.push(ms(took));
        let (h265_next, took) = join(&eyeward, &h264_api, h265_camera).await?;
        h265_warm.push(ms(took));
        for viewer in [
            cold,
            warm,
            h264,
            passed_first,
            passed_next,
            h265_first,
            h265_next,
        ] {
            eyeward.leave(viewer).await?;
        }
    }
    eyeward.leave(listener).await?;

    eprintln!("talkback, {} presses each…", args.presses);
    let (tone, silence) = (opus_second(Some(TONE_HZ)).await?, opus_second(None).await?);
    let sim_log = dir.join("sim.log");
    let (speaker, microphone) = eyeward.join_to_speak(&h264_api, camera).await?;
    first_packet(&speaker, Instant::now()).await?;
    let talk = eyeward.talk(&speaker, true).await?;
    let mut mouth = Mouth::Relay(microphone);
    let through_relay =
        mouth_to_camera(&mut mouth, &sim_log, args.presses, &tone, &silence).await?;
    eyeward.talk(&speaker, false).await?;
    eyeward.leave(speaker).await?;
    let mut mouth = Mouth::Direct(Backchannel::open(&camera_url, None).await?);
    let direct = mouth_to_camera(&mut mouth, &sim_log, args.presses, &tone, &silence).await?;
    drop(mouth);
    drop(relay);

    println!("## Transcoding (`bench/media.sh`)\n");
    println!(
        "One camera, 1280×720 at 15 fps with AAC sound (16 kHz), and one the same in H.265 \
         (video only), read directly; webrtc-rs viewers on loopback; {} s a stage. The sound \
         went out as {}.\n",
        args.seconds, heard["codec"]
    );
    println!("| stage | relay CPU (cores) | added | relay memory (MB) | added |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut before: Option<(f64, f64)> = None;
    for (stage, (cores, mb)) in [
        ("passthrough: one H.264 viewer", passthrough),
        ("+ H.264 → VP8 (a VP8 viewer)", vp8),
        ("+ AAC → Opus (the first viewer listens)", opus),
        ("+ H.265 → H.264 (a viewer of the H.265 camera)", h265),
        (
            "+ H.265 passed through (a viewer that takes it)",
            h265_passed,
        ),
    ] {
        let (added_cores, added_mb) = before.map_or((String::new(), String::new()), |(c, m)| {
            (format!("{:+.3}", cores - c), format!("{:+.1}", mb - m))
        });
        println!("| {stage} | {cores:.3} | {added_cores} | {mb:.1} | {added_mb} |");
        before = Some((cores, mb));
    }
    println!(
        "\n| first frame, offer to first packet, {} joins | p50 ms | p95 ms |",
        args.joins
    );
    println!("| --- | ---: | ---: |");
    for (path, ms) in [
        ("H.264, the feed running", h264_warm),
        ("VP8, the transcode starting (H.264 feed running)", vp8_cold),
        ("VP8, the transcode running", vp8_warm),
        (
            "H.265 passed through, the camera's session starting",
            passed_cold,
        ),
        ("H.265 passed through, the feed running", passed_warm),
        (
            "H.264 of an H.265 camera, its transcode starting (H.265 feed running)",
            h265_cold,
        ),
        ("H.264 of an H.265 camera, the transcode running", h265_warm),
    ] {
        println!(
            "| {path} | {:.0} | {:.0} |",
            quantile(&ms, 0.5),
            quantile(&ms, 0.95)
        );
    }
    println!(
        "\n| talkback, mouth to camera ({} presses; the camera's speaker takes {}) | p50 ms | p95 ms |",
        args.presses, talk["codec"]
    );
    println!("| --- | ---: | ---: |");
    let (relay_p50, direct_p50) = (quantile(&through_relay, 0.5), quantile(&direct, 0.5));
    for (path, ms) in [
        (
            "through the relay: a viewer's microphone to the camera's speaker",
            &through_relay,
        ),
        ("straight to the camera's back-channel (the peer)", &direct),
    ] {
        println!(
            "| {path} | {:.0} | {:.0} |",
            quantile(ms, 0.5),
            quantile(ms, 0.95)
        );
    }
    println!(
        "\nThe relay adds {:.0} ms at the median ({:.2}× the straight path).",
        relay_p50 - direct_p50,
        relay_p50 / direct_p50.max(1.0)
    );
    Ok(())
}
