//! Housekeeping, for as long as the server runs (and once at start): every hour, events older
//! than the retention with their snapshots and clips, clips older than the clip retention,
//! clip uploads given up, the files of removed cameras, files no event names and the
//! pictures shared with closed dispatch requests; every ten minutes, expired sessions and unsubscribe
//! tokens, so the tables hold only live ones. Each pass takes the time as an argument, so
//! tests run days of it without waiting.

use crate::auth::SessionPolicy;
use crate::cluster::Cluster;
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::events::{Events, HOUSEKEEPING};
use crate::metrics::Metrics;
use crate::store::Store;
use eyeward::UnixMillis;
use eyeward::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

/// How often expired sessions are deleted. Expiry itself is checked on every request
/// ([`SessionPolicy::check`]); this only keeps the table small.
const SESSION_SWEEP: Duration = Duration::from_secs(600);

/// How often a node that does not keep house asks whether it should now, and one that does
/// checks that it still should.
const JOBS_CHECK: Duration = Duration::from_secs(10);

/// What housekeeping looks after.
pub struct Housekeeping {
    pub events: Arc<Events>,
    pub dispatcher: Arc<Dispatcher>,
    pub store: Store,
    pub sessions: SessionPolicy,
    pub metrics: Arc<Metrics>,
    /// Among several nodes, one at a time keeps house.
    pub cluster: Arc<Cluster>,
}

impl Housekeeping {
    /// Runs every pass at its interval until dropped; among several nodes, only while this
    /// node runs the periodic jobs (a node that takes them over runs its first passes at
    /// once).
    pub async fn keep(self, clock: Clock) {
        let mut hourly = clock.interval(HOUSEKEEPING);
        let mut sessions = clock.interval(SESSION_SWEEP);
        loop {
            if !self.cluster.runs_jobs().await {
                tokio::time::sleep(JOBS_CHECK).await;
                hourly.reset_immediately();
                sessions.reset_immediately();
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(JOBS_CHECK) => {}
                _ = hourly.tick() => self.hourly(clock.now()).await,
                _ = sessions.tick() => match self.sweep_sessions(clock.now()).await {
                    Ok(n) => {
                        self.metrics.sessions_expired.inc_by(n);
                    }
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                },
            }
        }
    }

