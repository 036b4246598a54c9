//! Data-key versions and the re-encryption of data under new keys.
//!
//! Every key holder (a client, or a lead before it becomes one) has a current data key with a
//! version, an encryption counter kept in the writing transaction, and — only while
//! its data is being re-encrypted — the previous key. Values sealed under either key open; new
//! values are sealed under the current one. A holder's previous key is dropped only when no value
//! of the holder is sealed under anything but the current version, checked in the same statement
//! that drops it, so a key is never dropped while data still needs it.
//!
//! Re-encryption runs as a [`KeyJob`]: a row whose phase and cursor are committed after every
//! batch, held by one runner at a time through a lease, so a runner killed half-way is replaced
//! by the next one to find its lease expired, which carries on from the cursor.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_crypto::{BlindIndex, KeyVersion, Sealed, WrappedKey};
use zf_domain::{ClientId, LeadId, RecordId, UserId};

use crate::records::RecordKind;
use crate::Result;

/// A data key as stored: its version and its wrapped bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDek {
    pub version: KeyVersion,
    pub wrapped: WrappedKey,
}

/// The data keys of one holder: the current one, and the previous one while its values are
/// being re-encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySlots {
    pub current: WrappedDek,
    pub previous: Option<WrappedDek>,
}

impl KeySlots {
    /// The first key of a new holder.
    pub fn first(wrapped: WrappedKey) -> Self {
        KeySlots {
            current: WrappedDek {
                version: KeyVersion(1),
                wrapped,
            },
            previous: None,
        }
    }

    pub(crate) fn decode(
        current: Vec<u8>,
        version: i64,
        previous: Option<Vec<u8>>,
        previous_version: Option<i64>,
        table: &'static str,
    ) -> Result<Self> {
        use crate::StoreError;
        let version_of = |v: i64| {
            u32::try_from(v)
                .map(KeyVersion)
                .map_err(|e| StoreError::corrupt(table, e))
        };
        let current = WrappedDek {
            version: version_of(version)?,
            wrapped: WrappedKey::from_bytes(current).map_err(|e| StoreError::corrupt(table, e))?,
        };
        let previous = match (previous, previous_version) {
            (Some(bytes), Some(v)) => Some(WrappedDek {
                version: version_of(v)?,
                wrapped: WrappedKey::from_bytes(bytes)
                    .map_err(|e| StoreError::corrupt(table, e))?,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::corrupt(
                    table,
                    "a previous data key without its version",
                ))
            }
        };
        Ok(KeySlots { current, previous })
    }
}

/// What holds data keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyHolder {
    Client,
    Lead,
}

impl KeyHolder {
    pub const ALL: [KeyHolder; 2] = [KeyHolder::Client, KeyHolder::Lead];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyHolder::Client => "client",
            KeyHolder::Lead => "lead",
        }
    }

    /// The table and id column of the holder's keys. Static text, never from input.
    pub(crate) fn key_table(self) -> (&'static str, &'static str) {
        match self {
            KeyHolder::Client => ("client_keys", "client_id"),
            KeyHolder::Lead => ("leads", "id"),
        }
    }
}

/// One holder's keys as a re-encryption reads them.
#[derive(Clone, Debug)]
pub struct HolderKeys {
    pub holder: KeyHolder,
    pub id: String,
    pub slots: KeySlots,
    /// Encryptions under the current key, counted by the database.
    pub encryptions: i64,
    /// When the current key replaced the previous one.
    pub rekeyed_at_ms: Option<i64>,
}

/// Which holders a [`DataKeyStore::key_holders`] page holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HolderFilter {
    /// Every holder with an id after this one (all of them for `None`), in id order.
    After(Option<String>),
    /// Holders without a previous key whose current key has sealed at least this many values,
    /// most worn first.
    Worn(i64),
    /// Holders still holding a previous key replaced before this time (ms), oldest first.
    WithPreviousBefore(i64),
}

impl HolderFilter {
    /// The WHERE condition and ORDER BY of the page over id column `id`, with its one
    /// parameter at `p1` and the limit at `p2` (each store's placeholder syntax).
    pub(crate) fn sql(&self, id: &str, p1: &str, p2: &str) -> String {
        match self {
            HolderFilter::After(_) => {
                format!("({p1} IS NULL OR {id} > {p1}) ORDER BY {id} LIMIT {p2}")
            }
            HolderFilter::Worn(_) => format!(
                "encryptions >= {p1} AND previous_dek IS NULL \
                 ORDER BY encryptions DESC, {id} LIMIT {p2}"
            ),
            HolderFilter::WithPreviousBefore(_) => format!(
                "previous_dek IS NOT NULL AND rekeyed_at < {p1} ORDER BY rekeyed_at, {id} LIMIT {p2}"
            ),
        }
    }
}

