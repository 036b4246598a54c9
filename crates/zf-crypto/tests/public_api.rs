//! Exercises the crate only through its public names, as the store and identity layers use it.

use zf_crypto::{
    constant_time_eq, random_bytes, Aad, BlindIndex, BlindIndexKey, CipherSuite, CryptoError, Dek,
    KeyVersion, MasterKey, Sealed, UnknownCipherSuite, WrappedKey,
};

#[test]
fn a_client_field_survives_storage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("zhangfang-data").join("master.key");
    let (master, created) = MasterKey::load_or_create(&key_path).unwrap();
    assert!(created);

    let context = b"client:3f0e1d2c-0000-4000-8000-000000000001";
    let dek = Dek::generate();
    let stored_dek = master.kek(KeyVersion(1)).wrap(&dek, context).into_bytes();
    let aad = Aad::new(
        "clients",
        "3f0e1d2c-0000-4000-8000-000000000001",
        "legal_rep_id_number",
    );
    let stored_value = dek
        .seal(KeyVersion(1), b"110101199003074578", &aad)
        .into_bytes();
    drop((master, dek));

    let master = MasterKey::load(&key_path).unwrap();
    let wrapped = WrappedKey::from_bytes(stored_dek).unwrap();
    let dek = master
        .kek(wrapped.kek_version())
        .unwrap_key(&wrapped, context)
        .unwrap();
    let sealed = Sealed::from_bytes(stored_value).unwrap();
    assert_eq!(sealed.suite(), CipherSuite::Aes256Gcm);
    assert_eq!(
        dek.open(&sealed, &aad).unwrap().as_slice(),
        b"110101199003074578"
    );

    let moved = Aad::new(
        "clients",
        "3f0e1d2c-0000-4000-8000-000000000002",
        "legal_rep_id_number",
    );
    assert!(matches!(
        dek.open(&sealed, &moved),
        Err(CryptoError::Authentication)
    ));
}

#[test]
fn a_blind_index_key_survives_wrapping_and_indexes_match() {
    let master = MasterKey::generate();
    let kek = master.kek(KeyVersion(1));
    let key = BlindIndexKey::generate();
    let wrapped = kek.wrap_blind_index_key(&key, b"system:blind-index");
    let restored = kek
        .unwrap_blind_index_key(&wrapped, b"system:blind-index")
        .unwrap();

    let stored = key.index("clients.legal_rep_id_number", b"110101199003074578");
    let probe = restored.index("clients.legal_rep_id_number", b"110101199003074578");
    assert_eq!(BlindIndex::from_bytes(stored.as_bytes()).unwrap(), probe);
    assert!(kek
        .unwrap_blind_index_key(&wrapped, b"system:other")
        .is_err());
}

