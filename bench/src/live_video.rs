//! Live video, eyeward against Janus Gateway's streaming plugin, side by side in one run on
//! one simulated camera (1280×720, 15 fps, about 2 Mbit/s, a keyframe every 4 s):
//!
//! 1. time to first frame in Chromium over joins at random moments (`bench/ttff.mjs`), and
//!    cold (each view starts the pull of a camera whose keyframes keep their own schedule)
//!    through an agent and directly;
//! 2. the relay's CPU per forwarded packet per viewer (from `/proc`) for growing numbers of
//!    webrtc-rs viewers, eyeward's over WHEP and Janus's over its HTTP API;
//! 3. memory per viewer (resident memory growth over viewers);
//! 4. eyeward's relay-added latency, p99 from its own histogram;
//! 5. what a viewer costs on each route a browser may take: UDP, ICE-TCP and TURN (Debian's
//!    coturn, whose CPU is counted in the same window).
//!
//! Run `bench/live.sh` (release builds, a loopback-only network namespace, Janus installed).

use anyhow::{Context, Result, bail};
use eyeward_bench::light_viewer::{LightViewer, Route, all_receiving};
use eyeward_bench::plot::{self, Chart, Series};
use eyeward_bench::process::{
    self, BENCH_EMAIL, BENCH_PASSWORD, Running, add_camera, dies_with_parent, provision_customer,
    provision_relay, start_simulator, udp_receive_drops, usage,
};
use eyeward_bench::quantile;
use eyeward_bench::viewer::{Eyeward, Janus};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the simulator serves, as the Janus configuration in `shared/peers/janus` expects.
const CAMERA_URL: &str = "rtsp://127.0.0.1:8554/live";
const JANUS_URL: &str = "http://127.0.0.1:8088/janus";
/// Janus gathers no candidates on loopback: `bench/live.sh` gives the namespace a veth pair
/// with this address (local to the namespace), and `bench/janus/janus.jcfg` enforces it.
const JANUS_ICE_ADDRESS: [u8; 4] = [10, 99, 0, 1];
const JANUS_MOUNTPOINT: u64 = 1;

struct Args {
    viewers: Vec<usize>,
    seconds: u64,
    joins: usize,
    svg: Option<PathBuf>,
    janus_config: PathBuf,
}

fn args() -> Result<Args> {
    let mut args = Args {
        viewers: vec![1, 10, 50, 100, 200],
        seconds: 10,
        joins: 20,
        svg: None,
        janus_config: Path::new(env!("CARGO_MANIFEST_DIR")).join("janus"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--viewers" => {
                args.viewers = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => args.seconds = value()?.parse()?,
            "--joins" => args.joins = value()?.parse()?,
            "--svg" => args.svg = Some(value()?.into()),
            "--janus-config" => args.janus_config = value()?.into(),
            _ => bail!(
                "usage: live-video [--viewers 1,10,50,100,200] [--seconds 10] [--joins 20] \
                 [--svg FILE] [--janus-config DIR]"
            ),
        }
    }
    Ok(args)
}

