//! KEK rotation and the keyring's status. A rotation adds the next KEK version, waits for every
//! node to wrap new keys under it, rewraps every wrapped key still under an older version —
//! clients' and leads' data keys and the system keys, a page at a time, each key swapped only if
//! unchanged — and then retires the versions nothing refers to any more. Data is untouched: only
//! the wrapped keys change, so a rotation is fast, and a rotation stopped half-way is finished by
//! running it again.

use std::time::Duration;

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_crypto::{KeyKind, KeyVersion, WrappedKey};
use zf_store::{KekState, KeySwap, KeyTable};

use crate::keys::system_key_kind;
use crate::{now_ms, App, AppError};

const PAGE: u32 = 500;
const DAY_MS: i64 = 86_400_000;
/// The rotation policy's default: a KEK older than this is overdue for rotation.
pub const KEK_MAX_AGE_DAYS: u32 = 365;

/// One KEK version as `keys status` shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct KekVersionView {
    pub version: u32,
    /// `active` or `retired`; the newest active version wraps new keys.
    pub state: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub age_days: i64,
    /// Wrapped keys under this version now, by table.
    pub keys: std::collections::BTreeMap<String, u64>,
}

/// The keyring as the security administrator sees it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct KeyStatus {
    pub current: u32,
    pub versions: Vec<KekVersionView>,
    /// The rotation policy: the current KEK's maximum age.
    pub max_age_days: i64,
    /// The current KEK is older than the policy allows.
    pub rotation_overdue: bool,
}

/// What a rotation did.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    pub from: u32,
    pub to: u32,
    pub rewrapped: u64,
    pub retired: Vec<u32>,
}

/// The owner a wrapped key is bound to, as its context says it.
fn context(table: KeyTable, id: &str) -> String {
    match table {
        KeyTable::ClientKeys | KeyTable::ClientPreviousKeys => format!("client:{id}"),
        KeyTable::Leads | KeyTable::LeadPreviousKeys => format!("lead:{id}"),
        KeyTable::SystemKeys => format!("system:{id}"),
    }
}

fn kind(table: KeyTable, id: &str) -> Result<KeyKind, AppError> {
    match table {
        KeyTable::ClientKeys
        | KeyTable::ClientPreviousKeys
        | KeyTable::Leads
        | KeyTable::LeadPreviousKeys => Ok(KeyKind::Dek),
        KeyTable::SystemKeys => system_key_kind(id)
            .ok_or_else(|| AppError::Internal(format!("unknown system key {id:?}"))),
    }
}

impl App {
    /// Every wrapped key's KEK version, counted by version and table.
    async fn wrapped_key_counts(
        &self,
    ) -> Result<
        std::collections::BTreeMap<KeyVersion, std::collections::BTreeMap<String, u64>>,
        AppError,
    > {
        let mut counts: std::collections::BTreeMap<
            KeyVersion,
            std::collections::BTreeMap<String, u64>,
        > = Default::default();
        for table in KeyTable::ALL {
            let mut after = None;
            loop {
                let page = self.store.wrapped_keys_after(table, after, PAGE).await?;
                for (_, wrapped) in &page {
                    *counts
                        .entry(wrapped.kek_version())
                        .or_default()
                        .entry(table.as_str().to_owned())
                        .or_default() += 1;
                }
                match page.last() {
                    Some((id, _)) if page.len() == PAGE as usize => after = Some(id.clone()),
                    _ => break,
                }
            }
        }
        Ok(counts)
    }

    /// Reads the keyring again (a serving node does so every few seconds): the KEK versions,
    /// and the blind-index keys of search tokens, so a blind-index rotation started on another
    /// node reaches this one within a tick.
    pub async fn keyring_refresh(&self) -> Result<(), AppError> {
        self.keys.refresh(self.store.as_ref()).await?;
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        self.keys.refresh_mfa(self.store.as_ref()).await
    }

    pub async fn key_status(&self) -> Result<KeyStatus, AppError> {
        let now = self.now_ms();
        let rows = self.store.kek_versions().await?;
        let mut counts = self.wrapped_key_counts().await?;
        let current = self.keys.current_kek_version();
        let versions: Vec<KekVersionView> = rows
            .iter()
            .map(|r| KekVersionView {
                version: r.version.0,
                state: r.state.as_str().to_owned(),
                created_at: r.created_at_ms,
                retired_at: r.retired_at_ms,
                age_days: (now - r.created_at_ms) / DAY_MS,
                keys: counts.remove(&r.version).unwrap_or_default(),
            })
            .collect();
        let age = versions
            .iter()
            .find(|v| v.version == current.0)
            .map_or(0, |v| v.age_days);
        Ok(KeyStatus {
            current: current.0,
            versions,
            max_age_days: i64::from(self.config.kek_max_age_days),
            rotation_overdue: age > i64::from(self.config.kek_max_age_days),
        })
    }

