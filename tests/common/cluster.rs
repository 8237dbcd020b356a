//! Several relay nodes as one service, for the cluster tests: one PostgreSQL database, one
//! S3 place (Garage), one cluster secret, N `eyeward-relay` processes each with its internal
//! listener (configured as `eyeward_bench::cluster::node_config` writes it), and HAProxy in
//! front, whose URL is every node's `public_url`.

use super::{Client, Relay, Site, free_port};
use anyhow::{Context, Result};
use eyeward_bench::cluster::{NodeConfig, node_config, write_secret};
use eyeward_testkit::haproxy::{Haproxy, NODE_COOKIE};
use std::sync::Arc;

/// The nodes and their load balancer; stopped when dropped.
pub struct Nodes {
    pub nodes: Vec<(String, Relay)>,
    pub lb: Haproxy,
    /// The folder with the cluster's secret.
    _shared: tempfile::TempDir,
}

impl Nodes {
    /// Starts nodes named `names` behind HAProxy; `extra` goes into each node's config (after
    /// `public_url`, so top-level keys come before any section of its own).
    pub fn start(names: &[&str], extra: &str) -> Result<Nodes> {
        let shared = tempfile::tempdir()?;
        let secret = write_secret(shared.path())?;
        let database = eyeward_testkit::postgres::Postgres::shared().database()?;
        let place = eyeward_testkit::garage::Garage::shared().place();
        let ports: Vec<u16> = names.iter().map(|_| free_port()).collect::<Result<_>>()?;
        let addrs: Vec<(&str, std::net::SocketAddr)> = names
            .iter()
            .zip(&ports)
            .map(|(n, p)| (*n, std::net::SocketAddr::from(([127, 0, 0, 1], *p))))
            .collect();
        let lb_port = free_port()?;
        let lb_base = format!("http://127.0.0.1:{lb_port}");
        let mut nodes = Vec::new();
        for (name, listen) in &addrs {
            // The store's keys, in files beside the secret.
            let keys = shared.path().join(name);
            std::fs::create_dir(&keys)?;
            let dir = tempfile::tempdir()?;
            let config = dir.path().join("relay.toml");
            let data_dir = dir.path().join("data");
            let text = node_config(
                &NodeConfig {
                    listen: *listen,
                    data_dir: &data_dir,
                    public_url: &lb_base,
                    database_url: &database,
                    storage: &place.config(&keys)?,
                    secret_file: &secret,
                },
                extra,
            );
            std::fs::write(&config, text)?;
            let site = Site {
                dir,
                config,
                base: String::new(),
                database: Some(database.clone()),
            };
            nodes.push((name.to_string(), Relay::run(site)?));
        }
        let lb = Haproxy::start(lb_port, &addrs)?;
        Ok(Nodes {
            nodes,
            lb,
            _shared: shared,
        })
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> &Relay {
        &self
            .nodes
            .iter()
            .find(|(n, _)| n == name)
            .expect("a node")
            .1
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Relay {
        &mut self
            .nodes
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("a node")
            .1
    }

    /// A browser-like client of the load balancer pinned to node `name` (HAProxy's cookie),
    /// logged in as `email`.
    pub async fn login_on(&self, name: &str, email: &str, password: &str) -> Result<Client> {
        let client = self.client_on(name)?;
        let resp = client
            .post(
                "/api/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await?;
        anyhow::ensure!(resp.status() == 200, "login on {name}: {}", resp.status());
        Ok(client)
    }

    /// A client of the load balancer pinned to node `name`, not logged in.
    pub fn client_on(&self, name: &str) -> Result<Client> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let base = self.lb.base();
        jar.add_cookie_str(&format!("{NODE_COOKIE}={name}"), &base.parse()?);
        Ok(Client {
            http: reqwest::Client::builder()
                .cookie_provider(jar)
                .build()
                .context("http client")?,
            base,
        })
    }

    /// Every node's log, for a failure's message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|(n, r)| format!("\n--- node {n} ---\n{}", r.log()))
            .chain([format!("\n--- haproxy ---\n{}", self.lb.log())])
            .collect()
    }

    /// The internal address node `name` joined the cluster with (from its log).
    pub fn internal_url(&self, name: &str) -> Result<String> {
        let log = self.node(name).log();
        let line = log
            .lines()
            .find(|l| l.contains("joined the cluster"))
            .context("no join in the log")?;
        let at = line.find("internal_url=").context("internal_url")? + "internal_url=".len();
        Ok(line[at..]
            .split_whitespace()
            .next()
            .context("internal_url")?
            .to_owned())
    }
}
