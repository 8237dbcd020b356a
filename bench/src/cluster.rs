//! Several relay nodes as one service, started by the cluster benchmark and the cluster demo:
//! PostgreSQL and Garage (the testkit's), one cluster secret, N `eyeward-relay` processes each
//! with its internal listener, and HAProxy in front, whose URL is every node's `public_url`.
//! [`node_config`] is the one place a node's configuration is written (the tests' cluster
//! harness uses it too).

use crate::process::{Running, spawn_until_line, target_bin};
use anyhow::{Context, Result};
use eyeward_testkit::garage::Garage;
use eyeward_testkit::haproxy::Haproxy;
use eyeward_testkit::postgres::Postgres;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a node's configuration needs besides `extra`.
pub struct NodeConfig<'a> {
    /// Its public listener (the load balancer's backend).
    pub listen: SocketAddr,
    pub data_dir: &'a Path,
    /// The load balancer's URL: the service's, in every mail and page.
    pub public_url: &'a str,
    pub database_url: &'a str,
    /// The `[storage]` section (see `eyeward_testkit::garage::Place::config`).
    pub storage: &'a str,
    pub secret_file: &'a Path,
}

/// A node's configuration file's text; `extra` goes after `public_url`, so top-level keys
/// come before any section of its own.
pub fn node_config(c: &NodeConfig<'_>, extra: &str) -> String {
    format!(
        "listen = \"{}\"\ndata_dir = {:?}\npublic_url = \"{}\"\n{extra}\n\
         [database]\nurl = {:?}\ntls = \"disable\"\npool_size = 8\n{}\n\
         [cluster]\nlisten = \"127.0.0.1:0\"\nsecret_file = {:?}\n",
        c.listen, c.data_dir, c.public_url, c.database_url, c.storage, c.secret_file
    )
}

/// Writes the cluster's shared secret into `dir`; returns its file.
pub fn write_secret(dir: &Path) -> Result<PathBuf> {
    use std::io::Read;
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let file = dir.join("cluster.secret");
    std::fs::write(
        &file,
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    )?;
    Ok(file)
}

/// One running node.
pub struct Node {
    pub name: String,
    pub config: PathBuf,
    pub base: String,
    pub process: Option<Running>,
    pub log: PathBuf,
}

impl Node {
    /// Starts (or starts again) the node's release relay.
    pub fn start(&mut self, log_level: &str) -> Result<()> {
        let mut cmd = Command::new(target_bin("eyeward-relay")?);
        cmd.args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", log_level)
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)?,
            );
        let (process, _) = spawn_until_line(cmd, "eyeward-relay listening on ")?;
        self.process = Some(process);
        Ok(())
    }
}

/// The servers and the nodes; all stop when dropped.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub lb: Haproxy,
    /// The nodes' database.
    pub database: String,
    _postgres: Postgres,
    _garage: Garage,
}

impl Cluster {
    /// Starts PostgreSQL, Garage, nodes named `names` (their folders, configs and logs in
    /// `dir`; `extra` in each config; `log_level` as `RUST_LOG`) and HAProxy in front.
    pub fn start(dir: &Path, names: &[&str], extra: &str, log_level: &str) -> Result<Cluster> {
        let postgres = Postgres::start()?;
        let garage = Garage::start()?;
        let database = postgres.database()?;
        let place = garage.place();
        let secret = write_secret(dir)?;
        let lb_port = eyeward_testkit::free_port()?;
        let public_url = format!("http://127.0.0.1:{lb_port}");
        let mut nodes = Vec::new();
        let mut backends = Vec::new();
        for name in names {
            let home = dir.join(name);
            std::fs::create_dir_all(&home)?;
            let listen = SocketAddr::from(([127, 0, 0, 1], eyeward_testkit::free_port()?));
            let data_dir = home.join("data");
            let config = node_config(
                &NodeConfig {
                    listen,
                    data_dir: &data_dir,
                    public_url: &public_url,
                    database_url: &database,
                    storage: &place.config(&home)?,
                    secret_file: &secret,
                },
                extra,
            );
            let config_file = home.join("relay.toml");
            std::fs::write(&config_file, config)?;
            let mut node = Node {
                name: (*name).to_owned(),
                config: config_file,
                base: format!("http://{listen}"),
                process: None,
                log: home.join("relay.log"),
            };
            node.start(log_level)
                .with_context(|| format!("starting node {name}"))?;
            nodes.push(node);
            backends.push(((*name).to_owned(), listen));
        }
        let named: Vec<(&str, SocketAddr)> =
            backends.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        let lb = Haproxy::start(lb_port, &named)?;
        Ok(Cluster {
            nodes,
            lb,
            database,
            _postgres: postgres,
            _garage: garage,
        })
    }

    /// The node named `name`.
    pub fn node(&mut self, name: &str) -> Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }
}
