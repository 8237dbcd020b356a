//! PostgreSQL for tests: Debian's `postgresql` server, a private cluster made with `initdb`
//! in a temporary folder, on a free loopback port (and a Unix socket in that folder). The
//! server refuses to run as root, so under root the cluster belongs to the `postgres` system
//! user the package creates.
//!
//! A test that stops or breaks the server starts its own ([`Postgres::start`]); the others
//! share one per test process ([`Postgres::shared`]), each in a database of its own
//! ([`Postgres::database`]), since making a cluster costs a second and a database a tenth.

use super::{Server, free_port, stops_with_parent};
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A running cluster; its superuser is `postgres`, who may log in without a password from
/// loopback.
pub struct Postgres {
    server: Mutex<Server>,
    bin: PathBuf,
    data: PathBuf,
    user: Option<(u32, u32)>,
    pub port: u16,
    /// Removed when the cluster is dropped; the shared cluster's is kept (see
    /// `sweep_shared`).
    dir: Option<tempfile::TempDir>,
}

/// The newest installed server's programs (`/usr/lib/postgresql/<version>/bin`).
fn server_bin() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (scripts/setup.sh test installs it)")?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server in /usr/lib/postgresql")
}

/// Whom the server runs as: `postgres` when we are root, else ourselves.
fn server_user() -> Result<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres")?;
    // SAFETY: getpwnam reads the passwd database; the record is copied out at once, before
    // any other call could reuse its static storage.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("no postgres user: is Debian's postgresql package installed?");
    }
    // SAFETY: non-null, as checked.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

/// `program` from the server's folder, run as the server's user.
fn command(bin: &Path, program: &str, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin.join(program));
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// The prefix of the shared clusters' folders, followed by the owning process's id.
const SHARED_PREFIX: &str = "eyeward-pg-shared-";

impl Postgres {
    /// Makes a cluster and starts it; returns once it takes connections. Stopped, and its
    /// folder removed, when dropped.
    pub fn start() -> Result<Postgres> {
        Postgres::start_in(
            tempfile::Builder::new().prefix("eyeward-pg-").tempdir()?,
            false,
            None,
        )
    }

    /// [`Postgres::start`] with TLS on: the server presents `certificate` (PEM chain) with
    /// `key` (PEM), and takes plain connections too.
    pub fn start_with_tls(certificate: &str, key: &str) -> Result<Postgres> {
        Postgres::start_in(
            tempfile::Builder::new().prefix("eyeward-pg-").tempdir()?,
            false,
            Some((certificate, key)),
        )
    }

    /// The cluster this test process shares, started by the first test that asks. It stops
    /// when the process ends.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        super::shared(&SHARED, SHARED_PREFIX, |dir| {
            Postgres::start_in(dir, true, None)
        })
    }

    fn start_in(
        dir: tempfile::TempDir,
        shared: bool,
        tls: Option<(&str, &str)>,
    ) -> Result<Postgres> {
        let bin = server_bin()?;
        let user = server_user()?;
        // Made over to the server's user (a folder of root's, mode 0700, would shut it out).
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let init = command(&bin, "initdb", user)
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync"])
            .output()
            .context("initdb")?;
        if !init.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        if let Some((certificate, key)) = tls {
            use std::io::Write;
            use std::os::unix::fs::PermissionsExt;
            for (name, pem) in [("server.crt", certificate), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem)?;
                // The server refuses a key others may read.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                if let Some((uid, gid)) = user {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
                }
            }
            std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))?
                .write_all(
                    b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
                )?;
        }
        let port = free_port()?;
        let server = Postgres::spawn_server(&bin, &data, dir.path(), user, port, shared)?;
        Ok(Postgres {
            server: Mutex::new(server),
            bin,
            data,
            user,
            port,
            dir: if shared {
                // Kept: the process ends before the server has stopped (see `sweep_shared`).
                let _ = dir.keep();
                None
            } else {
                Some(dir)
            },
        })
    }

    fn spawn_server(
        bin: &Path,
        data: &Path,
        dir: &Path,
        user: Option<(u32, u32)>,
        port: u16,
        shared: bool,
    ) -> Result<Server> {
        let mut cmd = command(bin, "postgres", user);
        cmd.arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Every test of a process may hold a relay's pool open at once.
            .args(["-c", "max_connections=400"]);
        if shared {
            // SIGINT: PostgreSQL's fast shutdown.
            stops_with_parent(&mut cmd, libc::SIGINT);
        }
        let log = dir.join(format!("server-{}.log", std::process::id()));
        let mut server = Server::spawn(cmd, &log)?;
        server
            .wait_for("ready to accept connections")
            .context("PostgreSQL did not start")?;
        Ok(server)
    }

    /// The URL of `database` on this cluster, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database of its own for a test; returns its URL.
    pub fn database(&self) -> Result<String> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let made = command(&self.bin, "createdb", None)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", &name])
            .output()
            .context("createdb")?;
        if !made.status.success() {
            bail!("createdb failed: {}", String::from_utf8_lossy(&made.stderr));
        }
        Ok(self.url(&name))
    }

    /// Everything `url`'s database holds, as `pg_dump` writes it.
    pub fn dump(&self, url: &str) -> Result<Vec<u8>> {
        let dump = command(&self.bin, "pg_dump", None)
            .arg(url)
            .output()
            .context("pg_dump")?;
        if !dump.status.success() {
            bail!("pg_dump failed: {}", String::from_utf8_lossy(&dump.stderr));
        }
        Ok(dump.stdout)
    }

    /// Stops the server (a fast shutdown: open sessions end); [`Postgres::resume`] starts it
    /// again.
    pub fn stop(&self) -> Result<()> {
        if self.dir.is_none() {
            bail!("the shared PostgreSQL stays up: start one of your own to stop it");
        }
        self.server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop(libc::SIGINT);
        Ok(())
    }

    /// Starts the stopped server again on the same port and data; returns once it takes
    /// connections.
    pub fn resume(&self) -> Result<()> {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.data.parent().context("the cluster's folder")?;
        *server = Postgres::spawn_server(&self.bin, &self.data, dir, self.user, self.port, false)?;
        Ok(())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).log()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let server = self.server.get_mut().unwrap_or_else(|p| p.into_inner());
        server.stop(libc::SIGINT);
        drop(self.dir.take());
    }
}
