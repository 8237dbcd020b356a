//! S3-compatible object storage for tests: Garage (a self-hosted S3 store in Rust that
//! people run in production), installed by `scripts/setup.sh test` from the crate registry
//! into the tools cache, as a single node on free loopback ports with one bucket and key.
//!
//! A test that stops the store starts its own ([`Garage::start`]); the others share one per
//! test process ([`Garage::shared`]), each under a prefix of its own ([`Garage::place`]).

use super::{Server, free_port, stops_with_parent};
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The version `scripts/setup.sh` installs.
pub const VERSION: &str = "2.5.0";

/// Where `scripts/setup.sh` installs Garage: `$EYEWARD_TOOLS` (default
/// `~/.cache/eyeward/tools`), outside `target/` so that a clean build keeps it.
pub fn binary() -> Result<PathBuf> {
    let tools = match std::env::var_os("EYEWARD_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("HOME").context("HOME")?).join(".cache/eyeward/tools"),
    };
    let garage = tools.join(format!("garage-{VERSION}/bin/garage"));
    if !garage.exists() {
        bail!(
            "{} is missing: scripts/setup.sh test installs it",
            garage.display()
        );
    }
    Ok(garage)
}

/// The bucket every test uses.
pub const BUCKET: &str = "eyeward";
/// The region Garage answers for.
pub const REGION: &str = "garage";

/// A running single-node Garage with [`BUCKET`] and one key that may use it.
pub struct Garage {
    server: Mutex<Option<Server>>,
    config: PathBuf,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    /// Removed when the store is dropped; the shared store's is kept, like PostgreSQL's.
    dir: Option<tempfile::TempDir>,
    shared: bool,
}

/// Where one test keeps its objects: the store, its bucket and a prefix of its own.
#[derive(Debug, Clone)]
pub struct Place {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub prefix: String,
    /// The relay's `timeout` for the store, as in its config (`"2s"`); its default if none.
    pub timeout: Option<String>,
}

impl Place {
    /// The relay's `[storage]` section for this place; the keys go to files in `dir`.
    pub fn config(&self, dir: &Path) -> Result<String> {
        let access = dir.join("s3-access-key");
        let secret = dir.join("s3-secret-key");
        std::fs::write(&access, &self.access_key)?;
        std::fs::write(&secret, &self.secret_key)?;
        let timeout = self
            .timeout
            .as_ref()
            .map_or(String::new(), |t| format!(", timeout = {t:?}"));
        Ok(format!(
            "[storage]\ns3 = {{ endpoint = {:?}, bucket = {BUCKET:?}, region = {REGION:?}, \
             access_key_file = {access:?}, secret_key_file = {secret:?}, prefix = {:?}{timeout} }}\n",
            self.endpoint, self.prefix
        ))
    }
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> Result<String> {
    let mut raw = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// The prefix of the shared stores' folders, followed by the owning process's id.
const SHARED_PREFIX: &str = "eyeward-garage-shared-";

impl Garage {
    /// Starts a store of its own with Garage's default settings (no fsync: a cluster's
    /// copies on other nodes keep the data); stopped, and its folder removed, when dropped.
    pub fn start() -> Result<Garage> {
        let dir = tempfile::Builder::new()
            .prefix("eyeward-garage-")
            .tempdir()?;
        Garage::start_in(dir, false, false)
    }

    /// [`Garage::start`] with data and metadata fsynced before a `PUT` is answered: durable on
    /// its own, as a single node must be.
    pub fn start_durable() -> Result<Garage> {
        let dir = tempfile::Builder::new()
            .prefix("eyeward-garage-")
            .tempdir()?;
        Garage::start_in(dir, false, true)
    }

    /// The store this test process shares, started by the first test that asks. It stops
    /// when the process ends.
    pub fn shared() -> &'static Garage {
        static SHARED: OnceLock<Garage> = OnceLock::new();
        super::shared(&SHARED, SHARED_PREFIX, |dir| {
            Garage::start_in(dir, true, false)
        })
    }

    fn start_in(dir: tempfile::TempDir, shared: bool, fsync: bool) -> Result<Garage> {
        let (s3, rpc) = (free_port()?, free_port()?);
        let root = dir.path();
        let config = root.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"lmdb\"\n\
                 replication_factor = 1\n\
                 metadata_fsync = {fsync}\ndata_fsync = {fsync}\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = {REGION:?}\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n",
                meta = root.join("meta"),
                data = root.join("data"),
                secret = random_hex(32)?,
            ),
        )?;
        let mut garage = Garage {
            server: Mutex::new(None),
            config,
            port: s3,
            access_key: format!("GK{}", random_hex(12)?),
            secret_key: random_hex(32)?,
            dir: None,
            shared,
        };
        garage.spawn()?;
        garage.dir = if shared {
            // Kept: the process ends before the server has stopped (see `sweep_shared`).
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        Ok(garage)
    }

    /// Where a test keeps its objects: under a prefix no other test of the process uses.
    pub fn place(&self) -> Place {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Place {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            prefix: format!(
                "test-{}-{}/",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            timeout: None,
        }
    }

    /// Stops the store (as a crash would: SIGKILL); [`Garage::resume`] starts it again with
    /// the same data.
    pub fn stop(&self) {
        assert!(
            !self.shared,
            "the shared Garage stays up: start one of your own to stop it"
        );
        if let Some(mut server) = self.lock().take() {
            server.stop(libc::SIGKILL);
        }
    }

    /// Starts the store again on its port and data; returns once it serves S3.
    pub fn resume(&self) -> Result<()> {
        if self.shared {
            bail!("the shared Garage stays up: start one of your own to stop it");
        }
        self.spawn()
    }

    fn spawn(&self) -> Result<()> {
        let mut server = self.lock();
        if server.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new(binary()?);
        cmd.arg("-c")
            .arg(&self.config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", BUCKET)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "garage=info");
        if self.shared {
            stops_with_parent(&mut cmd, libc::SIGTERM);
        }
        let log = self.config.with_file_name("garage.log");
        let mut started = Server::spawn(cmd, &log)?;
        started
            .wait_for("S3 API server listening on")
            .context("Garage did not start")?;
        self.wait_answering()?;
        *server = Some(started);
        Ok(())
    }

    /// Waits until the S3 port answers a request: Garage says it listens a moment before it
    /// serves (a relay started at once had its first listing reset, once in a whole run).
    fn wait_answering(&self) -> Result<()> {
        use std::io::Write;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let answered =
                std::net::TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut c| {
                    c.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                    c.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
                    let mut head = [0; 8];
                    c.read_exact(&mut head)?;
                    Ok(head.starts_with(b"HTTP/1."))
                });
            if answered.unwrap_or(false) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("Garage listens on {} but does not answer", self.port);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The store's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_file_name("garage.log")).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(mut server) = self.lock().take() {
            server.stop(libc::SIGTERM);
        }
        drop(self.dir.take());
    }
}
