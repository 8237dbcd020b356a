//! The cluster benchmark (`bench/cluster.sh`, issue 21): three relay nodes behind HAProxy on
//! one PostgreSQL and one Garage, against one node alone on the same kind of servers, on the
//! release builds:
//! - idle linked cameras: many agents in this one process (the agent's own link code, over
//!   the real link protocol, through the load balancer), then each node's cameras held, and
//!   its CPU and memory per idle linked camera;
//! - events per second the cluster sustains against one node (uploads as the agent makes
//!   them, as fast as they are answered);
//! - time to the first video frame through a node that does not hold the camera against the
//!   node that does (each join cold: the feed starts for it), and the 307 variant's estimate;
//! - failover: the node holding a watched camera and a third of the agents killed (-9): how
//!   long until every agent is linked again, and until the viewer on another node has video.
//!
//! `cluster [--cameras N] [--seconds S] [--svg FILE]`; prints a Markdown section.

use anyhow::{Context, Result, bail, ensure};
use eyeward::clock::Clock;
use eyeward::{CameraModel, CameraSource, CustomerId, DisplayName, Plan, UnixMillis};
use eyeward_agent::link::{CameraAddr, LinkConfig, Relays};
use eyeward_bench::backend::Backend;
use eyeward_bench::cluster::Cluster;
use eyeward_bench::plot::{Chart, Series, side_by_side};
use eyeward_bench::process::{
    BENCH_EMAIL, BENCH_PASSWORD, Running, add_bench_customer, add_camera, bench_login,
    dies_with_parent, provision_customer, start_relay, target_bin, usage,
};
use eyeward_bench::quantile;
use eyeward_bench::viewer::{Eyeward, loopback_api};
use eyeward_relay::config::{DatabaseConfig, DatabaseTls};
use eyeward_relay::store::{Audit, NewCamera, Store};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Uploads at once while measuring events per second.
const WORKERS: usize = 16;

/// Joins per node (owner, non-owner) in the first-frame measure.
const JOINS: usize = 8;

/// What every relay of the benchmark has besides its storage: rate limits out of the way,
/// and a feed that stops a second after its last viewer (so that each join starts it).
const EXTRA: &str = "[events]\nmax_per_minute_per_camera = 1000000\n\
                     [webrtc]\nice_addresses = [\"127.0.0.1\"]\nlinger = \"1s\"\n";

struct Args {
    cameras: usize,
    seconds: u64,
    svg: Option<std::path::PathBuf>,
}

