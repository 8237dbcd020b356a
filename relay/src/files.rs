//! The files the relay keeps besides its database: each written durably before it counts,
//! folders of numbered entries swept for what no row names any more, and the events'
//! snapshots at `<data_dir>/snapshots/<camera>/<key>.jpg`.

use crate::error::{Error, ErrorKind};
use crate::store::Event;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a file durably: a temporary file, fsynced, renamed into place, and the folder
/// fsynced so the name survives a power cut too.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        // A part-written file (the disk filled up) would only take room from the next one.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(folder)?.sync_all()
}

/// The numbers `N` of the entries `N{suffix}` in `dir` (none if it does not exist).
pub(crate) fn numbered_files(dir: &std::path::Path, suffix: &str) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(suffix)?.parse().ok())
        .collect()
}

/// Where the events' snapshots are: one folder per camera, one file per idempotency key.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    pub fn new(dir: PathBuf) -> SnapshotFiles {
        SnapshotFiles { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, camera: i64, key: &str) -> PathBuf {
        self.dir.join(camera.to_string()).join(format!("{key}.jpg"))
    }

    pub fn write(&self, camera: i64, key: &str, jpeg: &[u8]) -> std::io::Result<()> {
        write_durably(&self.path(camera, key), jpeg)
    }

    /// The snapshot of `event` (stored before its row was).
    pub async fn read(&self, event: &Event) -> Result<Vec<u8>, Error> {
        let path = self.path(event.camera_id, &event.idempotency_key);
        tokio::fs::read(&path).await.map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("snapshot of event {} unreadable", event.id),
            )
            .with_source(e)
        })
    }
}
