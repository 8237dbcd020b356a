//! The household's people. The account holder (a customer) invites someone by mail with the
//! rights they give per camera, and for a guest the moment those end; lists, changes and
//! removes members at once (`/api/household`, the holder's session). The invited person
//! opens the mailed link (`/#invite/{token}`: the token stays in the browser's fragment, out
//! of every log), sees who invites them, and chooses their password: `POST /api/invitation`
//! and `/api/invitation/accept`, whose body's token is their only authority, single use, 72 h.

use super::AppState;
use super::api::{password_turn, signed_in};
use super::extract::{ApiJson, CustomerCaller, IdPath};
use crate::auth::{Token, hash_password, hash_token};
use crate::error::Error;
use crate::mail::compose;
use crate::store::{Invitation, Member, NewInvitation};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eyeward::household::{Membership, Rights};
use eyeward::{CameraId, DisplayName, Email, Language, Password, UnixMillis};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long an invitation's link works.
const INVITATION_FOR: Duration = Duration::from_secs(72 * 3600);
/// The furthest a guest's end may be set: a year.
const LONGEST_GUEST: Duration = Duration::from_secs(366 * 24 * 3600);
/// Cameras one grant may name.
const MAX_CAMERAS: usize = 200;

/// What the holder gives: rights per camera, and for a guest their end (RFC 3339).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    cameras: BTreeMap<CameraId, Rights>,
    until: Option<String>,
}

impl Grant {
    fn membership(self, now: UnixMillis) -> Result<Membership, Error> {
        if self.cameras.len() > MAX_CAMERAS {
            return Err(Error::bad_request(format!(
                "at most {MAX_CAMERAS} cameras at once"
            )));
        }
        let until = match self.until.as_deref() {
            None => None,
            Some(s) => {
                let until = UnixMillis::parse_rfc3339(s).ok_or_else(|| {
                    Error::bad_request("until: a time as RFC 3339 writes it").with_code("bad_until")
                })?;
                if until <= now || until > now.plus(LONGEST_GUEST) {
                    return Err(Error::bad_request(
                        "until: a guest's end must come, and within a year",
                    )
                    .with_code("bad_until"));
                }
                Some(until)
            }
        };
        Ok(Membership {
            cameras: self.cameras,
            until,
        })
    }
}

fn membership_json(m: &Membership) -> Value {
    json!({
        "cameras": m.cameras,
        "until": m.until.map(|u| u.to_rfc3339()),
    })
}

fn member_json(m: &Member, now: UnixMillis) -> Value {
    let mut v = membership_json(&m.membership);
    v["id"] = json!(m.account.id);
    v["name"] = json!(m.account.name);
    v["email"] = json!(m.account.email);
    v["guest"] = json!(m.membership.until.is_some());
    v["ended"] = json!(!m.membership.is_current(now));
    v
}

fn invitation_json(i: &Invitation) -> Value {
    let mut v = membership_json(&i.membership);
    v["id"] = json!(i.id);
    v["name"] = json!(i.name);
    v["email"] = json!(i.email);
    v["lang"] = json!(i.lang);
    v["state"] = json!(i.state);
    v["expires_at"] = json!(i.expires_at.to_rfc3339());
    v["created_at"] = json!(i.created_at.to_rfc3339());
    v
}

