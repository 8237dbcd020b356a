//! The harness for end-to-end tests: the real `eyeward-relay` binary on a free loopback port,
//! provisioned through its real admin command line, spoken to over real HTTP.
//!
//! The binaries must be built first (`cargo build --workspace`); the README's test command
//! does that.

#![allow(dead_code)] // Each test file uses its own part of the harness.

pub mod cluster;
pub mod in_process;
pub mod smtp;
pub mod turn;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The path of one of the workspace's binaries, next to this test's own executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target folder");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (the README's test command does)",
        path.display()
    );
    path
}

/// A child process that prints one "ready" line on stdout, stopped (SIGTERM) when dropped;
/// its stderr goes to a file for assertions and failure messages.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
    /// The ready line, trimmed.
    pub ready: String,
    /// Every stdout line so far, trimmed.
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Spawns `cmd` and, given a `prefix`, waits up to 30 s for its first stdout line, which
    /// must start with it.
    pub fn spawn(mut cmd: Command, prefix: Option<&str>, log: PathBuf) -> Result<Process> {
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for (n, line) in BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .enumerate()
            {
                if n == 0 {
                    let _ = tx.send(line.clone());
                }
                kept.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.trim().to_owned());
            }
        });
        let mut p = Process {
            child: Some(child),
            log,
            ready: String::new(),
            stdout: lines,
        };
        let Some(prefix) = prefix else {
            return Ok(p);
        };
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if !line.starts_with(prefix) {
            bail!(
                "{cmd:?} did not start (first line {line:?}); log:\n{}",
                p.log()
            );
        }
        p.ready = line.trim().to_owned();
        Ok(p)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The file its log (stderr) goes to, for a browser script that reads it as it grows.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether this agent served a tunnel from the group of pictures it keeps (not by
    /// reaching through to the camera).
    pub fn served_from_group_of_pictures(&self) -> bool {
        self.log()
            .contains("tunnel open, served from the agent's group of pictures")
    }

    /// Every line printed on stdout so far, waiting up to 5 s for the second one (a server
    /// that prints its ready line first and more addresses after).
    pub fn ready_lines(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self
                .stdout
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if lines.len() >= 2 || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` and waits for the exit status.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        Ok(child.wait()?)
    }

    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        self.signal(libc::SIGTERM)
    }

    /// Sends `signal` (SIGSTOP, SIGCONT...) without waiting for an exit.
    pub fn kill_only(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.pid();
        if self.child.is_some() {
            let _ = self.stop();
        }
        // EYEWARD_TEST_LOGS=<folder> keeps every process's log there (its folder goes with
        // the test): what the relay said when a test failed.
        if let (Some(keep), Some(pid)) = (std::env::var_os("EYEWARD_TEST_LOGS"), pid) {
            let name = self.log.file_name().unwrap_or_default().to_string_lossy();
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(&self.log, Path::new(&keep).join(format!("{pid}-{name}")));
        }
    }
}

/// A simulated camera (`eyeward-agent simulate`) on a free loopback port.
pub struct Camera {
    pub process: Process,
    /// `rtsp://127.0.0.1:PORT/live`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Camera {
    /// Starts `eyeward-agent simulate --model MODEL --listen 127.0.0.1:0 EXTRA...`;
    /// `password` sets EYEWARD_SIM_PASSWORD.
    pub fn start(model: &str, extra: &[&str], password: Option<&str>) -> Result<Camera> {
        Camera::start_on("127.0.0.1:0", model, extra, password)
    }

    /// When the simulator's scene clock started (Unix ms): keyframes on a schedule fall on
    /// its multiples of the keyframe interval.
    pub fn scene_started_unix_ms(&self) -> Result<i64> {
        self.process
            .log()
            .split("scene_started_unix_ms=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .context("the simulator logs when its scene's clock started")
    }

    /// Sleeps until `offset_ms` after the next keyframe of a camera with keyframes every
    /// `interval_ms` on a schedule, at least `at_least_ms` from now.
    pub async fn sleep_until_after_keyframe(
        &self,
        interval_ms: i64,
        offset_ms: i64,
        at_least_ms: i64,
    ) -> Result<()> {
        let started = self.scene_started_unix_ms()?;
        let now = eyeward::clock::Clock::real().now().0;
        let into = (now - started).rem_euclid(interval_ms);
        let mut wait = (offset_ms - into).rem_euclid(interval_ms);
        while wait < at_least_ms {
            wait += interval_ms;
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        Ok(())
    }

    /// Like [`Camera::start`], on a given address (to restart a camera where it was).
    pub fn start_on(
        listen: &str,
        model: &str,
        extra: &[&str],
        password: Option<&str>,
    ) -> Result<Camera> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(bin("eyeward-agent"));
        cmd.args(["simulate", "--model", model, "--listen", listen])
            .args(extra);
        if let Some(p) = password {
            cmd.env("EYEWARD_SIM_PASSWORD", p);
        }
        let process = Process::spawn(
            cmd,
            Some("eyeward-agent simulating"),
            dir.path().join("sim.log"),
        )?;
        let url = process
            .ready
            .rsplit(' ')
            .next()
            .context("camera url")?
            .to_owned();
        Ok(Camera {
            process,
            url,
            _dir: dir,
        })
    }
}

impl Camera {
    /// The camera's ONVIF device service, `http://127.0.0.1:PORT/onvif/device_service`, from
    /// the simulator's second line.
    pub fn onvif_url(&self) -> Result<String> {
        self.process
            .ready_lines()
            .into_iter()
            .find_map(|l| l.strip_prefix("eyeward-agent onvif at ").map(str::to_owned))
            .with_context(|| format!("no ONVIF line; log: {}", self.process.log()))
    }
}

/// Runs `eyeward-relay admin --config CONFIG ARGS --json` with `stdin`; returns the exit
/// status's success, stdout parsed as the one JSON object it must be, and stderr.
pub fn admin_raw(config: &Path, args: &[&str], stdin: &str) -> Result<(bool, Value, String)> {
    let mut child = Command::new(bin("eyeward-relay"))
        .arg("admin")
        .arg("--config")
        .arg(config)
        .args(args)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    let json: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("admin {args:?} printed {stdout:?}; stderr: {stderr}"))?;
    assert!(
        json.is_object(),
        "admin --json must print one object: {stdout}"
    );
    Ok((out.status.success(), json, stderr))
}

/// Like [`admin_raw`], but the command must succeed.
pub fn admin(config: &Path, args: &[&str], stdin: &str) -> Result<Value> {
    let (ok, json, stderr) = admin_raw(config, args, stdin)?;
    if !ok {
        bail!("admin {args:?} failed: {json} {stderr}");
    }
    Ok(json)
}

/// A relay's data folder, config file and address: what provisioning and clients need,
/// whether the relay runs as a process ([`Relay`]) or in the test ([`in_process`]).
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub base: String,
    /// The PostgreSQL database the relay keeps its state in, if not SQLite in `data_dir`.
    pub database: Option<String>,
}

