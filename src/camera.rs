//! Cameras: their model, their plan and where their video comes from.

use crate::Error;
use crate::account::string_enum;
use std::fmt;

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
