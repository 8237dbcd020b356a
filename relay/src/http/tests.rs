//! Router-level tests: a behaviour of the HTTP edge at the cheapest level that shows it, through
//! the whole router (middleware, extractors, handlers, the one error mapping) with
//! `tower::ServiceExt::oneshot`, on a real store and no socket. The end-to-end suites under
//! `tests/` keep running the real binaries.

use super::{AppState, router};
use crate::auth::hash_token;
use crate::config::Config;
use crate::store::testing::customer;
use crate::store::{Audit, NewCamera, Store};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use eyeward::api::{EventKind, EventView};
use eyeward::clock::Clock;
use eyeward::{CameraId, CameraModel, CameraSource, CustomerId, DisplayName, Plan};
use serde_json::{Value, json};
use tower::ServiceExt;

mod guard_positions;
mod household;
mod identity;

/// The public URL the pages are served at: the origin a browser's requests carry.
const ORIGIN: &str = "http://127.0.0.1:8080";

/// A relay's router on a fresh store, and what the tests set up in it.
struct App {
    router: Router,
    store: Store,
    clock: Clock,
    _dir: tempfile::TempDir,
}

/// An answer's status and JSON body (`Null` when it has none).
struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

impl App {
    async fn new() -> App {
        App::with_clock(Clock::real()).await
    }

    /// A relay whose handlers read `clock`.
    async fn with_clock(clock: Clock) -> App {
        let (store, dir) = crate::store::testing::store().await;
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let bound = ORIGIN.trim_start_matches("http://").parse().unwrap();
        let objects = crate::objects::testing::objects(dir.path()).await;
        let mut state = AppState::new(&config, bound, store.clone(), objects).unwrap();
        state.clock = clock;
        App {
            router: router(state, &config.http),
            store,
            clock,
            _dir: dir,
        }
    }

    /// A customer logged in: their id and session cookie.
    async fn customer(&self, email: &str) -> (CustomerId, String) {
        let id = customer(&self.store, email).await;
        let secret = format!("session-of-{email}");
        let now = self.clock.now();
        self.store
            .create_session(&hash_token(&secret), id.0, None, now)
            .await
            .unwrap();
        (id, format!("eyeward_session={secret}"))
    }

    /// A camera of `owner`'s of `model`, fed by an agent with `token`.
    async fn camera(&self, owner: CustomerId, model: CameraModel, token: &str) -> CameraId {
        let camera = NewCamera {
            customer_id: owner,
            name: DisplayName::parse("Porch").unwrap(),
            model,
            plan: Plan::Dispatch,
            source: CameraSource::Agent,
            agent_token_hash: Some(hash_token(token)),
        };
        let audit = Audit::admin(Clock::real().now());
        self.store.add_camera(camera, &audit).await.unwrap()
    }

    /// Sends `request` through the router, as a browser on the relay's own origin would.
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, cookie: &str) -> Answer {
        let request = Request::get(uri).header(header::COOKIE, cookie);
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post_json(&self, uri: &str, cookie: &str, body: &str) -> Answer {
        self.json(Method::POST, uri, cookie, body).await
    }

    async fn json(&self, method: Method, uri: &str, cookie: &str, body: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, ORIGIN)
            .header(header::CONTENT_TYPE, "application/json");
        self.send(request.body(Body::from(body.to_owned())).unwrap())
            .await
    }
}

#[tokio::test]
async fn without_a_session_every_customer_and_operator_route_is_401() {
    let app = App::new().await;
    for (method, uri) in [
        (Method::GET, "/api/me"),
        (Method::GET, "/api/cameras"),
        (Method::GET, "/api/cameras/1/events"),
        (Method::GET, "/api/events/1"),
        (Method::POST, "/api/cameras/1/ptz"),
        (Method::GET, "/api/arming"),
        (Method::GET, "/api/ops/dispatch-requests"),
    ] {
        let request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::ORIGIN, ORIGIN)
            .header(header::COOKIE, "eyeward_session=made-up")
            .body(Body::empty())
            .unwrap();
        let answer = app.send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(answer.body["code"], "unauthenticated", "{method} {uri}");
    }
}

