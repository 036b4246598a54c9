use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use zf_crypto::{
    Aad, AuditChainKey, AuditSigningKey, BackupKey, BlindIndex, BlindIndexKey, CipherSuite,
    CryptoError, Dek, DekRing, Kek, KekSource, KeyVersion, MasterKey, Sealed, TotpSecret,
    WrappedKey,
};
use zf_domain::{ClientId, IdNumber, UserId};
use zf_store::{KeyHolder, KeySlots, Store, WrappedDek};

use crate::{now_ms, AppError};

/// The first blind-index key. It computed every search token until the first blind-index
/// rotation, and it alone keys the hashes of MFA recovery codes and one-time codes, which cannot
/// be computed again (the codes are not kept), so it is never deleted.
const BLIND_INDEX_KEY: &str = "blind-index/v1";
const BLIND_INDEX_PREFIX: &str = "blind-index/v";
const AUDIT_CHAIN_KEY: &str = "audit-chain/v1";
const AUDIT_SIGNING_KEY: &str = "audit-signing/v1";
const MFA_KEY: &str = "mfa-secrets/v1";
const MFA_KEY_PREFIX: &str = "mfa-secrets/v";
/// The backup key of a deployment whose KEK is in a token: generated, stored wrapped. Other
/// deployments derive theirs from the master key and store none.
pub(crate) const BACKUP_KEY: &str = "backup/v1";
const ID_NUMBER_DOMAIN: &str = "clients.legal_rep_id_number";
const RECOVERY_CODE_DOMAIN: &str = "mfa_recovery_codes.code";
const OTP_CODE_DOMAIN: &str = "otp_codes.code";
/// The `crypto_settings` row that records the suite chosen when the deployment was initialised.
const SUITE_SETTING: &str = "cipher_suite";
/// The version of the system data key that seals MFA secrets.
const MFA_KEY_VERSION: KeyVersion = KeyVersion(1);

/// The keys a running node holds: the keyring of KEK versions and the system keys it has
/// unwrapped.
pub struct Keys {
    inner: Arc<KeysInner>,
    /// A retired KEK version unwraps nothing for the live database. A restored copy of a
    /// backup taken before the rotation still needs it; [`Keys::reading_every_version`]
    /// lifts the refusal for such copies only.
    refuse_retired: bool,
}

struct KeysInner {
    /// Where KEKs come from: derived from the master key, or asked of the token holding them.
    source: KekSource,
    /// The deployment's cipher suite for every new seal, wrap and blind index.
    suite: CipherSuite,
    keyring: RwLock<Keyring>,
    /// Blind-index key v1: MFA recovery-code and one-time-code hashes.
    blind_index: Arc<BlindIndexKey>,
    /// The blind-index keys of search tokens, as `crypto_settings` names them.
    search_index: RwLock<SearchIndexRing>,
    audit_chain: Arc<AuditChainKey>,
    audit_signing: AuditSigningKey,
    /// Seals users' TOTP secrets and code addresses: a system data key, so the secrets are
    /// ciphertext in the database and in backups, like client fields. A ring like a client's:
    /// the current version, and the previous one while a re-encryption moves values off it.
    mfa: RwLock<Arc<DekRing>>,
    /// Seals backup files: derived from the master key and never stored, or, with a token,
    /// generated once and stored wrapped as the system key `backup/v1`.
    backup: Arc<BackupKey>,
}

/// Which KEK versions this node wraps and unwraps with, as the store's keyring says. KEKs are
/// derived from the master key (or found in the token) per version and kept once found.
struct Keyring {
    current: KeyVersion,
    retired: BTreeSet<KeyVersion>,
    keks: HashMap<KeyVersion, Arc<Kek>>,
}

impl Keyring {
    fn from_rows(rows: &[zf_store::KekVersionRow]) -> Result<Self, AppError> {
        let current = rows
            .iter()
            .filter(|r| r.state == zf_store::KekState::Active)
            .map(|r| r.version)
            .max()
            .ok_or_else(|| AppError::Internal("the keyring has no active KEK version".into()))?;
        Ok(Keyring {
            current,
            retired: rows
                .iter()
                .filter(|r| r.state == zf_store::KekState::Retired)
                .map(|r| r.version)
                .collect(),
            keks: HashMap::new(),
        })
    }
}

