//! Archive segments: the oldest part of the log, past its retention, moved to a compressed file
//! that carries its own proof — a manifest with the segment's first and last links and the
//! SHA-256 of its events, signed with the audit key. `audit verify` checks archives too, and
//! the log left in the database continues from the last archived link.

use std::io::{BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zf_crypto::{verify_audit_signature, AuditSigningKey};

use crate::hex_serde;
use crate::StoredEvent;

pub const FORMAT: &str = "zhangfang-audit-archive/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveManifest {
    pub format: String,
    pub first_seq: i64,
    pub last_seq: i64,
    #[serde(with = "hex_serde")]
    pub first_prev_hash: Vec<u8>,
    #[serde(with = "hex_serde")]
    pub last_hash: Vec<u8>,
    pub count: u64,
    /// SHA-256 of the event lines exactly as stored in the file.
    #[serde(with = "hex_serde")]
    pub sha256: Vec<u8>,
    pub created_at_ms: i64,
    #[serde(with = "hex_serde")]
    pub public_key: Vec<u8>,
    #[serde(with = "hex_serde")]
    pub signature: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive cannot be read: {0}")]
    Io(#[from] std::io::Error),
    #[error("the archive is not a Zhangfang audit archive: {0}")]
    Malformed(String),
    #[error("the archive's events do not match its signed manifest: {0}")]
    Tampered(String),
    #[error("the archive is empty")]
    Empty,
}

impl ArchiveManifest {
    fn message(&self) -> Vec<u8> {
        let mut m = FORMAT.as_bytes().to_vec();
        m.extend_from_slice(&self.first_seq.to_be_bytes());
        m.extend_from_slice(&self.last_seq.to_be_bytes());
        m.extend_from_slice(&self.count.to_be_bytes());
        m.extend_from_slice(&self.created_at_ms.to_be_bytes());
        for part in [&self.first_prev_hash, &self.last_hash, &self.sha256] {
            m.extend_from_slice(&(part.len() as u32).to_be_bytes());
            m.extend_from_slice(part);
        }
        m
    }

    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        verify_audit_signature(public_key, &self.message(), &self.signature)
    }
}

#[derive(Serialize, Deserialize)]
struct ManifestLine {
    manifest: ArchiveManifest,
}

/// An archive read back: its manifest and its events in order.
pub struct Archive {
    pub manifest: ArchiveManifest,
    pub events: Vec<StoredEvent>,
}

impl Archive {
    /// Writes `events` (consecutive, oldest first) as a zstd-compressed archive to `out`.
    pub fn write(
        events: &[StoredEvent],
        created_at_ms: i64,
        key: &AuditSigningKey,
        out: impl Write,
    ) -> Result<ArchiveManifest, ArchiveError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Err(ArchiveError::Empty);
        };
        let mut z = zstd::Encoder::new(out, 9)?;
        let mut digest = Sha256::new();
        for e in events {
            let line = serde_json::to_string(e)
                .map_err(|e| ArchiveError::Malformed(e.to_string()))?
                + "\n";
            digest.update(line.as_bytes());
            z.write_all(line.as_bytes())?;
        }
        let mut manifest = ArchiveManifest {
            format: FORMAT.into(),
            first_seq: first.seq,
            last_seq: last.seq,
            first_prev_hash: first.prev_hash.clone(),
            last_hash: last.hash.clone(),
            count: events.len() as u64,
            sha256: digest.finalize().to_vec(),
            created_at_ms,
            public_key: key.public_key().to_vec(),
            signature: Vec::new(),
        };
        manifest.signature = key.sign(&manifest.message()).to_vec();
        let line = serde_json::to_string(&ManifestLine {
            manifest: manifest.clone(),
        })
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        z.write_all(line.as_bytes())?;
        z.write_all(b"\n")?;
        z.finish()?.flush()?;
        Ok(manifest)
    }

    /// Reads an archive and checks that its events are exactly the ones its manifest sealed
    /// (count, digest, first and last links, consecutive positions). The signature and the
    /// links themselves are checked by the verifier, which holds the keys.
    pub fn read(input: impl Read) -> Result<Archive, ArchiveError> {
        let reader = BufReader::new(zstd::Decoder::new(input)?);
        let mut lines: Vec<String> = Vec::new();
        for line in reader.lines() {
            lines.push(line?);
        }
        let last = lines.pop().ok_or(ArchiveError::Empty)?;
        let ManifestLine { manifest } = serde_json::from_str(&last)
            .map_err(|e| ArchiveError::Malformed(format!("manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(ArchiveError::Malformed(format!(
                "format {:?}",
                manifest.format
            )));
        }
        let mut digest = Sha256::new();
        let mut events = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            digest.update(line.as_bytes());
            digest.update(b"\n");
            events.push(
                serde_json::from_str::<StoredEvent>(line)
                    .map_err(|e| ArchiveError::Malformed(format!("event line {}: {e}", i + 1)))?,
            );
        }
        let tampered = |what: &str| Err(ArchiveError::Tampered(what.to_owned()));
        if digest.finalize().as_slice() != manifest.sha256.as_slice() {
            return tampered("the events' digest differs");
        }
        if events.len() as u64 != manifest.count {
            return tampered("the number of events differs");
        }
        match (events.first(), events.last()) {
            (Some(f), Some(l)) => {
                if f.seq != manifest.first_seq || l.seq != manifest.last_seq {
                    return tampered("the positions differ");
                }
                if f.prev_hash != manifest.first_prev_hash || l.hash != manifest.last_hash {
                    return tampered("the first or last link differs");
                }
            }
            _ => return Err(ArchiveError::Empty),
        }
        Ok(Archive { manifest, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, AuditAction, AuditEvent, Outcome, GENESIS};
    use zf_crypto::AuditChainKey;

    fn events(n: i64) -> Vec<StoredEvent> {
        let key = AuditChainKey::generate();
        let mut out: Vec<StoredEvent> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(GENESIS.to_vec(), |e| e.hash.clone());
            let e = AuditEvent::new(seq, Actor::system(), AuditAction::Login, Outcome::Success);
            out.push(StoredEvent::chained(seq, &e, &prev, &key));
        }
        out
    }

    #[test]
    fn an_archive_round_trips_and_its_manifest_is_signed() {
        let signer = AuditSigningKey::generate();
        let all = events(50);
        let mut file = Vec::new();
        let manifest = Archive::write(&all, 7, &signer, &mut file).unwrap();
        assert!(manifest.signed_by(&signer.public_key()));
        let back = Archive::read(file.as_slice()).unwrap();
        assert_eq!(back.events, all);
        assert_eq!(back.manifest, manifest);
        assert!(!manifest.signed_by(&AuditSigningKey::generate().public_key()));
    }

    #[test]
    fn an_edited_or_shortened_archive_is_refused() {
        let signer = AuditSigningKey::generate();
        let all = events(20);
        let mut file = Vec::new();
        Archive::write(&all, 7, &signer, &mut file).unwrap();
        let text = String::from_utf8(zstd::decode_all(file.as_slice()).unwrap()).unwrap();
        for forged in [
            text.replacen("\"login\"", "\"logout\"", 1),
            text.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n",
        ] {
            let packed = zstd::encode_all(forged.as_bytes(), 3).unwrap();
            assert!(matches!(
                Archive::read(packed.as_slice()),
                Err(ArchiveError::Tampered(_))
            ));
        }
        assert!(Archive::read(&b"not zstd"[..]).is_err());
    }
}