/// Where a sealed value lives; each place has its own associated data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealedAt {
    ClientIdNumber(ClientId),
    ClientNotes(ClientId),
    Record(RecordKind, RecordId),
    RecordContent(RecordKind, RecordId),
    Lead(LeadId),
    /// A user's TOTP secret, under the system data key for MFA secrets.
    UserTotp(UserId),
    /// The address one-time codes go to (or the one pending confirmation), under the same key.
    OtpAddress {
        user: UserId,
        channel: crate::OtpChannel,
        pending: bool,
    },
}

impl SealedAt {
    /// Table, column and id column. Static text, never from input.
    pub(crate) fn columns(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            SealedAt::ClientIdNumber(_) => ("clients", "legal_rep_id_number", "id"),
            SealedAt::ClientNotes(_) => ("clients", "notes", "id"),
            SealedAt::Record(..) => ("client_records", "sealed", "id"),
            SealedAt::RecordContent(..) => ("record_blobs", "content", "record_id"),
            SealedAt::Lead(_) => ("leads", "sealed", "id"),
            SealedAt::UserTotp(_) => ("user_mfa", "totp_secret", "user_id"),
            // A user has a factor per channel; the compare-and-swap on the ciphertext, whose
            // nonce is random, finds the one row without naming the channel.
            SealedAt::OtpAddress { pending: false, .. } => ("otp_factors", "address", "user_id"),
            SealedAt::OtpAddress { pending: true, .. } => {
                ("otp_factors", "pending_address", "user_id")
            }
        }
    }

    /// Whose data key seals the value: a client's or a lead's, counted; `None` for values under
    /// the MFA system key.
    pub(crate) fn holder(&self) -> Option<KeyHolder> {
        match self {
            SealedAt::Lead(_) => Some(KeyHolder::Lead),
            SealedAt::UserTotp(_) | SealedAt::OtpAddress { .. } => None,
            _ => Some(KeyHolder::Client),
        }
    }

    pub(crate) fn row_id(&self) -> String {
        match self {
            SealedAt::ClientIdNumber(id) | SealedAt::ClientNotes(id) => id.to_string(),
            SealedAt::Record(_, id) | SealedAt::RecordContent(_, id) => id.to_string(),
            SealedAt::Lead(id) => id.to_string(),
            SealedAt::UserTotp(user) | SealedAt::OtpAddress { user, .. } => user.to_string(),
        }
    }
}

/// A sealed value and the holder whose key sealed it.
#[derive(Clone, Debug)]
pub struct SealedValue {
    pub holder_id: String,
    pub at: SealedAt,
    pub sealed: Sealed,
}

/// Replace `old` by `new` where it is, if it is still `old`.
#[derive(Clone, Debug)]
pub struct SealedSwap {
    /// The holder whose key sealed `new`, whose counter it adds to.
    pub holder_id: String,
    pub at: SealedAt,
    pub old: Sealed,
    pub new: Sealed,
}

/// A holder's next data key, replacing `expected` (which becomes the previous key).
#[derive(Clone, Debug)]
pub struct KeyReplacement {
    pub id: String,
    pub expected: WrappedKey,
    pub next: WrappedDek,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyJobKind {
    /// New data keys for every holder and every value sealed again under them.
    Reencrypt,
    /// A new blind-index key and every search token computed again under it.
    Reindex,
}

impl KeyJobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyJobKind::Reencrypt => "reencrypt",
            KeyJobKind::Reindex => "reindex",
        }
    }
}

/// The `crypto_settings` rows of the system data key that seals MFA secrets: its current version
/// (absent: 1), the previous version while values are sealed again, and when it was replaced.
pub const MFA_KEY_VERSION: &str = "mfa_key_version";
pub const MFA_KEY_PREVIOUS: &str = "mfa_key_previous";
pub const MFA_KEY_REPLACED_AT: &str = "mfa_key_replaced_at";

/// The `crypto_settings` row naming the blind-index key version new tokens are computed under
/// (absent: version 1).
pub const BLIND_INDEX_VERSION: &str = "blind_index_version";
/// The `crypto_settings` row naming the previous blind-index key version, present only while
/// tokens are being computed again under the current one.
pub const BLIND_INDEX_PREVIOUS: &str = "blind_index_previous";

