//! ICE lite (RFC 8445 §2.5), sans I/O: the viewer's browser checks the relay's host
//! candidates and nominates one; the relay answers the checks it can authenticate and sends
//! on the nominated path. It keeps sending there while the browser's consent checks
//! (RFC 7675) keep coming: every authentic check renews it until a path is nominated, then
//! only checks on that path.

use rtc::crypto::RTCCrypto;
use rtc::stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use rtc::shared::TransportProtocol;

/// The viewer's addresses the relay takes DTLS and RTCP from: a browser checks from each of
/// its candidates.
const MAX_CHECKED_PATHS: usize = 8;

/// How long a viewer has to nominate a path, and how long a path lives without a consent
/// check from the browser (which sends one every 5 s or so): RFC 7675's 30 s.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where datagrams go between the relay and one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub protocol: TransportProtocol,
    /// The relay's address.
    pub local: SocketAddr,
    /// The viewer's.
    pub remote: SocketAddr,
}

/// The relay's side of one viewer's ICE.
pub struct IceLite {
    /// `USERNAME` of the viewer's checks: the relay's fragment, a colon, the viewer's.
    username: String,
    password: String,
    /// Paths an authentic check came on, oldest first.
    checked: Vec<Path>,
    nominated: Option<Path>,
    /// When the nominated path last had the browser's consent (or when ICE began).
    consent: Instant,
}

impl IceLite {
    pub fn new(now: Instant, local_ufrag: &str, local_pwd: &str, remote_ufrag: &str) -> IceLite {
        IceLite {
            username: format!("{local_ufrag}:{remote_ufrag}"),
            password: local_pwd.to_owned(),
            checked: Vec::new(),
            nominated: None,
            consent: now,
        }
    }

    /// The path media goes on, once the browser has nominated one.
    pub fn nominated(&self) -> Option<Path> {
        self.nominated
    }

    /// Whether an authentic check came on `path`: only then is what else comes on it (DTLS,
    /// RTCP) the viewer's.
    pub fn checked(&self, path: Path) -> bool {
        self.checked.contains(&path)
    }

    /// When the path's consent runs out (or the wait for a nomination ends).
    pub fn expires(&self) -> Instant {
        self.consent + CONSENT_TIMEOUT
    }

    /// Answers a STUN datagram that came on `path`: the response to send back, if it was a
    /// Binding request from this viewer. A check carrying USE-CANDIDATE nominates its path
    /// (the newest nomination wins: the browser moved).
    pub fn handle_check(
        &mut self,
        now: Instant,
        path: Path,
        datagram: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Option<Vec<u8>> {
        let mut request = Message::new();
        request.unmarshal_binary(datagram).ok()?;
        if request.typ != BINDING_REQUEST {
            return None;
        }
        let username = TextAttribute::get_from_as(&request, ATTR_USERNAME).ok()?;
        if username.text != self.username {
            return None;
        }
        FINGERPRINT.check(&request).ok()?;
        MessageIntegrity::check(&mut request, self.password.as_bytes(), crypto).ok()?;
        if !self.checked.contains(&path) {
            // The oldest goes, never the nominated one.
            let nominated = self.nominated;
            if self.checked.len() == MAX_CHECKED_PATHS
                && let Some(oldest) = self.checked.iter().position(|p| Some(*p) != nominated)
            {
                self.checked.remove(oldest);
            }
            self.checked.push(path);
        }
        if request.contains(ATTR_USE_CANDIDATE) {
            self.nominated = Some(path);
        }
        // Consent is the path's the media takes: the nominated one, or before a nomination
        // (media then follows the viewer's DTLS) any the viewer checks.
        if self.nominated.is_none_or(|n| n == path) {
            self.consent = now;
        }
        let mut response = Message::new();
        response
            .build(&[
                Box::new(request.clone()),
                Box::new(BINDING_SUCCESS),
                Box::new(XorMappedAddress {
                    ip: path.remote.ip(),
                    port: path.remote.port(),
                }),
                Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                    self.password.clone(),
                    crypto,
                )),
                Box::new(FINGERPRINT),
            ])
            .ok()?;
        Some(response.raw)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rtc::stun::message::Getter;

    const PASSWORD: &str = "relaypasswordrelaypassword";

