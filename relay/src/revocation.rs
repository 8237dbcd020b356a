//! Long-lived things end when what authorised them ends. A live view (WHEP), a server-sent
//! event stream and an agent's link each hold a [`Grant`]: the session, or the agent token,
//! that opened it, and the camera it is about. Whatever takes a grant away (a logout, a
//! password set by the administrator, an account or a camera removed, a new agent token)
//! bumps a revocation counter in the database, in the same transaction; the relay reads the
//! counter every second, so a change made by another process (the admin command) is seen too,
//! and every long-lived thing then checks its grant again and ends if it is gone. Grants are
//! also checked every minute (sessions expire with time alone) and end after a maximum
//! lifetime whatever happens (clients reconnect, and prove themselves again).

use crate::auth::{SessionCheck, SessionPolicy};
use crate::error::Error;
use crate::store::Store;
use eyeward::{CameraId, CustomerId, UnixMillis};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the relay reads the revocation counter.
const POLL: Duration = Duration::from_secs(1);
/// How often a grant is checked again when nothing was revoked: a session's expiry.
const RECHECK: Duration = Duration::from_secs(60);

/// What authorised a long-lived thing.
#[derive(Debug, Clone)]
pub enum Grant {
    /// A login session (its token's hash), and, for a customer's stream about one camera,
    /// that the camera is still theirs.
    Session {
        token_hash: String,
        camera: Option<(CustomerId, CameraId)>,
    },
    /// An agent's token (its hash), which must still be its camera's.
    Agent {
        camera: CameraId,
        token_hash: String,
    },
}

impl Grant {
    /// Whether the grant still holds at `now`. A database that cannot answer keeps it (the
    /// next check decides): an outage of the store must not cut every viewer.
    async fn holds(&self, store: &Store, sessions: SessionPolicy, now: UnixMillis) -> bool {
        let held: Result<bool, Error> = async {
            match self {
                Grant::Session { token_hash, camera } => {
                    let Some(session) = store.session(token_hash).await? else {
                        return Ok(false);
                    };
                    if matches!(
                        sessions.check(session.created_at, session.last_seen_at, now),
                        SessionCheck::Expired
                    ) {
                        return Ok(false);
                    }
                    match camera {
                        Some((owner, camera)) => {
                            Ok(store.camera_of(*owner, *camera).await?.is_some())
                        }
                        None => Ok(true),
                    }
                }
                Grant::Agent { camera, token_hash } => Ok(store
                    .camera_for_agent_token(token_hash)
                    .await?
                    .is_some_and(|c| c.id == *camera)),
            }
        }
        .await;
        held.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot check a grant; kept until the next check");
            true
        })
    }
}

/// The relay's view of the revocation counter, and the checks of grants.
pub struct Revocations {
    store: Store,
    sessions: SessionPolicy,
    generation: watch::Sender<i64>,
}

impl Revocations {
    pub fn new(store: Store, sessions: SessionPolicy) -> Revocations {
        Revocations {
            store,
            sessions,
            generation: watch::channel(0).0,
        }
    }

    /// Reads the counter every second, for as long as the relay runs.
    pub async fn follow(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.store.revocation_generation().await {
                Ok(g) => {
                    self.generation.send_if_modified(|old| {
                        let changed = *old != g;
                        *old = g;
                        changed
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the revocation counter"),
            }
        }
    }

    /// Resolves when `grant` no longer holds, or after `max_lifetime`.
    pub fn ended(
        self: &Arc<Self>,
        grant: Grant,
        max_lifetime: Duration,
    ) -> impl Future<Output = ()> + Send + use<> {
        let this = self.clone();
        let mut changes = self.generation.subscribe();
        async move {
            let watch = async {
                loop {
                    tokio::select! {
                        changed = changes.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                        () = tokio::time::sleep(RECHECK) => {}
                    }
                    if !grant
                        .holds(&this.store, this.sessions, UnixMillis::now())
                        .await
                    {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(max_lifetime, watch).await;
        }
    }
}
