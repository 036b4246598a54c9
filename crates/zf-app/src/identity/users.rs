use secrecy::{ExposeSecret, SecretString};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::{UserId, Username};
use zf_policy::Role;
use zf_store::NewUser;

use crate::identity::check_password;
use crate::{now_ms, App, AppError};

/// A one-time password shown once to whoever started the server or created the user.
pub struct SetupSecret {
    pub username: Username,
    pub password: SecretString,
}

impl std::fmt::Debug for SetupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupSecret")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// 24 characters from an alphabet without look-alikes (0/O, 1/l/I): about 137 bits.
fn generate_password() -> SecretString {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = zf_crypto::random_bytes::<24>();
    let mut out = String::with_capacity(29);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 6 == 0 {
            out.push('-');
        }
        // 256 is not a multiple of the alphabet size; the bias is under 1% per character and
        // irrelevant at this length.
        out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
    }
    SecretString::from(out)
}

impl App {
    /// Creates the first system administrator if the deployment has no user yet, and returns
    /// its one-time password. Returns `None` on every later start, and on every node but one
    /// when several start together.
    pub async fn create_first_admin(&self) -> Result<Option<SetupSecret>, AppError> {
        if self.store.user_count().await? > 0 {
            return Ok(None);
        }
        let username = Username::parse("admin").map_err(|e| AppError::Internal(e.to_string()))?;
        let password = generate_password();
        let hash = self.hasher.hash(password.clone()).await?;
        let now = now_ms();
        let id = UserId::new_random();
        let created = self
            .store
            .user_create_first(
                NewUser {
                    id,
                    username: username.clone(),
                    role: Role::SystemAdmin,
                    password_hash: hash,
                    must_change_password: true,
                    created_at_ms: now,
                },
                AuditEvent::new(
                    now,
                    Actor::system(),
                    AuditAction::SetupAdministratorCreated,
                    Outcome::Success,
                )
                .on("user", id),
            )
            .await?;
        Ok(created.then_some(SetupSecret { username, password }))
    }

    /// Creates a user from the operator's command line. The password, given or generated, is
    /// one-time: the user must replace it at first sign-in, so no administrator ever knows a
    /// user's working password.
    pub async fn add_user(
        &self,
        username: Username,
        role: Role,
        password: Option<SecretString>,
        operator: Actor,
    ) -> Result<SetupSecret, AppError> {
        let password = match password {
            Some(p) => {
                check_password(
                    p.expose_secret(),
                    &username,
                    self.config.firm_name.as_deref(),
                    &self.config.password,
                )?;
                p
            }
            None => generate_password(),
        };
        let hash = self.hasher.hash(password.clone()).await?;
        let now = now_ms();
        let id = UserId::new_random();
        self.store
            .user_create(
                NewUser {
                    id,
                    username: username.clone(),
                    role,
                    password_hash: hash,
                    must_change_password: true,
                    created_at_ms: now,
                },
                AuditEvent::new(now, operator, AuditAction::UserCreated, Outcome::Success)
                    .on("user", id)
                    .detail(format!("role {}", role.as_str())),
            )
            .await?;
        Ok(SetupSecret { username, password })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_policy_and_differ() {
        let u = Username::parse("admin").unwrap();
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose_secret().len(), 27);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(check_password(a.expose_secret(), &u, None, &Default::default()).is_ok());
    }
}
