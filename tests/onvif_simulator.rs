//! The simulator is a faithful ONVIF camera: a third-party client (onvif-zeep, from PyPI,
//! `tests/onvif/drive.py`) finds its profile and PTZ service, moves it every way ONVIF offers
//! and reads the position back; a wrong password is refused; a fixed camera has no PTZ.

mod common;

use anyhow::{Context, Result};
use common::Camera;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const PASSWORD: &str = "sim secret";

/// The camera's ONVIF port, from the simulator's second line.
fn onvif_port(camera: &Camera) -> Result<u16> {
    let url = camera.onvif_url()?;
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .context("port")?;
    Ok(port.parse()?)
}

fn drive(port: u16, user: &str, password: &str) -> Result<Output> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(root.join("tests/.venv/bin/python"))
        .arg(root.join("tests/onvif/drive.py"))
        .args(["127.0.0.1", &port.to_string(), user, password])
        .output()
        .context("onvif-zeep (scripts/setup.sh test installs it)")
}

#[test]
fn a_third_party_onvif_client_moves_the_simulated_camera() -> Result<()> {
    let camera = Camera::start("pan-tilt", &["--username", "admin"], Some(PASSWORD))?;
    let port = onvif_port(&camera)?;
    let out = drive(port, "admin", PASSWORD)?;
    anyhow::ensure!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        camera.process.log()
    );
    let got: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(got["profile"], "profile_1");
    assert_eq!(got["stream_uri"], json!(camera.url));
    assert_eq!(got["start"], json!([0.0, 0.0]));
    let moving = &got["moving"];
    assert_eq!(moving[1], "MOVING", "{got}");
    assert!(
        moving[0][0].as_f64().context("x")? > 0.05,
        "moved right: {got}"
    );
    assert_eq!(got["stopped"][1], "IDLE", "{got}");
    assert_eq!(got["absolute"], json!([-0.5, 0.5]));
    assert_eq!(got["relative"], json!([-0.25, 0.5]));
    assert_eq!(got["home"], json!([0.0, 0.0]));
    assert_eq!(got["preset"], json!([-0.25, 0.5]));
    assert_eq!(got["presets"], json!(["door"]));

    // The wrong password moves nothing.
    let refused = drive(port, "admin", "guess")?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("a valid WS-Security UsernameToken is required"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    Ok(())
}

#[test]
fn a_fixed_camera_has_no_pan_tilt_service() -> Result<()> {
    let camera = Camera::start("fixed", &[], None)?;
    let port = onvif_port(&camera)?;
    let out = drive(port, "admin", "none")?;
    assert!(!out.status.success(), "a fixed camera cannot be moved");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PTZ") || stderr.contains("ptz"), "{stderr}");
    Ok(())
}
