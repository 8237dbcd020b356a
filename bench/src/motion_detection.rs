//! The motion detector's benchmark.
//!
//! 1. Accuracy: labelled clips made here at run time, encoded with GStreamer's x264 at 15
//!    fps, each run through `eyeward-agent detect` with its defaults: events expected vs
//!    found, and the delay from the object's entry. The simulator's street scene at 1280×720
//!    (people, lights, night noise, rain, an animal, a mask, a reported pan-tilt move), then
//!    the clips of `eyeward_camera_sim::clips` at 640×360: views that pan, tilt, zoom or
//!    shake with nobody telling the agent, night mode, and people after a pan.
//! 2. Cost: the detector alone, in nanoseconds per pixel of its 320×180 picture.
//! 3. The whole agent (`eyeward-agent run`, decoding included) on the simulator's 720p 15 fps
//!    stream: CPU and memory, against a bare GStreamer decode of the same stream (the peer:
//!    what any agent must at least spend).
//!
//! `bench/motion.sh` builds and runs it.

use anyhow::{Context, Result, bail};
use eyeward_agent::motion::{Decision, Detector, DetectorConfig, SETTLE_PICTURES, colourfulness};
use eyeward_bench::process::{
    Running, dies_with_parent, measure, provision_relay, start_relay, start_simulator, target_bin,
};
use eyeward_bench::video::encode_mp4;
use eyeward_camera_sim::scene::{MotionScript, PanTilt, PanTiltLimits, Picture, Scene};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;
const FPS: u32 = 15;

/// What a clip shows and what the detector should make of it.
struct Clip {
    name: String,
    size: (usize, usize),
    seconds: f64,
    /// Events a person would expect.
    expected: usize,
    /// When the object enters the picture (for the detection delay).
    entry: Option<f64>,
    /// When the detector can first see it: its entry, or when the detector has settled after
    /// the view last moved, whichever is later.
    visible: Option<f64>,
    /// Extra agent configuration (masks).
    config: &'static str,
    /// The frame at a time.
    render: Box<dyn FnMut(usize, f64) -> Picture>,
}

/// xorshift64: repeatable noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn street(script: Option<MotionScript>) -> Scene {
    let script = script.unwrap_or(MotionScript {
        offset: Duration::ZERO,
        every: None,
        crossing: Duration::from_secs(1),
    });
    Scene::new(WIDTH, HEIGHT, false, script)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Scales the picture's brightness (lights, night).
fn dim(p: &mut Picture, factor: f64) {
    for y in &mut p.y {
        *y = (f64::from(*y) * factor).round().clamp(0.0, 255.0) as u8;
    }
}

fn rect(p: &mut Picture, x: usize, y: usize, w: usize, h: usize, luma: u8) {
    for row in y.min(p.height)..(y + h).min(p.height) {
        let line = &mut p.y[row * p.width..(row + 1) * p.width];
        line[x.min(p.width)..(x + w).min(p.width)].fill(luma);
    }
}

/// The window that the mask clip masks, as fractions of the picture.
const WINDOW: (f64, f64, f64, f64) = (0.55, 0.15, 0.2, 0.3);

