//! The simulator's ONVIF service, as a real camera serves it over SOAP on HTTP: the device
//! service (capabilities, clock, identity), the media service (the profile and its stream
//! address) and, for the pan-tilt model, the PTZ service (continuous, relative and absolute
//! moves, stop, status, presets, home) moving the simulated head. Requests carry a
//! WS-Security UsernameToken digest when the camera has credentials; only the clock may be
//! read without (clients need it to make their digest).
//!
//! Positions use ONVIF's generic spaces: pan and tilt from -1 to 1 across the head's range,
//! speeds from -1 to 1 of its top speed.

use crate::{Error, Head, Simulator};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use eyeward::wsse::{UsernameToken, verify};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the service needs to know of its camera.
pub struct Camera {
    /// `rtsp://…/live`, for GetStreamUri.
    pub stream_url: String,
    /// User and password every request but the clock must prove.
    pub credentials: Option<(String, String)>,
    /// The head of a pan-tilt camera; `None`: no PTZ service, as on a fixed camera.
    pub head: Option<Head>,
    /// `http://host:port` this service is reached at.
    pub base: String,
}

/// A preset: a name and a position (generic space).
#[derive(Debug, Clone)]
struct Preset {
    name: String,
    pan: f64,
    tilt: f64,
}

struct Service {
    camera: Camera,
    presets: Mutex<BTreeMap<String, Preset>>,
    home: Mutex<(f64, f64)>,
    /// Bumped by every move, so a continuous move's timeout stops only its own move.
    moves: Mutex<u64>,
}

const PROFILE: &str = "profile_1";
const NODE: &str = "ptz_node_1";
/// The largest SOAP request taken.
const MAX_REQUEST: usize = 64 * 1024;

/// Serves the simulator's ONVIF service (PTZ on the pan-tilt model only) on `listen`, in
/// the background; returns the address it took.
pub async fn serve(
    sim: &Simulator,
    credentials: Option<(String, String)>,
    listen: SocketAddr,
) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(Error::io(format!("listening on {listen}")))?;
    let at = listener
        .local_addr()
        .map_err(Error::io("the ONVIF address"))?;
    let router = router(Camera {
        stream_url: sim.url().to_owned(),
        credentials,
        head: sim.head(),
        base: format!("http://{at}"),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the ONVIF service stopped");
        }
    });
    Ok(at)
}

/// The router of the three services.
pub fn router(camera: Camera) -> Router {
    let service = Arc::new(Service {
        camera,
        presets: Mutex::new(BTreeMap::new()),
        home: Mutex::new((0.0, 0.0)),
        moves: Mutex::new(0),
    });
    Router::new()
        .route("/onvif/device_service", post(soap))
        .route("/onvif/media_service", post(soap))
        .route("/onvif/ptz_service", post(soap))
        .with_state(service)
}

/// A SOAP fault: `sender` faults are the client's, as ONVIF names them.
struct Fault {
    status: StatusCode,
    code: &'static str,
    subcode: &'static str,
    reason: String,
}

