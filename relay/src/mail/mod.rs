//! Mail: alert mail with the snapshot to the customer's own confirmed addresses, and the
//! confirmation of new addresses; the outbox's pushes leave through [`crate::push`]. Mail is queued in the database with what it is about (see
//! `store::mail`); the [`Mailer`] sends the queue over SMTP (or into `<data_dir>/outbox` as
//! `.eml` files when no server is configured), retrying temporary failures with backoff and
//! marking permanent ones on the event. A crash loses nothing: the queue is read again at
//! start, and a mail sent just before a crash goes at most once more, with the same
//! Message-ID.

pub mod compose;

use crate::auth::Token;
use crate::cluster::Cluster;
use crate::config::{MailConfig, PushConfig};
use crate::error::{Error, ErrorKind};
use crate::objects::{ObjectKey, Objects};
use crate::push::{Pushed, Pusher};
use crate::store::{AlertPolicy, MailKind, OutboxMail, PushTarget, Store, UNSUBSCRIBE_FOR};
use eyeward::alert::recipients;
use eyeward::clock::Clock;
use eyeward::{CameraId, CustomerId, UnixMillis};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Where mail goes.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// How a send went.
enum Sent {
    Ok,
    /// Worth another try later (the server is away, or said 4xx).
    Retry(String),
    /// The server refused for good (5xx).
    Refused(String),
}

/// The delay before try `attempt` (1, 2, ...): doubling from 5 s, at most a minute, so an
/// alert leaves within a minute of the mail server's return.
pub fn retry_delay(attempt: i64) -> Duration {
    let exp = attempt.clamp(1, 8) as u32 - 1;
    Duration::from_secs(5 << exp).min(Duration::from_secs(60))
}

/// Mails a node claims at once, and how long its claim keeps them from the other nodes: long
/// enough to send them all even at the mail server's slowest (lettre's timeout is a minute);
/// past it, a node that died mid-send leaves them to another.
const MAIL_CLAIM_BATCH: u32 = 10;
const MAIL_CLAIM: Duration = Duration::from_secs(180);

/// Tries of a push before it is given up (about a quarter of an hour at [`retry_delay`]'s
/// pace): an alert much later is no alert.
const MAX_PUSH_ATTEMPTS: i64 = 20;
/// How long a push's picture link works.
const PUSH_PICTURE_FOR: Duration = Duration::from_secs(24 * 3600);

/// How often the sender looks for cameras whose alert cooldown ended with events held back.
const STORM_CHECK: Duration = Duration::from_secs(2);

/// Sends the outbox.
pub struct Mailer {
    transport: Transport,
    from: String,
    alert_cooldown: Duration,
    /// How long a camera is offline before its owner is told.
    offline_after: Duration,
    public_url: url::Url,
    /// Rung when mail was queued, so it leaves at once.
    pub wake: Notify,
    /// Sends the outbox's pushes.
    pub push: Pusher,
    clock: Clock,
}

