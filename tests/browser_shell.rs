//! A real browser (Debian's headless Chromium, driven by Playwright) logs in, sees only its
//! own cameras, switches language, and logs out. Screenshots go to
//! `target/test-output/browser_shell/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, status_json};
use std::path::Path;
use std::process::Command;

const PW: &str = "correct horse battery";

#[tokio::test]
async fn a_customer_uses_the_web_shell_in_chromium() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script_dir = common::browser_scripts()?;
    let relay = Relay::start("")?;
    let me = relay.admin(
        &[
            "customer",
            "add",
            "--email",
            "hanako@example.jp",
            "--name",
            "花子",
            "--guard-center",
            "west",
            "--lang",
            "ja",
        ],
        &format!("{PW}\n"),
    )?["id"]
        .as_i64()
        .context("id")?;
    let other = relay.customer("other@example.jp", "Other", "west", PW)?;
    relay.operator("op@example.jp", "Oscar", "west", PW)?;
    let xss = "<img src=x onerror=\"window.__xss=1\">";
    relay.camera(me, "玄関 (front door)", "fixed", "dispatch", "agent")?;
    relay.camera(me, xss, "pan-tilt", "camera-only", "agent")?;
    relay.camera(other, "Neighbour's garden", "fixed", "dispatch", "agent")?;

    let out_dir = root.join("target/test-output/browser_shell");
    let output = Command::new("node")
        .arg(script_dir.join("shell.mjs"))
        .env("BASE_URL", &relay.base)
        .env("OUT_DIR", &out_dir)
        .env("EMAIL", "hanako@example.jp")
        .env("PASSWORD", PW)
        .env("OPERATOR_EMAIL", "op@example.jp")
        .env("OPERATOR_CENTER_TEXT", "西日本") // operators default to Japanese
        .env(
            "OWN_CAMERAS",
            serde_json::json!(["玄関 (front door)", xss]).to_string(),
        )
        .env(
            "FOREIGN_CAMERAS",
            serde_json::json!(["Neighbour's garden"]).to_string(),
        )
        .output()
        .context("running node (is Node.js installed?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "browser test failed\nstdout: {stdout}\nstderr: {stderr}\nrelay log:\n{}",
        relay.log()
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    for shot in [
        "cameras-ja.png",
        "cameras-en.png",
        "cameras-phone.png",
        "login.png",
        "operator.png",
    ] {
        assert!(
            out_dir.join(shot).metadata()?.len() > 1000,
            "{shot} missing"
        );
    }

    // The language the customer chose in the browser is saved on the server.
    let c = relay.login("hanako@example.jp", PW).await?;
    let (_, me) = status_json(c.get("/api/me").await?).await?;
    assert_eq!(me["lang"], "en");
    Ok(())
}
