//! The durable upload queue: a snapshot counts as taken once it is on the agent's disk and
//! fsynced. Items go to the relay oldest first, each with its own idempotency key, and leave
//! the disk only once the relay has stored them; the queue survives restarts and power loss.
//!
//! On disk, in one folder: `<seq>.jpg` (the snapshot) or `<seq>.mp4` (an event's clip), and
//! `<seq>.json` (the record). A snapshot's JSON is written last, through a temporary file
//! renamed into place: an item exists once its JSON does. A clip's record comes first, when
//! its recording starts, and says `recording` until the clip is whole and fsynced; one still
//! recording at open was cut off by a crash and is counted lost. Leftovers of an interrupted
//! write are cleared at open.
//!
//! Events and gaps go to the relay before any clip (an alert must not wait behind a video);
//! clips go oldest first once none waits.
//!
//! The disk it may take is bounded. Past the bound the oldest clips go first, then the
//! oldest snapshots, while their events stay (sent on without a picture); only if even the
//! records would not fit do whole events go, with their clips. Either way the loss is itself
//! queued as a [`Gap`] record, so the customer learns of it: nothing is dropped silently.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What one item counts for besides its snapshot: its record on disk, with room to spare.
const RECORD_BYTES: u64 = 512;

/// A motion event, as the relay is told of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Unique per event, so that a retried upload is the same event at the relay.
    pub key: String,
    /// When the picture was taken, Unix milliseconds.
    pub captured_at: i64,
    pub score: f64,
    /// The moving region, `[x, y, w, h]` in the snapshot's pixels.
    pub bbox: [u32; 4],
    /// The snapshot was dropped to keep the queue within its disk budget.
    #[serde(default)]
    pub snapshot_dropped: bool,
    /// A clip of it is being recorded, to upload after.
    #[serde(default)]
    pub clip_coming: bool,
}

/// An event's clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipMeta {
    /// The event's key: the clip is the event's.
    pub key: String,
    /// The event's capture time, Unix milliseconds.
    pub captured_at: i64,
    /// `h264` or `h265`.
    pub codec: String,
    /// Still being written: the file is not whole yet.
    pub recording: bool,
    /// From its first frame to its last, milliseconds.
    #[serde(default)]
    pub length_ms: u64,
    /// When the motion was first seen, from its start, milliseconds.
    #[serde(default)]
    pub event_at_ms: u64,
}

/// What the queue had to drop, reported to the relay as an event of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Unique per gap; the record grows while it waits, and the relay keeps the latest counts.
    pub key: String,
    /// Snapshots dropped (their events were kept).
    pub snapshots: u64,
    /// Events dropped whole, records and all.
    pub events: u64,
    /// Clips dropped (their events were kept), or cut off by a crash.
    #[serde(default)]
    pub clips: u64,
    /// Capture times (Unix milliseconds) of the first and the last dropped event.
    pub first_at: i64,
    pub last_at: i64,
}

/// One queue entry's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Motion(EventMeta),
    Gap(Gap),
    Clip(ClipMeta),
}

impl Record {
    /// The extension of the item's file besides its record, if it has one.
    fn media(&self) -> Option<&'static str> {
        match self {
            Record::Motion(m) if !m.snapshot_dropped => Some("jpg"),
            Record::Motion(_) | Record::Gap(_) => None,
            Record::Clip(_) => Some("mp4"),
        }
    }
}

/// A fresh idempotency key: 128 random bits in hex.
pub fn new_key() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One queued item.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: u64,
    pub record: Record,
    /// The size on disk of its snapshot or finished clip (0: none).
    media_bytes: u64,
}

impl Item {
    fn without_media(seq: u64, record: Record) -> Item {
        Item {
            seq,
            record,
            media_bytes: 0,
        }
    }

    /// What the item counts for against the bound. The one gap record waiting at any time
    /// counts for nothing, so that noting a drop never causes another.
    fn bytes(&self) -> u64 {
        match self.record {
            Record::Motion(_) | Record::Clip(_) => RECORD_BYTES + self.media_bytes,
            Record::Gap(_) => 0,
        }
    }

