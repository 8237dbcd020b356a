//! Dispatch requests, the service: the [`Dispatcher`] keeps the settings, the pictures
//! customers share with their center, the stream of changes the live pages follow, and the
//! console's waiting counts. The rules are [`eyeward::dispatch`]; every step is stored with
//! its actor and time (and its history entry, which mails the customer) before it is
//! answered, then announced. The HTTP side is `http::dispatch`.

use crate::config::DispatchConfig;
use crate::error::Error;
use crate::metrics::{CenterLabels, Metrics};
use crate::objects::{ObjectKey, Objects, SHARED_PICTURES};
use crate::store::{Dispatch, Store};
use eyeward::{GuardCenter, UnixMillis};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The dispatch service's state: its settings, where the shared pictures are, and the stream
/// of changes that live pages follow.
pub struct Dispatcher {
    config: DispatchConfig,
    pictures: Objects,
    changes: broadcast::Sender<Arc<Dispatch>>,
    /// Several nodes: every node's pages hear of changes from the database (see
    /// `crate::cluster`), this one's included.
    told_by_database: std::sync::atomic::AtomicBool,
    /// When each guard's position was last reported to this node, for the bound on reports.
    reported: std::sync::Mutex<std::collections::HashMap<i64, UnixMillis>>,
}

/// The least time between two positions a guard reports (to one node): each is a write and a
/// new estimate, and one a second is plenty for a car.
pub const POSITION_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Dispatcher {
    pub fn new(config: &DispatchConfig, pictures: Objects) -> Dispatcher {
        Dispatcher {
            config: config.clone(),
            pictures,
            // A page that falls this far behind reloads its list.
            changes: broadcast::channel(256).0,
            told_by_database: std::sync::atomic::AtomicBool::new(false),
            reported: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// Whether guard `guard` may report a position at `now`: at most one per
    /// [`POSITION_EVERY`]. Reports older than that are forgotten as new ones come, so the map
    /// holds the guards reporting now at most.
    pub fn position_due(&self, guard: i64, now: UnixMillis) -> bool {
        let every = POSITION_EVERY.as_millis() as i64;
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported
            .get(&guard)
            .is_some_and(|last| (0..every).contains(&(now.0 - last.0)))
        {
            return false;
        }
        reported.retain(|_, last| now.0 - last.0 < every);
        reported.insert(guard, now);
        true
    }

    /// Stores the picture shared with request `id`, durably.
    pub(crate) async fn save_snapshot(&self, id: i64, jpeg: Vec<u8>) -> Result<(), Error> {
        self.pictures
            .put(&ObjectKey::shared_picture(id), jpeg)
            .await
    }

    pub(crate) async fn read_snapshot(&self, id: i64) -> Result<Vec<u8>, Error> {
        self.pictures.get(&ObjectKey::shared_picture(id)).await
    }

    /// Deletes the picture shared with request `id`, if there is one; what cannot be deleted
    /// now, the hourly sweep deletes.
    pub(crate) async fn forget_snapshot(&self, id: i64) {
        if let Err(e) = self.pictures.delete(&ObjectKey::shared_picture(id)).await {
            tracing::warn!(request = id, error = %e.chain(), "cannot delete a shared picture");
        }
    }

    /// Deletes the shared pictures of requests that are closed or gone (a crash between the
    /// close and the deletion, or an account removed); returns how many.
    pub async fn sweep_pictures(&self, store: &Store) -> Result<usize, Error> {
        let kept = store.dispatches_sharing_pictures().await?;
        let mut removed = 0;
        let listed = self.pictures.list(SHARED_PICTURES).await?;
        let ids = listed
            .iter()
            .filter_map(|o| o.name.strip_suffix(".jpg")?.parse::<i64>().ok());
        for id in ids {
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
        if !self
            .told_by_database
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.announce_told(d);
        }
    }

    /// From now on, pages hear of changes only through [`Dispatcher::announce_told`].
    pub fn tell_by_database(&self) {
        self.told_by_database
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether any live page listens here.
    pub fn is_followed(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    /// A request changed on some node, as the database told it.
    pub fn announce_told(&self, d: Dispatch) {
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
