//! Talkback: what a camera's owner says in the live view, heard from the camera's speaker.
//! The browser sends its microphone as Opus on the live view's own connection; while the
//! owner holds "speak", the relay passes it to the camera's RTSP back-channel
//! ([`backchannel`]), directly or through the camera's agent (its tunnel to the camera). One
//! person speaks through a camera at a time; a talk ends when they let go, when the live
//! view ends (and so when what authorised it ends), or after [`MAX_TALK`].

pub mod backchannel;

pub use backchannel::Backchannel;

use crate::error::{Error, ErrorKind};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The longest one talk lasts: a held button cannot keep a speaker open for ever.
pub const MAX_TALK: Duration = Duration::from_secs(10 * 60);

/// One packet of what the viewer says through the camera (Opus, one frame), as the live
/// view's connection received it.
#[derive(Debug, Clone)]
pub struct Speech {
    /// Its RTP timestamp (48 kHz) and sequence number, as the viewer sent them.
    pub timestamp: u32,
    pub sequence_number: u16,
    pub payload: bytes::Bytes,
}

/// A talk in progress: the camera's back-channel, and what keeps its way there open.
/// Dropping it ends the talk and tells whoever waits on [`Speaking::open`]'s receiver how
/// long it lasted.
pub struct Speaking {
    backchannel: Backchannel,
    started: Instant,
    /// Tells how long the talk lasted, when it ends.
    done: Option<oneshot::Sender<Duration>>,
    /// What else must live as long as the talk (the loopback port to the camera, the
    /// camera's place in the list of cameras spoken through).
    _keep: Box<dyn Send>,
}

impl Speaking {
    /// A talk over `backchannel`, keeping `keep` alive with it; the receiver learns its
    /// length when it ends.
    pub fn open(
        backchannel: Backchannel,
        keep: Box<dyn Send>,
    ) -> (Speaking, oneshot::Receiver<Duration>) {
        let (done, ended) = oneshot::channel();
        let speaking = Speaking {
            backchannel,
            started: eyeward::clock::monotonic(),
            done: Some(done),
            _keep: keep,
        };
        (speaking, ended)
    }

    /// The codec the camera's speaker takes.
    pub fn codec(&self) -> &str {
        &self.backchannel.codec
    }

    /// Passes one packet of the viewer's speech on; an error (the camera's session ended,
    /// or the talk is at its longest) ends the talk.
    pub fn say(&mut self, speech: &Speech) -> Result<(), Error> {
        if self.started.elapsed() > MAX_TALK {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "a talk lasts at most ten minutes",
            ));
        }
        self.backchannel.push(speech.timestamp, &speech.payload)
    }
}

impl Drop for Speaking {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(self.started.elapsed());
        }
    }
}
