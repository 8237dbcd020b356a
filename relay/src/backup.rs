//! Backups of a relay while it serves (`eyeward-relay admin backup`), their checks
//! (`admin verify-backup`) and their restore into an empty installation (`admin restore`).
//!
//! A backup is a folder:
//! - `manifest.json`: the relay and schema versions, the rows per table, and the size and
//!   SHA-256 of the database copy and of every object (picture, clip) the copy's rows name;
//! - `database-<made at>.db` (SQLite, written by `VACUUM INTO`) or `.pgdump` (`pg_dump`'s
//!   custom format);
//! - `objects/`: the objects, named as in the picture storage.
//!
//! Taken again into the same folder, a backup copies only the objects the folder lacks
//! (objects never change once stored). The new manifest replaces the old one in one rename,
//! the last step: until then the folder holds the previous backup whole, so a backup cut off
//! half-way loses nothing. What the new manifest no longer names is removed after.
//!
//! An object deleted between the database copy and its own copy (a customer deleted the
//! event, retention removed it) is listed as vanished: the restored relay has its row, which
//! answers as a picture that is gone.

use crate::config::{Config, DatabaseConfig, DatabaseTls};
use crate::error::{Error, ErrorKind};
use crate::objects::{CLIPS, ObjectKey, Objects, SHARED_PICTURES, SNAPSHOTS};
use crate::store::backup::{self as db, Contents, Engine, NamedObjects};
use crate::store::{DB_FILE, Store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The manifest's file name in a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The folder of objects in a backup folder.
const OBJECTS: &str = "objects";
/// The manifest format this relay writes and reads.
const FORMAT: u32 = 1;
/// Objects copied at once: a bucket answers each in a round trip.
const COPIES_IN_FLIGHT: usize = 8;
/// Megabytes a second a backup copies pictures at, unless told otherwise (see
/// docs/benchmarks.md, "Backups").
pub const DEFAULT_MAX_RATE: u32 = 20;
/// Problems named in a failed check (all are counted).
const PROBLEMS_NAMED: usize = 10;
/// How long `pg_dump` and `pg_restore` may take.
const PG_TOOL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A backup's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub relay_version: String,
    pub engine: Engine,
    pub schema_version: i64,
    /// When the database was copied (Unix milliseconds).
    pub made_at: i64,
    pub database: Checked,
    /// Rows per table in the database copy.
    pub rows: BTreeMap<String, i64>,
    pub objects: Vec<Checked>,
    /// Objects the copy's rows name that were deleted before they could be copied.
    pub vanished: Vec<String>,
}

/// A file of the backup: its name (an object's key, or the database file's name), size and
/// SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What `admin backup` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub engine: Engine,
    pub schema_version: i64,
    pub database_bytes: u64,
    pub rows: i64,
    pub events: i64,
    pub objects: usize,
    /// Objects this run copied (the others were in the folder from an earlier backup).
    pub objects_copied: usize,
    pub bytes_copied: u64,
    pub vanished: usize,
    pub seconds: f64,
}

/// What `admin verify-backup` found sound.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub engine: Engine,
    pub relay_version: String,
    pub schema_version: i64,
    pub made_at: i64,
    pub rows: i64,
    pub events: i64,
    pub objects: usize,
    pub bytes: u64,
}

/// What `admin restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub backup: Verified,
    /// The schema version after the restored database was brought up to date.
    pub schema_version: i64,
}

/// The store and objects of the installation `config` names, to back up: opened only when
/// its database is at this relay's own schema, so that a newer binary never upgrades the
/// database under the older relay that serves it.
pub async fn open_installation(config: &Config) -> Result<(Store, Objects), Error> {
    let probe = match &config.database.url {
        None => db::probe_sqlite(&config.data_dir).await?,
        Some(url) => db::probe_postgres(url, &config.database).await?,
    };
    let ours = probe.engine.newest_schema();
    match probe.schema_version {
        Some(v) if v == ours => {}
        Some(v) => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "the database is at schema version {v} and this eyeward-relay {} at {ours}: \
                     back it up with the relay binary that serves it",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        None => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "there is no database to back up: is the config the relay's?",
            ));
        }
    }
    Ok((
        Store::open(&config.data_dir, &config.database).await?,
        Objects::open(&config.data_dir, &config.storage).await?,
    ))
}