    /// The hourly pass at `now`; what it cannot do is logged and tried again next hour.
    pub async fn hourly(&self, now: UnixMillis) {
        match self.events.expire(&self.store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "old events deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old events"),
        }
        match self.events.expire_clips(&self.store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(clips = n, "old clips deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old clips"),
        }
        match self.events.sweep_partial_clips(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "clip uploads given up"),
            Err(e) => tracing::warn!(error = %e, "cannot look for given-up clip uploads"),
        }
        match self.events.sweep_removed_cameras(&self.store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(folders = n, "removed cameras' snapshots and clips deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot look for removed cameras' files"),
        }
        match self.events.sweep_orphans(&self.store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "snapshots and clips no event names deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot look for files no event names"),
        }
        match self.dispatcher.sweep_pictures(&self.store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pictures = n, "closed requests' shared pictures deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot look for closed requests' pictures"),
        }
    }

    /// Deletes the sessions expired at `now` (idle too long, or too old), the expired
    /// unsubscribe tokens, and guards' phone sessions and sign-in links past their time;
    /// returns how many sessions.
    pub async fn sweep_sessions(&self, now: UnixMillis) -> Result<u64, Error> {
        let idle_before = UnixMillis(now.0 - self.sessions.idle_timeout.as_millis() as i64);
        let created_before = UnixMillis(now.0 - self.sessions.max_age.as_millis() as i64);
        let sessions = self
            .store
            .delete_expired_sessions(idle_before, created_before)
            .await?;
        self.store.delete_expired_unsubscribe_tokens(now).await?;
        let phones = self.store.sweep_guard_sign_ins(now).await?;
        Ok(sessions + phones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DispatchConfig, EventsConfig};
    use crate::objects::{ObjectKey, Objects};
    use crate::store::Audit;
    use crate::store::testing::{customer, motion, porch, store};

    const T0: UnixMillis = UnixMillis(1_800_000_000_000);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    async fn housekeeping(retention: Duration) -> (Housekeeping, tempfile::TempDir) {
        let (store, dir) = store().await;
        let config = EventsConfig {
            retention,
            ..EventsConfig::default()
        };
        let objects = crate::objects::testing::objects(dir.path()).await;
        let events = Events::new(objects.clone(), &config, dir.path(), Clock::real());
        let dispatcher = Dispatcher::new(&DispatchConfig::default(), objects);
        let sessions = SessionPolicy {
            idle_timeout: Duration::from_secs(3600),
            max_age: 7 * DAY,
        };
        let cluster = Arc::new(Cluster::whole_service(store.clone()));
        let keeper = Housekeeping {
            events: Arc::new(events),
            dispatcher: Arc::new(dispatcher),
            store,
            sessions,
            metrics: Arc::new(Metrics::new()),
            cluster,
        };
        (keeper, dir)
    }

    async fn has(snapshots: &Objects, camera: i64, key: &str) -> bool {
        snapshots
            .get(&ObjectKey::snapshot(camera, key))
            .await
            .is_ok()
    }

    /// A 30-day retention: the event from 31 days ago goes with its snapshot, the one from
    /// 29 days ago stays with its own; a month of simulated time, no waiting.
    #[tokio::test]
    async fn events_past_the_retention_go_with_their_snapshots_and_newer_ones_stay() {
        let (keeper, _dir) = housekeeping(30 * DAY).await;
        let (owner, camera) = porch(&keeper.store, &Audit::admin(T0)).await;
        let owner = eyeward::CustomerId(owner);
        let snapshots = keeper.events.snapshots();
        let policy = crate::store::AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let mut ids = Vec::new();
        for (key, at) in [("old", T0), ("recent", T0.plus(2 * DAY))] {
            let object = ObjectKey::snapshot(camera.0, key);
            snapshots.put(&object, b"jpeg".to_vec()).await.unwrap();
            let event = motion(camera, key, at);
            ids.push(keeper.store.insert_event(&event, &policy).await.unwrap().id);
        }
        let stored = |id| keeper.store.event_of(owner, id);
        keeper.hourly(T0.plus(29 * DAY)).await;
        assert!(stored(ids[0]).await.unwrap().is_some(), "not yet");
        keeper.hourly(T0.plus(31 * DAY)).await;
        assert!(stored(ids[0]).await.unwrap().is_none());
        assert!(!has(&snapshots, camera.0, "old").await);
        assert!(stored(ids[1]).await.unwrap().is_some());
        assert!(has(&snapshots, camera.0, "recent").await);
    }

    /// Clips are kept a week: past it the clip goes (object, row and the camera's total), the
    /// event stays with its snapshot; a clip with no event naming it goes as an orphan, and
    /// an event expired whole takes its clip along.
    #[tokio::test]
    async fn clips_past_their_retention_go_before_their_events() {
        let (keeper, _dir) = housekeeping(30 * DAY).await;
        let (owner, camera) = porch(&keeper.store, &Audit::admin(T0)).await;
        let owner = eyeward::CustomerId(owner);
        let objects = keeper.events.snapshots();
        let policy = crate::store::AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let clip = |bytes| crate::store::StoredClip {
            bytes,
            length_ms: 15_000,
            event_at_ms: 5_000,
            codec: "h264".into(),
            width: 1280,
            height: 720,
        };
        let has_clip = |key: &'static str| {
            let objects = objects.clone();
            async move { objects.get(&ObjectKey::clip(camera.0, key)).await.is_ok() }
        };
        let mut ids = Vec::new();
        for (key, at) in [("old", T0), ("recent", T0.plus(6 * DAY))] {
            objects
                .put(&ObjectKey::snapshot(camera.0, key), b"jpeg".to_vec())
                .await
                .unwrap();
            objects
                .put(&ObjectKey::clip(camera.0, key), b"mp4".to_vec())
                .await
                .unwrap();
            let event = keeper
                .store
                .insert_event(&motion(camera, key, at), &policy)
                .await
                .unwrap();
            assert!(
                keeper
                    .store
                    .set_clip(&event, &clip(1000))
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                keeper
                    .store
                    .set_clip(&event, &clip(1000))
                    .await
                    .unwrap()
                    .is_none(),
                "a clip is named once"
            );
            ids.push(event.id);
        }
        assert_eq!(keeper.store.clip_bytes_of(camera).await.unwrap(), 2000);
        keeper.hourly(T0.plus(8 * DAY)).await;
        let old = keeper.store.event_of(owner, ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (old.clip_bytes, old.snapshot_bytes),
            (0, 100),
            "the event stays"
        );
        assert!(!has_clip("old").await);
        assert!(has(&objects, camera.0, "old").await);
        assert!(has_clip("recent").await);
        assert_eq!(keeper.store.clip_bytes_of(camera).await.unwrap(), 1000);
        keeper.hourly(T0.plus(37 * DAY)).await;
        assert!(
            keeper
                .store
                .event_of(owner, ids[1])
                .await
                .unwrap()
                .is_none()
        );
        assert!(!has_clip("recent").await);
        assert_eq!(keeper.store.clip_bytes_of(camera).await.unwrap(), 0);

        // Events kept two days, clips as long: an event expired whole takes its clip along.
        let (keeper, _dir) = housekeeping(2 * DAY).await;
        let (_, camera) = porch(&keeper.store, &Audit::admin(T0)).await;
        let objects = keeper.events.snapshots();
        objects
            .put(&ObjectKey::clip(camera.0, "short"), b"mp4".to_vec())
            .await
            .unwrap();
        let event = keeper
            .store
            .insert_event(&motion(camera, "short", T0), &policy)
            .await
            .unwrap();
        keeper.store.set_clip(&event, &clip(1000)).await.unwrap();
        keeper.hourly(T0.plus(3 * DAY)).await;
        assert!(
            objects
                .get(&ObjectKey::clip(camera.0, "short"))
                .await
                .is_err()
        );
        assert_eq!(keeper.store.clip_bytes_of(camera).await.unwrap(), 0);
    }

    /// A session unused for an hour, and one in use every half hour but a week old, are
    /// deleted by the sweep after that; a week of simulated time, no waiting.
    /// A snapshot whose event row never came (the relay stopped between the two) goes once
    /// it is older than any upload in flight; one with its event, and a fresh one, stay.
    #[tokio::test]
    async fn snapshots_no_event_names_go_once_older_than_an_upload_in_flight() {
        let (keeper, _dir) = housekeeping(30 * DAY).await;
        let (_, camera) = porch(&keeper.store, &Audit::admin(T0)).await;
        let snapshots = keeper.events.snapshots();
        let policy = crate::store::AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let now = Clock::real().now();
        for key in ["named", "orphan"] {
            let object = ObjectKey::snapshot(camera.0, key);
            snapshots.put(&object, b"jpeg".to_vec()).await.unwrap();
        }
        let event = motion(camera, "named", now);
        keeper.store.insert_event(&event, &policy).await.unwrap();
        keeper.hourly(now).await;
        assert!(has(&snapshots, camera.0, "orphan").await, "maybe in flight");
        keeper.hourly(now.plus(crate::events::ORPHAN_AGE * 2)).await;
        assert!(!has(&snapshots, camera.0, "orphan").await);
        assert!(has(&snapshots, camera.0, "named").await);
    }

    #[tokio::test]
    async fn the_sweep_deletes_idle_and_week_old_sessions() {
        let (keeper, _dir) = housekeeping(30 * DAY).await;
        let owner = customer(&keeper.store, "a@example.jp").await.0;
        let s = &keeper.store;
        s.create_session("idle", owner, None, T0).await.unwrap();
        s.create_session("busy", owner, None, T0).await.unwrap();
        let (mut idle_gone, mut busy_gone) = (None, None);
        let mut now = T0;
        while busy_gone.is_none() && now < T0.plus(8 * DAY) {
            now = now.plus(Duration::from_secs(1800));
            s.touch_session("busy", now).await.unwrap();
            keeper.sweep_sessions(now).await.unwrap();
            let gone = |name| async move { s.session(name).await.unwrap().is_none() };
            if idle_gone.is_none() && gone("idle").await {
                idle_gone = Some(now.since(T0));
            }
            if gone("busy").await {
                busy_gone = Some(now.since(T0));
            }
        }
        // Each at the first sweep after its limit (a request at the limit is refused anyway:
        // `SessionPolicy::check`).
        assert_eq!(idle_gone, Some(Duration::from_secs(5400)));
        assert_eq!(busy_gone, Some(7 * DAY + Duration::from_secs(1800)));
    }
}