/// The blind-index keys search tokens are computed under: the current version, and the previous
/// one while a re-index computes every token again under the current one.
struct SearchIndexRing {
    current: (u32, Arc<BlindIndexKey>),
    previous: Option<(u32, Arc<BlindIndexKey>)>,
}

/// The system-key name of blind-index key `version`.
pub(crate) fn blind_index_key_name(version: u32) -> String {
    format!("{BLIND_INDEX_PREFIX}{version}")
}

fn blind_index_version_of(name: &str) -> Option<u32> {
    name.strip_prefix(BLIND_INDEX_PREFIX)?
        .parse()
        .ok()
        .filter(|v| *v >= 1)
}

fn parse_blind_index_version(value: &str) -> Result<u32, AppError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            AppError::Internal(format!("crypto_settings: blind-index version {value:?}"))
        })
}

const FOREIGN_MASTER_KEY: &str = "the system keys do not unwrap with this master key: \
     the master key file does not belong to this database";
const FOREIGN_TOKEN: &str = "the system keys do not unwrap with this token's KEK: \
     the token does not belong to this database";

/// What kind of key each system key is, as a rotation must say when it rewraps one.
pub(crate) fn system_key_kind(name: &str) -> Option<zf_crypto::KeyKind> {
    use zf_crypto::KeyKind;
    match name {
        _ if blind_index_version_of(name).is_some() => Some(KeyKind::BlindIndex),
        AUDIT_CHAIN_KEY => Some(KeyKind::AuditChain),
        AUDIT_SIGNING_KEY => Some(KeyKind::AuditSigning),
        _ if name
            .strip_prefix(MFA_KEY_PREFIX)
            .and_then(|v| v.parse::<u32>().ok())
            .is_some() =>
        {
            Some(KeyKind::Dek)
        }
        BACKUP_KEY => Some(KeyKind::Backup),
        _ => None,
    }
}

fn context(name: &str) -> String {
    format!("system:{name}")
}

/// The suite this deployment seals with: the one recorded at initialisation, or — on the first
/// start — `configured` (AES-256-GCM if unset). A deployment from before the suite was recorded
/// sealed with AES-256-GCM. A configured suite other than the recorded one is refused: values
/// and blind indexes already made under the recorded suite would no longer be found.
async fn deployment_suite(
    store: &dyn Store,
    configured: Option<CipherSuite>,
) -> Result<CipherSuite, AppError> {
    let recorded = match store.crypto_setting(SUITE_SETTING).await? {
        Some(name) => name,
        None => {
            let initialised = !store
                .wrapped_keys_after(zf_store::KeyTable::SystemKeys, None, 1)
                .await?
                .is_empty();
            let first = if initialised {
                CipherSuite::Aes256Gcm
            } else {
                configured.unwrap_or(CipherSuite::Aes256Gcm)
            };
            store
                .crypto_setting_init(SUITE_SETTING, first.name())
                .await?
        }
    };
    let recorded: CipherSuite = recorded
        .parse()
        .map_err(|e| AppError::Internal(format!("crypto_settings.{SUITE_SETTING}: {e}")))?;
    match configured {
        Some(wanted) if wanted != recorded => Err(AppError::Invalid(format!(
            "cipher_suite = \"{wanted}\" in the configuration, but this deployment was \
             initialised with {recorded}; the suite is chosen once, when the data directory \
             and database are first set up"
        ))),
        _ => Ok(recorded),
    }
}

/// The KEK of `version` from `source`, wrapping new keys with `suite` (a token's KEK wraps with
/// AES-256-GCM, the mechanism tokens offer).
fn kek_of(source: &KekSource, version: KeyVersion, suite: CipherSuite) -> Result<Kek, AppError> {
    source
        .kek(version, suite)
        .map_err(|e| token_error(e.into()))
}

/// A token that cannot be reached or refuses an operation: the request fails, the node lives.
fn token_error(e: CryptoError) -> AppError {
    AppError::from(e)
}

impl Keys {
    /// Unwraps the system keys, creating them on the first start of a deployment. Nodes that
    /// start together agree on one key because the store keeps whichever was written first.
    /// `suite` is the configured cipher suite, which only a new deployment may choose.
    pub async fn load(
        store: &dyn Store,
        master: &MasterKey,
        suite: Option<CipherSuite>,
    ) -> Result<Self, AppError> {
        Self::load_from(store, KekSource::Master(master.duplicate()), suite).await
    }

