//! Several relay nodes as one service (`docs/cluster.md`): this node's identity and lease,
//! the agent cameras it holds with their fencing generations, the periodic jobs it runs only
//! while it holds their lock, and the changes other nodes make, heard from PostgreSQL and
//! told to this node's streams. Without `[cluster]` this relay is the whole service: it holds
//! every camera linked to it and runs every job, and nothing here touches the database.

mod peer;
pub mod signing;

pub use peer::{
    GENERATION_HEADER, PeerFeed, PeerTunnel, PtzAnswer, RTSP_PATH_HEADER, encode_frame, moved,
};

use crate::config::ClusterConfig;
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::events::Events;
use crate::link::Links;
use crate::ptz::PanTilt;
use crate::store::{JobsLock, Owner, Store};
use eyeward::CameraId;
use eyeward::ptz::{PtzCommand, PtzState};
use peer::Peers;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a node's lease lasts: a node silent this long is dead to the others, and acts for
/// no camera until it has renewed.
pub const LEASE: Duration = Duration::from_secs(12);

/// How often a node renews its lease and checks which cameras are still its own.
pub const RENEW: Duration = Duration::from_secs(4);

/// How often a node that does not hold the jobs' lock tries to take it.
const JOBS_RETRY: Duration = Duration::from_secs(5);

/// This node, as one of several, or the whole service.
pub struct Cluster {
    store: Store,
    config: Option<ClusterConfig>,
    /// The node's id, once it joined (0: the whole service).
    node: OnceLock<i64>,
    /// The cameras held here and their generations.
    owned: Mutex<HashMap<CameraId, i64>>,
    /// When the last renewal that held was sent (on this node's monotonic clock), checked
    /// against [`LEASE`] before acting for a camera.
    renewed: Mutex<Option<Instant>>,
    jobs: tokio::sync::Mutex<Jobs>,
    /// Signed calls to the other nodes (none when this relay is the whole service).
    peers: Option<Peers>,
    /// Set when the node stops: its agents link elsewhere, the load balancer sends it
    /// nothing new (see [`Cluster::drain`]).
    draining: tokio::sync::watch::Sender<bool>,
    /// The cameras whose links this node closed while draining, with their generations.
    handed_over: Mutex<Vec<(CameraId, i64)>>,
}

#[derive(Default)]
struct Jobs {
    lock: Option<JobsLock>,
    tried: Option<Instant>,
}

/// What the other nodes' changes are told to.
pub struct Followers {
    pub links: Arc<Links>,
    pub events: Arc<Events>,
    pub dispatcher: Arc<Dispatcher>,
    pub ptz: Arc<PanTilt>,
}

/// A change another node (or this one) made, as told on [`crate::store::CHANGES`].
#[derive(Debug, PartialEq)]
enum Change {
    Event(i64),
    Dispatch(i64),
    /// A camera's new owner (node 0: nobody).
    Owner {
        camera: CameraId,
        generation: i64,
        node: i64,
    },
    /// A pan-tilt state an agent reported to `node`.
    Ptz {
        node: i64,
        camera: CameraId,
        state: PtzState,
    },
}

impl Change {
    fn parse(payload: &str) -> Option<Change> {
        let mut parts = payload.splitn(4, ':');
        let kind = parts.next()?;
        let mut number = || parts.next()?.parse::<i64>().ok();
        Some(match kind {
            "event" => Change::Event(number()?),
            "dispatch" => Change::Dispatch(number()?),
            "owner" => Change::Owner {
                camera: CameraId(number()?),
                generation: number()?,
                node: number()?,
            },
            "ptz" => Change::Ptz {
                node: number()?,
                camera: CameraId(number()?),
                state: serde_json::from_str(parts.next()?).ok()?,
            },
            _ => return None,
        })
    }

    fn ptz(node: i64, camera: CameraId, state: &PtzState) -> String {
        let state = serde_json::to_string(state).unwrap_or_default();
        format!("ptz:{node}:{}:{state}", camera.0)
    }
}

