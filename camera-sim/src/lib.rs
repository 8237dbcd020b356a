//! # eyeward-camera-sim
//!
//! The camera simulator: a virtual fixed or pan-tilt camera served over RTSP by
//! gst-rtsp-server, with its ONVIF service ([`onvif`]), so the demo, the tests and the
//! benchmarks have real H.264 (or H.265) cameras, with sound and a speaker if asked. A test double: the agent carries it only in its
//! default build (`eyeward-agent simulate`, `sim://` cameras); a build for a camera leaves it
//! out (`--no-default-features`).
//!
//! Frames are drawn by [`scene`] (plain code), pushed into an `appsrc` at the configured rate,
//! stamped with a live clock, encoded by x264 (or x265) like a camera's own encoder (constrained
//! baseline or main, no B-frames, a keyframe every few seconds) and packetized for RTSP
//! clients. One encoder is shared by all clients of the simulator.

pub mod backchannel;
pub mod clips;
pub mod command;
mod error;
pub mod onvif;
pub mod scene;

pub use error::Error;
use eyeward::CameraModel;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use gstreamer_video as gst_video;
use scene::{MotionScript, PanTilt, PanTiltLimits, Scene};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a simulated camera looks and encodes.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub model: CameraModel,
    /// Where to serve RTSP; port 0 picks a free one.
    pub listen: SocketAddr,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Time between keyframes (a real camera's GOP; 4 s is common).
    pub keyframe_interval: Duration,
    /// A new RTSP session waits for the encoder's next keyframe, as with many real cameras
    /// (their encoder runs on its own schedule and ignores a client's wish for one). Off, a
    /// new session starts with a keyframe at once.
    pub keyframes_on_schedule: bool,
    pub bitrate_kbps: u32,
    /// Sensor grain in luma levels (0: a clean picture). Grain makes the encoder spend its
    /// whole bitrate, as a busy or dim scene does.
    pub grain: u8,
    /// RTSP credentials clients must give (Digest), as real cameras ask.
    pub credentials: Option<(String, String)>,
    pub script: MotionScript,
    /// The camera's microphone, as a second RTSP stream: a [`TONE_HZ`] tone in this codec.
    pub audio: Option<AudioCodec>,
    /// Sync marks: every [`SYNC_MARK_EVERY`] on the scene's clock, for [`SYNC_MARK_LENGTH`],
    /// a white square in the picture's top-left corner and the tone, together; a black
    /// square and silence between. What a test measures sound against pictures by.
    pub sync_marks: bool,
    /// A speaker: an ONVIF back-channel in this codec, which reports what it hears
    /// ([`backchannel`]).
    pub backchannel: Option<backchannel::SpeakerCodec>,
    /// The video's codec: H.264, or H.265 as many cameras sold today send.
    pub video: VideoCodec,
}

/// The codecs the simulated camera encodes its video in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    /// H.264 constrained baseline (x264), RFC 6184.
    #[default]
    H264,
    /// H.265 main (x265), RFC 7798.
    H265,
}

impl std::str::FromStr for VideoCodec {
    type Err = Error;

    fn from_str(s: &str) -> Result<VideoCodec, Error> {
        match s {
            "h264" => Ok(VideoCodec::H264),
            "h265" => Ok(VideoCodec::H265),
            other => Err(Error::Config(format!(
                "video codec {other:?}: h264 or h265"
            ))),
        }
    }
}

impl VideoCodec {
    /// The pipeline's encoder (named `enc`), like a camera's own: real time, no B-frames, a
    /// keyframe every `gop` frames, at `kbps`; then the RTP payloader `pay0`, with the
    /// parameter sets before every keyframe.
    fn launch(self, kbps: u32, gop: f64) -> String {
        match self {
            VideoCodec::H264 => format!(
                "x264enc name=enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} \
                   key-int-max={gop} \
                 ! video/x-h264,profile=constrained-baseline \
                 ! rtph264pay name=pay0 pt=96 config-interval=-1"
            ),
            VideoCodec::H265 => format!(
                "x265enc name=enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} \
                   key-int-max={gop} \
                 ! video/x-h265,profile=main \
                 ! rtph265pay name=pay0 pt=96 config-interval=-1"
            ),
        }
    }
}

/// How often a sync mark comes.
pub const SYNC_MARK_EVERY: Duration = Duration::from_secs(2);
/// How long a sync mark lasts.
pub const SYNC_MARK_LENGTH: Duration = Duration::from_millis(200);
/// The sync mark's square: its side in pixels, from the top-left corner.
pub const SYNC_MARK_SIDE: usize = 128;

