//! The cluster demo (`scripts/cluster-demo.sh`): three relay nodes behind HAProxy on one
//! PostgreSQL and one Garage, all on loopback; a demo customer with a simulated pan-tilt and a
//! simulated fixed camera, whose agents link through the load balancer; an operator and two
//! guards. Prints the logins and each node's process, and runs until Ctrl-C.
//!
//! `cluster-demo [--dir DIR] [--check]`: `--check` waits until the customer sees both cameras
//! online through the load balancer, then stops (the test command runs it so).

use anyhow::{Context, Result, bail};
use eyeward_bench::cluster::Cluster;
use eyeward_bench::process::{
    Running, add_camera_on, dies_with_parent, login, relay_admin, target_bin,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CUSTOMER: &str = "demo@example.com";
const OPERATOR: &str = "operator@example.com";
const PASSWORD: &str = "eyeward-demo";

struct Args {
    dir: Option<PathBuf>,
    check: bool,
}

fn args() -> Result<Args> {
    let mut args = Args {
        dir: None,
        check: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dir" => args.dir = Some(it.next().context("--dir needs a folder")?.into()),
            "--check" => args.check = true,
            other => bail!("unknown argument {other}; usage: cluster-demo [--dir DIR] [--check]"),
        }
    }
    Ok(args)
}

/// The demo's accounts and cameras, made through node `config`'s admin command; returns the
/// two cameras' agent token files.
fn provision(config: &Path, dir: &Path) -> Result<Vec<(PathBuf, &'static str)>> {
    let customer = relay_admin(
        config,
        &[
            "customer",
            "add",
            "--email",
            CUSTOMER,
            "--name",
            "Demo Customer",
            "--guard-center",
            "tokyo",
            "--lang",
            "en",
            "--address",
            "1-9-1 Marunouchi, Chiyoda-ku, Tokyo",
            "--location",
            "35.6812,139.7671",
        ],
        &format!("{PASSWORD}\n"),
    )?["id"]
        .as_i64()
        .context("customer id")?;
    relay_admin(
        config,
        &[
            "operator",
            "add",
            "--email",
            OPERATOR,
            "--name",
            "Demo Operator",
            "--guard-center",
            "tokyo",
        ],
        &format!("{PASSWORD}\n"),
    )?;
    for (name, at) in [
        ("Kenji Sato", "35.6896,139.7006"),
        ("Aya Suzuki", "35.6586,139.7454"),
    ] {
        relay_admin(
            config,
            &[
                "guard",
                "add",
                "--guard-center",
                "tokyo",
                "--name",
                name,
                "--position",
                at,
            ],
            "",
        )?;
    }
    let mut tokens = Vec::new();
    for (name, model, plan, sim) in [
        ("Living room", "pan-tilt", "dispatch", "sim://pan-tilt"),
        ("Front door", "fixed", "camera-only", "sim://fixed"),
    ] {
        let camera = add_camera_on(config, customer, name, model, plan, "agent")?;
        let file = dir.join(format!("{}.token", name.to_lowercase().replace(' ', "-")));
        std::fs::write(&file, camera["agent_token"].as_str().context("token")?)?;
        tokens.push((file, sim));
    }
    Ok(tokens)
}

/// Logs in through the load balancer and waits until both cameras are online.
async fn check(lb: &str) -> Result<()> {
    let http = login(lb, CUSTOMER, PASSWORD)
        .await
        .context("login through the load balancer")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cameras: serde_json::Value = http
            .get(format!("{lb}/api/cameras"))
            .send()
            .await?
            .json()
            .await?;
        let online = cameras
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["online"] == true).count());
        if online == 2 {
            println!("cluster demo check: both cameras online through the load balancer: passed");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cluster demo check: cameras not online: {cameras}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("eyeward-cluster-demo-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let cluster = Cluster::start(&dir, &["a", "b", "c"], "", "info")?;
    let lb = cluster.lb.base();
    let tokens = provision(&cluster.nodes[0].config, &dir)?;
    let mut agents: Vec<Running> = Vec::new();
    for (token, sim) in &tokens {
        let mut cmd = Command::new(target_bin("eyeward-agent")?);
        cmd.args(["run", "--relay", &lb, "--camera", sim, "--token-file"])
            .arg(token)
            .stderr(std::fs::File::create(token.with_extension("log"))?);
        agents.push(Running(dies_with_parent(&mut cmd).spawn()?));
    }
    if args.check {
        return check(&lb).await;
    }
    println!("\n  eyeward cluster demo — open {lb} in a browser (HAProxy in front of three nodes)");
    println!("    customer:  {CUSTOMER} / {PASSWORD}   (a pan-tilt and a fixed camera, simulated)");
    println!("    operator:  {OPERATOR} / {PASSWORD}");
    for node in &cluster.nodes {
        let pid = node.process.as_ref().map_or(0, Running::pid);
        println!(
            "    node {}: {} (pid {pid}, log {})",
            node.name,
            node.base,
            node.log.display()
        );
    }
    println!("  Try `kill -9` on a node's pid: its cameras come back through the others.");
    println!(
        "  Folders and logs are in {}. Ctrl-C stops everything.\n",
        dir.display()
    );
    tokio::signal::ctrl_c().await?;
    drop(agents);
    Ok(())
}