/// Backs the relay of `config` (its `store` and `objects`) up into the folder `to`.
pub async fn backup(
    config: &Config,
    store: &Store,
    objects: &Objects,
    to: &Path,
    max_rate: u32,
) -> Result<BackupSummary, Error> {
    let started = eyeward::clock::monotonic();
    std::fs::create_dir_all(to.join(OBJECTS)).map_err(|e| folder_error(to, e))?;
    // The copy holds what the database does (password hashes, cameras' RTSP credentials):
    // the folder is its owner's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| folder_error(to, e))?;
    }
    let _lock = lock(to)?;
    // An unreadable earlier manifest only means every object is copied again.
    let before = read_manifest(to).ok();
    let made_at = eyeward::clock::Clock::real().now().0;
    let engine = store.engine();
    let file = database_file(engine, made_at);
    let path = to.join(&file);
    let mut progress = Progress::on_terminal();
    progress.show(format_args!("backup: copying the database"));
    let contents = match engine {
        Engine::Sqlite => {
            store.copy_sqlite_into(&path).await?;
            let copy = db::open_copy(&path).await?;
            let contents = copy.contents().await;
            copy.close().await;
            contents?
        }
        Engine::Postgres => {
            let url = postgres_url(&config.database)?;
            let path = &path;
            store
                .on_exported_snapshot(|snapshot, contents| async move {
                    let mut dump = pg_tool("pg_dump", url, &config.database)?;
                    dump.arg("--format=custom")
                        .arg(format!("--snapshot={snapshot}"))
                        .arg("--file")
                        .arg(path);
                    run_pg_tool(dump).await?;
                    Ok(contents)
                })
                .await?
        }
    };
    let database = checked_file(&path, file).await?;
    let shelf = to.join(OBJECTS);
    // One listing rather than a look at each file: a daily backup keeps most objects, and
    // 100,000 looks cost the relay beside it more than the copies do.
    let present = names_under(&shelf).map_err(|e| folder_error(to, e))?;
    let earlier: HashMap<String, Checked> = before
        .into_iter()
        .flat_map(|m| m.objects)
        .filter(|c| present.contains(&c.name))
        .map(|c| (c.name.clone(), c))
        .collect();
    let pace = Pace::new(max_rate);
    let keys = named_keys(&contents.named);
    let total = keys.len();
    let mut copies = futures_util::stream::iter(keys)
        .map(|key| copy_object(objects, &shelf, earlier.get(key.as_str()), &pace, key))
        .buffer_unordered(COPIES_IN_FLIGHT);
    let (mut kept, mut vanished, mut copied, mut bytes_copied) = (Vec::new(), Vec::new(), 0, 0);
    while let Some(done) = copies.next().await {
        match done? {
            ObjectCopied::Kept(c) => kept.push(c),
            ObjectCopied::Copied(c) => {
                copied += 1;
                bytes_copied += c.bytes;
                kept.push(c);
            }
            ObjectCopied::Vanished(key) => vanished.push(key.as_str().to_owned()),
        }
        progress.show(format_args!(
            "backup: objects {}/{total} ({copied} copied now)",
            kept.len() + vanished.len()
        ));
    }
    drop(copies);
    progress.finish();
    flush_file_system(&shelf)?;
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    vanished.sort();
    let manifest = Manifest {
        format: FORMAT,
        relay_version: env!("CARGO_PKG_VERSION").to_owned(),
        engine,
        schema_version: contents.schema_version,
        made_at,
        database,
        rows: contents.rows,
        objects: kept,
        vanished,
    };
    write_manifest(to, &manifest)?;
    prune(to, &manifest, &present)?;
    if !manifest.vanished.is_empty() {
        tracing::warn!(
            objects = manifest.vanished.len(),
            "objects deleted while the backup ran are not in it (their rows are)"
        );
    }
    Ok(BackupSummary {
        engine,
        schema_version: manifest.schema_version,
        database_bytes: manifest.database.bytes,
        rows: manifest.rows.values().sum(),
        events: manifest.rows.get("events").copied().unwrap_or(0),
        objects: manifest.objects.len(),
        objects_copied: copied,
        bytes_copied,
        vanished: manifest.vanished.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Checks the backup in `from`: its manifest, the size and SHA-256 of every file, the
/// database copy's own soundness, and that this relay can run its schema.
pub async fn verify(from: &Path) -> Result<Verified, Error> {
    verified(from).await.map(|(_, found)| found)
}

/// [`verify`], and the manifest it checked.
async fn verified(from: &Path) -> Result<(Manifest, Verified), Error> {
    let manifest = read_manifest(from)?;
    if manifest.format != FORMAT {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "the backup's manifest is of format {}; this relay reads format {FORMAT}",
                manifest.format
            ),
        ));
    }
    manifest.engine.refuse_newer(manifest.schema_version)?;
    let mut problems = Vec::new();
    if manifest.database.name != database_file(manifest.engine, manifest.made_at) {
        problems.push(format!(
            "the manifest names the database file {:?}",
            manifest.database.name
        ));
    } else {
        let path = from.join(&manifest.database.name);
        let found = check_file(&path, &manifest.database).await;
        let sound = found.is_none();
        problems.extend(found);
        if sound {
            problems.extend(check_database(&manifest, &path).await);
        }
    }
    for object in &manifest.objects {
        if ObjectKey::parse(&object.name).is_none() {
            problems.push(format!("the manifest names the object {:?}", object.name));
            continue;
        }
        problems.extend(check_file(&from.join(OBJECTS).join(&object.name), object).await);
    }
    if !problems.is_empty() {
        let mut named = problems
            .iter()
            .take(PROBLEMS_NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if problems.len() > PROBLEMS_NAMED {
            named.push_str("; …");
        }
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "the backup in {} is damaged ({} problems): {named}",
                from.display(),
                problems.len()
            ),
        ));
    }
    let found = Verified {
        engine: manifest.engine,
        relay_version: manifest.relay_version.clone(),
        schema_version: manifest.schema_version,
        made_at: manifest.made_at,
        rows: manifest.rows.values().sum(),
        events: manifest.rows.get("events").copied().unwrap_or(0),
        objects: manifest.objects.len(),
        bytes: manifest.database.bytes + manifest.objects.iter().map(|o| o.bytes).sum::<u64>(),
    };
    Ok((manifest, found))
}

