//! The mails themselves, in the customer's language: plain code that turns what a mail is
//! about into an RFC 5322 message (lettre's builder does the MIME and header encoding).
//! Everything a person typed (camera names) is cleaned of control characters before it goes
//! into a header and escaped before it goes into HTML, so it can neither add a header nor
//! change the markup.

use crate::error::Error;
use eyeward::{CameraId, Language, UnixMillis};
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use std::time::{Duration, SystemTime};

/// A header lettre has no type for, with its value as given.
macro_rules! raw_header {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        struct $ty(String);

        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

raw_header!(ListUnsubscribe, "List-Unsubscribe");
raw_header!(ListUnsubscribePost, "List-Unsubscribe-Post");
raw_header!(AutoSubmitted, "Auto-Submitted");

/// Text that came from a person, fit for a header: no control characters (CR and LF above
/// all), at most 200 characters.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Text escaped for HTML.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A time as the customers' clocks show it: Japan (UTC+9, no daylight saving).
fn local_time(at: UnixMillis, lang: Language) -> String {
    let jst = time::UtcOffset::from_hms(9, 0, 0).expect("a valid offset");
    let t = time::OffsetDateTime::from_unix_timestamp(at.0.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(jst);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    match lang {
        Language::Ja => format!("{y}年{mo}月{d}日 {h:02}:{mi:02}:{s:02}"),
        Language::En => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} JST"),
    }
}

fn mailbox(s: &str) -> Result<Mailbox, Error> {
    s.parse()
        .map_err(|e| Error::bad_request(format!("{s:?} is not a mail address: {e}")))
}

/// What every mail has: from, to, a stable Message-ID, the date, and a mark that a machine
/// sent it (so auto-replies stay away).
fn envelope(
    from: &str,
    to: &str,
    message_id: &str,
    subject: &str,
    date: UnixMillis,
) -> Result<lettre::message::MessageBuilder, Error> {
    Ok(Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(to)?)
        .message_id(Some(message_id.to_owned()))
        .date(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(date.0).unwrap_or(0)))
        .subject(header_text(subject))
        .header(AutoSubmitted("auto-generated".into())))
}

fn built(m: Result<Message, lettre::error::Error>) -> Result<Vec<u8>, Error> {
    m.map(|m| m.formatted())
        .map_err(|e| Error::internal("building a mail").with_source(e))
}

/// What an alert mail says.
pub struct Alert<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message_id: &'a str,
    /// The mail's `Date:`.
    pub date: UnixMillis,
    pub lang: Language,
    pub camera: &'a str,
    pub captured_at: UnixMillis,
    /// Events of the camera since the last alert mail that had none of their own.
    pub more: i64,
    /// The snapshot, if the camera could keep it.
    pub jpeg: Option<&'a [u8]>,
    /// Links: the live view, the event, its clip (when the camera records one), and
    /// one-click unsubscribe.
    pub live_url: &'a str,
    pub event_url: &'a str,
    pub clip_url: Option<&'a str>,
    pub unsubscribe_url: &'a str,
}