    fn is_clip(&self) -> bool {
        matches!(self.record, Record::Clip(_))
    }

    fn is_finished_clip(&self) -> bool {
        matches!(&self.record, Record::Clip(c) if !c.recording)
    }
}

/// What to send next.
#[derive(Debug)]
pub enum Next {
    /// An event or a gap, with the snapshot (empty when none).
    Event(Item, Vec<u8>),
    /// A clip, in its file.
    Clip(Item, ClipMeta, PathBuf),
}

/// What a drop is reported as.
#[derive(Clone, Copy)]
enum Lost {
    Snapshot,
    Event,
    Clip,
}

/// The queue in its folder.
pub struct Queue {
    dir: PathBuf,
    max_bytes: u64,
    items: BTreeMap<u64, Item>,
    bytes: u64,
    /// The gap record that further drops are added to, while it waits for the relay.
    open_gap: Option<u64>,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()))
}

/// Writes `data` to `path` durably: temporary file, fsync, rename.
fn write_durably(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(data).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming", &tmp))
}

impl Queue {
    /// Opens (creating) the queue in `dir`, taking at most `max_bytes` of disk.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Queue, Error> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut items = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io("reading", dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        // Clips a crash cut off: their capture times, counted lost once the queue is open.
        let mut cut_off = Vec::new();
        for path in &files {
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            let ext = path.extension().and_then(|e| e.to_str());
            match (seq, ext) {
                (Some(seq), Some("json")) => {
                    let record = std::fs::read(path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
                    let media = record.as_ref().and_then(Record::media);
                    let media_bytes = match media {
                        Some(ext) => std::fs::metadata(path.with_extension(ext))
                            .map(|m| m.len())
                            .ok(),
                        None => Some(0),
                    };
                    // A dropped snapshot's file that outlived a crash.
                    if media != Some("jpg") {
                        let _ = std::fs::remove_file(path.with_extension("jpg"));
                    }
                    match (record, media_bytes) {
                        (Some(Record::Clip(clip)), _) if clip.recording => {
                            tracing::warn!(seq, key = %clip.key, "a clip cut off by a restart is lost");
                            cut_off.push(clip.captured_at);
                            let _ = std::fs::remove_file(path.with_extension("mp4"));
                            let _ = std::fs::remove_file(path);
                        }
                        (Some(record), Some(media_bytes)) => {
                            items.insert(
                                seq,
                                Item {
                                    seq,
                                    record,
                                    media_bytes,
                                },
                            );
                        }
                        (record, _) => {
                            tracing::warn!(file = %path.display(), "unreadable queue entry removed");
                            if let Some(Record::Clip(clip)) = record {
                                cut_off.push(clip.captured_at);
                            }
                            let _ = std::fs::remove_file(path);
                            let _ = std::fs::remove_file(path.with_extension("jpg"));
                            let _ = std::fs::remove_file(path.with_extension("mp4"));
                        }
                    }
                }
                // A snapshot whose event was never committed, a half-written file, or a
                // clip whose record went first once it was uploaded.
                (Some(_), Some("jpg" | "mp4")) if !path.with_extension("json").exists() => {
                    let _ = std::fs::remove_file(path);
                }
                (_, Some("tmp")) => {
                    let _ = std::fs::remove_file(path);
                }
                _ => {}
            }
        }
        let bytes = items.values().map(Item::bytes).sum();
        // Drops after a restart still add to the gap that was waiting.
        let open_gap = items
            .values()
            .rev()
            .find(|i| matches!(i.record, Record::Gap(_)))
            .map(|i| i.seq);
        let mut queue = Queue {
            dir: dir.to_owned(),
            max_bytes,
            items,
            bytes,
            open_gap,
        };
        for at in cut_off {
            queue.note_gap(at, Lost::Clip)?;
        }
        Ok(queue)
    }

    fn path(&self, seq: u64, ext: &str) -> PathBuf {
        self.dir.join(format!("{seq:020}.{ext}"))
    }

    fn next_seq(&self) -> u64 {
        self.items.keys().next_back().map_or(1, |s| s + 1)
    }

