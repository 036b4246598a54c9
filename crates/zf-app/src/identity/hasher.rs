use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use zeroize::Zeroize;
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
    /// One argon2 working area per permit, allocated once. A fresh 19 MiB allocation per hash
    /// pays for page faults and the kernel's zeroing of every page, a large share of the hash's
    /// time on a small machine; an area is wiped after each use instead.
    arenas: Arc<Mutex<Vec<Arena>>>,
    /// Verified against when the username is unknown, so that answer takes as long as any other.
    dummy: Arc<PasswordHash>,
}

type Arena = Box<[Block]>;

fn params() -> Params {
    // The parameters are constants known to be valid; `default` is unreachable but harmless.
    Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default()
}

fn new_arena() -> Arena {
    vec![Block::default(); params().block_count()].into_boxed_slice()
}

fn wipe(arena: &mut [Block]) {
    arena.iter_mut().for_each(Zeroize::zeroize);
}

fn hashing_failed(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("password hashing failed: {e}"))
}

/// argon2id of `password` under a new random salt, in PHC string form.
fn hash_in(arena: &mut [Block], password: &[u8]) -> Result<PasswordHash, AppError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut raw = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut raw)
        .map_err(hashing_failed)?;
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, &mut *arena)
        .map_err(hashing_failed)?;
    let phc = Phc {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hashing_failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hashing_failed)?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Whether `password` is the one `stored` was made from. A stored hash whose parameters need
/// more memory than the arena (made under stronger settings) gets its own allocation.
fn verify_in(arena: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(phc) = Phc::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(phc.algorithm), Params::try_from(&phc))
    else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let done = if params.block_count() <= arena.len() {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, arena)
    } else {
        argon2.hash_password_into(password, salt_bytes, &mut out)
    };
    // `Output`'s equality is constant-time.
    let same = done.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected);
    out.zeroize();
    same
}

impl Hasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut arena = new_arena();
        let dummy_secret = hex::encode(zf_crypto::random_bytes::<16>());
        let dummy = hash_in(&mut arena, dummy_secret.as_bytes())
            .unwrap_or_else(|_| PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$invalid".into()));
        wipe(&mut arena);
        Hasher {
            permits: Arc::new(Semaphore::new(cores)),
            // The others are made when concurrent hashes first need them, never more than
            // there are permits: a CLI command that hashes nothing allocates no more.
            arenas: Arc::new(Mutex::new(vec![arena])),
            dummy: Arc::new(dummy),
        }
    }

    /// Runs `work` on a blocking thread with a permit and an arena, and wipes and returns the
    /// arena afterwards (an arena lost to a panic is replaced by a new allocation next time).
    async fn with_arena<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let taken = self.arenas.lock().ok().and_then(|mut a| a.pop());
        let (result, arena) = tokio::task::spawn_blocking(move || {
            let mut arena = taken.unwrap_or_else(new_arena);
            let result = work(&mut arena);
            wipe(&mut arena);
            (result, arena)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
        if let Ok(mut arenas) = self.arenas.lock() {
            arenas.push(arena);
        }
        Ok(result)
    }

    pub async fn hash(&self, password: SecretString) -> Result<PasswordHash, AppError> {
        self.with_arena(move |arena| hash_in(arena, password.expose_secret().as_bytes()))
            .await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no user,
    /// and answers false in that case whatever the password.
    pub async fn verify(&self, password: SecretString, stored: Option<PasswordHash>) -> bool {
        let known = stored.is_some();
        let target = stored.unwrap_or_else(|| (*self.dummy).clone());
        let ok = self
            .with_arena(move |arena| {
                verify_in(arena, password.expose_secret().as_bytes(), &target.0)
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
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

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

    /// Hashes stored before the arenas (made by the library's own allocation) keep verifying,
    /// and the library accepts ours: the PHC strings are the same format.
    #[tokio::test]
    async fn hashes_agree_with_the_library_both_ways() {
        let h = Hasher::new();
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let library = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let old = library
            .hash_password(b"an older pass phrase", &salt)
            .unwrap()
            .to_string();
        assert!(
            h.verify(
                SecretString::from("an older pass phrase"),
                Some(PasswordHash(old.clone()))
            )
            .await
        );
        assert!(
            !h.verify(
                SecretString::from("an older pass phrasE"),
                Some(PasswordHash(old))
            )
            .await
        );
        let ours = h
            .hash(SecretString::from("a newer pass phrase"))
            .await
            .unwrap();
        let phc = Phc::new(&ours.0).unwrap();
        assert!(library
            .verify_password(b"a newer pass phrase", &phc)
            .is_ok());
        assert!(library
            .verify_password(b"a newer pass phrasE", &phc)
            .is_err());
    }

    /// A hash made under stronger settings than ours (more memory than an arena holds) is
    /// still verified, with an allocation of its own; different passes and lanes too.
    #[tokio::test]
    async fn stronger_stored_parameters_still_verify() {
        let h = Hasher::new();
        for (m, t, p) in [(32 * 1024, 2, 1), (19 * 1024, 3, 2), (8 * 1024, 1, 1)] {
            let library = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, t, p, None).unwrap(),
            );
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            let stored = library
                .hash_password(b"same phrase", &salt)
                .unwrap()
                .to_string();
            assert!(
                h.verify(
                    SecretString::from("same phrase"),
                    Some(PasswordHash(stored.clone()))
                )
                .await,
                "m={m} t={t} p={p}"
            );
            assert!(
                !h.verify(
                    SecretString::from("other phrase"),
                    Some(PasswordHash(stored))
                )
                .await
            );
        }
    }

    #[tokio::test]
    async fn malformed_stored_hashes_never_verify() {
        let h = Hasher::new();
        for stored in [
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$invalid",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                !h.verify(SecretString::from("x"), Some(PasswordHash(stored.into())))
                    .await,
                "{stored}"
            );
        }
    }

    /// The working areas hold values derived from the password while a hash runs; none is
    /// left behind afterwards.
    #[tokio::test]
    async fn arenas_are_wiped_after_use() {
        let h = Hasher::new();
        let stored = h.hash(SecretString::from("wipe me please")).await.unwrap();
        assert!(
            h.verify(SecretString::from("wipe me please"), Some(stored))
                .await
        );
        let arenas = h.arenas.lock().unwrap();
        assert!(!arenas.is_empty());
        let zero = Block::default();
        for arena in arenas.iter() {
            assert_eq!(arena.len(), params().block_count());
            assert!(arena.iter().all(|b| b.as_ref() == zero.as_ref()));
        }
    }
}
