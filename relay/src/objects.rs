//! The pictures the relay keeps (events' snapshots, the pictures customers share with their
//! guard center) and events' clips behind one interface, in one of two places: a folder, by
//! default `data_dir` as it always was, or a bucket of S3-compatible object storage
//! (through the `object_store` crate).
//!
//! Either way an object is stored before the row that names it commits: a file is fsynced,
//! its folder too, before it counts; an S3 `PUT` is answered, and a `PUT` cut off half-way
//! stores nothing. A picture whose row never came (the relay stopped in between) is deleted
//! by the hourly sweep once it is old enough not to be an upload in flight.
//!
//! Pictures are read only by the relay, after the owner check of the route that asks, and
//! streamed to the browser or attached to the mail: the bucket stays private and no URL to
//! it ever leaves the relay (ARCHITECTURE.md says why).

use crate::config::{S3Config, StorageConfig};
use crate::error::{Error, ErrorKind};
use crate::store::Event;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a client is told to wait when the object store cannot be reached.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(5);

/// Where the pictures are; cheap to clone.
#[derive(Clone)]
pub struct Objects {
    place: Arc<Place>,
}

enum Place {
    Folder(PathBuf),
    Bucket { store: AmazonS3, prefix: String },
}

/// An object's name in the store: `/`-separated, relative, made only here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

/// Where events' snapshots are: one folder per camera.
pub const SNAPSHOTS: &str = "snapshots";
/// Where the pictures shared with a guard center are.
pub const SHARED_PICTURES: &str = "dispatch";
/// Where events' clips are: one folder per camera.
pub const CLIPS: &str = "clips";

/// An object's bytes as they are read.
pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// The parts a clip goes to the bucket in.
const MULTIPART_CHUNK: usize = 8 * 1024 * 1024;

impl ObjectKey {
    /// The snapshot of `camera`'s event with this idempotency key (checked to be a plain
    /// name when it was uploaded).
    pub fn snapshot(camera: i64, key: &str) -> ObjectKey {
        ObjectKey(format!("{SNAPSHOTS}/{camera}/{key}.jpg"))
    }

    /// The snapshot of a stored event (one with `snapshot_bytes > 0`).
    pub fn snapshot_of(event: &Event) -> ObjectKey {
        ObjectKey::snapshot(event.camera_id, &event.idempotency_key)
    }

    /// The clip of `camera`'s event with this idempotency key.
    pub fn clip(camera: i64, key: &str) -> ObjectKey {
        ObjectKey(format!("{CLIPS}/{camera}/{key}.mp4"))
    }

    /// The picture shared with dispatch request `request`.
    pub fn shared_picture(request: i64) -> ObjectKey {
        ObjectKey(format!("{SHARED_PICTURES}/{request}.jpg"))
    }

