//! An agent's event upload, `POST /agent/v1/events?<query>` with the snapshot (if any) as the
//! body: the query as it travels ([`UploadQuery`]), what it means ([`EventUpload`]), and the
//! relay's check from one to the other. The agent writes the query from an `EventUpload`, the
//! relay reads it back into one: both sides use this module, so the contract is written once.

use crate::{Error, UnixMillis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The query string's fields, as they travel. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `motion` (the default) or `gap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The agent's idempotency key: 8 to 64 of `A-Z a-z 0-9 - _`.
    pub key: String,
    /// When the picture was taken (Unix milliseconds); for a gap, the first dropped event's.
    pub captured_at: i64,
    /// Motion: the share of the picture that moved (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Motion: `x,y,w,h` of the moving region in the snapshot's pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox: Option<String>,
    /// Motion: `dropped` when the agent had to drop the snapshot (and sends no body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Motion: `coming` when the agent records a clip of the event, to upload after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
    /// Gap: the capture time of the last dropped event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Gap: snapshots dropped (their events come on without a picture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_snapshots: Option<u64>,
    /// Gap: events dropped whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_events: Option<u64>,
    /// Gap: clips dropped (their events and snapshots were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_clips: Option<u64>,
}

/// An upload, as both sides mean it.
#[derive(Debug, Clone, PartialEq)]
pub enum EventUpload {
    /// Motion was seen.
    Motion {
        key: String,
        captured_at: UnixMillis,
        /// The share of the picture that moved, 0 to 1.
        score: f64,
        /// The moving region, `[x, y, w, h]` in the snapshot's pixels.
        bbox: [u32; 4],
        /// Whether the snapshot is the body (false: the agent had to drop it).
        with_snapshot: bool,
        /// Whether the agent records a clip of it, to upload after.
        clip_coming: bool,
    },
    /// The agent's queue had to drop what it could not keep: an event of its own.
    Gap {
        key: String,
        /// The first dropped event's capture time.
        captured_at: UnixMillis,
        /// The last dropped event's capture time.
        until: UnixMillis,
        /// Snapshots dropped (their events came on without a picture).
        lost_snapshots: u64,
        /// Events dropped whole.
        lost_events: u64,
        /// Clips dropped (their events were kept).
        lost_clips: u64,
    },
}

/// The earliest capture time taken: 2020-01-01, so a camera whose clock was never set is
/// noticed rather than filed in 1970.
const EARLIEST: UnixMillis = UnixMillis(1_577_836_800_000);

/// How far ahead of the relay's clock an agent's may run.
const AHEAD: Duration = Duration::from_secs(60);

/// A capture time that makes sense: not before 2020, not more than a minute ahead of `now`.
fn check_time(at: i64, name: &str, now: UnixMillis) -> Result<UnixMillis, Error> {
    if at < EARLIEST.0 || at > now.plus(AHEAD).0 {
        return Err(Error::invalid(format_args!(
            "{name} must be a capture time in Unix milliseconds"
        )));
    }
    Ok(UnixMillis(at))
}

impl EventUpload {
    /// The idempotency key: a retried upload is the same event.
    pub fn key(&self) -> &str {
        match self {
            EventUpload::Motion { key, .. } | EventUpload::Gap { key, .. } => key,
        }
    }

    pub fn captured_at(&self) -> UnixMillis {
        match self {
            EventUpload::Motion { captured_at, .. } | EventUpload::Gap { captured_at, .. } => {
                *captured_at
            }
        }
    }

    /// The query string's fields for this upload.
    pub fn query(&self) -> UploadQuery {
        match self {
            EventUpload::Motion {
                key,
                captured_at,
                score,
                bbox,
                with_snapshot,
                clip_coming,
            } => UploadQuery {
                key: key.clone(),
                captured_at: captured_at.0,
                score: Some(*score),
                bbox: Some(bbox.map(|v| v.to_string()).join(",")),
                snapshot: (!with_snapshot).then(|| "dropped".to_owned()),
                clip: clip_coming.then(|| "coming".to_owned()),
                ..UploadQuery::default()
            },
            EventUpload::Gap {
                key,
                captured_at,
                until,
                lost_snapshots,
                lost_events,
                lost_clips,
            } => UploadQuery {
                kind: Some("gap".into()),
                key: key.clone(),
                captured_at: captured_at.0,
                until: Some(until.0),
                lost_snapshots: Some(*lost_snapshots),
                lost_events: Some(*lost_events),
                // Left out when none, so that a relay from before clips takes the gap.
                lost_clips: (*lost_clips > 0).then_some(*lost_clips),
                ..UploadQuery::default()
            },
        }
    }
}