/// The alert mail: text and HTML, the snapshot inline and attached, a link to the event's
/// clip (never the clip itself: it comes later, and is too large for mail), a one-click
/// unsubscribe (RFC 8058) that removes this address alone.
pub fn alert(a: &Alert<'_>) -> Result<Vec<u8>, Error> {
    let when = local_time(a.captured_at, a.lang);
    let camera = header_text(a.camera);
    let (subject, seen, more, live, event, clip, stop) = match a.lang {
        Language::Ja => (
            format!("【動体検知】{camera} {when}"),
            format!("カメラ「{camera}」が {when} に動きを検知しました。"),
            (a.more > 0).then(|| format!("前回の通知以降、ほかに {} 件の検知があります。", a.more)),
            "ライブ映像を見る",
            "この記録を見る",
            "動画クリップを見る",
            "このアドレスへの通知を停止する",
        ),
        Language::En => (
            format!("Motion: {camera}, {when}"),
            format!("The camera \"{camera}\" saw motion at {when}."),
            (a.more > 0).then(|| format!("And {} more events since the last alert.", a.more)),
            "Watch live",
            "See this event",
            "Watch the video clip",
            "Stop alerts to this address",
        ),
    };
    let more = more.unwrap_or_default();
    let clip_text = a
        .clip_url
        .map_or(String::new(), |url| format!("{clip}: {url}\n"));
    let text = format!(
        "{seen}\n{more}\n\n{live}: {}\n{event}: {}\n{clip_text}\n{stop}: {}\n",
        a.live_url, a.event_url, a.unsubscribe_url
    );
    let clip_html = a.clip_url.map_or(String::new(), |url| {
        format!(" · <a href=\"{}\">{}</a>", html(url), html(clip))
    });
    let picture = if a.jpeg.is_some() {
        "<p><img src=\"cid:snapshot\" alt=\"\" style=\"max-width:100%\"></p>"
    } else {
        ""
    };
    let body_html = format!(
        "<!doctype html><html><body><p>{}</p><p>{}</p>{picture}\
         <p><a href=\"{}\">{}</a> · <a href=\"{}\">{}</a>{clip_html}</p>\
         <p style=\"font-size:small\"><a href=\"{}\">{}</a></p></body></html>",
        html(&seen),
        html(&more),
        html(a.live_url),
        html(live),
        html(a.event_url),
        html(event),
        html(a.unsubscribe_url),
        html(stop)
    );
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(body_html));
    let jpeg_type = ContentType::parse("image/jpeg").expect("a valid content type");
    let body = match a.jpeg {
        Some(jpeg) => {
            let file = format!(
                "snapshot-{}.jpg",
                local_time(a.captured_at, Language::En)
                    .replace([' ', ':'], "-")
                    .trim_end_matches("-JST")
            );
            MultiPart::mixed()
                .multipart(
                    MultiPart::related().multipart(alternative).singlepart(
                        Attachment::new_inline("snapshot".into())
                            .body(jpeg.to_vec(), jpeg_type.clone()),
                    ),
                )
                .singlepart(Attachment::new(file).body(jpeg.to_vec(), jpeg_type))
        }
        None => alternative,
    };
    built(
        envelope(a.from, a.to, a.message_id, &subject, a.date)?
            .header(ListUnsubscribe(format!("<{}>", a.unsubscribe_url)))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()))
            .multipart(body),
    )
}

/// What a confirmation mail says.
pub struct Confirmation<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message_id: &'a str,
    /// The mail's `Date:`.
    pub date: UnixMillis,
    pub lang: Language,
    /// Who added the address (the customer's name).
    pub by: &'a str,
    pub confirm_url: &'a str,
    pub expires: UnixMillis,
}

/// The mail that asks a new alert address to confirm itself.
pub fn confirmation(c: &Confirmation<'_>) -> Result<Vec<u8>, Error> {
    let until = local_time(c.expires, c.lang);
    let by = header_text(c.by);
    let (subject, text) = match c.lang {
        Language::Ja => (
            "【eyeward】通知先メールアドレスの確認".to_owned(),
            format!(
                "{by} 様がこのアドレスを eyeward の動体検知通知の宛先に登録しました。\n\
                 通知を受け取るには、{until} までに次のリンクを開いて確認してください（一度だけ有効です）。\n\n{}\n\n\
                 お心当たりがなければ、このメールは破棄してください。通知は届きません。\n",
                c.confirm_url
            ),
        ),
        Language::En => (
            "eyeward: confirm your alert address".to_owned(),
            format!(
                "{by} added this address to receive eyeward's motion alerts.\n\
                 To receive them, open this link before {until} (it works once):\n\n{}\n\n\
                 If this was not expected, ignore this mail: no alerts will be sent.\n",
                c.confirm_url
            ),
        ),
    };
    built(
        envelope(c.from, c.to, c.message_id, &subject, c.date)?.singlepart(SinglePart::plain(text)),
    )
}

/// An invitation into a household.
pub struct Invitation<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message_id: &'a str,
    /// The mail's `Date:`.
    pub date: UnixMillis,
    /// The invited person's language.
    pub lang: Language,
    /// Who invites (the holder's name) and whom (the name they gave).
    pub by: &'a str,
    pub name: &'a str,
    pub accept_url: &'a str,
    pub expires: UnixMillis,
    /// A guest's rights end here.
    pub until: Option<UnixMillis>,
}

