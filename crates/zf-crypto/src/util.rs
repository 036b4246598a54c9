//! Small primitives shared with the identity layer (session tokens, setup secrets).

use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG.
///
/// The caller owns the returned array; wrap it in `zeroize::Zeroizing` when it is a secret.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// Compares two byte strings in time that does not depend on where they differ, so comparing a presented token with a
/// stored one does not leak how many leading bytes were right. Lengths are not secret and may short-circuit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(constant_time_eq(b"", b""));
    }
}
