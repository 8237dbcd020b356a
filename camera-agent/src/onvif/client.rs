//! The agent's ONVIF PTZ driver: the same requests for a real camera and the simulator. It
//! finds the PTZ service and the media profile through the device service, signs every
//! request with a WS-Security UsernameToken digest, and gives up on a camera that does not
//! answer within the timeout.

use super::reply;
use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eyeward::UnixMillis;
use eyeward::clock::Clock;
use eyeward::wsse;
use std::time::Duration;

/// A position in ONVIF's generic space: pan and tilt from -1 to 1 across the head's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub pan: f64,
    pub tilt: f64,
}

/// What the camera says of its head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    pub position: Position,
    pub moving: bool,
}

/// A preset as the camera keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub token: String,
    pub name: String,
}

/// A camera's PTZ service, found and ready.
pub struct Ptz {
    http: reqwest::Client,
    ptz_url: String,
    profile: String,
    credentials: Option<(String, String)>,
    /// Dates each request's WS-Security token.
    clock: Clock,
}

const DEVICE_NS: &str = "http://www.onvif.org/ver10/device/wsdl";
const MEDIA_NS: &str = "http://www.onvif.org/ver10/media/wsdl";
const PTZ_NS: &str = "http://www.onvif.org/ver20/ptz/wsdl";
const SCHEMA_NS: &str = "http://www.onvif.org/ver10/schema";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SOAP envelope of `body`, signed for `credentials`.
fn envelope(body: &str, credentials: Option<&(String, String)>, now: UnixMillis) -> String {
    let header = credentials.map_or(String::new(), |(user, password)| {
        let nonce: [u8; 16] = rand::random();
        let created = now.to_rfc3339();
        format!(
            "<s:Header><wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
             xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">\
             <wsse:UsernameToken><wsse:Username>{}</wsse:Username>\
             <wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">{}</wsse:Password>\
             <wsse:Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">{}</wsse:Nonce>\
             <wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>",
            xml_escape(user),
            wsse::digest(&nonce, &created, password),
            STANDARD.encode(nonce),
        )
    });
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"{SCHEMA_NS}\">\
         {header}<s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// The first element named `name` in `xml` (any namespace), with its attributes and text.
impl Ptz {
    /// Finds the PTZ service of the camera whose device service is at `device_url`. A camera
    /// without one (a fixed camera) is an error that says so.
    pub async fn connect(
        device_url: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
        clock: Clock,
    ) -> Result<Ptz, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Camera(format!("HTTP client: {e}")))?;
        let mut ptz = Ptz {
            http,
            ptz_url: String::new(),
            profile: String::new(),
            credentials,
            clock,
        };
        let caps = ptz
            .call(
                device_url,
                &format!("<GetCapabilities xmlns=\"{DEVICE_NS}\"><Category>All</Category></GetCapabilities>"),
            )
            .await?;
        let (ptz_url, media) = reply::service_addresses(&caps)?;
        ptz.ptz_url = ptz_url;
        let profiles = ptz
            .call(&media, &format!("<GetProfiles xmlns=\"{MEDIA_NS}\"/>"))
            .await?;
        ptz.profile = reply::profile_token(&profiles)?;
        Ok(ptz)
    }

    /// Posts one SOAP request; a fault or an HTTP error is an error with the camera's reason.
    async fn call(&self, url: &str, body: &str) -> Result<String, Error> {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(envelope(body, self.credentials.as_ref(), self.clock.now()))
            .send()
            .await
            .map_err(|e| Error::Camera(format!("no answer: {}", e.without_url())))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Error::Camera(e.without_url().to_string()))?;
        if !status.is_success() {
            let reason = reply::fault_reason(&text).unwrap_or_else(|| status.to_string());
            return Err(Error::CameraRefused(reason));
        }
        Ok(text)
    }

    async fn ptz(&self, body: String) -> Result<String, Error> {
        self.call(&self.ptz_url, &body).await
    }

    fn pan_tilt(element: &str, p: Position) -> String {
        format!(
            "<{element}><tt:PanTilt x=\"{:.4}\" y=\"{:.4}\"/></{element}>",
            p.pan.clamp(-1.0, 1.0),
            p.tilt.clamp(-1.0, 1.0)
        )
    }

    /// Moves at `speed` (each from -1 to 1 of the top speed) until [`Ptz::stop`] or, by the
    /// camera's own doing, `timeout`.
    pub async fn continuous(&self, speed: Position, timeout: Duration) -> Result<(), Error> {
        self.ptz(format!(
            "<ContinuousMove xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken>{}<Timeout>PT{:.3}S</Timeout></ContinuousMove>",
            xml_escape(&self.profile),
            Self::pan_tilt("Velocity", speed),
            timeout.as_secs_f64()
        ))
        .await
        .map(drop)
    }

    pub async fn stop(&self) -> Result<(), Error> {
        self.ptz(format!(
            "<Stop xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken><PanTilt>true</PanTilt></Stop>",
            xml_escape(&self.profile)
        ))
        .await
        .map(drop)
    }

    /// Moves by `step` (the generic translation space: 1 is half the range).
    pub async fn relative(&self, step: Position) -> Result<(), Error> {
        self.ptz(format!(
            "<RelativeMove xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken>{}</RelativeMove>",
            xml_escape(&self.profile),
            Self::pan_tilt("Translation", step)
        ))
        .await
        .map(drop)
    }

    pub async fn absolute(&self, to: Position) -> Result<(), Error> {
        self.ptz(format!(
            "<AbsoluteMove xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken>{}</AbsoluteMove>",
            xml_escape(&self.profile),
            Self::pan_tilt("Position", to)
        ))
        .await
        .map(drop)
    }

    pub async fn status(&self) -> Result<Status, Error> {
        let text = self
            .ptz(format!(
                "<GetStatus xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken></GetStatus>",
                xml_escape(&self.profile)
            ))
            .await?;
        reply::status(&text)
    }

    /// Saves the current position as preset `name`; returns its token.
    pub async fn set_preset(&self, name: &str) -> Result<String, Error> {
        let text = self
            .ptz(format!(
                "<SetPreset xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken><PresetName>{}</PresetName></SetPreset>",
                xml_escape(&self.profile),
                xml_escape(name)
            ))
            .await?;
        reply::preset_token(&text)
    }

    pub async fn goto_preset(&self, token: &str) -> Result<(), Error> {
        self.ptz(format!(
            "<GotoPreset xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken><PresetToken>{}</PresetToken></GotoPreset>",
            xml_escape(&self.profile),
            xml_escape(token)
        ))
        .await
        .map(drop)
    }

    /// The camera's presets.
    pub async fn presets(&self) -> Result<Vec<Preset>, Error> {
        let text = self
            .ptz(format!(
                "<GetPresets xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken></GetPresets>",
                xml_escape(&self.profile)
            ))
            .await?;
        reply::presets(&text)
    }

    pub async fn remove_preset(&self, token: &str) -> Result<(), Error> {
        self.ptz(format!(
            "<RemovePreset xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken><PresetToken>{}</PresetToken></RemovePreset>",
            xml_escape(&self.profile),
            xml_escape(token)
        ))
        .await
        .map(drop)
    }

    /// Makes the current position the home position.
    pub async fn set_home(&self) -> Result<(), Error> {
        self.ptz(format!(
            "<SetHomePosition xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken></SetHomePosition>",
            xml_escape(&self.profile)
        ))
        .await
        .map(drop)
    }

    pub async fn goto_home(&self) -> Result<(), Error> {
        self.ptz(format!(
            "<GotoHomePosition xmlns=\"{PTZ_NS}\"><ProfileToken>{}</ProfileToken></GotoHomePosition>",
            xml_escape(&self.profile)
        ))
        .await
        .map(drop)
    }
}