fn clips() -> Vec<Clip> {
    let crossing = |offset: f64, crossing: f64| MotionScript {
        offset: secs(offset),
        every: Some(secs(600.0)),
        crossing: secs(crossing),
    };
    let mut rain = Noise(7);
    let mut night = Noise(11);
    let mut pan = PanTilt::new(PanTiltLimits::default());
    let pan_scene = Scene::new(WIDTH, HEIGHT, true, crossing(600.0, 1.0));
    let walker = street(Some(crossing(3.0, 4.0)));
    let slow = street(Some(crossing(2.0, 12.0)));
    let lights = street(None);
    let dark = street(None);
    let animal = street(None);
    let masked = street(None);
    let wet = street(None);
    vec![
        Clip {
            name: "person crossing".into(),
            size: (WIDTH, HEIGHT),
            seconds: 9.0,
            expected: 1,
            entry: Some(3.0),
            visible: Some(3.0),
            config: "",
            render: Box::new(move |_, t| walker.render(secs(t), None)),
        },
        Clip {
            name: "slow walk".into(),
            size: (WIDTH, HEIGHT),
            seconds: 16.0,
            expected: 1,
            entry: Some(2.0),
            visible: Some(2.0),
            config: "",
            render: Box::new(move |_, t| slow.render(secs(t), None)),
        },
        Clip {
            name: "lights on and off".into(),
            size: (WIDTH, HEIGHT),
            seconds: 10.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "",
            render: Box::new(move |_, t| {
                let mut p = lights.render(secs(t), None);
                if !(3.0..7.0).contains(&t) {
                    dim(&mut p, 0.45);
                }
                p
            }),
        },
        Clip {
            name: "sensor noise at night".into(),
            size: (WIDTH, HEIGHT),
            seconds: 10.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "",
            render: Box::new(move |_, t| {
                let mut p = dark.render(secs(t), None);
                dim(&mut p, 0.3);
                for y in &mut p.y {
                    let n = (night.next() % 41) as i16 - 20;
                    *y = (i16::from(*y) + n).clamp(0, 255) as u8;
                }
                p
            }),
        },
        Clip {
            name: "rain".into(),
            size: (WIDTH, HEIGHT),
            seconds: 10.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "",
            render: Box::new(move |_, t| {
                let mut p = wet.render(secs(t), None);
                dim(&mut p, 0.7);
                // Streaks: short bright lines, new in every frame, over the whole picture.
                for _ in 0..600 {
                    let x = (rain.next() % WIDTH as u64) as usize;
                    let y = (rain.next() % HEIGHT as u64) as usize;
                    rect(&mut p, x, y, 2, 14, 235);
                }
                p
            }),
        },
        Clip {
            name: "small animal".into(),
            size: (WIDTH, HEIGHT),
            seconds: 9.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "",
            render: Box::new(move |_, t| {
                let mut p = animal.render(secs(t), None);
                // A cat: 30×16 px at 720p, 0.05% of the picture, along the ground.
                if (2.0..7.0).contains(&t) {
                    let x = ((t - 2.0) / 5.0 * (WIDTH + 30) as f64) as usize;
                    rect(
                        &mut p,
                        x.saturating_sub(30),
                        HEIGHT * 85 / 100,
                        30.min(x),
                        16,
                        30,
                    );
                }
                p
            }),
        },
        Clip {
            name: "motion inside a mask".into(),
            size: (WIDTH, HEIGHT),
            seconds: 9.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "masks = [[[0.55, 0.15], [0.75, 0.15], [0.75, 0.45], [0.55, 0.45]]]\n",
            render: Box::new(move |_, t| {
                let mut p = masked.render(secs(t), None);
                // Someone moving about behind the neighbour's window.
                if (2.0..7.0).contains(&t) {
                    let (wx, wy, ww, wh) = WINDOW;
                    let (w, h) = (WIDTH as f64, HEIGHT as f64);
                    let swing = ((t - 2.0) * 2.0).sin() * 0.5 + 0.5;
                    let x = (wx + 0.02 + swing * (ww - 0.12)) * w;
                    rect(
                        &mut p,
                        x as usize,
                        ((wy + 0.03) * h) as usize,
                        (0.08 * w) as usize,
                        ((wh - 0.06) * h) as usize,
                        25,
                    );
                }
                p
            }),
        },
        Clip {
            name: "pan-tilt move".into(),
            size: (WIDTH, HEIGHT),
            seconds: 10.0,
            expected: 0,
            entry: None,
            visible: None,
            config: "",
            render: Box::new(move |_, t| {
                let now = secs(t);
                if (3.0..3.1).contains(&t) {
                    pan.set_velocity(1.0, 0.0, now);
                } else if (5.0..5.1).contains(&t) {
                    pan.stop(now);
                }
                pan.advance(now);
                pan_scene.render(now, Some(&pan))
            }),
        },
    ]
    .into_iter()
    .chain(labelled().into_iter().map(|clip| {
        let size = LABELLED_SIZE;
        // The detector settles for SETTLE_PICTURES pictures after the view's last move.
        let settle = f64::from(SETTLE_PICTURES + 1) / f64::from(DetectorConfig::default().max_fps);
        Clip {
            name: clip.name.clone(),
            size,
            seconds: clip.seconds,
            expected: clip.expected_events(),
            entry: clip.entry(),
            visible: clip
                .entry()
                .map(|entry| entry.max(clip.view_settles().map_or(0.0, |end| end + settle))),
            config: "",
            render: Box::new(move |_, t| clip.render(t, size.0, size.1)),
        }
    }))
    .collect()
}

/// Size of the labelled clips: large enough for x264 to keep their detail, half the street
/// clips' so that a run renders the many of them in a minute.
const LABELLED_SIZE: (usize, usize) = (640, 360);