    /// [`Keys::load`] with KEKs from `source`. With a token, KEK version 1 is generated in it
    /// on the deployment's first start (kept if the token already holds it), and the backup
    /// key is generated and stored wrapped, since there is no master key to derive it from.
    pub async fn load_from(
        store: &dyn Store,
        source: KekSource,
        suite: Option<CipherSuite>,
    ) -> Result<Self, AppError> {
        let now = now_ms();
        let suite = deployment_suite(store, suite).await?;
        if source.token().is_some() && store.kek_versions().await?.is_empty() {
            source
                .provision(KeyVersion(1))
                .map_err(|e| token_error(e.into()))?;
        }
        store.kek_versions_init(now).await?;
        let keyring = Keyring::from_rows(&store.kek_versions().await?)?;
        let kek = kek_of(&source, keyring.current, suite)?;
        let foreign_message = if source.token().is_some() {
            FOREIGN_TOKEN
        } else {
            FOREIGN_MASTER_KEY
        };
        let foreign = |e: CryptoError| match e {
            CryptoError::Token(_) => token_error(e),
            _ => AppError::Internal(foreign_message.into()),
        };
        let under = |wrapped: &WrappedKey| kek_of(&source, wrapped.kek_version(), suite);

        let ctx = context(BLIND_INDEX_KEY);
        let candidate = kek.try_wrap_blind_index_key(&BlindIndexKey::generate(), ctx.as_bytes())?;
        let stored = store
            .system_key_get_or_insert(BLIND_INDEX_KEY, candidate, now)
            .await?;
        let blind_index = under(&stored)?
            .unwrap_blind_index_key(&stored, ctx.as_bytes())
            .map_err(foreign)?;

        let ctx = context(AUDIT_CHAIN_KEY);
        let candidate = kek.try_wrap_audit_chain_key(&AuditChainKey::generate(), ctx.as_bytes())?;
        let stored = store
            .system_key_get_or_insert(AUDIT_CHAIN_KEY, candidate, now)
            .await?;
        let audit_chain = under(&stored)?
            .unwrap_audit_chain_key(&stored, ctx.as_bytes())
            .map_err(foreign)?;

        let ctx = context(AUDIT_SIGNING_KEY);
        let candidate =
            kek.try_wrap_audit_signing_key(&AuditSigningKey::generate(), ctx.as_bytes())?;
        let stored = store
            .system_key_get_or_insert(AUDIT_SIGNING_KEY, candidate, now)
            .await?;
        let audit_signing = under(&stored)?
            .unwrap_audit_signing_key(&stored, ctx.as_bytes())
            .map_err(foreign)?;

        // The MFA key is v1 until a re-encryption replaces it; then `crypto_settings` names it.
        let (mfa_version, mfa) = match store.crypto_setting(zf_store::MFA_KEY_VERSION).await? {
            None => {
                let ctx = context(MFA_KEY);
                let candidate = kek.try_wrap(&Dek::generate(), ctx.as_bytes())?;
                let stored = store
                    .system_key_get_or_insert(MFA_KEY, candidate, now)
                    .await?;
                let key = under(&stored)?
                    .unwrap_key(&stored, ctx.as_bytes())
                    .map_err(foreign)?;
                (MFA_KEY_VERSION, key)
            }
            Some(v) => {
                let version =
                    v.parse::<u32>().ok().filter(|v| *v >= 1).ok_or_else(|| {
                        AppError::Internal(format!("crypto_settings: MFA key {v:?}"))
                    })?;
                let name = Self::mfa_key_name(version);
                let stored = store.system_key_get(&name).await?.ok_or_else(|| {
                    AppError::Internal(format!("the system key {name} is missing"))
                })?;
                let key = under(&stored)?
                    .unwrap_key(&stored, context(&name).as_bytes())
                    .map_err(foreign)?;
                (KeyVersion(version), key)
            }
        };

        let backup = match source.derived_backup_key() {
            Some(derived) => derived,
            None => {
                let ctx = context(BACKUP_KEY);
                let candidate = kek.try_wrap_backup_key(&BackupKey::generate(), ctx.as_bytes())?;
                let stored = store
                    .system_key_get_or_insert(BACKUP_KEY, candidate, now)
                    .await?;
                under(&stored)?
                    .unwrap_backup_key(&stored, ctx.as_bytes())
                    .map_err(foreign)?
            }
        };

        let blind_index = Arc::new(blind_index);
        let keys = Keys {
            inner: Arc::new(KeysInner {
                source,
                suite,
                keyring: RwLock::new(keyring),
                search_index: RwLock::new(SearchIndexRing {
                    current: (1, blind_index.clone()),
                    previous: None,
                }),
                blind_index,
                audit_chain: Arc::new(audit_chain),
                audit_signing,
                mfa: RwLock::new(Arc::new(DekRing::new(suite, mfa_version, mfa))),
                backup: Arc::new(backup),
            }),
            refuse_retired: true,
        };
        // A re-encryption in progress holds the previous MFA key too.
        keys.refresh_mfa(store).await?;
        store.install_audit_chain_key(keys.inner.audit_chain.clone());
        keys.refresh_search_index(store).await?;
        Ok(keys)
    }

