//! WebAuthn relying-party verification (security keys and passkeys), on the `webauthn_rp`
//! library: what the browser is asked for, and the checks of what it answers — type,
//! challenge, origin, RP ID hash, user presence (and verification for passkeys), signature and
//! signature counter. "none" attestation is what we ask for; nothing here trusts a vendor.
//!
//! The ceremony state a check needs is encoded to bytes, so that the store keeps it and any node
//! can finish a ceremony another began. Keeping it single-use and bound to a session is the
//! caller's part; this module only knows the protocol.

use std::borrow::Cow;

use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{
    AllowedCredentials, AuthenticationVerificationOptions, DiscoverableCredentialRequestOptions,
    NonDiscoverableCredentialRequestOptions, SignatureCounterEnforcement,
};
use webauthn_rp::request::register::{
    CredProtect, PublicKeyCredentialCreationOptions, PublicKeyCredentialUserEntity,
    RegistrationVerificationOptions, UserHandle16, Username,
};
use webauthn_rp::request::{
    AsciiDomain, Credentials, ExtensionInfo, PublicKeyCredentialDescriptor, RpId, TimedCeremony,
};
use webauthn_rp::response::auth::error::AuthCeremonyErr;
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, AuthenticatorTransport, CredentialId, Origin};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    NonDiscoverableAuthentication16, NonDiscoverableAuthenticationServerState, Registration,
    RegistrationServerState,
};

/// Why a ceremony was refused. The messages say what is wrong without echoing what was sent.
#[derive(Debug, thiserror::Error)]
pub enum WebauthnError {
    #[error("the relying party is misconfigured: {0}")]
    Config(String),
    #[error("the authenticator's answer is malformed: {0}")]
    Malformed(String),
    #[error("the authenticator's answer was refused: {0}")]
    Refused(String),
    /// The signature counter did not move forward: two authenticators may hold the same key.
    #[error("the security key's signature counter went backwards: it may have been cloned")]
    CounterRegression,
    #[error("stored WebAuthn state is unreadable: {0}")]
    Corrupt(&'static str),
}

/// A random, per-user identifier the authenticator keeps with a passkey and returns at a
/// passwordless sign-in. It names nobody: no username or id of ours is in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserHandle([u8; 16]);

impl UserHandle {
    pub fn generate() -> Self {
        let h = UserHandle16::new();
        let mut out = [0u8; 16];
        out.copy_from_slice(h.as_ref());
        UserHandle(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebauthnError> {
        <[u8; 16]>::try_from(bytes)
            .map(UserHandle)
            .map_err(|_| WebauthnError::Corrupt("user handle"))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn lib(&self) -> Result<UserHandle16, WebauthnError> {
        UserHandle16::decode(self.0).map_err(|_| WebauthnError::Corrupt("user handle"))
    }
}

/// What kind of credential a registration asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A discoverable credential with user verification (PIN, fingerprint): it alone signs in.
    Passkey,
    /// A key that proves presence only: a second factor after the password.
    SecurityKey,
}

/// A ceremony begun: the challenge that names it, the encoded state that finishes it, and
/// the options for `navigator.credentials.create/get` (`publicKey` member), as JSON.
pub struct Begun {
    pub challenge: [u8; 16],
    pub state: Vec<u8>,
    /// Unix time in milliseconds after which the state refuses to verify.
    pub expires_at_ms: i64,
    pub options: serde_json::Value,
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Begun(..)")
    }
}

/// A verified registration: what the store keeps of the new credential.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub id: Vec<u8>,
    pub user_handle: UserHandle,
    /// The public key and static extension results, in the library's compact encoding.
    pub public_key: Vec<u8>,
    pub state: [u8; 7],
    pub sign_count: u32,
    pub transports: u8,
    /// The authenticator verified its user (PIN, biometrics) when it was made.
    pub user_verified: bool,
}

/// A registered credential as the store keeps it.
#[derive(Clone, Debug)]
pub struct StoredCredential {
    pub id: Vec<u8>,
    pub user_handle: UserHandle,
    pub public_key: Vec<u8>,
    pub state: [u8; 7],
    pub transports: u8,
}

/// The result of a verified assertion: the credential's state to store (compare-and-set against
/// the one it was read with).
#[derive(Clone, Copy, Debug)]
pub struct Asserted {
    pub state: [u8; 7],
    pub sign_count: u32,
    pub user_verified: bool,
}

/// Which credential an assertion claims to be from, read before it is verified, to look it up.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub challenge: [u8; 16],
    pub credential_id: Vec<u8>,
    pub user_handle: Option<UserHandle>,
}