/// Restores the backup in `from` into the empty installation `config` names, after
/// [`verify`] found it sound; the database is then brought up to this relay's schema.
pub async fn restore(config: &Config, from: &Path) -> Result<Restored, Error> {
    let (manifest, verified) = verified(from).await?;
    let objects = Objects::open(&config.data_dir, &config.storage).await?;
    match (manifest.engine, &config.database.url) {
        (Engine::Sqlite, None) => {
            let taken = match std::fs::read_dir(&config.data_dir) {
                Ok(mut entries) => entries.next().is_some(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("cannot read data_dir {}", config.data_dir.display()),
                    )
                    .with_source(e));
                }
            };
            if taken {
                return Err(not_empty(format!(
                    "data_dir {} is not empty",
                    config.data_dir.display()
                )));
            }
        }
        (Engine::Postgres, Some(url)) => {
            if db::probe_postgres(url, &config.database).await?.tables > 0 {
                return Err(not_empty(
                    "the database of [database] url has tables".to_owned(),
                ));
            }
        }
        (Engine::Sqlite, Some(_)) => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "the backup is of a SQLite database: restore it with a config without \
                 [database] url, then `admin migrate-storage` copies it into PostgreSQL",
            ));
        }
        (Engine::Postgres, None) => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "the backup is of a PostgreSQL database: set [database] url to an empty \
                 database to restore it into",
            ));
        }
    }
    for folder in [SNAPSHOTS, SHARED_PICTURES, CLIPS] {
        if !objects.list(folder).await?.is_empty() {
            return Err(not_empty(format!("the picture storage has {folder}")));
        }
    }
    let shelf = from.join(OBJECTS);
    let mut puts = futures_util::stream::iter(&manifest.objects)
        .map(|object| restore_object(&objects, &shelf, object))
        .buffer_unordered(COPIES_IN_FLIGHT);
    let mut progress = Progress::on_terminal();
    let mut done = 0;
    while let Some(put) = puts.next().await {
        put?;
        done += 1;
        progress.show(format_args!(
            "restore: objects {done}/{}",
            manifest.objects.len()
        ));
    }
    drop(puts);
    progress.finish();
    let database = from.join(&manifest.database.name);
    match &config.database.url {
        None => {
            let target = config.data_dir.join(DB_FILE);
            tokio::task::spawn_blocking(move || crate::objects::copy_durably(&database, &target))
                .await
                .map_err(|e| Error::internal("database copier").with_source(e))?
                .map_err(|e| Error::storage("the database", &e))?;
        }
        Some(url) => {
            let mut restore = pg_tool("pg_restore", url, &config.database)?;
            restore
                .args(["--no-owner", "--no-privileges", "--single-transaction"])
                .arg("--exit-on-error")
                .arg(format!("--dbname={}", url.path().trim_start_matches('/')))
                .arg(&database);
            run_pg_tool(restore).await?;
        }
    }
    let store = Store::open(&config.data_dir, &config.database).await?;
    Ok(Restored {
        backup: verified,
        schema_version: store.schema_version().await?,
    })
}

