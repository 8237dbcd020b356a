//! The processes a benchmark starts (the project's release binaries, its peers) and what
//! `/proc` says they use.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, killed and reaped when dropped.
pub struct Running(pub Child);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of this workspace, beside the benchmark's own (build it first: `bench/run.sh`
/// does).
pub fn target_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("target dir")?.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (bench/run.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// Makes the process `cmd` starts end when the benchmark does, even when the benchmark is
/// killed and cannot drop its [`Running`] handles.
pub fn dies_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe, as code between fork and exec must be.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
}

/// Starts `cmd` and waits for a line of its standard output that starts with `prefix`;
/// returns the process and that line. The rest of its output is read and dropped, so it
/// never blocks on a full pipe.
pub fn spawn_until_line(mut cmd: Command, prefix: &str) -> Result<(Running, String)> {
    let mut child = dies_with_parent(&mut cmd).stdout(Stdio::piped()).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let running = Running(child);
    let line = loop {
        match lines.next() {
            Some(line) => {
                let line = line?;
                if line.starts_with(prefix) {
                    break line;
                }
            }
            None => bail!("{cmd:?} ended before printing {prefix:?}"),
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok((running, line))
}

/// Runs `eyeward-relay admin --config CONFIG ARGS --json` with `stdin`; returns what it
/// printed.
pub fn relay_admin(config: &Path, args: &[&str], stdin: &str) -> Result<serde_json::Value> {
    let mut child = Command::new(target_bin("eyeward-relay")?)
        .arg("admin")
        .arg("--config")
        .arg(config)
        .args(args)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if !out.status.success() {
        bail!("admin {args:?} failed: {json}");
    }
    Ok(json)
}

/// What a process has used so far: CPU time (user and system, all threads) and resident
/// memory.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub rss_bytes: u64,
    /// The most resident memory it has had (VmHWM).
    pub peak_rss_bytes: u64,
    /// The part of `rss_bytes` that is the process's own (heap, stacks), not shared library
    /// code or files.
    pub anon_bytes: u64,
    /// Threads it runs now.
    pub threads: usize,
}

/// Reads `pid`'s usage from `/proc`.
pub fn usage(pid: u32) -> Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |field: &str| -> Result<u64> {
        Ok(status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .with_context(|| format!("{field} in /proc/{pid}/status"))?
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()?)
    };
    Ok(Usage {
        cpu: Duration::from_secs_f64(ticks as f64 / per_second as f64),
        rss_bytes: kb("VmRSS:")? * 1024,
        peak_rss_bytes: kb("VmHWM:")? * 1024,
        anon_bytes: kb("RssAnon:")? * 1024,
        threads: status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .with_context(|| format!("Threads in /proc/{pid}/status"))?
            .trim()
            .parse()?,
    })
}

/// What a process used over a span: CPU share of one core, and peak resident and private
/// (anonymous) memory.
pub struct Load {
    pub cpu: f64,
    pub rss: u64,
    pub anon: u64,
}

/// What `pid` uses over the next `span`, its memory sampled four times a second.
pub fn measure(pid: u32, span: Duration) -> Result<Load> {
    let before = usage(pid)?;
    let (mut rss, mut anon) = (before.rss_bytes, before.anon_bytes);
    let start = std::time::Instant::now();
    while start.elapsed() < span {
        std::thread::sleep(Duration::from_millis(250));
        let now = usage(pid)?;
        (rss, anon) = (rss.max(now.rss_bytes), anon.max(now.anon_bytes));
    }
    let after = usage(pid)?;
    Ok(Load {
        cpu: (after.cpu - before.cpu).as_secs_f64() / start.elapsed().as_secs_f64(),
        rss,
        anon,
    })
}

/// How many file descriptors `pid` has open (sockets, files, pipes, epoll and timer fds).
pub fn open_fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// What `pid`'s open file descriptors are, counted by kind: `tcp`, `udp`, `unix` sockets
/// (looked up in this namespace's `/proc/net`), `anon_inode:[eventpoll]` and the like, and
/// files by extension (`file .db-wal`), so that what stays open can be told apart.
pub fn open_fd_kinds(pid: u32) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut sockets = std::collections::HashMap::new();
    for table in ["tcp", "tcp6", "udp", "udp6", "unix"] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        // The inode is column 10 of the IP tables and column 7 of the unix one.
        let column = if table == "unix" { 6 } else { 9 };
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(column) {
                sockets.insert(inode.to_owned(), table.trim_end_matches('6'));
            }
        }
    }
    let mut kinds = std::collections::BTreeMap::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy();
        let kind = if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
        {
            sockets
                .get(inode)
                .copied()
                .unwrap_or("other socket")
                .to_owned()
        } else if target.starts_with('/') {
            let name = target.rsplit('/').next().unwrap_or_default();
            match name.find('.') {
                Some(dot) => format!("file {}", &name[dot..]),
                None => String::from("file"),
            }
        } else if target.starts_with("anon_inode:") {
            target.into_owned()
        } else {
            target.split(':').next().unwrap_or_default().to_owned()
        };
        *kinds.entry(kind).or_default() += 1;
    }
    Ok(kinds)
}

