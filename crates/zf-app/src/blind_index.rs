//! Blind-index key rotation: a new key for search tokens, and every stored token computed again
//! under it.
//!
//! Search tokens (`clients.legal_rep_id_index`, `record_index`, `leads.mobile_index`) are keyed
//! hashes under the blind-index key `blind-index/v{n}` that `crypto_settings` names as current.
//! A rotation, in one transaction, stores a new key `v{n+1}`, makes it current and records `v{n}`
//! as the previous version, and starts a [`KeyJob`] of kind `reindex`. From then on:
//!
//! - every write computes its tokens under the current key only (a node learns of the new key
//!   when it reads the keyring on its monitoring tick, [`crate::keys::Keys::refresh`]);
//! - every search looks for the token under the current key and the one under the previous key,
//!   so a row not yet re-indexed is found as before;
//! - the job first waits out a grace period (the data-key policy's `grace_ms`), long enough for
//!   every node to have read the new key and for requests that computed a token under the old
//!   one to have committed; it then walks the clients (cursor by id: each client's ID number is
//!   opened with its data key and its token computed again, and so are the tokens of its
//!   records, through the functions the CRM modules compute them with on every write) and the
//!   leads (their mobile token), a page per batch with the cursor committed after each. Each
//!   token is written only if the sealed value it was computed from is still the stored one; a
//!   page is read again until every token in it is under the current key.
//! - Finally, in one transaction, the previous version is forgotten, its system key deleted and
//!   the job finished.
//!
//! Blind-index key v1 is never deleted: MFA recovery-code and one-time-code hashes stay under it
//! (the codes are not kept, so their hashes cannot be computed again), and it serves only those
//! once a rotation has replaced it for search tokens.

use std::collections::BTreeSet;

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::{ClientId, LeadId};
use zf_store::{BlindIndexRotation, KeyHolder, KeyJob, KeyJobKind, TokenWrite};

use crate::data_keys::KeyJobView;
use crate::keys::blind_index_key_name;
use crate::{now_ms, App, AppError};

pub(crate) const PHASE_WAIT: &str = "reindex:wait";
pub(crate) const PHASE_CLIENTS: &str = "reindex:client";
pub(crate) const PHASE_LEADS: &str = "reindex:lead";

/// How many times a page is read again when tokens in it changed under the job's feet.
const PAGE_ATTEMPTS: usize = 5;

/// What one batch of a re-index did.
#[derive(Default)]
pub(crate) struct ReindexPass {
    /// Clients and leads whose tokens were checked.
    pub holders: i64,
    /// Tokens written under the current key.
    pub tokens: i64,
}

/// Where a re-index goes after a batch.
pub(crate) enum ReindexStep {
    /// Carry on at `phase` from `cursor`.
    Next {
        pass: ReindexPass,
        phase: String,
        cursor: Option<String>,
    },
    /// Every token is under the current key.
    Done,
}

fn parse_cursor<T>(
    cursor: Option<String>,
    parse: impl Fn(&str) -> Result<T, zf_domain::IdParseError>,
) -> Result<Option<T>, AppError> {
    cursor
        .map(|c| parse(&c).map_err(|e| AppError::Internal(format!("re-index cursor {c:?}: {e}"))))
        .transpose()
}

impl App {
    /// Starts a blind-index key rotation, as `by`: a new key computes every new search token at
    /// once and a re-index job computes the stored ones again (in the background on a serving
    /// node, or in `zhangfang keys rotate --blind-index`). `Conflict` while a key job runs.
    pub async fn blind_index_rotate_start(&self, by: Actor) -> Result<KeyJobView, AppError> {
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        let (from, previous) = self.keys.search_index_versions();
        if previous.is_some() {
            return Err(AppError::Conflict(
                "a blind-index rotation is already running".into(),
            ));
        }
        let to = from
            .checked_add(1)
            .ok_or_else(|| AppError::Internal("no blind-index version after this one".into()))?;
        let key_name = blind_index_key_name(to);
        let wrapped = self.keys.new_search_index_key(&key_name)?;
        let mut total = 0;
        for holder in KeyHolder::ALL {
            total += self.store.key_holders_count(holder).await?;
        }
        let job = self.new_key_job(KeyJobKind::Reindex, PHASE_WAIT.to_owned(), total, &by);
        let now = job.started_at_ms;
        let event = AuditEvent::new(
            now,
            by,
            AuditAction::BlindIndexRotationStarted,
            Outcome::Success,
        )
        .on("key_job", &job.id)
        .detail(format!(
            "blind-index key v{from} -> v{to}; search tokens of {total} clients and leads \
             computed again"
        ));
        self.store
            .blind_index_rotation_start(
                BlindIndexRotation {
                    from,
                    to,
                    key_name,
                    wrapped,
                },
                job.clone(),
                now,
                event,
            )
            .await
            .map_err(|e| match e {
                zf_store::StoreError::Conflict(_) => AppError::Conflict(
                    "a key job (re-encryption or blind-index rotation) is already running".into(),
                ),
                other => other.into(),
            })?;
        // This node writes under the new key at once; the others on their next tick.
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        Ok(job.into())
    }

