//! Every route of the relay's router, found by reading the router's source, is walked: without
//! credentials it answers 401, with the wrong kind of credentials 401 or 403, and with another
//! tenant's ids 404. A new route is walked as soon as it is added, so it cannot ship unguarded;
//! one whose guard the rules below cannot tell fails here until it is given one.
//!
//! Then every customer route is walked as each kind of household member, on the holder's
//! things: a member given one right (with `watch`, for those used from the live view) gets
//! past the guard of exactly the routes that right opens, and 403 or 404 everywhere else.

mod common;

use anyhow::{Context, Result, bail, ensure};
use common::{Client, Relay};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PW: &str = "correct horse battery";

/// One method on one path of the router, as written there (`/api/cameras/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: String,
    path: String,
}

/// Reads `.route("path", get(..).post(..))` out of `router()` in the relay's HTTP module; the
/// routes before `.nest("/api", api)` belong to the `/api` router.
fn routes() -> Result<BTreeSet<Route>> {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("relay/src/http/mod.rs"),
    )?;
    let start = source.find("pub fn router(").context("router()")?;
    let body = &source[start..];
    let nest = body.find(".nest(\"/api\", api)").context("the /api nest")?;
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = body[at..].find(".route(") {
        let open = at + offset + ".route(".len();
        // The call's argument list, up to its closing parenthesis.
        let mut depth = 1;
        let close = body[open..]
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(open + i)
            })
            .context("unbalanced .route(")?;
        let args = &body[open..close];
        let path = args
            .split('"')
            .nth(1)
            .context("a route without a path literal")?;
        let prefix = if open < nest { "/api" } else { "" };
        let mut methods = 0;
        for method in ["get", "post", "put", "patch", "delete"] {
            // `get(handler)`: the word called, not a handler that happens to be named so.
            let called = args.match_indices(&format!("{method}(")).any(|(i, _)| {
                !args[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if called {
                methods += 1;
                found.insert(Route {
                    method: method.to_uppercase(),
                    path: format!("{prefix}{path}"),
                });
            }
        }
        ensure!(methods > 0, "no method found for {path}");
        at = close;
    }
    ensure!(found.len() > 40, "only {} routes found", found.len());
    Ok(found)
}

/// Who may call a route, by the rules of `docs/api.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone: logging in (by password or passkey), health.
    Public,
    /// Loopback clients or the metrics bearer token.
    Metrics,
    /// Whoever holds the token of a mail's link.
    MailToken,
    /// Any logged-in account (its own settings).
    Account,
    /// A logged-in customer, for their own things.
    Customer,
    /// A logged-in operator, for their own center's requests and guards.
    Operator,
    /// A camera's agent token.
    Agent,
    /// A guard's device token (position reports), or a signed-in phone.
    GuardPhone,
    /// A guard's phone signed in from a link the console issued.
    GuardSession,
    /// The token of a guard's sign-in link, in the body.
    GuardLink,
    /// The token of a mailed invitation, in the body.
    InvitationToken,
    /// The token of a push's picture link, in the path.
    PictureToken,
}

fn access_of(route: &Route) -> Access {
    let p = route.path.as_str();
    match p {
        "/api/login" | "/api/login/passkey" | "/api/login/passkey/options" | "/healthz" => {
            Access::Public
        }
        "/metrics" => Access::Metrics,
        "/api/logout" | "/api/me" => Access::Account,
        // The holder's identity-check password: a customer's, not every account's.
        "/api/me/identity-password" => Access::Customer,
        // One's own passkeys: no id of anyone else's reaches them (see the store's tests).
        _ if p.starts_with("/api/passkeys") || p.starts_with("/api/me/") => Access::Account,
        _ if p.starts_with("/confirm/") || p.starts_with("/unsubscribe/") => Access::MailToken,
        "/api/invitation" | "/api/invitation/accept" => Access::InvitationToken,
        _ if p.starts_with("/push/") => Access::PictureToken,
        _ if p.starts_with("/api/ops/") => Access::Operator,
        _ if p.starts_with("/api/") => Access::Customer,
        _ if p.starts_with("/agent/") => Access::Agent,
        "/guard/v1/position" => Access::GuardPhone,
        "/guard/v1/sign-in" => Access::GuardLink,
        _ if p.starts_with("/guard/") => Access::GuardSession,
        _ => Access::Public,
    }
}