fn fault(subcode: &'static str, reason: impl Into<String>) -> Fault {
    Fault {
        status: StatusCode::BAD_REQUEST,
        code: "env:Sender",
        subcode,
        reason: reason.into(),
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let body = format!(
            "<env:Fault><env:Code><env:Value>{}</env:Value><env:Subcode><env:Value>{}</env:Value>\
             </env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{}</env:Text>\
             </env:Reason></env:Fault>",
            self.code,
            self.subcode,
            escape(&self.reason)
        );
        (self.status, envelope(&body)).into_response()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A SOAP 1.2 envelope around `body`, with ONVIF's namespaces.
fn envelope(body: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:tt=\"http://www.onvif.org/ver10/schema\" \
         xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\" \
         xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\" \
         xmlns:tptz=\"http://www.onvif.org/ver20/ptz/wsdl\" \
         xmlns:ter=\"http://www.onvif.org/ver10/error\">\
         <env:Body>{body}</env:Body></env:Envelope>"
    );
    (
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

/// The first element named `name` (any namespace) under `node`, at any depth.
fn find<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    find(node, name).and_then(|n| n.text())
}

/// The `x` and `y` of the `PanTilt` element under `node`'s `name` child, checked to lie in
/// `-1..=1`.
fn pan_tilt(node: roxmltree::Node<'_, '_>, name: &str) -> Result<Option<(f64, f64)>, Fault> {
    let Some(vector) = find(node, name) else {
        return Ok(None);
    };
    let Some(pt) = find(vector, "PanTilt") else {
        return Ok(None);
    };
    let coord = |a: &str| -> Result<f64, Fault> {
        let v: f64 = pt
            .attribute(a)
            .unwrap_or("0")
            .parse()
            .map_err(|_| fault("ter:InvalidArgVal", format!("PanTilt {a} is not a number")))?;
        if !(-1.0..=1.0).contains(&v) {
            return Err(fault(
                "ter:InvalidArgVal",
                format!("PanTilt {a} = {v} is outside -1 to 1"),
            ));
        }
        Ok(v)
    };
    Ok(Some((coord("x")?, coord("y")?)))
}

/// `PT1.5S`-style durations (seconds only, as cameras use for timeouts).
fn duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_prefix("PT")?.strip_suffix('S')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

fn now_utc() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn soap(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    if body.len() > MAX_REQUEST {
        return fault("ter:InvalidArgVal", "the request is too large").into_response();
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return fault("ter:WellFormed", "the request is not UTF-8").into_response();
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return fault("ter:WellFormed", "the request is not XML").into_response();
    };
    let Some(request) = find(doc.root(), "Body").and_then(|b| b.first_element_child()) else {
        return fault("ter:WellFormed", "no SOAP body").into_response();
    };
    let operation = request.tag_name().name();
    if operation != "GetSystemDateAndTime"
        && let Err(f) = service.authenticate(doc.root())
    {
        return f.into_response();
    }
    match service.handle(operation, request) {
        Ok(body) => envelope(&body),
        Err(f) => f.into_response(),
    }
}

impl Service {
    fn authenticate(&self, root: roxmltree::Node<'_, '_>) -> Result<(), Fault> {
        let Some((user, password)) = &self.camera.credentials else {
            return Ok(());
        };
        let denied = || Fault {
            status: StatusCode::UNAUTHORIZED,
            code: "env:Sender",
            subcode: "ter:NotAuthorized",
            reason: "a valid WS-Security UsernameToken is required".into(),
        };
        let token = find(root, "UsernameToken").ok_or_else(denied)?;
        let token = UsernameToken {
            username: text(token, "Username").unwrap_or_default().to_owned(),
            digest: text(token, "Password").unwrap_or_default().to_owned(),
            nonce: text(token, "Nonce").unwrap_or_default().to_owned(),
            created: text(token, "Created").unwrap_or_default().to_owned(),
        };
        if verify(&token, user, password, now_utc().unix_timestamp()) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn head(&self) -> Result<&Head, Fault> {
        self.camera.head.as_ref().ok_or_else(|| Fault {
            status: StatusCode::BAD_REQUEST,
            code: "env:Receiver",
            subcode: "ter:ActionNotSupported",
            reason: "this camera has no pan-tilt".into(),
        })
    }

    fn profile(&self, request: roxmltree::Node<'_, '_>) -> Result<(), Fault> {
        match text(request, "ProfileToken") {
            Some(PROFILE) => Ok(()),
            _ => Err(fault("ter:NoProfile", "no such profile")),
        }
    }

    /// The head's position in the generic space, and whether it moves.
    fn status(&self) -> Result<(f64, f64, bool), Fault> {
        Ok(self.head()?.with(|head, now| {
            head.advance(now);
            let (pan, tilt) = head.position();
            let l = head.limits;
            let norm =
                |v: f64, (lo, hi): (f64, f64)| (2.0 * (v - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0);
            (norm(pan, l.pan), norm(tilt, l.tilt), head.is_moving())
        }))
    }

    /// Sends the head to a position in the generic space.
    fn go_to(&self, x: f64, y: f64) -> Result<(), Fault> {
        *self.moves.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.head()?.with(|head, now| {
            let l = head.limits;
            let deg =
                |v: f64, (lo, hi): (f64, f64)| lo + (v.clamp(-1.0, 1.0) + 1.0) / 2.0 * (hi - lo);
            head.go_to(deg(x, l.pan), deg(y, l.tilt), now);
        });
        Ok(())
    }

    fn handle(
        self: &Arc<Self>,
        operation: &str,
        request: roxmltree::Node<'_, '_>,
    ) -> Result<String, Fault> {
        let base = &self.camera.base;
        let ptz = self.camera.head.is_some();
        Ok(match operation {
            "GetSystemDateAndTime" => {
                let t = now_utc();
                format!(
                    "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>\
                     <tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>\
                     <tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time>\
                     <tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime>\
                     </tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.year(),
                    u8::from(t.month()),
                    t.day()
                )
            }
            "GetDeviceInformation" => "<tds:GetDeviceInformationResponse>\
                 <tds:Manufacturer>eyeward</tds:Manufacturer><tds:Model>simulated camera</tds:Model>\
                 <tds:FirmwareVersion>0.1</tds:FirmwareVersion><tds:SerialNumber>SIM-0001</tds:SerialNumber>\
                 <tds:HardwareId>simulator</tds:HardwareId></tds:GetDeviceInformationResponse>"
                .to_owned(),
            "GetCapabilities" => {
                let ptz_caps = if ptz {
                    format!("<tt:PTZ><tt:XAddr>{base}/onvif/ptz_service</tt:XAddr></tt:PTZ>")
                } else {
                    String::new()
                };
                format!(
                    "<tds:GetCapabilitiesResponse><tds:Capabilities>\
                     <tt:Device><tt:XAddr>{base}/onvif/device_service</tt:XAddr></tt:Device>\
                     <tt:Media><tt:XAddr>{base}/onvif/media_service</tt:XAddr>\
                     <tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>\
                     <tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>\
                     </tt:StreamingCapabilities></tt:Media>{ptz_caps}\
                     </tds:Capabilities></tds:GetCapabilitiesResponse>"
                )
            }
            "GetServices" => {
                let service = |ns: &str, path: &str| {
                    format!(
                        "<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}/onvif/{path}</tds:XAddr>\
                         <tds:Version><tt:Major>2</tt:Major><tt:Minor>0</tt:Minor></tds:Version></tds:Service>"
                    )
                };
                let mut all = service("http://www.onvif.org/ver10/device/wsdl", "device_service");
                all += &service("http://www.onvif.org/ver10/media/wsdl", "media_service");
                if ptz {
                    all += &service("http://www.onvif.org/ver20/ptz/wsdl", "ptz_service");
                }
                format!("<tds:GetServicesResponse>{all}</tds:GetServicesResponse>")
            }
            "GetProfiles" => {
                let ptz_config = if ptz {
                    format!(
                        "<tt:PTZConfiguration token=\"ptz_config_1\"><tt:Name>PTZ</tt:Name>\
                         <tt:UseCount>1</tt:UseCount><tt:NodeToken>{NODE}</tt:NodeToken>\
                         <tt:DefaultAbsolutePantTiltPositionSpace>http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace</tt:DefaultAbsolutePantTiltPositionSpace>\
                         <tt:DefaultRelativePanTiltTranslationSpace>http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace</tt:DefaultRelativePanTiltTranslationSpace>\
                         <tt:DefaultContinuousPanTiltVelocitySpace>http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace</tt:DefaultContinuousPanTiltVelocitySpace>\
                         <tt:DefaultPTZTimeout>PT5S</tt:DefaultPTZTimeout>\
                         </tt:PTZConfiguration>"
                    )
                } else {
                    String::new()
                };
                format!(
                    "<trt:GetProfilesResponse><trt:Profiles token=\"{PROFILE}\" fixed=\"true\">\
                     <tt:Name>main</tt:Name>{ptz_config}</trt:Profiles></trt:GetProfilesResponse>"
                )
            }
            "GetStreamUri" => {
                self.profile(request)?;
                format!(
                    "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{}</tt:Uri>\
                     <tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>\
                     <tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>\
                     </trt:MediaUri></trt:GetStreamUriResponse>",
                    escape(&self.camera.stream_url)
                )
            }
            "ContinuousMove" => {
                self.profile(request)?;
                let (x, y) = pan_tilt(request, "Velocity")?.unwrap_or((0.0, 0.0));
                let generation = {
                    let mut moves = self.moves.lock().unwrap_or_else(|p| p.into_inner());
                    *moves += 1;
                    *moves
                };
                self.head()?.with(|head, now| head.set_velocity(x, y, now));
                tracing::info!(x, y, "pan-tilt: continuous move");
                // The camera stops by itself after the timeout, unless a newer move came.
                let timeout = text(request, "Timeout")
                    .and_then(duration)
                    .unwrap_or(Duration::from_secs(5));
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    if *this.moves.lock().unwrap_or_else(|p| p.into_inner()) == generation
                        && let Ok(head) = this.head()
                    {
                        head.with(|head, now| head.stop(now));
                        tracing::info!("pan-tilt: continuous move timed out");
                    }
                });
                "<tptz:ContinuousMoveResponse/>".to_owned()
            }
            "AbsoluteMove" => {
                self.profile(request)?;
                let (x, y) = pan_tilt(request, "Position")?
                    .ok_or_else(|| fault("ter:InvalidArgVal", "AbsoluteMove needs a Position"))?;
                self.go_to(x, y)?;
                tracing::info!(x, y, "pan-tilt: absolute move");
                "<tptz:AbsoluteMoveResponse/>".to_owned()
            }
            "RelativeMove" => {
                self.profile(request)?;
                let (dx, dy) = pan_tilt(request, "Translation")?
                    .ok_or_else(|| fault("ter:InvalidArgVal", "RelativeMove needs a Translation"))?;
                let (x, y, _) = self.status()?;
                // The generic translation space spans the whole range: 1 is half of it.
                self.go_to(x + dx, y + dy)?;
                tracing::info!(dx, dy, "pan-tilt: relative move");
                "<tptz:RelativeMoveResponse/>".to_owned()
            }
            "Stop" => {
                self.profile(request)?;
                *self.moves.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                self.head()?.with(|head, now| head.stop(now));
                tracing::info!("pan-tilt: stop");
                "<tptz:StopResponse/>".to_owned()
            }
            "GetStatus" => {
                self.profile(request)?;
                let (x, y, moving) = self.status()?;
                let state = if moving { "MOVING" } else { "IDLE" };
                format!(
                    "<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>\
                     <tt:PanTilt x=\"{x:.4}\" y=\"{y:.4}\" space=\"http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace\"/>\
                     </tt:Position><tt:MoveStatus><tt:PanTilt>{state}</tt:PanTilt></tt:MoveStatus>\
                     <tt:UtcTime>{}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>",
                    rfc3339(now_utc())
                )
            }
            "SetPreset" => {
                self.profile(request)?;
                let (x, y, _) = self.status()?;
                let mut presets = self.presets.lock().unwrap_or_else(|p| p.into_inner());
                let token = text(request, "PresetToken")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("preset_{}", presets.len() + 1));
                let name = text(request, "PresetName").unwrap_or(&token).to_owned();
                if presets.len() >= 100 && !presets.contains_key(&token) {
                    return Err(fault("ter:TooManyPresets", "at most 100 presets"));
                }
                presets.insert(token.clone(), Preset { name, pan: x, tilt: y });
                format!(
                    "<tptz:SetPresetResponse><tptz:PresetToken>{}</tptz:PresetToken></tptz:SetPresetResponse>",
                    escape(&token)
                )
            }
            "GetPresets" => {
                self.profile(request)?;
                self.head()?;
                let presets = self.presets.lock().unwrap_or_else(|p| p.into_inner());
                let all: String = presets
                    .iter()
                    .map(|(token, p)| {
                        format!(
                            "<tptz:Preset token=\"{}\"><tt:Name>{}</tt:Name><tt:PTZPosition>\
                             <tt:PanTilt x=\"{:.4}\" y=\"{:.4}\"/></tt:PTZPosition></tptz:Preset>",
                            escape(token),
                            escape(&p.name),
                            p.pan,
                            p.tilt
                        )
                    })
                    .collect();
                format!("<tptz:GetPresetsResponse>{all}</tptz:GetPresetsResponse>")
            }
            "GotoPreset" => {
                self.profile(request)?;
                let token = text(request, "PresetToken").unwrap_or_default();
                let preset = self
                    .presets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(token)
                    .cloned()
                    .ok_or_else(|| fault("ter:NoToken", "no such preset"))?;
                self.go_to(preset.pan, preset.tilt)?;
                "<tptz:GotoPresetResponse/>".to_owned()
            }
            "RemovePreset" => {
                self.profile(request)?;
                let token = text(request, "PresetToken").unwrap_or_default();
                self.presets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(token)
                    .ok_or_else(|| fault("ter:NoToken", "no such preset"))?;
                "<tptz:RemovePresetResponse/>".to_owned()
            }
            "GotoHomePosition" => {
                self.profile(request)?;
                let (x, y) = *self.home.lock().unwrap_or_else(|p| p.into_inner());
                self.go_to(x, y)?;
                "<tptz:GotoHomePositionResponse/>".to_owned()
            }
            "SetHomePosition" => {
                self.profile(request)?;
                let (x, y, _) = self.status()?;
                *self.home.lock().unwrap_or_else(|p| p.into_inner()) = (x, y);
                "<tptz:SetHomePositionResponse/>".to_owned()
            }
            other => {
                return Err(Fault {
                    status: StatusCode::BAD_REQUEST,
                    code: "env:Receiver",
                    subcode: "ter:ActionNotSupported",
                    reason: format!("{other} is not supported"),
                });
            }
        })
    }
}
