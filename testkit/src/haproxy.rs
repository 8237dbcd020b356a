//! HAProxy for tests: Debian's `haproxy` as the load balancer in front of several relay
//! nodes, on a free loopback port, with the settings a real deployment needs: health checks on
//! `/healthz` (a draining node answers 503 and gets nothing new), WebSocket and event streams
//! kept open and forwarded at once (`http-no-delay`: without it, HAProxy holds a stream's
//! small writes about 200 ms, waiting for more), and a cookie (`eyeward_node`) that pins a browser to one node when a test wants
//! it there (what sticky sessions do; without it, requests go round the nodes).

use super::{Server, stops_with_parent};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::process::Command;

/// The cookie that pins a client to a node: its value is the node's name.
pub const NODE_COOKIE: &str = "eyeward_node";

/// A running HAProxy; stopped when dropped.
pub struct Haproxy {
    server: Server,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Balances `http://127.0.0.1:<port>/` over `nodes` (name, public address). Start it once
    /// the nodes listen: a node found down by the first check gets nothing until a later one.
    pub fn start(port: u16, nodes: &[(&str, SocketAddr)]) -> Result<Haproxy> {
        let dir = tempfile::Builder::new()
            .prefix("eyeward-haproxy-")
            .tempdir()?;
        let servers: String = nodes
            .iter()
            .map(|(name, addr)| {
                format!("    server {name} {addr} cookie {name} check inter 500ms fall 2 rise 1\n")
            })
            .collect();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n    maxconn 4096\n\
                 defaults\n    mode http\n    timeout connect 2s\n    timeout client 1h\n\
                 \x20   timeout server 1h\n    timeout tunnel 1h\n    option redispatch\n\
                 \x20   retries 2\n    option http-no-delay\n\
                 frontend public\n    bind 127.0.0.1:{port}\n    default_backend relays\n\
                 backend relays\n    balance roundrobin\n    option httpchk GET /healthz\n\
                 \x20   cookie {NODE_COOKIE} insert indirect nocache\n{servers}"
            ),
        )?;
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&config);
        stops_with_parent(&mut cmd, libc::SIGTERM);
        let mut server = Server::spawn(cmd, &dir.path().join("haproxy.log"))
            .context("starting haproxy (scripts/setup.sh test installs it)")?;
        // HAProxy says nothing when it is ready: wait for its port.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("haproxy exited ({status}):\n{}", server.log());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "haproxy not listening after 10 s:\n{}",
                server.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Haproxy {
            server,
            port,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.server.stop(libc::SIGTERM);
    }
}
