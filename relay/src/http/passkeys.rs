//! Passkeys at the HTTP edge: a signed-in person's list, registering and removing one; signing
//! in with one; and checking a signed-in session with one (what an operator's console needs).
//! Each ceremony is two requests: `…/options` starts it and hands the browser a ceremony token
//! with the WebAuthn options; the finish brings the token back with the authenticator's answer.

use super::AppState;
use super::api::{access_ended, signed_in_with_passkey};
use super::extract::{ApiJson, Caller, IdPath};
use crate::auth::{
    CEREMONY_TIMEOUT, Ceremony, CeremonyKind, MAX_PASSKEYS, PasskeyUser, Token, credential_key,
    hash_token, passkey_refused,
};
use crate::error::{Error, ErrorKind};
use crate::store::{NewPasskey, PasskeyEntry, StoredPasskey};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eyeward::{DisplayName, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential, Uuid};

/// The caller's passkeys, and what this relay and session make of them.
#[derive(Serialize)]
pub struct PasskeysView {
    /// Whether passkeys can be had here (the relay's public URL names a domain).
    offered: bool,
    /// Whether this session was signed in or checked with a passkey.
    checked: bool,
    /// Whether this account needs a checked session before its pages open (operators).
    needed: bool,
    passkeys: Vec<PasskeyEntry>,
}

/// `GET /api/passkeys`.
pub async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<PasskeysView>, Error> {
    let passkeys = st.store.passkeys(caller.account.id).await?;
    let offered = st.relying_party.offered();
    Ok(Json(PasskeysView {
        offered,
        checked: caller.passkey.is_some(),
        needed: offered && caller.account.role == Role::Operator,
        passkeys: passkeys.into_iter().map(|p| p.entry).collect(),
    }))
}

/// `GET /api/login/passkey`: whether the sign-in page may offer a passkey (no session needed:
/// it says nothing of anyone).
pub async fn offered(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "offered": st.relying_party.offered() }))
}

/// A ceremony's start: the token its finish brings back, and the options for
/// `navigator.credentials`.
#[derive(Serialize)]
pub struct Started {
    ceremony: String,
    options: Value,
}

/// Keeps `ceremony` for its finish (for `session_hash`'s session, if any).
async fn begin(
    st: &AppState,
    ceremony: &Ceremony,
    options: Value,
    session_hash: Option<&str>,
) -> Result<Json<Started>, Error> {
    let token = Token::generate("");
    st.store
        .begin_ceremony(
            &token.hash,
            ceremony,
            session_hash,
            st.clock.now(),
            CEREMONY_TIMEOUT,
        )
        .await?;
    Ok(Json(Started {
        ceremony: token.secret().to_owned(),
        options,
    }))
}

/// Takes the ceremony of `kind` that `token` names (for `session_hash`'s session, if any).
async fn take(
    st: &AppState,
    token: &str,
    kind: CeremonyKind,
    session_hash: Option<&str>,
) -> Result<Ceremony, Error> {
    st.store
        .take_ceremony(&hash_token(token), kind, session_hash, st.clock.now())
        .await?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                "this passkey request has expired or was used; start again",
            )
            .with_code("passkey_ceremony_gone")
        })
}

fn options_json(options: impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(options).map_err(|e| Error::internal("passkey options").with_source(e))
}

/// An operator's passkeys change only from a session checked with one of them: their password
/// alone must not let someone add a passkey of their own or take the owner's away.
fn may_change_passkeys(caller: &Caller, has_passkeys: bool) -> Result<(), Error> {
    if caller.account.role == Role::Operator && has_passkeys && caller.passkey.is_none() {
        return Err(
            Error::forbidden("check with one of your passkeys first").with_code("passkey_needed")
        );
    }
    Ok(())
}

