//! The simulated camera's speaker: an ONVIF back-channel (ONVIF Streaming Specification,
//! Profile T: a client that sends `Require: www.onvif.org/ver20/backchannel` is offered one
//! more audio stream, `a=sendonly`, on which it sends sound to the camera). What the camera
//! hears is measured, a quarter second at a time, and reported in its log once a second while
//! it hears something: the loudest pitch and its level, and when the sound began. Tests and
//! benchmarks read those lines.

use gstreamer as gst;
use gstreamer_app as gst_app;
use std::time::Duration;

/// The codecs the simulated speaker takes: G.711, as most cameras' back-channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerCodec {
    Pcmu,
    Pcma,
}

impl std::str::FromStr for SpeakerCodec {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<SpeakerCodec, crate::Error> {
        match s {
            "pcmu" => Ok(SpeakerCodec::Pcmu),
            "pcma" => Ok(SpeakerCodec::Pcma),
            other => Err(crate::Error::Config(format!(
                "back-channel codec {other:?}: pcmu or pcma"
            ))),
        }
    }
}

/// The speaker's sample rate (G.711's).
const RATE: u32 = 8_000;
/// What one measurement covers: a quarter second.
const WINDOW: usize = (RATE / 4) as usize;
/// Quieter than this (dBFS) is silence.
const SILENCE_DBFS: f64 = -50.0;
/// A sample this loud (about -30 dBFS) is where a stretch of sound begins.
const ONSET: u16 = 1_000;
/// The pitches looked for: 100 Hz to 3.5 kHz (G.711's band), 5 Hz apart.
const LOWEST_HZ: u32 = 100;
const HIGHEST_HZ: u32 = 3_500;
const STEP_HZ: u32 = 5;
/// How often a line is logged while the speaker hears something.
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl SpeakerCodec {
    /// The back-channel's pipeline as gst-rtsp-server's ONVIF media factory wants it: its
    /// first element named `depay_backchannel`, with the RTP caps the SDP offers; the sound
    /// decoded to what [`listen`] measures.
    pub fn launch(self) -> String {
        let (pt, name, decode) = match self {
            SpeakerCodec::Pcmu => (0, "PCMU", "rtppcmudepay ! mulawdec"),
            SpeakerCodec::Pcma => (8, "PCMA", "rtppcmadepay ! alawdec"),
        };
        format!(
            "( capsfilter name=depay_backchannel \
                 caps=\"application/x-rtp,media=audio,payload={pt},clock-rate={RATE},encoding-name={name}\" \
               ! {decode} ! audioconvert \
               ! audio/x-raw,format=S16LE,layout=interleaved,rate={RATE},channels=1 \
               ! appsink name=speaker sync=false async=false )"
        )
    }
}

/// Measures what reaches `speaker` (the back-channel pipeline's appsink) and logs it.
pub fn listen(speaker: &gst_app::AppSink) {
    let mut ear = Ear::default();
    speaker.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                    let samples: Vec<i16> = map
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    ear.hear(&samples, eyeward::clock::Clock::real().now().0);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// What the speaker has heard since the last measurement and report.
#[derive(Default)]
struct Ear {
    window: Vec<i16>,
    /// When each sample of the window was heard (Unix ms): its delivery's arrival, less the
    /// samples after it in that delivery (a sender sends a packet once its last sample is in).
    heard_at: Vec<i64>,
    /// When the current stretch of sound began (Unix ms), while it lasts.
    began: Option<i64>,
    last_report: Option<i64>,
}

impl Ear {
    /// Takes `samples`, delivered together at `now_ms` (Unix ms).
    fn hear(&mut self, samples: &[i16], now_ms: i64) {
        let last = samples.len() as i64 - 1;
        for (i, &sample) in samples.iter().enumerate() {
            self.window.push(sample);
            self.heard_at
                .push(now_ms - (last - i as i64) * 1000 / i64::from(RATE));
            if self.window.len() == WINDOW {
                self.measure();
                self.window.clear();
                self.heard_at.clear();
            }
        }
    }

    /// Measures the window.
    fn measure(&mut self) {
        let Some(heard) = Heard::of(&self.window) else {
            self.began = None;
            return;
        };
        // A stretch of sound begins at its first loud sample.
        let began = *self.began.get_or_insert_with(|| {
            let first = self
                .window
                .iter()
                .position(|s| s.unsigned_abs() >= ONSET)
                .unwrap_or(0);
            self.heard_at[first]
        });
        let end_ms = self.heard_at.last().copied().unwrap_or(began);
        let due = self
            .last_report
            .is_none_or(|at| end_ms - at >= REPORT_EVERY.as_millis() as i64);
        if due {
            self.last_report = Some(end_ms);
            tracing::info!(
                hz = heard.hz,
                dbfs = heard.dbfs.round() as i64,
                began_unix_ms = began,
                "back-channel heard"
            );
        }
    }
}

/// The loudest pitch of some sound, and its level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    pub hz: u32,
    pub dbfs: f64,
}

