//! The HTTP API's answers that more than one side reads: the relay writes them, the pages and
//! the tests read them (`docs/api.md` says what each field means). Typed here once, so a
//! field renamed on one side fails to compile on the other rather than reading as missing.

use crate::ptz::PtzState;
use serde::{Deserialize, Serialize};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Motion was seen.
    Motion,
    /// The agent's queue had to drop events or snapshots; their count and span.
    Gap,
}

/// A motion event as every answer shows it: the upload's answer, the live stream's `event`
/// messages, and (with more) the lists and the one-event page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub id: i64,
    pub camera_id: i64,
    pub kind: EventKind,
    /// When the picture was taken (RFC 3339, UTC).
    pub at: String,
    /// When the relay had it.
    pub received_at: String,
    /// It reached the relay later than `[events] delayed_after` after it was taken.
    pub delayed: bool,
    /// The share of the picture that moved.
    pub score: f64,
    /// The moving region, `[x, y, w, h]` in the snapshot's pixels.
    pub bbox: Option<[u32; 4]>,
    pub width: u32,
    pub height: u32,
    /// Where the snapshot is; none when the agent had to drop it.
    pub snapshot_url: Option<String>,
    /// Whether the household was armed for the camera: only then was it mailed.
    pub armed: bool,
    /// A gap: snapshots dropped, events dropped whole, and the last one's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_snapshots: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_events: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// A gap: clips dropped (their events are listed, without a clip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_clips: Option<i64>,
    /// The event's video clip, once the camera's agent has uploaded it whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipView>,
    /// The camera records a clip of it, which has not arrived yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clip_coming: bool,
}

/// An event's clip as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipView {
    /// Where it is served (HTTP range requests: the browser seeks).
    pub url: String,
    pub bytes: u64,
    /// From its first frame to its last, milliseconds.
    pub length_ms: u64,
    /// When the motion was first seen, from its start, milliseconds.
    pub event_at_ms: u64,
    /// `h264` or `h265`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
}

/// How an event's alert mail went to one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailDelivery {
    pub to: String,
    /// `pending`, `sent`, `failed` or `cancelled`.
    pub state: String,
}

/// An event in a list (a camera's, the feed of all): with its camera's name and how its
/// alert mail went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedEvent {
    #[serde(flatten)]
    pub event: EventView,
    pub camera_name: Option<String>,
    pub mail: Vec<MailDelivery>,
}

/// One event, as the page a mailed "See this event" link opens shows it: with its camera's
/// name and the same camera's events before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneEvent {
    #[serde(flatten)]
    pub event: EventView,
    pub camera_name: String,
    pub older_id: Option<i64>,
    pub newer_id: Option<i64>,
}

/// A pan-tilt camera as its viewers see it: the answer to a command and to a look at where
/// it points (its live stream sends the `state` alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtzStatus {
    /// Whether the camera's agent is linked (commands reach the camera).
    pub online: bool,
    /// How long a `move` lasts without a repeat.
    pub deadman_ms: u64,
    /// Where it looks, as last known; none before the agent first said.
    pub state: Option<PtzState>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn motion() -> EventView {
        EventView {
            id: 7,
            camera_id: 3,
            kind: EventKind::Motion,
            at: "2027-01-15T08:00:00.000Z".into(),
            received_at: "2027-01-15T08:00:00.250Z".into(),
            delayed: false,
            score: 0.25,
            bbox: Some([1, 2, 30, 40]),
            width: 640,
            height: 360,
            snapshot_url: Some("/api/events/7/snapshot".into()),
            armed: true,
            lost_snapshots: None,
            lost_events: None,
            until: None,
            lost_clips: None,
            clip: None,
            clip_coming: false,
        }
    }

    /// The field names the pages read: a rename here is a rename there.
    #[test]
    fn an_event_keeps_the_shape_the_pages_read() {
        let listed = ListedEvent {
            event: motion(),
            camera_name: Some("Porch".into()),
            mail: vec![MailDelivery {
                to: "home@example.jp".into(),
                state: "sent".into(),
            }],
        };
        let v = serde_json::to_value(&listed).unwrap();
        assert_eq!(
            v,
            json!({"id": 7, "camera_id": 3, "kind": "motion", "at": "2027-01-15T08:00:00.000Z",
                "received_at": "2027-01-15T08:00:00.250Z", "delayed": false, "score": 0.25,
                "bbox": [1, 2, 30, 40], "width": 640, "height": 360,
                "snapshot_url": "/api/events/7/snapshot", "armed": true, "camera_name": "Porch",
                "mail": [{"to": "home@example.jp", "state": "sent"}]})
        );
        assert_eq!(serde_json::from_value::<ListedEvent>(v).unwrap(), listed);
        let clipped = EventView {
            clip: Some(ClipView {
                url: "/api/events/7/clip".into(),
                bytes: 2_000_000,
                length_ms: 15_000,
                event_at_ms: 5_000,
                codec: "h264".into(),
                width: 1280,
                height: 720,
            }),
            ..motion()
        };
        assert_eq!(
            serde_json::to_value(&clipped).unwrap()["clip"],
            json!({"url": "/api/events/7/clip", "bytes": 2_000_000, "length_ms": 15_000,
                "event_at_ms": 5_000, "codec": "h264", "width": 1280, "height": 720})
        );
        let one = OneEvent {
            event: motion(),
            camera_name: "Porch".into(),
            older_id: None,
            newer_id: Some(9),
        };
        let v = serde_json::to_value(&one).unwrap();
        assert_eq!((&v["older_id"], &v["newer_id"]), (&json!(null), &json!(9)));
        assert_eq!(serde_json::from_value::<OneEvent>(v).unwrap(), one);
    }
}
