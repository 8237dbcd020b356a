//! Receive-only WebRTC viewers on loopback (webrtc-rs as the client), joined to eyeward over
//! WHEP or to Janus's streaming plugin over its HTTP API. Each counts the RTP packets it
//! receives; an eyeward viewer may also send a microphone (talkback).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MIME_TYPE_OPUS;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

/// A webrtc-rs API for viewers that use loopback only (the tests' network).
pub fn loopback_api() -> Result<API> {
    local_api(&[IpAddr::from([127, 0, 0, 1])])
}

/// A webrtc-rs API for viewers whose host candidates are `addresses` only: this machine's,
/// so that no packet leaves it.
pub fn local_api(addresses: &[IpAddr]) -> Result<API> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    api_with(addresses, media)
}

/// A webrtc-rs API on loopback for viewers that take VP8 and no H.264 (as Firefox without its
/// OpenH264 plug-in), and Opus.
pub fn vp8_api() -> Result<API> {
    use webrtc::api::media_engine::MIME_TYPE_VP8;
    loopback_api_of(MIME_TYPE_VP8, "")
}

/// A webrtc-rs API on loopback for viewers that take H.264 (constrained baseline, mode 1) and
/// no H.265 (as Chromium without a hardware H.265 decoder), and Opus.
pub fn h264_api() -> Result<API> {
    use webrtc::api::media_engine::MIME_TYPE_H264;
    loopback_api_of(
        MIME_TYPE_H264,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    )
}

/// A webrtc-rs API on loopback whose viewers take one video codec (`mime_type`, with its
/// format parameters) and Opus.
fn loopback_api_of(mime_type: &str, fmtp: &str) -> Result<API> {
    use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecParameters;
    let mut media = MediaEngine::default();
    for (mime_type, fmtp, clock_rate, channels, payload_type, kind) in [
        (mime_type, fmtp, 90_000, 0, 96, RTPCodecType::Video),
        (MIME_TYPE_OPUS, "", 48_000, 2, 111, RTPCodecType::Audio),
    ] {
        let codec = RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: mime_type.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                ..Default::default()
            },
            payload_type,
            ..Default::default()
        };
        media.register_codec(codec, kind)?;
    }
    api_with(&[IpAddr::from([127, 0, 0, 1])], media)
}

/// A webrtc-rs API of `media` whose host candidates are `addresses` only.
fn api_with(addresses: &[IpAddr], mut media: MediaEngine) -> Result<API> {
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(addresses.iter().any(IpAddr::is_loopback));
    let addresses = addresses.to_vec();
    settings.set_ip_filter(Box::new(move |ip| addresses.contains(&ip)));
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build())
}

/// A viewer's microphone: an Opus track the caller writes 20 ms frames to (see
/// [`opus_second`]). Added to a peer connection, its audio section sends and receives.
pub fn microphone() -> Arc<TrackLocalStaticSample> {
    Arc::new(TrackLocalStaticSample::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        },
        "microphone".to_owned(),
        "bench".to_owned(),
    ))
}

/// A second of Opus frames (50 of 20 ms at 48 kHz), as a microphone's: a tone of `tone_hz`,
/// or silence.
pub async fn opus_second(tone_hz: Option<f64>) -> Result<Vec<bytes::Bytes>> {
    let mut encoder = eyeward_relay::transcode::OpusEncoder::new(
        "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1",
    )?;
    // A little more than a second, so that the encoder gives out fifty whole frames.
    let pcm: Vec<u8> = (0..52_000)
        .flat_map(|i| {
            let t = f64::from(i) / 48_000.0;
            let sample = tone_hz.map_or(0.0, |hz| (2.0 * std::f64::consts::PI * hz * t).sin());
            ((0.5 * 32767.0 * sample) as i16).to_le_bytes()
        })
        .collect();
    encoder.push(0, 48_000, &pcm)?;
    let mut frames = Vec::with_capacity(50);
    while frames.len() < 50 {
        let packet = tokio::time::timeout(Duration::from_secs(5), encoder.next())
            .await
            .context("the Opus encoder gave out too few frames")?
            .context("the Opus encoder ended")?;
        frames.push(packet.data);
    }
    Ok(frames)
}

/// A peer connection that receives one video track.
pub async fn recvonly(api: &API) -> Result<Arc<RTCPeerConnection>> {
    recvonly_with(api, RTCConfiguration::default()).await
}

