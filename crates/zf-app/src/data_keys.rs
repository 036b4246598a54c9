//! Data-key replacement and re-encryption.
//!
//! A holder's (client's or lead's) data key is replaced in three steps, each safe to repeat:
//! the new key becomes current and the old one is kept as the previous key (new values are
//! sealed under the new key from then on); every value still under the old key is opened and
//! sealed again under the new one, each swapped only if unchanged; and after a grace period —
//! long enough for any request that read the old key before the replacement to have finished —
//! stragglers are sealed again and the previous key is dropped, by a statement that drops it only
//! if no value of the holder is under anything but the current key.
//!
//! `keys rotate --reencrypt` does this for every holder as a [`KeyJob`] that commits its cursor
//! after every batch and is held by one runner at a time through a lease: a runner killed
//! half-way (`kill -9`, a crash, a restart) leaves the lease to expire and the next runner —
//! any serving node, or the command run again — carries on from the cursor. A key that has
//! sealed [`DataKeyPolicy::max_encryptions`] values (counted by the database in the writing
//! transaction) is replaced the same way by the monitoring tick, well before AES-GCM's 2^32
//! random-nonce bound.

use std::collections::HashMap;

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_crypto::{Aad, CipherSuite, DekRing, KeyVersion};
use zf_store::{
    HolderFilter, HolderKeys, KeyHolder, KeyJob, KeyJobKind, KeyJobProgress, KeyJobState,
    KeyReplacement, SealedAt, SealedSwap, SealedValue,
};

use crate::{now_ms, App, AppError};

const PHASE_SWEEP: &str = "sweep";
/// The system data key that seals MFA secrets and code addresses, replaced after the holders'.
const PHASE_SYSTEM: &str = "rekey:system";

fn rekey_phase(holder: KeyHolder) -> String {
    format!("rekey:{}", holder.as_str())
}

/// The cipher suite a new deployment chooses, and when data keys are replaced.
#[derive(Clone, Debug)]
pub struct DataKeyPolicy {
    /// The suite for a new deployment (AES-256-GCM if unset); fixed once recorded.
    pub cipher_suite: Option<CipherSuite>,
    /// A data key that has sealed this many values is replaced: 2^30, a quarter of the 2^32
    /// messages AES-GCM allows one key with random nonces.
    pub max_encryptions: i64,
    /// How long a replaced key is kept for requests that read it before the replacement.
    pub grace_ms: i64,
    /// Holders per batch of a re-encryption.
    pub batch: u32,
    /// How long a job's runner holds it without reporting progress before another may take
    /// over (a runner killed half-way is replaced after this).
    pub lease_ms: i64,
}

impl Default for DataKeyPolicy {
    fn default() -> Self {
        DataKeyPolicy {
            cipher_suite: None,
            max_encryptions: 1 << 30,
            grace_ms: 30_000,
            batch: 200,
            lease_ms: 30_000,
        }
    }
}

/// A key job as the security administrator sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyJobView {
    pub id: String,
    pub kind: String,
    /// `running` or `finished`.
    pub state: String,
    /// A re-encryption's `rekey:client`, `rekey:lead`, `sweep`; a re-index's `reindex:wait`,
    /// `reindex:client`, `reindex:lead`; then `finished`.
    pub phase: String,
    /// Holders (clients and leads) when the job started.
    pub total: i64,
    /// Holders given a new data key so far (re-index: clients and leads checked).
    pub holders_done: i64,
    /// Values sealed again so far (re-index: search tokens written under the new key).
    pub values_done: i64,
    pub started_by: String,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl From<KeyJob> for KeyJobView {
    fn from(j: KeyJob) -> Self {
        KeyJobView {
            id: j.id,
            kind: j.kind.as_str().to_owned(),
            state: j.state.as_str().to_owned(),
            phase: j.phase,
            total: j.total,
            holders_done: j.holders_done,
            values_done: j.values_done,
            started_by: j.started_by,
            started_at: j.started_at_ms,
            updated_at: j.updated_at_ms,
            finished_at: j.finished_at_ms,
        }
    }
}

/// The job's starter, as the actor of the events the job writes on its behalf.
fn by_job(job: &KeyJob) -> Actor {
    let mut actor = Actor::system();
    actor.name = format!("key job {} (started by {})", job.id, job.started_by);
    actor
}