/// The people and things the walk uses: Alice (tokyo) walks, Bob (west) owns what she must
/// not reach; a tokyo and an east operator; a west guard.
struct World {
    relay: Relay,
    alice: Client,
    bob: Client,
    tokyo_op: Client,
    east_op: Client,
    alice_agent: String,
    bob_agent: String,
    guard_phone: String,
    bob_camera: i64,
    bob_event: i64,
    bob_address: i64,
    bob_request: i64,
    bob_switch: i64,
    bob_invitation: i64,
    west_guard: i64,
    bob_customer: i64,
    /// A Tokyo guard's phone, signed in from a link the Tokyo operator issued.
    tokyo_phone: Client,
}

async fn world() -> Result<World> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let bob_id = relay.customer("b@example.jp", "Bob", "west", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    relay.operator("east@example.jp", "Eve", "east", PW)?;
    let alice_cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let bob_cam = relay.camera(bob_id, "Gate", "fixed", "dispatch", "agent")?;
    let guard = relay.guard("west", "Kato", "34.69,135.50")?;
    let token = |v: &Value, key: &str| -> Result<String> {
        Ok(v[key].as_str().context("token")?.to_owned())
    };
    let bob_agent = token(&bob_cam, "agent_token")?;
    let bob_camera = bob_cam["id"].as_i64().context("id")?;

    // Bob's event, alert address and dispatch request.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let upload = relay
        .client()
        .http
        .post(relay.url(&format!(
            "/agent/v1/events?key=walk-0001&captured_at={}&score=0.04&bbox=0,0,1,1",
            now.as_millis()
        )))
        .bearer_auth(&bob_agent)
        .header("content-type", "image/jpeg")
        .body(common::jpeg(64, 48))
        .send()
        .await?;
    let (status, event) = common::status_json(upload).await?;
    ensure!(status == 201, "event upload: {status} {event}");
    let bob = relay.login("b@example.jp", PW).await?;
    let (_, events) = common::status_json(
        bob.get(&format!("/api/cameras/{bob_camera}/events"))
            .await?,
    )
    .await?;
    let bob_event = events[0]["id"].as_i64().context("event id")?;
    let (status, address) = common::status_json(
        bob.post("/api/alert-addresses", &json!({"email": "bob@example.jp"}))
            .await?,
    )
    .await?;
    ensure!(status == 201, "address: {status} {address}");
    let (status, request) = common::status_json(
        bob.post(
            "/api/dispatch-requests",
            &json!({"camera_id": bob_camera, "share_snapshot": true, "share_live": true}),
        )
        .await?,
    )
    .await?;
    ensure!(status == 201, "dispatch request: {status} {request}");
    let (status, switch) = common::status_json(
        bob.post(
            "/api/arming/schedule",
            &json!({"days": ["mon"], "time": "08:00", "mode": "away"}),
        )
        .await?,
    )
    .await?;
    ensure!(status == 201, "arming switch: {status} {switch}");
    let (status, invitation) = common::status_json(
        bob.post(
            "/api/household/invitations",
            &json!({"email": "sitter@example.jp", "name": "Bob's sitter",
                    "cameras": {bob_camera.to_string(): ["watch"]}}),
        )
        .await?,
    )
    .await?;
    ensure!(status == 201, "invitation: {status} {invitation}");
    let tokyo_op = relay.login("op@example.jp", PW).await?;
    let tanaka = relay.guard("tokyo", "Tanaka", "35.68,139.76")?;
    let tanaka = tanaka["id"].as_i64().context("guard id")?;
    let tokyo_phone = common::guard_phone(&relay, &tokyo_op, tanaka).await?;
    Ok(World {
        alice: relay.login("a@example.jp", PW).await?,
        tokyo_op,
        tokyo_phone,
        east_op: relay.login("east@example.jp", PW).await?,
        alice_agent: token(&alice_cam, "agent_token")?,
        guard_phone: token(&guard, "guard_token")?,
        bob_camera,
        bob_event,
        bob_address: address["id"].as_i64().context("address id")?,
        bob_request: request["id"].as_i64().context("request id")?,
        bob_switch: switch["id"].as_i64().context("switch id")?,
        bob_invitation: invitation["id"].as_i64().context("invitation id")?,
        west_guard: guard["id"].as_i64().context("guard id")?,
        bob_customer: bob_id,
        bob,
        bob_agent,
        relay,
    })
}

