//! Token-backed KEKs against a real SoftHSM2 token.
//!
//! Every test in this file shares one token, made once per test process in a temporary directory. PKCS#11 state is per
//! process, so the token is opened once and shared ([`shared`]); the tests that must close it, or open it with another
//! PIN, take it exclusively ([`alone`]). Each test uses KEK versions of its own, so they never see each other's keys.
//!
//! Without the SoftHSM2 module the tests skip with a printed reason, unless `ZF_REQUIRE_HSM=1`, in which case they fail.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zf_crypto::{
    AuditChainKey, AuditSigningKey, BlindIndexKey, CryptoError, Dek, Kek, KeyVersion, MasterKey,
    Pkcs11Token, TokenError, TokenPin, WrappedKey,
};

/// Debian's path; `ZF_SOFTHSM2_MODULE` names another (other distributions install it elsewhere).
const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN_LABEL: &str = "zhangfang-test";
const USER_PIN: &str = "user-pin-1234";
const SO_PIN: &str = "so-pin-5678";
const CLIENT_A: &[u8] = b"client:7d0c2a4e-0000-4000-8000-00000000000a";
const CLIENT_B: &[u8] = b"client:7d0c2a4e-0000-4000-8000-00000000000b";

/// The token directory; kept for the life of the test process.
static TOKEN_DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
/// Shared for ordinary tests, exclusive for those that close the token or open it themselves.
static EXCLUSIVE: RwLock<()> = RwLock::new(());
static OPEN_TOKEN: Mutex<Option<Pkcs11Token>> = Mutex::new(None);

fn module() -> String {
    std::env::var("ZF_SOFTHSM2_MODULE").unwrap_or_else(|_| DEFAULT_MODULE.to_owned())
}

/// Makes the token on first use. `None` means SoftHSM2 is not installed and the test should return.
fn ready() -> Option<()> {
    TOKEN_DIR.get_or_init(make_token).as_ref().map(|_| ())
}

fn make_token() -> Option<tempfile::TempDir> {
    let path = module();
    if !Path::new(&path).exists() {
        let reason =
            format!("SoftHSM2 is not installed ({path} is missing; apt-get install softhsm2)");
        assert!(
            std::env::var("ZF_REQUIRE_HSM").as_deref() != Ok("1"),
            "ZF_REQUIRE_HSM=1 but {reason}"
        );
        eprintln!("skipping the SoftHSM2 tests: {reason}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    // SoftHSM2 reads this when the module is initialised, which has not happened yet in this process: `ready` runs
    // before anything opens the module.
    std::env::set_var("SOFTHSM2_CONF", &conf);

    let pkcs11 = Pkcs11::new(&path).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let blank = pkcs11.get_slots_with_token().unwrap()[0];
    pkcs11
        .init_token(blank, &AuthPin::from(SO_PIN), TOKEN_LABEL)
        .unwrap();
    let slot = pkcs11
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| pkcs11.get_token_info(*slot).unwrap().label() == TOKEN_LABEL)
        .unwrap();
    let session = pkcs11.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::from(SO_PIN)))
        .unwrap();
    session.init_pin(&AuthPin::from(USER_PIN)).unwrap();
    session.logout().unwrap();
    drop(session);
    // Left initialised, the module would be "already initialised" when the code under test loads it.
    pkcs11.finalize().unwrap();
    Some(dir)
}

fn open_token() -> Result<Pkcs11Token, TokenError> {
    Pkcs11Token::open(module(), TOKEN_LABEL, &TokenPin::new(USER_PIN.to_owned()))
}

/// The process's open token, for tests that do not close it. Fields drop in order: the token before the guard.
struct Shared {
    token: Pkcs11Token,
    _guard: RwLockReadGuard<'static, ()>,
}

fn shared() -> Option<Shared> {
    ready()?;
    let guard = EXCLUSIVE.read().unwrap_or_else(PoisonError::into_inner);
    let mut open = OPEN_TOKEN.lock().unwrap_or_else(PoisonError::into_inner);
    let token = match open.as_ref() {
        Some(token) => token.clone(),
        None => open.insert(open_token().unwrap()).clone(),
    };
    Some(Shared {
        token,
        _guard: guard,
    })
}