/// The labelled clips of `eyeward_camera_sim::clips`: views that move or change on their
/// own (no event expected), and people (one each).
fn labelled() -> Vec<eyeward_camera_sim::clips::Clip> {
    let mut clips = eyeward_camera_sim::clips::view_changes();
    clips.extend(eyeward_camera_sim::clips::people());
    clips
}

/// Encodes `clip` to an MP4 file (x264, a keyframe every 4 s as cameras do).
fn encode(clip: &mut Clip, path: &Path) -> Result<()> {
    let frames = (clip.seconds * f64::from(FPS)).round() as usize;
    let render = &mut clip.render;
    let pictures = (0..frames).map(|i| render(i, i as f64 / f64::from(FPS)));
    encode_mp4(pictures, clip.size, FPS, path)
}

/// `eyeward-agent detect` on a clip: the events' start times (ms) and the frame count.
fn detect(clip: &Path, config: &Path) -> Result<(Vec<i64>, u64)> {
    let out = Command::new(target_bin("eyeward-agent")?)
        .arg("detect")
        .arg(clip)
        .arg("--config")
        .arg(config)
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("detect {} failed", clip.display());
    }
    let mut starts = Vec::new();
    let mut frames = 0;
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        if let Some(start) = v["start_ms"].as_i64() {
            starts.push(start);
        } else if let Some(n) = v["frames"].as_u64() {
            frames = n;
        }
    }
    Ok((starts, frames))
}

fn accuracy(dir: &Path) -> Result<bool> {
    println!("## Accuracy: labelled clips, `eyeward-agent detect` at its defaults\n");
    println!(
        "| clip | size | seconds | events expected | found | delay from entry | from when visible | verdict |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut all_ok = true;
    for (i, mut clip) in clips().into_iter().enumerate() {
        let file = dir.join(format!("clip-{i}.mp4"));
        encode(&mut clip, &file)?;
        let config = dir.join("agent.toml");
        std::fs::write(&config, format!("[motion]\n{}", clip.config))?;
        let (starts, _) = detect(&file, &config)?;
        let after = |from: Option<f64>| {
            from.zip(starts.first())
                .map(|(from, start)| *start - (from * 1000.0) as i64)
        };
        let (delay, from_visible) = (after(clip.entry), after(clip.visible));
        let ok = starts.len() == clip.expected && from_visible.is_none_or(|d| d <= 300);
        all_ok &= ok;
        let ms = |d: Option<i64>| d.map_or("–".into(), |d| format!("{d} ms"));
        println!(
            "| {} | {}×{} | {} | {} | {} | {} | {} | {} |",
            clip.name,
            clip.size.0,
            clip.size.1,
            clip.seconds,
            clip.expected,
            starts.len(),
            ms(delay),
            ms(from_visible),
            if ok { "ok" } else { "MISSED GOAL" }
        );
    }
    println!();
    Ok(all_ok)
}

/// The detector alone on the crossing clip's pictures, scaled to 320×180 as the agent does.
fn cost() -> Result<f64> {
    let (w, h) = (320, 180);
    let scene = street(Some(MotionScript {
        offset: secs(2.0),
        every: Some(secs(6.0)),
        crossing: secs(4.0),
    }));
    let pictures: Vec<(Vec<u8>, u8)> = (0..300)
        .map(|i| {
            let p = scene.render(secs(i as f64 / f64::from(FPS)), None);
            // A 4×4 box filter: 1280×720 → 320×180.
            let luma = (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let sum: u32 = (0..4)
                        .flat_map(|dy| (0..4).map(move |dx| (dx, dy)))
                        .map(|(dx, dy)| u32::from(p.y[(y * 4 + dy) * WIDTH + x * 4 + dx]))
                        .sum();
                    (sum / 16) as u8
                })
                .collect();
            (luma, colourfulness(&p.u, &p.v))
        })
        .collect();
    let config = DetectorConfig::default();
    let mut detector = Detector::new(&config, w, h).map_err(anyhow::Error::msg)?;
    let (mut n, mut events) = (0u64, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for (p, colour) in &pictures {
            let at = Duration::from_millis(n * 1000 / u64::from(FPS));
            if let Some(Decision::Started { .. }) = detector.process(p, *colour, at) {
                events += 1;
            }
            n += 1;
        }
    }
    let ns_per_pixel = start.elapsed().as_nanos() as f64 / (n as f64 * (w * h) as f64);
    println!("## Detector cost\n");
    println!(
        "{n} pictures of {w}×{h} ({events} events): {ns_per_pixel:.2} ns per pixel, {:.1} µs per picture (goal: ≤ 1 ns per pixel)\n",
        ns_per_pixel * (w * h) as f64 / 1000.0
    );
    Ok(ns_per_pixel)
}

