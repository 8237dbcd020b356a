//! The relay's configuration: a TOML file, every key optional.
//!
//! Each field is documented here and in `docs/config.md`. Unknown keys are refused so that a
//! typo never silently falls back to a default.

use crate::error::{Error, ErrorKind};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the HTTP server listens on. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Folder for everything the relay keeps: the SQLite database, snapshots, and the mail
    /// outbox when no SMTP server is configured. Created if missing.
    pub data_dir: PathBuf,
    /// The URL people use to reach this relay: used in mail links, and its origin is the only
    /// one allowed to make state-changing requests (CSRF). Default: `http://` + `listen`.
    /// When it is `https://`, session cookies are marked `Secure`.
    pub public_url: Option<url::Url>,
    /// Outgoing mail.
    pub mail: MailConfig,
    /// Alerts as notifications on people's devices (Web Push).
    pub push: PushConfig,
    /// How cameras are pulled.
    pub cameras: CamerasConfig,
    /// Pan-tilt commands.
    pub ptz: PtzConfig,
    /// Dispatch requests: the fee and the console's estimates.
    pub dispatch: DispatchConfig,
    /// Motion events and their snapshots.
    pub events: EventsConfig,
    /// Live video over WebRTC.
    pub webrtc: WebrtcConfig,
    /// Logins and sessions.
    pub auth: AuthConfig,
    /// HTTPS served by the relay itself. Absent: plain HTTP (behind a TLS proxy, say; see
    /// `http.trusted_proxies`).
    pub tls: Option<TlsConfig>,
    /// HTTP limits and proxies.
    pub http: HttpConfig,
    /// The Prometheus endpoint `/metrics`.
    pub metrics: MetricsConfig,
    /// Where the relay keeps its state: SQLite in `data_dir` (default) or PostgreSQL.
    pub database: DatabaseConfig,
    /// Where the relay keeps pictures: files in `data_dir` (default) or S3-compatible object
    /// storage.
    pub storage: StorageConfig,
    /// Several relay nodes as one service (PostgreSQL only; see `docs/cluster.md`). Absent:
    /// this relay is the whole service.
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: this relay is one node of several on one PostgreSQL and one bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The listener for the other nodes only (`/internal/v1/…`): an address on the cluster's
    /// own network, never routed to by the load balancer. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// How the other nodes reach `listen`. Default: `http://` + the bound address.
    pub internal_url: Option<url::Url>,
    /// A file holding the secret every node shares (32 bytes or more): internal calls are
    /// signed with it.
    pub secret_file: PathBuf,
    /// Longest a stopping node waits for its agents to link elsewhere.
    #[serde(
        with = "humantime_serde",
        default = "ClusterConfig::default_drain_timeout"
    )]
    pub drain_timeout: Duration,
}

impl ClusterConfig {
    fn default_drain_timeout() -> Duration {
        Duration::from_secs(20)
    }
}

/// `[storage]`: S3-compatible object storage instead of files in `data_dir`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The bucket pictures go to. Absent: `<data_dir>/snapshots` and `<data_dir>/dispatch`.
    pub s3: Option<S3Config>,
}

/// `[storage] s3 = { … }`: a bucket of any S3-compatible store (AWS, Garage, MinIO, Ceph…).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The store's URL, `https://…` (or `http://` on a trusted network), addressed by path
    /// (`<endpoint>/<bucket>/<key>`).
    pub endpoint: url::Url,
    pub bucket: String,
    pub region: String,
    /// Files holding the access key id and the secret key (kept out of this file).
    pub access_key_file: PathBuf,
    pub secret_key_file: PathBuf,
    /// Put before every object's name, to share a bucket: `"eyeward/"` say. Default none.
    #[serde(default)]
    pub prefix: String,
    /// PEM certificates to trust for the store besides the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Longest one request may take, retries included; past it the upload answers 503 and
    /// the agent keeps the event.
    #[serde(default = "S3Config::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl S3Config {
    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