/// The associated data a value was sealed with, by where it lives.
pub(crate) fn aad_of(at: &SealedAt) -> Aad {
    match at {
        SealedAt::ClientIdNumber(id) => crate::clients::aad(*id),
        SealedAt::ClientNotes(id) => crate::clients::notes_aad(*id),
        SealedAt::Record(kind, id) => crate::crm::aad(*kind, *id, "sealed"),
        SealedAt::RecordContent(kind, id) => crate::crm::aad(*kind, *id, "content"),
        SealedAt::Lead(id) => crate::crm::leads::aad(*id),
        SealedAt::UserTotp(user) => crate::keys::Keys::totp_aad(*user),
        SealedAt::OtpAddress { user, channel, .. } => {
            crate::keys::Keys::otp_address_aad(*user, *channel)
        }
    }
}

/// `value` sealed again under `ring`'s current key and suite, as a swap; `None` if it is
/// under them already.
fn sealed_again(ring: &DekRing, value: SealedValue) -> Result<Option<SealedSwap>, AppError> {
    if value.sealed.key_version() == ring.current_version() && value.sealed.suite() == ring.suite()
    {
        return Ok(None);
    }
    let aad = aad_of(&value.at);
    let plain = zeroize::Zeroizing::new(ring.open(&value.sealed, &aad)?);
    Ok(Some(SealedSwap {
        holder_id: value.holder_id,
        new: ring.seal(&plain, &aad),
        at: value.at,
        old: value.sealed,
    }))
}

/// What one pass over a page of holders did.
#[derive(Default)]
struct Pass {
    replaced: i64,
    resealed: i64,
}

impl App {
    /// The holders' keys, unwrapped.
    pub(crate) fn rings(
        &self,
        holders: &[HolderKeys],
    ) -> Result<HashMap<String, DekRing>, AppError> {
        holders
            .iter()
            .map(|h| {
                Ok((
                    h.id.clone(),
                    self.keys.holder_key(h.holder, &h.id, &h.slots)?,
                ))
            })
            .collect()
    }

    /// Seals again, under each holder's current key, every value of theirs under another.
    async fn reseal(&self, holder: KeyHolder, holders: &[HolderKeys]) -> Result<i64, AppError> {
        if holders.is_empty() {
            return Ok(0);
        }
        let rings = self.rings(holders)?;
        let ids = holders.iter().map(|h| h.id.clone()).collect();
        let mut swaps = Vec::new();
        for value in self.store.sealed_values(holder, ids).await? {
            let Some(ring) = rings.get(&value.holder_id) else {
                continue;
            };
            swaps.extend(sealed_again(ring, value)?);
        }
        if swaps.is_empty() {
            return Ok(0);
        }
        Ok(self.store.sealed_values_swap(swaps).await? as i64)
    }

