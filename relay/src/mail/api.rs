//! The alert-address endpoints. The customer lists, adds and removes their addresses
//! (`/api/alert-addresses`, session required, scoped to the caller). A new address receives a
//! confirmation link (`/confirm/{token}`, single use, 24 h) and every alert carries a one-click
//! unsubscribe link (`/unsubscribe/{token}`, RFC 8058). Those two are opened by whoever holds
//! the mail, without an account: the token in the path is their authority, and it names one
//! address only. Both answer `GET` with a page whose button `POST`s, so a mail scanner that
//! follows links changes nothing.

use super::compose;
use crate::auth::{Token, hash_token};
use crate::error::Error;
use crate::http::AppState;
use crate::http::extract::{ApiJson, CustomerCaller, IdPath};
use crate::store::AlertAddress;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use eyeward::{Email, UnixMillis};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a confirmation link works.
const CONFIRM_FOR: Duration = Duration::from_secs(24 * 3600);

fn to_json(a: &AlertAddress) -> Value {
    json!({
        "id": a.id,
        "email": a.email,
        "confirmed": a.confirmed_at.is_some(),
        "confirmed_at": a.confirmed_at.map(|t| UnixMillis(t).to_rfc3339()),
        "confirm_expires": a.confirm_expires.map(|t| UnixMillis(t).to_rfc3339()),
        "created_at": UnixMillis(a.created_at).to_rfc3339(),
    })
}

/// `GET /api/alert-addresses`: the caller's addresses, oldest first.
pub async fn list(
    State(st): State<AppState>,
    c: CustomerCaller,
) -> Result<Json<Vec<Value>>, Error> {
    let list = st.store.alert_addresses(c.id).await?;
    Ok(Json(list.iter().map(to_json).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAddress {
    email: String,
}

/// `POST /api/alert-addresses {"email"}`: adds an address, unconfirmed, and mails it its
/// confirmation link. 409 for one the caller has, or a sixth.
pub async fn add(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(new): ApiJson<NewAddress>,
) -> Result<Response, Error> {
    let email = Email::parse(&new.email).map_err(|e| Error::bad_request(e.to_string()))?;
    let confirm = Token::generate("ewc_");
    let unsubscribe = Token::generate("ewu_");
    let audit = c.caller.audit();
    let expires = audit.at.plus(CONFIRM_FOR);
    let mailer = &st.mailer;
    let message_id = format!(
        "<confirm.{:016x}@{}>",
        rand::random::<u64>(),
        mailer.domain()
    );
    let confirm_url = mailer.link(&format!("/confirm/{}", confirm.secret()));
    let added = st
        .store
        .add_alert_address(
            c.id,
            &email,
            &confirm.hash,
            expires,
            unsubscribe.secret(),
            &message_id,
            |_| {
                compose::confirmation(&compose::Confirmation {
                    from: mailer.from(),
                    to: email.as_str(),
                    message_id: &message_id,
                    lang: c.caller.account.lang,
                    by: &c.caller.account.name,
                    confirm_url: &confirm_url,
                    expires,
                })
            },
            &audit,
        )
        .await?;
    mailer.wake.notify_one();
    tracing::info!(
        address = added.id,
        "alert address added; confirmation queued"
    );
    Ok((StatusCode::CREATED, Json(to_json(&added))).into_response())
}

/// `DELETE /api/alert-addresses/{id}`: removes one of the caller's addresses at once (its
/// queued mail is cancelled). 404 for one that is not theirs.
pub async fn remove(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    remove_address(&st, c, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Which {
    id: i64,
}

/// `DELETE /api/alert-addresses {"id"}`: the same, with the id in the body.
pub async fn remove_by_body(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(which): ApiJson<Which>,
) -> Result<StatusCode, Error> {
    remove_address(&st, c, which.id).await
}

async fn remove_address(st: &AppState, c: CustomerCaller, id: i64) -> Result<StatusCode, Error> {
    if st
        .store
        .remove_alert_address(c.id, id, &c.caller.audit())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("alert address"))
    }
}

/// A small page for a mailed link: a message, and maybe a button that posts to the link.
fn page(title: &str, message: &str, button: Option<&str>) -> Html<String> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let form = button.map_or(String::new(), |b| {
        format!(
            "<form method=\"post\"><button type=\"submit\">{}</button></form>",
            esc(b)
        )
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em\">\
         <h1>{t}</h1><p>{m}</p>{form}</body></html>",
        t = esc(title),
        m = esc(message)
    ))
}

/// `GET /confirm/{token}`: asks to confirm (a scanner following the link confirms nothing).
pub async fn confirm_page(Path(_token): Path<String>) -> Html<String> {
    page(
        "Confirm your alert address / 通知先の確認",
        "Press the button to receive eyeward's motion alerts at this address. \
         ボタンを押すと、このアドレスに動体検知の通知が届くようになります。",
        Some("Confirm / 確認する"),
    )
}

/// `POST /confirm/{token}`: confirms the one address the token was made for, once, within
/// 24 hours. 404 for an unknown, used or expired token.
pub async fn confirm(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    let confirmed = st
        .store
        .confirm_alert_address(&hash_token(&token), UnixMillis::now())
        .await?;
    match confirmed {
        Some(address) => Ok(page(
            "Address confirmed / 確認しました",
            &format!(
                "{} now receives motion alerts. 通知の受け取りを開始しました。",
                address.email
            ),
            None,
        )
        .into_response()),
        None => Ok(invalid_link()),
    }
}

/// The answer to a used, expired or made-up link.
fn invalid_link() -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            "Link not valid / リンクが無効です",
            "This link was used already, has expired, or never existed. \
             このリンクは使用済みか、期限切れか、存在しません。",
            None,
        ),
    )
        .into_response()
}

