use std::sync::Arc;

use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use zf_store::PasswordHash;

use crate::AppError;

/// argon2id at OWASP ASVS 5.0's floor: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;

/// Hashes and verifies passwords off the async executor, a bounded number at a time, so a
/// storm of sign-ins cannot starve other requests or exhaust memory.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the username is unknown, so that answer takes as long as any other.
    dummy: Arc<PasswordHash>,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid; `default` is unreachable but harmless.
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &SecretString) -> Result<PasswordHash, AppError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy_secret = SecretString::from(hex::encode(zf_crypto::random_bytes::<16>()));
        let dummy = hash_blocking(&dummy_secret)
            .unwrap_or_else(|_| PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$invalid".into()));
        Hasher {
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(dummy),
        }
    }

    pub async fn hash(&self, password: SecretString) -> Result<PasswordHash, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no user,
    /// and answers false in that case whatever the password.
    pub async fn verify(&self, password: SecretString, stored: Option<PasswordHash>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = stored.is_some();
        let target = stored.unwrap_or_else(|| (*self.dummy).clone());
        let ok = tokio::task::spawn_blocking(move || {
            Phc::new(&target.0).is_ok_and(|phc| {
                argon2()
                    .verify_password(password.expose_secret().as_bytes(), &phc)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = Hasher::new();
        let stored = h
            .hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(stored.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            h.verify(
                SecretString::from("correct horse battery"),
                Some(stored.clone())
            )
            .await
        );
        assert!(
            !h.verify(SecretString::from("correct horse batterY"), Some(stored))
                .await
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let h = Hasher::new();
        assert!(!h.verify(SecretString::from("anything"), None).await);
    }
}