/// The systems under test, as a viewer joins and leaves them.
enum Peer<'a> {
    /// A camera, and the route its viewers take.
    Eyeward(&'a Eyeward, i64, Route),
    Janus(&'a Janus),
}

impl Peer<'_> {
    fn name(&self) -> &'static str {
        match self {
            Peer::Eyeward(..) => "eyeward",
            Peer::Janus(_) => "janus",
        }
    }

    async fn join(&self) -> Result<LightViewer> {
        match self {
            Peer::Eyeward(e, camera, route) => {
                LightViewer::join_eyeward(e, *camera, Ipv4Addr::LOCALHOST.into(), *route).await
            }
            Peer::Janus(j) => {
                LightViewer::join_janus(j, JANUS_MOUNTPOINT, JANUS_ICE_ADDRESS.into()).await
            }
        }
    }

    /// Frames skipped for lagging viewers so far, where the system counts them.
    async fn frames_skipped(&self) -> Result<u64> {
        match self {
            Peer::Eyeward(e, ..) => Ok(e
                .metrics()
                .await?
                .lines()
                .find_map(|l| l.strip_prefix("eyeward_viewer_frames_dropped_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as u64),
            Peer::Janus(_) => Ok(0),
        }
    }

    /// The relay-added latency histogram's cumulative buckets, where the system has one.
    async fn latency_buckets(&self) -> Result<Option<Vec<(f64, f64)>>> {
        match self {
            Peer::Eyeward(e, ..) => Ok(Some(histogram_buckets(
                &e.metrics().await?,
                "eyeward_relay_latency_seconds",
            ))),
            Peer::Janus(_) => Ok(None),
        }
    }

    async fn leave(&self, viewer: LightViewer) -> Result<()> {
        match self {
            Peer::Eyeward(e, ..) => viewer.leave_eyeward(e).await,
            Peer::Janus(j) => viewer.leave_janus(j).await,
        }
    }
}

/// What one system used with `viewers` viewers.
#[derive(Debug, Clone, Copy)]
struct Point {
    viewers: usize,
    /// CPU time per RTP packet received by one viewer.
    cpu_us_per_packet_viewer: f64,
    /// CPU in use, in cores.
    cores: f64,
    rss_mb: f64,
    /// Resident memory growth per viewer since the first viewer, in KB.
    kb_per_viewer: Option<f64>,
    packets_per_viewer_per_s: f64,
    kbit_per_viewer: f64,
    /// Viewers that received nothing during the measurement.
    silent: usize,
    /// Packets missing from the viewers' sequences during the measurement.
    lost: u64,
    /// Frames the relay skipped for viewers that fell behind (eyeward's own count; their
    /// packets never get sequence numbers, so `lost` cannot see them).
    skipped: u64,
    udp_drops: u64,
    /// Relay-added latency, p50 and p99 over the measurement, in ms (eyeward's histogram).
    latency_ms: Option<[f64; 2]>,
    /// The CPU of the process measured alongside (the TURN server), per packet-viewer.
    beside_us_per_packet_viewer: Option<f64>,
}

/// Adds viewers up to each count in turn and measures the relay process `pid` at each, as
/// long as `go_on` says so of the last point.
async fn load(
    peer: &Peer<'_>,
    pid: u32,
    counts: &[usize],
    secs: u64,
    go_on: impl Fn(&Point) -> bool,
) -> Result<Vec<Point>> {
    load_beside(peer, pid, None, counts, secs, go_on).await
}

/// [`load`], measuring process `beside` too (its CPU in the same windows).
async fn load_beside(
    peer: &Peer<'_>,
    pid: u32,
    beside: Option<u32>,
    counts: &[usize],
    secs: u64,
    go_on: impl Fn(&Point) -> bool,
) -> Result<Vec<Point>> {
    let beside_cpu =
        || -> Result<Option<Duration>> { beside.map(|b| Ok(usage(b)?.cpu)).transpose() };
    let mut viewers: Vec<LightViewer> = Vec::new();
    let mut points = Vec::new();
    let mut first_rss = None;
    for &n in counts {
        while viewers.len() < n {
            viewers.push(peer.join().await?);
        }
        all_receiving(&viewers, Duration::from_secs(30))
            .await
            .with_context(|| peer.name())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (u0, beside0, drops0, t0) = (
            usage(pid)?,
            beside_cpu()?,
            udp_receive_drops()?,
            Instant::now(),
        );
        let before: Vec<(u64, u64)> = viewers.iter().map(|v| (v.packets(), v.bytes())).collect();
        let lost_before: u64 = viewers.iter().map(LightViewer::lost).sum();
        let skipped_before = peer.frames_skipped().await?;
        let latency_before = peer.latency_buckets().await?;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let latency_after = peer.latency_buckets().await?;
        let (u1, beside1, drops1, elapsed) = (
            usage(pid)?,
            beside_cpu()?,
            udp_receive_drops()?,
            t0.elapsed(),
        );
        let deltas: Vec<(u64, u64)> = viewers
            .iter()
            .zip(&before)
            .map(|(v, (p, b))| (v.packets() - p, v.bytes() - b))
            .collect();
        let packets: u64 = deltas.iter().map(|d| d.0).sum();
        let bytes: u64 = deltas.iter().map(|d| d.1).sum();
        let cpu = (u1.cpu - u0.cpu).as_secs_f64();
        let rss = u1.rss_bytes as f64;
        let first = *first_rss.get_or_insert(rss);
        let per_viewer_per_s = |x: u64| x as f64 / n as f64 / elapsed.as_secs_f64();
        let point = Point {
            viewers: n,
            cpu_us_per_packet_viewer: cpu * 1e6 / packets.max(1) as f64,
            cores: cpu / elapsed.as_secs_f64(),
            rss_mb: rss / 1e6,
            kb_per_viewer: (n > counts[0]).then(|| (rss - first) / 1e3 / (n - counts[0]) as f64),
            packets_per_viewer_per_s: per_viewer_per_s(packets),
            kbit_per_viewer: per_viewer_per_s(bytes) * 8.0 / 1e3,
            silent: deltas.iter().filter(|d| d.0 == 0).count(),
            lost: viewers.iter().map(LightViewer::lost).sum::<u64>() - lost_before,
            skipped: peer.frames_skipped().await? - skipped_before,
            udp_drops: drops1 - drops0,
            latency_ms: latency_before.zip(latency_after).and_then(|(b, a)| {
                let during: Vec<(f64, f64)> =
                    a.iter().zip(&b).map(|(a, b)| (a.0, a.1 - b.1)).collect();
                Some([
                    histogram_quantile(&during, 0.5)? * 1e3,
                    histogram_quantile(&during, 0.99)? * 1e3,
                ])
            }),
            beside_us_per_packet_viewer: beside0
                .zip(beside1)
                .map(|(b0, b1)| (b1 - b0).as_secs_f64() * 1e6 / packets.max(1) as f64),
        };
        eprintln!("  {}: {point:?}", peer.name());
        points.push(point);
        if !go_on(&point) {
            break;
        }
    }
    for v in viewers {
        peer.leave(v).await?;
    }
    Ok(points)
}

/// Viewers on each route in the routes' comparison.
const ROUTE_VIEWERS: usize = 100;
/// coturn's shared secret for the relay's TURN credentials (loopback only).
const TURN_SECRET: &str = "bench-turn-secret";

/// What `ROUTE_VIEWERS` viewers cost on each route (UDP, ICE-TCP, TURN), on a relay of its
/// own that hands out TURN credentials for a coturn started here; on the TURN route, coturn's
/// CPU too.
async fn routes(dir: &Path, secs: u64) -> Result<Vec<(Route, Point)>> {
    let dir = dir.join("routes");
    std::fs::create_dir_all(&dir)?;
    let turn_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let coturn = start_coturn(&dir, turn_port)?;
    let (config, camera) = provision_relay(
        &dir,
        &format!(
            "[cameras]\nallow_private_sources = true\n\
             [webrtc]\nice_addresses = [\"127.0.0.1\"]\n\
             max_viewers_per_camera = {n}\nmax_viewers_per_customer = {n}\n\
             ice_servers = [{{ urls = [\"turn:127.0.0.1:{turn_port}?transport=udp\"], \
             secret = \"{TURN_SECRET}\" }}]\n",
            n = ROUTE_VIEWERS + 5
        ),
        "fixed",
        CAMERA_URL,
    )?;
    let camera = camera["id"].as_i64().context("camera id")?;
    let mut points = Vec::new();
    for route in [Route::Udp, Route::IceTcp, Route::Turn] {
        // A relay of its own per route: memory that one route's viewers left behind is not
        // counted against the next.
        let log = dir.join(format!("relay-{route:?}.log"));
        let (relay, base) = process::start_relay(&config, &log)?;
        let eyeward = Eyeward::login(&base, BENCH_EMAIL, BENCH_PASSWORD).await?;
        let beside = (route == Route::Turn).then(|| coturn.pid());
        let point = load_beside(
            &Peer::Eyeward(&eyeward, camera, route),
            relay.pid(),
            beside,
            // From one viewer, so that memory per viewer is the growth beyond it.
            &[1, ROUTE_VIEWERS],
            secs,
            |_| true,
        )
        .await
        .with_context(|| format!("{route:?}"))?;
        points.extend(point.last().map(|p| (route, *p)));
    }
    Ok(points)
}

/// Debian's coturn on `127.0.0.1:port` (UDP), checking the relay's time-limited TURN
/// credentials (`use-auth-secret`), relaying to loopback; once it accepts connections.
fn start_coturn(dir: &Path, port: u16) -> Result<Running> {
    let mut cmd = Command::new("turnserver");
    cmd.arg("-n")
        .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .arg("--use-auth-secret")
        .arg(format!("--static-auth-secret={TURN_SECRET}"))
        .args(["--realm=eyeward.bench", "--no-tls", "--no-dtls", "--no-cli"])
        .arg("--allow-loopback-peers")
        .arg(format!("--log-file={}", dir.join("coturn.log").display()))
        .arg(format!("--pidfile={}", dir.join("coturn.pid").display()))
        .arg(format!("--db={}", dir.join("turndb").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("coturn.stderr"))?);
    let coturn = Running(dies_with_parent(&mut cmd).spawn().context("turnserver")?);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("coturn did not start: see {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(coturn)
}

/// The one-core sweep's step and its limit.
const ONE_CORE_STEP: usize = 100;
const ONE_CORE_MAX: usize = 2000;

/// Nothing lost, skipped or dropped, and every viewer receiving.
fn every_packet_delivered(p: &Point) -> bool {
    p.lost == 0 && p.skipped == 0 && p.udp_drops == 0 && p.silent == 0
}

/// Pins process `pid` (every thread) to `cpus` (`taskset`'s list, e.g. `0` or `0,1`).
fn pin(pid: u32, cpus: &str) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset {cpus} {pid} failed");
    }
    Ok(())
}

/// The relay on one core, everything else on the other: viewers added `ONE_CORE_STEP` at a
/// time until a packet is not delivered, or `ONE_CORE_MAX`.
async fn one_core(
    eyeward: &Eyeward,
    camera: i64,
    relay: u32,
    others: &[u32],
    secs: u64,
) -> Result<Vec<Point>> {
    let own = std::process::id();
    pin(relay, "0")?;
    for &pid in others.iter().chain([&own]) {
        pin(pid, "1")?;
    }
    let counts: Vec<usize> = (1..=ONE_CORE_MAX / ONE_CORE_STEP)
        .map(|i| i * ONE_CORE_STEP)
        .collect();
    let points = load(
        &Peer::Eyeward(eyeward, camera, Route::Udp),
        relay,
        &counts,
        secs,
        every_packet_delivered,
    )
    .await;
    for &pid in others.iter().chain([&relay, &own]) {
        pin(pid, "0,1")?;
    }
    points
}

/// Waits until `url` answers with a success status.
async fn wait_http(url: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts Janus with the peer configuration, its mountpoint keeping the last keyframe for
/// new viewers (`videobufferkf`) as eyeward keeps its group of pictures.
async fn start_janus(config: &Path, dir: &Path) -> Result<Running> {
    let cfg = dir.join("janus");
    std::fs::create_dir_all(&cfg)?;
    for entry in std::fs::read_dir(config)? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "jcfg") {
            let text = std::fs::read_to_string(entry.path())?
                .replace("CONFIG_DIR", cfg.to_str().context("utf-8 path")?)
                .replace("video = true", "video = true\n  videobufferkf = true");
            std::fs::write(cfg.join(entry.file_name()), text)?;
        }
    }
    let janus = dies_with_parent(&mut Command::new("janus"))
        .arg("-F")
        .arg(&cfg)
        .arg("-C")
        .arg(cfg.join("janus.jcfg"))
        .stdout(std::fs::File::create(dir.join("janus.log"))?)
        .stderr(Stdio::null())
        .spawn()
        .context("janus (apt-get install janus; bench/live.sh does)")?;
    let janus = Running(janus);
    wait_http(&format!("{JANUS_URL}/info"), Duration::from_secs(15)).await?;
    Ok(janus)
}