/// `GET /unsubscribe/{token}`: asks to stop (a scanner following the link removes nothing).
pub async fn unsubscribe_page(Path(_token): Path<String>) -> Html<String> {
    page(
        "Stop alerts / 通知の停止",
        "Press the button to stop eyeward's motion alerts to this address. \
         ボタンを押すと、このアドレスへの動体検知の通知を停止します。",
        Some("Stop alerts / 停止する"),
    )
}

/// `POST /unsubscribe/{token}` (one click, RFC 8058: the body is
/// `List-Unsubscribe=One-Click`, and is not needed): removes the one address whose mails carry
/// the token. 404 for an unknown token.
pub async fn unsubscribe(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    match st.store.unsubscribe(&token, UnixMillis::now()).await? {
        Some(address) => Ok(page(
            "Alerts stopped / 通知を停止しました",
            &format!(
                "{} no longer receives motion alerts. 通知を停止しました。",
                address.email
            ),
            None,
        )
        .into_response()),
        None => Ok(invalid_link()),
    }
}

/// Which of the other mails the customer receives (alert mail follows the addresses alone).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notices {
    /// A camera offline for more than `mail.offline_after`, and back.
    offline: bool,
    /// Operations on the account: logins, alert addresses changed, cameras renamed...
    operations: bool,
}

/// `GET /api/mail-settings`: `{"offline", "operations"}`.
pub async fn notices(State(st): State<AppState>, c: CustomerCaller) -> Result<Json<Value>, Error> {
    let (offline, operations) = st.store.notices_wanted(c.id).await?;
    Ok(Json(json!({"offline": offline, "operations": operations})))
}

/// `PUT /api/mail-settings {"offline", "operations"}`: switches them (in the history).
pub async fn set_notices(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(n): ApiJson<Notices>,
) -> Result<Json<Value>, Error> {
    st.store
        .set_notices_wanted(c.id, n.offline, n.operations, &c.caller.audit())
        .await?;
    Ok(Json(
        json!({"offline": n.offline, "operations": n.operations}),
    ))
}