/// The mail that invites someone into a household, with the single-use link that sets their
/// password.
pub fn invitation(i: &Invitation<'_>) -> Result<Vec<u8>, Error> {
    let expires = local_time(i.expires, i.lang);
    let (by, name) = (header_text(i.by), header_text(i.name));
    let (subject, text) = match i.lang {
        Language::Ja => (
            format!("【eyeward】{by} 様からの招待"),
            format!(
                "{name} 様\n\n{by} 様が、ご自宅のカメラを eyeward で一緒に見守るためにあなたを招待しました。\n\
                 {expires} までに次のリンクを開き、パスワードを決めてください（一度だけ有効です）。\n\n{}\n\n{}\
                 お心当たりがなければ、このメールは破棄してください。\n",
                i.accept_url,
                i.until.map_or(String::new(), |u| format!(
                    "ゲストとしての利用は {} までです。\n\n",
                    local_time(u, i.lang)
                )),
            ),
        ),
        Language::En => (
            format!("eyeward: {by} invites you to their household"),
            format!(
                "Hello {name},\n\n{by} invites you to watch over their home with eyeward.\n\
                 Open this link before {expires} and choose your password (it works once):\n\n{}\n\n{}\
                 If this was not expected, ignore this mail.\n",
                i.accept_url,
                i.until.map_or(String::new(), |u| format!(
                    "As a guest, your access lasts until {}.\n\n",
                    local_time(u, i.lang)
                )),
            ),
        ),
    };
    built(
        envelope(i.from, i.to, i.message_id, &subject, i.date)?.singlepart(SinglePart::plain(text)),
    )
}

/// What a push says: the camera, the time, and where a tap leads.
pub struct Push<'a> {
    pub lang: Language,
    pub camera: &'a str,
    pub camera_id: CameraId,
    pub captured_at: UnixMillis,
    /// The event's page: where a tap on the notification opens.
    pub event_url: &'a str,
    /// The snapshot's link of its own, for platforms that show pictures.
    pub picture_url: Option<&'a str>,
}

/// A push's payload, the JSON the page's service worker shows: `title`, `body`, `url`,
/// `image` (or null) and `tag` (one notification per camera, the newest replacing the last).
pub fn push(p: &Push<'_>) -> Result<Vec<u8>, Error> {
    let title = match p.lang {
        Language::Ja => format!("動きを検知：{}", p.camera),
        Language::En => format!("Motion: {}", p.camera),
    };
    serde_json::to_vec(&serde_json::json!({
        "title": title,
        "body": local_time(p.captured_at, p.lang),
        "url": p.event_url,
        "image": p.picture_url,
        "tag": format!("eyeward-camera-{}", p.camera_id.0),
    }))
    .map_err(|e| Error::internal("a push's payload").with_source(e))
}

/// What a notice mail says: one entry of the account's history.
pub struct Notice<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message_id: &'a str,
    /// The mail's `Date:`.
    pub date: UnixMillis,
    pub lang: Language,
    /// The history entry's action (`camera.offline`, `login`...).
    pub action: &'a str,
    /// The camera it is about, if any.
    pub camera: Option<&'a str>,
    pub actor: &'a str,
    pub channel: &'a str,
    pub at: UnixMillis,
    pub detail: &'a serde_json::Value,
    /// Where the customer switches these mails, and the one-click unsubscribe.
    pub settings_url: &'a str,
    pub unsubscribe_url: &'a str,
}

