//! The alert-address endpoints. The customer lists, adds and removes their addresses
//! (`/api/alert-addresses`, session required, scoped to the caller); so does a household
//! member given `alerts` on a camera, in the household's limit (each sees their own). A new address receives a
//! confirmation link (`/confirm/{token}`, single use, 24 h) and every alert carries a one-click
//! unsubscribe link (`/unsubscribe/{token}`, RFC 8058). Those two are opened by whoever holds
//! the mail, without an account: the token in the path is their authority, and it names one
//! address only. Both answer `GET` with a page whose button `POST`s, so a mail scanner that
//! follows links changes nothing.

use super::AppState;
use super::extract::{ApiJson, CustomerCaller, HouseholdCaller, IdPath};
use crate::auth::{Token, hash_token};
use crate::error::Error;
use crate::mail::compose;
use crate::store::{AlertAddress, NoticesWanted};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use eyeward::household::Right;
use eyeward::{CustomerId, Email, UnixMillis};
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

/// The account whose address book the caller keeps: their own (a member's is theirs, not the
/// holder's).
fn book_of(c: &HouseholdCaller) -> CustomerId {
    CustomerId(c.caller.account.id)
}

/// `GET /api/alert-addresses`: the caller's addresses, oldest first.
pub async fn list(
    State(st): State<AppState>,
    c: HouseholdCaller,
) -> Result<Json<Vec<Value>>, Error> {
    let list = st.store.alert_addresses(book_of(&c)).await?;
    Ok(Json(list.iter().map(to_json).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAddress {
    email: String,
}

/// `POST /api/alert-addresses {"email"}`: adds an address, unconfirmed, and mails it its
/// confirmation link. 409 for one the caller has, or a sixth in the household; 403 for a
/// member given `alerts` on no camera.
pub async fn add(
    State(st): State<AppState>,
    c: HouseholdCaller,
    ApiJson(new): ApiJson<NewAddress>,
) -> Result<Response, Error> {
    c.given_on_some_camera(Right::Alerts, st.clock.now())?;
    let email = Email::parse(&new.email)
        .map_err(|e| Error::bad_request(e.to_string()).with_code("invalid_email"))?;
    let confirm = Token::generate("ewc_");
    let audit = c.caller.audit(st.clock.now());
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
            book_of(&c),
            &email,
            &confirm.hash,
            expires,
            &message_id,
            |_| {
                compose::confirmation(&compose::Confirmation {
                    from: mailer.from(),
                    to: email.as_str(),
                    message_id: &message_id,
                    date: st.clock.now(),
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
    c: HouseholdCaller,
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
    c: HouseholdCaller,
    ApiJson(which): ApiJson<Which>,
) -> Result<StatusCode, Error> {
    remove_address(&st, c, which.id).await
}

async fn remove_address(st: &AppState, c: HouseholdCaller, id: i64) -> Result<StatusCode, Error> {
    if st
        .store
        .remove_alert_address(book_of(&c), id, &c.caller.audit(st.clock.now()))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("alert address"))
    }
}

/// Words in both languages the service speaks: a mailed link's page is read before anyone
/// knows the reader's.
struct Both<'a> {
    ja: &'a str,
    en: &'a str,
}

/// A small page for a mailed link: a message, and maybe a button that posts to the link.
/// Styled by the viewer's own stylesheet: the pages' policy allows no inline style.
fn page(title: Both<'_>, message: Both<'_>, button: Option<Both<'_>>) -> Html<String> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let both = |b: &Both<'_>, sep: &str| {
        format!(
            "<span lang=\"ja\">{}</span>{sep}<span lang=\"en\">{}</span>",
            esc(b.ja),
            esc(b.en)
        )
    };
    let form = button.map_or(String::new(), |b| {
        format!(
            "<form method=\"post\"><button type=\"submit\">{}</button></form>",
            both(&b, " / ")
        )
    });
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <link rel=\"icon\" href=\"/icon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/style.css\">\
         <title>{title} / {title_en}</title></head><body>\
         <header class=\"topbar\"><a class=\"brand\" href=\"/\">\
         <img src=\"/icon.svg\" alt=\"\" width=\"28\" height=\"28\"><span>eyeward</span></a></header>\
         <main><section class=\"card narrow mail-link\"><h1>{h1}</h1>\
         <p lang=\"ja\">{m_ja}</p><p lang=\"en\">{m_en}</p>{form}</section></main>\
         </body></html>",
        title = esc(title.ja),
        title_en = esc(title.en),
        h1 = both(&title, "<br>"),
        m_ja = esc(message.ja),
        m_en = esc(message.en),
    ))
}

/// `GET /confirm/{token}`: asks to confirm (a scanner following the link confirms nothing).
pub async fn confirm_page(Path(_token): Path<String>) -> Html<String> {
    page(
        Both {
            ja: "通知先の確認",
            en: "Confirm your alert address",
        },
        Both {
            ja: "ボタンを押すと、このアドレスに動体検知の通知が届くようになります。",
            en: "Press the button to receive eyeward's motion alerts at this address.",
        },
        Some(Both {
            ja: "確認する",
            en: "Confirm",
        }),
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
        .confirm_alert_address(&hash_token(&token), st.clock.now())
        .await?;
    match confirmed {
        Some(address) => Ok(page(
            Both {
                ja: "確認しました",
                en: "Address confirmed",
            },
            Both {
                ja: &format!("{} に動体検知の通知が届くようになりました。", address.email),
                en: &format!("{} now receives motion alerts.", address.email),
            },
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
            Both {
                ja: "リンクが無効です",
                en: "Link not valid",
            },
            Both {
                ja: "このリンクは使用済みか、期限切れか、存在しません。",
                en: "This link was used already, has expired, or never existed.",
            },
            None,
        ),
    )
        .into_response()
}

/// `GET /unsubscribe/{token}`: asks to stop (a scanner following the link removes nothing).
pub async fn unsubscribe_page(Path(_token): Path<String>) -> Html<String> {
    page(
        Both {
            ja: "通知の停止",
            en: "Stop alerts",
        },
        Both {
            ja: "ボタンを押すと、このアドレスへの動体検知の通知を停止します。",
            en: "Press the button to stop eyeward's motion alerts to this address.",
        },
        Some(Both {
            ja: "停止する",
            en: "Stop alerts",
        }),
    )
}

/// `POST /unsubscribe/{token}` (one click, RFC 8058: the body is
/// `List-Unsubscribe=One-Click`, and is not needed): removes the one address the mail carrying
/// the token was sent to. 404 for an unknown or expired token.
pub async fn unsubscribe(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    match st
        .store
        .unsubscribe(&hash_token(&token), st.clock.now())
        .await?
    {
        Some(address) => Ok(page(
            Both {
                ja: "通知を停止しました",
                en: "Alerts stopped",
            },
            Both {
                ja: &format!("{} への動体検知の通知を停止しました。", address.email),
                en: &format!("{} no longer receives motion alerts.", address.email),
            },
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
    /// Operations on the account: logins from a new browser, alert addresses changed,
    /// cameras renamed...
    operations: bool,
    /// Pan-tilt moves; kept as they are when left out (clients older than the switch).
    ptz: Option<bool>,
}

/// `GET /api/mail-settings`: `{"offline", "operations", "ptz"}`.
pub async fn notices(
    State(st): State<AppState>,
    c: CustomerCaller,
) -> Result<Json<NoticesWanted>, Error> {
    Ok(Json(st.store.notices_wanted(c.id).await?))
}

/// `PUT /api/mail-settings {"offline", "operations", "ptz"?}`: switches them (in the
/// history).
pub async fn set_notices(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(n): ApiJson<Notices>,
) -> Result<Json<NoticesWanted>, Error> {
    let ptz = match n.ptz {
        Some(ptz) => ptz,
        None => st.store.notices_wanted(c.id).await?.ptz,
    };
    let wanted = NoticesWanted {
        offline: n.offline,
        operations: n.operations,
        ptz,
    };
    st.store
        .set_notices_wanted(c.id, wanted, &c.caller.audit(st.clock.now()))
        .await?;
    Ok(Json(wanted))
}
