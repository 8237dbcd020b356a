//! Long-lived things end when what authorised them ends. A live view (WHEP), a server-sent
//! event stream and an agent's link each hold a [`Grant`]: the session, or the agent token,
//! that opened it, and the camera it is about. Whatever takes a grant away (a logout, a
//! password set by the administrator, an account or a camera removed, a new agent token, a
//! household member's rights changed or the member removed)
//! bumps a revocation counter in the database, in the same transaction; the relay reads the
//! counter every second, so a change made by another process (the admin command) is seen too,
//! and every long-lived thing then checks its grant again and ends if it is gone. A session's
//! grant is also checked again just after the session would expire (sessions expire with
//! time alone, and a guest's at their time), any grant at least every minute, and everything ends after a maximum lifetime
//! whatever happens (clients reconnect, and prove themselves again).

use crate::auth::{SessionCheck, SessionPolicy};
use crate::error::Error;
use crate::store::Store;
use eyeward::clock::Clock;
use eyeward::household::{Access, Membership, Right};
use eyeward::{CameraId, CustomerId, Role, UnixMillis};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the relay reads the revocation counter.
const POLL: Duration = Duration::from_secs(1);
/// How often a grant is checked again at the longest when nothing was revoked (a session is
/// also checked again just after it would expire).
const RECHECK: Duration = Duration::from_secs(60);

/// What authorised a long-lived thing.
#[derive(Debug, Clone)]
pub enum Grant {
    /// A login session (its token's hash), and, for a stream about one camera, that the
    /// camera is still the household's and, for a member, that they may still use it so.
    /// A guest's session also ends at their time.
    Session {
        token_hash: String,
        camera: Option<CameraGrant>,
        /// For a member's stream about several cameras, the rights it was opened with: any
        /// change ends it (the page opens it again, under the new rights).
        opened_with: Option<Membership>,
    },
    /// An agent's token (its hash), which must still be its camera's.
    Agent {
        camera: CameraId,
        token_hash: String,
    },
    /// A guard's phone session (its token's hash): it ends when an operator revokes the
    /// guard's sign-in, the guard signs out, or the shift's session runs out.
    Guard { token_hash: String },
}

/// A camera a session's stream is about: the household it must still belong to, and the
/// right a member must still have on it.
#[derive(Debug, Clone, Copy)]
pub struct CameraGrant {
    pub household: CustomerId,
    pub camera: CameraId,
    pub right: Right,
}

impl Grant {
    /// Whether the grant still holds at `now`, and if so how long until it must be checked
    /// again at the latest (a session may expire by then). A database that cannot answer keeps
    /// it (the next check decides): an outage of the store must not cut every viewer.
    async fn holds(
        &self,
        store: &Store,
        sessions: SessionPolicy,
        now: UnixMillis,
    ) -> Option<Duration> {
        let held: Result<Option<Duration>, Error> = async {
            match self {
                Grant::Session {
                    token_hash,
                    camera,
                    opened_with,
                } => {
                    let Some(session) = store.session(token_hash).await? else {
                        return Ok(None);
                    };
                    if matches!(
                        sessions.check(session.created_at, session.last_seen_at, now),
                        SessionCheck::Expired
                    ) {
                        return Ok(None);
                    }
                    let plan = match camera {
                        Some(grant) => {
                            match store.camera_of(grant.household, grant.camera).await? {
                                Some(camera) => Some(camera.plan),
                                None => return Ok(None),
                            }
                        }
                        None => None,
                    };
                    // Just past the moment it would expire, unless seen again meanwhile.
                    let mut ends = sessions.ends_at(session.created_at, session.last_seen_at);
                    if session.account.role == Role::Member {
                        let Some(membership) = store.membership(session.account.id).await? else {
                            return Ok(None);
                        };
                        if !membership.is_current(now)
                            || opened_with.as_ref().is_some_and(|m| *m != membership)
                        {
                            return Ok(None);
                        }
                        if let (Some(grant), Some(plan)) = (camera, plan)
                            && membership.may(grant.camera, plan, grant.right, now)
                                != Access::Allowed
                        {
                            return Ok(None);
                        }
                        ends = membership.until.map_or(ends, |until| ends.min(until));
                    }
                    Ok(Some(ends.since(now) + Duration::from_millis(100)))
                }
                Grant::Agent { camera, token_hash } => Ok(store
                    .camera_for_agent_token(token_hash)
                    .await?
                    .is_some_and(|c| c.id == *camera)
                    .then_some(RECHECK)),
                Grant::Guard { token_hash } => Ok(store
                    .guard_session(token_hash, now)
                    .await?
                    .map(|s| s.ends_at.since(now) + Duration::from_millis(100))),
            }
        }
        .await;
        held.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot check a grant; kept until the next check");
            Some(RECHECK)
        })
    }
}

/// The relay's view of the revocation counter, and the checks of grants.
pub struct Revocations {
    store: Store,
    sessions: SessionPolicy,
    generation: watch::Sender<i64>,
    clock: Clock,
}

impl Revocations {
    pub fn new(store: Store, sessions: SessionPolicy, clock: Clock) -> Revocations {
        Revocations {
            clock,
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
                let mut next = Duration::ZERO;
                loop {
                    tokio::select! {
                        changed = changes.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                        () = tokio::time::sleep(next) => {}
                    }
                    match grant
                        .holds(&this.store, this.sessions, this.clock.now())
                        .await
                    {
                        Some(until) => next = until.min(RECHECK),
                        None => return,
                    }
                }
            };
            let _ = tokio::time::timeout(max_lifetime, watch).await;
        }
    }
}

#[cfg(test)]
mod tests;