/// The start of a blind-index key rotation: the new key (stored as system key `key_name`)
/// becomes current and `from` the previous version.
#[derive(Clone, Debug)]
pub struct BlindIndexRotation {
    pub from: u32,
    pub to: u32,
    pub key_name: String,
    pub wrapped: WrappedKey,
}

/// A record whose search tokens a re-index computes again: its sealed payload and the tokens it
/// has now.
#[derive(Clone, Debug)]
pub struct ReindexRecord {
    pub id: RecordId,
    pub kind: RecordKind,
    pub sealed: Sealed,
    /// `(field, token)` rows of `record_index`.
    pub tokens: Vec<(String, BlindIndex)>,
}

/// A client as a re-index reads it: its keys, its sealed ID number and token, and its records
/// of the kinds that have search tokens.
#[derive(Clone, Debug)]
pub struct ReindexClient {
    pub id: ClientId,
    pub key: KeySlots,
    pub id_number: Sealed,
    pub id_number_token: BlindIndex,
    pub records: Vec<ReindexRecord>,
}

/// A search token computed again, written only if the sealed value it was computed from is
/// still the one stored (a concurrent change wrote its own token).
#[derive(Clone, Debug)]
pub enum TokenWrite {
    Client {
        id: ClientId,
        id_number: Sealed,
        token: BlindIndex,
    },
    /// Replaces every `record_index` row of the record.
    Record {
        id: RecordId,
        sealed: Sealed,
        tokens: Vec<crate::IndexEntry>,
    },
    Lead {
        id: LeadId,
        sealed: Sealed,
        token: Option<BlindIndex>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyJobState {
    Running,
    Finished,
}

impl KeyJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyJobState::Running => "running",
            KeyJobState::Finished => "finished",
        }
    }
}

/// A key job as stored: the cursor is where the next batch starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyJob {
    pub id: String,
    pub kind: KeyJobKind,
    pub state: KeyJobState,
    /// The job's own words for its stage (e.g. `rekey:client`, `sweep`).
    pub phase: String,
    pub cursor: Option<String>,
    /// Holders to re-key, counted at the start.
    pub total: i64,
    pub holders_done: i64,
    pub values_done: i64,
    pub started_by: String,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// A batch's progress: where the job stands after it, committed only by the lease holder.
#[derive(Clone, Debug)]
pub struct KeyJobProgress {
    pub phase: String,
    pub cursor: Option<String>,
    pub holders: i64,
    pub values: i64,
    pub now_ms: i64,
    pub lease_until_ms: i64,
}

pub(crate) const HOLDER_COLUMNS: &str =
    "wrapped_dek, dek_version, previous_dek, previous_version, encryptions, rekeyed_at";

pub(crate) struct HolderColumns {
    pub id: String,
    pub wrapped_dek: Vec<u8>,
    pub dek_version: i64,
    pub previous_dek: Option<Vec<u8>>,
    pub previous_version: Option<i64>,
    pub encryptions: i64,
    pub rekeyed_at_ms: Option<i64>,
}

pub(crate) fn decode_holder(holder: KeyHolder, c: HolderColumns) -> Result<HolderKeys> {
    Ok(HolderKeys {
        holder,
        slots: KeySlots::decode(
            c.wrapped_dek,
            c.dek_version,
            c.previous_dek,
            c.previous_version,
            holder.key_table().0,
        )?,
        id: c.id,
        encryptions: c.encryptions,
        rekeyed_at_ms: c.rekeyed_at_ms,
    })
}

pub(crate) const KEY_JOB_COLUMNS: &str = "id, kind, state, phase, cursor, total, holders_done,
    values_done, started_by, started_at, updated_at, finished_at, lease_owner, lease_until";