/// An operation in words, as the customer's history shows it.
fn operation(action: &str, detail: &serde_json::Value, lang: Language) -> String {
    let field = |k: &str| header_text(detail[k].as_str().unwrap_or_default());
    match (lang, action) {
        (Language::Ja, "login.new_browser") => "新しいブラウザからのログイン".into(),
        (Language::Ja, "password.reset") => "パスワード再設定".into(),
        (Language::Ja, "identity.password_set") => "本人確認用パスワードを設定".into(),
        (Language::Ja, "identity.password_reset") => {
            "当社窓口で本人確認用パスワードを再設定".into()
        }
        (Language::Ja, "identity.checked") => format!(
            "警備センターが本人確認用パスワードを照合：{}",
            match detail["result"].as_str() {
                Some("match") => "一致",
                Some("no_match") => "不一致",
                Some("not_set") => "未設定",
                _ => "照合回数の上限に達したため照合せず",
            }
        ),
        (Language::Ja, "passkey.added") => format!("パスキーを登録：{}", field("name")),
        (Language::Ja, "passkey.removed") => format!("パスキーを削除：{}", field("name")),
        (Language::Ja, "passkeys.reset") => "管理者がパスキーをすべて削除".into(),
        (Language::Ja, "camera.renamed") => format!("カメラ名の変更：{}", field("to")),
        (Language::Ja, "alert_address.added") => format!("通知先を追加：{}", field("email")),
        (Language::Ja, "alert_address.confirmed") => format!("通知先を確認：{}", field("email")),
        (Language::Ja, "alert_address.removed") => format!("通知先を削除：{}", field("email")),
        (Language::Ja, "alert_address.unsubscribed") => {
            format!("通知先の配信停止：{}", field("email"))
        }
        (Language::Ja, "push.subscribed") => {
            format!("通知を受ける端末を追加：{}", field("service"))
        }
        (Language::Ja, "ptz.moved") => format!("カメラの向きを変更：{}", field("camera")),
        (Language::Ja, "home.changed") => "ご住所の変更".into(),
        (Language::Ja, "home.notes_changed") => {
            "警備員のための情報（電話・入り方・鍵）の変更".into()
        }
        (Language::Ja, "arming.changed") => format!(
            "警戒モードを「{}」に切替{}",
            mode_name(detail["mode"].as_str(), lang),
            if field("by") == "schedule" {
                "（スケジュール）"
            } else {
                ""
            }
        ),
        (Language::Ja, "arming.schedule_added") => format!(
            "警戒スケジュールを追加：{} {} に「{}」",
            day_names(&detail["days"], lang),
            field("time"),
            mode_name(detail["mode"].as_str(), lang)
        ),
        (Language::Ja, "arming.schedule_removed") => format!(
            "警戒スケジュールを削除：{} {} に「{}」",
            day_names(&detail["days"], lang),
            field("time"),
            mode_name(detail["mode"].as_str(), lang)
        ),
        (Language::Ja, "camera.alerts_changed") => format!(
            "カメラの通知を変更：{}（外出時 {}・在宅時 {}）",
            field("camera"),
            on_off(&detail["away"], lang),
            on_off(&detail["home"], lang)
        ),
        (Language::Ja, "member.invited") => {
            format!("{}（{}）さんを招待", field("name"), field("email"))
        }
        (Language::Ja, "member.joined") => "ご家族・ゲストとして参加".into(),
        (Language::Ja, "member.rights_changed") => format!("{} さんの権限を変更", field("member")),
        (Language::Ja, "member.removed") => format!("{} さんを削除", field("member")),
        (Language::Ja, "member.invitation_withdrawn") => {
            format!("{} への招待を取り消し", field("email"))
        }
        (Language::En, "member.invited") => format!(
            "Invited {} ({}) to the household",
            field("name"),
            field("email")
        ),
        (Language::En, "member.joined") => "Joined the household".into(),
        (Language::En, "member.rights_changed") => {
            format!("Changed what {} may do", field("member"))
        }
        (Language::En, "member.removed") => {
            format!("Removed {} from the household", field("member"))
        }
        (Language::En, "member.invitation_withdrawn") => {
            format!("Withdrew the invitation to {}", field("email"))
        }
        (Language::En, "login.new_browser") => "Login from a new browser".into(),
        (Language::En, "password.reset") => "Password reset".into(),
        (Language::En, "identity.password_set") => "Identity-check password set".into(),
        (Language::En, "identity.password_reset") => {
            "Identity-check password reset by our desk".into()
        }
        (Language::En, "identity.checked") => format!(
            "The guard center checked your identity-check password: {}",
            match detail["result"].as_str() {
                Some("match") => "it matched",
                Some("no_match") => "it did not match",
                Some("not_set") => "you have none",
                _ => "not checked, too many checks this hour",
            }
        ),
        (Language::En, "passkey.added") => format!("Passkey registered: {}", field("name")),
        (Language::En, "passkey.removed") => format!("Passkey removed: {}", field("name")),
        (Language::En, "passkeys.reset") => "Every passkey removed by the administrator".into(),
        (Language::En, "camera.renamed") => format!("Camera renamed to {}", field("to")),
        (Language::En, "alert_address.added") => format!("Alert address added: {}", field("email")),
        (Language::En, "alert_address.confirmed") => {
            format!("Alert address confirmed: {}", field("email"))
        }
        (Language::En, "alert_address.removed") => {
            format!("Alert address removed: {}", field("email"))
        }
        (Language::En, "alert_address.unsubscribed") => {
            format!("Alert address unsubscribed: {}", field("email"))
        }
        (Language::En, "push.subscribed") => {
            format!("Device added for notifications: {}", field("service"))
        }
        (Language::En, "ptz.moved") => format!("Pan-tilt moved: {}", field("camera")),
        (Language::En, "home.changed") => "Home address changed".into(),
        (Language::En, "home.notes_changed") => {
            "Notes for the guards changed (phone, how to get in, key holder)".into()
        }
        (Language::En, "arming.changed") => format!(
            "Switched to {}{}",
            mode_name(detail["mode"].as_str(), lang),
            if field("by") == "schedule" {
                " (schedule)"
            } else {
                ""
            }
        ),
        (Language::En, "arming.schedule_added") => format!(
            "Schedule added: {} at {} on {}",
            mode_name(detail["mode"].as_str(), lang),
            field("time"),
            day_names(&detail["days"], lang)
        ),
        (Language::En, "arming.schedule_removed") => format!(
            "Schedule removed: {} at {} on {}",
            mode_name(detail["mode"].as_str(), lang),
            field("time"),
            day_names(&detail["days"], lang)
        ),
        (Language::En, "camera.alerts_changed") => format!(
            "Camera alerts changed: {} (away: {}, home: {})",
            field("camera"),
            on_off(&detail["away"], lang),
            on_off(&detail["home"], lang)
        ),
        (_, other) => other.to_owned(),
    }
}

