//! A push service on loopback, as a browser's would be: it takes RFC 8030 deliveries
//! (`POST /push/{device}` with `TTL` and `Content-Encoding: aes128gcm`), checks each RFC 8292
//! VAPID signature (the JWT signed by the key in `k`, for this origin, a `mailto:` subject,
//! expiring within a day) and decrypts the payload per RFC 8291 with the device's own keys,
//! keeping what came and when. A device can be made gone: its deliveries are answered 410.
//!
//! Firefox can use it as its own push service (`dom.push.serverURL` = [`PushService::ws_url`]):
//! it speaks the WebSocket protocol Firefox speaks to Mozilla's autopush (hello, register,
//! unregister, notification, ack). A delivery to a channel Firefox registered is checked the
//! same way, then handed to Firefox still encrypted, to its keys; Firefox's ack says whether
//! it decrypted it and gave it to the page's service worker (code 100).

use anyhow::{Context, Result, bail, ensure};
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions,
};
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::{Auth, decrypt};

/// What came for a device.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub device: String,
    /// The decrypted payload.
    pub payload: Value,
    /// The VAPID key it was signed with (unpadded base64url).
    pub vapid_key: String,
    /// When it came, Unix milliseconds.
    pub at_ms: i64,
}

/// A browser's side of a subscription: its P-256 key and auth secret.
struct DeviceKeys {
    secret: SecretKey,
    auth: Auth,
}

#[derive(Default)]
struct Service {
    devices: HashMap<String, DeviceKeys>,
    gone: HashSet<String>,
    delivered: Vec<Delivery>,
    refused: Vec<(String, String)>,
    /// Channels browsers registered, and the way to their connection.
    channels: HashMap<String, mpsc::UnboundedSender<String>>,
    /// Browsers' acks: (channel, code).
    acks: Vec<(String, i64)>,
    /// Messages sent to browsers, to tell each notification's `version`.
    versions: u64,
    /// The service's own URL, for the endpoints it gives browsers.
    base: String,
}

type Shared = Arc<Mutex<Service>>;

/// The running service; it stops with the test's runtime.
pub struct PushService {
    pub base: String,
    state: Shared,
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Service> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl PushService {
    /// Starts the service on a free loopback port.
    pub async fn start() -> Result<PushService> {
        let state = Shared::default();
        let app = axum::Router::new()
            .route("/push/{device}", axum::routing::post(deliver))
            .route("/", axum::routing::get(browser_connects))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        lock(&state).base = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(PushService { base, state })
    }

    /// A new device `name` with keys of its own made from `seed` (fixed, so that a failure
    /// can be replayed): its subscription as `PushSubscription.toJSON()` gives it.
    pub fn device(&self, name: &str, seed: u8) -> Value {
        let keys = DeviceKeys {
            secret: SecretKey::from_slice(&[seed.max(1); 32]).expect("a valid scalar"),
            auth: Auth::clone_from_slice(&[seed; 16]),
        };
        let point = keys.secret.public_key().to_encoded_point(false);
        let sub = json!({
            "endpoint": format!("{}/push/{name}", self.base),
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(keys.auth),
            },
        });
        lock(&self.state).devices.insert(name.to_owned(), keys);
        sub
    }

    /// The URL for Firefox's `dom.push.serverURL`.
    pub fn ws_url(&self) -> String {
        format!("{}/", self.base.replacen("http://", "ws://", 1))
    }

    /// Browsers' acks of notifications: (channel, code); 100 is "given to the service worker".
    pub fn acks(&self) -> Vec<(String, i64)> {
        lock(&self.state).acks.clone()
    }

    /// From now on the service answers device `name`'s deliveries 410 (gone).
    pub fn gone(&self, name: &str) {
        lock(&self.state).gone.insert(name.to_owned());
    }

    pub fn delivered(&self) -> Vec<Delivery> {
        lock(&self.state).delivered.clone()
    }

    /// Deliveries refused, with why (a bad signature, a payload that does not decrypt).
    pub fn refused(&self) -> Vec<(String, String)> {
        lock(&self.state).refused.clone()
    }

