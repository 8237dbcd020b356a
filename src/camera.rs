//! Cameras: their model, their plan and where their video comes from.

use crate::Error;
use crate::account::string_enum;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

string_enum!(
    /// The two camera models of the service. They differ only in pan-tilt.
    CameraModel, "camera model" {
        /// A fixed camera.
        Fixed = "fixed",
        /// A camera the customer can turn up, down, left and right remotely.
        PanTilt = "pan-tilt",
    }
);

string_enum!(
    /// The service plan of a camera, fixed when it is provisioned: a camera bought without
    /// the dispatch (rush) service can never get it added later.
    Plan, "plan" {
        /// Live video and alerts only.
        CameraOnly = "camera-only",
        /// Live video, alerts, and guard dispatch requests.
        Dispatch = "dispatch",
    }
);

/// Where the relay gets a camera's video.
#[derive(Clone, PartialEq, Eq)]
pub enum CameraSource {
    /// The camera sits behind a home router; its agent dials out to the relay and the relay
    /// pulls video through the agent's link.
    Agent,
    /// The relay can reach the camera's RTSP server directly.
    Rtsp(RtspSource),
}

impl CameraSource {
    /// Parses the admin's `--source`: `agent`, or an `rtsp://` / `rtsps://` URL that may carry
    /// `user:password@`. Errors never repeat the password.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s == "agent" {
            return Ok(CameraSource::Agent);
        }
        RtspSource::parse(s).map(CameraSource::Rtsp)
    }

    /// `agent` or `rtsp`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            CameraSource::Agent => "agent",
            CameraSource::Rtsp(_) => "rtsp",
        }
    }
}

impl fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSource::Agent => f.write_str("Agent"),
            CameraSource::Rtsp(r) => f.debug_tuple("Rtsp").field(r).finish(),
        }
    }
}

/// A direct RTSP source, with its credentials kept apart from the URL so that the URL can
/// be shown and logged and the password cannot.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspSource {
    url: url::Url,
    username: Option<String>,
    password: Option<String>,
}

impl RtspSource {
    /// Parses an `rtsp://` or `rtsps://` URL with a host; credentials are taken out of it.
    pub fn parse(s: &str) -> Result<Self, Error> {
        // The URL parser's own messages are generic ("invalid port number"...) and never
        // echo the input, so they are safe to pass on.
        let mut url = url::Url::parse(s)
            .map_err(|e| Error::invalid(format_args!("camera source is not a URL: {e}")))?;
        if !matches!(url.scheme(), "rtsp" | "rtsps") {
            return Err(Error::invalid(format_args!(
                "camera source must be `agent` or an rtsp:// or rtsps:// URL, not {}://",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid("camera source URL has no host"));
        }
        if url.fragment().is_some() {
            return Err(Error::invalid(
                "camera source URL must not have a #fragment",
            ));
        }
        let username = Some(decode(url.username())).filter(|u| !u.is_empty());
        let password = url.password().map(decode);
        // Cannot fail: the URL has a host (checked above).
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(RtspSource {
            url,
            username,
            password,
        })
    }

    /// Rebuilds a source from its stored parts.
    pub fn from_parts(
        url: &str,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, Error> {
        let mut src = RtspSource::parse(url)?;
        src.username = username;
        src.password = password;
        Ok(src)
    }

    /// The URL without credentials: safe to show and log.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The camera's RTSP password: give it only to the RTSP client.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host, as written (a name or an address).
    pub fn host(&self) -> url::Host<&str> {
        // Parsing refused URLs without a host.
        self.url.host().unwrap_or(url::Host::Domain(""))
    }

    /// The port, 554 (322 for rtsps) when the URL names none.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(if self.url.scheme() == "rtsps" {
            322
        } else {
            554
        })
    }

    /// The same source with its host replaced by `ip`, one of the addresses its name resolved
    /// to, so that the address checked is the address connected to.
    pub fn pinned_to(&self, ip: IpAddr) -> RtspSource {
        let mut pinned = self.clone();
        // Cannot fail: an rtsp:// URL with a host takes an IP host.
        let _ = pinned.url.set_ip_host(ip);
        pinned
    }
}

/// Which hosts the relay may pull video from directly. Everything a relay can reach is not
/// everything a customer's camera may be: a source naming the relay's own loopback, its
/// cloud's metadata service or the operator's private network would turn the relay into a
/// way in (server-side request forgery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourcePolicy {
    /// Also loopback, link-local and private ranges (a relay on the cameras' own network,
    /// tests). Metadata services, unspecified, multicast and broadcast addresses stay refused.
    pub allow_private: bool,
}

/// What kind of address a camera host is, for [`SourcePolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostClass {
    /// On the internet.
    Public,
    /// Loopback, link-local or a private range: only where the admin allows it.
    Private,
    /// Never a camera: a cloud metadata service, unspecified, multicast, broadcast.
    Never,
}