    /// Where this node's KEKs come from.
    pub fn kek_source(&self) -> &KekSource {
        &self.inner.source
    }

    /// Makes KEK `version` exist before the keyring lists it: generated inside the token, or
    /// nothing to do when KEKs are derived from the master key.
    pub(crate) fn provision_kek(&self, version: KeyVersion) -> Result<(), AppError> {
        self.inner
            .source
            .provision(version)
            .map(|_| ())
            .map_err(|e| token_error(e.into()))
    }

    /// The same keys for a restored copy of a backup, which may predate a rotation: every KEK
    /// version the master key derives unwraps there, retired or not.
    pub(crate) fn reading_every_version(&self) -> Keys {
        Keys {
            inner: self.inner.clone(),
            refuse_retired: false,
        }
    }

    /// The KEK of `version`, unless the keyring has retired it: a retired version unwraps
    /// nothing, so a key still wrapped under it is an error rather than quietly readable.
    pub(crate) fn kek(&self, version: KeyVersion) -> Result<Arc<Kek>, AppError> {
        let ring = self
            .inner
            .keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if self.refuse_retired && ring.retired.contains(&version) {
            return Err(AppError::Internal(format!(
                "a key is wrapped under the retired KEK version {}",
                version.0
            )));
        }
        if let Some(kek) = ring.keks.get(&version) {
            return Ok(kek.clone());
        }
        drop(ring);
        let kek = Arc::new(kek_of(&self.inner.source, version, self.inner.suite)?);
        self.inner
            .keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .keks
            .insert(version, kek.clone());
        Ok(kek)
    }

    /// The version new keys are wrapped under.
    pub fn current_kek_version(&self) -> KeyVersion {
        self.inner
            .keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .current
    }

    /// The KEK new keys are wrapped under. The current version is active by construction, so
    /// it is never refused; with a token, asking for it can still fail.
    fn current_kek(&self) -> Result<Arc<Kek>, AppError> {
        self.kek(self.current_kek_version())
    }