/// An arming mode in words.
fn mode_name(mode: Option<&str>, lang: Language) -> &'static str {
    match (lang, mode) {
        (Language::Ja, Some("away")) => "外出",
        (Language::Ja, Some("home")) => "在宅",
        (Language::Ja, _) => "オフ",
        (Language::En, Some("away")) => "Away",
        (Language::En, Some("home")) => "Home",
        (Language::En, _) => "Off",
    }
}

/// A schedule's days (`["mon", "tue"]`) in words.
fn day_names(days: &serde_json::Value, lang: Language) -> String {
    let names: Vec<&str> = days
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let i = eyeward::arming::DAYS
                .iter()
                .position(|n| Some(*n) == d.as_str())?;
            Some(match lang {
                Language::Ja => ["月", "火", "水", "木", "金", "土", "日"][i],
                Language::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][i],
            })
        })
        .collect();
    match lang {
        Language::Ja => names.concat(),
        Language::En => names.join(" "),
    }
}

fn on_off(v: &serde_json::Value, lang: Language) -> &'static str {
    match (lang, v.as_bool().unwrap_or(false)) {
        (Language::Ja, true) => "通知する",
        (Language::Ja, false) => "通知しない",
        (Language::En, true) => "on",
        (Language::En, false) => "off",
    }
}

fn channel(channel: &str, lang: Language) -> &'static str {
    match (lang, channel) {
        (Language::Ja, "web") => "Web",
        (Language::Ja, "mail-link") => "メール内のリンク",
        (Language::Ja, "admin-cli") => "サービス管理者",
        (Language::Ja, "agent") => "カメラ",
        (Language::Ja, _) => "システム",
        (Language::En, "web") => "the web",
        (Language::En, "mail-link") => "a link in a mail",
        (Language::En, "admin-cli") => "the service's administrator",
        (Language::En, "agent") => "the camera",
        (Language::En, _) => "the system",
    }
}