    /// [`App::key_rotate`] for the signed-in security administrator.
    pub async fn key_rotate_by(
        &self,
        grant: &zf_policy::Grant,
        meta: &crate::RequestMeta,
        grace: Duration,
    ) -> Result<RotationReport, AppError> {
        self.key_rotate(crate::actor(grant, meta), grace, &|_| {})
            .await
    }

    /// Rotates the KEK: a new version, every key rewrapped under it, older versions retired.
    /// `grace` is how long to wait after adding the version, so that every node has read the
    /// keyring again (they do every few seconds) before the last sweep; `progress` hears how
    /// many keys have been rewrapped so far.
    pub async fn key_rotate(
        &self,
        by: Actor,
        grace: Duration,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<RotationReport, AppError> {
        self.keys.refresh(self.store.as_ref()).await?;
        let rows = self.store.kek_versions().await?;
        let from = self.keys.current_kek_version();
        let newest = rows.iter().map(|r| r.version.0).max().unwrap_or(1);
        let to = KeyVersion(newest + 1);
        let event = AuditEvent::new(
            now_ms(),
            by.clone(),
            AuditAction::KekRotated,
            Outcome::Success,
        )
        .on("kek", to.0.to_string())
        .detail(format!("KEK v{} -> v{}", from.0, to.0));
        // With a token, the new version is generated inside it before the keyring names it, so
        // no node ever looks for a KEK the token does not hold. Versions are never destroyed
        // in the token here: backups taken before this rotation still need them.
        self.keys.provision_kek(to)?;
        self.store.kek_version_add(to, now_ms(), event).await?;
        self.keys.refresh(self.store.as_ref()).await?;
        tokio::time::sleep(grace).await;
        let mut rewrapped = 0;
        // Keys written by a node that had not yet read the new version are caught by the next
        // sweep; after three, whatever is left waits for the next rotation.
        for _ in 0..3 {
            let done = self.rewrap_all(&by, to, &mut rewrapped, progress).await?;
            if done == 0 {
                break;
            }
        }
        let counts = self.wrapped_key_counts().await?;
        let mut retired = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.state == KekState::Active && r.version != to)
        {
            if counts.contains_key(&row.version) {
                continue;
            }
            let event = AuditEvent::new(
                now_ms(),
                by.clone(),
                AuditAction::KekRetired,
                Outcome::Success,
            )
            .on("kek", row.version.0.to_string())
            .detail(format!(
                "nothing is wrapped under v{} any more",
                row.version.0
            ));
            self.store
                .kek_version_retire(row.version, now_ms(), event)
                .await?;
            retired.push(row.version.0);
        }
        self.keys.refresh(self.store.as_ref()).await?;
        Ok(RotationReport {
            from: from.0,
            to: to.0,
            rewrapped,
            retired,
        })
    }

    /// One sweep over every table; returns how many keys it found under an older version.
    async fn rewrap_all(
        &self,
        by: &Actor,
        to: KeyVersion,
        rewrapped: &mut u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, AppError> {
        let target = self.keys.kek(to)?;
        let mut found = 0;
        for table in KeyTable::ALL {
            let mut after = None;
            loop {
                let page = self.store.wrapped_keys_after(table, after, PAGE).await?;
                let mut swaps = Vec::new();
                for (id, wrapped) in &page {
                    if wrapped.kek_version() == to {
                        continue;
                    }
                    let old = self.keys.kek(wrapped.kek_version())?;
                    let new: WrappedKey = old.rewrap(
                        kind(table, id)?,
                        wrapped,
                        context(table, id).as_bytes(),
                        &target,
                    )?;
                    swaps.push(KeySwap {
                        id: id.clone(),
                        old: wrapped.clone(),
                        new,
                    });
                }
                found += swaps.len() as u64;
                if !swaps.is_empty() {
                    let n = swaps.len();
                    let event = AuditEvent::new(
                        now_ms(),
                        by.clone(),
                        AuditAction::KeysRewrapped,
                        Outcome::Success,
                    )
                    .on("kek", to.0.to_string())
                    .detail(format!(
                        "{n} keys of {} rewrapped under v{}",
                        table.as_str(),
                        to.0
                    ));
                    *rewrapped += self.store.wrapped_keys_swap(table, swaps, event).await?;
                    progress(*rewrapped);
                }
                match page.last() {
                    Some((id, _)) if page.len() == PAGE as usize => after = Some(id.clone()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}
