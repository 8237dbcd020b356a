//! Motion to mail and to push (`bench/mail.sh`): from the moment the simulator's scripted
//! intruder enters the picture to the moment the SMTP server accepted the alert mail, and the
//! push service decrypted its push, p50 and p95 over N events, and where the time goes
//! ([`eyeward_bench::alerts`]). Release binaries on loopback.

use anyhow::{Context, Result};
use eyeward_bench::alerts::{motion_to_mail, percentile, table};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(Ok(20), |s| s.parse())
        .context("number of events")?;
    let dir = std::env::temp_dir().join(format!("eyeward-mail-bench-{}", std::process::id()));
    let mut run = motion_to_mail(&dir, n, &[], "").await?;
    println!("## Motion to mail and push ({n} crossings, release build, loopback)\n");
    print!("{}", table(&mut run.spans));
    for (what, spans) in [("mail", &run.spans.total), ("push", &run.spans.push_total)] {
        if spans.is_empty() {
            continue;
        }
        let p95 = percentile(spans, 95.0);
        println!(
            "\ngoal: motion to {what} p95 ≤ 1500 ms: {}",
            if p95 <= 1500 { "met" } else { "NOT met" }
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
