//! A camera's speaker, reached through its RTSP back-channel (ONVIF Streaming Specification,
//! Profile T): GStreamer's `rtspsrc` asks for it (`Require: www.onvif.org/ver20/backchannel`),
//! sets up only the camera's `sendonly` audio stream (never its video or microphone), and
//! sends what it is given over the RTSP connection. What the viewer says comes in as Opus
//! frames; one GStreamer pipeline decodes them and encodes them in the codec the camera's SDP
//! names for its speaker, packetized as RTP, which goes to `rtspsrc`.

use crate::error::{Error, ErrorKind};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the camera has to set its speaker up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Opus's clock, which the viewer's timestamps count in.
const OPUS_CLOCK_RATE: u32 = 48_000;

/// A playing back-channel to one camera's speaker. Dropping it ends the RTSP session.
pub struct Backchannel {
    source: gst::Pipeline,
    encoder: gst::Pipeline,
    input: gst_app::AppSrc,
    /// The codec the camera takes, as its SDP names it (PCMU, PCMA, G722, MPEG4-GENERIC).
    pub codec: String,
    /// The first speech timestamp, which the pipeline's time counts from.
    first: Option<u32>,
}

/// The back-channel stream `rtspsrc` found: its index and caps.
type Found = Arc<Mutex<Option<(u32, gst::Caps)>>>;

fn media_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        "the camera's speaker could not be reached",
    )
    .with_source(Error::internal(format!("{what}: {e}")))
}

fn no_backchannel() -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        "this camera has no speaker the relay can reach (no ONVIF audio back-channel)",
    )
}

impl Backchannel {
    /// Opens the back-channel of the camera at `url` (credentials apart: they never go in a
    /// URL that could be logged). Fails with 409's kind when the camera has none, or one in a
    /// codec the relay cannot send.
    pub async fn open(
        url: &str,
        credentials: Option<(String, String)>,
    ) -> Result<Backchannel, Error> {
        gst::init().map_err(|e| media_error("GStreamer", e))?;
        let source = gst::Pipeline::new();
        let rtspsrc = {
            let mut builder = gst::ElementFactory::make("rtspsrc")
                .property("location", url)
                .property("latency", 0u32)
                .property_from_str("backchannel", "onvif")
                .property_from_str("protocols", "tcp");
            if let Some((user, password)) = &credentials {
                builder = builder
                    .property("user-id", user)
                    .property("user-pw", password);
            }
            builder.build().map_err(|e| media_error("rtspsrc", e))?
        };
        let found: Found = Arc::default();
        let found_in_signal = found.clone();
        // Only the speaker's stream is set up: the camera's video and microphone are not
        // pulled again for this.
        rtspsrc.connect("select-stream", false, move |values| {
            let index = values.get(1).and_then(|v| v.get::<u32>().ok())?;
            let caps = values.get(2).and_then(|v| v.get::<gst::Caps>().ok())?;
            let speaker = caps.structure(0).is_some_and(|s| s.has_field("a-sendonly"));
            // A copy: rtspsrc changes the stream's caps after this, which it cannot while
            // another holds them.
            if speaker {
                *found_in_signal.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((index, caps.copy()));
            }
            Some(speaker.to_value())
        });
        source
            .add(&rtspsrc)
            .map_err(|e| media_error("pipeline", e))?;
        source
            .set_state(gst::State::Playing)
            .map_err(|e| media_error("start", e))?;
        let (index, caps) = match wait_until_playing(&source, &found).await {
            Ok(stream) => stream,
            Err(e) => {
                let _ = source.set_state(gst::State::Null);
                return Err(e);
            }
        };
        let speaker = caps
            .structure(0)
            .ok_or_else(|| media_error("caps", "empty"))?;
        let codec = speaker
            .get::<String>("encoding-name")
            .map_err(|e| media_error("caps", e))?
            .to_ascii_uppercase();
        let payload = speaker.get::<i32>("payload").unwrap_or(0);
        let rate = speaker.get::<i32>("clock-rate").unwrap_or(8_000);
        let result = encoder(&codec, payload, rate).and_then(|description| {
            start_encoder(&description, &rtspsrc, index, sample_caps(speaker))
        });
        match result {
            Ok((encoder, input)) => Ok(Backchannel {
                source,
                encoder,
                input,
                codec,
                first: None,
            }),
            Err(e) => {
                let _ = source.set_state(gst::State::Null);
                Err(e)
            }
        }
    }

    /// Sends one Opus frame of the viewer's speech, stamped `timestamp` (48 kHz).
    pub fn push(&mut self, timestamp: u32, opus: &[u8]) -> Result<(), Error> {
        for pipeline in [&self.source, &self.encoder] {
            if let Some(bus) = pipeline.bus()
                && let Some(message) = bus.pop_filtered(&[gst::MessageType::Error])
                && let gst::MessageView::Error(e) = message.view()
            {
                return Err(media_error("speaking", e.error()));
            }
        }
        let first = *self.first.get_or_insert(timestamp);
        let ticks = timestamp.wrapping_sub(first);
        let mut buffer = gst::Buffer::from_slice(opus.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(
                u64::from(ticks) * 1_000_000_000 / u64::from(OPUS_CLOCK_RATE),
            ));
        }
        self.input
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|e| media_error("speaking", e))
    }
}