/// Exclusive use: no other test holds the token, and the shared handle is closed, so the module is finalised.
fn alone() -> Option<RwLockWriteGuard<'static, ()>> {
    ready()?;
    let guard = EXCLUSIVE.write().unwrap_or_else(PoisonError::into_inner);
    drop(
        OPEN_TOKEN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
    Some(guard)
}

fn assert_authentication<T: std::fmt::Debug>(result: Result<T, CryptoError>) {
    assert!(
        matches!(result, Err(CryptoError::Authentication)),
        "expected an authentication failure, got {result:?}"
    );
}

#[test]
fn a_generated_kek_wraps_and_unwraps_a_dek_and_a_blind_index_key() {
    let Some(hsm) = shared() else { return };
    let kek = hsm.token.generate_kek(KeyVersion(1)).unwrap();
    assert_eq!(kek.version(), KeyVersion(1));

    let dek = Dek::generate();
    let wrapped = kek.try_wrap(&dek, CLIENT_A).unwrap();
    assert_eq!(wrapped.kek_version(), KeyVersion(1));
    assert_eq!(wrapped.as_bytes().len(), 6 + 12 + 32 + 16);
    let unwrapped = kek.unwrap_key(&wrapped, CLIENT_A).unwrap();
    let aad = zf_crypto::Aad::new("clients", "a", "name");
    let sealed = dek.seal(KeyVersion(1), b"value", &aad);
    assert_eq!(unwrapped.open(&sealed, &aad).unwrap().as_slice(), b"value");

    let index_key = BlindIndexKey::generate();
    let wrapped = kek
        .wrap_blind_index_key(&index_key, b"system:blind-index")
        .into_bytes();
    let restored = kek
        .unwrap_blind_index_key(
            &WrappedKey::from_bytes(wrapped).unwrap(),
            b"system:blind-index",
        )
        .unwrap();
    assert_eq!(restored.index("d", b"v"), index_key.index("d", b"v"));

    let chain_key = AuditChainKey::generate();
    let wrapped = kek
        .try_wrap_audit_chain_key(&chain_key, b"system:audit")
        .unwrap();
    assert_eq!(
        kek.unwrap_audit_chain_key(&wrapped, b"system:audit")
            .unwrap()
            .link(b"event"),
        chain_key.link(b"event")
    );
    let signing_key = AuditSigningKey::generate();
    let wrapped = kek
        .try_wrap_audit_signing_key(&signing_key, b"system:audit")
        .unwrap();
    assert_eq!(
        kek.unwrap_audit_signing_key(&wrapped, b"system:audit")
            .unwrap()
            .public_key(),
        signing_key.public_key()
    );

    // The same key found again by its label opens what the generated handle wrapped.
    let found = hsm.token.kek(KeyVersion(1)).unwrap();
    let wrapped = kek.wrap(&dek, CLIENT_A);
    assert!(found.unwrap_key(&wrapped, CLIENT_A).is_ok());
}

#[test]
fn the_kek_is_sensitive_and_not_extractable_and_its_value_is_refused() {
    let Some(hsm) = shared() else { return };
    hsm.token.generate_kek(KeyVersion(2)).unwrap();
    let protection = hsm.token.kek_protection(KeyVersion(2)).unwrap();
    assert!(protection.sensitive);
    assert!(protection.always_sensitive);
    assert!(!protection.extractable);
    assert!(protection.never_extractable);
    assert!(!protection.value_readable);
}

