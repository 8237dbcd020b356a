//! The pusher's decisions without a push service: which endpoints it takes, what a device's
//! keys must be, and what each answer of a push service means.

use super::*;

fn pusher(allow_private: bool) -> Pusher {
    Pusher::new(
        &PushConfig {
            allow_private_endpoints: allow_private,
        },
        "eyeward <alerts@example.jp>",
        Clock::real(),
    )
}

#[test]
fn the_vapid_contact_is_the_senders_address() {
    assert_eq!(pusher(false).contact, "mailto:alerts@example.jp");
}

#[test]
fn endpoints_are_https_to_public_hosts_unless_private_ones_are_allowed() {
    let p = pusher(false);
    assert!(
        p.check_endpoint("https://fcm.googleapis.com/fcm/send/abc")
            .is_ok()
    );
    for bad in [
        "http://fcm.googleapis.com/fcm/send/abc",
        "https://127.0.0.1/push",
        "https://[::1]/push",
        "https://10.0.0.5/push",
        "https://169.254.169.254/latest/meta-data",
        "https://user:pw@push.example.com/x",
        "ftp://push.example.com/x",
        "not a url",
    ] {
        let e = p.check_endpoint(bad).unwrap_err();
        assert_eq!(e.given_code(), Some("bad_endpoint"), "{bad}");
    }
    let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT));
    assert!(p.check_endpoint(&long).is_err());
    let private = pusher(true);
    assert!(private.check_endpoint("http://127.0.0.1:9/push/1").is_ok());
}

#[test]
fn a_devices_keys_are_a_p256_point_and_sixteen_bytes() {
    // A browser's subscription keys (from web-push-native's own example).
    let p256dh =
        "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY";
    let auth = "_ordMnz7uTCmrpBTeUV4Bw";
    assert!(DeviceKeys::parse(p256dh, auth).is_ok());
    assert!(
        DeviceKeys::parse(p256dh, &format!("{auth}==")).is_ok(),
        "padding is taken"
    );
    assert!(
        DeviceKeys::parse(p256dh, "c2hvcnQ").is_err(),
        "auth too short"
    );
    assert!(DeviceKeys::parse("BAAA", auth).is_err(), "not a point");
    assert!(DeviceKeys::parse("!!", auth).is_err(), "not base64url");
}

#[test]
fn a_push_services_answer_says_sent_gone_retry_or_refused() {
    use reqwest::StatusCode as S;
    assert_eq!(outcome(S::CREATED), Pushed::Ok);
    assert_eq!(outcome(S::OK), Pushed::Ok);
    assert_eq!(outcome(S::GONE), Pushed::Gone);
    assert_eq!(outcome(S::NOT_FOUND), Pushed::Gone);
    assert!(matches!(outcome(S::TOO_MANY_REQUESTS), Pushed::Retry(_)));
    assert!(matches!(outcome(S::BAD_GATEWAY), Pushed::Retry(_)));
    assert!(matches!(outcome(S::FORBIDDEN), Pushed::Refused(_)));
    assert!(matches!(outcome(S::PAYLOAD_TOO_LARGE), Pushed::Refused(_)));
}

#[test]
fn the_vapid_token_is_for_the_push_resources_origin_its_port_included() {
    use std::collections::HashSet;
    use web_push_native::jwt_simple::prelude::{NoCustomClaims, VerificationOptions};
    let key = ES256KeyPair::generate();
    for (endpoint, origin) in [
        (
            "https://push.example.com/wpush/v2/abc",
            "https://push.example.com",
        ),
        ("http://127.0.0.1:8080/push/1", "http://127.0.0.1:8080"),
    ] {
        let header = vapid(&key, &endpoint.parse().unwrap(), "mailto:a@example.jp").unwrap();
        let header = header.to_str().unwrap();
        let (token, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(
            k,
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed())
        );
        let options = VerificationOptions {
            allowed_audiences: Some(HashSet::from([origin.to_owned()])),
            ..Default::default()
        };
        let claims = key
            .public_key()
            .verify_token::<NoCustomClaims>(token, Some(options))
            .unwrap();
        assert_eq!(claims.subject.as_deref(), Some("mailto:a@example.jp"));
    }
}
