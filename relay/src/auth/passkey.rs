//! Passkeys (WebAuthn, through webauthn-rs): the relying party this relay is, and the three
//! ceremonies it holds with a browser: registering a passkey, signing in with one (no address
//! typed: the authenticator says whose it is) and checking a signed-in session with one (an
//! operator before the console opens). Each is started here, its state kept by the caller (in
//! the store, so that any node finishes it) and finished here. No HTTP, no database.

use crate::error::{Error, ErrorKind};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// How long a browser has to finish a ceremony (the authenticator's own timeout too).
pub const CEREMONY_TIMEOUT: Duration = Duration::from_secs(300);
/// Passkeys one account may have.
pub const MAX_PASSKEYS: usize = 10;

/// The relying party: webauthn-rs set for this relay's public URL, or why passkeys cannot be
/// offered there (browsers hold them for a domain name only, never for an IP address).
pub struct RelyingParty {
    webauthn: Result<Webauthn, String>,
}

/// A ceremony under way: what its finish needs, kept between the two requests.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    /// A registration, with the user handle the authenticator was given.
    Register {
        state: PasskeyRegistration,
        user: Uuid,
    },
    SignIn(DiscoverableAuthentication),
    Check(PasskeyAuthentication),
}

impl Ceremony {
    /// The name stored beside it (`passkey_ceremonies.kind`).
    pub fn kind(&self) -> CeremonyKind {
        match self {
            Ceremony::Register { .. } => CeremonyKind::Register,
            Ceremony::SignIn(_) => CeremonyKind::SignIn,
            Ceremony::Check(_) => CeremonyKind::Check,
        }
    }
}

/// Which ceremony: a finish takes only a state of its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    SignIn,
    Check,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::SignIn => "sign_in",
            CeremonyKind::Check => "check",
        }
    }
}

/// Who a passkey is registered for, as the authenticator shows it.
pub struct PasskeyUser<'a> {
    /// The WebAuthn user handle: one per account, kept with each of its passkeys.
    pub handle: Uuid,
    pub email: &'a str,
    pub name: &'a str,
}

impl RelyingParty {
    /// The relying party for `public_url`: its host is the RP ID, its origin the only one
    /// accepted.
    pub fn for_url(public_url: &Url) -> RelyingParty {
        let webauthn = match public_url.domain() {
            None => Err(format!(
                "passkeys need the relay's public_url to name a domain, not an IP address ({})",
                public_url.host_str().unwrap_or_default()
            )),
            Some(domain) => WebauthnBuilder::new(domain, public_url)
                .and_then(|b| b.rp_name("eyeward").timeout(CEREMONY_TIMEOUT).build())
                .map_err(|e| format!("passkeys cannot be set up for {public_url}: {e}")),
        };
        RelyingParty { webauthn }
    }

    /// Whether passkeys can be used here at all.
    pub fn offered(&self) -> bool {
        self.webauthn.is_ok()
    }

    /// Why passkeys are not offered, if they are not.
    pub fn why_not_offered(&self) -> Option<&str> {
        self.webauthn.as_ref().err().map(String::as_str)
    }

    fn webauthn(&self) -> Result<&Webauthn, Error> {
        self.webauthn.as_ref().map_err(|why| {
            Error::new(ErrorKind::FailedPrecondition, why.clone()).with_code("passkeys_not_offered")
        })
    }

    /// Starts registering a passkey for `user`, who has `existing` already (the browser will
    /// not make a second one on the same authenticator). The passkey is asked to be
    /// discoverable, so that signing in needs no address typed.
    pub fn start_registration(
        &self,
        user: &PasskeyUser<'_>,
        existing: &[Passkey],
    ) -> Result<(serde_json::Value, Ceremony), Error> {
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
        let (options, state): (CreationChallengeResponse, PasskeyRegistration) = self
            .webauthn()?
            .start_passkey_registration(user.handle, user.email, user.name, Some(exclude))
            .map_err(|e| Error::internal("passkey registration").with_source(e))?;
        let mut options = serde_json::to_value(options)
            .map_err(|e| Error::internal("passkey options").with_source(e))?;
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = "required".into();
        selection["requireResidentKey"] = true.into();
        Ok((
            options,
            Ceremony::Register {
                state,
                user: user.handle,
            },
        ))
    }