fn not_empty(what: String) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        format!("a restore goes into an empty installation, and {what}"),
    )
}

/// The keys of the objects `named`, in the order the rows came.
fn named_keys(named: &NamedObjects) -> Vec<ObjectKey> {
    let snapshots = named
        .snapshots
        .iter()
        .map(|(camera, key)| ObjectKey::snapshot(*camera, key));
    let clips = named
        .clips
        .iter()
        .map(|(camera, key)| ObjectKey::clip(*camera, key));
    let shared = named
        .shared_pictures
        .iter()
        .map(|request| ObjectKey::shared_picture(*request));
    snapshots.chain(clips).chain(shared).collect()
}

/// What became of one object in a backup.
enum ObjectCopied {
    /// In the folder from an earlier backup.
    Kept(Checked),
    Copied(Checked),
    Vanished(ObjectKey),
}

/// Copies `key` into the backup's folder of objects `shelf` (streamed, checksummed on the
/// way), unless an earlier backup left it there (`earlier`: the folder has it, and the last
/// manifest says what it is).
async fn copy_object(
    objects: &Objects,
    shelf: &Path,
    earlier: Option<&Checked>,
    pace: &Pace,
    key: ObjectKey,
) -> Result<ObjectCopied, Error> {
    use tokio::io::AsyncWriteExt;
    if let Some(earlier) = earlier {
        return Ok(ObjectCopied::Kept(earlier.clone()));
    }
    let target = shelf.join(key.as_str());
    let Some(mut stream) = objects.stream(&key).await? else {
        return Ok(ObjectCopied::Vanished(key));
    };
    let failed = |e: std::io::Error| Error::storage(&format!("the backup's {}", key.as_str()), &e);
    let folder = target.parent().unwrap_or(shelf);
    tokio::fs::create_dir_all(folder).await.map_err(failed)?;
    let tmp = shelf.join(format!("{}.tmp", key.as_str()));
    let mut file = tokio::fs::File::create(&tmp).await.map_err(failed)?;
    let (mut hash, mut bytes) = (Sha256::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Error::internal(format!("object {} unreadable", key.as_str())).with_source(e)
        })?;
        hash.update(&chunk);
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(failed)?;
        pace.copied(chunk.len()).await;
    }
    // Made durable all at once before the manifest names it (see `flush_file_system`):
    // an fsync per object would commit the file system's journal once per object, and the
    // serving relay's own fsyncs would queue behind each commit.
    file.flush().await.map_err(failed)?;
    drop(file);
    tokio::fs::rename(&tmp, &target).await.map_err(failed)?;
    Ok(ObjectCopied::Copied(Checked {
        name: key.as_str().to_owned(),
        bytes,
        sha256: hex(&hash.finalize()),
    }))
}

