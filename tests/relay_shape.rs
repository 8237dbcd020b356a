//! The relay's shape holds: its modules depend on each other without a cycle
//! (`scripts/modules.py` prints the graph); HTTP stays at the edge: no module outside `http`
//! (and `cli`, which starts it) imports axum or sees the HTTP state; and time is read from
//! the one clock (`eyeward::clock`, in the core crate) only, in the relay and in the agent;
//! and the agent as built for a camera carries no server.

use anyhow::{Context, Result, ensure};
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_relays_modules_form_no_cycle() -> Result<()> {
    let out = Command::new("python3")
        .arg(Path::new(ROOT).join("scripts/modules.py"))
        .output()
        .context("python3 scripts/modules.py")?;
    let printed = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && printed.contains("no cycle"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The code lines (comments left out) of the relay's files but those `skip` names (by path
/// under `relay/src/`) that contain any of `words`.
fn lines_with(words: &[&str], skip: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    lines_in("relay/src", words, skip)
}

/// The code lines of the files under `dir` (from the workspace) but those `skip` names that
/// contain any of `words`.
fn lines_in(dir: &str, words: &[&str], skip: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let src = Path::new(ROOT).join(dir);
    let mut files = Vec::new();
    sources(&src, &mut files)?;
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src)?.to_string_lossy().into_owned();
        if skip(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if words.iter().any(|w| code.contains(w)) {
                found.push(format!("{dir}/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    Ok(found)
}

#[test]
fn time_is_read_from_the_one_clock_only() -> Result<()> {
    let reads = ["::now()", "now_utc()"];
    let mut strays = lines_in("relay/src", &reads, |_| false)?;
    // A test may time itself. (The camera simulator, a crate of its own, runs in real time
    // as a camera does.)
    let test = |rel: &str| rel.ends_with("tests.rs");
    strays.extend(lines_in("camera-agent/src", &reads, test)?);
    ensure!(
        strays.is_empty(),
        "time read past the clock:\n{}",
        strays.join("\n")
    );
    Ok(())
}

#[test]
fn only_the_http_edge_knows_axum_and_the_http_state() -> Result<()> {
    let strays = lines_with(&["axum", "AppState"], |rel| {
        rel.starts_with("http/") || rel == "cli.rs"
    })?;
    ensure!(
        strays.is_empty(),
        "outside the HTTP edge:\n{}",
        strays.join("\n")
    );
    Ok(())
}

/// `eyeward-agent` built for a camera (`--no-default-features`) has neither the simulator's
/// RTSP server (gst-rtsp-server) nor an HTTP server (axum, hyper's server side): what runs on
/// a camera only dials out.
#[test]
fn the_agent_built_for_a_camera_carries_no_server() -> Result<()> {
    let out = Command::new(env!("CARGO"))
        .current_dir(ROOT)
        .args(["tree", "-p", "eyeward-agent", "--no-default-features"])
        .args([
            "-e",
            "normal,features",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .output()
        .context("cargo tree")?;
    let tree = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && tree.contains("eyeward-agent"),
        "{tree}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let servers: Vec<&str> = tree
        .lines()
        .filter(|l| {
            l.starts_with("axum ")
                || l.starts_with("gstreamer-rtsp-server")
                || l.starts_with("eyeward-camera-sim")
                || l.starts_with("hyper feature \"server\"")
        })
        .collect();
    ensure!(
        servers.is_empty(),
        "servers in the camera build: {servers:?}"
    );
    let default = Command::new(env!("CARGO"))
        .current_dir(ROOT)
        .args([
            "tree",
            "-p",
            "eyeward-agent",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--locked", "--offline"])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&default.stdout).contains("gstreamer-rtsp-server"),
        "the default build has the simulator (so the check above can fail)"
    );
    Ok(())
}