#[test]
fn a_token_envelope_opens_only_with_its_context_and_kind_and_every_tampered_byte_fails() {
    let Some(hsm) = shared() else { return };
    let kek = hsm.token.generate_kek(KeyVersion(3)).unwrap();
    let wrapped = kek.try_wrap(&Dek::generate(), CLIENT_A).unwrap();

    assert_authentication(kek.unwrap_key(&wrapped, CLIENT_B));
    assert_authentication(kek.unwrap_key(&wrapped, b""));
    assert_authentication(kek.unwrap_blind_index_key(&wrapped, CLIENT_A));
    assert_authentication(kek.unwrap_audit_chain_key(&wrapped, CLIENT_A));
    let index_wrapped = kek
        .try_wrap_blind_index_key(&BlindIndexKey::generate(), CLIENT_A)
        .unwrap();
    assert_authentication(kek.unwrap_key(&index_wrapped, CLIENT_A));

    // Header (format, suite, key version), nonce, ciphertext and tag: every byte is covered. The format and suite bytes
    // are already refused when the bytes are parsed; every other change reaches the token and fails its tag check.
    let bytes = wrapped.as_bytes();
    for position in 0..bytes.len() {
        let mut tampered = bytes.to_vec();
        tampered[position] ^= 0x01;
        match WrappedKey::from_bytes(tampered) {
            Ok(tampered) => assert_authentication(kek.unwrap_key(&tampered, CLIENT_A)),
            Err(error) => assert!(
                position < 2
                    && matches!(
                        error,
                        CryptoError::Malformed(_) | CryptoError::UnsupportedSuite(_)
                    ),
                "byte {position}: {error:?}"
            ),
        }
    }
    for len in 0..bytes.len() {
        let result = WrappedKey::from_bytes(bytes[..len].to_vec())
            .and_then(|truncated| kek.unwrap_key(&truncated, CLIENT_A));
        assert!(result.is_err(), "truncation to {len} bytes went undetected");
    }
    assert!(kek.unwrap_key(&wrapped, CLIENT_A).is_ok());
}

#[test]
fn after_a_restart_the_kek_found_by_label_unwraps_what_was_wrapped_before() {
    let Some(_alone) = alone() else { return };
    let dek = Dek::generate();
    let stored = {
        let token = open_token().unwrap();
        let kek = token.generate_kek(KeyVersion(4)).unwrap();
        kek.try_wrap(&dek, CLIENT_A).unwrap().into_bytes()
    };

    // With the last handle gone the module must have been finalised: initialising it afresh succeeds instead of
    // answering "already initialised".
    let probe = Pkcs11::new(module()).unwrap();
    probe
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    probe.finalize().unwrap();

    let token = open_token().unwrap();
    let wrapped = WrappedKey::from_bytes(stored).unwrap();
    let kek = token.kek(wrapped.kek_version()).unwrap();
    let unwrapped = kek.unwrap_key(&wrapped, CLIENT_A).unwrap();
    let aad = zf_crypto::Aad::new("clients", "a", "name");
    let sealed = dek.seal(KeyVersion(1), b"survives", &aad);
    assert_eq!(
        unwrapped.open(&sealed, &aad).unwrap().as_slice(),
        b"survives"
    );
}

#[test]
fn rotation_rewraps_under_the_new_kek_and_retiring_the_old_one_leaves_only_the_new_wrapping() {
    let Some(hsm) = shared() else { return };
    let old = hsm.token.generate_kek(KeyVersion(5)).unwrap();
    let dek = Dek::generate();
    let under_old = old.try_wrap(&dek, CLIENT_A).unwrap();

    let new = hsm.token.generate_kek(KeyVersion(6)).unwrap();
    let under_new = new
        .try_wrap(&old.unwrap_key(&under_old, CLIENT_A).unwrap(), CLIENT_A)
        .unwrap();
    assert_eq!(under_new.kek_version(), KeyVersion(6));
    assert_authentication(new.unwrap_key(&under_old, CLIENT_A));

    hsm.token.destroy_kek(KeyVersion(5)).unwrap();
    let unwrapped = new.unwrap_key(&under_new, CLIENT_A).unwrap();
    let aad = zf_crypto::Aad::new("clients", "a", "name");
    assert_eq!(
        unwrapped
            .open(&dek.seal(KeyVersion(1), b"x", &aad), &aad)
            .unwrap()
            .as_slice(),
        b"x"
    );
    assert!(matches!(
        hsm.token.kek(KeyVersion(5)),
        Err(TokenError::KeyNotFound { .. })
    ));
    assert!(matches!(
        old.unwrap_key(&under_old, CLIENT_A),
        Err(CryptoError::Token(TokenError::KeyNotFound { .. }))
    ));
    assert!(matches!(
        old.try_wrap(&dek, CLIENT_A),
        Err(CryptoError::Token(TokenError::KeyNotFound { .. }))
    ));
    assert!(matches!(
        hsm.token.destroy_kek(KeyVersion(5)),
        Err(TokenError::KeyNotFound { .. })
    ));
}

