//! Appending to the audit chain: the canonical encoding and the keyed link of one event, beside
//! bare SHA-256 of the same bytes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::hint::black_box;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome, StoredEvent, GENESIS};
use zf_crypto::AuditChainKey;

fn event() -> AuditEvent {
    let actor = Actor {
        user_id: None,
        name: "lisi".into(),
        session_ref: Some("5f2c9a01b3d4".into()),
        source: Some("10.1.2.3".into()),
        device: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
    };
    AuditEvent::new(
        1_790_000_000_000,
        actor,
        AuditAction::ClientSensitiveRead,
        Outcome::Success,
    )
    .on("clients", "0b9f6a52-4a31-4a52-9a6b-1f1b8d7c2e10")
    .fields(&["legal_rep_id_number"])
}

fn chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit_chain");
    g.throughput(Throughput::Elements(1));
    let key = AuditChainKey::generate();
    let e = event();
    g.bench_function("chain_one_event", |b| {
        b.iter(|| StoredEvent::chained(42, black_box(&e), &GENESIS, &key))
    });
    let stored = StoredEvent::chained(42, &e, &GENESIS, &key);
    let canonical = stored.canonical();
    g.bench_function("link_of_canonical_row", |b| {
        b.iter(|| key.link(black_box(&canonical)))
    });
    g.bench_function("raw_sha256_of_canonical_row", |b| {
        b.iter(|| Sha256::digest(black_box(&canonical)))
    });
    g.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
