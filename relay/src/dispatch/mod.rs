//! Dispatch requests, the service: the [`Dispatcher`] keeps the settings, the pictures
//! customers share with their center, the stream of changes the live pages follow, and the
//! console's waiting counts. The rules are [`eyeward::dispatch`]; every step is stored with
//! its actor and time (and its history entry, which mails the customer) before it is
//! answered, then announced. The HTTP side is `http::dispatch`.

use crate::config::DispatchConfig;
use crate::error::Error;
use crate::files::{numbered_files, write_durably};
use crate::metrics::{CenterLabels, Metrics};
use crate::store::{Dispatch, Store};
use eyeward::GuardCenter;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The dispatch service's state: its settings, the shared pictures' folder, and the stream of
/// changes that live pages follow.
pub struct Dispatcher {
    config: DispatchConfig,
    dir: PathBuf,
    changes: broadcast::Sender<Arc<Dispatch>>,
}

impl Dispatcher {
    pub fn new(config: &DispatchConfig, data_dir: &std::path::Path) -> Dispatcher {
        Dispatcher {
            config: config.clone(),
            dir: data_dir.join("dispatch"),
            // A page that falls this far behind reloads its list.
            changes: broadcast::channel(256).0,
        }
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    fn snapshot_path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{id}.jpg"))
    }

    /// Stores the picture shared with request `id`, durably.
    pub(crate) async fn save_snapshot(&self, id: i64, jpeg: Vec<u8>) -> Result<(), Error> {
        let path = self.snapshot_path(id);
        tokio::task::spawn_blocking(move || write_durably(&path, &jpeg))
            .await
            .map_err(|e| Error::internal("picture writer").with_source(e))?
            .map_err(|e| Error::storage("the shared picture", &e))
    }

    pub(crate) async fn read_snapshot(&self, id: i64) -> Result<Vec<u8>, Error> {
        tokio::fs::read(self.snapshot_path(id))
            .await
            .map_err(|e| Error::internal("cannot read a shared picture").with_source(e))
    }

    /// Deletes the picture shared with request `id`, if there is one.
    pub(crate) async fn forget_snapshot(&self, id: i64) {
        match tokio::fs::remove_file(self.snapshot_path(id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(request = id, error = %e, "cannot delete a shared picture"),
        }
    }

    /// Deletes the shared pictures of requests that are closed or gone (a crash between the
    /// close and the deletion, or an account removed); returns how many.
    pub async fn sweep_pictures(&self, store: &Store) -> Result<usize, Error> {
        let kept = store.dispatches_sharing_pictures().await?;
        let mut removed = 0;
        for id in numbered_files(&self.dir, ".jpg") {
            if !kept.contains(&id) {
                self.forget_snapshot(id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every request's changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Dispatch>> {
        self.changes.subscribe()
    }

    /// Tells the live pages that `d` changed.
    pub(crate) fn announce(&self, d: Dispatch) {
        let _ = self.changes.send(Arc::new(d));
    }

    /// Updates the waiting-requests gauge from the database.
    pub async fn count_waiting(&self, store: &Store, metrics: &Metrics) -> Result<(), Error> {
        let waiting = store.waiting_dispatches().await?;
        for center in GuardCenter::ALL {
            let n = waiting
                .iter()
                .find(|(c, _)| c == center)
                .map_or(0, |(_, n)| *n);
            metrics
                .dispatch_waiting
                .get_or_create(&CenterLabels {
                    center: center.as_str(),
                })
                .set(n);
        }
        Ok(())
    }
}