/// Whether scene time `t` falls in a sync mark.
fn in_sync_mark(t: Duration) -> bool {
    t.as_nanos() % SYNC_MARK_EVERY.as_nanos() < SYNC_MARK_LENGTH.as_nanos()
}

/// The codecs IP cameras send sound in: G.711 (µ-law or A-law, 8 kHz) and AAC; and Speex,
/// which a few old cameras send and the relay does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    Aac,
    Speex,
}

impl std::str::FromStr for AudioCodec {
    type Err = Error;

    fn from_str(s: &str) -> Result<AudioCodec, Error> {
        match s {
            "pcmu" => Ok(AudioCodec::Pcmu),
            "pcma" => Ok(AudioCodec::Pcma),
            "aac" => Ok(AudioCodec::Aac),
            "speex" => Ok(AudioCodec::Speex),
            other => Err(Error::Config(format!(
                "audio codec {other:?}: pcmu, pcma, aac or speex"
            ))),
        }
    }
}

impl AudioCodec {
    /// Samples a second: G.711's 8 kHz; AAC and Speex at 16 kHz, as cameras' microphones.
    fn rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::Aac | AudioCodec::Speex => 16_000,
        }
    }

    /// The stream's branch of the simulator's pipeline: the tone (pushed by [`push_tone`]:
    /// a live source that, unlike `audiotestsrc`, cannot seek, as the video's cannot),
    /// encoded and packetized as a camera does (RFC 3551 payload types for G.711, RFC 3640
    /// AAC-hbr for AAC).
    fn launch(self) -> String {
        let encode = match self {
            AudioCodec::Pcmu => "mulawenc ! rtppcmupay name=pay1 pt=0",
            AudioCodec::Pcma => "alawenc ! rtppcmapay name=pay1 pt=8",
            AudioCodec::Aac => "avenc_aac bitrate=32000 ! aacparse ! rtpmp4gpay name=pay1 pt=97",
            AudioCodec::Speex => "speexenc ! rtpspeexpay name=pay1 pt=98",
        };
        format!(
            "appsrc name=mic is-live=true do-timestamp=true format=time block=true max-buffers=5 \
               caps=audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels=1 \
             ! queue max-size-buffers=5 leaky=downstream ! audioconvert ! {encode}",
            rate = self.rate()
        )
    }
}

/// The frequency of the simulated microphone's tone: tests find it in what the browser plays.
pub const TONE_HZ: u32 = 880;