    fn path(port: u16) -> Path {
        Path {
            protocol: TransportProtocol::UDP,
            local: "10.0.0.1:3478".parse().expect("address"),
            remote: SocketAddr::from(([10, 0, 0, 2], port)),
        }
    }

    /// A browser's connectivity check, signed with `password`.
    pub(in crate::whep) fn check(username: &str, password: &str, nominate: bool) -> Vec<u8> {
        let provider = rtc::crypto::default_provider().expect("crypto");
        let mut setters: Vec<Box<dyn rtc::stun::message::Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(rtc::stun::message::TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
            Box::new(rtc::ice::attributes::priority::PriorityAttr(1)),
        ];
        if nominate {
            setters.push(Box::new(
                rtc::ice::attributes::use_candidate::UseCandidateAttr::new(),
            ));
        }
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(
                password.to_owned(),
                provider.crypto(),
            ),
        ));
        setters.push(Box::new(FINGERPRINT));
        let mut m = Message::new();
        m.build(&setters).expect("build");
        m.raw
    }

    #[test]
    fn an_authentic_check_is_answered_and_its_nomination_chooses_the_path() {
        let provider = rtc::crypto::default_provider().expect("crypto");
        let now = eyeward::clock::monotonic();
        let mut ice = IceLite::new(now, "relay", PASSWORD, "viewer");
        let reply = ice
            .handle_check(
                now,
                path(1),
                &check("relay:viewer", PASSWORD, false),
                provider.crypto(),
            )
            .expect("answered");
        let mut response = Message::new();
        response.unmarshal_binary(&reply).expect("STUN");
        assert_eq!(response.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut response, PASSWORD.as_bytes(), provider.crypto())
            .expect("signed with the relay's password");
        let mut mapped = XorMappedAddress {
            ip: [0, 0, 0, 0].into(),
            port: 0,
        };
        mapped.get_from(&response).expect("mapped address");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), path(1).remote);
        assert_eq!(ice.nominated(), None, "a check alone nominates nothing");
        let soon = now + Duration::from_millis(500);
        ice.handle_check(
            soon,
            path(3),
            &check("relay:viewer", PASSWORD, false),
            provider.crypto(),
        )
        .expect("answered");
        assert_eq!(
            ice.expires(),
            soon + CONSENT_TIMEOUT,
            "before a nomination any check renews consent"
        );
        let later = now + Duration::from_secs(1);
        ice.handle_check(
            later,
            path(2),
            &check("relay:viewer", PASSWORD, true),
            provider.crypto(),
        )
        .expect("answered");
        assert_eq!(ice.nominated(), Some(path(2)));
        assert_eq!(ice.expires(), later + CONSENT_TIMEOUT);
    }

    #[test]
    fn checks_with_another_username_or_password_are_not_answered() {
        let provider = rtc::crypto::default_provider().expect("crypto");
        let now = eyeward::clock::monotonic();
        let mut ice = IceLite::new(now, "relay", PASSWORD, "viewer");
        for (username, password) in [
            ("relay:other", PASSWORD),
            ("other:viewer", PASSWORD),
            ("relay:viewer", "not the relay's password"),
        ] {
            let datagram = check(username, password, true);
            assert!(
                ice.handle_check(now, path(1), &datagram, provider.crypto())
                    .is_none()
            );
        }
        assert!(
            ice.handle_check(now, path(1), b"garbage", provider.crypto())
                .is_none()
        );
        assert_eq!(ice.nominated(), None);
        assert_eq!(ice.expires(), now + CONSENT_TIMEOUT);
    }

    #[test]
    fn once_a_path_is_nominated_only_checks_on_it_renew_consent() {
        let provider = rtc::crypto::default_provider().expect("crypto");
        let now = eyeward::clock::monotonic();
        let mut ice = IceLite::new(now, "relay", PASSWORD, "viewer");
        let nominate = check("relay:viewer", PASSWORD, true);
        ice.handle_check(now, path(1), &nominate, provider.crypto());
        let later = now + Duration::from_secs(10);
        let plain = check("relay:viewer", PASSWORD, false);
        ice.handle_check(later, path(2), &plain, provider.crypto());
        assert_eq!(ice.expires(), now + CONSENT_TIMEOUT, "another path's check");
        ice.handle_check(later, path(1), &plain, provider.crypto());
        assert_eq!(ice.expires(), later + CONSENT_TIMEOUT);
    }
}
