use zf_policy::Denied;
use zf_store::{StoreError, Unique};

/// What can go wrong in a use-case. The edge maps each variant to one status code and message;
/// only [`AppError::Internal`] carries details that must stay in the server log.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    TooLarge(String),
    /// The content is not of a kind that is accepted (decided from its bytes).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the username or password is wrong, or the account cannot sign in")]
    LoginFailed,
    #[error("the code is wrong or was used already")]
    SecondFactorFailed,
    #[error(transparent)]
    Password(#[from] crate::PasswordPolicyError),
    /// Too many requests from one caller in a window; retry later.
    #[error("{0}")]
    RateLimited(String),
    /// A service the use-case depends on (a mail server, an SMS gateway) failed; nothing was
    /// changed that the caller must undo.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(Unique::Username) => {
                AppError::Conflict("a user with this username already exists".into())
            }
            StoreError::Conflict(Unique::ClientUscc) => AppError::Conflict(
                "a client with this unified social credit code already exists".into(),
            ),
            StoreError::Conflict(Unique::MfaEnrolled) => {
                AppError::Conflict("an authenticator is already set up".into())
            }
            StoreError::Conflict(Unique::WebauthnCredential) => {
                AppError::Conflict("this security key is registered already".into())
            }
            StoreError::Conflict(Unique::CustomRole) => {
                AppError::Conflict("a custom role of this name exists already".into())
            }
            StoreError::Conflict(Unique::ErasurePending) => AppError::Conflict(
                "a request to erase this client is pending already; decide that one".into(),
            ),
            StoreError::SamePerson => AppError::Invalid(
                "you requested this erasure; approving it needs a second person".into(),
            ),
            e @ StoreError::RoleHeld(_) => AppError::Conflict(e.to_string()),
            StoreError::Conflict(Unique::Other) => {
                AppError::Conflict("the record conflicts with an existing one".into())
            }
            StoreError::VersionConflict => AppError::Conflict(
                "the record was changed by someone else; reload it and try again".into(),
            ),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<zf_crypto::CryptoError> for AppError {
    fn from(e: zf_crypto::CryptoError) -> Self {
        match e {
            // The token holding the KEK failed or is gone: nothing was written, and trying
            // again once it is back may succeed.
            zf_crypto::CryptoError::Token(e) => {
                AppError::Unavailable(format!("the key-encryption key token failed: {e}"))
            }
            e => AppError::Internal(format!("stored ciphertext failed its integrity check: {e}")),
        }
    }
}
