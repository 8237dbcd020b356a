//! The durable upload queue: a snapshot counts as taken once it is on the agent's disk and
//! fsynced. Items go to the relay oldest first, each with its own idempotency key, and leave
//! the disk only once the relay has stored them; the queue survives restarts and power loss.
//!
//! On disk, in one folder: `<seq>.jpg` (the snapshot) and `<seq>.json` (the record). The
//! JSON is written last, through a temporary file renamed into place: an item exists once its
//! JSON does. Leftovers of an interrupted write are cleared at open.
//!
//! The disk it may take is bounded. Past the bound the oldest snapshots go first, while their
//! events stay (sent on without a picture); only if even the records would not fit do whole
//! events go. Either way the loss is itself queued as a [`Gap`] record, so the customer
//! learns of it: nothing is dropped silently.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// The snapshot's size on disk (0: none).
    snapshot_bytes: u64,
}

impl Item {
    fn without_snapshot(seq: u64, record: Record) -> Item {
        Item {
            seq,
            record,
            snapshot_bytes: 0,
        }
    }

    /// What the item counts for against the bound. The one gap record waiting at any time
    /// counts for nothing, so that noting a drop never causes another.
    fn bytes(&self) -> u64 {
        match self.record {
            Record::Motion(_) => RECORD_BYTES + self.snapshot_bytes,
            Record::Gap(_) => 0,
        }
    }
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
        for path in &files {
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            let ext = path.extension().and_then(|e| e.to_str());
            match (seq, ext) {
                (Some(seq), Some("json")) => {
                    let jpg = path.with_extension("jpg");
                    let record = std::fs::read(path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
                    let snapshot = std::fs::metadata(&jpg).map(|m| m.len());
                    let snapshot_bytes = match (&record, snapshot) {
                        (Some(Record::Motion(m)), Ok(n)) if !m.snapshot_dropped => Some(n),
                        (Some(Record::Motion(m)), _) if m.snapshot_dropped => Some(0),
                        (Some(Record::Gap(_)), _) => Some(0),
                        _ => None,
                    };
                    match (record, snapshot_bytes) {
                        (Some(record), Some(snapshot_bytes)) => {
                            if snapshot_bytes == 0 {
                                // A dropped snapshot whose file outlived a crash.
                                let _ = std::fs::remove_file(&jpg);
                            }
                            items.insert(
                                seq,
                                Item {
                                    seq,
                                    record,
                                    snapshot_bytes,
                                },
                            );
                        }
                        _ => {
                            tracing::warn!(file = %path.display(), "unreadable queue entry removed");
                            let _ = std::fs::remove_file(path);
                            let _ = std::fs::remove_file(&jpg);
                        }
                    }
                }
                // A snapshot whose event was never committed, or a half-written file.
                (Some(_), Some("jpg")) if !path.with_extension("json").exists() => {
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
        Ok(Queue {
            dir: dir.to_owned(),
            max_bytes,
            items,
            bytes,
            open_gap,
        })
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
    /// more than its bound, older snapshots (then older events) make room, and a [`Gap`]
    /// says so.
    pub fn push(&mut self, meta: EventMeta, jpeg: &[u8]) -> Result<u64, Error> {
        let seq = self.next_seq();
        write_durably(&self.path(seq, "jpg"), jpeg)?;
        let record = Record::Motion(meta);
        self.write_record(seq, &record)?;
        self.sync_dir()?;
        let item = Item {
            seq,
            record,
            snapshot_bytes: jpeg.len() as u64,
        };
        self.bytes += item.bytes();
        self.items.insert(seq, item);
        self.make_room(seq)?;
        Ok(seq)
    }

    /// Drops the oldest snapshots, then the oldest events, until the queue is within its
    /// bound again; `newest` (just taken) and gap records stay.
    fn make_room(&mut self, newest: u64) -> Result<(), Error> {
        while self.bytes > self.max_bytes {
            let older = |i: &&Item| i.seq != newest && matches!(i.record, Record::Motion(_));
            let oldest_snapshot = self
                .items
                .values()
                .filter(older)
                .find(|i| i.snapshot_bytes > 0)
                .map(|i| i.seq);
            let oldest_event = self
                .items
                .values()
                .find(older)
                .and_then(|i| match &i.record {
                    Record::Motion(m) => Some((i.seq, m.captured_at)),
                    Record::Gap(_) => None,
                });
            if let Some(seq) = oldest_snapshot {
                let item = &self.items[&seq];
                let Record::Motion(meta) = &item.record else {
                    unreachable!("filtered to motion records")
                };
                let meta = EventMeta {
                    snapshot_dropped: true,
                    ..meta.clone()
                };
                let (at, freed) = (meta.captured_at, item.snapshot_bytes);
                let record = Record::Motion(meta);
                // The record first: a crash before the snapshot goes leaves a stray file.
                self.write_record(seq, &record)?;
                let jpg = self.path(seq, "jpg");
                std::fs::remove_file(&jpg).map_err(io("removing", &jpg))?;
                self.items.insert(seq, Item::without_snapshot(seq, record));
                self.bytes -= freed;
                tracing::warn!(
                    seq,
                    "upload queue full: the oldest snapshot is dropped, its event kept"
                );
                self.note_gap(at, 1, 0)?;
            } else if let Some((seq, at)) = oldest_event {
                tracing::warn!(seq, "upload queue full: the oldest event is dropped");
                self.remove(seq)?;
                self.note_gap(at, 0, 1)?;
            } else {
                // Only the newest event and gap records: they stay, whatever they weigh.
                break;
            }
        }
        Ok(())
    }

    /// Adds a drop to the waiting gap record, or starts one.
    fn note_gap(&mut self, at: i64, snapshots: u64, events: u64) -> Result<(), Error> {
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
        self.items.insert(seq, Item::without_snapshot(seq, record));
        self.open_gap = Some(seq);
        Ok(())
    }

    /// The oldest item and its snapshot (empty when it has none).
    pub fn oldest(&self) -> Result<Option<(Item, Vec<u8>)>, Error> {
        let Some(item) = self.items.values().next() else {
            return Ok(None);
        };
        if item.snapshot_bytes == 0 {
            return Ok(Some((item.clone(), Vec::new())));
        }
        let path = self.path(item.seq, "jpg");
        let jpeg = std::fs::read(&path).map_err(io("reading", &path))?;
        Ok(Some((item.clone(), jpeg)))
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

    /// Forgets an item: the JSON first, so a crash in between leaves only a stray snapshot,
    /// which `open` clears.
    fn remove(&mut self, seq: u64) -> Result<(), Error> {
        if let Some(item) = self.items.remove(&seq) {
            self.bytes -= item.bytes();
            let json = self.path(seq, "json");
            std::fs::remove_file(&json).map_err(io("removing", &json))?;
            if item.snapshot_bytes > 0 {
                let _ = std::fs::remove_file(self.path(seq, "jpg"));
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
        }
    }

    fn motion_key(item: &Item) -> Option<(&str, bool)> {
        match &item.record {
            Record::Motion(m) => Some((m.key.as_str(), m.snapshot_dropped)),
            Record::Gap(_) => None,
        }
    }

    fn gap(q: &Queue) -> Option<(u64, Gap)> {
        q.items.values().find_map(|i| match &i.record {
            Record::Gap(g) => Some((i.seq, g.clone())),
            Record::Motion(_) => None,
        })
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
        let (first, jpeg) = q.oldest().unwrap().unwrap();
        assert_eq!(motion_key(&first), Some(("a", false)));
        assert_eq!(jpeg, b"jpeg-a");
        assert!(q.uploaded(first.seq, &first.record).unwrap());
        let (second, _) = q.oldest().unwrap().unwrap();
        assert_eq!(second.record, Record::Motion(meta("b")));
        q.push(meta("c"), b"jpeg-c").unwrap();
        let (next, _) = q.oldest().unwrap().unwrap();
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
        let (first, jpeg) = q.oldest().unwrap().unwrap();
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
}
