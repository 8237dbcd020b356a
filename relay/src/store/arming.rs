//! The household's arming as stored: the mode set by hand, the weekly schedule, each
//! camera's alert switches (in `cameras`), and every switch in the history. What the mode is
//! at a moment, and whether a camera alerts in it, is `eyeward::arming`'s plain code.

use super::backend::Connection;
use super::history::{Actor, Audit, Channel, record};
use super::{Store, on};
use crate::error::Error;
use eyeward::arming::{self, CameraAlerts, Mode, State, Switch};
use eyeward::{CustomerId, UnixMillis};
use serde_json::json;

/// The most switches one schedule holds (four a day, every day).
pub const MAX_SWITCHES: usize = 28;

/// A stored scheduled switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSwitch {
    pub id: i64,
    pub switch: Switch,
}

/// A household's arming now: its mode, the schedule's next switch, and the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arming {
    pub state: State,
    pub next: Option<(UnixMillis, Mode)>,
    pub schedule: Vec<StoredSwitch>,
}

/// The mode set by hand (if ever) and the schedule of `customer`.
async fn load(
    conn: &mut impl Connection,
    customer: i64,
) -> Result<(Option<(Mode, UnixMillis)>, Vec<StoredSwitch>), Error> {
    let (mode, set_at): (String, Option<i64>) = on!(conn, c => sqlx::query_as("SELECT arming_mode, arming_set_at FROM accounts WHERE id = $1")
            .bind(customer)
            .fetch_one(c)
            .await)?;
    Ok((by_hand(&mode, set_at)?, schedule_of(conn, customer).await?))
}

/// The mode set by hand, from the account's `arming_mode` and `arming_set_at`.
pub(super) fn by_hand(
    mode: &str,
    set_at: Option<i64>,
) -> Result<Option<(Mode, UnixMillis)>, Error> {
    let mode = Mode::parse(mode).ok_or_else(|| Error::internal("unknown arming mode"))?;
    Ok(set_at.map(|at| (mode, UnixMillis(at))))
}

/// The schedule of `customer`, in order.
async fn schedule_of(
    conn: &mut impl Connection,
    customer: i64,
) -> Result<Vec<StoredSwitch>, Error> {
    let rows: Vec<(i64, i64, i64, String)> = on!(conn, c => sqlx::query_as(
        "SELECT id, days, minute, mode FROM arming_switches WHERE customer_id = $1 \
         ORDER BY minute, id",
    )
    .bind(customer)
    .fetch_all(c)
    .await)?;
    rows.into_iter()
        .map(|(id, days, minute, mode)| {
            Ok(StoredSwitch {
                id,
                switch: stored_switch(days, minute, &mode)?,
            })
        })
        .collect()
}

/// A switch from its columns.
fn stored_switch(days: i64, minute: i64, mode: &str) -> Result<Switch, Error> {
    Ok(Switch {
        days: u8::try_from(days).map_err(|_| Error::internal("arming days"))?,
        minute: u16::try_from(minute).map_err(|_| Error::internal("arming minute"))?,
        mode: Mode::parse(mode).ok_or_else(|| Error::internal("arming mode"))?,
    })
}

fn switches(schedule: &[StoredSwitch]) -> Vec<Switch> {
    schedule.iter().map(|s| s.switch).collect()
}

async fn arming_in(
    conn: &mut impl Connection,
    customer: i64,
    now: UnixMillis,
) -> Result<Arming, Error> {
    let (by_hand, schedule) = load(conn, customer).await?;
    let plain = switches(&schedule);
    Ok(Arming {
        state: arming::state(by_hand, &plain, now),
        next: arming::next(&plain, now),
        schedule,
    })
}

/// Whether an event at `now` of a camera of `owner`'s with these switches may be mailed: the
/// owner's mode, from what was read of the account already (the mode set by hand, and
/// whether it has a schedule, which is read only then).
pub(super) async fn alerts_now(
    conn: &mut impl Connection,
    owner: i64,
    set_by_hand: Option<(Mode, UnixMillis)>,
    scheduled: bool,
    camera: CameraAlerts,
    now: UnixMillis,
) -> Result<bool, Error> {
    let schedule = if scheduled {
        schedule_of(conn, owner).await?
    } else {
        Vec::new()
    };
    let mode = arming::state(set_by_hand, &switches(&schedule), now).mode;
    Ok(arming::alerts(mode, camera))
}

impl Store {
    /// The customer's arming at `now`.
    pub async fn arming(&self, customer: CustomerId, now: UnixMillis) -> Result<Arming, Error> {
        let mut conn = self.pool.acquire().await?;
        arming_in(&mut conn, customer.0, now).await
    }

