//! The admin command line as CONTRACT.md gives it: exactly one JSON object with `--json`,
//! tokens shown once and stored only as hashes, clear errors; and `check-config`, which
//! reaches what a config names, says what fails, and changes nothing.

mod common;

use anyhow::{Context, Result};
use common::smtp::Smtp;
use common::{Relay, bin};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PW: &str = "correct horse battery";

#[tokio::test]
async fn provisioning_prints_the_contract_json() -> Result<()> {
    let relay = Relay::start("")?;
    let cust = relay.admin(
        &[
            "customer",
            "add",
            "--email",
            "taro@example.jp",
            "--name",
            "山田太郎",
            "--guard-center",
            "tokyo",
            "--lang",
            "ja",
        ],
        &format!("{PW}\n"),
    )?;
    let cust_id = cust["id"].as_i64().expect("id");
    assert_eq!(cust.as_object().unwrap().len(), 1, "{cust}");
    let op = relay.admin(
        &[
            "operator",
            "add",
            "--email",
            "op@example.jp",
            "--name",
            "Oscar",
            "--guard-center",
            "west",
        ],
        &format!("{PW}\r\n"),
    )?;
    assert!(op["id"].as_i64().is_some());

    let agent_cam = relay.camera(cust_id, "Living room", "pan-tilt", "dispatch", "agent")?;
    let token = agent_cam["agent_token"]
        .as_str()
        .expect("agent token")
        .to_owned();
    assert!(token.starts_with("ewa_") && token.len() >= 47, "{token}");
    let direct = relay.camera(
        cust_id,
        "Gate",
        "fixed",
        "camera-only",
        "rtsp://admin:hunter2secret@192.0.2.9:554/live",
    )?;
    assert!(direct.get("agent_token").is_none(), "{direct}");

    let list = relay.admin(&["camera", "list"], "")?;
    let text = list.to_string();
    assert!(
        !text.contains(&token) && !text.contains("hunter2secret"),
        "{text}"
    );
    assert_eq!(list["cameras"][1]["source"], "rtsp://192.0.2.9:554/live");
    assert_eq!(list["cameras"][1]["source_has_credentials"], true);
    let customers = relay.admin(&["customer", "list"], "")?;
    assert_eq!(customers["customers"][0]["name"], "山田太郎");
    assert_eq!(customers["customers"][0]["lang"], "ja");

    // The token is stored only as a hash.
    let stored = relay.database_at_rest()?;
    assert!(
        !stored.windows(token.len()).any(|w| w == token.as_bytes()),
        "token stored in clear"
    );
    // A new token replaces the old one.
    let fresh = relay.admin(
        &["camera", "new-token", "--id", &agent_cam["id"].to_string()],
        "",
    )?;
    assert_ne!(fresh["agent_token"].as_str().unwrap(), token);

    // The customer logs in with the password given on stdin, and sees both cameras.
    let c = relay.login("taro@example.jp", PW).await?;
    let (_, cams) = common::status_json(c.get("/api/cameras").await?).await?;
    assert_eq!(cams.as_array().unwrap().len(), 2);
    assert!(!relay.log().contains(PW), "passwords never reach the log");
    Ok(())
}

#[test]
fn bad_arguments_fail_with_clear_errors() -> Result<()> {
    let relay = Relay::start("")?;
    let id = relay
        .customer("a@example.jp", "Alice", "east", PW)?
        .to_string();
    for (args, stdin, says) in [
        (
            vec![
                "customer",
                "add",
                "--email",
                "a@example.jp",
                "--name",
                "A",
                "--guard-center",
                "east",
            ],
            PW,
            "already exists",
        ),
        (
            vec![
                "customer",
                "add",
                "--email",
                "nope",
                "--name",
                "A",
                "--guard-center",
                "east",
            ],
            PW,
            "not an email address",
        ),
        (
            vec![
                "customer",
                "add",
                "--email",
                "b@example.jp",
                "--name",
                "A",
                "--guard-center",
                "east",
            ],
            "short",
            "at least 8",
        ),
        (
            vec![
                "customer",
                "add",
                "--email",
                "b@example.jp",
                "--name",
                "A",
                "--guard-center",
                "east",
            ],
            "",
            "password on stdin",
        ),
        (
            vec![
                "camera",
                "add",
                "--customer",
                "999",
                "--name",
                "X",
                "--model",
                "fixed",
                "--plan",
                "dispatch",
                "--source",
                "agent",
            ],
            "",
            "no such customer",
        ),
        (
            vec![
                "camera",
                "add",
                "--customer",
                &id,
                "--name",
                "X",
                "--model",
                "fixed",
                "--plan",
                "dispatch",
                "--source",
                "http://u:topsecret@cam/",
            ],
            "",
            "rtsp://",
        ),
        (
            vec!["camera", "remove", "--id", "999"],
            "",
            "no such camera",
        ),
        (
            vec!["customer", "set-password", "--id", "999"],
            PW,
            "no such customer",
        ),
        (
            vec!["operator", "remove", "--id", &id],
            "",
            "no such operator",
        ),
    ] {
        let (ok, json, stderr) = relay.admin_raw(&args, stdin)?;
        assert!(!ok, "{args:?} succeeded");
        let err = json["error"].as_str().unwrap_or_default();
        assert!(err.contains(says), "{args:?}: {json}");
        assert!(
            !err.contains("topsecret") && !stderr.contains("topsecret"),
            "{err} {stderr}"
        );
    }
    // Closed sets are checked by the argument parser, which names the allowed values.
    let out = Command::new(bin("eyeward-relay"))
        .args(["admin", "--config"])
        .arg(&relay.config)
        .args([
            "customer",
            "add",
            "--email",
            "c@example.jp",
            "--name",
            "C",
            "--guard-center",
            "osaka",
            "--json",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)?.contains("expected one of: east, tokyo, west"));
    Ok(())
}