impl SimulatorConfig {
    /// A 1280×720, 15 fps camera with a keyframe every 4 s on 127.0.0.1:8554, and an
    /// intruder crossing every 20 s, 5 s after start.
    pub fn new(model: CameraModel) -> SimulatorConfig {
        SimulatorConfig {
            model,
            listen: SocketAddr::from(([127, 0, 0, 1], 8554)),
            width: 1280,
            height: 720,
            fps: 15,
            keyframe_interval: Duration::from_secs(4),
            keyframes_on_schedule: false,
            bitrate_kbps: 2000,
            grain: 0,
            credentials: None,
            script: MotionScript {
                offset: Duration::from_secs(5),
                every: Some(Duration::from_secs(20)),
                crossing: Duration::from_secs(4),
            },
            audio: None,
            sync_marks: false,
            backchannel: None,
            video: VideoCodec::H264,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if !(16..=3840).contains(&self.width) || !(16..=2160).contains(&self.height) {
            return bad("simulated picture size must be 16×16 to 3840×2160");
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return bad("simulated picture width and height must be even");
        }
        if !(1..=60).contains(&self.fps) {
            return bad("simulated frame rate must be 1 to 60 fps");
        }
        if self.keyframe_interval.is_zero() || self.keyframe_interval > Duration::from_secs(60) {
            return bad("keyframe interval must be between 0 and 60 s");
        }
        if !(50..=50_000).contains(&self.bitrate_kbps) {
            return bad("bitrate must be 50 to 50000 kbit/s");
        }
        Ok(())
    }
}

/// What the frame pushers share: the scene, its clock, and the pan-tilt head.
struct World {
    scene: Scene,
    started: Instant,
    head: Option<Mutex<PanTilt>>,
    fps: u32,
    /// Keyframes fall on multiples of this on the scene's clock (`keyframes_on_schedule`).
    keyframe_schedule: Option<Duration>,
    sync_marks: bool,
}

impl World {
    fn frame(&self) -> Vec<u8> {
        let t = self.started.elapsed();
        let mut picture = match &self.head {
            Some(head) => {
                let mut head = head.lock().unwrap_or_else(|p| p.into_inner());
                head.advance(t);
                self.scene.render(t, Some(&head))
            }
            None => self.scene.render(t, None),
        };
        if self.sync_marks {
            mark(&mut picture, in_sync_mark(t));
        }
        picture.to_i420()
    }
}

/// Paints the sync mark's square: white during a mark, black between.
fn mark(picture: &mut scene::Picture, on: bool) {
    let side = SYNC_MARK_SIDE.min(picture.width).min(picture.height);
    let luma = if on { 235 } else { 16 };
    for row in picture.y.chunks_mut(picture.width).take(side) {
        row[..side].fill(luma);
    }
    let chroma_width = picture.width / 2;
    for plane in [&mut picture.u, &mut picture.v] {
        for row in plane.chunks_mut(chroma_width).take(side / 2) {
            row[..side / 2].fill(128);
        }
    }
}

/// A running simulated camera. Dropping it stops the server.
pub struct Simulator {
    url: String,
    world: Arc<World>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts serving at `rtsp://<listen>/live`.
    pub fn start(config: SimulatorConfig) -> Result<Simulator, Error> {
        config.validate()?;
        gst::init().map_err(|e| Error::Media(format!("init: {e}")))?;
        let pan_tilt = config.model == CameraModel::PanTilt;
        let world = Arc::new(World {
            scene: Scene::new(
                config.width as usize,
                config.height as usize,
                pan_tilt,
                config.script,
            )
            .with_grain(config.grain, rand::random()),
            started: Instant::now(),
            head: pan_tilt.then(|| Mutex::new(PanTilt::new(PanTiltLimits::default()))),
            fps: config.fps,
            keyframe_schedule: config
                .keyframes_on_schedule
                .then_some(config.keyframe_interval),
            sync_marks: config.sync_marks,
        });
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (world, main_loop, config) = (world.clone(), main_loop.clone(), config.clone());
            std::thread::Builder::new()
                .name("rtsp-sim".into())
                .spawn(move || {
                    let served = context.with_thread_default(|| {
                        let server = serve(&config, &world, &context);
                        let ok = server.is_ok();
                        let _ = ready_tx.send(
                            server
                                .as_ref()
                                .map(|(_, port)| *port)
                                .map_err(|e| e.to_string()),
                        );
                        if ok {
                            main_loop.run();
                        }
                        server
                    });
                    // The server and its sources live until the loop ends.
                    drop(served);
                })
                .map_err(Error::io("starting the simulator thread"))?
        };
        let port = ready_rx
            .recv()
            .map_err(|_| Error::Media("simulator thread ended early".into()))?
            .map_err(Error::Media)?;
        Ok(Simulator {
            url: format!("rtsp://{}:{port}/live", config.listen.ip()),
            world,
            main_loop,
            thread: Some(thread),
        })
    }

    /// The camera's URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Seconds of scene time: the motion script runs on this clock.
    pub fn scene_time(&self) -> Duration {
        self.world.started.elapsed()
    }

    /// Runs `f` on the pan-tilt head (at the current scene time); `None` for a fixed camera.
    pub fn with_head<R>(&self, f: impl FnOnce(&mut PanTilt, Duration) -> R) -> Option<R> {
        self.head().map(|h| h.with(f))
    }

    /// A handle on the pan-tilt head that other threads keep (the ONVIF service); `None` for
    /// a fixed camera.
    pub fn head(&self) -> Option<Head> {
        self.world.head.is_some().then(|| Head(self.world.clone()))
    }
}

/// The simulated pan-tilt head, shared.
#[derive(Clone)]
pub struct Head(Arc<World>);

