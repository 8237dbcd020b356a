//! The relay's shape holds: its modules depend on each other without a cycle
//! (`scripts/modules.py` prints the graph), and HTTP stays at the edge: no module outside
//! `http` (and `cli`, which starts it) imports axum or sees the HTTP state.

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

#[test]
fn only_the_http_edge_knows_axum_and_the_http_state() -> Result<()> {
    let src = Path::new(ROOT).join("relay/src");
    let mut files = Vec::new();
    sources(&src, &mut files)?;
    let mut strays = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src)?.to_string_lossy().into_owned();
        if rel.starts_with("http/") || rel == "http.rs" || rel == "cli.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("axum") || code.contains("AppState") {
                strays.push(format!("relay/src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    ensure!(
        strays.is_empty(),
        "outside the HTTP edge:\n{}",
        strays.join("\n")
    );
    Ok(())
}