/// `[database]`: PostgreSQL instead of the embedded SQLite database.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL, as `postgres://user@host:port/database`. Absent: SQLite in `data_dir`.
    pub url: Option<url::Url>,
    /// A file holding the database user's password, so that it is in neither the URL nor
    /// this file.
    pub password_file: Option<PathBuf>,
    /// TLS to the server: `"verify-full"` (default: the certificate must be signed by a
    /// trusted authority and valid for the URL's host), `"require"` (encrypted, unverified)
    /// or `"disable"`. (No `verify-ca`: sqlx's rustls check for it still refuses another
    /// host's name with this rustls, and a company's authority issues the database's name.)
    pub tls: DatabaseTls,
    /// PEM certificates to trust for the server besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// Connections this relay keeps open at most.
    pub pool_size: u32,
    /// Longest a statement may run before the server cancels it (the request gets a 503).
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Longest a request waits for a free connection or for the server to answer a connect.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

/// How the relay checks the PostgreSQL server's TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTls {
    #[default]
    VerifyFull,
    Require,
    Disable,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            password_file: None,
            tls: DatabaseTls::default(),
            ca_file: None,
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Without the URL, which may hold a password.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("postgres", &self.url.is_some())
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// `[mail]`: how alert and confirmation mail leaves the relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// SMTP server, as `smtp://host:port` (STARTTLS when offered), `smtps://host:port` (TLS),
    /// optionally with `user:password@`. Absent: mails are written as `.eml` files to
    /// `<data_dir>/outbox`.
    pub smtp_url: Option<url::Url>,
    /// PEM certificates to trust for the SMTP server besides the public roots (a private
    /// mail server with its own certificate authority).
    pub ca_file: Option<PathBuf>,
    /// The `From:` of every mail.
    pub from: String,
    /// At most one alert mail per camera in this span (e.g. `"60s"`); the events in between
    /// are kept and counted in the next mail.
    #[serde(with = "humantime_serde")]
    pub alert_cooldown: Duration,
    /// A camera offline this long (e.g. `"5m"`) is mailed about to its owner (who can switch
    /// these mails off), and again when it is back.
    #[serde(with = "humantime_serde")]
    pub offline_after: Duration,
}

/// `[events]`: motion events and their snapshots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// How long events and their snapshots are kept (e.g. `"30d"`); older ones are deleted,
    /// files and rows together.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// An event that reaches the relay this long after it was captured is marked delayed
    /// (the agent was offline, or the relay was).
    #[serde(with = "humantime_serde")]
    pub delayed_after: Duration,
    /// The most pixels a snapshot may have (width × height). A JPEG is decoded to be checked,
    /// and its pixels, not its bytes, are what that costs: a flat 8K picture is a few hundred
    /// kilobytes and 100 MB decoded. The default takes every camera up to 12 megapixels.
    pub max_snapshot_pixels: u64,
    /// Events one camera may send a minute (a burst of as many, then that rate); past it,
    /// 429 with `Retry-After`, and the agent keeps its queue.
    pub max_per_minute_per_camera: u32,
    /// Bytes of snapshots one camera may have stored; past it, 507 with `Retry-After` until
    /// the retention makes room, and the agent keeps its queue.
    pub max_snapshot_bytes_per_camera: u64,
    /// How long events' clips are kept (at most `retention`: a clip goes before its event).
    /// Unset: a week, or `retention` if shorter.
    #[serde(with = "humantime_serde::option")]
    pub clip_retention: Option<Duration>,
    /// The largest clip taken, in bytes (413 past it).
    pub max_clip_bytes: u64,
    /// Bytes of clips one camera may have stored; past it, 507 with `Retry-After` until the
    /// clip retention makes room, and the agent keeps its clips.
    pub max_clip_bytes_per_camera: u64,
}

