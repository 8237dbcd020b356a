//! Grants of household members: a member's live view and streams hold while their right
//! does, end when it is taken away or their rights change under a stream over several
//! cameras, and a guest's end at their time, by the clock passed in.

use super::*;
use crate::store::testing::{porch, store};
use crate::store::{Audit, NewInvitation};
use eyeward::household::Rights;
use eyeward::{DisplayName, Email, Language};

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);

/// Sessions that outlast every test here.
const SESSIONS: SessionPolicy = SessionPolicy {
    idle_timeout: Duration::from_secs(24 * 3600),
    max_age: Duration::from_secs(30 * 24 * 3600),
};

#[tokio::test]
async fn a_members_grant_holds_while_their_right_does_and_a_guests_ends_at_their_time() {
    let (s, _dir) = store().await;
    let audit = Audit::admin(T0);
    let (holder, camera) = porch(&s, &audit).await;
    let holder = CustomerId(holder);
    let membership = Membership {
        cameras: [(camera, Rights::of(&[Right::Watch, Right::Events]))].into(),
        until: Some(T0.plus(HOUR)),
    };
    let invitation = NewInvitation {
        email: Email::parse("sitter@example.jp").unwrap(),
        name: DisplayName::parse("Sitter").unwrap(),
        lang: Language::En,
        membership: membership.clone(),
    };
    s.invite(
        holder,
        &invitation,
        "tok",
        T0.plus(HOUR),
        "<t@test>",
        |_| Ok(vec![]),
        &audit,
    )
    .await
    .unwrap();
    let member = s.accept_invitation("tok", "h", T0).await.unwrap().unwrap();
    s.create_session("session", member.id, None, T0)
        .await
        .unwrap();
    let grant = |right| Grant::Session {
        token_hash: "session".into(),
        camera: Some(CameraGrant {
            household: holder,
            camera,
            right,
        }),
        opened_with: None,
    };
    let holds = |g: Grant, at: UnixMillis| {
        let s = s.clone();
        async move { g.holds(&s, SESSIONS, at).await }
    };

    // Checked again at the guest's end at the latest, and over from then on.
    let ten_to = T0.plus(Duration::from_secs(50 * 60));
    let next = holds(grant(Right::Watch), ten_to).await.expect("holds");
    assert!(
        next <= Duration::from_secs(10 * 60) + Duration::from_millis(100),
        "{next:?}"
    );
    assert_eq!(holds(grant(Right::Watch), T0.plus(HOUR)).await, None);
    // A right not given never held.
    assert_eq!(holds(grant(Right::Move), ten_to).await, None);

    // Watch taken away: the live view's grant ends, the events stream's holds; a stream over
    // several cameras, opened under the old rights, ends too.
    let several = Grant::Session {
        token_hash: "session".into(),
        camera: None,
        opened_with: Some(membership.clone()),
    };
    assert!(holds(several.clone(), ten_to).await.is_some());
    let fewer = Membership {
        cameras: [(camera, Rights::of(&[Right::Events]))].into(),
        until: membership.until,
    };
    let changed = Audit::admin(ten_to);
    assert!(
        s.set_membership(holder, member.id, &fewer, &changed)
            .await
            .unwrap()
    );
    assert_eq!(holds(grant(Right::Watch), ten_to).await, None);
    assert!(holds(grant(Right::Events), ten_to).await.is_some());
    assert_eq!(holds(several, ten_to).await, None);

    // Removed: nothing of theirs holds.
    assert!(s.remove_member(holder, member.id, &changed).await.unwrap());
    assert_eq!(holds(grant(Right::Events), ten_to).await, None);
}