/// `GET /api/household`: the holder's members and invitations.
pub async fn get(State(st): State<AppState>, c: CustomerCaller) -> Result<Json<Value>, Error> {
    let now = st.clock.now();
    let members = st.store.members(c.id).await?;
    let invitations = st.store.invitations(c.id, now).await?;
    Ok(Json(json!({
        "members": members.iter().map(|m| member_json(m, now)).collect::<Vec<_>>(),
        "invitations": invitations.iter().map(invitation_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvitationRequest {
    email: String,
    name: String,
    /// The invited person's language; the holder's when left out.
    lang: Option<Language>,
    cameras: BTreeMap<CameraId, Rights>,
    until: Option<String>,
}

/// `POST /api/household/invitations {"email", "name", "lang"?, "cameras", "until"?}`: invites
/// someone, mailing them the link. 409 for an address with an account or a full household.
pub async fn invite(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(req): ApiJson<NewInvitationRequest>,
) -> Result<Response, Error> {
    let audit = c.caller.audit(st.clock.now());
    let new = NewInvitation {
        email: Email::parse(&req.email)
            .map_err(|e| Error::bad_request(e.to_string()).with_code("invalid_email"))?,
        name: DisplayName::parse(&req.name).map_err(|e| Error::bad_request(e.to_string()))?,
        lang: req.lang.unwrap_or(c.caller.account.lang),
        membership: Grant {
            cameras: req.cameras,
            until: req.until,
        }
        .membership(audit.at)?,
    };
    let token = Token::generate("ewi_");
    let expires = audit.at.plus(INVITATION_FOR);
    let mailer = &st.mailer;
    let message_id = format!(
        "<invitation.{:016x}@{}>",
        rand::random::<u64>(),
        mailer.domain()
    );
    let accept_url = mailer.link(&format!("/#invite/{}", token.secret()));
    let invitation = st
        .store
        .invite(
            c.id,
            &new,
            &token.hash,
            expires,
            &message_id,
            |i| {
                compose::invitation(&compose::Invitation {
                    from: mailer.from(),
                    to: i.email.as_str(),
                    message_id: &message_id,
                    date: audit.at,
                    lang: i.lang,
                    by: &c.caller.account.name,
                    name: &i.name,
                    accept_url: &accept_url,
                    expires,
                    until: i.membership.until,
                })
            },
            &audit,
        )
        .await?;
    mailer.wake.notify_one();
    tracing::info!(invitation = invitation.id, "invitation queued");
    Ok((StatusCode::CREATED, Json(invitation_json(&invitation))).into_response())
}

/// `DELETE /api/household/invitations/{id}`: withdraws a pending invitation; 404 otherwise.
pub async fn withdraw(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    let audit = c.caller.audit(st.clock.now());
    if st.store.withdraw_invitation(c.id, id, &audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("invitation"))
    }
}

/// `PUT /api/household/members/{id} {"cameras", "until"?}`: gives the member exactly these
/// rights, at once (what they had open and may no longer have ends).
pub async fn set_rights(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
    ApiJson(grant): ApiJson<Grant>,
) -> Result<Json<Value>, Error> {
    let audit = c.caller.audit(st.clock.now());
    let membership = grant.membership(audit.at)?;
    if !st
        .store
        .set_membership(c.id, id, &membership, &audit)
        .await?
    {
        return Err(Error::not_found("member"));
    }
    Ok(Json(membership_json(&membership)))
}

/// `DELETE /api/household/members/{id}`: removes the member, their login and rights, at once.
pub async fn remove(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    let audit = c.caller.audit(st.clock.now());
    if st.store.remove_member(c.id, id, &audit).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("member"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    token: String,
}

/// `POST /api/invitation {"token"}`: what the invitation is, for its page: who invites, the
/// name and address it is for, the cameras and rights, until when it works. 404 for an
/// unknown, used or expired token.
pub async fn look(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<InvitationToken>,
) -> Result<Json<Value>, Error> {
    let now = st.clock.now();
    let (invitation, holder) = st
        .store
        .invitation_for(&hash_token(&req.token), now)
        .await?
        .ok_or_else(|| Error::not_found("invitation"))?;
    let cameras = st.store.cameras_of(invitation.household).await?;
    let named: Vec<Value> = cameras
        .iter()
        .filter_map(|camera| {
            let rights = invitation.membership.cameras.get(&camera.id)?;
            Some(json!({"id": camera.id, "name": camera.name, "rights": rights}))
        })
        .collect();
    let mut v = invitation_json(&invitation);
    v["household"] = json!(holder);
    v["cameras"] = json!(named);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    token: String,
    password: String,
}

/// `POST /api/invitation/accept {"token", "password"}`: the invited person's account, with
/// the password they chose, and their first session (as a login). 404 for an unknown, used
/// or expired token; 409 when their address has an account by now.
pub async fn accept(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<Acceptance>,
) -> Result<Response, Error> {
    let password = Password::new(&req.password)
        .map_err(|e| Error::bad_request(e.to_string()).with_code("weak_password"))?;
    let token_hash = hash_token(&req.token);
    // Only a live invitation costs a password hash.
    if st
        .store
        .invitation_for(&token_hash, st.clock.now())
        .await?
        .is_none()
    {
        return Err(Error::not_found("invitation"));
    }
    let turn = password_turn(&st).await?;
    let hash = tokio::task::spawn_blocking(move || {
        let hash = hash_password(&password);
        drop(turn);
        hash
    })
    .await
    .map_err(|e| Error::internal("password hash").with_source(e))??;
    let now = st.clock.now();
    let account = st
        .store
        .accept_invitation(&token_hash, &hash, now)
        .await?
        .ok_or_else(|| Error::not_found("invitation"))?;
    tracing::info!(member = account.id, "invitation accepted");
    signed_in(&st, account, false, None, now).await
}