/// How long clips are kept when `[events] clip_retention` is unset (or `retention`, if
/// shorter).
const CLIP_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl EventsConfig {
    /// How long clips are kept.
    pub fn clip_retention(&self) -> Duration {
        self.clip_retention
            .unwrap_or(CLIP_RETENTION.min(self.retention))
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retention: Duration::from_secs(30 * 24 * 3600),
            delayed_after: Duration::from_secs(10),
            max_snapshot_pixels: 12_000_000,
            max_per_minute_per_camera: 60,
            max_snapshot_bytes_per_camera: 4 * 1024 * 1024 * 1024,
            clip_retention: None,
            max_clip_bytes: 256 * 1024 * 1024,
            max_clip_bytes_per_camera: 32 * 1024 * 1024 * 1024,
        }
    }
}

/// `[cameras]`: how the relay pulls cameras.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CamerasConfig {
    /// How direct `rtsp://` cameras send their RTP: `"tcp"` (interleaved on the RTSP
    /// connection: passes NATs and firewalls, never loses a packet) or `"udp"` (separate
    /// ports: a little less delay on a clean LAN, but loss shows as broken pictures). Cameras
    /// behind an agent always use TCP: their tunnel is a byte stream.
    pub rtsp_transport: RtspTransport,
    /// Let direct `rtsp://` sources name loopback, link-local and private addresses (a relay
    /// on the cameras' own network, tests). Off: such sources are refused when added and
    /// when pulled, names checked by what they resolve to. Cloud metadata services,
    /// unspecified, multicast and broadcast addresses are refused either way.
    pub allow_private_sources: bool,
}

impl CamerasConfig {
    /// The rule for direct sources' hosts.
    pub fn source_policy(&self) -> eyeward::SourcePolicy {
        eyeward::SourcePolicy {
            allow_private: self.allow_private_sources,
        }
    }
}

/// `[ptz]`: commands to pan-tilt cameras.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PtzConfig {
    /// Commands one camera takes in a burst, from all its viewers together.
    pub burst: u32,
    /// Commands one camera takes per second, steadily. A held button sends about 3.
    pub per_second: f64,
    /// A continuous move stops this long after the viewer's last `move` command, so a
    /// closed tab or a lost connection never leaves a camera turning.
    #[serde(with = "humantime_serde")]
    pub deadman: Duration,
    /// How long the relay waits for the agent to carry out a command.
    #[serde(with = "humantime_serde")]
    pub answer_timeout: Duration,
}

impl Default for PtzConfig {
    fn default() -> Self {
        PtzConfig {
            burst: 20,
            per_second: 10.0,
            deadman: Duration::from_secs(1),
            answer_timeout: Duration::from_secs(5),
        }
    }
}

/// `[dispatch]`: guards sent to customers' homes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// The fee for a customer-requested dispatch, in yen, tax included. A request keeps the
    /// fee shown when it was made; it is owed once the guard center accepts it.
    pub fee_yen: u32,
    /// The average speed of a guard on the way, in km/h, for the console's arrival estimates
    /// (straight-line distance over this speed: roads are not known).
    pub guard_speed_kmh: f64,
    /// The map on which operators set where a guard is: a tile URL with `{z}`, `{x}` and
    /// `{y}`. Operators' browsers load the tiles from there (the pages allow its origin).
    pub map_tiles: String,
    /// The map's credit, shown on it as the tiles' terms ask.
    pub map_attribution: String,
}

impl DispatchConfig {
    /// The origin of `map_tiles` (`https://tile.openstreetmap.org`), for the pages' policy;
    /// `None` when it is not an http(s) URL with a host.
    pub fn map_tiles_origin(&self) -> Option<String> {
        let url = self
            .map_tiles
            .replace("{z}", "0")
            .replace("{x}", "0")
            .replace("{y}", "0");
        let url = url::Url::parse(&url).ok()?;
        (["http", "https"].contains(&url.scheme()) && url.host_str().is_some())
            .then(|| url.origin().ascii_serialization())
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            fee_yen: 3300,
            guard_speed_kmh: 30.0,
            map_tiles: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".to_owned(),
            map_attribution: "© OpenStreetMap contributors".to_owned(),
        }
    }
}