impl Mailer {
    /// A mailer for `config`: SMTP when `smtp_url` is set, else `.eml` files in
    /// `data_dir/outbox`. Mail links start with `public_url`.
    pub fn new(
        config: &MailConfig,
        push: &PushConfig,
        data_dir: &Path,
        public_url: url::Url,
        clock: Clock,
    ) -> Result<Mailer, Error> {
        compose_check_from(&config.from)?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(smtp(url, config.ca_file.as_deref())?),
            None => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::internal(format!("cannot create {}: {e}", dir.display()))
                })?;
                Transport::Files(AsyncFileTransport::new(dir))
            }
        };
        Ok(Mailer {
            transport,
            from: config.from.clone(),
            alert_cooldown: config.alert_cooldown,
            offline_after: config.offline_after,
            public_url,
            wake: Notify::new(),
            push: Pusher::new(push, &config.from, clock),
            clock,
        })
    }

    /// The domain of this relay's Message-IDs: the sender address's.
    pub fn domain(&self) -> &str {
        self.from
            .rsplit('@')
            .next()
            .map(|d| d.trim_end_matches('>'))
            .filter(|d| !d.is_empty())
            .unwrap_or("eyeward.invalid")
    }

    /// An absolute link to `path` on this relay.
    pub fn link(&self, path: &str) -> String {
        self.public_url
            .join(path)
            .map(String::from)
            .unwrap_or_else(|_| format!("{}{path}", self.public_url))
    }

    pub fn from(&self) -> &str {
        &self.from
    }

    /// Sends due mail until the future is dropped: at once when woken, and when retries come
    /// due.
    pub async fn run(self: Arc<Self>, store: Store, snapshots: Objects, cluster: Arc<Cluster>) {
        // What waited through a stop is due at once: the restart may well be the fix.
        if let Err(e) = store
            .all_mail_due(self.clock.now(), !cluster.is_clustered())
            .await
        {
            tracing::warn!(error = %e, "the mail outbox could not be read");
        }
        loop {
            let wait = self
                .pass(&store, &snapshots, self.clock.now(), &cluster)
                .await;
            let _ = tokio::time::timeout(wait, self.wake.notified()).await;
        }
    }

    /// One pass of the sender at `now`: held alerts whose cooldown is over, scheduled arming
    /// switches and offline notices are queued (by the one node that runs the periodic jobs),
    /// and every mail due is claimed and sent (or rescheduled with [`retry_delay`]). Returns
    /// how long until the next pass is needed. Time is passed in, so tests take the sender
    /// through minutes of retries without waiting.
    pub async fn pass(
        &self,
        store: &Store,
        snapshots: &Objects,
        now: UnixMillis,
        cluster: &Cluster,
    ) -> Duration {
        if cluster.runs_jobs().await {
            self.queue_due(store, now).await;
        }
        if let Err(e) = self.send_due(store, snapshots, now, cluster.node()).await {
            tracing::warn!(error = %e, "the mail outbox could not be read");
        }
        match store.next_mail_due().await {
            Ok(Some(at)) => {
                Duration::from_millis(at.0.saturating_sub(now.0).max(0) as u64).min(STORM_CHECK)
            }
            _ => STORM_CHECK,
        }
    }

    /// Queues what came due at `now`: held alerts whose cooldown is over, scheduled arming
    /// switches' records and offline notices.
    async fn queue_due(&self, store: &Store, now: UnixMillis) {
        let flushed = store.flush_held_alerts(&self.policy(), now).await;
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "held alerts could not be queued");
        }
        if let Err(e) = store.record_scheduled_switches(now).await {
            tracing::warn!(error = %e, "scheduled arming switches could not be recorded");
        }
        let outage = UnixMillis(now.0 - self.offline_after.as_millis() as i64);
        if let Err(e) = store.queue_offline_notices(outage, now).await {
            tracing::warn!(error = %e, "offline notices could not be queued");
        }
    }

    /// How alert mail is queued: the cooldown, and our Message-ID domain.
    pub fn policy(&self) -> AlertPolicy<'_> {
        AlertPolicy {
            cooldown: self.alert_cooldown,
            domain: self.domain(),
        }
    }

    async fn send_due(
        &self,
        store: &Store,
        snapshots: &Objects,
        now: UnixMillis,
        node: i64,
    ) -> Result<(), Error> {
        loop {
            let due = store
                .claim_due_mail(now, MAIL_CLAIM_BATCH, node, now.plus(MAIL_CLAIM))
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for mail in due {
                self.send_one(store, snapshots, &mail, now).await?;
            }
        }
    }

    async fn send_one(
        &self,
        store: &Store,
        snapshots: &Objects,
        mail: &OutboxMail,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let span = tracing::info_span!("mail", id = mail.id, kind = %mail.kind);
        let _guard = span.enter();
        if mail.kind == MailKind::Push.as_str() {
            return self.push_one(store, mail, now).await;
        }
        let message = match self.render(store, snapshots, mail, now).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return store
                    .mail_ended(mail.id, "cancelled", "nothing left to send")
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot render a mail; it is kept for a retry");
                let retry = now.plus(retry_delay(mail.attempts + 1));
                return store.mail_retry(mail.id, retry, &e.to_string()).await;
            }
        };
        let envelope = Envelope::new(
            Some(compose_check_from(&self.from)?.email),
            vec![
                mail.recipient
                    .parse()
                    .map_err(|e| Error::internal("recipient").with_source(e))?,
            ],
        )
        .map_err(|e| Error::internal("envelope").with_source(e))?;
        match self.deliver(&envelope, &message).await {
            Sent::Ok => {
                tracing::info!("mail sent");
                store.mail_sent(mail.id, now).await
            }
            Sent::Retry(why) => {
                let retry = now.plus(retry_delay(mail.attempts + 1));
                tracing::warn!(%why, attempts = mail.attempts + 1, "mail not sent yet");
                store.mail_retry(mail.id, retry, &why).await
            }
            Sent::Refused(why) => {
                tracing::warn!(%why, "the mail server refused a mail for good");
                store.mail_ended(mail.id, "failed", &why).await
            }
        }
    }

    /// A push of the outbox: its device and message now (the rule once more), sent by the
    /// pusher; a device its service says is gone is removed.
    async fn push_one(
        &self,
        store: &Store,
        mail: &OutboxMail,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let (target, payload) = match self.push_message(store, mail, now).await {
            Ok(Some(prepared)) => prepared,
            Ok(None) => {
                return store
                    .mail_ended(mail.id, "cancelled", "nothing left to send")
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot prepare a push; it is kept for a retry");
                let retry = now.plus(retry_delay(mail.attempts + 1));
                return store.mail_retry(mail.id, retry, &e.to_string()).await;
            }
        };
        match self.push.send(store, &target, &payload).await {
            Pushed::Ok => {
                tracing::info!("push sent");
                store.push_sent(target.subscription, now).await?;
                store.mail_sent(mail.id, now).await
            }
            Pushed::Retry(why) if mail.attempts + 1 < MAX_PUSH_ATTEMPTS => {
                tracing::warn!(%why, attempts = mail.attempts + 1, "push not sent yet");
                let retry = now.plus(retry_delay(mail.attempts + 1));
                store.mail_retry(mail.id, retry, &why).await
            }
            Pushed::Retry(why) | Pushed::Refused(why) => {
                tracing::warn!(%why, "a push was given up");
                store.mail_ended(mail.id, "failed", &why).await
            }
            Pushed::Gone => {
                tracing::info!("the push service says the device is gone; it is removed");
                store.push_device_gone(target.subscription).await?;
                store
                    .mail_ended(mail.id, "failed", "the device is gone")
                    .await
            }
        }
    }

    /// A push's device and its message; `None` when there is nothing to send any more (the
    /// event, the camera or the device is gone, or the device's person no longer receives
    /// this camera's alerts).
    async fn push_message(
        &self,
        store: &Store,
        mail: &OutboxMail,
        now: UnixMillis,
    ) -> Result<Option<(PushTarget, Vec<u8>)>, Error> {
        let customer = CustomerId(mail.customer_id);
        let (Some(event), Some(device)) = (mail.event_id, mail.push_subscription_id) else {
            return Ok(None);
        };
        let Some(event) = store.event_of(customer, event).await? else {
            return Ok(None);
        };
        let camera_id = CameraId(event.camera_id);
        let Some(camera) = store.camera_of(customer, camera_id).await? else {
            return Ok(None);
        };
        let Some(target) = store.push_target(device, customer, camera_id, now).await? else {
            return Ok(None);
        };
        // A link of its own to the snapshot, for platforms that show pictures: the device
        // fetches it without a session.
        let picture_url = if event.snapshot_bytes > 0 {
            let token = Token::generate("ewp_");
            let expires = now.plus(PUSH_PICTURE_FOR);
            store
                .add_push_picture(&token.hash, event.id, device, expires, now)
                .await?;
            Some(self.link(&format!("/push/picture/{}", token.secret())))
        } else {
            None
        };
        let payload = compose::push(&compose::Push {
            lang: target.lang,
            camera: &camera.name,
            camera_id,
            captured_at: UnixMillis(event.captured_at),
            event_url: &self.link(&format!("/#event/{}", event.id)),
            picture_url: picture_url.as_deref(),
        })?;
        Ok(Some((target, payload)))
    }

    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Sent {
        match &self.transport {
            Transport::Smtp(t) => match t.send_raw(envelope, message).await {
                Ok(_) => Sent::Ok,
                Err(e) if e.is_permanent() => Sent::Refused(e.to_string()),
                Err(e) => Sent::Retry(e.to_string()),
            },
            Transport::Files(t) => match t.send_raw(envelope, message).await {
                Ok(_) => Sent::Ok,
                Err(e) => Sent::Retry(e.to_string()),
            },
        }
    }

    /// The message as it goes out; `None` when there is nothing to send any more (the
    /// address or the event is gone).
    async fn render(
        &self,
        store: &Store,
        snapshots: &Objects,
        mail: &OutboxMail,
        now: UnixMillis,
    ) -> Result<Option<Vec<u8>>, Error> {
        if let Some(body) = &mail.body {
            return Ok(Some(body.clone()));
        }
        let customer = CustomerId(mail.customer_id);
        // An alert's event (and so its camera); a notice has neither.
        let event = match mail.event_id {
            Some(id) => match store.event_of(customer, id).await? {
                Some(event) => Some(event),
                None => return Ok(None),
            },
            None => None,
        };
        let Some(address_id) = mail.address_id else {
            return Ok(None);
        };
        let camera = event.as_ref().map(|e| e.camera_id);
        let Some(address) = store
            .alert_recipient(address_id, customer, camera, now)
            .await?
        else {
            return Ok(None);
        };
        // The rule once more at the last moment: still the household's, still confirmed, and
        // its person still receives it (a member's rights may have changed meanwhile).
        if recipients(customer, std::slice::from_ref(&address)).is_empty() {
            return Ok(None);
        }
        // In the language of the person whose address it is.
        let Some(account) = store.account(address.person).await? else {
            return Ok(None);
        };
        // Notices get this relay's domain in their Message-ID here.
        let message_id = if mail.message_id.contains('@') {
            mail.message_id.clone()
        } else {
            format!("<{}@{}>", mail.message_id, self.domain())
        };
        // A token of its own in each mail, kept hashed, that expires.
        let unsubscribe = Token::generate("ewu_");
        store
            .add_unsubscribe_token(address.id, &unsubscribe.hash, now.plus(UNSUBSCRIBE_FOR))
            .await?;
        let unsubscribe_url = self.link(&format!("/unsubscribe/{}", unsubscribe.secret()));
        if let Some(history) = mail.history_id {
            let Some(entry) = store.history_entry(history).await? else {
                return Ok(None);
            };
            let detail: serde_json::Value =
                serde_json::from_str(&entry.detail).unwrap_or(serde_json::Value::Null);
            let camera = match detail["camera_id"].as_i64() {
                Some(id) => store
                    .camera_of(customer, CameraId(id))
                    .await?
                    .map(|c| c.name),
                None => None,
            };
            return compose::notice(&compose::Notice {
                from: &self.from,
                to: &address.email,
                message_id: &message_id,
                date: now,
                lang: account.lang,
                action: &entry.action,
                camera: camera.as_deref(),
                actor: &entry.actor_name,
                channel: &entry.channel,
                at: UnixMillis(entry.at),
                detail: &detail,
                settings_url: &self.link("/"),
                unsubscribe_url: &unsubscribe_url,
            })
            .map(Some);
        }
        let Some(event) = event else {
            return Ok(None);
        };
        let Some(camera) = store.camera_of(customer, CameraId(event.camera_id)).await? else {
            return Ok(None);
        };
        let jpeg = if event.snapshot_bytes > 0 {
            Some(snapshots.get(&ObjectKey::snapshot_of(&event)).await?)
        } else {
            None
        };
        let more = store.events_held_before(event.camera_id, event.id).await?;
        compose::alert(&compose::Alert {
            from: &self.from,
            to: &address.email,
            message_id: &message_id,
            date: now,
            lang: account.lang,
            camera: &camera.name,
            captured_at: UnixMillis(event.captured_at),
            more,
            jpeg: jpeg.as_deref(),
            live_url: &self.link(&format!("/#camera/{}", camera.id.0)),
            event_url: &self.link(&format!("/#event/{}", event.id)),
            clip_url: (event.clip_coming || event.clip_bytes > 0)
                .then(|| self.link(&format!("/#event/{}/clip", event.id)))
                .as_deref(),
            unsubscribe_url: &unsubscribe_url,
        })
        .map(Some)
    }
}