impl Head {
    /// Runs `f` on the head at the current scene time.
    pub fn with<R>(&self, f: impl FnOnce(&mut PanTilt, Duration) -> R) -> R {
        let head = self
            .0
            .head
            .as_ref()
            .expect("a Head exists for pan-tilt cameras only");
        let mut head = head.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut head, self.0.started.elapsed())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Quit from inside the loop: a quit sent before the thread has entered `run` would be
        // forgotten, and the join below would wait for ever.
        let main_loop = self.main_loop.clone();
        self.main_loop.context().invoke(move || main_loop.quit());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Builds the server on the current thread's default context; returns it and its port.
fn serve(
    config: &SimulatorConfig,
    world: &Arc<World>,
    context: &glib::MainContext,
) -> Result<((rtsp::RTSPServer, glib::SourceId, glib::SourceId), u16), Error> {
    // A camera with a speaker is an ONVIF server (which understands the back-channel's
    // `Require`); one without answers that `Require` with 551, as such cameras do.
    let (server, factory) = match config.backchannel {
        Some(codec) => {
            let factory = rtsp::RTSPOnvifMediaFactory::new();
            factory.set_backchannel_launch(Some(&codec.launch()));
            // The ONVIF factory makes ONVIF media only (and none at all otherwise).
            factory.set_media_gtype(rtsp::RTSPOnvifMedia::static_type());
            (
                rtsp::RTSPOnvifServer::new().upcast::<rtsp::RTSPServer>(),
                factory.upcast::<rtsp::RTSPMediaFactory>(),
            )
        }
        None => (rtsp::RTSPServer::new(), rtsp::RTSPMediaFactory::new()),
    };
    server.set_address(&config.listen.ip().to_string());
    server.set_service(&config.listen.port().to_string());
    let gop = (config.keyframe_interval.as_secs_f64() * f64::from(config.fps))
        .round()
        .max(1.0);
    factory.set_launch(&format!(
        "( appsrc name=src is-live=true do-timestamp=true format=time block=true max-buffers=3 \
             caps=video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
           ! queue max-size-buffers=2 leaky=downstream \
           ! clockoverlay time-format=\"%Y-%m-%d %H:%M:%S\" halignment=right valignment=top \
               font-desc=\"Sans 18\" shaded-background=true \
           ! {encode} {audio} )",
        w = config.width,
        h = config.height,
        fps = config.fps,
        encode = config.video.launch(config.bitrate_kbps, gop),
        audio = config.audio.map(AudioCodec::launch).unwrap_or_default(),
    ));
    // One encoder for every client, as one camera has one.
    factory.set_shared(true);
    let world_for_media = world.clone();
    let audio = config.audio;
    factory.connect_media_configure(move |_, media| {
        let Some(src) = media
            .element()
            .downcast::<gst::Bin>()
            .ok()
            .and_then(|bin| bin.by_name_recurse_up("src"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            tracing::error!("simulator pipeline has no appsrc");
            return;
        };
        if world_for_media.keyframe_schedule.is_some() {
            ignore_keyframe_requests(media);
        }
        // A client that asked for the back-channel: what it sends is measured.
        if let Some(speaker) = media
            .element()
            .downcast::<gst::Bin>()
            .ok()
            .and_then(|bin| bin.by_name_recurse_up("speaker"))
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        {
            backchannel::listen(&speaker);
        }
        let world = world_for_media.clone();
        // The frame thread ends with the media (its last client left).
        let ended = Arc::new(AtomicBool::new(false));
        let ended_for_signal = ended.clone();
        media.connect_unprepared(move |_| ended_for_signal.store(true, Ordering::Relaxed));
        let mic = audio.zip(
            media
                .element()
                .downcast::<gst::Bin>()
                .ok()
                .and_then(|bin| bin.by_name_recurse_up("mic"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok()),
        );
        if let Some((codec, mic)) = mic {
            let ended = ended.clone();
            let marks = world.sync_marks.then_some(world.started);
            if let Err(e) = std::thread::Builder::new()
                .name("rtsp-sim-tone".into())
                .spawn(move || push_tone(&mic, codec.rate(), marks, &ended))
            {
                tracing::error!(error = %e, "cannot start the tone thread");
            }
        }
        if let Err(e) = std::thread::Builder::new()
            .name("rtsp-sim-frames".into())
            .spawn(move || push_frames(&src, &world, &ended))
        {
            tracing::error!(error = %e, "cannot start the frame thread");
        }
    });
    if let Some((user, password)) = &config.credentials {
        let auth = rtsp::RTSPAuth::new();
        let token = rtsp::RTSPToken::builder()
            .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
            .build();
        // Digest, as IP cameras ask for: the password never crosses the wire.
        auth.add_digest(user, password, &token);
        auth.set_supported_methods(gstreamer_rtsp_server::gst_rtsp::RTSPAuthMethod::Digest);
        server.set_auth(Some(&auth));
        factory.add_role_from_structure(
            &gst::Structure::builder("camera-user")
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build(),
        );
    }
    server
        .mount_points()
        .ok_or_else(|| Error::Media("no mount points".into()))?
        .add_factory("/live", factory);
    let source = server
        .attach(Some(context))
        .map_err(|e| Error::Media(format!("cannot listen on {}: {e}", config.listen)))?;
    // Sessions of clients that vanished are reaped only when asked to.
    let pool = server.session_pool();
    let cleanup = glib::timeout_source_new(
        Duration::from_secs(2),
        None,
        glib::Priority::DEFAULT,
        move || {
            if let Some(pool) = &pool {
                pool.cleanup();
            }
            glib::ControlFlow::Continue
        },
    )
    .attach(Some(context));
    let port = u16::try_from(server.bound_port())
        .map_err(|_| Error::Media(format!("cannot listen on {}", config.listen)))?;
    Ok(((server, source, cleanup), port))
}

/// Keeps clients' requests for a keyframe (a new session's, or a receiver's after loss)
/// from the encoder, which then makes one only on its schedule.
fn ignore_keyframe_requests(media: &rtsp::RTSPMedia) {
    let Some(pad) = media
        .element()
        .downcast::<gst::Bin>()
        .ok()
        .and_then(|bin| bin.by_name_recurse_up("enc"))
        .and_then(|enc| enc.static_pad("src"))
    else {
        tracing::error!("simulator pipeline has no encoder");
        return;
    };
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, |_, info| {
        match info.event() {
            Some(e) if gst_video::ForceKeyUnitEvent::is(e) => gst::PadProbeReturn::Drop,
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// Sleeps until the next multiple of `every` on the scene's clock.
fn sleep_until_next(world: &World, every: Duration) {
    let now = world.started.elapsed();
    let every_ns = every.as_nanos().max(1);
    let next = Duration::from_nanos((now.as_nanos().div_ceil(every_ns) * every_ns) as u64);
    std::thread::sleep(next.saturating_sub(now));
}

/// Pushes frames at the configured rate until the pipeline stops taking them. With keyframes
/// on a schedule, the encoder starts (with a keyframe, as encoders do) at the schedule's next
/// keyframe, and every `key-int-max` frames after stays on it: a new media's first client
/// waits for it as a real camera's does.
/// Samples of the microphone's tone pushed at a time: 20 ms, as a camera's audio frames.
const TONE_CHUNK: Duration = Duration::from_millis(20);

/// Pushes the [`TONE_HZ`] tone into `src`, 16-bit mono at `rate`, in real time, until the
/// media ends.
fn push_tone(src: &gst_app::AppSrc, rate: u32, marks: Option<Instant>, ended: &AtomicBool) {
    let per_chunk = (u64::from(rate) * TONE_CHUNK.as_millis() as u64 / 1000) as usize;
    let start = Instant::now();
    let mut n: u32 = 0;
    let mut sample: u64 = 0;
    while !ended.load(Ordering::Relaxed) {
        if src.current_state() == gst::State::Playing {
            let mut pcm = Vec::with_capacity(per_chunk * 2);
            // With sync marks, the tone sounds only during them, on the scene's clock (as
            // the pictures' marks are drawn), from when this chunk is pushed.
            let chunk_at = marks.map(|scene| scene.elapsed());
            for i in 0..per_chunk {
                let t = sample as f64 / f64::from(rate);
                let offset = Duration::from_secs(i as u64) / rate;
                let loud = chunk_at.is_none_or(|at| in_sync_mark(at + offset));
                let gain = if loud { 0.3 } else { 0.0 };
                let v = (t * f64::from(TONE_HZ) * std::f64::consts::TAU).sin() * gain;
                pcm.extend_from_slice(&((v * f64::from(i16::MAX)) as i16).to_le_bytes());
                sample += 1;
            }
            if src.push_buffer(gst::Buffer::from_mut_slice(pcm)).is_err() {
                return;
            }
        }
        wait_for_next(start, TONE_CHUNK, &mut n);
    }
}

/// Sleeps until the `n + 1`th `period` after `start`, keeping to the wall clock: what is
/// late is not made up for by a burst.
fn wait_for_next(start: Instant, period: Duration, n: &mut u32) {
    *n = n.wrapping_add(1);
    let due = start + period * *n;
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    } else {
        *n = ((now - start).as_nanos() / period.as_nanos()) as u32;
    }
}

fn push_frames(src: &gst_app::AppSrc, world: &World, ended: &AtomicBool) {
    let period = Duration::from_secs(1) / world.fps;
    if let Some(every) = world.keyframe_schedule {
        sleep_until_next(world, every);
    }
    let start = Instant::now();
    let mut n: u32 = 0;
    while !ended.load(Ordering::Relaxed) {
        // A live source's frames are stamped with the running time when pushed, which means
        // nothing until the pipeline plays: frames pushed before would be due hours later
        // and hold up every frame after them.
        if src.current_state() == gst::State::Playing {
            let buffer = gst::Buffer::from_mut_slice(world.frame());
            if src.push_buffer(buffer).is_err() {
                // Flushing or EOS: the last client left and the media is going away.
                return;
            }
        }
        wait_for_next(start, period, &mut n);
    }
}
