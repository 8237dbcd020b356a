//! Which agents are connected, and the tunnels waiting for their agent: the relay's shared
//! view of the links. Plain state behind a mutex; the sockets live in the tasks that own them.

use super::Tunnel;
use crate::error::{Error, ErrorKind};
use eyeward::CameraId;
use eyeward::link::{RelayMessage, TunnelId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the relay waits for an agent to open a tunnel it asked for.
pub const TUNNEL_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Tunnels one camera may have open or pending at once.
pub const MAX_TUNNELS_PER_CAMERA: usize = 4;

/// Control messages queued for one agent before the relay stops waiting on it.
const OUTBOX: usize = 32;

struct AgentLink {
    conn: u64,
    to_agent: mpsc::Sender<RelayMessage>,
    rtsp_path: String,
}

struct PendingTunnel {
    camera: CameraId,
    deliver: oneshot::Sender<Result<Tunnel, String>>,
}

#[derive(Default)]
struct Inner {
    agents: HashMap<CameraId, AgentLink>,
    pending: HashMap<TunnelId, PendingTunnel>,
    /// Tunnels per camera, pending or open.
    tunnels: HashMap<CameraId, usize>,
    next_conn: u64,
}

/// The answer when a camera's agent has no link: the camera is offline.
pub fn camera_offline() -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        "the camera's agent is offline",
    )
    .with_code("camera_offline")
}

impl AgentLink {
    /// Whether the link's task still runs: a task that ended without unregistering (it
    /// panicked) dropped its receiving end, and the camera is offline from then on.
    fn is_live(&self) -> bool {
        !self.to_agent.is_closed()
    }
}

impl Inner {
    /// The camera's link while its task runs.
    fn link(&self, camera: CameraId) -> Option<&AgentLink> {
        self.agents.get(&camera).filter(|l| l.is_live())
    }
}

/// The registry of live agent links and pending tunnels.
#[derive(Default)]
pub struct Links {
    inner: Mutex<Inner>,
}

/// A registered link: its id, and the messages the relay wants sent to the agent. The
/// receiver ends when a newer link of the same camera replaces this one.
pub struct Registration {
    pub conn: u64,
    pub to_agent: mpsc::Receiver<RelayMessage>,
    /// An older link of this camera was replaced (its agent restarted, or a copy runs).
    pub replaced_older: bool,
}

/// Counts a tunnel against its camera's limit until dropped.
pub struct TunnelSlot<'a> {
    links: &'a Links,
    camera: CameraId,
}

impl Drop for TunnelSlot<'_> {
    fn drop(&mut self) {
        let mut inner = self.links.lock();
        if let Some(n) = inner.tunnels.get_mut(&self.camera) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.tunnels.remove(&self.camera);
            }
        }
    }
}

impl Links {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the camera's link, replacing (and so closing) any older one.
    pub fn register(&self, camera: CameraId, rtsp_path: String) -> Registration {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        let old = inner.agents.insert(
            camera,
            AgentLink {
                conn,
                to_agent: tx,
                rtsp_path,
            },
        );
        Registration {
            conn,
            to_agent: rx,
            replaced_older: old.is_some(),
        }
    }

    /// Removes the link if `conn` is still the camera's current one; true if it was (the
    /// camera is now offline), false if a newer link had already replaced it.
    pub fn unregister(&self, camera: CameraId, conn: u64) -> bool {
        let mut inner = self.lock();
        if inner.agents.get(&camera).is_some_and(|l| l.conn == conn) {
            inner.agents.remove(&camera);
            true
        } else {
            false
        }
    }

    /// Closes the camera's link, if it has one here (another node took the camera over):
    /// its task ends as for a newer link, and the camera is no longer this node's.
    pub fn close(&self, camera: CameraId) -> bool {
        self.lock().agents.remove(&camera).is_some()
    }

    /// The cameras linked here.
    pub fn cameras(&self) -> Vec<CameraId> {
        let inner = self.lock();
        inner
            .agents
            .iter()
            .filter(|(_, l)| l.is_live())
            .map(|(c, _)| *c)
            .collect()
    }

    pub fn is_online(&self, camera: CameraId) -> bool {
        self.lock().link(camera).is_some()
    }

    pub fn online_count(&self) -> usize {
        self.lock().agents.values().filter(|l| l.is_live()).count()
    }