fn args() -> Result<Args> {
    let mut args = Args {
        cameras: 300,
        seconds: 20,
        svg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().context("a value");
        match arg.as_str() {
            "--cameras" => args.cameras = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--svg" => args.svg = Some(value()?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// `n` agent cameras of `customer` made straight in the database at `url`: their tokens.
async fn cameras(url: &str, data_dir: &Path, customer: i64, n: usize) -> Result<Vec<String>> {
    let database = DatabaseConfig {
        url: Some(url.parse()?),
        tls: DatabaseTls::Disable,
        ..DatabaseConfig::default()
    };
    let store = Store::open(data_dir, &database).await?;
    let mut tokens = Vec::new();
    for i in 0..n {
        let token = eyeward_relay::auth::Token::generate(eyeward_relay::admin::AGENT_TOKEN_PREFIX);
        store
            .add_camera(
                NewCamera {
                    customer_id: CustomerId(customer),
                    name: DisplayName::parse(&format!("Camera {i}"))?,
                    model: CameraModel::Fixed,
                    plan: Plan::CameraOnly,
                    source: CameraSource::Agent,
                    agent_token_hash: Some(token.hash.clone()),
                },
                &Audit::admin(UnixMillis::now()),
            )
            .await?;
        tokens.push(token.secret().to_owned());
    }
    Ok(tokens)
}

/// Links every token's camera through `relay` from this process, with the agent's own link
/// code; the links live until the returned tasks are aborted.
fn link_all(relay: &str, tokens: &[String]) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let relays = Relays::new(vec![relay.parse()?])?;
    let tls = eyeward_agent::tls::relay_client_config(None)?;
    Ok(tokens
        .iter()
        .map(|token| {
            let config = LinkConfig {
                relays: relays.clone(),
                token: token.clone(),
                // Never dialled: nobody watches these cameras.
                camera: CameraAddr {
                    host: "127.0.0.1".into(),
                    port: 9,
                    path: "/idle".into(),
                    credentials: None,
                },
                tls: tls.clone(),
                gop: None,
            };
            tokio::spawn(eyeward_agent::link::run(
                config,
                None,
                Clock::real(),
                std::future::pending(),
            ))
        })
        .collect())
}

/// The `eyeward_agent_links` gauge of the relay at `base`.
async fn links_of(http: &reqwest::Client, base: &str) -> Result<u64> {
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("eyeward_agent_links "))
        .context("eyeward_agent_links")?
        .trim()
        .parse()
        .context("a count")
}

/// Waits until the relays at `bases` hold `want` links between them; how long that took.
async fn linked(
    http: &reqwest::Client,
    bases: &[String],
    want: u64,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut sum = 0;
        for base in bases {
            sum += links_of(http, base).await.unwrap_or(0);
        }
        if sum >= want {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < limit,
            "{sum} of {want} links after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn jpeg() -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(320, 180, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img)?;
    Ok(out)
}

/// Uploads events through `base` with [`WORKERS`] workers for `seconds`: events per second
/// and the answers' p95 in ms.
async fn ingest(base: &str, tokens: &[String], seconds: u64, tag: &str) -> Result<(f64, f64)> {
    let http = reqwest::Client::new();
    let jpeg = Arc::new(jpeg()?);
    let tokens = Arc::new(tokens.to_vec());
    let until = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (http, jpeg, tokens, base, tag) = (
                http.clone(),
                jpeg.clone(),
                tokens.clone(),
                base.to_owned(),
                tag.to_owned(),
            );
            tokio::spawn(async move {
                let mut took = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let token = &tokens[(w * 7919 + n) % tokens.len()];
                    let started = Instant::now();
                    let url = format!(
                        "{base}/agent/v1/events?key={tag}-{w:02}-{n:06}&captured_at={}\
                         &score=0.04&bbox=0,0,8,8",
                        UnixMillis::now().0
                    );
                    let answer = http
                        .post(url)
                        .bearer_auth(token)
                        .header("content-type", "image/jpeg")
                        .body(jpeg.to_vec())
                        .send()
                        .await?;
                    ensure!(answer.status() == 201, "upload: {}", answer.status());
                    took.push(started.elapsed().as_secs_f64() * 1000.0);
                    n += 1;
                }
                anyhow::Ok(took)
            })
        })
        .collect();
    let mut took = Vec::new();
    for w in workers {
        took.extend(w.await??);
    }
    Ok((
        took.len() as f64 / began.elapsed().as_secs_f64(),
        quantile(&took, 0.95),
    ))
}