fn whole_agent(dir: &Path, span: Duration) -> Result<bool> {
    // The camera: the simulator at its defaults (1280×720, 15 fps, 2000 kbit/s), and a
    // relay for the agent to link to and upload into.
    // Sensor grain makes the encoder spend its whole bitrate, as a real street does.
    let (_sim, camera) = start_simulator(
        "fixed",
        "127.0.0.1:0",
        &["--motion-every", "10s", "--grain", "8"],
        &dir.join("sim.log"),
    )?;
    let (config, cam) = provision_relay(dir, "", "fixed", "agent")?;
    std::fs::write(
        dir.join("agent.token"),
        cam["agent_token"].as_str().context("token")?,
    )?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;

    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .args(["run", "--relay", &base, "--camera", &camera, "--token-file"])
        .arg(dir.join("agent.token"))
        .stderr(std::fs::File::create(dir.join("agent.log"))?);
    let agent = Running(dies_with_parent(&mut agent).spawn()?);
    std::thread::sleep(Duration::from_secs(3));
    let agent_load = measure(agent.pid(), span)?;
    let queued = std::fs::read_to_string(dir.join("agent.log"))?
        .matches("motion: snapshot queued")
        .count();
    drop(agent);

    // The peers: the same stream only decoded, by each software decoder the agent may use
    // (it prefers OpenH264; see capture.rs).
    let mut peers = Vec::new();
    for decoder in ["openh264dec", "avdec_h264"] {
        let mut peer = Command::new("gst-launch-1.0");
        peer.args(["-q", "rtspsrc"])
            .arg(format!("location={camera}"))
            .args([
                "protocols=tcp",
                "!",
                "rtph264depay",
                "!",
                "h264parse",
                "!",
                decoder,
            ])
            .args(["!", "fakesink", "sync=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let peer = Running(dies_with_parent(&mut peer).spawn()?);
        std::thread::sleep(Duration::from_secs(3));
        peers.push((decoder, measure(peer.pid(), span)?));
    }

    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "## The whole agent on the 720p 15 fps simulator (grain 8), {} s\n",
        span.as_secs()
    );
    println!("| process | CPU (share of one core) | peak RSS | of it private | |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| eyeward-agent run (decode, detector, link; {queued} snapshots queued) | {:.1}% | {:.1} MB | {:.1} MB | goals: < 25%, < 60 MB |",
        agent_load.cpu * 100.0,
        mb(agent_load.rss),
        mb(agent_load.anon)
    );
    for (decoder, load) in &peers {
        println!(
            "| peer: gst-launch-1.0 rtspsrc ! {decoder} ! fakesink (decode only) | {:.1}% | {:.1} MB | {:.1} MB | agent / peer: CPU {:.2}, RSS {:.2} |",
            load.cpu * 100.0,
            mb(load.rss),
            mb(load.anon),
            agent_load.cpu / load.cpu,
            agent_load.rss as f64 / load.rss as f64
        );
    }
    println!();
    Ok(agent_load.cpu < 0.25 && agent_load.rss < 60_000_000)
}

/// `motion-detection [SECONDS] [accuracy] [cost] [agent]`: the agent is measured for SECONDS
/// (default 20); naming parts runs only those.
fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let span = match args.peek().map(|a| a.parse::<u64>()) {
        Some(Ok(s)) => {
            args.next();
            Duration::from_secs(s)
        }
        _ => Duration::from_secs(20),
    };
    let parts: Vec<String> = args.collect();
    let run = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let dir = std::env::temp_dir().join(format!("eyeward-motion-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let mut goals = Vec::new();
    if run("accuracy") {
        goals.push(format!("accuracy {}", verdict(accuracy(&dir)?)));
    }
    if run("cost") {
        goals.push(format!("detector ≤ 1 ns/pixel {}", verdict(cost()? <= 1.0)));
    }
    if run("agent") {
        goals.push(format!(
            "agent < 25% CPU and < 60 MB {}",
            verdict(whole_agent(&dir, span)?)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("goals: {}", goals.join(", "));
    Ok(())
}