    /// Gives each holder without a previous key a new current key, keeping the old as previous.
    /// Returns the holders replaced.
    async fn replace_keys(
        &self,
        holder: KeyHolder,
        holders: &[HolderKeys],
        event: Option<AuditEvent>,
    ) -> Result<Vec<String>, AppError> {
        let replacements = holders
            .iter()
            .filter(|h| h.slots.previous.is_none())
            .map(|h| {
                let next = KeyVersion(h.slots.current.version.0 + 1);
                let (_, wrapped) = self.keys.new_holder_key(holder, &h.id, next)?;
                Ok(KeyReplacement {
                    id: h.id.clone(),
                    expected: h.slots.current.wrapped.clone(),
                    next: wrapped,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        if replacements.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .data_keys_replace(holder, replacements, now_ms(), event)
            .await?)
    }

    /// One batch of the rekey phase: the page of holders after `after`, each given a new key
    /// (unless it already has one being re-encrypted) and its values sealed again under it.
    /// Returns the pass and the last id of the page (`None`: no holders left).
    async fn rekey_page(
        &self,
        holder: KeyHolder,
        after: Option<String>,
        job_id: &str,
        started_at_ms: i64,
    ) -> Result<(Pass, Option<String>), AppError> {
        let batch = self.config.data_keys.batch;
        let mut pass = Pass::default();
        let mut page = self
            .store
            .key_holders(holder, HolderFilter::After(after.clone()), batch)
            .await?;
        let Some(last) = page.last().map(|h| h.id.clone()) else {
            return Ok((pass, None));
        };
        // A holder still holding a previous key from before this job finishes that
        // re-encryption first, so that its new key is made by this job.
        let stale: Vec<HolderKeys> = page
            .iter()
            .filter(|h| {
                h.slots.previous.is_some()
                    && h.rekeyed_at_ms.is_some_and(|at| {
                        at < started_at_ms && at < now_ms() - self.config.data_keys.grace_ms
                    })
            })
            .cloned()
            .collect();
        if !stale.is_empty() {
            pass.resealed += self.reseal(holder, &stale).await?;
            self.drop_previous(holder, &stale).await?;
        }
        // A replacement loses its compare-and-swap when a KEK rotation rewraps the key at the
        // same moment; reading the page again and retrying settles it.
        for _ in 0..5 {
            // Each batch's replacement is audited in its own transaction, as a KEK rotation's
            // pages are: which holders got new keys, when, under which job.
            let first = page.first().map_or("", |h| h.id.as_str());
            let event = AuditEvent::new(
                now_ms(),
                Actor::system(),
                AuditAction::DataKeysReplaced,
                Outcome::Success,
            )
            .on(holder.as_str(), format!("{first}..{last}"))
            .detail(format!(
                "re-encryption job {job_id}: new data keys for the {}s from {first} to {last} that had none from this job",
                holder.as_str()
            ));
            self.replace_keys(holder, &page, Some(event)).await?;
            page = self
                .store
                .key_holders(holder, HolderFilter::After(after.clone()), batch)
                .await?;
            if page
                .iter()
                .filter(|h| h.id.as_str() <= last.as_str())
                .all(|h| h.slots.previous.is_some() || h.rekeyed_at_ms >= Some(started_at_ms))
            {
                break;
            }
        }
        page.retain(|h| h.id.as_str() <= last.as_str());
        // Counted from the keys' own record rather than from the replacements made now, so a
        // batch done again after a crash counts its holders once.
        pass.replaced = page
            .iter()
            .filter(|h| h.rekeyed_at_ms >= Some(started_at_ms))
            .count() as i64;
        pass.resealed += self.reseal(holder, &page).await?;
        Ok((pass, Some(last)))
    }

    async fn drop_previous(
        &self,
        holder: KeyHolder,
        holders: &[HolderKeys],
    ) -> Result<u64, AppError> {
        let ids = holders
            .iter()
            .map(|h| (h.id.clone(), h.slots.current.version))
            .collect();
        Ok(self.store.previous_keys_drop(holder, ids).await?)
    }

    /// One batch of the sweep: holders whose grace has passed get their stragglers sealed
    /// again and their previous key dropped. Returns the pass and whether any holder still
    /// holds a previous key.
    async fn sweep_page(&self) -> Result<(Pass, bool), AppError> {
        let mut pass = Pass::default();
        let due = now_ms() - self.config.data_keys.grace_ms;
        let mut pending = false;
        // Dropping only reads what it must: the statement itself checks that every value is
        // under the current key, so the values of a page are read again only when a straggler
        // kept some previous key, and pages can be larger than the rekey phase's.
        let size = self.config.data_keys.batch.saturating_mul(4);
        for holder in KeyHolder::ALL {
            let page = self
                .store
                .key_holders(holder, HolderFilter::WithPreviousBefore(due), size)
                .await?;
            let dropped = self.drop_previous(holder, &page).await?;
            if dropped < page.len() as u64 {
                pass.resealed += self.reseal(holder, &page).await?;
                self.drop_previous(holder, &page).await?;
            }
            pending |= !self
                .store
                .key_holders(holder, HolderFilter::WithPreviousBefore(i64::MAX), 1)
                .await?
                .is_empty();
        }
        Ok((pass, pending))
    }

    /// One step of replacing the MFA system key: a new version made current (the old kept as
    /// previous); once the grace has passed — every node has read the new version on its
    /// keyring refresh — every TOTP secret and code address sealed again under it, each swapped
    /// only if unchanged, and the previous key deleted by a transaction that first checks no
    /// value is under it. Returns the pass and whether the key is replaced.
    async fn rekey_system(&self, by: Actor) -> Result<(Pass, bool), AppError> {
        let mut pass = Pass::default();
        self.keys.refresh_mfa(self.store.as_ref()).await?;
        let version = |v: Option<String>| -> Result<Option<u32>, AppError> {
            v.map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| AppError::Internal(format!("crypto_settings: MFA key {v:?}")))
            })
            .transpose()
        };
        let current =
            version(self.store.crypto_setting(zf_store::MFA_KEY_VERSION).await?)?.unwrap_or(1);
        let previous = version(
            self.store
                .crypto_setting(zf_store::MFA_KEY_PREVIOUS)
                .await?,
        )?;
        let Some(previous) = previous else {
            let next = current + 1;
            let wrapped = self.keys.new_mfa_key(next)?;
            let event = AuditEvent::new(
                now_ms(),
                by,
                AuditAction::DataKeysReplaced,
                Outcome::Success,
            )
            .on("system_key", crate::keys::Keys::mfa_key_name(next))
            .detail(format!(
                "the MFA secrets' system data key v{current} -> v{next}"
            ));
            self.store
                .mfa_key_replace(
                    &crate::keys::Keys::mfa_key_name(next),
                    wrapped,
                    current,
                    next,
                    now_ms(),
                    event,
                )
                .await?;
            self.keys.refresh_mfa(self.store.as_ref()).await?;
            return Ok((pass, false));
        };
        // Unreadable means long ago: the grace has passed.
        let replaced_at = self
            .store
            .crypto_setting(zf_store::MFA_KEY_REPLACED_AT)
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if now_ms() < replaced_at + self.config.data_keys.grace_ms {
            return Ok((pass, false));
        }
        let ring = self.keys.mfa_ring();
        let mut swaps = Vec::new();
        for value in self.store.mfa_sealed_values().await? {
            swaps.extend(sealed_again(&ring, value)?);
        }
        if !swaps.is_empty() {
            pass.resealed += self.store.sealed_values_swap(swaps).await? as i64;
        }
        let dropped = self
            .store
            .mfa_key_drop_previous(previous, &crate::keys::Keys::mfa_key_name(previous))
            .await?;
        if dropped {
            self.keys.refresh_mfa(self.store.as_ref()).await?;
        }
        Ok((pass, dropped))
    }