#[test]
fn removing_a_customer_removes_their_cameras() -> Result<()> {
    let relay = Relay::start("")?;
    let a = relay.customer("a@example.jp", "Alice", "east", PW)?;
    let b = relay.customer("b@example.jp", "Bob", "east", PW)?;
    relay.camera(a, "A1", "fixed", "camera-only", "agent")?;
    relay.camera(b, "B1", "fixed", "camera-only", "agent")?;
    relay.admin(&["customer", "remove", "--id", &a.to_string()], "")?;
    let list = relay.admin(&["camera", "list"], "")?;
    let names: Vec<_> = list["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["B1"]);
    let only_b = relay.admin(&["camera", "list", "--customer", &b.to_string()], "")?;
    assert_eq!(only_b["cameras"].as_array().unwrap().len(), 1);
    Ok(())
}

#[test]
fn direct_sources_on_the_relays_own_or_private_network_are_refused_unless_allowed() -> Result<()> {
    let relay = Relay::start("")?;
    let id = relay
        .customer("a@example.jp", "Alice", "east", PW)?
        .to_string();
    let add = |source: &str| {
        relay.admin_raw(
            &[
                "camera",
                "add",
                "--customer",
                &id,
                "--name",
                "Direct",
                "--model",
                "fixed",
                "--plan",
                "camera-only",
                "--source",
                source,
            ],
            "",
        )
    };
    let private = [
        "rtsp://admin:s3cret-sentinel@127.0.0.1:8554/live",
        "rtsp://[::1]/live",
        "rtsp://localhost/live",
        "rtsp://192.168.1.20/live",
        "rtsp://10.0.0.5/live",
        "rtsp://169.254.10.10/live",
    ];
    let never = [
        "rtsp://169.254.169.254/latest/meta-data",
        "rtsp://metadata.google.internal/",
        "rtsp://[fd00:ec2::254]/",
        "rtsp://0.0.0.0/live",
        "rtsp://[::ffff:169.254.169.254]/",
    ];
    for source in private.iter().chain(&never) {
        let (ok, out, stderr) = add(source)?;
        assert!(!ok, "{source} accepted: {out}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.contains("camera host"), "{source}: {error}");
        assert!(
            !error.contains("s3cret-sentinel") && !stderr.contains("s3cret-sentinel"),
            "{error} {stderr}"
        );
    }
    assert!(add("rtsp://192.0.2.9/live")?.0, "a public address refused");

    // A relay on the cameras' own network: private ranges allowed, metadata still refused.
    let text = std::fs::read_to_string(&relay.config)?;
    std::fs::write(
        &relay.config,
        format!("{text}\n[cameras]\nallow_private_sources = true\n"),
    )?;
    for source in private {
        let (ok, out, _) = add(source)?;
        assert!(ok, "{source} refused: {out}");
    }
    for source in never {
        assert!(!add(source)?.0, "{source} accepted");
    }
    let list = relay.admin(&["camera", "list"], "")?;
    assert_eq!(
        list["cameras"].as_array().map(Vec::len),
        Some(1 + private.len())
    );
    Ok(())
}

/// A household member who forgot their password: the administrator lists them with their
/// household, sets a new password after checking who they are (their sessions end, the
/// holder's history says so), removes their passkeys the same way, and can remove them as the
/// holder would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_household_members_password_is_set_and_they_are_removed_by_the_administrator()
-> Result<()> {
    let relay = Relay::start("")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let grant = serde_json::json!({ "cameras": { cam["id"].to_string(): ["watch"] } });
    let hana = relay
        .member(&alice, "hana@example.jp", "Hana", grant, PW)
        .await?;
    let listed = relay.admin(&["member", "list"], "")?;
    let member = &listed["members"][0];
    assert_eq!(member["email"], "hana@example.jp", "{listed}");
    assert_eq!(member["household"], owner, "{listed}");
    let id = member["id"].as_i64().expect("id").to_string();

    let set = relay.admin(
        &["member", "set-password", "--id", &id],
        "a brand new password\n",
    )?;
    assert_eq!(set["password_set"], true);
    let (status, _) = common::status_json(hana.get("/api/me").await?).await?;
    assert_eq!(status, 401, "her old session ended");
    let hana = relay
        .login("hana@example.jp", "a brand new password")
        .await?;
    let (_, history) = common::status_json(alice.get("/api/history").await?).await?;
    let reset = history
        .as_array()
        .expect("entries")
        .iter()
        .any(|e| e["action"] == "password.reset" && e["actor_name"] == "admin");
    assert!(reset, "in the holder's history: {history}");
    // Not a customer's command: the customer subcommands do not reach her.
    let (ok, _, _) = common::admin_raw(
        &relay.config,
        &["customer", "set-password", "--id", &id],
        "x long enough\n",
    )?;
    assert!(!ok);

    // Her passkeys, all lost: removed after the same check; her session ends again, and the
    // holder's history says so. A customer's id is not a member's.
    let reset = relay.admin(&["member", "remove-passkeys", "--id", &id], "")?;
    assert_eq!(reset["passkeys_removed"], true);
    let (status, _) = common::status_json(hana.get("/api/me").await?).await?;
    assert_eq!(status, 401, "her session ended");
    let (_, history) = common::status_json(alice.get("/api/history").await?).await?;
    assert_eq!(history[0]["action"], "passkeys.reset", "{history}");
    let (ok, _, _) = common::admin_raw(
        &relay.config,
        &["member", "remove-passkeys", "--id", &owner.to_string()],
        "",
    )?;
    assert!(!ok);

    let removed = relay.admin(&["member", "remove", "--id", &id], "")?;
    assert_eq!(removed["removed"], true);
    let (status, _) = common::status_json(hana.get("/api/me").await?).await?;
    assert_eq!(status, 401);
    let (_, household) = common::status_json(alice.get("/api/household").await?).await?;
    assert_eq!(household["members"], serde_json::json!([]));
    Ok(())
}

/// `eyeward-relay check-config --json --config CONFIG`: whether it exited 0, the one object
/// it printed, and everything it wrote.
fn check_config(config: &Path) -> Result<(bool, Value, String)> {
    let out = Command::new(bin("eyeward-relay"))
        .args(["check-config", "--json", "--config"])
        .arg(config)
        .output()?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).with_context(|| printed.clone())?;
    Ok((out.status.success(), json, printed))
}

/// The finding of `part` in what check-config printed: whether it passed, and its detail.
fn finding(found: &Value, part: &str) -> (bool, String) {
    let f = found["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["part"] == part))
        .unwrap_or_else(|| panic!("no {part} in {found}"));
    (
        f["ok"].as_bool().unwrap_or(false),
        f["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn check_config_reaches_what_the_config_names_and_changes_nothing() -> Result<()> {
    let mut smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let (ok, found, printed) = check_config(&relay.config)?;
    assert!(ok && found["ok"] == true, "{printed}");
    for part in ["config", "data_dir", "database", "storage", "mail"] {
        assert!(finding(&found, part).0, "{part}: {printed}");
    }
    assert!(
        finding(&found, "database").1.ends_with("this relay's"),
        "{printed}"
    );
    assert!(finding(&found, "mail").1.contains("answers"), "{printed}");

    // The mail server away: that part fails, the command exits 1, the rest passes.
    smtp.stop()?;
    let (ok, found, printed) = check_config(&relay.config)?;
    assert!(!ok && found["ok"] == false, "{printed}");
    assert!(!finding(&found, "mail").0, "{printed}");
    assert!(finding(&found, "database").0, "{printed}");

    // A fresh installation: nothing is made, and a password in a URL is never printed.
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("relay.toml");
    let port = common::free_port()?;
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[mail]\nsmtp_url = \"smtp://bob:s3cret-mail-pw@127.0.0.1:{port}\"\n",
            data.to_str().context("utf-8")?
        ),
    )?;
    let (ok, found, printed) = check_config(&config)?;
    assert!(!ok, "{printed}");
    assert!(
        finding(&found, "database").1.contains("no database yet"),
        "{printed}"
    );
    assert!(
        finding(&found, "data_dir")
            .1
            .contains("made at the first start"),
        "{printed}"
    );
    assert!(!finding(&found, "mail").0, "{printed}");
    assert!(!printed.contains("s3cret-mail-pw"), "{printed}");
    assert!(!data.exists(), "check-config made the data folder");

    // A config that does not read is the one finding.
    std::fs::write(&config, "data_dir = \"/tmp/x\"\nlisten_on = \"nowhere\"\n")?;
    let (ok, found, printed) = check_config(&config)?;
    assert!(!ok, "{printed}");
    assert_eq!(
        found["findings"].as_array().map(Vec::len),
        Some(1),
        "{printed}"
    );
    assert!(
        finding(&found, "config").1.contains("listen_on"),
        "{printed}"
    );
    Ok(())
}