impl Site {
    /// A new data folder with a config listening on `listen`; `extra` is appended to it.
    /// With `EYEWARD_TEST_BACKEND=postgres-s3` (`scripts/test.sh` runs the suites that touch
    /// storage that way too), the relay keeps its state in a new database of its own on the
    /// test process's PostgreSQL and its pictures under a prefix of their own in the test
    /// process's Garage, unless `extra` names a database or storage itself.
    pub fn new(listen: &str, extra: &str) -> Result<Site> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("relay.toml");
        let data = dir.path().join("data");
        let on_servers = match std::env::var("EYEWARD_TEST_BACKEND").as_deref() {
            Ok("postgres-s3") => true,
            Ok("embedded") | Err(_) => false,
            Ok(other) => bail!("EYEWARD_TEST_BACKEND={other}: embedded or postgres-s3"),
        };
        let database = match on_servers && !extra.contains("[database]") {
            true => Some(eyeward_testkit::postgres::Postgres::shared().database()?),
            false => None,
        };
        let mut sections = database.as_ref().map_or(String::new(), |url| {
            format!("[database]\nurl = {url:?}\ntls = \"disable\"\npool_size = 4\n")
        });
        if on_servers && !extra.contains("[storage]") {
            let place = eyeward_testkit::garage::Garage::shared().place();
            sections.push_str(&place.config(dir.path())?);
        }
        std::fs::write(
            &config,
            format!(
                "listen = \"{listen}\"\ndata_dir = {:?}\n{extra}\n{sections}",
                data.to_str().context("utf-8 temp path")?
            ),
        )?;
        Ok(Site {
            dir,
            config,
            base: String::new(),
            database,
        })
    }

    /// The names of the pictures the relay keeps under `folder` (`snapshots`, `dispatch`, a
    /// camera's `snapshots/<id>`), wherever it keeps them: read through the relay's own
    /// storage on its own config.
    pub async fn pictures(&self, folder: &str) -> Result<Vec<String>> {
        let config = eyeward_relay::config::Config::load(Some(&self.config))?;
        let objects =
            eyeward_relay::objects::Objects::open(&config.data_dir, &config.storage).await?;
        let mut names: Vec<String> = objects
            .list(folder)
            .await?
            .into_iter()
            .map(|o| o.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Everything the relay's database keeps at rest: SQLite's file and its write-ahead log,
    /// or a dump of its PostgreSQL database.
    pub fn database_at_rest(&self) -> Result<Vec<u8>> {
        if let Some(url) = &self.database {
            return eyeward_testkit::postgres::Postgres::shared().dump(url);
        }
        let data = self.dir.path().join("data");
        let mut bytes = std::fs::read(data.join("eyeward.db"))?;
        bytes.extend(std::fs::read(data.join("eyeward.db-wal")).unwrap_or_default());
        Ok(bytes)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `eyeward-relay admin` on this relay's config: see [`admin_raw`].
    pub fn admin_raw(&self, args: &[&str], stdin: &str) -> Result<(bool, Value, String)> {
        admin_raw(&self.config, args, stdin)
    }

    /// `eyeward-relay admin` on this relay's config: see [`admin`].
    pub fn admin(&self, args: &[&str], stdin: &str) -> Result<Value> {
        admin(&self.config, args, stdin)
    }

    /// Creates an account of `role` (`customer` in English, or `operator`) with `password`;
    /// returns its id.
    fn account(
        &self,
        role: &str,
        email: &str,
        name: &str,
        center: &str,
        password: &str,
    ) -> Result<i64> {
        let mut args = vec![
            role,
            "add",
            "--email",
            email,
            "--name",
            name,
            "--guard-center",
            center,
        ];
        if role == "customer" {
            args.extend(["--lang", "en"]);
        }
        let v = self.admin(&args, &format!("{password}\n"))?;
        v["id"].as_i64().context("account id")
    }

    pub fn customer(&self, email: &str, name: &str, center: &str, password: &str) -> Result<i64> {
        self.account("customer", email, name, center, password)
    }

    pub fn operator(&self, email: &str, name: &str, center: &str, password: &str) -> Result<i64> {
        self.account("operator", email, name, center, password)
    }

    /// Sets a customer's home: `address` and `location` (`"LAT,LON"`).
    pub fn set_home(&self, customer: i64, address: &str, location: &str) -> Result<()> {
        let id = customer.to_string();
        self.admin(
            &[
                "customer",
                "set-home",
                "--id",
                &id,
                "--address",
                address,
                "--location",
                location,
            ],
            "",
        )?;
        Ok(())
    }

    /// Adds a guard of `center` at `position` (`"LAT,LON"`); returns what `guard add --json`
    /// printed (its id and phone token).
    pub fn guard(&self, center: &str, name: &str, position: &str) -> Result<Value> {
        self.admin(
            &[
                "guard",
                "add",
                "--guard-center",
                center,
                "--name",
                name,
                "--position",
                position,
            ],
            "",
        )
    }

    /// Adds a camera; returns what `camera add --json` printed.
    pub fn camera(
        &self,
        customer: i64,
        name: &str,
        model: &str,
        plan: &str,
        source: &str,
    ) -> Result<Value> {
        self.admin(
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

    /// The mails the relay wrote to its outbox folder (no SMTP server configured) for `to`,
    /// oldest first, waiting up to 10 s for at least one.
    pub async fn outbox_mail_to(&self, to: &str) -> Result<Vec<Vec<u8>>> {
        let folder = self.dir.path().join("data/outbox");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut found: Vec<(std::time::SystemTime, Vec<u8>)> = Vec::new();
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "eml") {
                    let raw = std::fs::read(&path)?;
                    let parsed = mail_parser::MessageParser::default().parse(&raw);
                    let addressed = parsed
                        .and_then(|m| m.to().and_then(|a| a.first()?.address().map(str::to_owned)))
                        .is_some_and(|a| a == to);
                    if addressed {
                        found.push((entry.metadata()?.modified()?, raw));
                    }
                }
            }
            if !found.is_empty() {
                found.sort_by_key(|(at, _)| *at);
                return Ok(found.into_iter().map(|(_, raw)| raw).collect());
            }
            if std::time::Instant::now() > deadline {
                bail!("no mail to {to} in {}", folder.display());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `holder` invites `email` as `name` with `grant` (`{"cameras": …, "until"?: …}`), and the
    /// invited person takes the mailed link with `password`: their logged-in client.
    pub async fn member(
        &self,
        holder: &Client,
        email: &str,
        name: &str,
        grant: serde_json::Value,
        password: &str,
    ) -> Result<Client> {
        let mut invitation = grant;
        invitation["email"] = serde_json::json!(email);
        invitation["name"] = serde_json::json!(name);
        invitation["lang"] = serde_json::json!("en");
        let (status, body) = status_json(
            holder
                .post("/api/household/invitations", &invitation)
                .await?,
        )
        .await?;
        ensure!(status == 201, "invitation: {status} {body}");
        let mail = self.outbox_mail_to(email).await?;
        let link = smtp::link(
            mail.last().context("a mail")?,
            &format!("{}/#invite/", self.base),
        )?;
        let token = link.rsplit('/').next().context("a token")?;
        let client = self.client();
        let (status, body) = status_json(
            client
                .post(
                    "/api/invitation/accept",
                    &serde_json::json!({"token": token, "password": password}),
                )
                .await?,
        )
        .await?;
        ensure!(status == 200, "accepting the invitation: {status} {body}");
        Ok(client)
    }

    /// A browser-like client (cookie jar, our Origin) logged in as `email`.
    pub async fn login(&self, email: &str, password: &str) -> Result<Client> {
        let client = self.client();
        let resp = client
            .post(
                "/api/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await?;
        if resp.status() != 200 {
            bail!("login as {email}: {} {}", resp.status(), resp.text().await?);
        }
        Ok(client)
    }

    /// A client with an empty cookie jar that sends our Origin on every request.
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("http client"),
            base: self.base.clone(),
        }
    }

    /// `eyeward-agent run` against this relay: see [`start_agent`].
    pub fn start_agent(&self, token: &str, camera: &str, name: &str) -> Result<Process> {
        start_agent(&self.base, self.dir.path(), token, camera, name)
    }

    /// Like [`Site::start_agent`], with `config` as the agent's file (`<name>.toml` beside
    /// its log) and `extra` arguments.
    pub fn start_configured_agent(
        &self,
        token: &str,
        camera: &str,
        name: &str,
        config: &str,
        extra: &[&str],
    ) -> Result<Process> {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let mut args = vec!["--config", path.to_str().context("utf-8")?];
        args.extend_from_slice(extra);
        start_agent_with(&self.base, self.dir.path(), token, camera, name, &args)
    }
}

/// A running relay with its own data folder; stopped (SIGTERM) when dropped.
pub struct Relay {
    site: Site,
    pub process: Process,
}

impl std::ops::Deref for Relay {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl Relay {
    /// The relay's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Result<u64> {
        let pid = self.process.pid().context("relay pid")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .context("VmHWM")?
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()?;
        Ok(kib / 1024)
    }

    /// Starts a relay on `127.0.0.1:0`; `extra` is appended to its config file.
    pub fn start(extra: &str) -> Result<Relay> {
        Relay::start_on("127.0.0.1:0", extra)
    }

    /// Starts a relay listening on `listen`; `extra` is appended to its config file.
    pub fn start_on(listen: &str, extra: &str) -> Result<Relay> {
        Relay::run(Site::new(listen, extra)?)
    }

    /// Starts a relay on a site prepared by the test (its data folder on a small disk, say).
    pub fn run(mut site: Site) -> Result<Relay> {
        let (process, base) = Relay::spawn(site.dir.path(), &site.config)?;
        site.base = base;
        Ok(Relay { site, process })
    }

    fn spawn(dir: &Path, config: &Path) -> Result<(Process, String)> {
        let mut cmd = Command::new(bin("eyeward-relay"));
        cmd.args(["serve", "--config"]).arg(config);
        let process = Process::spawn(
            cmd,
            Some("eyeward-relay listening on "),
            dir.join("relay.log"),
        )?;
        let base = process
            .ready
            .rsplit(' ')
            .next()
            .context("relay address")?
            .to_owned();
        Ok((process, base))
    }

    /// Stops the relay (unless stopped already) and starts it again on the same address and
    /// data.
    pub fn restart(&mut self) -> Result<()> {
        if self.process.pid().is_some() {
            self.process.stop()?;
        }
        let addr = self.base.trim_start_matches("http://");
        // The top-level `listen` only (a section's, such as `[cluster]`'s, stays).
        let mut top = true;
        let text = std::fs::read_to_string(&self.site.config)?
            .lines()
            .map(|l| {
                top &= !l.starts_with('[');
                if top && l.starts_with("listen = ") {
                    format!("listen = \"{addr}\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>();
        std::fs::write(&self.site.config, text)?;
        let (process, base) = Relay::spawn(self.site.dir.path(), &self.site.config)?;
        self.process = process;
        self.site.base = base;
        Ok(())
    }

    /// Everything the relay has logged (since its last start).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        self.process.stop()
    }
}

/// An HTTP client bound to one relay, acting like the relay's own web page.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if method == reqwest::Method::GET || method == reqwest::Method::HEAD {
            rb
        } else {
            rb.header("Origin", &self.base)
        }
    }

    pub async fn get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self.request(reqwest::Method::GET, path).send().await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<reqwest::Response> {
        Ok(self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await?)
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<reqwest::Response> {
        Ok(self
            .request(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await?)
    }
}

/// Reads a response as (status, JSON body); error bodies must be JSON `{"error": "..."}`.
pub async fn status_json(resp: reqwest::Response) -> Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await?;
    if text.is_empty() {
        return Ok((status, Value::Null));
    }
    let json: Value = serde_json::from_str(&text)
        .with_context(|| format!("status {status}, body is not JSON ({ctype}): {text:?}"))?;
    if status >= 400 {
        assert!(
            json["error"].as_str().is_some_and(|s| !s.is_empty()),
            "error bodies are {{\"error\": \"...\"}}: {json}"
        );
        assert!(
            ctype.starts_with("application/json"),
            "error content type {ctype}"
        );
    }
    Ok((status, json))
}

/// Polls the customer's camera list until camera `cam`'s `online` is `want`; returns how long
/// that took.
pub async fn wait_online(
    client: &Client,
    cam: i64,
    want: bool,
    limit: Duration,
) -> Result<Duration> {
    let start = std::time::Instant::now();
    loop {
        let (_, list) = status_json(client.get("/api/cameras").await?).await?;
        let online = list
            .as_array()
            .and_then(|l| l.iter().find(|c| c["id"] == cam))
            .and_then(|c| c["online"].as_bool());
        if online == Some(want) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("camera {cam} not online={want} after {limit:?}: {list}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True inside the loopback-only network namespace that [`in_loopback_namespace`] makes.
const NETNS_MARK: &str = "EYEWARD_TEST_IN_NETNS";

/// Browser WebRTC tests must keep to loopback, yet Chromium only offers loopback candidates
/// when loopback is all there is. So such a test runs itself again, alone, inside a new network
/// namespace with only `lo` up (`unshare -n`, as root). Returns `Ok(true)` when the caller is
/// that inner run and should do the work; `Ok(false)` after the inner run passed.
pub fn in_loopback_namespace(test: &str) -> Result<bool> {
    in_namespace(test, "ip link set lo up")
}

/// A simulated camera's size for browser tests (two cores share cameras, agents, the relay
/// and a browser): 640×360, a keyframe every second.
pub const SMALL_CAMERA: [&str; 6] = [
    "--keyframe-interval",
    "1s",
    "--width",
    "640",
    "--height",
    "360",
];

/// A relay's config for browser tests in the loopback namespace whose cameras may be read
/// directly from loopback.
pub const LOOPBACK_VIEWERS_AND_CAMERAS: &str =
    "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n[cameras]\nallow_private_sources = true\n";

/// The address [`in_namespace_with_local_address`] gives its namespace.
pub const NAMESPACE_LOCAL_ADDRESS: &str = "10.99.0.1";

/// As [`in_loopback_namespace`], with one more address, [`NAMESPACE_LOCAL_ADDRESS`], on a veth
/// pair whose both ends stay in the namespace, and a default route to it: Firefox gathers no
/// ICE candidates on loopback, nor at all without a default route. Nothing leaves the machine:
/// the namespace has no link out.
pub fn in_namespace_with_local_address(test: &str) -> Result<bool> {
    in_namespace(
        test,
        &format!(
            "ip link set lo up && ip link add ew0 type veth peer name ew1 \
             && ip addr add {NAMESPACE_LOCAL_ADDRESS}/24 dev ew0 && ip link set ew0 up \
             && ip link set ew1 up && ip route add default dev ew0"
        ),
    )
}

/// Runs `test` again inside a new network namespace set up by the shell commands `network`.
fn in_namespace(test: &str, network: &str) -> Result<bool> {
    if std::env::var_os(NETNS_MARK).is_some() {
        return Ok(true);
    }
    let exe = std::env::current_exe()?;
    let out = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            &format!("{network} && exec \"$0\" \"$@\""),
        ])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(NETNS_MARK, "1")
        .output()
        .context("running unshare (util-linux) as root")?;
    if !out.status.success() {
        bail!(
            "{test} failed inside its network namespace: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The inner run's own report (figures, what it saw), for `--nocapture`.
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(false)
}

/// Loads nftables `rules` (`nft -f -`), inside network namespace `namespace` if given.
pub fn nft(namespace: Option<&str>, rules: &str) -> Result<()> {
    let mut cmd = match namespace {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    let out = cmd
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(rules.as_bytes())?;
            child.wait_with_output()
        })
        .context("running nft (nftables)")?;
    if !out.status.success() {
        bail!("nft: {}", out.status);
    }
    Ok(())
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs `eyeward-agent run` against the relay at `base` with `token` for `camera` (an rtsp://
/// URL or sim://…); its token file and log (`<name>.log`) go in `dir`.
pub fn start_agent(
    base: &str,
    dir: &Path,
    token: &str,
    camera: &str,
    name: &str,
) -> Result<Process> {
    start_agent_with(base, dir, token, camera, name, &[])
}

/// Like [`start_agent`], with more arguments for `eyeward-agent run`.
pub fn start_agent_with(
    base: &str,
    dir: &Path,
    token: &str,
    camera: &str,
    name: &str,
    extra: &[&str],
) -> Result<Process> {
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, token)?;
    let mut cmd = Command::new(bin("eyeward-agent"));
    cmd.args(["run", "--relay", base, "--camera", camera, "--token-file"])
        .arg(&token_file)
        .args(extra);
    Process::spawn(cmd, None, dir.join(format!("{name}.log")))
}

/// `tests/browser`, where the browser tests' scripts are, once `playwright-core` is
/// installed there (the README's test command does it).
pub fn browser_scripts() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        bail!("playwright-core is not installed in tests/browser: run the README's test command");
    }
    Ok(dir)
}

/// Runs the browser script `tests/browser/<name>.mjs` with node, the relay's `BASE_URL`,
/// `OUT_DIR` = `target/test-output/browser_<name>` (screenshots) and `vars`. Returns its
/// stdout, which says `"ok":true`; a failure carries its output and the logs of `processes`.
pub async fn run_browser_script(
    name: &str,
    relay: &Relay,
    vars: &[(&str, String)],
    processes: &[(&str, &Process)],
) -> Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new("node")
        .arg(browser_scripts()?.join(format!("{name}.mjs")))
        .env("BASE_URL", &relay.base)
        .env(
            "OUT_DIR",
            root.join(format!("target/test-output/browser_{name}")),
        )
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .context("running node")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || !stdout.contains("\"ok\":true") {
        let logs: String = [("relay", &relay.process)]
            .iter()
            .chain(processes)
            .map(|(what, p)| format!("\n{what} log:\n{}", p.log()))
            .collect();
        bail!(
            "browser test {name} failed\nstdout: {stdout}\nstderr: {}{logs}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("{stdout}");
    Ok(stdout)
}

/// Reads server-sent events from `path` until one's data contains `want`; returns how long it
/// took from `since`.
pub async fn sse_until(
    client: &Client,
    path: &str,
    want: String,
) -> Result<tokio::task::JoinHandle<Result<String>>> {
    let mut resp = client.get(path).await?;
    anyhow::ensure!(resp.status() == 200, "{path}: {}", resp.status());
    Ok(tokio::spawn(async move {
        let mut seen = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(20), resp.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
            if let Some(line) = seen
                .lines()
                .find(|l| l.starts_with("data:") && l.contains(&want))
            {
                return Ok(line.to_owned());
            }
        }
        anyhow::bail!("no event with {want} on the stream: {seen}")
    }))
}

/// A JPEG with a gradient, as a camera's snapshot.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .expect("encode");
    out
}

/// Uploads `jpeg` as a motion event captured now, as the agent with `token` does (key `key`,
/// 8 to 64 letters, digits, `-` or `_`).
pub async fn upload_event(
    site: &Site,
    token: &str,
    key: &str,
    jpeg: &[u8],
) -> Result<reqwest::Response> {
    upload_event_at(site, token, key, jpeg, eyeward::UnixMillis::now().0).await
}

/// [`upload_event`] of a picture taken at `captured_at` (Unix milliseconds).
pub async fn upload_event_at(
    site: &Site,
    token: &str,
    key: &str,
    jpeg: &[u8],
    captured_at: i64,
) -> Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .post(site.url(&format!(
            "/agent/v1/events?key={key}&captured_at={captured_at}&score=0.04&bbox=0,0,8,8"
        )))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(jpeg.to_vec())
        .send()
        .await?)
}

/// A phone of guard `guard` signed in from a link `operator` issued: its client.
pub async fn guard_phone(relay: &Relay, operator: &Client, guard: i64) -> Result<Client> {
    let (status, link) = status_json(
        operator
            .post(
                &format!("/api/ops/guards/{guard}/sign-in-link"),
                &serde_json::json!({}),
            )
            .await?,
    )
    .await?;
    ensure!(status == 200, "{status} {link}");
    let token = link["url"]
        .as_str()
        .and_then(|u| u.split_once("/guard.html#"))
        .map(|(_, t)| t)
        .context("the link's token")?;
    let phone = relay.client();
    let signed_in = phone
        .post("/guard/v1/sign-in", &serde_json::json!({ "token": token }))
        .await?;
    ensure!(signed_in.status() == 204, "sign-in: {}", signed_in.status());
    // Used once: a second phone cannot take the same link.
    let again = relay
        .client()
        .post("/guard/v1/sign-in", &serde_json::json!({ "token": token }))
        .await?;
    ensure!(again.status() == 404, "the link again: {}", again.status());
    Ok(phone)
}

/// A customer's dispatch request (`body` names the camera and what is shared); its id.
pub async fn request_dispatch(customer: &Client, body: &Value) -> Result<i64> {
    let (status, request) =
        status_json(customer.post("/api/dispatch-requests", body).await?).await?;
    if status != 201 {
        bail!("dispatch request: {status} {request}");
    }
    request["id"].as_i64().context("request id")
}

/// A WHEP offer from a receive-only webrtc-rs peer, its candidates gathered; the peer is
/// returned too (it must live as long as the session is wanted).
pub async fn whep_offer() -> Result<(Arc<webrtc::peer_connection::RTCPeerConnection>, String)> {
    let pc = eyeward_bench::viewer::recvonly(&eyeward_bench::viewer::loopback_api()?).await?;
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    let sdp = pc.local_description().await.context("offer")?.sdp;
    Ok((pc, sdp))
}

/// POSTs a WHEP offer to `path` as `client`; the answer.
pub async fn post_offer(client: &Client, path: &str, sdp: String) -> Result<reqwest::Response> {
    Ok(client
        .request(reqwest::Method::POST, path)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await?)
}
