//! The real servers eyeward's tests start for themselves, shared by the relay's own tests and
//! the black-box suites: a private PostgreSQL cluster from Debian's `postgresql` package, and
//! Garage for S3-compatible object storage. Each binds to loopback on free ports and stops
//! with its test, or with the test process. Also a home's uplink between an agent and its
//! relay that counts, slows and cuts (`uplink`), and a Web Push service on loopback that
//! checks and decrypts what the relay pushes (`push`).

pub mod garage;
pub mod haproxy;
pub mod postgres;
pub mod push;
pub mod uplink;

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free TCP port on loopback (the OS picks one; it is free again once we close it).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A server process writing its log to a file.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(mut cmd: Command, log: &Path) -> Result<Server> {
        let file = std::fs::File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd.spawn()?;
        Ok(Server {
            child,
            log: log.to_owned(),
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 30 s until the log says `ready`; fails at once if the server exits.
    fn wait_for(&mut self, ready: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log().contains(ready) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("server exited ({status}):\n{}", self.log());
            }
            if Instant::now() > deadline {
                anyhow::bail!("server not ready after 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the child is ours and not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Signals the server and waits up to 10 s for it to end (then kills it).
    fn stop(&mut self, signal: i32) {
        self.signal(signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `cmd`'s process receive `signal` when the thread that spawns it ends. Spawned from
/// a thread that lives as long as the test process, a server shared by all of its tests then
/// stops with the process, however it ends.
fn stops_with_parent(cmd: &mut Command, signal: i32) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended before the setting took: then end now.
            if libc::getppid() != parent {
                libc::raise(signal);
            }
            Ok(())
        });
    }
}

/// The server `cell` holds for this test process, started by the first test that asks: by
/// `start`, in a folder `<tmp>/<prefix><pid>-…` (swept once the process has ended), on a
/// thread that lasts as long as the process.
fn shared<T: Send + Sync + 'static>(
    cell: &'static OnceLock<T>,
    prefix: &'static str,
    start: fn(tempfile::TempDir) -> Result<T>,
) -> &'static T {
    cell.get_or_init(|| {
        sweep_shared(prefix);
        on_lasting_thread(move || {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{prefix}{}-", std::process::id()))
                .tempdir()?;
            start(dir)
        })
        .unwrap_or_else(|e| panic!("the shared server {prefix} does not start: {e:#}"))
    })
}

/// Runs `start` on a thread that lasts as long as the process and returns what it returned.
/// A server spawned there with [`stops_with_parent`] stops with the process, not with the
/// thread of the test that happened to start it.
fn on_lasting_thread<T: Send + 'static>(
    start: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("shared-server".into())
        .spawn(move || {
            let _ = tx.send(start());
            loop {
                std::thread::park();
            }
        })?;
    rx.recv()?
}

/// Removes the folders `<tmp>/<prefix><pid>-…` of shared servers whose test process has
/// ended (a shared server outlives every test, so nothing else removes its folder).
fn sweep_shared(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