#[test]
fn generating_an_existing_label_is_refused_and_a_missing_version_is_not_found() {
    let Some(hsm) = shared() else { return };
    let first = hsm.token.generate_kek(KeyVersion(7)).unwrap();
    let wrapped = first.try_wrap(&Dek::generate(), CLIENT_A).unwrap();
    assert!(matches!(
        hsm.token.generate_kek(KeyVersion(7)),
        Err(TokenError::KeyExists { .. })
    ));
    // The refusal left the first key alone and did not add a second one.
    assert!(hsm
        .token
        .kek(KeyVersion(7))
        .unwrap()
        .unwrap_key(&wrapped, CLIENT_A)
        .is_ok());
    assert!(matches!(
        hsm.token.kek(KeyVersion(999)),
        Err(TokenError::KeyNotFound { .. })
    ));
}

#[test]
fn a_wrong_pin_an_unknown_token_and_a_second_open_are_typed_errors() {
    let Some(_alone) = alone() else { return };
    let wrong = Pkcs11Token::open(
        module(),
        TOKEN_LABEL,
        &TokenPin::new("not-the-pin".to_owned()),
    );
    assert!(
        matches!(wrong, Err(TokenError::WrongPin { ref label }) if label == TOKEN_LABEL),
        "{wrong:?}"
    );
    assert!(matches!(
        Pkcs11Token::open(
            module(),
            "no-such-token",
            &TokenPin::new(USER_PIN.to_owned())
        ),
        Err(TokenError::TokenNotFound { .. })
    ));

    let token = open_token().unwrap();
    assert!(matches!(open_token(), Err(TokenError::AlreadyOpen { .. })));
    // Nor can a second open with a wrong PIN ride on the existing login.
    assert!(matches!(
        Pkcs11Token::open(
            module(),
            TOKEN_LABEL,
            &TokenPin::new("not-the-pin".to_owned())
        ),
        Err(TokenError::AlreadyOpen { .. })
    ));
    drop(token);
    assert!(open_token().is_ok());
}

#[test]
fn a_missing_module_is_a_typed_error() {
    let missing = Pkcs11Token::open(
        "/nonexistent/libpkcs11.so",
        TOKEN_LABEL,
        &TokenPin::new(USER_PIN.to_owned()),
    );
    assert!(
        matches!(missing, Err(TokenError::Module { .. })),
        "{missing:?}"
    );
}

#[test]
fn debug_shows_neither_pin_nor_key() {
    let pin = TokenPin::new("secret-pin-4711".to_owned());
    assert_eq!(format!("{pin:?} {pin:#?}"), "TokenPin(..) TokenPin(..)");
    let Some(hsm) = shared() else { return };
    let shown = format!("{:?}", hsm.token);
    assert!(shown.contains(TOKEN_LABEL), "{shown}");
    assert!(!shown.contains(USER_PIN), "{shown}");
    let kek = hsm.token.generate_kek(KeyVersion(8)).unwrap();
    assert_eq!(
        format!("{kek:?}"),
        "Kek { version: 8, suite: Aes256Gcm, .. }"
    );
}

