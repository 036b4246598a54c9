//! Signed checkpoints: the chain's position and link at a moment, signed with the audit
//! subsystem's Ed25519 key. A copy kept outside the database (a file, a write-once bucket) lets
//! `audit verify` detect a rewritten log or a truncated tail with nothing but the public key.

use serde::{Deserialize, Serialize};
use zf_crypto::{verify_audit_signature, AuditSigningKey};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex_serde")]
    pub hash: Vec<u8>,
    pub at_ms: i64,
    #[serde(with = "hex_serde")]
    pub public_key: Vec<u8>,
    #[serde(with = "hex_serde")]
    pub signature: Vec<u8>,
}

use crate::hex_serde;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("line {line} of the checkpoint file is not a checkpoint: {reason}")]
    Malformed { line: usize, reason: String },
}

impl Checkpoint {
    fn message(seq: i64, hash: &[u8], at_ms: i64) -> Vec<u8> {
        let mut m = b"zhangfang/audit-checkpoint/v1".to_vec();
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&at_ms.to_be_bytes());
        m.extend_from_slice(hash);
        m
    }

    pub fn sign(seq: i64, hash: &[u8], at_ms: i64, key: &AuditSigningKey) -> Self {
        Checkpoint {
            seq,
            hash: hash.to_vec(),
            at_ms,
            public_key: key.public_key().to_vec(),
            signature: key.sign(&Self::message(seq, hash, at_ms)).to_vec(),
        }
    }

    /// Whether `public_key` signed exactly this checkpoint.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        verify_audit_signature(
            public_key,
            &Self::message(self.seq, &self.hash, self.at_ms),
            &self.signature,
        )
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a file of JSON lines as written by [`Checkpoint::to_json_line`]; blank lines are
    /// ignored.
    pub fn parse_lines(text: &str) -> Result<Vec<Checkpoint>, CheckpointFileError> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| CheckpointFileError::Malformed {
                    line: i + 1,
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_round_trip_and_detect_changes() {
        let key = AuditSigningKey::generate();
        let cp = Checkpoint::sign(42, &[7; 32], 1_700_000_000_000, &key);
        assert!(cp.signed_by(&key.public_key()));
        let back = Checkpoint::parse_lines(&format!("{}\n\n", cp.to_json_line())).unwrap();
        assert_eq!(back, vec![cp.clone()]);
        let mut moved = cp.clone();
        moved.seq = 41;
        assert!(!moved.signed_by(&key.public_key()));
        let mut rehashed = cp.clone();
        rehashed.hash[0] ^= 1;
        assert!(!rehashed.signed_by(&key.public_key()));
        assert!(!cp.signed_by(&AuditSigningKey::generate().public_key()));
        assert!(Checkpoint::parse_lines("{\"seq\": 1}").is_err());
    }
}