/// The subject and text of a mail about a step of a dispatch request.
fn dispatch_step(
    action: &str,
    detail: &serde_json::Value,
    lang: Language,
    when: &str,
) -> (String, String) {
    let camera = header_text(detail["camera"].as_str().unwrap_or_default());
    let guard = header_text(detail["guard"].as_str().unwrap_or_default());
    let id = detail["request_id"].as_i64().unwrap_or_default();
    let fee = detail["fee_due_yen"]
        .as_i64()
        .or(detail["fee_yen"].as_i64())
        .unwrap_or_default();
    let yen = |n: i64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let (ja, en) = match action {
        "dispatch.requested" => (
            format!(
                "警備員の派遣を依頼しました（カメラ「{camera}」）。警備センターが受け付けるまでは無料で取り消せます。受付後の取り消しにも料金 {} 円（税込）がかかります。",
                yen(fee)
            ),
            format!(
                "You asked for a guard (camera \"{camera}\"). Cancelling is free until the guard center accepts; after that the fee of {} yen (tax included) is due even if you cancel.",
                yen(fee)
            ),
        ),
        "dispatch.accepted" => (
            format!(
                "警備センターが派遣依頼を受け付けました。料金 {} 円（税込）が発生しました。",
                yen(fee)
            ),
            format!(
                "The guard center accepted your request. The fee of {} yen (tax included) is now due.",
                yen(fee)
            ),
        ),
        // The guard's name as the center keeps it, which may hold a title of its own: never
        // "Guard" put before it, and no empty slot when the name is unknown.
        "dispatch.assigned" if guard.is_empty() => (
            "警備員を手配しました。".to_owned(),
            "A guard was sent.".to_owned(),
        ),
        "dispatch.assigned" => (
            format!("警備員（{guard}）を手配しました。"),
            format!("A guard was sent: {guard}."),
        ),
        // The guard said from their phone that they set off.
        "dispatch.en_route" if guard.is_empty() => (
            "警備員が向かっています。".to_owned(),
            "The guard is on the way.".to_owned(),
        ),
        "dispatch.en_route" => (
            format!("警備員（{guard}）が向かっています。"),
            format!("The guard is on the way: {guard}."),
        ),
        "dispatch.arrived" if guard.is_empty() => (
            "警備員が到着しました。".to_owned(),
            "The guard has arrived at your home.".to_owned(),
        ),
        "dispatch.arrived" => (
            format!("警備員（{guard}）が到着しました。"),
            format!("The guard has arrived at your home: {guard}."),
        ),
        // The operator's report, as typed (checked plain text: no control characters but
        // line breaks), in the mail's plain-text body.
        "dispatch.completed" => match detail["report"].as_str() {
            Some(report) => (
                format!("警備員の対応が完了しました。\n\n警備センターからの報告：\n{report}\n"),
                format!("The guard's visit is complete.\n\nThe guard center's report:\n{report}\n"),
            ),
            None => (
                "警備員の対応が完了しました。".to_owned(),
                "The guard's visit is complete.".to_owned(),
            ),
        },
        _ if fee > 0 => (
            format!(
                "派遣依頼を取り消しました。受付後のため、料金 {} 円（税込）がかかります。",
                yen(fee)
            ),
            format!(
                "You cancelled the request. It had been accepted, so the fee of {} yen (tax included) is due.",
                yen(fee)
            ),
        ),
        _ => (
            "派遣依頼を取り消しました。料金はかかりません。".to_owned(),
            "You cancelled the request before it was accepted: no fee is due.".to_owned(),
        ),
    };
    let state = action.trim_start_matches("dispatch.");
    match lang {
        Language::Ja => {
            let word = match state {
                "requested" => "依頼",
                "accepted" => "受付",
                "assigned" => "出動",
                "en_route" => "移動中",
                "arrived" => "到着",
                "completed" => "完了",
                _ => "取消",
            };
            (
                format!("【警備員派遣：{word}】依頼番号 {id}"),
                format!("{ja}\n日時：{when}"),
            )
        }
        Language::En => (
            format!("Guard dispatch {id}: {}", state.replace('_', " ")),
            format!("{en}\nWhen: {when}"),
        ),
    }
}