/// A peer connection with `config` (ICE servers, a relay-only policy) that receives one
/// video track.
pub async fn recvonly_with(api: &API, config: RTCConfiguration) -> Result<Arc<RTCPeerConnection>> {
    let pc = Arc::new(api.new_peer_connection(config).await?);
    receive(&pc, RTPCodecType::Video).await?;
    Ok(pc)
}

/// Adds a receive-only transceiver of `kind` to `pc`.
async fn receive(pc: &RTCPeerConnection, kind: RTPCodecType) -> Result<()> {
    pc.add_transceiver_from_kind(
        kind,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            send_encodings: vec![],
        }),
    )
    .await?;
    Ok(())
}

/// Sets `description` locally and waits for ICE gathering (loopback: at once); returns the
/// SDP with its candidates.
async fn local_sdp(pc: &RTCPeerConnection, description: RTCSessionDescription) -> Result<String> {
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(description).await?;
    let _ = gathered.recv().await;
    Ok(pc.local_description().await.context("no local SDP")?.sdp)
}

/// The ICE servers of WHEP `Link` headers (`<turn:…>; rel="ice-server"; username="…";
/// credential="…"`), as a WebRTC configuration takes them.
pub fn ice_servers(links: &[String]) -> Vec<RTCIceServer> {
    links
        .iter()
        .filter(|l| l.contains("rel=\"ice-server\""))
        .filter_map(|l| {
            let url = l.strip_prefix('<')?.split('>').next()?;
            let param = |name: &str| {
                l.split(';')
                    .filter_map(|p| p.trim().strip_prefix(name)?.strip_prefix("=\""))
                    .find_map(|v| v.strip_suffix('"'))
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(RTCIceServer {
                urls: vec![url.to_owned()],
                username: param("username"),
                credential: param("credential"),
            })
        })
        .collect()
}

/// One joined viewer.
pub struct Viewer {
    pub pc: Arc<RTCPeerConnection>,
    /// The ICE servers the relay's answer named (its `Link` headers).
    pub ice_servers: Vec<RTCIceServer>,
    /// RTP packets and payload bytes received so far.
    received: Arc<[AtomicU64; 2]>,
    /// Where to end the session: a WHEP Location, or a Janus handle.
    leave: Leave,
}

enum Leave {
    Whep(String),
    Janus(u64),
}

impl Viewer {
    fn new(pc: Arc<RTCPeerConnection>, leave: Leave, ice_servers: Vec<RTCIceServer>) -> Viewer {
        let received: Arc<[AtomicU64; 2]> = Arc::default();
        let counter = received.clone();
        pc.on_track(Box::new(move |track, _, _| {
            let counter = counter.clone();
            Box::pin(async move {
                while let Ok((packet, _)) = track.read_rtp().await {
                    counter[0].fetch_add(1, Ordering::Relaxed);
                    counter[1].fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                }
            })
        }));
        Viewer {
            pc,
            ice_servers,
            received,
            leave,
        }
    }

    /// RTP packets received so far.
    pub fn packets(&self) -> u64 {
        self.received[0].load(Ordering::Relaxed)
    }

    /// RTP payload bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.received[1].load(Ordering::Relaxed)
    }

    /// The viewer's WHEP session (its Location), if it is eyeward's.
    pub fn location(&self) -> Option<&str> {
        match &self.leave {
            Leave::Whep(location) => Some(location),
            Leave::Janus(_) => None,
        }
    }
}

/// The relay's answer to a WHEP offer.
pub struct WhepAnswer {
    pub sdp: String,
    /// The session's resource, to end it.
    pub location: String,
    /// The `Link` headers (ICE servers).
    pub links: Vec<String>,
}

/// An eyeward customer's HTTP client.
pub struct Eyeward {
    http: reqwest::Client,
    base: String,
}

impl Eyeward {
    /// Logs in at `base` (`http://host:port`).
    pub async fn login(base: &str, email: &str, password: &str) -> Result<Eyeward> {
        Eyeward::login_with(base, email, password, Arc::default()).await
    }