/// An RTSP session's RTP transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

/// `[webrtc]`: the relay's side of live video.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcConfig {
    /// Gather ICE host candidates only on these local addresses. Absent: every interface but
    /// loopback. Tests use `["127.0.0.1"]`.
    pub ice_addresses: Option<Vec<IpAddr>>,
    /// The one UDP port every viewer's media goes through (one firewall rule). 0: any free
    /// port, chosen at start and logged.
    pub udp_port: u16,
    /// The one TCP port for viewers whose network blocks UDP (ICE-TCP, RFC 6544). 0: any
    /// free port, chosen at start and logged.
    pub tcp_port: u16,
    /// The public addresses of a 1:1 NAT in front of the relay, announced instead of the
    /// local ones (a cloud VM's elastic IP, say).
    pub public_ips: Vec<IpAddr>,
    /// STUN and TURN servers handed to browsers (in WHEP `Link` headers).
    pub ice_servers: Vec<IceServer>,
    /// Viewers one camera may have at once.
    pub max_viewers_per_camera: usize,
    /// Live-video sessions one customer may have open at once.
    pub max_viewers_per_customer: usize,
    /// The longest a live-video session lasts (e.g. `"8h"`); the viewer's page sets up a new
    /// one, proving its session again.
    #[serde(with = "humantime_serde")]
    pub max_session: Duration,
    /// How long a camera is still pulled after its last viewer left (e.g. `"10s"`), so a
    /// viewer who comes straight back starts at once.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

/// One STUN or TURN server for browsers. Its `Debug` leaves the secret out.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, `turns:…`.
    pub urls: Vec<String>,
    /// For TURN: the secret shared with the TURN server (coturn's `static-auth-secret` with
    /// `use-auth-secret`). Each viewer is handed a username and password of its own that
    /// expire with its longest session (see `whep::turn`); no credential is shared.
    pub secret: Option<String>,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            ice_addresses: None,
            udp_port: 0,
            tcp_port: 0,
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            max_viewers_per_camera: 16,
            max_viewers_per_customer: 16,
            linger: Duration::from_secs(10),
            max_session: Duration::from_secs(8 * 3600),
        }
    }
}

/// `[auth]`: sessions and login throttling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session ends after this long without a request (e.g. `"12h"`).
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after login, however active (e.g. `"30d"`).
    #[serde(with = "humantime_serde")]
    pub session_max_age: Duration,
    /// Failed logins allowed on one account from one client address (or from one browser
    /// the account knows) within `login_failure_window`, before further attempts from there
    /// are refused with 429 until the window has passed.
    pub login_failures_per_account: u32,
    /// Failed logins allowed per client address (IPv6: per /64) within
    /// `login_failure_window`, whatever the accounts.
    pub login_failures_per_address: u32,
    /// Failed logins allowed on one account from browsers it does not know, from all
    /// addresses together, within `login_failure_window`. Its owner's known browsers are
    /// held to their own count only, so guessing cannot lock them out.
    pub login_failures_per_account_new_browsers: u32,
    /// The window over which failed logins are counted (e.g. `"15m"`).
    #[serde(with = "humantime_serde")]
    pub login_failure_window: Duration,
}

/// `[tls]`: the relay's own certificate. Both files are read again on SIGHUP; a pair that does
/// not load then is reported and the certificate in use is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the relay's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `[http]`: request limits and proxies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted body of a JSON API request, in bytes; larger ones get 413.
    pub max_json_body_bytes: usize,
    /// Reverse proxies (addresses or networks, `"127.0.0.1"`, `"10.0.0.0/8"`) whose
    /// `X-Forwarded-For` names the client. The header is ignored from everyone else, so a
    /// client cannot pick the address its failed logins are counted against.
    pub trusted_proxies: Vec<ProxyNet>,
    /// A client must send a request's headers within this long (e.g. `"10s"`); also how
    /// long a kept-alive connection may sit idle between requests.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this long once read (e.g. `"60s"`), or
    /// the answer is 408.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Connections served at once; past it new ones wait in the listen queue until one ends.
    /// (Connections upgraded to an agent's WebSocket link no longer count.)
    pub max_connections: usize,
    /// The longest a server-sent event stream stays open (e.g. `"1h"`); browsers reconnect
    /// by themselves, proving their session again.
    #[serde(with = "humantime_serde")]
    pub max_event_stream: Duration,
    /// Server-sent event streams one account may have open at once (a page opens up to
    /// three); past it, 429.
    pub max_event_streams_per_account: usize,
}