/// `POST /api/passkeys/options`: starts registering a passkey for the caller.
pub async fn register_options(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Started>, Error> {
    let existing = st.store.passkeys(caller.account.id).await?;
    may_change_passkeys(&caller, !existing.is_empty())?;
    if existing.len() >= MAX_PASSKEYS {
        return Err(Error::new(
            ErrorKind::ResourceExhausted,
            format!("an account has at most {MAX_PASSKEYS} passkeys; remove one first"),
        )
        .with_code("too_many_passkeys"));
    }
    let user = PasskeyUser {
        handle: user_handle(&existing),
        email: caller.account.email.as_str(),
        name: &caller.account.name,
    };
    let credentials: Vec<_> = existing.into_iter().map(|p| p.credential).collect();
    let (options, ceremony) = st.relying_party.start_registration(&user, &credentials)?;
    begin(&st, &ceremony, options, Some(&caller.token_hash)).await
}

/// The account's WebAuthn user handle: the one its passkeys have, or a new one for its first.
fn user_handle(existing: &[StoredPasskey]) -> Uuid {
    existing
        .first()
        .map_or_else(Uuid::new_v4, |p| p.user_handle)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    ceremony: String,
    /// What its owner calls it ("my phone").
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /api/passkeys {"ceremony", "name", "credential"}`: stores the passkey just made; the
/// session is then checked with it.
pub async fn register(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Registration>,
) -> Result<Response, Error> {
    let name = DisplayName::parse(&req.name)?;
    let Ceremony::Register { state, user } = take(
        &st,
        &req.ceremony,
        CeremonyKind::Register,
        Some(&caller.token_hash),
    )
    .await?
    else {
        return Err(Error::internal(
            "a registration's ceremony is of another kind",
        ));
    };
    let existing = st.store.passkeys(caller.account.id).await?;
    may_change_passkeys(&caller, !existing.is_empty())?;
    let passkey = st
        .relying_party
        .finish_registration(&req.credential, &state)?;
    let credential_id = credential_key(passkey.cred_id());
    let now = st.clock.now();
    let id = st
        .store
        .add_passkey(
            NewPasskey {
                account_id: caller.account.id,
                role: caller.account.role,
                name: name.as_str(),
                user_handle: user,
                credential_id: &credential_id,
                credential: &passkey,
            },
            &caller.token_hash,
            &caller.audit(now),
        )
        .await?;
    let entry = PasskeyEntry {
        id,
        name: name.as_str().to_owned(),
        created_at: now,
        last_used_at: None,
    };
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// `DELETE /api/passkeys/{id}`: removes one of the caller's passkeys; the sessions it signed in
/// (but this one) end. 404 for anyone else's.
pub async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    may_change_passkeys(&caller, true)?;
    let a = &caller.account;
    if st
        .store
        .remove_passkey(
            a.id,
            a.role,
            id,
            &caller.token_hash,
            &caller.audit(st.clock.now()),
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("passkey"))
    }
}

/// `POST /api/login/passkey/options`: starts a sign-in with a passkey (no address typed).
pub async fn sign_in_options(State(st): State<AppState>) -> Result<Json<Started>, Error> {
    let (options, ceremony) = st.relying_party.start_sign_in()?;
    begin(&st, &ceremony, options_json(options)?, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    ceremony: String,
    credential: PublicKeyCredential,
}

/// `POST /api/login/passkey {"ceremony", "credential"}`: signs in the passkey's owner, as a
/// password login does; 401 for a passkey not (or no longer) known here.
pub async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Answer>,
) -> Result<Response, Error> {
    let Ceremony::SignIn(state) = take(&st, &req.ceremony, CeremonyKind::SignIn, None).await?
    else {
        return Err(Error::internal("a sign-in's ceremony is of another kind"));
    };
    let rp = &st.relying_party;
    let (handle, credential_id) = rp.identify(&req.credential)?;
    let refused = || {
        st.metrics.login("failure");
        passkey_refused()
    };
    let Some(mut stored) = st
        .store
        .passkey_by_credential(&credential_id)
        .await?
        .filter(|p| p.user_handle == handle)
    else {
        return Err(refused());
    };
    let Ok(result) = rp.finish_sign_in(&req.credential, state, &stored.credential) else {
        return Err(refused());
    };
    let now = st.clock.now();
    stored.credential.update_credential(&result);
    st.store
        .passkey_used(stored.entry.id, &stored.credential, now)
        .await?;
    let Some(account) = st.store.account(stored.account_id).await? else {
        return Err(refused());
    };
    if let Some(until) = account.access_until.filter(|until| *until <= now) {
        return Err(access_ended(until));
    }
    signed_in_with_passkey(&st, &headers, account, stored.entry.id, now).await
}

/// `POST /api/me/passkey-check/options`: starts checking this session with one of the
/// caller's passkeys; 409 if they have none.
pub async fn check_options(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Started>, Error> {
    let passkeys: Vec<_> = st
        .store
        .passkeys(caller.account.id)
        .await?
        .into_iter()
        .map(|p| p.credential)
        .collect();
    if passkeys.is_empty() {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "you have no passkey yet; register one",
        )
        .with_code("no_passkey"));
    }
    let (options, ceremony) = st.relying_party.start_check(&passkeys)?;
    begin(
        &st,
        &ceremony,
        options_json(options)?,
        Some(&caller.token_hash),
    )
    .await
}

/// `POST /api/me/passkey-check {"ceremony", "credential"}`: marks this session as checked
/// with the passkey that answered.
pub async fn check(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Answer>,
) -> Result<StatusCode, Error> {
    let Ceremony::Check(state) = take(
        &st,
        &req.ceremony,
        CeremonyKind::Check,
        Some(&caller.token_hash),
    )
    .await?
    else {
        return Err(Error::internal("a check's ceremony is of another kind"));
    };
    let result = st.relying_party.finish_check(&req.credential, &state)?;
    let now = st.clock.now();
    let used = credential_key(result.cred_id());
    let Some(mut stored) = st
        .store
        .passkeys(caller.account.id)
        .await?
        .into_iter()
        .find(|p| credential_key(p.credential.cred_id()) == used)
    else {
        return Err(passkey_refused());
    };
    stored.credential.update_credential(&result);
    st.store
        .passkey_used(stored.entry.id, &stored.credential, now)
        .await?;
    st.store
        .check_session(&caller.token_hash, stored.entry.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
