//! The cluster's rows (PostgreSQL only; see `docs/cluster.md`): the nodes and their leases,
//! which node holds each agent camera with its fencing generation, the lock under which one
//! node at a time runs the periodic jobs, and the connection that hears other nodes' changes.
//! Lease times are the database's `now()`, so the nodes' clocks never need to agree.

use super::Store;
use super::backend::Pool;
use crate::error::{Error, ErrorKind};
use eyeward::CameraId;
use sqlx::postgres::{PgConnection, PgListener, PgPool};
use std::time::Duration;

/// The advisory lock whose holder runs the periodic jobs (retention, sweeps, offline mail,
/// held alerts, scheduled arming): one node at a time.
const JOBS_LOCK: i64 = 0x6579_6577_6a6f_6273; // "eyewjobs"

/// The tables only several nodes have (PostgreSQL's alone; `admin migrate-storage` leaves
/// them out).
pub(super) const CLUSTER_TABLES: &[&str] = &["nodes", "camera_owners"];

/// The channel every change is told on (see migration `postgres/0003_cluster.sql`).
pub const CHANGES: &str = "eyeward_change";

/// The node holding a camera, as another node reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub node: i64,
    pub internal_url: String,
    pub generation: i64,
}

/// A connection holding the jobs' advisory lock: the lock is the connection's, so it ends
/// when the connection does, at once when this node dies.
pub struct JobsLock(PgConnection);

impl JobsLock {
    /// Whether the connection (and so the lock) is still there.
    pub async fn still_held(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.0).await.is_ok()
    }
}

