//! Pan-tilt: the commands a customer gives a pan-tilt camera, the state the camera reports,
//! and the relay's per-camera gate (rate limit, which commands go into the history).
//!
//! Positions and speeds are in ONVIF's generic spaces, which every ONVIF camera understands:
//! a position is -1..1 over the camera's whole range each way, a speed is -1..1 of its full
//! speed. Positive pan turns right, positive tilt turns up. No I/O here; time is passed in.

use crate::{Error, UnixMillis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The name of the preset every pan-tilt camera has: its home position.
pub const HOME: &str = "home";

/// The longest preset name, in characters.
pub const MAX_PRESET_NAME: usize = 32;

/// Named presets a camera may keep, besides home.
pub const MAX_PRESETS: usize = 16;

/// One command for a pan-tilt camera, as the viewer sends it (`POST /api/cameras/{id}/ptz`)
/// and as the relay passes it to the camera's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PtzCommand {
    /// Turn at these speeds until `stop`, the next command, or the dead-man timeout: a
    /// viewer holding a button repeats this command, so a closed tab stops the camera.
    Move { pan: f64, tilt: f64 },
    /// Stop turning.
    Stop(NoArgs),
    /// Turn by this much (generic space; the whole range is 2 each way, a step at most 1).
    Step { pan: f64, tilt: f64 },
    /// Go to this position.
    GoTo { pan: f64, tilt: f64 },
    /// Turn so the point (`x`, `y`) of the picture, each 0..1 from the top left, comes to
    /// the centre (click-to-centre).
    Centre { x: f64, y: f64 },
    /// Go to a preset: [`HOME`] or a named one.
    Preset { name: String },
    /// Save the current position as a preset ([`HOME`] sets the home position).
    SavePreset { name: String },
    /// Forget a named preset.
    RemovePreset { name: String },
}

/// The arguments of a command that takes none: any given are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

fn check_range(what: &str, v: f64, lo: f64, hi: f64) -> Result<(), Error> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(format_args!(
            "{what} must be between {lo} and {hi}"
        )))
    }
}

/// Checks a preset name: 1 to [`MAX_PRESET_NAME`] characters, no control characters, no
/// leading or trailing space.
pub fn check_preset_name(name: &str) -> Result<(), Error> {
    let len = name.chars().count();
    if len == 0 || len > MAX_PRESET_NAME {
        return Err(Error::invalid(format_args!(
            "a preset name has 1 to {MAX_PRESET_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(Error::invalid(
            "a preset name has no control characters and no space at either end",
        ));
    }
    Ok(())
}

impl PtzCommand {
    /// Checks the values: speeds and positions in range, steps at most 1, a point inside the
    /// picture, sensible preset names. Every command that passes can be sent to a camera.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            PtzCommand::Move { pan, tilt } => {
                check_range("pan speed", *pan, -1.0, 1.0)?;
                check_range("tilt speed", *tilt, -1.0, 1.0)?;
                if *pan == 0.0 && *tilt == 0.0 {
                    return Err(Error::invalid("a move needs a speed; to stop, send stop"));
                }
                Ok(())
            }
            PtzCommand::Stop(_) => Ok(()),
            PtzCommand::Step { pan, tilt } => {
                check_range("pan step", *pan, -1.0, 1.0)?;
                check_range("tilt step", *tilt, -1.0, 1.0)
            }
            PtzCommand::GoTo { pan, tilt } => {
                check_range("pan position", *pan, -1.0, 1.0)?;
                check_range("tilt position", *tilt, -1.0, 1.0)
            }
            PtzCommand::Centre { x, y } => {
                check_range("x", *x, 0.0, 1.0)?;
                check_range("y", *y, 0.0, 1.0)
            }
            PtzCommand::Preset { name } | PtzCommand::SavePreset { name } => {
                check_preset_name(name)
            }
            PtzCommand::RemovePreset { name } => {
                check_preset_name(name)?;
                if name == HOME {
                    return Err(Error::invalid("the home position cannot be removed"));
                }
                Ok(())
            }
        }
    }

    /// The command's name, as in the API (`move`, `stop`, ...).
    pub fn action(&self) -> &'static str {
        match self {
            PtzCommand::Move { .. } => "move",
            PtzCommand::Stop(_) => "stop",
            PtzCommand::Step { .. } => "step",
            PtzCommand::GoTo { .. } => "go_to",
            PtzCommand::Centre { .. } => "centre",
            PtzCommand::Preset { .. } => "preset",
            PtzCommand::SavePreset { .. } => "save_preset",
            PtzCommand::RemovePreset { .. } => "remove_preset",
        }
    }

    /// Whether the command turns the camera.
    pub fn moves(&self) -> bool {
        !matches!(
            self,
            PtzCommand::Stop(_) | PtzCommand::SavePreset { .. } | PtzCommand::RemovePreset { .. }
        )
    }
}