/// An address or network of `http.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub ipnet::IpNet);

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(ProxyNet)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is neither an address nor a network such as 10.0.0.0/8"
                ))
            })
    }
}

/// `[push]`: Web Push to the push services of people's browsers and phones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Also push to endpoints on private, loopback and other non-public addresses, over plain
    /// http too: for tests and closed networks with a push service of their own. Off, the
    /// relay pushes only over https to public addresses, so an endpoint cannot point it at
    /// its own network.
    pub allow_private_endpoints: bool,
}

/// `[metrics]`: who may read `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, `/metrics` also answers clients that send `Authorization: Bearer <token>`.
    /// Clients on loopback may always read it; everyone else gets 401.
    pub bearer_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./eyeward-data"),
            public_url: None,
            mail: MailConfig::default(),
            push: PushConfig::default(),
            cameras: CamerasConfig::default(),
            ptz: PtzConfig::default(),
            dispatch: DispatchConfig::default(),
            events: EventsConfig::default(),
            webrtc: WebrtcConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            cluster: None,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            ca_file: None,
            from: "eyeward <alerts@example.com>".to_owned(),
            alert_cooldown: Duration::from_secs(60),
            offline_after: Duration::from_secs(300),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_timeout: Duration::from_secs(12 * 3600),
            session_max_age: Duration::from_secs(30 * 24 * 3600),
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_failures_per_account_new_browsers: 30,
            login_failure_window: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_json_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 2048,
            max_event_stream: Duration::from_secs(3600),
            max_event_streams_per_account: 16,
        }
    }
}

