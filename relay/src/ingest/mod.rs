//! Ingest: the relay's RTSP client (retina), pulling H.264 (or H.265) from a camera directly
//! or through an agent's tunnel, and handing on whole frames in Annex B form with the
//! parameter sets (SPS, PPS; and VPS for H.265) put before every keyframe, as decoders need
//! them; and, in its own session while someone listens, the camera's sound ([`sound`]).

mod direct;
pub mod frames;
pub mod h264;
pub mod h265;
pub mod sound;
pub mod transport;

pub use direct::direct_connection;

use crate::config::RtspTransport;
use crate::error::{Error, ErrorKind};
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, ParametersRef};
use std::pin::Pin;

/// One coded picture.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The RTP timestamp, in 90 kHz ticks since the stream started.
    pub timestamp: i64,
    /// A keyframe: decoding can start here (the parameter sets come first in `data`).
    pub is_key: bool,
    /// Annex B: NAL units with start codes. Shared, not copied, by every viewer.
    pub data: bytes::Bytes,
    /// `data` cut into RTP payloads, once for all viewers (each viewer adds its own headers).
    pub rtp_payloads: Vec<bytes::Bytes>,
    /// When the relay had the whole frame (for the relay's own added latency).
    pub received: std::time::Instant,
    /// Which RTSP session of the camera this frame came from: timestamps restart with each
    /// (set by the feed; 0 from `Ingest`).
    pub epoch: u64,
}

/// The codecs the relay reads cameras' video in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraVideo {
    /// Passed through to browsers.
    H264,
    /// Passed through to browsers that take it; transcoded to H.264 for the others
    /// (`fanout::transcoded`).
    H265,
}

impl CameraVideo {
    /// The encoding name in a camera's SDP (and a clip's codec in the API).
    pub fn encoding_name(self) -> &'static str {
        match self {
            CameraVideo::H264 => "h264",
            CameraVideo::H265 => "h265",
        }
    }
}

/// The codec of the video `url` describes: H.264 if the camera offers it, else H.265. A
/// DESCRIBE only: nothing is set up.
pub async fn describe_video(
    url: &str,
    credentials: Option<(String, String)>,
) -> Result<CameraVideo, Error> {
    let url = url::Url::parse(url).map_err(|e| Error::bad_request(format!("camera URL: {e}")))?;
    let session = Session::describe(url, session_options(credentials))
        .await
        .map_err(rtsp_error("DESCRIBE"))?;
    let stream = pick_video(session.streams(), CameraVideo::H264)?;
    Ok(video_of(&session.streams()[stream]))
}

/// The video stream to play: the first in `prefer`red codec, else in the other.
fn pick_video(streams: &[retina::client::Stream], prefer: CameraVideo) -> Result<usize, Error> {
    let video = |codec: CameraVideo| {
        streams
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name() == codec.encoding_name())
    };
    let other = match prefer {
        CameraVideo::H264 => CameraVideo::H265,
        CameraVideo::H265 => CameraVideo::H264,
    };
    video(prefer).or_else(|| video(other)).ok_or_else(|| {
        Error::new(
            ErrorKind::FailedPrecondition,
            "the camera offers neither H.264 nor H.265 video",
        )
    })
}

fn video_of(stream: &retina::client::Stream) -> CameraVideo {
    match stream.encoding_name() {
        "h265" => CameraVideo::H265,
        _ => CameraVideo::H264,
    }
}

fn session_options(credentials: Option<(String, String)>) -> SessionOptions {
    SessionOptions::default()
        .user_agent(format!("eyeward-relay {}", env!("CARGO_PKG_VERSION")))
        .creds(credentials.map(|(username, password)| Credentials { username, password }))
}

/// A playing RTSP session of one camera's video.
pub struct Ingest {
    session: Pin<Box<Demuxed>>,
    stream: usize,
    /// What the camera sends.
    pub video: CameraVideo,
    /// The parameter sets in Annex B form, from the SDP or in-band.
    parameter_sets: Vec<u8>,
}

fn rtsp_error(what: &str) -> impl FnOnce(retina::Error) -> Error + '_ {
    // retina's messages carry the URL it was given; ours never holds credentials (they go
    // in `Credentials`), so they are safe to pass on.
    move |e| Error::new(ErrorKind::FailedPrecondition, format!("camera {what}: {e}"))
}