    /// [`App::blind_index_rotate_start`] for the signed-in security administrator.
    pub async fn blind_index_rotate_start_by(
        &self,
        grant: &zf_policy::Grant,
        meta: &crate::RequestMeta,
    ) -> Result<KeyJobView, AppError> {
        self.blind_index_rotate_start(crate::actor(grant, meta))
            .await
    }

    /// One batch of a re-index job at `phase` from `cursor`.
    pub(crate) async fn reindex_step(
        &self,
        job: &KeyJob,
        phase: &str,
        cursor: Option<String>,
    ) -> Result<ReindexStep, AppError> {
        // The keyring may have moved on while this runner was away.
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        match phase {
            PHASE_WAIT => {
                if now_ms() < job.started_at_ms + self.config.data_keys.grace_ms {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    return Ok(ReindexStep::Next {
                        pass: ReindexPass::default(),
                        phase: PHASE_WAIT.to_owned(),
                        cursor: None,
                    });
                }
                Ok(ReindexStep::Next {
                    pass: ReindexPass::default(),
                    phase: PHASE_CLIENTS.to_owned(),
                    cursor: None,
                })
            }
            PHASE_CLIENTS => {
                let after = parse_cursor(cursor, ClientId::parse)?;
                let (pass, last) = self.reindex_clients(after).await?;
                Ok(match last {
                    Some(last) => ReindexStep::Next {
                        pass,
                        phase: PHASE_CLIENTS.to_owned(),
                        cursor: Some(last.to_string()),
                    },
                    None => ReindexStep::Next {
                        pass,
                        phase: PHASE_LEADS.to_owned(),
                        cursor: None,
                    },
                })
            }
            PHASE_LEADS => {
                let after = parse_cursor(cursor, LeadId::parse)?;
                let (pass, last) = self.reindex_leads(after).await?;
                Ok(match last {
                    Some(last) => ReindexStep::Next {
                        pass,
                        phase: PHASE_LEADS.to_owned(),
                        cursor: Some(last.to_string()),
                    },
                    None => ReindexStep::Done,
                })
            }
            other => Err(AppError::Internal(format!(
                "key job {} is in an unknown phase {other:?}",
                job.id
            ))),
        }
    }