impl Config {
    /// Reads and validates `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, Error> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("cannot read config file {}: {e}", path.display()),
                    )
                })?;
                Config::parse(&text).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("config file {}: {e}", path.display()),
                    )
                })?
            }
        };
        Ok(config)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let config: Config = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The checks serde cannot make.
    fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::new(ErrorKind::InvalidArgument, msg.to_owned()));
        let url_ok = |u: &Option<url::Url>, schemes: [&str; 2]| {
            u.as_ref()
                .is_none_or(|u| schemes.contains(&u.scheme()) && u.host_str().is_some())
        };
        if !url_ok(&self.public_url, ["http", "https"]) {
            return bad("public_url must be an http:// or https:// URL with a host");
        }
        if self.tls.is_some()
            && self
                .public_url
                .as_ref()
                .is_some_and(|u| u.scheme() != "https")
        {
            return bad("public_url must be https:// when the relay serves TLS");
        }
        if !url_ok(&self.mail.smtp_url, ["smtp", "smtps"]) {
            return bad("mail.smtp_url must be an smtp:// or smtps:// URL with a host");
        }
        if self.mail.from.trim().is_empty() || self.mail.from.contains(['\r', '\n']) {
            return bad("mail.from must be one line, such as \"eyeward <alerts@example.com>\"");
        }
        let db = &self.database;
        if !url_ok(&db.url, ["postgres", "postgresql"]) {
            return bad("database.url must be a postgres:// URL with a host");
        }
        if db
            .url
            .as_ref()
            .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "sslmode"))
        {
            return bad("database.url: set TLS with database.tls, not sslmode");
        }
        if db.pool_size == 0 || db.statement_timeout.is_zero() || db.connect_timeout.is_zero() {
            return bad("database.pool_size and its timeouts must be above zero");
        }
        if let Some(s3) = &self.storage.s3 {
            if !["http", "https"].contains(&s3.endpoint.scheme()) || s3.endpoint.host().is_none() {
                return bad("storage.s3.endpoint must be an http:// or https:// URL with a host");
            }
            if s3.bucket.is_empty() || s3.region.is_empty() {
                return bad("storage.s3 needs a bucket and a region");
            }
            if s3.prefix.starts_with('/') || s3.prefix.contains("//") || s3.prefix.contains("..") {
                return bad("storage.s3.prefix must be a relative name such as \"eyeward/\"");
            }
            if s3.timeout.is_zero() {
                return bad("storage.s3.timeout must be longer than zero");
            }
        }
        if let Some(cluster) = &self.cluster {
            if db.url.is_none() {
                return bad(
                    "[cluster] needs PostgreSQL (database.url): the embedded SQLite database serves one node",
                );
            }
            if self.storage.s3.is_none() {
                return bad(
                    "[cluster] needs object storage ([storage.s3]) that every node reaches",
                );
            }
            if cluster
                .internal_url
                .as_ref()
                .is_some_and(|u| u.scheme() != "http" || u.host().is_none())
            {
                return bad("cluster.internal_url must be an http:// URL with a host");
            }
            if cluster.drain_timeout.is_zero() {
                return bad("cluster.drain_timeout must be longer than zero");
            }
        }
        let a = &self.auth;
        if a.session_idle_timeout.is_zero() || a.session_max_age.is_zero() {
            return bad("auth session timeouts must be longer than zero");
        }
        if a.login_failures_per_account == 0
            || a.login_failures_per_address == 0
            || a.login_failures_per_account_new_browsers == 0
        {
            return bad("auth login failure limits must be at least 1");
        }
        if a.login_failure_window.is_zero() {
            return bad("auth.login_failure_window must be longer than zero");
        }
        let p = &self.ptz;
        if p.burst == 0 || !(p.per_second.is_finite() && p.per_second > 0.0) {
            return bad("ptz.burst and ptz.per_second must be above zero");
        }
        if !(Duration::from_millis(300)..=Duration::from_secs(10)).contains(&p.deadman) {
            return bad("ptz.deadman must be between 300ms and 10s");
        }
        if p.answer_timeout.is_zero() {
            return bad("ptz.answer_timeout must be longer than zero");
        }
        let speed = self.dispatch.guard_speed_kmh;
        if !(speed.is_finite() && (1.0..=300.0).contains(&speed)) {
            return bad("dispatch.guard_speed_kmh must be between 1 and 300");
        }
        let d = &self.dispatch;
        if d.map_tiles_origin().is_none()
            || !["{z}", "{x}", "{y}"]
                .iter()
                .all(|p| d.map_tiles.contains(p))
        {
            return bad(
                "dispatch.map_tiles must be an http:// or https:// URL with {z}, {x} and {y}",
            );
        }
        if d.map_attribution.chars().any(char::is_control) {
            return bad("dispatch.map_attribution must be one line of text");
        }
        let w = &self.webrtc;
        if w.ice_addresses.as_ref().is_some_and(|a| {
            a.is_empty() || (a.len() > 1 && !a.iter().all(std::net::IpAddr::is_ipv4))
        }) {
            return bad("webrtc.ice_addresses: one address, or IPv4 addresses only");
        }
        if w.max_viewers_per_camera == 0 || w.max_viewers_per_customer == 0 {
            return bad("webrtc viewer limits must be at least 1");
        }
        let scheme_ok = |u: &String| {
            ["stun:", "turn:", "turns:"]
                .iter()
                .any(|p| u.starts_with(p))
        };
        if w.ice_servers
            .iter()
            .any(|s| s.urls.is_empty() || !s.urls.iter().all(scheme_ok))
        {
            return bad("webrtc.ice_servers urls must start with stun:, turn: or turns:");
        }
        let is_turn = |u: &String| u.starts_with("turn:") || u.starts_with("turns:");
        if w.ice_servers
            .iter()
            .any(|s| s.urls.iter().any(is_turn) && s.secret.as_ref().is_none_or(|k| k.len() < 16))
        {
            return bad(
                "webrtc.ice_servers with turn: urls need the TURN server's shared secret (secret = \"…\", 16 characters or more)",
            );
        }
        if self.events.max_per_minute_per_camera == 0
            || self.events.max_snapshot_bytes_per_camera == 0
        {
            return bad(
                "events.max_per_minute_per_camera and max_snapshot_bytes_per_camera must be at least 1",
            );
        }
        if self.events.retention < Duration::from_secs(3600) {
            return bad("events.retention must be at least an hour");
        }
        if self
            .events
            .clip_retention
            .is_some_and(|keep| keep < Duration::from_secs(3600) || keep > self.events.retention)
        {
            return bad("events.clip_retention must be at least an hour and at most retention");
        }
        if self.events.max_clip_bytes < 1024 * 1024
            || self.events.max_clip_bytes > eyeward::clip_upload::MAX_CLIP_BYTES
            || self.events.max_clip_bytes_per_camera < self.events.max_clip_bytes
        {
            return bad(&format!(
                "events.max_clip_bytes must be 1 MiB to {} bytes, and max_clip_bytes_per_camera at least as much",
                eyeward::clip_upload::MAX_CLIP_BYTES
            ));
        }
        if self.http.max_json_body_bytes < 1024 {
            return bad("http.max_json_body_bytes must be at least 1024");
        }
        if self.http.header_timeout.is_zero() || self.http.body_timeout.is_zero() {
            return bad("http.header_timeout and http.body_timeout must be longer than zero");
        }
        if self.http.max_connections == 0 {
            return bad("http.max_connections must be at least 1");
        }
        Ok(())
    }

    /// The URL people reach the relay at, given the address it actually listens on.
    pub fn public_url(&self, bound: SocketAddr) -> url::Url {
        self.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            url::Url::parse(&format!("{scheme}://{bound}/"))
                .expect("a socket address is a valid host")
        })
    }

    /// A one-line summary safe for logs: secrets are replaced.
    pub fn redacted(&self) -> String {
        let smtp = self.mail.smtp_url.as_ref().map(|u| {
            let mut u = u.clone();
            if u.password().is_some() {
                let _ = u.set_password(Some("REDACTED"));
            }
            u.to_string()
        });
        let database = self.database.url.as_ref().map(|u| {
            let mut u = u.clone();
            if u.password().is_some() {
                let _ = u.set_password(Some("REDACTED"));
            }
            u.set_query(None);
            u.to_string()
        });
        let storage = self
            .storage
            .s3
            .as_ref()
            .map(|s3| format!("s3:{}/{}/{}", s3.endpoint, s3.bucket, s3.prefix));
        format!(
            "listen={} data_dir={} database={} storage={} public_url={} smtp_url={} ice_addresses={:?} udp_port={} tcp_port={} public_ips={:?} ice_servers={} metrics_token={}",
            self.listen,
            self.data_dir.display(),
            database.as_deref().unwrap_or("(sqlite in data_dir)"),
            storage.as_deref().unwrap_or("(files in data_dir)"),
            self.public_url.as_ref().map_or("(default)", |u| u.as_str()),
            smtp.as_deref().unwrap_or("(outbox folder)"),
            self.webrtc.ice_addresses,
            self.webrtc.udp_port,
            self.webrtc.tcp_port,
            self.webrtc.public_ips,
            self.webrtc.ice_servers.len(),
            if self.metrics.bearer_token.is_some() {
                "set"
            } else {
                "unset"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_at_all_works() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./eyeward-data"));
        assert_eq!(c.public_url(c.listen).as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn the_contract_keys_parse() {
        let c = Config::parse(
            r#"
            listen = "127.0.0.1:9000"
            data_dir = "/tmp/ew"
            public_url = "https://cam.example.jp"
            [mail]
            smtp_url = "smtp://user:pw@127.0.0.1:2525"
            from = "eyeward <alerts@example.com>"
            [webrtc]
            ice_addresses = ["127.0.0.1"]
            [auth]
            session_idle_timeout = "2h"
            "#,
        )
        .unwrap();
        assert_eq!(c.auth.session_idle_timeout, Duration::from_secs(7200));
        assert_eq!(
            c.webrtc.ice_addresses,
            Some(vec!["127.0.0.1".parse().unwrap()])
        );
        let r = c.redacted();
        assert!(!r.contains("pw@"), "{r}");
        let turn = Config::parse(
            "[[webrtc.ice_servers]]\nurls = [\"turn:t.example.jp\"]\nsecret = \"0123456789abcdef\"",
        )
        .unwrap();
        let debug = format!("{:?}", turn.webrtc.ice_servers);
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(r.contains("REDACTED"), "{r}");
    }

    #[test]
    fn the_maps_tile_server_is_the_one_origin_its_pictures_come_from() {
        let c = Config::parse(
            "[dispatch]\nmap_tiles = \"https://tiles.example.jp:8443/std/{z}/{x}/{y}.png\"",
        )
        .unwrap();
        assert_eq!(
            c.dispatch.map_tiles_origin().as_deref(),
            Some("https://tiles.example.jp:8443")
        );
        assert_eq!(
            Config::default().dispatch.map_tiles_origin().as_deref(),
            Some("https://tile.openstreetmap.org")
        );
    }

    #[test]
    fn clips_are_kept_a_week_unless_events_are_kept_less_or_it_is_set() {
        let days = |n: u64| Duration::from_secs(n * 24 * 3600);
        let keep = |text: &str| Config::parse(text).unwrap().events.clip_retention();
        assert_eq!(keep(""), days(7));
        assert_eq!(keep("[events]\nretention = \"2d\""), days(2));
        assert_eq!(keep("[events]\nclip_retention = \"30d\""), days(30));
    }

    #[test]
    fn unknown_and_bad_values_are_refused() {
        for (text, wanted) in [
            ("lisen = \"127.0.0.1:1\"", "unknown field `lisen`"),
            ("[mail]\nsmtp = \"x\"", "unknown field `smtp`"),
            ("public_url = \"ftp://x\"", "public_url must be"),
            ("[mail]\nsmtp_url = \"http://x\"", "smtp_url must be"),
            ("[auth]\nsession_max_age = \"0s\"", "longer than zero"),
            ("[auth]\nlogin_failures_per_account = 0", "at least 1"),
            ("listen = \"nowhere\"", "invalid socket address"),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:t.example.jp\"]",
                "need the TURN server's shared secret",
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:t.example.jp\"]\nsecret = \"short\"",
                "16 characters or more",
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:t.example.jp\"]\nusername = \"u\"",
                "unknown field `username`",
            ),
            (
                "[dispatch]\nmap_tiles = \"javascript:alert(1)//{z}{x}{y}\"",
                "map_tiles must be",
            ),
            (
                "[dispatch]\nmap_tiles = \"https://t.example.jp/{z}/{x}.png\"",
                "map_tiles must be",
            ),
            (
                "[dispatch]\nmap_attribution = \"a\\nb\"",
                "map_attribution must be one line",
            ),
            (
                "[cluster]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"s\"",
                "[cluster] needs PostgreSQL",
            ),
            (
                "[database]\nurl = \"postgres://db.example.jp/e\"\n[cluster]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"s\"",
                "[cluster] needs object storage",
            ),
            (
                "[events]\nretention = \"2d\"\nclip_retention = \"3d\"",
                "clip_retention must be",
            ),
            ("[events]\nmax_clip_bytes = 1000", "max_clip_bytes must be"),
        ] {
            let err = Config::parse(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
    }
}