impl Drop for Backchannel {
    /// Stops both pipelines on a thread of its own: `rtspsrc` says TEARDOWN to the camera
    /// and waits a moment for its answer, which the caller's task need not.
    fn drop(&mut self) {
        let (encoder, source) = (self.encoder.clone(), self.source.clone());
        let stopped = std::thread::Builder::new()
            .name("backchannel-stop".into())
            .spawn(move || {
                let _ = encoder.set_state(gst::State::Null);
                let _ = source.set_state(gst::State::Null);
            });
        if stopped.is_err() {
            let _ = self.encoder.set_state(gst::State::Null);
            let _ = self.source.set_state(gst::State::Null);
        }
    }
}

/// Waits until `rtspsrc` has set up and plays the speaker's stream, fails, or times out.
async fn wait_until_playing(
    source: &gst::Pipeline,
    found: &Found,
) -> Result<(u32, gst::Caps), Error> {
    let bus = source
        .bus()
        .ok_or_else(|| media_error("pipeline", "no bus"))?;
    let playing = async {
        loop {
            while let Some(message) = bus.pop() {
                if let gst::MessageView::Error(e) = message.view() {
                    return Err(refused(e, found));
                }
            }
            let stream = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (_, current, _) = source.state(gst::ClockTime::ZERO);
            if let Some(stream) = stream
                && current == gst::State::Playing
            {
                return Ok(stream);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(OPEN_TIMEOUT, playing)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Unavailable,
                "the camera's speaker did not answer in time; try again",
            ))
        })
}

/// What an error of `rtspsrc` before it played means: 551 Option not supported (the camera
/// does not know the back-channel's `Require`), or no stream set up (it knows it but has no
/// speaker), is a camera without a back-channel; anything else, one that cannot be reached.
fn refused(e: &gst::message::Error, found: &Found) -> Error {
    let text = e.error().to_string();
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let unsupported = [&text, &debug].iter().any(|t| {
        t.contains("551") || t.contains("Option not supported") || t.contains("No supported stream")
    });
    if unsupported || found.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
        tracing::info!(error = %text, "the camera's back-channel was refused");
        return no_backchannel();
    }
    media_error("RTSP", text)
}

/// The RTP caps of what goes to the speaker: the stream's, without the SDP's attributes.
fn sample_caps(speaker: &gst::StructureRef) -> gst::Caps {
    let mut s = speaker.to_owned();
    s.set_name("application/x-rtp");
    let extra: Vec<String> = s
        .fields()
        .filter(|f| f.starts_with("a-"))
        .map(|f| f.to_string())
        .collect();
    for field in extra {
        s.remove_field(&field);
    }
    gst::Caps::builder_full().structure(s).build()
}

/// The pipeline from the viewer's Opus to the camera's codec, as RTP with the camera's
/// payload type; a codec the relay cannot send is refused with its name.
fn encoder(codec: &str, payload: i32, rate: i32) -> Result<String, Error> {
    let chain = match codec {
        "PCMU" => format!("audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay pt={payload}"),
        "PCMA" => format!("audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay pt={payload}"),
        "G722" => {
            format!("audio/x-raw,rate=16000,channels=1 ! avenc_g722 ! rtpg722pay pt={payload}")
        }
        "MPEG4-GENERIC" => format!(
            "audio/x-raw,rate={rate},channels=1 ! avenc_aac ! aacparse ! rtpmp4gpay pt={payload}"
        ),
        other => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("the camera's speaker takes {other}, which the relay cannot send"),
            ));
        }
    };
    // A second of speech at most waits for the camera (a stalled connection drops the oldest).
    Ok(format!(
        "appsrc name=src format=time is-live=true max-buffers=50 max-bytes=0 leaky-type=downstream \
           caps=audio/x-opus,rate={OPUS_CLOCK_RATE},channels=1,channel-mapping-family=0 \
         ! opusdec plc=true ! audioconvert ! audioresample ! {chain} \
         ! appsink name=sink sync=false"
    ))
}

/// Starts the encoder `description`; each RTP packet it makes goes to `rtspsrc`'s stream
/// `index`.
fn start_encoder(
    description: &str,
    rtspsrc: &gst::Element,
    index: u32,
    caps: gst::Caps,
) -> Result<(gst::Pipeline, gst_app::AppSrc), Error> {
    let (pipeline, input, sink) =
        crate::transcode::launch(description).map_err(|e| media_error("encoder", e))?;
    let rtspsrc = rtspsrc.downgrade();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(rtspsrc) = rtspsrc.upgrade() else {
                    return Err(gst::FlowError::Flushing);
                };
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let sample = gst::Sample::builder().caps(&caps).buffer(&buffer).build();
                // `push-backchannel-buffer` takes the sample's reference (as documented; and
                // GStreamer 1.22.0's `push-backchannel-sample` does the same, wrongly): it
                // is given one the relay lets go of.
                let given = sample.clone();
                let sent: gst::FlowReturn =
                    rtspsrc.emit_by_name("push-backchannel-buffer", &[&index, &given]);
                std::mem::forget(given);
                sent.into_result()
            })
            .build(),
    );
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| media_error("encoder", e))?;
    Ok((pipeline, input))
}
