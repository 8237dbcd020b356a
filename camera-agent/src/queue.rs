//! The durable upload queue: a snapshot counts as taken once it is on the agent's disk and
//! fsynced. Items go to the relay oldest first, each with its own idempotency key, and leave
//! the disk only once the relay has stored them; the queue survives restarts and power loss.
//!
//! On disk, in one folder: `<seq>.jpg` (the snapshot) and `<seq>.json` (the event). The JSON is
//! written last, through a temporary file renamed into place: an item exists once its JSON
//! does. Leftovers of an interrupted write are cleared at open.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the relay is told of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Unique per event, so that a retried upload is the same event at the relay.
    pub key: String,
    /// When the picture was taken, Unix milliseconds.
    pub captured_at: i64,
    pub score: f64,
    /// The moving region, `[x, y, w, h]` in the snapshot's pixels.
    pub bbox: [u32; 4],
}

/// One queued event.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: u64,
    pub meta: EventMeta,
    bytes: u64,
}

/// The queue in its folder.
pub struct Queue {
    dir: PathBuf,
    max_bytes: u64,
    items: BTreeMap<u64, Item>,
    bytes: u64,
    /// Events dropped to keep within `max_bytes`, since start.
    pub dropped: u64,
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
    /// Opens (creating) the queue in `dir`, holding at most `max_bytes` of snapshots.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Queue, Error> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut items = BTreeMap::new();
        let mut bytes = 0;
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
                    let meta = std::fs::read(path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<EventMeta>(&b).ok());
                    match (meta, std::fs::metadata(&jpg)) {
                        (Some(meta), Ok(m)) => {
                            bytes += m.len();
                            items.insert(
                                seq,
                                Item {
                                    seq,
                                    meta,
                                    bytes: m.len(),
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
        Ok(Queue {
            dir: dir.to_owned(),
            max_bytes,
            items,
            bytes,
            dropped: 0,
        })
    }

    fn path(&self, seq: u64, ext: &str) -> PathBuf {
        self.dir.join(format!("{seq:020}.{ext}"))
    }

    /// Adds an event durably; returns once it is on disk. When the queue would hold more
    /// than `max_bytes`, the oldest events go first (and are counted in `dropped`).
    pub fn push(&mut self, meta: EventMeta, jpeg: &[u8]) -> Result<u64, Error> {
        let seq = self.items.keys().next_back().map_or(1, |s| s + 1);
        let json = serde_json::to_vec(&meta).map_err(|e| Error::Config(e.to_string()))?;
        write_durably(&self.path(seq, "jpg"), jpeg)?;
        write_durably(&self.path(seq, "json"), &json)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing", &self.dir))?;
        let bytes = jpeg.len() as u64;
        self.items.insert(seq, Item { seq, meta, bytes });
        self.bytes += bytes;
        while self.bytes > self.max_bytes && self.items.len() > 1 {
            let oldest = *self.items.keys().next().expect("not empty");
            tracing::warn!(
                seq = oldest,
                "upload queue full: the oldest snapshot is dropped"
            );
            self.remove(oldest)?;
            self.dropped += 1;
        }
        Ok(seq)
    }

    /// The oldest event and its snapshot.
    pub fn oldest(&self) -> Result<Option<(Item, Vec<u8>)>, Error> {
        let Some(item) = self.items.values().next() else {
            return Ok(None);
        };
        let path = self.path(item.seq, "jpg");
        let jpeg = std::fs::read(&path).map_err(io("reading", &path))?;
        Ok(Some((item.clone(), jpeg)))
    }

    /// Forgets an event (the relay has it): the JSON first, so a crash in between leaves
    /// only a stray snapshot, which `open` clears.
    pub fn remove(&mut self, seq: u64) -> Result<(), Error> {
        if let Some(item) = self.items.remove(&seq) {
            self.bytes -= item.bytes;
            let json = self.path(seq, "json");
            std::fs::remove_file(&json).map_err(io("removing", &json))?;
            let _ = std::fs::remove_file(self.path(seq, "jpg"));
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
            captured_at: 1_800_000_000_000,
            score: 0.05,
            bbox: [1, 2, 3, 4],
        }
    }

    #[test]
    fn events_survive_a_restart_in_order_and_leave_when_removed() {
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
        assert_eq!(
            (first.meta.key.as_str(), jpeg.as_slice()),
            ("a", &b"jpeg-a"[..])
        );
        q.remove(first.seq).unwrap();
        let (second, _) = q.oldest().unwrap().unwrap();
        assert_eq!(second.meta, meta("b"));
        q.push(meta("c"), b"jpeg-c").unwrap();
        assert_eq!(
            q.oldest().unwrap().unwrap().0.meta.key,
            "b",
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
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 25).unwrap();
        for key in ["a", "b", "c"] {
            q.push(meta(key), &[0u8; 10]).unwrap();
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped, 1);
        assert_eq!(q.oldest().unwrap().unwrap().0.meta.key, "b");
    }
}
