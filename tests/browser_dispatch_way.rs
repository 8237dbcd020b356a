//! The guard's way as the customer follows it, in Chromium (`tests/browser/dispatch_way.mjs`):
//! the confirmation names the address, the page says when the assigned guard is expected and
//! moves that time as the guard's phone reports positions, and the operator's report at
//! completion is shown on the page, then arrives by mail. Screenshots go to
//! `target/test-output/browser_dispatch_way/`.

mod common;

use anyhow::{Context, Result};
use common::Relay;
use common::smtp::{Smtp, confirmed_address, subject};
use mail_parser::MessageParser;

const PW: &str = "correct horse battery";
const HOME: &str = "1-1 Chiyoda, Chiyoda-ku, Tokyo";
const REPORT: &str = "The back door was open. Nobody inside; Sato closed and locked it.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_sees_when_the_guard_comes_and_reads_the_report_on_the_page_and_in_the_mail()
-> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.set_home(me, HOME, "35.68,139.76")?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    // About 11 km north of the home.
    let guard = relay.guard("tokyo", "Sato", "35.78,139.76")?;
    let cam = relay.camera(me, "Back door", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;
    common::run_browser_script(
        "dispatch_way",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("OPERATOR_EMAIL", "op@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA", cam["id"].as_i64().context("id")?.to_string()),
            ("HOME_ADDRESS", HOME.into()),
            (
                "GUARD_TOKEN",
                guard["guard_token"].as_str().context("token")?.into(),
            ),
            ("REPORT", REPORT.into()),
        ],
        &[],
    )
    .await?;
    // In English, or in Japanese if the phone's language switch came before it was sent.
    let completed = |s: String| s.ends_with(": completed") || s.starts_with("【警備員派遣：完了】");
    let mails = smtp
        .wait_for("the completion mail", |m| {
            m.iter().any(|r| completed(subject(&r.raw)))
        })
        .await?;
    let done = mails
        .iter()
        .find(|r| completed(subject(&r.raw)))
        .context("completion mail")?;
    let parsed = MessageParser::default()
        .parse(&done.raw)
        .context("parse the mail")?;
    let text = parsed
        .body_text(0)
        .context("text part")?
        .replace("\r\n", "\n");
    assert!(
        text.contains(&format!("The guard center's report:\n{REPORT}"))
            || text.contains(&format!("警備センターからの報告：\n{REPORT}")),
        "{text}"
    );
    Ok(())
}
