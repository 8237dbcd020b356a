//! The tests' TURN server: Debian's coturn on loopback, checking time-limited credentials
//! (`use-auth-secret`, the TURN REST API scheme) against a secret shared with the relay.

use super::{Process, free_port};
use anyhow::{Context, Result, bail};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::turn::client::{Client, ClientConfig};

/// A coturn on `127.0.0.1:port` (UDP and TCP), stopped when dropped.
pub struct Coturn {
    pub process: Process,
    pub port: u16,
    /// coturn's log, its database and its TLS keys.
    dir: tempfile::TempDir,
}

/// The address [`Coturn::start_tls`] relays from.
pub const RELAY_ADDRESS: &str = "127.0.0.2";

impl Coturn {
    /// Starts coturn with `secret`; returns once it answers a STUN binding request.
    pub async fn start(secret: &str) -> Result<Coturn> {
        let extra = ["--no-tls", "--relay-ip=127.0.0.1"].map(String::from);
        Coturn::start_with(secret, tempfile::tempdir()?, &extra).await
    }

    /// Starts coturn with `secret` and TURN over TLS on `127.0.0.1:tls_port` too, with a
    /// self-signed certificate made now; relays from [`RELAY_ADDRESS`], so that a test's
    /// firewall can tell its traffic from a browser's.
    pub async fn start_tls(secret: &str, tls_port: u16) -> Result<Coturn> {
        let dir = tempfile::tempdir()?;
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=turn.eyeward.test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .context("running openssl")?;
        if !made.status.success() {
            bail!("openssl: {}", String::from_utf8_lossy(&made.stderr));
        }
        Coturn::start_with(
            secret,
            dir,
            &[
                format!("--tls-listening-port={tls_port}"),
                format!("--cert={}", cert.display()),
                format!("--pkey={}", key.display()),
                format!("--relay-ip={RELAY_ADDRESS}"),
            ],
        )
        .await
    }

    async fn start_with(secret: &str, dir: tempfile::TempDir, extra: &[String]) -> Result<Coturn> {
        let port = free_port()?;
        let mut cmd = Command::new("turnserver");
        cmd.arg("-n") // no configuration file: only these options
            .arg("--listening-ip=127.0.0.1")
            .arg(format!("--listening-port={port}"))
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={secret}"))
            .args(["--realm=eyeward.test", "--no-dtls", "--no-cli"])
            .args(extra)
            // The relay's media addresses are loopback in the tests.
            .arg("--allow-loopback-peers")
            .arg(format!(
                "--log-file={}",
                dir.path().join("coturn.log").display()
            ))
            .args(["--simple-log", "--verbose"])
            .arg(format!("--pidfile={}", dir.path().join("pid").display()))
            .arg(format!("--db={}", dir.path().join("turndb").display()));
        let process = Process::spawn(cmd, None, dir.path().join("coturn.stderr"))?;
        let coturn = Coturn { process, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let client = coturn.client("", "").await?;
            let answered =
                tokio::time::timeout(Duration::from_secs(1), client.send_binding_request()).await;
            let _ = client.close().await;
            if matches!(answered, Ok(Ok(_))) {
                return Ok(coturn);
            }
            if Instant::now() > deadline {
                bail!("coturn did not answer; its log:\n{}", coturn.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// coturn's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("coturn.log")).unwrap_or_default()
    }

    /// A TURN client (webrtc-rs) of this server with `username` and `password`, listening.
    pub async fn client(&self, username: &str, password: &str) -> Result<Client> {
        let conn = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await?);
        let server = format!("127.0.0.1:{}", self.port);
        let client = Client::new(ClientConfig {
            stun_serv_addr: server.clone(),
            turn_serv_addr: server,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            conn,
            vnet: None,
        })
        .await
        .context("TURN client")?;
        client.listen().await.context("TURN client listen")?;
        Ok(client)
    }

    /// Whether coturn grants `username`/`password` a relayed address (a TURN Allocate).
    pub async fn allocates(&self, username: &str, password: &str) -> Result<bool> {
        let client = self.client(username, password).await?;
        let granted = tokio::time::timeout(Duration::from_secs(10), client.allocate())
            .await
            .context("TURN Allocate timed out")?
            .is_ok();
        client.close().await?;
        Ok(granted)
    }
}