/// Checks that the SMTP server of `config` answers and takes the relay's greeting (and its
/// login, when the URL names one), for `check-config`; `false` without a server set.
pub async fn reach_smtp(config: &MailConfig) -> Result<bool, Error> {
    compose_check_from(&config.from)?;
    let Some(url) = &config.smtp_url else {
        return Ok(false);
    };
    let transport = smtp(url, config.ca_file.as_deref())?;
    match transport.test_connection().await {
        Ok(true) => Ok(true),
        Ok(false) => Err(Error::new(
            ErrorKind::Unavailable,
            "the SMTP server did not answer NOOP",
        )),
        Err(e) => {
            Err(Error::new(ErrorKind::Unavailable, "cannot reach the SMTP server").with_source(e))
        }
    }
}

/// The configured sender, checked.
fn compose_check_from(from: &str) -> Result<lettre::message::Mailbox, Error> {
    from.parse()
        .map_err(|e| Error::bad_request(format!("mail.from {from:?} is not a mail address: {e}")))
}

/// An SMTP transport for `smtp://` (STARTTLS when the server offers it) or `smtps://` (TLS
/// from the start), with the URL's user and password if any, trusting the public roots and
/// the certificates in `ca_file`.
fn smtp(
    url: &url::Url,
    ca_file: Option<&Path>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, Error> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::bad_request("mail.smtp_url needs a host"))?;
    let mut tls = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::bad_request(format!("mail.ca_file {}: {e}", path.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| Error::bad_request(format!("mail.ca_file {}: {e}", path.display())))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build()
        .map_err(|e| Error::bad_request(format!("mail.smtp_url TLS: {e}")))?;
    let (tls, default_port) = match url.scheme() {
        "smtps" => (Tls::Wrapper(tls), 465),
        _ => (Tls::Opportunistic(tls), 25),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if !url.username().is_empty() {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        builder = builder.credentials(Credentials::new(
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        ));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Audit;
    use crate::store::testing::{confirmed_address, customer, motion, porch, store};
    use eyeward::Email;

    const T0: UnixMillis = UnixMillis(1_800_000_000_000);

    fn mailer(data_dir: &Path, smtp_url: Option<url::Url>) -> Mailer {
        let config = MailConfig {
            smtp_url,
            ..MailConfig::default()
        };
        let public_url = "https://relay.example/".parse().unwrap();
        Mailer::new(
            &config,
            &PushConfig::default(),
            data_dir,
            public_url,
            Clock::real(),
        )
        .unwrap()
    }

    /// Runs the sender's passes from `from` to `until`, each when the one before asked;
    /// returns the times of the passes at which `changed` saw a change.
    async fn passes<F: Future<Output = T>, T: PartialEq>(
        mailer: &Mailer,
        store: &Store,
        snapshots: &Objects,
        (from, until): (UnixMillis, UnixMillis),
        changed: impl Fn() -> F,
    ) -> Vec<Duration> {
        let mut now = from;
        let mut changes = Vec::new();
        while now < until {
            let before = changed().await;
            let whole_service = Cluster::whole_service(store.clone());
            let wait = mailer.pass(store, snapshots, now, &whole_service).await;
            if changed().await != before {
                changes.push(Duration::from_millis(now.since(from).as_millis() as u64));
            }
            now = now.plus(wait);
        }
        changes
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(5), Duration::from_secs(60));
        assert_eq!(retry_delay(20), Duration::from_secs(60));
    }

    /// A mail server that is away: the mail is tried at once, then after 5, 10, 20 and 40 s,
    /// then every minute, and kept all along. Five simulated minutes, no waiting.
    #[tokio::test]
    async fn a_mail_the_server_cannot_take_is_tried_again_with_growing_delays_and_kept() {
        let (s, dir) = store().await;
        let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = away.local_addr().unwrap().port();
        drop(away);
        let smtp = format!("smtp://127.0.0.1:{port}").parse().unwrap();
        let mailer = mailer(dir.path(), Some(smtp));
        let snapshots = crate::objects::testing::objects(dir.path()).await;
        let owner = customer(&s, "a@example.jp").await;
        let confirm = |_: &_| Ok(b"Subject: confirm\r\n\r\nconfirm".to_vec());
        s.add_alert_address(
            owner,
            &Email::parse("home@example.jp").unwrap(),
            "c",
            T0.plus(Duration::from_secs(24 * 3600)),
            "<c@test>",
            confirm,
            &Audit::admin(T0),
        )
        .await
        .unwrap();
        let minutes = (T0, T0.plus(Duration::from_secs(300)));
        let tries = passes(&mailer, &s, &snapshots, minutes, || async {
            s.next_mail_due().await.unwrap()
        })
        .await;
        let secs: Vec<u64> = tries.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 5, 15, 35, 75, 135, 195, 255]);
        let due = s
            .due_mail(T0.plus(Duration::from_secs(3600)), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "the mail is kept");
        assert_eq!(due[0].attempts, 8);
    }

    /// Events at 0, 10 and 20 s with a minute's cooldown: the first alert leaves at once;
    /// the sender's passes flush the held ones as one mail when the minute is over, counting
    /// the other.
    #[tokio::test]
    async fn alerts_held_in_the_cooldown_leave_as_one_mail_when_it_ends() {
        let (s, dir) = store().await;
        let mailer = mailer(dir.path(), None);
        let snapshots = crate::objects::testing::objects(dir.path()).await;
        let audit = Audit::admin(T0);
        let (owner, camera) = porch(&s, &audit).await;
        confirmed_address(&s, owner, T0).await;
        for (i, secs) in [0u64, 10, 20].into_iter().enumerate() {
            let key = format!("event-{i:04}");
            snapshots
                .put(&ObjectKey::snapshot(camera.0, &key), b"jpeg".to_vec())
                .await
                .unwrap();
            let at = T0.plus(Duration::from_secs(secs));
            s.insert_event(&motion(camera, &key, at), &mailer.policy())
                .await
                .unwrap();
        }
        let outbox = dir.path().join("outbox");
        let mails = || {
            let outbox = outbox.clone();
            async move {
                let mut texts: Vec<String> = std::fs::read_dir(&outbox)
                    .unwrap()
                    .flatten()
                    .filter(|f| f.path().extension().is_some_and(|e| e == "eml"))
                    .map(|f| std::fs::read_to_string(f.path()).unwrap())
                    .collect();
                texts.sort();
                texts
            }
        };
        let two_minutes = (T0, T0.plus(Duration::from_secs(120)));
        let sent = passes(&mailer, &s, &snapshots, two_minutes, mails).await;
        // At 0 s: the alert and the mails about the address; at 60 s: the held alert.
        let secs: Vec<u64> = sent.iter().map(Duration::as_secs).collect();
        assert_eq!(
            secs,
            [0, 60],
            "the first at once, the held one when the minute ends"
        );
        let texts = mails().await;
        let alerts: Vec<_> = texts
            .iter()
            .filter(|t| t.contains("Subject: Motion: Porch"))
            .collect();
        assert_eq!(alerts.len(), 2, "{texts:?}");
        let counted = alerts
            .iter()
            .filter(|t| t.contains("And 1 more events since the last alert."))
            .count();
        assert_eq!(counted, 1, "{alerts:?}");
    }
}