    /// The page of clients after `after`: each token that is not what the current key makes
    /// of its value is written again. Returns the pass and the page's last client (`None`: no
    /// clients left).
    async fn reindex_clients(
        &self,
        after: Option<ClientId>,
    ) -> Result<(ReindexPass, Option<ClientId>), AppError> {
        let batch = self.config.data_keys.batch;
        let kinds = crate::crm::INDEXED_KINDS.to_vec();
        let mut pass = ReindexPass::default();
        let mut last = None;
        for _ in 0..PAGE_ATTEMPTS {
            let mut page = self
                .store
                .reindex_clients_after(after, kinds.clone(), batch)
                .await?;
            let end = match last {
                Some(end) => end,
                None => match page.last() {
                    Some(c) => {
                        pass.holders = page.len() as i64;
                        last = Some(c.id);
                        c.id
                    }
                    None => return Ok((pass, None)),
                },
            };
            page.retain(|c| c.id.to_string() <= end.to_string());
            let mut writes = Vec::new();
            for client in page {
                let ring = self.keys.client_key(client.id, &client.key)?;
                let number = self.open_id_number_sealed(client.id, &client.id_number, &ring)?;
                let token = self.keys.id_number_index(&number);
                if token != client.id_number_token {
                    writes.push(TokenWrite::Client {
                        id: client.id,
                        id_number: client.id_number,
                        token,
                    });
                }
                for record in client.records {
                    let aad = crate::crm::aad(record.kind, record.id, "sealed");
                    let payload = zeroize::Zeroizing::new(ring.open(&record.sealed, &aad)?);
                    let tokens = crate::crm::record_tokens(self, record.kind, &payload)?;
                    let wanted: BTreeSet<(&str, &[u8])> = tokens
                        .iter()
                        .map(|t| (t.field, t.token.as_bytes()))
                        .collect();
                    let stored: BTreeSet<(&str, &[u8])> = record
                        .tokens
                        .iter()
                        .map(|(f, t)| (f.as_str(), t.as_bytes()))
                        .collect();
                    if wanted != stored {
                        writes.push(TokenWrite::Record {
                            id: record.id,
                            sealed: record.sealed,
                            tokens,
                        });
                    }
                }
            }
            if writes.is_empty() {
                break;
            }
            pass.tokens += self.store.tokens_write(writes).await? as i64;
        }
        Ok((pass, last))
    }

    /// As [`App::reindex_clients`], for the mobile tokens of leads.
    async fn reindex_leads(
        &self,
        after: Option<LeadId>,
    ) -> Result<(ReindexPass, Option<LeadId>), AppError> {
        let batch = self.config.data_keys.batch;
        let mut pass = ReindexPass::default();
        let mut last = None;
        for _ in 0..PAGE_ATTEMPTS {
            let mut page = self.store.leads_after(after, batch).await?;
            let end = match last {
                Some(end) => end,
                None => match page.last() {
                    Some(l) => {
                        pass.holders = page.len() as i64;
                        last = Some(l.id);
                        l.id
                    }
                    None => return Ok((pass, None)),
                },
            };
            page.retain(|l| l.id.to_string() <= end.to_string());
            let mut writes = Vec::new();
            for lead in page {
                let token = self.lead_mobile_token(&lead)?;
                if token != lead.mobile_index {
                    writes.push(TokenWrite::Lead {
                        id: lead.id,
                        sealed: lead.sealed,
                        token,
                    });
                }
            }
            if writes.is_empty() {
                break;
            }
            pass.tokens += self.store.tokens_write(writes).await? as i64;
        }
        Ok((pass, last))
    }

    /// Finishes a re-index: the previous version forgotten, its key deleted unless it is v1
    /// (kept for MFA code hashes), the job closed with its event.
    pub(crate) async fn reindex_finish(
        &self,
        job: &KeyJob,
        runner: &str,
    ) -> Result<Option<KeyJobView>, AppError> {
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        let (current, previous) = self.keys.search_index_versions();
        let latest = self.store.key_job_latest().await?;
        let (holders, tokens) = latest
            .as_ref()
            .map_or((0, 0), |j| (j.holders_done, j.values_done));
        let (detail, delete_key) = match previous {
            Some(1) => (
                format!(
                    "{holders} clients and leads checked, {tokens} search tokens written under \
                     blind-index key v{current}; v1 kept for MFA code hashes only"
                ),
                None,
            ),
            Some(p) => (
                format!(
                    "{holders} clients and leads checked, {tokens} search tokens written under \
                     blind-index key v{current}; v{p} deleted"
                ),
                Some(blind_index_key_name(p)),
            ),
            None => (
                format!(
                    "{holders} clients and leads checked, {tokens} search tokens written under \
                     blind-index key v{current}"
                ),
                None,
            ),
        };
        let event = AuditEvent::new(
            now_ms(),
            Actor::system(),
            AuditAction::BlindIndexRotationFinished,
            Outcome::Success,
        )
        .on("key_job", &job.id)
        .detail(detail);
        self.store
            .blind_index_rotation_finish(
                &job.id,
                runner,
                previous.unwrap_or(current),
                delete_key,
                now_ms(),
                event,
            )
            .await?;
        self.keys.refresh_search_index(self.store.as_ref()).await?;
        self.key_job().await
    }
}