#[test]
fn errors_read_clearly_and_leak_nothing() {
    let dek = Dek::generate();
    let sealed = dek.seal(
        KeyVersion(2),
        b"13812341234",
        &Aad::new("contacts", "r1", "mobile"),
    );
    let error = dek
        .open(&sealed, &Aad::new("contacts", "r2", "mobile"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "ciphertext failed authentication (wrong key, or moved to another row or field)"
    );
    let debug = format!("{sealed:?}");
    assert_eq!(debug, "Sealed(v1, aes-256-gcm, key 2, 45 bytes)");
    assert_eq!(
        Sealed::from_bytes(vec![1, 9, 0, 0, 0, 1])
            .unwrap_err()
            .to_string(),
        "unsupported cipher suite 9"
    );
}

#[test]
fn token_helpers() {
    let token: [u8; 32] = random_bytes();
    assert!(constant_time_eq(&token, &token.clone()));
    assert!(!constant_time_eq(&token, &random_bytes::<32>()));
}

#[test]
fn a_deployment_chooses_its_suite_by_name_in_configuration() {
    assert_eq!(
        "sm4-gcm".parse::<CipherSuite>().unwrap(),
        CipherSuite::Sm4Gcm
    );
    assert_eq!(
        "aes-256-gcm".parse::<CipherSuite>().unwrap(),
        CipherSuite::Aes256Gcm
    );
    let error: UnknownCipherSuite = "sm4".parse::<CipherSuite>().unwrap_err();
    assert_eq!(error.name(), "sm4");
    assert_eq!(
        error.to_string(),
        "unknown cipher suite \"sm4\"; expected one of \"aes-256-gcm\", \"sm4-gcm\""
    );
}

#[test]
fn an_sm4_deployment_survives_storage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("zhangfang-data").join("master.key");
    let (master, _) = MasterKey::load_or_create(&key_path).unwrap();
    let suite: CipherSuite = "sm4-gcm".parse().unwrap();

    let context = b"client:3f0e1d2c-0000-4000-8000-000000000001";
    let dek = Dek::generate();
    let wrapped = master
        .kek_with_suite(KeyVersion(1), suite)
        .wrap(&dek, context);
    assert_eq!(wrapped.suite(), CipherSuite::Sm4Gcm);
    let stored_dek = wrapped.into_bytes();
    let aad = Aad::new("contacts", "3f0e1d2c", "mobile");
    let stored_value = dek
        .seal_with(suite, KeyVersion(2), b"13812341234", &aad)
        .into_bytes();
    let index_key = BlindIndexKey::generate();
    let stored_index = index_key.index_with(suite, "contacts.mobile", b"13812341234");
    drop((master, dek));

    // After a restart only the stored bytes say which suite was used, so even the default (AES) KEK of that version
    // unwraps the DEK: unwrapping follows the wrapped key's header, not the KEK's suite.
    let master = MasterKey::load(&key_path).unwrap();
    let wrapped = WrappedKey::from_bytes(stored_dek).unwrap();
    let dek = master
        .kek(wrapped.kek_version())
        .unwrap_key(&wrapped, context)
        .unwrap();
    let sealed = Sealed::from_bytes(stored_value).unwrap();
    assert_eq!(sealed.suite(), CipherSuite::Sm4Gcm);
    assert_eq!(
        format!("{sealed:?}"),
        "Sealed(v1, sm4-gcm, key 2, 45 bytes)"
    );
    assert_eq!(dek.open(&sealed, &aad).unwrap().as_slice(), b"13812341234");
    assert_eq!(
        index_key.index_with(suite, "contacts.mobile", b"13812341234"),
        stored_index
    );
    assert_ne!(
        index_key.index("contacts.mobile", b"13812341234"),
        stored_index
    );
}

/// A value sealed under one suite must not open once its header claims the other, and editing any other part of it or
/// of its binding must not open either: the header is authenticated with the rest.
#[test]
fn a_tampered_sm4_value_or_a_relabelled_one_fails_to_open() {
    let dek = Dek::generate();
    let aad = Aad::new("clients", "r1", "legal_rep_id_number");
    let sealed = dek.seal_with(
        CipherSuite::Sm4Gcm,
        KeyVersion(1),
        b"110101199003074578",
        &aad,
    );
    let bytes = sealed.as_bytes();
    let last = bytes.len() - 1;
    for (position, what) in [
        (1, "suite"),
        (5, "key version"),
        (6, "nonce"),
        (20, "ciphertext"),
        (last, "tag"),
    ] {
        let mut edited = bytes.to_vec();
        edited[position] = if position == 1 {
            1
        } else {
            edited[position] ^ 0x01
        };
        let opened = Sealed::from_bytes(edited).and_then(|s| dek.open(&s, &aad));
        assert!(
            matches!(opened, Err(CryptoError::Authentication)),
            "edited {what}: {opened:?}"
        );
    }
    assert!(matches!(
        dek.open(&sealed, &Aad::new("clients", "r2", "legal_rep_id_number")),
        Err(CryptoError::Authentication)
    ));
}
