//! Who is calling: passwords, the first administrator, sign-in, sessions.
//!
//! Multi-factor authentication, lockout and throttling attach here later: `login` is the one
//! path by which a password becomes a session, and `resolve_session` the one path by which a
//! cookie becomes a [`zf_policy::Principal`].

mod hasher;
mod password_policy;
mod roles;
mod session;
mod users;

pub use hasher::Hasher;
pub use password_policy::{check_password, PasswordPolicyError};
pub use roles::EffectivePermissions;
pub use session::LoginPolicy;
pub use session::{LoginOutcome, SessionContext, SessionToken};
pub use users::SetupSecret;