/// The relying party: our RP ID (a domain) and the origins pages may call from.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    rp_id: RpId,
    origins: Vec<String>,
    name: String,
}

fn challenge_bytes(c: u128) -> [u8; 16] {
    c.to_le_bytes()
}

/// A DNS name as browsers accept for an RP ID: dot-separated labels of letters, digits and
/// inner hyphens, and not an IPv4 address.
fn is_host_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    name.len() <= 253
        && name.split('.').all(label_ok)
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

fn ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn transport_names(t: AuthTransports) -> Vec<&'static str> {
    [
        (AuthenticatorTransport::Usb, "usb"),
        (AuthenticatorTransport::Nfc, "nfc"),
        (AuthenticatorTransport::Ble, "ble"),
        (AuthenticatorTransport::Internal, "internal"),
        (AuthenticatorTransport::Hybrid, "hybrid"),
        (AuthenticatorTransport::SmartCard, "smart-card"),
    ]
    .into_iter()
    .filter(|(k, _)| t.contains(*k))
    .map(|(_, n)| n)
    .collect()
}

/// The transports a stored credential was registered with, by their WebAuthn names.
pub fn transports_of(encoded: u8) -> Vec<&'static str> {
    AuthTransports::decode(encoded)
        .map(transport_names)
        .unwrap_or_default()
}

fn descriptor(
    id: &[u8],
    transports: u8,
) -> Result<PublicKeyCredentialDescriptor<Vec<u8>>, WebauthnError> {
    Ok(PublicKeyCredentialDescriptor {
        id: CredentialId::<Vec<u8>>::decode(id.to_vec())
            .map_err(|_| WebauthnError::Corrupt("credential id"))?,
        transports: AuthTransports::decode(transports)
            .map_err(|_| WebauthnError::Corrupt("transports"))?,
    })
}

/// `{"publicKey": …}`, the argument of `navigator.credentials.create/get`.
fn options_json(value: impl serde::Serialize) -> Result<serde_json::Value, WebauthnError> {
    let inner = serde_json::to_value(value).map_err(|e| WebauthnError::Config(e.to_string()))?;
    Ok(serde_json::json!({ "publicKey": inner }))
}

fn auth_refusal(e: AuthCeremonyErr) -> WebauthnError {
    match e {
        AuthCeremonyErr::SignatureCounter => WebauthnError::CounterRegression,
        other => WebauthnError::Refused(other.to_string()),
    }
}

impl RelyingParty {
    /// `rp_id` is a domain (browsers refuse IP addresses); `origins` are the exact
    /// `scheme://host[:port]` values pages may call from.
    pub fn new(rp_id: &str, origins: Vec<String>, name: &str) -> Result<Self, WebauthnError> {
        if !is_host_name(rp_id) {
            return Err(WebauthnError::Config(format!(
                "rp_id {rp_id:?} is not a domain name (letters, digits, hyphens and dots; no IP address)"
            )));
        }
        let domain = AsciiDomain::try_from(rp_id.to_ascii_lowercase())
            .map_err(|e| WebauthnError::Config(format!("rp_id {rp_id:?}: {e}")))?;
        if origins.is_empty() {
            return Err(WebauthnError::Config("no origin".into()));
        }
        Ok(RelyingParty {
            rp_id: RpId::Domain(domain),
            origins,
            name: name.to_owned(),
        })
    }