#[tokio::test]
async fn another_customers_camera_is_404_exactly_like_one_that_never_was() {
    let app = App::new().await;
    let (_, alice) = app.customer("alice@example.jp").await;
    let (bob, _) = app.customer("bob@example.jp").await;
    let bobs = app.camera(bob, CameraModel::PanTilt, "bobs-token").await;
    let theirs = app.get(&format!("/api/cameras/{}", bobs.0), &alice).await;
    let nobodys = app.get("/api/cameras/999999", &alice).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.body, nobodys.body, "nothing tells them apart");
    let events = app
        .get(&format!("/api/cameras/{}/events", bobs.0), &alice)
        .await;
    assert_eq!(events.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_change_from_another_origin_is_refused_before_any_handler() {
    let app = App::new().await;
    let (alice, cookie) = app.customer("alice@example.jp").await;
    let cam = app.camera(alice, CameraModel::PanTilt, "token").await;
    let request = Request::post(format!("/api/cameras/{}/ptz", cam.0))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"action":"stop"}"#))
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
}

#[tokio::test]
async fn a_bad_pan_tilt_command_is_a_400_that_says_what_is_wrong() {
    let app = App::new().await;
    let (alice, cookie) = app.customer("alice@example.jp").await;
    let cam = app.camera(alice, CameraModel::PanTilt, "token").await;
    let uri = format!("/api/cameras/{}/ptz", cam.0);
    for body in [
        "{",
        r#"{"action":"spin"}"#,
        r#"{"action":"move","pan":9,"tilt":0}"#,
        r#"{"action":"stop","extra":1}"#,
    ] {
        let answer = app.post_json(&uri, &cookie, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let message = answer.body["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{body}: {}", answer.body);
    }
}

#[tokio::test]
async fn pan_tilt_on_a_fixed_camera_or_an_offline_one_gets_a_conflict_that_names_it() {
    let app = App::new().await;
    let (alice, cookie) = app.customer("alice@example.jp").await;
    let fixed = app.camera(alice, CameraModel::Fixed, "fixed").await;
    let pan_tilt = app.camera(alice, CameraModel::PanTilt, "pan-tilt").await;
    let stop = r#"{"action":"stop"}"#;
    let answer = app
        .post_json(&format!("/api/cameras/{}/ptz", fixed.0), &cookie, stop)
        .await;
    assert_eq!(
        (answer.status, &answer.body["code"]),
        (StatusCode::CONFLICT, &json!("fixed_camera"))
    );
    let answer = app
        .post_json(&format!("/api/cameras/{}/ptz", pan_tilt.0), &cookie, stop)
        .await;
    assert_eq!(
        (answer.status, &answer.body["code"]),
        (StatusCode::CONFLICT, &json!("camera_offline"))
    );
}

/// A small JPEG, as an agent's snapshot.
fn snapshot() -> Vec<u8> {
    let picture = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 90, 90]));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    jpeg.into_inner()
}

#[tokio::test]
async fn an_agents_upload_is_checked_by_the_core_contract_and_a_retry_is_the_same_event() {
    let app = App::new().await;
    let (alice, _) = app.customer("alice@example.jp").await;
    let cam = app.camera(alice, CameraModel::Fixed, "agent-secret").await;
    let now = Clock::real().now().0;
    let upload = |query: String, token: &str, body: Vec<u8>| {
        Request::post(format!("/agent/v1/events?{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "image/jpeg")
            .body(Body::from(body))
            .unwrap()
    };
    let good = format!("key=event-0001&captured_at={now}&score=0.2&bbox=1,2,10,10");

    let answer = app.send(upload(good.clone(), "wrong", snapshot())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    let bad = format!("key=event-0001&captured_at={now}&score=2&bbox=1,2,10,10");
    let answer = app.send(upload(bad, "agent-secret", snapshot())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"], "score is a share, from 0 to 1");

    let answer = app
        .send(upload(good.clone(), "agent-secret", snapshot()))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let stored: EventView = serde_json::from_value(answer.body).unwrap();
    assert_eq!(
        (stored.camera_id, stored.kind, stored.bbox),
        (cam.0, EventKind::Motion, Some([1, 2, 10, 10]))
    );
    assert_eq!((stored.width, stored.height), (64, 48));

    let again = app.send(upload(good, "agent-secret", snapshot())).await;
    assert_eq!(again.status, StatusCode::OK, "the agent retried");
    assert_eq!(again.body["id"], stored.id);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = App::new().await;
    let answer = app.get("/", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let h = &answer.headers;
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}
