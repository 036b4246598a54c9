//! The encryption boundary per field, beside the raw primitives it is built on, for each cipher
//! suite: sealing and opening a 100-byte field with its header, AAD and key, against AES-256-GCM
//! and SM4-GCM with a key schedule made once; the blind index against bare HMAC-SHA256 and
//! HMAC-SM3; a DEK wrap and unwrap.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, AesGcm, KeyInit};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sm3::Sm3;
use sm4::Sm4;
use std::hint::black_box;
use zf_crypto::{Aad, BlindIndexKey, CipherSuite, Dek, KeyVersion, MasterKey};

const FIELD: [u8; 100] = [0x5a; 100];

fn aad() -> Aad {
    Aad::new(
        "clients",
        "0b9f6a52-4a31-4a52-9a6b-1f1b8d7c2e10",
        "legal_rep_id_number",
    )
}

fn field(c: &mut Criterion) {
    let mut g = c.benchmark_group("field_100_bytes");
    g.throughput(Throughput::Elements(1));
    let dek = Dek::generate();
    let aad = aad();
    g.bench_function("envelope_seal", |b| {
        b.iter(|| dek.seal(KeyVersion(1), black_box(&FIELD), &aad))
    });
    let sealed = dek.seal(KeyVersion(1), &FIELD, &aad);
    g.bench_function("envelope_open", |b| {
        b.iter(|| dek.open(black_box(&sealed), &aad).expect("opens"))
    });
    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let nonce = [3u8; 12].into();
    g.bench_function("raw_aes256gcm_encrypt", |b| {
        b.iter_batched_ref(
            || FIELD.to_vec(),
            |buf| {
                cipher
                    .encrypt_in_place_detached(&nonce, b"aad", buf)
                    .expect("encrypts")
            },
            BatchSize::SmallInput,
        )
    });

    // The envelope makes its SM4 key schedule (and GHASH key) on every call, as it does for AES;
    // the raw row below makes it once, so the gap between them is that setup plus the envelope.
    g.bench_function("envelope_seal_sm4gcm", |b| {
        b.iter(|| dek.seal_with(CipherSuite::Sm4Gcm, KeyVersion(1), black_box(&FIELD), &aad))
    });
    let sealed = dek.seal_with(CipherSuite::Sm4Gcm, KeyVersion(1), &FIELD, &aad);
    g.bench_function("envelope_open_sm4gcm", |b| {
        b.iter(|| dek.open(black_box(&sealed), &aad).expect("opens"))
    });
    let cipher = AesGcm::<Sm4, U12>::new(&[7u8; 16].into());
    g.bench_function("raw_sm4gcm_encrypt", |b| {
        b.iter_batched_ref(
            || FIELD.to_vec(),
            |buf| {
                cipher
                    .encrypt_in_place_detached(&nonce, b"aad", buf)
                    .expect("encrypts")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn blind_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("blind_index");
    g.throughput(Throughput::Elements(1));
    let key = BlindIndexKey::generate();
    g.bench_function("id_number", |b| {
        b.iter(|| {
            key.index(
                "clients.legal_rep_id_number",
                black_box(b"110101199003074578"),
            )
        })
    });
    g.bench_function("raw_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[9u8; 32]).expect("any key");
            mac.update(black_box(b"110101199003074578"));
            mac.finalize().into_bytes()
        })
    });
    g.bench_function("id_number_hmac_sm3", |b| {
        b.iter(|| {
            key.index_with(
                CipherSuite::Sm4Gcm,
                "clients.legal_rep_id_number",
                black_box(b"110101199003074578"),
            )
        })
    });
    g.bench_function("raw_hmac_sm3", |b| {
        b.iter(|| {
            let mut mac = <Hmac<Sm3> as Mac>::new_from_slice(&[9u8; 32]).expect("any key");
            mac.update(black_box(b"110101199003074578"));
            mac.finalize().into_bytes()
        })
    });
    g.finish();
}

fn key_wrap(c: &mut Criterion) {
    let mut g = c.benchmark_group("dek");
    g.throughput(Throughput::Elements(1));
    let kek = MasterKey::generate().kek(KeyVersion(1));
    let dek = Dek::generate();
    g.bench_function("wrap", |b| {
        b.iter(|| kek.wrap(black_box(&dek), b"client-1"))
    });
    let wrapped = kek.wrap(&dek, b"client-1");
    g.bench_function("unwrap", |b| {
        b.iter(|| {
            kek.unwrap_key(black_box(&wrapped), b"client-1")
                .expect("unwraps")
        })
    });
    let kek = MasterKey::generate().kek_with_suite(KeyVersion(1), CipherSuite::Sm4Gcm);
    g.bench_function("wrap_sm4gcm", |b| {
        b.iter(|| kek.wrap(black_box(&dek), b"client-1"))
    });
    let wrapped = kek.wrap(&dek, b"client-1");
    g.bench_function("unwrap_sm4gcm", |b| {
        b.iter(|| {
            kek.unwrap_key(black_box(&wrapped), b"client-1")
                .expect("unwraps")
        })
    });
    g.finish();
}

criterion_group!(benches, field, blind_index, key_wrap);
criterion_main!(benches);