    /// Switches the household to `mode` by hand (it holds until the next scheduled switch),
    /// with its history entry; a switch to the mode it is in already changes nothing.
    pub async fn set_arming(
        &self,
        customer: CustomerId,
        mode: Mode,
        audit: &Audit,
    ) -> Result<Arming, Error> {
        let mut tx = self.begin().await?;
        let before = arming_in(&mut tx, customer.0, audit.at).await?;
        if before.state.mode != mode {
            on!(tx, c => sqlx::query("UPDATE accounts SET arming_mode = $2, arming_set_at = $3 WHERE id = $1")
                .bind(customer.0)
                .bind(mode.as_str())
                .bind(audit.at.0)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            record(
                &mut tx,
                audit,
                Some(customer),
                "arming.changed",
                json!({ "mode": mode, "from": before.state.mode, "by": "hand" }),
            )
            .await?;
        }
        let after = arming_in(&mut tx, customer.0, audit.at).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Adds a switch to the customer's schedule, with its history entry. Refused (`None`)
    /// when the schedule is full.
    pub async fn add_arming_switch(
        &self,
        customer: CustomerId,
        switch: Switch,
        audit: &Audit,
    ) -> Result<Option<StoredSwitch>, Error> {
        let mut tx = self.begin().await?;
        let (_, schedule) = load(&mut tx, customer.0).await?;
        if schedule.len() >= MAX_SWITCHES {
            return Ok(None);
        }
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO arming_switches (customer_id, days, minute, mode, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(customer.0)
        .bind(i64::from(switch.days))
        .bind(i64::from(switch.minute))
        .bind(switch.mode.as_str())
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        // A switch added now did not fire in the past: its earlier times are not news.
        let mut plain = switches(&schedule);
        plain.push(switch);
        if let Some(last) = arming::last_scheduled(&plain, audit.at) {
            on!(tx, c => sqlx::query(
                "UPDATE accounts SET arming_schedule_seen = $2 \
                 WHERE id = $1 AND (arming_schedule_seen IS NULL OR arming_schedule_seen < $2)",
            )
            .bind(customer.0)
            .bind(last.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        }
        record(
            &mut tx,
            audit,
            Some(customer),
            "arming.schedule_added",
            json!({ "days": switch.day_names(), "time": switch.time(), "mode": switch.mode }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(StoredSwitch { id, switch }))
    }

    /// Removes one of the customer's scheduled switches, with its history entry; false if the
    /// customer has no such switch.
    pub async fn remove_arming_switch(
        &self,
        customer: CustomerId,
        id: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let removed: Option<(i64, i64, String)> = on!(tx, c => sqlx::query_as(
            "DELETE FROM arming_switches WHERE id = $1 AND customer_id = $2 \
             RETURNING days, minute, mode",
        )
        .bind(id)
        .bind(customer.0)
        .fetch_optional(c)
        .await)?;
        let Some((days, minute, mode)) = removed else {
            return Ok(false);
        };
        let switch = stored_switch(days, minute, &mode)?;
        record(
            &mut tx,
            audit,
            Some(customer),
            "arming.schedule_removed",
            json!({ "days": switch.day_names(), "time": switch.time(), "mode": mode }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes each household's latest scheduled switch at or before `now` to its history
    /// (once, and only when it changed the mode), so that every switch is there, by whom and
    /// through what. Returns how many were written.
    pub async fn record_scheduled_switches(&self, now: UnixMillis) -> Result<usize, Error> {
        // Read first, without a lock: most ticks find nothing new, and take no write lock.
        let households: Vec<(i64, Option<i64>)> = on!(self.pool, c => sqlx::query_as(
            "SELECT id, arming_schedule_seen FROM accounts \
             WHERE id IN (SELECT customer_id FROM arming_switches)",
        )
        .fetch_all(c)
        .await)?;
        let mut written = 0;
        for (customer, seen) in households {
            let schedule: Vec<(i64, i64, String)> = on!(self.pool, c => sqlx::query_as(
                "SELECT days, minute, mode FROM arming_switches WHERE customer_id = $1",
            )
            .bind(customer)
            .fetch_all(c)
            .await)?;
            let plain = schedule
                .iter()
                .map(|(days, minute, mode)| stored_switch(*days, *minute, mode))
                .collect::<Result<Vec<_>, Error>>()?;
            let Some(last) = arming::last_scheduled(&plain, now) else {
                continue;
            };
            if seen.is_some_and(|seen| seen >= last.0) {
                continue;
            }
            let mut tx = self.begin().await?;
            // Exactly once, whoever else looks at the same moment.
            let newly_seen = on!(tx, c => sqlx::query(
                "UPDATE accounts SET arming_schedule_seen = $2 WHERE id = $1 \
                 AND (arming_schedule_seen IS NULL OR arming_schedule_seen < $2)",
            )
            .bind(customer)
            .bind(last.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?
                == 1;
            let (by_hand, schedule) = load(&mut tx, customer).await?;
            let plain = switches(&schedule);
            let before = arming::state(by_hand, &plain, UnixMillis(last.0 - 1));
            let after = arming::state(by_hand, &plain, last);
            if newly_seen && after.by == arming::By::Schedule && after.mode != before.mode {
                let audit = Audit {
                    actor: Actor::System,
                    channel: Channel::System,
                    at: last,
                };
                record(
                    &mut tx,
                    &audit,
                    Some(CustomerId(customer)),
                    "arming.changed",
                    json!({ "mode": after.mode, "from": before.mode, "by": "schedule" }),
                )
                .await?;
                written += 1;
            }
            tx.commit().await?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{customer, store};

    /// 2026-11-23, a Monday, at `hh:mm` home time (UTC+9).
    fn monday(hh: i64, mm: i64) -> UnixMillis {
        UnixMillis(1_795_359_600_000 + (hh * 60 + mm) * 60_000)
    }

    async fn switches_written(s: &Store, c: CustomerId) -> Vec<serde_json::Value> {
        s.history_of(c, None, 50)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "arming.changed")
            .map(|e| serde_json::from_str(&e.detail).unwrap())
            .collect()
    }

    /// Away on weekdays 8:00–18:00, added early on a Monday: each scheduled switch that
    /// changes the mode is written to the history once, by the system; a switch by hand in
    /// between is its own entry and holds until the next scheduled one.
    #[tokio::test]
    async fn each_scheduled_switch_is_written_once_and_a_switch_by_hand_holds_until_the_next() {
        let (s, _dir) = store().await;
        let c = CustomerId(customer(&s, "a@example.jp").await.0);
        let audit = |at| Audit::admin(at);
        let weekdays: Vec<String> = arming::DAYS[..5].iter().map(|d| d.to_string()).collect();
        for (time, mode) in [("08:00", Mode::Away), ("18:00", Mode::Home)] {
            let switch = Switch::parse(&weekdays, time, mode).unwrap();
            s.add_arming_switch(c, switch, &audit(monday(7, 0)))
                .await
                .unwrap()
                .unwrap();
        }
        let now = s.arming(c, monday(7, 0)).await.unwrap();
        assert_eq!(now.state.mode, Mode::Home, "Friday evening's switch holds");
        assert_eq!(now.next, Some((monday(8, 0), Mode::Away)));
        assert_eq!(
            s.record_scheduled_switches(monday(7, 30)).await.unwrap(),
            0,
            "the past is not news"
        );

        assert_eq!(s.record_scheduled_switches(monday(8, 1)).await.unwrap(), 1);
        assert_eq!(
            s.record_scheduled_switches(monday(8, 2)).await.unwrap(),
            0,
            "once"
        );
        s.set_arming(c, Mode::Off, &audit(monday(9, 0)))
            .await
            .unwrap();
        assert_eq!(
            s.arming(c, monday(12, 0)).await.unwrap().state.mode,
            Mode::Off
        );
        assert_eq!(s.record_scheduled_switches(monday(18, 1)).await.unwrap(), 1);
        assert_eq!(
            s.arming(c, monday(18, 1)).await.unwrap().state.mode,
            Mode::Home
        );
        assert_eq!(
            switches_written(&s, c).await,
            [
                serde_json::json!({"mode": "home", "from": "off", "by": "schedule"}),
                serde_json::json!({"mode": "off", "from": "away", "by": "hand"}),
                serde_json::json!({"mode": "away", "from": "home", "by": "schedule"}),
            ]
        );
    }

    #[tokio::test]
    async fn a_switch_to_the_mode_already_on_is_not_written_and_a_full_schedule_refuses_more() {
        let (s, _dir) = store().await;
        let c = CustomerId(customer(&s, "a@example.jp").await.0);
        let audit = Audit::admin(monday(7, 0));
        s.set_arming(c, Mode::Away, &audit).await.unwrap();
        assert!(switches_written(&s, c).await.is_empty(), "Away already");
        let every_day: Vec<String> = arming::DAYS.iter().map(|d| d.to_string()).collect();
        for i in 0..MAX_SWITCHES {
            let time = format!("{:02}:00", i % 24);
            let switch = Switch::parse(&every_day, &time, Mode::Home).unwrap();
            assert!(
                s.add_arming_switch(c, switch, &audit)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let one_more = Switch::parse(&every_day, "23:59", Mode::Off).unwrap();
        assert!(
            s.add_arming_switch(c, one_more, &audit)
                .await
                .unwrap()
                .is_none()
        );
        let other = CustomerId(customer(&s, "b@example.jp").await.0);
        let first = s.arming(c, monday(7, 0)).await.unwrap().schedule[0].id;
        assert!(
            !s.remove_arming_switch(other, first, &audit).await.unwrap(),
            "not theirs"
        );
        assert!(s.remove_arming_switch(c, first, &audit).await.unwrap());
    }
}

#[cfg(test)]
mod concurrency {
    use super::*;
    use crate::store::testing::{customer, store};

    /// Changes that read before they write, many at once on the pool's connections: none is
    /// answered "busy" (SQLite refuses to turn a reading transaction into a writing one after
    /// another connection wrote, unless the transaction took the write lock first).
    #[tokio::test]
    async fn changes_that_read_first_all_go_through_when_they_come_together() {
        let (s, _dir) = store().await;
        let c = CustomerId(customer(&s, "a@example.jp").await.0);
        let modes = [Mode::Home, Mode::Off, Mode::Away];
        let switches = (0..24).map(|i| {
            let s = s.clone();
            async move {
                let audit = Audit::admin(UnixMillis(1_800_000_000_000 + i));
                s.set_arming(c, modes[i as usize % 3], &audit).await
            }
        });
        for result in futures_util::future::join_all(switches).await {
            result.expect("every switch goes through");
        }
    }
}