/// Starts the relay (release binary) with a customer and the simulator as a direct RTSP
/// camera; returns it, its base URL and the camera id.
async fn start_relay(dir: &Path, max_viewers: usize) -> Result<(Running, String, i64)> {
    // A minute's linger: the joins at random moments meet a camera that is being pulled, as
    // one watched in the last minute is (the first join, measured apart, starts the pull).
    let (config, camera) = provision_relay(
        dir,
        &format!(
            "[cameras]\nallow_private_sources = true\n\
             [webrtc]\nice_addresses = [\"127.0.0.1\"]\n\
             max_viewers_per_camera = {max_viewers}\nmax_viewers_per_customer = {max_viewers}\n\
             linger = \"60s\"\n"
        ),
        "fixed",
        CAMERA_URL,
    )?;
    let (relay, base) = process::start_relay(&config, &dir.join("relay.log"))?;
    Ok((relay, base, camera["id"].as_i64().context("camera id")?))
}

/// Times to first frame in Chromium, in ms: each system's first join, then its joins at
/// random moments (the two interleaved).
struct FirstFrames {
    eyeward_first: f64,
    janus_first: f64,
    eyeward: Vec<f64>,
    janus: Vec<f64>,
}

/// Runs `bench/ttff.mjs` logged in at `base` as the bench customer, with `vars` in its
/// environment; what it printed.
async fn ttff_script(
    base: &str,
    joins: usize,
    vars: &[(&str, String)],
) -> Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ttff.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .env("BASE_URL", base)
        .env("EMAIL", BENCH_EMAIL)
        .env("PASSWORD", BENCH_PASSWORD)
        .env("JOINS", joins.to_string())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .spawn()?
        .wait_with_output()
        .await?;
    if !out.status.success() {
        bail!("ttff.mjs failed");
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The numbers of `v`, an array.
fn ms_list(v: &serde_json::Value) -> Result<Vec<f64>> {
    v.as_array()
        .context("ttff output")?
        .iter()
        .map(|x| x.as_f64().context("ms"))
        .collect()
}

async fn time_to_first_frame(base: &str, camera: i64, joins: usize) -> Result<FirstFrames> {
    let v = ttff_script(
        base,
        joins,
        &[
            ("CAMERA_ID", camera.to_string()),
            ("JANUS_URL", JANUS_URL.to_owned()),
            ("JANUS_MOUNTPOINT", JANUS_MOUNTPOINT.to_string()),
        ],
    )
    .await?;
    Ok(FirstFrames {
        eyeward_first: v["eyeward_first"].as_f64().context("eyeward_first")?,
        janus_first: v["janus_first"].as_f64().context("janus_first")?,
        eyeward: ms_list(&v["eyeward"])?,
        janus: ms_list(&v["janus"])?,
    })
}

/// Where the cold-start camera serves: its encoder keeps its own 4 s keyframe schedule.
const COLD_CAMERA_LISTEN: &str = "127.0.0.1:8555";
/// The cold-start relay stops pulling a camera this long after its last viewer left.
const COLD_LINGER_MS: u64 = 1000;

/// Cold times to first frame in Chromium, in ms: every view starts the relay's pull of the
/// camera, through its agent (which keeps the current group of pictures) and directly (a new
/// RTSP session, which waits for the camera's next keyframe).
struct ColdStarts {
    agent: Vec<f64>,
    direct: Vec<f64>,
}

async fn cold_starts(dir: &Path, joins: usize) -> Result<ColdStarts> {
    let dir = dir.join("cold");
    std::fs::create_dir_all(&dir)?;
    let (_sim, url) = start_simulator(
        "fixed",
        COLD_CAMERA_LISTEN,
        &["--grain", "12", "--keyframes-on-schedule"],
        &dir.join("sim.log"),
    )?;
    let (config, customer) = provision_customer(
        &dir,
        &format!(
            "[cameras]\nallow_private_sources = true\n\
             [webrtc]\nice_addresses = [\"127.0.0.1\"]\nlinger = \"{COLD_LINGER_MS}ms\"\n"
        ),
    )?;
    let through_agent = add_camera(&config, customer, "Porch", "fixed", "agent")?;
    let direct = add_camera(&config, customer, "Gate", "fixed", &url)?;
    let (_relay, base) = process::start_relay(&config, &dir.join("relay.log"))?;
    let token = dir.join("agent.token");
    std::fs::write(
        &token,
        through_agent["agent_token"].as_str().context("token")?,
    )?;
    let mut agent = Command::new(process::target_bin("eyeward-agent")?);
    agent
        .args(["run", "--relay", &base, "--camera", &url, "--token-file"])
        .arg(&token)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(dir.join("agent.log"))?);
    let _agent = Running(dies_with_parent(&mut agent).spawn()?);
    // The agent links, and its decoder has had a keyframe, within two of the camera's
    // intervals.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let id = |c: &serde_json::Value| c["id"].as_i64().context("camera id");
    let (agent_id, direct_id) = (id(&through_agent)?, id(&direct)?);
    let v = ttff_script(
        &base,
        joins,
        &[
            ("COLD_CAMERAS", format!("{agent_id},{direct_id}")),
            ("LINGER_MS", COLD_LINGER_MS.to_string()),
        ],
    )
    .await?;
    let served = std::fs::read_to_string(dir.join("agent.log"))?
        .matches("served from the agent's group of pictures")
        .count();
    if served < joins {
        bail!(
            "the agent served {served} of {joins} cold views itself; see {}",
            dir.display()
        );
    }
    Ok(ColdStarts {
        agent: ms_list(&v["cold"][agent_id.to_string()])?,
        direct: ms_list(&v["cold"][direct_id.to_string()])?,
    })
}