/// UDP datagrams this network namespace's kernel dropped for want of receive buffer
/// (`RcvbufErrors` in `/proc/net/snmp`): a sign that the load client could not keep up.
pub fn udp_receive_drops() -> Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().context("Udp")?, udp.next().context("Udp")?);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .context("RcvbufErrors")?
        .1
        .parse()
        .map_err(Into::into)
}

/// The customer every benchmark's relay has.
pub const BENCH_EMAIL: &str = "bench@example.jp";
pub const BENCH_PASSWORD: &str = "bench password";

/// Writes a relay configuration in `dir` (listening on a free loopback port, data in
/// `dir/data`, `extra` appended) with the bench customer (guard center `east`). Returns the
/// config file and the customer's id.
pub fn provision_customer(dir: &Path, extra: &str) -> Result<(PathBuf, i64)> {
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{extra}",
            dir.join("data").to_str().context("utf-8 path")?
        ),
    )?;
    let customer = add_bench_customer(&config)?;
    Ok((config, customer))
}

/// Adds the bench customer (guard center `east`) through `config`'s admin command; its id.
pub fn add_bench_customer(config: &Path) -> Result<i64> {
    let customer = relay_admin(
        config,
        &[
            "customer",
            "add",
            "--email",
            BENCH_EMAIL,
            "--name",
            "Bench",
            "--guard-center",
            "east",
        ],
        &format!("{BENCH_PASSWORD}\n"),
    )?;
    customer["id"].as_i64().context("customer id")
}

/// Adds a camera-only camera named `name` of `model` whose source is `source` (`agent`, or a
/// camera's rtsp:// URL) to `customer`. Returns what `camera add` printed (`id`, and
/// `agent_token` for an agent camera).
pub fn add_camera(
    config: &Path,
    customer: i64,
    name: &str,
    model: &str,
    source: &str,
) -> Result<serde_json::Value> {
    add_camera_on(config, customer, name, model, "camera-only", source)
}

/// [`add_camera`] on `plan` (`camera-only` or `dispatch`).
pub fn add_camera_on(
    config: &Path,
    customer: i64,
    name: &str,
    model: &str,
    plan: &str,
    source: &str,
) -> Result<serde_json::Value> {
    relay_admin(
        config,
        &[
            "camera",
            "add",
            "--customer",
            &customer.to_string(),
            "--name",
            name,
            "--model",
            model,
            "--plan",
            plan,
            "--source",
            source,
        ],
        "",
    )
}

/// [`provision_customer`] with one camera, `Street`, of `model` whose source is `source`.
/// Returns the config file and what `camera add` printed.
pub fn provision_relay(
    dir: &Path,
    extra: &str,
    model: &str,
    source: &str,
) -> Result<(PathBuf, serde_json::Value)> {
    let (config, customer) = provision_customer(dir, extra)?;
    let camera = add_camera(&config, customer, "Street", model, source)?;
    Ok((config, camera))
}

/// An HTTP client that keeps cookies, logged in at `base` as the bench customer.
pub async fn bench_login(base: &str) -> Result<reqwest::Client> {
    login(base, BENCH_EMAIL, BENCH_PASSWORD).await
}

/// An HTTP client that keeps cookies, logged in at `base` as `email`.
pub async fn login(base: &str, email: &str, password: &str) -> Result<reqwest::Client> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let login = http
        .post(format!("{base}/api/login"))
        .header("origin", base)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await?;
    if login.status() != 200 {
        bail!("login: {}", login.status());
    }
    Ok(http)
}

/// Starts the release relay on `config`, its log in `log`; returns it and its base URL. It
/// logs warnings and errors, or what `RELAY_LOG` asks for (`RUST_LOG`'s syntax).
pub fn start_relay(config: &Path, log: &Path) -> Result<(Running, String)> {
    let mut cmd = Command::new(target_bin("eyeward-relay")?);
    cmd.args(["serve", "--config"])
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("RELAY_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stderr(std::fs::File::create(log)?);
    let (relay, line) = spawn_until_line(cmd, "eyeward-relay listening on ")?;
    let base = line.rsplit(' ').next().context("relay address")?.to_owned();
    Ok((relay, base))
}

/// Starts a simulated camera (`eyeward-agent simulate --model MODEL`) on `listen` with
/// `extra` arguments, its log in `log`; returns it and its URL.
pub fn start_simulator(
    model: &str,
    listen: &str,
    extra: &[&str],
    log: &Path,
) -> Result<(Running, String)> {
    let mut sim = Command::new(target_bin("eyeward-agent")?);
    sim.args(["simulate", "--model", model, "--listen", listen])
        .args(extra)
        .stderr(std::fs::File::create(log)?);
    let (sim, line) = spawn_until_line(sim, "")?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .context("camera url")?
        .to_owned();
    Ok((sim, url))
}

/// A flat grey 7680×4320 JPEG (a few hundred kilobytes, 100 MB decoded), made by ffmpeg in
/// `dir`.
pub fn flat_8k_jpeg(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join("flat-8k.jpg");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=7680x4320",
        ])
        .args(["-frames:v", "1", "-q:v", "5"])
        .arg(&path)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg failed");
    }
    Ok(std::fs::read(path)?)
}
