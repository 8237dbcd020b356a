//! The household through the router: the holder invites, the invited person takes the mailed
//! link and is a member with the rights given, a guest's access ends at its time by the
//! relay's clock, and only the holder changes anything.

use super::*;
use eyeward::UnixMillis;

const PASSWORD: &str = "a long enough password";

/// The token of the newest invitation mail queued to `to`.
async fn invitation_token(app: &App, to: &str) -> String {
    let far = UnixMillis(i64::MAX / 2);
    let mail = app.store.due_mail(far, 100).await.unwrap();
    let mail = mail
        .iter()
        .rev()
        .find(|m| m.kind == "invitation" && m.recipient == to)
        .expect("an invitation mail");
    let message = mail_parser::MessageParser::default()
        .parse(mail.body.as_deref().unwrap())
        .unwrap();
    let text = message.body_text(0).unwrap();
    let start = text.find("/#invite/").expect("the link") + "/#invite/".len();
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

/// The session cookie an answer sets.
fn session_of(answer: &Answer) -> String {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("eyeward_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// Invites `email` into `holder`'s household (`rest`: the cameras and until, as JSON fields)
/// and takes the invitation: the member's session cookie.
async fn member(app: &App, holder: &str, email: &str, rest: &str) -> String {
    let answer = app
        .post_json(
            "/api/household/invitations",
            holder,
            &format!(r#"{{"email":"{email}","name":"Hanako","lang":"en",{rest}}}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let token = invitation_token(app, email).await;
    let accepted = app
        .post_json(
            "/api/invitation/accept",
            "",
            &json!({"token": token, "password": PASSWORD}).to_string(),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    session_of(&accepted)
}

#[tokio::test]
async fn an_invited_person_opens_the_mailed_link_chooses_a_password_and_is_a_member() {
    let app = App::new().await;
    let (holder, taro) = app.customer("a@example.jp").await;
    let camera = app.camera(holder, CameraModel::Fixed, "t").await;
    let answer = app
        .post_json(
            "/api/household/invitations",
            &taro,
            &format!(
                r#"{{"email":"hanako@example.jp","name":"Hanako","lang":"en","cameras":{{"{camera}":["watch","events"]}}}}"#
            ),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["state"], "pending");
    let token = invitation_token(&app, "hanako@example.jp").await;
    assert!(token.starts_with("ewi_"), "{token}");

    // What the invitation's page shows, to whoever holds the link.
    let look = app
        .post_json(
            "/api/invitation",
            "",
            &json!({ "token": token }).to_string(),
        )
        .await;
    assert_eq!(look.status, StatusCode::OK, "{}", look.body);
    assert_eq!(look.body["household"], "Taro");
    assert_eq!(look.body["name"], "Hanako");
    assert_eq!(
        look.body["cameras"],
        json!([{"id": camera, "name": "Porch", "rights": ["watch", "events"]}])
    );
    let made_up = json!({"token": "ewi_made-up"}).to_string();
    assert_eq!(
        app.post_json("/api/invitation", "", &made_up).await.status,
        StatusCode::NOT_FOUND
    );

    let weak = json!({"token": token, "password": "short"}).to_string();
    let refused = app.post_json("/api/invitation/accept", "", &weak).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["code"], "weak_password");
    let good = json!({"token": token, "password": PASSWORD}).to_string();
    let accepted = app.post_json("/api/invitation/accept", "", &good).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["role"], "member");
    let hanako = session_of(&accepted);
    let me = app.get("/api/me", &hanako).await;
    assert_eq!(
        (me.body["role"].as_str(), me.body["household"].as_i64()),
        (Some("member"), Some(holder.0))
    );
    // Once only.
    let again = app.post_json("/api/invitation/accept", "", &good).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let household = app.get("/api/household", &taro).await;
    assert_eq!(household.body["members"][0]["name"], "Hanako");
    assert_eq!(
        household.body["members"][0]["cameras"],
        json!({ camera.to_string(): ["watch", "events"] })
    );
    assert_eq!(household.body["invitations"][0]["state"], "accepted");
    // The holder's pages are the holder's.
    for uri in ["/api/household", "/api/charges"] {
        assert_eq!(
            app.get(uri, &hanako).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    let history = app.get("/api/history", &taro).await;
    let entries: Vec<(String, String)> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("actor_name"), s("action"))
        })
        .collect();
    for step in [
        ("Taro", "member.invited"),
        ("Hanako", "member.joined"),
        ("Hanako", "login.new_browser"),
    ] {
        assert!(
            entries.contains(&(step.0.into(), step.1.into())),
            "{step:?} in {entries:?}"
        );
    }
}

#[tokio::test]
async fn a_guests_access_ends_at_the_time_given_without_anyone_acting() {
    let start = UnixMillis(1_900_000_000_000);
    let app = App::with_clock(Clock::simulated(start)).await;
    let (holder, taro) = app.customer("a@example.jp").await;
    let camera = app.camera(holder, CameraModel::Fixed, "t").await;
    let until = start.plus(std::time::Duration::from_secs(3600));
    let guest = member(
        &app,
        &taro,
        "sitter@example.jp",
        &format!(
            r#""cameras":{{"{camera}":["watch"]}},"until":"{}""#,
            until.to_rfc3339()
        ),
    )
    .await;
    assert_eq!(app.get("/api/me", &guest).await.status, StatusCode::OK);

    // The relay's clock passes the guest's end: nobody acts.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(3601)).await;
    tokio::time::resume();
    let ended = app.get("/api/me", &guest).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ended.body["code"], "access_ended");
    let login = json!({"email": "sitter@example.jp", "password": PASSWORD}).to_string();
    let again = app.post_json("/api/login", "", &login).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.body["code"], "access_ended");
    let household = app.get("/api/household", &taro).await;
    assert_eq!(household.body["members"][0]["ended"], true);
}

#[tokio::test]
async fn only_the_holder_changes_or_removes_a_member_and_it_takes_effect_at_once() {
    let app = App::new().await;
    let (holder, taro) = app.customer("a@example.jp").await;
    let (_, bob) = app.customer("b@example.jp").await;
    let camera = app.camera(holder, CameraModel::Fixed, "t").await;
    let hanako = member(
        &app,
        &taro,
        "hanako@example.jp",
        &format!(r#""cameras":{{"{camera}":["watch"]}}"#),
    )
    .await;
    let id = app.get("/api/household", &taro).await.body["members"][0]["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/household/members/{id}");
    let rights = format!(r#"{{"cameras":{{"{camera}":["events"]}}}}"#);
    for (who, status) in [
        (&bob, StatusCode::NOT_FOUND),
        (&hanako, StatusCode::FORBIDDEN),
    ] {
        let answer = app.json(Method::PUT, &uri, who, &rights).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        let answer = app.json(Method::DELETE, &uri, who, "").await;
        assert_eq!(answer.status, status, "{}", answer.body);
    }
    let past = r#"{"cameras":{},"until":"2001-01-01T00:00:00Z"}"#;
    let answer = app.json(Method::PUT, &uri, &taro, past).await;
    assert_eq!(answer.body["code"], "bad_until");
    let blind = format!(r#"{{"cameras":{{"{camera}":["move"]}}}}"#);
    let answer = app.json(Method::PUT, &uri, &taro, &blind).await;
    assert_eq!(answer.body["code"], "rights_not_allowed");
    let answer = app.json(Method::PUT, &uri, &taro, &rights).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let household = app.get("/api/household", &taro).await;
    assert_eq!(
        household.body["members"][0]["cameras"],
        json!({ camera.to_string(): ["events"] })
    );

    let answer = app.json(Method::DELETE, &uri, &taro, "").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/me", &hanako).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.json(Method::DELETE, &uri, &taro, "").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_member_given_dispatch_asks_for_a_guard_under_their_name_on_the_holders_account() {
    let app = App::new().await;
    let (holder, taro) = app.customer("a@example.jp").await;
    let camera = app.camera(holder, CameraModel::Fixed, "t").await;
    let rights = |r: &str| format!(r#""cameras":{{"{camera}":{r}}}"#);
    let hanako = member(
        &app,
        &taro,
        "hanako@example.jp",
        &rights(r#"["watch","dispatch"]"#),
    )
    .await;
    let jiro = member(&app, &taro, "jiro@example.jp", &rights(r#"["watch"]"#)).await;

    let ask = json!({ "camera_id": camera }).to_string();
    let refused = app.post_json("/api/dispatch-requests", &jiro, &ask).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["code"], "not_your_right");
    let asked = app.post_json("/api/dispatch-requests", &hanako, &ask).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.body);
    let id = asked.body["id"].as_i64().unwrap();
    // The household's request: the holder's fee, the holder's list.
    assert_eq!(asked.body["customer_id"], holder.0);
    let theirs = app.get("/api/dispatch-requests", &taro).await;
    assert_eq!(theirs.body[0]["id"], id);
    let one = app
        .get(&format!("/api/dispatch-requests/{id}"), &hanako)
        .await;
    assert_eq!(one.body["steps"][0]["actor_name"], "Hanako");
    assert_eq!(one.body["steps"][0]["actor_kind"], "member");
    // A member without the right follows none of it; no member sees the charges.
    assert_eq!(
        app.get("/api/dispatch-requests", &jiro).await.body,
        json!([])
    );
    let hidden = app
        .get(&format!("/api/dispatch-requests/{id}"), &jiro)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/charges", &hanako).await.status,
        StatusCode::FORBIDDEN
    );
    let cancelled = app
        .post_json(
            &format!("/api/dispatch-requests/{id}/cancel"),
            &hanako,
            "{}",
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
}
