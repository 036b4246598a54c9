//! Who is calling: passwords, the first administrator, sign-in with its second factor,
//! sessions.
//!
//! `login` is the one path by which a password becomes a session (or, with an authenticator, a
//! short wait for the second factor that `complete_sign_in` ends), and `resolve_session` the
//! one path by which a cookie becomes a [`zf_policy::Principal`].

mod custom_roles;
mod hasher;
mod mfa;
pub mod otp;
mod password_policy;
mod recovery;
mod roles;
mod session;
mod sessions;
mod tokens;
mod users;
mod webauthn;

pub use custom_roles::{BuiltInRoleView, CustomRoleInput, CustomRoleView, RoleCatalog};
pub use hasher::Hasher;
pub use mfa::{MfaActivated, MfaStatus, TotpEnrolment};
pub use otp::{CodeFactorView, CodeSent, OtpConfig, SecondFactorMethod};
pub use password_policy::{check_password, PasswordPolicy, PasswordPolicyError, PasswordProfile};
pub use recovery::RECOVERY_CODES;
pub(crate) use roles::reason;
pub use roles::EffectivePermissions;
pub use session::LoginPolicy;
pub use session::{LoginOutcome, SessionContext, SessionToken};
pub use sessions::SessionView;
pub use tokens::{token_ref, IssuedToken, NewToken, TokenPolicy, TokenSecret, TokenView};
pub(crate) use tokens::{MinuteRates, TokenRates};
pub use users::SetupSecret;
pub use webauthn::{KeyId, KeyKind, KeyName, SecurityKeyView, WebauthnConfig};