    /// Logs in at `base` with cookies from `jar` (a load balancer's, say, that pins the
    /// client to one relay node).
    pub async fn login_with(
        base: &str,
        email: &str,
        password: &str,
        jar: Arc<reqwest::cookie::Jar>,
    ) -> Result<Eyeward> {
        let http = reqwest::Client::builder().cookie_provider(jar).build()?;
        let resp = http
            .post(format!("{base}/api/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("login: {}", resp.status());
        }
        Ok(Eyeward {
            http,
            base: base.to_owned(),
        })
    }

    /// Joins `camera` over WHEP: the viewer offers, the relay answers.
    pub async fn join(&self, api: &API, camera: i64) -> Result<Viewer> {
        self.join_with(api, camera, RTCConfiguration::default())
            .await
    }

    /// Joins `camera` over WHEP with a peer connection of `config` (e.g. TURN only).
    pub async fn join_with(
        &self,
        api: &API,
        camera: i64,
        config: RTCConfiguration,
    ) -> Result<Viewer> {
        let pc = recvonly_with(api, config).await?;
        self.offer(pc, camera).await
    }

    /// Joins `camera` over WHEP to receive its sound too (still silent: see
    /// [`Eyeward::listen`]).
    pub async fn join_with_sound(&self, api: &API, camera: i64) -> Result<Viewer> {
        let pc = recvonly(api).await?;
        receive(&pc, RTPCodecType::Audio).await?;
        self.offer(pc, camera).await
    }

    /// Joins `camera` over WHEP with a microphone: an Opus track the caller writes to, which
    /// the relay passes to the camera's speaker while the viewer talks ([`Eyeward::talk`]).
    pub async fn join_to_speak(
        &self,
        api: &API,
        camera: i64,
    ) -> Result<(Viewer, Arc<TrackLocalStaticSample>)> {
        let pc = recvonly(api).await?;
        let microphone = microphone();
        pc.add_track(microphone.clone()).await?;
        Ok((self.offer(pc, camera).await?, microphone))
    }

    /// Starts or stops the camera's sound in `viewer`'s session; the relay's answer.
    pub async fn listen(&self, viewer: &Viewer, on: bool) -> Result<Value> {
        self.ask_session(viewer, "sound", json!({ "listen": on }))
            .await
    }

    /// Starts or stops talking through the camera in `viewer`'s session; the relay's answer.
    pub async fn talk(&self, viewer: &Viewer, on: bool) -> Result<Value> {
        self.ask_session(viewer, "talk", json!({ "talk": on }))
            .await
    }

    /// POSTs `body` to `what` under `viewer`'s session; the relay's answer.
    async fn ask_session(&self, viewer: &Viewer, what: &str, body: Value) -> Result<Value> {
        let location = viewer.location().context("not an eyeward viewer")?;
        let resp = self
            .http
            .post(format!("{}{location}/{what}", self.base))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("{what} answered {}: {}", resp.status(), resp.text().await?);
        }
        Ok(resp.json().await?)
    }

    /// Offers from `pc` to `camera` over WHEP and applies the answer.
    async fn offer(&self, pc: Arc<RTCPeerConnection>, camera: i64) -> Result<Viewer> {
        let offer = pc.create_offer(None).await?;
        let sdp = local_sdp(&pc, offer).await?;
        let answer = self.whep(camera, sdp).await?;
        let viewer = Viewer::new(pc, Leave::Whep(answer.location), ice_servers(&answer.links));
        let answer = RTCSessionDescription::answer(answer.sdp)?;
        viewer.pc.set_remote_description(answer).await?;
        Ok(viewer)
    }

    /// Offers `offer` (SDP) to `camera` over WHEP; the relay's answer.
    pub async fn whep(&self, camera: i64, offer: String) -> Result<WhepAnswer> {
        let resp = self
            .http
            .post(format!("{}/api/cameras/{camera}/whep", self.base))
            .header("content-type", "application/sdp")
            .body(offer)
            .send()
            .await?;
        if resp.status() != 201 {
            bail!("WHEP answered {}: {}", resp.status(), resp.text().await?);
        }
        let location = resp
            .headers()
            .get("location")
            .context("no Location")?
            .to_str()?
            .to_owned();
        let links: Vec<String> = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        Ok(WhepAnswer {
            sdp: resp.text().await?,
            location,
            links,
        })
    }

    /// Ends the viewer's session (WHEP DELETE) and closes its peer connection.
    pub async fn leave(&self, viewer: Viewer) -> Result<()> {
        if let Leave::Whep(location) = &viewer.leave {
            self.end(location).await?;
        }
        viewer.pc.close().await?;
        Ok(())
    }

    /// Ends the WHEP session at `location`.
    pub async fn end(&self, location: &str) -> Result<()> {
        self.http
            .delete(format!("{}{location}", self.base))
            .send()
            .await?;
        Ok(())
    }