    fn sync_dir(&self) -> Result<(), Error> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing", &self.dir))
    }

    fn write_record(&self, seq: u64, record: &Record) -> Result<(), Error> {
        let json = serde_json::to_vec(record).map_err(|e| Error::Config(e.to_string()))?;
        write_durably(&self.path(seq, "json"), &json)
    }

    /// Adds a motion event durably; returns once it is on disk. When the queue would take
    /// more than its bound, older clips, snapshots (then older events) make room, and a
    /// [`Gap`] says so.
    pub fn push(&mut self, meta: EventMeta, jpeg: &[u8]) -> Result<u64, Error> {
        let seq = self.next_seq();
        write_durably(&self.path(seq, "jpg"), jpeg)?;
        let record = Record::Motion(meta);
        self.write_record(seq, &record)?;
        self.sync_dir()?;
        let item = Item {
            seq,
            record,
            media_bytes: jpeg.len() as u64,
        };
        self.bytes += item.bytes();
        self.items.insert(seq, item);
        self.make_room(seq)?;
        Ok(seq)
    }

    /// Starts the clip of the event `key` (captured at `captured_at`): its record says it is
    /// being recorded, durably, before a frame is written. Where to write it.
    pub fn begin_clip(
        &mut self,
        key: &str,
        captured_at: i64,
        codec: &str,
    ) -> Result<PathBuf, Error> {
        let seq = self.next_seq();
        let record = Record::Clip(ClipMeta {
            key: key.to_owned(),
            captured_at,
            codec: codec.to_owned(),
            recording: true,
            length_ms: 0,
            event_at_ms: 0,
        });
        self.write_record(seq, &record)?;
        self.sync_dir()?;
        let item = Item::without_media(seq, record);
        self.bytes += item.bytes();
        self.items.insert(seq, item);
        Ok(self.path(seq, "mp4"))
    }

    /// The clip begun at `path` is whole and fsynced: it may go.
    pub fn finish_clip(
        &mut self,
        path: &Path,
        length: Duration,
        event_at: Duration,
    ) -> Result<(), Error> {
        let Some((seq, clip)) = self.recording(path) else {
            return Ok(());
        };
        let media_bytes = std::fs::metadata(path).map_err(io("reading", path))?.len();
        let record = Record::Clip(ClipMeta {
            recording: false,
            length_ms: length.as_millis() as u64,
            event_at_ms: event_at.as_millis() as u64,
            ..clip
        });
        self.write_record(seq, &record)?;
        // Its record was counted when it began.
        self.bytes += media_bytes;
        self.items.insert(
            seq,
            Item {
                seq,
                record,
                media_bytes,
            },
        );
        self.make_room(seq)
    }

    /// The clip begun at `path` could not be made whole: it is counted lost.
    pub fn abandon_clip(&mut self, path: &Path) -> Result<(), Error> {
        let Some((seq, clip)) = self.recording(path) else {
            return Ok(());
        };
        tracing::warn!(seq, key = %clip.key, "a clip could not be finished; it is lost");
        self.remove(seq)?;
        self.note_gap(clip.captured_at, Lost::Clip)
    }

    /// The clip being recorded at `path`. None when it went meanwhile (its event was
    /// dropped, and its loss counted): its file goes now.
    fn recording(&self, path: &Path) -> Option<(u64, ClipMeta)> {
        let found = self.items.values().find_map(|i| match &i.record {
            Record::Clip(c) if c.recording && self.path(i.seq, "mp4") == path => {
                Some((i.seq, c.clone()))
            }
            _ => None,
        });
        if found.is_none() {
            let _ = std::fs::remove_file(path);
        }
        found
    }

    /// Drops the oldest clips, then the oldest snapshots, then the oldest events (with their
    /// clips), until the queue is within its bound again; the newest event or snapshot, gap
    /// records and clips being recorded stay.
    fn make_room(&mut self, newest: u64) -> Result<(), Error> {
        while self.bytes > self.max_bytes {
            let oldest_clip = self.items.values().find(|i| i.is_finished_clip());
            let older = |i: &&Item| i.seq != newest && matches!(i.record, Record::Motion(_));
            let oldest_snapshot = self
                .items
                .values()
                .filter(older)
                .find(|i| i.media_bytes > 0);
            let oldest_event = self.items.values().find(older);
            let (seq, lost) = match (oldest_clip, oldest_snapshot, oldest_event) {
                (Some(clip), ..) => (clip.seq, Lost::Clip),
                (None, Some(snapshot), _) => (snapshot.seq, Lost::Snapshot),
                (None, None, Some(event)) => (event.seq, Lost::Event),
                // Only the newest event, gap records and recordings: they stay.
                (None, None, None) => break,
            };
            self.drop_item(seq, lost)?;
        }
        Ok(())
    }

    /// Drops what `lost` says of item `seq`, and reports it.
    fn drop_item(&mut self, seq: u64, lost: Lost) -> Result<(), Error> {
        let item = self.items[&seq].clone();
        let at = match &item.record {
            Record::Motion(m) => m.captured_at,
            Record::Clip(c) => c.captured_at,
            Record::Gap(g) => g.last_at,
        };
        match (lost, &item.record) {
            (Lost::Snapshot, Record::Motion(meta)) => {
                tracing::warn!(
                    seq,
                    "upload queue full: the oldest snapshot is dropped, its event kept"
                );
                let record = Record::Motion(EventMeta {
                    snapshot_dropped: true,
                    ..meta.clone()
                });
                // The record first: a crash before the snapshot goes leaves a stray file.
                self.write_record(seq, &record)?;
                let jpg = self.path(seq, "jpg");
                std::fs::remove_file(&jpg).map_err(io("removing", &jpg))?;
                self.items.insert(seq, Item::without_media(seq, record));
                self.bytes -= item.media_bytes;
            }
            (Lost::Event, Record::Motion(meta)) => {
                tracing::warn!(seq, "upload queue full: the oldest event is dropped");
                self.remove(seq)?;
                // Its clip, if queued, has no event left to belong to.
                let clips: Vec<u64> = self
                    .items
                    .values()
                    .filter(|i| matches!(&i.record, Record::Clip(c) if c.key == meta.key))
                    .map(|i| i.seq)
                    .collect();
                for clip in clips {
                    self.remove(clip)?;
                    self.note_gap(at, Lost::Clip)?;
                }
            }
            _ => {
                tracing::warn!(seq, "upload queue full: the oldest clip is dropped");
                self.remove(seq)?;
            }
        }
        self.note_gap(at, lost)
    }

    /// Adds a drop to the waiting gap record, or starts one.
    fn note_gap(&mut self, at: i64, lost: Lost) -> Result<(), Error> {
        let (snapshots, events, clips) = match lost {
            Lost::Snapshot => (1, 0, 0),
            Lost::Event => (0, 1, 0),
            Lost::Clip => (0, 0, 1),
        };
        let open = self.open_gap.and_then(|seq| {
            let item = self.items.get(&seq)?;
            let Record::Gap(gap) = &item.record else {
                return None;
            };
            Some((seq, gap.clone()))
        });
        let (seq, gap) = match open {
            Some((seq, gap)) => (
                seq,
                Gap {
                    snapshots: gap.snapshots + snapshots,
                    events: gap.events + events,
                    clips: gap.clips + clips,
                    first_at: gap.first_at.min(at),
                    last_at: gap.last_at.max(at),
                    ..gap
                },
            ),
            None => (
                self.next_seq(),
                Gap {
                    key: new_key(),
                    snapshots,
                    events,
                    clips,
                    first_at: at,
                    last_at: at,
                },
            ),
        };
        let record = Record::Gap(gap);
        self.write_record(seq, &record)?;
        if !self.items.contains_key(&seq) {
            self.sync_dir()?;
        }
        self.items.insert(seq, Item::without_media(seq, record));
        self.open_gap = Some(seq);
        Ok(())
    }

    /// What to send next: the oldest event or gap, or once none waits, the oldest finished
    /// clip.
    pub fn next(&self) -> Result<Option<Next>, Error> {
        if let Some(item) = self.items.values().find(|i| !i.is_clip()) {
            if item.media_bytes == 0 {
                return Ok(Some(Next::Event(item.clone(), Vec::new())));
            }
            let path = self.path(item.seq, "jpg");
            let jpeg = std::fs::read(&path).map_err(io("reading", &path))?;
            return Ok(Some(Next::Event(item.clone(), jpeg)));
        }
        Ok(self
            .items
            .values()
            .find(|i| i.is_finished_clip())
            .and_then(|item| {
                let Record::Clip(clip) = &item.record else {
                    return None;
                };
                Some(Next::Clip(
                    item.clone(),
                    clip.clone(),
                    self.path(item.seq, "mp4"),
                ))
            }))
    }

    /// Whether an event or a gap waits (a clip being sent gives way to it).
    pub fn has_events(&self) -> bool {
        self.items.values().any(|i| !i.is_clip())
    }

    /// Forgets an item the relay has stored, unless its record changed since it was sent
    /// (a gap that grew meanwhile goes again). Returns whether it went.
    pub fn uploaded(&mut self, seq: u64, sent: &Record) -> Result<bool, Error> {
        if self.items.get(&seq).is_some_and(|i| &i.record != sent) {
            return Ok(false);
        }
        self.remove(seq)?;
        Ok(true)
    }

    /// Forgets an item: the JSON first, so a crash in between leaves only a stray file,
    /// which `open` clears.
    fn remove(&mut self, seq: u64) -> Result<(), Error> {
        if let Some(item) = self.items.remove(&seq) {
            self.bytes -= item.bytes();
            let json = self.path(seq, "json");
            std::fs::remove_file(&json).map_err(io("removing", &json))?;
            if let Some(ext) = item.record.media() {
                let _ = std::fs::remove_file(self.path(seq, ext));
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> EventMeta {
        EventMeta {
            key: key.into(),
            captured_at: 1_800_000_000_000 + key.as_bytes()[0] as i64,
            score: 0.05,
            bbox: [1, 2, 3, 4],
            snapshot_dropped: false,
            clip_coming: false,
        }
    }

    fn motion_key(item: &Item) -> Option<(&str, bool)> {
        match &item.record {
            Record::Motion(m) => Some((m.key.as_str(), m.snapshot_dropped)),
            Record::Gap(_) | Record::Clip(_) => None,
        }
    }

    fn gap(q: &Queue) -> Option<(u64, Gap)> {
        q.items.values().find_map(|i| match &i.record {
            Record::Gap(g) => Some((i.seq, g.clone())),
            Record::Motion(_) | Record::Clip(_) => None,
        })
    }

    /// The next item to send, which must be an event or a gap.
    fn next_event(q: &Queue) -> (Item, Vec<u8>) {
        match q.next().unwrap() {
            Some(Next::Event(item, jpeg)) => (item, jpeg),
            other => panic!("not an event: {other:?}"),
        }
    }

    /// The next item to send, which must be a clip: its event's key and its bytes.
    fn next_clip(q: &Queue) -> (Item, String, Vec<u8>) {
        match q.next().unwrap() {
            Some(Next::Clip(item, clip, path)) => (item, clip.key, std::fs::read(path).unwrap()),
            other => panic!("not a clip: {other:?}"),
        }
    }

    /// Records a clip of `bytes` for event `key`.
    fn clip(q: &mut Queue, key: &str, bytes: &[u8]) {
        let path = q.begin_clip(key, meta(key).captured_at, "h264").unwrap();
        std::fs::write(&path, bytes).unwrap();
        q.finish_clip(&path, Duration::from_secs(15), Duration::from_secs(5))
            .unwrap();
    }

    /// 1000-byte snapshots: each event counts for 1512 bytes.
    const JPEG: [u8; 1000] = [7; 1000];

    #[test]
    fn events_survive_a_restart_in_order_and_leave_when_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(meta("a"), b"jpeg-a").unwrap();
        q.push(meta("b"), b"jpeg-b").unwrap();
        drop(q);
        // A crash mid-write leaves a temporary file and a snapshot without its event.
        std::fs::write(dir.path().join("00000000000000000009.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("00000000000000000007.jpg"), b"orphan").unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.len(), 2);
        let (first, jpeg) = next_event(&q);
        assert_eq!(motion_key(&first), Some(("a", false)));
        assert_eq!(jpeg, b"jpeg-a");
        assert!(q.uploaded(first.seq, &first.record).unwrap());
        let (second, _) = next_event(&q);
        assert_eq!(second.record, Record::Motion(meta("b")));
        q.push(meta("c"), b"jpeg-c").unwrap();
        let (next, _) = next_event(&q);
        assert_eq!(
            motion_key(&next),
            Some(("b", false)),
            "new events queue behind"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") || n.starts_with("00000000000000000007"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_full_queue_drops_the_oldest_snapshots_keeps_their_events_and_reports_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 3600).unwrap();
        for key in ["a", "b", "c"] {
            q.push(meta(key), &JPEG).unwrap();
        }
        let (first, jpeg) = next_event(&q);
        assert_eq!(motion_key(&first), Some(("a", true)));
        assert!(jpeg.is_empty(), "a's snapshot is gone");
        assert!(!q.path(first.seq, "jpg").exists());
        let (gap_seq, g) = gap(&q).expect("the drop is reported");
        assert_eq!((g.snapshots, g.events), (1, 0));
        assert_eq!(
            (g.first_at, g.last_at),
            (meta("a").captured_at, meta("a").captured_at)
        );
        assert_eq!(
            q.items.keys().next_back(),
            Some(&gap_seq),
            "the gap queues behind"
        );

        // More drops add to the waiting gap, and survive a restart.
        q.push(meta("d"), &JPEG).unwrap();
        drop(q);
        let mut q = Queue::open(dir.path(), 3600).unwrap();
        let (_, g2) = gap(&q).unwrap();
        assert_eq!((g2.key.as_str(), g2.snapshots), (g.key.as_str(), 3));
        assert_eq!(g2.last_at, meta("c").captured_at);
        let kept: Vec<_> = q.items.values().filter_map(motion_key).collect();
        assert_eq!(kept, [("a", true), ("b", true), ("c", true), ("d", false)]);

        // A gap that grew while being sent goes again; once the relay has it, the next drop
        // starts a new one.
        let sent = q.items[&gap_seq].record.clone();
        q.push(meta("e"), &JPEG).unwrap();
        assert!(!q.uploaded(gap_seq, &sent).unwrap(), "it grew meanwhile");
        let now = q.items[&gap_seq].record.clone();
        assert!(q.uploaded(gap_seq, &now).unwrap());
        q.push(meta("f"), &JPEG).unwrap();
        let (_, g3) = gap(&q).unwrap();
        assert_ne!(g3.key, g.key);
        // e's snapshot went, then (the records of a to d filling the bound) a whole.
        assert_eq!((g3.snapshots, g3.events), (1, 1));
        let kept: Vec<_> = q.items.values().filter_map(motion_key).collect();
        assert_eq!(
            kept,
            [
                ("b", true),
                ("c", true),
                ("d", true),
                ("e", true),
                ("f", false)
            ]
        );
    }

    #[test]
    fn when_even_the_records_do_not_fit_whole_events_go_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 600).unwrap();
        q.push(meta("a"), &JPEG).unwrap();
        assert_eq!(q.len(), 1, "the newest event stays, whatever it weighs");
        q.push(meta("b"), &JPEG).unwrap();
        let kept: Vec<_> = q.items.values().filter_map(motion_key).collect();
        assert_eq!(kept, [("b", false)]);
        let (_, g) = gap(&q).unwrap();
        assert_eq!((g.snapshots, g.events), (1, 1));
        assert!(!q.path(1, "json").exists() && !q.path(1, "jpg").exists());
    }

    #[test]
    fn clips_go_once_whole_and_only_when_no_event_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(meta("a"), b"jpeg-a").unwrap();
        let path = q.begin_clip("a", meta("a").captured_at, "h264").unwrap();
        std::fs::write(&path, b"part of a").unwrap();
        let (first, _) = next_event(&q);
        assert!(q.uploaded(first.seq, &first.record).unwrap());
        assert!(q.next().unwrap().is_none(), "a clip being recorded waits");
        q.finish_clip(&path, Duration::from_secs(15), Duration::from_secs(5))
            .unwrap();
        q.push(meta("b"), b"jpeg-b").unwrap();
        let (next, _) = next_event(&q);
        assert_eq!(
            motion_key(&next),
            Some(("b", false)),
            "the newer event first"
        );
        assert!(q.has_events());
        assert!(q.uploaded(next.seq, &next.record).unwrap());
        assert!(!q.has_events());
        // It survives a restart whole, with what it says of itself.
        drop(q);
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        let (item, key, bytes) = next_clip(&q);
        assert_eq!((key.as_str(), bytes.as_slice()), ("a", &b"part of a"[..]));
        let Record::Clip(meta) = &item.record else {
            panic!("a clip's record")
        };
        assert_eq!(
            (meta.codec.as_str(), meta.length_ms, meta.event_at_ms),
            ("h264", 15_000, 5_000)
        );
        assert!(q.uploaded(item.seq, &item.record).unwrap());
        assert!(q.is_empty() && !path.exists());
    }

    #[test]
    fn a_clip_cut_off_by_a_crash_is_counted_lost_and_its_file_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(meta("a"), b"jpeg-a").unwrap();
        let path = q.begin_clip("a", meta("a").captured_at, "h265").unwrap();
        std::fs::write(&path, b"half a clip").unwrap();
        drop(q);
        let q = Queue::open(dir.path(), 1 << 20).unwrap();
        let (_, g) = gap(&q).expect("the loss is reported");
        assert_eq!((g.snapshots, g.events, g.clips), (0, 0, 1));
        assert_eq!(g.first_at, meta("a").captured_at);
        assert!(!path.exists());
        assert_eq!(q.len(), 2, "the event and the gap");
    }

    #[test]
    fn a_full_queue_drops_clips_before_snapshots_and_an_events_clip_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        // Two events with snapshots (1512 each) and one clip of 1000 (1512) fit; not more.
        let mut q = Queue::open(dir.path(), 4600).unwrap();
        q.push(meta("a"), &JPEG).unwrap();
        clip(&mut q, "a", &JPEG);
        q.push(meta("b"), &JPEG).unwrap();
        assert!(gap(&q).is_none());
        clip(&mut q, "b", &JPEG);
        let (_, g) = gap(&q).expect("a clip dropped");
        assert_eq!((g.snapshots, g.events, g.clips), (0, 0, 1));
        let clips: Vec<String> = q
            .items
            .values()
            .filter_map(|i| match &i.record {
                Record::Clip(c) => Some(c.key.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(clips, ["b"], "the oldest clip went first");
        assert!(!dir.path().join("00000000000000000002.mp4").exists());

        // Snapshots go next, the clip first of all; when even records do not fit, whole
        // events go, and a clip of theirs would go along.
        let mut q = Queue::open(dir.path(), 1100).unwrap();
        q.push(meta("c"), &JPEG).unwrap();
        let (_, g) = gap(&q).unwrap();
        assert_eq!(g.clips, 2);
        let kept: Vec<_> = q.items.values().filter_map(motion_key).collect();
        assert_eq!(kept, [("c", false)]);
        assert_eq!((g.snapshots, g.events), (2, 2));
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        let path = q.begin_clip("c", meta("c").captured_at, "h264").unwrap();
        std::fs::write(&path, b"c").unwrap();
        q.max_bytes = 600;
        q.push(meta("d"), &JPEG).unwrap();
        let (_, g) = gap(&q).unwrap();
        assert_eq!(
            (g.events, g.clips),
            (3, 3),
            "c went whole, its clip being recorded too"
        );
        q.finish_clip(&path, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert!(!path.exists(), "the rest of its recording is cleared");
        let (_, g) = gap(&q).unwrap();
        assert_eq!(g.clips, 3, "and counted once");
    }
}