    /// An object's name as a backup's manifest gives it, if it is one the relay makes: a
    /// tampered manifest names nothing outside the storage's own folders.
    pub fn parse(name: &str) -> Option<ObjectKey> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let number = |s: &str| s.parse::<i64>().ok().filter(|n| n.to_string() == s);
        let key = match name.split('/').collect::<Vec<_>>()[..] {
            [SNAPSHOTS, camera, file] => {
                let key = file.strip_suffix(".jpg").filter(|k| plain(k))?;
                ObjectKey::snapshot(number(camera)?, key)
            }
            [CLIPS, camera, file] => {
                let key = file.strip_suffix(".mp4").filter(|k| plain(k))?;
                ObjectKey::clip(number(camera)?, key)
            }
            [SHARED_PICTURES, file] => {
                ObjectKey::shared_picture(number(file.strip_suffix(".jpg")?)?)
            }
            _ => return None,
        };
        (key.0 == name).then_some(key)
    }

    /// An object a listing of `folder` found.
    pub fn listed(folder: &str, listed: &Listed) -> ObjectKey {
        ObjectKey(format!("{folder}/{}", listed.name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An object a listing found: its name under the listed folder, and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub modified: SystemTime,
}

impl Objects {
    /// The configured place: `storage.s3`'s bucket, checked to answer, or files in
    /// `data_dir`.
    pub async fn open(data_dir: &Path, storage: &StorageConfig) -> Result<Objects, Error> {
        match &storage.s3 {
            None => Ok(Objects::folder(data_dir)),
            Some(s3) => {
                let objects = Objects::bucket(s3)?;
                objects.check().await?;
                Ok(objects)
            }
        }
    }

    /// Pictures as files under `dir` (the relay's `data_dir`).
    pub fn folder(dir: &Path) -> Objects {
        Objects {
            place: Arc::new(Place::Folder(dir.to_owned())),
        }
    }

    /// Pictures in `s3`'s bucket. Nothing is sent yet; [`Objects::check`] does.
    pub fn bucket(s3: &S3Config) -> Result<Objects, Error> {
        let secret = |what: &str, file: &Path| {
            std::fs::read_to_string(file)
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("cannot read storage.s3.{what} {}: {e}", file.display()),
                    )
                })
        };
        let mut client = ClientOptions::new()
            .with_allow_http(s3.endpoint.scheme() == "http")
            .with_timeout(s3.timeout)
            .with_connect_timeout(s3.timeout.min(Duration::from_secs(5)));
        if let Some(ca) = &s3.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("cannot read storage.s3.ca_file {}: {e}", ca.display()),
                )
            })?;
            for certificate in object_store::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::new(ErrorKind::InvalidArgument, "storage.s3.ca_file").with_source(e)
            })? {
                client = client.with_root_certificate(certificate);
            }
        }
        let store = AmazonS3Builder::new()
            .with_endpoint(s3.endpoint.as_str().trim_end_matches('/'))
            .with_bucket_name(&s3.bucket)
            .with_region(&s3.region)
            .with_access_key_id(secret("access_key_file", &s3.access_key_file)?)
            .with_secret_access_key(secret("secret_key_file", &s3.secret_key_file)?)
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            // A few quick retries, all within the timeout: past it the upload answers 503
            // and the agent, which keeps the event, tries again later.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: s3.timeout,
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, "storage.s3").with_source(e))?;
        Ok(Objects {
            place: Arc::new(Place::Bucket {
                store,
                prefix: s3.prefix.trim_end_matches('/').to_owned(),
            }),
        })
    }

    /// Checks that the store answers and may be listed (for start-up and `/healthz`).
    pub async fn check(&self) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(_) => Ok(()),
            Place::Bucket { store, prefix } => {
                let path = ObjectPath::from(prefix.as_str());
                store
                    .list_with_delimiter(Some(&path))
                    .await
                    .map(drop)
                    .map_err(unreachable)
            }
        }
    }

    /// Stores `bytes` as `key`, replacing what was there, durably.
    pub async fn put(&self, key: &ObjectKey, bytes: Vec<u8>) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(dir) => {
                let path = dir.join(&key.0);
                tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
                    .await
                    .map_err(|e| Error::internal("picture writer").with_source(e))?
                    .map_err(|e| Error::storage("the picture", &e))
            }
            Place::Bucket { store, prefix } => store
                .put(&in_bucket(prefix, &key.0), bytes.into())
                .await
                .map(drop)
                .map_err(unreachable),
        }
    }

    /// Stores the file at `path` as `key` (a clip, too large to hold in memory), durably:
    /// moved into place when it can be, else copied; to a bucket in parts.
    pub async fn put_file(&self, key: &ObjectKey, path: &Path) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(dir) => {
                let (target, source) = (dir.join(&key.0), path.to_owned());
                tokio::task::spawn_blocking(move || move_durably(&source, &target))
                    .await
                    .map_err(|e| Error::internal("clip writer").with_source(e))?
                    .map_err(|e| Error::storage("the clip", &e))
            }
            Place::Bucket { store, prefix } => {
                let upload = store
                    .put_multipart(&in_bucket(prefix, &key.0))
                    .await
                    .map_err(unreachable)?;
                let mut writer =
                    object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
                let sent = async {
                    use tokio::io::AsyncReadExt;
                    let mut file = tokio::fs::File::open(path)
                        .await
                        .map_err(|e| Error::storage("the clip", &e))?;
                    let mut buf = vec![0; 1024 * 1024];
                    loop {
                        let n = file
                            .read(&mut buf)
                            .await
                            .map_err(|e| Error::storage("the clip", &e))?;
                        if n == 0 {
                            return Ok(());
                        }
                        writer.wait_for_capacity(2).await.map_err(unreachable)?;
                        writer.write(&buf[..n]);
                    }
                };
                match sent.await {
                    Ok(()) => writer.finish().await.map(drop).map_err(unreachable),
                    Err(e) => {
                        // Parts already sent are cleared; nothing is stored.
                        let _ = writer.abort().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The bytes `range` of the object `key`, streamed.
    pub async fn read_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<ByteStream, Error> {
        let missing = |e| Error::internal(format!("object {} unreadable", key.0)).with_source(e);
        match &*self.place {
            Place::Folder(dir) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut file = tokio::fs::File::open(dir.join(&key.0))
                    .await
                    .map_err(missing)?;
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(missing)?;
                let part = file.take(range.end.saturating_sub(range.start));
                Ok(tokio_util::io::ReaderStream::new(part).boxed())
            }
            Place::Bucket { store, prefix } => {
                let options = object_store::GetOptions {
                    range: Some(object_store::GetRange::Bounded(range)),
                    ..Default::default()
                };
                let got = store
                    .get_opts(&in_bucket(prefix, &key.0), options)
                    .await
                    .map_err(unreachable)?;
                Ok(got.into_stream().map_err(std::io::Error::other).boxed())
            }
        }
    }

    /// The object `key` (stored before the row that names it).
    pub async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, Error> {
        let missing = |e| Error::internal(format!("picture {} unreadable", key.0)).with_source(e);
        match &*self.place {
            Place::Folder(dir) => tokio::fs::read(dir.join(&key.0)).await.map_err(missing),
            Place::Bucket { store, prefix } => {
                let got = async { store.get(&in_bucket(prefix, &key.0)).await?.bytes().await };
                match got.await {
                    Ok(bytes) => Ok(bytes.to_vec()),
                    Err(e @ object_store::Error::NotFound { .. }) => Err(missing(
                        std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()),
                    )),
                    Err(e) => Err(unreachable(e)),
                }
            }
        }
    }

    /// The object `key` streamed whole, or `None` when there is none (deleted since the row
    /// that named it was read).
    pub async fn stream(&self, key: &ObjectKey) -> Result<Option<ByteStream>, Error> {
        match &*self.place {
            Place::Folder(dir) => match tokio::fs::File::open(dir.join(&key.0)).await {
                Ok(file) => Ok(Some(tokio_util::io::ReaderStream::new(file).boxed())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => {
                    Err(Error::internal(format!("object {} unreadable", key.0)).with_source(e))
                }
            },
            Place::Bucket { store, prefix } => match store.get(&in_bucket(prefix, &key.0)).await {
                Ok(got) => Ok(Some(
                    got.into_stream().map_err(std::io::Error::other).boxed(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(unreachable(e)),
            },
        }
    }

    /// Stores a copy of the file at `path` as `key`, durably, leaving the file as it was (a
    /// restore from a backup).
    pub async fn put_copy_of(&self, key: &ObjectKey, path: &Path) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(dir) => {
                let (target, source) = (dir.join(&key.0), path.to_owned());
                tokio::task::spawn_blocking(move || copy_durably(&source, &target))
                    .await
                    .map_err(|e| Error::internal("object copier").with_source(e))?
                    .map_err(|e| Error::storage("the object", &e))
            }
            // A bucket's upload only reads the file.
            Place::Bucket { .. } => self.put_file(key, path).await,
        }
    }

    /// Deletes `key`; one that is not there is fine.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(dir) => match tokio::fs::remove_file(dir.join(&key.0)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::internal("cannot delete a picture").with_source(e))
                }
                _ => Ok(()),
            },
            Place::Bucket { store, prefix } => match store.delete(&in_bucket(prefix, &key.0)).await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(unreachable(e)),
            },
        }
    }

    /// Every object under `folder`, at any depth, named relative to it.
    pub async fn list(&self, folder: &str) -> Result<Vec<Listed>, Error> {
        match &*self.place {
            Place::Folder(dir) => {
                let root = dir.join(folder);
                tokio::task::spawn_blocking(move || list_files(&root))
                    .await
                    .map_err(|e| Error::internal("picture lister").with_source(e))?
                    .map_err(|e| Error::internal("cannot list pictures").with_source(e))
            }
            Place::Bucket { store, prefix } => {
                let root = in_bucket(prefix, folder);
                let skip = root.parts().count();
                let listed: Vec<_> = store
                    .list(Some(&root))
                    .try_collect()
                    .await
                    .map_err(unreachable)?;
                Ok(listed
                    .into_iter()
                    .map(|o| Listed {
                        name: o
                            .location
                            .parts()
                            .skip(skip)
                            .map(|p| p.as_ref().to_owned())
                            .collect::<Vec<_>>()
                            .join("/"),
                        modified: o.last_modified.into(),
                    })
                    .collect())
            }
        }
    }

    /// The names of the folders directly under `folder`.
    pub async fn folders(&self, folder: &str) -> Result<Vec<String>, Error> {
        match &*self.place {
            Place::Folder(dir) => {
                let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
                    return Ok(Vec::new());
                };
                Ok(entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .collect())
            }
            Place::Bucket { store, prefix } => {
                let listed = store
                    .list_with_delimiter(Some(&in_bucket(prefix, folder)))
                    .await
                    .map_err(unreachable)?;
                Ok(listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_owned))
                    .collect())
            }
        }
    }

    /// Deletes `folder` and everything in it.
    pub async fn delete_folder(&self, folder: &str) -> Result<(), Error> {
        match &*self.place {
            Place::Folder(dir) => match tokio::fs::remove_dir_all(dir.join(folder)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::internal("cannot delete a folder of pictures").with_source(e))
                }
                _ => Ok(()),
            },
            Place::Bucket { store, prefix } => {
                let listed = store
                    .list(Some(&in_bucket(prefix, folder)))
                    .map_ok(|o| o.location)
                    .boxed();
                store
                    .delete_stream(listed)
                    .try_collect::<Vec<_>>()
                    .await
                    .map(drop)
                    .map_err(unreachable)
            }
        }
    }
}