impl Store {
    fn postgres(&self) -> Result<&PgPool, Error> {
        match &self.pool {
            Pool::Postgres(p) => Ok(p),
            Pool::Sqlite(_) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                "several relay nodes need PostgreSQL",
            )),
        }
    }

    /// A new node, reached at `internal_url`, with a lease of `lease`; returns its id (never
    /// one another node had).
    pub async fn register_node(&self, internal_url: &str, lease: Duration) -> Result<i64, Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO nodes (internal_url, lease_until) \
             VALUES ($1, now() + $2 * interval '1 millisecond') RETURNING id",
        )
        .bind(internal_url)
        .bind(lease.as_millis() as f64)
        .fetch_one(self.postgres()?)
        .await?;
        Ok(id)
    }

    /// Renews the node's lease to `lease` from now.
    pub async fn renew_node(&self, node: i64, lease: Duration) -> Result<(), Error> {
        sqlx::query(
            "UPDATE nodes SET lease_until = now() + $2 * interval '1 millisecond' WHERE id = $1",
        )
        .bind(node)
        .bind(lease.as_millis() as f64)
        .execute(self.postgres()?)
        .await?;
        Ok(())
    }

    /// The node is draining (for whoever looks at the table).
    pub async fn drain_node(&self, node: i64) -> Result<(), Error> {
        sqlx::query("UPDATE nodes SET draining = TRUE WHERE id = $1")
            .bind(node)
            .execute(self.postgres()?)
            .await?;
        Ok(())
    }

    /// The node stops: its lease ends now, so no other node sends it viewers' pulls or
    /// commands any more.
    pub async fn end_node(&self, node: i64) -> Result<(), Error> {
        sqlx::query("UPDATE nodes SET draining = TRUE, lease_until = now() WHERE id = $1")
            .bind(node)
            .execute(self.postgres()?)
            .await?;
        Ok(())
    }

    /// Node `node` takes `camera` over, whoever held it: returns the new generation. The
    /// change is told on [`CHANGES`], so the node that held it closes its link at once.
    pub async fn claim_camera(&self, camera: CameraId, node: i64) -> Result<i64, Error> {
        let (generation,): (i64,) = sqlx::query_as(
            "INSERT INTO camera_owners (camera_id, node_id, generation) VALUES ($1, $2, 1) \
             ON CONFLICT (camera_id) DO UPDATE \
             SET node_id = $2, generation = camera_owners.generation + 1 \
             RETURNING generation",
        )
        .bind(camera.0)
        .bind(node)
        .fetch_one(self.postgres()?)
        .await?;
        Ok(generation)
    }

    /// Lets `camera` go if `generation` is still its owner's: true if it was (the camera is
    /// now offline), false if another node has taken it since.
    pub async fn release_camera(&self, camera: CameraId, generation: i64) -> Result<bool, Error> {
        let released = sqlx::query(
            "UPDATE camera_owners SET node_id = NULL \
             WHERE camera_id = $1 AND generation = $2 AND node_id IS NOT NULL",
        )
        .bind(camera.0)
        .bind(generation)
        .execute(self.postgres()?)
        .await?;
        Ok(released.rows_affected() == 1)
    }

    /// The cameras `node` holds, with their generations.
    pub async fn cameras_held(&self, node: i64) -> Result<Vec<(CameraId, i64)>, Error> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT camera_id, generation FROM camera_owners WHERE node_id = $1")
                .bind(node)
                .fetch_all(self.postgres()?)
                .await?;
        Ok(rows.into_iter().map(|(c, g)| (CameraId(c), g)).collect())
    }

    /// The live node holding `camera`, if any holds it.
    pub async fn camera_owner(&self, camera: CameraId) -> Result<Option<Owner>, Error> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT n.id, n.internal_url, o.generation FROM camera_owners o \
             JOIN nodes n ON n.id = o.node_id \
             WHERE o.camera_id = $1 AND n.lease_until > now()",
        )
        .bind(camera.0)
        .fetch_optional(self.postgres()?)
        .await?;
        Ok(row.map(|(node, internal_url, generation)| Owner {
            node,
            internal_url,
            generation,
        }))
    }

    /// Which of `cameras` a live node holds.
    pub async fn cameras_held_live(&self, cameras: &[CameraId]) -> Result<Vec<CameraId>, Error> {
        let ids: Vec<i64> = cameras.iter().map(|c| c.0).collect();
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT o.camera_id FROM camera_owners o JOIN nodes n ON n.id = o.node_id \
             WHERE o.camera_id = ANY($1) AND n.lease_until > now()",
        )
        .bind(&ids)
        .fetch_all(self.postgres()?)
        .await?;
        Ok(rows.into_iter().map(|(c,)| CameraId(c)).collect())
    }

    /// The jobs' lock, if no other node holds it.
    pub async fn try_jobs_lock(&self) -> Result<Option<JobsLock>, Error> {
        // A connection of its own, never given back to the pool: the lock lives and dies
        // with it.
        let mut conn = self.postgres()?.acquire().await?.detach();
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(JOBS_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(got.then_some(JobsLock(conn)))
    }

    /// A connection listening on [`CHANGES`].
    pub async fn listen_for_changes(&self) -> Result<PgListener, Error> {
        let mut listener = PgListener::connect_with(self.postgres()?).await?;
        listener.listen(CHANGES).await?;
        Ok(listener)
    }

    /// Tells every node `payload` on [`CHANGES`] (for what no row holds: a pan-tilt state).
    pub async fn tell(&self, payload: &str) -> Result<(), Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES)
            .bind(payload)
            .execute(self.postgres()?)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // These rows exist only on PostgreSQL, whatever the backend the other tests run on.
    use crate::store::testing::{motion, on_postgres, porch};
    use crate::store::{AlertPolicy, Audit};
    use eyeward::UnixMillis;

    const LEASE: Duration = Duration::from_secs(12);

    #[tokio::test]
    async fn the_newest_claim_holds_the_camera_and_an_older_generation_is_fenced_off() {
        let s = on_postgres().await;
        let (_, camera) = porch(&s, &Audit::admin(UnixMillis(1))).await;
        let a = s.register_node("http://127.0.0.1:1/", LEASE).await.unwrap();
        let b = s.register_node("http://127.0.0.1:2/", LEASE).await.unwrap();
        assert_ne!(a, b);
        assert_eq!(s.claim_camera(camera, a).await.unwrap(), 1);
        assert_eq!(s.claim_camera(camera, b).await.unwrap(), 2);
        assert!(
            !s.release_camera(camera, 1).await.unwrap(),
            "a was fenced off"
        );
        assert_eq!(s.cameras_held(a).await.unwrap(), []);
        assert_eq!(s.cameras_held(b).await.unwrap(), [(camera, 2)]);
        let owner = s.camera_owner(camera).await.unwrap().unwrap();
        assert_eq!((owner.node, owner.generation), (b, 2));
        assert_eq!(owner.internal_url, "http://127.0.0.1:2/");
        assert_eq!(s.cameras_held_live(&[camera]).await.unwrap(), [camera]);
        assert!(s.release_camera(camera, 2).await.unwrap());
        assert!(!s.release_camera(camera, 2).await.unwrap(), "once");
        assert_eq!(s.camera_owner(camera).await.unwrap(), None);
        assert_eq!(
            s.claim_camera(camera, a).await.unwrap(),
            3,
            "generations are never reused"
        );
    }

    #[tokio::test]
    async fn a_node_whose_lease_ran_out_holds_no_camera_for_the_others() {
        let s = on_postgres().await;
        let (_, camera) = porch(&s, &Audit::admin(UnixMillis(1))).await;
        let a = s.register_node("http://127.0.0.1:1/", LEASE).await.unwrap();
        s.claim_camera(camera, a).await.unwrap();
        s.renew_node(a, Duration::ZERO).await.unwrap();
        assert_eq!(s.camera_owner(camera).await.unwrap(), None);
        assert_eq!(s.cameras_held_live(&[camera]).await.unwrap(), []);
        s.renew_node(a, LEASE).await.unwrap();
        assert!(s.camera_owner(camera).await.unwrap().is_some(), "renewed");
        s.end_node(a).await.unwrap();
        assert_eq!(s.camera_owner(camera).await.unwrap(), None, "stopped");
    }

    #[tokio::test]
    async fn one_node_at_a_time_holds_the_jobs_lock_and_it_ends_with_its_connection() {
        let s = on_postgres().await;
        // The lock is the server's, across databases: these tests' databases share it, so
        // wait for any other test's holder.
        let mut first = loop {
            if let Some(lock) = s.try_jobs_lock().await.unwrap() {
                break lock;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(first.still_held().await);
        assert!(s.try_jobs_lock().await.unwrap().is_none(), "another node");
        drop(first);
        // The server sees the connection go at once on loopback; allow it a moment.
        let mut second = None;
        for _ in 0..100 {
            second = s.try_jobs_lock().await.unwrap();
            if second.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(second.is_some(), "the lock ended with its connection");
    }

    #[tokio::test]
    async fn a_change_is_told_on_commit_to_every_listener() {
        let s = on_postgres().await;
        let (_, camera) = porch(&s, &Audit::admin(UnixMillis(1))).await;
        let mut one = s.listen_for_changes().await.unwrap();
        let mut other = s.listen_for_changes().await.unwrap();
        let node = s.register_node("http://127.0.0.1:1/", LEASE).await.unwrap();
        s.claim_camera(camera, node).await.unwrap();
        let event = s
            .insert_event(
                &motion(camera, "k1", UnixMillis(5)),
                &AlertPolicy {
                    cooldown: Duration::from_secs(60),
                    domain: "test",
                },
            )
            .await
            .unwrap();
        s.tell("ptz:1:2:{}").await.unwrap();
        for listener in [&mut one, &mut other] {
            let mut told = Vec::new();
            for _ in 0..3 {
                let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
                    .await
                    .unwrap()
                    .unwrap();
                told.push(n.payload().to_owned());
            }
            assert_eq!(
                told,
                [
                    format!("owner:{}:1:{node}", camera.0),
                    format!("event:{}", event.id),
                    "ptz:1:2:{}".to_owned(),
                ]
            );
        }
    }
}