    /// Queues a control message for the camera's agent.
    pub fn send(&self, camera: CameraId, message: RelayMessage) -> Result<(), Error> {
        let to_agent = self
            .lock()
            .link(camera)
            .map(|l| l.to_agent.clone())
            .ok_or_else(camera_offline)?;
        to_agent.try_send(message).map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "the camera's agent is not keeping up; try again",
            )
        })
    }

    /// The RTSP path the camera's agent announced.
    pub fn rtsp_path(&self, camera: CameraId) -> Option<String> {
        self.lock().link(camera).map(|l| l.rtsp_path.clone())
    }

    /// Asks the camera's agent for a tunnel to `to` and waits until the agent connects it.
    pub async fn open_tunnel(
        &self,
        camera: CameraId,
        to: super::TunnelTo,
    ) -> Result<(Tunnel, TunnelSlot<'_>), Error> {
        let tunnel = TunnelId::from_random(rand::random());
        let (deliver, delivered) = oneshot::channel();
        let to_agent = {
            let mut inner = self.lock();
            let link = inner.agents.get(&camera).ok_or_else(camera_offline)?;
            let to_agent = link.to_agent.clone();
            let count = inner.tunnels.entry(camera).or_default();
            if *count >= MAX_TUNNELS_PER_CAMERA {
                return Err(Error::new(
                    ErrorKind::ResourceExhausted,
                    "this camera has too many video tunnels open",
                ));
            }
            *count += 1;
            inner
                .pending
                .insert(tunnel.clone(), PendingTunnel { camera, deliver });
            to_agent
        };
        let slot = TunnelSlot {
            links: self,
            camera,
        };
        let asked = to_agent
            .send(RelayMessage::OpenTunnel {
                tunnel: tunnel.clone(),
                to_camera: to == super::TunnelTo::Camera,
            })
            .await;
        let result = match asked {
            Err(_) => Err("the camera's agent went offline".to_owned()),
            Ok(()) => match tokio::time::timeout(TUNNEL_OPEN_TIMEOUT, delivered).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the tunnel was abandoned".to_owned()),
                Err(_) => Err("the camera's agent did not open the tunnel in time".to_owned()),
            },
        };
        self.lock().pending.remove(&tunnel);
        match result {
            Ok(ws) => Ok((ws, slot)),
            Err(msg) => Err(Error::new(ErrorKind::FailedPrecondition, msg)),
        }
    }

    /// Takes the pending tunnel `tunnel` if it belongs to `camera`. Another camera's tunnel
    /// answers `None`, exactly as a tunnel that does not exist.
    pub fn claim_tunnel(
        &self,
        tunnel: &TunnelId,
        camera: CameraId,
    ) -> Option<oneshot::Sender<Result<Tunnel, String>>> {
        let mut inner = self.lock();
        if inner.pending.get(tunnel)?.camera != camera {
            return None;
        }
        inner.pending.remove(tunnel).map(|p| p.deliver)
    }

    /// The agent says it could not open `tunnel` (its camera is unreachable).
    pub fn tunnel_failed(&self, tunnel: &TunnelId, camera: CameraId, reason: String) {
        if let Some(deliver) = self.claim_tunnel(tunnel, camera) {
            let _ = deliver.send(Err(format!(
                "the agent could not reach its camera: {reason}"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_link_replaces_the_older_which_then_cannot_mark_the_camera_offline() {
        let links = Links::default();
        let cam = CameraId(7);
        let mut first = links.register(cam, "/live".into());
        assert!(!first.replaced_older);
        let second = links.register(cam, "/live".into());
        assert!(second.replaced_older);
        // The first link's queue is closed: its task ends.
        assert!(first.to_agent.try_recv().is_err());
        assert!(
            !links.unregister(cam, first.conn),
            "the old link leaves the camera online"
        );
        assert!(links.is_online(cam));
        assert!(links.unregister(cam, second.conn));
        assert!(!links.is_online(cam));
    }

    #[test]
    fn a_link_whose_task_ended_without_unregistering_is_offline() {
        let links = Links::default();
        let cam = CameraId(8);
        let reg = links.register(cam, "/live".into());
        assert!(links.is_online(cam) && links.online_count() == 1);
        drop(reg); // its task panicked: the registration unwound with it
        assert!(!links.is_online(cam));
        assert_eq!(links.online_count(), 0);
        assert!(
            links
                .send(cam, RelayMessage::HeartbeatAck { seq: 1 })
                .is_err()
        );
        assert_eq!(links.rtsp_path(cam), None);
        // The agent's next link brings it back.
        let _again = links.register(cam, "/live".into());
        assert!(links.is_online(cam));
    }

    #[tokio::test]
    async fn tunnels_are_claimed_only_by_their_own_camera() {
        let links = std::sync::Arc::new(Links::default());
        let (cam, other) = (CameraId(1), CameraId(2));
        let mut reg = links.register(cam, "/live".into());
        links.register(other, "/live".into());
        let opener = {
            let links = links.clone();
            tokio::spawn(async move {
                links
                    .open_tunnel(cam, crate::link::TunnelTo::Video)
                    .await
                    .map(|_| ())
            })
        };
        let Some(RelayMessage::OpenTunnel { tunnel, .. }) = reg.to_agent.recv().await else {
            panic!("no tunnel request")
        };
        assert!(
            links.claim_tunnel(&tunnel, other).is_none(),
            "another camera's agent"
        );
        links.tunnel_failed(&tunnel, cam, "connection refused".into());
        let err = opener.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert!(links.lock().pending.is_empty());
        assert!(links.lock().tunnels.is_empty(), "the slot was given back");
    }

    #[tokio::test]
    async fn an_offline_camera_gets_no_tunnel() {
        let links = Links::default();
        let err = links
            .open_tunnel(CameraId(3), crate::link::TunnelTo::Video)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    }
}
