//! Web Push in the store: an alert's pushes go to the devices of the household's people who
//! receive that camera's alerts and to no one else's, share the camera's cooldown with alert
//! mail, are checked once more as they leave, and a device is its person's alone to remove;
//! the one VAPID key; a push's picture link until it expires.

use super::*;
use crate::store::AlertPolicy;
use crate::store::NewInvitation;
use crate::store::testing::{customer, customer_audit, motion, porch, store};
use eyeward::household::{Membership, Right, Rights};
use eyeward::{DisplayName, Email};
use std::time::Duration;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);

fn audit(id: i64) -> Audit {
    customer_audit(id, T0)
}

async fn device(s: &Store, account: i64, role: Role, endpoint: &str) -> PushDevice {
    s.add_push_device(
        account,
        role,
        &NewDevice {
            endpoint,
            p256dh: "key",
            auth: "auth",
        },
        &audit(account),
    )
    .await
    .unwrap()
}

/// A member of `holder`'s household given `rights` on `camera`, through an invitation taken.
async fn member(s: &Store, holder: i64, camera: CameraId, email: &str, rights: &[Right]) -> i64 {
    let new = NewInvitation {
        email: Email::parse(email).unwrap(),
        name: DisplayName::parse("Hanako").unwrap(),
        lang: Language::Ja,
        membership: Membership {
            cameras: [(camera, Rights::of(rights))].into(),
            until: None,
        },
    };
    s.invite(
        CustomerId(holder),
        &new,
        email,
        T0.plus(Duration::from_secs(3600)),
        &format!("<{email}>"),
        |_| Ok(b"invitation".to_vec()),
        &audit(holder),
    )
    .await
    .unwrap();
    s.accept_invitation(email, "hash", T0)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The outbox's pushes: (event, device) each, oldest first.
async fn pushes(s: &Store) -> Vec<(Option<i64>, Option<i64>)> {
    s.due_mail(UnixMillis(i64::MAX), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "push")
        .map(|m| (m.event_id, m.push_subscription_id))
        .collect()
}

const POLICY: AlertPolicy<'static> = AlertPolicy {
    cooldown: Duration::from_secs(60),
    domain: "test",
};

#[tokio::test]
async fn an_alert_is_pushed_to_the_devices_of_those_who_receive_it_once_per_cooldown() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let other = customer(&s, "b@example.jp").await.0;
    // A member given alerts on the porch, and one given only watching.
    let alerted = member(&s, holder, camera, "m1@example.jp", &[Right::Alerts]).await;
    let watching = member(&s, holder, camera, "m2@example.jp", &[Right::Watch]).await;
    let holders = device(&s, holder, Role::Customer, "https://push.example/h").await;
    let members = device(&s, alerted, Role::Member, "https://push.example/m1").await;
    device(&s, watching, Role::Member, "https://push.example/m2").await;
    device(&s, other, Role::Customer, "https://push.example/b").await;

    let first = s
        .insert_event(&motion(camera, "push-0001", T0), &POLICY)
        .await
        .unwrap();
    assert_eq!(
        pushes(&s).await,
        [
            (Some(first.id), Some(holders.id)),
            (Some(first.id), Some(members.id))
        ]
    );
    // In the cooldown: nothing more, as for mail.
    s.insert_event(
        &motion(camera, "push-0002", T0.plus(Duration::from_secs(10))),
        &POLICY,
    )
    .await
    .unwrap();
    assert_eq!(pushes(&s).await.len(), 2);

    // As a push leaves, the rule once more: the member's alerts taken away, none for her.
    let target = s
        .push_target(members.id, CustomerId(holder), camera, T0)
        .await
        .unwrap();
    assert!(target.is_some());
    let watch_only = Membership {
        cameras: [(camera, Rights::of(&[Right::Watch]))].into(),
        until: None,
    };
    s.set_membership(CustomerId(holder), alerted, &watch_only, &Audit::admin(T0))
        .await
        .unwrap();
    let target = s
        .push_target(members.id, CustomerId(holder), camera, T0)
        .await
        .unwrap();
    assert!(target.is_none());
    // Another household's camera is never this device's.
    let target = s
        .push_target(holders.id, CustomerId(other), camera, T0)
        .await
        .unwrap();
    assert!(target.is_none());
}

#[tokio::test]
async fn a_device_is_its_persons_to_remove_and_at_most_ten_a_person() {
    let (s, _dir) = store().await;
    let alice = customer(&s, "a@example.jp").await.0;
    let bob = customer(&s, "b@example.jp").await.0;
    let d = device(&s, alice, Role::Customer, "https://push.example/1").await;
    assert_eq!(d.service, "push.example");
    assert!(
        !s.remove_push_device(bob, Role::Customer, d.id, &audit(bob))
            .await
            .unwrap()
    );
    assert_eq!(s.push_devices(alice).await.unwrap().len(), 1);
    // The same browser subscribed again by Bob (who logged in there since) becomes his.
    device(&s, bob, Role::Customer, "https://push.example/1").await;
    assert!(s.push_devices(alice).await.unwrap().is_empty());
    assert_eq!(s.push_devices(bob).await.unwrap().len(), 1);
    for n in 2..=11 {
        device(
            &s,
            alice,
            Role::Customer,
            &format!("https://push.example/{n}"),
        )
        .await;
    }
    let full = s
        .add_push_device(
            alice,
            Role::Customer,
            &NewDevice {
                endpoint: "https://push.example/12",
                p256dh: "k",
                auth: "a",
            },
            &audit(alice),
        )
        .await
        .unwrap_err();
    assert_eq!(full.given_code(), Some("too_many_devices"));
    let first = s.push_devices(alice).await.unwrap()[0].id;
    assert!(
        s.remove_push_device(alice, Role::Customer, first, &audit(alice))
            .await
            .unwrap()
    );
    let actions: Vec<String> = s
        .history_of(CustomerId(alice), None, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions[0], "push.unsubscribed");
}

#[tokio::test]
async fn every_node_signs_with_the_one_vapid_key() {
    let (s, _dir) = store().await;
    let kept = s.vapid_key("first", T0).await.unwrap();
    assert_eq!(kept, "first");
    assert_eq!(s.vapid_key("second", T0).await.unwrap(), "first");
}

#[tokio::test]
async fn a_pushs_picture_link_shows_its_event_until_it_expires_or_its_device_goes() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let d = device(&s, holder, Role::Customer, "https://push.example/h").await;
    let event = s
        .insert_event(&motion(camera, "pic-0001", T0), &POLICY)
        .await
        .unwrap();
    let until = T0.plus(Duration::from_secs(3600));
    s.add_push_picture("pic", event.id, d.id, until, T0)
        .await
        .unwrap();
    assert_eq!(
        s.push_picture("pic", T0).await.unwrap(),
        Some((CustomerId(holder), event.id))
    );
    assert_eq!(s.push_picture("pic", until).await.unwrap(), None, "expired");
    assert_eq!(s.push_picture("other", T0).await.unwrap(), None);
    s.add_push_picture("pic2", event.id, d.id, until, T0)
        .await
        .unwrap();
    s.push_device_gone(d.id).await.unwrap();
    assert_eq!(
        s.push_picture("pic2", T0).await.unwrap(),
        None,
        "its device is gone"
    );
    assert_eq!(
        pushes(&s).await,
        [(Some(event.id), None)],
        "its queued push names no device now: it is cancelled as it leaves"
    );
}