/// Where a pan-tilt camera looks, as its agent last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtzState {
    /// Pan position, -1 (far left) to 1 (far right).
    pub pan: f64,
    /// Tilt position, -1 (down) to 1 (up).
    pub tilt: f64,
    /// Whether the camera is turning.
    pub moving: bool,
    /// The named presets, besides home, sorted.
    pub presets: Vec<String>,
}

/// Why an agent could not carry out a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PtzFailure {
    /// The command names something the camera does not have (an unknown preset), or the
    /// camera refused its values.
    Refused,
    /// Too many presets already.
    Full,
    /// The agent has no pan-tilt driver, or the camera did not answer in time.
    Unavailable,
}

/// Limits of the relay's per-camera gate.
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// Commands a camera takes in a burst.
    pub burst: u32,
    /// Commands per second it takes steadily.
    pub per_second: f64,
    /// A continuous move stops this long after the last `move` command.
    pub deadman: Duration,
}

/// What the gate says of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it; `record` says whether it goes into the owner's history: every command but
    /// `stop`, and a held button's repeated moves as one entry.
    Send { record: bool },
    /// Too many commands: try again after this long.
    Wait(Duration),
}

/// The relay's gate for one camera's commands: a token bucket shared by all its viewers,
/// through which a stop after a move always passes (refusing it would leave the camera
/// turning until the dead-man timeout). Plain code: time is passed in.
#[derive(Debug, Clone)]
pub struct Gate {
    limits: GateLimits,
    tokens: f64,
    refilled: UnixMillis,
    /// The last command sent, and when.
    last: Option<(&'static str, UnixMillis)>,
    /// Whether a move was sent that no stop has followed yet.
    may_be_moving: bool,
}

impl Gate {
    pub fn new(limits: GateLimits, now: UnixMillis) -> Gate {
        Gate {
            limits,
            tokens: f64::from(limits.burst),
            refilled: now,
            last: None,
            may_be_moving: false,
        }
    }

    /// Decides on `command` at `now`, and counts it if it is sent.
    pub fn admit(&mut self, command: &PtzCommand, now: UnixMillis) -> Admission {
        let elapsed = (now.0 - self.refilled.0).max(0) as f64 / 1000.0;
        self.tokens =
            (self.tokens + elapsed * self.limits.per_second).min(f64::from(self.limits.burst));
        self.refilled = now;
        let needed_stop = matches!(command, PtzCommand::Stop(_)) && self.may_be_moving;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
        } else if !needed_stop {
            let missing = 1.0 - self.tokens;
            let wait = Duration::from_secs_f64(missing / self.limits.per_second.max(1e-3));
            return Admission::Wait(wait.max(Duration::from_millis(1)));
        }
        let action = command.action();
        // A held button repeats `move` well within the dead-man timeout: one press, one entry.
        let continues_a_press = action == "move"
            && self
                .last
                .is_some_and(|(a, at)| a == "move" && now.0 - at.0 <= self.deadline_ms());
        let record = !matches!(command, PtzCommand::Stop(_)) && !continues_a_press;
        self.last = Some((action, now));
        self.may_be_moving = command.moves();
        Admission::Send { record }
    }

