//! The tests' PostgreSQL: Debian's `postgresql` server, a private cluster made with `initdb`
//! in a temporary folder for each test, on a free loopback port (and a Unix socket in that
//! folder). The server refuses to run as root, so under root the cluster belongs to the
//! `postgres` system user the package creates. Stopped, and its folder removed, when dropped.

use super::{Process, free_port};
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running cluster; its superuser is `postgres`, who may log in without a password from
/// loopback.
pub struct Postgres {
    pub process: Process,
    pub port: u16,
    _dir: tempfile::TempDir,
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

impl Postgres {
    /// Makes a cluster and starts it; returns once it takes connections.
    pub fn start() -> Result<Postgres> {
        let bin = server_bin()?;
        let user = server_user()?;
        // Its own folder, made over to the server's user (a folder of root's, mode 0700,
        // would shut it out).
        let dir = tempfile::Builder::new().prefix("eyeward-pg-").tempdir()?;
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
        let port = free_port()?;
        let mut cmd = command(&bin, "postgres", user);
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"]);
        let log = dir.path().join("server.log");
        let process = Process::spawn(cmd, None, log.clone())?;
        let pg = Postgres {
            process,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ready to accept connections")
        {
            if Instant::now() > deadline {
                bail!("PostgreSQL did not start:\n{}", pg.process.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(pg)
    }

    /// The URL of `database` on this cluster, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (open sessions are ended). Its folder goes after,
        // with the field.
        let _ = self.process.signal(libc::SIGINT);
    }
}
