//! Dispatch requests: the customer's side (`/api/dispatch-requests`, [`customer`]), the
//! guard-center console's (`/api/ops/...`, [`ops`]) and the guards' phones
//! (`/guard/v1/position`, [`ops::report_position`]).
//!
//! The rules are [`eyeward::dispatch`]; every step is stored with its actor and time (and its
//! history entry, which mails the customer) before it is answered, then announced to the live
//! streams: the customer's page and the center's console see it within a moment.

pub mod customer;
pub mod ops;

use crate::config::DispatchConfig;
use crate::error::{Error, ErrorKind};
use crate::events::write_durably;
use crate::http::AppState;
use crate::http::streams::{self, Live};
use crate::metrics::{CenterLabels, Metrics};
use crate::store::{Audit, Dispatch, Guard, StepDetails, Store};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eyeward::GuardCenter;
use eyeward::dispatch::{DispatchAction, DispatchActor, Note, Refusal};
use serde_json::Value;
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
    async fn save_snapshot(&self, id: i64, jpeg: Vec<u8>) -> Result<(), Error> {
        let path = self.snapshot_path(id);
        tokio::task::spawn_blocking(move || write_durably(&path, &jpeg))
            .await
            .map_err(|e| Error::internal("picture writer").with_source(e))?
            .map_err(|e| Error::storage("the shared picture", &e))
    }

    async fn read_snapshot(&self, id: i64) -> Result<Vec<u8>, Error> {
        tokio::fs::read(self.snapshot_path(id))
            .await
            .map_err(|e| Error::internal("cannot read a shared picture").with_source(e))
    }

    /// Deletes the picture shared with request `id`, if there is one.
    async fn forget_snapshot(&self, id: i64) {
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

    /// Tells the live pages that `d` changed.
    fn announce(&self, d: Dispatch) {
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

/// The picture shared with `d`, if one was uploaded. Never cached: the share may end.
async fn jpeg_response(st: &AppState, d: &Dispatch) -> Result<Response, Error> {
    if !d.has_snapshot {
        return Err(Error::not_found("shared picture"));
    }
    let jpeg = st.dispatcher.read_snapshot(d.id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        jpeg,
    )
        .into_response())
}

/// The error for a step the rules refuse.
fn refused(refusal: Refusal, d: &Dispatch, action: DispatchAction) -> Error {
    match refusal {
        Refusal::NotFound => Error::not_found("dispatch request"),
        Refusal::Forbidden => Error::forbidden(match action {
            DispatchAction::Cancel => "only the customer who asked may cancel a request",
            _ => "only an operator of the customer's guard center may do this",
        }),
        Refusal::Conflict => {
            let done = match action {
                DispatchAction::Accept => "accepted",
                DispatchAction::Assign => "given a guard",
                DispatchAction::Arrive => "marked as arrived",
                DispatchAction::Complete => "completed",
                DispatchAction::Cancel => "cancelled",
            };
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("this request is {}: it cannot be {done} now", d.state),
            )
            .with_code("request_changed")
        }
    }
}

/// Request `id` if `actor` may see it; 404 otherwise (another customer's, another center's,
/// or none: never told apart).
async fn visible(st: &AppState, actor: DispatchActor, id: i64) -> Result<Dispatch, Error> {
    st.store
        .dispatch(id)
        .await?
        .filter(|d| d.rules().visible_to(actor))
        .ok_or_else(|| Error::not_found("dispatch request"))
}

/// Takes `action` on request `id` for `actor`: decided by the rules, stored with its history
/// entry (and mail), then announced. A closed request's live share ends at once.
async fn act(
    st: &AppState,
    actor: DispatchActor,
    audit: &Audit,
    id: i64,
    action: DispatchAction,
    guard: Option<&Guard>,
    report: Option<&Note>,
) -> Result<Dispatch, Error> {
    let d = visible(st, actor, id).await?;
    let t = d
        .rules()
        .apply(actor, action, audit.at)
        .map_err(|r| refused(r, &d, action))?;
    let eta = match guard {
        Some(g) => expected_arrival(st, &d, g).await?,
        None => None,
    };
    let step = StepDetails { guard, eta, report };
    let mut updated = st.store.apply_dispatch(&d, &t, &step, audit).await?;
    if !updated.state.is_open() {
        st.whep.end_shared(id).await;
        // The share ended: its picture is no one's to see any more, so it is not kept.
        if updated.has_snapshot {
            st.store.set_dispatch_snapshot(id, 0).await?;
            st.dispatcher.forget_snapshot(id).await;
            updated.has_snapshot = false;
        }
    }
    tracing::info!(request = id, state = %updated.state, "dispatch request changed");
    st.dispatcher.announce(updated.clone());
    Ok(updated)
}

/// When `guard` reaches the home of request `d`'s customer, from the guard's last reported
/// position; none without a fresh position or a home location.
async fn expected_arrival(
    st: &AppState,
    d: &Dispatch,
    guard: &Guard,
) -> Result<Option<eyeward::UnixMillis>, Error> {
    let (Some(from), Some(seen_at)) = (guard.position, guard.seen_at) else {
        return Ok(None);
    };
    let Some(home) = st.store.home_of(d.customer_id).await?.location else {
        return Ok(None);
    };
    Ok(eyeward::dispatch::expected_arrival(
        from,
        eyeward::UnixMillis(seen_at),
        home,
        st.dispatcher.config().guard_speed_kmh,
        eyeward::UnixMillis::now(),
    ))
}

/// The guard's phone reported a new position: the request the guard is on the way to is
/// expected anew, and its customer's page and the console are told.
pub(crate) async fn guard_moved(st: &AppState, guard: &Guard) -> Result<(), Error> {
    for d in st.store.dispatches_assigned_to(guard.id).await? {
        let eta = expected_arrival(st, &d, guard).await?;
        if let Some(updated) = st.store.set_dispatch_eta(d.id, eta).await? {
            st.dispatcher.announce(updated);
        }
    }
    Ok(())
}

/// A server-sent event stream of the changes `render` picks (and renders) for one page, each
/// a `request` message; `resync` when the page fell behind and must reload.
fn live_stream(
    st: &AppState,
    caller: &crate::http::extract::Caller,
    render: impl Fn(&Dispatch) -> Option<Value> + Send + 'static,
) -> Result<Response, Error> {
    let source = streams::from_broadcast(st.dispatcher.changes.subscribe(), move |d| {
        render(&d).map(|v| Live::Message {
            name: "request",
            data: v.to_string(),
        })
    });
    streams::live_stream(st, caller, caller.grant(), source)
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
