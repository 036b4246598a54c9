//! Keys of the audit subsystem: the chain key that links each event to the one before it, and
//! the Ed25519 key that signs checkpoints of the chain.
//!
//! The chain is keyed (HMAC-SHA256) so that someone who can write to the database but does not
//! hold the key cannot forge a consistent event; the checkpoints are signed so that anyone
//! holding only the public key can check a copy kept outside the database.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::Mac;

use crate::encoding::length_prefix;
use crate::mac;
use crate::secret::KeyBytes;

const CHAIN_PURPOSE: &[u8] = b"zhangfang/audit-chain/v1";

/// The HMAC key of the audit hash chain; persisted only wrapped by the KEK.
pub struct AuditChainKey {
    key: KeyBytes,
}

impl AuditChainKey {
    pub fn generate() -> Self {
        Self {
            key: KeyBytes::random(),
        }
    }

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn secret(&self) -> &KeyBytes {
        &self.key
    }

    /// The link of one event: HMAC over the purpose and the event's canonical bytes (which
    /// include its position and the previous link).
    pub fn link(&self, canonical_event: &[u8]) -> [u8; 32] {
        let mut mac = mac::keyed(self.key.as_array());
        mac.update(&length_prefix(CHAIN_PURPOSE.len()));
        mac.update(CHAIN_PURPOSE);
        mac.update(canonical_event);
        let mut out = [0u8; 32];
        mac::finalize_into(mac, &mut out);
        out
    }
}

impl fmt::Debug for AuditChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditChainKey(..)")
    }
}

/// The Ed25519 key that signs audit checkpoints; its 32-byte seed is persisted only wrapped.
pub struct AuditSigningKey {
    seed: KeyBytes,
}

impl AuditSigningKey {
    pub fn generate() -> Self {
        Self {
            seed: KeyBytes::random(),
        }
    }

    pub(crate) fn from_secret(seed: KeyBytes) -> Self {
        Self { seed }
    }

    pub(crate) fn secret(&self) -> &KeyBytes {
        &self.seed
    }

    fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(self.seed.as_array())
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key().verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing_key().sign(message).to_bytes()
    }
}

impl fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditSigningKey(..)")
    }
}

/// Checks a checkpoint signature with nothing but the public key.
pub fn verify_audit_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        <[u8; 32]>::try_from(public_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    VerifyingKey::from_bytes(&pk)
        .is_ok_and(|vk| vk.verify(message, &Signature::from_bytes(&sig)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyVersion, MasterKey};

    /// RFC 8032 section 7.1, test 1: the empty message.
    #[test]
    fn ed25519_rfc8032_test_1() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = AuditSigningKey::from_secret(KeyBytes::from_slice(&seed).unwrap());
        assert_eq!(
            hex::encode(key.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify_audit_signature(&key.public_key(), b"", &sig));
        assert!(!verify_audit_signature(&key.public_key(), b"x", &sig));
    }

    #[test]
    fn links_depend_on_key_and_content() {
        let a = AuditChainKey::generate();
        let b = AuditChainKey::generate();
        assert_eq!(a.link(b"event"), a.link(b"event"));
        assert_ne!(a.link(b"event"), a.link(b"evenT"));
        assert_ne!(a.link(b"event"), b.link(b"event"));
    }

    #[test]
    fn audit_keys_wrap_and_do_not_cross_kinds() {
        let kek = MasterKey::generate().kek(KeyVersion(1));
        let chain = AuditChainKey::generate();
        let wrapped = kek.wrap_audit_chain_key(&chain, b"system:audit-chain");
        let back = kek
            .unwrap_audit_chain_key(&wrapped, b"system:audit-chain")
            .unwrap();
        assert_eq!(back.link(b"e"), chain.link(b"e"));
        assert!(kek
            .unwrap_audit_signing_key(&wrapped, b"system:audit-chain")
            .is_err());
        assert!(kek
            .unwrap_blind_index_key(&wrapped, b"system:audit-chain")
            .is_err());
        let signing = AuditSigningKey::generate();
        let w = kek.wrap_audit_signing_key(&signing, b"system:audit-signing");
        let back = kek
            .unwrap_audit_signing_key(&w, b"system:audit-signing")
            .unwrap();
        assert_eq!(back.public_key(), signing.public_key());
        assert_eq!(format!("{signing:?}"), "AuditSigningKey(..)");
    }
}