    fn deadline_ms(&self) -> i64 {
        self.limits.deadman.as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PtzCommand, String> {
        let c: PtzCommand = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn commands_have_one_documented_shape_each() {
        assert_eq!(
            parse(r#"{"action":"move","pan":0.5,"tilt":0}"#).unwrap(),
            PtzCommand::Move {
                pan: 0.5,
                tilt: 0.0
            }
        );
        assert_eq!(
            parse(r#"{"action":"stop"}"#).unwrap(),
            PtzCommand::Stop(NoArgs {})
        );
        assert_eq!(
            parse(r#"{"action":"go_to","pan":-1,"tilt":1}"#).unwrap(),
            PtzCommand::GoTo {
                pan: -1.0,
                tilt: 1.0
            }
        );
        assert_eq!(
            parse(r#"{"action":"preset","name":"ドア"}"#).unwrap(),
            PtzCommand::Preset {
                name: "ドア".into()
            }
        );
        let c = PtzCommand::Centre { x: 0.25, y: 0.75 };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"action":"centre","x":0.25,"y":0.75}"#
        );
    }

    #[test]
    fn out_of_range_unknown_and_malformed_commands_are_refused() {
        for bad in [
            r#"{"action":"move","pan":1.5,"tilt":0}"#,
            r#"{"action":"move","pan":0,"tilt":-2}"#,
            r#"{"action":"move","pan":0,"tilt":0}"#,
            r#"{"action":"move","pan":"fast","tilt":0}"#,
            r#"{"action":"move","pan":1e999,"tilt":0}"#,
            r#"{"action":"step","pan":1.01,"tilt":0}"#,
            r#"{"action":"go_to","pan":0,"tilt":3}"#,
            r#"{"action":"centre","x":-0.1,"y":0.5}"#,
            r#"{"action":"preset","name":""}"#,
            r#"{"action":"preset","name":" door"}"#,
            r#"{"action":"save_preset","name":"a\u0000b"}"#,
            r#"{"action":"save_preset","name":"0123456789012345678901234567890123"}"#,
            r#"{"action":"remove_preset","name":"home"}"#,
            r#"{"action":"stop","extra":1}"#,
            r#"{"action":"move","pan":1,"tilt":0,"extra":1}"#,
            r#"{"action":"spin"}"#,
            r#"{"pan":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    fn gate() -> Gate {
        Gate::new(
            GateLimits {
                burst: 5,
                per_second: 10.0,
                deadman: Duration::from_secs(1),
            },
            UnixMillis(0),
        )
    }

    const RIGHT: PtzCommand = PtzCommand::Move {
        pan: 1.0,
        tilt: 0.0,
    };

    #[test]
    fn a_burst_is_cut_to_the_bucket_and_refills_with_time() {
        let mut g = gate();
        let step = PtzCommand::Step {
            pan: 0.1,
            tilt: 0.0,
        };
        for _ in 0..5 {
            assert!(matches!(
                g.admit(&step, UnixMillis(0)),
                Admission::Send { .. }
            ));
        }
        assert_eq!(
            g.admit(&step, UnixMillis(0)),
            Admission::Wait(Duration::from_millis(100))
        );
        assert!(matches!(
            g.admit(&step, UnixMillis(100)),
            Admission::Send { .. }
        ));
        assert!(matches!(
            g.admit(&step, UnixMillis(100)),
            Admission::Wait(_)
        ));
        // A long pause refills the bucket to its burst, no further.
        for _ in 0..5 {
            assert!(matches!(
                g.admit(&step, UnixMillis(60_000)),
                Admission::Send { .. }
            ));
        }
        assert!(matches!(
            g.admit(&step, UnixMillis(60_000)),
            Admission::Wait(_)
        ));
    }

    #[test]
    fn the_stop_after_a_move_always_passes_but_repeated_stops_do_not() {
        let mut g = gate();
        for _ in 0..5 {
            g.admit(&RIGHT, UnixMillis(0));
        }
        assert!(matches!(g.admit(&RIGHT, UnixMillis(0)), Admission::Wait(_)));
        assert_eq!(
            g.admit(&PtzCommand::Stop(NoArgs {}), UnixMillis(0)),
            Admission::Send { record: false }
        );
        assert!(matches!(
            g.admit(&PtzCommand::Stop(NoArgs {}), UnixMillis(0)),
            Admission::Wait(_)
        ));
    }

    #[test]
    fn a_held_button_is_one_history_entry_per_press() {
        let mut g = Gate::new(
            GateLimits {
                burst: 100,
                per_second: 100.0,
                deadman: Duration::from_secs(1),
            },
            UnixMillis(0),
        );
        let records: Vec<bool> = [0, 300, 600, 900]
            .into_iter()
            .map(|t| g.admit(&RIGHT, UnixMillis(t)) == Admission::Send { record: true })
            .collect();
        assert_eq!(records, [true, false, false, false]);
        assert_eq!(
            g.admit(&PtzCommand::Stop(NoArgs {}), UnixMillis(1000)),
            Admission::Send { record: false }
        );
        // The next press is a new entry; so is a press after the dead-man timeout lapsed.
        assert_eq!(
            g.admit(&RIGHT, UnixMillis(1200)),
            Admission::Send { record: true }
        );
        assert_eq!(
            g.admit(&RIGHT, UnixMillis(5000)),
            Admission::Send { record: true }
        );
        let preset = PtzCommand::Preset { name: HOME.into() };
        assert_eq!(
            g.admit(&preset, UnixMillis(5100)),
            Admission::Send { record: true }
        );
        assert_eq!(
            g.admit(
                &PtzCommand::SavePreset {
                    name: "door".into()
                },
                UnixMillis(5200)
            ),
            Admission::Send { record: true }
        );
    }
}