    pub fn rp_id(&self) -> &str {
        self.rp_id.as_ref()
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn allowed(&self) -> Vec<Origin<'_>> {
        self.origins
            .iter()
            .map(|o| Origin(Cow::Borrowed(o.as_str())))
            .collect()
    }

    /// Asks for a new credential for `username`, excluding the ones the user has already (an
    /// authenticator holding one of them declines rather than make a second).
    pub fn start_registration(
        &self,
        kind: CredentialKind,
        user_handle: &UserHandle,
        username: &str,
        existing: &[(Vec<u8>, u8)],
    ) -> Result<Begun, WebauthnError> {
        let handle = user_handle.lib()?;
        let name = Username::try_from(username)
            .map_err(|e| WebauthnError::Config(format!("username: {e}")))?;
        let user = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name: None,
        };
        let exclude = existing
            .iter()
            .map(|(id, t)| descriptor(id, *t))
            .collect::<Result<Vec<_>, _>>()?;
        let options = match kind {
            CredentialKind::Passkey => {
                let mut o = PublicKeyCredentialCreationOptions::passkey(&self.rp_id, user, exclude);
                // credProtect is asked for but not made a condition: an authenticator without
                // the extension (many platform ones) would otherwise refuse to make a passkey,
                // and every passkey sign-in checks user verification here anyway.
                o.extensions.cred_protect =
                    CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
                o
            }
            CredentialKind::SecurityKey => {
                PublicKeyCredentialCreationOptions::second_factor(&self.rp_id, user, exclude)
            }
        };
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        let state = server
            .encode()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        let mut options = options_json(&client)?;
        // The library names the RP by its id; the firm's own name reads better on a key's prompt.
        if let Some(rp) = options
            .get_mut("publicKey")
            .and_then(|p| p.get_mut("rp"))
            .and_then(|rp| rp.as_object_mut())
        {
            rp.insert("name".into(), serde_json::Value::String(self.name.clone()));
        }
        Ok(Begun {
            challenge: challenge_bytes(server.sent_challenge().0),
            expires_at_ms: ms(server.expiration()),
            state,
            options,
        })
    }

    /// The challenge a registration answer says it answers, to find its ceremony.
    pub fn registration_challenge(response: &[u8]) -> Result<[u8; 16], WebauthnError> {
        let reg = Registration::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        reg.challenge_relaxed()
            .map(|c| challenge_bytes(c.0))
            .map_err(|e| WebauthnError::Malformed(e.to_string()))
    }

    /// Verifies a registration answer against the ceremony's state.
    pub fn finish_registration(
        &self,
        state: &[u8],
        response: &[u8],
    ) -> Result<NewCredential, WebauthnError> {
        let server = RegistrationServerState::<16>::decode(state)
            .map_err(|_| WebauthnError::Corrupt("registration ceremony"))?;
        let reg = Registration::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let allowed = self.allowed();
        let options = RegistrationVerificationOptions::<Origin<'_>, Origin<'_>> {
            allowed_origins: &allowed,
            error_on_unsolicited_extensions: false,
            ..RegistrationVerificationOptions::default()
        };
        let cred = server
            .verify(&self.rp_id, &reg, &options)
            .map_err(|e| WebauthnError::Refused(e.to_string()))?;
        let (id, transports, user_id, static_state, dynamic, _meta) = cred.into_parts();
        let public_key = static_state
            .encode()
            .map_err(|_| WebauthnError::Corrupt("public key"))?;
        let encoded_state = dynamic
            .encode()
            .map_err(|_| WebauthnError::Corrupt("credential state"))?;
        Ok(NewCredential {
            id: id.as_ref().to_vec(),
            user_handle: UserHandle::from_bytes(user_id.as_ref())?,
            public_key,
            state: encoded_state,
            sign_count: dynamic.sign_count,
            transports: transports
                .encode()
                .map_err(|_| WebauthnError::Corrupt("transports"))?,
            user_verified: dynamic.user_verified,
        })
    }

    /// Asks one of the user's registered credentials to sign (second factor, step-up).
    pub fn start_assertion(&self, credentials: &[(Vec<u8>, u8)]) -> Result<Begun, WebauthnError> {
        let mut allow = AllowedCredentials::with_capacity(credentials.len());
        for (id, t) in credentials {
            allow.push(descriptor(id, *t)?.into());
        }
        let options = NonDiscoverableCredentialRequestOptions::second_factor(&self.rp_id, allow)
            .map_err(|_| WebauthnError::Config("no credential to ask for".into()))?;
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        let state = server
            .encode()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        Ok(Begun {
            challenge: challenge_bytes(server.sent_challenge().0),
            expires_at_ms: ms(server.expiration()),
            state,
            options: options_json(&client)?,
        })
    }

    /// Asks for any passkey of ours, with user verification: a passwordless sign-in.
    pub fn start_passkey(&self) -> Result<Begun, WebauthnError> {
        let (server, client) = DiscoverableCredentialRequestOptions::passkey(&self.rp_id)
            .start_ceremony()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        let state = server
            .encode()
            .map_err(|e| WebauthnError::Config(e.to_string()))?;
        Ok(Begun {
            challenge: challenge_bytes(server.sent_challenge().0),
            expires_at_ms: ms(server.expiration()),
            state,
            options: options_json(&client)?,
        })
    }

    /// Which challenge and credential an assertion (second factor or step-up) claims.
    pub fn assertion_claim(response: &[u8]) -> Result<Claimed, WebauthnError> {
        let a = NonDiscoverableAuthentication16::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let challenge = a
            .challenge_relaxed()
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        Ok(Claimed {
            challenge: challenge_bytes(challenge.0),
            credential_id: a.raw_id().as_ref().to_vec(),
            user_handle: a
                .response()
                .user_handle()
                .map(|h| UserHandle::from_bytes(h.as_ref()))
                .transpose()?,
        })
    }

    /// Which challenge, credential and user a passkey assertion claims.
    pub fn passkey_claim(response: &[u8]) -> Result<Claimed, WebauthnError> {
        let a = DiscoverableAuthentication16::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let challenge = a
            .challenge_relaxed()
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        Ok(Claimed {
            challenge: challenge_bytes(challenge.0),
            credential_id: a.raw_id().as_ref().to_vec(),
            user_handle: Some(UserHandle::from_bytes(a.response().user_handle().as_ref())?),
        })
    }

    fn verification(&self) -> Vec<Origin<'_>> {
        self.allowed()
    }

    /// Verifies a second-factor assertion by one of the allowed credentials.
    pub fn finish_assertion(
        &self,
        state: &[u8],
        response: &[u8],
        stored: &StoredCredential,
    ) -> Result<Asserted, WebauthnError> {
        let server = NonDiscoverableAuthenticationServerState::decode(state)
            .map_err(|_| WebauthnError::Corrupt("authentication ceremony"))?;
        let a = NonDiscoverableAuthentication16::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let handle = stored.user_handle.lib()?;
        let mut cred = authenticated(stored, &handle)?;
        let allowed = self.verification();
        let options = verification_options(&allowed);
        server
            .verify(&self.rp_id, &a, &mut cred, &options)
            .map_err(auth_refusal)?;
        asserted(
            cred.dynamic_state(),
            uv_flag(a.response().authenticator_data()),
        )
    }

    /// Verifies a passkey assertion: user verification required, user handle checked against
    /// the stored credential's.
    pub fn finish_passkey(
        &self,
        state: &[u8],
        response: &[u8],
        stored: &StoredCredential,
    ) -> Result<Asserted, WebauthnError> {
        let server = DiscoverableAuthenticationServerState::decode(state)
            .map_err(|_| WebauthnError::Corrupt("authentication ceremony"))?;
        let a = DiscoverableAuthentication16::from_json_relaxed(response)
            .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let handle = stored.user_handle.lib()?;
        let mut cred = authenticated(stored, &handle)?;
        let allowed = self.verification();
        let options = verification_options(&allowed);
        server
            .verify(&self.rp_id, &a, &mut cred, &options)
            .map_err(auth_refusal)?;
        let uv = uv_flag(a.response().authenticator_data());
        if !uv {
            return Err(WebauthnError::Refused(
                "user verification is required".into(),
            ));
        }
        asserted(cred.dynamic_state(), uv)
    }
}

