//! Cameras and their agent tokens. Every read that serves a customer is scoped by the owner.

use super::history::{Audit, record};
use super::mail::{Notice, queue_notice};
use super::{Store, on, parse_column};
use crate::error::Error;
use eyeward::arming::CameraAlerts;
use eyeward::{
    CameraId, CameraModel, CameraSource, CustomerId, DisplayName, Plan, RtspSource, UnixMillis,
};
use serde_json::json;

/// A camera as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    pub id: CameraId,
    pub customer_id: CustomerId,
    pub name: String,
    pub model: CameraModel,
    pub plan: Plan,
    pub source: CameraSource,
    /// Since when the camera's agent link has been down, if it was up before.
    pub offline_since: Option<UnixMillis>,
    /// In which of the household's modes the camera mails alerts.
    pub alerts: CameraAlerts,
    /// The bytes of snapshots its events hold (its share of the storage).
    pub snapshot_bytes: u64,
}

/// What the admin gives to provision a camera.
pub struct NewCamera {
    pub customer_id: CustomerId,
    pub name: DisplayName,
    pub model: CameraModel,
    pub plan: Plan,
    pub source: CameraSource,
    /// SHA-256 of the agent token, for `CameraSource::Agent`.
    pub agent_token_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CameraRow {
    id: i64,
    customer_id: i64,
    name: String,
    model: String,
    plan: String,
    source_kind: String,
    source_url: Option<String>,
    source_username: Option<String>,
    source_password: Option<String>,
    offline_since: Option<i64>,
    alert_when_away: bool,
    alert_when_home: bool,
    snapshot_bytes: i64,
}

impl TryFrom<CameraRow> for Camera {
    type Error = Error;
    fn try_from(r: CameraRow) -> Result<Camera, Error> {
        let source = match (r.source_kind.as_str(), r.source_url) {
            ("agent", _) => CameraSource::Agent,
            ("rtsp", Some(url)) => CameraSource::Rtsp(
                RtspSource::from_parts(&url, r.source_username, r.source_password)
                    .map_err(|_| Error::internal("database holds a malformed camera source"))?,
            ),
            _ => return Err(Error::internal("database holds a malformed camera source")),
        };
        Ok(Camera {
            id: CameraId(r.id),
            customer_id: CustomerId(r.customer_id),
            name: r.name,
            model: parse_column("camera model", &r.model)?,
            plan: parse_column("plan", &r.plan)?,
            source,
            offline_since: r.offline_since.map(UnixMillis),
            alerts: CameraAlerts {
                away: r.alert_when_away,
                home: r.alert_when_home,
            },
            snapshot_bytes: u64::try_from(r.snapshot_bytes).unwrap_or(0),
        })
    }
}

const COLUMNS: &str = "id, customer_id, name, model, plan, source_kind, source_url, source_username, source_password, \
     offline_since, alert_when_away, alert_when_home, snapshot_bytes";

fn rows_to_cameras(rows: Vec<CameraRow>) -> Result<Vec<Camera>, Error> {
    rows.into_iter().map(Camera::try_from).collect()
}

impl Store {
    /// Provisions a camera (and its agent token hash) for an existing customer.
    pub async fn add_camera(&self, new: NewCamera, audit: &Audit) -> Result<CameraId, Error> {
        let mut tx = self.begin().await?;
        let (is_customer,): (bool,) = on!(tx, c => sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND role = 'customer')",
        )
        .bind(new.customer_id.0)
        .fetch_one(c)
        .await)?;
        if !is_customer {
            return Err(Error::not_found("customer"));
        }
        let (url, user, pass) = match &new.source {
            CameraSource::Agent => (None, None, None),
            CameraSource::Rtsp(r) => (Some(r.url()), r.username(), r.password()),
        };
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO cameras (customer_id, name, model, plan, source_kind, source_url,
                                  source_username, source_password, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(new.customer_id.0)
        .bind(new.name.as_str())
        .bind(new.model.as_str())
        .bind(new.plan.as_str())
        .bind(new.source.kind())
        .bind(url)
        .bind(user)
        .bind(pass)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        if let Some(hash) = &new.agent_token_hash {
            insert_token(&mut tx, id, hash, audit).await?;
        }
        record(
            &mut tx,
            audit,
            Some(new.customer_id),
            "camera.added",
            json!({ "camera_id": id, "name": new.name, "model": new.model, "plan": new.plan }),
        )
        .await?;
        tx.commit().await?;
        Ok(CameraId(id))
    }

