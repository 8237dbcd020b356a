//! The household in the store: an invitation taken once into a member with its rights, the
//! holder's history naming each step and the member, the bounds, and what is refused.

use super::*;
use crate::store::testing::{customer, porch, store};
use crate::store::{Actor, Channel, NewCamera};
use eyeward::household::Right;
use eyeward::{CameraModel, CameraSource, Plan};
use std::time::Duration;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn holder_audit(holder: CustomerId, at: UnixMillis) -> Audit {
    Audit {
        actor: Actor::Customer {
            id: holder.0,
            name: "Taro".into(),
        },
        channel: Channel::Web,
        at,
    }
}

fn invitation(email: &str, camera: CameraId, rights: &[Right]) -> NewInvitation {
    NewInvitation {
        email: Email::parse(email).unwrap(),
        name: DisplayName::parse("Hanako").unwrap(),
        lang: Language::Ja,
        membership: Membership {
            cameras: [(camera, Rights::of(rights))].into(),
            until: None,
        },
    }
}

async fn invite(
    s: &Store,
    holder: CustomerId,
    new: &NewInvitation,
    token: &str,
    at: UnixMillis,
) -> Result<Invitation, Error> {
    s.invite(
        holder,
        new,
        token,
        at.plus(3 * DAY),
        &format!("<{token}@test>"),
        |_| Ok(b"invitation".to_vec()),
        &holder_audit(holder, at),
    )
    .await
}

async fn actions(s: &Store, holder: CustomerId) -> Vec<(String, String, String)> {
    let mut entries = s.history_of(holder, None, 100).await.unwrap();
    entries.reverse();
    entries
        .into_iter()
        .map(|e| (e.actor_kind, e.actor_name, e.action))
        .collect()
}

#[tokio::test]
async fn an_invitation_taken_once_makes_a_member_with_its_rights_in_the_holders_history() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    let new = invitation("hanako@example.jp", camera, &[Right::Watch, Right::Events]);
    let sent = invite(&s, holder, &new, "tok", T0).await.unwrap();
    assert_eq!(sent.state, "pending");
    assert_eq!(s.invitations(holder, T0).await.unwrap()[0].state, "pending");
    let (seen, by) = s.invitation_for("tok", T0).await.unwrap().unwrap();
    assert_eq!((seen.id, by.as_str()), (sent.id, "Taro"));

    let member = s
        .accept_invitation("tok", "hash", T0.plus(DAY))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member.role, Role::Member);
    assert_eq!(member.household, Some(holder));
    assert_eq!(member.name, "Hanako");
    assert_eq!(member.lang, Language::Ja);
    let membership = s.membership(member.id).await.unwrap().unwrap();
    assert_eq!(membership, new.membership);
    assert_eq!(s.members(holder).await.unwrap()[0].account, member);

    // Once only.
    assert!(
        s.accept_invitation("tok", "hash", T0.plus(DAY))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.invitation_for("tok", T0.plus(DAY))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.invitations(holder, T0).await.unwrap()[0].state,
        "accepted"
    );
    let mail = s.due_mail(T0, 10).await.unwrap();
    let invitations: Vec<&str> = mail
        .iter()
        .filter(|m| m.kind == "invitation")
        .map(|m| m.recipient.as_str())
        .collect();
    assert_eq!(invitations, ["hanako@example.jp"]);

    let actions = actions(&s, holder).await;
    assert_eq!(
        actions[actions.len() - 2..],
        [
            ("customer".into(), "Taro".into(), "member.invited".into()),
            ("member".into(), "Hanako".into(), "member.joined".into()),
        ]
    );
}

