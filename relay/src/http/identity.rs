//! The identity-check password over HTTP: the household's holder sets it from their account
//! page (`/api/me/identity-password`, behind their login password), and an operator on a call
//! checks what the caller says (`/api/ops/customers/{id}/identity-check`). The operator learns
//! match or no match and nothing else; checks are counted per customer
//! ([`eyeward::identity::admit`]), and every one, with its result and operator, goes to the
//! customer's history. The word itself is never answered, logged or kept but as its hash.

use super::AppState;
use super::api::{Checked, check_password, password_turn};
use super::extract::{ApiJson, ClientAddr, CustomerCaller, IdPath, OperatorCaller};
use crate::auth::{hash_identity_password, verify_password};
use crate::error::{Error, ErrorKind};
use crate::store::IdentityCheckTurn;
use axum::Json;
use axum::extract::State;
use eyeward::identity::{IdentityPassword, spoken_form};
use eyeward::{CustomerId, Password};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The most a typed word may be before it is looked at (it is folded, then hashed).
const MAX_WORD_BYTES: usize = 1024;

/// Whether the holder has an identity-check password, and the number they give on a call.
#[derive(Serialize)]
pub struct IdentityPasswordState {
    set: bool,
    /// When it was last set (RFC 3339).
    set_at: Option<String>,
    /// The customer's number, which the guard center asks for with the word.
    customer_number: i64,
}

async fn state_of(st: &AppState, customer: CustomerId) -> Result<IdentityPasswordState, Error> {
    let set_at = st.store.identity_password_set_at(customer).await?;
    Ok(IdentityPasswordState {
        set: set_at.is_some(),
        set_at: set_at.map(|t| t.to_rfc3339()),
        customer_number: customer.0,
    })
}

/// `GET /api/me/identity-password`: whether the holder has one (never what it is).
pub async fn get(
    State(st): State<AppState>,
    c: CustomerCaller,
) -> Result<Json<IdentityPasswordState>, Error> {
    Ok(Json(state_of(&st, c.id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetIdentityPassword {
    /// The holder's login password, confirming that it is them at this browser.
    password: String,
    identity_password: String,
}

/// `PUT /api/me/identity-password` `{"password": "<login password>", "identity_password":
/// "…"}`: sets or changes it. A wrong login password is 403 `wrong_password`, counted as a
/// failed login.
pub async fn set(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    c: CustomerCaller,
    ApiJson(req): ApiJson<SetIdentityPassword>,
) -> Result<Json<IdentityPasswordState>, Error> {
    let now = st.clock.now();
    if req.password.len() > Password::MAX_BYTES || req.identity_password.len() > MAX_WORD_BYTES {
        return Err(Error::bad_request("too long"));
    }
    let word = IdentityPassword::new(&req.identity_password)?;
    let account = &c.caller.account;
    let hash = st
        .store
        .account_for_login(&account.email)
        .await?
        .map(|a| a.password_hash);
    let email = account.email.as_str();
    match check_password(&st, email, addr, None, hash, req.password, now).await? {
        Checked::Right => {}
        Checked::Wrong => {
            return Err(Error::forbidden("the login password is wrong").with_code("wrong_password"));
        }
        Checked::Throttled(wait) => return Err(Error::too_many_requests(wait)),
        Checked::Busy(e) => return Err(e),
    }
    let hash = {
        let _turn = password_turn(&st).await?;
        hash_identity_password(word).await?
    };
    let audit = c.caller.audit(now);
    st.store
        .set_identity_password(c.id, &hash, &audit, "identity.password_set")
        .await?;
    Ok(Json(state_of(&st, c.id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCheck {
    /// What the caller says, as the operator typed it.
    identity_password: String,
}

/// What a check came to: the one thing the operator is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum CheckResult {
    Match,
    NoMatch,
    /// The customer has set none: there is nothing to compare with.
    NotSet,
}

/// `POST /api/ops/customers/{id}/identity-check` `{"identity_password": "…"}`: `{"result":
/// "match" | "no_match" | "not_set"}`; past the hour's checks 429 `identity_checks_used_up`
/// with `Retry-After`; 404 for anyone not a customer of the operator's center.
pub async fn check(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<IdentityCheck>,
) -> Result<Json<serde_json::Value>, Error> {
    let now = st.clock.now();
    if req.identity_password.len() > MAX_WORD_BYTES {
        return Err(Error::bad_request("too long"));
    }
    let customer = CustomerId(id);
    // The hasher's turn first: a check counted is always answered.
    let hasher = password_turn(&st).await?;
    let turn = st
        .store
        .begin_identity_check(op.center, customer, now)
        .await?
        .ok_or_else(|| Error::not_found("customer"))?;
    let audit = op.caller.audit(now);
    let result = match turn {
        IdentityCheckTurn::Exhausted { next_at } => {
            st.store
                .record(
                    &audit,
                    Some(customer),
                    "identity.checked",
                    json!({ "result": "used_up" }),
                )
                .await?;
            let wait = Duration::from_millis(next_at.0.saturating_sub(now.0).max(0) as u64);
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "this customer's identity was checked too often this hour; call back after {}",
                    next_at.to_rfc3339()
                ),
            )
            .with_code("identity_checks_used_up")
            .retry_after(wait));
        }
        IdentityCheckTurn::NotSet => CheckResult::NotSet,
        IdentityCheckTurn::Counted { hash } => {
            let said = spoken_form(&req.identity_password);
            let matched = tokio::task::spawn_blocking(move || {
                let matched = verify_password(&said, Some(&hash));
                drop(hasher);
                matched
            })
            .await
            .map_err(|e| Error::internal("identity check").with_source(e))?;
            if matched {
                CheckResult::Match
            } else {
                CheckResult::NoMatch
            }
        }
    };
    st.store
        .record(
            &audit,
            Some(customer),
            "identity.checked",
            json!({ "result": result }),
        )
        .await?;
    Ok(Json(json!({ "result": result })))
}
