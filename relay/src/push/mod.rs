//! Web Push: alerts as notifications on people's devices. Standard Web Push through
//! web-push-native: RFC 8030 delivery, RFC 8291 payload encryption to the device's keys,
//! RFC 8292 VAPID with the relay's one key (kept in the database, so every node signs alike).
//! A push is a row of the mail outbox (kind `push`); the [`Mailer`](crate::mail::Mailer)
//! hands it here to leave, so it has the mail's claims, retries and cooldown.
//!
//! Push services are on the internet, and an endpoint is whatever a browser gave: the relay
//! sends only over https to a name that resolves to public addresses (unless
//! `push.allow_private_endpoints`, for tests and closed networks), connects to the address it
//! checked (no second lookup to rebind), follows no redirect, and waits at most 10 s.

mod address;

pub use address::is_public;

use crate::config::PushConfig;
use crate::error::Error;
use crate::store::{PushTarget, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eyeward::clock::Clock;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{Auth, WebPushBuilder, p256};

/// How long a push service keeps trying a device that is away (its `TTL`): an alert an hour
/// late is no alert.
pub const PUSH_TTL: Duration = Duration::from_secs(3600);
/// The longest endpoint taken.
const MAX_ENDPOINT: usize = 2048;
/// How long a push service has to answer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How a push went.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Ok,
    /// Worth another try later (the service is away, busy or said 429 / 5xx).
    Retry(String),
    /// The service says the device is gone (404, 410): it is removed.
    Gone,
    /// Refused for good (another 4xx, or an endpoint the relay does not send to).
    Refused(String),
}

/// Sends pushes.
pub struct Pusher {
    key: tokio::sync::OnceCell<ES256KeyPair>,
    /// The VAPID subject: who push services may write to about these pushes.
    contact: String,
    allow_private: bool,
    clock: Clock,
}

/// A device's keys as the browser gave them, checked.
pub struct DeviceKeys {
    pub p256dh: p256::PublicKey,
    pub auth: Auth,
}

fn decode(what: &str, value: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| Error::bad_request(format!("{what} is not base64url")))
}

impl DeviceKeys {
    /// The keys of a subscription (`keys.p256dh`, `keys.auth`, base64url): a P-256 point and
    /// 16 bytes.
    pub fn parse(p256dh: &str, auth: &str) -> Result<DeviceKeys, Error> {
        let point = decode("keys.p256dh", p256dh)?;
        let p256dh = p256::PublicKey::from_sec1_bytes(&point)
            .map_err(|_| Error::bad_request("keys.p256dh is not a P-256 public key"))?;
        let auth = decode("keys.auth", auth)?;
        if auth.len() != 16 {
            return Err(Error::bad_request("keys.auth must be 16 bytes"));
        }
        Ok(DeviceKeys {
            p256dh,
            auth: Auth::clone_from_slice(&auth),
        })
    }
}

impl Pusher {
    /// A pusher signing as `from` (the mail sender's address).
    pub fn new(config: &PushConfig, from: &str, clock: Clock) -> Pusher {
        let address = from
            .rsplit_once('<')
            .map_or(from, |(_, a)| a.trim_end_matches('>'));
        Pusher {
            key: tokio::sync::OnceCell::new(),
            contact: format!("mailto:{}", address.trim()),
            allow_private: config.allow_private_endpoints,
            clock,
        }
    }

    /// The relay's VAPID key: the one in the database, made there by the first node that
    /// needed it.
    async fn key(&self, store: &Store) -> Result<&ES256KeyPair, Error> {
        self.key
            .get_or_try_init(|| async {
                let made = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
                let stored = store.vapid_key(&made, self.clock.now()).await?;
                let bytes = decode("the stored VAPID key", &stored)?;
                ES256KeyPair::from_bytes(&bytes)
                    .map_err(|e| Error::internal(format!("the stored VAPID key: {e}")))
            })
            .await
    }

