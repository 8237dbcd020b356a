//! The hourly housekeeping, for as long as the server runs (and once at start): events older
//! than the retention with their snapshots, the snapshots of removed cameras, and the
//! pictures shared with closed dispatch requests.

use crate::clock::Clock;
use crate::dispatch::Dispatcher;
use crate::events::{Events, HOUSEKEEPING};
use crate::store::Store;
use std::sync::Arc;

/// Runs the housekeeping every [`HOUSEKEEPING`] until dropped.
pub async fn keep(events: Arc<Events>, dispatcher: Arc<Dispatcher>, store: Store, clock: Clock) {
    let mut tick = clock.interval(HOUSEKEEPING);
    loop {
        tick.tick().await;
        match events.expire(&store, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "old events deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old events"),
        }
        match events.sweep_removed_cameras(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cameras = n, "removed cameras' snapshots deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot look for removed cameras' snapshots"),
        }
        match dispatcher.sweep_pictures(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pictures = n, "closed requests' shared pictures deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot look for closed requests' pictures"),
        }
    }
}