/// A notice: a camera offline for more than 5 minutes or back, or an operation on the
/// account (who, when, through what).
pub fn notice(n: &Notice<'_>) -> Result<Vec<u8>, Error> {
    let when = local_time(n.at, n.lang);
    let camera = header_text(n.camera.unwrap_or_default());
    let (subject, lead) = match (n.lang, n.action) {
        (Language::Ja, "camera.offline") => (
            format!("【カメラ停止】{camera}"),
            format!("カメラ「{camera}」に {when} から接続できません。電源と回線をご確認ください。"),
        ),
        (Language::Ja, "camera.online") => (
            format!("【カメラ復旧】{camera}"),
            format!("カメラ「{camera}」が {when} に復旧しました。"),
        ),
        (Language::En, "camera.offline") => (
            format!("Camera offline: {camera}"),
            format!(
                "The camera \"{camera}\" has been unreachable since {when}. Please check its power and network."
            ),
        ),
        (Language::En, "camera.online") => (
            format!("Camera back online: {camera}"),
            format!("The camera \"{camera}\" is reachable again since {when}."),
        ),
        (lang, action) if action.starts_with("dispatch.") => {
            dispatch_step(action, n.detail, lang, &when)
        }
        (lang, action) => {
            let what = operation(action, n.detail, lang);
            let by = header_text(n.actor);
            let via = channel(n.channel, lang);
            match lang {
                Language::Ja => (
                    format!("【操作通知】{what}"),
                    format!(
                        "お客様のアカウントで次の操作がありました。\n{what}\n操作者：{by}（{via}）\n日時：{when}\nお心当たりがない場合は、警備会社へご連絡ください。"
                    ),
                ),
                Language::En => (
                    format!("Account activity: {what}"),
                    format!(
                        "This happened on your account:\n{what}\nBy: {by} (through {via})\nWhen: {when}\nIf this was not you, please call your security company."
                    ),
                ),
            }
        }
    };
    let (settings, stop) = match n.lang {
        Language::Ja => ("通知メールの設定", "このアドレスへの通知を停止する"),
        Language::En => (
            "Choose which mails you receive",
            "Stop mail to this address",
        ),
    };
    let text = format!(
        "{lead}\n\n{settings}: {}\n{stop}: {}\n",
        n.settings_url, n.unsubscribe_url
    );
    built(
        envelope(n.from, n.to, n.message_id, &subject, n.date)?
            .header(ListUnsubscribe(format!("<{}>", n.unsubscribe_url)))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()))
            .singlepart(SinglePart::plain(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert_to(camera: &str, jpeg: Option<&[u8]>) -> String {
        alert_with_clip(camera, jpeg, None)
    }

    fn alert_with_clip(camera: &str, jpeg: Option<&[u8]>, clip_url: Option<&str>) -> String {
        let bytes = alert(&Alert {
            from: "eyeward <alerts@example.com>",
            to: "owner@example.jp",
            message_id: "<alert.1.1.0@example.com>",
            date: UnixMillis(1_800_000_000_000),
            lang: Language::En,
            camera,
            captured_at: UnixMillis(1_800_000_000_000),
            more: 7,
            jpeg,
            live_url: "https://relay.example.jp/#camera/1",
            event_url: "https://relay.example.jp/#event/1",
            clip_url,
            unsubscribe_url: "https://relay.example.jp/unsubscribe/tok",
        })
        .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn headers(mail: &str) -> Vec<&str> {
        mail.split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\r\n")
            .collect()
    }

    #[test]
    fn a_camera_name_cannot_add_a_header_or_a_recipient() {
        let mail = alert_to(
            "Front\r\nBcc: x@evil.example\r\n.\r\n",
            Some(b"\xff\xd8jpeg\xff\xd9"),
        );
        let hs = headers(&mail);
        assert!(
            !hs.iter()
                .any(|h| h.to_ascii_lowercase().starts_with("bcc:")),
            "{hs:?}"
        );
        assert!(!hs.iter().any(|h| h.to_ascii_lowercase().starts_with("cc:")));
        let to: Vec<&str> = hs
            .iter()
            .copied()
            .filter(|h| h.starts_with("To:"))
            .collect();
        assert_eq!(to, ["To: owner@example.jp"]);
        // No line of the whole message is a lone dot (that would end the SMTP DATA).
        assert!(!mail.split("\r\n").any(|l| l == "."), "{mail}");
        assert!(hs.iter().any(|h| h.starts_with("Subject:")));
    }

    #[test]
    fn an_alert_has_both_parts_the_picture_twice_and_one_click_unsubscribe() {
        let mail = alert_to("Porch", Some(b"\xff\xd8jpeg\xff\xd9"));
        for needle in [
            "Message-ID: <alert.1.1.0@example.com>",
            "List-Unsubscribe: <https://relay.example.jp/unsubscribe/tok>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Auto-Submitted: auto-generated",
            "Content-Type: text/plain",
            "Content-Type: text/html",
            "Content-ID: <snapshot>",
            "Content-Disposition: attachment",
            "multipart/related",
        ] {
            assert!(mail.contains(needle), "{needle} missing in\n{mail}");
        }
        assert!(mail.contains("Date: "));
    }

    #[test]
    fn an_alert_links_to_the_clip_of_a_camera_that_records_one_and_never_attaches_it() {
        let without = alert_to("Porch", Some(b"\xff\xd8jpeg\xff\xd9"));
        assert!(!without.contains("video clip"), "{without}");
        let mail = alert_with_clip(
            "Porch",
            Some(b"\xff\xd8jpeg\xff\xd9"),
            Some("https://relay.example.jp/#event/1/clip"),
        );
        assert!(
            mail.contains("Watch the video clip: https://relay.example.jp/#event/1/clip"),
            "{mail}"
        );
        // The HTML part (quoted-printable) links it too.
        assert!(
            mail.contains("#event/1/clip\">Watch the video clip</a>"),
            "{mail}"
        );
        assert!(!mail.contains("video/mp4"), "a link, never the clip");
    }

    #[test]
    fn html_is_escaped_and_times_are_japans() {
        assert_eq!(html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        // 1_800_000_000 s is 2027-01-15 08:00 UTC: 17:00 in Japan.
        assert_eq!(
            local_time(UnixMillis(1_800_000_000_000), Language::En),
            "2027-01-15 17:00:00 JST"
        );
        assert_eq!(
            local_time(UnixMillis(1_800_000_000_000), Language::Ja),
            "2027年1月15日 17:00:00"
        );
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;

    fn mail(action: &str, lang: Language, detail: serde_json::Value) -> String {
        let bytes = notice(&Notice {
            from: "eyeward <alerts@example.com>",
            to: "owner@example.jp",
            message_id: "<notice.1.1@example.com>",
            date: UnixMillis(1_800_000_000_000),
            lang,
            action,
            camera: Some("Porch"),
            actor: "Alice\r\nBcc: x@evil.example",
            channel: "web",
            at: UnixMillis(1_800_000_000_000),
            detail: &detail,
            settings_url: "https://relay.example.jp/",
            unsubscribe_url: "https://relay.example.jp/unsubscribe/tok",
        })
        .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn subject(mail: &str) -> String {
        mail.split("\r\n")
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn dispatch_mails_say_the_step_and_whether_the_fee_is_due() {
        let cancelled_free = mail(
            "dispatch.cancelled",
            Language::En,
            serde_json::json!({"request_id": 7, "camera": "Porch", "fee_due_yen": 0}),
        );
        assert_eq!(subject(&cancelled_free), "Guard dispatch 7: cancelled");
        assert!(cancelled_free.contains("no fee is due"), "{cancelled_free}");
        let cancelled_paid = mail(
            "dispatch.cancelled",
            Language::En,
            serde_json::json!({"request_id": 7, "camera": "Porch", "fee_due_yen": 3300}),
        );
        assert!(cancelled_paid.contains("3,300 yen"), "{cancelled_paid}");
        let assigned = mail(
            "dispatch.assigned",
            Language::En,
            serde_json::json!({"request_id": 7, "guard": "Sato\r\nBcc: x@evil.example"}),
        );
        assert!(assigned.contains("A guard was sent: Sato"), "{assigned}");
        let on_the_way = mail(
            "dispatch.en_route",
            Language::En,
            serde_json::json!({"request_id": 7, "guard": "Sato"}),
        );
        assert!(
            on_the_way.contains("Subject: Guard dispatch 7: en route")
                && on_the_way.contains("The guard is on the way: Sato."),
            "{on_the_way}"
        );
        // A name that carries its own title is not given a second one; none is no gap.
        let titled = mail(
            "dispatch.assigned",
            Language::En,
            serde_json::json!({"request_id": 7, "guard": "Guard Suzuki"}),
        );
        assert!(!titled.contains("Guard Guard"), "{titled}");
        let nameless = mail(
            "dispatch.arrived",
            Language::En,
            serde_json::json!({"request_id": 7}),
        );
        assert!(
            nameless.contains("The guard has arrived at your home."),
            "{nameless}"
        );
        assert!(!nameless.contains("  "), "{nameless}");
        let head = assigned.split("\r\n\r\n").next().unwrap();
        assert!(!head.to_ascii_lowercase().contains("bcc:"), "{head}");
        let ja = mail(
            "dispatch.accepted",
            Language::Ja,
            serde_json::json!({"request_id": 7, "fee_due_yen": 3300}),
        );
        assert!(subject(&ja).starts_with("=?utf-8?"), "{ja}");
    }

    #[test]
    fn notices_say_what_happened_in_the_owners_language() {
        assert_eq!(
            subject(&mail("camera.offline", Language::En, serde_json::json!({}))),
            "Camera offline: Porch"
        );
        assert_eq!(
            subject(&mail("camera.online", Language::En, serde_json::json!({}))),
            "Camera back online: Porch"
        );
        assert_eq!(
            subject(&mail(
                "alert_address.added",
                Language::En,
                serde_json::json!({"email": "x@example.jp"})
            )),
            "Account activity: Alert address added: x@example.jp"
        );
        // Japanese subjects are encoded words: the header is ASCII and one line's worth.
        let ja = mail("login.new_browser", Language::Ja, serde_json::json!({}));
        assert!(subject(&ja).starts_with("=?utf-8?"), "{ja}");
        let headers = mail("login.new_browser", Language::En, serde_json::json!({}));
        let head = headers.split("\r\n\r\n").next().unwrap();
        assert!(!head.to_ascii_lowercase().contains("bcc:"), "{head}");
        assert!(head.contains("List-Unsubscribe: <https://relay.example.jp/unsubscribe/tok>"));
    }
}