pub(crate) struct KeyJobColumns {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub phase: String,
    pub cursor: Option<String>,
    pub total: i64,
    pub holders_done: i64,
    pub values_done: i64,
    pub started_by: String,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

pub(crate) fn decode_job(c: KeyJobColumns) -> Result<KeyJob> {
    use crate::StoreError;
    Ok(KeyJob {
        kind: match c.kind.as_str() {
            "reencrypt" => KeyJobKind::Reencrypt,
            "reindex" => KeyJobKind::Reindex,
            other => return Err(StoreError::corrupt("key_jobs.kind", other)),
        },
        state: match c.state.as_str() {
            "running" => KeyJobState::Running,
            "finished" => KeyJobState::Finished,
            other => return Err(StoreError::corrupt("key_jobs.state", other)),
        },
        id: c.id,
        phase: c.phase,
        cursor: c.cursor,
        total: c.total,
        holders_done: c.holders_done,
        values_done: c.values_done,
        started_by: c.started_by,
        started_at_ms: c.started_at_ms,
        updated_at_ms: c.updated_at_ms,
        finished_at_ms: c.finished_at_ms,
        lease_owner: c.lease_owner,
        lease_until_ms: c.lease_until_ms,
    })
}

/// Values sealed by a new client: its ID number, and its notes if any.
pub(crate) fn client_insert_encryptions(row: &crate::ClientRow) -> i64 {
    1 + i64::from(row.notes.is_some())
}

/// Values a client update seals: a new ID number, new notes.
pub(crate) fn client_change_encryptions(change: &crate::ClientChange) -> i64 {
    i64::from(change.legal_rep_id_number.is_some())
        + i64::from(matches!(change.notes, Some(Some(_))))
}

/// A client row of a re-index as read: its sealed ID number, its token and its keys.
pub(crate) fn reindex_client(
    number: Vec<u8>,
    token: Vec<u8>,
    keys: HolderColumns,
) -> Result<ReindexClient> {
    use crate::StoreError;
    Ok(ReindexClient {
        id: ClientId::parse(&keys.id).map_err(|e| StoreError::corrupt("clients.id", e))?,
        id_number: decode_sealed(number, "clients.legal_rep_id_number")?,
        id_number_token: BlindIndex::from_bytes(&token)
            .map_err(|e| StoreError::corrupt("clients.legal_rep_id_index", e))?,
        key: decode_holder(KeyHolder::Client, keys)?.slots,
        records: Vec::new(),
    })
}

/// One row of a record joined with one of its `record_index` rows (none: `field` and `token`
/// are NULL).
pub(crate) struct RecordTokenColumns {
    pub client_id: String,
    pub id: String,
    pub kind: String,
    pub sealed: Vec<u8>,
    pub field: Option<String>,
    pub token: Option<Vec<u8>>,
}

/// Gathers the rows of records and their tokens, ordered by client and record, under their
/// clients.
pub(crate) fn attach_records(
    clients: &mut [ReindexClient],
    rows: Vec<RecordTokenColumns>,
) -> Result<()> {
    use crate::StoreError;
    let mut by_client: std::collections::HashMap<String, Vec<ReindexRecord>> =
        std::collections::HashMap::new();
    for row in rows {
        let records = by_client.entry(row.client_id).or_default();
        let id =
            RecordId::parse(&row.id).map_err(|e| StoreError::corrupt("client_records.id", e))?;
        if records.last().is_none_or(|r| r.id != id) {
            records.push(ReindexRecord {
                id,
                kind: RecordKind::parse(&row.kind)
                    .ok_or_else(|| StoreError::corrupt("client_records.kind", row.kind.clone()))?,
                sealed: decode_sealed(row.sealed, "client_records.sealed")?,
                tokens: Vec::new(),
            });
        }
        if let (Some(field), Some(token), Some(record)) = (row.field, row.token, records.last_mut())
        {
            record.tokens.push((
                field,
                BlindIndex::from_bytes(&token)
                    .map_err(|e| StoreError::corrupt("record_index.token", e))?,
            ));
        }
    }
    for client in clients {
        client.records = by_client.remove(&client.id.to_string()).unwrap_or_default();
    }
    Ok(())
}

/// Where a value under the MFA system key lives, by the column it was read from; `channel` is
/// the factor's channel for code addresses.
pub(crate) fn mfa_place(column: &str, user: UserId, channel: Option<&str>) -> Result<SealedAt> {
    if column == "user_mfa.totp_secret" {
        return Ok(SealedAt::UserTotp(user));
    }
    let channel = channel
        .and_then(crate::OtpChannel::parse)
        .ok_or_else(|| crate::StoreError::corrupt("otp_factors.channel", channel.unwrap_or("")))?;
    Ok(SealedAt::OtpAddress {
        user,
        channel,
        pending: column == "otp_factors.pending_address",
    })
}

/// The header bytes that name a key version inside a sealed value (`[format][suite][version]`):
/// SQL compares them to find values under a version without opening anything.
pub(crate) fn version_bytes(version: KeyVersion) -> Vec<u8> {
    version.0.to_be_bytes().to_vec()
}

pub(crate) fn decode_sealed(bytes: Vec<u8>, column: &'static str) -> Result<Sealed> {
    Sealed::from_bytes(bytes).map_err(|e| crate::StoreError::corrupt(column, e))
}

#[async_trait]
pub trait DataKeyStore: Send + Sync {
    /// A deployment-wide cryptographic setting (e.g. the cipher suite).
    async fn crypto_setting(&self, name: &str) -> Result<Option<String>>;
    /// Records `value` unless the setting exists; returns the stored value either way, so
    /// nodes that initialise together agree.
    async fn crypto_setting_init(&self, name: &str, value: &str) -> Result<String>;