impl World {
    /// The path with its parameters filled in with Bob's (or Bob's center's) things.
    fn foreign_path(&self, route: &Route) -> String {
        let id = if route.path.starts_with("/api/cameras/") {
            self.bob_camera
        } else if route.path.starts_with("/api/events/") {
            self.bob_event
        } else if route.path.starts_with("/api/alert-addresses/") {
            self.bob_address
        } else if route.path.starts_with("/api/arming/schedule/") {
            self.bob_switch
        } else if route.path.starts_with("/api/ops/guards/") {
            self.west_guard
        } else if route.path.starts_with("/api/ops/customers/") {
            self.bob_customer
        } else if route.path.starts_with("/api/household/") {
            // Bob's household has an invitation and no member yet: either id is not Alice's.
            self.bob_invitation
        } else {
            self.bob_request
        };
        route
            .path
            .replace("{id}", &id.to_string())
            .replace("{session}", "1")
            .replace(
                "{action}",
                if route.path.starts_with("/guard/") {
                    "arrive"
                } else {
                    "accept"
                },
            )
            .replace("{tunnel}", "1")
            .replace("{token}", "0123456789abcdef0123456789abcdef")
    }
}

/// A body each route would take, so that what answers is the guard, not the body check.
fn sample_body(route: &Route) -> Option<(&'static str, Vec<u8>)> {
    let json = |v: Value| Some(("application/json", v.to_string().into_bytes()));
    let p = route.path.as_str();
    match route.method.as_str() {
        "GET" | "DELETE" if p != "/api/alert-addresses" => None,
        _ if p.ends_with("/whep") => Some(("application/sdp", b"v=0\r\n".to_vec())),
        _ if p.ends_with("/snapshot") || p == "/agent/v1/events" => {
            Some(("image/jpeg", common::jpeg(64, 48)))
        }
        _ if p.ends_with("/ptz") => json(json!({"action": "stop"})),
        _ if p.ends_with("/sound") => json(json!({"listen": true})),
        _ if p.ends_with("/talk") => json(json!({"talk": true})),
        _ if p.ends_with("/assign") => json(json!({"guard_id": 1})),
        _ if p.ends_with("/position") => json(json!({"lat": 35.0, "lon": 139.0})),
        _ if p == "/api/cameras/{id}" => json(json!({"name": "renamed"})),
        _ if p == "/api/alert-addresses" => json(json!({"email": "x@example.jp"})),
        _ if p == "/api/arming" => json(json!({"mode": "home"})),
        _ if p == "/api/arming/schedule" => {
            json(json!({"days": ["mon"], "time": "08:00", "mode": "away"}))
        }
        _ if p == "/api/household/invitations" => {
            json(json!({"email": "x@example.jp", "name": "X", "cameras": {}}))
        }
        _ if p == "/api/household/members/{id}" => json(json!({"cameras": {}})),
        _ if p == "/api/push/devices" => json(json!({
            "endpoint": "https://push.example.com/walk",
            "keys": {
                "p256dh": "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY",
                "auth": "_ordMnz7uTCmrpBTeUV4Bw",
            },
        })),
        _ if p == "/api/invitation" => json(json!({"token": "ewi_unknown"})),
        _ if p == "/guard/v1/sign-in" => json(json!({"token": "ewg_unknown"})),
        _ if p.ends_with("/identity-check") => json(json!({"identity_password": "a word"})),
        _ if p == "/api/me/identity-password" => {
            json(json!({"password": PW, "identity_password": "a word"}))
        }
        _ if p == "/api/invitation/accept" => {
            json(json!({"token": "ewi_unknown", "password": "long enough, surely"}))
        }
        _ => json(json!({})),
    }
}