impl UploadQuery {
    /// The upload this query describes, received at `now` (the relay's clock), or what is
    /// wrong with it.
    pub fn check(&self, now: UnixMillis) -> Result<EventUpload, Error> {
        let key_ok = (8..=64).contains(&self.key.len())
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !key_ok {
            return Err(Error::invalid(
                "key must be 8 to 64 letters, digits, '-' or '_'",
            ));
        }
        let captured_at = check_time(self.captured_at, "captured_at", now)?;
        match self.kind.as_deref().unwrap_or("motion") {
            "motion" => self.motion(captured_at),
            "gap" => self.gap(captured_at, now),
            _ => Err(Error::invalid("kind is motion or gap")),
        }
    }

    fn motion(&self, captured_at: UnixMillis) -> Result<EventUpload, Error> {
        if self.until.is_some()
            || self.lost_snapshots.is_some()
            || self.lost_events.is_some()
            || self.lost_clips.is_some()
        {
            return Err(Error::invalid(
                "until, lost_snapshots, lost_events and lost_clips are for gap events",
            ));
        }
        let score = self
            .score
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| Error::invalid("score is a share, from 0 to 1"))?;
        let bad_bbox = || Error::invalid("bbox must be x,y,w,h in pixels");
        let parts: Vec<u32> = self
            .bbox
            .as_deref()
            .ok_or_else(bad_bbox)?
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad_bbox())?;
        let [x, y, w, h] = parts[..] else {
            return Err(bad_bbox());
        };
        let with_snapshot = match self.snapshot.as_deref() {
            None => true,
            Some("dropped") => false,
            Some(_) => return Err(Error::invalid("snapshot can only be 'dropped'")),
        };
        let clip_coming = match self.clip.as_deref() {
            None => false,
            Some("coming") => true,
            Some(_) => return Err(Error::invalid("clip can only be 'coming'")),
        };
        Ok(EventUpload::Motion {
            key: self.key.clone(),
            captured_at,
            score,
            bbox: [x, y, w, h],
            with_snapshot,
            clip_coming,
        })
    }

    fn gap(&self, captured_at: UnixMillis, now: UnixMillis) -> Result<EventUpload, Error> {
        if self.score.is_some()
            || self.bbox.is_some()
            || self.snapshot.is_some()
            || self.clip.is_some()
        {
            return Err(Error::invalid(
                "score, bbox, snapshot and clip are for motion events",
            ));
        }
        let until = self
            .until
            .ok_or_else(|| Error::invalid("a gap needs until"))?;
        let until = check_time(until, "until", now)?;
        if until < captured_at {
            return Err(Error::invalid("until comes before captured_at"));
        }
        let (lost_snapshots, lost_events, lost_clips) = (
            self.lost_snapshots.unwrap_or(0),
            self.lost_events.unwrap_or(0),
            self.lost_clips.unwrap_or(0),
        );
        if lost_snapshots == 0 && lost_events == 0 && lost_clips == 0 {
            return Err(Error::invalid(
                "a gap loses at least one snapshot, event or clip",
            ));
        }
        if lost_snapshots.max(lost_events).max(lost_clips) > i64::MAX as u64 {
            return Err(Error::invalid("lost counts are too large"));
        }
        Ok(EventUpload::Gap {
            key: self.key.clone(),
            captured_at,
            until,
            lost_snapshots,
            lost_events,
            lost_clips,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    fn motion(with_snapshot: bool) -> EventUpload {
        EventUpload::Motion {
            key: "0123456789abcdef".into(),
            captured_at: NOW,
            score: 0.25,
            bbox: [1, 2, 30, 40],
            with_snapshot,
            clip_coming: !with_snapshot,
        }
    }

    fn gap() -> EventUpload {
        EventUpload::Gap {
            key: "gap-0001".into(),
            captured_at: NOW,
            until: NOW.plus(Duration::from_secs(5)),
            lost_snapshots: 3,
            lost_events: 1,
            lost_clips: 0,
        }
    }

    fn clips_gap() -> EventUpload {
        EventUpload::Gap {
            key: "gap-0002".into(),
            captured_at: NOW,
            until: NOW,
            lost_snapshots: 0,
            lost_events: 0,
            lost_clips: 2,
        }
    }

    #[test]
    fn what_the_agent_writes_the_relay_reads_back_the_same() {
        for upload in [motion(true), motion(false), gap(), clips_gap()] {
            assert_eq!(upload.query().check(NOW).unwrap(), upload);
        }
    }

    #[test]
    fn the_query_keeps_its_documented_field_names() {
        let q = serde_json::to_value(motion(false).query()).unwrap();
        assert_eq!(
            q,
            serde_json::json!({"key": "0123456789abcdef", "captured_at": NOW.0, "score": 0.25,
                "bbox": "1,2,30,40", "snapshot": "dropped", "clip": "coming"})
        );
        let q = serde_json::to_value(gap().query()).unwrap();
        assert_eq!(
            q,
            serde_json::json!({"kind": "gap", "key": "gap-0001", "captured_at": NOW.0,
                "until": NOW.0 + 5000, "lost_snapshots": 3, "lost_events": 1})
        );
    }

    #[test]
    fn each_broken_rule_is_refused_with_what_is_wrong() {
        let base = motion(true).query();
        let gap = gap().query();
        let cases: Vec<(UploadQuery, &str)> = vec![
            (
                UploadQuery {
                    key: "short".into(),
                    ..base.clone()
                },
                "key must be",
            ),
            (
                UploadQuery {
                    key: "bad key!".repeat(2),
                    ..base.clone()
                },
                "key must be",
            ),
            (
                UploadQuery {
                    captured_at: 0,
                    ..base.clone()
                },
                "captured_at must be",
            ),
            (
                UploadQuery {
                    captured_at: NOW.0 + 61_000,
                    ..base.clone()
                },
                "captured_at must be",
            ),
            (
                UploadQuery {
                    kind: Some("fire".into()),
                    ..base.clone()
                },
                "kind is",
            ),
            (
                UploadQuery {
                    score: Some(1.5),
                    ..base.clone()
                },
                "score is a share",
            ),
            (
                UploadQuery {
                    score: None,
                    ..base.clone()
                },
                "score is a share",
            ),
            (
                UploadQuery {
                    bbox: Some("1,2,3".into()),
                    ..base.clone()
                },
                "bbox must be",
            ),
            (
                UploadQuery {
                    bbox: Some("1,2,3,-4".into()),
                    ..base.clone()
                },
                "bbox must be",
            ),
            (
                UploadQuery {
                    snapshot: Some("yes".into()),
                    ..base.clone()
                },
                "snapshot can only",
            ),
            (
                UploadQuery {
                    until: Some(NOW.0),
                    ..base.clone()
                },
                "are for gap events",
            ),
            (
                UploadQuery {
                    score: Some(0.1),
                    ..gap.clone()
                },
                "are for motion events",
            ),
            (
                UploadQuery {
                    until: None,
                    ..gap.clone()
                },
                "a gap needs until",
            ),
            (
                UploadQuery {
                    until: Some(NOW.0 - 1),
                    ..gap.clone()
                },
                "until comes before",
            ),
            (
                UploadQuery {
                    lost_snapshots: None,
                    lost_events: Some(0),
                    lost_clips: None,
                    ..gap.clone()
                },
                "at least one",
            ),
            (
                UploadQuery {
                    lost_events: Some(u64::MAX),
                    ..gap.clone()
                },
                "too large",
            ),
            (
                UploadQuery {
                    lost_clips: Some(1),
                    ..base.clone()
                },
                "are for gap events",
            ),
        ];
        for (query, expected) in cases {
            let err = query.check(NOW).unwrap_err();
            assert!(err.to_string().contains(expected), "{query:?}: {err}");
        }
    }
}