impl HostClass {
    /// The class of an address.
    pub fn of_ip(ip: IpAddr) -> HostClass {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> HostClass {
        const METADATA: [Ipv4Addr; 3] = [
            Ipv4Addr::new(169, 254, 169, 254), // most clouds
            Ipv4Addr::new(169, 254, 170, 2),   // container task metadata
            Ipv4Addr::new(100, 100, 100, 200), // another cloud's
        ];
        let [a, b, ..] = ip.octets();
        if METADATA.contains(&ip) || ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
            HostClass::Never
        } else if ip.is_loopback()
            || ip.is_link_local()
            || ip.is_private()
            || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
            || a == 0
        {
            HostClass::Private
        } else {
            HostClass::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> HostClass {
        const METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
        let first = ip.segments()[0];
        if ip == METADATA || ip.is_unspecified() || ip.is_multicast() {
            HostClass::Never
        } else if ip.is_loopback()
            || (first & 0xffc0) == 0xfe80 // link-local
            || (first & 0xfe00) == 0xfc00 // unique local
            || ip.to_ipv4().is_some_and(|v4| Self::of_v4(v4) != HostClass::Public)
        {
            HostClass::Private
        } else {
            HostClass::Public
        }
    }

    /// The class of a host name, before it is resolved: names that always mean this machine
    /// or a metadata service. Other names are classed by the addresses they resolve to.
    /// A name whose last label is a number is no host name but an address in another
    /// spelling (`2130706433`, `0x7f.1`) that the resolver would read as one: never.
    pub fn of_name(name: &str) -> Option<HostClass> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let last = name.rsplit('.').next().unwrap_or_default();
        let numeric = last.starts_with("0x") || last.chars().all(|c| c.is_ascii_digit());
        if numeric {
            Some(HostClass::Never)
        } else if name == "localhost" || name.ends_with(".localhost") {
            Some(HostClass::Private)
        } else if name == "metadata" || name.starts_with("metadata.") || name.ends_with(".internal")
        {
            Some(HostClass::Never)
        } else {
            None
        }
    }
}

impl SourcePolicy {
    /// Checks one class against the policy; `what` names the host for the message.
    fn check(&self, class: HostClass, what: &dyn fmt::Display) -> Result<(), Error> {
        match class {
            HostClass::Public => Ok(()),
            HostClass::Private if self.allow_private => Ok(()),
            HostClass::Private => Err(Error::invalid(format_args!(
                "camera host {what} is a loopback, link-local or private address; \
                 an admin may allow those with [cameras] allow_private_sources"
            ))),
            HostClass::Never => Err(Error::invalid(format_args!(
                "camera host {what} can never be a camera (metadata service, unspecified, \
                 multicast or broadcast address)"
            ))),
        }
    }

    /// Checks a source's host as written: addresses fully, names as far as a name tells.
    pub fn check_source(&self, source: &RtspSource) -> Result<(), Error> {
        match source.host() {
            url::Host::Ipv4(ip) => self.check(HostClass::of_ip(IpAddr::V4(ip)), &ip),
            url::Host::Ipv6(ip) => self.check(HostClass::of_ip(IpAddr::V6(ip)), &ip),
            // rtsp:// is no "special" scheme to the URL parser: it leaves IPv4 hosts as names.
            url::Host::Domain(name) => match name.parse::<IpAddr>() {
                Ok(ip) => self.check(HostClass::of_ip(ip), &ip),
                Err(_) => match HostClass::of_name(name) {
                    Some(class) => self.check(class, &name),
                    None => Ok(()),
                },
            },
        }
    }