    /// Waits until `done` holds of what was delivered (`within` at most).
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Result<Vec<Delivery>> {
        let start = Instant::now();
        while start.elapsed() < within {
            let delivered = self.delivered();
            if done(&delivered) {
                return Ok(delivered);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "{what}: not within {within:?} (delivered {:?}, refused {:?})",
            self.delivered(),
            self.refused()
        )
    }
}

/// One delivery: checked, decrypted and kept, or refused with why.
async fn deliver(
    State(state): State<Shared>,
    Path(device): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut s = lock(&state);
    if let Some(browser) = s.channels.get(&device).cloned() {
        // A browser's channel: the payload is its to decrypt.
        return match vapid(&headers) {
            Err(why) => {
                s.refused.push((device, format!("{why:#}")));
                StatusCode::BAD_REQUEST
            }
            Ok((vapid_key, at_ms)) => {
                s.versions += 1;
                let message = json!({
                    "messageType": "notification",
                    "channelID": device,
                    "version": s.versions.to_string(),
                    "data": URL_SAFE_NO_PAD.encode(&body),
                    "headers": { "encoding": "aes128gcm" },
                });
                if browser.send(message.to_string()).is_err() {
                    return StatusCode::GONE;
                }
                s.delivered.push(Delivery {
                    device,
                    payload: Value::Null,
                    vapid_key,
                    at_ms,
                });
                StatusCode::CREATED
            }
        };
    }
    match check(&s, &device, &headers, &body) {
        Err(why) => {
            s.refused.push((device, format!("{why:#}")));
            StatusCode::BAD_REQUEST
        }
        Ok(_) if s.gone.contains(&device) => StatusCode::GONE,
        Ok(delivery) => {
            s.delivered.push(delivery);
            StatusCode::CREATED
        }
    }
}

fn check(s: &Service, device: &str, headers: &HeaderMap, body: &[u8]) -> Result<Delivery> {
    let keys = s.devices.get(device).context("no such device")?;
    let (vapid_key, at_ms) = vapid(headers)?;
    let plain = decrypt(body.to_vec(), &keys.secret, &keys.auth)
        .map_err(|e| anyhow::anyhow!("the payload does not decrypt: {e}"))?;
    Ok(Delivery {
        device: device.to_owned(),
        payload: serde_json::from_slice(&plain)?,
        vapid_key,
        at_ms,
    })
}

/// Checks a delivery's headers and its VAPID signature: the key it was signed with, and now.
fn vapid(headers: &HeaderMap) -> Result<(String, i64)> {
    let header = |name: &str| -> Result<&str> {
        Ok(headers
            .get(name)
            .with_context(|| format!("no {name}"))?
            .to_str()?)
    };
    ensure!(header("content-encoding")? == "aes128gcm");
    let ttl: u64 = header("ttl")?.parse()?;
    ensure!(ttl > 0 && ttl <= 24 * 3600, "TTL {ttl}");
    // `vapid t=<JWT>, k=<public key>`.
    let auth = header("authorization")?
        .strip_prefix("vapid ")
        .context("not VAPID")?;
    let (mut t, mut k) = (None, None);
    for part in auth.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => {}
        }
    }
    let (t, k) = (t.context("no t")?, k.context("no k")?);
    let key = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k)?)?;
    let origin = format!("http://{}", header("host")?);
    let claims = key.verify_token::<NoCustomClaims>(
        t,
        Some(VerificationOptions {
            allowed_audiences: Some(HashSet::from([origin])),
            ..Default::default()
        }),
    )?;
    let subject = claims.subject.context("no sub")?;
    ensure!(subject.starts_with("mailto:"), "sub {subject}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let expires = claims.expires_at.context("no exp")?.as_secs();
    ensure!(expires <= now.as_secs() + 24 * 3600, "exp past a day");
    Ok((k.to_owned(), now.as_millis() as i64))
}

/// A browser's connection (Firefox's push protocol, subprotocol `push-notification`).
async fn browser_connects(
    State(state): State<Shared>,
    ws: WebSocketUpgrade,
) -> axum::response::Response {
    ws.protocols(["push-notification"])
        .on_upgrade(move |socket| browser(socket, state))
}

/// Serves one browser: its hello, registrations and acks; notifications for its channels.
async fn browser(mut socket: WebSocket, state: Shared) {
    let (to_browser, mut notifications) = mpsc::unbounded_channel::<String>();
    loop {
        let reply = tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => answer(&state, &to_browser, text.as_str()),
                Some(Ok(_)) => continue,
                _ => return,
            },
            Some(notification) = notifications.recv() => Some(notification),
        };
        if let Some(reply) = reply
            && socket.send(Message::Text(reply.into())).await.is_err()
        {
            return;
        }
    }
}

/// The answer to one of a browser's messages, if it has one.
fn answer(
    state: &Shared,
    to_browser: &mpsc::UnboundedSender<String>,
    text: &str,
) -> Option<String> {
    let m: Value = serde_json::from_str(text).ok()?;
    let channel = m["channelID"].as_str().unwrap_or_default().to_owned();
    let reply = match m["messageType"].as_str() {
        // A ping.
        None => json!({}),
        Some("hello") => json!({
            "messageType": "hello", "status": 200, "use_webpush": true, "broadcasts": {},
            "uaid": m["uaid"].as_str().filter(|u| !u.is_empty()).unwrap_or("5f8e2c1a9b7d4e3f8a6b0c1d2e3f4a5b"),
        }),
        Some("register") => {
            let mut s = lock(state);
            let endpoint = format!("{}/push/{channel}", s.base);
            s.channels.insert(channel.clone(), to_browser.clone());
            json!({ "messageType": "register", "channelID": channel, "status": 200, "pushEndpoint": endpoint })
        }
        Some("unregister") => {
            lock(state).channels.remove(&channel);
            json!({ "messageType": "unregister", "channelID": channel, "status": 200 })
        }
        Some("ack") => {
            let mut s = lock(state);
            for u in m["updates"].as_array().into_iter().flatten() {
                let channel = u["channelID"].as_str().unwrap_or_default().to_owned();
                s.acks.push((channel, u["code"].as_i64().unwrap_or(100)));
            }
            return None;
        }
        Some(_) => return None,
    };
    Some(reply.to_string())
}