    /// The VAPID public key, as `pushManager.subscribe` takes it (`applicationServerKey`):
    /// the uncompressed point, unpadded base64url.
    pub async fn public_key(&self, store: &Store) -> Result<String, Error> {
        let key = self.key(store).await?;
        Ok(URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed()))
    }

    /// Checks an endpoint a browser gave: an https URL (http too where private endpoints are
    /// allowed) with a host, no user or password, of bounded length; an IP address must be a
    /// public one unless private endpoints are allowed.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<url::Url, Error> {
        let bad =
            |why: &str| Error::bad_request(format!("endpoint {why}")).with_code("bad_endpoint");
        if endpoint.len() > MAX_ENDPOINT {
            return Err(bad("is too long"));
        }
        let url = url::Url::parse(endpoint).map_err(|_| bad("is not a URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(bad("must be https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not hold a user or password"));
        }
        match url.host() {
            None => Err(bad("has no host")),
            Some(url::Host::Ipv4(ip)) if !self.may_send_to(IpAddr::V4(ip)) => {
                Err(bad("names a private address"))
            }
            Some(url::Host::Ipv6(ip)) if !self.may_send_to(IpAddr::V6(ip)) => {
                Err(bad("names a private address"))
            }
            Some(_) => Ok(url),
        }
    }

    fn may_send_to(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// The address to connect to for `url`: its host resolved here, the first address the
    /// relay may send to.
    async fn address(&self, url: &url::Url) -> Result<SocketAddr, String> {
        let host = url.host_str().ok_or("no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().ok_or("no port")?;
        let found = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| "the push service's name did not resolve in time".to_owned())?
        .map_err(|e| format!("the push service's name does not resolve: {e}"))?;
        found
            .into_iter()
            .find(|a| self.may_send_to(a.ip()))
            .ok_or_else(|| "the push service resolves to no public address".to_owned())
    }

    /// Sends `payload` to `target`, encrypted to its keys and signed.
    pub async fn send(&self, store: &Store, target: &PushTarget, payload: &[u8]) -> Pushed {
        let url = match self.check_endpoint(&target.endpoint) {
            Ok(url) => url,
            Err(e) => return Pushed::Refused(e.to_string()),
        };
        let keys = match DeviceKeys::parse(&target.p256dh, &target.auth) {
            Ok(keys) => keys,
            Err(e) => return Pushed::Refused(e.to_string()),
        };
        let key = match self.key(store).await {
            Ok(key) => key,
            Err(e) => return Pushed::Retry(e.to_string()),
        };
        let address = match self.address(&url).await {
            Ok(address) => address,
            Err(why) => return Pushed::Retry(why),
        };
        let Ok(uri) = target.endpoint.parse() else {
            return Pushed::Refused("the endpoint is not a URI".into());
        };
        let request = WebPushBuilder::new(uri, keys.p256dh, keys.auth)
            .with_valid_duration(PUSH_TTL)
            .build(payload.to_vec());
        let mut request = match request.map(reqwest::Request::try_from) {
            Ok(Ok(request)) => request,
            Ok(Err(e)) => return Pushed::Refused(e.to_string()),
            Err(e) => return Pushed::Refused(e.to_string()),
        };
        match vapid(key, &url, &self.contact) {
            Ok(value) => {
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            Err(e) => return Pushed::Retry(e.to_string()),
        }
        let client = reqwest::Client::builder()
            .resolve(url.host_str().unwrap_or_default(), address)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(PUSH_TIMEOUT)
            .build();
        let client = match client {
            Ok(client) => client,
            Err(e) => return Pushed::Retry(e.to_string()),
        };
        match client.execute(request).await {
            Err(e) => Pushed::Retry(format!("the push service: {e}")),
            Ok(resp) => outcome(resp.status()),
        }
    }
}

/// RFC 8292's `Authorization: vapid t=…, k=…`: a JWT for the origin of the push resource
/// (with its port, which web-push-native's own signature leaves out), naming `contact`, valid
/// for [`PUSH_TTL`], signed with the relay's key, which `k` gives.
fn vapid(key: &ES256KeyPair, endpoint: &url::Url, contact: &str) -> Result<HeaderValue, Error> {
    let claims = Claims::create(PUSH_TTL.into())
        .with_audience(endpoint.origin().ascii_serialization())
        .with_subject(contact);
    let token = key
        .sign(claims)
        .map_err(|e| Error::internal(format!("signing a VAPID token: {e}")))?;
    let k = URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
    HeaderValue::try_from(format!("vapid t={token}, k={k}"))
        .map_err(|e| Error::internal("a VAPID header").with_source(e))
}

/// What the push service's answer means (RFC 8030 §5, §7.3).
fn outcome(status: reqwest::StatusCode) -> Pushed {
    match status.as_u16() {
        200..=299 => Pushed::Ok,
        404 | 410 => Pushed::Gone,
        429 | 500..=599 => Pushed::Retry(format!("the push service said {status}")),
        _ => Pushed::Refused(format!("the push service said {status}")),
    }
}

#[cfg(test)]
mod tests;