    /// How many holders of this kind exist.
    async fn key_holders_count(&self, holder: KeyHolder) -> Result<i64>;
    /// Up to `limit` holders that `filter` picks, in its order.
    async fn key_holders(
        &self,
        holder: KeyHolder,
        filter: HolderFilter,
        limit: u32,
    ) -> Result<Vec<HolderKeys>>;
    /// Every sealed value of these holders.
    async fn sealed_values(&self, holder: KeyHolder, ids: Vec<String>) -> Result<Vec<SealedValue>>;

    /// Makes each replacement's key current and its expected key the previous one, if the
    /// holder's current key is still `expected` and it holds no previous key; returns the ids
    /// replaced. Counters of the new keys start at zero.
    /// `event`, when given, is written in the same transaction if any key was replaced.
    async fn data_keys_replace(
        &self,
        holder: KeyHolder,
        replacements: Vec<KeyReplacement>,
        now_ms: i64,
        event: Option<AuditEvent>,
    ) -> Result<Vec<String>>;
    /// Replaces each value still equal to its `old` form; returns how many were replaced.
    async fn sealed_values_swap(&self, swaps: Vec<SealedSwap>) -> Result<u64>;
    /// Drops the previous key of each holder (id, current version) whose every value is sealed
    /// under that current version, decided in the statement that drops it; returns how many
    /// were dropped.
    async fn previous_keys_drop(
        &self,
        holder: KeyHolder,
        holders: Vec<(String, KeyVersion)>,
    ) -> Result<u64>;

    /// Starts a job; `Conflict` while another key job runs.
    async fn key_job_start(&self, job: KeyJob, event: AuditEvent) -> Result<()>;

    /// Every value sealed under the MFA system key: TOTP secrets and code addresses.
    async fn mfa_sealed_values(&self) -> Result<Vec<SealedValue>>;
    /// Stores the MFA key `to` (system key `key_name`) and makes it current with `from` as the
    /// previous version, in one transaction with `event`. `Conflict` when the current version
    /// is no longer `from` or a previous version is still recorded.
    async fn mfa_key_replace(
        &self,
        key_name: &str,
        wrapped: WrappedKey,
        from: u32,
        to: u32,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Forgets the previous MFA key version and deletes its system key `key_name`, if no value
    /// is sealed under it any more (checked in the same transaction); `false` otherwise.
    async fn mfa_key_drop_previous(&self, previous: u32, key_name: &str) -> Result<bool>;

    /// A system key by name, if stored.
    async fn system_key_get(&self, name: &str) -> Result<Option<WrappedKey>>;
    /// Stores the new blind-index key, makes it current with `from` as the previous version and
    /// starts `job` with `event`, in one transaction. `Conflict` while a key job runs or when
    /// the current version is no longer `from` or a previous version is still recorded.
    async fn blind_index_rotation_start(
        &self,
        rotation: BlindIndexRotation,
        job: KeyJob,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Finishes a re-index held by `owner`: forgets the previous version `previous`, deletes
    /// the system key `delete_key` when given, and marks the job finished with `event`, in one
    /// transaction. `false` if `owner` no longer holds the job.
    async fn blind_index_rotation_finish(
        &self,
        id: &str,
        owner: &str,
        previous: u32,
        delete_key: Option<String>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<bool>;
    /// Up to `limit` clients with ids after `after`, in id order, with their records of
    /// `kinds` that have a sealed payload.
    async fn reindex_clients_after(
        &self,
        after: Option<ClientId>,
        kinds: Vec<RecordKind>,
        limit: u32,
    ) -> Result<Vec<ReindexClient>>;
    /// Writes each token whose sealed value is unchanged, in one transaction; returns how many
    /// were written.
    async fn tokens_write(&self, writes: Vec<TokenWrite>) -> Result<u64>;
    /// The running job, else the latest finished one.
    async fn key_job_latest(&self) -> Result<Option<KeyJob>>;
    /// Takes the job's lease if it is free, expired or already `owner`'s; `false` otherwise.
    async fn key_job_claim(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool>;
    /// Records a batch's progress if `owner` still holds the lease; `false` if it lost it.
    async fn key_job_progress(
        &self,
        id: &str,
        owner: &str,
        progress: KeyJobProgress,
    ) -> Result<bool>;
    /// Marks the job finished, with its closing event.
    async fn key_job_finish(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<bool>;
}