/// Calls `path` as `client` (its cookies), with `bearer` if given and `body` (or else the
/// route's sample body); the response.
async fn call(
    client: &Client,
    route: &Route,
    path: &str,
    bearer: Option<&str>,
    body: Option<(&'static str, Vec<u8>)>,
) -> Result<reqwest::Response> {
    let method = Method::from_bytes(route.method.as_bytes())?;
    let mut req = client.request(method, path);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some((ctype, body)) = body.or_else(|| sample_body(route)) {
        req = req.header("content-type", ctype).body(body);
    }
    Ok(req.send().await?)
}

/// Routes without an id in the path that name one in the body: Bob's, in the body.
fn foreign_body(w: &World, route: &Route) -> Option<(&'static str, Vec<u8>)> {
    let body = match (route.method.as_str(), route.path.as_str()) {
        ("POST", "/api/dispatch-requests") => json!({"camera_id": w.bob_camera}),
        ("DELETE", "/api/alert-addresses") => json!({"id": w.bob_address}),
        _ => return None,
    };
    Some(("application/json", body.to_string().into_bytes()))
}

/// Anything of Bob's that must never show in what Alice reads.
const BOBS: [&str; 4] = ["b@example.jp", "bob@example.jp", "Gate", "Bob"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_strangers_wrong_roles_and_other_tenants() -> Result<()> {
    let w = world().await?;
    let routes = routes()?;
    let anonymous = w.relay.client();
    let mut failures = Vec::new();
    let mut walked = 0;
    // Customer GETs without an id: Alice's own lists, checked for anything of Bob's.
    let mut lists = Vec::new();
    // A guard's phone's own reads, checked for anything of Bob's.
    let mut guard_lists = Vec::new();
    for route in &routes {
        let access = access_of(route);
        let path = w.foreign_path(route);
        // (who, bearer token, the answers allowed)
        let mut checks: Vec<(&str, &Client, Option<&str>, &[u16])> = Vec::new();
        match access {
            Access::Public | Access::Metrics => {}
            // The GET is a page that asks for a click (mail scanners follow links); the POST
            // is what a token does.
            Access::MailToken if route.method == "GET" => {}
            Access::MailToken => checks.push(("an unknown mail token", &anonymous, None, &[404])),
            Access::InvitationToken => {
                checks.push(("an unknown invitation token", &anonymous, None, &[404]));
            }
            Access::PictureToken => {
                checks.push(("an unknown picture token", &anonymous, None, &[404]));
            }
            Access::Account => checks.push(("no session", &anonymous, None, &[401])),
            Access::Customer => {
                checks.push(("no session", &anonymous, None, &[401]));
                checks.push(("an operator", &w.tokyo_op, None, &[403]));
                checks.push(("an agent token", &anonymous, Some(&w.bob_agent), &[401]));
                if route.path.contains('{') || foreign_body(&w, route).is_some() {
                    checks.push(("Alice, on Bob's", &w.alice, None, &[404]));
                } else if route.method == "GET" {
                    lists.push(route);
                }
            }
            Access::Operator => {
                checks.push(("no session", &anonymous, None, &[401]));
                checks.push(("a customer", &w.bob, None, &[403]));
                checks.push(("a guard's phone", &anonymous, Some(&w.guard_phone), &[401]));
                if route.path.contains("{id}") {
                    checks.push(("another center", &w.east_op, None, &[404]));
                }
            }
            Access::Agent => {
                checks.push(("no token", &anonymous, None, &[401]));
                checks.push(("a customer's session", &w.bob, None, &[401]));
                checks.push(("a guard's token", &anonymous, Some(&w.guard_phone), &[401]));
                if route.path.contains("{tunnel}") {
                    // A tunnel the relay never opened for this camera.
                    checks.push((
                        "another camera's agent",
                        &anonymous,
                        Some(&w.alice_agent),
                        &[404],
                    ));
                }
            }
            Access::GuardPhone => {
                checks.push(("no token", &anonymous, None, &[401]));
                checks.push(("an agent token", &anonymous, Some(&w.bob_agent), &[401]));
                checks.push(("a customer's session", &w.bob, None, &[401]));
            }
            Access::GuardLink => {
                checks.push(("an unknown sign-in link", &anonymous, None, &[404]));
            }
            Access::GuardSession => {
                checks.push(("no session", &anonymous, None, &[401]));
                checks.push((
                    "a guard's device token",
                    &anonymous,
                    Some(&w.guard_phone),
                    &[401],
                ));
                checks.push(("a customer's session", &w.bob, None, &[401]));
                checks.push(("an operator's session", &w.tokyo_op, None, &[401]));
                if route.path.contains("{id}") {
                    checks.push((
                        "another guard's phone, on Bob's",
                        &w.tokyo_phone,
                        None,
                        &[404],
                    ));
                } else {
                    guard_lists.push(route);
                }
            }
        }
        for (who, client, bearer, allowed) in checks {
            walked += 1;
            let body = (who == "Alice, on Bob's")
                .then(|| foreign_body(&w, route))
                .flatten();
            let status = call(client, route, &path, bearer, body)
                .await?
                .status()
                .as_u16();
            if !allowed.contains(&status) {
                failures.push(format!(
                    "{} {} ({access:?}) as {who}: {status}, want {allowed:?}",
                    route.method, path
                ));
            }
        }
    }
    for route in lists {
        walked += 1;
        let resp = call(&w.alice, route, &route.path, None, None).await?;
        let status = resp.status().as_u16();
        if route.path.ends_with("/live") {
            // A stream of Alice's own changes; Bob's are checked in the dispatch tests.
            ensure!(status == 200, "{} {}: {status}", route.method, route.path);
            continue;
        }
        let text = resp.text().await?;
        if status != 200 || BOBS.iter().any(|b| text.contains(b)) {
            failures.push(format!(
                "GET {} as Alice: {status}, shows Bob's: {text}",
                route.path
            ));
        }
    }
    for route in guard_lists {
        walked += 1;
        let resp = call(&w.tokyo_phone, route, &route.path, None, None).await?;
        let status = resp.status().as_u16();
        let wanted = if route.method == "GET" { 200 } else { 204 };
        let text = if route.path.ends_with("/live") {
            String::new()
        } else {
            resp.text().await?
        };
        if status != wanted || BOBS.iter().any(|b| text.contains(b)) {
            failures.push(format!(
                "{} {} as Tanaka's phone: {status}, shows Bob's: {text}",
                route.method, route.path
            ));
        }
    }
    eprintln!("{} routes, {walked} calls", routes.len());
    if !failures.is_empty() {
        bail!(
            "{} unguarded answers:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    // Nothing of Bob's changed along the way.
    let (_, request) = common::status_json(
        w.bob
            .get(&format!("/api/dispatch-requests/{}", w.bob_request))
            .await?,
    )
    .await?;
    assert_eq!(request["request"]["state"], "requested", "{request}");
    let (_, cam) =
        common::status_json(w.bob.get(&format!("/api/cameras/{}", w.bob_camera)).await?).await?;
    assert_eq!(cam["name"], "Gate");
    let (_, addresses) = common::status_json(w.bob.get("/api/alert-addresses").await?).await?;
    assert_eq!(addresses.as_array().map(Vec::len), Some(1), "{addresses}");
    Ok(())
}

/// What a customer route lets a household member do: the holder's alone, any member who
/// sees the camera, or a member given this right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Holder,
    AnyRight,
    Right(&'static str),
    /// The caller's own things (alert addresses): the holder's are never a member's (404).
    Own,
}

/// Which right opens each customer route to a member. Charges, the schedule, the history and
/// the household itself stay the holder's; alert addresses and push devices are each
/// person's own.
fn needs(route: &Route) -> Needs {
    let (m, p) = (route.method.as_str(), route.path.as_str());
    match (m, p) {
        ("GET", "/api/cameras" | "/api/cameras/{id}" | "/api/events") => Needs::AnyRight,
        // Lists of what the member follows: empty without the right.
        ("GET", "/api/dispatch-requests" | "/api/dispatch-requests/live") => Needs::AnyRight,
        ("GET", "/api/dispatch-terms") => Needs::Right("dispatch"),
        ("GET", "/api/alert-addresses" | "/api/push") => Needs::AnyRight,
        ("POST", "/api/push/devices") => Needs::Right("alerts"),
        ("DELETE", "/api/push/devices/{id}") => Needs::Own,
        ("POST", "/api/alert-addresses") => Needs::Right("alerts"),
        ("DELETE", "/api/alert-addresses" | "/api/alert-addresses/{id}") => Needs::Own,
        (_, "/api/dispatch-requests" | "/api/dispatch-requests/{id}") => Needs::Right("dispatch"),
        (_, "/api/dispatch-requests/{id}/cancel" | "/api/dispatch-requests/{id}/snapshot") => {
            Needs::Right("dispatch")
        }
        (_, "/api/cameras/{id}/whep" | "/api/cameras/{id}/whep/{session}") => Needs::Right("watch"),
        (_, "/api/cameras/{id}/whep/{session}/sound") => Needs::Right("watch"),
        (_, "/api/cameras/{id}/whep/{session}/talk") => Needs::Right("speak"),
        ("POST", "/api/cameras/{id}/ptz") => Needs::Right("move"),
        ("GET", "/api/cameras/{id}/ptz" | "/api/cameras/{id}/ptz/live") => Needs::Right("watch"),
        ("GET", "/api/cameras/{id}/events" | "/api/cameras/{id}/events/live") => {
            Needs::Right("events")
        }
        ("GET", "/api/events/{id}" | "/api/events/{id}/snapshot" | "/api/events/{id}/clip") => {
            Needs::Right("events")
        }
        _ => Needs::Holder,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_lets_a_household_member_do_exactly_what_their_rights_say() -> Result<()> {
    let w = world().await?;
    let routes = routes()?;
    let kinds: [&[&str]; 6] = [
        &["watch"],
        &["events"],
        &["alerts"],
        &["watch", "move"],
        &["watch", "speak"],
        &["watch", "dispatch"],
    ];
    let mut failures = Vec::new();
    let mut walked = 0;
    for (n, rights) in kinds.iter().enumerate() {
        let grant = json!({"cameras": {w.bob_camera.to_string(): rights}});
        let email = format!("member{n}@example.jp");
        let member = w.relay.member(&w.bob, &email, "Member", grant, PW).await?;
        for route in routes.iter().filter(|r| access_of(r) == Access::Customer) {
            let path = w.foreign_path(route);
            let body = foreign_body(&w, route);
            let resp = call(&member, route, &path, None, body).await?;
            let status = resp.status().as_u16();
            // A live stream let through stays open: only a refusal's body is read.
            let text = match status {
                200 if route.path.ends_with("/live") => String::new(),
                _ => resp.text().await?,
            };
            walked += 1;
            let opened = match needs(route) {
                Needs::Holder | Needs::Own => false,
                Needs::AnyRight => true,
                Needs::Right(right) => rights.contains(&right),
            };
            // A session path names no session of this member's, Bob's event has no clip and
            // his request no shared picture: past the guard those are 404 too.
            let found_nothing = route.path.contains("{session}")
                || route.path.ends_with("/clip")
                || route.path == "/api/dispatch-requests/{id}/snapshot";
            let refused = status == 403 || (status == 404 && !found_nothing);
            let wrong = if opened {
                refused || status == 401
            } else if needs(route) == Needs::Own {
                status != 404
            } else {
                !(status == 403 || status == 404)
            };
            if wrong {
                failures.push(format!(
                    "{} {path} as a member with {rights:?}: {status} {text}",
                    route.method
                ));
            }
        }
    }
    eprintln!("{walked} calls as members");
    if !failures.is_empty() {
        bail!(
            "{} answers not as the rights say:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

#[test]
fn the_router_source_lists_the_routes_we_know() -> Result<()> {
    let routes = routes()?;
    for (method, path) in [
        ("POST", "/api/login"),
        ("PATCH", "/api/cameras/{id}"),
        ("DELETE", "/api/cameras/{id}/whep/{session}"),
        ("PUT", "/api/ops/guards/{id}/position"),
        ("GET", "/agent/v1/link"),
        ("POST", "/confirm/{token}"),
        ("GET", "/metrics"),
    ] {
        let route = Route {
            method: method.to_owned(),
            path: path.to_owned(),
        };
        ensure!(routes.contains(&route), "{route:?} not found in {routes:?}");
    }
    Ok(())
}
