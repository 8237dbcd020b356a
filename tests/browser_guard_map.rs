//! Setting where a guard is on the console's map, in Chromium (`tests/browser/guard_map.mjs`):
//! the operator clicks the place (desktop, English), moves the map from the keyboard and marks
//! its centre, and taps the place on a phone (Japanese); each time the guard's row shows the
//! place and the relay keeps it. The tiles come from the configured tile server
//! (`tests/maps/tiles.py`: every page policy must let them in). Screenshots go to
//! `target/test-output/browser_guard_map/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Process, Relay};
use std::process::Command;

const PW: &str = "correct horse battery";
const HOME: &str = "1-1 Chiyoda, Chiyoda-ku, Tokyo";

/// The tile (x, y) at zoom `z` holding (lat, lon), Web Mercator's numbering.
fn tile_of(lat: f64, lon: f64, z: i32) -> (u32, u32) {
    let n = 2f64.powi(z);
    let x = (lon + 180.0) / 360.0 * n;
    let lat = lat.to_radians();
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    (x as u32, y as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_a_guards_place_on_the_map_by_pointer_keyboard_and_touch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut tiles = Command::new("python3");
    tiles.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/maps/tiles.py"));
    let tiles = Process::spawn(tiles, Some("tiles on"), dir.path().join("tiles.log"))?;
    let tiles_base = tiles.ready.rsplit(' ').next().context("tiles url")?;
    let relay = Relay::start(&format!(
        "[dispatch]\nmap_tiles = \"{tiles_base}/{{z}}/{{x}}/{{y}}.png\"\n\
         map_attribution = \"Test tiles <b>\"\n"
    ))?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let sato = relay.guard("tokyo", "Sato", "35.6812,139.7671")?;
    let suzuki = relay.guard("tokyo", "Suzuki", "35.7000,139.8000")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.set_home(me, HOME, "35.6800,139.7600")?;
    let id = |g: &serde_json::Value| -> Result<String> {
        Ok(g["id"].as_i64().context("guard id")?.to_string())
    };
    let out = common::run_browser_script(
        "guard_map",
        &relay,
        &[
            ("OPERATOR_EMAIL", "op@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("SATO", id(&sato)?),
            ("SUZUKI", id(&suzuki)?),
        ],
        &[("tiles", &tiles)],
    )
    .await?;

    // The places the page shows (five decimals) are the relay's.
    let result: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.contains("\"ok\":true"))
            .context("result line")?,
    )?;
    let op = relay.login("op@example.jp", PW).await?;
    let guards: serde_json::Value = op.get("/api/ops/guards").await?.json().await?;
    for (name, key) in [("Sato", "sato"), ("Suzuki", "suzuki")] {
        let g = guards
            .as_array()
            .context("guards")?
            .iter()
            .find(|g| g["name"] == name)
            .context("guard")?;
        for axis in ["lat", "lon"] {
            let stored = g["position"][axis].as_f64().context("stored")?;
            let shown = result[key][axis].as_f64().context("shown")?;
            ensure!(
                (stored - shown).abs() < 1e-5,
                "{name} {axis}: stored {stored}, the page marked {shown}"
            );
        }
    }
    // The map's tiles came from the configured server, around the first guard.
    let (x, y) = tile_of(35.6812, 139.7671, 16);
    let wanted = format!("tile 16/{x}/{y}");
    ensure!(
        tiles.ready_lines().iter().any(|l| l == &wanted),
        "no {wanted} among {:?}",
        tiles.ready_lines()
    );
    Ok(())
}