async fn restore_object(objects: &Objects, shelf: &Path, object: &Checked) -> Result<(), Error> {
    let key = ObjectKey::parse(&object.name)
        .ok_or_else(|| Error::internal("a verified manifest names an unknown object"))?;
    let path = shelf.join(key.as_str());
    // Checked once more as it goes in: what is restored is what was verified.
    if let Some(problem) = check_file(&path, object).await {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("the backup changed since it was verified: {problem}"),
        ));
    }
    objects.put_copy_of(&key, &path).await
}

/// The database copy's name in a backup made at `made_at`.
fn database_file(engine: Engine, made_at: i64) -> String {
    match engine {
        Engine::Sqlite => format!("database-{made_at}.db"),
        Engine::Postgres => format!("database-{made_at}.pgdump"),
    }
}

/// The database copy checked in itself: SQLite's `integrity_check` and its rows against the
/// manifest; `pg_restore --list` reading the dump whole.
async fn check_database(manifest: &Manifest, path: &Path) -> Vec<String> {
    match manifest.engine {
        Engine::Sqlite => {
            let checked = async {
                let copy = db::open_copy(path).await?;
                let problems = copy.integrity_problems().await;
                let contents = copy.contents().await;
                copy.close().await;
                Ok::<_, Error>((problems?, contents?))
            };
            match checked.await {
                Err(e) => vec![format!("the database copy cannot be read: {}", e.chain())],
                Ok((mut problems, contents)) => {
                    problems.truncate(PROBLEMS_NAMED);
                    let Contents {
                        schema_version,
                        rows,
                        ..
                    } = contents;
                    if schema_version != manifest.schema_version || rows != manifest.rows {
                        problems.push(
                            "the database copy's rows or schema differ from the manifest's"
                                .to_owned(),
                        );
                    }
                    problems
                }
            }
        }
        Engine::Postgres => {
            let mut list = tokio::process::Command::new("pg_restore");
            list.arg("--list").arg(path);
            match run_pg_tool(list).await {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!("the dump cannot be read: {}", e.chain())],
            }
        }
    }
}

/// A problem with the file at `path` against what the manifest says of it, if any.
async fn check_file(path: &Path, expected: &Checked) -> Option<String> {
    match checked_file(path, expected.name.clone()).await {
        Err(e) => Some(format!("{}: {}", expected.name, e.chain())),
        Ok(found) if found.bytes != expected.bytes => Some(format!(
            "{}: {} bytes where the manifest says {}",
            expected.name, found.bytes, expected.bytes
        )),
        Ok(found) if found.sha256 != expected.sha256 => {
            Some(format!("{}: its SHA-256 differs", expected.name))
        }
        Ok(_) => None,
    }
}

/// The size and SHA-256 of the file at `path`, read in pieces.
async fn checked_file(path: &Path, name: String) -> Result<Checked, Error> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0; 1 << 16];
        let mut bytes = 0;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(Checked {
            name,
            bytes,
            sha256: hex(&hash.finalize()),
        })
    })
    .await
    .map_err(|e| Error::internal("file checker").with_source(e))?
    .map_err(|e: std::io::Error| Error::internal("unreadable").with_source(e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest in `folder`.
pub fn read_manifest(folder: &Path) -> Result<Manifest, Error> {
    let path = folder.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("no backup in {}: cannot read {MANIFEST}", folder.display()),
        )
        .with_source(e)
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::new(
            ErrorKind::FailedPrecondition,
            format!("the backup's {} is damaged", path.display()),
        )
        .with_source(e)
    })
}

/// Writes `manifest` into `folder` in one rename, durably.
fn write_manifest(folder: &Path, manifest: &Manifest) -> Result<(), Error> {
    let json =
        serde_json::to_vec(manifest).map_err(|e| Error::internal("manifest").with_source(e))?;
    let tmp = folder.join(format!("{MANIFEST}.tmp"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(&json)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, folder.join(MANIFEST)))
        .and_then(|()| std::fs::File::open(folder)?.sync_all());
    written.map_err(|e| Error::storage("the backup's manifest", &e))
}