#[test]
fn one_token_kek_serves_several_threads_at_once() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Kek>();
    shareable::<Pkcs11Token>();
    let Some(hsm) = shared() else { return };
    let kek = hsm.token.generate_kek(KeyVersion(9)).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4u8 {
            let kek = &kek;
            scope.spawn(move || {
                let context = [b'c', thread];
                for _ in 0..25 {
                    let dek = Dek::generate();
                    let wrapped = kek.try_wrap(&dek, &context).unwrap();
                    let unwrapped = kek.unwrap_key(&wrapped, &context).unwrap();
                    let aad = zf_crypto::Aad::new("t", "r", "f");
                    let sealed = dek.seal(KeyVersion(1), b"same key", &aad);
                    assert_eq!(
                        unwrapped.open(&sealed, &aad).unwrap().as_slice(),
                        b"same key"
                    );
                }
            });
        }
    });
}

/// SoftHSM2 2.6 fails C_GenerateKey with CKR_GENERAL_ERROR when another thread's C_FindObjects reads the new object
/// before its attributes are written; before the token kept the two apart, this failed in most runs.
#[test]
fn keys_are_generated_while_other_threads_look_keys_up() {
    let Some(hsm) = shared() else { return };
    let looking = AtomicBool::new(true);
    std::thread::scope(|scope| {
        let (token, looking) = (&hsm.token, &looking);
        scope.spawn(move || {
            while looking.load(Ordering::Relaxed) {
                assert!(matches!(
                    token.kek(KeyVersion(299)),
                    Err(TokenError::KeyNotFound { .. })
                ));
            }
        });
        // Stops the lookups even if a generation fails, so the scope can end and report it.
        let _stop = ClearOnDrop(looking);
        for version in 200..240 {
            token.generate_kek(KeyVersion(version)).unwrap();
        }
    });
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// The software KEK of `version` under `master`, computed as documented on `MasterKey::kek`, so the same bytes can be
/// put on the token.
fn software_kek_bytes(master: [u8; 32], version: KeyVersion) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&master).unwrap();
    mac.update(format!("zhangfang/kek/v{}", version.0).as_bytes());
    mac.finalize().into_bytes().into()
}

#[test]
fn token_and_software_keks_of_the_same_bytes_read_each_others_envelopes() {
    let Some(hsm) = shared() else { return };
    let version = KeyVersion(100);
    let master = [0x5A; 32];
    let software: Kek = MasterKey::from_bytes(master).kek(version);
    // Test-only import: a real KEK is generated on the token and its bytes are never known.
    let token = hsm
        .token
        .import_kek_for_tests(version, &software_kek_bytes(master, version))
        .unwrap();

    let dek = Dek::generate();
    let by_token = token.try_wrap(&dek, CLIENT_A).unwrap();
    let by_software = software.wrap(&dek, CLIENT_A);
    assert_eq!(by_token.as_bytes()[..6], by_software.as_bytes()[..6]);
    assert_eq!(by_token.as_bytes().len(), by_software.as_bytes().len());
    for (reader, wrapped) in [(&software, &by_token), (&token, &by_software)] {
        let unwrapped = reader.unwrap_key(wrapped, CLIENT_A).unwrap();
        let aad = zf_crypto::Aad::new("clients", "a", "name");
        let sealed = dek.seal(KeyVersion(1), b"agreed", &aad);
        assert_eq!(unwrapped.open(&sealed, &aad).unwrap().as_slice(), b"agreed");
        assert_authentication(reader.unwrap_key(wrapped, CLIENT_B));
        assert_authentication(reader.unwrap_blind_index_key(wrapped, CLIENT_A));
    }

    let index_key = BlindIndexKey::generate();
    let by_token = token
        .try_wrap_blind_index_key(&index_key, b"system:blind-index")
        .unwrap();
    let by_software = software.wrap_blind_index_key(&index_key, b"system:blind-index");
    for (reader, wrapped) in [(&software, &by_token), (&token, &by_software)] {
        let restored = reader
            .unwrap_blind_index_key(wrapped, b"system:blind-index")
            .unwrap();
        assert_eq!(restored.index("d", b"v"), index_key.index("d", b"v"));
    }

    // An imported key is marked as such by the token: it was not generated there.
    let protection = hsm.token.kek_protection(version).unwrap();
    assert!(protection.sensitive && !protection.extractable && !protection.value_readable);
    assert!(!protection.always_sensitive && !protection.never_extractable);
}