    /// A key job about to start, held by this node: whoever starts a job runs it first (the
    /// command line that started it, or the node that took the request), and another node takes
    /// over only if that runner stops reporting.
    pub(crate) fn new_key_job(
        &self,
        kind: KeyJobKind,
        phase: String,
        total: i64,
        by: &Actor,
    ) -> KeyJob {
        let now = now_ms();
        KeyJob {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            state: KeyJobState::Running,
            phase,
            cursor: None,
            total,
            holders_done: 0,
            values_done: 0,
            started_by: by.name.clone(),
            started_at_ms: now,
            updated_at_ms: now,
            finished_at_ms: None,
            lease_owner: Some(self.key_job_runner.0.clone()),
            lease_until_ms: Some(now + self.config.data_keys.lease_ms),
        }
    }

    /// Starts re-encrypting all data under new data keys, as `by`; the job runs in the
    /// background on a serving node (or in `zhangfang keys rotate --reencrypt`). `Conflict`
    /// while one runs.
    pub async fn reencrypt_start(&self, by: Actor) -> Result<KeyJobView, AppError> {
        let mut total = 0;
        for holder in KeyHolder::ALL {
            total += self.store.key_holders_count(holder).await?;
        }
        let job = self.new_key_job(
            KeyJobKind::Reencrypt,
            rekey_phase(KeyHolder::Client),
            total,
            &by,
        );
        let now = job.started_at_ms;
        let event = AuditEvent::new(now, by, AuditAction::ReencryptionStarted, Outcome::Success)
            .on("key_job", &job.id)
            .detail(format!(
                "new data keys for {total} clients and leads, every value sealed again"
            ));
        self.store
            .key_job_start(job.clone(), event)
            .await
            .map_err(|e| match e {
                zf_store::StoreError::Conflict(_) => AppError::Conflict(
                    "a key job (re-encryption or blind-index rotation) is already running".into(),
                ),
                other => other.into(),
            })?;
        Ok(job.into())
    }