    /// Finishes a registration: the new passkey, if the browser's answer holds.
    pub fn finish_registration(
        &self,
        credential: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, Error> {
        self.webauthn()?
            .finish_passkey_registration(credential, state)
            .map_err(|e| {
                Error::bad_request(format!("the passkey could not be registered: {e}"))
                    .with_code("passkey_refused")
            })
    }

    /// Starts a sign-in with whichever of this site's passkeys the person picks.
    pub fn start_sign_in(&self) -> Result<(RequestChallengeResponse, Ceremony), Error> {
        let (mut options, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .map_err(|e| Error::internal("passkey sign-in").with_source(e))?;
        // Asked for at a button's press, not offered in the address field's autofill.
        options.mediation = None;
        Ok((options, Ceremony::SignIn(state)))
    }

    /// Which passkey a sign-in answer is made with: its user handle and credential id
    /// (unverified until [`RelyingParty::finish_sign_in`]).
    pub fn identify(&self, credential: &PublicKeyCredential) -> Result<(Uuid, String), Error> {
        let (handle, id) = self
            .webauthn()?
            .identify_discoverable_authentication(credential)
            .map_err(|e| {
                tracing::info!(error = %e, "a passkey sign-in names no user");
                passkey_refused()
            })?;
        Ok((handle, credential_key(id)))
    }

    /// Finishes a sign-in with `passkey`, the stored one the answer names.
    pub fn finish_sign_in(
        &self,
        credential: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        passkey: &Passkey,
    ) -> Result<AuthenticationResult, Error> {
        self.webauthn()?
            .finish_discoverable_authentication_v2(credential, state, passkey)
            .map_err(|e| {
                tracing::info!(error = %e, "a passkey sign-in's answer does not hold");
                passkey_refused()
            })
    }

    /// Starts checking a signed-in person with one of their `passkeys`.
    pub fn start_check(
        &self,
        passkeys: &[Passkey],
    ) -> Result<(RequestChallengeResponse, Ceremony), Error> {
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(passkeys)
            .map_err(|e| Error::internal("passkey check").with_source(e))?;
        Ok((options, Ceremony::Check(state)))
    }

    /// Finishes a check.
    pub fn finish_check(
        &self,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<AuthenticationResult, Error> {
        self.webauthn()?
            .finish_passkey_authentication(credential, state)
            .map_err(|e| {
                tracing::info!(error = %e, "a passkey check's answer does not hold");
                passkey_refused()
            })
    }
}

/// A credential id as stored: unpadded base64url.
pub fn credential_key(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// A sign-in or check that does not hold: the same words whatever was wrong, so that nothing is
/// learnt of which passkeys exist.
pub fn passkey_refused() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "this passkey is not known here, or its answer does not hold",
    )
    .with_code("passkey_refused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkeys_are_offered_for_a_domain_and_not_for_an_ip_address() {
        let domain = RelyingParty::for_url(&Url::parse("https://cam.example.jp/").unwrap());
        assert!(domain.offered());
        let localhost = RelyingParty::for_url(&Url::parse("http://localhost:8080/").unwrap());
        assert!(localhost.offered(), "browsers allow passkeys on localhost");
        let ip = RelyingParty::for_url(&Url::parse("http://127.0.0.1:8080/").unwrap());
        assert!(!ip.offered());
        assert!(ip.why_not_offered().unwrap().contains("127.0.0.1"));
        let e = ip.start_sign_in().err().unwrap();
        assert_eq!(e.given_code(), Some("passkeys_not_offered"));
    }

    #[test]
    fn a_registration_asks_for_a_discoverable_passkey_and_excludes_none_when_first() {
        let rp = RelyingParty::for_url(&Url::parse("https://cam.example.jp/").unwrap());
        let user = PasskeyUser {
            handle: Uuid::new_v4(),
            email: "taro@example.jp",
            name: "Taro",
        };
        let (options, ceremony) = rp.start_registration(&user, &[]).unwrap();
        assert_eq!(ceremony.kind(), CeremonyKind::Register);
        let o = &options["publicKey"];
        assert_eq!(o["rp"]["id"], "cam.example.jp");
        assert_eq!(o["user"]["name"], "taro@example.jp");
        assert_eq!(o["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(o["authenticatorSelection"]["userVerification"], "required");
        // Its state survives the trip through the database.
        let stored = serde_json::to_string(&ceremony).unwrap();
        let back: Ceremony = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.kind(), CeremonyKind::Register);
    }

    #[test]
    fn a_sign_in_is_asked_for_at_a_press_not_in_autofill() {
        let rp = RelyingParty::for_url(&Url::parse("https://cam.example.jp/").unwrap());
        let (options, ceremony) = rp.start_sign_in().unwrap();
        assert!(options.mediation.is_none());
        assert_eq!(ceremony.kind(), CeremonyKind::SignIn);
        let json = serde_json::to_value(&options).unwrap();
        assert_eq!(json["publicKey"]["rpId"], "cam.example.jp");
    }
}
