//! The identity-check password through the router: the holder sets it behind their login
//! password; an operator of the customer's center checks a word and learns match or no
//! match, five times an hour by the relay's clock; another center's operator gets the same
//! 404 as for no customer; no answer ever holds the word.

use super::*;
use crate::auth::{hash_identity_password, hash_password};
use crate::store::NewAccount;
use eyeward::identity::IdentityPassword;
use eyeward::{Email, GuardCenter, Language, Password, Role, UnixMillis};

const PASSWORD: &str = "a long enough password";
const WORD: &str = "sakura mochi";

/// A session of a new account of `role` at `center` whose login password is [`PASSWORD`]:
/// its id and cookie.
async fn account(app: &App, role: Role, email: &str, center: GuardCenter) -> (i64, String) {
    let hash = hash_password(&Password::new(PASSWORD).unwrap()).unwrap();
    let new = NewAccount {
        role,
        email: Email::parse(email).unwrap(),
        name: DisplayName::parse("Oscar").unwrap(),
        guard_center: center,
        lang: Language::En,
        password_hash: hash,
    };
    let now = app.clock.now();
    let id = app
        .store
        .create_account(new, &Audit::admin(now))
        .await
        .unwrap();
    let secret = format!("session-of-{email}");
    app.store
        .create_session(&hash_token(&secret), id, None, now)
        .await
        .unwrap();
    (id, format!("eyeward_session={secret}"))
}

async fn check(app: &App, operator: &str, customer: i64, word: &str) -> Answer {
    let uri = format!("/api/ops/customers/{customer}/identity-check");
    let body = json!({ "identity_password": word }).to_string();
    app.post_json(&uri, operator, &body).await
}

#[tokio::test]
async fn the_holder_sets_it_behind_the_login_password_and_no_answer_holds_it() {
    let app = App::new().await;
    let (_, holder) = account(&app, Role::Customer, "a@example.jp", GuardCenter::Tokyo).await;
    let (_, operator) = account(&app, Role::Operator, "op@example.jp", GuardCenter::Tokyo).await;
    let unset = app.get("/api/me/identity-password", &holder).await;
    assert_eq!(unset.body["set"], false, "{}", unset.body);
    let put = |password: &'static str, word: &'static str| {
        let body = json!({"password": password, "identity_password": word}).to_string();
        let app = &app;
        let holder = holder.clone();
        async move {
            app.json(Method::PUT, "/api/me/identity-password", &holder, &body)
                .await
        }
    };
    let wrong = put("not the password", WORD).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.body["code"], "wrong_password");
    let short = put(PASSWORD, " a b ").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    let set = put(PASSWORD, WORD).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["set"], true);
    let shown = app.get("/api/me/identity-password", &holder).await;
    for answer in [&unset, &wrong, &short, &set, &shown] {
        assert!(
            !answer.body.to_string().contains("sakura"),
            "{}",
            answer.body
        );
    }
    // Operators have none of their own to set.
    let theirs = app.get("/api/me/identity-password", &operator).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn five_checks_an_hour_then_call_back_and_only_the_customers_center_may_check() {
    let start = UnixMillis(1_900_000_000_000);
    let app = App::with_clock(Clock::simulated(start)).await;
    let (alice, _) = account(&app, Role::Customer, "a@example.jp", GuardCenter::Tokyo).await;
    let (_, tokyo) = account(&app, Role::Operator, "op@example.jp", GuardCenter::Tokyo).await;
    let (_, west) = account(&app, Role::Operator, "w@example.jp", GuardCenter::West).await;
    let none = check(&app, &tokyo, alice, WORD).await;
    assert_eq!(none.body, json!({"result": "not_set"}));
    let hash = hash_identity_password(IdentityPassword::new(WORD).unwrap())
        .await
        .unwrap();
    let audit = Audit::admin(start);
    let customer = CustomerId(alice);
    let reset = "identity.password_reset";
    app.store
        .set_identity_password(customer, &hash, &audit, reset)
        .await
        .unwrap();

    // Another center's operator: the same 404 as for no customer at all, nothing counted.
    let foreign = check(&app, &west, alice, WORD).await;
    let nobody = check(&app, &tokyo, alice + 1000, WORD).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.body, nobody.body);

    // As the caller says it: in capitals, full-width, with spaces around.
    let said = check(&app, &tokyo, alice, "  ＳＡＫＵＲＡ　ＭＯＣＨＩ ").await;
    assert_eq!(
        (said.status, said.body),
        (StatusCode::OK, json!({"result": "match"}))
    );
    for guess in ["sakura", "mochi", "sakura mochi!", "sakuramochi"] {
        let answer = check(&app, &tokyo, alice, guess).await;
        assert_eq!(answer.body, json!({"result": "no_match"}), "{guess}");
    }
    let used_up = check(&app, &tokyo, alice, WORD).await;
    assert_eq!(used_up.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(used_up.body["code"], "identity_checks_used_up");
    let wait: u64 = used_up.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3590..=3600).contains(&wait),
        "the hour from the first check: {wait}"
    );

    // An hour on, the checks come back.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(3600)).await;
    tokio::time::resume();
    let again = check(&app, &tokyo, alice, WORD).await;
    assert_eq!(again.body, json!({"result": "match"}));

    // Each check is in the customer's history with its result and operator, never the word.
    let history = app.store.history_of(customer, None, 50).await.unwrap();
    let checks: Vec<_> = history
        .iter()
        .filter(|e| e.action == "identity.checked")
        .map(|e| (e.actor_name.as_str(), e.detail.as_str()))
        .collect();
    let results: Vec<_> = checks.iter().map(|(_, d)| *d).collect();
    assert_eq!(
        results,
        [
            r#"{"result":"match"}"#,
            r#"{"result":"used_up"}"#,
            r#"{"result":"no_match"}"#,
            r#"{"result":"no_match"}"#,
            r#"{"result":"no_match"}"#,
            r#"{"result":"no_match"}"#,
            r#"{"result":"match"}"#,
            r#"{"result":"not_set"}"#,
        ]
    );
    assert!(checks.iter().all(|(by, _)| *by == "Oscar"));
}
