//! The relay serving HTTPS itself: browsers get HSTS and Secure cookies, a renewed certificate is
//! taken on SIGHUP (a broken one is not), and the agent checks the relay's certificate against
//! the public roots and the CA it is given, never accepting any. Behind a proxy, the client
//! address comes from `X-Forwarded-For` only when the proxy is trusted.

mod common;

use anyhow::{Context, Result};
use common::{Client, Relay, status_json, wait_online};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// A private certificate authority, as a company running its own relay would have.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Ok(Ca {
            cert: params.self_signed(&key)?,
            key,
        })
    }

    /// A server certificate for 127.0.0.1, written as `<stem>.pem` and `<stem>.key` in `dir`;
    /// returns its DER.
    fn issue(&self, dir: &Path, stem: &str) -> Result<Vec<u8>> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem())?;
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem())?;
        Ok(cert.der().to_vec())
    }

    fn write(&self, path: &Path) -> Result<PathBuf> {
        std::fs::write(path, self.cert.pem())?;
        Ok(path.to_owned())
    }
}

/// A browser-like client of `relay` that trusts `ca`.
fn client(relay: &Relay, ca: &Path) -> Result<Client> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .tls_info(true)
        .build()?;
    Ok(Client {
        http,
        base: relay.base.clone(),
    })
}

/// The certificate a new connection to `client`'s relay is served.
async fn served_certificate(client: &Client) -> Result<Vec<u8>> {
    let resp = client.get("/healthz").await?;
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec)
        .context("no peer certificate")
}

#[tokio::test]
async fn the_relay_serves_https_with_hsts_and_takes_a_renewed_certificate_on_sighup() -> Result<()>
{
    let certs = tempfile::tempdir()?;
    let ca = Ca::new("eyeward test CA")?;
    let ca_file = ca.write(&certs.path().join("ca.pem"))?;
    let first = ca.issue(certs.path(), "relay")?;
    let (cert_file, key_file) = (
        certs.path().join("relay.pem"),
        certs.path().join("relay.key"),
    );
    let relay = Relay::start(&format!(
        "[tls]\ncert_file = {cert_file:?}\nkey_file = {key_file:?}\n"
    ))?;
    assert!(
        relay.base.starts_with("https://127.0.0.1:"),
        "{}",
        relay.base
    );
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;

    // Browsers: HSTS on every answer, the session cookie only over https.
    let alice = client(&relay, &ca_file)?;
    let resp = alice.get("/healthz").await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let resp = alice
        .post(
            "/api/login",
            &json!({"email": "a@example.jp", "password": PW}),
        )
        .await?;
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str()?.to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Over https the session cookie is a __Host- cookie, and only that name is read.
    assert!(cookie.starts_with("__Host-eyeward_session="), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let fresh = client(&relay, &ca_file)?
        .http
        .get(relay.url("/api/me"))
        .header("cookie", format!("eyeward_session={token}"))
        .send()
        .await?;
    assert_eq!(
        fresh.status(),
        401,
        "the unprefixed name was taken over https"
    );
    let (status, me) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(status, 200, "{me}");
    assert_eq!(served_certificate(&alice).await?, first);

    // Plain HTTP on the TLS port gets nothing, and a client that does not know the CA refuses.
    let plain = relay.base.replacen("https://", "http://", 1);
    assert!(
        reqwest::get(format!("{plain}/healthz")).await.is_err(),
        "plain HTTP answered on the TLS port"
    );
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()?;
    assert!(
        stranger.get(relay.url("/healthz")).send().await.is_err(),
        "a client that does not trust the CA connected"
    );

    // Renewed: new connections get the new certificate, the session goes on.
    let second = ca.issue(certs.path(), "relay")?;
    assert_ne!(first, second);
    relay.process.kill_only(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_certificate(&client(&relay, &ca_file)?).await? != second {
        anyhow::ensure!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken pair is refused on SIGHUP: the one in use stays.
    std::fs::write(&key_file, "not a key")?;
    relay.process.kill_only(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !relay.log().contains("certificate not reloaded") {
        anyhow::ensure!(Instant::now() < deadline, "no word of the broken key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served_certificate(&client(&relay, &ca_file)?).await?,
        second
    );
    let (status, _) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(status, 200);

    // The agent: with the CA it links up; without it, it refuses the relay and says why.
    ca.issue(certs.path(), "relay")?;
    relay.process.kill_only(libc::SIGHUP);
    let cam = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let (cam_id, token) = (
        cam["id"].as_i64().context("id")?,
        cam["agent_token"].as_str().context("token")?,
    );
    let untrusting = relay.start_agent(token, "sim://fixed", "untrusting")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_online(&alice, cam_id, false, Duration::ZERO)
        .await
        .with_context(|| untrusting.log())?;
    let log = untrusting.log();
    assert!(log.contains("UnknownIssuer"), "{log}");
    drop(untrusting);
    let ca_arg = ca_file.to_str().context("utf-8")?;
    let agent = common::start_agent_with(
        &relay.base,
        relay.dir.path(),
        token,
        "sim://fixed",
        "trusting",
        &["--relay-ca", ca_arg],
    )?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10))
        .await
        .with_context(|| agent.log())?;
    Ok(())
}

#[tokio::test]
async fn a_relay_with_a_bad_certificate_does_not_start() -> Result<()> {
    let certs = tempfile::tempdir()?;
    let missing = certs.path().join("missing.pem");
    let err = Relay::start(&format!(
        "[tls]\ncert_file = {missing:?}\nkey_file = {missing:?}\n"
    ))
    .err()
    .context("started without a certificate")?;
    assert!(format!("{err:#}").contains("tls.cert_file"), "{err:#}");
    let ca = Ca::new("eyeward test CA")?;
    ca.issue(certs.path(), "relay")?;
    let (cert, key) = (
        certs.path().join("relay.pem"),
        certs.path().join("relay.key"),
    );
    let err = Relay::start(&format!(
        "public_url = \"http://cam.example.jp\"\n[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n"
    ))
    .err()
    .context("started with an http public_url")?;
    assert!(format!("{err:#}").contains("must be https://"), "{err:#}");
    Ok(())
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() -> Result<()> {
    // `/metrics` answers loopback clients only: a good witness of whom the relay sees.
    let metrics = |relay: &Relay, forwarded: Option<&'static str>| {
        let mut req = relay.client().request(reqwest::Method::GET, "/metrics");
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        async move { Ok::<_, anyhow::Error>(req.send().await?.status().as_u16()) }
    };
    // No proxy trusted: the header is anyone's word and counts for nothing.
    let direct = Relay::start("")?;
    assert_eq!(metrics(&direct, None).await?, 200);
    assert_eq!(metrics(&direct, Some("203.0.113.7")).await?, 200);

    let proxied = Relay::start("[http]\ntrusted_proxies = [\"127.0.0.1\", \"::1/128\"]\n")?;
    assert_eq!(metrics(&proxied, None).await?, 200);
    // The proxy says the client is outside.
    assert_eq!(metrics(&proxied, Some("203.0.113.7")).await?, 401);
    // A client cannot pass for loopback by writing it first: the proxy appended its address.
    assert_eq!(
        metrics(&proxied, Some("127.0.0.1, 203.0.113.7")).await?,
        401
    );
    // Through two trusted proxies: still the outside client.
    assert_eq!(
        metrics(&proxied, Some("203.0.113.7, 127.0.0.1")).await?,
        401
    );
    // Only trusted hops: the client is one of them.
    assert_eq!(metrics(&proxied, Some("127.0.0.1")).await?, 200);
    Ok(())
}