    /// The customer's cameras, in the order they were added.
    pub async fn cameras_of(&self, customer: CustomerId) -> Result<Vec<Camera>, Error> {
        let rows = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cameras WHERE customer_id = $1 ORDER BY id"
        ))
        .bind(customer.0)
        .fetch_all(c)
        .await)?;
        rows_to_cameras(rows)
    }

    /// One of the customer's cameras; `None` if it is not theirs or does not exist.
    pub async fn camera_of(
        &self,
        customer: CustomerId,
        id: CameraId,
    ) -> Result<Option<Camera>, Error> {
        let row: Option<CameraRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cameras WHERE id = $1 AND customer_id = $2"
        ))
        .bind(id.0)
        .bind(customer.0)
        .fetch_optional(c)
        .await)?;
        row.map(Camera::try_from).transpose()
    }

    /// Camera `id`, whoever owns it: for a node asked for it by another node, which checked
    /// its caller's ownership.
    pub async fn camera(&self, id: CameraId) -> Result<Option<Camera>, Error> {
        let row: Option<CameraRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cameras WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(c)
        .await)?;
        row.map(Camera::try_from).transpose()
    }

    /// Every camera, for the admin.
    pub async fn all_cameras(&self) -> Result<Vec<Camera>, Error> {
        let rows = on!(self.pool, c => sqlx::query_as(&format!("SELECT {COLUMNS} FROM cameras ORDER BY id"))
            .fetch_all(c)
            .await)?;
        rows_to_cameras(rows)
    }

    /// Renames one of the customer's cameras; false if it is not theirs.
    pub async fn rename_camera(
        &self,
        customer: CustomerId,
        id: CameraId,
        name: &DisplayName,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let old: Option<(String,)> = on!(tx, c => sqlx::query_as("SELECT name FROM cameras WHERE id = $1 AND customer_id = $2")
                .bind(id.0)
                .bind(customer.0)
                .fetch_optional(c)
                .await)?;
        let Some((old,)) = old else {
            return Ok(false);
        };
        on!(tx, c => sqlx::query("UPDATE cameras SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(id.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        record(
            &mut tx,
            audit,
            Some(customer),
            "camera.renamed",
            json!({ "camera_id": id, "from": old, "to": name }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets in which modes the customer's camera mails alerts, with its history entry; false
    /// if the customer has no such camera.
    pub async fn set_camera_alerts(
        &self,
        customer: CustomerId,
        id: CameraId,
        alerts: CameraAlerts,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let changed: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "UPDATE cameras SET alert_when_away = $3, alert_when_home = $4 \
             WHERE id = $1 AND customer_id = $2 RETURNING name",
        )
        .bind(id.0)
        .bind(customer.0)
        .bind(alerts.away)
        .bind(alerts.home)
        .fetch_optional(c)
        .await)?;
        let Some((name,)) = changed else {
            return Ok(false);
        };
        record(
            &mut tx,
            audit,
            Some(customer),
            "camera.alerts_changed",
            json!({ "camera_id": id, "camera": name, "away": alerts.away, "home": alerts.home }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a camera with its token; false if there was none.
    pub async fn remove_camera(&self, id: CameraId, audit: &Audit) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let owner: Option<(i64,)> = on!(tx, c => sqlx::query_as("DELETE FROM cameras WHERE id = $1 RETURNING customer_id")
                .bind(id.0)
                .fetch_optional(c)
                .await)?;
        if let Some((customer,)) = owner {
            super::revoke(&mut tx).await?;
            record(
                &mut tx,
                audit,
                Some(CustomerId(customer)),
                "camera.removed",
                json!({ "camera_id": id }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(owner.is_some())
    }

    /// Replaces an agent camera's token (the old one stops working at once).
    pub async fn replace_agent_token(
        &self,
        id: CameraId,
        hash: &str,
        audit: &Audit,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let cam: Option<(i64, String)> = on!(tx, c => sqlx::query_as("SELECT customer_id, source_kind FROM cameras WHERE id = $1")
                .bind(id.0)
                .fetch_optional(c)
                .await)?;
        match cam {
            None => return Err(Error::not_found("camera")),
            Some((_, kind)) if kind != "agent" => {
                return Err(Error::bad_request(
                    "this camera is pulled directly over RTSP and has no agent token",
                ));
            }
            Some(_) => {}
        }
        on!(tx, c => sqlx::query("DELETE FROM agent_tokens WHERE camera_id = $1")
            .bind(id.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        super::revoke(&mut tx).await?;
        insert_token(&mut tx, id.0, hash, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an operation on a camera in its owner's history (online, offline...).
    pub async fn record_camera(
        &self,
        audit: &Audit,
        camera: CameraId,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let owner: Option<(i64,)> = on!(tx, c => sqlx::query_as("SELECT customer_id FROM cameras WHERE id = $1")
            .bind(camera.0)
            .fetch_optional(c)
            .await)?;
        if let Some((customer,)) = owner {
            let mut detail = detail;
            detail["camera_id"] = json!(camera);
            let entry = record(&mut tx, audit, Some(CustomerId(customer)), action, detail).await?;
            match action {
                // The outage starts; its notice waits (see `queue_offline_notices`).
                "camera.offline" => {
                    on!(tx, c => sqlx::query(
                        "UPDATE cameras SET offline_history_id = $2, offline_since = $3, \
                         offline_mailed = FALSE WHERE id = $1",
                    )
                    .bind(camera.0)
                    .bind(entry)
                    .bind(audit.at.0)
                    .execute(c)
                    .await.map(|r| r.rows_affected()))?;
                }
                // Back: the owner who was told of the outage is told of its end.
                "camera.online" => {
                    let (told,): (bool,) = on!(tx, c => sqlx::query_as("SELECT offline_mailed FROM cameras WHERE id = $1")
                            .bind(camera.0)
                            .fetch_one(c)
                            .await)?;
                    on!(tx, c => sqlx::query(
                        "UPDATE cameras SET offline_history_id = NULL, offline_since = NULL, \
                         offline_mailed = FALSE WHERE id = $1",
                    )
                    .bind(camera.0)
                    .execute(c)
                    .await.map(|r| r.rows_affected()))?;
                    if told {
                        queue_notice(&mut tx, customer, entry, Notice::Offline, audit.at).await?;
                    }
                }
                _ => {}
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The ids of every camera there is.
    pub async fn camera_ids(&self) -> Result<std::collections::HashSet<i64>, Error> {
        let ids: Vec<(i64,)> = on!(self.pool, c => sqlx::query_as("SELECT id FROM cameras")
            .fetch_all(c)
            .await)?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// The camera an agent token belongs to.
    pub async fn camera_for_agent_token(&self, hash: &str) -> Result<Option<Camera>, Error> {
        let row: Option<CameraRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cameras WHERE id = (SELECT camera_id FROM agent_tokens WHERE token_hash = $1)"
        ))
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        row.map(Camera::try_from).transpose()
    }
}

async fn insert_token(
    tx: &mut super::Tx,
    camera: i64,
    hash: &str,
    audit: &Audit,
) -> Result<(), Error> {
    on!(tx, c => sqlx::query("INSERT INTO agent_tokens (camera_id, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(camera)
        .bind(hash)
        .bind(audit.at.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{customer, store};
    use eyeward::UnixMillis;

    fn camera(owner: CustomerId, source: &str, token: Option<&str>) -> NewCamera {
        NewCamera {
            customer_id: owner,
            name: DisplayName::parse("Porch").unwrap(),
            model: CameraModel::PanTilt,
            plan: Plan::CameraOnly,
            source: CameraSource::parse(source).unwrap(),
            agent_token_hash: token.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn cameras_are_read_only_through_their_owner() {
        let (s, _dir) = store().await;
        let audit = Audit::admin(UnixMillis(0));
        let a = customer(&s, "a@example.jp").await;
        let b = customer(&s, "b@example.jp").await;
        let cam = s
            .add_camera(camera(a, "rtsp://u:p@cam/live", None), &audit)
            .await
            .unwrap();
        assert!(s.camera_of(a, cam).await.unwrap().is_some());
        assert!(s.camera_of(b, cam).await.unwrap().is_none());
        assert!(s.cameras_of(b).await.unwrap().is_empty());
        let name = DisplayName::parse("x").unwrap();
        assert!(!s.rename_camera(b, cam, &name, &audit).await.unwrap());
        let got = s.camera_of(a, cam).await.unwrap().unwrap();
        let CameraSource::Rtsp(r) = got.source else {
            panic!()
        };
        assert_eq!((r.url(), r.password()), ("rtsp://cam/live", Some("p")));
    }

    /// The newest camera removed, the next one added (another customer's) gets a new id:
    /// whatever still named the old id must not reach the new camera. The same holds for
    /// accounts, and every table (they all are AUTOINCREMENT since migration 0009).
    #[tokio::test]
    async fn ids_of_removed_cameras_and_accounts_are_never_given_again() {
        let (s, _dir) = store().await;
        let audit = Audit::admin(UnixMillis(0));
        let a = customer(&s, "a@example.jp").await;
        let removed = s
            .add_camera(camera(a, "agent", Some("t1")), &audit)
            .await
            .unwrap();
        assert!(s.remove_camera(removed, &audit).await.unwrap());
        let b = customer(&s, "b@example.jp").await;
        let next = s
            .add_camera(camera(b, "agent", Some("t2")), &audit)
            .await
            .unwrap();
        assert!(next.0 > removed.0, "{next:?} after {removed:?}");
        assert!(
            s.remove_account(eyeward::Role::Customer, b.0, &audit)
                .await
                .unwrap()
        );
        let c = customer(&s, "c@example.jp").await;
        assert!(c.0 > b.0, "{c:?} after {b:?}");
        // PostgreSQL's identity columns never repeat (tests/postgres_schema.rs); SQLite's
        // tables needed rebuilding (schema.rs).
        let crate::store::backend::Pool::Sqlite(pool) = &s.pool else {
            return;
        };
        let (autoincrement,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
             AND sql LIKE '%INTEGER PRIMARY KEY%' AND sql NOT LIKE '%AUTOINCREMENT%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(autoincrement, 0, "a table can still reuse ids");
        let violations = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(violations.is_empty());
    }

    #[tokio::test]
    async fn a_plan_cannot_change_after_provisioning_even_by_sql() {
        let (s, _dir) = store().await;
        let a = customer(&s, "a@example.jp").await;
        let cam = s
            .add_camera(
                camera(a, "agent", Some("hash")),
                &Audit::admin(UnixMillis(0)),
            )
            .await
            .unwrap();
        let err =
            on!(s.pool, c => sqlx::query("UPDATE cameras SET plan = 'dispatch' WHERE id = $1")
            .bind(cam.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))
            .unwrap_err();
        assert!(err.to_string().contains("plan is fixed"), "{err}");
        assert_eq!(
            s.camera_for_agent_token("hash").await.unwrap().unwrap().id,
            cam
        );
    }

    #[tokio::test]
    async fn a_replaced_agent_token_stops_working() {
        let (s, _dir) = store().await;
        let audit = Audit::admin(UnixMillis(0));
        let a = customer(&s, "a@example.jp").await;
        let cam = s
            .add_camera(camera(a, "agent", Some("old")), &audit)
            .await
            .unwrap();
        s.replace_agent_token(cam, "new", &audit).await.unwrap();
        assert!(s.camera_for_agent_token("old").await.unwrap().is_none());
        assert!(s.camera_for_agent_token("new").await.unwrap().is_some());
        let direct = s
            .add_camera(camera(a, "rtsp://cam/live", None), &audit)
            .await
            .unwrap();
        assert!(s.replace_agent_token(direct, "x", &audit).await.is_err());
    }
}
