//! Recovery codes: the way in when the authenticator is lost. Ten single-use codes come with a
//! confirmed authenticator and can be replaced by a new set at any time (after a fresh second
//! factor), which voids every code of the old set. Only keyed hashes are stored.

use zeroize::Zeroizing;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_crypto::BlindIndex;
use zf_domain::UserId;
use zf_policy::Grant;
use zf_store::StoreError;

use crate::{actor, App, AppError, RequestMeta, SessionContext};

/// How many recovery codes a confirmed authenticator comes with.
pub const RECOVERY_CODES: usize = 10;

/// 32 symbols, so each random byte's low five bits pick one without bias; no i, l, o, u.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_LEN: usize = 10;

pub(super) fn recovery_code() -> Zeroizing<String> {
    let bytes = Zeroizing::new(zf_crypto::random_bytes::<RECOVERY_LEN>());
    let mut code = Zeroizing::new(String::with_capacity(RECOVERY_LEN + 1));
    for (i, b) in bytes.iter().enumerate() {
        if i == RECOVERY_LEN / 2 {
            code.push('-');
        }
        code.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
    }
    code
}

/// A recovery code as typed: any case, with or without the dash and spaces, with the letters
/// people confuse with digits read as those digits.
pub(super) fn normalize_recovery_code(text: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(RECOVERY_LEN));
    for c in text.chars().filter(|c| !matches!(c, '-' | ' ')) {
        let c = match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !c.is_ascii() || !RECOVERY_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == RECOVERY_LEN).then_some(out)
}

impl App {
    /// A new set of recovery codes for `user`: the codes to show once, and what is stored.
    pub(super) fn new_recovery_codes(
        &self,
        user: UserId,
    ) -> (Vec<Zeroizing<String>>, Vec<BlindIndex>) {
        let codes: Vec<_> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes = codes
            .iter()
            .map(|c| {
                let normalized = normalize_recovery_code(c).unwrap_or_default();
                self.keys.recovery_code_index(user, &normalized)
            })
            .collect();
        (codes, hashes)
    }

    /// Replaces the signed-in user's recovery codes with a new set, shown this once; every
    /// code of the old set, used or not, stops working. Needs a confirmed authenticator (and,
    /// being critical, a fresh second factor, which the policy asks for before this runs).
    pub async fn recovery_codes_regenerate(
        &self,
        grant: &Grant,
        session: &SessionContext,
        meta: &RequestMeta,
    ) -> Result<Vec<Zeroizing<String>>, AppError> {
        let principal = &session.principal;
        let (codes, hashes) = self.new_recovery_codes(principal.user_id);
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::RecoveryCodesRegenerated,
            Outcome::Success,
        )
        .on("user", principal.username.as_str())
        .detail(format!(
            "{RECOVERY_CODES} new recovery codes; the old set is void"
        ))
        .request(meta.request_id.clone());
        self.store
            .mfa_recovery_replace(principal.user_id, hashes, event)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::Conflict(
                    "recovery codes come with an authenticator: set one up first".into(),
                ),
                other => other.into(),
            })?;
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_random_well_formed_and_read_back_as_typed() {
        let a = recovery_code();
        let b = recovery_code();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), RECOVERY_LEN + 1);
        assert_eq!(a.as_bytes()[5], b'-');
        let n = normalize_recovery_code(&a).unwrap();
        assert_eq!(n.len(), RECOVERY_LEN);
        assert_eq!(*normalize_recovery_code(&a.to_uppercase()).unwrap(), *n);
        assert_eq!(
            *normalize_recovery_code(&format!(" {} ", a.replace('-', " "))).unwrap(),
            *n
        );
        assert_eq!(
            normalize_recovery_code("IlOo0-abcde").unwrap().as_str(),
            "11000abcde"
        );
        for bad in [
            "",
            "abcde",
            "abcde-fghjk-m",
            "abcde-fghj!",
            "abcde-fghjü",
            "123456",
        ] {
            assert!(normalize_recovery_code(bad).is_none(), "{bad:?}");
        }
    }
}
