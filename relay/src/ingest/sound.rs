//! A camera's sound: its first audio stream, pulled in an RTSP session of its own (started
//! only while someone listens, so the video's session and its instant start stay as they
//! are), depacketized by retina. G.711 is handed on as it is: browsers play it. Other codecs
//! the relay can decode (AAC, G.722, L16) come with the GStreamer caps their frames need, to
//! be transcoded to Opus; anything else is refused with its name.

use super::{play_one, rtsp_error};
use crate::config::RtspTransport;
use crate::error::{Error, ErrorKind};
use futures_util::StreamExt;
use retina::client::{Demuxed, Stream};
use retina::codec::{CodecItem, ParametersRef};
use std::pin::Pin;
use std::time::Instant;

/// What the camera's sound is, as far as the relay is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundFormat {
    /// G.711 µ-law, 8 kHz: passed through.
    Pcmu,
    /// G.711 A-law, 8 kHz: passed through.
    Pcma,
    /// Decodable, to be transcoded: the codec's name and the caps of its frames.
    Transcoded { name: String, caps: String },
}

impl SoundFormat {
    fn is_aac(&self) -> bool {
        matches!(self, SoundFormat::Transcoded { name, .. } if name == "AAC")
    }
}

/// One frame of the camera's sound.
#[derive(Debug, Clone)]
pub struct SoundFrame {
    /// Ticks of the stream's clock since the session started.
    pub timestamp: i64,
    pub clock_rate: u32,
    pub data: bytes::Bytes,
    /// When its first sound was heard: when the relay had it, less the time the camera's
    /// encoder held it (a frame's length: a camera sends a frame once its last sample is in;
    /// three for AAC, with its priming). What the browser keeps sound and pictures in step by.
    pub received: Instant,
}

/// A playing RTSP session of one camera's sound.
pub struct SoundIngest {
    session: Pin<Box<Demuxed>>,
    pub format: SoundFormat,
    clock_rate: u32,
}

/// The format of an audio stream the relay can play, or why it cannot.
pub fn format_of(stream: &Stream) -> Result<SoundFormat, String> {
    let name = stream.encoding_name();
    let (rate, channels) = (
        stream.clock_rate_hz(),
        stream.channels().map_or(1, |c| c.get()),
    );
    let format = match name {
        "pcmu" if rate == 8000 && channels == 1 => SoundFormat::Pcmu,
        "pcma" if rate == 8000 && channels == 1 => SoundFormat::Pcma,
        "mpeg4-generic" => {
            let Some(ParametersRef::Audio(p)) = stream.parameters() else {
                return Err("AAC without its configuration".to_owned());
            };
            let config: String = p.extra_data().iter().map(|b| format!("{b:02x}")).collect();
            SoundFormat::Transcoded {
                name: "AAC".to_owned(),
                caps: format!(
                    "audio/mpeg,mpegversion=(int)4,stream-format=(string)raw,\
                     codec_data=(buffer){config},rate=(int){rate},channels=(int){}",
                    p.channels()
                ),
            }
        }
        "g722" => SoundFormat::Transcoded {
            name: "G.722".to_owned(),
            caps: "audio/G722,rate=(int)16000,channels=(int)1".to_owned(),
        },
        "l16" => SoundFormat::Transcoded {
            name: "L16".to_owned(),
            caps: format!(
                "audio/x-raw,format=(string)S16BE,layout=(string)interleaved,\
                 rate=(int){rate},channels=(int){channels}"
            ),
        },
        other => return Err(format!("{other} at {rate} Hz")),
    };
    Ok(format)
}

impl SoundIngest {
    /// Plays the camera's first audio stream; a camera with none, or with one the relay
    /// cannot decode, is refused with a reason for the listener.
    pub async fn connect(
        url: &str,
        credentials: Option<(String, String)>,
        transport: RtspTransport,
    ) -> Result<SoundIngest, Error> {
        let (mut described, mut chosen) = (false, None);
        let played = play_one(url, credentials, transport, |streams| {
            described = true;
            let (index, stream) = streams
                .iter()
                .enumerate()
                .find(|(_, s)| s.media() == "audio")
                .ok_or_else(no_sound)?;
            let format = format_of(stream).map_err(|codec| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    format!("the camera's sound is {codec}, which the relay cannot play"),
                )
            })?;
            chosen = Some((format, stream.clock_rate_hz()));
            Ok(index)
        })
        .await;
        // The relay's own refusals say why; the camera's or the network's failures, whose
        // words may quote the camera's path (and a camera may keep a password in its query),
        // are told in general words and kept as the cause for the log.
        let (session, _) = played.map_err(|e| {
            if described && chosen.is_none() {
                e
            } else {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    "the camera did not give its sound; trying again",
                )
                .with_source(e)
            }
        })?;
        let (format, clock_rate) = chosen.ok_or_else(no_sound)?;
        Ok(SoundIngest {
            session,
            format,
            clock_rate,
        })
    }

    /// The next frame; `None` when the camera ended the session.
    pub async fn next_frame(&mut self) -> Result<Option<SoundFrame>, Error> {
        loop {
            let item = match self.session.next().await {
                None => return Ok(None),
                Some(item) => item.map_err(rtsp_error("sound"))?,
            };
            let CodecItem::AudioFrame(f) = item else {
                continue;
            };
            // An AAC encoder looks a frame ahead as well (its transform overlaps frames): it
            // sends a frame two frames' time after its first sample. And its frames begin
            // with a frame of its priming that timestamps do not count (decoded, a sound
            // comes 1024 samples after the time its frame says; measured with GStreamer's
            // encoder and decoder), so what a frame holds was heard a frame before that.
            let frames = if self.format.is_aac() { 3 } else { 1 };
            let length = std::time::Duration::from_secs_f64(
                f64::from(f.frame_length().get() * frames) / f64::from(self.clock_rate.max(1)),
            );
            let now = eyeward::clock::monotonic();
            return Ok(Some(SoundFrame {
                timestamp: f.timestamp().elapsed(),
                clock_rate: self.clock_rate,
                data: bytes::Bytes::copy_from_slice(f.data()),
                received: now.checked_sub(length).unwrap_or(now),
            }));
        }
    }
}

fn no_sound() -> Error {
    Error::new(ErrorKind::FailedPrecondition, "the camera sends no sound")
}