/// Removes from `folder` what `manifest` no longer names: older database copies, objects
/// since deleted, writes cut off half-way.
fn prune(
    folder: &Path,
    manifest: &Manifest,
    present: &std::collections::HashSet<String>,
) -> Result<(), Error> {
    let keep: std::collections::HashSet<&str> =
        manifest.objects.iter().map(|o| o.name.as_str()).collect();
    let removed = |e| Error::internal("cannot tidy the backup folder").with_source(e);
    for entry in std::fs::read_dir(folder).map_err(removed)? {
        let name = entry.map_err(removed)?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("database-") && name != manifest.database.name {
            std::fs::remove_file(folder.join(&*name)).map_err(removed)?;
        }
    }
    // What this backup wrote is all in the manifest: only what was there before can go.
    for name in present.iter().filter(|n| !keep.contains(n.as_str())) {
        std::fs::remove_file(folder.join(OBJECTS).join(name)).map_err(removed)?;
    }
    Ok(())
}

/// The names of every file under `dir`, at any depth, relative to it (none when `dir` is
/// missing): read from the folders' listings alone.
fn names_under(dir: &Path) -> std::io::Result<std::collections::HashSet<String>> {
    let mut names = std::collections::HashSet::new();
    crate::objects::walk_files(dir, |name, _| {
        names.insert(name);
        Ok(())
    })?;
    Ok(names)
}

/// Writes out everything written to the file system that holds `dir` (`syncfs`): the
/// objects' files and folders, before the manifest that names them.
fn flush_file_system(dir: &Path) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let folder = std::fs::File::open(dir).map_err(|e| Error::storage("the backup", &e))?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(Error::storage(
            "the backup",
            &std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Puts the calling thread, and the threads and processes it makes after (an `admin backup`
/// and its `pg_dump`), behind the relay it backs up on the same machine:
/// CPU niceness 10, and the lowest I/O priority of the best-effort class, so that viewers,
/// uploads and mail go first. Either may be refused (a container's limits); the backup then
/// runs as it is.
pub fn run_behind_the_relay() {
    const NICENESS: libc::c_int = 10;
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    const LOWEST_LEVEL: libc::c_long = 7;
    // SAFETY: both only change this process's scheduling parameters.
    let (cpu, io) = unsafe {
        (
            libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS),
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0,
                (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | LOWEST_LEVEL,
            ),
        )
    };
    if cpu != 0 || io != 0 {
        tracing::warn!("could not lower the backup's priority; it runs at the relay's");
    }
}

/// Holds the backup folder's lock: two backups into one folder at once would mix.
fn lock(folder: &Path) -> Result<std::fs::File, Error> {
    let file =
        std::fs::File::create(folder.join("backup.lock")).map_err(|e| folder_error(folder, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("another backup into {} is running", folder.display()),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(folder_error(folder, e)),
    }
}

fn folder_error(folder: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("cannot use the backup folder {}", folder.display()),
    )
    .with_source(e)
}

fn postgres_url(database: &DatabaseConfig) -> Result<&url::Url, Error> {
    database
        .url
        .as_ref()
        .ok_or_else(|| Error::internal("a PostgreSQL store without [database] url"))
}

/// `program` (`pg_dump`, `pg_restore`) set to reach the database at `url` as the relay does.
/// The connection goes in the environment, the password too: never on a command line that
/// `ps` shows.
fn pg_tool(
    program: &str,
    url: &url::Url,
    database: &DatabaseConfig,
) -> Result<tokio::process::Command, Error> {
    let decoded = |s: &str| {
        percent_decode(s).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "database.url is not valid UTF-8",
            )
        })
    };
    let mut command = tokio::process::Command::new(program);
    command
        // An IPv6 address without its URL brackets, as libpq takes it.
        .env(
            "PGHOST",
            url.host_str()
                .unwrap_or("localhost")
                .trim_start_matches('[')
                .trim_end_matches(']'),
        )
        .env("PGPORT", url.port().unwrap_or(5432).to_string())
        .env(
            "PGCONNECT_TIMEOUT",
            database.connect_timeout.as_secs().max(1).to_string(),
        )
        .env("PGAPPNAME", "eyeward-relay admin")
        .env(
            "PGSSLMODE",
            match database.tls {
                DatabaseTls::VerifyFull => "verify-full",
                DatabaseTls::Require => "require",
                DatabaseTls::Disable => "disable",
            },
        )
        .arg("--no-password");
    if !url.username().is_empty() {
        command.env("PGUSER", decoded(url.username())?);
    }
    let database_name = url.path().trim_start_matches('/');
    if !database_name.is_empty() {
        command.env("PGDATABASE", decoded(database_name)?);
    }
    let password = match (&database.password_file, url.password()) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("cannot read database.password_file {}", file.display()),
                    )
                    .with_source(e)
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        (None, Some(p)) => Some(decoded(p)?),
        (None, None) => None,
    };
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    if let Some(ca) = &database.ca_file {
        command.env("PGSSLROOTCERT", ca);
    }
    Ok(command)
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Runs a PostgreSQL tool to its end; its own words on failure.
async fn run_pg_tool(mut command: tokio::process::Command) -> Result<(), Error> {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| {
        Error::new(
            ErrorKind::FailedPrecondition,
            format!("cannot run {program} (PostgreSQL's client tools): is it installed?"),
        )
        .with_source(e)
    })?;
    let out = tokio::time::timeout(PG_TOOL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::DeadlineExceeded,
                format!("{program} took too long"),
            )
        })?
        .map_err(|e| Error::internal(format!("{program} stopped")).with_source(e))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said: String = said.trim().chars().take(600).collect();
    Err(Error::new(
        ErrorKind::FailedPrecondition,
        format!("{program} failed ({}): {said}", out.status),
    ))
}