fn verification_options<'a, 'o>(
    allowed: &'a [Origin<'o>],
) -> AuthenticationVerificationOptions<'a, 'a, Origin<'o>, Origin<'o>> {
    AuthenticationVerificationOptions {
        allowed_origins: allowed,
        error_on_unsolicited_extensions: false,
        sig_counter_enforcement: SignatureCounterEnforcement::Fail,
        update_uv: true,
        ..AuthenticationVerificationOptions::default()
    }
}

type StoredKey = CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>;

fn authenticated<'c, 'u>(
    stored: &'c StoredCredential,
    handle: &'u UserHandle16,
) -> Result<AuthenticatedCredential<'c, 'u, 16, StoredKey>, WebauthnError> {
    let id = CredentialId::<&[u8]>::decode(stored.id.as_slice())
        .map_err(|_| WebauthnError::Corrupt("credential id"))?;
    let static_state = StaticState::<StoredKey>::decode(stored.public_key.as_slice())
        .map_err(|_| WebauthnError::Corrupt("public key"))?;
    let dynamic = DynamicState::decode(stored.state)
        .map_err(|_| WebauthnError::Corrupt("credential state"))?;
    AuthenticatedCredential::new(id, handle, static_state, dynamic)
        .map_err(|_| WebauthnError::Corrupt("credential"))
}