/// DESCRIBE, SETUP of the one stream `pick` chooses of those the camera describes (RTP
/// interleaved over the RTSP TCP connection, or over UDP), and PLAY.
async fn play_one(
    url: &str,
    credentials: Option<(String, String)>,
    transport: RtspTransport,
    pick: impl FnOnce(&[retina::client::Stream]) -> Result<usize, Error>,
) -> Result<(Pin<Box<Demuxed>>, usize), Error> {
    let url = url::Url::parse(url).map_err(|e| Error::bad_request(format!("camera URL: {e}")))?;
    let mut session = Session::describe(url, session_options(credentials))
        .await
        .map_err(rtsp_error("DESCRIBE"))?;
    let stream = pick(session.streams())?;
    let transport = match transport {
        RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    session
        .setup(stream, SetupOptions::default().transport(transport))
        .await
        .map_err(rtsp_error("SETUP"))?;
    let session = session
        .play(PlayOptions::default())
        .await
        .map_err(rtsp_error("PLAY"))?
        .demuxed()
        .map_err(rtsp_error("demuxer"))?;
    Ok((Box::pin(session), stream))
}

impl Ingest {
    /// Plays the camera's video, H.264 if it offers it, else H.265 (see [`play_one`]).
    pub async fn connect(
        url: &str,
        credentials: Option<(String, String)>,
        transport: RtspTransport,
    ) -> Result<Ingest, Error> {
        Ingest::connect_preferring(url, credentials, transport, CameraVideo::H264).await
    }

    /// Plays the camera's video in the codec `prefer`red if it offers it, else in the other.
    pub async fn connect_preferring(
        url: &str,
        credentials: Option<(String, String)>,
        transport: RtspTransport,
        prefer: CameraVideo,
    ) -> Result<Ingest, Error> {
        let (session, stream) = play_one(url, credentials, transport, |streams| {
            pick_video(streams, prefer)
        })
        .await?;
        let video = video_of(&session.streams()[stream]);
        let mut ingest = Ingest {
            session,
            stream,
            video,
            parameter_sets: Vec::new(),
        };
        ingest.refresh_parameters();
        Ok(ingest)
    }

    /// Re-reads SPS/PPS after the camera announced new ones (or at start, from the SDP).
    fn refresh_parameters(&mut self) {
        let from_record = match self.video {
            CameraVideo::H264 => h264::parameter_sets_from_avcc,
            CameraVideo::H265 => h265::parameter_sets_from_hvcc,
        };
        if let Some(ParametersRef::Video(v)) = self.session.streams()[self.stream].parameters()
            && let Some(ps) = from_record(v.extra_data())
        {
            self.parameter_sets = ps;
        }
    }

    /// The next frame; `None` when the camera ended the session.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        loop {
            let item = match self.session.next().await {
                None => return Ok(None),
                Some(item) => item.map_err(rtsp_error("stream"))?,
            };
            let CodecItem::VideoFrame(f) = item else {
                continue;
            };
            if f.has_new_parameters() {
                self.refresh_parameters();
            }
            let is_key = match self.video {
                CameraVideo::H264 => f.is_random_access_point(),
                CameraVideo::H265 => h265::is_random_access(f.data()),
            };
            let mut data = Vec::with_capacity(f.data().len() + self.parameter_sets.len() + 16);
            if is_key {
                data.extend_from_slice(&self.parameter_sets);
            }
            let malformed = |e| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    format!("camera sent a malformed frame: {e}"),
                )
            };
            let to_annex_b = match self.video {
                CameraVideo::H264 => h264::avcc_to_annex_b,
                CameraVideo::H265 => h265::hvcc_to_annex_b,
            };
            to_annex_b(f.data(), &mut data).map_err(malformed)?;
            let data = bytes::Bytes::from(data);
            let rtp_payloads = match self.video {
                CameraVideo::H264 => h264::rtp_payloads(&data),
                CameraVideo::H265 => h265::rtp_payloads(&data),
            }
            .map_err(malformed)?;
            return Ok(Some(Frame {
                timestamp: f.timestamp().elapsed(),
                is_key,
                rtp_payloads,
                data,
                received: eyeward::clock::monotonic(),
                epoch: 0,
            }));
        }
    }
}
