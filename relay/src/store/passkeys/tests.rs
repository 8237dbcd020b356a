//! Passkeys in the store: one account's passkey is never another's to remove, removing one
//! ends the sessions it signed in (but the remover's), the administrator's reset ends them all,
//! the bound per account, and a ceremony taken once, by its own session, before it expires.
//! `passkey.json` is a passkey Chromium's virtual authenticator registered (a public key).

use super::*;
use crate::auth::RelyingParty;
use crate::store::testing::{customer, customer_audit, store};
use webauthn_rs::prelude::Url;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);

fn credential() -> Passkey {
    serde_json::from_str(include_str!("passkey.json")).unwrap()
}

fn audit(id: i64) -> Audit {
    customer_audit(id, T0)
}

async fn add(s: &Store, account: i64, credential_id: &str, session: &str) -> Result<i64, Error> {
    s.add_passkey(
        NewPasskey {
            account_id: account,
            role: Role::Customer,
            name: "Laptop",
            user_handle: Uuid::nil(),
            credential_id,
            credential: &credential(),
        },
        session,
        &audit(account),
    )
    .await
}

async fn session_passkey(s: &Store, token_hash: &str) -> Option<Option<i64>> {
    s.session(token_hash).await.unwrap().map(|r| r.passkey)
}

#[tokio::test]
async fn a_removed_passkey_ends_its_sessions_and_is_no_one_elses_to_remove() {
    let (s, _dir) = store().await;
    let alice = customer(&s, "a@example.jp").await.0;
    let bob = customer(&s, "b@example.jp").await.0;
    s.create_session("alice-laptop", alice, None, T0)
        .await
        .unwrap();
    let id = add(&s, alice, "cred-1", "alice-laptop").await.unwrap();
    assert_eq!(session_passkey(&s, "alice-laptop").await, Some(Some(id)));
    s.create_session("alice-phone", alice, Some(id), T0)
        .await
        .unwrap();
    s.create_session("alice-desk", alice, None, T0)
        .await
        .unwrap();

    let found = s.passkey_by_credential("cred-1").await.unwrap().unwrap();
    assert_eq!(
        (found.account_id, found.entry.name.as_str()),
        (alice, "Laptop")
    );
    assert_eq!(found.credential.cred_id(), credential().cred_id());

    // Bob cannot remove it, by its id or otherwise.
    assert!(
        !s.remove_passkey(bob, Role::Customer, id, "x", &audit(bob))
            .await
            .unwrap()
    );
    assert_eq!(s.passkeys(alice).await.unwrap().len(), 1);

    // Alice removes it from her desk: what it signed in ends, the desk's session stays.
    assert!(
        s.remove_passkey(alice, Role::Customer, id, "alice-desk", &audit(alice))
            .await
            .unwrap()
    );
    assert!(s.session("alice-laptop").await.unwrap().is_none());
    assert!(s.session("alice-phone").await.unwrap().is_none());
    assert!(s.session("alice-desk").await.unwrap().is_some());
    assert!(s.passkey_by_credential("cred-1").await.unwrap().is_none());
    let actions: Vec<String> = s
        .history_of(eyeward::CustomerId(alice), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.starts_with(&["passkey.removed".into(), "passkey.added".into()]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_credential_is_stored_once_and_an_account_has_at_most_ten() {
    let (s, _dir) = store().await;
    let alice = customer(&s, "a@example.jp").await.0;
    let bob = customer(&s, "b@example.jp").await.0;
    add(&s, alice, "cred-0", "none").await.unwrap();
    let taken = add(&s, bob, "cred-0", "none").await.unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::FailedPrecondition);
    for n in 1..MAX_PASSKEYS {
        add(&s, alice, &format!("cred-{n}"), "none").await.unwrap();
    }
    let full = add(&s, alice, "one-more", "none").await.unwrap_err();
    assert_eq!(full.given_code(), Some("too_many_passkeys"));
}

#[tokio::test]
async fn the_administrators_reset_removes_every_passkey_and_ends_every_session() {
    let (s, _dir) = store().await;
    let alice = customer(&s, "a@example.jp").await.0;
    s.create_session("alice", alice, None, T0).await.unwrap();
    add(&s, alice, "cred-1", "alice").await.unwrap();
    add(&s, alice, "cred-2", "alice").await.unwrap();
    let admin = Audit::admin(T0);
    assert!(
        s.remove_all_passkeys(Role::Customer, alice, &admin)
            .await
            .unwrap()
    );
    assert!(s.passkeys(alice).await.unwrap().is_empty());
    assert!(s.session("alice").await.unwrap().is_none());
    // Not an operator's id, nor anyone's.
    assert!(
        !s.remove_all_passkeys(Role::Operator, alice, &admin)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_all_passkeys(Role::Customer, 999, &admin)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_ceremony_is_taken_once_by_its_own_session_before_it_expires() {
    let (s, _dir) = store().await;
    let rp = RelyingParty::for_url(&Url::parse("https://cam.example.jp/").unwrap());
    let timeout = Duration::from_secs(300);
    let (_, sign_in) = rp.start_sign_in().unwrap();
    s.begin_ceremony("c1", &sign_in, None, T0, timeout)
        .await
        .unwrap();
    // Of another kind: not this one.
    assert!(
        s.take_ceremony("c1", CeremonyKind::Check, None, T0)
            .await
            .unwrap()
            .is_none()
    );
    let (_, sign_in) = rp.start_sign_in().unwrap();
    s.begin_ceremony("c2", &sign_in, None, T0, timeout)
        .await
        .unwrap();
    assert!(
        s.take_ceremony("c2", CeremonyKind::SignIn, None, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.take_ceremony("c2", CeremonyKind::SignIn, None, T0)
            .await
            .unwrap()
            .is_none(),
        "once"
    );

    // A check belongs to its session; past its time it is gone.
    let (_, check) = rp.start_check(&[credential()]).unwrap();
    s.begin_ceremony("c3", &check, Some("mine"), T0, timeout)
        .await
        .unwrap();
    assert!(
        s.take_ceremony("c3", CeremonyKind::Check, Some("theirs"), T0)
            .await
            .unwrap()
            .is_none()
    );
    let (_, check) = rp.start_check(&[credential()]).unwrap();
    s.begin_ceremony("c4", &check, Some("mine"), T0, timeout)
        .await
        .unwrap();
    let late = T0.plus(timeout);
    assert!(
        s.take_ceremony("c4", CeremonyKind::Check, Some("mine"), late)
            .await
            .unwrap()
            .is_none()
    );
    let (_, check) = rp.start_check(&[credential()]).unwrap();
    s.begin_ceremony("c5", &check, Some("mine"), T0, timeout)
        .await
        .unwrap();
    let taken = s
        .take_ceremony("c5", CeremonyKind::Check, Some("mine"), T0)
        .await
        .unwrap();
    assert!(matches!(taken, Some(Ceremony::Check(_))));
    // Expired ones are cleared when the next begins.
    s.begin_ceremony("c6", &check, None, late, timeout)
        .await
        .unwrap();
    assert!(
        s.take_ceremony("c4", CeremonyKind::Check, Some("mine"), T0)
            .await
            .unwrap()
            .is_none()
    );
}