impl Heard {
    /// The loudest pitch of `samples` (at 8 kHz), found by the Goertzel algorithm at every
    /// [`STEP_HZ`] of G.711's band; `None` for silence.
    pub fn of(samples: &[i16]) -> Option<Heard> {
        if samples.is_empty() {
            return None;
        }
        let scaled: Vec<f64> = samples.iter().map(|&s| f64::from(s) / 32768.0).collect();
        let power = scaled.iter().map(|s| s * s).sum::<f64>() / scaled.len() as f64;
        let dbfs = 10.0 * power.max(1e-12).log10();
        if dbfs < SILENCE_DBFS {
            return None;
        }
        let strength = |hz: u32| {
            let w = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(RATE);
            let coefficient = 2.0 * w.cos();
            let (mut s1, mut s2) = (0.0, 0.0);
            for &x in &scaled {
                let s0 = x + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            s1 * s1 + s2 * s2 - coefficient * s1 * s2
        };
        let hz = (LOWEST_HZ..=HIGHEST_HZ)
            .step_by(STEP_HZ as usize)
            .map(|hz| (hz, strength(hz)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(hz, _)| hz)?;
        Some(Heard { hz, dbfs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                (amplitude * 32767.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn a_tone_is_heard_at_its_pitch_and_level() {
        let heard = Heard::of(&tone(660.0, 0.5, WINDOW)).unwrap();
        assert!((heard.hz as i64 - 660).abs() <= 5, "{heard:?}");
        // A sine of amplitude 0.5: -9 dBFS.
        assert!((heard.dbfs + 9.0).abs() < 0.5, "{heard:?}");
    }

    #[test]
    fn the_louder_of_two_tones_is_the_one_heard() {
        let (quiet, loud) = (tone(440.0, 0.1, WINDOW), tone(1200.0, 0.4, WINDOW));
        let both: Vec<i16> = quiet.iter().zip(&loud).map(|(a, b)| a + b).collect();
        assert_eq!(Heard::of(&both).unwrap().hz, 1200);
    }

    #[test]
    fn silence_and_faint_noise_are_not_heard() {
        assert_eq!(Heard::of(&[0; WINDOW]), None);
        assert_eq!(Heard::of(&tone(500.0, 0.001, WINDOW)), None);
        assert_eq!(Heard::of(&[]), None);
    }

    #[test]
    fn sound_is_measured_in_whole_windows_however_it_comes() {
        let mut ear = Ear::default();
        let sound = tone(800.0, 0.5, WINDOW * 2 + 100);
        for chunk in sound.chunks(160) {
            ear.hear(chunk, 10_000);
        }
        assert_eq!(ear.window.len(), 100);
        ear.hear(&[0; WINDOW * 2], 11_000);
        assert_eq!(ear.began, None, "silence ends the stretch");
    }

    #[test]
    fn a_stretch_of_sound_begins_at_its_first_loud_sample_as_its_delivery_places_it() {
        let mut ear = Ear::default();
        // 100 ms of silence, then the tone, in 20 ms deliveries 20 ms apart; the tone's first
        // delivery (the sixth) arrives at 10 000 ms, its first sample 20 ms before.
        let mut samples = vec![0; 800];
        samples.extend(tone(800.0, 0.5, WINDOW));
        for (n, delivery) in samples.chunks(160).enumerate() {
            ear.hear(delivery, 9_900 + n as i64 * 20);
        }
        let began = ear.began.expect("heard");
        // Give or take the sine's first, quiet, sample.
        assert!((began - (10_000 - 20)).abs() <= 1, "{began}");
        // Delivered in a burst (all at once at 10 500 ms), the tone is placed by its delivery.
        let mut burst = Ear::default();
        burst.hear(&samples, 10_500);
        let began = burst.began.expect("heard");
        let tone_len_ms = (WINDOW * 1000) as i64 / 8000;
        assert!((began - (10_500 - tone_len_ms)).abs() <= 1, "{began}");
    }
}
