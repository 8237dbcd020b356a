//! Mail: alert mail with the snapshot to the customer's own confirmed addresses, and the
//! confirmation of new addresses. Mail is queued in the database with what it is about (see
//! `store::mail`); the [`Mailer`] sends the queue over SMTP (or into `<data_dir>/outbox` as
//! `.eml` files when no server is configured), retrying temporary failures with backoff and
//! marking permanent ones on the event. A crash loses nothing: the queue is read again at
//! start, and a mail sent just before a crash goes at most once more, with the same
//! Message-ID.

pub mod compose;

use crate::auth::Token;
use crate::clock::Clock;
use crate::config::MailConfig;
use crate::error::Error;
use crate::files::SnapshotFiles;
use crate::store::{AlertPolicy, OutboxMail, Store, UNSUBSCRIBE_FOR};
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
    clock: Clock,
}

impl Mailer {
    /// A mailer for `config`: SMTP when `smtp_url` is set, else `.eml` files in
    /// `data_dir/outbox`. Mail links start with `public_url`.
    pub fn new(
        config: &MailConfig,
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
    pub async fn run(self: Arc<Self>, store: Store, snapshots: SnapshotFiles) {
        // What waited through a stop is due at once: the restart may well be the fix.
        if let Err(e) = store.all_mail_due(self.clock.now()).await {
            tracing::warn!(error = %e, "the mail outbox could not be read");
        }
        loop {
            let now = self.clock.now();
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
            if let Err(e) = self.send_due(&store, &snapshots).await {
                tracing::warn!(error = %e, "the mail outbox could not be read");
            }
            let wait = match store.next_mail_due().await {
                Ok(Some(at)) => {
                    Duration::from_millis(at.0.saturating_sub(self.clock.now().0).max(0) as u64)
                }
                _ => STORM_CHECK,
            };
            let _ = tokio::time::timeout(wait.min(STORM_CHECK), self.wake.notified()).await;
        }
    }

    /// How alert mail is queued: the cooldown, and our Message-ID domain.
    pub fn policy(&self) -> AlertPolicy<'_> {
        AlertPolicy {
            cooldown: self.alert_cooldown,
            domain: self.domain(),
        }
    }

    async fn send_due(&self, store: &Store, snapshots: &SnapshotFiles) -> Result<(), Error> {
        loop {
            let due = store.due_mail(self.clock.now(), 20).await?;
            if due.is_empty() {
                return Ok(());
            }
            for mail in due {
                self.send_one(store, snapshots, &mail).await?;
            }
        }
    }

    async fn send_one(
        &self,
        store: &Store,
        snapshots: &SnapshotFiles,
        mail: &OutboxMail,
    ) -> Result<(), Error> {
        let span = tracing::info_span!("mail", id = mail.id, kind = %mail.kind);
        let _guard = span.enter();
        let message = match self.render(store, snapshots, mail).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return store
                    .mail_ended(mail.id, "cancelled", "nothing left to send")
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot render a mail; it is kept for a retry");
                let retry = self.clock.now().plus(retry_delay(mail.attempts + 1));
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
                store.mail_sent(mail.id, self.clock.now()).await
            }
            Sent::Retry(why) => {
                let retry = self.clock.now().plus(retry_delay(mail.attempts + 1));
                tracing::warn!(%why, attempts = mail.attempts + 1, "mail not sent yet");
                store.mail_retry(mail.id, retry, &why).await
            }
            Sent::Refused(why) => {
                tracing::warn!(%why, "the mail server refused a mail for good");
                store.mail_ended(mail.id, "failed", &why).await
            }
        }
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
        snapshots: &SnapshotFiles,
        mail: &OutboxMail,
    ) -> Result<Option<Vec<u8>>, Error> {
        if let Some(body) = &mail.body {
            return Ok(Some(body.clone()));
        }
        let customer = CustomerId(mail.customer_id);
        let (Some(address), Some(account)) = (
            match mail.address_id {
                Some(id) => store.alert_address(id).await?,
                None => None,
            },
            store.account(mail.customer_id).await?,
        ) else {
            return Ok(None);
        };
        // The rule once more at the last moment: still theirs, still confirmed.
        if crate::store::recipients(mail.customer_id, std::slice::from_ref(&address)).is_empty() {
            return Ok(None);
        }
        // Notices get this relay's domain in their Message-ID here.
        let message_id = if mail.message_id.contains('@') {
            mail.message_id.clone()
        } else {
            format!("<{}@{}>", mail.message_id, self.domain())
        };
        // A token of its own in each mail, kept hashed, that expires.
        let unsubscribe = Token::generate("ewu_");
        store
            .add_unsubscribe_token(
                address.id,
                &unsubscribe.hash,
                self.clock.now().plus(UNSUBSCRIBE_FOR),
            )
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
                date: self.clock.now(),
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
        let Some(event_id) = mail.event_id else {
            return Ok(None);
        };
        let Some(event) = store.event_of(customer, event_id).await? else {
            return Ok(None);
        };
        let Some(camera) = store.camera_of(customer, CameraId(event.camera_id)).await? else {
            return Ok(None);
        };
        let jpeg = if event.snapshot_bytes > 0 {
            Some(snapshots.read(&event).await?)
        } else {
            None
        };
        let more = store.events_held_before(event.camera_id, event.id).await?;
        compose::alert(&compose::Alert {
            from: &self.from,
            to: &address.email,
            message_id: &message_id,
            date: self.clock.now(),
            lang: account.lang,
            camera: &camera.name,
            captured_at: UnixMillis(event.captured_at),
            more,
            jpeg: jpeg.as_deref(),
            live_url: &self.link(&format!("/#camera/{}", camera.id.0)),
            event_url: &self.link(&format!("/#event/{}", event.id)),
            unsubscribe_url: &unsubscribe_url,
        })
        .map(Some)
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

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(5), Duration::from_secs(60));
        assert_eq!(retry_delay(20), Duration::from_secs(60));
    }
}
