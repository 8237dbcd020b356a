//! Passkeys in a real browser, the way people use them: Chromium with a virtual authenticator
//! (the DevTools protocol's WebAuthn domain) on a relay whose public URL is
//! `http://localhost:PORT` (browsers give passkeys to a domain name, never to an IP address).
//! A customer registers a passkey from the Passkeys card, signs in with it alone, removes it,
//! and is refused with it; an operator without a passkey cannot open the console until he has
//! registered one, a password alone is held at the gate until his passkey answers, and after
//! the administrator's reset his passkey is refused. See `tests/browser/passkeys.mjs`;
//! screenshots go to `target/test-output/browser_passkeys/`.

mod common;

use anyhow::Result;
use common::{Relay, bin, free_port};

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_sign_in_are_refused_once_removed_and_gate_the_console() -> Result<()> {
    common::browser_scripts()?;
    let port = free_port()?;
    let local = format!("http://localhost:{port}");
    let relay = Relay::start_on(
        &format!("127.0.0.1:{port}"),
        &format!("public_url = \"{local}\"\n"),
    )?;
    relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let oscar = relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let vars = |step: &str| {
        vec![
            ("STEP", step.to_owned()),
            ("BASE_URL", local.clone()),
            ("CUSTOMER", "a@example.jp".to_owned()),
            ("OPERATOR", "op@example.jp".to_owned()),
            ("OPERATOR_ID", oscar.to_string()),
            ("PASSWORD", PW.to_owned()),
            ("RELAY_BIN", bin("eyeward-relay").display().to_string()),
            ("RELAY_CONFIG", relay.config.display().to_string()),
        ]
    };
    common::run_browser_script("passkeys", &relay, &vars("customer"), &[]).await?;
    common::run_browser_script("passkeys", &relay, &vars("operator"), &[]).await?;

    Ok(())
}