/// What copying pictures did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ObjectCopy {
    /// Pictures in the source.
    pub pictures: usize,
    /// Pictures this run copied (the others were there from an earlier run).
    pub copied: usize,
}

impl Objects {
    /// Copies every picture here that `target` lacks (`admin migrate-storage`), then checks
    /// that `target` holds them all. Run again, it copies only what is still missing.
    pub async fn copy_into(&self, target: &Objects) -> Result<ObjectCopy, Error> {
        let mut done = ObjectCopy {
            pictures: 0,
            copied: 0,
        };
        for folder in [SNAPSHOTS, SHARED_PICTURES, CLIPS] {
            let names = |listed: Vec<Listed>| -> std::collections::BTreeSet<String> {
                listed
                    .into_iter()
                    .map(|o| o.name)
                    // A write the relay never finished is no picture.
                    .filter(|n| !n.ends_with(".tmp"))
                    .collect()
            };
            let here = names(self.list(folder).await?);
            let there = names(target.list(folder).await?);
            for name in here.difference(&there) {
                let key = ObjectKey(format!("{folder}/{name}"));
                target.put(&key, self.get(&key).await?).await?;
                done.copied += 1;
            }
            let now = names(target.list(folder).await?);
            if let Some(missing) = here.difference(&now).next() {
                return Err(Error::internal(format!(
                    "{folder}/{missing} is still missing after the copy"
                )));
            }
            done.pictures += here.len();
        }
        Ok(done)
    }
}