/// Joins camera `cam` through `client` cold (its feed stopped), `JOINS` times: the first
/// frame's median ms from the offer.
async fn first_frames(client: &Eyeward, cam: i64) -> Result<f64> {
    let api = loopback_api()?;
    let mut ms = Vec::new();
    for _ in 0..JOINS {
        // The last join's feeds have stopped: the pulling node's a second or two after its
        // viewer left, then the owner's a second or two after that pull.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let started = Instant::now();
        let viewer = client.join(&api, cam).await?;
        while viewer.packets() == 0 {
            ensure!(started.elapsed() < Duration::from_secs(15), "no video");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        client.leave(viewer).await?;
    }
    Ok(quantile(&ms, 0.5))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = args()?;
    let dir = std::env::temp_dir().join(format!("eyeward-cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cluster = Cluster::start(&dir, &["a", "b", "c"], EXTRA, "warn")?;
    let lb = cluster.lb.base();
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
    let first = cluster.nodes[0].config.clone();
    let customer = add_bench_customer(&first)?;
    let tokens = cameras(
        &cluster.database,
        &dir.join("provision"),
        customer,
        args.cameras,
    )
    .await?;
    let http = reqwest::Client::new();

    // Idle links: each node's memory and CPU before and with the cameras it holds.
    let before: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| usage(n.process.as_ref().map_or(0, Running::pid)))
        .collect::<Result<_>>()?;
    let linking = link_all(&lb, &tokens)?;
    let link_time = linked(&http, &bases, args.cameras as u64, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_from: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| usage(n.process.as_ref().map_or(0, Running::pid)))
        .collect::<Result<_>>()?;
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let mut idle_rows = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let now = usage(node.process.as_ref().map_or(0, Running::pid))?;
        let held = links_of(&http, &node.base).await?;
        let cpu = (now.cpu - idle_from[i].cpu).as_secs_f64() / args.seconds as f64;
        let rss = now.rss_bytes.saturating_sub(before[i].rss_bytes) as f64;
        idle_rows.push((node.name.clone(), held, cpu, rss));
    }

    // Events per second: the cluster through HAProxy, then one node alone.
    let (cluster_eps, cluster_p95) = ingest(&lb, &tokens, args.seconds, "cluster").await?;

    // First frames: one simulated camera linked to node a; joined through a and through b.
    let (sim_config, sim_cam) = {
        let cam = add_camera(&first, customer, "Street", "fixed", "agent")?;
        let token = dir.join("street.token");
        std::fs::write(&token, cam["agent_token"].as_str().context("token")?)?;
        (token, cam["id"].as_i64().context("id")?)
    };
    let mut sim = Command::new(target_bin("eyeward-agent")?);
    sim.args([
        "run",
        "--relay",
        &bases[0],
        "--relay",
        &lb,
        "--camera",
        "sim://fixed",
        "--token-file",
    ])
    .arg(&sim_config)
    .stderr(std::fs::File::create(dir.join("street-agent.log"))?);
    let _sim = Running(dies_with_parent(&mut sim).spawn()?);
    linked(
        &http,
        &bases,
        args.cameras as u64 + 1,
        Duration::from_secs(30),
    )
    .await?;
    // Through HAProxy, pinned by its cookie, as a browser is: the origin is the service's.
    let pinned = |node: &str| {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        jar.add_cookie_str(&format!("eyeward_node={node}"), &lb.parse().expect("url"));
        jar
    };
    let owner = Eyeward::login_with(&lb, BENCH_EMAIL, BENCH_PASSWORD, pinned("a")).await?;
    let other = Eyeward::login_with(&lb, BENCH_EMAIL, BENCH_PASSWORD, pinned("b")).await?;
    let owner_ms = first_frames(&owner, sim_cam).await?;
    let other_ms = first_frames(&other, sim_cam).await?;
    let mut hops = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        http.get(format!("{lb}/healthz"))
            .send()
            .await?
            .bytes()
            .await?;
        hops.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let hop_ms = quantile(&hops, 0.5);

    // Failover: a viewer on b watches the camera a holds; a is killed with a third of the
    // agents.
    let api = loopback_api()?;
    let viewer = other.join(&api, sim_cam).await?;
    let started = Instant::now();
    while viewer.packets() < 50 {
        ensure!(
            started.elapsed() < Duration::from_secs(15),
            "no video before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let survivors: Vec<String> = bases[1..].to_vec();
    let killed = Instant::now();
    drop(cluster.node("a")?.process.take());
    let packets_at_kill = viewer.packets();
    let mut back = Vec::new();
    let mut video_back = None;
    let want = args.cameras as u64 + 1;
    loop {
        let mut sum = 0;
        for base in &survivors {
            sum += links_of(&http, base).await.unwrap_or(0);
        }
        let t = killed.elapsed().as_secs_f64();
        back.push((t, sum as f64));
        if video_back.is_none() && viewer.packets() > packets_at_kill + 50 {
            video_back = Some(t);
        }
        if sum >= want && video_back.is_some() {
            break;
        }
        ensure!(
            t < 60.0,
            "{sum} of {want} links back, video {video_back:?}, after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_back = back.last().map_or(0.0, |p| p.0);
    linking.iter().for_each(|l| l.abort());
    drop(cluster);

    // The peer: one node alone (no [cluster]) on PostgreSQL and Garage, the same uploads.
    let single = Backend::named("postgres-s3")?;
    let single_dir = dir.join("single");
    std::fs::create_dir_all(&single_dir)?;
    let (config, single_customer) = provision_customer(
        &single_dir,
        &format!("{EXTRA}{}", single.config(&single_dir)?),
    )?;
    let url = std::fs::read_to_string(&config)?
        .lines()
        .find_map(|l| {
            l.strip_prefix("url = ")
                .map(|u| u.trim_matches('"').to_owned())
        })
        .context("the single node's database")?;
    let single_tokens = cameras(
        &url,
        &single_dir.join("provision"),
        single_customer,
        args.cameras,
    )
    .await?;
    let (relay, base) = start_relay(&config, &single_dir.join("relay.log"))?;
    bench_login(&base).await?;
    let (single_eps, single_p95) = ingest(&base, &single_tokens, args.seconds, "single").await?;
    drop(relay);

    println!(
        "## Several relay nodes (three behind HAProxy on PostgreSQL and Garage; release build, loopback, 2 cores)\n"
    );
    println!(
        "{} idle cameras linked through HAProxy by the agent's own link code in one process, all linked in {:.1} s; {} s measured idle.\n",
        args.cameras,
        link_time.as_secs_f64(),
        args.seconds
    );
    println!("| node | cameras held | CPU per idle camera (µs/s) | memory per idle camera (KiB) |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, held, cpu, rss) in &idle_rows {
        let held_f = (*held).max(1) as f64;
        println!(
            "| {name} | {held} | {:.1} | {:.1} |",
            cpu * 1e6 / held_f,
            rss / 1024.0 / held_f
        );
    }
    println!("\n| measure | three nodes | one node alone | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| events/s, {WORKERS} uploads at once | {cluster_eps:.0} | {single_eps:.0} | ×{:.2} |",
        cluster_eps / single_eps
    );
    println!(
        "| upload p95 ms | {cluster_p95:.1} | {single_p95:.1} | ×{:.2} |",
        cluster_p95 / single_p95
    );
    println!(
        "\nFirst video frame, cold (the feed starts for the join), median of {JOINS}: through the node that holds the camera {owner_ms:.0} ms; through another node (pulled through the owner) {other_ms:.0} ms (×{:.2}); the 307 variant's estimate (one more round trip through HAProxy, {hop_ms:.1} ms, then the owner) {:.0} ms.\n",
        other_ms / owner_ms,
        owner_ms + hop_ms
    );
    println!(
        "Failover (node a killed -9 with its share of the {} agents): every agent linked again after {all_back:.1} s; the viewer on b had video again (same session) after {:.1} s.",
        args.cameras + 1,
        video_back.unwrap_or(f64::NAN)
    );
    if let Some(svg) = &args.svg {
        side_by_side(
            svg,
            &[Chart {
                title: "Agents linked to the survivors after a node is killed",
                x: "seconds after kill -9",
                y: "agents linked",
                y_max: Some(want as f64 * 1.1),
                series: vec![Series {
                    name: "linked to b and c",
                    points: back,
                }],
            }],
        )?;
        eprintln!("chart: {}", svg.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