    /// Checks an address a source's name resolved to, just before connecting.
    pub fn check_resolved(&self, name: &str, ip: IpAddr) -> Result<(), Error> {
        self.check(HostClass::of_ip(ip), &format_args!("{name} ({ip})"))
    }
}

fn decode(s: &str) -> String {
    // Userinfo is percent-encoded only: a `+` is a plus, not a space.
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Takes `user:password@` out of `url` (decoded), leaving a URL that is safe to log.
pub fn take_credentials(url: &mut url::Url) -> Option<(String, String)> {
    if url.username().is_empty() {
        return None;
    }
    let credentials = (
        decode(url.username()),
        url.password().map(decode).unwrap_or_default(),
    );
    // Cannot fail for URLs with a host, the only ones that can carry credentials.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(credentials)
}

impl fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSource::Agent => f.write_str("agent"),
            CameraSource::Rtsp(r) => f.write_str(r.url()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_credentials_are_split_from_the_url_and_never_shown() {
        let src = CameraSource::parse("rtsp://admin:s3cr%40t@192.0.2.7:554/stream1").unwrap();
        let CameraSource::Rtsp(r) = &src else {
            panic!("not rtsp")
        };
        assert_eq!(r.url(), "rtsp://192.0.2.7:554/stream1");
        assert_eq!(r.username(), Some("admin"));
        assert_eq!(r.password(), Some("s3cr@t"));
        assert!(!format!("{src:?}").contains("s3cr"));
        assert!(!src.to_string().contains("s3cr"));
        assert_eq!(src.kind(), "rtsp");
    }

    #[test]
    fn sources_are_agent_or_rtsp_with_a_host() {
        assert_eq!(CameraSource::parse("agent").unwrap(), CameraSource::Agent);
        assert!(CameraSource::parse("rtsps://cam.example/live").is_ok());
        for bad in [
            "http://cam/live",
            "file:///etc/passwd",
            "rtsp://",
            "rtsp:///live",
            "rtsp://cam/live#x",
            "Agent",
            "",
        ] {
            assert!(CameraSource::parse(bad).is_err(), "{bad:?} accepted");
        }
        let err = CameraSource::parse("rtsp://u:hunter2@cam:99999/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn hosts_are_classed_for_the_source_policy() {
        let class = |ip: &str| HostClass::of_ip(ip.parse().unwrap());
        for ip in ["192.0.2.7", "8.8.8.8", "2001:db8::1", "100.128.0.1"] {
            assert_eq!(class(ip), HostClass::Public, "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd12::1",
            "::ffff:192.168.1.1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(class(ip), HostClass::Private, "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "fd00:ec2::254",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
        ] {
            assert_eq!(class(ip), HostClass::Never, "{ip}");
        }
        assert_eq!(HostClass::of_name("LocalHost."), Some(HostClass::Private));
        assert_eq!(
            HostClass::of_name("cam.localhost"),
            Some(HostClass::Private)
        );
        assert_eq!(
            HostClass::of_name("metadata.google.internal"),
            Some(HostClass::Never)
        );
        assert_eq!(HostClass::of_name("cam.example.jp"), None);
        for other_spelling in ["2130706433", "0x7f.1", "127.1", "0177.0.0.1"] {
            assert_eq!(
                HostClass::of_name(other_spelling),
                Some(HostClass::Never),
                "{other_spelling}"
            );
        }
    }

    #[test]
    fn the_policy_refuses_private_hosts_unless_allowed_and_metadata_always() {
        let source = |s: &str| match CameraSource::parse(s).unwrap() {
            CameraSource::Rtsp(r) => r,
            CameraSource::Agent => panic!("agent"),
        };
        let strict = SourcePolicy::default();
        let open = SourcePolicy {
            allow_private: true,
        };
        for ok in ["rtsp://192.0.2.7/live", "rtsp://cam.example.jp/live"] {
            assert!(strict.check_source(&source(ok)).is_ok(), "{ok}");
        }
        for private in [
            "rtsp://u:pw@127.0.0.1:8554/live",
            "rtsp://[::1]/live",
            "rtsp://192.168.1.20/live",
            "rtsp://localhost/live",
            "rtsp://169.254.3.4/",
        ] {
            let err = strict.check_source(&source(private)).unwrap_err();
            assert!(err.to_string().contains("allow_private_sources"), "{err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
            assert!(open.check_source(&source(private)).is_ok(), "{private}");
        }
        for never in [
            "rtsp://169.254.169.254/latest",
            "rtsp://metadata.google.internal/",
            "rtsp://0.0.0.0/",
            "rtsp://[fd00:ec2::254]/",
        ] {
            assert!(strict.check_source(&source(never)).is_err(), "{never}");
            assert!(open.check_source(&source(never)).is_err(), "{never}");
        }
        // A name that resolves to loopback is caught at connect time.
        let ip = "127.0.0.1".parse().unwrap();
        assert!(strict.check_resolved("cam.example.jp", ip).is_err());
        assert!(open.check_resolved("cam.example.jp", ip).is_ok());
        let pinned = source("rtsp://cam.example.jp:8554/live?x=1").pinned_to(ip);
        assert_eq!(pinned.url(), "rtsp://127.0.0.1:8554/live?x=1");
        assert_eq!(source("rtsp://cam/").port(), 554);
        assert_eq!(source("rtsps://cam/").port(), 322);
    }

    #[test]
    fn stored_parts_rebuild_the_same_source() {
        let CameraSource::Rtsp(r) = CameraSource::parse("rtsp://u:p@cam/live").unwrap() else {
            panic!()
        };
        let back = RtspSource::from_parts(
            r.url(),
            r.username().map(str::to_owned),
            r.password().map(str::to_owned),
        )
        .unwrap();
        assert_eq!(back, r);
    }
}
