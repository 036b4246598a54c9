//! The keyring's part of the store: which key-encryption key versions exist and whether each is
//! active or retired, and the wrapped keys a KEK rotation rewraps — clients' data keys, leads'
//! data keys and the system keys — read a page at a time and swapped only if unchanged.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_crypto::{KeyVersion, WrappedKey};

use crate::Result;

/// Where wrapped keys live. Each table has a text id and one wrapped key per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTable {
    ClientKeys,
    /// Clients' previous data keys, held while their data is re-encrypted.
    ClientPreviousKeys,
    Leads,
    LeadPreviousKeys,
    SystemKeys,
}

impl KeyTable {
    pub const ALL: [KeyTable; 5] = [
        KeyTable::SystemKeys,
        KeyTable::ClientKeys,
        KeyTable::ClientPreviousKeys,
        KeyTable::Leads,
        KeyTable::LeadPreviousKeys,
    ];

    /// The name `keys status` counts under.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyTable::ClientKeys => "client_keys",
            KeyTable::ClientPreviousKeys => "client_keys.previous",
            KeyTable::Leads => "leads",
            KeyTable::LeadPreviousKeys => "leads.previous",
            KeyTable::SystemKeys => "system_keys",
        }
    }

    /// The table, its id column and its wrapped-key column (which may be NULL for previous
    /// keys). Static text, never from input.
    pub(crate) fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            KeyTable::ClientKeys => ("client_keys", "client_id", "wrapped_dek"),
            KeyTable::ClientPreviousKeys => ("client_keys", "client_id", "previous_dek"),
            KeyTable::Leads => ("leads", "id", "wrapped_dek"),
            KeyTable::LeadPreviousKeys => ("leads", "id", "previous_dek"),
            KeyTable::SystemKeys => ("system_keys", "name", "wrapped"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KekState {
    /// May wrap (the newest active version does) and unwrap.
    Active,
    /// Nothing refers to it any more; it unwraps nothing.
    Retired,
}

impl KekState {
    pub fn as_str(self) -> &'static str {
        match self {
            KekState::Active => "active",
            KekState::Retired => "retired",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KekState::Active),
            "retired" => Some(KekState::Retired),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekVersionRow {
    pub version: KeyVersion,
    pub state: KekState,
    pub created_at_ms: i64,
    pub retired_at_ms: Option<i64>,
}

/// One wrapped key to replace, if it is still `old`.
#[derive(Clone, Debug)]
pub struct KeySwap {
    pub id: String,
    pub old: WrappedKey,
    pub new: WrappedKey,
}

#[async_trait]
pub trait KeyringStore: Send + Sync {
    /// Every KEK version, oldest first.
    async fn kek_versions(&self) -> Result<Vec<KekVersionRow>>;
    /// Records version 1 as active if the keyring is empty (a new deployment, or one from
    /// before the keyring, whose keys are all wrapped under version 1).
    async fn kek_versions_init(&self, now_ms: i64) -> Result<()>;
    /// Adds `version` as active; `Conflict` if it exists.
    async fn kek_version_add(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Marks `version` retired; `NotFound` unless it is active.
    async fn kek_version_retire(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Up to `limit` wrapped keys of `table` with ids after `after`, in id order.
    async fn wrapped_keys_after(
        &self,
        table: KeyTable,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<(String, WrappedKey)>>;
    /// Replaces each key still equal to its `old` form, in one transaction with `event`;
    /// returns how many were replaced (a key changed meanwhile is left for the next sweep).
    async fn wrapped_keys_swap(
        &self,
        table: KeyTable,
        swaps: Vec<KeySwap>,
        event: AuditEvent,
    ) -> Result<u64>;
}

pub(crate) fn kek_version_row(
    version: i64,
    state: &str,
    created_at_ms: i64,
    retired_at_ms: Option<i64>,
) -> Result<KekVersionRow> {
    Ok(KekVersionRow {
        version: KeyVersion(
            u32::try_from(version)
                .map_err(|e| crate::StoreError::corrupt("kek_versions.version", e))?,
        ),
        state: KekState::parse(state)
            .ok_or_else(|| crate::StoreError::corrupt("kek_versions.state", state))?,
        created_at_ms,
        retired_at_ms,
    })
}