/// `key` inside the bucket, under the configured prefix.
fn in_bucket(prefix: &str, key: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(key)
    } else {
        ObjectPath::from(format!("{prefix}/{key}"))
    }
}

/// The object store did not do what was asked (down, timed out, refused): the request that
/// needed it may pass later, and its client is told when to try again.
fn unreachable(e: object_store::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the picture storage cannot be reached; try again shortly",
    )
    .retry_after(UNREACHABLE_RETRY)
    .with_source(e)
}

/// Writes a file durably: a temporary file, fsynced, renamed into place, and the folder
/// fsynced so the name survives a power cut too.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Moves the file at `source` to `target` durably: renamed when both are on one disk (the
/// usual: both under `data_dir`), else copied through a temporary file, fsynced; the folder
/// fsynced either way.
fn move_durably(source: &Path, target: &Path) -> std::io::Result<()> {
    let folder = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    if std::fs::rename(source, target).is_err() {
        return copy_durably(source, target);
    }
    std::fs::File::open(folder)?.sync_all()
}

/// Copies `source` to `target` through a temporary file, fsynced, then its folder.
pub(crate) fn copy_durably(source: &Path, target: &Path) -> std::io::Result<()> {
    let folder = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".tmp");
    let copied = std::fs::copy(source, &tmp).and_then(|_| std::fs::File::open(&tmp)?.sync_all());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, target)?;
    std::fs::File::open(folder)?.sync_all()
}

/// Every file under `root`, named relative to it (none if it does not exist).
fn list_files(root: &Path) -> std::io::Result<Vec<Listed>> {
    let mut found = Vec::new();
    walk_files(root, |name, entry| {
        found.push(Listed {
            name,
            modified: entry.metadata()?.modified()?,
        });
        Ok(())
    })?;
    Ok(found)
}

/// Calls `each` with the name (relative to `root`) and the listing's entry of every file
/// under `root`, at any depth; nothing if `root` does not exist. Only the folders' listings
/// are read: a file is looked at only if `each` does.
pub(crate) fn walk_files(
    root: &Path,
    mut each: impl FnMut(String, &std::fs::DirEntry) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let name = path.strip_prefix(root).unwrap_or(&path);
                each(name.to_string_lossy().into_owned(), &entry)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Objects;
    use std::path::Path;

    /// Where a test's pictures go: files in `dir`, or a prefix of its own in the test
    /// process's Garage bucket.
    pub(crate) async fn objects(dir: &Path) -> Objects {
        if !crate::store::testing::on_servers() {
            return Objects::folder(dir);
        }
        let place = eyeward_testkit::garage::Garage::shared().place();
        let text = format!("{}\n", place.config(dir).unwrap());
        let config: crate::config::Config = crate::config::Config::parse(&text).unwrap();
        Objects::open(dir, &config.storage).await.unwrap()
    }
}