/// Keeps the copies of one backup under a rate: each waits after a piece until the bytes
/// copied so far are due.
struct Pace {
    bytes_per_second: Option<f64>,
    started: Instant,
    copied: std::sync::atomic::AtomicU64,
}

impl Pace {
    /// At most `megabytes` a second; 0 for no limit.
    fn new(megabytes: u32) -> Pace {
        Pace {
            bytes_per_second: (megabytes > 0).then(|| f64::from(megabytes) * 1e6),
            started: eyeward::clock::monotonic(),
            copied: std::sync::atomic::AtomicU64::new(0),
        }
    }

    async fn copied(&self, bytes: usize) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let total = self
            .copied
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed)
            + bytes as u64;
        let due = self.started + Duration::from_secs_f64(total as f64 / rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
    }
}

/// Progress on a terminal (stderr), at most a few times a second; nothing elsewhere.
struct Progress {
    on: bool,
    shown: Option<Instant>,
}

impl Progress {
    fn on_terminal() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            shown: None,
        }
    }

    fn show(&mut self, what: std::fmt::Arguments<'_>) {
        if !self.on
            || self
                .shown
                .is_some_and(|s| s.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.shown = Some(eyeward::clock::monotonic());
        eprint!("\r\x1b[2K{what}");
    }

    fn finish(&mut self) {
        if self.on && self.shown.is_some() {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn copies_keep_to_the_rate_they_are_given_and_to_none_without() {
        let pace = Pace::new(2);
        let started = eyeward::clock::monotonic();
        for _ in 0..100 {
            pace.copied(60_000).await;
        }
        // 6 MB at 2 MB/s.
        assert_eq!(
            eyeward::clock::monotonic() - started,
            Duration::from_secs(3)
        );
        let unpaced = Pace::new(0);
        let started = eyeward::clock::monotonic();
        unpaced.copied(1 << 30).await;
        assert_eq!(eyeward::clock::monotonic() - started, Duration::ZERO);
    }

    #[test]
    fn a_manifest_names_only_objects_the_relay_makes() {
        for made in [
            ObjectKey::snapshot(12, "abc-DEF_123"),
            ObjectKey::clip(3, "k0000001"),
            ObjectKey::shared_picture(7),
        ] {
            assert_eq!(ObjectKey::parse(made.as_str()), Some(made));
        }
        for foreign in [
            "../etc/passwd",
            "snapshots/1/../../x.jpg",
            "/snapshots/1/a.jpg",
            "snapshots/01/a.jpg",
            "snapshots/1/a.png",
            "snapshots/1/.jpg",
            "clips/1/a b.mp4",
            "dispatch/x.jpg",
            "outbox/1.eml",
            "",
        ] {
            assert_eq!(ObjectKey::parse(foreign), None, "{foreign}");
        }
    }
}
