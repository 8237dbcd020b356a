//! The household in a real browser, the way its people use it: in Chromium, the holder
//! invites someone from the household card (one camera: watch live and events); the
//! invitation arrives as a real mail, whose link the invited person opens in their own
//! browser, where they choose a password. They see that camera alone, live, without the
//! pan-tilt pad or the speaker they were not given, and none of the holder's settings; the
//! holder's history names them, and so does the operation mail that tells the holder someone
//! joined. They add an alert address of their own, confirmed through its
//! real mail: motion on their camera is mailed there, motion on the camera they were not given
//! alert mail on is not. Then the holder gives them `move` from the same card, and the pad
//! appears for them; last, the holder removes them with the card's button, and their login is
//! gone. Runs in a loopback-only network namespace (live video). Screenshots
//! go to `target/test-output/browser_household/`.

mod common;

use anyhow::{Context, Result};
use common::smtp::{Smtp, link};
use common::{Relay, in_loopback_namespace, status_json, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "a_member_invited_by_mail_joins_and_sees_only_what_they_were_given";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_invited_by_mail_joins_and_sees_only_what_they_were_given() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!(
        "{}\n[mail]\nsmtp_url = \"{}\"\nalert_cooldown = \"1s\"\n",
        common::LOOPBACK_VIEWERS_AND_CAMERAS,
        smtp.url()
    ))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let porch = relay.camera(owner, "Porch", "pan-tilt", "dispatch", "agent")?;
    let garden = relay.camera(owner, "Garden", "fixed", "camera-only", "agent")?;
    let token = |v: &serde_json::Value| {
        v["agent_token"]
            .as_str()
            .map(str::to_owned)
            .context("token")
    };
    let porch_agent = relay.start_agent(&token(&porch)?, "sim://pan-tilt", "porch-agent")?;
    let garden_agent = relay.start_agent(&token(&garden)?, "sim://fixed", "garden-agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    common::smtp::confirmed_address(&relay, &smtp, &alice, "alice@example.jp").await?;
    let (porch_id, garden_id) = (
        porch["id"].as_i64().context("id")?,
        garden["id"].as_i64().context("id")?,
    );
    wait_online(&alice, porch_id, true, Duration::from_secs(15)).await?;
    wait_online(&alice, garden_id, true, Duration::from_secs(15)).await?;
    let agents = [
        ("porch agent", &porch_agent),
        ("garden agent", &garden_agent),
    ];
    let vars = |step: &str| {
        vec![
            ("STEP", step.to_owned()),
            ("EMAIL", "a@example.jp".to_owned()),
            ("PASSWORD", PW.to_owned()),
            ("PORCH", porch_id.to_string()),
            ("GARDEN", garden_id.to_string()),
        ]
    };

    common::run_browser_script("household", &relay, &vars("invite"), &agents).await?;
    let mails = smtp
        .wait_for("the invitation", |m| {
            m.iter().any(|r| r.to == ["hana@example.jp"])
        })
        .await?;
    let mail = mails
        .iter()
        .find(|r| r.to == ["hana@example.jp"])
        .context("the invitation")?;
    assert_eq!(
        common::smtp::subject(&mail.raw),
        "eyeward: Alice invites you to their household"
    );
    let invite_url = link(&mail.raw, &format!("{}/#invite/", relay.base))?;

    let mut join = vars("join");
    join.push(("INVITE_URL", invite_url));
    common::run_browser_script("household", &relay, &join, &agents).await?;

    let (_, household) = status_json(alice.get("/api/household").await?).await?;
    assert_eq!(
        household["members"][0]["cameras"],
        serde_json::json!({ porch_id.to_string(): ["watch", "events", "move", "alerts"] }),
        "{household}"
    );

    // The holder is told by mail that someone joined, and who.
    let joined = |m: &[common::smtp::Received]| {
        m.iter()
            .find(|r| {
                r.to == ["alice@example.jp"]
                    && common::smtp::subject(&r.raw) == "Account activity: Joined the household"
            })
            .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
    };
    let mails = smtp
        .wait_for("the joining's notice", |m| joined(m).is_some())
        .await?;
    let notice = joined(&mails).context("notice")?;
    assert!(notice.contains("By: Hana"), "{notice}");

    // Her address, added in her page, confirmed through its mail by whoever reads it.
    let hers = "hana-phone@example.jp";
    let mails = smtp
        .wait_for("her confirmation", |m| m.iter().any(|r| r.to == [hers]))
        .await?;
    let confirm = link(
        &mails.iter().find(|r| r.to == [hers]).context("mail")?.raw,
        &format!("{}/confirm/", relay.base),
    )?;
    let confirmed = relay
        .client()
        .request(
            reqwest::Method::POST,
            confirm.trim_start_matches(&relay.base),
        )
        .send()
        .await?;
    assert_eq!(confirmed.status(), 200);
    // Motion on Garden (no alert mail for her), then on Porch (hers): only Porch reaches her.
    let after = smtp.received()?.len();
    for (camera, key) in [
        (&garden, "household-garden-1"),
        (&porch, "household-porch-1"),
    ] {
        let upload =
            common::upload_event(&relay, &token(camera)?, key, &common::jpeg(320, 180)).await?;
        assert_eq!(upload.status(), 201, "{}", upload.text().await?);
    }
    // Her alerts, and the holder's, after her address was confirmed (the simulated scene's
    // own motion may alert too: only what comes after counts).
    let alerts_to = |m: &[common::smtp::Received], to: &str| -> Vec<String> {
        m[after.min(m.len())..]
            .iter()
            .filter(|r| r.to == [to] && common::smtp::subject(&r.raw).starts_with("Motion"))
            .map(|r| common::smtp::subject(&r.raw))
            .collect()
    };
    let mails = smtp
        .wait_for("her alert and the holder's of Garden", |m| {
            alerts_to(m, hers).iter().any(|s| s.contains("Porch"))
                && alerts_to(m, "alice@example.jp")
                    .iter()
                    .any(|s| s.contains("Garden"))
        })
        .await?;
    let got = alerts_to(&mails, hers);
    assert!(
        got.iter().all(|s| s.contains("Porch")),
        "only Porch's alerts reach her: {got:?}"
    );

    // The holder removes her from the card: her login is gone.
    common::run_browser_script("household", &relay, &vars("remove"), &agents).await?;
    assert!(
        relay
            .login("hana@example.jp", "hana’s own password")
            .await
            .is_err()
    );
    Ok(())
}