/// The UV bit of authenticator data (byte 32, after the RP ID hash), read once the library has
/// verified the data it is part of.
fn uv_flag(authenticator_data: &[u8]) -> bool {
    authenticator_data.get(32).is_some_and(|f| f & 0x04 != 0)
}

fn asserted(state: DynamicState, user_verified: bool) -> Result<Asserted, WebauthnError> {
    Ok(Asserted {
        state: state
            .encode()
            .map_err(|_| WebauthnError::Corrupt("credential state"))?,
        sign_count: state.sign_count,
        user_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rp_id_must_be_a_domain_and_an_origin_is_needed() {
        assert!(RelyingParty::new(
            "localhost",
            vec!["https://localhost:8443".into()],
            "Zhangfang"
        )
        .is_ok());
        assert!(RelyingParty::new("crm.example.cn", vec![], "Zhangfang").is_err());
        for bad in ["bad domain", "127.0.0.1", "", "-x.cn", "a..cn", "::1"] {
            assert!(
                RelyingParty::new(bad, vec!["https://x".into()], "Zhangfang").is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn options_carry_the_rp_id_and_a_fresh_challenge() {
        let rp = RelyingParty::new(
            "localhost",
            vec!["https://localhost:8443".into()],
            "Zhangfang",
        )
        .unwrap();
        let handle = UserHandle::generate();
        let a = rp
            .start_registration(CredentialKind::Passkey, &handle, "zhangsan", &[])
            .unwrap();
        let b = rp
            .start_registration(CredentialKind::SecurityKey, &handle, "zhangsan", &[])
            .unwrap();
        assert_ne!(a.challenge, b.challenge);
        let text = a.options.to_string();
        assert!(text.contains("localhost"), "{text}");
        assert_eq!(a.options["publicKey"]["rp"]["name"], "Zhangfang", "{text}");
        assert!(rp.start_assertion(&[]).is_err());
        assert!(RelyingParty::registration_challenge(b"{}").is_err());
    }
}