    /// [`App::reencrypt_start`] for the signed-in security administrator.
    pub async fn reencrypt_start_by(
        &self,
        grant: &zf_policy::Grant,
        meta: &crate::RequestMeta,
    ) -> Result<KeyJobView, AppError> {
        self.reencrypt_start(crate::actor(grant, meta)).await
    }

    /// The running key job, else the latest finished one.
    pub async fn key_job(&self) -> Result<Option<KeyJobView>, AppError> {
        Ok(self.store.key_job_latest().await?.map(Into::into))
    }

    /// Runs the running key job in the background on this node, unless this node runs it
    /// already; a failure is logged and the job is left for the next attempt (the serving
    /// loop tries every few seconds).
    pub fn key_job_spawn(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = app.key_job_run(&|_| {}).await {
                tracing::error!(error = %e, "key job stopped; it resumes from its cursor");
            }
        });
    }

    /// Runs the running job on this node until it finishes, if its lease is free or expired;
    /// `Ok(None)` when there is no running job, this node runs it already, or another node
    /// holds it. `progress` hears the job after every batch. A lost lease (this node stalled
    /// past it and another took over) stops this run without error.
    pub async fn key_job_run(
        &self,
        progress: &(dyn Fn(&KeyJobView) + Sync),
    ) -> Result<Option<KeyJobView>, AppError> {
        self.key_job_drive(progress, None).await
    }

    /// Runs at most `batches` batches of the running job on this node, as
    /// [`App::key_job_run`] does, and returns the job as it then stands; this node keeps the
    /// lease until it expires, so a later call carries on from the cursor.
    pub async fn key_job_run_batches(
        &self,
        batches: usize,
    ) -> Result<Option<KeyJobView>, AppError> {
        self.key_job_drive(&|_| {}, Some(batches)).await
    }

    async fn key_job_drive(
        &self,
        progress: &(dyn Fn(&KeyJobView) + Sync),
        max_batches: Option<usize>,
    ) -> Result<Option<KeyJobView>, AppError> {
        let runner_state = self.key_job_runner.clone();
        let Ok(_running) = runner_state.1.try_lock() else {
            return Ok(None);
        };
        let runner = runner_state.0.as_str();
        let Some(job) = self.store.key_job_latest().await? else {
            return Ok(None);
        };
        if job.state != KeyJobState::Running {
            return Ok(None);
        }
        let now = now_ms();
        if !self
            .store
            .key_job_claim(&job.id, runner, now, now + self.config.data_keys.lease_ms)
            .await?
        {
            return Ok(None);
        }
        let (mut phase, mut cursor) = (job.phase.clone(), job.cursor.clone());
        let mut batches = 0usize;
        loop {
            if max_batches.is_some_and(|max| batches >= max) {
                return self.key_job().await;
            }
            batches += 1;
            let (pass, next_phase, next_cursor) = if job.kind == KeyJobKind::Reindex {
                match self.reindex_step(&job, &phase, cursor.clone()).await? {
                    crate::blind_index::ReindexStep::Done => {
                        return self.reindex_finish(&job, runner).await;
                    }
                    crate::blind_index::ReindexStep::Next {
                        pass,
                        phase,
                        cursor,
                    } => (
                        Pass {
                            replaced: pass.holders,
                            resealed: pass.tokens,
                        },
                        phase,
                        cursor,
                    ),
                }
            } else if phase == rekey_phase(KeyHolder::Client)
                || phase == rekey_phase(KeyHolder::Lead)
            {
                let holder = if phase == rekey_phase(KeyHolder::Client) {
                    KeyHolder::Client
                } else {
                    KeyHolder::Lead
                };
                let (pass, last) = self
                    .rekey_page(holder, cursor.clone(), &job.id, job.started_at_ms)
                    .await?;
                match (last, holder) {
                    (Some(last), _) => (pass, phase.clone(), Some(last)),
                    (None, KeyHolder::Client) => (pass, rekey_phase(KeyHolder::Lead), None),
                    (None, KeyHolder::Lead) => (pass, PHASE_SYSTEM.to_owned(), None),
                }
            } else if phase == PHASE_SYSTEM {
                let (pass, done) = self.rekey_system(by_job(&job)).await?;
                if done {
                    (pass, PHASE_SWEEP.to_owned(), None)
                } else {
                    if pass.resealed == 0 {
                        // Waiting out the grace after the key was replaced.
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    (pass, phase.clone(), None)
                }
            } else if phase == PHASE_SWEEP {
                let (pass, pending) = self.sweep_page().await?;
                if !pending {
                    return self.key_job_finish(&job, runner).await;
                }
                if pass.resealed == 0 {
                    // Waiting out the grace of the last keys replaced.
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                (pass, phase.clone(), None)
            } else {
                return Err(AppError::Internal(format!(
                    "key job {} is in an unknown phase {phase:?}",
                    job.id
                )));
            };
            let now = now_ms();
            let kept = self
                .store
                .key_job_progress(
                    &job.id,
                    runner,
                    KeyJobProgress {
                        phase: next_phase.clone(),
                        cursor: next_cursor.clone(),
                        holders: pass.replaced,
                        values: pass.resealed,
                        now_ms: now,
                        lease_until_ms: now + self.config.data_keys.lease_ms,
                    },
                )
                .await?;
            if !kept {
                return Ok(None);
            }
            (phase, cursor) = (next_phase, next_cursor);
            if let Some(job) = self.key_job().await? {
                progress(&job);
            }
        }
    }

    async fn key_job_finish(
        &self,
        job: &KeyJob,
        runner: &str,
    ) -> Result<Option<KeyJobView>, AppError> {
        let latest = self.store.key_job_latest().await?;
        let (holders, values) = latest
            .as_ref()
            .map_or((0, 0), |j| (j.holders_done, j.values_done));
        let event = AuditEvent::new(
            now_ms(),
            Actor::system(),
            AuditAction::ReencryptionFinished,
            Outcome::Success,
        )
        .on("key_job", &job.id)
        .detail(format!(
            "{holders} new data keys, {values} values sealed again; no value is under an old key"
        ));
        self.store
            .key_job_finish(&job.id, runner, now_ms(), event)
            .await?;
        self.key_job().await
    }

    /// Replaces data keys that have sealed [`DataKeyPolicy::max_encryptions`] values, and
    /// finishes replacements whose grace has passed (the monitoring tick calls this). A running
    /// re-encryption does the same for every key, so this waits for it. Returns how many keys
    /// were replaced.
    pub async fn data_keys_maintain(&self) -> Result<u64, AppError> {
        if self
            .store
            .key_job_latest()
            .await?
            .is_some_and(|j| j.state == KeyJobState::Running)
        {
            return Ok(0);
        }
        let limit = self.config.data_keys.max_encryptions;
        let mut replaced = 0u64;
        for holder in KeyHolder::ALL {
            let worn = self
                .store
                .key_holders(
                    holder,
                    HolderFilter::Worn(limit),
                    self.config.data_keys.batch,
                )
                .await?;
            if worn.is_empty() {
                continue;
            }
            // Written with the replacement, in its transaction; keys changed since they were
            // read (a rotation's rewrap) are left for the next tick.
            let event = AuditEvent::new(
                now_ms(),
                Actor::system(),
                AuditAction::DataKeysReplaced,
                Outcome::Success,
            )
            .on(
                holder.as_str(),
                worn.iter()
                    .map(|h| h.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .detail(format!(
                "data keys of {} {}s that had sealed {limit} or more values",
                worn.len(),
                holder.as_str()
            ));
            let ids = self.replace_keys(holder, &worn, Some(event)).await?;
            if !ids.is_empty() {
                let fresh: Vec<HolderKeys> = self
                    .store
                    .key_holders(
                        holder,
                        HolderFilter::WithPreviousBefore(i64::MAX),
                        self.config.data_keys.batch,
                    )
                    .await?
                    .into_iter()
                    .filter(|h| ids.contains(&h.id))
                    .collect();
                self.reseal(holder, &fresh).await?;
                replaced += ids.len() as u64;
            }
        }
        self.sweep_page().await?;
        Ok(replaced)
    }
}
