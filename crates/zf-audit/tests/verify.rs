//! The verifier against every kind of tampering, on an in-memory log.

use zf_audit::{
    Actor, AuditAction, AuditEvent, Checkpoint, Finding, Outcome, StoredEvent, Verifier, GENESIS,
};
use zf_crypto::{AuditChainKey, AuditSigningKey};

fn log(key: &AuditChainKey, n: i64) -> Vec<StoredEvent> {
    let mut rows: Vec<StoredEvent> = Vec::new();
    for seq in 1..=n {
        let prev = rows.last().map_or(GENESIS.to_vec(), |r| r.hash.clone());
        let event = AuditEvent::new(
            1_700_000_000_000 + seq,
            Actor::system(),
            AuditAction::ClientUpdated,
            Outcome::Success,
        )
        .on("clients", format!("c{seq}"))
        .fields(&["name"]);
        rows.push(StoredEvent::chained(seq, &event, &prev, key));
    }
    rows
}

fn verify(
    key: &AuditChainKey,
    rows: &[StoredEvent],
    head: Option<(i64, Vec<u8>)>,
    checkpoints: &[(Checkpoint, Vec<u8>)],
) -> Vec<Finding> {
    let mut v = Verifier::new(key, 0, &GENESIS);
    for (cp, pk) in checkpoints {
        v.expect(cp, pk, "exported file");
    }
    for row in rows {
        v.feed(row, |h| rows.iter().find(|r| r.hash == h).map(|r| r.seq));
    }
    v.finish(head).findings
}

fn head(rows: &[StoredEvent]) -> Option<(i64, Vec<u8>)> {
    rows.last().map(|r| (r.seq, r.hash.clone()))
}

#[test]
fn an_untouched_log_verifies() {
    let key = AuditChainKey::generate();
    let rows = log(&key, 50);
    assert_eq!(verify(&key, &rows, head(&rows), &[]), vec![]);
}

#[test]
fn an_edit_is_named() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 20);
    let h = head(&rows);
    rows[6].actor_name = "someone else".into();
    assert_eq!(
        verify(&key, &rows, h, &[]),
        vec![Finding::Edited { seq: 7 }]
    );
}

#[test]
fn a_deletion_is_named() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 20);
    let h = head(&rows);
    rows.remove(9);
    assert_eq!(
        verify(&key, &rows, h, &[]),
        vec![Finding::Deleted {
            first: 10,
            last: 10
        }]
    );
}

#[test]
fn a_deletion_hidden_by_renumbering_is_named() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 20);
    let h = head(&rows);
    rows.remove(9);
    for r in rows.iter_mut().skip(9) {
        r.seq -= 1;
    }
    let findings = verify(&key, &rows, h, &[]);
    assert_eq!(
        findings[0],
        Finding::Deleted {
            first: 10,
            last: 10
        }
    );
    assert!(findings.contains(&Finding::Truncated {
        last_present: 19,
        expected: 20,
        evidence: "the chain head".into()
    }));
}

#[test]
fn an_insertion_is_named() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 20);
    let h = head(&rows);
    let mut forged = rows[4].clone();
    forged.detail = Some("forged".into());
    forged.prev_hash = rows[3].hash.clone();
    for r in rows.iter_mut().skip(4) {
        r.seq += 1;
    }
    forged.seq = 5;
    rows.insert(4, forged);
    let findings = verify(&key, &rows, h, &[]);
    assert_eq!(findings[0], Finding::Inserted { seq: 5 });
    assert!(
        findings.contains(&Finding::AppendedOutside { first: 21 }),
        "{findings:?}"
    );
}

#[test]
fn a_reordering_is_named() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 20);
    let h = head(&rows);
    rows.swap(3, 11);
    rows[3].seq = 4;
    rows[11].seq = 12;
    let findings = verify(&key, &rows, h, &[]);
    assert_eq!(
        findings[0],
        Finding::Reordered {
            seq: 4,
            original_seq: 12
        }
    );
    assert!(
        findings.contains(&Finding::Reordered {
            seq: 12,
            original_seq: 4
        }),
        "{findings:?}"
    );
}

#[test]
fn truncation_is_named_by_the_head_and_by_an_exported_checkpoint() {
    let key = AuditChainKey::generate();
    let signer = AuditSigningKey::generate();
    let mut rows = log(&key, 30);
    let h = head(&rows);
    let cp = Checkpoint::sign(25, &rows[24].hash, 1, &signer);
    rows.truncate(22);
    let pk = signer.public_key().to_vec();
    // With the head intact.
    let findings = verify(&key, &rows, h, &[(cp.clone(), pk.clone())]);
    assert!(findings.contains(&Finding::Truncated {
        last_present: 22,
        expected: 30,
        evidence: "the chain head".into()
    }));
    // With the head rewound too, the exported checkpoint still tells.
    let findings = verify(&key, &rows, head(&rows), &[(cp, pk)]);
    assert_eq!(
        findings,
        vec![Finding::Truncated {
            last_present: 22,
            expected: 25,
            evidence: "a signed checkpoint (exported file)".into()
        }]
    );
}

#[test]
fn a_rewritten_log_disagrees_with_its_checkpoint_and_forged_checkpoints_are_refused() {
    let key = AuditChainKey::generate();
    let signer = AuditSigningKey::generate();
    let rows = log(&key, 10);
    let cp = Checkpoint::sign(5, &rows[4].hash, 1, &signer);
    let pk = signer.public_key().to_vec();
    // Someone with the chain key rebuilt the log from event 3 on.
    let mut rebuilt = rows[..2].to_vec();
    for seq in 3..=10 {
        let prev = rebuilt.last().unwrap().hash.clone();
        let e = AuditEvent::new(1, Actor::system(), AuditAction::Login, Outcome::Success);
        rebuilt.push(StoredEvent::chained(seq, &e, &prev, &key));
    }
    let findings = verify(&key, &rebuilt, head(&rebuilt), &[(cp.clone(), pk)]);
    assert_eq!(
        findings,
        vec![Finding::CheckpointMismatch {
            seq: 5,
            source: "exported file".into()
        }]
    );
    let other = AuditSigningKey::generate().public_key().to_vec();
    let findings = verify(&key, &rows, head(&rows), &[(cp, other)]);
    assert_eq!(
        findings,
        vec![Finding::BadSignature {
            seq: 5,
            source: "exported file".into()
        }]
    );
}

#[test]
fn events_forged_without_the_key_are_edits() {
    let key = AuditChainKey::generate();
    let mut rows = log(&key, 5);
    let impostor = AuditChainKey::generate();
    let prev = rows[4].hash.clone();
    let e = AuditEvent::new(1, Actor::system(), AuditAction::Login, Outcome::Success);
    rows.push(StoredEvent::chained(6, &e, &prev, &impostor));
    let findings = verify(&key, &rows, head(&rows), &[]);
    assert_eq!(findings, vec![Finding::Edited { seq: 6 }]);
}