/// The cumulative buckets (upper bound, count) of Prometheus histogram `name` in `text`.
fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            Some((le.parse().ok()?, count.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile of cumulative histogram `buckets`, interpolated within its bucket as
/// Prometheus's `histogram_quantile` does; in the histogram's unit.
fn histogram_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le == f64::INFINITY {
                return Some(below.0);
            }
            let share = (rank - below.1) / (count - below.1).max(1.0);
            return Some(below.0 + (le - below.0) * share);
        }
        below = (le, count);
    }
    None
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = args()?;
    let dir = std::env::temp_dir().join(format!("eyeward-live-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // Grain makes x264 spend its whole 2 Mbit/s, as a busy street does.
    let (sim, _) = start_simulator(
        "fixed",
        "127.0.0.1:8554",
        &["--grain", "12"],
        &dir.join("sim.log"),
    )?;
    let janus = start_janus(&args.janus_config, &dir).await?;
    let max = args
        .viewers
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(ONE_CORE_MAX);
    let (relay, base, camera) = start_relay(&dir, max + 5).await?;
    let eyeward = Eyeward::login(&base, BENCH_EMAIL, BENCH_PASSWORD).await?;

    eprintln!(
        "time to first frame in Chromium, {} joins each…",
        args.joins
    );
    let ttff = time_to_first_frame(&base, camera, args.joins).await?;
    eprintln!("cold starts in Chromium, {} joins each…", args.joins);
    let cold = cold_starts(&dir, args.joins).await?;

    eprintln!("viewer load…");
    let e_points = load(
        &Peer::Eyeward(&eyeward, camera, Route::Udp),
        relay.pid(),
        &args.viewers,
        args.seconds,
        |_| true,
    )
    .await?;
    let janus_session = Janus::connect(JANUS_URL).await?;
    let j_points = load(
        &Peer::Janus(&janus_session),
        janus.pid(),
        &args.viewers,
        args.seconds,
        |_| true,
    )
    .await?;
    eprintln!("routes…");
    let routes = routes(&dir, args.seconds).await?;
    eprintln!("one core…");
    let one_core = one_core(&eyeward, camera, relay.pid(), &[sim.pid()], args.seconds).await?;

    println!(
        "live video: eyeward vs Janus {} (streaming plugin, rtsp mountpoint, videobufferkf)",
        janus_version()
    );
    println!(
        "camera: simulator 1280x720 15 fps, x264 2000 kbit/s, keyframe every 4 s; machine: {}",
        machine()
    );
    println!();
    println!(
        "time to first frame in Chromium ({} joins each at random moments), ms:",
        args.joins
    );
    println!("             p50     p95     min     max   first join");
    for (name, xs, first) in [
        ("eyeward", &ttff.eyeward, ttff.eyeward_first),
        ("janus", &ttff.janus, ttff.janus_first),
    ] {
        println!(
            "  {name:<8} {:>6.0}  {:>6.0}  {:>6.0}  {:>6.0}  {first:>6.0}",
            quantile(xs, 0.5),
            quantile(xs, 0.95),
            quantile(xs, 0.0),
            quantile(xs, 1.0)
        );
    }
    println!("  goal: eyeward p50 <= 100, p95 <= 200");
    println!("  (first join: eyeward starts pulling the camera then; Janus pulls it all the time)");
    println!();
    println!(
        "cold time to first frame in Chromium ({} joins each; every view starts the pull; the \
         camera's 4 s keyframes on its own schedule), ms:",
        args.joins
    );
    println!("                      p50     p95     min     max");
    for (name, xs) in [
        ("through the agent", &cold.agent),
        ("direct rtsp://", &cold.direct),
    ] {
        println!(
            "  {name:<18} {:>6.0}  {:>6.0}  {:>6.0}  {:>6.0}",
            quantile(xs, 0.5),
            quantile(xs, 0.95),
            quantile(xs, 0.0),
            quantile(xs, 1.0)
        );
    }
    println!("  goal: through the agent p50 <= 500");
    println!();
    println!("relay process CPU per packet per viewer (us), CPU (cores), memory:");
    println!(
        "  viewers | us/pkt-viewer eyeward  janus  ratio | cores eyeward janus | KB/viewer eyeward  janus | RSS MB eyeward janus | pkt/s/viewer e j | kbit/s | silent | lost e j | udp drops"
    );
    for (e, j) in e_points.iter().zip(&j_points) {
        let kb = |p: &Point| p.kb_per_viewer.map_or("-".into(), |k| format!("{k:.0}"));
        println!(
            "  {:>7} | {:>21.2} {:>6.2} {:>6.2} | {:>13.2} {:>5.2} | {:>17} {:>6} | {:>14.1} {:>5.1} | {:>7.0} {:>5.0} | {:>6.0} | {:>3} {:>3} | {} {} | {} {}",
            e.viewers,
            e.cpu_us_per_packet_viewer,
            j.cpu_us_per_packet_viewer,
            e.cpu_us_per_packet_viewer / j.cpu_us_per_packet_viewer,
            e.cores,
            j.cores,
            kb(e),
            kb(j),
            e.rss_mb,
            j.rss_mb,
            e.packets_per_viewer_per_s,
            j.packets_per_viewer_per_s,
            e.kbit_per_viewer,
            e.silent,
            j.silent,
            e.lost,
            j.lost,
            e.udp_drops,
            j.udp_drops,
        );
    }
    println!("  goal: eyeward <= 2.7 us per packet-viewer and below Janus; <= 150 KB per viewer");
    println!(
        "  (viewers: webrtc-rs's sans-I/O rtc for ICE and DTLS, then SRTP counted by its RTP \
         headers, not decrypted)"
    );
    println!();
    println!(
        "one core (the relay pinned to one, the load client and the camera to the other), \
         viewers added {ONE_CORE_STEP} at a time:"
    );
    println!(
        "  viewers | relay cores | us/pkt-viewer | lost | frames skipped | udp drops | silent | latency p99 ms"
    );
    for p in &one_core {
        println!(
            "  {:>7} | {:>11.2} | {:>13.2} | {:>4} | {:>14} | {:>9} | {:>6} | {:>6.1}",
            p.viewers,
            p.cores,
            p.cpu_us_per_packet_viewer,
            p.lost,
            p.skipped,
            p.udp_drops,
            p.silent,
            p.latency_ms.map_or(f64::NAN, |l| l[1])
        );
    }
    let served = one_core
        .iter()
        .filter(|p| every_packet_delivered(p))
        .map(|p| p.viewers)
        .max();
    match served {
        Some(n) => println!("  most viewers one core serves with every packet delivered: {n}"),
        None => println!(
            "  most viewers one core serves with every packet delivered: fewer than {ONE_CORE_STEP}"
        ),
    }
    println!();
    println!(
        "eyeward relay-added latency (whole camera frame in -> its last packet out to a viewer), ms:"
    );
    println!("  viewers     p50     p99");
    for p in &e_points {
        let [p50, p99] = p.latency_ms.unwrap_or([f64::NAN; 2]);
        println!("  {:>7}  {p50:>6.2}  {p99:>6.2}", p.viewers);
    }
    println!("  goal: p99 <= 2 ms at 200 viewers");
    println!();
    println!(
        "cost per viewer on each route ({ROUTE_VIEWERS} viewers; the relay's CPU, and on TURN \
         coturn's in the same window):"
    );
    println!(
        "  route    | relay us/pkt-viewer | relay cores | KB/viewer | coturn us/pkt-viewer | lost | silent | latency p99 ms"
    );
    for (route, p) in &routes {
        println!(
            "  {:<8} | {:>19.2} | {:>11.2} | {:>9} | {:>20} | {:>4} | {:>6} | {:>6.2}",
            format!("{route:?}"),
            p.cpu_us_per_packet_viewer,
            p.cores,
            p.kb_per_viewer.map_or("-".into(), |k| format!("{k:.0}")),
            p.beside_us_per_packet_viewer
                .map_or("-".into(), |c| format!("{c:.2}")),
            p.lost,
            p.silent,
            p.latency_ms.map_or(f64::NAN, |l| l[1]),
        );
    }

    if let Some(svg) = &args.svg {
        let curve = |points: &[Point], f: fn(&Point) -> f64| {
            points.iter().map(|p| (p.viewers as f64, f(p))).collect()
        };
        let both = |f: fn(&Point) -> f64| {
            vec![
                Series {
                    name: "eyeward",
                    points: curve(&e_points, f),
                },
                Series {
                    name: "Janus",
                    points: curve(&j_points, f),
                },
            ]
        };
        plot::side_by_side(
            svg,
            &[
                Chart {
                    title: "Relay CPU, % of one core",
                    x: "viewers",
                    y: "% of one core",
                    y_max: None,
                    series: both(|p| p.cores * 100.0),
                },
                Chart {
                    title: "CPU per packet per viewer (cut at 60 µs)",
                    x: "viewers",
                    y: "µs per packet-viewer",
                    y_max: Some(60.0),
                    series: both(|p| p.cpu_us_per_packet_viewer),
                },
                Chart {
                    title: "Relay resident memory",
                    x: "viewers",
                    y: "RSS, MB",
                    y_max: None,
                    series: both(|p| p.rss_mb),
                },
            ],
        )?;
        println!("\nplot: {}", svg.display());
    }
    drop((relay, janus));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn janus_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "janus"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default()
}