    /// Reads the keyring again: another node, or the command line, may have rotated or
    /// retired a version.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), AppError> {
        let fresh = Keyring::from_rows(&store.kek_versions().await?)?;
        let mut ring = self
            .inner
            .keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        ring.current = fresh.current;
        for version in &fresh.retired {
            ring.keks.remove(version);
        }
        ring.retired = fresh.retired;
        Ok(())
    }

    /// Reads which blind-index keys compute search tokens (`crypto_settings`) and unwraps any
    /// this node does not hold yet: a rotation started on another node reaches this one here.
    pub(crate) async fn refresh_search_index(&self, store: &dyn Store) -> Result<(), AppError> {
        let current = match store.crypto_setting(zf_store::BLIND_INDEX_VERSION).await? {
            Some(v) => parse_blind_index_version(&v)?,
            None => 1,
        };
        let previous = match store.crypto_setting(zf_store::BLIND_INDEX_PREVIOUS).await? {
            Some(v) => Some(parse_blind_index_version(&v)?),
            None => None,
        };
        let held = |version: u32| -> Option<Arc<BlindIndexKey>> {
            if version == 1 {
                return Some(self.inner.blind_index.clone());
            }
            let ring = self
                .inner
                .search_index
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let found = [Some(&ring.current), ring.previous.as_ref()]
                .into_iter()
                .flatten()
                .find(|(v, _)| *v == version)
                .map(|(_, k)| k.clone());
            found
        };
        let current = match held(current) {
            Some(key) => (current, key),
            None => (current, self.unwrap_search_index_key(store, current).await?),
        };
        let previous = match previous {
            None => None,
            Some(v) => Some(match held(v) {
                Some(key) => (v, key),
                None => (v, self.unwrap_search_index_key(store, v).await?),
            }),
        };
        *self
            .inner
            .search_index
            .write()
            .unwrap_or_else(PoisonError::into_inner) = SearchIndexRing { current, previous };
        Ok(())
    }

    async fn unwrap_search_index_key(
        &self,
        store: &dyn Store,
        version: u32,
    ) -> Result<Arc<BlindIndexKey>, AppError> {
        let name = blind_index_key_name(version);
        let wrapped = store.system_key_get(&name).await?.ok_or_else(|| {
            AppError::Internal(format!(
                "blind-index key v{version} is in use but not in system_keys"
            ))
        })?;
        let key = self
            .kek(wrapped.kek_version())?
            .unwrap_blind_index_key(&wrapped, context(&name).as_bytes())
            .map_err(|_| AppError::Internal(FOREIGN_MASTER_KEY.into()))?;
        Ok(Arc::new(key))
    }

    /// The blind-index versions of search tokens: the current one and, while a re-index runs,
    /// the previous one.
    pub(crate) fn search_index_versions(&self) -> (u32, Option<u32>) {
        let ring = self
            .inner
            .search_index
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (ring.current.0, ring.previous.as_ref().map(|(v, _)| *v))
    }

    /// A new blind-index key, wrapped under the current KEK for system key `name`.
    pub(crate) fn new_search_index_key(&self, name: &str) -> Result<WrappedKey, AppError> {
        Ok(self
            .current_kek()?
            .try_wrap_blind_index_key(&BlindIndexKey::generate(), context(name).as_bytes())?)
    }

    /// The token of `value` under the current search key.
    fn search_token(&self, domain: &str, value: &[u8]) -> BlindIndex {
        self.inner
            .search_index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .current
            .1
            .index_with(self.inner.suite, domain, value)
    }

    /// Every token a stored value may have: under the current search key and, while a re-index
    /// runs, under the previous one.
    fn search_tokens(&self, domain: &str, value: &[u8]) -> Vec<BlindIndex> {
        let ring = self
            .inner
            .search_index
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        [Some(&ring.current), ring.previous.as_ref()]
            .into_iter()
            .flatten()
            .map(|(_, key)| key.index_with(self.inner.suite, domain, value))
            .collect()
    }

    pub fn audit_chain(&self) -> &AuditChainKey {
        &self.inner.audit_chain
    }

    /// For a second store opened with these keys (a restore test's scratch database).
    pub(crate) fn audit_chain_shared(&self) -> Arc<AuditChainKey> {
        self.inner.audit_chain.clone()
    }

    pub fn audit_signing(&self) -> &AuditSigningKey {
        &self.inner.audit_signing
    }

    pub fn backup(&self) -> Arc<BackupKey> {
        self.inner.backup.clone()
    }

    /// The suite every new value is sealed with.
    pub fn suite(&self) -> CipherSuite {
        self.inner.suite
    }

    /// The context a holder's data keys are wrapped with, binding each to its owner.
    pub(crate) fn holder_context(holder: KeyHolder, id: &str) -> String {
        match holder {
            KeyHolder::Client => format!("client:{id}"),
            KeyHolder::Lead => format!("lead:{id}"),
        }
    }

    /// A fresh data key of `version` for a holder, wrapped under the current KEK.
    pub(crate) fn new_holder_key(
        &self,
        holder: KeyHolder,
        id: &str,
        version: KeyVersion,
    ) -> Result<(Dek, WrappedDek), AppError> {
        let dek = Dek::generate();
        let wrapped = self
            .current_kek()?
            .try_wrap(&dek, Self::holder_context(holder, id).as_bytes())?;
        Ok((dek, WrappedDek { version, wrapped }))
    }

    /// A holder's data keys, unwrapped: the current one and, while its data is re-encrypted,
    /// the previous one.
    pub(crate) fn holder_key(
        &self,
        holder: KeyHolder,
        id: &str,
        slots: &KeySlots,
    ) -> Result<DekRing, AppError> {
        let context = Self::holder_context(holder, id);
        let unwrap = |key: &WrappedDek| -> Result<Dek, AppError> {
            Ok(self
                .kek(key.wrapped.kek_version())?
                .unwrap_key(&key.wrapped, context.as_bytes())?)
        };
        let ring = DekRing::new(
            self.inner.suite,
            slots.current.version,
            unwrap(&slots.current)?,
        );
        Ok(match &slots.previous {
            Some(previous) => ring.with_previous(previous.version, unwrap(previous)?),
            None => ring,
        })
    }

    /// A fresh data key for a new client, and its wrapped form for the store.
    pub fn new_client_key(&self, id: ClientId) -> Result<(DekRing, WrappedKey), AppError> {
        let (dek, wrapped) =
            self.new_holder_key(KeyHolder::Client, &id.to_string(), KeyVersion(1))?;
        Ok((
            DekRing::new(self.inner.suite, wrapped.version, dek),
            wrapped.wrapped,
        ))
    }

    pub fn client_key(&self, id: ClientId, slots: &KeySlots) -> Result<DekRing, AppError> {
        self.holder_key(KeyHolder::Client, &id.to_string(), slots)
    }

    /// A blind index of `value` in its own domain (a field name), so equal values of two
    /// different fields never share a token; under the current search key, as every write
    /// stores it.
    pub fn index(&self, domain: &str, value: &str) -> BlindIndex {
        self.search_token(domain, value.as_bytes())
    }

    /// The tokens a search for `value` looks for: see [`Keys::index`]; during a re-index also
    /// the token under the previous key, which rows not yet re-indexed still hold.
    pub fn index_candidates(&self, domain: &str, value: &str) -> Vec<BlindIndex> {
        self.search_tokens(domain, value.as_bytes())
    }

    /// A keyed hash under blind-index key v1, for codes that are checked but never kept
    /// (recovery codes, one-time codes): their hashes cannot be computed again under a new key.
    fn blind_index(&self, domain: &str, value: &[u8]) -> BlindIndex {
        self.inner
            .blind_index
            .index_with(self.inner.suite, domain, value)
    }

    /// A fresh data key for a lead, which has its own key until it becomes a client.
    pub fn new_lead_key(&self, id: zf_domain::LeadId) -> Result<(DekRing, KeySlots), AppError> {
        let (dek, wrapped) =
            self.new_holder_key(KeyHolder::Lead, &id.to_string(), KeyVersion(1))?;
        Ok((
            DekRing::new(self.inner.suite, wrapped.version, dek),
            KeySlots {
                current: wrapped,
                previous: None,
            },
        ))
    }

    pub fn lead_key(&self, id: zf_domain::LeadId, slots: &KeySlots) -> Result<DekRing, AppError> {
        self.holder_key(KeyHolder::Lead, &id.to_string(), slots)
    }

    /// The MFA system key ring as it stands.
    pub(crate) fn mfa_ring(&self) -> Arc<DekRing> {
        self.inner
            .mfa
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The system-key name of MFA key `version`.
    pub(crate) fn mfa_key_name(version: u32) -> String {
        format!("{MFA_KEY_PREFIX}{version}")
    }

    /// A new MFA system key of `version`, wrapped under the current KEK.
    pub(crate) fn new_mfa_key(&self, version: u32) -> Result<WrappedKey, AppError> {
        let name = Self::mfa_key_name(version);
        Ok(self
            .current_kek()?
            .try_wrap(&Dek::generate(), context(&name).as_bytes())?)
    }

    async fn unwrap_mfa_key(&self, store: &dyn Store, version: u32) -> Result<Dek, AppError> {
        let name = Self::mfa_key_name(version);
        let wrapped = store.system_key_get(&name).await?.ok_or_else(|| {
            AppError::Internal(format!(
                "the system key {name} named by crypto_settings is missing"
            ))
        })?;
        Ok(self
            .kek(wrapped.kek_version())?
            .unwrap_key(&wrapped, context(&name).as_bytes())?)
    }

    /// Reads which MFA key versions are current (and previous) and holds those keys: another
    /// node, or the command line, may have replaced the key.
    pub(crate) async fn refresh_mfa(&self, store: &dyn Store) -> Result<(), AppError> {
        let version = |v: Option<String>| -> Result<Option<u32>, AppError> {
            v.map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| AppError::Internal(format!("crypto_settings: MFA key {v:?}")))
            })
            .transpose()
        };
        let current = version(store.crypto_setting(zf_store::MFA_KEY_VERSION).await?)?.unwrap_or(1);
        let previous = version(store.crypto_setting(zf_store::MFA_KEY_PREVIOUS).await?)?;
        let held = self.mfa_ring();
        if held.current_version() == KeyVersion(current)
            && held.previous_version() == previous.map(KeyVersion)
        {
            return Ok(());
        }
        let ring = DekRing::new(
            self.inner.suite,
            KeyVersion(current),
            self.unwrap_mfa_key(store, current).await?,
        );
        let ring = match previous {
            Some(p) => ring.with_previous(KeyVersion(p), self.unwrap_mfa_key(store, p).await?),
            None => ring,
        };
        *self
            .inner
            .mfa
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    pub(crate) fn totp_aad(user: UserId) -> Aad {
        Aad::new("user_mfa", user.to_string(), "totp_secret")
    }

    /// Seals a TOTP secret bound to its user, so it cannot be moved to another account.
    pub fn seal_totp_secret(&self, user: UserId, secret: &TotpSecret) -> Sealed {
        self.mfa_ring().seal(secret.expose(), &Self::totp_aad(user))
    }

    pub fn open_totp_secret(&self, user: UserId, sealed: &Sealed) -> Result<TotpSecret, AppError> {
        let bytes = self.mfa_ring().open(sealed, &Self::totp_aad(user))?;
        TotpSecret::from_bytes(&bytes)
            .map_err(|e| AppError::Internal(format!("stored TOTP secret: {e}")))
    }

    /// A recovery code as stored: keyed, so a copy of the database cannot be searched for
    /// codes, and bound to its user.
    pub fn recovery_code_index(&self, user: UserId, normalized: &str) -> BlindIndex {
        let mut value = zeroize::Zeroizing::new(user.to_string().into_bytes());
        value.push(0);
        value.extend_from_slice(normalized.as_bytes());
        self.blind_index(RECOVERY_CODE_DOMAIN, &value)
    }

    pub(crate) fn otp_address_aad(user: UserId, channel: zf_store::OtpChannel) -> Aad {
        let field = match channel {
            zf_store::OtpChannel::Email => "email_address",
            zf_store::OtpChannel::Sms => "sms_address",
        };
        Aad::new("otp_factors", user.to_string(), field)
    }

    /// Seals the address one-time codes go to, bound to its user and channel. A pending and a
    /// confirmed address share the binding, so confirming one moves the ciphertext as it is.
    pub fn seal_otp_address(
        &self,
        user: UserId,
        channel: zf_store::OtpChannel,
        address: &str,
    ) -> Sealed {
        self.mfa_ring()
            .seal(address.as_bytes(), &Self::otp_address_aad(user, channel))
    }

    pub fn open_otp_address(
        &self,
        user: UserId,
        channel: zf_store::OtpChannel,
        sealed: &Sealed,
    ) -> Result<zeroize::Zeroizing<String>, AppError> {
        let bytes = self
            .mfa_ring()
            .open(sealed, &Self::otp_address_aad(user, channel))?;
        String::from_utf8(bytes.to_vec())
            .map(zeroize::Zeroizing::new)
            .map_err(|_| AppError::Internal("stored code address is not UTF-8".into()))
    }

    /// A one-time code as stored: keyed (six digits are a million guesses offline otherwise)
    /// and bound to its user, purpose and channel, so it answers nothing else.
    pub fn otp_code_hash(
        &self,
        user: UserId,
        purpose: zf_store::OtpPurpose,
        channel: zf_store::OtpChannel,
        code: &str,
    ) -> BlindIndex {
        let mut value = zeroize::Zeroizing::new(
            format!("{user}\0{}\0{}\0", purpose.as_str(), channel.as_str()).into_bytes(),
        );
        value.extend_from_slice(code.as_bytes());
        self.blind_index(OTP_CODE_DOMAIN, &value)
    }

    pub fn id_number_index(&self, id: &IdNumber) -> BlindIndex {
        self.search_token(ID_NUMBER_DOMAIN, id.as_str().as_bytes())
    }

    /// The tokens a search by ID number looks for (see [`Keys::index_candidates`]).
    pub fn id_number_candidates(&self, id: &IdNumber) -> Vec<BlindIndex> {
        self.search_tokens(ID_NUMBER_DOMAIN, id.as_str().as_bytes())
    }
}
