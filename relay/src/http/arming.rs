//! The household's arming over HTTP: `GET /api/arming` (the mode, since when and by what, the
//! schedule's next switch, the schedule), `PUT /api/arming` (a switch by hand), and
//! `POST /api/arming/schedule`, `DELETE /api/arming/schedule/{id}` for the weekly schedule.
//! Each camera's alert switches are set with `PATCH /api/cameras/{id}`.

use super::AppState;
use super::extract::{ApiJson, CustomerCaller, IdPath};
use crate::error::{Error, ErrorKind};
use crate::store::{Arming, MAX_SWITCHES, StoredSwitch};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eyeward::UnixMillis;
use eyeward::arming::{Mode, Switch};
use serde::Deserialize;
use serde_json::{Value, json};

fn switch_json(s: &StoredSwitch) -> Value {
    json!({
        "id": s.id,
        "days": s.switch.day_names(),
        "time": s.switch.time(),
        "mode": s.switch.mode,
    })
}

fn arming_json(a: &Arming) -> Value {
    json!({
        "mode": a.state.mode,
        "since": a.state.since.map(UnixMillis::to_rfc3339),
        "by": a.state.by,
        "next": a.next.map(|(at, mode)| json!({"at": at.to_rfc3339(), "mode": mode})),
        "schedule": a.schedule.iter().map(switch_json).collect::<Vec<_>>(),
    })
}

/// `GET /api/arming`.
pub async fn get(State(st): State<AppState>, c: CustomerCaller) -> Result<Json<Value>, Error> {
    let arming = st.store.arming(c.id, st.clock.now()).await?;
    Ok(Json(arming_json(&arming)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMode {
    mode: Mode,
}

/// `PUT /api/arming {"mode": "away"|"home"|"off"}`: a switch by hand.
pub async fn set(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(req): ApiJson<SetMode>,
) -> Result<Json<Value>, Error> {
    let arming = st
        .store
        .set_arming(c.id, req.mode, &c.caller.audit(st.clock.now()))
        .await?;
    Ok(Json(arming_json(&arming)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSwitch {
    days: Vec<String>,
    time: String,
    mode: Mode,
}

/// `POST /api/arming/schedule {"days": ["mon", …], "time": "HH:MM", "mode"}`.
pub async fn add_switch(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(req): ApiJson<NewSwitch>,
) -> Result<Response, Error> {
    if req.days.len() > 7 {
        return Err(Error::bad_request("at most 7 days").with_code("bad_switch"));
    }
    let switch = Switch::parse(&req.days, &req.time, req.mode)
        .map_err(|e| Error::bad_request(e.to_string()).with_code("bad_switch"))?;
    let added = st
        .store
        .add_arming_switch(c.id, switch, &c.caller.audit(st.clock.now()))
        .await?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("a schedule holds at most {MAX_SWITCHES} switches"),
            )
            .with_code("schedule_full")
        })?;
    Ok((StatusCode::CREATED, Json(switch_json(&added))).into_response())
}

/// `DELETE /api/arming/schedule/{id}`.
pub async fn remove_switch(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    if st
        .store
        .remove_arming_switch(c.id, id, &c.caller.audit(st.clock.now()))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("scheduled switch"))
    }
}