    /// The relay's Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?)
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A Janus session (HTTP API): many viewers (plugin handles) on one session, with a task
/// that long-polls its events and one that keeps it alive.
pub struct Janus {
    http: reqwest::Client,
    session: String,
    /// Handles waiting for their JSEP offer.
    pending: Pending,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Janus {
    /// Creates a session on the Janus at `base` (`http://host:port/janus`).
    pub async fn connect(base: &str) -> Result<Janus> {
        let http = reqwest::Client::new();
        let created = request(&http, base, json!({"janus": "create"})).await?;
        let id = created["data"]["id"].as_u64().context("session id")?;
        let session = format!("{base}/{id}");
        let pending: Pending = Arc::default();
        let poll = tokio::spawn(poll_events(http.clone(), session.clone(), pending.clone()));
        let keepalive = {
            let (http, session) = (http.clone(), session.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                    let _ = request(&http, &session, json!({"janus": "keepalive"})).await;
                }
            })
        };
        Ok(Janus {
            http,
            session,
            pending,
            tasks: vec![poll, keepalive],
        })
    }

    /// Joins streaming mountpoint `mountpoint`: attach, `watch`, answer Janus's offer,
    /// `start`.
    pub async fn join(&self, api: &API, mountpoint: u64) -> Result<Viewer> {
        let (handle_id, offer) = self.watch(mountpoint).await?;
        let offer = RTCSessionDescription::offer(offer)?;
        let pc = recvonly(api).await?;
        let viewer = Viewer::new(pc, Leave::Janus(handle_id), Vec::new());
        viewer.pc.set_remote_description(offer).await?;
        let answer = viewer.pc.create_answer(None).await?;
        let sdp = local_sdp(&viewer.pc, answer).await?;
        self.start(handle_id, sdp).await?;
        Ok(viewer)
    }

    /// Attaches a handle and asks to watch `mountpoint`: the handle and Janus's offer (SDP).
    pub async fn watch(&self, mountpoint: u64) -> Result<(u64, String)> {
        let attached = request(
            &self.http,
            &self.session,
            json!({"janus": "attach", "plugin": "janus.plugin.streaming"}),
        )
        .await?;
        let handle_id = attached["data"]["id"].as_u64().context("handle id")?;
        let handle = format!("{}/{handle_id}", self.session);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(handle_id, tx);
        request(
            &self.http,
            &handle,
            json!({"janus": "message", "body": {"request": "watch", "id": mountpoint}}),
        )
        .await?;
        let jsep = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .context("Janus sent no offer")??;
        Ok((handle_id, jsep["sdp"].as_str().context("sdp")?.to_owned()))
    }

    /// Answers handle `handle_id`'s offer with `answer` (SDP) and starts the stream.
    pub async fn start(&self, handle_id: u64, answer: String) -> Result<()> {
        request(
            &self.http,
            &format!("{}/{handle_id}", self.session),
            json!({"janus": "message", "body": {"request": "start"},
                   "jsep": {"type": "answer", "sdp": answer}}),
        )
        .await?;
        Ok(())
    }

    /// Detaches the viewer's handle and closes its peer connection.
    pub async fn leave(&self, viewer: Viewer) -> Result<()> {
        if let Leave::Janus(handle) = viewer.leave {
            self.detach(handle).await?;
        }
        viewer.pc.close().await?;
        Ok(())
    }

    /// Detaches handle `handle_id`.
    pub async fn detach(&self, handle_id: u64) -> Result<()> {
        request(
            &self.http,
            &format!("{}/{handle_id}", self.session),
            json!({"janus": "detach"}),
        )
        .await?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Value>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Posts a Janus request; fails unless Janus acknowledges or succeeds.
async fn request(http: &reqwest::Client, url: &str, mut body: Value) -> Result<Value> {
    body["transaction"] = json!(format!("{:016x}", rand_u64()));
    let reply: Value = http.post(url).json(&body).send().await?.json().await?;
    match reply["janus"].as_str() {
        Some("success" | "ack") => Ok(reply),
        _ => bail!("Janus refused {body}: {reply}"),
    }
}

/// Long-polls the session's events; hands each JSEP offer to the handle waiting for it.
async fn poll_events(http: reqwest::Client, session: String, pending: Pending) {
    let url = format!("{session}?maxev=20");
    loop {
        let Ok(resp) = http.get(&url).send().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(events) = resp.json::<Value>().await else {
            continue;
        };
        let events = match events {
            Value::Array(events) => events,
            event => vec![event],
        };
        for event in events {
            let (Some(sender), Some(jsep)) = (event["sender"].as_u64(), event.get("jsep")) else {
                continue;
            };
            let waiting = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&sender);
            if let Some(tx) = waiting {
                let _ = tx.send(jsep.clone());
            }
        }
    }
}

/// A transaction id: unique enough within one session.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}