#[tokio::test]
async fn an_expired_or_withdrawn_invitation_makes_no_one() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    let new = invitation("hanako@example.jp", camera, &[Right::Watch]);
    invite(&s, holder, &new, "old", T0).await.unwrap();
    let late = T0.plus(3 * DAY);
    assert!(s.invitation_for("old", late).await.unwrap().is_none());
    assert!(
        s.accept_invitation("old", "h", late)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.invitations(holder, late).await.unwrap()[0].state,
        "expired"
    );

    // A new invitation to the same address withdraws a pending one.
    let first = invite(&s, holder, &new, "first", late).await.unwrap();
    let second = invite(&s, holder, &new, "second", late).await.unwrap();
    assert!(s.invitation_for("first", late).await.unwrap().is_none());
    let states: Vec<(i64, &str)> = s
        .invitations(holder, late)
        .await
        .unwrap()
        .iter()
        .map(|i| (i.id, i.state))
        .collect();
    assert_eq!(
        &states[..2],
        [(second.id, "pending"), (first.id, "withdrawn")]
    );
    assert!(
        s.withdraw_invitation(holder, second.id, &holder_audit(holder, late))
            .await
            .unwrap()
    );
    assert!(
        s.accept_invitation("second", "h", late)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.members(holder).await.unwrap().is_empty());
    // Another household cannot withdraw it (nor anything twice).
    let other = customer(&s, "b@example.jp").await;
    assert!(
        !s.withdraw_invitation(other, second.id, &holder_audit(other, late))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_invitation_is_refused_for_a_taken_address_another_households_camera_or_rights_that_make_no_sense()
 {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    let other = customer(&s, "b@example.jp").await;
    let taken = invitation("b@example.jp", camera, &[Right::Watch]);
    let e = invite(&s, holder, &taken, "t1", T0).await.unwrap_err();
    assert_eq!(e.given_code(), Some("email_taken"));
    let theirs = invitation("x@example.jp", camera, &[Right::Watch]);
    let e = invite(&s, other, &theirs, "t2", T0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let moving_blind = invitation("x@example.jp", camera, &[Right::Move]);
    let e = invite(&s, holder, &moving_blind, "t3", T0)
        .await
        .unwrap_err();
    assert_eq!(e.given_code(), Some("rights_not_allowed"));
    let camera_only = s
        .add_camera(
            NewCamera {
                customer_id: holder,
                name: DisplayName::parse("Shed").unwrap(),
                model: CameraModel::Fixed,
                plan: Plan::CameraOnly,
                source: CameraSource::Agent,
                agent_token_hash: Some("s".into()),
            },
            &Audit::admin(T0),
        )
        .await
        .unwrap();
    let guard = invitation(
        "x@example.jp",
        camera_only,
        &[Right::Watch, Right::Dispatch],
    );
    let e = invite(&s, holder, &guard, "t4", T0).await.unwrap_err();
    assert_eq!(e.given_code(), Some("rights_not_allowed"));
    assert!(s.invitations(holder, T0).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_household_holds_at_most_ten_people_and_sends_twenty_invitations_a_day() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    for n in 0..MAX_MEMBERS {
        let new = invitation(&format!("p{n}@example.jp"), camera, &[Right::Watch]);
        invite(&s, holder, &new, &format!("t{n}"), T0)
            .await
            .unwrap();
    }
    let one_more = invitation("p10@example.jp", camera, &[Right::Watch]);
    let e = invite(&s, holder, &one_more, "t10", T0).await.unwrap_err();
    assert_eq!(e.given_code(), Some("too_many_members"));
    // Expired or withdrawn invitations free their places; the day's count keeps them.
    let later = T0.plus(3 * DAY + Duration::from_secs(1));
    let audit = holder_audit(holder, later);
    for n in 0..MAX_INVITATIONS_PER_DAY {
        let new = invitation(&format!("q{n}@example.jp"), camera, &[Right::Watch]);
        let sent = invite(&s, holder, &new, &format!("u{n}"), later)
            .await
            .unwrap();
        assert!(
            s.withdraw_invitation(holder, sent.id, &audit)
                .await
                .unwrap()
        );
    }
    let e = invite(&s, holder, &one_more, "t11", later)
        .await
        .unwrap_err();
    assert_eq!(e.given_code(), Some("too_many_invitations"));
}

#[tokio::test]
async fn rights_change_and_a_member_is_removed_at_once_each_in_the_history() {
    let (s, _dir) = store().await;
    let (holder, camera) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    let new = invitation("hanako@example.jp", camera, &[Right::Watch]);
    invite(&s, holder, &new, "tok", T0).await.unwrap();
    let member = s.accept_invitation("tok", "h", T0).await.unwrap().unwrap();
    let before = s.revocation_generation().await.unwrap();
    let guest = Membership {
        cameras: [(camera, Rights::of(&[Right::Events]))].into(),
        until: Some(T0.plus(DAY)),
    };
    let audit = holder_audit(holder, T0);
    assert!(
        s.set_membership(holder, member.id, &guest, &audit)
            .await
            .unwrap()
    );
    assert_eq!(s.membership(member.id).await.unwrap().unwrap(), guest);
    assert_eq!(
        s.account(member.id).await.unwrap().unwrap().access_until,
        Some(T0.plus(DAY))
    );
    assert!(s.revocation_generation().await.unwrap() > before);
    // Not another household's member, nor rights on another household's camera.
    let other = customer(&s, "b@example.jp").await;
    assert!(
        !s.set_membership(other, member.id, &guest, &holder_audit(other, T0))
            .await
            .unwrap()
    );
    assert!(
        !s.remove_member(other, member.id, &holder_audit(other, T0))
            .await
            .unwrap()
    );

    assert!(s.remove_member(holder, member.id, &audit).await.unwrap());
    assert!(s.account(member.id).await.unwrap().is_none());
    assert!(s.members(holder).await.unwrap().is_empty());
    let names: Vec<String> = actions(&s, holder).await.into_iter().map(|a| a.2).collect();
    assert_eq!(
        names[names.len() - 2..],
        ["member.rights_changed", "member.removed"]
    );
}

/// The alert mail queued for `event`: its recipients, in order.
async fn alerted(s: &Store, event: i64) -> Vec<String> {
    let far = UnixMillis(i64::MAX / 2);
    s.due_mail(far, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "alert" && m.event_id == Some(event))
        .map(|m| m.recipient)
        .collect()
}

#[tokio::test]
async fn alerts_reach_a_members_own_addresses_for_the_cameras_given_alerts_while_their_access_lasts()
 {
    use crate::store::AlertPolicy;
    use crate::store::testing::{confirmed_address, motion};
    let (s, _dir) = store().await;
    let (holder, porch) = porch(&s, &Audit::admin(T0)).await;
    let holder = CustomerId(holder);
    let garden = s
        .add_camera(
            NewCamera {
                customer_id: holder,
                name: DisplayName::parse("Garden").unwrap(),
                model: CameraModel::Fixed,
                plan: Plan::Dispatch,
                source: CameraSource::Agent,
                agent_token_hash: Some("g".into()),
            },
            &Audit::admin(T0),
        )
        .await
        .unwrap();
    confirmed_address(&s, holder.0, T0).await;
    let mut guest = invitation("hanako@example.jp", porch, &[Right::Alerts]);
    guest
        .membership
        .cameras
        .insert(garden, Rights::of(&[Right::Watch]));
    guest.membership.until = Some(T0.plus(DAY));
    invite(&s, holder, &guest, "tok", T0).await.unwrap();
    let member = s.accept_invitation("tok", "h", T0).await.unwrap().unwrap();
    let add = |email: &'static str, hash: &'static str| {
        let s = s.clone();
        async move {
            s.add_alert_address(
                CustomerId(member.id),
                &Email::parse(email).unwrap(),
                hash,
                T0.plus(DAY),
                &format!("<{hash}@test>"),
                |_| Ok(b"confirm".to_vec()),
                &Audit::admin(T0),
            )
            .await
        }
    };
    let hers = add("hanako@example.jp", "hc").await.unwrap();
    s.confirm_alert_address("hc", T0).await.unwrap().unwrap();
    // Her address is hers: the holder's list does not show it; the history is the holder's.
    let holders: Vec<String> = s
        .alert_addresses(holder)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.email)
        .collect();
    assert_eq!(holders, ["home@example.jp"]);
    let names: Vec<String> = actions(&s, holder).await.into_iter().map(|a| a.2).collect();
    assert!(
        names.contains(&"alert_address.confirmed".to_owned()),
        "{names:?}"
    );

    let policy = AlertPolicy {
        cooldown: Duration::ZERO,
        domain: "test",
    };
    let event = |camera, key: &'static str, at| {
        let s = s.clone();
        let policy = &policy;
        async move {
            s.insert_event(&motion(camera, key, at), policy)
                .await
                .unwrap()
                .id
        }
    };
    let on_porch = event(porch, "porch-0001", T0.plus(Duration::from_secs(1))).await;
    assert_eq!(
        alerted(&s, on_porch).await,
        ["home@example.jp", "hanako@example.jp"]
    );
    let on_garden = event(garden, "garden-0001", T0.plus(Duration::from_secs(2))).await;
    assert_eq!(
        alerted(&s, on_garden).await,
        ["home@example.jp"],
        "no alerts right there"
    );

    // The sender's last check follows her access: at her end, her queued alert is not hers.
    let sent = |at| s.alert_recipient(hers.id, holder, Some(porch.0), at);
    assert!(
        sent(T0.plus(Duration::from_secs(1)))
            .await
            .unwrap()
            .unwrap()
            .receives
    );
    assert!(!sent(T0.plus(DAY)).await.unwrap().unwrap().receives);
    let later = event(porch, "porch-0002", T0.plus(DAY)).await;
    assert_eq!(
        alerted(&s, later).await,
        ["home@example.jp"],
        "her access ended"
    );

    // Five addresses in the household, hers counted.
    for (email, hash) in [("b@x.jp", "kb"), ("c@x.jp", "kc"), ("d@x.jp", "kd")] {
        add(email, hash).await.unwrap();
    }
    let e = add("e@x.jp", "ke").await.unwrap_err();
    assert_eq!(e.given_code(), Some("too_many_addresses"));
}
