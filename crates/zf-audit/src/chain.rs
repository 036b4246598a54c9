//! The hash chain: each stored event carries the link of the one before it and its own link,
//! an HMAC over its canonical bytes. Editing, deleting, inserting or reordering any event breaks
//! a link that only the holder of the chain key could mend.

use zf_crypto::AuditChainKey;

use crate::{AuditEvent, StoredEvent};

/// The `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

fn put(out: &mut Vec<u8>, part: Option<&[u8]>) {
    match part {
        // A length no real field can have marks "absent", so `None` and `""` differ.
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        Some(bytes) => {
            out.extend_from_slice(
                &u32::try_from(bytes.len())
                    .unwrap_or(u32::MAX - 1)
                    .to_be_bytes(),
            );
            out.extend_from_slice(bytes);
        }
    }
}

impl StoredEvent {
    /// The row an event becomes at position `seq` after `prev_hash`, with its link computed.
    pub fn chained(seq: i64, event: &AuditEvent, prev_hash: &[u8], key: &AuditChainKey) -> Self {
        let mut row = StoredEvent {
            seq,
            id: event.id.to_string(),
            at_ms: event.at_ms,
            actor_user_id: event.actor.user_id.map(|u| u.to_string()),
            actor_name: event.actor.name.clone(),
            session_ref: event.actor.session_ref.clone(),
            source: event.actor.source.clone(),
            device: event.actor.device.clone(),
            action: event.action.as_str().to_owned(),
            resource: event.resource.map(str::to_owned),
            record_id: event.record_id.clone(),
            fields: event.fields_json(),
            outcome: event.outcome.as_str().to_owned(),
            request_id: event.request_id.clone(),
            detail: event.detail.clone(),
            prev_hash: prev_hash.to_vec(),
            hash: Vec::new(),
        };
        row.hash = key.link(&row.canonical()).to_vec();
        row
    }

    /// Every stored column but the link itself, in a fixed, unambiguous encoding.
    pub fn canonical(&self) -> Vec<u8> {
        self.canonical_at(self.seq)
    }

    /// The canonical bytes as if the event stood at `seq`; verification uses it to recognise a
    /// genuine event that was moved.
    pub fn canonical_at(&self, seq: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"zhangfang/audit-event/v1");
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for part in [
            Some(self.id.as_bytes()),
            self.actor_user_id.as_deref().map(str::as_bytes),
            Some(self.actor_name.as_bytes()),
            self.session_ref.as_deref().map(str::as_bytes),
            self.source.as_deref().map(str::as_bytes),
            self.device.as_deref().map(str::as_bytes),
            Some(self.action.as_bytes()),
            self.resource.as_deref().map(str::as_bytes),
            self.record_id.as_deref().map(str::as_bytes),
            Some(self.fields.as_bytes()),
            Some(self.outcome.as_bytes()),
            self.request_id.as_deref().map(str::as_bytes),
            self.detail.as_deref().map(str::as_bytes),
            Some(self.prev_hash.as_slice()),
        ] {
            put(&mut out, part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, AuditAction, Outcome};

    fn event() -> AuditEvent {
        AuditEvent::new(
            1_700_000_000_000,
            Actor::system(),
            AuditAction::Login,
            Outcome::Success,
        )
    }

    #[test]
    fn every_column_is_covered_by_the_link() {
        let key = AuditChainKey::generate();
        let row = StoredEvent::chained(
            7,
            &event().on("clients", "c1").fields(&["name"]),
            &GENESIS,
            &key,
        );
        assert_eq!(row.hash, key.link(&row.canonical()).to_vec());
        let edits: [fn(&mut StoredEvent); 16] = [
            |r| r.seq += 1,
            |r| r.at_ms += 1,
            |r| r.id.push('x'),
            |r| r.actor_user_id = Some("u".into()),
            |r| r.actor_name.push('x'),
            |r| r.session_ref = Some(String::new()),
            |r| r.source = Some("10.0.0.1".into()),
            |r| r.device = Some("curl/8".into()),
            |r| r.action = "logout".into(),
            |r| r.resource = None,
            |r| r.record_id = Some("c2".into()),
            |r| r.fields = "[]".into(),
            |r| r.outcome = "denied".into(),
            |r| r.request_id = Some("r".into()),
            |r| r.detail = Some("d".into()),
            |r| r.prev_hash[0] ^= 1,
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut copy = row.clone();
            edit(&mut copy);
            assert_ne!(
                key.link(&copy.canonical()).to_vec(),
                row.hash,
                "edit {i} not covered"
            );
        }
    }

    #[test]
    fn absent_and_empty_differ() {
        let key = AuditChainKey::generate();
        let mut a = StoredEvent::chained(1, &event(), &GENESIS, &key);
        a.detail = None;
        let mut b = a.clone();
        b.detail = Some(String::new());
        assert_ne!(a.canonical(), b.canonical());
    }
}