impl Cluster {
    /// This relay as configured: one node of several with `config`, else the whole service.
    pub fn new(store: Store, config: Option<&ClusterConfig>) -> Result<Cluster, Error> {
        let peers = config
            .map(|c| Peers::new(signing::Signer::from_file(&c.secret_file)?))
            .transpose()?;
        Ok(Cluster {
            store,
            config: config.cloned(),
            node: OnceLock::new(),
            owned: Mutex::new(HashMap::new()),
            renewed: Mutex::new(None),
            jobs: tokio::sync::Mutex::new(Jobs::default()),
            peers,
            draining: tokio::sync::watch::channel(false).0,
            handed_over: Mutex::new(Vec::new()),
        })
    }

    /// The whole service: no other node.
    pub fn whole_service(store: Store) -> Cluster {
        Cluster::new(store, None).expect("no secret to read")
    }

    /// Checks an internal call's signature (see [`signing`]): returns the calling node.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<i64, Error> {
        let peers = self
            .peers
            .as_ref()
            .ok_or_else(|| Error::not_found("route"))?;
        let now = eyeward::clock::Clock::real().now().0;
        peers
            .signer()
            .verify(authorization, method, path, body, now)
    }

    /// Which of `cameras` (agent cameras) are online: linked here, or held by a live node.
    pub async fn online(
        &self,
        links: &Links,
        cameras: &[CameraId],
    ) -> Result<HashSet<CameraId>, Error> {
        let mut online: HashSet<CameraId> = cameras
            .iter()
            .copied()
            .filter(|c| links.is_online(*c))
            .collect();
        if self.is_clustered() && online.len() < cameras.len() {
            let elsewhere: Vec<CameraId> = cameras
                .iter()
                .copied()
                .filter(|c| !online.contains(c))
                .collect();
            online.extend(self.store.cameras_held_live(&elsewhere).await?);
        }
        Ok(online)
    }

    /// The live node holding `camera`, for a call to it; none: the camera is offline.
    async fn owner(&self, camera: CameraId) -> Result<(&Peers, Owner), Error> {
        let peers = self
            .peers
            .as_ref()
            .ok_or_else(crate::link::camera_offline)?;
        match self.store.camera_owner(camera).await? {
            Some(owner) if owner.node != self.node() => Ok((peers, owner)),
            _ => Err(crate::link::camera_offline()),
        }
    }

    /// Has the node holding `camera` carry out `command`: its state after, and whether the
    /// command goes into the owner's history. A camera that moved meanwhile is looked up
    /// once more.
    pub async fn ptz_elsewhere(
        &self,
        camera: CameraId,
        command: &PtzCommand,
    ) -> Result<(PtzState, bool), Error> {
        let mut looked = 0;
        loop {
            looked += 1;
            let (peers, owner) = self.owner(camera).await?;
            match peers.ptz(self.node(), &owner, camera, command).await {
                Err(e) if e.given_code() == Some("camera_moved") && looked < 2 => continue,
                answer => return answer?.into_result(),
            }
        }
    }

    /// Pulls `camera`'s feed through the node holding it.
    pub async fn pull_elsewhere(&self, camera: CameraId) -> Result<PeerFeed, Error> {
        let (peers, owner) = self.owner(camera).await?;
        peers.feed(self.node(), &owner, camera).await
    }

    /// Carries a tunnel of `camera` that its agent opened here on to the node that holds the
    /// camera and asked for it (the load balancer sent the agent's tunnel elsewhere).
    pub async fn tunnel_elsewhere(
        &self,
        camera: CameraId,
        tunnel: &str,
        max_message: usize,
    ) -> Result<PeerTunnel, Error> {
        let (peers, owner) = self.owner(camera).await?;
        peers
            .tunnel(self.node(), &owner, camera, tunnel, max_message)
            .await
    }

    /// A new tunnel to `camera` (`to` its video or to the camera itself) through the node
    /// that holds it and its agent, as this node's own tunnels are ([`crate::link::Tunnel`]),
    /// and the RTSP path the camera takes.
    pub async fn rtsp_elsewhere(
        &self,
        camera: CameraId,
        to: crate::link::TunnelTo,
    ) -> Result<(crate::link::Tunnel, String), Error> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let (peers, owner) = self.owner(camera).await?;
        let max = eyeward::link::MAX_TUNNEL_FRAME_BYTES;
        let (ws, path) = peers.rtsp(self.node(), &owner, camera, to, max).await?;
        let (from_agent_tx, from_agent) = tokio::sync::mpsc::channel(crate::link::TUNNEL_QUEUE);
        let (to_agent, mut to_agent_rx) = tokio::sync::mpsc::channel(crate::link::TUNNEL_QUEUE);
        tokio::spawn(async move {
            let (mut ws_tx, mut ws_rx) = ws.split();
            let up = async {
                while let Some(bytes) = to_agent_rx.recv().await {
                    if ws_tx.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
                let _ = ws_tx.close().await;
            };
            let down = async {
                while let Some(Ok(msg)) = ws_rx.next().await {
                    let bytes = match msg {
                        Message::Binary(bytes) => bytes,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if from_agent_tx.send(bytes).await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                () = up => {},
                () = down => {},
            }
        });
        let tunnel = crate::link::Tunnel {
            from_agent,
            to_agent,
        };
        Ok((tunnel, path))
    }

    /// Whether this node holds `camera` with `generation` (as an internal call names it).
    pub fn holds(&self, camera: CameraId, generation: i64) -> bool {
        self.may_act(camera) && self.owned().get(&camera) == Some(&generation)
    }

    /// Whether this relay is one node of several.
    pub fn is_clustered(&self) -> bool {
        self.config.is_some()
    }

    /// This node's id (0 when it is the whole service).
    pub fn node(&self) -> i64 {
        self.node.get().copied().unwrap_or(0)
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, i64>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn renewed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the cluster as a new node reached at `internal_url`, and from then on tells
    /// this node's streams only what the database tells.
    pub async fn join(&self, internal_url: &url::Url, followers: &Followers) -> Result<(), Error> {
        if !self.is_clustered() {
            return Ok(());
        }
        let sent = eyeward::clock::monotonic();
        let node = self
            .store
            .register_node(internal_url.as_str(), LEASE)
            .await?;
        let _ = self.node.set(node);
        *self.renewed() = Some(sent);
        followers.events.tell_by_database();
        followers.dispatcher.tell_by_database();
        tracing::info!(node, %internal_url, "joined the cluster");
        Ok(())
    }

    /// Whether this node is stopping (see [`Cluster::drain`]).
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Turns true when this node starts draining.
    pub fn draining(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Starts draining: `/healthz` answers 503, new links are refused and every link here is
    /// closed with "try again later", so the agents link to other nodes, which take their
    /// cameras over.
    pub async fn start_draining(&self) {
        self.draining.send_replace(true);
        if let Err(e) = self.store.drain_node(self.node()).await {
            tracing::warn!(error = %e, "cannot mark this node draining");
        }
    }

    /// A link closed while draining: its camera is left to the node the agent links to
    /// next; if none has taken it when this node stops, it is released then (and offline).
    pub fn hand_over(&self, camera: CameraId, generation: i64) {
        self.handed_over
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((camera, generation));
    }

    /// Whether every camera this node held is held by another node now (or the database
    /// cannot tell: the drain then waits out its time).
    pub async fn holds_none(&self) -> bool {
        self.store
            .cameras_held(self.node())
            .await
            .is_ok_and(|held| held.is_empty())
    }

    /// The node stops: the cameras handed over that no other node took are released (they
    /// are offline: returned), and its lease ends, so no other node calls it any more.
    pub async fn leave(&self) -> Vec<CameraId> {
        let handed: Vec<(CameraId, i64)> =
            std::mem::take(&mut *self.handed_over.lock().unwrap_or_else(|p| p.into_inner()));
        let mut offline = Vec::new();
        for (camera, generation) in handed {
            if self.release(camera, generation).await {
                offline.push(camera);
            }
        }
        if let Err(e) = self.store.end_node(self.node()).await {
            tracing::warn!(error = %e, "cannot end this node's lease");
        }
        offline
    }

    /// This node takes `camera` over (its agent linked here): returns the fencing generation
    /// the link holds it with.
    pub async fn claim(&self, camera: CameraId) -> Result<i64, Error> {
        if !self.is_clustered() {
            return Ok(0);
        }
        let generation = self.store.claim_camera(camera, self.node()).await?;
        self.owned().insert(camera, generation);
        Ok(generation)
    }

    /// The link that held `camera` with `generation` ended: true if the camera was still
    /// this node's (it is now offline), false if another node holds it since.
    pub async fn release(&self, camera: CameraId, generation: i64) -> bool {
        if !self.is_clustered() {
            return true;
        }
        {
            let mut owned = self.owned();
            if owned.get(&camera) == Some(&generation) {
                owned.remove(&camera);
            }
        }
        match self.store.release_camera(camera, generation).await {
            Ok(released) => released,
            Err(e) => {
                // Its row names this node until another link takes it; pulls asked of
                // this node meanwhile find the camera offline.
                tracing::warn!(camera = camera.0, error = %e, "cannot release the camera");
                false
            }
        }
    }

    /// Whether this node may act for `camera` now (send it a command): it holds the camera,
    /// and its last renewal is younger than the lease, so no other node can have taken it
    /// without this node hearing (a node paused past its lease acts for nothing until it has
    /// renewed and checked).
    pub fn may_act(&self, camera: CameraId) -> bool {
        if !self.is_clustered() {
            return true;
        }
        self.owned().contains_key(&camera) && self.renewed().is_some_and(|at| at.elapsed() < LEASE)
    }

    /// Whether this node runs the periodic jobs now: always when it is the whole service;
    /// among several, while it holds the jobs' lock.
    pub async fn runs_jobs(&self) -> bool {
        if !self.is_clustered() {
            return true;
        }
        let mut jobs = self.jobs.lock().await;
        if let Some(lock) = jobs.lock.as_mut() {
            if lock.still_held().await {
                return true;
            }
            tracing::warn!("the jobs' lock was lost with its connection");
            jobs.lock = None;
        }
        if jobs.tried.is_some_and(|t| t.elapsed() < JOBS_RETRY) {
            return false;
        }
        jobs.tried = Some(eyeward::clock::monotonic());
        match self.store.try_jobs_lock().await {
            Ok(Some(lock)) => {
                tracing::info!("this node runs the periodic jobs");
                jobs.lock = Some(lock);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot try the jobs' lock");
                false
            }
        }
    }

    /// Keeps this node in the cluster until dropped: renews its lease, lets go of the
    /// cameras other nodes took, and tells this node's streams what other nodes changed.
    pub async fn keep(self: Arc<Self>, followers: Followers) {
        if !self.is_clustered() {
            return;
        }
        tokio::join!(
            self.renew(&followers.links),
            self.hear(&followers),
            self.tell_ptz(&followers.ptz),
        );
    }

    async fn renew(&self, links: &Links) {
        let mut every = tokio::time::interval(RENEW);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let sent = eyeward::clock::monotonic();
            if let Err(e) = self.store.renew_node(self.node(), LEASE).await {
                tracing::warn!(error = %e, "cannot renew this node's lease");
                continue;
            }
            if self.check_held(links).await {
                *self.renewed() = Some(sent);
            }
        }
    }

    /// Closes the links of cameras another node took over; true once checked.
    async fn check_held(&self, links: &Links) -> bool {
        // Cameras claimed before the read: one claimed after it is not judged by it.
        let before: Vec<(CameraId, i64)> = self.owned().iter().map(|(c, g)| (*c, *g)).collect();
        let held: HashMap<CameraId, i64> = match self.store.cameras_held(self.node()).await {
            Ok(held) => held.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which cameras this node holds");
                return false;
            }
        };
        for (camera, generation) in before {
            if held.get(&camera) != Some(&generation) {
                self.lost(camera, generation, links);
            }
        }
        true
    }

    /// Another node holds `camera` now: its link here ends.
    fn lost(&self, camera: CameraId, generation: i64, links: &Links) {
        let mut owned = self.owned();
        if owned.get(&camera) == Some(&generation) {
            owned.remove(&camera);
            drop(owned);
            links.close(camera);
            tracing::info!(camera = camera.0, "another node took the camera over");
        }
    }

    /// Hears every node's changes and tells this node's streams.
    async fn hear(&self, followers: &Followers) {
        loop {
            let mut listener = match self.store.listen_for_changes().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match listener.try_recv().await {
                    Ok(Some(notice)) => match Change::parse(notice.payload()) {
                        Some(change) => self.follow(change, followers).await,
                        None => tracing::warn!("an unknown change notice"),
                    },
                    // The connection dropped: notices meanwhile are lost, so what they
                    // would have told is checked again.
                    Ok(None) => {
                        tracing::warn!("the change listener reconnects");
                        self.check_held(&followers.links).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the change listener failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }

    async fn follow(&self, change: Change, followers: &Followers) {
        match change {
            Change::Event(id) if followers.events.is_followed() => {
                match self.store.event(id).await {
                    Ok(Some(event)) => followers.events.publish_told(&event),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(event = id, error = %e, "cannot read a told event"),
                }
            }
            Change::Dispatch(id) if followers.dispatcher.is_followed() => {
                match self.store.dispatch(id).await {
                    Ok(Some(d)) => followers.dispatcher.announce_told(d),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(request = id, error = %e, "cannot read a told request");
                    }
                }
            }
            Change::Event(_) | Change::Dispatch(_) => {}
            Change::Owner {
                camera,
                generation,
                node,
            } => {
                let older = self.owned().get(&camera).is_some_and(|g| *g < generation);
                if node != self.node() && older {
                    let held = self.owned().get(&camera).copied();
                    if let Some(held) = held {
                        self.lost(camera, held, &followers.links);
                    }
                }
            }
            Change::Ptz {
                node,
                camera,
                state,
            } => {
                if node != self.node() {
                    followers.ptz.set_state(camera, state);
                }
            }
        }
    }

    /// Tells the other nodes every pan-tilt state this node's agents report.
    async fn tell_ptz(&self, ptz: &PanTilt) {
        let mut reports = ptz.reports();
        loop {
            let (camera, state) = match reports.recv().await {
                Ok(report) => report,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let told = Change::ptz(self.node(), camera, &state);
            if let Err(e) = self.store.tell(&told).await {
                tracing::warn!(camera = camera.0, error = %e, "cannot tell a pan-tilt state");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_change_notice_parses_and_others_do_not() {
        assert_eq!(Change::parse("event:12"), Some(Change::Event(12)));
        assert_eq!(Change::parse("dispatch:3"), Some(Change::Dispatch(3)));
        assert_eq!(
            Change::parse("owner:7:4:2"),
            Some(Change::Owner {
                camera: CameraId(7),
                generation: 4,
                node: 2
            })
        );
        let state = PtzState {
            pan: 0.25,
            tilt: -0.5,
            moving: false,
            presets: vec!["door".into()],
        };
        let told = Change::ptz(5, CameraId(9), &state);
        assert_eq!(
            Change::parse(&told),
            Some(Change::Ptz {
                node: 5,
                camera: CameraId(9),
                state
            })
        );
        for bad in ["", "event", "event:x", "owner:1:2", "ptz:1:2:{", "what:1"] {
            assert_eq!(Change::parse(bad), None, "{bad:?}");
        }
    }
}
